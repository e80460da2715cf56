//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::openapi::{ok, readyz_responses, responses};
use crate::routes::{op, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .get(
            "/healthz",
            healthz,
            op(|_| {
                json!({ "tags": ["operations"], "operationId": "healthz", "security": [],
                "responses": responses(ok(json!({ "type": "object", "required": ["status"], "properties": { "status": { "const": "ok" } } })), &[]) })
            }),
        )
        .get(
            "/readyz",
            readyz,
            op(|_| json!({ "tags": ["operations"], "operationId": "readyz", "security": [], "responses": readyz_responses() })),
        )
}

/// The process is up.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 only when the database answers, every migration ran, and the request pool (connected as
/// `switchyard_app`, the role every request works as) can connect and read too: a server whose
/// app role cannot log in, or lacks its grants, is not ready although its owner pool is fine.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let unavailable = |pool: &str, e: sqlx::Error| {
        tracing::warn!(error = %e, pool, "readiness check failed");
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "database unavailable" })))
    };
    match crate::db::migrations_applied(&state.owner).await {
        Ok(true) => {}
        Ok(false) => return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "migrations pending" }))),
        Err(e) => return unavailable("owner", e),
    }
    match crate::db::migrations_applied(state.store.pool()).await {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "migrations pending" }))),
        Err(e) => unavailable("app", e),
    }
}
