//! The studio's server-side draft and its dry run (issue 10), over real HTTP on a real Postgres:
//! reading (no draft: the live package at version 0), saving with optimistic concurrency (a
//! stale save is 409 `VERSION_CONFLICT`; of concurrent saves from one version exactly one wins),
//! discarding, who may (admins of the tenant only), and trying a transition of the draft on a
//! live entity without anything being written (checked in the database).

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, Reply, TestServer};
use switchyard_tests::{test_db, TestDb};
use tenants::Package;

const ADMIN: &str = "admin@chemichemi.test";

async fn put_draft(s: &TestServer, token: &str, version: i64, package: &Value) -> Reply {
    let body = json!({ "version": version, "package": package });
    s.request(Method::PUT, &s.url("config/draft"), Some(token), Some(&body), &[]).await
}

async fn delete_draft(s: &TestServer, token: &str, query: &str) -> Reply {
    s.request(Method::DELETE, &s.url(&format!("config/draft{query}")), Some(token), None, &[]).await
}

/// A work-in-progress package: the live one with a type that is not finished (no fields, no
/// workflow), which would not validate.
fn work_in_progress(live: &Value) -> Value {
    let mut package = live.clone();
    package["types"].as_array_mut().expect("types").push(json!({ "name": "unfinished" }));
    package
}

#[tokio::test]
async fn without_a_draft_the_live_package_is_read_at_version_0() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let r = s.get("config/draft", &admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["version"], 0);
    assert_eq!(r.body["stored"], false);
    assert_eq!(r.body["base_version"], 1);
    assert_eq!(r.body["updated_at"], Value::Null);
    assert_eq!(r.body["updated_by"], Value::Null);
    let live = s.get("config/export", &admin).await;
    assert_eq!(live.status, 200);
    assert_eq!(r.body["package"].to_string(), live.body.to_string(), "the live package, key order too");
}

#[tokio::test]
async fn a_saved_draft_reads_back_as_saved_and_outlives_the_server() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let live = s.get("config/export", &admin).await.body;
    let draft = work_in_progress(&live);

    // Not validated: an unfinished package is kept as it is.
    let r = put_draft(&s, &admin, 0, &draft).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["base_version"], 1);
    assert_eq!(r.body["updated_by"], ADMIN);
    assert!(
        r.body["updated_at"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{:?}",
        r.body
    );

    let got = s.get("config/draft", &admin).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["stored"], true);
    assert_eq!(got.body["version"], 1);
    assert_eq!(got.body["base_version"], 1);
    assert_eq!(got.body["updated_by"], ADMIN);
    assert_eq!(got.body["updated_at"], r.body["updated_at"]);
    assert_eq!(got.body["package"].to_string(), draft.to_string(), "as saved, key order too");

    // The next save names version 1.
    let mut second = draft.clone();
    second["tenant"]["name"] = json!("Chemichemi (draft)");
    let r = put_draft(&s, &admin, 1, &second).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["base_version"], 1, "the version it started from stays");

    // Anything that is not an object is refused, and nothing changes.
    for (body, path) in [
        (json!({ "version": 2, "package": [1, 2] }), "/package"),
        (json!({ "version": 2, "package": "text" }), "/package"),
        (json!({ "version": -1, "package": {} }), "/version"),
        (json!({ "version": 2 }), ""),
    ] {
        let r = s.request(Method::PUT, &s.url("config/draft"), Some(&admin), Some(&body), &[]).await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{body}: {:?}", r.body);
        assert!(r.error_paths().iter().any(|p| p.starts_with(path)), "{body}: {:?}", r.body);
    }
    // Over the bound: refused in the envelope.
    let huge = json!({ "blob": "x".repeat(api::limits::MAX_DRAFT_BYTES) });
    let r = put_draft(&s, &admin, 2, &huge).await;
    assert_eq!((r.status, r.code()), (413, "PAYLOAD_TOO_LARGE"), "{:?}", r.body);

    // Another server process on the same database (a restart) has it.
    let again = TestServer::serve_published(&db, "chemichemi").await;
    let admin2 = again.token(&db, ADMIN).await;
    let got = again.get("config/draft", &admin2).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!((got.body["version"].as_i64(), got.body["stored"].as_bool()), (Some(2), Some(true)));
    assert_eq!(got.body["package"].to_string(), second.to_string());
}

