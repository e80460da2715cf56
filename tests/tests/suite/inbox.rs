//! `GET /api/v1/t/{tenant}/inbox` over HTTP: it lists exactly the entities on which the caller
//! may fire a transition now (the same answer as asking each entity's transitions), oldest
//! first, grouped by type and transition; never another tenant's entities; never a type the
//! caller may not view. And entities carry their `display` title.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, TestServer};
use switchyard_tests::test_db;
use tenants::Package;

/// Every page of the inbox (`query` without `cursor`): (entity id → allowed transition names),
/// in the order served, plus the ids in order.
async fn whole_inbox(s: &TestServer, token: &str, query: &str) -> (Vec<String>, BTreeMap<String, BTreeSet<String>>) {
    let mut order = Vec::new();
    let mut items = BTreeMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("inbox?{query}&cursor={c}"),
            None => format!("inbox?{query}"),
        };
        let r = s.get(&path, token).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        for item in r.body["data"].as_array().expect("data") {
            let id = item["entity"]["id"].as_str().expect("id").to_string();
            let names = item["transitions"].as_array().expect("transitions");
            let names: BTreeSet<String> = names.iter().map(|t| t["name"].as_str().expect("name").to_string()).collect();
            assert!(!names.is_empty(), "an item without a transition: {item}");
            assert!(items.insert(id.clone(), names).is_none(), "{id} served twice");
            order.push(id);
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (order, items),
        }
    }
    panic!("the inbox did not end in 100 pages");
}

/// The allowed transitions of every entity of `types` the caller sees, asked one by one.
async fn asked_one_by_one(s: &TestServer, token: &str, types: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut want = BTreeMap::new();
    for ty in types {
        let list = s.get(&format!("entities/{ty}?limit=500"), token).await;
        assert_eq!(list.status, 200, "{ty}: {:?}", list.body);
        assert!(list.body["next_cursor"].is_null(), "{ty}: more than one page of sample data");
        for e in list.body["data"].as_array().expect("data") {
            let id = e["id"].as_str().expect("id");
            let r = s.get(&format!("entities/{ty}/{id}/transitions"), token).await;
            assert_eq!(r.status, 200, "{ty}/{id}: {:?}", r.body);
            let allowed: BTreeSet<String> = r.body["data"]
                .as_array()
                .expect("data")
                .iter()
                .filter(|t| t["allowed"] == true)
                .map(|t| t["name"].as_str().expect("name").to_string())
                .collect();
            if !allowed.is_empty() {
                want.insert(id.to_string(), allowed);
            }
        }
    }
    want
}

