//! The fulfilment example tenant (a 3PL: shipments on B2B credit, non-delivery reports with
//! outreach, reattempts and SLA escalation, returns to origin, QC inspection decided by a decision
//! table, client payments and an append-only credit ledger) end to end, over real HTTP on a real
//! Postgres: every transition of every workflow, and each guard's refusal once.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use switchyard_tests::server::{Reply, TestServer};
use switchyard_tests::{test_db, TestDb};

const USERS: &[&str] =
    &["ops", "agent", "manager", "warehouse", "finance", "finance2", "zuri", "tembo", "admin", "audit"];

/// A decimal field's value (`"1550.00"`) as a number.
fn money(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a decimal: {v}"))
}

struct Demo {
    s: TestServer,
    tokens: HashMap<&'static str, String>,
}

impl Demo {
    async fn start(db: &TestDb) -> Demo {
        let s = TestServer::start(db, "fulfilment").await;
        let mut tokens = HashMap::new();
        for u in USERS {
            tokens.insert(*u, s.token(db, &format!("{u}@pwani.test")).await);
        }
        Demo { s, tokens }
    }

    fn t(&self, user: &str) -> &str {
        self.tokens.get(user).unwrap_or_else(|| panic!("no user {user}"))
    }

    async fn fire(&self, user: &str, ty: &str, id: &str, name: &str, input: Value) -> Reply {
        self.s.fire(self.t(user), ty, id, name, input).await
    }

    /// Fires a transition that must succeed; the entity after it.
    async fn ok(&self, user: &str, ty: &str, id: &str, name: &str, input: Value) -> Value {
        let r = self.fire(user, ty, id, name, input).await;
        assert_eq!(r.status, 200, "{ty}.{name} by {user}: {:?}", r.body);
        r.body["entity"].clone()
    }

    /// Fires a transition that a guard (or the script's `fail`) must refuse with `message`.
    async fn refused(&self, user: &str, ty: &str, id: &str, name: &str, input: Value, message: &str) {
        let r = self.fire(user, ty, id, name, input).await;
        assert_eq!((r.status, r.code()), (409, "GUARD_FAILED"), "{ty}.{name} by {user}: {:?}", r.body);
        let got = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{ty}.{name} by {user}: expected {message:?}, got {got:?}");
    }

