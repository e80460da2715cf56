//! Titles that name references by their entities' titles (`{{ customer_id | title_of }}`), over
//! real HTTP on chemichemi: every answer of an entity (one, a list, the inbox, a transition's)
//! names what the reader may see, and keeps the id of what it may not (a type without `view`, a
//! row outside a record rule); the example tenant's stock levels name their product and
//! warehouse; the migration report names them too.

use std::collections::HashMap;

use api::state::Ops;
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, TestServer};
use switchyard_tests::test_db;
use tenants::Package;

/// chemichemi, with orders titled by their number, customer and warehouse.
fn package() -> Package {
    let mut p = Package::load_dir(&package_dir("chemichemi")).expect("chemichemi");
    let order = p.types.iter_mut().find(|t| t.name.as_str() == "order").expect("order type");
    order.title =
        Some("{{ order_number }} for {{ customer_id | title_of }} from {{ warehouse_id | title_of }}".to_string());
    p
}

/// The `display` of every entity of a list (one page), by id.
fn displays(body: &Value) -> HashMap<String, String> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| (e["id"].as_str().expect("id").to_string(), e["display"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[tokio::test]
async fn titles_name_the_references_the_reader_may_see() {
    let db = test_db().await;
    let unlimited = api::config::OpsConfig { rate_limit_user: None, rate_limit_ip: None, ..Default::default() };
    let s = TestServer::start_package(&db, &package(), Ops::new(unlimited)).await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let buyer = s.token(&db, "buyer@chemichemi.test").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;

    let title_of = |type_name: &'static str, key: &'static str| {
        let s = &s;
        let admin = &admin;
        async move {
            let r = s.get(&format!("entities/{type_name}/{}", s.sample(key)), admin).await;
            assert_eq!(r.status, 200, "{r:?}");
            r.body["display"].as_str().expect("a title").to_string()
        }
    };
    let (savanna, pwani, main) = (
        title_of("customer", "savanna_hotel").await,
        title_of("customer", "pwani_traders").await,
        title_of("warehouse", "main").await,
    );
    assert!(!savanna.is_empty() && savanna != s.sample("savanna_hotel"), "{savanna}");

    // Created by the admin for the hotel: every answer names the customer and the warehouse.
    let created = s
        .post(
            "entities/order",
            &admin,
            &json!({ "data": { "customer_id": s.sample("savanna_hotel"), "warehouse_id": s.sample("main"),
                               "items": [{ "product_id": s.sample("lpg6"), "quantity": 1 }] } }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let order = created.body["id"].as_str().expect("id").to_string();
    let number = created.body["data"]["order_number"].as_str().expect("number").to_string();
    let full = format!("{number} for {savanna} from {main}");
    assert_eq!(created.body["display"], full.as_str(), "the create's answer");
    let got = s.get(&format!("entities/order/{order}"), &admin).await;
    assert_eq!(got.body["display"], full.as_str());
    let list = s.get("entities/order?limit=500", &admin).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let titles = displays(&list.body);
    assert_eq!(titles.get(&order).map(String::as_str), Some(full.as_str()));
    // Every order of the list is titled with names, none with an id.
    for (id, title) in &titles {
        assert!(title.contains(" for ") && !title.contains(&s.sample("main")), "{id}: {title}");
    }
    let fired = s.fire(&admin, "order", &order, "submitOrder", json!({})).await;
    assert_eq!(fired.status, 200, "{:?}", fired.body);
    assert_eq!(fired.body["entity"]["display"], full.as_str(), "the transition's answer");
    // The answer's entity is the row as stored (the write does not send the data back: the
    // engine answers what it wrote), equal as JSON to what a read gives.
    let after = s.get(&format!("entities/order/{order}"), &admin).await;
    for key in ["data", "state", "version", "updated_at", "updated_by"] {
        assert_eq!(fired.body["entity"][key], after.body[key], "{key}");
    }

    // The hotel's buyer sees its company (record rule) but may not view warehouses: the
    // warehouse keeps its id.
    let seen_by_buyer = s.get(&format!("entities/order/{order}"), &buyer).await;
    assert_eq!(seen_by_buyer.status, 200, "{:?}", seen_by_buyer.body);
    assert_eq!(seen_by_buyer.body["display"], format!("{number} for {savanna} from {}", s.sample("main")).as_str());

    // A sales rep sees the orders it created, but only the customers of its territories: an order
    // it made for the coast's customer names that customer by id for the rep, by name for the admin.
    let made = s
        .post(
            "entities/order",
            &sales,
            &json!({ "data": { "customer_id": s.sample("pwani_traders"), "warehouse_id": s.sample("main"),
                               "items": [{ "product_id": s.sample("lpg6"), "quantity": 1 }] } }),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let coast = made.body["id"].as_str().expect("id").to_string();
    let coast_number = made.body["data"]["order_number"].as_str().expect("number").to_string();
    assert_eq!(
        made.body["display"],
        format!("{coast_number} for {} from {main}", s.sample("pwani_traders")).as_str(),
        "the rep does not see the coast's customer"
    );
    let for_rep = displays(&s.get("entities/order?limit=500", &sales).await.body);
    assert_eq!(
        for_rep.get(&coast).map(String::as_str),
        Some(format!("{coast_number} for {} from {main}", s.sample("pwani_traders")).as_str())
    );
    let for_admin = s.get(&format!("entities/order/{coast}"), &admin).await;
    assert_eq!(for_admin.body["display"], format!("{coast_number} for {pwani} from {main}").as_str());
}

#[tokio::test]
async fn stock_levels_name_their_product_and_warehouse() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let r = s.get("entities/inventory?limit=5", &admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rows = r.body["data"].as_array().expect("data");
    assert!(!rows.is_empty(), "the example tenant has stock levels");
    for row in rows {
        let title = |type_name: &str, field: &str| {
            let path = format!("entities/{type_name}/{}", row["data"][field].as_str().expect("a reference"));
            let (s, admin) = (&s, &admin);
            async move { s.get(&path, admin).await.body["display"].as_str().expect("a title").to_string() }
        };
        let (product, warehouse) = (title("product", "product_id").await, title("warehouse", "warehouse_id").await);
        assert_eq!(row["display"], format!("Stock of {product} in {warehouse}").as_str(), "{row}");
    }
}

#[tokio::test]
async fn the_migration_report_names_references_by_title() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let order = s
        .create(
            &admin,
            "order",
            json!({ "customer_id": s.sample("savanna_hotel"), "warehouse_id": s.sample("main"),
                    "items": [{ "product_id": s.sample("lpg6"), "quantity": 1 }] }),
        )
        .await;
    let r = s.post("config/apply", &admin, &package().to_json()).await;
    assert_eq!((r.status, &r.body["version"]), (201, &json!(2)), "{:?}", r.body);
    let r = s.post("config/migrate", &admin, &json!({ "to": 2, "dry_run": true })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let lines = r.body["entities"].as_array().expect("entities");
    let stock = lines.iter().find(|e| e["type"] == "inventory").expect("a stock level in the report");
    let id = stock["id"].as_str().expect("id");
    let shown = s.get(&format!("entities/inventory/{id}"), &admin).await;
    let title = shown.body["display"].as_str().expect("a title");
    assert!(title.starts_with("Stock of ") && !title.contains(&s.sample("main")), "{title}");
    assert_eq!(stock["title"], title, "{stock}");
    // The orders' new title names their customers in the report, as the API will.
    let order = lines.iter().find(|e| e["id"] == order["id"]).expect("the order in the report");
    let title = order["title"].as_str().expect("an order's title");
    assert!(title.contains(" for ") && title.contains(" from ") && !title.contains(&s.sample("main")), "{title}");
}
