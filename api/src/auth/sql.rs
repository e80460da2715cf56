//! The SQL of authentication and of the users, sessions and API keys of a tenant: one function
//! per statement. Credentials are checked through the SQL functions `auth_user` and
//! `auth_api_key` (migration 0003), which the request role may call before it knows the tenant.

use chrono::{DateTime, Utc};
use engine::store::{TenantId, TenantSlug};
use sqlx::PgConnection;
use uuid::Uuid;

use super::cache;

/// A row of `auth_api_key(tenant, key)`.
#[derive(sqlx::FromRow)]
struct AuthKeyRow {
    slug: String,
    name: String,
    roles: Vec<String>,
    secret_hash: Vec<u8>,
    revoked: bool,
}

/// A row of `auth_user(tenant, user, session)`.
#[derive(sqlx::FromRow)]
struct AuthUserRow {
    slug: String,
    email: String,
    name: String,
    roles: Vec<String>,
    active: bool,
    session_ok: bool,
    attributes: sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
}

impl From<AuthUserRow> for cache::Answer {
    fn from(r: AuthUserRow) -> cache::Answer {
        let AuthUserRow { slug, email, name, roles, active, session_ok, attributes } = r;
        cache::Answer::User { slug, email, name, roles, active, session_ok, attributes: attributes.0 }
    }
}

impl From<AuthKeyRow> for cache::Answer {
    fn from(r: AuthKeyRow) -> cache::Answer {
        let AuthKeyRow { slug, name, roles, secret_hash, revoked } = r;
        cache::Answer::ApiKey { slug, name, roles, secret_hash, revoked }
    }
}

/// What the database says of a credential (one round trip), `None` when it names nothing.
pub async fn credential(pool: &sqlx::PgPool, key: &cache::Key) -> Result<Option<cache::Answer>, sqlx::Error> {
    // A read: run again on another connection if the first was dead (a restarted database).
    engine::store::conn::retry_dead(|| credential_once(pool, key)).await
}

async fn credential_once(pool: &sqlx::PgPool, key: &cache::Key) -> Result<Option<cache::Answer>, sqlx::Error> {
    Ok(match key {
        cache::Key::User { tenant, user, session } => sqlx::query_as::<_, AuthUserRow>(
            "select slug, email, name, roles, active, session_ok, attributes from auth_user($1, $2, $3)",
        )
        .bind(tenant)
        .bind(user)
        .bind(session)
        .fetch_optional(pool)
        .await?
        .map(cache::Answer::from),
        cache::Key::ApiKey { tenant, key } => {
            sqlx::query_as::<_, AuthKeyRow>("select slug, name, roles, secret_hash, revoked from auth_api_key($1, $2)")
                .bind(tenant)
                .bind(key)
                .fetch_optional(pool)
                .await?
                .map(cache::Answer::from)
        }
    })
}

/// A user found by email (`switchyard token`).
#[derive(Debug, sqlx::FromRow)]
pub struct UserByEmail {
    pub id: Uuid,
    pub email: String,
    pub roles: Vec<String>,
    pub active: bool,
}

/// The tenant of a slug and its user with this email (case-insensitively): `None` when there
/// is no such tenant, `Some((tenant, None))` when it has no such user.
pub async fn user_by_email(
    pool: &sqlx::PgPool,
    slug: &TenantSlug,
    email: &str,
) -> Result<Option<(TenantId, Option<UserByEmail>)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(tenant) = engine::store::sql::tenant_by_slug(&mut tx, slug).await? else {
        return Ok(None);
    };
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    let user =
        sqlx::query_as("select id, email, roles, active from users where tenant_id = $1 and lower(email) = lower($2)")
            .bind(tenant)
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Some((tenant, user)))
}

/// A user as login needs it: id, email, roles, active, password hash.
pub type LoginUser = (Uuid, String, Vec<String>, bool, Option<String>);

/// The user of a tenant with this email, case-insensitively (login).
pub async fn login_user(
    tx: &mut PgConnection,
    tenant: TenantId,
    email: &str,
) -> Result<Option<LoginUser>, sqlx::Error> {
    sqlx::query_as(
        "select id, email, roles, active, password_hash from users where tenant_id = $1 and lower(email) = lower($2)",
    )
    .bind(tenant)
    .bind(email)
    .fetch_optional(&mut *tx)
    .await
}

