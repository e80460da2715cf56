//! `switchyard-bench`: the performance benchmark (`make bench`, see docs/benchmarks.md).
//!
//! In one run, on its own embedded Postgres (a private temp `SWITCHYARD_HOME`, stopped at the
//! end, also on error or Ctrl-C):
//!
//! * **(a)** the pure evaluation cost of a guard, of scripts and of whole transitions
//!   ([`evalcost`]);
//! * **(b)** transitions per second and p50/p99 latency at 1, 8 and 32 concurrent clients,
//!   through the engine (`Store::transition`) and through HTTP (the API router on 127.0.0.1)
//!   ([`load`]);
//!   and, as a yardstick, through the HTTP floor: a bare axum + sqlx route running the same
//!   transaction's SQL ([`floor`]);
//! * **(c)** the baseline: pgbench running the same SQL transaction on the same cluster at the
//!   same client counts ([`pgbench`]), against which (b) is given as ratios;
//! * **(d)** lists of 100,000 entities under a record rule, against the same lists without one
//!   ([`lists`]);
//! * **(e)** the inbox's first page at 100,000 orders, against the same entities explained one
//!   at a time ([`inbox`]).
//!
//! The report is printed and written as markdown to `target/bench-report.md`, with PASS/MISS
//! lines for the targets (nothing is asserted).
//!
//! Settings (environment): `BENCH_SECONDS` (measured seconds per level, default 10),
//! `BENCH_WARMUP_SECONDS` (default 2), `BENCH_CLIENTS` (default `1,8,32`), `BENCH_ROUNDS`
//! (rounds per level, default 5), `BENCH_EVAL_MS`
//! (time per evaluation measurement, default 1000), `BENCH_SEED` (default 42), `BENCH_REPORT`
//! (default `<workspace>/target/bench-report.md`), `BENCH_PGBENCH` (the pgbench binary),
//! `BENCH_KEEP` (keep the temp folder), `SWITCHYARD_PG_USER` (as for the server), `BENCH_ONLY=lists`
//! (only parts (d) and (e), the lists and the inbox), `BENCH_ONLY=inbox` (only part (e)),
//! `BENCH_ONLY=overload` ([`overload`]: a quiet tenant's latency beside a tenant at three times
//! capacity; `BENCH_REPORT` default `target/bench-overload.md`).
//!
//! `BENCH_ONLY=realistic` (`make bench-realistic`) runs only the realistic mix: chemichemi order
//! lives over HTTP against a `switchyard serve` child process on `BENCH_TENANTS` tenants (default
//! 50), against pgbench running the same SQL mix ([`realmix`], [`pgmix`]); its report goes to
//! `target/bench-realistic.md`.
//!
//! `BENCH_ONLY=eval` runs only part (a) and prints it (no database): for comparing an
//! evaluation change before and after.
//!
//! `BENCH_ONLY=scale` (`make bench-scale`) runs only the scale of data: a million orders
//! in one tenant beside 100 small ones, loaded with COPY, and the reads over HTTP with their
//! plans ([`scale`]); its report goes to `target/bench-scale.md` (or `BENCH_REPORT`).

mod cpu;
mod evalcost;
mod floor;
mod inbox;
mod lists;
mod load;
mod overload;
mod pgbench;
mod pgmix;
mod realmix;
mod report;
mod scale;
mod setup;
mod statements;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use api::db::Database;
use engine::limits::Limits;
use engine::store::Store;
use hdrhistogram::Histogram;

use crate::evalcost::EvalResults;
use crate::load::{Driver, LevelResult};
use crate::pgbench::{Pgbench, PgbenchResult};
use crate::report::{fmt_factor, fmt_ns, fmt_pct, fmt_share, fmt_tps, fmt_us, Report, Table};
use crate::setup::{Server, Set, WorkDir, ENTITIES_PER_CLIENT};

/// The allocator `switchyard serve` uses (api/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the environment asks for.
#[derive(Debug, Clone)]
struct Settings {
    seconds: u64,
    warmup: u64,
    clients: Vec<usize>,
    eval: Duration,
    seed: u64,
    report: PathBuf,
    /// Rounds per client count (each runs pgbench, engine and HTTP back to back).
    rounds: usize,
    /// `BENCH_PATHS`: only these of the self-loop's paths, each round printed, no report (for
    /// trying a change: `BENCH_PATHS=pgbench,http`).
    paths: Option<Vec<String>>,
}

/// The self-loop's paths, in the order a round runs them.
const PATHS: [&str; 5] = ["pgbench", "engine", "http", "serve", "floor"];

fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("{name}={v} is not a number")),
        _ => Ok(default),
    }
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

