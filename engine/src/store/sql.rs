//! Every SQL statement of the executor, one function each, the tenant always explicit.
//!
//! No SQL text is built from input or configuration: field names of `where` loads are bound
//! as parameters (`data -> $3`), values as jsonb parameters.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Postgres, Row};
use uuid::Uuid;

use super::{EmittedEvent, HistoryActor, HistoryEntry, StoreError, TenantId, TenantSlug};
use crate::model::Entity;

pub use super::tx::Tx;

/// An entity row with the config version it is pinned to.
#[derive(Debug, Clone)]
pub struct StoredEntity {
    pub entity: Entity,
    pub config_version: i64,
    /// Append-only (its type is `immutable: true` in its version): the database refuses to
    /// update or delete it (`migrations/0013_append_only.sql`).
    pub immutable: bool,
}

pub(super) const ENTITY_COLUMNS: &str =
    "id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by, immutable";

pub(super) fn entity_from_row(row: &PgRow) -> Result<StoredEntity, sqlx::Error> {
    written_from_row(row, row.try_get("data")?)
}

/// `BEGIN` and the tenant setting in one simple query: one round trip instead of two for every
/// transaction. The tenant is a `Uuid` formatted here (hex digits and dashes only), so putting it
/// in the statement's text cannot inject anything; nothing else is. `SET LOCAL` (what
/// `set_config(…, true)` does) rather than a `SELECT`: a utility statement is neither planned nor
/// executed, where the `SELECT` was planned anew on every transaction (~9 µs of Postgres CPU,
/// `pg_stat_statements` in the benchmark).
pub fn begin_for(tenant: TenantId) -> String {
    format!("begin; set local app.tenant_id = '{}'", tenant.as_uuid().hyphenated())
}

/// The prepared statement that locks one entity by tenant, type and id (what [`get_typed`] runs
/// with `lock`), by the name [`begin_and_lock`] executes it.
pub const LOCK_ENTITY: &str = "switchyard_lock_entity";

/// The statement of [`record_transition`], prepared on a connection with [`LOCK_ENTITY`]: a
/// transition's last round trip `EXECUTE`s it with literals, with its `COMMIT`
/// ([`record_transition_and_commit`]).
pub const RECORD_TRANSITION: &str = "switchyard_record_transition";

/// The statement of [`cancel_timers`], prepared with [`LOCK_ENTITY`] (the last round trip of a
/// transition that changes the entity's state cancels its pending timers).
pub const CANCEL_TIMERS: &str = "switchyard_cancel_timers";

/// Prepares the statements a transition sends with literals on a connection: [`LOCK_ENTITY`],
/// [`RECORD_TRANSITION`] and [`CANCEL_TIMERS`], all at once, so that a connection that has the
/// first (checked at the transaction's first round trip, where a missing one can still be
/// prepared) has the others (its last round trip, inside the transaction, cannot).
pub fn prepare_transition_statements() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "prepare {LOCK_ENTITY} (uuid, text, uuid) as \
             select {ENTITY_COLUMNS} from entities where tenant_id = $1 and type = $2 and id = $3 for update; \
             prepare {RECORD_TRANSITION} (uuid, uuid, text, jsonb, timestamptz, text, text, text, text, text, jsonb, \
             jsonb, int8, int8, uuid[], text[], text[], uuid[], jsonb[]) as {}; \
             prepare {CANCEL_TIMERS} (uuid, uuid, timestamptz) as {CANCEL_TIMERS_SQL}",
            record_transition_sql()
        )
    });
    &SQL
}

/// [`begin_for`] and the lock of one entity ([`LOCK_ENTITY`]) in one simple query: a
/// transition's first round trip. Its values are literals: the two ids are `Uuid`s formatted
/// here, and the type name is used only when it is a type name's shape (`[a-z][a-z0-9_]*`, at
/// most 63 characters: no quote, backslash or other character a literal would have to escape);
/// `None` for anything else, which no type has (the caller locks the parameterized way).
pub fn begin_and_lock(tenant: TenantId, type_name: &str, id: Uuid) -> Option<String> {
    let plain = type_name.len() <= 63
        && type_name.starts_with(|c: char| c.is_ascii_lowercase())
        && type_name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plain.then(|| {
        format!(
            "{}; execute {LOCK_ENTITY}('{}', '{type_name}', '{}')",
            begin_for(tenant),
            tenant.as_uuid().hyphenated(),
            id.hyphenated()
        )
    })
}

/// Sets the tenant of row-level security for the rest of the transaction: the one way (with
/// [`begin_for`]) every crate does it, so no path can set it differently or forget it. Every
/// statement on tenant data runs after it, in the same transaction.
pub async fn set_tenant(tx: &mut PgConnection, tenant: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("select set_config('app.tenant_id', $1, true)").bind(tenant.to_string()).execute(&mut *tx).await?;
    Ok(())
}

/// The tenant of this slug, if there is one: sets the slug setting (`app.tenant_slug`, what
/// row-level security lets the `tenants` row be found by) for the rest of the transaction, not
/// the tenant itself.
pub async fn tenant_by_slug(tx: &mut PgConnection, slug: &TenantSlug) -> Result<Option<TenantId>, sqlx::Error> {
    sqlx::query("select set_config('app.tenant_slug', $1, true)").bind(slug.as_str()).execute(&mut *tx).await?;
    sqlx::query_scalar("select id from tenants where slug = $1").bind(slug.as_str()).fetch_optional(&mut *tx).await
}

pub async fn live_version(tx: &mut PgConnection, tenant: TenantId) -> Result<Option<i64>, sqlx::Error> {
    let v: Option<Option<i64>> = sqlx::query_scalar("select live_version from tenants where id = $1")
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(v.flatten())
}

