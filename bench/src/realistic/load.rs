//! The load: `clients` closed-loop clients, each with one keep-alive HTTP/1.1 connection to the
//! server (hyper's own connection, no pool, as the main benchmark's HTTP path), each running
//! chemichemi order lives back to back on a tenant drawn at random for each life:
//!
//! 1. `create`: `POST …/entities/order` as the sales rep (the create transition `placeOrder`
//!    loads the customer); a customer with room on its credit line, or (a client's every tenth
//!    life) a tight one; a warehouse; one to three lines of the five products, 1–5 each;
//! 2. `list`: the customer's orders, `GET …/entities/order?customer_id=…&limit=20`, as the
//!    manager;
//! 3. `submit`: `submitOrder` as the sales rep (loads the customer, its price list, the
//!    products, the default price lists; prices the lines);
//! 4. `detail`: `GET …/entities/order/{id}`, as the manager;
//! 5. `approve`: `approveOrder` as the manager (four-eyes: not the creator; the credit check
//!    reads the customer and its open orders); for a tight customer it is refused
//!    (`409 GUARD_FAILED`), and the life ends with `reject` (`rejectOrder`);
//! 6. `list`, then `allocate`: `allocateInventory` as the warehouse clerk (locks the order's
//!    stock rows: the warehouse's row of each product, shared by every order of the tenant);
//! 7. `detail`; then one allocated order in five is cancelled (`cancel`: `cancelOrder` as the
//!    manager, which locks the stock rows and the warehouse's open trips, and gives the
//!    reservation back); the others are dispatched and delivered through a trip of their own:
//! 8. `trip`: `POST …/entities/trip` as the dispatcher (the warehouse, its vehicle, the driver,
//!    the order); `plan`: `planTrip` (reads the order and the tenant's open trips); `dispatch`:
//!    `dispatchTrip` (locks the order, fires `dispatchOrder` on it in the same transaction);
//!    `start`: `startTrip` as the driver (fires `startDelivery` on the order);
//! 9. `deliver`: `completeDelivery` as the driver (every line delivered in full: locks the stock
//!    rows and the customer, takes the goods off the shelf, adds the value to the balance);
//!    `detail`; `complete`: `completeTrip`.
//!
//! Every request's latency (sent → whole answer read) goes into the histogram of its kind when
//! it ends inside the measured window; every answer that is not a success is counted by
//! operation, status and error code (the expected credit refusals included, marked so).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::auth::Keys;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use super::world::{order_data, Tenant, TIGHT_EVERY};
use super::Error;

/// An operation kind of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Create,
    Submit,
    Approve,
    Reject,
    Allocate,
    Cancel,
    Trip,
    Plan,
    Dispatch,
    Start,
    Deliver,
    Complete,
    List,
    Detail,
}

impl Op {
    pub const ALL: [Op; 14] = [
        Op::Create,
        Op::Submit,
        Op::Approve,
        Op::Reject,
        Op::Allocate,
        Op::Cancel,
        Op::Trip,
        Op::Plan,
        Op::Dispatch,
        Op::Start,
        Op::Deliver,
        Op::Complete,
        Op::List,
        Op::Detail,
    ];

    /// The short name used in reports and pgbench script names.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Submit => "submit",
            Op::Approve => "approve",
            Op::Reject => "reject",
            Op::Allocate => "allocate",
            Op::Cancel => "cancel",
            Op::Trip => "trip",
            Op::Plan => "plan",
            Op::Dispatch => "dispatch",
            Op::Start => "start",
            Op::Deliver => "deliver",
            Op::Complete => "complete",
            Op::List => "list",
            Op::Detail => "detail",
        }
    }

    /// What the request is.
    pub fn request(self) -> &'static str {
        match self {
            Op::Create => "POST order (placeOrder)",
            Op::Submit => "order.submitOrder",
            Op::Approve => "order.approveOrder",
            Op::Reject => "order.rejectOrder",
            Op::Allocate => "order.allocateInventory",
            Op::Cancel => "order.cancelOrder",
            Op::Trip => "POST trip",
            Op::Plan => "trip.planTrip",
            Op::Dispatch => "trip.dispatchTrip (+ order.dispatchOrder)",
            Op::Start => "trip.startTrip (+ order.startDelivery)",
            Op::Deliver => "order.completeDelivery",
            Op::Complete => "trip.completeTrip",
            Op::List => "GET orders of a customer",
            Op::Detail => "GET order",
        }
    }

    pub fn is_read(self) -> bool {
        matches!(self, Op::List | Op::Detail)
    }
}

