//! The router's middleware: what every request gets ([`frame`]: request id, tracing span, log
//! line, metrics, security headers), CORS (closed unless configured), what protects the API
//! ([`gate`]: rate limits per user, per API key and per client IP, then the bounds on requests
//! in progress per tenant and per server, [`crate::admission`]), and the body limit's and the
//! timeout's answers in the error envelope.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::layer::util::Identity;
use tower::util::{option_layer, Either};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument as _;

use crate::auth::limit::Caller;
use crate::auth::VerifiedClaims;
use crate::config::OpsConfig;
use crate::error::ApiError;
use crate::limits::MAX_REQUEST_ID;
use crate::state::AppState;

/// Paths never limited: probes and scrapes come often, from few addresses, and cost nothing.
const UNLIMITED: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The studio's files (`/studio`, `/studio/…`: its page, scripts and styles, read from disk, no
/// database). A browser asks for them without a token, so they would count against the client's
/// IP: one page load fetches a dozen, and a few tabs opening at once (or an office behind one
/// address) ran out of the per-IP budget and had sign-in itself refused. They are not limited.
fn is_studio_file(path: &str) -> bool {
    path == "/studio" || path.starts_with("/studio/")
}

/// The caller of a request: the user of a valid access token; else, for a well-formed API key,
/// the key (and the client's IP); else the client's IP (see [`crate::client_ip`]: the peer, or
/// the address a trusted proxy forwarded; known when the server runs with
/// `into_make_service_with_connect_info`). No database access. With the claims of the access
/// token when it checked one (kept for authentication, which then does not check it again).
pub fn identify(state: &AppState, req: &Request) -> (Caller, Option<VerifiedClaims>) {
    let ip = crate::client_ip::of_request(req.extensions(), req.headers(), &state.ops.config.trusted_proxies);
    identify_from(state, req, ip)
}

/// [`identify`] with the client's IP already known.
fn identify_from(state: &AppState, req: &Request, ip: Option<IpAddr>) -> (Caller, Option<VerifiedClaims>) {
    if let Ok(token) = crate::auth::bearer(req.headers()) {
        if let Some(key) = crate::auth::secret::parse_api_key(token) {
            return (Caller::ApiKey(format!("{}/{}", key.tenant.as_uuid().simple(), key.id.simple()), ip), None);
        }
        if let Ok(claims) = state.keys.verify(token) {
            let who = Caller::User(format!("{}/{}", claims.tid, claims.sub));
            return (who, Some(VerifiedClaims { token: token.into(), claims }));
        }
    }
    let who = match ip {
        Some(ip) => Caller::Ip(ip),
        None => Caller::Unknown,
    };
    (who, None)
}

/// Middleware (inside CORS, outside the error envelope): the rate limits, then the admission
/// gates, in one layer.
///
/// * Over a rate limit: 429 `RATE_LIMITED` with `Retry-After` (seconds). Records the client's IP
///   on the request's span (`client.ip`), limited or not.
/// * Then a request passes its tenant's and the server's admission gates ([`crate::admission`])
///   or is refused at once, before anything of it runs, with `503 OVERLOADED`, `Retry-After: 1`
///   and `details: {"scope": "tenant" | "server", "applied": false}`. The permits are held until
///   the answer is produced.
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(limited) = rate_limit(&state, &mut req) {
        return limited;
    }
    let Some(tenant) = crate::admission::gates_of(req.uri().path()) else {
        return next.run(req).await;
    };
    match state.ops.admission.admit(tenant).await {
        Ok(admitted) => {
            let response = next.run(req).await;
            drop(admitted);
            response
        }
        Err(refused) => {
            metrics::counter!("switchyard_http_refused_total", "scope" => refused.scope()).increment(1);
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED", refused.to_string())
                .with_details(serde_json::json!({ "scope": refused.scope(), "applied": false }))
                .retry_after(1)
                .into_response()
        }
    }
}

