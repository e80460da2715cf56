//! The bounds of the HTTP API, in one place: request body and time, page sizes, filter sizes.
//! The list bounds are the engine's (`engine::store::query`), re-exported so that the handlers
//! and the OpenAPI document say the same numbers. The bounds of tenant code (Rhai, templates,
//! JSON-Logic, cascade depth) live in `engine::limits::Limits`; those of rate limits and
//! workers in their settings (`crate::config`).

use std::time::Duration;

pub use engine::store::query::{
    DEFAULT_LIMIT, MAX_IN_VALUES, MAX_LIMIT, MAX_Q_CHARS, MAX_Q_WORDS, MAX_VALUE_CHARS, TOTAL_CAP,
};
/// The inbox's page bounds (`GET …/inbox`): its largest page and default, and the most
/// candidates one page evaluates.
pub use engine::store::{INBOX_DEFAULT_LIMIT, INBOX_MAX_LIMIT, INBOX_MAX_SCAN};

/// Largest request body accepted (more: 413 `PAYLOAD_TOO_LARGE`).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest draft package (`PUT …/config/draft`), in bytes of JSON text (more: 413
/// `PAYLOAD_TOO_LARGE`). It travels in a request body, so the body bound is its bound too.
pub const MAX_DRAFT_BYTES: usize = MAX_BODY_BYTES;
/// A request taking longer than this is answered 408 (`REQUEST_TIMEOUT`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest page of `GET …/events`, and the page without `limit`.
pub const EVENTS_MAX_LIMIT: i64 = 500;
pub const EVENTS_DEFAULT_LIMIT: i64 = 100;
/// Largest page of `GET …/webhooks/{id}/deliveries`, and the page without `limit`.
pub const DELIVERIES_MAX_LIMIT: i64 = 200;
pub const DELIVERIES_DEFAULT_LIMIT: i64 = 50;
/// Most users `GET …/user-choices` answers (the choices of one user field).
pub const USER_CHOICES_MAX: i64 = 500;
/// Longest `Idempotency-Key` of a transition or a creation (more: 400 `BAD_REQUEST`).
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Longest name of a user or an API key, in characters (more: 422 at `/name`).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest client-sent `x-request-id` kept.
pub const MAX_REQUEST_ID: usize = 128;
/// How long an invitation can be accepted (`POST /api/v1/auth/accept-invite`), in days.
pub const INVITE_TTL_DAYS: i32 = 7;
/// Requests one server handles at once, and of them one tenant's; how long a request over
/// either waits for its turn before `503 OVERLOADED` (`crate::admission`). The defaults of
/// `SWITCHYARD_MAX_IN_FLIGHT` (twice the default pool), `SWITCHYARD_TENANT_IN_FLIGHT` (half the
/// default pool) and `SWITCHYARD_ADMISSION_WAIT`.
pub const MAX_IN_FLIGHT: u32 = 64;
pub const TENANT_IN_FLIGHT: u32 = 16;
pub const ADMISSION_WAIT: Duration = Duration::from_secs(2);
