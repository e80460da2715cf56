//! Where tenant code that may run long is evaluated: off the async reactor threads, on a bounded
//! number of slots, with a per-tenant share.
//!
//! Guards, load expressions, scripts, templates and package compiles are pure and CPU-bound;
//! each is bounded in time by [`crate::limits::Limits`], but a bound of a few hundred
//! milliseconds on a reactor thread stalls every request that thread holds, of every tenant. So
//! evaluation that is (or may be) slow runs outside the reactor — `block_in_place` for work that
//! borrows the request's data ([`Offload::run`]), the blocking pool for work that owns it
//! ([`Offload::spawn`]) — and only after taking two permits: one of the process's
//! [`Offload::slots`] and one of its tenant's [`Offload::per_tenant`]. A tenant that floods the
//! server with slow evaluations queues behind its own share and leaves the other slots (and the
//! reactor) to the other tenants. A permit not had within [`Offload::wait`] is
//! [`Busy`] (HTTP 503 with `Retry-After`), so a queue cannot grow without end.
//!
//! Fast evaluations are not worth the hand-off (measured: wrapping every 26 µs transition cost
//! 10–15% of the throughput), so [`Offload::run`] keeps a per-key record of recent costs and
//! runs work that was fast last time inline — on a leash: if it turns out slow this time (other
//! data), rules and scripts stop after [`INLINE_LEASH`] and the work runs again off the reactor.
//! What counts is the CPU time the work took on its thread, not the time between its start and
//! its end: on a machine shared with Postgres, a 50 µs evaluation that the kernel preempts once
//! ends milliseconds later, and counting that as slow sent every such transition's next run
//! through the permits and `block_in_place` (measured: ~10 µs per transition at 32 clients).
//! Reading the thread's CPU clock is a system call (two per run: ~3.5 µs of a transition under
//! load), so an inline run reads only the wall clock: shorter than [`SLOW_EVAL`] there, it was
//! fast on the CPU too; longer, it may have been preempted or slow, and the next run of its key
//! reads the CPU clock to tell.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits::{leash, INLINE_LEASH};

/// An evaluation at least this long (its own CPU time, measured around it) counts as slow.
pub const SLOW_EVAL: Duration = Duration::from_millis(1);

/// In a key's record of costs: its last run took [`SLOW_EVAL`] or more on the wall clock, whose
/// CPU time was not read; the next run reads it.
const UNSURE: u8 = 0x80;

/// No slot could be had in time: too much slow evaluation is queued (for this tenant, or for
/// the process).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too much evaluation is queued{}; retry shortly", if *.tenant { " for this tenant" } else { "" })]
pub struct Busy {
    /// Whether the tenant's own share was the one that was full.
    pub tenant: bool,
}

/// The slots, the tenants' shares and the record of recent costs. Share one per process.
#[derive(Debug)]
pub struct Offload {
    slots: usize,
    per_tenant: usize,
    wait: Duration,
    global: Arc<Semaphore>,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
    /// Per key: how many of its last evaluations in a row were slow (capped at 2), and
    /// [`UNSURE`] when the last one ran inline longer than [`SLOW_EVAL`] on the wall clock.
    costs: RwLock<HashMap<u64, AtomicU8>>,
}

impl Default for Offload {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        // Twice the cores in all; one tenant gets half the cores (at least one slot), so a tenant
        // whose evaluations are all slow leaves the other cores to the other tenants.
        let slots = (cores * 2).max(2);
        Offload::new(slots, (cores / 2).max(1), Duration::from_secs(10))
    }
}

impl Offload {
    /// `slots` concurrent slow evaluations in the process, at most `per_tenant` of them for one
    /// tenant; a caller waits at most `wait` for its permits.
    pub fn new(slots: usize, per_tenant: usize, wait: Duration) -> Offload {
        let slots = slots.max(1);
        Offload {
            slots,
            per_tenant: per_tenant.clamp(1, slots),
            wait,
            global: Arc::new(Semaphore::new(slots)),
            tenants: Mutex::default(),
            costs: RwLock::default(),
        }
    }

