//! Invitations over HTTP (see [`crate::auth::invite`]).
//!
//! * `POST /api/v1/t/{tenant}/users/{id}/invite` (admins): a new invitation for the user,
//!   `{token, expires_at, user_id, email}`; the token is shown in this answer only and replaces
//!   the user's earlier invitations. 422 for a deactivated user.
//! * `POST /api/v1/auth/accept-invite` `{token, password}` (no authentication): sets the user's
//!   password (the password rules of users apply) and spends the token; answers
//!   `{tenant, email}`, to log in with. An unknown, spent or expired token is 401, always the
//!   same answer. Rate limited like login: per client IP and per invitation (429 with
//!   `Retry-After`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{invite, password, sql};
use crate::error::ApiError;
use crate::extract::{Admin, AdminArea, ClientIp, JsonBody};
use crate::limits::INVITE_TTL_DAYS;
use crate::openapi::{body, created, date_time, id_param, ok, responses, ADMIN_ONLY};
use crate::routes::{op, Routes};
use crate::state::AppState;

/// Inviting is managing users: for the tenant's admins.
struct Invitations;

impl AdminArea for Invitations {
    const REFUSAL: &'static str = "managing users is for the tenant's admins";
}

pub fn routes() -> Routes {
    Routes::default()
        .post(
            "/api/v1/t/{tenant}/users/{id}/invite",
            invite_user,
            op(|_| {
                json!({ "tags": ["users"], "operationId": "invite_user",
                    "summary": "A new invitation token for the user (shown in this answer only; earlier ones stop working)",
                    "description": format!("{ADMIN_ONLY} The user sets a password with it at `POST /api/v1/auth/accept-invite`, once, within {INVITE_TTL_DAYS} days. 422 for a deactivated user."),
                    "parameters": [id_param("id")],
                    "responses": responses(created(json!({ "type": "object", "required": ["token", "expires_at", "user_id", "email"],
                        "properties": { "token": { "type": "string" }, "expires_at": date_time(),
                            "user_id": { "type": "string", "format": "uuid" }, "email": { "type": "string" } } })), &[401, 403, 404, 422]) })
            }),
        )
        .post(
            "/api/v1/auth/accept-invite",
            accept,
            op(|_| {
                json!({ "tags": ["auth"], "operationId": "accept_invite", "security": [],
                "summary": "Sets the password of an invited user and spends the invitation",
                "description": format!("The token comes from `switchyard user invite` or `POST /users/{{id}}/invite`; it works once, \
                                for {INVITE_TTL_DAYS} days. The password rules of users apply (422 at `/password`). An unknown, used or expired token is 401. Rate limited per client IP \
                                and per invitation (429). The user's sessions end; log in with the answer's tenant and email and \
                                the new password."),
                "requestBody": body(json!({ "type": "object", "required": ["token", "password"], "additionalProperties": false,
                    "properties": { "token": { "type": "string" }, "password": { "type": "string" } } })),
                "responses": responses(ok(json!({ "type": "object", "required": ["tenant", "email"],
                    "properties": { "tenant": { "type": "string" }, "email": { "type": "string" } } })), &[400, 401, 422, 429]) })
            }),
        )
}

fn bad_invitation() -> ApiError {
    ApiError::unauthorized("the invitation is invalid, expired or already used")
}

#[derive(Deserialize)]
struct UserPath {
    id: String,
}

async fn invite_user(
    State(state): State<AppState>,
    Admin(who, _): Admin<Invitations>,
    Path(path): Path<UserPath>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = Uuid::parse_str(&path.id).map_err(|_| ApiError::not_found("user not found"))?;
    let mut tx = state.store.begin(who.tenant).await?;
    let (_, email, _, _, active, ..) =
        sql::user(&mut tx, who.tenant, id).await?.ok_or_else(|| ApiError::not_found("user not found"))?;
    if !active {
        return Err(ApiError::validation(
            json!([{ "path": "/active", "message": "the user is deactivated; activate them first" }]),
        ));
    }
    let invitation = invite::create(&mut tx, who.tenant, id, &who.actor.id).await?;
    tx.commit().await?;
    tracing::info!(tenant.slug = %who.slug, user.id = %id, by = %who.actor.id, "user invited");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": invitation.token, "expires_at": invitation.expires_at, "user_id": id, "email": email,
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    token: String,
    password: String,
}

/// 429 with `Retry-After` (whole seconds, at least 1), as login answers.
fn too_many_attempts(wait: std::time::Duration) -> Response {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many attempts; try again later")
        .with_details(json!({ "retry_after": secs }));
    let mut headers = HeaderMap::new();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    (headers, error).into_response()
}

async fn accept(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<AcceptBody>,
) -> Response {
    let parsed = invite::parse(&body.token);
    // Per IP, and per invitation (a malformed token counts against one shared key).
    let key = parsed.as_ref().map(|t| t.id.simple().to_string()).unwrap_or_default();
    if let Err(wait) = state.ops.login.check(ip, "invitation", &key) {
        tracing::warn!(client.ip = ?ip, "accept-invite rate limited");
        return too_many_attempts(wait);
    }
    match try_accept(&state, parsed, &body.password).await {
        Ok(v) => v.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn try_accept(
    state: &AppState,
    parsed: Option<crate::auth::secret::Opaque>,
    new_password: &str,
) -> Result<Json<Value>, ApiError> {
    let Some(invitation) = parsed else { return Err(bad_invitation()) };
    let tenant = invitation.tenant;
    let mut tx = state.store.begin(tenant).await?;
    let usable = invite::usable(&mut tx, &invitation).await?;
    tx.commit().await?;
    if !usable {
        tracing::info!(invitation.id = %invitation.id, "accept-invite refused");
        return Err(bad_invitation());
    }
    crate::routes::users::check_password(new_password)?;
    let hash = password::hash(new_password).await.map_err(ApiError::internal)?;
    let mut tx = state.store.begin(tenant).await?;
    let Some(accepted) = invite::accept(&mut tx, &invitation, &hash).await? else {
        return Err(bad_invitation());
    };
    tx.commit().await?;
    state.ops.hub.auth().invalidate();
    tracing::info!(tenant.slug = %accepted.slug, user.id = %accepted.user, "invitation accepted");
    Ok(Json(json!({ "tenant": accepted.slug, "email": accepted.email })))
}
