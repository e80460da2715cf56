//! The rules playground: evaluate a JSON-Logic rule against data (admins; the studio's guard
//! playground uses it).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminArea, JsonBody};
use crate::openapi::{body, ok, responses, ADMIN_ONLY};
use crate::routes::{op, Routes};
use crate::state::AppState;

/// The rules playground is for the tenant's admins.
struct Playground;

impl AdminArea for Playground {
    const REFUSAL: &'static str = "the rules playground is for admins";
}

pub fn routes() -> Routes {
    Routes::default().post(
        "/api/v1/t/{tenant}/rules/evaluate",
        evaluate,
        op(|_| {
            json!({ "tags": ["rules"], "operationId": "rules_evaluate", "description": ADMIN_ONLY,
            "requestBody": body(json!({ "type": "object", "required": ["logic"], "additionalProperties": false,
                "properties": { "logic": {}, "data": {} } })),
            "responses": responses(ok(json!({ "type": "object", "required": ["result"], "properties": { "result": {} } })),
                &[400, 401, 403, 422]) })
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateRequest {
    logic: Value,
    #[serde(default)]
    data: Value,
}

async fn evaluate(
    state: State<AppState>,
    Admin(who, _): Admin<Playground>,
    JsonBody(req): JsonBody<EvaluateRequest>,
) -> Result<Json<Value>, ApiError> {
    // Tenant code, maybe slow (iteration): evaluated off the reactor, within the tenant's share
    // and the limits; over a limit is the tenant's 422 `RULE_LIMIT`.
    let limits = state.store.limits().clone();
    let outcome = state
        .store
        .offload()
        .spawn(who.tenant, move || engine::logic::evaluate_once(&req.logic, &req.data, &limits))
        .await
        .map_err(|busy| ApiError::busy(&busy))?;
    let result = outcome.map_err(|e| match e {
        engine::EngineError::RuleLimit { message } => {
            ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "RULE_LIMIT", format!("/logic: {message}"))
                .with_details(json!({ "at": "/logic" }))
        }
        e => ApiError::validation(json!([{ "path": "/logic", "message": e.to_string() }])),
    })?;
    Ok(Json(json!({ "result": result })))
}
