//! `POST /api/v1/t/{tenant}/config/migrate` — the studio's way to move in-flight entities to a
//! newly published version (the CLI's `tenant migrate` over HTTP) — on real HTTP and a real
//! Postgres: the dry run reports and writes nothing, a real run moves entities (checked in the
//! database: version, state, history by the admin), bad input is 422 with a path, and only the
//! tenant's own admins may, touching only the tenant's own rows.
//!
//! Fixtures: `config-base` (a help desk with tickets in every state) and `config-changed` (its
//! next release: state WAITING removed, `notes` shortened, a required `category` with a default).

use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, Reply, TestServer};
use switchyard_tests::{test_db, TestDb};
use tenants::Package;

const ADMIN: &str = "admin@helpdesk.test";
const AGENT: &str = "agent@helpdesk.test";

fn package(name: &str) -> Package {
    Package::load_dir(&package_dir(name)).unwrap_or_else(|e| panic!("package {name}: {e:?}"))
}

/// The help desk at version 1 with one more ticket whose notes version 2 refuses, then version 2
/// published over the API by the admin (the entities stay on version 1).
async fn helpdesk_with_v2(db: &TestDb) -> (TestServer, String, String) {
    let s = TestServer::start(db, "config-base").await;
    let agent = s.token(db, AGENT).await;
    let long = s.create(&agent, "ticket", json!({ "subject": "Long story", "notes": "x".repeat(600) })).await;
    let admin = s.token(db, ADMIN).await;
    let r = s.post("config/apply", &admin, &package("config-changed").to_json()).await;
    assert_eq!((r.status, &r.body["version"]), (201, &json!(2)), "{:?}", r.body);
    (s, admin, long["id"].as_str().expect("id").to_string())
}

/// `(config_version, state, version)` of an entity, read as the owner.
async fn row(db: &TestDb, id: &str) -> (i64, String, i64) {
    sqlx::query_as("select config_version, state, version from entities where id = $1::text::uuid")
        .bind(id)
        .fetch_one(&db.owner)
        .await
        .expect("entity")
}

/// Every entity row and history row of a tenant, to compare before and after.
async fn rows(db: &TestDb, tenant: engine::store::TenantId) -> Value {
    sqlx::query_scalar(
        "select jsonb_build_object(\
           'entities', (select coalesce(jsonb_agg(to_jsonb(e) order by id), '[]') from entities e where tenant_id = $1), \
           'history', (select coalesce(jsonb_agg(to_jsonb(t) order by id), '[]') from transitions t where tenant_id = $1))",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .expect("rows")
}

fn entity<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["entities"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["id"] == id))
        .unwrap_or_else(|| panic!("{id} not in the report: {report}"))
}

fn counts(r: &Reply) -> (Option<u64>, Option<u64>, Option<u64>) {
    (r.body["moved"].as_u64(), r.body["cannot_move"].as_u64(), r.body["pinned"].as_u64())
}

