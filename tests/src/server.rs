//! A real server for a test: the API router on a free 127.0.0.1 port, over a test database with
//! a package applied, and a client that can act as any of the package's users.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use api::auth::Keys;
use api::config::OpsConfig;
use api::state::{AppState, Ops};
use engine::limits::Limits;
use engine::store::{Store, TenantId};
use serde_json::Value;
use tenants::Package;
use uuid::Uuid;

use crate::TestDb;

/// The folder of a package: `examples/<name>` or `tests/fixtures/<name>`.
pub fn package_dir(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = root.join("examples").join(name);
    if example.is_dir() {
        example
    } else {
        root.join("tests/fixtures").join(name)
    }
}

pub struct TestServer {
    pub base: String,
    pub store: Store,
    pub tenant: TenantId,
    pub slug: String,
    /// The server's operational side (its event hub, to start workers on).
    pub ops: Ops,
    keys: Keys,
    client: reqwest::Client,
    /// The serving task (`None` for a second tenant's view of the same server).
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A response: status and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The error code of an error envelope, or "" for a success.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The JSON pointers of a `VALIDATION_FAILED` answer's errors, in order (empty otherwise).
    pub fn error_paths(&self) -> Vec<&str> {
        self.body["error"]["details"]["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["path"].as_str()).collect())
            .unwrap_or_default()
    }
}

impl TestServer {
    /// Applies the package `name` (publish, users, sample data) and serves the API with `ops`.
    pub async fn start_with(db: &TestDb, name: &str, ops: Ops) -> TestServer {
        let limits = Limits::default();
        let package = Package::load_dir(&package_dir(name)).unwrap_or_else(|e| panic!("package {name}: {e:?}"));
        let store = Store::new(db.app.clone(), limits.clone()).with_idempotency_ttl(ops.config.idempotency_ttl);
        let applied = tenants::apply::publish(&db.owner, &package, "test", &limits).await.expect("publish");
        tenants::apply::upsert_users(&db.owner, applied.tenant, &package.tenant.users, None).await.expect("users");
        tenants::apply::load_sample_data(&db.owner, &store, applied.tenant, &package).await.expect("sample data");
        Self::serve(db, store, applied.tenant, applied.slug, ops).await
    }

    /// Applies `package` (publish, users, sample data) and serves the API with `ops`.
    pub async fn start_package(db: &TestDb, package: &Package, ops: Ops) -> TestServer {
        let limits = Limits::default();
        let store = Store::new(db.app.clone(), limits.clone()).with_idempotency_ttl(ops.config.idempotency_ttl);
        let applied = tenants::apply::publish(&db.owner, package, "test", &limits).await.expect("publish");
        tenants::apply::upsert_users(&db.owner, applied.tenant, &package.tenant.users, None).await.expect("users");
        tenants::apply::load_sample_data(&db.owner, &store, applied.tenant, package).await.expect("sample data");
        Self::serve(db, store, applied.tenant, applied.slug, ops).await
    }

    /// [`TestServer::start`] with operational settings of the test's own (rate limits, CORS,
    /// webhooks); `start` has the defaults without rate limits.
    pub async fn start(db: &TestDb, name: &str) -> TestServer {
        let unlimited = OpsConfig { rate_limit_user: None, rate_limit_ip: None, ..OpsConfig::default() };
        Self::start_with(db, name, Ops::new(unlimited)).await
    }

    /// Serves the API (defaults, no rate limits) for a tenant already published, e.g. by the
    /// CLI: nothing is applied here.
    pub async fn serve_published(db: &TestDb, slug: &str) -> TestServer {
        let unlimited = OpsConfig { rate_limit_user: None, rate_limit_ip: None, ..OpsConfig::default() };
        let ops = Ops::new(unlimited);
        let store = Store::new(db.app.clone(), Limits::default()).with_idempotency_ttl(ops.config.idempotency_ttl);
        let tenant = store
            .tenant_by_slug(&engine::store::TenantSlug::parse(slug).expect("a slug"))
            .await
            .expect("tenant")
            .unwrap_or_else(|| panic!("no tenant {slug}"));
        Self::serve(db, store, tenant, slug.to_string(), ops).await
    }

    async fn serve(db: &TestDb, store: Store, tenant: TenantId, slug: String, ops: Ops) -> TestServer {
        let secret: [u8; 32] = rand::random();
        let keys = Keys::from_secret(&secret);
        let state = AppState::new(api::state::Shared {
            store: store.clone(),
            keys: Arc::new(keys.clone()),
            owner: db.owner.clone(),
            ops: ops.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = api::http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(api::http::listener(listener), app).await;
        });
        TestServer { base, store, tenant, slug, ops, keys, client: reqwest::Client::new(), task: Some(task) }
    }

