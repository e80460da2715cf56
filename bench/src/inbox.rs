//! **(e)** The inbox at 100,000 orders: `examples/chemichemi` published as its own tenant (its
//! sample customers, warehouses, products and stock), then 100,000 orders written with one
//! `insert … select generate_series` (1 in 100 waiting for approval, 1 in 500 approved and so
//! counting against its customer's credit, the others delivered). The manager's first inbox
//! page of orders (`Store::inbox`, the API's path without HTTP: candidates by index, each
//! explained with its loads, four-eyes and guards, the loads batched across the page) is timed,
//! median of [`RUNS`] after 3 unmeasured, against the same page's entities explained one at a
//! time (`Store::available_transitions` each, what `GET …/transitions` does).

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use api::db::Database;
use engine::limits::Limits;
use engine::model::Actor;
use engine::store::{InboxRequest, Store, TenantId};
use tenants::Package;

use crate::report::{fmt_factor, Report, Table};

pub const ORDERS: usize = 100_000;
const RUNS: usize = 20;
const PAGE: i64 = 25;

#[derive(Debug, Clone)]
pub struct InboxResult {
    /// The page, batched: median milliseconds, entities on it, candidates evaluated.
    pub page_ms: f64,
    pub entities: usize,
    pub scanned: usize,
    /// The same entities explained one at a time: median milliseconds.
    pub one_by_one_ms: f64,
}

pub async fn run(root: &Path, db: &Database) -> Result<InboxResult> {
    let limits = Limits::default();
    let dir = root.join("examples/chemichemi");
    let package = Package::load_dir(&dir).map_err(|errs| {
        anyhow!("{}: {}", dir.display(), errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    let applied = tenants::apply::publish(&db.owner, &package, "bench", &limits).await?;
    let tenant = applied.tenant;
    let store = Store::new(db.app.clone(), limits);
    tenants::apply::load_sample_data(&db.owner, &store, tenant, &package).await?;
    eprintln!("bench: (e) the inbox at {ORDERS} orders");
    seed(db, tenant, applied.version).await?;

    let manager = Actor {
        id: uuid::Uuid::now_v7().to_string(),
        email: "manager@chemichemi.test".into(),
        roles: vec!["manager".into()],
        system: false,
        attributes: Default::default(),
    };
    let request = InboxRequest { type_name: Some("order".into()), after: None, limit: PAGE };
    for _ in 0..3 {
        store.inbox(tenant, &manager, &request).await?;
    }
    let mut ms = Vec::with_capacity(RUNS);
    let mut page = store.inbox(tenant, &manager, &request).await?;
    for _ in 0..RUNS {
        let t = Instant::now();
        page = store.inbox(tenant, &manager, &request).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let ids: Vec<uuid::Uuid> = page.items.iter().map(|i| i.entity.id).collect();
    let mut one_by_one = Vec::with_capacity(RUNS);
    for run in 0..RUNS + 3 {
        let t = Instant::now();
        for id in &ids {
            store.available_transitions(tenant, "order", *id, &manager).await?;
        }
        if run >= 3 {
            one_by_one.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(InboxResult {
        page_ms: median(ms),
        entities: page.items.len(),
        scanned: page.scanned,
        one_by_one_ms: median(one_by_one),
    })
}

fn median(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
}

/// 100,000 orders of the sample customers, from the sample warehouses, of sample products, in
/// one statement (as the owner, the tenant named in every row), then `analyze`.
async fn seed(db: &Database, tenant: TenantId, version: i64) -> Result<()> {
    let id = |key: &str| tenants::apply::sample_id(tenant, key).to_string();
    let customers = [id("savanna_hotel"), id("mama_njeri"), id("pwani_traders")];
    let warehouses = [id("main"), id("coast")];
    let products = [id("lpg6"), id("lpg13"), id("bleach5")];
    let sql = format!(
        "insert into entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by) \
         select $1, gen_random_uuid(), 'order', \
                case when g % 100 = 0 then 'PENDING_APPROVAL' when g % 500 = 1 then 'APPROVED' else 'DELIVERED' end, \
                jsonb_build_object('order_number', 'BULK-' || g, \
                  'customer_id', (array['{c0}','{c1}','{c2}'])[1 + g % 3], \
                  'warehouse_id', (array['{w0}','{w1}'])[1 + g % 2], \
                  'items', jsonb_build_array(jsonb_build_object('product_id', (array['{p0}','{p1}','{p2}'])[1 + g % 3], 'quantity', 1 + g % 5)), \
                  'total_amount', (g % 50) * 100), \
                1, $2, now() - make_interval(secs => {ORDERS} - g), now(), 'bulk', 'bulk' \
         from generate_series(1, {ORDERS}) g",
        c0 = customers[0],
        c1 = customers[1],
        c2 = customers[2],
        w0 = warehouses[0],
        w1 = warehouses[1],
        p0 = products[0],
        p1 = products[1],
        p2 = products[2],
    );
    let mut tx = db.owner.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    sqlx::query(&sql).bind(tenant).bind(version).execute(&mut *tx).await.with_context(|| sql.clone())?;
    tx.commit().await?;
    sqlx::query("analyze entities").execute(&db.owner).await?;
    Ok(())
}

pub fn report(r: &mut Report, inbox: &InboxResult) {
    r.heading("(e) The inbox");
    r.text(format!(
        "{ORDERS} orders of examples/chemichemi (1 in 100 waiting for approval); the manager's first page of orders \
         ({PAGE} entities, each explained for approveOrder, rejectOrder and cancelOrder: loads, four-eyes, guards), \
         median of {RUNS}, in milliseconds."
    ));
    let mut t = Table::new(&["read", "time", "entities", "per entity"], &[1, 2, 3]);
    let per = |ms: f64| format!("{:.2} ms", ms / inbox.entities.max(1) as f64);
    t.row(vec![
        format!("inbox page, loads batched (`Store::inbox`, {} candidates)", inbox.scanned),
        format!("{:.2} ms", inbox.page_ms),
        inbox.entities.to_string(),
        per(inbox.page_ms),
    ]);
    t.row(vec![
        "the same entities, one `available_transitions` each".into(),
        format!("{:.2} ms", inbox.one_by_one_ms),
        inbox.entities.to_string(),
        per(inbox.one_by_one_ms),
    ]);
    r.table(t);
    r.lines(vec![
        format!("one by one / batched: {}", fmt_factor(inbox.one_by_one_ms / inbox.page_ms)),
        format!("{} (the inbox's first page under 100 ms)", if inbox.page_ms < 100.0 { "PASS" } else { "MISS" }),
    ]);
}
