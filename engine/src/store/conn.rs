//! Connections that die: what a lost database looks like, and how a pool gets over it.
//!
//! When Postgres restarts (or an operator runs `pg_terminate_backend`), every connection the
//! pool holds is dead, but the pool does not know it: sqlx does not test a connection before
//! handing it out (`test_before_acquire(false)`, because that test is one more round trip on every
//! request). Without help, each dead connection fails one request before the pool drops it. Three
//! things make that failure invisible, at no cost while nothing dies:
//!
//! * **Retiring.** The first request that finds a dead connection [`note`]s when, and the pools'
//!   `before_acquire` hook ([`pool_options`]) closes, instead of handing out, every idle
//!   connection opened before that moment: they were open when something killed connections, so
//!   they are suspect, and a new one costs a connect (a few milliseconds), not a failed request.
//!   The mark is process-wide (the hook has no other state to reach): a death seen on one pool
//!   retires the older connections of every pool of the process, which only costs reconnects.
//! * **Retrying** ([`retry_dead`]): work that failed on a dead connection *before it could have
//!   changed anything* (the `BEGIN` of a transaction, a read) is run again, on a new connection.
//!   A `COMMIT` is never retried: whether it was applied is unknown (the client retries it with
//!   its `Idempotency-Key`, which answers from the record if it was).
//! * **Answering** ([`is_unavailable`]): anything else that failed because the database could not
//!   be reached (it is down or restarting, its connection limit is reached, the pool has no
//!   connection within its acquire timeout) is the API's 503 `DATABASE_UNAVAILABLE` with
//!   `Retry-After`, not a 500.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::PgPoolOptions;

/// How many times [`retry_dead`] runs an operation (the first try included). After the first
/// dead connection, [`note`] retires every older one, so the second try normally has a new
/// connection; the third covers a connection that died between the two.
pub const ATTEMPTS: usize = 3;

/// How long a request waits for a pooled connection before it is answered 503 (the database is
/// unreachable, or every connection is busy for that long).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLSTATEs of a connection the server ended: `admin_shutdown` (`pg_terminate_backend`, a fast
/// or smart shutdown), `crash_shutdown` (an immediate shutdown, another backend crashed).
const KILLED: &[&str] = &["57P01", "57P02"];

/// SQLSTATEs of a database that cannot take the request now: the above, `cannot_connect_now`
/// (starting up or shutting down), `too_many_connections`, `database_dropped` (57P04) and class 08,
/// connection exceptions.
const UNAVAILABLE: &[&str] = &["57P01", "57P02", "57P03", "57P04", "53300"];

/// Nanoseconds since [`base`] of the last [`note`] plus one (0: never).
static LAST_DEATH: AtomicU64 = AtomicU64::new(0);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    u64::try_from(base().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Whether `e` says the connection it ran on is dead (closed by the server, reset, a broken
/// pipe): what ran on it did not complete, and the connection must not be used again.
pub fn is_dead_connection(e: &sqlx::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        sqlx::Error::Io(io) => {
            matches!(io.kind(), BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof | NotConnected)
        }
        sqlx::Error::Database(db) => db.code().is_some_and(|c| KILLED.contains(&c.as_ref())),
        _ => false,
    }
}

/// Whether `e` means the database could not be reached or could not take the request now (not
/// a fault of the request, nor a bug): the API's 503.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| UNAVAILABLE.contains(&c.as_ref()) || c.starts_with("08"))
        }
        _ => false,
    }
}

/// Records that a connection was found dead now, if `e` says so: from now on the pools retire
/// every connection opened before this moment when it is next acquired. Returns whether it did.
pub fn note(e: &sqlx::Error) -> bool {
    if !is_dead_connection(e) {
        return false;
    }
    let first = LAST_DEATH.swap(now_nanos().saturating_add(1), Ordering::Relaxed) == 0;
    if first {
        tracing::warn!(error = %e, "a database connection died: retiring the pools' older connections");
    } else {
        tracing::info!(error = %e, "a database connection died");
    }
    true
}

/// Whether a pooled connection of this age may be handed out: it was opened after the last
/// connection death seen ([`note`]). One atomic load: no round trip.
pub fn usable(meta: &PoolConnectionMetadata) -> bool {
    opened_after_last_death(meta.age)
}

