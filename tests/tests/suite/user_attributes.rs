//! User attributes over real HTTP on chemichemi: the package's `buyer@` carries the customer it
//! buys for (`customer_id: "@savanna_hotel"`), and the `customer` role's record rules compare
//! it with the entity (`entity.customer_id == actor.attributes.customer_id`): a buyer sees
//! their company and its orders only, and may order for it only (its create rule). Admins set
//! a user's attributes over the users API, checked against the live version's declarations;
//! a change reaches tokens already issued, with the credential cache on, whether this process
//! made it or another (the `users` trigger notifies).

use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::test_db;

/// The ids of a list as `token`, and its total.
async fn ids(s: &TestServer, token: &str, type_name: &str) -> (Vec<String>, i64) {
    let r = s.get(&format!("entities/{type_name}?total=true&limit=500"), token).await;
    assert_eq!(r.status, 200, "{type_name}: {:?}", r.body);
    let ids = r.body["data"].as_array().expect("data").iter().map(|e| e["id"].as_str().expect("id").to_string());
    (ids.collect(), r.body["total"].as_i64().expect("total"))
}

fn order(s: &TestServer, customer: &str) -> Value {
    json!({ "customer_id": s.sample(customer), "warehouse_id": s.sample("main"),
            "items": [{ "product_id": s.sample("lpg6"), "quantity": 1 }] })
}

async fn patch(s: &TestServer, token: &str, path: &str, body: &Value) -> Reply {
    s.request(reqwest::Method::PATCH, &s.url(path), Some(token), Some(body), &[]).await
}

#[tokio::test]
async fn a_buyer_sees_and_orders_for_their_customer_only_and_admins_set_attributes() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let _workers = s.workers_with_auth_cache().await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let manager = s.token(&db, "manager@chemichemi.test").await;
    let buyer = s.token(&db, "buyer@chemichemi.test").await;
    let (savanna, pwani) = (s.sample("savanna_hotel"), s.sample("pwani_traders"));

    // The package's buyer carries Savanna's id ("@savanna_hotel" resolved when applied).
    let users = s.get("users", &admin).await;
    let row = users.body["data"].as_array().expect("users").iter().find(|u| u["email"] == "buyer@chemichemi.test");
    assert_eq!(row.expect("buyer")["attributes"], json!({ "customer_id": savanna }));

    let savanna_order =
        s.create(&manager, "order", order(&s, "savanna_hotel")).await["id"].as_str().expect("id").to_string();
    let pwani_order =
        s.create(&manager, "order", order(&s, "pwani_traders")).await["id"].as_str().expect("id").to_string();

    // Their company and its orders only, through lists and by id.
    assert_eq!(ids(&s, &buyer, "customer").await, (vec![savanna.clone()], 1));
    assert_eq!(ids(&s, &buyer, "order").await, (vec![savanna_order.clone()], 1));
    assert_eq!(s.get(&format!("entities/order/{pwani_order}"), &buyer).await.status, 404);
    assert_eq!(s.get(&format!("entities/customer/{pwani}"), &buyer).await.status, 404);
    assert_eq!(s.get(&format!("entities/order/{savanna_order}"), &buyer).await.status, 200);

    // They order for their company; not for another (the create rule reads the attribute too).
    let mine = s.create(&buyer, "order", order(&s, "savanna_hotel")).await;
    assert_eq!(mine["data"]["customer_id"], json!(savanna));
    let r = s.post("entities/order", &buyer, &json!({ "data": order(&s, "pwani_traders") })).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(ids(&s, &buyer, "order").await.1, 2);

    // An admin creates a buyer for Pwani over the API.
    let r = s
        .post(
            "users",
            &admin,
            &json!({ "email": "buyer2@chemichemi.test", "roles": ["customer"], "attributes": { "customer_id": pwani } }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["attributes"], json!({ "customer_id": pwani }));
    let buyer2_id = r.body["id"].as_str().expect("id").to_string();
    let buyer2 = s.token(&db, "buyer2@chemichemi.test").await;
    assert_eq!(ids(&s, &buyer2, "order").await, (vec![pwani_order.clone()], 1));

    // Moved to Savanna: the same token follows at once (this process dropped its cached answer).
    let r =
        patch(&s, &admin, &format!("users/{buyer2_id}"), &json!({ "attributes": { "customer_id": savanna } })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["attributes"], json!({ "customer_id": savanna }));
    assert_eq!(ids(&s, &buyer2, "customer").await, (vec![savanna.clone()], 1));
    assert_eq!(ids(&s, &buyer2, "order").await.1, 2);

    // Ill-typed or undeclared: 422 at each attribute, nothing written.
    let r = patch(
        &s,
        &admin,
        &format!("users/{buyer2_id}"),
        &json!({ "name": "Renamed", "attributes": { "customer_id": "not-a-uuid", "region": "coast" } }),
    )
    .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.code(), "VALIDATION_FAILED");
    assert_eq!(r.error_paths(), ["/attributes/customer_id", "/attributes/region"], "{:?}", r.body);
    let now = s.get(&format!("users/{buyer2_id}"), &admin).await;
    assert_eq!(now.body["attributes"], json!({ "customer_id": savanna }));
    assert_ne!(now.body["name"], "Renamed");
    let r = s
        .post(
            "users",
            &admin,
            &json!({ "email": "buyer3@chemichemi.test", "roles": ["customer"], "attributes": { "customer_id": 7 } }),
        )
        .await;
    assert_eq!((r.status, r.error_paths()), (422, vec!["/attributes/customer_id"]), "{:?}", r.body);
    let users = s.get("users", &admin).await;
    assert!(!users.body["data"].as_array().expect("users").iter().any(|u| u["email"] == "buyer3@chemichemi.test"));

    // Changed by another process (a package apply, here on the owner pool): the trigger
    // notifies, the listener drops the cached answer, the token follows.
    let mut user: tenants::package::DevUser = serde_json::from_value(json!({
        "email": "buyer2@chemichemi.test", "name": "Bao Buyer", "roles": ["customer"],
        "attributes": { "customer_id": "@pwani_traders" } }))
    .expect("user");
    tenants::apply::upsert_users(&db.owner, s.tenant, std::slice::from_ref(&user), None).await.expect("users");
    // Within 5 s: sooner than the cache's 10 s TTL, so only the notification explains it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while ids(&s, &buyer2, "customer").await.0 != vec![pwani.clone()] {
        assert!(std::time::Instant::now() < deadline, "the change did not reach the token in 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // No attribute: the comparison is false, so the buyer sees nothing.
    user.attributes.clear();
    tenants::apply::upsert_users(&db.owner, s.tenant, &[user], None).await.expect("users");
    // Within 5 s: sooner than the cache's 10 s TTL, so only the notification explains it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while ids(&s, &buyer2, "customer").await.1 != 0 {
        assert!(std::time::Instant::now() < deadline, "the change did not reach the token in 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ids(&s, &buyer2, "order").await, (vec![], 0));
}
