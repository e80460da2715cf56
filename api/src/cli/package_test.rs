//! `switchyard tenant test DIR`: runs the scenarios a package keeps in `tests/*.yaml` (the format
//! is `tenants::testing`) with the production engine and API, nothing mocked.
//!
//! Each scenario gets a tenant of its own in a throwaway database ([`crate::db::Scratch`]): the
//! package is published there (its users created, its sample data and the scenario's `given`
//! rows loaded), and every step is an HTTP request to the real router, in process, as the user
//! the step names (a token of that user's roles), so permissions, record rules, rules at
//! creation, guards, scripts and follow-ups all apply. `advance` fires the timers due by then
//! (as the server's timer worker would). The database is dropped at the end, whatever happened.
//! Package webhooks are not created: tests send nothing anywhere.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use engine::limits::Limits;
use engine::store::{Store, TenantSlug};
use serde_json::{json, Value};
use tenants::testing::{self, Action, DataSet, Scenario, Step, TestFile};
use tenants::Package;
use tower::ServiceExt;

use crate::auth::Keys;
use crate::config::Config;
use crate::db::Scratch;
use crate::state::{AppState, Ops};

/// Why a test run could not run (a failing scenario is not an error: it is in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("junit: {0}")]
    Junit(String),
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The test file, relative to the package (`tests/shipments.yaml`).
    pub file: String,
    pub name: String,
    pub steps: usize,
    /// The first step that did not do what it expected, and why.
    pub failure: Option<Failure>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct Failure {
    /// 0-based index of the step.
    pub step: usize,
    /// The step, as a line (`transition dispatch on @x as ops@…`).
    pub what: String,
    pub message: String,
}

/// Every scenario's outcome, in file and scenario order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub results: Vec<ScenarioResult>,
    /// Which transitions of the package the scenarios fired.
    pub coverage: testing::Coverage,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.failure.is_some()).count()
    }

    pub fn passed(&self) -> usize {
        self.results.len() - self.failed()
    }

    /// What `tenant test` prints: a line per scenario, the failure under it, a summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut file = "";
        for r in &self.results {
            if r.file != file {
                file = &r.file;
                out.push_str(&format!("{file}\n"));
            }
            match &r.failure {
                None => {
                    out.push_str(&format!("  ok    {} ({} steps, {} ms)\n", r.name, r.steps, r.elapsed.as_millis()))
                }
                Some(f) => out.push_str(&format!(
                    "  FAIL  {}\n        step {} ({}): {}\n",
                    r.name,
                    f.step + 1,
                    f.what,
                    f.message.replace('\n', "\n        ")
                )),
            }
        }
        out.push_str(&format!(
            "{} scenario(s): {} passed, {} failed\n",
            self.results.len(),
            self.passed(),
            self.failed()
        ));
        out.push_str(&self.coverage.line());
        out.push('\n');
        out
    }

    /// The report as JUnit XML (one test suite per file, one test case per scenario), for CI.
    pub fn junit(&self, package: &str) -> Result<String, TestRunError> {
        let mut report = quick_junit::Report::new(format!("switchyard tenant test {package}"));
        let mut files: Vec<&str> = self.results.iter().map(|r| r.file.as_str()).collect();
        files.dedup();
        for file in files {
            let mut suite = quick_junit::TestSuite::new(file);
            for r in self.results.iter().filter(|r| r.file == file) {
                let status = match &r.failure {
                    None => quick_junit::TestCaseStatus::success(),
                    Some(f) => {
                        let mut s = quick_junit::TestCaseStatus::non_success(quick_junit::NonSuccessKind::Failure);
                        s.set_message(format!("step {} ({}): {}", f.step + 1, f.what, f.message));
                        s
                    }
                };
                let mut case = quick_junit::TestCase::new(r.name.as_str(), status);
                case.set_classname(file).set_time(r.elapsed);
                suite.add_test_case(case);
            }
            report.add_test_suite(suite);
        }
        report.to_string().map_err(|e| TestRunError::Junit(e.to_string()))
    }
}

/// Runs every scenario of `files` (read from the package folder `dir`) against a throwaway
/// database of `cfg`'s Postgres.
pub async fn run(
    cfg: &Config,
    dir: &Path,
    package: &Package,
    files: &[(PathBuf, TestFile)],
) -> Result<Report, TestRunError> {
    let scratch = Scratch::create(cfg).await?;
    let result = run_in(&scratch, dir, package, files).await;
    scratch.drop().await?;
    result
}