/// The chemichemi types (one YAML file each).
fn chemichemi_types() -> Vec<String> {
    let dir = package_dir("chemichemi").join("types");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("types")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".yaml").map(str::to_string))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_inbox_is_what_each_entity_allows_oldest_first() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let manager = s.token(&db, "manager@chemichemi.test").await;
    let warehouse = s.token(&db, "warehouse@chemichemi.test").await;

    // Sales submits an order: the manager can approve it (four-eyes: not its creator), sales
    // cannot (role).
    let order = s
        .create(
            &sales,
            "order",
            json!({ "customer_id": s.sample("savanna_hotel"), "warehouse_id": s.sample("main"),
                    "items": [{ "product_id": s.sample("lpg6"), "quantity": 2 }] }),
        )
        .await;
    let id = order["id"].as_str().expect("id").to_string();
    let number = order["data"]["order_number"].as_str().expect("number").to_string();
    assert_eq!(order["display"], number, "the title template is `{{{{ order_number }}}}`");
    let r = s.fire(&sales, "order", &id, "submitOrder", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["display"], number, "the transition's entity has its title");

    let page = s.get("inbox?type=order&limit=100", &manager).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let mine = page.body["data"].as_array().expect("data").iter().find(|i| i["entity"]["id"] == id.as_str());
    let mine = mine.unwrap_or_else(|| panic!("the submitted order is not in the manager's inbox: {:?}", page.body));
    assert_eq!(mine["entity"]["display"], number);
    assert_eq!(mine["entity"]["state"], "PENDING_APPROVAL");
    let names: BTreeSet<&str> =
        mine["transitions"].as_array().expect("t").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains("approveOrder"), "{names:?}");
    let approve = page.body["groups"].as_array().expect("groups").iter().find(|g| g["transition"] == "approveOrder");
    let approve = approve.unwrap_or_else(|| panic!("no approveOrder group: {:?}", page.body["groups"]));
    assert_eq!(approve["type"], "order");
    assert!(approve["count"].as_u64().expect("count") >= 1);
    let (_, sales_inbox) = whole_inbox(&s, &sales, "type=order").await;
    assert!(!sales_inbox.get(&id).is_some_and(|t| t.contains("approveOrder")), "sales may not approve");

    // For each user, the whole inbox (paged small, so several pages) is exactly the entities
    // whose transitions, asked one by one, allow something; oldest (smallest UUIDv7) first.
    let types = chemichemi_types();
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    for (who, token) in [("manager", &manager), ("warehouse", &warehouse), ("sales", &sales)] {
        let (order, got) = whole_inbox(&s, token, "limit=3").await;
        let want = asked_one_by_one(&s, token, &types).await;
        if who == "manager" {
            assert!(want.len() > 3, "the manager has more than one page of work: {want:?}");
        }
        assert_eq!(got, want, "{who}: the inbox differs from the entities' own transitions");
        let mut sorted = order.clone();
        sorted.sort_by_key(|id| uuid::Uuid::parse_str(id).expect("uuid"));
        assert_eq!(order, sorted, "{who}: not oldest first");
    }

    // After approving, the order leaves the manager's approvals and joins the warehouse's.
    let r = s.fire(&manager, "order", &id, "approveOrder", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (_, manager_orders) = whole_inbox(&s, &manager, "type=order").await;
    assert!(!manager_orders.get(&id).is_some_and(|t| t.contains("approveOrder")));
    let (_, warehouse_orders) = whole_inbox(&s, &warehouse, "type=order").await;
    assert!(warehouse_orders.get(&id).is_some_and(|t| t.contains("allocateInventory")), "{warehouse_orders:?}");

    // Bad parameters are named.
    for (query, path) in [("limit=0", "/limit"), ("limit=101", "/limit"), ("cursor=nope", "/cursor")] {
        let r = s.get(&format!("inbox?{query}"), &manager).await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{query}: {:?}", r.body);
        assert_eq!(r.error_paths(), [path], "{query}");
    }
    let r = s.get("inbox?sort=id", &manager).await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"), "{:?}", r.body);
    let r = s.get("inbox?type=nosuchtype", &manager).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
}

