//! The id of a tenant, in a module of its own so that nothing else (not even the rest of
//! [`crate::store`]) can make one from a raw UUID: only its named constructors can.

use serde::Serialize;
use uuid::Uuid;

#[cfg(doc)]
use crate::store::{Store, TenantSlug};

/// A tenant's id, as set for row-level security. Its field is private: a raw UUID becomes one
/// only where the id comes from somewhere that vouches for it, and the way it came is named:
///
/// * read from the database ([`sqlx::Decode`]): the `tenants` table or a row that references it
///   (`tenant_id` columns are foreign keys), e.g. [`Store::tenant_by_slug`] given a
///   [`TenantSlug`] parsed where the slug came in;
/// * [`TenantId::from_notification`]: the payload of a `NOTIFY` the database delivered (sent by
///   Switchyard's statements, which only the owner and request roles can run);
/// * [`TenantId::generate`]: a new tenant's, before its `tenants` row is inserted;
/// * [`TenantId::from_credential`]: the tenant a credential names (a signed access token, or an
///   API key, refresh token or invitation whose secret is then checked in that tenant).
///
/// Never from a request body or a path. SQL binds it as a `uuid` ([`sqlx::Encode`]); logs and
/// metrics print it with [`Display`](std::fmt::Display); [`TenantId::as_uuid`] gives the UUID
/// where one is needed as such (token text, hashing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct TenantId(Uuid);

impl TenantId {
    /// The tenant a credential names: the `tid` claim of an access token whose signature was
    /// checked, or the tenant part of an opaque token (API key, refresh token, invitation) whose
    /// secret is checked against that tenant's rows under row-level security before anything
    /// is granted (a forged tenant part finds no row).
    pub fn from_credential(id: Uuid) -> TenantId {
        TenantId(id)
    }

    /// The tenant a notification names: the payload of a `NOTIFY` that Switchyard's own
    /// statements send on its channels (the tenant id as text). `None` when it is not a UUID.
    pub fn from_notification(payload: &str) -> Option<TenantId> {
        Uuid::parse_str(payload).ok().map(TenantId)
    }

    /// A new id, for a tenant about to be inserted into the `tenants` table (publishing the
    /// first version of a slug that names no tenant yet).
    pub fn generate() -> TenantId {
        TenantId(Uuid::now_v7())
    }

    /// A fixed id, for the engine's unit tests (SQL text and names that contain the id).
    #[cfg(test)]
    pub(crate) fn fixed(id: u128) -> TenantId {
        TenantId(Uuid::from_u128(id))
    }

    /// The id as a UUID.
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_id_prints_binds_and_serializes_as_its_uuid() {
        let id = TenantId::generate();
        assert_eq!(id.to_string(), id.as_uuid().hyphenated().to_string());
        assert_eq!(serde_json::to_value(id).ok(), serde_json::to_value(id.as_uuid()).ok());
        assert_eq!(TenantId::from_notification(&id.to_string()), Some(id));
        assert_eq!(TenantId::from_credential(id.as_uuid()), id);
        assert_ne!(TenantId::generate(), id);
    }

    #[test]
    fn a_notification_that_is_not_a_uuid_names_no_tenant() {
        for payload in ["", "acme", "00000000-0000-0000-0000-00000000000", "1; drop table tenants"] {
            assert_eq!(TenantId::from_notification(payload), None, "{payload:?}");
        }
    }
}