async fn run_in(
    scratch: &Scratch,
    dir: &Path,
    package: &Package,
    files: &[(PathBuf, TestFile)],
) -> Result<Report, TestRunError> {
    let limits = Limits::default();
    let store = Store::new(scratch.app.clone(), limits.clone());
    let secret: [u8; 32] = rand::random();
    let keys = Keys::from_secret(&secret);
    let ops = Ops::new(crate::config::OpsConfig {
        rate_limit_user: None,
        rate_limit_ip: None,
        ..crate::config::OpsConfig::default()
    });
    let state = AppState::new(crate::state::Shared {
        store: store.clone(),
        keys: Arc::new(keys.clone()),
        owner: scratch.owner.clone(),
        ops,
    });
    let router = crate::http::router(state);

    let mut report = Report::default();
    let mut n = 0usize;
    for (path, file) in files {
        let shown = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        for scenario in &file.scenarios {
            n += 1;
            let started = Instant::now();
            store.set_clock_offset(chrono::Duration::zero());
            let mut run = Run {
                package,
                router: &router,
                store: &store,
                keys: &keys,
                slug: format!("test{n}"),
                offset: chrono::Duration::zero(),
                keys_of: Default::default(),
                tokens: Default::default(),
                user_ids: Default::default(),
            };
            let failure = match run.setup(scratch, package, scenario, &limits).await {
                Err(message) => Some(Failure {
                    step: 0,
                    what: "publishing the package with the scenario's data".to_string(),
                    message,
                }),
                Ok(()) => run.steps(scenario).await,
            };
            report.results.push(ScenarioResult {
                file: shown.clone(),
                name: scenario.name.clone(),
                steps: scenario.steps.len(),
                failure,
                elapsed: started.elapsed(),
            });
        }
    }
    let fired = testing::fired_transitions(&scratch.owner).await?;
    report.coverage = testing::Coverage::of(package, &fired);
    Ok(report)
}

/// The user `check` steps read as (every role), added to each scenario's tenant.
const CHECKER: &str = "checker@tenant-test.invalid";

/// One scenario's tenant and what its steps have named so far.
struct Run<'a> {
    package: &'a Package,
    router: &'a axum::Router,
    store: &'a Store,
    keys: &'a Keys,
    slug: String,
    /// How far `advance` steps have moved the clock.
    offset: chrono::Duration,
    /// `@key` → (type, id) of entities created by steps.
    keys_of: std::collections::HashMap<String, (String, String)>,
    /// Email → access token.
    tokens: std::collections::HashMap<String, String>,
    /// Email (lower case) → the user's id, for `"$user:<email>"`.
    user_ids: std::collections::HashMap<String, String>,
}

