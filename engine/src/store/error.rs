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
    /// The entity's type is append-only (`immutable: true`): its entities are never updated or
    /// deleted (HTTP 409 `IMMUTABLE`). Also what the database's trigger answers (SQLSTATE
    /// [`IMMUTABLE_SQLSTATE`]) when a statement tries anyway.
    #[error("{type_name} entities are append-only: they cannot be changed or deleted")]
    Immutable { type_name: String },
    /// A write would give two entities of a type the same values in the fields of one of its
    /// unique constraints (a unique index of [`super::query::unique_specs`]; HTTP 409
    /// `UNIQUE_VIOLATION`). `fields` is empty until [`super::Store`] has looked up the index
    /// (`index`) it names.
    #[error("{}", unique_message(type_name, fields))]
    Unique { index: String, type_name: String, fields: Vec<String> },
    /// Too much slow evaluation is queued (for the tenant, or the process): retry shortly.
    #[error(transparent)]
    Busy(#[from] crate::offload::Busy),
    #[error("database: {0}")]
    Db(sqlx::Error),
    /// The connection died while the transaction was committing: it may or may not have been
    /// applied. Never retried by the store; the client learns the outcome by sending the same
    /// request with the same `Idempotency-Key` (HTTP 503 `DATABASE_UNAVAILABLE`).
    #[error("the database connection was lost while committing: {0}")]
    CommitLost(sqlx::Error),
    /// No transaction could be started (the database is down, starting, full, or every
    /// connection tried was dead): nothing was done, and the same request may be sent again as
    /// it is (HTTP 503 `DATABASE_UNAVAILABLE`, `details.applied: false`).
    #[error("the database cannot be reached: {0}")]
    Unreachable(sqlx::Error),
}

impl StoreError {
    /// An error met before anything was done (starting a transaction, a read): the database
    /// being unavailable is [`StoreError::Unreachable`], anything else as usual.
    pub fn unreachable(e: sqlx::Error) -> StoreError {
        if super::conn::is_unavailable(&e) {
            super::conn::note(&e);
            StoreError::Unreachable(e)
        } else {
            StoreError::from(e)
        }
    }

    /// Whether the database could not be reached or take the request now
    /// ([`super::conn::is_unavailable`]): retry later, nothing is wrong with the request.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Db(e) => super::conn::is_unavailable(e),
            StoreError::CommitLost(_) | StoreError::Unreachable(_) => true,
            _ => false,
        }
    }
}

/// The SQLSTATE the `entities` trigger raises for an update or deletion of an append-only row
/// (`migrations/0013_append_only.sql`); its `detail` is the row's type.
pub const IMMUTABLE_SQLSTATE: &str = "SYIMM";

/// Postgres's `unique_violation`.
const UNIQUE_VIOLATION: &str = "23505";

impl From<sqlx::Error> for StoreError {
    /// A database error, except the append-only trigger's refusal, which is
    /// [`StoreError::Immutable`] wherever it surfaces, and a violation of a unique constraint's
    /// index, which is [`StoreError::Unique`].
    ///
    /// A dead connection is noted ([`super::conn::note`]) so the pools retire the older ones.
    fn from(e: sqlx::Error) -> Self {
        super::conn::note(&e);
        if let sqlx::Error::Database(db) = &e {
            if db.code().as_deref() == Some(IMMUTABLE_SQLSTATE) {
                let type_name = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .and_then(|pg| pg.detail())
                    .unwrap_or_default()
                    .to_string();
                return StoreError::Immutable { type_name };
            }
            if db.code().as_deref() == Some(UNIQUE_VIOLATION) {
                if let Some(index) = db.constraint().filter(|c| c.starts_with(super::query::UNIQUE_PREFIX)) {
                    return StoreError::Unique {
                        index: index.to_string(),
                        type_name: String::new(),
                        fields: Vec::new(),
                    };
                }
            }
        }
        StoreError::Db(e)
    }
}

impl From<Rejection> for StoreError {
    fn from(r: Rejection) -> Self {
        StoreError::Rejected(r)
    }
}

/// What a [`StoreError::Unique`] says: "another product entity already has the same sku" (or "the
/// same name and supplier").
pub fn unique_message(type_name: &str, fields: &[String]) -> String {
    match (type_name.is_empty(), fields.is_empty()) {
        (_, true) => "another entity already has the same values of a unique constraint".to_string(),
        (true, false) => format!("another entity already has the same {}", fields.join(" and ")),
        (false, false) => format!("another {type_name} entity already has the same {}", fields.join(" and ")),
    }
}
