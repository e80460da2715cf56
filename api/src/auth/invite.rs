//! Invitations: how a user without a password gets one, without anyone else knowing it.
//!
//! `switchyard user invite` or a tenant admin (`POST /api/v1/t/{tenant}/users/{id}/invite`)
//! makes one; the user sends its token with a new password to
//! `POST /api/v1/auth/accept-invite` (see [`crate::routes::invites`]).
//!
//! An invitation token is `syi_<tenant>_<id>_<secret>` (like an API key, [`super::secret`]): the
//! tenant and id in the clear let the server set the tenant for row-level security before it
//! looks the row up; only sha-256 of the secret is stored (`migrations/0011_invitations.sql`). It
//! expires after [`INVITE_TTL_DAYS`], works once (the statement that sets the password spends
//! it), and a new invitation for the same user replaces the older ones.

use chrono::{DateTime, Utc};
use engine::store::TenantId;
use sqlx::PgConnection;
use uuid::Uuid;

use super::secret::{self, Opaque};
use super::sql;

/// What every invitation token starts with.
pub const PREFIX: &str = "syi_";

/// How long an invitation can be accepted (one of the API's bounds, in `crate::limits`).
pub use crate::limits::INVITE_TTL_DAYS;

/// A new invitation: the token (shown once) and until when it can be accepted.
pub struct Invitation {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

pub fn token(tenant: TenantId, id: Uuid, secret: &str) -> String {
    format!("{PREFIX}{}_{}_{secret}", tenant.as_uuid().simple(), id.simple())
}

pub fn parse(token: &str) -> Option<Opaque> {
    let rest = token.trim().strip_prefix(PREFIX)?;
    let mut parts = rest.split('_');
    let (tenant, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    secret::parse_parts(tenant, id, secret)
}

/// Invites `user` (in a transaction whose tenant is set): older invitations of the user are
/// deleted, so only the newest token works.
pub async fn create(tx: &mut PgConnection, tenant: TenantId, user: Uuid, by: &str) -> Result<Invitation, sqlx::Error> {
    sql::delete_invitations(tx, tenant, user).await?;
    let id = Uuid::now_v7();
    let secret = secret::new_secret();
    let expires_at = sql::insert_invitation(tx, tenant, id, user, &secret::hash(&secret), by, INVITE_TTL_DAYS).await?;
    Ok(Invitation { token: token(tenant, id, &secret), expires_at })
}

/// Whether the invitation can be accepted now (unspent, unexpired, its user active): checked
/// before the slow password hash, and again by [`accept`].
pub async fn usable(tx: &mut PgConnection, invite: &Opaque) -> Result<bool, sqlx::Error> {
    sql::invitation_usable(tx, invite.tenant, invite.id, &secret::hash(&invite.secret)).await
}

/// Who accepted an invitation.
#[derive(Debug)]
pub struct Accepted {
    pub user: Uuid,
    pub email: String,
    pub slug: String,
}

/// Spends the invitation and sets the user's password (one statement), then ends the user's
/// sessions, as a password change by an admin does. `None`: no such invitation, or spent,
/// expired, or its user deactivated.
pub async fn accept(
    tx: &mut PgConnection,
    invite: &Opaque,
    password_hash: &str,
) -> Result<Option<Accepted>, sqlx::Error> {
    let tenant = invite.tenant;
    let hash = secret::hash(&invite.secret);
    let Some((user, email, slug)) = sql::accept_invitation(tx, tenant, invite.id, &hash, password_hash).await? else {
        return Ok(None);
    };
    sql::revoke_user_sessions(tx, tenant, user).await?;
    Ok(Some(Accepted { user, email, slug }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_tokens_round_trip_and_are_not_other_credentials() {
        let (tenant, id, s) = (TenantId::generate(), Uuid::now_v7(), secret::new_secret());
        let t = token(tenant, id, &s);
        let parsed = parse(&t).expect("token");
        assert_eq!((parsed.tenant, parsed.id, parsed.secret.as_str()), (tenant, id, s.as_str()));
        assert!(parse(&secret::api_key(tenant, id, &s)).is_none());
        assert!(parse(&secret::refresh_token(tenant, id, &s)).is_none());
        assert!(parse(&t[..t.len() - 1]).is_none());
        assert!(parse(&format!("{t}_x")).is_none());
        assert!(!secret::is_api_key(&t));
    }
}
