//! The studio's live preview of title and number templates (`POST …/config/draft/preview-template`),
//! over real HTTP: rendered by the server's bounded engine as it would render the type's title or
//! number, a bad template answered in the envelope with where it is, admins only, and a token of
//! one tenant gets nothing on another tenant's path.

use chrono::Datelike;
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, Reply, TestServer};
use switchyard_tests::test_db;
use tenants::Package;

const ADMIN: &str = "admin@chemichemi.test";

async fn preview(s: &TestServer, token: &str, body: &Value) -> Reply {
    s.request(Method::POST, &s.url("config/draft/preview-template"), Some(token), Some(body), &[]).await
}

#[tokio::test]
async fn a_template_renders_over_the_data_as_the_server_renders_it() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;

    // A title: the data's fields, trimmed; what it reads is listed.
    let r = preview(
        &s,
        &admin,
        &json!({ "template": "  {{ order_number }} for {{ customer.name | upper }} ", "data": {
            "order_number": "ORD-2026-000007", "customer": { "name": "Acme" } } }),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["rendered"], "ORD-2026-000007 for ACME");
    assert_eq!(r.body["variables"], json!(["customer.name", "order_number"]));

    // A number: `seq` (given or 1), `year`, `month`, `day` besides the fields, and winning over them.
    let year = chrono::Utc::now().year();
    let r = preview(
        &s,
        &admin,
        &json!({ "template": "ORD-{{ year }}-{{ seq | pad(6) }}", "kind": "number", "seq": 42, "data": { "seq": "mine" } }),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["rendered"], format!("ORD-{year}-000042"));
    let r = preview(&s, &admin, &json!({ "template": "N{{ seq }}", "kind": "number" })).await;
    assert_eq!((r.status, r.body["rendered"].as_str()), (200, Some("N1")), "{:?}", r.body);

    // A missing value renders as nothing (a title that renders blank falls back to another name).
    let r = preview(&s, &admin, &json!({ "template": "{{ nothing }}", "data": {} })).await;
    assert_eq!((r.status, r.body["rendered"].as_str()), (200, Some("")), "{:?}", r.body);
}

#[tokio::test]
async fn a_bad_template_is_refused_with_where_it_is() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;

    // Does not parse: 422 INVALID_TEMPLATE at its line and column.
    let r = preview(&s, &admin, &json!({ "template": "line one\n{{ order_number " })).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_TEMPLATE"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["path"], "/template");
    assert_eq!(r.body["error"]["details"]["line"], 2, "{:?}", r.body);
    assert!(r.body["error"]["details"]["column"].as_u64().is_some(), "{:?}", r.body);

    // Outside the language tenants may use: loops, function calls, unknown filters, too long.
    for template in
        ["{% for x in items %}{{ x }}{% endfor %}", "{{ range(10) }}", "{{ x | tojson }}", &"x".repeat(2000)]
    {
        let r = preview(&s, &admin, &json!({ "template": template })).await;
        assert_eq!((r.status, r.code()), (422, "INVALID_TEMPLATE"), "{template}: {:?}", r.body);
        assert!(r.body["error"]["message"].as_str().is_some_and(|m| m.starts_with("/template: ")), "{:?}", r.body);
    }
    // An empty number is no number.
    let r = preview(&s, &admin, &json!({ "template": "{{ missing }}", "kind": "number" })).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_TEMPLATE"), "{:?}", r.body);

    // Bad bodies: the envelope, at their field.
    for (body, path) in [
        (json!({ "template": "x", "data": [1] }), "/data"),
        (json!({ "template": "x", "seq": -1 }), "/seq"),
        (json!({ "template": "x", "kind": "subject" }), "/kind"),
        (json!({ "template": "x", "extra": 1 }), ""),
    ] {
        let r = preview(&s, &admin, &body).await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{body}: {:?}", r.body);
        assert!(r.error_paths().iter().any(|p| p.starts_with(path)), "{body}: {:?}", r.body);
    }
}

#[tokio::test]
async fn only_the_tenants_admins_may_preview() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let body = json!({ "template": "{{ name }}", "data": { "name": "x" } });

    let sales = s.token(&db, "sales@chemichemi.test").await;
    let r = preview(&s, &sales, &body).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    let r = s.request(Method::POST, &s.url("config/draft/preview-template"), None, Some(&body), &[]).await;
    assert_eq!(r.status, 401, "{:?}", r.body);

    // Another tenant's admin, on this tenant's path: refused; on its own: fine.
    let mut rival = Package::load_dir(&package_dir("chemichemi")).expect("package");
    rival.tenant.slug = "rival".into();
    rival.data.clear();
    let b = s.second_tenant(&db, rival).await;
    let b_admin = b.token(&db, ADMIN).await;
    let r = preview(&s, &b_admin, &body).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = preview(&b, &b_admin, &body).await;
    assert_eq!((r.status, r.body["rendered"].as_str()), (200, Some("x")), "{:?}", r.body);
}

#[tokio::test]
async fn a_title_previewed_names_references_by_their_titles() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let product = s.get(&format!("entities/product/{}", s.sample("lpg6")), &admin).await;
    let title = product.body["display"].as_str().expect("the product's title").to_string();
    let gone = uuid::Uuid::now_v7().to_string();
    let r = preview(
        &s,
        &admin,
        &json!({ "template": "Stock of {{ product_id | title_of }} in {{ warehouse_id | title_of }}",
                 "data": { "product_id": s.sample("lpg6"), "warehouse_id": gone } }),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A reference to no entity keeps its id, as in an answer.
    assert_eq!(r.body["rendered"], format!("Stock of {title} in {gone}").as_str());
}
