//! API keys of service accounts, managed by the tenant's admins.
//!
//! * `POST /api/v1/t/{tenant}/api-keys` `{name, roles}` → 201 with the key, shown this once
//!   (only its hash is stored);
//! * `GET /api/v1/t/{tenant}/api-keys`: the keys, without secrets;
//! * `DELETE /api/v1/t/{tenant}/api-keys/{id}`: revokes it; it stops working at once.
//!
//! A key authenticates as `Authorization: Bearer syk_…`, in its tenant only, with its roles; the
//! actor id is `apikey:<id>`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::secret;
use crate::auth::sql::{self, ApiKeyRow};
use crate::error::ApiError;
use crate::extract::{Admin, AdminArea, JsonBody};
use crate::limits::MAX_NAME_CHARS;
use crate::openapi::{
    body, created, data_list, id_param, link, linked, no_content, ok, responses, roles_schema, schema_ref, ADMIN_ONLY,
};
use crate::routes::users::{check_roles, tenant_roles};
use crate::routes::{op, Routes};
use crate::state::AppState;

/// API keys are managed by the tenant's admins.
struct ApiKeys;

impl AdminArea for ApiKeys {
    const REFUSAL: &'static str = "managing API keys is for the tenant's admins";
}

pub fn routes() -> Routes {
    Routes::default()
        .get(
            "/api/v1/t/{tenant}/api-keys",
            list,
            op(|_| {
                json!({ "tags": ["api-keys"], "operationId": "api_keys", "description": ADMIN_ONLY,
                    "responses": responses(ok(data_list(schema_ref("ApiKey"))), &[401, 403]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/api-keys",
            create,
            op(|_| {
                json!({ "tags": ["api-keys"], "operationId": "create_api_key",
                    "description": format!("{ADMIN_ONLY} The key (`key`) is shown in this answer only."),
                    "requestBody": body(json!({ "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                        "name": { "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS }, "roles": roles_schema() } })),
                    "responses": responses(linked(created(schema_ref("ApiKey")), json!({
                        "revoke": link("revoke_api_key", "Revoke the key just made", json!({ "id": "$response.body#/id" })) })),
                        &[400, 401, 403, 422]) })
            }),
        )
        .delete(
            "/api/v1/t/{tenant}/api-keys/{id}",
            revoke,
            op(|_| {
                json!({ "tags": ["api-keys"], "operationId": "revoke_api_key",
                "description": format!("{ADMIN_ONLY} The key stops working at once."),
                "parameters": [id_param("id")],
                "responses": responses(no_content("Revoked"), &[401, 403, 404]) })
            }),
        )
}

fn key_json(r: ApiKeyRow) -> Value {
    let (id, name, roles, created_at, created_by, revoked_at) = r;
    json!({
        "id": id, "name": name, "roles": roles, "actor_id": format!("apikey:{id}"),
        "created_at": created_at, "created_by": created_by, "revoked_at": revoked_at,
    })
}

async fn list(State(state): State<AppState>, Admin(who, ..): Admin<ApiKeys>) -> Result<Json<Value>, ApiError> {
    let mut tx = state.store.begin(who.tenant).await?;
    let rows = sql::list_api_keys(&mut tx, who.tenant).await?;
    tx.commit().await?;
    Ok(Json(json!({ "data": rows.into_iter().map(key_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    roles: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    Admin(who, ..): Admin<ApiKeys>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        let message = format!("must have 1 to {MAX_NAME_CHARS} characters");
        return Err(ApiError::validation(json!([{ "path": "/name", "message": message }])));
    }
    let mut tx = state.store.begin(who.tenant).await?;
    let roles = check_roles(&body.roles, &tenant_roles(&mut tx, who.tenant).await?)?;
    let id = Uuid::now_v7();
    let secret = secret::new_secret();
    let row =
        sql::insert_api_key(&mut tx, who.tenant, id, &name, &roles, &secret::hash(&secret), &who.actor.id).await?;
    tx.commit().await?;
    tracing::info!(tenant.slug = %who.slug, api_key.id = %id, by = %who.actor.id, "API key created");
    let mut out = key_json(row);
    out["key"] = json!(secret::api_key(who.tenant, id, &secret));
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
struct KeyPath {
    id: String,
}

async fn revoke(
    State(state): State<AppState>,
    Admin(who, ..): Admin<ApiKeys>,
    Path(path): Path<KeyPath>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&path.id).map_err(|_| ApiError::not_found("API key not found"))?;
    let mut tx = state.store.begin(who.tenant).await?;
    let found = sql::revoke_api_key(&mut tx, who.tenant, id).await?;
    tx.commit().await?;
    state.ops.hub.auth().invalidate();
    if !found {
        return Err(ApiError::not_found("API key not found"));
    }
    tracing::info!(tenant.slug = %who.slug, api_key.id = %id, by = %who.actor.id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
