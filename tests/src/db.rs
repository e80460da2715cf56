//! A real database per test: migrate a template once, clone it per test, drop it after.
//!
//! cargo-nextest runs every test in its own process, possibly in parallel, so nothing here can
//! live in one process's memory. Instead:
//!
//! * **One cluster for all test processes**, under `<workspace>/target/test-pg/` (or
//!   `$SWITCHYARD_TEST_PG_HOME`), started by [`api::cluster`] by whichever process comes first,
//!   *detached* so that it outlives that process and serves the next ones. `scripts/test.sh`
//!   stops it afterwards (SIGINT to the postmaster, as [`api::cluster::stop_home`] does). It
//!   trades durability for speed (`fsync`, `synchronous_commit` and `full_page_writes` off):
//!   its data is disposable.
//! * **One template database per migration set**, `tpl_<hash of the embedded migrations>`, built
//!   once (migrated under another name and renamed when complete, so a crash mid-way never
//!   leaves a half-migrated template) and never connected to afterwards.
//! * **One database per test**, `t_<unix secs>_<uuid>`, `CREATE DATABASE … TEMPLATE tpl_…`,
//!   dropped by [`TestDb::drop_db`] or when the [`TestDb`] is dropped, and kept (with a note on
//!   stderr) when the test panics, for inspection. Databases left behind more than an hour ago
//!   are dropped by the next test process.
//!
//! Cluster start, template build and cleanup happen under an exclusive `flock` on
//! `<home>.lock`, once per process.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use api::cluster::{Cluster, ClusterConfig, SUPERUSER};
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

/// The migrations, embedded at compile time (the path is relative to `tests/Cargo.toml`).
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The role the server works as (created by the migrations, `NOLOGIN`; the harness lets it log
/// in over the private socket, as the embedded server does).
pub const APP_ROLE: &str = "switchyard_app";

/// Bumped when what the harness does to a template changes, so old templates are not reused.
const TEMPLATE_RECIPE: u32 = 1;
/// Test databases (and superseded templates) older than this are dropped by the next process.
const STALE_AFTER: Duration = Duration::from_secs(3600);
/// Per pool: tests are small, and nextest runs as many processes as cores.
const POOL_SIZE: u32 = 5;

/// A fresh database for one test, migrated, with a pool for the superuser and one for the
/// application role.
pub struct TestDb {
    /// The database's name, `t_<unix secs>_<uuid>`.
    pub name: String,
    /// URL as the superuser `switchyard` (owner of every table).
    pub owner_url: String,
    /// URL as `switchyard_app` (the server's role: subject to row-level security).
    pub app_url: String,
    /// Pool as the superuser.
    pub owner: PgPool,
    /// Pool as `switchyard_app`. Connects lazily when the migrations have not created the role.
    pub app: PgPool,
    admin: PgConnectOptions,
    dropped: bool,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).field("owner_url", &self.owner_url).finish_non_exhaustive()
    }
}

/// A fresh, migrated database. Panics (failing the test) when the cluster cannot be set up.
pub async fn test_db() -> TestDb {
    match try_test_db().await {
        Ok(db) => db,
        Err(e) => panic!("cannot create a test database: {e:#}"),
    }
}

/// [`test_db`], returning the error instead of panicking.
pub async fn try_test_db() -> anyhow::Result<TestDb> {
    let shared = shared().await?;
    create_test_db(shared, &shared.template).await
}

/// A fresh database with no migration run (to test a migration over data written by the ones
/// before it: run a part of [`MIGRATOR`] on `owner`, write, then the rest).
pub async fn empty_db() -> TestDb {
    let created = async {
        let shared = shared().await?;
        create_test_db(shared, "template0").await
    };
    match created.await {
        Ok(db) => db,
        Err(e) => panic!("cannot create an empty test database: {e:#}"),
    }
}