    async fn get(&self, ty: &str, id: &str) -> Value {
        let r = self.s.get(&format!("entities/{ty}/{id}"), self.t("audit")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    async fn list(&self, user: &str, query: &str) -> Vec<Value> {
        let r = self.s.get(query, self.t(user)).await;
        assert_eq!(r.status, 200, "{query}: {:?}", r.body);
        r.body["data"].as_array().expect("data").clone()
    }

    fn id(&self, key: &str) -> String {
        self.s.sample(key)
    }

    /// A sample shipment dispatched and out for delivery (its first attempt).
    async fn out_for_delivery(&self, key: &str) -> String {
        let id = self.id(key);
        assert_eq!(self.ok("ops", "shipment", &id, "dispatch", json!({})).await["state"], "IN_TRANSIT");
        let e = self.ok("ops", "shipment", &id, "outForDelivery", json!({})).await;
        assert_eq!((e["state"].as_str(), &e["data"]["attempts"]), (Some("OUT_FOR_DELIVERY"), &json!(1)));
        id
    }

    /// Reports the shipment's delivery failed for `reason`; the NDR it opened.
    async fn fail_delivery(&self, shipment: &str, reason: &str) -> String {
        let e = self.ok("ops", "shipment", shipment, "reportNonDelivery", json!({ "reason": reason })).await;
        assert_eq!(e["state"], "UNDELIVERED");
        let ndr = e["data"]["ndr_id"].as_str().expect("ndr_id").to_string();
        let n = self.get("ndr", &ndr).await;
        assert_eq!((n["state"].as_str(), &n["data"]["reason"]), (Some("OPEN"), &json!(reason)));
        assert_eq!(n["data"]["shipment_id"], json!(shipment));
        ndr
    }

    async fn balance(&self, client: &str) -> f64 {
        money(&self.get("client", &self.id(client)).await["data"]["balance"])
    }

    async fn on_hand(&self, sku: &str) -> (i64, i64, i64) {
        let d = self.get("sku", &self.id(sku)).await["data"].clone();
        let n = |f: &str| d[f].as_i64().unwrap_or(0);
        (n("on_hand"), n("refurbishing"), n("written_off"))
    }

    /// The client's ledger lines, oldest first: (kind, amount, balance_after).
    async fn ledger(&self, client: &str) -> Vec<(String, f64, f64)> {
        let rows =
            self.list("finance", &format!("entities/credit_entry?client_id={}&sort=created_at", self.id(client))).await;
        rows.iter()
            .map(|r| {
                let d = &r["data"];
                (d["kind"].as_str().expect("kind").to_string(), money(&d["amount"]), money(&d["balance_after"]))
            })
            .collect()
    }
}

fn tomorrow() -> String {
    (Utc::now() + Duration::days(1)).date_naive().to_string()
}

#[tokio::test]
async fn a_cod_shipment_is_charged_to_the_client_picked_and_delivered_against_cash() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let before = d.on_hand("zuri_lipstick").await.0;
    let id = d.out_for_delivery("zuri_to_nakuru").await;
    let awb = d.get("shipment", &id).await["data"]["awb"].as_str().expect("awb").to_string();
    assert!(awb.starts_with("PWN20") && awb.len() == "PWN20260000001".len(), "{awb}");

    // Dispatch charged the freight to the client (balance and ledger) and took the stock.
    assert_eq!(d.balance("zuri").await, 1550.0);
    assert_eq!(d.ledger("zuri").await, [("charge".to_string(), 350.0, 1550.0)]);
    assert_eq!(d.on_hand("zuri_lipstick").await.0, before - 1);
    assert_eq!(d.on_hand("zuri_serum").await.0, 59);

    d.refused(
        "ops",
        "shipment",
        &id,
        "deliver",
        json!({ "pod_reference": "SIG-1" }),
        "Collect the full cash-on-delivery",
    )
    .await;
    d.refused(
        "ops",
        "shipment",
        &id,
        "deliver",
        json!({ "pod_reference": "SIG-1", "cod_collected": 3000 }),
        "Collect the full",
    )
    .await;
    let e = d.ok("ops", "shipment", &id, "deliver", json!({ "pod_reference": "SIG-1", "cod_collected": 3250 })).await;
    assert_eq!(e["state"], "DELIVERED");
    assert_eq!((&e["data"]["cod_collected"], &e["data"]["pod_reference"]), (&json!("3250.00"), &json!("SIG-1")));
    assert!(e["data"]["delivered_at"].is_string());
}

#[tokio::test]
async fn dispatch_refuses_a_client_on_hold_over_its_limit_or_short_of_stock_and_writes_nothing() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    // Tembo owes 19,950 of its 20,000: 400 of freight does not fit.
    d.refused("ops", "shipment", &d.id("tembo_to_kisumu"), "dispatch", json!({}), "over its credit limit").await;
    assert_eq!(d.balance("tembo").await, 19950.0);

    let address = json!({ "line_1": "Tom Mboya Street 9", "city": "Nairobi" });
    let book = |client: &str, sku: &str, quantity: i64| {
        json!({
            "client_id": d.id(client), "consignee_name": "Juma Kariuki", "consignee_phone": "+254 700 555 999",
            "address": address, "freight_charge": 300, "items": [{ "sku_id": d.id(sku), "quantity": quantity }],
        })
    };
    // Baraka is on credit hold.
    let held = d.s.create(d.t("ops"), "shipment", book("baraka", "baraka_atlas", 1)).await;
    d.refused("ops", "shipment", held["id"].as_str().expect("id"), "dispatch", json!({}), "on credit hold").await;

