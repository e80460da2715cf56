//! The OpenAPI 3.1 document of the whole API (served at `GET /api/v1/t/{tenant}/openapi.json`
//! by `crate::routes::openapi`) of the whole API, generated
//! from the tenant's live version. Every entity type gets concrete paths (`/entities/order`, …)
//! whose request and response schemas are the type's JSON Schema, whose list and export take the
//! type's own filters and sort keys, and every transition two operations (on one entity, and in
//! bulk) with its input schema ([`entity_paths`], which writes the same paths for any type,
//! `{type}`, in the generic document of `crate::cli::openapi`); the other endpoints (auth, users, API keys, webhooks, events,
//! config, types, rules, health, metrics) follow: their operations are written where their
//! routes are declared (`crate::routes`, each `.get(path, handler, op(…))`) and passed in as
//! data ([`StaticOperation`]), built with the blocks of this module ([`responses`], [`ok`],
//! [`body`], …), so this module names no route module.
//!
//! The ontology already *is* JSON Schema, which OpenAPI 3.1 embeds verbatim, so the document is
//! assembled as JSON rather than through a derive-based generator (those describe Rust types
//! known at compile time; these types are data).
//!
//! The answers that name a resource carry OpenAPI links (`links`, [`link`]) to the operations on
//! it, with the runtime expression that gives its id: an entity's creation, list page, get, patch
//! and transitions lead to its get, history, transitions, patch (delete from its creation only),
//! and to the transitions that may be fired from the state it is in (after a creation, its first
//! state; after a transition, the state it led to); users, webhooks and their deliveries, API
//! keys, configuration versions and types likewise. Clients may follow them; a stateful fuzzer
//! (`scripts/schemathesis.sh`) chains real ids through them. [`link_problems`] checks them.
//!
//! Each operation lists the error statuses it answers with the error envelope (`Error`); the
//! `default` response is the envelope too (408, 413, 500, …). The document is checked against the
//! running server by `scripts/schemathesis.sh`.

use engine::compiled::{CompiledTenant, CompiledWorkflow};
use ontology::def::FieldKind;
use ontology::CompiledType;
use serde_json::{json, Map, Value};

use crate::limits::{
    DEFAULT_LIMIT, MAX_IDEMPOTENCY_KEY, MAX_IN_VALUES, MAX_LIMIT, MAX_Q_CHARS, MAX_Q_WORDS, MAX_VALUE_CHARS,
    REQUEST_TIMEOUT, TOTAL_CAP,
};

/// The columns every type may be filtered on, besides its fields.
const COLUMN_FILTERS: [&str; 4] = ["id", "state", "created_at", "updated_at"];

/// What the documentation of a static operation may depend on besides the limits.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The names of the tenant's entity types (`types/{name}` lists them).
    pub type_names: &'a [&'a str],
}

/// An operation that does not depend on the entity types: its method, its path template
/// (`/api/v1/t/{tenant}/users/{id}`) and what builds its OpenAPI operation object. Declared with
/// its route (`crate::routes::Routes`), which passes them all here as data.
#[derive(Debug, Clone, Copy)]
pub struct StaticOperation {
    /// `get`, `post`, `put`, `patch` or `delete`.
    pub method: &'static str,
    pub path: &'static str,
    pub build: fn(&Context) -> Value,
}

/// The description of operations for the tenant's admins only.
pub const ADMIN_ONLY: &str = "For the tenant's admins (role `admin`).";

/// The whole document for a tenant's compiled definitions: each type's entity paths
/// ([`entity_paths`]), then the `operations` (every route that is not an entity route), in their order.
pub fn document(slug: &str, version: i64, defs: &CompiledTenant, operations: &[StaticOperation]) -> Value {
    document_of(slug, version, defs, operations, &|_| true)
}

/// [`document`] with only the types `visible` admits (the types a caller may view: a type it
/// may not view does not exist for it, in the document as in the API).
pub fn document_of(
    slug: &str,
    version: i64,
    defs: &CompiledTenant,
    operations: &[StaticOperation],
    visible: &dyn Fn(&str) -> bool,
) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    schemas.insert("Event".into(), event_schema());
    schemas.insert("StreamEvent".into(), stream_event_schema());
    schemas.insert("HistoryEntry".into(), history_schema());
    schemas.insert("TransitionInfo".into(), transition_info_schema());
    schemas.insert("InboxPage".into(), inbox_page_schema());
    schemas.insert("FieldError".into(), field_error_schema());
    schemas.insert("BulkReport".into(), bulk_report_schema());
    schemas.insert("ImportReport".into(), import_report_schema());
    schemas.insert("User".into(), user_schema());
    schemas.insert("UserChoice".into(), user_choice_schema());
    schemas.insert("ApiKey".into(), api_key_schema());
    schemas.insert("Webhook".into(), webhook_schema());
    schemas.insert("Delivery".into(), delivery_schema());
    schemas.insert("TokenPair".into(), token_pair_schema());
    schemas.insert("Package".into(), package_schema());
    schemas.insert("Problem".into(), problem_schema());
    schemas.insert("Plan".into(), plan_schema());
    schemas.insert("Applied".into(), applied_schema());
    schemas.insert("MigrationReport".into(), migration_report_schema());
    schemas.insert("Draft".into(), draft_schema());
    schemas.insert("DraftSaved".into(), draft_saved_schema());
    schemas.insert("DryRun".into(), dry_run_schema());
    schemas.insert("TypeInfo".into(), type_info_schema());

    for (name, ty) in defs.ontology().iter() {
        if !visible(name) {
            continue;
        }
        let Some(workflow) = defs.workflow(name) else { continue };
        let states: Vec<&str> = workflow.states().keys().map(String::as_str).collect();
        schemas.insert(component(name, "Data"), strip_meta(ty.json_schema().clone()));
        schemas.insert(component(name, "Entity"), entity_schema(name, &states));
        let refs = EntitySchemas {
            data: schema_ref(&component(name, "Data")),
            entity: schema_ref(&component(name, "Entity")),
        };
        let base = format!("/api/v1/t/{slug}/entities/{name}");
        paths.extend(entity_paths(&base, &EntityPathsOf::Type { name, ty, workflow }, &refs));
    }
    let type_names: Vec<&str> = defs.ontology().names().collect();
    let cx = Context { type_names: &type_names };
    let tenant = format!("/api/v1/t/{slug}");
    for op in operations {
        let path = match op.path.strip_prefix("/api/v1/t/{tenant}") {
            Some(rest) => format!("{tenant}{rest}"),
            None => op.path.to_string(),
        };
        let item = paths.entry(path).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(op.method.to_string(), (op.build)(&cx));
        }
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

