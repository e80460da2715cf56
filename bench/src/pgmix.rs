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
    Actor { id: u.id.to_string(), email: u.email.clone(), roles: u.roles.clone(), system: false, attributes: Default::default() }
}

/// Creates pgbench's rows: `PER_CLIENT` orders per client (submitted, so priced like the mix's)
/// with a trip each, on the tenants in turn, listed in `bench_pgmix`.
pub async fn prepare(owner: &PgPool, store: &Store, tenants: &[Tenant], clients: usize) -> Result<()> {
    sqlx::query(
        "create table bench_pgmix (n int primary key, tenant_id uuid not null, order_id uuid not null, \
         trip_id uuid not null, customer_id uuid not null, tight_id uuid not null, warehouse_id uuid not null, \
         product_ids uuid[] not null, quantities int[] not null, config_version bigint not null, \
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
        // Three lines: the products the mix's orders have at most, in id order as the loads
        // lock them.
        let mut products: Vec<uuid::Uuid> = (0..3).map(|k| t.products[(n + k) % t.products.len()]).collect();
        products.sort();
        let quantities: Vec<i32> = vec![1, 2, 3];
        let lines: Vec<(uuid::Uuid, u32)> = products.iter().zip([1, 2, 3]).map(|(p, q)| (*p, q)).collect();
        let sales = actor(&t.sales);
        let order = store
            .create_entity(t.id, "order", world::order_data(customer, warehouse.id, &lines), &sales, CreateOptions::default())
            .await
            .with_context(|| format!("creating pgbench's order {n}"))?;
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
        sqlx::query(
            "insert into bench_pgmix values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(i32::try_from(n)?)
        .bind(t.id)
        .bind(order.id)
        .bind(trip.id)
        .bind(customer)
        .bind(tight)
        .bind(warehouse.id)
        .bind(&products)
        .bind(&quantities)
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

/// The script of `kind`.
pub fn script(kind: Kind) -> String {
    let body = match kind {
        _ => "COMMIT;\n",
    };
    format!("-- {} (bench/src/pgmix.rs)\n{HEAD}{body}", kind.name())
}
