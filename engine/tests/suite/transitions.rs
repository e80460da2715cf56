//! Transitions end to end through the pure core: a small package (orders with items, customers,
//! inventory, notes) compiled from YAML, then `prepare` → (loads supplied by the test) → `decide`.

use chrono::{DateTime, TimeZone, Utc};
use engine::compiled::CompiledTenant;
use engine::eval::{decide, guard_results, prepare, Decision, LoadKind, Rejection};
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

const PRODUCT: &str = r#"
name: product
fields:
  name: { type: string, required: true }
"#;

const NOTE: &str = r#"
name: note
fields:
  text: { type: string, required: true }
  kind: { type: enum, values: [info, warning], default: info }
  number: { type: string, generated: true, required: true }
"#;

const INVENTORY: &str = r#"
name: inventory
fields:
  warehouse_id: { type: string, required: true }
  product_id: { type: reference, to: product, required: true }
  quantity_on_hand: { type: integer, minimum: 0, required: true }
  quantity_reserved: { type: integer, minimum: 0, default: 0 }
workflow:
  states:
    ACTIVE: { kind: initial }
    FROZEN: {}
  transitions:
    freeze: { from: [ACTIVE], to: FROZEN, roles: [admin] }
"#;

const ORDER: &str = r#"
name: order
fields:
  customer_id: { type: reference, to: customer, required: true }
  warehouse_id: { type: string, required: true }
  notes: { type: string, max_length: 20 }
  total_amount: { type: number, minimum: 0, default: 0 }
  items:
    type: array
    items:
      type: object
      fields:
        product_id: { type: reference, to: product, required: true }
        quantity: { type: integer, minimum: 1, required: true }
        unit_price: { type: number, minimum: 0 }
        line_total: { type: number }