#[tokio::test]
async fn the_inbox_never_shows_another_tenants_entities() {
    let db = test_db().await;
    let a = TestServer::start(&db, "chemichemi").await;
    let mut rival = Package::load_dir(&package_dir("chemichemi")).expect("package");
    rival.tenant.slug = "rival".into();
    rival.tenant.name = "Rival Distribution".into();
    let b = a.second_tenant(&db, rival).await;
    let a_manager = a.token(&db, "manager@chemichemi.test").await;
    let b_manager = b.token(&db, "manager@chemichemi.test").await;
    let a_sales = a.token(&db, "sales@chemichemi.test").await;
    // A submitted order in A only.
    let order = a
        .create(
            &a_sales,
            "order",
            json!({ "customer_id": a.sample("savanna_hotel"), "warehouse_id": a.sample("main"),
                    "items": [{ "product_id": a.sample("lpg6"), "quantity": 1 }] }),
        )
        .await;
    let id = order["id"].as_str().expect("id").to_string();
    assert_eq!(a.fire(&a_sales, "order", &id, "submitOrder", json!({})).await.status, 200);
    // And one in B.
    let b_sales = b.token(&db, "sales@chemichemi.test").await;
    let b_order = b
        .create(
            &b_sales,
            "order",
            json!({ "customer_id": b.sample("savanna_hotel"), "warehouse_id": b.sample("main"),
                    "items": [{ "product_id": b.sample("lpg6"), "quantity": 1 }] }),
        )
        .await;
    let b_id = b_order["id"].as_str().expect("id").to_string();
    assert_eq!(b.fire(&b_sales, "order", &b_id, "submitOrder", json!({})).await.status, 200);

    let (_, in_a) = whole_inbox(&a, &a_manager, "limit=100").await;
    let (_, in_b) = whole_inbox(&b, &b_manager, "limit=100").await;
    assert!(in_a.contains_key(&id) && !in_a.contains_key(&b_id), "{in_a:?}");
    assert!(in_b.contains_key(&b_id) && !in_b.contains_key(&id), "{in_b:?}");
    let ids_of = |tenant: engine::store::TenantId| {
        let db = &db;
        async move {
            let mut tx = db.tenant_tx(tenant).await;
            let ids: Vec<uuid::Uuid> =
                sqlx::query_scalar("select id from entities").fetch_all(&mut *tx).await.expect("ids");
            ids.into_iter().map(|i| i.to_string()).collect::<BTreeSet<String>>()
        }
    };
    let (a_ids, b_ids) = (ids_of(a.tenant).await, ids_of(b.tenant).await);
    // (Sample data has the same stable ids in both tenants; each inbox names its own rows.)
    assert!(in_a.keys().all(|k| a_ids.contains(k)), "A's inbox shows only A's entities");
    assert!(in_b.keys().all(|k| b_ids.contains(k)), "B's inbox shows only B's entities");
    // A's token on B's path is refused outright.
    let r = b.get("inbox", &a_manager).await;
    assert!(matches!(r.status, 401 | 403 | 404), "{:?}", r);
    assert!(!r.body.to_string().contains(&id));
}

#[tokio::test]
async fn the_inbox_leaves_out_types_the_user_may_not_view() {
    let db = test_db().await;
    let s = TestServer::start(&db, "perms").await;
    let clerk = s.token(&db, "clerk@perms.test").await;
    let outsider = s.token(&db, "outsider@perms.test").await;
    let memo = s.create(&clerk, "memo", json!({ "subject": "Stock count" })).await;
    let id = memo["id"].as_str().expect("id").to_string();
    assert!(memo.get("display").is_none(), "memo has no title template: {memo}");

    // The clerk sees the draft memo with `send`.
    let r = s.get("inbox", &clerk).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"][0]["entity"]["id"], id.as_str());
    assert_eq!(r.body["data"][0]["transitions"], json!([{ "name": "send", "label": null, "to": "SENT" }]));
    assert_eq!(r.body["groups"], json!([{ "type": "memo", "transition": "send", "label": null, "count": 1 }]));
    assert_eq!(r.body["next_cursor"], Value::Null);
    // A full page that is also the last has no cursor; one that is not has one, to the rest.
    let r = s.get("inbox?limit=1", &clerk).await;
    assert_eq!((r.body["data"].as_array().map(Vec::len), &r.body["next_cursor"]), (Some(1), &Value::Null));
    let second = s.create(&clerk, "memo", json!({ "subject": "Second" })).await;
    let r = s.get("inbox?limit=1", &clerk).await;
    assert_eq!(r.body["data"][0]["entity"]["id"], id.as_str(), "oldest first");
    let cursor = r.body["next_cursor"].as_str().expect("a cursor to the second memo").to_string();
    let r = s.get(&format!("inbox?limit=1&cursor={cursor}"), &clerk).await;
    assert_eq!(r.body["data"][0]["entity"]["id"], second["id"]);
    assert_eq!(r.body["next_cursor"], Value::Null);

    // The outsider's role may fire `send`, but it may not view memos: none in its inbox, and
    // asking for them by type answers as if the type did not exist.
    let r = s.get("inbox", &outsider).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!([]), "{:?}", r.body);
    assert_eq!(r.body["groups"], json!([]));
    let r = s.get("inbox?type=memo", &outsider).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    assert!(!r.body.to_string().contains(&id));
}

