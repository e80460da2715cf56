//! The generic entity API: create, get, list, transitions (list and execute), history.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::store::{
    entity_json, CreateOptions, HistoryEntry, Page, TransitionInfo, TransitionOptions, TransitionOutcome,
    TransitionRequest,
};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::TenantActor;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/t/{tenant}/entities/{type}", post(create).get(list))
        .route("/api/v1/t/{tenant}/entities/{type}/{id}", get(get_one))
        .route("/api/v1/t/{tenant}/entities/{type}/{id}/transitions", get(transitions))
        .route("/api/v1/t/{tenant}/entities/{type}/{id}/transitions/{name}", post(execute))
        .route("/api/v1/t/{tenant}/entities/{type}/{id}/history", get(history))
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
    let entity =
        state.store.create_entity(who.tenant, &path.type_name, body.data, &who.actor, CreateOptions::default()).await?;
    Ok((StatusCode::CREATED, Json(entity_json(&entity))))
}

async fn get_one(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let entity = state.store.get_entity(who.tenant, &path.type_name, parse_id(&path.id)?).await?;
    Ok(Json(entity_json(&entity)))
}

/// Most rows a page may hold.
const MAX_LIMIT: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TypePath>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            json!([{ "path": "/limit", "message": format!("must be between 1 and {MAX_LIMIT}") }]),
        ));
    }
    let cursor = match q.cursor.as_deref() {
        Some(c) => Some(Uuid::parse_str(c).map_err(|_| {
            ApiError::validation(json!([{ "path": "/cursor", "message": "not a cursor of this list" }]))
        })?),
        None => None,
    };
    let page = state.store.list_entities(who.tenant, &path.type_name, q.state.as_deref(), limit, cursor).await?;
    Ok(Json(page))
}

async fn transitions(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let list: Vec<TransitionInfo> =
        state.store.available_transitions(who.tenant, &path.type_name, parse_id(&path.id)?, &who.actor).await?;
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
    Query(q): Query<ExecuteQuery>,
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
    let if_match = match headers.get(axum::http::header::IF_MATCH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(|s| s.trim().trim_matches('"'))
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| ApiError::bad_request("If-Match must be the entity's version number"))?,
        ),
        None => None,
    };
    let input = body.input.unwrap_or_else(|| json!({}));
    let outcome = state
        .store
        .transition(
            who.tenant,
            TransitionRequest { type_name: &path.type_name, id: parse_id(&path.id)?, name: &path.name, input },
            &who.actor,
            TransitionOptions { idempotency_key, if_match, dry_run: q.dry_run },
        )
        .await?;
    Ok(Json(outcome))
}

async fn history(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let rows: Vec<HistoryEntry> = state.store.history(who.tenant, &path.type_name, parse_id(&path.id)?).await?;
    Ok(Json(json!({ "data": rows })))
}
