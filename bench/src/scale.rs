//! **(e)** Scale of data (`make bench-scale`, `BENCH_ONLY=scale`; not part of `make bench`): one
//! tenant with [`orders`] orders (`BENCH_SCALE_ORDERS`) of [`CUSTOMERS`] customers, each with two history rows and one
//! event in the tenant's stream, and [`small_tenants`] small tenants beside it (`BENCH_SCALE_TENANTS`) (the same package,
//! [`SMALL_ORDERS`] orders each), every row loaded with `COPY`. Then, over HTTP against the API
//! served in-process (one keep-alive connection, one request at a time), [`REQUESTS`] requests of
//! each read, with a varying argument: a filtered and sorted first page, counts, searches, an
//! order's history, and a page of the event stream from an old position (catch-up). Each read's
//! plan is shown (as the request role, under row-level security, as the server plans it) and
//! checked for sequential scans of the big tables.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use api::db::Database;
use engine::limits::Limits;
use engine::model::Actor;
use engine::store::query::explain_list;
use engine::store::{ListMode, ListRequest, Store, TenantId};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};
use tenants::Package;
use uuid::Uuid;

use crate::report::{fmt_us, Report, Table};
use crate::setup::{Server, Tenant};

/// Orders of the big tenant: `BENCH_SCALE_ORDERS` (default 1,000,000; smaller for a quick look).
pub fn orders() -> usize {
    std::env::var("BENCH_SCALE_ORDERS").ok().and_then(|v| v.parse().ok()).filter(|n| *n >= 1_000).unwrap_or(1_000_000)
}
pub const CUSTOMERS: usize = 1_000;
/// Small tenants beside it: `BENCH_SCALE_TENANTS` (default 100).
pub fn small_tenants() -> usize {
    std::env::var("BENCH_SCALE_TENANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100)
}
pub const SMALL_ORDERS: usize = 1_000;
const SMALL_CUSTOMERS: usize = 20;
/// Requests per read (after [`WARMUP`] unmeasured ones).
const REQUESTS: usize = 300;
const WARMUP: usize = 20;
const STATES: [&str; 5] = ["DRAFT", "SUBMITTED", "APPROVED", "DISPATCHED", "DELIVERED"];
const PRIORITIES: [&str; 3] = ["low", "normal", "high"];
const NAMES: [&str; 16] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Wonka",
    "Oscorp",
    "Vandelay",
    "Kramerica",
    "Gringotts",
    "Monarch",
];
const PLACES: [&str; 12] =
    ["Hamburg", "Lyon", "Turin", "Porto", "Gdansk", "Leeds", "Ghent", "Basel", "Graz", "Malmo", "Cork", "Bilbao"];

/// One measured read.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    /// The request, with `…` where the argument varies.
    pub shape: String,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// What the answers held, for the reader (rows, a total).
    pub answer: String,
    /// The plan's nodes, depth first, per statement.
    pub plans: Vec<String>,
    pub seq_scan: bool,
}

#[derive(Debug, Clone)]
pub struct ScaleResult {
    pub load: Vec<(String, Duration)>,
    pub cases: Vec<Case>,
    pub sizes: Vec<(String, String)>,
}

/// Deterministic ids: `kind` 1 customer, 2 order; `t` the tenant's number (0 the big one).
fn id(t: usize, kind: u8, n: usize) -> Uuid {
    Uuid::from_u128((0x5ca1e << 100) | ((t as u128) << 64) | ((kind as u128) << 56) | n as u128)
}

fn customer_name(n: usize) -> String {
    format!("{} {} {:04}", NAMES[n % NAMES.len()], PLACES[(n / NAMES.len()) % PLACES.len()], n)
}

