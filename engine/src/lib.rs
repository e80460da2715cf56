//! Workflows, guards, scripts, the pure evaluation of a transition and the Postgres executor
//! around it.

pub mod error;
pub mod limits;
pub mod logic;
pub mod model;
pub mod script;

pub use error::EngineError;
pub use limits::Limits;