async fn create_test_db(shared: &Shared, template: &str) -> anyhow::Result<TestDb> {
    crate::init_tracing();
    let name = format!("t_{}_{}", unix_secs(), uuid::Uuid::new_v4().simple());
    let admin = shared.cluster.connect_options(SUPERUSER, "postgres");
    let mut conn = PgConnection::connect_with(&admin).await.context("connecting to the test cluster")?;
    sqlx::query(&format!("create database {} template {}", ident(&name), ident(template)))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating {name} from {template}"))?;
    conn.close().await?;

    let owner = PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect_with(shared.cluster.connect_options(SUPERUSER, &name))
        .await
        .with_context(|| format!("connecting to {name}"))?;
    let app_opts = shared.cluster.connect_options(APP_ROLE, &name);
    // The server's own options (engine::store::conn): dead connections retired, not tested; but
    // sqlx's default 30 s to wait for a connection, not the server's 5 s: tests share 2 cores.
    let app_pool = engine::store::conn::pool_options(POOL_SIZE).acquire_timeout(std::time::Duration::from_secs(30));
    let app = if shared.app_role_exists {
        app_pool.connect_with(app_opts).await.with_context(|| format!("connecting to {name} as {APP_ROLE}"))?
    } else {
        app_pool.connect_lazy_with(app_opts)
    };
    Ok(TestDb {
        owner_url: shared.cluster.superuser_url(&name),
        app_url: shared.cluster.url_for(APP_ROLE, &name),
        name,
        owner,
        app,
        admin,
        dropped: false,
    })
}

impl TestDb {
    /// A transaction of the owner's pool with `tenant` set for row-level security, to look at
    /// (or tamper with) one tenant's rows from a test.
    pub async fn tenant_tx(&self, tenant: engine::store::TenantId) -> sqlx::Transaction<'static, sqlx::Postgres> {
        self.owner.begin_with(engine::store::sql::begin_for(tenant)).await.expect("begin with the tenant set")
    }

    /// Closes the pools and drops the database.
    pub async fn drop_db(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        self.owner.close().await;
        self.app.close().await;
        drop_database(&self.admin, &self.name).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        if std::thread::panicking() {
            eprintln!("test database kept for inspection: {} ({})", self.name, self.owner_url);
            return;
        }
        // Drop cannot await, and the test's runtime may be single-threaded: drop the database
        // from a thread of our own with its own runtime. `WITH (FORCE)` ends the pools' sessions.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(drop_database(&admin, &name)))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            // Not fatal: the next test process drops databases older than an hour.
            Ok(Err(e)) => eprintln!("cannot drop test database {}: {e:#}", self.name),
            Err(_) => eprintln!("cannot drop test database {}: panicked", self.name),
        }
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(admin).await?;
    sqlx::query(&format!("drop database if exists {} with (force)", ident(name)))
        .execute(&mut conn)
        .await
        .with_context(|| format!("dropping {name}"))?;
    conn.close().await?;
    Ok(())
}

// --- Once per process -------------------------------------------------------------------------

/// What every test of this process shares: no pools (each `#[tokio::test]` has its own runtime,
/// and a pool must not outlive the runtime it was made in).
struct Shared {
    cluster: Cluster,
    template: String,
    app_role_exists: bool,
}

async fn shared() -> anyhow::Result<&'static Shared> {
    static SHARED: OnceCell<Shared> = OnceCell::const_new();
    SHARED.get_or_try_init(set_up).await
}

/// The shared cluster's home: `$SWITCHYARD_TEST_PG_HOME`, else `<workspace>/target/test-pg`.
pub fn test_pg_home() -> PathBuf {
    match std::env::var_os("SWITCHYARD_TEST_PG_HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("target").join("test-pg")
        }
    }
}

/// The template for the embedded migrations: `tpl_` + 12 hex digits of their versions and
/// checksums (a changed, added or removed migration makes a new template).
pub fn template_name() -> String {
    let mut hash = Sha256::new();
    hash.update(TEMPLATE_RECIPE.to_le_bytes());
    for m in MIGRATOR.iter() {
        hash.update(m.version.to_le_bytes());
        hash.update(&m.checksum);
    }
    let hex: String = hash.finalize()[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("tpl_{hex}")
}

async fn set_up() -> anyhow::Result<Shared> {
    let home = test_pg_home();
    let lock_path = PathBuf::from(format!("{}.lock", home.display()));
    if let Some(parent) = lock_path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // Held until this function returns: other test processes wait here, then find everything
    // ready.
    let _lock = tokio::task::spawn_blocking(move || {
        Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, errno)| errno)
    })
    .await?
    .with_context(|| format!("locking {}", lock_path.display()))?;

    let cluster = Cluster::ensure_started(&ClusterConfig { detach: true, ..ClusterConfig::new(home.clone()) })
        .await
        .with_context(|| format!("starting the test cluster in {}", home.display()))?;
    let mut conn = PgConnection::connect_with(&cluster.connect_options(SUPERUSER, "postgres"))
        .await
        .context("connecting to the test cluster")?;
    tune_for_tests(&mut conn).await?;
    drop_stale(&mut conn).await?;
    let template = template_name();
    build_template(&cluster, &mut conn, &template).await?;
    let app_role_exists = allow_app_login(&mut conn).await?;
    conn.close().await?;
    Ok(Shared { cluster, template, app_role_exists })
}

