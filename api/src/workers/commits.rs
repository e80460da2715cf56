//! What wakes the outbox relays after a write commits.
//!
//! Transitions used to `NOTIFY` from inside their own transaction (the outbox trigger of
//! `migrations/0005_events.sql`). A transaction that has notified takes one cluster-wide lock
//! while it commits, so every write committed one at a time behind every other, whatever its
//! tenant: on 2 cores pgbench ran a plain `begin; insert; commit` at ~7,200 tx/s, and at
//! ~900–1,000 tx/s with a `pg_notify` in it. `migrations/0007_outbox_without_notify.sql` took
//! the notification out; this task replaces it:
//!
//! * **In this process**, the [`Store`] announces each of its commits
//!   ([`Store::subscribe_commits`]) and this task turns them, at once, into [`Wake::Outbox`] on
//!   the hub: the local relay starts within microseconds, and SSE streams and webhook deliveries
//!   follow it as before.
//! * **For the other processes** on the same database, it sends `NOTIFY switchyard_outbox` with
//!   the tenants committed, outside any transition's transaction (one autocommit statement on the
//!   pool), at most once per `gap` (50 ms by default) and only when something was committed. So
//!   at most ~20 notifying commits per second per process take that lock, however many
//!   transitions run. The others need to hear it because this process's relay skips a tenant
//!   that another process's relay is working on (`FOR UPDATE SKIP LOCKED` on the tenant's
//!   stream): that relay must look again after its batch.
//!
//! Why a debounced notification rather than polling faster: a poll of a few milliseconds would
//! run the cross-tenant pending query in every process all the time, busy or idle, and still
//! answer later than the notification; a notification costs nothing when nothing is written.
//! Every relay still polls (`POLL`, 5 s) as the safety net: for lost notifications, and for
//! writers that run no workers (`switchyard tenant apply` loading sample data).

use std::collections::HashSet;
use std::time::Duration;

use engine::store::{Store, TenantId};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::sql::{self, CHANNEL_OUTBOX};
use crate::hub::{EventHub, Wake};

/// The least time between two notifications of this process to the others.
pub const NOTIFY_GAP: Duration = Duration::from_millis(50);

/// Tenants looked up when commit signals were missed.
const TENANTS_ON_LAG: i64 = 1000;

/// Forwards the store's commit signals to the hub and, debounced by `gap`, to the other
/// processes, until `stop`.
pub async fn run(store: Store, hub: EventHub, stop: CancellationToken, gap: Duration) {
    let mut commits = store.subscribe_commits();
    // Tenants committed since the last notification to the other processes.
    let mut unsent: HashSet<TenantId> = HashSet::new();
    let mut next_notify = Instant::now();
    loop {
        let due = !unsent.is_empty();
        tokio::select! {
            () = stop.cancelled() => break,
            received = commits.recv() => {
                let mut fresh = HashSet::new();
                let mut lagged = false;
                match received {
                    Ok(tenant) => {
                        fresh.insert(tenant);
                    }
                    Err(RecvError::Lagged(_)) => lagged = true,
                    // The store (which we hold) keeps the sender: cannot happen.
                    Err(RecvError::Closed) => break,
                }
                // Whatever else is already queued: one wake-up per tenant.
                loop {
                    match commits.try_recv() {
                        Ok(tenant) => {
                            fresh.insert(tenant);
                        }
                        Err(TryRecvError::Lagged(_)) => lagged = true,
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
                if lagged {
                    // Some tenants are unknown: the local relay looks at all of them, and the
                    // others hear of every tenant with events waiting.
                    hub.wake(Wake::Resync);
                    match sql::pending_tenants(store.pool(), TENANTS_ON_LAG).await {
                        Ok(tenants) => unsent.extend(tenants),
                        Err(e) => tracing::warn!(error = %e, "cannot list the tenants with pending events"),
                    }
                }
                for tenant in fresh {
                    hub.wake(Wake::Outbox(tenant));
                    unsent.insert(tenant);
                }
            }
            () = tokio::time::sleep_until(next_notify), if due => {
                notify_others(&store, &mut unsent).await;
                next_notify = Instant::now() + gap;
            }
        }
    }
    // Stopping: what was committed since the last notification is still announced.
    notify_others(&store, &mut unsent).await;
}

/// One `NOTIFY` per tenant in `unsent`, in one statement outside any other transaction. A
/// failure is logged and forgotten: the other processes' relays poll.
async fn notify_others(store: &Store, unsent: &mut HashSet<TenantId>) {
    if unsent.is_empty() {
        return;
    }
    let tenants: Vec<TenantId> = unsent.drain().collect();
    if let Err(e) = sql::notify_all(store.pool(), CHANNEL_OUTBOX, &tenants).await {
        tracing::warn!(error = %e, tenants = tenants.len(), "cannot notify the other processes of new events");
    }
}
