//! Identity over real HTTP on a real Postgres: login, refresh-token rotation and reuse
//! detection, logout, `/auth/me`, login rate limits, users and roles managed by admins (changes
//! applying to tokens already issued), API keys, and tenant isolation of all of it.

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::{test_db, TestDb};

const PASSWORD: &str = "correct horse battery";

/// Gives a user of the server's tenant a password, as an operator would.
async fn set_password(db: &TestDb, s: &TestServer, email: &str, password: &str) {
    let hash = api::auth::password::hash_blocking(password).expect("hash");
    let mut tx = db.tenant_tx(s.tenant).await;
    let done = sqlx::query("update users set password_hash = $3 where tenant_id = $1 and lower(email) = lower($2)")
        .bind(s.tenant)
        .bind(email)
        .bind(hash)
        .execute(&mut *tx)
        .await
        .expect("update");
    assert_eq!(done.rows_affected(), 1, "no user {email}");
    tx.commit().await.expect("commit");
}

fn auth_url(s: &TestServer, path: &str) -> String {
    format!("{}/api/v1/auth/{path}", s.base)
}

async fn login(s: &TestServer, tenant: &str, email: &str, password: &str) -> Reply {
    let body = json!({ "tenant": tenant, "email": email, "password": password });
    s.request(Method::POST, &auth_url(s, "login"), None, Some(&body), &[]).await
}

/// Logs in (panics unless 200) and returns (access token, refresh token).
async fn session(s: &TestServer, email: &str) -> (String, String) {
    let r = login(s, &s.slug, email, PASSWORD).await;
    assert_eq!(r.status, 200, "login {email}: {:?}", r.body);
    (r.body["access_token"].as_str().expect("access").into(), r.body["refresh_token"].as_str().expect("refresh").into())
}

async fn refresh(s: &TestServer, refresh_token: &str) -> Reply {
    s.request(Method::POST, &auth_url(s, "refresh"), None, Some(&json!({ "refresh_token": refresh_token })), &[]).await
}

async fn me(s: &TestServer, token: &str) -> Reply {
    s.request(Method::GET, &auth_url(s, "me"), Some(token), None, &[]).await
}

async fn patch(s: &TestServer, path: &str, token: &str, body: &Value) -> Reply {
    s.request(Method::PATCH, &s.url(path), Some(token), Some(body), &[]).await
}

fn roles(v: &Value) -> Vec<&str> {
    v["roles"].as_array().expect("roles").iter().filter_map(Value::as_str).collect()
}

#[tokio::test]
async fn login_gives_tokens_that_work_and_me_says_who() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    set_password(&db, &s, "user@sandbox.test", PASSWORD).await;

    // The email is matched whatever its case.
    let r = login(&s, "sandbox", "User@Sandbox.test", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    let access = r.body["access_token"].as_str().expect("access");
    let refresh_token = r.body["refresh_token"].as_str().expect("refresh");
    assert_eq!(access.split('.').count(), 3, "a JWT");
    assert!(refresh_token.starts_with(&s.tenant.as_uuid().simple().to_string()), "{refresh_token}");

    let r = me(&s, access).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["email"], "user@sandbox.test");
    assert_eq!(r.body["name"], "User");
    assert_eq!(r.body["tenant"], "sandbox");
    assert_eq!(r.body["kind"], "user");
    assert_eq!(roles(&r.body), ["user"]);
    let user_id = r.body["id"].as_str().expect("id").to_string();

    // The token drives the API: a transition, recorded as this user.
    let thing = s.create(access, "thing", json!({ "name": "logged in" })).await;
    assert_eq!(thing["created_by"], user_id.as_str());
    let r = s.fire(access, "thing", thing["id"].as_str().expect("id"), "bump", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["data"]["counter"], 1);

    // No token, a garbage token: 401 in the envelope.
    let r = s.request(Method::GET, &auth_url(&s, "me"), None, None, &[]).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    let r = me(&s, "garbage").await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    // A refresh token is not an access token.
    let r = me(&s, refresh_token).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
}