    /// How many slow evaluations may run at once in the process.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// How many of them one tenant may hold.
    pub fn per_tenant(&self) -> usize {
        self.per_tenant
    }

    /// How long a caller waits for a slot before [`Busy`].
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Takes the tenant's permit, then a process slot (in that order, so a tenant waiting on
    /// its own share holds no process slot).
    async fn permits(&self, tenant: TenantId) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), Busy> {
        let share = {
            let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            tenants.entry(tenant).or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant))).clone()
        };
        let deadline = tokio::time::Instant::now() + self.wait;
        let mine = tokio::time::timeout_at(deadline, share.acquire_owned())
            .await
            .map_err(|_| Busy { tenant: true })?
            .map_err(|_| Busy { tenant: true })?;
        let global = tokio::time::timeout_at(deadline, self.global.clone().acquire_owned())
            .await
            .map_err(|_| Busy { tenant: false })?
            .map_err(|_| Busy { tenant: false })?;
        Ok((mine, global))
    }

    /// Runs `work` for `tenant`: inline when the work under `key` was fast the last time, on a
    /// short leash ([`INLINE_LEASH`]: rules and scripts stop when it runs out); otherwise — never
    /// seen, slow last time, or past the leash now — with the permits, in `block_in_place` (the
    /// thread's other tasks move to another worker meanwhile) and its full budget. `work` is
    /// pure, so running it again after the leash stopped it is safe. The time it took updates
    /// the record of `key`. On a current-thread runtime (tests, small tools), where
    /// `block_in_place` is not possible, it runs inline.
    pub async fn run<T>(&self, tenant: TenantId, key: u64, mut work: impl FnMut() -> T) -> Result<T, Busy> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let multi_thread = Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if !multi_thread {
            return Ok(work());
        }
        let record = self.record_of(key);
        if record.is_some_and(|r| r & !UNSURE == 0) {
            let started = Cost::start(record.is_some_and(|r| r & UNSURE != 0));
            let (out, stopped) = leash::run(INLINE_LEASH, &mut work);
            if !stopped {
                self.record(key, record, started.verdict());
                return Ok(out);
            }
            tracing::debug!(key, "inline evaluation ran past its leash: again, off the reactor");
        }
        let _permits = self.permits(tenant).await?;
        let (out, verdict) = tokio::task::block_in_place(|| {
            let started = Cost::start(true);
            let out = work();
            (out, started.verdict())
        });
        self.record(key, record, verdict);
        Ok(out)
    }

    /// Runs owned `work` for `tenant` on the blocking pool, with the permits (for work that is
    /// slow by nature: compiling a package, the rules playground).
    pub async fn spawn<T: Send + 'static>(
        &self,
        tenant: TenantId,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permits = self.permits(tenant).await?;
        let handle = tokio::task::spawn_blocking(move || {
            let _permits = permits;
            work()
        });
        match handle.await {
            Ok(out) => Ok(out),
            // The work panicked: let the panic continue in the caller, as if it had run there.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Busy { tenant: false }),
        }
    }

    /// How many of the last evaluations under `key` in a row were slow; `None` if unknown.
    pub fn slow_runs(&self, key: u64) -> Option<u8> {
        self.record_of(key).map(|r| r & !UNSURE)
    }

    fn record_of(&self, key: u64) -> Option<u8> {
        self.costs.read().ok().and_then(|m| m.get(&key).map(|c| c.load(Ordering::Relaxed)))
    }

    fn record(&self, key: u64, before: Option<u8>, verdict: Verdict) {
        let runs = before.unwrap_or(0) & !UNSURE;
        let next = match verdict {
            Verdict::Fast => 0,
            Verdict::Slow => runs.saturating_add(1).min(2),
            Verdict::Unsure => runs | UNSURE,
        };
        if before == Some(next) {
            return;
        }
        let known =
            self.costs.read().ok().is_some_and(|m| m.get(&key).map(|c| c.store(next, Ordering::Relaxed)).is_some());
        if !known {
            if let Ok(mut m) = self.costs.write() {
                m.insert(key, AtomicU8::new(next));
            }
        }
    }
}

