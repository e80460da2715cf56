//! Overload (issue 14, part 6): one tenant sends three times what the server admits at once.
//! What must hold: its excess is refused early — `503 OVERLOADED` (admission) or `429
//! RATE_LIMITED` (its user's rate limit), each with `Retry-After` and the error envelope —
//! nothing it was told succeeded is missing (every acknowledged transition is in the history,
//! once) and nothing it was refused was applied; and another tenant's requests, sent during the
//! flood, all succeed. Success is asserted, not timing: the latency figures (the quiet tenant's
//! p99 with and without the flood) come from the benchmark (`BENCH_ONLY=overload`,
//! docs/reliability.md).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::config::{OpsConfig, RateLimit};
use api::state::Ops;
use serde_json::{json, Value};
use switchyard_tests::server::TestServer;
use switchyard_tests::test_db;
use tenants::Package;

/// The server's bound on requests in progress, and one tenant's share of it.
const MAX_IN_FLIGHT: u32 = 8;
const TENANT_IN_FLIGHT: u32 = 3;
/// Noisy clients: three times what the server admits at once, none waiting between requests
/// (they ignore `Retry-After`).
const NOISY_CLIENTS: usize = 3 * MAX_IN_FLIGHT as usize;
const FLOOD: Duration = Duration::from_secs(4);

fn bench_package(slug: &str) -> Package {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/package");
    let mut package = Package::load_dir(&dir).unwrap_or_else(|e| panic!("the bench package: {e:?}"));
    package.tenant.slug = slug.to_string();
    package
}

/// What one noisy client saw.
#[derive(Debug, Default)]
struct Seen {
    acknowledged: u64,
    /// Refusals by status and code.
    refused: BTreeMap<String, u64>,
}

/// A refusal must be early and say so: 503 or 429, `Retry-After` in whole seconds, the envelope.
fn check_refusal(status: u16, retry_after: Option<&str>, body: &Value) -> String {
    assert!(status == 503 || status == 429, "a refusal must be 503 or 429, got {status}: {body}");
    let secs: u64 = retry_after
        .unwrap_or_else(|| panic!("a {status} without Retry-After: {body}"))
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not whole seconds: {retry_after:?}"));
    assert!(secs >= 1, "Retry-After: {secs}");
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("not the error envelope: {body}"));
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "no message: {body}");
    match (status, code) {
        (503, "OVERLOADED") => {
            assert_eq!(body["error"]["details"]["applied"], false, "{body}");
            assert!(matches!(body["error"]["details"]["scope"].as_str(), Some("tenant" | "server")), "{body}");
        }
        (429, "RATE_LIMITED") => {}
        other => panic!("unexpected refusal {other:?}: {body}"),
    }
    format!("{status} {code}")
}

