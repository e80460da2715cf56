//! The change-control example tenant end to end, over real HTTP on a real Postgres: one- and
//! two-level approval decided by cost, risk and system criticality, four-eyes between the levels
//! and between approval, implementation and review, the SLA timers, and every guard once.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::{test_db, TestDb};

const USERS: &[&str] = &["alice", "bob", "lina", "cyrus", "maya", "ivan", "admin", "audit"];

struct Demo {
    s: TestServer,
    tokens: HashMap<&'static str, String>,
}

impl Demo {
    async fn start(db: &TestDb) -> Demo {
        let s = TestServer::start(db, "change-control").await;
        let mut tokens = HashMap::new();
        for u in USERS {
            tokens.insert(*u, s.token(db, &format!("{u}@kilima.test")).await);
        }
        Demo { s, tokens }
    }

    fn t(&self, user: &str) -> &str {
        self.tokens.get(user).unwrap_or_else(|| panic!("no user {user}"))
    }

    async fn fire(&self, user: &str, id: &str, name: &str, input: Value) -> Reply {
        self.s.fire(self.t(user), "change_request", id, name, input).await
    }

    async fn ok(&self, user: &str, id: &str, name: &str, input: Value) -> Value {
        let r = self.fire(user, id, name, input).await;
        assert_eq!(r.status, 200, "{name} by {user}: {:?}", r.body);
        r.body["entity"].clone()
    }

    async fn refused(&self, user: &str, id: &str, name: &str, input: Value, message: &str) {
        let r = self.fire(user, id, name, input).await;
        assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{name} by {user}: {:?}", r.body);
        let got = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{name} by {user}: expected {message:?}, got {got:?}");
    }

