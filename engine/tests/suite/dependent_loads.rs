//! Loads that read loads declared before them (`price_list: {id: {var: customer.price_list_id}}`
//! after `customer`): compile-time order checks, stage-by-stage requests through the pure core,
//! and what explaining shows of loads the actor may not view.

use chrono::{DateTime, TimeZone, Utc};
use engine::compiled::CompiledTenant;
use engine::eval::{decide, guard_results, prepare, prepare_explain, LoadKind, Rejection};
use engine::model::{Actor, Entity, Loaded};
use engine::permissions::{Action, Permissions, RolePermissions};
use engine::{EngineError, Limits};
use indexmap::IndexMap;
use serde_json::{json, Value};
use uuid::Uuid;

const CUSTOMER: &str = r#"
name: customer
fields:
  name: { type: string, required: true }
  price_list_id: { type: reference, to: price_list }
  credit_limit: { type: number }
"#;

const PRICE_LIST: &str = r#"
name: price_list
fields:
  name: { type: string, required: true }
  discount: { type: number }
"#;

const NOTE: &str = r#"
name: note
fields:
  customer_id: { type: reference, to: customer }
  text: { type: string }
"#;

/// `submit` loads the customer, then its price list (stage 1) and the customer's notes (stage 1),
/// then the list's sibling customers (stage 2, reading stage 1).
const ORDER: &str = r#"
name: sale
fields:
  customer_id: { type: reference, to: customer, required: true }
  discount: { type: number }
  price_list_name: { type: string }
workflow:
  states:
    DRAFT: { kind: initial }
    SUBMITTED: {}
  transitions:
    submit:
      from: [DRAFT]
      to: SUBMITTED
      roles: [sales]
      load:
        customer: { type: customer, id: { var: entity.customer_id } }
        price_list: { type: price_list, id: { var: customer.price_list_id } }
        notes: { type: note, where: { customer_id: { var: customer.id } } }
        siblings: { type: customer, where: { price_list_id: { var: price_list.id } } }
      guards:
        - rule: { "!!": [ { var: price_list } ] }
          message: The customer has no price list
        - rule: { "<": [ { var: price_list.discount }, 50 ] }
          message: The discount is too large
      script: |
        entity.discount = price_list.discount;
        entity.price_list_name = price_list.name;
"#;

fn compile(types: &[&str]) -> Result<CompiledTenant, Vec<EngineError>> {
    let defs = types.iter().map(|s| serde_yaml_ng::from_str(s).expect("type YAML parses")).collect();
    let ontology = ontology::compile_types(defs).expect("ontology compiles");
    CompiledTenant::compile(ontology, &Limits::default())
}

fn tenant() -> CompiledTenant {
    compile(&[CUSTOMER, PRICE_LIST, NOTE, ORDER]).expect("compiles")
}

/// The errors of compiling ORDER with its `load:` block replaced by `loads`.
fn load_errors(loads: &str) -> Vec<String> {
    let start = ORDER.find("      load:\n").expect("load block");
    let end = ORDER.find("      guards:").expect("guards");
    let changed = format!("{}      load:\n{loads}{}", &ORDER[..start], &ORDER[end..]);
    let errors = compile(&[CUSTOMER, PRICE_LIST, NOTE, &changed]).expect_err("does not compile");
    errors.iter().map(ToString::to_string).collect()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid time")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn row(n: u128, type_name: &str, data: Value) -> Entity {
    Entity {
        id: id(n),
        type_name: type_name.into(),
        state: "ACTIVE".into(),
        version: 1,
        data,
        created_by: "u".into(),
        updated_by: "u".into(),
        created_at: now(),
        updated_at: now(),
    }
}

fn sale() -> Entity {
    Entity { state: "DRAFT".into(), ..row(1, "sale", json!({ "customer_id": id(10).to_string() })) }
}

fn sales() -> Actor {
    Actor {
        id: "u-sam".into(),
        email: "sam@x.test".into(),
        roles: vec!["sales".into()],
        system: false,
        attributes: Default::default(),
    }
}

