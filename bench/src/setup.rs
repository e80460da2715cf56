//! The benchmark's world: a private temp folder holding its own embedded cluster
//! (`SWITCHYARD_HOME`) and pgbench's files, the bench package published as tenant `bench`, the
//! meters every client works on, and the API served in-process on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use api::auth::Keys;
use api::config::Config;
use api::db::Database;
use api::state::AppState;
use engine::limits::Limits;
use engine::model::Actor;
use engine::store::{CreateOptions, Store, TenantId};
use serde_json::json;
use tenants::Package;
use uuid::Uuid;

use crate::load::Target;

/// Meters per client: each client cycles over its own.
pub const ENTITIES_PER_CLIENT: usize = 4;

/// Which path a set of meters belongs to (one set each, so no path works on rows another
/// path has bloated: until 2026-12-04 `serve` and the floor worked on the in-process HTTP
/// path's meters, just after it had updated each of them a few hundred times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    Engine = 1,
    Http = 2,
    Pgbench = 3,
    Serve = 4,
    Floor = 5,
}

impl Set {
    pub const ALL: [Set; 5] = [Set::Engine, Set::Http, Set::Pgbench, Set::Serve, Set::Floor];
}

impl Set {
    /// `00000000-0000-4000-800<set>-`: the meter ids of a set are this prefix and the meter's
    /// number in 12 decimal digits, a form the pgbench script can build in SQL.
    pub fn id_prefix(self) -> String {
        format!("00000000-0000-4000-8{:03}-", self as u8)
    }

    pub fn id(self, n: usize) -> Result<Uuid> {
        let text = format!("{}{n:012}", self.id_prefix());
        Uuid::parse_str(&text).with_context(|| format!("meter id {text}"))
    }
}

/// A temp folder removed on drop (the cluster in it must be stopped first).
#[derive(Debug)]
pub struct WorkDir {
    pub path: PathBuf,
}

