//! Admission: a bound on the requests one server handles at once, in all and per tenant, so
//! that a flood is refused early (`503 OVERLOADED` with `Retry-After`, before any work is done)
//! instead of queueing on the database pool until every request of every tenant times out.
//!
//! Two gates, each a [`tokio::sync::Semaphore`] (fair: first come, first served) with a bounded
//! queue in front of it:
//!
//! * the **tenant's** (`SWITCHYARD_TENANT_IN_FLIGHT`, default 16, half the default pool): one
//!   tenant's requests in progress, so a tenant flooding the server holds at most that share of
//!   the database pool and of the CPU, and the other tenants find both free;
//! * the **server's** (`SWITCHYARD_MAX_IN_FLIGHT`, default 64): every request in progress.
//!
//! A request takes its tenant's permit first (so a tenant waiting behind its own share holds no
//! server permit), then the server's. When a gate is full, the request waits in its queue, which
//! holds at most [`QUEUE_FACTOR`] times as many requests as the gate lets through (a burst, such
//! as a page's requests or many users at once, is absorbed), for at most
//! `SWITCHYARD_ADMISSION_WAIT` (default `2s`) in all; a request finding the queue full, or
//! still waiting then, is refused. Nothing of it ran: the answer says `applied: false`.
//!
//! Why not tower's `ConcurrencyLimitLayer` and `LoadShedLayer`: they bound one service as a
//! whole (nothing per key, such as a tenant) and shed at once rather than after a short wait;
//! they are built on the same semaphore this module uses. The tenant is the one named in the
//! path (`/api/v1/t/{tenant}/…`): it needs no database, and a token of another tenant is refused
//! later anyway. Requests without a tenant in the path (login, the generic OpenAPI document)
//! pass the server's gate only; probes, `/metrics`, the studio's files and the event stream (held
//! open for as long as the client listens, and woken, not polling) pass no gate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Tenants kept before the idle ones (no request in progress) are forgotten.
const SWEEP_AT: usize = 1024;

/// A gate's queue holds this many times the requests the gate lets through at once.
pub const QUEUE_FACTOR: usize = 4;
/// Longest tenant key kept from a path (a slug is shorter; a longer segment names no tenant and
/// is cut, so it costs no more memory).
const MAX_KEY: usize = 64;

/// Which gate refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this tenant has too many requests in progress on this server; retry shortly")]
    Tenant,
    #[error("the server has too many requests in progress; retry shortly")]
    Server,
}

impl Refused {
    /// `tenant` or `server`: the answer's `details.scope` and the metric's label.
    pub fn scope(self) -> &'static str {
        match self {
            Refused::Tenant => "tenant",
            Refused::Server => "server",
        }
    }
}

/// The bounds (see the module's documentation); `None` is no bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    pub max_in_flight: Option<u32>,
    pub tenant_in_flight: Option<u32>,
    pub wait: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> AdmissionConfig {
        AdmissionConfig {
            max_in_flight: Some(crate::limits::MAX_IN_FLIGHT),
            tenant_in_flight: Some(crate::limits::TENANT_IN_FLIGHT),
            wait: crate::limits::ADMISSION_WAIT,
        }
    }
}

/// One gate: its permits, and how many requests wait for one (at most `queue`).
#[derive(Debug)]
struct Gate {
    permits: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
}

/// Counts a waiting request out of its queue however the wait ends (also when the client goes
/// away and the request's future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    fn new(size: u32) -> Gate {
        let size = usize::try_from(size.max(1)).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Gate { permits: Arc::new(Semaphore::new(size)), size, waiting: AtomicUsize::new(0) }
    }

    /// A permit now, or after waiting in the queue until `deadline`; `None` when the queue is
    /// full or the deadline passes.
    async fn enter(&self, deadline: Instant) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.size.saturating_mul(QUEUE_FACTOR) {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let _waiting = Waiting(&self.waiting);
        tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await.ok()?.ok()
    }

    fn idle(gate: &Arc<Gate>) -> bool {
        Arc::strong_count(gate) == 1 && gate.permits.available_permits() == gate.size
    }
}

/// The gates of one server. Share one per process (`Ops` holds it).
#[derive(Debug)]
pub struct Admission {
    config: AdmissionConfig,
    server: Option<Gate>,
    tenants: Mutex<HashMap<String, Arc<Gate>>>,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission::new(AdmissionConfig::default())
    }
}

/// What an admitted request holds until its answer is sent.
#[derive(Debug)]
pub struct Admitted {
    _tenant: Option<(Arc<Gate>, OwnedSemaphorePermit)>,
    _server: Option<OwnedSemaphorePermit>,
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Admission {
        Admission { config, server: config.max_in_flight.map(Gate::new), tenants: Mutex::default() }
    }

    pub fn config(&self) -> AdmissionConfig {
        self.config
    }

    /// Admits a request of `tenant` (the path's, if any): holds the permits it needs, waiting at
    /// most the configured time for them.
    pub async fn admit(&self, tenant: Option<&str>) -> Result<Admitted, Refused> {
        let deadline = Instant::now() + self.config.wait;
        let tenant = match (tenant, self.config.tenant_in_flight) {
            (Some(key), Some(size)) => {
                let gate = self.tenant_gate(key, size);
                let permit = gate.enter(deadline).await.ok_or(Refused::Tenant)?;
                Some((gate, permit))
            }
            _ => None,
        };
        let server = match &self.server {
            Some(gate) => Some(gate.enter(deadline).await.ok_or(Refused::Server)?),
            None => None,
        };
        Ok(Admitted { _tenant: tenant, _server: server })
    }

