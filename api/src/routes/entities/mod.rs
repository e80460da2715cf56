//! The generic entity API: create, get, patch, delete, list (filters, search, sort, cursor),
//! transitions (list, execute) and history, here; bulk transitions ([`bulk`]); CSV export and
//! CSV/JSON import ([`transfer`], over the pure codec of [`codec`]).

mod bulk;
mod codec;
#[cfg(test)]
mod codec_fuzz;
mod transfer;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use engine::compiled::CompiledTenant;
use engine::permissions::Action;
use engine::store::{
    add_display, entity_json_titled, CreateOptions, HistoryEntry, ListMode, ListRequest, TransitionInfo,
    TransitionOptions, TransitionOutcome, TransitionRequest,
};
use std::sync::Arc;

use ontology::TypeName;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::path::{EntityPath, TransitionPath, TypePath};
use crate::extract::TenantActor;
use crate::extract::{JsonBody, QueryParams};
use crate::limits::MAX_IDEMPOTENCY_KEY;
use crate::routes::{Doc, Routes};
use crate::state::AppState;

/// The entity routes: documented per entity type (and transition) by `crate::openapi`, from the
/// tenant's definitions.
pub fn routes() -> Routes {
    Routes::default()
        .post("/api/v1/t/{tenant}/entities/{type}", create, Doc::PerType)
        .get("/api/v1/t/{tenant}/entities/{type}", list, Doc::PerType)
        .get("/api/v1/t/{tenant}/entities/{type}/{id}", get_one, Doc::PerType)
        .patch("/api/v1/t/{tenant}/entities/{type}/{id}", patch_one, Doc::PerType)
        .delete("/api/v1/t/{tenant}/entities/{type}/{id}", delete_one, Doc::PerType)
        .get("/api/v1/t/{tenant}/entities/{type}/{id}/transitions", transitions, Doc::PerType)
        .post("/api/v1/t/{tenant}/entities/{type}/{id}/transitions/{name}", execute, Doc::PerType)
        .get("/api/v1/t/{tenant}/entities/{type}/{id}/history", history, Doc::PerType)
        .post("/api/v1/t/{tenant}/entities/{type}/transitions/{name}", bulk::bulk_transition, Doc::PerType)
        .get("/api/v1/t/{tenant}/entities/{type}/export.csv", transfer::export_csv, Doc::PerType)
        .post("/api/v1/t/{tenant}/entities/{type}/import", transfer::import, Doc::PerType)
}

/// The package's type-level permissions for this actor (see `engine::permissions`): without
/// `view` the type or entity is not found; with it but without `action`, 403.
async fn allow(
    state: &AppState,
    who: &TenantActor,
    type_name: &TypeName,
    action: Action,
    on_entity: bool,
) -> Result<(), ApiError> {
    Ok(state.store.authorize(who.tenant, &who.actor, type_name.as_str(), action, on_entity).await?)
}

/// The live definitions whose `title` templates render the `display` of the entities answered
/// (`engine::store::add_display`; the live version's, so every entity of a list shows its title
/// the way the tenant writes it today).
async fn titles(state: &AppState, who: &TenantActor) -> Result<Arc<CompiledTenant>, ApiError> {
    Ok(state.store.live_cached(who.tenant).await?)
}

/// An entity's public form as every route answers it: with its `display` title (naming the
/// references it names by their titles) and the `users` its user fields name
/// (`engine::store::Store::annotate`).
async fn answer(state: &AppState, who: &TenantActor, entity: &engine::model::Entity) -> Result<Value, ApiError> {
    let defs = titles(state, who).await?;
    let mut v = [entity_json_titled(entity, &defs)];
    state.store.annotate(who.tenant, &who.actor, &mut v, &defs).await?;
    let [v] = v;
    Ok(v)
}

