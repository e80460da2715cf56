//! The tenant package: a folder of YAML files a consultant keeps in git. Loading it
//! ([`package`]), compiling and checking it ([`compile`]), and publishing it as an immutable
//! version with its sample data ([`apply`]); a tenant's unpublished draft of it ([`draft`]).

pub mod apply;
pub mod compile;
pub mod draft;
pub mod error;
pub mod export;
pub mod indexes;
pub mod migrate;
pub mod package;
pub mod plan;
pub mod testing;
pub mod unique;
pub mod validate;

pub use error::{ApplyError, PackageError};
pub use package::Package;
