//! Compiling a package into the engine's definitions (with the roles' permissions), plus the checks that need the whole
//! package (roles named by transitions and users must be declared).

use std::collections::HashSet;

use engine::compiled::CompiledTenant;
use engine::limits::Limits;
use engine::permissions::Permissions;
use engine::EngineError;
use ontology::OntologyError;

use crate::validate::{esc, field_pointer};

use indexmap::IndexMap;
use serde_json::Value;

use crate::error::PackageError;
use crate::package::{
    attribute_problems, AttributeKind, Package, TenantFile, MAX_ATTRIBUTE_ITEMS, MAX_USER_ATTRIBUTES,
};

/// Compiles the package's types and workflows and checks cross-file references. Returns every
/// problem found, not just the first.
pub fn compile(package: &Package, limits: &Limits) -> Result<CompiledTenant, Vec<PackageError>> {
    let mut errors = Vec::new();
    let roles: HashSet<&str> = package.tenant.roles.keys().map(String::as_str).collect();
    for (i, user) in package.tenant.users.iter().enumerate() {
        for (j, role) in user.roles.iter().enumerate() {
            if !roles.contains(role.as_str()) {
                errors.push(invalid("tenant.yaml", &format!("/users/{i}/roles/{j}"), format!("unknown role `{role}`")));
            }
        }
    }

    let type_names: HashSet<&str> = package.types.iter().map(|t| t.name.as_str()).collect();
    let record_rules = package.types.iter().map(|t| (t.name.as_str(), &t.record_rules));
    for (file, pointer, message) in user_attribute_problems(&package.tenant, &type_names, record_rules) {
        errors.push(invalid(&file, &pointer, message));
    }

    let ontology = match ontology::compile::compile_types(package.types.clone()) {
        Ok(o) => Some(o),
        Err(errs) => {
            errors.extend(errs.into_iter().map(|e| {
                let (file, path) = ontology_place(&e);
                invalid(&file, &path, e.to_string())
            }));
            None
        }
    };
    let compiled = match ontology.map(|o| CompiledTenant::compile_with(o, &package.tenant.rules, limits)) {
        Some(Ok(c)) => Some(c),
        Some(Err(errs)) => {
            errors.extend(errs.into_iter().map(|e| {
                let (file, path) = engine_place(&e);
                invalid(&file, &path, e.to_string())
            }));
            None
        }
        None => None,
    };
    if let Err(e) = engine::names::TenantSlug::parse(&package.tenant.slug) {
        errors.push(invalid("tenant.yaml", "/slug", e.to_string()));
    }
    for def in &package.types {
        let Some(workflow) = &def.workflow else { continue };
        let keys = |map: &str| workflow[map].as_object().into_iter().flat_map(|m| m.keys().map(String::as_str));
        for (pointer, problem) in workflow_name_problems(keys("states"), keys("transitions")) {
            errors.push(invalid(&format!("types/{}.yaml", def.name.as_str()), &pointer, problem));
        }
    }
    if let Some(c) = &compiled {
        for def in &package.types {
            let Some(workflow) = c.workflow(def.name.as_str()) else { continue };
            for t in workflow.transitions() {
                for role in t.roles() {
                    if !roles.contains(role.as_str()) {
                        errors.push(invalid(
                            &format!("types/{}.yaml", def.name.as_str()),
                            &format!("/workflow/transitions/{}/roles", t.name()),
                            format!("unknown role `{role}`"),
                        ));
                    }
                }
            }
        }
    }
    // The decision tables.
    let decisions = match engine::decision::Decisions::compile(package.decisions.iter().cloned()) {
        Ok(d) => Some(d),
        Err(errs) => {
            errors.extend(errs.into_iter().map(|e| decision_error(&e)));
            None
        }
    };
    for d in &package.decisions {
        let Some(from) = &d.rows_from else { continue };
        if !type_names.contains(from.type_name.as_str()) {
            let file = format!("decisions/{}.yaml", d.name);
            errors.push(invalid(&file, "/rows_from/type", format!("unknown type `{}`", from.type_name)));
        }
    }
    let compiled = match (compiled, decisions) {
        (Some(c), Some(d)) => Some(c.with_decisions(d)),
        _ => None,
    };
    // The roles' permissions and rules at creation (compiled with the named rules).
    let compiled = compiled.map(|c| {
        let roles = &package.tenant.roles;
        let (permissions, create_errors) =
            Permissions::new(roles.iter().map(|(name, r)| (name.as_str(), r.permissions.as_ref()))).with_create_rules(
                roles.iter().filter_map(|(name, r)| Some((name.as_str(), r.create.as_ref()?))),
                c.rules(),
                limits,
            );
        errors.extend(create_errors.into_iter().map(|e| invalid("tenant.yaml", &e.pointer, e.message)));
        let c = c.with_permissions(permissions);
        match package.tenant.time_zone.as_deref().map(engine::dates::zone) {
            None => c,
            Some(Ok(zone)) => c.with_time_zone(zone),
            Some(Err(e)) => {
                errors.push(invalid("tenant.yaml", "/time_zone", e.to_string()));
                c
            }
        }
    });
    match compiled {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
    }
}