fn settings(root: &Path) -> Result<Settings> {
    let clients = match std::env::var("BENCH_CLIENTS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|c| c.trim().parse::<usize>().with_context(|| format!("BENCH_CLIENTS={v}")))
            .collect::<Result<Vec<_>>>()?,
        _ => vec![1, 8, 32],
    };
    if clients.is_empty() || clients.contains(&0) || clients.iter().any(|&c| c > 150) {
        bail!("BENCH_CLIENTS must list client counts between 1 and 150");
    }
    let seconds = env_u64("BENCH_SECONDS", 10)?;
    if seconds == 0 {
        bail!("BENCH_SECONDS must be at least 1");
    }
    let report = std::env::var_os("BENCH_REPORT")
        .filter(|p| !p.is_empty())
        .map_or_else(|| root.join("target/bench-report.md"), PathBuf::from);
    Ok(Settings {
        seconds,
        warmup: env_u64("BENCH_WARMUP_SECONDS", 2)?,
        clients,
        eval: Duration::from_millis(env_u64("BENCH_EVAL_MS", 1000)?.max(50)),
        seed: env_u64("BENCH_SEED", 42)?,
        report,
        rounds: usize::try_from(env_u64("BENCH_ROUNDS", 5)?.clamp(1, 20)).unwrap_or(5),
        paths: paths()?,
    })
}

fn paths() -> Result<Option<Vec<String>>> {
    let Some(v) = std::env::var("BENCH_PATHS").ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let paths: Vec<String> = v.split(',').map(|p| p.trim().to_ascii_lowercase()).collect();
    if let Some(bad) = paths.iter().find(|p| !PATHS.contains(&p.as_str())) {
        bail!("BENCH_PATHS={v}: `{bad}` is not one of {}", PATHS.join(", "));
    }
    Ok(Some(paths))
}

/// One client count: the three paths in the round whose HTTP share of pgbench's tx/s is the
/// median of the rounds, and every round's tx/s.
#[derive(Debug, Clone)]
struct Level {
    clients: usize,
    pgbench: PgbenchResult,
    engine: LevelResult,
    http: LevelResult,
    /// HTTP to a `switchyard serve` process of its own.
    serve: LevelResult,
    /// The HTTP floor ([`floor`]): a bare axum + sqlx route running the transaction.
    floor: LevelResult,
    /// pgbench, engine, HTTP, serve and floor tx/s of each round, in the order they ran.
    rounds: Vec<[f64; 5]>,
}

/// One round at one client count: pgbench, the engine, HTTP, serve, then the floor.
struct Round {
    pgbench: PgbenchResult,
    engine: LevelResult,
    http: LevelResult,
    serve: LevelResult,
    floor: LevelResult,
}

impl Level {
    /// The median round (by HTTP tx/s as a share of the same round's pgbench), with all rounds'
    /// figures. Paths in one round ran back to back, so their ratios compare like with like
    /// even when other work on the machine comes and goes between rounds.
    fn of_rounds(clients: usize, rounds: Vec<Round>) -> Result<Level> {
        let figures: Vec<[f64; 5]> = rounds
            .iter()
            .map(|r| [r.pgbench.tps, r.engine.tps(), r.http.tps(), r.serve.tps(), r.floor.tps()])
            .collect();
        let mut order: Vec<usize> = (0..rounds.len()).collect();
        order.sort_by(|&a, &b| (figures[a][2] / figures[a][0]).total_cmp(&(figures[b][2] / figures[b][0])));
        let median = order.get(order.len() / 2).copied().ok_or_else(|| anyhow!("no round ran"))?;
        let Round { pgbench, engine, http, serve, floor } =
            rounds.into_iter().nth(median).ok_or_else(|| anyhow!("no round ran"))?;
        Ok(Level { clients, pgbench, engine, http, serve, floor, rounds: figures })
    }

    /// The median over the rounds of a path's share of pgbench's tx/s ([`median_share`]).
    fn median_share(&self, path: usize) -> f64 {
        median_share(&self.rounds, path)
    }

    /// Each round's share of a path, in the order they ran (`60.3%, 74.5%, 86.2%`).
    fn shares(&self, path: usize) -> String {
        self.rounds.iter().map(|r| fmt_share(r[path] / r[0])).collect::<Vec<_>>().join(", ")
    }
}

/// The median over `rounds` of a path's tx/s as a share of the same round's pgbench (`path`:
/// 1 engine, 2 HTTP, 3 serve, 4 floor). The table shows the round with HTTP's median share,
/// which need not be the round of another path's median: until 2026-12-04 the `serve` verdict
/// took its share from HTTP's median round.
fn median_share(rounds: &[[f64; 5]], path: usize) -> f64 {
    let mut shares: Vec<f64> = rounds.iter().map(|r| r[path] / r[0]).collect();
    shares.sort_by(f64::total_cmp);
    shares.get(shares.len() / 2).copied().unwrap_or(0.0)
}

