//! Publishing a package as a new immutable version with its users, and loading sample data.
//!
//! Applying runs with the *owner* connection (it creates tenants), but still sets the tenant for
//! row-level security in each transaction. Applying the same package twice is a no-op: versions
//! are identified by the package hash, users are upserted by email, sample rows get stable ids.
//!
//! The package's `users:` are created (or given the package's name and roles) by [`publish`],
//! in the transaction that publishes the version, so what `tenant plan` lists as `+ user` exists
//! after every apply, however it is made (CLI, config API, demo). They get no password: they are
//! invited (`switchyard user invite`), or `serve --demo` gives them the demo password. Users the
//! package no longer lists are kept as they are (apply deletes no user).

use engine::limits::Limits;
use engine::model::Actor;
use engine::store::{sql, CreateOptions, Store, TenantId, TenantSlug};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApplyError;
use crate::package::{DevUser, Package};

/// What an apply did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub tenant: TenantId,
    pub slug: String,
    pub version: i64,
    pub hash: String,
    /// False when this exact package was already published (the version was reused).
    pub new_version: bool,
}

/// The longest comment a published version may carry, in characters (the column's check says
/// the same, `migrations/0019_version_comments.sql`).
pub const MAX_COMMENT_CHARS: usize = 1000;

/// Validates `package` and publishes it as the tenant's live version (creating the tenant).
pub async fn publish(owner: &PgPool, package: &Package, by: &str, limits: &Limits) -> Result<Applied, ApplyError> {
    publish_commented(owner, package, by, None, limits).await
}

/// [`publish`] with what the publisher said about the version (kept on a new version only: a
/// package published before keeps its version and that version's comment). A comment longer
/// than [`MAX_COMMENT_CHARS`] is refused; a blank one is none.
pub async fn publish_commented(
    owner: &PgPool,
    package: &Package,
    by: &str,
    comment: Option<&str>,
    limits: &Limits,
) -> Result<Applied, ApplyError> {
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if let Some(c) = comment {
        if c.chars().count() > MAX_COMMENT_CHARS {
            return Err(ApplyError::Comment(format!(
                "a version's comment may be at most {MAX_COMMENT_CHARS} characters long"
            )));
        }
    }
    crate::compile::compile(package, limits).map_err(ApplyError::Invalid)?;
    // Compiling checked it: a slug that does not parse is refused there, with its place.
    let parsed = TenantSlug::parse(&package.tenant.slug).map_err(|e| {
        ApplyError::Invalid(vec![crate::PackageError::Invalid {
            file: "tenant.yaml".into(),
            path: "/slug".into(),
            message: e.to_string(),
        }])
    })?;
    let slug = parsed.as_str();
    let hash = package.hash();
    let mut tx = owner.begin().await?;
    let existing = sql::tenant_by_slug(&mut tx, &parsed).await?;
    let tenant = existing.unwrap_or_else(TenantId::generate);
    sql::set_tenant(&mut tx, tenant).await?;
    // Append-only types keep their marking while their entities exist (see `plan`).
    let refused = crate::plan::immutable_refusals(package, &crate::plan::immutable_counts(&mut tx, tenant).await?);
    if !refused.is_empty() {
        return Err(ApplyError::Invalid(refused));
    }
    if existing.is_none() {
        sqlx::query("insert into tenants (id, slug, name) values ($1, $2, $3)")
            .bind(tenant)
            .bind(slug)
            .bind(&package.tenant.name)
            .execute(&mut *tx)
            .await?;
    }
    let same: Option<i64> =
        sqlx::query_scalar("select version from config_versions where tenant_id = $1 and hash = $2")
            .bind(tenant)
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?;
    let (version, new_version) = match same {
        Some(v) => (v, false),
        None => {
            let v: i64 = sqlx::query_scalar(
                "insert into config_versions (tenant_id, version, hash, package, created_by, comment) \
                 select $1, coalesce(max(version), 0) + 1, $2, $3::text::json, $4, $5 from config_versions where tenant_id = $1 \
                 returning version",
            )
            .bind(tenant)
            .bind(&hash)
            // As text: a `serde_json::Value` parameter is sent as jsonb, which would lose key order.
            .bind(package.to_json().to_string())
            .bind(by)
            .bind(comment)
            .fetch_one(&mut *tx)
            .await?;
            (v, true)
        }
    };
    sqlx::query("update tenants set live_version = $2, name = $3 where id = $1")
        .bind(tenant)
        .bind(version)
        .bind(&package.tenant.name)
        .execute(&mut *tx)
        .await?;
    upsert_users_in(&mut tx, tenant, &package.tenant.users, None).await?;
    // In this transaction: the version is live only with its unique indexes (see `unique`).
    crate::unique::apply(&mut tx, tenant, package).await?;
    tx.commit().await?;
    crate::indexes::ensure(owner, tenant, package).await?;
    tracing::info!(tenant.slug = slug, version, new_version, "published");
    Ok(Applied { tenant, slug: slug.to_string(), version, hash, new_version })
}

