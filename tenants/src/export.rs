//! Reading published versions back out of the database, and writing one as a package folder.
//!
//! A version is stored as the package's canonical JSON (`config_versions.package`, kept as
//! `json` so key order survives). [`write_dir`] turns it back into `tenant.yaml` and
//! `types/<name>.yaml`; reading that folder with [`Package::load_dir`] gives a package with the
//! same [`Package::hash`], so re-applying an export publishes nothing new. Sample data is not
//! part of a version and is not exported; comments and YAML layout of the original files are
//! not kept either.
//!
//! The readers take any pool (the owner's in the CLI, the request role's in the API) and set the
//! tenant for row-level security in their own transaction.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use engine::limits::Limits;
use engine::store::{sql, TenantId, TenantSlug};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::PackageError;
use crate::package::Package;

/// What can go wrong reading stored versions.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("no tenant `{0}`")]
    NoSuchTenant(String),
    #[error("tenant `{0}` has no live version")]
    NoLiveVersion(String),
    #[error("tenant `{slug}` has no version {version}")]
    NoSuchVersion { slug: String, version: i64 },
    #[error(transparent)]
    Stored(#[from] PackageError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// What can go wrong writing a package folder.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("{0} already holds a package (tenant.yaml or types/); pass --force to overwrite it")]
    NotEmpty(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

/// One published version, without its package.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VersionInfo {
    pub version: i64,
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Whether this is the tenant's live version.
    pub live: bool,
    /// What the publisher said about the version, if anything.
    pub comment: Option<String>,
}

/// A published version and its package JSON exactly as stored.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub info: VersionInfo,
    pub package: Value,
}

impl StoredVersion {
    /// The package of this version.
    pub fn package(&self) -> Result<Package, PackageError> {
        Package::from_json(&self.package)
    }
}

/// A tenant's id by its slug.
pub async fn tenant_id(pool: &PgPool, slug: &TenantSlug) -> Result<Option<TenantId>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id = tenant_id_in(&mut tx, slug).await?;
    tx.commit().await?;
    Ok(id)
}

/// [`tenant_id`] inside a caller's transaction; also sets the tenant for row-level security when
/// found.
pub async fn tenant_id_in(
    tx: &mut Transaction<'static, Postgres>,
    slug: &TenantSlug,
) -> Result<Option<TenantId>, sqlx::Error> {
    let id = sql::tenant_by_slug(tx, slug).await?;
    if let Some(id) = id {
        sql::set_tenant(tx, id).await?;
    }
    Ok(id)
}

const VERSION_COLUMNS: &str =
    "v.version, v.hash, v.created_at, v.created_by, (t.live_version = v.version) as live, v.comment";

fn info_from_row(row: &sqlx::postgres::PgRow) -> Result<VersionInfo, sqlx::Error> {
    Ok(VersionInfo {
        version: row.try_get("version")?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        live: row.try_get::<Option<bool>, _>("live")?.unwrap_or(false),
        comment: row.try_get("comment")?,
    })
}

/// Every published version of a tenant, oldest first.
pub async fn versions(pool: &PgPool, tenant: TenantId) -> Result<Vec<VersionInfo>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sql::set_tenant(&mut tx, tenant).await?;
    let rows = sqlx::query(&format!(
        "select {VERSION_COLUMNS} from config_versions v join tenants t on t.id = v.tenant_id \
         where v.tenant_id = $1 order by v.version"
    ))
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter().map(info_from_row).collect()
}

/// One version of a tenant with its package (`None`: the live one). `Ok(None)` when there is no
/// such version (or no live version).
pub async fn version(
    pool: &PgPool,
    tenant: TenantId,
    version: Option<i64>,
) -> Result<Option<StoredVersion>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sql::set_tenant(&mut tx, tenant).await?;
    let found = version_in(&mut tx, tenant, version).await?;
    tx.commit().await?;
    Ok(found)
}

/// [`version`] inside a caller's transaction (tenant already set).
pub async fn version_in(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    version: Option<i64>,
) -> Result<Option<StoredVersion>, sqlx::Error> {
    // `package::text`: parsed here, so key order is exactly what was stored.
    let row = sqlx::query(&format!(
        "select {VERSION_COLUMNS}, v.package::text as package from config_versions v join tenants t on t.id = v.tenant_id \
         where v.tenant_id = $1 and v.version = coalesce($2, t.live_version)"
    ))
    .bind(tenant)
    .bind(version)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.try_get("package")?;
    let package = serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Some(StoredVersion { info: info_from_row(&row)?, package }))
}

/// The version of a tenant whose package has this hash, if one was published.
pub async fn version_by_hash(pool: &PgPool, tenant: TenantId, hash: &str) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sql::set_tenant(&mut tx, tenant).await?;
    let v = sqlx::query_scalar("select version from config_versions where tenant_id = $1 and hash = $2")
        .bind(tenant)
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(v)
}

