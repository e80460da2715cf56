//! The studio's draft of a tenant's package, kept on the server so an admin's unpublished work
//! is never lost, and the dry run of a transition with it on live data ("try before publishing",
//! issue 10). For admins, like the rest of the configuration (`super::config`).
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /api/v1/t/{tenant}/config/draft` | `{version, stored, base_version, updated_at, updated_by, package}`; without a stored draft the live package, `version: 0`, `stored: false` |
//! | `PUT /api/v1/t/{tenant}/config/draft` `{version, package}` | `{version, base_version, updated_at, updated_by}`; 409 `VERSION_CONFLICT` when the draft is not at `version` |
//! | `DELETE /api/v1/t/{tenant}/config/draft[?version=N]` | 204 (also when there is none); 409 when it is not at `N` |
//! | `POST /api/v1/t/{tenant}/config/draft/dry-run` | `{outcome, rejection, guards, changes, events, follow_ups, definitions}` |
//! | `POST /api/v1/t/{tenant}/config/draft/preview-template` `{template, kind?, data?, seq?}` | `{rendered, variables}`; 422 `INVALID_TEMPLATE` with `details: {path, line, column}` |
//!
//! A draft is saved as it is (any JSON object up to [`MAX_DRAFT_BYTES`]): work in progress need
//! not validate. Saving names the draft version the client read (0: none) and is one conditional
//! statement (`tenants::draft::save`): of concurrent saves from one version exactly one wins,
//! the others get 409 with `details: {current_version, updated_by, updated_at}`. Publishing stays
//! `POST …/config/apply` (the studio applies the draft's package, then deletes the draft).
//!
//! A dry run evaluates a transition on a live entity with the definitions of the body's
//! `package`, else of the stored draft, else of the live version, validated and compiled here
//! (422 `INVALID_PACKAGE` with `details.problems`, as `config/plan`), through the engine's
//! executor in a transaction that is rolled back (`engine::store::Store::dry_run`): nothing is
//! written. Both outcomes are 200: `rejection` is the error envelope's `{code, message, details}`
//! the transition would have been refused with.
//!
//! A template preview renders a title or number template being typed (not yet in any package)
//! over sample data, with the server's own bounded engine (`ontology::template`: tenant
//! templates are untrusted), so the studio shows exactly what the server would produce. A
//! number template also sees `seq` (default 1), `year`, `month` and `day` (today, UTC). A
//! title's `{{ x | title_of }}` names the entity `x` holds by its title, as every answer does.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use engine::compiled::CompiledTenant;
use engine::model::Actor;
use engine::permissions::Action;
use engine::store::{DryRun, DryRunDefinitions, StoreError, TransitionRequest};
use ontology::Template;
use serde::Deserialize;
use serde_json::{json, Value};
use tenants::draft::{Discarded, DraftInfo, Saved};
use tenants::validate::Problem;
use uuid::Uuid;

use crate::auth::sql as auth_sql;
use crate::error::ApiError;
use crate::extract::{Admin, JsonBody, QueryParams, TenantActor};
use crate::limits::MAX_DRAFT_BYTES;
use crate::openapi::{body, no_content, ok, responses, schema_ref, ADMIN_ONLY};
use crate::routes::config::{author, checked_package, invalid_package, Configuration};
use crate::routes::{op, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .get(
            "/api/v1/t/{tenant}/config/draft",
            get_draft,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_draft", "description": ADMIN_ONLY,
                    "summary": "The tenant's draft package; without one, the live package with `version: 0` and `stored: false`",
                    "responses": responses(ok(schema_ref("Draft")), &[401, 403, 404]) })
            }),
        )
        .put(
            "/api/v1/t/{tenant}/config/draft",
            save_draft,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_draft_save",
                    "summary": "Saves the draft (not validated: work in progress may be invalid)",
                    "description": format!("{ADMIN_ONLY} `version` is the draft version the client read (0: none). When the draft is at \
                        another version now (saved meanwhile, or discarded), 409 VERSION_CONFLICT with `details: {{current_version, \
                        updated_by, updated_at}}`; of concurrent saves from one version exactly one is stored. The package: any \
                        JSON object of at most {MAX_DRAFT_BYTES} bytes."),
                    "requestBody": body(json!({ "type": "object", "required": ["version", "package"], "additionalProperties": false,
                        "properties": { "version": { "type": "integer", "minimum": 0 }, "package": { "type": "object" } } })),
                    "responses": responses(ok(schema_ref("DraftSaved")), &[400, 401, 403, 409, 413, 422]) })
            }),
        )
        .delete(
            "/api/v1/t/{tenant}/config/draft",
            discard_draft,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_draft_discard", "description": ADMIN_ONLY,
                    "summary": "Discards the draft (204 also when there is none); with `version`, only if the draft is at it (else 409)",
                    "parameters": [ { "name": "version", "in": "query", "schema": { "type": "integer", "minimum": 0 } } ],
                    "responses": responses(no_content("Discarded"), &[400, 401, 403, 409]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/config/draft/dry-run",
            dry_run,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_draft_dry_run",
                "summary": "Tries a transition on a live entity with the draft's definitions; nothing is written",
                "description": format!("{ADMIN_ONLY} The definitions: the body's `package` if given, else the stored draft, else the \
                    live version; a package that does not validate is 422 INVALID_PACKAGE with `details.problems`. The transition \
                    runs through the engine's executor (loads, guards, script, follow-ups, creates, events) in a transaction that \
                    is rolled back. A refusal is 200 with `outcome: rejected` and the envelope it would have had. `act_as`: the id \
                    of an active user of the tenant whose roles are used (default: the caller)."),
                "requestBody": body(json!({ "type": "object", "required": ["type", "id", "transition"], "additionalProperties": false,
                    "properties": {
                        "type": { "type": "string" },
                        "id": { "type": "string", "format": "uuid" },
                        "transition": { "type": "string" },
                        "input": { "type": "object" },
                        "act_as": { "type": "string", "format": "uuid" },
                        "package": schema_ref("Package"),
                    } })),
                "responses": responses(ok(schema_ref("DryRun")), &[400, 401, 403, 404, 422]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/config/draft/preview-template",
            preview_template,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_preview_template",
                "summary": "Renders a title or number template over sample data, as the server would",
                "description": format!("{ADMIN_ONLY} With the server's bounded template engine (the language of `title` and \
                    `number.template`: at most {} bytes, no loops, allow-listed filters). `kind: number` also gives the template \
                    `seq` (default 1), `year`, `month` and `day` (today, UTC), which win over fields of the same name. A template \
                    that does not parse or fails to render is 422 INVALID_TEMPLATE with `details: {{path: \"/template\", line, \
                    column}}` (line and column 1-based, null when unknown).", ontology::template::MAX_TEMPLATE_SOURCE),
                "requestBody": body(json!({ "type": "object", "required": ["template"], "additionalProperties": false,
                    "properties": {
                        "template": { "type": "string" },
                        "kind": { "type": "string", "enum": ["title", "number"], "default": "title" },
                        "data": { "type": "object", "description": "The entity's fields (a live entity's data, or sample data)" },
                        "seq": { "type": "integer", "minimum": 0, "default": 1, "description": "The sequence value of a number" },
                    } })),
                "responses": responses(ok(json!({ "type": "object", "required": ["rendered", "variables"], "properties": {
                    "rendered": { "type": "string", "description": "The output (a title trimmed; blank means the entity falls back to another name)" },
                    "variables": { "type": "array", "items": { "type": "string" }, "description": "The paths the template reads" },
                } })), &[400, 401, 403, 422]) })
            }),
        )
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum TemplateKind {
    #[default]
    Title,
    Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    template: String,
    #[serde(default)]
    kind: TemplateKind,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    seq: Option<i64>,
}

