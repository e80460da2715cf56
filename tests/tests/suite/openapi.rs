//! The generated OpenAPI document against the real server: every route the api crate declares
//! (`api::routes::table`, each with its documentation) is in the document, every documented
//! operation exists, the documented list
//! filters and sort keys are exactly those the list accepts, and real answers (successes and
//! errors) match the documented responses, for the operations a fuzzer reaches only with ids it
//! cannot guess.

use std::collections::BTreeSet;
use std::time::Duration;

use api::state::Ops;
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::server::{loopback_webhooks, Reply, TestServer};
use switchyard_tests::test_db;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The operations of a document: (METHOD, path) → operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().expect("ref"));
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// A value the schema of a query parameter accepts, as it goes in a query string.
fn sample(schema: &Value) -> String {
    if let Some(first) = schema["enum"].get(0) {
        return first.as_str().expect("enum of strings").to_string();
    }
    // One of several forms (a user field's filter: an id or `me`): a value of the first.
    if let Some(first) = schema["anyOf"].get(0) {
        return sample(first);
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("array"), _) => sample(&schema["items"]),
        (Some("string"), Some("uuid")) => uuid::Uuid::now_v7().to_string(),
        (Some("string"), Some("date")) => "2026-01-31".into(),
        (Some("string"), Some("date-time")) => "2026-01-31T12:00:00Z".into(),
        (Some("string"), _) => "x".into(),
        (Some("number" | "integer"), _) => "7".into(),
        (Some("boolean"), _) => "true".into(),
        other => panic!("no sample for {other:?}: {schema}"),
    }
}

