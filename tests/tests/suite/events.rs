//! Events and webhooks over real HTTP on a real Postgres: the events list and its SSE stream,
//! webhooks signed, retried, dead-lettered and replayed, destinations refused, and two worker
//! sets on one database delivering each event once.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::config::{parse_nets, OpsConfig};
use api::state::Ops;
use api::workers::{EventHub, WorkerConfig, Workers};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use engine::limits::Limits;
use engine::store::{Store, TenantId};
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, TestServer};
use switchyard_tests::{test_db, TestDb};
use tenants::package::Package;

/// Polls `check` until it gives `Some`, for at most 20 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Settings for a test: webhooks may reach 127.0.0.1, retries come fast, no rate limits.
fn test_ops(max_attempts: u32) -> OpsConfig {
    OpsConfig {
        webhook_allow: parse_nets("127.0.0.1").expect("allow"),
        webhook_max_attempts: max_attempts,
        webhook_backoff: Duration::from_millis(100),
        webhook_timeout: Duration::from_secs(5),
        rate_limit_user: None,
        rate_limit_ip: None,
        ..OpsConfig::default()
    }
}

fn workers(store: &Store, hub: &EventHub, config: &OpsConfig) -> Workers {
    let config = WorkerConfig { poll: Duration::from_millis(500), ..WorkerConfig::from(config) };
    Workers::start(store, hub, config).expect("workers")
}

// --- A webhook receiver ------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

#[derive(Clone, Default)]
struct Inbox {
    seen: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order; then `otherwise`.
    script: Arc<Mutex<VecDeque<u16>>>,
    otherwise: Arc<Mutex<u16>>,
}

impl Inbox {
    fn seen(&self) -> Vec<Received> {
        self.seen.lock().expect("lock").clone()
    }

    fn answer(&self, statuses: &[u16], otherwise: u16) {
        *self.script.lock().expect("lock") = statuses.iter().copied().collect();
        *self.otherwise.lock().expect("lock") = otherwise;
    }
}

/// A receiver on 127.0.0.1:0 that records every request and answers as scripted.
async fn receiver() -> (String, Inbox) {
    async fn hook(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
        inbox.seen.lock().expect("lock").push(Received { headers, body: body.to_vec() });
        let scripted = inbox.script.lock().expect("lock").pop_front();
        let code = scripted.unwrap_or_else(|| *inbox.otherwise.lock().expect("lock"));
        StatusCode::from_u16(code).expect("status")
    }
    let inbox = Inbox { otherwise: Arc::new(Mutex::new(200)), ..Inbox::default() };
    let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), inbox)
}

/// Checks `Switchyard-Signature: t=…,v1=…` against the secret, independently of the server.
fn assert_signed(r: &Received, secret: &str) {
    let sig = r.header("switchyard-signature");
    let (t, v1) = sig.split_once(",v1=").expect("t=…,v1=…");
    let t: i64 = t.strip_prefix("t=").expect("t=").parse().expect("timestamp");
    assert!((chrono::Utc::now().timestamp() - t).abs() < 60, "fresh timestamp");
    assert_eq!(sig, api::workers::webhooks::signature(secret, t, &r.body));
    assert_eq!(v1.len(), 64);
    assert_ne!(api::workers::webhooks::signature("another secret!!", t, &r.body), sig);
}

// --- Helpers over the API ----------------------------------------------------------------------

async fn ticket(s: &TestServer, token: &str, title: &str) -> String {
    let t = s.create(token, "ticket", json!({ "title": title })).await;
    t["id"].as_str().expect("id").to_string()
}

async fn fire(s: &TestServer, token: &str, id: &str, name: &str) {
    let r = s.fire(token, "ticket", id, name, json!({})).await;
    assert_eq!(r.status, 200, "{name}: {:?}", r.body);
}

/// The tenant's events once there are `n` of them.
async fn events(s: &TestServer, token: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} events"), || async {
        let r = s.get("events?limit=500", token).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let data = r.body["data"].as_array().expect("data").clone();
        (data.len() >= n).then_some(data)
    })
    .await
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["name"].as_str().expect("name")).collect()
}

