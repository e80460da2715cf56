//! The router: every module's routes merged, and the layers every request passes through, from
//! the outside in: the frame (request id, a tracing span per request and its log line, metrics,
//! security headers, the error envelope of what answers without it), CORS, the gate (rate
//! limits, then the bounds on requests in progress), the timeout, the body size limit.

use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use crate::limits::{MAX_BODY_BYTES, REQUEST_TIMEOUT};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    router_with_timeout(state, REQUEST_TIMEOUT)
}

/// [`router`] with another request time limit (tests).
pub fn router_with_timeout(state: AppState, timeout: Duration) -> Router {
    crate::metrics::handle();
    let shared = state.clone();
    crate::routes::all()
        .into_router()
        // The studio's files: not API routes (no OpenAPI operations), served from the same origin.
        .merge(crate::routes::studio::router())
        .fallback(|| async { crate::error::ApiError::not_found("no such route") })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), crate::middleware::gate))
        .layer(crate::middleware::cors(&shared.ops.config))
        .layer(axum::middleware::from_fn_with_state(timeout, crate::middleware::frame))
}
