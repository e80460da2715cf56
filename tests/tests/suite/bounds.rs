//! The bounds of what an admin names over the API — the name of a user or an API key, the secret
//! of a webhook — are defined once (`api::limits`, `api::workers::webhooks`) and are the same
//! in the handler and in the tenant's OpenAPI document: a value at the bound is taken, one
//! character more is the 422 at its field, and the document states the bound.

use serde_json::{json, Value};
use switchyard_tests::server::{loopback_webhooks, TestServer};
use switchyard_tests::test_db;

use api::limits::MAX_NAME_CHARS;
use api::state::Ops;
use api::workers::webhooks::{MAX_SECRET_LEN, MIN_SECRET_LEN};

/// The schema of a request body's property in the document.
fn property<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["properties"][name]
}

#[tokio::test]
async fn names_and_secrets_are_bounded_where_the_document_says() {
    let db = test_db().await;
    let s = TestServer::start_with(&db, "sandbox", Ops::new(loopback_webhooks())).await;
    let admin = s.token(&db, "admin@sandbox.test").await;
    let at = "n".repeat(MAX_NAME_CHARS);
    let over = "n".repeat(MAX_NAME_CHARS + 1);

    let r = s.post("users", &admin, &json!({ "email": "at@sandbox.test", "name": at, "roles": ["user"] })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s.post("users", &admin, &json!({ "email": "over@sandbox.test", "name": over, "roles": ["user"] })).await;
    assert_eq!((r.status, r.code(), r.error_paths()), (422, "VALIDATION_FAILED", vec!["/name"]), "{:?}", r.body);

    let r = s.post("api-keys", &admin, &json!({ "name": at, "roles": ["user"] })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s.post("api-keys", &admin, &json!({ "name": over, "roles": ["user"] })).await;
    assert_eq!((r.status, r.code(), r.error_paths()), (422, "VALIDATION_FAILED", vec!["/name"]), "{:?}", r.body);

    let hook = |secret: String| json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"], "secret": secret });
    for len in [MIN_SECRET_LEN, MAX_SECRET_LEN] {
        let r = s.post("webhooks", &admin, &hook("s".repeat(len))).await;
        assert_eq!(r.status, 201, "a secret of {len}: {:?}", r.body);
    }
    for len in [MIN_SECRET_LEN - 1, MAX_SECRET_LEN + 1] {
        let r = s.post("webhooks", &admin, &hook("s".repeat(len))).await;
        assert_eq!((r.status, r.error_paths()), (422, vec!["/secret"]), "a secret of {len}: {:?}", r.body);
    }

    let doc = s.get("openapi.json", &admin).await.body;
    let tenant = format!("/api/v1/t/{}", s.slug);
    assert_eq!(property(&doc, &format!("{tenant}/users"), "post", "name")["maxLength"], json!(MAX_NAME_CHARS));
    assert_eq!(property(&doc, &format!("{tenant}/api-keys"), "post", "name")["maxLength"], json!(MAX_NAME_CHARS));
    let secret = property(&doc, &format!("{tenant}/webhooks"), "post", "secret");
    assert_eq!((&secret["minLength"], &secret["maxLength"]), (&json!(MIN_SECRET_LEN), &json!(MAX_SECRET_LEN)));
}
