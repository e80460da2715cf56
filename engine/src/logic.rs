//! JSON-Logic rules (guards, load expressions, the rules playground), on `datalogic-rs`.
//!
//! A rule is compiled once, when the definitions are compiled ([`Logic::compile`]). The data a
//! transition's rules read (entity, input, actor, now, loads) is converted once per transition
//! into a [`LogicContext`]; every rule of the transition then evaluates against it without
//! copying it again. Truthiness is JSON-Logic's: `0`, `""`, `[]`, `null` and `false` are false.
//!
//! Rules are written by tenants, so both steps are bounded ([`Limits`]):
//! - compiling measures the rule first (depth and size, without recursion) and refuses one over
//!   [`Limits::max_rule_depth`] or [`Limits::max_rule_size`];
//! - evaluating runs under a [`budget`]: every per-element body of an iterating operator
//!   (`map`, `filter`, `reduce`, `all`, `some`, `none`, `sort`, `group_by`) is wrapped at compile
//!   time in an internal operator that counts a step and reads the clock every
//!   [`STEPS_PER_CLOCK_READ`] steps, so nested loops over literal arrays stop at
//!   [`Limits::rule_steps`] or [`Limits::rule_timeout`] *inside* the loop; the values a rule
//!   builds live in an arena capped at [`Limits::max_rule_memory`] (an allocation past it unwinds
//!   and is caught here), so `cat` or `merge` doubling in a `reduce` cannot exhaust memory.
//!
//! Exceeding a bound is [`EngineError::RuleLimit`] (HTTP 422 `RULE_LIMIT`), never a guard that
//! merely fails: the tenant is told which bound, and where.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;
use std::time::Instant;

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::operator::EvalContext;
use datalogic_rs::{ArenaExt, DataValue, FromDataValue};
use serde_json::Value;

use crate::decimals::{Arithmetic, Round, ARITHMETIC, ROUND_OPERATOR};
use crate::error::EngineError;
use crate::limits::Limits;
use crate::rules::measure;

/// The internal operator that counts a step of an iteration (see the module's doc). Its name
/// is not a builtin, so [`check_operators`] refuses it in a tenant's rule.
const STEP_OPERATOR: &str = "__switchyard_step";

/// The clock is read once per this many steps, not at every one.
pub const STEPS_PER_CLOCK_READ: u64 = 256;

/// One evaluator for the whole process: `datalogic_rs::Engine` is stateless between calls and
/// thread-safe, and compiled rules must be evaluated by an engine configured like the one that
/// compiled them.
static ENGINE: LazyLock<datalogic_rs::Engine> = LazyLock::new(|| {
    let mut builder =
        datalogic_rs::Engine::builder().add_operator(STEP_OPERATOR, Step).add_operator(DECIDE_OPERATOR, Decide);
    for &name in crate::dates::LOGIC_OPERATORS {
        builder = builder.add_operator(name, DateOperator(name));
    }
    for (_, internal, op) in ARITHMETIC {
        builder = builder.add_operator(internal, Arithmetic(op));
    }
    builder = builder.add_operator(ROUND_OPERATOR, Round);
    builder.build()
});

/// A date operator (`{"date_add": ["2026-01-31", 1, "month"]}`, see [`crate::dates`]): its
/// arguments evaluated, in the tenant's zone ([`crate::dates::in_zone`]).
struct DateOperator(&'static str);

impl datalogic_rs::CustomOperator for DateOperator {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let values: Vec<Value> = args.iter().map(|v| Value::from_arena(v).unwrap_or(Value::Null)).collect();
        let out = crate::dates::logic_call(self.0, &values)
            .map_err(|e| datalogic_rs::Error::custom_message(e.to_string()))?;
        Ok(arena.alloc(DataValue::from_serde_value_in(&out, arena)))
    }
}

/// The operator that evaluates a decision table: `{"decide": ["table", {input: rule, …}]}`
/// gives the table's outputs (an object), `{"decide": ["table", {…}, "output"]}` one of them.
/// The inputs object is rewritten at compile time into flat arguments (`["table", "output" or
/// null, "input", rule, …]`) so the evaluator evaluates each rule (see [`instrument`]).
pub const DECIDE_OPERATOR: &str = "decide";

/// The decide operator: calls [`crate::decision::call`] with the evaluated inputs.
struct Decide;

