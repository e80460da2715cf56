//! Named rules: the tenant's reusable JSON-Logic (`rules:` in `tenant.yaml`).
//!
//! A rule is referred to as `{"rule": "name"}` anywhere in a guard, a load expression or
//! another rule, and is replaced by its definition when the definitions are compiled: the
//! evaluator never sees a `rule` operator, and nothing is looked up per request. Rules may refer
//! to other rules, but not in a cycle.
//!
//! Rules are written by tenants, so expansion is measured before it is done: the size and depth
//! each rule *would* have once expanded are computed from the rules it refers to (in dependency
//! order, with an explicit stack rather than recursion), and a rule over
//! [`Limits::max_rule_size`] or [`Limits::max_rule_depth`] is refused without being built. A
//! chain of a thousand rules each referring to the next, or rules that each use the previous one
//! twice (which would double in size at every step), cost their measurement and an error, never
//! a stack overflow or gigabytes of memory.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::EngineError;
use crate::limits::Limits;
use crate::logic::Logic;

/// The operator that refers to a named rule.
pub const RULE_OPERATOR: &str = "rule";

/// The measure of a JSON value: its approximate size as JSON text, its nesting depth (a scalar
/// is 1), and the named rules it refers to, each with the depth of the reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measure {
    /// Bytes of its JSON text (approximately: numbers count 8), references not included.
    pub size: usize,
    /// Nesting depth, references not included (a reference counts as the depth it sits at).
    pub depth: usize,
    /// `(rule name, depth of the {"rule": …} object)` for every reference, in order.
    pub refs: Vec<(String, usize)>,
    /// A `{"rule": …}` whose argument is not a name.
    pub bad_ref: Option<String>,
}

/// Measures `value` without recursion (an explicit stack), so any depth is safe.
pub fn measure(value: &Value) -> Measure {
    let mut m = Measure::default();
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        m.depth = m.depth.max(depth);
        match v {
            Value::Null | Value::Bool(_) => m.size += 5,
            Value::Number(_) => m.size += 8,
            Value::String(s) => m.size += s.len() + 2,
            Value::Array(items) => {
                m.size += 2 + items.len();
                stack.extend(items.iter().map(|i| (i, depth + 1)));
            }
            Value::Object(map) if map.len() == 1 && map.contains_key(RULE_OPERATOR) => match &map[RULE_OPERATOR] {
                Value::String(name) => m.refs.push((name.clone(), depth)),
                other if m.bad_ref.is_none() => {
                    m.bad_ref = Some(format!("`{{\"rule\": …}}` takes the name of a rule, not {}", short(other)));
                }
                _ => {}
            },
            Value::Object(map) => {
                m.size += 2;
                for (k, item) in map {
                    m.size += k.len() + 4;
                    stack.push((item, depth + 1));
                }
            }
        }
    }
    m
}

/// The first characters of a value, for messages.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// Size and depth a rule has once every reference in it is expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expanded {
    size: usize,
    depth: usize,
}

/// A tenant's named rules, each fully expanded (no `{"rule": …}` left inside).
#[derive(Debug, Clone, Default)]
pub struct NamedRules {
    /// Every rule, expanded, or why it cannot be (unknown reference, cycle, too large, does not
    /// compile).
    expanded: IndexMap<String, Result<Value, String>>,
    /// The expanded measure of every rule that has one.
    sizes: IndexMap<String, Expanded>,
    max_size: usize,
    max_depth: usize,
}

impl NamedRules {
    /// [`NamedRules::compile_limited`] with the default [`Limits`].
    pub fn compile(defs: &IndexMap<String, Value>, errors: &mut Vec<EngineError>) -> NamedRules {
        Self::compile_limited(defs, &Limits::default(), errors)
    }

