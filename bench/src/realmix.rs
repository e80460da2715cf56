//! `BENCH_ONLY=realistic` (`make bench-realistic`; docs/benchmarks.md, "The realistic mix"):
//! chemichemi order lives over HTTP against a real `switchyard serve` child process on many
//! tenants ([`switchyard_bench::realistic`]), measured against pgbench running the same SQL mix
//! on the same cluster in the same run.
//!
//! For each client count: the HTTP mix first (its operations counted by kind), then pgbench with
//! one script per operation kind ([`crate::pgmix`]), weighted (`--file script@weight`) by the
//! counts the HTTP mix just measured, with as many clients, for as long. The ratio is the
//! engine's operations per second over pgbench's transactions per second: both are the same mix
//! of the same statements' work, so it says what the engine, its HTTP server and the JSON around
//! them cost on top of the SQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use api::db::Database;
use engine::limits::Limits;
use engine::store::Store;
use hdrhistogram::Histogram;
use switchyard_bench::realistic::load::{self, MixResult, Op};
use switchyard_bench::realistic::{self, world, ServerEnv, ServerProcess};
use tokio::process::Command;

use crate::cpu;
use crate::load::{new_histogram, DbCounters};
use crate::pgmix::{self, Kind};
use crate::report::{fmt_pct, fmt_tps, fmt_us, Report, Table};
use crate::setup::WorkDir;

/// What the environment asks for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub tenants: usize,
    pub customers: usize,
    pub clients: Vec<usize>,
    pub seconds: u64,
    pub warmup: u64,
    pub seed: u64,
    /// The `switchyard` binary (`BENCH_SWITCHYARD`, default `target/release/switchyard`).
    pub bin: PathBuf,
}

/// pgbench's run of the mix at one client count.
#[derive(Debug, Clone)]
pub struct PgMix {
    pub tps: f64,
    pub ok: u64,
    pub failed: u64,
    /// Transactions and latencies (µs) per script.
    pub per_kind: BTreeMap<Kind, (u64, Histogram<u64>)>,
    pub all_us: Histogram<u64>,
    /// The weights it ran with.
    pub weights: Vec<(Kind, u64)>,
}

/// Where the CPU went and what the database did during one measured window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Costs {
    /// The load driver: this process (HTTP clients), or pgbench.
    pub driver_us: u64,
    /// The `switchyard serve` child (during pgbench: its outbox relay, which relays pgbench's
    /// events too).
    pub server_us: u64,
    /// The cluster's processes.
    pub postgres_us: u64,
    pub db: DbCounters,
    pub window: Duration,
}

/// The counters [`Costs`] is computed from, at one instant: the cluster's and this process's
/// CPU, the server's CPU (µs), the database's counters.
type Mark = (cpu::Snapshot, u64, DbCounters);

impl Costs {
    async fn take(postmaster: i32, server: Option<u32>, owner: &sqlx::PgPool) -> Result<Mark> {
        let snap = cpu::Snapshot::take(postmaster);
        let server = server.map_or(0, cpu::process_us);
        Ok((snap, server, DbCounters::read(owner).await?))
    }