pub async fn run(root: &Path, db: &Database) -> Result<ScaleResult> {
    let limits = Limits::default();
    let dir = root.join("bench/scale-package");
    let package = Package::load_dir(&dir).map_err(|errs| {
        anyhow!("{}: {}", dir.display(), errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    let mut load = Vec::new();

    // The small tenants first: publishing builds each one's partial indexes, which reads the
    // whole table (cheap while it is empty).
    let t0 = Instant::now();
    let mut small = Vec::new();
    for i in 0..small_tenants() {
        let mut p = package.clone();
        p.tenant.slug = format!("bench-small-{i:03}");
        p.tenant.name = format!("Small tenant {i}");
        let applied = tenants::apply::publish(&db.owner, &p, "bench", &limits).await?;
        small.push((applied.tenant, applied.version));
    }
    let applied = tenants::apply::publish(&db.owner, &package, "bench", &limits).await?;
    tenants::apply::upsert_users(&db.owner, applied.tenant, &package.tenant.users, None).await?;
    let big = applied.tenant;
    load.push((format!("publish {} small tenants and the big one", small_tenants()), t0.elapsed()));

    // The big tenant's list and search indexes are dropped for the load and built again by
    // publishing's own code, as a publish over a million rows would.
    let dropped: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_index i join pg_class c on c.oid = i.indexrelid \
         where i.indrelid in (select inhrelid from pg_inherits where inhparent = 'entities'::regclass) and starts_with(c.relname::text, 'entities_q_') \
         and obj_description(c.oid, 'pg_class')::jsonb ->> 'tenant' = $1",
    )
    .bind(big.to_string())
    .fetch_all(&db.owner)
    .await?;
    for name in &dropped {
        sqlx::raw_sql(&format!("drop index {name}")).execute(&db.owner).await?;
    }

    let t0 = Instant::now();
    copy_entities(db, big, applied.version, &small).await?;
    load.push((
        format!(
            "COPY {} entities, {} history rows, {} events",
            orders() + CUSTOMERS + small_tenants() * (SMALL_ORDERS + SMALL_CUSTOMERS),
            2 * orders() + small_tenants() * SMALL_ORDERS,
            orders()
        ),
        t0.elapsed(),
    ));
    let t0 = Instant::now();
    let report = tenants::indexes::ensure(&db.owner, big, &package).await?;
    load.push((
        format!("build the big tenant's {} list and search indexes (publish's `ensure`)", report.created.len()),
        t0.elapsed(),
    ));
    let t0 = Instant::now();
    sqlx::raw_sql("vacuum analyze entities, transitions, outbox, event_log").execute(&db.owner).await?;
    load.push(("vacuum analyze".to_string(), t0.elapsed()));

    let mut sizes = Vec::new();
    for table in ["entities", "transitions", "outbox", "event_log"] {
        let (rows, size): (i64, String) = sqlx::query_as(&format!(
            "select (select count(*) from {table}), pg_size_pretty(pg_total_relation_size('{table}'))"
        ))
        .fetch_one(&db.owner)
        .await?;
        sizes.push((table.to_string(), format!("{rows} rows, {size} with its indexes")));
    }
    let indexes: i64 =
        sqlx::query_scalar("select count(*) from pg_indexes where tablename in (select inhrelid::regclass::text from pg_inherits where inhparent = 'entities'::regclass)").fetch_one(&db.owner).await?;
    sizes.push(("indexes on entities".to_string(), indexes.to_string()));

    let store = Store::new(db.app.clone(), limits);
    let user_id: Uuid = {
        let mut tx = db.owner.begin().await?;
        engine::store::sql::set_tenant(&mut tx, big).await?;
        let id = sqlx::query_scalar("select id from users where tenant_id = $1 and email = 'manager@scale.test'")
            .bind(big)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        id
    };
    let actor = Actor {
        id: user_id.to_string(),
        email: "manager@scale.test".into(),
        roles: vec!["manager".into()],
        system: false,
        attributes: Default::default(),
    };
    let tenant = Tenant { id: big, slug: applied.slug.clone(), version: applied.version, actor: actor.clone() };
    let server = Server::start(store.clone(), db).await?;
    let authorization = server.authorization(&tenant)?;
    let client = Client::connect(server.addr, &authorization).await?;
    let base = format!("/api/v1/t/{}", tenant.slug);

    let mut cases = Vec::new();
    let mut rng = StdRng::seed_from_u64(7);
    type Gen = Box<dyn FnMut(&mut StdRng) -> String>;
    let list_cases: Vec<(&'static str, String, Gen)> = vec![
        (
            "first page, filter on state, sort by a field",
            "state=…&sort=-total&limit=50".into(),
            Box::new(|r: &mut StdRng| format!("state={}&sort=-total&limit=50", STATES[r.gen_range(0..STATES.len())])),
        ),
        (
            "first page, filter on a reference, sort by a field",
            "customer_id=…&sort=-total&limit=50".into(),
            Box::new(|r: &mut StdRng| {
                format!("customer_id={}&sort=-total&limit=50", id(0, 1, r.gen_range(0..CUSTOMERS)))
            }),
        ),
        (
            "count, over the cap (a state: a fifth of the orders)",
            "state=…&total=true&limit=1".into(),
            Box::new(|r: &mut StdRng| format!("state={}&total=true&limit=1", STATES[r.gen_range(0..STATES.len())])),
        ),
        (
            "count, exact (a customer's orders)",
            "customer_id=…&total=true&limit=1".into(),
            Box::new(|r: &mut StdRng| {
                format!("customer_id={}&total=true&limit=1", id(0, 1, r.gen_range(0..CUSTOMERS)))
            }),
        ),
        (
            "search, a customer's name (two words)",
            "q=<name> <nnnn>&limit=50".into(),
            Box::new(|r: &mut StdRng| {
                let n = r.gen_range(0..CUSTOMERS);
                format!("q={}+{:04}&limit=50", NAMES[n % NAMES.len()].to_lowercase(), n)
            }),
        ),
        (
            "search, part of an order number",
            "q=<7 digits>&limit=50".into(),
            Box::new(|r: &mut StdRng| format!("q={:07}&limit=50", r.gen_range(0..orders()))),
        ),
    ];
    for (name, shape, mut gen) in list_cases {
        let mut first: Option<String> = None;
        let mut answer = String::new();
        let hist = measure(
            &mut rng,
            |r| {
                let query = gen(r);
                first.get_or_insert_with(|| query.clone());
                let path = format!("{base}/entities/order?{query}");
                let client = &client;
                async move { client.get(&path).await }
            },
            |body: &Value| {
                answer = match body.get("total") {
                    Some(t) => format!("total {t}, exact: {}", body["total_exact"]),
                    None => format!("{} rows", body["data"].as_array().map_or(0, Vec::len)),
                };
            },
        )
        .await
        .with_context(|| name.to_string())?;
        let request = list_request(first.as_deref().unwrap_or_default());
        let plans = explain_list(&store, big, &actor, "order", &request).await?;
        cases.push(case(name, format!("GET …/entities/order?{shape}"), &hist, answer, &plans));
    }

    // An order's history.
    let mut answer = String::new();
    let hist = measure(
        &mut rng,
        |r| {
            let path = format!("{base}/entities/order/{}/history", id(0, 2, r.gen_range(0..orders())));
            let client = &client;
            async move { client.get(&path).await }
        },
        |body: &Value| answer = format!("{} rows", body["data"].as_array().map_or(0, Vec::len)),
    )
    .await
    .context("history")?;
    let plan = explain(
        db,
        big,
        "select id, transition, from_state, to_state, actor_id, at from transitions \
         where tenant_id = $1 and entity_id = $2 order by id",
        Some(id(0, 2, 4242)),
        None,
    )
    .await?;
    cases.push(case("an order's history", "GET …/entities/order/{id}/history".into(), &hist, answer, &[plan]));

    // The event stream from an old position.
    let mut answer = String::new();
    let hist = measure(
        &mut rng,
        |r| {
            let path = format!("{base}/events?after={}&limit=500", r.gen_range(0..orders() - 500));
            let client = &client;
            async move { client.get(&path).await }
        },
        |body: &Value| answer = format!("{} events", body["data"].as_array().map_or(0, Vec::len)),
    )
    .await
    .context("events")?;
    let plan = explain(
        db,
        big,
        "select l.position, o.event_id, o.name, o.entity_type, o.entity_id, o.payload, o.created_at \
         from event_log l join outbox o on o.tenant_id = l.tenant_id and o.id = l.outbox_id \
         where l.tenant_id = $1 and l.position > $2 \
           and (($3::text[] is null and $4::text[] is null) \
                or o.name = any($3) or exists (select 1 from unnest($4::text[]) p where starts_with(o.name, p))) \
         order by l.position limit $5",
        None,
        Some(123_456),
    )
    .await?;
    cases.push(case(
        "event stream catch-up (500 events)",
        "GET …/events?after=…&limit=500".into(),
        &hist,
        answer,
        &[plan],
    ));
    drop(server);
    Ok(ScaleResult { load, cases, sizes })
}

fn list_request(query: &str) -> ListRequest {
    let pairs = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace('+', " ")))
        .collect();
    ListRequest::from_pairs(pairs, ListMode::List)
}

