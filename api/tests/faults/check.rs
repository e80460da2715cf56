//! The ledger against the database, after the load: every acknowledged step is in the order's
//! history, once, in order, with its outbox events; folding the history gives the order's state
//! and version; the event stream has every event once, without gaps, each entity's in order;
//! every webhook delivery reached the receiver with the id the database has for it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use sqlx::PgConnection;
use uuid::Uuid;

use crate::harness::{Db, Receiver};
use crate::load::Life;

/// What the check found. Everything from `lost` on must be 0.
#[derive(Debug, Default)]
pub struct Findings {
    pub entities: usize,
    pub acknowledged: usize,
    /// Steps that never got a definite answer, and of them those the database has.
    pub unsettled: usize,
    pub unsettled_applied: usize,
    pub events: i64,
    pub webhook_deliveries: usize,
    /// Planning sessions' timers fired (each must fire once).
    pub timers_fired: usize,
    /// Deliveries the receiver got more than once (same id: a redelivery after a crash).
    pub redelivered: usize,
    /// Acknowledged steps missing from history.
    pub lost: usize,
    /// Steps in history more often than acknowledged.
    pub duplicated: usize,
    /// History rows without their outbox event, or an order whose state or version is not what
    /// its history folds to.
    pub half_applied: usize,
    /// Outbox rows not on the event stream, positions missing from it, an entity's events out
    /// of order on it.
    pub stream_faults: i64,
    /// Deliveries not delivered, never received, or received under another id.
    pub webhook_faults: usize,
    pub details: Vec<String>,
}

impl Findings {
    pub fn faults(&self) -> usize {
        self.lost
            + self.duplicated
            + self.half_applied
            + usize::try_from(self.stream_faults).unwrap_or(usize::MAX)
            + self.webhook_faults
    }

    fn fault(&mut self, what: String) {
        if self.details.len() < 20 {
            self.details.push(what);
        }
    }
}

