//! The chemichemi example tenant end to end, over real HTTP on a real Postgres: every one of the
//! seed's eight state machines driven through its real behaviour (stock, money, trips, route
//! plans), and every guard of the package failing once with its message.

use std::collections::HashMap;

use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::{test_db, TestDb};

/// The server with a token per demo user.
struct Demo {
    s: TestServer,
    tokens: HashMap<&'static str, String>,
}

const USERS: &[&str] = &[
    "admin",
    "manager",
    "manager2",
    "sales",
    "sales2",
    "warehouse",
    "dispatcher",
    "driver",
    "driver2",
    "finance",
    "solver",
    "viewer",
];

impl Demo {
    async fn start(db: &TestDb) -> Demo {
        let s = TestServer::start(db, "chemichemi").await;
        let mut tokens = HashMap::new();
        for u in USERS {
            tokens.insert(*u, s.token(db, &format!("{u}@chemichemi.test")).await);
        }
        Demo { s, tokens }
    }

    fn t(&self, user: &str) -> &str {
        self.tokens.get(user).unwrap_or_else(|| panic!("no user {user}"))
    }

    fn id(&self, key: &str) -> String {
        self.s.sample(key)
    }

    /// Creates an entity as `user` and returns its id.
    async fn create(&self, user: &str, type_name: &str, data: Value) -> String {
        let e = self.s.create(self.t(user), type_name, data).await;
        e["id"].as_str().expect("id").to_string()
    }

    async fn fire(&self, user: &str, type_name: &str, id: &str, name: &str, input: Value) -> Reply {
        self.s.fire(self.t(user), type_name, id, name, input).await
    }

    /// Fires a transition that must succeed; returns the entity after it.
    async fn ok(&self, user: &str, type_name: &str, id: &str, name: &str, input: Value) -> Value {
        let r = self.fire(user, type_name, id, name, input).await;
        assert_eq!(r.status, 200, "{type_name}.{name} by {user}: {:?}", r.body);
        r.body["entity"].clone()
    }

    /// Fires a transition that a guard (or the script's `fail`) must refuse with `message`.
    async fn refused(&self, user: &str, type_name: &str, id: &str, name: &str, input: Value, message: &str) {
        let r = self.fire(user, type_name, id, name, input).await;
        assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{type_name}.{name} by {user}: {:?}", r.body);
        let got = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{type_name}.{name}: expected {message:?}, got {got:?}");
    }

    /// `PATCH …/entities/{type}/{id}` with `{"data": data}`.
    async fn patch(&self, type_name: &str, id: &str, user: &str, data: Value) -> Reply {
        let url = self.s.url(&format!("entities/{type_name}/{id}"));
        self.s.request(reqwest::Method::PATCH, &url, Some(self.t(user)), Some(&json!({ "data": data })), &[]).await
    }

    async fn get(&self, type_name: &str, id: &str) -> Value {
        let r = self.s.get(&format!("entities/{type_name}/{id}"), self.t("admin")).await;
        assert_eq!(r.status, 200, "get {type_name} {id}: {:?}", r.body);
        r.body
    }

    async fn state(&self, type_name: &str, id: &str) -> String {
        self.get(type_name, id).await["state"].as_str().expect("state").to_string()
    }

    async fn all(&self, type_name: &str) -> Vec<Value> {
        let r = self.s.get(&format!("entities/{type_name}?limit=500"), self.t("admin")).await;
        assert_eq!(r.status, 200, "list {type_name}: {:?}", r.body);
        r.body["data"].as_array().expect("data").clone()
    }

    /// (on hand, reserved) of a product in a warehouse, by sample keys.
    async fn stock(&self, warehouse: &str, product: &str) -> (i64, i64) {
        let (w, p) = (self.id(warehouse), self.id(product));
        let rows = self.all("inventory").await;
        let row = rows
            .iter()
            .find(|e| e["data"]["warehouse_id"] == w.as_str() && e["data"]["product_id"] == p.as_str())
            .unwrap_or_else(|| panic!("no stock of {product} in {warehouse}"));
        (
            row["data"]["quantity_on_hand"].as_i64().expect("on hand"),
            row["data"]["quantity_reserved"].as_i64().unwrap_or(0),
        )
    }

    async fn balance(&self, customer: &str) -> f64 {
        num(&self.get("customer", &self.id(customer)).await["data"]["balance"])
    }

    /// A draft order of `lines` (sample product key, quantity) from warehouse `main`.
    async fn draft_order(&self, customer: &str, lines: &[(&str, i64)]) -> String {
        self.draft_order_at(customer, "main", lines).await
    }

    async fn draft_order_at(&self, customer: &str, warehouse: &str, lines: &[(&str, i64)]) -> String {
        let items: Vec<Value> = lines.iter().map(|(p, q)| json!({ "product_id": self.id(p), "quantity": q })).collect();
        self.create(
            "sales",
            "order",
            json!({ "customer_id": self.id(customer), "warehouse_id": self.id(warehouse), "items": items }),
        )
        .await
    }

    /// An order from `main` submitted by sales, approved by a manager and allocated.
    async fn allocated_order(&self, customer: &str, lines: &[(&str, i64)]) -> String {
        self.allocated_order_at(customer, "main", lines).await
    }

    async fn allocated_order_at(&self, customer: &str, warehouse: &str, lines: &[(&str, i64)]) -> String {
        let order = self.draft_order_at(customer, warehouse, lines).await;
        self.ok("sales", "order", &order, "submitOrder", json!({})).await;
        self.ok("manager", "order", &order, "approveOrder", json!({})).await;
        self.ok("warehouse", "order", &order, "allocateInventory", json!({})).await;
        order
    }

    /// A DRAFT trip from `main` with the given orders, driven by driver@.
    async fn draft_trip(&self, orders: &[&str]) -> String {
        self.create(
            "dispatcher",
            "trip",
            json!({
                "warehouse_id": self.id("main"),
                "scheduled_date": "2026-03-02",
                "driver_id": "driver@chemichemi.test",
                "order_ids": orders,
            }),
        )
        .await
    }

    /// A trip with `orders`, planned, dispatched with truck1 and started by its driver.
    async fn started_trip(&self, orders: &[&str]) -> String {
        let trip = self.draft_trip(orders).await;
        self.ok("dispatcher", "trip", &trip, "planTrip", json!({})).await;
        self.ok("dispatcher", "trip", &trip, "dispatchTrip", json!({ "vehicle_id": self.id("truck1") })).await;
        self.ok("driver", "trip", &trip, "startTrip", json!({})).await;
        trip
    }
}