#[tokio::test]
async fn the_document_covers_every_route_and_only_real_ones() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let r = s.get("openapi.json", &admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let tenant = format!("/api/v1/t/{}", s.slug);
    let ops = operations(&doc);
    let documented: BTreeSet<(String, String)> = ops.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();

    // Every route of the router, for every entity type and transition.
    let types = s.get("types", &admin).await.body["data"].as_array().expect("types").clone();
    assert!(types.len() > 5);
    let mut expected = BTreeSet::new();
    // The routes as the api crate declares them (`api::routes::table`). A route is declared
    // with its documentation (`Routes::get(path, handler, doc)`), so each has one by
    // construction; what is checked here is that the document holds it: an operation of its
    // own, or for an entity route (`Doc::PerType`) one per type (`{type}`) and transition
    // (`transitions/{name}`), written by `api::openapi` from the definitions.
    for route in api::routes::table() {
        let method = route.method.as_str();
        let path = route.path.replace("/api/v1/t/{tenant}", &tenant);
        let per_type = matches!(route.doc, api::routes::Doc::PerType);
        assert_eq!(
            per_type,
            path.contains("{type}"),
            "{method} {path}: documented per type exactly when an entity route"
        );
        if !path.contains("{type}") {
            expected.insert((method.to_string(), path));
            continue;
        }
        for ty in &types {
            let path = path.replace("{type}", ty["name"].as_str().expect("name"));
            if !path.ends_with("/transitions/{name}") {
                expected.insert((method.to_string(), path));
                continue;
            }
            // The create transition is fired only by creating (`POST …/entities/{type}`).
            for t in
                ty["workflow"]["transitions"].as_array().expect("transitions").iter().filter(|t| t["create"] != true)
            {
                expected.insert((method.to_string(), path.replace("{name}", t["name"].as_str().expect("name"))));
            }
        }
    }
    assert!(expected.len() > 44, "{expected:#?}");
    let missing: Vec<_> = expected.difference(&documented).collect();
    assert!(missing.is_empty(), "routes without an operation: {missing:#?}");
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(extra.is_empty(), "operations of no known route: {extra:#?}");
    for (method, path) in [
        ("POST", "auth/logout"),
        ("POST", "auth/accept-invite"),
        ("PATCH", "users/{id}"),
        ("POST", "users/{id}/invite"),
        ("DELETE", "api-keys/{id}"),
        ("POST", "webhooks/{id}/deliveries/{delivery}/replay"),
        ("GET", "events/stream"),
        ("POST", "config/apply"),
        ("GET", "config/versions/{version}"),
        ("POST", "entities/order/transitions/submitOrder"),
        ("GET", "entities/order/export.csv"),
        ("POST", "entities/order/import"),
        ("DELETE", "entities/order/{id}"),
    ] {
        let full = if path.starts_with("auth/") { format!("/api/v1/{path}") } else { format!("{tenant}/{path}") };
        assert!(documented.contains(&(method.to_string(), full.clone())), "{method} {full} is documented");
    }

    // Well-formed: unique operation ids, every reference resolves, every operation answers errors
    // with the envelope, the stream and the export in their own media types.
    let ids: Vec<&str> = ops.iter().map(|(_, _, op)| op["operationId"].as_str().expect("operationId")).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "operation ids are unique");
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    for r in all_refs {
        let pointer = r.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} resolves");
    }
    for (method, path, op) in &ops {
        let responses = op["responses"].as_object().expect("responses");
        if path != "/readyz" {
            assert_eq!(
                op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{method} {path}"
            );
        }
        assert!(responses.keys().any(|k| k.starts_with('2')), "{method} {path} documents its success");
    }
    let stream = &doc["paths"][format!("{tenant}/events/stream")]["get"];
    assert!(stream["responses"]["200"]["content"]["text/event-stream"].is_object(), "{stream}");
    let export = &doc["paths"][format!("{tenant}/entities/order/export.csv")]["get"];
    assert!(export["responses"]["200"]["content"]["text/csv"].is_object(), "{export}");
    let import = &doc["paths"][format!("{tenant}/entities/order/import")]["post"]["requestBody"]["content"];
    assert!(import["text/csv"].is_object() && import["application/json"].is_object(), "{import}");
    let logout = &doc["paths"]["/api/v1/auth/logout"]["post"]["responses"];
    assert!(logout["204"].is_object() && logout.get("200").is_none(), "{logout}");
    let replay = &doc["paths"][format!("{tenant}/webhooks/{{id}}/deliveries/{{delivery}}/replay")]["post"]["responses"];
    assert!(replay["202"].is_object(), "{replay}");

    // Every documented operation is served: without a token, none is an unknown route or method.
    let client = reqwest::Client::new();
    for (method, path, _) in &ops {
        let url = format!("{}{}", s.base, path)
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{delivery}", &uuid::Uuid::now_v7().to_string())
            .replace("{version}", "1")
            .replace("{name}", "order");
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let resp = client.request(m, &url).json(&json!({})).send().await.expect("request");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert_ne!(body["error"]["message"], "no such route", "{method} {path}");
    }
}