workflow:
  states:
    DRAFT: { kind: initial, label: Draft }
    SUBMITTED: {}
    CANCELLED: { kind: terminal }
  transitions:
    submit:
      from: [DRAFT]
      to: SUBMITTED
      roles: [sales, manager]
      input:
        type: object
        properties: { note: { type: string, maxLength: 10 } }
        additionalProperties: false
      load:
        customer: { type: customer, id: { var: entity.customer_id } }
        stock:
          type: inventory
          where:
            warehouse_id: { var: entity.warehouse_id }
            product_id: { map: [ { var: entity.items }, { var: product_id } ] }
          lock: true
      guards:
        - rule: { "!!": [ { var: entity.items } ] }
          message: An order needs at least one line item
        - rule: { "<=": [ { reduce: [ { var: entity.items }, { "+": [ { var: accumulator }, { "*": [ { var: current.quantity }, { var: current.unit_price } ] } ] }, 0 ] }, { var: customer.credit_limit } ] }
          message: The order exceeds the customer's credit limit
      script: |
        let total = 0;
        for item in entity.items {
          item.line_total = item.quantity * item.unit_price;
          total += item.line_total;
          for s in stock {
            if s.product_id == item.product_id {
              update(s, #{ quantity_reserved: s.quantity_reserved + item.quantity });
            }
          }
        }
        entity.items = entity.items.map(|item| { item.line_total = item.quantity * item.unit_price; item });
        entity.total_amount = total;
        if input.note != () { entity.notes = input.note; }
      events: [order.submitted]
    reserve_unlocked:
      from: [DRAFT]
      to: DRAFT
      roles: [sales]
      load:
        stock: { type: inventory, where: { warehouse_id: { var: entity.warehouse_id }, state: ACTIVE } }
      script: |
        for s in stock { update(s, #{ quantity_reserved: 1 }); }
    side_effects:
      from: [DRAFT]
      to: DRAFT
      roles: [sales]
      load:
        stock: { type: inventory, where: { warehouse_id: { var: entity.warehouse_id } }, lock: true }
      script: |
        let id = create("note", #{ text: "order " + entity.id });
        transition(stock[0], "freeze");
        transition(stock[0], "freeze", #{ why: id });
        emit("order.noted", #{ note_id: id, total: entity.total_amount });
      events: [order.touched]
    refuse:  { from: [DRAFT], to: CANCELLED, roles: [sales], script: 'fail("x")' }
    spin:    { from: [DRAFT], to: DRAFT, roles: [sales], script: 'loop { }' }
    recurse: { from: [DRAFT], to: DRAFT, roles: [sales], script: 'fn f(n) { f(n + 1) } f(0);' }
    bloat:   { from: [DRAFT], to: DRAFT, roles: [sales], script: 'let s = "x"; loop { s += s; }' }
    hijack:  { from: [DRAFT], to: DRAFT, roles: [sales], script: 'entity.state = "CANCELLED";' }
    corrupt: { from: [DRAFT], to: DRAFT, roles: [sales], script: 'entity.items[0].quantity = "many";' }
    bad_create: { from: [DRAFT], to: DRAFT, roles: [sales], script: 'create("note", #{ kind: "loud" });' }
    cancel:  { from: [DRAFT, SUBMITTED], to: CANCELLED, roles: [manager] }
"#;

fn defs(sources: &[&str]) -> Vec<ontology::EntityTypeDef> {
    sources.iter().map(|s| serde_yaml_ng::from_str(s).expect("type YAML parses")).collect()
}

/// The tenant, its roles declared without `permissions:` (each may view every type).
fn tenant() -> CompiledTenant {
    let ontology =
        ontology::compile_types(defs(&[CUSTOMER, PRODUCT, NOTE, INVENTORY, ORDER])).expect("ontology compiles");
    let roles = ["sales", "manager"].map(|r| (r, None));
    CompiledTenant::compile(ontology, &Limits::default())
        .expect("workflows compile")
        .with_permissions(engine::permissions::Permissions::new(roles))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid time")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn entity(type_name: &str, n: u128, state: &str, data: Value) -> Entity {
    Entity {
        id: id(n),
        type_name: type_name.into(),
        state: state.into(),
        version: 1,
        data,
        created_by: "u-creator".into(),
        updated_by: "u-creator".into(),
        created_at: now(),
        updated_at: now(),
    }
}

fn sales() -> Actor {
    Actor {
        id: "u-sales".into(),
        email: "s@x.test".into(),
        roles: vec!["sales".into()],
        system: false,
        attributes: Default::default(),
    }
}

const SODA: u128 = 100;
const WATER: u128 = 101;

fn order() -> Entity {
    entity(
        "order",
        1,
        "DRAFT",
        json!({
            "customer_id": id(10).to_string(),
            "warehouse_id": "main",
            "total_amount": 0,
            "items": [
                {"product_id": id(SODA).to_string(), "quantity": 3, "unit_price": 1.25},
                {"product_id": id(WATER).to_string(), "quantity": 2, "unit_price": 0.5}
            ]
        }),
    )
}

fn customer(limit: f64) -> Entity {
    entity("customer", 10, "ACTIVE", json!({"name": "Acme", "credit_limit": limit}))
}

fn stock_row(n: u128, product: u128, reserved: i64) -> Entity {
    entity(
        "inventory",
        n,
        "ACTIVE",
        json!({"warehouse_id": "main", "product_id": id(product).to_string(),
               "quantity_on_hand": 10, "quantity_reserved": reserved}),
    )
}

fn loads(pairs: Vec<(&str, Loaded)>) -> IndexMap<String, Loaded> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn submit_loads(limit: f64) -> IndexMap<String, Loaded> {
    loads(vec![
        ("customer", Loaded::One(Some(customer(limit)))),
        ("stock", Loaded::Many(vec![stock_row(20, SODA, 1), stock_row(21, WATER, 0)])),
    ])
}

fn fire(
    t: &CompiledTenant,
    e: &Entity,
    transition: &str,
    input: Value,
    actor: &Actor,
    loaded: IndexMap<String, Loaded>,
) -> Result<Decision, Rejection> {
    let p = prepare(t, e, transition, &input, actor, now())?;
    decide(p, loaded, &Limits::default())
}

fn simple(transition: &str) -> Result<Decision, Rejection> {
    let t = tenant();
    let stock = loads(vec![("stock", Loaded::Many(vec![stock_row(20, SODA, 0)]))]);
    fire(&t, &order(), transition, Value::Null, &sales(), stock)
}

#[test]
fn invalid_transition_lists_available_ones() {
    let t = tenant();
    let mut e = order();
    e.state = "SUBMITTED".into();
    let err = prepare(&t, &e, "submit", &json!({}), &sales(), now()).expect_err("not from SUBMITTED");
    assert_eq!(err, Rejection::InvalidTransition { state: "SUBMITTED".into(), available: vec!["cancel".into()] });
    assert_eq!(err.code(), "INVALID_TRANSITION");
    let err = prepare(&t, &e, "nope", &json!({}), &sales(), now()).expect_err("unknown");
    assert!(matches!(err, Rejection::InvalidTransition { .. }));
}

#[test]
fn roles_are_checked_and_system_bypasses() {
    let t = tenant();
    let err = prepare(&t, &order(), "cancel", &json!({}), &sales(), now()).expect_err("sales cannot cancel");
    assert_eq!(err, Rejection::Forbidden { required_roles: vec!["manager".into()] });
    let system = Actor { roles: vec![], system: true, ..sales() };
    assert!(prepare(&t, &order(), "cancel", &json!({}), &system, now()).is_ok());
}

#[test]
fn input_is_validated_with_paths() {
    let t = tenant();
    let err = prepare(&t, &order(), "submit", &json!({"note": "far too long a note", "x": 1}), &sales(), now())
        .expect_err("invalid input");
    let Rejection::Validation { errors } = err else { panic!("{err:?}") };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"/input/note"), "{errors:?}");
    assert!(paths.contains(&"/input/x"), "{errors:?}");
}

#[test]
fn load_requests_by_id_and_where() {
    let t = tenant();
    let p = prepare(&t, &order(), "submit", &Value::Null, &sales(), now()).expect("prepares");
    let reqs = p.load_requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].name, "customer");
    assert_eq!(reqs[0].kind, LoadKind::ById(Some(id(10))));
    assert!(!reqs[0].lock);
    assert_eq!(reqs[1].type_name, "inventory");
    assert!(reqs[1].lock);
    assert_eq!(
        reqs[1].kind,
        LoadKind::Where(vec![
            ("warehouse_id".into(), json!("main")),
            ("product_id".into(), json!([id(SODA).to_string(), id(WATER).to_string()])),
        ])
    );
    let mut e = order();
    e.data["customer_id"] = Value::Null;
    let p = prepare(&t, &e, "submit", &Value::Null, &sales(), now()).expect("prepares");
    assert_eq!(p.load_requests()[0].kind, LoadKind::ById(None));
}

#[test]
fn guard_failure_has_message_and_trace() {
    let t = tenant();
    let err = fire(&t, &order(), "submit", json!({}), &sales(), submit_loads(4.0)).expect_err("over the limit");
    let Rejection::GuardFailed { index, message, trace } = &err else { panic!("{err:?}") };
    assert_eq!(*index, Some(1));
    assert_eq!(message, "The order exceeds the customer's credit limit");
    assert_eq!(err.code(), "GUARD_FAILED");
    assert!(trace.guards[0].passed);
    assert_eq!(trace.guards[1].values["customer.credit_limit"], json!(4.0));

    let mut empty = order();
    empty.data["items"] = json!([]);
    let err = fire(&t, &empty, "submit", json!({}), &sales(), submit_loads(100.0)).expect_err("no items");
    assert!(matches!(&err, Rejection::GuardFailed { index: Some(0), message, .. } if message.contains("at least one")));

    let p = prepare(&t, &empty, "submit", &json!({}), &sales(), now()).expect("prepares");
    let all = guard_results(&p, &submit_loads(100.0), &Limits::default());
    assert_eq!(all.iter().map(|g| g.passed).collect::<Vec<_>>(), [false, true]);
}

#[test]
fn script_computes_totals_and_updates_locked_rows() {
    let t = tenant();
    let d = fire(&t, &order(), "submit", json!({"note": "rush"}), &sales(), submit_loads(100.0)).expect("submits");
    assert_eq!((d.from.as_str(), d.to.as_str()), ("DRAFT", "SUBMITTED"));
    assert_eq!(d.data["total_amount"], json!(4.75));
    assert_eq!(d.data["items"][0]["line_total"], json!(3.75));
    assert_eq!(d.data["items"][1]["line_total"], json!(1));
    assert_eq!(d.data["notes"], json!("rush"));
    assert_eq!(d.changes["total_amount"], json!({"from": 0, "to": 4.75}));
    assert!(d.changes.get("customer_id").is_none());
    assert_eq!(d.updates.len(), 2);
    assert_eq!(d.updates[0].id, id(20));
    assert_eq!(d.updates[0].data["quantity_reserved"], json!(4));
    assert_eq!(d.updates[0].changes, json!({"quantity_reserved": {"from": 1, "to": 4}}));
    assert_eq!(d.updates[1].data["quantity_reserved"], json!(2));
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].name, "order.submitted");
    assert_eq!(d.events[0].payload["to"], "SUBMITTED");
    assert!(d.trace.script_ran);
    assert_eq!(d.trace.effects.len(), 2);
    assert_eq!(d.trace.loads[1].rows, 2);
}

