//! The one error type of the HTTP layer and its envelope:
//! `{"error": {"code": "GUARD_FAILED", "message": "…", "details": {…}}}`.
//! Domain errors reach it through `From`; a 5xx never shows its cause to the client and is
//! logged once, here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::eval::Rejection;
use engine::permissions::CreateRefusal;
use engine::store::StoreError;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Seconds to send as `Retry-After` (on 429 and 503). Small, to keep the error small.
    pub retry_after: Option<std::num::NonZeroU16>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: Value::Null, retry_after: None }
    }

    /// Asks the client to retry after `seconds` (`Retry-After`).
    pub fn retry_after(mut self, seconds: u16) -> ApiError {
        self.retry_after = std::num::NonZeroU16::new(seconds);
        self
    }

    /// The database cannot be reached or cannot take the request now (restarting, at its
    /// connection limit, no pooled connection in time): 503 `DATABASE_UNAVAILABLE`, retry in a
    /// second. A change whose commit was cut off may or may not have been applied: sent again
    /// with the same `Idempotency-Key`, it is answered from its record if it was. The caller
    /// adds `details.applied` (`false`: nothing was done; `"unknown"`).
    pub fn database_unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            "the database is unavailable (restarting, unreachable or at its connection limit); retry shortly. \
             A change whose connection was lost while it committed may have been applied: \
             retry it with the same Idempotency-Key to learn its outcome",
        )
        .retry_after(1)
    }

    /// Too much slow evaluation is queued: 503 `BUSY`, retry in a second.
    pub fn busy(busy: &engine::offload::Busy) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "BUSY", busy.to_string()).retry_after(1)
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub fn validation(errors: Value) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED", "the request is not valid")
            .with_details(json!({ "errors": errors }))
    }

    /// The answer to a body over [`MAX_BODY_BYTES`](crate::limits::MAX_BODY_BYTES), wherever it
    /// is noticed (the body limit layer, a body extractor, a streamed import).
    pub fn payload_too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!(
                "the request body may have at most {} bytes (an import: split the file)",
                crate::limits::MAX_BODY_BYTES
            ),
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if !self.details.is_null() {
            error["details"] = self.details;
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds.get()));
        }
        response
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> ApiError {
        match r {
            Rejection::InvalidTransition { state, available } => ApiError::new(
                StatusCode::CONFLICT,
                "INVALID_TRANSITION",
                format!("this transition is not available from state {state}"),
            )
            .with_details(json!({ "state": state, "available": available })),
            Rejection::Forbidden { required_roles } => ApiError::forbidden("your roles do not allow this transition")
                .with_details(json!({ "required_roles": required_roles })),
            Rejection::CreateRefused { type_name, refusal } => {
                let message = engine::eval::create_refusal_message(&type_name, &refusal);
                let errors: Vec<Value> = match &refusal {
                    CreateRefusal::Fields(fields) => fields
                        .iter()
                        .map(|f| {
                            json!({
                                "path": format!("/data/{}", f.replace('~', "~0").replace('/', "~1")),
                                "message": "your roles may not set this field when creating",
                            })
                        })
                        .collect(),
                    CreateRefusal::Rule(m) => vec![json!({ "path": "/data", "message": m })],
                };
                let reason = match refusal {
                    CreateRefusal::Fields(_) => "fields",
                    CreateRefusal::Rule(_) => "rule",
                };
                ApiError::forbidden(message).with_details(json!({ "reason": reason, "errors": errors }))
            }
            Rejection::Validation { errors } => ApiError::validation(json!(errors)),
            Rejection::GuardFailed { index, message, trace } => {
                ApiError::new(StatusCode::CONFLICT, "GUARD_FAILED", message.clone())
                    .with_details(json!({ "guard": index, "trace": trace }))
            }
            Rejection::ScriptFailed { message, line } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "SCRIPT_FAILED", message)
                    .with_details(json!({ "line": line }))
            }
            Rejection::ScriptLimit { message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "SCRIPT_LIMIT", message)
            }
            // The tenant's configuration ran out of a budget: the tenant's 422, naming where.
            Rejection::RuleLimit { at, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "RULE_LIMIT", format!("{at}: {message}"))
                    .with_details(json!({ "at": at }))
            }
            // A decision table failed on this input (a unique violation, an input of the wrong
            // type, a row kept as data that does not compile): the tenant's 422, naming where.
            Rejection::DecisionFailed { at, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "DECISION_FAILED", format!("{at}: {message}"))
                    .with_details(json!({ "at": at }))
            }
            Rejection::TemplateFailed { at, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "TEMPLATE_FAILED", format!("{at}: {message}"))
                    .with_details(json!({ "at": at }))
            }
            other => ApiError::internal(format!("{other:?}")),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Rejected(r) => r.into(),
            StoreError::EntityNotFound => ApiError::not_found("entity not found"),
            StoreError::Forbidden { action, type_name } => {
                ApiError::forbidden(format!("your roles may not {action} {type_name} entities"))
                    .with_details(json!({ "action": action, "type": type_name }))
            }
            StoreError::TypeNotFound(t) => ApiError::not_found(format!("unknown entity type `{t}`")),
            StoreError::NoLiveVersion => ApiError::not_found("the tenant has no published configuration"),
            StoreError::VersionConflict { expected, actual } => ApiError::new(
                StatusCode::CONFLICT,
                "VERSION_CONFLICT",
                format!("the entity is at version {actual}, not {expected}"),
            )
            .with_details(json!({ "expected": expected, "actual": actual })),
            StoreError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used for a different request",
            ),
            StoreError::Busy(busy) => ApiError::busy(&busy),
            StoreError::Immutable { type_name } => ApiError::new(
                StatusCode::CONFLICT,
                "IMMUTABLE",
                format!("{type_name} entities are append-only: they cannot be changed or deleted"),
            )
            .with_details(json!({ "type": type_name })),
            StoreError::Unique { type_name, fields, .. } => {
                let message = engine::store::unique_message(&type_name, &fields);
                ApiError::new(StatusCode::CONFLICT, "UNIQUE_VIOLATION", message)
                    .with_details(json!({ "type": type_name, "fields": fields }))
            }
            StoreError::NotAnObject => {
                ApiError::validation(json!([{ "path": "/data", "message": "must be an object" }]))
            }
            // Postgres "data exception" (SQLSTATE class 22): a value the database cannot take,
            // such as a NUL character in text or an out-of-range number. The client's input, so
            // 422, without the database's message.
            StoreError::Db(sqlx::Error::Database(db)) if db.code().is_some_and(|c| c.starts_with("22")) => {
                tracing::info!(sqlstate = ?db.code(), "data exception from the database");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "INVALID_VALUE",
                    "a value in the request cannot be stored (for example a NUL character or a number out of range)",
                )
            }
            // A deadlock (40P01) or a serialization failure (40001): Postgres rolled the request's
            // transaction back because of a concurrent one; nothing was written, and the same
            // request sent again normally succeeds. Not the server's fault, so not a 500.
            StoreError::Db(sqlx::Error::Database(db)) if db.code().is_some_and(|c| c == "40P01" || c == "40001") => {
                tracing::info!(sqlstate = ?db.code(), "transaction rolled back by a concurrent one");
                ApiError::new(
                    StatusCode::CONFLICT,
                    "CONFLICT",
                    "the request collided with a concurrent one and was rolled back (nothing was changed); retry it",
                )
            }
            // The database is away or full, or the connection died: retry later (503), saying
            // whether the request may have been applied.
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                let applied = match e {
                    StoreError::Unreachable(_) => json!(false),
                    _ => json!("unknown"),
                };
                ApiError::database_unavailable().with_details(json!({ "applied": applied }))
            }
            other => ApiError::internal(other),
        }
    }
}

/// A database error from a handler's own query is answered like one from the store: data
/// exceptions are the client's (422), anything else a logged 500.
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        StoreError::from(e).into()
    }
}
