//! Idempotency records expire: a record older than `SWITCHYARD_IDEMPOTENCY_TTL` counts as absent
//! (the key is free again, the request executes and its answer replaces the record), whether or
//! not it was purged yet; `purge_expired_idempotency` (migration 0010) deletes expired records
//! of every tenant in bounded batches without showing the server's role any of them; and the
//! housekeeping worker calls it.

use std::str::FromStr;
use std::time::Duration;

use api::config::OpsConfig;
use api::state::Ops;
use api::workers::{WorkerConfig, Workers};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use switchyard_tests::server::TestServer;
use switchyard_tests::{test_db, TestDb};
use uuid::Uuid;

/// The server's retention in these tests: one minute (the least allowed).
const TTL: Duration = Duration::from_secs(60);

fn ops(ttl: Duration) -> Ops {
    Ops::new(OpsConfig { rate_limit_user: None, rate_limit_ip: None, idempotency_ttl: ttl, ..OpsConfig::default() })
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// POSTs transition `name` of thing `thing` with `input` and an `Idempotency-Key`.
async fn fire_with_key(s: &TestServer, token: &str, thing: &str, name: &str, input: Value, key: &str) -> (u16, Value) {
    let url = s.url(&format!("entities/thing/{thing}/transitions/{name}"));
    let r = s
        .request(
            reqwest::Method::POST,
            &url,
            Some(token),
            Some(&json!({ "input": input })),
            &[("Idempotency-Key", key)],
        )
        .await;
    (r.status, r.body)
}

/// Makes the record of `key` (any actor) of `tenant` `age` old, as the owner.
async fn set_age(db: &TestDb, tenant: engine::store::TenantId, key: &str, age: &str) {
    let mut tx = db.tenant_tx(tenant).await;
    let n = sqlx::query("update idempotency set created_at = now() - $2::interval where tenant_id = $1 and key = $3")
        .bind(tenant)
        .bind(age)
        .bind(key)
        .execute(&mut *tx)
        .await
        .expect("backdate")
        .rows_affected();
    tx.commit().await.expect("commit");
    assert_eq!(n, 1, "one record for key {key}");
}

/// The records of `tenant` for `key`: (request hash, response, age in seconds).
async fn records(db: &TestDb, tenant: engine::store::TenantId, key: &str) -> Vec<(String, Value, f64)> {
    let mut tx = db.tenant_tx(tenant).await;
    let rows = sqlx::query_as(
        "select request_hash, response, extract(epoch from now() - created_at)::float8 from idempotency \
         where tenant_id = $1 and key = $2",
    )
    .bind(tenant)
    .bind(key)
    .fetch_all(&mut *tx)
    .await
    .expect("records");
    tx.rollback().await.expect("rollback");
    rows
}

async fn counter(s: &TestServer, token: &str, thing: &str) -> i64 {
    let r = s.get(&format!("entities/thing/{thing}"), token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["counter"].as_i64().expect("counter")
}

#[tokio::test]
async fn an_expired_record_is_absent_and_replaced_by_the_new_answer() {
    let db = test_db().await;
    let s = TestServer::start_with(&db, "sandbox", ops(TTL)).await;
    let user = s.token(&db, "user@sandbox.test").await;
    let thing = id(&s.create(&user, "thing", json!({ "name": "t" })).await);

    let (status, first) = fire_with_key(&s, &user, &thing, "bump", json!({}), "k").await;
    assert_eq!(status, 200, "{first:?}");
    assert_eq!(first["entity"]["data"]["counter"], 1);
    let old = records(&db, s.tenant, "k").await;
    assert_eq!(old.len(), 1);

    // Live (59 s old, the retention is 60 s): replayed, and another request with the key is
    // refused; nothing executes.
    set_age(&db, s.tenant, "k", "59 seconds").await;
    assert_eq!(fire_with_key(&s, &user, &thing, "bump", json!({}), "k").await, (200, first.clone()));
    let (status, body) = fire_with_key(&s, &user, &thing, "finish", json!({ "note": "done" }), "k").await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")), "{body:?}");
    assert_eq!(counter(&s, &user, &thing).await, 1, "a replay or a refusal executed");

    // Expired (61 s old; not purged: no worker runs): another request with the key executes and
    // answers afresh, and its answer replaces the record.
    set_age(&db, s.tenant, "k", "61 seconds").await;
    let (status, second) = fire_with_key(&s, &user, &thing, "finish", json!({ "note": "done" }), "k").await;
    assert_eq!(status, 200, "the expired key was not free: {second:?}");
    assert_eq!(
        (second["entity"]["state"].as_str(), second["entity"]["data"]["note"].as_str()),
        (Some("DONE"), Some("done"))
    );
    assert_ne!(second, first);
    let new = records(&db, s.tenant, "k").await;
    assert_eq!(new.len(), 1, "one record per key");
    let (hash, response, age) = &new[0];
    assert_ne!(hash, &old[0].0, "the record still holds the old request");
    assert_eq!(response, &second, "the record holds the new answer");
    assert!(*age < 30.0, "the replaced record is {age} s old: its age must start again");

    // The new record is live: the same request replays its answer (the thing is DONE, so
    // executing again would be refused), and the old request is now the other one.
    assert_eq!(fire_with_key(&s, &user, &thing, "finish", json!({ "note": "done" }), "k").await, (200, second.clone()));
    let (status, body) = fire_with_key(&s, &user, &thing, "bump", json!({}), "k").await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")), "{body:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_request_after_expiry_executes_again_once_however_many_race() {
    let db = test_db().await;
    let s = std::sync::Arc::new(TestServer::start_with(&db, "sandbox", ops(TTL)).await);
    let user = s.token(&db, "user@sandbox.test").await;
    let thing = id(&s.create(&user, "thing", json!({ "name": "t" })).await);
    let (status, first) = fire_with_key(&s, &user, &thing, "bump", json!({}), "k").await;
    assert_eq!((status, first["entity"]["data"]["counter"].as_i64()), (200, Some(1)), "{first:?}");
    set_age(&db, s.tenant, "k", "2 minutes").await;

    // Identical requests at once over the expired record, held back (the thing's row locked
    // here) until every one of them waits on a lock in Postgres, so that they overlap for sure:
    // the key's lock lets one find the record expired, execute and replace it; the others wait
    // for it and then replay its answer. (Four: the test pool has five connections.)
    let mut blocker = db.tenant_tx(s.tenant).await;
    sqlx::query("select 1 from entities where id = $1::uuid for update")
        .bind(&thing)
        .execute(&mut *blocker)
        .await
        .expect("lock the thing");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, user, thing) = (s.clone(), user.clone(), thing.clone());
        tasks.push(tokio::spawn(async move { fire_with_key(&s, &user, &thing, "bump", json!({}), "k").await }));
    }
    let mut waiting = 0;
    for _ in 0..200 {
        waiting = sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity \
             where datname = current_database() and usename = 'switchyard_app' and wait_event_type = 'Lock'",
        )
        .fetch_one(&db.owner)
        .await
        .expect("pg_stat_activity");
        if waiting == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting, 4, "the requests did not all reach Postgres within 10 s");
    blocker.commit().await.expect("release the thing");

    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body:?}");
        assert_eq!(body, &answers[0].1, "every request got the one answer");
    }
    assert_eq!(answers[0].1["entity"]["data"]["counter"], 2, "the request executed again, as new");
    assert_eq!(counter(&s, &user, &thing).await, 2, "more than one of the racing requests executed");
    let history = s.get(&format!("entities/thing/{thing}/history"), &user).await;
    assert_eq!(history.body["data"].as_array().map(Vec::len), Some(3), "create and two bumps: {:?}", history.body);
    let stored = records(&db, s.tenant, "k").await;
    assert_eq!((stored.len(), &stored[0].1), (1, &answers[0].1), "the record holds the new answer");
}

