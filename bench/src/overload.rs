//! Part (e), `BENCH_ONLY=overload`: a quiet tenant's latency while another tenant sends three
//! times what the server can do (docs/reliability.md, "Overload").
//!
//! Two tenants of the bench package (`noisy`, `quiet`) on one server in this process (the API
//! router on 127.0.0.1, as `switchyard serve` serves it, rate limits off so that admission is
//! what refuses). First the server's capacity: the noisy tenant's closed-loop throughput with
//! `SWITCHYARD_TENANT_IN_FLIGHT` clients. Then the quiet tenant alone (one client, back to back:
//! its p50/p99), and the same with the noisy tenant sending three times that capacity (open loop:
//! `3 × SWITCHYARD_MAX_IN_FLIGHT` connections, each on its own schedule, not waiting for
//! `Retry-After`): once with the admission bounds (defaults, or the environment's), once with
//! them off. Each request's answer is counted by status. Nothing is asserted: the figures are
//! printed and go into the report.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use api::auth::Keys;
use api::db::Database;
use api::state::AppState;
use engine::limits::Limits;
use engine::model::Actor;
use engine::store::{CreateOptions, Store, TenantId};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use crate::load::new_histogram;
use crate::report::{fmt_us, Report, Table};

/// A tenant of the run: its id, slug, operator and meters.
struct Tenant {
    id: TenantId,
    slug: String,
    actor: Actor,
}

/// What one phase measured.
#[derive(Debug)]
pub struct Phase {
    pub name: String,
    /// The quiet tenant's latencies (µs) and answers by status.
    pub quiet: Histogram<u64>,
    pub quiet_status: BTreeMap<u16, u64>,
    /// The noisy tenant's answers by status, and its requests per second sent.
    pub noisy_status: BTreeMap<u16, u64>,
    pub noisy_offered: f64,
    pub noisy_p99_us: u64,
}

#[derive(Debug)]
pub struct OverloadResult {
    pub capacity_tps: f64,
    pub max_in_flight: Option<u32>,
    pub tenant_in_flight: Option<u32>,
    pub pool: u32,
    pub phases: Vec<Phase>,
}

