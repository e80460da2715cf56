//! Package features through the pure core: named rules, four-eyes, editable fields per state
//! and state timers (compiling them, and what `prepare` / `decide` / `guard_results` make of
//! them).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use engine::compiled::CompiledTenant;
use engine::eval::{decide, guard_results, prepare, prepare_explain, GuardKind, Rejection};
use engine::model::{Actor, Entity, Loaded};
use engine::{EngineError, Limits};
use indexmap::IndexMap;
use serde_json::{json, Value};
use uuid::Uuid;

const CUSTOMER: &str = r#"
name: customer
fields:
  name: { type: string, required: true }
  credit_limit: { type: number, minimum: 0 }
"#;

const ORDER: &str = r#"
name: purchase_order
fields:
  customer_id: { type: reference, to: customer, required: true }
  notes: { type: string }
  total_amount: { type: number, minimum: 0, default: 0 }
  items: { type: array, items: { type: object, fields: { qty: { type: integer } } } }
workflow:
  states:
    DRAFT:
      kind: initial
      editable: { fields: [notes, items], roles: [sales] }
      timers:
        - { after: 72h, transition: cancel, input: { reason: "not submitted in time" } }
        - { after: 30m, transition: remind }
    SUBMITTED:
      timers: [{ after: 7days, transition: cancel, input: { reason: stale } }]
    APPROVED: {}
    CANCELLED: { kind: terminal }
  transitions:
    remind: { from: [DRAFT], to: DRAFT, roles: [sales] }
    submit:
      from: [DRAFT]
      to: SUBMITTED
      roles: [sales, manager]
      load:
        customer: { type: customer, id: { rule: customer_ref } }
      guards:
        - rule: { rule: has_items }
          message: An order needs at least one line item
        - rule: { rule: within_credit }
          message: The order exceeds the customer's credit limit
    approve:
      from: [SUBMITTED]
      to: APPROVED
      roles: [manager]
      four_eyes: [creator, submit]
      guards:
        - rule: { ">": [ { var: entity.total_amount }, 0 ] }
          message: Nothing to approve
    cancel:
      from: [DRAFT, SUBMITTED]
      to: CANCELLED
      roles: [manager]
      input:
        type: object
        required: [reason]
        properties: { reason: { type: string, minLength: 2 } }
"#;

const RULES: &str = r#"
has_items: { "!!": [ { var: entity.items } ] }
customer_ref: { var: entity.customer_id }
total_ok: { ">=": [ { var: customer.credit_limit }, { var: entity.total_amount } ] }
within_credit: { and: [ { "!!": [ { var: customer } ] }, { rule: total_ok } ] }
"#;

fn defs(sources: &[&str]) -> Vec<ontology::EntityTypeDef> {
    sources.iter().map(|s| serde_yaml_ng::from_str(s).expect("type YAML parses")).collect()
}

fn rules(yaml: &str) -> IndexMap<String, Value> {
    serde_yaml_ng::from_str(yaml).expect("rules YAML parses")
}

fn compile(types: &[&str], rules_yaml: &str) -> Result<CompiledTenant, Vec<EngineError>> {
    let ontology = ontology::compile_types(defs(types)).expect("ontology compiles");
    CompiledTenant::compile_with(ontology, &rules(rules_yaml), &Limits::default())
}

/// The tenant, its roles declared without `permissions:` (each may view every type).
fn tenant() -> CompiledTenant {
    let roles = ["sales", "manager"].map(|r| (r, None));
    compile(&[CUSTOMER, ORDER], RULES).expect("compiles").with_permissions(engine::permissions::Permissions::new(roles))
}

/// The errors of compiling ORDER with `from` replaced by `to` (which must occur in it).
fn errors_with(from: &str, to: &str, rules_yaml: &str) -> Vec<String> {
    assert!(ORDER.contains(from), "{from}");
    let changed = ORDER.replace(from, to);
    let errors = compile(&[CUSTOMER, &changed], rules_yaml).expect_err("does not compile");
    errors.iter().map(ToString::to_string).collect()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid time")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn order(state: &str, data: Value) -> Entity {
    Entity {
        id: id(1),
        type_name: "purchase_order".into(),
        state: state.into(),
        version: 1,
        data,
        created_by: "u-ann".into(),
        updated_by: "u-ann".into(),
        created_at: now(),
        updated_at: now(),
    }
}

