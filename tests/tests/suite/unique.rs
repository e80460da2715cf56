//! Unique constraints (`unique:` on a field, a type's `unique:` list) on a real Postgres and real
//! HTTP: a write that would duplicate a value is 409 `UNIQUE_VIOLATION` naming the fields (create,
//! PATCH, import, a transition's script editing or creating), never a 500, also when many
//! creates race; `plan` says which indexes apply builds or drops and lists the duplicates that
//! refuse it; apply refuses them with 422 and writes nothing; dropping `unique` drops the index.
//!
//! Fixture: `tests/fixtures/unique` (parts: `sku` unique, `code` unique case-insensitively,
//! `supplier` + `name` unique together).

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, Reply, TestServer};
use switchyard_tests::{test_db, TestDb};
use tenants::unique::UniqueAction;
use tenants::Package;

const ADMIN: &str = "admin@parts.test";

/// The fixture, changed by `edit`.
fn package(edit: impl FnOnce(&mut Package)) -> Package {
    let mut p = Package::load_dir(&package_dir("unique")).expect("the unique fixture");
    edit(&mut p);
    p
}

/// The fixture without any unique constraint.
fn without_unique(p: &mut Package) {
    for t in &mut p.types {
        t.unique.clear();
        for f in t.fields.values_mut() {
            f.unique = None;
        }
    }
}

async fn create(s: &TestServer, token: &str, data: Value) -> Reply {
    s.post("entities/part", token, &json!({ "data": data })).await
}