/// At 100,000 orders of one tenant, the inbox's candidate statement is index scans of
/// `entities_type_state_id` (no sequential scan of `entities`), and a page stays bounded. Prints
/// the plan and the page's time (`--nocapture`; `docs/benchmarks.md` quotes them).
#[tokio::test]
async fn the_inbox_reads_its_candidates_by_index_at_100k_entities() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let manager = s.token(&db, "manager@chemichemi.test").await;
    // 100,000 orders: 1 in 100 waiting for approval, the others delivered (nobody's work).
    sqlx::query(
        "insert into entities (tenant_id, id, type, state, data, config_version, created_by, updated_by) \
         select $1, gen_random_uuid(), 'order', \
                case when g % 100 = 0 then 'PENDING_APPROVAL' else 'DELIVERED' end, \
                jsonb_build_object('order_number', 'BULK-' || g), \
                (select max(version) from config_versions where tenant_id = $1), 'bulk', 'bulk' \
         from generate_series(1, 100000) g",
    )
    .bind(s.tenant)
    .execute(&db.owner)
    .await
    .expect("insert");
    sqlx::query("analyze entities").execute(&db.owner).await.expect("analyze");

    let (_, defs) = s.store.live_definitions(s.tenant).await.expect("defs");
    let actor = engine::model::Actor {
        id: "m".into(),
        email: "manager@chemichemi.test".into(),
        roles: vec!["manager".into()],
        system: false,
        attributes: Default::default(),
    };
    let pairs = engine::store::candidate_states(&defs, &actor, Some("order")).expect("pairs");
    assert!(pairs.contains(&("order".to_string(), "PENDING_APPROVAL".to_string())), "{pairs:?}");
    let types: Vec<&str> = pairs.iter().map(|(t, _)| t.as_str()).collect();
    let states: Vec<&str> = pairs.iter().map(|(_, s)| s.as_str()).collect();
    let mut tx = s.store.begin(s.tenant).await.expect("begin");
    let explain = format!("explain (analyze, buffers, costs off) {}", engine::store::sql::inbox_candidates_sql());
    let rows: Vec<String> = sqlx::query_scalar(&explain)
        .bind(s.tenant)
        .bind(&types)
        .bind(&states)
        .bind(uuid::Uuid::nil())
        .bind(25_i64)
        .fetch_all(&mut *tx)
        .await
        .expect("explain");
    tx.commit().await.expect("commit");
    let plan = rows.join("\n");
    println!("{plan}");
    // The tenant's partition (migration 0021) and its copy of `entities_type_state_id`.
    let index = format!("Index Scan using {}_type_state_id", engine::store::query::entities_partition(s.tenant));
    assert!(plan.contains(&index), "{plan}");
    assert!(!plan.contains("Seq Scan on entities"), "{plan}");

    // A page over HTTP: 25 entities, or 500 candidates evaluated, whichever comes first.
    let start = std::time::Instant::now();
    let r = s.get("inbox?type=order", &manager).await;
    let took = start.elapsed();
    assert_eq!(r.status, 200, "{:?}", r.body);
    println!("inbox page: {} entities in {took:?}", r.body["data"].as_array().map_or(0, Vec::len));
    assert!(r.body["next_cursor"].is_string(), "1,000 waiting orders do not fit one page");
    // Again, the definitions and the connection pool warm.
    let start = std::time::Instant::now();
    let again = s.get("inbox?type=order", &manager).await;
    println!(
        "inbox page again: {} entities in {:?}",
        again.body["data"].as_array().map_or(0, Vec::len),
        start.elapsed()
    );
    assert_eq!(again.body["data"], r.body["data"], "nothing changed in between");
}
