//! The subcommands of the `switchyard` binary that live in the library (testable, shared).

pub mod openapi;
pub mod package_test;
pub mod tenant;
pub mod user;
