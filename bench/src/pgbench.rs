//! Part (c): the baseline. pgbench runs the plain SQL transaction of one `meter.record`
//! transition (same statements as the store, same role, same row-level security, same cluster),
//! with no engine around it: what the database alone can do on this machine.
//!
//! The script (`transition.sql` in the work folder) is one transaction of seven round trips:
//! `BEGIN`; `set_config('app.tenant_id', …, true)` (row-level security); lock the row
//! (`SELECT … FOR UPDATE`); `UPDATE` of its data (jsonb) and version, returning the row;
//! `INSERT` of the history row, returning its id; `INSERT` of the outbox row; `COMMIT`. Nothing
//! else runs in it but the outbox trigger, which since `migrations/0007` only queues the row for
//! the relay: no `NOTIFY` (a transaction that notifies commits under a cluster-wide lock, which
//! capped this baseline, and the engine, at ~1,000 tx/s on 2 cores). The report says which
//! trigger the database has. pgbench connects over
//! the cluster's Unix socket as `switchyard_app` (the server's role, subject to RLS), uses
//! prepared statements (as sqlx does), and runs each client on its own meters (`:client_id`),
//! with `--random-seed` for the random meter and reading. Latencies come from its
//! per-transaction log (`--log`), so p50/p99 are computed exactly as for the engine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use hdrhistogram::Histogram;
use sqlx::PgPool;
use tokio::process::Command;

use crate::cpu;
use crate::load::{new_histogram, DbCounters};

/// Where and how pgbench connects, and what it works on.
#[derive(Debug, Clone)]
pub struct Pgbench {
    pub program: PathBuf,
    /// The cluster's socket directory.
    pub host: PathBuf,
    pub port: u16,
    pub user: String,
    pub database: String,
    /// Variables of the script (`-D name=value`).
    pub vars: Vec<(String, String)>,
    pub script: PathBuf,
    pub seed: u64,
    pub postmaster: i32,
}

/// One pgbench run.
#[derive(Debug, Clone)]
pub struct PgbenchResult {
    /// pgbench's own figure (without the initial connection time).
    pub tps: f64,
    pub ok: u64,
    pub failed: u64,
    pub window: Duration,
    pub latency_us: Histogram<u64>,
    /// `own`: nothing; `children`: pgbench itself; `postgres`: the cluster.
    pub cpu: cpu::Usage,
    /// What the database counted during the measured run.
    pub db: DbCounters,
}

/// Finds pgbench: `$BENCH_PGBENCH`, else on `PATH`, else in `/usr/lib/postgresql/*/bin`.
pub fn find_program() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BENCH_PGBENCH").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join("pgbench")).find(|p| p.is_file()))
        .unwrap_or_default();
    if let Some(p) = on_path {
        return Ok(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin/pgbench")).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().ok_or_else(|| {
        anyhow!("pgbench not found: install postgresql-client (scripts/setup.sh does), or set BENCH_PGBENCH")
    })
}

/// The transaction pgbench runs; `per_client` meters per client, numbered from
/// `client_id * per_client`.
pub fn script(per_client: usize) -> String {
    let last = per_client.saturating_sub(1);
    format!(
        r#"-- One meter.record transition as a plain SQL transaction: lock the row, update its jsonb and
-- version, insert the history row, insert the outbox row (see bench/src/pgbench.rs).
\set n :client_id * {per_client} + random(0, {last})
\set value random(0, 1000)
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
SELECT id AS eid, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by FROM entities WHERE tenant_id = :tenant AND type = 'meter' AND id = (:idprefix || lpad(:n::text, 12, '0'))::uuid FOR UPDATE \gset p_
UPDATE entities SET state = 'ACTIVE', data = jsonb_set(jsonb_set(data, '{{samples}}', to_jsonb(coalesce((data->>'samples')::bigint, 0) + 1)), '{{last_value}}', to_jsonb(:value::int)), version = version + 1, updated_at = now(), updated_by = :actor WHERE tenant_id = :tenant AND id = :p_eid::uuid RETURNING id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by;
INSERT INTO transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id, actor_email, at, input, changes, config_version, parent_id) VALUES (:tenant, :p_eid::uuid, 'meter', 'record', 'ACTIVE', 'ACTIVE', :actor, :email, now(), jsonb_build_object('value', :value::int), jsonb_build_object('last_value', jsonb_build_object('from', null, 'to', :value::int)), :cv::bigint, NULL) RETURNING id AS history_id \gset
INSERT INTO outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id) VALUES (:tenant, gen_random_uuid(), 'meter.recorded', 'meter', :p_eid::uuid, jsonb_build_object('id', :p_eid::text, 'type', 'meter', 'from', 'ACTIVE', 'to', 'ACTIVE', 'transition', 'record'), :history_id::bigint);
COMMIT;
"#
    )
}

