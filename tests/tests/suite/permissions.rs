//! Permissions from configuration, enforced by the server for every request: type-level view,
//! create, edit, delete per role (no view → 404, no existence leak), field-level edits per state
//! and role, and no mass assignment through PATCH.

use serde_json::json;
use switchyard_tests::server::TestServer;
use switchyard_tests::test_db;

#[tokio::test]
async fn type_level_permissions_hide_or_forbid() {
    let db = test_db().await;
    let s = TestServer::start(&db, "perms").await;
    let clerk = s.token(&db, "clerk@perms.test").await;
    let auditor = s.token(&db, "auditor@perms.test").await;
    let outsider = s.token(&db, "outsider@perms.test").await;
    let admin = s.token(&db, "admin@perms.test").await;

    let memo = s.create(&clerk, "memo", json!({ "subject": "Quarterly stock count" })).await;
    let id = memo["id"].as_str().expect("id").to_string();
    assert_eq!(memo["data"]["number"], "M-0001");

    // The auditor may view but not create, edit or delete.
    assert_eq!(s.get(&format!("entities/memo/{id}"), &auditor).await.status, 200);
    let r = s.post("entities/memo", &auditor, &json!({ "data": { "subject": "x" } })).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    let r = s
        .request(
            reqwest::Method::PATCH,
            &s.url(&format!("entities/memo/{id}")),
            Some(&auditor),
            Some(&json!({ "data": { "body": "x" } })),
            &[],
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    let r = s.request(reqwest::Method::DELETE, &s.url(&format!("entities/memo/{id}")), Some(&clerk), None, &[]).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "the clerk may not delete: {:?}", r.body);

    // The outsider cannot view memos: every route answers as if nothing existed.
    for path in [
        format!("entities/memo/{id}"),
        format!("entities/memo/{id}/history"),
        format!("entities/memo/{id}/transitions"),
        "entities/memo".to_string(),
    ] {
        let r = s.get(&path, &outsider).await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{path}: {:?}", r.body);
        assert!(!r.body.to_string().contains("Quarterly"), "{path} leaked data");
    }
    let r = s.fire(&outsider, "memo", &id, "send", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    let r = s.post("entities/memo", &outsider, &json!({ "data": { "subject": "x" } })).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    // A random id looks the same as an existing one.
    let r = s.get(&format!("entities/memo/{}", uuid::Uuid::now_v7()), &outsider).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));

    // The admin may delete; the history outlives the entity.
    let r = s.request(reqwest::Method::DELETE, &s.url(&format!("entities/memo/{id}")), Some(&admin), None, &[]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(s.get(&format!("entities/memo/{id}"), &admin).await.status, 404);
    let history: i64 = {
        let mut tx = db.tenant_tx(s.tenant).await;
        sqlx::query_scalar(
            "select count(*) from transitions where entity_id = $1 and transition in ('create', 'delete')",
        )
        .bind(uuid::Uuid::parse_str(&id).expect("uuid"))
        .fetch_one(&mut *tx)
        .await
        .expect("count")
    };
    assert_eq!(history, 2);
}

