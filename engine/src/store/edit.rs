//! Editing and deleting entities outside transitions, under the package's permissions: a patch
//! may change only the fields the actor may edit in the entity's current state (no mass
//! assignment of state, version, ids, audit or generated fields), and both leave history.

use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::sql::{self, HistoryRow, StoredEntity};
use super::{EmittedEvent, Store, StoreError, TenantId};
use crate::eval::{diff, Rejection};
use crate::model::{is_reserved, Actor, Entity};
use crate::permissions::Action;
use ontology::compile::FieldError;
use ontology::def::FieldDef;
use ontology::names::FieldName;

/// Applies a JSON merge patch of data fields (`null` removes a field) to an entity.
pub(super) async fn patch(
    store: &Store,
    tenant: TenantId,
    type_name: &str,
    id: Uuid,
    patch: Map<String, Value>,
    actor: &Actor,
    if_match: Option<i64>,
) -> Result<Entity, StoreError> {
    let mut tx = store.begin(tenant).await?;
    let stored = sql::get_typed(&mut tx, tenant, type_name, id, true).await?.ok_or(StoreError::EntityNotFound)?;
    let defs = store.defs.get(&mut tx, tenant, stored.config_version).await?;
    let live = store.live_in(&mut tx, tenant).await?.1;
    refuse_immutable(&live, actor, &stored)?;
    authorize(&live, actor, type_name, Action::Edit, true)?;
    if let Some(expected) = if_match {
        if expected != stored.entity.version {
            return Err(StoreError::VersionConflict { expected, actual: stored.entity.version });
        }
    }
    let ty = defs.type_(type_name).ok_or_else(|| StoreError::TypeNotFound(type_name.to_string()))?;
    let workflow = defs.workflow(type_name);
    let state = stored.entity.state.as_str();
    // A type without a declared workflow has no states to restrict edits; with a workflow, only
    // the fields a state declares `editable` (for its roles) may change.
    let implicit = ty.def().workflow.is_none();
    let editable = workflow.and_then(|w| w.editable(state));
    let role_may = |roles: &[String]| roles.is_empty() || roles.iter().any(|r| actor.roles.contains(r));

    let mut errors = Vec::new();
    for (key, value) in &patch {
        // Generated fields, at any depth, are the server's.
        let generated = generated_given(&ty.def().fields, [(key, value)], "/data");
        if !generated.is_empty() {
            errors.extend(generated);
            continue;
        }
        let path = format!("/data/{key}");
        let message = if is_reserved(key) {
            Some(format!("`{key}` is managed by the server and cannot be set"))
        } else {
            match ty.def().fields.get(key.as_str()) {
                None => Some("unknown field".to_string()),
                Some(_) if actor.system || implicit => None,
                Some(_) => match editable {
                    Some(e) if e.fields.iter().any(|f| f == key) && role_may(&e.roles) => None,
                    _ => Some(format!("may not be edited in state {state} by your roles")),
                },
            }
        };
        if let Some(message) = message {
            errors.push(FieldError { path, message });
        }
    }
    if !errors.is_empty() {
        return Err(Rejection::Validation { errors }.into());
    }

    let mut data = stored.entity.data.clone();
    if let Some(obj) = data.as_object_mut() {
        for (k, v) in patch {
            if v.is_null() {
                obj.remove(&k);
            } else {
                obj.insert(k, v);
            }
        }
    }
    // A user field may be given as the user's e-mail: the id is stored.
    super::refs::resolve_user_emails(&mut tx, tenant, ty, &mut data, "/data").await?;
    ty.prepare(&mut data).map_err(|errors| Rejection::Validation {
        errors: errors
            .into_iter()
            .map(|e| FieldError { path: format!("/data{}", e.path), message: e.message })
            .collect(),
    })?;
    super::refs::check(&mut tx, tenant, ty, &data, Some(&stored.entity.data), "/data").await?;
    let changes = diff(&stored.entity.data, &data);
    if changes.as_object().is_some_and(Map::is_empty) {
        tx.commit().await?;
        return Ok(stored.entity);
    }
    let now = store.now();
    let updated = sql::update_entity(&mut tx, tenant, id, state, &data, &actor.id, now).await?;
    let payload = json!({ "id": id, "type": type_name, "changes": changes });
    record(&mut tx, tenant, &stored, "edit", &changes, actor, now, (&format!("{type_name}.updated"), payload)).await?;
    store.commit_writes(tx, tenant).await?;
    Ok(updated.entity)
}

/// What a client is told for a `generated` field it gave.
pub(super) const SET_BY_SERVER: &str = "is set by the server";

/// One error per `generated` field present in client `data` of a type with `fields`, at any
/// depth (inside objects and array elements), with its path under `prefix`
/// (`/data/total_amount`). Only the server fills these: the system actor (sample data, timers)
/// and scripts write them without this check; unknown keys are left to the schema.
pub(super) fn generated_given<'a>(
    fields: &IndexMap<FieldName, FieldDef>,
    data: impl IntoIterator<Item = (&'a String, &'a Value)>,
    prefix: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk_generated(fields, data, prefix, &mut errors);
    errors
}

fn walk_generated<'a>(
    fields: &IndexMap<FieldName, FieldDef>,
    data: impl IntoIterator<Item = (&'a String, &'a Value)>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) {
    for (key, value) in data {
        let Some(def) = fields.get(key.as_str()) else { continue };
        let path = format!("{prefix}/{key}");
        if def.generated {
            errors.push(FieldError { path, message: SET_BY_SERVER.to_string() });
        } else {
            walk_generated_value(def, value, &path, errors);
        }
    }
}

