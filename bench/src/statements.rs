//! `BENCH_STATEMENTS=1`: what the database ran in each window, from `pg_stat_statements`.
//!
//! The cluster is restarted once with the extension preloaded (it costs every path a little,
//! pgbench too, so figures of such a run are for finding where the time goes, not for the
//! ratios). At the start of each measured window the counters are reset; at its end the
//! statements that ran are printed with their calls per transition and their planning and
//! execution time per transition, so two paths can be compared statement by statement.

use anyhow::{Context as _, Result};
use sqlx::PgPool;

use crate::setup;

/// Whether the run asks for it.
pub fn wanted() -> bool {
    std::env::var("BENCH_STATEMENTS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Restarts the cluster at `home` with `pg_stat_statements` preloaded (planning tracked too)
/// and creates the extension; gives the reopened database.
pub async fn enable(db: api::db::Database, home: &std::path::Path, pool: u32) -> Result<api::db::Database> {
    sqlx::query("alter system set shared_preload_libraries = 'pg_stat_statements'")
        .execute(&db.owner)
        .await
        .context("preloading pg_stat_statements")?;
    db.close().await.context("stopping the cluster to preload pg_stat_statements")?;
    let db = setup::open_database(home, pool).await?;
    // The module's settings exist once it is loaded.
    for statement in [
        "create extension if not exists pg_stat_statements",
        "alter system set pg_stat_statements.track_planning = on",
        "select pg_reload_conf()",
    ] {
        sqlx::query(statement).execute(&db.owner).await.with_context(|| statement.to_string())?;
    }
    eprintln!("bench: pg_stat_statements on (BENCH_STATEMENTS): figures of this run are for diagnosis");
    Ok(db)
}

/// Forgets what was counted so far.
pub async fn reset(owner: &PgPool) -> Result<()> {
    sqlx::query("select pg_stat_statements_reset()").execute(owner).await.context("resetting pg_stat_statements")?;
    Ok(())
}

/// One statement's share of a window.
#[derive(Debug, Clone)]
pub struct Row {
    pub role: String,
    pub calls: i64,
    pub plans: i64,
    pub plan_ms: f64,
    pub exec_ms: f64,
    pub query: String,
}

/// The statements counted since the last [`reset`], most executed first (the counters' own
/// queries left out).
pub async fn read(owner: &PgPool) -> Result<Vec<Row>> {
    let rows: Vec<(String, i64, i64, f64, f64, String)> = sqlx::query_as(
        "select coalesce(r.rolname, '?'), s.calls, s.plans, s.total_plan_time, s.total_exec_time, s.query \
         from pg_stat_statements s left join pg_roles r on r.oid = s.userid \
         join pg_database d on d.oid = s.dbid and d.datname = current_database() \
         where s.query not ilike '%pg_stat_statements%' and s.query not ilike '%pg_stat_wal%' \
         order by s.calls desc, s.total_exec_time desc",
    )
    .fetch_all(owner)
    .await
    .context("reading pg_stat_statements")?;
    Ok(rows
        .into_iter()
        .map(|(role, calls, plans, plan_ms, exec_ms, query)| Row { role, calls, plans, plan_ms, exec_ms, query })
        .collect())
}

/// Prints a window's statements: calls, plans and time per transition (`ok` transitions).
pub fn print(what: &str, ok: u64, rows: &[Row]) {
    let ok = ok.max(1) as f64;
    let total_calls: i64 = rows.iter().map(|r| r.calls).sum();
    let total_ms: f64 = rows.iter().map(|r| r.plan_ms + r.exec_ms).sum();
    eprintln!(
        "bench: {what}: {} statements ({:.2} per transition), {:.1} µs of planning and execution per transition",
        total_calls,
        total_calls as f64 / ok,
        total_ms * 1000.0 / ok
    );
    eprintln!("  calls/tx  plans/tx  plan µs/tx  exec µs/tx  role            query");
    for r in rows.iter().take(25) {
        let one_line: String = r.query.split_whitespace().collect::<Vec<_>>().join(" ");
        let short: String = one_line.chars().take(110).collect();
        eprintln!(
            "  {:>8.3}  {:>8.3}  {:>10.1}  {:>10.1}  {:<14}  {short}",
            r.calls as f64 / ok,
            r.plans as f64 / ok,
            r.plan_ms * 1000.0 / ok,
            r.exec_ms * 1000.0 / ok,
            r.role
        );
    }
}