    async fn get(&self, id: &str) -> Value {
        let r = self.s.get(&format!("entities/change_request/{id}"), self.t("audit")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    /// A change created by alice with exactly `data`.
    async fn create(&self, data: Value) -> String {
        let e = self.s.create(self.t("alice"), "change_request", data).await;
        e["id"].as_str().expect("id").to_string()
    }

    /// A draft change by `user` touching the systems with the given sample keys.
    async fn draft(&self, user: &str, title: &str, risk: &str, cost: f64, systems: &[&str]) -> String {
        let systems: Vec<String> = systems.iter().map(|k| self.s.sample(k)).collect();
        let e = self
            .s
            .create(
                self.t(user),
                "change_request",
                json!({
                    "title": title,
                    "description": format!("{title}: details"),
                    "risk": risk,
                    "cost": cost,
                    "systems": systems,
                    "implementation_plan": "Follow the runbook",
                    "rollback_plan": "Restore the snapshot",
                }),
            )
            .await;
        e["id"].as_str().expect("id").to_string()
    }

    /// A submitted change.
    async fn submitted(&self, user: &str, title: &str, risk: &str, cost: f64, systems: &[&str]) -> String {
        let id = self.draft(user, title, risk, cost, systems).await;
        self.ok(user, &id, "submit", json!({})).await;
        id
    }
}

/// The payloads of the tenant's outbox events called `name`, oldest first.
async fn outbox(db: &TestDb, s: &TestServer, name: &str) -> Vec<Value> {
    let mut tx = db.tenant_tx(s.tenant).await;
    let rows: Vec<Value> =
        sqlx::query_scalar("select payload from outbox where tenant_id = $1 and name = $2 order by id")
            .bind(s.tenant)
            .bind(name)
            .fetch_all(&mut *tx)
            .await
            .expect("outbox");
    tx.commit().await.expect("commit");
    rows
}

fn decisions(e: &Value) -> Vec<(i64, String, String)> {
    e["data"]["approvals"]
        .as_array()
        .expect("approvals")
        .iter()
        .map(|a| {
            (
                a["level"].as_i64().expect("level"),
                a["decision"].as_str().expect("decision").to_string(),
                a["by"].as_str().expect("by").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_small_change_needs_one_team_lead_and_runs_to_closure() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let change = d.draft("alice", "Intranet banner", "low", 2000.0, &["intranet"]).await;
    let number = d.get(&change).await["data"]["change_number"].as_str().expect("number").to_string();
    assert!(number.starts_with("CHG-20") && number.len() == "CHG-2026-00001".len(), "{number}");

    let e = d.ok("alice", &change, "submit", json!({})).await;
    assert_eq!(e["state"], "PENDING_APPROVAL");
    assert_eq!((&e["data"]["approval_levels"], &e["data"]["requested_by"]), (&json!(1), &json!("alice@kilima.test")));

    // The requester cannot approve (role); a one-level change is approved, not endorsed.
    let r = d.fire("alice", &change, "approveByLead", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    d.refused("bob", &change, "endorseByLead", json!({}), "This change needs only its team lead").await;
    let e = d.ok("bob", &change, "approveByLead", json!({ "comment": "Fine for Tuesday" })).await;
    assert_eq!(e["state"], "APPROVED");
    assert_eq!(decisions(&e), [(1, "approved".to_string(), "bob@kilima.test".to_string())]);

    // Separation of duties: the implementer did not approve, the reviewer did not implement.
    let e = d.ok("ivan", &change, "startImplementation", json!({})).await;
    assert_eq!(e["state"], "IN_IMPLEMENTATION");
    let r = d.fire("ivan", &change, "completeImplementation", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "notes are required: {:?}", r.body);
    let e = d.ok("ivan", &change, "completeImplementation", json!({ "notes": "Deployed 4.2.1" })).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["implementation_notes"].as_str()),
        (Some("IN_REVIEW"), Some("Deployed 4.2.1"))
    );
    d.refused("maya", &change, "close", json!({ "outcome": "successful_with_issues" }), "Describe the issues").await;
    let e = d
        .ok(
            "maya",
            &change,
            "close",
            json!({ "outcome": "successful_with_issues", "notes": "Banner cached for 10 min" }),
        )
        .await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["review_outcome"].as_str()),
        (Some("CLOSED"), Some("successful_with_issues"))
    );

    let r = d.s.get(&format!("entities/change_request/{change}/history"), d.t("audit")).await;
    let names: Vec<&str> =
        r.body["data"].as_array().expect("history").iter().filter_map(|h| h["transition"].as_str()).collect();
    assert_eq!(names, ["create", "submit", "approveByLead", "startImplementation", "completeImplementation", "close"]);
}

#[tokio::test]
async fn costly_risky_or_critical_changes_need_the_cab_after_the_team_lead() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    // Each of cost, risk and a critical system alone makes two levels.
    for (title, risk, cost, system) in [
        ("Costly", "low", 10_000.0, "intranet"),
        ("Risky", "high", 100.0, "email"),
        ("Critical", "low", 100.0, "core_banking"),
    ] {
        let c = d.submitted("alice", title, risk, cost, &[system]).await;
        assert_eq!(d.get(&c).await["data"]["approval_levels"], 2, "{title}");
    }

    let change = d.submitted("alice", "Ledger upgrade", "medium", 45_000.0, &["core_banking", "email"]).await;
    d.refused("bob", &change, "approveByLead", json!({}), "This change needs the CAB as well").await;
    let e = d.ok("lina", &change, "endorseByLead", json!({ "comment": "Plan reviewed" })).await;
    assert_eq!(e["state"], "PENDING_CAB");

    // Four-eyes between the levels: Lina (lead and CAB) endorsed it, so the CAB vote is not hers.
    d.refused("lina", &change, "approveByCab", json!({}), "four-eyes: you fired endorseByLead").await;
    let r = d.fire("bob", &change, "approveByCab", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "team leads are not the CAB: {:?}", r.body);
    let e = d.ok("cyrus", &change, "approveByCab", json!({})).await;
    assert_eq!(e["state"], "APPROVED");
    assert_eq!(
        decisions(&e),
        [
            (1, "endorsed".to_string(), "lina@kilima.test".to_string()),
            (2, "approved".to_string(), "cyrus@kilima.test".to_string())
        ]
    );

    // Implemented, then rolled back with a reason.
    d.ok("ivan", &change, "startImplementation", json!({})).await;
    let r = d.fire("ivan", &change, "rollBack", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let e = d.ok("ivan", &change, "rollBack", json!({ "reason": "Replication lag above 10 minutes" })).await;
    assert_eq!(
        (e["state"].as_str(), e["data"]["rollback_reason"].as_str()),
        (Some("ROLLED_BACK"), Some("Replication lag above 10 minutes"))
    );

    // At the CAB level only the CAB rejects; a rejection needs a reason.
    let other = d.submitted("alice", "Mobile app release", "high", 500.0, &["mobile_app"]).await;
    d.ok("bob", &other, "endorseByLead", json!({})).await;
    d.refused(
        "bob",
        &other,
        "reject",
        json!({ "reason": "Not now" }),
        "Only the approvers of the change's current level",
    )
    .await;
    let r = d.fire("cyrus", &other, "reject", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "VALIDATION_FAILED"), "{:?}", r.body);
    let e = d.ok("cyrus", &other, "reject", json!({ "reason": "Release freeze until month end" })).await;
    assert_eq!(e["state"], "REJECTED");
    assert_eq!(decisions(&e).last().map(|(l, dec, _)| (*l, dec.clone())), Some((2, "rejected".to_string())));
}

#[tokio::test]
async fn the_sla_timer_escalates_a_waiting_change_to_the_change_manager() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let change = d.submitted("alice", "Email retention policy", "low", 800.0, &["email"]).await;
    // Before escalation, the change manager is no first-level approver.
    d.refused(
        "maya",
        &change,
        "approveByLead",
        json!({}),
        "Only a team lead may approve a change until it is escalated",
    )
    .await;