/// What the engine compiles a version from: the `types` of the stored package, the tenant's
/// named rules (`tenant.rules`), roles, decision tables (`decisions`; `None` when the package has
/// none) and time zone (`tenant.time_zone`).
pub type Definitions = (Value, Option<Value>, Option<Value>, Option<Value>, Option<String>);

pub async fn config_definitions(
    tx: &mut PgConnection,
    tenant: TenantId,
    version: i64,
) -> Result<Option<Definitions>, sqlx::Error> {
    sqlx::query_as(
        "select package -> 'types', package -> 'tenant' -> 'rules', package -> 'tenant' -> 'roles', \
         package -> 'decisions', package -> 'tenant' ->> 'time_zone' from config_versions \
         where tenant_id = $1 and version = $2",
    )
    .bind(tenant)
    .bind(version)
    .fetch_optional(&mut *tx)
    .await
}

/// The stamp of the entities of each of `types` (those with none are absent): `(count, sum of
/// versions, latest updated_at)`; see `store::decisions`.
pub async fn row_stamps(
    tx: &mut PgConnection,
    tenant: TenantId,
    types: &[String],
) -> Result<Vec<(String, (i64, i64, Option<chrono::DateTime<chrono::Utc>>))>, sqlx::Error> {
    let rows: Vec<(String, i64, i64, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
        "select type, count(*), coalesce(sum(version), 0)::int8, max(updated_at) from entities \
         where tenant_id = $1 and type = any($2) group by type",
    )
    .bind(tenant)
    .bind(types)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(|(t, c, v, u)| (t, (c, v, u))).collect())
}

/// The rows of a decision table kept as entities of `type_name` (in `states`, when given): id,
/// data and creation time, at most `limit`.
pub async fn decision_rows(
    tx: &mut PgConnection,
    tenant: TenantId,
    type_name: &str,
    states: &[String],
    limit: usize,
) -> Result<Vec<(Uuid, Value, chrono::DateTime<chrono::Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "select id, data, created_at from entities where tenant_id = $1 and type = $2 \
         and (cardinality($3::text[]) = 0 or state = any($3)) order by created_at, id limit $4",
    )
    .bind(tenant)
    .bind(type_name)
    .bind(states)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await
}

pub async fn get_entity(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    lock: bool,
) -> Result<Option<StoredEntity>, StoreError> {
    let query = if lock {
        format!("select {ENTITY_COLUMNS} from entities where tenant_id = $1 and id = $2 for update")
    } else {
        format!("select {ENTITY_COLUMNS} from entities where tenant_id = $1 and id = $2")
    };
    let row = sqlx::query(&query).bind(tenant).bind(id).fetch_optional(&mut *tx).await?;
    Ok(row.as_ref().map(entity_from_row).transpose()?)
}

pub async fn get_typed(
    tx: &mut PgConnection,
    tenant: TenantId,
    type_name: &str,
    id: Uuid,
    lock: bool,
) -> Result<Option<StoredEntity>, StoreError> {
    let query = if lock {
        format!("select {ENTITY_COLUMNS} from entities where tenant_id = $1 and type = $2 and id = $3 for update")
    } else {
        format!("select {ENTITY_COLUMNS} from entities where tenant_id = $1 and type = $2 and id = $3")
    };
    let row = sqlx::query(&query).bind(tenant).bind(type_name).bind(id).fetch_optional(&mut *tx).await?;
    Ok(row.as_ref().map(entity_from_row).transpose()?)
}

/// A `where` load: each condition is `(field, value)`; `id` and `state` are columns, any other
/// name a data field. An array value means "one of". Rows come in id order (and are locked in
/// that order when `lock`), so two transitions locking the same rows cannot deadlock.
pub async fn load_where(
    tx: &mut PgConnection,
    tenant: TenantId,
    type_name: &str,
    conditions: &[(String, Value)],
    lock: bool,
    limit: i64,
) -> Result<Vec<StoredEntity>, StoreError> {
    let mut query = format!("select {ENTITY_COLUMNS} from entities where tenant_id = $1 and type = $2");
    let mut binds: Vec<Bind> = Vec::new();
    where_conditions(conditions, &mut query, &mut binds, 3);
    query.push_str(&format!(" order by id limit {limit}"));
    if lock {
        query.push_str(" for update");
    }
    let q = bind_all(sqlx::query(&query).bind(tenant).bind(type_name), binds);
    let rows = q.fetch_all(&mut *tx).await?;
    Ok(rows.iter().map(entity_from_row).collect::<Result<_, _>>()?)
}

/// The rows of `type_name` among `ids` (no lock), in id order: the `by id` loads of many
/// entities in one statement (the inbox).
pub async fn get_typed_many(
    tx: &mut PgConnection,
    tenant: TenantId,
    type_name: &str,
    ids: &[Uuid],
) -> Result<Vec<StoredEntity>, StoreError> {
    let query = format!(
        "select {ENTITY_COLUMNS} from entities where tenant_id = $1 and type = $2 and id = any($3) order by id"
    );
    let rows = sqlx::query(&query).bind(tenant).bind(type_name).bind(ids).fetch_all(&mut *tx).await?;
    Ok(rows.iter().map(entity_from_row).collect::<Result<_, _>>()?)
}

