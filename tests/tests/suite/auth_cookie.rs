//! The cookie mode of the auth routes over real HTTP on a real Postgres (what the studio signs in
//! with): `X-Refresh-Mode: cookie` puts the refresh token in an HttpOnly cookie, refresh and
//! logout read it there, logout clears it; without the header everything is as it was.

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use switchyard_tests::server::TestServer;
use switchyard_tests::{test_db, TestDb};

const PASSWORD: &str = "correct horse battery";
const USER: &str = "user@sandbox.test";

async fn set_password(db: &TestDb, s: &TestServer, email: &str) {
    let hash = api::auth::password::hash_blocking(PASSWORD).expect("hash");
    let mut tx = db.tenant_tx(s.tenant).await;
    sqlx::query("update users set password_hash = $3 where tenant_id = $1 and lower(email) = lower($2)")
        .bind(s.tenant)
        .bind(email)
        .bind(hash)
        .execute(&mut *tx)
        .await
        .expect("update");
    tx.commit().await.expect("commit");
}

fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// A POST to `/api/v1/auth/{path}`, in cookie mode when `cookie` is `Some` (with that cookie when
/// it is non-empty).
async fn auth(s: &TestServer, path: &str, cookie: Option<&str>, body: Option<Value>, bearer: Option<&str>) -> Response {
    let mut req = client().post(format!("{}/api/v1/auth/{path}", s.base));
    if let Some(cookie) = cookie {
        req = req.header("x-refresh-mode", "cookie");
        if !cookie.is_empty() {
            req = req.header(COOKIE, format!("theme=dark; switchyard_refresh={cookie}"));
        }
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request")
}

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().expect("ascii").to_string()).collect()
}

/// The value of the `switchyard_refresh` cookie a response sets (panics unless exactly one).
fn cookie_value(r: &Response) -> String {
    let cookies = set_cookies(r);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let first = cookies[0].split(';').next().expect("pair");
    first.strip_prefix("switchyard_refresh=").expect("the refresh cookie").to_string()
}

async fn json(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn credentials() -> Value {
    json!({ "tenant": "sandbox", "email": USER, "password": PASSWORD })
}

async fn me(s: &TestServer, token: &str) -> StatusCode {
    client().get(format!("{}/api/v1/auth/me", s.base)).bearer_auth(token).send().await.expect("me").status()
}

#[tokio::test]
async fn cookie_mode_keeps_the_refresh_token_in_an_httponly_cookie() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    set_password(&db, &s, USER).await;

    let r = auth(&s, "login", Some(""), Some(credentials()), None).await;
    let cookie = set_cookies(&r).pop().expect("a cookie");
    for attribute in ["Path=/api/v1/auth", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=2592000"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{attribute} in {cookie}");
    }
    let first = cookie_value(&r);
    let (status, body) = json(r).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["refresh_expires_in"], 2_592_000);
    assert_eq!(me(&s, body["access_token"].as_str().expect("access")).await, 200);

    // Refresh by the cookie (no body): a new access token and a new cookie.
    let r = auth(&s, "refresh", Some(&first), None, None).await;
    let second = cookie_value(&r);
    assert_ne!(second, first);
    let (status, body) = json(r).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(me(&s, body["access_token"].as_str().expect("access")).await, 200);

    // The spent cookie again: refused, the cookie cleared, and the session revoked for the
    // holder of the current one too.
    let r = auth(&s, "refresh", Some(&first), None, None).await;
    assert!(set_cookies(&r).iter().any(|c| c.starts_with("switchyard_refresh=;") && c.contains("Max-Age=0")));
    assert_eq!(r.status(), 401);
    assert_eq!(auth(&s, "refresh", Some(&second), None, None).await.status(), 401);

    // Cookie mode without a cookie: 401 in the envelope.
    let (status, body) = json(auth(&s, "refresh", Some(""), None, None).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn cookie_mode_logout_ends_the_session_and_clears_the_cookie() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    set_password(&db, &s, USER).await;
    let r = auth(&s, "login", Some(""), Some(credentials()), None).await;
    let cookie = cookie_value(&r);
    let access = json(r).await.1["access_token"].as_str().expect("access").to_string();

    let r = auth(&s, "logout", Some(&cookie), None, Some(&access)).await;
    assert_eq!(r.status(), 204);
    let cleared = set_cookies(&r);
    assert_eq!(cleared.len(), 1);
    assert!(cleared[0].starts_with("switchyard_refresh=;") && cleared[0].contains("Max-Age=0"), "{cleared:?}");
    assert!(cleared[0].contains("Path=/api/v1/auth"), "{cleared:?}");
    assert_eq!(auth(&s, "refresh", Some(&cookie), None, None).await.status(), 401);
    // The session's access tokens stop working at once.
    assert_eq!(me(&s, &access).await, 401);
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn json_mode_is_unchanged() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    set_password(&db, &s, USER).await;
    let r = auth(&s, "login", None, Some(credentials()), None).await;
    assert!(set_cookies(&r).is_empty());
    let (status, body) = json(r).await;
    assert_eq!(status, 200);
    let refresh = body["refresh_token"].as_str().expect("refresh token in the body").to_string();

    // A cookie without the mode header is not read: the body is still required.
    let r = client()
        .post(format!("{}/api/v1/auth/refresh", s.base))
        .header(COOKIE, format!("switchyard_refresh={refresh}"))
        .send()
        .await
        .expect("refresh");
    let (status, body) = json(r).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "VALIDATION_FAILED");

    let r = auth(&s, "refresh", None, Some(json!({ "refresh_token": refresh })), None).await;
    assert!(set_cookies(&r).is_empty());
    let (status, body) = json(r).await;
    assert_eq!(status, 200, "{body}");
    let next = body["refresh_token"].as_str().expect("refresh token in the body").to_string();

    let r = auth(&s, "logout", None, Some(json!({ "refresh_token": next })), None).await;
    assert_eq!(r.status(), 204);
    assert!(set_cookies(&r).is_empty());
    db.drop_db().await.expect("drop");
}