/// The test cluster's data is disposable: skip the fsyncs (faster CREATE DATABASE and commits).
/// Visibility and locking are unchanged, so tests still see what production would. And every
/// DROP DATABASE checkpoints: not worth a log line each.
async fn tune_for_tests(conn: &mut PgConnection) -> anyhow::Result<()> {
    let mut changed = false;
    for setting in ["fsync", "synchronous_commit", "full_page_writes", "log_checkpoints"] {
        let value: String =
            sqlx::query_scalar("select current_setting($1)").bind(setting).fetch_one(&mut *conn).await?;
        if value != "off" {
            sqlx::query(&format!("alter system set {setting} = off")).execute(&mut *conn).await?;
            changed = true;
        }
    }
    if changed {
        sqlx::query("select pg_reload_conf()").execute(&mut *conn).await?;
    }
    Ok(())
}

/// Drops test databases left behind over an hour ago (a test killed, or that panicked), and
/// templates of superseded migration sets built over an hour ago.
async fn drop_stale(conn: &mut PgConnection) -> anyhow::Result<()> {
    let now = unix_secs();
    let current = template_name();
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "select datname, shobj_description(oid, 'pg_database') from pg_database \
         where datname like 't\\_%' or datname like 'tpl\\_%' or datname like 'tplbuild\\_%'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name, comment) in rows {
        let born = if let Some(rest) = name.strip_prefix("t_") {
            rest.split('_').next().and_then(|s| s.parse::<u64>().ok())
        } else if name == current {
            None
        } else {
            comment.and_then(|c| c.parse::<u64>().ok())
        };
        let Some(born) = born else { continue };
        if now.saturating_sub(born) < STALE_AFTER.as_secs() {
            continue;
        }
        tracing::info!(database = %name, "dropping a stale test database");
        // A template cannot be dropped; nobody clones a superseded one.
        sqlx::query(&format!("alter database {} with is_template false", ident(&name))).execute(&mut *conn).await?;
        sqlx::query(&format!("drop database if exists {} with (force)", ident(&name))).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Builds `template` if missing: migrate `tplbuild_…`, freeze it, rename it (the commit point).
async fn build_template(cluster: &Cluster, conn: &mut PgConnection, template: &str) -> anyhow::Result<()> {
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(template)
        .fetch_one(&mut *conn)
        .await?;
    if exists {
        return Ok(());
    }
    let building = template.replacen("tpl_", "tplbuild_", 1);
    // Left over by a process that died mid-build (we hold the lock: nobody else is building).
    sqlx::query(&format!("drop database if exists {} with (force)", ident(&building))).execute(&mut *conn).await?;
    sqlx::query(&format!("create database {}", ident(&building))).execute(&mut *conn).await?;
    sqlx::query(&format!("comment on database {} is '{}'", ident(&building), unix_secs())).execute(&mut *conn).await?;
    let mut mig = PgConnection::connect_with(&cluster.connect_options(SUPERUSER, &building))
        .await
        .with_context(|| format!("connecting to {building}"))?;
    MIGRATOR.run_direct(&mut mig).await.with_context(|| format!("migrating {building}"))?;
    mig.close().await?;
    // No connections to a template: CREATE DATABASE … TEMPLATE fails while anyone is connected.
    sqlx::query(&format!("alter database {} with is_template true allow_connections false", ident(&building)))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("alter database {} rename to {}", ident(&building), ident(template)))
        .execute(&mut *conn)
        .await?;
    tracing::info!(template, "built the test template database");
    Ok(())
}

/// The migrations create the application role `NOLOGIN` (a production DBA decides how it logs
/// in); in the test cluster it logs in over the private socket with trust authentication, as in
/// the embedded server. Roles belong to the cluster, so once is enough; returns whether it exists.
async fn allow_app_login(conn: &mut PgConnection) -> anyhow::Result<bool> {
    let can_login: Option<bool> = sqlx::query_scalar("select rolcanlogin from pg_roles where rolname = $1")
        .bind(APP_ROLE)
        .fetch_optional(&mut *conn)
        .await?;
    match can_login {
        None => Ok(false),
        Some(true) => Ok(true),
        Some(false) => {
            sqlx::query(&format!("alter role {} login", ident(APP_ROLE))).execute(&mut *conn).await?;
            Ok(true)
        }
    }
}

/// A quoted SQL identifier (our names are plain, but quoting costs nothing).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
