//! `GET /api/v1/t/{tenant}/openapi.json`: the document of [`crate::openapi`] for the tenant's
//! live version, with the types the caller may view (another type does not exist for it).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::TenantActor;
use crate::openapi::{any_object, document_of, ok, responses};
use crate::routes::{op, operations, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().get(
        "/api/v1/t/{tenant}/openapi.json",
        openapi,
        op(|_| {
            json!({ "tags": ["operations"], "operationId": "openapi", "summary": "This document",
                "responses": responses(ok(any_object()), &[401, 403, 404]) })
        }),
    )
}

async fn openapi(State(state): State<AppState>, who: TenantActor) -> Result<Json<Value>, ApiError> {
    let (version, defs) = state.store.live_definitions(who.tenant).await?;
    let (roles, system) = (&who.actor.roles, who.actor.system);
    let visible = |name: &str| defs.permissions().allows(roles, system, name, engine::permissions::Action::View);
    Ok(Json(document_of(&who.slug, version, &defs, operations(), &visible)))
}