/// What a piece of work costs on the thread that runs it: the thread's CPU clock (the time it
/// was descheduled does not count) when asked for, else the wall clock, which tells only that
/// work was fast.
struct Cost {
    /// Whether the CPU clock was asked for, and what it read at the start.
    read_cpu: bool,
    cpu: Option<Duration>,
    wall: Instant,
}

/// What [`Cost`] tells of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Fast,
    Slow,
    /// [`SLOW_EVAL`] or more on the wall clock, the CPU clock not read: preempted, or slow.
    Unsure,
}

impl Cost {
    /// `cpu`: read the thread's CPU clock (a system call, at the start and at the end).
    fn start(cpu: bool) -> Cost {
        Cost { read_cpu: cpu, cpu: if cpu { thread_cpu() } else { None }, wall: Instant::now() }
    }

    /// Whether the work since [`Cost::start`] (on this thread) took [`SLOW_EVAL`] or more: of
    /// its CPU time when that was read (or of its wall time, where the CPU clock cannot be read).
    fn verdict(&self) -> Verdict {
        let wall = self.wall.elapsed();
        if wall < SLOW_EVAL {
            // The CPU time of a thread within an interval is at most the interval.
            return Verdict::Fast;
        }
        if !self.read_cpu {
            return Verdict::Unsure;
        }
        match (self.cpu, thread_cpu()) {
            (Some(before), Some(now)) if now.saturating_sub(before) < SLOW_EVAL => Verdict::Fast,
            // Slow on the CPU, or no CPU clock to read: the wall clock's word.
            _ => Verdict::Slow,
        }
    }
}

/// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu() -> Option<Duration> {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok().map(Duration::from)
}

