//! Compiling a package into the engine's definitions, plus the checks that need the whole
//! package (roles named by transitions and users must be declared).

use std::collections::HashSet;

use engine::compiled::CompiledTenant;
use engine::limits::Limits;
use engine::EngineError;

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
            errors.extend(errs.into_iter().map(|e| invalid("types", "", e.to_string())));
            None
        }
    };
    let compiled = match ontology.map(|o| CompiledTenant::compile_with(o, &package.tenant.rules, limits)) {
        Some(Ok(c)) => Some(c),
        Some(Err(errs)) => {
            errors.extend(errs.into_iter().map(|e| match &e {
                EngineError::Rule { rule, .. } => invalid("tenant.yaml", &format!("/rules/{rule}"), e.to_string()),
                _ => invalid("types", "", e.to_string()),
            }));
            None
        }
        None => None,
    };
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
    match compiled {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
    }
}

fn invalid(file: &str, path: &str, message: String) -> PackageError {
    PackageError::Invalid { file: file.to_string(), path: path.to_string(), message }
}
