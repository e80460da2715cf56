//! Referential integrity of reference and user fields: every id a reference field holds must
//! name an entity of the referenced type *in the same tenant* (row-level security makes another
//! tenant's ids indistinguishable from ids that do not exist), and every id a user field
//! (`type: user`) holds must name an active user of the tenant having the field's `role`.
//! Checked whenever data is written by a client (create, patch, import, bulk) or by a
//! transition (the entity, updated rows, created entities), in the writing transaction: the
//! users are read `FOR SHARE`, so none is deactivated before the write commits.
//!
//! Clients may also name a user by e-mail ([`resolve_user_emails`], on create and patch): the
//! e-mail is replaced by the user's id before anything else looks at the data.

use std::collections::{BTreeSet, HashMap};

use ontology::compile::{CompiledType, FieldError};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::sql::{self};
use super::{StoreError, TenantId};
use crate::eval::Rejection;

/// Checks the references of `data` (of type `ty`); `before` (the data as it was) limits the check
/// to reference values that changed. Errors name the field path under `prefix` (e.g. `/data`).
pub async fn check(
    tx: &mut PgConnection,
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
    let mut errors = Vec::new();
    if !wanted.is_empty() {
        let ids: Vec<Uuid> = wanted.iter().map(|(_, _, id)| *id).collect::<BTreeSet<_>>().into_iter().collect();
        let found = sql::entity_types(tx, tenant, &ids).await?;
        for (pointer, type_name, id) in wanted {
            if found.get(&id) != Some(&type_name) {
                errors.push(FieldError {
                    path: format!("{prefix}{pointer}"),
                    message: format!("no {type_name} with id {id}"),
                });
            }
        }
    }
    check_users(tx, tenant, ty, data, before, prefix, &mut errors).await?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Validation { errors }.into())
    }
}

/// The user fields' part of [`check`]: each changed user id names an active user of the tenant
/// with the field's role (the rows read `FOR SHARE`, in id order).
async fn check_users(
    tx: &mut PgConnection,
    tenant: TenantId,
    ty: &CompiledType,
    data: &Value,
    before: Option<&Value>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Result<(), StoreError> {
    let mut wanted: Vec<(String, Option<&str>, Uuid)> = Vec::new(); // (pointer, role, id)
    for f in ty.user_fields() {
        let old: BTreeSet<String> =
            before.map(|b| values_at(b, &f.path).into_iter().map(|(_, v)| v.to_string()).collect()).unwrap_or_default();
        for (pointer, value) in values_at(data, &f.path) {
            if value.is_null() || old.contains(&value.to_string()) {
                continue;
            }
            if let Some(id) = value.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
                wanted.push((pointer, f.role.as_deref(), id));
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = wanted.iter().map(|(_, _, id)| *id).collect::<BTreeSet<_>>().into_iter().collect();
    let users: HashMap<Uuid, sql::UserRow> =
        sql::users_by_ids(tx, tenant, &ids, true).await?.into_iter().map(|u| (u.id, u)).collect();
    for (pointer, role, id) in wanted {
        if let Some(message) = user_problem(users.get(&id), id, role) {
            errors.push(FieldError { path: format!("{prefix}{pointer}"), message });
        }
    }
    Ok(())
}

/// Why the user `id` (`user`, as read) cannot be the value of a user field asking for `role`.
fn user_problem(user: Option<&sql::UserRow>, id: Uuid, role: Option<&str>) -> Option<String> {
    let Some(user) = user else {
        return Some(format!("no user with id {id}"));
    };
    if !user.active {
        return Some(format!("user {id} is not active"));
    }
    match role {
        Some(role) if !user.roles.iter().any(|r| r == role) => Some(format!("user {id} does not have the role {role}")),
        _ => None,
    }
}

/// Replaces e-mail addresses given for user fields by the users' ids (a client may name a user
/// either way; the id is what is stored). An address that names no user of the tenant is a 422
/// at its path under `prefix`; whether the user is active and has the role is [`check`]'s.
pub async fn resolve_user_emails(
    tx: &mut PgConnection,
    tenant: TenantId,
    ty: &CompiledType,
    data: &mut Value,
    prefix: &str,
) -> Result<(), StoreError> {
    let mut given: Vec<(String, String)> = Vec::new(); // (pointer, lower-cased e-mail)
    for f in ty.user_fields() {
        for (pointer, value) in values_at(data, &f.path) {
            if let Some(s) = value.as_str().filter(|s| s.contains('@') && Uuid::parse_str(s).is_err()) {
                given.push((pointer, s.to_lowercase()));
            }
        }
    }
    if given.is_empty() {
        return Ok(());
    }
    let emails: Vec<String> = given.iter().map(|(_, e)| e.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let ids = sql::user_ids_by_emails(tx, tenant, &emails).await?;
    let mut errors = Vec::new();
    for (pointer, email) in given {
        match (ids.get(&email), data.pointer_mut(&pointer)) {
            (Some(id), Some(slot)) => *slot = Value::String(id.to_string()),
            _ => errors.push(FieldError {
                path: format!("{prefix}{pointer}"),
                message: format!("no user with e-mail {email}"),
            }),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Validation { errors }.into())
    }
}

/// The user ids the user fields of `data` (of type `ty`) hold, each once.
pub(super) fn user_ids(ty: &CompiledType, data: &Value) -> BTreeSet<Uuid> {
    ty.user_fields()
        .iter()
        .flat_map(|f| values_at(data, &f.path))
        .filter_map(|(_, v)| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
        .collect()
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
    use super::{user_problem, values_at};
    use crate::store::sql::UserRow;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn a_user_value_must_be_an_active_user_with_the_role() {
        let id = Uuid::nil();
        let user = |active: bool, roles: &[&str]| UserRow {
            id,
            email: "d@x.test".into(),
            name: "D".into(),
            roles: roles.iter().map(ToString::to_string).collect(),
            active,
        };
        assert_eq!(user_problem(None, id, None).as_deref(), Some(format!("no user with id {id}").as_str()));
        assert!(
            user_problem(Some(&user(false, &["driver"])), id, Some("driver")).is_some_and(|m| m.contains("not active"))
        );
        assert!(user_problem(Some(&user(true, &["sales"])), id, Some("driver"))
            .is_some_and(|m| m.ends_with("does not have the role driver")));
        assert_eq!(user_problem(Some(&user(true, &["sales", "driver"])), id, Some("driver")), None);
        assert_eq!(user_problem(Some(&user(true, &[])), id, None), None);
    }

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
