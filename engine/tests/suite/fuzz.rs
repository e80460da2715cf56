//! Property-based fuzzing of the tenant code the engine runs (docs/reliability.md, "Fuzzing"):
//!
//! * JSON-Logic (`engine::logic`): rules built from every operator (and unknown ones), with
//!   arguments of every shape, compiled and evaluated over arbitrary data under small budgets;
//! * the Rhai sandbox (`engine::script`): scripts built from statements that loop, recurse,
//!   double strings and arrays, call the effect functions with arguments of every type, throw
//!   and fail, and arbitrary text.
//!
//! Whatever the input: no panic; a refusal is the error variant of its kind (`LogicCompile` at
//! compile, `LogicEval`/`RuleLimit`/`Decision` when evaluated; `ScriptCompile`, then
//! `ScriptFailed`/`ScriptRejected`/`ScriptLimit`); and what a script returns stays within the
//! sandbox's bounds (effects, string, array and map sizes). `PROPTEST_CASES` sets the number of
//! cases of each property (default: a short run for `make test`).

use std::time::Duration;

use engine::error::EngineError;
use engine::limits::Limits;
use engine::logic::{budget, Logic, LogicContext};
use engine::script::{Effect, ScriptEngine};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    Config { cases, failure_persistence: None, max_shrink_iters: 2000, ..Config::default() }
}

/// Budgets small enough that a case that hits them ends quickly.
fn small_limits() -> Limits {
    Limits {
        max_operations: 20_000,
        script_timeout: Duration::from_millis(200),
        max_string_size: 4096,
        max_array_size: 256,
        max_map_size: 64,
        max_effects: 16,
        max_call_levels: 16,
        rule_steps: 20_000,
        rule_timeout: Duration::from_millis(200),
        max_rule_memory: 1 << 20,
        max_rule_size: 16 * 1024,
        ..Limits::default()
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "",
            "a",
            "entity",
            "entity.n",
            "entity.items",
            "input.x",
            "2024-01-31T10:00:00Z",
            "1e308"
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The evaluation context: entity, input, actor, now, and a load.
fn context() -> impl Strategy<Value = Value> {
    (json_value(), json_value(), prop::collection::vec(json_value(), 0..4), json_value()).prop_map(
        |(n, x, items, load)| {
            json!({
                "entity": { "id": "0190a0b0-0000-7000-8000-000000000001", "state": "NEW", "version": 1,
                            "n": n, "items": items, "title": "t" },
                "input": { "x": x },
                "actor": { "id": "u1", "email": "u@t.test", "roles": ["admin"], "system": false, "attributes": {} },
                "now": "2026-01-01T00:00:00Z",
                "load": load,
            })
        },
    )
}

/// Every operator the engine knows of, and some it does not.
const OPERATORS: &[&str] = &[
    "var",
    "missing",
    "missing_some",
    "if",
    "?:",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "or",
    "and",
    ">",
    ">=",
    "<",
    "<=",
    "max",
    "min",
    "+",
    "-",
    "*",
    "/",
    "%",
    "map",
    "filter",
    "reduce",
    "all",
    "some",
    "none",
    "merge",
    "in",
    "cat",
    "substr",
    "log",
    "preserve",
    "throw",
    "try",
    "exists",
    "split",
    "sort",
    "group_by",
    "length",
    "abs",
    "ceil",
    "floor",
    "starts_with",
    "ends_with",
    "upper",
    "lower",
    "trim",
    "now",
    "datetime",
    "timestamp",
    "parse_date",
    "format_date",
    "date_diff",
    "date",
    "decide",
    "rule",
    "val",
    "coalesce",
    "no_such_op",
    "",
];

fn rule() -> impl Strategy<Value = Value> {
    let var = prop_oneof![
        prop::sample::select(vec![
            "entity.n",
            "entity.items",
            "input.x",
            "load",
            "actor.roles",
            "",
            "current",
            "accumulator",
            "entity.items.0",
            "no.such"
        ])
        .prop_map(|p| json!({ "var": p })),
        (prop::sample::select(vec!["entity.n", "input.x", "x"]), leaf()).prop_map(|(p, d)| json!({ "var": [p, d] })),
    ];
    prop_oneof![leaf(), var].prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            3 => (prop::sample::select(OPERATORS.to_vec()), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(op, args)| json!({ op: args })),
            1 => (prop::sample::select(OPERATORS.to_vec()), inner.clone()).prop_map(|(op, a)| json!({ op: a })),
            1 => prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            // Two keys: not an operation.
            1 => (inner.clone(), inner).prop_map(|(a, b)| json!({ "==": [a, 1], "!=": [b, 2] })),
        ]
    })
}

