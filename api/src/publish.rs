//! Publishing a package from the server's side: the tenants crate publishes the version; the
//! parts that belong to the server (the package's webhooks, whose secrets come from this
//! server's environment) are resolved before and written after. Used by the CLI, the config API
//! and the demo alike.

use engine::limits::Limits;
use sqlx::PgPool;
use tenants::apply::Applied;
use tenants::Package;

use crate::workers::destination::Destinations;
use crate::workers::webhooks::{apply_package_webhooks, resolve_package_webhooks, PackageWebhookError};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Apply(#[from] tenants::ApplyError),
    #[error(transparent)]
    Webhook(#[from] PackageWebhookError),
}

/// Publishes `package` (only if it validates and its webhooks resolve) and makes its webhooks
/// the tenant's package webhooks. `comment`: what the publisher says about the version.
pub async fn publish(
    owner: &PgPool,
    package: &Package,
    by: &str,
    comment: Option<&str>,
    limits: &Limits,
    destinations: &Destinations,
) -> Result<Applied, PublishError> {
    let hooks = resolve_package_webhooks(&package.tenant.slug, &package.tenant.webhooks, destinations).await?;
    let applied = tenants::apply::publish_commented(owner, package, by, comment, limits).await?;
    apply_package_webhooks(owner, applied.tenant, &hooks, destinations).await?;
    Ok(applied)
}
