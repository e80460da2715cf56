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

/// Settings of the operational side: webhooks, rate limits, CORS, `/metrics`. Read by `serve`
/// only (`OpsConfig::default()` is what an unset environment gives).
#[derive(Clone)]
pub struct OpsConfig {
    /// `SWITCHYARD_WEBHOOK_ALLOW`: comma-separated addresses or CIDR blocks (`127.0.0.1`,
    /// `10.1.0.0/16`) webhooks may reach although they are loopback, private, link-local or
    /// otherwise internal. Default: none (such destinations are refused).
    pub webhook_allow: Vec<ipnet::IpNet>,
    /// `SWITCHYARD_WEBHOOK_MAX_ATTEMPTS`: attempts of one delivery before it is dead-lettered
    /// (default 8).
    pub webhook_max_attempts: u32,
    /// `SWITCHYARD_WEBHOOK_BACKOFF`: the delay before the first retry (default `1m`); each retry
    /// waits twice as long as the previous one (with jitter), at most 6 hours.
    pub webhook_backoff: std::time::Duration,
    /// `SWITCHYARD_WEBHOOK_TIMEOUT`: how long one attempt may take (default `10s`).
    pub webhook_timeout: std::time::Duration,
    /// `SWITCHYARD_RATE_LIMIT`: requests per authenticated user (`100/s`, `600/m`, `off`; default
    /// `100/s`, which is also the burst).
    pub rate_limit_user: Option<RateLimit>,
    /// `SWITCHYARD_RATE_LIMIT_IP`: requests per client IP for requests without a valid access
    /// token (anonymous, API keys; default `50/s`).
    pub rate_limit_ip: Option<RateLimit>,
    /// `SWITCHYARD_LOGIN_LIMIT`: sign-in attempts (and invitation acceptances) per account,
    /// successful or not, from any address (default `5/m`: five at once, then one every 12 s).
    /// Never off: it is what stops a password being guessed from many addresses.
    pub login_limit_account: RateLimit,
    /// `SWITCHYARD_LOGIN_LIMIT_IP`: sign-in attempts per client IP, whatever the account (default
    /// `20/m`). An office behind one address with many people signing in at nine may want more.
    pub login_limit_ip: RateLimit,
    /// `SWITCHYARD_CORS_ORIGINS`: comma-separated origins (`https://studio.example.com`) whose
    /// pages may call the API, or `*` for any. Default: none (cross-origin calls are refused).
    pub cors_origins: Vec<String>,
    /// `SWITCHYARD_METRICS_TOKEN`: when set, `/metrics` wants `Authorization: Bearer <it>`.
    pub metrics_token: Option<String>,
    /// `SWITCHYARD_IDEMPOTENCY_TTL`: how long an `Idempotency-Key`'s answer is kept and replayed
    /// (default `24h`, at least `1m`, at most `365d`); older records count as absent and are
    /// purged.
    pub idempotency_ttl: std::time::Duration,
    /// `SWITCHYARD_TRUSTED_PROXIES`: comma-separated addresses or CIDR blocks of the reverse
    /// proxies in front of the server (`127.0.0.1`, `10.0.0.0/8`). Only for a connection from one
    /// of them is the client's address read from `X-Forwarded-For` (see `crate::client_ip`).
    /// Default: none (the client is the connection's peer).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `SWITCHYARD_MAX_IN_FLIGHT`: requests this server handles at once (default 64, twice the
    /// default pool; `off`: no bound). More wait their turn (`admission_wait`), then are refused
    /// with `503 OVERLOADED` (`crate::admission`).
    pub max_in_flight: Option<u32>,
    /// `SWITCHYARD_TENANT_IN_FLIGHT`: of those, one tenant's (default 16, half the default pool,
    /// so that a tenant flooding the server leaves connections and cores to the others; `off`:
    /// no bound).
    pub tenant_in_flight: Option<u32>,
    /// `SWITCHYARD_ADMISSION_WAIT`: how long a request over either bound waits for its turn, in a
    /// queue of four times the bound, before it is refused (default `2s`, at most `30s`).
    pub admission_wait: std::time::Duration,
}

