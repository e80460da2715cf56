//! The outbox relay: committed outbox rows become the tenant's event stream and its webhook
//! deliveries.
//!
//! Per tenant, in one transaction: lock the tenant's `event_streams` row (`FOR UPDATE SKIP
//! LOCKED`: if another process holds it, that process is relaying this tenant and we move on),
//! take a batch of `outbox_pending` rows in id order, give them the next positions, queue one
//! delivery per matching webhook, delete the pending rows, notify, commit. Positions therefore
//! become visible in order, and each outbox row is relayed exactly once.

use std::collections::HashSet;
use std::time::Duration;

use engine::store::{Store, TenantId};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::sql::{self, NewDeliveries, CHANNEL_EVENTS, CHANNEL_WEBHOOKS};
use super::webhooks::EventPatterns;
use crate::hub::{EventHub, Wake};

/// Outbox rows relayed per transaction.
pub const BATCH: i64 = 500;
/// Tenants looked at per round.
const TENANTS_PER_ROUND: i64 = 1000;

/// The least time from the start of one pass to the start of the next. A pass costs two or more
/// database transactions (the pending tenants, then one per tenant) whatever it relays; woken by
/// every commit, the relay of a busy server ran a pass every few transitions (~0.3 extra database
/// transactions per transition, the `serve` rows of docs/benchmarks.md). Waiting out the gap
/// gathers a busy moment's commits into one pass: at 50 ms, at most ~40 relay transactions a
/// second per tenant relayed, whatever the load. After a quiet moment the first commit is still
/// relayed at once; under load an event reaches the stream at most this much later.
pub const RELAY_GAP: Duration = Duration::from_millis(50);

pub async fn run(store: Store, hub: EventHub, stop: CancellationToken, poll: Duration, gap: Duration) {
    let mut rx = hub.subscribe();
    // The first pass, and one at least every `poll`, looks at every tenant with pending rows (a
    // wake-up can be lost: a listener reconnecting, a process killed between its commit and its
    // notice). The passes in between relay only the tenants whose commits woke the relay: no
    // query across tenants, one transaction per tenant relayed.
    let mut scope = Scope::All;
    let mut last_full = tokio::time::Instant::now();
    loop {
        let started = tokio::time::Instant::now();
        // The pass below reads every row committed before it starts, so the wake-ups queued
        // until now are all answered by it: under load this is one pass per batch of commits,
        // not one per commit.
        drain(&mut rx, &mut scope);
        if started >= last_full + poll {
            scope = Scope::All;
        }
        let pass = match std::mem::take(&mut scope) {
            Scope::All => {
                last_full = started;
                relay_all(&store, &hub).await
            }
            Scope::Tenants(tenants) => relay_tenants(&store, &hub, tenants).await,
            Scope::Nothing => Ok(0),
        };
        if let Err(e) = pass {
            tracing::warn!(error = %e, "outbox relay failed; retrying");
            // What failed is looked at again on the next pass.
            scope = Scope::All;
        }
        let deadline = last_full + poll;
        tokio::select! {
            () = stop.cancelled() => return,
            woken = next_wake(&mut rx, deadline) => match woken {
                Some(wake) => scope.add(wake),
                None => scope = Scope::All,
            },
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(started + gap) => {}
        }
    }
}

/// What a pass relays.
#[derive(Debug, Default)]
enum Scope {
    /// Nothing named yet (a pass with it relays nothing).
    #[default]
    Nothing,
    /// These tenants' pending rows.
    Tenants(HashSet<TenantId>),
    /// Every tenant with pending rows.
    All,
}

impl Scope {
    fn add(&mut self, wake: Wake) {
        match (wake, &mut *self) {
            (_, Scope::All) => {}
            (Wake::Resync, _) => *self = Scope::All,
            (Wake::Outbox(t), Scope::Tenants(set)) => {
                set.insert(t);
            }
            (Wake::Outbox(t), Scope::Nothing) => *self = Scope::Tenants(HashSet::from([t])),
            (Wake::Events(_) | Wake::Deliveries(_), _) => {}
        }
    }
}