    // Five gift kits, three on hand: refused by the script, nothing charged or taken.
    let short = d.s.create(d.t("ops"), "shipment", book("zuri", "zuri_kit", 5)).await;
    let short = short["id"].as_str().expect("id");
    d.refused("ops", "shipment", short, "dispatch", json!({}), "Not enough ZC-KIT-GIFT on hand: 5 needed, 3 available")
        .await;
    assert_eq!(d.balance("zuri").await, 1200.0);
    assert!(d.ledger("zuri").await.is_empty());
    assert_eq!(d.on_hand("zuri_kit").await.0, 3);

    // Another client's SKU.
    let foreign = d.s.create(d.t("ops"), "shipment", book("zuri", "tembo_charger", 1)).await;
    d.refused(
        "ops",
        "shipment",
        foreign["id"].as_str().expect("id"),
        "dispatch",
        json!({}),
        "TE-CHG-65W is not this client's",
    )
    .await;

    // A COD shipment without the amount to collect.
    let mut cod = book("zuri", "zuri_serum", 1);
    cod["payment_mode"] = json!("cod");
    let cod = d.s.create(d.t("ops"), "shipment", cod).await;
    d.refused("ops", "shipment", cod["id"].as_str().expect("id"), "dispatch", json!({}), "needs the amount to collect")
        .await;

    // A booked shipment may be cancelled; a dispatched one may not.
    let e = d.ok("ops", "shipment", short, "cancel", json!({ "reason": "Client changed the order" })).await;
    assert_eq!(
        (e["state"].as_str(), &e["data"]["cancellation_reason"]),
        (Some("CANCELLED"), &json!("Client changed the order"))
    );
}