/// The name of a type's schema in `components/schemas`: `order_line` + `Data` → `OrderLineData`.
pub fn component(type_name: &str, suffix: &str) -> String {
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

// --- Entity paths -----------------------------------------------------------------------------

/// Whose entity paths [`entity_paths`] writes.
#[derive(Clone, Copy)]
pub enum EntityPathsOf<'a> {
    /// One of the tenant's types, from its definitions: its filters and sort keys, its unique
    /// constraints, whether it is append-only, a path per transition with its input schema.
    Type { name: &'a str, ty: &'a CompiledType, workflow: &'a CompiledWorkflow },
    /// Any type (`{type}` in the path): the generic document's (`crate::cli::openapi`). Filters
    /// and sort keys are the type's (its tenant's document lists them), the transition a path
    /// parameter (`{name}`) whose input is any object.
    Any,
}

/// The schemas the entity paths name: the data a creation and an import take, the entity the
/// answers carry (references to a type's components, or the generic document's any-type ones).
#[derive(Debug, Clone)]
pub struct EntitySchemas {
    pub data: Value,
    pub entity: Value,
}

/// One transition's paths: on one entity (`{base}/{id}/transitions/{segment}`) and in bulk
/// (`{base}/transitions/{segment}`).
struct TransitionDoc {
    /// The transition's name, or `{name}` (any transition).
    segment: String,
    operation_id: String,
    bulk_operation_id: String,
    summary: String,
    description: String,
    input: Value,
    /// The states it may be fired from and the state it leads to (any transition: unknown).
    from: Vec<String>,
    to: Option<String>,
}

/// What differs between a type's entity paths and any type's, worked out once.
struct EntityPathsParts<'a> {
    /// The tag of every operation; for a type, its name (in operation ids and texts).
    tag: String,
    name: Option<&'a str>,
    filters: Vec<FilterParam>,
    sort: Value,
    /// For a type with unique constraints: what a write that would duplicate them gets.
    unique_note: String,
    /// What a change or a deletion may be refused with.
    write_note: String,
    /// `POST …/entities/{type}`: its `input` and what its description adds about it.
    create_input: Option<(Value, String)>,
    transitions: Vec<TransitionDoc>,
    /// Any type: the `{name}` of its transition paths, declared on them.
    name_param: Option<Value>,
    /// The state a new entity is in (its create transition's `to`, else the initial state); any
    /// type: unknown.
    created_state: Option<String>,
}

impl<'a> EntityPathsParts<'a> {
    fn of(of: &EntityPathsOf<'a>) -> Self {
        let EntityPathsOf::Type { name, ty, workflow } = *of else {
            let description =
                "The transition `name` of the type's workflow, from the entity's state (its input schema \
                               and roles are in the tenant's document).";
            return EntityPathsParts {
                tag: "entities".into(),
                name: None,
                filters: Vec::new(),
                sort: json!({ "name": "sort", "in": "query", "schema": { "type": "string" },
                              "description": "Sort key: `id`, `created_at`, `updated_at` or a sortable field of the type, \
                                              `-` first for descending (default `id`); entities without the field come last" }),
                unique_note: String::new(),
                write_note: write_note(None),
                create_input: Some((
                    json!({ "type": "object", "additionalProperties": true,
                            "description": "The input of the type's create transition (`create: true`), if it has one" }),
                    " When the type's workflow has a create transition (`create: true`), it runs in the same \
                     transaction (with `input`): the entity is created in the state it leads to, or, when a guard or \
                     the script refuses, not at all (409 `GUARD_FAILED`)."
                        .into(),
                )),
                transitions: vec![TransitionDoc {
                    segment: "{name}".into(),
                    operation_id: "entity_transition".into(),
                    bulk_operation_id: "bulk_transition".into(),
                    summary: "Fire a transition".into(),
                    description: description.into(),
                    input: json!({ "type": "object", "additionalProperties": true }),
                    from: Vec::new(),
                    to: None,
                }],
                name_param: Some(
                    json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" },
                                         "description": "A transition's name" }),
                ),
                created_state: None,
            };
        };
        let states: Vec<&str> = workflow.states().keys().map(String::as_str).collect();
        // Unique constraints: a write that would duplicate their values is 409 `UNIQUE_VIOLATION`.
        let constraints: Vec<String> = ty.def().unique_constraints().iter().map(|c| c.fields.join(" + ")).collect();
        let unique_note = if constraints.is_empty() {
            String::new()
        } else {
            format!(
                "Unique: {}. A write that would give two {name} entities the same values is refused with 409 \
                 `UNIQUE_VIOLATION`, `details.fields` naming the fields.",
                constraints.join("; ")
            )
        };
        let create_input = workflow.create_transition().map(|t| {
            let input = t.input_schema().cloned().map(strip_meta).unwrap_or_else(|| json!({ "type": "object" }));
            let description = format!(
                " Runs the create transition `{}` in the same transaction (with `input`): the entity is created in \
                 `{}`, or, when a guard or the script refuses, not at all (409 `GUARD_FAILED`). Roles: {}.",
                t.name(),
                t.to(),
                t.roles().join(", ")
            );
            (input, description)
        });
        // The create transition runs only inside `POST …/entities/{type}` (its input is there).
        let transitions = workflow
            .transitions()
            .filter(|t| !t.def().create)
            .map(|t| TransitionDoc {
                segment: t.name().to_string(),
                operation_id: format!("{name}_{}", t.name()),
                bulk_operation_id: format!("{name}_{}_bulk", t.name()),
                summary: t.label().unwrap_or(t.name()).to_string(),
                description: format!("From {} to {}. Roles: {}.", t.from().join(", "), t.to(), t.roles().join(", ")),
                input: t.input_schema().cloned().map(strip_meta).unwrap_or_else(|| json!({ "type": "object" })),
                from: t.from().to_vec(),
                to: Some(t.to().to_string()),
            })
            .collect();
        let created_state =
            workflow.create_transition().map_or_else(|| workflow.initial_state(), |t| t.to()).to_string();
        EntityPathsParts {
            tag: name.to_string(),
            name: Some(name),
            filters: filters(ty, &states),
            sort: sort_param(ty),
            unique_note,
            write_note: write_note(Some((name, ty.def().immutable))),
            create_input,
            transitions,
            name_param: None,
            created_state: Some(created_state),
        }
    }

    /// The operation id `{verb}_{type}` of a type's, `any` of any type's.
    fn operation_id(&self, verb: &str, any: &str) -> String {
        match self.name {
            Some(name) => format!("{verb}_{name}"),
            None => any.to_string(),
        }
    }

    /// Links from an answer naming one entity of the type (`id`, a runtime expression such as
    /// `$response.body#/id`) to the operations on it, so that a client (and a stateful fuzzer)
    /// can follow them with a real id: its get, history and transitions (what it can do now); its
    /// patch and delete when `writes` says so; and each transition on one entity that may be fired
    /// from one of `states` (`None`: from any state; any type: the transition `{name}`). Named by
    /// what they do (`get`, `history`, `transitions`, `patch`, `delete`, `fire_<transition>`).
    fn entity_links(&self, id: &str, writes: Writes, states: Option<&[&str]>) -> Map<String, Value> {
        let on = |verb: &str, any: &str, what: &str| link(&self.operation_id(verb, any), what, json!({ "id": id }));
        let mut out = Map::new();
        out.insert("get".into(), on("get", "get_entity", "The entity"));
        out.insert("history".into(), on("history", "entity_history", "The entity's history"));
        out.insert("transitions".into(), on("transitions", "entity_transitions", "What the user can do with it now"));
        if writes != Writes::None {
            out.insert("patch".into(), on("patch", "patch_entity", "Change its fields"));
        }
        if writes == Writes::PatchAndDelete {
            out.insert("delete".into(), on("delete", "delete_entity", "Delete it"));
        }
        for t in &self.transitions {
            let applies = match states {
                None => true,
                Some(states) => t.from.iter().any(|f| states.contains(&f.as_str())),
            };
            if applies {
                let key = match self.name {
                    Some(_) => format!("fire_{}", t.segment),
                    None => "fire".to_string(),
                };
                out.insert(key, link(&t.operation_id, &t.summary, json!({ "id": id })));
            }
        }
        out
    }

    /// A type's text, or any type's.
    fn text(&self, of_type: impl Fn(&str) -> String, any: &str) -> String {
        match self.name {
            Some(name) => of_type(name),
            None => any.to_string(),
        }
    }
}

/// Which writes [`EntityPathsParts::entity_links`] links to besides the reads and transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    None,
    Patch,
    PatchAndDelete,
}

/// What a change or a deletion of an entity may be refused with: of a type (its name, whether it
/// is append-only), or of any type.
fn write_note(ty: Option<(&str, bool)>) -> String {
    match ty {
        Some((name, true)) => format!(
            "`{name}` is append-only (`immutable: true` in the package): its entities are never changed or \
             deleted, and this is always refused with 409 `IMMUTABLE`."
        ),
        _ => "409 `VERSION_CONFLICT` when `If-Match` names another version. An entity of an append-only type \
              (`immutable: true`) is refused with 409 `IMMUTABLE`."
            .to_string(),
    }
}