fn check_rule(rule: &Value, data: &Value, limits: &Limits) -> Result<(), TestCaseError> {
    let logic = match Logic::compile_limited(rule, limits) {
        Ok(l) => l,
        Err(EngineError::LogicCompile { message }) => {
            prop_assert!(!message.is_empty());
            return Ok(());
        }
        Err(other) => return Err(TestCaseError::fail(format!("compile: an error of another kind: {other:?}"))),
    };
    let _ = logic.vars();
    let ctx = LogicContext::new(data);
    let first = budget(limits, || logic.evaluate(&ctx));
    let truthy = budget(limits, || logic.truthy(&ctx));
    for r in [first.as_ref().map(|_| ()), truthy.as_ref().map(|_| ())] {
        if let Err(e) = r {
            prop_assert!(
                matches!(
                    e,
                    EngineError::LogicEval { .. } | EngineError::RuleLimit { .. } | EngineError::Decision { .. }
                ),
                "evaluate: an error of another kind: {e:?}"
            );
        }
    }
    // Pure: the same rule over the same data gives the same value (unless a budget ran out).
    if let Ok(v) = &first {
        match budget(limits, || logic.evaluate(&ctx)) {
            Ok(again) => prop_assert_eq!(v, &again, "two evaluations differ"),
            Err(EngineError::RuleLimit { .. }) => {}
            Err(e) => return Err(TestCaseError::fail(format!("first Ok, then {e:?}"))),
        }
    }
    Ok(())
}

/// A statement of a generated script.
fn statement() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("1".to_string()),
        Just("1.5".to_string()),
        Just("\"s\"".to_string()),
        Just("()".to_string()),
        Just("[1, 2]".to_string()),
        Just("#{ a: 1 }".to_string()),
        Just("true".to_string()),
        Just("entity.n".to_string()),
        Just("input.x".to_string()),
        Just("entity.items".to_string()),
        Just("actor.roles".to_string()),
        Just("now".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z]{0,5}".prop_map(|s| format!("{s:?}")),
    ];
    let call = prop::sample::select(vec![
        "emit",
        "create",
        "update",
        "transition",
        "fail",
        "decide",
        "today",
        "days_between",
        "add_days",
        "parse_json",
        "to_json",
        "len",
        "sub_string",
        "pad",
        "print",
        "debug",
        "type_of",
        "eval",
        "sleep",
    ]);
    prop_oneof![
        (value.clone(), value.clone()).prop_map(|(a, b)| format!("let x = {a} + {b};")),
        value.clone().prop_map(|v| format!("entity.f = {v};")),
        value.clone().prop_map(|v| format!("entity.n = {v};")),
        (call.clone(), prop::collection::vec(value.clone(), 0..4))
            .prop_map(|(f, args)| format!("{f}({});", args.join(", "))),
        (call, prop::collection::vec(value.clone(), 0..4))
            .prop_map(|(f, args)| format!("Fn({f:?}).call({});", args.join(", "))),
        Just("let s = \"ab\"; loop { s += s; }".to_string()),
        Just("let a = [1]; loop { a += a; }".to_string()),
        Just("let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }".to_string()),
        Just("while true {}".to_string()),
        Just("for i in 0..1000000000 { emit(\"e\", #{ i: i }); }".to_string()),
        Just("for i in 0..100 { create(\"thing\", #{ i: i }); }".to_string()),
        Just("fn f(n) { f(n + 1) } f(0);".to_string()),
        Just("fn g(n) { if n > 0 { g(n - 1) } else { 0 } } g(10);".to_string()),
        Just("throw \"boom\";".to_string()),
        Just("entity = ();".to_string()),
        Just("entity = #{};".to_string()),
        Just("entity.f = 1 / 0;".to_string()),
        Just("entity.f = 9223372036854775807 + 1;".to_string()),
        Just("entity.f = \"x\".pad(100000000, \"y\");".to_string()),
        Just("entity.f = entity.items[1000];".to_string()),
        Just("entity.f = load.a.b.c;".to_string()),
        Just("let x = ((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))));".to_string()),
        Just("let m = #{ \"id\": 1, \"state\": 2 }; entity += m;".to_string()),
        "[ -~]{0,20}",
    ]
}