async fn create_webhook(s: &TestServer, admin: &str, url: &str, events: Value, secret: Option<&str>) -> Value {
    let mut body = json!({ "url": url, "events": events });
    if let Some(secret) = secret {
        body["secret"] = json!(secret);
    }
    let r = s.post("webhooks", admin, &body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

async fn deliveries(s: &TestServer, admin: &str, webhook: &str) -> Vec<Value> {
    let r = s.get(&format!("webhooks/{webhook}/deliveries"), admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].as_array().expect("data").clone()
}

/// The webhook's only delivery, once `done` says it is where the test wants it.
async fn delivery_when(s: &TestServer, admin: &str, webhook: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually("the delivery", || async {
        let all = deliveries(s, admin, webhook).await;
        all.first().filter(|d| done(d)).cloned()
    })
    .await
}

// --- Events -----------------------------------------------------------------------------------

#[tokio::test]
async fn events_are_listed_in_pages_and_filtered_by_type() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let w = workers(&s.store, &s.ops.hub, &test_ops(3));
    let agent = s.token(&db, "agent@signals.test").await;

    let (a, b) = (ticket(&s, &agent, "a").await, ticket(&s, &agent, "b").await);
    fire(&s, &agent, &a, "note").await;
    fire(&s, &agent, &a, "note").await;
    fire(&s, &agent, &b, "close").await;
    let _c = ticket(&s, &agent, "c").await;

    let all = events(&s, &agent, 6).await;
    assert_eq!(
        names(&all),
        ["ticket.created", "ticket.created", "ticket.noted", "ticket.noted", "ticket.closed", "ticket.created"]
    );
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6], "positions in commit order, without gaps");
    assert_eq!(all[2]["entity_type"], "ticket");
    assert_eq!(all[2]["entity_id"], a.as_str());
    assert!(uuid::Uuid::parse_str(all[2]["event_id"].as_str().expect("event id")).is_ok());

    // Pages.
    let p1 = s.get("events?limit=4", &agent).await;
    assert_eq!(p1.status, 200);
    assert_eq!(p1.body["data"].as_array().expect("data").len(), 4);
    assert_eq!(p1.body["next_cursor"], "4");
    let p2 = s.get("events?limit=4&after=4", &agent).await;
    assert_eq!(p2.body["data"].as_array().expect("data").len(), 2);
    assert_eq!(p2.body["data"][0]["id"], 5);
    assert_eq!(p2.body["next_cursor"], Value::Null);

    // Types: names, prefixes, lists.
    let only = |q: &'static str| {
        let s = &s;
        let agent = &agent;
        async move {
            let r = s.get(&format!("events?{q}"), agent).await;
            assert_eq!(r.status, 200, "{q}: {:?}", r.body);
            r.body["data"].as_array().expect("data").iter().map(|e| e["id"].as_i64().expect("id")).collect::<Vec<_>>()
        }
    };
    assert_eq!(only("type=ticket.noted").await, [3, 4]);
    assert_eq!(only("type=ticket.created,ticket.closed").await, [1, 2, 5, 6]);
    assert_eq!(only("type=ticket.*").await, [1, 2, 3, 4, 5, 6]);
    assert_eq!(only("type=order.*").await, Vec::<i64>::new());
    assert_eq!(only("type=ticket.created&after=2&limit=1").await, [6]);

    for bad in ["type=ticket..x", "after=-1", "after=x", "limit=0", "unknown=1"] {
        let r = s.get(&format!("events?{bad}"), &agent).await;
        assert!(matches!(r.status, 400 | 422), "{bad}: {} {:?}", r.status, r.body);
        assert!(!r.code().is_empty(), "{bad}: error envelope");
    }
    // Another tenant's token gets nothing of this one.
    let foreign = s.foreign_token(uuid::Uuid::now_v7(), "elsewhere", &["admin".to_string()]);
    assert!(matches!(s.get("events", &foreign).await.status, 401 | 403));
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn events_follow_the_view_permissions_of_their_types() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let w = workers(&s.store, &s.ops.hub, &test_ops(3));
    let (admin, agent, clerk) = (
        s.token(&db, "admin@signals.test").await,
        s.token(&db, "agent@signals.test").await,
        s.token(&db, "clerk@signals.test").await,
    );
    ticket(&s, &agent, "secret").await;
    let memo = s.create(&clerk, "memo", json!({ "text": "hello" })).await;
    let r = s.fire(&clerk, "memo", memo["id"].as_str().expect("id"), "archive", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(names(&events(&s, &admin, 3).await), ["ticket.created", "memo.created", "memo.archived"]);
    assert_eq!(names(&events(&s, &agent, 3).await).len(), 3);

    // The clerk may not view tickets: their events are left out, the cursor still moves on.
    let r = s.get("events?limit=1", &clerk).await;
    assert_eq!((r.body["data"].as_array().expect("data").len(), &r.body["next_cursor"]), (0, &json!("1")));
    let r = s.get("events", &clerk).await;
    assert_eq!(names(r.body["data"].as_array().expect("data")), ["memo.created", "memo.archived"]);
    let mut stream = open_stream(&s, &clerk, "?after=0", None).await;
    let mut buf = String::new();
    let got = sse_events(&mut stream, 2, &mut buf).await;
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2, 3]);
    w.stop(Duration::from_secs(5)).await;
}

/// A transition that declares no event still reaches the stream, as the built-in
/// `entity.changed` (the entity's type, id, state and version, none of its data); a user who
/// may not view the type is not sent it; the transition's answer lists no event.
#[tokio::test]
async fn a_change_without_events_reaches_the_stream_as_entity_changed() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let w = workers(&s.store, &s.ops.hub, &test_ops(3));
    let (agent, clerk) = (s.token(&db, "agent@signals.test").await, s.token(&db, "clerk@signals.test").await);
    let a = ticket(&s, &agent, "quiet").await;
    events(&s, &agent, 1).await;

    let mut agent_stream = open_stream(&s, &agent, "", None).await;
    let mut clerk_stream = open_stream(&s, &clerk, "", None).await;
    let (mut agent_buf, mut clerk_buf) = (String::new(), String::new());
    let r = s.fire(&agent, "ticket", &a, "hold", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["events"], json!([]), "the transition declares none");
    let got = sse_events(&mut agent_stream, 1, &mut agent_buf).await;
    assert_eq!(got[0].0, 2);
    assert_eq!(
        (&got[0].1["name"], &got[0].1["entity_type"], &got[0].1["entity_id"]),
        (&json!("entity.changed"), &json!("ticket"), &json!(a))
    );
    assert_eq!(got[0].1["payload"], json!({ "id": a, "type": "ticket", "state": "HELD", "version": 2 }));

    // The clerk may not view tickets: the next event on its stream is its own memo's (3), not
    // the ticket's change (2).
    let memo = s.create(&clerk, "memo", json!({ "text": "hello" })).await;
    let got = sse_events(&mut clerk_stream, 1, &mut clerk_buf).await;
    assert_eq!((got[0].0, &got[0].1["name"]), (3, &json!("memo.created")), "{got:?}");
    assert_eq!(got[0].1["entity_id"], memo["id"]);
    let r = s.get("events?type=entity.changed", &clerk).await;
    assert_eq!(r.body["data"], json!([]), "{:?}", r.body);

    // Every such change shows, each with the version it made.
    fire(&s, &agent, &a, "resume").await;
    let got = sse_events(&mut agent_stream, 2, &mut agent_buf).await;
    assert_eq!(got[0].1["name"], "memo.created");
    assert_eq!(got[1].1["payload"], json!({ "id": a, "type": "ticket", "state": "OPEN", "version": 3 }));
    // A transition that declares its events has those, and no `entity.changed`.
    fire(&s, &agent, &a, "close").await;
    let got = sse_events(&mut agent_stream, 1, &mut agent_buf).await;
    assert_eq!(got[0].1["name"], "ticket.closed");
    let all = events(&s, &agent, 5).await;
    assert_eq!(names(&all), ["ticket.created", "entity.changed", "memo.created", "entity.changed", "ticket.closed"]);
    w.stop(Duration::from_secs(5)).await;
}