/// Facts about the database the run used.
#[derive(Debug, Clone, Default)]
struct DbFacts {
    version: String,
    synchronous_commit: String,
    fsync: String,
    shared_buffers: String,
    /// Whether the outbox trigger sends a NOTIFY (it did before `migrations/0007`): every
    /// transaction that notifies commits under one cluster-wide lock, pgbench's included.
    outbox_notifies: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    api::telemetry::init("warn");
    let root = workspace_root();
    let s = settings(&root)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let load_before = loadavg();

    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "overload") {
        return overload_only(&root, &s).await;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "realistic") {
        return realistic_only(&root).await;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "scale") {
        return scale_only(&root).await;
    }
    if s.paths.is_some() {
        // A few of the self-loop's paths, printed (no evaluation cost, lists or report).
        let pool_size = u32::try_from(s.clients.iter().copied().max().unwrap_or(1) + 4).context("too many clients")?;
        let (work, db) = own_cluster("the self-loop's paths", pool_size).await?;
        let outcome = until_interrupted(measure(&s, &root, &work, &db)).await;
        stop(work, db, outcome).await?;
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "eval") {
        // Part (a) alone, printed: for comparing an evaluation change before and after.
        let eval = evalcost::run(&root, s.eval)?;
        for m in &eval.all {
            eprintln!(
                "{:<55} median {:>10}  p10 {:>10}  p90 {:>10}",
                m.name,
                fmt_ns(m.median_ns),
                fmt_ns(m.p10_ns),
                fmt_ns(m.p90_ns)
            );
        }
        return Ok(());
    }
    // `BENCH_ONLY=lists`: (d) and (e) only; `BENCH_ONLY=inbox`: (e) only.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let only_lists = only == "lists" || only == "inbox";
    let eval = if only_lists {
        None
    } else {
        eprintln!("bench: (a) evaluation cost, {} ms per measurement", s.eval.as_millis());
        Some(evalcost::run(&root, s.eval)?)
    };

    let max_clients = s.clients.iter().copied().max().unwrap_or(1);
    let pool_size = u32::try_from(max_clients + 4).context("too many clients")?;
    let (work, db) = own_cluster("the load, lists and inbox", pool_size).await?;
    let outcome = until_interrupted(async {
        let measured = if only_lists { None } else { Some(measure(&s, &root, &work, &db).await?) };
        let lists = if only == "inbox" { None } else { Some(lists::run(&root, &db).await?) };
        let inbox = inbox::run(&root, &db).await?;
        Ok::<_, anyhow::Error>((measured, lists, inbox))
    })
    .await;
    let (measured, lists, inbox) = stop(work, db, outcome).await?;

    let load = format!("{} at the start, {} at the end", load_before, loadavg());
    let mut report = match (&measured, &eval) {
        (Some((facts, levels)), Some(eval)) => build_report(&s, cores, &load, facts, eval, levels),
        _ => report::Report::default(),
    };
    if let Some(lists) = &lists {
        lists::report(&mut report, lists);
    }
    inbox::report(&mut report, &inbox);
    write_report(&s.report, &report)
}

/// Part (e) alone, on its own embedded cluster.
async fn scale_only(root: &Path) -> Result<()> {
    let (work, db) = own_cluster("(e) scale of data", 8).await?;
    let outcome = until_interrupted(scale::run(root, &db)).await;
    let result = stop(work, db, outcome).await?;
    let mut report = report::Report::default();
    report.text(format!("Machine: {}; load average {}.", machine(), loadavg()));
    scale::report(&mut report, &result);
    write_report(&report_path(root, "target/bench-scale.md"), &report)
}

/// `BENCH_ONLY=realistic` (`make bench-realistic`): the chemichemi order mix over HTTP against a
/// `switchyard serve` child process, and pgbench running the same SQL mix ([`realmix`]).
async fn realistic_only(root: &Path) -> Result<()> {
    let clients = match std::env::var("BENCH_CLIENTS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|c| c.trim().parse::<usize>().with_context(|| format!("BENCH_CLIENTS={v}")))
            .collect::<Result<Vec<_>>>()?,
        _ => vec![8, 32],
    };
    if clients.is_empty() || clients.contains(&0) || clients.iter().any(|&c| c > 100) {
        bail!("BENCH_CLIENTS must list client counts between 1 and 100");
    }
    let tenants = usize::try_from(env_u64("BENCH_TENANTS", 50)?.clamp(1, 99))?;
    let customers = usize::try_from(env_u64("BENCH_CUSTOMERS", 40)?.clamp(10, 10_000))?;
    let s = realmix::Settings {
        tenants,
        customers,
        clients,
        seconds: env_u64("BENCH_SECONDS", 30)?.max(1),
        warmup: env_u64("BENCH_WARMUP_SECONDS", 5)?,
        seed: env_u64("BENCH_SEED", 42)?,
        bin: serve_binary(root),
    };
    let (work, db) = own_cluster("realistic mix", 8).await?;
    let outcome = until_interrupted(realmix::run(&work, &db, &s)).await;
    let result = stop(work, db, outcome).await?;
    let mut report = report::Report::default();
    realmix::report(&mut report, &result);
    write_report(&report_path(root, "target/bench-realistic.md"), &report)
}

