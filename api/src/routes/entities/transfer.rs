//! `GET …/entities/{type}/export.csv` (the whole filtered list, streamed page by page) and
//! `POST …/entities/{type}/import` (CSV or JSON, each row created in its own transaction).

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::eval::Rejection;
use engine::permissions::Action;
use engine::store::{CreateOptions, ListMode, ListRequest, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::extract::TenantActor;
use crate::state::AppState;

use super::codec::{csv_import_rows, csv_rows, json_import_rows, row_error};
use super::{allow, WALK_PAGE};
use crate::extract::path::TypePath;

/// `GET …/entities/{type}/export.csv?<filters>&q=…&sort=…`: the whole filtered list as CSV,
/// streamed page by page.
pub(super) async fn export_csv(
    State(state): State<AppState>,
    who: TenantActor,
    path: TypePath,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    // Reading in bulk is its own permission: `view` alone does not grant it.
    allow(&state, &who, &path.type_name, Action::Export, false).await?;
    let (_, defs) = state.store.live_definitions(who.tenant).await?;
    let ty = defs.type_(&path.type_name).ok_or_else(|| StoreError::TypeNotFound(path.type_name.to_string()))?;
    let fields: Vec<String> = ty.def().fields.keys().map(|k| k.to_string()).collect();
    let mut request = ListRequest::from_pairs(pairs, ListMode::Export);
    request.limit = Some(WALK_PAGE);
    // The first page before answering: a bad filter is a plain 422, not a broken download.
    let first = state.store.query(who.tenant, &who.actor, &path.type_name, &request).await?;
    let first_chunk = csv_rows(&first.entities, &fields, true).map_err(ApiError::internal)?;

    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let store = state.store.clone();
    let tenant = who.tenant;
    let type_name = path.type_name.clone();
    let actor = who.actor.clone();
    let mut next = first.next_cursor;
    tokio::spawn(async move {
        if tx.send(Ok(first_chunk)).await.is_err() {
            return;
        }
        while let Some(cursor) = next.take() {
            request.cursor = Some(cursor);
            let chunk = match store.query(tenant, &actor, &type_name, &request).await {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

/// `POST …/entities/{type}/import` with `text/csv` (a header row of field names) or
/// `application/json` (an array of data objects): each valid row is created, like
/// `POST …/entities/{type}`, in its own transaction; `?dry_run=true` validates only.
pub(super) async fn import(
    State(state): State<AppState>,
    who: TenantActor,
    path: TypePath,
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
    let ty = defs.type_(&path.type_name).ok_or_else(|| StoreError::TypeNotFound(path.type_name.to_string()))?;
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
            // Another entity (or an earlier row) holds the values of a unique constraint: the
            // row is rejected naming its fields, the others go on.
            Err(StoreError::Unique { type_name, fields, .. }) => {
                let message = engine::store::unique_message(&type_name, &fields);
                let errors: Vec<_> = fields.iter().map(|f| row_error(format!("/{f}"), message.clone())).collect();
                rejected.push(json!({ "row": row, "code": "UNIQUE_VIOLATION", "fields": fields, "errors": errors }))
            }
            Err(StoreError::NotAnObject) => {
                rejected.push(json!({ "row": row, "errors": [row_error("/data", "must be an object")] }))
            }
            Err(StoreError::Rejected(r @ Rejection::CreateRefused { .. })) => {
                let e = ApiError::from(r);
                let errors = match e.details.get("errors") {
                    Some(errors) => errors.clone(),
                    None => json!([row_error("", e.message)]),
                };
                rejected.push(json!({ "row": row, "errors": errors }))
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
