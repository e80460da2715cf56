//! The test harness itself: the embedded cluster (`api::cluster`) and the per-test databases.

use std::fs;
use std::ops::Not as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use api::cluster::{stop_home, Cluster, ClusterConfig, Scheduling};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use sqlx::{Connection, PgConnection};
use switchyard_tests::db::APP_ROLE;
use switchyard_tests::{init_tracing, test_db};

/// A fresh directory that only root (or we) can enter, like a checkout under `/root` or a
/// `mktemp -d` folder: the cluster's user must not need to reach it.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> PrivateDir {
        let dir = std::env::temp_dir().join(format!("switchyard-harness-{}", uuid::Uuid::new_v4().simple()));
        fs::DirBuilder::new().mode(0o700).create(&dir).expect("create private dir");
        PrivateDir(dir)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = stop_home_blocking(&self.0.join("home"));
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Last resort for a failed test: no postmaster may outlive it.
fn stop_home_blocking(home: &Path) -> Result<bool, api::cluster::ClusterError> {
    let home = home.to_path_buf();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(stop_home(&home))
    })
    .join()
    .expect("stop thread")
}

/// Nothing of the cluster remains: no pid file, the postmaster is gone, and no process has the
/// data directory as its working directory (every postgres process chdirs there).
fn assert_stopped(pgdata: &Path, pid: i32) {
    assert!(!pgdata.join("postmaster.pid").exists(), "postmaster.pid left behind");
    assert!(dead_or_zombie(pid), "postmaster {pid} still runs");
    let pgdata = fs::canonicalize(pgdata).expect("pgdata");
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let is_pid = entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit());
        if is_pid {
            if let Ok(cwd) = fs::read_link(entry.path().join("cwd")) {
                assert_ne!(cwd, pgdata, "process {:?} still works in the data directory", entry.file_name());
            }
        }
    }
}

