//! Fires state timers that came due (`timers:` of a state in the package), as the system actor.
//! `Store::fire_due_timers` claims due timers with `FOR UPDATE SKIP LOCKED`, so with several
//! server processes each timer fires once.

use std::time::Duration;

use engine::store::Store;
use tokio_util::sync::CancellationToken;

/// Timers settled per claim; the worker claims again at once while there were this many.
const BATCH: i64 = 100;
/// How often to look for due timers (a timer fires at most this late).
pub const TIMER_POLL: Duration = Duration::from_secs(1);

pub async fn run(store: Store, stop: CancellationToken, poll: Duration) {
    loop {
        match store.fire_due_timers(BATCH).await {
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(timers.settled = n, "timers");
                }
            }
            Err(e) => tracing::warn!(error = %e, "firing due timers failed; will retry"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(poll) => {}
        }
    }
}
