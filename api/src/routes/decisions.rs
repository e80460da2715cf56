//! The decision tables' playground: evaluate a table of the live version on given inputs and
//! see its outputs with the trace (which rows matched, which won). For admins; the studio's
//! table playground uses it. Tables whose rows are entities are evaluated with the rows as they
//! are now.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminArea, JsonBody};
use crate::openapi::{body, ok, responses, ADMIN_ONLY};
use crate::routes::{op, Routes};
use crate::state::AppState;

/// The decision playground is for the tenant's admins.
struct Playground;

impl AdminArea for Playground {
    const REFUSAL: &'static str = "the decision playground is for admins";
}

pub fn routes() -> Routes {
    Routes::default().post(
        "/api/v1/t/{tenant}/decisions/{name}/evaluate",
        evaluate,
        op(|_| {
            json!({ "tags": ["rules"], "operationId": "decisions_evaluate", "description": format!(
                "Evaluates a decision table of the live version on `inputs` (an input left out is evaluated from \
                 its `expr` over `context`, else null) and gives its outputs and trace. {ADMIN_ONLY}"),
            "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }],
            "requestBody": body(json!({ "type": "object", "additionalProperties": false,
                "properties": { "inputs": { "type": "object" }, "context": { "type": "object" } } })),
            "responses": responses(ok(json!({ "type": "object", "required": ["outputs", "trace"],
                "properties": { "outputs": {}, "trace": { "type": "object" } } })), &[400, 401, 403, 404, 422]) })
        }),
    )
}

/// The table's name in the path (the tenant is the extractor's).
#[derive(Deserialize)]
struct NamePath {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateRequest {
    #[serde(default)]
    inputs: Map<String, Value>,
    #[serde(default)]
    context: Value,
}

async fn evaluate(
    state: State<AppState>,
    Admin(who, _): Admin<Playground>,
    Path(NamePath { name }): Path<NamePath>,
    JsonBody(req): JsonBody<EvaluateRequest>,
) -> Result<Json<Value>, ApiError> {
    let (defs, data) = state.store.live_decisions(who.tenant).await?;
    if defs.decisions().get(&name).is_none() {
        return Err(ApiError::not_found(format!("unknown decision table `{name}`")));
    }
    // Tenant code (cells may be JSON-Logic): evaluated off the reactor, within the tenant's share
    // and the limits.
    let limits = state.store.limits().clone();
    let outcome = state
        .store
        .offload()
        .spawn(who.tenant, move || {
            let tables = defs.decisions().clone();
            let context = || std::rc::Rc::new(engine::logic::LogicContext::new(&req.context));
            let (result, traces) = engine::decision::scope(&tables, &data, Some(&context), || {
                engine::logic::budget(&limits, || engine::decision::call(&name, &req.inputs))
            });
            result.map(|outputs| (outputs, traces))
        })
        .await
        .map_err(|busy| ApiError::busy(&busy))?;
    let (outputs, mut traces) = outcome.map_err(|e| {
        let (code, path) = match &e {
            engine::decision::DecisionError::Input { input, .. } => ("VALIDATION_FAILED", format!("/inputs/{input}")),
            _ if e.is_limit() => ("RULE_LIMIT", "/inputs".to_string()),
            _ => ("DECISION_FAILED", "/inputs".to_string()),
        };
        if code == "VALIDATION_FAILED" {
            ApiError::validation(json!([{ "path": path, "message": e.to_string() }]))
        } else {
            ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
                .with_details(json!({ "at": path }))
        }
    })?;
    // The table's own trace is the last (tables its inputs or cells called come first).
    let trace = traces.pop().map_or(Value::Null, |t| json!(t));
    Ok(Json(json!({ "outputs": outputs, "trace": trace, "calls": traces })))
}
