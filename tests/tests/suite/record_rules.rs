//! Record rules over real HTTP on chemichemi: sales reps see the customers of their territories
//! (and what they created) and those customers' orders; drivers see their own trips and the
//! orders on them. Every route a row can reach a user through is attacked by a user outside the
//! rule: the row does not exist for them (404 as an unknown id, absent from lists, totals,
//! search, CSV, bulk and events), while the user inside the rule sees it.

use std::collections::HashMap;

use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::test_db;

const USERS: &[&str] = &["admin", "manager", "sales", "sales2", "warehouse", "dispatcher", "driver", "driver2"];

struct Demo {
    s: TestServer,
    tokens: HashMap<&'static str, String>,
}

impl Demo {
    fn t(&self, user: &str) -> &str {
        self.tokens.get(user).unwrap_or_else(|| panic!("no user {user}"))
    }

    async fn get(&self, user: &str, path: &str) -> Reply {
        self.s.get(path, self.t(user)).await
    }

    /// The ids of a list as `user` (every page), and the list's total.
    async fn ids(&self, user: &str, query: &str) -> (Vec<String>, i64) {
        let r = self.get(user, &format!("{query}&total=true&limit=500")).await;
        assert_eq!(r.status, 200, "{query} as {user}: {:?}", r.body);
        assert!(r.body["next_cursor"].is_null(), "one page");
        let ids = r.body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_string())
            .collect();
        (ids, r.body["total"].as_i64().expect("total"))
    }

    /// The string at `pointer` of each item of a `{"data": [...]}` answer of `path` as `user`.
    async fn strings(&self, user: &str, path: &str, pointer: &str) -> Vec<String> {
        let r = self.get(user, path).await;
        assert_eq!(r.status, 200, "{path} as {user}: {:?}", r.body);
        let items = r.body["data"].as_array().expect("data");
        items.iter().map(|i| i.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string()).collect()
    }

    async fn ok(&self, user: &str, type_name: &str, id: &str, name: &str, input: Value) {
        let r = self.s.fire(self.t(user), type_name, id, name, input).await;
        assert_eq!(r.status, 200, "{type_name}.{name} by {user}: {:?}", r.body);
    }

    async fn order(&self, user: &str, customer: &str) -> String {
        let e = self
            .s
            .create(
                self.t(user),
                "order",
                json!({ "customer_id": self.s.sample(customer), "warehouse_id": self.s.sample("main"),
                        "items": [{ "product_id": self.s.sample("lpg6"), "quantity": 1 }] }),
            )
            .await;
        e["id"].as_str().expect("id").to_string()
    }

    /// Every way to reach one entity, as `user`: the statuses of get, history, transitions,
    /// patch, a transition, a bulk transition by id (its result's code).
    async fn reach(&self, user: &str, type_name: &str, id: &str) -> Vec<(String, u16, String)> {
        let mut out = Vec::new();
        for path in ["", "/history", "/transitions"] {
            let r = self.get(user, &format!("entities/{type_name}/{id}{path}")).await;
            out.push((format!("GET{path}"), r.status, r.code().to_string()));
        }
        let url = self.s.url(&format!("entities/{type_name}/{id}"));
        let r = self
            .s
            .request(reqwest::Method::PATCH, &url, Some(self.t(user)), Some(&json!({ "data": { "notes": "x" } })), &[])
            .await;
        out.push(("PATCH".into(), r.status, r.code().to_string()));
        let r = self.s.fire(self.t(user), type_name, id, "cancelOrder", json!({ "reason": "test" })).await;
        out.push(("transition".into(), r.status, r.code().to_string()));
        let r = self
            .s
            .post(
                &format!("entities/{type_name}/transitions/cancelOrder"),
                self.t(user),
                &json!({ "ids": [id], "input": { "reason": "t" }, "dry_run": true }),
            )
            .await;
        let code = r.body["results"][0]["error"]["code"].as_str().unwrap_or("ok").to_string();
        out.push(("bulk".into(), r.status, code));
        out
    }
}