#[tokio::test]
async fn a_stale_save_is_a_version_conflict() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let live = s.get("config/export", &admin).await.body;

    assert_eq!(put_draft(&s, &admin, 0, &live).await.status, 200);
    // Version 0 when a draft exists: someone saved first.
    let r = put_draft(&s, &admin, 0, &work_in_progress(&live)).await;
    assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT"), "{:?}", r.body);
    let details = &r.body["error"]["details"];
    assert_eq!(details["current_version"], 1, "{details}");
    assert_eq!(details["updated_by"], ADMIN, "{details}");
    assert!(details["updated_at"].as_str().is_some(), "{details}");

    assert_eq!(put_draft(&s, &admin, 1, &live).await.body["version"], 2);
    let r = put_draft(&s, &admin, 1, &live).await;
    assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["current_version"], 2);
    // A version from the future is stale too.
    let r = put_draft(&s, &admin, 7, &live).await;
    assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT"), "{:?}", r.body);
    // The stored draft is the one that won.
    assert_eq!(s.get("config/draft", &admin).await.body["version"], 2);
}

#[tokio::test]
async fn of_concurrent_saves_from_one_version_exactly_one_wins() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let live = s.get("config/export", &admin).await.body;
    const N: usize = 8;
    for from in [0, 1] {
        let mut tasks = Vec::new();
        for i in 0..N {
            let (s, admin) = (s.clone_view(), admin.clone());
            let mut package = live.clone();
            package["tenant"]["name"] = json!(format!("attempt {from}/{i}"));
            tasks.push(tokio::spawn(async move { put_draft(&s, &admin, from, &package).await }));
        }
        let mut won = 0;
        for t in tasks {
            let r = t.await.expect("task");
            match r.status {
                200 => {
                    won += 1;
                    assert_eq!(r.body["version"], from + 1, "{:?}", r.body);
                }
                409 => {
                    assert_eq!(r.code(), "VERSION_CONFLICT", "{:?}", r.body);
                    assert_eq!(r.body["error"]["details"]["current_version"], from + 1, "{:?}", r.body);
                }
                other => panic!("unexpected {other}: {:?}", r.body),
            }
        }
        assert_eq!(won, 1, "from version {from}: exactly one save is stored");
    }
    let got = s.get("config/draft", &admin).await.body;
    assert_eq!(got["version"], 2);
    assert!(got["package"]["tenant"]["name"].as_str().is_some_and(|n| n.starts_with("attempt 1/")), "{got}");
}

#[tokio::test]
async fn a_draft_is_discarded_idempotently_and_by_version() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let live = s.get("config/export", &admin).await.body;

    // Nothing to discard is fine.
    let r = delete_draft(&s, &admin, "").await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    assert_eq!(put_draft(&s, &admin, 0, &live).await.status, 200);
    assert_eq!(put_draft(&s, &admin, 1, &live).await.status, 200);
    // Not at the version named: kept.
    let r = delete_draft(&s, &admin, "?version=1").await;
    assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["current_version"], 2);
    assert_eq!(s.get("config/draft", &admin).await.body["stored"], true);
    let r = delete_draft(&s, &admin, "?version=2").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let got = s.get("config/draft", &admin).await.body;
    assert_eq!((got["stored"].as_bool(), got["version"].as_i64()), (Some(false), Some(0)));
    assert_eq!(delete_draft(&s, &admin, "").await.status, 204, "again: still fine");
    assert_eq!(delete_draft(&s, &admin, "?version=2").await.status, 204, "already gone");

    // A save from the discarded draft's version is stale: it was discarded meanwhile.
    let r = put_draft(&s, &admin, 2, &live).await;
    assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"], json!({ "current_version": 0, "updated_by": null, "updated_at": null }));
    // A new draft starts again at 1.
    assert_eq!(put_draft(&s, &admin, 0, &live).await.body["version"], 1);
    let r = delete_draft(&s, &admin, "?version=x").await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"), "{:?}", r.body);
}