fn draft(total: f64, items: Value) -> Entity {
    order("DRAFT", json!({"customer_id": id(10).to_string(), "total_amount": total, "items": items}))
}

fn customer(limit: f64) -> Loaded {
    Loaded::One(Some(Entity {
        id: id(10),
        type_name: "customer".into(),
        state: "ACTIVE".into(),
        version: 1,
        data: json!({"name": "Acme", "credit_limit": limit}),
        created_by: "u".into(),
        updated_by: "u".into(),
        created_at: now(),
        updated_at: now(),
    }))
}

fn user(id: &str, roles: &[&str]) -> Actor {
    Actor {
        id: id.into(),
        email: format!("{id}@x.test"),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        system: false,
        attributes: Default::default(),
    }
}

fn loaded(pairs: Vec<(&str, Loaded)>) -> IndexMap<String, Loaded> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

// --- named rules -------------------------------------------------------------------------------

#[test]
fn named_rules_are_expanded_in_guards_and_loads() {
    let t = tenant();
    let sales = user("u-ann", &["sales"]);
    let e = draft(50.0, json!([{"qty": 1}]));

    let p = prepare(&t, &e, "submit", &Value::Null, &sales, now()).expect("prepares");
    // The load's id came from the rule `customer_ref`.
    assert_eq!(format!("{:?}", p.load_requests()[0].kind), format!("ById(Some({}))", id(10)));
    let d = decide(p, loaded(vec![("customer", customer(100.0))]), &Limits::default()).expect("passes");
    assert_eq!(d.to, "SUBMITTED");
    assert!(d.trace.guards.iter().all(|g| g.passed && g.kind == GuardKind::Guard));

    // `within_credit` → `total_ok`, nested: fails with the guard's message and the rule's vars.
    let p = prepare(&t, &e, "submit", &Value::Null, &sales, now()).expect("prepares");
    let r = decide(p, loaded(vec![("customer", customer(10.0))]), &Limits::default()).expect_err("over the limit");
    let Rejection::GuardFailed { index, message, trace } = r else { panic!("{r:?}") };
    assert_eq!((index, message.as_str()), (Some(1), "The order exceeds the customer's credit limit"));
    let failed = trace.guards.last().expect("a result");
    assert_eq!(failed.values["customer.credit_limit"], json!(10.0));
    assert_eq!(failed.values["entity.total_amount"], json!(50.0));

    let empty = draft(0.0, json!([]));
    let p = prepare(&t, &empty, "submit", &Value::Null, &sales, now()).expect("prepares");
    let r = decide(p, loaded(vec![("customer", customer(10.0))]), &Limits::default()).expect_err("no items");
    assert_eq!(r.to_string(), "An order needs at least one line item");
    assert_eq!(t.rules().get("within_credit").map(|v| v.to_string().contains("total_amount")), Some(true));
}

#[test]
fn an_unknown_rule_names_the_guard_and_the_rule() {
    let errors = errors_with("{ rule: has_items }", "{ rule: has_itemz }", RULES);
    assert_eq!(
        errors,
        ["type `purchase_order`, transition `submit`, guard 0: unknown rule `has_itemz`"],
        "{errors:#?}"
    );
    let errors = errors_with("{ rule: customer_ref }", "{ rule: nope }", RULES);
    assert_eq!(errors, ["type `purchase_order`, transition `submit`, load `customer`: id: unknown rule `nope`"]);
}

#[test]
fn a_rule_cycle_is_an_error_of_the_rules_and_of_the_guards_using_them() {
    let cyclic = RULES.replace(
        "total_ok: { \">=\": [ { var: customer.credit_limit }, { var: entity.total_amount } ] }",
        "total_ok: { \"!\": { rule: within_credit } }",
    );
    let errors = compile(&[CUSTOMER, ORDER], &cyclic).expect_err("cycle");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|e| e.starts_with("rule `total_ok`:") && e.contains("total_ok → within_credit → total_ok")),
        "{text:#?}"
    );
    assert!(errors.iter().any(|e| matches!(e, EngineError::Rule { rule, .. } if rule == "within_credit")), "{text:#?}");
    assert!(
        text.iter()
            .any(|e| e.starts_with("type `purchase_order`, transition `submit`, guard 1: rule `within_credit`:")
                && e.contains("cycle")),
        "{text:#?}"
    );
}

