//! `POST …/entities/{type}/transitions/{name}`: one transition on many entities (by ids or by
//! a list filter), each in its own transaction, the report streamed as they are done.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use engine::permissions::Action;
use engine::store::{ListMode, ListPage, ListRequest, ParamValue, StoreError, TransitionOptions, TransitionRequest};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::path::BulkPath;
use crate::extract::TenantActor;
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;

use super::{allow, ExecuteQuery, WALK_PAGE};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkBody {
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
pub(super) async fn bulk_transition(
    State(state): State<AppState>,
    who: TenantActor,
    path: BulkPath,
    QueryParams(q): QueryParams<ExecuteQuery>,
    JsonBody(body): JsonBody<BulkBody>,
) -> Result<Response, ApiError> {
    let dry_run = body.dry_run || q.dry_run;
    allow(&state, &who, &path.type_name, Action::View, false).await?;
    let (_, defs) = state.store.live_definitions(who.tenant).await?;
    let Some(workflow) = defs.type_(&path.type_name).and(defs.workflow(&path.type_name)) else {
        return Err(StoreError::TypeNotFound(path.type_name.into_string()).into());
    };
    // An append-only type has no transition to run: answered once, up front.
    if defs.type_(&path.type_name).is_some_and(|t| t.def().immutable) {
        return Err(StoreError::Immutable { type_name: path.type_name.into_string() }.into());
    }
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
            let first = state.store.query(who.tenant, &who.actor, &path.type_name, &request).await.map_err(|e| {
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
                    page = match store.query(tenant, &actor, &path.type_name, &request).await {
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
    let mut e = crate::extract::path::unknown_transition(type_name, name);
    e.details["available"] = json!(available);
    e
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
