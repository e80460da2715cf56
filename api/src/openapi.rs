//! `GET /api/v1/t/{tenant}/openapi.json`: an OpenAPI 3.1 document generated from the tenant's
//! live version. Every entity type gets concrete paths (`/entities/order`, …) whose request and
//! response schemas are the type's JSON Schema, and every transition its own operation with its
//! input schema; the static endpoints (auth, users, config, events, rules, health) follow.
//!
//! The ontology already *is* JSON Schema, which OpenAPI 3.1 embeds verbatim, so the document is
//! assembled as JSON rather than through a derive-based generator (those describe Rust types
//! known at compile time; these types are data).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use engine::compiled::CompiledTenant;
use serde_json::{json, Map, Value};

use crate::auth::TenantActor;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/t/{tenant}/openapi.json", get(openapi))
}

async fn openapi(State(state): State<AppState>, who: TenantActor) -> Result<Json<Value>, ApiError> {
    let (version, defs) = state.store.live_definitions(who.tenant).await?;
    Ok(Json(document(&who.slug, version, &defs)))
}

/// The whole document for a tenant's compiled definitions.
pub fn document(slug: &str, version: i64, defs: &CompiledTenant) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    schemas.insert("Event".into(), event_schema());
    schemas.insert("HistoryEntry".into(), history_schema());
    schemas.insert("TransitionInfo".into(), transition_info_schema());

    for (name, ty) in defs.ontology().iter() {
        let Some(workflow) = defs.workflow(name) else { continue };
        let states: Vec<&str> = workflow.states().keys().map(String::as_str).collect();
        let data = strip_meta(ty.json_schema().clone());
        let entity_ref = format!("#/components/schemas/{}", component(name, "Entity"));
        schemas.insert(component(name, "Data"), data);
        schemas.insert(component(name, "Entity"), entity_schema(name, &states));

        let base = format!("/api/v1/t/{slug}/entities/{name}");
        let tag = name.to_string();
        paths.insert(
            base.clone(),
            json!({
                "get": {
                    "tags": [tag], "operationId": format!("list_{name}"), "summary": format!("List {name} entities"),
                    "parameters": [
                        { "name": "state", "in": "query", "schema": { "type": "string", "enum": states } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500 } },
                        { "name": "cursor", "in": "query", "schema": { "type": "string" } },
                        { "name": "q", "in": "query", "schema": { "type": "string" } },
                        { "name": "total", "in": "query", "schema": { "type": "boolean" } },
                    ],
                    "responses": ok(json!({
                        "type": "object", "required": ["data", "next_cursor"],
                        "properties": {
                            "data": { "type": "array", "items": { "$ref": entity_ref } },
                            "next_cursor": { "type": ["string", "null"] },
                            "total": { "type": "integer" },
                        },
                    })),
                },
                "post": {
                    "tags": [tag], "operationId": format!("create_{name}"), "summary": format!("Create a {name}"),
                    "requestBody": body(json!({
                        "type": "object", "required": ["data"], "additionalProperties": false,
                        "properties": { "data": { "$ref": format!("#/components/schemas/{}", component(name, "Data")) } },
                    })),
                    "responses": created(json!({ "$ref": entity_ref })),
                },
            }),
        );
        paths.insert(
            format!("{base}/{{id}}"),
            json!({
                "parameters": [id_param()],
                "get": { "tags": [tag], "operationId": format!("get_{name}"), "responses": ok(json!({ "$ref": entity_ref })) },
                "patch": {
                    "tags": [tag], "operationId": format!("patch_{name}"),
                    "summary": "Change fields editable in the current state (JSON merge patch of data)",
                    "parameters": [if_match()],
                    "requestBody": body(json!({
                        "type": "object", "required": ["data"],
                        "properties": { "data": { "type": "object" } },
                    })),
                    "responses": ok(json!({ "$ref": entity_ref })),
                },
                "delete": {
                    "tags": [tag], "operationId": format!("delete_{name}"), "parameters": [if_match()],
                    "responses": { "204": { "description": "Deleted" }, "default": error_response() },
                },
            }),
        );
        paths.insert(
            format!("{base}/{{id}}/history"),
            json!({
                "parameters": [id_param()],
                "get": {
                    "tags": [tag], "operationId": format!("history_{name}"),
                    "responses": ok(json!({ "type": "object", "required": ["data"], "properties": {
                        "data": { "type": "array", "items": { "$ref": "#/components/schemas/HistoryEntry" } } } })),
                },
            }),
        );
        paths.insert(
            format!("{base}/{{id}}/transitions"),
            json!({
                "parameters": [id_param()],
                "get": {
                    "tags": [tag], "operationId": format!("transitions_{name}"),
                    "summary": "What this user can do now, and why not",
                    "responses": ok(json!({ "type": "object", "required": ["data"], "properties": {
                        "data": { "type": "array", "items": { "$ref": "#/components/schemas/TransitionInfo" } } } })),
                },
            }),
        );
        for t in workflow.transitions() {
            let input = t.input_schema().cloned().map(strip_meta).unwrap_or_else(|| json!({ "type": "object" }));
            paths.insert(
                format!("{base}/{{id}}/transitions/{}", t.name()),
                json!({
                    "parameters": [id_param()],
                    "post": {
                        "tags": [tag],
                        "operationId": format!("{name}_{}", t.name()),
                        "summary": t.label().unwrap_or(t.name()),
                        "description": format!("From {} to {}. Roles: {}.", t.from().join(", "), t.to(), t.roles().join(", ")),
                        "parameters": [
                            if_match(),
                            { "name": "Idempotency-Key", "in": "header", "schema": { "type": "string", "minLength": 1, "maxLength": 255 } },
                            { "name": "dry_run", "in": "query", "schema": { "type": "boolean" } },
                        ],
                        "requestBody": body(json!({
                            "type": "object", "additionalProperties": false,
                            "properties": { "input": input },
                        })),
                        "responses": ok(json!({
                            "type": "object", "required": ["entity", "events"],
                            "properties": {
                                "entity": { "$ref": entity_ref },
                                "events": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } },
                                "dry_run": { "type": "boolean" },
                            },
                        })),
                    },
                }),
            );
        }
    }
    for (path, item) in static_paths(slug) {
        paths.insert(path, item);
    }

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("Switchyard API: tenant {slug}"),
            "version": format!("config version {version}"),
            "description": "Generated from the tenant's live configuration. Errors use the envelope `Error`.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT or API key" } },
        },
    })
}