impl datalogic_rs::CustomOperator for Decide {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let text = |v: Option<&&'a DataValue<'a>>| v.and_then(|v| Value::from_arena(v).ok());
        let Some(Value::String(name)) = text(args.first()) else {
            return Err(datalogic_rs::Error::custom_message("decide: the first argument is the table's name"));
        };
        let output = match text(args.get(1)) {
            Some(Value::String(o)) => Some(o),
            _ => None,
        };
        let mut given = serde_json::Map::with_capacity(args.len().saturating_sub(2) / 2);
        for pair in args.get(2..).unwrap_or_default().chunks(2) {
            if let (Some(Value::String(k)), Some(v)) = (text(pair.first()), text(pair.get(1))) {
                given.insert(k, v);
            }
        }
        let outputs =
            crate::decision::call(&name, &given).map_err(|e| datalogic_rs::Error::custom_message(e.to_string()))?;
        let out = match output {
            Some(o) => outputs.get(&o).cloned().unwrap_or(Value::Null),
            None => outputs,
        };
        Ok(arena.alloc(DataValue::from_serde_value_in(&out, arena)))
    }
}

/// What a budget ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exceeded {
    Steps,
    Time,
    Memory,
    /// The inline leash ran out ([`crate::limits::leash`]): the evaluation is run again off
    /// the reactor, with its full budget; this result is thrown away.
    Leash,
}

/// The budget of the evaluation running on this thread (evaluation is synchronous, so a thread
/// runs one at a time).
#[derive(Debug, Clone, Copy)]
struct Budget {
    steps_left: u64,
    deadline: Instant,
    max_memory: usize,
    limits_steps: u64,
    limits_timeout_ms: u128,
    exceeded: Option<Exceeded>,
}

thread_local! {
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
}

impl Budget {
    fn new(limits: &Limits) -> Budget {
        Budget {
            steps_left: limits.rule_steps,
            deadline: Instant::now() + limits.rule_timeout,
            max_memory: limits.max_rule_memory,
            limits_steps: limits.rule_steps,
            limits_timeout_ms: limits.rule_timeout.as_millis(),
            exceeded: None,
        }
    }

    fn message(&self) -> Option<String> {
        Some(match self.exceeded? {
            Exceeded::Steps => {
                format!("took more than {} iteration steps (limit rule_steps)", self.limits_steps)
            }
            Exceeded::Time => format!("ran longer than {} ms (limit rule_timeout)", self.limits_timeout_ms),
            Exceeded::Memory => {
                format!("built values larger than {} bytes (limit max_rule_memory)", self.max_memory)
            }
            Exceeded::Leash => "ran past the inline leash (it runs again off the reactor)".to_string(),
        })
    }
}

/// Runs `f` with one JSON-Logic budget from `limits` for every rule it evaluates on this
/// thread (all the guards and load expressions of a transition share one). Nested calls share
/// the outermost budget. Outside any, each evaluation gets a budget of its own from the default
/// limits.
pub fn budget<T>(limits: &Limits, f: impl FnOnce() -> T) -> T {
    let outer = BUDGET.with(Cell::get);
    if outer.is_some() {
        return f();
    }
    BUDGET.with(|b| b.set(Some(Budget::new(limits))));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(None));
        }
    }
    let _reset = Reset;
    f()
}

/// Counts one step against the running budget; false once it is spent.
fn step() -> bool {
    BUDGET.with(|cell| {
        let Some(mut b) = cell.get() else { return true };
        if b.exceeded.is_some() {
            return false;
        }
        if b.steps_left == 0 {
            b.exceeded = Some(Exceeded::Steps);
        } else {
            b.steps_left -= 1;
            if b.steps_left % STEPS_PER_CLOCK_READ == 0 {
                if Instant::now() >= b.deadline {
                    b.exceeded = Some(Exceeded::Time);
                } else if crate::limits::leash::expired() {
                    b.exceeded = Some(Exceeded::Leash);
                }
            }
        }
        cell.set(Some(b));
        b.exceeded.is_none()
    })
}

/// The step operator: counts a step, then gives back its (already evaluated) argument.
struct Step;