/// The type of each of `ids` that names an entity of the tenant.
pub async fn types_of(
    tx: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, StoreError> {
    Ok(sqlx::query_as("select id, type from entities where tenant_id = $1 and id = any($2)")
        .bind(tenant)
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?)
}

/// Many `where` loads of one type in one statement, without locks: for each request, exactly
/// what [`load_where`] gives it (rows matching every condition, in id order, at most `limit`), in
/// the order of `requests`. One `union all` branch per request, each with its own parameters, so
/// that each is planned with its values as [`load_where`]'s statement is.
pub async fn load_where_many(
    tx: &mut PgConnection,
    tenant: TenantId,
    type_name: &str,
    requests: &[&[(String, Value)]],
    limit: i64,
) -> Result<Vec<Vec<StoredEntity>>, StoreError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = String::new();
    let mut binds: Vec<Bind> = Vec::new();
    for (i, conditions) in requests.iter().enumerate() {
        if i > 0 {
            query.push_str(" union all ");
        }
        query.push_str(&format!(
            "(select {i}::int4 as batch_index, {ENTITY_COLUMNS} from entities where tenant_id = $1 and type = $2"
        ));
        let first = binds.len() + 3;
        where_conditions(conditions, &mut query, &mut binds, first);
        query.push_str(&format!(" order by id limit {limit})"));
    }
    let q = bind_all(sqlx::query(&query).bind(tenant).bind(type_name), binds);
    let rows = q.fetch_all(&mut *tx).await?;
    let mut out: Vec<Vec<StoredEntity>> = vec![Vec::new(); requests.len()];
    for row in &rows {
        let i: i32 = row.try_get("batch_index")?;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            slot.push(entity_from_row(row)?);
        }
    }
    Ok(out)
}

/// Appends ` and …` for each `where` condition to `query`, its values to `binds`, numbering the
/// parameters from `first` (the statement's own come before).
fn where_conditions(conditions: &[(String, Value)], query: &mut String, binds: &mut Vec<Bind>, first: usize) {
    let start = binds.len();
    for (field, value) in conditions {
        let n = binds.len() - start + first;
        let many = value.is_array();
        match (field.as_str(), many) {
            ("id", false) => {
                query.push_str(&format!(" and id = ${n}::text::uuid"));
                binds.push(Bind::Text(scalar_text(value)));
            }
            ("id", true) => {
                query.push_str(&format!(" and id::text = any(${n}::text[])"));
                binds.push(Bind::TextArray(array_texts(value)));
            }
            ("state", false) => {
                query.push_str(&format!(" and state = ${n}"));
                binds.push(Bind::Text(scalar_text(value)));
            }
            ("state", true) => {
                query.push_str(&format!(" and state = any(${n}::text[])"));
                binds.push(Bind::TextArray(array_texts(value)));
            }
            (_, false) => {
                query.push_str(&format!(" and data -> ${n} = ${}", n + 1));
                binds.push(Bind::Text(field.clone()));
                binds.push(Bind::Json(value.clone()));
            }
            (_, true) => {
                query.push_str(&format!(" and data -> ${n} in (select jsonb_array_elements(${}))", n + 1));
                binds.push(Bind::Text(field.clone()));
                binds.push(Bind::Json(value.clone()));
            }
        }
    }
}

enum Bind {
    Text(String),
    TextArray(Vec<String>),
    Json(Value),
}

/// `q` with `binds` bound after its parameters, in order.
fn bind_all(
    mut q: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t),
            Bind::TextArray(t) => q.bind(t),
            Bind::Json(v) => q.bind(v),
        };
    }
    q
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn array_texts(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(scalar_text).collect()).unwrap_or_default()
}

/// Inserts a new entity at `version` (1; 0 when the type's create transition runs next, in the
/// same transaction, and bumps it to 1).
#[expect(clippy::too_many_arguments, reason = "one bind per column; a struct would only rename them")]
pub async fn insert_entity(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    type_name: &str,
    (state, version): (&str, i64),
    data: &Value,
    config_version: i64,
    actor: &str,
    now: DateTime<Utc>,
    skip_if_exists: bool,
) -> Result<Option<StoredEntity>, StoreError> {
    // Only the id: a row that collides with another on a unique constraint's index is an error.
    let conflict = if skip_if_exists { "on conflict (tenant_id, id) do nothing" } else { "" };
    let query = format!(
        "insert into entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by) \
         values ($1, $2, $3, $4, $5, $9, $6, $7, $7, $8, $8) {conflict} returning {ENTITY_COLUMNS}"
    );
    let row = sqlx::query(&query)
        .bind(tenant)
        .bind(id)
        .bind(type_name)
        .bind(state)
        .bind(data)
        .bind(config_version)
        .bind(now)
        .bind(actor)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row.as_ref().map(entity_from_row).transpose()?)
}