/// The load's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub clients: usize,
    /// Not measured (connections open, caches fill).
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
    pub seed: u64,
    /// A progress line on stderr every second.
    pub progress: bool,
}

/// One operation kind's figures in the window.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Answers that ended in the window (successes and refusals).
    pub count: u64,
    /// Latencies (µs) of those answers.
    pub latency_us: Histogram<u64>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct MixResult {
    pub clients: usize,
    pub window: Duration,
    pub ops: BTreeMap<Op, OpStats>,
    /// Every operation's latency (µs).
    pub all_us: Histogram<u64>,
    /// Lives that ended in the window, by how: `delivered`, `cancelled`, `rejected`.
    pub lives: BTreeMap<&'static str, u64>,
    /// Approvals answered in the window, and those the credit check refused.
    pub approvals: u64,
    pub refused_approvals: u64,
    /// Answers that were not a success, warm-up included, by `operation status CODE`; the
    /// expected credit refusals are `approve 409 GUARD_FAILED`.
    pub errors: BTreeMap<String, u64>,
    /// A few unexpected answers, whole.
    pub samples: Vec<String>,
    /// Requests that got no answer (connection lost).
    pub transport_errors: u64,
}

impl MixResult {
    /// Operations (successes and refusals) per second in the window.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops.values().map(|s| s.count).sum::<u64>() as f64 / self.window.as_secs_f64()
    }

    pub fn lives_per_sec(&self) -> f64 {
        self.lives.values().sum::<u64>() as f64 / self.window.as_secs_f64()
    }

    /// Answers with a 5xx status, warm-up included.
    pub fn server_errors(&self) -> u64 {
        self.errors
            .iter()
            .filter(|(k, _)| k.split(' ').nth(1).is_some_and(|s| s.starts_with('5')))
            .map(|(_, v)| v)
            .sum()
    }

    /// Answers that were neither a success nor an expected credit refusal.
    pub fn unexpected_errors(&self) -> u64 {
        self.errors.iter().filter(|(k, _)| k.as_str() != EXPECTED_REFUSAL).map(|(_, v)| v).sum::<u64>()
            + self.transport_errors
    }
}

/// The key of the expected refusals in [`MixResult::errors`].
pub const EXPECTED_REFUSAL: &str = "approve 409 GUARD_FAILED";

/// The bearer tokens of one tenant's users, signed with the server's secret (as `switchyard
/// token` signs them: login's per-IP limit would make logging 250 users in take minutes).
#[derive(Debug, Clone)]
struct Auth {
    sales: HeaderValue,
    manager: HeaderValue,
    warehouse: HeaderValue,
    dispatcher: HeaderValue,
    driver: HeaderValue,
}

fn auth(keys: &Keys, t: &Tenant) -> Result<Auth, Error> {
    let bearer = |u: &super::world::User| -> Result<HeaderValue, Error> {
        let token = keys
            .issue(t.id, &t.slug, &u.id.to_string(), &u.email, &u.roles, chrono::Duration::hours(12))
            .map_err(|e| Error::Setup(format!("signing a token: {e}")))?;
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| Error::Setup(e.to_string()))
    };
    Ok(Auth {
        sales: bearer(&t.sales)?,
        manager: bearer(&t.manager)?,
        warehouse: bearer(&t.warehouse)?,
        dispatcher: bearer(&t.dispatcher)?,
        driver: bearer(&t.driver)?,
    })
}

/// Counters the progress line reads.
#[derive(Debug, Default)]
struct Live {
    ops: AtomicU64,
    lives: AtomicU64,
    errors: AtomicU64,
}

