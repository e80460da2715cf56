//! The generic entity API: create, get, list (filters, search, sort, cursor), transitions (list,
//! execute, bulk), history, and CSV export and CSV/JSON import.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::eval::Rejection;
use engine::permissions::Action;
use engine::store::{
    entity_json, CreateOptions, HistoryEntry, ListMode, ListPage, ListRequest, ParamValue, StoreError, TransitionInfo,
    TransitionOptions, TransitionOutcome, TransitionRequest,
};
use indexmap::IndexMap;
use ontology::compile::FieldError;
use ontology::def::{FieldDef, FieldKind};
use ontology::names::FieldName;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::TenantActor;
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/t/{tenant}/entities/{type}", post(create).get(list))
        .route("/api/v1/t/{tenant}/entities/{type}/{id}", get(get_one).patch(patch_one).delete(delete_one))
        .route("/api/v1/t/{tenant}/entities/{type}/{id}/transitions", get(transitions))
        .route("/api/v1/t/{tenant}/entities/{type}/{id}/transitions/{name}", post(execute))
        .route("/api/v1/t/{tenant}/entities/{type}/{id}/history", get(history))
        .route("/api/v1/t/{tenant}/entities/{type}/transitions/{name}", post(bulk_transition))
        .route("/api/v1/t/{tenant}/entities/{type}/export.csv", get(export_csv))
        .route("/api/v1/t/{tenant}/entities/{type}/import", post(import))
}

#[derive(Deserialize)]
struct TypePath {
    #[serde(rename = "type")]
    type_name: String,
}

#[derive(Deserialize)]
struct EntityPath {
    #[serde(rename = "type")]
    type_name: String,
    id: String,
}

#[derive(Deserialize)]
struct TransitionPath {
    #[serde(rename = "type")]
    type_name: String,
    id: String,
    name: String,
}

/// The package's type-level permissions for this actor (see `engine::permissions`): without
/// `view` the type or entity is not found; with it but without `action`, 403.
async fn allow(
    state: &AppState,
    who: &TenantActor,
    type_name: &str,
    action: Action,
    on_entity: bool,
) -> Result<(), ApiError> {
    Ok(state.store.authorize(who.tenant, &who.actor, type_name, action, on_entity).await?)
}

/// The id of the entity a request names, once the actor may do `action` to its type (see
/// [`allow`]; an id that is not a uuid is 404 like an unknown one).
async fn target(
    state: &AppState,
    who: &TenantActor,
    type_name: &str,
    id: &str,
    action: Action,
) -> Result<Uuid, ApiError> {
    let id = parse_id(id)?;
    allow(state, who, type_name, action, true).await?;
    Ok(id)
}

/// An id that is not a uuid names no entity: 404, like any unknown id.
fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found("entity not found"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    data: Value,
}

async fn create(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TypePath>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    allow(&state, &who, &path.type_name, Action::Create, false).await?;
    let entity =
        state.store.create_entity(who.tenant, &path.type_name, body.data, &who.actor, CreateOptions::default()).await?;
    Ok((StatusCode::CREATED, Json(entity_json(&entity))))
}

async fn get_one(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::View).await?;
    let entity = state.store.get_entity(who.tenant, &path.type_name, id).await?;
    Ok(Json(entity_json(&entity)))
}

/// The body of a PATCH: `{"data": {field: value or null}}`; anything else at the top level
/// (`state`, `version`, `id`, …) is refused by name (no mass assignment).
async fn patch_one(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::Edit).await?;
    let Value::Object(mut top) = body else {
        return Err(ApiError::validation(json!([{ "path": "", "message": "must be an object {\"data\": {…}}" }])));
    };
    let data = top.remove("data");
    if !top.is_empty() {
        let errors: Vec<Value> = top
            .keys()
            .map(|k| json!({ "path": format!("/{k}"), "message": "cannot be set: a PATCH body is {\"data\": {…}}; state changes only by transitions" }))
            .collect();
        return Err(ApiError::validation(json!(errors)));
    }
    let Some(Value::Object(patch)) = data else {
        return Err(ApiError::validation(json!([{ "path": "/data", "message": "must be an object" }])));
    };
    let if_match = if_match(&headers)?;
    let entity = state.store.patch_entity(who.tenant, (&path.type_name, id), patch, &who.actor, if_match).await?;
    Ok(Json(entity_json(&entity)))
}