/// The paths of the entity routes (`Doc::PerType` in `crate::routes`) under `base`
/// (`/api/v1/t/acme/entities/order`, or `/api/v1/t/{tenant}/entities/{type}` for any type), in
/// the order the document lists them: list and create, one entity, its history, its transitions,
/// the CSV export, the import, then each transition on one entity and in bulk. The one place
/// these operations are written, for a tenant's document and for the generic one.
pub fn entity_paths(base: &str, of: &EntityPathsOf, schemas: &EntitySchemas) -> Vec<(String, Value)> {
    let parts = EntityPathsParts::of(of);
    let tag = &parts.tag;
    let entity = &schemas.entity;
    let mut paths = Vec::new();

    let mut list_params: Vec<Value> = parts.filters.iter().map(FilterParam::query_param).collect();
    list_params.extend([
        q_param(),
        parts.sort.clone(),
        json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT },
                "description": format!("Page size (default {DEFAULT_LIMIT})") }),
        json!({ "name": "cursor", "in": "query", "schema": { "type": "string" },
                "description": "`next_cursor` of the previous page (valid only with the same sort)" }),
        json!({ "name": "total", "in": "query", "schema": { "type": "boolean" },
                "description": format!("Also count the matching entities, exactly up to {TOTAL_CAP}: beyond, \
                                        `total` is {TOTAL_CAP} and `total_exact` false (there are more)") }),
    ]);
    let mut create = create_operation(&parts, schemas);
    let created_state: Option<[&str; 1]> = parts.created_state.as_deref().map(|s| [s]);
    add_links(
        &mut create,
        "201",
        parts.entity_links("$response.body#/id", Writes::PatchAndDelete, created_state.as_ref().map(|s| &s[..])),
    );
    if !parts.unique_note.is_empty() {
        if let Some(post) = create.as_object_mut() {
            let before = post.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
            let text =
                if before.is_empty() { parts.unique_note.clone() } else { format!("{before} {}", parts.unique_note) };
            post.insert("description".into(), Value::String(text));
        }
    }
    let mut list = json!({
        "tags": [tag], "operationId": parts.operation_id("list", "list_entities"),
        "summary": parts.text(|name| format!("List {name} entities"),
                              "List entities of a type (the type's filters: see the tenant's document)"),
        "description": "Filters: `field=v` (equal), `field[gt|gte|lt|lte]=v` (ordered kinds), `field[in]=a,b` \
                        and `field[null]=true|false`, on the type's filterable fields and on `id`, `state`, \
                        `created_at`, `updated_at`; several filters all apply. Unknown parameters, fields \
                        that are not filterable and values of the wrong kind are refused with 422 naming \
                        the parameter.",
        "parameters": list_params,
        "responses": responses(ok(json!({
            "type": "object", "required": ["data", "next_cursor"],
            "properties": {
                "data": { "type": "array", "items": entity },
                "next_cursor": { "type": ["string", "null"] },
                "total": { "type": "integer", "maximum": TOTAL_CAP,
                           "description": "With `total=true`: how many entities match, at most the cap" },
                "total_exact": { "type": "boolean",
                                 "description": "With `total=true`: false when more entities match than `total` (the cap)" },
            },
        })), &[400, 401, 403, 404, 422]),
    });
    // The first entity of the page, when there is one (a page of none resolves to nothing).
    add_links(&mut list, "200", parts.entity_links("$response.body#/data/0/id", Writes::Patch, None));
    paths.push((base.to_string(), json!({ "get": list, "post": create })));
    let patch_note = if parts.unique_note.is_empty() {
        parts.write_note.clone()
    } else {
        format!("{} {}", parts.write_note, parts.unique_note)
    };
    let mut one = json!({
        "parameters": [id_param("id")],
        "get": {
            "tags": [tag], "operationId": parts.operation_id("get", "get_entity"),
            "responses": responses(ok(entity.clone()), &[401, 403, 404]),
        },
        "patch": {
            "tags": [tag], "operationId": parts.operation_id("patch", "patch_entity"),
            "summary": "Change fields editable in the current state (JSON merge patch of data)",
            "description": patch_note,
            "parameters": [if_match()],
            "requestBody": body(json!({
                "type": "object", "required": ["data"], "additionalProperties": false,
                "properties": { "data": { "type": "object" } },
            })),
            "responses": responses(ok(entity.clone()), &[400, 401, 403, 404, 409, 422]),
        },
        "delete": {
            "tags": [tag], "operationId": parts.operation_id("delete", "delete_entity"), "parameters": [if_match()],
            "description": parts.write_note,
            "responses": responses(no_content("Deleted"), &[400, 401, 403, 404, 409]),
        },
    });
    let mut from_get = parts.entity_links("$response.body#/id", Writes::Patch, None);
    from_get.remove("get");
    add_links(&mut one["get"], "200", from_get);
    let after_patch = parts.entity_links("$response.body#/id", Writes::None, Some(&[]));
    add_links(&mut one["patch"], "200", after_patch);
    paths.push((format!("{base}/{{id}}"), one));
    paths.push((
        format!("{base}/{{id}}/history"),
        json!({
            "parameters": [id_param("id")],
            "get": {
                "tags": [tag], "operationId": parts.operation_id("history", "entity_history"),
                "responses": responses(ok(data_list(schema_ref("HistoryEntry"))), &[401, 403, 404]),
            },
        }),
    ));
    paths.push((
        format!("{base}/{{id}}/transitions"),
        json!({
            "parameters": [id_param("id")],
            "get": {
                "tags": [tag], "operationId": parts.operation_id("transitions", "entity_transitions"),
                "summary": "What this user can do now, and why not",
                "responses": responses(ok(data_list(schema_ref("TransitionInfo"))), &[401, 403, 404]),
            },
        }),
    ));
    let mut export_params: Vec<Value> = parts.filters.iter().map(FilterParam::query_param).collect();
    export_params.extend([q_param(), parts.sort.clone()]);
    paths.push((
        format!("{base}/export.csv"),
        json!({
            "get": {
                "tags": [tag], "operationId": parts.operation_id("export", "export_entities"),
                "summary": parts.text(|name| format!("Every {name} matching the filters, as CSV"),
                                      "Every entity of the type matching the filters, as CSV"),
                "description": "Needs the `export` permission on the type (`view` alone is 403). A header row \
                                `id, state, version, created_at` then the type's fields; string cells \
                                a spreadsheet would run as a formula get a leading `'`. Streamed page by page.",
                "parameters": export_params,
                "responses": responses(json!({ "200": { "description": "The CSV file",
                    "content": { "text/csv": { "schema": { "type": "string" } } } } }), &[400, 401, 403, 404, 422]),
            },
        }),
    ));
    paths.push((
        format!("{base}/import"),
        json!({
            "post": {
                "tags": [tag], "operationId": parts.operation_id("import", "import_entities"),
                "summary": parts.text(|name| format!("Create {name} entities from CSV or JSON"),
                                      "Create entities of the type from CSV or JSON"),
                "description": "`text/csv` with a header row of field names (an export's own columns are \
                                ignored), or `application/json`, an array of data objects. Each valid row is \
                                created in its own transaction; the others are reported by row number.",
                "parameters": [ { "name": "dry_run", "in": "query", "schema": { "type": "boolean" },
                                  "description": "Validate only" } ],
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": { "type": "array", "items": schemas.data } },
                    "text/csv": { "schema": { "type": "string" } },
                } },
                "responses": responses(ok(schema_ref("ImportReport")), &[400, 401, 403, 404, 413, 415, 422]),
            },
        }),
    ));
    let filter_body = {
        let mut props = Map::new();
        for f in &parts.filters {
            props.insert(f.name.clone(), f.body.clone());
        }
        props.insert("q".into(), json!({ "type": "string", "maxLength": MAX_Q_CHARS }));
        // A type's filters are its own; any type's, any member (the type's filters).
        let others = parts.name.is_none();
        json!({ "type": "object", "additionalProperties": others, "properties": props,
                "description": "List filters as members (`{\"amount[gte]\": 10, \"state[in]\": [\"A\", \"B\"]}`)" })
    };
    for t in &parts.transitions {
        let mut one_params = vec![id_param("id")];
        one_params.extend(parts.name_param.clone());
        let mut fire = json!({
            "parameters": one_params,
            "post": {
                "tags": [tag],
                "operationId": t.operation_id,
                "summary": t.summary,
                "description": t.description,
                "parameters": [
                    if_match(),
                    { "name": "Idempotency-Key", "in": "header", "schema": { "type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY } },
                    { "name": "dry_run", "in": "query", "schema": { "type": "boolean" } },
                ],
                "requestBody": body(json!({
                    "type": "object", "additionalProperties": false,
                    "properties": { "input": t.input },
                })),
                "responses": responses(ok(json!({
                    "type": "object", "required": ["entity", "events"],
                    "properties": {
                        "entity": entity,
                        "events": { "type": "array", "items": schema_ref("Event") },
                        "dry_run": { "type": "boolean" },
                    },
                })), &[400, 401, 403, 404, 409, 422]),
            },
        });
        // After it: the entity, and the transitions from the state it led to.
        let to: Option<[&str; 1]> = t.to.as_deref().map(|s| [s]);
        let after = parts.entity_links("$response.body#/entity/id", Writes::Patch, to.as_ref().map(|s| &s[..]));
        add_links(&mut fire["post"], "200", after);
        paths.push((format!("{base}/{{id}}/transitions/{}", t.segment), fire));
        let mut bulk = Map::new();
        if let Some(param) = &parts.name_param {
            bulk.insert("parameters".into(), json!([param]));
        }
        bulk.insert(
            "post".into(),
            json!({
                "tags": [tag],
                "operationId": t.bulk_operation_id,
                "summary": format!("{}, on many", t.summary),
                "description": format!("{} On the entities `ids` names, or on every entity `filter` \
                                        matches; each in its own transaction. The report is streamed as they \
                                        are done; an entity that fails is reported, not fatal.", t.description),
                "parameters": [ { "name": "dry_run", "in": "query", "schema": { "type": "boolean" } } ],
                "requestBody": body(json!({
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "ids": { "type": "array", "items": { "type": "string", "format": "uuid" } },
                        "filter": filter_body,
                        "input": t.input,
                        "dry_run": { "type": "boolean" },
                    },
                    "oneOf": [ { "required": ["ids"] }, { "required": ["filter"] } ],
                })),
                "responses": responses(ok(schema_ref("BulkReport")), &[400, 401, 403, 404, 422]),
            }),
        );
        paths.push((format!("{base}/transitions/{}", t.segment), Value::Object(bulk)));
    }
    paths
}