fn case(name: &'static str, shape: String, hist: &Histogram<u64>, answer: String, plans: &[Value]) -> Case {
    let mut seq_scan = false;
    let plans: Vec<String> = plans
        .iter()
        .map(|p| {
            let mut nodes = Vec::new();
            crate::lists::nodes(p, &mut nodes);
            seq_scan |= nodes.iter().any(|n| {
                n.starts_with("Seq Scan on entities")
                    || n.starts_with("Seq Scan on transitions")
                    || n.starts_with("Seq Scan on outbox")
                    || n.starts_with("Seq Scan on event_log")
            });
            nodes.join(" → ")
        })
        .collect();
    Case {
        name,
        shape,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
        max_us: hist.max(),
        answer,
        plans,
        seq_scan,
    }
}

/// `EXPLAIN (FORMAT JSON)` of a statement as the request role with the tenant set (row-level
/// security applies, as for the server), `$1` the tenant, then `entity` or `after` and the
/// events' defaults.
async fn explain(
    db: &Database,
    tenant: TenantId,
    sql: &str,
    entity: Option<Uuid>,
    after: Option<i64>,
) -> Result<Value> {
    let mut tx = db.app.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    let text = format!("explain (format json) {sql}");
    let mut q = sqlx::query_scalar::<_, Value>(&text).persistent(false).bind(tenant);
    if let Some(e) = entity {
        q = q.bind(e);
    }
    if let Some(a) = after {
        q = q.bind(a).bind(None::<Vec<String>>).bind(None::<Vec<String>>).bind(500_i64);
    }
    let plan = q.fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(plan)
}