    let now = Utc::now();
    d.s.store.fire_due_timers_at(now + Duration::hours(47), 100).await.expect("timers");
    assert_eq!(d.get(&change).await["data"]["escalated"], false, "not due after 47 hours");
    d.s.store.fire_due_timers_at(now + Duration::hours(49), 100).await.expect("timers");
    let e = d.get(&change).await;
    assert_eq!((e["state"].as_str(), &e["data"]["escalated"]), (Some("PENDING_APPROVAL"), &json!(true)));
    assert!(e["data"]["escalated_at"].is_string());

    // The escalation is in the history (by the system) and in the events.
    let r = d.s.get(&format!("entities/change_request/{change}/history"), d.t("audit")).await;
    let last = r.body["data"].as_array().and_then(|h| h.last()).expect("history").clone();
    assert_eq!(last["transition"], "escalate");
    let events = outbox(&db, &d.s, "change.escalated").await;
    let number = e["data"]["change_number"].clone();
    let escalated =
        events.iter().any(|p| p["change_number"] == number && p["reason"] == "No team lead decision within 48 hours");
    assert!(escalated, "a change.escalated event for {number}: {events:?}");

    // The timer fired once: the self-loop does not restart it.
    d.s.store.fire_due_timers_at(now + Duration::hours(200), 100).await.expect("timers");
    let r = d.s.get(&format!("entities/change_request/{change}/history"), d.t("audit")).await;
    let escalations =
        r.body["data"].as_array().expect("history").iter().filter(|h| h["transition"] == "escalate").count();
    assert_eq!(escalations, 1);

    // Now the change manager decides.
    let e = d.ok("maya", &change, "approveByLead", json!({ "comment": "Escalated: approved" })).await;
    assert_eq!(e["state"], "APPROVED");

    // A change that is decided in time is never escalated: its timer is cancelled.
    let quick = d.submitted("alice", "Intranet menu", "low", 100.0, &["intranet"]).await;
    d.ok("bob", &quick, "approveByLead", json!({})).await;
    d.s.store.fire_due_timers_at(now + Duration::hours(300), 100).await.expect("timers");
    assert_eq!(d.get(&quick).await["data"]["escalated"], false);

