//! A private PostgreSQL cluster owned by the process: `switchyard serve` with no `DATABASE_URL`.
//!
//! The cluster lives under `$SWITCHYARD_HOME` (default `./.switchyard`):
//!
//! | path | what |
//! | --- | --- |
//! | `pgdata/` | the cluster (mode 0700, owned by the user PostgreSQL runs as) |
//! | `postgres.log` | the server's log (stdout and stderr of `initdb` and `postgres`, appended) |
//! | `cluster.lock` | an `flock` serialising concurrent starts of the same home |
//!
//! It is created with the server binaries found on `PATH`, else in `/usr/lib/postgresql/*/bin`
//! (newest first: Debian's package does not put them on `PATH`), PostgreSQL 15 or newer.
//!
//! **Root.** PostgreSQL refuses to run as root, so when we are root it runs as an unprivileged
//! user: `SWITCHYARD_PG_USER` (or [`ClusterConfig::pg_user`]), else `postgres` if that user exists,
//! else a system user `switchyard` that we create. That user often cannot even *reach* the home
//! (a checkout under `/root`, mode 0700; a `mktemp -d` folder). So we open the data directory as
//! root, hand it to the child as file descriptor 3, drop privileges, and give PostgreSQL
//! `/proc/self/fd/3` as its data directory *and* its socket directory: resolving a path through
//! that magic link does not check the permissions of the real path's ancestors, and every forked
//! backend inherits fd 3 (and the data directory as its working directory). We, as root, connect
//! over the socket at its real path `<pgdata>/.s.PGSQL.5432`. When we are not root, the same code
//! runs without the privilege drop. (`/proc/self/cwd` would not do: `initdb` and `postgres` change
//! directory while locating their own executable.)
//!
//! **No TCP.** `listen_addresses = ''`: the server only listens on a Unix socket inside the
//! private data directory, so the fixed port 5432 (which only names the socket file) never
//! conflicts with another server, and only root and the cluster's user can connect (trust
//! authentication is therefore safe).
//!
//! **Lifetime.** The postmaster is our child in its own process group, so a Ctrl-C in the terminal
//! reaches only us and the server can drain requests before [`Cluster::stop`] shuts PostgreSQL
//! down (fast shutdown). If our process is killed hard, the postmaster survives; the next start
//! finds it running (`pgdata/postmaster.pid` names a live postmaster whose socket answers) and
//! reuses it without owning it. `PR_SET_PDEATHSIG` is deliberately not used: it fires when the
//! spawning *thread* exits, which in a tokio runtime is not when the process exits. With
//! [`ClusterConfig::detach`] the postmaster gets its own session and outlives us (the test
//! harness shares one cluster between test processes); [`stop_home`] stops it later.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid, User};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

/// The superuser `initdb` creates; also the owner of the `switchyard` database.
pub const SUPERUSER: &str = "switchyard";
/// The database created after the first start.
pub const DATABASE: &str = "switchyard";
/// The oldest PostgreSQL major version we run.
pub const MIN_MAJOR: u32 = 15;

/// Names the socket file only (`.s.PGSQL.5432`): there is no TCP listener, so no conflict.
const PORT: u16 = 5432;
/// The file descriptor the child sees its data directory as.
const DATA_FD: RawFd = 3;
const DATA_DIR_ARG: &str = "/proc/self/fd/3";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// After SIGQUIT (immediate shutdown) a postmaster exits within milliseconds.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// `sizeof(sockaddr_un.sun_path)` on Linux, including the terminating NUL.
const SUN_PATH_MAX: usize = 108;
const DEFAULT_SYSTEM_USER: &str = "switchyard";
/// What a URL's user, host and database must escape: all but RFC 3986's unreserved characters.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// Lines of `postgres.log` quoted in errors.
const LOG_TAIL_LINES: usize = 30;

/// Where the cluster lives and how to run it.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `$SWITCHYARD_HOME`: holds `pgdata/` and `postgres.log`. Created if missing.
    pub home: PathBuf,
    /// The OS user PostgreSQL runs as when we are root (ignored otherwise). `None`: the env var
    /// `SWITCHYARD_PG_USER`, else `postgres` if it exists, else a system user `switchyard`
    /// (created). An existing cluster always runs as the user owning its data directory.
    pub pg_user: Option<String>,
    /// Start the postmaster in its own session so it outlives this process (the shared test
    /// cluster). Such a cluster is not stopped when the [`Cluster`] is dropped.
    pub detach: bool,
    /// Run PostgreSQL's processes under Linux's `SCHED_BATCH` policy (see [`Scheduling`]).
    pub scheduling: Scheduling,
}

/// The Linux scheduling policy of the cluster's processes (the postmaster's, which every backend
/// inherits), from `SWITCHYARD_PG_SCHEDULING` (`batch`, the default, or `normal`).
///
/// The embedded cluster shares the machine's cores with the server. Under the normal policy a
/// backend woken by the server's query preempts the server's thread at once (the kernel's wakeup
/// preemption), in the middle of its work: measured at 32 clients on two cores, a transition
/// through HTTP paid ~75 µs of the server's CPU and ~70 µs of Postgres's in those switches
/// (docs/benchmarks.md, session 17). A `SCHED_BATCH` task never preempts on wakeup: the backend
/// runs when the server's thread waits for its answer, a moment later. Nothing else changes
/// (same priority, same share of the CPU); pgbench's figures on the cluster did not move. An
/// external database is not affected (set its service's policy there: systemd's
/// `CPUSchedulingPolicy=batch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduling {
    #[default]
    Batch,
    Normal,
}

impl Scheduling {
    /// `SWITCHYARD_PG_SCHEDULING`: `normal` for the kernel's default policy, else batch (a value
    /// that is neither is warned of and read as batch).
    pub fn from_env() -> Scheduling {
        match std::env::var("SWITCHYARD_PG_SCHEDULING").ok().as_deref().map(str::trim) {
            None | Some("" | "batch") => Scheduling::Batch,
            Some("normal") => Scheduling::Normal,
            Some(other) => {
                tracing::warn!(value = other, "SWITCHYARD_PG_SCHEDULING is `batch` or `normal`; using batch");
                Scheduling::Batch
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scheduling::Batch => "batch",
            Scheduling::Normal => "normal",
        }
    }
}

impl ClusterConfig {
    /// A config for `home`, run as the default user, not detached.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        ClusterConfig { home: home.into(), pg_user: None, detach: false, scheduling: Scheduling::from_env() }
    }