/// The rate limits' answer to `req` (`None`: go on); the access token's claims, when it checked
/// one, go on the request for authentication.
fn rate_limit(state: &AppState, req: &mut Request) -> Option<Response> {
    let ip = crate::client_ip::of_request(req.extensions(), req.headers(), &state.ops.config.trusted_proxies);
    if let Some(ip) = ip {
        tracing::Span::current().record("client.ip", tracing::field::display(ip));
    }
    if UNLIMITED.contains(&req.uri().path()) || is_studio_file(req.uri().path()) {
        return None;
    }
    let (who, verified) = identify_from(state, req, ip);
    if let Some(verified) = verified {
        req.extensions_mut().insert(verified);
    }
    let wait = state.ops.limiter.check(&who).err()?;
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut response = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        format!("too many requests; retry in {secs} s"),
    )
    .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Some(response)
}

/// Every error answer carries the error envelope ([`frame`] calls it, around everything else).
/// Handlers answer with it already; what does not is answered here by status: the body limit's
/// 413 (plain text), the timeout's empty 408 (`timeout`: the limit it ran into), the router's
/// empty 405 for a method a known route does not have (its `Allow` header is kept), and the
/// plain-text rejections of extractors (a malformed header, a query that does not parse: 400).
async fn enveloped(response: Response, method: &Method, timeout: Duration) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
        StatusCode::REQUEST_TIMEOUT => {
            let ms = timeout.as_millis();
            let took = if ms % 1000 == 0 { format!("{} s", ms / 1000) } else { format!("{ms} ms") };
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                format!("the request took longer than {took}"),
            )
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            // The router adds `Allow` around this answer (or has added it already: kept).
            let allow = response.headers().get(header::ALLOW).cloned();
            let mut answer = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("this route does not take {method} (its Allow header lists what it takes)"),
            )
            .into_response();
            if let Some(allow) = allow {
                answer.headers_mut().insert(header::ALLOW, allow);
            }
            return answer;
        }
        status => {
            // An extractor's rejection: a short plain-text reason, safe to show (it names what
            // was wrong with the request, never a cause inside the server). A 5xx says nothing.
            let reason = if status.is_server_error() {
                String::new()
            } else {
                match axum::body::to_bytes(response.into_body(), 4096).await {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
                    Err(_) => String::new(),
                }
            };
            let code = match status {
                StatusCode::BAD_REQUEST => "BAD_REQUEST",
                StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
                StatusCode::FORBIDDEN => "FORBIDDEN",
                StatusCode::NOT_FOUND => "NOT_FOUND",
                StatusCode::NOT_ACCEPTABLE => "NOT_ACCEPTABLE",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
                StatusCode::UNPROCESSABLE_ENTITY => "VALIDATION_FAILED",
                StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
                StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
                s if s.is_server_error() => "INTERNAL",
                _ => "BAD_REQUEST",
            };
            let message =
                if reason.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { reason };
            ApiError::new(status, code, message)
        }
    };
    error.into_response()
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

/// The request id's header.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Middleware, the router's outermost: what every request and answer get, in one layer (it was
/// six: each `from_fn` layer boxes the rest of the stack for every request).
///
/// * A request id: the client's `x-request-id` when it is one value of at most 128 characters
///   of `[A-Za-z0-9._:-]`, else a fresh UUID; on the request and on the answer. It goes into
///   every log line of the request.
/// * A tracing span per request (`request`: id, method, path, matched route; `tenant` and
///   `client.ip` recorded inside), and one line per answer (status, latency) at INFO, at ERROR
///   for a 5xx.
/// * The request count and latency by method, matched route and status ([`crate::metrics`]).
/// * Security headers on every answer, and no `server` header ([`SECURITY_HEADERS`]).
/// * The error envelope on every error answer ([`enveloped`]); `timeout` is the request time
///   limit the timeout layer inside applies (its answer says it).
pub async fn frame(State(timeout): State<Duration>, mut req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = match client_request_id(req.headers()) {
        Some(id) => Some(id),
        None => {
            let fresh = HeaderValue::try_from(uuid::Uuid::new_v4().hyphenated().to_string()).ok();
            req.headers_mut().remove(&REQUEST_ID);
            if let Some(fresh) = &fresh {
                req.headers_mut().insert(REQUEST_ID, fresh.clone());
            }
            fresh
        }
    };
    let method = req.method().clone();
    let route = req.extensions().get::<axum::extract::MatchedPath>().cloned();
    let span = tracing::info_span!(
        "request",
        request.id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
        http.method = %method,
        http.path = %req.uri().path(),
        http.route = route.as_ref().map_or("unmatched", |r| r.as_str()),
        tenant = tracing::field::Empty,
        client.ip = tracing::field::Empty,
    );
    let mut response = enveloped(next.run(req).instrument(span.clone()).await, &method, timeout).await;
    let latency = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::error!(http.status = status.as_u16(), latency_ms, "request finished");
        } else {
            tracing::info!(http.status = status.as_u16(), latency_ms, "request finished");
        }
    });
    crate::metrics::record_request(&method, route.as_ref().map(|r| r.as_str()), status.as_u16(), latency);
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    headers.remove(header::SERVER);
    if let Some(id) = id {
        headers.insert(REQUEST_ID, id);
    }
    response
}