#[tokio::test]
async fn documented_filters_and_sorts_are_exactly_what_lists_accept() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let doc = s.get("openapi.json", &admin).await.body;
    let tenant = format!("/api/v1/t/{}", s.slug);

    // The order list, by hand: its filterable reference fields, the columns, `sort` with `-`.
    let list = &doc["paths"][format!("{tenant}/entities/order")]["get"]["parameters"];
    let names: BTreeSet<&str> =
        list.as_array().expect("params").iter().map(|p| p["name"].as_str().expect("name")).collect();
    for name in [
        "customer_id",
        "customer_id[in]",
        "customer_id[null]",
        "trip_id",
        "state",
        "state[in]",
        "id",
        "id[in]",
        "created_at[gte]",
        "updated_at[lt]",
        "q",
        "sort",
        "limit",
        "cursor",
        "total",
    ] {
        assert!(names.contains(name), "order lists take {name}: {names:?}");
    }
    // References have no order, columns are never missing, unmarked fields are not filters.
    for name in ["customer_id[gte]", "state[gt]", "id[null]", "state[null]", "notes", "items", "order_date"] {
        assert!(!names.contains(name), "order lists do not take {name}");
    }
    let sort = list.as_array().expect("params").iter().find(|p| p["name"] == "sort").expect("sort");
    let keys: Vec<&str> = sort["schema"]["enum"].as_array().expect("enum").iter().filter_map(Value::as_str).collect();
    for k in ["id", "-id", "created_at", "-updated_at"] {
        assert!(keys.contains(&k), "sort by {k}: {keys:?}");
    }
    assert!(!keys.contains(&"state") && !keys.contains(&"customer_id"), "{keys:?}");
    let in_param = list.as_array().expect("params").iter().find(|p| p["name"] == "customer_id[in]").expect("in");
    assert_eq!((&in_param["style"], &in_param["explode"]), (&json!("form"), &json!(false)), "comma-separated");

    // Every type: each documented filter and sort key is accepted (200), each field of the type
    // that is not documented as a filter is refused (422), and so is an operator not documented
    // for a documented field.
    let mut accepted = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(type_name) = path.strip_prefix(&format!("{tenant}/entities/")) else { continue };
        if type_name.contains('/') {
            continue;
        }
        let params = item["get"]["parameters"].as_array().expect("params");
        let documented: BTreeSet<&str> = params.iter().map(|p| p["name"].as_str().expect("name")).collect();
        for p in params {
            let name = p["name"].as_str().expect("name");
            if matches!(name, "q" | "cursor" | "limit" | "total") {
                continue;
            }
            let values: Vec<String> = match name {
                "sort" => p["schema"]["enum"]
                    .as_array()
                    .expect("enum")
                    .iter()
                    .map(|v| sample(&json!({ "enum": [v] })))
                    .collect(),
                _ => vec![sample(&p["schema"])],
            };
            for v in values {
                let query = format!("entities/{type_name}?{}={}", urlencode(name), urlencode(&v));
                let r = s.get(&query, &admin).await;
                assert_eq!(r.status, 200, "{query}: {:?}", r.body);
                accepted += 1;
            }
        }
        let data = &doc["components"]["schemas"][api::openapi::component(type_name, "Data")]["properties"];
        for field in data.as_object().expect("data properties").keys() {
            if documented.contains(field.as_str()) {
                for op in ["gt", "in", "null"] {
                    let name = format!("{field}[{op}]");
                    if !documented.contains(name.as_str()) {
                        let r = s.get(&format!("entities/{type_name}?{}=1", urlencode(&name)), &admin).await;
                        assert_eq!(r.status, 422, "{type_name} refuses {name}: {:?}", r.body);
                    }
                }
                continue;
            }
            let r = s.get(&format!("entities/{type_name}?{field}=x"), &admin).await;
            assert_eq!(r.status, 422, "{type_name} refuses the undocumented filter {field}: {:?}", r.body);
            assert_eq!(r.error_paths(), [format!("/{field}").as_str()], "{:?}", r.body);
        }
    }
    assert!(accepted > 100, "only {accepted} filters tried");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The document, to check real answers against.
struct Spec {
    doc: Value,
    checked: usize,
}

impl Spec {
    /// Checks an answer of `method path` (a documented path) against the document: `expected` is
    /// the status it must have, which must be documented (or fall to `default`), and the body
    /// must match that response's JSON schema (no body when the response has no content).
    fn check(&mut self, method: &str, path: &str, r: &Reply, expected: u16) {
        assert_eq!(r.status, expected, "{method} {path}: {:?}", r.body);
        let op = &self.doc["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is documented");
        let responses = &op["responses"];
        let status = r.status.to_string();
        let response = if responses[&status].is_object() { &responses[&status] } else { &responses["default"] };
        assert!(response.is_object(), "{method} {path}: {status} is documented");
        let content = &response["content"];
        if !content.is_object() {
            assert_eq!(r.body, Value::Null, "{method} {path}: {status} has no body");
            self.checked += 1;
            return;
        }
        let Some(schema) = content["application/json"]["schema"].as_object() else {
            // Not JSON (CSV, the event stream): the media type is checked by schemathesis.
            self.checked += 1;
            return;
        };
        let errors = self.errors(schema, &r.body);
        assert!(errors.is_empty(), "{method} {path} {status} does not match its schema: {errors:#?}\n{}", r.body);
        self.checked += 1;
    }