/// [`WARMUP`] then [`REQUESTS`] sequential requests; `seen` is given the last answer's body.
async fn measure<F, Fut>(rng: &mut StdRng, mut request: F, mut seen: impl FnMut(&Value)) -> Result<Histogram<u64>>
where
    F: FnMut(&mut StdRng) -> Fut,
    Fut: std::future::Future<Output = Result<Value>>,
{
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for i in 0..WARMUP + REQUESTS {
        let fut = request(rng);
        let t = Instant::now();
        let body = fut.await?;
        let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        if i >= WARMUP {
            hist.record(us.min(60_000_000))?;
        }
        seen(&body);
    }
    Ok(hist)
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    sender: tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>,
    authorization: HeaderValue,
    host: HeaderValue,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr, authorization: &str) -> Result<Client> {
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Client {
            sender: tokio::sync::Mutex::new(sender),
            authorization: HeaderValue::from_str(authorization)?,
            host: HeaderValue::from_str(&addr.to_string())?,
        })
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, self.host.clone())
            .header(hyper::header::AUTHORIZATION, self.authorization.clone())
            .body(Empty::new())?;
        let mut sender = self.sender.lock().await;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(anyhow!("GET {path}: HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

/// Text-format COPY rows are sent in chunks of about this many bytes.
const CHUNK: usize = 1 << 20;

/// Every row, with `COPY … FROM STDIN` (text format), as the owner with triggers and foreign-key
/// checks off for the load (`session_replication_role = replica`: the rows are consistent by
/// construction, and the outbox trigger would queue a million events for the relay); then the
/// big tenant's event stream numbered in one statement.
async fn copy_entities(db: &Database, big: TenantId, version: i64, small: &[(TenantId, i64)]) -> Result<()> {
    let mut conn = db.owner.acquire().await?;
    sqlx::raw_sql("set session_replication_role = replica").execute(&mut *conn).await?;
    let now = chrono::Utc::now();
    let ts = |secs: usize| (now - chrono::Duration::seconds(secs as i64)).to_rfc3339();
    let mut tenants: Vec<(usize, TenantId, i64, usize, usize)> = vec![(0, big, version, CUSTOMERS, orders())];
    tenants.extend(small.iter().enumerate().map(|(i, (t, v))| (i + 1, *t, *v, SMALL_CUSTOMERS, SMALL_ORDERS)));

    // Entities.
    let mut copy = conn
        .copy_in_raw(
            "copy entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at, \
             created_by, updated_by) from stdin",
        )
        .await?;
    let mut buf = String::with_capacity(CHUNK + 4096);
    for &(t, tenant, version, customers, count) in &tenants {
        for c in 0..customers {
            let data = json!({ "name": customer_name(c) });
            push_row(
                &mut buf,
                &[
                    &tenant.to_string(),
                    &id(t, 1, c).to_string(),
                    "customer",
                    "ACTIVE",
                    &data.to_string(),
                    "1",
                    &version.to_string(),
                    &ts(orders() + c),
                    &ts(orders() + c),
                    "bench",
                    "bench",
                ],
            );
        }
        for n in 0..count {
            let c = (n * 7919) % customers;
            let state = STATES[n % STATES.len()];
            let data = json!({
                "number": format!("SO-{n:07}"),
                "customer_id": id(t, 1, c),
                "customer_name": customer_name(c),
                "notes": format!("deliver to dock {} before {}:00, ask for {}", n % 40, 6 + n % 12, NAMES[(n / 7) % NAMES.len()]),
                "priority": PRIORITIES[(n / 3) % PRIORITIES.len()],
                "total": ((n * 7919) % 1_000_000) as f64 / 100.0,
            });
            let version_of_row = 1 + (n % STATES.len());
            push_row(
                &mut buf,
                &[
                    &tenant.to_string(),
                    &id(t, 2, n).to_string(),
                    "order",
                    state,
                    &data.to_string(),
                    &version_of_row.to_string(),
                    &version.to_string(),
                    &ts(count - n),
                    &ts((count - n) / 2),
                    "bench",
                    "bench",
                ],
            );
            if buf.len() >= CHUNK {
                copy.send(std::mem::take(&mut buf).into_bytes()).await?;
            }
        }
    }
    copy.send(std::mem::take(&mut buf).into_bytes()).await?;
    copy.finish().await?;

    // History: two rows per big-tenant order (created, submitted), one per small-tenant order.
    let mut copy = conn
        .copy_in_raw(
            "copy transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id, \
             actor_email, at, input, changes, config_version) from stdin",
        )
        .await?;
    for &(t, tenant, version, _, orders) in &tenants {
        for n in 0..orders {
            let steps: &[(&str, &str, &str)] = if t == 0 {
                &[("create", "\\N", "DRAFT"), ("submit", "DRAFT", "SUBMITTED")]
            } else {
                &[("create", "\\N", "DRAFT")]
            };
            for (k, (name, from, to)) in steps.iter().enumerate() {
                push_row(
                    &mut buf,
                    &[
                        &tenant.to_string(),
                        &id(t, 2, n).to_string(),
                        "order",
                        name,
                        from,
                        to,
                        "bench",
                        "manager@scale.test",
                        &ts(orders - n - k),
                        "{}",
                        "{}",
                        &version.to_string(),
                    ],
                );
            }
            if buf.len() >= CHUNK {
                copy.send(std::mem::take(&mut buf).into_bytes()).await?;
            }
        }
    }
    copy.send(std::mem::take(&mut buf).into_bytes()).await?;
    copy.finish().await?;

    // The big tenant's events: one per order, then their stream positions.
    let mut copy = conn
        .copy_in_raw("copy outbox (tenant_id, event_id, name, entity_type, entity_id, payload, created_at) from stdin")
        .await?;
    for n in 0..orders() {
        let payload = json!({ "number": format!("SO-{n:07}"), "state": "SUBMITTED" });
        push_row(
            &mut buf,
            &[
                &big.to_string(),
                &Uuid::from_u128((7 << 120) | n as u128).to_string(),
                "order.submitted",
                "order",
                &id(0, 2, n).to_string(),
                &payload.to_string(),
                &ts(orders() - n),
            ],
        );
        if buf.len() >= CHUNK {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
        }
    }
    copy.send(std::mem::take(&mut buf).into_bytes()).await?;
    copy.finish().await?;
    sqlx::query(
        "insert into event_log (tenant_id, position, outbox_id) \
         select tenant_id, row_number() over (order by id), id from outbox where tenant_id = $1",
    )
    .bind(big)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into event_streams (tenant_id, position) values ($1, $2) \
         on conflict (tenant_id) do update set position = excluded.position",
    )
    .bind(big)
    .bind(orders() as i64)
    .execute(&mut *conn)
    .await?;
    sqlx::raw_sql("reset session_replication_role").execute(&mut *conn).await?;
    Ok(())
}

/// One row of text-format COPY: fields escaped (`\N` is passed through as null).
fn push_row(buf: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            buf.push('\t');
        }
        if *f == "\\N" {
            buf.push_str(f);
            continue;
        }
        for ch in f.chars() {
            match ch {
                '\\' => buf.push_str("\\\\"),
                '\t' => buf.push_str("\\t"),
                '\n' => buf.push_str("\\n"),
                '\r' => buf.push_str("\\r"),
                c => buf.push(c),
            }
        }
    }
    buf.push('\n');
}