fn customer() -> Entity {
    row(10, "customer", json!({ "name": "Acme", "price_list_id": id(20).to_string() }))
}

fn price_list(discount: f64) -> Entity {
    row(20, "price_list", json!({ "name": "Special", "discount": discount }))
}

#[test]
fn loads_get_stages_from_what_they_read() {
    let t = tenant();
    let submit = t.workflow("sale").and_then(|w| w.transition("submit")).expect("submit");
    let stages: Vec<(&str, usize, Vec<String>)> =
        submit.loads().iter().map(|l| (l.name.as_str(), l.stage, l.reads.clone())).collect();
    assert_eq!(
        stages,
        [
            ("customer", 0, vec![]),
            ("price_list", 1, vec!["customer".to_string()]),
            ("notes", 1, vec!["customer".to_string()]),
            ("siblings", 2, vec!["price_list".to_string()]),
        ]
    );
    assert_eq!(submit.last_load_stage(), 2);
}

#[test]
fn a_load_reading_a_later_load_or_itself_does_not_compile() {
    let later = load_errors(
        "        price_list: { type: price_list, id: { var: customer.price_list_id } }\n        \
         customer: { type: customer, id: { var: entity.customer_id } }\n",
    );
    assert_eq!(later.len(), 1, "{later:?}");
    assert!(
        later[0].contains("transition `submit`")
            && later[0].contains("load `price_list`")
            && later[0].contains("id: reads `customer.price_list_id` of load `customer`, which is declared after"),
        "{later:?}"
    );

    let itself = load_errors(
        "        customer: { type: customer, id: { var: customer.id } }\n        \
         price_list: { type: price_list, id: { var: customer.price_list_id } }\n",
    );
    assert_eq!(itself.len(), 1, "{itself:?}");
    assert!(
        itself[0].contains("load `customer`")
            && itself[0].contains("id: reads `customer.id`: a load cannot read itself"),
        "{itself:?}"
    );
}

#[test]
fn requests_come_stage_by_stage_from_what_was_loaded() {
    let t = tenant();
    let mut p = prepare(&t, &sale(), "submit", &json!({}), &sales(), now()).expect("prepares");
    let names = |reqs: &[engine::eval::LoadRequest]| reqs.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(p.pending_loads()), ["customer"]);
    assert_eq!(p.pending_loads()[0].kind, LoadKind::ById(Some(id(10))));
    assert!(!p.loads_complete());

    let mut loaded: IndexMap<String, Loaded> = IndexMap::new();
    loaded.insert("customer".into(), Loaded::One(Some(customer())));
    assert!(p.next_stage(&loaded).expect("stage 1"));
    assert_eq!(names(p.pending_loads()), ["price_list", "notes"]);
    assert_eq!(p.pending_loads()[0].kind, LoadKind::ById(Some(id(20))));
    assert_eq!(p.pending_loads()[1].kind, LoadKind::Where(vec![("customer_id".into(), json!(id(10).to_string()))]));

    loaded.insert("price_list".into(), Loaded::One(Some(price_list(10.0))));
    loaded.insert("notes".into(), Loaded::Many(vec![]));
    assert!(p.next_stage(&loaded).expect("stage 2"));
    assert_eq!(names(p.pending_loads()), ["siblings"]);
    assert_eq!(p.pending_loads()[0].kind, LoadKind::Where(vec![("price_list_id".into(), json!(id(20).to_string()))]));

    loaded.insert("siblings".into(), Loaded::Many(vec![customer()]));
    assert!(!p.next_stage(&loaded).expect("done"));
    assert!(p.pending_loads().is_empty());
    assert!(p.loads_complete());
    assert_eq!(p.load_requests().len(), 4);

    let d = decide(p, loaded, &Limits::default()).expect("decides");
    assert_eq!(d.data["discount"].as_f64(), Some(10.0));
    assert_eq!(d.data["price_list_name"], "Special");
    let traces: Vec<(&str, usize)> = d.trace.loads.iter().map(|l| (l.name.as_str(), l.rows)).collect();
    assert_eq!(traces, [("customer", 1), ("price_list", 1), ("notes", 0), ("siblings", 1)]);
}