#[test]
fn update_of_unlocked_row_is_rejected() {
    let err = simple("reserve_unlocked").expect_err("not locked");
    let Rejection::ScriptFailed { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("lock: true"), "{message}");
}

#[test]
fn create_follow_up_and_emit() {
    let d = simple("side_effects").expect("runs");
    assert_eq!(d.creates.len(), 1);
    let note = &d.creates[0];
    assert_eq!((note.type_name.as_str(), note.state.as_str()), ("note", "ACTIVE"));
    assert_eq!(note.data, json!({"text": format!("order {}", id(1)), "kind": "info"}));
    assert_eq!(note.id.get_version_num(), 7);
    assert_eq!(d.follow_ups.len(), 2);
    assert_eq!(d.follow_ups[0].id, id(20));
    assert_eq!(d.follow_ups[0].transition, "freeze");
    assert_eq!(d.follow_ups[0].input, json!({}));
    assert_eq!(d.follow_ups[1].input, json!({"why": note.id.to_string()}));
    let names: Vec<&str> = d.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["order.touched", "order.noted"]);
    assert_eq!(d.events[1].payload, json!({"note_id": note.id.to_string(), "total": 0}));
}

#[test]
fn invalid_create_is_rejected_with_path() {
    let err = simple("bad_create").expect_err("invalid note");
    let Rejection::Validation { errors } = &err else { panic!("{err:?}") };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"/create/note/0/text"), "{errors:?}");
    assert!(paths.contains(&"/create/note/0/kind"), "{errors:?}");
    assert!(!paths.iter().any(|p| p.ends_with("/number")), "generated is not required: {errors:?}");
}