pub fn report(r: &mut Report, s: &ScaleResult) {
    let (orders, small_tenants) = (orders(), small_tenants());
    r.heading("(e) Scale of data");
    r.text(format!(
        "One tenant with {orders} orders of {CUSTOMERS} customers (two history rows and one event per order) and \
         {small_tenants} small tenants beside it ({SMALL_ORDERS} orders each), loaded with COPY. Each read: {REQUESTS} \
         requests over HTTP (one keep-alive connection, one at a time, the argument varying), after {WARMUP} unmeasured; \
         time from sending the request to the whole body received, on 127.0.0.1."
    ));
    let mut t = Table::new(&["step", "time"], &[1]);
    for (what, d) in &s.load {
        t.row(vec![what.clone(), format!("{:.1} s", d.as_secs_f64())]);
    }
    r.table(t);
    r.lines(s.sizes.iter().map(|(k, v)| format!("{k}: {v}")).collect());
    let mut t = Table::new(&["read", "request", "p50", "p99", "max", "answer"], &[2, 3, 4]);
    for c in &s.cases {
        t.row(vec![
            c.name.to_string(),
            format!("`{}`", c.shape),
            fmt_us(c.p50_us),
            fmt_us(c.p99_us),
            fmt_us(c.max_us),
            c.answer.clone(),
        ]);
    }
    r.table(t);
    let mut lines = Vec::new();
    for c in &s.cases {
        for (i, p) in c.plans.iter().enumerate() {
            let label = if c.plans.len() > 1 { format!("{} [{}]", c.name, i + 1) } else { c.name.to_string() };
            lines.push(format!("{label}: {p}"));
        }
    }
    let seq: Vec<&str> = s.cases.iter().filter(|c| c.seq_scan).map(|c| c.name).collect();
    lines.push(if seq.is_empty() {
        "PASS: no sequential scan of entities, transitions, outbox or event_log in any plan".to_string()
    } else {
        format!("MISS: a sequential scan in: {}", seq.join(", "))
    });
    r.lines(lines);
}
