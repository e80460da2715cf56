//! List queries, bulk transitions and CSV over real HTTP on a real Postgres, with the `query`
//! fixture (`tests/fixtures/query`): its `ticket` type marks fields filterable, sortable and
//! searchable, one of each kind.

use std::collections::HashSet;

use engine::store::query::explain_list;
use engine::store::{ListMode, ListRequest};
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, Reply, TestServer};
use switchyard_tests::{test_db, TestDb};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

fn ids(r: &Reply) -> Vec<String> {
    r.body["data"].as_array().unwrap_or_else(|| panic!("no data: {:?}", r.body)).iter().map(id).collect()
}

/// `a=b&c=d`, each part percent-encoded.
fn qs(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// RFC 4180 records (quoted cells may hold commas, quotes and newlines).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

async fn list(s: &TestServer, token: &str, pairs: &[(&str, &str)]) -> Reply {
    s.get(&format!("entities/ticket?{}", qs(pairs)), token).await
}

/// The ids a filter selects, on one page (asserting there is no second).
async fn select(s: &TestServer, token: &str, pairs: &[(&str, &str)]) -> HashSet<String> {
    let mut all = pairs.to_vec();
    all.push(("limit", "500"));
    let r = list(s, token, &all).await;
    assert_eq!(r.status, 200, "{pairs:?}: {:?}", r.body);
    assert!(r.body["next_cursor"].is_null());
    ids(&r).into_iter().collect()
}

struct Fixture {
    db: TestDb,
    s: TestServer,
    agent: String,
    clients: Vec<String>,
    /// The tickets as created (their JSON), in creation order.
    tickets: Vec<Value>,
}

/// Twelve tickets with values of every kind, some missing.
async fn fixture() -> Fixture {
    let db = test_db().await;
    let s = TestServer::start(&db, "query").await;
    let agent = s.token(&db, "agent@query.test").await;
    let mut clients = Vec::new();
    for name in ["Acme", "Globex"] {
        clients.push(id(&s.create(&agent, "client", json!({ "name": name })).await));
    }
    let mut tickets = Vec::new();
    for i in 0..12i64 {
        let priority = ["low", "normal", "high"][(i % 3) as usize];
        let mut data = json!({
            "code": format!("T-{:03}", (i * 7) % 12),
            "subject": if i % 2 == 0 { format!("Broken pump {i}") } else { format!("Invoice query {i}") },
            "body": if i == 3 { "Customer says: 50% discount_promised".to_string() } else { format!("ticket body {i}") },
            "internal": "secret words",
            "client_id": clients[(i % 2) as usize],
            "priority": priority,
            "quantity": i % 4,
            "due": format!("2026-0{}-1{}", 1 + i % 3, i % 10),
            "urgent": i % 4 == 0,
            "tags": ["a", format!("t{i}")],
            "details": { "note": format!("n{i}") },
        });
        // Amount missing on every fourth ticket, and a tie on 20.
        if i % 4 != 1 {
            data["amount"] =
                [5.5, 20.0, 20.0, 700.0, 1500.0, 3.0, 42.25, 999.0, 1000.0, 0.0, 64.0, 12.0][i as usize].into();
        }
        if i >= 9 {
            data["closed_at"] = json!(format!("2026-02-0{}T10:00:00+02:00", i - 8));
        }
        tickets.push(s.create(&agent, "ticket", data).await);
    }
    Fixture { db, s, agent, clients, tickets }
}

impl Fixture {
    /// The ids of the tickets whose data satisfies `pred`.
    fn expect(&self, pred: impl Fn(&Value) -> bool) -> HashSet<String> {
        self.tickets.iter().filter(|t| pred(t)).map(id).collect()
    }
}

#[tokio::test]
async fn filters_of_every_kind_select_the_right_rows() {
    let f = fixture().await;
    let (s, a) = (&f.s, f.agent.as_str());
    let d = |t: &Value, k: &str| t["data"][k].clone();

    // Equality: string, enum (both syntaxes), reference, boolean, date.
    assert_eq!(select(s, a, &[("code", "T-007")]).await, f.expect(|t| d(t, "code") == "T-007"));
    assert_eq!(select(s, a, &[("priority", "high")]).await, f.expect(|t| d(t, "priority") == "high"));
    assert_eq!(select(s, a, &[("priority[eq]", "high")]).await, f.expect(|t| d(t, "priority") == "high"));
    let acme = f.clients[0].as_str();
    assert_eq!(select(s, a, &[("client_id", acme)]).await, f.expect(|t| d(t, "client_id") == acme));
    assert_eq!(select(s, a, &[("urgent", "true")]).await, f.expect(|t| d(t, "urgent") == true));
    assert_eq!(select(s, a, &[("due", "2026-02-14")]).await, f.expect(|t| d(t, "due") == "2026-02-14"));

    // Ranges: number (the missing ones never match), date, datetime, integer (sortable only).
    let amount = |t: &Value| t["data"]["amount"].as_f64();
    assert_eq!(
        select(s, a, &[("amount[gte]", "20"), ("amount[lt]", "999")]).await,
        f.expect(|t| amount(t).is_some_and(|x| (20.0..999.0).contains(&x)))
    );
    assert_eq!(select(s, a, &[("amount[gt]", "1000")]).await, f.expect(|t| amount(t).is_some_and(|x| x > 1000.0)));
    assert_eq!(select(s, a, &[("amount[lte]", "5.5")]).await, f.expect(|t| amount(t).is_some_and(|x| x <= 5.5)));
    assert_eq!(
        select(s, a, &[("due[gte]", "2026-02-01"), ("due[lte]", "2026-02-28")]).await,
        f.expect(|t| d(t, "due").as_str().is_some_and(|x| x.starts_with("2026-02")))
    );
    // 2026-02-02T10:00+02:00 = 08:00Z: strictly before 08:00:01Z are the first two.
    assert_eq!(
        select(s, a, &[("closed_at[lt]", "2026-02-02T08:00:01Z")]).await,
        f.expect(|t| matches!(d(t, "closed_at").as_str(), Some(x) if x < "2026-02-02T11"))
    );
    assert_eq!(select(s, a, &[("quantity[gte]", "3")]).await, f.expect(|t| d(t, "quantity").as_i64() >= Some(3)));

    // `in`, on a field and on state; null and not null.
    assert_eq!(
        select(s, a, &[("priority[in]", "low,high")]).await,
        f.expect(|t| d(t, "priority") == "low" || d(t, "priority") == "high")
    );
    assert_eq!(
        select(s, a, &[("amount[in]", "20,64")]).await,
        f.expect(|t| amount(t) == Some(20.0) || amount(t) == Some(64.0))
    );
    assert_eq!(select(s, a, &[("amount[null]", "true")]).await, f.expect(|t| amount(t).is_none()));
    assert_eq!(select(s, a, &[("amount[null]", "false")]).await, f.expect(|t| amount(t).is_some()));
    assert_eq!(select(s, a, &[("state", "OPEN")]).await.len(), 12);
    assert_eq!(select(s, a, &[("state[in]", "CLOSED")]).await.len(), 0);

    // id and timestamps.
    let first = id(&f.tickets[0]);
    assert_eq!(select(s, a, &[("id", &first)]).await, HashSet::from([first.clone()]));
    let six = format!("{},{}", id(&f.tickets[5]), id(&f.tickets[6]));
    assert_eq!(select(s, a, &[("id[in]", &six)]).await.len(), 2);
    let created = f.tickets[6]["created_at"].as_str().expect("created_at");
    assert_eq!(select(s, a, &[("created_at[gte]", created)]).await, f.tickets[6..].iter().map(id).collect());

    // Filters combine (AND).
    assert_eq!(
        select(s, a, &[("client_id", acme), ("amount[null]", "false"), ("priority[in]", "low,normal")]).await,
        f.expect(|t| d(t, "client_id") == acme
            && amount(t).is_some()
            && (d(t, "priority") == "low" || d(t, "priority") == "normal"))
    );
    f.db.drop_db().await.expect("drop");
}

/// Walks every page of a list and returns the ids in order.
async fn walk(s: &TestServer, token: &str, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut all = pairs.to_vec();
        if let Some(c) = &cursor {
            all.push(("cursor", c));
        }
        let r = list(s, token, &all).await;
        assert_eq!(r.status, 200, "{pairs:?}: {:?}", r.body);
        out.extend(ids(&r));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

#[tokio::test]
async fn sorts_paginate_with_cursors_without_duplicates_or_gaps() {
    let f = fixture().await;
    let (s, a) = (&f.s, f.agent.as_str());
    let all: HashSet<String> = f.tickets.iter().map(id).collect();

    // By amount: by value then id (ties on 20), in the direction asked; missing amounts last
    // either way, by id in the same direction.
    let by_amount = |desc: bool| -> Vec<String> {
        let mut rows: Vec<(Option<f64>, String)> =
            f.tickets.iter().map(|t| (t["data"]["amount"].as_f64(), id(t))).collect();
        rows.sort_by(|x, y| {
            let dir = |o: std::cmp::Ordering| if desc { o.reverse() } else { o };
            match (x.0, y.0) {
                (Some(a), Some(b)) => dir(a.total_cmp(&b).then(x.1.cmp(&y.1))),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => dir(x.1.cmp(&y.1)),
            }
        });
        rows.into_iter().map(|(_, i)| i).collect()
    };
    let (asc, desc) = (by_amount(false), by_amount(true));
    assert_eq!(f.tickets[1]["data"].get("amount"), None);
    for limit in ["1", "2", "3", "5", "50"] {
        assert_eq!(walk(s, a, &[("sort", "amount"), ("limit", limit)]).await, asc, "limit {limit}");
        assert_eq!(walk(s, a, &[("sort", "-amount"), ("limit", limit)]).await, desc, "limit {limit}");
    }
    // A filter on the sort key that excludes the missing ones reads one segment.
    let present: Vec<String> =
        asc.iter().filter(|i| f.expect(|t| t["data"]["amount"].is_number()).contains(*i)).cloned().collect();
    assert_eq!(walk(s, a, &[("sort", "amount"), ("amount[gte]", "0"), ("limit", "2")]).await, present);
    let missing: Vec<String> = desc.iter().filter(|i| !present.contains(i)).cloned().collect();
    assert_eq!(walk(s, a, &[("sort", "-amount"), ("amount[null]", "true"), ("limit", "2")]).await, missing);

    // Every other sort visits every row exactly once, in its order.
    for sort in [
        "code",
        "-code",
        "due",
        "-due",
        "closed_at",
        "-closed_at",
        "quantity",
        "-quantity",
        "created_at",
        "-created_at",
        "updated_at",
        "id",
        "-id",
    ] {
        let got = walk(s, a, &[("sort", sort), ("limit", "4")]).await;
        assert_eq!(got.len(), 12, "{sort}: {got:?}");
        assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), all, "{sort}");
        let one_page = ids(&list(s, a, &[("sort", sort), ("limit", "100")]).await);
        assert_eq!(got, one_page, "{sort}: pages differ from one page");
    }
    // Codes sort as text.
    let codes: Vec<String> = {
        let r = list(s, a, &[("sort", "-code"), ("limit", "100")]).await;
        r.body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|t| t["data"]["code"].as_str().expect("code").to_string())
            .collect()
    };
    let mut sorted = codes.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(codes, sorted);
    // Default: id order (creation order: ids are uuid v7), as before.
    assert_eq!(walk(s, a, &[("limit", "5")]).await, f.tickets.iter().map(id).collect::<Vec<_>>());

    // A filter with a sort, across pages.
    let acme = f.clients[0].as_str();
    let got = walk(s, a, &[("client_id", acme), ("sort", "-amount"), ("limit", "2")]).await;
    let want: Vec<String> =
        asc.iter().rev().filter(|i| f.expect(|t| t["data"]["client_id"] == acme).contains(*i)).cloned().collect();
    assert_eq!(got, want);

    // `total` counts the filter, not the page.
    let r = list(s, a, &[("total", "true"), ("limit", "2"), ("amount[null]", "false")]).await;
    assert_eq!((r.body["total"].clone(), ids(&r).len()), (json!(9), 2), "{:?}", r.body);
    let r = list(s, a, &[("limit", "2")]).await;
    assert!(r.body.get("total").is_none(), "total only when asked");

    // A cursor belongs to its sort.
    let r = list(s, a, &[("sort", "amount"), ("limit", "2")]).await;
    let cursor = r.body["next_cursor"].as_str().expect("cursor").to_string();
    let r = list(s, a, &[("sort", "-amount"), ("cursor", &cursor)]).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["errors"][0]["path"], "/cursor");
    f.db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn q_searches_the_title_and_searchable_fields() {
    let f = fixture().await;
    let (s, a) = (&f.s, f.agent.as_str());
    let subject = |t: &Value, w: &str| t["data"]["subject"].as_str().is_some_and(|x| x.contains(w));
    // Title fields (code, subject), case-insensitive, every word.
    assert_eq!(select(s, a, &[("q", "pump")]).await, f.expect(|t| subject(t, "pump")));
    assert_eq!(select(s, a, &[("q", "BROKEN Pump 4")]).await, f.expect(|t| subject(t, "pump 4")));
    assert_eq!(select(s, a, &[("q", "t-007")]).await, f.expect(|t| t["data"]["code"] == "T-007"));
    // A searchable field; `%` and `_` are literal.
    assert_eq!(select(s, a, &[("q", "50% discount_")]).await, HashSet::from([id(&f.tickets[3])]));
    assert_eq!(select(s, a, &[("q", "5_%")]).await, HashSet::new());
    // Not searchable: nothing.
    assert_eq!(select(s, a, &[("q", "secret")]).await, HashSet::new());
    // With a filter, and a sort.
    let r = list(s, a, &[("q", "invoice"), ("priority", "low"), ("sort", "-code"), ("total", "true")]).await;
    let want = f.expect(|t| subject(t, "Invoice") && t["data"]["priority"] == "low");
    assert_eq!(ids(&r).into_iter().collect::<HashSet<_>>(), want);
    assert_eq!(r.body["total"], json!(want.len()));
    f.db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn bad_parameters_are_422_naming_the_parameter() {
    let f = fixture().await;
    let (s, a) = (&f.s, f.agent.as_str());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("colour", "red")], "/colour"),
        (&[("internal", "x")], "/internal"),
        (&[("subject", "x")], "/subject"),
        (&[("tags", "a")], "/tags"),
        (&[("amount[between]", "1")], "/amount[between]"),
        (&[("amount[gte", "1")], "/amount[gte"),
        (&[("amount", "abc")], "/amount"),
        (&[("amount", "NaN")], "/amount"),
        (&[("quantity", "1.5")], "/quantity"),
        (&[("due", "2026-13-01")], "/due"),
        (&[("closed_at[lt]", "yesterday")], "/closed_at[lt]"),
        (&[("client_id", "acme")], "/client_id"),
        (&[("urgent", "yes")], "/urgent"),
        (&[("priority", "urgent")], "/priority"),
        (&[("priority[gt]", "low")], "/priority[gt]"),
        (&[("priority[in]", "low,urgent")], "/priority[in]"),
        (&[("state", "NOPE")], "/state"),
        (&[("state[null]", "true")], "/state[null]"),
        (&[("amount[null]", "maybe")], "/amount[null]"),
        (&[("id", "42")], "/id"),
        (&[("sort", "subject")], "/sort"),
        (&[("sort", "-priority")], "/sort"),
        (&[("sort", "nope")], "/sort"),
        (&[("sort", "state")], "/sort"),
        (&[("limit", "0")], "/limit"),
        (&[("limit", "501")], "/limit"),
        (&[("limit", "ten")], "/limit"),
        (&[("total", "yes")], "/total"),
        (&[("cursor", "not-a-cursor")], "/cursor"),
        (&[("limit", "1"), ("limit", "2")], "/limit"),
    ];
    for (pairs, path) in cases {
        let r = list(s, a, pairs).await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{pairs:?}: {:?}", r.body);
        let paths = r.error_paths();
        assert!(paths.contains(path), "{pairs:?}: {paths:?}");
    }
    // Every problem at once.
    let r = list(s, a, &[("colour", "red"), ("sort", "subject"), ("limit", "0")]).await;
    assert_eq!(r.body["error"]["details"]["errors"].as_array().map(Vec::len), Some(3), "{:?}", r.body);
    // Unknown type: 404.
    let r = s.get("entities/spaceship?code=x", a).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    f.db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn injection_attempts_are_refused_or_match_nothing() {
    let f = fixture().await;
    let (s, a) = (&f.s, f.agent.as_str());
    for pairs in [
        &[("code') or 1=1; drop table entities; --", "x")][..],
        &[("data->>'code'", "T-001")],
        &[("amount[gte]); drop table entities; --", "1")],
        &[("sort", "amount; drop table entities")],
        &[("sort", "(select 1)")],
        &[("amount", "1 or 1=1")],
        &[("client_id", "' or ''='")],
        &[("state", "OPEN' or '1'='1")],
    ] {
        let r = list(s, a, pairs).await;
        assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{pairs:?}: {:?}", r.body);
    }
    for pairs in [
        &[("code", "x' or '1'='1")][..],
        &[("code", "T-001'; drop table entities; --")],
        &[("code[in]", "a','b")],
        &[("q", "%' or 1=1; drop table entities; --")],
    ] {
        let r = list(s, a, pairs).await;
        assert_eq!(r.status, 200, "{pairs:?}: {:?}", r.body);
        assert_eq!(ids(&r), Vec::<String>::new(), "{pairs:?}");
    }
    // The table is there, with every row.
    let n: i64 = sqlx::query_scalar("select count(*) from entities where type = 'ticket'")
        .fetch_one(&f.db.owner)
        .await
        .expect("entities still exists");
    assert_eq!(n, 12);
    assert_eq!(select(s, a, &[]).await.len(), 12);
    f.db.drop_db().await.expect("drop");
}

