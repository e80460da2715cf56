//! Prometheus metrics: the `metrics` facade (any crate records with `metrics::counter!` and
//! friends, IO-free), one process-wide Prometheus recorder, and the middleware that counts
//! requests. `GET /metrics` renders them (`crate::routes::metrics`); this module takes no
//! `AppState`, so workers record here without depending on the HTTP layer.
//!
//! | series | labels | what |
//! | --- | --- | --- |
//! | `switchyard_http_requests_total` | method, route, status | requests answered |
//! | `switchyard_http_request_duration_seconds` | method, route, status | histogram of request latency |
//! | `switchyard_http_refused_total` | scope (`tenant`, `server`) | requests refused by admission (`503 OVERLOADED`) |
//! | `switchyard_transitions_total` | tenant, type, transition, outcome | transitions executed (engine; undeclared names are `unknown`) |
//! | `switchyard_outbox_lag_seconds` | — | age of the oldest event not yet relayed (0: none) |
//! | `switchyard_webhook_attempts_total` | outcome (`delivered`, `failed`, `dead`) | webhook attempts |
//! | `switchyard_webhook_failures_total` | — | failed webhook attempts (retried or dead-lettered) |
//! | `switchyard_db_pool_connections` | state (`idle`, `busy`) | the request pool's connections |
//! | `switchyard_db_pool_max_connections` | — | the request pool's size |
//!
//! `route` is the matched route template (`/api/v1/t/{tenant}/entities/{type}`), never the raw
//! path, so the number of series stays bounded; requests that match no route are `unmatched`.
//! Likewise a transition's `type` and `transition` labels are the package's names only.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::Method;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The process's recorder, installed on first use. `None` when another recorder was installed
/// first (then `/metrics` answers 404).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the metrics recorder; /metrics is off");
                    return None;
                }
            };
            describe();
            // Histogram samples are folded in by upkeep; without scrapes they would pile up.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
            }
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("switchyard_http_requests_total", "HTTP requests answered");
    describe_histogram!("switchyard_http_request_duration_seconds", Unit::Seconds, "HTTP request latency");
    describe_counter!("switchyard_http_refused_total", "Requests refused by admission (503 OVERLOADED), by scope");
    describe_counter!("switchyard_transitions_total", "Transitions executed, by outcome");
    describe_gauge!("switchyard_outbox_lag_seconds", Unit::Seconds, "Age of the oldest event not yet relayed");
    describe_counter!("switchyard_webhook_attempts_total", "Webhook delivery attempts, by outcome");
    describe_counter!("switchyard_webhook_failures_total", "Failed webhook delivery attempts");
    describe_gauge!("switchyard_db_pool_connections", "Connections of the request pool, by state");
    describe_gauge!("switchyard_db_pool_max_connections", "Size of the request pool");
    // Counters a dashboard alerts on exist from the start, at 0, rather than from their first event.
    metrics::counter!("switchyard_webhook_failures_total").absolute(0);
    for scope in ["tenant", "server"] {
        metrics::counter!("switchyard_http_refused_total", "scope" => scope).absolute(0);
    }
    for outcome in ["delivered", "failed", "dead"] {
        metrics::counter!("switchyard_webhook_attempts_total", "outcome" => outcome).absolute(0);
    }
}

/// Counts an answered request and its latency by method, matched route (`None`: `unmatched`)
/// and status (the router's outermost middleware, `crate::middleware::frame`, calls it).
pub fn record_request(method: &Method, route: Option<&str>, status: u16, latency: Duration) {
    let (requests, histogram) = request_series(method, route.unwrap_or("unmatched"), status);
    requests.increment(1);
    histogram.record(latency.as_secs_f64());
}

/// The request counter and latency histogram of one method, route and status.
type RequestSeries = (metrics::Counter, metrics::Histogram);

/// The handles of [`track`]'s series, registered once each: looking a series up by its labels
/// in the recorder costs three strings and two registry lookups a request. The routes are the
/// router's templates and the statuses HTTP's, so the map stays small.
fn request_series(method: &axum::http::Method, route: &str, status: u16) -> RequestSeries {
    use std::collections::HashMap;
    use std::sync::RwLock;
    type Series = HashMap<String, Vec<(axum::http::Method, u16, RequestSeries)>>;
    static SERIES: OnceLock<RwLock<Series>> = OnceLock::new();
    let series = SERIES.get_or_init(RwLock::default);
    let find = |map: &Series| {
        map.get(route)?.iter().find(|(m, s, _)| m == method && *s == status).map(|(_, _, handles)| handles.clone())
    };
    if let Some(handles) = series.read().ok().and_then(|map| find(&map)) {
        return handles;
    }
    let labels = [("method", method.as_str().to_owned()), ("route", route.to_owned()), ("status", status.to_string())];
    let handles = (
        metrics::counter!("switchyard_http_requests_total", &labels),
        metrics::histogram!("switchyard_http_request_duration_seconds", &labels),
    );
    if let Ok(mut map) = series.write() {
        if find(&map).is_none() {
            map.entry(route.to_owned()).or_default().push((method.clone(), status, handles.clone()));
        }
    }
    handles
}

/// A webhook attempt's outcome: `delivered`, `pending` (failed, will be retried) or `dead`.
pub fn webhook_attempt(status: &str) {
    let outcome = match status {
        "delivered" => "delivered",
        "dead" => "dead",
        _ => "failed",
    };
    metrics::counter!("switchyard_webhook_attempts_total", "outcome" => outcome).increment(1);
    if outcome != "delivered" {
        metrics::counter!("switchyard_webhook_failures_total").increment(1);
    }
}