    fn between(before: Mark, after: Mark, pgbench: bool, window: Duration) -> Costs {
        let usage = before.0.until(&after.0);
        Costs {
            driver_us: if pgbench { usage.children_us } else { usage.own_us },
            server_us: after.1.saturating_sub(before.1),
            postgres_us: usage.postgres_us,
            db: before.2.until(&after.2),
            window,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Level {
    pub clients: usize,
    pub mix: MixResult,
    pub pg: PgMix,
    pub mix_costs: Costs,
    pub pg_costs: Costs,
}

#[derive(Debug)]
pub struct Outcome {
    pub settings: Settings,
    pub postgres: String,
    pub seeded: Duration,
    /// Indexes on `entities` once the tenants are published (their partial indexes add up).
    pub entity_indexes: i64,
    pub levels: Vec<Level>,
    pub load_before: String,
    pub load_after: String,
}

/// Runs the realistic mix on the open database of the bench's own cluster in `work`.
pub async fn run(work: &WorkDir, db: &Database, s: &Settings) -> Result<Outcome> {
    let load_before = crate::loadavg();
    let cluster = db.cluster.as_ref().ok_or_else(|| anyhow!("the realistic mix needs the embedded cluster"))?;
    let postgres: String = sqlx::query_scalar("show server_version").fetch_one(&db.owner).await?;
    let store = Store::new(db.app.clone(), Limits::default());
    let root = crate::workspace_root();

    let started = Instant::now();
    eprintln!("bench: realistic: applying chemichemi as {} tenants with {} customers each", s.tenants, s.customers);
    let package = world::package(&realistic::chemichemi_dir(&root), s.customers)?;
    let tenants = world::apply(&db.owner, &store, &package, s.tenants).await?;
    let max_clients = s.clients.iter().copied().max().unwrap_or(1);
    eprintln!("bench: realistic: pgbench's own orders and trips");
    pgmix::prepare(&db.owner, &store, &tenants, max_clients).await?;
    sqlx::query("vacuum analyze").execute(&db.owner).await.context("vacuum analyze")?;
    let seeded = started.elapsed();
    let entity_indexes: i64 = sqlx::query_scalar("select count(*) from pg_indexes where tablename in (select inhrelid::regclass::text from pg_inherits where inhparent = 'entities'::regclass)")
        .fetch_one(&db.owner)
        .await
        .context("counting the indexes of entities")?;
    if std::env::var_os("BENCH_LOG_STATEMENTS").is_some() {
        // Every statement into the cluster's postgres.log (keep it with BENCH_KEEP): how the
        // pgbench scripts were checked against what the server sends.
        sqlx::query("alter system set log_statement = 'all'").execute(&db.owner).await?;
        sqlx::query("select pg_reload_conf()").execute(&db.owner).await?;
    }

    let secret = format!("{:064x}{:064x}", rand::random::<u128>(), rand::random::<u128>());
    let keys = api::auth::Keys::from_secrets(&[secret.as_bytes()]).ok_or_else(|| anyhow!("no JWT secret"))?;
    let env = ServerEnv {
        bin: s.bin.clone(),
        database_url: cluster.superuser_url(api::cluster::DATABASE),
        app_database_url: cluster.url_for("switchyard_app", api::cluster::DATABASE),
        jwt_secret: secret,
        home: work.path.join("serve-home"),
        log: work.path.join("serve.log"),
        settings: Vec::new(),
    };
    eprintln!("bench: realistic: starting {} serve", s.bin.display());
    let server = ServerProcess::start(&env).await?;
    eprintln!("bench: realistic: server on {} (pid {})", server.addr, server.pid().unwrap_or(0));

    let pg_dir = work.path.join("pgmix");
    std::fs::create_dir_all(&pg_dir)?;
    let scripts = pgmix::write_scripts(&pg_dir)?;
    let program = crate::pgbench::find_program()?;
    let postmaster = cluster.pid();
    let options = cluster.connect_options("switchyard_app", api::cluster::DATABASE);

    let mut levels = Vec::new();
    let outcome: Result<()> = async {
        for &clients in &s.clients {
            sqlx::query("checkpoint").execute(&db.owner).await?;
            let settings = load::Settings {
                clients,
                warmup: Duration::from_secs(s.warmup),
                duration: Duration::from_secs(s.seconds),
                seed: s.seed,
                progress: true,
            };
            eprintln!("bench: realistic: {clients} clients over HTTP");
            // CPU and database counters at the edges of the measured window, beside the load.
            let (warmup, window) = (settings.warmup, settings.duration);
            let owner = db.owner.clone();
            let server_pid = server.pid();
            let costs = tokio::spawn(async move {
                tokio::time::sleep(warmup).await;
                let before = Costs::take(postmaster, server_pid, &owner).await?;
                tokio::time::sleep(window).await;
                let after = Costs::take(postmaster, server_pid, &owner).await?;
                Ok::<_, anyhow::Error>(Costs::between(before, after, false, window))
            });
            let mix = load::run(server.addr, &keys, &tenants, &settings).await?;
            let mix_costs = costs.await??;
            eprintln!(
                "bench: realistic: {clients} clients: {} ops/s, {} lives/s, {} unexpected errors",
                fmt_tps(mix.ops_per_sec()),
                fmt_tps(mix.lives_per_sec()),
                mix.unexpected_errors()
            );
            let weights = pgmix::weights(&mix);
            sqlx::query("checkpoint").execute(&db.owner).await?;
            eprintln!("bench: realistic: {clients} clients, pgbench with the same mix");
            let run = PgRun {
                program: &program,
                host: cluster.socket_dir(),
                port: options.get_port(),
                scripts: &scripts,
                weights: &weights,
                seed: s.seed,
                per_client: pgmix::PER_CLIENT,
            };
            let log = pg_dir.join(format!("log-{clients}"));
            std::fs::create_dir_all(&log)?;
            let (pg, pg_costs) =
                run.exec(clients, s.warmup, s.seconds, &log, (postmaster, server.pid(), &db.owner)).await?;
            eprintln!(
                "bench: realistic: {clients} clients: pgbench {} tx/s; engine/pgbench {}",
                fmt_tps(pg.tps),
                fmt_pct(mix.ops_per_sec() / pg.tps)
            );
            levels.push(Level { clients, mix, pg, mix_costs, pg_costs });
        }
        Ok(())
    }
    .await;
    let stopped = server.stop().await;
    if outcome.is_err() {
        if let Ok(log) = std::fs::read_to_string(&env.log) {
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("bench: the server's last lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }
    outcome?;
    stopped?;
    Ok(Outcome {
        settings: s.clone(),
        postgres,
        seeded,
        entity_indexes,
        levels,
        load_before,
        load_after: crate::loadavg(),
    })
}

/// One pgbench invocation of the mix.
struct PgRun<'a> {
    program: &'a Path,
    host: &'a Path,
    port: u16,
    scripts: &'a [(Kind, PathBuf)],
    weights: &'a [(Kind, u64)],
    seed: u64,
    per_client: usize,
}

impl PgRun<'_> {
    /// Runs `clients` for `warmup + seconds` in one invocation (its connections stay open, as
    /// the server's pool does: pgbench's are new each run, and a new backend pays for reading
    /// every index of `entities` into its caches) with a per-transaction log in `log`, and
    /// measures the last `seconds`: the transactions that ended in them, and the CPU and
    /// database counters at their edges.
    async fn exec(
        &self,
        clients: usize,
        warmup: u64,
        seconds: u64,
        log: &Path,
        (postmaster, server, owner): (i32, Option<u32>, &sqlx::PgPool),
    ) -> Result<(PgMix, Costs)> {
        let seconds = seconds.max(1);
        let mut cmd = Command::new(self.program);
        cmd.arg("--no-vacuum")
            .args(["--protocol", "prepared"])
            .args(["--client", &clients.to_string()])
            .args(["--jobs", &clients.clamp(1, 2).to_string()])
            .args(["--time", &(warmup + seconds).to_string()])
            .arg(format!("--random-seed={}", self.seed))
            .arg("--host")
            .arg(self.host)
            .args(["--port", &self.port.to_string()])
            .args(["--username", "switchyard_app"])
            .arg("--define")
            .arg(format!("per_client={}", self.per_client));
        // Only the scripts with a weight, in this order (the log numbers them so).
        let mut order = Vec::new();
        for (kind, path) in self.scripts {
            let w = self.weights.iter().find(|(k, _)| k == kind).map_or(0, |(_, w)| *w);
            if w > 0 {
                cmd.arg("--file").arg(format!("{}@{w}", path.display()));
                order.push(*kind);
            }
        }
        if order.is_empty() {
            bail!("the HTTP mix counted no operation: nothing to weigh pgbench's scripts by");
        }
        cmd.arg("--log").arg(format!("--log-prefix={}", log.join("pgbench").display()));
        cmd.arg(api::cluster::DATABASE);
        // As the server's connections plan (engine::store::conn::MANY_PARTITIONS): past that many
        // tenants, every execution, never a generic plan over every partition.
        if engine::store::conn::many_partitions(owner).await.context("counting the partitions of entities")? {
            cmd.env("PGOPTIONS", "-c plan_cache_mode=force_custom_plan");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("running {}", self.program.display()))?;
        let pid = child.id();
        let window = Duration::from_secs(seconds);
        let owner = owner.clone();
        let costs = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(warmup)).await;
            let driver = pid.map_or(0, cpu::process_us);
            let before = Costs::take(postmaster, server, &owner).await?;
            tokio::time::sleep(window).await;
            let after = Costs::take(postmaster, server, &owner).await?;
            let mut costs = Costs::between(before, after, true, window);
            costs.driver_us = pid.map_or(0, cpu::process_us).saturating_sub(driver);
            Ok::<_, anyhow::Error>(costs)
        });
        let out = child.wait_with_output().await.with_context(|| format!("running {}", self.program.display()))?;
        let costs = costs.await??;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "pgbench failed ({}):\n{}\n{}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let failed = after(&stdout, "number of failed transactions: ").map_or(0, |f| f as u64);
        // `client transaction latency_us script epoch_s epoch_us`: the end of each transaction.
        let mut rows: Vec<(u64, u64, usize)> = Vec::new();
        for entry in std::fs::read_dir(log)? {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
                let (Some(us), Some(script), Some(s), Some(sub)) = (num(2), num(3), num(4), num(5)) else { continue };
                rows.push((s * 1_000_000 + sub, us, usize::try_from(script).unwrap_or(usize::MAX)));
            }
        }
        let end = rows.iter().map(|r| r.0).max().unwrap_or(0);
        let from = end.saturating_sub(seconds * 1_000_000);
        let mut per_kind: BTreeMap<Kind, (u64, Histogram<u64>)> = BTreeMap::new();
        let mut all_us = new_histogram()?;
        let mut ok = 0;
        for (at, us, script) in rows {
            if at <= from {
                continue;
            }
            let Some(kind) = order.get(script) else { continue };
            let slot = match per_kind.get_mut(kind) {
                Some(s) => s,
                None => per_kind.entry(*kind).or_insert((0, new_histogram()?)),
            };
            slot.0 += 1;
            slot.1.saturating_record(us.max(1));
            all_us.saturating_record(us.max(1));
            ok += 1;
        }
        let tps = ok as f64 / seconds as f64;
        Ok((PgMix { tps, ok, failed, per_kind, all_us, weights: self.weights.to_vec() }, costs))
    }
}

