//! What the database said about a credential, kept between requests.
//!
//! Every request's bearer token is checked against the database (`auth_user`/`auth_api_key`):
//! a deactivated user, an ended session or a revoked key must stop working at once. Asking on
//! every request costs a database transaction of its own, as much Postgres CPU as half a
//! transition. This cache keeps the answers, and stays exact because it is told of every change:
//!
//! * a trigger on `users`, `refresh_tokens`, `api_keys` and `tenants` (migration 0009) sends a
//!   `NOTIFY` on [`CHANNEL_AUTH`] in the changing transaction, whichever process commits it;
//!   the process's listener ([`crate::workers::listener`]) then calls [`AuthCache::invalidate`];
//! * the handlers of this process that change them invalidate right after their commit, so
//!   their own next request never sees the old answer;
//! * the cache is **off** unless a listener is connected ([`AuthCache::set_live`]): a server
//!   without one (tests, tools) or one whose listener lost its connection asks every time;
//! * an answer read before an invalidation is never stored after it: a lookup takes a
//!   [`Ticket`] (the generation) before asking the database, and [`AuthCache::store`] drops the
//!   answer when the generation moved meanwhile;
//! * an entry lives at most [`TTL`], the bound on staleness if a notification were ever lost
//!   without the listener noticing.
//!
//! Only found credentials are kept (an unknown one is asked again), and only what the database
//! returned: the token's signature and expiry, and an API key's secret, are checked on every
//! request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine::store::TenantId;
use uuid::Uuid;

/// The channel of credential changes (payload: the tenant id).
pub const CHANNEL_AUTH: &str = "switchyard_auth";

/// The longest an answer is used.
pub const TTL: Duration = Duration::from_secs(10);

/// How many credentials are kept (the least recently used go first).
pub const CAPACITY: usize = 100_000;

/// A credential, as the database is asked about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `auth_user(tenant, user, session)`.
    User { tenant: TenantId, user: Uuid, session: Option<Uuid> },
    /// `auth_api_key(tenant, key)`.
    ApiKey { tenant: TenantId, key: Uuid },
}

/// What the database answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    User {
        slug: String,
        email: String,
        name: String,
        roles: Vec<String>,
        active: bool,
        session_ok: bool,
        attributes: serde_json::Map<String, serde_json::Value>,
    },
    ApiKey {
        slug: String,
        name: String,
        roles: Vec<String>,
        secret_hash: Vec<u8>,
        revoked: bool,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    answer: Answer,
    generation: u64,
    at: Instant,
}

/// The generation a lookup started in (see [`AuthCache::ticket`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// The process's cache of credential answers. Cheap to share (`Arc`).
pub struct AuthCache {
    entries: quick_cache::sync::Cache<Key, Entry>,
    generation: AtomicU64,
    live: AtomicBool,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("entries", &self.entries.len())
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("live", &self.is_live())
            .finish()
    }
}

impl Default for AuthCache {
    fn default() -> AuthCache {
        AuthCache::new(CAPACITY)
    }
}

impl AuthCache {
    /// An empty cache, off until a listener says it is connected.
    pub fn new(capacity: usize) -> AuthCache {
        AuthCache {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
        }
    }

    /// Whether answers are kept and used (a listener is connected).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Said by the listener: `true` once it listens on [`CHANNEL_AUTH`], `false` when it lost
    /// its connection or stopped. Either way what was kept is dropped (changes may have been
    /// missed while nobody listened).
    pub fn set_live(&self, live: bool) {
        self.invalidate();
        self.live.store(live, Ordering::Release);
        self.invalidate();
    }

    /// Drops every answer: a credential, a user, a session or a tenant changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }

    /// The answer for `key`, if one is kept, current and not older than [`TTL`].
    pub fn get(&self, key: &Key) -> Option<Answer> {
        if !self.is_live() {
            return None;
        }
        let entry = self.entries.get(key)?;
        let current = entry.generation == self.generation.load(Ordering::Acquire) && entry.at.elapsed() < TTL;
        if current {
            Some(entry.answer)
        } else {
            self.entries.remove(key);
            None
        }
    }

    /// Taken before asking the database; hand it to [`AuthCache::store`] with the answer.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// Keeps `answer` unless the cache is off or was invalidated since `ticket` was taken.
    pub fn store(&self, key: Key, answer: Answer, ticket: Ticket) {
        if !self.is_live() || self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        self.entries.insert(key, Entry { answer, generation: ticket.0, at: Instant::now() });
        // An invalidation between the check and the insert: the entry carries the old
        // generation, so `get` never returns it.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::User { tenant: TenantId::from_credential(Uuid::nil()), user: Uuid::nil(), session: None }
    }

    fn answer(active: bool) -> Answer {
        Answer::User {
            slug: "t".into(),
            email: "a@t.test".into(),
            name: "A".into(),
            roles: vec!["admin".into()],
            active,
            session_ok: true,
            attributes: Default::default(),
        }
    }

    #[test]
    fn nothing_is_kept_until_a_listener_is_live() {
        let cache = AuthCache::new(16);
        cache.store(key(), answer(true), cache.ticket());
        assert_eq!(cache.get(&key()), None);
        cache.set_live(true);
        cache.store(key(), answer(true), cache.ticket());
        assert_eq!(cache.get(&key()), Some(answer(true)));
        // Losing the listener drops everything and stops using the cache.
        cache.set_live(false);
        assert_eq!(cache.get(&key()), None);
        cache.set_live(true);
        assert_eq!(cache.get(&key()), None, "what was kept before the listener was lost is gone");
    }

    #[test]
    fn an_answer_read_before_an_invalidation_is_not_stored_after_it() {
        let cache = AuthCache::new(16);
        cache.set_live(true);
        let ticket = cache.ticket();
        // The database answered "active"; meanwhile the user was deactivated and we were told.
        cache.invalidate();
        cache.store(key(), answer(true), ticket);
        assert_eq!(cache.get(&key()), None);
        // A lookup that starts after the invalidation is kept.
        cache.store(key(), answer(false), cache.ticket());
        assert_eq!(cache.get(&key()), Some(answer(false)));
    }

    #[test]
    fn an_invalidation_drops_what_was_kept() {
        let cache = AuthCache::new(16);
        cache.set_live(true);
        cache.store(key(), answer(true), cache.ticket());
        let other = Key::ApiKey { tenant: TenantId::from_credential(Uuid::nil()), key: Uuid::nil() };
        let key_answer = Answer::ApiKey {
            slug: "t".into(),
            name: "ci".into(),
            roles: vec![],
            secret_hash: vec![1, 2],
            revoked: false,
        };
        cache.store(other.clone(), key_answer.clone(), cache.ticket());
        assert_eq!(cache.get(&other), Some(key_answer));
        cache.invalidate();
        assert_eq!(cache.get(&key()), None);
        assert_eq!(cache.get(&other), None);
    }
}
