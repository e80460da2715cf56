//! The engine end to end over real HTTP on a real Postgres: the chemichemi order flow, every
//! failure kind leaving the database as it was, concurrency, idempotency, sandbox limits.

use serde_json::{json, Value};
use switchyard_tests::server::TestServer;
use switchyard_tests::{test_db, TestDb};

/// Everything a tenant has in the database, to compare before and after a failed request: its
/// entities, history, outbox and the rows the outbox trigger queues (`outbox_pending`), the event
/// stream (`event_streams`, `event_log`), timers, sequences, idempotency keys and webhook
/// deliveries. (These tests start no relay or timer worker, so nothing changes in between.)
async fn snapshot(db: &TestDb, server: &TestServer) -> Value {
    let mut tx = db.tenant_tx(server.tenant).await;
    let mut out = serde_json::Map::new();
    for (name, query) in [
        ("entities", "select coalesce(jsonb_agg(to_jsonb(e) order by id), '[]') from entities e where tenant_id = $1"),
        (
            "history",
            "select coalesce(jsonb_agg(to_jsonb(t) order by id), '[]') from transitions t where tenant_id = $1",
        ),
        ("outbox", "select coalesce(jsonb_agg(to_jsonb(o) order by id), '[]') from outbox o where tenant_id = $1"),
        (
            "sequences",
            "select coalesce(jsonb_agg(to_jsonb(s) order by name), '[]') from sequences s where tenant_id = $1",
        ),
        (
            "idempotency",
            "select coalesce(jsonb_agg(to_jsonb(i) order by key), '[]') from idempotency i where tenant_id = $1",
        ),
        ("timers", "select coalesce(jsonb_agg(to_jsonb(t) order by id), '[]') from timers t where tenant_id = $1"),
        (
            "outbox_pending",
            "select coalesce(jsonb_agg(to_jsonb(p) order by outbox_id), '[]') from outbox_pending p where tenant_id = $1",
        ),
        (
            "event_streams",
            "select coalesce(jsonb_agg(to_jsonb(s)), '[]') from event_streams s where tenant_id = $1",
        ),
        (
            "event_log",
            "select coalesce(jsonb_agg(to_jsonb(l) order by position), '[]') from event_log l where tenant_id = $1",
        ),
        (
            "webhook_deliveries",
            "select coalesce(jsonb_agg(to_jsonb(d) order by id), '[]') from webhook_deliveries d where tenant_id = $1",
        ),
    ] {
        let v: Value = sqlx::query_scalar(query).bind(server.tenant).fetch_one(&mut *tx).await.expect(name);
        out.insert(name.to_string(), v);
    }
    tx.commit().await.expect("commit");
    Value::Object(out)
}

fn id(v: &Value) -> String {
    v["id"].as_str().or_else(|| v["entity"]["id"].as_str()).expect("id").to_string()
}

/// A draft order of `qty` units of `product` in warehouse `main`.
async fn draft_order(s: &TestServer, token: &str, customer: &str, product: &str, qty: i64) -> String {
    let order = s
        .create(
            token,
            "order",
            json!({
                "customer_id": s.sample(customer),
                "warehouse_id": s.sample("main"),
                "items": [{ "product_id": s.sample(product), "quantity": qty }],
            }),
        )
        .await;
    id(&order)
}

async fn stock(s: &TestServer, token: &str, warehouse: &str, product: &str) -> (i64, i64) {
    let r = s.get("entities/inventory?limit=500", token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let row = r.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|e| e["data"]["warehouse_id"] == s.sample(warehouse) && e["data"]["product_id"] == s.sample(product))
        .expect("inventory row")
        .clone();
    (
        row["data"]["quantity_on_hand"].as_i64().expect("on hand"),
        row["data"]["quantity_reserved"].as_i64().expect("reserved"),
    )
}

