//! **(d)** Lists under a record rule: `bench/lists-package` (50 territories, each with its rep;
//! 1,000 customers; 100,000 orders) published as its own tenant, then the first page of a
//! filtered, sorted list and a count, read through `Store::query` by a manager (no rule: the
//! baseline) and by a rep whose rule reaches the order's territory two references away. Each is
//! the median of [`RUNS`] reads after a warm-up; the rep's page plan is checked for sequential
//! scans of `entities`.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use api::db::Database;
use engine::limits::Limits;
use engine::model::Actor;
use engine::store::query::explain_list;
use engine::store::{ListMode, ListRequest, Store, TenantId};
use serde_json::Value;
use tenants::Package;

use crate::report::{fmt_factor, Report, Table};

pub const TERRITORIES: usize = 50;
pub const CUSTOMERS: usize = 1_000;
pub const ORDERS: usize = 100_000;
const RUNS: usize = 30;

/// One measured read: the manager's and the rep's median, in milliseconds.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub query: &'static str,
    pub manager_ms: f64,
    pub rep_ms: f64,
    pub manager_rows: i64,
    pub rep_rows: i64,
}

#[derive(Debug, Clone)]
pub struct ListsResult {
    pub cases: Vec<Case>,
    /// The plan nodes of the rep's page statement, in order.
    pub plan_nodes: Vec<String>,
    pub seq_scan: bool,
}

pub async fn run(root: &Path, db: &Database) -> Result<ListsResult> {
    let limits = Limits::default();
    let dir = root.join("bench/lists-package");
    let package = Package::load_dir(&dir).map_err(|errs| {
        anyhow!("{}: {}", dir.display(), errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    let applied = tenants::apply::publish(&db.owner, &package, "bench", &limits).await?;
    let tenant = applied.tenant;
    eprintln!("bench: (d) {ORDERS} orders of {CUSTOMERS} customers in {TERRITORIES} territories");
    seed(db, applied.tenant, applied.version).await?;

    let store = Store::new(db.app.clone(), limits);
    let actor = |email: &str, role: &str| Actor {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.to_string(),
        roles: vec![role.to_string()],
        system: false,
        attributes: Default::default(),
    };
    let (manager, rep) = (actor("manager@bench.test", "manager"), actor("rep0@bench.test", "rep"));
    let cases = [
        ("first page, filtered and sorted", "state=OPEN&sort=-total&limit=50"),
        ("first page, newest first", "sort=-created_at&limit=50"),
        ("count (total=true)", "state=OPEN&total=true&limit=1"),
    ];
    let mut out = Vec::new();
    for (name, query) in cases {
        let (manager_ms, manager_rows) = time(&store, tenant, &manager, query).await?;
        let (rep_ms, rep_rows) = time(&store, tenant, &rep, query).await?;
        out.push(Case { name, query, manager_ms, rep_ms, manager_rows, rep_rows });
    }
    let plans = explain_list(&store, tenant, &rep, "order", &request(cases[0].1)).await?;
    let mut plan_nodes = Vec::new();
    for p in &plans {
        nodes(p, &mut plan_nodes);
    }
    let seq_scan = plan_nodes.iter().any(|n| n.starts_with("Seq Scan on entities"));
    Ok(ListsResult { cases: out, plan_nodes, seq_scan })
}

fn request(query: &str) -> ListRequest {
    let pairs =
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ListRequest::from_pairs(pairs, ListMode::List)
}

/// The median time of [`RUNS`] reads (after 3 unmeasured), and the rows (or the total) read.
async fn time(store: &Store, tenant: TenantId, actor: &Actor, query: &str) -> Result<(f64, i64)> {
    let req = request(query);
    let mut rows = 0;
    for _ in 0..3 {
        store.query(tenant, actor, "order", &req).await?;
    }
    let mut ms = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        let page = store.query(tenant, actor, "order", &req).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        rows = page.total.unwrap_or(page.entities.len() as i64);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[RUNS / 2], rows))
}

/// Territories, customers and orders in three statements (as the owner, the tenant named in
/// every row), then `analyze`.
async fn seed(db: &Database, tenant: TenantId, version: i64) -> Result<()> {
    let mut tx = db.owner.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    let insert = |ty: &str, n: usize, data: &str| {
        format!(
            "insert into entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by) \
             select $1, md5('{ty}' || g)::uuid, '{ty}', {state}, {data}, 1, $2, \
                    now() - make_interval(secs => g), now(), 'bench', 'bench' \
             from generate_series(0, {last}) g",
            last = n - 1,
            state = if ty == "order" { "(array['OPEN','DONE','CLOSED'])[1 + g % 3]" } else { "'ACTIVE'" },
        )
    };
    let statements = [
        insert(
            "territory",
            TERRITORIES,
            "jsonb_build_object('name', 'T' || g, 'assigned_users', jsonb_build_array('rep' || g || '@bench.test'))",
        ),
        insert(
            "customer",
            CUSTOMERS,
            &format!("jsonb_build_object('name', 'C' || g, 'territory_id', md5('territory' || (g % {TERRITORIES}))::uuid)"),
        ),
        insert(
            "order",
            ORDERS,
            &format!("jsonb_build_object('customer_id', md5('customer' || (g % {CUSTOMERS}))::uuid, 'total', (g * 7919) % 10000)"),
        ),
    ];
    for sql in statements {
        sqlx::query(&sql).bind(tenant).bind(version).execute(&mut *tx).await.with_context(|| sql.clone())?;
    }
    tx.commit().await?;
    sqlx::query("analyze entities").execute(&db.owner).await?;
    Ok(())
}

/// The plan's nodes, depth first: `Index Scan using … on entities`, `Hash Join`, ….
pub(crate) fn nodes(plan: &Value, out: &mut Vec<String>) {
    let plan = plan.get(0).and_then(|p| p.get("Plan")).unwrap_or(plan);
    let mut stack = vec![plan];
    while let Some(p) = stack.pop() {
        let mut name = p["Node Type"].as_str().unwrap_or("?").to_string();
        if let Some(index) = p["Index Name"].as_str() {
            name.push_str(&format!(" using {index}"));
        }
        if let Some(rel) = p["Relation Name"].as_str() {
            name.push_str(&format!(" on {rel}"));
        }
        out.push(name);
        if let Some(children) = p["Plans"].as_array() {
            stack.extend(children.iter().rev());
        }
    }
}

pub fn report(r: &mut Report, lists: &ListsResult) {
    r.heading("(d) Lists under a record rule");
    r.text(format!(
        "{ORDERS} orders of {CUSTOMERS} customers in {TERRITORIES} territories; the rep sees the orders whose customer's \
         territory lists the rep (two references away, 1 in {TERRITORIES}); the manager has no rule. Median of {RUNS} reads \
         through the store, in milliseconds."
    ));
    let mut t = Table::new(&["read", "query", "manager (no rule)", "rep (rule)", "rule / no rule"], &[2, 3, 4]);
    for c in &lists.cases {
        t.row(vec![
            c.name.to_string(),
            format!("`{}`", c.query),
            format!("{:.2} ms ({} rows)", c.manager_ms, c.manager_rows),
            format!("{:.2} ms ({} rows)", c.rep_ms, c.rep_rows),
            fmt_factor(c.rep_ms / c.manager_ms),
        ]);
    }
    r.table(t);
    r.lines(vec![
        format!("rep's page plan: {}", lists.plan_nodes.join(" → ")),
        format!(
            "{} (a sequential scan of entities in the rep's page plan)",
            if lists.seq_scan { "MISS" } else { "PASS: none" }
        ),
    ]);
}
