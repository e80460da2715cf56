//! `tenants::validate`: one broken package per check under `tests/broken/<check>/`, each with
//! the exact lines `validate_dir` must report in its `expected.txt`; and the examples, which
//! must have no error.
//!
//! `BLESS=1 cargo test -p switchyard-tenants --test validate` rewrites the `expected.txt` files
//! from the current output (review the diff before committing it).

use std::path::{Path, PathBuf};

use engine::limits::Limits;
use tenants::validate::{validate_dir, Problem, Severity};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Validates `tests/broken/<name>` and compares the report with its `expected.txt`.
fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken").join(name);
    let report = validate_dir(&dir, &Limits::default());
    let actual = report.to_string();
    let expected_file = dir.join("expected.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&expected_file, &actual).expect("write expected.txt");
        return;
    }
    let expected = std::fs::read_to_string(&expected_file).expect("expected.txt");
    assert_eq!(actual, expected, "tests/broken/{name}: the report differs from expected.txt");
    // Exit code: errors fail, warnings do not.
    assert_eq!(report.has_errors(), expected.lines().any(|l| l.starts_with("error: ")));
    assert_eq!(report.problems.iter().filter(|p| p.severity == Severity::Warning).count(), report.warnings().count());
}

macro_rules! broken {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

broken! {
    // Reading the files.
    yaml_syntax,
    duplicate_key,
    unknown_key,
    missing_key,
    file_name,
    duplicate_type,
    missing_files,
    slug,
    time_zone,
    // Decision tables.
    decisions,
    // Types.
    unknown_reference,
    field_options,
    number_field,
    templates,
    template_vars,
    title_of,
    terminology,
    permissions,
    permissions_missing,
    create_rules,
    duplicate_names,
    webhooks,
    // Workflows.
    unknown_state,
    workflow_names,
    initial_states,
    no_from_states,
    create_transition,
    unreachable_state,
    dead_end_state,
    reserved_event,
    terminal_state,
    position,
    roles,
    firing_roles,
    four_eyes,
    timers,
    editable,
    input_schema,
    script,
    script_names,
    guard_compile,
    loads,
    immutable,
    unique,
    record_rules,
    user_attributes,
    user_fields,
    // JSON-Logic `var` paths.
    entity_vars,
    iteration_vars,
    input_vars,
    context_vars,
    load_vars,
    named_rules,
    rule_cycles,
    // Sample data.
    sample_data,
    // The package's own tests.
    package_tests,
}

#[test]
fn examples_have_no_errors() {
    for entry in std::fs::read_dir(root().join("examples")).expect("examples/") {
        let dir = entry.expect("entry").path();
        if dir.is_dir() {
            let report = validate_dir(&dir, &Limits::default());
            assert!(!report.has_errors(), "{}:\n{report}", dir.display());
        }
    }
}

#[test]
fn display_format() {
    let problem = Problem::error("types/order.yaml", "/workflow/transitions/submitOrder/to", "unknown state `PENDING`");
    assert_eq!(
        problem.to_string(),
        "error: types/order.yaml: /workflow/transitions/submitOrder/to: unknown state `PENDING`"
    );
    let whole_file = Problem { path: String::new(), severity: Severity::Warning, ..problem.clone() };
    assert_eq!(whole_file.to_string(), "warning: types/order.yaml: unknown state `PENDING`");
    let script =
        Problem::error("types/order.yaml", "/workflow/transitions/submitOrder/script", "bad").at(Some(3), Some(7));
    assert_eq!(script.to_string(), "error: types/order.yaml: /workflow/transitions/submitOrder/script:3:7: bad");
    assert_eq!(
        script.clone().at(Some(3), None).to_string().split(": ").nth(2),
        Some("/workflow/transitions/submitOrder/script:3")
    );
    // As JSON, `line` and `column` are there only when known.
    assert_eq!(
        serde_json::to_value(&script).expect("json"),
        serde_json::json!({"severity": "error", "file": "types/order.yaml", "path": "/workflow/transitions/submitOrder/script",
            "message": "bad", "line": 3, "column": 7})
    );
    let json = serde_json::to_value(&problem).expect("json");
    assert!(json.get("line").is_none() && json.get("column").is_none(), "{json}");
}

// ---------------------------------------------------------------------------------------------
// The JSON Schemas of `tenants/schema/` (for editors).

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema").join(name);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).expect("schema is JSON");
    jsonschema::meta::validate(&schema).unwrap_or_else(|e| panic!("{name} is not a valid JSON Schema: {e}"));
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read");
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The schema errors of one file, as `<file>: <pointer>: <message>` lines.
fn schema_errors(validator: &jsonschema::Validator, path: &Path) -> Vec<String> {
    let value = yaml(path);
    validator.iter_errors(&value).map(|e| format!("{}: {}: {e}", path.display(), e.instance_path())).collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")));
    files.sort();
    files
}

#[test]
fn examples_match_the_json_schemas() {
    let (tenant, ty, data) = (schema("tenant.schema.json"), schema("type.schema.json"), schema("data.schema.json"));
    let decision = schema("decision.schema.json");
    let mut errors = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("examples")).expect("examples/") {
        let dir = entry.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        errors.extend(schema_errors(&tenant, &dir.join("tenant.yaml")));
        checked += 1;
        for file in yaml_files(&dir.join("types")) {
            errors.extend(schema_errors(&ty, &file));
            checked += 1;
        }
        for file in yaml_files(&dir.join("data")) {
            errors.extend(schema_errors(&data, &file));
            checked += 1;
        }
        for file in yaml_files(&dir.join("decisions")) {
            errors.extend(schema_errors(&decision, &file));
            checked += 1;
        }
    }
    // The decision tables of the test packages too (no example has one yet).
    for dir in ["../tests/fixtures/decisions/decisions", "tests/broken/decisions/decisions"] {
        let files = yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir));
        assert!(!files.is_empty(), "no decision tables in {dir}");
        for file in files {
            errors.extend(schema_errors(&decision, &file));
        }
    }
    assert!(checked > 3, "no example files found");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn json_schemas_refuse_what_validate_refuses() {
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let tenant = schema("tenant.schema.json");
    let ty = schema("type.schema.json");
    // Unknown keys, at every level.
    assert_eq!(schema_errors(&tenant, &broken.join("unknown_key/tenant.yaml")).len(), 1);
    assert_eq!(schema_errors(&ty, &broken.join("unknown_key/types/thing.yaml")).len(), 1);
    assert_eq!(schema_errors(&ty, &broken.join("unknown_key/types/other.yaml")).len(), 1);
    // Option combinations the editor can know about.
    assert!(!schema_errors(&ty, &broken.join("field_options/types/thing.yaml")).is_empty());
    assert!(!schema_errors(&ty, &broken.join("loads/types/thing.yaml")).is_empty());
    assert!(!schema_errors(&ty, &broken.join("roles/types/thing.yaml")).is_empty());
    // State and transition names: identifiers.
    assert_eq!(schema_errors(&ty, &broken.join("workflow_names/types/thing.yaml")).len(), 2);
    // Unique: not on objects, arrays or booleans; a valid type with every form passes.
    for file in ["objects", "flags", "empty", "repeated"] {
        let errors = schema_errors(&ty, &broken.join(format!("unique/types/{file}.yaml")));
        assert!(!errors.is_empty(), "unique/types/{file}.yaml passes the schema");
    }
    assert_eq!(schema_errors(&ty, &broken.join("unique/types/fine.yaml")), Vec::<String>::new());
    // `role` belongs to user fields (the undeclared role is validate's to find).
    assert_eq!(schema_errors(&ty, &broken.join("user_fields/types/note.yaml")).len(), 1);
    assert_eq!(schema_errors(&ty, &broken.join("user_fields/types/trip.yaml")), Vec::<String>::new());
    // A state's position: within bounds (one state of the file has one, the other does not).
    assert_eq!(schema_errors(&ty, &broken.join("position/types/thing.yaml")).len(), 1);
}

