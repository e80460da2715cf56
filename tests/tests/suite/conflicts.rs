//! Transactions that Postgres rolls back because of a concurrent one (a deadlock, a
//! serialization failure) are answered `409 CONFLICT`, retryable, not `500`: provoked for real
//! on a real database.

use std::time::Duration;

use api::error::ApiError;
use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::{test_db, TestDb};

/// How many backends of this test's database wait for a lock.
async fn waiting_for_locks(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
    )
    .fetch_one(&db.owner)
    .await
    .expect("pg_stat_activity")
}

async fn node(s: &TestServer, token: &str, name: &str) -> String {
    let n = s.create(token, "node", json!({ "name": name })).await;
    n["id"].as_str().expect("id").to_string()
}

async fn touch(s: &TestServer, token: &str, gate: &str, id: &str, peer: &str) -> Reply {
    s.fire(token, "node", id, "touch", json!({ "gate": gate, "peer": peer })).await
}

async fn touches(s: &TestServer, token: &str, id: &str) -> i64 {
    let r = s.get(&format!("entities/node/{id}"), token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"]["touches"].as_i64().expect("touches")
}

// Several worker threads, as the server has: the transitions' evaluation then leaves the async
// worker thread (`block_in_place`), which a current-thread runtime cannot do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_between_two_transitions_is_a_retryable_409() {
    let db = test_db().await;
    let s = TestServer::start(&db, "deadlock").await;
    let admin = s.token(&db, "admin@deadlock.test").await;
    // First: the lowest id (the store locks loaded rows in id order), so the gate is locked before
    // the peer.
    let gate = node(&s, &admin, "gate").await;
    let a = node(&s, &admin, "a").await;
    let b = node(&s, &admin, "b").await;

    // Hold the gate, so that each transition locks its own node and then waits at the gate.
    let mut held = db.tenant_tx(s.tenant).await;
    sqlx::query("select id from entities where tenant_id = $1 and id = $2::uuid for update")
        .bind(s.tenant)
        .bind(&gate)
        .execute(&mut *held)
        .await
        .expect("lock the gate");

    let release = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while waiting_for_locks(&db).await < 2 {
            assert!(tokio::time::Instant::now() < deadline, "the two transitions never both waited at the gate");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Open the gate: the first through it then wants the other's node, whose transaction
        // holds it and waits for the gate. Postgres detects the cycle and rolls one back.
        held.commit().await.expect("release the gate");
    };
    let (ra, rb, ()) = tokio::join!(touch(&s, &admin, &gate, &a, &b), touch(&s, &admin, &gate, &b, &a), release);

    let (won, lost, lost_id, lost_peer): (Reply, Reply, &str, &str) = match (ra.status, rb.status) {
        (200, 409) => (ra, rb, &b, &a),
        (409, 200) => (rb, ra, &a, &b),
        other => panic!("expected one 200 and one 409, got {other:?}: {:?} / {:?}", ra.body, rb.body),
    };
    assert_eq!(won.body["entity"]["data"]["touches"], 1, "{:?}", won.body);
    assert_eq!(lost.code(), "CONFLICT", "{:?}", lost.body);
    let message = lost.body["error"]["message"].as_str().expect("message");
    assert!(message.contains("retry"), "the message says it can be retried: {message}");
    assert_eq!(lost.body["error"].get("details"), None, "no database detail leaks: {:?}", lost.body);

    // The loser changed nothing; sent again, it goes through.
    assert_eq!(touches(&s, &admin, &a).await + touches(&s, &admin, &b).await, 1);
    let again = touch(&s, &admin, &gate, lost_id, lost_peer).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(touches(&s, &admin, &a).await + touches(&s, &admin, &b).await, 2);
}

/// A serialization failure (SQLSTATE 40001) from a handler's own query maps the same way.
#[tokio::test]
async fn a_serialization_failure_is_a_409_too() {
    let db = test_db().await;
    let s = TestServer::start(&db, "deadlock").await;
    let admin = s.token(&db, "admin@deadlock.test").await;
    let id = node(&s, &admin, "x").await;
    let bump = "update entities set version = version + 1 where tenant_id = $1 and id = $2::uuid";

    // As the owner (a superuser: row-level security does not apply), so that the isolation
    // level can be the transaction's first statement.
    let mut first = db.owner.begin().await.expect("begin");
    sqlx::query("set transaction isolation level repeatable read").execute(&mut *first).await.expect("isolation");
    // Takes the snapshot.
    sqlx::query("select version from entities where tenant_id = $1 and id = $2::uuid")
        .bind(s.tenant)
        .bind(&id)
        .execute(&mut *first)
        .await
        .expect("read");
    let mut second = db.owner.begin().await.expect("begin");
    sqlx::query(bump).bind(s.tenant).bind(&id).execute(&mut *second).await.expect("concurrent update");
    second.commit().await.expect("commit");
    let err = sqlx::query(bump).bind(s.tenant).bind(&id).execute(&mut *first).await.expect_err("must fail");
    let code = match &err {
        sqlx::Error::Database(d) => d.code().map(|c| c.to_string()),
        _ => None,
    };
    assert_eq!(code.as_deref(), Some("40001"), "{err}");

    let api = ApiError::from(err);
    assert_eq!((api.status.as_u16(), api.code), (409, "CONFLICT"));
    assert!(api.message.contains("retry"), "{}", api.message);
    assert_eq!(api.details, Value::Null);
}