#[tokio::test]
async fn a_dry_run_reports_per_entity_and_changes_nothing() {
    let db = test_db().await;
    let (s, admin, long) = helpdesk_with_v2(&db).await;
    let before = rows(&db, s.tenant).await;

    // `dry_run` defaults to true.
    let r = s.post("config/migrate", &admin, &json!({ "to": 2 })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!((r.body["tenant"].as_str(), r.body["to_version"].as_i64()), (Some("helpdesk"), Some(2)));
    assert_eq!((r.body["live_version"].as_i64(), r.body["dry_run"].as_bool()), (Some(2), Some(true)));
    assert_eq!(counts(&r), (Some(3), Some(4), Some(1)), "{:?}", r.body);
    let new = entity(&r.body, &s.sample("t_new"));
    assert_eq!((new["outcome"].as_str(), new["to_state"].as_str()), (Some("moved"), Some("NEW")), "{new}");
    assert_eq!((new["type"].as_str(), new["title"].as_str()), (Some("ticket"), Some("Printer jammed")));
    assert_eq!((new["from_version"].as_i64(), new["from_state"].as_str()), (Some(1), Some("NEW")));
    assert_eq!(new["filled"], json!(["category"]));
    let wait = entity(&r.body, &s.sample("t_wait1"));
    assert_eq!(wait["outcome"], "cannot_move", "{wait}");
    assert!(wait["reasons"][0].as_str().is_some_and(|m| m.contains("state WAITING does not exist in version 2")));
    assert_eq!(entity(&r.body, &long)["outcome"], "cannot_move");
    assert_eq!(entity(&r.body, &s.sample("t_closed"))["outcome"], "pinned");
    let text = r.body["text"].as_str().expect("text");
    assert!(text.starts_with("Migrating tenant helpdesk to version 2 (dry run: nothing is changed).\n"), "{text}");
    assert!(text.contains("\nWould move 3 entities to version 2; 4 entities cannot move (left untouched).\n"));

    // With the state map the WAITING ones would move too; still nothing is written.
    let body = json!({ "to": 2, "state_map": { "ticket.WAITING": "OPEN" }, "dry_run": true });
    let r = s.post("config/migrate", &admin, &body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(counts(&r), (Some(6), Some(1), Some(1)), "{:?}", r.body);
    assert_eq!(entity(&r.body, &s.sample("t_wait1"))["to_state"], "OPEN");
    assert_eq!(rows(&db, s.tenant).await, before, "a dry run changes nothing");
    assert_eq!(row(&db, &s.sample("t_wait1")).await, (1, "WAITING".to_string(), 1));
}

#[tokio::test]
async fn a_real_run_moves_entities_by_the_admin_and_leaves_the_unmovable_untouched() {
    let db = test_db().await;
    let (s, admin, long) = helpdesk_with_v2(&db).await;
    let long_before = row(&db, &long).await;

    let body = json!({ "to": 2, "state_map": { "WAITING": "OPEN" }, "dry_run": false });
    let r = s.post("config/migrate", &admin, &body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["dry_run"], false);
    assert_eq!(counts(&r), (Some(6), Some(1), Some(1)), "{:?}", r.body);
    assert!(r.body["text"].as_str().is_some_and(|t| t.contains("\nMoved 6 entities to version 2; 1 entity cannot")));

    let wait = s.sample("t_wait1");
    assert_eq!(row(&db, &wait).await, (2, "OPEN".to_string(), 2));
    assert_eq!(row(&db, &s.sample("t_new")).await, (2, "NEW".to_string(), 2));
    assert_eq!(row(&db, &long).await, long_before, "cannot move: untouched");
    assert_eq!(row(&db, &s.sample("t_closed")).await.0, 1, "terminal: stays pinned");

    // The history row and `updated_by` name the admin (its user id and email, as transitions do).
    let admin_id: String = sqlx::query_scalar("select id::text from users where tenant_id = $1 and email = $2")
        .bind(s.tenant)
        .bind(ADMIN)
        .fetch_one(&db.owner)
        .await
        .expect("admin");
    let history: Value = sqlx::query_scalar(
        "select to_jsonb(t) from transitions t where entity_id = $1::text::uuid and transition = 'migrate'",
    )
    .bind(&wait)
    .fetch_one(&db.owner)
    .await
    .expect("one migrate row");
    assert_eq!((history["from_state"].as_str(), history["to_state"].as_str()), (Some("WAITING"), Some("OPEN")));
    assert_eq!((history["actor_id"].as_str(), history["actor_email"].as_str()), (Some(admin_id.as_str()), Some(ADMIN)));
    assert_eq!(history["config_version"], 2);
    assert_eq!(
        history["changes"],
        json!({ "category": { "from": null, "to": "general" }, "config_version": { "from": 1, "to": 2 } })
    );
    let updated_by: String = sqlx::query_scalar("select updated_by from entities where id = $1::text::uuid")
        .bind(&wait)
        .fetch_one(&db.owner)
        .await
        .expect("entity");
    assert_eq!(updated_by, admin_id);

    // The moved entities run on version 2 (and the API shows their new state).
    let agent = s.token(&db, AGENT).await;
    let r = s.fire(&agent, "ticket", &wait, "escalate", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Again: nothing left to move.
    let r = s.post("config/migrate", &admin, &body).await;
    assert_eq!(counts(&r), (Some(0), Some(1), Some(1)), "{:?}", r.body);
}

#[tokio::test]
async fn bad_input_is_422_with_a_path_and_changes_nothing() {
    let db = test_db().await;
    let (s, admin, _) = helpdesk_with_v2(&db).await;
    let before = rows(&db, s.tenant).await;

    let cases = [
        (json!({ "to": 7, "dry_run": false }), "/to"),
        (json!({ "to": 0 }), "/to"),
        (json!({ "to": 2, "state_map": { "ticket.WAITING": "GONE" }, "dry_run": false }), "/state_map/ticket.WAITING"),
        (json!({ "to": 2, "state_map": { "WAITING": "GONE" } }), "/state_map/WAITING"),
        (json!({ "to": 2, "state_map": { "nosuch.WAITING": "OPEN" } }), "/state_map/nosuch.WAITING"),
        (json!({ "to": 2, "state_map": { "WAITING=OPEN": "OPEN" } }), "/state_map/WAITING=OPEN"),
        (json!({ "to": 2, "state_map": { ".WAITING": "OPEN" } }), "/state_map/.WAITING"),
        (json!({ "to": 2, "state_map": { "WAITING": "" } }), "/state_map/WAITING"),
        (json!({ "to": 2, "state_map": { "a/b": 3 } }), "/state_map/a~1b"),
    ];
    for (body, path) in cases {
        let r = s.post("config/migrate", &admin, &body).await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{body}: {:?}", r.body);
        assert_eq!(r.error_paths(), [path], "{body}: {:?}", r.body);
    }
    // Not of the expected shape at all.
    let r = s.post("config/migrate", &admin, &json!({ "to": "two" })).await;
    assert_eq!((r.status, r.error_paths()), (422, vec!["/to"]), "{:?}", r.body);
    let r = s.post("config/migrate", &admin, &json!({ "to": 2, "dryrun": false })).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(rows(&db, s.tenant).await, before);
}

#[tokio::test]
async fn only_the_tenants_admins_may_migrate_and_only_its_own_entities() {
    let db = test_db().await;
    let (s, _, _) = helpdesk_with_v2(&db).await;
    let other = s.second_tenant(&db, package("chemichemi")).await;
    let helpdesk_before = rows(&db, s.tenant).await;
    let other_before = rows(&db, other.tenant).await;
    let body = json!({ "to": 2, "state_map": { "WAITING": "OPEN" }, "dry_run": false });

    // An agent of the tenant.
    let agent = s.token(&db, AGENT).await;
    let r = s.post("config/migrate", &agent, &body).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);

    // Another tenant's admin on this tenant's path.
    let intruder = other.token(&db, "admin@chemichemi.test").await;
    let r = s.post("config/migrate", &intruder, &body).await;
    assert_eq!(r.status, 403, "{:?}", r.body);

    // On its own path it migrates its own tenant only (which has no version 2).
    let r = other.post("config/migrate", &intruder, &body).await;
    assert_eq!((r.status, r.error_paths()), (422, vec!["/to"]), "{:?}", r.body);
    let r = other.post("config/migrate", &intruder, &json!({ "to": 1, "dry_run": false })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["tenant"], "chemichemi");
    assert_eq!(r.body["entities"], json!([]), "nothing of chemichemi is before version 1: {:?}", r.body);

    assert_eq!(rows(&db, s.tenant).await, helpdesk_before, "0 rows of the help desk touched");
    assert_eq!(rows(&db, other.tenant).await, other_before);
}

#[tokio::test]
async fn a_migration_past_one_batch_moves_every_entity() {
    let db = test_db().await;
    let (s, admin, _) = helpdesk_with_v2(&db).await;
    // More tickets than one batch, created on version 1 straight in the database.
    let extra = tenants::migrate::BATCH as usize + 7;
    let mut tx = db.owner.begin().await.expect("begin");
    sqlx::query("select set_config('app.tenant_id', $1, true)")
        .bind(s.tenant.to_string())
        .execute(&mut *tx)
        .await
        .expect("tenant");
    sqlx::query(
        "insert into entities (tenant_id, id, type, state, data, config_version, created_by, updated_by) \
         select $1, gen_random_uuid(), 'ticket', 'OPEN', jsonb_build_object('subject', 'bulk ' || n), 1, 'test', 'test' \
         from generate_series(1, $2) as n",
    )
    .bind(s.tenant)
    .bind(extra as i32)
    .execute(&mut *tx)
    .await
    .expect("insert");
    tx.commit().await.expect("commit");

    let body = json!({ "to": 2, "state_map": { "WAITING": "OPEN" }, "dry_run": false });
    let r = s.post("config/migrate", &admin, &body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(counts(&r), (Some(6 + extra as u64), Some(1), Some(1)), "{}", r.body["text"]);
    let entities = r.body["entities"].as_array().expect("entities");
    let ids: Vec<&str> = entities.iter().filter_map(|e| e["id"].as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in id order");
    let (left, migrated): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where config_version = 1), \
                (select count(*) from transitions t where t.tenant_id = $1 and t.transition = 'migrate') \
         from entities where tenant_id = $1",
    )
    .bind(s.tenant)
    .fetch_one(&db.owner)
    .await
    .expect("counts");
    assert_eq!((left, migrated), (2, 6 + extra as i64), "the unmovable and the terminal one stay");
}