async fn publish(db: &Database, root: &Path, slug: &str) -> Result<Tenant> {
    let dir = root.join("bench/package");
    let mut package = tenants::Package::load_dir(&dir).map_err(|errs| {
        anyhow!("{}: {}", dir.display(), errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    package.tenant.slug = slug.to_string();
    let applied = tenants::apply::publish(&db.owner, &package, "bench", &Limits::default()).await?;
    tenants::apply::upsert_users(&db.owner, applied.tenant, &package.tenant.users, None).await?;
    let actor = crate::setup::operator(db, applied.tenant, &package).await?;
    Ok(Tenant { id: applied.tenant, slug: applied.slug, actor })
}

async fn meters(store: &Store, tenant: &Tenant, n: usize) -> Result<Vec<String>> {
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let id = Uuid::now_v7();
        store
            .create_entity(
                tenant.id,
                "meter",
                json!({ "name": format!("{} {i}", tenant.slug) }),
                &tenant.actor,
                CreateOptions { id: Some(id), ..CreateOptions::default() },
            )
            .await
            .with_context(|| format!("creating a meter of {}", tenant.slug))?;
        paths.push(format!("/api/v1/t/{}/entities/meter/{id}/transitions/record", tenant.slug));
    }
    Ok(paths)
}

/// The router served on 127.0.0.1 with `ops` (rate limits off); stopped when dropped.
struct Served {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(store: &Store, db: &Database, keys: &Keys, ops: api::config::OpsConfig) -> Result<Served> {
    let state = AppState::new(api::state::Shared {
        store: store.clone(),
        keys: Arc::new(keys.clone()),
        owner: db.owner.clone(),
        ops: api::state::Ops::new(ops),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let app = api::http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Served { addr, task })
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one `record`; its status.
async fn fire(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    authorization: &HeaderValue,
    path: &str,
) -> Result<u16> {
    let body = serde_json::to_vec(&json!({ "input": { "value": 1 } }))?;
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::AUTHORIZATION, authorization.clone())
        .header(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Full::new(Bytes::from(body)))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// A client: fires on `path` until `until`, every `every` (or back to back when `None` or
/// behind its schedule); latencies (µs) and statuses.
async fn client(
    addr: SocketAddr,
    authorization: HeaderValue,
    path: String,
    every: Option<Duration>,
    start: Instant,
    until: Instant,
) -> Result<(Histogram<u64>, BTreeMap<u16, u64>)> {
    let mut sender = connect(addr).await?;
    let mut hist = new_histogram()?;
    let mut statuses = BTreeMap::new();
    let mut next = start;
    tokio::time::sleep_until(start).await;
    while Instant::now() < until {
        if let Some(every) = every {
            tokio::time::sleep_until(next).await;
            next += every;
        }
        let sent = Instant::now();
        let status = match fire(&mut sender, addr, &authorization, &path).await {
            Ok(s) => s,
            Err(_) => {
                sender = connect(addr).await?;
                0
            }
        };
        let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        hist.saturating_record(us.max(1));
        *statuses.entry(status).or_default() += 1;
    }
    Ok((hist, statuses))
}

/// Runs `clients` clients on `paths` (one each, round robin); merged results.
async fn run_clients(
    addr: SocketAddr,
    authorization: &HeaderValue,
    paths: &[String],
    clients: usize,
    every: Option<Duration>,
    start: Instant,
    until: Instant,
) -> Result<tokio::task::JoinHandle<Result<(Histogram<u64>, BTreeMap<u16, u64>)>>> {
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let path = paths[c % paths.len()].clone();
        // Spread the open-loop clients' schedules over one period.
        let offset = every.map_or(Duration::ZERO, |e| e.mul_f64(c as f64 / clients.max(1) as f64));
        set.spawn(client(addr, authorization.clone(), path, every, start + offset, until));
    }
    Ok(tokio::spawn(async move {
        let mut hist = new_histogram()?;
        let mut statuses = BTreeMap::new();
        while let Some(r) = set.join_next().await {
            let (h, s) = r.map_err(|e| anyhow!("a client panicked: {e}"))??;
            hist.add(&h).map_err(|e| anyhow!("histogram: {e:?}"))?;
            for (k, v) in s {
                *statuses.entry(k).or_default() += v;
            }
        }
        Ok((hist, statuses))
    }))
}

pub async fn run(root: &Path, db: &Database, pool: u32, seconds: u64) -> Result<OverloadResult> {
    let store = Store::new(db.app.clone(), Limits::default());
    let noisy = publish(db, root, "noisy").await?;
    let quiet = publish(db, root, "quiet").await?;
    let secret: [u8; 32] = rand::random();
    let keys = Keys::from_secret(&secret);
    let bearer = |t: &Tenant| -> Result<HeaderValue> {
        let token =
            keys.issue(t.id, &t.slug, &t.actor.id, &t.actor.email, &t.actor.roles, chrono::Duration::hours(6))?;
        Ok(HeaderValue::from_str(&format!("Bearer {token}"))?)
    };
    let (noisy_auth, quiet_auth) = (bearer(&noisy)?, bearer(&quiet)?);
    let mut ops = api::config::OpsConfig::from_env().context("reading the server's operational settings")?;
    ops.rate_limit_user = None;
    ops.rate_limit_ip = None;
    let (max_in_flight, tenant_in_flight) = (ops.max_in_flight, ops.tenant_in_flight);
    let flood_clients = 3 * max_in_flight.unwrap_or(api::limits::MAX_IN_FLIGHT) as usize;
    let noisy_paths = meters(&store, &noisy, flood_clients).await?;
    let quiet_paths = meters(&store, &quiet, 1).await?;
    let window = Duration::from_secs(seconds);

    // Capacity: the noisy tenant, closed loop, as many clients as its share.
    let served = serve(&store, db, &keys, ops.clone()).await?;
    let capacity_clients = tenant_in_flight.unwrap_or(api::limits::TENANT_IN_FLIGHT) as usize;
    eprintln!("bench: (e) overload: capacity with {capacity_clients} clients");
    let start = Instant::now() + Duration::from_millis(200);
    let (_, statuses) =
        run_clients(served.addr, &noisy_auth, &noisy_paths, capacity_clients, None, start, start + window)
            .await?
            .await??;
    let capacity_tps = statuses.get(&200).copied().unwrap_or(0) as f64 / window.as_secs_f64();
    let every = Duration::from_secs_f64(flood_clients as f64 / (3.0 * capacity_tps.max(1.0)));

    let mut phases = Vec::new();
    let off = api::config::OpsConfig { max_in_flight: None, tenant_in_flight: None, ..ops.clone() };
    for (name, flood, ops) in [
        ("quiet tenant alone", false, ops.clone()),
        ("with the noisy tenant at 3× capacity, admission on", true, ops.clone()),
        ("with the noisy tenant at 3× capacity, admission off", true, off),
    ] {
        eprintln!("bench: (e) overload: {name}");
        let served = serve(&store, db, &keys, ops).await?;
        let start = Instant::now() + Duration::from_millis(500);
        let noisy_run = if flood {
            Some(
                run_clients(
                    served.addr,
                    &noisy_auth,
                    &noisy_paths,
                    flood_clients,
                    Some(every),
                    start - Duration::from_millis(300),
                    start + window,
                )
                .await?,
            )
        } else {
            None
        };
        let (quiet_hist, quiet_status) =
            run_clients(served.addr, &quiet_auth, &quiet_paths, 1, None, start, start + window).await?.await??;
        let (noisy_hist, noisy_status) = match noisy_run {
            Some(h) => h.await??,
            None => (new_histogram()?, BTreeMap::new()),
        };
        let sent: u64 = noisy_status.values().sum();
        phases.push(Phase {
            name: name.to_string(),
            quiet: quiet_hist,
            quiet_status,
            noisy_offered: sent as f64 / (window.as_secs_f64() + 0.3),
            noisy_p99_us: noisy_hist.value_at_quantile(0.99),
            noisy_status,
        });
        drop(served);
        // Let the pool's connections come back before the next phase.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(served);
    Ok(OverloadResult { capacity_tps, max_in_flight, tenant_in_flight, pool, phases })
}

fn statuses(s: &BTreeMap<u16, u64>) -> String {
    if s.is_empty() {
        return "—".into();
    }
    s.iter()
        .map(|(k, v)| if *k == 0 { format!("{v} × no answer") } else { format!("{v} × {k}") })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn report(report: &mut Report, r: &OverloadResult) {
    let bound = |b: Option<u32>| b.map_or_else(|| "off".to_string(), |n| n.to_string());
    let mut table = Table::new(
        &["phase", "quiet p50", "quiet p99", "quiet answers", "noisy sent/s", "noisy answers", "noisy p99"],
        &[1, 2, 4, 6],
    );
    for p in &r.phases {
        table.row(vec![
            p.name.clone(),
            fmt_us(p.quiet.value_at_quantile(0.5)),
            fmt_us(p.quiet.value_at_quantile(0.99)),
            statuses(&p.quiet_status),
            if p.noisy_status.is_empty() { "—".into() } else { format!("{:.0}", p.noisy_offered) },
            statuses(&p.noisy_status),
            if p.noisy_status.is_empty() { "—".into() } else { fmt_us(p.noisy_p99_us) },
        ]);
    }
    report.heading("(e) Overload: a quiet tenant beside one at three times capacity");
    report.text(format!(
        "Capacity (the noisy tenant alone, closed loop): {:.0} transitions/s. Admission: \
             SWITCHYARD_MAX_IN_FLIGHT {}, SWITCHYARD_TENANT_IN_FLIGHT {}; pool {} connections.",
        r.capacity_tps,
        bound(r.max_in_flight),
        bound(r.tenant_in_flight),
        r.pool
    ));
    report.table(table);
}