/// Adds a record of `tenant` (any tenant id: the table has no foreign key) `age` old, as the owner.
async fn insert_record(conn: &mut PgConnection, tenant: Uuid, key: &str, age: &str) {
    sqlx::query(
        "insert into idempotency (tenant_id, actor_id, key, request_hash, status, response, created_at) \
         values ($1, 'someone', $2, 'hash', 200, '{}', now() - $3::interval)",
    )
    .bind(tenant)
    .bind(key)
    .bind(age)
    .execute(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("insert {key}: {e}"));
}

/// Every record, across tenants: (tenant, key), in order. (`conn` must bypass row-level
/// security: the superuser.)
async fn all_records(conn: &mut PgConnection) -> Vec<(Uuid, String)> {
    sqlx::query_as("select tenant_id, key from idempotency order by tenant_id, key")
        .fetch_all(&mut *conn)
        .await
        .expect("records")
}

/// Calls the purge as `switchyard_app`.
async fn purge(app: &mut PgConnection, older_than: &str, limit: i32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select purge_expired_idempotency($1::interval, $2)")
        .bind(older_than)
        .bind(limit)
        .fetch_one(app)
        .await
}

/// How many records `switchyard_app` sees in one transaction, after `setup` statements.
async fn visible_to_app(app: &mut PgConnection, setup: &[&str], filter: &str, bind: Uuid) -> i64 {
    let mut tx = app.begin().await.expect("begin");
    for statement in setup {
        sqlx::query(statement).execute(&mut *tx).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let n = sqlx::query_scalar(&format!("select count(*) from idempotency where {filter}"))
        .bind(bind)
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    tx.rollback().await.expect("rollback");
    n
}

/// Expired records (2 h, 3 h and 25 h old) and a live one (59 min) for each of two tenants,
/// purged with a retention of one hour, four at a time; then what the server's role can see.
async fn purge_deletes_expired_records_of_every_tenant(owner: &mut PgConnection, app: &mut PgConnection) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for tenant in [a, b] {
        for (key, age) in [("old-1", "2 hours"), ("old-2", "3 hours"), ("old-3", "25 hours"), ("live", "59 minutes")] {
            insert_record(owner, tenant, key, age).await;
        }
    }
    assert_eq!(all_records(owner).await.len(), 8);

    // Less than a minute is refused: the server's role cannot empty every tenant's records.
    let refused = purge(app, "30 seconds", 1000).await;
    assert!(refused.is_err(), "a purge of records under a minute old was allowed: {refused:?}");
    assert_eq!(all_records(owner).await.len(), 8);

    // Bounded batches: 4, then the 2 left, then none.
    assert_eq!(purge(app, "1 hour", 4).await.expect("purge"), 4);
    assert_eq!(purge(app, "1 hour", 4).await.expect("purge"), 2);
    assert_eq!(purge(app, "1 hour", 4).await.expect("purge"), 0);
    let mut left = all_records(owner).await;
    left.sort();
    let mut expected = vec![(a, "live".to_string()), (b, "live".to_string())];
    expected.sort();
    assert_eq!(left, expected, "only the live record of each tenant is left");

    // The server's role still sees no other tenant's record: none with no tenant set, even with
    // the purge's own setting on (its policies are the owner's, not the role's), and only its
    // own with a tenant set.
    let on = "select set_config('app.idempotency_purge', 'on', true)";
    assert_eq!(visible_to_app(app, &[], "tenant_id <> $1", Uuid::nil()).await, 0);
    assert_eq!(visible_to_app(app, &[on], "tenant_id <> $1", Uuid::nil()).await, 0);
    let set_a = format!("select set_config('app.tenant_id', '{a}', true)");
    assert_eq!(visible_to_app(app, &[set_a.as_str(), on], "tenant_id = $1", a).await, 1);
    assert_eq!(visible_to_app(app, &[set_a.as_str(), on], "tenant_id = $1", b).await, 0);
    // Nor can it delete one with the setting on.
    let mut tx = app.begin().await.expect("begin");
    sqlx::query(on).execute(&mut *tx).await.expect("set");
    let deleted = sqlx::query("delete from idempotency").execute(&mut *tx).await.expect("delete").rows_affected();
    tx.commit().await.expect("commit");
    assert_eq!(deleted, 0);
    assert_eq!(all_records(owner).await.len(), 2);
}

