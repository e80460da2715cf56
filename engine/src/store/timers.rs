//! Firing due state timers, one transaction per timer.
//!
//! A timer row is inserted when an entity enters a state with `timers:` and settled as
//! `cancelled` when it leaves the state (both in [`super::exec`], inside the transaction that
//! moves the entity). Here a worker claims a due pending timer of any tenant with
//! `FOR UPDATE SKIP LOCKED` (through the `claim_due_timers` function of
//! `migrations/0002_timers.sql`, the only query that sees every tenant's timers), sets the
//! timer's tenant, locks the entity and fires the transition as the system actor.
//!
//! Lock order: a request locks the entity, then (leaving a state) its timers; the worker holds
//! a timer, so it only *tries* the entity (`SKIP LOCKED`): when a request holds it, the worker
//! lets go of the timer (the request may be about to cancel it) and retries it on a later call.
//! So the two never wait for each other, and while the worker fires a timer, no request can
//! move the entity: a timer fires only if its entity is still in the timer's state.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use tracing::Instrument;

use super::exec::{self, RunCtx, Step};
use super::sql::{self};
use super::{Store, StoreError, TenantId};
use crate::model::Actor;

/// The actor timers fire as: the system (exempt from roles and four-eyes); history shows
/// `system`.
pub fn timer_actor() -> Actor {
    Actor {
        id: "system".to_string(),
        email: String::new(),
        roles: Vec::new(),
        system: true,
        attributes: Default::default(),
    }
}

/// What became of one claimed timer.
enum Outcome {
    /// Settled (fired, refused or cancelled): commit.
    Settled,
    /// The entity is busy (or the database failed): roll back and retry on a later call.
    Retry,
}

/// Fires up to `limit` due timers (`due_at <= now`), each in its own transaction. Returns how
/// many were settled: fired, refused by the transition (outcome = the rejection code) or
/// cancelled (the entity had left the state).
pub(super) async fn fire_due(store: &Store, now: DateTime<Utc>, limit: i64) -> Result<usize, StoreError> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut settled = 0;
    // Timers passed over during this call (their entity was busy): not claimed again by it.
    let mut skipped: Vec<i64> = Vec::new();
    while settled + skipped.len() < limit {
        let mut tx = store.begin_untenanted().await?;
        let Some((tenant, id)) = sql::claim_due_timer(&mut tx, now, &skipped).await? else {
            tx.rollback().await?;
            break;
        };
        sql::set_tenant(&mut tx, tenant).await?;
        let span = tracing::info_span!("timer", tenant.id = %tenant, timer.id = id);
        match fire_one(store, &mut tx, tenant, id, now).instrument(span).await? {
            Outcome::Settled => {
                store.commit_writes(tx, tenant).await?;
                settled += 1;
            }
            Outcome::Retry => {
                tx.rollback().await?;
                skipped.push(id);
            }
        }
    }
    Ok(settled)
}

async fn fire_one(
    store: &Store,
    tx: &mut PgConnection,
    tenant: TenantId,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let Some(timer) = sql::get_timer(tx, tenant, id).await? else {
        return Ok(Outcome::Retry);
    };
    if timer.fired_at.is_some() {
        return Ok(Outcome::Retry);
    }
    let Some(stored) = sql::lock_entity_skip_locked(tx, tenant, timer.entity_id).await? else {
        if sql::entity_exists(tx, tenant, timer.entity_id).await? {
            tracing::debug!("entity busy; the timer is retried later");
            return Ok(Outcome::Retry);
        }
        sql::settle_timer(tx, tenant, id, now, "cancelled").await?;
        return Ok(Outcome::Settled);
    };
    if stored.entity.state != timer.state {
        // Leaving the state cancels its timers; this only guards against a row that was missed.
        sql::settle_timer(tx, tenant, id, now, "cancelled").await?;
        return Ok(Outcome::Settled);
    }

    let actor = timer_actor();
    let cx = RunCtx::new(store, tenant, now);
    let step = Step {
        name: &timer.transition,
        input: timer.input.clone(),
        actor: &actor,
        depth: 0,
        parent: None,
        creating: false,
    };
    let mut events = Vec::new();
    sql::savepoint(tx, "savepoint timer_fire").await?;
    let outcome = match exec::run(&cx, tx, stored, step, &mut events).await {
        Ok(_) => {
            sql::savepoint(tx, "release savepoint timer_fire").await?;
            "fired".to_string()
        }
        // A database error may be passing (a deadlock, a lost connection): retry later.
        Err(StoreError::Db(e)) => {
            tracing::warn!(error = %e, "timer failed; retried later");
            return Ok(Outcome::Retry);
        }
        Err(e) => {
            sql::savepoint(tx, "rollback to savepoint timer_fire").await?;
            let code = match &e {
                StoreError::Rejected(r) => r.code().to_string(),
                StoreError::Immutable { .. } => "IMMUTABLE".to_string(),
                _ => "ERROR".to_string(),
            };
            tracing::info!(transition = %timer.transition, outcome = %code, error = %e, "timer refused");
            code
        }
    };
    sql::settle_timer(tx, tenant, id, now, &outcome).await?;
    Ok(Outcome::Settled)
}

/// One timer of an entity, for inspection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimerInfo {
    pub id: i64,
    pub state: String,
    pub transition: String,
    pub input: Value,
    pub due_at: DateTime<Utc>,
    pub entity_version: i64,
    pub fired_at: Option<DateTime<Utc>>,
    /// `fired`, `cancelled`, a rejection code, or `None` while pending.
    pub outcome: Option<String>,
}

pub(super) async fn of_entity(
    store: &Store,
    tenant: TenantId,
    entity_id: uuid::Uuid,
) -> Result<Vec<TimerInfo>, StoreError> {
    let mut tx = store.begin(tenant).await?;
    let rows = sql::entity_timers(&mut tx, tenant, entity_id).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| TimerInfo {
            id: r.id,
            state: r.state,
            transition: r.transition,
            input: r.input,
            due_at: r.due_at,
            entity_version: r.entity_version,
            fired_at: r.fired_at,
            outcome: r.outcome,
        })
        .collect())
}
