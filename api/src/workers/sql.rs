//! Every SQL statement of events and webhooks (tables of `migrations/0005_events.sql`), one
//! function each. Each runs in a transaction whose tenant is set for row-level security and also
//! names the tenant explicitly; the three that look across tenants call the migration's
//! SECURITY DEFINER functions, which return tenant ids only.

use chrono::{DateTime, Utc};
use engine::store::TenantId;
use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// Channel of new outbox rows (payload: the tenant id), notified by the process that committed
/// them, after the commit and at most every 50 ms (see [`super::commits`]).
pub const CHANNEL_OUTBOX: &str = "switchyard_outbox";
/// Channel of newly relayed events (payload: the tenant id), notified by the relay.
pub const CHANNEL_EVENTS: &str = "switchyard_events";
/// Channel of newly queued webhook deliveries (payload: the tenant id), notified by the relay
/// and by a replay.
pub const CHANNEL_WEBHOOKS: &str = "switchyard_webhooks";

// --- Across tenants (ids only) ----------------------------------------------------------------

pub async fn pending_tenants(pool: &PgPool, limit: i64) -> Result<Vec<TenantId>, sqlx::Error> {
    sqlx::query_scalar("select tenant_id from outbox_pending_tenants($1)").bind(limit as i32).fetch_all(pool).await
}

/// Tenants with pending deliveries, and when their first one is due.
pub async fn due_tenants(pool: &PgPool, limit: i64) -> Result<Vec<(TenantId, DateTime<Utc>)>, sqlx::Error> {
    let rows: Vec<(TenantId, Option<DateTime<Utc>>)> =
        sqlx::query_as("select tenant_id, due_at from webhook_due_tenants($1)")
            .bind(limit as i32)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().filter_map(|(t, due)| due.map(|d| (t, d))).collect())
}

/// Deletes at most `batch` idempotency records (of every tenant) older than `older_than`, through
/// the SECURITY DEFINER function of migration 0010; how many it deleted.
pub async fn purge_expired_idempotency(
    pool: &PgPool,
    older_than: sqlx::postgres::types::PgInterval,
    batch: i32,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select purge_expired_idempotency($1, $2)").bind(older_than).bind(batch).fetch_one(pool).await
}

pub async fn outbox_lag_seconds(pool: &PgPool) -> Result<f64, sqlx::Error> {
    sqlx::query_scalar("select outbox_lag_seconds()").fetch_one(pool).await
}

pub async fn notify(tx: &mut PgConnection, channel: &str, tenant: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_notify($1, $2)").bind(channel).bind(tenant.to_string()).execute(&mut *tx).await?;
    Ok(())
}

/// One notification per tenant, as a statement of its own (its own short transaction).
pub async fn notify_all(pool: &PgPool, channel: &str, tenants: &[TenantId]) -> Result<(), sqlx::Error> {
    let payloads: Vec<String> = tenants.iter().map(TenantId::to_string).collect();
    sqlx::query("select pg_notify($1, p) from unnest($2::text[]) as u(p)")
        .bind(channel)
        .bind(&payloads)
        .execute(pool)
        .await?;
    Ok(())
}

// --- The relay --------------------------------------------------------------------------------

/// Locks the tenant's stream row (creating it at 0) and returns its position; `None` when
/// another relay holds it.
pub async fn lock_stream(tx: &mut PgConnection, tenant: TenantId) -> Result<Option<i64>, sqlx::Error> {
    let pos: Option<i64> =
        sqlx::query_scalar("select position from event_streams where tenant_id = $1 for update skip locked")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
    if pos.is_some() {
        return Ok(pos);
    }
    // Missing, or locked by another relay: an insert tells which (it holds the new row's lock).
    sqlx::query_scalar(
        "insert into event_streams (tenant_id, position) values ($1, 0) on conflict (tenant_id) do nothing returning position",
    )
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await
}

/// An outbox row waiting for the relay.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub outbox_id: i64,
    pub event_id: Uuid,
    pub name: String,
}

/// The oldest pending rows of a tenant. Not locked: the caller holds the tenant's stream row, so
/// no other relay reads them.
///
/// Each pending row looks up its outbox row by key (`LATERAL … LIMIT 1`, which the planner
/// cannot turn into a join): as a plain join, with statistics that lag a growing outbox (a new
/// tenant's tables are not analyzed yet), the plan was a hash or merge join reading the tenant's
/// whole outbox, ~20 ms a pass at 65,000 rows and growing with it, where the lookups take ~0.5 ms.
pub async fn pending_batch(tx: &mut PgConnection, tenant: TenantId, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        "select p.outbox_id, o.event_id, o.name \
         from (select outbox_id from outbox_pending where tenant_id = $1 order by outbox_id limit $2) p \
         cross join lateral (select o.event_id, o.name from outbox o \
                             where o.tenant_id = $1 and o.id = p.outbox_id limit 1) o \
         order by p.outbox_id",
    )
    .bind(tenant)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
}

