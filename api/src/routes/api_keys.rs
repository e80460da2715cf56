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
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{secret, TenantActor};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::users::{check_roles, require_admin, tenant_roles};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/t/{tenant}/api-keys", get(list).post(create))
        .route("/api/v1/t/{tenant}/api-keys/{id}", delete(revoke))
}

const COLUMNS: &str = "id, name, roles, created_at, created_by, revoked_at";

type Row = (Uuid, String, Vec<String>, DateTime<Utc>, String, Option<DateTime<Utc>>);

fn key_json(r: Row) -> Value {
    let (id, name, roles, created_at, created_by, revoked_at) = r;
    json!({
        "id": id, "name": name, "roles": roles, "actor_id": format!("apikey:{id}"),
        "created_at": created_at, "created_by": created_by, "revoked_at": revoked_at,
    })
}

async fn list(State(state): State<AppState>, who: TenantActor) -> Result<Json<Value>, ApiError> {
    require_admin(&who, "managing API keys")?;
    let mut tx = state.store.begin(who.tenant).await?;
    let rows: Vec<Row> = sqlx::query_as(&format!("select {COLUMNS} from api_keys where tenant_id = $1 order by id"))
        .bind(who.tenant.0)
        .fetch_all(&mut *tx)
        .await?;
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
    who: TenantActor,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_admin(&who, "managing API keys")?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::validation(json!([{ "path": "/name", "message": "must have 1 to 200 characters" }])));
    }
    let mut tx = state.store.begin(who.tenant).await?;
    let roles = check_roles(&body.roles, &tenant_roles(&mut tx, who.tenant).await?)?;
    let id = Uuid::now_v7();
    let secret = secret::new_secret();
    let row: Row = sqlx::query_as(&format!(
        "insert into api_keys (tenant_id, id, name, roles, secret_hash, created_by) values ($1, $2, $3, $4, $5, $6) \
         returning {COLUMNS}"
    ))
    .bind(who.tenant.0)
    .bind(id)
    .bind(&name)
    .bind(&roles)
    .bind(secret::hash(&secret))
    .bind(&who.actor.id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(tenant.slug = %who.slug, api_key.id = %id, by = %who.actor.id, "API key created");
    let mut out = key_json(row);
    out["key"] = json!(secret::api_key(who.tenant.0, id, &secret));
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
struct KeyPath {
    id: String,
}

async fn revoke(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<KeyPath>,
) -> Result<StatusCode, ApiError> {
    require_admin(&who, "managing API keys")?;
    let id = Uuid::parse_str(&path.id).map_err(|_| ApiError::not_found("API key not found"))?;
    let mut tx = state.store.begin(who.tenant).await?;
    let found: Option<bool> = sqlx::query_scalar(
        "update api_keys set revoked_at = coalesce(revoked_at, now()) where tenant_id = $1 and id = $2 returning true",
    )
    .bind(who.tenant.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    state.ops.hub.auth().invalidate();
    if found.is_none() {
        return Err(ApiError::not_found("API key not found"));
    }
    tracing::info!(tenant.slug = %who.slug, api_key.id = %id, by = %who.actor.id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