/// The fields of the unique constraint whose index is `index` (from the index's comment, written
/// when the version that asked for it was published), and its type; `None` for no such index.
pub async fn unique_index_fields(
    pool: &sqlx::PgPool,
    index: &str,
) -> Result<Option<(String, Vec<String>)>, sqlx::Error> {
    let comment: Option<Option<String>> = sqlx::query_scalar(
        "select obj_description(c.oid, 'pg_class') from pg_class c \
         where c.relname = $1 and c.relkind = 'i' and starts_with(c.relname::text, $2)",
    )
    .bind(index)
    .bind(super::query::UNIQUE_PREFIX)
    .fetch_optional(pool)
    .await?;
    let Some(comment) = comment.flatten().and_then(|c| serde_json::from_str::<Value>(&c).ok()) else {
        return Ok(None);
    };
    let type_name = comment["type"].as_str().unwrap_or_default().to_string();
    let fields = comment["fields"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    Ok(Some((type_name, fields)))
}

/// Writes a new state and data, bumping the version. Returns the new row.
pub async fn update_entity(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    state: &str,
    data: &Value,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<StoredEntity, StoreError> {
    let query = format!(
        "update entities set state = $3, data = $4, version = version + 1, updated_at = $5, updated_by = $6 \
         where tenant_id = $1 and id = $2 returning {ENTITY_COLUMNS}"
    );
    let row = sqlx::query(&query)
        .bind(tenant)
        .bind(id)
        .bind(state)
        .bind(data)
        .bind(now)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
    Ok(entity_from_row(&row)?)
}

pub struct HistoryRow<'a> {
    pub entity_id: Uuid,
    pub entity_type: &'a str,
    pub transition: &'a str,
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub actor_id: &'a str,
    pub actor_email: &'a str,
    pub at: DateTime<Utc>,
    pub input: &'a Value,
    pub changes: &'a Value,
    pub config_version: i64,
    pub parent_id: Option<i64>,
}

pub async fn insert_history(tx: &mut PgConnection, tenant: TenantId, h: HistoryRow<'_>) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar(
        "insert into transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id, actor_email, at, input, changes, config_version, parent_id) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning id",
    )
    .bind(tenant)
    .bind(h.entity_id)
    .bind(h.entity_type)
    .bind(h.transition)
    .bind(h.from)
    .bind(h.to)
    .bind(h.actor_id)
    .bind(h.actor_email)
    .bind(h.at)
    .bind(h.input)
    .bind(h.changes)
    .bind(h.config_version)
    .bind(h.parent_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(id)
}

/// A transition's own writes in one statement (one round trip instead of two plus one per
/// event): the entity's new state and data, its history row, and `events` (in their order) in
/// the outbox under that history row. Returns the updated entity and the history row's id.
pub async fn record_transition(
    tx: &mut PgConnection,
    tenant: TenantId,
    data: &Value,
    h: HistoryRow<'_>,
    events: &[EmittedEvent],
) -> Result<(StoredEntity, i64), StoreError> {
    let query = record_transition_sql();
    let row = sqlx::query(&query)
        .bind(tenant)
        .bind(h.entity_id)
        .bind(h.to)
        .bind(data)
        .bind(h.at)
        .bind(h.actor_id)
        .bind(h.entity_type)
        .bind(h.transition)
        .bind(h.from)
        .bind(h.actor_email)
        .bind(h.input)
        .bind(h.changes)
        .bind(h.config_version)
        .bind(h.parent_id)
        .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.entity_type.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.entity_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| &e.payload).collect::<Vec<_>>())
        .fetch_one(&mut *tx)
        .await?;
    let history_id: i64 = row.try_get("history_id")?;
    Ok((written_from_row(&row, data.clone())?, history_id))
}

/// The statement of [`record_transition`] (parameters `$1`…`$19`).
fn record_transition_sql() -> String {
    format!(
        "with u as ( \
             update entities set state = $3, data = $4, version = version + 1, updated_at = $5, updated_by = $6 \
             where tenant_id = $1 and id = $2 returning {WRITTEN_COLUMNS} \
         ), h as ( \
             insert into transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id, \
                                      actor_email, at, input, changes, config_version, parent_id) \
             select $1, u.id, $7, $8, $9, u.state, $6, $10, $5, $11, $12, $13, $14 from u returning id \
         ), e as ( \
             insert into outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id) \
             select $1, ev.id, ev.name, ev.entity_type, ev.entity_id, ev.payload, h.id \
             from h, unnest($15::uuid[], $16::text[], $17::text[], $18::uuid[], $19::jsonb[]) \
                 with ordinality as ev (id, name, entity_type, entity_id, payload, n) \
             order by ev.n \
         ) \
         select u.*, h.id as history_id from u, h"
    )
}

/// A transition's last round trip as one simple query: its writes ([`record_transition`], and
/// [`cancel_timers`] when `cancel_timers` says the state changed), then `COMMIT`. The values go
/// as literals to the statements [`prepare_transition_statements`] prepared (ids, numbers and
/// timestamps formatted here; text and JSON as escape strings, [`literal`]); `None` when a value
/// cannot be a literal (text with a NUL, which Postgres refuses either way): the caller writes
/// the parameterized way. The first statement's row is [`record_transition`]'s.
pub fn record_transition_and_commit(
    tenant: TenantId,
    data: &Value,
    h: &HistoryRow<'_>,
    events: &[EmittedEvent],
    cancel_timers: bool,
) -> Option<String> {
    use literal::{array, json, text, uuid};
    use std::fmt::Write as _;
    let tenant = uuid(&tenant.as_uuid());
    let mut q = String::with_capacity(1024);
    let _ = write!(q, "execute {RECORD_TRANSITION}({tenant}, {}, {}, ", uuid(&h.entity_id), text(h.to)?);
    let _ = write!(q, "{}, {}, {}, ", json(data)?, literal::timestamp(&h.at), text(h.actor_id)?);
    let _ = write!(q, "{}, {}, ", text(h.entity_type)?, text(h.transition)?);
    let from = match h.from {
        Some(from) => text(from)?,
        None => "null".into(),
    };
    let _ = write!(q, "{from}, {}, {}, {}, ", text(h.actor_email)?, json(h.input)?, json(h.changes)?);
    let parent = h.parent_id.map_or_else(|| "null".to_string(), |p| p.to_string());
    let _ = write!(q, "{}, {parent}, ", h.config_version);
    let _ = write!(q, "{}, ", array(events.iter().map(|e| Some(uuid(&e.id))), "uuid")?);
    let _ = write!(q, "{}, ", array(events.iter().map(|e| text(&e.name)), "text")?);
    let _ = write!(q, "{}, ", array(events.iter().map(|e| text(&e.entity_type)), "text")?);
    let _ = write!(q, "{}, ", array(events.iter().map(|e| Some(uuid(&e.entity_id))), "uuid")?);
    let _ = write!(q, "{})", array(events.iter().map(|e| json(&e.payload)), "jsonb")?);
    if cancel_timers {
        let _ = write!(q, "; execute {CANCEL_TIMERS}({tenant}, {}, {})", uuid(&h.entity_id), literal::timestamp(&h.at));
    }
    q.push_str("; commit");
    Some(q)
}