async fn delete_one(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::Delete).await?;
    state.store.delete_entity(who.tenant, &path.type_name, id, &who.actor, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `If-Match: <version>` (quotes allowed).
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        Some(v) => v
            .to_str()
            .ok()
            .map(|s| s.trim().trim_matches('"'))
            .and_then(|s| s.parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("If-Match must be the entity's version number")),
        None => Ok(None),
    }
}

/// `GET …/entities/{type}?<filters>&q=…&sort=…&limit=…&cursor=…&total=true` (`docs/api.md`,
/// "Lists"): parsed and checked against the type by `engine::store::query`.
async fn list(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TypePath>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    allow(&state, &who, &path.type_name, Action::View, false).await?;
    let page = state.store.query(who.tenant, &path.type_name, &ListRequest::from_pairs(pairs, ListMode::List)).await?;
    let mut body = json!({
        "data": page.entities.iter().map(entity_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    });
    if let Some(total) = page.total {
        body["total"] = json!(total);
    }
    Ok(Json(body))
}

async fn transitions(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::View).await?;
    let list: Vec<TransitionInfo> =
        state.store.available_transitions(who.tenant, &path.type_name, id, &who.actor).await?;
    Ok(Json(json!({ "data": list })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn execute(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TransitionPath>,
    QueryParams(q): QueryParams<ExecuteQuery>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ExecuteBody>,
) -> Result<Json<TransitionOutcome>, ApiError> {
    let idempotency_key = match headers.get("idempotency-key") {
        Some(v) => {
            let key = v.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::bad_request("Idempotency-Key must have 1 to 255 characters"));
            }
            Some(key.to_string())
        }
        None => None,
    };
    let if_match = if_match(&headers)?;
    let id = target(&state, &who, &path.type_name, &path.id, Action::View).await?;
    let input = body.input.unwrap_or_else(|| json!({}));
    let outcome = state
        .store
        .transition(
            who.tenant,
            TransitionRequest { type_name: &path.type_name, id, name: &path.name, input },
            &who.actor,
            TransitionOptions { idempotency_key, if_match, dry_run: q.dry_run },
        )
        .await?;
    Ok(Json(outcome))
}

async fn history(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<EntityPath>,
) -> Result<Json<Value>, ApiError> {
    let id = target(&state, &who, &path.type_name, &path.id, Action::View).await?;
    let rows: Vec<HistoryEntry> = state.store.history(who.tenant, &path.type_name, id).await?;
    Ok(Json(json!({ "data": rows })))
}

// --- Bulk transitions -------------------------------------------------------------------------

/// Entities read per page when a bulk transition or an export walks a filtered list.
const WALK_PAGE: i64 = 200;

#[derive(Deserialize)]
struct BulkPath {
    #[serde(rename = "type")]
    type_name: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    #[serde(default)]
    ids: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    dry_run: bool,
}

/// Where a bulk transition's entities come from.
enum BulkSource {
    Ids(Vec<Uuid>),
    /// A filtered list, walked by id, page by page; the first page is read before answering, so
    /// a bad filter is a plain 422.
    Filter {
        request: ListRequest,
        first: ListPage,
    },
}

/// A bulk filter (`{"customer_id": "…", "amount[gte]": 10, "state[in]": ["A", "B"]}`) as list
/// parameters.
fn filter_params(filter: serde_json::Map<String, Value>) -> Result<Vec<(String, ParamValue)>, ApiError> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let mut out = Vec::with_capacity(filter.len());
    for (key, value) in filter {
        let param = match &value {
            Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>().map(ParamValue::Many),
            other => scalar(other).map(ParamValue::One),
        };
        match param {
            Some(p) => out.push((key, p)),
            None => {
                return Err(ApiError::validation(json!([{
                    "path": format!("/filter/{key}"),
                    "message": "must be a string, number, boolean, or an array of them",
                }])))
            }
        }
    }
    Ok(out)
}