async fn noisy_client(url: String, token: String, stop: Arc<AtomicBool>) -> Seen {
    let client = reqwest::Client::new();
    let mut seen = Seen::default();
    while !stop.load(Ordering::Relaxed) {
        let resp = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "input": { "value": 1 } }))
            .send()
            .await
            .expect("every request gets an answer (none is dropped)");
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body: Value = resp.json().await.expect("a JSON answer");
        if status == 200 {
            seen.acknowledged += 1;
        } else {
            *seen.refused.entry(check_refusal(status, retry_after.as_deref(), &body)).or_default() += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_tenant_is_refused_early_loses_nothing_and_leaves_the_other_served() {
    let db = test_db().await;
    let ops = Ops::new(OpsConfig {
        // The flooding user also meets its rate limit (429); the quiet one stays under it.
        rate_limit_user: Some(RateLimit { count: 300, per: Duration::from_secs(1) }),
        rate_limit_ip: None,
        max_in_flight: Some(MAX_IN_FLIGHT),
        tenant_in_flight: Some(TENANT_IN_FLIGHT),
        admission_wait: Duration::from_millis(100),
        ..OpsConfig::default()
    });
    let noisy = TestServer::start_package(&db, &bench_package("noisy"), ops).await;
    let quiet = noisy.second_tenant(&db, bench_package("quiet")).await;
    let noisy_token = noisy.token(&db, "operator@bench.test").await;
    let quiet_token = quiet.token(&db, "operator@bench.test").await;

    // One meter per noisy client (no lock waits between them: the bound is what limits them),
    // and the quiet tenant's one.
    let mut meters = Vec::new();
    for n in 0..NOISY_CLIENTS {
        let m = noisy.create(&noisy_token, "meter", json!({ "name": format!("noisy {n}") })).await;
        meters.push(m["id"].as_str().expect("an id").to_string());
    }
    let quiet_meter = quiet.create(&quiet_token, "meter", json!({ "name": "quiet" })).await;
    let quiet_meter = quiet_meter["id"].as_str().expect("an id").to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = meters
        .iter()
        .map(|id| {
            let url = noisy.url(&format!("entities/meter/{id}/transitions/record"));
            tokio::spawn(noisy_client(url, noisy_token.clone(), stop.clone()))
        })
        .collect();

    // The quiet tenant works through the flood, one request at a time: each must succeed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let mut quiet_done = 0u64;
    while started.elapsed() < FLOOD || quiet_done < 20 {
        let r = quiet.fire(&quiet_token, "meter", &quiet_meter, "record", json!({ "value": 1 })).await;
        assert_eq!(r.status, 200, "the quiet tenant was refused during the flood: {:?}", r.body);
        quiet_done += 1;
        let r = quiet.get(&format!("entities/meter/{quiet_meter}"), &quiet_token).await;
        assert_eq!(r.status, 200, "the quiet tenant's read was refused during the flood: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for c in clients {
        seen.push(c.await.expect("a noisy client ends without a panic"));
    }

    // The flood was refused early, by admission (and the rate limit), and some of it served.
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    for s in &seen {
        for (k, v) in &s.refused {
            *refused.entry(k.clone()).or_default() += v;
        }
    }
    let acknowledged: u64 = seen.iter().map(|s| s.acknowledged).sum();
    eprintln!(
        "flood: {acknowledged} acknowledged, refused {refused:?}; quiet tenant: {quiet_done} transitions, all 200"
    );
    assert!(refused.get("503 OVERLOADED").is_some_and(|n| *n > 0), "admission refused nothing: {refused:?}");
    assert!(acknowledged > 0, "nothing of the flood was served");

    // Nothing acknowledged was lost, nothing refused was applied: each meter's history has
    // exactly its acknowledged transitions, and its data counts them.
    for (id, s) in meters.iter().zip(&seen) {
        let history: i64 = sqlx::query_scalar(
            "select count(*) from transitions where tenant_id = $1 and entity_id = $2::uuid and transition = 'record'",
        )
        .bind(noisy.tenant)
        .bind(id)
        .fetch_one(&db.owner)
        .await
        .expect("history");
        assert_eq!(history, s.acknowledged as i64, "meter {id}: history against acknowledged ({s:?})");
        // The flood may have left the noisy tenant's rate limit spent: wait as told.
        let mut r = noisy.get(&format!("entities/meter/{id}"), &noisy_token).await;
        for _ in 0..20 {
            if r.status != 429 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            r = noisy.get(&format!("entities/meter/{id}"), &noisy_token).await;
        }
        assert_eq!(r.body["data"]["samples"], json!(s.acknowledged), "meter {id}: {:?}", r.body);
    }
    let r = quiet.get(&format!("entities/meter/{quiet_meter}"), &quiet_token).await;
    assert_eq!(r.body["data"]["samples"], json!(quiet_done));
    // The flood over, the bound is free again: every permit was given back.
    assert_eq!(noisy.ops.admission.in_flight("noisy"), 0);
    let r = noisy.fire(&noisy_token, "meter", &meters[0], "record", json!({ "value": 1 })).await;
    assert!(r.status == 200 || r.status == 429, "{:?}", r.body);
}