#[test]
fn fail_rejects_like_a_guard_with_its_message() {
    let err = simple("refuse").expect_err("fails");
    assert!(matches!(&err, Rejection::GuardFailed { index: None, message, .. } if message == "x"), "{err:?}");
    assert_eq!(err.code(), "GUARD_FAILED");
}

#[test]
fn runaway_scripts_hit_limits() {
    for name in ["spin", "recurse", "bloat"] {
        let err = simple(name).expect_err(name);
        assert!(matches!(err, Rejection::ScriptLimit { .. }), "{name}: {err:?}");
        assert_eq!(err.code(), "SCRIPT_LIMIT");
    }
}

#[test]
fn reserved_key_change_is_rejected() {
    let err = simple("hijack").expect_err("reserved");
    assert!(matches!(&err, Rejection::ScriptFailed { message, .. } if message.contains("entity.state")), "{err:?}");
}

#[test]
fn changed_data_is_validated_with_its_path() {
    let err = simple("corrupt").expect_err("type error");
    let Rejection::Validation { errors } = &err else { panic!("{err:?}") };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "/entity/items/0/quantity");
}

#[test]
fn compile_collects_every_error() {
    let broken = r#"
name: order
fields:
  items: { type: array, items: { type: string } }
workflow:
  states:
    A: { kind: initial }
    B: { kind: initial }
  transitions:
    t1: { from: [A, Z], to: Y, roles: [] }
    t2:
      from: [A]
      to: B
      roles: [x]
      input: { type: objekt }
      load:
        c: { type: ghost, id: { var: entity.x } }
        d: { type: order, where: { colour: red }, id: { var: entity.x } }
        e: { type: order, where: { colour: red, state: A } }
      guards:
        - { rule: { "==": [1, 1] }, message: fine }
        - { rule: { frobnicate: [] }, message: bad }
      script: |
        let a = 1;
        let b = a +;
"#;
    let ontology = ontology::compile_types(defs(&[broken])).expect("ontology compiles");
    let errors = CompiledTenant::compile(ontology, &Limits::default()).expect_err("workflow errors");
    let has = |f: &dyn Fn(&EngineError) -> bool| errors.iter().any(f);
    assert!(has(&|e| matches!(e, EngineError::InitialStates { count: 2, .. })), "{errors:#?}");
    assert!(has(&|e| matches!(e, EngineError::UnknownState { field: "from", state, .. } if state == "Z")));
    assert!(has(&|e| matches!(e, EngineError::UnknownState { field: "to", state, .. } if state == "Y")));
    assert!(has(&|e| matches!(e, EngineError::NoRoles { transition, .. } if transition == "t1")));
    assert!(has(&|e| matches!(e, EngineError::InputSchema { transition, .. } if transition == "t2")));
    assert!(has(&|e| matches!(e, EngineError::Load { load, message, .. } if load == "c" && message.contains("ghost"))));
    assert!(has(
        &|e| matches!(e, EngineError::Load { load, message, .. } if load == "d" && message.contains("exactly one"))
    ));
    assert!(has(
        &|e| matches!(e, EngineError::Load { load, message, .. } if load == "e" && message.contains("colour"))
    ));
    assert!(has(&|e| matches!(e, EngineError::Guard { index: 1, .. })));
    assert!(has(&|e| matches!(e, EngineError::Script { line: Some(2), .. })), "{errors:#?}");
    assert_eq!(errors.len(), 10, "{errors:#?}");
    for e in &errors {
        assert!(e.to_string().contains("type `order`"), "{e}");
    }
}