/// A number, or a decimal field's string (`"1150.00"`), as a number.
fn num(v: &Value) -> f64 {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test]
async fn an_order_goes_from_draft_to_delivered_with_a_short_line_and_its_variance() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let lpg_before = d.stock("main", "lpg6").await;
    let bleach_before = d.stock("main", "bleach5").await;

    let order = d.draft_order("savanna_hotel", &[("lpg6", 10), ("bleach5", 4)]).await;
    let created = d.get("order", &order).await;
    let number = created["data"]["order_number"].as_str().expect("number");
    assert!(number.starts_with("ORD-20") && number.len() == "ORD-2026-000001".len(), "{number}");

    // Priced from the customer's price list (the standard list): 10 × 1150 + 4 × 650.
    let e = d.ok("sales", "order", &order, "submitOrder", json!({})).await;
    assert_eq!(e["state"], "PENDING_APPROVAL");
    assert_eq!(e["data"]["price_list_id"], d.id("standard").as_str());
    assert_eq!(num(&e["data"]["items"][0]["unit_price"]), 1150.0);
    assert_eq!(num(&e["data"]["items"][1]["line_total"]), 2600.0);
    assert_eq!(num(&e["data"]["total_amount"]), 14100.0);
    assert_eq!(e["data"]["delivery_address"]["city"], "Nairobi");

    // Approval: not by sales (role), not by its creator (four-eyes), by a manager.
    let r = d.fire("sales", "order", &order, "approveOrder", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    let e = d.ok("manager", "order", &order, "approveOrder", json!({})).await;
    assert_eq!(e["state"], "APPROVED");
    assert!(e["data"]["approved_by"].is_string());

    d.ok("warehouse", "order", &order, "allocateInventory", json!({})).await;
    assert_eq!(d.stock("main", "lpg6").await, (lpg_before.0, lpg_before.1 + 10));
    assert_eq!(d.stock("main", "bleach5").await, (bleach_before.0, bleach_before.1 + 4));

    // On a trip: dispatched by dispatchTrip, in transit by startTrip.
    let trip = d.started_trip(&[order.as_str()]).await;
    let o = d.get("order", &order).await;
    assert_eq!((o["state"].as_str(), o["data"]["trip_id"].as_str()), (Some("IN_TRANSIT"), Some(trip.as_str())));

    // Delivery: a proof of delivery is required; line 2 is delivered short (3 of 4).
    let r = d.fire("driver", "order", &order, "completeDelivery", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let e = d
        .ok(
            "driver",
            "order",
            &order,
            "completeDelivery",
            json!({ "pod_reference": "POD-SAVANNA-1", "delivered": [{ "line_number": 1, "delivered_quantity": 10 }, { "line_number": 2, "delivered_quantity": 3 }] }),
        )
        .await;
    assert_eq!(e["state"], "DELIVERED");
    assert_eq!(e["data"]["items"][0]["delivered_quantity"], 10);
    assert_eq!(e["data"]["items"][1]["delivered_quantity"], 3);
    assert_eq!(e["data"]["items"][1]["returned_quantity"], 1);
    assert_eq!(num(&e["data"]["delivered_amount"]), 11500.0 + 3.0 * 650.0);

    // Stock: the delivered goods left the shelf, the reservations are released.
    assert_eq!(d.stock("main", "lpg6").await, (lpg_before.0 - 10, lpg_before.1));
    assert_eq!(d.stock("main", "bleach5").await, (bleach_before.0 - 3, bleach_before.1));
    // Money: the customer owes the delivered value.
    assert_eq!(d.balance("savanna_hotel").await, 13450.0);

    // One variance, for the short line, pending review.
    let variances: Vec<Value> =
        d.all("variance").await.into_iter().filter(|v| v["data"]["order_id"] == order.as_str()).collect();
    assert_eq!(variances.len(), 1, "{variances:?}");
    let v = &variances[0];
    assert_eq!(v["state"], "PENDING_REVIEW");
    assert_eq!(v["data"]["product_id"], d.id("bleach5").as_str());
    assert_eq!((&v["data"]["line_number"], &v["data"]["variance_type"]), (&json!(2), &json!("short")));
    assert_eq!(
        (&v["data"]["expected_quantity"], &v["data"]["actual_quantity"], &v["data"]["variance_quantity"]),
        (&json!(4), &json!(3), &json!(-1))
    );
    let variance = v["id"].as_str().expect("id");
    let r = d.fire("warehouse", "variance", variance, "approveVariance", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "a variance code is required: {:?}", r.body);
    let e = d
        .ok("warehouse", "variance", variance, "approveVariance", json!({ "variance_code": "DAMAGED_IN_TRANSIT" }))
        .await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["variance_code"].as_str()),
        (Some("APPROVED"), Some("DAMAGED_IN_TRANSIT"))
    );

    // Every order of the trip is delivered: the trip completes.
    let e = d.ok("driver", "trip", &trip, "completeTrip", json!({})).await;
    assert_eq!(e["state"], "COMPLETED");
    assert!(e["data"]["end_time"].is_string());
}

#[tokio::test]
async fn a_customer_on_a_special_price_list_is_priced_from_it_with_quantity_breaks() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    // Pwani Traders (DRAFT, created by the demo loader) is approved by a manager.
    let pwani = d.id("pwani_traders");
    d.ok("sales2", "customer", &pwani, "submitCustomer", json!({})).await;
    assert_eq!(d.ok("manager", "customer", &pwani, "approveCustomer", json!({})).await["state"], "ACTIVE");

    // The order names no price list: the customer's (wholesale) prices it. The client's own
    // unit prices (a cheaper one, a dearer one) are replaced.
    let order = d
        .create(
            "sales2",
            "order",
            json!({
                "customer_id": pwani,
                "warehouse_id": d.id("coast"),
                "items": [
                    { "product_id": d.id("lpg6"), "quantity": 60, "unit_price": 1 },
                    { "product_id": d.id("lpg6"), "quantity": 5 },
                    { "product_id": d.id("lpg13"), "quantity": 5, "unit_price": 9999 },
                ],
            }),
        )
        .await;
    // Nor may the client pick the list.
    let r = d.patch("order", &order, "sales2", json!({ "price_list_id": d.id("standard") })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(r.error_paths(), ["/data/price_list_id"]);
    let e = d.ok("sales2", "order", &order, "submitOrder", json!({})).await;
    assert_eq!(e["data"]["price_list_id"], d.id("wholesale").as_str());
    let prices: Vec<f64> =
        e["data"]["items"].as_array().expect("items").iter().map(|i| num(&i["unit_price"])).collect();
    assert_eq!(prices, [990.0, 1050.0, 2400.0], "60 reach the 50-unit break, 5 do not");
    assert_eq!(num(&e["data"]["total_amount"]), 60.0 * 990.0 + 5.0 * 1050.0 + 5.0 * 2400.0);

    // A customer without a list buys on the default list, whatever price the client gave.
    let walk_in = d
        .create(
            "manager",
            "customer",
            json!({ "name": "Walk-in Ltd", "phone": "+254 700 000 000", "credit_limit": 10000, "addresses": [{ "address_type": "delivery", "address_line_1": "Kenyatta Avenue 1" }] }),
        )
        .await;
    d.ok("manager", "customer", &walk_in, "submitCustomer", json!({})).await;
    d.ok("manager2", "customer", &walk_in, "approveCustomer", json!({})).await;
    let order = d
        .create(
            "sales2",
            "order",
            json!({ "customer_id": walk_in, "warehouse_id": d.id("main"), "items": [{ "product_id": d.id("lpg6"), "quantity": 2, "unit_price": 0 }] }),
        )
        .await;
    let e = d.ok("sales2", "order", &order, "submitOrder", json!({})).await;
    assert_eq!(e["data"]["price_list_id"], d.id("standard").as_str());
    assert_eq!((num(&e["data"]["items"][0]["unit_price"]), num(&e["data"]["total_amount"])), (1150.0, 2300.0));
}

#[tokio::test]
async fn the_credit_check_counts_the_customers_open_orders() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    // Savanna: credit 50 000, balance 0. Two approved orders of 24 000 leave room for 2 000.
    let a = d.draft_order("savanna_hotel", &[("degreaser20", 5)]).await;
    let b = d.draft_order("savanna_hotel", &[("degreaser20", 5)]).await;
    let c = d.draft_order("savanna_hotel", &[("lpg13", 1)]).await;
    for o in [&a, &b, &c] {
        d.ok("sales", "order", o, "submitOrder", json!({})).await;
    }
    d.ok("manager", "order", &a, "approveOrder", json!({})).await;
    d.ok("manager", "order", &b, "approveOrder", json!({})).await;
    let over = "The order total exceeds the customer's available credit";
    d.refused("manager", "order", &c, "approveOrder", json!({}), over).await;
    // An allocated order is still open.
    d.ok("warehouse", "order", &a, "allocateInventory", json!({})).await;
    d.refused("manager", "order", &c, "approveOrder", json!({}), over).await;
    // The explanation shows what the guard read: the open orders' totals are part of it.
    let r = d.s.get(&format!("entities/order/{c}/transitions"), d.t("manager")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let approve =
        r.body["data"].as_array().expect("list").iter().find(|t| t["name"] == "approveOrder").expect("approve").clone();
    assert_eq!((approve["allowed"].clone(), approve["reason"].clone()), (json!(false), json!("guard")), "{approve}");
    // Cancelling one frees its share of the credit.
    d.ok("manager", "order", &a, "cancelOrder", json!({ "reason": "customer called" })).await;
    assert_eq!(d.ok("manager", "order", &c, "approveOrder", json!({})).await["state"], "APPROVED");
}

