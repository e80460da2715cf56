//! `switchyard tenant …`: the configuration lifecycle of a tenant package, for consultants.
//!
//! | command | what | exit code |
//! | --- | --- | --- |
//! | `validate DIR…` | static checks, every problem with file and path | 1 on errors |
//! | `plan DIR [--tenant SLUG] [--json]` | the diff against the live version, its impact on live entities, the unique indexes apply builds (and the duplicates refusing them), the entities left pinned to older versions and the `migrate` command | 0 no change, 2 changes, 1 error |
//! | `apply DIR [--comment TEXT]` | validate, print the plan, publish a new immutable version (with the comment the versions list shows) | 0, 1 on error |
//! | `versions SLUG` | the published versions (`*` marks the live one) | 0 |
//! | `migrate SLUG --to V [--state-map OLD=NEW,…] [--dry-run] [--json]` | move in-flight entities to version V (see `tenants::migrate`) | 0 all moved, 2 some cannot move, 1 error |
//! | `export SLUG DIR [--version V] [--force]` | write a version back as a package folder | 0, 1 on error |
//!
//! Commands that need the database use `DATABASE_URL`, or the embedded cluster of
//! `$SWITCHYARD_HOME` (connecting to it while a server runs, starting it otherwise).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use engine::limits::Limits;
use engine::store::TenantSlug;
use tenants::migrate::{Options as MigrateOptions, StateMap};
use tenants::Package;

use crate::config::Config;
use crate::db::Database;