#[test]
fn a_rule_that_does_not_compile_is_reported_under_its_name() {
    let errors = compile(&[CUSTOMER], "bad: { frobnicate: [1] }").expect_err("bad rule");
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(&errors[0], EngineError::Rule { rule, message } if rule == "bad" && message.contains("frobnicate"))
    );
}

#[test]
fn packages_without_rules_still_compile_with_compile() {
    let ontology = ontology::compile_types(defs(&[CUSTOMER])).expect("ontology");
    let t = CompiledTenant::compile(ontology, &Limits::default()).expect("compiles");
    assert_eq!(t.rules().names().count(), 0);
}

// --- four-eyes ---------------------------------------------------------------------------------

fn submitted() -> Entity {
    order("SUBMITTED", json!({"customer_id": id(10).to_string(), "total_amount": 5, "items": [{"qty": 1}]}))
}

fn approve(actor: &Actor, history: Option<IndexMap<String, Vec<String>>>) -> Result<String, Rejection> {
    let t = tenant();
    let mut p = prepare(&t, &submitted(), "approve", &Value::Null, actor, now())?;
    if let Some(h) = history {
        p.set_history(h);
    }
    decide(p, IndexMap::new(), &Limits::default()).map(|d| d.to)
}

fn fired_submit(by: &str) -> IndexMap<String, Vec<String>> {
    IndexMap::from([("submit".to_string(), vec![by.to_string()])])
}

#[test]
fn four_eyes_refuses_the_creator_and_earlier_actors_first() {
    // The creator (u-ann) may not approve, even with the role; the message says why.
    let ann = user("u-ann", &["manager"]);
    let r = approve(&ann, Some(IndexMap::new())).expect_err("creator");
    let Rejection::GuardFailed { index, message, trace } = &r else { panic!("{r:?}") };
    assert_eq!((*index, message.as_str()), (None, "four-eyes: you created this purchase order"));
    assert_eq!(r.code(), "GUARD_FAILED");
    let last = trace.guards.last().expect("four-eyes result");
    assert_eq!((last.kind, last.index, last.passed), (GuardKind::FourEyes, 0, false));
    assert_eq!(last.values["entity.created_by"], "u-ann");

    // Bob submitted it: Bob may not approve it; Carol may.
    let bob = user("u-bob", &["manager"]);
    let r = approve(&bob, Some(fired_submit("u-bob"))).expect_err("submitter");
    assert_eq!(r.to_string(), "four-eyes: you fired submit on this purchase order");
    let carol = user("u-carol", &["manager"]);
    assert_eq!(approve(&carol, Some(fired_submit("u-bob"))).expect("another user"), "APPROVED");

    // Four-eyes comes before the guards: a failing guard is not reached.
    let t = tenant();
    let mut zero = submitted();
    zero.data["total_amount"] = json!(0);
    let p = prepare(&t, &zero, "approve", &Value::Null, &ann, now()).expect("prepares");
    let r = decide(p, IndexMap::new(), &Limits::default()).expect_err("creator");
    assert!(r.to_string().starts_with("four-eyes"), "{r}");
}

#[test]
fn four_eyes_needs_history_fails_closed_and_exempts_the_system() {
    let t = tenant();
    let carol = user("u-carol", &["manager"]);
    let p = prepare(&t, &submitted(), "approve", &Value::Null, &carol, now()).expect("prepares");
    assert_eq!(p.needs_history(), ["submit"]);
    // The store did not give the history: refused, as an internal error (a bug of the caller).
    let r = decide(p, IndexMap::new(), &Limits::default()).expect_err("no history");
    assert!(matches!(r, Rejection::Internal(_)), "{r:?}");

    let system =
        Actor { id: "u-ann".into(), email: String::new(), roles: vec![], system: true, attributes: Default::default() };
    let p = prepare(&t, &submitted(), "approve", &Value::Null, &system, now()).expect("prepares");
    assert!(p.needs_history().is_empty());
    assert_eq!(decide(p, IndexMap::new(), &Limits::default()).expect("exempt").to, "APPROVED");

    // Transitions without four-eyes need nothing.
    let p = prepare(&t, &draft(1.0, json!([])), "remind", &Value::Null, &user("u", &["sales"]), now()).expect("p");
    assert!(p.needs_history().is_empty());
}

