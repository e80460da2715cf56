//! The `switchyard` binary: `serve [--demo]` (the HTTP server and its workers, on `DATABASE_URL`
//! or the embedded cluster), `token` (an access token for a user, for scripts and tests),
//! `openapi` (the generic OpenAPI document, `api::cli::openapi`, which the studio's types are
//! generated from), `tenant validate|plan|apply|migrate|export` (tenant packages,
//! `api::cli::tenant`) and `user invite` (a first admin, `api::cli::user`). It only wires the
//! library together: settings, database, keys, state, router, workers, shutdown.

use std::time::Duration;

use anyhow::{bail, Context};
use api::auth::Keys;
use api::config::Config;
use api::db::Database;
use api::state::AppState;
use clap::{Parser, Subcommand};
use engine::limits::Limits;
use engine::store::Store;

/// mimalloc instead of the system allocator: a request allocates and frees many small objects
/// across threads (JSON values, Rhai maps, headers), and glibc's malloc took ~15% of the
/// process's CPU under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "switchyard", version, about = "A multi-tenant workflow and rules engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (with no DATABASE_URL, on a private Postgres under $SWITCHYARD_HOME).
    Serve {
        /// Apply the example tenants (examples/*) with their dev users and sample data.
        #[arg(long)]
        demo: bool,
    },
    /// Print an access token for a user of a tenant (its roles come from the tenant's config).
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// How long the token lives, e.g. 15m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
    },
    /// Print the generic OpenAPI document (any tenant, any type; the studio's types come from it).
    Openapi,
    /// Tenant packages: validate, plan, apply, migrate, export.
    Tenant {
        #[command(subcommand)]
        command: api::cli::tenant::TenantCommand,
    },
    /// A tenant's users: invite (creates the user if needed; prints an invitation token).
    User {
        #[command(subcommand)]
        command: api::cli::user::UserCommand,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    api::telemetry::init(match cli.command {
        Command::Serve { .. } => "info,sqlx=warn",
        _ => "warn",
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    if let Command::Openapi = cli.command {
        let doc = api::cli::openapi::generic_document().map_err(anyhow::Error::msg)?;
        // Not println!: a closed pipe (`| head`) is an error to report, not a panic.
        let mut out = std::io::stdout().lock();
        std::io::Write::write_all(&mut out, format!("{}\n", serde_json::to_string_pretty(&doc)?).as_bytes())?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let cfg = Config::from_env()?;
    match cli.command {
        Command::Serve { demo } => serve(cfg, demo).await?,
        Command::Token { tenant, user, ttl } => token(cfg, &tenant, &user, ttl.into()).await?,
        Command::Tenant { command } => return Ok(api::cli::tenant::run(cfg, command).await?),
        Command::User { command } => print!("{}", api::cli::user::execute(&cfg, command).await?.stdout),
        Command::Openapi => {}
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The HS256 secrets: `SWITCHYARD_JWT_SECRET` (comma-separated; the first signs, all verify, so
/// a key can be rotated without logging everyone out), or (embedded database only) one generated
/// once and kept in `$SWITCHYARD_HOME/jwt-secret`.
fn jwt_secrets(cfg: &Config) -> anyhow::Result<Vec<Vec<u8>>> {
    if let Some(s) = &cfg.jwt_secret {
        let secrets: Vec<Vec<u8>> =
            s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect();
        if secrets.is_empty() || secrets.iter().any(|s| s.len() < 32) {
            bail!("SWITCHYARD_JWT_SECRET must hold one or more comma-separated secrets of at least 32 characters");
        }
        return Ok(secrets);
    }
    if cfg.database_url.is_some() {
        bail!("SWITCHYARD_JWT_SECRET is required when DATABASE_URL is set");
    }
    let path = cfg.home.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(vec![s.trim().as_bytes().to_vec()]);
    }
    std::fs::create_dir_all(&cfg.home).with_context(|| format!("creating {}", cfg.home.display()))?;
    let secret: [u8; 32] = rand::random();
    let hex = hex::encode(secret);
    write_private(&path, &hex).with_context(|| format!("writing {}", path.display()))?;
    Ok(vec![hex.into_bytes()])
}

fn keys(cfg: &Config) -> anyhow::Result<Keys> {
    Keys::from_secrets(&jwt_secrets(cfg)?).context("no JWT secret")
}

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())
}

async fn serve(cfg: Config, demo: bool) -> anyhow::Result<()> {
    let keys = keys(&cfg)?;
    let ops = api::state::Ops::new(api::config::OpsConfig::from_env()?);
    let db = Database::open(&cfg).await?;
    let limits = Limits::default();
    let store = Store::new(db.app.clone(), limits.clone()).with_idempotency_ttl(ops.config.idempotency_ttl);
    let demo_tenants = if demo {
        match api::demo::apply_examples(&db.owner, &store, &limits, &ops.destinations()).await {
            Ok(t) => t,
            Err(e) => {
                db.close().await?;
                return Err(e.into());
            }
        }
    } else {
        Vec::new()
    };
    let state = AppState::new(api::state::Shared {
        store,
        keys: std::sync::Arc::new(keys),
        owner: db.owner.clone(),
        ops: ops.clone(),
    });
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            db.close().await?;
            bail!("cannot listen on {}: {e}", cfg.listen);
        }
    };
    let addr = listener.local_addr()?;
    print_banner(addr, &demo_tenants);
    // Outbox relay and webhook deliveries (see api::workers), stopped after the last request.
    let workers = match api::workers::Workers::start(&state.store, &ops.hub, (&*ops.config).into()) {
        Ok(w) => w,
        Err(e) => {
            db.close().await?;
            bail!("cannot start the workers: {e}");
        }
    };
    let app = api::http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // On a signal: stop accepting, end the event streams (they would keep the server open) and
    // let in-flight requests finish; then stop the workers, close the pools, stop the cluster.
    let hub = ops.hub.clone();
    let stopping = async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        hub.shut_down();
    };
    let served = axum::serve(api::http::listener(listener), app).with_graceful_shutdown(stopping).await;
    workers.stop(Duration::from_secs(30)).await;
    db.close().await?;
    served?;
    Ok(())
}