impl std::fmt::Debug for OpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsConfig")
            .field("webhook_allow", &self.webhook_allow)
            .field("webhook_max_attempts", &self.webhook_max_attempts)
            .field("webhook_backoff", &self.webhook_backoff)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("rate_limit_user", &self.rate_limit_user)
            .field("rate_limit_ip", &self.rate_limit_ip)
            .field("login_limit_account", &self.login_limit_account)
            .field("login_limit_ip", &self.login_limit_ip)
            .field("cors_origins", &self.cors_origins)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<set>"))
            .field("idempotency_ttl", &self.idempotency_ttl)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_in_flight", &self.max_in_flight)
            .field("tenant_in_flight", &self.tenant_in_flight)
            .field("admission_wait", &self.admission_wait)
            .finish()
    }
}

impl Default for OpsConfig {
    fn default() -> OpsConfig {
        OpsConfig {
            webhook_allow: Vec::new(),
            webhook_max_attempts: 8,
            webhook_backoff: std::time::Duration::from_secs(60),
            webhook_timeout: std::time::Duration::from_secs(10),
            rate_limit_user: Some(RateLimit { count: 100, per: std::time::Duration::from_secs(1) }),
            rate_limit_ip: Some(RateLimit { count: 50, per: std::time::Duration::from_secs(1) }),
            login_limit_account: RateLimit { count: 5, per: std::time::Duration::from_secs(60) },
            login_limit_ip: RateLimit { count: 20, per: std::time::Duration::from_secs(60) },
            cors_origins: Vec::new(),
            metrics_token: None,
            idempotency_ttl: engine::store::DEFAULT_IDEMPOTENCY_TTL,
            trusted_proxies: Vec::new(),
            max_in_flight: Some(crate::limits::MAX_IN_FLIGHT),
            tenant_in_flight: Some(crate::limits::TENANT_IN_FLIGHT),
            admission_wait: crate::limits::ADMISSION_WAIT,
        }
    }
}

/// `count` requests per `per`, all of which may come at once (the burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: std::time::Duration,
}

impl RateLimit {
    /// `N/s`, `N/m` or `N/h`; `off` is `None`.
    pub fn parse(s: &str) -> Result<Option<RateLimit>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (count, unit) = s.split_once('/').ok_or("expected N/s, N/m, N/h or off")?;
        let count: u32 = count.trim().parse().map_err(|_| format!("`{count}` is not a positive number"))?;
        if count == 0 {
            return Err("the count must be at least 1 (or `off`)".into());
        }
        let per = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            other => return Err(format!("`{other}` is not a unit: s, m or h")),
        };
        Ok(Some(RateLimit { count, per: std::time::Duration::from_secs(per) }))
    }
}