/// The id of the entity a request names, once the actor may do `action` to its type (see
/// [`allow`]) and sees the entity by its roles' record rules (else 404, as an unknown id).
async fn target(state: &AppState, who: &TenantActor, path: &EntityPath, action: Action) -> Result<Uuid, ApiError> {
    state.store.authorize_entity(who.tenant, &who.actor, &path.type_name, path.id, action).await?;
    Ok(path.id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    data: Value,
    /// The input of the type's create transition, if it has one.
    #[serde(default)]
    input: Option<Value>,
}

/// `POST …/entities/{type}`; with `Idempotency-Key`, the same request again answers the entity
/// it created (201, `Idempotent-Replayed: true`) and creates nothing.
async fn create(
    State(state): State<AppState>,
    who: TenantActor,
    path: TypePath,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, HeaderMap, Json<Value>), ApiError> {
    let key = idempotency_key(&headers)?;
    allow(&state, &who, &path.type_name, Action::Create, false).await?;
    let opts = CreateOptions { input: body.input, ..CreateOptions::default() };
    let (entity, replayed) = state
        .store
        .create_entity_once(who.tenant, &path.type_name, body.data, &who.actor, opts, key.as_deref())
        .await?;
    let mut answer_headers = HeaderMap::new();
    if replayed {
        answer_headers.insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    }
    Ok((StatusCode::CREATED, answer_headers, Json(answer(&state, &who, &entity).await?)))
}

async fn get_one(State(state): State<AppState>, who: TenantActor, path: EntityPath) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path, Action::View).await?;
    let entity = state.store.get_entity(who.tenant, &path.type_name, id).await?;
    Ok(Json(answer(&state, &who, &entity).await?))
}

/// The body of a PATCH: `{"data": {field: value or null}}`; anything else at the top level
/// (`state`, `version`, `id`, …) is refused by name (no mass assignment).
async fn patch_one(
    State(state): State<AppState>,
    who: TenantActor,
    path: EntityPath,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path, Action::Edit).await?;
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
    Ok(Json(answer(&state, &who, &entity).await?))
}

async fn delete_one(
    State(state): State<AppState>,
    who: TenantActor,
    path: EntityPath,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = target(&state, &who, &path, Action::Delete).await?;
    state.store.delete_entity(who.tenant, &path.type_name, id, &who.actor, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `Idempotency-Key: <1 to MAX_IDEMPOTENCY_KEY visible ASCII characters>`, if given.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(format!("Idempotency-Key must have 1 to {MAX_IDEMPOTENCY_KEY} characters")));
    }
    Ok(Some(key.to_string()))
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
    path: TypePath,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    allow(&state, &who, &path.type_name, Action::View, false).await?;
    let page = state
        .store
        .query(who.tenant, &who.actor, &path.type_name, &ListRequest::from_pairs(pairs, ListMode::List))
        .await?;
    let defs = titles(&state, &who).await?;
    let mut data: Vec<Value> = page.entities.iter().map(|e| entity_json_titled(e, &defs)).collect();
    state.store.annotate(who.tenant, &who.actor, &mut data, &defs).await?;
    let mut body = json!({ "data": data, "next_cursor": page.next_cursor });
    if let Some(total) = page.total {
        body["total"] = json!(total);
        body["total_exact"] = json!(page.total_exact);
    }
    Ok(Json(body))
}

async fn transitions(
    State(state): State<AppState>,
    who: TenantActor,
    path: EntityPath,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path, Action::View).await?;
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
    path: TransitionPath,
    QueryParams(q): QueryParams<ExecuteQuery>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ExecuteBody>,
) -> Result<Json<TransitionOutcome>, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let if_match = if_match(&headers)?;
    allow(&state, &who, &path.type_name, Action::View, true).await?;
    let id = path.id;
    let input = body.input.unwrap_or_else(|| json!({}));
    let mut outcome = state
        .store
        .transition(
            who.tenant,
            TransitionRequest { type_name: path.type_name.as_str(), id, name: path.name.as_str(), input },
            &who.actor,
            TransitionOptions { idempotency_key, if_match, dry_run: q.dry_run },
        )
        .await?;
    let defs = titles(&state, &who).await?;
    add_display(&mut outcome.entity, &defs);
    state.store.annotate(who.tenant, &who.actor, std::slice::from_mut(&mut outcome.entity), &defs).await?;
    Ok(Json(outcome))
}

async fn history(State(state): State<AppState>, who: TenantActor, path: EntityPath) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path, Action::View).await?;
    let rows: Vec<HistoryEntry> = state.store.history(who.tenant, &path.type_name, id).await?;
    Ok(Json(json!({ "data": rows })))
}

/// Entities read per page when a bulk transition or an export walks a filtered list.
const WALK_PAGE: i64 = 200;
