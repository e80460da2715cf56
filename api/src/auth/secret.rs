//! Opaque credentials: refresh tokens and API keys.
//!
//! Both carry, in the clear, the tenant and the row id (so the server can set the tenant for
//! row-level security and find the row in one lookup), and a 256-bit random secret of which only
//! the sha-256 is stored:
//!
//! * refresh token: `<tenant>.<id>.<secret>`;
//! * API key: `syk_<tenant>_<id>_<secret>` (the prefix tells it from a JWT at a glance);
//!
//! with the uuids as 32 hex digits and the secret as 64.

use engine::store::TenantId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What every API key starts with.
pub const API_KEY_PREFIX: &str = "syk_";

/// A parsed refresh token or API key.
#[derive(Clone)]
pub struct Opaque {
    /// The tenant the credential names (checked when its secret is looked up in that tenant).
    pub tenant: TenantId,
    pub id: Uuid,
    pub secret: String,
}

impl std::fmt::Debug for Opaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opaque").field("tenant", &self.tenant).field("id", &self.id).finish_non_exhaustive()
    }
}

/// A fresh secret: 32 random bytes (from the OS-seeded CSPRNG), as 64 hex digits.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// What is stored of a secret.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `secret` hashes to `stored` (compared in constant time).
pub fn matches(secret: &str, stored: &[u8]) -> bool {
    hash(secret).ct_eq(stored).into()
}

pub fn refresh_token(tenant: TenantId, id: Uuid, secret: &str) -> String {
    format!("{}.{}.{secret}", tenant.as_uuid().simple(), id.simple())
}

pub fn parse_refresh_token(token: &str) -> Option<Opaque> {
    let mut parts = token.trim().split('.');
    let (tenant, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    parse_parts(tenant, id, secret)
}

pub fn api_key(tenant: TenantId, id: Uuid, secret: &str) -> String {
    format!("{API_KEY_PREFIX}{}_{}_{secret}", tenant.as_uuid().simple(), id.simple())
}

pub fn is_api_key(token: &str) -> bool {
    token.starts_with(API_KEY_PREFIX)
}

pub fn parse_api_key(key: &str) -> Option<Opaque> {
    let rest = key.trim().strip_prefix(API_KEY_PREFIX)?;
    let mut parts = rest.split('_');
    let (tenant, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    parse_parts(tenant, id, secret)
}

pub(crate) fn parse_parts(tenant: &str, id: &str, secret: &str) -> Option<Opaque> {
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex32(tenant) || !hex32(id) || secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Opaque {
        tenant: TenantId::from_credential(Uuid::parse_str(tenant).ok()?),
        id: Uuid::parse_str(id).ok()?,
        secret: secret.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_and_api_keys_round_trip() {
        let (tenant, id, secret) = (TenantId::generate(), Uuid::now_v7(), new_secret());
        let t = parse_refresh_token(&refresh_token(tenant, id, &secret)).expect("refresh token");
        assert_eq!((t.tenant, t.id, t.secret.as_str()), (tenant, id, secret.as_str()));
        let key = api_key(tenant, id, &secret);
        assert!(is_api_key(&key));
        let k = parse_api_key(&key).expect("api key");
        assert_eq!((k.tenant, k.id, k.secret.as_str()), (tenant, id, secret.as_str()));
        assert!(matches(&secret, &hash(&secret)));
        assert!(!matches(&new_secret(), &hash(&secret)));
    }

    #[test]
    fn malformed_credentials_are_refused() {
        let (tenant, id, secret) = (TenantId::generate(), Uuid::now_v7(), new_secret());
        let good = refresh_token(tenant, id, &secret);
        for bad in ["", "a.b.c", &format!("{good}.x"), &good[..good.len() - 1], &good.replace('.', "_")] {
            assert!(parse_refresh_token(bad).is_none(), "{bad}");
        }
        let key = api_key(tenant, id, &secret);
        for bad in ["syk_", &key[..key.len() - 2], &key.replacen("syk_", "sk_", 1), &format!("{key}_x")] {
            assert!(parse_api_key(bad).is_none(), "{bad}");
        }
    }
}
