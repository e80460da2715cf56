//! The realistic mix's baseline: pgbench scripts, one per operation kind of the HTTP mix, each
//! the SQL the store sends for that step (taken from the server's statement log, see
//! docs/benchmarks.md, "The realistic mix"): the same rows locked `FOR UPDATE` in the same
//! order, the same loads, the same writes (entity rows, history rows, outbox rows, the order
//! number's sequence), the same list and detail reads, as `switchyard_app` under row-level
//! security with `app.tenant_id` set.
//!
//! pgbench works on rows of its own: for each client, [`PER_CLIENT`] orders (created and
//! submitted through the store, so their data is what a real order's is) each with a trip, on
//! the tenants in turn, listed in the table `bench_pgmix` that each script reads in the same
//! round trip as it sets the tenant. The stock rows, customers and price lists are the tenants'
//! own: the same rows the HTTP mix locks and reads, so the contention is the same.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use engine::model::Actor;
use engine::store::{CreateOptions, Store, TransitionOptions, TransitionRequest};
use serde_json::json;
use sqlx::PgPool;
use switchyard_bench::realistic::load::{MixResult, Op};
use switchyard_bench::realistic::world::{self, Tenant, User};

/// pgbench's orders per client.
pub const PER_CLIENT: usize = 4;

/// A pgbench script: an operation kind of the mix, with the approval split in two (the credit
/// check's refusals roll back after the loads and the guard, they write nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Create,
    Submit,
    Approve,
    ApproveRefused,
    Reject,
    Allocate,
    Cancel,
    Trip,
    Plan,
    Dispatch,
    Start,
    Deliver,
    Complete,
    List,
    Detail,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Create,
        Kind::Submit,
        Kind::Approve,
        Kind::ApproveRefused,
        Kind::Reject,
        Kind::Allocate,
        Kind::Cancel,
        Kind::Trip,
        Kind::Plan,
        Kind::Dispatch,
        Kind::Start,
        Kind::Deliver,
        Kind::Complete,
        Kind::List,
        Kind::Detail,
    ];

    pub fn op(self) -> Op {
        match self {
            Kind::Create => Op::Create,
            Kind::Submit => Op::Submit,
            Kind::Approve | Kind::ApproveRefused => Op::Approve,
            Kind::Reject => Op::Reject,
            Kind::Allocate => Op::Allocate,
            Kind::Cancel => Op::Cancel,
            Kind::Trip => Op::Trip,
            Kind::Plan => Op::Plan,
            Kind::Dispatch => Op::Dispatch,
            Kind::Start => Op::Start,
            Kind::Deliver => Op::Deliver,
            Kind::Complete => Op::Complete,
            Kind::List => Op::List,
            Kind::Detail => Op::Detail,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::ApproveRefused => "approve-refused",
            k => k.op().name(),
        }
    }
}

/// The weights of the scripts: the HTTP mix's counts in its window, the approvals split into
/// those that passed and those the credit check refused.
pub fn weights(mix: &MixResult) -> Vec<(Kind, u64)> {
    Kind::ALL
        .iter()
        .map(|&k| {
            let count = mix.ops.get(&k.op()).map_or(0, |s| s.count);
            let w = match k {
                Kind::Approve => count.saturating_sub(mix.refused_approvals),
                Kind::ApproveRefused => mix.refused_approvals.min(count),
                _ => count,
            };
            (k, w)
        })
        .collect()
}

fn actor(u: &User) -> Actor {
    Actor {
        id: u.id.to_string(),
        email: u.email.clone(),
        roles: u.roles.clone(),
        system: false,
        attributes: Default::default(),
    }
}