    /// Publishes another package (users and sample data too) on the same database and returns a
    /// view of THIS server (same address, same signing keys) for that tenant: tokens of one
    /// tenant are then genuine tokens, presented on the other tenant's paths.
    pub async fn second_tenant(&self, db: &TestDb, package: Package) -> TestServer {
        let limits = Limits::default();
        let applied = tenants::apply::publish(&db.owner, &package, "test", &limits).await.expect("publish");
        tenants::apply::upsert_users(&db.owner, applied.tenant, &package.tenant.users, None).await.expect("users");
        tenants::apply::load_sample_data(&db.owner, &self.store, applied.tenant, &package).await.expect("sample data");
        TestServer {
            base: self.base.clone(),
            store: self.store.clone(),
            tenant: applied.tenant,
            slug: applied.slug,
            ops: self.ops.clone(),
            keys: self.keys.clone(),
            client: self.client.clone(),
            task: None,
        }
    }

    /// Another handle on the same server and tenant (for a spawned task); it does not own the
    /// serving task.
    pub fn clone_view(&self) -> TestServer {
        TestServer {
            base: self.base.clone(),
            store: self.store.clone(),
            tenant: self.tenant,
            slug: self.slug.clone(),
            ops: self.ops.clone(),
            keys: self.keys.clone(),
            client: self.client.clone(),
            task: None,
        }
    }

    /// A token for a user of the tenant, with the roles the database gives it.
    pub async fn token(&self, db: &TestDb, email: &str) -> String {
        let mut tx = db.tenant_tx(self.tenant).await;
        let (id, roles): (Uuid, Vec<String>) =
            sqlx::query_as("select id, roles from users where tenant_id = $1 and lower(email) = lower($2)")
                .bind(self.tenant)
                .bind(email)
                .fetch_one(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("user {email}: {e}"));
        tx.commit().await.expect("commit");
        self.token_for(&id.to_string(), email, &roles)
    }

    /// A token with arbitrary claims for this server's tenant.
    pub fn token_for(&self, user: &str, email: &str, roles: &[String]) -> String {
        self.keys.issue(self.tenant, &self.slug, user, email, roles, chrono::Duration::hours(1)).expect("token")
    }

    /// A token with claims of our choosing: any tenant id and slug (same signing key).
    pub fn token_for_tenant(&self, tenant: Uuid, slug: &str, user: &str, email: &str, roles: &[String]) -> String {
        self.keys
            .issue(TenantId::from_credential(tenant), slug, user, email, roles, chrono::Duration::hours(1))
            .expect("token")
    }

    /// A token for another tenant (same signing key).
    pub fn foreign_token(&self, tenant: Uuid, slug: &str, roles: &[String]) -> String {
        self.keys
            .issue(
                TenantId::from_credential(tenant),
                slug,
                "intruder",
                "intruder@elsewhere.test",
                roles,
                chrono::Duration::hours(1),
            )
            .expect("token")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/t/{}/{}", self.base, self.slug, path.trim_start_matches('/'))
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Reply { status, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(reqwest::Method::GET, &self.url(path), Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.request(reqwest::Method::POST, &self.url(path), Some(token), Some(body), &[]).await
    }

    /// Creates an entity and returns its JSON (panics unless 201).
    pub async fn create(&self, token: &str, type_name: &str, data: Value) -> Value {
        let r = self.post(&format!("entities/{type_name}"), token, &serde_json::json!({ "data": data })).await;
        assert_eq!(r.status, 201, "create {type_name}: {:?}", r.body);
        r.body
    }

    /// Executes a transition.
    pub async fn fire(&self, token: &str, type_name: &str, id: &str, name: &str, input: Value) -> Reply {
        self.post(
            &format!("entities/{type_name}/{id}/transitions/{name}"),
            token,
            &serde_json::json!({ "input": input }),
        )
        .await
    }

    /// The id of a sample row by its key.
    pub fn sample(&self, key: &str) -> String {
        tenants::apply::sample_id(self.tenant, key).to_string()
    }

    /// The server's background workers (relay, deliveries, timers) with its own configuration,
    /// looking for work every 200 ms. Stop them at the end of the test.
    pub fn workers(&self) -> api::workers::Workers {
        let config = api::workers::WorkerConfig {
            poll: std::time::Duration::from_millis(200),
            ..api::workers::WorkerConfig::from(&*self.ops.config)
        };
        api::workers::Workers::start(&self.store, &self.ops.hub, config).expect("workers")
    }

    /// [`TestServer::workers`], once their listener listens: from then on the server keeps
    /// credential answers between requests (`api::auth::cache`), as `serve` does.
    pub async fn workers_with_auth_cache(&self) -> api::workers::Workers {
        let workers = self.workers();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.ops.hub.auth().is_live() {
            assert!(std::time::Instant::now() < deadline, "the listener did not start listening in 10 s");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        workers
    }
}

/// Operations for tests that deliver webhooks to 127.0.0.1 (one attempt each, so a closed port
/// dead-letters at once) with no rate limits.
pub fn loopback_webhooks() -> OpsConfig {
    OpsConfig {
        webhook_allow: api::config::parse_nets("127.0.0.1").expect("allow"),
        webhook_max_attempts: 1,
        rate_limit_user: None,
        rate_limit_ip: None,
        ..OpsConfig::default()
    }
}
