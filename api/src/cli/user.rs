//! `switchyard user …`: a tenant's users from the server's machine, for the operator.
//!
//! `user invite --tenant SLUG --email E [--roles admin,…] [--name N]` creates the user if there
//! is none with that email (then `--roles` is required; roles must be the live version's), sets
//! the roles of an existing one when `--roles` is given, and prints a new invitation token as
//! the last line of its output: single use, valid [`INVITE_TTL_DAYS`] days, replacing the user's
//! earlier invitations. The user sets a password with it at `POST /api/v1/auth/accept-invite`.
//! This is how a tenant published with `tenant apply` gets its first admin.

use clap::Subcommand;
use engine::store::TenantSlug;

use crate::auth::invite::{self, INVITE_TTL_DAYS};
use crate::auth::sql::{self, NewUser, UserChange};
use crate::cli::tenant::Output;
use crate::config::Config;
use crate::db::Database;

/// Why a `switchyard user` command failed (exit code 1; the binary prints it on stderr).
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("no tenant `{0}`")]
    NoTenant(String),
    #[error(transparent)]
    Slug(#[from] engine::names::NameError),
    #[error("tenant `{0}` has no live version (apply its package first)")]
    NoLiveVersion(String),
    #[error("`{0}` is not an email address")]
    Email(String),
    #[error("no user `{0}` yet: give --roles to create them")]
    RolesRequired(String),
    #[error("unknown role(s) {unknown:?}; the roles of tenant `{tenant}` are {known:?}")]
    UnknownRoles { tenant: String, unknown: Vec<String>, known: Vec<String> },
    #[error("user `{0}` is deactivated; activate them first")]
    Deactivated(String),
    #[error("a user `{0}` was created meanwhile; run the command again")]
    Raced(String),
}

/// Who the CLI's invitations are by (`invitations.created_by`).
pub const CLI_ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create the user if needed and print a single-use invitation token (its last line), with
    /// which the user sets a password (`POST /api/v1/auth/accept-invite`).
    Invite {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The user's email (case-insensitive; a user with it is invited, else created).
        #[arg(long)]
        email: String,
        /// Roles, comma-separated (required when the user does not exist yet; replaces the
        /// roles of an existing user).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// The user's name (for a new user).
        #[arg(long, default_value = "")]
        name: String,
    },
}

/// Runs a command and returns what it would print (tests call this).
pub async fn execute(cfg: &Config, command: UserCommand) -> Result<Output, UserError> {
    let UserCommand::Invite { tenant, email, roles, name } = command;
    let slug = TenantSlug::parse(&tenant)?;
    let db = Database::open(cfg).await?;
    let result = invite_user(&db, &slug, &email, &roles, &name).await;
    db.close().await?;
    result
}

async fn invite_user(
    db: &Database,
    slug: &TenantSlug,
    email: &str,
    roles: &[String],
    name: &str,
) -> Result<Output, UserError> {
    let email = email.trim();
    if !matches!(email.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'))
        || email.chars().any(char::is_whitespace)
    {
        return Err(UserError::Email(email.to_string()));
    }
    let roles: Vec<String> = roles.iter().map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect();
    let (tenant, existing) =
        sql::user_by_email(&db.owner, slug, email).await?.ok_or_else(|| UserError::NoTenant(slug.to_string()))?;
    let mut tx = db.owner.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    if !roles.is_empty() {
        let mut known = sql::tenant_roles(&mut tx, tenant).await?;
        if known.is_empty() {
            return Err(UserError::NoLiveVersion(slug.to_string()));
        }
        known.sort();
        let unknown: Vec<String> = roles.iter().filter(|r| !known.contains(r)).cloned().collect();
        if !unknown.is_empty() {
            return Err(UserError::UnknownRoles { tenant: slug.to_string(), unknown, known });
        }
    }
    let (user, what, roles) = match existing {
        Some(u) if !u.active => return Err(UserError::Deactivated(u.email)),
        Some(u) if roles.is_empty() => (u.id, "existing user", u.roles),
        Some(u) => {
            let change = UserChange {
                name: None,
                roles: Some(roles.clone()),
                active: None,
                password_hash: &None,
                attributes: None,
            };
            sql::update_user(&mut tx, tenant, u.id, change).await?;
            (u.id, "existing user, roles set", roles)
        }
        None if roles.is_empty() => return Err(UserError::RolesRequired(email.to_string())),
        None => {
            let new = NewUser {
                email,
                name: name.trim(),
                roles: &roles,
                active: true,
                password_hash: None,
                attributes: &Default::default(),
            };
            // The email was free a moment ago; a user created since is a conflict to report.
            let row =
                sql::insert_user(&mut tx, tenant, new).await?.ok_or_else(|| UserError::Raced(email.to_string()))?;
            (row.0, "new user", roles)
        }
    };
    let invitation = invite::create(&mut tx, tenant, user, CLI_ACTOR).await?;
    tx.commit().await?;
    let stdout = format!(
        "Invited {email} to {slug} ({what}; roles: {}).\n\
         Valid {INVITE_TTL_DAYS} days (until {}), once; an earlier invitation of {email} no longer works.\n\
         The user sets a password with: POST /api/v1/auth/accept-invite {{\"token\": \"<the token>\", \"password\": \"…\"}}\n\
         {}\n",
        roles.join(", "),
        invitation.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        invitation.token,
    );
    Ok(Output { code: 0, stdout })
}
