//! What can go wrong in the executor. The API maps each variant to a status and an error code.

use crate::eval::Rejection;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The definitions said no: invalid transition, role, input, guard, script, validation.
    #[error("rejected: {0:?}")]
    Rejected(Rejection),
    #[error("entity not found")]
    EntityNotFound,
    /// The actor may view the type but not do this to it.
    #[error("your roles may not {action} {type_name} entities")]
    Forbidden { action: &'static str, type_name: String },
    #[error("unknown entity type `{0}`")]
    TypeNotFound(String),
    #[error("the tenant has no published configuration")]
    NoLiveVersion,
    #[error("version conflict: expected {expected}, the entity is at {actual}")]
    VersionConflict { expected: i64, actual: i64 },
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// A live record appeared for a key while the request held its lock: a bug (some writer
    /// skipped the lock); the request is rolled back rather than recorded twice.
    #[error("a live idempotency record appeared while its key was locked")]
    IdempotencyRecordLive,
    #[error("the data must be a JSON object")]
    NotAnObject,
    #[error("a stored configuration version does not compile: {0}")]
    Definitions(String),
    /// Too much slow evaluation is queued (for the tenant, or the process): retry shortly.
    #[error(transparent)]
    Busy(#[from] crate::offload::Busy),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<Rejection> for StoreError {
    fn from(r: Rejection) -> Self {
        StoreError::Rejected(r)
    }
}