/// Creates pgbench's rows: `PER_CLIENT` orders per client (submitted, so priced like the mix's;
/// one to three lines, as the mix's) with a trip each, on the tenants in turn, listed in
/// `bench_pgmix` with what the scripts bind: the stock rows of the order's lines (in line order,
/// the order the store updates them in), the ids the creation's reference check asks about, the
/// data of a new order.
pub async fn prepare(owner: &PgPool, store: &Store, tenants: &[Tenant], clients: usize) -> Result<()> {
    sqlx::query(
        "create table bench_pgmix (n int primary key, tenant_id uuid not null, order_id uuid not null, \
         trip_id uuid not null, customer_id uuid not null, tight_id uuid not null, warehouse_id uuid not null, \
         vehicle_id uuid not null, nlines int not null, s1 uuid not null, s2 uuid not null, s3 uuid not null, \
         q1 int not null, q2 int not null, q3 int not null, product_texts text not null, products_json text not null, \
         ref_ids text not null, new_order text not null, config_version bigint not null, \
         sales_id text not null, manager_id text not null, warehouse_user_id text not null, \
         dispatcher_id text not null, driver_id text not null)",
    )
    .execute(owner)
    .await
    .context("creating bench_pgmix")?;
    sqlx::query("grant select on bench_pgmix to switchyard_app").execute(owner).await?;
    for n in 0..clients * PER_CLIENT {
        let t = &tenants[n % tenants.len()];
        let customer = t.customers[n % t.customers.len()];
        let tight = t.tight[n % t.tight.len()];
        let warehouse = &t.warehouses[n % t.warehouses.len()];
        // One to three lines, as the mix's orders.
        let nlines = 1 + n % 3;
        let lines: Vec<(uuid::Uuid, u32)> =
            (0..nlines).map(|k| (t.products[(n + k) % t.products.len()], 1 + (k as u32 % 3))).collect();
        let sales = actor(&t.sales);
        let data = world::order_data(customer, warehouse.id, &lines);
        let order = store
            .create_entity(t.id, "order", data, &sales, CreateOptions::default())
            .await
            .with_context(|| format!("creating pgbench's order {n}"))?;
        let new_order = order.data.clone();
        store
            .transition(
                t.id,
                TransitionRequest { type_name: "order", id: order.id, name: "submitOrder", input: json!({}) },
                &sales,
                TransitionOptions::default(),
            )
            .await
            .with_context(|| format!("submitting pgbench's order {n}"))?;
        let trip = store
            .create_entity(
                t.id,
                "trip",
                json!({ "warehouse_id": warehouse.id, "vehicle_id": warehouse.vehicle, "driver_id": t.driver.id, "order_ids": [order.id] }),
                &actor(&t.dispatcher),
                CreateOptions::default(),
            )
            .await
            .with_context(|| format!("creating pgbench's trip {n}"))?;
        let mut tx = owner.begin().await?;
        engine::store::sql::set_tenant(&mut tx, t.id).await?;
        // The order is on its trip, as a dispatched one is (startTrip and completeTrip load the
        // trip's orders by `trip_id`).
        sqlx::query("update entities set data = data || jsonb_build_object('trip_id', $2::text) where tenant_id = $1 and id = $3")
            .bind(t.id)
            .bind(trip.id.to_string())
            .bind(order.id)
            .execute(&mut *tx)
            .await?;
        let mut stock = Vec::new();
        for (p, _) in &lines {
            let id: uuid::Uuid = sqlx::query_scalar(
                "select id from entities where tenant_id = $1 and type = 'inventory' \
                 and data->>'warehouse_id' = $2 and data->>'product_id' = $3",
            )
            .bind(t.id)
            .bind(warehouse.id.to_string())
            .bind(p.to_string())
            .fetch_one(&mut *tx)
            .await
            .context("the stock row of a line")?;
            stock.push(id);
        }
        tx.commit().await?;
        let stock_at = |k: usize| stock.get(k).or(stock.first()).copied().unwrap_or_default();
        let qty_at = |k: usize| lines.get(k).map_or(0, |(_, q)| i32::try_from(*q).unwrap_or(1));
        let mut products: Vec<String> = lines.iter().map(|(p, _)| p.to_string()).collect();
        products.sort();
        let mut refs: Vec<String> = vec![customer.to_string(), warehouse.id.to_string()];
        refs.extend(products.iter().cloned());
        refs.sort();
        sqlx::query(
            "insert into bench_pgmix values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)",
        )
        .bind(i32::try_from(n)?)
        .bind(t.id)
        .bind(order.id)
        .bind(trip.id)
        .bind(customer)
        .bind(tight)
        .bind(warehouse.id)
        .bind(warehouse.vehicle)
        .bind(i32::try_from(nlines)?)
        .bind(stock_at(0))
        .bind(stock_at(1))
        .bind(stock_at(2))
        .bind(qty_at(0))
        .bind(qty_at(1))
        .bind(qty_at(2))
        .bind(format!("{{{}}}", products.join(",")))
        .bind(serde_json::to_string(&products)?)
        .bind(format!("{{{}}}", refs.join(",")))
        .bind(new_order.to_string())
        .bind(t.version)
        .bind(t.sales.id.to_string())
        .bind(t.manager.id.to_string())
        .bind(t.warehouse.id.to_string())
        .bind(t.dispatcher.id.to_string())
        .bind(t.driver.id.to_string())
        .execute(owner)
        .await?;
    }
    Ok(())
}

