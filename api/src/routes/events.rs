//! The tenant's events: a page of them (`GET …/events`) and a live stream (`GET …/events/stream`,
//! server-sent events). Both read the tenant's event stream, which the outbox relay fills in
//! commit order (see [`crate::workers::relay`]); an event's `id` is its position there.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::permissions::{Action, Permissions};
use engine::store::{StoreError, TenantId};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::bearer;
use crate::error::ApiError;
use crate::extract::{authenticate, PathTenant, TenantActor};
use crate::hub::{wait, Wake};
use crate::limits::{EVENTS_DEFAULT_LIMIT as DEFAULT_LIMIT, EVENTS_MAX_LIMIT as MAX_LIMIT};
use crate::openapi::{ok, responses, schema_ref};
use crate::routes::{op, Routes};
use crate::state::AppState;
use crate::workers::sql::{self, EventRecord};
use crate::workers::webhooks::EventPatterns;

/// Events read per query by a stream.
const STREAM_PAGE: i64 = 200;
/// How often an idle stream sends a comment (keeps proxies from closing it).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a stream looks for events when nothing woke it.
const STREAM_POLL: Duration = Duration::from_secs(5);
/// A stream ends after this long; the client reconnects with `Last-Event-ID`.
const MAX_STREAM: Duration = Duration::from_secs(30 * 60);
/// How often an open stream checks its credential again when it has nothing to send (it also
/// checks before each batch it sends): a deactivated user, an ended session, a revoked API key or
/// an expired token ends the stream, and role changes apply to what it sends next.
const RECHECK: Duration = Duration::from_secs(5);

pub fn routes() -> Routes {
    Routes::default()
        .get(
            "/api/v1/t/{tenant}/events",
            list,
            op(|_| {
                json!({ "tags": ["events"], "operationId": "events",
                "summary": "Events after a position, oldest first (those of types the user may view)",
                "parameters": [ after_param(), type_param(),
                                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT } } ],
                "responses": responses(ok(json!({ "type": "object", "required": ["data", "next_cursor"], "properties": {
                    "data": { "type": "array", "items": schema_ref("StreamEvent") },
                    "next_cursor": { "type": ["string", "null"] } } })), &[400, 401, 403, 404, 422]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/events/stream",
            stream,
            op(|_| {
                json!({ "tags": ["events"], "operationId": "events_stream",
                "summary": "Server-sent events: `id: <position>` and `data: <StreamEvent JSON>` per event",
                "description": format!("Starts after `Last-Event-ID`, else after `after`, else at the end. A comment every \
                                {} s when idle; the stream ends after {} minutes, when the server stops, and when the \
                                credential stops being valid (checked every {} s and before each batch of events is \
                                sent): then a last event `event: unauthorized` whose data is the error envelope. Role \
                                changes apply to the events that follow.",
                                KEEP_ALIVE.as_secs(), MAX_STREAM.as_secs() / 60, RECHECK.as_secs()),
                "parameters": [ after_param(), type_param(),
                                { "name": "Last-Event-ID", "in": "header", "schema": { "type": "string", "pattern": "^[0-9]{1,18}$" } } ],
                "responses": responses(json!({ "200": { "description": "The stream",
                    "content": { "text/event-stream": { "schema": { "type": "string" } } } } }), &[400, 401, 403, 404, 422]) })
            }),
        )
}

/// The documentation of `type`, the event filter of both routes.
fn type_param() -> Value {
    json!({ "name": "type", "in": "query", "schema": { "type": "string" },
        "description": "Event names: a name (`order.submitted`), a prefix (`order.*`), several (comma-separated), or `*`" })
}

/// The documentation of `after`, where both routes start.
fn after_param() -> Value {
    json!({ "name": "after", "in": "query", "schema": { "type": "string", "pattern": "^[0-9]{1,18}$" },
        "description": "A stream position: start after it" })
}

/// Whether `who` may see `event`: the one place that decides, for lists and streams alike. An
/// event is seen by whoever may view its entity's type (the live version's `permissions:`).
pub fn can_view(who: &TenantActor, permissions: &Permissions, event: &EventRecord) -> bool {
    permissions.allows(&who.actor.roles, who.actor.system, &event.entity_type, Action::View)
}

/// The events of `rows` whose entities `who` sees by the record rules of its roles (one
/// statement per type that has rules for the caller; none otherwise). An event is seen while its
/// entity is: the rules are read over the entity as it is now.
async fn visible(state: &AppState, who: &TenantActor, rows: Vec<EventRecord>) -> Result<Vec<EventRecord>, StoreError> {
    let mut by_type: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for e in &rows {
        by_type.entry(e.entity_type.as_str()).or_default().push(e.entity_id);
    }
    let mut hidden: HashMap<String, HashSet<Uuid>> = HashMap::new();
    for (type_name, ids) in by_type {
        if let Some(seen) = state.store.visible_ids(who.tenant, &who.actor, type_name, &ids).await? {
            hidden.insert(type_name.to_string(), ids.into_iter().filter(|id| !seen.contains(id)).collect());
        }
    }
    Ok(rows.into_iter().filter(|e| !hidden.get(&e.entity_type).is_some_and(|h| h.contains(&e.entity_id))).collect())
}

/// The live version's permissions (compiled once per version, cached).
async fn permissions(state: &AppState, who: &TenantActor) -> Result<Permissions, StoreError> {
    let (_, defs) = state.store.live_definitions(who.tenant).await?;
    Ok(defs.permissions().clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    after: Option<String>,
    #[serde(rename = "type")]
    types: Option<String>,
    limit: Option<i64>,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| ApiError::bad_request(e.body_text()))
}

fn cursor(value: Option<&str>, path: &str) -> Result<Option<i64>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(ApiError::validation(json!([{ "path": path, "message": "not a cursor of this stream" }]))),
        },
    }
}

