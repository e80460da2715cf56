//! Login, refresh, logout and "who am I".
//!
//! * `POST /api/v1/auth/login` `{tenant, email, password}` → an access token (JWT, 15 min) and a
//!   refresh token (opaque, 30 days) that starts a session. Rate limited per client IP and per
//!   tenant + email (429 with `Retry-After`); every failure has the same answer, and takes as
//!   long whether or not the user exists.
//! * `POST /api/v1/auth/refresh` `{refresh_token}` → a new pair; the old refresh token is spent.
//!   Presenting a spent one again revokes the whole session (it was copied) and is refused.
//! * `POST /api/v1/auth/logout` `{refresh_token}` ends that session; with no body and a bearer
//!   access token, every session of the user. Access tokens of an ended session stop working
//!   at once.
//! * `GET /api/v1/auth/me`: the principal of the bearer token.
//!
//! With the header `X-Refresh-Mode: cookie` (the studio), the refresh token travels in an
//! `HttpOnly` cookie instead of the JSON bodies: see [`cookie`].

pub mod cookie;

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::store::{TenantId, TenantSlug};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::{bearer, password, secret, sql, Credential, ACCESS_TTL_SECS, REFRESH_TTL_DAYS};
use crate::error::ApiError;
use crate::extract::{authenticate, ClientIp, JsonBody, PathTenant, Principal};
use crate::openapi::{body, no_content, ok, responses, roles_schema, schema_ref};
use crate::routes::{op, Routes};
use crate::state::AppState;
use cookie::Source;

pub fn routes() -> Routes {
    password::warm_up();
    Routes::default()
        .post(
            "/api/v1/auth/login",
            login,
            op(|_| {
                json!({ "tags": ["auth"], "operationId": "login", "security": [], "parameters": [refresh_mode()],
                "summary": "A token pair for a user's password (starts a session)",
                "requestBody": body(json!({ "type": "object", "required": ["tenant", "email", "password"], "additionalProperties": false,
                    "properties": { "tenant": { "type": "string" }, "email": { "type": "string" }, "password": { "type": "string" } } })),
                "responses": responses(ok(schema_ref("TokenPair")), &[400, 401, 422, 429]) })
            }),
        )
        .post(
            "/api/v1/auth/refresh",
            refresh,
            op(|_| {
                json!({ "tags": ["auth"], "operationId": "refresh", "security": [], "parameters": [refresh_mode()],
                "summary": "A new token pair; the refresh token is spent (presenting it again ends the session)",
                "description": "In cookie mode the refresh token is the cookie's and the body is ignored (it may be absent).",
                "requestBody": { "required": false, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["refresh_token"], "additionalProperties": false,
                    "properties": { "refresh_token": { "type": "string" } } } } } },
                "responses": responses(ok(schema_ref("TokenPair")), &[400, 401, 422]) })
            }),
        )
        .post(
            "/api/v1/auth/logout",
            logout,
            op(|_| {
                json!({ "tags": ["auth"], "operationId": "logout", "parameters": [refresh_mode()],
                "summary": "Ends the session of `refresh_token`; without it, every session of the bearer's user",
                "description": "Access tokens of an ended session stop working at once. An API key has no session (400).",
                "security": [{}, { "bearer": [] }],
                "requestBody": { "required": false, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "properties": { "refresh_token": { "type": "string" } } } } } },
                "responses": responses(no_content("Signed out"), &[400, 401, 422]) })
            }),
        )
        .get(
            "/api/v1/auth/me",
            me,
            op(|_| {
                json!({ "tags": ["auth"], "operationId": "me", "summary": "The principal of the bearer token",
                "responses": responses(ok(json!({
                    "type": "object", "required": ["id", "kind", "email", "name", "tenant", "tenant_id", "roles"],
                    "properties": {
                        "id": { "type": "string" }, "kind": { "type": "string", "enum": ["user", "api_key"] },
                        "email": { "type": "string" }, "name": { "type": "string" }, "tenant": { "type": "string" },
                        "tenant_id": { "type": "string", "format": "uuid" }, "roles": roles_schema(),
                    } })), &[401]) })
            }),
        )
}

/// The documentation of the header of cookie mode ([`cookie`]).
fn refresh_mode() -> Value {
    json!({ "name": "X-Refresh-Mode", "in": "header", "required": false, "schema": { "type": "string", "enum": ["cookie"] },
            "description": "`cookie`: the refresh token travels in the HttpOnly cookie `switchyard_refresh` (path \
                            `/api/v1/auth`) instead of the JSON bodies; logout clears it" })
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized("invalid tenant, email or password")
}