#[tokio::test]
async fn a_wrong_address_is_corrected_through_the_ndr_and_delivered_on_the_second_attempt() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let shipment = d.out_for_delivery("zuri_to_mombasa").await;
    let ndr = d.fail_delivery(&shipment, "wrong_address").await;
    let number = d.get("ndr", &ndr).await["data"]["ndr_number"].as_str().expect("number").to_string();
    assert!(number.starts_with("NDR-20"), "{number}");

    // The agent must reach the consignee first.
    d.refused("agent", "ndr", &ndr, "scheduleReattempt", json!({ "reattempt_on": tomorrow() }), "Reach the consignee")
        .await;
    let n =
        d.ok("agent", "ndr", &ndr, "contactConsignee", json!({ "channel": "call", "outcome": "not_reached" })).await;
    assert_eq!((n["state"].as_str(), &n["data"]["reached"]), (Some("CONTACTED"), &json!(false)));
    let n = d
        .ok(
            "agent",
            "ndr",
            &ndr,
            "contactConsignee",
            json!({ "channel": "whatsapp", "outcome": "reached", "note": "New address given" }),
        )
        .await;
    assert_eq!(n["data"]["reached"], true);
    let log: Vec<(&str, &str)> = n["data"]["outreach"]
        .as_array()
        .expect("outreach")
        .iter()
        .map(|o| (o["channel"].as_str().unwrap_or(""), o["outcome"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(log, [("call", "not_reached"), ("whatsapp", "reached")]);

    // A wrong address needs the corrected one; the date cannot be in the past.
    d.refused(
        "agent",
        "ndr",
        &ndr,
        "scheduleReattempt",
        json!({ "reattempt_on": tomorrow() }),
        "give the corrected address",
    )
    .await;
    let address = json!({ "line_1": "Nyerere Avenue 21", "city": "Mombasa" });
    d.refused(
        "agent",
        "ndr",
        &ndr,
        "scheduleReattempt",
        json!({ "reattempt_on": "2020-01-31", "address": address }),
        "in the past",
    )
    .await;
    let n = d
        .ok("agent", "ndr", &ndr, "scheduleReattempt", json!({ "reattempt_on": tomorrow(), "address": address }))
        .await;
    assert_eq!((n["state"].as_str(), &n["data"]["resolution"]), (Some("REATTEMPT_SCHEDULED"), &json!("reattempt")));

    // The NDR sent the shipment out again, to the corrected address, in the same transaction.
    let s = d.get("shipment", &shipment).await;
    assert_eq!((s["state"].as_str(), &s["data"]["attempts"]), (Some("OUT_FOR_DELIVERY"), &json!(2)));
    assert_eq!(s["data"]["address"], address);
    assert!(s["data"].get("ndr_id").is_none_or(Value::is_null), "{s}");
    let e = d.ok("ops", "shipment", &shipment, "deliver", json!({ "pod_reference": "PHOTO-22" })).await;
    assert_eq!(e["state"], "DELIVERED");

    // The history of the shipment shows the follow-up fired by the agent's decision.
    let h = d.s.get(&format!("entities/shipment/{shipment}/history"), d.t("audit")).await;
    let steps: Vec<&str> =
        h.body["data"].as_array().expect("history").iter().filter_map(|r| r["transition"].as_str()).collect();
    assert_eq!(
        steps,
        ["create", "dispatch", "outForDelivery", "reportNonDelivery", "reattempt", "deliver"],
        "{:?}",
        h.body
    );
}

#[tokio::test]
async fn three_failed_attempts_return_the_goods_and_qc_writes_them_off_with_a_credit_note() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let shipment = d.out_for_delivery("zuri_to_nakuru").await;
    for attempt in 1..=3 {
        let ndr = d.fail_delivery(&shipment, "consignee_unavailable").await;
        assert_eq!(d.get("ndr", &ndr).await["data"]["attempt"], attempt);
        if attempt < 3 {
            // The agent may not send it back while attempts are left; the manager reattempts
            // without a recorded contact.
            d.refused("agent", "ndr", &ndr, "initiateRto", json!({}), "Only the operations manager").await;
            d.ok("manager", "ndr", &ndr, "scheduleReattempt", json!({ "reattempt_on": tomorrow() })).await;
        } else {
            d.ok("agent", "ndr", &ndr, "contactConsignee", json!({ "channel": "sms", "outcome": "reached" })).await;
            d.refused(
                "agent",
                "ndr",
                &ndr,
                "scheduleReattempt",
                json!({ "reattempt_on": tomorrow() }),
                "had its 3 attempts",
            )
            .await;
            let n = d.ok("agent", "ndr", &ndr, "initiateRto", json!({})).await;
            assert_eq!((n["state"].as_str(), &n["data"]["resolution"]), (Some("RTO_INITIATED"), &json!("rto")));
        }
    }
    assert_eq!(d.get("shipment", &shipment).await["state"], "RTO_IN_TRANSIT");
    let s = d.ok("warehouse", "shipment", &shipment, "receiveRto", json!({})).await;
    assert_eq!(s["state"], "RETURNED_TO_ORIGIN");
    let ret = s["data"]["return_id"].as_str().expect("return_id").to_string();
    let r = d.get("return_order", &ret).await;
    assert_eq!((r["state"].as_str(), &r["data"]["kind"]), (Some("REQUESTED"), &json!("rto")));
    assert_eq!(r["data"]["items"].as_array().map(Vec::len), Some(2));

    // A return to origin is neither approved nor rejected: it is received.
    d.refused("manager", "return_order", &ret, "approveReturn", json!({}), "needs no approval").await;
    d.refused("manager", "return_order", &ret, "rejectReturn", json!({ "reason": "Not ours" }), "cannot be rejected")
        .await;
    assert_eq!(d.ok("warehouse", "return_order", &ret, "receive", json!({})).await["state"], "RECEIVED");

    // Damaged goods: the decision table writes them off, and says which row decided.
    let answers =
        json!({ "packaging": "damaged", "condition": "damaged", "works": false, "accessories_complete": true });
    let r = d.ok("warehouse", "return_order", &ret, "inspect", answers).await;
    assert_eq!((r["state"].as_str(), &r["data"]["outcome"]), (Some("INSPECTED"), &json!("write_off")));
    assert!(r["data"]["outcome_rule"].is_string(), "{r}");
    assert_eq!(r["data"]["inspection"]["by"], "warehouse@pwani.test");

    let before = d.balance("zuri").await;
    let r = d.ok("warehouse", "return_order", &ret, "close", json!({})).await;
    assert_eq!(r["state"], "CLOSED");
    // Damaged in Pwani's care: one lipstick (850) and one serum (2,400) credited.
    assert_eq!(r["data"]["credit_note"], json!("3250.00"));
    assert_eq!(d.balance("zuri").await, before - 3250.0);
    assert_eq!(d.on_hand("zuri_lipstick").await, (399, 0, 1));
    assert_eq!(d.on_hand("zuri_serum").await, (59, 0, 1));
    let ledger = d.ledger("zuri").await;
    assert_eq!(ledger.last(), Some(&("credit_note".to_string(), -3250.0, before - 3250.0)), "{ledger:?}");
}

#[tokio::test]
async fn a_refusal_goes_back_at_once_and_a_customer_return_is_restocked_or_refurbished() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let shipment = d.out_for_delivery("zuri_to_mombasa").await;
    let ndr = d.fail_delivery(&shipment, "refused").await;
    assert_eq!(d.get("ndr", &ndr).await["data"]["consignee_refused"], true);
    d.refused(
        "manager",
        "ndr",
        &ndr,
        "scheduleReattempt",
        json!({ "reattempt_on": tomorrow() }),
        "The consignee refused",
    )
    .await;
    // The agent may return a refused shipment at its first attempt.
    d.ok("agent", "ndr", &ndr, "initiateRto", json!({})).await;
    assert_eq!(d.get("shipment", &shipment).await["state"], "RTO_IN_TRANSIT");
    // The NDR is decided: nothing more can be done on it.
    let r = d.fire("agent", "ndr", &ndr, "escalate", json!({})).await;
    assert_eq!((r.status, r.code()), (409, "INVALID_TRANSITION"), "{:?}", r.body);

    // A customer return, requested by the client's own user.
    let items = json!([{ "sku_id": d.id("zuri_serum"), "quantity": 2 }]);
    let ret =
        d.s.create(
            d.t("zuri"),
            "return_order",
            json!({ "client_id": d.id("zuri"), "reason": "Wrong shade", "items": items }),
        )
        .await;
    let ret = ret["id"].as_str().expect("id").to_string();
    assert!(d.get("return_order", &ret).await["data"]["rma_number"].as_str().is_some_and(|n| n.starts_with("RMA-20")));
    d.refused("warehouse", "return_order", &ret, "receive", json!({}), "must be approved").await;
    let r = d.fire("warehouse", "return_order", &ret, "approveReturn", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    d.ok("manager", "return_order", &ret, "approveReturn", json!({})).await;
    d.ok("warehouse", "return_order", &ret, "receive", json!({})).await;
    let perfect = json!({ "packaging": "intact", "condition": "new", "works": true, "accessories_complete": true });
    assert_eq!(d.ok("warehouse", "return_order", &ret, "inspect", perfect).await["data"]["outcome"], "restock");
    let before = d.on_hand("zuri_serum").await;
    d.ok("warehouse", "return_order", &ret, "close", json!({})).await;
    assert_eq!(d.on_hand("zuri_serum").await, (before.0 + 2, before.1, before.2));
    // No credit note for a customer's return.
    assert!(d.ledger("zuri").await.iter().all(|(kind, _, _)| kind != "credit_note"));

    // Used goods that work go to refurbishment.
    let items = json!([{ "sku_id": d.id("zuri_lipstick"), "quantity": 1 }]);
    let ret = d.s.create(d.t("ops"), "return_order", json!({ "client_id": d.id("zuri"), "items": items })).await;
    let ret = ret["id"].as_str().expect("id").to_string();
    d.ok("manager", "return_order", &ret, "approveReturn", json!({})).await;
    d.ok("warehouse", "return_order", &ret, "receive", json!({})).await;
    let used = json!({ "packaging": "intact", "condition": "used", "works": true, "accessories_complete": true });
    assert_eq!(d.ok("warehouse", "return_order", &ret, "inspect", used).await["data"]["outcome"], "refurbish");
    let before = d.on_hand("zuri_lipstick").await;
    d.ok("warehouse", "return_order", &ret, "close", json!({})).await;
    assert_eq!(d.on_hand("zuri_lipstick").await, (before.0, before.1 + 1, before.2));

    // A return the manager rejects.
    let ret = d.s.create(d.t("ops"), "return_order", json!({ "client_id": d.id("zuri"), "items": items })).await;
    let e = d
        .ok(
            "manager",
            "return_order",
            ret["id"].as_str().expect("id"),
            "rejectReturn",
            json!({ "reason": "Outside the return window" }),
        )
        .await;
    assert_eq!(
        (e["state"].as_str(), &e["data"]["rejection_reason"]),
        (Some("REJECTED"), &json!("Outside the return window"))
    );
}

#[tokio::test]
async fn ndr_sla_timers_escalate_to_the_manager() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let untouched = d.fail_delivery(&d.out_for_delivery("zuri_to_nakuru").await, "premises_closed").await;
    let contacted = d.fail_delivery(&d.out_for_delivery("zuri_to_mombasa").await, "cash_not_ready").await;
    d.ok("agent", "ndr", &contacted, "contactConsignee", json!({ "channel": "call", "outcome": "not_reached" })).await;
    // A second contact does not restart the 24-hour clock (a self-loop starts no timer).
    d.ok("agent", "ndr", &contacted, "contactConsignee", json!({ "channel": "sms", "outcome": "not_reached" })).await;

    let now = Utc::now();
    d.s.store.fire_due_timers_at(now + Duration::hours(3), 100).await.expect("timers");
    assert_eq!(d.get("ndr", &untouched).await["state"], "OPEN");
    d.s.store.fire_due_timers_at(now + Duration::hours(5), 100).await.expect("timers");
    let n = d.get("ndr", &untouched).await;
    assert_eq!(n["state"], "ESCALATED");
    assert_eq!(n["data"]["escalation_reason"], "Nobody contacted the consignee within 4 hours");
    assert_eq!(d.get("ndr", &contacted).await["state"], "CONTACTED");
    d.s.store.fire_due_timers_at(now + Duration::hours(25), 100).await.expect("timers");
    let n = d.get("ndr", &contacted).await;
    assert_eq!(n["state"], "ESCALATED");
    assert_eq!(n["data"]["escalation_reason"], "Not resolved within 24 hours of the first contact");

    // Escalated: the manager decides, even without a reached consignee.
    d.refused(
        "agent",
        "ndr",
        &untouched,
        "scheduleReattempt",
        json!({ "reattempt_on": tomorrow() }),
        "Reach the consignee",
    )
    .await;
    d.ok("manager", "ndr", &untouched, "scheduleReattempt", json!({ "reattempt_on": tomorrow() })).await;
    d.ok("manager", "ndr", &contacted, "initiateRto", json!({})).await;
}