/// Every webhook of the tenant: id and event patterns.
pub async fn webhook_patterns(
    tx: &mut PgConnection,
    tenant: TenantId,
) -> Result<Vec<(Uuid, Vec<String>)>, sqlx::Error> {
    sqlx::query_as("select id, events from webhooks where tenant_id = $1 order by id")
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await
}

/// Appends the batch to the tenant's stream, in one statement (one round trip): the events at
/// their positions, the pending rows cleared, the stream's position moved to `position`, and a
/// `NOTIFY` of the tenant on each of `channels` (sent at the commit).
pub async fn append_events(
    tx: &mut PgConnection,
    tenant: TenantId,
    positions: &[i64],
    outbox_ids: &[i64],
    position: i64,
    channels: &[&str],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with appended as ( \
           insert into event_log (tenant_id, position, outbox_id) \
           select $1, p, o from unnest($2::bigint[], $3::bigint[]) as u(p, o)), \
         cleared as (delete from outbox_pending where tenant_id = $1 and outbox_id = any($3)), \
         moved as (update event_streams set position = $4 where tenant_id = $1) \
         select pg_notify(c, $1::text) from unnest($5::text[]) as n(c)",
    )
    .bind(tenant)
    .bind(positions)
    .bind(outbox_ids)
    .bind(position)
    .bind(channels)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// New deliveries, due now. Columns as parallel arrays (one statement for the batch).
pub struct NewDeliveries {
    pub ids: Vec<Uuid>,
    pub webhook_ids: Vec<Uuid>,
    pub outbox_ids: Vec<i64>,
    pub event_ids: Vec<Uuid>,
}

pub async fn queue_deliveries(tx: &mut PgConnection, tenant: TenantId, d: &NewDeliveries) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "insert into webhook_deliveries (tenant_id, id, webhook_id, outbox_id, event_id, next_attempt_at) \
         select $1, i, w, o, e, now() from unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::uuid[]) as u(i, w, o, e) \
         on conflict (tenant_id, webhook_id, outbox_id) do nothing",
    )
    .bind(tenant)
    .bind(&d.ids)
    .bind(&d.webhook_ids)
    .bind(&d.outbox_ids)
    .bind(&d.event_ids)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

// --- Reading events ---------------------------------------------------------------------------

/// An event of the tenant's stream, as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    /// The position in the tenant's stream: the cursor (`after`, `Last-Event-ID`).
    #[sqlx(rename = "position")]
    pub id: i64,
    /// The event's stable id (also `Switchyard-Event-Id` of its webhook deliveries).
    pub event_id: Uuid,
    pub name: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// The last position of the tenant's stream (0 when nothing was relayed yet).
pub async fn stream_position(tx: &mut PgConnection, tenant: TenantId) -> Result<i64, sqlx::Error> {
    let pos: Option<i64> = sqlx::query_scalar("select position from event_streams where tenant_id = $1")
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(pos.unwrap_or(0))
}

/// Events after `after`, in order; with `names`/`prefixes` (both `None`: every event), only
/// those whose name is one of `names` or starts with one of `prefixes`. Each event's outbox row
/// is looked up by key (see [`pending_batch`]: a join could read the tenant's whole outbox).
pub async fn list_events(
    tx: &mut PgConnection,
    tenant: TenantId,
    after: i64,
    names: Option<&[String]>,
    prefixes: Option<&[String]>,
    limit: i64,
) -> Result<Vec<EventRecord>, sqlx::Error> {
    sqlx::query_as(
        "select l.position, o.event_id, o.name, o.entity_type, o.entity_id, o.payload, o.created_at \
         from event_log l \
         cross join lateral (select o.event_id, o.name, o.entity_type, o.entity_id, o.payload, o.created_at \
                             from outbox o where o.tenant_id = l.tenant_id and o.id = l.outbox_id limit 1) o \
         where l.tenant_id = $1 and l.position > $2 \
           and (($3::text[] is null and $4::text[] is null) \
                or o.name = any($3) or exists (select 1 from unnest($4::text[]) p where starts_with(o.name, p))) \
         order by l.position limit $5",
    )
    .bind(tenant)
    .bind(after)
    .bind(names)
    .bind(prefixes)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
}