/// A database on an embedded cluster of its own (`pool` connections), for one part run alone.
/// The `switchyard` binary a part runs as a separate server process (`BENCH_SWITCHYARD`, default
/// `target/release/switchyard`, which `scripts/bench.sh` builds).
fn serve_binary(root: &Path) -> PathBuf {
    std::env::var_os("BENCH_SWITCHYARD")
        .filter(|p| !p.is_empty())
        .map_or_else(|| root.join("target/release/switchyard"), PathBuf::from)
}

async fn own_cluster(what: &str, pool: u32) -> Result<(WorkDir, Database)> {
    let work = WorkDir::create()?;
    eprintln!("bench: {what}; starting an embedded cluster in {}", work.home().display());
    let db = setup::open_database(&work.home(), pool).await?;
    let db = if statements::wanted() { statements::enable(db, &work.home(), pool).await? } else { db };
    Ok((work, db))
}

/// `part`, unless Ctrl-C or SIGTERM comes first.
async fn until_interrupted<T>(part: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        r = part => r,
        signal = interrupted() => Err(anyhow!("interrupted by {signal}")),
    }
}

/// Stops the cluster of [`own_cluster`] whatever the part's `outcome`, then gives it.
async fn stop<T>(work: WorkDir, db: Database, outcome: Result<T>) -> Result<T> {
    eprintln!("bench: stopping the cluster");
    let closed = db.close().await.context("stopping the embedded cluster");
    drop(work);
    let result = outcome?;
    closed?;
    Ok(result)
}

/// Where a part run alone writes its report: `BENCH_REPORT`, else `default` in the workspace.
fn report_path(root: &Path, default: &str) -> PathBuf {
    std::env::var_os("BENCH_REPORT").map_or_else(|| root.join(default), PathBuf::from)
}

/// Prints `report` and writes it as markdown to `path`.
fn write_report(path: &Path, report: &report::Report) -> Result<()> {
    print!("{}", report.to_text());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, report.to_markdown()).with_context(|| format!("writing {}", path.display()))?;
    println!("(written to {})", path.display());
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, naming the signal.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

async fn show(db: &Database, setting: &str) -> Result<String> {
    let v: String = sqlx::query_scalar(&format!("show {setting}")).fetch_one(&db.app).await?;
    Ok(v)
}

