//! The rules playground: evaluate a JSON-Logic rule against data (admins; the studio's guard
//! playground uses it).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminArea, JsonBody};
use crate::routes::Routes;
use crate::state::AppState;

/// The rules playground is for the tenant's admins.
struct Playground;

impl AdminArea for Playground {
    const REFUSAL: &'static str = "the rules playground is for admins";
}

pub fn routes() -> Routes {
    Routes::default().post("/api/v1/t/{tenant}/rules/evaluate", evaluate)
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
    _admin: Admin<Playground>,
    JsonBody(req): JsonBody<EvaluateRequest>,
) -> Result<Json<Value>, ApiError> {
    let result = engine::logic::evaluate_once(&req.logic, &req.data)
        .map_err(|e| ApiError::validation(json!([{ "path": "/logic", "message": e.to_string() }])))?;
    Ok(Json(json!({ "result": result })))
}
