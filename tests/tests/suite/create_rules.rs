//! Rules at creation (`tests/fixtures/create`): which fields a role may set when it creates
//! (`roles.<role>.create.<type>.fields` / `except`), the create condition (`rule`, over the new
//! entity and the actor), both on `POST …/entities/{type}` and on import; the create transition
//! (`create: true`), run in the insert's transaction — success with its history and events,
//! and a guard, a `fail()` or a broken script leaving nothing behind; and `export` apart from
//! `view` for the CSV export.

use serde_json::{json, Value};
use switchyard_tests::server::TestServer;
use switchyard_tests::{test_db, TestDb};

struct Fixture {
    s: TestServer,
    customer: String,
    sales: String,
    clerk: String,
    admin: String,
    item: String,
}

async fn fixture(db: &TestDb) -> Fixture {
    let s = TestServer::start(db, "create").await;
    let customer = s.token(db, "customer@create.test").await;
    let sales = s.token(db, "sales@create.test").await;
    let clerk = s.token(db, "clerk@create.test").await;
    let admin = s.token(db, "admin@create.test").await;
    let item = s.create(&admin, "item", json!({ "sku": "LPG-13", "on_hand": 10 })).await;
    let item = item["id"].as_str().expect("id").to_string();
    Fixture { s, customer, sales, clerk, admin, item }
}

/// Rows of the `order` type in the tenant: entities, history rows, outbox events.
async fn order_rows(db: &TestDb, s: &TestServer) -> (i64, i64, i64) {
    let mut tx = db.tenant_tx(s.tenant).await;
    let mut counts = [0i64; 3];
    for (i, sql) in [
        "select count(*) from entities where type = 'order'",
        "select count(*) from transitions where entity_type = 'order'",
        "select count(*) from outbox where entity_type = 'order'",
    ]
    .into_iter()
    .enumerate()
    {
        counts[i] = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.expect("count");
    }
    (counts[0], counts[1], counts[2])
}