impl Pgbench {
    fn command(&self, clients: usize, seconds: u64) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--no-vacuum")
            .args(["--protocol", "prepared"])
            .arg("--file")
            .arg(&self.script)
            .args(["--client", &clients.to_string()])
            .args(["--jobs", &clients.clamp(1, 2).to_string()])
            .args(["--time", &seconds.to_string()])
            .arg(format!("--random-seed={}", self.seed))
            .arg("--host")
            .arg(&self.host)
            .args(["--port", &self.port.to_string()])
            .args(["--username", &self.user]);
        for (k, v) in &self.vars {
            cmd.arg("--define").arg(format!("{k}={v}"));
        }
        cmd.arg(&self.database);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }

    async fn exec(&self, mut cmd: Command) -> Result<String> {
        let out = cmd.output().await.with_context(|| format!("running {}", self.program.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "pgbench failed ({}):\n{}\n{}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(stdout)
    }

    /// Runs `clients` for `warmup` (not measured), then for `duration` with a per-transaction
    /// log in `log_dir` (created, must be empty); `owner` reads the database's counters around it
    /// (and, with `statements`, prints what the window ran: [`crate::statements`]).
    pub async fn run(
        &self,
        owner: &PgPool,
        clients: usize,
        warmup: Duration,
        duration: Duration,
        log_dir: &Path,
        statements: bool,
    ) -> Result<PgbenchResult> {
        if !warmup.is_zero() {
            self.exec(self.command(clients, warmup.as_secs().max(1))).await.context("pgbench warm-up")?;
        }
        std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        let mut cmd = self.command(clients, duration.as_secs().max(1));
        cmd.arg("--log").arg(format!("--log-prefix={}", log_dir.join("pgbench").display()));
        let db_before = DbCounters::read(owner).await?;
        if statements {
            crate::statements::reset(owner).await?;
        }
        let before = cpu::Snapshot::take(self.postmaster);
        let stdout = self.exec(cmd).await?;
        let after = cpu::Snapshot::take(self.postmaster);
        let db_after = DbCounters::read(owner).await?;
        let ran = if statements { crate::statements::read(owner).await? } else { Vec::new() };

        let tps =
            parse_after(&stdout, "tps = ").ok_or_else(|| anyhow!("no `tps = ` in pgbench's output:\n{stdout}"))?;
        let failed = parse_after(&stdout, "number of failed transactions: ").map_or(0, |f| f as u64);
        let (latency_us, ok) = read_logs(log_dir)?;
        if statements {
            crate::statements::print("pgbench", ok, &ran);
        }
        Ok(PgbenchResult {
            tps,
            ok,
            failed,
            window: Duration::from_secs(duration.as_secs().max(1)),
            latency_us,
            cpu: before.until(&after),
            db: db_before.until(&db_after),
        })
    }
}

/// The number following `label` on the first line containing it.
fn parse_after(text: &str, label: &str) -> Option<f64> {
    let rest = text.lines().find_map(|l| l.split_once(label).map(|(_, r)| r))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Reads every `pgbench.*` per-transaction log in `dir`: `client_id transaction_no time
/// script_no time_epoch time_us …`, where `time` is the latency in µs (or `failed`/`skipped`).
fn read_logs(dir: &Path) -> Result<(Histogram<u64>, u64)> {
    let mut hist = new_histogram()?;
    let mut count = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("pgbench.")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for us in text.lines().filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()) {
            hist.saturating_record(us.max(1));
            count += 1;
        }
    }
    if count == 0 {
        bail!("pgbench wrote no per-transaction log in {}", dir.display());
    }
    Ok((hist, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pgbench_summary_lines() {
        let out = "number of failed transactions: 3 (0.1%)\nlatency average = 2.5 ms\n\
                   tps = 1234.567890 (without initial connection time)\n";
        assert_eq!(parse_after(out, "tps = "), Some(1234.56789));
        assert_eq!(parse_after(out, "number of failed transactions: "), Some(3.0));
        assert_eq!(parse_after(out, "nope"), None);
    }

    #[test]
    fn the_script_gives_each_client_its_own_meters() {
        let s = script(4);
        assert!(s.contains(r"\set n :client_id * 4 + random(0, 3)"));
        assert!(s.contains("'{samples}'"));
        let statements = s.lines().filter(|l| !l.is_empty() && !l.starts_with('\\') && !l.starts_with("--")).count();
        assert_eq!(statements, 7, "seven round trips, as the engine sends");
    }
}