/// A version of the tenant `slug` (`None`: the live one), with errors that name what is missing.
pub async fn load_version(
    pool: &PgPool,
    slug: &TenantSlug,
    version: Option<i64>,
) -> Result<StoredVersion, VersionError> {
    let tenant = tenant_id(pool, slug).await?.ok_or_else(|| VersionError::NoSuchTenant(slug.to_string()))?;
    self::version(pool, tenant, version).await?.ok_or_else(|| match version {
        Some(version) => VersionError::NoSuchVersion { slug: slug.to_string(), version },
        None => VersionError::NoLiveVersion(slug.to_string()),
    })
}

/// The files of a package folder: `(relative path, content)`, `tenant.yaml` first, then one
/// `types/<name>.yaml` per type in definition order, then one `decisions/<name>.yaml` per decision
/// table. `header` (e.g. where the export came from)
/// is written as a comment at the top of each file.
pub fn to_files(package: &Package, header: &str) -> Result<Vec<(PathBuf, String)>, ExportError> {
    let comment: String = header.lines().map(|l| format!("# {l}\n")).collect();
    let mut files = vec![(PathBuf::from("tenant.yaml"), yaml(&comment, &package.tenant)?)];
    for def in &package.types {
        files.push((Path::new("types").join(format!("{}.yaml", def.name.as_str())), yaml(&comment, def)?));
    }
    for def in &package.decisions {
        files.push((Path::new("decisions").join(format!("{}.yaml", def.name)), yaml(&comment, def)?));
    }
    Ok(files)
}

fn yaml<T: Serialize>(comment: &str, value: &T) -> Result<String, ExportError> {
    let body = serde_yaml_ng::to_string(value).map_err(|e| ExportError::Yaml(e.to_string()))?;
    Ok(format!("{comment}{body}"))
}

