//! Indexes derived from the ontology, so list queries stay index-backed as data grows.
//!
//! Every top-level scalar field marked `filterable` or `sortable` gets one partial expression
//! index per (tenant, type, field), over the very expression a list query uses
//! (`engine::store::query::index_specs` writes both):
//!
//! ```sql
//! create index concurrently if not exists entities_q_<hash>
//!     on entities_of_<tenant hex> (field_number(data, 'amount'), id)
//!     where tenant_id = '<tenant uuid>'::uuid and type = 'ticket'::text
//! ```
//!
//! Run by the owner connection after a publish commits, one statement at a time outside any
//! transaction (`concurrently`: writes to `entities` go on while an index builds). Names are a
//! hash of what is indexed, so applying again creates nothing; an index left invalid by an
//! interrupted build is dropped and built again. Each index carries a JSON comment saying what
//! it indexes, so the indexes a tenant's live version no longer asks for are dropped.
//!
//! A type with searched fields (`searchable`, or string fields of its title) also gets one
//! trigram GIN index over their text, for `q` (migration 0016):
//!
//! ```sql
//! create index concurrently if not exists entities_q_<hash>
//!     on entities_of_<tenant hex> using gin (search_text(data, '{code,subject,body}'::text[]) search_trgm_ops)
//!     where tenant_id = '<tenant uuid>'::uuid and type = 'ticket'::text
//! ```
//!
//! Its operator class exists only where the migrations ran as a superuser; elsewhere it is not
//! built (and a search reads the tenant's rows of the type).
//!
//! The indexes are built on the tenant's partition of `entities` (migration 0021: one per
//! tenant, `engine::store::query::entities_partition`), so a statement of one tenant is planned,
//! and a write checked, against that tenant's indexes only: with one table, 50 tenants of the
//! example's size put 1,805 partial indexes in front of every statement.

use std::collections::HashMap;

use engine::store::query::{index_specs, IndexSpec, INDEX_PREFIX, SEARCH_OPCLASS};
use engine::store::TenantId;
use serde_json::Value;
use sqlx::PgPool;

use crate::error::ApplyError;
use crate::package::Package;

/// What [`ensure`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexReport {
    /// Indexes built now.
    pub created: Vec<String>,
    /// Indexes that were there already.
    pub kept: Vec<String>,
    /// Indexes of this tenant no field asks for any more.
    pub dropped: Vec<String>,
}

/// The indexes the package's types ask for, in `tenant`.
pub fn wanted(tenant: TenantId, package: &Package) -> Vec<IndexSpec> {
    index_specs(tenant, &package.types)
}

/// Whether the search indexes' operator class exists (migration 0016 creates it when it runs as
/// a superuser).
pub async fn search_indexable(owner: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists (select from pg_opclass where opcname = $1)")
        .bind(SEARCH_OPCLASS)
        .fetch_one(owner)
        .await
}

/// Creates the indexes the package's lists need and drops those of `tenant` it no longer needs.
pub async fn ensure(owner: &PgPool, tenant: TenantId, package: &Package) -> Result<IndexReport, ApplyError> {
    let mut wanted = wanted(tenant, package);
    if !search_indexable(owner).await? {
        wanted.retain(|w| !w.search);
    }
    let existing = existing(owner).await?;
    let mut report = IndexReport::default();
    for spec in &wanted {
        match existing.get(&spec.name) {
            Some(found) if found.valid => {
                report.kept.push(spec.name.clone());
                continue;
            }
            Some(_) => {
                // Left invalid by an interrupted `concurrently`: `if not exists` would keep it.
                drop_index(owner, &spec.name).await?;
            }
            None => {}
        }
        sqlx::raw_sql(&spec.create_sql).execute(owner).await?;
        sqlx::raw_sql(&format!("comment on index {} is {}", spec.name, literal(&spec.comment.to_string())))
            .execute(owner)
            .await?;
        tracing::debug!(index = %spec.name, r#type = %spec.type_name, field = %spec.field, search = spec.search, "created a list index");
        report.created.push(spec.name.clone());
    }
    let tenant_text = tenant.to_string();
    for (name, found) in &existing {
        let ours = found.comment.as_ref().and_then(|c| c["tenant"].as_str()) == Some(tenant_text.as_str());
        if ours && !wanted.iter().any(|w| &w.name == name) {
            drop_index(owner, name).await?;
            tracing::info!(index = %name, "dropped a list index no field asks for");
            report.dropped.push(name.clone());
        }
    }
    Ok(report)
}

struct Existing {
    valid: bool,
    comment: Option<Value>,
}

/// Every list index of the table (any tenant), by name.
async fn existing(owner: &PgPool) -> Result<HashMap<String, Existing>, sqlx::Error> {
    let rows: Vec<(String, bool, Option<String>)> = sqlx::query_as(
        "select c.relname::text, i.indisvalid, obj_description(c.oid, 'pg_class') \
         from pg_index i join pg_class c on c.oid = i.indexrelid \
         where i.indrelid in (select inhrelid from pg_inherits where inhparent = 'entities'::regclass) and starts_with(c.relname::text, $1)",
    )
    .bind(INDEX_PREFIX)
    .fetch_all(owner)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, valid, comment)| {
            let comment = comment.and_then(|c| serde_json::from_str(&c).ok());
            (name, Existing { valid, comment })
        })
        .collect())
}

async fn drop_index(owner: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    // Names come from `index_specs` or from the catalog filtered by prefix; checked all the same.
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Ok(());
    }
    sqlx::raw_sql(&format!("drop index concurrently if exists {name}")).execute(owner).await?;
    Ok(())
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