/// A decision table's problem at its file and pointer.
fn decision_error(e: &engine::decision::DecisionError) -> PackageError {
    match e {
        engine::decision::DecisionError::Definition { table, pointer, message } => {
            invalid(&format!("decisions/{table}.yaml"), pointer, message.clone())
        }
        other => invalid("decisions", "", other.to_string()),
    }
}

/// The problems of the package's user attributes, as (file, JSON pointer, message): the
/// declarations (snake_case names, at most [`MAX_USER_ATTRIBUTES`], a `reference` names a type
/// of the package with `to`, an `enum` has `values`), the `users:` entries' values (declared,
/// of the declared kind; a reference may be `"@key"`, a sample row's key) and the
/// `actor.attributes.<name>` that record rules read (declared). Publishing and `validate` both
/// run it.
pub fn user_attribute_problems<'a>(
    tenant: &TenantFile,
    type_names: &HashSet<&str>,
    record_rules: impl Iterator<Item = (&'a str, &'a IndexMap<String, Value>)>,
) -> Vec<(String, String, String)> {
    const FILE: &str = "tenant.yaml";
    let mut out = Vec::new();
    let mut push = |file: &str, pointer: String, message: String| out.push((file.to_string(), pointer, message));
    let declared = &tenant.user_attributes;
    if declared.len() > MAX_USER_ATTRIBUTES {
        push(FILE, "/user_attributes".into(), format!("at most {MAX_USER_ATTRIBUTES} user attributes"));
    }
    for (name, def) in declared {
        let at = format!("/user_attributes/{}", esc(name));
        if !engine::rows::is_attribute_name(name) {
            push(FILE, at.clone(), format!("`{name}` is not an attribute name (snake_case, at most 64 characters)"));
        }
        match (def.kind, &def.to) {
            (AttributeKind::Reference, None) => push(FILE, at.clone(), "a reference names its type with `to`".into()),
            (AttributeKind::Reference, Some(to)) if !type_names.contains(to.as_str()) => {
                push(FILE, format!("{at}/to"), format!("unknown type `{to}`"))
            }
            (AttributeKind::Reference, Some(_)) => {}
            (_, Some(_)) => push(FILE, format!("{at}/to"), "only a reference names a type (`to`)".into()),
            (_, None) => {}
        }
        match (def.kind, &def.values) {
            (AttributeKind::Enum, Some(values)) if !values.is_empty() && values.len() <= MAX_ATTRIBUTE_ITEMS => {}
            (AttributeKind::Enum, values) => push(
                FILE,
                if values.is_some() { format!("{at}/values") } else { at.clone() },
                format!("an enum lists its `values` (1 to {MAX_ATTRIBUTE_ITEMS})"),
            ),
            (_, Some(_)) => push(FILE, format!("{at}/values"), "only an enum lists `values`".into()),
            (_, None) => {}
        }
    }
    for (i, user) in tenant.users.iter().enumerate() {
        // A reference given as `"@key"` is checked as the id it stands for.
        let values: serde_json::Map<String, Value> = user
            .attributes
            .iter()
            .map(|(k, v)| {
                let is_key = declared.get(k).is_some_and(|d| d.kind == AttributeKind::Reference)
                    && v.as_str().is_some_and(|s| s.len() > 1 && s.starts_with('@'));
                (k.clone(), if is_key { Value::String(uuid::Uuid::nil().to_string()) } else { v.clone() })
            })
            .collect();
        for (pointer, message) in attribute_problems(declared, &values) {
            push(FILE, format!("/users/{i}/attributes{pointer}"), message);
        }
    }
    for (type_name, rules) in record_rules {
        for (role, rule) in rules {
            let mut vars = Vec::new();
            collect_vars(rule, &mut vars);
            for var in vars {
                let Some(name) = var.strip_prefix("actor.attributes.") else { continue };
                if !declared.contains_key(name) {
                    push(
                        &format!("types/{type_name}.yaml"),
                        format!("/record_rules/{}", esc(role)),
                        format!(
                            "`{var}`: `{name}` is not a declared user attribute (`user_attributes:` in tenant.yaml)"
                        ),
                    );
                }
            }
        }
    }
    out
}