impl WorkDir {
    /// A fresh folder under the system temp dir: short, so the cluster's socket path fits.
    pub fn create() -> Result<WorkDir> {
        let base = std::env::temp_dir();
        for _ in 0..10 {
            let path = base.join(format!("switchyard-bench-{}-{:08x}", std::process::id(), rand::random::<u32>()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(WorkDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(anyhow!("cannot create a temp folder under {}", base.display()))
    }

    /// `SWITCHYARD_HOME` of the benchmark's cluster.
    pub fn home(&self) -> PathBuf {
        self.path.join("home")
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::env::var_os("BENCH_KEEP").is_some() {
            eprintln!("bench: keeping {}", self.path.display());
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("bench: could not remove {}: {e}", self.path.display());
        }
    }
}

/// Starts the embedded cluster under `home` and migrates it (the server's own code path).
pub async fn open_database(home: &Path, pool_size: u32) -> Result<Database> {
    // The server's settings, except where the database is: always our own cluster.
    let mut cfg = Config::from_env().context("reading the server settings")?;
    cfg.home = home.to_path_buf();
    cfg.database_url = None;
    cfg.app_database_url = None;
    cfg.pool_size = pool_size;
    Database::open(&cfg).await.context("starting the embedded cluster")
}

/// The published bench tenant and its operator.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub version: i64,
    pub actor: Actor,
}

/// Publishes `bench/package`, creates its users, loads its sample data (none), and creates
/// `per_set` meters in each [`Set`].
pub async fn publish(db: &Database, store: &Store, package_dir: &Path, per_set: usize) -> Result<Tenant> {
    let limits = Limits::default();
    let package = Package::load_dir(package_dir).map_err(|errs| {
        anyhow!("{}: {}", package_dir.display(), errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    let applied = tenants::apply::publish(&db.owner, &package, "bench", &limits).await?;
    tenants::apply::upsert_users(&db.owner, applied.tenant, &package.tenant.users, None).await?;
    tenants::apply::load_sample_data(&db.owner, store, applied.tenant, &package).await?;
    let tenant = applied.tenant;

    let actor = operator(db, tenant, &package).await?;

    for set in Set::ALL {
        for n in 0..per_set {
            store
                .create_entity(
                    tenant,
                    "meter",
                    json!({ "name": format!("meter {}/{n}", set as u8) }),
                    &actor,
                    CreateOptions { id: Some(set.id(n)?), ..CreateOptions::default() },
                )
                .await
                .with_context(|| format!("creating meter {}/{n}", set as u8))?;
        }
    }
    Ok(Tenant { id: tenant, slug: applied.slug, version: applied.version, actor })
}

/// Each client's meters of a set (client `c` owns meters `c * ENTITIES_PER_CLIENT ..`), with
/// the transition's path for HTTP.
pub fn targets(set: Set, clients: usize, slug: &str) -> Result<Vec<Vec<Target>>> {
    (0..clients)
        .map(|c| {
            (0..ENTITIES_PER_CLIENT)
                .map(|k| {
                    let id = set.id(c * ENTITIES_PER_CLIENT + k)?;
                    let path = format!("/api/v1/t/{slug}/entities/meter/{id}/transitions/record");
                    Ok(Target { id, path })
                })
                .collect()
        })
        .collect()
}

/// The API served on 127.0.0.1 (a free port) in this process, exactly as `switchyard serve`
/// serves it; stopped when dropped.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub keys: Keys,
    task: tokio::task::JoinHandle<()>,
    listener: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        self.listener.abort();
    }
}

impl Server {
    /// Serves the router as `serve` does (its operational settings from the environment, the
    /// client address as connect info), except that the per-user and per-IP rate limits are off:
    /// the load test is one user sending far more than the default 100 requests/s on purpose.
    /// Of the workers `serve` runs beside the router only the listener is started (it keeps the
    /// credential cache exact, and the cache is used only while it listens); the outbox relay,
    /// webhook deliveries and timers are not.
    pub async fn start(store: Store, db: &Database) -> Result<Server> {
        let secret: [u8; 32] = rand::random();
        let keys = Keys::from_secret(&secret);
        let mut ops = api::config::OpsConfig::from_env().context("reading the server's operational settings")?;
        ops.rate_limit_user = None;
        ops.rate_limit_ip = None;
        // One tenant is the whole load here: it may use the whole pool, as a deployment serving
        // one tenant would set it (the default share, half the pool, is for many tenants; the
        // overload benchmark measures it). At the default, 32 clients of one tenant queue at
        // its gate of 16, ~15 µs of CPU per request in wake-ups that pgbench does not pay.
        ops.tenant_in_flight = Some(store.pool().options().get_max_connections());
        let ops = api::state::Ops::new(ops);
        let notifications = tokio::spawn(api::workers::listener::run(
            store.pool().clone(),
            ops.hub.clone(),
            ops.hub.shutdown_token().clone(),
        ));
        let state =
            AppState::new(api::state::Shared { store, keys: Arc::new(keys.clone()), owner: db.owner.clone(), ops });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let app = api::http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(api::http::listener(listener), app).await {
                eprintln!("bench: the HTTP server stopped: {e}");
            }
        });
        Ok(Server { addr, keys, task, listener: notifications })
    }

    /// `Bearer <token>` for the operator of `tenant`.
    pub fn authorization(&self, tenant: &Tenant) -> Result<String> {
        bearer(&self.keys, tenant)
    }
}

/// `Bearer <token>` of the tenant's actor, signed with `keys` (a server's own, or the secret a
/// `switchyard serve` child was given).
pub fn bearer(keys: &Keys, tenant: &Tenant) -> Result<String> {
    let token = keys.issue(
        tenant.id,
        &tenant.slug,
        &tenant.actor.id,
        &tenant.actor.email,
        &tenant.actor.roles,
        chrono::Duration::hours(6),
    )?;
    Ok(format!("Bearer {token}"))
}

/// The actor of the bench package's first user (its operator) in `tenant`, as the server builds
/// it from the users table.
pub async fn operator(db: &Database, tenant: engine::store::TenantId, package: &tenants::Package) -> Result<Actor> {
    let user = package.tenant.users.first().ok_or_else(|| anyhow!("the bench package has no user"))?;
    let mut tx = db.owner.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    let (user_id, roles): (Uuid, Vec<String>) =
        sqlx::query_as("select id, roles from users where tenant_id = $1 and lower(email) = lower($2)")
            .bind(tenant)
            .bind(&user.email)
            .fetch_one(&mut *tx)
            .await
            .context("reading the bench operator")?;
    tx.commit().await?;
    Ok(Actor {
        id: user_id.to_string(),
        email: user.email.clone(),
        roles,
        system: false,
        attributes: Default::default(),
    })
}
