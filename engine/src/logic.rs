//! JSON-Logic rules (guards, load expressions, the rules playground), on `datalogic-rs`.
//!
//! A rule is compiled once, when the definitions are compiled ([`Logic::compile`]). The data a
//! transition's rules read (entity, input, actor, now, loads) is converted once per transition
//! into a [`LogicContext`]; every rule of the transition then evaluates against it without
//! copying it again. Truthiness is JSON-Logic's: `0`, `""`, `[]`, `null` and `false` are false.

use std::sync::LazyLock;

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::{DataValue, FromDataValue};
use serde_json::Value;

use crate::error::EngineError;

/// One evaluator for the whole process: `datalogic_rs::Engine` is stateless between calls and
/// thread-safe, and compiled rules must be evaluated by an engine configured like the one that
/// compiled them.
static ENGINE: LazyLock<datalogic_rs::Engine> = LazyLock::new(datalogic_rs::Engine::new);

/// A compiled JSON-Logic rule (thread-safe, shareable).
pub struct Logic {
    compiled: datalogic_rs::Logic,
    source: Value,
}

impl std::fmt::Debug for Logic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Logic").field(&self.source).finish()
    }
}

impl Logic {
    /// Compiles a rule; an unknown operator or malformed arguments is an error.
    pub fn compile(rule: &Value) -> Result<Self, EngineError> {
        check_operators(rule)?;
        let compiled = ENGINE.compile(rule).map_err(|e| EngineError::LogicCompile { message: e.to_string() })?;
        Ok(Self { compiled, source: rule.clone() })
    }

    /// The rule as written.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Every `var` path this rule reads (see [`vars`]).
    pub fn vars(&self) -> Vec<String> {
        vars(&self.source)
    }

    /// Evaluates the rule against a context and returns its value.
    pub fn evaluate(&self, ctx: &LogicContext) -> Result<Value, EngineError> {
        let arena = Bump::new();
        ctx.cell.with_dependent(|_, data| {
            let out = ENGINE.evaluate(&self.compiled, data, &arena).map_err(eval_error)?;
            Value::from_arena(out).map_err(eval_error)
        })
    }

    /// Evaluates the rule and applies JSON-Logic truthiness to the result.
    pub fn truthy(&self, ctx: &LogicContext) -> Result<bool, EngineError> {
        let arena = Bump::new();
        ctx.cell.with_dependent(|_, data| {
            let out = ENGINE.evaluate(&self.compiled, data, &arena).map_err(eval_error)?;
            Ok(ENGINE.truthy(out))
        })
    }
}

/// The evaluator accepts unknown operators at compile time and fails when it meets them; a
/// definition with a misspelt operator should fail when it is published instead.
fn check_operators(rule: &Value) -> Result<(), EngineError> {
    static KNOWN: LazyLock<Vec<&'static str>> = LazyLock::new(|| ENGINE.builtin_operator_names().collect());
    match rule {
        Value::Array(items) => items.iter().try_for_each(check_operators),
        Value::Object(map) => {
            if let Some((op, args)) = map.iter().next().filter(|_| map.len() == 1) {
                if !KNOWN.contains(&op.as_str()) {
                    return Err(EngineError::LogicCompile { message: format!("unknown operator `{op}`") });
                }
                check_operators(args)
            } else {
                map.values().try_for_each(check_operators)
            }
        }
        _ => Ok(()),
    }
}

fn eval_error(e: datalogic_rs::Error) -> EngineError {
    EngineError::LogicEval { message: e.to_string() }
}

self_cell::self_cell!(
    /// The evaluator's own representation of the context, in an arena it owns.
    struct ContextCell {
        owner: Bump,
        #[covariant]
        dependent: DataValue,
    }
);

/// The data rules are evaluated against, converted once into the evaluator's representation.
pub struct LogicContext {
    cell: ContextCell,
}

impl std::fmt::Debug for LogicContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.cell.with_dependent(|_, data| f.debug_tuple("LogicContext").field(data).finish())
    }
}

impl LogicContext {
    /// Converts a JSON value (usually `{entity, input, actor, now, <loads>}`).
    pub fn new(data: &Value) -> Self {
        Self { cell: ContextCell::new(Bump::new(), |arena| DataValue::from_serde_value_in(data, arena)) }
    }
}

/// Compiles and evaluates a rule once (the API's rules playground).
pub fn evaluate_once(logic: &Value, data: &Value) -> Result<Value, EngineError> {
    Logic::compile(logic)?.evaluate(&LogicContext::new(data))
}

/// Operators whose second argument is evaluated once per element of the first.
const ITERATING: &[&str] = &["map", "filter", "all", "some", "none"];

/// Every `var` path a rule reads, in order of first appearance, without duplicates.
///
/// Paths are dotted as written (`entity.customer_id`). Inside `map`, `filter`, `all`, `some`
/// and `none` over a plain `var`, a `var` relative to the element is reported under the
/// array's path with `*` for the element (`entity.items.*.product_id`); in `reduce` the same
/// holds for `current.…` (and `accumulator` is skipped). Element variables of an iteration over
/// a computed array are not reported. Names listed by `missing`/`missing_some` count as read.
pub fn vars(rule: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(rule, None, &mut out);
    out
}