    /// From the environment: `SWITCHYARD_HOME` (default `./.switchyard`), the directory holding
    /// the cluster; `SWITCHYARD_PG_USER`, the OS user PostgreSQL runs as when we are root.
    pub fn from_env() -> Self {
        let home = std::env::var_os("SWITCHYARD_HOME")
            .filter(|h| !h.is_empty())
            .map_or_else(|| PathBuf::from(".switchyard"), PathBuf::from);
        ClusterConfig { home, pg_user: pg_user_from_env(), detach: false, scheduling: Scheduling::from_env() }
    }
}

fn pg_user_from_env() -> Option<String> {
    std::env::var("SWITCHYARD_PG_USER").ok().filter(|u| !u.is_empty())
}

/// Everything that can go wrong creating, starting or stopping the cluster.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL ≥ 15 server binaries (initdb, postgres) not found on PATH or in \
         /usr/lib/postgresql/*/bin: install PostgreSQL 15 or newer (e.g. apt-get install \
         postgresql), or set DATABASE_URL to use an existing database"
    )]
    BinariesNotFound,
    #[error(
        "PostgreSQL {version} ({}) is too old: Switchyard needs PostgreSQL 15 or newer \
         (e.g. apt-get install postgresql), or set DATABASE_URL to use an existing database",
        bindir.display()
    )]
    TooOld { version: String, bindir: PathBuf },
    #[error(
        "the cluster in {} was created by PostgreSQL {data_major}, but only these server \
         binaries were found: {found}; install PostgreSQL {data_major}, or move the directory \
         away to create a new cluster",
        pgdata.display()
    )]
    VersionMismatch { pgdata: PathBuf, data_major: u32, found: String },
    #[error(
        "{} exists but is not a PostgreSQL data directory (no PG_VERSION); move it away",
        pgdata.display()
    )]
    NotACluster { pgdata: PathBuf },
    #[error(
        "the socket path {} is longer than a Unix socket allows ({} bytes): choose a shorter \
         SWITCHYARD_HOME",
        path.display(),
        SUN_PATH_MAX - 1
    )]
    SocketPathTooLong { path: PathBuf },
    #[error("cannot run PostgreSQL as OS user {user:?}: {reason}")]
    User { user: String, reason: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("initdb failed ({status}):\n{output}")]
    Initdb { status: ExitStatus, output: String },
    #[error("PostgreSQL exited during startup ({status}); the end of {}:\n{tail}", log.display())]
    Exited { status: ExitStatus, log: PathBuf, tail: String },
    #[error(
        "PostgreSQL did not accept connections within {}s; the end of {}:\n{tail}",
        START_TIMEOUT.as_secs(),
        log.display()
    )]
    StartTimeout { log: PathBuf, tail: String },
    #[error(
        "a PostgreSQL postmaster (pid {pid}) holds {} but does not accept connections",
        pgdata.display()
    )]
    Unresponsive { pid: i32, pgdata: PathBuf },
    #[error("PostgreSQL (pid {pid}) did not stop")]
    StopTimeout { pid: i32 },
    #[error("cannot signal PostgreSQL (pid {pid}): {source}")]
    Signal {
        pid: i32,
        #[source]
        source: Errno,
    },
    #[error("cannot set up the cluster's databases: {0}")]
    Sql(#[from] sqlx::Error),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ClusterError + 'a {
    move |source| ClusterError::Io { action, path: path.to_path_buf(), source }
}

/// A running cluster. Owns the postmaster if this process started it (see [`Cluster::owned`]).
///
/// Dropping an owned, non-detached cluster without [`Cluster::stop`] still asks PostgreSQL to
/// shut down (SIGINT) but does not wait for it.
pub struct Cluster {
    pgdata: PathBuf,
    home: PathBuf,
    port: u16,
    pid: Pid,
    ownership: Ownership,
    detached: bool,
}

/// Who stops the postmaster.
enum Ownership {
    /// Someone else: a live process that started it (a server beside the CLI), or nobody (the
    /// shared test cluster).
    Borrowed,
    /// We started it: our child.
    Child(tokio::process::Child),
    /// Its starter died without stopping it (killed hard): we stop it as if we had started it.
    Adopted,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("pgdata", &self.pgdata)
            .field("pid", &self.pid.as_raw())
            .field("owned", &self.owned())
            .field("detached", &self.detached)
            .finish()
    }
}

impl Cluster {
    /// Creates the cluster if needed, starts it unless it is already running, and waits until it
    /// accepts connections (at most 30 s; the error then quotes the end of `postgres.log`).
    /// Ensures the database `switchyard` exists.
    pub async fn ensure_started(cfg: &ClusterConfig) -> Result<Cluster, ClusterError> {
        fs::DirBuilder::new().recursive(true).mode(0o755).create(&cfg.home).map_err(io_err("create", &cfg.home))?;
        // Absolute, because the socket path ends up in URLs used from any working directory.
        let home = fs::canonicalize(&cfg.home).map_err(io_err("resolve", &cfg.home))?;
        let pgdata = home.join("pgdata");
        let socket = socket_path(&pgdata, PORT);
        if socket.as_os_str().len() >= SUN_PATH_MAX {
            return Err(ClusterError::SocketPathTooLong { path: socket });
        }

        // Two processes starting the same home at once (two `serve`s, parallel tests) must not
        // both run initdb or both start a postmaster.
        let lock_path = home.join("cluster.lock");
        let _lock = lock_file(&lock_path).await?;

        let cluster = match find_running(&home, &pgdata, !cfg.detach).await? {
            Some(running) => running,
            None => start(&home, &pgdata, cfg).await?,
        };
        if let Err(e) = ensure_database(&cluster.pgdata, cluster.port).await {
            let _ = cluster.stop().await;
            return Err(e);
        }
        Ok(cluster)
    }

    /// The directory holding the server's Unix socket (the data directory, at its real path).
    pub fn socket_dir(&self) -> &Path {
        &self.pgdata
    }

    /// The data directory.
    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// A URL for database `db` as the superuser `switchyard`.
    pub fn superuser_url(&self, db: &str) -> String {
        self.url_for(SUPERUSER, db)
    }

    /// A URL for database `db` as `user`, over the socket (trust authentication, no password).
    /// The socket directory is the percent-encoded host, a form both sqlx and libpq accept.
    pub fn url_for(&self, user: &str, db: &str) -> String {
        let enc = |s: &str| utf8_percent_encode(s, URL_COMPONENT).to_string();
        let host = enc(&self.pgdata.to_string_lossy());
        let port = if self.port == PORT { String::new() } else { format!(":{}", self.port) };
        format!("postgres://{}@{host}{port}/{}", enc(user), enc(db))
    }

    /// Connect options for database `db` as `user` (what [`Cluster::url_for`] says, typed).
    pub fn connect_options(&self, user: &str, db: &str) -> PgConnectOptions {
        connect_options(&self.pgdata, self.port, user, db)
    }

    /// Whether [`Cluster::stop`] stops the postmaster: we started it, or adopted it from a
    /// starter that died without stopping it. Not when another live process started it.
    pub fn owned(&self) -> bool {
        !matches!(self.ownership, Ownership::Borrowed)
    }

    /// Stops the postmaster if we own it: fast shutdown (SIGINT: roll back open transactions,
    /// checkpoint, exit), then SIGQUIT (immediate shutdown) if it takes over 30 s. A no-op for a
    /// cluster another process owns.
    pub async fn stop(mut self) -> Result<(), ClusterError> {
        let outcome = match std::mem::replace(&mut self.ownership, Ownership::Borrowed) {
            Ownership::Borrowed => return Ok(()),
            Ownership::Child(child) => stop_child(self.pid, child).await,
            Ownership::Adopted => stop_pid(self.pid, &self.pgdata).await,
        };
        remove_owner(&self.home);
        outcome
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A detached postmaster is meant to outlive us; an attached one must not be orphaned.
        if self.owned() && !self.detached {
            let _ = kill(self.pid, Signal::SIGINT);
        }
    }
}

/// Stops the postmaster running on the cluster under `home`, whoever started it (the test
/// script stops the shared test cluster with it): SIGINT to the pid in `pgdata/postmaster.pid`,
/// then wait until it is gone (SIGQUIT after 30 s). Returns whether a postmaster was running.
pub async fn stop_home(home: &Path) -> Result<bool, ClusterError> {
    let pgdata = home.join("pgdata");
    let Some(pid_file) = read_pid_file(&pgdata)? else {
        return Ok(false);
    };
    let pid = Pid::from_raw(pid_file.pid);
    if !is_live_postgres(pid, None) {
        return Ok(false);
    }
    stop_pid(pid, &pgdata).await?;
    Ok(true)
}

// --- Starting -------------------------------------------------------------------------------

async fn lock_file(path: &Path) -> Result<Flock<File>, ClusterError> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io_err("open", path))?;
    let owned_path = path.to_path_buf();
    // flock blocks: keep it off the async worker threads.
    tokio::task::spawn_blocking(move || {
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| ClusterError::Io {
            action: "lock",
            path: owned_path,
            source: errno.into(),
        })
    })
    .await
    .map_err(|e| ClusterError::Io { action: "lock", path: path.to_path_buf(), source: io::Error::other(e) })?
}

/// A postmaster already serving `pgdata` (a running server, and the CLI invoked beside it), or
/// `None` when there is none (no pid file, or a stale one: postgres itself replaces it). With
/// `adopt`, one whose starter has died is ours to stop.
async fn find_running(home: &Path, pgdata: &Path, adopt: bool) -> Result<Option<Cluster>, ClusterError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let Some(pid_file) = read_pid_file(pgdata)? else {
            return Ok(None);
        };
        let pid = Pid::from_raw(pid_file.pid);
        if !is_live_postgres(pid, Some(pgdata)) {
            // A stale pid file: its postmaster is gone, a zombie (its parent was killed with
            // `kill -9` and nobody reaped it yet), or the pid now belongs to something else.
            // PostgreSQL itself would refuse to start while the pid "exists" (a zombie does),
            // so the file is removed; no postmaster of this data directory is running.
            remove_stale_pid_file(pgdata, pid_file.pid)?;
            return Ok(None);
        }
        if answers(pgdata, pid_file.port).await {
            let ownership = if adopt && !owner_alive(home) {
                tracing::info!(pid = pid_file.pid, pgdata = %pgdata.display(), "PostgreSQL is running, left by a process that died: adopting it");
                write_owner(home)?;
                Ownership::Adopted
            } else {
                tracing::info!(pid = pid_file.pid, pgdata = %pgdata.display(), "PostgreSQL is already running: using it");
                Ownership::Borrowed
            };
            return Ok(Some(Cluster {
                home: home.to_path_buf(),
                pgdata: pgdata.to_path_buf(),
                port: pid_file.port,
                pid,
                ownership,
                detached: false,
            }));
        }
        // Alive but silent: starting up, shutting down, or recovering. Wait for it to settle.
        if Instant::now() >= deadline {
            return Err(ClusterError::Unresponsive { pid: pid_file.pid, pgdata: pgdata.to_path_buf() });
        }
        tokio::time::sleep(POLL * 4).await;
    }
}

async fn start(home: &Path, pgdata: &Path, cfg: &ClusterConfig) -> Result<Cluster, ClusterError> {
    let log_path = home.join("postgres.log");
    let initialised = pgdata.join("PG_VERSION").exists();
    let data_major = if initialised {
        let v = fs::read_to_string(pgdata.join("PG_VERSION")).map_err(io_err("read", &pgdata.join("PG_VERSION")))?;
        Some(v.trim().parse::<u32>().map_err(|_| ClusterError::NotACluster { pgdata: pgdata.to_path_buf() })?)
    } else {
        None
    };
    let bin = find_binaries(data_major, pgdata).await?;
    let run_as = resolve_run_as(cfg, pgdata, initialised).await?;
    if !initialised {
        init(home, pgdata, &bin, &run_as, &log_path).await?;
    }

    let log = open_log(&log_path)?;
    let log_start = log.metadata().map_err(io_err("read", &log_path))?.len();
    let data_dir = open_dir(pgdata)?;
    let mut cmd = pg_command(&bin.postgres(), &data_dir, &run_as, cfg.detach);
    if cfg.scheduling == Scheduling::Batch {
        batch_scheduling(&mut cmd);
    }
    cmd.arg("-D")
        .arg(DATA_DIR_ARG)
        .arg("-p")
        .arg(PORT.to_string())
        .args(["-c", "listen_addresses="])
        // `entities` has a partition per tenant (migration 0021): a statement run with a generic
        // plan locks every partition it may touch until the transaction ends, and the default
        // lock table (64 per connection) ran out under the realistic mix's pgbench at 50
        // tenants. On the command line, so clusters made before this get it too.
        .args(["-c", &format!("max_locks_per_transaction={MAX_LOCKS_PER_TRANSACTION}")])
        .arg("-c")
        .arg(format!("unix_socket_directories={DATA_DIR_ARG}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io_err("open", &log_path))?)
        .stderr(log);
    let mut child = cmd.spawn().map_err(io_err("run", &bin.postgres()))?;
    drop(data_dir);
    let Some(raw_pid) = child.id() else {
        return Err(ClusterError::Exited {
            status: child.wait().await.map_err(io_err("run", &bin.postgres()))?,
            tail: log_tail(&log_path, log_start),
            log: log_path,
        });
    };
    let pid = Pid::from_raw(raw_pid as i32);

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(io_err("run", &bin.postgres()))? {
            return Err(ClusterError::Exited { status, tail: log_tail(&log_path, log_start), log: log_path });
        }
        if answers(pgdata, PORT).await {
            break;
        }
        if Instant::now() >= deadline {
            let _ = stop_child(pid, child).await;
            return Err(ClusterError::StartTimeout { tail: log_tail(&log_path, log_start), log: log_path });
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::info!(
        pid = raw_pid,
        pgdata = %pgdata.display(),
        version = %bin.version,
        user = %run_as.name,
        scheduling = cfg.scheduling.name(),
        "started PostgreSQL"
    );
    // A detached cluster has no owner: nobody stops it but `stop_home`.
    if !cfg.detach {
        if let Err(e) = write_owner(home) {
            let _ = stop_child(pid, child).await;
            return Err(e);
        }
    }
    Ok(Cluster {
        home: home.to_path_buf(),
        pgdata: pgdata.to_path_buf(),
        port: PORT,
        pid,
        ownership: Ownership::Child(child),
        detached: cfg.detach,
    })
}

/// Runs initdb into `pgdata.init` and renames it to `pgdata` when complete, so an interrupted
/// initdb never leaves a half-made cluster where the next start would trust it.
async fn init(home: &Path, pgdata: &Path, bin: &PgBin, run_as: &RunAs, log_path: &Path) -> Result<(), ClusterError> {
    if pgdata.exists() {
        // An empty directory (made by hand, or by an older layout) is fine to replace.
        let empty = fs::read_dir(pgdata).map_err(io_err("read", pgdata))?.next().is_none();
        if !empty {
            return Err(ClusterError::NotACluster { pgdata: pgdata.to_path_buf() });
        }
        fs::remove_dir(pgdata).map_err(io_err("remove", pgdata))?;
    }
    let staging = home.join("pgdata.init");
    tracing::info!(pgdata = %pgdata.display(), version = %bin.version, user = %run_as.name, "creating a PostgreSQL cluster");

    // C.UTF-8 gives lower()/upper()/ILIKE on non-ASCII text and byte-order (fast, stable)
    // collation; a libc without that locale gets the plain C locale.
    let mut outcome = Ok(());
    for locale in [["--locale", "C.UTF-8"], ["--no-locale", ""]] {
        outcome = run_initdb(&staging, bin, run_as, log_path, &locale).await;
        match &outcome {
            Err(ClusterError::Initdb { output, .. }) if output.contains("invalid locale") => continue,
            _ => break,
        }
    }
    outcome?;

    let conf = staging.join("postgresql.conf");
    let mut f = OpenOptions::new().append(true).open(&conf).map_err(io_err("open", &conf))?;
    f.write_all(tuned_settings(machine_memory_bytes()).as_bytes()).map_err(io_err("write", &conf))?;
    f.sync_all().map_err(io_err("write", &conf))?;
    drop(f);

    fs::rename(&staging, pgdata).map_err(io_err("rename", &staging))?;
    File::open(home).and_then(|d| d.sync_all()).map_err(io_err("sync", home))?;
    Ok(())
}

async fn run_initdb(
    staging: &Path,
    bin: &PgBin,
    run_as: &RunAs,
    log_path: &Path,
    locale: &[&str; 2],
) -> Result<(), ClusterError> {
    if staging.exists() {
        fs::remove_dir_all(staging).map_err(io_err("remove", staging))?;
    }
    fs::DirBuilder::new().mode(0o700).create(staging).map_err(io_err("create", staging))?;
    // The umask may have narrowed the mode; postgres insists on 0700 or 0750.
    fs::set_permissions(staging, fs::Permissions::from_mode(0o700)).map_err(io_err("chmod", staging))?;
    if run_as.switch {
        nix::unistd::chown(staging, Some(run_as.uid), Some(run_as.gid)).map_err(|e| ClusterError::Io {
            action: "chown",
            path: staging.to_path_buf(),
            source: e.into(),
        })?;
    }
    let data_dir = open_dir(staging)?;
    let initdb = bin.bindir.join("initdb");
    let mut cmd = pg_command(&initdb, &data_dir, run_as, false);
    cmd.args(["-D", DATA_DIR_ARG, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"])
        .args(locale.iter().filter(|a| !a.is_empty()))
        .arg("--no-instructions")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = cmd.output().await.map_err(io_err("run", &initdb))?;
    drop(data_dir);
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    // The log keeps initdb's output too: it is the first place to look when a start fails.
    if let Ok(mut log) = open_log(log_path) {
        let _ = log.write_all(output.as_bytes());
    }
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError::Initdb { status: out.status, output })
    }
}

/// Locks per connection in the cluster's shared lock table (Postgres's default is 64): room for
/// a transaction over a few hundred tenants' partitions. About 270 bytes each, times
/// `max_connections` (200): ~14 MB of shared memory.
const MAX_LOCKS_PER_TRANSACTION: u32 = 256;

/// Settings appended to `postgresql.conf` at initdb time, computed from the machine's memory.
/// The data directory is the place to tune them afterwards.
fn tuned_settings(ram: u64) -> String {
    const MB: u64 = 1024 * 1024;
    let ram_mb = ram / MB;
    let shared_buffers = (ram_mb / 8).clamp(128, 2048);
    let effective_cache = (ram_mb / 2).max(shared_buffers);
    let maintenance = (ram_mb / 16).clamp(64, 1024);
    format!(
        "\n# ---- Added by Switchyard at initdb time, for a machine with {ram_mb} MB of RAM ----\n\
         # Unix socket only, in the (private) data directory; also forced on the command line.\n\
         listen_addresses = ''\n\
         max_connections = 200\n\
         shared_buffers = {shared_buffers}MB\n\
         effective_cache_size = {effective_cache}MB\n\
         maintenance_work_mem = {maintenance}MB\n\
         work_mem = 8MB\n\
         wal_buffers = 16MB\n\
         max_wal_size = 2GB\n\
         min_wal_size = 256MB\n\
         checkpoint_timeout = 15min\n\
         checkpoint_completion_target = 0.9\n\
         # A committed transition must survive a crash: keep these on.\n\
         synchronous_commit = on\n\
         fsync = on\n\
         full_page_writes = on\n\
         timezone = 'UTC'\n"
    )
}

/// Physical memory, or the cgroup limit when it is lower (a container).
fn machine_memory_bytes() -> u64 {
    let mut ram = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(1 << 30, |kb| kb * 1024);
    for limit in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
        if let Some(bytes) = fs::read_to_string(limit).ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            ram = ram.min(bytes);
        }
    }
    ram
}

/// Creates the `switchyard` database on first start.
async fn ensure_database(pgdata: &Path, port: u16) -> Result<(), ClusterError> {
    let mut conn = PgConnection::connect_with(&connect_options(pgdata, port, SUPERUSER, "postgres")).await?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(DATABASE)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        sqlx::query(&format!("create database {DATABASE}")).execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}

fn connect_options(pgdata: &Path, port: u16, user: &str, db: &str) -> PgConnectOptions {
    PgConnectOptions::new().socket(pgdata).port(port).username(user).database(db).disable_statement_logging()
}

fn socket_path(pgdata: &Path, port: u16) -> PathBuf {
    pgdata.join(format!(".s.PGSQL.{port}"))
}

/// Whether the server on `pgdata` accepts a connection and answers a query.
async fn answers(pgdata: &Path, port: u16) -> bool {
    if !socket_path(pgdata, port).exists() {
        return false;
    }
    let opts = connect_options(pgdata, port, SUPERUSER, "postgres");
    let attempt = async {
        let mut conn = PgConnection::connect_with(&opts).await?;
        sqlx::query("select 1").execute(&mut conn).await?;
        conn.close().await
    };
    matches!(tokio::time::timeout(Duration::from_secs(5), attempt).await, Ok(Ok(())))
}

fn open_log(path: &Path) -> Result<File, ClusterError> {
    OpenOptions::new().create(true).append(true).mode(0o640).open(path).map_err(io_err("open", path))
}

fn open_dir(path: &Path) -> Result<File, ClusterError> {
    // O_CLOEXEC (std's default) keeps it out of every other child; pre_exec dup2s it to fd 3.
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_DIRECTORY.bits())
        .open(path)
        .map_err(io_err("open", path))
}

/// The last lines `postgres.log` got since `from` (this start's lines, not older runs').
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if let Err(e) = read {
        return format!("(cannot read the log: {e})");
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

// --- Who owns the running postmaster -------------------------------------------------------

/// `<home>/postmaster.owner`: the process that started the running postmaster and will stop
/// it, as `<pid> <start time>` (the start time tells a live owner from a reused pid).
fn owner_path(home: &Path) -> PathBuf {
    home.join("postmaster.owner")
}

/// `/proc/<pid>/stat` field 22, the process's start time in clock ticks since boot.
fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after `(comm)` start at field 3.
    stat.rsplit_once(')')?.1.split_whitespace().nth(22 - 3)?.parse().ok()
}

fn owner_record(pid: i32) -> Option<String> {
    process_start_time(pid).map(|t| format!("{pid} {t}\n"))
}

fn write_owner(home: &Path) -> Result<(), ClusterError> {
    let path = owner_path(home);
    let record = owner_record(std::process::id() as i32).unwrap_or_default();
    fs::write(&path, record).map_err(io_err("write", &path))
}

/// Whether the process named by the owner file is alive (and is the same process).
fn owner_alive(home: &Path) -> bool {
    let Ok(text) = fs::read_to_string(owner_path(home)) else {
        return false;
    };
    let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    owner_record(pid).is_some_and(|now| now.trim() == text.trim())
}

/// Removes the owner file if it names us.
fn remove_owner(home: &Path) {
    let path = owner_path(home);
    if fs::read_to_string(&path).ok() == owner_record(std::process::id() as i32) {
        let _ = fs::remove_file(path);
    }
}

// --- Running as another user, with the data directory as fd 3 -------------------------------

/// The OS user PostgreSQL runs as.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: Uid,
    gid: Gid,
    /// We are root and must drop to `uid`/`gid` in the child.
    switch: bool,
}

async fn resolve_run_as(cfg: &ClusterConfig, pgdata: &Path, initialised: bool) -> Result<RunAs, ClusterError> {
    let requested = cfg.pg_user.clone().or_else(pg_user_from_env);
    if !nix::unistd::geteuid().is_root() {
        let uid = nix::unistd::geteuid();
        let name = User::from_uid(uid).ok().flatten().map_or_else(|| uid.to_string(), |u| u.name);
        if let Some(req) = requested.filter(|r| *r != name) {
            tracing::warn!(requested = %req, user = %name, "not root: PostgreSQL runs as the current user, SWITCHYARD_PG_USER is ignored");
        }
        return Ok(RunAs { name, uid, gid: nix::unistd::getegid(), switch: false });
    }

    if initialised {
        // The data directory's owner is the only user postgres will run it as.
        let owner = Uid::from_raw(fs::metadata(pgdata).map_err(io_err("read", pgdata))?.uid());
        if owner.is_root() {
            return Err(ClusterError::User {
                user: "root".into(),
                reason: format!("{} is owned by root; chown -R it to an unprivileged user", pgdata.display()),
            });
        }
        let user = lookup_uid(owner)?;
        if let Some(req) = requested.filter(|r| *r != user.name) {
            tracing::warn!(requested = %req, owner = %user.name, "the existing cluster runs as the owner of its data directory");
        }
        return Ok(run_as(user));
    }

    let user = match requested {
        Some(name) => lookup_name(&name)?
            .ok_or_else(|| ClusterError::User { user: name.clone(), reason: "no such user".into() })?,
        None => match lookup_name("postgres")? {
            Some(u) => u,
            None => match lookup_name(DEFAULT_SYSTEM_USER)? {
                Some(u) => u,
                None => create_system_user(DEFAULT_SYSTEM_USER).await?,
            },
        },
    };
    if user.uid.is_root() {
        return Err(ClusterError::User { user: user.name, reason: "PostgreSQL refuses to run as root".into() });
    }
    Ok(run_as(user))
}

fn run_as(user: User) -> RunAs {
    RunAs { name: user.name, uid: user.uid, gid: user.gid, switch: true }
}

fn lookup_name(name: &str) -> Result<Option<User>, ClusterError> {
    User::from_name(name).map_err(|e| ClusterError::User { user: name.to_string(), reason: e.to_string() })
}

fn lookup_uid(uid: Uid) -> Result<User, ClusterError> {
    User::from_uid(uid)
        .map_err(|e| e.to_string())
        .and_then(|u| u.ok_or_else(|| "no such user".to_string()))
        .map_err(|reason| ClusterError::User { user: uid.to_string(), reason })
}

/// Where processes of this machine take turns to create the system user (root only).
const USERADD_LOCK: &str = "/etc/.switchyard-useradd.lock";

/// Creates the system user `name`, or finds it when another process (a second server, a test
/// running beside us) created it first. The check and the `useradd` happen under a file lock:
/// `useradd` does not reliably exclude a concurrent `useradd` of the same name (seen on an
/// overlay filesystem: six at once all succeed, each with its own uid, and the last file wins,
/// leaving the others running PostgreSQL as a uid that has no user).
async fn create_system_user(name: &str) -> Result<User, ClusterError> {
    let _turn = lock_file(Path::new(USERADD_LOCK)).await?;
    if let Some(user) = lookup_name(name)? {
        return Ok(user);
    }
    tracing::info!(user = name, "creating a system user to run PostgreSQL");
    // Root's PATH may lack /usr/sbin (e.g. `su` without `-`).
    let useradd =
        ["/usr/sbin/useradd", "/sbin/useradd"].into_iter().find(|p| Path::new(p).is_file()).unwrap_or("useradd");
    let out = tokio::process::Command::new(useradd)
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "Switchyard embedded PostgreSQL",
            name,
        ])
        .output()
        .await
        .map_err(|e| ClusterError::User { user: name.to_string(), reason: format!("cannot run useradd: {e}") })?;
    if !out.status.success() {
        return Err(ClusterError::User {
            user: name.to_string(),
            reason: format!("useradd failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    lookup_name(name)?.ok_or_else(|| ClusterError::User {
        user: name.to_string(),
        reason: "useradd succeeded but the user is not visible".into(),
    })
}

/// A command for a PostgreSQL binary that sees `data_dir` as fd 3, runs as `run_as`, with a
/// clean environment, from `/` (our working directory may be unreachable for that user).
/// `detach`: its own session (outlives us); otherwise its own process group (a terminal's
/// Ctrl-C reaches only us, and we stop it in order).
fn pg_command(program: &Path, data_dir: &File, run_as: &RunAs, detach: bool) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin").current_dir("/");
    if let Some(tz) = std::env::var_os("TZ") {
        cmd.env("TZ", tz);
    }
    if !detach {
        cmd.process_group(0);
    }
    let fd = data_dir.as_raw_fd();
    let (switch, uid, gid) = (run_as.switch, run_as.uid, run_as.gid);
    #[expect(
        unsafe_code,
        reason = "pre_exec runs between fork and exec; the closure only makes async-signal-safe \
                  calls (dup2, fcntl, setsid, setgroups, setgid, setuid) and does not allocate"
    )]
    // SAFETY: see the reason above; every value the closure uses is copied in.
    unsafe {
        cmd.pre_exec(move || {
            if fd == DATA_FD {
                // dup2 onto itself would keep FD_CLOEXEC: clear it instead.
                nix::fcntl::fcntl(DATA_FD, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
            } else {
                nix::unistd::dup2(fd, DATA_FD)?;
            }
            if detach {
                nix::unistd::setsid()?;
            }
            if switch {
                // Groups first: after setuid we could no longer drop root's groups.
                nix::unistd::setgroups(&[])?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
            }
            Ok(())
        });
    }
    cmd
}

/// Makes `cmd`'s process (and so every process it forks) a `SCHED_BATCH` task: see
/// [`Scheduling`]. Best effort: an unprivileged process may always switch between the normal
/// and the batch policy, and where it cannot (a restricted container), the cluster runs as it
/// would have.
fn batch_scheduling(cmd: &mut tokio::process::Command) {
    #[expect(
        unsafe_code,
        reason = "pre_exec runs between fork and exec; the closure makes one async-signal-safe \
                  system call (sched_setscheduler) and does not allocate"
    )]
    // SAFETY: see the reason above; the closure captures nothing.
    unsafe {
        cmd.pre_exec(|| {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
            Ok(())
        });
    }
}

// --- Finding the binaries ----------------------------------------------------------------

/// A directory holding `initdb` and `postgres` of one PostgreSQL version.
#[derive(Debug, Clone)]
struct PgBin {
    bindir: PathBuf,
    major: u32,
    version: String,
}

impl PgBin {
    fn postgres(&self) -> PathBuf {
        self.bindir.join("postgres")
    }
}

/// Where PostgreSQL's server binaries are installed by Debian and Ubuntu, one folder per major.
const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";

/// The binaries to run: with `want`, the cluster's own major version; otherwise the first
/// PostgreSQL ≥ 15 on `PATH`, then in `/usr/lib/postgresql/*/bin`, newest first.
async fn find_binaries(want: Option<u32>, pgdata: &Path) -> Result<PgBin, ClusterError> {
    let dirs = candidate_dirs(std::env::var_os("PATH").as_deref(), Path::new(DEBIAN_PG_LIB));
    pick_binaries(dirs, want, pgdata).await
}

/// Directories holding both `initdb` and `postgres`, symlinks resolved, without duplicates:
/// those on `path` in order, then `<lib>/<version>/bin` by descending version.
fn candidate_dirs(path: Option<&std::ffi::OsStr>, lib: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut add = |dir: PathBuf| {
        // Resolve symlinks (e.g. /usr/local/bin/postgres → /usr/lib/postgresql/15/bin/postgres):
        // the real directory is where initdb looks for postgres and its share files.
        if let Ok(real) = fs::canonicalize(dir.join("postgres")) {
            if let Some(bindir) = real.parent() {
                if bindir.join("initdb").is_file() && !dirs.iter().any(|d| d == bindir) {
                    dirs.push(bindir.to_path_buf());
                }
            }
        }
    };
    for dir in path.map(std::env::split_paths).into_iter().flatten() {
        if dir.join("initdb").is_file() {
            add(dir);
        }
    }
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key: Vec<u32> = name.split('.').map(str::parse).collect::<Result<_, _>>().ok()?;
            Some((key, e.path().join("bin")))
        })
        .collect();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, dir) in versioned {
        add(dir);
    }
    dirs
}

async fn pick_binaries(dirs: Vec<PathBuf>, want: Option<u32>, pgdata: &Path) -> Result<PgBin, ClusterError> {
    let mut found = Vec::new();
    for bindir in dirs {
        match postgres_version(&bindir).await {
            Some((major, version)) => found.push(PgBin { bindir, major, version }),
            None => tracing::debug!(bindir = %bindir.display(), "cannot run postgres --version"),
        }
    }
    let pick = match want {
        Some(major) => found.iter().find(|b| b.major == major),
        None => found.iter().find(|b| b.major >= MIN_MAJOR),
    };
    if let Some(bin) = pick {
        return Ok(bin.clone());
    }
    match (want, found.first()) {
        (_, None) => Err(ClusterError::BinariesNotFound),
        (Some(data_major), Some(_)) => Err(ClusterError::VersionMismatch {
            pgdata: pgdata.to_path_buf(),
            data_major,
            found: found
                .iter()
                .map(|b| format!("{} ({})", b.version, b.bindir.display()))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        (None, Some(old)) => Err(ClusterError::TooOld { version: old.version.clone(), bindir: old.bindir.clone() }),
    }
}

/// `postgres --version` → (major, full version). Runs as us: `--version` is answered before
/// postgres checks for root.
async fn postgres_version(bindir: &Path) -> Option<(u32, String)> {
    let out = tokio::process::Command::new(bindir.join("postgres"))
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

/// `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → (15, "15.18"); also `17beta1`.
fn parse_version(text: &str) -> Option<(u32, String)> {
    let version = text.split(")").nth(1)?.split_whitespace().next()?;
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    Some((digits.parse().ok()?, version.to_string()))
}

