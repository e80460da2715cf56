//! Errors of the tenants crate: each says which file and where inside it.

use std::path::Path;

use serde::Serialize;

#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PackageError {
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    #[error("{file}{path}: {message}")]
    Parse { file: String, path: String, message: String },
    #[error("{file}{path}: {message}")]
    Invalid { file: String, path: String, message: String },
    #[error("stored package does not parse: {0}")]
    Stored(String),
}

impl PackageError {
    pub fn at(file: &Path, path: &str, message: impl Into<String>) -> PackageError {
        PackageError::Invalid { file: file.display().to_string(), path: path.to_string(), message: message.into() }
    }
}

/// Errors of applying a package to a database.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the package is invalid ({} problem(s))", .0.len())]
    Invalid(Vec<PackageError>),
    #[error("sample data {origin}: {message}")]
    SampleData { origin: String, message: String },
    /// The publisher's comment is refused (too long).
    #[error("{0}")]
    Comment(String),
    #[error(transparent)]
    Store(#[from] engine::store::StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}
