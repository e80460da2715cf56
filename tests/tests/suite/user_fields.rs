//! User fields (`type: user, role: …`) over real HTTP on chemichemi, whose trip's `driver_id`
//! is one (`role: driver`): every write that sets it (create, PATCH, JSON import) refuses a user
//! who does not exist, is not active or lacks the role, with a 422 at the field's path; a driver
//! may be named by e-mail (the id is stored); answers name the user (`users`); lists filter by
//! user id or `me`; the drivers' record rule and startTrip's guard compare it with `actor.id`;
//! `GET …/user-choices` offers the active drivers to any signed-in user.

use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::test_db;

async fn patch(s: &TestServer, token: &str, path: &str, body: &Value) -> Reply {
    s.request(reqwest::Method::PATCH, &s.url(path), Some(token), Some(body), &[]).await
}

/// The ids of a list as `token`.
async fn ids(s: &TestServer, token: &str, query: &str) -> Vec<String> {
    let r = s.get(query, token).await;
    assert_eq!(r.status, 200, "{query}: {:?}", r.body);
    r.body["data"].as_array().expect("data").iter().map(|e| e["id"].as_str().expect("id").to_string()).collect()
}

/// The one field error of a 422, as (path, message).
fn refusal(r: &Reply) -> (String, String) {
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let errors = r.body["error"]["details"]["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    (errors[0]["path"].as_str().expect("path").to_string(), errors[0]["message"].as_str().expect("message").to_string())
}

#[tokio::test]
async fn a_trip_driver_must_be_an_active_driver_and_is_shown_filtered_and_ruled_by_user() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let dispatcher = s.token(&db, "dispatcher@chemichemi.test").await;
    let driver = s.token(&db, "driver@chemichemi.test").await;
    let driver2 = s.token(&db, "driver2@chemichemi.test").await;

    let users = s.get("users", &admin).await;
    let id_of = |email: &str| -> String {
        let row = users.body["data"].as_array().expect("users").iter().find(|u| u["email"] == email);
        row.and_then(|u| u["id"].as_str()).unwrap_or_else(|| panic!("no user {email}")).to_string()
    };
    let (dan, dede, sam) =
        (id_of("driver@chemichemi.test"), id_of("driver2@chemichemi.test"), id_of("sales@chemichemi.test"));
    let r = s
        .post(
            "users",
            &admin,
            &json!({ "email": "driver3@chemichemi.test", "name": "Old Driver", "roles": ["driver"], "active": false }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let gone = r.body["id"].as_str().expect("id").to_string();

    let trip = |driver: &str| json!({ "data": { "warehouse_id": s.sample("main"), "driver_id": driver } });
    // Refused: nobody, an inactive driver, a user who is not a driver, an unknown e-mail.
    let nobody = uuid::Uuid::now_v7().to_string();
    let cases = [
        (nobody.clone(), format!("no user with id {nobody}")),
        (gone.clone(), format!("user {gone} is not active")),
        (sam.clone(), format!("user {sam} does not have the role driver")),
        ("ghost@chemichemi.test".to_string(), "no user with e-mail ghost@chemichemi.test".to_string()),
        ("dan".to_string(), "must be the id (a uuid) of a user with the role driver".to_string()),
    ];
    for (value, message) in &cases {
        let r = s.post("entities/trip", &dispatcher, &trip(value)).await;
        assert_eq!(refusal(&r), ("/data/driver_id".to_string(), message.clone()), "{value}");
    }
    assert!(ids(&s, &admin, "entities/trip?").await.is_empty(), "nothing was created");

    // A driver by id, another by e-mail (any case): both stored as ids, named in the answer.
    let r = s.post("entities/trip", &dispatcher, &trip(&dan)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let t1 = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["users"], json!({ &dan: { "name": "Dan Driver", "email": "driver@chemichemi.test" } }));
    let r = s.post("entities/trip", &dispatcher, &trip("Driver2@Chemichemi.test")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let t2 = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["data"]["driver_id"], json!(dede));
    let got = s.get(&format!("entities/trip/{t2}"), &dispatcher).await;
    assert_eq!(got.body["users"][&dede]["name"], "Dede Driver");

    // PATCH: checked the same way, in the same transaction (nothing changes on a refusal).
    let r = patch(&s, &dispatcher, &format!("entities/trip/{t2}"), &json!({ "data": { "driver_id": sam } })).await;
    assert_eq!(refusal(&r), ("/data/driver_id".to_string(), format!("user {sam} does not have the role driver")));
    let r = patch(&s, &dispatcher, &format!("entities/trip/{t2}"), &json!({ "data": { "driver_id": gone } })).await;
    assert_eq!(refusal(&r).1, format!("user {gone} is not active"));
    assert_eq!(s.get(&format!("entities/trip/{t2}"), &dispatcher).await.body["data"]["driver_id"], json!(dede));

    // An import row is checked like a create (JSON rows: the CSV cell is the same text).
    let rows = json!([
        { "warehouse_id": s.sample("main"), "driver_id": sam },
        { "warehouse_id": s.sample("main"), "driver_id": "driver@chemichemi.test" },
    ]);
    let r = s.post("entities/trip/import", &dispatcher, &rows).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["created"], 1, "{:?}", r.body);
    assert_eq!(r.body["rejected"][0]["errors"][0]["path"], "/data/driver_id", "{:?}", r.body);
    let imported: Vec<String> = ids(&s, &dispatcher, &format!("entities/trip?driver_id={dan}")).await;
    assert_eq!(imported.len(), 2, "t1 and the imported trip");
    assert!(imported.contains(&t1));

    // Filters: by id, by `me`; a bad value names the parameter.
    assert_eq!(ids(&s, &dispatcher, &format!("entities/trip?driver_id={dede}")).await, vec![t2.clone()]);
    assert_eq!(ids(&s, &driver2, "entities/trip?driver_id=me").await, vec![t2.clone()]);
    assert!(ids(&s, &dispatcher, "entities/trip?driver_id=me").await.is_empty());
    let r = s.get("entities/trip?driver_id=dan", &dispatcher).await;
    assert_eq!(refusal(&r), ("/driver_id".to_string(), "must be a user id (uuid) or `me`".to_string()));

    // The record rule (`entity.driver_id == actor.id`): each driver sees their own trips only.
    assert_eq!(ids(&s, &driver2, "entities/trip?").await, vec![t2.clone()]);
    assert_eq!(ids(&s, &driver, "entities/trip?").await.len(), 2);
    assert_eq!(s.get(&format!("entities/trip/{t2}"), &driver).await.status, 404);

    // A driver deactivated later: the trip still shows them, and edits of other fields pass
    // (only a value being set is checked); setting them again does not.
    let r = patch(&s, &admin, &format!("users/{dede}"), &json!({ "active": false })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r =
        patch(&s, &dispatcher, &format!("entities/trip/{t2}"), &json!({ "data": { "scheduled_date": "2026-03-03" } }))
            .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["users"][&dede]["name"], "Dede Driver");
    let r = patch(&s, &dispatcher, &format!("entities/trip/{t1}"), &json!({ "data": { "driver_id": dede } })).await;
    assert_eq!(refusal(&r).1, format!("user {dede} is not active"));

    // The choices a form offers: the active drivers, for any signed-in user; a role the tenant
    // does not have is the caller's mistake.
    let r = s.get("user-choices?role=driver", &dispatcher).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"], json!([{ "id": dan, "name": "Dan Driver", "email": "driver@chemichemi.test" }]));
    let r = s.get("user-choices?role=pilot", &driver).await;
    assert_eq!(refusal(&r), ("/role".to_string(), "`pilot` is not a role of this tenant".to_string()));
}