// --- The postmaster's pid file and process -----------------------------------------------

#[derive(Debug)]
struct PidFile {
    pid: i32,
    port: u16,
}

/// `pgdata/postmaster.pid`: line 1 the pid, line 4 the port.
fn read_pid_file(pgdata: &Path) -> Result<Option<PidFile>, ClusterError> {
    let path = pgdata.join("postmaster.pid");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse::<i32>().ok());
    let port = lines.nth(2).and_then(|l| l.trim().parse::<u16>().ok());
    // A pid file being written (or garbage) is treated as absent: postgres sorts it out.
    Ok(match (pid, port) {
        (Some(pid), Some(port)) if pid > 0 => Some(PidFile { pid, port }),
        _ => None,
    })
}

/// Removes `pgdata/postmaster.pid` if it still names `pid` (another start may have replaced it).
fn remove_stale_pid_file(pgdata: &Path, pid: i32) -> Result<(), ClusterError> {
    let path = pgdata.join("postmaster.pid");
    if read_pid_file(pgdata)?.is_some_and(|p| p.pid == pid) {
        tracing::warn!(pid, pgdata = %pgdata.display(), "removing a stale postmaster.pid (its postmaster is not running)");
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &path)(e)),
        }
    }
    Ok(())
}

/// Whether `pid` is a live (not zombie) PostgreSQL process — of `pgdata`, when given (its
/// working directory is its data directory). A stale pid file may name a pid since reused by
/// something else, e.g. after a container restart.
fn is_live_postgres(pid: Pid, pgdata: Option<&Path>) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.as_raw()));
    let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // `pid (comm) S …`: the state follows the last ')' (comm may contain ')').
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z' | 'X') | None) {
        return false;
    }
    let cmdline = fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    if !(cmdline.contains("postgres") || cmdline.contains("postmaster")) {
        return false;
    }
    // Another cluster's postmaster, on a reused pid: not ours. (When its working directory
    // cannot be read, assume it is ours: refusing to start is safer than two postmasters.)
    match (pgdata, fs::read_link(proc_dir.join("cwd"))) {
        (Some(pgdata), Ok(cwd)) => fs::canonicalize(pgdata).map_or(true, |p| p == cwd),
        _ => true,
    }
}