/// Values as literals of a simple query (which has no parameters), for the statements a
/// transition sends that way. Each is safe by construction: ids, numbers and timestamps are
/// formatted from their types (no quote can occur in them); text is an escape string.
pub mod literal {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde_json::Value;
    use uuid::Uuid;

    /// `E'…'` with every backslash and quote doubled: in an escape string every escape starts
    /// with a backslash, so nothing else is special (whatever `standard_conforming_strings`
    /// says). `None` for text with a NUL, which no Postgres text can hold (and which would end
    /// the query's message early).
    pub fn text(s: &str) -> Option<String> {
        if !s.contains(['\0', '\'', '\\']) {
            return Some(format!("E'{s}'"));
        }
        if s.contains('\0') {
            return None;
        }
        let mut out = String::with_capacity(s.len() + 8);
        out.push_str("E'");
        for c in s.chars() {
            match c {
                '\'' => out.push_str("''"),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
        out.push('\'');
        Some(out)
    }

    /// JSON as its text, an escape string (a `jsonb` parameter reads it). Written straight into
    /// the literal, each quote and backslash doubled on the way: JSON text never holds a NUL
    /// (serde_json writes control characters as `\u` escapes), and in UTF-8 the bytes of `'`
    /// and `\` are never part of another character.
    pub fn json(v: &Value) -> Option<String> {
        struct Doubling(Vec<u8>);
        impl std::io::Write for Doubling {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let mut rest = buf;
                while let Some(at) = rest.iter().position(|b| matches!(b, b'\'' | b'\\')) {
                    self.0.extend_from_slice(&rest[..=at]);
                    self.0.push(rest[at]);
                    rest = &rest[at + 1..];
                }
                self.0.extend_from_slice(rest);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = Doubling(Vec::with_capacity(256));
        out.0.extend_from_slice(b"E'");
        serde_json::to_writer(&mut out, v).ok()?;
        out.0.push(b'\'');
        String::from_utf8(out.0).ok()
    }

    pub fn uuid(id: &Uuid) -> String {
        format!("'{}'", id.hyphenated())
    }

    /// A `timestamptz` to the microsecond, in UTC.
    pub fn timestamp(at: &DateTime<Utc>) -> String {
        format!("'{}'", at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    /// `array[…]::ty[]` of the items (`None` if one is `None`), `'{}'::ty[]` when there are none.
    pub fn array(items: impl Iterator<Item = Option<String>>, ty: &str) -> Option<String> {
        let items = items.collect::<Option<Vec<_>>>()?;
        if items.is_empty() {
            return Some(format!("'{{}}'::{ty}[]"));
        }
        Some(format!("array[{}]::{ty}[]", items.join(", ")))
    }
}

/// [`ENTITY_COLUMNS`] but `data`: what a write returns of the row whose data it was given (the
/// row is locked, so the data is what was written). Not sending it back saves Postgres the
/// jsonb's output and the engine its decoding (~2.5% of the HTTP path's CPU in the benchmark's
/// profile). Keys come back in the order the engine has them, where a read gives jsonb's order.
const WRITTEN_COLUMNS: &str =
    "id, type, state, version, config_version, created_at, updated_at, created_by, updated_by, immutable";

fn written_from_row(row: &PgRow, data: Value) -> Result<StoredEntity, sqlx::Error> {
    Ok(StoredEntity {
        entity: Entity {
            id: row.try_get("id")?,
            type_name: row.try_get("type")?,
            state: row.try_get("state")?,
            version: row.try_get("version")?,
            data,
            created_by: row.try_get("created_by")?,
            updated_by: row.try_get("updated_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        config_version: row.try_get("config_version")?,
        immutable: row.try_get("immutable")?,
    })
}

pub async fn history(
    tx: &mut PgConnection,
    tenant: TenantId,
    entity_id: Uuid,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let rows = sqlx::query(
        "select id, transition, from_state, to_state, actor_id, actor_email, at, input, changes, config_version, parent_id \
         from transitions where tenant_id = $1 and entity_id = $2 order by id",
    )
    .bind(tenant)
    .bind(entity_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(HistoryEntry {
            id: r.try_get("id")?,
            transition: r.try_get("transition")?,
            from: r.try_get("from_state")?,
            to: r.try_get("to_state")?,
            actor: HistoryActor { id: r.try_get("actor_id")?, email: r.try_get("actor_email")? },
            at: r.try_get("at")?,
            input: r.try_get("input")?,
            changes: r.try_get("changes")?,
            definition_version: r.try_get("config_version")?,
            parent_id: r.try_get("parent_id")?,
        });
    }
    Ok(out)
}

/// What a transition's script wrote to a row it loaded with `lock: true` ([`record_update`]).
pub struct RowWrite<'a> {
    pub type_name: &'a str,
    pub id: Uuid,
    /// The row's full new data.
    pub data: &'a Value,
    /// `{field: {from, to}}` of the changed top-level fields (its history row's `changes`).
    pub changes: &'a Value,
    /// The transition that wrote it, by whom, when; its history row is the parent.
    pub transition: &'a str,
    pub actor_id: &'a str,
    pub actor_email: &'a str,
    pub at: DateTime<Utc>,
    pub parent_id: i64,
    /// The id of its `entity.changed` event.
    pub event_id: Uuid,
}

/// A row a script changed, in one statement (one round trip instead of four): the row read
/// again under its lock, then, unless its type is append-only, its new data and version, its
/// history row (same state, under the transition's) and its `entity.changed` event (payload
/// `{id, type, state, version}`, under the transition's history row). Returns the row as it was
/// before, and whether it was written (`false`: append-only, nothing written); `None` when
/// the row does not exist (as that type).
pub async fn record_update(
    tx: &mut PgConnection,
    tenant: TenantId,
    w: RowWrite<'_>,
) -> Result<Option<(StoredEntity, bool)>, StoreError> {
    let query = format!(
        "with old as ( \
             select {ENTITY_COLUMNS} from entities where tenant_id = $1 and type = $2 and id = $3 for update \
         ), u as ( \
             update entities e set data = $4, version = e.version + 1, updated_at = $5, updated_by = $6 \
             from old where e.tenant_id = $1 and e.id = old.id and not old.immutable \
             returning e.id, e.version \
         ), h as ( \
             insert into transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id, \
                                      actor_email, at, input, changes, config_version, parent_id) \
             select $1, old.id, old.type, $7, old.state, old.state, $6, $8, $5, '{{}}'::jsonb, $9, \
                    old.config_version, $10 \
             from old join u on u.id = old.id returning id \
         ), ev as ( \
             insert into outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id) \
             select $1, $11, $12, old.type, old.id, \
                    jsonb_build_object('id', old.id, 'type', old.type, 'state', old.state, 'version', u.version), $10 \
             from old join u on u.id = old.id \
         ) \
         select old.*, exists (select 1 from h) as written from old"
    );
    let row = sqlx::query(&query)
        .bind(tenant)
        .bind(w.type_name)
        .bind(w.id)
        .bind(w.data)
        .bind(w.at)
        .bind(w.actor_id)
        .bind(w.transition)
        .bind(w.actor_email)
        .bind(w.changes)
        .bind(w.parent_id)
        .bind(w.event_id)
        .bind(super::ENTITY_CHANGED)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let written: bool = row.try_get("written")?;
    Ok(Some((entity_from_row(&row)?, written)))
}

pub async fn insert_event(
    tx: &mut PgConnection,
    tenant: TenantId,
    event: &EmittedEvent,
    transition_id: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(event.id)
    .bind(&event.name)
    .bind(&event.entity_type)
    .bind(event.entity_id)
    .bind(&event.payload)
    .bind(transition_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The next value of a per-tenant sequence (1 for a new one), inside the caller's transaction.
pub async fn next_sequence(tx: &mut PgConnection, tenant: TenantId, name: &str) -> Result<i64, StoreError> {
    let v = sqlx::query_scalar(
        "insert into sequences (tenant_id, name, value) values ($1, $2, 1) \
         on conflict (tenant_id, name) do update set value = sequences.value + 1 returning value",
    )
    .bind(tenant)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    Ok(v)
}

/// Serialises requests that share an idempotency key (the second waits for the first).
pub async fn lock_idempotency_key(
    tx: &mut PgConnection,
    tenant: TenantId,
    actor: &str,
    key: &str,
) -> Result<(), StoreError> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{tenant}/{actor}/{key}"))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The record of a key whose age (by the database's clock, `now()` being the start of the
/// transaction) is under `ttl`: its request hash, status and answer. An older record is
/// treated as absent (see [`put_idempotency`]).
pub async fn get_idempotency(
    tx: &mut PgConnection,
    tenant: TenantId,
    actor: &str,
    key: &str,
    ttl: std::time::Duration,
) -> Result<Option<(String, i32, Value)>, StoreError> {
    // `now() - created_at < ttl` rather than `created_at > now() - ttl`: the subtraction of two
    // timestamps cannot overflow, whatever the ttl (the row is found by its key anyway).
    let row = sqlx::query(
        "select request_hash, status, response from idempotency \
         where tenant_id = $1 and actor_id = $2 and key = $3 and now() - created_at < $4",
    )
    .bind(tenant)
    .bind(actor)
    .bind(key)
    .bind(interval(ttl))
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match row {
        Some(r) => Some((r.try_get("request_hash")?, r.try_get("status")?, r.try_get("response")?)),
        None => None,
    })
}

/// What is stored for an idempotency key: the hash of the request and its answer.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyRecord<'a> {
    pub request_hash: &'a str,
    pub status: i32,
    pub response: &'a Value,
}

/// Stores the answer for a key, replacing an expired record of the same key in the same
/// statement (its age `ttl` or more; the purge may not have deleted it yet). The caller holds
/// [`lock_idempotency_key`] and found no live record with [`get_idempotency`], so a live one
/// cannot be there; if one were (a writer that skipped the lock), nothing is overwritten and
/// the answer is [`StoreError::IdempotencyRecordLive`], which rolls the request back rather
/// than record a second execution.
pub async fn put_idempotency(
    tx: &mut PgConnection,
    tenant: TenantId,
    actor: &str,
    key: &str,
    record: IdempotencyRecord<'_>,
    ttl: std::time::Duration,
) -> Result<(), StoreError> {
    let written = sqlx::query(
        "insert into idempotency as i (tenant_id, actor_id, key, request_hash, status, response) \
         values ($1, $2, $3, $4, $5, $6) \
         on conflict (tenant_id, actor_id, key) do update \
         set request_hash = excluded.request_hash, status = excluded.status, response = excluded.response, \
             created_at = excluded.created_at \
         where now() - i.created_at >= $7",
    )
    .bind(tenant)
    .bind(actor)
    .bind(key)
    .bind(record.request_hash)
    .bind(record.status)
    .bind(record.response)
    .bind(interval(ttl))
    .execute(&mut *tx)
    .await?;
    if written.rows_affected() != 1 {
        return Err(StoreError::IdempotencyRecordLive);
    }
    Ok(())
}

/// A duration as a Postgres `interval` (microseconds; saturating, never an error).
pub fn interval(d: std::time::Duration) -> sqlx::postgres::types::PgInterval {
    let microseconds = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    sqlx::postgres::types::PgInterval { months: 0, days: 0, microseconds }
}

/// Who fired each of `transitions` on an entity before: transition → distinct actor ids. One
/// query; transitions nobody fired are absent.
pub async fn earlier_actors(
    tx: &mut PgConnection,
    tenant: TenantId,
    entity_id: Uuid,
    transitions: &[String],
) -> Result<IndexMap<String, Vec<String>>, StoreError> {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        "select transition, array_agg(distinct actor_id order by actor_id) from transitions \
         where tenant_id = $1 and entity_id = $2 and transition = any($3) group by transition",
    )
    .bind(tenant)
    .bind(entity_id)
    .bind(transitions)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// [`earlier_actors`] of many entities in one statement: entity → transition → the ids of the
/// actors who fired it on the entity (of `transitions`; a transition nobody fired is missing).
pub async fn earlier_actors_many(
    tx: &mut PgConnection,
    tenant: TenantId,
    entity_ids: &[Uuid],
    transitions: &[String],
) -> Result<std::collections::HashMap<Uuid, IndexMap<String, Vec<String>>>, StoreError> {
    let rows: Vec<(Uuid, String, Vec<String>)> = sqlx::query_as(
        "select entity_id, transition, array_agg(distinct actor_id order by actor_id) from transitions \
         where tenant_id = $1 and entity_id = any($2) and transition = any($3) group by entity_id, transition",
    )
    .bind(tenant)
    .bind(entity_ids)
    .bind(transitions)
    .fetch_all(&mut *tx)
    .await?;
    let mut out: std::collections::HashMap<Uuid, IndexMap<String, Vec<String>>> = std::collections::HashMap::new();
    for (entity, transition, actors) in rows {
        out.entry(entity).or_default().insert(transition, actors);
    }
    Ok(out)
}

/// A timer to start: the transition, its input, and when it is due.
#[derive(Debug, Clone)]
pub struct NewTimer<'a> {
    pub transition: &'a str,
    pub input: &'a Value,
    pub due_at: DateTime<Utc>,
}

/// Starts the timers of the state an entity has just entered (at `entity_version`).
pub async fn insert_timers(
    tx: &mut PgConnection,
    tenant: TenantId,
    entity_id: Uuid,
    state: &str,
    entity_version: i64,
    now: DateTime<Utc>,
    timers: &[NewTimer<'_>],
) -> Result<(), StoreError> {
    for t in timers {
        sqlx::query(
            "insert into timers (tenant_id, entity_id, state, transition, input, due_at, entity_version, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant)
        .bind(entity_id)
        .bind(state)
        .bind(t.transition)
        .bind(t.input)
        .bind(t.due_at)
        .bind(entity_version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The statement of [`cancel_timers`] (also prepared as [`CANCEL_TIMERS`]).
const CANCEL_TIMERS_SQL: &str = "update timers set fired_at = $3, outcome = 'cancelled' \
     where tenant_id = $1 and entity_id = $2 and fired_at is null";

/// Settles an entity's pending timers as 'cancelled' (it left their state). Returns how many.
pub async fn cancel_timers(
    tx: &mut PgConnection,
    tenant: TenantId,
    entity_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let done = sqlx::query(CANCEL_TIMERS_SQL).bind(tenant).bind(entity_id).bind(now).execute(&mut *tx).await?;
    Ok(done.rows_affected())
}

/// Claims one due pending timer of any tenant (no tenant needs to be set), locking it for the
/// transaction and passing over timers locked by others and those in `skip`. Returns
/// `(tenant, timer id)`. See `migrations/0002_timers.sql` for how it sees every tenant's rows.
pub async fn claim_due_timer(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    skip: &[i64],
) -> Result<Option<(TenantId, i64)>, StoreError> {
    let row: Option<(TenantId, i64)> = sqlx::query_as("select tenant_id, id from claim_due_timers($1, 1, $2)")
        .bind(now)
        .bind(skip)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row)
}

/// A timer row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimerRow {
    pub id: i64,
    pub entity_id: Uuid,
    pub state: String,
    pub transition: String,
    pub input: Value,
    pub due_at: DateTime<Utc>,
    pub entity_version: i64,
    pub fired_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

pub async fn get_timer(tx: &mut PgConnection, tenant: TenantId, id: i64) -> Result<Option<TimerRow>, StoreError> {
    let row = sqlx::query_as(
        "select id, entity_id, state, transition, input, due_at, entity_version, fired_at, outcome \
         from timers where tenant_id = $1 and id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row)
}

/// An entity's timers, oldest first.
pub async fn entity_timers(
    tx: &mut PgConnection,
    tenant: TenantId,
    entity_id: Uuid,
) -> Result<Vec<TimerRow>, StoreError> {
    let rows = sqlx::query_as(
        "select id, entity_id, state, transition, input, due_at, entity_version, fired_at, outcome \
         from timers where tenant_id = $1 and entity_id = $2 order by id",
    )
    .bind(tenant)
    .bind(entity_id)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows)
}

/// Settles a timer: when and how (`fired`, `cancelled`, a rejection code).
pub async fn settle_timer(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: i64,
    at: DateTime<Utc>,
    outcome: &str,
) -> Result<(), StoreError> {
    sqlx::query("update timers set fired_at = $3, outcome = $4 where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .bind(at)
        .bind(outcome)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Locks an entity unless another transaction holds it: `Ok(None)` when it is locked by
/// someone else or does not exist (see [`entity_exists`]).
pub async fn lock_entity_skip_locked(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<StoredEntity>, StoreError> {
    let query =
        format!("select {ENTITY_COLUMNS} from entities where tenant_id = $1 and id = $2 for update skip locked");
    let row = sqlx::query(&query).bind(tenant).bind(id).fetch_optional(&mut *tx).await?;
    Ok(row.as_ref().map(entity_from_row).transpose()?)
}

pub async fn entity_exists(tx: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<bool, StoreError> {
    let exists = sqlx::query_scalar("select exists (select 1 from entities where tenant_id = $1 and id = $2)")
        .bind(tenant)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    Ok(exists)
}

/// Runs a statement that manages a savepoint (`savepoint x`, `rollback to savepoint x`, …).
pub async fn savepoint(tx: &mut PgConnection, statement: &'static str) -> Result<(), StoreError> {
    sqlx::query(statement).execute(&mut *tx).await?;
    Ok(())
}

pub async fn delete_entity(tx: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
    sqlx::query("delete from entities where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The types of the entities among `ids` that exist (in this tenant).
pub async fn entity_types(
    tx: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, StoreError> {
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("select id, type from entities where tenant_id = $1 and id = any($2)")
            .bind(tenant)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The inbox's candidates ([`super::inbox`]): entities of the given `(type, state)` pairs after
/// `after` in id order (ids are UUIDv7: creation order), at most `limit`. Each pair is an index
/// scan of `entities_type_state_id` (tenant, type, state, id) reading at most `limit` rows, so
/// the statement reads at most `pairs × limit` rows however many entities wait.
pub async fn inbox_candidates(
    tx: &mut PgConnection,
    tenant: TenantId,
    pairs: &[(String, String)],
    after: Uuid,
    limit: i64,
) -> Result<Vec<StoredEntity>, StoreError> {
    let types: Vec<&str> = pairs.iter().map(|(t, _)| t.as_str()).collect();
    let states: Vec<&str> = pairs.iter().map(|(_, s)| s.as_str()).collect();
    let rows = sqlx::query(&inbox_candidates_sql())
        .bind(tenant)
        .bind(&types)
        .bind(&states)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows.iter().map(entity_from_row).collect::<Result<_, _>>()?)
}

/// The statement of [`inbox_candidates`] (`$1` tenant, `$2` types, `$3` states, `$4` after,
/// `$5` limit); `EXPLAIN` in tests and the benchmark notes reads it from here.
pub fn inbox_candidates_sql() -> String {
    format!(
        "select e.* from unnest($2::text[], $3::text[]) as c(c_type, c_state) \
         cross join lateral (select {ENTITY_COLUMNS} from entities n \
           where n.tenant_id = $1 and type = c.c_type and state = c.c_state and id > $4 \
           order by id limit $5) e \
         order by e.id limit $5"
    )
}

/// A user of the tenant as a user field sees it ([`super::refs`]).
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub active: bool,
}

/// The users among `ids`, locked `FOR SHARE` when `lock`: a write that checked a user field
/// holds the user row until it commits, so the user cannot be deactivated (or lose the role)
/// between the check and the commit.
pub async fn users_by_ids(
    tx: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
    lock: bool,
) -> Result<Vec<UserRow>, StoreError> {
    let text = if lock {
        "select id, email, name, roles, active from users where tenant_id = $1 and id = any($2) \
         order by id for share"
    } else {
        "select id, email, name, roles, active from users where tenant_id = $1 and id = any($2)"
    };
    let rows: Vec<(Uuid, String, String, Vec<String>, bool)> =
        sqlx::query_as(text).bind(tenant).bind(ids).fetch_all(&mut *tx).await?;
    Ok(rows.into_iter().map(|(id, email, name, roles, active)| UserRow { id, email, name, roles, active }).collect())
}

/// The ids of the users with these e-mail addresses (compared in lower case, as logins are),
/// by lower-cased e-mail.
pub async fn user_ids_by_emails(
    tx: &mut PgConnection,
    tenant: TenantId,
    emails: &[String],
) -> Result<std::collections::HashMap<String, Uuid>, StoreError> {
    let rows: Vec<(String, Uuid)> =
        sqlx::query_as("select lower(email), id from users where tenant_id = $1 and lower(email) = any($2)")
            .bind(tenant)
            .bind(emails)
            .fetch_all(&mut *tx)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The active users of the tenant having `role` (any role when `None`), by name, at most
/// `limit`: the choices of a user field.
pub async fn user_choices(
    tx: &mut PgConnection,
    tenant: TenantId,
    role: Option<&str>,
    limit: i64,
) -> Result<Vec<UserRow>, StoreError> {
    let rows: Vec<(Uuid, String, String, Vec<String>, bool)> = sqlx::query_as(
        "select id, email, name, roles, active from users \
         where tenant_id = $1 and active and ($2::text is null or $2 = any(roles)) \
         order by lower(name), lower(email), id limit $3",
    )
    .bind(tenant)
    .bind(role)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(|(id, email, name, roles, active)| UserRow { id, email, name, roles, active }).collect())
}