/// Reads server-sent events from a response until `n` arrived: `(id, data)` pairs.
async fn sse_events(resp: &mut reqwest::Response, n: usize, buffer: &mut String) -> Vec<(i64, Value)> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<i64>().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            // Comments (keep-alives) have neither.
            if let Some(id) = id {
                out.push((id, serde_json::from_str(&data).expect("event json")));
            }
        }
        if out.len() >= n {
            break;
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("timed out with {} of {n} events", out.len()))
            .expect("chunk")
            .unwrap_or_else(|| panic!("the stream ended with {} of {n} events", out.len()));
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    out
}

async fn open_stream(s: &TestServer, token: &str, query: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(s.url(&format!("events/stream{query}"))).bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = req.send().await.expect("stream");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().expect("type").starts_with("text/event-stream"));
    resp
}

#[tokio::test]
async fn the_stream_sends_new_events_and_resumes_after_last_event_id() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let w = workers(&s.store, &s.ops.hub, &test_ops(3));
    let agent = s.token(&db, "agent@signals.test").await;
    let a = ticket(&s, &agent, "a").await;
    events(&s, &agent, 1).await;

    // From now on: the event fired after connecting, not the one before.
    let mut live = open_stream(&s, &agent, "", None).await;
    let mut buf = String::new();
    fire(&s, &agent, &a, "note").await;
    let got = sse_events(&mut live, 1, &mut buf).await;
    assert_eq!(got[0].0, 2);
    assert_eq!(got[0].1["name"], "ticket.noted");
    assert_eq!(got[0].1["entity_id"], a.as_str());
    drop(live);

    // While disconnected.
    fire(&s, &agent, &a, "close").await;
    let _b = ticket(&s, &agent, "b").await;
    events(&s, &agent, 4).await;

    let mut resumed = open_stream(&s, &agent, "", Some("2")).await;
    let mut buf = String::new();
    let got = sse_events(&mut resumed, 2, &mut buf).await;
    assert_eq!(
        got.iter().map(|(id, e)| (*id, e["name"].as_str().expect("name"))).collect::<Vec<_>>(),
        [(3, "ticket.closed"), (4, "ticket.created")]
    );
    // And live again on the same connection.
    let c = ticket(&s, &agent, "c").await;
    let got = sse_events(&mut resumed, 1, &mut buf).await;
    assert_eq!((got[0].0, got[0].1["entity_id"].as_str()), (5, Some(c.as_str())));

    // A filtered stream from the start.
    let mut created = open_stream(&s, &agent, "?type=ticket.created&after=0", None).await;
    let mut buf = String::new();
    let got = sse_events(&mut created, 3, &mut buf).await;
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 4, 5]);

    // Shutting the server down ends open streams (they would keep it from stopping).
    s.ops.hub.shut_down();
    let ended =
        tokio::time::timeout(Duration::from_secs(10), async { while let Ok(Some(_)) = created.chunk().await {} }).await;
    assert!(ended.is_ok(), "the stream ended on shutdown");
    w.stop(Duration::from_secs(5)).await;
}

// --- Webhooks ---------------------------------------------------------------------------------