/// `POST …/entities/{type}`: the data, and the input of the type's create transition when it has
/// one (then also its 409 and its refusals).
fn create_operation(parts: &EntityPathsParts, schemas: &EntitySchemas) -> Value {
    let mut properties = json!({ "data": schemas.data });
    let mut description = "Fields your roles may not set when creating are refused with 403 naming each \
                           (`/data/<field>`), a false create condition with 403 and its message."
        .to_string();
    // 409: a unique field's value taken, a deadlock; with a create transition, its refusal too.
    let codes = vec![400, 401, 403, 404, 409, 422];
    if let Some((input, note)) = &parts.create_input {
        properties["input"] = input.clone();
        description.push_str(note);
    }
    let mut op = json!({
        "tags": [parts.tag], "operationId": parts.operation_id("create", "create_entity"),
        "summary": parts.text(|name| format!("Create a {name}"), "Create an entity of the type"),
        "description": description,
        "parameters": [{
            "name": "Idempotency-Key", "in": "header",
            "description": "Creates once: the same request again with the key answers the entity it created (201, `Idempotent-Replayed: true`); another request with the key is refused (422 `IDEMPOTENCY_KEY_REUSED`).",
            "schema": { "type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY },
        }],
        "requestBody": body(json!({
            "type": "object", "required": ["data"], "additionalProperties": false,
            "properties": properties,
        })),
        "responses": responses(created(schemas.entity.clone()), &codes),
    });
    op["responses"]["201"]["headers"] = json!({
        "Idempotent-Replayed": {
            "description": "`true` when the answer is the one recorded for the request's `Idempotency-Key` (nothing was created)",
            "schema": { "type": "string", "enum": ["true"] },
        },
    });
    op
}

// --- Filters and sort -------------------------------------------------------------------------

/// One filter parameter of a list (`amount[gte]`): its name, its value's schema in a query
/// string and as a member of a bulk transition's `filter`.
struct FilterParam {
    name: String,
    query: Value,
    body: Value,
    description: String,
    /// `[in]`: a comma-separated list in a query string.
    list: bool,
}

impl FilterParam {
    fn query_param(&self) -> Value {
        let mut p = json!({ "name": self.name, "in": "query", "schema": self.query, "description": self.description });
        if self.list {
            p["style"] = json!("form");
            p["explode"] = json!(false);
        }
        p
    }
}

/// A value of a field of `kind` (`None`: the kind cannot be filtered on); `enum_values` for enums.
fn value_schema(kind: FieldKind, enum_values: Option<&[String]>) -> Option<Value> {
    Some(match kind {
        FieldKind::String => json!({ "type": "string", "maxLength": MAX_VALUE_CHARS }),
        FieldKind::Enum => json!({ "type": "string", "enum": enum_values.unwrap_or_default() }),
        FieldKind::Date => json!({ "type": "string", "format": "date" }),
        FieldKind::Datetime => json!({ "type": "string", "format": "date-time" }),
        FieldKind::Number => json!({ "type": "number" }),
        FieldKind::Decimal => {
            json!({ "type": "string", "pattern": "^[-+]?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$", "description": "A decimal number, e.g. 12.50" })
        }
        FieldKind::Integer => {
            json!({ "type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX })
        }
        FieldKind::Boolean => json!({ "type": "boolean" }),
        FieldKind::Reference => json!({ "type": "string", "format": "uuid" }),
        FieldKind::User => json!({
            "anyOf": [{ "type": "string", "format": "uuid" }, { "const": engine::store::query::ME }],
            "description": "A user's id, or `me`: the signed-in user",
        }),
        FieldKind::Object | FieldKind::Array => return None,
    })
}

/// Every filter a list of `ty` accepts, as `engine::store::query` parses them: the columns `id`,
/// `state`, `created_at`, `updated_at`, and each field marked `filterable` or `sortable` whose
/// kind has a value (not objects and arrays): `name` (equal), `name[gt|gte|lt|lte]` for ordered
/// kinds, `name[in]`, and `name[null]` for fields.
fn filters(ty: &CompiledType, states: &[&str]) -> Vec<FilterParam> {
    let mut out = Vec::new();
    let mut add = |name: &str, value: Value, ranges: bool, nullable: bool, what: &str| {
        out.push(FilterParam {
            name: name.to_string(),
            query: value.clone(),
            body: value.clone(),
            description: format!("{what} equals"),
            list: false,
        });
        if ranges {
            for (op, words) in [("gt", "after"), ("gte", "at or after"), ("lt", "before"), ("lte", "at or before")] {
                out.push(FilterParam {
                    name: format!("{name}[{op}]"),
                    query: value.clone(),
                    body: value.clone(),
                    description: format!("{what} is {words}"),
                    list: false,
                });
            }
        }
        let list = json!({ "type": "array", "items": value, "minItems": 1, "maxItems": MAX_IN_VALUES });
        out.push(FilterParam {
            name: format!("{name}[in]"),
            query: list.clone(),
            body: list,
            description: format!("{what} is one of (comma-separated)"),
            list: true,
        });
        if nullable {
            out.push(FilterParam {
                name: format!("{name}[null]"),
                query: json!({ "type": "boolean" }),
                body: json!({ "type": "boolean" }),
                description: format!("{what} is missing (true) or present (false)"),
                list: false,
            });
        }
    };
    for column in COLUMN_FILTERS {
        let (value, ranges) = match column {
            "id" => (json!({ "type": "string", "format": "uuid" }), false),
            "state" => (json!({ "type": "string", "enum": states }), false),
            _ => (json!({ "type": "string", "format": "date-time" }), true),
        };
        add(column, value, ranges, false, &format!("`{column}`"));
    }
    for (name, def) in &ty.def().fields {
        if !(def.filterable || def.sortable) {
            continue;
        }
        let Some(value) = value_schema(def.kind, def.values.as_deref()) else { continue };
        add(name.as_str(), value, def.kind.is_ordered(), true, &format!("the field `{name}`"));
    }
    out
}

fn q_param() -> Value {
    json!({ "name": "q", "in": "query", "schema": { "type": "string", "maxLength": MAX_Q_CHARS },
            "description": format!("Search: every word (at most {MAX_Q_WORDS}) must appear in one of the type's \
                                    searchable fields (422 when it has none)") })
}

/// `sort`: `id`, `created_at`, `updated_at` or a sortable field, `-` first for descending.
fn sort_param(ty: &CompiledType) -> Value {
    let mut keys: Vec<String> = vec!["id".into(), "created_at".into(), "updated_at".into()];
    for (name, def) in &ty.def().fields {
        if def.sortable && value_schema(def.kind, None).is_some() {
            keys.push(name.to_string());
        }
    }
    let values: Vec<String> = keys.iter().flat_map(|k| [k.clone(), format!("-{k}")]).collect();
    json!({ "name": "sort", "in": "query", "schema": { "type": "string", "enum": values },
            "description": "Sort key, `-` first for descending (default `id`); entities without the field come last" })
}

// --- Building blocks --------------------------------------------------------------------------

/// An OpenAPI link (a Link Object) to the operation `operation_id`, its `parameters` runtime
/// expressions by parameter name (`{ "id": "$response.body#/id" }`). The generic document
/// (`crate::cli::openapi`) adds the `{tenant}` (and `{type}`) the source and target share.
pub fn link(operation_id: &str, description: &str, parameters: Value) -> Value {
    json!({ "operationId": operation_id, "description": description, "parameters": parameters })
}

/// `responses` (`{ "201": { … } }`, as [`created`] or [`ok`] make them) with `links` on each.
pub fn linked(mut responses: Value, links: Value) -> Value {
    if let Some(map) = responses.as_object_mut() {
        for response in map.values_mut() {
            if let Some(response) = response.as_object_mut() {
                response.insert("links".into(), links.clone());
            }
        }
    }
    responses
}

/// Adds `links` to the response `status` of an operation object.
fn add_links(operation: &mut Value, status: &str, links: Map<String, Value>) {
    if let Some(response) = operation.pointer_mut(&format!("/responses/{status}")).and_then(Value::as_object_mut) {
        response.insert("links".into(), Value::Object(links));
    }
}

pub fn id_param(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } })
}

