//! The generic entity API: create, get, patch, delete, list (filters, search, sort, cursor),
//! transitions (list, execute) and history, here; bulk transitions ([`bulk`]); CSV export and
//! CSV/JSON import ([`transfer`], over the pure codec of [`codec`]).

mod bulk;
mod codec;
mod transfer;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use engine::compiled::CompiledTenant;
use engine::permissions::Action;
use engine::store::{
    add_display, entity_json_titled, CreateOptions, HistoryEntry, ListMode, ListRequest, TransitionInfo,
    TransitionOptions, TransitionOutcome, TransitionRequest,
};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::TenantActor;
use crate::extract::{JsonBody, QueryParams};
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .post("/api/v1/t/{tenant}/entities/{type}", create)
        .get("/api/v1/t/{tenant}/entities/{type}", list)
        .get("/api/v1/t/{tenant}/entities/{type}/{id}", get_one)
        .patch("/api/v1/t/{tenant}/entities/{type}/{id}", patch_one)
        .delete("/api/v1/t/{tenant}/entities/{type}/{id}", delete_one)
        .get("/api/v1/t/{tenant}/entities/{type}/{id}/transitions", transitions)
        .post("/api/v1/t/{tenant}/entities/{type}/{id}/transitions/{name}", execute)
        .get("/api/v1/t/{tenant}/entities/{type}/{id}/history", history)
        .post("/api/v1/t/{tenant}/entities/{type}/transitions/{name}", bulk::bulk_transition)
        .get("/api/v1/t/{tenant}/entities/{type}/export.csv", transfer::export_csv)
        .post("/api/v1/t/{tenant}/entities/{type}/import", transfer::import)
}

#[derive(Deserialize)]
struct TypePath {
    #[serde(rename = "type")]
    type_name: String,
}

#[derive(Deserialize)]
struct EntityPath {
    #[serde(rename = "type")]
    type_name: String,
    id: String,
}

#[derive(Deserialize)]
struct TransitionPath {
    #[serde(rename = "type")]
    type_name: String,
    id: String,
    name: String,
}

/// The package's type-level permissions for this actor (see `engine::permissions`): without
/// `view` the type or entity is not found; with it but without `action`, 403.
async fn allow(
    state: &AppState,
    who: &TenantActor,
    type_name: &str,
    action: Action,
    on_entity: bool,
) -> Result<(), ApiError> {
    Ok(state.store.authorize(who.tenant, &who.actor, type_name, action, on_entity).await?)
}

/// The live definitions whose `title` templates render the `display` of the entities answered
/// (`engine::store::add_display`; the live version's, so every entity of a list shows its title
/// the way the tenant writes it today).
async fn titles(state: &AppState, who: &TenantActor) -> Result<Arc<CompiledTenant>, ApiError> {
    Ok(state.store.live_cached(who.tenant).await?)
}

/// The id of the entity a request names, once the actor may do `action` to its type (see
/// [`allow`]; an id that is not a uuid is 404 like an unknown one).
async fn target(
    state: &AppState,
    who: &TenantActor,
    type_name: &str,
    id: &str,
    action: Action,
) -> Result<Uuid, ApiError> {
    let id = parse_id(id)?;
    allow(state, who, type_name, action, true).await?;
    Ok(id)
}

/// An id that is not a uuid names no entity: 404, like any unknown id.
fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found("entity not found"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    data: Value,
}

async fn create(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TypePath>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    allow(&state, &who, &path.type_name, Action::Create, false).await?;
    let entity =
        state.store.create_entity(who.tenant, &path.type_name, body.data, &who.actor, CreateOptions::default()).await?;
    Ok((StatusCode::CREATED, Json(entity_json_titled(&entity, &*titles(&state, &who).await?))))
}

async fn get_one(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::View).await?;
    let entity = state.store.get_entity(who.tenant, &path.type_name, id).await?;
    Ok(Json(entity_json_titled(&entity, &*titles(&state, &who).await?)))
}

/// The body of a PATCH: `{"data": {field: value or null}}`; anything else at the top level
/// (`state`, `version`, `id`, …) is refused by name (no mass assignment).
async fn patch_one(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::Edit).await?;
    let Value::Object(mut top) = body else {
        return Err(ApiError::validation(json!([{ "path": "", "message": "must be an object {\"data\": {…}}" }])));
    };
    let data = top.remove("data");
    if !top.is_empty() {
        let errors: Vec<Value> = top
            .keys()
            .map(|k| json!({ "path": format!("/{k}"), "message": "cannot be set: a PATCH body is {\"data\": {…}}; state changes only by transitions" }))
            .collect();
        return Err(ApiError::validation(json!(errors)));
    }
    let Some(Value::Object(patch)) = data else {
        return Err(ApiError::validation(json!([{ "path": "/data", "message": "must be an object" }])));
    };
    let if_match = if_match(&headers)?;
    let entity = state.store.patch_entity(who.tenant, (&path.type_name, id), patch, &who.actor, if_match).await?;
    Ok(Json(entity_json_titled(&entity, &*titles(&state, &who).await?)))
}

async fn delete_one(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::Delete).await?;
    state.store.delete_entity(who.tenant, &path.type_name, id, &who.actor, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `If-Match: <version>` (quotes allowed).
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        Some(v) => v
            .to_str()
            .ok()
            .map(|s| s.trim().trim_matches('"'))
            .and_then(|s| s.parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("If-Match must be the entity's version number")),
        None => Ok(None),
    }
}

/// `GET …/entities/{type}?<filters>&q=…&sort=…&limit=…&cursor=…&total=true` (`docs/api.md`,
/// "Lists"): parsed and checked against the type by `engine::store::query`.
async fn list(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TypePath>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    allow(&state, &who, &path.type_name, Action::View, false).await?;
    let page = state.store.query(who.tenant, &path.type_name, &ListRequest::from_pairs(pairs, ListMode::List)).await?;
    let defs = titles(&state, &who).await?;
    let mut body = json!({
        "data": page.entities.iter().map(|e| entity_json_titled(e, &defs)).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    });
    if let Some(total) = page.total {
        body["total"] = json!(total);
    }
    Ok(Json(body))
}

async fn transitions(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::View).await?;
    let list: Vec<TransitionInfo> =
        state.store.available_transitions(who.tenant, &path.type_name, id, &who.actor).await?;
    Ok(Json(json!({ "data": list })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn execute(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TransitionPath>,
    QueryParams(q): QueryParams<ExecuteQuery>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ExecuteBody>,
) -> Result<Json<TransitionOutcome>, ApiError> {
    let idempotency_key = match headers.get("idempotency-key") {
        Some(v) => {
            let key = v.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::bad_request("Idempotency-Key must have 1 to 255 characters"));
            }
            Some(key.to_string())
        }
        None => None,
    };
    let if_match = if_match(&headers)?;
    let id = target(&state, &who, &path.type_name, &path.id, Action::View).await?;
    let input = body.input.unwrap_or_else(|| json!({}));
    let mut outcome = state
        .store
        .transition(
            who.tenant,
            TransitionRequest { type_name: &path.type_name, id, name: &path.name, input },
            &who.actor,
            TransitionOptions { idempotency_key, if_match, dry_run: q.dry_run },
        )
        .await?;
    add_display(&mut outcome.entity, &*titles(&state, &who).await?);
    Ok(Json(outcome))
}

async fn history(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::View).await?;
    let rows: Vec<HistoryEntry> = state.store.history(who.tenant, &path.type_name, id).await?;
    Ok(Json(json!({ "data": rows })))
}

/// Entities read per page when a bulk transition or an export walks a filtered list.
const WALK_PAGE: i64 = 200;