impl OpsConfig {
    pub fn from_env() -> Result<OpsConfig, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let invalid = |name: &'static str| move |message: String| ConfigError::Invalid { name, message };
        let duration = |name: &'static str, default: std::time::Duration| -> Result<_, ConfigError> {
            match var(name) {
                Some(v) => humantime::parse_duration(v.trim()).map_err(|e| invalid(name)(e.to_string())),
                None => Ok(default),
            }
        };
        let d = OpsConfig::default();
        let webhook_allow = match var("SWITCHYARD_WEBHOOK_ALLOW") {
            Some(v) => parse_nets(&v).map_err(invalid("SWITCHYARD_WEBHOOK_ALLOW"))?,
            None => d.webhook_allow,
        };
        let webhook_max_attempts = match var("SWITCHYARD_WEBHOOK_MAX_ATTEMPTS") {
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => return Err(invalid("SWITCHYARD_WEBHOOK_MAX_ATTEMPTS")("expected 1 to 100".into())),
            },
            None => d.webhook_max_attempts,
        };
        let rate = |name: &'static str, default: Option<RateLimit>| match var(name) {
            Some(v) => RateLimit::parse(&v).map_err(invalid(name)),
            None => Ok(default),
        };
        let login = |name: &'static str, default: RateLimit| match var(name) {
            Some(v) => match RateLimit::parse(&v).map_err(invalid(name))? {
                Some(limit) => Ok(limit),
                None => Err(invalid(name)("sign-in attempts are always limited: expected N/s, N/m or N/h".into())),
            },
            None => Ok(default),
        };
        let trusted_proxies = match var("SWITCHYARD_TRUSTED_PROXIES") {
            Some(v) => parse_nets(&v).map_err(invalid("SWITCHYARD_TRUSTED_PROXIES"))?,
            None => d.trusted_proxies,
        };
        let idempotency_ttl = match var("SWITCHYARD_IDEMPOTENCY_TTL") {
            Some(v) => parse_idempotency_ttl(&v).map_err(invalid("SWITCHYARD_IDEMPOTENCY_TTL"))?,
            None => d.idempotency_ttl,
        };
        let cors_origins = match var("SWITCHYARD_CORS_ORIGINS") {
            Some(v) => parse_origins(&v).map_err(invalid("SWITCHYARD_CORS_ORIGINS"))?,
            None => d.cors_origins,
        };
        let bound = |name: &'static str, default: Option<u32>| match var(name) {
            Some(v) => parse_bound(&v).map_err(invalid(name)),
            None => Ok(default),
        };
        let admission_wait = match var("SWITCHYARD_ADMISSION_WAIT") {
            Some(v) => match humantime::parse_duration(v.trim()) {
                Ok(d) if d <= std::time::Duration::from_secs(30) => d,
                Ok(_) => return Err(invalid("SWITCHYARD_ADMISSION_WAIT")("at most 30s".into())),
                Err(e) => return Err(invalid("SWITCHYARD_ADMISSION_WAIT")(e.to_string())),
            },
            None => d.admission_wait,
        };
        Ok(OpsConfig {
            max_in_flight: bound("SWITCHYARD_MAX_IN_FLIGHT", d.max_in_flight)?,
            tenant_in_flight: bound("SWITCHYARD_TENANT_IN_FLIGHT", d.tenant_in_flight)?,
            admission_wait,
            webhook_allow,
            webhook_max_attempts,
            webhook_backoff: duration("SWITCHYARD_WEBHOOK_BACKOFF", d.webhook_backoff)?,
            webhook_timeout: duration("SWITCHYARD_WEBHOOK_TIMEOUT", d.webhook_timeout)?,
            rate_limit_user: rate("SWITCHYARD_RATE_LIMIT", d.rate_limit_user)?,
            rate_limit_ip: rate("SWITCHYARD_RATE_LIMIT_IP", d.rate_limit_ip)?,
            login_limit_account: login("SWITCHYARD_LOGIN_LIMIT", d.login_limit_account)?,
            login_limit_ip: login("SWITCHYARD_LOGIN_LIMIT_IP", d.login_limit_ip)?,
            cors_origins,
            metrics_token: var("SWITCHYARD_METRICS_TOKEN"),
            idempotency_ttl,
            trusted_proxies,
        })
    }
}

/// The least `SWITCHYARD_IDEMPOTENCY_TTL` (the purge function refuses less, too).
pub const IDEMPOTENCY_TTL_MIN: std::time::Duration = std::time::Duration::from_secs(60);
/// The most `SWITCHYARD_IDEMPOTENCY_TTL`.
pub const IDEMPOTENCY_TTL_MAX: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// `24h`, `90m`, `7d`: a humantime duration from [`IDEMPOTENCY_TTL_MIN`] to
/// [`IDEMPOTENCY_TTL_MAX`].
pub fn parse_idempotency_ttl(s: &str) -> Result<std::time::Duration, String> {
    let ttl = humantime::parse_duration(s.trim()).map_err(|e| e.to_string())?;
    if !(IDEMPOTENCY_TTL_MIN..=IDEMPOTENCY_TTL_MAX).contains(&ttl) {
        return Err(format!("`{}` is out of range: expected 1m to 365d", s.trim()));
    }
    Ok(ttl)
}

