//! The configuration lifecycle over HTTP, for admins: validate, plan and apply a package, list
//! and read published versions, export the live one.
//!
//! A package travels as its canonical JSON, `{"tenant": {…}, "types": [{…}, …]}` — what
//! `tenants::Package::to_json` gives, what `GET …/config/export` returns, and what is stored as
//! a version — so an export can be posted back as is.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /api/v1/t/{tenant}/config/validate` | `{valid, problems: [{severity, file, path, message, line?, column?}]}` |
//! | `POST /api/v1/t/{tenant}/config/plan` | the plan (`tenants::plan::Plan`) plus `text` |
//! | `POST /api/v1/t/{tenant}/config/apply[?comment=…]` | 201 `{version, hash, new_version, plan}` (200 when that package was already published) |
//! | `GET /api/v1/t/{tenant}/config/versions` | `{data: [{version, hash, created_at, created_by, live, comment}]}`, oldest first |
//! | `GET /api/v1/t/{tenant}/config/versions/{version}` | that version's package JSON |
//! | `GET /api/v1/t/{tenant}/config/export` | the live version's package JSON |
//! | `POST /api/v1/t/{tenant}/config/migrate` `{to, state_map?, dry_run?}` | the migration report (`tenants::migrate::Report`) plus `text` |
//!
//! Drafts of a package and dry runs with them are `super::drafts`'s.
//!
//! Migrate moves the tenant's in-flight entities to published version `to`, as `switchyard
//! tenant migrate` does (`tenants::migrate`), by the admin (history rows `migrate` with the
//! admin's id and email). `dry_run` defaults to true: only an explicit `false` writes.
//! `state_map` is the JSON form of the CLI's `--state-map`: `{"OLD": "NEW"}` for every type,
//! `{"type.OLD": "NEW"}` for one (which wins over a plain key for that type). A bad entry, or one
//! whose type or new state version `to` does not have, is 422 `VALIDATION_FAILED` with
//! `details.errors[].path` `/state_map/<key>` (JSON-pointer escaped); an unknown version is the
//! same with `/to`. It runs on the request role's pool (row-level security for the path's
//! tenant; the role may update entities and append history, all a migration writes), with its
//! CPU work off the reactor.
//!
//! Plan and apply refuse a package that does not validate, or whose `tenant.slug` is not the
//! tenant of the path, with 422 `INVALID_PACKAGE` and the problems in `details.problems`.

use crate::publish::PublishError;
use crate::workers::webhooks::PackageWebhookError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use ontology::def::EntityTypeDef;
use serde::Deserialize;
use serde_json::{json, Value};
use tenants::error::PackageError;
use tenants::export::VersionError;
use tenants::migrate::{MigrateError, Options as MigrateOptions, StateMap};
use tenants::package::TenantFile;
use tenants::validate::{Problem, Severity};
use tenants::{ApplyError, Package};