#[test]
fn a_missing_earlier_load_gives_an_empty_dependent_load() {
    let t = tenant();
    let mut p = prepare(&t, &sale(), "submit", &json!({}), &sales(), now()).expect("prepares");
    let mut loaded: IndexMap<String, Loaded> = IndexMap::new();
    loaded.insert("customer".into(), Loaded::One(None));
    assert!(p.next_stage(&loaded).expect("stage 1"));
    assert_eq!(p.pending_loads()[0].kind, LoadKind::ById(None));
    assert_eq!(p.pending_loads()[1].kind, LoadKind::Where(vec![("customer_id".into(), Value::Null)]));
    loaded.insert("price_list".into(), Loaded::One(None));
    loaded.insert("notes".into(), Loaded::Many(vec![]));
    assert!(p.next_stage(&loaded).expect("stage 2"));
    loaded.insert("siblings".into(), Loaded::Many(vec![]));
    assert!(!p.next_stage(&loaded).expect("done"));
    let r = decide(p, loaded, &Limits::default()).expect_err("no price list");
    assert!(matches!(&r, Rejection::GuardFailed { index: Some(0), .. }), "{r:?}");
}

#[test]
fn rows_given_for_a_stage_not_computed_yet_are_not_seen() {
    // The store must ask for the next stage: a dependent load's rows handed to `decide` without
    // its request are ignored (it counts as empty), never trusted.
    let t = tenant();
    let p = prepare(&t, &sale(), "submit", &json!({}), &sales(), now()).expect("prepares");
    let mut loaded: IndexMap<String, Loaded> = IndexMap::new();
    loaded.insert("customer".into(), Loaded::One(Some(customer())));
    loaded.insert("price_list".into(), Loaded::One(Some(price_list(10.0))));
    let r = decide(p, loaded, &Limits::default()).expect_err("price list not requested");
    assert!(matches!(&r, Rejection::GuardFailed { index: Some(0), .. }), "{r:?}");
}

#[test]
fn explaining_leaves_out_values_of_loads_the_actor_may_not_view() {
    let sales_perms: RolePermissions =
        [("sale".to_string(), vec![Action::View]), ("customer".to_string(), vec![Action::View])].into_iter().collect();
    let t = tenant().with_permissions(Permissions::new([("sales", Some(&sales_perms)), ("admin", None)]));
    let explain = |actor: &Actor| {
        let mut p = prepare_explain(&t, &sale(), "submit", actor, now()).expect("explains");
        let mut loaded: IndexMap<String, Loaded> = IndexMap::new();
        loaded.insert("customer".into(), Loaded::One(Some(customer())));
        assert!(p.next_stage(&loaded).expect("stage 1"));
        loaded.insert("price_list".into(), Loaded::One(Some(price_list(80.0))));
        loaded.insert("notes".into(), Loaded::Many(vec![]));
        assert!(p.next_stage(&loaded).expect("stage 2"));
        loaded.insert("siblings".into(), Loaded::Many(vec![]));
        assert!(!p.next_stage(&loaded).expect("done"));
        guard_results(&p, &loaded, &Limits::default())
    };

    // sales may view customers but not price lists: the failed guard keeps its message and
    // result, not the price list's discount.
    let guards = explain(&sales());
    assert_eq!(guards.iter().map(|g| g.passed).collect::<Vec<_>>(), [true, false]);
    assert_eq!(guards[1].message, "The discount is too large");
    assert!(guards[1].values.is_empty(), "{:?}", guards[1].values);

    let admin = Actor { roles: vec!["admin".into()], ..sales() };
    let guards = explain(&admin);
    assert_eq!(guards[1].values["price_list.discount"], json!(80.0));
}