#[tokio::test]
async fn an_order_goes_from_draft_to_allocated_and_cancelling_releases_stock() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let manager = s.token(&db, "manager@chemichemi.test").await;
    let warehouse = s.token(&db, "warehouse@chemichemi.test").await;

    let created = s
        .create(
            &sales,
            "order",
            json!({
                "customer_id": s.sample("savanna_hotel"),
                "warehouse_id": s.sample("main"),
                "items": [
                    { "product_id": s.sample("lpg6"), "quantity": 3 },
                    { "product_id": s.sample("bleach5"), "quantity": 2, "unit_price": 600 },
                ],
            }),
        )
        .await;
    assert_eq!(created["state"], "DRAFT");
    assert_eq!(created["version"], 1);
    let number = created["data"]["order_number"].as_str().expect("order number");
    assert!(number.starts_with("ORD-") && number.len() == "ORD-2026-000001".len(), "{number}");
    let order = id(&created);

    let r = s.fire(&sales, "order", &order, "submitOrder", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["state"], "PENDING_APPROVAL");
    // 3 × 1150 + 2 × 650, from the customer's price list: the 600 given for the bleach is replaced.
    assert_eq!(r.body["entity"]["data"]["total_amount"], "4750.00");
    assert_eq!(r.body["entity"]["data"]["items"][1]["unit_price"], "650.00");
    assert_eq!(r.body["events"][0]["name"], "order.submitted");

    // The sales user may not approve; the manager may.
    let r = s.fire(&sales, "order", &order, "approveOrder", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    let r = s.fire(&manager, "order", &order, "approveOrder", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["state"], "APPROVED");

    let before = stock(&s, &manager, "main", "lpg6").await;
    let r = s.fire(&warehouse, "order", &order, "allocateInventory", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(stock(&s, &manager, "main", "lpg6").await, (before.0, before.1 + 3));

    let r = s.fire(&manager, "order", &order, "cancelOrder", json!({ "reason": "customer called" })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["state"], "CANCELLED");
    assert_eq!(stock(&s, &manager, "main", "lpg6").await, before);

    let h = s.get(&format!("entities/order/{order}/history"), &manager).await;
    let names: Vec<&str> =
        h.body["data"].as_array().expect("history").iter().filter_map(|r| r["transition"].as_str()).collect();
    // The order's create transition (placeOrder) is its first history row.
    assert_eq!(names, ["placeOrder", "submitOrder", "approveOrder", "allocateInventory", "cancelOrder"]);
    let approve = &h.body["data"][2];
    assert_eq!(approve["from"], "PENDING_APPROVAL");
    assert_eq!(approve["to"], "APPROVED");
    assert_eq!(approve["actor"]["email"], "manager@chemichemi.test");
    assert!(approve["definition_version"].as_i64().is_some());
    assert!(approve["changes"]["approved_by"].is_object(), "{approve}");
}

#[tokio::test]
async fn every_failure_kind_leaves_the_database_as_it_was() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let manager = s.token(&db, "manager@chemichemi.test").await;
    let warehouse = s.token(&db, "warehouse@chemichemi.test").await;

    // An empty order cannot be submitted (guard); an approved-by-creator order cannot be approved.
    let empty = id(&s
        .create(
            &sales,
            "order",
            json!({ "customer_id": s.sample("savanna_hotel"), "warehouse_id": s.sample("main"), "items": [] }),
        )
        .await);
    let mine = draft_order(&s, &manager, "savanna_hotel", "lpg6", 1).await;
    assert_eq!(s.fire(&manager, "order", &mine, "submitOrder", json!({})).await.status, 200);
    let poor = draft_order(&s, &sales, "mama_njeri", "lpg13", 2).await;
    assert_eq!(s.fire(&sales, "order", &poor, "submitOrder", json!({})).await.status, 200);
    let short = draft_order(&s, &sales, "savanna_hotel", "degreaser20", 6).await;
    assert_eq!(s.fire(&sales, "order", &short, "submitOrder", json!({})).await.status, 200);
    let manager2 = s.token(&db, "manager2@chemichemi.test").await;
    assert_eq!(s.fire(&manager2, "order", &short, "approveOrder", json!({})).await.status, 200);

    let before = snapshot(&db, &s).await;
    let cases: Vec<(u16, &str, reqwest_case::Case)> = vec![
        (409, "INVALID_TRANSITION", reqwest_case::fire(&sales, &empty, "approveOrder", json!({}))),
        (409, "INVALID_TRANSITION", reqwest_case::fire(&sales, &empty, "noSuchTransition", json!({}))),
        (403, "FORBIDDEN", reqwest_case::fire(&sales, &mine, "approveOrder", json!({}))),
        (422, "VALIDATION_FAILED", reqwest_case::fire(&manager2, &mine, "rejectOrder", json!({ "reason": "x" }))),
        (409, "GUARD_FAILED", reqwest_case::fire(&sales, &empty, "submitOrder", json!({}))),
        (409, "GUARD_FAILED", reqwest_case::fire(&manager, &mine, "approveOrder", json!({}))),
        (409, "GUARD_FAILED", reqwest_case::fire(&manager, &poor, "approveOrder", json!({}))),
        (409, "GUARD_FAILED", reqwest_case::fire(&warehouse, &short, "allocateInventory", json!({}))),
        // Text no Postgres column can hold (a NUL), in the input and so in the history row: no
        // literal can hold it, so the writes go as parameterized statements, which Postgres refuses.
        (
            422,
            "INVALID_VALUE",
            reqwest_case::fire(&manager2, &poor, "rejectOrder", json!({ "reason": "too\u{0}much" })),
        ),
    ];
    for (status, code, case) in cases {
        let r = case.run(&s).await;
        assert_eq!((r.status, r.code()), (status, code), "{}: {:?}", case.describe(), r.body);
        assert_eq!(snapshot(&db, &s).await, before, "{} left something behind", case.describe());
    }

    // The guard messages are the package's.
    let r = s.fire(&manager, "order", &mine, "approveOrder", json!({})).await;
    assert_eq!(r.body["error"]["message"], "four-eyes: you created this order");
    let r = s.fire(&warehouse, "order", &short, "allocateInventory", json!({})).await;
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("CHM-DEGR-20L (Industrial degreaser 20 L)"), "names the short product: {message}");

    // A stale If-Match.
    let r = s
        .request(
            reqwest::Method::POST,
            &s.url(&format!("entities/order/{poor}/transitions/rejectOrder")),
            Some(&manager),
            Some(&json!({ "input": { "reason": "too much" } })),
            &[("If-Match", "1")],
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT"), "{:?}", r.body);
    assert_eq!(snapshot(&db, &s).await, before, "version conflict left something behind");

    // Refused before anything is read: no token or a bad one (401), an entity or a type that
    // does not exist (404), a token of another tenant (403).
    let foreign = s.foreign_token(uuid::Uuid::now_v7(), "other", &["admin".to_string(), "manager".to_string()]);
    let reject = |order: &str| s.url(&format!("entities/order/{order}/transitions/rejectOrder"));
    let body = json!({ "input": { "reason": "too much" } });
    let missing = uuid::Uuid::now_v7().to_string();
    let cases: [(&str, String, Option<&str>, u16, &str); 6] = [
        ("no token", reject(&poor), None, 401, "UNAUTHORIZED"),
        ("a bad token", reject(&poor), Some("not-a-token"), 401, "UNAUTHORIZED"),
        ("an unknown entity", reject(&missing), Some(&manager), 404, "NOT_FOUND"),
        ("a malformed id", reject("not-a-uuid"), Some(&manager), 404, "NOT_FOUND"),
        (
            "an unknown type",
            s.url(&format!("entities/spaceship/{poor}/transitions/rejectOrder")),
            Some(&manager),
            404,
            "NOT_FOUND",
        ),
        ("another tenant's token", reject(&poor), Some(&foreign), 403, "FORBIDDEN"),
    ];
    for (what, url, token, status, code) in cases {
        let r = s.request(reqwest::Method::POST, &url, token, Some(&body), &[]).await;
        assert_eq!((r.status, r.code()), (status, code), "{what}: {:?}", r.body);
        assert_eq!(snapshot(&db, &s).await, before, "{what} left something behind");
    }
}