/// The client's request id, when it sent one that is well-formed (one value, at most
/// [`MAX_REQUEST_ID`] characters of `[A-Za-z0-9._:-]`).
fn client_request_id(headers: &axum::http::HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(&REQUEST_ID).iter();
    let id = values.next()?;
    let b = id.as_bytes();
    let ok = values.next().is_none()
        && !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'));
    ok.then(|| id.clone())
}

/// Headers every answer carries (unless the handler chose its own):
///
/// * `x-content-type-options: nosniff`: a JSON answer is never run as a script or page;
/// * `x-frame-options: DENY` and CSP `frame-ancestors 'none'`: never framed (clickjacking);
/// * `content-security-policy: default-src 'none'`: an API answer loads nothing;
/// * `referrer-policy: no-referrer`;
/// * `cache-control: no-store`: tenant data is not kept by shared caches;
/// * `strict-transport-security: max-age=63072000; includeSubDomains`: once a browser reached the
///   API over HTTPS (behind a TLS-terminating proxy), it never falls back to plain HTTP (browsers
///   ignore the header on a plain-HTTP answer, so local use is unaffected).
const SECURITY_HEADERS: [(HeaderName, &str); 6] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"),
    (header::CACHE_CONTROL, "no-store"),
    (header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"),
];

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt as _;

    use super::*;

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn answer(router: &Router, request_id: Option<&str>) -> Response {
        let mut req = axum::http::Request::get("/things/7");
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        router.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("answer")
    }

    /// The frame gives every request an id (the client's when well-formed), logs one line per
    /// answer in the request's span (with what the handler recorded on it), and puts the id and
    /// the security headers on the answer, without overriding a header the handler set.
    #[tokio::test]
    async fn the_frame_logs_each_answer_with_its_request_id_and_marks_the_answer() {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt().json().with_writer(move || sink.clone()).finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let router = Router::new()
            .route(
                "/things/{id}",
                get(|| async {
                    tracing::Span::current().record("tenant", "acme");
                    ([(header::CACHE_CONTROL, "max-age=5")], "seven")
                }),
            )
            .layer(axum::middleware::from_fn_with_state(Duration::from_secs(5), frame));

        let kept = answer(&router, Some("client-trace.42:a_b")).await;
        assert_eq!(kept.status(), StatusCode::OK);
        let h = kept.headers();
        assert_eq!(h.get("x-request-id").and_then(|v| v.to_str().ok()), Some("client-trace.42:a_b"));
        assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).and_then(|v| v.to_str().ok()), Some("nosniff"));
        assert_eq!(h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("max-age=5"), "the handler's");

        let fresh = answer(&router, Some("has spaces")).await;
        let id = fresh.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "replaced by a fresh id, got {id:?}");

        let logged = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> =
            logged.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines.len(), 2, "one line per answer: {logged}");
        let first = &lines[0];
        assert_eq!(first["fields"]["message"], "request finished", "{first}");
        assert_eq!(first["fields"]["http.status"], 200);
        assert_eq!(first["span"]["request.id"], "client-trace.42:a_b", "{first}");
        assert_eq!(first["span"]["http.route"], "/things/{id}");
        assert_eq!(first["span"]["http.path"], "/things/7");
        assert_eq!(first["span"]["tenant"], "acme", "recorded by the handler: {first}");
        assert_eq!(lines[1]["span"]["request.id"], id.as_str());
    }
}