/// Asserts a 409 `UNIQUE_VIOLATION` naming `fields` of type part.
fn assert_unique(r: &Reply, fields: &[&str]) {
    assert_eq!((r.status, r.code()), (409, "UNIQUE_VIOLATION"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"], json!({ "type": "part", "fields": fields }), "{:?}", r.body);
}

/// The names of the tenant's unique indexes on `entities`.
async fn unique_indexes(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select indexname::text from pg_indexes where tablename in (select inhrelid::regclass::text from pg_inherits where inhparent = 'entities'::regclass) and indexname like 'entities\\_u\\_%' \
         order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .expect("indexes")
}

async fn count_parts(db: &TestDb) -> i64 {
    sqlx::query_scalar("select count(*) from entities where type = 'part'").fetch_one(&db.owner).await.expect("count")
}

async fn versions(db: &TestDb) -> i64 {
    sqlx::query_scalar("select count(*) from config_versions").fetch_one(&db.owner).await.expect("versions")
}

#[tokio::test]
async fn duplicates_are_409_naming_the_fields_on_every_write() {
    let db = test_db().await;
    let s = TestServer::start(&db, "unique").await;
    let admin = s.token(&db, ADMIN).await;
    assert_eq!(unique_indexes(&db).await.len(), 3, "one index per constraint");

    // A single field.
    let first = create(&s, &admin, json!({ "sku": "A-1", "code": "abc" })).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_unique(&create(&s, &admin, json!({ "sku": "A-1" })).await, &["sku"]);
    // Case-sensitive unless said otherwise: another case is another sku.
    assert_eq!(create(&s, &admin, json!({ "sku": "a-1" })).await.status, 201);
    // Case-insensitive.
    assert_unique(&create(&s, &admin, json!({ "sku": "B-1", "code": "ABC" })).await, &["code"]);
    // Several fields together: only the same pair conflicts.
    assert_eq!(create(&s, &admin, json!({ "supplier": "acme", "name": "bolt" })).await.status, 201);
    assert_eq!(create(&s, &admin, json!({ "supplier": "acme", "name": "nut" })).await.status, 201);
    assert_eq!(create(&s, &admin, json!({ "supplier": "zeta", "name": "bolt" })).await.status, 201);
    assert_unique(&create(&s, &admin, json!({ "supplier": "acme", "name": "bolt" })).await, &["supplier", "name"]);
    // Entities without a value are not compared (as SQL's NULLs).
    assert_eq!(create(&s, &admin, json!({ "name": "bolt" })).await.status, 201);
    assert_eq!(create(&s, &admin, json!({ "name": "bolt" })).await.status, 201);
    let parts = count_parts(&db).await;
    assert_eq!(parts, 7);

    // PATCH: refused, the entity unchanged.
    let other = create(&s, &admin, json!({ "sku": "C-1" })).await;
    let id = other.body["id"].as_str().expect("id").to_string();
    let url = s.url(&format!("entities/part/{id}"));
    let r = s.request(Method::PATCH, &url, Some(&admin), Some(&json!({ "data": { "sku": "A-1" } })), &[]).await;
    assert_unique(&r, &["sku"]);
    let r = s.request(Method::PATCH, &url, Some(&admin), Some(&json!({ "data": { "code": "Abc" } })), &[]).await;
    assert_unique(&r, &["code"]);
    let now = s.get(&format!("entities/part/{id}"), &admin).await;
    assert_eq!((&now.body["data"]["sku"], &now.body["version"]), (&json!("C-1"), &other.body["version"]));

    // A transition whose script sets the value, or creates an entity with it.
    let r = s.fire(&admin, "part", &id, "resku", json!({ "sku": "A-1" })).await;
    assert_unique(&r, &["sku"]);
    let r = s.fire(&admin, "part", &id, "copy", json!({ "sku": "A-1" })).await;
    assert_unique(&r, &["sku"]);
    assert_eq!(count_parts(&db).await, parts + 1, "nothing of the refused transitions was written");
    assert_eq!(s.fire(&admin, "part", &id, "copy", json!({ "sku": "D-1" })).await.status, 200);

    // Import: a duplicate row is rejected naming its fields; the others are created.
    let rows = json!([{ "sku": "E-1" }, { "sku": "A-1" }, { "sku": "E-1" }, { "sku": "F-1" }]);
    let r = s.request(Method::POST, &s.url("entities/part/import"), Some(&admin), Some(&rows), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["created"], 2, "{:?}", r.body);
    let rejected = r.body["rejected"].as_array().expect("rejected");
    let rows: Vec<(i64, &str, &Value)> = rejected
        .iter()
        .map(|x| (x["row"].as_i64().expect("row"), x["code"].as_str().unwrap_or(""), &x["fields"]))
        .collect();
    assert_eq!(rows, [(2, "UNIQUE_VIOLATION", &json!(["sku"])), (3, "UNIQUE_VIOLATION", &json!(["sku"]))]);
    assert_eq!(rejected[0]["errors"][0]["path"], "/sku", "{rejected:?}");
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn concurrent_creates_of_one_value_leave_one_winner_and_no_500() {
    let db = test_db().await;
    let s = TestServer::start(&db, "unique").await;
    let admin = s.token(&db, ADMIN).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, admin) = (s.clone_view(), admin.clone());
        tasks.push(tokio::spawn(async move { create(&s, &admin, json!({ "sku": "RACE", "code": "race" })).await }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.expect("task");
        if r.status == 409 {
            assert_eq!(r.code(), "UNIQUE_VIOLATION", "{:?}", r.body);
            assert!(matches!(r.body["error"]["details"]["fields"].as_array().map(Vec::len), Some(1)), "{:?}", r.body);
        }
        statuses.push(r.status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(count_parts(&db).await, 1);
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn plan_lists_duplicates_and_apply_refuses_them_writing_nothing() {
    let db = test_db().await;
    let limits = engine::limits::Limits::default();
    // Version 1 without constraints, and duplicates in it.
    let loose = package(without_unique);
    tenants::apply::publish(&db.owner, &loose, "test", &limits).await.expect("publish v1");
    assert!(unique_indexes(&db).await.is_empty());
    let s = TestServer::serve_published(&db, "parts").await;
    tenants::apply::upsert_users(&db.owner, s.tenant, &loose.tenant.users, None).await.expect("users");
    let admin = s.token(&db, ADMIN).await;
    let mut ids = Vec::new();
    for data in [
        json!({ "sku": "X", "code": "q" }),
        json!({ "sku": "X", "code": "Q" }),
        json!({ "sku": "X" }),
        json!({ "sku": "Y" }),
        json!({ "sku": "Y" }),
        json!({ "sku": "Z" }),
    ] {
        let r = create(&s, &admin, data).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        ids.push(r.body["id"].as_str().expect("id").to_string());
    }

    // The plan: three indexes to build, two of them refused, with the values and counts.
    let strict = package(|_| {});
    let plan = tenants::plan::plan(&db.owner, &engine::store::TenantSlug::parse("parts").expect("a slug"), &strict)
        .await
        .expect("plan");
    let sku = plan.unique.iter().find(|u| u.fields == ["sku"]).expect("sku in the plan");
    assert_eq!(sku.action, UniqueAction::Create);
    let dups: Vec<(Value, i64)> = sku.duplicates.iter().map(|d| (json!(d.values), d.count)).collect();
    assert_eq!(dups, [(json!(["X"]), 3), (json!(["Y"]), 2)]);
    assert_eq!(sku.duplicated_values, 2);
    let code = plan.unique.iter().find(|u| u.fields == ["code"]).expect("code in the plan");
    assert!(code.case_insensitive);
    assert_eq!(code.duplicates.iter().map(|d| (json!(d.values), d.count)).collect::<Vec<_>>(), [(json!(["q"]), 2)]);
    let pair = plan.unique.iter().find(|u| u.fields == ["supplier", "name"]).expect("pair in the plan");
    assert!(pair.duplicates.is_empty(), "rows without a value are not compared: {pair:?}");
    let refused: Vec<(String, String)> = plan
        .refused
        .iter()
        .map(|e| match e {
            tenants::PackageError::Invalid { file, path, .. } => (file.clone(), path.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("types/part.yaml".to_string(), "/fields/sku/unique".to_string()),
            ("types/part.yaml".to_string(), "/fields/code/unique".to_string()),
        ]
    );
    let text = plan.text();
    assert!(
        text.contains(
            "  + unique part (sku): refused, 2 values are held by more than one part entity: \"X\" (3 entities), \"Y\" (2 entities)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  + unique part (supplier, name): a unique index is built when the version is published\n"),
        "{text}"
    );
    assert!(text.contains("Refused: applying this package would fail:\n"), "{text}");

    // Over HTTP: the plan says it, apply is 422 naming the places, and nothing is written.
    let r = s.post("config/plan", &admin, &strict.to_json()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["unique"].as_array().map(Vec::len), Some(3), "{:?}", r.body);
    assert_eq!(r.body["unique"][0]["duplicates"][0], json!({ "values": ["X"], "count": 3 }), "{:?}", r.body);
    let before = versions(&db).await;
    let r = s.post("config/apply", &admin, &strict.to_json()).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);
    assert!(r.body.to_string().contains("/fields/sku/unique"), "{:?}", r.body);
    assert_eq!(versions(&db).await, before, "no version was written");
    assert!(unique_indexes(&db).await.is_empty(), "no index was built");
    assert_eq!(s.post("entities/part", &admin, &json!({ "data": { "sku": "X" } })).await.status, 201, "v1 still live");

    // Duplicates resolved: apply builds the indexes, in the version's transaction.
    let resolve = sqlx::query(
        "update entities set data = data - 'code' || jsonb_build_object('sku', 'fixed-' || id::text) \
         where type = 'part' and data->>'sku' in ('X', 'Y')",
    );
    resolve.execute(&db.owner).await.expect("resolve the duplicates");
    let r = s.post("config/apply", &admin, &strict.to_json()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(unique_indexes(&db).await.len(), 3);
    // Entities pinned to version 1 are covered too: the index is per type, whatever the version.
    let pinned_v1: i64 = sqlx::query_scalar("select count(*) from entities where type = 'part' and config_version = 1")
        .fetch_one(&db.owner)
        .await
        .expect("count");
    assert_eq!(pinned_v1, 7);
    assert_unique(&create(&s, &admin, json!({ "sku": "Z" })).await, &["sku"]);
    let id = &ids[5];
    let url = s.url(&format!("entities/part/{id}"));
    let r = s
        .request(
            Method::PATCH,
            &url,
            Some(&admin),
            Some(&json!({ "data": { "sku": format!("fixed-{}", ids[0]) } })),
            &[],
        )
        .await;
    assert_unique(&r, &["sku"]);
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn dropping_unique_drops_the_index_in_the_next_version() {
    let db = test_db().await;
    let s = TestServer::start(&db, "unique").await;
    let admin = s.token(&db, ADMIN).await;
    let before = unique_indexes(&db).await;
    assert_eq!(before.len(), 3);
    assert_eq!(create(&s, &admin, json!({ "sku": "S" })).await.status, 201);
    assert_unique(&create(&s, &admin, json!({ "sku": "S" })).await, &["sku"]);

    // `sku` no longer unique; the other two constraints stay.
    let looser = package(|p| {
        if let Some(f) = p.types[0].fields.get_mut("sku") {
            f.unique = None;
        }
    });
    let r = s.post("config/plan", &admin, &looser.to_json()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let text = r.body["text"].as_str().expect("text");
    assert!(text.contains("  - unique part (sku): its index is dropped\n"), "{text}");
    assert_eq!(r.body["unique"].as_array().map(Vec::len), Some(1), "the kept ones are not listed: {:?}", r.body);
    let r = s.post("config/apply", &admin, &looser.to_json()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let after = unique_indexes(&db).await;
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|name| before.contains(name)), "the others are kept as they were: {before:?} {after:?}");
    assert_eq!(create(&s, &admin, json!({ "sku": "S" })).await.status, 201);
    // Applying it again changes nothing.
    let r = s.post("config/apply", &admin, &looser.to_json()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(unique_indexes(&db).await, after);
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn a_migration_that_would_duplicate_a_unique_value_is_409_and_moves_nothing() {
    let db = test_db().await;
    let s = TestServer::start(&db, "unique").await;
    let admin = s.token(&db, ADMIN).await;
    for sku in ["M-1", "M-2"] {
        assert_eq!(create(&s, &admin, json!({ "sku": sku })).await.status, 201);
    }
    // Version 2: a new unique field with a default, which a migration fills in for both.
    let v2 = package(|p| {
        let mut batch: ontology::FieldDef =
            serde_json::from_value(json!({ "type": "string", "default": "B" })).expect("field");
        batch.unique = serde_json::from_value(json!(true)).expect("unique");
        p.types[0].fields.insert(ontology::FieldName::parse("batch").expect("name"), batch);
    });
    let r = s.post("config/apply", &admin, &v2.to_json()).await;
    assert_eq!(r.status, 201, "no entity has a batch yet: {:?}", r.body);
    let r = s.post("config/migrate", &admin, &json!({ "to": 2, "dry_run": false })).await;
    assert_unique(&r, &["batch"]);
    let on_v1: i64 = sqlx::query_scalar("select count(*) from entities where type = 'part' and config_version = 1")
        .fetch_one(&db.owner)
        .await
        .expect("count");
    assert_eq!(on_v1, 2, "nothing moved");
    db.drop_db().await.expect("drop");
}
