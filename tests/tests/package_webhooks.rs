//! Webhooks declared in a package: published with it (secret from the server's environment,
//! destination checked), refused before anything is published when either fails.

use api::config::parse_nets;
use api::workers::destination::Destinations;
use engine::limits::Limits;
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
    let err = api::publish::publish(&db.owner, &package, "test", &limits, &loopback).await.expect_err("no secret");
    assert!(err.to_string().contains("SWITCHYARD_TEST_HOOK_SECRET"), "{err}");
    let versions: i64 =
        sqlx::query_scalar("select count(*) from config_versions").fetch_one(&db.owner).await.expect("count");
    assert_eq!(versions, 0);

    std::env::set_var("SWITCHYARD_TEST_HOOK_SECRET", "a-long-enough-signing-secret-0123456789");
    // A private destination is refused unless allowed.
    let closed = Destinations::new(Vec::new());
    let err = api::publish::publish(&db.owner, &package, "test", &limits, &closed).await.expect_err("loopback refused");
    assert!(err.to_string().contains("erp"), "{err}");

    let applied = api::publish::publish(&db.owner, &package, "test", &limits, &loopback).await.expect("publish");
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