/// `type=order.submitted,trip.*`: names, prefixes, or `*`.
fn patterns(types: Option<&str>) -> Result<EventPatterns, ApiError> {
    match types {
        None => Ok(EventPatterns::all()),
        Some(t) => {
            let list: Vec<&str> = t.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            EventPatterns::parse(&list).map_err(|m| ApiError::validation(json!([{ "path": "/type", "message": m }])))
        }
    }
}

/// `GET …/events?after=C&type=T&limit=N`: events after position `C` (default: from the start),
/// oldest first; `next_cursor` when there are more.
async fn list(
    State(state): State<AppState>,
    who: TenantActor,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            json!([{ "path": "/limit", "message": format!("must be between 1 and {MAX_LIMIT}") }]),
        ));
    }
    let after = cursor(q.after.as_deref(), "/after")?.unwrap_or(0);
    let filter = patterns(q.types.as_deref())?;
    let (names, prefixes) = filter.sql_filter();
    let mut tx = state.store.begin(who.tenant).await?;
    let mut rows = sql::list_events(&mut tx, who.tenant, after, names, prefixes, limit + 1).await?;
    tx.commit().await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|e| e.id.to_string())
    } else {
        None
    };
    let permissions = permissions(&state, &who).await?;
    let data: Vec<EventRecord> = rows.into_iter().filter(|e| can_view(&who, &permissions, e)).collect();
    let data = visible(&state, &who, data).await?;
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    after: Option<String>,
    #[serde(rename = "type")]
    types: Option<String>,
}

