//! Decision tables called from a transition: `{"decide": …}` in guards and load expressions,
//! `decide(…)` in scripts, the traces they leave in the decision and in the explanation, rows
//! kept as data, and a unique violation answered as the tenant's `DECISION_FAILED`.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use engine::compiled::CompiledTenant;
use engine::decision::{DataTables, DecisionDef, Decisions};
use engine::eval::{decide, guard_results, prepare, prepare_explain, Rejection};
use engine::model::{Actor, Entity};
use engine::Limits;
use indexmap::IndexMap;
use serde_json::{json, Value};
use uuid::Uuid;

const ORDER: &str = r#"
name: sales_order
fields:
  tier: { type: string }
  amount: { type: number }
  discount: { type: number }
  carrier: { type: string }
workflow:
  states:
    DRAFT: { kind: initial }
    PRICED: {}
  transitions:
    price:
      from: [DRAFT]
      to: PRICED
      roles: [sales]
      guards:
        - rule: { "<": [ { decide: [ discount, { amount: { var: entity.amount } }, rate ] }, 0.5 ] }
          message: The discount is too large
      script: |
        let d = decide("discount", #{ amount: entity.amount });
        entity.discount = d.rate;
        entity.carrier = decide("carrier", #{ region: "north" }).carrier;
    route:
      from: [DRAFT]
      to: DRAFT
      roles: [sales]
      load:
        same_carrier:
          type: sales_order
          where: { carrier: { decide: [ carrier, { region: { var: entity.tier } }, carrier ] } }
"#;

const DISCOUNT: &str = r#"
name: discount
inputs:
  tier: { type: string, expr: { var: entity.tier } }
  amount: { type: number }
outputs:
  rate: { type: number }
hit: first
rules:
  - when: { tier: gold, amount: ">= 1000" }
    then: { rate: 0.15 }
  - when: { tier: gold }
    then: { rate: 0.1 }
default: { rate: 0 }
"#;

const CARRIER: &str = r#"
name: carrier
inputs:
  region: { type: string }
outputs:
  carrier: { type: string }
hit: unique
rows_from: { type: carrier_rule }
default: { carrier: pickup }
"#;

fn tenant(tables: &[&str]) -> CompiledTenant {
    let def: ontology::EntityTypeDef = serde_yaml_ng::from_str(ORDER).expect("type parses");
    let ontology = ontology::compile_types(vec![def]).expect("ontology compiles");
    let defs: Vec<DecisionDef> = tables.iter().map(|t| serde_yaml_ng::from_str(t).expect("table parses")).collect();
    CompiledTenant::compile_with(ontology, &IndexMap::new(), &Limits::default())
        .expect("compiles")
        .with_decisions(Decisions::compile(defs).expect("tables compile"))
        .with_permissions(engine::permissions::Permissions::new([("sales", None)]))
}

fn order(tier: &str, amount: f64) -> Entity {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("a time");
    Entity {
        id: Uuid::from_u128(1),
        type_name: "sales_order".into(),
        state: "DRAFT".into(),
        version: 1,
        data: json!({"tier": tier, "amount": amount}),
        created_by: "u".into(),
        updated_by: "u".into(),
        created_at: now,
        updated_at: now,
    }
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

/// The carrier table's rows as entities.
fn carriers(rows: &[Value]) -> Arc<DataTables> {
    let t = tenant(&[DISCOUNT, CARRIER]);
    let table = t.decisions().get("carrier").expect("the table");
    let ids: Vec<String> = (0..rows.len()).map(|i| format!("row-{i}")).collect();
    let with = table.with_rows(ids.iter().cloned().zip(rows.iter())).expect("rows compile");
    Arc::new([("carrier".to_string(), Ok(Arc::new(with)))].into_iter().collect())
}

#[test]
fn guards_and_scripts_decide_with_a_trace() {
    let t = tenant(&[DISCOUNT, CARRIER]);
    let now = Utc::now();
    let mut p = prepare(&t, &order("gold", 1500.0), "price", &json!({}), &sales(), now).expect("prepares");
    p.set_data_tables(carriers(&[json!({"region": "north", "carrier": "van"})])).expect("no loads to compute again");
    let d = decide(p, IndexMap::new(), &Limits::default()).expect("decides");
    assert_eq!(d.data["discount"], json!(0.15), "the tier came from the input's expression");
    assert_eq!(d.data["carrier"], json!("van"), "the row kept as data");
    // The guard's own trace, and the script's.
    let guard = &d.trace.guards[0];
    assert_eq!(guard.decisions.len(), 1);
    assert_eq!(guard.decisions[0].table, "discount");
    assert_eq!(guard.decisions[0].winner.as_ref().map(|w| w.row), Some(0));
    assert_eq!(guard.decisions[0].inputs["tier"], json!("gold"));
    let tables: Vec<&str> = d.trace.decisions.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(tables, vec!["discount", "carrier"]);
    assert_eq!(d.trace.decisions[1].winner.as_ref().and_then(|w| w.id.as_deref()), Some("row-0"));
    let text = serde_json::to_value(&d.trace).expect("serializes");
    assert_eq!(text["decisions"][1]["matched"][0]["id"], "row-0");
}

#[test]
fn without_its_rows_a_data_table_gives_its_default() {
    let t = tenant(&[DISCOUNT, CARRIER]);
    let p = prepare(&t, &order("silver", 10.0), "price", &json!({}), &sales(), Utc::now()).expect("prepares");
    let d = decide(p, IndexMap::new(), &Limits::default()).expect("decides");
    assert_eq!(d.data["discount"], json!(0));
    assert_eq!(d.data["carrier"], json!("pickup"));
    assert!(d.trace.decisions[1].default_used);
}

#[test]
fn a_guard_over_a_table_fails_with_the_tables_trace_in_the_explanation() {
    let big = DISCOUNT.replace("rate: 0.15", "rate: 0.6");
    let t = tenant(&[&big, CARRIER]);
    let p = prepare(&t, &order("gold", 1500.0), "price", &json!({}), &sales(), Utc::now()).expect("prepares");
    let err = decide(p, IndexMap::new(), &Limits::default()).expect_err("too large");
    let Rejection::GuardFailed { trace, .. } = &err else { panic!("{err:?}") };
    assert_eq!(trace.guards[0].decisions[0].outputs, json!({"rate": 0.6}));
    let p = prepare_explain(&t, &order("gold", 1500.0), "price", &sales(), Utc::now()).expect("prepares");
    let results = guard_results(&p, &IndexMap::new(), &Limits::default());
    assert!(!results[0].passed);
    assert_eq!(results[0].decisions[0].table, "discount", "{results:?}");
}

#[test]
fn a_unique_violation_is_the_tenants_decision_failed() {
    let t = tenant(&[DISCOUNT, CARRIER]);
    let mut p = prepare(&t, &order("gold", 1.0), "price", &json!({}), &sales(), Utc::now()).expect("prepares");
    p.set_data_tables(carriers(&[
        json!({"region": "north", "carrier": "van"}),
        json!({"region": "north, south", "carrier": "truck"}),
    ]))
    .expect("no loads to compute again");
    let err = decide(p, IndexMap::new(), &Limits::default()).expect_err("two rows");
    assert!(
        matches!(&err, Rejection::ScriptFailed { message, .. } | Rejection::DecisionFailed { message, .. } if message.contains("unique")),
        "{err:?}"
    );
}

#[test]
fn an_unknown_table_in_a_guard_is_decision_failed() {
    let t = tenant(&[CARRIER]);
    let p = prepare(&t, &order("gold", 1.0), "price", &json!({}), &sales(), Utc::now()).expect("prepares");
    let err = decide(p, IndexMap::new(), &Limits::default()).expect_err("no discount table");
    assert_eq!(err.code(), "DECISION_FAILED", "{err:?}");
}

#[test]
fn decide_has_a_checked_shape() {
    for bad in [
        json!({"decide": []}),
        json!({"decide": [1, {}]}),
        json!({"decide": ["t", 3]}),
        json!({"decide": ["t", {}, 4]}),
    ] {
        assert!(engine::logic::Logic::compile(&bad).is_err(), "{bad}");
    }
    let ok = json!({"decide": ["t", {"a": {"var": "x"}}, "o"]});
    assert!(engine::logic::Logic::compile(&ok).is_ok());
    assert_eq!(engine::logic::decided_tables(&json!({"and": [ok, {"decide": ["u"]}]})), vec!["t", "u"]);
}

#[test]
fn load_expressions_decide_with_the_rows_kept_as_data_and_leave_a_trace() {
    let t = tenant(&[DISCOUNT, CARRIER]);
    let mut p = prepare(&t, &order("north", 1.0), "route", &json!({}), &sales(), Utc::now()).expect("prepares");
    // Before the store gives the rows, the table has only its default.
    assert_eq!(format!("{:?}", p.pending_loads()[0].kind), r#"Where([("carrier", String("pickup"))])"#);
    p.set_data_tables(carriers(&[json!({"region": "north", "carrier": "van"})])).expect("computed again");
    assert_eq!(format!("{:?}", p.pending_loads()[0].kind), r#"Where([("carrier", String("van"))])"#);
    let d = decide(p, IndexMap::new(), &Limits::default()).expect("decides");
    assert_eq!(d.trace.decisions.len(), 1);
    assert_eq!(d.trace.decisions[0].outputs, json!({"carrier": "van"}));
}