/// The `rollback` fixture: transitions that fail after they started writing (the entity, its
/// timers and history, an update of a locked row, a created entity and its outbox event, a
/// follow-up transition's own writes) must leave every table as it was; the same transition
/// without the failing step writes all of it, so the snapshot does look at those rows.
#[tokio::test]
async fn a_failure_after_the_writes_started_leaves_nothing() {
    let db = test_db().await;
    let s = TestServer::start(&db, "rollback").await;
    let user = s.token(&db, "user@rollback.test").await;
    let job = |title: &str| json!({ "title": title, "part_id": s.sample("bolt") });
    let dangling = id(&s.create(&user, "job", job("dangling")).await);
    let cascade = id(&s.create(&user, "job", job("cascade")).await);

    let before = snapshot(&db, &s).await;
    // The second note references no job: refused by the reference check, which runs after the
    // job, its timers, its history, the part's update and the first note were written.
    let r = s.fire(&user, "job", &dangling, "startWithDanglingNote", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert!(r.error_paths().iter().any(|p| p.ends_with("/job_id")), "{:?}", r.body);
    assert_eq!(snapshot(&db, &s).await, before, "the dangling reference left something behind");

    // The first follow-up (`reserve` on the part: its state, timer, history and event) runs;
    // the second (`consume`) is refused by its guard.
    let r = s.fire(&user, "job", &cascade, "startAndConsume", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "Not enough stock to consume the part");
    assert_eq!(snapshot(&db, &s).await, before, "the refused follow-up left something behind");

    // The control: the same writes, committed, show up in every part of the snapshot.
    let r = s.fire(&user, "job", &dangling, "start", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let after = snapshot(&db, &s).await;
    let len = |v: &Value, table: &str| v[table].as_array().map_or(0, Vec::len);
    // The outbox: the note's `created`, the job's `started`, and the part's `entity.changed`
    // (the script updated it; such a change emits no event of its own).
    for (table, added) in [("entities", 1), ("history", 3), ("outbox", 3), ("outbox_pending", 3), ("timers", 1)] {
        assert_eq!(len(&after, table), len(&before, table) + added, "{table}: {}", after[table]);
    }
    let part = |v: &Value| {
        v["entities"].as_array().and_then(|e| e.iter().find(|e| e["type"] == "part")).cloned().unwrap_or_default()
    };
    assert_eq!((part(&before)["data"]["uses"].clone(), part(&after)["data"]["uses"].clone()), (json!(0), json!(1)));
}

/// A transition's events enter the outbox in the order the answer lists them, each under the
/// transition's history row: with the transition's own write (no entity created) and after the
/// created entities' `created` events (when the script creates some).
#[tokio::test]
async fn a_transitions_events_enter_the_outbox_in_order_under_its_history_row() {
    let db = test_db().await;
    let s = TestServer::start(&db, "rollback").await;
    let user = s.token(&db, "user@rollback.test").await;
    let outbox = |entity: String| {
        let owner = db.owner.clone();
        async move {
            let rows: Vec<(String, Option<i64>, i64)> = sqlx::query_as(
                "select o.name, o.transition_id, t.id from outbox o \
                 join transitions t on t.tenant_id = o.tenant_id and t.id = o.transition_id \
                 where t.entity_id = $1::uuid order by o.id",
            )
            .bind(entity)
            .fetch_all(&owner)
            .await
            .expect("outbox");
            rows
        }
    };
    for (transition, created) in [("announce", 0), ("start", 1)] {
        let job = id(&s.create(&user, "job", json!({ "title": transition, "part_id": s.sample("bolt") })).await);
        let r = s.fire(&user, "job", &job, transition, json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let answered: Vec<&str> =
            r.body["events"].as_array().expect("events").iter().filter_map(|e| e["name"].as_str()).collect();
        let rows = outbox(job.clone()).await;
        // The built-in `entity.changed` of a row the script updated (`start` updates the part) is
        // written under the same history row, and is not in the answer.
        let changed = rows.iter().filter(|(name, _, _)| name == engine::store::ENTITY_CHANGED).count();
        assert_eq!(changed, usize::from(transition == "start"), "{transition}: {rows:?}");
        let stored: Vec<&str> =
            rows.iter().map(|(name, _, _)| name.as_str()).filter(|n| *n != engine::store::ENTITY_CHANGED).collect();
        assert_eq!(stored, answered, "{transition}: outbox order");
        assert_eq!(stored.iter().filter(|n| n.ends_with(".created")).count(), created, "{transition}: {stored:?}");
        if transition == "announce" {
            assert_eq!(stored, ["job.announced", "job.first", "job.second"], "declared events, then the script's");
        }
        let history: Vec<i64> =
            sqlx::query_scalar("select id from transitions where entity_id = $1::uuid and transition = $2")
                .bind(&job)
                .bind(transition)
                .fetch_all(&db.owner)
                .await
                .expect("history");
        assert_eq!(history.len(), 1);
        assert!(rows.iter().all(|(_, t, _)| *t == Some(history[0])), "{transition}: {rows:?} under {history:?}");
    }
}

/// A small description of a request, so the failure table above reads as data.
mod reqwest_case {
    use serde_json::Value;
    use switchyard_tests::server::{Reply, TestServer};

    pub struct Case {
        token: String,
        order: String,
        name: String,
        input: Value,
    }

    pub fn fire(token: &str, order: &str, name: &str, input: Value) -> Case {
        Case { token: token.to_string(), order: order.to_string(), name: name.to_string(), input }
    }

    impl Case {
        pub async fn run(&self, s: &TestServer) -> Reply {
            s.fire(&self.token, "order", &self.order, &self.name, self.input.clone()).await
        }

        pub fn describe(&self) -> String {
            format!("{} {}", self.name, self.input)
        }
    }
}

#[tokio::test]
async fn twenty_concurrent_identical_transitions_one_wins() {
    let db = test_db().await;
    let s = std::sync::Arc::new(TestServer::start(&db, "chemichemi").await);
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let order = draft_order(&s, &sales, "savanna_hotel", "lpg6", 1).await;

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        let (sales, order) = (sales.clone(), order.clone());
        tasks.push(tokio::spawn(async move { s.fire(&sales, "order", &order, "submitOrder", json!({})).await }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for t in tasks {
        let r = t.await.expect("task");
        match r.status {
            200 => ok += 1,
            409 => conflicts += 1,
            other => panic!("unexpected {other}: {:?}", r.body),
        }
    }
    assert_eq!((ok, conflicts), (1, 19));
    let h = s.get(&format!("entities/order/{order}/history"), &sales).await;
    let submits = h.body["data"].as_array().expect("rows").iter().filter(|r| r["transition"] == "submitOrder").count();
    assert_eq!(submits, 1);
}

#[tokio::test]
async fn concurrent_allocations_never_over_reserve() {
    let db = test_db().await;
    let s = std::sync::Arc::new(TestServer::start(&db, "chemichemi").await);
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let manager = s.token(&db, "manager@chemichemi.test").await;
    let warehouse = s.token(&db, "warehouse@chemichemi.test").await;
    // 5 degreasers in stock in `main`; eight orders of 2 each compete for them (split between two
    // customers: approving counts every open order against the customer's credit).
    // Pwani Traders is on the coast: its rep (sales2@, by the customer's record rule) submits it.
    let pwani = s.sample("pwani_traders");
    let sales2 = s.token(&db, "sales2@chemichemi.test").await;
    assert_eq!(s.fire(&sales2, "customer", &pwani, "submitCustomer", json!({})).await.status, 200);
    assert_eq!(s.fire(&manager, "customer", &pwani, "approveCustomer", json!({})).await.status, 200);
    let mut orders = Vec::new();
    for customer in ["savanna_hotel", "pwani_traders"].repeat(4) {
        let o = draft_order(&s, &sales, customer, "degreaser20", 2).await;
        assert_eq!(s.fire(&sales, "order", &o, "submitOrder", json!({})).await.status, 200);
        let r = s.fire(&manager, "order", &o, "approveOrder", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        orders.push(o);
    }
    let mut tasks = Vec::new();
    for o in orders {
        let s = s.clone();
        let w = warehouse.clone();
        tasks.push(tokio::spawn(async move { s.fire(&w, "order", &o, "allocateInventory", json!({})).await }));
    }
    let mut allocated = 0;
    for t in tasks {
        let r = t.await.expect("task");
        match (r.status, r.code()) {
            (200, _) => allocated += 1,
            (409, "GUARD_FAILED") => {}
            other => panic!("unexpected {other:?}: {:?}", r.body),
        }
    }
    assert_eq!(allocated, 2, "5 units cover two orders of 2");
    let (on_hand, reserved) = stock(&s, &manager, "main", "degreaser20").await;
    assert_eq!((on_hand, reserved), (5, 4));
}

#[tokio::test]
async fn the_same_idempotency_key_twice_has_one_effect_and_one_answer() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let order = draft_order(&s, &sales, "savanna_hotel", "lpg6", 2).await;
    let url = s.url(&format!("entities/order/{order}/transitions/submitOrder"));
    let body = json!({ "input": {} });
    let first = s.request(reqwest::Method::POST, &url, Some(&sales), Some(&body), &[("Idempotency-Key", "k-1")]).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let after_first = snapshot(&db, &s).await;
    let second = s.request(reqwest::Method::POST, &url, Some(&sales), Some(&body), &[("Idempotency-Key", "k-1")]).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(first.body, second.body);
    assert_eq!(snapshot(&db, &s).await, after_first, "the replay changed something");

    // The same key for another request is refused.
    let other = json!({ "input": { "note": "different" } });
    let r = s.request(reqwest::Method::POST, &url, Some(&sales), Some(&other), &[("Idempotency-Key", "k-1")]).await;
    assert_eq!((r.status, r.code()), (422, "IDEMPOTENCY_KEY_REUSED"), "{:?}", r.body);
}

#[tokio::test]
async fn runaway_scripts_end_as_script_limit_and_leave_nothing_behind() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    let user = s.token(&db, "user@sandbox.test").await;
    let thing = id(&s.create(&user, "thing", json!({ "name": "t" })).await);
    let before = snapshot(&db, &s).await;
    for name in ["spin", "recurse", "bloat"] {
        let started = std::time::Instant::now();
        let r = s.fire(&user, "thing", &thing, name, json!({})).await;
        let elapsed = started.elapsed();
        assert_eq!((r.status, r.code()), (422, "SCRIPT_LIMIT"), "{name}: {:?}", r.body);
        // The wall-time limit is 500 ms (operations, depth and sizes usually end it sooner); a
        // second from request to response leaves room for a loaded test machine.
        eprintln!("{name}: SCRIPT_LIMIT after {elapsed:?}");
        assert!(elapsed < std::time::Duration::from_secs(1), "{name} ran {elapsed:?}, over 1 s");
        assert_eq!(snapshot(&db, &s).await, before, "{name} left something behind");
        // The server still serves the next request normally.
        let r = s.get(&format!("entities/thing/{thing}"), &user).await;
        assert_eq!(r.status, 200);
    }
    let r = s.fire(&user, "thing", &thing, "throw", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "SCRIPT_FAILED"), "{:?}", r.body);
    assert_eq!(snapshot(&db, &s).await, before);
    let r = s.fire(&user, "thing", &thing, "bump", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["data"]["counter"], 1);
}

#[tokio::test]
async fn auth_tenant_and_lookup_errors_use_the_envelope() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let admin = s.token(&db, "admin@chemichemi.test").await;

    let r = s.request(reqwest::Method::GET, &s.url("entities/order"), None, None, &[]).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    let r = s.request(reqwest::Method::GET, &s.url("entities/order"), Some("not-a-token"), None, &[]).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    let foreign = s.foreign_token(uuid::Uuid::now_v7(), "other", &["admin".to_string()]);
    let r = s.request(reqwest::Method::GET, &s.url("entities/order"), Some(&foreign), None, &[]).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));
    let r = s.get("entities/spaceship", &sales).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    let r = s.get(&format!("entities/order/{}", uuid::Uuid::now_v7()), &sales).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    let r = s.get("entities/order/not-a-uuid", &sales).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    let r = s
        .post("entities/order", &sales, &json!({ "data": { "customer_id": "nope", "items": [{ "quantity": 0 }] } }))
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let paths = r.error_paths();
    for p in ["/data/customer_id", "/data/warehouse_id", "/data/items/0/product_id", "/data/items/0/quantity"] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }

    // The rules playground is for admins.
    let rule = json!({ "logic": { "<": [{ "var": "a" }, 3] }, "data": { "a": 2 } });
    let r = s.post("rules/evaluate", &sales, &rule).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));
    let r = s.post("rules/evaluate", &admin, &rule).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({ "result": true })));
}

