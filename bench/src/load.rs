//! Part (b): closed-loop load through the engine (`Store::transition`) or through HTTP (the
//! axum router served in-process on 127.0.0.1, one keep-alive hyper connection per client).
//!
//! `clients` tasks each fire `meter.record` back to back on their own entities (round robin
//! over [`crate::setup::ENTITIES_PER_CLIENT`] meters, so no two clients ever wait for the same
//! row lock), with a random reading. The first `warmup` is not counted (connections open, the
//! definition cache fills); then, for `duration`, every transition that *completes* inside the
//! window counts, and its latency (request sent → answer read) goes into an HDR histogram.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use engine::model::Actor;
use engine::store::{Store, TenantId, TransitionOptions, TransitionRequest};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::cpu;

/// How a transition is fired.
pub enum Driver {
    /// In-process, straight into the executor.
    Engine { store: Store, tenant: TenantId, actor: Actor },
    /// Over HTTP/1.1 with keep-alive, with a bearer token: each client opens one connection
    /// to `addr` and sends its requests on it one after the other (as pgbench uses one
    /// connection per client). The client is hyper's own connection, with no pool, redirect or
    /// cookie handling, so that the CPU the load generator takes from the server stays small.
    /// `server`: the pid of the server process when it is not this one (a `switchyard serve`
    /// child): its CPU counts as the driver's.
    Http { addr: SocketAddr, authorization: HeaderValue, host: HeaderValue, server: Option<u32> },
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Driver::Engine { tenant, .. } => f.debug_struct("Engine").field("tenant", &tenant).finish(),
            Driver::Http { addr, .. } => f.debug_struct("Http").field("addr", addr).finish_non_exhaustive(),
        }
    }
}

/// One entity a client fires on: its id and (for HTTP) the transition's path.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: Uuid,
    pub path: String,
}

/// A client's own connection (HTTP), or nothing (engine).
pub enum Connection {
    Engine,
    Http(SendRequest<Full<Bytes>>),
}

impl Driver {
    /// The HTTP driver of the server at `addr`, sending `authorization` (`Bearer …`).
    pub fn http(addr: SocketAddr, authorization: &str) -> Result<Driver> {
        Ok(Driver::Http {
            addr,
            authorization: HeaderValue::from_str(authorization).context("the authorization header")?,
            host: HeaderValue::from_str(&addr.to_string()).context("the host header")?,
            server: None,
        })
    }

    /// [`Driver::http`] to a server in another process, `pid`.
    pub fn http_to_process(addr: SocketAddr, authorization: &str, pid: Option<u32>) -> Result<Driver> {
        let mut driver = Driver::http(addr, authorization)?;
        if let Driver::Http { server, .. } = &mut driver {
            *server = pid;
        }
        Ok(driver)
    }

    /// The server's process when it is not this one.
    fn server_process(&self) -> Option<u32> {
        match self {
            Driver::Http { server, .. } => *server,
            Driver::Engine { .. } => None,
        }
    }

    /// Opens a client's connection (HTTP: one TCP connection with Nagle off, kept alive).
    pub async fn connect(&self) -> Result<Connection> {
        match self {
            Driver::Engine { .. } => Ok(Connection::Engine),
            Driver::Http { addr, .. } => {
                let stream =
                    tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
                stream.set_nodelay(true)?;
                let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    // Ends when the client drops its sender (or the server closes).
                    let _ = connection.await;
                });
                Ok(Connection::Http(sender))
            }
        }
    }

    async fn fire(&self, connection: &mut Connection, target: &Target, value: i64) -> Result<()> {
        match (self, connection) {
            (Driver::Engine { store, tenant, actor }, _) => {
                let request = TransitionRequest {
                    type_name: "meter",
                    id: target.id,
                    name: "record",
                    input: json!({ "value": value }),
                };
                store.transition(*tenant, request, actor, TransitionOptions::default()).await?;
                Ok(())
            }
            (Driver::Http { authorization, host, .. }, Connection::Http(sender)) => {
                let body = serde_json::to_vec(&json!({ "input": { "value": value } }))?;
                let request = hyper::Request::post(target.path.as_str())
                    .header(hyper::header::HOST, host.clone())
                    .header(hyper::header::AUTHORIZATION, authorization.clone())
                    .header(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(Full::new(Bytes::from(body)))?;
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                if !status.is_success() {
                    return Err(anyhow!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
                }
                Ok(())
            }
            (Driver::Http { .. }, Connection::Engine) => Err(anyhow!("an HTTP driver needs an HTTP connection")),
        }
    }
}

/// What one level (a number of clients on one path) measured.
#[derive(Debug, Clone)]
pub struct LevelResult {
    /// Transitions that succeeded inside the window.
    pub ok: u64,
    /// Transitions that failed (warm-up included).
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    /// Latencies in microseconds.
    pub latency_us: Histogram<u64>,
    pub cpu: cpu::Usage,
    /// What the database counted during the window.
    pub db: DbCounters,
}

impl LevelResult {
    pub fn tps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

struct ClientResult {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Histogram<u64>,
}

/// Cluster-wide counters: WAL written (`pg_stat_wal`, PostgreSQL 14+) and transactions
/// committed or rolled back in the database (`pg_stat_database`, flushed by each backend at
/// most once a second, so a window of seconds is counted to within about a second).
#[derive(Debug, Clone, Copy, Default)]
pub struct DbCounters {
    pub wal_bytes: u64,
    pub xacts: u64,
}

impl DbCounters {
    pub async fn read(pool: &PgPool) -> Result<DbCounters> {
        let (wal, xacts): (i64, i64) = sqlx::query_as(
            "select (select wal_bytes::bigint from pg_stat_wal), \
                    (select (xact_commit + xact_rollback)::bigint from pg_stat_database where datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .context("reading pg_stat_wal and pg_stat_database")?;
        Ok(DbCounters { wal_bytes: u64::try_from(wal).unwrap_or(0), xacts: u64::try_from(xacts).unwrap_or(0) })
    }

    /// What was counted from `self` to `later`.
    pub fn until(&self, later: &DbCounters) -> DbCounters {
        DbCounters {
            wal_bytes: later.wal_bytes.saturating_sub(self.wal_bytes),
            xacts: later.xacts.saturating_sub(self.xacts),
        }
    }
}

/// A histogram of microsecond latencies from 1 µs to 60 s, three significant digits.
pub fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow!("histogram: {e:?}"))
}

/// What the windows of one level share, whatever drives them.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// Reads the database's counters at the edges of the window.
    pub owner: &'a PgPool,
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
    /// The cluster's postmaster (its CPU time and its children's count as Postgres's).
    pub postmaster: i32,
    /// Print the statements each window ran ([`crate::statements`]).
    pub statements: bool,
}