/// A bound on requests in progress: a positive number, or `off` (`None`).
pub fn parse_bound(s: &str) -> Result<Option<u32>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(format!("`{s}` is not a positive number (or `off`)")),
    }
}

/// `127.0.0.1, 10.0.0.0/8, ::1`: an address alone is a block of one.
pub fn parse_nets(s: &str) -> Result<Vec<ipnet::IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{p}` is not an address or a CIDR block"))
        })
        .collect()
}

/// `https://a.example.com, http://localhost:5173` or `*`.
pub fn parse_origins(s: &str) -> Result<Vec<String>, String> {
    let origins: Vec<String> =
        s.split(',').map(|o| o.trim().trim_end_matches('/').to_string()).filter(|o| !o.is_empty()).collect();
    for o in &origins {
        let scheme_ok = o.starts_with("http://") || o.starts_with("https://");
        let rest = o.split_once("://").map_or("", |(_, r)| r);
        if o != "*" && (!scheme_ok || rest.is_empty() || rest.contains('/')) {
            return Err(format!("`{o}` is not an origin (scheme://host[:port]) nor `*`"));
        }
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse() {
        assert_eq!(RateLimit::parse("2/m"), Ok(Some(RateLimit { count: 2, per: std::time::Duration::from_secs(60) })));
        assert_eq!(RateLimit::parse("off"), Ok(None));
        assert!(RateLimit::parse("0/s").is_err());
        assert!(RateLimit::parse("5/d").is_err());
        assert!(RateLimit::parse("lots").is_err());
    }

    #[test]
    fn bounds_parse() {
        assert_eq!(parse_bound(" 12 "), Ok(Some(12)));
        assert_eq!(parse_bound("OFF"), Ok(None));
        assert!(parse_bound("0").is_err());
        assert!(parse_bound("-3").is_err());
        assert!(parse_bound("many").is_err());
    }

    #[test]
    fn idempotency_ttls_parse() {
        let hours = |h: u64| std::time::Duration::from_secs(h * 3600);
        assert_eq!(parse_idempotency_ttl("24h"), Ok(hours(24)));
        assert_eq!(parse_idempotency_ttl(" 7d "), Ok(hours(24 * 7)));
        assert_eq!(parse_idempotency_ttl("1m"), Ok(IDEMPOTENCY_TTL_MIN));
        assert_eq!(parse_idempotency_ttl("365d"), Ok(IDEMPOTENCY_TTL_MAX));
        assert!(parse_idempotency_ttl("59s").is_err_and(|e| e.contains("1m to 365d")), "below the least");
        assert!(parse_idempotency_ttl("366d").is_err(), "above the most");
        assert!(parse_idempotency_ttl("0").is_err());
        assert!(parse_idempotency_ttl("a day").is_err());
        assert_eq!(OpsConfig::default().idempotency_ttl, hours(24));
    }

    #[test]
    fn allow_lists_and_origins_parse() {
        let nets = parse_nets("127.0.0.1, 10.0.0.0/8,::1").expect("nets");
        assert_eq!(nets.len(), 3);
        assert!(nets[0].contains(&"127.0.0.1".parse::<std::net::IpAddr>().expect("ip")));
        assert!(parse_nets("localhost").is_err());
        assert_eq!(parse_origins("https://a.test/, http://localhost:5173").expect("origins").len(), 2);
        assert!(parse_origins("a.test").is_err());
        assert!(parse_origins("https://a.test/path").is_err());
        assert_eq!(parse_origins("*").expect("any"), ["*"]);
    }
}