    /// Where `body` departs from `schema` (references into the document's components resolve).
    fn errors(&self, schema: &serde_json::Map<String, Value>, body: &Value) -> Vec<String> {
        let mut root = schema.clone();
        root.insert("components".into(), self.doc["components"].clone());
        let root = Value::Object(root);
        let validator = jsonschema::draft202012::options().build(&root).expect("a valid schema");
        validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect()
    }
}

#[tokio::test]
async fn real_answers_match_the_documented_schemas() {
    let db = test_db().await;
    let s = TestServer::start_with(&db, "chemichemi", Ops::new(loopback_webhooks())).await;
    let workers = s.workers();
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let doc = s.get("openapi.json", &admin).await.body;
    let mut spec = Spec { doc, checked: 0 };
    let t = format!("/api/v1/t/{}", s.slug);
    let p = |rest: &str| format!("{t}/{rest}");
    let send = |method: Method, path: String, token: Option<String>, body: Option<Value>| {
        let s = &s;
        async move { s.request(method, &format!("{}{path}", s.base), token.as_deref(), body.as_ref(), &[]).await }
    };
    let admin_ = || Some(admin.clone());

    // Health, the document itself, types.
    spec.check("GET", "/healthz", &send(Method::GET, "/healthz".into(), None, None).await, 200);
    spec.check("GET", "/readyz", &send(Method::GET, "/readyz".into(), None, None).await, 200);
    spec.check("GET", &p("openapi.json"), &s.get("openapi.json", &admin).await, 200);
    spec.check("GET", &p("types"), &s.get("types", &admin).await, 200);
    spec.check("GET", &p("types/{name}"), &s.get("types/order", &admin).await, 200);
    spec.check("GET", &p("types/{name}"), &s.get("types/nothing", &admin).await, 404);

    // Users and sign-in.
    let email = "newbie@chemichemi.test";
    let password = "a long enough password";
    let body = json!({ "email": email, "name": "Newbie", "roles": ["sales"], "password": password });
    let r = s.post("users", &admin, &body).await;
    spec.check("POST", &p("users"), &r, 201);
    let user = r.body["id"].as_str().expect("id").to_string();
    spec.check("POST", &p("users"), &s.post("users", &admin, &body).await, 409);
    spec.check("GET", &p("users"), &s.get("users", &admin).await, 200);
    spec.check("GET", &p("users/{id}"), &s.get(&format!("users/{user}"), &admin).await, 200);
    let r = send(Method::PATCH, p(&format!("users/{user}")), admin_(), Some(json!({ "name": "New B." }))).await;
    spec.check("PATCH", &p("users/{id}"), &r, 200);
    let r = send(Method::PATCH, p(&format!("users/{user}")), admin_(), Some(json!({ "roles": ["nobody"] }))).await;
    spec.check("PATCH", &p("users/{id}"), &r, 422);
    let login = json!({ "tenant": s.slug, "email": email, "password": password });
    let r = send(Method::POST, "/api/v1/auth/login".into(), None, Some(login.clone())).await;
    spec.check("POST", "/api/v1/auth/login", &r, 200);
    let refresh = r.body["refresh_token"].as_str().expect("refresh").to_string();
    let r = send(Method::POST, "/api/v1/auth/refresh".into(), None, Some(json!({ "refresh_token": refresh }))).await;
    spec.check("POST", "/api/v1/auth/refresh", &r, 200);
    let (access, refresh2) = (
        r.body["access_token"].as_str().expect("access").to_string(),
        r.body["refresh_token"].as_str().expect("refresh").to_string(),
    );
    let r = send(Method::GET, "/api/v1/auth/me".into(), Some(access.clone()), None).await;
    spec.check("GET", "/api/v1/auth/me", &r, 200);
    let wrong = json!({ "tenant": s.slug, "email": email, "password": "not the password" });
    spec.check(
        "POST",
        "/api/v1/auth/login",
        &send(Method::POST, "/api/v1/auth/login".into(), None, Some(wrong)).await,
        401,
    );
    let r = send(Method::POST, "/api/v1/auth/logout".into(), None, Some(json!({ "refresh_token": refresh2 }))).await;
    spec.check("POST", "/api/v1/auth/logout", &r, 204);
    spec.check("GET", "/api/v1/auth/me", &send(Method::GET, "/api/v1/auth/me".into(), Some(access), None).await, 401);
    // A spent refresh token.
    let r = send(Method::POST, "/api/v1/auth/refresh".into(), None, Some(json!({ "refresh_token": refresh }))).await;
    spec.check("POST", "/api/v1/auth/refresh", &r, 401);

    // API keys.
    let r = s.post("api-keys", &admin, &json!({ "name": "robot", "roles": ["viewer"] })).await;
    spec.check("POST", &p("api-keys"), &r, 201);
    let key = r.body["id"].as_str().expect("id").to_string();
    spec.check("POST", &p("api-keys"), &s.post("api-keys", &admin, &json!({ "name": "" })).await, 422);
    spec.check("GET", &p("api-keys"), &s.get("api-keys", &admin).await, 200);
    let r = send(Method::DELETE, p(&format!("api-keys/{key}")), admin_(), None).await;
    spec.check("DELETE", &p("api-keys/{id}"), &r, 204);
    let r = send(Method::DELETE, p(&format!("api-keys/{}", uuid::Uuid::now_v7())), admin_(), None).await;
    spec.check("DELETE", &p("api-keys/{id}"), &r, 404);
    spec.check("GET", &p("api-keys"), &s.get("api-keys", &admin).await, 200);

    // A webhook (its delivery comes with the order below).
    let r = s.post("webhooks", &admin, &json!({ "url": "http://127.0.0.1:9/hook", "events": ["order.*"] })).await;
    spec.check("POST", &p("webhooks"), &r, 201);
    let hook = r.body["id"].as_str().expect("id").to_string();
    let r = s.post("webhooks", &admin, &json!({ "url": "http://10.1.2.3/hook", "events": ["order.*"] })).await;
    spec.check("POST", &p("webhooks"), &r, 422);
    spec.check("GET", &p("webhooks"), &s.get("webhooks", &admin).await, 200);
    spec.check("GET", &p("webhooks/{id}"), &s.get(&format!("webhooks/{hook}"), &admin).await, 200);

    // Entities: the whole life of an order, its lists, bulk, export and import.
    let order_data = json!({ "customer_id": s.sample("savanna_hotel"), "warehouse_id": s.sample("main"),
                             "items": [{ "product_id": s.sample("lpg6"), "quantity": 2 }] });
    let r = s.post("entities/order", &admin, &json!({ "data": order_data })).await;
    spec.check("POST", &p("entities/order"), &r, 201);
    let order = r.body["id"].as_str().expect("id").to_string();
    spec.check("POST", &p("entities/order"), &s.post("entities/order", &admin, &json!({ "data": {} })).await, 422);
    spec.check("GET", &p("entities/order/{id}"), &s.get(&format!("entities/order/{order}"), &admin).await, 200);
    let missing = uuid::Uuid::now_v7();
    spec.check("GET", &p("entities/order/{id}"), &s.get(&format!("entities/order/{missing}"), &admin).await, 404);
    let r =
        send(Method::PATCH, p(&format!("entities/order/{order}")), admin_(), Some(json!({ "data": { "notes": "n" } })))
            .await;
    spec.check("PATCH", &p("entities/order/{id}"), &r, 200);
    let r = s.get(&format!("entities/order/{order}/transitions"), &admin).await;
    spec.check("GET", &p("entities/order/{id}/transitions"), &r, 200);
    let r = s.fire(&admin, "order", &order, "submitOrder", json!({})).await;
    spec.check("POST", &p("entities/order/{id}/transitions/submitOrder"), &r, 200);
    let r = s.fire(&admin, "order", &order, "submitOrder", json!({})).await;
    spec.check("POST", &p("entities/order/{id}/transitions/submitOrder"), &r, 409);
    let r = s.get(&format!("entities/order/{order}/history"), &admin).await;
    spec.check("GET", &p("entities/order/{id}/history"), &r, 200);
    let list = format!(
        "entities/order?customer_id={}&state[in]=PENDING_APPROVAL,DRAFT&sort=-created_at&total=true",
        s.sample("savanna_hotel")
    );
    let r = s.get(&list, &admin).await;
    spec.check("GET", &p("entities/order"), &r, 200);
    assert_eq!(r.body["total"], 1, "{:?}", r.body);
    spec.check("GET", &p("entities/order"), &s.get("entities/order?customer_id[gte]=x", &admin).await, 422);
    let bulk = json!({ "ids": [order, missing.to_string()], "input": { "reason": "test" }, "dry_run": true });
    let r = s.post("entities/order/transitions/cancelOrder", &admin, &bulk).await;
    spec.check("POST", &p("entities/order/transitions/cancelOrder"), &r, 200);
    assert_eq!(
        (&r.body["failed"], &r.body["results"][1]["error"]["code"]),
        (&json!(1), &json!("NOT_FOUND")),
        "{:?}",
        r.body
    );
    let r = s.post("entities/order/transitions/cancelOrder", &admin, &json!({ "filter": { "state": "DRAFT" } })).await;
    spec.check("POST", &p("entities/order/transitions/cancelOrder"), &r, 200);
    let r = s.post("entities/order/transitions/cancelOrder", &admin, &json!({})).await;
    spec.check("POST", &p("entities/order/transitions/cancelOrder"), &r, 422);
    spec.check("GET", &p("entities/order/export.csv"), &s.get("entities/order/export.csv?sort=-id", &admin).await, 200);
    let rows = json!([order_data, { "customer_id": "nobody" }]);
    let r = s.post("entities/order/import", &admin, &rows).await;
    spec.check("POST", &p("entities/order/import"), &r, 200);
    assert_eq!((&r.body["created"], r.body["rejected"].as_array().map(Vec::len)), (&json!(1), Some(1)), "{:?}", r.body);
    let draft = s.create(&admin, "order", order_data.clone()).await;
    let draft = draft["id"].as_str().expect("id");
    let r = send(Method::DELETE, p(&format!("entities/order/{draft}")), admin_(), None).await;
    spec.check("DELETE", &p("entities/order/{id}"), &r, 204);

    // Events and the webhook's deliveries.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let delivery = loop {
        let r = s.get(&format!("webhooks/{hook}/deliveries"), &admin).await;
        if let Some(d) = r.body["data"].as_array().and_then(|d| d.iter().find(|d| d["status"] == "dead")) {
            spec.check("GET", &p("webhooks/{id}/deliveries"), &r, 200);
            break d["id"].as_str().expect("id").to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead delivery: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = s.get(&format!("webhooks/{hook}/deliveries/{delivery}"), &admin).await;
    spec.check("GET", &p("webhooks/{id}/deliveries/{delivery}"), &r, 200);
    assert!(!r.body["history"].as_array().expect("history").is_empty(), "{:?}", r.body);
    let r = s.post(&format!("webhooks/{hook}/deliveries/{delivery}/replay"), &admin, &json!({})).await;
    spec.check("POST", &p("webhooks/{id}/deliveries/{delivery}/replay"), &r, 202);
    let r = s.get(&format!("webhooks/{hook}/deliveries?status=sent"), &admin).await;
    spec.check("GET", &p("webhooks/{id}/deliveries"), &r, 422);
    spec.check("GET", &p("events"), &s.get("events?type=order.*&limit=2", &admin).await, 200);
    spec.check("GET", &p("events"), &s.get("events?after=x", &admin).await, 422);
    let r = send(Method::DELETE, p(&format!("webhooks/{hook}")), admin_(), None).await;
    spec.check("DELETE", &p("webhooks/{id}"), &r, 204);
    spec.check("GET", &p("webhooks/{id}"), &s.get(&format!("webhooks/{hook}"), &admin).await, 404);

    // The configuration.
    let r = s.get("config/export", &admin).await;
    spec.check("GET", &p("config/export"), &r, 200);
    let package = r.body;
    spec.check("POST", &p("config/validate"), &s.post("config/validate", &admin, &package).await, 200);
    spec.check("POST", &p("config/plan"), &s.post("config/plan", &admin, &package).await, 200);
    spec.check("POST", &p("config/plan"), &s.post("config/plan", &admin, &json!({ "tenant": {} })).await, 422);
    spec.check("POST", &p("config/apply"), &s.post("config/apply", &admin, &package).await, 200);
    spec.check("GET", &p("config/versions"), &s.get("config/versions", &admin).await, 200);
    spec.check("GET", &p("config/versions/{version}"), &s.get("config/versions/1", &admin).await, 200);
    spec.check("GET", &p("config/versions/{version}"), &s.get("config/versions/99", &admin).await, 404);
    let r = s.post("rules/evaluate", &admin, &json!({ "logic": { "+": [1, 2] } })).await;
    spec.check("POST", &p("rules/evaluate"), &r, 200);

    // Refusals: no token, another role, another tenant.
    let r = send(Method::GET, p("users"), None, None).await;
    spec.check("GET", &p("users"), &r, 401);
    let viewer = s.token(&db, "viewer@chemichemi.test").await;
    spec.check("GET", &p("users"), &s.get("users", &viewer).await, 403);
    spec.check("GET", &p("webhooks"), &s.get("webhooks", &viewer).await, 403);
    assert!(spec.checked >= 60, "only {} answers checked", spec.checked);
    // The check can fail: a user without most of its members, an entity of the wrong type.
    let user_schema = json!({ "$ref": "#/components/schemas/User" });
    let bad = spec.errors(user_schema.as_object().expect("object"), &json!({ "id": user, "email": 1 }));
    assert!(bad.len() >= 2, "{bad:?}");
    let order_schema = json!({ "$ref": "#/components/schemas/OrderEntity" });
    let r = s.get(&format!("entities/customer/{}", s.sample("savanna_hotel")), &admin).await;
    assert!(!spec.errors(order_schema.as_object().expect("object"), &r.body).is_empty(), "a customer is no order");
    workers.stop(Duration::from_secs(5)).await;
}

/// Where the link `name` of the response `status` of `method path` leads, followed from
/// `body` (that response's body): the target's method and path, its `{…}` filled with the values
/// of the link's runtime expressions (`$response.body#/…`).
fn follow(doc: &Value, method: &str, path: &str, status: u16, name: &str, body: &Value) -> (Method, String) {
    let op = &doc["paths"][path][method.to_lowercase()];
    let link = &op["responses"][status.to_string()]["links"][name];
    let target = link["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} {status}: no link {name}"));
    let (target_method, target_path) = operations(doc)
        .into_iter()
        .find(|(_, _, op)| op["operationId"] == target)
        .map(|(m, p, _)| (m, p))
        .unwrap_or_else(|| panic!("no operation {target}"));
    let mut url = target_path;
    for (param, expression) in link["parameters"].as_object().expect("parameters") {
        let pointer = expression.as_str().and_then(|e| e.strip_prefix("$response.body#")).expect("a body pointer");
        let value = body.pointer(pointer).unwrap_or_else(|| panic!("{name}: {pointer} is not in {body}"));
        url = url.replace(&format!("{{{param}}}"), value.as_str().expect("a string"));
    }
    assert!(!url.contains('{'), "{name}: {url} has a parameter the link does not set");
    (Method::from_bytes(target_method.as_bytes()).expect("method"), url)
}