async fn reserved(f: &Fixture) -> i64 {
    let r = f.s.get(&format!("entities/item/{}", f.item), &f.admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["reserved"].as_i64().expect("reserved")
}

fn order(f: &Fixture, email: &str, quantity: i64) -> Value {
    json!({ "customer_email": email, "item_id": f.item, "quantity": quantity })
}

async fn import(s: &TestServer, token: &str, content_type: &str, body: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(s.url("entities/order/import"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("import");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json report"))
}

#[tokio::test]
async fn fields_a_role_may_not_set_are_refused_on_create_and_import() {
    let db = test_db().await;
    let f = fixture(&db).await;
    let s = &f.s;
    let before = order_rows(&db, s).await;

    // Sales may set anything but payment_collected.
    let mut data = order(&f, "someone@create.test", 1);
    data["payment_collected"] = json!(true);
    let r = s.post("entities/order", &f.sales, &json!({ "data": data })).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(r.error_paths(), ["/data/payment_collected"], "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["reason"], "fields");
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains("`payment_collected`"), "{:?}", r.body);

    // The customer may set only its list: a field outside it (here payment_collected) is named.
    let mut data = order(&f, "customer@create.test", 1);
    data["payment_collected"] = json!(true);
    let r = s.post("entities/order", &f.customer, &json!({ "data": data })).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(r.error_paths(), ["/data/payment_collected"], "{:?}", r.body);
    assert_eq!(order_rows(&db, s).await, before, "nothing written");

    // A field given its declared default is not set (a generated form sends the defaults it
    // shows): the entity is the same as without it.
    let mut data = order(&f, "someone@create.test", 1);
    data["payment_collected"] = json!(false);
    let e = s.create(&f.sales, "order", data).await;
    assert_eq!(e["data"]["payment_collected"], false);

    // The admin has no rules: anything the client may set.
    let mut data = order(&f, "someone@create.test", 1);
    data["payment_collected"] = json!(true);
    let e = s.create(&f.admin, "order", data).await;
    assert_eq!(e["data"]["payment_collected"], true);

    // Import: each refused row names the field; the allowed ones are created.
    let rows = json!([
        { "customer_email": "a@create.test", "item_id": f.item, "quantity": 1 },
        { "customer_email": "b@create.test", "item_id": f.item, "quantity": 1, "payment_collected": true },
    ]);
    let (status, report) = import(s, &f.sales, "application/json", rows.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["rejected"][0]["row"], 2, "{report}");
    assert_eq!(report["rejected"][0]["errors"][0]["path"], "/data/payment_collected", "{report}");

    // CSV import goes the same way.
    let csv = format!(
        "customer_email,item_id,quantity,payment_collected\nc@create.test,{},1,true\nd@create.test,{},1,\n",
        f.item, f.item
    );
    let (status, report) = import(s, &f.sales, "text/csv", csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["rejected"][0]["errors"][0]["path"], "/data/payment_collected", "{report}");
}

#[tokio::test]
async fn the_create_condition_must_hold_for_the_actor() {
    let db = test_db().await;
    let f = fixture(&db).await;
    let s = &f.s;
    let before = order_rows(&db, s).await;

    let r = s.post("entities/order", &f.customer, &json!({ "data": order(&f, "someone@create.test", 1) })).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "A customer may only order for themselves");
    assert_eq!(r.body["error"]["details"]["reason"], "rule");
    assert_eq!(order_rows(&db, s).await, before, "nothing written");

    // For themselves: created, through the create transition.
    let e = s.create(&f.customer, "order", order(&f, "customer@create.test", 2)).await;
    assert_eq!(e["state"], "PLACED");

    // Import applies the condition per row.
    let rows = json!([
        { "customer_email": "customer@create.test", "item_id": f.item, "quantity": 1 },
        { "customer_email": "else@create.test", "item_id": f.item, "quantity": 1 },
    ]);
    let (status, report) = import(s, &f.customer, "application/json", rows.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["rejected"][0]["row"], 2, "{report}");
    assert_eq!(report["rejected"][0]["errors"][0]["message"], "A customer may only order for themselves");
}

#[tokio::test]
async fn the_create_transition_runs_in_the_insert_transaction() {
    let db = test_db().await;
    let f = fixture(&db).await;
    let s = &f.s;

    let r = s
        .post(
            "entities/order",
            &f.sales,
            &json!({ "data": order(&f, "buyer@create.test", 4), "input": { "channel": "phone" } }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["state"], "PLACED", "created in the state the transition leads to");
    assert_eq!(r.body["data"]["channel"], "phone", "the script read the input");
    assert!(r.body["data"]["placed_at"].is_string(), "{:?}", r.body);
    assert_eq!(reserved(&f).await, 4, "the stock is reserved");

    // One history row: the create transition, from no state to PLACED, with its input.
    let h = s.get(&format!("entities/order/{id}/history"), &f.admin).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let rows = h.body["data"].as_array().or_else(|| h.body.as_array()).expect("history").clone();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["transition"], "placeOrder");
    assert_eq!(rows[0]["from"], Value::Null, "{rows:?}");
    assert_eq!(rows[0]["to"], "PLACED");
    assert_eq!(rows[0]["input"], json!({ "channel": "phone" }));

    // Events: created (in its final state), then the transition's.
    let mut tx = db.tenant_tx(s.tenant).await;
    let events: Vec<(String, Value)> =
        sqlx::query_as("select name, payload from outbox where entity_id = $1 order by id")
            .bind(uuid::Uuid::parse_str(&id).expect("uuid"))
            .fetch_all(&mut *tx)
            .await
            .expect("events");
    drop(tx);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["order.created", "order.placed"]);
    assert_eq!(events[0].1["state"], "PLACED");

    // The transition is not available afterwards, from any state.
    let r = s.fire(&f.admin, "order", &id, "placeOrder", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "INVALID_TRANSITION"), "{:?}", r.body);
    let t = s.get(&format!("entities/order/{id}/transitions"), &f.admin).await;
    assert!(!t.body.to_string().contains("placeOrder"), "{:?}", t.body);

    // Its input is validated like any transition's; a type without one takes none.
    let r = s
        .post(
            "entities/order",
            &f.sales,
            &json!({ "data": order(&f, "b@create.test", 1), "input": { "channel": "fax" } }),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let r = s.post("entities/item", &f.admin, &json!({ "data": { "sku": "X" }, "input": { "a": 1 } })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(r.error_paths(), ["/input"], "{:?}", r.body);
}

#[tokio::test]
async fn a_refused_create_transition_leaves_nothing() {
    let db = test_db().await;
    let f = fixture(&db).await;
    let s = &f.s;
    let before = order_rows(&db, s).await;

    // A guard.
    let mut data = order(&f, "buyer@create.test", 1);
    data["note"] = json!("blocked");
    let r = s.post("entities/order", &f.sales, &json!({ "data": data })).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "This order is blocked");

    // The script's fail(): not enough stock.
    let r = s.post("entities/order", &f.sales, &json!({ "data": order(&f, "buyer@create.test", 11) })).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains("Insufficient stock of LPG-13"));

    // A script that breaks.
    let mut data = order(&f, "buyer@create.test", 1);
    data["note"] = json!("crash");
    let r = s.post("entities/order", &f.sales, &json!({ "data": data })).await;
    assert_eq!((r.status, r.code()), (422, "SCRIPT_FAILED"), "{:?}", r.body);

    // A role the transition does not name (the clerk may not even create): refused before.
    let r = s.post("entities/order", &f.clerk, &json!({ "data": order(&f, "buyer@create.test", 1) })).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);

    assert_eq!(order_rows(&db, s).await, before, "no entity, history or event remains");
    assert_eq!(reserved(&f).await, 0, "no stock reserved");

    // An import row refused by the transition is reported; the others are created and reserve.
    let rows = json!([
        { "customer_email": "a@create.test", "item_id": f.item, "quantity": 3 },
        { "customer_email": "b@create.test", "item_id": f.item, "quantity": 30 },
    ]);
    let (status, report) = import(s, &f.sales, "application/json", rows.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["rejected"][0]["row"], 2, "{report}");
    assert_eq!(reserved(&f).await, 3);
}

#[tokio::test]
async fn csv_export_needs_the_export_permission() {
    let db = test_db().await;
    let f = fixture(&db).await;
    let s = &f.s;
    s.create(&f.sales, "order", order(&f, "buyer@create.test", 1)).await;

    // The clerk may view orders, not export them.
    assert_eq!(s.get("entities/order", &f.clerk).await.status, 200);
    let r = s.get("entities/order/export.csv", &f.clerk).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["action"], "export");

    // Sales and the admin may.
    for token in [&f.sales, &f.admin] {
        let r = s.get("entities/order/export.csv", token).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(r.body.as_str().unwrap_or_default().contains("buyer@create.test"), "{:?}", r.body);
    }
    // Without view, as before: the type does not exist.
    let r = s.get("entities/item/export.csv", &f.customer).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "the customer may view items, not export: {:?}", r.body);
}