/// The names of the indexes a plan reads, and whether it has a sequential scan of `entities`.
fn plan_facts(plan: &Value, indexes: &mut Vec<String>, conds: &mut Vec<String>, seq: &mut bool) {
    match plan {
        Value::Object(m) => {
            if m.get("Node Type") == Some(&json!("Seq Scan")) {
                *seq = true;
            }
            if let Some(Value::String(i)) = m.get("Index Name") {
                indexes.push(i.clone());
            }
            if let Some(Value::String(c)) = m.get("Index Cond") {
                conds.push(c.clone());
            }
            m.values().for_each(|v| plan_facts(v, indexes, conds, seq));
        }
        Value::Array(a) => a.iter().for_each(|v| plan_facts(v, indexes, conds, seq)),
        _ => {}
    }
}

#[tokio::test]
async fn filtered_sorted_lists_of_100k_entities_use_the_field_indexes() {
    let db = test_db().await;
    let s = TestServer::start(&db, "query").await;
    let agent = s.token(&db, "agent@query.test").await;

    // The publish made one index per filterable or sortable field, named deterministically.
    let package = tenants::Package::load_dir(&package_dir("query")).expect("package");
    let wanted = tenants::indexes::wanted(s.tenant, &package);
    // Eight fields, and the search indexes of ticket (code, subject, body) and client (name).
    assert_eq!(wanted.len(), 10, "{wanted:?}");
    assert_eq!(wanted.iter().filter(|w| w.search).count(), 2, "{wanted:?}");
    let present: Vec<String> =
        sqlx::query_scalar("select indexname::text from pg_indexes where tablename in (select inhrelid::regclass::text from pg_inherits where inhparent = 'entities'::regclass)")
            .fetch_all(&db.owner)
            .await
            .expect("indexes");
    for w in &wanted {
        assert!(present.contains(&w.name), "{} ({}) missing", w.name, w.field);
    }
    // Applying again builds nothing.
    let again = tenants::indexes::ensure(&db.owner, s.tenant, &package).await.expect("ensure");
    assert_eq!((again.created.len(), again.kept.len(), again.dropped.len()), (0, 10, 0));

    let mut tx = db.tenant_tx(s.tenant).await;
    sqlx::query(
        "insert into entities (tenant_id, id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by) \
         select $1, gen_random_uuid(), 'ticket', case when g % 10 = 0 then 'CLOSED' else 'OPEN' end, \
                jsonb_build_object( \
                    'code', 'T-' || lpad(g::text, 6, '0'), \
                    'subject', 'Generated ticket ' || g, \
                    'amount', ((g * 7919) % 100000) / 100.0, \
                    'quantity', g % 50, \
                    'priority', (array['low', 'normal', 'high'])[g % 3 + 1], \
                    'client_id', md5('client' || (g % 500))::uuid::text, \
                    'due', to_char(date '2026-01-01' + (g % 365), 'YYYY-MM-DD'), \
                    'urgent', g % 7 = 0), \
                1, (select live_version from tenants where id = $1), \
                now() - make_interval(secs => g), now() - make_interval(secs => g), 'bulk', 'bulk' \
         from generate_series(1, 100000) g",
    )
    .bind(s.tenant)
    .execute(&mut *tx)
    .await
    .expect("insert 100k");
    tx.commit().await.expect("commit");
    sqlx::query("analyze entities").execute(&db.owner).await.expect("analyze");

    let client: String =
        sqlx::query_scalar("select md5('client' || 7)::uuid::text").fetch_one(&db.owner).await.expect("md5");
    let first = s
        .get(
            &format!("entities/ticket?{}", qs(&[("client_id", &client), ("sort", "-amount"), ("limit", "20")])),
            &agent,
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let amounts: Vec<f64> = first.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["data"]["amount"].as_f64().expect("amount"))
        .collect();
    assert_eq!(amounts.len(), 20);
    assert!(amounts.windows(2).all(|w| w[0] >= w[1]), "{amounts:?}");
    assert!(first.body["data"].as_array().expect("data").iter().all(|t| t["data"]["client_id"] == client.as_str()));
    let cursor = first.body["next_cursor"].as_str().expect("cursor").to_string();

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("client_id", &client), ("sort", "-amount"), ("limit", "20")], "field_"),
        (vec![("client_id", &client), ("sort", "-amount"), ("limit", "20"), ("cursor", &cursor)], "field_"),
        (vec![("amount[gte]", "500"), ("amount[lt]", "510"), ("sort", "amount")], "field_number"),
        (vec![("amount[gte]", "990"), ("sort", "-amount"), ("state", "OPEN")], "field_number"),
        (vec![("code", "T-012345")], "field_text"),
        (vec![("due[gte]", "2026-06-01"), ("due[lt]", "2026-06-03"), ("sort", "due")], "field_text"),
        (vec![("quantity", "7"), ("sort", "-quantity"), ("limit", "100")], "field_number"),
        (vec![("state", "CLOSED"), ("sort", "-created_at")], ""),
        (vec![("priority[in]", "high"), ("urgent", "true"), ("sort", "code")], ""),
    ];
    for (pairs, cond) in cases {
        let request = ListRequest::from_pairs(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ListMode::List,
        );
        // Each statement of the page (non-null keys, then missing ones).
        let plans =
            explain_list(&s.store, s.tenant, &engine::store::timer_actor(), "ticket", &request).await.expect("explain");
        assert!(!plans.is_empty());
        for plan in &plans {
            let (mut indexes, mut conds, mut seq) = (Vec::new(), Vec::new(), false);
            plan_facts(plan, &mut indexes, &mut conds, &mut seq);
            eprintln!("{pairs:?}: indexes {indexes:?}, conditions {conds:?}");
            assert!(!seq, "{pairs:?}: a sequential scan\n{plan:#}");
            assert!(!indexes.is_empty(), "{pairs:?}: no index\n{plan:#}");
            if !cond.is_empty() {
                // Row-level security lets a condition into an index scan only when it is
                // leakproof: the accessors are, so field conditions are index conditions.
                assert!(indexes.iter().any(|i| i.starts_with("entities_q_")), "{pairs:?}: {indexes:?}\n{plan:#}");
                assert!(conds.iter().any(|c| c.contains(cond)), "{pairs:?}: {conds:?}\n{plan:#}");
            }
        }
        // And the answer over HTTP is what the filter says.
        let r = s.get(&format!("entities/ticket?{}", qs(&pairs)), &agent).await;
        assert_eq!(r.status, 200, "{pairs:?}: {:?}", r.body);
    }
    let r = s
        .get(
            &format!("entities/ticket?{}", qs(&[("amount[gte]", "500"), ("amount[lt]", "510"), ("total", "true")])),
            &agent,
        )
        .await;
    let want: i64 = sqlx::query_scalar(
        "select count(*) from entities where tenant_id = $1 and type = 'ticket' and (data->>'amount')::numeric >= 500 and (data->>'amount')::numeric < 510",
    )
    .bind(s.tenant)
    .fetch_one(&db.owner)
    .await
    .expect("count");
    assert_eq!(r.body["total"], json!(want));
    assert_eq!(r.body["total_exact"], json!(true));

    // Searches use the type's trigram index (an index condition under row-level security, not a
    // filter over a scan), and find what `ilike` finds.
    for (q, want) in [("T-012345", vec![12345]), ("ticket 99999", vec![99999]), ("t-01234", (12340..=12349).collect())]
    {
        let request =
            ListRequest::from_pairs(vec![("q".into(), q.into()), ("sort".into(), "-code".into())], ListMode::List);
        let plans =
            explain_list(&s.store, s.tenant, &engine::store::timer_actor(), "ticket", &request).await.expect("explain");
        // The rows with a code, by the search index; then those without one (none: `code` is
        // required), by the code index.
        let search_index = wanted.iter().find(|w| w.search && w.type_name == "ticket").expect("ticket's search index");
        for (i, plan) in plans.iter().enumerate() {
            let (mut indexes, mut conds, mut seq) = (Vec::new(), Vec::new(), false);
            plan_facts(plan, &mut indexes, &mut conds, &mut seq);
            assert!(!seq, "q={q}: a sequential scan\n{plan:#}");
            if i == 0 {
                assert!(
                    conds.iter().any(|c| c.contains("search_text(data") && c.contains("~~%")),
                    "q={q}: {conds:?}\n{plan:#}"
                );
                assert!(indexes.contains(&search_index.name), "q={q}: {indexes:?}");
            }
        }
        let r =
            s.get(&format!("entities/ticket?{}", qs(&[("q", q), ("sort", "code"), ("limit", "100")])), &agent).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let codes: Vec<String> = r.body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|t| t["data"]["code"].as_str().unwrap_or("").to_string())
            .collect();
        let want: Vec<String> = want.iter().map(|n| format!("T-{n:06}")).collect();
        assert_eq!(codes, want, "q={q}");
    }

    // A count past the cap says so; its statement reads at most the cap's worth of rows (a Limit
    // under the count: by an index or, when the planner finds it cheaper, by a scan that stops
    // at the cap).
    sqlx::query("vacuum analyze entities").execute(&db.owner).await.expect("vacuum");
    let r = s
        .get(&format!("entities/ticket?{}", qs(&[("state", "OPEN"), ("total", "true"), ("limit", "1")])), &agent)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["total"].clone(), r.body["total_exact"].clone()),
        (json!(engine::store::query::TOTAL_CAP), json!(false))
    );
    let request =
        ListRequest::from_pairs(vec![("state".into(), "OPEN".into()), ("total".into(), "true".into())], ListMode::List);
    let plans =
        explain_list(&s.store, s.tenant, &engine::store::timer_actor(), "ticket", &request).await.expect("explain");
    let count = plans.last().expect("the count's plan");
    assert!(count.to_string().contains("\"Node Type\":\"Limit\""), "{count:#}");
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn indexes_follow_the_ontology() {
    let db = test_db().await;
    let s = TestServer::start(&db, "query").await;
    let mut package = tenants::Package::load_dir(&package_dir("query")).expect("package");
    let before = tenants::indexes::wanted(s.tenant, &package);
    let ticket = package.types.iter_mut().find(|t| t.name.as_str() == "ticket").expect("ticket");
    let amount = ticket.fields.iter_mut().find(|(n, _)| n.as_str() == "amount").expect("amount").1;
    amount.filterable = false;
    amount.sortable = false;
    let report = tenants::indexes::ensure(&db.owner, s.tenant, &package).await.expect("ensure");
    assert_eq!((report.created.len(), report.kept.len(), report.dropped.len()), (0, 9, 1), "{report:?}");
    let gone = before.iter().find(|w| w.field == "amount").expect("amount index");
    assert_eq!(report.dropped, vec![gone.name.clone()]);
    db.drop_db().await.expect("drop");
}

