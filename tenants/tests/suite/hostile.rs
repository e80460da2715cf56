//! A corpus of hostile configuration: packages a tenant admin could post (through
//! `POST …/config/validate`, plan, apply or the CLI) to hurt the process every tenant shares.
//! Each must be answered with problems, in bounded time, never with an abort (a stack
//! overflow or an allocation failure would end this test process, failing the run).
//!
//! Two parts: the classes found by hand (each a regression test of a crash or stall seen
//! before its fix), and a seeded mutation fuzz over the example packages (deep nesting, huge
//! literals and huge arrays put in random places of every file), run for a bounded number of
//! cases (`SWITCHYARD_FUZZ_CASES`, default 48; set it higher for a longer run).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::limits::Limits;
use serde_json::{json, Value};
use tenants::validate::{validate_dir, Report};

/// Generous, for a debug build on a loaded 2-core machine: what is measured is "not tens of
/// seconds", not speed.
const BOUND: Duration = Duration::from_secs(20);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A private folder, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("switchyard-hostile-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("types")).expect("mkdir");
        Dir(dir)
    }

    fn write(&self, file: &str, value: &Value) {
        // JSON is YAML: written as JSON, the package reads back exactly.
        std::fs::write(self.0.join(file), serde_json::to_string(value).expect("serializes")).expect("write");
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small valid package: one type `thing` with a workflow, rules and guards given.
fn package(tag: &str, rules: Value, guard: Value, extra_type: Value) -> Dir {
    let dir = Dir::new(tag);
    dir.write(
        "tenant.yaml",
        &json!({
            "slug": "hostile", "name": "Hostile",
            "roles": { "clerk": { "label": "Clerk", "permissions": { "thing": ["view", "create", "edit"] } } },
            "rules": rules,
        }),
    );
    let mut thing = json!({
        "name": "thing",
        "fields": { "title": { "type": "string" }, "n": { "type": "integer" } },
        "workflow": {
            "states": { "NEW": { "kind": "initial" }, "DONE": { "kind": "terminal" } },
            "transitions": {
                "finish": { "from": ["NEW"], "to": "DONE", "roles": ["clerk"],
                            "guards": [ { "rule": guard, "message": "the guard" } ] }
            }
        }
    });
    if let (Value::Object(t), Value::Object(extra)) = (&mut thing, extra_type) {
        t.extend(extra);
    }
    dir.write("types/thing.yaml", &thing);
    dir
}

/// Validates, within [`BOUND`], and gives the report's text.
fn validate(dir: &Dir) -> (Report, String) {
    let started = Instant::now();
    let report = validate_dir(&dir.0, &Limits::default());
    let took = started.elapsed();
    assert!(took < BOUND, "validation took {took:?}");
    let text = report.to_string();
    (report, text)
}

fn assert_refused(dir: &Dir, expect: &str) {
    let (report, text) = validate(dir);
    assert!(report.has_errors(), "expected an error about {expect}, got:\n{text}");
    assert!(text.contains(expect), "expected {expect:?} in:\n{text}");
}

fn nest(depth: usize, leaf: Value, wrap: impl Fn(Value) -> Value) -> Value {
    (0..depth).fold(leaf, |v, _| wrap(v))
}

#[test]
fn a_long_chain_of_rules() {
    let mut rules = serde_json::Map::new();
    for i in 0..5000 {
        rules.insert(format!("r{i}"), json!({ "!": { "rule": format!("r{}", i + 1) } }));
    }
    rules.insert("r5000".into(), json!(true));
    let dir = package("chain", Value::Object(rules), json!({ "rule": "r0" }), json!({}));
    assert_refused(&dir, "deeper than 64 levels");
}

#[test]
fn rules_that_double_at_every_step() {
    let mut rules = serde_json::Map::new();
    rules.insert("r0".into(), json!({ "==": [{ "var": "entity.title" }, "a title long enough to count"] }));
    for i in 1..64 {
        let prev = format!("r{}", i - 1);
        rules.insert(format!("r{i}"), json!({ "or": [{ "rule": prev }, { "rule": prev }] }));
    }
    let dir = package("double", Value::Object(rules), json!({ "rule": "r63" }), json!({}));
    assert_refused(&dir, "larger than");
}

/// Rhai's `sleep` blocks its thread outside every budget: a package that calls it does not
/// validate, and the report says where.
#[test]
fn a_script_that_sleeps() {
    let script = json!({ "workflow": { "states": { "NEW": { "kind": "initial" }, "DONE": { "kind": "terminal" } },
        "transitions": { "finish": { "from": ["NEW"], "to": "DONE", "roles": ["clerk"],
                                     "script": "entity.n = 1;\nsleep(86400);" } } } });
    assert_refused(&package("sleep", json!({}), json!(true), script), "`sleep` is not available to scripts");
}

#[test]
fn deep_and_huge_guards() {
    // 80 levels: past max_rule_depth, within what the YAML reader takes.
    let deep = nest(40, json!(true), |v| json!({ "!": [v] }));
    assert_refused(&package("deep", json!({}), deep, json!({})), "max_rule_depth");
    let huge = json!({ "in": [{ "var": "entity.title" }, ["x".repeat(400_000)]] });
    assert_refused(&package("huge", json!({}), huge, json!({})), "max_rule_size");
    let wide = json!({ "in": [{ "var": "entity.n" }, (0..100_000).collect::<Vec<u32>>()] });
    assert_refused(&package("wide", json!({}), wide, json!({})), "max_rule_size");
}

/// A role's create condition (`roles.<role>.create.<type>.rule`) is bounded like a guard, and
/// its field lists are checked however long they are.
#[test]
fn deep_huge_and_long_create_rules() {
    let with_create = |tag: &str, create: Value| {
        let dir = package(tag, json!({}), json!(true), json!({}));
        dir.write(
            "tenant.yaml",
            &json!({
                "slug": "hostile", "name": "Hostile",
                "roles": { "clerk": { "label": "Clerk", "permissions": { "thing": ["view", "create", "edit"] },
                                      "create": { "thing": create } } },
            }),
        );
        dir
    };
    let deep = nest(40, json!(true), |v| json!({ "!": [v] }));
    assert_refused(&with_create("create-deep", json!({ "rule": deep })), "max_rule_depth");
    let huge = json!({ "in": [{ "var": "entity.title" }, ["x".repeat(400_000)]] });
    assert_refused(&with_create("create-huge", json!({ "rule": huge })), "max_rule_size");
    let fields: Vec<String> = (0..50_000).map(|i| format!("f{i}")).collect();
    assert_refused(&with_create("create-long", json!({ "except": fields })), "is not a field of `thing`");
}

/// Nested loops over literal arrays are valid rules: they compile, and are stopped when
/// evaluated (see the engine's tests and the HTTP attack test); validating them is fast.
#[test]
fn expensive_but_valid_guards_validate_quickly() {
    let range: Vec<u32> = (0..2000).collect();
    let guard = json!({ "some": [range, { "some": [range, { "some": [range, { "==": [{ "var": "" }, -1] }] }] }] });
    let (report, text) = validate(&package("loops", json!({}), guard, json!({})));
    assert!(!report.has_errors(), "{text}");
}

#[test]
fn templates_that_loop_accumulate_or_multiply() {
    for (title, expect) in [
        ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "`for` is not available"),
        ("{% set a = title ~ title %}{% set b = a ~ a %}{{ b }}", "`set` is not available"),
        ("{{ title * 100000000 }}", "`*` is not available"),
        ("{{ title | replace('a', title) | replace('a', title) }}", "`replace` is not available"),
        ("{{ range(100) }}", "function calls are not available"),
    ] {
        let dir = package("template", json!({}), json!(true), json!({ "title": title }));
        assert_refused(&dir, expect);
    }
    let long = format!("{{{{ title }}}}{}", "x".repeat(5000));
    assert_refused(&package("template", json!({}), json!(true), json!({ "title": long })), "at most 1024 bytes");
}

