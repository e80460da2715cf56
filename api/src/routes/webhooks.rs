//! A tenant's webhooks (admins only): list, create, delete, their deliveries with every attempt,
//! and replaying a delivery (a dead letter or any other).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Admin, AdminArea, JsonBody, TenantActor};
use crate::hub::Wake;
use crate::limits::{DELIVERIES_DEFAULT_LIMIT as DEFAULT_LIMIT, DELIVERIES_MAX_LIMIT as MAX_LIMIT};
use crate::openapi::{
    body, created, data_list, id_param, link, linked, no_content, ok, responses, schema_ref, ADMIN_ONLY,
};
use crate::routes::{op, Routes};
use crate::state::AppState;
use crate::workers::sql::{self, Delivery, NewWebhook, CHANNEL_WEBHOOKS};
use crate::workers::webhooks::{new_secret, EventPatterns, MAX_SECRET_LEN, MAX_WEBHOOKS, MIN_SECRET_LEN};

/// Webhooks can send the tenant's data anywhere: only admins manage them.
struct Webhooks;

impl AdminArea for Webhooks {
    const REFUSAL: &'static str = "only admins manage webhooks";
    const NAMES_ROLE: bool = true;
}

pub fn routes() -> Routes {
    Routes::default()
        .get(
            "/api/v1/t/{tenant}/webhooks",
            list,
            op(|_| {
                json!({ "tags": ["webhooks"], "operationId": "webhooks", "description": ADMIN_ONLY,
                    "responses": responses(linked(ok(data_list(schema_ref("Webhook"))), webhook_links("$response.body#/data/0/id", false)),
                        &[401, 403]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/webhooks",
            create,
            op(|_| {
                json!({ "tags": ["webhooks"], "operationId": "create_webhook",
                    "description": format!("{ADMIN_ONLY} The destination must not resolve to a private address (422 at `/url`); \
                                            `secret` is generated when absent and shown in this answer only."),
                    "requestBody": body(json!({ "type": "object", "required": ["url", "events"], "additionalProperties": false, "properties": {
                        "url": { "type": "string", "format": "uri" },
                        "events": { "type": "array", "items": { "type": "string" } },
                        "secret": { "type": "string", "minLength": MIN_SECRET_LEN, "maxLength": MAX_SECRET_LEN } } })),
                    "responses": responses(linked(created(schema_ref("Webhook")), webhook_links("$response.body#/id", true)),
                        &[400, 401, 403, 409, 422]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/webhooks/{id}",
            get_one,
            op(|_| {
                json!({ "tags": ["webhooks"], "operationId": "get_webhook", "description": ADMIN_ONLY,
                    "parameters": [id_param("id")],
                    "responses": responses(linked(ok(schema_ref("Webhook")), webhook_links("$response.body#/id", false)),
                        &[401, 403, 404]) })
            }),
        )
        .delete(
            "/api/v1/t/{tenant}/webhooks/{id}",
            remove,
            op(|_| {
                json!({ "tags": ["webhooks"], "operationId": "delete_webhook",
                    "description": format!("{ADMIN_ONLY} Its deliveries go with it."),
                    "parameters": [id_param("id")],
                    "responses": responses(no_content("Deleted"), &[401, 403, 404]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/webhooks/{id}/deliveries",
            deliveries,
            op(|_| {
                json!({ "tags": ["webhooks"], "operationId": "webhook_deliveries",
                "description": format!("{ADMIN_ONLY} Newest first."),
                "parameters": [ id_param("id"),
                    { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["pending", "delivered", "dead"] } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT } },
                    { "name": "cursor", "in": "query", "schema": { "type": "string", "format": "uuid" } } ],
                "responses": responses(linked(ok(json!({ "type": "object", "required": ["data", "next_cursor"], "properties": {
                    "data": { "type": "array", "items": schema_ref("Delivery") },
                    "next_cursor": { "type": ["string", "null"] } } })), delivery_links("$response.body#/data/0/id")),
                    &[400, 401, 403, 404, 422]) })
            }),
        )
        .get(
            "/api/v1/t/{tenant}/webhooks/{id}/deliveries/{delivery}",
            delivery,
            op(|_| {
                json!({ "tags": ["webhooks"], "operationId": "webhook_delivery", "description": ADMIN_ONLY,
                "parameters": [id_param("id"), id_param("delivery")],
                "responses": responses(linked(ok(schema_ref("Delivery")), delivery_links("$response.body#/id")), &[401, 403, 404]) })
            }),
        )
        .post(
            "/api/v1/t/{tenant}/webhooks/{id}/deliveries/{delivery}/replay",
            replay,
            op(|_| {
                json!({ "tags": ["webhooks"], "operationId": "replay_delivery",
                "description": format!("{ADMIN_ONLY} The delivery is due again now, with a fresh retry budget and the same event id."),
                "parameters": [id_param("id"), id_param("delivery")],
                "responses": responses(json!({ "202": { "description": "Queued again",
                    "content": { "application/json": { "schema": schema_ref("Delivery") } } } }), &[401, 403, 404]) })
            }),
        )
}

/// The links from an answer naming a webhook at `id` (a runtime expression) to the operations on
/// it; to its deletion only from its creation (a fuzzer following links from the list would delete
/// the package's webhooks).
fn webhook_links(id: &str, delete: bool) -> Value {
    let mut links = json!({
        "get": link("get_webhook", "The webhook", json!({ "id": id })),
        "deliveries": link("webhook_deliveries", "Its deliveries", json!({ "id": id })),
    });
    if delete {
        links["delete"] = link("delete_webhook", "Delete it", json!({ "id": id }));
    }
    links
}

/// The links from an answer naming a delivery at `delivery` (a runtime expression) of the
/// webhook of the request's path.
fn delivery_links(delivery: &str) -> Value {
    let ids = json!({ "id": "$request.path.id", "delivery": delivery });
    json!({
        "get": link("webhook_delivery", "The delivery", ids.clone()),
        "replay": link("replay_delivery", "Deliver it again", ids),
    })
}

/// An id that is not a uuid names nothing: 404, like any unknown id.
fn parse_id(id: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("{what} not found")))
}

#[derive(Deserialize)]
struct WebhookPath {
    id: String,
}

#[derive(Deserialize)]
struct DeliveryPath {
    id: String,
    delivery: String,
}

async fn list(State(state): State<AppState>, Admin(who, ..): Admin<Webhooks>) -> Result<Json<Value>, ApiError> {
    let mut tx = state.store.begin(who.tenant).await?;
    let hooks = sql::list_webhooks(&mut tx, who.tenant).await?;
    tx.commit().await?;
    Ok(Json(json!({ "data": hooks })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    events: Vec<String>,
    /// At least 16 characters; generated when absent.
    secret: Option<String>,
}

/// `POST …/webhooks`: 201 with the webhook and its `secret` (shown this once).
async fn create(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Webhooks>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let field = |path: &str, message: String| ApiError::validation(json!([{ "path": path, "message": message }]));
    EventPatterns::parse(&body.events).map_err(|m| field("/events", m))?;
    let secret = match body.secret {
        Some(s) if s.len() < MIN_SECRET_LEN || s.len() > MAX_SECRET_LEN => {
            return Err(field("/secret", format!("must have {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters")))
        }
        Some(s) => s,
        None => new_secret(),
    };
    let url = state.ops.destinations().check_url(&body.url).await.map_err(|e| field("/url", e.to_string()))?;
    let events: Vec<String> = body.events.iter().map(|e| e.trim().to_string()).collect();
    let mut tx = state.store.begin(who.tenant).await?;
    if sql::count_webhooks(&mut tx, who.tenant).await? >= MAX_WEBHOOKS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "TOO_MANY_WEBHOOKS",
            format!("a tenant may have at most {MAX_WEBHOOKS} webhooks"),
        ));
    }
    let hook = sql::insert_webhook(
        &mut tx,
        who.tenant,
        NewWebhook {
            id: Uuid::now_v7(),
            name: None,
            url: url.as_str(),
            events: &events,
            secret: &secret,
            created_by: &who.actor.id,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %who.slug, webhook.id = %hook.id, url = %hook.url, "webhook created");
    let mut answer = serde_json::to_value(&hook).map_err(ApiError::internal)?;
    answer["secret"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn get_one(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Webhooks>,
    Path(path): Path<WebhookPath>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&path.id, "webhook")?;
    let mut tx = state.store.begin(who.tenant).await?;
    let hook = sql::get_webhook(&mut tx, who.tenant, id).await?;
    tx.commit().await?;
    let hook = hook.ok_or_else(|| ApiError::not_found("webhook not found"))?;
    Ok(Json(serde_json::to_value(hook).map_err(ApiError::internal)?))
}

/// `DELETE …/webhooks/{id}`: 204; its deliveries (pending ones too) go with it.
async fn remove(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Webhooks>,
    Path(path): Path<WebhookPath>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&path.id, "webhook")?;
    let mut tx = state.store.begin(who.tenant).await?;
    let found = sql::delete_webhook(&mut tx, who.tenant, id).await?;
    tx.commit().await?;
    if !found {
        return Err(ApiError::not_found("webhook not found"));
    }
    tracing::info!(tenant = %who.slug, webhook.id = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET …/webhooks/{id}/deliveries?status=pending|delivered|dead&limit=N&cursor=C`: newest first.
async fn deliveries(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Webhooks>,
    Path(path): Path<WebhookPath>,
    q: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = parse_id(&path.id, "webhook")?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            json!([{ "path": "/limit", "message": format!("must be between 1 and {MAX_LIMIT}") }]),
        ));
    }
    if let Some(s) = q.status.as_deref() {
        if !matches!(s, "pending" | "delivered" | "dead") {
            return Err(ApiError::validation(
                json!([{ "path": "/status", "message": "one of pending, delivered, dead" }]),
            ));
        }
    }
    let before = match q.cursor.as_deref() {
        Some(c) => Some(Uuid::parse_str(c).map_err(|_| {
            ApiError::validation(json!([{ "path": "/cursor", "message": "not a cursor of this list" }]))
        })?),
        None => None,
    };
    let mut tx = state.store.begin(who.tenant).await?;
    if sql::get_webhook(&mut tx, who.tenant, id).await?.is_none() {
        return Err(ApiError::not_found("webhook not found"));
    }
    let mut rows = sql::list_deliveries(&mut tx, who.tenant, id, q.status.as_deref(), before, limit + 1).await?;
    tx.commit().await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|d| d.id.to_string())
    } else {
        None
    };
    Ok(Json(json!({ "data": rows, "next_cursor": next_cursor })))
}

async fn find_delivery(state: &AppState, who: &TenantActor, path: &DeliveryPath) -> Result<Delivery, ApiError> {
    let (hook, id) = (parse_id(&path.id, "webhook")?, parse_id(&path.delivery, "delivery")?);
    let mut tx = state.store.begin(who.tenant).await?;
    let found = sql::get_delivery(&mut tx, who.tenant, hook, id).await?;
    tx.commit().await?;
    found.ok_or_else(|| ApiError::not_found("delivery not found"))
}

async fn delivery(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Webhooks>,
    Path(path): Path<DeliveryPath>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(find_delivery(&state, &who, &path).await?))
}

/// `POST …/deliveries/{delivery}/replay`: 202; the delivery is due again now, with a fresh retry
/// budget and the same event id.
async fn replay(
    State(state): State<AppState>,
    Admin(who, ..): Admin<Webhooks>,
    Path(path): Path<DeliveryPath>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let (hook, id) = (parse_id(&path.id, "webhook")?, parse_id(&path.delivery, "delivery")?);
    let mut tx = state.store.begin(who.tenant).await?;
    if !sql::replay_delivery(&mut tx, who.tenant, hook, id).await? {
        return Err(ApiError::not_found("delivery not found"));
    }
    sql::notify(&mut tx, CHANNEL_WEBHOOKS, who.tenant).await?;
    tx.commit().await?;
    state.ops.hub.wake(Wake::Deliveries(who.tenant));
    tracing::info!(tenant = %who.slug, webhook.id = %hook, delivery.id = %id, "delivery replayed");
    Ok((StatusCode::ACCEPTED, Json(find_delivery(&state, &who, &path).await?)))
}