impl fmt::Display for Findings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "entities {}, acknowledged steps {}, unsettled {} (applied {}), timers fired {}, events {}, webhook deliveries {} (redelivered {})",
            self.entities,
            self.acknowledged,
            self.unsettled,
            self.unsettled_applied,
            self.timers_fired,
            self.events,
            self.webhook_deliveries,
            self.redelivered
        )?;
        write!(
            f,
            "lost {}, duplicated {}, half-applied {}, event stream faults {}, webhook faults {}",
            self.lost, self.duplicated, self.half_applied, self.stream_faults, self.webhook_faults
        )?;
        for d in &self.details {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

async fn tenant(conn: &mut PgConnection) -> Uuid {
    sqlx::query_scalar("select id from tenants where slug = 'chemichemi'").fetch_one(conn).await.expect("tenant")
}

/// Waits (at most `within`) until every outbox row of the tenant is on the event stream and
/// every webhook delivery is settled.
pub async fn wait_settled(db: &Db, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut conn = db.connect().await;
        let t = tenant(&mut conn).await;
        let pending: (i64, i64, i64) = sqlx::query_as(
            "select (select count(*) from outbox o where o.tenant_id = $1 \
                       and not exists (select 1 from event_log l where l.tenant_id = $1 and l.outbox_id = o.id)), \
                    (select count(*) from webhook_deliveries where tenant_id = $1 and status = 'pending'), \
                    (select count(*) from timers where tenant_id = $1 and fired_at is null and due_at <= now())",
        )
        .bind(t)
        .fetch_one(&mut conn)
        .await
        .expect("settled?");
        if pending == (0, 0, 0) || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn check(db: &Db, lives: &[Life], receiver: Option<&Receiver>) -> Findings {
    let mut conn = db.connect().await;
    let t = tenant(&mut conn).await;
    let mut f = Findings::default();
    for life in lives {
        f.acknowledged += life.acked.len();
        f.unsettled += usize::from(life.unsettled.is_some());
        let id = match life.id {
            Some(id) => Some(id),
            // A creation without an answer: made or not, by its tag.
            None => sqlx::query_scalar(
                "select id from entities where tenant_id = $1 and type = $2 \
                 and (data->>'notes' = $3 or data->>'name' = $3)",
            )
            .bind(t)
            .bind(life.kind)
            .bind(&life.tag)
            .fetch_optional(&mut conn)
            .await
            .expect("order by tag"),
        };
        let Some(id) = id else { continue };
        f.entities += 1;
        let history: Vec<(i64, String, String)> = sqlx::query_as(
            "select id, transition, to_state from transitions where tenant_id = $1 and entity_id = $2 order by id",
        )
        .bind(t)
        .bind(id)
        .fetch_all(&mut conn)
        .await
        .expect("history");
        let names: Vec<&str> = history.iter().map(|(_, n, _)| n.as_str()).collect();
        let mut acked: Vec<&str> = life.acked.iter().map(String::as_str).collect();
        if life.timer {
            // Fired by a timers worker, as the system, once.
            acked.push("optimizationFailed");
            f.timers_fired += names.iter().filter(|n| **n == "optimizationFailed").count();
        }
        let mut with_unsettled = acked.clone();
        with_unsettled.extend(life.unsettled.as_deref());
        if names == acked {
        } else if names == with_unsettled {
            f.unsettled_applied += 1;
        } else if names.len() < acked.len() {
            f.lost += acked.len() - names.len();
            f.fault(format!("{} {id}: acknowledged {acked:?}, history {names:?}", life.kind));
        } else {
            f.duplicated += names.len().saturating_sub(with_unsettled.len()).max(1);
            f.fault(format!("{} {id}: acknowledged {acked:?} then {:?}, history {names:?}", life.kind, life.unsettled));
        }
        // Folding the history: the last row's state, one version per row (the creation is the
        // first: the create transition's, or `create`).
        let (state, version): (String, i64) =
            sqlx::query_as("select state, version from entities where tenant_id = $1 and id = $2")
                .bind(t)
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .expect("entity");
        let folded = history.last().map(|(_, _, to)| to.clone()).unwrap_or_default();
        if (state.as_str(), version) != (folded.as_str(), history.len() as i64) {
            f.half_applied += 1;
            f.fault(format!(
                "order {id}: state {state} version {version}, history folds to {folded} {}",
                history.len()
            ));
        }
        // Every row but a plain creation's (`create`: no transition, no event) has its event.
        let rows: Vec<i64> = history.iter().filter(|(_, n, _)| n != "create").map(|(row, _, _)| *row).collect();
        let without_event: i64 = sqlx::query_scalar(
            "select count(*) from unnest($2::bigint[]) as h(id) \
             where not exists (select 1 from outbox o where o.tenant_id = $1 and o.transition_id = h.id)",
        )
        .bind(t)
        .bind(&rows)
        .fetch_one(&mut conn)
        .await
        .expect("outbox of history");
        if without_event > 0 {
            f.half_applied += usize::try_from(without_event).unwrap_or(1);
            f.fault(format!("{} {id}: {without_event} history rows without their outbox event", life.kind));
        }
    }

    // The event stream: every outbox row once, positions 1..n, each entity's events in order.
    let (outbox, logged, max_position, out_of_order): (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from outbox where tenant_id = $1), \
                (select count(*) from event_log where tenant_id = $1), \
                (select coalesce(max(position), 0) from event_log where tenant_id = $1), \
                (select count(*) from (select o.id, lag(o.id) over (partition by o.entity_id order by l.position) prev \
                   from event_log l join outbox o on o.tenant_id = l.tenant_id and o.id = l.outbox_id \
                   where l.tenant_id = $1) x where prev > id)",
    )
    .bind(t)
    .fetch_one(&mut conn)
    .await
    .expect("event stream");
    f.events = logged;
    f.stream_faults = (outbox - logged).abs() + (max_position - logged).abs() + out_of_order;
    if f.stream_faults > 0 {
        let what = format!(
            "stream: outbox {outbox}, logged {logged}, last position {max_position}, out of order {out_of_order}"
        );
        f.fault(what);
    }

    if let Some(receiver) = receiver {
        let deliveries: Vec<(String, String, String)> =
            sqlx::query_as("select id::text, event_id::text, status from webhook_deliveries where tenant_id = $1")
                .bind(t)
                .fetch_all(&mut conn)
                .await
                .expect("deliveries");
        f.webhook_deliveries = deliveries.len();
        let got = receiver.by_event();
        let mut per_event: BTreeMap<&str, usize> = BTreeMap::new();
        for (delivery, event, status) in &deliveries {
            *per_event.entry(event.as_str()).or_default() += 1;
            let received = got.get(event).cloned().unwrap_or_default();
            let ids: BTreeSet<&String> = received.iter().collect();
            if status != "delivered" || !received.contains(delivery) || ids.len() != 1 {
                f.webhook_faults += 1;
                f.fault(format!("delivery {delivery} of event {event}: {status}, received as {received:?}"));
            }
            f.redelivered += received.len().saturating_sub(1);
        }
        // Every order event of the run has its delivery (one: one webhook).
        let order_events: Vec<String> = sqlx::query_scalar(
            "select o.event_id::text from outbox o join entities e on e.tenant_id = o.tenant_id and e.id = o.entity_id \
             where o.tenant_id = $1 and e.data->>'notes' like 'faults-%'",
        )
        .bind(t)
        .fetch_all(&mut conn)
        .await
        .expect("order events");
        for event in &order_events {
            if per_event.get(event.as_str()) != Some(&1) {
                f.webhook_faults += 1;
                f.fault(format!("event {event}: {:?} deliveries", per_event.get(event.as_str())));
            }
        }
    }
    f
}
