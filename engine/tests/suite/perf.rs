//! Rough costs of the hot paths (ignored by default; run with
//! `cargo test -p switchyard-engine --release --test perf -- --ignored --nocapture`).

use std::time::Instant;

use engine::limits::Limits;
use engine::logic::{Logic, LogicContext};
use engine::script::ScriptEngine;
use serde_json::{json, Value};

fn context() -> Value {
    let items: Vec<Value> = (0..10)
        .map(|i| json!({"product_id": format!("p{i}"), "quantity": i + 1, "unit_price": 1.5 + f64::from(i)}))
        .collect();
    json!({
        "entity": {"id": "0190a0f0-0000-7000-8000-000000000001", "type": "order", "state": "DRAFT",
                   "version": 3, "created_by": "u", "updated_by": "u",
                   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                   "customer_id": "c1", "warehouse_id": "w1", "notes": "hello", "total_amount": 0,
                   "items": items},
        "input": {"note": "x"},
        "actor": {"id": "u", "email": "u@x.test", "roles": ["sales"], "system": false},
        "now": "2026-01-01T00:00:00Z",
        "customer": {"id": "c1", "credit_limit": 1000.0, "balance": 10}
    })
}

const SCRIPT: &str = r#"
let total = 0.0;
let count = 0;
for item in entity.items {
    let line = item.quantity * item.unit_price;
    total += line;
    count += 1;
}
let discount = 0.0;
if total > 100.0 {
    discount = total * 0.05;
}
if customer.balance > 0 {
    discount -= 1;
}
entity.total_amount = total - discount;
entity.notes = entity.notes + " / " + input.note;
if count == 0 {
    fail("no items");
}
emit("order.priced", #{ total: entity.total_amount });
"#;

fn per_iter(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

#[test]
#[ignore = "timing, not correctness"]
fn costs() {
    let ctx = context();
    let engine = ScriptEngine::new(&Limits::default());
    let script = engine.compile(SCRIPT, &["customer"]).expect("compiles");
    let us = per_iter(20_000, || {
        engine.run(&script, &ctx).expect("runs");
    });
    println!("20-line script incl. JSON<->Dynamic: {us:.1} µs");

    let guard = Logic::compile(&json!({"<=": [{"var": "entity.total_amount"}, {"var": "customer.credit_limit"}]}))
        .expect("compiles");
    let us = per_iter(20_000, || {
        let _ = LogicContext::new(&ctx);
    });
    println!("LogicContext::new (once per transition): {us:.2} µs");
    let lc = LogicContext::new(&ctx);
    let us = per_iter(200_000, || {
        assert!(guard.truthy(&lc).expect("evaluates"));
    });
    println!("guard on a converted context: {:.0} ns", us * 1000.0);
}

/// A `hit` table of `rows` rows (a numeric range and a list cell each), with inputs that
/// first match row `rows - 10` (about half the rows under `collect`); the benchmark
/// (`bench/src/evalcost.rs`) measures the same shapes in release.
fn decision_table(hit: &str, rows: usize) -> (engine::decision::DecisionTable, serde_json::Map<String, Value>) {
    let regions = ["north", "south", "east", "west", "coast"];
    let rules: Vec<Value> = (0..rows)
        .map(|i| {
            let low = i * 10;
            let high = if hit == "collect" { 100_000 } else { low + 9 };
            let region = if hit == "collect" && i % 2 == 0 {
                "-".to_string()
            } else {
                format!("{}, {}", regions[i % 5], regions[(i + 1) % 5])
            };
            json!({ "when": { "weight": format!("[{low}..{high}]"), "region": region }, "then": { "fee": i } })
        })
        .collect();
    let mut def = json!({
        "name": "fees", "hit": hit,
        "inputs": { "weight": { "type": "number" }, "region": { "type": "string" } },
        "outputs": { "fee": { "type": "number" } }, "rules": rules, "default": { "fee": 0 },
    });
    if hit == "collect" {
        def["aggregate"] = json!("sum");
    }
    let table =
        engine::decision::DecisionTable::compile(serde_json::from_value(def).expect("a table")).expect("compiles");
    let target = rows - 10;
    let inputs = json!({ "weight": target * 10 + 5, "region": regions[target % 5] });
    (table, inputs.as_object().cloned().expect("an object"))
}

#[test]
#[ignore = "timing; run with --run-ignored"]
fn decision_tables() {
    for (hit, rows) in [("first", 200), ("collect", 50)] {
        let (table, inputs) = decision_table(hit, rows);
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(table.evaluate(std::hint::black_box(&inputs)).expect("evaluates"));
        }
        let per = start.elapsed().as_nanos() / n;
        println!("decision table, {rows} rows, hit {hit}: {per} ns per evaluation");
    }
}
