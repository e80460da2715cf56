//! Bearer tokens (JWT, HS256) and the extractors that turn a request into an authenticated actor
//! of the tenant named in the path.

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use chrono::Utc;
use engine::model::Actor;
use engine::store::TenantId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The tenant's id and slug.
    pub tid: Uuid,
    pub ten: String,
    pub email: String,
    pub roles: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    /// Token kind: `access`.
    pub typ: String,
}

/// Signing and verification keys.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    pub fn from_secret(secret: &[u8]) -> Keys {
        Keys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    /// Issues an access token valid for `ttl`.
    pub fn issue(
        &self,
        tenant: Uuid,
        slug: &str,
        user: &str,
        email: &str,
        roles: &[String],
        ttl: chrono::Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.to_string(),
            tid: tenant,
            ten: slug.to_string(),
            email: email.to_string(),
            roles: roles.to_vec(),
            iat: now,
            exp: now + ttl.num_seconds(),
            typ: "access".to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| ApiError::unauthorized("the token is invalid or expired"))?;
        if data.claims.typ != "access" {
            return Err(ApiError::unauthorized("not an access token"));
        }
        Ok(data.claims)
    }
}

/// An authenticated request: the bearer token's claims.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl<S> FromRequestParts<S> for Authenticated
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        Ok(Authenticated(state.keys.verify(token.trim())?))
    }
}

/// The tenant of the path (`/api/v1/t/{tenant}/…`) and the actor acting in it. A token of
/// another tenant is refused here, before any handler runs.
#[derive(Debug, Clone)]
pub struct TenantActor {
    pub tenant: TenantId,
    pub slug: String,
    pub actor: Actor,
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
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        let Path(path) = Path::<TenantPath>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("no tenant in the path"))?;
        if path.tenant != claims.ten {
            return Err(ApiError::forbidden("this token is not valid for this tenant"));
        }
        tracing::Span::current().record("tenant", claims.ten.as_str());
        Ok(TenantActor {
            tenant: TenantId(claims.tid),
            slug: claims.ten,
            actor: Actor { id: claims.sub, email: claims.email, roles: claims.roles, system: false },
        })
    }
}
