//! The engine's package features over real HTTP on a real Postgres, with the fixture package
//! `tests/fixtures/features`: named rules in guards, four-eyes (the creator, an earlier actor),
//! and state timers fired by `Store::fire_due_timers_at` (as the system, once each, not after
//! the entity left the state, safely from two workers at once).

use chrono::{Duration, Utc};
use engine::limits::Limits;
use engine::store::{Store, TimerInfo};
use serde_json::{json, Value};
use switchyard_tests::server::TestServer;
use switchyard_tests::{test_db, TestDb};
use uuid::Uuid;

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

struct Users {
    sales: String,
    manager: String,
    manager2: String,
}

async fn users(db: &TestDb, s: &TestServer) -> Users {
    Users {
        sales: s.token(db, "sales@features.test").await,
        manager: s.token(db, "manager@features.test").await,
        manager2: s.token(db, "manager2@features.test").await,
    }
}

async fn request(s: &TestServer, token: &str, data: Value) -> String {
    id(&s.create(token, "request", data).await)
}

async fn entity(s: &TestServer, token: &str, id: &str) -> Value {
    let r = s.get(&format!("entities/request/{id}"), token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn history(s: &TestServer, token: &str, id: &str) -> Vec<Value> {
    let r = s.get(&format!("entities/request/{id}/history"), token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].as_array().expect("history").clone()
}

async fn timers(s: &TestServer, id: &str) -> Vec<TimerInfo> {
    s.store.entity_timers(s.tenant, Uuid::parse_str(id).expect("uuid")).await.expect("timers")
}

/// `(state, transition, outcome)` of each timer of an entity, oldest first.
async fn timer_summary(s: &TestServer, id: &str) -> Vec<(String, String, Option<String>)> {
    timers(s, id).await.into_iter().map(|t| (t.state, t.transition, t.outcome)).collect()
}

/// The transition `name` of `GET …/transitions` as this user sees it.
async fn available(s: &TestServer, token: &str, id: &str, name: &str) -> Value {
    let r = s.get(&format!("entities/request/{id}/transitions"), token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].as_array().expect("list").iter().find(|t| t["name"] == name).expect("listed").clone()
}

#[tokio::test]
async fn a_named_rule_guards_a_transition() {
    let db = test_db().await;
    let s = TestServer::start(&db, "features").await;
    let u = users(&db, &s).await;

    let ok = request(&s, &u.sales, json!({ "title": "Paper", "items": ["A4"], "total": 40 })).await;
    let r = s.fire(&u.sales, "request", &ok, "submit", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["state"], "SUBMITTED");

    // `submittable` = `has_items` and `small`: each half fails it, with the guard's message.
    for data in [json!({ "title": "Nothing" }), json!({ "title": "Gold", "items": ["bar"], "total": 5000 })] {
        let bad = request(&s, &u.sales, data).await;
        let r = s.fire(&u.sales, "request", &bad, "submit", json!({})).await;
        assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
        assert_eq!(r.body["error"]["message"], "A request needs items and a total of at most 1000");
        assert_eq!(entity(&s, &u.sales, &bad).await["state"], "DRAFT");
        let submit = available(&s, &u.sales, &bad, "submit").await;
        assert_eq!((submit["allowed"].as_bool(), submit["reason"].as_str()), (Some(false), Some("guard")));
    }
}

#[tokio::test]
async fn four_eyes_refuses_the_creator_and_the_submitter_and_explains_why() {
    let db = test_db().await;
    let s = TestServer::start(&db, "features").await;
    let u = users(&db, &s).await;
    let data = json!({ "title": "Chairs", "items": ["chair"], "total": 300 });

    // Created and submitted by the manager: the manager may not approve it.
    let own = request(&s, &u.manager, data.clone()).await;
    assert_eq!(s.fire(&u.manager, "request", &own, "submit", json!({})).await.status, 200);
    let r = s.fire(&u.manager, "request", &own, "approve", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "four-eyes: you created this request");

    let approve = available(&s, &u.manager, &own, "approve").await;
    assert_eq!(approve["allowed"], false, "{approve}");
    assert_eq!(approve["role_allowed"], true, "{approve}");
    assert_eq!(approve["reason"], "four_eyes", "{approve}");
    let checks = approve["guards"].as_array().expect("guards");
    assert_eq!(checks.len(), 2, "{approve}");
    assert_eq!(
        (&checks[0]["kind"], &checks[0]["passed"], &checks[0]["message"]),
        (&json!("four_eyes"), &json!(false), &json!("four-eyes: you created this request"))
    );
    assert_eq!(
        (&checks[1]["kind"], &checks[1]["passed"], &checks[1]["message"]),
        (&json!("four_eyes"), &json!(false), &json!("four-eyes: you fired submit on this request"))
    );

    // Created by sales, submitted by the manager: the manager may not approve it either.
    let theirs = request(&s, &u.sales, data).await;
    assert_eq!(s.fire(&u.manager, "request", &theirs, "submit", json!({})).await.status, 200);
    let r = s.fire(&u.manager, "request", &theirs, "approve", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "four-eyes: you fired submit on this request");
    let approve = available(&s, &u.manager, &theirs, "approve").await;
    assert_eq!((approve["allowed"].as_bool(), approve["reason"].as_str()), (Some(false), Some("four_eyes")));
    assert_eq!(approve["guards"][0]["passed"], true, "{approve}");
    assert_eq!(approve["guards"][1]["passed"], false, "{approve}");

    // Another manager passes both checks and approves both.
    let approve = available(&s, &u.manager2, &theirs, "approve").await;
    assert_eq!(approve["allowed"], true, "{approve}");
    assert!(approve["guards"].as_array().expect("guards").iter().all(|g| g["passed"] == true), "{approve}");
    for id in [&own, &theirs] {
        let r = s.fire(&u.manager2, "request", id, "approve", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["entity"]["state"], "APPROVED");
    }
}

#[tokio::test]
async fn a_due_timer_fires_its_transition_as_the_system() {
    let db = test_db().await;
    let s = TestServer::start(&db, "features").await;
    let u = users(&db, &s).await;
    let start = Utc::now();

    let stale = request(&s, &u.sales, json!({ "title": "Forgotten" })).await;
    let kept = request(&s, &u.sales, json!({ "title": "Kept", "keep": true })).await;
    // Entering DRAFT (the initial state) started its timer, in the creating transaction.
    let t = timers(&s, &stale).await;
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!((t[0].state.as_str(), t[0].transition.as_str(), t[0].outcome.as_deref()), ("DRAFT", "expire", None));
    assert_eq!(t[0].input, json!({ "reason": "not submitted within 72 hours" }));
    assert!(t[0].due_at >= start + Duration::hours(72) && t[0].due_at <= Utc::now() + Duration::hours(72));
    assert_eq!(t[0].entity_version, 1);

    // A transition that stays in the state does not restart its timers.
    assert_eq!(s.fire(&u.sales, "request", &stale, "touch", json!({})).await.status, 200);
    assert_eq!(timers(&s, &stale).await.len(), 1);

    // Not due yet.
    assert_eq!(s.store.fire_due_timers_at(Utc::now() + Duration::hours(71), 100).await.expect("fire"), 0);
    assert_eq!(s.store.fire_due_timers(100).await.expect("fire"), 0);
    assert_eq!(entity(&s, &u.sales, &stale).await["state"], "DRAFT");

    // Due: fired as the system, with the timer's input; the one whose guard refuses it is
    // settled with the rejection code and stays where it is.
    assert_eq!(s.store.fire_due_timers_at(Utc::now() + Duration::hours(73), 100).await.expect("fire"), 2);
    let e = entity(&s, &u.sales, &stale).await;
    assert_eq!(e["state"], "EXPIRED");
    assert_eq!(e["data"]["expiry_reason"], "not submitted within 72 hours");
    assert_eq!(e["updated_by"], "system");
    let h = history(&s, &u.sales, &stale).await;
    let last = h.last().expect("history");
    assert_eq!(
        (&last["transition"], &last["actor"]["id"], &last["to"]),
        (&json!("expire"), &json!("system"), &json!("EXPIRED"))
    );
    let t = timers(&s, &stale).await;
    assert_eq!(t[0].outcome.as_deref(), Some("fired"));
    assert!(t[0].fired_at.is_some());

    assert_eq!(entity(&s, &u.sales, &kept).await["state"], "DRAFT");
    assert_eq!(timer_summary(&s, &kept).await, [("DRAFT".into(), "expire".into(), Some("GUARD_FAILED".into()))]);
    assert_eq!(history(&s, &u.sales, &kept).await.len(), 1, "only its creation");

    // Settled timers never fire again.
    assert_eq!(s.store.fire_due_timers_at(Utc::now() + Duration::hours(200), 100).await.expect("fire"), 0);
}

#[tokio::test]
async fn a_timer_does_not_fire_after_its_entity_left_the_state() {
    let db = test_db().await;
    let s = TestServer::start(&db, "features").await;
    let u = users(&db, &s).await;

    let r = request(&s, &u.sales, json!({ "title": "Desk", "items": ["desk"], "total": 200 })).await;
    assert_eq!(s.fire(&u.sales, "request", &r, "submit", json!({})).await.status, 200);
    // Leaving DRAFT cancelled its timer; entering SUBMITTED started the escalation (1h).
    assert_eq!(
        timer_summary(&s, &r).await,
        [("DRAFT".into(), "expire".into(), Some("cancelled".into())), ("SUBMITTED".into(), "escalate".into(), None)]
    );
    // Back to DRAFT and out again: each entry starts the state's timers anew.
    assert_eq!(s.fire(&u.sales, "request", &r, "touch", json!({})).await.status, 200);
    assert_eq!(s.fire(&u.sales, "request", &r, "submit", json!({})).await.status, 200);
    let summary = timer_summary(&s, &r).await;
    let pending: Vec<_> = summary.iter().filter(|(_, _, o)| o.is_none()).collect();
    assert_eq!(summary.len(), 4, "{summary:?}");
    assert_eq!(pending, [&("SUBMITTED".to_string(), "escalate".to_string(), None)], "{summary:?}");

    // Far in the future only the pending escalation fires; expire never does.
    assert_eq!(s.store.fire_due_timers_at(Utc::now() + Duration::days(30), 100).await.expect("fire"), 1);
    let e = entity(&s, &u.sales, &r).await;
    assert_eq!(e["state"], "ESCALATED");
    let names: Vec<String> = history(&s, &u.sales, &r)
        .await
        .iter()
        .map(|h| h["transition"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["create", "submit", "touch", "submit", "escalate"]);
    let outcomes: Vec<Option<String>> = timers(&s, &r).await.into_iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        [Some("cancelled".into()), Some("cancelled".into()), Some("cancelled".into()), Some("fired".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_fire_each_timer_once() {
    let db = test_db().await;
    let s = TestServer::start(&db, "features").await;
    let u = users(&db, &s).await;
    const N: usize = 12;
    let mut ids = Vec::with_capacity(N);
    for i in 0..N {
        ids.push(request(&s, &u.sales, json!({ "title": format!("Request {i}") })).await);
    }

    // Two stores over their own pools: as two server processes would be.
    let other = Store::new(
        sqlx::postgres::PgPoolOptions::new().max_connections(3).connect(&db.app_url).await.expect("second pool"),
        Limits::default(),
    );
    let at = Utc::now() + Duration::hours(73);
    let (a, b) = tokio::join!(s.store.fire_due_timers_at(at, 100), other.fire_due_timers_at(at, 100));
    let (a, b) = (a.expect("worker a"), b.expect("worker b"));
    assert_eq!(a + b, N, "each timer settled once ({a} + {b})");

    for id in &ids {
        assert_eq!(entity(&s, &u.sales, id).await["state"], "EXPIRED");
        let expired = history(&s, &u.sales, id).await.iter().filter(|h| h["transition"] == "expire").count();
        assert_eq!(expired, 1, "{id}");
        assert_eq!(timer_summary(&s, id).await, [("DRAFT".into(), "expire".into(), Some("fired".into()))]);
    }
    assert_eq!(other.fire_due_timers_at(at, 100).await.expect("again"), 0);
}
