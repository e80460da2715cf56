//! A tenant published with the `switchyard` binary alone gets its first admin (issue 12), as
//! docs/tenant-package.md ("From a folder to a working tenant") tells a consultant: `serve`
//! (no demo) on a private embedded cluster, then `tenant plan`, `tenant apply`, `user invite`
//! (the token on its last line), and over HTTP accept-invite, login, and the admin creating a
//! user.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn command(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(repo_root())
        .env("SWITCHYARD_HOME", home)
        .env("SWITCHYARD_LISTEN", "127.0.0.1:0")
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHYARD_JWT_SECRET")
        .env_remove("SWITCHYARD_APP_DATABASE_URL")
        .env("RUST_LOG", "warn");
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    command(home).args(args).output().expect("run switchyard")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `serve` without `--demo`; its port, read from the banner.
fn serve(home: &Path, log: &Path) -> (Child, u16) {
    let err = std::fs::File::create(log).expect("log file");
    let mut child = command(home).arg("serve").stdout(Stdio::piped()).stderr(err).spawn().expect("spawn serve");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(addr) = line.strip_prefix("Switchyard listening on http://") {
                let addr: std::net::SocketAddr = addr.trim().parse().expect("an address");
                return (child, addr.port());
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// A minimal HTTP/1.1 request with a JSON body; the status and the JSON answer.
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let text = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(text).unwrap_or(Value::String(text.to_string())))
}

#[test]
fn a_tenant_applied_with_the_cli_gets_its_first_admin() {
    let parent = std::env::temp_dir().join(format!("switchyard-first-admin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&parent).expect("mkdir");
    std::fs::set_permissions(&parent, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    let home = parent.join("home");
    // A fresh package folder, as a consultant would have it.
    let package = parent.join("helpdesk");
    std::fs::create_dir_all(package.join("types")).expect("mkdir");
    let fixture = repo_root().join("tests/fixtures/config-base");
    for file in ["tenant.yaml", "types/ticket.yaml"] {
        std::fs::copy(fixture.join(file), package.join(file)).expect("copy the package");
    }
    let dir = package.to_str().expect("utf-8 path");

    let log = parent.join("serve.log");
    let (mut server, port) = serve(&home, &log);
    let result = std::panic::catch_unwind(|| {
        let plan = run(&home, &["tenant", "plan", dir]);
        assert_eq!(plan.status.code(), Some(2), "{}", String::from_utf8_lossy(&plan.stderr));
        assert!(stdout(&plan).contains("+ user admin@helpdesk.test: roles [admin]"), "{}", stdout(&plan));
        let apply = run(&home, &["tenant", "apply", dir]);
        assert!(apply.status.success(), "{}", String::from_utf8_lossy(&apply.stderr));
        // The package's admin exists but has no password.
        let login = |email: &str, password: &str| {
            http(
                port,
                "POST",
                "/api/v1/auth/login",
                None,
                Some(&json!({ "tenant": "helpdesk", "email": email, "password": password })),
            )
        };
        assert_eq!(login("admin@helpdesk.test", "switchyard-demo").0, 401);

        let invite = run(&home, &["user", "invite", "--tenant", "helpdesk", "--email", "admin@helpdesk.test"]);
        assert!(invite.status.success(), "{}", String::from_utf8_lossy(&invite.stderr));
        let token = stdout(&invite).lines().last().expect("a last line").trim().to_string();
        assert!(token.starts_with("syi_"), "{}", stdout(&invite));

        let body = json!({ "token": token, "password": "a long passphrase" });
        let (status, answer) = http(port, "POST", "/api/v1/auth/accept-invite", None, Some(&body));
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = http(port, "POST", "/api/v1/auth/accept-invite", None, Some(&body));
        assert_eq!((status, &answer["error"]["code"]), (401, &json!("UNAUTHORIZED")), "{answer}");

        let (status, answer) = login("admin@helpdesk.test", "a long passphrase");
        assert_eq!(status, 200, "{answer}");
        let admin = answer["access_token"].as_str().expect("access token").to_string();
        let user = json!({ "email": "kim@helpdesk.test", "name": "Kim", "roles": ["agent"] });
        let (status, answer) = http(port, "POST", "/api/v1/t/helpdesk/users", Some(&admin), Some(&user));
        assert_eq!(status, 201, "{answer}");
        let kim = answer["id"].as_str().expect("id").to_string();
        let (status, answer) =
            http(port, "POST", &format!("/api/v1/t/helpdesk/users/{kim}/invite"), Some(&admin), None);
        assert_eq!(status, 201, "{answer}");
        assert!(answer["token"].as_str().is_some_and(|t| t.starts_with("syi_")), "{answer}");

        // A user the package does not list, created by the CLI with roles.
        let args = ["user", "invite", "--tenant", "helpdesk", "--email", "lee@helpdesk.test", "--roles", "admin,agent"];
        let invite = run(&home, &args);
        assert!(invite.status.success(), "{}", String::from_utf8_lossy(&invite.stderr));
        let token = stdout(&invite).lines().last().expect("a last line").trim().to_string();
        let body = json!({ "token": token, "password": "lee's passphrase" });
        assert_eq!(http(port, "POST", "/api/v1/auth/accept-invite", None, Some(&body)).0, 200);
        let (status, answer) = login("lee@helpdesk.test", "lee's passphrase");
        assert_eq!(status, 200, "{answer}");
        let me = answer["access_token"].as_str().expect("access token").to_string();
        let (_, me) = http(port, "GET", "/api/v1/auth/me", Some(&me), None);
        assert_eq!(me["roles"], json!(["admin", "agent"]), "{me}");
        // Unknown roles are refused (exit 1), naming them.
        let args = ["user", "invite", "--tenant", "helpdesk", "--email", "x@helpdesk.test", "--roles", "root"];
        let refused = run(&home, &args);
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("root"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
    });
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(server.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if server.try_wait().expect("wait").is_none() {
        let _ = server.kill();
    }
    if let Err(e) = result {
        eprintln!("serve's log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        std::panic::resume_unwind(e);
    }
    let _ = std::fs::remove_dir_all(&parent);
}