fn script() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(statement(), 0..6).prop_map(|s| s.join("\n")),
        1 => any::<String>(),
    ]
}

/// Every string, array and map in `v` is within the script's bounds.
fn within(v: &Value, limits: &Limits, what: &str) -> Result<(), TestCaseError> {
    match v {
        Value::String(s) => prop_assert!(s.len() <= limits.max_string_size, "{what}: a string of {} bytes", s.len()),
        Value::Array(a) => {
            prop_assert!(a.len() <= limits.max_array_size, "{what}: an array of {}", a.len());
            for x in a {
                within(x, limits, what)?;
            }
        }
        Value::Object(m) => {
            prop_assert!(m.len() <= limits.max_map_size, "{what}: a map of {}", m.len());
            for x in m.values() {
                within(x, limits, what)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_script(engine: &ScriptEngine, source: &str, ctx: &Value) -> Result<(), TestCaseError> {
    let limits = engine.limits().clone();
    let script = match engine.compile(source, &["load"]) {
        Ok(s) => s,
        Err(EngineError::ScriptCompile { message, .. }) => {
            prop_assert!(!message.is_empty());
            return Ok(());
        }
        Err(other) => return Err(TestCaseError::fail(format!("compile: an error of another kind: {other:?}"))),
    };
    let _ = script.effect_calls();
    match engine.run(&script, ctx) {
        Ok(out) => {
            prop_assert!(out.effects.len() <= limits.max_effects, "{} effects", out.effects.len());
            within(&out.data, &limits, "data")?;
            for e in &out.effects {
                match e {
                    Effect::Update { patch, .. } => within(patch, &limits, "update")?,
                    Effect::Create { data, .. } => within(data, &limits, "create")?,
                    Effect::FollowUp { input, .. } => within(input, &limits, "follow-up")?,
                    Effect::Emit { payload, .. } => within(payload, &limits, "emit")?,
                }
            }
        }
        Err(e) => prop_assert!(
            matches!(
                e,
                EngineError::ScriptFailed { .. }
                    | EngineError::ScriptRejected { .. }
                    | EngineError::ScriptLimit { .. }
                    | EngineError::Decision { .. }
            ),
            "run: an error of another kind: {e:?}"
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn json_logic_never_panics_and_fails_typed(rule in rule(), data in context()) {
        check_rule(&rule, &data, &small_limits())?;
    }

    #[test]
    fn arbitrary_json_as_a_rule_never_panics(rule in json_value(), data in context()) {
        check_rule(&rule, &data, &small_limits())?;
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn scripts_never_panic_and_stay_in_their_sandbox(source in script(), ctx in context()) {
        let engine = ScriptEngine::new(&small_limits());
        check_script(&engine, &source, &ctx)?;
    }
}

/// Inputs kept as regressions: the fuzz's first finds and the bounds it checks.
#[test]
fn regressions() {
    let limits = small_limits();
    let ctx =
        json!({ "entity": { "n": 1, "items": [] }, "input": { "x": "1e308" }, "actor": {}, "now": "", "load": null });
    for rule in [
        json!({ "+": ["1e308", "1e308"] }),
        json!({ "-": [i64::MIN] }),
        json!({ "*": [i64::MAX, 2] }),
        json!({ "%": [i64::MIN, -1] }),
        json!({ "/": [1, 0] }),
        json!({ "substr": ["abc", i64::MIN, i64::MAX] }),
        json!({ "var": [[], { "var": "" }] }),
        json!({ "reduce": [{ "var": "entity.items" }, { "+": [{ "var": "accumulator" }, 1] }, null] }),
        json!({ "map": [[1, 2], { "merge": [{ "var": "" }, { "var": "" }] }] }),
    ] {
        check_rule(&rule, &ctx, &limits).unwrap_or_else(|e| panic!("{rule}: {e}"));
    }
    let engine = ScriptEngine::new(&limits);
    for source in [
        "let s = \"ab\"; loop { s += s; }",
        "fn f(n) { f(n + 1) } f(0);",
        "for i in 0..100 { emit(\"e\", #{ i: i }); }",
        "entity.f = 9223372036854775807 + 1;",
        "entity = ();",
        // Rhai's `sleep` blocked the thread outside every budget: this held CI until its limit.
        "sleep(9054745454148354925);",
        "Fn(\"sleep\").call(1e18);",
    ] {
        check_script(&engine, source, &ctx).unwrap_or_else(|e| panic!("{source}: {e}"));
    }
}