#[tokio::test]
async fn failed_logins_look_alike_whatever_was_wrong() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    set_password(&db, &s, "user@sandbox.test", PASSWORD).await;
    set_password(&db, &s, "admin@sandbox.test", PASSWORD).await;

    let wrong_password = login(&s, "sandbox", "user@sandbox.test", "not the password").await;
    let unknown_user = login(&s, "sandbox", "nobody@sandbox.test", PASSWORD).await;
    let unknown_tenant = login(&s, "atlantis", "user@sandbox.test", PASSWORD).await;
    let empty_password = login(&s, "sandbox", "admin@sandbox.test", "").await;
    assert_eq!((wrong_password.status, wrong_password.code()), (401, "UNAUTHORIZED"), "{:?}", wrong_password.body);
    for other in [&unknown_user, &unknown_tenant, &empty_password] {
        assert_eq!(other.status, wrong_password.status);
        assert_eq!(other.body, wrong_password.body, "same answer whatever was wrong");
    }
    assert!(!wrong_password.body.to_string().contains("user@sandbox.test"));

    // A user without a password cannot log in at all, and gets the same answer.
    let mut tx = db.tenant_tx(s.tenant).await;
    sqlx::query("update users set password_hash = null where email = 'admin@sandbox.test'")
        .execute(&mut *tx)
        .await
        .expect("update");
    tx.commit().await.expect("commit");
    let r = login(&s, "sandbox", "admin@sandbox.test", "").await;
    assert_eq!(r.body, wrong_password.body);

    // A malformed body is a 422, not a login failure.
    let r = s.request(Method::POST, &auth_url(&s, "login"), None, Some(&json!({ "tenant": "sandbox" })), &[]).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_account_and_per_ip() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    set_password(&db, &s, "user@sandbox.test", PASSWORD).await;
    let client = reqwest::Client::new();
    let attempt = |email: &str, password: &str| {
        let req = client
            .post(auth_url(&s, "login"))
            .json(&json!({ "tenant": "sandbox", "email": email, "password": password }));
        async move { req.send().await.expect("request") }
    };

    // Per tenant + email: 5 attempts, then 429 with Retry-After — even with the right password.
    for _ in 0..5 {
        assert_eq!(attempt("user@sandbox.test", "guess").await.status(), 401);
    }
    let r = attempt("USER@sandbox.test", PASSWORD).await;
    assert_eq!(r.status(), 429);
    let retry: u64 =
        r.headers().get("retry-after").expect("Retry-After").to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=12).contains(&retry), "{retry}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");

    // Per IP: 20 attempts whatever the account (6 were made above), then 429. The bucket earns
    // one attempt back every 3 s, and each attempt verifies a password (slow on purpose), so on a
    // busy machine a few more may pass: allow exactly those the elapsed time explains.
    let started = std::time::Instant::now();
    let mut passed = 0u64;
    let limited = loop {
        let r = attempt(&format!("nobody{passed}@sandbox.test"), "guess").await;
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 401, "attempt {passed}");
        passed += 1;
        assert!(passed <= 40, "no per-IP limit after {passed} attempts");
    };
    let earned = started.elapsed().as_secs() / 3 + 1;
    assert!(passed >= 14 && passed <= 14 + earned, "{passed} attempts passed; 14 + {earned} expected at most");
    assert!(limited.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_session() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    // With the credential cache on, as in `serve`: every change below must still apply at once.
    let workers = s.workers_with_auth_cache().await;
    set_password(&db, &s, "user@sandbox.test", PASSWORD).await;
    let (_, r1) = session(&s, "user@sandbox.test").await;
    let (other_access, other_refresh) = session(&s, "user@sandbox.test").await;

    let r = refresh(&s, &r1).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r2 = r.body["refresh_token"].as_str().expect("refresh").to_string();
    assert_ne!(r2, r1, "rotated");
    assert_eq!(me(&s, r.body["access_token"].as_str().expect("access")).await.status, 200);
    let r = refresh(&s, &r2).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r3 = r.body["refresh_token"].as_str().expect("refresh").to_string();
    let a3 = r.body["access_token"].as_str().expect("access").to_string();
    assert_eq!(me(&s, &a3).await.status, 200);

    // r1 was spent: presenting it again is a theft signal. Refused, and the whole session with it.
    let r = refresh(&s, &r1).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{:?}", r.body);
    let r = refresh(&s, &r3).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "the latest token of the family is revoked too");
    assert_eq!(me(&s, &a3).await.status, 401, "and the session's access tokens");

    // The user's other session is untouched.
    assert_eq!(me(&s, &other_access).await.status, 200);
    assert_eq!(refresh(&s, &other_refresh).await.status, 200);

    // Tampered and malformed refresh tokens.
    let mut tampered = other_refresh.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == '0' { '1' } else { '0' });
    assert_eq!(refresh(&s, &tampered).await.status, 401);
    assert_eq!(refresh(&s, "nope").await.status, 401);
    workers.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn logout_ends_one_session_or_all_of_them() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    // With the credential cache on, as in `serve`: every change below must still apply at once.
    let workers = s.workers_with_auth_cache().await;
    set_password(&db, &s, "user@sandbox.test", PASSWORD).await;
    let (a1, r1) = session(&s, "user@sandbox.test").await;
    let (a2, r2) = session(&s, "user@sandbox.test").await;
    let (a3, r3) = session(&s, "user@sandbox.test").await;

    // With a refresh token: that session only.
    let r = s.request(Method::POST, &auth_url(&s, "logout"), None, Some(&json!({ "refresh_token": r1 })), &[]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(refresh(&s, &r1).await.status, 401);
    assert_eq!(me(&s, &a1).await.status, 401, "its access token stops at once");
    assert_eq!(me(&s, &a2).await.status, 200);

    // With the access token and no body: every session of the user.
    let r = s.request(Method::POST, &auth_url(&s, "logout"), Some(&a2), None, &[]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for (access, refresh_token) in [(&a2, &r2), (&a3, &r3)] {
        assert_eq!(me(&s, access).await.status, 401);
        assert_eq!(refresh(&s, refresh_token).await.status, 401);
    }
    // Nothing to log out with: 401.
    let r = s.request(Method::POST, &auth_url(&s, "logout"), None, None, &[]).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    // Logging in again starts a new session.
    let (a4, _) = session(&s, "user@sandbox.test").await;
    assert_eq!(me(&s, &a4).await.status, 200);
    workers.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn admins_manage_users_and_no_one_else_does() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    let admin = s.token(&db, "admin@sandbox.test").await;
    let user = s.token(&db, "user@sandbox.test").await;

    // Not an admin: 403 on every user route.
    let new_user = json!({ "email": "new@sandbox.test", "name": "New", "roles": ["user"], "password": PASSWORD });
    assert_eq!(s.get("users", &user).await.status, 403);
    let r = s.post("users", &user, &new_user).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));

    let r = s.post("users", &admin, &new_user).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["email"], "new@sandbox.test");
    assert_eq!(r.body["has_password"], true);
    assert_eq!(r.body["active"], true);
    assert!(r.body.get("password_hash").is_none() && !r.body.to_string().contains("argon2"));
    let id = r.body["id"].as_str().expect("id").to_string();

    // The new user logs in with that password and holds the roles given.
    let (access, _) = session(&s, "new@sandbox.test").await;
    let r = me(&s, &access).await;
    assert_eq!((r.body["id"].as_str(), roles(&r.body)), (Some(id.as_str()), vec!["user"]));
    assert_eq!(s.get(&format!("users/{id}"), &access).await.status, 403);

    // The same email again (whatever its case): 409. Unknown roles, bad emails, short passwords: 422.
    let r = s.post("users", &admin, &json!({ "email": "NEW@sandbox.test", "roles": [] })).await;
    assert_eq!((r.status, r.code()), (409, "ALREADY_EXISTS"), "{:?}", r.body);
    let r = s.post("users", &admin, &json!({ "email": "x@sandbox.test", "roles": ["user", "pilot"] })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["errors"][0]["path"], "/roles/1");
    let r = s.post("users", &admin, &json!({ "email": "not an email", "roles": [] })).await;
    assert_eq!(r.body["error"]["details"]["errors"][0]["path"], "/email");
    let r = s.post("users", &admin, &json!({ "email": "y@sandbox.test", "password": "short" })).await;
    assert_eq!(r.body["error"]["details"]["errors"][0]["path"], "/password");

    // An invited user without a password cannot log in until one is set.
    let r = s.post("users", &admin, &json!({ "email": "invited@sandbox.test", "roles": ["user"] })).await;
    assert_eq!((r.status, r.body["has_password"].as_bool()), (201, Some(false)), "{:?}", r.body);
    let invited = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(login(&s, "sandbox", "invited@sandbox.test", PASSWORD).await.status, 401);
    let r = patch(&s, &format!("users/{invited}"), &admin, &json!({ "password": PASSWORD, "name": "Invited" })).await;
    assert_eq!((r.status, r.body["name"].as_str()), (200, Some("Invited")), "{:?}", r.body);
    assert_eq!(login(&s, "sandbox", "invited@sandbox.test", PASSWORD).await.status, 200);

    let r = s.get("users", &admin).await;
    assert_eq!(r.status, 200);
    let emails: Vec<&str> =
        r.body["data"].as_array().expect("data").iter().filter_map(|u| u["email"].as_str()).collect();
    assert_eq!(emails, ["admin@sandbox.test", "invited@sandbox.test", "new@sandbox.test", "user@sandbox.test"]);
    assert_eq!(s.get(&format!("users/{}", uuid::Uuid::now_v7()), &admin).await.status, 404);

    // An admin cannot lock themselves out.
    let me_id = me(&s, &admin).await.body["id"].as_str().expect("id").to_string();
    let r = patch(&s, &format!("users/{me_id}"), &admin, &json!({ "active": false })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"));
    let r = patch(&s, &format!("users/{me_id}"), &admin, &json!({ "roles": ["user"] })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"));
}

#[tokio::test]
async fn deactivation_and_role_changes_apply_to_existing_tokens_at_once() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    // With the credential cache on, as in `serve`: every change below must still apply at once.
    let workers = s.workers_with_auth_cache().await;
    let admin = s.token(&db, "admin@sandbox.test").await;
    let r =
        s.post("users", &admin, &json!({ "email": "op@sandbox.test", "roles": ["user"], "password": PASSWORD })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    let (access, refresh_token) = session(&s, "op@sandbox.test").await;
    let thing = s.create(&access, "thing", json!({ "name": "t" })).await;
    let thing = thing["id"].as_str().expect("id").to_string();
    assert_eq!(s.fire(&access, "thing", &thing, "bump", json!({})).await.status, 200);
    let rule = json!({ "logic": { "==": [1, 1] } });
    assert_eq!(s.post("rules/evaluate", &access, &rule).await.status, 403);

    // Roles taken away: the same token may no longer bump; given admin: it may use admin routes.
    let r = patch(&s, &format!("users/{id}"), &admin, &json!({ "roles": ["admin"] })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.fire(&access, "thing", &thing, "bump", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(s.post("rules/evaluate", &access, &rule).await.status, 200);
    assert_eq!(roles(&me(&s, &access).await.body), ["admin"]);

    // Deactivated: the token fails at once, refresh and login too (with the usual answer).
    let r = patch(&s, &format!("users/{id}"), &admin, &json!({ "active": false })).await;
    assert_eq!((r.status, r.body["active"].as_bool()), (200, Some(false)), "{:?}", r.body);
    let r = s.get(&format!("entities/thing/{thing}"), &access).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{:?}", r.body);
    assert_eq!(me(&s, &access).await.status, 401);
    assert_eq!(refresh(&s, &refresh_token).await.status, 401);
    let failed = login(&s, "sandbox", "op@sandbox.test", PASSWORD).await;
    assert_eq!(failed.body, login(&s, "sandbox", "op@sandbox.test", "wrong password").await.body);
    assert_eq!(failed.status, 401);

    // Reactivated: a new login works (the old sessions stay ended).
    let r = patch(&s, &format!("users/{id}"), &admin, &json!({ "active": true, "roles": ["user"] })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(refresh(&s, &refresh_token).await.status, 401);
    let (again, _) = session(&s, "op@sandbox.test").await;
    assert_eq!(s.fire(&again, "thing", &thing, "bump", json!({})).await.status, 200);
    workers.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn api_keys_authenticate_as_their_roles_until_revoked() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    // With the credential cache on, as in `serve`: every change below must still apply at once.
    let workers = s.workers_with_auth_cache().await;
    let admin = s.token(&db, "admin@sandbox.test").await;
    let user = s.token(&db, "user@sandbox.test").await;

    let r = s.post("api-keys", &user, &json!({ "name": "robot", "roles": ["user"] })).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));
    let r = s.post("api-keys", &admin, &json!({ "name": "robot", "roles": ["wizard"] })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"));
    let r = s.post("api-keys", &admin, &json!({ "name": "robot", "roles": ["user"] })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let key = r.body["key"].as_str().expect("key").to_string();
    let key_id = r.body["id"].as_str().expect("id").to_string();
    assert!(key.starts_with("syk_"), "{key}");
    assert_eq!(r.body["actor_id"], format!("apikey:{key_id}"));

    // Listed without any secret.
    let r = s.get("api-keys", &admin).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"][0]["name"], "robot");
    assert_eq!(r.body["data"][0]["revoked_at"], Value::Null);
    let secret = key.rsplit('_').next().expect("secret");
    assert!(!r.body.to_string().contains(secret) && r.body["data"][0].get("key").is_none());

    // The key acts with its roles, as `apikey:<id>`.
    let thing = s.create(&key, "thing", json!({ "name": "made by a robot" })).await;
    assert_eq!(thing["created_by"], format!("apikey:{key_id}"));
    let r = s.fire(&key, "thing", thing["id"].as_str().expect("id"), "bump", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = me(&s, &key).await;
    assert_eq!((r.body["kind"].as_str(), r.body["name"].as_str()), (Some("api_key"), Some("robot")));
    assert_eq!(s.get("users", &key).await.status, 403, "not an admin key");

    // A key with a wrong secret is refused.
    let mut tampered = key.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(s.get("entities/thing", &tampered).await.status, 401);

    // Revoked: it stops working at once.
    let r = s.request(Method::DELETE, &s.url(&format!("api-keys/{key_id}")), Some(&admin), None, &[]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s.get("entities/thing", &key).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    let r = s.get("api-keys", &admin).await;
    assert!(r.body["data"][0]["revoked_at"].is_string());
    let r =
        s.request(Method::DELETE, &s.url(&format!("api-keys/{}", uuid::Uuid::now_v7())), Some(&admin), None, &[]).await;
    assert_eq!(r.status, 404);
    workers.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_token_or_key_of_one_tenant_gets_nothing_of_another() {
    let db = test_db().await;
    let a = TestServer::start(&db, "chemichemi").await;
    let b = TestServer::start(&db, "sandbox").await;
    set_password(&db, &b, "admin@sandbox.test", PASSWORD).await;
    // One server serves every tenant: log in to sandbox through it.
    let r = login(&a, "sandbox", "admin@sandbox.test", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let sandbox_admin = r.body["access_token"].as_str().expect("access").to_string();
    let r =
        a.request(Method::GET, &format!("{}/api/v1/t/sandbox/users", a.base), Some(&sandbox_admin), None, &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    for path in ["users", "api-keys", "entities/order"] {
        let r = a.get(path, &sandbox_admin).await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{path}: {:?}", r.body);
    }
    let chemichemi_user = a.get(&format!("users/{}", uuid::Uuid::now_v7()), &sandbox_admin).await;
    assert_eq!(chemichemi_user.status, 403);

    // An API key of sandbox on chemichemi's paths: 403 too.
    let r = a
        .request(
            Method::POST,
            &format!("{}/api/v1/t/sandbox/api-keys", a.base),
            Some(&sandbox_admin),
            Some(&json!({ "name": "k", "roles": ["admin"] })),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let key = r.body["key"].as_str().expect("key").to_string();
    let r = a.get("users", &key).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));
    let r = a.request(Method::GET, &format!("{}/api/v1/t/sandbox/users", a.base), Some(&key), None, &[]).await;
    assert_eq!(r.status, 200);

    // Row-level security: as the server's role, sessions and keys are visible in their tenant
    // only, and with no tenant set, in none.
    for (tenant, expected) in [(None, false), (Some(a.tenant), false), (Some(b.tenant), true)] {
        for table in ["refresh_tokens", "api_keys"] {
            let mut tx = db.app.begin().await.expect("begin");
            if let Some(t) = tenant {
                sqlx::query("select set_config('app.tenant_id', $1, true)")
                    .bind(t.to_string())
                    .execute(&mut *tx)
                    .await
                    .expect("tenant");
            }
            let n: i64 =
                sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(&mut *tx).await.expect(table);
            tx.rollback().await.expect("rollback");
            assert_eq!(n > 0, expected, "{table} as {tenant:?}: {n} rows");
        }
    }

    // The chemichemi admin sees only chemichemi's users.
    let admin = a.token(&db, "admin@chemichemi.test").await;
    let r = a.get("users", &admin).await;
    assert_eq!(r.status, 200);
    let emails: Vec<&str> =
        r.body["data"].as_array().expect("data").iter().filter_map(|u| u["email"].as_str()).collect();
    assert!(!emails.is_empty() && emails.iter().all(|e| e.ends_with("@chemichemi.test")), "{emails:?}");
}

#[tokio::test]
async fn expired_refresh_tokens_are_refused_and_purged_at_the_next_login() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    set_password(&db, &s, "user@sandbox.test", PASSWORD).await;
    let (_, old) = session(&s, "user@sandbox.test").await;
    let in_tenant = |sql: &'static str| {
        let (pool, tenant) = (db.owner.clone(), s.tenant);
        async move {
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("select set_config('app.tenant_id', $1, true)")
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await
                .expect("tenant");
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.expect(sql);
            tx.commit().await.expect("commit");
            n
        }
    };
    in_tenant("with e as (update refresh_tokens set expires_at = now() - interval '1 minute' returning 1) select count(*) from e")
        .await;
    let r = refresh(&s, &old).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{:?}", r.body);
    assert_eq!(in_tenant("select count(*) from refresh_tokens").await, 1);
    let (_, fresh) = session(&s, "user@sandbox.test").await;
    assert_eq!(in_tenant("select count(*) from refresh_tokens").await, 1, "the expired token is gone");
    assert_eq!(refresh(&s, &fresh).await.status, 200);
}

/// Polls `check` every 20 ms for up to 5 s; true once it held.
async fn within_5s<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn credential_changes_made_elsewhere_reach_the_servers_cache() {
    // Another process (a second server, `switchyard tenant apply`, an operator's SQL) changes
    // users and keys in the database: this server was not told directly, only by Postgres.
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    let workers = s.workers_with_auth_cache().await;
    let admin = s.token(&db, "admin@sandbox.test").await;
    let user = s.token(&db, "user@sandbox.test").await;
    let r = s.post("api-keys", &admin, &json!({ "name": "robot", "roles": ["user"] })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let key = r.body["key"].as_str().expect("key").to_string();
    let key_id: uuid::Uuid = r.body["id"].as_str().expect("id").parse().expect("uuid");
    let user_id: uuid::Uuid = me(&s, &user).await.body["id"].as_str().expect("id").parse().expect("uuid");
    assert_eq!(me(&s, &key).await.status, 200);

    // The answers are kept: the cache serves them (so what follows tests the cache, not the
    // database).
    let user_key = api::auth::cache::Key::User { tenant: s.tenant, user: user_id, session: None };
    let api_key = api::auth::cache::Key::ApiKey { tenant: s.tenant, key: key_id };
    assert!(s.ops.hub.auth().get(&user_key).is_some(), "the user's answer is cached");
    assert!(s.ops.hub.auth().get(&api_key).is_some(), "the key's answer is cached");

    let sql = |q: &'static str| {
        let owner = db.owner.clone();
        async move { sqlx::query(q).execute(&owner).await.expect("sql") }
    };
    // A role change: the next requests use the new roles.
    sql("update users set roles = '{admin}' where email = 'user@sandbox.test'").await;
    assert!(
        within_5s(|| async { roles(&me(&s, &user).await.body) == ["admin"] }).await,
        "the new roles apply within 5 s"
    );
    // Deactivation, revocation: refused.
    sql("update users set active = false where email = 'user@sandbox.test'").await;
    assert!(within_5s(|| async { me(&s, &user).await.status == 401 }).await, "the deactivated user is refused");
    sql("update api_keys set revoked_at = now()").await;
    assert!(within_5s(|| async { me(&s, &key).await.status == 401 }).await, "the revoked key is refused");
    // Deleted: refused too (and the admin, untouched, still works throughout).
    sql("update users set active = true where email = 'user@sandbox.test'").await;
    assert!(within_5s(|| async { me(&s, &user).await.status == 200 }).await);
    sql("delete from users where email = 'user@sandbox.test'").await;
    assert!(within_5s(|| async { me(&s, &user).await.status == 401 }).await, "the deleted user is refused");
    assert_eq!(me(&s, &admin).await.status, 200);
    workers.stop(std::time::Duration::from_secs(5)).await;
}
