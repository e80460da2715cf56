//! Credentials, without the server's state: access tokens (JWT, HS256, short-lived, signed
//! with [`Keys`]), the opaque refresh tokens and API keys of [`secret`], passwords
//! ([`password`]), rate limits ([`limit`]), the process's cache of the database's answers about
//! credentials ([`cache`]) and the SQL of users, sessions and keys ([`sql`]).
//!
//! A token is checked against the database (the SQL functions `auth_user` and `auth_api_key` of
//! migration 0003, one round trip), whose answer the process keeps until a credential changes
//! ([`cache`]: every change notifies every process): a deactivated user, a signed-out session or
//! a revoked API key stops working at once, and the roles are the user's (or key's) current
//! ones, not those written in the token. Turning a request into an authenticated caller is
//! `crate::extract::principal`'s (it needs `AppState`, which is above this module).

pub mod cache;
pub mod invite;
pub mod limit;
pub mod password;
pub mod secret;
pub mod sql;

use std::sync::Arc;

use chrono::Utc;
use engine::store::TenantId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;

/// How long an access token issued by login or refresh lives.
pub const ACCESS_TTL_SECS: i64 = 15 * 60;
/// How long a refresh token lives (each refresh issues a new one with a new lifetime).
pub const REFRESH_TTL_DAYS: i64 = 30;

/// Clock skew allowed between servers when checking `exp`, `nbf` and `iat`, in seconds.
pub const CLOCK_LEEWAY_SECS: u64 = 5;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The tenant's id and slug.
    pub tid: Uuid,
    pub ten: String,
    pub email: String,
    /// The roles when the token was issued (informative: requests use the current ones).
    pub roles: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    /// Token kind: `access`.
    pub typ: String,
    /// The session (refresh-token family) the token belongs to; signing out ends it. Tokens of
    /// `switchyard token` have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

/// Signing and verification keys. Several secrets may verify (key rotation: the old secret
/// keeps verifying until its tokens expire); the first signs. Tokens name their key in the
/// `kid` header (a fingerprint of the secret, not the secret).
#[derive(Clone)]
pub struct Keys {
    kid: String,
    encoding: EncodingKey,
    verifying: Vec<(String, DecodingKey)>,
    /// Tokens verified lately, by their whole text (signature included), with their claims: a
    /// token presented again is not verified again until it expires (the HMAC, base64 and JSON
    /// of a verification were ~4% of the CPU of a transition over HTTP).
    verified: Arc<quick_cache::sync::Cache<String, Claims>>,
}

/// How many verified tokens [`Keys`] remembers.
const VERIFIED_TOKENS: usize = 4096;

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.kid).field("verifying", &self.verifying.len()).finish()
    }
}

/// The `kid` of a secret: the first 8 hex digits of its sha-256.
fn fingerprint(secret: &[u8]) -> String {
    hex::encode(&Sha256::digest(secret)[..4])
}

impl Keys {
    /// One secret that signs and verifies.
    pub fn from_secret(secret: &[u8]) -> Keys {
        Keys {
            kid: fingerprint(secret),
            encoding: EncodingKey::from_secret(secret),
            verifying: vec![(fingerprint(secret), DecodingKey::from_secret(secret))],
            verified: Arc::new(quick_cache::sync::Cache::new(VERIFIED_TOKENS)),
        }
    }

    /// Several secrets: the first signs, all verify. `None` when there is none.
    pub fn from_secrets<S: AsRef<[u8]>>(secrets: &[S]) -> Option<Keys> {
        let (first, _) = secrets.split_first()?;
        let mut keys = Keys::from_secret(first.as_ref());
        keys.verifying =
            secrets.iter().map(|s| (fingerprint(s.as_ref()), DecodingKey::from_secret(s.as_ref()))).collect();
        Some(keys)
    }

    /// Issues an access token valid for `ttl`, outside any session (the CLI, tests).
    pub fn issue(
        &self,
        tenant: TenantId,
        slug: &str,
        user: &str,
        email: &str,
        roles: &[String],
        ttl: chrono::Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(&Keys::claims(tenant, slug, user, email, roles, ttl, None))
    }

    /// Issues an access token of a login session, valid for [`ACCESS_TTL_SECS`].
    pub fn issue_session(
        &self,
        tenant: TenantId,
        slug: &str,
        user: &str,
        email: &str,
        roles: &[String],
        session: Uuid,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let ttl = chrono::Duration::seconds(ACCESS_TTL_SECS);
        self.sign(&Keys::claims(tenant, slug, user, email, roles, ttl, Some(session)))
    }

