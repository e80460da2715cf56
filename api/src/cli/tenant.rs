//! `switchyard tenant …`: package commands for consultants.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use engine::limits::Limits;

use crate::config::Config;
use crate::db::Database;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Check package folders; print every problem with its file and path (exit 1 on errors).
    Validate { dirs: Vec<PathBuf> },
    /// Publish a package folder as the tenant's new live version.
    Apply { dir: PathBuf },
}

pub async fn run(cfg: Config, command: TenantCommand) -> anyhow::Result<ExitCode> {
    match command {
        TenantCommand::Validate { dirs } => Ok(validate(&dirs)),
        TenantCommand::Apply { dir } => {
            apply(cfg, &dir).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints every problem of each package (`<severity>: <dir>/<file>: <pointer>: <message>`),
/// then one summary line per package; fails if any package has an error (warnings do not fail).
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

async fn apply(cfg: Config, dir: &Path) -> anyhow::Result<()> {
    let package = tenants::Package::load_dir(dir)
        .map_err(|errs| anyhow::anyhow!(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")))?;
    let db = Database::open(&cfg).await?;
    let result = tenants::apply::publish(&db.owner, &package, "cli", &Limits::default()).await;
    db.close().await?;
    let applied = result?;
    println!(
        "{}: version {} ({})",
        applied.slug,
        applied.version,
        if applied.new_version { "published" } else { "unchanged" }
    );
    Ok(())
}
