//! Request authentication: the bearer token of a request (an access token or an API key)
//! becomes a [`Principal`] or, for routes under `/api/v1/t/{tenant}`, a [`TenantActor`] of the
//! path's tenant; [`Admin`] is a tenant actor holding the `admin` role. The tokens themselves
//! (signing, verifying, API key format) are [`crate::auth`]'s; this module adds what needs the
//! server's state: the database's current answer about the credential, through the process's
//! credential cache (`crate::auth::cache`).

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use engine::model::Actor;
use engine::store::{TenantId, TenantSlug};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{bearer, cache, secret, Credential, VerifiedClaims};
use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated request: who, in which tenant, with the roles they hold now.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub slug: TenantSlug,
    pub actor: Actor,
    /// The user's or the API key's name.
    pub name: String,
    pub credential: Credential,
}

/// The tenant a request's path names (`/api/v1/t/{tenant}/…`), parsed once: a token is valid
/// for a request only when its tenant is the path's.
#[derive(Debug, Clone, Copy)]
pub enum PathTenant<'a> {
    /// The route has no tenant in its path (`/api/v1/auth/me`).
    None,
    /// The path's slug.
    Slug(&'a TenantSlug),
    /// A text that is no slug: it names no tenant, so no token is valid for it (403, as for
    /// another tenant's, after the token itself is checked).
    NotASlug,
}

impl PathTenant<'_> {
    /// Whether a credential of the tenant `slug` may act on this path.
    fn admits(&self, slug: &str) -> bool {
        match self {
            PathTenant::None => true,
            PathTenant::Slug(path) => *path == slug,
            PathTenant::NotASlug => false,
        }
    }
}

/// The slug of a tenant as the database has it: a slug (publishing refuses any other), so a
/// failure is the server's 500, not the caller's.
fn stored_slug(slug: &str) -> Result<TenantSlug, ApiError> {
    TenantSlug::parse(slug).map_err(ApiError::internal)
}

/// What the database says of a credential: from the process's credential cache when it has a
/// current answer, else asked (one round trip) and kept.
async fn lookup(state: &AppState, key: cache::Key) -> Result<Option<cache::Answer>, ApiError> {
    let auth = state.ops.hub.auth();
    if let Some(answer) = auth.get(&key) {
        return Ok(Some(answer));
    }
    let ticket = auth.ticket();
    // A read before the request did anything: an unavailable database is `applied: false`.
    let answer =
        crate::auth::sql::credential(state.store.pool(), &key).await.map_err(engine::store::StoreError::unreachable)?;
    if let Some(answer) = &answer {
        auth.store(key, answer.clone(), ticket);
    }
    Ok(answer)
}

/// Authenticates a bearer token (an access token or an API key). With `path_tenant`, a token of
/// another tenant is refused with 403: the tenant the token was issued for (its id), as the
/// database names it now, must be the path's (a token's slug claim refuses early, but is not
/// trusted to accept: a tenant renamed, and its old slug taken by another, must not let old
/// tokens in).
/// `verified` are the token's claims when a layer before (the rate limiter) already checked it.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    path_tenant: PathTenant<'_>,
    verified: Option<&VerifiedClaims>,
) -> Result<Principal, ApiError> {
    let foreign = || ApiError::forbidden("this token is not valid for this tenant");
    if secret::is_api_key(token) {
        let revoked = || ApiError::unauthorized("the API key is invalid or revoked");
        let key = secret::parse_api_key(token).ok_or_else(revoked)?;
        let answer = lookup(state, cache::Key::ApiKey { tenant: key.tenant, key: key.id }).await?;
        let Some(cache::Answer::ApiKey { slug, name, roles, secret_hash, revoked: is_revoked }) = answer else {
            return Err(revoked());
        };
        if !secret::matches(&key.secret, &secret_hash) || is_revoked {
            return Err(revoked());
        }
        if !path_tenant.admits(&slug) {
            return Err(foreign());
        }
        return Ok(Principal {
            tenant: key.tenant,
            slug: stored_slug(&slug)?,
            actor: Actor {
                id: format!("apikey:{}", key.id),
                email: String::new(),
                roles,
                system: false,
                attributes: Default::default(),
            },
            name,
            credential: Credential::ApiKey { id: key.id },
        });
    }
    let claims = match verified.filter(|v| &*v.token == token) {
        Some(v) => v.claims.clone(),
        None => state.keys.verify(token)?,
    };
    // A fast refusal before the database is asked (the slug the token carries); the check that
    // counts is below, against the database.
    if !path_tenant.admits(&claims.ten) {
        return Err(foreign());
    }
    let user = Uuid::parse_str(&claims.sub).map_err(|_| ApiError::unauthorized("the token names no user"))?;
    let answer =
        lookup(state, cache::Key::User { tenant: TenantId::from_credential(claims.tid), user, session: claims.sid })
            .await?;
    let Some(cache::Answer::User { slug, email, name, roles, active, session_ok, attributes }) = answer else {
        return Err(ApiError::unauthorized("the token names no user of this tenant"));
    };
    if !active {
        return Err(ApiError::unauthorized("this user is deactivated"));
    }
    if !session_ok {
        return Err(ApiError::unauthorized("this session has ended; log in again"));
    }
    // The path's tenant is compared with the tenant the token was issued for, as the database
    // names it now (`tid` resolved), not only with the slug the token carries.
    if !path_tenant.admits(&slug) {
        return Err(foreign());
    }
    Ok(Principal {
        tenant: TenantId::from_credential(claims.tid),
        slug: stored_slug(&slug)?,
        actor: Actor { id: claims.sub, email, roles, system: false, attributes },
        name,
        credential: Credential::User { id: user, session: claims.sid },
    })
}

