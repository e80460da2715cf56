//! A decision table whose rows are entities, over HTTP on two servers sharing one database:
//! staff edit a row on one server and the next transition on either server uses it.

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::TestServer;
use switchyard_tests::test_db;

async fn book(s: &TestServer, token: &str, region: &str, weight: f64) -> Value {
    let created = s.create(token, "shipment", json!({ "region": region, "weight": weight })).await;
    let id = created["id"].as_str().expect("id").to_string();
    let r = s.fire(token, "shipment", &id, "book", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["entity"].clone()
}

#[tokio::test]
async fn rows_edited_as_entities_are_used_by_the_next_transition_on_every_server() {
    let db = test_db().await;
    let a = TestServer::start(&db, "decisions").await;
    let b = TestServer::serve_published(&db, "dtshop").await;
    let (clerk_a, admin_b) = (a.token(&db, "clerk@dtshop.test").await, b.token(&db, "admin@dtshop.test").await);
    let clerk_b = b.token(&db, "clerk@dtshop.test").await;

    // The sample rows: north by van, anything else by courier; fees 5, plus 7.5 over 10 kg.
    let booked = book(&a, &clerk_a, "north", 12.0).await;
    assert_eq!(booked["data"]["carrier"], "van", "{booked}");
    assert_eq!(booked["data"]["fee"], 12.5, "{booked}");
    assert_eq!(book(&b, &clerk_b, "south", 1.0).await["data"]["carrier"], "courier");

    // On server B, an admin edits the north rule; server A's next transition uses it.
    let north = a.sample("north");
    let r = b
        .request(
            Method::PATCH,
            &b.url(&format!("entities/carrier_rule/{north}")),
            Some(&admin_b),
            Some(&json!({ "data": { "carrier": "truck" } })),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(book(&a, &clerk_a, "north", 1.0).await["data"]["carrier"], "truck");
    assert_eq!(book(&b, &clerk_b, "north", 1.0).await["data"]["carrier"], "truck");

    // A new rule created on A, placed first, is used on B.
    b.create(&admin_b, "carrier_rule", json!({ "region": "south", "carrier": "boat", "position": 0 })).await;
    assert_eq!(book(&a, &clerk_a, "south", 1.0).await["data"]["carrier"], "boat");
    assert_eq!(book(&b, &clerk_b, "south", 1.0).await["data"]["carrier"], "boat");

    // A row that does not compile is the tenant's 422 for the transitions that use the table.
    let bad = b.create(&admin_b, "carrier_rule", json!({ "region": "[a..", "carrier": "x", "position": 5 })).await;
    let created = a.create(&clerk_a, "shipment", json!({ "region": "west", "weight": 1 })).await;
    let r = a.fire(&clerk_a, "shipment", created["id"].as_str().expect("id"), "book", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "DECISION_FAILED"), "{:?}", r.body);
    let bad_id = bad["id"].as_str().expect("id");
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains(bad_id), "{:?}", r.body);
}

#[tokio::test]
async fn admins_evaluate_a_table_with_its_trace() {
    let db = test_db().await;
    let s = TestServer::start(&db, "decisions").await;
    let (admin, clerk) = (s.token(&db, "admin@dtshop.test").await, s.token(&db, "clerk@dtshop.test").await);
    let url = s.url("decisions/carrier/evaluate");
    let r = s.post("decisions/carrier/evaluate", &admin, &json!({ "inputs": { "region": "north" } })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["outputs"], json!({ "carrier": "van" }));
    assert_eq!(r.body["trace"]["winner"]["id"], s.sample("north"), "{:?}", r.body);
    assert_eq!(r.body["trace"]["matched"].as_array().map(Vec::len), Some(1));
    let r = s.post("decisions/fees/evaluate", &admin, &json!({ "inputs": { "weight": 20 } })).await;
    assert_eq!(r.body["outputs"], json!({ "fee": 12.5 }), "{:?}", r.body);
    assert_eq!(r.body["trace"]["matched"].as_array().map(Vec::len), Some(2));
    // A wrong input is the caller's 422 with its path; an unknown table a 404; clerks a 403.
    let r = s.post("decisions/fees/evaluate", &admin, &json!({ "inputs": { "weight": "heavy" } })).await;
    assert_eq!((r.status, r.error_paths()), (422, vec!["/inputs/weight"]), "{:?}", r.body);
    let r = s.post("decisions/nope/evaluate", &admin, &json!({})).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = s.request(Method::POST, &url, Some(&clerk), Some(&json!({})), &[]).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
}