#[tokio::test]
async fn only_the_tenants_admins_see_or_touch_its_draft() {
    let db = test_db().await;
    let a = TestServer::start(&db, "chemichemi").await;
    let mut rival = Package::load_dir(&package_dir("chemichemi")).expect("package");
    rival.tenant.slug = "rival".into();
    rival.tenant.name = "Rival Distribution".into();
    let b = a.second_tenant(&db, rival).await;
    let a_admin = a.token(&db, ADMIN).await;
    let a_manager = a.token(&db, "manager@chemichemi.test").await;
    let b_admin = b.token(&db, ADMIN).await;
    let live = a.get("config/export", &a_admin).await.body;
    assert_eq!(put_draft(&a, &a_admin, 0, &work_in_progress(&live)).await.status, 200);

    let customer = a.sample("savanna_hotel");
    let dry =
        json!({ "type": "customer", "id": customer, "transition": "suspendCustomer", "input": { "reason": "test" } });
    let attempts: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "config/draft", None),
        (Method::PUT, "config/draft", Some(json!({ "version": 1, "package": { "pwned": true } }))),
        (Method::DELETE, "config/draft", None),
        (Method::POST, "config/draft/dry-run", Some(dry.clone())),
    ];
    for (method, path, body) in &attempts {
        // Not an admin.
        let r = a.request(method.clone(), &a.url(path), Some(&a_manager), body.as_ref(), &[]).await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "manager: {method} {path}: {:?}", r.body);
        // Another tenant's admin, on this tenant's path.
        let r = a.request(method.clone(), &a.url(path), Some(&b_admin), body.as_ref(), &[]).await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "B's admin: {method} {path}: {:?}", r.body);
        assert!(!r.body.to_string().contains("unfinished"), "{:?}", r.body);
    }
    // A's draft is untouched and B has none of its own.
    let got = a.get("config/draft", &a_admin).await.body;
    assert_eq!((got["version"].as_i64(), got["stored"].as_bool()), (Some(1), Some(true)));
    let theirs = b.get("config/draft", &b_admin).await.body;
    assert_eq!((theirs["version"].as_i64(), theirs["stored"].as_bool()), (Some(0), Some(false)), "{theirs}");
    assert_eq!(theirs["package"]["tenant"]["slug"], "rival");
    // A's entity, dry-run on B's path by B's admin (with B's live definitions): not found there.
    let r = b.post("config/draft/dry-run", &b_admin, &dry).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    // B's draft is B's: saving it leaves A's alone.
    assert_eq!(put_draft(&b, &b_admin, 0, &json!({ "b": true })).await.status, 200);
    assert_eq!(a.get("config/draft", &a_admin).await.body["package"], work_in_progress(&live));

    // In the database, as the server's role: with B set, A's row does not exist.
    let mut tx = db.app.begin().await.expect("begin");
    sqlx::query("select set_config('app.tenant_id', $1, true)")
        .bind(b.tenant.to_string())
        .execute(&mut *tx)
        .await
        .expect("tenant");
    let seen: Vec<engine::store::TenantId> =
        sqlx::query_scalar("select tenant_id from config_drafts").fetch_all(&mut *tx).await.expect("drafts");
    assert_eq!(seen, vec![b.tenant]);
    // Nor can it be written there.
    let r = sqlx::query("update config_drafts set updated_by = 'x' where tenant_id = $1")
        .bind(a.tenant)
        .execute(&mut *tx)
        .await
        .expect("update");
    assert_eq!(r.rows_affected(), 0);
    tx.rollback().await.expect("rollback");
}

// --- Dry run -----------------------------------------------------------------------------------

/// The live package with a new state and two transitions on customers: `holdCustomer` (ACTIVE →
/// ON_HOLD, guarded by the credit limit; its script changes the customer, creates a territory
/// and emits an event) and `releaseCustomer` back.
fn with_hold(live: &Value) -> Value {
    let mut package = live.clone();
    let customer = package["types"]
        .as_array_mut()
        .expect("types")
        .iter_mut()
        .find(|t| t["name"] == "customer")
        .expect("customer type");
    let workflow = &mut customer["workflow"];
    workflow["states"]["ON_HOLD"] = json!({ "label": "On hold" });
    workflow["transitions"]["holdCustomer"] = json!({
        "from": ["ACTIVE"],
        "to": "ON_HOLD",
        "roles": ["manager", "admin"],
        "guards": [
            { "rule": { ">": [{ "var": "entity.credit_limit" }, 1000] }, "message": "Credit limit must be above 1000" },
        ],
        "script": "entity.suspension_reason = \"held: \" + input.reason;\n\
                   let t = create(\"territory\", #{ name: \"Held accounts\", code: \"HELD\" });\n\
                   emit(\"customer.review_requested\", #{ territory: t });",
        "input": {
            "type": "object", "required": ["reason"], "additionalProperties": false,
            "properties": { "reason": { "type": "string", "minLength": 1 } },
        },
        "events": ["customer.held"],
    });
    workflow["transitions"]["releaseCustomer"] =
        json!({ "from": ["ON_HOLD"], "to": "ACTIVE", "roles": ["manager", "admin"] });
    package
}