#[test]
fn types_without_workflow_get_the_implicit_one() {
    let t = tenant();
    let wf = t.workflow("customer").expect("implicit workflow");
    assert_eq!(wf.initial_state(), "ACTIVE");
    assert_eq!(wf.transitions().count(), 0);
    let wf = t.workflow("order").expect("order");
    assert_eq!(wf.initial_state(), "DRAFT");
    let names: Vec<&str> = wf.transitions_from("SUBMITTED").map(|t| t.name()).collect();
    assert_eq!(names, ["cancel"]);
    assert!(wf.transition("submit").is_some());
    assert!(t.type_("order").is_some());
    assert_eq!(t.ontology().len(), 5);
}

#[test]
fn explain_skips_roles_and_input_and_rejections_serialize() {
    let t = tenant();
    let nobody = Actor { roles: vec![], ..sales() };
    let p = engine::eval::prepare_explain(&t, &order(), "submit", &nobody, now()).expect("explains");
    assert_eq!(p.load_requests().len(), 2);
    let guards = guard_results(&p, &submit_loads(1.0), &Limits::default());
    assert_eq!(guards.iter().map(|g| g.passed).collect::<Vec<_>>(), [true, false]);

    let err = fire(&t, &order(), "submit", json!({}), &sales(), submit_loads(1.0)).expect_err("guard");
    let v = serde_json::to_value(&err).expect("serializes");
    assert_eq!(v["code"], "GUARD_FAILED");
    assert_eq!(v["details"]["index"], 1);
    assert_eq!(v["details"]["trace"]["guards"][1]["values"]["customer.credit_limit"], json!(1.0));
}
