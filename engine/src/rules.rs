//! Named rules: the tenant's reusable JSON-Logic (`rules:` in `tenant.yaml`).
//!
//! A rule is referred to as `{"rule": "name"}` anywhere in a guard, a load expression or
//! another rule, and is replaced by its definition when the definitions are compiled: the
//! evaluator never sees a `rule` operator, and nothing is looked up per request. Rules may refer
//! to other rules, but not in a cycle.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::EngineError;
use crate::logic::Logic;

/// The operator that refers to a named rule.
pub const RULE_OPERATOR: &str = "rule";

/// A tenant's named rules, each fully expanded (no `{"rule": …}` left inside).
#[derive(Debug, Clone, Default)]
pub struct NamedRules {
    /// Every rule, expanded, or why it cannot be (unknown reference, cycle, does not compile).
    expanded: IndexMap<String, Result<Value, String>>,
}

impl NamedRules {
    /// Expands every rule and checks that it compiles, pushing one [`EngineError::Rule`] per
    /// broken rule to `errors`.
    pub fn compile(defs: &IndexMap<String, Value>, errors: &mut Vec<EngineError>) -> NamedRules {
        let mut expanded = IndexMap::with_capacity(defs.len());
        for name in defs.keys() {
            // Memoised in `expanded`, errors included.
            let _ = expand_named(name, defs, &mut expanded, &mut Vec::new());
        }
        // Keep the order written, whatever order the recursion finished them in.
        let mut ordered = IndexMap::with_capacity(expanded.len());
        for name in defs.keys() {
            let mut result = expanded.swap_remove(name).unwrap_or_else(|| Err("not expanded".into()));
            if let Ok(rule) = &result {
                if let Err(e) = Logic::compile(rule) {
                    result = Err(e.to_string());
                }
            }
            if let Err(message) = &result {
                errors.push(EngineError::Rule { rule: name.clone(), message: message.clone() });
            }
            ordered.insert(name.clone(), result);
        }
        NamedRules { expanded: ordered }
    }

    /// The expanded definition of a valid rule.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.expanded.get(name).and_then(|r| r.as_ref().ok())
    }

    /// The names of the rules, in the order written (broken ones included).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.expanded.keys().map(String::as_str)
    }

    /// Replaces every `{"rule": "name"}` in `logic` by the named rule. The error names the rule
    /// (`unknown rule `x``, `rule `x`: …` for a rule that is itself broken).
    pub fn expand(&self, logic: &Value) -> Result<Value, String> {
        substitute(logic, &mut |name| match self.expanded.get(name) {
            None => Err(format!("unknown rule `{name}`")),
            Some(Ok(rule)) => Ok(rule.clone()),
            Some(Err(why)) => Err(format!("rule `{name}`: {why}")),
        })
    }
}

/// Expands rule `name` (memoised in `done`); `stack` is the chain of rules being expanded.
fn expand_named(
    name: &str,
    defs: &IndexMap<String, Value>,
    done: &mut IndexMap<String, Result<Value, String>>,
    stack: &mut Vec<String>,
) -> Result<Value, String> {
    if let Some(result) = done.get(name) {
        return result.clone();
    }
    if let Some(start) = stack.iter().position(|n| n == name) {
        let cycle: Vec<&str> = stack[start..].iter().map(String::as_str).chain(std::iter::once(name)).collect();
        return Err(format!("the rules refer to each other in a cycle: {}", cycle.join(" → ")));
    }
    let Some(def) = defs.get(name) else {
        return Err(format!("unknown rule `{name}`"));
    };
    stack.push(name.to_string());
    let result = substitute(def, &mut |inner| expand_named(inner, defs, done, stack));
    stack.pop();
    done.insert(name.to_string(), result.clone());
    result
}

/// Replaces each `{"rule": <name>}` by `resolve(name)`.
fn substitute(value: &Value, resolve: &mut dyn FnMut(&str) -> Result<Value, String>) -> Result<Value, String> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key(RULE_OPERATOR) => match &map[RULE_OPERATOR] {
            Value::String(name) => resolve(name),
            other => Err(format!("`{{\"rule\": …}}` takes the name of a rule, not {other}")),
        },
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                out.insert(k.clone(), substitute(v, resolve)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            items.iter().map(|v| substitute(v, resolve)).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(v: Value) -> IndexMap<String, Value> {
        serde_json::from_value(v).expect("a map")
    }

    #[test]
    fn expands_nested_rules() {
        let mut errors = Vec::new();
        let r = NamedRules::compile(
            &rules(json!({
                "has_items": {"!!": [{"var": "entity.items"}]},
                "ready": {"and": [{"rule": "has_items"}, {"rule": "small"}]},
                "small": {"<": [{"var": "entity.total_amount"}, 100]}
            })),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            r.expand(&json!({"or": [{"rule": "ready"}, false]})).expect("expands"),
            json!({"or": [{"and": [{"!!": [{"var": "entity.items"}]}, {"<": [{"var": "entity.total_amount"}, 100]}]}, false]})
        );
        assert_eq!(r.expand(&json!({"rule": "nope"})).expect_err("unknown"), "unknown rule `nope`");
        assert!(r.expand(&json!({"rule": 3})).is_err());
    }

    #[test]
    fn cycles_and_unknown_references_are_errors() {
        let mut errors = Vec::new();
        let r = NamedRules::compile(
            &rules(json!({
                "a": {"!": {"rule": "b"}},
                "b": {"!": {"rule": "a"}},
                "me": {"rule": "me"},
                "dangling": {"rule": "ghost"},
                "ok": true
            })),
            &mut errors,
        );
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 4, "{text:?}");
        assert!(text[0].contains("rule `a`") && text[0].contains("a → b → a"), "{text:?}");
        assert!(text[2].contains("me → me"), "{text:?}");
        assert!(text[3].contains("unknown rule `ghost`"), "{text:?}");
        let e = r.expand(&json!({"rule": "b"})).expect_err("cyclic");
        assert!(e.starts_with("rule `b`: ") && e.contains("cycle"), "{e}");
        assert_eq!(r.get("ok"), Some(&json!(true)));
        assert_eq!(r.names().count(), 5);
    }
}