#[tokio::test]
async fn webhooks_are_signed_retried_dead_lettered_and_replayed() {
    let db = test_db().await;
    let config = test_ops(3);
    let s = TestServer::start_with(&db, "signals", Ops::new(config.clone())).await;
    let w = workers(&s.store, &s.ops.hub, &config);
    let admin = s.token(&db, "admin@signals.test").await;
    let agent = s.token(&db, "agent@signals.test").await;
    let (url, inbox) = receiver().await;
    let secret = "a-secret-of-some-length";

    // Admins only.
    assert_eq!(s.get("webhooks", &agent).await.status, 403);
    let r = s.post("webhooks", &agent, &json!({ "url": url, "events": ["*"] })).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));

    let hook = create_webhook(&s, &admin, &url, json!(["ticket.noted"]), Some(secret)).await;
    assert_eq!(hook["secret"], secret, "shown once, at creation");
    let hook_id = hook["id"].as_str().expect("id").to_string();
    let listed = s.get("webhooks", &admin).await;
    assert_eq!(listed.body["data"][0]["id"], hook_id.as_str());
    assert_eq!(listed.body["data"][0]["events"], json!(["ticket.noted"]));
    assert!(listed.body["data"][0].get("secret").is_none(), "never listed: {:?}", listed.body);

    // First attempt fails, the retry succeeds; the creation event is not for this webhook.
    inbox.answer(&[500], 200);
    let t = ticket(&s, &agent, "one").await;
    fire(&s, &agent, &t, "note").await;
    let d = delivery_when(&s, &admin, &hook_id, |d| d["status"] == "delivered").await;
    let seen = inbox.seen();
    assert_eq!(seen.len(), 2, "one failure, one success");
    for r in &seen {
        assert_signed(r, secret);
        assert_eq!(r.header("switchyard-event-type"), "ticket.noted");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.header("switchyard-delivery-id"), d["id"].as_str().expect("delivery id"));
    }
    assert_eq!(seen[0].header("switchyard-event-id"), seen[1].header("switchyard-event-id"), "a stable event id");
    assert_eq!(seen[0].header("switchyard-event-id"), d["event_id"].as_str().expect("event id"));
    assert_eq!(
        (seen[0].header("switchyard-delivery-attempt"), seen[1].header("switchyard-delivery-attempt")),
        ("1", "2")
    );
    let body = seen[1].json();
    assert_eq!(body["type"], "ticket.noted");
    assert_eq!(body["tenant"], "signals");
    assert_eq!(body["entity_id"], t.as_str());
    assert_eq!(body["id"], d["event_id"]);
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_status_code"], 200);
    let codes: Vec<Value> =
        d["history"].as_array().expect("history").iter().map(|a| a["status_code"].clone()).collect();
    assert_eq!(codes, [json!(500), json!(200)]);
    assert!(d["history"][0]["error"].as_str().expect("error").contains("500"));

    // Always failing: dead after 3 attempts.
    inbox.answer(&[], 503);
    fire(&s, &agent, &t, "note").await;
    let dead = eventually("a dead letter", || async {
        let all = deliveries(&s, &admin, &hook_id).await;
        all.into_iter().find(|d| d["status"] == "dead")
    })
    .await;
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["last_status_code"], 503);
    assert_eq!(dead["next_attempt_at"], Value::Null);
    assert_eq!(dead["history"].as_array().expect("history").len(), 3);
    let dead_id = dead["id"].as_str().expect("id").to_string();
    let by_status = s.get(&format!("webhooks/{hook_id}/deliveries?status=dead"), &admin).await;
    assert_eq!(by_status.body["data"].as_array().expect("data").len(), 1);

    // Replayed once the receiver is back: delivered, same event id, fresh retry budget.
    inbox.answer(&[], 200);
    let before = inbox.seen().len();
    let r = s.post(&format!("webhooks/{hook_id}/deliveries/{dead_id}/replay"), &admin, &json!({})).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let replayed = eventually("the replay", || async {
        let r = s.get(&format!("webhooks/{hook_id}/deliveries/{dead_id}"), &admin).await;
        (r.body["status"] == "delivered").then_some(r.body)
    })
    .await;
    assert_eq!(replayed["attempts"], 1);
    assert_eq!(replayed["history"].as_array().expect("history").len(), 4, "every attempt is kept");
    let seen = inbox.seen();
    assert_eq!(seen.len(), before + 1);
    assert_eq!(seen[before].header("switchyard-event-id"), dead["event_id"].as_str().expect("event id"));

    // Unknown ids are 404; deleting takes the deliveries along.
    let nil = uuid::Uuid::nil();
    assert_eq!(s.post(&format!("webhooks/{hook_id}/deliveries/{nil}/replay"), &admin, &json!({})).await.status, 404);
    let client = reqwest::Client::new();
    let del = client.delete(s.url(&format!("webhooks/{hook_id}"))).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(del.status(), 204);
    assert_eq!(s.get(&format!("webhooks/{hook_id}"), &admin).await.status, 404);
    assert_eq!(s.get("webhooks", &admin).await.body["data"], json!([]));
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn private_destinations_are_refused_without_the_allow_list() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let admin = s.token(&db, "admin@signals.test").await;
    let (url, _inbox) = receiver().await;
    for bad in [
        url.as_str(),
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://172.16.5.4/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ] {
        let r = s.post("webhooks", &admin, &json!({ "url": bad, "events": ["*"] })).await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{bad}: {:?}", r.body);
        assert_eq!(r.body["error"]["details"]["errors"][0]["path"], "/url", "{bad}");
    }
    for (body, path) in [
        (json!({ "url": "ftp://example.com/", "events": ["*"] }), "/url"),
        (json!({ "url": "https://u:p@example.com/", "events": ["*"] }), "/url"),
        (json!({ "url": "https://example.com/", "events": [] }), "/events"),
        (json!({ "url": "https://example.com/", "events": ["order..x"] }), "/events"),
        (json!({ "url": "https://example.com/", "events": ["*"], "secret": "short" }), "/secret"),
    ] {
        let r = s.post("webhooks", &admin, &body).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert_eq!(r.body["error"]["details"]["errors"][0]["path"], path, "{body}");
    }
    assert_eq!(s.get("webhooks", &admin).await.body["data"], json!([]));
}

#[tokio::test]
async fn a_destination_is_checked_again_at_delivery() {
    let db = test_db().await;
    // The API allows 127.0.0.1; the workers (another process, say, configured without it) do not.
    let s = TestServer::start_with(&db, "signals", Ops::new(test_ops(1))).await;
    let strict = OpsConfig { webhook_allow: Vec::new(), ..test_ops(1) };
    let w = workers(&s.store, &s.ops.hub, &strict);
    let admin = s.token(&db, "admin@signals.test").await;
    let (url, inbox) = receiver().await;
    let hook = create_webhook(&s, &admin, &url, json!(["ticket.*"]), None).await;
    assert!(hook["secret"].as_str().expect("secret").starts_with("whsec_"), "generated when not given");
    let hook_id = hook["id"].as_str().expect("id");
    ticket(&s, &admin, "x").await;
    let d = delivery_when(&s, &admin, hook_id, |d| d["status"] == "dead").await;
    assert_eq!(d["last_status_code"], Value::Null);
    let error = d["last_error"].as_str().expect("error");
    assert!(error.contains("refused") && error.contains("127.0.0.1"), "{error}");
    assert!(inbox.seen().is_empty(), "nothing was sent");
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn two_worker_sets_on_one_database_deliver_each_event_once() {
    let db = test_db().await;
    let config = test_ops(3);
    let s = TestServer::start_with(&db, "signals", Ops::new(config.clone())).await;
    let admin = s.token(&db, "admin@signals.test").await;
    let (url, inbox) = receiver().await;
    create_webhook(&s, &admin, &url, json!(["*"]), None).await;

    // Two "processes": each its own pool, store, hub and workers (listener, relay, delivery).
    let other_pool = sqlx::postgres::PgPoolOptions::new().max_connections(5).connect(&db.app_url).await.expect("pool");
    let other_store = Store::new(other_pool.clone(), Limits::default());
    let (hub_a, hub_b) = (EventHub::default(), EventHub::default());
    let a = workers(&s.store, &hub_a, &config);
    let b = workers(&other_store, &hub_b, &config);

    const N: usize = 40;
    let mut created = Vec::new();
    for i in 0..N {
        created.push(ticket(&s, &admin, &format!("t{i}")).await);
    }
    let all = events(&s, &admin, N).await;
    assert_eq!(all.len(), N, "each outbox row relayed once");
    let positions: Vec<i64> = all.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    assert_eq!(positions, (1..=N as i64).collect::<Vec<_>>());

    eventually("every delivery", || async { (inbox.seen().len() >= N).then_some(()) }).await;
    // Give a duplicate time to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for r in inbox.seen() {
        *per_event.entry(r.header("switchyard-event-id").to_string()).or_default() += 1;
    }
    assert_eq!(per_event.len(), N);
    assert!(per_event.values().all(|&n| n == 1), "delivered twice: {per_event:?}");
    let entity_ids: std::collections::HashSet<String> =
        inbox.seen().iter().map(|r| r.json()["entity_id"].as_str().expect("entity").to_string()).collect();
    assert_eq!(entity_ids, created.into_iter().collect());

    a.stop(Duration::from_secs(5)).await;
    b.stop(Duration::from_secs(5)).await;
    other_pool.close().await;
}

