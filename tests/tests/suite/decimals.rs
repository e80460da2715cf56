//! `decimal` fields over real HTTP (tests/fixtures/money): values sent as strings or numbers are
//! stored and returned as canonical strings without loss (0.1, nanounits, 12-digit amounts,
//! 28 digits); too many decimals, digits or a number a double cannot carry are 422s at the
//! field's path, and nothing is written; a field with `rounding` rounds; scripts and rules add
//! in decimal (0.1 + 0.2 pays an invoice of 0.30); lists filter and sort decimals as numbers;
//! CSV export and import keep every digit.

use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::test_db;

async fn patch(s: &TestServer, token: &str, path: &str, body: &Value) -> Reply {
    s.request(reqwest::Method::PATCH, &s.url(path), Some(token), Some(body), &[]).await
}

/// Sends `body` raw with `content_type`, or a GET without a body; (status, text).
async fn raw(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<(&str, &str)>,
) -> (u16, String) {
    let mut req = reqwest::Client::new().request(method, s.url(path)).bearer_auth(token);
    if let Some((content_type, text)) = body {
        req = req.header("content-type", content_type).body(text.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The field errors of a 422, as (path, message).
fn errors(r: &Reply) -> Vec<(String, String)> {
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    r.body["error"]["details"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["path"].as_str().expect("path").to_string(), e["message"].as_str().expect("message").to_string()))
        .collect()
}

/// The `code`s of a list, in its order (following every cursor).
async fn codes(s: &TestServer, token: &str, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(c) => format!("entities/invoice?{query}&cursor={c}"),
            None => format!("entities/invoice?{query}"),
        };
        let r = s.get(&page, token).await;
        assert_eq!(r.status, 200, "{page}: {:?}", r.body);
        for e in r.body["data"].as_array().expect("data") {
            out.push(e["data"]["code"].as_str().expect("code").to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn decimals_round_trip_exactly_and_bad_ones_are_refused_at_their_field() {
    let db = test_db().await;
    let s = TestServer::start(&db, "money").await;
    let clerk = s.token(&db, "clerk@money.test").await;

    let r = s
        .post(
            "entities/invoice",
            &clerk,
            &json!({ "data": {
                "code": "A", "amount": 0.1, "rate": "1e-9", "tax": "2.345", "units": 3,
                "lines": [ { "quantity": 3, "price": "19.99" }, { "quantity": 7, "price": 0.7 } ],
            } }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let a = r.body["id"].as_str().expect("id").to_string();
    let d = &r.body["data"];
    assert_eq!(
        (
            &d["amount"],
            &d["rate"],
            &d["tax"],
            &d["units"],
            &d["lines"][0]["price"],
            &d["lines"][1]["price"],
            &d["paid"]
        ),
        (
            &json!("0.10"),
            &json!("0.000000001"),
            &json!("2.34"),
            &json!("3"),
            &json!("19.99"),
            &json!("0.70"),
            &json!("0.00")
        ),
        "numbers and strings become canonical strings; tax is rounded half-even"
    );

    // Twelve digits before the point, 28 digits in all: as sent, from a string or a number.
    let r = s
        .post(
            "entities/invoice",
            &clerk,
            &json!({ "data": { "code": "B", "amount": "999999999999.99", "rate": "1234567890123456789.123456789" } }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = r.body["id"].as_str().expect("id").to_string();
    let r = s.post("entities/invoice", &clerk, &json!({ "data": { "code": "C", "amount": 123_456_789_012.34 } })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["data"]["amount"], json!("123456789012.34"));
    let r = s.get(&format!("entities/invoice/{b}"), &clerk).await;
    assert_eq!(
        (&r.body["data"]["amount"], &r.body["data"]["rate"]),
        (&json!("999999999999.99"), &json!("1234567890123456789.123456789"))
    );

    // Refused, each at its path, and nothing written.
    let bad = json!({ "data": {
        "code": "X",
        "amount": "12.345",
        "rate": "abc",
        "units": 0,
        "lines": [ { "quantity": 1, "price": "-1" } ],
    } });
    let r = s.post("entities/invoice", &clerk, &bad).await;
    let mut got = errors(&r);
    got.sort();
    assert_eq!(
        got,
        [
            ("/data/amount".to_string(), "has more than 2 decimal places (the field has no `rounding`)".to_string()),
            ("/data/lines/0/price".to_string(), "must be >= 0".to_string()),
            ("/data/rate".to_string(), "must be a decimal number (e.g. \"12.50\")".to_string()),
            ("/data/units".to_string(), "must be >= 1".to_string()),
        ]
    );
    let r = s.post("entities/invoice", &clerk, &json!({ "data": { "code": "Y", "amount": "1000000000000" } })).await;
    assert_eq!(
        errors(&r),
        [("/data/amount".to_string(), "has more than 12 digits before the decimal point".to_string())]
    );
    // A JSON number with more digits than a double keeps: refused rather than changed.
    let r =
        s.post("entities/invoice", &clerk, &json!({ "data": { "code": "Z", "rate": 1_234_567_890.123_456_7 } })).await;
    let got = errors(&r);
    assert_eq!(got[0].0, "/data/rate");
    assert!(got[0].1.contains("send it as a string"), "{got:?}");
    assert_eq!(codes(&s, &clerk, "sort=code").await, ["A", "B", "C"]);

    // PATCH: the same rules.
    let r = patch(&s, &clerk, &format!("entities/invoice/{a}"), &json!({ "data": { "amount": 5 } })).await;
    assert_eq!((r.status, &r.body["data"]["amount"]), (200, &json!("5.00")), "{:?}", r.body);
    let r = patch(&s, &clerk, &format!("entities/invoice/{a}"), &json!({ "data": { "amount": "5.001" } })).await;
    assert_eq!(errors(&r)[0].0, "/data/amount");
    let r = s.get(&format!("entities/invoice/{a}"), &clerk).await;
    assert_eq!(r.body["data"]["amount"], json!("5.00"));
}

#[tokio::test]
async fn scripts_and_rules_add_decimals_exactly() {
    let db = test_db().await;
    let s = TestServer::start(&db, "money").await;
    let clerk = s.token(&db, "clerk@money.test").await;

    // A script totals the lines in decimal: 3 × 19.99 + 7 × 0.10 + 1234.56, to the cent.
    let lines = json!([
        { "quantity": 3, "price": "19.99" }, { "quantity": 7, "price": "0.10" }, { "quantity": 1, "price": "1234.56" }
    ]);
    let inv = s.create(&clerk, "invoice", json!({ "code": "T", "lines": lines })).await;
    let id = inv["id"].as_str().expect("id").to_string();
    let r = s.fire(&clerk, "invoice", &id, "issue", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let d = &r.body["entity"]["data"];
    assert_eq!(d["total"], json!("1295.23"));
    let totals: Vec<&Value> = d["lines"].as_array().expect("lines").iter().map(|l| &l["total"]).collect();
    assert_eq!(totals, [&json!("59.97"), &json!("0.70"), &json!("1234.56")]);

    // 0.30 paid as 0.1 then 0.2: the guard adds in decimal (in doubles 0.1 + 0.2 > 0.3 and the
    // second payment would be refused), the script too, and the invoice settles exactly.
    let lines = json!([{ "quantity": 1, "price": "0.10" }, { "quantity": 1, "price": "0.20" }]);
    let inv = s.create(&clerk, "invoice", json!({ "code": "P", "lines": lines })).await;
    let id = inv["id"].as_str().expect("id").to_string();
    let r = s.fire(&clerk, "invoice", &id, "issue", json!({})).await;
    assert_eq!(r.body["entity"]["data"]["total"], json!("0.30"), "{:?}", r.body);
    let r = s.fire(&clerk, "invoice", &id, "settle", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{:?}", r.body);
    let r = s.fire(&clerk, "invoice", &id, "pay", json!({ "amount": 0.1 })).await;
    assert_eq!(r.body["entity"]["data"]["paid"], json!("0.10"), "{:?}", r.body);
    let r = s.fire(&clerk, "invoice", &id, "pay", json!({ "amount": 0.2 })).await;
    assert_eq!((r.status, &r.body["entity"]["data"]["paid"]), (200, &json!("0.30")), "{:?}", r.body);
    let r = s.fire(&clerk, "invoice", &id, "pay", json!({ "amount": 0.01 })).await;
    assert_eq!(r.body["error"]["message"], "The payment is more than what is owed", "{:?}", r.body);
    let r = s.fire(&clerk, "invoice", &id, "settle", json!({})).await;
    assert_eq!((r.status, &r.body["entity"]["state"]), (200, &json!("PAID")), "{:?}", r.body);

    // The history keeps the exact values.
    let r = s.get(&format!("entities/invoice/{id}/history"), &clerk).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.to_string().contains("\"0.30\""), "{}", r.body);
}

#[tokio::test]
async fn lists_filter_and_sort_decimals_as_numbers() {
    let db = test_db().await;
    let s = TestServer::start(&db, "money").await;
    let clerk = s.token(&db, "clerk@money.test").await;
    // As text, "-5.50" < "10.00" < "100.00" < "1000000.01" < "9.99": not the order wanted.
    for (code, amount, rate) in [
        ("ten", "10.00", "0.000000003"),
        ("nine", "9.99", "0.000000001"),
        ("million", "1000000.01", "2"),
        ("minus", "-5.50", "0.5"),
        ("hundred", "100", "0.000000002"),
    ] {
        s.create(&clerk, "invoice", json!({ "code": code, "amount": amount, "rate": rate })).await;
    }
    assert_eq!(codes(&s, &clerk, "sort=amount&limit=2").await, ["minus", "nine", "ten", "hundred", "million"]);
    assert_eq!(codes(&s, &clerk, "sort=-amount&limit=3").await, ["million", "hundred", "ten", "nine", "minus"]);
    assert_eq!(codes(&s, &clerk, "sort=amount&amount[gte]=10").await, ["ten", "hundred", "million"]);
    assert_eq!(codes(&s, &clerk, "amount=10").await, ["ten"]);
    assert_eq!(codes(&s, &clerk, "sort=rate&rate[lt]=0.0000000025").await, ["nine", "hundred"]);
    assert_eq!(codes(&s, &clerk, "sort=amount&amount[in]=9.99,100.0").await, ["nine", "hundred"]);
    let r = s.get("entities/invoice?amount[gt]=ten", &clerk).await;
    assert_eq!(errors(&r), [("/amount[gt]".to_string(), "must be a decimal number (e.g. 12.50)".to_string())]);
}

#[tokio::test]
async fn csv_export_and_import_keep_every_digit() {
    let db = test_db().await;
    let s = TestServer::start(&db, "money").await;
    let clerk = s.token(&db, "clerk@money.test").await;
    s.create(&clerk, "invoice", json!({ "code": "E1", "amount": "-5.50", "rate": "1234567890123456789.123456789" }))
        .await;

    let (status, csv) = raw(&s, reqwest::Method::GET, "entities/invoice/export.csv?sort=code", &clerk, None).await;
    assert_eq!(status, 200, "{csv}");
    // A negative amount is a number, not a formula to guard.
    assert!(csv.contains(",-5.50,"), "{csv}");
    assert!(csv.contains(",1234567890123456789.123456789,"), "{csv}");

    let body = "code,amount,rate,tax\nI1,0.1,1e-9,2.345\nI2,12.345,,\nI3,999999999999.99,0.123456789,\n";
    let (status, report) =
        raw(&s, reqwest::Method::POST, "entities/invoice/import", &clerk, Some(("text/csv", body))).await;
    assert_eq!(status, 200, "{report}");
    let report: Value = serde_json::from_str(&report).expect("json");
    assert_eq!(report["created"], 2, "{report:#}");
    assert_eq!(report["rejected"][0]["row"], 2, "{report:#}");
    assert_eq!(report["rejected"][0]["errors"][0]["path"], "/data/amount", "{report:#}");
    let r = s.get("entities/invoice?code=I1", &clerk).await;
    let d = &r.body["data"][0]["data"];
    assert_eq!((&d["amount"], &d["rate"], &d["tax"]), (&json!("0.10"), &json!("0.000000001"), &json!("2.34")));
    let r = s.get("entities/invoice?code=I3", &clerk).await;
    assert_eq!(r.body["data"][0]["data"]["amount"], json!("999999999999.99"));

    // Exported as stored: the imported values are the canonical strings.
    let (_, exported) = raw(&s, reqwest::Method::GET, "entities/invoice/export.csv?sort=code", &clerk, None).await;
    assert!(exported.contains(",0.10,0.000000001,2.34,"), "{exported}");
}
