//! Compiling a package into the engine's definitions (with the roles' permissions), plus the checks that need the whole
//! package (roles named by transitions and users must be declared).

use std::collections::HashSet;

use engine::compiled::CompiledTenant;
use engine::limits::Limits;
use engine::permissions::Permissions;
use engine::EngineError;
use ontology::OntologyError;

use crate::validate::{esc, field_pointer};

use crate::error::PackageError;
use crate::package::Package;

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
        c.with_permissions(permissions)
    });
    match compiled {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
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