/// The apply path's helper: package webhooks are replaced by name and leave API ones alone.
#[tokio::test]
async fn package_webhooks_are_upserted_by_name() {
    use api::workers::webhooks::{upsert_package_webhooks, PackageWebhook};
    let db: TestDb = test_db().await;
    let s = TestServer::start_with(&db, "signals", Ops::new(test_ops(3))).await;
    let admin = s.token(&db, "admin@signals.test").await;
    let allow = api::workers::destination::Destinations::new(parse_nets("127.0.0.1").expect("nets"));
    let hook = |name: &str, url: &str| PackageWebhook {
        name: name.into(),
        url: url.into(),
        events: vec!["ticket.*".into()],
        secret: "a-package-secret-123".into(),
    };
    let apply = |hooks: Vec<PackageWebhook>, allow: api::workers::destination::Destinations| {
        let (db, tenant) = (&db, s.tenant);
        async move {
            let mut tx = db.app.begin().await.expect("begin");
            sqlx::query("select set_config('app.tenant_id', $1, true)")
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await
                .expect("tenant");
            let r = upsert_package_webhooks(&mut tx, tenant, &hooks, &allow).await;
            if r.is_ok() {
                tx.commit().await.expect("commit");
            }
            r
        }
    };
    apply(vec![hook("erp", "http://127.0.0.1:9/a"), hook("crm", "http://127.0.0.1:9/b")], allow.clone())
        .await
        .expect("first apply");
    let api_hook = create_webhook(&s, &admin, "http://127.0.0.1:9/api", json!(["*"]), None).await;
    let urls = |v: &Value| {
        let mut u: Vec<String> =
            v["data"].as_array().expect("data").iter().map(|w| w["url"].as_str().expect("url").to_string()).collect();
        u.sort();
        u
    };
    apply(vec![hook("erp", "http://127.0.0.1:9/a2")], allow.clone()).await.expect("second apply");
    let listed = s.get("webhooks", &admin).await.body;
    assert_eq!(urls(&listed), ["http://127.0.0.1:9/a2", "http://127.0.0.1:9/api"]);
    assert!(listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .any(|w| w["id"] == api_hook["id"] && w.get("name").is_none()));
    let refused = apply(vec![hook("erp", "http://10.0.0.1/a")], allow).await;
    assert!(refused.is_err(), "a private destination is refused for packages too");
}

// --- Wake-ups -----------------------------------------------------------------------------------