/// `scope`: `None` at the root; `Some(prefix)` inside an iteration whose element lives at
/// `prefix.*`; `Some("")` inside an iteration over a computed array (element vars are skipped).
fn collect(rule: &Value, scope: Option<&str>, out: &mut Vec<String>) {
    let push = |path: String, out: &mut Vec<String>| {
        if !out.contains(&path) {
            out.push(path);
        }
    };
    match rule {
        Value::Array(items) => items.iter().for_each(|v| collect(v, scope, out)),
        Value::Object(map) if map.len() == 1 => {
            let Some((op, args)) = map.iter().next() else {
                return;
            };
            match op.as_str() {
                "var" => {
                    let path = match args {
                        Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
                        other => other.clone(),
                    };
                    let path = match path {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Null => String::new(),
                        computed => {
                            collect(&computed, scope, out);
                            return;
                        }
                    };
                    match scope {
                        None if !path.is_empty() => push(path, out),
                        None => {}
                        Some("") => {}
                        Some(prefix) if path.is_empty() => push(format!("{prefix}.*"), out),
                        Some(prefix) => push(format!("{prefix}.*.{path}"), out),
                    }
                    if let Value::Array(a) = args {
                        a.iter().skip(1).for_each(|v| collect(v, scope, out));
                    }
                }
                "missing" | "missing_some" if scope.is_none() => {
                    let names = match (op.as_str(), args) {
                        ("missing_some", Value::Array(a)) => a.get(1).cloned(),
                        (_, Value::Array(_)) => Some(args.clone()),
                        (_, other) => Some(Value::Array(vec![other.clone()])),
                    };
                    match names {
                        Some(Value::Array(names)) => {
                            for n in names {
                                match n {
                                    Value::String(s) => push(s, out),
                                    other => collect(&other, scope, out),
                                }
                            }
                        }
                        Some(other) => collect(&other, scope, out),
                        None => {}
                    }
                }
                op if ITERATING.contains(&op) || op == "reduce" => {
                    let Value::Array(a) = args else {
                        collect(args, scope, out);
                        return;
                    };
                    let Some(source) = a.first() else { return };
                    collect(source, scope, out);
                    let inner = match (plain_var(source), scope) {
                        (Some(p), None) => p.to_string(),
                        (Some(p), Some(prefix)) if !prefix.is_empty() => format!("{prefix}.*.{p}"),
                        _ => String::new(),
                    };
                    if let Some(body) = a.get(1) {
                        if op == "reduce" {
                            collect_reduce(body, &inner, out);
                        } else {
                            collect(body, Some(&inner), out);
                        }
                    }
                    a.iter().skip(2).for_each(|v| collect(v, scope, out));
                }
                _ => collect(args, scope, out),
            }
        }
        Value::Object(map) => map.values().for_each(|v| collect(v, scope, out)),
        _ => {}
    }
}

/// In a `reduce` body, `current.x` is an element variable and `accumulator` is internal.
fn collect_reduce(body: &Value, inner: &str, out: &mut Vec<String>) {
    let mut found = Vec::new();
    collect(body, None, &mut found);
    for path in found {
        let element =
            if path == "current" { Some(String::new()) } else { path.strip_prefix("current.").map(str::to_string) };
        let path = match element {
            Some(_) if inner.is_empty() => continue,
            Some(rest) if rest.is_empty() => format!("{inner}.*"),
            Some(rest) => format!("{inner}.*.{rest}"),
            None if path == "accumulator" || path.starts_with("accumulator.") => continue,
            None => path,
        };
        if !out.contains(&path) {
            out.push(path);
        }
    }
}

/// The path of `{"var": "path"}` (or `{"var": ["path", default]}`), if the value is one.
fn plain_var(v: &Value) -> Option<&str> {
    let map = v.as_object().filter(|m| m.len() == 1)?;
    match map.get("var")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.first()?.as_str(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_and_evaluates_against_a_shared_context() {
        let ctx = LogicContext::new(&json!({"entity": {"items": [{"q": 2}, {"q": 3}]}, "n": 5}));
        let sum = Logic::compile(&json!({"reduce": [
            {"var": "entity.items"}, {"+": [{"var": "accumulator"}, {"var": "current.q"}]}, 0
        ]}))
        .expect("compiles");
        assert_eq!(sum.evaluate(&ctx).expect("evaluates"), json!(5));
        let gt = Logic::compile(&json!({">": [{"var": "n"}, 4]})).expect("compiles");
        assert!(gt.truthy(&ctx).expect("evaluates"));
        let empty = Logic::compile(&json!({"var": "entity.missing"})).expect("compiles");
        assert!(!empty.truthy(&ctx).expect("evaluates"));
    }

    #[test]
    fn unknown_operator_does_not_compile() {
        let err = Logic::compile(&json!({"and": [true, {"frobnicate": [1]}]})).expect_err("unknown op");
        assert!(matches!(err, EngineError::LogicCompile { .. }), "{err:?}");
    }

    #[test]
    fn evaluate_once_works() {
        let v = evaluate_once(&json!({"cat": ["a", {"var": "x"}]}), &json!({"x": "b"}));
        assert_eq!(v.expect("evaluates"), json!("ab"));
    }

    #[test]
    fn vars_lists_paths_in_order() {
        let rule = json!({"and": [
            {"!!": [{"var": "entity.items"}]},
            {"<=": [{"var": ["entity.total_amount", 0]}, {"var": "customer.credit_limit"}]},
            {"all": [{"var": "entity.items"}, {">": [{"var": "quantity"}, 0]}]},
            {"map": [{"var": "entity.items"}, {"var": ""}]},
            {"reduce": [{"var": "stock"}, {"+": [{"var": "accumulator"}, {"var": "current.qty"}]}, 0]},
            {"missing": ["input.note"]},
            {"==": [{"var": "entity.items"}, 1]}
        ]});
        assert_eq!(
            vars(&rule),
            vec![
                "entity.items",
                "entity.total_amount",
                "customer.credit_limit",
                "entity.items.*.quantity",
                "entity.items.*",
                "stock",
                "stock.*.qty",
                "input.note",
            ]
        );
    }
}