// --- Webhooks ---------------------------------------------------------------------------------

/// A webhook as the API shows it (never its secret, except once at creation).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Webhook {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

const WEBHOOK_COLUMNS: &str = "id, name, url, events, created_at, created_by";

pub struct NewWebhook<'a> {
    pub id: Uuid,
    pub name: Option<&'a str>,
    pub url: &'a str,
    pub events: &'a [String],
    pub secret: &'a str,
    pub created_by: &'a str,
}

pub async fn insert_webhook(
    tx: &mut PgConnection,
    tenant: TenantId,
    w: NewWebhook<'_>,
) -> Result<Webhook, sqlx::Error> {
    let row = sqlx::query(&format!(
        "insert into webhooks (tenant_id, id, name, url, events, secret, created_by) values ($1, $2, $3, $4, $5, $6, $7) \
         returning {WEBHOOK_COLUMNS}"
    ))
    .bind(tenant)
    .bind(w.id)
    .bind(w.name)
    .bind(w.url)
    .bind(w.events)
    .bind(w.secret)
    .bind(w.created_by)
    .fetch_one(&mut *tx)
    .await?;
    Webhook::from_row(&row)
}

/// Inserts or replaces the webhook named `name` (a package's).
pub async fn upsert_named_webhook(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    w: NewWebhook<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into webhooks (tenant_id, id, name, url, events, secret, created_by) values ($1, $2, $3, $4, $5, $6, $7) \
         on conflict (tenant_id, name) do update set url = excluded.url, events = excluded.events, secret = excluded.secret",
    )
    .bind(tenant)
    .bind(w.id)
    .bind(w.name)
    .bind(w.url)
    .bind(w.events)
    .bind(w.secret)
    .bind(w.created_by)
    .execute(tx)
    .await?;
    Ok(())
}

/// Deletes the named (package) webhooks whose name is not in `keep`.
pub async fn delete_named_webhooks_except(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    keep: &[String],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("delete from webhooks where tenant_id = $1 and name is not null and name <> all($2)")
        .bind(tenant)
        .bind(keep)
        .execute(tx)
        .await?;
    Ok(done.rows_affected())
}

pub async fn count_webhooks(tx: &mut PgConnection, tenant: TenantId) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from webhooks where tenant_id = $1").bind(tenant).fetch_one(&mut *tx).await
}

pub async fn list_webhooks(tx: &mut PgConnection, tenant: TenantId) -> Result<Vec<Webhook>, sqlx::Error> {
    let rows =
        sqlx::query(&format!("select {WEBHOOK_COLUMNS} from webhooks where tenant_id = $1 order by created_at, id"))
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await?;
    rows.iter().map(Webhook::from_row).collect()
}

pub async fn get_webhook(tx: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<Option<Webhook>, sqlx::Error> {
    let row = sqlx::query(&format!("select {WEBHOOK_COLUMNS} from webhooks where tenant_id = $1 and id = $2"))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(Webhook::from_row).transpose()
}

/// Deletes a webhook with its deliveries and their attempts. False when there was none.
pub async fn delete_webhook(tx: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("delete from webhooks where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One delivery with its attempts, as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_name: String,
    pub status: String,
    /// Attempts since it was queued or last replayed.
    pub attempts: i32,
    /// When it will be tried next (pending ones only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first: `{attempt, at, status_code, error, duration_ms}`.
    pub history: Value,
}

const DELIVERY_SELECT: &str = "select d.id, d.webhook_id, d.event_id, o.name as event_name, d.status, d.attempts, \
     d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.delivered_at, \
     coalesce((select jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at, 'status_code', a.status_code, \
                                                   'error', a.error, 'duration_ms', a.duration_ms) order by a.id) \
               from webhook_attempts a where a.tenant_id = d.tenant_id and a.delivery_id = d.id), '[]') as history \
     from webhook_deliveries d \
     cross join lateral (select o.name from outbox o \
                         where o.tenant_id = d.tenant_id and o.id = d.outbox_id limit 1) o";

/// A webhook's deliveries, newest first (`before`: the id of the last one of the previous page;
/// ids are uuid v7, so time ordered).
pub async fn list_deliveries(
    tx: &mut PgConnection,
    tenant: TenantId,
    webhook: Uuid,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{DELIVERY_SELECT} where d.tenant_id = $1 and d.webhook_id = $2 and ($3::text is null or d.status = $3) \
         and ($4::uuid is null or d.id < $4) order by d.id desc limit $5"
    ))
    .bind(tenant)
    .bind(webhook)
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter().map(Delivery::from_row).collect()
}