#[tokio::test]
async fn a_trip_with_three_orders_moves_them_together_and_completes_when_all_are_resolved() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let o1 = d.allocated_order("savanna_hotel", &[("lpg6", 2)]).await;
    let o2 = d.allocated_order("savanna_hotel", &[("lpg13", 1)]).await;
    let o3 = d.allocated_order("savanna_hotel", &[("lpg6", 3), ("bleach5", 2)]).await;
    let lpg_allocated = d.stock("main", "lpg6").await;

    let trip = d.draft_trip(&[&o1, &o2, &o3]).await;
    let number = d.get("trip", &trip).await["data"]["trip_number"].as_str().expect("number").to_string();
    assert!(number.starts_with("TRP-20"), "{number}");
    let e = d.ok("dispatcher", "trip", &trip, "planTrip", json!({})).await;
    assert_eq!((e["state"].as_str(), &e["data"]["total_stops"]), (Some("PLANNED"), &json!(3)));

    // Dispatching the trip dispatches its three orders onto it, in the same transaction.
    let e = d.ok("dispatcher", "trip", &trip, "dispatchTrip", json!({ "vehicle_id": d.id("truck1") })).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["vehicle_id"].as_str()),
        (Some("DISPATCHED"), Some(d.id("truck1").as_str()))
    );
    for o in [&o1, &o2, &o3] {
        let order = d.get("order", o).await;
        assert_eq!(
            (order["state"].as_str(), order["data"]["trip_id"].as_str()),
            (Some("DISPATCHED"), Some(trip.as_str()))
        );
    }

    // Only its own driver (or a manager) confirms the start; then all three are in transit.
    // Another driver does not even see the trip (the trip's record rule for drivers).
    let r = d.fire("driver2", "trip", &trip, "startTrip", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    let e = d.ok("driver", "trip", &trip, "startTrip", json!({})).await;
    assert_eq!(e["state"], "IN_PROGRESS");
    assert!(e["data"]["start_time"].is_string());
    for o in [&o1, &o2, &o3] {
        assert_eq!(d.state("order", o).await, "IN_TRANSIT");
    }

    // Completing waits for every order: delivered, failed, then the last one delivered.
    let unresolved = "Every order of the trip must be DELIVERED or FAILED";
    d.refused("driver", "trip", &trip, "completeTrip", json!({}), unresolved).await;
    d.ok(
        "driver",
        "order",
        &o1,
        "completeDelivery",
        json!({ "pod_reference": "POD-1", "delivered": [{ "line_number": 1, "delivered_quantity": 2 }] }),
    )
    .await;
    let r = d.fire("driver", "order", &o2, "failDelivery", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "a reason is required: {:?}", r.body);
    let e = d.ok("driver", "order", &o2, "failDelivery", json!({ "reason": "Gate closed, nobody on site" })).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["failure_reason"].as_str()),
        (Some("FAILED"), Some("Gate closed, nobody on site"))
    );
    d.refused("driver", "trip", &trip, "completeTrip", json!({}), unresolved).await;
    let r = d
        .fire(
            "driver",
            "order",
            &o3,
            "completeDelivery",
            json!({ "pod_reference": "POD-3", "delivered": [{ "product_id": d.id("lpg6"), "delivered_quantity": 3 }, { "product_id": d.id("bleach5"), "delivered_quantity": 1 }] }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Its short bleach line is a variance; the reviewer rejects it with a reason.
    let variance = d
        .all("variance")
        .await
        .into_iter()
        .find(|v| v["data"]["order_id"] == o3.as_str())
        .expect("a variance for the short line");
    let v = variance["id"].as_str().expect("id");
    let r = d.fire("warehouse", "variance", v, "rejectVariance", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "a reason is required: {:?}", r.body);
    let e = d.ok("warehouse", "variance", v, "rejectVariance", json!({ "reason": "Customer signed for 2" })).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["resolution_notes"].as_str()),
        (Some("REJECTED"), Some("Customer signed for 2"))
    );
    assert_eq!(d.ok("driver", "trip", &trip, "completeTrip", json!({})).await["state"], "COMPLETED");

    // lpg6: 2 + 3 delivered (off the shelf), all reservations released.
    assert_eq!(d.stock("main", "lpg6").await, (lpg_allocated.0 - 5, lpg_allocated.1 - 5));
}

#[tokio::test]
async fn cancelling_a_trip_on_the_road_fails_its_open_deliveries_and_releases_the_stock() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let before = d.stock("main", "lpg13").await;
    let o1 = d.allocated_order("savanna_hotel", &[("lpg13", 4)]).await;
    let o2 = d.allocated_order("savanna_hotel", &[("lpg13", 6)]).await;
    let trip = d.draft_trip(&[&o1, &o2]).await;
    d.ok("dispatcher", "trip", &trip, "planTrip", json!({})).await;
    d.ok("dispatcher", "trip", &trip, "dispatchTrip", json!({ "vehicle_id": d.id("van1") })).await;
    assert_eq!(d.stock("main", "lpg13").await, (before.0, before.1 + 10));

    let e = d.ok("manager", "trip", &trip, "cancelTrip", json!({ "reason": "Truck broke down" })).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["cancellation_reason"].as_str()),
        (Some("CANCELLED"), Some("Truck broke down"))
    );
    for o in [&o1, &o2] {
        let order = d.get("order", o).await;
        assert_eq!(order["state"], "FAILED");
        assert!(order["data"]["failure_reason"].as_str().is_some_and(|r| r.contains("Truck broke down")), "{order}");
    }
    assert_eq!(d.stock("main", "lpg13").await, before);

    // A trip can be cancelled from every state before it ends; its ALLOCATED orders stay so.
    let o3 = d.allocated_order("savanna_hotel", &[("lpg13", 1)]).await;
    let draft = d.draft_trip(&[&o3]).await;
    assert_eq!(d.ok("dispatcher", "trip", &draft, "cancelTrip", json!({})).await["state"], "CANCELLED");
    let planned = d.draft_trip(&[&o3]).await;
    d.ok("dispatcher", "trip", &planned, "planTrip", json!({})).await;
    assert_eq!(d.ok("dispatcher", "trip", &planned, "cancelTrip", json!({})).await["state"], "CANCELLED");
    assert_eq!(d.state("order", &o3).await, "ALLOCATED");
    let running = d.started_trip(&[&o3]).await;
    let e = d.ok("manager", "trip", &running, "cancelTrip", json!({ "reason": "Road closed" })).await;
    assert_eq!(e["state"], "CANCELLED");
    assert_eq!(d.state("order", &o3).await, "FAILED");
    assert_eq!(d.stock("main", "lpg13").await, before);
}

