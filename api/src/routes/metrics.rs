//! `GET /metrics`: the Prometheus text format of the process's recorder ([`crate::metrics`]),
//! with the gauges read at scrape time (the request pool, the outbox lag).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use serde_json::json;

use crate::error::ApiError;
use crate::metrics::handle;
use crate::openapi::responses;
use crate::routes::{op, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().get(
        "/metrics",
        scrape,
        op(|_| {
            json!({ "tags": ["operations"], "operationId": "metrics",
            "summary": "Prometheus metrics (with SWITCHYARD_METRICS_TOKEN set, only for that bearer token)",
            "security": [{}, { "bearer": [] }],
            "responses": responses(json!({ "200": { "description": "The Prometheus text format",
                "content": { "text/plain": { "schema": { "type": "string" } } } } }), &[401, 404]) })
        }),
    )
}

/// `GET /metrics`: the Prometheus text format. With `SWITCHYARD_METRICS_TOKEN` set, only for
/// `Authorization: Bearer <that token>`.
async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(expected) = &state.ops.config.metrics_token {
        let given = crate::auth::bearer(&headers).unwrap_or("");
        let same: bool = subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into();
        if !same {
            return Err(ApiError::unauthorized("a valid metrics token is required"));
        }
    }
    let handle = handle().ok_or_else(|| ApiError::not_found("metrics are not enabled"))?;
    let pool = state.store.pool();
    // Connections waiting on the store's shelf for the next transaction are idle too (the pool
    // counts them as handed out).
    let idle = (pool.num_idle() + state.store.parked_connections()) as f64;
    metrics::gauge!("switchyard_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("switchyard_db_pool_connections", "state" => "busy").set((f64::from(pool.size()) - idle).max(0.0));
    metrics::gauge!("switchyard_db_pool_max_connections").set(f64::from(pool.options().get_max_connections()));
    match crate::workers::sql::outbox_lag_seconds(pool).await {
        Ok(lag) => metrics::gauge!("switchyard_outbox_lag_seconds").set(lag),
        Err(e) => tracing::warn!(error = %e, "cannot measure the outbox lag"),
    }
    handle.run_upkeep();
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render())
        .into_response())
}
