//! The store's shelf of connections (`engine::store::tx`): a transaction that ended cleanly
//! leaves its connection for the next one (no test round trip to the pool), which starts with
//! its own tenant and nothing of the last; an unfinished one is rolled back and goes to the
//! pool; the shelf gives connections back when they wait too long, when the pool closes, and
//! never hands out one that may have died.

use std::time::{Duration, Instant};

use engine::store::tx::PARKED_AT_MOST;
use engine::store::{Store, TenantId};
use engine::Limits;
use sqlx::PgPool;
use switchyard_tests::{test_db, TestDb};

async fn store(db: &TestDb, connections: u32) -> (PgPool, Store) {
    let pool = engine::store::conn::pool_options(connections).connect(&db.app_url).await.expect("pool");
    (pool.clone(), Store::new(pool, Limits::default()))
}

/// A store on `connections` connections, and the test package `fixture` published as a tenant.
async fn published(db: &TestDb, fixture: &str, connections: u32) -> (PgPool, Store, TenantId) {
    let (pool, store) = store(db, connections).await;
    let package = tenants::Package::load_dir(&switchyard_tests::server::package_dir(fixture)).expect("package");
    let t = tenants::apply::publish(&db.owner, &package, "test", &Limits::default()).await.expect("publish").tenant;
    (pool, store, t)
}

fn tenant() -> TenantId {
    TenantId::generate()
}

/// The backend and the tenant setting of a store transaction for `t`, committed.
async fn backend_and_tenant(store: &Store, t: TenantId) -> (i32, String) {
    let mut tx = store.begin(t).await.expect("begin");
    let row: (i32, String) = sqlx::query_as("select pg_backend_pid(), current_setting('app.tenant_id')")
        .fetch_one(&mut *tx)
        .await
        .expect("backend");
    tx.commit().await.expect("commit");
    row
}

