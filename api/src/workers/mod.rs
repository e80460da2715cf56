//! Background work of a server process: the outbox relay, webhook deliveries, and what wakes
//! them (and the SSE streams): this process's own commits, and Postgres notifications from the
//! other processes.
//!
//! Any number of `switchyard serve` processes may share one database: each runs every worker,
//! and the workers claim work with `FOR UPDATE SKIP LOCKED`, so each item is handled by one of
//! them. Postgres is the only state; wake-ups only save waiting (every worker also polls, so a
//! lost wake-up delays work, never loses it).
//!
//! * [`commits`]: the store's signal after each of this process's commits becomes a wake-up of
//!   the local relay at once, and (at most every 50 ms) a `NOTIFY` for the other processes.
//!   Transitions themselves never notify: a transaction that notifies commits under a
//!   cluster-wide lock.
//! * [`listener`]: one `PgListener` connection per process, fanned out to the process's
//!   workers and SSE streams through the [`EventHub`] (`crate::hub`); it also keeps
//!   the credential cache ([`crate::auth::cache`]) exact, and switches it off while it is not
//!   connected.
//! * [`relay`]: outbox rows (queued by a trigger in their transaction, visible once it commits)
//!   become the tenant's ordered event stream and one webhook delivery per matching webhook.
//! * [`delivery`]: POSTs due deliveries, signed, retried with exponential backoff, dead-lettered.
//! * [`timers`]: fires state timers that came due, as the system actor.
//! * [`housekeeping`]: deletes expired idempotency records, across tenants.

pub mod commits;
pub mod delivery;
pub mod destination;
pub mod housekeeping;
pub mod listener;
pub mod relay;
pub mod sql;
pub mod timers;
pub mod webhooks;

use std::time::Duration;

use engine::store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::OpsConfig;
pub use crate::hub::{EventHub, Wake};

/// How often a worker looks for work when nobody woke it (lost notifications, retries that
/// came due, another process's work after it died).
pub const POLL: Duration = Duration::from_secs(5);

/// Settings of the workers (from [`OpsConfig`]).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub destinations: destination::Destinations,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
    pub poll: Duration,
    /// The least time between two notifications of new events to the other processes.
    pub notify_gap: Duration,
    /// The least time between the starts of two passes of the outbox relay.
    pub relay_gap: Duration,
    /// Idempotency records this old are deleted (`SWITCHYARD_IDEMPOTENCY_TTL`).
    pub idempotency_ttl: Duration,
    /// How often the housekeeping worker looks for them.
    pub housekeeping_every: Duration,
}

impl From<&OpsConfig> for WorkerConfig {
    fn from(c: &OpsConfig) -> WorkerConfig {
        WorkerConfig {
            destinations: destination::Destinations::new(c.webhook_allow.clone()),
            max_attempts: c.webhook_max_attempts,
            backoff: c.webhook_backoff,
            timeout: c.webhook_timeout,
            poll: POLL,
            notify_gap: commits::NOTIFY_GAP,
            relay_gap: relay::RELAY_GAP,
            idempotency_ttl: c.idempotency_ttl,
            housekeeping_every: housekeeping::HOUSEKEEPING_EVERY,
        }
    }
}

/// The running workers of this process.
pub struct Workers {
    tasks: JoinSet<()>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("tasks", &self.tasks.len()).finish()
    }
}

impl Workers {
    /// Starts the commit signals' forwarder, the listener, the relay, the delivery worker, the
    /// timers worker and the housekeeping worker. They stop when [`Workers::stop`] is called or
    /// the hub shuts down.
    pub fn start(store: &Store, hub: &EventHub, config: WorkerConfig) -> Result<Workers, reqwest::Error> {
        let stop = hub.shutdown_token().child_token();
        let client = delivery::client(&config)?;
        let mut tasks = JoinSet::new();
        tasks.spawn(commits::run(store.clone(), hub.clone(), stop.clone(), config.notify_gap));
        tasks.spawn(listener::run(store.pool().clone(), hub.clone(), stop.clone()));
        tasks.spawn(relay::run(store.clone(), hub.clone(), stop.clone(), config.poll, config.relay_gap));
        tasks.spawn(housekeeping::run(store.clone(), stop.clone(), config.idempotency_ttl, config.housekeeping_every));
        tasks.spawn(delivery::run(store.clone(), hub.clone(), stop.clone(), config, client));
        tasks.spawn(timers::run(store.clone(), stop.clone(), timers::TIMER_POLL));
        Ok(Workers { tasks, stop })
    }

    /// Asks every worker to stop after what it is doing, and waits for them (at most `grace`;
    /// then they are aborted: what they held comes back to other workers when its lease ends).
    pub async fn stop(mut self, grace: Duration) {
        self.stop.cancel();
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("workers did not stop in time; aborting them");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}
