//! No mass assignment of `generated` fields: a client may not fill what the server fills, by
//! creating (`POST …/entities/{type}`), importing (each row refused in the report) or editing;
//! the system actor (sample data) and scripts' `create()` still do.

use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::test_db;

/// The `(path, message)` pairs of a `VALIDATION_FAILED` answer, sorted.
fn errors(r: &Reply) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = r.body["error"]["details"]["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (e["path"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn set_by_server(paths: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = paths.iter().map(|p| (p.to_string(), "is set by the server".into())).collect();
    out.sort();
    out
}

/// Posts an import body of `content_type`; the status and the JSON report.
async fn import(s: &TestServer, token: &str, type_name: &str, content_type: &str, body: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(s.url(&format!("entities/{type_name}/import")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("import");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json report"))
}

async fn count(s: &TestServer, token: &str, type_name: &str) -> usize {
    let r = s.get(&format!("entities/{type_name}?limit=200"), token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].as_array().expect("list").len()
}

#[tokio::test]
async fn a_client_cannot_create_with_generated_fields() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let customers = count(&s, &sales, "customer").await;

    // A sales user approving its own customer and clearing its debt at creation: refused, each
    // generated field named, nothing created.
    let r = s
        .post(
            "entities/customer",
            &sales,
            &json!({ "data": { "name": "Self-approved Ltd", "approved_by": "me", "balance": -1000 } }),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(errors(&r), set_by_server(&["/data/approved_by", "/data/balance"]));
    assert_eq!(count(&s, &sales, "customer").await, customers, "nothing was created");

    // An order priced by its creator.
    let r = s
        .post(
            "entities/order",
            &sales,
            &json!({ "data": { "customer_id": s.sample("savanna_hotel"), "total_amount": 1, "order_number": "SO-FAKE" } }),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(errors(&r), set_by_server(&["/data/order_number", "/data/total_amount"]));

    // Without them, the same customer is created, with the server's values.
    let c = s.create(&sales, "customer", json!({ "name": "Honest Ltd", "phone": "+254 700 000 000" })).await;
    assert_eq!(c["data"]["balance"], "0.00", "{c}");
    assert!(c["data"].get("approved_by").is_none(), "{c}");

    // Editing one is refused the same way.
    let id = c["id"].as_str().expect("id");
    let r = s
        .request(
            reqwest::Method::PATCH,
            &s.url(&format!("entities/customer/{id}")),
            Some(&sales),
            Some(&json!({ "data": { "balance": -5, "phone": "+254 700 000 001" } })),
            &[],
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(errors(&r), set_by_server(&["/data/balance"]));

    // Sample data is loaded by the system: its balances are there.
    let kiosk = s.get(&format!("entities/customer/{}", s.sample("mama_njeri")), &sales).await;
    assert_eq!(kiosk.body["data"]["balance"], "60.00", "{:?}", kiosk.body);
}

#[tokio::test]
async fn import_rows_with_generated_fields_are_refused_one_by_one() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let sales = s.token(&db, "sales@chemichemi.test").await;
    let customers = count(&s, &sales, "customer").await;

    let rows = json!([
        { "name": "Row One" },
        { "name": "Row Two", "balance": -500 },
        { "name": "Row Three", "approved_by": "me", "approved_at": "2024-01-01T00:00:00Z" },
    ]);
    let (status, report) = import(&s, &sales, "customer", "application/json", rows.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    let rejected = report["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 2, "{report}");
    assert_eq!(rejected[0]["row"], 2);
    assert_eq!(rejected[0]["errors"], json!([{ "path": "/data/balance", "message": "is set by the server" }]));
    assert_eq!(rejected[1]["row"], 3);
    let mut paths: Vec<&str> =
        rejected[1]["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/data/approved_at", "/data/approved_by"]);

    // CSV: a filled cell of a generated column refuses its row; an empty one sets nothing.
    let csv = "name,balance\nCsv Filled,-20\nCsv Empty,\n".to_string();
    let (status, report) = import(&s, &sales, "customer", "text/csv", csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        report["rejected"],
        json!([{ "row": 1, "errors": [{ "path": "/data/balance", "message": "is set by the server" }] }])
    );
    assert_eq!(count(&s, &sales, "customer").await, customers + 2);
}

#[tokio::test]
async fn a_generated_number_cannot_be_chosen_by_the_client() {
    let db = test_db().await;
    let s = TestServer::start(&db, "perms").await;
    let clerk = s.token(&db, "clerk@perms.test").await;
    let r = s.post("entities/memo", &clerk, &json!({ "data": { "subject": "x", "number": "M-9999" } })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(errors(&r), set_by_server(&["/data/number"]));
    let memo = s.create(&clerk, "memo", json!({ "subject": "x" })).await;
    assert_eq!(memo["data"]["number"], "M-0001");
}
