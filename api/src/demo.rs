//! `serve --demo`: publish `examples/chemichemi`, create its dev users (password
//! [`DEMO_PASSWORD`]) and load its sample data, idempotently.

use std::path::{Path, PathBuf};

use engine::limits::Limits;
use engine::store::Store;
use sqlx::PgPool;
use tenants::Package;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "cannot find the examples folder (looked for {0}); run from the repository root or set SWITCHYARD_EXAMPLES"
    )]
    NoExamples(String),
    #[error("{0}: {1}")]
    Package(String, String),
    #[error(transparent)]
    Apply(#[from] tenants::ApplyError),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error(transparent)]
    Password(#[from] crate::auth::password::HashError),
}

/// The password of every demo user (only with `serve --demo`; never in production).
pub const DEMO_PASSWORD: &str = "switchyard-demo";

/// Where the example packages are: `SWITCHYARD_EXAMPLES`, else `./examples`, else next to the
/// workspace the binary was built from.
pub fn examples_dir() -> Result<PathBuf, DemoError> {
    if let Ok(dir) = std::env::var("SWITCHYARD_EXAMPLES") {
        return Ok(PathBuf::from(dir));
    }
    let local = PathBuf::from("examples");
    if local.join("chemichemi").is_dir() {
        return Ok(local);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    if built.join("chemichemi").is_dir() {
        return Ok(built);
    }
    Err(DemoError::NoExamples(local.display().to_string()))
}

/// What the demo set up, for the banner.
#[derive(Debug)]
pub struct DemoTenant {
    pub slug: String,
    pub version: i64,
    pub users: Vec<(String, Vec<String>)>,
    pub rows: usize,
    /// The package's first type, for the banner's example request.
    pub first_type: String,
}

pub async fn apply_examples(
    owner: &PgPool,
    store: &Store,
    limits: &Limits,
    destinations: &crate::workers::destination::Destinations,
) -> Result<Vec<DemoTenant>, DemoError> {
    let dir = examples_dir()?;
    // Hashed once (argon2id is slow on purpose) and given to every demo user.
    let demo_hash = crate::auth::password::hash(DEMO_PASSWORD).await?;
    let mut out = Vec::new();
    // Every package under examples/, in name order.
    let mut packages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|_| DemoError::NoExamples(dir.display().to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("tenant.yaml").is_file())
        .collect();
    packages.sort();
    for path in packages {
        let package = Package::load_dir(&path).map_err(|errs| {
            DemoError::Package(
                path.display().to_string(),
                errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
            )
        })?;
        let applied = crate::publish::publish(owner, &package, "demo", None, limits, destinations).await?;
        tenants::apply::upsert_users(owner, applied.tenant, &package.tenant.users, Some(&demo_hash)).await?;
        let rows = tenants::apply::load_sample_data(owner, store, applied.tenant, &package).await?;
        out.push(DemoTenant {
            slug: applied.slug,
            version: applied.version,
            users: package.tenant.users.iter().map(|u| (u.email.clone(), u.roles.clone())).collect(),
            rows,
            first_type: package.types.first().map(|t| t.name.as_str().to_string()).unwrap_or_default(),
        });
    }
    Ok(out)
}
