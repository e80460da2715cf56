//! A tenant's users and their roles, managed by the tenant's admins.
//!
//! * `GET  /api/v1/t/{tenant}/users`: every user (no password hashes, ever);
//! * `POST /api/v1/t/{tenant}/users` `{email, name?, roles, password?, active?, attributes?}`:
//!   create (invite); roles must be roles of the tenant's live configuration, attributes its
//!   declared `user_attributes` (422 at `/attributes/<name>`);
//! * `GET  /api/v1/t/{tenant}/users/{id}`;
//! * `PATCH /api/v1/t/{tenant}/users/{id}` `{name?, roles?, active?, password?, attributes?}`. A
//!   deactivated user's tokens stop working at once and their sessions end; role and attribute
//!   changes apply to tokens already issued (each request reads the current user). A new
//!   password ends the sessions. `attributes` replaces the user's whole set.
//! * `GET /api/v1/t/{tenant}/user-choices?role=R`: for any signed-in user of the tenant (not only
//!   admins), the id, name and e-mail of the active users having role `R` (of every active user
//!   without `role`): what a form offers for a user field (`type: user, role: R`).

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::store::TenantId;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use tenants::package::{attribute_problems, UserAttributeDef};
use uuid::Uuid;

use crate::auth::sql::{self, NewUser, UserChange, UserRow};
use crate::auth::{password, Credential};
use crate::error::ApiError;
use crate::extract::{Admin, AdminArea, JsonBody, QueryParams, TenantActor, ADMIN_ROLE};
use crate::limits::{MAX_NAME_CHARS, USER_CHOICES_MAX};
use crate::openapi::{
    body, created, data_list, id_param, link, linked, ok, responses, roles_schema, schema_ref, ADMIN_ONLY,
};
use crate::routes::{op, Routes};
use crate::state::AppState;

/// The users of a tenant are managed by its admins.
struct Users;

impl AdminArea for Users {
    const REFUSAL: &'static str = "managing users is for the tenant's admins";
}