fn component(type_name: &str, suffix: &str) -> String {
    let mut out = String::new();
    for part in type_name.split('_') {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out.push_str(suffix);
    out
}

/// OpenAPI embeds JSON Schema 2020-12, but `$schema`/`$id` inside components are noise.
fn strip_meta(mut schema: Value) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("$id");
    }
    schema
}

fn id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } })
}

fn if_match() -> Value {
    json!({ "name": "If-Match", "in": "header", "schema": { "type": "string", "pattern": "^\"?[0-9]{1,18}\"?$" },
            "description": "The entity's version; refused with 409 VERSION_CONFLICT if it moved on" })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn error_response() -> Value {
    json!({ "description": "An error (see the code)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok(schema: Value) -> Value {
    json!({ "200": { "description": "OK", "content": { "application/json": { "schema": schema } } }, "default": error_response() })
}

fn created(schema: Value) -> Value {
    json!({ "201": { "description": "Created", "content": { "application/json": { "schema": schema } } }, "default": error_response() })
}

fn any_object() -> Value {
    json!({ "type": "object" })
}

fn entity_schema(type_name: &str, states: &[&str]) -> Value {
    json!({
        "type": "object",
        "required": ["id", "type", "state", "version", "data", "created_at", "updated_at", "created_by", "updated_by"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "type": { "const": type_name },
            "state": { "type": "string", "enum": states },
            "version": { "type": "integer", "minimum": 1 },
            "data": { "$ref": format!("#/components/schemas/{}", component(type_name, "Data")) },
            "created_at": { "type": "string", "format": "date-time" },
            "updated_at": { "type": "string", "format": "date-time" },
            "created_by": { "type": "string" },
            "updated_by": { "type": "string" },
        },
    })
}

fn error_schema() -> Value {
    json!({
        "type": "object", "required": ["error"],
        "properties": { "error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": { "type": "string", "examples": ["GUARD_FAILED", "VALIDATION_FAILED", "INVALID_TRANSITION"] },
                "message": { "type": "string" },
                "details": {},
            },
        } },
    })
}

fn event_schema() -> Value {
    json!({
        "type": "object", "required": ["id", "name", "entity_type", "entity_id", "payload"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "name": { "type": "string" },
            "entity_type": { "type": "string" },
            "entity_id": { "type": "string", "format": "uuid" },
            "payload": {},
        },
    })
}

fn history_schema() -> Value {
    json!({
        "type": "object", "required": ["id", "transition", "from", "to", "actor", "at", "input", "changes", "definition_version"],
        "properties": {
            "id": { "type": "integer" },
            "transition": { "type": "string" },
            "from": { "type": ["string", "null"] },
            "to": { "type": "string" },
            "actor": { "type": "object", "required": ["id", "email"], "properties": { "id": { "type": "string" }, "email": { "type": "string" } } },
            "at": { "type": "string", "format": "date-time" },
            "input": {},
            "changes": { "type": "object" },
            "definition_version": { "type": "integer" },
            "parent_id": { "type": "integer" },
        },
    })
}

fn transition_info_schema() -> Value {
    json!({
        "type": "object", "required": ["name", "to", "allowed", "role_allowed", "roles", "guards"],
        "properties": {
            "name": { "type": "string" },
            "label": { "type": ["string", "null"] },
            "to": { "type": "string" },
            "allowed": { "type": "boolean" },
            "role_allowed": { "type": "boolean" },
            "roles": { "type": "array", "items": { "type": "string" } },
            "guards": { "type": "array", "items": { "type": "object" } },
            "input_schema": {},
            "reason": { "type": "string" },
        },
    })
}

/// The endpoints that do not depend on the ontology.
fn static_paths(slug: &str) -> Vec<(String, Value)> {
    let t = format!("/api/v1/t/{slug}");
    let list = json!({ "type": "object", "required": ["data"], "properties": { "data": { "type": "array" } } });
    vec![
        (
            "/healthz".into(),
            json!({ "get": { "tags": ["operations"], "operationId": "healthz", "security": [], "responses": ok(any_object()) } }),
        ),
        (
            "/readyz".into(),
            json!({ "get": { "tags": ["operations"], "operationId": "readyz", "security": [],
            "responses": { "200": { "description": "Ready", "content": { "application/json": { "schema": any_object() } } },
                           "503": { "description": "Not ready", "content": { "application/json": { "schema": any_object() } } } } } }),
        ),
        (
            "/api/v1/auth/login".into(),
            json!({ "post": { "tags": ["auth"], "operationId": "login", "security": [],
            "requestBody": body(json!({ "type": "object", "required": ["tenant", "email", "password"],
                "properties": { "tenant": { "type": "string" }, "email": { "type": "string" }, "password": { "type": "string" } } })),
            "responses": ok(json!({ "type": "object", "required": ["access_token", "refresh_token"],
                "properties": { "access_token": { "type": "string" }, "refresh_token": { "type": "string" },
                                "token_type": { "type": "string" }, "expires_in": { "type": "integer" } } })) } }),
        ),
        (
            "/api/v1/auth/refresh".into(),
            json!({ "post": { "tags": ["auth"], "operationId": "refresh", "security": [],
            "requestBody": body(json!({ "type": "object", "required": ["refresh_token"], "properties": { "refresh_token": { "type": "string" } } })),
            "responses": ok(any_object()) } }),
        ),
        (
            "/api/v1/auth/me".into(),
            json!({ "get": { "tags": ["auth"], "operationId": "me", "responses": ok(any_object()) } }),
        ),
        (
            format!("{t}/types"),
            json!({ "get": { "tags": ["config"], "operationId": "types", "responses": ok(list.clone()) } }),
        ),
        (
            format!("{t}/config/versions"),
            json!({ "get": { "tags": ["config"], "operationId": "config_versions", "responses": ok(list.clone()) } }),
        ),
        (
            format!("{t}/events"),
            json!({ "get": { "tags": ["events"], "operationId": "events",
            "parameters": [ { "name": "after", "in": "query", "schema": { "type": "string" } },
                            { "name": "type", "in": "query", "schema": { "type": "string" } },
                            { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500 } } ],
            "responses": ok(any_object()) } }),
        ),
        (
            format!("{t}/users"),
            json!({ "get": { "tags": ["users"], "operationId": "users", "responses": ok(list.clone()) } }),
        ),
        (
            format!("{t}/rules/evaluate"),
            json!({ "post": { "tags": ["rules"], "operationId": "rules_evaluate",
            "requestBody": body(json!({ "type": "object", "required": ["logic"], "additionalProperties": false,
                "properties": { "logic": {}, "data": {} } })),
            "responses": ok(json!({ "type": "object", "required": ["result"], "properties": { "result": {} } })) } }),
        ),
    ]
}
