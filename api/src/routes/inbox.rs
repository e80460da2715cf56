//! The inbox ("needs me"): `GET /api/v1/t/{tenant}/inbox`, the entities on which the caller can
//! fire a transition now, oldest first, grouped by type and transition (`engine::store::inbox`
//! narrows the candidates in SQL and explains each like `GET …/transitions`).

use axum::extract::State;
use axum::Json;
use engine::store::{entity_json_titled, InboxRequest};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{QueryParams, TenantActor};
use crate::limits::{INBOX_DEFAULT_LIMIT, INBOX_MAX_LIMIT, INBOX_MAX_SCAN};
use crate::openapi::{ok, responses, schema_ref};
use crate::routes::{op, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().get(
        "/api/v1/t/{tenant}/inbox",
        inbox,
        op(|_| {
            json!({ "tags": ["inbox"], "operationId": "inbox",
            "summary": "The entities on which this user can fire a transition now, oldest first",
            "description": format!("Candidates are the entities of the types the user may view, in states with a \
                transition open to one of the user's roles; each is explained like `GET …/transitions` (roles, \
                four-eyes, guards) and listed with the transitions it allows. A page evaluates at most {INBOX_MAX_SCAN} \
                candidates, so it may hold fewer than `limit` entities and still have a `next_cursor`; `groups` \
                counts the page's entities by type and transition."),
            "parameters": [
                { "name": "type", "in": "query", "schema": { "type": "string" }, "description": "Only entities of this type" },
                { "name": "cursor", "in": "query", "schema": { "type": "string", "format": "uuid" }, "description": "A previous page's `next_cursor`" },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": INBOX_MAX_LIMIT, "default": INBOX_DEFAULT_LIMIT } } ],
            "responses": responses(ok(schema_ref("InboxPage")), &[400, 401, 403, 404, 422]) })
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    #[serde(rename = "type")]
    type_name: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET …/inbox?type=T&limit=N&cursor=C`: see `docs/api.md` ("The inbox").
async fn inbox(
    State(state): State<AppState>,
    who: TenantActor,
    QueryParams(q): QueryParams<InboxQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(INBOX_DEFAULT_LIMIT);
    if !(1..=INBOX_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            json!([{ "path": "/limit", "message": format!("must be between 1 and {INBOX_MAX_LIMIT}") }]),
        ));
    }
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(Uuid::parse_str(c).map_err(|_| {
            ApiError::validation(json!([{ "path": "/cursor", "message": "not a cursor of the inbox" }]))
        })?),
    };
    let request = InboxRequest { type_name: q.type_name, after, limit };
    let page = state.store.inbox(who.tenant, &who.actor, &request).await?;
    let defs = state.store.live_cached(who.tenant).await?;
    let mut entities: Vec<Value> = page.items.iter().map(|item| entity_json_titled(&item.entity, &defs)).collect();
    state.store.annotate(who.tenant, &who.actor, &mut entities, &defs).await?;
    let data: Vec<Value> = page
        .items
        .iter()
        .zip(entities)
        .map(|(item, entity)| {
            json!({
                "entity": entity,
                "transitions": item.transitions.iter().map(|t| json!({ "name": t.name, "label": t.label, "to": t.to })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "data": data,
        "groups": page.groups(),
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    })))
}
