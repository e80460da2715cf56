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

fn validate(dirs: &[PathBuf]) -> ExitCode {
    let limits = Limits::default();
    let mut failed = false;
    for dir in dirs {
        let result = tenants::Package::load_dir(dir).and_then(|p| tenants::compile::compile(&p, &limits).map(|_| p));
        match result {
            Ok(p) => println!("{}: ok ({} types)", dir.display(), p.types.len()),
            Err(errors) => {
                failed = true;
                for e in &errors {
                    println!("error: {e}");
                }
                println!("{}: {} error(s)", dir.display(), errors.len());
            }
        }
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