/// The key of a piece of tenant code in the record of costs: its tenant, version and names.
pub fn cost_key(tenant: TenantId, version: i64, parts: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (tenant, version, parts).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_evaluations_run_off_the_worker_and_fast_ones_inline() {
        let off = Offload::default();
        let tenant = TenantId::generate();
        let key = cost_key(tenant, 1, &["thing", "heavy"]);
        let heavy = || spin(SLOW_EVAL * 2);
        assert_eq!(off.slow_runs(key), None);
        off.run(tenant, key, heavy).await.expect("runs"); // unknown: off the worker, measured slow
        assert_eq!(off.slow_runs(key), Some(1));
        off.run(tenant, key, heavy).await.expect("runs"); // slow last time: off the worker
        assert_eq!(off.slow_runs(key), Some(2));
        assert_eq!(off.run(tenant, key, || 7).await, Ok(7)); // off the worker, fast
        assert_eq!(off.slow_runs(key), Some(0));
        assert_eq!(off.run(tenant, key, || 8).await, Ok(8)); // inline now
        assert_eq!(off.slow_runs(key), Some(0));
    }

    /// Busy for `cpu` of this thread's CPU time.
    fn spin(cpu: Duration) {
        let started = Cost::start(true);
        let until = thread_cpu().expect("the thread's CPU clock") + cpu;
        while thread_cpu().is_some_and(|now| now < until) {
            std::hint::black_box(0u64);
        }
        assert!(started.verdict() == Verdict::Slow || cpu < SLOW_EVAL);
    }

    /// Work whose thread was descheduled (here: asleep) for longer than [`SLOW_EVAL`] but that
    /// used little CPU is fast: on a busy machine, a preempted evaluation is not a slow one, and
    /// its next run stays inline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn time_off_the_cpu_does_not_make_work_slow() {
        let off = Offload::default();
        let tenant = TenantId::generate();
        let key = cost_key(tenant, 1, &["thing", "preempted"]);
        // Unknown: off the reactor, the CPU clock read.
        off.run(tenant, key, || std::thread::sleep(SLOW_EVAL * 3)).await.expect("runs");
        assert_eq!(off.record_of(key), Some(0), "asleep is not busy");
        // Fast last time: inline, the wall clock only, long on it: unsure, still inline.
        off.run(tenant, key, || std::thread::sleep(SLOW_EVAL * 3)).await.expect("runs");
        assert_eq!(off.record_of(key), Some(UNSURE), "long on the wall: the next run tells");
        assert_eq!(off.slow_runs(key), Some(0));
        // Inline, the CPU clock read: asleep again, so fast, and sure of it.
        off.run(tenant, key, || std::thread::sleep(SLOW_EVAL * 3)).await.expect("runs");
        assert_eq!(off.record_of(key), Some(0), "asleep is not busy");
        // Busy: first unsure (the wall clock only), then slow (the CPU clock read).
        off.run(tenant, key, || spin(SLOW_EVAL * 2)).await.expect("runs");
        assert_eq!(off.record_of(key), Some(UNSURE));
        off.run(tenant, key, || spin(SLOW_EVAL * 2)).await.expect("runs");
        assert_eq!(off.slow_runs(key), Some(1), "busy is");
        assert_eq!(off.record_of(key), Some(1), "and sure of it");
    }

    #[test]
    fn short_work_is_fast_whatever_the_clock_read() {
        for cpu in [false, true] {
            assert_eq!(Cost::start(cpu).verdict(), Verdict::Fast);
        }
        let started = Cost::start(false);
        std::thread::sleep(SLOW_EVAL * 2);
        assert_eq!(started.verdict(), Verdict::Unsure, "long on the wall, the CPU clock not read");
        let started = Cost::start(true);
        std::thread::sleep(SLOW_EVAL * 2);
        assert_eq!(started.verdict(), Verdict::Fast, "asleep, the CPU clock read");
    }

    /// Work that was fast runs inline on a leash; when it runs past it (a loop that reads the
    /// leash, as rules and scripts do), it is run again off the reactor and its answer is the
    /// second run's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_work_past_its_leash_runs_again_off_the_reactor() {
        let off = Offload::default();
        let tenant = TenantId::generate();
        let key = cost_key(tenant, 1, &["thing", "sometimes slow"]);
        off.run(tenant, key, || ()).await.expect("runs");
        assert_eq!(off.slow_runs(key), Some(0), "fast: inline next time");
        let mut runs = Vec::new();
        let out = off
            .run(tenant, key, || {
                let inline = leash::active();
                runs.push(inline);
                let started = Instant::now();
                while started.elapsed() < INLINE_LEASH * 4 {
                    if leash::expired() {
                        return "stopped";
                    }
                }
                "finished"
            })
            .await
            .expect("runs");
        assert_eq!(out, "finished");
        assert_eq!(runs, vec![true, false], "inline on the leash, then again without it");
        assert_eq!(off.slow_runs(key), Some(1));
    }

    #[tokio::test]
    async fn inline_on_a_current_thread_runtime() {
        let off = Offload::default();
        let key = cost_key(TenantId::generate(), 1, &["x"]);
        assert_eq!(off.run(TenantId::generate(), key, || 7).await, Ok(7));
        assert_eq!(off.slow_runs(key), None, "nothing measured: block_in_place would panic here");
    }

    /// A tenant holding its whole share waits (then is busy); another tenant goes through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tenant_cannot_take_every_slot() {
        let off = Arc::new(Offload::new(4, 2, Duration::from_millis(200)));
        let (greedy, other) = (TenantId::generate(), TenantId::generate());
        let mut held = Vec::new();
        let mut releases = Vec::new();
        for _ in 0..2 {
            let off = off.clone();
            let (took, took_rx) = tokio::sync::oneshot::channel();
            let (release, release_rx) = tokio::sync::oneshot::channel::<()>();
            held.push(tokio::spawn(async move {
                let permits = off.permits(greedy).await.expect("within the share");
                let _ = took.send(());
                let _ = release_rx.await;
                drop(permits);
            }));
            took_rx.await.expect("took its permits");
            releases.push(release);
        }
        assert_eq!(off.permits(greedy).await.err(), Some(Busy { tenant: true }), "the share is full");
        assert_eq!(off.spawn(other, || 5).await, Ok(5), "another tenant is not queued behind it");
        for release in releases {
            let _ = release.send(());
        }
        for h in held {
            h.await.expect("joins");
        }
        assert_eq!(off.spawn(greedy, || 6).await, Ok(6), "released");
    }
}
