//! The tenant package: load, validate, publish, export.