/// Runs one level through `driver` (the window's name is `name`): `targets[c]` are client `c`'s
/// entities (at least `w.clients` lists).
pub async fn run_level(
    w: &Window<'_>,
    driver: Arc<Driver>,
    targets: &[Vec<Target>],
    name: &str,
) -> Result<LevelResult> {
    let Window { owner, clients, warmup, duration, seed, postmaster, statements } = *w;
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;

    let mut set = JoinSet::new();
    for (c, mine) in targets.iter().take(clients).enumerate() {
        let driver = driver.clone();
        let mine = mine.clone();
        set.spawn(async move {
            let mut r = ClientResult { ok: 0, errors: 0, first_error: None, hist: new_histogram()? };
            let mut connection = driver.connect().await?;
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(c as u64));
            let mut i = 0usize;
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let Some(target) = mine.get(i % mine.len().max(1)) else { break };
                i += 1;
                let outcome = driver.fire(&mut connection, target, rng.gen_range(0..=1000)).await;
                let t1 = Instant::now();
                match outcome {
                    Ok(()) if t1 >= measure_from && t1 < until => {
                        r.ok += 1;
                        r.hist.saturating_record(u64::try_from((t1 - t0).as_micros()).unwrap_or(u64::MAX).max(1));
                    }
                    Ok(()) => {}
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            Ok::<_, anyhow::Error>(r)
        });
    }
    if set.len() < clients {
        return Err(anyhow!("only {} entity lists for {clients} clients", set.len()));
    }

    // CPU times at the edges of the window.
    tokio::time::sleep_until(measure_from).await;
    let server = driver.server_process();
    let server_before = server.map_or(0, cpu::process_us);
    let before = cpu::Snapshot::take(postmaster);
    let db_before = DbCounters::read(owner).await?;
    if statements {
        crate::statements::reset(owner).await?;
    }
    tokio::time::sleep_until(until).await;
    let after = cpu::Snapshot::take(postmaster);
    let server_us = server.map_or(0, cpu::process_us).saturating_sub(server_before);
    let db_after = DbCounters::read(owner).await?;
    let ran = if statements { crate::statements::read(owner).await? } else { Vec::new() };
    let mut cpu = before.until(&after);
    // A server in another process: the driver is the load's clients plus that server.
    cpu.own_us += server_us;

    let mut out = LevelResult {
        ok: 0,
        errors: 0,
        first_error: None,
        window: duration,
        latency_us: new_histogram()?,
        cpu,
        db: db_before.until(&db_after),
    };
    while let Some(joined) = set.join_next().await {
        let r = joined.context("a load client panicked")??;
        out.ok += r.ok;
        out.errors += r.errors;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
        out.latency_us.add(&r.hist).map_err(|e| anyhow!("merging histograms: {e:?}"))?;
    }
    if statements {
        crate::statements::print(name, out.ok, &ran);
    }
    if out.ok == 0 {
        return Err(anyhow!(
            "no transition succeeded with {clients} clients; first error: {}",
            out.first_error.as_deref().unwrap_or("none (too short a run?)")
        ));
    }
    Ok(out)
}
