//! The router: every module's routes merged, and the layers every request passes through
//! (request id, a tracing span per request, security headers, CORS, metrics, rate limits, the
//! bounds on requests in progress, body size limit, timeout).

use std::time::Duration;

use axum::http::{HeaderName, Request, Response, StatusCode};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use crate::limits::{MAX_BODY_BYTES, REQUEST_TIMEOUT};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    router_with_timeout(state, REQUEST_TIMEOUT)
}

/// [`router`] with another request time limit (tests).
pub fn router_with_timeout(state: AppState, timeout: Duration) -> Router {
    crate::metrics::handle();
    let request_id = HeaderName::from_static("x-request-id");
    let shared = state.clone();
    crate::routes::all()
        .into_router()
        // The studio's files: not API routes (no OpenAPI operations), served from the same origin.
        .merge(crate::routes::studio::router())
        .fallback(|| async { crate::error::ApiError::not_found("no such route") })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::from_fn_with_state(timeout, crate::middleware::envelope_limits))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), crate::middleware::admit))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), crate::middleware::rate_limit))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(crate::middleware::cors(&shared.ops.config))
        .layer(axum::middleware::from_fn(crate::middleware::security_headers))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
                    tracing::info_span!("request", request.id = id, http.method = %req.method(), http.path = %req.uri().path(), http.route = route, tenant = tracing::field::Empty, client.ip = tracing::field::Empty)
                })
                // One line per answered request, at INFO; method, route and request id are the
                // span's fields (in JSON logs: `span` and `spans`).
                .on_response(|response: &Response<_>, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(
                        http.status = response.status().as_u16(),
                        latency_ms = latency.as_secs_f64() * 1000.0,
                        "request finished"
                    );
                }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(crate::middleware::sanitize_request_id))
}