#[tokio::test]
async fn an_adjustment_moves_stock_once_approved_and_never_below_zero() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let lpg6 = d.stock("main", "lpg6").await;
    let bleach = d.stock("main", "bleach5").await;
    let cyl_main = d.stock("main", "cyl13").await;
    let cyl_coast = d.stock("coast", "cyl13").await;

    let adj = d
        .create(
            "warehouse",
            "manual_adjustment",
            json!({
                "warehouse_id": d.id("main"),
                "to_warehouse_id": d.id("coast"),
                "reason": "Stock count 2026-03 and rebalancing to the coast",
                "items": [
                    { "product_id": d.id("lpg6"), "adjustment_type": "add", "quantity": 20 },
                    { "product_id": d.id("bleach5"), "adjustment_type": "remove", "quantity": 5, "notes": "leaking" },
                    { "product_id": d.id("cyl13"), "adjustment_type": "transfer", "quantity": 5 },
                ],
            }),
        )
        .await;
    assert!(d.get("manual_adjustment", &adj).await["data"]["adjustment_number"]
        .as_str()
        .is_some_and(|n| n.starts_with("ADJ-")));
    d.ok("warehouse", "manual_adjustment", &adj, "submitAdjustment", json!({})).await;
    d.ok("manager", "manual_adjustment", &adj, "approveAdjustment", json!({})).await;
    // Approved is not applied: nothing moved yet.
    assert_eq!(d.stock("main", "lpg6").await, lpg6);
    let e = d.ok("warehouse", "manual_adjustment", &adj, "applyAdjustment", json!({})).await;
    assert_eq!(e["state"], "APPLIED");
    assert_eq!(d.stock("main", "lpg6").await, (lpg6.0 + 20, lpg6.1));
    assert_eq!(d.stock("main", "bleach5").await, (bleach.0 - 5, bleach.1));
    assert_eq!(d.stock("main", "cyl13").await, (cyl_main.0 - 5, cyl_main.1));
    assert_eq!(d.stock("coast", "cyl13").await, (cyl_coast.0 + 5, cyl_coast.1));
    // Each change is a line of the stock ledger, which nobody can change or delete.
    let mut movements: Vec<(String, String, i64)> = d
        .all("stock_movement")
        .await
        .iter()
        .filter(|m| m["data"]["adjustment_id"] == adj.as_str())
        .map(|m| {
            let field = |k: &str| m["data"][k].as_str().unwrap_or_default().to_string();
            (field("warehouse_id"), field("product_id"), m["data"]["quantity"].as_i64().unwrap_or_default())
        })
        .collect();
    movements.sort();
    let mut expected = vec![
        (d.id("main"), d.id("lpg6"), 20),
        (d.id("main"), d.id("bleach5"), -5),
        (d.id("main"), d.id("cyl13"), -5),
        (d.id("coast"), d.id("cyl13"), 5),
    ];
    expected.sort();
    assert_eq!(movements, expected);
    let movement = d.all("stock_movement").await[0]["id"].as_str().unwrap_or_default().to_string();
    let r = d.patch("stock_movement", &movement, "admin", json!({ "quantity": 0 })).await;
    assert_eq!((r.status, r.code()), (409, "IMMUTABLE"), "{:?}", r.body);

    // Removing 6 degreasers from the 5 in stock is refused, naming the product; nothing moves.
    let degreaser = d.stock("main", "degreaser20").await;
    let adj = d
        .create(
            "warehouse",
            "manual_adjustment",
            json!({
                "warehouse_id": d.id("main"),
                "reason": "Write-off after the warehouse flood",
                "items": [
                    { "product_id": d.id("lpg6"), "adjustment_type": "remove", "quantity": 1 },
                    { "product_id": d.id("degreaser20"), "adjustment_type": "remove", "quantity": 6 },
                ],
            }),
        )
        .await;
    d.ok("warehouse", "manual_adjustment", &adj, "submitAdjustment", json!({})).await;
    d.ok("manager", "manual_adjustment", &adj, "approveAdjustment", json!({})).await;
    let message = format!("Stock of product CHM-DEGR-20L ({}) would become negative", d.id("degreaser20"));
    d.refused("warehouse", "manual_adjustment", &adj, "applyAdjustment", json!({}), &message).await;
    assert_eq!(d.state("manual_adjustment", &adj).await, "APPROVED");
    assert_eq!(d.stock("main", "degreaser20").await, degreaser);
    assert_eq!(d.stock("main", "lpg6").await, (lpg6.0 + 20, lpg6.1), "the other item did not move either");

    // Adding a product a warehouse never held creates its stock row.
    let product = d
        .create("admin", "product", json!({ "sku": "CHM-SOAP-1L", "name": "Liquid soap 1 L", "base_price": 180 }))
        .await;
    let adj = d
        .create(
            "warehouse",
            "manual_adjustment",
            json!({
                "warehouse_id": d.id("coast"),
                "reason": "First delivery of liquid soap",
                "items": [{ "product_id": product, "adjustment_type": "add", "quantity": 40 }],
            }),
        )
        .await;
    d.ok("warehouse", "manual_adjustment", &adj, "submitAdjustment", json!({})).await;
    d.ok("manager2", "manual_adjustment", &adj, "approveAdjustment", json!({})).await;
    d.ok("warehouse", "manual_adjustment", &adj, "applyAdjustment", json!({})).await;
    let rows = d.all("inventory").await;
    let soap = rows.iter().find(|r| r["data"]["product_id"] == product.as_str()).expect("a new stock row");
    assert_eq!(
        (soap["data"]["warehouse_id"].as_str(), &soap["data"]["quantity_on_hand"]),
        (Some(d.id("coast").as_str()), &json!(40))
    );

    // Rejecting needs a reason.
    let adj = d
        .create(
            "warehouse",
            "manual_adjustment",
            json!({ "warehouse_id": d.id("main"), "reason": "Found two extra", "items": [{ "product_id": d.id("lpg6"), "adjustment_type": "add", "quantity": 2 }] }),
        )
        .await;
    d.ok("warehouse", "manual_adjustment", &adj, "submitAdjustment", json!({})).await;
    let r = d.fire("manager", "manual_adjustment", &adj, "rejectAdjustment", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let e = d.ok("manager", "manual_adjustment", &adj, "rejectAdjustment", json!({ "reason": "Recount first" })).await;
    assert_eq!(e["state"], "REJECTED");
}

#[tokio::test]
async fn a_reconciled_payment_lowers_the_customers_balance() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let kiosk = d.id("mama_njeri");
    let before = d.balance("mama_njeri").await;
    assert_eq!(before, 60.0, "the demo kiosk owes 60");

    let payment = d
        .create(
            "finance",
            "payment",
            json!({ "customer_id": kiosk, "amount": 60, "method": "mpesa", "reference": "QK71H2X9PL", "payment_date": "2026-03-02" }),
        )
        .await;
    let p = d.get("payment", &payment).await;
    assert_eq!(p["state"], "PENDING");
    assert!(p["data"]["payment_number"].as_str().is_some_and(|n| n.starts_with("PAY-")));

    let r = d.fire("finance", "payment", &payment, "approvePayment", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "finance records, managers approve: {:?}", r.body);
    d.ok("manager", "payment", &payment, "approvePayment", json!({})).await;
    // Approved is not reconciled: the balance has not moved.
    assert_eq!(d.balance("mama_njeri").await, before);
    let e = d
        .ok(
            "finance",
            "payment",
            &payment,
            "reconcilePayment",
            json!({ "statement_reference": "STMT-2026-03-02-0042", "statement_amount": 60 }),
        )
        .await;
    assert_eq!(e["state"], "RECONCILED");
    assert_eq!(d.balance("mama_njeri").await, 0.0);

    // A rejected payment needs a reason and never touches the balance.
    let other =
        d.create("finance", "payment", json!({ "customer_id": kiosk, "amount": 500, "method": "cheque" })).await;
    let r = d.fire("manager", "payment", &other, "rejectPayment", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let e = d.ok("manager", "payment", &other, "rejectPayment", json!({ "reason": "Cheque bounced" })).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["rejection_reason"].as_str()),
        (Some("REJECTED"), Some("Cheque bounced"))
    );
    assert_eq!(d.balance("mama_njeri").await, 0.0);
}

