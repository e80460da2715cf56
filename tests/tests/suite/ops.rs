//! Operations over real HTTP: `/metrics`, rate limits, CORS, security headers, request ids.

use std::time::Duration;

use api::config::{OpsConfig, RateLimit};
use api::state::Ops;
use reqwest::header::HeaderMap;
use serde_json::json;
use switchyard_tests::server::TestServer;
use switchyard_tests::test_db;

/// A request with headers; the status, headers and body text.
async fn call(method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, String) {
    let mut req = reqwest::Client::new().request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.expect("body"))
}

async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, String) {
    call(reqwest::Method::GET, url, headers).await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The lines of a Prometheus text page for `series` whose labels include every one of `labels`.
fn series<'a>(page: &'a str, name: &str, labels: &[&str]) -> Vec<&'a str> {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .collect()
}

#[tokio::test]
async fn metrics_expose_the_named_series_after_some_requests() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let agent = s.token(&db, "agent@signals.test").await;
    let t = s.create(&agent, "ticket", json!({ "title": "m" })).await;
    let id = t["id"].as_str().expect("id");
    assert_eq!(s.fire(&agent, "ticket", id, "note", json!({})).await.status, 200);
    assert_eq!(s.fire(&agent, "ticket", id, "close", json!({})).await.status, 200);
    assert_eq!(s.fire(&agent, "ticket", id, "close", json!({})).await.status, 409);
    // Names from the URL that the package does not declare mint no series of their own.
    let made_up = "made_up_transition_4711";
    assert_eq!(s.fire(&agent, "ticket", id, made_up, json!({})).await.status, 409);
    let nowhere = uuid::Uuid::now_v7().to_string();
    assert_eq!(s.fire(&agent, "ticket", &nowhere, made_up, json!({})).await.status, 404);
    assert_eq!(get(&format!("{}/no/such/path", s.base), &[]).await.0, 404);

    let (status, headers, page) = get(&format!("{}/metrics", s.base), &[]).await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").starts_with("text/plain"), "{headers:?}");
    let entities = r#"route="/api/v1/t/{tenant}/entities/{type}""#;
    let fire = r#"route="/api/v1/t/{tenant}/entities/{type}/{id}/transitions/{name}""#;
    assert_eq!(
        series(&page, "switchyard_http_requests_total", &[entities, r#"method="POST""#, r#"status="201""#]).len(),
        1
    );
    assert_eq!(series(&page, "switchyard_http_requests_total", &[fire, r#"status="409""#]).len(), 1, "{page}");
    assert!(!series(&page, "switchyard_http_requests_total", &[r#"route="unmatched""#, r#"status="404""#]).is_empty());
    assert!(!series(&page, "switchyard_http_request_duration_seconds_bucket", &[fire, r#"le="0.1""#]).is_empty());
    assert!(!series(&page, "switchyard_http_request_duration_seconds_count", &[entities]).is_empty());
    assert!(!page.contains(id), "no raw paths (unbounded series) in the labels");

    let tenant = format!(r#"tenant="{}""#, s.tenant);
    let ok = series(
        &page,
        "switchyard_transitions_total",
        &[&tenant, r#"type="ticket""#, r#"transition="note""#, r#"outcome="ok""#],
    );
    assert_eq!(ok.len(), 1, "{page}");
    assert!(ok[0].ends_with(" 1"), "{}", ok[0]);
    let refused =
        series(&page, "switchyard_transitions_total", &[r#"transition="close""#, r#"outcome="INVALID_TRANSITION""#]);
    assert_eq!(refused.len(), 1, "{page}");
    assert!(!page.contains(made_up), "{page}");
    let unknown = series(
        &page,
        "switchyard_transitions_total",
        &[&tenant, r#"type="ticket""#, r#"transition="unknown""#, r#"outcome="INVALID_TRANSITION""#],
    );
    assert_eq!(unknown.len(), 1, "{page}");
    assert_eq!(series(&page, "switchyard_transitions_total", &[&tenant, r#"type="unknown""#]).len(), 1, "{page}");

    for name in [
        "switchyard_outbox_lag_seconds",
        "switchyard_webhook_failures_total",
        "switchyard_webhook_attempts_total",
        "switchyard_db_pool_connections",
        "switchyard_db_pool_max_connections",
    ] {
        assert!(!series(&page, name, &[]).is_empty(), "{name} missing from\n{page}");
    }
    assert_eq!(series(&page, "switchyard_db_pool_connections", &[r#"state="idle""#]).len(), 1);
    // No workers run here: the events of this test wait in the outbox, and the lag says so.
    let lag: f64 = series(&page, "switchyard_outbox_lag_seconds", &[])[0]
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("lag value");
    assert!(lag >= 0.0);
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let db = test_db().await;
    let ops = OpsConfig { metrics_token: Some("scrape-token-123".into()), ..OpsConfig::default() };
    let s = TestServer::start_with(&db, "signals", Ops::new(ops)).await;
    let url = format!("{}/metrics", s.base);
    assert_eq!(get(&url, &[]).await.0, 401);
    assert_eq!(get(&url, &[("authorization", "Bearer wrong")]).await.0, 401);
    let (status, _, page) = get(&url, &[("authorization", "Bearer scrape-token-123")]).await;
    assert_eq!(status, 200);
    assert!(page.contains("switchyard_db_pool_max_connections"));
}

#[tokio::test]
async fn a_tight_rate_limit_answers_429_with_retry_after() {
    let db = test_db().await;
    let per_minute = |count| Some(RateLimit { count, per: Duration::from_secs(60) });
    let ops = OpsConfig { rate_limit_user: per_minute(2), rate_limit_ip: per_minute(3), ..OpsConfig::default() };
    let s = TestServer::start_with(&db, "signals", Ops::new(ops)).await;
    let agent = s.token(&db, "agent@signals.test").await;
    let admin = s.token(&db, "admin@signals.test").await;

    // Per user: two, then 429 with a Retry-After in seconds and the error envelope.
    assert_eq!(s.get("entities/ticket", &agent).await.status, 200);
    assert_eq!(s.get("entities/ticket", &agent).await.status, 200);
    let bearer = format!("Bearer {agent}");
    let (status, headers, body) = get(&s.url("entities/ticket"), &[("authorization", &bearer)]).await;
    assert_eq!(status, 429);
    let retry: u64 = header(&headers, "retry-after").parse().expect("Retry-After in seconds");
    assert!((1..=30).contains(&retry), "{retry}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff", "a 429 is an answer like any other");
    // Another user has a bucket of its own.
    assert_eq!(s.get("entities/ticket", &admin).await.status, 200);

    // Without a valid token: per client IP (a made-up token buys no fresh bucket).
    for token in ["", "Bearer not-a-jwt", "Bearer syk_made_up"] {
        let headers: Vec<(&str, &str)> = if token.is_empty() { vec![] } else { vec![("authorization", token)] };
        assert_eq!(get(&s.url("events"), &headers).await.0, 401, "{token}");
    }
    let (status, headers, _) = get(&s.url("events"), &[]).await;
    assert_eq!(status, 429);
    assert!(!header(&headers, "retry-after").is_empty());

    // Probes are never limited.
    for _ in 0..10 {
        assert_eq!(get(&format!("{}/healthz", s.base), &[]).await.0, 200);
    }
}

#[tokio::test]
async fn sign_in_limits_are_settings_shared_by_login_and_invitations() {
    let db = test_db().await;
    let per_minute = |count| RateLimit { count, per: Duration::from_secs(60) };
    let ops = OpsConfig { login_limit_account: per_minute(2), login_limit_ip: per_minute(4), ..OpsConfig::default() };
    let s = TestServer::start_with(&db, "signals", Ops::new(ops)).await;
    let client = reqwest::Client::new();
    let login = |email: &str| {
        let req = client
            .post(format!("{}/api/v1/auth/login", s.base))
            .json(&json!({ "tenant": "signals", "email": email, "password": "not-it" }));
        async move { req.send().await.expect("request").status().as_u16() }
    };
    // Per account: two, then 429 (the default is five).
    assert_eq!(login("agent@signals.test").await, 401);
    assert_eq!(login("agent@signals.test").await, 401);
    assert_eq!(login("agent@signals.test").await, 429);
    // Per IP: four in all (the refused one counted: it reached the IP bucket first).
    assert_eq!(login("admin@signals.test").await, 401);
    assert_eq!(login("nobody@signals.test").await, 429, "the IP's fourth attempt was the refused one above");
    // Accepting an invitation draws on the same IP bucket.
    let r = client
        .post(format!("{}/api/v1/auth/accept-invite", s.base))
        .json(&json!({ "token": "not-a-token", "password": "long-enough-password" }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 429);
}

#[tokio::test]
async fn each_api_key_has_a_bucket_of_its_own() {
    let db = test_db().await;
    let per_minute = |count| Some(RateLimit { count, per: Duration::from_secs(60) });
    // No IP limit: before keys had buckets, an API key was then not limited at all.
    let ops = OpsConfig { rate_limit_user: per_minute(2), rate_limit_ip: None, ..OpsConfig::default() };
    let s = TestServer::start_with(&db, "signals", Ops::new(ops)).await;
    let admin = s.token(&db, "admin@signals.test").await;
    let mut keys = Vec::new();
    for name in ["robot-a", "robot-b"] {
        let r = s.post("api-keys", &admin, &json!({ "name": name, "roles": ["agent"] })).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        keys.push(r.body["key"].as_str().expect("key").to_string());
    }

    assert_eq!(s.get("entities/ticket", &keys[0]).await.status, 200);
    assert_eq!(s.get("entities/ticket", &keys[0]).await.status, 200);
    let r = s.get("entities/ticket", &keys[0]).await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{:?}", r.body);
    // Another key of the same tenant, from the same address, is not held back.
    assert_eq!(s.get("entities/ticket", &keys[1]).await.status, 200);
    // A made-up key (well formed, unknown id) is refused as ever.
    let made_up = format!("syk_{}_{}_{}", s.tenant.as_uuid().simple(), uuid::Uuid::now_v7().simple(), "ab".repeat(32));
    assert_eq!(s.get("entities/ticket", &made_up).await.status, 401);
}

/// A raw HTTP/1.1 exchange (a request reqwest would not send as is); the status and the body.
async fn raw(base: &str, request: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_body_over_the_limit_and_a_timeout_answer_in_the_error_envelope() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let agent = s.token(&db, "agent@signals.test").await;

    // A declared length over 1 MiB is refused before the body is read.
    let path = format!("/api/v1/t/{}/entities/ticket", s.slug);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {agent}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        api::http::MAX_BODY_BYTES + 1
    );
    let (status, body) = raw(&s.base, request).await;
    assert_eq!(status, 413, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("1048576")), "{body}");
    // The same through a client that sends the body, on the import route too.
    for route in ["entities/ticket", "entities/ticket/import"] {
        let big = format!("[\"{}\"]", "x".repeat(api::http::MAX_BODY_BYTES));
        let resp = reqwest::Client::new()
            .post(s.url(route))
            .bearer_auth(&agent)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await;
        // The server may close before the whole body is sent; when the answer arrives, it is JSON.
        if let Ok(resp) = resp {
            assert_eq!(resp.status().as_u16(), 413, "{route}");
            let body: serde_json::Value = resp.json().await.expect("json");
            assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE", "{route}: {body}");
        }
    }

    // A server with a 5 ms time limit: a login (a password hash) takes longer.
    let state = api::state::AppState::new(api::state::Shared {
        store: s.store.clone(),
        keys: std::sync::Arc::new(api::auth::Keys::from_secret(&[7u8; 32])),
        owner: db.owner.clone(),
        ops: Ops::new(OpsConfig { rate_limit_user: None, rate_limit_ip: None, ..OpsConfig::default() }),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = api::http::router_with_timeout(state, Duration::from_millis(5))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let login = json!({ "tenant": s.slug, "email": "agent@signals.test", "password": "not-the-password" });
    let resp =
        reqwest::Client::new().post(format!("{base}/api/v1/auth/login")).json(&login).send().await.expect("login");
    assert_eq!(resp.status().as_u16(), 408);
    assert!(!header(resp.headers(), "x-request-id").is_empty(), "still an answer like any other");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "REQUEST_TIMEOUT", "{body}");
    assert_eq!(body["error"]["message"], "the request took longer than 5 ms", "{body}");
    server.abort();
}

#[tokio::test]
async fn readiness_goes_through_the_request_role() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let url = format!("{}/readyz", s.base);
    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(status, 200, "{body}");

    // The owner is fine, but the role requests work as can no longer read: not ready.
    sqlx::query("revoke select on _sqlx_migrations from switchyard_app").execute(&db.owner).await.expect("revoke");
    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["status"], "database unavailable");

    sqlx::query("grant select on _sqlx_migrations to switchyard_app").execute(&db.owner).await.expect("grant");
    assert_eq!(get(&url, &[]).await.0, 200);
}

#[tokio::test]
async fn cors_is_closed_by_default_and_opened_by_configuration() {
    let studio = "https://studio.example.test";
    let preflight = [
        ("origin", studio),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "authorization,content-type"),
    ];
    let db = test_db().await;
    let closed = TestServer::start(&db, "signals").await;
    let (status, headers, _) = call(reqwest::Method::OPTIONS, &closed.url("entities/ticket"), &preflight).await;
    assert!(!(200..300).contains(&status), "preflight refused: {status}");
    assert!(headers.get("access-control-allow-origin").is_none(), "{headers:?}");
    let (_, headers, _) = get(&format!("{}/healthz", closed.base), &[("origin", studio)]).await;
    assert!(headers.get("access-control-allow-origin").is_none());

    let db2 = test_db().await;
    let ops = OpsConfig { cors_origins: vec![studio.to_string()], ..OpsConfig::default() };
    let open = TestServer::start_with(&db2, "signals", Ops::new(ops)).await;
    let (status, headers, _) = call(reqwest::Method::OPTIONS, &open.url("entities/ticket"), &preflight).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), studio);
    assert!(header(&headers, "access-control-allow-methods").contains("POST"));
    assert!(header(&headers, "access-control-allow-headers").contains("authorization"));
    let (_, headers, _) = get(&format!("{}/healthz", open.base), &[("origin", studio)]).await;
    assert_eq!(header(&headers, "access-control-allow-origin"), studio);
    assert!(header(&headers, "access-control-expose-headers").contains("x-request-id"));
    let (_, headers, _) = get(&format!("{}/healthz", open.base), &[("origin", "https://evil.example.test")]).await;
    assert!(headers.get("access-control-allow-origin").is_none(), "other origins stay out");
}

#[tokio::test]
async fn answers_carry_security_headers_and_a_request_id() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    for (url, expected) in [
        (format!("{}/healthz", s.base), 200),
        (format!("{}/no/such/path", s.base), 404),
        (s.url("entities/ticket"), 401),
    ] {
        let (status, h, _) = get(&url, &[]).await;
        assert_eq!(status, expected, "{url}");
        assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{url}");
        assert_eq!(header(&h, "x-frame-options"), "DENY", "{url}");
        assert_eq!(header(&h, "referrer-policy"), "no-referrer", "{url}");
        assert!(header(&h, "content-security-policy").contains("default-src 'none'"), "{url}");
        assert!(header(&h, "content-security-policy").contains("frame-ancestors 'none'"), "{url}");
        assert_eq!(header(&h, "cache-control"), "no-store", "{url}");
        assert_eq!(header(&h, "strict-transport-security"), "max-age=63072000; includeSubDomains", "{url}");
        assert!(h.get("server").is_none(), "{url}: no server header");
        assert!(uuid::Uuid::parse_str(header(&h, "x-request-id")).is_ok(), "{url}: a request id is made");
    }
    let health = format!("{}/healthz", s.base);
    let (_, h, _) = get(&health, &[("x-request-id", "client-trace.42:a_b")]).await;
    assert_eq!(header(&h, "x-request-id"), "client-trace.42:a_b", "a client's id is kept");
    let long = "x".repeat(200);
    for bad in ["has spaces in it", long.as_str(), "new\u{7f}line"] {
        let Ok(value) = reqwest::header::HeaderValue::from_str(bad) else { continue };
        let resp = reqwest::Client::new().get(&health).header("x-request-id", value).send().await.expect("request");
        let id = header(resp.headers(), "x-request-id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{bad:?} replaced, got {id:?}");
    }
}
