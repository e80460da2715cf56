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