/// Deletes a user's expired refresh tokens.
pub async fn delete_expired_refresh_tokens(
    tx: &mut PgConnection,
    tenant: TenantId,
    user: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from refresh_tokens where tenant_id = $1 and user_id = $2 and expires_at < now()")
        .bind(tenant)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A new refresh token `id` of session `family`, valid for `days`.
pub async fn insert_refresh_token(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    family: Uuid,
    user: Uuid,
    secret_hash: &[u8],
    days: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into refresh_tokens (tenant_id, id, family_id, user_id, secret_hash, expires_at) \
         values ($1, $2, $3, $4, $5, now() + make_interval(days => $6))",
    )
    .bind(tenant)
    .bind(id)
    .bind(family)
    .bind(user)
    .bind(secret_hash)
    .bind(days)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A refresh token's row, locked: family, user, secret hash, expired, used, revoked.
pub type RefreshTokenRow = (Uuid, Uuid, Vec<u8>, bool, bool, bool);

/// Locks a refresh token's row (`for update`).
pub async fn lock_refresh_token(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    sqlx::query_as(
        "select family_id, user_id, secret_hash, expires_at <= now(), used_at is not null, revoked_at is not null \
         from refresh_tokens where tenant_id = $1 and id = $2 for update",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
}

/// Revokes every token of a session; how many were still valid.
pub async fn revoke_family(tx: &mut PgConnection, tenant: TenantId, family: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_tokens set revoked_at = now() where tenant_id = $1 and family_id = $2 and revoked_at is null",
    )
    .bind(tenant)
    .bind(family)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every session of a user; how many tokens were still valid.
pub async fn revoke_user_sessions(tx: &mut PgConnection, tenant: TenantId, user: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_tokens set revoked_at = now() where tenant_id = $1 and user_id = $2 and revoked_at is null",
    )
    .bind(tenant)
    .bind(user)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// Marks a refresh token spent.
pub async fn mark_refresh_token_used(tx: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("update refresh_tokens set used_at = now() where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The tenant's slug and the user's email, roles and whether they are active (refresh).
pub async fn session_user(
    tx: &mut PgConnection,
    tenant: TenantId,
    user: Uuid,
) -> Result<Option<(String, String, Vec<String>, bool)>, sqlx::Error> {
    sqlx::query_as(
        "select t.slug, u.email, u.roles, u.active from users u join tenants t on t.id = u.tenant_id \
         where u.tenant_id = $1 and u.id = $2",
    )
    .bind(tenant)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await
}

/// The roles of the tenant's live configuration.
pub async fn tenant_roles(tx: &mut PgConnection, tenant: TenantId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select json_object_keys(v.package -> 'tenant' -> 'roles') from config_versions v \
         join tenants t on t.id = v.tenant_id and t.live_version = v.version where t.id = $1",
    )
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await
}

/// The `user_attributes` the tenant's live configuration declares (as stored; `None` when it
/// declares none or has no live version).
pub async fn tenant_user_attributes(
    tx: &mut PgConnection,
    tenant: TenantId,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar(
        "select v.package -> 'tenant' -> 'user_attributes' from config_versions v \
         join tenants t on t.id = v.tenant_id and t.live_version = v.version where t.id = $1",
    )
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await
    .map(Option::flatten)
}

const USER_COLUMNS: &str =
    "id, email, name, roles, active, password_hash is not null, created_at, updated_at, attributes";

/// A user's attributes as stored (a JSON object).
pub type Attributes = sqlx::types::Json<serde_json::Map<String, serde_json::Value>>;

/// A user as the API shows it: id, email, name, roles, active, has a password, created, updated,
/// attributes.
pub type UserRow = (Uuid, String, String, Vec<String>, bool, bool, DateTime<Utc>, DateTime<Utc>, Attributes);

/// The users of a tenant, by email.
pub async fn list_users(tx: &mut PgConnection, tenant: TenantId) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("select {USER_COLUMNS} from users where tenant_id = $1 order by lower(email)"))
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await
}

pub async fn user(tx: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("select {USER_COLUMNS} from users where tenant_id = $1 and id = $2"))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
}

/// What a new user is made of.
#[derive(Debug)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub roles: &'a [String],
    pub active: bool,
    pub password_hash: Option<String>,
    pub attributes: &'a serde_json::Map<String, serde_json::Value>,
}

/// Inserts a user; `None` when the tenant has a user with this email.
pub async fn insert_user(
    tx: &mut PgConnection,
    tenant: TenantId,
    user: NewUser<'_>,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "insert into users (tenant_id, id, email, name, roles, active, password_hash, attributes) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (tenant_id, lower(email)) do nothing returning {USER_COLUMNS}"
    ))
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(user.email)
    .bind(user.name)
    .bind(user.roles)
    .bind(user.active)
    .bind(user.password_hash)
    .bind(sqlx::types::Json(user.attributes))
    .fetch_optional(&mut *tx)
    .await
}