/// Parts (b) and (c), on the open database.
async fn measure(s: &Settings, root: &Path, work: &WorkDir, db: &Database) -> Result<(DbFacts, Vec<Level>)> {
    let facts = DbFacts {
        version: show(db, "server_version").await?,
        synchronous_commit: show(db, "synchronous_commit").await?,
        fsync: show(db, "fsync").await?,
        shared_buffers: show(db, "shared_buffers").await?,
        outbox_notifies: sqlx::query_scalar(
            "select coalesce(bool_or(prosrc ilike '%pg_notify%'), false) from pg_proc where proname = 'outbox_enqueue'",
        )
        .fetch_one(&db.owner)
        .await
        .context("reading the outbox trigger")?,
    };
    eprintln!(
        "bench: PostgreSQL {}, synchronous_commit = {}, fsync = {}",
        facts.version, facts.synchronous_commit, facts.fsync
    );

    let cluster = db.cluster.as_ref().ok_or_else(|| anyhow!("the benchmark needs the embedded cluster"))?;
    let postmaster = cluster.pid();
    let max_clients = s.clients.iter().copied().max().unwrap_or(1);
    let store = Store::new(db.app.clone(), Limits::default());
    let tenant = setup::publish(db, &store, &root.join("bench/package"), max_clients * ENTITIES_PER_CLIENT).await?;

    let server = Server::start(store.clone(), db).await?;
    let engine = Arc::new(Driver::Engine { store: store.clone(), tenant: tenant.id, actor: tenant.actor.clone() });
    let http = Arc::new(Driver::http(server.addr, &server.authorization(&tenant)?)?);
    // The same router in a `switchyard serve` process of its own, on the same database, as it
    // runs in production (with its outbox relay, timers and webhook workers).
    let secret = format!("{:064x}{:064x}", rand::random::<u128>(), rand::random::<u128>());
    let serve_keys = api::auth::Keys::from_secrets(&[secret.as_bytes()]).ok_or_else(|| anyhow!("no JWT secret"))?;
    let serve_env = switchyard_bench::realistic::ServerEnv {
        bin: serve_binary(root),
        database_url: cluster.superuser_url(api::cluster::DATABASE),
        app_database_url: cluster.url_for("switchyard_app", api::cluster::DATABASE),
        jwt_secret: secret,
        home: work.path.join("serve-home"),
        log: work.path.join("serve.log"),
        // The same pool and tenant share as the in-process server (`Server::start`).
        settings: vec![
            ("SWITCHYARD_DB_POOL".into(), db.app.options().get_max_connections().to_string()),
            ("SWITCHYARD_TENANT_IN_FLIGHT".into(), db.app.options().get_max_connections().to_string()),
        ],
    };
    let serve_process = switchyard_bench::realistic::ServerProcess::start(&serve_env).await?;
    let serve = Arc::new(Driver::http_to_process(
        serve_process.addr,
        &setup::bearer(&serve_keys, &tenant)?,
        serve_process.pid(),
    )?);
    let floor_server = floor::Floor::start(db.app.clone(), &tenant).await?;
    let floor_driver = Arc::new(Driver::http(floor_server.addr, "Bearer none")?);
    let floor_targets = floor::targets(max_clients)?;
    let engine_targets = setup::targets(Set::Engine, max_clients, &tenant.slug)?;
    let http_targets = setup::targets(Set::Http, max_clients, &tenant.slug)?;
    let serve_targets = setup::targets(Set::Serve, max_clients, &tenant.slug)?;

    let pg_dir = work.path.join("pgbench");
    std::fs::create_dir_all(&pg_dir)?;
    let script = pg_dir.join("transition.sql");
    std::fs::write(&script, pgbench::script(ENTITIES_PER_CLIENT))?;
    let options = cluster.connect_options("switchyard_app", api::cluster::DATABASE);
    let pg = Pgbench {
        program: pgbench::find_program()?,
        host: cluster.socket_dir().to_path_buf(),
        port: options.get_port(),
        user: "switchyard_app".into(),
        database: api::cluster::DATABASE.into(),
        vars: vec![
            ("tenant".into(), tenant.id.to_string()),
            ("idprefix".into(), Set::Pgbench.id_prefix()),
            ("actor".into(), tenant.actor.id.clone()),
            ("email".into(), tenant.actor.email.clone()),
            ("cv".into(), tenant.version.to_string()),
        ],
        script,
        seed: s.seed,
        postmaster,
    };

    let warmup = Duration::from_secs(s.warmup);
    let window = Duration::from_secs(s.seconds);
    let probe = statements::wanted();
    let mut levels = Vec::new();
    for &clients in &s.clients {
        // Before each window: the outbox rows of the previous one relayed (by the `serve` process,
        // which polls every 5 s for rows it was not told of), then a checkpoint. Otherwise a window
        // paid for relaying the one before: the `serve` window, woken at its first commit, relayed
        // the engine's and HTTP's ~30,000 rows during its measurement.
        let checkpoint = || async {
            relayed(&db.owner).await?;
            sqlx::query("checkpoint").execute(&db.owner).await.context("checkpoint")
        };

        let mut rounds = Vec::new();
        for round in 1..=s.rounds {
            let tag = format!("{clients} client(s), round {round}/{}", s.rounds);
            let w = load::Window {
                owner: &db.owner,
                clients,
                warmup,
                duration: window,
                seed: s.seed,
                postmaster,
                statements: probe,
            };
            if let Some(paths) = &s.paths {
                for path in paths {
                    checkpoint().await?;
                    let (tps, ok, driver_us, postgres_us) = match path.as_str() {
                        "pgbench" => {
                            let log = pg_dir.join(format!("log-{clients}-{round}"));
                            let r = pg.run(&db.owner, clients, warmup, window, &log, probe).await?;
                            (r.tps, r.ok, r.cpu.children_us, r.cpu.postgres_us)
                        }
                        other => {
                            let (driver, targets) = match other {
                                "engine" => (&engine, &engine_targets),
                                "http" => (&http, &http_targets),
                                "serve" => (&serve, &serve_targets),
                                _ => (&floor_driver, &floor_targets),
                            };
                            let r = load::run_level(&w, driver.clone(), targets, other).await?;
                            (r.tps(), r.ok, r.cpu.own_us, r.cpu.postgres_us)
                        }
                    };
                    let per = |us: u64| us as f64 / ok.max(1) as f64;
                    eprintln!(
                        "bench: {tag}: {path} {} tx/s, driver CPU/tx {:.0} µs, Postgres CPU/tx {:.0} µs",
                        fmt_tps(tps),
                        per(driver_us),
                        per(postgres_us)
                    );
                }
                continue;
            }
            checkpoint().await?;
            eprintln!("bench: {tag}: pgbench");
            let log = pg_dir.join(format!("log-{clients}-{round}"));
            let pgbench = pg.run(&db.owner, clients, warmup, window, &log, probe).await?;

            checkpoint().await?;
            eprintln!("bench: {tag}: engine");
            let engine = load::run_level(&w, engine.clone(), &engine_targets, "engine").await?;

            checkpoint().await?;
            eprintln!("bench: {tag}: HTTP");
            let http = load::run_level(&w, http.clone(), &http_targets, "HTTP").await?;

            checkpoint().await?;
            eprintln!("bench: {tag}: HTTP to switchyard serve");
            let served = load::run_level(&w, serve.clone(), &serve_targets, "serve").await?;

            checkpoint().await?;
            eprintln!("bench: {tag}: HTTP floor");
            let floor = load::run_level(&w, floor_driver.clone(), &floor_targets, "floor").await?;

            eprintln!(
                "bench: {tag}: pgbench {} tx/s, engine {} tx/s, HTTP {} tx/s, serve {} tx/s, floor {} tx/s",
                fmt_tps(pgbench.tps),
                fmt_tps(engine.tps()),
                fmt_tps(http.tps()),
                fmt_tps(served.tps()),
                fmt_tps(floor.tps())
            );
            rounds.push(Round { pgbench, engine, http, serve: served, floor });
        }
        if s.paths.is_none() {
            levels.push(Level::of_rounds(clients, rounds)?);
        }
    }
    drop(server);
    drop(floor_server);
    serve_process.stop().await?;
    Ok((facts, levels))
}

