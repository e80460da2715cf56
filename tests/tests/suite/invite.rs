//! A tenant published without `serve --demo` gets its first admin (issue 12): `tenant apply`
//! creates the package's users as `tenant plan` says (without a password), `switchyard user
//! invite` prints a single-use invitation token, `POST /api/v1/auth/accept-invite` sets the
//! password, and the admin then manages users over the API, including inviting them. Both
//! through the CLI functions (`api::cli::tenant`, `api::cli::user`) and over the config routes.

use api::cli::tenant::{Output, TenantCommand};
use api::cli::user::UserCommand;
use api::config::Config;
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, Reply, TestServer};
use switchyard_tests::{test_db, TestDb};
use tenants::Package;

/// The CLI's configuration for this test's database. (Every test runs in its own process.)
fn cli_config(db: &TestDb) -> Config {
    std::env::set_var("DATABASE_URL", &db.owner_url);
    std::env::set_var("SWITCHYARD_APP_DATABASE_URL", &db.app_url);
    std::env::set_var("SWITCHYARD_DB_POOL", "2");
    Config::from_env().expect("config")
}

async fn tenant_cli(cfg: &Config, command: TenantCommand) -> Output {
    api::cli::tenant::execute(cfg, command).await.unwrap_or_else(|e| panic!("the command failed: {e:#}"))
}

fn invite_cmd(slug: &str, email: &str, roles: &[&str]) -> UserCommand {
    UserCommand::Invite {
        tenant: slug.into(),
        email: email.into(),
        roles: roles.iter().map(ToString::to_string).collect(),
        name: String::new(),
    }
}

/// `user invite`, and the token: the last line of its output.
async fn invite(cfg: &Config, slug: &str, email: &str, roles: &[&str]) -> String {
    let out = api::cli::user::execute(cfg, invite_cmd(slug, email, roles))
        .await
        .unwrap_or_else(|e| panic!("user invite failed: {e:#}"));
    assert_eq!(out.code, 0);
    let token = out.stdout.lines().last().expect("a last line").to_string();
    assert!(token.starts_with("syi_"), "{}", out.stdout);
    token
}

/// The package's users as the database has them: (email, roles, has a password).
async fn users(db: &TestDb, s: &TestServer) -> Vec<(String, Vec<String>, bool)> {
    let mut tx = db.tenant_tx(s.tenant).await;
    let rows = sqlx::query_as(
        "select email, roles, password_hash is not null from users where tenant_id = $1 order by lower(email)",
    )
    .bind(s.tenant)
    .fetch_all(&mut *tx)
    .await
    .expect("users");
    tx.commit().await.expect("commit");
    rows
}

async fn auth(s: &TestServer, route: &str, body: Value) -> Reply {
    s.request(Method::POST, &format!("{}/api/v1/auth/{route}", s.base), None, Some(&body), &[]).await
}

async fn accept(s: &TestServer, token: &str, password: &str) -> Reply {
    auth(s, "accept-invite", json!({ "token": token, "password": password })).await
}

async fn login(s: &TestServer, email: &str, password: &str) -> Reply {
    auth(s, "login", json!({ "tenant": s.slug, "email": email, "password": password })).await
}

fn assert_unauthorized(r: &Reply, what: &str) {
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{what}: {:?}", r.body);
    assert!(r.body["error"]["message"].is_string(), "{what}: the envelope: {:?}", r.body);
}