fn if_match() -> Value {
    json!({ "name": "If-Match", "in": "header", "schema": { "type": "string", "pattern": "^\"?[0-9]{1,18}\"?$" },
            "description": "The entity's version; refused with 409 VERSION_CONFLICT if it moved on" })
}

pub fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The success responses, then an error envelope for each status of `errors` and for `default`.
pub fn responses(success: Value, errors: &[u16]) -> Value {
    let mut out = match success {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for status in errors {
        let description = match status {
            400 => "Malformed request: an unknown query parameter, a bad header, or a body that is not JSON",
            401 => "No valid credential: a missing, expired or revoked token, a deactivated user or an ended session",
            403 => "Not allowed: a token of another tenant, or roles that do not permit this",
            404 => "Not found (or not visible to these roles)",
            409 => "Conflict with the current state (see the code)",
            413 => "The body is too large",
            415 => "Unsupported content type",
            422 => "The request is not valid; `details` says where",
            429 => "Too many requests; retry after `Retry-After` seconds",
            503 => "Not ready",
            _ => "An error",
        };
        out.insert(status.to_string(), error_response(description));
    }
    out.extend(transport_responses());
    out.insert("default".into(), error_response("An error (see the code)"));
    Value::Object(out)
}

/// What the HTTP layer answers before any handler runs, without a body: a request that took too
/// long, a URI or header section too large to read (a long `[in]` list can make one).
fn transport_responses() -> Map<String, Value> {
    let mut out = Map::new();
    let timeout = format!("The request took longer than {} s (no body)", REQUEST_TIMEOUT.as_secs());
    for (status, description) in [
        ("408", timeout.as_str()),
        ("414", "The URI is too long (no body)"),
        ("431", "The request's header section is too large (no body)"),
    ] {
        out.insert(status.into(), json!({ "description": description }));
    }
    out
}

pub fn readyz_responses() -> Value {
    let status = json!({ "type": "object", "required": ["status"], "properties": { "status": { "type": "string" } } });
    let mut out = transport_responses();
    out.insert(
        "200".into(),
        json!({ "description": "Ready", "content": { "application/json": { "schema": status } } }),
    );
    out.insert(
        "503".into(),
        json!({ "description": "Not ready (database unavailable or migrations pending)",
                                     "content": { "application/json": { "schema": status } } }),
    );
    Value::Object(out)
}

pub fn ok(schema: Value) -> Value {
    json!({ "200": { "description": "OK", "content": { "application/json": { "schema": schema } } } })
}

pub fn created(schema: Value) -> Value {
    json!({ "201": { "description": "Created", "content": { "application/json": { "schema": schema } } } })
}

pub fn no_content(description: &str) -> Value {
    json!({ "204": { "description": description } })
}

pub fn data_list(items: Value) -> Value {
    json!({ "type": "object", "required": ["data"], "properties": { "data": { "type": "array", "items": items } } })
}

pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub fn any_object() -> Value {
    json!({ "type": "object" })
}

pub fn date_time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn nullable_date_time() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time" })
}

// --- Links, checked ------------------------------------------------------------------------------