/// Writes each kind's script into `dir`.
pub fn write_scripts(dir: &Path) -> Result<Vec<(Kind, PathBuf)>> {
    Kind::ALL
        .iter()
        .map(|&k| {
            let path = dir.join(format!("{}.sql", k.name()));
            std::fs::write(&path, script(k)).with_context(|| format!("writing {}", path.display()))?;
            Ok((k, path))
        })
        .collect()
}

/// The first lines of every script: which of the client's rows, `BEGIN`, and the tenant setting
/// read with the row's ids in one round trip (the store sends `BEGIN` and the setting as one).
const HEAD: &str = r"\set n :client_id * :per_client + random(0, :per_client - 1)
BEGIN;
SELECT set_config('app.tenant_id', r.tenant_id::text, true), r.* FROM bench_pgmix r WHERE n = :n \gset
";

/// The columns the store reads and returns for an entity (`sql::ENTITY_COLUMNS`).
const COLS: &str =
    "id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by, immutable";

/// A new id like the store's (UUID v7: time first, so new rows go to the right of the index).
const NEW_ID: &str = "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing \
     substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) from 1 for 6), 52, 1), 53, 1), 'hex')::uuid";

fn lock(ty: &str, id: &str) -> String {
    format!("SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = '{ty}' AND id = :{id}::uuid FOR UPDATE;\n")
}

fn get(ty: &str, id: &str) -> String {
    format!("SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = '{ty}' AND id = :{id}::uuid;\n")
}

/// The store's reread of an entity after follow-ups (`sql::get_entity`: no type).
fn reread(id: &str) -> String {
    format!("SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND id = :{id}::uuid;\n")
}

/// A transition's own writes, the store's statement (`sql::record_transition`): the entity's
/// state and data, its history row, its event in the outbox; `\gset`s `history_id`.
#[expect(clippy::too_many_arguments, reason = "the statement's own parameters")]
fn record(
    ty: &str,
    id: &str,
    from: &str,
    to: &str,
    transition: &str,
    actor: &str,
    email: &str,
    data: &str,
    input: &str,
    changes: &str,
    event: &str,
) -> String {
    let from_sql = if from.is_empty() { "NULL".to_string() } else { format!("'{from}'") };
    format!(
        "WITH u AS ( UPDATE entities SET state = '{to}', data = {data}, version = version + 1, updated_at = now(), updated_by = :{actor}::text \
         WHERE tenant_id = :tenant_id::uuid AND id = :{id}::uuid RETURNING {COLS} ), \
         h AS ( INSERT INTO transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id, actor_email, at, input, changes, config_version, parent_id) \
         SELECT :tenant_id::uuid, u.id, '{ty}', '{transition}', {from_sql}, u.state, :{actor}::text, '{email}', now(), {input}, {changes}, :config_version::bigint, NULL FROM u RETURNING id ), \
         e AS ( INSERT INTO outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id) \
         SELECT :tenant_id::uuid, ev.id, ev.name, ev.entity_type, ev.entity_id, ev.payload, h.id FROM h, \
         unnest(ARRAY[{NEW_ID}], ARRAY['{event}'], ARRAY['{ty}'], ARRAY[:{id}::uuid], \
         ARRAY[jsonb_build_object('id', :{id}::text, 'to', '{to}', 'from', {from_sql}, 'type', '{ty}', 'transition', '{transition}')]) \
         WITH ORDINALITY AS ev (id, name, entity_type, entity_id, payload, n) ORDER BY ev.n ) \
         SELECT u.*, h.id AS history_id FROM u, h \\gset h_\n\
         UPDATE timers SET fired_at = now(), outcome = 'cancelled' WHERE tenant_id = :tenant_id::uuid AND entity_id = :{id}::uuid AND fired_at IS NULL;\n"
    )
}

