//! The rules playground: evaluate a JSON-Logic rule against data (admins; the studio's guard
//! playground uses it).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::TenantActor;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/t/{tenant}/rules/evaluate", post(evaluate))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateRequest {
    logic: Value,
    #[serde(default)]
    data: Value,
}

async fn evaluate(
    _state: State<AppState>,
    who: TenantActor,
    JsonBody(req): JsonBody<EvaluateRequest>,
) -> Result<Json<Value>, ApiError> {
    if !who.has_role("admin") {
        return Err(ApiError::forbidden("the rules playground is for admins"));
    }
    let result = engine::logic::evaluate_once(&req.logic, &req.data)
        .map_err(|e| ApiError::validation(json!([{ "path": "/logic", "message": e.to_string() }])))?;
    Ok(Json(json!({ "result": result })))
}
