//! Names from outside, parsed once where they come in (`engine::names`, `api::extract::path`):
//! a text that cannot be a tenant slug, an entity type, an id or a transition names nothing, and
//! is answered as an unknown one is, in the envelope; the order of the checks stays (a bad token
//! is 401 before a bad slug is 403).

use reqwest::Method;
use serde_json::json;
use switchyard_tests::server::TestServer;
use switchyard_tests::test_db;

#[tokio::test]
async fn texts_that_cannot_be_names_are_answered_as_unknown_ones() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let manager = s.token(&db, "manager@chemichemi.test").await;
    let missing = uuid::Uuid::now_v7();

    // {type}: not a type name is an unknown type.
    for path in ["entities/Order", "entities/order-line", "types/Order"] {
        let r = s.get(path, &manager).await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{path}: {:?}", r.body);
    }
    let r = s.get("entities/Order", &manager).await;
    assert_eq!(r.body["error"]["message"], "unknown entity type `Order`");
    let unknown = s.get("entities/spaceship", &manager).await;
    assert_eq!(unknown.body["error"]["message"], "unknown entity type `spaceship`");

    // {id}: not a uuid is an unknown entity, also when the type is no type name either.
    for path in ["entities/order/not-a-uuid/history", "entities/Order/not-a-uuid"] {
        let r = s.get(path, &manager).await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{path}: {:?}", r.body);
        assert_eq!(r.body["error"]["message"], "entity not found", "{path}");
    }

    // {name}: not a transition name is an unknown transition, before any entity is read (the
    // entity does not exist: a valid name gets that answer instead).
    let one = s.url(&format!("entities/order/{missing}/transitions/submit%20order"));
    let r = s.request(Method::POST, &one, Some(&manager), Some(&json!({})), &[]).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"], json!({ "type": "order", "transition": "submit order" }));
    let r = s.fire(&manager, "order", &missing.to_string(), "submitOrder", json!({})).await;
    assert_eq!((r.status, r.body["error"]["message"].as_str()), (404, Some("entity not found")), "{:?}", r.body);
    let bulk = s.post("entities/order/transitions/submit-order", &manager, &json!({ "ids": [] })).await;
    assert_eq!((bulk.status, bulk.code()), (404, "NOT_FOUND"), "{:?}", bulk.body);
    assert_eq!(bulk.body["error"]["details"]["transition"], "submit-order");

    // {tenant}: not a slug is no tenant of the token (403), once the token is checked (401).
    let types = format!("{}/api/v1/t/Chemi_Chemi/types", s.base);
    let r = s.request(Method::GET, &types, Some(&manager), None, &[]).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    let r = s.request(Method::GET, &types, Some("not-a-token"), None, &[]).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{:?}", r.body);

    // Login: a tenant that is no slug is refused like an unknown one.
    let login = format!("{}/api/v1/auth/login", s.base);
    let mut answers = Vec::new();
    for tenant in ["Chemi Chemi!", "nosuchtenant"] {
        let body = json!({ "tenant": tenant, "email": "manager@chemichemi.test", "password": "whatever-it-is" });
        let r = s.request(Method::POST, &login, None, Some(&body), &[]).await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{tenant}: {:?}", r.body);
        answers.push(r.body["error"].clone());
    }
    assert_eq!(answers[0], answers[1], "the same refusal");
}
