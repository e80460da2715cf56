//! The realistic mix (issue 14, part 1; docs/benchmarks.md, "The realistic mix"): chemichemi
//! order lives driven over HTTP against a real `switchyard serve` process, on many tenants at
//! once.
//!
//! * [`world`]: the package applied as N tenants with their users, customers and stock;
//! * [`ServerProcess`]: the `switchyard` binary started as a child process on a free port of
//!   127.0.0.1, on a given database, with the rate limits off; stopped (SIGTERM, then SIGKILL)
//!   when asked or dropped;
//! * [`load`]: the closed-loop clients, one keep-alive HTTP/1.1 connection each, running order
//!   lives and recording every request's latency per operation kind (HDR histograms) and every
//!   refusal by status and code.
//!
//! The pgbench baseline that runs the same SQL is the benchmark binary's (`src/realmix.rs`).

pub mod load;
pub mod world;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::process::{Child, Command};

/// What can go wrong setting up or running the mix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("applying the package: {0}")]
    Apply(#[from] tenants::ApplyError),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl From<hyper::Error> for Error {
    fn from(e: hyper::Error) -> Error {
        Error::Http(e.to_string())
    }
}

impl From<hyper::http::Error> for Error {
    fn from(e: hyper::http::Error) -> Error {
        Error::Http(e.to_string())
    }
}

/// How the child server is started.
#[derive(Debug, Clone)]
pub struct ServerEnv {
    /// The `switchyard` binary.
    pub bin: PathBuf,
    /// `DATABASE_URL`: the database's owner (migrations are already applied).
    pub database_url: String,
    /// `SWITCHYARD_APP_DATABASE_URL`: the request pool's role, `switchyard_app`.
    pub app_database_url: String,
    /// `SWITCHYARD_JWT_SECRET` (at least 32 characters): the load signs its tokens with it.
    pub jwt_secret: String,
    /// The server's `SWITCHYARD_HOME` (nothing of the cluster: the database is given).
    pub home: PathBuf,
    /// Where the server's stdout and stderr go.
    pub log: PathBuf,
    /// Other settings of the server (`SWITCHYARD_DB_POOL`, `SWITCHYARD_TENANT_IN_FLIGHT`, …).
    pub settings: Vec<(String, String)>,
}

/// A `switchyard serve` child process listening on 127.0.0.1.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

/// A free port of 127.0.0.1 (bound, then released for the child to bind).
fn free_port() -> Result<u16, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl ServerProcess {
    /// Starts `switchyard serve` with `env` and the rate limits off (the load is a few users
    /// sending far more than the default 100 requests/s on purpose); the other settings are the
    /// environment's, as for any `serve` (`SWITCHYARD_DB_POOL`, admission bounds, …), but the
    /// log level is `warn` unless `RUST_LOG` says otherwise. Waits until `/readyz` answers 200.
    pub async fn start(env: &ServerEnv) -> Result<ServerProcess, Error> {
        if !env.bin.is_file() {
            return Err(Error::Setup(format!(
                "{} not found: build it (`cargo build --release -p switchyard-api`)",
                env.bin.display()
            )));
        }
        std::fs::create_dir_all(&env.home)?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(&env.log)?;
        let mut cmd = Command::new(&env.bin);
        cmd.arg("serve")
            .env("DATABASE_URL", &env.database_url)
            .env("SWITCHYARD_APP_DATABASE_URL", &env.app_database_url)
            .env("SWITCHYARD_JWT_SECRET", &env.jwt_secret)
            .env("SWITCHYARD_LISTEN", addr.to_string())
            .env("SWITCHYARD_HOME", &env.home)
            .env("SWITCHYARD_RATE_LIMIT", "off")
            .env("SWITCHYARD_RATE_LIMIT_IP", "off")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(env.settings.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| Error::Setup(format!("starting {}: {e}", env.bin.display())))?;
        let mut server = ServerProcess { child, addr };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait()? {
                let log = std::fs::read_to_string(&env.log).unwrap_or_default();
                return Err(Error::Setup(format!("switchyard serve exited ({status}):\n{log}")));
            }
            if ready(addr).await {
                return Ok(server);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Setup(format!("switchyard serve on {addr} not ready after 60 s")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server as an operator would (SIGTERM: in-flight requests finish, the workers
    /// stop), or kills it after 15 s.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_ok() {
                return Ok(());
            }
        }
        self.child.kill().await?;
        Ok(())
    }
}

/// Whether `GET /readyz` on `addr` answers 200.
async fn ready(addr: SocketAddr) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else { return false };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
        return false;
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let Ok(request) =
        hyper::Request::get("/readyz").header(hyper::header::HOST, addr.to_string()).body(Empty::<Bytes>::new())
    else {
        return false;
    };
    match sender.send_request(request).await {
        Ok(response) => {
            let ok = response.status().is_success();
            let _ = response.into_body().collect().await;
            ok
        }
        Err(_) => false,
    }
}

/// The chemichemi package of the workspace at `root`.
pub fn chemichemi_dir(root: &Path) -> PathBuf {
    root.join("examples/chemichemi")
}