/// Every `{"var": "…"}` name in a JSON-Logic value.
fn collect_vars<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                match (k.as_str(), inner) {
                    ("var", Value::String(s)) => out.push(s),
                    ("var", Value::Array(a)) if a.first().is_some_and(Value::is_string) => {
                        out.extend(a.first().and_then(Value::as_str))
                    }
                    _ => collect_vars(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_vars(i, out)),
        _ => {}
    }
}

/// The names among a workflow's `states` and `transitions` that are not names
/// ([`engine::names::StateName`], [`engine::names::TransitionName`]): their JSON pointers and
/// why. Published versions are held to it (here) as packages are (`validate`).
pub fn workflow_name_problems<'a>(
    states: impl Iterator<Item = &'a str>,
    transitions: impl Iterator<Item = &'a str>,
) -> Vec<(String, String)> {
    let states = states.filter_map(|name| {
        let e = engine::names::StateName::parse(name).err()?;
        Some((format!("/workflow/states/{}", esc(name)), e.to_string()))
    });
    let transitions = transitions.filter_map(|name| {
        let e = engine::names::TransitionName::parse(name).err()?;
        Some((format!("/workflow/transitions/{}", esc(name)), e.to_string()))
    });
    states.chain(transitions).collect()
}

/// The file and JSON pointer of an error of the engine's compiler (`tenant validate` reports
/// the same problems more finely; this is for what publishing finds).
fn engine_place(e: &EngineError) -> (String, String) {
    let file = |t: &str| format!("types/{t}.yaml");
    let tr = |t: &str, rest: &str| format!("/workflow/transitions/{}{rest}", esc(t));
    match e {
        EngineError::Rule { rule, .. } => ("tenant.yaml".into(), format!("/rules/{}", esc(rule))),
        EngineError::WorkflowSyntax { type_name, .. } => (file(type_name), "/workflow".into()),
        EngineError::InitialStates { type_name, .. } => (file(type_name), "/workflow/states".into()),
        EngineError::UnknownState { type_name, transition, field, .. } => {
            (file(type_name), tr(transition, &format!("/{field}")))
        }
        EngineError::NoRoles { type_name, transition } => (file(type_name), tr(transition, "/roles")),
        EngineError::NoFromStates { type_name, transition } => (file(type_name), tr(transition, "/from")),
        EngineError::CreateTransition { type_name, transition, field, .. } => {
            (file(type_name), tr(transition, &format!("/{field}")))
        }
        EngineError::Guard { type_name, transition, index, .. } => {
            (file(type_name), tr(transition, &format!("/guards/{index}/rule")))
        }
        EngineError::Script { type_name, transition, .. } => (file(type_name), tr(transition, "/script")),
        EngineError::InputSchema { type_name, transition, .. } => (file(type_name), tr(transition, "/input")),
        EngineError::Load { type_name, transition, load, .. } => {
            (file(type_name), tr(transition, &format!("/load/{}", esc(load))))
        }
        EngineError::FourEyes { type_name, transition, .. } => (file(type_name), tr(transition, "/four_eyes")),
        EngineError::State { type_name, state, .. } => (file(type_name), format!("/workflow/states/{}", esc(state))),
        EngineError::RecordRule { type_name, role, .. } => (file(type_name), format!("/record_rules/{}", esc(role))),
        _ => ("types".into(), String::new()),
    }
}

/// The file and JSON pointer of an error of the ontology's compiler.
fn ontology_place(e: &OntologyError) -> (String, String) {
    let file = |t: &str| format!("types/{t}.yaml");
    match e {
        OntologyError::InvalidField { type_name, path, .. } if path == "number" => {
            (file(type_name), "/number/field".into())
        }
        OntologyError::InvalidField { type_name, path, .. } => (file(type_name), ontology_pointer(path)),
        OntologyError::UnknownReference { type_name, path, .. } => {
            (file(type_name), format!("{}/to", field_pointer(path)))
        }
        OntologyError::Template { type_name, path, .. } => (file(type_name), format!("/{}", path.replace('.', "/"))),
        OntologyError::DuplicateType { name } => (file(name), "/name".into()),
        _ => ("types".into(), String::new()),
    }
}

/// The JSON pointer of an ontology error's path: `number` (the `number.field` that does not fit),
/// `unique` or `unique/<n>` (the type's unique list), or a field path.
pub(crate) fn ontology_pointer(path: &str) -> String {
    if path == "number" {
        "/number/field".into()
    } else if path == "unique" || path.starts_with("unique/") {
        format!("/{path}")
    } else {
        field_pointer(path)
    }
}