/// Events of the tenant listed by the API within `within`, or the count seen when it ran out.
async fn events_within(s: &TestServer, token: &str, n: usize, within: Duration) -> Result<Vec<Value>, usize> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let r = s.get("events?limit=500", token).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let data = r.body["data"].as_array().expect("data").clone();
        if data.len() >= n {
            return Ok(data);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(data.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Relays poll every minute in these tests: whatever they relay sooner, a wake-up made them.
const SLOW_POLL: Duration = Duration::from_secs(60);
/// Far more than a wake-up takes, far less than [`SLOW_POLL`] (the machine may be busy).
const PROMPTLY: Duration = Duration::from_secs(10);

/// The commit forwarder and the relay (polling every `poll`, `gap` between passes) on a hub of
/// their own, no LISTEN connection: just the in-memory path. [`RelayOnly::stop`] stops them.
struct RelayOnly {
    hub: EventHub,
    forwarder: tokio::task::JoinHandle<()>,
    relay: tokio::task::JoinHandle<()>,
}

impl RelayOnly {
    fn start(s: &TestServer, poll: Duration, gap: Duration) -> RelayOnly {
        let hub = EventHub::default();
        let stop = hub.shutdown_token().clone();
        let notify_gap = api::workers::commits::NOTIFY_GAP;
        let forwarder =
            tokio::spawn(api::workers::commits::run(s.store.clone(), hub.clone(), stop.clone(), notify_gap));
        let relay = tokio::spawn(api::workers::relay::run(s.store.clone(), hub.clone(), stop, poll, gap));
        RelayOnly { hub, forwarder, relay }
    }

    async fn stop(self) {
        self.hub.shut_down();
        self.forwarder.await.expect("forwarder");
        self.relay.await.expect("relay");
    }
}

/// A transition's transaction sends no NOTIFY (that would make commits queue behind one
/// cluster-wide lock); the process's own relay hears of the commit in memory and relays at once.
#[tokio::test]
async fn commits_do_not_notify_and_wake_their_own_relay_directly() {
    let db = test_db().await;
    let s = TestServer::start_with(&db, "signals", Ops::new(test_ops(1))).await;
    let admin = s.token(&db, "admin@signals.test").await;

    // No workers yet: a LISTEN hears nothing of a creation and a transition.
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.app).await.expect("listener");
    listener.listen(api::workers::sql::CHANNEL_OUTBOX).await.expect("listen");
    let id = ticket(&s, &admin, "quiet").await;
    fire(&s, &admin, &id, "note").await;
    let heard = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(heard.is_err(), "a write notified from its own transaction: {heard:?}");

    // The relay and the commit forwarder only, no LISTEN connection: just the in-memory path.
    let relay = RelayOnly::start(&s, SLOW_POLL, api::workers::relay::RELAY_GAP);
    // Its first pass relays the two waiting events.
    assert_eq!(events_within(&s, &admin, 2, PROMPTLY).await.map(|e| e.len()), Ok(2));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = tokio::time::Instant::now();
    fire(&s, &admin, &id, "note").await;
    let all = events_within(&s, &admin, 3, PROMPTLY).await.expect("relayed by the wake-up, not the poll");
    assert_eq!(names(&all), ["ticket.created", "ticket.noted", "ticket.noted"]);
    let took = started.elapsed();
    // What the other processes hear: one NOTIFY, from outside the transaction.
    let n = tokio::time::timeout(PROMPTLY, listener.recv()).await.expect("notified").expect("notification");
    assert_eq!(n.payload(), s.tenant.to_string());

    relay.stop().await;
    eprintln!("relayed {took:?} after the request started");
}

/// A busy relay gathers commits: a pass starts no sooner than the gap after the previous one
/// started, however many commits woke it meanwhile; after a quiet moment it relays at once.
#[tokio::test]
async fn the_relay_waits_out_its_gap_between_passes() {
    const GAP: Duration = Duration::from_millis(400);
    let db = test_db().await;
    let s = TestServer::start_with(&db, "signals", Ops::new(test_ops(1))).await;
    let admin = s.token(&db, "admin@signals.test").await;
    let id = ticket(&s, &admin, "gap").await;
    let relay = RelayOnly::start(&s, SLOW_POLL, GAP);
    // The first pass (at start) relays the creation; then a quiet moment.
    assert_eq!(events_within(&s, &admin, 1, PROMPTLY).await.map(|e| e.len()), Ok(1));
    tokio::time::sleep(GAP * 2).await;

    // After the quiet moment: the first commit starts a pass at once.
    let started = tokio::time::Instant::now();
    fire(&s, &admin, &id, "note").await;
    events_within(&s, &admin, 2, PROMPTLY).await.expect("relayed by the wake-up");
    let first = started.elapsed();
    // The next commits, at once: their pass waits for the gap from the start of the last one
    // (which started after `started`), and relays them all.
    fire(&s, &admin, &id, "note").await;
    fire(&s, &admin, &id, "note").await;
    let all = events_within(&s, &admin, 4, PROMPTLY).await.expect("relayed after the gap");
    let second = started.elapsed();
    assert_eq!(all.len(), 4);
    assert!(second >= GAP, "the second pass started {second:?} after the first commit, before the gap");
    eprintln!("first commit relayed after {first:?}, the next two after {second:?}");
    relay.stop().await;
}

/// `n` outbox rows of `tenant` (`probe.pending` events), committed straight into the table: what a
/// process leaves that dies between its commit and its notice. The trigger queues them for the relay.
async fn queue_probe_events(db: &TestDb, tenant: TenantId, n: i64) {
    sqlx::query(
        "insert into outbox (tenant_id, event_id, name, entity_type, entity_id, payload) \
         select $1, gen_random_uuid(), 'probe.pending', 'probe', gen_random_uuid(), '{}' \
         from generate_series(1, $2)",
    )
    .bind(tenant)
    .bind(n)
    .execute(&db.owner)
    .await
    .expect("outbox rows");
}

/// A pass woken by commits relays only the tenants that committed; rows nobody announced (a
/// process killed between its commit and its notice) wait for the periodic look at every tenant.
#[tokio::test]
async fn a_woken_relay_pass_relays_the_woken_tenants_and_the_poll_the_rest() {
    const POLL: Duration = Duration::from_secs(3);
    let db = test_db().await;
    let a = TestServer::start_with(&db, "signals", Ops::new(test_ops(1))).await;
    let admin_a = a.token(&db, "admin@signals.test").await;
    let b = a.second_tenant(&db, Package::load_dir(&package_dir("timers")).expect("package")).await;
    let relay = RelayOnly::start(&a, POLL, api::workers::relay::RELAY_GAP);
    let relayed = |tenant: TenantId| {
        let owner = db.owner.clone();
        async move {
            let n: i64 = sqlx::query_scalar("select count(*) from event_log where tenant_id = $1")
                .bind(tenant)
                .fetch_one(&owner)
                .await
                .expect("event_log");
            n
        }
    };
    let id = ticket(&a, &admin_a, "scoped").await;
    assert_eq!(events_within(&a, &admin_a, 1, PROMPTLY).await.map(|e| e.len()), Ok(1));
    let b_before = relayed(b.tenant).await;

    // B's row, committed with no notice; then A's commit wakes the relay.
    queue_probe_events(&db, b.tenant, 1).await;
    let started = tokio::time::Instant::now();
    fire(&a, &admin_a, &id, "note").await;
    assert_eq!(events_within(&a, &admin_a, 2, PROMPTLY).await.map(|e| e.len()), Ok(2));
    let a_took = started.elapsed();
    assert!(a_took < POLL, "A's event waited {a_took:?}, as long as the poll");
    assert_eq!(relayed(b.tenant).await, b_before, "A's wake-up relayed B's unannounced row");

    // The periodic look finds it.
    let deadline = tokio::time::Instant::now() + POLL + PROMPTLY;
    while relayed(b.tenant).await == b_before {
        assert!(tokio::time::Instant::now() < deadline, "B's row was never relayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b_took = started.elapsed();
    eprintln!("A relayed after {a_took:?}, B's unannounced row after {b_took:?}");
    relay.stop().await;
}

/// The tenants with pending events are found tenant by tenant through the primary key (a skip
/// scan, `migrations/0020`), every one of them, at most as many as asked for.
#[tokio::test]
async fn the_tenants_with_pending_events_are_each_found_once() {
    let db = test_db().await;
    let a = TestServer::start_with(&db, "signals", Ops::new(test_ops(1))).await;
    let b = a.second_tenant(&db, Package::load_dir(&package_dir("timers")).expect("package")).await;
    let c = a.second_tenant(&db, Package::load_dir(&package_dir("hooks")).expect("package")).await;
    // What the packages' sample data queued, relayed first.
    api::workers::relay::relay_all(&a.store, &EventHub::default()).await.expect("relay");
    queue_probe_events(&db, a.tenant, 3).await;
    queue_probe_events(&db, c.tenant, 200).await;
    let pool = a.store.pool();
    let mut found = api::workers::sql::pending_tenants(pool, 10).await.expect("pending tenants");
    found.sort_by_key(|t| t.to_string());
    let mut expected = vec![a.tenant, c.tenant];
    expected.sort_by_key(|t| t.to_string());
    assert_eq!(found, expected);
    assert!(!found.contains(&b.tenant), "B has nothing pending");
    assert_eq!(api::workers::sql::pending_tenants(pool, 1).await.expect("pending tenants").len(), 1);
    assert!(api::workers::sql::pending_tenants(pool, 0).await.expect("pending tenants").is_empty());

    // A probe per tenant, not a read of every pending row (203 of them).
    let mut tx = pool.begin().await.expect("begin");
    let listed: Vec<TenantId> = sqlx::query_scalar("select tenant_id from outbox_pending_tenants(10)")
        .fetch_all(&mut *tx)
        .await
        .expect("pending tenants");
    assert_eq!(listed.len(), 2);
    let read: i64 = sqlx::query_scalar(
        "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) \
         from pg_stat_xact_user_tables where relname = 'outbox_pending'",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("pg_stat_xact_user_tables");
    assert!(read <= 10, "listing 2 tenants read {read} pending rows");
    tx.rollback().await.expect("rollback");
}

/// The relay and the event stream read the outbox rows they relay or list, by key, not the
/// tenant's whole outbox: with the statistics of a tenant whose outbox grew since the last
/// `ANALYZE` (here: never analyzed), a join was planned as a hash or merge join over every outbox
/// row of the tenant, on every pass. Counted with `pg_stat_xact_user_tables` (the rows this
/// transaction fetched from `outbox`), as the server's role.
#[tokio::test]
async fn the_relay_and_the_stream_read_only_the_outbox_rows_they_need() {
    const HISTORY: i64 = 5_000;
    const NEW: i64 = 10;
    let db = test_db().await;
    let s = TestServer::start_with(&db, "signals", Ops::new(test_ops(1))).await;
    let tenant = s.tenant;
    queue_probe_events(&db, tenant, HISTORY).await;
    let hub = EventHub::default();
    let relayed = api::workers::relay::relay_all(&s.store, &hub).await.expect("relay");
    assert_eq!(relayed as i64, HISTORY);
    queue_probe_events(&db, tenant, NEW).await;

    // Rows of `outbox` fetched by this transaction so far.
    async fn fetched(tx: &mut sqlx::PgConnection) -> i64 {
        sqlx::query_scalar(
            "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) \
             from pg_stat_xact_user_tables where relname = 'outbox'",
        )
        .fetch_one(&mut *tx)
        .await
        .expect("pg_stat_xact_user_tables")
    }
    let mut tx = s.store.pool().begin_with(engine::store::sql::begin_for(tenant)).await.expect("begin");
    let before = fetched(&mut tx).await;
    let batch = api::workers::sql::pending_batch(&mut tx, tenant, api::workers::relay::BATCH).await.expect("batch");
    assert_eq!(batch.len() as i64, NEW);
    let by_relay = fetched(&mut tx).await - before;
    assert!(by_relay <= 2 * NEW, "a relay pass of {NEW} rows read {by_relay} outbox rows");

    let before = fetched(&mut tx).await;
    let tail = api::workers::sql::list_events(&mut tx, tenant, HISTORY - NEW, None, None, 100).await.expect("events");
    assert_eq!(tail.len() as i64, NEW);
    let by_stream = fetched(&mut tx).await - before;
    assert!(by_stream <= 2 * NEW, "the stream's last {NEW} events read {by_stream} outbox rows");
    tx.rollback().await.expect("rollback");
}

/// A process that commits wakes the relay of another process: here the writer runs no relay at
/// all, so only its notification (sent after the commit, debounced) can make the other relay
/// look before its one-minute poll.
#[tokio::test]
async fn a_commit_wakes_the_relays_of_other_processes() {
    let db = test_db().await;
    let config = test_ops(1);
    let s = TestServer::start_with(&db, "signals", Ops::new(config.clone())).await;
    let admin = s.token(&db, "admin@signals.test").await;
    let hub_a = EventHub::default();
    let a = Workers::start(&s.store, &hub_a, WorkerConfig { poll: SLOW_POLL, ..WorkerConfig::from(&config) })
        .expect("workers");
    // Wait until A listens, then for its first look (the listener's resync) to be over.
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let listening: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and query ilike 'listen%'",
        )
        .fetch_one(&db.owner)
        .await
        .expect("pg_stat_activity");
        if listening > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "process A never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Process B: its own pool and store, and only the commit forwarder.
    let other_pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&db.app_url).await.expect("pool");
    let other_store = Store::new(other_pool.clone(), Limits::default());
    let hub_b = EventHub::default();
    let forwarder = tokio::spawn(api::workers::commits::run(
        other_store.clone(),
        hub_b.clone(),
        hub_b.shutdown_token().clone(),
        api::workers::commits::NOTIFY_GAP,
    ));
    let actor = engine::store::timer_actor();
    for title in ["from b 1", "from b 2"] {
        other_store
            .create_entity(s.tenant, "ticket", json!({ "title": title }), &actor, Default::default())
            .await
            .expect("create in B");
    }
    let all = events_within(&s, &admin, 2, PROMPTLY).await.expect("relayed by A on B's notification");
    assert_eq!(names(&all), ["ticket.created", "ticket.created"]);

    hub_b.shut_down();
    forwarder.await.expect("forwarder");
    a.stop(Duration::from_secs(5)).await;
    other_pool.close().await;
}

// --- Streams and revoked credentials -----------------------------------------------------------

/// One server-sent event frame: its `event:` name (empty for a plain event), `id:` and `data:`.
#[derive(Debug)]
struct Frame {
    event: String,
    id: Option<i64>,
    data: String,
}

/// Reads a stream's frames until it ends; panics if it is still open after `within`.
async fn frames_until_end(resp: &mut reqwest::Response, buffer: &mut String, within: Duration) -> Vec<Frame> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream is still open after {within:?}; so far: {buffer:?}"));
        match chunk {
            Ok(Some(bytes)) => buffer.push_str(std::str::from_utf8(&bytes).expect("utf-8")),
            // The end of the body (a broken one counts: the server stopped sending).
            Ok(None) | Err(_) => break,
        }
    }
    let mut out = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let frame: String = buffer.drain(..end + 2).collect();
        let mut f = Frame { event: String::new(), id: None, data: String::new() };
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                f.event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("id:") {
                f.id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("data:") {
                f.data.push_str(v.trim_start());
            }
        }
        // Comments (keep-alives) have neither an event nor data.
        if !f.event.is_empty() || !f.data.is_empty() {
            out.push(f);
        }
    }
    out
}