fn print_banner(addr: std::net::SocketAddr, demo: &[api::demo::DemoTenant]) {
    println!("Switchyard listening on http://{addr}");
    // The studio, when built (`make demo` builds it; see api::routes::studio).
    let studio = api::routes::studio::dir_from_env();
    if studio.join("index.html").is_file() {
        println!("Studio: http://{addr}/studio/");
    } else {
        println!("Studio: not built ({} is missing; `make demo` builds it)", studio.display());
    }
    for t in demo {
        println!();
        println!("Demo tenant `{}` (config version {}, {} sample rows). Users:", t.slug, t.version, t.rows);
        for (email, roles) in &t.users {
            println!("  {email:<32} {}", roles.join(", "));
        }
        println!();
        // The example request: the package's first user, on its first type.
        let user = t.users.first().map(|(email, _)| email.as_str()).unwrap_or("admin@example.test");
        let (slug, password, ty) = (&t.slug, api::demo::DEMO_PASSWORD, &t.first_type);
        println!("Every demo user's password is `{password}`. Log in and call the API:");
        println!(
            "  TOKEN=$(curl -s http://{addr}/api/v1/auth/login -H 'content-type: application/json' \\\n    -d '{{\"tenant\": \"{slug}\", \"email\": \"{user}\", \"password\": \"{password}\"}}' | jq -r .access_token)"
        );
        println!("  curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/api/v1/t/{slug}/entities/{ty}");
        println!("Or get a token without a password (this machine only):");
        println!("  TOKEN=$(switchyard token --tenant {slug} --user {user} | tail -n1)");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn token(cfg: Config, tenant: &str, email: &str, ttl: Duration) -> anyhow::Result<()> {
    let keys = keys(&cfg)?;
    let db = Database::open(&cfg).await?;
    let result = async {
        let slug = engine::store::TenantSlug::parse(tenant)?;
        let found = api::auth::sql::user_by_email(&db.owner, &slug, email).await?;
        let (tenant_id, user) = found.with_context(|| format!("no tenant `{tenant}`"))?;
        let user = user.with_context(|| format!("no user `{email}` in tenant `{tenant}`"))?;
        let (user_id, email, roles, active) = (user.id, user.email, user.roles, user.active);
        if !active {
            bail!("user `{email}` is deactivated");
        }
        let ttl = chrono::Duration::from_std(ttl)?;
        let token = keys.issue(tenant_id, tenant, &user_id.to_string(), &email, &roles, ttl)?;
        eprintln!(
            "Access token for {email} ({}) in {tenant}, valid {}:",
            roles.join(", "),
            humantime::format_duration(ttl.to_std()?)
        );
        println!("{token}");
        Ok(())
    }
    .await;
    db.close().await?;
    result
}