    fn claims(
        tenant: TenantId,
        slug: &str,
        user: &str,
        email: &str,
        roles: &[String],
        ttl: chrono::Duration,
        sid: Option<Uuid>,
    ) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            sub: user.to_string(),
            tid: tenant.as_uuid(),
            ten: slug.to_string(),
            email: email.to_string(),
            roles: roles.to_vec(),
            iat: now,
            exp: now + ttl.num_seconds(),
            typ: "access".to_string(),
            sid,
        }
    }

    /// Signs claims with the first secret.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// Checks the signature (with the key its `kid` names, or each key when it names none we
    /// know), the expiry and the kind.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let invalid = || ApiError::unauthorized("the token is invalid or expired");
        let leeway = i64::try_from(CLOCK_LEEWAY_SECS).unwrap_or(0);
        if let Some(claims) = self.verified.get(token) {
            // Verified before; only its expiry can have changed since (as `decode` checks it).
            if claims.exp >= Utc::now().timestamp() - leeway {
                return Ok(claims);
            }
            self.verified.remove(token);
            return Err(invalid());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_LEEWAY_SECS;
        // A token that says it is not valid yet (`nbf`) is refused, within the leeway.
        validation.validate_nbf = true;
        let named = header.kid.as_deref().and_then(|kid| self.verifying.iter().find(|(k, _)| k == kid));
        let candidates: Vec<&DecodingKey> = match named {
            Some((_, key)) => vec![key],
            None => self.verifying.iter().map(|(_, key)| key).collect(),
        };
        let claims = candidates
            .into_iter()
            .find_map(|key| jsonwebtoken::decode::<Claims>(token, key, &validation).ok())
            .ok_or_else(invalid)?
            .claims;
        if claims.typ != "access" {
            return Err(ApiError::unauthorized("not an access token"));
        }
        // Issued in the future (beyond clock skew): not a token this server signed as it is.
        if claims.iat > chrono::Utc::now().timestamp() + leeway {
            return Err(invalid());
        }
        self.verified.insert(token.to_string(), claims.clone());
        Ok(claims)
    }
}

/// What a principal authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a user, maybe of a login session.
    User { id: Uuid, session: Option<Uuid> },
    /// An API key (the actor id is `apikey:<id>`).
    ApiKey { id: Uuid },
}

/// The bearer token of a request.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let missing = || ApiError::unauthorized("missing bearer token");
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(missing)?;
    match header.split_at_checked(7) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer ") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(missing()),
    }
}

/// An access token whose signature, expiry and kind were checked earlier in the request (by
/// the rate limiter, which needs its user), kept in the request's extensions so that
/// authentication does not check it again.
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    pub token: std::sync::Arc<str>,
    pub claims: Claims,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_keys_verify_old_tokens_and_sign_with_the_first() {
        let (old, new) = (
            b"an old secret of at least 32 characters".as_slice(),
            b"a new secret, also 32 characters or more".as_slice(),
        );
        let roles = ["admin".to_string()];
        let tenant = TenantId::generate();
        let ttl = chrono::Duration::minutes(5);
        let before = Keys::from_secret(old).issue(tenant, "t", "u", "e", &roles, ttl).expect("token");
        let rotated = Keys::from_secrets(&[new, old]).expect("keys");
        assert_eq!(rotated.verify(&before).expect("old token").sub, "u");
        let after = rotated.issue(tenant, "t", "u", "e", &roles, ttl).expect("token");
        assert!(Keys::from_secret(new).verify(&after).is_ok());
        assert!(Keys::from_secret(old).verify(&after).is_err());
        // A token without a kid (or with an unknown one) is tried against every key.
        let mut claims = Keys::claims(tenant, "t", "u", "e", &roles, ttl, None);
        claims.sid = Some(Uuid::now_v7());
        let bare = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(old))
            .expect("token");
        assert_eq!(rotated.verify(&bare).expect("no kid").sid, claims.sid);
        assert!(Keys::from_secrets::<&[u8]>(&[]).is_none());
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let keys = Keys::from_secret(b"a secret of at least thirty-two characters");
        let roles = ["admin".to_string()];
        let token =
            keys.issue(TenantId::generate(), "t", "u", "e", &roles, chrono::Duration::minutes(5)).expect("token");
        assert_eq!(keys.verify(&token).expect("valid").sub, "u");
        assert_eq!(keys.verified.len(), 1);
        assert_eq!(keys.verify(&token).expect("remembered").sub, "u");
        // Another signature is another token: verified (and refused), not taken for the first.
        let mut forged = token.clone();
        let last = if forged.ends_with('A') { "B" } else { "A" };
        forged.replace_range(forged.len() - 1.., last);
        assert!(keys.verify(&forged).is_err());
        assert_eq!(keys.verified.len(), 1);
        // The remembered claims expire when the token does.
        let mut claims = keys.verified.get(&token).expect("remembered");
        claims.exp = chrono::Utc::now().timestamp() - i64::try_from(CLOCK_LEEWAY_SECS).unwrap_or(0) - 1;
        keys.verified.insert(token.clone(), claims);
        assert!(keys.verify(&token).is_err());
        assert_eq!(keys.verified.len(), 0);
    }

    /// Tokens that say they were issued, or become valid, in the future (beyond the clock
    /// leeway) are refused; a few seconds of skew are not.
    #[test]
    fn tokens_from_the_future_are_refused() {
        let secret = b"a secret of at least thirty-two characters".as_slice();
        let keys = Keys::from_secret(secret);
        let roles = ["admin".to_string()];
        let sign = |claims: &serde_json::Value| {
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
                .expect("token")
        };
        let now = chrono::Utc::now().timestamp();
        let claims = |iat: i64, nbf: Option<i64>| {
            let mut c = serde_json::to_value(Keys::claims(
                TenantId::generate(),
                "t",
                "u",
                "e",
                &roles,
                chrono::Duration::hours(2),
                None,
            ))
            .expect("claims");
            c["iat"] = iat.into();
            if let Some(nbf) = nbf {
                c["nbf"] = nbf.into();
            }
            c
        };
        assert!(keys.verify(&sign(&claims(now, None))).is_ok());
        assert!(keys.verify(&sign(&claims(now + 3, None))).is_ok(), "within the leeway");
        assert!(keys.verify(&sign(&claims(now + 3600, None))).is_err(), "issued in an hour");
        assert!(keys.verify(&sign(&claims(now, Some(now + 3600)))).is_err(), "not valid for an hour");
        assert!(keys.verify(&sign(&claims(now, Some(now - 10)))).is_ok());
    }
}