#[test]
fn regular_expressions_that_backtrack() {
    // A field pattern and an input schema pattern that backtrack catastrophically on
    // `aaaa…!` in a backtracking engine: the linear engine takes them, and matches fast.
    let evil = "^(a+)+$";
    let extra = json!({
        "fields": { "title": { "type": "string", "pattern": evil }, "n": { "type": "integer" } },
    });
    let (report, text) = validate(&package("regex", json!({}), json!(true), extra));
    assert!(!report.has_errors(), "{text}");
    let def: ontology::EntityTypeDef = serde_json::from_value(json!({
        "name": "thing", "fields": { "title": { "type": "string", "pattern": evil } }
    }))
    .expect("a type");
    let ty = ontology::CompiledType::compile(def).expect("compiles");
    let started = Instant::now();
    let errors = ty.validate(&json!({ "title": format!("{}!", "a".repeat(50_000)) })).expect_err("no match");
    assert!(!errors.is_empty());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // What the linear engine cannot do (lookaround, backreferences) is refused when published.
    let extra = json!({ "fields": { "title": { "type": "string", "pattern": "(a)\\1" }, "n": { "type": "integer" } } });
    let (report, _) = validate(&package("regex", json!({}), json!(true), extra));
    assert!(report.has_errors());
}

#[test]
fn pathological_input_schemas() {
    let with_input = |tag: &str, input: Value| {
        let dir = package(tag, json!({}), json!(true), json!({}));
        let mut thing: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.0.join("types/thing.yaml")).expect("read"))
                .expect("json");
        thing["workflow"]["transitions"]["finish"]["input"] = input;
        dir.write("types/thing.yaml", &thing);
        dir
    };
    let deep = nest(35, json!({ "type": "string" }), |v| json!({ "type": "object", "properties": { "a": v } }));
    assert_refused(&with_input("schema-deep", deep), "max_rule_depth");
    let huge = json!({ "type": "string", "enum": (0..100_000).map(|i| format!("value {i}")).collect::<Vec<_>>() });
    assert_refused(&with_input("schema-huge", huge), "max_rule_size");
    let recursive = json!({ "$defs": { "n": { "type": "object", "properties": { "next": { "$ref": "#/$defs/n" } } } }, "$ref": "#/$defs/n" });
    let (_, _) = validate(&with_input("schema-recursive", recursive));
    let lookahead = json!({ "type": "string", "pattern": "^(?=a)(a+)+$" });
    assert_refused(&with_input("schema-lookahead", lookahead), "input");
}

