//! The client's address behind a reverse proxy (`SWITCHYARD_TRUSTED_PROXIES`), over real HTTP:
//! the test client connects from 127.0.0.1, which plays the proxy. Trusted, the address in
//! `X-Forwarded-For` is the client (its own rate-limit and login buckets); not trusted, the header
//! is ignored and every request counts against the peer.

use std::time::Duration;

use api::config::{parse_nets, OpsConfig, RateLimit};
use api::state::Ops;
use serde_json::json;
use switchyard_tests::server::{loopback_webhooks, TestServer};
use switchyard_tests::{test_db, TestDb};

const ALICE: &str = "203.0.113.7";
const BOB: &str = "198.51.100.9";

/// A server whose per-IP limit is `ip_limit` a minute (none per user), trusting `trusted`.
async fn server(db: &TestDb, trusted: &str, ip_limit: Option<u32>) -> TestServer {
    let ops = OpsConfig {
        trusted_proxies: parse_nets(trusted).expect("trusted proxies"),
        rate_limit_ip: ip_limit.map(|count| RateLimit { count, per: Duration::from_secs(60) }),
        ..loopback_webhooks()
    };
    TestServer::start_with(db, "signals", Ops::new(ops)).await
}

/// An anonymous request (401, or 429 once its IP bucket is empty), forwarded for `client`
/// (`None`: no header, the proxy's own request).
async fn anonymous(s: &TestServer, client: Option<&str>) -> u16 {
    let headers: Vec<(&str, &str)> = client.map(|c| vec![("x-forwarded-for", c)]).unwrap_or_default();
    s.request(reqwest::Method::GET, &s.url("events"), None, None, &headers).await.status
}

/// A failed login attempt for `email`, forwarded for `client`.
async fn login(s: &TestServer, client: &str, email: &str) -> u16 {
    let url = format!("{}/api/v1/auth/login", s.base);
    let body = json!({ "tenant": s.slug, "email": email, "password": "guess" });
    s.request(reqwest::Method::POST, &url, None, Some(&body), &[("x-forwarded-for", client)]).await.status
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_ip_bucket() {
    let db = test_db().await;
    // The proxy appends the address it got the request from; a trusted hop (10.x) is skipped.
    let s = server(&db, "127.0.0.1, 10.0.0.0/8", Some(2)).await;
    assert_eq!(anonymous(&s, Some(ALICE)).await, 401);
    assert_eq!(anonymous(&s, Some(&format!("{ALICE}, 10.1.2.3"))).await, 401);
    assert_eq!(anonymous(&s, Some(ALICE)).await, 429, "Alice's bucket is empty");
    // A client cannot escape its bucket by claiming another address left of its own.
    assert_eq!(anonymous(&s, Some(&format!("{BOB}, {ALICE}"))).await, 429);
    // Bob, and the proxy itself, have buckets of their own.
    assert_eq!(anonymous(&s, Some(BOB)).await, 401);
    assert_eq!(anonymous(&s, Some(BOB)).await, 401);
    assert_eq!(anonymous(&s, Some(BOB)).await, 429);
    assert_eq!(anonymous(&s, None).await, 401);
    // Garbage stops the walk at the peer: the proxy's bucket.
    assert_eq!(anonymous(&s, Some("not-an-address")).await, 401);
    assert_eq!(anonymous(&s, Some("unknown")).await, 429, "the proxy's own bucket is empty");
    // IPv6 clients too.
    assert_eq!(anonymous(&s, Some("2001:db8::1")).await, 401);
}

#[tokio::test]
async fn from_an_untrusted_peer_the_header_is_ignored_and_clients_share_the_peers_bucket() {
    let db = test_db().await;
    // Proxies are configured, but the peer (127.0.0.1) is not one of them.
    let s = server(&db, "10.0.0.0/8", Some(2)).await;
    assert_eq!(anonymous(&s, Some(ALICE)).await, 401);
    assert_eq!(anonymous(&s, Some(BOB)).await, 401);
    assert_eq!(anonymous(&s, Some("2001:db8::1")).await, 429, "one bucket, the peer's, whatever the header says");
    assert_eq!(anonymous(&s, None).await, 429);
}

/// Makes failed login attempts (a new account each time, so only the per-IP limit applies) for
/// `client` until one is refused with 429; how many passed.
async fn exhaust_login_bucket(s: &TestServer, client: impl Fn(u32) -> String) -> u32 {
    let mut passed = 0;
    loop {
        match login(s, &client(passed), &format!("nobody{passed}@signals.test")).await {
            429 => return passed,
            status => assert_eq!(status, 401, "attempt {passed}"),
        }
        passed += 1;
        assert!(passed <= 40, "no per-IP login limit after {passed} attempts");
    }
}

#[tokio::test]
async fn login_attempts_count_against_the_forwarded_client() {
    let db = test_db().await;
    let s = server(&db, "127.0.0.1", None).await;
    let passed = exhaust_login_bucket(&s, |_| ALICE.to_string()).await;
    assert!(passed >= 20, "{passed}");
    // Another client behind the same proxy is not held back.
    assert_eq!(login(&s, BOB, "someone@signals.test").await, 401);
}

#[tokio::test]
async fn forged_forwarded_addresses_buy_no_fresh_login_attempts_from_an_untrusted_peer() {
    let db = test_db().await;
    let s = server(&db, "", None).await;
    // Each attempt claims another client, yet all of them count against the peer: the bucket
    // (20 attempts) runs out (trusted, each claimed client would have a fresh one).
    let passed = exhaust_login_bucket(&s, |i| format!("203.0.113.{}", i + 1)).await;
    assert!(passed >= 20, "{passed}");
}
