//! Layers that protect the API: rate limits (per user and per client IP), CORS (closed unless
//! configured), security headers on every response, and a bound on client-sent request ids.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Gcra};
use tower::layer::util::Identity;
use tower::util::{option_layer, Either};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{OpsConfig, RateLimit};
use crate::error::ApiError;
use crate::state::AppState;

/// Keys kept before buckets that are full again are swept.
const SWEEP_AT: usize = 10_000;
/// Paths never limited: probes and scrapes come often, from few addresses, and cost nothing.
const UNLIMITED: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// GCRA buckets (`governor`): one per authenticated user (tenant and subject of a valid access
/// token), one per client IP for every other request (anonymous ones, API keys: telling a valid
/// API key needs the database, and a made-up one must not buy a fresh bucket). In-process: each
/// server counts its own requests.
pub struct RateLimiter {
    by_user: Option<DefaultKeyedRateLimiter<String>>,
    by_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("by_user", &self.by_user.is_some())
            .field("by_ip", &self.by_ip.is_some())
            .finish()
    }
}

impl Default for RateLimiter {
    fn default() -> RateLimiter {
        let c = OpsConfig::default();
        RateLimiter::new(c.rate_limit_user, c.rate_limit_ip)
    }
}

fn quota(limit: RateLimit) -> Quota {
    let count = NonZeroU32::new(limit.count).unwrap_or(NonZeroU32::MIN);
    let period = (limit.per / count.get()).max(Duration::from_nanos(1));
    Quota::with_period(period).unwrap_or_else(|| Quota::per_second(count)).allow_burst(count)
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User(String),
    Ip(IpAddr),
    Unknown,
}

impl RateLimiter {
    pub fn new(user: Option<RateLimit>, ip: Option<RateLimit>) -> RateLimiter {
        RateLimiter { by_user: user.map(|l| Gcra::keyed(quota(l))), by_ip: ip.map(|l| Gcra::keyed(quota(l))) }
    }

    /// Counts a request; `Err(wait)` when the caller is over its limit.
    pub fn check(&self, caller: &Caller) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        let over = |n: governor::NotUntil<_>| n.wait_time_from(now);
        match caller {
            Caller::User(key) => match &self.by_user {
                Some(l) => {
                    sweep(l);
                    l.check_key(key).map_err(over)
                }
                None => Ok(()),
            },
            Caller::Ip(ip) => match &self.by_ip {
                Some(l) => {
                    sweep(l);
                    l.check_key(ip).map_err(over)
                }
                None => Ok(()),
            },
            Caller::Unknown => Ok(()),
        }
    }
}

fn sweep<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>) {
    if limiter.len() > SWEEP_AT {
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

/// The caller of a request: the user of a valid access token, else the peer's IP (known when
/// the server runs with `into_make_service_with_connect_info`).
pub fn caller(state: &AppState, req: &Request) -> Caller {
    if let Ok(token) = crate::auth::bearer(req.headers()) {
        if let Ok(claims) = state.keys.verify(token) {
            return Caller::User(format!("{}/{}", claims.tid, claims.sub));
        }
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => Caller::Ip(addr.ip()),
        None => Caller::Unknown,
    }
}

/// Middleware: 429 `RATE_LIMITED` with `Retry-After` (seconds) over the limit.
pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if UNLIMITED.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let who = caller(&state, &req);
    match state.ops.limiter.check(&who) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = secs.max(1);
            let mut response = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("too many requests; retry in {secs} s"),
            )
            .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    }
}

/// CORS for the configured origins (`SWITCHYARD_CORS_ORIGINS`); nothing (no CORS headers, so
/// browsers refuse cross-origin calls) when there are none. Bearer tokens, not cookies: no
/// credentials mode.
pub fn cors(config: &OpsConfig) -> Either<CorsLayer, Identity> {
    option_layer(cors_layer(config))
}

fn cors_layer(config: &OpsConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origin = if config.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER, header::ETAG])
            .max_age(Duration::from_secs(600)),
    )
}

/// Middleware: headers every answer carries (unless the handler chose its own), and no
/// `server` header.
///
/// * `x-content-type-options: nosniff`: a JSON answer is never run as a script or page;
/// * `x-frame-options: DENY` and CSP `frame-ancestors 'none'`: never framed (clickjacking);
/// * `content-security-policy: default-src 'none'`: an API answer loads nothing;
/// * `referrer-policy: no-referrer`;
/// * `cache-control: no-store`: tenant data is not kept by shared caches.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    headers.remove(header::SERVER);
    response
}

/// Longest client-sent request id kept.
const MAX_REQUEST_ID: usize = 128;

/// Middleware (outside the request-id layer): a client's `x-request-id` is kept when it is at
/// most 128 characters of `[A-Za-z0-9._:-]`, else replaced by a fresh one (it goes into every
/// log line of the request).
pub async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let ok = |v: &HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_REQUEST_ID
            && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
    };
    let bad = req.headers().get_all("x-request-id").iter().count() > 1
        || req.headers().get("x-request-id").is_some_and(|v| !ok(v));
    if bad {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_over_its_limit_waits_and_others_do_not() {
        let limiter = RateLimiter::new(
            Some(RateLimit { count: 2, per: Duration::from_secs(60) }),
            Some(RateLimit { count: 1, per: Duration::from_secs(60) }),
        );
        let alice = Caller::User("t/alice".into());
        assert!(limiter.check(&alice).is_ok());
        assert!(limiter.check(&alice).is_ok());
        let wait = limiter.check(&alice).expect_err("limited");
        assert!(wait > Duration::from_secs(20) && wait <= Duration::from_secs(30), "{wait:?}");
        assert!(limiter.check(&Caller::User("t/bob".into())).is_ok());
        let ip = Caller::Ip([192, 0, 2, 1].into());
        assert!(limiter.check(&ip).is_ok());
        assert!(limiter.check(&ip).is_err());
        assert!(limiter.check(&Caller::Unknown).is_ok());
        let off = RateLimiter::new(None, None);
        for _ in 0..100 {
            assert!(off.check(&alice).is_ok());
        }
    }
}