/// Why a `switchyard tenant` command failed (exit code 1; the binary prints it on stderr).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{dir} does not validate ({count} error(s)):\n{errors}")]
    Invalid { dir: String, count: usize, errors: String },
    #[error("{0}")]
    Package(String),
    #[error("no tenant `{0}`")]
    NoTenant(String),
    #[error(transparent)]
    Slug(#[from] engine::names::NameError),
    #[error(transparent)]
    Version(#[from] tenants::export::VersionError),
    #[error(transparent)]
    Export(#[from] tenants::export::ExportError),
    #[error(transparent)]
    Stored(#[from] tenants::PackageError),
    #[error(transparent)]
    Migrate(#[from] tenants::migrate::MigrateError),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("the package's tests fail; nothing was published (`--skip-tests` publishes anyway, and the version records it):\n{0}")]
    TestsFailed(String),
    #[error(transparent)]
    Apply(#[from] tenants::ApplyError),
    #[error(transparent)]
    TestRun(#[from] super::package_test::TestRunError),
    #[error("the exported folder does not read back: {0}")]
    ExportUnreadable(String),
    #[error("the exported folder does not reproduce version {version} (hash {got} instead of {want})")]
    ExportHash { version: i64, got: String, want: String },
}

/// The actor of the CLI's writes (version `created_by`, migration history rows).
pub const CLI_ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Check package folders; print every problem with its file and path (exit 1 on errors).
    Validate { dirs: Vec<PathBuf> },
    /// Show what applying a package folder would change against the tenant's live version, and
    /// which live entities it affects. Exit code 0: no change, 2: changes, 1: error.
    Plan {
        dir: PathBuf,
        /// Do not run the package's tests first.
        #[arg(long)]
        skip_tests: bool,
        /// Plan against this tenant (default: the slug in the package's tenant.yaml).
        #[arg(long)]
        tenant: Option<String>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate a package folder, run its tests, print its plan, and publish it as the tenant's
    /// new live version (refused when a test fails, unless `--skip-tests`).
    Apply {
        dir: PathBuf,
        /// Publish even though the package's tests fail (or without running them); the version
        /// records that its tests were skipped.
        #[arg(long)]
        skip_tests: bool,
        /// What this version changes, shown with it in the versions list (the CLI's and the
        /// studio's); kept on a new version only.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Run the package's own tests (`tests/*.yaml`) against a throwaway database with the
    /// production engine. Exit code 0: all passed, 1: a test failed or an error.
    Test {
        dir: PathBuf,
        /// Also write the results as JUnit XML to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write skeleton scenarios from the workflows to `tests/<type>.generated.yaml` (one path
        /// to every transition, each guard's refusal) instead of running the tests; existing
        /// files are left alone.
        #[arg(long)]
        generate: bool,
    },
    /// List a tenant's published versions (`*` marks the live one).
    Versions { slug: String },
    /// Move in-flight entities (pinned to an earlier version, not in a terminal state) to a
    /// version. Exit code 0: all moved, 2: some cannot move (listed, left untouched), 1: error.
    Migrate {
        slug: String,
        /// The version to move entities to.
        #[arg(long)]
        to: i64,
        /// States to rename: `OLD=NEW` (any type) or `type.OLD=NEW`, comma-separated or repeated.
        /// A type or NEW state the target version does not have is an error (exit 1).
        #[arg(long = "state-map", value_name = "OLD=NEW,…")]
        state_map: Vec<String>,
        /// Report what would happen to each entity; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a tenant's live version (or `--version`) back as a package folder.
    Export {
        slug: String,
        dir: PathBuf,
        #[arg(long)]
        version: Option<i64>,
        /// Overwrite a folder that already holds a package (removing type files it no longer has).
        #[arg(long)]
        force: bool,
    },
}

/// What a command printed on stdout and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: u8,
    pub stdout: String,
}

impl Output {
    fn ok(stdout: String) -> Output {
        Output { code: 0, stdout }
    }
}

pub async fn run(cfg: Config, command: TenantCommand) -> Result<ExitCode, CliError> {
    match command {
        TenantCommand::Validate { dirs } => Ok(validate(&dirs)),
        other => {
            let out = execute(&cfg, other).await?;
            print!("{}", out.stdout);
            Ok(ExitCode::from(out.code))
        }
    }
}

/// Runs a command and returns what it would print (tests call this; `run` prints it). An error
/// is exit code 1 (the binary prints it on stderr).
pub async fn execute(cfg: &Config, command: TenantCommand) -> Result<Output, CliError> {
    let limits = Limits::default();
    match command {
        TenantCommand::Validate { dirs } => {
            let code = if validate(&dirs) == ExitCode::SUCCESS { 0 } else { 1 };
            Ok(Output { code, stdout: String::new() })
        }
        TenantCommand::Plan { dir, tenant, json, skip_tests } => {
            let package = load_valid(&dir, &limits)?;
            let tests = if skip_tests { None } else { run_tests(cfg, &dir, &package).await? };
            if let Some(report) = tests.as_ref().filter(|r| r.failed() > 0) {
                return Ok(Output {
                    code: 1,
                    stdout: format!(
                        "{}\nThe package's tests fail: fix them before publishing (or --skip-tests).\n",
                        report.text()
                    ),
                });
            }
            let slug = TenantSlug::parse(tenant.as_deref().unwrap_or(&package.tenant.slug))?;
            let plan = with_db(cfg, async |db| Ok(tenants::plan::plan(&db.owner, &slug, &package).await?)).await?;
            let mut stdout = if json { format!("{}\n", serde_json::to_string_pretty(&plan)?) } else { plan.text() };
            if let (Some(report), false) = (&tests, json) {
                stdout.push_str(&format!("\nTests: {} scenario(s) passed.\n", report.passed()));
            }
            Ok(Output { code: if plan.changed { 2 } else { 0 }, stdout })
        }
        TenantCommand::Apply { dir, skip_tests, comment } => {
            let package = load_valid(&dir, &limits)?;
            let slug = TenantSlug::parse(&package.tenant.slug)?;
            let tests = if skip_tests { None } else { run_tests(cfg, &dir, &package).await? };
            if let Some(report) = tests.as_ref().filter(|r| r.failed() > 0) {
                return Err(CliError::TestsFailed(report.text()));
            }
            let has_tests = !tenants::testing::load(&dir).map(|f| f.is_empty()).unwrap_or(true);
            let record = match &tests {
                Some(r) => Some(tenants::apply::TestRecord { passed: r.passed(), failed: r.failed(), skipped: false }),
                None if has_tests => Some(tenants::apply::TestRecord { passed: 0, failed: 0, skipped: true }),
                None => None,
            };
            with_db(cfg, async |db| {
                let plan = tenants::plan::plan(&db.owner, &slug, &package).await?;
                // Refused though valid (an append-only type losing its marking): say why.
                if !plan.refused.is_empty() {
                    let errors: Vec<String> = plan.refused.iter().map(|p| format!("error: {p}")).collect();
                    return Err(CliError::Invalid {
                        dir: dir.display().to_string(),
                        count: errors.len(),
                        errors: errors.join("\n"),
                    });
                }
                let destinations = crate::state::Ops::new(crate::config::OpsConfig::from_env()?).destinations();
                let applied =
                    crate::publish::publish(&db.owner, &package, CLI_ACTOR, comment.as_deref(), &limits, &destinations)
                        .await?;
                if let Some(record) = &record {
                    tenants::apply::record_tests(&db.owner, applied.tenant, applied.version, record).await?;
                }
                let mut out = String::new();
                if let Some(r) = &tests {
                    out.push_str(&r.text());
                    out.push('\n');
                } else if has_tests {
                    out.push_str("Tests: skipped (--skip-tests); the version records it.\n\n");
                }
                out.push_str(&plan.text());
                out.push_str(&format!(
                    "\n{}: version {} (hash {}) {}.\n",
                    applied.slug,
                    applied.version,
                    short(&applied.hash),
                    if applied.new_version { "published and live" } else { "already published; it is live" }
                ));
                Ok(Output::ok(out))
            })
            .await
        }
        TenantCommand::Test { dir, junit, generate } => {
            let package = load_valid(&dir, &limits)?;
            if generate {
                return generate_tests(&dir, &package);
            }
            let Some(report) = run_tests(cfg, &dir, &package).await? else {
                return Ok(Output::ok(format!(
                    "{}: no tests (tests/*.yaml); `--generate` writes skeletons\n",
                    dir.display()
                )));
            };
            if let Some(path) = junit {
                let xml = report.junit(&package.tenant.slug)?;
                std::fs::write(&path, xml).map_err(|e| CliError::Package(format!("{}: {e}", path.display())))?;
            }
            Ok(Output { code: if report.failed() > 0 { 1 } else { 0 }, stdout: report.text() })
        }
        TenantCommand::Versions { slug } => {
            let slug = TenantSlug::parse(&slug)?;
            with_db(cfg, async |db| {
                let tenant = tenants::export::tenant_id(&db.owner, &slug)
                    .await?
                    .ok_or_else(|| CliError::NoTenant(slug.to_string()))?;
                let versions = tenants::export::versions(&db.owner, tenant).await?;
                let mut out = format!("  {:>7}  {:<12}  {:<25}  {}\n", "VERSION", "HASH", "CREATED AT", "CREATED BY");
                for v in &versions {
                    out.push_str(&format!(
                        "{} {:>7}  {:<12}  {:<25}  {}\n",
                        if v.live { '*' } else { ' ' },
                        v.version,
                        short(&v.hash),
                        v.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        v.created_by
                    ));
                    if let Some(comment) = &v.comment {
                        out.push_str(&format!("           {comment}\n"));
                    }
                }
                Ok(Output::ok(out))
            })
            .await
        }
        TenantCommand::Migrate { slug, to, state_map, dry_run, json } => {
            let slug = TenantSlug::parse(&slug)?;
            let opts = MigrateOptions {
                to,
                state_map: StateMap::parse(&state_map)?,
                dry_run,
                actor: CLI_ACTOR.to_string(),
                actor_email: String::new(),
            };
            let report =
                with_db(cfg, async |db| Ok(tenants::migrate::migrate(&db.owner, &slug, &opts, &limits).await?)).await?;
            let stdout = if json { format!("{}\n", serde_json::to_string_pretty(&report)?) } else { report.text() };
            Ok(Output { code: if report.cannot_move > 0 { 2 } else { 0 }, stdout })
        }
        TenantCommand::Export { slug, dir, version, force } => {
            let slug = TenantSlug::parse(&slug)?;
            let stored =
                with_db(cfg, async |db| Ok(tenants::export::load_version(&db.owner, &slug, version).await?)).await?;
            export(&stored, &dir, force)
        }
    }
}

/// Opens the database, runs `f`, and closes it (stopping the embedded cluster if this process
/// started it) whatever `f` returned.
async fn with_db<T>(cfg: &Config, f: impl AsyncFnOnce(&Database) -> Result<T, CliError>) -> Result<T, CliError> {
    let db = Database::open(cfg).await?;
    let result = f(&db).await;
    db.close().await?;
    result
}

/// Reads a package folder that validates (warnings go to stderr); every error otherwise.
fn load_valid(dir: &Path, limits: &Limits) -> Result<Package, CliError> {
    let report = tenants::validate::validate_dir(dir, limits);
    for warning in report.warnings() {
        eprintln!("{warning}");
    }
    if report.has_errors() {
        let errors: Vec<String> = report.errors().map(ToString::to_string).collect();
        return Err(CliError::Invalid {
            dir: dir.display().to_string(),
            count: errors.len(),
            errors: errors.join("\n"),
        });
    }
    Package::load_dir(dir).map_err(|errs| {
        CliError::Package(format!(
            "{}:\n{}",
            dir.display(),
            errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        ))
    })
}

/// Runs the package's tests (`None` when it has none). `load_valid` has checked them.
async fn run_tests(
    cfg: &Config,
    dir: &Path,
    package: &Package,
) -> Result<Option<super::package_test::Report>, CliError> {
    let files = tenants::testing::load(dir)
        .map_err(|errs| CliError::Package(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))?;
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(super::package_test::run(cfg, dir, package, &files).await?))
}

/// `tenant test --generate`: skeleton scenarios per type, never over an existing file.
fn generate_tests(dir: &Path, package: &Package) -> Result<Output, CliError> {
    let tests = dir.join("tests");
    std::fs::create_dir_all(&tests).map_err(|e| CliError::Package(format!("{}: {e}", tests.display())))?;
    let mut out = String::new();
    for (name, text) in tenants::testing::generate(package) {
        let path = tests.join(&name);
        if path.exists() {
            out.push_str(&format!("  kept     {} (it exists)\n", path.display()));
            continue;
        }
        std::fs::write(&path, text).map_err(|e| CliError::Package(format!("{}: {e}", path.display())))?;
        out.push_str(&format!("  written  {}\n", path.display()));
    }
    out.push_str("Fill in the TODOs, then `switchyard tenant test` runs them.\n");
    Ok(Output::ok(out))
}

/// Writes a stored version as a folder and checks that the folder reads back to the same hash.
fn export(stored: &tenants::export::StoredVersion, dir: &Path, force: bool) -> Result<Output, CliError> {
    let package = stored.package()?;
    let info = &stored.info;
    let header = format!(
        "Exported by `switchyard tenant export` from tenant {}, version {} (hash {}).\n\
         Comments and sample data (data/) are not part of a version and are not exported.",
        package.tenant.slug,
        info.version,
        short(&info.hash)
    );
    let written = tenants::export::write_dir(&package, dir, &header, force)?;
    let back = Package::load_dir(dir).map_err(|errs| {
        CliError::ExportUnreadable(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    })?;
    if back.hash() != info.hash {
        return Err(CliError::ExportHash { version: info.version, got: back.hash(), want: info.hash.clone() });
    }
    Ok(Output::ok(format!(
        "{}: version {} (hash {}) written to {} ({} files).\n",
        package.tenant.slug,
        info.version,
        short(&info.hash),
        dir.display(),
        written.len()
    )))
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn validate(dirs: &[PathBuf]) -> ExitCode {
    let limits = Limits::default();
    let mut failed = false;
    for dir in dirs {
        let report = tenants::validate::validate_dir(dir, &limits);
        for problem in &report.problems {
            let mut problem = problem.clone();
            if !problem.file.is_empty() {
                problem.file = dir.join(&problem.file).display().to_string();
            }
            println!("{problem}");
        }
        let (errors, warnings) = (report.errors().count(), report.warnings().count());
        failed |= errors > 0;
        let summary = match (errors, warnings) {
            (0, 0) => "ok".to_string(),
            (0, w) => format!("ok, {w} warning(s)"),
            (e, w) => format!("{e} error(s), {w} warning(s)"),
        };
        println!("{}: {summary}", dir.display());
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
