//! Webhooks: which events a webhook wants, how a delivery is signed, and the webhooks of a
//! tenant package.

use engine::store::TenantId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::destination::{DestinationError, Destinations};
use super::sql;

/// Most patterns one webhook may list.
pub const MAX_PATTERNS: usize = 50;
/// Most webhooks one tenant may have.
pub const MAX_WEBHOOKS: i64 = 100;
/// Shortest secret a client may choose.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret a client may choose over the API (`POST …/webhooks`).
pub const MAX_SECRET_LEN: usize = 256;

/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.
pub const SIGNATURE_HEADER: &str = "switchyard-signature";
/// The event's stable id: the same on every attempt and replay (receivers deduplicate on it).
pub const EVENT_ID_HEADER: &str = "switchyard-event-id";
pub const EVENT_TYPE_HEADER: &str = "switchyard-event-type";
pub const DELIVERY_ID_HEADER: &str = "switchyard-delivery-id";
pub const ATTEMPT_HEADER: &str = "switchyard-delivery-attempt";

/// Event name patterns: a name (`order.submitted`), a prefix (`order.*`, which matches
/// `order.submitted` but not `orders.x`), or `*` (everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPatterns {
    /// `None`: everything.
    names: Option<Vec<String>>,
    /// Prefixes with their final dot (`order.`).
    prefixes: Vec<String>,
}

impl EventPatterns {
    /// Everything.
    pub fn all() -> EventPatterns {
        EventPatterns::default()
    }

    /// Parses patterns; an error names the first bad one. An empty list is an error.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<EventPatterns, String> {
        if patterns.is_empty() {
            return Err("at least one event name or pattern is required".into());
        }
        if patterns.len() > MAX_PATTERNS {
            return Err(format!("at most {MAX_PATTERNS} patterns"));
        }
        let mut names = Vec::new();
        let mut prefixes = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p == "*" {
                return Ok(EventPatterns::all());
            }
            let (stem, prefix) = match p.strip_suffix(".*") {
                Some(stem) => (stem, true),
                None => (p, false),
            };
            let valid = !stem.is_empty()
                && stem.len() <= 200
                && stem.split('.').all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            if !valid {
                return Err(format!("`{p}` is not an event name, `prefix.*` or `*`"));
            }
            if prefix {
                prefixes.push(format!("{stem}."));
            } else {
                names.push(stem.to_string());
            }
        }
        Ok(EventPatterns { names: Some(names), prefixes })
    }

    pub fn matches(&self, name: &str) -> bool {
        match &self.names {
            None => true,
            Some(names) => {
                names.iter().any(|n| n == name) || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
            }
        }
    }

    /// Whether a webhook with these patterns is sent an event named `name`: as [`Self::matches`],
    /// except that the built-in `entity.changed` (a change that emits no event of its own, for
    /// live views) goes only to a webhook that names it (`entity.changed` or `entity.*`), not
    /// to `*`.
    pub fn delivers(&self, name: &str) -> bool {
        if name == engine::store::ENTITY_CHANGED {
            return self.names.is_some() && self.matches(name);
        }
        self.matches(name)
    }

    /// For SQL: (exact names, prefixes), both `None` for everything.
    pub fn sql_filter(&self) -> (Option<&[String]>, Option<&[String]>) {
        match &self.names {
            None => (None, None),
            Some(names) => (Some(names.as_slice()), Some(self.prefixes.as_slice())),
        }
    }
}

/// The value of the signature header for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A new signing secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", hex::encode(bytes))
}

/// A webhook declared in a tenant package (`webhooks:` in tenant.yaml). The secret is resolved by
/// the caller (a package kept in git should name an environment variable, not hold the secret).
#[derive(Debug, Clone)]
pub struct PackageWebhook {
    /// Unique in the package; the key that later applies replace by.
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageWebhookError {
    #[error("webhook `{name}`: {message}")]
    Invalid { name: String, message: String },
    #[error("webhook `{name}`: {source}")]
    Destination { name: String, source: DestinationError },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Resolves a package's webhooks before it is published: each secret from the environment
/// variable the package names, each destination checked. Nothing is written.
///
/// Only variables named `SWITCHYARD_WEBHOOK_SECRET_<SLUG>__<NAME>` of the tenant `slug` are read
/// (see [`tenants::validate::webhook_secret_env_problem`]): a tenant's package must not make the
/// server sign with `DATABASE_URL`, the JWT secret or another tenant's secret, nor learn which
/// other variables exist. A variable of that family that is unset, empty or not UTF-8 gets one
/// message.
pub async fn resolve_package_webhooks(
    slug: &str,
    defs: &[tenants::package::WebhookDef],
    destinations: &Destinations,
) -> Result<Vec<PackageWebhook>, PackageWebhookError> {
    let mut out = Vec::with_capacity(defs.len());
    for d in defs {
        let invalid = |message: String| PackageWebhookError::Invalid { name: d.name.clone(), message };
        if let Some(problem) = tenants::validate::webhook_secret_env_problem(slug, &d.secret_env) {
            return Err(invalid(format!("`secret_env` {problem}")));
        }
        let secret = std::env::var(&d.secret_env)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("its secret `{}` is not set on this server", d.secret_env)))?;
        destinations
            .check_url(&d.url)
            .await
            .map_err(|source| PackageWebhookError::Destination { name: d.name.clone(), source })?;
        out.push(PackageWebhook { name: d.name.clone(), url: d.url.clone(), events: d.events.clone(), secret });
    }
    Ok(out)
}