fn bad_refresh_token() -> ApiError {
    ApiError::unauthorized("the refresh token is invalid, expired or revoked")
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn too_many_attempts(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let error =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many login attempts; try again later")
            .with_details(json!({ "retry_after": secs }));
    let mut headers = HeaderMap::new();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    (headers, error).into_response()
}

/// Adds a refresh token to a session (`family`), or starts one (`None`). Returns the token and
/// its session.
async fn new_refresh_token(
    tx: &mut PgConnection,
    tenant: TenantId,
    user: Uuid,
    family: Option<Uuid>,
) -> Result<(String, Uuid), sqlx::Error> {
    let id = Uuid::now_v7();
    let family = family.unwrap_or(id);
    let secret = secret::new_secret();
    sql::insert_refresh_token(tx, tenant, id, family, user, &secret::hash(&secret), REFRESH_TTL_DAYS as i32).await?;
    Ok((secret::refresh_token(tenant, id, &secret), family))
}

/// What login and refresh hand out.
struct Issued<'a> {
    tenant: TenantId,
    slug: &'a str,
    user: Uuid,
    email: &'a str,
    roles: &'a [String],
    session: Uuid,
    refresh_token: String,
}

/// The answer of login and refresh.
fn token_pair(state: &AppState, issued: Issued<'_>) -> Result<Json<Value>, ApiError> {
    let access = state
        .keys
        .issue_session(issued.tenant, issued.slug, &issued.user.to_string(), issued.email, issued.roles, issued.session)
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "access_token": access,
        "refresh_token": issued.refresh_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL_SECS,
        "refresh_expires_in": REFRESH_TTL_DAYS * 24 * 3600,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    tenant: String,
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Response {
    if let Err(wait) = state.ops.login.check(ip, &body.tenant, &body.email) {
        tracing::warn!(tenant.slug = %body.tenant, client.ip = ?ip, "login rate limited");
        return too_many_attempts(wait);
    }
    match try_login(&state, ip, &body).await {
        Ok(pair) if cookie::wanted(&headers) => cookie::into_cookie(pair),
        Ok(pair) => pair.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn try_login(state: &AppState, ip: Option<IpAddr>, body: &LoginBody) -> Result<Json<Value>, ApiError> {
    // A text that is no slug names no tenant: refused like an unknown one (after the same work).
    let slug = TenantSlug::parse(body.tenant.trim()).ok();
    let tenant = match &slug {
        Some(slug) => state.store.tenant_by_slug(slug).await?,
        None => None,
    };
    let user = match tenant {
        Some(tenant) => {
            let mut tx = state.store.begin(tenant).await?;
            let row = sql::login_user(&mut tx, tenant, body.email.trim()).await?;
            tx.commit().await?;
            row
        }
        None => None,
    };
    let stored = user.as_ref().and_then(|u| u.4.as_deref());
    let password_ok = body.password.len() <= password::MAX_LEN && password::verify(&body.password, stored).await;
    let (Some(tenant), Some(slug), Some((user_id, email, roles, active, _))) = (tenant, slug, user) else {
        tracing::info!(tenant.slug = %body.tenant, client.ip = ?ip, "login failed: no such tenant or user");
        return Err(bad_credentials());
    };
    if !password_ok || !active {
        tracing::info!(tenant.slug = %body.tenant, user.id = %user_id, client.ip = ?ip, active, "login failed");
        return Err(bad_credentials());
    }
    let mut tx = state.store.begin(tenant).await?;
    // Expired tokens are of no use any more, not even to detect reuse: the user's go now.
    sql::delete_expired_refresh_tokens(&mut tx, tenant, user_id).await?;
    let (refresh_token, session) = new_refresh_token(&mut tx, tenant, user_id, None).await?;
    tx.commit().await?;
    tracing::info!(tenant.slug = %slug, user.id = %user_id, session = %session, "login");
    token_pair(
        state,
        Issued { tenant, slug: &slug, user: user_id, email: &email, roles: &roles, session, refresh_token },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// A refresh token's row, locked.
struct RefreshRow {
    family: Uuid,
    user: Uuid,
    expired: bool,
    used: bool,
    revoked: bool,
}

async fn lock_refresh_token(tx: &mut PgConnection, token: &secret::Opaque) -> Result<Option<RefreshRow>, ApiError> {
    let row = sql::lock_refresh_token(tx, token.tenant, token.id).await?;
    Ok(row
        .filter(|r| secret::matches(&token.secret, &r.2))
        .map(|(family, user, _, expired, used, revoked)| RefreshRow { family, user, expired, used, revoked }))
}

async fn refresh(State(state): State<AppState>, source: Source<RefreshBody>) -> Response {
    match source {
        Source::Body(body) => try_refresh(&state, &body.refresh_token).await.into_response(),
        Source::Cookie(token) => {
            match try_refresh(&state, token.as_deref().unwrap_or_default()).await {
                Ok(pair) => cookie::into_cookie(pair),
                // A refused cookie is of no use any more: the browser drops it.
                Err(e) => cookie::with_cleared(e.into_response()),
            }
        }
    }
}

async fn try_refresh(state: &AppState, refresh_token: &str) -> Result<Json<Value>, ApiError> {
    let token = secret::parse_refresh_token(refresh_token).ok_or_else(bad_refresh_token)?;
    let tenant = token.tenant;
    let mut tx = state.store.begin(tenant).await?;
    let row = lock_refresh_token(&mut tx, &token).await?.ok_or_else(bad_refresh_token)?;
    if row.revoked || row.expired {
        return Err(bad_refresh_token());
    }
    if row.used {
        // A spent token presented again: someone else has a copy. End the session for everyone.
        sql::revoke_family(&mut tx, token.tenant, row.family).await?;
        tx.commit().await?;
        state.ops.hub.auth().invalidate();
        tracing::warn!(tenant.id = %token.tenant, user.id = %row.user, session = %row.family, "refresh token reused: session revoked");
        return Err(ApiError::unauthorized("this refresh token was already used; the session is revoked"));
    }
    let user = sql::session_user(&mut tx, token.tenant, row.user).await?;
    let Some((slug, email, roles, true)) = user else {
        sql::revoke_family(&mut tx, token.tenant, row.family).await?;
        tx.commit().await?;
        state.ops.hub.auth().invalidate();
        return Err(bad_refresh_token());
    };
    sql::mark_refresh_token_used(&mut tx, token.tenant, token.id).await?;
    let (next, session) = new_refresh_token(&mut tx, token.tenant, row.user, Some(row.family)).await?;
    tx.commit().await?;
    token_pair(
        state,
        Issued {
            tenant: token.tenant,
            slug: &slug,
            user: row.user,
            email: &email,
            roles: &roles,
            session,
            refresh_token: next,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, source: Source<LogoutBody>) -> Response {
    match source {
        Source::Body(body) => try_logout(&state, &headers, body.refresh_token).await.into_response(),
        // Cookie mode: the cookie's session (or, without one, every session of the bearer's
        // user); the cookie is cleared whatever the outcome.
        Source::Cookie(token) => cookie::with_cleared(try_logout(&state, &headers, token).await.into_response()),
    }
}

async fn try_logout(
    state: &AppState,
    headers: &HeaderMap,
    refresh_token: Option<String>,
) -> Result<StatusCode, ApiError> {
    if let Some(refresh_token) = refresh_token {
        let token = secret::parse_refresh_token(&refresh_token).ok_or_else(bad_refresh_token)?;
        let mut tx = state.store.begin(token.tenant).await?;
        let row = lock_refresh_token(&mut tx, &token).await?.ok_or_else(bad_refresh_token)?;
        sql::revoke_family(&mut tx, token.tenant, row.family).await?;
        tx.commit().await?;
        state.ops.hub.auth().invalidate();
        tracing::info!(tenant.id = %token.tenant, user.id = %row.user, session = %row.family, "logout");
        return Ok(StatusCode::NO_CONTENT);
    }
    // No refresh token: every session of the bearer's user.
    let principal = authenticate(state, bearer(headers)?, PathTenant::None, None).await?;
    let Credential::User { id, .. } = principal.credential else {
        return Err(ApiError::bad_request("an API key has no session; revoke it with DELETE /api-keys/{id}"));
    };
    let mut tx = state.store.begin(principal.tenant).await?;
    let ended = sql::revoke_user_sessions(&mut tx, principal.tenant, id).await?;
    tx.commit().await?;
    state.ops.hub.auth().invalidate();
    tracing::info!(tenant.slug = %principal.slug, user.id = %id, tokens = ended, "logout everywhere");
    Ok(StatusCode::NO_CONTENT)
}

async fn me(principal: Principal) -> Json<Value> {
    let kind = match principal.credential {
        Credential::User { .. } => "user",
        Credential::ApiKey { .. } => "api_key",
    };
    Json(json!({
        "id": principal.actor.id,
        "kind": kind,
        "email": principal.actor.email,
        "name": principal.name,
        "tenant": principal.slug,
        "tenant_id": principal.tenant.as_uuid(),
        "roles": principal.actor.roles,
    }))
}