async fn connect(url: &str, database: Option<&str>) -> PgConnection {
    let mut opts = PgConnectOptions::from_str(url).expect("url");
    if let Some(d) = database {
        opts = opts.database(d);
    }
    PgConnection::connect_with(&opts).await.expect("connect")
}

#[tokio::test]
async fn the_purge_deletes_only_expired_records_of_every_tenant_and_shows_none() {
    let db = test_db().await;
    let mut owner = connect(&db.owner_url, None).await;
    let mut app = connect(&db.app_url, None).await;

    // The function runs as the owner of the table, with its search path pinned; the server's
    // role may call it, PUBLIC may not.
    let (definer, config, same_owner, app_may, public_may): (bool, Vec<String>, bool, bool, bool) = sqlx::query_as(
        "select p.prosecdef, coalesce(p.proconfig, '{}'), p.proowner = c.relowner, \
                has_function_privilege('switchyard_app', p.oid, 'execute'), \
                exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0) \
         from pg_proc p, pg_class c \
         where p.proname = 'purge_expired_idempotency' and c.relname = 'idempotency'",
    )
    .fetch_one(&mut owner)
    .await
    .expect("catalog");
    assert!(definer && same_owner && app_may && !public_may, "{definer} {same_owner} {app_may} {public_may}");
    assert!(config.iter().any(|c| c.starts_with("search_path=")), "{config:?}");

    purge_deletes_expired_records_of_every_tenant(&mut owner, &mut app).await;
}