#[tokio::test]
async fn lists_filter_by_state_and_paginate_with_a_cursor() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(draft_order(&s, &sales, "savanna_hotel", "lpg6", 1).await);
    }
    assert_eq!(s.fire(&sales, "order", &ids[0], "submitOrder", json!({})).await.status, 200);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("entities/order?state=DRAFT&limit=2&cursor={c}"),
            None => "entities/order?state=DRAFT&limit=2".to_string(),
        };
        let r = s.get(&path, &sales).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        for e in r.body["data"].as_array().expect("data") {
            assert_eq!(e["state"], "DRAFT");
            seen.push(id(e));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids[1..].to_vec());
    let r = s.get("entities/order?limit=100000", &sales).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"));
}

#[tokio::test]
async fn available_transitions_explain_roles_and_guards() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let manager = s.token(&db, "manager@chemichemi.test").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let order = draft_order(&s, &manager, "savanna_hotel", "lpg6", 1).await;
    assert_eq!(s.fire(&manager, "order", &order, "submitOrder", json!({})).await.status, 200);

    let r = s.get(&format!("entities/order/{order}/transitions"), &manager).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let list = r.body["data"].as_array().expect("list");
    let names: Vec<&str> = list.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["approveOrder", "rejectOrder", "cancelOrder"]);
    let approve = &list[0];
    assert_eq!(approve["to"], "APPROVED");
    assert_eq!(approve["allowed"], false, "the creator cannot approve: {approve}");
    assert_eq!(approve["guards"][0]["passed"], false);
    assert_eq!(approve["guards"][0]["message"], "four-eyes: you created this order");
    assert!(list[1]["input_schema"]["required"].as_array().is_some_and(|r| r.contains(&json!("reason"))));

    let r = s.get(&format!("entities/order/{order}/transitions"), &sales).await;
    let approve = &r.body["data"][0];
    assert_eq!((approve["allowed"].clone(), approve["role_allowed"].clone()), (json!(false), json!(false)));
}

