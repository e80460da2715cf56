//! Opening the database: the embedded cluster or `DATABASE_URL`, migrations, and the two pools
//! (the owner's, which migrates, and the request pool, connected as `switchyard_app`, a role
//! that owns nothing and cannot bypass row-level security).

use engine::store::conn::pool_options;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Executor, PgPool};

use crate::cluster::{Cluster, ClusterConfig, ClusterError};
use crate::config::Config;

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
}

pub struct Database {
    pub owner: PgPool,
    pub app: PgPool,
    /// The embedded cluster, when we use it (stop it on shutdown).
    pub cluster: Option<Cluster>,
}

impl Database {
    /// Opens (and, embedded, starts) the database and runs the migrations.
    pub async fn open(cfg: &Config) -> Result<Database, DbError> {
        match &cfg.database_url {
            Some(url) => {
                let owner = pool(url, 4).await?;
                MIGRATOR.run(&owner).await?;
                let app = match &cfg.app_database_url {
                    Some(app_url) => pool(app_url, cfg.pool_size).await?,
                    None => {
                        let opts: PgConnectOptions = url.parse().map_err(DbError::Connect)?;
                        pool_options(cfg.pool_size)
                            .after_connect(|conn, _| {
                                Box::pin(async move {
                                    conn.execute("set role switchyard_app").await?;
                                    Ok(())
                                })
                            })
                            .connect_with(opts.disable_statement_logging())
                            .await
                            .map_err(DbError::Connect)?
                    }
                };
                Ok(Database { owner, app, cluster: None })
            }
            None => {
                let cluster = Cluster::ensure_started(&ClusterConfig {
                    pg_user: cfg.pg_user.clone(),
                    ..ClusterConfig::new(cfg.home.clone())
                })
                .await?;
                let owner = pool(&cluster.superuser_url("switchyard"), 4).await?;
                MIGRATOR.run(&owner).await?;
                owner.execute("alter role switchyard_app login").await?;
                let app = pool(&cluster.url_for("switchyard_app", "switchyard"), cfg.pool_size).await?;
                Ok(Database { owner, app, cluster: Some(cluster) })
            }
        }
    }

    /// Closes the pools and stops the embedded cluster if this process started it.
    pub async fn close(self) -> Result<(), DbError> {
        self.app.close().await;
        self.owner.close().await;
        if let Some(cluster) = self.cluster {
            cluster.stop().await?;
        }
        Ok(())
    }
}

async fn pool(url: &str, size: u32) -> Result<PgPool, DbError> {
    let opts: PgConnectOptions = url.parse().map_err(DbError::Connect)?;
    // No ping before each use (a round trip per request): connections that died are retired
    // and the work that had not reached the database retried (`engine::store::conn`).
    pool_options(size).connect_with(opts.disable_statement_logging()).await.map_err(DbError::Connect)
}

/// Whether every embedded migration has been applied (for `/readyz`).
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: i64 =
        sqlx::query_scalar("select count(*) from _sqlx_migrations where success").fetch_one(pool).await?;
    Ok(applied as usize >= MIGRATOR.iter().count())
}

/// A throwaway database for `switchyard tenant test`: created next to the configured one (in the
/// embedded cluster, or the server of `DATABASE_URL`), migrated, and dropped by [`Scratch::drop`].
/// Nothing of the real tenants is read or written.
pub struct Scratch {
    pub owner: PgPool,
    pub app: PgPool,
    name: String,
    /// Connected to the configured database: creates and drops the scratch one.
    admin: PgPool,
    cluster: Option<Cluster>,
}

impl Scratch {
    pub async fn create(cfg: &Config) -> Result<Scratch, DbError> {
        // The process id in the name says whose it is (and lets a test see that it was dropped).
        let name = format!("switchyard_test_{}_{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let (admin_url, cluster) = match &cfg.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let cluster = Cluster::ensure_started(&ClusterConfig {
                    pg_user: cfg.pg_user.clone(),
                    ..ClusterConfig::new(cfg.home.clone())
                })
                .await?;
                (cluster.superuser_url("postgres"), Some(cluster))
            }
        };
        let admin = pool(&admin_url, 1).await?;
        admin.execute(format!("create database {name}").as_str()).await?;
        let opts: PgConnectOptions = admin_url.parse().map_err(DbError::Connect)?;
        let owner_opts = opts.database(&name).disable_statement_logging();
        let owner = pool_options(4).connect_with(owner_opts.clone()).await.map_err(DbError::Connect)?;
        MIGRATOR.run(&owner).await?;
        // The request pool as the API's role (row-level security applies, as in production).
        let app = pool_options(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("set role switchyard_app").await?;
                    Ok(())
                })
            })
            .connect_with(owner_opts)
            .await
            .map_err(DbError::Connect)?;
        Ok(Scratch { owner, app, name, admin, cluster })
    }

    /// Drops the database (and stops the embedded cluster if this process started it).
    pub async fn drop(self) -> Result<(), DbError> {
        self.app.close().await;
        self.owner.close().await;
        self.admin.execute(format!("drop database if exists {} with (force)", self.name).as_str()).await?;
        self.admin.close().await;
        if let Some(cluster) = self.cluster {
            cluster.stop().await?;
        }
        Ok(())
    }
}