/// Gone, or exited and waiting for a parent that does not reap (an orphan's new parent may be
/// slow to).
fn dead_or_zombie(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
        return true;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

async fn query_one(cluster: &Cluster, sql: &str) -> i64 {
    // Through the URL, as a user of `superuser_url` would.
    let mut conn = PgConnection::connect(&cluster.superuser_url("switchyard")).await.expect("connect via URL");
    let v: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query");
    conn.close().await.expect("close");
    v
}

#[tokio::test]
async fn cluster_restarts_with_its_data_and_leaves_no_process_behind() {
    init_tracing();
    let dir = PrivateDir::new();
    let cfg = ClusterConfig::new(dir.0.join("home"));

    let cluster = Cluster::ensure_started(&cfg).await.expect("first start");
    assert!(cluster.owned());
    let pgdata = cluster.pgdata().to_path_buf();
    if nix::unistd::geteuid().is_root() {
        // The case this test is about: root-only parent, postgres running as someone else.
        let parent = fs::metadata(&dir.0).expect("parent");
        assert_eq!((parent.uid(), parent.mode() & 0o777), (0, 0o700));
        assert_ne!(fs::metadata(&pgdata).expect("pgdata").uid(), 0, "pgdata must not be root's");
        assert_eq!(fs::metadata(dir.0.join("home")).expect("home").uid(), 0, "home stays root's");
    }
    let mut conn = PgConnection::connect(&cluster.superuser_url("switchyard")).await.expect("connect");
    sqlx::raw_sql("create table kept (x bigint); insert into kept values (42)")
        .execute(&mut conn)
        .await
        .expect("write");
    conn.close().await.expect("close");

    // A second start while it runs (the CLI beside a server) uses it and does not own it.
    let beside = Cluster::ensure_started(&cfg).await.expect("start beside");
    assert!(!beside.owned());
    assert_eq!(beside.pid(), cluster.pid());
    beside.stop().await.expect("no-op stop");
    assert_eq!(query_one(&cluster, "select x from kept").await, 42);

    let pid = cluster.pid();
    cluster.stop().await.expect("stop");
    assert_stopped(&pgdata, pid);

    let again = Cluster::ensure_started(&cfg).await.expect("second start");
    assert!(again.owned());
    assert_ne!(again.pid(), pid);
    assert_eq!(query_one(&again, "select x from kept").await, 42);
    let pid = again.pid();
    again.stop().await.expect("stop again");
    assert_stopped(&pgdata, pid);
    let log = fs::read_to_string(dir.0.join("home/postgres.log")).expect("log");
    assert!(log.contains("database system is shut down"), "{log}");

    // A server that cannot start: the error quotes the log's reason.
    let mut conf = fs::OpenOptions::new().append(true).open(pgdata.join("postgresql.conf")).expect("conf");
    std::io::Write::write_all(&mut conf, b"\nshared_buffers = 'plenty'\n").expect("write conf");
    let err = Cluster::ensure_started(&cfg).await.expect_err("bad config");
    assert!(err.to_string().contains(r#"invalid value for parameter "shared_buffers""#), "{err}");
    assert!(!pgdata.join("postmaster.pid").exists());
}

/// Not a test on its own: `a_cluster_whose_owner_was_killed_is_adopted` runs it as the owner
/// process it then kills.
#[tokio::test]
#[ignore = "a helper process of a_cluster_whose_owner_was_killed_is_adopted"]
async fn helper_owner_process() {
    let Some(home) = std::env::var_os(HELPER_HOME) else { return };
    let _cluster = Cluster::ensure_started(&ClusterConfig::new(PathBuf::from(home))).await.expect("helper start");
    println!("{HELPER_READY}");
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
}

const HELPER_HOME: &str = "SWITCHYARD_HARNESS_HELPER_HOME";
const HELPER_READY: &str = "helper: cluster started";

#[tokio::test]
async fn a_cluster_whose_owner_was_killed_is_adopted() {
    use std::io::BufRead as _;
    init_tracing();
    let dir = PrivateDir::new();
    let home = dir.0.join("home");
    let mut owner = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "harness::helper_owner_process", "--ignored", "--nocapture"])
        .env(HELPER_HOME, &home)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the owner");
    let stdout = owner.stdout.take().expect("stdout");
    let ready = std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains(HELPER_READY));
    assert!(ready, "the owner process did not start the cluster");

    // Its owner is alive: we only borrow it.
    let beside = Cluster::ensure_started(&ClusterConfig::new(&home)).await.expect("beside");
    assert!(!beside.owned());
    let pid = beside.pid();
    drop(beside);

    // The owner is killed hard: the postmaster survives it, and the next start adopts it.
    owner.kill().expect("kill the owner");
    owner.wait().expect("reap the owner");
    assert!(dead_or_zombie(pid).not(), "the postmaster must survive its owner");
    let adopted = Cluster::ensure_started(&ClusterConfig::new(&home)).await.expect("adopt");
    assert!(adopted.owned());
    assert_eq!(adopted.pid(), pid);
    let pgdata = adopted.pgdata().to_path_buf();
    adopted.stop().await.expect("stop the adopted cluster");
    assert_stopped(&pgdata, pid);
}

/// The scheduling policy of a process (`SCHED_OTHER`, `SCHED_BATCH`, …): field 41 of
/// `/proc/<pid>/stat`, counted after the command name (which may hold spaces, in parentheses).
fn policy_of(pid: i32) -> i64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_name = &stat[stat.rfind(')').expect("name") + 1..];
    after_name.split_whitespace().nth(38).expect("policy field").parse().expect("policy")
}

const SCHED_OTHER: i64 = 0;
const SCHED_BATCH: i64 = 3;