/// The `loads` fixture: `sale.submit` loads the customer, then its price list (by the customer's
/// `price_list_id`, locked and updated by the script) and its open sales (a filter on the
/// customer's id): loads reading earlier loads, resolved stage by stage in the database.
#[tokio::test]
async fn loads_read_the_loads_declared_before_them() {
    let db = test_db().await;
    let s = TestServer::start(&db, "loads").await;
    let clerk = s.token(&db, "clerk@loads.test").await;
    let boss = s.token(&db, "boss@loads.test").await;
    let sale = |customer: &str, amount: f64| json!({ "customer_id": s.sample(customer), "amount": amount });
    let uses = |key: &'static str| {
        let (s, boss) = (&s, &boss);
        async move {
            let r = s.get(&format!("entities/price_list/{}", s.sample(key)), boss).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body["data"]["uses"].as_i64().expect("uses")
        }
    };

    // Acme buys on the special list (20 % off): the sale names no list, the customer does.
    let first = id(&s.create(&clerk, "sale", sale("acme", 500.0)).await);
    let r = s.fire(&clerk, "sale", &first, "submit", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["data"]["price_list_id"], s.sample("special"));
    assert_eq!(r.body["entity"]["data"]["total"].as_f64(), Some(400.0));
    assert_eq!(uses("special").await, 1, "the dependent load was locked and updated");

    // A customer without a list: the dependent load falls back on the default list.
    let plain = id(&s.create(&clerk, "sale", sale("plain", 5000.0)).await);
    let r = s.fire(&clerk, "sale", &plain, "submit", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["data"]["price_list_id"], s.sample("standard"));
    assert_eq!(r.body["entity"]["data"]["total"].as_f64(), Some(5000.0));
    assert_eq!((uses("standard").await, uses("special").await), (1, 1));

    // The credit check counts the customer's open sales (a filter reading the customer load):
    // 400 open + 900 fits Acme's 2000, then 400 + 720 open + 900 does not.
    let second = id(&s.create(&clerk, "sale", sale("acme", 900.0)).await);
    assert_eq!(s.fire(&clerk, "sale", &second, "submit", json!({})).await.status, 200);
    let third = id(&s.create(&clerk, "sale", sale("acme", 900.0)).await);
    let before = snapshot(&db, &s).await;
    let r = s.fire(&clerk, "sale", &third, "submit", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "The customer's open sales would exceed its credit limit");
    let loads: Vec<(String, i64)> = r.body["error"]["details"]["trace"]["loads"]
        .as_array()
        .expect("load traces")
        .iter()
        .map(|l| (l["name"].as_str().unwrap_or_default().to_string(), l["rows"].as_i64().unwrap_or(-1)))
        .collect();
    let expected = [("customer", 1), ("defaults", 1), ("price_list", 1), ("open_sales", 2)];
    assert_eq!(loads, expected.map(|(n, r)| (n.to_string(), r)));
    assert_eq!(snapshot(&db, &s).await, before, "the refused submit left something behind");

    // Closing one frees its credit.
    assert_eq!(s.fire(&boss, "sale", &second, "close", json!({})).await.status, 200);
    let r = s.fire(&clerk, "sale", &third, "submit", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(uses("special").await, 3);

    // Above what the customer's list prices: refused by a guard reading the dependent load.
    let big = id(&s.create(&clerk, "sale", sale("acme", 1500.0)).await);
    let r = s.fire(&clerk, "sale", &big, "submit", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "The amount is above what the price list prices");
}