use crate::error::ApiError;
use crate::extract::{Admin, AdminArea, JsonBody, QueryParams, TenantActor};
use crate::openapi::{any_object, body, data_list, date_time, link, linked, ok, responses, schema_ref, ADMIN_ONLY};
use crate::routes::{op, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .post(
            "/api/v1/t/{tenant}/config/validate",
            validate,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_validate", "description": ADMIN_ONLY,
                "summary": "Every problem of a package (its JSON form)",
                "requestBody": body(any_object()),
                "responses": responses(ok(json!({ "type": "object", "required": ["valid", "problems"], "properties": {
                    "valid": { "type": "boolean" }, "problems": { "type": "array", "items": schema_ref("Problem") } } })),
                    &[400, 401, 403, 422]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/config/plan",
            plan,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_plan", "description": ADMIN_ONLY,
                "summary": "What applying a package would change (422 INVALID_PACKAGE with `details.problems` if it does not validate)",
                "requestBody": body(schema_ref("Package")),
                "responses": responses(ok(schema_ref("Plan")), &[400, 401, 403, 422]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/config/apply",
            apply,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_apply", "description": ADMIN_ONLY,
                "summary": "Publishes a package: 201 with a new version, 200 when that package was already published",
                "parameters": [ { "name": "comment", "in": "query", "schema": { "type": "string", "maxLength": tenants::apply::MAX_COMMENT_CHARS },
                    "description": "What this version changes, shown with it in the versions list; kept on a new version only (blank: none). Longer is 422 at `/comment`." } ],
                "requestBody": body(schema_ref("Package")),
                "responses": responses(json!({
                    "200": { "description": "Already published: that version is live", "content": { "application/json": { "schema": schema_ref("Applied") } } },
                    "201": { "description": "A new version, live", "content": { "application/json": { "schema": schema_ref("Applied") } } },
                }), &[400, 401, 403, 422]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/config/migrate",
            migrate,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_migrate",
                "summary": "Moves in-flight entities to a published version (a dry run unless `dry_run: false`)",
                "description": format!("{ADMIN_ONLY} Entities pinned to an earlier version and not in a terminal state move to `to` in one \
                    transaction: their state mapped through `state_map`, the target's defaults filled in, their data re-validated; \
                    those that cannot (type or state missing in `to`, data invalid) are reported and left untouched. Each move \
                    writes a history row `migrate` by the caller. `state_map`: `{{\"OLD\": \"NEW\"}}` for every type, \
                    `{{\"type.OLD\": \"NEW\"}}` for one (it wins over a plain key); a bad entry, a type or new state `to` does \
                    not have is 422 at `/state_map/<key>`, an unknown version 422 at `/to`."),
                "requestBody": body(json!({ "type": "object", "required": ["to"], "additionalProperties": false,
                    "properties": {
                        "to": { "type": "integer", "minimum": 1, "description": "The published version to move entities to" },
                        "state_map": { "type": "object", "additionalProperties": { "type": "string" },
                            "description": "`OLD` or `type.OLD` → the new state" },
                        "dry_run": { "type": "boolean", "default": true, "description": "Report only (the default); false moves the entities" },
                    } })),
                "responses": responses(ok(schema_ref("MigrationReport")), &[400, 401, 403, 422, 503]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/config/versions",
            versions,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_versions", "description": ADMIN_ONLY,
                "summary": "The published versions, oldest first",
                "responses": responses(linked(ok(data_list(json!({
                    "type": "object", "required": ["version", "hash", "created_at", "created_by", "live", "comment"],
                    "properties": { "version": { "type": "integer" }, "hash": { "type": "string" }, "created_at": date_time(),
                                    "created_by": { "type": "string" }, "live": { "type": "boolean" },
                                    "comment": { "type": ["string", "null"], "description": "What the publisher said about the version" } } }))),
                    json!({ "version": link("config_version", "The first version's package",
                                            json!({ "version": "$response.body#/data/0/version" })) })),
                    &[401, 403]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/config/versions/{version}",
            version,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_version", "description": ADMIN_ONLY,
                "summary": "A published version's package",
                "parameters": [ { "name": "version", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } } ],
                "responses": responses(ok(schema_ref("Package")), &[401, 403, 404]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/config/export",
            export,
            op(|_| {
                json!({ "tags": ["config"], "operationId": "config_export", "description": ADMIN_ONLY,
                "summary": "The live version's package (what `validate`, `plan` and `apply` take)",
                "responses": responses(ok(schema_ref("Package")), &[401, 403, 404]) })
            }),
        )
}

/// The configuration is for the tenant's admins (drafts too: `super::drafts`).
pub(crate) struct Configuration;

impl AdminArea for Configuration {
    const REFUSAL: &'static str = "the configuration is for admins";
}

async fn validate(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let problems = match parse_package(&body) {
        Err(problems) => problems,
        Ok(package) => {
            let mut problems = validate_package(&state, &who, &package).await?;
            if package.tenant.slug != who.slug {
                problems.insert(0, wrong_tenant(&package, &who, Severity::Warning));
            }
            problems
        }
    };
    let valid = !problems.iter().any(|p| p.severity == Severity::Error);
    Ok(Json(json!({ "valid": valid, "problems": problems })))
}

async fn plan(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let package = checked_package(&state, &who, &body).await?;
    let plan = tenants::plan::plan(state.store.pool(), &who.slug, &package).await.map_err(version_error)?;
    Ok(Json(plan_json(&plan)))
}

#[derive(Deserialize)]
struct ApplyQuery {
    #[serde(default)]
    comment: Option<String>,
}

async fn apply(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    QueryParams(q): QueryParams<ApplyQuery>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let comment = q.comment.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > tenants::apply::MAX_COMMENT_CHARS) {
        let message = format!("at most {} characters", tenants::apply::MAX_COMMENT_CHARS);
        return Err(ApiError::validation(json!([{ "path": "/comment", "message": message }])));
    }
    let package = checked_package(&state, &who, &body).await?;
    let plan = tenants::plan::plan(state.store.pool(), &who.slug, &package).await.map_err(version_error)?;
    let by = author(&who);
    // The owner's connection: publishing may update the tenant row, which the request role may
    // not. `publish` still sets the tenant for row-level security.
    let applied =
        crate::publish::publish(&state.owner, &package, &by, comment, state.store.limits(), &state.ops.destinations())
            .await
            .map_err(|e| match e {
                PublishError::Webhook(e) => invalid_package(vec![webhook_problem(&package, &e)]),
                PublishError::Apply(ApplyError::Invalid(errors)) => {
                    invalid_package(errors.iter().map(package_problem).collect())
                }
                other => ApiError::internal(other),
            })?;
    // The package's users (roles) may have changed: this process's next request must see them.
    state.ops.hub.auth().invalidate();
    let status = if applied.new_version { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(json!({
            "version": applied.version,
            "hash": applied.hash,
            "new_version": applied.new_version,
            "plan": plan_json(&plan),
        })),
    ))
}

async fn versions(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
) -> Result<Json<Value>, ApiError> {
    let list = tenants::export::versions(state.store.pool(), who.tenant).await?;
    Ok(Json(json!({ "data": list })))
}

#[derive(Deserialize)]
struct VersionPath {
    version: String,
}

async fn version(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    Path(path): Path<VersionPath>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::not_found(format!("no version {}", path.version));
    let v: i64 = path.version.parse().map_err(|_| not_found())?;
    let stored = tenants::export::version(state.store.pool(), who.tenant, Some(v)).await?;
    Ok(Json(stored.ok_or_else(not_found)?.package))
}

async fn export(State(state): State<AppState>, Admin(who, ..): Admin<Configuration>) -> Result<Json<Value>, ApiError> {
    let stored = tenants::export::version(state.store.pool(), who.tenant, None).await?;
    let stored = stored.ok_or_else(|| ApiError::not_found("the tenant has no published configuration"))?;
    Ok(Json(stored.package))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MigrateBody {
    /// The published version to move entities to.
    to: i64,
    /// `{"OLD": "NEW", "type.OLD": "NEW"}` (values checked here, to name the key of a bad one).
    #[serde(default)]
    state_map: serde_json::Map<String, Value>,
    /// Report only (the default); `false` moves the entities.
    #[serde(default = "default_dry_run")]
    dry_run: bool,
}

fn default_dry_run() -> bool {
    true
}

async fn migrate(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Configuration>,
    JsonBody(body): JsonBody<MigrateBody>,
) -> Result<Json<Value>, ApiError> {
    if body.to < 1 {
        return Err(field_errors([("/to".to_string(), "must be a published version (1 or more)".to_string())]));
    }
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    for (key, to) in &body.state_map {
        match to.as_str() {
            Some(to) => entries.push((key.as_str(), to)),
            None => problems.push((state_map_path(key), "must be a string: the new state".to_string())),
        }
    }
    let state_map = match StateMap::from_entries(entries) {
        Ok(map) if problems.is_empty() => map,
        Ok(_) => return Err(field_errors(problems)),
        Err(bad) => {
            problems.extend(bad.into_iter().map(|p| (state_map_path(&p.key), p.message)));
            return Err(field_errors(problems));
        }
    };
    let opts = MigrateOptions {
        to: body.to,
        state_map,
        dry_run: body.dry_run,
        actor: who.actor.id.clone(),
        actor_email: who.actor.email.clone(),
    };
    // The request role's pool: row-level security keeps the migration to this tenant.
    let report = tenants::migrate::migrate_offloaded(
        state.store.pool(),
        &who.slug,
        &opts,
        state.store.limits(),
        state.store.offload(),
    )
    .await
    .map_err(migrate_error)?;
    let mut value = serde_json::to_value(&report).map_err(ApiError::internal)?;
    value["text"] = Value::String(report.text());
    Ok(Json(value))
}

/// The JSON pointer of a state map entry.
fn state_map_path(key: &str) -> String {
    format!("/state_map/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// 422 `VALIDATION_FAILED` with `details.errors: [{path, message}]`.
fn field_errors(errors: impl IntoIterator<Item = (String, String)>) -> ApiError {
    let errors: Vec<Value> =
        errors.into_iter().map(|(path, message)| json!({ "path": path, "message": message })).collect();
    ApiError::validation(Value::Array(errors))
}

fn migrate_error(e: MigrateError) -> ApiError {
    match e {
        MigrateError::Version(VersionError::NoSuchVersion { version, .. }) => {
            field_errors([("/to".to_string(), format!("there is no published version {version}"))])
        }
        MigrateError::UnknownStates { problems, .. } => {
            field_errors(problems.into_iter().map(|p| (state_map_path(&p.key), p.message)))
        }
        MigrateError::StateMap(message) => field_errors([("/state_map".to_string(), message)]),
        // A published version that no longer compiles (e.g. under tighter limits): not the
        // server's failure, and nothing was changed.
        MigrateError::Invalid { version, problems } => field_errors([(
            "/to".to_string(),
            format!(
                "version {version} does not compile: {}",
                problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ),
        )]),
        MigrateError::Busy(busy) => ApiError::busy(&busy),
        MigrateError::Unique { ref type_name, ref fields, .. } => {
            ApiError::new(StatusCode::CONFLICT, "UNIQUE_VIOLATION", e.to_string())
                .with_details(json!({ "type": type_name, "fields": fields }))
        }
        other => ApiError::internal(other),
    }
}

/// Who a change of the configuration is by: the admin's email, or its id when it has none (an
/// API key).
pub(crate) fn author(who: &TenantActor) -> String {
    if who.actor.email.is_empty() {
        who.actor.id.clone()
    } else {
        who.actor.email.clone()
    }
}

fn plan_json(plan: &tenants::plan::Plan) -> Value {
    let mut value = serde_json::to_value(plan).unwrap_or_else(|_| json!({}));
    value["text"] = Value::String(plan.text());
    value
}

fn version_error(e: VersionError) -> ApiError {
    ApiError::internal(e)
}

pub(crate) fn invalid_package(problems: Vec<Problem>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_PACKAGE", "the package does not validate")
        .with_details(json!({ "problems": problems }))
}

/// A webhook publishing refused, at the webhook's key: `secret_env` (its variable is not set),
/// `url` (the destination is not allowed).
fn webhook_problem(package: &Package, e: &PackageWebhookError) -> Problem {
    let (name, key) = match e {
        PackageWebhookError::Invalid { name, .. } => (Some(name), "secret_env"),
        PackageWebhookError::Destination { name, .. } => (Some(name), "url"),
        _ => (None, ""),
    };
    let index = name.and_then(|n| package.tenant.webhooks.iter().position(|w| w.name == *n));
    let path = index.map_or_else(|| "/webhooks".to_string(), |i| format!("/webhooks/{i}/{key}"));
    Problem::error("tenant.yaml", path, e.to_string())
}

/// A problem the compiler found while publishing (validation passed, so rare), where it says.
fn package_problem(e: &PackageError) -> Problem {
    match e {
        PackageError::Invalid { file, path, message } | PackageError::Parse { file, path, message } => {
            Problem::error(file.as_str(), path.as_str(), message.as_str())
        }
        other => Problem::error("", "", other.to_string()),
    }
}

fn wrong_tenant(package: &Package, who: &TenantActor, severity: Severity) -> Problem {
    let message = format!("the package is for tenant `{}`, not `{}`", package.tenant.slug, who.slug);
    Problem::new(severity, "tenant.yaml", "/slug", message)
}

/// The posted package, if it parses, validates and is for the path's tenant; else 422 with every
/// problem.
pub(crate) async fn checked_package(state: &AppState, who: &TenantActor, body: &Value) -> Result<Package, ApiError> {
    let package = parse_package(body).map_err(invalid_package)?;
    if package.tenant.slug != who.slug {
        return Err(invalid_package(vec![wrong_tenant(&package, who, Severity::Error)]));
    }
    let problems = validate_package(state, who, &package).await?;
    if problems.iter().any(|p| p.severity == Severity::Error) {
        return Err(invalid_package(problems));
    }
    Ok(package)
}

/// Every problem `switchyard tenant validate` would report for the package as a folder.
/// Compiling a package is slow by nature: off the reactor, within the tenant's share of the
/// evaluation slots ([`engine::offload`]).
async fn validate_package(state: &AppState, who: &TenantActor, package: &Package) -> Result<Vec<Problem>, ApiError> {
    let (package, limits) = (package.clone(), state.store.limits().clone());
    let tenant = who.tenant;
    let report = state
        .store
        .offload()
        .spawn(tenant, move || tenants::export::validate_package(&package, &limits))
        .await
        .map_err(|busy| ApiError::busy(&busy))?
        .map_err(ApiError::internal)?;
    Ok(report.problems)
}

/// Reads a package from its JSON form. A body that does not fit is one problem, located in the
/// file it would be in (`tenant.yaml`, `types/<name>.yaml`).
fn parse_package(body: &Value) -> Result<Package, Vec<Problem>> {
    let error = match Package::from_json(body) {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    /// The shape of a package, to find where a body goes wrong.
    #[derive(Deserialize)]
    #[expect(dead_code, reason = "only deserialized, to locate errors")]
    struct Shape {
        tenant: TenantFile,
        types: Vec<EntityTypeDef>,
    }
    let (mut pointer, message) = match serde_path_to_error::deserialize::<_, Shape>(body) {
        Err(e) => (pointer(e.path()), e.into_inner().to_string()),
        Ok(_) => (Vec::new(), error.to_string()),
    };
    // A missing key: point at it, under the object that lacks it.
    pointer.extend(tenants::validate::missing_key(&message).map(str::to_string));
    let (file, path) = match pointer.as_slice() {
        [first, rest @ ..] if first == "tenant" => ("tenant.yaml".to_string(), rest.to_vec()),
        [first, index, rest @ ..] if first == "types" => {
            let name = index
                .parse::<usize>()
                .ok()
                .and_then(|i| body["types"][i]["name"].as_str().map(str::to_string))
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            match name {
                Some(name) => (format!("types/{name}.yaml"), rest.to_vec()),
                None => (String::new(), pointer.clone()),
            }
        }
        _ => (String::new(), pointer.clone()),
    };
    let path: String = path.iter().map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect();
    Err(vec![Problem::error(file, path, message)])
}

fn pointer(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect()
}