/// The next wake-up that concerns the relay, or `None` at `deadline` (or when some were missed).
async fn next_wake(rx: &mut broadcast::Receiver<Wake>, deadline: tokio::time::Instant) -> Option<Wake> {
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return None,
            msg = rx.recv() => match msg {
                Ok(w @ (Wake::Outbox(_) | Wake::Resync)) => return Some(w),
                Ok(Wake::Events(_) | Wake::Deliveries(_)) => {}
                // Missed some, or the hub is gone (cannot happen while we hold a clone): look
                // at every tenant.
                Err(_) => return None,
            },
        }
    }
}

/// Adds the wake-ups queued so far to `scope`.
fn drain(rx: &mut broadcast::Receiver<Wake>, scope: &mut Scope) {
    use broadcast::error::TryRecvError;
    loop {
        match rx.try_recv() {
            Ok(wake) => scope.add(wake),
            Err(TryRecvError::Lagged(_)) => *scope = Scope::All,
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
        }
    }
}

/// Relays everything pending of `tenants`.
async fn relay_tenants(store: &Store, hub: &EventHub, tenants: HashSet<TenantId>) -> Result<usize, sqlx::Error> {
    let mut total = 0;
    for tenant in tenants {
        total += relay_pending(store, hub, tenant).await?;
    }
    Ok(total)
}

/// Relays a tenant's pending rows, batch after batch.
async fn relay_pending(store: &Store, hub: &EventHub, tenant: TenantId) -> Result<usize, sqlx::Error> {
    let mut total = 0;
    loop {
        let n = relay_tenant(store, hub, tenant).await?;
        total += n;
        if (n as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Relays everything pending, tenant by tenant. Returns how many events were relayed.
pub async fn relay_all(store: &Store, hub: &EventHub) -> Result<usize, sqlx::Error> {
    let mut total = 0;
    for tenant in sql::pending_tenants(store.pool(), TENANTS_PER_ROUND).await? {
        total += relay_pending(store, hub, tenant).await?;
    }
    Ok(total)
}

/// Relays one batch of a tenant's pending rows; 0 when there were none or another process holds
/// the tenant.
pub async fn relay_tenant(store: &Store, hub: &EventHub, tenant: TenantId) -> Result<usize, sqlx::Error> {
    // `BEGIN` and the tenant setting in one round trip, as the store's own transactions.
    let mut tx =
        engine::store::conn::retry_dead(|| store.pool().begin_with(engine::store::sql::begin_for(tenant))).await?;
    let Some(mut position) = sql::lock_stream(&mut tx, tenant).await? else {
        return Ok(0);
    };
    let batch = sql::pending_batch(&mut tx, tenant, BATCH).await?;
    if batch.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let hooks: Vec<(Uuid, EventPatterns)> = sql::webhook_patterns(&mut tx, tenant)
        .await?
        .into_iter()
        .filter_map(|(id, patterns)| EventPatterns::parse(&patterns).ok().map(|p| (id, p)))
        .collect();
    let mut positions = Vec::with_capacity(batch.len());
    let mut outbox_ids = Vec::with_capacity(batch.len());
    let mut deliveries =
        NewDeliveries { ids: Vec::new(), webhook_ids: Vec::new(), outbox_ids: Vec::new(), event_ids: Vec::new() };
    for p in &batch {
        position += 1;
        positions.push(position);
        outbox_ids.push(p.outbox_id);
        for (hook, patterns) in &hooks {
            if patterns.delivers(&p.name) {
                deliveries.ids.push(Uuid::now_v7());
                deliveries.webhook_ids.push(*hook);
                deliveries.outbox_ids.push(p.outbox_id);
                deliveries.event_ids.push(p.event_id);
            }
        }
    }
    let queued =
        if deliveries.ids.is_empty() { 0 } else { sql::queue_deliveries(&mut tx, tenant, &deliveries).await? };
    let mut channels = vec![CHANNEL_EVENTS];
    if queued > 0 {
        channels.push(CHANNEL_WEBHOOKS);
    }
    sql::append_events(&mut tx, tenant, &positions, &outbox_ids, position, &channels).await?;
    tx.commit().await?;
    // This process's own streams and workers need not wait for the round trip.
    hub.wake(Wake::Events(tenant));
    if queued > 0 {
        hub.wake(Wake::Deliveries(tenant));
    }
    tracing::debug!(tenant.id = %tenant, events = batch.len(), deliveries = queued, "relayed");
    Ok(batch.len())
}