// --- Seeded mutation fuzz over the example packages ------------------------------------------

/// xorshift64*: a seeded generator, so a failing case can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Every file of a package folder, parsed.
fn read_package(dir: &Path) -> Vec<(String, Value)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).expect("read");
                let value: Value = serde_yaml_ng::from_str(&text).expect("the example parses");
                let rel = path.strip_prefix(dir).expect("inside").to_string_lossy().into_owned();
                files.push((rel, value));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// The number of nodes of a value (to pick one at random).
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

/// Replaces the `n`-th node (pre-order) with `with`.
fn replace_nth(v: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| replace_nth(x, n, with)),
        Value::Object(m) => m.values_mut().any(|x| replace_nth(x, n, with)),
        _ => false,
    }
}

fn hostile_value(rng: &mut Rng) -> Value {
    match rng.below(7) {
        0 => nest(110, json!(1), |v| json!([v])),
        1 => nest(110, json!("x"), |v| json!({ "a": v })),
        2 => nest(60, json!(true), |v| json!({ "map": [[1, 2, 3], v] })),
        3 => json!("z".repeat(1 << 20)),
        4 => Value::Array((0..100_000).map(|i| json!(i)).collect()),
        5 => json!({ "rule": "no_such_rule" }),
        _ => json!("{% for i in range(999999) %}{{ i }}{% endfor %}"),
    }
}

#[test]
fn mutated_examples_never_crash_and_answer_in_bounded_time() {
    let cases: usize = std::env::var("SWITCHYARD_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48);
    let seed: u64 = std::env::var("SWITCHYARD_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_cafe);
    let examples = [root().join("examples/chemichemi"), root().join("examples/change-control")];
    let originals: Vec<Vec<(String, Value)>> = examples.iter().map(|d| read_package(d)).collect();
    let mut rng = Rng(seed);
    let started = Instant::now();
    for case in 0..cases {
        let files = &originals[case % originals.len()];
        let dir = Dir::new("fuzz");
        let (target, _) = &files[rng.below(files.len())];
        for (rel, value) in files {
            if let Some(parent) = Path::new(rel).parent() {
                std::fs::create_dir_all(dir.0.join(parent)).expect("mkdir");
            }
            let mut value = value.clone();
            if rel == target {
                for _ in 0..1 + rng.below(3) {
                    let mut n = rng.below(count(&value));
                    let with = hostile_value(&mut rng);
                    replace_nth(&mut value, &mut n, &with);
                }
            }
            dir.write(rel, &value);
        }
        let case_started = Instant::now();
        let report = validate_dir(&dir.0, &Limits::default());
        let took = case_started.elapsed();
        assert!(took < BOUND, "case {case} (seed {seed}, file {target}) took {took:?}");
        // Whatever it says, it says it as problems with a file (never a panic).
        for p in &report.problems {
            assert!(!p.message.is_empty(), "case {case}: an empty problem");
        }
    }
    eprintln!("{cases} mutated packages validated in {:?}, none crashed", started.elapsed());
}