    // The CAB level has its own, longer SLA.
    let big = d.submitted("alice", "Core ledger patch", "low", 50.0, &["core_banking"]).await;
    d.ok("bob", &big, "endorseByLead", json!({})).await;
    let endorsed = Utc::now();
    d.s.store.fire_due_timers_at(endorsed + Duration::days(4), 100).await.expect("timers");
    assert_eq!(d.get(&big).await["data"]["escalated"], false);
    d.s.store.fire_due_timers_at(endorsed + Duration::days(6), 100).await.expect("timers");
    let e = d.get(&big).await;
    assert_eq!((e["state"].as_str(), &e["data"]["escalated"]), (Some("PENDING_CAB"), &json!(true)));
    assert_eq!(d.ok("maya", &big, "approveByCab", json!({})).await["state"], "APPROVED");
}

#[tokio::test]
async fn every_guard_fails_once_with_its_message() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let intranet = d.s.sample("intranet");
    let no_description = d.create(json!({ "title": "No description", "risk": "low", "systems": [intranet] })).await;
    let no_systems = d.create(json!({ "title": "No systems", "description": "d", "risk": "low" })).await;
    let no_rollback =
        d.create(json!({ "title": "No rollback", "description": "d", "risk": "medium", "systems": [intranet] })).await;
    let retired = d
        .create(json!({ "title": "Fax", "description": "d", "risk": "low", "systems": [d.s.sample("fax_gateway")] }))
        .await;
    let bad_window = d
        .create(json!({
            "title": "Backwards window", "description": "d", "risk": "low", "systems": [intranet],
            "planned_start": "2026-06-07T22:00:00Z", "planned_end": "2026-06-07T21:00:00Z",
        }))
        .await;
    let one_level = d.submitted("alice", "One level", "low", 10.0, &["intranet"]).await;
    let two_levels = d.submitted("alice", "Two levels", "high", 10.0, &["intranet"]).await;
    let own = d.submitted("bob", "Bob's own", "low", 10.0, &["intranet"]).await;
    let at_cab = d.submitted("alice", "At the CAB", "high", 10.0, &["intranet"]).await;
    d.ok("lina", &at_cab, "endorseByLead", json!({})).await;
    let escalated = d.submitted("alice", "Escalated", "low", 10.0, &["intranet"]).await;
    d.ok("maya", &escalated, "escalate", json!({ "reason": "by hand" })).await;
    let approved = d.submitted("alice", "Approved", "low", 10.0, &["intranet"]).await;
    d.ok("admin", &approved, "approveByLead", json!({})).await;
    let no_plan =
        d.create(json!({ "title": "No plan", "description": "d", "risk": "low", "systems": [intranet] })).await;
    d.ok("alice", &no_plan, "submit", json!({})).await;
    d.ok("bob", &no_plan, "approveByLead", json!({})).await;
    let implemented = d.submitted("alice", "Implemented", "low", 10.0, &["intranet"]).await;
    d.ok("bob", &implemented, "approveByLead", json!({})).await;
    d.ok("admin", &implemented, "startImplementation", json!({})).await;
    d.ok("admin", &implemented, "completeImplementation", json!({ "notes": "done" })).await;
    let no_rollback_plan = d.create(json!({ "title": "No rollback plan", "description": "d", "risk": "low", "systems": [intranet], "implementation_plan": "p" })).await;
    d.ok("alice", &no_rollback_plan, "submit", json!({})).await;
    d.ok("bob", &no_rollback_plan, "approveByLead", json!({})).await;
    d.ok("ivan", &no_rollback_plan, "startImplementation", json!({})).await;

    #[rustfmt::skip]
    let cases: Vec<(&str, &str, &str, Value, &str)> = vec![
        ("alice", &no_description, "submit", json!({}), "Describe the change before submitting it"),
        ("alice", &no_systems, "submit", json!({}), "Name at least one system the change touches"),
        ("alice", &no_rollback, "submit", json!({}), "A change of medium or high risk needs a rollback plan"),
        ("alice", &retired, "submit", json!({}), "A change can only touch systems in service"),
        ("alice", &bad_window, "submit", json!({}), "The change window must close after it opens"),
        ("bob", &own, "approveByLead", json!({}), "four-eyes: you created this"),
        ("maya", &one_level, "approveByLead", json!({}), "Only a team lead may approve a change until it is escalated"),
        ("bob", &two_levels, "approveByLead", json!({}), "This change needs the CAB as well"),
        ("maya", &one_level, "endorseByLead", json!({}), "Only a team lead may endorse a change until it is escalated"),
        ("bob", &one_level, "endorseByLead", json!({}), "This change needs only its team lead"),
        ("lina", &at_cab, "approveByCab", json!({}), "four-eyes: you fired endorseByLead"),
        ("maya", &at_cab, "approveByCab", json!({}), "Only the CAB may approve a change until it is escalated"),
        ("bob", &at_cab, "reject", json!({ "reason": "not now" }), "Only the approvers of the change's current level may reject it"),
        ("bob", &own, "reject", json!({ "reason": "not now" }), "four-eyes: you created this"),
        ("cyrus", &one_level, "reject", json!({ "reason": "not now" }), "Only the approvers of the change's current level may reject it"),
        ("maya", &escalated, "escalate", json!({}), "The change is already escalated"),
        ("admin", &approved, "startImplementation", json!({}), "four-eyes: you fired approveByLead"),
        ("ivan", &no_plan, "startImplementation", json!({}), "An implementation plan is needed before the change is implemented"),
        ("ivan", &no_rollback_plan, "rollBack", json!({ "reason": "broken" }), "There is no rollback plan to follow"),
        ("admin", &implemented, "close", json!({ "outcome": "successful" }), "four-eyes: you fired startImplementation"),
        ("maya", &implemented, "close", json!({ "outcome": "successful_with_issues" }), "Describe the issues of a change that succeeded with issues"),
        ("ivan", &one_level, "cancel", json!({}), "Only the requester who raised the change, or the change manager, may cancel it"),
    ];
    for (user, id, name, input, message) in cases {
        let before = d.get(id).await;
        d.refused(user, id, name, input, message).await;
        assert_eq!(d.get(id).await, before, "{name} by {user} changed the change");
    }
    // The escalated change can now be decided by the change manager, and its requester cancels.
    assert_eq!(d.ok("maya", &escalated, "approveByLead", json!({})).await["state"], "APPROVED");
    assert_eq!(
        d.ok("alice", &one_level, "cancel", json!({ "reason": "No longer needed" })).await["state"],
        "CANCELLED"
    );
}

