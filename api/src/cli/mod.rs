//! The subcommands of the `switchyard` binary that live in the library (testable, shared).

pub mod openapi;
pub mod tenant;
pub mod user;
