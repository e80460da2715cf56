//! The HTTP floor: what the thinnest Rust server can do with the benchmark's transition on this
//! machine, to read the HTTP paths' shares against.
//!
//! pgbench is a C client sending SQL; the HTTP paths add an HTTP client, an HTTP server, a
//! Postgres driver and the engine, all on the same two cores as Postgres. How much of the gap to
//! pgbench is the engine's, and how much any Rust HTTP server's on this machine? The floor is an
//! axum router in this process with one route, `POST /floor/{id}`, that takes the same JSON
//! body and runs the engine's four round trips with sqlx on the store's pool: `BEGIN` with the
//! tenant setting, `SELECT … FOR UPDATE`, the update (the jsonb changed in SQL, as pgbench does),
//! the history row and the outbox row in one statement, `COMMIT`; and answers the entity as
//! JSON. No authentication, no workflow (no guard, script, schema or diff), no middleware. The
//! benchmark's own hyper client drives it, as it drives the HTTP path.
//!
//! So `HTTP / floor` is what Switchyard's own work costs over a bare axum + sqlx server, and
//! `floor / pgbench` the cost of HTTP and the driver alone.

use std::net::SocketAddr;

use anyhow::{Context as _, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::load::Target;
use crate::setup::{Set, Tenant, ENTITIES_PER_CLIENT};

/// The floor's server: aborted when dropped.
pub struct Floor {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Ctx {
    pool: PgPool,
    /// `BEGIN; SET LOCAL app.tenant_id = '…'` (the store's `BEGIN`).
    begin: String,
    tenant: Uuid,
    actor: String,
    email: String,
    config_version: i64,
}

#[derive(Deserialize)]
struct Body {
    input: Input,
}

#[derive(Deserialize)]
struct Input {
    value: i64,
}

const LOCK: &str = "select id, type, state, data, version, config_version, created_at, updated_at, created_by, \
    updated_by from entities where tenant_id = $1 and type = 'meter' and id = $2 for update";

/// The update, the history row and the outbox row in one statement (as the store writes them).
const WRITE: &str = "with u as (
        update entities set data = jsonb_set(jsonb_set(data, '{samples}',
                to_jsonb(coalesce((data->>'samples')::bigint, 0) + 1)), '{last_value}', to_jsonb($3::bigint)),
            version = version + 1, updated_at = now(), updated_by = $4
        where tenant_id = $1 and id = $2
        returning id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by),
    h as (
        insert into transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, actor_id,
            actor_email, at, input, changes, config_version, parent_id)
        select $1, u.id, 'meter', 'record', 'ACTIVE', u.state, $4, $5, now(), jsonb_build_object('value', $3::bigint),
            jsonb_build_object('last_value', jsonb_build_object('from', null, 'to', $3::bigint)), $6, null
        from u returning id),
    o as (
        insert into outbox (tenant_id, event_id, name, entity_type, entity_id, payload, transition_id)
        select $1, gen_random_uuid(), 'meter.recorded', 'meter', u.id,
            jsonb_build_object('id', u.id::text, 'type', 'meter', 'from', 'ACTIVE', 'to', u.state,
                'transition', 'record'), h.id
        from u, h)
    select id, type, state, data, version, config_version, created_at, updated_at, created_by, updated_by from u";

type Row = (
    Uuid,
    String,
    String,
    Value,
    i64,
    i64,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    Option<String>,
    Option<String>,
);

async fn record(
    State(cx): State<Ctx>,
    Path(id): Path<Uuid>,
    Json(body): Json<Body>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let failed = |e: sqlx::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut tx = cx.pool.begin_with(cx.begin.clone()).await.map_err(failed)?;
    let locked: Option<Row> =
        sqlx::query_as(LOCK).bind(cx.tenant).bind(id).fetch_optional(&mut *tx).await.map_err(failed)?;
    let Some(before) = locked else { return Err((StatusCode::NOT_FOUND, "no such meter".into())) };
    let after: Row = sqlx::query_as(WRITE)
        .bind(cx.tenant)
        .bind(id)
        .bind(body.input.value)
        .bind(&cx.actor)
        .bind(&cx.email)
        .bind(cx.config_version)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    let (id, type_name, state, data, version, config_version, created_at, updated_at, created_by, updated_by) = after;
    Ok(Json(json!({
        "entity": {
            "id": id, "type": type_name, "state": state, "data": data, "version": version,
            "config_version": config_version, "created_at": created_at, "updated_at": updated_at,
            "created_by": created_by, "updated_by": updated_by,
        },
        "events": [{ "name": "meter.recorded", "from": before.2, "to": state }],
    })))
}

impl Floor {
    /// Serves the floor on 127.0.0.1 (a free port), on `pool` (the server's role).
    pub async fn start(pool: PgPool, tenant: &Tenant) -> Result<Floor> {
        let cx = Ctx {
            pool,
            begin: format!("BEGIN; SET LOCAL app.tenant_id = '{}'", tenant.id),
            tenant: tenant.id.as_uuid(),
            actor: tenant.actor.id.clone(),
            email: tenant.actor.email.clone(),
            config_version: tenant.version,
        };
        let app = Router::new().route("/floor/{id}", post(record)).with_state(cx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("bench: the floor's server stopped: {e}");
            }
        });
        Ok(Floor { addr, task })
    }
}

/// The floor's targets: the HTTP path's meters (the windows run one after the other), at
/// `/floor/{id}`.
pub fn targets(clients: usize) -> Result<Vec<Vec<Target>>> {
    (0..clients)
        .map(|c| {
            (0..ENTITIES_PER_CLIENT)
                .map(|k| {
                    let id = Set::Floor.id(c * ENTITIES_PER_CLIENT + k)?;
                    Ok(Target { id, path: format!("/floor/{id}") })
                })
                .collect()
        })
        .collect()
}