#[tokio::test]
async fn a_package_applied_with_the_cli_gets_its_first_admin_by_invitation() {
    let db = test_db().await;
    let cfg = cli_config(&db);
    let dir = package_dir("config-base");

    // Plan and apply agree: the users the plan adds exist afterwards, without a password.
    let plan =
        tenant_cli(&cfg, TenantCommand::Plan { dir: dir.clone(), tenant: None, json: false, skip_tests: false }).await;
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    for line in ["+ user admin@helpdesk.test: roles [admin]", "+ user agent@helpdesk.test: roles [agent]"] {
        assert!(plan.stdout.contains(line), "missing {line:?} in\n{}", plan.stdout);
    }
    let applied = tenant_cli(&cfg, TenantCommand::Apply { dir: dir.clone(), skip_tests: false, comment: None }).await;
    assert_eq!(applied.code, 0, "{}", applied.stdout);
    let s = TestServer::serve_published(&db, "helpdesk").await;
    assert_eq!(
        users(&db, &s).await,
        vec![
            ("admin@helpdesk.test".to_string(), vec!["admin".to_string()], false),
            ("agent@helpdesk.test".to_string(), vec!["agent".to_string()], false),
        ]
    );
    let again =
        tenant_cli(&cfg, TenantCommand::Plan { dir: dir.clone(), tenant: None, json: false, skip_tests: false }).await;
    assert_eq!(again.code, 0, "nothing left to do: {}", again.stdout);
    // Without a password nobody can log in, whatever they try.
    for password in ["", "switchyard-demo", "password"] {
        assert_unauthorized(&login(&s, "admin@helpdesk.test", password).await, "no password yet");
    }

    // The operator invites the package's admin (no --roles: an existing user keeps theirs).
    let first = invite(&cfg, "helpdesk", "admin@helpdesk.test", &[]).await;
    let token = invite(&cfg, "helpdesk", "ADMIN@helpdesk.test", &[]).await;
    assert_ne!(first, token);
    // The newer invitation replaced the first; password rules are checked; nothing is spent.
    assert_unauthorized(&accept(&s, &first, "a good password").await, "superseded");
    let r = accept(&s, &token, "short").await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(r.error_paths(), ["/password"]);
    let r = accept(&s, &token, "the admin's password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({ "tenant": "helpdesk", "email": "admin@helpdesk.test" }));
    // Single use.
    assert_unauthorized(&accept(&s, &token, "another password").await, "reused");
    assert_unauthorized(&login(&s, "admin@helpdesk.test", "another password").await, "the reuse changed nothing");
    // Malformed tokens: the same 401.
    for bad in ["", "nonsense", &token[..token.len() - 1], &token.replacen("syi_", "syk_", 1)] {
        assert_unauthorized(&accept(&s, bad, "a good password").await, bad);
    }

    // Logged in, the admin creates a user over the API and invites them.
    let r = login(&s, "admin@helpdesk.test", "the admin's password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let admin = r.body["access_token"].as_str().expect("access token").to_string();
    let r =
        s.post("users", &admin, &json!({ "email": "carol@helpdesk.test", "name": "Carol", "roles": ["agent"] })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["has_password"], false);
    let carol = r.body["id"].as_str().expect("id").to_string();
    let r = s.post(&format!("users/{carol}/invite"), &admin, &json!(null)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!((&r.body["user_id"], &r.body["email"]), (&json!(carol), &json!("carol@helpdesk.test")));
    assert!(r.body["expires_at"].is_string(), "{:?}", r.body);
    let carol_token = r.body["token"].as_str().expect("token").to_string();
    let r = accept(&s, &carol_token, "carol's password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = login(&s, "carol@helpdesk.test", "carol's password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let agent = r.body["access_token"].as_str().expect("access token").to_string();
    // Inviting is for admins; unknown or malformed ids are 404.
    let r = s.post(&format!("users/{carol}/invite"), &agent, &json!(null)).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    for id in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_string()] {
        let r = s.post(&format!("users/{id}/invite"), &admin, &json!(null)).await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    }
    // A deactivated user cannot be invited, and their pending invitation stops working.
    let pending = s.post(&format!("users/{carol}/invite"), &admin, &json!(null)).await;
    let pending = pending.body["token"].as_str().expect("token").to_string();
    let r = s
        .request(Method::PATCH, &s.url(&format!("users/{carol}")), Some(&admin), Some(&json!({ "active": false })), &[])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.post(&format!("users/{carol}/invite"), &admin, &json!(null)).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_unauthorized(&accept(&s, &pending, "a new password").await, "deactivated");

    // The CLI creates a user that does not exist (roles required, and the tenant's).
    let err =
        api::cli::user::execute(&cfg, invite_cmd("helpdesk", "dave@helpdesk.test", &[])).await.expect_err("no roles");
    assert!(err.to_string().contains("--roles"), "{err}");
    let err =
        api::cli::user::execute(&cfg, invite_cmd("helpdesk", "dave@helpdesk.test", &["root"])).await.expect_err("role");
    assert!(err.to_string().contains("root"), "{err}");
    let err =
        api::cli::user::execute(&cfg, invite_cmd("nowhere", "dave@x.test", &["admin"])).await.expect_err("tenant");
    assert!(err.to_string().contains("no tenant"), "{err}");
    let dave = invite(&cfg, "helpdesk", "dave@helpdesk.test", &["admin", "agent"]).await;
    // An expired invitation is refused like any other.
    let mut tx = db.tenant_tx(s.tenant).await;
    sqlx::query("update invitations set expires_at = now() - interval '1 second' where tenant_id = $1")
        .bind(s.tenant)
        .execute(&mut *tx)
        .await
        .expect("expire");
    tx.commit().await.expect("commit");
    assert_unauthorized(&accept(&s, &dave, "dave's password").await, "expired");
    let dave = invite(&cfg, "helpdesk", "dave@helpdesk.test", &[]).await;
    assert_eq!(accept(&s, &dave, "dave's password").await.status, 200);
    let r = login(&s, "dave@helpdesk.test", "dave's password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let users = users(&db, &s).await;
    assert!(users.contains(&("dave@helpdesk.test".into(), vec!["admin".into(), "agent".into()], true)), "{users:?}");

    // Only hashes are stored.
    let mut tx = db.tenant_tx(s.tenant).await;
    let stored: String =
        sqlx::query_scalar("select coalesce(string_agg(to_jsonb(i)::text, ''), '') from invitations i")
            .fetch_one(&mut *tx)
            .await
            .expect("invitations");
    tx.commit().await.expect("commit");
    for t in [&token, &carol_token, &dave] {
        assert!(!stored.contains(t.rsplit('_').next().expect("secret")), "a secret is stored");
    }
}

#[tokio::test]
async fn accepting_invitations_is_rate_limited() {
    let db = test_db().await;
    let s = TestServer::start(&db, "config-base").await;
    // Per invitation: 5 attempts, then 429 with Retry-After, in the envelope.
    let mut last = None;
    for _ in 0..6 {
        last = Some(accept(&s, "syi_nonsense", "a good password").await);
    }
    let r = last.expect("a reply");
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{:?}", r.body);
    assert!(r.body["error"]["details"]["retry_after"].as_u64().is_some_and(|s| s >= 1), "{:?}", r.body);
}

/// The id of a user, from the users list.
async fn r_id(s: &TestServer, admin: &str, email: &str) -> String {
    let r = s.get("users", admin).await;
    let user = r.body["data"].as_array().expect("users").iter().find(|u| u["email"] == email).expect("the user");
    user["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn apply_over_the_config_routes_creates_the_users_its_plan_adds() {
    let db = test_db().await;
    let s = TestServer::start(&db, "config-base").await;
    let admin = s.token(&db, "admin@helpdesk.test").await;
    let mut package = Package::load_dir(&package_dir("config-base")).expect("package").to_json();
    package["tenant"]["users"].as_array_mut().expect("users").push(json!({
        "email": "erin@helpdesk.test", "name": "Erin", "roles": ["admin"],
    }));
    let r = s.post("config/plan", &admin, &package).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let adds: Vec<&Value> =
        r.body["changes"].as_array().expect("changes").iter().filter(|c| c["kind"] == "user").collect();
    assert_eq!(adds.len(), 1, "{:?}", r.body);
    assert_eq!((&adds[0]["op"], &adds[0]["name"]), (&json!("add"), &json!("erin@helpdesk.test")), "{:?}", r.body);
    let r = s.post("config/apply", &admin, &package).await;
    assert_eq!(r.status, 201, "a new version: {:?}", r.body);
    let users = users(&db, &s).await;
    assert!(users.contains(&("erin@helpdesk.test".into(), vec!["admin".into()], false)), "{users:?}");
    let r = s.post("config/plan", &admin, &package).await;
    assert_eq!((r.status, &r.body["changed"]), (200, &json!(false)), "{:?}", r.body);

    // The new admin is invited over the API, accepts, logs in and manages users.
    let r = s.get("users", &admin).await;
    let erin =
        r.body["data"].as_array().expect("users").iter().find(|u| u["email"] == "erin@helpdesk.test").expect("erin");
    let erin = erin["id"].as_str().expect("id").to_string();
    let r = s.post(&format!("users/{erin}/invite"), &admin, &json!(null)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.body["token"].as_str().expect("token").to_string();
    assert_eq!(accept(&s, &token, "erin's password").await.status, 200);
    let r = login(&s, "erin@helpdesk.test", "erin's password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let erin_token = r.body["access_token"].as_str().expect("access token").to_string();
    let r = s.post("users", &erin_token, &json!({ "email": "frank@helpdesk.test", "roles": ["agent"] })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // Roles changed over the API: the plan shows that apply sets the package's back, and it does.
    let agent = r_id(&s, &admin, "agent@helpdesk.test").await;
    let r = s
        .request(
            Method::PATCH,
            &s.url(&format!("users/{agent}")),
            Some(&admin),
            Some(&json!({ "roles": ["admin"] })),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.post("config/plan", &admin, &package).await;
    assert_eq!(r.body["changed"], true, "{:?}", r.body);
    assert!(
        r.body["text"].as_str().is_some_and(|t| t.contains("~ user agent@helpdesk.test: roles: [admin] → [agent]")),
        "{:?}",
        r.body
    );
    assert_eq!(s.post("config/apply", &admin, &package).await.status, 200);
    assert_eq!(s.get(&format!("users/{agent}"), &admin).await.body["roles"], json!(["agent"]));
    let r = s.post("config/plan", &admin, &package).await;
    assert_eq!(r.body["changed"], false, "{:?}", r.body);

    // A user the package drops is kept: the plan says so and apply does it.
    package["tenant"]["users"].as_array_mut().expect("users").retain(|u| u["email"] != "erin@helpdesk.test");
    let r = s.post("config/plan", &admin, &package).await;
    let removed: Vec<&Value> =
        r.body["changes"].as_array().expect("changes").iter().filter(|c| c["kind"] == "user").collect();
    assert_eq!(removed[0]["details"], json!(["no longer in the package (the user is kept)"]), "{:?}", r.body);
    // (The package is version 1 again: made live, 200.)
    assert_eq!(s.post("config/apply", &admin, &package).await.status, 200);
    assert_eq!(login(&s, "erin@helpdesk.test", "erin's password").await.status, 200);
}