/// Whether a connection that left the pool at `taken` may be used again without the pool's
/// look at it: it left after the last connection death seen ([`note`]), so the pool had checked
/// it was opened after that death ([`usable`]).
pub fn taken_after_last_death(taken: Instant) -> bool {
    let death = LAST_DEATH.load(Ordering::Relaxed);
    if death == 0 {
        return true;
    }
    let at = u64::try_from(taken.saturating_duration_since(base()).as_nanos()).unwrap_or(u64::MAX);
    at >= death
}

fn opened_after_last_death(age: Duration) -> bool {
    let death = LAST_DEATH.load(Ordering::Relaxed);
    if death == 0 {
        return true;
    }
    let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
    now_nanos().saturating_sub(age) >= death
}

/// The options every pool of Switchyard is built with: `max` connections, the
/// [`ACQUIRE_TIMEOUT`], no test before each use (a round trip per request), and the hook that
/// retires connections older than the last death ([`usable`]).
pub fn pool_options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|_conn, meta| Box::pin(async move { Ok(usable(&meta)) }))
        .after_connect(|conn, _meta| Box::pin(async move { plan_mode(conn).await }))
}

/// Past this many partitions of `entities` (one per tenant, migration 0021), a new connection
/// plans every execution of a prepared statement ([`plan_mode`]).
pub const MANY_PARTITIONS: i64 = 16;

/// Sets a new connection's `plan_cache_mode` to `force_custom_plan` when `entities` has more than
/// [`MANY_PARTITIONS`] partitions. Under the default (`auto`), Postgres builds a prepared
/// statement's generic plan at its sixth execution on a connection, to cost it: a plan over
/// every partition, which opens and locks every partition and every one of their indexes until
/// the transaction ends (912 locks at 50 tenants; tens of thousands at a few hundred, enough to
/// exhaust the lock table), and with that many partitions the custom plan (pruned to the
/// statement's tenant) wins anyway, so the build is pure cost. With few partitions the generic
/// plan is small, cheap to build and used (~18% more transactions per second for a lone tenant
/// than planning each time: docs/benchmarks.md, "Generic plans and partitions"), so it is kept.
/// One query per new connection; a connection keeps its mode for its life.
async fn plan_mode(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    if many_partitions(&mut *conn).await? {
        sqlx::query("set plan_cache_mode = force_custom_plan").execute(&mut *conn).await?;
    }
    Ok(())
}

/// Whether `entities` has more than [`MANY_PARTITIONS`] partitions (what a new connection of the
/// server's pools plans each execution for; the benchmark runs pgbench so as well).
pub async fn many_partitions<'c, E: sqlx::PgExecutor<'c>>(db: E) -> Result<bool, sqlx::Error> {
    let partitions: i64 =
        sqlx::query_scalar("select count(*) from pg_inherits where inhparent = to_regclass('public.entities')")
            .fetch_one(db)
            .await?;
    Ok(partitions > MANY_PARTITIONS)
}

/// Runs `op` again (up to [`ATTEMPTS`] in all) while it fails on a dead connection, noting each
/// death so that the next try gets a newer connection. Only for work that a dead connection
/// cannot have half-done: opening a transaction, a read. Never around a `COMMIT`.
pub async fn retry_dead<T, F, Fut>(mut op: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < ATTEMPTS && note(&e) => attempt += 1,
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(kind))
    }

    #[test]
    fn dead_connections_and_unavailable_databases_are_told_apart() {
        use std::io::ErrorKind::*;
        for kind in [BrokenPipe, ConnectionReset, UnexpectedEof] {
            assert!(is_dead_connection(&io(kind)), "{kind:?}");
            assert!(is_unavailable(&io(kind)), "{kind:?}");
        }
        // Nothing was connected: not a dead connection (no retry), but the database is away.
        assert!(!is_dead_connection(&io(ConnectionRefused)));
        assert!(is_unavailable(&io(ConnectionRefused)));
        assert!(!is_dead_connection(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }

    #[tokio::test]
    async fn a_death_retires_older_connections_and_retries_stop() {
        let mut tries = 0;
        let r: Result<(), _> = retry_dead(|| {
            tries += 1;
            async { Err(io(std::io::ErrorKind::BrokenPipe)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(tries, ATTEMPTS);
        // Opened an hour ago: before the death just noted. Opened after it: kept.
        assert!(!opened_after_last_death(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(opened_after_last_death(Duration::from_millis(1)));
        // A refusal is not retried.
        let mut tries = 0;
        let _ = retry_dead(|| {
            tries += 1;
            async { Err::<(), _>(sqlx::Error::PoolTimedOut) }
        })
        .await;
        assert_eq!(tries, 1);
    }
}