/// `GET …/events/stream`: server-sent events, each `id: <position>` and `data: <event JSON>`.
/// Starts after `Last-Event-ID` (what an SSE client sends when it reconnects), else after
/// `?after=`, else at the end (events from now on). Ends with `event: unauthorized` (data: the
/// error envelope) once the credential is no longer valid (see [`pump`]).
async fn stream(
    State(state): State<AppState>,
    who: TenantActor,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let last_event_id = match headers.get("last-event-id") {
        Some(v) => Some(v.to_str().map_err(|_| ApiError::bad_request("Last-Event-ID is not a cursor"))?),
        None => None,
    };
    let filter = patterns(q.types.as_deref())?;
    let start = match cursor(last_event_id, "/Last-Event-ID")?.or(cursor(q.after.as_deref(), "/after")?) {
        Some(p) => p,
        None => {
            let mut tx = state.store.begin(who.tenant).await?;
            let p = sql::stream_position(&mut tx, who.tenant).await?;
            tx.commit().await?;
            p
        }
    };
    // Kept to check the credential again while the stream is open (the extractor checked it).
    let token = bearer(&headers)?.to_string();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(pump(state, StreamAuth { token, who }, start, filter, tx));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

/// A stream's credential: the bearer token it was opened with, and who it was then.
struct StreamAuth {
    token: String,
    who: TenantActor,
}

impl StreamAuth {
    /// Checks the token again, as [`authenticate`] does for every request (one round trip): the
    /// actor with its current roles, or the error that ends the stream.
    async fn recheck(&mut self, state: &AppState) -> Result<(), ApiError> {
        // The same token for the same tenant's path: the same principal, with its roles of now.
        self.who.actor = authenticate(state, &self.token, PathTenant::Slug(&self.who.slug), None).await?.actor;
        Ok(())
    }
}

/// Feeds one stream until the client goes, the server shuts down, [`MAX_STREAM`] passes, or its
/// credential stops being valid (checked before each batch of events is sent, and every
/// [`RECHECK`] while idle).
async fn pump(
    state: AppState,
    mut credential: StreamAuth,
    mut position: i64,
    filter: EventPatterns,
    out: mpsc::Sender<Result<Event, Infallible>>,
) {
    // Subscribed before the first read: a wake-up between a read and the wait is not lost.
    let mut wakes = state.ops.hub.subscribe();
    let stop = state.ops.hub.shutdown_token().clone();
    let ends = tokio::time::Instant::now() + MAX_STREAM;
    let tenant = credential.who.tenant;
    // The extractor has just checked it.
    let mut checked = tokio::time::Instant::now();
    let (names, prefixes) = filter.sql_filter();
    loop {
        let page = async {
            let mut tx = state.store.begin(tenant).await.map_err(|e| e.to_string())?;
            let rows = sql::list_events(&mut tx, tenant, position, names, prefixes, STREAM_PAGE)
                .await
                .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(rows)
        }
        .await;
        let rows = match page {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(tenant = %credential.who.slug, error = %e, "event stream read failed; retrying");
                Vec::new()
            }
        };
        // Before anything is sent, and regularly while idle: is the credential still good?
        if !rows.is_empty() || checked.elapsed() >= RECHECK {
            if let Err(e) = credential.recheck(&state).await {
                end(&credential.who, &out, e).await;
                return;
            }
            checked = tokio::time::Instant::now();
        }
        let mut full = false;
        if !rows.is_empty() {
            // Asked per page: a newly published version's permissions apply from the next one.
            let (last, page_len) = (rows.last().map(|e| e.id), rows.len());
            let seen = async {
                let permissions = permissions(&state, &credential.who).await?;
                let rows: Vec<EventRecord> =
                    rows.into_iter().filter(|e| can_view(&credential.who, &permissions, e)).collect();
                visible(&state, &credential.who, rows).await
            }
            .await;
            match seen {
                Ok(rows) => {
                    full = page_len as i64 == STREAM_PAGE;
                    for e in rows {
                        let data = serde_json::to_string(&e).unwrap_or_default();
                        if out.send(Ok(Event::default().id(e.id.to_string()).data(data))).await.is_err() {
                            return;
                        }
                    }
                    // Past the events the caller may not see as well.
                    if let Some(last) = last {
                        position = last;
                    }
                }
                // The page is read again after the wait.
                Err(e) => {
                    tracing::warn!(tenant = %credential.who.slug, error = %e, "event stream read failed; retrying")
                }
            }
        }
        if full {
            continue;
        }
        if !wait_for_events(&mut wakes, &stop, ends, tenant, &out).await {
            return;
        }
    }
}

/// Waits for new events (a wake-up of the tenant's, or [`STREAM_POLL`]); false when the stream
/// must end (the client went, the server stops, or [`MAX_STREAM`] passed).
async fn wait_for_events(
    wakes: &mut broadcast::Receiver<Wake>,
    stop: &CancellationToken,
    ends: tokio::time::Instant,
    tenant: TenantId,
    out: &mpsc::Sender<Result<Event, Infallible>>,
) -> bool {
    let deadline = (tokio::time::Instant::now() + STREAM_POLL).min(ends);
    let woke = tokio::select! {
        () = out.closed() => return false,
        woke = wait(wakes, stop, deadline, |w| matches!(w, Wake::Events(_) | Wake::Resync) && w.concerns(tenant)) => woke,
    };
    woke && tokio::time::Instant::now() < ends
}

/// Ends a stream whose credential failed: a last `event: unauthorized` with the error envelope
/// when it was refused (not when the check itself failed), then the end of the body.
async fn end(who: &TenantActor, out: &mpsc::Sender<Result<Event, Infallible>>, e: ApiError) {
    let refused = e.status.is_client_error();
    tracing::info!(tenant = %who.slug, actor = %who.actor.id, status = %e.status, "event stream ended: credential no longer valid");
    if refused {
        let mut error = json!({ "code": e.code, "message": e.message });
        if !e.details.is_null() {
            error["details"] = e.details;
        }
        let data = json!({ "error": error }).to_string();
        let _ = out.send(Ok(Event::default().event("unauthorized").data(data))).await;
    }
}