/// A change to a loaded row by the script (`update(row, …)`): locked again, updated, its history
/// row under the transition's, its `entity.changed` event.
fn update_row(
    ty: &str,
    id: &str,
    transition: &str,
    actor: &str,
    email: &str,
    (changes, history): (&str, &str),
) -> String {
    format!(
        "{lock}UPDATE entities SET state = state, data = data || {changes}, version = version + 1, updated_at = now(), updated_by = :{actor}::text \
         WHERE tenant_id = :tenant_id::uuid AND id = :{id}::uuid RETURNING {COLS};\n\
         INSERT INTO transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id, actor_email, at, input, changes, config_version, parent_id) \
         VALUES (:tenant_id::uuid, :{id}::uuid, '{ty}', '{transition}', 'ACTIVE', 'ACTIVE', :{actor}::text, '{email}', now(), '{{}}', {history}, :config_version::bigint, :h_history_id::bigint) RETURNING id;\n\
         INSERT INTO outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id) \
         VALUES (:tenant_id::uuid, {NEW_ID}, 'entity.changed', '{ty}', :{id}::uuid, jsonb_build_object('id', :{id}::text, 'type', '{ty}', 'state', 'ACTIVE', 'version', 2), :h_history_id::bigint);\n",
        lock = lock(ty, id)
    )
}

/// The stock rows of the order's lines (one to three), each changed as `changes(q)` says.
fn update_stock(transition: &str, actor: &str, email: &str, changes: impl Fn(&str) -> (String, String)) -> String {
    let row = |id: &str, q: &str| {
        let (data, history) = changes(q);
        update_row("inventory", id, transition, actor, email, (&data, &history))
    };
    let mut out = row("s1", "q1");
    out.push_str("\\if :nlines >= 2\n");
    out.push_str(&row("s2", "q2"));
    out.push_str("\\endif\n\\if :nlines >= 3\n");
    out.push_str(&row("s3", "q3"));
    out.push_str("\\endif\n");
    out
}

/// The order's stock rows, locked in id order (`load_where`, `lock: true`).
const STOCK: &str = "SELECT id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by, immutable FROM entities \
     WHERE tenant_id = :tenant_id::uuid AND type = 'inventory' AND data -> 'warehouse_id' = to_jsonb(:warehouse_id::text) \
     AND data -> 'product_id' IN (SELECT jsonb_array_elements(:products_json::jsonb)) ORDER BY id LIMIT 10000 FOR UPDATE;\n";

/// The order's products (`load_where` on ids).
const PRODUCTS: &str = "SELECT id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by, immutable FROM entities \
     WHERE tenant_id = :tenant_id::uuid AND type = 'product' AND id::text = ANY(:product_texts::text[]) ORDER BY id LIMIT 10000;\n";

/// The API's lookup of the user fields' names for an answer with a trip (its own transaction).
const TRIP_ANSWER_USERS: &str = "BEGIN;\nSELECT set_config('app.tenant_id', :tenant_id::text, true);\n\
     SELECT id, email, name, roles, active FROM users WHERE tenant_id = :tenant_id::uuid AND id = ANY(ARRAY[:driver_id::uuid]);\nCOMMIT;\n";

/// The sales rep's record rule on orders (`sees`): the customer's territory lists the rep, or
/// the rep created the order.
const SEES_SALES: &str = "SELECT e.id FROM entities e WHERE e.tenant_id = :tenant_id::uuid AND e.type = 'order' AND e.id = ANY(ARRAY[:order_id::uuid]) \
     AND ((field_uuid(e.data, 'customer_id') IN (SELECT r1.id FROM entities r1 WHERE r1.tenant_id = :tenant_id::uuid AND r1.type = 'customer' \
     AND field_uuid(r1.data, 'territory_id') IN (SELECT r2.id FROM entities r2 WHERE r2.tenant_id = :tenant_id::uuid AND r2.type = 'territory' \
     AND (r2.data -> 'assigned_users') @> jsonb_build_array('sales@chemichemi.test'::text))) OR e.created_by = :sales_id::text));\n";