/// A row a script changes (`update(part, …)` in `start`) is written with its history row and its
/// `entity.changed` event in one statement: the row's new data and version, a history row of the
/// same state under the transition's, and the event's payload naming the row's new version.
#[tokio::test]
async fn a_row_the_script_changes_gets_its_history_row_and_its_entity_changed() {
    let db = test_db().await;
    let s = TestServer::start(&db, "rollback").await;
    let user = s.token(&db, "user@rollback.test").await;
    let part = s.sample("bolt");
    let before = s.get(&format!("entities/part/{part}"), &user).await;
    assert_eq!(before.status, 200, "{:?}", before.body);
    let job = id(&s.create(&user, "job", json!({ "title": "one", "part_id": part })).await);
    let r = s.fire(&user, "job", &job, "start", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let after = s.get(&format!("entities/part/{part}"), &user).await;
    let (v0, v1) = (before.body["version"].as_i64().expect("version"), after.body["version"].as_i64().expect("v"));
    assert_eq!(v1, v0 + 1);
    assert_eq!(after.body["data"]["uses"], json!(before.body["data"]["uses"].as_i64().unwrap_or(0) + 1));
    assert_eq!(after.body["state"], before.body["state"], "an update keeps the row's state");

    let (job_history,): (i64,) =
        sqlx::query_as("select id from transitions where entity_id = $1::uuid and transition = 'start'")
            .bind(&job)
            .fetch_one(&db.owner)
            .await
            .expect("the job's history row");
    /// transition, from, to, changes, parent, actor's e-mail
    type HistoryLine = (String, Option<String>, String, Value, Option<i64>, String);
    let rows: Vec<HistoryLine> = sqlx::query_as(
        "select transition, from_state, to_state, changes, parent_id, actor_email from transitions \
         where entity_id = $1::uuid order by id",
    )
    .bind(&part)
    .fetch_all(&db.owner)
    .await
    .expect("the part's history");
    let state = before.body["state"].as_str().expect("state").to_string();
    let last = rows.last().expect("a history row for the update");
    assert_eq!(
        (last.0.as_str(), last.1.as_deref(), last.2.as_str(), last.4, last.5.as_str()),
        ("start", Some(state.as_str()), state.as_str(), Some(job_history), "user@rollback.test")
    );
    assert_eq!(last.3["uses"]["to"], after.body["data"]["uses"], "{:?}", last.3);

    let (name, payload, transition_id): (String, Value, Option<i64>) = sqlx::query_as(
        "select name, payload, transition_id from outbox where entity_id = $1::uuid order by id desc limit 1",
    )
    .bind(&part)
    .fetch_one(&db.owner)
    .await
    .expect("the part's event");
    assert_eq!(name, engine::store::ENTITY_CHANGED);
    assert_eq!(transition_id, Some(job_history));
    assert_eq!(payload, json!({ "id": part, "type": "part", "state": state, "version": v1 }));
}