impl datalogic_rs::CustomOperator for Step {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        if !step() {
            return Err(datalogic_rs::Error::custom_message("evaluation budget exceeded"));
        }
        Ok(args.first().copied().unwrap_or_else(|| arena.null()))
    }
}

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
    /// Compiles a rule under the default [`Limits`]; an unknown operator, malformed arguments,
    /// or a rule too deep or too large is an error.
    pub fn compile(rule: &Value) -> Result<Self, EngineError> {
        Self::compile_limited(rule, &Limits::default())
    }

    /// Compiles a rule, refusing one deeper than [`Limits::max_rule_depth`] or larger than
    /// [`Limits::max_rule_size`] (measured before anything recursive looks at it).
    pub fn compile_limited(rule: &Value, limits: &Limits) -> Result<Self, EngineError> {
        let m = measure(rule);
        if m.depth > limits.max_rule_depth {
            return Err(EngineError::LogicCompile {
                message: format!("the rule nests deeper than {} levels (limit max_rule_depth)", limits.max_rule_depth),
            });
        }
        if m.size > limits.max_rule_size {
            return Err(EngineError::LogicCompile {
                message: format!("the rule is larger than {} bytes (limit max_rule_size)", limits.max_rule_size),
            });
        }
        check_operators(rule)?;
        let compiled =
            ENGINE.compile(&instrument(rule)).map_err(|e| EngineError::LogicCompile { message: e.to_string() })?;
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
        self.run(ctx, |out| Value::from_arena(out).map_err(eval_error))
    }

    /// Evaluates the rule and applies JSON-Logic truthiness to the result.
    pub fn truthy(&self, ctx: &LogicContext) -> Result<bool, EngineError> {
        self.run(ctx, |out| Ok(ENGINE.truthy(out)))
    }

    /// Evaluates under the running [`budget`] (or one of its own), in an arena capped at the
    /// budget's memory, and gives the result to `read`.
    fn run<T>(
        &self,
        ctx: &LogicContext,
        read: impl for<'a> FnOnce(&'a DataValue<'a>) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        budget(&Limits::default(), || {
            let Some(b) = BUDGET.with(Cell::get) else {
                return Err(EngineError::RuleLimit { message: "no evaluation budget".into() });
            };
            if let Some(message) = b.message() {
                return Err(EngineError::RuleLimit { message });
            }
            let arena = Bump::new();
            arena.set_allocation_limit(Some(b.max_memory));
            // The arena panics (it does not abort) when an allocation would pass its limit;
            // nothing outside the arena and this call is touched while it unwinds.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                ctx.cell.with_dependent(|_, data| {
                    let out = ENGINE.evaluate(&self.compiled, data, &arena).map_err(eval_error)?;
                    read(out)
                })
            }));
            let exceeded = |kind: Exceeded| {
                BUDGET.with(|cell| {
                    let mut b = cell.get()?;
                    b.exceeded = b.exceeded.or(Some(kind));
                    cell.set(Some(b));
                    b.message()
                })
            };
            match outcome {
                Err(_) => Err(EngineError::RuleLimit {
                    message: exceeded(Exceeded::Memory).unwrap_or_else(|| "out of memory".into()),
                }),
                // A step that failed leaves its mark even if a `try` caught the error.
                Ok(result) => match BUDGET.with(Cell::get).and_then(|b| b.message()) {
                    Some(message) => Err(EngineError::RuleLimit { message }),
                    None => result,
                },
            }
        })
    }
}

/// The operators whose argument at each index in the list is evaluated once per element.
const PER_ELEMENT_ARGS: &[(&str, &[usize])] = &[
    ("map", &[1]),
    ("filter", &[1]),
    ("all", &[1]),
    ("some", &[1]),
    ("none", &[1]),
    ("reduce", &[1]),
    ("sort", &[2]),
    ("group_by", &[1]),
];

/// The rule with every per-element body wrapped in the step operator (see the module's doc).
/// Recursive over a rule whose depth [`Logic::compile_limited`] has checked.
fn instrument(rule: &Value) -> Value {
    match rule {
        Value::Array(items) => Value::Array(items.iter().map(instrument).collect()),
        Value::Object(map) if map.len() == 1 => {
            let Some((op, args)) = map.iter().next() else { return rule.clone() };
            if op == DECIDE_OPERATOR {
                return decide_args(args);
            }
            let per_element = PER_ELEMENT_ARGS.iter().find(|(name, _)| name == op).map(|(_, idx)| *idx);
            let args = match (args, per_element) {
                (Value::Array(items), Some(idx)) => Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, a)| {
                            let a = instrument(a);
                            if idx.contains(&i) {
                                let mut step = serde_json::Map::with_capacity(1);
                                step.insert(STEP_OPERATOR.to_string(), Value::Array(vec![a]));
                                Value::Object(step)
                            } else {
                                a
                            }
                        })
                        .collect(),
                ),
                (other, _) => instrument(other),
            };
            // Arithmetic is done in decimal (see `crate::decimals`).
            let op = crate::decimals::Op::internal_name(op).map_or_else(|| op.clone(), str::to_string);
            let mut out = serde_json::Map::with_capacity(1);
            out.insert(op, args);
            Value::Object(out)
        }
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), instrument(v))).collect()),
        other => other.clone(),
    }
}

