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
        let mut tx = db.tenant_tx(s.tenant.0).await;
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