pub async fn get_delivery(
    tx: &mut PgConnection,
    tenant: TenantId,
    webhook: Uuid,
    id: Uuid,
) -> Result<Option<Delivery>, sqlx::Error> {
    let row = sqlx::query(&format!("{DELIVERY_SELECT} where d.tenant_id = $1 and d.webhook_id = $2 and d.id = $3"))
        .bind(tenant)
        .bind(webhook)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(Delivery::from_row).transpose()
}

/// Queues a delivery again, due now, with a fresh retry budget (whatever its status). False when
/// there is no such delivery.
pub async fn replay_delivery(
    tx: &mut PgConnection,
    tenant: TenantId,
    webhook: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update webhook_deliveries set status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now() \
         where tenant_id = $1 and webhook_id = $2 and id = $3",
    )
    .bind(tenant)
    .bind(webhook)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

// --- The delivery worker ----------------------------------------------------------------------

/// A claimed delivery and everything needed to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    /// This attempt's number (1 for the first since queued or replayed).
    #[sqlx(rename = "attempts")]
    pub attempt: i32,
    pub url: String,
    pub secret: String,
    pub name: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` due deliveries: locks them (`FOR UPDATE SKIP LOCKED`: another worker's
/// are passed over), counts the attempt and pushes them `lease_secs` ahead, so they come back
/// if this worker dies before it records the outcome. The webhook and the event are looked up by
/// key (see [`pending_batch`]).
pub async fn claim_due(
    tx: &mut PgConnection,
    tenant: TenantId,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "with due as ( \
             select id, webhook_id, outbox_id from webhook_deliveries \
             where tenant_id = $1 and status = 'pending' and next_attempt_at <= now() \
             order by next_attempt_at, id limit $2 \
             for update skip locked) \
         update webhook_deliveries d \
         set attempts = d.attempts + 1, next_attempt_at = now() + $3 * interval '1 second', updated_at = now() \
         from due \
         cross join lateral (select w.url, w.secret from webhooks w \
                             where w.tenant_id = $1 and w.id = due.webhook_id limit 1) w \
         cross join lateral (select o.name, o.entity_type, o.entity_id, o.payload, o.created_at from outbox o \
                             where o.tenant_id = $1 and o.id = due.outbox_id limit 1) o \
         where d.tenant_id = $1 and d.id = due.id \
         returning d.id, d.webhook_id, d.event_id, d.attempts, w.url, w.secret, o.name, o.entity_type, o.entity_id, \
                   o.payload, o.created_at",
    )
    .bind(tenant)
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(&mut *tx)
    .await
}

pub async fn tenant_slug(tx: &mut PgConnection, tenant: TenantId) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select slug from tenants where id = $1").bind(tenant).fetch_optional(&mut *tx).await
}

/// What became of an attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    /// `delivered`, `pending` (retry at `retry_in_secs`) or `dead`.
    pub status: &'static str,
    pub retry_in_secs: Option<f64>,
}

/// Records an attempt's outcome, unless the claim is no longer ours (the lease ran out and
/// another worker took it, or it was replayed or deleted meanwhile). Returns whether recorded.
pub async fn record_attempt(
    tx: &mut PgConnection,
    tenant: TenantId,
    delivery: Uuid,
    attempt: i32,
    r: &AttemptResult,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update webhook_deliveries set status = $4, \
             next_attempt_at = case when $4 = 'pending' then now() + $5 * interval '1 second' end, \
             last_status_code = $6, last_error = $7, updated_at = now(), \
             delivered_at = case when $4 = 'delivered' then now() else delivered_at end \
         where tenant_id = $1 and id = $2 and attempts = $3 and status = 'pending'",
    )
    .bind(tenant)
    .bind(delivery)
    .bind(attempt)
    .bind(r.status)
    .bind(r.retry_in_secs)
    .bind(r.status_code)
    .bind(&r.error)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "insert into webhook_attempts (tenant_id, delivery_id, attempt, status_code, error, duration_ms) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant)
    .bind(delivery)
    .bind(attempt)
    .bind(r.status_code)
    .bind(&r.error)
    .bind(r.duration_ms)
    .execute(&mut *tx)
    .await?;
    Ok(true)
}
