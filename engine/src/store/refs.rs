//! Referential integrity of reference fields: every id a reference field holds must name an
//! entity of the referenced type *in the same tenant* (row-level security makes another
//! tenant's ids indistinguishable from ids that do not exist). Checked whenever data is written
//! by a client (create, patch) or by a transition (the entity, updated rows, created entities).

use std::collections::BTreeSet;

use ontology::compile::{CompiledType, FieldError};
use serde_json::Value;
use uuid::Uuid;

use super::sql::{self, Tx};
use super::{StoreError, TenantId};
use crate::eval::Rejection;

/// Checks the references of `data` (of type `ty`); `before` (the data as it was) limits the check
/// to reference values that changed. Errors name the field path under `prefix` (e.g. `/data`).
pub async fn check(
    tx: &mut Tx,
    tenant: TenantId,
    ty: &CompiledType,
    data: &Value,
    before: Option<&Value>,
    prefix: &str,
) -> Result<(), StoreError> {
    let mut wanted: Vec<(String, String, Uuid)> = Vec::new(); // (pointer, type, id)
    for r in ty.references() {
        let old: BTreeSet<String> =
            before.map(|b| values_at(b, &r.path).into_iter().map(|(_, v)| v.to_string()).collect()).unwrap_or_default();
        for (pointer, value) in values_at(data, &r.path) {
            if value.is_null() || old.contains(&value.to_string()) {
                continue;
            }
            // Malformed ids are the schema check's to report; there is nothing to look up.
            if let Some(id) = value.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
                wanted.push((pointer, r.to.as_str().to_string(), id));
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = wanted.iter().map(|(_, _, id)| *id).collect::<BTreeSet<_>>().into_iter().collect();
    let found = sql::entity_types(tx, tenant, &ids).await?;
    let mut errors = Vec::new();
    for (pointer, type_name, id) in wanted {
        if found.get(&id) != Some(&type_name) {
            errors.push(FieldError {
                path: format!("{prefix}{pointer}"),
                message: format!("no {type_name} with id {id}"),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Validation { errors }.into())
    }
}

/// The values at a reference path (`customer_id`, `items[].product_id`, `shipping.depot_id`)
/// with their JSON pointers.
fn values_at<'a>(data: &'a Value, path: &str) -> Vec<(String, &'a Value)> {
    let mut current: Vec<(String, &Value)> = vec![(String::new(), data)];
    for segment in path.split('.') {
        let (name, each) = match segment.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (segment, false),
        };
        let mut next = Vec::new();
        for (pointer, value) in current {
            let Some(v) = value.get(name) else { continue };
            let pointer = format!("{pointer}/{name}");
            if each {
                if let Some(items) = v.as_array() {
                    next.extend(items.iter().enumerate().map(|(i, item)| (format!("{pointer}/{i}"), item)));
                }
            } else {
                next.push((pointer, v));
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::values_at;
    use serde_json::json;

    #[test]
    fn paths_reach_into_arrays() {
        let data = json!({ "customer_id": "c", "items": [{ "product_id": "p1" }, { "product_id": "p2" }, {}] });
        let got: Vec<(String, String)> =
            values_at(&data, "items[].product_id").into_iter().map(|(p, v)| (p, v.to_string())).collect();
        assert_eq!(
            got,
            [
                ("/items/0/product_id".to_string(), "\"p1\"".to_string()),
                ("/items/1/product_id".into(), "\"p2\"".into())
            ]
        );
        assert_eq!(values_at(&data, "customer_id").len(), 1);
        assert!(values_at(&data, "missing").is_empty());
    }
}