/// What a patch of a user changes (`None`: unchanged).
#[derive(Debug)]
pub struct UserChange<'a> {
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub active: Option<bool>,
    pub password_hash: &'a Option<String>,
    /// The whole new set of attributes (replaces the old).
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Updates a user; `None` when there is no such user.
pub async fn update_user(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    change: UserChange<'_>,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "update users set name = coalesce($3, name), roles = coalesce($4, roles), active = coalesce($5, active), \
         password_hash = coalesce($6, password_hash), attributes = coalesce($7, attributes), updated_at = now() \
         where tenant_id = $1 and id = $2 returning {USER_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(change.name)
    .bind(change.roles)
    .bind(change.active)
    .bind(change.password_hash)
    .bind(change.attributes.map(sqlx::types::Json))
    .fetch_optional(&mut *tx)
    .await
}

const API_KEY_COLUMNS: &str = "id, name, roles, created_at, created_by, revoked_at";

/// An API key as the API shows it: id, name, roles, created, by whom, revoked.
pub type ApiKeyRow = (Uuid, String, Vec<String>, DateTime<Utc>, String, Option<DateTime<Utc>>);

/// The API keys of a tenant, oldest first.
pub async fn list_api_keys(tx: &mut PgConnection, tenant: TenantId) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!("select {API_KEY_COLUMNS} from api_keys where tenant_id = $1 order by id"))
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await
}

/// Inserts an API key (`secret_hash`: see `secret::hash`).
pub async fn insert_api_key(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    name: &str,
    roles: &[String],
    secret_hash: &[u8],
    by: &str,
) -> Result<ApiKeyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "insert into api_keys (tenant_id, id, name, roles, secret_hash, created_by) values ($1, $2, $3, $4, $5, $6) \
         returning {API_KEY_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(name)
    .bind(roles)
    .bind(secret_hash)
    .bind(by)
    .fetch_one(&mut *tx)
    .await
}

/// Revokes an API key (again: no change); false when there is no such key.
pub async fn revoke_api_key(tx: &mut PgConnection, tenant: TenantId, id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<bool> = sqlx::query_scalar(
        "update api_keys set revoked_at = coalesce(revoked_at, now()) where tenant_id = $1 and id = $2 returning true",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(found.is_some())
}

// --- Invitations (migration 0011; see `super::invite`) -----------------------------------------

/// Deletes a user's invitations (a new one replaces them).
pub async fn delete_invitations(tx: &mut PgConnection, tenant: TenantId, user: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("delete from invitations where tenant_id = $1 and user_id = $2")
        .bind(tenant)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected())
}

/// Inserts an invitation valid for `days`; its expiry.
pub async fn insert_invitation(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    user: Uuid,
    secret_hash: &[u8],
    by: &str,
    days: i32,
) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into invitations (tenant_id, id, user_id, secret_hash, created_by, expires_at) \
         values ($1, $2, $3, $4, $5, now() + make_interval(days => $6)) returning expires_at",
    )
    .bind(tenant)
    .bind(id)
    .bind(user)
    .bind(secret_hash)
    .bind(by)
    .bind(days)
    .fetch_one(&mut *tx)
    .await
}

/// Whether an invitation can be accepted now: unspent, unexpired, its user active.
pub async fn invitation_usable(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    secret_hash: &[u8],
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from invitations i join users u on u.tenant_id = i.tenant_id and u.id = i.user_id \
         where i.tenant_id = $1 and i.id = $2 and i.secret_hash = $3 and i.used_at is null \
         and i.expires_at > now() and u.active)",
    )
    .bind(tenant)
    .bind(id)
    .bind(secret_hash)
    .fetch_one(&mut *tx)
    .await
}

/// Spends a usable invitation and sets its user's password, in one statement (so a token works
/// once, however many requests race): the user's id and email and the tenant's slug, `None`
/// when the invitation is not usable.
pub async fn accept_invitation(
    tx: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    secret_hash: &[u8],
    password_hash: &str,
) -> Result<Option<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "with spent as ( \
           update invitations i set used_at = now() \
           where i.tenant_id = $1 and i.id = $2 and i.secret_hash = $3 and i.used_at is null and i.expires_at > now() \
             and exists (select 1 from users u where u.tenant_id = i.tenant_id and u.id = i.user_id and u.active) \
           returning i.user_id) \
         update users u set password_hash = $4, updated_at = now() from spent \
         where u.tenant_id = $1 and u.id = spent.user_id \
         returning u.id, u.email, (select slug from tenants where id = $1)",
    )
    .bind(tenant)
    .bind(id)
    .bind(secret_hash)
    .bind(password_hash)
    .fetch_optional(&mut *tx)
    .await
}