#[tokio::test]
async fn a_planning_session_turns_the_solvers_routes_into_trips() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let o1 = d.allocated_order("savanna_hotel", &[("lpg6", 1)]).await;
    let o2 = d.allocated_order("savanna_hotel", &[("lpg13", 1)]).await;
    let o3 = d.allocated_order("savanna_hotel", &[("bleach5", 1)]).await;
    let (truck1, truck2) = (d.id("truck1"), d.id("truck2"));

    let session = d
        .create(
            "dispatcher",
            "planning_session",
            json!({
                "name": "Nairobi, Monday",
                "scheduled_date": "2026-03-02",
                "warehouse_id": d.id("main"),
                "order_ids": [o1, o2, o3],
                "vehicle_ids": [truck1, truck2],
                "drivers": ["driver@chemichemi.test", "driver2@chemichemi.test"],
            }),
        )
        .await;
    // The drivers were given by e-mail: the session holds their user ids.
    let drivers = d.get("planning_session", &session).await["data"]["drivers"].clone();
    let (dan, dede) =
        (drivers[0].as_str().expect("an id").to_string(), drivers[1].as_str().expect("an id").to_string());
    assert!(uuid::Uuid::parse_str(&dan).is_ok() && dan != dede, "{drivers}");
    let e = d.ok("dispatcher", "planning_session", &session, "startOptimization", json!({})).await;
    assert_eq!(e["state"], "OPTIMIZING");
    let jobs = e["data"]["solver_request"]["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3);
    assert!(jobs[0]["latitude"].is_number(), "jobs carry the delivery location: {jobs:?}");
    assert_eq!(e["data"]["solver_request"]["vehicles"].as_array().map(Vec::len), Some(2));

    // Only the solver reports results.
    let routes = json!({
        "routes": [
            { "vehicle_id": truck1, "driver_id": dan, "order_ids": [o1, o3], "total_distance": 18.4, "route_geometry": "_p~iF~ps|U_ulLnnqC" },
            { "vehicle_id": truck2, "driver_id": dede, "order_ids": [o2], "total_distance": 7.2 },
        ],
    });
    let r = d.fire("dispatcher", "planning_session", &session, "optimizationComplete", routes.clone()).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    // The script writes the routes' drivers into user fields: a driver who is no user is refused
    // there, and the session stays OPTIMIZING.
    let mut strangers = routes.clone();
    strangers["routes"][1]["driver_id"] = json!(uuid::Uuid::now_v7());
    let r = d.fire("solver", "planning_session", &session, "optimizationComplete", strangers).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(r.error_paths(), ["/entity/routes/1/driver_id"], "{:?}", r.body);
    assert_eq!(d.state("planning_session", &session).await, "OPTIMIZING");
    let e = d.ok("solver", "planning_session", &session, "optimizationComplete", routes).await;
    assert_eq!(e["state"], "OPTIMIZED");
    assert_eq!(e["data"]["unassigned_order_ids"], json!([]));

    let e = d.ok("dispatcher", "planning_session", &session, "applyPlan", json!({ "confirmed": true })).await;
    assert_eq!(e["state"], "APPLIED");
    let trip_ids: Vec<String> = e["data"]["trip_ids"]
        .as_array()
        .expect("trip ids")
        .iter()
        .map(|t| t.as_str().expect("id").to_string())
        .collect();
    assert_eq!(trip_ids.len(), 2);
    let t1 = d.get("trip", &trip_ids[0]).await;
    assert_eq!(t1["state"], "DRAFT");
    assert_eq!(
        (&t1["data"]["vehicle_id"], &t1["data"]["driver_id"], &t1["data"]["order_ids"]),
        (&json!(truck1), &json!(dan), &json!([o1, o3]))
    );
    assert_eq!(t1["users"][&dan]["name"], "Dan Driver", "the driver is named: {t1}");
    assert_eq!(t1["data"]["planning_session_id"], session.as_str());
    assert_eq!(t1["data"]["scheduled_date"], "2026-03-02");
    let t2 = d.get("trip", &trip_ids[1]).await;
    assert_eq!((&t2["data"]["order_ids"], &t2["data"]["vehicle_id"]), (&json!([o2]), &json!(truck2)));

    // The created trips run like any other.
    d.ok("dispatcher", "trip", &trip_ids[1], "planTrip", json!({})).await;
    d.ok("dispatcher", "trip", &trip_ids[1], "dispatchTrip", json!({})).await;
    assert_eq!(d.state("order", &o2).await, "DISPATCHED");

    // A solver error ends a session; a draft session can be cancelled.
    let failing = d
        .create(
            "dispatcher",
            "planning_session",
            json!({ "name": "Coast run", "warehouse_id": d.id("main"), "order_ids": [o1], "vehicle_ids": [truck1] }),
        )
        .await;
    d.ok("dispatcher", "planning_session", &failing, "startOptimization", json!({})).await;
    let e = d
        .ok(
            "solver",
            "planning_session",
            &failing,
            "optimizationFailed",
            json!({ "error": "VROOM: no feasible route" }),
        )
        .await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["failure_reason"].as_str()),
        (Some("OPTIMIZATION_FAILED"), Some("VROOM: no feasible route"))
    );
    let draft =
        d.create("dispatcher", "planning_session", json!({ "name": "Spare", "warehouse_id": d.id("main") })).await;
    assert_eq!(d.ok("dispatcher", "planning_session", &draft, "cancelSession", json!({})).await["state"], "CANCELLED");
}

#[tokio::test]
async fn customers_need_four_eyes_to_be_approved_and_suspended_ones_cannot_order() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let customer = d
        .create(
            "manager",
            "customer",
            json!({
                "name": "Lake Basin Hotel",
                "phone": "+254 57 555 0404",
                "customer_type": "institutional",
                "credit_limit": 80000,
                "territory_id": d.id("nairobi_west"),
                "price_list_id": d.id("standard"),
                "addresses": [{ "address_type": "delivery", "address_line_1": "Oginga Odinga St 5", "city": "Kisumu", "is_default": true }],
            }),
        )
        .await;
    d.ok("manager", "customer", &customer, "submitCustomer", json!({})).await;
    let r = d.fire("manager", "customer", &customer, "approveCustomer", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "the creator cannot approve: {:?}", r.body);
    assert_eq!(d.ok("manager2", "customer", &customer, "approveCustomer", json!({})).await["state"], "ACTIVE");

    let savanna = d.id("savanna_hotel");
    let r = d.fire("manager", "customer", &savanna, "suspendCustomer", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "a reason is required: {:?}", r.body);
    let e =
        d.ok("manager", "customer", &savanna, "suspendCustomer", json!({ "reason": "Cheques bounced twice" })).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["suspension_reason"].as_str()),
        (Some("SUSPENDED"), Some("Cheques bounced twice"))
    );
    let order = d.draft_order("savanna_hotel", &[("lpg6", 1)]).await;
    d.refused("sales", "order", &order, "submitOrder", json!({}), "The customer is not active").await;
    d.ok("manager", "customer", &savanna, "reactivateCustomer", json!({})).await;
    d.ok("sales", "order", &order, "submitOrder", json!({})).await;
    assert_eq!(d.ok("admin", "customer", &customer, "deactivateCustomer", json!({})).await["state"], "INACTIVE");
}