pub fn routes() -> Routes {
    Routes::default()
        .get(
            "/api/v1/t/{tenant}/user-choices",
            choices,
            op(|_| {
                json!({ "tags": ["users"], "operationId": "user_choices",
                    "summary": "The users a user field may hold: the active users having a role",
                    "description": format!("Open to every signed-in user of the tenant (a form's choices for a \
                        `type: user` field), it answers only the id, name and e-mail of active users, by name, at most \
                        {USER_CHOICES_MAX}. `role` must be a role of the tenant (422 at `/role`); without it, every \
                        active user."),
                    "parameters": [
                        { "name": "role", "in": "query", "schema": { "type": "string" }, "description": "Only users having this role" } ],
                    "responses": responses(ok(data_list(schema_ref("UserChoice"))), &[400, 401, 403, 422]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/users",
            list,
            op(|_| {
                json!({ "tags": ["users"], "operationId": "users", "description": ADMIN_ONLY,
                    "responses": responses(linked(ok(data_list(schema_ref("User"))), user_links("$response.body#/data/0/id")),
                        &[401, 403]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/users",
            create,
            op(|_| {
                json!({ "tags": ["users"], "operationId": "create_user", "description": ADMIN_ONLY,
                    "summary": "Creates (invites) a user; 409 ALREADY_EXISTS for a known email",
                    "requestBody": body(json!({ "type": "object", "required": ["email"], "additionalProperties": false, "properties": {
                        "email": { "type": "string", "format": "email" }, "name": { "type": "string", "maxLength": MAX_NAME_CHARS },
                        "roles": roles_schema(), "password": { "type": "string" }, "active": { "type": "boolean" },
                        "attributes": attributes_schema() } })),
                    "responses": responses(linked(created(schema_ref("User")), user_links("$response.body#/id")),
                        &[400, 401, 403, 409, 422]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/users/{id}",
            get_one,
            op(|_| {
                json!({ "tags": ["users"], "operationId": "get_user", "description": ADMIN_ONLY,
                    "parameters": [id_param("id")],
                    "responses": responses(linked(ok(schema_ref("User")), user_links("$response.body#/id")), &[401, 403, 404]) })
            }),
        )
        .patch(
            "/api/v1/t/{tenant}/users/{id}",
            update,
            op(|_| {
                json!({ "tags": ["users"], "operationId": "update_user",
                    "summary": "Changes a user: deactivating ends their sessions and stops their tokens at once; role and attribute changes apply to tokens already issued",
                    "description": format!("{ADMIN_ONLY} Admins cannot deactivate themselves or drop their own `admin` role (422)."),
                    "parameters": [id_param("id")],
                    "requestBody": body(json!({ "type": "object", "additionalProperties": false, "properties": {
                        "name": { "type": "string", "maxLength": MAX_NAME_CHARS }, "roles": roles_schema(),
                        "active": { "type": "boolean" }, "password": { "type": "string" },
                        "attributes": attributes_schema() } })),
                    "responses": responses(linked(ok(schema_ref("User")), user_links("$response.body#/id")),
                        &[400, 401, 403, 404, 422]) })
            }),
        )
}

/// The links from an answer naming a user at `id` (a runtime expression) to the operations on it.
fn user_links(id: &str) -> Value {
    json!({
        "get": link("get_user", "The user", json!({ "id": id })),
        "update": link("update_user", "Change the user", json!({ "id": id })),
        "invite": link("invite_user", "A new invitation for the user", json!({ "id": id })),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoicesQuery {
    role: Option<String>,
}

/// `GET …/user-choices?role=R`: see the module documentation.
async fn choices(
    State(state): State<AppState>,
    who: TenantActor,
    QueryParams(q): QueryParams<ChoicesQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(role) = &q.role {
        let mut tx = state.store.begin(who.tenant).await?;
        let known = tenant_roles(&mut tx, who.tenant).await?;
        tx.commit().await?;
        if !known.contains(role) {
            return Err(ApiError::validation(
                json!([{ "path": "/role", "message": format!("`{role}` is not a role of this tenant") }]),
            ));
        }
    }
    let users = state.store.user_choices(who.tenant, q.role.as_deref(), USER_CHOICES_MAX).await?;
    let data: Vec<Value> = users.iter().map(|u| json!({ "id": u.id, "name": u.name, "email": u.email })).collect();
    Ok(Json(json!({ "data": data })))
}

/// The request schema of a user's attributes.
fn attributes_schema() -> Value {
    json!({ "type": "object", "additionalProperties": true,
        "description": "Values of the tenant's declared `user_attributes` (by name; a reference is an entity id), read by rules as `actor.attributes.<name>`. Replaces the user's whole set; an undeclared name or a value of the wrong kind is a 422 at `/attributes/<name>`." })
}

/// Checks attributes against the live configuration's `user_attributes` (errors at
/// `/attributes/<name>`).
async fn check_attributes(
    tx: &mut PgConnection,
    tenant: TenantId,
    values: &Map<String, Value>,
) -> Result<(), ApiError> {
    if values.is_empty() {
        return Ok(());
    }
    let declared: IndexMap<String, UserAttributeDef> = match sql::tenant_user_attributes(tx, tenant).await? {
        Some(v) => serde_json::from_value(v).map_err(ApiError::internal)?,
        None => IndexMap::new(),
    };
    let errors: Vec<Value> = attribute_problems(&declared, values)
        .into_iter()
        .map(|(pointer, message)| json!({ "path": format!("/attributes{pointer}"), "message": message }))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(json!(errors)))
    }
}

/// The roles of the tenant's live configuration.
pub(crate) async fn tenant_roles(tx: &mut PgConnection, tenant: TenantId) -> Result<HashSet<String>, ApiError> {
    Ok(sql::tenant_roles(tx, tenant).await?.into_iter().collect())
}

/// Checks that every role is one of the tenant's (errors at `/roles/<i>`), without duplicates.
pub(crate) fn check_roles(roles: &[String], known: &HashSet<String>) -> Result<Vec<String>, ApiError> {
    let mut errors = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        if !known.contains(role) {
            let mut list: Vec<&String> = known.iter().collect();
            list.sort();
            errors.push(json!({ "path": format!("/roles/{i}"), "message": format!("`{role}` is not a role of this tenant (roles: {list:?})") }));
        } else if !out.contains(role) {
            out.push(role.clone());
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::validation(json!(errors)))
    }
}

fn check_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    let ok = (3..=254).contains(&email.len())
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(email.to_string())
    } else {
        Err(ApiError::validation(json!([{ "path": "/email", "message": "must be an email address" }])))
    }
}

/// The password rules (length, in characters and bytes), for creating a user and accepting an
/// invitation alike.
pub(crate) fn check_password(p: &str) -> Result<(), ApiError> {
    let n = p.chars().count();
    if (password::MIN_LEN..=password::MAX_LEN).contains(&n) && p.len() <= password::MAX_LEN {
        Ok(())
    } else {
        Err(ApiError::validation(json!([{
            "path": "/password",
            "message": format!("must have {} to {} characters", password::MIN_LEN, password::MAX_LEN),
        }])))
    }
}

fn check_name(name: &str, path: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.chars().count() <= MAX_NAME_CHARS {
        Ok(name.to_string())
    } else {
        Err(ApiError::validation(
            json!([{ "path": path, "message": format!("must have at most {MAX_NAME_CHARS} characters") }]),
        ))
    }
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found("user not found"))
}

fn user_json(r: UserRow) -> Value {
    let (id, email, name, roles, active, has_password, created_at, updated_at, attributes) = r;
    json!({
        "id": id, "email": email, "name": name, "roles": roles, "active": active,
        "has_password": has_password, "created_at": created_at, "updated_at": updated_at,
        "attributes": attributes.0,
    })
}

async fn list(State(state): State<AppState>, Admin(who, ..): Admin<Users>) -> Result<Json<Value>, ApiError> {
    let mut tx = state.store.begin(who.tenant).await?;
    let rows = sql::list_users(&mut tx, who.tenant).await?;
    tx.commit().await?;
    Ok(Json(json!({ "data": rows.into_iter().map(user_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
struct UserPath {
    id: String,
}

async fn get_one(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Users>,
    Path(path): Path<UserPath>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&path.id)?;
    let mut tx = state.store.begin(who.tenant).await?;
    let row = sql::user(&mut tx, who.tenant, id).await?;
    tx.commit().await?;
    row.map(|r| Json(user_json(r))).ok_or_else(|| ApiError::not_found("user not found"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    attributes: Map<String, Value>,
}

fn yes() -> bool {
    true
}

async fn create(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Users>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let email = check_email(&body.email)?;
    let name = check_name(&body.name, "/name")?;
    let hash = match &body.password {
        Some(p) => {
            check_password(p)?;
            Some(password::hash(p).await.map_err(ApiError::internal)?)
        }
        None => None,
    };
    let mut tx = state.store.begin(who.tenant).await?;
    let roles = check_roles(&body.roles, &tenant_roles(&mut tx, who.tenant).await?)?;
    check_attributes(&mut tx, who.tenant, &body.attributes).await?;
    let new = NewUser {
        email: &email,
        name: &name,
        roles: &roles,
        active: body.active,
        password_hash: hash,
        attributes: &body.attributes,
    };
    let row = sql::insert_user(&mut tx, who.tenant, new).await?;
    let Some(row) = row else {
        return Err(ApiError::new(StatusCode::CONFLICT, "ALREADY_EXISTS", "a user with this email exists")
            .with_details(json!({ "email": email })));
    };
    tx.commit().await?;
    tracing::info!(tenant.slug = %who.slug, user.id = %row.0, by = %who.actor.id, "user created");
    Ok((StatusCode::CREATED, Json(user_json(row))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
}

async fn update(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Users>,
    Path(path): Path<UserPath>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&path.id)?;
    let name = body.name.as_deref().map(|n| check_name(n, "/name")).transpose()?;
    // An admin cannot lock themselves out.
    if matches!(who.credential, Credential::User { id: me, .. } if me == id) {
        if body.active == Some(false) {
            return Err(ApiError::validation(
                json!([{ "path": "/active", "message": "you cannot deactivate yourself" }]),
            ));
        }
        if body.roles.as_ref().is_some_and(|r| !r.iter().any(|r| r == ADMIN_ROLE)) {
            return Err(ApiError::validation(
                json!([{ "path": "/roles", "message": "you cannot remove your own admin role" }]),
            ));
        }
    }
    let hash = match &body.password {
        Some(p) => {
            check_password(p)?;
            Some(password::hash(p).await.map_err(ApiError::internal)?)
        }
        None => None,
    };
    let mut tx = state.store.begin(who.tenant).await?;
    let roles = match &body.roles {
        Some(r) => Some(check_roles(r, &tenant_roles(&mut tx, who.tenant).await?)?),
        None => None,
    };
    if let Some(attributes) = &body.attributes {
        check_attributes(&mut tx, who.tenant, attributes).await?;
    }
    let change = UserChange { name, roles, active: body.active, password_hash: &hash, attributes: body.attributes };
    let row = sql::update_user(&mut tx, who.tenant, id, change).await?;
    let row = row.ok_or_else(|| ApiError::not_found("user not found"))?;
    if body.active == Some(false) || hash.is_some() {
        sql::revoke_user_sessions(&mut tx, who.tenant, id).await?;
    }
    tx.commit().await?;
    state.ops.hub.auth().invalidate();
    tracing::info!(tenant.slug = %who.slug, user.id = %id, by = %who.actor.id, "user updated");
    Ok(Json(user_json(row)))
}