/// `{"decide": [name, {input: rule, …}, output?]}` as `{"decide": [name, output or null, "input",
/// rule, …]}` (each rule instrumented), so that the evaluator evaluates every input's rule.
fn decide_args(args: &Value) -> Value {
    let items: Vec<Value> = match args {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut flat = Vec::with_capacity(2 + 2 * items.get(1).and_then(Value::as_object).map_or(0, serde_json::Map::len));
    flat.push(items.first().map(instrument).unwrap_or(Value::Null));
    flat.push(items.get(2).map(instrument).unwrap_or(Value::Null));
    if let Some(Value::Object(inputs)) = items.get(1) {
        for (k, v) in inputs {
            flat.push(Value::String(k.clone()));
            flat.push(instrument(v));
        }
    }
    let mut out = serde_json::Map::with_capacity(1);
    out.insert(DECIDE_OPERATOR.to_string(), Value::Array(flat));
    Value::Object(out)
}

/// The evaluator accepts unknown operators at compile time and fails when it meets them; a
/// definition with a misspelt operator should fail when it is published instead.
fn check_operators(rule: &Value) -> Result<(), EngineError> {
    static KNOWN: LazyLock<Vec<&'static str>> = LazyLock::new(|| ENGINE.builtin_operator_names().collect());
    match rule {
        Value::Array(items) => items.iter().try_for_each(check_operators),
        Value::Object(map) => {
            if let Some((op, args)) = map.iter().next().filter(|_| map.len() == 1) {
                if op == DECIDE_OPERATOR {
                    return check_decide(args);
                }
                if !KNOWN.contains(&op.as_str())
                    && !crate::dates::LOGIC_OPERATORS.contains(&op.as_str())
                    && op != ROUND_OPERATOR
                {
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

/// A `decide` call is `[name, {inputs}]` or `[name, {inputs}, "output"]`, the name and output
/// literal strings (so `validate` knows which table a rule calls).
fn check_decide(args: &Value) -> Result<(), EngineError> {
    let bad = |m: &str| Err(EngineError::LogicCompile { message: format!("decide: {m}") });
    let Value::Array(a) = args else { return bad("write `{\"decide\": [\"table\", {inputs}]}`") };
    if !(1..=3).contains(&a.len()) || !a[0].is_string() {
        return bad("write `{\"decide\": [\"table\", {inputs}]}` or `[\"table\", {inputs}, \"output\"]`");
    }
    match a.get(1) {
        None => {}
        Some(Value::Object(inputs)) => inputs.values().try_for_each(check_operators)?,
        Some(_) => return bad("the inputs are an object `{input: rule, …}`"),
    }
    match a.get(2) {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => bad("the output is a literal string"),
    }
}

/// The tables a rule calls with `decide` (literal names), in order, without duplicates.
pub fn decided_tables(rule: &Value) -> Vec<String> {
    fn walk(rule: &Value, out: &mut Vec<String>) {
        match rule {
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => {
                if let (1, Some(Value::Array(args))) = (map.len(), map.get(DECIDE_OPERATOR)) {
                    if let Some(Value::String(name)) = args.first() {
                        if !out.contains(name) {
                            out.push(name.clone());
                        }
                    }
                }
                map.values().for_each(|v| walk(v, out));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(rule, &mut out);
    out
}

/// A failed evaluation: a decision table's error when a `decide` call failed (it says which
/// table and why), else the evaluator's message.
fn eval_error(e: datalogic_rs::Error) -> EngineError {
    match crate::decision::take_error() {
        Some(d) if d.is_limit() => EngineError::RuleLimit { message: d.to_string() },
        Some(d) => EngineError::Decision { message: d.to_string() },
        None => EngineError::LogicEval { message: e.to_string() },
    }
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

    /// Converts a transition's context as rules read it: the decimal fields of the entities in
    /// it (as `shapes` says) numbers ([`crate::decimals::rules_data`]).
    pub fn shaped(data: &Value, shapes: &crate::decimals::Shapes<'_>) -> Self {
        Self { cell: ContextCell::new(Bump::new(), |arena| crate::decimals::rules_data(data, shapes, arena)) }
    }

    /// The value at a dotted `var` path (array elements by index), as rules read it.
    pub fn lookup(&self, path: &str) -> Option<Value> {
        self.cell.with_dependent(|_, data| {
            let found = path.split('.').try_fold(data, |v, seg| match v {
                DataValue::Object(pairs) => pairs.iter().find(|(k, _)| *k == seg).map(|(_, v)| v),
                DataValue::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            })?;
            Value::from_arena(found).ok()
        })
    }
}

/// Compiles and evaluates a rule once (the API's rules playground), under `limits`.
pub fn evaluate_once(logic: &Value, data: &Value, limits: &Limits) -> Result<Value, EngineError> {
    let rule = Logic::compile_limited(logic, limits)?;
    budget(limits, || rule.evaluate(&LogicContext::new(data)))
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

    #[test]
    fn date_operators_work_in_the_zone_guards_run_in() {
        let limits = Limits::default();
        let data = serde_json::json!({ "now": "2026-03-31T22:30:00Z", "entity": { "due": "2026-04-05" } });
        // 22:30 UTC on 31 March is 1 April in Nairobi: the due date is 4 days away there.
        let rule = serde_json::json!({ "and": [
            { "==": [ { "to_date": [ { "var": "now" } ] }, "2026-04-01" ] },
            { "==": [ { "date_diff": [ { "to_date": [ { "var": "now" } ] }, { "var": "entity.due" }, "days" ] }, 4 ] },
            { "is_before": [ { "var": "entity.due" }, { "date_add": [ { "to_date": [ { "var": "now" } ] }, 1, "week" ] } ] },
            { "==": [ { "start_of": [ { "var": "now" }, "month" ] }, "2026-03-31T21:00:00Z" ] },
            { "==": [ { "weekday": [ "2026-04-01" ] }, 3 ] }
        ]});
        let nairobi = crate::dates::zone("Africa/Nairobi").expect("zone");
        let got = crate::dates::in_zone(nairobi, || evaluate_once(&rule, &data, &limits)).expect("evaluates");
        assert_eq!(got, serde_json::json!(true));
        // In UTC it is still 31 March.
        let utc =
            evaluate_once(&serde_json::json!({ "to_date": [ { "var": "now" } ] }), &data, &limits).expect("evaluates");
        assert_eq!(utc, serde_json::json!("2026-03-31"));
        // A bad date is an error of the rule, naming the operator.
        let bad = evaluate_once(&serde_json::json!({ "date_add": [ "31/03/2026", 1, "day" ] }), &data, &limits);
        assert!(bad.as_ref().is_err_and(|e| e.to_string().contains("date_add")), "{bad:?}");
    }
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
        let v = evaluate_once(&json!({"cat": ["a", {"var": "x"}]}), &json!({"x": "b"}), &Limits::default());
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

    fn literal(n: usize) -> Value {
        Value::Array((0..n).map(|i| json!(i)).collect())
    }

    /// Nested loops over literal arrays ran for 11–16 s before: now stopped inside the loop.
    #[test]
    fn nested_loops_stop_at_the_step_budget() {
        let rule = json!({"some": [literal(2000), {"some": [literal(2000), {"some": [literal(2000), {"==": [{"var": ""}, -1]}]}]}]});
        let logic = Logic::compile(&rule).expect("compiles");
        let started = std::time::Instant::now();
        let err = logic.truthy(&LogicContext::new(&json!({}))).expect_err("over budget");
        assert!(matches!(&err, EngineError::RuleLimit { .. }), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        // Without a deadline, the step count stops it.
        let limits = Limits { rule_timeout: std::time::Duration::from_secs(600), ..Limits::default() };
        let err = budget(&limits, || logic.truthy(&LogicContext::new(&json!({})))).expect_err("over budget");
        assert!(matches!(&err, EngineError::RuleLimit { message } if message.contains("rule_steps")), "{err:?}");
    }

    #[test]
    fn slow_loops_stop_at_the_deadline() {
        let limits =
            Limits { rule_steps: u64::MAX, rule_timeout: std::time::Duration::from_millis(50), ..Limits::default() };
        let rule =
            json!({"some": [literal(3000), {"some": [literal(3000), {"==": [{"cat": [{"var": ""}, "x"]}, "no"]}]}]});
        let logic = Logic::compile(&rule).expect("compiles");
        let started = std::time::Instant::now();
        let err = budget(&limits, || logic.truthy(&LogicContext::new(&json!({})))).expect_err("too slow");
        assert!(matches!(&err, EngineError::RuleLimit { message } if message.contains("rule_timeout")), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    }

    /// `cat` doubling in a `reduce` (2^40 bytes) stops at the memory budget, not the process.
    #[test]
    fn doubling_strings_stop_at_the_memory_budget() {
        let rule =
            json!({"reduce": [literal(40), {"cat": [{"var": "accumulator"}, {"var": "accumulator"}]}, "xxxxxxxx"]});
        let err = evaluate_once(&rule, &json!({}), &Limits::default()).expect_err("over memory");
        assert!(matches!(&err, EngineError::RuleLimit { message } if message.contains("max_rule_memory")), "{err:?}");
        let rule =
            json!({"reduce": [literal(40), {"merge": [{"var": "accumulator"}, {"var": "accumulator"}]}, [1, 2, 3]]});
        let err = evaluate_once(&rule, &json!({}), &Limits::default()).expect_err("over memory");
        assert!(matches!(&err, EngineError::RuleLimit { .. }), "{err:?}");
    }

    /// One budget covers every rule evaluated inside it; a later evaluation is refused at once.
    #[test]
    fn a_budget_is_shared_and_stays_spent() {
        let limits = Limits { rule_steps: 100, ..Limits::default() };
        let small = Logic::compile(&json!({"all": [literal(60), {">=": [{"var": ""}, 0]}]})).expect("compiles");
        let ctx = LogicContext::new(&json!({}));
        budget(&limits, || {
            assert_eq!(small.truthy(&ctx), Ok(true));
            assert!(matches!(small.truthy(&ctx), Err(EngineError::RuleLimit { .. })));
            assert!(matches!(small.truthy(&ctx), Err(EngineError::RuleLimit { .. })), "stays spent");
        });
        assert_eq!(small.truthy(&ctx), Ok(true), "a new evaluation outside gets a budget of its own");
    }

    #[test]
    fn deep_or_large_rules_do_not_compile() {
        let mut deep = json!(true);
        for _ in 0..100 {
            deep = json!({"!": [deep]});
        }
        let err = Logic::compile(&deep).expect_err("too deep");
        assert!(err.to_string().contains("max_rule_depth"), "{err}");
        let large = json!({"in": [{"var": "x"}, [ "y".repeat(300_000) ]]});
        let err = Logic::compile(&large).expect_err("too large");
        assert!(err.to_string().contains("max_rule_size"), "{err}");
        let sneaky = json!({"__switchyard_step": [1]});
        assert!(Logic::compile(&sneaky).is_err(), "the internal operator is not a tenant's");
    }

    /// Results are unchanged by the instrumentation of loop bodies.
    #[test]
    fn instrumented_loops_give_the_same_results() {
        let ctx = LogicContext::new(&json!({"items": [{"q": 2}, {"q": 3}], "xs": [3, 1, 2]}));
        let cases = [
            (json!({"map": [{"var": "items"}, {"*": [{"var": "q"}, 2]}]}), json!([4, 6])),
            (json!({"filter": [{"var": "xs"}, {">": [{"var": ""}, 1]}]}), json!([3, 2])),
            (json!({"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}), json!(6)),
            (json!({"all": [{"var": "xs"}, {">": [{"var": ""}, 0]}]}), json!(true)),
            (json!({"none": [{"var": "xs"}, {">": [{"var": ""}, 5]}]}), json!(true)),
            (json!({"some": [{"var": "items"}, {"==": [{"var": "q"}, 3]}]}), json!(true)),
        ];
        for (rule, want) in cases {
            assert_eq!(Logic::compile(&rule).expect("compiles").evaluate(&ctx), Ok(want), "{rule}");
        }
    }
}