/// One client's share of the result.
#[derive(Default)]
struct ClientResult {
    ops: BTreeMap<Op, OpStats>,
    lives: BTreeMap<&'static str, u64>,
    approvals: u64,
    refused_approvals: u64,
    errors: BTreeMap<String, u64>,
    samples: Vec<String>,
    transport_errors: u64,
}

/// An answer: status and body (JSON, or `null`).
struct Answer {
    status: u16,
    body: Value,
}

struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    measure_from: Instant,
    until: Instant,
    live: Arc<Live>,
    r: ClientResult,
}

fn histogram() -> Result<Histogram<u64>, Error> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| Error::Setup(format!("histogram: {e:?}")))
}

impl Client {
    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Error> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| Error::Http("no connection".into()))
    }

    /// Sends one request; `None` when it got no answer (counted, the connection is reopened).
    async fn call(
        &mut self,
        op: Op,
        method: hyper::Method,
        path: &str,
        token: &HeaderValue,
        body: Option<&Value>,
    ) -> Result<Option<Answer>, Error> {
        let bytes = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b).map_err(|e| Error::Http(e.to_string()))?),
            None => Bytes::new(),
        };
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.host.clone())
            .header(hyper::header::AUTHORIZATION, token.clone());
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let request = request.body(Full::new(bytes))?;
        let t0 = Instant::now();
        let answer = async {
            let sender = self.connect().await?;
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, Error>((status, body))
        }
        .await;
        let t1 = Instant::now();
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                self.sender = None;
                self.r.transport_errors += 1;
                self.live.errors.fetch_add(1, Ordering::Relaxed);
                if self.r.samples.len() < 5 {
                    self.r.samples.push(format!("{} {path}: no answer: {e}", op.name()));
                }
                return Ok(None);
            }
        };
        if t1 >= self.measure_from && t1 < self.until {
            let stats = self.r.ops.entry(op).or_insert(OpStats { count: 0, latency_us: histogram()? });
            stats.count += 1;
            stats.latency_us.saturating_record(u64::try_from((t1 - t0).as_micros()).unwrap_or(u64::MAX).max(1));
            self.live.ops.fetch_add(1, Ordering::Relaxed);
        }
        let success = (200..300).contains(&status);
        let body: Value = if success && !matches!(op, Op::Create | Op::Trip) {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        if !success {
            let code = body["error"]["code"].as_str().unwrap_or("-");
            let key = format!("{} {status} {code}", op.name());
            if key != EXPECTED_REFUSAL {
                self.live.errors.fetch_add(1, Ordering::Relaxed);
                if self.r.samples.len() < 5 {
                    self.r.samples.push(format!("{} {path}: {status} {body}", op.name()));
                }
            }
            *self.r.errors.entry(key).or_default() += 1;
        }
        Ok(Some(Answer { status, body }))
    }

    fn in_window(&self) -> bool {
        let now = Instant::now();
        now >= self.measure_from && now < self.until
    }

    fn life_ended(&mut self, how: &'static str) {
        if self.in_window() {
            *self.r.lives.entry(how).or_default() += 1;
            self.live.lives.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Fires transition `name` on `type/id`; whether it succeeded.
    async fn fire(
        &mut self,
        op: Op,
        t: &Tenant,
        token: &HeaderValue,
        entity: (&str, Uuid),
        name: &str,
        input: Value,
    ) -> Result<Option<u16>, Error> {
        let path = format!("/api/v1/t/{}/entities/{}/{}/transitions/{name}", t.slug, entity.0, entity.1);
        Ok(self.call(op, hyper::Method::POST, &path, token, Some(&json!({ "input": input }))).await?.map(|a| a.status))
    }

    async fn create(
        &mut self,
        op: Op,
        t: &Tenant,
        token: &HeaderValue,
        ty: &str,
        data: Value,
    ) -> Result<Option<Uuid>, Error> {
        let path = format!("/api/v1/t/{}/entities/{ty}", t.slug);
        let answer = self.call(op, hyper::Method::POST, &path, token, Some(&json!({ "data": data }))).await?;
        Ok(answer.filter(|a| a.status == 201).and_then(|a| a.body["id"].as_str().and_then(|s| s.parse().ok())))
    }

    async fn get(&mut self, op: Op, token: &HeaderValue, path: &str) -> Result<(), Error> {
        self.call(op, hyper::Method::GET, path, token, None).await?;
        Ok(())
    }

    /// One order's life on tenant `t`; `tight`: for a customer near its credit limit.
    async fn life(&mut self, t: &Tenant, a: &Auth, tight: bool, rng: &mut StdRng) -> Result<(), Error> {
        let ok = |s: Option<u16>| s.is_some_and(|s| (200..300).contains(&s));
        let customers = if tight { &t.tight } else { &t.customers };
        let Some(&customer) = customers.choose(rng) else { return Ok(()) };
        let Some(warehouse) = t.warehouses.choose(rng).cloned() else { return Ok(()) };
        let n_lines = rng.gen_range(1..=3usize);
        let lines: Vec<(Uuid, u32)> =
            t.products.choose_multiple(rng, n_lines).map(|p| (*p, rng.gen_range(1..=5u32))).collect();

        let Some(order) =
            self.create(Op::Create, t, &a.sales, "order", order_data(customer, warehouse.id, &lines)).await?
        else {
            return Ok(());
        };
        let list = format!("/api/v1/t/{}/entities/order?customer_id={customer}&limit=20", t.slug);
        let detail = format!("/api/v1/t/{}/entities/order/{order}", t.slug);
        let o = ("order", order);
        self.get(Op::List, &a.manager, &list).await?;
        if !ok(self.fire(Op::Submit, t, &a.sales, o, "submitOrder", json!({})).await?) {
            return Ok(());
        }
        self.get(Op::Detail, &a.manager, &detail).await?;
        let approved = self.fire(Op::Approve, t, &a.manager, o, "approveOrder", json!({})).await?;
        let approval_counts = self.in_window();
        if approval_counts {
            self.r.approvals += 1;
        }
        match approved {
            Some(s) if (200..300).contains(&s) => {}
            Some(409) => {
                if approval_counts {
                    self.r.refused_approvals += 1;
                }
                let reason = json!({ "reason": "over the credit limit" });
                if ok(self.fire(Op::Reject, t, &a.manager, o, "rejectOrder", reason).await?) {
                    self.life_ended("rejected");
                }
                return Ok(());
            }
            _ => return Ok(()),
        }
        self.get(Op::List, &a.manager, &list).await?;
        if !ok(self.fire(Op::Allocate, t, &a.warehouse, o, "allocateInventory", json!({})).await?) {
            return Ok(());
        }
        self.get(Op::Detail, &a.manager, &detail).await?;
        if rng.gen_range(0..5) == 0 {
            let reason = json!({ "reason": "the customer cancelled" });
            if ok(self.fire(Op::Cancel, t, &a.manager, o, "cancelOrder", reason).await?) {
                self.life_ended("cancelled");
            }
            return Ok(());
        }
        let trip = json!({
            "warehouse_id": warehouse.id,
            "vehicle_id": warehouse.vehicle,
            "driver_id": t.driver.id,
            "order_ids": [order],
        });
        let Some(trip) = self.create(Op::Trip, t, &a.dispatcher, "trip", trip).await? else { return Ok(()) };
        let tr = ("trip", trip);
        if !ok(self.fire(Op::Plan, t, &a.dispatcher, tr, "planTrip", json!({})).await?) {
            return Ok(());
        }
        if !ok(self.fire(Op::Dispatch, t, &a.dispatcher, tr, "dispatchTrip", json!({})).await?) {
            return Ok(());
        }
        if !ok(self.fire(Op::Start, t, &a.driver, tr, "startTrip", json!({})).await?) {
            return Ok(());
        }
        let delivered: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (_, q))| json!({ "line_number": i + 1, "delivered_quantity": q }))
            .collect();
        let pod = json!({ "pod_reference": format!("POD-{}", order.simple()), "delivered": delivered });
        if !ok(self.fire(Op::Deliver, t, &a.driver, o, "completeDelivery", pod).await?) {
            return Ok(());
        }
        self.get(Op::Detail, &a.manager, &detail).await?;
        if ok(self.fire(Op::Complete, t, &a.driver, tr, "completeTrip", json!({})).await?) {
            self.life_ended("delivered");
        }
        Ok(())
    }
}

