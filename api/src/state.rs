//! What every handler shares.

use std::sync::Arc;

use engine::store::Store;
use sqlx::PgPool;

use crate::auth::Keys;

/// What every handler shares, behind one `Arc`: axum clones the state for every extractor of
/// every request, and one reference count costs less than one per field (the store alone holds
/// several; under load the clones were ~2% of the server's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub store: Store,
    pub keys: Arc<Keys>,
    /// The owner connection (migrations ran on it): readiness, and publishing packages over the
    /// config API (publishing may create or rename the tenant row, which the request role may not).
    pub owner: PgPool,
    /// Events, webhooks, rate limits, CORS, metrics: see [`Ops`].
    pub ops: Ops,
}

/// The operational side every request may need: its settings (`SWITCHYARD_WEBHOOK_*`, rate
/// limits, CORS, the metrics token), the process's event hub (wake-ups for SSE streams, and
/// the shutdown signal they end on) and the rate limiters. `Ops::default()` is what an unset
/// environment gives, with no listener feeding the hub (SSE streams then poll).
#[derive(Clone, Debug, Default)]
pub struct Ops {
    pub config: Arc<crate::config::OpsConfig>,
    pub hub: crate::hub::EventHub,
    pub limiter: Arc<crate::auth::limit::RateLimiter>,
    /// Sign-in attempts and invitation acceptances, per client IP and per account.
    pub login: Arc<crate::auth::limit::LoginLimiter>,
    /// The bounds on requests in progress, in all and per tenant (`crate::admission`).
    pub admission: Arc<crate::admission::Admission>,
}

impl Ops {
    pub fn new(config: crate::config::OpsConfig) -> Ops {
        let limiter = crate::auth::limit::RateLimiter::new(config.rate_limit_user, config.rate_limit_ip);
        let login = crate::auth::limit::LoginLimiter::new(config.login_limit_ip, config.login_limit_account);
        let admission = crate::admission::Admission::new(crate::admission::AdmissionConfig {
            max_in_flight: config.max_in_flight,
            tenant_in_flight: config.tenant_in_flight,
            wait: config.admission_wait,
        });
        Ops {
            config: Arc::new(config),
            hub: crate::hub::EventHub::default(),
            limiter: Arc::new(limiter),
            login: Arc::new(login),
            admission: Arc::new(admission),
        }
    }

    /// The webhook destinations policy (`SWITCHYARD_WEBHOOK_ALLOW`).
    pub fn destinations(&self) -> crate::workers::destination::Destinations {
        crate::workers::destination::Destinations::new(self.config.webhook_allow.clone())
    }
}