    /// Requests in progress of `tenant` on this server (0 for one it does not know).
    pub fn in_flight(&self, tenant: &str) -> usize {
        let tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tenants.get(key(tenant)).map_or(0, |g| g.size - g.permits.available_permits())
    }

    fn tenant_gate(&self, tenant: &str, size: u32) -> Arc<Gate> {
        let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(gate) = tenants.get(key(tenant)) {
            return gate.clone();
        }
        if tenants.len() >= SWEEP_AT {
            tenants.retain(|_, gate| !Gate::idle(gate));
        }
        let gate = Arc::new(Gate::new(size));
        tenants.insert(key(tenant).to_string(), gate.clone());
        gate
    }
}

fn key(tenant: &str) -> &str {
    match tenant.char_indices().nth(MAX_KEY) {
        Some((i, _)) => &tenant[..i],
        None => tenant,
    }
}

/// Which gates a request passes: `None` for none, `Some(None)` for the server's only,
/// `Some(Some(tenant))` for its tenant's and the server's.
pub fn gates_of(path: &str) -> Option<Option<&str>> {
    if matches!(path, "/healthz" | "/readyz" | "/metrics") || path == "/studio" || path.starts_with("/studio/") {
        return None;
    }
    let Some(rest) = path.strip_prefix("/api/v1/t/") else { return Some(None) };
    let (tenant, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if tenant.is_empty() {
        return Some(None);
    }
    if rest == "events/stream" || rest == "events/stream/" {
        return None;
    }
    Some(Some(tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_sorted_into_their_gates() {
        assert_eq!(gates_of("/healthz"), None);
        assert_eq!(gates_of("/studio/assets/a.js"), None);
        assert_eq!(gates_of("/api/v1/t/acme/events/stream"), None);
        assert_eq!(gates_of("/api/v1/auth/login"), Some(None));
        assert_eq!(gates_of("/api/v1/t/acme/events"), Some(Some("acme")));
        assert_eq!(gates_of("/api/v1/t/acme/entities/order/1/transitions/go"), Some(Some("acme")));
        assert_eq!(gates_of("/api/v1/t/acme"), Some(Some("acme")));
        assert_eq!(gates_of("/api/v1/t//x"), Some(None));
        assert_eq!(key(&"é".repeat(100)).chars().count(), MAX_KEY);
    }

    #[tokio::test]
    async fn a_tenant_over_its_share_waits_then_is_refused_and_others_pass() {
        let admission = Admission::new(AdmissionConfig {
            max_in_flight: Some(3),
            tenant_in_flight: Some(2),
            wait: Duration::from_millis(50),
        });
        let a1 = admission.admit(Some("a")).await.expect("a 1");
        let a2 = admission.admit(Some("a")).await.expect("a 2");
        assert_eq!(admission.in_flight("a"), 2);
        // The third of `a` waits in its queue; one freed in time lets it in.
        let waiter = admission.admit(Some("a"));
        let (third, ()) = tokio::join!(waiter, async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(a1);
        });
        let a3 = third.expect("admitted once a permit was freed");
        // Its share is full and nothing is freed: refused after the wait.
        assert_eq!(admission.admit(Some("a")).await.expect_err("over its share"), Refused::Tenant);
        // Another tenant still gets the server's last permit; then the server is full.
        let b1 = admission.admit(Some("b")).await.expect("b passes");
        assert_eq!(admission.admit(Some("c")).await.expect_err("server full"), Refused::Server);
        assert_eq!(admission.admit(None).await.expect_err("server full"), Refused::Server);
        drop((a2, a3, b1));
        assert_eq!(admission.in_flight("a"), 0);
        assert!(admission.admit(None).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let admission = Admission::new(AdmissionConfig {
            max_in_flight: None,
            tenant_in_flight: Some(1),
            wait: Duration::from_secs(30),
        });
        let _held = admission.admit(Some("a")).await.expect("first");
        // Four wait (the queue holds QUEUE_FACTOR times the share of 1) ...
        let admission = Arc::new(admission);
        let queued: Vec<_> = (0..QUEUE_FACTOR)
            .map(|_| {
                tokio::spawn({
                    let admission = admission.clone();
                    async move { admission.admit(Some("a")).await.map(drop) }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // ... so the next is refused without waiting its 30 s.
        let started = std::time::Instant::now();
        assert_eq!(admission.admit(Some("a")).await.expect_err("queue full"), Refused::Tenant);
        assert!(started.elapsed() < Duration::from_secs(5), "refused at once, not after the wait");
        queued.iter().for_each(tokio::task::JoinHandle::abort);
        let off = Admission::new(AdmissionConfig { max_in_flight: None, tenant_in_flight: None, wait: Duration::ZERO });
        let held: Vec<_> = futures_lite(&off, 100).await;
        assert_eq!(held.len(), 100, "no bound: everything passes");
    }

    async fn futures_lite(admission: &Admission, n: usize) -> Vec<Admitted> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(admission.admit(Some("a")).await.expect("no bound"));
        }
        out
    }
}