/// With `DATABASE_URL`, the migrations may run as a role that is not a superuser: then row-level
/// security binds the owner too, and the purge works only through the migration's policies for
/// the owner. Here the migrations run, in a database of this test's own, as such a role.
#[tokio::test]
async fn the_purge_works_when_the_owner_is_not_a_superuser() {
    let db = test_db().await;
    let mut admin = connect(&db.owner_url, None).await;
    let suffix = Uuid::new_v4().simple().to_string();
    let role = format!("sy_owner_{suffix}");
    // `t_<secs>_…`: the harness drops it an hour later if this test dies before its end.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let name = format!("t_{secs}_{suffix}");
    sqlx::query(&format!("create role {role} nologin nosuperuser nocreatedb nocreaterole nobypassrls"))
        .execute(&mut admin)
        .await
        .expect("create role");
    let _scratch = Scratch { admin_url: db.owner_url.clone(), name: name.clone(), role: role.clone() };
    sqlx::query(&format!("create database {name} owner {role}")).execute(&mut admin).await.expect("create database");

    {
        let mut owner = connect(&db.owner_url, Some(&name)).await;
        sqlx::query(&format!("set role {role}")).execute(&mut owner).await.expect("set role");
        switchyard_tests::db::MIGRATOR.run_direct(&mut owner).await.expect("migrate as a plain role");
        let (is_super, owns): (bool, bool) = sqlx::query_as(
            "select rolsuper, (select relowner from pg_class where relname = 'idempotency') = r.oid \
             from pg_roles r where rolname = current_user",
        )
        .fetch_one(&mut owner)
        .await
        .expect("owner");
        assert_eq!((is_super, owns), (false, true));
        sqlx::query("reset role").execute(&mut owner).await.expect("reset role");

        let mut superuser = connect(&db.owner_url, Some(&name)).await;
        let mut app = connect(&db.owner_url, Some(&name)).await;
        sqlx::query("set role switchyard_app").execute(&mut app).await.expect("set role");
        purge_deletes_expired_records_of_every_tenant(&mut superuser, &mut app).await;

        // The owner itself sees none of the records left (row-level security is forced), so the
        // purge above went through its policies.
        sqlx::query(&format!("set role {role}")).execute(&mut owner).await.expect("set role");
        let seen: i64 =
            sqlx::query_scalar("select count(*) from idempotency").fetch_one(&mut owner).await.expect("count");
        assert_eq!(seen, 0, "the owner sees records without a tenant set");
        for conn in [owner, superuser, app] {
            conn.close().await.expect("close");
        }
    }
    admin.close().await.expect("close");
}

/// A database and the role owning it, made by a test: dropped (the database first) when the
/// test ends, however it ends, since a role belongs to the whole cluster and the harness's
/// clean-up of old test databases would leave it behind.
struct Scratch {
    admin_url: String,
    name: String,
    role: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (url, name, role) = (self.admin_url.clone(), self.name.clone(), self.role.clone());
        // Drop cannot await, and the test's runtime may be busy: a thread with its own runtime.
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
                let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(&url)?).await?;
                sqlx::query(&format!("drop database if exists {name} with (force)")).execute(&mut conn).await?;
                sqlx::query(&format!("drop role if exists {role}")).execute(&mut conn).await?;
                conn.close().await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cannot drop {} and role {}: {e:#}", self.name, self.role),
            Err(_) => eprintln!("cannot drop {} and role {}: panicked", self.name, self.role),
        }
    }
}

