//! Webhooks declared in a package: published with it (secret from the server's environment,
//! destination checked), refused before anything is published when either fails.

use api::config::parse_nets;
use api::workers::destination::Destinations;
use engine::limits::Limits;
use serde_json::json;
use switchyard_tests::server::{package_dir, TestServer};
use switchyard_tests::test_db;
use tenants::Package;

#[tokio::test]
async fn package_webhooks_are_published_with_their_secret_from_the_environment() {
    let db = test_db().await;
    let package = Package::load_dir(&package_dir("hooks")).expect("package");
    let limits = Limits::default();
    let loopback = Destinations::new(parse_nets("127.0.0.1").expect("nets"));

    // No secret in the environment: nothing is published.
    let err =
        api::publish::publish(&db.owner, &package, "test", None, &limits, &loopback).await.expect_err("no secret");
    assert_eq!(
        err.to_string(),
        "webhook `erp`: its secret `SWITCHYARD_WEBHOOK_SECRET_HOOKS__TEST` is not set on this server"
    );
    // Set but empty is the same.
    std::env::set_var("SWITCHYARD_WEBHOOK_SECRET_HOOKS__TEST", "");
    let empty = api::publish::publish(&db.owner, &package, "test", None, &limits, &loopback).await.expect_err("empty");
    assert_eq!(empty.to_string(), err.to_string());
    let versions: i64 =
        sqlx::query_scalar("select count(*) from config_versions").fetch_one(&db.owner).await.expect("count");
    assert_eq!(versions, 0);

    std::env::set_var("SWITCHYARD_WEBHOOK_SECRET_HOOKS__TEST", "a-long-enough-signing-secret-0123456789");
    // A private destination is refused unless allowed.
    let closed = Destinations::new(Vec::new());
    let err =
        api::publish::publish(&db.owner, &package, "test", None, &limits, &closed).await.expect_err("loopback refused");
    assert!(err.to_string().contains("erp"), "{err}");

    let applied = api::publish::publish(&db.owner, &package, "test", None, &limits, &loopback).await.expect("publish");
    assert!(applied.new_version);
    let s = TestServer::start(&db, "hooks").await;
    let admin = s.token(&db, "admin@hooks.test").await;
    let r = s.get("webhooks", &admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let hooks = r.body["data"].as_array().expect("list");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["url"], "http://127.0.0.1:9/switchyard");
    assert!(!r.body.to_string().contains("a-long-enough-signing-secret"), "the secret is never shown");
}

/// A package of tenant `hooks` may name only `SWITCHYARD_WEBHOOK_SECRET_HOOKS__<NAME>` variables:
/// any other name (set on the server or not, another tenant's secret included) is refused alike,
/// and the answer never tells which variables exist.
#[tokio::test]
async fn a_package_cannot_sign_with_other_server_variables() {
    let db = test_db().await;
    let limits = Limits::default();
    let loopback = Destinations::new(parse_nets("127.0.0.1").expect("nets"));
    let base = Package::load_dir(&package_dir("hooks")).expect("package");
    let with_env = |name: &str| {
        let mut p = base.clone();
        p.tenant.webhooks[0].secret_env = name.to_string();
        p
    };
    std::env::set_var("SWITCHYARD_SERVER_ONLY_SECRET", "a-long-enough-server-secret-0123456789");
    std::env::set_var("SWITCHYARD_WEBHOOK_SECRET_lower", "a-long-enough-server-secret-0123456789");
    std::env::set_var("SWITCHYARD_WEBHOOK_SECRET_OTHER__ERP", "another-tenants-signing-secret-0123456789");
    std::env::set_var("SWITCHYARD_WEBHOOK_SECRET_HOOKS_X__ERP", "another-tenants-signing-secret-0123456789");

    let mut messages = Vec::new();
    for name in [
        "SWITCHYARD_SERVER_ONLY_SECRET",
        "PATH",
        "DATABASE_URL",
        "NOT_SET_ANYWHERE_0123",
        "SWITCHYARD_WEBHOOK_SECRET_",
        "SWITCHYARD_WEBHOOK_SECRET_lower",
        // Tenants `other` and `hooks-x`: one tenant cannot name another's secret.
        "SWITCHYARD_WEBHOOK_SECRET_OTHER__ERP",
        "SWITCHYARD_WEBHOOK_SECRET_HOOKS_X__ERP",
        "SWITCHYARD_WEBHOOK_SECRET_HOOKS_ERP",
    ] {
        let err = api::publish::publish(&db.owner, &with_env(name), "test", None, &limits, &loopback)
            .await
            .expect_err("refused");
        let message = err.to_string();
        assert!(message.contains("SWITCHYARD_WEBHOOK_SECRET_HOOKS__<NAME>"), "{name}: {message}");
        assert!(!message.contains(name) || name == "SWITCHYARD_WEBHOOK_SECRET_", "{name} echoed: {message}");
        messages.push(message);
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "one message whatever the name: {messages:?}");
    // A missing variable of the family: one message too, naming only what the package wrote.
    let missing = ["SWITCHYARD_WEBHOOK_SECRET_HOOKS__NOT_SET_1", "SWITCHYARD_WEBHOOK_SECRET_HOOKS__NOT_SET_2"];
    for name in missing {
        let err = api::publish::publish(&db.owner, &with_env(name), "test", None, &limits, &loopback)
            .await
            .expect_err("missing");
        assert_eq!(err.to_string(), format!("webhook `erp`: its secret `{name}` is not set on this server"));
    }
    let versions: i64 =
        sqlx::query_scalar("select count(*) from config_versions").fetch_one(&db.owner).await.expect("count");
    assert_eq!(versions, 0, "nothing was published");

    // `tenant validate` (and the config API) report it with its path, before anything runs.
    let report = tenants::export::validate_package(&with_env("PATH"), &limits).expect("validate");
    let problem = report.errors().find(|p| p.path == "/webhooks/0/secret_env").expect("a secret_env problem");
    assert!(problem.message.contains("SWITCHYARD_WEBHOOK_SECRET_HOOKS__<NAME>"), "{problem:?}");
    assert_eq!(report.errors().count(), 1, "{report}");
    let fine = tenants::export::validate_package(&base, &limits).expect("validate");
    assert!(!fine.has_errors(), "{fine}");

    // Over HTTP: 422, the problem named.
    let s = TestServer::start(&db, "hooks").await;
    let admin = s.token(&db, "admin@hooks.test").await;
    let r = s.post("config/apply", &admin, &with_env("SWITCHYARD_SERVER_ONLY_SECRET").to_json()).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["problems"][0]["path"], "/webhooks/0/secret_env", "{:?}", r.body);
    assert!(!r.body.to_string().contains("SWITCHYARD_SERVER_ONLY_SECRET"), "{:?}", r.body);
    let r = s.post("config/validate", &admin, &with_env("DATABASE_URL").to_json()).await;
    assert_eq!((r.status, &r.body["valid"]), (200, &json!(false)), "{:?}", r.body);
    // A name of the family that the server lacks: refused when applying, one message.
    let r = s.post("config/apply", &admin, &with_env("SWITCHYARD_WEBHOOK_SECRET_HOOKS__NOT_SET_1").to_json()).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);
    assert_eq!(
        r.body["error"]["details"]["problems"][0]["message"],
        "webhook `erp`: its secret `SWITCHYARD_WEBHOOK_SECRET_HOOKS__NOT_SET_1` is not set on this server",
        "{:?}",
        r.body
    );
    assert_eq!(r.body["error"]["details"]["problems"][0]["path"], "/webhooks/0/secret_env", "{:?}", r.body);
}