/// The embedded cluster runs as batch tasks (a backend woken by the server does not preempt it:
/// docs/benchmarks.md, session 17), the postmaster and the backends it forks; `normal` opts out.
#[tokio::test]
async fn the_cluster_runs_as_batch_tasks_unless_told_otherwise() {
    init_tracing();
    for (scheduling, policy) in [(Scheduling::Batch, SCHED_BATCH), (Scheduling::Normal, SCHED_OTHER)] {
        let dir = PrivateDir::new();
        let cfg = ClusterConfig { scheduling, ..ClusterConfig::new(dir.0.join("home")) };
        let cluster = Cluster::ensure_started(&cfg).await.expect("start");
        let mut conn = PgConnection::connect(&cluster.superuser_url("switchyard")).await.expect("connect");
        let backend: i32 = sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut conn).await.expect("pid");
        assert_eq!(policy_of(cluster.pid()), policy, "{scheduling:?}: the postmaster");
        assert_eq!(policy_of(backend), policy, "{scheduling:?}: a backend");
        conn.close().await.expect("close");
        let (pid, pgdata) = (cluster.pid(), cluster.pgdata().to_path_buf());
        cluster.stop().await.expect("stop");
        assert_stopped(&pgdata, pid);
    }
}

#[tokio::test]
async fn stop_home_stops_a_detached_cluster() {
    init_tracing();
    let dir = PrivateDir::new();
    let home = dir.0.join("home");
    let cfg = ClusterConfig { detach: true, ..ClusterConfig::new(&home) };
    let cluster = Cluster::ensure_started(&cfg).await.expect("start");
    let (pid, pgdata) = (cluster.pid(), cluster.pgdata().to_path_buf());
    // Dropping a detached cluster leaves it running (the test cluster outlives its starter).
    drop(cluster);
    assert_eq!(kill(Pid::from_raw(pid), None), Ok(()));
    assert!(stop_home(&home).await.expect("stop_home"));
    assert_stopped(&pgdata, pid);
    assert!(!stop_home(&home).await.expect("stop_home again"), "nothing left to stop");
}

#[tokio::test]
async fn each_test_gets_its_own_migrated_database() {
    let started = std::time::Instant::now();
    let a = test_db().await;
    let first = started.elapsed();
    let started = std::time::Instant::now();
    let b = test_db().await;
    eprintln!("test_db(): first {first:?}, next {:?}", started.elapsed());
    assert_ne!(a.name, b.name);

    let migrations: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&a.owner)
        .await
        .expect("migrations table");
    assert_eq!(migrations, switchyard_tests::db::MIGRATOR.iter().count() as i64);

    sqlx::query("create table only_in_a (x int)").execute(&a.owner).await.expect("create");
    let in_b: bool =
        sqlx::query_scalar("select to_regclass('only_in_a') is not null").fetch_one(&b.owner).await.expect("query b");
    assert!(!in_b, "databases must be independent");

    let who: String = sqlx::query_scalar("select current_user::text").fetch_one(&a.app).await.expect("app pool");
    assert_eq!(who, APP_ROLE);
    let super_: bool = sqlx::query_scalar("select rolsuper or rolbypassrls from pg_roles where rolname = current_user")
        .fetch_one(&a.app)
        .await
        .expect("role");
    assert!(!super_, "the app role must be subject to row-level security");

    // The URLs reach the same databases.
    let mut conn = PgConnection::connect(&a.app_url).await.expect("app url");
    let here: String = sqlx::query_scalar("select current_database()::text").fetch_one(&mut conn).await.expect("db");
    assert_eq!(here, a.name);
    conn.close().await.expect("close");

    let (name_a, name_b) = (a.name.clone(), b.name.clone());
    let owner = b.owner.clone();
    a.drop_db().await.expect("drop a");
    // Dropped without drop_db: Drop cleans up too.
    let c = test_db().await;
    drop(b);
    let left: i64 = sqlx::query_scalar("select count(*) from pg_database where datname = any($1)")
        .bind(vec![name_a, name_b])
        .fetch_one(&c.owner)
        .await
        .expect("pg_database");
    assert_eq!(left, 0, "test databases must be dropped");
    drop(owner);
    c.drop_db().await.expect("drop c");
}

#[tokio::test]
async fn parallel_test_dbs() {
    let dbs = futures_join(8).await;
    let mut names: Vec<_> = dbs.iter().map(|d| d.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 8);
    for db in dbs {
        db.drop_db().await.expect("drop");
    }
}

async fn futures_join(n: usize) -> Vec<switchyard_tests::TestDb> {
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(test_db())).collect();
    let mut dbs = Vec::new();
    for h in handles {
        dbs.push(h.await.expect("task"));
    }
    dbs
}