#[tokio::test]
async fn the_demo_data_loads_with_a_change_waiting_for_its_team_lead() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let tls = d.get(&d.s.sample("tls_renewal")).await;
    assert_eq!((tls["state"].as_str(), &tls["data"]["approval_levels"]), (Some("PENDING_APPROVAL"), &json!(1)));
    let e = d.ok("bob", &d.s.sample("tls_renewal"), "approveByLead", json!({})).await;
    assert_eq!(e["state"], "APPROVED");
    let ledger = d.s.sample("ledger_upgrade");
    let e = d.ok("alice", &ledger, "submit", json!({})).await;
    assert_eq!(e["data"]["approval_levels"], 2);
    let banner = d.s.sample("intranet_banner");
    assert_eq!(d.ok("alice", &banner, "submit", json!({})).await["data"]["approval_levels"], 1);
}

#[tokio::test]
async fn a_requester_raises_changes_in_their_own_name_and_the_auditor_exports() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let change = |by: &str| json!({ "data": { "title": "Patch the core switch", "risk": "low", "requested_by": by } });

    // `roles.requester.create.change_request.rule`: in their own name only.
    let r = d.s.post("entities/change_request", d.t("alice"), &change("bob@kilima.test")).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "You may only raise a change request in your own name");
    let r = d.s.post("entities/change_request", d.t("alice"), &change("alice@kilima.test")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // Left empty, it is theirs (submit fills it in).
    let r =
        d.s.post("entities/change_request", d.t("alice"), &json!({ "data": { "title": "Mine", "risk": "low" } })).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // A team lead has no such rule: they may raise one for someone else.
    let r = d.s.post("entities/change_request", d.t("bob"), &change("alice@kilima.test")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // The auditor reads and exports; the CAB (view only) may not export.
    let r = d.s.get("entities/change_request/export.csv", d.t("audit")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.as_str().unwrap_or_default().contains("Patch the core switch"));
    let r = d.s.get("entities/change_request/export.csv", d.t("cyrus")).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
}