/// The links of the tenant's document name real operations, parameters and response fields
/// (`api::openapi::link_problems`), follow the workflow (after a creation, the transitions from
/// the first state; after a transition, those from the state it led to), and lead from real
/// answers to the same entity.
#[tokio::test]
async fn links_lead_from_real_answers_to_the_same_entity() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let doc = s.get("openapi.json", &admin).await.body;
    let problems = api::openapi::link_problems(&doc);
    assert!(problems.is_empty(), "{problems:#?}");
    let t = format!("/api/v1/t/{}", s.slug);
    let p = |rest: &str| format!("{t}/{rest}");
    let links = |method: &str, path: &str, status: &str| -> BTreeSet<String> {
        let links = &doc["paths"][p(path)][method]["responses"][status]["links"];
        links.as_object().unwrap_or_else(|| panic!("{method} {path} {status}: no links")).keys().cloned().collect()
    };
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();

    // An order is created in DRAFT (its create transition `placeOrder`), from which only
    // `submitOrder` leads on; after `submitOrder` (PENDING_APPROVAL): approve, reject, cancel.
    let reads = ["get", "history", "transitions"];
    let mut expected = names(&reads);
    expected.extend(names(&["patch", "delete", "fire_submitOrder"]));
    assert_eq!(links("post", "entities/order", "201"), expected);
    let mut expected = names(&reads);
    expected.extend(names(&["patch", "fire_approveOrder", "fire_rejectOrder", "fire_cancelOrder"]));
    assert_eq!(links("post", "entities/order/{id}/transitions/submitOrder", "200"), expected);
    assert_eq!(links("patch", "entities/order/{id}", "200"), names(&reads));
    let listed = links("get", "entities/order", "200");
    assert!(listed.contains("fire_completeDelivery") && !listed.contains("delete"), "{listed:?}");
    for (method, path, status, link) in [
        ("post", "users", "201", "invite"),
        ("get", "users", "200", "update"),
        ("post", "webhooks", "201", "delete"),
        ("get", "webhooks/{id}/deliveries", "200", "replay"),
        ("post", "api-keys", "201", "revoke"),
        ("get", "config/versions", "200", "version"),
        ("get", "types", "200", "type"),
    ] {
        assert!(links(method, path, status).contains(link), "{method} {path} {status}: {link}");
    }

    // Followed from real answers: a creation to the order, its transition, and on.
    let order_data = json!({ "customer_id": s.sample("savanna_hotel"), "warehouse_id": s.sample("main"),
                             "items": [{ "product_id": s.sample("lpg6"), "quantity": 2 }] });
    let created = s.post("entities/order", &admin, &json!({ "data": order_data })).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].clone();
    for name in reads {
        let (method, url) = follow(&doc, "POST", &p("entities/order"), 201, name, &created.body);
        let r = s.request(method, &format!("{}{url}", s.base), Some(&admin), None, &[]).await;
        assert_eq!(r.status, 200, "{name}: {url}: {:?}", r.body);
        let of = if name == "get" { &r.body["id"] } else { &id };
        assert_eq!(of, &id, "{name}");
    }
    let (method, url) = follow(&doc, "POST", &p("entities/order"), 201, "fire_submitOrder", &created.body);
    assert_eq!(url, p(&format!("entities/order/{}/transitions/submitOrder", id.as_str().expect("id"))));
    let fired = s.request(method, &format!("{}{url}", s.base), Some(&admin), Some(&json!({})), &[]).await;
    assert_eq!(fired.status, 200, "{:?}", fired.body);
    let (method, url) =
        follow(&doc, "POST", &p("entities/order/{id}/transitions/submitOrder"), 200, "get", &fired.body);
    let r = s.request(method, &format!("{}{url}", s.base), Some(&admin), None, &[]).await;
    assert_eq!((&r.body["id"], &r.body["state"]), (&id, &json!("PENDING_APPROVAL")), "{:?}", r.body);

    // From a list page: its first entity.
    let page = s.get("entities/customer?limit=1", &admin).await;
    let (method, url) = follow(&doc, "GET", &p("entities/customer"), 200, "get", &page.body);
    let r = s.request(method, &format!("{}{url}", s.base), Some(&admin), None, &[]).await;
    assert_eq!((r.status, &r.body["id"]), (200, &page.body["data"][0]["id"]), "{:?}", r.body);
}
