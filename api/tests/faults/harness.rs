//! The fault harness's pieces: a private folder, `switchyard serve` as a child process on a free
//! 127.0.0.1 port, a Postgres cluster of the test's own (to restart under the server), the
//! webhook receiver, and a connection to the database for the checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::cluster::{Cluster, ClusterConfig};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncBufReadExt;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// The servers' signing secret: the harness issues its users' tokens with it.
pub const JWT_SECRET: &str = "fault-harness-signing-secret-0123456789abcdef";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A private folder (0700, as a `mktemp -d` would be) holding the homes of the run; on drop,
/// every postmaster left under it is stopped and the folder removed.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let scratch = Scratch::empty();
        // Only chemichemi is applied by `serve --demo` (SWITCHYARD_EXAMPLES).
        std::os::unix::fs::symlink(
            repo_root().join("examples/chemichemi"),
            scratch.path("examples").join("chemichemi"),
        )
        .expect("symlink chemichemi");
        scratch
    }

    /// A scratch folder whose `examples` (the packages `serve --demo` applies) is empty: the
    /// caller puts its own packages there.
    pub fn empty() -> Scratch {
        let dir = std::env::temp_dir().join(format!("switchyard-faults-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        std::fs::create_dir_all(dir.join("examples")).expect("mkdir examples");
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let homes: Vec<PathBuf> = ["home", "db"].iter().map(|h| self.dir.join(h)).collect();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            for home in homes {
                let _ = rt.block_on(api::cluster::stop_home(&home));
            }
        })
        .join();
        if std::env::var_os("FAULTS_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running `switchyard serve`.
pub struct Serve {
    child: tokio::process::Child,
    pub base: String,
    /// Its stderr (logs), shown when it fails to start.
    log: PathBuf,
}

impl Serve {
    /// Starts `serve` (with `--demo` the first time: chemichemi, its users and sample data) on
    /// home `home`, port 0 (the kernel picks a free one; the banner says which), and waits for
    /// `/readyz`. `database_url`: a database of the test's own instead of the embedded cluster.
    pub async fn start(scratch: &Scratch, name: &str, demo: bool, database_url: Option<&str>) -> Serve {
        let log = scratch.path(&format!("{name}.log"));
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let mut c = tokio::process::Command::new(BIN);
        c.current_dir(repo_root())
            .arg("serve")
            .env("SWITCHYARD_HOME", scratch.path("home"))
            .env("SWITCHYARD_LISTEN", "127.0.0.1:0")
            .env("SWITCHYARD_JWT_SECRET", JWT_SECRET)
            .env("SWITCHYARD_EXAMPLES", scratch.path("examples"))
            .env("SWITCHYARD_RATE_LIMIT", "off")
            .env("SWITCHYARD_RATE_LIMIT_IP", "off")
            .env("SWITCHYARD_WEBHOOK_ALLOW", "127.0.0.1")
            .env("SWITCHYARD_WEBHOOK_TIMEOUT", "1s")
            .env("SWITCHYARD_WEBHOOK_BACKOFF", "1s")
            .env("SWITCHYARD_DB_POOL", "8")
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .env_remove("SWITCHYARD_APP_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        if let Some(url) = database_url {
            c.env("DATABASE_URL", url);
        }
        if demo {
            c.arg("--demo");
        }
        let mut child = c.spawn().expect("spawn serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let fail = |why: &str, log: &Path| -> ! {
            panic!("serve {why}\n{}", std::fs::read_to_string(log).unwrap_or_default());
        };
        let addr: SocketAddr = loop {
            match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                Ok(Some(line)) => {
                    if let Some(addr) = line.strip_prefix("Switchyard listening on http://") {
                        break addr.trim().parse().expect("an address in the banner");
                    }
                }
                Ok(None) => fail("exited before listening", &log),
                Err(_) if Instant::now() > deadline => fail("did not listen within 120 s", &log),
                Err(_) => {}
            }
        };
        let base = format!("http://{addr}");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    return Serve { child, base, log };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                fail(&format!("exited with {status}"), &log);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        fail("was not ready within 120 s", &log)
    }

    /// Its log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no shutdown, no clean-up (its embedded postmaster, if any, is orphaned).
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reap");
    }

    /// SIGTERM and wait for the graceful stop (requests drained, workers and cluster stopped).
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await;
    }
}

/// The database the checks read: the embedded cluster under `home`, or the test's own.
#[derive(Clone)]
pub struct Db(pub PgConnectOptions);

impl Db {
    /// The embedded cluster of `serve` under `home` (its socket is in `home/pgdata`).
    pub fn embedded(home: &Path) -> Db {
        let pgdata = std::fs::canonicalize(home.join("pgdata")).expect("pgdata");
        Db(PgConnectOptions::new()
            .socket(pgdata)
            .port(5432)
            .username(api::cluster::SUPERUSER)
            .database(api::cluster::DATABASE))
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect_with(&self.0).await.expect("connect to the database for the checks")
    }
}

/// A Postgres cluster of the test's own, that it stops and starts under the servers.
pub struct OwnDb {
    cfg: ClusterConfig,
    cluster: Option<Cluster>,
    pub url: String,
    pub db: Db,
    /// The Unix socket the cluster listens on.
    pub socket: PathBuf,
}

