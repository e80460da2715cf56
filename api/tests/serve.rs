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

/// A running `serve`: the child, its banner, the port it chose and where its stderr goes.
struct Server {
    child: Child,
    banner: Vec<String>,
    port: u16,
    stderr: PathBuf,
}

impl Server {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Starts `serve` on port 0 (the kernel picks a free port, so no other test can take it between
/// our choice and the bind) with `env` added, reads the port from its banner and waits for
/// `/readyz`. Its stderr goes to `stderr`, shown in every failure.
fn start(home: &Path, stderr: &Path, demo: bool, env: &[(&str, String)]) -> Server {
    let mut c = command(home, 0);
    c.arg("serve");
    if demo {
        c.arg("--demo");
    }
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let log = std::fs::File::create(stderr).expect("stderr file");
    let mut child = c.stdout(Stdio::piped()).stderr(log).spawn().expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let log = |lines: &[String]| {
        format!("stdout: {lines:?}\nstderr:\n{}", std::fs::read_to_string(stderr).unwrap_or_default())
    };
    let mut lines = Vec::new();
    let mut port = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(addr) = line.strip_prefix("Switchyard listening on http://") {
                let addr: std::net::SocketAddr = addr.trim().parse().expect("an address in the banner");
                port = Some(addr.port());
            }
            lines.push(line);
        }
        if let Some(port) = port.filter(|p| http_status(*p, "/readyz", None) == Some(200)) {
            // Collect the rest of the banner.
            while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
                lines.push(line);
            }
            return Server { child, banner: lines, port, stderr: stderr.to_path_buf() };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited early with {status}\n{}", log(&lines));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not become ready in 120 s\n{}", log(&lines));
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

/// SIGTERM, then the exit status (within 60 s).
fn terminate(server: Server) -> std::process::ExitStatus {
    let Server { mut child, stderr, .. } = server;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            if !status.success() {
                eprintln!(
                    "serve exited with {status}; stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "serve did not stop after SIGTERM; stderr:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_demo_token_sigterm_and_restart() {
    let (parent, home) = private_home();

    let server = start(&home, &parent.join("serve-1.log"), true, &[]);
    let (port, banner) = (server.port, &server.banner);
    assert!(banner.iter().any(|l| l.contains("sales@chemichemi.test")), "banner lists the demo users: {banner:?}");
    assert!(banner.iter().any(|l| l.contains("switchyard token")), "banner says how to get a token: {banner:?}");
    let pg = postmaster_pid(&home).expect("the embedded cluster runs");
    assert!(alive(pg));

    // The CLI reaches the running server's cluster and prints a token as its last line.
    let t = token(&home, port, "sales@chemichemi.test");
    assert_eq!(http_status(port, "/api/v1/t/chemichemi/entities/customer", Some(&t)), Some(200));
    assert_eq!(http_status(port, "/api/v1/t/chemichemi/entities/customer", None), Some(401));
    assert_eq!(http_status(port, "/healthz", None), Some(200));
    assert!(alive(pg), "the CLI must not stop the server's cluster; stderr:\n{}", server.stderr());

    let status = terminate(server);
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
    assert!(!alive(pg), "postgres {pg} is still running after SIGTERM");
    assert!(postmaster_pid(&home).is_none(), "postmaster.pid left behind");

    // A second start reuses the cluster and its data (and the generated JWT secret).
    let server = start(&home, &parent.join("serve-2.log"), false, &[]);
    let port = server.port;
    assert_eq!(
        http_status(port, "/api/v1/t/chemichemi/entities/customer", Some(&t)),
        Some(200),
        "stderr:\n{}",
        server.stderr()
    );
    let pg2 = postmaster_pid(&home).expect("cluster");
    let status = terminate(server);
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
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
    let other_home = home.join("unused-home");

    // Without a JWT secret, a server on an external database refuses to start.
    let out = command(&other_home, 0).args(["serve"]).env("DATABASE_URL", &url).output().expect("serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started without a JWT secret: {stderr}");
    assert!(stderr.contains("SWITCHYARD_JWT_SECRET"), "{stderr}");

    // With one, it migrates that database and serves; no embedded cluster is created. The wait
    // for the server runs off the runtime's thread (it blocks).
    // JSON logs at INFO: one line per answered request.
    let env = [
        ("DATABASE_URL", url.clone()),
        ("SWITCHYARD_JWT_SECRET", "x".repeat(40)),
        ("SWITCHYARD_LOG_FORMAT", "json".to_string()),
        ("RUST_LOG", "info,sqlx=warn".to_string()),
    ];
    let log = parent.join("serve.log");
    let server = tokio::task::spawn_blocking(move || start(&other_home, &log, false, &env)).await.expect("start");
    assert!(!home.join("unused-home/pgdata").exists(), "an embedded cluster was created despite DATABASE_URL");
    let port = server.port;
    let status = tokio::task::spawn_blocking(move || http_status(port, "/healthz", None)).await.expect("healthz");
    assert_eq!(status, Some(200));
    let logs = server.stderr();
    let finished: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|l| l["fields"]["message"] == "request finished")
        .collect();
    let health = finished.iter().find(|l| l["span"]["http.route"] == "/healthz").unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(health["level"], "INFO", "{health}");
    assert_eq!(health["fields"]["http.status"], 200, "{health}");
    assert!(health["fields"]["latency_ms"].as_f64().is_some(), "{health}");
    assert_eq!(health["span"]["http.method"], "GET", "{health}");
    assert!(uuid::Uuid::parse_str(health["span"]["request.id"].as_str().unwrap_or("")).is_ok(), "{health}");
    let status = tokio::task::spawn_blocking(move || terminate(server)).await.expect("terminate");
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
    let db = sqlx::PgPool::connect(&url).await.expect("connect");
    let migrations: i64 =
        sqlx::query_scalar("select count(*) from _sqlx_migrations where success").fetch_one(&db).await.expect("count");
    assert_eq!(migrations as usize, api::db::MIGRATOR.iter().count());
    db.close().await;
    cluster.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&parent);
}