fn after(text: &str, label: &str) -> Option<f64> {
    let rest = text.lines().find_map(|l| l.split_once(label).map(|(_, r)| r))?;
    rest.split_whitespace().next()?.parse().ok()
}

fn q(h: &Histogram<u64>, quantile: f64) -> String {
    if h.is_empty() {
        "-".into()
    } else {
        fmt_us(h.value_at_quantile(quantile))
    }
}

/// The target: at 32 clients the engine's mix at ≥ 50% of pgbench's.
pub const TARGET: f64 = 0.5;

pub fn report(r: &mut Report, o: &Outcome) {
    let s = &o.settings;
    r.heading("The realistic mix: chemichemi order lives over HTTP against the same SQL in pgbench");
    r.lines(vec![
        format!("machine            {}", crate::machine()),
        format!("load average       {} at the start, {} at the end", o.load_before, o.load_after),
        format!(
            "database           PostgreSQL {}, the bench's embedded cluster (synchronous_commit on), Unix socket",
            o.postgres
        ),
        format!(
            "server             {} serve, a child process on 127.0.0.1 (rate limits off, workers on, log level warn)",
            s.bin.display()
        ),
        format!(
            "world              {} tenants (chem01…), {} customers each (1 in {} near its credit limit), 2 warehouses, 5 products; seeded in {:.1} s",
            s.tenants,
            s.customers,
            world::TIGHT_EVERY,
            o.seeded.as_secs_f64()
        ),
        format!(
            "load               closed loop, one keep-alive connection per client, {} s measured after {} s warm-up, seed {}",
            s.seconds, s.warmup, s.seed
        ),
        format!(
            "indexes on entities {} over its partitions, one per tenant (a statement is planned against its tenant's only)",
            o.entity_indexes
        ),
        "pgbench            one script per operation kind (bench/src/pgmix.rs), weighted by the HTTP mix's counts; \
         planned as the server's connections are (past 16 partitions, every execution)"
            .into(),
    ]);

    let mut t = Table::new(
        &[
            "clients",
            "engine ops/s",
            "lives/s",
            "p50",
            "p95",
            "p99",
            "pgbench tx/s",
            "p50",
            "p95",
            "p99",
            "engine/pgbench",
            "unexpected errors",
        ],
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    for l in &o.levels {
        t.row(vec![
            l.clients.to_string(),
            fmt_tps(l.mix.ops_per_sec()),
            format!("{:.1}", l.mix.lives_per_sec()),
            q(&l.mix.all_us, 0.5),
            q(&l.mix.all_us, 0.95),
            q(&l.mix.all_us, 0.99),
            fmt_tps(l.pg.tps),
            q(&l.pg.all_us, 0.5),
            q(&l.pg.all_us, 0.95),
            q(&l.pg.all_us, 0.99),
            fmt_pct(l.mix.ops_per_sec() / l.pg.tps),
            (l.mix.unexpected_errors() + l.pg.failed).to_string(),
        ]);
    }
    r.table(t);

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut t = Table::new(
        &[
            "clients",
            "path",
            "ops/s",
            "driver CPU/op",
            "server CPU/op",
            "Postgres CPU/op",
            "DB xacts/op",
            "WAL/op",
            "CPU busy",
        ],
        &[0, 2, 3, 4, 5, 6, 7, 8],
    );
    for l in &o.levels {
        for (path, ops, c) in [
            ("HTTP mix (switchyard serve)", l.mix.ops.values().map(|s| s.count).sum::<u64>(), &l.mix_costs),
            ("pgbench mix", l.pg.ok, &l.pg_costs),
        ] {
            let per =
                |us: u64| if ops == 0 { "-".into() } else { crate::report::fmt_ns(us as f64 * 1_000.0 / ops as f64) };
            t.row(vec![
                l.clients.to_string(),
                path.into(),
                fmt_tps(ops as f64 / c.window.as_secs_f64()),
                per(c.driver_us),
                per(c.server_us),
                per(c.postgres_us),
                if ops == 0 { "-".into() } else { format!("{:.2}", c.db.xacts as f64 / ops as f64) },
                if ops == 0 { "-".into() } else { format!("{:.1} KiB", c.db.wal_bytes as f64 / 1024.0 / ops as f64) },
                fmt_pct(
                    (c.driver_us + c.server_us + c.postgres_us) as f64 / (c.window.as_secs_f64() * 1e6 * cores as f64),
                ),
            ]);
        }
    }
    r.table(t);
    r.text(
        "driver: this process's HTTP clients, or pgbench. server: the switchyard serve child (during pgbench, \
         its outbox relay relaying pgbench's events). DB xacts/op: transactions committed or rolled back per \
         operation (pg_stat_database: the relay's and the API's own transactions count). CPU busy: all of it \
         over the window, as a share of all cores.",
    );

    for l in &o.levels {
        r.heading(format!("{} clients, per operation kind", l.clients));
        let mut t = Table::new(
            &[
                "operation",
                "request",
                "count",
                "share",
                "p50",
                "p95",
                "p99",
                "pgbench script",
                "pg p50",
                "pg p95",
                "pg p99",
            ],
            &[2, 3, 4, 5, 6, 8, 9, 10],
        );
        let total: u64 = l.mix.ops.values().map(|s| s.count).sum();
        for op in Op::ALL {
            let Some(stats) = l.mix.ops.get(&op) else { continue };
            let kinds: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| k.op() == op).collect();
            let Ok(mut pg) = new_histogram() else { continue };
            for k in &kinds {
                if let Some((_, h)) = l.pg.per_kind.get(k) {
                    let _ = pg.add(h);
                }
            }
            t.row(vec![
                op.name().into(),
                op.request().into(),
                stats.count.to_string(),
                fmt_pct(stats.count as f64 / total.max(1) as f64),
                q(&stats.latency_us, 0.5),
                q(&stats.latency_us, 0.95),
                q(&stats.latency_us, 0.99),
                kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
                q(&pg, 0.5),
                q(&pg, 0.95),
                q(&pg, 0.99),
            ]);
        }
        r.table(t);
        let lives: Vec<String> = l.mix.lives.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let refused = l.mix.refused_approvals as f64 / l.mix.approvals.max(1) as f64;
        let mut lines = vec![
            format!("lives ended in the window: {}", if lives.is_empty() { "none".into() } else { lives.join(", ") }),
            format!(
                "approvals refused by the credit guard: {} of {} ({})",
                l.mix.refused_approvals,
                l.mix.approvals,
                fmt_pct(refused)
            ),
            format!(
                "answers other than a success (warm-up included): {}",
                if l.mix.errors.is_empty() {
                    "none".into()
                } else {
                    l.mix
                        .errors
                        .iter()
                        .map(|(k, v)| {
                            let expected =
                                if k == load::EXPECTED_REFUSAL { " (expected: tight customers)" } else { "" };
                            format!("{v} × {k}{expected}")
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            format!("requests without an answer: {}", l.mix.transport_errors),
            format!(
                "pgbench: {} transactions, {} failed; weights {}",
                l.pg.ok,
                l.pg.failed,
                l.pg.weights.iter().map(|(k, w)| format!("{}@{w}", k.name())).collect::<Vec<_>>().join(" ")
            ),
        ];
        lines.extend(l.mix.samples.iter().map(|s| format!("unexpected: {s}")));
        r.lines(lines);
    }

    r.heading("Target");
    let top = o.levels.iter().find(|l| l.clients == 32).or_else(|| o.levels.iter().max_by_key(|l| l.clients));
    if let Some(l) = top {
        let ratio = l.mix.ops_per_sec() / l.pg.tps;
        let at = if l.clients == 32 { String::new() } else { format!(" (32 not run: at {} clients)", l.clients) };
        r.lines(vec![format!(
            "{}  the realistic mix at 32 clients >= 50% of its pgbench mix{at}: {} ops/s vs {} tx/s = {}",
            if ratio >= TARGET { "PASS" } else { "MISS" },
            fmt_tps(l.mix.ops_per_sec()),
            fmt_tps(l.pg.tps),
            fmt_pct(ratio)
        )]);
        if ratio > 1.0 {
            r.text(
                "The engine beat its own SQL: pgbench's mix cost the database more per operation than the engine's \
                 (see the Postgres CPU per operation), so this ratio says little about the engine.",
            );
        }
    }
}