/// 422 `INVALID_TEMPLATE`, with where in the template the problem is.
fn template_error(source: &str, e: &ontology::template::TemplateError) -> ApiError {
    let (line, column) = Template::error_position(source, e);
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_TEMPLATE", format!("/template: {e}"))
        .with_details(json!({ "path": "/template", "line": line, "column": column }))
}

async fn preview_template(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    JsonBody(body): JsonBody<PreviewBody>,
) -> Result<Json<Value>, ApiError> {
    let data = match body.data {
        None | Some(Value::Null) => json!({}),
        Some(data @ Value::Object(_)) => data,
        Some(_) => return Err(field_error("/data", "must be an object")),
    };
    let seq = body.seq.unwrap_or(1);
    if seq < 0 {
        return Err(field_error("/seq", "must be at least 0"));
    }
    let name = match body.kind {
        TemplateKind::Title => "title",
        TemplateKind::Number => "number.template",
    };
    // Bounded by construction (source size, no loops, fuel, output and context caps: see
    // `ontology::template`), so rendering on the reactor is as cheap as parsing the body.
    let template = Template::parse(name, &body.template).map_err(|e| template_error(&body.template, &e))?;
    // What the title names with `title_of`: the titles of those entities (of the live version,
    // as the reader may see them), as every answer renders it.
    let ids: Vec<Uuid> =
        template.titled_variables().iter().filter_map(|name| data.get(name)?.as_str()?.parse().ok()).collect();
    let titles = if body.kind == TemplateKind::Title && !ids.is_empty() {
        let defs = state.store.live_cached(who.tenant).await?;
        state.store.titles_of(who.tenant, &who.actor, &defs, &ids).await?
    } else {
        Default::default()
    };
    let rendered = match body.kind {
        TemplateKind::Title => template.render_with_titles(&data, &titles).map(|t| t.trim().to_owned()),
        TemplateKind::Number => template.render(&data, &ontology::compile::number_variables(seq, chrono::Utc::now())),
    }
    .map_err(|e| template_error(&body.template, &e))?;
    if body.kind == TemplateKind::Number && rendered.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_TEMPLATE",
            "/template: rendered an empty number",
        )
        .with_details(json!({ "path": "/template", "line": null, "column": null })));
    }
    Ok(Json(json!({ "rendered": rendered, "variables": template.variables() })))
}