/// A user attribute given as `"@key"` must name a sample row of the referenced type (checked
/// when the package has sample data, which a package posted to the API has not: hence not a
/// `tests/broken` case, whose posted form must locate the same problems).
#[test]
fn user_attribute_keys_name_sample_rows_of_the_type() {
    let dir = std::env::temp_dir().join(format!("switchyard-attr-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("types")).expect("types/");
    std::fs::create_dir_all(dir.join("data")).expect("data/");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
    write(
        "tenant.yaml",
        "slug: keys\nname: Keys\nroles:\n  buyer: { permissions: { \"*\": [view, export] } }\n\
         user_attributes:\n  customer_id: { type: reference, to: customer }\nusers:\n\
         \x20 - { email: a@k.test, roles: [buyer], attributes: { customer_id: \"@acme\" } }\n\
         \x20 - { email: b@k.test, roles: [buyer], attributes: { customer_id: \"@nobody\" } }\n\
         \x20 - { email: c@k.test, roles: [buyer], attributes: { customer_id: \"@widget\" } }\n",
    );
    write("types/customer.yaml", "name: customer\nfields:\n  name: { type: string }\n");
    write("types/product.yaml", "name: product\nfields:\n  name: { type: string }\n");
    write(
        "data/010-rows.yaml",
        "- { type: customer, key: acme, data: { name: Acme } }\n- { type: product, key: widget, data: { name: Widget } }\n",
    );
    let report = validate_dir(&dir, &Limits::default());
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        lines,
        [
            "error: tenant.yaml: /users/1/attributes/customer_id: no sample row has the key `nobody` (data/*.yaml)",
            "error: tenant.yaml: /users/2/attributes/customer_id: `@widget` is a sample `product`, not a `customer`",
        ],
        "{report}"
    );
}

/// A sample row may name a user by e-mail in a user field (creating it stores the user's id):
/// one of the package's users, in any case; another address is an error at its path.
#[test]
fn sample_rows_name_the_packages_users_by_email_in_user_fields() {
    let dir = std::env::temp_dir().join(format!("switchyard-user-emails-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("types")).expect("types/");
    std::fs::create_dir_all(dir.join("data")).expect("data/");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
    write(
        "tenant.yaml",
        "slug: crews\nname: Crews\nroles:\n  driver: { permissions: { \"*\": [view, export] } }\n\
         users:\n\x20 - { email: dan@c.test, roles: [driver] }\n",
    );
    write(
        "types/trip.yaml",
        "name: trip\nfields:\n  driver_id: { type: user, role: driver }\n  \
         crew: { type: array, items: { type: user } }\n",
    );
    write(
        "data/010-trips.yaml",
        "- { type: trip, data: { driver_id: Dan@C.test, crew: [dan@c.test, eve@c.test] } }\n\
         - { type: trip, data: { driver_id: not-an-id } }\n",
    );
    let report = validate_dir(&dir, &Limits::default());
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        lines,
        [
            "error: data/010-trips.yaml: /0/data/crew/1: no user of the package has the e-mail eve@c.test (users: in tenant.yaml)",
            "error: data/010-trips.yaml: /1/data/driver_id: must be the id (a uuid) of a user with the role driver",
        ],
        "{report}"
    );
}