/// The driver's record rule on trips.
const SEES_DRIVER_TRIP: &str = "SELECT e.id FROM entities e WHERE e.tenant_id = :tenant_id::uuid AND e.type = 'trip' AND e.id = ANY(ARRAY[:trip_id::uuid]) \
     AND (field_uuid(e.data, 'driver_id') = :driver_id::uuid);\n";

/// The driver's record rule on orders: the order's trip is the driver's.
const SEES_DRIVER_ORDER: &str = "SELECT e.id FROM entities e WHERE e.tenant_id = :tenant_id::uuid AND e.type = 'order' AND e.id = ANY(ARRAY[:order_id::uuid]) \
     AND (field_uuid(e.data, 'trip_id') IN (SELECT r1.id FROM entities r1 WHERE r1.tenant_id = :tenant_id::uuid AND r1.type = 'trip' \
     AND field_uuid(r1.data, 'driver_id') = :driver_id::uuid));\n";

const LIVE_VERSION: &str = "SELECT live_version FROM tenants WHERE id = :tenant_id::uuid;\n";

/// The script of `kind`.
pub fn script(kind: Kind) -> String {
    const S: &str = "sales_id";
    const SE: &str = "sales@chemichemi.test";
    const M: &str = "manager_id";
    const ME: &str = "manager@chemichemi.test";
    const W: &str = "warehouse_user_id";
    const WE: &str = "warehouse@chemichemi.test";
    const D: &str = "dispatcher_id";
    const DE: &str = "dispatcher@chemichemi.test";
    const R: &str = "driver_id";
    const RE: &str = "driver@chemichemi.test";
    // A stock row's change: its data, and the history row's `changes` (from, to).
    let reserve = |q: &str| {
        (
            format!(
                "jsonb_build_object('quantity_reserved', coalesce((data->>'quantity_reserved')::int, 0) + :{q}::int)"
            ),
            format!("jsonb_build_object('quantity_reserved', jsonb_build_object('from', 0, 'to', :{q}::int))"),
        )
    };
    let release = |q: &str| {
        (
            format!("jsonb_build_object('quantity_reserved', greatest(coalesce((data->>'quantity_reserved')::int, 0) - :{q}::int, 0))"),
            format!("jsonb_build_object('quantity_reserved', jsonb_build_object('from', :{q}::int, 'to', 0))"),
        )
    };
    let body = match kind {
        Kind::Create => format!(
            "{LIVE_VERSION}\
             INSERT INTO sequences (tenant_id, name, value) VALUES (:tenant_id::uuid, 'order:2026', 1) ON CONFLICT (tenant_id, name) DO UPDATE SET value = sequences.value + 1 RETURNING value AS seq \\gset\n\
             SELECT id, type FROM entities WHERE tenant_id = :tenant_id::uuid AND id = ANY(:ref_ids::uuid[]);\n\
             INSERT INTO entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by) \
             VALUES (:tenant_id::uuid, {NEW_ID}, 'order', 'DRAFT', :new_order::jsonb || jsonb_build_object('order_number', 'ORD-2026-' || lpad(:seq::text, 6, '0')), 0, :config_version::bigint, now(), now(), :{S}::text, :{S}::text) \
             RETURNING {COLS} \\gset c_\n\
             INSERT INTO outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id) \
             VALUES (:tenant_id::uuid, {NEW_ID}, 'order.created', 'order', :c_id::uuid, jsonb_build_object('id', :c_id::text, 'type', 'order', 'state', 'DRAFT'), NULL);\n\
             {customer}{record}COMMIT;\n",
            customer = get("customer", "customer_id"),
            record = record("order", "c_id", "", "DRAFT", "placeOrder", S, SE, "data", "'{}'", "'{}'", "order.placed"),
        ),
        Kind::Submit => format!(
            "{lock}{SEES_SALES}{customer}{PRODUCTS}\
             SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'price_list' AND data -> 'is_default' = 'true'::jsonb ORDER BY id LIMIT 10000;\n\
             SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'price_list' AND id = (SELECT field_uuid(data, 'price_list_id') FROM entities WHERE tenant_id = :tenant_id::uuid AND id = :customer_id::uuid);\n\
             {record}SELECT id, type FROM entities WHERE tenant_id = :tenant_id::uuid AND id = ANY(ARRAY[(SELECT field_uuid(data, 'price_list_id') FROM entities WHERE tenant_id = :tenant_id::uuid AND id = :customer_id::uuid)]);\nCOMMIT;\n",
            lock = lock("order", "order_id"),
            customer = get("customer", "customer_id"),
            record = record(
                "order", "order_id", "DRAFT", "PENDING_APPROVAL", "submitOrder", S, SE,
                "data || jsonb_build_object('order_date', current_date::text, 'subtotal', '7150.00', 'total_amount', '7150.00')",
                "'{}'",
                "jsonb_build_object('subtotal', jsonb_build_object('from', '0.00', 'to', '7150.00'), 'total_amount', jsonb_build_object('from', '0.00', 'to', '7150.00'))",
                "order.submitted"
            ),
        ),
        Kind::Approve | Kind::ApproveRefused => {
            let customer = if kind == Kind::Approve { "customer_id" } else { "tight_id" };
            let loads = format!(
                "{lock}{get}SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'order' AND data -> 'customer_id' = to_jsonb(:{customer}::text) \
                 AND state = ANY('{{APPROVED,ALLOCATED,DISPATCHED,IN_TRANSIT}}'::text[]) ORDER BY id LIMIT 10000;\n",
                lock = lock("order", "order_id"),
                get = get("customer", customer),
            );
            if kind == Kind::Approve {
                let record = record(
                    "order", "order_id", "PENDING_APPROVAL", "APPROVED", "approveOrder", M, ME,
                    &format!("data || jsonb_build_object('approved_by', :{M}::text, 'approved_at', now())"),
                    "'{}'",
                    &format!("jsonb_build_object('approved_by', jsonb_build_object('from', NULL, 'to', :{M}::text))"),
                    "order.approved",
                );
                format!("{loads}{record}COMMIT;\n")
            } else {
                format!("{loads}ROLLBACK;\n")
            }
        }
        Kind::Reject => format!(
            "{lock}{record}COMMIT;\n",
            lock = lock("order", "order_id"),
            record = record(
                "order", "order_id", "PENDING_APPROVAL", "REJECTED", "rejectOrder", M, ME,
                "data || jsonb_build_object('rejection_reason', 'over the credit limit')",
                "'{\"reason\": \"over the credit limit\"}'",
                "jsonb_build_object('rejection_reason', jsonb_build_object('from', NULL, 'to', 'over the credit limit'))",
                "order.rejected"
            ),
        ),
        Kind::Allocate => format!(
            "{lock}{STOCK}{PRODUCTS}{record}{stock}COMMIT;\n",
            lock = lock("order", "order_id"),
            record = record("order", "order_id", "APPROVED", "ALLOCATED", "allocateInventory", W, WE, "data", "'{}'", "'{}'", "order.allocated"),
            stock = update_stock("allocateInventory", W, WE, reserve),
        ),
        Kind::Cancel => format!(
            "{lock}{STOCK}SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'trip' AND data -> 'warehouse_id' = to_jsonb(:warehouse_id::text) \
             AND state = ANY('{{DRAFT,PLANNED}}'::text[]) ORDER BY id LIMIT 10000 FOR UPDATE;\n{record}{stock}COMMIT;\n",
            lock = lock("order", "order_id"),
            record = record(
                "order", "order_id", "ALLOCATED", "CANCELLED", "cancelOrder", M, ME,
                "data || jsonb_build_object('cancellation_reason', 'the customer cancelled')",
                "'{\"reason\": \"the customer cancelled\"}'",
                "jsonb_build_object('cancellation_reason', jsonb_build_object('from', NULL, 'to', 'the customer cancelled'))",
                "order.cancelled"
            ),
            stock = update_stock("cancelOrder", M, ME, release),
        ),
        Kind::Trip => format!(
            "{LIVE_VERSION}\
             INSERT INTO sequences (tenant_id, name, value) VALUES (:tenant_id::uuid, 'trip:2026', 1) ON CONFLICT (tenant_id, name) DO UPDATE SET value = sequences.value + 1 RETURNING value AS seq \\gset\n\
             SELECT id, type FROM entities WHERE tenant_id = :tenant_id::uuid AND id = ANY(ARRAY[:warehouse_id::uuid, :vehicle_id::uuid, :order_id::uuid]);\n\
             SELECT id, email, name, roles, active FROM users WHERE tenant_id = :tenant_id::uuid AND id = ANY(ARRAY[:driver_id::uuid]) ORDER BY id FOR SHARE;\n\
             INSERT INTO entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by) \
             VALUES (:tenant_id::uuid, {NEW_ID}, 'trip', 'COMPLETED', jsonb_build_object('warehouse_id', :warehouse_id::text, 'vehicle_id', :vehicle_id::text, 'driver_id', :driver_id::text, \
             'order_ids', jsonb_build_array(:order_id::text), 'trip_number', 'TRP-2026-' || lpad(:seq::text, 6, '0')), 1, :config_version::bigint, now(), now(), :{D}::text, :{D}::text) \
             RETURNING {COLS} \\gset c_\n\
             INSERT INTO transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id, actor_email, at, input, changes, config_version, parent_id) \
             VALUES (:tenant_id::uuid, :c_id::uuid, 'trip', 'create', NULL, 'DRAFT', :{D}::text, '{DE}', now(), '{{}}', '{{}}', :config_version::bigint, NULL) RETURNING id AS c_history \\gset\n\
             INSERT INTO outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id) \
             VALUES (:tenant_id::uuid, {NEW_ID}, 'trip.created', 'trip', :c_id::uuid, jsonb_build_object('id', :c_id::text, 'type', 'trip', 'state', 'DRAFT'), :c_history::bigint);\n\
             COMMIT;\n{TRIP_ANSWER_USERS}"
        ),
        Kind::Plan => format!(
            "{lock}SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'order' AND id::text = ANY(ARRAY[:order_id::text]) ORDER BY id LIMIT 10000;\n\
             SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'trip' AND state = ANY('{{DRAFT,PLANNED,DISPATCHED,IN_PROGRESS}}'::text[]) ORDER BY id LIMIT 10000;\n\
             {record}COMMIT;\n{TRIP_ANSWER_USERS}",
            lock = lock("trip", "trip_id"),
            record = record(
                "trip", "trip_id", "DRAFT", "PLANNED", "planTrip", D, DE,
                "data || jsonb_build_object('total_stops', 1)", "'{}'",
                "jsonb_build_object('total_stops', jsonb_build_object('from', NULL, 'to', 1))", "trip.planned"
            ),
        ),
        Kind::Dispatch => format!(
            "{lock}{vehicle}SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'order' AND id::text = ANY(ARRAY[:order_id::text]) ORDER BY id LIMIT 10000 FOR UPDATE;\n\
             {record}{lock_order}{lock_trip}{record_order}SELECT id, type FROM entities WHERE tenant_id = :tenant_id::uuid AND id = ANY(ARRAY[:trip_id::uuid]);\n{reread}COMMIT;\n{TRIP_ANSWER_USERS}",
            lock = lock("trip", "trip_id"),
            vehicle = get("vehicle", "vehicle_id"),
            record = record(
                "trip", "trip_id", "PLANNED", "DISPATCHED", "dispatchTrip", D, DE,
                "data || jsonb_build_object('vehicle_id', :vehicle_id::text)", "'{}'", "'{}'", "trip.dispatched"
            ),
            lock_order = lock("order", "order_id"),
            lock_trip = lock("trip", "trip_id"),
            record_order = record(
                "order", "order_id", "ALLOCATED", "DISPATCHED", "dispatchOrder", D, DE,
                "data || jsonb_build_object('trip_id', :trip_id::text)",
                "jsonb_build_object('trip_id', :trip_id::text)",
                "jsonb_build_object('trip_id', jsonb_build_object('from', NULL, 'to', :trip_id::text))",
                "order.dispatched"
            ),
            reread = reread("trip_id"),
        ),
        Kind::Start => format!(
            "{lock}{SEES_DRIVER_TRIP}SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'order' AND data -> 'trip_id' = to_jsonb(:trip_id::text) \
             AND state = 'DISPATCHED' ORDER BY id LIMIT 10000 FOR UPDATE;\n{record}{lock_order}{get_trip}{record_order}{reread}COMMIT;\n{TRIP_ANSWER_USERS}",
            lock = lock("trip", "trip_id"),
            record = record(
                "trip", "trip_id", "DISPATCHED", "IN_PROGRESS", "startTrip", R, RE,
                "data || jsonb_build_object('start_time', now())", "'{}'",
                "jsonb_build_object('start_time', jsonb_build_object('from', NULL, 'to', now()))", "trip.started"
            ),
            lock_order = lock("order", "order_id"),
            get_trip = get("trip", "trip_id"),
            record_order = record("order", "order_id", "DISPATCHED", "IN_TRANSIT", "startDelivery", R, RE, "data", "'{}'", "'{}'", "order.in_transit"),
            reread = reread("trip_id"),
        ),
        Kind::Deliver => format!(
            "{lock}{SEES_DRIVER_ORDER}{STOCK}{lock_customer}{record}{stock}{customer}COMMIT;\n",
            lock = lock("order", "order_id"),
            lock_customer = lock("customer", "customer_id"),
            record = record(
                "order", "order_id", "IN_TRANSIT", "DELIVERED", "completeDelivery", R, RE,
                "data || jsonb_build_object('pod_reference', 'POD-' || :order_id::text, 'delivered_at', now(), 'delivered_amount', '7150.00')",
                "jsonb_build_object('pod_reference', 'POD-' || :order_id::text, 'delivered', jsonb_build_array(jsonb_build_object('line_number', 1, 'delivered_quantity', :q1::int)))",
                "jsonb_build_object('pod_reference', jsonb_build_object('from', NULL, 'to', 'POD-' || :order_id::text), 'delivered_amount', jsonb_build_object('from', NULL, 'to', '7150.00'))",
                "order.delivered"
            ),
            stock = update_stock("completeDelivery", R, RE, |q| (
                format!(
                    "jsonb_build_object('quantity_on_hand', coalesce((data->>'quantity_on_hand')::bigint, 0) - :{q}::int, \
                     'quantity_reserved', greatest(coalesce((data->>'quantity_reserved')::int, 0) - :{q}::int, 0))"
                ),
                format!(
                    "jsonb_build_object('quantity_on_hand', jsonb_build_object('from', 1000000000, 'to', 1000000000 - :{q}::int), \
                     'quantity_reserved', jsonb_build_object('from', :{q}::int, 'to', 0))"
                ),
            )),
            customer = update_row(
                "customer", "customer_id", "completeDelivery", R, RE,
                (
                    "jsonb_build_object('balance', to_char(coalesce((data->>'balance')::numeric, 0) + 7150, 'FM999999999999990.00'))",
                    "jsonb_build_object('balance', jsonb_build_object('from', '0.00', 'to', '7150.00'))",
                ),
            ),
        ),
        Kind::Complete => format!(
            "{lock}{SEES_DRIVER_TRIP}SELECT {COLS} FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'order' AND data -> 'trip_id' = to_jsonb(:trip_id::text) ORDER BY id LIMIT 10000;\n\
             {record}COMMIT;\n{TRIP_ANSWER_USERS}",
            lock = lock("trip", "trip_id"),
            record = record(
                "trip", "trip_id", "IN_PROGRESS", "COMPLETED", "completeTrip", R, RE,
                "data || jsonb_build_object('end_time', now())", "'{}'",
                "jsonb_build_object('end_time', jsonb_build_object('from', NULL, 'to', now()))", "trip.completed"
            ),
        ),
        Kind::List => format!(
            "{LIVE_VERSION}SELECT {COLS}, id AS sort_key FROM entities WHERE tenant_id = :tenant_id::uuid AND type = 'order'::text \
             AND field_uuid(data, 'customer_id'::text) = :customer_id::uuid ORDER BY id ASC LIMIT 21;\nCOMMIT;\n"
        ),
        Kind::Detail => format!("{get}COMMIT;\n", get = get("order", "order_id")),
    };
    format!("-- {} (bench/src/pgmix.rs)\n{HEAD}{body}", kind.name())
}