/// How a database is stopped.
#[derive(Debug, Clone, Copy)]
pub enum Shutdown {
    /// SIGINT: open transactions rolled back, checkpoint, exit.
    Fast,
    /// SIGQUIT: exit at once; recovery replays the WAL at the next start.
    Immediate,
}

impl OwnDb {
    pub async fn start(scratch: &Scratch) -> OwnDb {
        let cfg = ClusterConfig::new(scratch.path("db"));
        let cluster = Cluster::ensure_started(&cfg).await.expect("start the test's cluster");
        let url = cluster.superuser_url(api::cluster::DATABASE);
        let db = Db(cluster.connect_options(api::cluster::SUPERUSER, api::cluster::DATABASE));
        let socket = cluster.socket_dir().join(".s.PGSQL.5432");
        OwnDb { cfg, cluster: Some(cluster), url, db, socket }
    }

    pub async fn stop(&mut self, how: Shutdown) {
        let Some(cluster) = self.cluster.take() else { return };
        if let Shutdown::Immediate = how {
            let pid = nix::unistd::Pid::from_raw(cluster.pid());
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT).expect("SIGQUIT");
        }
        // Fast: SIGINT and wait; immediate: reaps the postmaster that already exits.
        cluster.stop().await.expect("stop the test's cluster");
    }

    /// Sets `max_connections` (a restart: before the servers start).
    pub async fn limit_connections(&mut self, max: u32) {
        let conf = self.db_dir().join("pgdata/postgresql.conf");
        let mut f = std::fs::OpenOptions::new().append(true).open(&conf).expect("postgresql.conf");
        std::io::Write::write_all(&mut f, format!("\nmax_connections = {max}\n").as_bytes()).expect("write conf");
        self.stop(Shutdown::Fast).await;
        self.start_again().await;
    }

    fn db_dir(&self) -> PathBuf {
        self.cfg.home.clone()
    }

    /// Takes every connection slot the database has left (and those of the servers, whose
    /// connections it ends) and holds them `hold`: what a database at its connection limit
    /// answers the servers' new connections is `too_many_connections`.
    pub async fn exhaust_connections(&self, hold: Duration) {
        let mut hog: Vec<PgConnection> = Vec::new();
        let mut mine: Vec<i32> = Vec::new();
        let fill = async |hog: &mut Vec<PgConnection>, mine: &mut Vec<i32>| {
            while let Ok(mut c) = PgConnection::connect_with(&self.db.0).await {
                let pid: i32 = sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut c).await.expect("pid");
                mine.push(pid);
                hog.push(c);
            }
        };
        fill(&mut hog, &mut mine).await;
        if let Some(c) = hog.first_mut() {
            let _ = sqlx::query(
                "select pg_terminate_backend(pid) from pg_stat_activity \
                 where backend_type = 'client backend' and not (pid = any($1))",
            )
            .bind(&mine)
            .execute(c)
            .await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fill(&mut hog, &mut mine).await;
        tokio::time::sleep(hold).await;
        for c in hog {
            let _ = c.close().await;
        }
    }

    pub async fn start_again(&mut self) {
        self.cluster = Some(Cluster::ensure_started(&self.cfg).await.expect("restart the test's cluster"));
    }
}

/// One webhook delivery as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub delivery: String,
    pub event: String,
}

/// A webhook receiver on 127.0.0.1: records every delivery, answers 200 after a pause (so that
/// a server killed meanwhile has sent a delivery it has not marked done).
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        Receiver::start_with(None).await.0
    }

    /// A receiver that also reports each delivery on the returned channel as it arrives; with
    /// `hold`, it keeps the first request open that long before answering (a server killed
    /// meanwhile has sent a delivery it could not mark done).
    pub async fn start_with(hold: Option<Duration>) -> (Receiver, tokio::sync::mpsc::UnboundedReceiver<Received>) {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let (seen, tx, first) = (seen.clone(), tx.clone(), first.clone());
                async move {
                    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let r = Received { delivery: h("switchyard-delivery-id"), event: h("switchyard-event-id") };
                    seen.lock().expect("receiver lock").push(r.clone());
                    let _ = tx.send(r);
                    let pause = match hold {
                        Some(hold) if first.swap(false, std::sync::atomic::Ordering::SeqCst) => hold,
                        _ => Duration::from_millis(20),
                    };
                    tokio::time::sleep(pause).await;
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (Receiver { url, got, task }, rx)
    }

    /// Deliveries received per event id.
    pub fn by_event(&self) -> BTreeMap<String, Vec<String>> {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.got.lock().expect("receiver lock").iter() {
            by.entry(r.event.clone()).or_default().push(r.delivery.clone());
        }
        by
    }
}

/// A TCP proxy on 127.0.0.1 to the database's Unix socket that holds every chunk `delay` in each
/// direction (`2 × delay` more per round trip), as a database across a network would.
pub struct SlowLink {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SlowLink {
    pub async fn start(socket: PathBuf, delay: Duration) -> SlowLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let socket = socket.clone();
                tokio::spawn(async move {
                    let Ok(unix) = tokio::net::UnixStream::connect(&socket).await else { return };
                    let (tcp_r, tcp_w) = tcp.into_split();
                    let (unix_r, unix_w) = unix.into_split();
                    tokio::join!(delayed(tcp_r, unix_w, delay), delayed(unix_r, tcp_w, delay));
                });
            }
        });
        SlowLink { port, task }
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read, in order.
async fn delayed(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin + Send + 'static,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until((at + delay).into()).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}