/// Writes `package` as a folder at `dir` (created if missing) and returns the files written.
///
/// A folder that already holds a package (`tenant.yaml` or `types/`) is refused unless `force`;
/// with `force`, `tenant.yaml` is overwritten and every `types/*.yaml` that the package does not
/// have is removed (so the folder re-applies to exactly this package). Other files (`data/`,
/// a README) are left alone.
pub fn write_dir(package: &Package, dir: &Path, header: &str, force: bool) -> Result<Vec<PathBuf>, ExportError> {
    let io =
        |path: &Path, e: std::io::Error| ExportError::Io { path: path.display().to_string(), message: e.to_string() };
    let types_dir = dir.join("types");
    if !force && (dir.join("tenant.yaml").exists() || types_dir.exists()) {
        return Err(ExportError::NotEmpty(dir.display().to_string()));
    }
    let files = to_files(package, header)?;
    std::fs::create_dir_all(&types_dir).map_err(|e| io(&types_dir, e))?;
    if force {
        let keep: Vec<PathBuf> = files.iter().map(|(rel, _)| dir.join(rel)).collect();
        for entry in std::fs::read_dir(&types_dir).map_err(|e| io(&types_dir, e))? {
            let path = entry.map_err(|e| io(&types_dir, e))?.path();
            let yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
            if yaml && !keep.contains(&path) {
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
        }
    }
    if !package.decisions.is_empty() {
        let decisions_dir = dir.join("decisions");
        std::fs::create_dir_all(&decisions_dir).map_err(|e| io(&decisions_dir, e))?;
    }
    let mut written = Vec::with_capacity(files.len());
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::write(&path, content).map_err(|e| io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// Validates a package that is not in a folder (e.g. one posted over HTTP): writes it to a
/// temporary folder and runs [`crate::validate::validate_dir`] over it, so the problems name the
/// files the package would have (`tenant.yaml`, `types/<name>.yaml`) and point into them.
///
/// The lines and columns of those temporary files mean nothing to whoever posted the package, so
/// messages do not give them (`line`/`column` inside scripts and templates stay).
pub fn validate_package(package: &Package, limits: &Limits) -> Result<crate::validate::Report, ExportError> {
    let dir = std::env::temp_dir().join(format!("switchyard-validate-{}", Uuid::new_v4().simple()));
    let result = write_dir(package, &dir, "", false).map(|_| crate::validate::validate_dir(&dir, limits));
    let _ = std::fs::remove_dir_all(&dir);
    let mut report = result?;
    for problem in &mut report.problems {
        let cut = without_file_position(&problem.message).len();
        problem.message.truncate(cut);
    }
    Ok(report)
}

/// `message` without a trailing ` (line L, column C)`, the position in a YAML file.
fn without_file_position(message: &str) -> &str {
    let Some(start) = message.rfind(" (line ") else { return message };
    let tail = &message[start + " (line ".len()..];
    let is_position = tail
        .strip_suffix(')')
        .and_then(|t| t.split_once(", column "))
        .is_some_and(|(l, c)| !l.is_empty() && !c.is_empty() && l.bytes().chain(c.bytes()).all(|b| b.is_ascii_digit()));
    if is_position {
        &message[..start]
    } else {
        message
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
    }

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("switchyard-export-{}", Uuid::new_v4().simple()))
    }

    #[test]
    fn decision_tables_export_and_load_back_with_the_same_hash() {
        let dir_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/decisions");
        let package = Package::load_dir(&dir_in).unwrap();
        assert_eq!(package.decisions.len(), 2);
        let stored = Package::from_json(&serde_json::from_str(&package.to_json().to_string()).unwrap()).unwrap();
        assert_eq!(stored.hash(), package.hash());
        let dir = temp_dir();
        let written = write_dir(&stored, &dir, "exported for a test", false).unwrap();
        assert!(written.iter().any(|p| p.ends_with("decisions/carrier.yaml")), "{written:?}");
        let back = Package::load_dir(&dir).unwrap();
        assert_eq!(back.hash(), package.hash());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_exported_package_loads_back_with_the_same_hash() {
        let package = Package::load_dir(&example("chemichemi")).unwrap();
        // Through the stored form, as an export from the database does.
        let stored = Package::from_json(&serde_json::from_str(&package.to_json().to_string()).unwrap()).unwrap();
        assert_eq!(stored.hash(), package.hash());
        let dir = temp_dir();
        let written = write_dir(&stored, &dir, "exported for a test", false).unwrap();
        assert_eq!(written.len(), 1 + package.types.len());
        let back = Package::load_dir(&dir).unwrap();
        assert_eq!(back.hash(), package.hash());
        assert!(back.data.is_empty());
        let tenant_yaml = std::fs::read_to_string(dir.join("tenant.yaml")).unwrap();
        assert!(tenant_yaml.starts_with("# exported for a test\n"), "{tenant_yaml}");

        // A second export needs --force, which also removes types the package no longer has.
        assert!(matches!(write_dir(&stored, &dir, "", false), Err(ExportError::NotEmpty(_))));
        std::fs::write(dir.join("types/stale.yaml"), "name: stale\nfields: {}\n").unwrap();
        write_dir(&stored, &dir, "", true).unwrap();
        assert!(!dir.join("types/stale.yaml").exists());
        assert_eq!(Package::load_dir(&dir).unwrap().hash(), package.hash());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_positions_survive_an_export() {
        let mut package = Package::load_dir(&example("chemichemi")).unwrap();
        let order = package.types.iter_mut().find(|t| t.name.as_str() == "order").unwrap();
        let states = order.workflow.as_mut().and_then(|w| w.get_mut("states")).and_then(|s| s.as_object_mut()).unwrap();
        let (first, state) = states.iter_mut().next().unwrap();
        let first = first.clone();
        state.as_object_mut().unwrap().insert("position".into(), serde_json::json!({"x": 120, "y": -40.5}));
        let stored = Package::from_json(&serde_json::from_str(&package.to_json().to_string()).unwrap()).unwrap();
        let dir = temp_dir();
        write_dir(&stored, &dir, "", false).unwrap();
        let yaml = std::fs::read_to_string(dir.join("types/order.yaml")).unwrap();
        assert!(yaml.contains("position:"), "{yaml}");
        let back = Package::load_dir(&dir).unwrap();
        assert_eq!(back.hash(), package.hash());
        let order = back.types.iter().find(|t| t.name.as_str() == "order").unwrap();
        let wf = engine::def::WorkflowDef::parse("order", order.workflow.as_ref()).unwrap();
        assert_eq!(wf.states[&first].position, Some(engine::def::Position { x: 120.0, y: -40.5 }));
        assert!(!crate::validate::validate_dir(&dir, &Limits::default()).has_errors());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn posted_packages_get_no_positions_of_temporary_files() {
        assert_eq!(
            without_file_position("unknown field `x`, expected `a` (line 5, column 26)"),
            "unknown field `x`, expected `a`"
        );
        assert_eq!(without_file_position("template (in title:1)"), "template (in title:1)");
        assert_eq!(without_file_position("text (line x, column 2)"), "text (line x, column 2)");
        let mut package = Package::load_dir(&example("chemichemi")).unwrap();
        let order = package.types.iter_mut().find(|t| t.name.as_str() == "order").unwrap();
        order.workflow.as_mut().unwrap()["colour"] = serde_json::json!("red");
        let report = validate_package(&package, &Limits::default()).unwrap();
        let problem = report.errors().next().unwrap();
        assert_eq!((problem.file.as_str(), problem.path.as_str()), ("types/order.yaml", "/workflow/colour"));
        assert!(
            problem.message.starts_with("unknown field `colour`") && !problem.message.contains("line"),
            "{problem}"
        );
    }

    #[test]
    fn a_package_validates_without_a_folder() {
        let mut package = Package::load_dir(&example("chemichemi")).unwrap();
        let report = validate_package(&package, &Limits::default()).unwrap();
        assert!(!report.has_errors(), "{report}");
        package.tenant.roles.shift_remove("driver");
        let report = validate_package(&package, &Limits::default()).unwrap();
        assert!(report.errors().any(|p| p.file.starts_with("types/") && p.message.contains("driver")), "{report}");
    }
}