impl<S> FromRequestParts<S> for Principal
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let verified = parts.extensions.get::<VerifiedClaims>();
        let principal = authenticate(&state, bearer(&parts.headers)?, PathTenant::None, verified).await?;
        tracing::Span::current().record("tenant", principal.slug.as_str());
        Ok(principal)
    }
}

/// The tenant of the path (`/api/v1/t/{tenant}/…`) and the actor acting in it. A token of
/// another tenant is refused here, before any handler runs.
#[derive(Debug, Clone)]
pub struct TenantActor {
    pub tenant: TenantId,
    pub slug: TenantSlug,
    pub actor: Actor,
    pub credential: Credential,
}

impl TenantActor {
    pub fn has_role(&self, role: &str) -> bool {
        self.actor.roles.iter().any(|r| r == role)
    }
}

#[derive(Deserialize)]
struct TenantPath {
    tenant: String,
}

impl<S> FromRequestParts<S> for TenantActor
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let token = bearer(&parts.headers)?.to_string();
        let Path(path) = Path::<TenantPath>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("no tenant in the path"))?;
        let slug = TenantSlug::parse(&path.tenant).ok();
        let verified = parts.extensions.get::<VerifiedClaims>();
        let in_path = slug.as_ref().map_or(PathTenant::NotASlug, PathTenant::Slug);
        let p = authenticate(&app, &token, in_path, verified).await?;
        tracing::Span::current().record("tenant", p.slug.as_str());
        Ok(TenantActor { tenant: p.tenant, slug: p.slug, actor: p.actor, credential: p.credential })
    }
}

/// The role that administers a tenant: its users, API keys, webhooks, configuration and the
/// rules playground.
pub const ADMIN_ROLE: &str = "admin";

/// What an [`Admin`] extractor guards: the message of the 403 anyone else gets.
pub trait AdminArea {
    /// The 403's message (`FORBIDDEN`).
    const REFUSAL: &'static str;
    /// Whether the 403 names the role in `details.required_roles`.
    const NAMES_ROLE: bool = false;
}

/// A [`TenantActor`] holding the [`ADMIN_ROLE`]: the one admin check of the API. Anyone else
/// gets 403 `FORBIDDEN` (with `A`'s message) before the body is read.
pub struct Admin<A>(pub TenantActor, pub std::marker::PhantomData<A>);

impl<S, A> FromRequestParts<S> for Admin<A>
where
    AppState: FromRef<S>,
    S: Send + Sync,
    A: AdminArea,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let who = TenantActor::from_request_parts(parts, state).await?;
        if !who.has_role(ADMIN_ROLE) {
            let refusal = ApiError::forbidden(A::REFUSAL);
            return Err(if A::NAMES_ROLE {
                refusal.with_details(serde_json::json!({ "required_roles": [ADMIN_ROLE] }))
            } else {
                refusal
            });
        }
        Ok(Admin(who, std::marker::PhantomData))
    }
}