#[tokio::test]
async fn the_housekeeping_worker_purges_at_start_and_then_regularly() {
    let db = test_db().await;
    let s = TestServer::start_with(&db, "sandbox", ops(TTL)).await;
    let user = s.token(&db, "user@sandbox.test").await;
    let thing = id(&s.create(&user, "thing", json!({ "name": "t" })).await);
    for key in ["a", "b", "c"] {
        let (status, body) = fire_with_key(&s, &user, &thing, "bump", json!({}), key).await;
        assert_eq!(status, 200, "{body:?}");
    }
    let elsewhere = Uuid::new_v4();
    let mut owner = connect(&db.owner_url, None).await;
    insert_record(&mut owner, elsewhere, "x", "2 minutes").await;
    set_age(&db, s.tenant, "a", "2 minutes").await;

    // The server's workers (housekeeping every 5 minutes): the pass at start purges.
    let keys = |records: Vec<(Uuid, String)>| records.into_iter().map(|(_, k)| k).collect::<Vec<_>>();
    let workers = s.workers();
    let mut left = Vec::new();
    for _ in 0..100 {
        left = keys(all_records(&mut owner).await);
        if left == ["b", "c"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, ["b", "c"], "the expired records of both tenants were not purged at start within 10 s");
    workers.stop(Duration::from_secs(5)).await;

    // Workers that look every 200 ms: a record that expires later is purged by a later pass.
    let config = WorkerConfig {
        poll: Duration::from_millis(200),
        housekeeping_every: Duration::from_millis(200),
        ..WorkerConfig::from(&*s.ops.config)
    };
    let workers = Workers::start(&s.store, &s.ops.hub, config).expect("workers");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(keys(all_records(&mut owner).await), ["b", "c"], "a live record was purged");
    set_age(&db, s.tenant, "b", "61 seconds").await;
    for _ in 0..100 {
        left = keys(all_records(&mut owner).await);
        if left == ["c"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, ["c"], "the record that expired later was not purged within 10 s");
    workers.stop(Duration::from_secs(5)).await;
}

/// POSTs a thing with an `Idempotency-Key`: status, `Idempotent-Replayed`, body.
async fn create_with_key(s: &TestServer, token: &str, data: Value, key: &str) -> (u16, bool, Value) {
    let r = reqwest::Client::new()
        .post(s.url("entities/thing"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({ "data": data }))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (status, replayed, r.json().await.expect("json"))
}

async fn things(s: &TestServer, token: &str) -> usize {
    let r = s.get("entities/thing?limit=100", token).await;
    r.body["data"].as_array().map(Vec::len).expect("a list")
}

/// A creation whose answer was lost can be sent again: with the same key it answers the entity
/// it created and creates nothing; the key names that request only (another creation, or a
/// transition, with it is refused); without a key every request creates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_creation_with_a_key_creates_once() {
    let db = test_db().await;
    let s = std::sync::Arc::new(TestServer::start_with(&db, "sandbox", ops(TTL)).await);
    let user = s.token(&db, "user@sandbox.test").await;
    let before = things(&s, &user).await;

    let (status, replayed, first) = create_with_key(&s, &user, json!({ "name": "once" }), "c1").await;
    assert_eq!((status, replayed), (201, false), "{first:?}");
    let (status, replayed, again) = create_with_key(&s, &user, json!({ "name": "once" }), "c1").await;
    assert_eq!((status, replayed), (201, true), "{again:?}");
    assert_eq!(id(&again), id(&first), "the same entity");
    assert_eq!(again["data"], first["data"]);
    assert_eq!(things(&s, &user).await, before + 1, "a replay created another");

    // Another request with the key: refused, nothing created; a transition with it too.
    let (status, _, body) = create_with_key(&s, &user, json!({ "name": "other" }), "c1").await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")), "{body:?}");
    let (status, body) = fire_with_key(&s, &user, &id(&first), "bump", json!({}), "c1").await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")), "{body:?}");
    assert_eq!(counter(&s, &user, &id(&first)).await, 0);
    assert_eq!(things(&s, &user).await, before + 1);

    // The same creation sent four times at once with a new key: one entity, one answer.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, user) = (s.clone(), user.clone());
        tasks.push(tokio::spawn(async move { create_with_key(&s, &user, json!({ "name": "raced" }), "c2").await }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    assert!(answers.iter().all(|(status, _, _)| *status == 201), "{answers:?}");
    assert_eq!(answers.iter().filter(|(_, replayed, _)| !replayed).count(), 1, "one created: {answers:?}");
    assert!(answers.iter().all(|(_, _, body)| id(body) == id(&answers[0].2)), "one entity: {answers:?}");
    assert_eq!(things(&s, &user).await, before + 2);

    // A bad key is a 400; no key, no record: each request creates.
    let (status, _, body) = create_with_key(&s, &user, json!({ "name": "x" }), &"k".repeat(256)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("BAD_REQUEST")), "{body:?}");
    s.create(&user, "thing", json!({ "name": "free" })).await;
    s.create(&user, "thing", json!({ "name": "free" })).await;
    assert_eq!(things(&s, &user).await, before + 4);
}