/// Writes resolved package webhooks for a tenant, in their own transaction (after publishing).
pub async fn apply_package_webhooks(
    owner: &sqlx::PgPool,
    tenant: TenantId,
    hooks: &[PackageWebhook],
    destinations: &Destinations,
) -> Result<(), PackageWebhookError> {
    let mut tx = owner.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    upsert_package_webhooks(&mut tx, tenant, hooks, destinations).await?;
    tx.commit().await?;
    Ok(())
}

/// Makes the tenant's package webhooks exactly `hooks`: inserts new names, replaces the URL,
/// events and secret of existing ones, deletes package webhooks no longer listed (webhooks
/// created over the API are left alone). Runs on the caller's connection, inside the
/// transaction that applies the package, with the tenant already set
/// (`set_config('app.tenant_id', …, true)`). Destinations are checked as over the API.
pub async fn upsert_package_webhooks(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    hooks: &[PackageWebhook],
    destinations: &Destinations,
) -> Result<(), PackageWebhookError> {
    let invalid = |name: &str, message: String| PackageWebhookError::Invalid { name: name.to_string(), message };
    for (i, h) in hooks.iter().enumerate() {
        if h.name.trim().is_empty() || hooks[..i].iter().any(|o| o.name == h.name) {
            return Err(invalid(&h.name, "names must be present and unique".into()));
        }
        EventPatterns::parse(&h.events).map_err(|m| invalid(&h.name, m))?;
        if h.secret.len() < MIN_SECRET_LEN {
            return Err(invalid(&h.name, format!("the secret must have at least {MIN_SECRET_LEN} characters")));
        }
        destinations
            .check_url(&h.url)
            .await
            .map_err(|source| PackageWebhookError::Destination { name: h.name.clone(), source })?;
    }
    for h in hooks {
        let w = sql::NewWebhook {
            id: Uuid::now_v7(),
            name: Some(&h.name),
            url: h.url.trim(),
            events: &h.events,
            secret: &h.secret,
            created_by: "package",
        };
        sql::upsert_named_webhook(conn, tenant, w).await?;
    }
    let keep: Vec<String> = hooks.iter().map(|h| h.name.clone()).collect();
    sql::delete_named_webhooks_except(conn, tenant, &keep).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_prefixes_and_everything() {
        let p = EventPatterns::parse(&["order.submitted", "trip.*"]).expect("patterns");
        assert!(p.matches("order.submitted"));
        assert!(!p.matches("order.approved"));
        assert!(p.matches("trip.started"));
        assert!(p.matches("trip.leg.done"));
        assert!(!p.matches("trips.started"));
        assert!(!p.matches("trip"));
        assert!(EventPatterns::parse(&["*"]).expect("all").matches("anything"));
        for bad in ["", "order.", "order*", "a..b", "or der", "*.created"] {
            assert!(EventPatterns::parse(&[bad]).is_err(), "{bad}");
        }
        assert!(EventPatterns::parse::<&str>(&[]).is_err());
    }

    #[test]
    fn entity_changed_goes_only_to_webhooks_that_name_it() {
        let all = EventPatterns::parse(&["*"]).expect("all");
        assert!(all.matches("entity.changed"), "the stream's `*` shows it");
        assert!(!all.delivers("entity.changed"), "a webhook of `*` is not sent it");
        assert!(all.delivers("order.approved"));
        for named in [&["entity.changed"][..], &["order.*", "entity.*"][..]] {
            assert!(EventPatterns::parse(named).expect("named").delivers("entity.changed"), "{named:?}");
        }
        let orders = EventPatterns::parse(&["order.*"]).expect("orders");
        assert!(!orders.delivers("entity.changed"));
        assert!(orders.delivers("order.approved"));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Checked against `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`.
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert!(new_secret().starts_with("whsec_"));
        assert_ne!(new_secret(), new_secret());
    }
}