fn signal(pid: Pid, sig: Signal) -> Result<(), ClusterError> {
    match kill(pid, sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(ClusterError::Signal { pid: pid.as_raw(), source }),
    }
}

/// Whether `pid` has exited (gone, or a zombie). Not `!is_live_postgres`: while a process exits,
/// its `cmdline` reads empty before its state turns to zombie, and it is not gone yet.
fn exited(pid: Pid) -> bool {
    match fs::read_to_string(format!("/proc/{}/stat", pid.as_raw())) {
        Err(_) => true,
        Ok(stat) => {
            matches!(stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()), Some('Z' | 'X'))
        }
    }
}

/// Waits until the postmaster `pid` has exited and removed its pid file.
async fn wait_gone(pid: Pid, pgdata: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let pid_file_gone = match read_pid_file(pgdata) {
            Ok(Some(p)) => p.pid != pid.as_raw(),
            Ok(None) => true,
            Err(_) => false,
        };
        if pid_file_gone && exited(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stops a postmaster that is not our child: SIGINT, then SIGQUIT.
async fn stop_pid(pid: Pid, pgdata: &Path) -> Result<(), ClusterError> {
    signal(pid, Signal::SIGINT)?;
    if wait_gone(pid, pgdata, STOP_TIMEOUT).await {
        return Ok(());
    }
    tracing::warn!(pid = pid.as_raw(), "PostgreSQL did not stop in time: SIGQUIT");
    signal(pid, Signal::SIGQUIT)?;
    if wait_gone(pid, pgdata, QUIT_TIMEOUT).await {
        Ok(())
    } else {
        Err(ClusterError::StopTimeout { pid: pid.as_raw() })
    }
}

/// Stops our own postmaster child: SIGINT, then SIGQUIT, then SIGKILL.
async fn stop_child(pid: Pid, mut child: tokio::process::Child) -> Result<(), ClusterError> {
    for (sig, timeout) in
        [(Signal::SIGINT, STOP_TIMEOUT), (Signal::SIGQUIT, QUIT_TIMEOUT), (Signal::SIGKILL, QUIT_TIMEOUT)]
    {
        if sig != Signal::SIGINT {
            tracing::warn!(pid = pid.as_raw(), signal = %sig, "PostgreSQL did not stop in time");
        }
        signal(pid, sig)?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => {
                tracing::info!(pid = pid.as_raw(), %status, "stopped PostgreSQL");
                return Ok(());
            }
            Ok(Err(e)) => {
                return Err(ClusterError::Io {
                    action: "wait for",
                    path: PathBuf::from(format!("pid {}", pid.as_raw())),
                    source: e,
                })
            }
            Err(_elapsed) => continue,
        }
    }
    Err(ClusterError::StopTimeout { pid: pid.as_raw() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some((15, "15.18".to_string()))
        );
        assert_eq!(parse_version("postgres (PostgreSQL) 17beta1"), Some((17, "17beta1".to_string())));
        assert_eq!(parse_version("postgres (PostgreSQL) 9.6.24"), Some((9, "9.6.24".to_string())));
        assert_eq!(parse_version("garbage"), None);
    }

    /// A fake installation: `<root>/lib/<version>/bin/{initdb,postgres}`, where `postgres`
    /// answers `--version` like the real one.
    fn fake_install(root: &Path, versions: &[&str]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let lib = root.join("lib");
        for v in versions {
            let bin = lib.join(v).join("bin");
            fs::create_dir_all(&bin).expect("mkdir");
            fs::write(bin.join("initdb"), "#!/bin/sh\nexit 1\n").expect("initdb");
            let postgres = bin.join("postgres");
            fs::write(&postgres, format!("#!/bin/sh\necho 'postgres (PostgreSQL) {v}.3'\n")).expect("postgres");
            fs::set_permissions(&postgres, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        lib
    }

    #[tokio::test]
    async fn finds_binaries_on_path_then_newest_first_and_checks_versions() {
        let root = std::env::temp_dir().join(format!("switchyard-cluster-bins-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let lib = fake_install(&root, &["14", "16", "9.6"]);
        let lib = fs::canonicalize(lib).expect("canonical");
        // A PATH entry of symlinks into 16 (like /usr/local/bin): resolved and not repeated.
        let on_path = root.join("path");
        fs::create_dir_all(&on_path).expect("mkdir");
        for exe in ["initdb", "postgres"] {
            std::os::unix::fs::symlink(lib.join("16/bin").join(exe), on_path.join(exe)).expect("symlink");
        }
        let path = std::env::join_paths([root.join("nothing-here"), on_path]).expect("PATH");
        let dirs = candidate_dirs(Some(&path), &lib);
        assert_eq!(dirs, ["16", "14", "9.6"].map(|v| lib.join(v).join("bin")));
        let pgdata = Path::new("/nowhere/pgdata");

        let newest = pick_binaries(dirs.clone(), None, pgdata).await.expect("16");
        assert_eq!((newest.major, newest.version.as_str()), (16, "16.3"));
        let same = pick_binaries(dirs.clone(), Some(14), pgdata).await.expect("14");
        assert_eq!(same.bindir, lib.join("14/bin"));
        let missing = pick_binaries(dirs.clone(), Some(13), pgdata).await;
        assert!(matches!(missing, Err(ClusterError::VersionMismatch { data_major: 13, .. })), "{missing:?}");

        let old = pick_binaries(dirs[1..].to_vec(), None, pgdata).await;
        assert!(matches!(&old, Err(ClusterError::TooOld { version, .. }) if version == "14.3"), "{old:?}");
        let none = pick_binaries(Vec::new(), None, pgdata).await.expect_err("nothing installed");
        assert_eq!(
            none.to_string(),
            "PostgreSQL ≥ 15 server binaries (initdb, postgres) not found on PATH or in \
             /usr/lib/postgresql/*/bin: install PostgreSQL 15 or newer (e.g. apt-get install postgresql), \
             or set DATABASE_URL to use an existing database"
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn settings_scale_with_memory_within_bounds() {
        let gib = 1024 * 1024 * 1024;
        assert!(tuned_settings(24 * gib).contains("shared_buffers = 2048MB"));
        assert!(tuned_settings(4 * gib).contains("shared_buffers = 512MB"));
        assert!(tuned_settings(gib / 2).contains("shared_buffers = 128MB"));
        assert!(tuned_settings(gib).contains("synchronous_commit = on"));
    }

    #[test]
    fn urls_percent_encode_the_socket_directory() {
        let cluster = Cluster {
            pgdata: PathBuf::from("/tmp/a b/pgdata"),
            port: PORT,
            home: PathBuf::from("/tmp/a b"),
            pid: Pid::from_raw(1),
            ownership: Ownership::Borrowed,
            detached: false,
        };
        assert_eq!(cluster.url_for("switchyard_app", "t_1"), "postgres://switchyard_app@%2Ftmp%2Fa%20b%2Fpgdata/t_1");
        let url = cluster.superuser_url("switchyard");
        assert_eq!(url, "postgres://switchyard@%2Ftmp%2Fa%20b%2Fpgdata/switchyard");
        let opts: PgConnectOptions = url.parse().expect("sqlx parses the URL");
        assert_eq!(opts.get_socket(), Some(&PathBuf::from("/tmp/a b/pgdata")));
        assert_eq!(opts.get_username(), "switchyard");
        assert_eq!(opts.get_database(), Some("switchyard"));
    }

    /// On a machine with no `postgres` user, several processes starting clusters at once (the
    /// test suite does) all create-or-find the same system user. Root only: it adds a real user
    /// (a fresh name) and removes it afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creations_of_the_system_user_agree() {
        if !nix::unistd::geteuid().is_root() || !Path::new("/usr/sbin/useradd").is_file() {
            eprintln!("skipped: needs root and useradd");
            return;
        }
        let name = format!("swy-race-{}", std::process::id());
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                tokio::spawn({
                    let name = name.clone();
                    async move { create_system_user(&name).await }
                })
            })
            .collect();
        let mut uids = Vec::new();
        for t in tasks {
            uids.push(t.await.expect("join").map(|u| u.uid));
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entries = passwd.lines().filter(|l| l.starts_with(&format!("{name}:"))).count();
        let _ = std::process::Command::new("/usr/sbin/userdel").arg(&name).status();
        assert_eq!(entries, 1, "one user in /etc/passwd");
        let uids: Vec<Uid> =
            uids.into_iter().collect::<Result<_, _>>().expect("every creation succeeds or finds the user");
        assert!(uids.windows(2).all(|w| w[0] == w[1]), "{uids:?}");
        assert!(!uids[0].is_root());
    }

    /// After `kill -9` of the server and its Postgres, `postmaster.pid` may name a zombie (not
    /// yet reaped), a process that is gone, or a pid reused by something else: the next start
    /// removes it (PostgreSQL itself would refuse to start while the pid "exists"), and leaves
    /// alone a pid file of a live postmaster.
    #[tokio::test]
    async fn a_stale_pid_file_is_removed_before_starting() {
        let home = std::env::temp_dir().join(format!("switchyard-stale-{}", uuid::Uuid::new_v4().simple()));
        let pgdata = home.join("pgdata");
        fs::create_dir_all(&pgdata).expect("mkdir");
        let write = |pid: u32| {
            fs::write(pgdata.join("postmaster.pid"), format!("{pid}\n{}\n1700000000\n5432\n", pgdata.display()))
                .expect("write pid file");
        };
        // A zombie: a child that exited and was not waited for.
        let zombie = std::process::Command::new("true").spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(200));
        // Something alive that is not a postmaster (a reused pid).
        let mut other = std::process::Command::new("sleep").arg("30").spawn().expect("spawn");
        // A pid that is gone.
        let mut gone = std::process::Command::new("true").spawn().expect("spawn");
        let gone_pid = gone.id();
        gone.wait().expect("reaped");
        for pid in [zombie.id(), other.id(), gone_pid] {
            write(pid);
            let found = find_running(&home, &pgdata, false).await.expect("no error");
            assert!(found.is_none(), "pid {pid}");
            assert!(!pgdata.join("postmaster.pid").exists(), "the stale pid file naming {pid} is removed");
        }
        let _ = other.kill();
        let _ = other.wait();
        drop(zombie);
        let _ = fs::remove_dir_all(&home);
    }
}
