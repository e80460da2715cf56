//! A tenant's draft package: the studio's unpublished work, kept on the server (one per tenant,
//! `migrations/0012_config_drafts.sql`), and the statements that read, save and discard it.
//!
//! A draft is whatever JSON object was saved: work in progress need not validate, so nothing
//! here parses it as a [`crate::Package`]. Saves are optimistic: each names the draft version it
//! read (0: none) and is one conditional statement, so of concurrent saves from the same version
//! exactly one is stored and the others get [`Saved::Conflict`] with what is there now.
//!
//! Like [`crate::export`]'s readers, these take any pool (the request role's in the API) and set
//! the tenant for row-level security in their own transaction.

use chrono::{DateTime, Utc};
use engine::store::sql;
use engine::store::TenantId;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Row};

/// A stored draft's version and who saved it when, without its package.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftInfo {
    /// 1 when first saved, one more on each save.
    pub version: i64,
    /// The live config version when the draft was first saved (`None`: the tenant had none).
    pub base_version: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A stored draft with its package, exactly as saved (key order kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub info: DraftInfo,
    pub package: Value,
}

/// What a save did.
#[derive(Debug, Clone, PartialEq)]
pub enum Saved {
    /// Stored: the draft's new version.
    Stored(DraftInfo),
    /// The draft was not at the version the save named: it is at this one now (`None`: there is
    /// no draft, e.g. it was discarded meanwhile).
    Conflict(Option<DraftInfo>),
}

/// What a discard did.
#[derive(Debug, Clone, PartialEq)]
pub enum Discarded {
    /// The draft is gone (or there was none).
    Gone,
    /// The draft is not at the version the discard named: it is at this one, and was kept.
    Conflict(DraftInfo),
}

const INFO_COLUMNS: &str = "version, base_version, updated_at, updated_by";

fn info_from_row(row: &sqlx::postgres::PgRow) -> Result<DraftInfo, sqlx::Error> {
    Ok(DraftInfo {
        version: row.try_get("version")?,
        base_version: row.try_get("base_version")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
    })
}

/// The tenant's draft, if one is stored.
pub async fn get(pool: &PgPool, tenant: TenantId) -> Result<Option<Draft>, sqlx::Error> {
    let mut tx = pool.begin_with(sql::begin_for(tenant)).await?;
    // `package::text`: parsed here, so key order is exactly what was stored.
    let row = sqlx::query(&format!(
        "select {INFO_COLUMNS}, package::text as package from config_drafts where tenant_id = $1"
    ))
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.try_get("package")?;
    let package = serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Some(Draft { info: info_from_row(&row)?, package }))
}

/// The tenant's draft without its package, if one is stored.
pub async fn info(pool: &PgPool, tenant: TenantId) -> Result<Option<DraftInfo>, sqlx::Error> {
    let mut tx = pool.begin_with(sql::begin_for(tenant)).await?;
    let row = sqlx::query(&format!("select {INFO_COLUMNS} from config_drafts where tenant_id = $1"))
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    row.as_ref().map(info_from_row).transpose()
}

/// Saves `package` as the tenant's draft if the draft is at version `expected` (0: there is no
/// draft yet), by `by`. One statement either way, so concurrent saves from the same version
/// cannot both be stored: a second insert finds the first's row (`on conflict do nothing`), a
/// second update waits for the first's row lock and then no longer matches `version = expected`.
pub async fn save(
    pool: &PgPool,
    tenant: TenantId,
    expected: i64,
    package: &Value,
    by: &str,
) -> Result<Saved, sqlx::Error> {
    let mut tx = pool.begin_with(sql::begin_for(tenant)).await?;
    // As text: a `serde_json::Value` parameter is sent as jsonb, which would lose key order.
    let text = package.to_string();
    let row = if expected == 0 {
        sqlx::query(&format!(
            "insert into config_drafts (tenant_id, package, version, base_version, updated_at, updated_by) \
             select $1, $2::text::json, 1, t.live_version, now(), $3 from tenants t where t.id = $1 \
             on conflict (tenant_id) do nothing returning {INFO_COLUMNS}"
        ))
        .bind(tenant)
        .bind(&text)
        .bind(by)
        .fetch_optional(&mut *tx)
        .await?
    } else {
        sqlx::query(&format!(
            "update config_drafts set package = $2::text::json, version = version + 1, updated_at = now(), \
             updated_by = $3 where tenant_id = $1 and version = $4 returning {INFO_COLUMNS}"
        ))
        .bind(tenant)
        .bind(&text)
        .bind(by)
        .bind(expected)
        .fetch_optional(&mut *tx)
        .await?
    };
    let saved = match row {
        Some(row) => Saved::Stored(info_from_row(&row)?),
        None => {
            // Read in the same transaction: a statement after the failed one sees what was
            // committed meanwhile (read committed), i.e. the draft that won.
            let current = sqlx::query(&format!("select {INFO_COLUMNS} from config_drafts where tenant_id = $1"))
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?;
            Saved::Conflict(current.as_ref().map(info_from_row).transpose()?)
        }
    };
    tx.commit().await?;
    Ok(saved)
}

/// Discards the tenant's draft; with `expected`, only if it is at that version. Idempotent: no
/// draft is [`Discarded::Gone`].
pub async fn discard(pool: &PgPool, tenant: TenantId, expected: Option<i64>) -> Result<Discarded, sqlx::Error> {
    let mut tx = pool.begin_with(sql::begin_for(tenant)).await?;
    let deleted: Option<i64> = sqlx::query_scalar(
        "delete from config_drafts where tenant_id = $1 and ($2::bigint is null or version = $2) returning version",
    )
    .bind(tenant)
    .bind(expected)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match (deleted, expected) {
        (Some(_), _) | (None, None) => Discarded::Gone,
        (None, Some(_)) => {
            let current = sqlx::query(&format!("select {INFO_COLUMNS} from config_drafts where tenant_id = $1"))
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?;
            match current.as_ref().map(info_from_row).transpose()? {
                Some(info) => Discarded::Conflict(info),
                None => Discarded::Gone,
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}