/// `POST …/entities/{type}/transitions/{name}` with `{"ids": […]}` or `{"filter": {…}}`: the
/// transition on each entity, each in its own transaction. The report is streamed as the
/// entities are done: `{"results": [{"id", "ok", "error"?}, …], "succeeded": n, "failed": n}`.
async fn bulk_transition(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<BulkPath>,
    QueryParams(q): QueryParams<ExecuteQuery>,
    JsonBody(body): JsonBody<BulkBody>,
) -> Result<Response, ApiError> {
    let dry_run = body.dry_run || q.dry_run;
    allow(&state, &who, &path.type_name, Action::View, false).await?;
    let (_, defs) = state.store.live_definitions(who.tenant).await?;
    let Some(workflow) = defs.type_(&path.type_name).and(defs.workflow(&path.type_name)) else {
        return Err(StoreError::TypeNotFound(path.type_name).into());
    };
    // A name the type's workflow does not have fails on every entity alike: answered once, up
    // front, before any entity is read.
    if workflow.transition(&path.name).is_none() {
        return Err(unknown_transition(&path.type_name, &path.name, workflow));
    }
    let source = match (body.ids, body.filter) {
        (Some(ids), None) => {
            let mut parsed = Vec::with_capacity(ids.len());
            for (i, id) in ids.iter().enumerate() {
                parsed.push(Uuid::parse_str(id).map_err(|_| {
                    ApiError::validation(
                        json!([{ "path": format!("/ids/{i}"), "message": "must be an entity id (uuid)" }]),
                    )
                })?);
            }
            BulkSource::Ids(parsed)
        }
        (None, Some(filter)) => {
            let request = ListRequest {
                params: filter_params(filter)?,
                mode: ListMode::Filter,
                cursor: None,
                limit: Some(WALK_PAGE),
            };
            let first = state.store.query(who.tenant, &path.type_name, &request).await.map_err(|e| {
                // Name the body's member, not a query parameter.
                match ApiError::from(e) {
                    mut err if err.code == "VALIDATION_FAILED" => {
                        if let Some(errors) = err.details["errors"].as_array_mut() {
                            for e in errors {
                                if let Some(p) = e["path"].as_str() {
                                    e["path"] = json!(format!("/filter{p}"));
                                }
                            }
                        }
                        err
                    }
                    err => err,
                }
            })?;
            BulkSource::Filter { request, first }
        }
        _ => {
            return Err(ApiError::validation(
                json!([{ "path": "", "message": "give either `ids` or `filter` (one of them)" }]),
            ))
        }
    };

    let input = body.input.unwrap_or_else(|| json!({}));
    let (tx, rx) = mpsc::channel::<Result<String, std::io::Error>>(16);
    let store = state.store.clone();
    let tenant = who.tenant;
    let actor = who.actor;
    tokio::spawn(async move {
        let mut report = BulkReport { tx, succeeded: 0, failed: 0, first: true };
        if !report.send("{\"results\":[".to_string()).await {
            return;
        }
        let fire = |id: Uuid| {
            let (store, actor, input, type_name, name) = (&store, &actor, input.clone(), &path.type_name, &path.name);
            async move {
                let request = TransitionRequest { type_name, id, name, input };
                let opts = TransitionOptions { dry_run, ..TransitionOptions::default() };
                match store.transition(tenant, request, actor, opts).await {
                    Ok(_) => json!({ "id": id, "ok": true }),
                    Err(e) => {
                        let e = ApiError::from(e);
                        json!({ "id": id, "ok": false, "error": { "code": e.code, "message": e.message } })
                    }
                }
            }
        };
        match source {
            BulkSource::Ids(ids) => {
                for id in ids {
                    if !report.result(fire(id).await).await {
                        return;
                    }
                }
            }
            BulkSource::Filter { mut request, first } => {
                let mut page = first;
                loop {
                    for e in &page.entities {
                        if !report.result(fire(e.id).await).await {
                            return;
                        }
                    }
                    let Some(next) = page.next_cursor.take() else { break };
                    request.cursor = Some(next);
                    page = match store.query(tenant, &path.type_name, &request).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(error = %e, "bulk transition: reading the next page failed");
                            report.abort().await;
                            return;
                        }
                    };
                }
            }
        }
        let mut tail = format!("],\"succeeded\":{},\"failed\":{}", report.succeeded, report.failed);
        if dry_run {
            tail.push_str(",\"dry_run\":true");
        }
        tail.push('}');
        report.send(tail).await;
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(ReceiverStream::new(rx))).into_response())
}

