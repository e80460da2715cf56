//! The load and its client-side ledger: workers that take chemichemi orders through their life
//! (create, submit, approve with the credit check, allocate locking shared stock rows, cancel
//! giving the stock back) over HTTP, each transition with its own `Idempotency-Key`, sent again
//! with the same key after a 5xx or a lost connection until it has a definite answer. Every
//! acknowledged (2xx) step is written in the ledger that `check` compares with the database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

/// The users of the load, as tokens.
#[derive(Clone)]
pub struct Tokens {
    pub sales: String,
    pub manager: String,
    pub warehouse: String,
    pub dispatcher: String,
}

/// The sample rows the orders use.
#[derive(Clone)]
pub struct Samples {
    /// A customer with room on its credit line.
    pub customer: String,
    /// A customer over its credit limit: one order in ten is for it, and its approval is
    /// refused by the credit check (then the order is cancelled).
    pub over_limit: String,
    pub warehouse: String,
    pub product: String,
    pub vehicle: String,
}

/// One entity's life as the client saw it: an order, or a route planning session.
#[derive(Debug, Clone, Default)]
pub struct Life {
    /// `order` or `planning_session`.
    pub kind: &'static str,
    /// The tag written in the order's `notes` (the session's `name`), to find an entity whose
    /// creation got no answer.
    pub tag: String,
    /// The order, once its creation was acknowledged.
    pub id: Option<Uuid>,
    /// The acknowledged steps, in order (`placeOrder` for the creation).
    pub acked: Vec<String>,
    /// A step that never got a definite answer before the end (it may or may not be applied).
    pub unsettled: Option<String>,
    /// A planning session left optimising: its 30-minute timer (brought forward by the harness)
    /// must fire `optimizationFailed`, once, whichever server's timers worker gets it.
    pub timer: bool,
}

/// What the fleet saw.
#[derive(Default)]
pub struct Seen {
    pub lives: Vec<Life>,
    /// Answers by status and code (`0 connect`: the server was not there; `0 other`: the
    /// connection broke or timed out).
    pub answers: BTreeMap<String, u64>,
    /// Refusals (4xx) by step and message.
    pub refusals: BTreeMap<String, u64>,
    /// When each step was acknowledged.
    pub acks: Vec<Instant>,
    /// Latency of every answered request, in microseconds.
    pub latency: Option<hdrhistogram::Histogram<u64>>,
}

/// Shared by the workers: where the servers are (the harness changes an address when it
/// restarts a server), the tokens, and what was seen.
pub struct Fleet {
    pub bases: Vec<RwLock<String>>,
    pub tokens: Tokens,
    pub samples: Samples,
    pub seen: Mutex<Seen>,
    client: reqwest::Client,
}

/// The answer a step settled on.
enum Settled {
    Acked(Value),
    Refused,
    /// No definite answer (connection lost, 5xx) before the end of the settling time.
    Unknown,
}

impl Fleet {
    pub fn new(bases: Vec<String>, tokens: Tokens, samples: Samples) -> Arc<Fleet> {
        let latency = hdrhistogram::Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram");
        let seen = Seen { latency: Some(latency), ..Seen::default() };
        Arc::new(Fleet {
            bases: bases.into_iter().map(RwLock::new).collect(),
            tokens,
            samples,
            seen: Mutex::new(seen),
            // A request the server never answers is given up after 30 s (the server's own limit).
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        })
    }

    fn base(&self, worker: usize) -> String {
        self.bases[worker % self.bases.len()].read().expect("bases").clone()
    }

    pub fn set_base(&self, server: usize, base: String) {
        *self.bases[server].write().expect("bases") = base;
    }

    fn count(&self, answer: String, latency: Option<Duration>) {
        let mut seen = self.seen.lock().expect("seen");
        *seen.answers.entry(answer).or_default() += 1;
        if let (Some(l), Some(h)) = (latency, seen.latency.as_mut()) {
            let _ = h.record(u64::try_from(l.as_micros()).unwrap_or(u64::MAX).max(1));
        }
    }

    /// Sends one request; `None` when it got no HTTP answer (`connect`: nothing was sent).
    async fn send(
        &self,
        worker: usize,
        path: &str,
        token: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Result<(u16, Value), bool> {
        let url = format!("{}/api/v1/t/chemichemi/{path}", self.base(worker));
        let mut req = self.client.post(url).bearer_auth(token).json(body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let started = Instant::now();
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let mut code = body["error"]["code"].as_str().unwrap_or("").to_string();
                if status == 503 {
                    code = format!("{code} applied={}", body["error"]["details"]["applied"]);
                }
                self.count(format!("{status} {code}").trim().to_string(), Some(started.elapsed()));
                Ok((status, body))
            }
            Err(e) => {
                let connect = e.is_connect();
                self.count(if connect { "0 connect".into() } else { "0 other".into() }, None);
                Err(connect)
            }
        }
    }