#[tokio::test]
async fn sales_reps_and_drivers_see_their_rows_only_through_every_route() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let mut tokens = HashMap::new();
    for u in USERS {
        tokens.insert(*u, s.token(&db, &format!("{u}@chemichemi.test")).await);
    }
    let d = Demo { s, tokens };
    let workers = d.s.workers();

    // Customers: sales covers Nairobi West and East, sales2 the coast.
    let (sales_customers, sales_total) = d.ids("sales", "entities/customer?").await;
    let (sales2_customers, _) = d.ids("sales2", "entities/customer?").await;
    let (all_customers, all_total) = d.ids("manager", "entities/customer?").await;
    let (savanna, pwani) = (d.s.sample("savanna_hotel"), d.s.sample("pwani_traders"));
    assert!(sales_customers.contains(&savanna) && !sales_customers.contains(&pwani), "{sales_customers:?}");
    assert_eq!(sales2_customers, vec![pwani.clone()]);
    assert_eq!(sales_total, sales_customers.len() as i64);
    assert!(all_total > sales_total && all_customers.contains(&pwani));
    // Search and CSV: the coast customer's name is found by its rep only.
    let pwani_name = d.get("manager", &format!("entities/customer/{pwani}")).await.body["data"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let word = pwani_name.split_whitespace().next().expect("a word");
    assert_eq!(d.ids("sales", &format!("entities/customer?q={word}")).await, (vec![], 0));
    assert_eq!(d.ids("sales2", &format!("entities/customer?q={word}")).await.1, 1);
    let csv = d.get("sales", "entities/customer/export.csv").await;
    assert_eq!(csv.status, 200);
    let csv = csv.body.as_str().expect("csv text");
    assert!(!csv.contains(&pwani_name) && csv.contains(&savanna), "{csv}");
    // A customer a rep creates (no territory yet) is the rep's own.
    let own = d.s.create(d.t("sales"), "customer", json!({ "name": "Walk-in Ltd" })).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(d.ids("sales", "entities/customer?").await.0.contains(&own));
    assert!(!d.ids("sales2", "entities/customer?").await.0.contains(&own));

    // Orders follow their customer's territory, two references away.
    let coast_order = d.order("manager", "pwani_traders").await;
    let city_order = d.order("manager", "savanna_hotel").await;
    let (sales_orders, _) = d.ids("sales", "entities/order?").await;
    assert!(sales_orders.contains(&city_order) && !sales_orders.contains(&coast_order));
    let (sales2_orders, n) = d.ids("sales2", "entities/order?").await;
    assert_eq!((sales2_orders, n), (vec![coast_order.clone()], 1));
    // Filters and sorts combine with the rule.
    let (filtered, _) = d.ids("sales", &format!("entities/order?customer_id={pwani}&sort=-created_at")).await;
    assert!(filtered.is_empty());

    // Outside the rule the order does not exist, whatever the route; inside, it does.
    for (route, status, code) in d.reach("sales", "order", &coast_order).await {
        match route.as_str() {
            "bulk" => assert_eq!((status, code.as_str()), (200, "NOT_FOUND"), "{route}"),
            _ => assert_eq!((status, code.as_str()), (404, "NOT_FOUND"), "{route}"),
        }
    }
    // The rep of the coast reaches it through every route (refused only for want of a role).
    let seen = d.reach("sales2", "order", &coast_order).await;
    assert!(seen.iter().all(|(_, status, code)| *status != 404 && code != "NOT_FOUND"), "{seen:?}");
    assert_eq!((seen[0].1, seen[3].1), (200, 200), "{seen:?}");
    // The inbox: the city order (a draft of an active customer, which sales reps may submit)
    // waits for its rep only.
    assert!(d.strings("sales", "inbox?type=order&limit=100", "/entity/id").await.contains(&city_order));
    assert!(!d.strings("sales2", "inbox?type=order&limit=100", "/entity/id").await.contains(&city_order));
    // Bulk by filter acts on the rows the rule shows only.
    let r =
        d.s.post(
            "entities/order/transitions/cancelOrder",
            d.t("sales"),
            &json!({ "filter": {}, "input": { "reason": "t" }, "dry_run": true }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let touched: Vec<&str> =
        r.body["results"].as_array().expect("results").iter().filter_map(|x| x["id"].as_str()).collect();
    assert!(touched.contains(&city_order.as_str()) && !touched.contains(&coast_order.as_str()), "{touched:?}");

    // Events: the coast order's events reach its rep, not the other.
    let events = |user: &'static str| d.strings(user, "events?limit=500", "/entity_id");
    for _ in 0..100 {
        if events("manager").await.contains(&city_order) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (sales_events, sales2_events) = (events("sales").await, events("sales2").await);
    assert!(sales_events.contains(&city_order) && !sales_events.contains(&coast_order));
    assert!(sales2_events.contains(&coast_order) && !sales2_events.contains(&city_order));
    assert!(!sales_events.contains(&pwani));

    // Drivers: their own trips and the orders on them.
    let order = d.order("sales", "savanna_hotel").await;
    d.ok("sales", "order", &order, "submitOrder", json!({})).await;
    d.ok("manager", "order", &order, "approveOrder", json!({})).await;
    d.ok("warehouse", "order", &order, "allocateInventory", json!({})).await;
    let trip =
        d.s.create(
            d.t("dispatcher"),
            "trip",
            json!({ "warehouse_id": d.s.sample("main"), "scheduled_date": "2026-03-02",
                    "driver_id": "driver@chemichemi.test", "order_ids": [order] }),
        )
        .await["id"]
            .as_str()
            .expect("id")
            .to_string();
    d.ok("dispatcher", "trip", &trip, "planTrip", json!({})).await;
    d.ok("dispatcher", "trip", &trip, "dispatchTrip", json!({ "vehicle_id": d.s.sample("truck1") })).await;
    assert_eq!(d.ids("driver", "entities/trip?").await, (vec![trip.clone()], 1));
    assert_eq!(d.ids("driver2", "entities/trip?").await, (vec![], 0));
    // `me` in a user field's filter is the caller: the driver's trips, none of the dispatcher's.
    assert_eq!(d.ids("driver", "entities/trip?driver_id=me").await, (vec![trip.clone()], 1));
    assert_eq!(d.ids("dispatcher", "entities/trip?driver_id=me").await, (vec![], 0));
    assert_eq!(d.ids("driver", "entities/order?").await, (vec![order.clone()], 1));
    assert_eq!(d.ids("driver2", "entities/order?").await, (vec![], 0));
    assert_eq!(d.get("driver2", &format!("entities/trip/{trip}")).await.status, 404);
    d.ok("driver", "trip", &trip, "startTrip", json!({})).await;
    let r = d.s.fire(d.t("driver2"), "trip", &trip, "completeTrip", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);

    // Under concurrency: many readers inside and outside the rule at once, never a leak.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (user, id) = if i % 2 == 0 { ("sales", coast_order.clone()) } else { ("sales2", coast_order.clone()) };
        let (token, url) = (d.t(user).to_string(), d.s.url(&format!("entities/order/{id}")));
        let s = d.s.clone_view();
        tasks.push(tokio::spawn(async move {
            let r = s.request(reqwest::Method::GET, &url, Some(&token), None, &[]).await;
            (user, r.status)
        }));
    }
    for t in tasks {
        let (user, status) = t.await.expect("task");
        assert_eq!(status, if user == "sales" { 404 } else { 200 }, "{user}");
    }
    workers.stop(std::time::Duration::from_secs(5)).await;
}