/// Waits until `pid`'s session is in `state` (pg_stat_activity), for up to 10 s.
async fn wait_for_state(db: &TestDb, pid: i32, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Option<String> = sqlx::query_scalar("select state from pg_stat_activity where pid = $1")
            .bind(pid)
            .fetch_optional(&db.owner)
            .await
            .expect("pg_stat_activity")
            .flatten();
        if now.as_deref() == Some(state) {
            return;
        }
        assert!(Instant::now() < deadline, "backend {pid} is {now:?}, not {state}, after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_next_transaction_reuses_the_connection_with_its_own_tenant() {
    let db = test_db().await;
    let (_pool, store) = store(&db, 4).await;
    let (a, b) = (tenant(), tenant());
    let (first, seen_a) = backend_and_tenant(&store, a).await;
    assert_eq!(seen_a, a.to_string());
    assert_eq!(store.parked_connections(), 1, "a committed transaction's connection waits on the shelf");
    let (second, seen_b) = backend_and_tenant(&store, b).await;
    assert_eq!(second, first, "the next transaction ran on the shelved connection");
    assert_eq!(seen_b, b.to_string(), "and with its own tenant, not the last one's");
    // A rollback leaves it on the shelf too.
    let tx = store.begin(a).await.expect("begin");
    tx.rollback().await.expect("rollback");
    assert_eq!(store.parked_connections(), 1);
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn an_unfinished_transaction_is_rolled_back_and_its_connection_goes_to_the_pool() {
    let db = test_db().await;
    let (_pool, store) = store(&db, 4).await;
    let t = tenant();
    let mut tx = store.begin(t).await.expect("begin");
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut *tx).await.expect("pid");
    // Something the transaction did, visible to other sessions only through its lock.
    sqlx::query("select pg_advisory_xact_lock(4242)").execute(&mut *tx).await.expect("lock");
    drop(tx);
    assert_eq!(store.parked_connections(), 0, "an unfinished transaction's connection is not shelved");
    // The pool's test on release sends the queued ROLLBACK: the session is idle, the lock gone.
    wait_for_state(&db, pid, "idle").await;
    let held: i64 = sqlx::query_scalar("select count(*) from pg_locks where locktype = 'advisory' and pid = $1")
        .bind(pid)
        .fetch_one(&db.owner)
        .await
        .expect("pg_locks");
    assert_eq!(held, 0, "the transaction's lock was released");
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn the_shelf_gives_connections_back_and_keeps_some_for_the_pool() {
    let db = test_db().await;
    let (pool, store) = store(&db, 4).await;
    // Four transactions at once, on the pool's four connections: three quarters are kept.
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(store.begin(tenant()).await.expect("begin"));
    }
    assert_eq!(pool.num_idle(), 0);
    for tx in open {
        tx.commit().await.expect("commit");
    }
    assert_eq!(store.parked_connections(), 3, "the shelf holds at most three quarters of the pool");
    // Nobody takes them: back to the pool within twice the longest wait.
    let deadline = Instant::now() + PARKED_AT_MOST * 2 + Duration::from_millis(200);
    while store.parked_connections() > 0 {
        assert!(Instant::now() < deadline, "connections still on the shelf after {:?}", PARKED_AT_MOST * 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.num_idle() < 4 {
        assert!(Instant::now() < deadline, "{} idle connections in the pool, not 4", pool.num_idle());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A pool's close waits for the connections it handed out: the shelf gives them back.
    backend_and_tenant(&store, tenant()).await;
    assert_eq!(store.parked_connections(), 1);
    tokio::time::timeout(Duration::from_secs(2), pool.close())
        .await
        .expect("the pool closed with a shelved connection");
    assert!(store.begin(tenant()).await.is_err(), "no transaction once the pool is closed");
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn a_shelved_connection_that_died_is_not_used_again() {
    let db = test_db().await;
    let (_pool, store) = store(&db, 4).await;
    let (pid, _) = backend_and_tenant(&store, tenant()).await;
    assert_eq!(store.parked_connections(), 1);
    // What a database restart does to every connection: terminated under the shelf.
    let killed: bool =
        sqlx::query_scalar("select pg_terminate_backend($1)").bind(pid).fetch_one(&db.owner).await.expect("kill");
    assert!(killed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>("select count(*) from pg_stat_activity where pid = $1")
        .bind(pid)
        .fetch_one(&db.owner)
        .await
        .expect("pg_stat_activity")
        > 0
    {
        assert!(Instant::now() < deadline, "backend {pid} still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next transaction finds it dead, notes it, and runs on a new connection.
    let t = tenant();
    let (next, seen) = backend_and_tenant(&store, t).await;
    assert_ne!(next, pid);
    assert_eq!(seen, t.to_string());
    db.drop_db().await.expect("drop");
}

/// A transition's first round trip (`Store::begin_locked`): `BEGIN`, the tenant setting and the
/// entity's lock in one simple query, the lock prepared once per connection (the first use on a
/// connection prepares it and runs again). The row read that way, in text format, is the row
/// the parameterized statement reads; the lock is held until the transaction ends, and a
/// transaction dropped unfinished is rolled back (sqlx does not know it is open: the store sends
/// the `ROLLBACK`) before its connection is used again.
#[tokio::test]
async fn the_begin_locks_the_entity_in_the_same_round_trip() {
    let db = test_db().await;
    let (_pool, store, t) = published(&db, "query", 2).await;
    let actor = engine::store::timer_actor();
    let data = serde_json::json!({ "code": "T-1", "subject": "it's a \\ \"quoted\" subject", "tags": ["a", "b"] });
    let id = store.create_entity(t, "ticket", data, &actor, Default::default()).await.expect("create").id;

    let (tx, found) = store.begin_locked(t, "ticket", id).await.expect("begin and lock");
    let found = found.expect("the entity is found");
    let pid: i32 = {
        let mut tx = tx;
        let pid = sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut *tx).await.expect("pid");
        let prepared: i64 = sqlx::query_scalar("select count(*) from pg_prepared_statements where name = $1")
            .bind(engine::store::sql::LOCK_ENTITY)
            .fetch_one(&mut *tx)
            .await
            .expect("pg_prepared_statements");
        assert_eq!(prepared, 1, "the lock statement is prepared on the connection");
        // Locked: another transaction cannot take the row.
        let mut other = store.begin(t).await.expect("begin");
        let err = sqlx::query("select id from entities where tenant_id = $1 and id = $2 for update nowait")
            .bind(t)
            .bind(id)
            .execute(&mut *other)
            .await
            .expect_err("the row is locked");
        assert!(format!("{err}").contains("could not obtain lock"), "{err}");
        drop(other);
        tx.commit().await.expect("commit");
        pid
    };
    // The same row as the parameterized statement reads it.
    let mut tx = store.begin(t).await.expect("begin");
    let typed = engine::store::sql::get_typed(&mut tx, t, "ticket", id, true).await.expect("get").expect("found");
    tx.commit().await.expect("commit");
    assert_eq!(found.entity, typed.entity);
    assert_eq!((found.config_version, found.immutable), (typed.config_version, typed.immutable));

    // Dropped unfinished: rolled back, and the lock released.
    let (tx, _) = store.begin_locked(t, "ticket", id).await.expect("begin and lock");
    drop(tx);
    wait_for_state(&db, pid, "idle").await;
    let (tx, again) = store.begin_locked(t, "ticket", id).await.expect("the lock is free again");
    assert!(again.is_some());
    tx.rollback().await.expect("rollback");

    // No such entity; a type name no type has, and one that is no type name's shape (the
    // parameterized statement then): found nothing, no error.
    for (type_name, id) in [("ticket", uuid::Uuid::now_v7()), ("client", id), ("Ticket'; select 1; --", id)] {
        let (tx, none) = store.begin_locked(t, type_name, id).await.expect("begin");
        assert!(none.is_none(), "{type_name} {id}");
        tx.commit().await.expect("commit");
    }
    db.drop_db().await.expect("drop");
}

/// A transition that nothing follows (no follow-up, update, create or timer to start) sends its
/// writes with the `COMMIT`, in one simple query whose values are literals
/// (`engine::store::sql::record_transition_and_commit`): text of every kind comes back as it was
/// written (data, history, outbox), the statement runs prepared, a state change cancels the
/// entity's timers in the same round trip, and a write the database refuses (a unique field)
/// leaves nothing behind and the connection usable.
#[tokio::test]
async fn the_last_write_goes_with_the_commit() {
    use engine::store::{TransitionOptions, TransitionRequest};
    let db = test_db().await;
    // One connection: every transaction below runs on it (its prepared statements are counted).
    let (_pool, store, t) = published(&db, "lastwrite", 1).await;
    let actor = engine::store::timer_actor();
    let note = store
        .create_entity(t, "note", serde_json::json!({ "code": "N-1" }), &actor, Default::default())
        .await
        .expect("create")
        .id;
    let fire = |id: uuid::Uuid, name: &'static str, input: serde_json::Value| {
        let store = store.clone();
        let actor = actor.clone();
        async move {
            store
                .transition(
                    t,
                    TransitionRequest { type_name: "note", id, name, input },
                    &actor,
                    TransitionOptions::default(),
                )
                .await
        }
    };
    let texts = [
        "plain",
        "it's",
        "''",
        "back\\slash \\' \\\\",
        "E'x' || 'y'",
        "'); delete from entities; --",
        "$$ $1 $q$ :name ?",
        "tab\tnew\nline\r\u{1}\u{7f}",
        "naïve – 日本語 🚀 \u{feff}",
        "\"quoted\" {\"json\": [1]}",
        "",
    ];
    for (n, text) in texts.iter().enumerate() {
        let out = fire(note, "write", serde_json::json!({ "text": text })).await.expect("write");
        let version = i64::try_from(n).expect("n") + 2;
        assert_eq!(out.entity["version"], version, "{text:?}");
        assert_eq!(out.entity["data"]["text"], *text, "the answer, {text:?}");
        let stored = store.get_entity(t, "note", note).await.expect("get");
        assert_eq!(stored.version, version);
        assert_eq!(stored.data["text"], *text, "the row, {text:?}");
        assert_eq!(stored.data["tags"], serde_json::json!([text, "plain"]));
        assert_eq!(stored.data["details"]["said"], *text);
        assert_eq!(serde_json::to_value(&stored).expect("json")["updated_at"], out.entity["updated_at"]);
        let (input, changes, payload): (serde_json::Value, serde_json::Value, serde_json::Value) = sqlx::query_as(
            "select t.input, t.changes, o.payload from transitions t join outbox o on o.transition_id = t.id \
             where t.entity_id = $1 order by t.id desc limit 1",
        )
        .bind(note)
        .fetch_one(&db.owner)
        .await
        .expect("history and outbox");
        assert_eq!(input["text"], *text, "the history's input, {text:?}");
        assert_eq!(payload["text"], *text, "the event, {text:?}");
        if n > 0 {
            assert_eq!(changes["text"]["to"], *text, "the history's changes, {text:?}: {changes}");
        }
    }
    // Every string of up to three of these characters reads back as itself from its literal.
    let alphabet = ["'", "\\", "E", "$", "\n", "é", "🚀", "a", "\"", "{", "%", "\u{1}"];
    let mut strings = vec![String::new()];
    let mut level = vec![String::new()];
    for _ in 0..3 {
        level = level.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
        strings.extend(level.iter().cloned());
    }
    let literals: Vec<String> = strings.iter().map(|s| engine::store::sql::literal::text(s).expect("no NUL")).collect();
    let query = format!("select unnest(array[{}]::text[])", literals.join(", "));
    let read: Vec<String> = sqlx::query_scalar(&query).fetch_all(&db.owner).await.expect("literals");
    assert_eq!(strings.len(), 1 + 12 + 144 + 1728);
    assert_eq!(read, strings, "each literal reads back as its string");
    assert_eq!(engine::store::sql::literal::text("a\0b"), None, "no literal holds a NUL");
    // And every one of them, as a JSON string, key and value, reads back as itself as `jsonb`.
    let values: Vec<serde_json::Value> = strings.iter().map(|s| serde_json::json!({ s.as_str(): [s, 1.5] })).collect();
    let literals: Vec<String> =
        values.iter().map(|v| engine::store::sql::literal::json(v).expect("JSON holds no NUL")).collect();
    let query = format!("select unnest(array[{}]::jsonb[])", literals.join(", "));
    let read: Vec<serde_json::Value> = sqlx::query_scalar(&query).fetch_all(&db.owner).await.expect("JSON literals");
    assert_eq!(read, values, "each JSON literal reads back as its value");

    // The writes ran as the prepared statement, once per transition, on the one connection.
    let runs = |name: &'static str| {
        let store = store.clone();
        async move {
            let mut tx = store.begin(t).await.expect("begin");
            let runs: Option<i64> =
                sqlx::query_scalar("select generic_plans + custom_plans from pg_prepared_statements where name = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await
                    .expect("pg_prepared_statements");
            tx.commit().await.expect("commit");
            runs.unwrap_or(0)
        }
    };
    assert_eq!(runs(engine::store::sql::RECORD_TRANSITION).await, i64::try_from(texts.len()).expect("len"));

    // A unique field taken by another note: refused, nothing written, the connection usable.
    let other = store
        .create_entity(t, "note", serde_json::json!({ "code": "N-2" }), &actor, Default::default())
        .await
        .expect("create")
        .id;
    let history = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from transitions where entity_id = $1")
            .bind(other)
            .fetch_one(&db.owner)
            .await
            .expect("count")
    };
    let before = history().await;
    let err = fire(other, "recode", serde_json::json!({ "code": "N-1" })).await.expect_err("taken");
    assert!(matches!(err, engine::store::StoreError::Unique { ref fields, .. } if fields == &["code"]), "{err:?}");
    assert_eq!(history().await, before, "no history row");
    assert_eq!(store.get_entity(t, "note", other).await.expect("get").version, 1);
    let out = fire(other, "recode", serde_json::json!({ "code": "N-3" })).await.expect("free");
    assert_eq!(out.entity["data"]["code"], "N-3");

    // Leaving OPEN for DONE cancels the note's timer with the write.
    let cancels = runs(engine::store::sql::CANCEL_TIMERS).await;
    fire(note, "finish", serde_json::json!({})).await.expect("finish");
    let outcome: Option<String> =
        sqlx::query_scalar("select outcome from timers where entity_id = $1 order by id desc limit 1")
            .bind(note)
            .fetch_one(&db.owner)
            .await
            .expect("timer");
    assert_eq!(outcome.as_deref(), Some("cancelled"));
    assert_eq!(runs(engine::store::sql::CANCEL_TIMERS).await, cancels + 1, "in the last round trip");
    db.drop_db().await.expect("drop");
}