#[tokio::test]
async fn an_offload_document_is_approved_only_when_its_discrepancies_are_resolved() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let order = d.allocated_order("savanna_hotel", &[("lpg6", 4), ("bleach5", 2)]).await;
    let trip = d.started_trip(&[order.as_str()]).await;
    let doc = |resolved: bool| {
        json!({
            "trip_id": trip,
            "order_id": order,
            "document_type": "pod",
            "file_url": "https://files.example/pod/1.jpg",
            "items": [
                { "product_id": d.id("lpg6"), "expected_quantity": 4, "actual_quantity": 4 },
                { "product_id": d.id("bleach5"), "expected_quantity": 2, "actual_quantity": 1, "discrepancy_resolved": resolved },
            ],
        })
    };

    let first = d.create("driver", "offload_document", doc(false)).await;
    assert!(d.get("offload_document", &first).await["data"]["document_number"]
        .as_str()
        .is_some_and(|n| n.starts_with("POD-")));
    let e = d.ok("driver", "offload_document", &first, "submitDocument", json!({})).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["captured_by"].as_str()),
        (Some("SUBMITTED"), Some("driver@chemichemi.test"))
    );
    let r = d.fire("driver", "offload_document", &first, "reviewDocument", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    d.ok("warehouse", "offload_document", &first, "reviewDocument", json!({})).await;
    d.refused(
        "manager",
        "offload_document",
        &first,
        "approveDocument",
        json!({}),
        "Every discrepancy must be resolved",
    )
    .await;
    let r = d.fire("manager", "offload_document", &first, "rejectDocument", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let e =
        d.ok("manager", "offload_document", &first, "rejectDocument", json!({ "reason": "Recount the bleach" })).await;
    assert_eq!(e["state"], "REJECTED");

    // The reviewer resolves the short line while reviewing; then it can be approved.
    let second = d.create("driver", "offload_document", doc(false)).await;
    d.ok("driver", "offload_document", &second, "submitDocument", json!({})).await;
    let e = d
        .ok(
            "warehouse",
            "offload_document",
            &second,
            "reviewDocument",
            json!({ "resolutions": [{ "line_number": 2, "resolution_notes": "One jerrycan leaked, written off" }] }),
        )
        .await;
    assert_eq!(e["data"]["items"][1]["discrepancy_resolved"], true);
    let e = d.ok("manager", "offload_document", &second, "approveDocument", json!({})).await;
    assert_eq!(e["state"], "APPROVED");

    // The approved document is the order's proof of delivery.
    let number = e["data"]["document_number"].as_str().expect("number");
    let e = d
        .ok(
            "driver",
            "order",
            &order,
            "completeDelivery",
            json!({ "pod_reference": number, "delivered": [{ "product_id": d.id("lpg6"), "delivered_quantity": 4 }, { "product_id": d.id("bleach5"), "delivered_quantity": 1 }] }),
        )
        .await;
    assert_eq!((e["state"].as_str(), e["data"]["pod_reference"].as_str()), (Some("DELIVERED"), Some(number)));
}

/// One case of the guard table.
struct Case {
    user: &'static str,
    type_name: &'static str,
    id: String,
    transition: &'static str,
    input: Value,
    message: String,
}

fn case(
    user: &'static str,
    type_name: &'static str,
    id: &str,
    transition: &'static str,
    input: Value,
    message: &str,
) -> Case {
    Case { user, type_name, id: id.to_string(), transition, input, message: message.to_string() }
}

#[tokio::test]
async fn every_guard_fails_once_with_its_message() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let (main, coast) = (d.id("main"), d.id("coast"));

    // Customers.
    let no_contact = d
        .create(
            "sales",
            "customer",
            json!({ "name": "No Contact Ltd", "addresses": [{ "address_type": "delivery", "address_line_1": "x" }] }),
        )
        .await;
    let no_delivery = d
        .create("sales", "customer", json!({ "name": "Billing Only Ltd", "email": "a@b.example", "addresses": [{ "address_type": "billing", "address_line_1": "x" }] }))
        .await;
    let own_customer = d
        .create("manager", "customer", json!({ "name": "Own Ltd", "email": "own@b.example", "addresses": [{ "address_type": "delivery", "address_line_1": "x" }] }))
        .await;
    d.ok("manager", "customer", &own_customer, "submitCustomer", json!({})).await;
    let submitted_customer = d
        .create("sales", "customer", json!({ "name": "Submitted Ltd", "email": "s@b.example", "addresses": [{ "address_type": "delivery", "address_line_1": "x" }] }))
        .await;
    d.ok("manager2", "customer", &submitted_customer, "submitCustomer", json!({})).await;

    // Orders.
    let empty = d
        .create("sales", "order", json!({ "customer_id": d.id("savanna_hotel"), "warehouse_id": main, "items": [] }))
        .await;
    let for_draft_customer = d
        .create("sales", "order", json!({ "customer_id": no_contact, "warehouse_id": main, "items": [{ "product_id": d.id("lpg6"), "quantity": 1 }] }))
        .await;
    // A sales rep cannot set a discount (`roles.sales.create.order.except`): a manager's order.
    let too_much_discount = d
        .create(
            "manager",
            "order",
            json!({ "customer_id": d.id("savanna_hotel"), "warehouse_id": main, "discount_amount": 5000, "items": [{ "product_id": d.id("lpg6"), "quantity": 1 }] }),
        )
        .await;
    let retired = d
        .create("admin", "product", json!({ "sku": "OLD-1", "name": "Retired", "base_price": 1, "is_active": false }))
        .await;
    let inactive_product = d
        .create("sales", "order", json!({ "customer_id": d.id("savanna_hotel"), "warehouse_id": main, "items": [{ "product_id": retired, "quantity": 1 }] }))
        .await;
    let own_order = d
        .create("manager", "order", json!({ "customer_id": d.id("savanna_hotel"), "warehouse_id": main, "items": [{ "product_id": d.id("lpg6"), "quantity": 1 }] }))
        .await;
    d.ok("manager", "order", &own_order, "submitOrder", json!({})).await;
    let poor = d.draft_order("mama_njeri", &[("lpg13", 1)]).await;
    d.ok("sales", "order", &poor, "submitOrder", json!({})).await;
    let short = d.draft_order("savanna_hotel", &[("degreaser20", 6)]).await;
    d.ok("sales", "order", &short, "submitOrder", json!({})).await;
    d.ok("manager", "order", &short, "approveOrder", json!({})).await;
    let allocated = d.allocated_order("savanna_hotel", &[("lpg6", 2), ("bleach5", 1)]).await;
    let another = d.allocated_order("savanna_hotel", &[("lpg6", 1)]).await;

    // Trips.
    let draft_trip = d.draft_trip(&[&another]).await;
    let no_orders =
        d.create("dispatcher", "trip", json!({ "warehouse_id": main, "driver_id": "driver@chemichemi.test" })).await;
    let no_driver = d.create("dispatcher", "trip", json!({ "warehouse_id": main, "order_ids": [another] })).await;
    let unallocated = d.draft_order("savanna_hotel", &[("lpg6", 1)]).await;
    let with_draft_order = d.draft_trip(&[&unallocated]).await;
    let coast_order = d.allocated_order_at("savanna_hotel", "coast", &[("lpg6", 1)]).await;
    let coast_trip = d
        .create(
            "dispatcher",
            "trip",
            json!({ "warehouse_id": coast, "driver_id": "driver@chemichemi.test", "order_ids": [coast_order] }),
        )
        .await;
    d.ok("dispatcher", "trip", &coast_trip, "planTrip", json!({})).await;
    let mixed_trip = d
        .create(
            "dispatcher",
            "trip",
            json!({ "warehouse_id": coast, "driver_id": "driver@chemichemi.test", "order_ids": [another] }),
        )
        .await;
    // `another` is on three DRAFT trips already: a trip of its own for the dispatch cases.
    let spare = d.allocated_order("savanna_hotel", &[("lpg6", 1)]).await;
    let planned = d.draft_trip(&[&spare]).await;
    d.ok("dispatcher", "trip", &planned, "planTrip", json!({})).await;
    // `allocated` is dispatched on a trip that has not started.
    let waiting = d.draft_trip(&[&allocated]).await;
    d.ok("dispatcher", "trip", &waiting, "planTrip", json!({})).await;
    d.ok("dispatcher", "trip", &waiting, "dispatchTrip", json!({ "vehicle_id": d.id("truck2") })).await;
    let in_transit = d.allocated_order("savanna_hotel", &[("lpg13", 2)]).await;
    let running = d.started_trip(&[&in_transit]).await;
    // A planned trip whose only order was then cancelled (which took it off the trip).
    let cancelled_order = d.allocated_order("savanna_hotel", &[("lpg6", 1)]).await;
    let empty_run = d.draft_trip(&[&cancelled_order]).await;
    d.ok("dispatcher", "trip", &empty_run, "planTrip", json!({})).await;
    d.ok("manager", "order", &cancelled_order, "cancelOrder", json!({ "reason": "customer called" })).await;
    assert_eq!(d.get("trip", &empty_run).await["data"]["order_ids"], json!([]));

    // Adjustments.
    let adjustment = |items: Value, reason: Option<&str>, to: Option<&str>| {
        let mut data = json!({ "warehouse_id": main, "items": items });
        if let Some(r) = reason {
            data["reason"] = json!(r);
        }
        if let Some(t) = to {
            data["to_warehouse_id"] = json!(t);
        }
        data
    };
    let one_item = json!([{ "product_id": d.id("lpg6"), "adjustment_type": "add", "quantity": 1 }]);
    let transfer = json!([{ "product_id": d.id("lpg6"), "adjustment_type": "transfer", "quantity": 1 }]);
    let no_items = d.create("warehouse", "manual_adjustment", adjustment(json!([]), Some("count"), None)).await;
    let no_reason = d.create("warehouse", "manual_adjustment", adjustment(one_item.clone(), None, None)).await;
    let no_target = d.create("warehouse", "manual_adjustment", adjustment(transfer.clone(), Some("move"), None)).await;
    let same_target = d.create("warehouse", "manual_adjustment", adjustment(transfer, Some("move"), Some(&main))).await;
    let own_adjustment =
        d.create("manager", "manual_adjustment", adjustment(one_item.clone(), Some("count"), None)).await;
    d.ok("manager", "manual_adjustment", &own_adjustment, "submitAdjustment", json!({})).await;
    let submitted_by_manager =
        d.create("warehouse", "manual_adjustment", adjustment(one_item, Some("count"), None)).await;
    d.ok("manager", "manual_adjustment", &submitted_by_manager, "submitAdjustment", json!({})).await;
    let too_much = d
        .create(
            "warehouse",
            "manual_adjustment",
            adjustment(
                json!([{ "product_id": d.id("degreaser20"), "adjustment_type": "remove", "quantity": 99 }]),
                Some("flood"),
                None,
            ),
        )
        .await;
    d.ok("warehouse", "manual_adjustment", &too_much, "submitAdjustment", json!({})).await;
    d.ok("manager", "manual_adjustment", &too_much, "approveAdjustment", json!({})).await;

    // Payments.
    let own_payment = d
        .create("manager", "payment", json!({ "customer_id": d.id("savanna_hotel"), "amount": 100, "method": "cash" }))
        .await;
    let approved_payment = d
        .create("finance", "payment", json!({ "customer_id": d.id("savanna_hotel"), "amount": 100, "method": "cash" }))
        .await;
    d.ok("manager", "payment", &approved_payment, "approvePayment", json!({})).await;

    // Planning sessions.
    let session = |orders: Value, vehicles: Value| json!({ "name": "s", "warehouse_id": main, "order_ids": orders, "vehicle_ids": vehicles });
    let no_session_orders =
        d.create("dispatcher", "planning_session", session(json!([]), json!([d.id("truck1")]))).await;
    let no_session_vehicles = d.create("dispatcher", "planning_session", session(json!([another]), json!([]))).await;
    let old_vehicle =
        d.create("dispatcher", "planning_session", session(json!([another]), json!([d.id("old_pickup")]))).await;
    let unrouted =
        d.create("dispatcher", "planning_session", session(json!([unallocated]), json!([d.id("truck1")]))).await;
    let optimizing =
        d.create("dispatcher", "planning_session", session(json!([another]), json!([d.id("truck1")]))).await;
    d.ok("dispatcher", "planning_session", &optimizing, "startOptimization", json!({})).await;
    let optimized =
        d.create("dispatcher", "planning_session", session(json!([another]), json!([d.id("truck1")]))).await;
    d.ok("dispatcher", "planning_session", &optimized, "startOptimization", json!({})).await;
    d.ok(
        "solver",
        "planning_session",
        &optimized,
        "optimizationComplete",
        json!({ "routes": [{ "vehicle_id": d.id("truck1"), "order_ids": [another] }] }),
    )
    .await;

    // Offload documents.
    let item = |actual: i64| json!({ "product_id": d.id("lpg6"), "expected_quantity": 2, "actual_quantity": actual });
    let no_doc_items = d
        .create("driver", "offload_document", json!({ "trip_id": running, "order_id": in_transit, "items": [] }))
        .await;
    let own_doc = d
        .create(
            "warehouse",
            "offload_document",
            json!({ "trip_id": running, "order_id": in_transit, "items": [item(2)] }),
        )
        .await;
    d.ok("warehouse", "offload_document", &own_doc, "submitDocument", json!({})).await;
    let unresolved = d
        .create("driver", "offload_document", json!({ "trip_id": running, "order_id": in_transit, "items": [item(1)] }))
        .await;
    d.ok("driver", "offload_document", &unresolved, "submitDocument", json!({})).await;
    d.ok("warehouse", "offload_document", &unresolved, "reviewDocument", json!({})).await;

    let reviewed = d
        .create("driver", "offload_document", json!({ "trip_id": running, "order_id": in_transit, "items": [item(2)] }))
        .await;
    d.ok("driver", "offload_document", &reviewed, "submitDocument", json!({})).await;
    d.ok("warehouse", "offload_document", &reviewed, "reviewDocument", json!({})).await;

    let creator = "four-eyes: you created this";
    let insufficient = "Insufficient stock for product CHM-DEGR-20L (Industrial degreaser 20 L): need 6, available 5";
    let (truck1, truck2, old_pickup, van1) = (d.id("truck1"), d.id("truck2"), d.id("old_pickup"), d.id("van1"));
    let no_trip = d.id("lpg6");
    let one_line = |line: i64, qty: i64| json!({ "pod_reference": "p", "delivered": [{ "line_number": line, "delivered_quantity": qty }] });
    #[rustfmt::skip]
    let cases = vec![
        // customer
        case("sales", "customer", &no_contact, "submitCustomer", json!({}), "A customer needs an email address or a phone number"),
        case("sales", "customer", &no_delivery, "submitCustomer", json!({}), "A customer needs at least one delivery address"),
        case("manager", "customer", &own_customer, "approveCustomer", json!({}), creator),
        case("manager2", "customer", &submitted_customer, "approveCustomer", json!({}), "four-eyes: you fired submitCustomer"),
        // order
        case("sales", "order", &empty, "submitOrder", json!({}), "An order needs at least one line item"),
        case("sales", "order", &for_draft_customer, "submitOrder", json!({}), "The customer is not active"),
        case("sales", "order", &too_much_discount, "submitOrder", json!({}), "The discount exceeds the order subtotal"),
        case("sales", "order", &inactive_product, "submitOrder", json!({}), "Product OLD-1 is not active"),
        case("manager", "order", &own_order, "approveOrder", json!({}), creator),
        case("manager", "order", &poor, "approveOrder", json!({}), "The order total exceeds the customer's available credit"),
        case("warehouse", "order", &short, "allocateInventory", json!({}), insufficient),
        case("warehouse", "order", &another, "dispatchOrder", json!({ "trip_id": no_trip }), "An order must be assigned to an existing trip before it is dispatched"),
        case("warehouse", "order", &another, "dispatchOrder", json!({ "trip_id": draft_trip }), "An order can only be dispatched on a PLANNED or DISPATCHED trip"),
        case("warehouse", "order", &another, "dispatchOrder", json!({ "trip_id": coast_trip }), "The trip leaves from another warehouse than the order's"),
        case("driver", "order", &allocated, "startDelivery", json!({}), "The order's trip has not started"),
        case("driver", "order", &in_transit, "completeDelivery", json!({ "pod_reference": "p", "delivered": [{ "delivered_quantity": 1 }] }), "Each delivered quantity needs a line_number or a product_id"),
        case("driver", "order", &in_transit, "completeDelivery", one_line(2, 1), "Line 2 is not on this order"),
        case("driver", "order", &in_transit, "completeDelivery", one_line(1, 3), "exceeds the ordered quantity"),
        case("driver", "order", &in_transit, "completeDelivery", json!({ "pod_reference": "p" }), "The delivered quantity of line 1"),
        // trip
        case("dispatcher", "trip", &no_orders, "planTrip", json!({}), "A trip needs at least one order"),
        case("dispatcher", "trip", &no_driver, "planTrip", json!({}), "A trip needs a driver"),
        case("dispatcher", "trip", &with_draft_order, "planTrip", json!({}), "is DRAFT: only ALLOCATED orders can be planned on a trip"),
        case("dispatcher", "trip", &mixed_trip, "planTrip", json!({}), "ships from another warehouse than the trip"),
        case("dispatcher", "trip", &draft_trip, "planTrip", json!({}), "is already on trip TRP-"),
        case("dispatcher", "trip", &planned, "dispatchTrip", json!({}), "A vehicle must be assigned before the trip is dispatched"),
        case("dispatcher", "trip", &planned, "dispatchTrip", json!({ "vehicle_id": old_pickup }), "The vehicle is not active"),
        case("dispatcher", "trip", &empty_run, "dispatchTrip", json!({ "vehicle_id": van1 }), "The trip has no orders left to dispatch"),
        case("driver", "trip", &running, "completeTrip", json!({}), "Every order of the trip must be DELIVERED or FAILED"),
        // manual adjustment
        case("warehouse", "manual_adjustment", &no_items, "submitAdjustment", json!({}), "An adjustment needs at least one item"),
        case("warehouse", "manual_adjustment", &no_reason, "submitAdjustment", json!({}), "An adjustment needs a reason"),
        case("warehouse", "manual_adjustment", &no_target, "submitAdjustment", json!({}), "A transfer needs a receiving warehouse"),
        case("warehouse", "manual_adjustment", &same_target, "submitAdjustment", json!({}), "A transfer needs a receiving warehouse"),
        case("manager", "manual_adjustment", &own_adjustment, "approveAdjustment", json!({}), creator),
        case("manager", "manual_adjustment", &submitted_by_manager, "approveAdjustment", json!({}), "four-eyes: you fired submitAdjustment"),
        case("warehouse", "manual_adjustment", &too_much, "applyAdjustment", json!({}), "would become negative"),
        // payment
        case("manager", "payment", &own_payment, "approvePayment", json!({}), creator),
        case("finance", "payment", &approved_payment, "reconcilePayment", json!({ "statement_reference": "S1", "statement_amount": 99 }), "The bank statement amount does not match the payment"),
        // planning session
        case("dispatcher", "planning_session", &no_session_orders, "startOptimization", json!({}), "Select at least one order to optimise"),
        case("dispatcher", "planning_session", &no_session_vehicles, "startOptimization", json!({}), "Configure at least one vehicle to optimise with"),
        case("dispatcher", "planning_session", &old_vehicle, "startOptimization", json!({}), "Every vehicle of a planning session must be active"),
        case("dispatcher", "planning_session", &unrouted, "startOptimization", json!({}), "only ALLOCATED orders can be routed"),
        case("solver", "planning_session", &optimizing, "optimizationComplete", json!({ "routes": [] }), "The solver returned no routes"),
        case("solver", "planning_session", &optimizing, "optimizationComplete", json!({ "routes": [{ "vehicle_id": truck2, "order_ids": [another] }] }), "is not one of the session's vehicles"),
        case("solver", "planning_session", &optimizing, "optimizationComplete", json!({ "routes": [{ "vehicle_id": truck1, "order_ids": [unallocated] }] }), "is not one of the session's orders"),
        case("dispatcher", "planning_session", &optimized, "applyPlan", json!({ "confirmed": false }), "The plan must be confirmed before it is applied"),
        case("dispatcher", "planning_session", &optimized, "applyPlan", json!({ "confirmed": true }), "is already on trip TRP-"),
        // offload document
        case("driver", "offload_document", &no_doc_items, "submitDocument", json!({}), "Add the document's items before submitting it"),
        case("warehouse", "offload_document", &own_doc, "reviewDocument", json!({}), creator),
        case("manager", "offload_document", &unresolved, "approveDocument", json!({}), "Every discrepancy must be resolved before the document is approved"),
        case("warehouse", "offload_document", &reviewed, "approveDocument", json!({}), "four-eyes: you fired reviewDocument"),
    ];

    for c in &cases {
        let before = d.get(c.type_name, &c.id).await;
        d.refused(c.user, c.type_name, &c.id, c.transition, c.input.clone(), &c.message).await;
        let after = d.get(c.type_name, &c.id).await;
        assert_eq!(before, after, "{}.{} changed its entity", c.type_name, c.transition);
    }
    // The stock and the money did not move either.
    assert_eq!(d.stock("main", "degreaser20").await, (5, 0));
    assert_eq!(d.balance("savanna_hotel").await, 0.0);
}