/// Waits (at most two minutes) until no outbox row waits for the relay.
async fn relayed(owner: &sqlx::PgPool) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let pending: i64 = sqlx::query_scalar("select count(*) from outbox_pending").fetch_one(owner).await?;
        if pending == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("{pending} outbox rows still unrelayed after two minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or_else(|| "? GiB".into(), |kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0));
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "?".into(), |s| s.trim().to_string());
    format!("{cpu}, {mem} RAM, Linux {kernel}")
}

fn q(h: &Histogram<u64>, quantile: f64) -> u64 {
    h.value_at_quantile(quantile)
}

/// CPU µs per transaction, or "-".
fn per_tx(us: u64, ok: u64) -> String {
    if ok == 0 {
        "-".into()
    } else {
        fmt_ns(us as f64 * 1_000.0 / ok as f64)
    }
}

/// A count per transaction, or "-".
fn ratio(n: u64, ok: u64) -> String {
    if ok == 0 {
        "-".into()
    } else {
        format!("{:.2}", n as f64 / ok as f64)
    }
}

/// Bytes per transaction, or "-".
fn bytes_per_tx(bytes: u64, ok: u64) -> String {
    if ok == 0 {
        return "-".into();
    }
    let b = bytes as f64 / ok as f64;
    if b < 1024.0 {
        format!("{b:.0} B")
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

fn busy(usage: &cpu::Usage, window: Duration, cores: usize) -> String {
    let total = (usage.own_us + usage.children_us + usage.postgres_us) as f64;
    fmt_pct(total / (window.as_secs_f64() * 1e6 * cores as f64))
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every number.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn build_report(
    s: &Settings,
    cores: usize,
    load: &str,
    facts: &DbFacts,
    eval: &EvalResults,
    levels: &[Level],
) -> Report {
    let mut r = Report::default();
    r.heading("Setup");
    r.lines(vec![
        format!("machine            {cores} cores: {}", machine()),
        format!("load average       {load} (other work on the machine skews every number)"),
        format!(
            "database           PostgreSQL {}, embedded cluster in a temp SWITCHYARD_HOME, Unix socket, shared_buffers = {}",
            facts.version, facts.shared_buffers
        ),
        format!("durability         synchronous_commit = {}, fsync = {}", facts.synchronous_commit, facts.fsync),
        if facts.outbox_notifies {
            "outbox trigger     queues the row and calls pg_notify (commits serialise on the notify lock)".into()
        } else {
            "outbox trigger     queues the row only (no NOTIFY in the transaction: migrations/0007)".into()
        },
        format!(
            "load               {} round(s) per client count, each path {} s measured after {} s warm-up; clients {}; {} meters per client; seed {}",
            s.rounds,
            s.seconds,
            s.warmup,
            s.clients.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            ENTITIES_PER_CLIENT,
            s.seed
        ),
        "transition         meter.record (bench/package): input schema, 1 guard, 20-line script, 1 event".into(),
        "round trips        pgbench 7 (BEGIN, set tenant, SELECT FOR UPDATE, UPDATE, INSERT history, INSERT outbox,".into(),
        "                   COMMIT); engine 2 (BEGIN with the tenant setting and the SELECT FOR UPDATE, EXECUTEd from a".into(),
        "                   statement prepared once per connection, in one message; the update, history and outbox rows".into(),
        "                   in one statement sent with the COMMIT in one message); HTTP the engine's 2 (the token's user is".into(),
        "                   looked up once, then kept until a credential changes: api/src/auth/cache.rs)".into(),
        "HTTP client        one hyper HTTP/1.1 keep-alive connection per client, in this process".into(),
    ]);

    r.heading("(a) Evaluation cost (pure, no IO)");
    let mut t = Table::new(&["measurement", "median", "p10 – p90", "calls", "target"], &[1, 3]);
    for m in &eval.all {
        t.row(vec![
            m.name.clone(),
            fmt_ns(m.median_ns),
            format!("{} – {}", fmt_ns(m.p10_ns), fmt_ns(m.p90_ns)),
            m.calls.to_string(),
            m.target_ns.map_or_else(String::new, |ns| format!("< {}", fmt_ns(ns))),
        ]);
    }
    r.table(t);
    r.lines(eval.all.iter().map(|m| format!("{}: {}", m.name, m.covers)).collect());

    r.heading("(b) Transitions per second, against (c) the pgbench baseline");
    let mut t = Table::new(
        &[
            "clients",
            "path",
            "tx/s",
            "p50",
            "p99",
            "tx/s vs pgbench",
            "p99 vs pgbench",
            "driver CPU/tx",
            "Postgres CPU/tx",
            "WAL/tx",
            "DB xacts/tx",
            "CPU busy",
            "errors",
        ],
        &[0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    for l in levels {
        let base_tps = l.pgbench.tps;
        let base_p99 = q(&l.pgbench.latency_us, 0.99) as f64;
        let pg = &l.pgbench;
        t.row(vec![
            l.clients.to_string(),
            "pgbench (SQL only)".into(),
            fmt_tps(pg.tps),
            fmt_us(q(&pg.latency_us, 0.5)),
            fmt_us(q(&pg.latency_us, 0.99)),
            "100%".into(),
            "1.00×".into(),
            per_tx(pg.cpu.children_us, pg.ok),
            per_tx(pg.cpu.postgres_us, pg.ok),
            bytes_per_tx(pg.db.wal_bytes, pg.ok),
            ratio(pg.db.xacts, pg.ok),
            busy(&pg.cpu, pg.window, cores),
            pg.failed.to_string(),
        ]);
        for (name, run) in [
            ("engine (Store::transition)", &l.engine),
            ("HTTP (axum, hyper client)", &l.http),
            ("HTTP to switchyard serve", &l.serve),
            ("HTTP floor (axum + sqlx, no engine)", &l.floor),
        ] {
            t.row(vec![
                l.clients.to_string(),
                name.into(),
                fmt_tps(run.tps()),
                fmt_us(q(&run.latency_us, 0.5)),
                fmt_us(q(&run.latency_us, 0.99)),
                fmt_pct(run.tps() / base_tps),
                fmt_factor(q(&run.latency_us, 0.99) as f64 / base_p99),
                per_tx(run.cpu.own_us, run.ok),
                per_tx(run.cpu.postgres_us, run.ok),
                bytes_per_tx(run.db.wal_bytes, run.ok),
                ratio(run.db.xacts, run.ok),
                busy(&run.cpu, run.window, cores),
                run.errors.to_string(),
            ]);
        }
    }
    r.table(t);
    r.text(
        "driver CPU/tx: CPU time of the process driving the load per transition (pgbench; or this \
         process: clients + engine, + axum server and hyper client for HTTP; for serve, the hyper \
         clients and the server process). Postgres CPU/tx: the \
         cluster's backends. WAL/tx: write-ahead log written per transition (pg_stat_wal). DB \
         xacts/tx: database transactions per transition (pg_stat_database). CPU busy: all of it \
         over the window, as a share of all cores. Each client count ran in rounds (pgbench, \
         engine, HTTP, serve, floor back to back); the table shows the round with the median HTTP \
         share. The floor: a bare axum route running the transaction's SQL with sqlx (no \
         authentication, middleware or workflow), driven by the same HTTP client: what any Rust \
         HTTP server doing this SQL costs here.",
    );
    r.lines(
        levels
            .iter()
            .map(|l| {
                let rounds: Vec<String> = l
                    .rounds
                    .iter()
                    .map(|[pg, engine, http, serve, floor]| {
                        format!(
                            "{}/{}/{}/{}/{} ({}, {}, {})",
                            fmt_tps(*pg),
                            fmt_tps(*engine),
                            fmt_tps(*http),
                            fmt_tps(*serve),
                            fmt_tps(*floor),
                            fmt_pct(http / pg),
                            fmt_pct(serve / pg),
                            fmt_pct(floor / pg)
                        )
                    })
                    .collect();
                format!(
                    "rounds at {:>3} clients, pgbench/engine/HTTP/serve/floor tx/s (HTTP, serve, floor shares): {}",
                    l.clients,
                    rounds.join(", ")
                )
            })
            .collect(),
    );
    let errors: Vec<String> = levels
        .iter()
        .flat_map(|l| [("engine", &l.engine), ("HTTP", &l.http), ("serve", &l.serve)].map(|(n, r)| (l.clients, n, r)))
        .filter_map(|(c, n, r)| r.first_error.as_ref().map(|e| format!("{n} at {c} clients: {e}")))
        .collect();
    if !errors.is_empty() {
        r.lines(errors.into_iter().map(|e| format!("first error: {e}")).collect());
    }

    r.heading("Targets");
    let mut lines = Vec::new();
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    if let Some(g) = eval.all.get(eval.guard) {
        lines.push(format!(
            "{}  compiled guard < 1 µs: {} = {}",
            verdict(g.median_ns < evalcost::GUARD_TARGET_NS),
            g.name,
            fmt_ns(g.median_ns)
        ));
    }
    if let Some(m) = eval.all.get(eval.script) {
        lines.push(format!(
            "{}  20-line script incl. data conversion < 40 µs: {} = {}",
            verdict(m.median_ns < evalcost::SCRIPT_TARGET_NS),
            m.name,
            fmt_ns(m.median_ns)
        ));
    }
    let top = levels.iter().find(|l| l.clients == 32).or_else(|| levels.iter().max_by_key(|l| l.clients));
    if let Some(l) = top {
        let at = if l.clients == 32 { String::new() } else { format!("; 32 not run: at {} clients", l.clients) };
        let note = format!(" (median of {} round(s){at})", l.rounds.len());
        let ratio = l.http.tps() / l.pgbench.tps;
        lines.push(format!(
            "{}  HTTP at 32 clients >= 60% of pgbench tx/s{note}: {} vs {} tx/s = {}",
            verdict(ratio >= 0.6),
            fmt_tps(l.http.tps()),
            fmt_tps(l.pgbench.tps),
            fmt_pct(ratio)
        ));
        for (path, index) in [("HTTP", 2), ("serve", 3)] {
            let share = l.median_share(index);
            lines.push(format!(
                "{}  {path} at 32 clients >= 75% of pgbench tx/s (next target){note}: {} (rounds {})",
                verdict(share >= 0.75),
                fmt_share(share),
                l.shares(index)
            ));
        }
        let (p99, base) = (q(&l.http.latency_us, 0.99), q(&l.pgbench.latency_us, 0.99));
        let factor = p99 as f64 / base as f64;
        lines.push(format!(
            "{}  HTTP p99 at 32 clients <= 2× pgbench p99{note}: {} vs {} = {}",
            verdict(factor <= 2.0),
            fmt_us(p99),
            fmt_us(base),
            fmt_factor(factor)
        ));
    }
    if let Some(l) = levels.iter().find(|l| l.clients == 8) {
        for (path, index) in [("HTTP", 2), ("serve", 3)] {
            let share = l.median_share(index);
            lines.push(format!(
                "{}  {path} at 8 clients >= 60% of pgbench tx/s (next target, median of {} round(s)): {} (rounds {})",
                verdict(share >= 0.6),
                l.rounds.len(),
                fmt_share(share),
                l.shares(index)
            ));
        }
    }
    lines.push(format!(
        "{}  synchronous_commit is on: synchronous_commit = {}",
        verdict(facts.synchronous_commit == "on"),
        facts.synchronous_commit
    ));
    r.lines(lines);
    r
}

/// `BENCH_ONLY=overload`: a quiet tenant beside a flooding one, on its own cluster, with the
/// default pool.
async fn overload_only(root: &Path, s: &Settings) -> Result<()> {
    let pool = 32;
    let (work, db) = own_cluster("overload", pool).await?;
    let outcome = until_interrupted(overload::run(root, &db, pool, s.seconds)).await;
    let result = stop(work, db, outcome).await?;
    let mut report = report::Report::default();
    overload::report(&mut report, &result);
    write_report(&report_path(root, "target/bench-overload.md"), &report)
}

#[cfg(test)]
mod tests {
    use super::median_share;

    #[test]
    fn each_path_has_the_median_of_its_own_shares() {
        // Rounds of pgbench, engine, HTTP, serve, floor tx/s: HTTP's median round is the first
        // (75%), serve's median share is the second round's (69%), not the first's (64%).
        let rounds = [
            [3395.0, 3073.0, 2547.0, 2182.0, 3027.0],
            [3254.0, 2820.0, 2404.0, 2241.0, 3116.0],
            [3402.0, 3266.0, 2704.0, 2672.0, 3362.0],
        ];
        let pct = |x: f64| (x * 100.0).round();
        assert_eq!(pct(median_share(&rounds, 2)), 75.0);
        assert_eq!(pct(median_share(&rounds, 3)), 69.0);
        assert_eq!(pct(median_share(&rounds[..1], 3)), 64.0);
        assert_eq!(median_share(&[], 3), 0.0);
    }

    #[test]
    fn a_share_just_under_its_target_does_not_read_as_the_target() {
        // Session 18's second run: `serve` at 2449 of 3286 tx/s, a miss of 75% that a whole
        // percent showed as "75%".
        let share = 2449.0 / 3286.0;
        assert!(share < 0.75);
        assert_eq!(crate::report::fmt_pct(share), "75%");
        assert_eq!(crate::report::fmt_share(share), "74.5%");
    }
}
