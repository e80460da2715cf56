//! Every answer carries the error envelope (405 with `Allow`, 400 for a malformed header), and
//! the path's tenant is compared with the tenant a token was issued for, as the database names
//! it, not with the slug the token carries.

use std::io::{Read, Write};

use serde_json::Value;
use switchyard_tests::server::{package_dir, TestServer};
use switchyard_tests::test_db;
use tenants::Package;

#[tokio::test]
async fn unsupported_methods_answer_405_in_the_envelope_with_allow() {
    let db = test_db().await;
    let s = TestServer::start(&db, "change-control").await;
    let token = s.token(&db, "alice@kilima.test").await;
    let raw = reqwest::Client::new().put(s.url("entities/system")).bearer_auth(&token).send().await.expect("answers");
    assert_eq!(raw.status(), 405);
    let allow = raw.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");
    let body: Value = raw.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED", "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("PUT"), "{body}");
    let raw = reqwest::Client::new().delete(format!("{}/healthz", s.base)).send().await.expect("answers");
    assert_eq!(raw.status(), 405);
    let allow = raw.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(allow.contains("GET"), "Allow: {allow}");
    let body: Value = raw.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
}

/// Sends raw bytes (clients refuse to send such headers) and returns the answer's head and body.
async fn raw_request(addr: String, request: Vec<u8>) -> (String, String) {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.write_all(&request).expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (head.to_string(), body.to_string())
    })
    .await
    .expect("joins")
}

/// A header the application cannot read (a byte outside ASCII in `Idempotency-Key`) is a 400 in
/// the envelope. A control character is refused earlier still, by the HTTP parser itself, which
/// answers a bare 400 and closes the connection before any of our code runs (no envelope is
/// possible there).
#[tokio::test]
async fn a_malformed_header_is_answered_in_the_envelope() {
    let db = test_db().await;
    let s = TestServer::start(&db, "change-control").await;
    let token = s.token(&db, "admin@kilima.test").await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let path = format!("/api/v1/t/{}/entities/system/{}/transitions/retire", s.slug, uuid::Uuid::now_v7());
    let request = |byte: u8| {
        let mut r = format!("POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: a")
            .into_bytes();
        r.push(byte);
        r.extend_from_slice(b"b\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
        r
    };
    let (head, body) = raw_request(addr.clone(), request(0xff)).await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {head}\n{body}"));
    assert_eq!(body["error"]["code"], "BAD_REQUEST", "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("Idempotency-Key"), "{body}");
    let (head, _) = raw_request(addr, request(0x01)).await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
}

/// A genuine token of tenant B whose slug claim names tenant A (as after a rename of A and the
/// reuse of its slug) gets nothing of A.
#[tokio::test]
async fn the_token_tenant_is_checked_by_id() {
    let db = test_db().await;
    let a = TestServer::start(&db, "change-control").await;
    let b = a.second_tenant(&db, Package::load_dir(&package_dir("hostile")).expect("package")).await;
    let (id, roles): (uuid::Uuid, Vec<String>) = {
        let mut tx = db.tenant_tx(b.tenant).await;
        let row = sqlx::query_as("select id, roles from users where tenant_id = $1")
            .bind(b.tenant)
            .fetch_one(&mut *tx)
            .await
            .expect("a user of b");
        tx.commit().await.expect("commit");
        row
    };
    // B's user and B's tenant id, but A's slug in the claim.
    let forged_slug = b.token_for_tenant(b.tenant.as_uuid(), &a.slug, &id.to_string(), "admin@hostile.test", &roles);
    let r = a.get("entities/system", &forged_slug).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    // The same user's proper token works on B.
    let proper = b.token(&db, "admin@hostile.test").await;
    assert_eq!(b.get("entities/thing", &proper).await.status, 200);
}