/// What is wrong with the links of a document (none: an empty list). Each link must be a Link
/// Object of OpenAPI 3.1 (`operationId` or `operationRef`, `parameters`, `requestBody`,
/// `description`, `server`) on a Response Object (`description`, `headers`, `content`, `links`)
/// whose `operationId` is an operation of the document; each of its parameters must be one of
/// the target's (`id`, or located: `path.id`), and its value a runtime expression that can be
/// evaluated: `$request.path.X` naming a path parameter of the source, `$response.body#/…` a
/// pointer that the source response's schema has (through `$ref`s, `properties` and array
/// `items`). The tests run it on the generic and the tenant's documents, so a link cannot name
/// an operation or a field that was renamed.
pub fn link_problems(doc: &Value) -> Vec<String> {
    const LINK_KEYS: [&str; 6] = ["operationId", "operationRef", "parameters", "requestBody", "description", "server"];
    const RESPONSE_KEYS: [&str; 4] = ["description", "headers", "content", "links"];
    let mut problems = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return vec!["no paths".into()];
    };
    // Every operation by its id: its path item and itself.
    let mut operations: std::collections::HashMap<&str, (&Value, &Value)> = std::collections::HashMap::new();
    for item in paths.values() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if method == "parameters" {
                continue;
            }
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                operations.insert(id, (item, op));
            }
        }
    }
    let params_of = |item: &Value, op: &Value| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for list in [item.get("parameters"), op.get("parameters")].into_iter().flatten() {
            for p in list.as_array().into_iter().flatten() {
                if let (Some(name), Some(loc)) = (p["name"].as_str(), p["in"].as_str()) {
                    out.push((loc.to_string(), name.to_string()));
                }
            }
        }
        out
    };
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            if method == "parameters" {
                continue;
            }
            let source_params = params_of(item, op);
            for (status, response) in op.get("responses").and_then(Value::as_object).into_iter().flatten() {
                let at = format!("{} {path} {status}", method.to_uppercase());
                let Some(response_obj) = response.as_object() else { continue };
                if response_obj.contains_key("$ref") {
                    continue;
                }
                for key in response_obj.keys() {
                    if !RESPONSE_KEYS.contains(&key.as_str()) && !key.starts_with("x-") {
                        problems.push(format!("{at}: a response has no member `{key}`"));
                    }
                }
                if !response_obj.get("description").is_some_and(Value::is_string) {
                    problems.push(format!("{at}: a response needs a description"));
                }
                let Some(links) = response_obj.get("links") else { continue };
                let Some(links) = links.as_object() else {
                    problems.push(format!("{at}: links must be an object"));
                    continue;
                };
                let body_schema = response.pointer("/content/application~1json/schema");
                for (name, link) in links {
                    let at = format!("{at} link `{name}`");
                    let Some(link) = link.as_object() else {
                        problems.push(format!("{at}: not an object"));
                        continue;
                    };
                    for key in link.keys() {
                        if !LINK_KEYS.contains(&key.as_str()) && !key.starts_with("x-") {
                            problems.push(format!("{at}: a link has no member `{key}`"));
                        }
                    }
                    if link.contains_key("operationRef") {
                        problems.push(format!("{at}: links here name their target by operationId"));
                    }
                    let Some(target_id) = link.get("operationId").and_then(Value::as_str) else {
                        problems.push(format!("{at}: no operationId"));
                        continue;
                    };
                    let Some((target_item, target_op)) = operations.get(target_id) else {
                        problems.push(format!("{at}: no operation `{target_id}`"));
                        continue;
                    };
                    let target_params = params_of(target_item, target_op);
                    let Some(parameters) = link.get("parameters").and_then(Value::as_object) else {
                        if link.contains_key("parameters") {
                            problems.push(format!("{at}: parameters must be an object"));
                        }
                        continue;
                    };
                    for (param, expression) in parameters {
                        let (loc, pname) = match param.split_once('.') {
                            Some((loc, pname)) => (Some(loc), pname),
                            None => (None, param.as_str()),
                        };
                        if !target_params.iter().any(|(l, n)| n == pname && loc.is_none_or(|loc| loc == l)) {
                            problems.push(format!("{at}: `{target_id}` has no parameter `{param}`"));
                        }
                        let Some(expression) = expression.as_str() else {
                            problems.push(format!("{at}: `{param}` is not a runtime expression"));
                            continue;
                        };
                        if let Some(problem) = expression_problem(expression, &source_params, body_schema, doc) {
                            problems.push(format!("{at}: `{param}`: {problem}"));
                        }
                    }
                    for (loc, pname) in target_params.iter().filter(|(l, _)| l == "path") {
                        let set = parameters.keys().any(|k| k == pname || *k == format!("{loc}.{pname}"));
                        // Only the generic document's transition `{name}` is left to the client.
                        if !set && pname != "name" {
                            problems.push(format!("{at}: `{target_id}`'s path parameter `{pname}` is not set"));
                        }
                    }
                }
            }
        }
    }
    problems
}

/// What is wrong with a runtime expression of a link on a response whose JSON body has
/// `body_schema`, from an operation with `source_params` (`(in, name)`), if anything.
fn expression_problem(
    expression: &str,
    source_params: &[(String, String)],
    body_schema: Option<&Value>,
    doc: &Value,
) -> Option<String> {
    if let Some(name) = expression.strip_prefix("$request.path.") {
        return (!source_params.iter().any(|(l, n)| l == "path" && n == name))
            .then(|| format!("the source has no path parameter `{name}`"));
    }
    let Some(pointer) = expression.strip_prefix("$response.body#") else {
        return Some(format!("`{expression}` is not `$request.path.…` or `$response.body#/…`"));
    };
    let Some(mut schema) = body_schema else {
        return Some("the response has no JSON body".into());
    };
    if !pointer.starts_with('/') {
        return Some(format!("`{pointer}` is not a JSON pointer"));
    }
    for token in pointer.split('/').skip(1) {
        // Through references, then into a member or an item.
        while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
                Some(target) => schema = target,
                None => return Some(format!("`{r}` does not resolve")),
            }
        }
        let token = token.replace("~1", "/").replace("~0", "~");
        let next = if token.parse::<usize>().is_ok() && schema.get("items").is_some() {
            schema.get("items")
        } else {
            schema.get("properties").and_then(|p| p.get(&token))
        };
        match next {
            Some(next) => schema = next,
            None => return Some(format!("the response's schema has no `{token}` at `{pointer}`")),
        }
    }
    None
}

// --- Schemas ----------------------------------------------------------------------------------

/// An entity's `users`: the names of the users its user fields hold.
pub(crate) fn users_schema() -> Value {
    json!({ "type": "object", "description": "For each user id the entity's user fields (`type: user`) hold, \
        that user's name and e-mail. Absent when the type has no user field or they are all empty.",
        "additionalProperties": { "type": "object", "required": ["name", "email"], "properties": {
            "name": { "type": "string" }, "email": { "type": "string" } } } })
}

/// An entity's `display`: its type's title template rendered over its data.
pub(crate) fn display_schema() -> Value {
    json!({ "type": "string", "description": "The entity's title: its type's `title` template (of the live version) \
        rendered over its data; a reference it names with `title_of` shows the referenced entity's title when the \
        caller may see that entity (its id otherwise). Absent when the type has no title template or the title \
        renders blank." })
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
            "display": display_schema(),
            "users": users_schema(),
            "created_at": date_time(),
            "updated_at": date_time(),
            "created_by": { "type": "string" },
            "updated_by": { "type": "string" },
        },
    })
}

/// An entity of any type (its data an open object): the inbox's entries, and the `Entity` of
/// the generic document (`switchyard openapi`).
pub fn any_entity_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "type", "state", "version", "data", "created_at", "updated_at", "created_by", "updated_by"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "type": { "type": "string" },
            "state": { "type": "string" },
            "version": { "type": "integer", "minimum": 1 },
            "data": { "type": "object", "additionalProperties": true },
            "display": display_schema(),
            "users": users_schema(),
            "created_at": date_time(),
            "updated_at": date_time(),
            "created_by": { "type": "string" },
            "updated_by": { "type": "string" },
        },
    })
}

