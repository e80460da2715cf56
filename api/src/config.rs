//! Settings, from the environment (each variable documented where it is read). Secrets are
//! never printed: `Debug` redacts them.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone)]
pub struct Config {
    /// `SWITCHYARD_HOME`: where the embedded cluster and generated secrets live (default `./.switchyard`).
    pub home: PathBuf,
    /// `DATABASE_URL`: an existing database (its user owns the schema and runs migrations).
    /// Unset: the embedded cluster under `home` is used.
    pub database_url: Option<String>,
    /// `SWITCHYARD_APP_DATABASE_URL`: how the server connects for requests, as a role that owns
    /// nothing and cannot bypass row-level security. Unset with `DATABASE_URL`: the owner's
    /// connection switches to `switchyard_app` with `SET ROLE`.
    pub app_database_url: Option<String>,
    /// `SWITCHYARD_JWT_SECRET`: HS256 secret. Unset: generated once into `home/jwt-secret`
    /// (embedded database only; required with `DATABASE_URL`).
    pub jwt_secret: Option<String>,
    /// `SWITCHYARD_LISTEN`: address to listen on (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// `SWITCHYARD_PG_USER`: the OS user the embedded Postgres runs as when started as root.
    pub pg_user: Option<String>,
    /// `SWITCHYARD_DB_POOL`: connections in the request pool (default 32).
    pub pool_size: u32,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("home", &self.home)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("app_database_url", &self.app_database_url.as_ref().map(|_| "<set>"))
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field("listen", &self.listen)
            .field("pg_user", &self.pg_user)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {message}")]
    Invalid { name: &'static str, message: String },
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let listen = match var("SWITCHYARD_LISTEN") {
            Some(v) => v.parse().map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                name: "SWITCHYARD_LISTEN",
                message: e.to_string(),
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let pool_size = match var("SWITCHYARD_DB_POOL") {
            Some(v) => v.parse().map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                name: "SWITCHYARD_DB_POOL",
                message: e.to_string(),
            })?,
            None => 32,
        };
        Ok(Config {
            home: var("SWITCHYARD_HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".switchyard")),
            database_url: var("DATABASE_URL"),
            app_database_url: var("SWITCHYARD_APP_DATABASE_URL"),
            jwt_secret: var("SWITCHYARD_JWT_SECRET"),
            listen,
            pg_user: var("SWITCHYARD_PG_USER"),
            pool_size,
        })
    }
}
