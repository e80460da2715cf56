//! A published version's comment (the studio's publish dialog, `tenant apply --comment`), over
//! real HTTP: `POST …/config/apply?comment=…` keeps it on the new version, the versions list shows
//! it with who published and when; republishing the same package keeps the first comment; a
//! blank comment is none, a long one is refused before anything is published.

use reqwest::{Method, Url};
use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::test_db;

const ADMIN: &str = "admin@chemichemi.test";

async fn apply(s: &TestServer, token: &str, package: &Value, comment: Option<&str>) -> Reply {
    let url = match comment {
        Some(c) => Url::parse_with_params(&s.url("config/apply"), [("comment", c)]).expect("url").to_string(),
        None => s.url("config/apply"),
    };
    s.request(Method::POST, &url, Some(token), Some(package), &[]).await
}

fn renamed(package: &Value, name: &str) -> Value {
    let mut p = package.clone();
    p["tenant"]["name"] = json!(name);
    p
}

#[tokio::test]
async fn the_versions_list_shows_who_published_when_and_why() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let live = s.get("config/export", &admin).await.body;

    let r = apply(&s, &admin, &renamed(&live, "Chemichemi Ltd"), Some("  Renamed the tenant: Ltd  ")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["version"], 2);

    // The same package again, with another comment: the version and its comment stay.
    let r = apply(&s, &admin, &renamed(&live, "Chemichemi Ltd"), Some("again")).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(2)), "{:?}", r.body);

    // A blank comment is none; so is none.
    assert_eq!(apply(&s, &admin, &renamed(&live, "Chemichemi 3"), Some("   ")).await.status, 201);
    assert_eq!(apply(&s, &admin, &renamed(&live, "Chemichemi 4"), None).await.status, 201);

    // Too long: refused at /comment, and nothing is published.
    let long = "x".repeat(tenants::apply::MAX_COMMENT_CHARS + 1);
    let r = apply(&s, &admin, &renamed(&live, "Chemichemi 5"), Some(&long)).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(r.error_paths(), vec!["/comment"], "{:?}", r.body);
    // At the bound: fine (characters, not bytes).
    let most = "é".repeat(tenants::apply::MAX_COMMENT_CHARS);
    assert_eq!(apply(&s, &admin, &renamed(&live, "Chemichemi 6"), Some(&most)).await.status, 201);

    let list = s.get("config/versions", &admin).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let versions = list.body["data"].as_array().expect("data");
    let comments: Vec<&Value> = versions.iter().map(|v| &v["comment"]).collect();
    assert_eq!(
        comments,
        vec![&Value::Null, &json!("Renamed the tenant: Ltd"), &Value::Null, &Value::Null, &json!(most)],
        "{:?}",
        list.body
    );
    assert_eq!(versions[1]["created_by"], ADMIN);
    assert!(versions[1]["created_at"].as_str().is_some());
    assert_eq!(versions[4]["live"], true);

    // Not an admin: no list, no publishing.
    let sales = s.token(&db, "sales@chemichemi.test").await;
    assert_eq!(s.get("config/versions", &sales).await.status, 403);
    assert_eq!(apply(&s, &sales, &renamed(&live, "Sales"), Some("mine")).await.status, 403);
}
