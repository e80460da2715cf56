//! The `switchyard` binary as a user runs it: `serve --demo` on its own embedded cluster under a
//! private home, `token` while it runs, SIGTERM leaving no postgres behind, a second start
//! reusing the data.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A private home under a 0700 parent (as a checkout under /root or a `mktemp -d` would be).
fn private_home() -> (PathBuf, PathBuf) {
    let parent = std::env::temp_dir().join(format!("switchyard-serve-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&parent).expect("mkdir");
    std::fs::set_permissions(&parent, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    (parent.clone(), parent.join("home"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

fn command(home: &Path, port: u16) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(repo_root())
        .env("SWITCHYARD_HOME", home)
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHYARD_JWT_SECRET")
        .env("RUST_LOG", "warn");
    c
}

/// Starts `serve`, waits for its banner line and for `/readyz`.
fn start(home: &Path, port: u16, demo: bool) -> (Child, Vec<String>) {
    let mut c = command(home, port);
    c.arg("serve");
    if demo {
        c.arg("--demo");
    }
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
        if lines.iter().any(|l| l.starts_with("Switchyard listening"))
            && http_status(port, "/readyz", None) == Some(200)
        {
            // Collect the rest of the banner.
            while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
                lines.push(line);
            }
            return (child, lines);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited early with {status}: {lines:?}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not become ready: {lines:?}");
}

/// A minimal HTTP/1.1 GET (no client dependency needed for two requests).
fn http_status(port: u16, path: &str, token: Option<&str>) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

fn token(home: &Path, port: u16, user: &str) -> String {
    let out = command(home, port)
        .args(["token", "--tenant", "chemichemi", "--user", user, "--ttl", "10m"])
        .output()
        .expect("token");
    assert!(out.status.success(), "token failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().last().expect("a token line").trim().to_string()
}

fn postmaster_pid(home: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(home.join("pgdata/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purpose; /proc/<pid>/stat field 3 is the state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_demo_token_sigterm_and_restart() {
    let (parent, home) = private_home();
    let port = free_port();

    let (server, banner) = start(&home, port, true);
    assert!(banner.iter().any(|l| l.contains("sales@chemichemi.test")), "banner lists the demo users: {banner:?}");
    assert!(banner.iter().any(|l| l.contains("switchyard token")), "banner says how to get a token: {banner:?}");
    let pg = postmaster_pid(&home).expect("the embedded cluster runs");
    assert!(alive(pg));

    // The CLI reaches the running server's cluster and prints a token as its last line.
    let t = token(&home, port, "sales@chemichemi.test");
    assert_eq!(http_status(port, "/api/v1/t/chemichemi/entities/customer", Some(&t)), Some(200));
    assert_eq!(http_status(port, "/api/v1/t/chemichemi/entities/customer", None), Some(401));
    assert_eq!(http_status(port, "/healthz", None), Some(200));
    assert!(alive(pg), "the CLI must not stop the server's cluster");

    let status = terminate(server);
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
    assert!(!alive(pg), "postgres {pg} is still running after SIGTERM");
    assert!(postmaster_pid(&home).is_none(), "postmaster.pid left behind");

    // A second start reuses the cluster and its data (and the generated JWT secret).
    let (server, _) = start(&home, port, false);
    assert_eq!(http_status(port, "/api/v1/t/chemichemi/entities/customer", Some(&t)), Some(200));
    let pg2 = postmaster_pid(&home).expect("cluster");
    let status = terminate(server);
    assert!(status.success());
    assert!(!alive(pg2));
    let _ = std::fs::remove_dir_all(&parent);
}

#[tokio::test]
async fn serve_uses_database_url_and_then_requires_a_jwt_secret() {
    let (parent, home) = private_home();
    let cluster = api::cluster::Cluster::ensure_started(&api::cluster::ClusterConfig::new(home.join("pg")))
        .await
        .expect("cluster");
    let admin = sqlx::PgPool::connect(&cluster.superuser_url("postgres")).await.expect("connect");
    sqlx::query("create database external_app").execute(&admin).await.expect("create database");
    admin.close().await;
    let url = cluster.superuser_url("external_app");
    let port = free_port();
    let other_home = home.join("unused-home");

    // Without a JWT secret, a server on an external database refuses to start.
    let out = command(&other_home, port).args(["serve"]).env("DATABASE_URL", &url).output().expect("serve");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SWITCHYARD_JWT_SECRET"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With one, it migrates that database and serves; no embedded cluster is created.
    let mut c = command(&other_home, port);
    c.args(["serve"]).env("DATABASE_URL", &url).env("SWITCHYARD_JWT_SECRET", "x".repeat(40));
    let child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let mut ready = None;
    for _ in 0..300 {
        ready = http_status(port, "/readyz", None);
        if ready == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ready, Some(200), "serve on DATABASE_URL did not become ready");
    assert!(!other_home.join("pgdata").exists(), "an embedded cluster was created despite DATABASE_URL");
    let status = terminate(child);
    assert!(status.success());
    let db = sqlx::PgPool::connect(&url).await.expect("connect");
    let migrations: i64 =
        sqlx::query_scalar("select count(*) from _sqlx_migrations").fetch_one(&db).await.expect("count");
    assert!(migrations >= 1);
    db.close().await;
    cluster.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&parent);
}
