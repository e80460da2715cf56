//! The tenant-isolation attack suite, over real HTTP: two tenants with the same types on one
//! server (same signing keys, so every token is genuine), and every route attacked with the
//! other tenant's tokens, ids, references and filters: entities, bulk, export and import, users,
//! API keys, webhooks with their deliveries and replay, the event list and stream, and the
//! configuration (validate, plan, apply). Each attempt must be refused (403/404, or 422 for a
//! body naming a foreign id or tenant) and no response may contain the victim's data. The suite
//! counts attempts and leaks, and checks the victim's rows did not change.

use std::time::Duration;

use api::state::Ops;
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::{loopback_webhooks, package_dir, Reply, TestServer};
use switchyard_tests::{test_db, TestDb};
use tenants::Package;

/// What the suite saw.
#[derive(Default)]
struct Tally {
    attempts: usize,
    leaks: Vec<String>,
    unexpected: Vec<String>,
}

impl Tally {
    /// Records an attempt: its status must be one of `allowed`, and its body must not contain
    /// any of the victim's `secrets`.
    fn check(&mut self, what: &str, r: &Reply, allowed: &[u16], secrets: &[String]) {
        self.attempts += 1;
        let body = r.body.to_string();
        if let Some(secret) = secrets.iter().find(|s| body.contains(s.as_str())) {
            self.leaks.push(format!("{what}: {} contains {secret}", r.status));
        }
        if !allowed.contains(&r.status) {
            self.unexpected.push(format!("{what}: {} {}", r.status, body.chars().take(200).collect::<String>()));
        }
    }
}

async fn victim_rows(db: &TestDb, s: &TestServer) -> Value {
    let mut tx = db.tenant_tx(s.tenant).await;
    let v: Value = sqlx::query_scalar(
        "select jsonb_build_object(
            'entities', (select coalesce(jsonb_agg(to_jsonb(e) order by id), '[]') from entities e where tenant_id = $1),
            'history', (select count(*) from transitions where tenant_id = $1),
            'users', (select coalesce(jsonb_agg(to_jsonb(u) - 'updated_at' order by id), '[]') from users u where tenant_id = $1),
            'refresh_tokens', (select coalesce(jsonb_agg(to_jsonb(r) order by id), '[]') from refresh_tokens r where tenant_id = $1),
            'api_keys', (select coalesce(jsonb_agg(to_jsonb(k) order by id), '[]') from api_keys k where tenant_id = $1),
            'invitations', (select coalesce(jsonb_agg(to_jsonb(i) order by id), '[]') from invitations i where tenant_id = $1),
            'webhooks', (select coalesce(jsonb_agg(to_jsonb(w) order by id), '[]') from webhooks w where tenant_id = $1),
            'deliveries', (select coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'status', d.status, 'attempts', d.attempts) order by id), '[]')
                           from webhook_deliveries d where tenant_id = $1),
            'versions', (select count(*) from config_versions where tenant_id = $1),
            'live', (select live_version from tenants where id = $1))",
    )
    .bind(s.tenant)
    .fetch_one(&mut *tx)
    .await
    .expect("rows");
    tx.commit().await.expect("commit");
    v
}