#[test]
fn guard_results_explain_four_eyes_before_the_guards() {
    let t = tenant();
    let bob = user("u-bob", &["sales"]);
    let mut p = prepare_explain(&t, &submitted(), "approve", &bob, now()).expect("explains");
    p.set_history(fired_submit("u-bob"));
    let results = guard_results(&p, &IndexMap::new(), &Limits::default());
    let summary: Vec<(GuardKind, usize, bool, &str)> =
        results.iter().map(|g| (g.kind, g.index, g.passed, g.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (GuardKind::FourEyes, 0, true, "four-eyes: not by the creator of this purchase order"),
            (GuardKind::FourEyes, 1, false, "four-eyes: you fired submit on this purchase order"),
            (GuardKind::Guard, 0, true, "Nothing to approve"),
        ]
    );
    let v = serde_json::to_value(&results[1]).expect("serializes");
    assert_eq!(v["kind"], "four_eyes");
    assert_eq!(v["values"]["history.submit"], json!(["u-bob"]));
}

#[test]
fn four_eyes_entries_must_be_creator_or_a_transition() {
    let errors = errors_with("four_eyes: [creator, submit]", "four_eyes: [creator, submitt]", RULES);
    assert_eq!(
        errors,
        ["type `purchase_order`, transition `approve`, four_eyes: `submitt` is neither `creator` nor a transition of this workflow"]
    );
}

// --- editable ----------------------------------------------------------------------------------

#[test]
fn editable_fields_per_state() {
    let t = tenant();
    let wf = t.workflow("purchase_order").expect("workflow");
    let e = wf.editable("DRAFT").expect("editable in DRAFT");
    assert_eq!(e.fields, ["notes", "items"]);
    assert_eq!(e.roles, ["sales"]);
    assert!(wf.editable("SUBMITTED").is_none());
    assert!(wf.editable("NO_SUCH_STATE").is_none());

    let errors = errors_with("fields: [notes, items]", "fields: [notes, state, itemz]", RULES);
    assert_eq!(
        errors,
        [
            "type `purchase_order`, state `DRAFT`, editable: `state` is not a field of `purchase_order`",
            "type `purchase_order`, state `DRAFT`, editable: `itemz` is not a field of `purchase_order`",
        ]
    );
}

// --- timers ------------------------------------------------------------------------------------

#[test]
fn timers_are_compiled_per_state() {
    let t = tenant();
    let wf = t.workflow("purchase_order").expect("workflow");
    let draft: Vec<(Duration, &str, &Value)> =
        wf.timers("DRAFT").iter().map(|t| (t.after, t.transition.as_str(), &t.input)).collect();
    assert_eq!(
        draft,
        [
            (Duration::from_secs(72 * 3600), "cancel", &json!({"reason": "not submitted in time"})),
            (Duration::from_secs(1800), "remind", &json!({})),
        ]
    );
    assert_eq!(wf.timers("SUBMITTED")[0].after, Duration::from_secs(7 * 86400));
    assert!(wf.timers("APPROVED").is_empty());
    assert!(wf.timers("NOPE").is_empty());
}

#[test]
fn timer_errors_name_the_state_and_the_timer() {
    let cases = [
        ("after: 72h", "after: 72 parsecs", "timer 0: `after: 72 parsecs` is not a duration"),
        ("after: 30m", "after: 0s", "timer 1: `after` must be longer than zero"),
        ("transition: remind }", "transition: remindd }", "timer 1: unknown transition `remindd`"),
        ("transition: remind }", "transition: approve }", "timer 1: transition `approve` cannot be fired from `DRAFT`"),
        ("{ reason: stale }", "{ reason: x }", "invalid input for `cancel`: /input/reason:"),
        ("input: { reason: stale }", "input: {}", "invalid input for `cancel`: /input/reason: is required"),
    ];
    for (from, to, expected) in cases {
        let errors = errors_with(from, to, RULES);
        assert_eq!(errors.len(), 1, "{from} → {to}: {errors:#?}");
        assert!(errors[0].contains(expected), "{from} → {to}: {}", errors[0]);
        assert!(errors[0].starts_with("type `purchase_order`, state `"), "{}", errors[0]);
    }
}

#[test]
fn unknown_keys_in_states_are_refused() {
    let errors = errors_with("editable: { fields", "editable: { feilds", RULES);
    assert!(errors[0].contains("feilds"), "{errors:?}");
}