async fn states(db: &TestDb, s: &TestServer) -> Vec<(String, String, i64)> {
    let mut tx = db.tenant_tx(s.tenant).await;
    let rows: Vec<(uuid::Uuid, String, i64)> =
        sqlx::query_as("select id, state, version from entities where tenant_id = $1 and type = 'ticket' order by id")
            .bind(s.tenant)
            .fetch_all(&mut *tx)
            .await
            .expect("states");
    tx.commit().await.expect("commit");
    rows.into_iter().map(|(i, st, v)| (i.to_string(), st, v)).collect()
}

fn result_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {report}"))
}

#[tokio::test]
async fn bulk_transitions_report_each_entity() {
    let f = fixture().await;
    let (s, a) = (&f.s, f.agent.as_str());
    let viewer = s.token(&f.db, "viewer@query.test").await;
    let before = states(&f.db, s).await;

    // Dry run, by filter: the report says what would happen, and nothing changes.
    let r = s.post("entities/ticket/transitions/close", a, &json!({ "filter": {}, "dry_run": true })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["dry_run"], true);
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(12));
    let big = f.expect(|t| t["data"]["amount"].as_f64().is_some_and(|x| x >= 1000.0));
    assert_eq!((r.body["succeeded"].clone(), r.body["failed"].clone()), (json!(12 - big.len()), json!(big.len())));
    assert_eq!(states(&f.db, s).await, before, "a dry run changed something");

    // By ids: closed, guard failure, unknown id, and the same again (already closed).
    let small = id(&f.tickets[0]); // amount 5.5
    let large = id(&f.tickets[4]); // amount 1500
    let missing = uuid::Uuid::now_v7().to_string();
    let r = s
        .post("entities/ticket/transitions/close", a, &json!({ "ids": [small, large, missing, small], "input": {} }))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let results = r.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], json!({ "id": small, "ok": true }));
    assert_eq!((results[1]["ok"].clone(), results[1]["error"]["code"].clone()), (json!(false), json!("GUARD_FAILED")));
    assert_eq!(results[1]["error"]["message"], "Tickets of 1000 or more are closed one by one");
    assert_eq!(results[2]["error"]["code"], "NOT_FOUND");
    assert_eq!(results[3]["error"]["code"], "INVALID_TRANSITION");
    assert_eq!((r.body["succeeded"].clone(), r.body["failed"].clone()), (json!(1), json!(3)));
    assert!(r.body.get("dry_run").is_none());

    // Roles are checked per entity.
    let r = s.post("entities/ticket/transitions/close", &viewer, &json!({ "ids": [id(&f.tickets[2])] })).await;
    assert_eq!(result_of(&r.body, &id(&f.tickets[2]))["error"]["code"], "FORBIDDEN");

    // By filter: the Acme tickets still open.
    let acme = f.clients[0].clone();
    let r = s
        .post("entities/ticket/transitions/close", a, &json!({ "filter": { "client_id": acme, "state": "OPEN" } }))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let targets = f.expect(|t| t["data"]["client_id"] == acme.as_str() && id(t) != small);
    let got: HashSet<String> = r.body["results"].as_array().expect("results").iter().map(id).collect();
    assert_eq!(got, targets);
    for t in &targets {
        let want_ok = !big.contains(t);
        assert_eq!(result_of(&r.body, t)["ok"], want_ok, "{t}: {}", r.body);
    }
    let open_acme = select(s, a, &[("client_id", &acme), ("state", "OPEN")]).await;
    assert_eq!(open_acme, targets.intersection(&big).cloned().collect());
    // Closing stamped closed_at through the script.
    let closed = s.get(&format!("entities/ticket/{small}"), a).await;
    assert!(closed.body["data"]["closed_at"].is_string(), "{:?}", closed.body);

    // Filters are checked like a list's; ids must be ids; one of the two.
    let r = s.post("entities/ticket/transitions/close", a, &json!({ "filter": { "internal": "x" } })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["errors"][0]["path"], "/filter/internal");
    let r = s.post("entities/ticket/transitions/close", a, &json!({ "filter": { "sort": "amount" } })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let r = s.post("entities/ticket/transitions/close", a, &json!({ "ids": ["nope"] })).await;
    assert_eq!(r.body["error"]["details"]["errors"][0]["path"], "/ids/0");
    let r = s.post("entities/ticket/transitions/close", a, &json!({ "ids": [], "filter": {} })).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"));
    let r = s.post("entities/spaceship/transitions/close", a, &json!({ "ids": [] })).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    f.db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn a_bulk_transition_of_an_unknown_name_is_refused_up_front() {
    let f = fixture().await;
    let (s, a) = (&f.s, f.agent.as_str());
    let before = (states(&f.db, s).await, history_rows(&f.db, s).await);

    // Once, as a 404 naming the transition and listing the type's, not one error per entity;
    // whatever the body selects (even ids that are not ids: nothing is read).
    let mine = id(&f.tickets[0]);
    for body in [
        json!({ "ids": [mine, uuid::Uuid::now_v7().to_string()] }),
        json!({ "filter": {}, "dry_run": true }),
        json!({ "filter": { "state": "OPEN" }, "input": {} }),
        json!({ "ids": ["nope"] }),
    ] {
        let r = s.post("entities/ticket/transitions/reopen", a, &body).await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{body}: {:?}", r.body);
        let details = &r.body["error"]["details"];
        assert_eq!(details["transition"], "reopen", "{:?}", r.body);
        assert_eq!(details["type"], "ticket");
        assert_eq!(details["available"], json!(["close"]), "{:?}", r.body);
        assert!(r.body["error"]["message"].as_str().is_some_and(|m| m.contains("`reopen`")), "{:?}", r.body);
        assert!(r.body.get("results").is_none());
    }
    // Even for a role that could fire nothing (type-level view is all the check needs).
    let viewer = s.token(&f.db, "viewer@query.test").await;
    let r = s.post("entities/ticket/transitions/reopen", &viewer, &json!({ "filter": {} })).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    // An unknown type is still the type's 404; a known name still runs per entity.
    let r = s.post("entities/spaceship/transitions/reopen", a, &json!({ "ids": [] })).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
    assert!(r.body["error"]["details"].is_null(), "{:?}", r.body);
    let r = s.post("entities/ticket/transitions/close", a, &json!({ "ids": [mine], "dry_run": true })).await;
    assert_eq!((r.status, r.body["succeeded"].clone()), (200, json!(1)), "{:?}", r.body);

    assert_eq!((states(&f.db, s).await, history_rows(&f.db, s).await), before, "an entity or its history changed");
    f.db.drop_db().await.expect("drop");
}

/// How many history rows (executed transitions) the tenant has.
async fn history_rows(db: &TestDb, s: &TestServer) -> i64 {
    let mut tx = db.tenant_tx(s.tenant).await;
    let n = sqlx::query_scalar("select count(*) from transitions where tenant_id = $1")
        .bind(s.tenant)
        .fetch_one(&mut *tx)
        .await
        .expect("history rows");
    tx.commit().await.expect("commit");
    n
}

async fn count(s: &TestServer, token: &str) -> i64 {
    let r = s.get("entities/ticket?total=true&limit=1", token).await;
    r.body["total"].as_i64().expect("total")
}

async fn raw(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut req = reqwest::Client::new().request(method, s.url(path)).bearer_auth(token);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct).body(body.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, resp.text().await.expect("body"))
}