#[tokio::test]
async fn no_route_leaks_another_tenants_data() {
    let db = test_db().await;
    // Webhooks may aim at 127.0.0.1 (a closed port: each delivery fails once and is dead).
    let a = TestServer::start_with(&db, "chemichemi", Ops::new(loopback_webhooks())).await;
    let workers = a.workers();
    // The attacker's tenant: the same package under another slug, with its own (no) sample data.
    let mut rival = Package::load_dir(&package_dir("chemichemi")).expect("package");
    rival.tenant.slug = "rival".into();
    rival.tenant.name = "Rival Distribution".into();
    rival.data.clear();
    let b = a.second_tenant(&db, rival).await;

    let a_admin = a.token(&db, "admin@chemichemi.test").await;
    let a_sales = a.token(&db, "sales@chemichemi.test").await;
    let b_admin = b.token(&db, "admin@chemichemi.test").await;
    let b_sales = b.token(&db, "sales@chemichemi.test").await;

    // The victim's webhook, API key and users: their ids are secrets too.
    let hook =
        a.post("webhooks", &a_admin, &json!({ "url": "http://127.0.0.1:9/hook", "events": ["order.created"] })).await;
    assert_eq!(hook.status, 201, "{:?}", hook.body);
    let a_hook = hook.body["id"].as_str().expect("id").to_string();
    let a_hook_secret = hook.body["secret"].as_str().expect("secret").to_string();
    let key = a.post("api-keys", &a_admin, &json!({ "name": "A-SECRET-key", "roles": ["sales"] })).await;
    assert_eq!(key.status, 201, "{:?}", key.body);
    let a_key = key.body["id"].as_str().expect("id").to_string();
    let a_key_secret = key.body["key"].as_str().expect("key").to_string();
    let users = a.get("users", &a_admin).await;
    let a_user = users.body["data"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["email"] == "sales@chemichemi.test")
        .and_then(|u| u["id"].as_str())
        .expect("sales user")
        .to_string();
    let a_export = a.get("config/export", &a_admin).await;
    assert_eq!(a_export.status, 200, "{:?}", a_export.body);
    let a_package = a_export.body.clone();

    // The victim's data: a marked order and its sample rows.
    let marker = format!("A-SECRET-{}", uuid::Uuid::new_v4().simple());
    let a_order = a
        .create(
            &a_sales,
            "order",
            json!({ "customer_id": a.sample("savanna_hotel"), "warehouse_id": a.sample("main"),
                    "notes": marker, "items": [{ "product_id": a.sample("lpg6"), "quantity": 1 }] }),
        )
        .await;
    let a_order = a_order["id"].as_str().expect("id").to_string();
    let a_customer = a.sample("savanna_hotel");
    let a_product = a.sample("lpg6");
    // The order's webhook delivery, once it is dead (then nothing changes it but a replay).
    let a_delivery = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = a.get(&format!("webhooks/{a_hook}/deliveries"), &a_admin).await;
            let first = r.body["data"][0].clone();
            if first["status"] == "dead" {
                break first["id"].as_str().expect("id").to_string();
            }
            assert!(tokio::time::Instant::now() < deadline, "no dead delivery: {:?}", r.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let secrets = vec![
        marker.clone(),
        a_order.clone(),
        a_customer.clone(),
        a_product.clone(),
        "Savanna Grand Hotel".into(),
        a.tenant.to_string(),
        a_hook.clone(),
        a_hook_secret.clone(),
        a_key.clone(),
        a_key_secret.clone(),
        "A-SECRET-key".into(),
        a_user.clone(),
        a_delivery.clone(),
    ];
    // The attacker's own order, to aim at with the victim's token.
    let b_warehouse = b.create(&b_admin, "warehouse", json!({ "name": "Rival depot", "code": "R1" })).await;
    let b_warehouse = b_warehouse["id"].as_str().expect("id").to_string();
    let before = victim_rows(&db, &a).await;
    let mut t = Tally::default();

    // 1. Genuine tokens of one tenant on the other tenant's paths: 403 before anything runs.
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "entities/order".into(), None),
        (Method::GET, format!("entities/order/{a_order}"), None),
        (Method::GET, format!("entities/order/{a_order}/history"), None),
        (Method::GET, format!("entities/order/{a_order}/transitions"), None),
        (Method::POST, format!("entities/order/{a_order}/transitions/cancelOrder"), Some(json!({ "input": {} }))),
        (Method::PATCH, format!("entities/order/{a_order}"), Some(json!({ "data": { "notes": "pwned" } }))),
        (Method::DELETE, format!("entities/order/{a_order}"), None),
        (Method::POST, "entities/order".into(), Some(json!({ "data": {} }))),
        (Method::POST, "entities/order/transitions/submitOrder".into(), Some(json!({ "ids": [a_order] }))),
        (Method::GET, "entities/order/export.csv".into(), None),
        (Method::GET, "types".into(), None),
        (Method::GET, "openapi.json".into(), None),
        (Method::GET, "config/versions".into(), None),
        (Method::GET, "config/export".into(), None),
        (Method::GET, "users".into(), None),
        (Method::GET, "api-keys".into(), None),
        (Method::GET, "webhooks".into(), None),
        (Method::GET, "events".into(), None),
        (Method::POST, "rules/evaluate".into(), Some(json!({ "logic": { "var": "x" }, "data": { "x": 1 } }))),
        // Everything below names the victim's ids (users, keys, webhooks, deliveries) or changes
        // the victim's set-up.
        (Method::GET, "events/stream?after=0".into(), None),
        (Method::GET, format!("users/{a_user}"), None),
        (Method::PATCH, format!("users/{a_user}"), Some(json!({ "active": false, "roles": [] }))),
        (Method::POST, format!("users/{a_user}/invite"), None),
        (Method::POST, "users".into(), Some(json!({ "email": "mole@rival.test", "roles": ["admin"] }))),
        (Method::POST, "api-keys".into(), Some(json!({ "name": "backdoor", "roles": ["admin"] }))),
        (Method::DELETE, format!("api-keys/{a_key}"), None),
        (Method::POST, "webhooks".into(), Some(json!({ "url": "http://127.0.0.1:9/steal", "events": ["*"] }))),
        (Method::GET, format!("webhooks/{a_hook}"), None),
        (Method::GET, format!("webhooks/{a_hook}/deliveries"), None),
        (Method::GET, format!("webhooks/{a_hook}/deliveries/{a_delivery}"), None),
        (Method::POST, format!("webhooks/{a_hook}/deliveries/{a_delivery}/replay"), None),
        (Method::DELETE, format!("webhooks/{a_hook}"), None),
        (
            Method::POST,
            "entities/order/import".into(),
            Some(json!([{ "customer_id": a_customer, "notes": "planted" }])),
        ),
        (Method::POST, "config/validate".into(), Some(a_package.clone())),
        (Method::POST, "config/plan".into(), Some(a_package.clone())),
        (Method::POST, "config/apply".into(), Some(a_package.clone())),
        (Method::GET, "config/versions/1".into(), None),
        (Method::GET, "types/order".into(), None),
        (Method::GET, "config/draft".into(), None),
        (Method::PUT, "config/draft".into(), Some(json!({ "version": 0, "package": a_package.clone() }))),
        (Method::DELETE, "config/draft".into(), None),
        (
            Method::POST,
            "config/draft/dry-run".into(),
            Some(json!({ "type": "order", "id": a_order, "transition": "cancelOrder", "input": {} })),
        ),
        (Method::POST, "config/migrate".into(), Some(json!({ "to": 1, "dry_run": false }))),
    ];
    for (method, path, body) in &routes {
        let r = a.request(method.clone(), &a.url(path), Some(&b_admin), body.as_ref(), &[]).await;
        t.check(&format!("B's token on A's {method} {path}"), &r, &[403], &secrets);
    }
    for (method, path, body) in &routes {
        let path = path.replace(&a_order, &b_warehouse);
        let r = b.request(method.clone(), &b.url(&path), Some(&a_admin), body.as_ref(), &[]).await;
        t.check(&format!("A's token on B's {method} {path}"), &r, &[403], &secrets);
    }

    // 2. The victim's ids guessed on the attacker's own paths: as if they did not exist.
    for (method, path, body) in &routes[1..7] {
        let r = b.request(method.clone(), &b.url(path), Some(&b_admin), body.as_ref(), &[]).await;
        t.check(&format!("A's id on B's {method} {path}"), &r, &[404], &secrets);
    }
    for id in [&a_customer, &a_product] {
        for ty in ["customer", "product", "order"] {
            let r = b.get(&format!("entities/{ty}/{id}"), &b_admin).await;
            t.check(&format!("guess {ty}/{id}"), &r, &[404], &secrets);
        }
    }
    // Bulk with the victim's ids: each reported as not found, nothing changes.
    let r = b.post("entities/order/transitions/cancelOrder", &b_admin, &json!({ "ids": [a_order], "input": {} })).await;
    // The report names the ids the attacker sent (nothing more): those are not a leak.
    let not_sent: Vec<String> = secrets.iter().filter(|s| **s != a_order).cloned().collect();
    t.check("bulk with A's ids", &r, &[200, 404], &not_sent);
    assert_eq!(r.body["results"][0]["error"]["code"], "NOT_FOUND", "{:?}", r.body);
    assert_ne!(r.body["succeeded"], json!(1), "bulk changed a foreign entity: {:?}", r.body);

    // The victim's users, keys, webhooks and deliveries by id on the attacker's own paths.
    let guessed: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("users/{a_user}"), None),
        (Method::PATCH, format!("users/{a_user}"), Some(json!({ "active": false }))),
        (Method::POST, format!("users/{a_user}/invite"), None),
        (Method::DELETE, format!("api-keys/{a_key}"), None),
        (Method::GET, format!("webhooks/{a_hook}"), None),
        (Method::DELETE, format!("webhooks/{a_hook}"), None),
        (Method::GET, format!("webhooks/{a_hook}/deliveries"), None),
        (Method::GET, format!("webhooks/{a_hook}/deliveries/{a_delivery}"), None),
        (Method::POST, format!("webhooks/{a_hook}/deliveries/{a_delivery}/replay"), None),
    ];
    for (method, path, body) in &guessed {
        let r = b.request(method.clone(), &b.url(path), Some(&b_admin), body.as_ref(), &[]).await;
        t.check(&format!("A's id on B's {method} {path}"), &r, &[404], &secrets);
    }
    // The attacker's own webhook, and the victim's delivery under it.
    let b_hook = b.post("webhooks", &b_admin, &json!({ "url": "http://127.0.0.1:9/b", "events": ["*"] })).await;
    assert_eq!(b_hook.status, 201, "{:?}", b_hook.body);
    let b_hook = b_hook.body["id"].as_str().expect("id").to_string();
    for (method, path) in [
        (Method::GET, format!("webhooks/{b_hook}/deliveries/{a_delivery}")),
        (Method::POST, format!("webhooks/{b_hook}/deliveries/{a_delivery}/replay")),
    ] {
        let r = b.request(method.clone(), &b.url(&path), Some(&b_admin), None, &[]).await;
        t.check(&format!("A's delivery under B's webhook: {method} {path}"), &r, &[404], &secrets);
    }
    // The victim's configuration published on the attacker's path: refused as another tenant's.
    let r = b.post("config/apply", &b_admin, &a_package).await;
    t.check("A's package applied on B's path", &r, &[422], &secrets[..1]);
    assert_eq!(r.code(), "INVALID_PACKAGE", "{:?}", r.body);
    // 3. The victim's ids inside bodies: references are checked within the tenant.
    let r = b
        .post(
            "entities/order",
            &b_sales,
            &json!({ "data": { "customer_id": a_customer, "warehouse_id": b_warehouse,
                               "items": [{ "product_id": a_product, "quantity": 1 }] } }),
        )
        .await;
    t.check("create with A's references", &r, &[422], &secrets[..1]);
    let paths = r.error_paths();
    assert!(paths.contains(&"/data/customer_id") && paths.contains(&"/data/items/0/product_id"), "{:?}", r.body);
    let r = b.post("rules/evaluate", &b_admin, &json!({ "logic": { "var": "entity.notes" }, "data": {} })).await;
    t.check("rules playground", &r, &[200], &secrets);
    // An import naming the victim's references: every row rejected, nothing created.
    let r = b
        .post(
            "entities/order/import",
            &b_sales,
            &json!([{ "customer_id": a_customer, "warehouse_id": b_warehouse,
                      "items": [{ "product_id": a_product, "quantity": 1 }] }]),
        )
        .await;
    t.check("import with A's references", &r, &[200], &secrets[..1]);
    assert_eq!((&r.body["created"], r.body["rejected"].as_array().map(Vec::len)), (&json!(0), Some(1)), "{:?}", r.body);

    // 4. Filters and search aimed at the victim's values find nothing.
    for query in [
        format!("entities/order?customer_id={a_customer}"),
        format!("entities/order?id={a_order}"),
        format!("entities/order?q={marker}"),
        "entities/customer?q=Savanna".to_string(),
        "entities/order?limit=500".to_string(),
        "events?limit=500".to_string(),
        "entities/order/export.csv".to_string(),
    ] {
        let r = b.get(&query, &b_admin).await;
        t.check(&format!("B lists {query}"), &r, &[200, 422], &secrets);
    }

    // 5. Tokens claiming the victim's tenant id under the attacker's slug (or the reverse) fail.
    let forged = b.foreign_token(a.tenant.as_uuid(), "rival", &["admin".to_string()]);
    let r = b.request(Method::GET, &b.url("entities/order"), Some(&forged), None, &[]).await;
    t.check("token with A's tenant id and B's slug", &r, &[401, 403, 404], &secrets);

    // The victim's rows, before the victim itself works while the attacker streams.
    let after = victim_rows(&db, &a).await;
    // The attacker's stream from the very start, while the victim works: nothing of A arrives.
    let mut stream =
        reqwest::Client::new().get(b.url("events/stream?after=0")).bearer_auth(&b_admin).send().await.expect("stream");
    let status = stream.status().as_u16();
    a.create(&a_sales, "customer", json!({ "name": format!("{marker} customer") })).await;
    let mut seen = String::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(until, stream.chunk()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stream);
    assert!(seen.contains("warehouse.created"), "B's stream shows B's own events: {seen:?}");
    t.check("B's stream while A works", &Reply { status, body: Value::String(seen) }, &[200], &secrets);

    eprintln!(
        "isolation suite: {} attempts, {} leaks, {} unexpected statuses",
        t.attempts,
        t.leaks.len(),
        t.unexpected.len()
    );
    assert!(t.leaks.is_empty(), "leaks: {:#?}", t.leaks);
    assert!(t.unexpected.is_empty(), "unexpected answers: {:#?}", t.unexpected);
    assert!(t.attempts >= 110, "the suite ran only {} attempts", t.attempts);
    assert_eq!(after, before, "the victim's rows changed");
    workers.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn scripts_and_loads_cannot_reach_another_tenant() {
    let db = test_db().await;
    let a = TestServer::start(&db, "probe").await;
    let mut rival = Package::load_dir(&package_dir("probe")).expect("package");
    rival.tenant.slug = "probe-rival".into();
    let b = a.second_tenant(&db, rival).await;
    let a_user = a.token(&db, "user@probe.test").await;
    let b_user = b.token(&db, "user@probe.test").await;

    let secret = a.create(&a_user, "thing", json!({ "name": "A-SECRET-thing" })).await;
    let secret_id = secret["id"].as_str().expect("id").to_string();
    let mine = a.create(&a_user, "thing", json!({ "name": "a probe" })).await;
    // Within a tenant the probe sees the target (by id and by filter).
    let r = a.fire(&a_user, "thing", mine["id"].as_str().expect("id"), "peek", json!({ "target": secret_id })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["data"]["seen"], "A-SECRET-thing/1");

    // From the other tenant, the same loads find nothing, and nothing leaks into the answer.
    let probe = b.create(&b_user, "thing", json!({ "name": "b probe" })).await;
    let r = b.fire(&b_user, "thing", probe["id"].as_str().expect("id"), "peek", json!({ "target": secret_id })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["data"]["seen"], "nothing/0");
    assert!(!r.body.to_string().contains("A-SECRET"), "{:?}", r.body);
    assert_eq!(r.body["events"][0]["payload"]["found"], "nothing");
}