#[tokio::test]
async fn payments_release_a_credit_hold_and_the_ledger_cannot_be_changed() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let baraka = d.id("baraka");
    // Baraka owes 7,300 on a 5,000 limit: it cannot be released by hand.
    d.refused("finance", "client", &baraka, "releaseCredit", json!({}), "still owes more than its credit limit").await;

    let pay = |amount: f64, reference: &str| json!({ "client_id": baraka, "amount": amount, "method": "bank_transfer", "reference": reference });
    let first = d.s.create(d.t("finance"), "client_payment", pay(1500.0, "EQ-2211")).await;
    let first = first["id"].as_str().expect("id").to_string();
    // The same bank reference twice is one payment.
    let r = d.s.post("entities/client_payment", d.t("finance"), &json!({ "data": pay(10.0, "EQ-2211") })).await;
    assert_eq!((r.status, r.code()), (409, "UNIQUE_VIOLATION"), "{:?}", r.body);
    // Four-eyes: whoever recorded it does not apply it.
    d.refused("finance", "client_payment", &first, "applyPayment", json!({}), "four-eyes").await;
    d.ok("finance2", "client_payment", &first, "applyPayment", json!({})).await;
    let c = d.get("client", &baraka).await;
    assert_eq!((c["state"].as_str(), &c["data"]["balance"]), (Some("ON_HOLD"), &json!("5800.00")));

    // The second payment brings it within the limit: the hold is released in the same transaction.
    let second = d.s.create(d.t("finance"), "client_payment", pay(1000.0, "MP-QX81")).await;
    d.ok("finance2", "client_payment", second["id"].as_str().expect("id"), "applyPayment", json!({})).await;
    let c = d.get("client", &baraka).await;
    assert_eq!((c["state"].as_str(), &c["data"]["balance"]), (Some("ACTIVE"), &json!("4800.00")));
    assert!(c["data"].get("hold_reason").is_none_or(Value::is_null), "{c}");
    assert_eq!(
        d.ledger("baraka").await,
        [("payment".to_string(), -1500.0, 5800.0), ("payment".to_string(), -1000.0, 4800.0)]
    );

    // A voided payment changes nothing.
    let third = d.s.create(d.t("finance"), "client_payment", pay(50.0, "CHQ-0042")).await;
    let e = d
        .ok(
            "finance",
            "client_payment",
            third["id"].as_str().expect("id"),
            "voidPayment",
            json!({ "reason": "Cheque bounced" }),
        )
        .await;
    assert_eq!(e["state"], "VOID");
    assert_eq!(d.balance("baraka").await, 4800.0);

    // The ledger is append-only, even for an administrator.
    let line = d.list("admin", &format!("entities/credit_entry?client_id={baraka}")).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r =
        d.s.request(
            reqwest::Method::PATCH,
            &d.s.url(&format!("entities/credit_entry/{line}")),
            Some(d.t("admin")),
            Some(&json!({ "data": { "note": "x" } })),
            &[],
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "IMMUTABLE"), "{:?}", r.body);
    let r =
        d.s.request(
            reqwest::Method::DELETE,
            &d.s.url(&format!("entities/credit_entry/{line}")),
            Some(d.t("admin")),
            None,
            &[],
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "IMMUTABLE"), "{:?}", r.body);

    // An account is closed only when nothing is owed (and not by whoever created it: the package).
    d.refused("finance", "client", &baraka, "closeAccount", json!({}), "owes nothing").await;
}