async fn get_draft(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
) -> Result<Json<Value>, ApiError> {
    if let Some(draft) = tenants::draft::get(state.store.pool(), who.tenant).await? {
        let DraftInfo { version, base_version, updated_at, updated_by } = draft.info;
        return Ok(Json(json!({
            "version": version,
            "stored": true,
            "base_version": base_version,
            "updated_at": updated_at,
            "updated_by": updated_by,
            "package": draft.package,
        })));
    }
    // No draft: what one would start from, the live package.
    let live = tenants::export::version(state.store.pool(), who.tenant, None)
        .await?
        .ok_or_else(|| ApiError::not_found("the tenant has no published configuration"))?;
    Ok(Json(json!({
        "version": 0,
        "stored": false,
        "base_version": live.info.version,
        "updated_at": null,
        "updated_by": null,
        "package": live.package,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    /// The draft version the client read: 0 when there was none.
    version: i64,
    package: Value,
}

async fn save_draft(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    JsonBody(body): JsonBody<SaveBody>,
) -> Result<Json<Value>, ApiError> {
    if body.version < 0 {
        return Err(field_error("/version", "must be the draft version you read (0: there was none)"));
    }
    if !body.package.is_object() {
        return Err(field_error("/package", "must be an object (a package's JSON form)"));
    }
    if engine::eval::json_len(&body.package) > MAX_DRAFT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("a draft package may have at most {MAX_DRAFT_BYTES} bytes of JSON"),
        ));
    }
    let by = author(&who);
    match tenants::draft::save(state.store.pool(), who.tenant, body.version, &body.package, &by).await? {
        Saved::Stored(info) => {
            tracing::info!(version = info.version, "draft saved");
            Ok(Json(info_json(&info)))
        }
        Saved::Conflict(current) => Err(conflict(body.version, current.as_ref())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscardQuery {
    /// Discard only if the draft is at this version.
    #[serde(default)]
    version: Option<i64>,
}

async fn discard_draft(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    QueryParams(q): QueryParams<DiscardQuery>,
) -> Result<StatusCode, ApiError> {
    match tenants::draft::discard(state.store.pool(), who.tenant, q.version).await? {
        Discarded::Gone => Ok(StatusCode::NO_CONTENT),
        Discarded::Conflict(current) => Err(conflict(q.version.unwrap_or_default(), Some(&current))),
    }
}

fn info_json(info: &DraftInfo) -> Value {
    json!({
        "version": info.version,
        "base_version": info.base_version,
        "updated_at": info.updated_at,
        "updated_by": info.updated_by,
    })
}

/// 409 `VERSION_CONFLICT`: the draft is not at the version the client read.
fn conflict(expected: i64, current: Option<&DraftInfo>) -> ApiError {
    let current_version = current.map_or(0, |c| c.version);
    let message = match current {
        Some(c) => format!(
            "the draft is at version {current_version} (saved by {} at {}), not {expected}: read it again",
            c.updated_by,
            c.updated_at.to_rfc3339()
        ),
        None => format!("there is no draft (any more), not version {expected}: read it again"),
    };
    ApiError::new(StatusCode::CONFLICT, "VERSION_CONFLICT", message).with_details(json!({
        "current_version": current_version,
        "updated_by": current.map(|c| c.updated_by.clone()),
        "updated_at": current.map(|c| c.updated_at),
    }))
}

fn field_error(path: &str, message: &str) -> ApiError {
    ApiError::validation(json!([{ "path": path, "message": message }]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunBody {
    #[serde(rename = "type")]
    type_name: String,
    id: Uuid,
    transition: String,
    #[serde(default)]
    input: Option<Value>,
    /// A user of the tenant (id) whose roles the transition is tried with; default the caller.
    #[serde(default)]
    act_as: Option<String>,
    /// A package to use instead of the stored draft (the studio's unsaved state).
    #[serde(default)]
    package: Option<Value>,
}

async fn dry_run(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    JsonBody(body): JsonBody<DryRunBody>,
) -> Result<Json<Value>, ApiError> {
    let input = match body.input {
        None | Some(Value::Null) => json!({}),
        Some(input @ Value::Object(_)) => input,
        Some(_) => return Err(field_error("/input", "must be an object")),
    };
    let actor = match &body.act_as {
        None => who.actor.clone(),
        Some(id) => acting_user(&state, &who, id).await?,
    };
    let (defs, source) = match body.package {
        Some(package) => (compile(&state, &who, &package).await?, "package"),
        None => match tenants::draft::get(state.store.pool(), who.tenant).await? {
            Some(draft) => (compile(&state, &who, &draft.package).await?, "draft"),
            // Neither: the live version (the entity may be pinned to an older one).
            None => (state.store.live_definitions(who.tenant).await?.1, "live"),
        },
    };
    // As the real call: a type the actor's roles may not view does not exist for them (404),
    // before any transition is looked at.
    if defs.type_(&body.type_name).is_some()
        && !defs.permissions().allows(&actor.roles, actor.system, &body.type_name, Action::View)
    {
        let refusal = ApiError::from(StoreError::EntityNotFound);
        let report = DryRun {
            rejection: None,
            guards: Vec::new(),
            changes: Vec::new(),
            events: Vec::new(),
            follow_ups: Vec::new(),
        };
        return Ok(Json(report_json(report, Some(refusal), source)));
    }
    let request = TransitionRequest { type_name: &body.type_name, id: body.id, name: &body.transition, input };
    let mut report = state.store.dry_run(who.tenant, request, &actor, DryRunDefinitions::Given(defs)).await?;
    let refusal = report.rejection.take().map(ApiError::from);
    Ok(Json(report_json(report, refusal, source)))
}

/// The answer of a dry run; `refusal` (what the real call would answer) in the error envelope's
/// form (`{code, message, details}`).
fn report_json(report: DryRun, refusal: Option<ApiError>, source: &str) -> Value {
    let DryRun { rejection: _, guards, changes, events, follow_ups } = report;
    let outcome = if refusal.is_some() { "rejected" } else { "applied" };
    let rejection = refusal.map(|e| json!({ "code": e.code, "message": e.message, "details": e.details }));
    json!({
        "outcome": outcome,
        "rejection": rejection,
        "guards": guards,
        "changes": changes,
        "events": events,
        "follow_ups": follow_ups,
        "definitions": source,
    })
}

/// The actor a dry run is tried as: an active user of the tenant, with its roles now.
async fn acting_user(state: &AppState, who: &TenantActor, id: &str) -> Result<Actor, ApiError> {
    let unknown = || field_error("/act_as", "must be the id of an active user of this tenant");
    let id = Uuid::parse_str(id).map_err(|_| unknown())?;
    let mut tx = state.store.begin(who.tenant).await?;
    let row = auth_sql::user(&mut tx, who.tenant, id).await?;
    tx.commit().await?;
    let (id, email, _name, roles, active, _password, _created, _updated, attributes) = row.ok_or_else(unknown)?;
    if !active {
        return Err(unknown());
    }
    Ok(Actor { id: id.to_string(), email, roles, system: false, attributes: attributes.0 })
}

/// A package's compiled definitions, once it validates for this tenant (else 422
/// `INVALID_PACKAGE`). Compiling is slow by nature: off the reactor, within the tenant's share
/// of the evaluation slots (`engine::offload`).
async fn compile(state: &AppState, who: &TenantActor, body: &Value) -> Result<Arc<CompiledTenant>, ApiError> {
    let package = checked_package(state, who, body).await?;
    let limits = state.store.limits().clone();
    let compiled = state
        .store
        .offload()
        .spawn(who.tenant, move || tenants::compile::compile(&package, &limits))
        .await
        .map_err(|busy| ApiError::busy(&busy))?;
    compiled.map(Arc::new).map_err(|errors| {
        invalid_package(
            errors
                .into_iter()
                .map(|e| match e {
                    tenants::error::PackageError::Invalid { file, path, message } => {
                        Problem::error(file, path, message)
                    }
                    other => Problem::error("", "", other.to_string()),
                })
                .collect(),
        )
    })
}