/// Runs the mix against the server at `addr` on `tenants`, whose tokens `keys` signs.
pub async fn run(addr: SocketAddr, keys: &Keys, tenants: &[Tenant], s: &Settings) -> Result<MixResult, Error> {
    if tenants.is_empty() || s.clients == 0 {
        return Err(Error::Setup("the mix needs a tenant and a client".into()));
    }
    let world: Arc<Vec<(Tenant, Auth)>> =
        Arc::new(tenants.iter().map(|t| Ok((t.clone(), auth(keys, t)?))).collect::<Result<_, Error>>()?);
    let start = Instant::now();
    let measure_from = start + s.warmup;
    let until = measure_from + s.duration;
    let live = Arc::new(Live::default());
    let host = HeaderValue::from_str(&addr.to_string()).map_err(|e| Error::Setup(e.to_string()))?;

    let mut set = JoinSet::new();
    for c in 0..s.clients {
        let world = world.clone();
        let live = live.clone();
        let host = host.clone();
        let seed = s.seed.wrapping_mul(1_000_003).wrapping_add(c as u64);
        set.spawn(async move {
            let mut client = Client { addr, host, sender: None, measure_from, until, live, r: ClientResult::default() };
            let mut rng = StdRng::seed_from_u64(seed);
            // One life in TIGHT_EVERY is for a tight customer, on a schedule rather than by
            // chance, so that even a short run sees its share of refusals.
            let mut n = c;
            while Instant::now() < until {
                let Some((tenant, auth)) = world.choose(&mut rng) else { break };
                client.life(tenant, auth, n % TIGHT_EVERY == 0, &mut rng).await?;
                n += 1;
            }
            Ok::<_, Error>(client.r)
        });
    }

    let progress = s.progress.then(|| {
        let live = live.clone();
        let clients = s.clients;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let now = Instant::now();
                if now >= until {
                    break;
                }
                let ops = live.ops.load(Ordering::Relaxed);
                let phase = if now < measure_from {
                    format!("warm-up {:.0} s", (measure_from - now).as_secs_f64())
                } else {
                    format!("{:>3.0}/{} s", (now - measure_from).as_secs_f64(), (until - measure_from).as_secs())
                };
                eprintln!(
                    "bench: realistic, {clients:>2} clients, {phase}: {:>6} ops ({:>5} ops/s), {:>5} lives, {} errors",
                    ops,
                    ops - last,
                    live.lives.load(Ordering::Relaxed),
                    live.errors.load(Ordering::Relaxed)
                );
                last = ops;
            }
        })
    });

    let mut out = MixResult {
        clients: s.clients,
        window: s.duration,
        ops: BTreeMap::new(),
        all_us: histogram()?,
        lives: BTreeMap::new(),
        approvals: 0,
        refused_approvals: 0,
        errors: BTreeMap::new(),
        samples: Vec::new(),
        transport_errors: 0,
    };
    while let Some(joined) = set.join_next().await {
        let r = joined.map_err(|e| Error::Setup(format!("a load client panicked: {e}")))??;
        for (op, stats) in r.ops {
            out.all_us.add(&stats.latency_us).map_err(|e| Error::Setup(format!("histogram: {e:?}")))?;
            match out.ops.get_mut(&op) {
                Some(mine) => {
                    mine.count += stats.count;
                    mine.latency_us.add(&stats.latency_us).map_err(|e| Error::Setup(format!("histogram: {e:?}")))?;
                }
                None => {
                    out.ops.insert(op, stats);
                }
            }
        }
        for (k, v) in r.lives {
            *out.lives.entry(k).or_default() += v;
        }
        for (k, v) in r.errors {
            *out.errors.entry(k).or_default() += v;
        }
        out.approvals += r.approvals;
        out.refused_approvals += r.refused_approvals;
        out.transport_errors += r.transport_errors;
        out.samples.extend(r.samples.into_iter().take(5usize.saturating_sub(out.samples.len())));
    }
    if let Some(p) = progress {
        p.abort();
    }
    Ok(out)
}
