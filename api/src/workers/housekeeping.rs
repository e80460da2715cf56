//! Housekeeping across tenants: deletes idempotency records older than their retention
//! (`SWITCHYARD_IDEMPOTENCY_TTL`), once at start and then every [`HOUSEKEEPING_EVERY`].
//!
//! The store already treats such a record as absent
//! (`engine::store::Store::with_idempotency_ttl`), so when the purge runs makes no difference to
//! any answer: it only frees the space. The records of every tenant are deleted by the SECURITY
//! DEFINER function `purge_expired_idempotency` of `migrations/0010_idempotency_expiry.sql`,
//! which returns a count and nothing else, in batches of [`PURGE_BATCH`], each its own short
//! transaction. It passes over records another transaction holds, so several server processes
//! can purge at once.

use std::time::Duration;

use engine::store::Store;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// How often expired records are looked for.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(5 * 60);
/// Records deleted per call (and transaction); the worker calls again while a batch is full.
pub const PURGE_BATCH: i32 = 1000;

pub async fn run(store: Store, stop: CancellationToken, ttl: Duration, every: Duration) {
    loop {
        match purge_expired_idempotency(store.pool(), ttl, &stop).await {
            Ok(0) => tracing::debug!("no expired idempotency records"),
            Ok(n) => tracing::info!(
                idempotency.purged = n,
                ttl = %humantime::format_duration(ttl),
                "expired idempotency records deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "purging expired idempotency records failed; will retry"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Deletes the records of every tenant whose age is `ttl` or more, batch after batch until a
/// batch is not full or `stop` is cancelled; returns how many were deleted.
pub async fn purge_expired_idempotency(
    pool: &PgPool,
    ttl: Duration,
    stop: &CancellationToken,
) -> Result<u64, sqlx::Error> {
    let older_than = engine::store::sql::interval(ttl);
    let mut total = 0u64;
    loop {
        let n = super::sql::purge_expired_idempotency(pool, older_than, PURGE_BATCH).await?;
        total += u64::try_from(n).unwrap_or(0);
        if n < i64::from(PURGE_BATCH) || stop.is_cancelled() {
            return Ok(total);
        }
    }
}