/// A page of `GET …/inbox`: entities of any type (their data as the type's own schema says).
fn inbox_page_schema() -> Value {
    let count = json!({ "type": "integer", "minimum": 1 });
    json!({
        "type": "object", "required": ["data", "groups", "next_cursor"],
        "properties": {
            "data": { "type": "array", "items": {
                "type": "object", "required": ["entity", "transitions"],
                "properties": {
                    "entity": any_entity_schema(),
                    "transitions": { "type": "array", "description": "The transitions this user may fire on it now",
                        "items": { "type": "object", "required": ["name", "label", "to"], "properties": {
                            "name": { "type": "string" }, "label": { "type": ["string", "null"] }, "to": { "type": "string" } } } },
                },
            } },
            "groups": { "type": "array", "description": "The page's entities counted by type and transition, in order of first appearance",
                "items": { "type": "object", "required": ["type", "transition", "label", "count"], "properties": {
                    "type": { "type": "string" }, "transition": { "type": "string" },
                    "label": { "type": ["string", "null"] }, "count": count } } },
            "next_cursor": { "type": ["string", "null"] },
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

/// An event as a transition's answer gives it.
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

/// An event of the tenant's stream (`GET …/events`, and each `data:` of `…/events/stream`).
fn stream_event_schema() -> Value {
    json!({
        "type": "object", "required": ["id", "event_id", "name", "entity_type", "entity_id", "payload", "created_at"],
        "properties": {
            "id": { "type": "integer", "description": "The position in the tenant's stream: the cursor" },
            "event_id": { "type": "string", "format": "uuid" },
            "name": { "type": "string" },
            "entity_type": { "type": "string" },
            "entity_id": { "type": "string", "format": "uuid" },
            "payload": {},
            "created_at": date_time(),
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
            "at": date_time(),
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

fn field_error_schema() -> Value {
    json!({ "type": "object", "required": ["path", "message"],
            "properties": { "path": { "type": "string" }, "message": { "type": "string" } } })
}

fn bulk_report_schema() -> Value {
    json!({
        "type": "object", "required": ["results", "succeeded", "failed"],
        "properties": {
            "results": { "type": "array", "items": {
                "type": "object", "required": ["id", "ok"],
                "properties": {
                    "id": { "type": "string", "format": "uuid" },
                    "ok": { "type": "boolean" },
                    "error": { "type": "object", "required": ["code", "message"],
                               "properties": { "code": { "type": "string" }, "message": { "type": "string" } } },
                },
            } },
            "succeeded": { "type": "integer", "minimum": 0 },
            "failed": { "type": "integer", "minimum": 0 },
            "dry_run": { "type": "boolean" },
        },
    })
}

fn import_report_schema() -> Value {
    json!({
        "type": "object", "required": ["created", "rejected"],
        "properties": {
            "created": { "type": "integer", "minimum": 0 },
            "rejected": { "type": "array", "items": {
                "type": "object", "required": ["row", "errors"],
                "properties": {
                    "row": { "type": "integer", "minimum": 1, "description": "1-based, not counting a CSV header" },
                    "errors": { "type": "array", "items": schema_ref("FieldError") },
                },
            } },
            "dry_run": { "type": "boolean" },
        },
    })
}

pub fn roles_schema() -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": "Roles of the tenant's live configuration" })
}

fn user_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "email", "name", "roles", "active", "has_password", "created_at", "updated_at", "attributes"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "email": { "type": "string" },
            "name": { "type": "string" },
            "roles": roles_schema(),
            "active": { "type": "boolean" },
            "has_password": { "type": "boolean" },
            "created_at": date_time(),
            "updated_at": date_time(),
            "attributes": { "type": "object", "additionalProperties": true,
                "description": "The user's values of the tenant's `user_attributes` (`actor.attributes.<name>` in rules)" },
        },
    })
}

/// A user as others see it: what a user field shows (`users` of an entity) and offers
/// (`GET …/user-choices`).
fn user_choice_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "email", "name"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "email": { "type": "string" },
            "name": { "type": "string" },
        },
    })
}

fn api_key_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name", "roles", "actor_id", "created_at", "created_by", "revoked_at"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "name": { "type": "string" },
            "roles": roles_schema(),
            "actor_id": { "type": "string", "description": "`apikey:<id>`, in history and `created_by`" },
            "created_at": date_time(),
            "created_by": { "type": "string" },
            "revoked_at": nullable_date_time(),
            "key": { "type": "string", "description": "The key (`syk_…`): in the answer of its creation only" },
        },
    })
}

fn webhook_schema() -> Value {
    json!({
        "type": "object", "required": ["id", "url", "events", "created_at", "created_by"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "name": { "type": "string", "description": "Set for the package's webhooks" },
            "url": { "type": "string" },
            "events": { "type": "array", "items": { "type": "string" } },
            "created_at": date_time(),
            "created_by": { "type": "string" },
            "secret": { "type": "string", "description": "The signing secret: in the answer of its creation only" },
        },
    })
}

fn delivery_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "webhook_id", "event_id", "event_name", "status", "attempts", "next_attempt_at",
                     "last_status_code", "last_error", "created_at", "delivered_at", "history"],
        "properties": {
            "id": { "type": "string", "format": "uuid" },
            "webhook_id": { "type": "string", "format": "uuid" },
            "event_id": { "type": "string", "format": "uuid" },
            "event_name": { "type": "string" },
            "status": { "type": "string", "enum": ["pending", "delivered", "dead"] },
            "attempts": { "type": "integer", "minimum": 0 },
            "next_attempt_at": nullable_date_time(),
            "last_status_code": { "type": ["integer", "null"] },
            "last_error": { "type": ["string", "null"] },
            "created_at": date_time(),
            "delivered_at": nullable_date_time(),
            "history": { "type": "array", "items": {
                "type": "object", "required": ["attempt", "at"],
                "properties": {
                    "attempt": { "type": "integer" },
                    "at": { "type": "string" },
                    "status_code": { "type": ["integer", "null"] },
                    "error": { "type": ["string", "null"] },
                    "duration_ms": { "type": ["integer", "null"] },
                },
            } },
        },
    })
}

fn token_pair_schema() -> Value {
    json!({
        "type": "object", "required": ["access_token", "token_type", "expires_in", "refresh_expires_in"],
        "properties": {
            "access_token": { "type": "string" },
            "refresh_token": { "type": "string", "description": "Absent in cookie mode (`X-Refresh-Mode: cookie`): it is in the cookie" },
            "token_type": { "const": "Bearer" },
            "expires_in": { "type": "integer" },
            "refresh_expires_in": { "type": "integer" },
        },
    })
}

/// A package as JSON (what `config/export` returns and `validate`/`plan`/`apply` take).
fn package_schema() -> Value {
    json!({
        "type": "object", "required": ["tenant", "types"],
        "properties": { "tenant": { "type": "object" }, "types": { "type": "array", "items": { "type": "object" } } },
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object", "required": ["severity", "file", "path", "message"],
        "description": "A problem of a package, located: the file and a JSON pointer into it, and for a problem \
            inside a script or template its line and column there.",
        "properties": {
            "severity": { "type": "string", "enum": ["error", "warning"] },
            "file": { "type": "string", "description": "The file of the package as a folder, e.g. `tenant.yaml`, \
                `types/order.yaml`; empty when the problem is not in one file (then `path` points into the posted \
                body)." },
            "path": { "type": "string", "description": "A JSON pointer (RFC 6901) into the file, e.g. \
                `/workflow/transitions/submitOrder/guards/0/rule`; empty for the whole file. For an unknown key, \
                it names that key." },
            "message": { "type": "string" },
            "line": { "type": "integer", "minimum": 1, "description": "For a problem inside a script or template: \
                the line (1-based) within the string `path` points to (the script's first line is 1)." },
            "column": { "type": "integer", "minimum": 1, "description": "The column (1-based, in characters) \
                within that line, when known." },
        },
    })
}