/// Every row of the tenant that a transition could write, to compare before and after.
async fn snapshot(db: &TestDb, tenant: engine::store::TenantId) -> Value {
    let mut out = serde_json::Map::new();
    for table in [
        "entities",
        "transitions",
        "outbox",
        "outbox_pending",
        "event_log",
        "timers",
        "idempotency",
        "sequences",
        "webhook_deliveries",
    ] {
        let v: Value = sqlx::query_scalar(&format!(
            "select coalesce(jsonb_agg(to_jsonb(r) order by to_jsonb(r)::text), '[]') from {table} r where tenant_id = $1"
        ))
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
        out.insert(table.to_string(), v);
    }
    Value::Object(out)
}

#[tokio::test]
async fn a_dry_run_tries_the_drafts_transition_on_live_data_and_writes_nothing() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let live = s.get("config/export", &admin).await.body;
    let draft = with_hold(&live);
    let r = s.post("config/validate", &admin, &draft).await;
    assert_eq!(r.body["valid"], true, "the test's draft validates: {:?}", r.body);
    assert_eq!(put_draft(&s, &admin, 0, &draft).await.status, 200);
    let kiosk = s.sample("mama_njeri");
    let hotel = s.sample("savanna_hotel");
    let before = snapshot(&db, s.tenant).await;

    // Refused by the guard: its message and the values it read.
    let r = s
        .post(
            "config/draft/dry-run",
            &admin,
            &json!({ "type": "customer", "id": kiosk, "transition": "holdCustomer", "input": { "reason": "audit" } }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["outcome"], "rejected", "{:?}", r.body);
    assert_eq!(r.body["definitions"], "draft");
    assert_eq!(r.body["rejection"]["code"], "GUARD_FAILED");
    assert_eq!(r.body["rejection"]["message"], "Credit limit must be above 1000");
    let guards = r.body["guards"].as_array().expect("guards");
    assert_eq!(guards.len(), 1, "{guards:?}");
    assert_eq!(guards[0]["message"], "Credit limit must be above 1000");
    assert_eq!(guards[0]["passed"], false);
    assert_eq!(guards[0]["values"], json!({ "entity.credit_limit": 100 }));
    assert_eq!((r.body["changes"].clone(), r.body["events"].clone()), (json!([]), json!([])));

    // Accepted: the entity before and after, the territory the script created, the events.
    let r = s
        .post(
            "config/draft/dry-run",
            &admin,
            &json!({ "type": "customer", "id": hotel, "transition": "holdCustomer", "input": { "reason": "audit" } }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["outcome"], "applied", "{:?}", r.body);
    assert_eq!(r.body["rejection"], Value::Null);
    assert_eq!(r.body["guards"][0]["passed"], true);
    let changes = r.body["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2, "{changes:?}");
    let (own, created) = (&changes[0], &changes[1]);
    assert_eq!(
        (own["type"].as_str(), own["id"].as_str(), own["created"].as_bool()),
        (Some("customer"), Some(hotel.as_str()), Some(false))
    );
    assert_eq!(own["before"]["state"], "ACTIVE");
    assert_eq!(own["after"]["state"], "ON_HOLD");
    assert_eq!(own["after"]["version"], own["before"]["version"].as_i64().expect("version") + 1);
    assert_eq!(own["after"]["data"]["suspension_reason"], "held: audit");
    assert_eq!((created["type"].as_str(), created["created"].as_bool()), (Some("territory"), Some(true)));
    assert_eq!(created["before"], Value::Null);
    assert_eq!(created["after"]["data"]["code"], "HELD");
    let territory_id = created["id"].as_str().expect("id").to_string();
    let events: Vec<&str> =
        r.body["events"].as_array().expect("events").iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(events, ["territory.created", "customer.held", "customer.review_requested"], "{:?}", r.body["events"]);
    assert_eq!(r.body["follow_ups"], json!([]));

    // Nothing was written: not the entity, its history, events, the territory, sequences.
    let after = snapshot(&db, s.tenant).await;
    assert_eq!(before, after, "a dry run leaves the database as it was");
    let found: i64 = sqlx::query_scalar("select count(*) from entities where id = $1::text::uuid")
        .bind(&territory_id)
        .fetch_one(&db.owner)
        .await
        .expect("count");
    assert_eq!(found, 0);
    let hotel_now = s.get(&format!("entities/customer/{hotel}"), &admin).await.body;
    assert_eq!(hotel_now["state"], "ACTIVE");
    assert_eq!(hotel_now["version"], own["before"]["version"]);
    // The draft is not live: the transition does not exist for real.
    let r = s.fire(&admin, "customer", &hotel, "holdCustomer", json!({ "reason": "audit" })).await;
    assert_eq!((r.status, r.code()), (409, "INVALID_TRANSITION"), "{:?}", r.body);
    // And the draft is as it was saved.
    assert_eq!(s.get("config/draft", &admin).await.body["version"], 1);
}

#[tokio::test]
async fn a_dry_run_takes_an_unsaved_package_an_actor_and_refuses_what_is_wrong() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let live = s.get("config/export", &admin).await.body;
    let hotel = s.sample("savanna_hotel");
    let hold = |extra: Value| {
        let mut body =
            json!({ "type": "customer", "id": hotel, "transition": "holdCustomer", "input": { "reason": "x" } });
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let before = snapshot(&db, s.tenant).await;

    // No draft, no package: the live version, which has no such transition.
    let r = s.post("config/draft/dry-run", &admin, &hold(json!({}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!((r.body["outcome"].as_str(), r.body["definitions"].as_str()), (Some("rejected"), Some("live")));
    assert_eq!(r.body["rejection"]["code"], "INVALID_TRANSITION");

    // The studio's unsaved package, without a stored draft.
    let r = s.post("config/draft/dry-run", &admin, &hold(json!({ "package": with_hold(&live) }))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!((r.body["outcome"].as_str(), r.body["definitions"].as_str()), (Some("applied"), Some("package")));

    // As another user: their roles decide. Sales may not hold a customer; a manager may.
    let user_id = |email: &'static str| {
        let db = &db;
        let tenant = s.tenant;
        async move {
            sqlx::query_scalar::<_, uuid::Uuid>("select id from users where tenant_id = $1 and email = $2")
                .bind(tenant)
                .bind(email)
                .fetch_one(&db.owner)
                .await
                .expect("user")
                .to_string()
        }
    };
    let sales = user_id("sales@chemichemi.test").await;
    let r =
        s.post("config/draft/dry-run", &admin, &hold(json!({ "package": with_hold(&live), "act_as": sales }))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["outcome"], "rejected");
    assert_eq!(r.body["rejection"]["code"], "FORBIDDEN", "{:?}", r.body);
    assert_eq!(r.body["rejection"]["details"]["required_roles"], json!(["manager", "admin"]));
    let manager = user_id("manager@chemichemi.test").await;
    let r =
        s.post("config/draft/dry-run", &admin, &hold(json!({ "package": with_hold(&live), "act_as": manager }))).await;
    assert_eq!(r.body["outcome"], "applied", "{:?}", r.body);
    assert_eq!(r.body["changes"][0]["after"]["updated_by"], manager.as_str());

    // A user whose roles may not view customers: as the real call, the entity does not exist.
    let solver = user_id("solver@chemichemi.test").await;
    let r =
        s.post("config/draft/dry-run", &admin, &hold(json!({ "package": with_hold(&live), "act_as": solver }))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["outcome"].as_str(), r.body["rejection"]["code"].as_str()),
        (Some("rejected"), Some("NOT_FOUND"))
    );

    // An unknown or deactivated user is the request's mistake.
    let unknown = uuid::Uuid::now_v7().to_string();
    for who in [unknown.as_str(), "not-a-uuid"] {
        let r = s.post("config/draft/dry-run", &admin, &hold(json!({ "act_as": who }))).await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
        assert_eq!(r.error_paths(), ["/act_as"]);
    }
    sqlx::query("update users set active = false where tenant_id = $1 and email = 'manager2@chemichemi.test'")
        .bind(s.tenant)
        .execute(&db.owner)
        .await
        .expect("deactivate");
    let inactive = user_id("manager2@chemichemi.test").await;
    let r = s.post("config/draft/dry-run", &admin, &hold(json!({ "act_as": inactive }))).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);

    // A package that does not validate: its problems, as plan gives them.
    let r = s.post("config/draft/dry-run", &admin, &hold(json!({ "package": work_in_progress(&live) }))).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);
    assert!(!r.body["error"]["details"]["problems"].as_array().expect("problems").is_empty());
    // A stored draft that does not validate is refused the same way.
    assert_eq!(put_draft(&s, &admin, 0, &work_in_progress(&live)).await.status, 200);
    let r = s.post("config/draft/dry-run", &admin, &hold(json!({}))).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);

    // An entity that does not exist, or not as that type: 404.
    for (ty, id) in [("customer", uuid::Uuid::now_v7().to_string()), ("order", hotel.clone())] {
        let body = json!({ "type": ty, "id": id, "transition": "holdCustomer", "package": with_hold(&live) });
        let r = s.post("config/draft/dry-run", &admin, &body).await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{ty}/{id}: {:?}", r.body);
    }
    // Input that is not an object, or that the transition's schema refuses.
    let r = s.post("config/draft/dry-run", &admin, &hold(json!({ "input": [1] }))).await;
    assert_eq!((r.status, r.error_paths()), (422, vec!["/input"]), "{:?}", r.body);
    let r = s.post("config/draft/dry-run", &admin, &hold(json!({ "package": with_hold(&live), "input": {} }))).await;
    assert_eq!(
        (r.body["outcome"].as_str(), r.body["rejection"]["code"].as_str()),
        (Some("rejected"), Some("VALIDATION_FAILED"))
    );

    assert_eq!(before, snapshot(&db, s.tenant).await, "nothing was written");
}

#[tokio::test]
async fn a_dry_run_shows_the_rows_a_script_updates_and_the_follow_ups_it_fires() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, ADMIN).await;
    let live = s.get("config/export", &admin).await.body;
    let mut draft = with_hold(&live);
    // Holding a customer with a peer: renames the customer's territory (an update of a locked
    // load) and suspends the peer (a follow-up, with its own script and event).
    let customer = draft["types"]
        .as_array_mut()
        .expect("types")
        .iter_mut()
        .find(|t| t["name"] == "customer")
        .expect("customer type");
    customer["workflow"]["transitions"]["holdWithPeer"] = json!({
        "from": ["ACTIVE"],
        "to": "ON_HOLD",
        "roles": ["manager", "admin"],
        "input": { "type": "object", "required": ["peer_id"], "properties": { "peer_id": { "type": "string" } } },
        "load": {
            "territory": { "type": "territory", "id": { "var": "entity.territory_id" }, "lock": true },
            "peer": { "type": "customer", "id": { "var": "input.peer_id" }, "lock": true },
        },
        "script": "update(territory, #{ name: \"Under review\" });\n\
                   transition(peer, \"suspendCustomer\", #{ reason: \"peer held\" });",
        "events": ["customer.held"],
    });
    let r = s.post("config/validate", &admin, &draft).await;
    assert_eq!(r.body["valid"], true, "the test's draft validates: {:?}", r.body);
    let hotel = s.sample("savanna_hotel");
    let kiosk = s.sample("mama_njeri");
    let territory = s.sample("nairobi_west");
    let before = snapshot(&db, s.tenant).await;

    let body = json!({ "type": "customer", "id": hotel, "transition": "holdWithPeer",
                       "input": { "peer_id": kiosk }, "package": draft });
    let r = s.post("config/draft/dry-run", &admin, &body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["outcome"], "applied", "{:?}", r.body);
    let changes = r.body["changes"].as_array().expect("changes");
    let touched: Vec<(&str, &str, bool)> = changes
        .iter()
        .map(|c| {
            (c["type"].as_str().expect("type"), c["id"].as_str().expect("id"), c["created"].as_bool().expect("created"))
        })
        .collect();
    assert_eq!(
        touched,
        [
            ("customer", hotel.as_str(), false),
            ("territory", territory.as_str(), false),
            ("customer", kiosk.as_str(), false)
        ],
        "the entity first, then the rows in the order they were touched"
    );
    assert_eq!(
        (changes[0]["before"]["state"].as_str(), changes[0]["after"]["state"].as_str()),
        (Some("ACTIVE"), Some("ON_HOLD"))
    );
    assert_ne!(changes[1]["before"]["data"]["name"], "Under review");
    assert_eq!(changes[1]["after"]["data"]["name"], "Under review");
    assert_eq!(
        (changes[2]["before"]["state"].as_str(), changes[2]["after"]["state"].as_str()),
        (Some("ACTIVE"), Some("SUSPENDED"))
    );
    assert_eq!(changes[2]["after"]["data"]["suspension_reason"], "peer held");
    assert_eq!(
        r.body["follow_ups"],
        json!([{ "type": "customer", "id": kiosk, "transition": "suspendCustomer", "input": { "reason": "peer held" }, "depth": 1 }])
    );
    let events: Vec<&str> =
        r.body["events"].as_array().expect("events").iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(events, ["customer.held", "customer.suspended"], "{:?}", r.body["events"]);

    assert_eq!(before, snapshot(&db, s.tenant).await, "nothing was written");
}