/// 404 `NOT_FOUND` for a transition name the type's workflow does not have, with the names it
/// does have (`details.available`, in the order written, like `INVALID_TRANSITION`'s).
fn unknown_transition(type_name: &str, name: &str, workflow: &engine::compiled::CompiledWorkflow) -> ApiError {
    let available: Vec<&str> = workflow.transitions().map(|t| t.name()).collect();
    ApiError::not_found(format!("unknown transition `{name}` of entity type `{type_name}`"))
        .with_details(json!({ "type": type_name, "transition": name, "available": available }))
}

/// The streamed report of a bulk transition.
struct BulkReport {
    tx: mpsc::Sender<Result<String, std::io::Error>>,
    succeeded: u64,
    failed: u64,
    first: bool,
}

impl BulkReport {
    /// False when the client went away (then the work stops).
    async fn send(&self, chunk: String) -> bool {
        self.tx.send(Ok(chunk)).await.is_ok()
    }

    async fn result(&mut self, item: Value) -> bool {
        if item["ok"] == true {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        let sep = if std::mem::take(&mut self.first) { "" } else { "," };
        self.send(format!("{sep}{item}")).await
    }

    /// Ends the body with an error, so the client sees a broken response, not a short one.
    async fn abort(&self) {
        let _ = self.tx.send(Err(std::io::Error::other("the bulk transition failed"))).await;
    }
}

// --- CSV export -------------------------------------------------------------------------------

/// The columns of an export before the type's fields.
const EXPORT_COLUMNS: [&str; 4] = ["id", "state", "version", "created_at"];

/// A string cell a spreadsheet would run as a formula gets a leading `'` (import removes it).
fn neutralize_formula(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

fn csv_cell(v: Option<&Value>) -> Cow<'_, str> {
    match v {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => neutralize_formula(s),
        Some(Value::Number(n)) => Cow::Owned(n.to_string()),
        Some(Value::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

fn csv_rows(entities: &[engine::model::Entity], fields: &[String], header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    if header {
        w.write_record(EXPORT_COLUMNS.iter().copied().chain(fields.iter().map(String::as_str)))?;
    }
    for e in entities {
        let id = e.id.to_string();
        let version = e.version.to_string();
        let created = engine::model::rfc3339(e.created_at);
        let mut record: Vec<Cow<'_, str>> =
            vec![Cow::Borrowed(&id), Cow::Borrowed(&e.state), Cow::Borrowed(&version), Cow::Borrowed(&created)];
        record.extend(fields.iter().map(|f| csv_cell(e.data.get(f))));
        w.write_record(record.iter().map(|c| c.as_bytes()))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// `GET …/entities/{type}/export.csv?<filters>&q=…&sort=…`: the whole filtered list as CSV,
/// streamed page by page.
async fn export_csv(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TypePath>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    allow(&state, &who, &path.type_name, Action::View, false).await?;
    let (_, defs) = state.store.live_definitions(who.tenant).await?;
    let ty = defs.type_(&path.type_name).ok_or_else(|| StoreError::TypeNotFound(path.type_name.clone()))?;
    let fields: Vec<String> = ty.def().fields.keys().map(|k| k.to_string()).collect();
    let mut request = ListRequest::from_pairs(pairs, ListMode::Export);
    request.limit = Some(WALK_PAGE);
    // The first page before answering: a bad filter is a plain 422, not a broken download.
    let first = state.store.query(who.tenant, &path.type_name, &request).await?;
    let first_chunk = csv_rows(&first.entities, &fields, true).map_err(ApiError::internal)?;

    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let store = state.store.clone();
    let tenant = who.tenant;
    let type_name = path.type_name.clone();
    let mut next = first.next_cursor;
    tokio::spawn(async move {
        if tx.send(Ok(first_chunk)).await.is_err() {
            return;
        }
        while let Some(cursor) = next.take() {
            request.cursor = Some(cursor);
            let chunk = match store.query(tenant, &type_name, &request).await {
                Ok(page) => {
                    next = page.next_cursor;
                    csv_rows(&page.entities, &fields, false).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            let sent = match chunk {
                Ok(bytes) => tx.send(Ok(bytes)).await,
                Err(e) => {
                    tracing::error!(error = %e, "CSV export failed mid-way");
                    let _ = tx.send(Err(std::io::Error::other("the export failed"))).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let disposition = format!("attachment; filename=\"{}.csv\"", path.type_name.replace(['"', '\\'], "_"));
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
}

// --- Import -----------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

/// One record of an import: its 1-based number, and its data or why it has none.
type ImportRow = (usize, Result<Value, Vec<FieldError>>);

fn row_error(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { path: path.into(), message: message.into() }
}

/// A CSV cell as the JSON value of a field of `kind`; `None` for an empty cell.
fn csv_value(kind: FieldKind, cell: &str) -> Result<Option<Value>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    let v = match kind {
        FieldKind::String | FieldKind::Enum | FieldKind::Reference | FieldKind::Date | FieldKind::Datetime => {
            // Undo the export's formula guard.
            let unguarded = match cell.strip_prefix('\'') {
                Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
                _ => cell,
            };
            Value::String(unguarded.to_string())
        }
        FieldKind::Integer => {
            cell.trim().parse::<i64>().map(Value::from).map_err(|_| "must be an integer".to_string())?
        }
        FieldKind::Number => match cell.trim().parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => cell
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| "must be a number".to_string())?,
        },
        FieldKind::Boolean => match cell.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err("must be true or false".into()),
        },
        FieldKind::Object | FieldKind::Array => {
            let v: Value = serde_json::from_str(cell).map_err(|_| format!("must be a JSON {kind}"))?;
            let fits = if kind == FieldKind::Object { v.is_object() } else { v.is_array() };
            if !fits {
                return Err(format!("must be a JSON {kind}"));
            }
            v
        }
    };
    Ok(Some(v))
}

fn csv_import_rows(bytes: &[u8], fields: &IndexMap<FieldName, FieldDef>) -> Result<Vec<ImportRow>, ApiError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| ApiError::validation(json!([{ "path": "/header", "message": e.to_string() }])))?
        .clone();
    // Each column: the field it fills, or `None` for the entity's own columns (an export has them).
    let mut columns: Vec<Option<(String, FieldKind)>> = Vec::with_capacity(header.len());
    let mut errors = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        if header.iter().take(i).any(|h| h.trim() == name) {
            errors.push(json!({ "path": format!("/header/{i}"), "message": format!("`{name}` is given twice") }));
        }
        if ontology::RESERVED_FIELDS.contains(&name) {
            columns.push(None);
        } else if let Some(def) = fields.get(name) {
            columns.push(Some((name.to_string(), def.kind)));
        } else {
            errors.push(json!({ "path": format!("/header/{i}"), "message": format!("`{name}` is not a field") }));
            columns.push(None);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(Value::Array(errors)));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push((row, Err(vec![row_error("", e.to_string())])));
                continue;
            }
        };
        if record.len() != columns.len() {
            let message = format!("has {} cells, the header has {}", record.len(), columns.len());
            rows.push((row, Err(vec![row_error("", message)])));
            continue;
        }
        let mut data = serde_json::Map::new();
        let mut errs = Vec::new();
        for (column, cell) in columns.iter().zip(record.iter()) {
            let Some((name, kind)) = column else { continue };
            match csv_value(*kind, cell) {
                Ok(Some(v)) => {
                    data.insert(name.clone(), v);
                }
                Ok(None) => {}
                Err(message) => errs.push(row_error(format!("/data/{name}"), message)),
            }
        }
        rows.push((row, if errs.is_empty() { Ok(Value::Object(data)) } else { Err(errs) }));
    }
    Ok(rows)
}

fn json_import_rows(bytes: &[u8]) -> Result<Vec<ImportRow>, ApiError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Array(items) = v else {
        return Err(ApiError::validation(json!([{ "path": "", "message": "must be an array of data objects" }])));
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let data = if item.is_object() { Ok(item) } else { Err(vec![row_error("/data", "must be an object")]) };
            (i + 1, data)
        })
        .collect())
}

/// `POST …/entities/{type}/import` with `text/csv` (a header row of field names) or
/// `application/json` (an array of data objects): each valid row is created, like
/// `POST …/entities/{type}`, in its own transaction; `?dry_run=true` validates only.
async fn import(
    State(state): State<AppState>,
    who: TenantActor,
    Path(path): Path<TypePath>,
    QueryParams(q): QueryParams<ImportQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    allow(&state, &who, &path.type_name, Action::Create, false).await?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
        _ => ApiError::bad_request(e.body_text()),
    })?;
    let (_, defs) = state.store.live_definitions(who.tenant).await?;
    let ty = defs.type_(&path.type_name).ok_or_else(|| StoreError::TypeNotFound(path.type_name.clone()))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let rows = match content_type.as_str() {
        "text/csv" => csv_import_rows(&body, &ty.def().fields)?,
        "application/json" => json_import_rows(&body)?,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send text/csv or application/json",
            ))
        }
    };

    let mut created = 0u64;
    let mut rejected = Vec::new();
    for (row, data) in rows {
        let data = match data {
            Ok(d) => d,
            Err(errors) => {
                rejected.push(json!({ "row": row, "errors": errors }));
                continue;
            }
        };
        let outcome = if q.dry_run {
            let mut tx = state.store.begin(who.tenant).await?;
            let r = state
                .store
                .create_entity_in(&mut tx, who.tenant, &path.type_name, data, &who.actor, CreateOptions::default())
                .await;
            tx.rollback().await?;
            r
        } else {
            state.store.create_entity(who.tenant, &path.type_name, data, &who.actor, CreateOptions::default()).await
        };
        match outcome {
            Ok(_) => created += 1,
            Err(StoreError::Rejected(Rejection::Validation { errors })) => {
                rejected.push(json!({ "row": row, "errors": errors }))
            }
            Err(StoreError::NotAnObject) => {
                rejected.push(json!({ "row": row, "errors": [row_error("/data", "must be an object")] }))
            }
            Err(StoreError::Rejected(r)) => {
                let e = ApiError::from(r);
                rejected.push(json!({ "row": row, "errors": [row_error("", e.message)] }))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut report = json!({ "created": created, "rejected": rejected });
    if q.dry_run {
        report["dry_run"] = json!(true);
    }
    Ok(Json(report))
}
