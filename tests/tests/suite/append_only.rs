//! Append-only types (`immutable: true`, issue 12 part 5): their entities are created and never
//! changed or deleted — through every route (409 `IMMUTABLE`, or the package's 422 when its
//! script tries), and in the database itself (a trigger refuses the request role's UPDATE and
//! DELETE); and a new version cannot drop the marking while such entities exist.

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, TestServer};
use switchyard_tests::test_db;
use tenants::Package;

fn id(entity: &Value) -> String {
    entity["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn append_only_entities_are_created_and_never_changed() {
    let db = test_db().await;
    let s = TestServer::start(&db, "ledger").await;
    let clerk = s.token(&db, "clerk@ledger.test").await;
    let admin = s.token(&db, "admin@ledger.test").await;

    // Created directly, and by a transition's script.
    let entry = s.create(&clerk, "entry", json!({ "amount": 10 })).await;
    let entry_id = id(&entry);
    let account = s.create(&clerk, "account", json!({ "name": "Till" })).await;
    let account_id = id(&account);
    let r = s.fire(&clerk, "account", &account_id, "post", json!({ "amount": 5 })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let posted = r.body["entity"]["data"]["last_entry"].as_str().expect("last_entry").to_string();

    for target in [&entry_id, &posted] {
        let url = s.url(&format!("entities/entry/{target}"));
        // The admin may edit and delete everything (`*`), the clerk neither: both are told the
        // type is append-only.
        for token in [&admin, &clerk] {
            let r = s.request(Method::PATCH, &url, Some(token), Some(&json!({ "data": { "note": "x" } })), &[]).await;
            assert_eq!((r.status, r.code()), (409, "IMMUTABLE"), "{:?}", r.body);
            assert_eq!(r.body["error"]["details"]["type"], "entry");
            let r = s.request(Method::DELETE, &url, Some(token), None, &[]).await;
            assert_eq!((r.status, r.code()), (409, "IMMUTABLE"), "{:?}", r.body);
        }
        let r = s.fire(&admin, "entry", target, "reverse", json!({})).await;
        assert_eq!((r.status, r.code()), (409, "IMMUTABLE"), "{:?}", r.body);
    }
    let r = s.post("entities/entry/transitions/reverse", &admin, &json!({ "ids": [entry_id] })).await;
    assert_eq!((r.status, r.code()), (409, "IMMUTABLE"), "{:?}", r.body);

    // A script firing a transition on one: the package's bug, its 422, nothing written.
    let r = s.fire(&clerk, "account", &account_id, "touch", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "SCRIPT_FAILED"), "{:?}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("append-only"), "{message}");

    // Creating by import still works.
    let r = s.post("entities/entry/import", &clerk, &json!([{ "amount": 1 }])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["created"], 1, "{:?}", r.body);

    // The tenant's OpenAPI document says so.
    let r = s.get("openapi.json", &clerk).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let entry_path = &r.body["paths"][format!("/api/v1/t/{}/entities/entry/{{id}}", s.slug)];
    for method in ["patch", "delete"] {
        let description = entry_path[method]["description"].as_str().unwrap_or_default();
        assert!(description.contains("append-only") && description.contains("IMMUTABLE"), "{description}");
    }

    for target in [&entry_id, &posted] {
        let r = s.get(&format!("entities/entry/{target}"), &clerk).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["version"], 1, "{:?}", r.body);
        assert!(r.body["data"].get("note").is_none(), "{:?}", r.body);
    }
}

#[tokio::test]
async fn the_database_refuses_the_request_role_to_change_append_only_rows() {
    let db = test_db().await;
    let s = TestServer::start(&db, "ledger").await;
    let clerk = s.token(&db, "clerk@ledger.test").await;
    let entry = s.create(&clerk, "entry", json!({ "amount": 10 })).await;
    let account = s.create(&clerk, "account", json!({ "name": "Till" })).await;
    let (entry_id, account_id) = (id(&entry), id(&account));
    let entry_id: uuid::Uuid = entry_id.parse().expect("uuid");
    let account_id: uuid::Uuid = account_id.parse().expect("uuid");

    // As the server's role, with the tenant set: whatever the statement, the trigger refuses.
    let app_tx = || {
        let pool = db.app.clone();
        let tenant = s.tenant;
        async move {
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("select set_config('app.tenant_id', $1, true)")
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await
                .expect("set the tenant");
            tx
        }
    };
    for statement in [
        "update entities set data = '{\"amount\": 0}' where id = $1",
        "update entities set immutable = false where id = $1",
        "update entities set config_version = config_version where id = $1",
        "delete from entities where id = $1",
    ] {
        let mut tx = app_tx().await;
        let err = sqlx::query(statement).bind(entry_id).execute(&mut *tx).await.expect_err(statement);
        let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some(engine::store::IMMUTABLE_SQLSTATE), "{statement}: {err}");
        tx.rollback().await.expect("rollback");
    }

    // The marking comes from the published version, not from what a statement says.
    let mut tx = app_tx().await;
    let flags: Vec<(uuid::Uuid, bool)> =
        sqlx::query_as("select id, immutable from entities where id = any($1) order by id")
            .bind(vec![entry_id, account_id])
            .fetch_all(&mut *tx)
            .await
            .expect("read");
    assert!(flags.contains(&(entry_id, true)) && flags.contains(&(account_id, false)), "{flags:?}");
    sqlx::query("update entities set immutable = true where id = $1")
        .bind(account_id)
        .execute(&mut *tx)
        .await
        .expect("a mutable row updates");
    let still: bool = sqlx::query_scalar("select immutable from entities where id = $1")
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await
        .expect("read");
    assert!(!still, "a statement cannot mark a row append-only");
    tx.rollback().await.expect("rollback");

    // Nor can the role switch the trigger off, or truncate.
    for statement in [
        "alter table entities disable trigger entities_append_only_update",
        "alter table entities disable trigger all",
        "set session_replication_role = replica",
        "truncate entities",
    ] {
        let mut tx = app_tx().await;
        assert!(sqlx::query(statement).execute(&mut *tx).await.is_err(), "{statement} must be refused");
        tx.rollback().await.expect("rollback");
    }
    // A new insert that claims to be mutable is marked by its version all the same.
    let mut tx = db.tenant_tx(s.tenant).await;
    let n: i64 = sqlx::query_scalar("select count(*) from entities where type = 'entry' and not immutable")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(n, 0);
    tx.rollback().await.expect("rollback");
}

