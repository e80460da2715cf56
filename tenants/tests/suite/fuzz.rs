//! Property-based fuzzing of the package loader (docs/reliability.md, "Fuzzing"), beside the
//! seeded mutation fuzz of `hostile.rs`:
//!
//! * the example packages, with nodes replaced by values of the package's own vocabulary (state
//!   names, roles, rules, templates, scripts, schemas, keys of every section) or arbitrary JSON,
//!   read back (`Package::from_json`), compiled (`tenants::compile::compile`) and validated as
//!   files (`export::validate_package`: written as YAML, loaded, validated);
//! * a type file of an example as YAML text, with characters cut, inserted or swapped, loaded
//!   and validated from a folder.
//!
//! Whatever the package: no panic; problems are typed (`PackageError`, the report's problems),
//! each with a message. `PROPTEST_CASES` sets the number of cases of each property (default: a
//! short run for `make test`).

use std::path::{Path, PathBuf};

use engine::limits::Limits;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::{json, Value};
use tenants::Package;

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    Config { cases, failure_persistence: None, max_shrink_iters: 500, ..Config::default() }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The example packages in their stored JSON form, loaded once per test process.
fn examples() -> &'static [Value] {
    static EXAMPLES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    EXAMPLES.get_or_init(|| {
        ["examples/change-control", "examples/chemichemi"]
            .iter()
            .map(|d| Package::load_dir(&root().join(d)).expect("the example loads").to_json())
            .collect()
    })
}

/// Words a package is made of, so mutations land on meaningful shapes.
const WORDS: &[&str] = &[
    "from",
    "to",
    "roles",
    "guards",
    "rule",
    "message",
    "script",
    "type",
    "fields",
    "states",
    "kind",
    "initial",
    "terminal",
    "transitions",
    "load",
    "where",
    "id",
    "lock",
    "events",
    "timers",
    "after",
    "input",
    "properties",
    "required",
    "enum",
    "values",
    "reference",
    "string",
    "integer",
    "number",
    "boolean",
    "object",
    "array",
    "items",
    "title",
    "number_format",
    "pattern",
    "default",
    "unique",
    "append_only",
    "four_eyes",
    "create",
    "permissions",
    "record_rules",
    "decide",
    "var",
    "admin",
    "NEW",
    "DONE",
    "*",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS.to_vec()).prop_map(Value::from),
        prop::sample::select(vec![
            "{{ name }}",
            "{{ x | upper ~ x }}",
            "{% for i in x %}{% endfor %}",
            "{{",
            "ORD-{{ seq | pad(6) }}",
            "entity.total = 1;",
            "loop {}",
            "fn f() { f() } f();",
            "emit(\"e\", #{});",
            "let",
            "}}",
            "^(a+)+$",
            "(?=a)",
            "[",
            "P1D",
            "-1s",
            "10m",
            "2026-02-30",
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(WORDS.to_vec()), inner.clone()), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            (prop::sample::select(vec!["var", "==", "and", "map", "rule", "decide", "if"]), inner)
                .prop_map(|(op, a)| json!({ op: a })),
        ]
    })
}

/// The number of nodes of a value.
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

/// Replaces the `n`-th node (pre-order); a node of an object may also lose its key or gain a
/// sibling (`how`).
fn mutate(v: &mut Value, n: &mut usize, with: &Value, how: u8) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| mutate(x, n, with, how)),
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if *n == 0 && how % 4 == 1 {
                    m.shift_remove(&k);
                    return true;
                }
                if *n == 0 && how % 4 == 2 {
                    m.insert(format!("{k}_x"), with.clone());
                    return true;
                }
                if m.get_mut(&k).is_some_and(|x| mutate(x, n, with, how)) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

fn check_package(json: &Value) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    let package = match Package::from_json(json) {
        Ok(p) => p,
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            return Ok(());
        }
    };
    if let Err(errors) = tenants::compile::compile(&package, &limits) {
        prop_assert!(!errors.is_empty(), "a failed compile without errors");
        for e in &errors {
            prop_assert!(!e.to_string().is_empty(), "an error without a message");
        }
    }
    match tenants::export::validate_package(&package, &limits) {
        Ok(report) => {
            for p in &report.problems {
                prop_assert!(!p.message.is_empty(), "a problem without a message");
            }
        }
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

/// A package folder of `tenant.yaml` and one type file with `text`, validated.
fn check_type_text(tenant_yaml: &str, file: &str, text: &str) -> Result<(), TestCaseError> {
    let dir = std::env::temp_dir().join(format!("switchyard-fuzz-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("types")).expect("mkdir");
    std::fs::write(dir.join("tenant.yaml"), tenant_yaml).expect("write");
    std::fs::write(dir.join("types").join(file), text).expect("write");
    let loaded = Package::load_dir(&dir);
    let report = tenants::validate::validate_dir(&dir, &Limits::default());
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(errors) = loaded {
        prop_assert!(!errors.is_empty());
        prop_assert!(report.has_errors(), "the loader refused what validate accepts: {errors:?}");
    }
    for p in &report.problems {
        prop_assert!(!p.message.is_empty(), "a problem without a message");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn mutated_packages_never_panic_and_fail_typed(
        which in 0usize..2,
        mutations in prop::collection::vec((any::<Index>(), value(), any::<u8>()), 1..4),
    ) {
        let mut json = examples()[which].clone();
        for (at, with, how) in &mutations {
            let mut n = at.index(count(&json));
            mutate(&mut json, &mut n, with, *how);
        }
        check_package(&json)?;
    }

    #[test]
    fn type_files_with_broken_yaml_never_panic(
        file in prop::sample::select(vec!["change_request.yaml", "system.yaml"]),
        edits in prop::collection::vec((any::<Index>(), 0u8..3, prop::sample::select(vec![
            ":", "- ", "  ", "\n", "'", "\"", "{", "[", "&a ", "*a", "!!binary ", "<<: *a", "\t", "#", "|", "~", "{{",
        ])), 1..6),
    ) {
        let dir = root().join("examples/change-control");
        let tenant_yaml = std::fs::read_to_string(dir.join("tenant.yaml")).expect("tenant.yaml");
        let mut text: Vec<char> = std::fs::read_to_string(dir.join("types").join(file)).expect("type file").chars().collect();
        for (at, op, piece) in &edits {
            let i = at.index(text.len() + 1);
            match op {
                0 => { text.splice(i..i, piece.chars()); }
                1 => { let end = (i + piece.len()).min(text.len()); text.drain(i..end); }
                _ => { if i + 1 < text.len() { text.swap(i, i + 1); } }
            }
        }
        let text: String = text.into_iter().collect();
        check_type_text(&tenant_yaml, file, &text)?;
    }
}

/// Inputs kept as regressions.
#[test]
fn regressions() {
    let dir = root().join("examples/change-control");
    let tenant_yaml = std::fs::read_to_string(dir.join("tenant.yaml")).expect("tenant.yaml");
    for text in [
        "",
        "~",
        "name: system\n",
        "a: &a [*a]\n",
        "name: system\nfields: !!binary aGk=\n",
        "name: system\nfields:\n  x: { type: string, pattern: '(?=a)' }\n",
        "{{",
    ] {
        check_type_text(&tenant_yaml, "system.yaml", text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    }
    let mut json = examples()[0].clone();
    json["types"][0]["workflow"] = json!({ "states": {}, "transitions": { "x": { "from": [], "to": "" } } });
    check_package(&json).unwrap_or_else(|e| panic!("{e}"));
    json["types"] = json!([null, 1, "x", []]);
    check_package(&json).unwrap_or_else(|e| panic!("{e}"));
}