fn walk_generated_value(def: &FieldDef, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match (value, &def.fields, &def.items) {
        (Value::Object(obj), Some(fields), _) => walk_generated(fields, obj, path, errors),
        (Value::Array(items), _, Some(item)) => {
            for (i, v) in items.iter().enumerate() {
                walk_generated_value(item, v, &format!("{path}/{i}"), errors);
            }
        }
        _ => {}
    }
}

/// Refuses new `data` from a non-system actor that sets `generated` fields (422 naming each).
pub(super) fn refuse_generated(ty: &ontology::CompiledType, data: &Value, actor: &Actor) -> Result<(), StoreError> {
    let Some(obj) = data.as_object().filter(|_| !actor.system) else {
        return Ok(());
    };
    let errors = generated_given(&ty.def().fields, obj, "/data");
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Validation { errors }.into())
    }
}

/// Deletes an entity; its history stays, ending with a `delete` row.
pub(super) async fn delete(
    store: &Store,
    tenant: TenantId,
    type_name: &str,
    id: Uuid,
    actor: &Actor,
    if_match: Option<i64>,
) -> Result<(), StoreError> {
    let mut tx = store.begin(tenant).await?;
    let stored = sql::get_typed(&mut tx, tenant, type_name, id, true).await?.ok_or(StoreError::EntityNotFound)?;
    let live = store.live_in(&mut tx, tenant).await?.1;
    refuse_immutable(&live, actor, &stored)?;
    authorize(&live, actor, type_name, Action::Delete, true)?;
    if let Some(expected) = if_match {
        if expected != stored.entity.version {
            return Err(StoreError::VersionConflict { expected, actual: stored.entity.version });
        }
    }
    let now = store.now();
    sql::cancel_timers(&mut tx, tenant, id, now).await?;
    let payload = json!({ "id": id, "type": type_name, "state": stored.entity.state });
    record(&mut tx, tenant, &stored, "delete", &json!({}), actor, now, (&format!("{type_name}.deleted"), payload))
        .await?;
    sql::delete_entity(&mut tx, tenant, id).await?;
    store.commit_writes(tx, tenant).await?;
    Ok(())
}

/// An append-only entity (its type `immutable: true` in the version it is pinned to) is never
/// edited or deleted: 409 `IMMUTABLE`, asked before the action's permission (which validation
/// refuses to grant on such a type) but after `view` (without it the entity does not exist).
fn refuse_immutable(
    live: &crate::compiled::CompiledTenant,
    actor: &Actor,
    stored: &StoredEntity,
) -> Result<(), StoreError> {
    if !stored.immutable {
        return Ok(());
    }
    let type_name = &stored.entity.type_name;
    authorize(live, actor, type_name, Action::View, true)?;
    Err(StoreError::Immutable { type_name: type_name.clone() })
}

/// Writes the history row (state unchanged) and the event of an edit or a deletion.
#[expect(clippy::too_many_arguments, reason = "one call per kind of write; each argument is a part of the row")]
async fn record(
    tx: &mut PgConnection,
    tenant: TenantId,
    stored: &StoredEntity,
    what: &str,
    changes: &Value,
    actor: &Actor,
    now: chrono::DateTime<chrono::Utc>,
    (event, payload): (&str, Value),
) -> Result<(), StoreError> {
    let e = &stored.entity;
    let history_id = sql::insert_history(
        tx,
        tenant,
        HistoryRow {
            entity_id: e.id,
            entity_type: &e.type_name,
            transition: what,
            from: Some(&e.state),
            to: &e.state,
            actor_id: &actor.id,
            actor_email: &actor.email,
            at: now,
            input: &json!({}),
            changes,
            config_version: stored.config_version,
            parent_id: None,
        },
    )
    .await?;
    let event = EmittedEvent {
        id: Uuid::now_v7(),
        name: event.to_string(),
        entity_type: e.type_name.clone(),
        entity_id: e.id,
        payload,
    };
    sql::insert_event(tx, tenant, &event, Some(history_id)).await
}

/// Type-level permission check. Without `view` the type and its entities do not exist for the
/// actor (404: `EntityNotFound` when `on_entity`, else `TypeNotFound`; no existence leak);
/// `edit` or `delete` of an append-only type is [`StoreError::Immutable`] (409); `view`
/// without the action is 403.
pub fn authorize(
    defs: &crate::compiled::CompiledTenant,
    actor: &Actor,
    type_name: &str,
    action: Action,
    on_entity: bool,
) -> Result<(), StoreError> {
    let p = defs.permissions();
    if defs.type_(type_name).is_none() {
        return Err(StoreError::TypeNotFound(type_name.to_string()));
    }
    if !p.allows(&actor.roles, actor.system, type_name, Action::View) {
        return Err(if on_entity {
            StoreError::EntityNotFound
        } else {
            StoreError::TypeNotFound(type_name.to_string())
        });
    }
    // An append-only type is never edited or deleted, whatever the roles (the system too).
    let immutable = defs.type_(type_name).is_some_and(|t| t.def().immutable);
    if immutable && matches!(action, Action::Edit | Action::Delete) {
        return Err(StoreError::Immutable { type_name: type_name.to_string() });
    }
    if action != Action::View && !p.allows(&actor.roles, actor.system, type_name, action) {
        return Err(StoreError::Forbidden { action: action.as_str(), type_name: type_name.to_string() });
    }
    Ok(())
}