/// The ledger package without `immutable: true` on `entry`, as JSON.
fn without_marking() -> Value {
    let mut package = Package::load_dir(&package_dir("ledger")).expect("package").to_json();
    for t in package["types"].as_array_mut().expect("types") {
        if t["name"] == "entry" {
            t.as_object_mut().expect("type").remove("immutable");
        }
    }
    package
}

#[tokio::test]
async fn a_version_cannot_drop_the_marking_while_entities_exist() {
    let db = test_db().await;
    let s = TestServer::start(&db, "ledger").await;
    let admin = s.token(&db, "admin@ledger.test").await;
    let clerk = s.token(&db, "clerk@ledger.test").await;

    // No entry yet: the marking may go, and come back (the plan says so).
    let r = s.post("config/apply", &admin, &without_marking()).await;
    assert!(r.status == 200 || r.status == 201, "{:?}", r.body);
    let marked = Package::load_dir(&package_dir("ledger")).expect("package").to_json();
    let r = s.post("config/plan", &admin, &marked).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let text = r.body["text"].as_str().unwrap_or_default();
    assert!(text.contains("+ immutable: the type becomes append-only"), "{text}");
    let r = s.post("config/apply", &admin, &marked).await;
    assert!(r.status == 200 || r.status == 201, "{:?}", r.body);

    s.create(&clerk, "entry", json!({ "amount": 1 })).await;
    let r = s.post("config/plan", &admin, &without_marking()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let refused = r.body["refused"].as_array().cloned().unwrap_or_default();
    assert_eq!(refused.len(), 1, "{:?}", r.body);
    assert_eq!(refused[0]["path"], "/immutable");
    let text = r.body["text"].as_str().unwrap_or_default();
    assert!(text.contains("Refused") && text.contains("cannot drop the marking"), "{text}");

    let r = s.post("config/apply", &admin, &without_marking()).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);
    let problem = &r.body["error"]["details"]["problems"][0];
    assert_eq!((problem["file"].as_str(), problem["path"].as_str()), (Some("types/entry.yaml"), Some("/immutable")));
    assert!(problem["message"].as_str().unwrap_or_default().contains("1 of its entities exists"), "{problem}");

    // Nor remove the type (the account's reference to it goes too).
    let mut removed = marked.clone();
    let types = removed["types"].as_array_mut().expect("types");
    types.retain(|t| t["name"] != "entry");
    for t in types.iter_mut() {
        if let Some(fields) = t["fields"].as_object_mut() {
            fields.remove("last_entry");
        }
        t.as_object_mut().expect("type").remove("workflow");
    }
    if let Some(p) = removed["tenant"]["roles"]["clerk"]["permissions"].as_object_mut() {
        p.remove("entry");
    }
    let r = s.post("config/apply", &admin, &removed).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);
    let message = r.body["error"]["details"]["problems"][0]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("cannot remove the type"), "{message}");

    // The same package again is fine.
    let r = s.post("config/apply", &admin, &marked).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn migrating_to_a_new_version_leaves_append_only_entities_pinned() {
    let db = test_db().await;
    let s = TestServer::start(&db, "ledger").await;
    let admin = s.token(&db, "admin@ledger.test").await;
    let clerk = s.token(&db, "clerk@ledger.test").await;
    let entry = id(&s.create(&clerk, "entry", json!({ "amount": 3 })).await);
    let account = id(&s.create(&clerk, "account", json!({ "name": "Till" })).await);

    // Version 2: one more field on both types.
    let mut v2 = Package::load_dir(&package_dir("ledger")).expect("package").to_json();
    for t in v2["types"].as_array_mut().expect("types") {
        t["fields"]["memo"] = json!({ "type": "string" });
    }
    let r = s.post("config/apply", &admin, &v2).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let to = r.body["version"].as_i64().expect("version");

    let opts = tenants::migrate::Options {
        to,
        state_map: tenants::migrate::StateMap::default(),
        dry_run: false,
        actor: "test".into(),
        actor_email: String::new(),
    };
    let report = tenants::migrate::migrate(
        &db.owner,
        &engine::store::TenantSlug::parse(&s.slug).expect("a slug"),
        &opts,
        &engine::limits::Limits::default(),
    )
    .await
    .expect("the migration runs (the trigger is never hit)");
    assert_eq!((report.moved, report.pinned, report.cannot_move), (1, 1, 0), "{}", report.text());
    assert!(report.text().contains("1 entity in terminal states or of append-only types stays"), "{}", report.text());

    let versions: Vec<(uuid::Uuid, i64)> = {
        let mut tx = db.tenant_tx(s.tenant).await;
        let rows = sqlx::query_as("select id, config_version from entities order by id")
            .fetch_all(&mut *tx)
            .await
            .expect("read");
        tx.rollback().await.expect("rollback");
        rows
    };
    let version_of = |id: &str| versions.iter().find(|(i, _)| i.to_string() == id).map(|(_, v)| *v);
    assert_eq!(version_of(&entry), Some(to - 1), "the entry stays pinned");
    assert_eq!(version_of(&account), Some(to), "the account moved");
    let r = s.get(&format!("entities/entry/{entry}"), &clerk).await;
    assert_eq!(r.body["version"], 1, "{:?}", r.body);
}
