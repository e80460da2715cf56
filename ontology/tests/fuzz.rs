//! Property-based fuzzing of tenant templates (`ontology::template`; docs/reliability.md,
//! "Fuzzing"): sources built from the template language's own pieces (text, `{{ … }}`,
//! `{% if %}`, every allowed filter and test, and constructs that must be refused: loops, `set`,
//! calls, `*`) and from arbitrary text, rendered over arbitrary data. Whatever the source:
//! parsing and rendering never panic, a refusal is a typed error with its position inside the
//! source, and a render never exceeds its output bound.
//!
//! `PROPTEST_CASES` sets the number of cases of each property (default: a short run for `make
//! test`).

use ontology::template::{Template, FILTERS, MAX_TEMPLATE_OUTPUT, MAX_TEMPLATE_SOURCE, TESTS};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    Config { cases, failure_persistence: None, max_shrink_iters: 2000, ..Config::default() }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9 {}%#~|.-]{0,12}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        (0usize..3000).prop_map(|n| Value::from("x".repeat(n))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The data a template is rendered over: an entity's fields, some of the names the generated
/// sources read.
fn data() -> impl Strategy<Value = Value> {
    (json_value(), json_value(), json_value(), prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..4)).prop_map(
        |(name, items, seq, more)| {
            let mut m = serde_json::Map::new();
            m.insert("name".into(), name);
            m.insert("items".into(), items);
            m.insert("seq".into(), seq);
            m.extend(more);
            Value::Object(m)
        },
    )
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_string()),
        Just("items".to_string()),
        Just("seq".to_string()),
        Just("name.first".to_string()),
        Just("items[0]".to_string()),
        Just("items[-1]".to_string()),
        Just("loop.index".to_string()),
        "[a-z_]{1,8}",
    ]
}

fn expr() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        name(),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z {}%]{0,8}".prop_map(|s| format!("{s:?}")),
        Just("none".to_string()),
        Just("true".to_string()),
        Just("[1, 2, 3]".to_string()),
        Just("{'a': 1}".to_string()),
    ];
    atom.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(FILTERS.to_vec()), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(e, f, args)| if args.is_empty() {
                    format!("{e} | {f}")
                } else {
                    format!("{e} | {f}({})", args.join(", "))
                }),
            (inner.clone(), prop::sample::select(TESTS.to_vec())).prop_map(|(e, t)| format!("{e} is {t}")),
            (
                inner.clone(),
                prop::sample::select(vec!["~", "+", "-", "*", "/", "//", "%", "**", "==", "<", "and", "or", "in"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("({a} if {b} else {c})")),
            inner.clone().prop_map(|e| format!("not {e}")),
            (name(), inner.clone()).prop_map(|(f, e)| format!("{f}({e})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a}[{b}]")),
        ]
    })
}

/// A source in (and around) the template language.
fn source() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 .-]{0,10}",
        expr().prop_map(|e| format!("{{{{ {e} }}}}")),
        (expr(), "[a-z ]{0,6}", expr()).prop_map(|(c, t, e)| format!("{{% if {c} %}}{t}{{{{ {e} }}}}{{% endif %}}")),
        (expr(), expr()).prop_map(|(c, e)| format!("{{% if {c} %}}a{{% elif {e} %}}b{{% else %}}c{{% endif %}}")),
        // Refused constructs: loops, assignment, macros, includes, raw blocks, comments.
        expr().prop_map(|e| format!("{{% for i in {e} %}}{{{{ i }}}}{{% endfor %}}")),
        expr().prop_map(|e| format!("{{% set x = {e} %}}{{{{ x }}}}")),
        Just("{% macro m() %}x{% endmacro %}{{ m() }}".to_string()),
        Just("{% include 'x' %}".to_string()),
        Just("{% raw %}{{ x }}{% endraw %}".to_string()),
        Just("{# a comment #}".to_string()),
        // Broken syntax.
        prop::sample::select(vec!["{{", "}}", "{%", "%}", "{#", "{{ }}", "{% if %}", "{% endif %}", "{{ | }}"])
            .prop_map(str::to_string),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

/// Parses and renders `src` over `data`, checking what must hold whatever the input.
fn check(src: &str, data: &Value) -> Result<(), TestCaseError> {
    match Template::parse("fuzz", src) {
        Ok(template) => {
            prop_assert!(src.len() <= MAX_TEMPLATE_SOURCE, "a source over the bound parsed");
            let _ = template.variables();
            match template.render(data, &[]) {
                Ok(out) => prop_assert!(out.len() <= MAX_TEMPLATE_OUTPUT, "output of {} bytes", out.len()),
                Err(e) => prop_assert!(!e.to_string().is_empty(), "an error without a message"),
            }
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty(), "a refusal without a message");
            let (line, column) = Template::error_position(src, &e);
            if let Some(line) = line {
                prop_assert!(line >= 1 && line <= src.lines().count().max(1) + 1, "line {line} outside the source");
            }
            if let Some(column) = column {
                prop_assert!(column >= 1 && column <= src.chars().count() + 1, "column {column} outside the source");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(160))]

    #[test]
    fn templates_in_the_language_never_panic_and_stay_bounded(src in source(), data in data()) {
        check(&src, &data)?;
    }

    #[test]
    fn arbitrary_text_never_panics(src in any::<String>(), data in data()) {
        check(&src, &data)?;
    }
}

/// Cases the fuzz found or that guard its bounds, kept as regressions.
#[test]
fn regressions() {
    let big = json!({ "name": "x".repeat(100_000), "items": (0..50_000).collect::<Vec<_>>(), "seq": 1 });
    for src in [
        "{{ name ~ name ~ name ~ name ~ name ~ name ~ name ~ name ~ name ~ name ~ name ~ name }}",
        "{{ items }}{{ items }}{{ items }}{{ items }}{{ items }}{{ items }}{{ items }}{{ items }}",
        "{{ items | join(name) }}",
        "{{ name | center(1000000) }}",
        "{{ name[1000000000000:] }}",
        "{{ items[-9223372036854775808] }}",
        "{{ 9223372036854775807 + 1 }}",
        "{{ -9223372036854775808 // -1 }}",
        "{{ 1 % 0 }}{{ 1 // 0 }}",
        "{{",
        "",
    ] {
        check(src, &big).unwrap_or_else(|e| panic!("{src}: {e}"));
    }
}