#[tokio::test]
async fn patch_changes_only_fields_editable_in_the_state_for_the_role() {
    let db = test_db().await;
    let s = TestServer::start(&db, "perms").await;
    let clerk = s.token(&db, "clerk@perms.test").await;
    let admin = s.token(&db, "admin@perms.test").await;
    let memo = s.create(&clerk, "memo", json!({ "subject": "Draft" })).await;
    let id = memo["id"].as_str().expect("id").to_string();
    let url = s.url(&format!("entities/memo/{id}"));
    let patch = |token: &str, body: serde_json::Value, headers: Vec<(&'static str, String)>| {
        let (s, url, token) = (&s, url.clone(), token.to_string());
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.request(reqwest::Method::PATCH, &url, Some(&token), Some(&body), &h).await
        }
    };

    let r =
        patch(&clerk, json!({ "data": { "body": "Hello", "priority": "high" } }), vec![("If-Match", "1".into())]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!((r.body["version"].clone(), r.body["data"]["body"].clone()), (json!(2), json!("Hello")));

    // Stale If-Match.
    let r = patch(&clerk, json!({ "data": { "body": "Again" } }), vec![("If-Match", "1".into())]).await;
    assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT"), "{:?}", r.body);

    // Mass assignment: state, version and ids at the top level; reserved, generated, unknown and
    // non-editable fields in data. Each is named.
    let r = patch(&clerk, json!({ "state": "SENT", "version": 9, "data": { "body": "x" } }), vec![]).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let paths = r.error_paths();
    assert_eq!(paths, ["/state", "/version"]);
    let r = patch(
        &clerk,
        json!({ "data": { "state": "SENT", "number": "M-9", "colour": "red", "approved_note": "ok" } }),
        vec![],
    )
    .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let paths = r.error_paths();
    assert_eq!(paths, ["/data/state", "/data/number", "/data/colour", "/data/approved_note"]);
    // Invalid values are refused by the schema, with their path.
    let r = patch(&clerk, json!({ "data": { "priority": "urgent" } }), vec![]).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"));
    assert_eq!(r.body["error"]["details"]["errors"][0]["path"], "/data/priority");

    // After `send`, the clerk may edit nothing; the admin may set the note only.
    assert_eq!(s.fire(&clerk, "memo", &id, "send", json!({})).await.status, 200);
    let r = patch(&clerk, json!({ "data": { "body": "late" } }), vec![]).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let r = patch(&admin, json!({ "data": { "approved_note": "fine" } }), vec![]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let h = s.get(&format!("entities/memo/{id}/history"), &admin).await;
    let names: Vec<&str> =
        h.body["data"].as_array().expect("rows").iter().filter_map(|r| r["transition"].as_str()).collect();
    assert_eq!(names, ["create", "edit", "send", "edit"]);
    assert_eq!(h.body["data"][1]["changes"]["body"]["to"], "Hello");
}

/// `GET …/transitions` explains without leaking or locking (the `loads` fixture): a role that
/// cannot fire a transition learns only that; a guard's values leave out the loads of types the
/// actor may not view; explaining takes no row lock, even on loads declared `lock: true`.
#[tokio::test]
async fn explaining_transitions_neither_leaks_nor_locks() {
    let db = test_db().await;
    let s = TestServer::start(&db, "loads").await;
    let clerk = s.token(&db, "clerk@loads.test").await;
    let boss = s.token(&db, "boss@loads.test").await;
    let watcher = s.token(&db, "watcher@loads.test").await;
    // Above the special list's maximum (1000) and Acme's credit (2000): two guards fail.
    let r =
        s.post("entities/sale", &clerk, &json!({ "data": { "customer_id": s.sample("acme"), "amount": 2500 } })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sale = r.body["id"].as_str().expect("id").to_string();
    let path = format!("entities/sale/{sale}/transitions");
    let submit = |body: &serde_json::Value| {
        let list = body["data"].as_array().expect("list").clone();
        list.into_iter().find(|t| t["name"] == "submit").expect("submit")
    };

    // No role: not allowed because of the role; nothing loaded, no guard shown.
    let r = s.get(&path, &watcher).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t = submit(&r.body);
    assert_eq!(
        (t["allowed"].clone(), t["role_allowed"].clone(), t["reason"].clone()),
        (json!(false), json!(false), json!("role"))
    );
    assert_eq!(t["guards"], json!([]), "{t}");

    // The clerk may fire it and view customers and sales, not price lists.
    let r = s.get(&path, &clerk).await;
    let t = submit(&r.body);
    assert_eq!(
        (t["allowed"].clone(), t["role_allowed"].clone(), t["reason"].clone()),
        (json!(false), json!(true), json!("guard"))
    );
    let passed: Vec<bool> = t["guards"].as_array().expect("guards").iter().map(|g| g["passed"] == true).collect();
    assert_eq!(passed, [true, false, false]);
    let over_list = &t["guards"][1];
    assert_eq!(over_list["message"], "The amount is above what the price list prices");
    assert_eq!(over_list["values"], json!({ "entity.amount": 2500 }), "no price list value: {over_list}");
    let credit = &t["guards"][2];
    assert_eq!(credit["values"]["customer.credit_limit"], 2000, "customers are viewable: {credit}");
    assert_eq!(credit["values"]["entity.amount"], 2500);

    // The boss may view price lists: the value is there.
    let r = s.get(&path, &boss).await;
    let t = submit(&r.body);
    assert_eq!(t["guards"][1]["values"]["price_list.max_amount"], 1000, "{t}");

    // Firing it and being refused: the refusal's trace hides the price list from the clerk too,
    // and shows it to the boss.
    let fire = format!("entities/sale/{sale}/transitions/submit");
    let r = s.post(&fire, &clerk, &json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert!(!r.body.to_string().contains("price_list."), "the clerk's refusal shows price list values: {:?}", r.body);
    let r = s.post(&fire, &boss, &json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert!(r.body.to_string().contains("price_list.max_amount"), "the boss sees why: {:?}", r.body);

    // Another transaction holds the price list's row lock; explaining does not wait for it.
    let mut holder = db.tenant_tx(s.tenant).await;
    let special = uuid::Uuid::parse_str(&s.sample("special")).expect("uuid");
    sqlx::query("select 1 from entities where tenant_id = $1 and id = $2 for update")
        .bind(s.tenant)
        .bind(special)
        .execute(&mut *holder)
        .await
        .expect("lock the price list");
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), s.get(&path, &clerk))
        .await
        .expect("explaining waited for a row lock");
    assert_eq!(r.status, 200, "{:?}", r.body);
    holder.rollback().await.expect("release");
}

#[tokio::test]
async fn types_lists_only_the_types_the_user_may_view() {
    let db = test_db().await;
    let s = TestServer::start(&db, "perms").await;
    let names = |body: &serde_json::Value| -> Vec<String> {
        body["data"].as_array().expect("data").iter().filter_map(|t| t["name"].as_str().map(String::from)).collect()
    };
    for (user, expected) in [
        ("admin@perms.test", vec!["memo", "ledger"]),
        ("auditor@perms.test", vec!["memo"]),
        ("outsider@perms.test", vec!["ledger"]),
    ] {
        let token = s.token(&db, user).await;
        let r = s.get("types", &token).await;
        assert_eq!(r.status, 200, "{user}: {:?}", r.body);
        let mut got = names(&r.body);
        got.sort();
        let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
        expected.sort();
        assert_eq!(got, expected, "{user}");
    }
    // A type one may not view does not exist on its own either.
    let outsider = s.token(&db, "outsider@perms.test").await;
    let r = s.get("types/memo", &outsider).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    assert_eq!(s.get("types/ledger", &outsider).await.status, 200);
}

/// The tenant's OpenAPI document describes the types the caller may view, and no other.
#[tokio::test]
async fn the_openapi_document_describes_only_the_types_the_user_may_view() {
    let db = test_db().await;
    let s = TestServer::start(&db, "perms").await;
    for (user, seen, unseen) in
        [("admin@perms.test", vec!["memo", "ledger"], vec![]), ("outsider@perms.test", vec!["ledger"], vec!["memo"])]
    {
        let token = s.token(&db, user).await;
        let r = s.get("openapi.json", &token).await;
        assert_eq!(r.status, 200, "{user}: {:?}", r.body);
        let paths: Vec<&String> = r.body["paths"].as_object().expect("paths").keys().collect();
        for t in seen {
            let path = format!("/api/v1/t/{}/entities/{t}", s.slug);
            assert!(paths.iter().any(|p| **p == path), "{user} should see {t}: {paths:?}");
        }
        for t in unseen {
            let needle = format!("/entities/{t}");
            assert!(!paths.iter().any(|p| p.contains(&needle)), "{user} should not see {t}");
            let component = format!("{}{}", t[..1].to_uppercase(), &t[1..]);
            let schemas: Vec<&String> = r.body["components"]["schemas"].as_object().expect("schemas").keys().collect();
            assert!(!schemas.iter().any(|k| k.starts_with(&component)), "{user}: a schema of {t} in {schemas:?}");
        }
    }
}

/// `GET …/types/{name}` says what each state makes editable, for whom (the studio's edit form
/// offers exactly what a PATCH accepts).
#[tokio::test]
async fn types_say_what_each_state_makes_editable() {
    let db = test_db().await;
    let s = TestServer::start(&db, "perms").await;
    let clerk = s.token(&db, "clerk@perms.test").await;
    let r = s.get("types/memo", &clerk).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let states = &r.body["workflow"]["states"];
    assert_eq!(states[0]["name"], "DRAFT");
    assert_eq!(
        states[0]["editable"],
        json!({ "fields": ["subject", "body", "priority"], "roles": ["clerk", "admin"] })
    );
    assert_eq!(states[1]["editable"], json!({ "fields": ["approved_note"], "roles": ["admin"] }));
    assert_eq!(states[2]["editable"], serde_json::Value::Null);
}
