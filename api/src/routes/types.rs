//! The entity types of the live version that the user may view (the studio builds its forms and
//! workflow views from them): each type's JSON Schema and workflow, in definition order. A type
//! the user's roles may not view is absent from the list and a 404 on its own.
//!
//! `GET /api/v1/t/{tenant}/types` → `{"version": 3, "data": [{"name": "order", "label": …,
//! "schema": {…}, "workflow": {"states": [{"name", "kind", "label", "editable": {"fields", "roles"}
//! or null}…], "transitions": [{"name", "label", "from", "to", "create", "roles", "four_eyes",
//! "guards": [{rule, message}…], "input_schema", "events"}…]}}, …]}` (`create: true`, `from: []`:
//! the create transition, run by `POST …/entities/{type}` with its input);
//! `GET /api/v1/t/{tenant}/types/{name}` → one of them (404 if unknown).

use axum::extract::{Path, State};
use axum::Json;
use engine::compiled::CompiledTenant;
use engine::permissions::Action;
use engine::store::StoreError;
use ontology::CompiledType;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::path::parse_type;
use crate::extract::TenantActor;
use crate::openapi::{link, linked, ok, responses, schema_ref};
use crate::routes::{op, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .get(
            "/api/v1/t/{tenant}/types",
            list,
            op(|_| {
                json!({ "tags": ["types"], "operationId": "types",
                "summary": "The entity types of the live version this user may view: their JSON Schema and workflow",
                "responses": responses(linked(ok(json!({ "type": "object", "required": ["version", "data"], "properties": {
                    "version": { "type": "integer" }, "data": { "type": "array", "items": schema_ref("TypeInfo") } } })),
                    json!({ "type": link("type", "The first type", json!({ "name": "$response.body#/data/0/name" })) })),
                    &[401, 403, 404]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/types/{name}",
            one,
            op(|cx| {
                json!({ "tags": ["types"], "operationId": "type",
                "parameters": [ { "name": "name", "in": "path", "required": true, "schema": { "type": "string", "enum": cx.type_names } } ],
                "responses": responses(ok(schema_ref("TypeInfo")), &[401, 403, 404]) })
            }),
        )
}

/// Whether `who` may view entities of `type_name`: a type the user may not view does not exist
/// for them, here as on every entity route (404, no existence leak).
fn viewable(defs: &CompiledTenant, who: &TenantActor, type_name: &str) -> bool {
    defs.permissions().allows(&who.actor.roles, who.actor.system, type_name, Action::View)
}

async fn list(State(state): State<AppState>, who: TenantActor) -> Result<Json<Value>, ApiError> {
    let (version, defs) = state.store.live_definitions(who.tenant).await?;
    let data: Vec<Value> = defs
        .ontology()
        .iter()
        .filter(|(name, _)| viewable(&defs, &who, name))
        .map(|(name, ty)| with_actions(type_json(&defs, ty), &defs, &who, name))
        .collect();
    Ok(Json(json!({ "version": version, "data": data })))
}

#[derive(Deserialize)]
struct NamePath {
    name: String,
}

async fn one(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<NamePath>,
) -> Result<Json<Value>, ApiError> {
    let (_, defs) = state.store.live_definitions(who.tenant).await?;
    let name = parse_type(&path.name)?;
    let ty = defs.type_(&name).filter(|_| viewable(&defs, &who, &name));
    let ty = ty.ok_or_else(|| StoreError::TypeNotFound(name.to_string()))?;
    Ok(Json(with_actions(type_json(&defs, ty), &defs, &who, &name)))
}

/// `type_json` with `actions`: what the caller's roles may do with entities of the type
/// (`view`, `create`, `edit`, `delete`, `export`), so a client offers only what is allowed.
fn with_actions(mut v: Value, defs: &CompiledTenant, who: &TenantActor, type_name: &str) -> Value {
    let actions: Vec<&str> = [Action::View, Action::Create, Action::Edit, Action::Delete, Action::Export]
        .into_iter()
        .filter(|a| defs.permissions().allows(&who.actor.roles, who.actor.system, type_name, *a))
        .map(Action::as_str)
        .collect();
    v["actions"] = json!(actions);
    v
}

/// One type: its definition's labels, its data's JSON Schema, and its workflow.
pub fn type_json(defs: &CompiledTenant, ty: &CompiledType) -> Value {
    let def = ty.def();
    let name = def.name.as_str();
    let workflow = defs.workflow(name).map(|wf| {
        let states: Vec<Value> = wf
            .states()
            .iter()
            .map(|(state, s)| {
                // What the state lets which roles edit (the studio's edit form offers only those).
                let editable = wf.editable(state).map(|e| json!({ "fields": e.fields, "roles": e.roles }));
                json!({ "name": state, "kind": s.kind, "label": s.label, "editable": editable })
            })
            .collect();
        let transitions: Vec<Value> = wf
            .transitions()
            .map(|t| {
                json!({
                    "name": t.name(),
                    "label": t.label(),
                    "from": t.from(),
                    "to": t.to(),
                    "create": t.def().create,
                    "roles": t.roles(),
                    "four_eyes": t.four_eyes(),
                    "guards": t.def().guards,
                    "input_schema": t.input_schema(),
                    "events": t.events(),
                })
            })
            .collect();
        json!({ "initial": wf.initial_state(), "states": states, "transitions": transitions })
    });
    json!({
        "name": name,
        "label": def.label,
        "description": def.description,
        "schema": ty.json_schema(),
        "workflow": workflow,
    })
}