fn invalid(file: &str, path: &str, message: String) -> PackageError {
    PackageError::Invalid { file: file.to_string(), path: path.to_string(), message }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use serde_json::json;

    /// What publishing refuses (validation missed it) still names the file and the place.
    #[test]
    fn compile_errors_name_their_file_and_pointer() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/chemichemi");
        let mut package = Package::load_dir(&dir).unwrap();
        let order = package.types.iter_mut().find(|t| t.name.as_str() == "order").unwrap();
        let transitions = order.workflow.as_mut().unwrap()["transitions"].as_object_mut().unwrap();
        let (name, first) = transitions.iter_mut().next().unwrap();
        let name = name.clone();
        first["guards"] = json!([{ "rule": { "frobnicate": [1] }, "message": "never" }]);
        let errors = compile(&package, &Limits::default()).map(|_| ()).unwrap_err();
        let places: Vec<(String, String)> = errors
            .iter()
            .filter_map(|e| match e {
                PackageError::Invalid { file, path, .. } => Some((file.clone(), path.clone())),
                _ => None,
            })
            .collect();
        let expected = ("types/order.yaml".to_string(), format!("/workflow/transitions/{name}/guards/0/rule"));
        assert!(places.contains(&expected), "{places:?}");
    }

    /// Publishing refuses what `validate` refuses of slugs and workflow names.
    #[test]
    fn publishing_refuses_a_bad_slug_and_bad_workflow_names() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/chemichemi");
        let mut package = Package::load_dir(&dir).unwrap();
        assert!(compile(&package, &Limits::default()).is_ok());
        package.tenant.slug = "Chemi Chemi".into();
        let order = package.types.iter_mut().find(|t| t.name.as_str() == "order").unwrap();
        let workflow = order.workflow.as_mut().unwrap();
        let transitions = workflow["transitions"].as_object_mut().unwrap();
        let first = transitions.values().next().unwrap().clone();
        transitions.insert("send back".into(), first);
        workflow["states"].as_object_mut().unwrap().insert("on-hold".into(), json!({}));
        let errors = compile(&package, &Limits::default()).map(|_| ()).unwrap_err();
        let found = |file: &str, path: &str, text: &str| {
            errors.iter().any(|e| {
                matches!(e, PackageError::Invalid { file: f, path: p, message } if f == file && p == path && message.contains(text))
            })
        };
        assert!(found("tenant.yaml", "/slug", "is not a tenant slug"), "{errors:?}");
        assert!(found("types/order.yaml", "/workflow/transitions/send back", "is not a transition name"), "{errors:?}");
        assert!(found("types/order.yaml", "/workflow/states/on-hold", "is not a state name"), "{errors:?}");
    }

    /// Publishing refuses what `validate` refuses of user attributes: an undeclared attribute a
    /// record rule reads, a user's value of the wrong kind, a reference to no type.
    #[test]
    fn publishing_refuses_undeclared_or_ill_typed_user_attributes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/chemichemi");
        let mut package = Package::load_dir(&dir).unwrap();
        let order = package.types.iter_mut().find(|t| t.name.as_str() == "order").unwrap();
        order.record_rules.insert(
            "viewer".into(),
            json!({ "==": [ { "var": "entity.customer_id" }, { "var": "actor.attributes.company_id" } ] }),
        );
        let buyer = package.tenant.users.iter_mut().position(|u| u.email == "buyer@chemichemi.test").unwrap();
        package.tenant.users[buyer].attributes.insert("customer_id".into(), json!(42));
        package.tenant.user_attributes.get_mut("customer_id").unwrap().to = Some("client".into());
        let errors = compile(&package, &Limits::default()).map(|_| ()).unwrap_err();
        let found = |file: &str, path: &str, text: &str| {
            errors.iter().any(|e| {
                matches!(e, PackageError::Invalid { file: f, path: p, message } if f == file && p == path && message.contains(text))
            })
        };
        assert!(found("types/order.yaml", "/record_rules/viewer", "`company_id` is not a declared"), "{errors:?}");
        let at = format!("/users/{buyer}/attributes/customer_id");
        assert!(found("tenant.yaml", &at, "must be the id (a uuid)"), "{errors:?}");
        assert!(found("tenant.yaml", "/user_attributes/customer_id/to", "unknown type `client`"), "{errors:?}");
    }

    #[test]
    fn ontology_errors_name_their_field() {
        let e =
            OntologyError::InvalidField { type_name: "order".into(), path: "items[].qty".into(), message: "x".into() };
        assert_eq!(ontology_place(&e), ("types/order.yaml".into(), "/fields/items/items/fields/qty".into()));
        let e =
            OntologyError::Template { type_name: "order".into(), path: "number.template".into(), message: "x".into() };
        assert_eq!(ontology_place(&e).1, "/number/template");
    }
}
