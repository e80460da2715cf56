//! The shared JSON-Logic conformance suite (`tests/data/jsonlogic-tests.json`): every case must
//! pass through `engine::logic`, compiled once and evaluated against a converted context.

use engine::logic::{evaluate_once, Logic, LogicContext};
use serde_json::Value;

#[test]
fn all_jsonlogic_cases_pass() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jsonlogic-tests.json"))
        .expect("read the suite");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("parse the suite");
    let mut passed = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let Value::Array(parts) = case else { continue }; // comment strings
        let [rule, data, expected] = parts.as_slice() else {
            panic!("malformed case {case}");
        };
        let got = Logic::compile(rule).and_then(|l| l.evaluate(&LogicContext::new(data)));
        let once = evaluate_once(rule, data, &engine::Limits::default());
        match (got, once) {
            (Ok(v), Ok(w)) if numeric_eq(&v, expected) && v == w => passed += 1,
            (v, w) => failures.push(format!("{rule} on {data}: want {expected}, got {v:?} / {w:?}")),
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(passed, 277);
}

/// JSON equality where `1` equals `1.0` (the suite writes some results either way).
fn numeric_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| numeric_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| numeric_eq(v, w)))
        }
        _ => a == b,
    }
}