fn plan_schema() -> Value {
    json!({
        "type": "object", "required": ["tenant", "live", "hash", "changed", "changes", "impact", "summary", "text"],
        "properties": {
            "tenant": { "type": "string" },
            "live": { "type": ["object", "null"], "properties": { "version": { "type": "integer" }, "hash": { "type": "string" } } },
            "hash": { "type": "string" },
            "changed": { "type": "boolean" },
            "existing_version": { "type": "integer" },
            "changes": { "type": "array" },
            "impact": { "type": "array" },
            "refused": { "type": "array", "items": { "type": "object" },
                "description": "Why applying would be refused though the package validates (file, path, message)." },
            "unique": { "type": "array", "description": "The unique indexes apply builds or drops.", "items": {
                "type": "object", "required": ["action", "type", "fields", "index"],
                "properties": {
                    "action": { "type": "string", "enum": ["create", "drop"] },
                    "type": { "type": "string" },
                    "fields": { "type": "array", "items": { "type": "string" } },
                    "case_insensitive": { "type": "boolean" },
                    "index": { "type": "string" },
                    "duplicates": { "type": "array", "description": "Values more than one entity holds (most \
                        frequent first, at most 10): apply is refused while there are any.", "items": {
                        "type": "object", "required": ["values", "count"],
                        "properties": { "values": { "type": "array" }, "count": { "type": "integer" } } } },
                    "duplicated_values": { "type": "integer", "description": "How many distinct values are duplicated." },
                } } },
            "pinned": { "type": "array", "description": "Per type whose definition changes: the entities that stay \
                pinned to an earlier version (they keep running its definition until migrated).", "items": {
                "type": "object", "required": ["type", "total", "non_terminal", "versions"],
                "properties": {
                    "type": { "type": "string" },
                    "total": { "type": "integer" },
                    "non_terminal": { "type": "integer", "description": "Those not in a terminal state (what a migration moves)." },
                    "versions": { "type": "array", "items": { "type": "integer" } },
                    "type_removed": { "type": "boolean" },
                } } },
            "migration": { "type": "object", "required": ["to", "command"],
                "description": "How to move the pinned entities in non-terminal states onto the version apply publishes \
                    (`POST …/config/migrate` with `to` and a `state_map` for `unmapped`).",
                "properties": {
                    "to": { "type": "integer" },
                    "command": { "type": "string" },
                    "unmapped": { "type": "array", "description": "States of in-flight entities the version does not \
                        have: each needs a state map entry, else those entities cannot move.", "items": {
                        "type": "object", "required": ["type", "state", "count"],
                        "properties": { "type": { "type": "string" }, "state": { "type": "string" }, "count": { "type": "integer" } } } },
                } },
            "summary": { "type": "object", "required": ["add", "change", "remove"], "properties": {
                "add": { "type": "integer" }, "change": { "type": "integer" }, "remove": { "type": "integer" } } },
            "text": { "type": "string" },
        },
    })
}

fn applied_schema() -> Value {
    json!({
        "type": "object", "required": ["version", "hash", "new_version", "plan"],
        "properties": {
            "version": { "type": "integer" },
            "hash": { "type": "string" },
            "new_version": { "type": "boolean" },
            "plan": schema_ref("Plan"),
        },
    })
}

/// `POST …/config/migrate`: `tenants::migrate::Report` and its text.
fn migration_report_schema() -> Value {
    let count = json!({ "type": "integer", "minimum": 0 });
    json!({
        "type": "object",
        "required": ["tenant", "to_version", "live_version", "dry_run", "moved", "cannot_move", "pinned", "entities", "text"],
        "properties": {
            "tenant": { "type": "string" },
            "to_version": { "type": "integer" },
            "live_version": { "type": ["integer", "null"] },
            "dry_run": { "type": "boolean" },
            "moved": count, "cannot_move": count, "pinned": count,
            "entities": { "type": "array", "description": "Every entity pinned to an earlier version, in id order",
                "items": { "type": "object", "required": ["id", "type", "outcome", "from_version", "from_state"],
                    "properties": {
                        "id": { "type": "string", "format": "uuid" },
                        "type": { "type": "string" },
                        "title": { "type": "string" },
                        "outcome": { "type": "string", "enum": ["moved", "cannot_move", "pinned"],
                            "description": "moved (or, dry, would move); cannot_move: left untouched (see `reasons`); pinned: in a terminal state, stays on its version" },
                        "from_version": { "type": "integer" },
                        "from_state": { "type": "string" },
                        "to_state": { "type": "string", "description": "The state in the target version (moved only)" },
                        "filled": { "type": "array", "items": { "type": "string" }, "description": "Fields the target version's defaults fill in" },
                        "reasons": { "type": "array", "items": { "type": "string" }, "description": "Why it cannot move (or, pinned, that its state is terminal)" },
                    } } },
            "text": { "type": "string", "description": "The report as `switchyard tenant migrate` prints it" },
        },
    })
}

/// `GET …/config/draft`: the stored draft, or (`stored: false`, `version: 0`) the live package.
fn draft_schema() -> Value {
    json!({
        "type": "object", "required": ["version", "stored", "base_version", "updated_at", "updated_by", "package"],
        "properties": {
            "version": { "type": "integer", "minimum": 0, "description": "The draft's version (send it back to save); 0: no draft is stored" },
            "stored": { "type": "boolean" },
            "base_version": { "type": ["integer", "null"], "description": "The live config version the draft started from (no draft: the live version)" },
            "updated_at": nullable_date_time(),
            "updated_by": { "type": ["string", "null"] },
            "package": { "type": "object", "description": "The draft's package as saved (it may not validate); no draft: the live package" },
        },
    })
}

fn draft_saved_schema() -> Value {
    json!({
        "type": "object", "required": ["version", "base_version", "updated_at", "updated_by"],
        "properties": {
            "version": { "type": "integer", "minimum": 1 },
            "base_version": { "type": ["integer", "null"] },
            "updated_at": date_time(),
            "updated_by": { "type": "string" },
        },
    })
}

fn dry_run_schema() -> Value {
    let entity_or_null = json!({ "type": ["object", "null"] });
    json!({
        "type": "object", "required": ["outcome", "rejection", "guards", "changes", "events", "follow_ups", "definitions"],
        "properties": {
            "outcome": { "type": "string", "enum": ["applied", "rejected"] },
            "rejection": {
                "type": ["object", "null"], "required": ["code", "message"],
                "description": "What the transition would be refused with: the error envelope's `error`",
                "properties": { "code": { "type": "string" }, "message": { "type": "string" }, "details": {} },
            },
            "guards": { "type": "array", "description": "Every four-eyes check and guard of the transition, as `GET …/transitions` explains them",
                "items": { "type": "object", "required": ["kind", "index", "message", "passed"], "properties": {
                    "kind": { "type": "string", "enum": ["guard", "four_eyes"] },
                    "index": { "type": "integer" },
                    "message": { "type": "string" },
                    "passed": { "type": "boolean" },
                    "error": { "type": "string" },
                    "values": { "type": "object", "description": "For a guard that fails: the values of the variables it reads" },
                } } },
            "changes": { "type": "array", "items": { "type": "object", "required": ["type", "id", "created", "before", "after"], "properties": {
                "type": { "type": "string" },
                "id": { "type": "string", "format": "uuid" },
                "created": { "type": "boolean" },
                "before": entity_or_null.clone(),
                "after": entity_or_null,
            } } },
            "events": { "type": "array", "items": schema_ref("Event") },
            "follow_ups": { "type": "array", "items": { "type": "object", "required": ["type", "id", "transition", "input", "depth"], "properties": {
                "type": { "type": "string" },
                "id": { "type": "string", "format": "uuid" },
                "transition": { "type": "string" },
                "input": {},
                "depth": { "type": "integer", "minimum": 1 },
            } } },
            "definitions": { "type": "string", "enum": ["package", "draft", "live"],
                "description": "Whose definitions were used: the body's package, the stored draft, or the live version" },
        },
    })
}

fn type_info_schema() -> Value {
    json!({
        "type": "object", "required": ["name", "schema", "workflow"],
        "properties": {
            "name": { "type": "string" },
            "label": { "type": ["string", "null"] },
            "description": { "type": ["string", "null"] },
            "schema": { "type": "object" },
            "workflow": { "type": ["object", "null"] },
            "actions": {
                "type": "array",
                "description": "What the caller's roles may do with entities of the type",
                "items": { "type": "string", "enum": ["view", "create", "edit", "delete", "export"] },
            },
        },
    })
}