    /// A transition, sent again with the same key until it has a definite answer or `settle_by`.
    async fn transition(
        &self,
        worker: usize,
        (type_name, id): (&str, Uuid),
        name: &str,
        token: &str,
        input: Value,
        settle_by: Instant,
    ) -> Settled {
        let key = Uuid::new_v4().to_string();
        let path = format!("entities/{type_name}/{id}/transitions/{name}");
        let body = json!({ "input": input });
        loop {
            match self.send(worker, &path, token, &body, Some(&key)).await {
                Ok((200..=299, body)) => return Settled::Acked(body),
                // A refusal (guard, stock) is definite; 408/429 are not.
                Ok((status, body)) if (400..500).contains(&status) && status != 408 && status != 429 => {
                    self.refused(name, &body);
                    return Settled::Refused;
                }
                _ => {}
            }
            if Instant::now() > settle_by {
                return Settled::Unknown;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A creation, sent again with the same `Idempotency-Key` until it has a definite answer or
    /// `settle_by` (a creation whose answer was lost is answered from its record, and made once);
    /// still unknown then, `check` finds the entity by its tag if it was made.
    async fn create(&self, worker: usize, type_name: &str, token: &str, data: Value, settle_by: Instant) -> Settled {
        let key = Uuid::new_v4().to_string();
        let body = json!({ "data": data });
        loop {
            match self.send(worker, &format!("entities/{type_name}"), token, &body, Some(&key)).await {
                Ok((201, body)) => return Settled::Acked(body),
                Ok((status, body)) if (400..500).contains(&status) && status != 408 && status != 429 => {
                    self.refused(&format!("create {type_name}"), &body);
                    return Settled::Refused;
                }
                _ => {}
            }
            if Instant::now() > settle_by {
                return Settled::Unknown;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One worker: order lives until `until` (a step started before it is settled by
    /// `settle_by`).
    pub async fn run(self: Arc<Self>, worker: usize, until: Instant, settle_by: Instant) {
        while Instant::now() < until {
            let mut life = Life { kind: "order", tag: format!("faults-{}", Uuid::new_v4()), ..Life::default() };
            let session = self.one_life(worker, &mut life, settle_by).await;
            let mut seen = vec![life];
            seen.extend(session);
            let unsettled = seen.iter().any(|l| l.unsettled.is_some());
            self.seen.lock().expect("seen").lives.extend(seen);
            if unsettled {
                // The server or its database is away: as its `Retry-After` says, wait a second.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// An order's life; one allocated order in four is also put in a planning session left
    /// optimising (returned).
    async fn one_life(&self, worker: usize, life: &mut Life, settle_by: Instant) -> Option<Life> {
        let customer = if rand::random::<u8>() % 10 == 0 { &self.samples.over_limit } else { &self.samples.customer };
        let data = json!({
            "customer_id": customer,
            "warehouse_id": self.samples.warehouse,
            "items": [{ "product_id": self.samples.product, "quantity": 1 }],
            "notes": life.tag,
        });
        let id = match self.create(worker, "order", &self.tokens.sales, data, settle_by).await {
            Settled::Acked(body) => {
                let id = body["id"].as_str().and_then(|s| s.parse().ok())?;
                self.ack(life, "placeOrder");
                id
            }
            Settled::Refused => return None,
            Settled::Unknown => {
                life.unsettled = Some("placeOrder".into());
                return None;
            }
        };
        life.id = Some(id);
        let t = &self.tokens;
        let steps: [(&str, &str, Value); 3] = [
            ("submitOrder", &t.sales, json!({})),
            ("approveOrder", &t.manager, json!({})),
            ("allocateInventory", &t.warehouse, json!({})),
        ];
        let mut allocated = false;
        for (name, token, input) in steps {
            match self.transition(worker, ("order", id), name, token, input, settle_by).await {
                Settled::Acked(_) => {
                    self.ack(life, name);
                    allocated = name == "allocateInventory";
                }
                // Refused (credit, stock): the order is cancelled below (a draft cannot be).
                Settled::Refused if name == "submitOrder" => return None,
                Settled::Refused => break,
                Settled::Unknown => {
                    life.unsettled = Some(name.into());
                    return None;
                }
            }
        }
        let session = if allocated && rand::random::<u8>() % 4 == 0 {
            Some(self.planning_session(worker, id, settle_by).await)
        } else {
            None
        };
        let cancel = json!({ "reason": "fault harness" });
        match self.transition(worker, ("order", id), "cancelOrder", &t.manager, cancel, settle_by).await {
            Settled::Acked(_) => self.ack(life, "cancelOrder"),
            Settled::Refused => {}
            Settled::Unknown => life.unsettled = Some("cancelOrder".into()),
        }
        session
    }

    /// A planning session of the allocated order `order`, started (its timer set).
    async fn planning_session(&self, worker: usize, order: Uuid, settle_by: Instant) -> Life {
        let mut life = Life { kind: "planning_session", tag: format!("faults-{}", Uuid::new_v4()), ..Life::default() };
        let data = json!({
            "name": life.tag,
            "warehouse_id": self.samples.warehouse,
            "order_ids": [order],
            "vehicle_ids": [self.samples.vehicle],
        });
        let token = &self.tokens.dispatcher;
        let id = match self.create(worker, "planning_session", token, data, settle_by).await {
            Settled::Acked(body) => match body["id"].as_str().and_then(|s| s.parse().ok()) {
                Some(id) => {
                    // Without a create transition, the creation's history row is `create`.
                    self.ack(&mut life, "create");
                    id
                }
                None => return life,
            },
            Settled::Refused => return life,
            Settled::Unknown => {
                life.unsettled = Some("create".into());
                return life;
            }
        };
        life.id = Some(id);
        match self.transition(worker, ("planning_session", id), "startOptimization", token, json!({}), settle_by).await
        {
            Settled::Acked(_) => {
                self.ack(&mut life, "startOptimization");
                life.timer = true;
            }
            Settled::Refused => {}
            Settled::Unknown => life.unsettled = Some("startOptimization".into()),
        }
        life
    }

    fn refused(&self, step: &str, body: &Value) {
        let message: String = body["error"]["message"].as_str().unwrap_or("").chars().take(60).collect();
        *self.seen.lock().expect("seen").refusals.entry(format!("{step}: {message}")).or_default() += 1;
    }

    fn ack(&self, life: &mut Life, step: &str) {
        life.acked.push(step.to_string());
        self.seen.lock().expect("seen").acks.push(Instant::now());
    }
}