impl Run<'_> {
    async fn setup(
        &mut self,
        scratch: &Scratch,
        package: &Package,
        scenario: &Scenario,
        limits: &Limits,
    ) -> Result<(), String> {
        let mut pkg = package.clone();
        pkg.tenant.slug = self.slug.clone();
        pkg.tenant.webhooks.clear();
        let every_role: Vec<String> = pkg.tenant.roles.keys().cloned().collect();
        pkg.tenant.users.push(tenants::package::DevUser {
            email: CHECKER.to_string(),
            name: "tenant test (checks)".to_string(),
            roles: every_role,
            attributes: Default::default(),
        });
        if scenario.data == DataSet::None {
            pkg.data.clear();
        }
        for (i, row) in scenario.given.iter().enumerate() {
            let mut row = row.clone();
            row.origin = format!("given/{i}");
            pkg.data.push(row);
        }
        let applied =
            tenants::apply::publish(&scratch.owner, &pkg, "tenant test", limits).await.map_err(|e| e.to_string())?;
        tenants::apply::upsert_users(&scratch.owner, applied.tenant, &pkg.tenant.users, None)
            .await
            .map_err(|e| e.to_string())?;
        tenants::apply::load_sample_data(&scratch.owner, self.store, applied.tenant, &pkg)
            .await
            .map_err(|e| e.to_string())?;
        for row in &pkg.data {
            if let Some(k) = &row.key {
                let id = tenants::apply::sample_id(applied.tenant, k).to_string();
                self.keys_of.insert(k.clone(), (row.type_name.clone(), id));
            }
        }
        let slug = TenantSlug::parse(&self.slug).map_err(|e| e.to_string())?;
        for u in &pkg.tenant.users {
            let found =
                crate::auth::sql::user_by_email(&scratch.owner, &slug, &u.email).await.map_err(|e| e.to_string())?;
            let Some((tenant, Some(user))) = found else { return Err(format!("user {} was not created", u.email)) };
            let token = self
                .keys
                .issue(tenant, &self.slug, &user.id.to_string(), &user.email, &user.roles, chrono::Duration::hours(2))
                .map_err(|e| e.to_string())?;
            self.tokens.insert(u.email.to_lowercase(), token);
            self.user_ids.insert(u.email.to_lowercase(), user.id.to_string());
        }
        Ok(())
    }

    /// The steps in order; the first that fails ends the scenario.
    async fn steps(&mut self, scenario: &Scenario) -> Option<Failure> {
        for (i, step) in scenario.steps.iter().enumerate() {
            if let Err(message) = self.step(step).await {
                return Some(Failure { step: i, what: step.describe(), message });
            }
        }
        None
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        let Some(action) = step.action() else {
            return Err("a step does one of: create, transition, edit, check, advance".to_string());
        };
        let (status, body) = match action {
            Action::Advance(d) => {
                let by = testing::parse_duration(d).ok_or_else(|| format!("`{d}` is not a duration"))?;
                self.offset += chrono::Duration::from_std(by).map_err(|e| e.to_string())?;
                // The store's clock moves: timers started from here on, and `now` in scripts and
                // guards, see the scenario's time.
                self.store.set_clock_offset(self.offset);
                self.store
                    .fire_due_timers_at(self.store.now(), 10_000)
                    .await
                    .map_err(|e| format!("firing the timers: {e}"))?;
                return Ok(());
            }
            Action::Create(ty) => {
                let mut body = json!({ "data": self.resolve(step.data.as_ref().unwrap_or(&json!({}))) });
                if let Some(input) = &step.input {
                    body["input"] = self.resolve(input);
                }
                let reply = self.request(step, Method::POST, &format!("entities/{ty}"), Some(body)).await?;
                if let (Some(k), Some(id)) = (&step.key, reply.1["id"].as_str()) {
                    self.keys_of.insert(k.clone(), (ty.to_string(), id.to_string()));
                }
                reply
            }
            Action::Transition(name) => {
                let (ty, id) = self.entity(step.on.as_deref().unwrap_or_default())?;
                let body = json!({ "input": self.resolve(step.input.as_ref().unwrap_or(&json!({}))) });
                self.request(step, Method::POST, &format!("entities/{ty}/{id}/transitions/{name}"), Some(body)).await?
            }
            Action::Edit(r) => {
                let (ty, id) = self.entity(r)?;
                let body = json!({ "data": self.resolve(step.data.as_ref().unwrap_or(&json!({}))) });
                self.request(step, Method::PATCH, &format!("entities/{ty}/{id}"), Some(body)).await?
            }
            Action::Check(r) => {
                let (ty, id) = self.entity(r)?;
                self.as_checker(&format!("entities/{ty}/{id}")).await?
            }
        };
        self.expect(step, status, &body)?;
        let entity = if body.get("entity").is_some() { &body["entity"] } else { &body };
        for (key, field) in &step.remember {
            let ty = testing::reference_target(self.package, entity["type"].as_str().unwrap_or(""), field)
                .ok_or_else(|| format!("`{field}` is not a reference field"))?;
            let id = testing::remembered_id(&entity["data"], field)
                .ok_or_else(|| format!("remember `{key}`: the entity's `{field}` is empty"))?;
            self.keys_of.insert(key.clone(), (ty, id.to_string()));
        }
        Ok(())
    }

    /// Compares a step's answer with its `expect` (success when it has none).
    fn expect(&self, step: &Step, status: u16, body: &Value) -> Result<(), String> {
        let expect = step.expect.clone().unwrap_or_default();
        let refused = !(200..300).contains(&status);
        if let Some(want) = &expect.error {
            if !refused {
                return Err(format!("expected {} but it succeeded", want.code));
            }
            let code = body["error"]["code"].as_str().unwrap_or("");
            let message = body["error"]["message"].as_str().unwrap_or("");
            if code != want.code {
                return Err(format!("expected {}, got {status} {code}: {message}", want.code));
            }
            if let Some(part) = &want.message {
                if !message.contains(part.as_str()) {
                    return Err(format!("expected a message containing {part:?}, got {message:?}"));
                }
            }
            return Ok(());
        }
        if refused {
            let code = body["error"]["code"].as_str().unwrap_or("");
            let message = body["error"]["message"].as_str().unwrap_or("");
            let details = &body["error"]["details"];
            let details = if details.is_null() { String::new() } else { format!(" {details}") };
            return Err(format!("refused: {status} {code}: {message}{details}"));
        }
        // A transition answers {entity, events}; the rest answer the entity.
        let entity = if body.get("entity").is_some() { &body["entity"] } else { body };
        if let Some(state) = &expect.state {
            let got = entity["state"].as_str().unwrap_or("");
            if got != state {
                return Err(format!("expected state {state}, got {got}"));
            }
        }
        if let Some(want) = &expect.data {
            let want = self.resolve(want);
            if let Err((at, got)) = testing::subset(&want, &entity["data"]) {
                return Err(format!("data{at}: expected {}, got {got}", pointer(&want, &at)));
            }
        }
        if let Some(names) = &expect.events {
            let got: Vec<&str> = body["events"]
                .as_array()
                .map(|e| e.iter().filter_map(|e| e["name"].as_str()).collect())
                .unwrap_or_default();
            for name in names {
                if !got.contains(&name.as_str()) {
                    return Err(format!("expected the event {name}; the step emitted [{}]", got.join(", ")));
                }
            }
        }
        Ok(())
    }

    /// `$now`, `$today`, `$today+3`, `$today-1` at the scenario's time (its `advance`s count).
    fn time_value(&self, s: &str) -> Option<String> {
        if let Some(email) = s.strip_prefix("$user:") {
            return self.user_ids.get(&email.to_lowercase()).cloned();
        }
        let now = engine::model::rfc3339(self.store.now());
        if s == "$now" {
            return Some(now);
        }
        let rest = s.strip_prefix("$today")?;
        let zone = self
            .package
            .tenant
            .time_zone
            .as_deref()
            .and_then(|z| engine::dates::zone(z).ok())
            .unwrap_or(engine::dates::UTC);
        let today = engine::dates::to_date(&now, zone).ok()?;
        if rest.is_empty() {
            return Some(today);
        }
        let days: i64 = rest.strip_prefix('+').unwrap_or(rest).parse().ok()?;
        engine::dates::add(&today, days, "days", zone).ok()
    }

    /// `"@key"` → its type and id.
    fn entity(&self, r: &str) -> Result<(String, String), String> {
        let key = r.strip_prefix('@').ok_or_else(|| format!("`{r}`: name the entity by its key, `@key`"))?;
        self.keys_of.get(key).cloned().ok_or_else(|| format!("no entity `@{key}` here"))
    }

    /// A value with every `"@key"` string replaced by the entity's id, `"$user:<email>"` by the
    /// user's id, and `"$today"`, `"$today+N"`, `"$today-N"` (days, the tenant's date) and
    /// `"$now"` by the scenario's time.
    fn resolve(&self, value: &Value) -> Value {
        match value {
            Value::String(s) if s.starts_with('$') => match self.time_value(s) {
                Some(v) => Value::String(v),
                None => value.clone(),
            },
            Value::String(s) => match s.strip_prefix('@').and_then(|k| self.keys_of.get(k)) {
                Some((_, id)) => Value::String(id.clone()),
                None => value.clone(),
            },
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.resolve(v))).collect()),
            other => other.clone(),
        }
    }

    async fn request(
        &self,
        step: &Step,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let actor = step.actor.as_deref().unwrap_or_default();
        let token = self
            .tokens
            .get(&actor.to_lowercase())
            .ok_or_else(|| format!("`{actor}` is not one of the package's users"))?;
        self.send(method, path, token, body).await
    }

    /// A read as the scenario's checker: a user with every role of the package (checks look at an
    /// entity whatever its record rules say to the step's users).
    async fn as_checker(&self, path: &str) -> Result<(u16, Value), String> {
        let token = self.tokens.get(CHECKER).ok_or("the checker was not created")?;
        self.send(Method::GET, path, token, None).await
    }

    async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let uri = format!("/api/v1/t/{}/{}", self.slug, path);
        let mut req = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).map_err(|e| e.to_string())?;
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
        let resp = self.router.clone().oneshot(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20).await.map_err(|e| e.to_string())?;
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Ok((status, body))
    }
}

/// The value at a JSON pointer of `value` (for messages).
fn pointer(value: &Value, at: &str) -> Value {
    if at == "/" {
        return value.clone();
    }
    value.pointer(at).cloned().unwrap_or(Value::Null)
}