#[tokio::test]
async fn csv_export_streams_the_filtered_list() {
    let f = fixture().await;
    let (s, a) = (&f.s, f.agent.as_str());
    let formula = s
        .create(
            a,
            "ticket",
            json!({ "code": "=HYPERLINK(\"http://x\")", "subject": "a, \"quoted\"\nline", "amount": 1 }),
        )
        .await;

    let (status, ct, body) = raw(
        s,
        reqwest::Method::GET,
        &format!("entities/ticket/export.csv?{}", qs(&[("sort", "-amount")])),
        a,
        None,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    let mut records = parse_csv(&body);
    let header = records.remove(0);
    assert_eq!(
        header,
        [
            "id",
            "state",
            "version",
            "created_at",
            "code",
            "subject",
            "body",
            "internal",
            "client_id",
            "priority",
            "amount",
            "quantity",
            "due",
            "closed_at",
            "urgent",
            "tags",
            "details"
        ]
    );
    let rows = records;
    assert_eq!(rows.len(), 13);
    // In the list's order, every row once.
    let listed = walk(s, a, &[("sort", "-amount"), ("limit", "500")]).await;
    assert_eq!(rows.iter().map(|r| r[0].to_string()).collect::<Vec<_>>(), listed);
    let by_id = |i: &str| rows.iter().find(|r| r[0] == i).expect("row").clone();
    let t0 = by_id(&id(&f.tickets[0]));
    assert_eq!(
        (t0[1].as_str(), t0[2].as_str(), t0[4].as_str(), t0[10].as_str(), t0[14].as_str()),
        ("OPEN", "1", f.tickets[0]["data"]["code"].as_str().expect("code"), "5.5", "true")
    );
    assert_eq!(serde_json::from_str::<Value>(&t0[15]).expect("tags json"), json!(["a", "t0"]));
    assert_eq!(serde_json::from_str::<Value>(&t0[16]).expect("details json"), json!({ "note": "n0" }));
    let t1 = by_id(&id(&f.tickets[1]));
    assert_eq!(t1[10], "", "a missing value is an empty cell");
    // Quotes, commas and newlines survive; a formula does not reach a spreadsheet as one.
    let fr = by_id(&id(&formula));
    assert_eq!((fr[4].as_str(), fr[5].as_str()), ("'=HYPERLINK(\"http://x\")", "a, \"quoted\"\nline"));

    // Filters apply; bad ones are 422 before anything is sent; a page size is the server's.
    let (status, _, body) = raw(
        s,
        reqwest::Method::GET,
        &format!("entities/ticket/export.csv?{}", qs(&[("priority", "high")])),
        a,
        None,
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(parse_csv(&body).len() - 1, select(s, a, &[("priority", "high")]).await.len());
    for bad in [qs(&[("internal", "x")]), qs(&[("limit", "5")])] {
        let (status, _, body) =
            raw(s, reqwest::Method::GET, &format!("entities/ticket/export.csv?{bad}"), a, None, "").await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    f.db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn export_walks_many_pages() {
    let db = test_db().await;
    let s = TestServer::start(&db, "query").await;
    let agent = s.token(&db, "agent@query.test").await;
    let mut tx = db.tenant_tx(s.tenant).await;
    sqlx::query(
        "insert into entities (tenant_id, id, type, state, data, version, config_version, created_by, updated_by) \
         select $1, gen_random_uuid(), 'ticket', 'OPEN', jsonb_build_object('code', 'G-' || g, 'amount', g % 17), 1, \
                (select live_version from tenants where id = $1), 'bulk', 'bulk' from generate_series(1, 1234) g",
    )
    .bind(s.tenant)
    .execute(&mut *tx)
    .await
    .expect("insert");
    tx.commit().await.expect("commit");
    let (status, _, body) =
        raw(&s, reqwest::Method::GET, "entities/ticket/export.csv?sort=amount", &agent, None, "").await;
    assert_eq!(status, 200);
    let ids: Vec<String> = parse_csv(&body).into_iter().skip(1).map(|r| r[0].clone()).collect();
    assert_eq!(ids.len(), 1234);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1234, "no row twice");
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn imports_create_valid_rows_and_report_the_rest() {
    let db = test_db().await;
    let s = TestServer::start(&db, "query").await;
    let a = s.token(&db, "agent@query.test").await;

    let csv_body = "code,subject,amount,quantity,urgent,due,tags,details,priority\n\
                    I-1,First,12.5,3,true,2026-03-01,\"[\"\"x\"\"]\",\"{\"\"note\"\":\"\"hi\"\"}\",high\n\
                    I-2,Bad amount,lots,1,false,,,,\n\
                    ,Missing code,1,,,,,,\n\
                    I-4,Bad enum and date,1,,,2026-02-30,,,urgent\n\
                    I-5,Short row\n\
                    '=SUM(A1),Formula guard undone,,,,,,,\n";
    // Dry run: the same report, nothing created.
    let (status, _, body) = raw(
        &s,
        reqwest::Method::POST,
        "entities/ticket/import?dry_run=true",
        &a,
        Some("text/csv; charset=utf-8"),
        csv_body,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let dry: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(count(&s, &a).await, 0);

    let (status, _, body) =
        raw(&s, reqwest::Method::POST, "entities/ticket/import", &a, Some("text/csv"), csv_body).await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["created"], 2, "{report:#}");
    assert_eq!(report["rejected"], dry["rejected"]);
    let rejected = report["rejected"].as_array().expect("rejected");
    let rows: Vec<i64> = rejected.iter().map(|r| r["row"].as_i64().expect("row")).collect();
    assert_eq!(rows, [2, 3, 4, 5]);
    let paths = |i: usize| -> Vec<String> {
        rejected[i]["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["path"].as_str().expect("path").to_string())
            .collect()
    };
    assert_eq!(paths(0), ["/data/amount"]);
    assert_eq!(paths(1), ["/data/code"]);
    assert!(
        paths(2).contains(&"/data/priority".to_string()) && paths(2).contains(&"/data/due".to_string()),
        "{:?}",
        paths(2)
    );
    assert_eq!(paths(3), [""]);
    assert_eq!(count(&s, &a).await, 2);
    let r = s.get("entities/ticket?code=I-1", &a).await;
    let t = &r.body["data"][0]["data"];
    assert_eq!(
        (t["amount"].clone(), t["quantity"].clone(), t["urgent"].clone(), t["tags"].clone(), t["details"].clone()),
        (json!(12.5), json!(3), json!(true), json!(["x"]), json!({ "note": "hi" }))
    );
    assert_eq!(select(&s, &a, &[("code", "=SUM(A1)")]).await.len(), 1);

    // JSON: an array of data objects.
    let json_body =
        json!([{ "code": "J-1", "amount": 4 }, { "code": 7 }, "not an object", { "code": "J-4", "colour": "red" }]);
    let (status, _, body) =
        raw(&s, reqwest::Method::POST, "entities/ticket/import", &a, Some("application/json"), &json_body.to_string())
            .await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["created"], 1, "{report:#}");
    let rows: Vec<i64> =
        report["rejected"].as_array().expect("rejected").iter().map(|r| r["row"].as_i64().expect("row")).collect();
    assert_eq!(rows, [2, 3, 4]);
    assert_eq!(count(&s, &a).await, 3);

    // An export imports back (its own columns are skipped).
    let (_, _, exported) = raw(&s, reqwest::Method::GET, "entities/ticket/export.csv", &a, None, "").await;
    let (status, _, body) =
        raw(&s, reqwest::Method::POST, "entities/ticket/import", &a, Some("text/csv"), &exported).await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!((report["created"].clone(), report["rejected"].clone()), (json!(3), json!([])), "{report:#}");
    assert_eq!(select(&s, &a, &[("code", "=SUM(A1)")]).await.len(), 2, "the formula guard round-trips");

    // Whole-request problems.
    let (status, _, body) =
        raw(&s, reqwest::Method::POST, "entities/ticket/import", &a, Some("text/csv"), "code,colour\nx,red\n").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("/header/1"), "{body}");
    let (status, _, _) =
        raw(&s, reqwest::Method::POST, "entities/ticket/import", &a, Some("text/plain"), "code\nx\n").await;
    assert_eq!(status, 415);
    let (status, _, _) =
        raw(&s, reqwest::Method::POST, "entities/ticket/import", &a, Some("application/json"), "{}").await;
    assert_eq!(status, 422);
    let (status, _, _) =
        raw(&s, reqwest::Method::POST, "entities/spaceship/import", &a, Some("text/csv"), "code\nx\n").await;
    assert_eq!(status, 404);
    db.drop_db().await.expect("drop");
}