    /// Measures every rule, expands those within the limits and checks that they compile,
    /// pushing one [`EngineError::Rule`] per broken rule to `errors`, in the order written.
    pub fn compile_limited(
        defs: &IndexMap<String, Value>,
        limits: &Limits,
        errors: &mut Vec<EngineError>,
    ) -> NamedRules {
        let measures: IndexMap<&str, Measure> = defs.iter().map(|(k, v)| (k.as_str(), measure(v))).collect();
        let mut rules = NamedRules {
            expanded: IndexMap::with_capacity(defs.len()),
            sizes: IndexMap::with_capacity(defs.len()),
            max_size: limits.max_rule_size,
            max_depth: limits.max_rule_depth,
        };
        let mut verdicts: IndexMap<String, Result<Expanded, String>> = IndexMap::with_capacity(defs.len());
        for name in defs.keys() {
            measure_named(name, &measures, limits, &mut verdicts);
        }
        // In dependency order (`verdicts` was filled that way), so a rule's references are
        // already expanded when it is.
        let order: Vec<String> = verdicts.keys().cloned().collect();
        for name in order {
            let Some(def) = defs.get(&name) else { continue };
            let result = match verdicts.get(&name) {
                Some(Ok(size)) => rules
                    .substitute_known(def)
                    .and_then(|rule| Logic::compile_limited(&rule, limits).map(|_| rule).map_err(|e| e.to_string()))
                    .map(|rule| (rule, *size)),
                Some(Err(why)) => Err(why.clone()),
                None => Err("not measured".into()),
            };
            let result = result.map(|(rule, size)| {
                rules.sizes.insert(name.clone(), size);
                rule
            });
            rules.expanded.insert(name, result);
        }
        // Report and keep them in the order written.
        let mut ordered = IndexMap::with_capacity(rules.expanded.len());
        for name in defs.keys() {
            let result = rules.expanded.swap_remove(name).unwrap_or_else(|| Err("not expanded".into()));
            if let Err(message) = &result {
                errors.push(EngineError::Rule { rule: name.clone(), message: message.clone() });
            }
            ordered.insert(name.clone(), result);
        }
        rules.expanded = ordered;
        rules
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
    /// (`unknown rule `x``, `rule `x`: …` for a rule that is itself broken), or says that the
    /// result would be too large or too deep (measured before anything is built).
    pub fn expand(&self, logic: &Value) -> Result<Value, String> {
        let m = measure(logic);
        if let Some(bad) = m.bad_ref {
            return Err(bad);
        }
        let mut size = m.size;
        let mut depth = m.depth;
        for (name, at) in &m.refs {
            let e = match self.expanded.get(name) {
                None => return Err(format!("unknown rule `{name}`")),
                Some(Err(why)) => return Err(format!("rule `{name}`: {why}")),
                Some(Ok(_)) => self.sizes.get(name).copied().ok_or_else(|| format!("rule `{name}`: not measured"))?,
            };
            size = size.saturating_add(e.size);
            depth = depth.max(at - 1 + e.depth);
        }
        check(size, depth, self.max_size, self.max_depth)?;
        self.substitute_known(logic)
    }

    /// Substitutes references to rules already expanded (callers have checked the measure).
    fn substitute_known(&self, logic: &Value) -> Result<Value, String> {
        substitute(logic, &mut |name| match self.expanded.get(name) {
            None => Err(format!("unknown rule `{name}`")),
            Some(Ok(rule)) => Ok(rule.clone()),
            Some(Err(why)) => Err(format!("rule `{name}`: {why}")),
        })
    }
}

/// Refuses a rule whose measure exceeds the limits.
fn check(size: usize, depth: usize, max_size: usize, max_depth: usize) -> Result<(), String> {
    if depth > max_depth {
        return Err(format!("nests deeper than {max_depth} levels once its rules are expanded (limit max_rule_depth)"));
    }
    if size > max_size {
        return Err(format!("is larger than {max_size} bytes once its rules are expanded (limit max_rule_size)"));
    }
    Ok(())
}

/// Computes the expanded measure of rule `start` and of every rule it depends on, with an
/// explicit stack (depth-first, post-order), recording each verdict in `verdicts` in dependency
/// order. A cycle is reported for every rule on it; a rule that refers to a broken rule gets that
/// rule's error.
fn measure_named(
    start: &str,
    measures: &IndexMap<&str, Measure>,
    limits: &Limits,
    verdicts: &mut IndexMap<String, Result<Expanded, String>>,
) {
    if verdicts.contains_key(start) {
        return;
    }
    // (rule, index of the next reference to look at); `on_stack` indexes it by name.
    let mut stack: Vec<(String, usize)> = vec![(start.to_string(), 0)];
    let mut on_stack: std::collections::HashMap<String, usize> =
        std::collections::HashMap::from([(start.to_string(), 0)]);
    while let Some((name, next)) = stack.last().cloned() {
        let Some(m) = measures.get(name.as_str()) else {
            stack.pop();
            on_stack.remove(&name);
            verdicts.insert(name.clone(), Err(format!("unknown rule `{name}`")));
            continue;
        };
        if let Some(bad) = &m.bad_ref {
            stack.pop();
            on_stack.remove(&name);
            verdicts.insert(name, Err(bad.clone()));
            continue;
        }
        if let Some((dep, _)) = m.refs.get(next) {
            if let Some(last) = stack.last_mut() {
                last.1 += 1;
            }
            if verdicts.contains_key(dep) {
                continue;
            }
            if let Some(&pos) = on_stack.get(dep) {
                let cycle: Vec<&str> =
                    stack[pos..].iter().map(|(n, _)| n.as_str()).chain(std::iter::once(dep.as_str())).collect();
                let why = format!("the rules refer to each other in a cycle: {}", cycle.join(" → "));
                // Every rule on the cycle is broken the same way.
                while let Some((n, _)) = stack.pop() {
                    on_stack.remove(&n);
                    let done = n == *dep;
                    verdicts.insert(n, Err(why.clone()));
                    if done {
                        break;
                    }
                }
                continue;
            }
            on_stack.insert(dep.clone(), stack.len());
            stack.push((dep.clone(), 0));
            continue;
        }
        // Every reference has a verdict: this rule's is theirs combined.
        stack.pop();
        on_stack.remove(&name);
        let mut size = m.size;
        let mut depth = m.depth;
        let mut verdict = Ok(());
        for (dep, at) in &m.refs {
            match verdicts.get(dep) {
                Some(Ok(e)) => {
                    size = size.saturating_add(e.size);
                    depth = depth.max(at - 1 + e.depth);
                }
                Some(Err(why)) => {
                    // The root cause, once: a chain of rules does not nest its messages.
                    verdict =
                        Err(if why.starts_with("unknown rule") || why.contains("cycle") || why.starts_with("rule `") {
                            why.clone()
                        } else {
                            format!("rule `{dep}`: {why}")
                        });
                    break;
                }
                None => {
                    verdict = Err(format!("unknown rule `{dep}`"));
                    break;
                }
            }
        }
        let verdict = verdict
            .and_then(|()| check(size, depth, limits.max_rule_size, limits.max_rule_depth))
            .map(|()| Expanded { size, depth });
        verdicts.insert(name, verdict);
    }
}

/// Replaces each `{"rule": <name>}` by `resolve(name)`. Recursive: only called on values whose
/// expanded depth has been checked against [`Limits::max_rule_depth`].
fn substitute(value: &Value, resolve: &mut dyn FnMut(&str) -> Result<Value, String>) -> Result<Value, String> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key(RULE_OPERATOR) => match &map[RULE_OPERATOR] {
            Value::String(name) => resolve(name),
            other => Err(format!("`{{\"rule\": …}}` takes the name of a rule, not {}", short(other))),
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
        let names: Vec<&str> = r.names().collect();
        assert_eq!(names, ["has_items", "ready", "small"], "the order written");
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

    /// A chain of rules, each referring to the next: measured without recursion, refused by
    /// depth, no stack overflow (this aborted the process before).
    #[test]
    fn a_long_chain_is_refused_by_depth_without_overflowing_the_stack() {
        let n = 20_000;
        let mut defs = IndexMap::new();
        for i in 0..n {
            defs.insert(format!("r{i}"), json!({"!": {"rule": format!("r{}", i + 1)}}));
        }
        defs.insert(format!("r{n}"), json!(true));
        let mut errors = Vec::new();
        let r = NamedRules::compile(&defs, &mut errors);
        assert!(!errors.is_empty());
        assert!(errors[0].to_string().contains("deeper than"), "{}", errors[0]);
        assert!(r.get(&format!("r{}", n - 10)).is_some(), "the end of the chain is within the limit");
        let e = r.expand(&json!({"rule": "r0"})).expect_err("too deep");
        assert!(e.contains("deeper than"), "{e}");
    }

    /// Rules that each use the previous one twice would double at every step (2^60 nodes):
    /// refused by size as measured, before anything is built.
    #[test]
    fn exponential_expansion_is_refused_by_size_before_it_is_built() {
        let mut defs = IndexMap::new();
        defs.insert("r0".to_string(), json!({"==": [{"var": "entity.x"}, "a long enough string"]}));
        for i in 1..60 {
            defs.insert(
                format!("r{i}"),
                json!({"or": [{"rule": format!("r{}", i - 1)}, {"rule": format!("r{}", i - 1)}]}),
            );
        }
        let started = std::time::Instant::now();
        let mut errors = Vec::new();
        let r = NamedRules::compile(&defs, &mut errors);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("larger than")), "{text:?}");
        assert!(r.get("r3").is_some(), "small ones are fine");
        let e = r.expand(&json!({"and": [{"rule": "r59"}]})).expect_err("too large");
        assert!(e.contains("rule `r59`"), "{e}");
        // A guard using a valid rule many times is measured too.
        let many: Vec<Value> = (0..2000).map(|_| json!({"rule": "r10"})).collect();
        let e = r.expand(&json!({"and": many})).expect_err("too large");
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn measure_counts_depth_and_references() {
        let m = measure(&json!({"and": [{"rule": "x"}, {"var": "a"}]}));
        assert_eq!(m.depth, 4);
        assert_eq!(m.refs, vec![("x".to_string(), 3)]);
        let mut deep = json!(1);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(measure(&deep).depth, 10_001);
        // Dropping a deep value recurses: take it apart first.
        let mut v = deep;
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }
}