#[tokio::test]
async fn type_permissions_follow_the_roles() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let order = json!({ "data": { "customer_id": d.id("savanna_hotel"), "warehouse_id": d.id("main"), "items": [] } });
    // Viewers see everything and create nothing; drivers do not record payments.
    assert_eq!(d.s.get("entities/order", d.t("viewer")).await.status, 200);
    let r = d.s.post("entities/order", d.t("viewer"), &order).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    let payment = json!({ "data": { "customer_id": d.id("savanna_hotel"), "amount": 10, "method": "cash" } });
    let r = d.s.post("entities/payment", d.t("driver"), &payment).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    // The solver's service account sees what routing needs, and no customers.
    assert_eq!(d.s.get("entities/planning_session", d.t("solver")).await.status, 200);
    assert_eq!(d.s.get("entities/customer", d.t("solver")).await.status, 404);
    assert_eq!(d.s.get(&format!("entities/customer/{}", d.id("savanna_hotel")), d.t("solver")).await.status, 404);
}

#[tokio::test]
async fn states_say_what_may_be_edited_and_by_whom() {
    let db = test_db().await;
    let d = Demo::start(&db).await;

    // A planned trip whose order was cancelled: the cancel took it off the trip.
    let o1 = d.allocated_order("savanna_hotel", &[("lpg6", 1)]).await;
    let o2 = d.allocated_order("savanna_hotel", &[("lpg6", 2)]).await;
    let trip = d.draft_trip(&[&o1, &o2]).await;
    d.ok("dispatcher", "trip", &trip, "planTrip", json!({})).await;
    d.ok("manager", "order", &o2, "cancelOrder", json!({ "reason": "customer called" })).await;
    let t = d.get("trip", &trip).await;
    assert_eq!((&t["data"]["order_ids"], &t["data"]["total_stops"]), (&json!([o1]), &json!(1)));
    // An order is on one open trip at a time.
    let other = d.draft_trip(&[&o1]).await;
    d.refused("dispatcher", "trip", &other, "planTrip", json!({}), "is already on trip").await;
    let r = d.patch("trip", &trip, "sales", json!({ "vehicle_id": d.id("truck2") })).await;
    assert_eq!(r.status, 403, "sales may not edit trips: {:?}", r.body);
    let r = d.patch("trip", &trip, "dispatcher", json!({ "order_ids": [o1], "vehicle_id": d.id("truck2") })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = d.ok("dispatcher", "trip", &trip, "dispatchTrip", json!({})).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["vehicle_id"].as_str()),
        (Some("DISPATCHED"), Some(d.id("truck2").as_str()))
    );
    let r = d.patch("trip", &trip, "dispatcher", json!({ "order_ids": [o1, o2] })).await;
    assert_eq!(r.status, 422, "a dispatched trip's orders are fixed: {:?}", r.body);
    // …but an order can still be dispatched onto it, which adds it to the trip.
    let o3 = d.allocated_order("savanna_hotel", &[("bleach5", 1)]).await;
    let e = d.ok("warehouse", "order", &o3, "dispatchOrder", json!({ "trip_id": trip })).await;
    assert_eq!((e["state"].as_str(), e["data"]["trip_id"].as_str()), (Some("DISPATCHED"), Some(trip.as_str())));
    let t = d.get("trip", &trip).await;
    assert_eq!((&t["data"]["order_ids"], &t["data"]["total_stops"]), (&json!([o1, o3]), &json!(2)));

    // A draft order's lines are the sales rep's; once submitted only its notes and date.
    let order = d.draft_order("savanna_hotel", &[("lpg6", 1)]).await;
    let r =
        d.patch("order", &order, "sales", json!({ "items": [{ "product_id": d.id("lpg13"), "quantity": 3 }] })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = d.ok("sales", "order", &order, "submitOrder", json!({})).await;
    assert_eq!(num(&e["data"]["total_amount"]), 3.0 * 2600.0);
    let r = d.patch("order", &order, "sales", json!({ "items": [] })).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let r = d.patch("order", &order, "sales", json!({ "notes": "Call before delivery" })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = d.patch("order", &order, "sales", json!({ "total_amount": 1 })).await;
    assert_eq!(r.status, 422, "computed fields are the server's: {:?}", r.body);
}

#[tokio::test]
async fn an_order_is_placed_with_the_customers_address_and_sales_cannot_set_its_discount() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let main = d.id("main");
    let order = json!({ "customer_id": d.id("savanna_hotel"), "warehouse_id": main, "items": [{ "product_id": d.id("lpg6"), "quantity": 1 }] });

    // placeOrder (`create: true`) ran in the creation: DRAFT, with the customer's address.
    let r = d.s.post("entities/order", d.t("sales"), &json!({ "data": order })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["state"], "DRAFT");
    assert!(r.body["data"]["delivery_address"]["address_line_1"].is_string(), "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id");
    let h = d.s.get(&format!("entities/order/{id}/history"), d.t("manager")).await;
    assert_eq!(h.body["data"][0]["transition"], "placeOrder", "{:?}", h.body);
    assert_eq!(h.body["data"][0]["from"], Value::Null, "{:?}", h.body);
    assert_eq!(h.body["data"][0]["to"], "DRAFT", "{:?}", h.body);
    assert_eq!(h.body["data"][0]["input"], json!({}), "no input: an empty one");

    // Discounts are a manager's call: a sales rep cannot set one when creating.
    let mut discounted = order.clone();
    discounted["discount_amount"] = json!(100);
    let r = d.s.post("entities/order", d.t("sales"), &json!({ "data": discounted })).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(r.error_paths(), ["/data/discount_amount"], "{:?}", r.body);
    let r = d.s.post("entities/order", d.t("manager"), &json!({ "data": discounted })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // CSV export: the viewer may look, not download; sales may download orders.
    let r = d.s.get("entities/order/export.csv", d.t("viewer")).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(d.s.get("entities/order/export.csv", d.t("sales")).await.status, 200);
}
