//! The server's timers worker fires state timers that came due, as the system actor, and a
//! timer whose entity left the state does not fire.

use std::time::Duration;

use api::config::OpsConfig;
use api::workers::{EventHub, WorkerConfig, Workers};
use serde_json::json;
use switchyard_tests::server::TestServer;
use switchyard_tests::test_db;

#[tokio::test]
async fn the_timers_worker_fires_due_timers_as_the_system() {
    let db = test_db().await;
    let s = TestServer::start(&db, "timers").await;
    let agent = s.token(&db, "agent@timers.test").await;
    let hub = EventHub::default();
    let config = WorkerConfig { poll: Duration::from_millis(200), ..WorkerConfig::from(&OpsConfig::default()) };
    let workers = Workers::start(&s.store, &hub, config).expect("workers");

    let waiting = s.create(&agent, "ticket", json!({ "subject": "printer on fire" })).await;
    let answered = s.create(&agent, "ticket", json!({ "subject": "password reset" })).await;
    let (waiting, answered) =
        (waiting["id"].as_str().expect("id").to_string(), answered["id"].as_str().expect("id").to_string());
    assert_eq!(s.fire(&agent, "ticket", &answered, "answer", json!({})).await.status, 200);

    // Bounded wait: the timer is due after 1 s and the worker looks every second.
    let mut state = String::new();
    for _ in 0..300 {
        let r = s.get(&format!("entities/ticket/{waiting}"), &agent).await;
        state = r.body["state"].as_str().unwrap_or_default().to_string();
        if state == "EXPIRED" {
            assert_eq!(r.body["data"]["closed_reason"], "no answer within a second");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "EXPIRED", "the timer did not fire within 30 s");
    let h = s.get(&format!("entities/ticket/{waiting}/history"), &agent).await;
    let last = h.body["data"].as_array().and_then(|rows| rows.last()).cloned().expect("history");
    assert_eq!((last["transition"].clone(), last["actor"]["id"].clone()), (json!("expire"), json!("system")));

    // The answered ticket left OPEN before its timer came due: it stays ANSWERED.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = s.get(&format!("entities/ticket/{answered}"), &agent).await;
    assert_eq!(r.body["state"], "ANSWERED");
    workers.stop(Duration::from_secs(5)).await;
}