/// What the package's tests said when a version was published (`switchyard tenant apply`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestRecord {
    pub passed: usize,
    pub failed: usize,
    /// Published with `--skip-tests`: the tests were not run, or failed and were overridden.
    pub skipped: bool,
}

/// Records on a published version what its package's tests said.
pub async fn record_tests(
    owner: &PgPool,
    tenant: TenantId,
    version: i64,
    record: &TestRecord,
) -> Result<(), ApplyError> {
    let mut tx = owner.begin().await?;
    sql::set_tenant(&mut tx, tenant).await?;
    sqlx::query("update config_versions set tests = $3::jsonb where tenant_id = $1 and version = $2")
        .bind(tenant)
        .bind(version)
        .bind(serde_json::to_string(record).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Creates or updates the package's users (roles, name and attributes), keyed by email, and gives them
/// `password_hash` when there is one (the demo's); without one a user's password is left as it
/// is (none for a new user). [`publish`] already does this without a password.
pub async fn upsert_users(
    owner: &PgPool,
    tenant: TenantId,
    users: &[DevUser],
    password_hash: Option<&str>,
) -> Result<usize, ApplyError> {
    let mut tx = owner.begin().await?;
    sql::set_tenant(&mut tx, tenant).await?;
    upsert_users_in(&mut tx, tenant, users, password_hash).await?;
    tx.commit().await?;
    Ok(users.len())
}

/// [`upsert_users`] in a transaction whose tenant is set.
async fn upsert_users_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant: TenantId,
    users: &[DevUser],
    password_hash: Option<&str>,
) -> Result<(), sqlx::Error> {
    for u in users {
        // The package's attributes, `"@key"` resolved to the sample row's id (as data files do).
        let attributes = resolve_keys(tenant, &Value::Object(u.attributes.clone()));
        sqlx::query(
            "insert into users (tenant_id, id, email, name, roles, password_hash, attributes) \
             values ($1, $2, $3, $4, $5, $6, $7::jsonb) \
             on conflict (tenant_id, lower(email)) do update set name = excluded.name, roles = excluded.roles, \
             password_hash = coalesce(excluded.password_hash, users.password_hash), \
             attributes = excluded.attributes, updated_at = now()",
        )
        .bind(tenant)
        .bind(Uuid::now_v7())
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.roles)
        .bind(password_hash)
        .bind(attributes.to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Loads the package's sample data through the store (schema, defaults and numbers apply),
/// in one transaction. Rows keep stable ids, so loading twice creates nothing new.
pub async fn load_sample_data(
    owner: &PgPool,
    store: &Store,
    tenant: TenantId,
    package: &Package,
) -> Result<usize, ApplyError> {
    let tenant_id = tenant;
    let actor = Actor {
        id: "system".to_string(),
        email: String::new(),
        roles: Vec::new(),
        system: true,
        attributes: Default::default(),
    };
    let mut tx = owner.begin().await?;
    sql::set_tenant(&mut tx, tenant).await?;
    let mut created = 0;
    for row in &package.data {
        let id = match &row.key {
            Some(key) => sample_id(tenant, key),
            None => sample_id(tenant, &row.origin),
        };
        let data = resolve_keys(tenant, &row.data);
        store
            .create_entity_in(
                &mut tx,
                tenant_id,
                &row.type_name,
                data,
                &actor,
                CreateOptions { id: Some(id), state: row.state.clone(), skip_if_exists: true, input: None },
            )
            .await
            .map_err(|e| ApplyError::SampleData { origin: row.origin.clone(), message: e.to_string() })?;
        created += 1;
    }
    tx.commit().await?;
    Ok(created)
}

/// The stable id of a sample row: a v5 uuid of its key in the tenant's namespace.
pub fn sample_id(tenant: TenantId, key: &str) -> Uuid {
    Uuid::new_v5(&tenant.as_uuid(), key.as_bytes())
}

/// Replaces every string `"@key"` with the id of the sample row of that key.
pub(crate) fn resolve_keys(tenant: TenantId, value: &Value) -> Value {
    match value {
        Value::String(s) => match s.strip_prefix('@') {
            Some(key) if !key.is_empty() => Value::String(sample_id(tenant, key).to_string()),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve_keys(tenant, v)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve_keys(tenant, v))).collect()),
        other => other.clone(),
    }
}
