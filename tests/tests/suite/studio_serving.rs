//! The built studio served at `/studio/` by the server, over real HTTP: caching (hashed assets
//! immutable, the rest `no-cache`), the SPA fallback, the CSP, nothing outside its folder, and
//! the error envelope when it is not built.

use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use switchyard_tests::server::TestServer;
use switchyard_tests::test_db;

fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

async fn json(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A built studio in a temporary folder: `index.html`, one hashed asset, and a file beside the
/// folder that must never be served.
fn built_studio() -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("switchyard-studio-{}", uuid::Uuid::new_v4().simple()));
    let dist = root.join("dist");
    std::fs::create_dir_all(dist.join("assets")).expect("mkdir");
    std::fs::write(dist.join("index.html"), "<!doctype html><title>studio</title>").expect("index");
    std::fs::write(dist.join("assets/index-AbC123.js"), "console.log(1)").expect("asset");
    std::fs::write(root.join("secret.txt"), "not for you").expect("secret");
    dist
}

fn header(r: &Response, name: reqwest::header::HeaderName) -> &str {
    r.headers().get(&name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn the_studio_is_served_with_its_caching_fallback_and_csp() {
    let db = test_db().await;
    let dist = built_studio();
    // The router reads SWITCHYARD_STUDIO_DIR when it is built; nextest runs each test in its own
    // process, and no other test of this binary serves the studio.
    std::env::set_var("SWITCHYARD_STUDIO_DIR", &dist);
    let s = TestServer::start(&db, "sandbox").await;
    let get = |path: &str| client().get(format!("{}{path}", s.base)).send();

    let r = get("/studio").await.expect("get");
    assert_eq!(r.status(), 308);
    assert_eq!(header(&r, LOCATION), "/studio/");

    let r = get("/studio/").await.expect("get");
    assert_eq!(r.status(), 200);
    assert!(header(&r, CONTENT_TYPE).starts_with("text/html"));
    assert_eq!(header(&r, CACHE_CONTROL), "no-cache");
    let csp = header(&r, CONTENT_SECURITY_POLICY).to_string();
    for directive in ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(r.text().await.expect("body").contains("<title>studio</title>"));

    let r = get("/studio/assets/index-AbC123.js").await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, CACHE_CONTROL), "public, max-age=31536000, immutable");
    assert!(header(&r, CONTENT_TYPE).contains("javascript"), "{:?}", r.headers());
    assert!(header(&r, CONTENT_SECURITY_POLICY).contains("default-src 'self'"));

    // A missing asset is a 404 in the envelope, not the app.
    let r = get("/studio/assets/gone-0000.js").await.expect("get");
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, CACHE_CONTROL), "no-cache");
    assert_eq!(json(r).await.1["error"]["code"], "NOT_FOUND");

    // Deep links answer the app's index (it routes in the browser).
    for path in ["/studio/login", "/studio/t/sandbox/types/thing?x=1", "/studio/t/a/b/c/d"] {
        let r = get(path).await.expect("get");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, CACHE_CONTROL), "no-cache", "{path}");
        assert!(r.text().await.expect("body").contains("<title>studio</title>"), "{path}");
    }

    // Nothing outside the folder.
    for path in ["/studio/..%2Fsecret.txt", "/studio/%2e%2e/secret.txt", "/studio/assets/..%2F..%2Fsecret.txt"] {
        let r = get(path).await.expect("get");
        assert!(!r.text().await.expect("body").contains("not for you"), "{path}");
    }

    // Files are only read.
    let r = client().post(format!("{}/studio/login", s.base)).send().await.expect("post");
    assert_eq!(header(&r, reqwest::header::ALLOW), "GET, HEAD");
    let (status, body) = json(r).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (405, Some("METHOD_NOT_ALLOWED")));
    let r = client().head(format!("{}/studio/t/sandbox", s.base)).send().await.expect("head");
    assert_eq!(r.status(), 200);

    // The API keeps its own headers.
    let r = get("/healthz").await.expect("get");
    assert_eq!(header(&r, CONTENT_SECURITY_POLICY), "default-src 'none'; frame-ancestors 'none'");
    assert_eq!(header(&r, CACHE_CONTROL), "no-store");

    drop(s);
    std::fs::remove_dir_all(dist.parent().expect("root")).expect("cleanup");

    // Not built: a clear answer in the envelope.
    std::env::set_var("SWITCHYARD_STUDIO_DIR", "/nonexistent/studio/dist");
    let s = TestServer::start(&db, "sandbox").await;
    for path in ["/studio/", "/studio/t/sandbox"] {
        let r = client().get(format!("{}{path}", s.base)).send().await.expect("get");
        let (status, body) = json(r).await;
        assert_eq!(status, 503, "{path}");
        assert_eq!(body["error"]["code"], "STUDIO_NOT_BUILT");
        assert!(body["error"]["message"].as_str().expect("message").contains("npm ci && npm run build"), "{body}");
    }
    drop(s);
    db.drop_db().await.expect("drop");
}

/// The studio's files do not count against the per-IP limit of requests without a token (a page
/// load fetches many; tabs opening at once used to leave no budget for signing in), while the
/// API's unauthenticated routes still do.
#[tokio::test]
async fn the_studio_files_are_not_rate_limited_and_the_api_still_is() {
    let db = test_db().await;
    let dist = built_studio();
    std::env::set_var("SWITCHYARD_STUDIO_DIR", &dist);
    let per_ip = api::config::RateLimit { count: 5, per: std::time::Duration::from_secs(60) };
    let ops = api::state::Ops::new(api::config::OpsConfig {
        rate_limit_user: None,
        rate_limit_ip: Some(per_ip),
        ..api::config::OpsConfig::default()
    });
    let s = TestServer::start_with(&db, "sandbox", ops).await;
    let c = client();
    for i in 0..30 {
        let path = ["/studio/", "/studio/assets/index-AbC123.js", "/studio/t/sandbox/design"][i % 3];
        let r = c.get(format!("{}{path}", s.base)).send().await.expect("get");
        assert_eq!(r.status(), 200, "{path} (request {i})");
    }
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = c.get(format!("{}/api/v1/auth/me", s.base)).send().await.expect("get");
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "the per-IP limit still holds for the API: {statuses:?}");
}