#[tokio::test]
async fn a_client_user_sees_and_books_only_for_their_own_company() {
    let db = test_db().await;
    let d = Demo::start(&db).await;
    let zuri_rows = d.list("zuri", "entities/shipment").await;
    assert_eq!(zuri_rows.len(), 2, "{zuri_rows:?}");
    assert!(zuri_rows.iter().all(|r| r["data"]["client_id"] == json!(d.id("zuri"))));
    let r = d.s.get(&format!("entities/shipment/{}", d.id("tembo_to_kisumu")), d.t("zuri")).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    let clients = d.list("zuri", "entities/client").await;
    assert_eq!(clients.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(), [json!(d.id("zuri"))]);
    assert_eq!(d.list("tembo", "entities/sku").await.len(), 2);

    // Booking for another company is refused with the package's message.
    let booking = |client: &str, sku: &str| {
        json!({ "data": {
            "client_id": d.id(client), "consignee_name": "Amani Njoroge", "consignee_phone": "+254 701 555 000",
            "address": { "line_1": "Biashara Street 5", "city": "Nairobi" }, "freight_charge": 250,
            "items": [{ "sku_id": d.id(sku), "quantity": 1 }],
        }})
    };
    let r = d.s.post("entities/shipment", d.t("zuri"), &booking("tembo", "tembo_charger")).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap_or("").contains("your own company"), "{:?}", r.body);
    let r = d.s.post("entities/shipment", d.t("zuri"), &booking("zuri", "zuri_lipstick")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // A client books and cancels, but does not dispatch.
    let mine = r.body["id"].as_str().expect("id").to_string();
    let r = d.fire("zuri", "shipment", &mine, "dispatch", json!({})).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert_eq!(d.ok("zuri", "shipment", &mine, "cancel", json!({})).await["state"], "CANCELLED");
}