/// The id of a user of the tenant, by email (through the users API).
async fn user_id(s: &TestServer, admin: &str, email: &str) -> String {
    let r = s.get("users", admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let users = r.body["data"].as_array().expect("data");
    let user = users.iter().find(|u| u["email"] == email).unwrap_or_else(|| panic!("no user {email}"));
    user["id"].as_str().expect("id").to_string()
}

/// The last frame of a stream ended for its credential: `event: unauthorized` with the envelope.
fn assert_ended_unauthorized(frames: &[Frame]) {
    let last = frames.last().expect("a last frame");
    assert_eq!(last.event, "unauthorized", "{frames:?}");
    let envelope: Value = serde_json::from_str(&last.data).expect("json");
    assert_eq!(envelope["error"]["code"], "UNAUTHORIZED", "{envelope}");
}

#[tokio::test]
async fn a_stream_ends_when_its_credential_is_revoked_and_follows_role_changes() {
    let db = test_db().await;
    let s = TestServer::start(&db, "signals").await;
    let w = workers(&s.store, &s.ops.hub, &test_ops(3));
    let admin = s.token(&db, "admin@signals.test").await;
    let agent = s.token(&db, "agent@signals.test").await;
    let clerk = s.token(&db, "clerk@signals.test").await;
    let patch = |id: String, body: Value| {
        let (s, admin) = (&s, &admin);
        async move {
            let r =
                s.request(reqwest::Method::PATCH, &s.url(&format!("users/{id}")), Some(admin), Some(&body), &[]).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    };

    // A deactivated user's stream ends before it delivers anything created afterwards.
    let mut stream = open_stream(&s, &agent, "", None).await;
    let mut buf = String::new();
    let first = ticket(&s, &agent, "before").await;
    let got = sse_events(&mut stream, 1, &mut buf).await;
    assert_eq!(got[0].1["entity_id"], first.as_str(), "the stream works");
    patch(user_id(&s, &admin, "agent@signals.test").await, json!({ "active": false })).await;
    let after = ticket(&s, &admin, "after the deactivation").await;
    let frames = frames_until_end(&mut stream, &mut buf, Duration::from_secs(20)).await;
    assert!(!frames.iter().any(|f| f.data.contains(&after)), "delivered after the deactivation: {frames:?}");
    assert!(frames.iter().all(|f| f.id.is_none()), "no event after the deactivation: {frames:?}");
    assert_ended_unauthorized(&frames);
    // And it cannot come back.
    let r = s.get("events/stream", &agent).await;
    assert_eq!(r.status, 401, "{:?}", r.body);

    // Role changes apply to an open stream: the clerk does not see tickets, then does.
    let mut stream = open_stream(&s, &clerk, "", None).await;
    let mut buf = String::new();
    let hidden = ticket(&s, &admin, "hidden from clerks").await;
    let memo = s.create(&clerk, "memo", json!({ "text": "seen" })).await;
    let got = sse_events(&mut stream, 1, &mut buf).await;
    assert_eq!(got[0].1["entity_id"], memo["id"], "the ticket {hidden} is left out");
    patch(user_id(&s, &admin, "clerk@signals.test").await, json!({ "roles": ["agent"] })).await;
    let shown = ticket(&s, &admin, "now visible").await;
    let got = sse_events(&mut stream, 1, &mut buf).await;
    assert_eq!(got[0].1["entity_id"], shown.as_str(), "the clerk's new role applies");
    drop(stream);

    // A revoked API key's stream ends even when nothing happens (the idle check).
    let key = s.post("api-keys", &admin, &json!({ "name": "listener", "roles": ["agent"] })).await;
    assert_eq!(key.status, 201, "{:?}", key.body);
    let (key_id, secret) = (key.body["id"].as_str().expect("id"), key.body["key"].as_str().expect("key"));
    let mut stream = open_stream(&s, secret, "", None).await;
    let mut buf = String::new();
    let r = s.request(reqwest::Method::DELETE, &s.url(&format!("api-keys/{key_id}")), Some(&admin), None, &[]).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let frames = frames_until_end(&mut stream, &mut buf, Duration::from_secs(20)).await;
    assert_ended_unauthorized(&frames);
    w.stop(Duration::from_secs(5)).await;
}
