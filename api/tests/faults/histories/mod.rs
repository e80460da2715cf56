//! Histories checked, Elle-style (issue 14, section 5; docs/reliability.md, "Histories
//! checked"): clients run random concurrent moves (deposits and withdrawals whose guard reads the
//! other account of a pair), edits (read, then PATCH with `If-Match`) and reads (one account, or
//! both accounts of a pair in one list) over HTTP against a real `switchyard serve`, on a few
//! shared rows of the `bank` package (`bank/`). Every operation is recorded client-side (invoked,
//! completed, its outcome, the values it read and wrote) and `check` compares that history with
//! the database's own (the `transitions` history table and the entities) afterwards: no lost
//! update, no write skew admitted by a guard, no read of a value that was never committed.
//!
//! `weak` runs the same against `bank-weak`, a copy of the package whose guard-only load has
//! `lock: false`, with clients that edit without `If-Match`: the checker must report the write
//! skew and the lost updates that this allows.

mod check;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::harness::{self, Db, Scratch, Serve};
pub use check::Findings;

/// What one read (or a write's answer) saw of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: Uuid,
    pub version: i64,
    pub balance: i64,
    pub visits: i64,
    pub stamp: Option<String>,
}

impl Snapshot {
    /// From an entity as the API answers it.
    fn of(v: &Value) -> Option<Snapshot> {
        Some(Snapshot {
            id: v["id"].as_str()?.parse().ok()?,
            version: v["version"].as_i64()?,
            balance: v["data"]["balance"].as_i64()?,
            visits: v["data"]["visits"].as_i64()?,
            stamp: v["data"]["stamp"].as_str().map(str::to_string),
        })
    }
}

/// An account of a pair, as created (its version 1).
#[derive(Debug, Clone)]
pub struct Account {
    pub pair: usize,
    pub partner: Uuid,
    pub initial: Snapshot,
}

/// An operation a client invoked.
#[derive(Debug, Clone)]
pub enum Op {
    /// A `move` created on `account` (its create transition writes the account's balance and
    /// stamp); a withdrawal's guard reads `other`. A poisoned move is refused after its write.
    Move { token: String, account: Uuid, other: Uuid, deposit: bool, amount: i64, poison: bool },
    /// A PATCH of `visits` to one more than the read before it saw, and `stamp`.
    Edit { token: String, account: Uuid },
    /// A GET of one account, or the list of a pair.
    Read { pair: bool },
}

impl Op {
    /// The token a write leaves in the account's `stamp`.
    fn token(&self) -> Option<&str> {
        match self {
            Op::Move { token, .. } | Op::Edit { token, .. } => Some(token),
            Op::Read { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Outcome {
    /// 2xx: the accounts it read (a read; an edit's answer), and what a move's guard read
    /// (the account, the other).
    Ok { seen: Vec<Snapshot>, guard_read: Option<(i64, i64)> },
    /// A definite refusal (4xx), by code.
    Fail(String),
    /// No definite answer (5xx, no answer): may or may not have been applied.
    Unknown(String),
}

/// One operation of the history: invoked at `invoked`, its outcome known at `completed`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub op: Op,
    pub invoked: Instant,
    pub completed: Instant,
    pub outcome: Outcome,
}

/// The client-side history of a run.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub accounts: Vec<Account>,
    pub entries: Vec<Entry>,
    /// Answers by status and code.
    pub answers: BTreeMap<String, u64>,
}

/// How a run is set up.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// `bank-weak` (the guard's read of the other account unlocked) and edits without
    /// `If-Match`.
    pub weak: bool,
    pub workers: usize,
    pub pairs: usize,
    /// Load per round; rounds go on until `stop` says so or `rounds` have run.
    pub seconds: u64,
    pub rounds: usize,
}

struct Client {
    http: reqwest::Client,
    base: String,
    slug: &'static str,
    token: String,
    if_match: bool,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/t/{}/{path}", self.base, self.slug)
    }

    /// Sends a request: the status and body, or why there was no answer.
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value), String> {
        match req.bearer_auth(&self.token).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                Ok((status, r.json().await.unwrap_or(Value::Null)))
            }
            Err(e) => Err(if e.is_connect() { "connect".into() } else { "no answer".into() }),
        }
    }
}

/// The outcome of an answer: 2xx is `ok(body)`, another 4xx but 408/429 a refusal.
fn settle(answer: &Result<(u16, Value), String>, ok: impl FnOnce(&Value) -> Option<Outcome>) -> Outcome {
    match answer {
        Ok((200..=299, body)) => ok(body).unwrap_or_else(|| Outcome::Unknown(format!("unreadable answer {body}"))),
        Ok((status, body)) if (400..500).contains(status) && *status != 408 && *status != 429 => {
            Outcome::Fail(body["error"]["code"].as_str().unwrap_or("?").to_string())
        }
        Ok((status, body)) => Outcome::Unknown(format!("{status} {}", body["error"]["code"])),
        Err(why) => Outcome::Unknown(why.clone()),
    }
}

fn answer_key(answer: &Result<(u16, Value), String>) -> String {
    match answer {
        Ok((status, body)) => format!("{status} {}", body["error"]["code"].as_str().unwrap_or("")).trim().to_string(),
        Err(why) => format!("0 {why}"),
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// Copies the `bank` package into `examples` (as `bank-weak` when `weak`: the slug changed and
/// the `other` load's lock dropped).
fn install_package(examples: &Path, weak: bool) -> &'static str {
    let from = harness::repo_root().join("api/tests/faults/bank");
    let (slug, to) = if weak { ("bank-weak", examples.join("bank-weak")) } else { ("bank", examples.join("bank")) };
    std::fs::create_dir_all(to.join("types")).expect("mkdir package");
    for file in ["tenant.yaml", "types/account.yaml", "types/move.yaml"] {
        let mut text = std::fs::read_to_string(from.join(file)).expect("read the package");
        if weak {
            let locked = "other: { type: account, id: { var: entity.other_id }, lock: true }";
            if file == "types/move.yaml" {
                assert!(text.contains(locked), "the `other` load of move.yaml changed: update the harness");
                text = text.replace(locked, "other: { type: account, id: { var: entity.other_id }, lock: false }");
            }
            if file == "tenant.yaml" {
                text = text.replace("slug: bank\n", "slug: bank-weak\n");
            }
        }
        std::fs::write(to.join(file), text).expect("write the package");
    }
    slug
}

/// The teller's token, signed with the server's secret.
async fn teller_token(db: &Db, slug: &str) -> String {
    let mut conn = db.connect().await;
    let tenant: engine::store::TenantId = sqlx::query_scalar("select id from tenants where slug = $1")
        .bind(slug)
        .fetch_one(&mut conn)
        .await
        .expect("tenant");
    let (id, email, roles): (Uuid, String, Vec<String>) =
        sqlx::query_as("select id, email, roles from users where tenant_id = $1 and email = 'teller@bank.test'")
            .bind(tenant)
            .fetch_one(&mut conn)
            .await
            .expect("teller");
    let keys = api::auth::Keys::from_secrets(&[harness::JWT_SECRET]).expect("keys");
    keys.issue(tenant, slug, &id.to_string(), &email, &roles, chrono::Duration::hours(6)).expect("token")
}

/// Starts a server with the package, creates the accounts (two per pair, 50 each), runs the
/// load in rounds of `setup.seconds` until `stop(findings)` or `setup.rounds`, checks the
/// history after each round, prints the figures and returns the last findings and the history.
pub async fn run(setup: Setup, stop: impl Fn(&Findings) -> bool) -> (Findings, History) {
    let scratch = Scratch::empty();
    let slug = install_package(&scratch.path("examples"), setup.weak);
    let server = Serve::start(&scratch, "serve0", true, None).await;
    let db = Db::embedded(&scratch.path("home"));
    let client = Arc::new(Client {
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        base: server.base.clone(),
        slug,
        token: teller_token(&db, slug).await,
        if_match: !setup.weak,
    });

    let mut history = History::default();
    for pair in 0..setup.pairs {
        let mut made = Vec::new();
        for side in ["a", "b"] {
            let body = json!({ "data": { "name": format!("{pair}{side}"), "pair": pair, "balance": 50 } });
            let answer = client.call(client.http.post(client.url("entities/account")).json(&body)).await;
            let snapshot = match &answer {
                Ok((201, body)) => Snapshot::of(body).expect("an account"),
                other => panic!("create an account: {other:?}"),
            };
            made.push(snapshot);
        }
        let (a, b) = (made[0].clone(), made[1].clone());
        history.accounts.push(Account { pair, partner: b.id, initial: a.clone() });
        history.accounts.push(Account { pair, partner: a.id, initial: b });
    }

    let accounts = Arc::new(history.accounts.clone());
    let mut findings = Findings::default();
    let started = Instant::now();
    for round in 0..setup.rounds {
        let until = Instant::now() + Duration::from_secs(setup.seconds);
        let tasks: Vec<_> =
            (0..setup.workers).map(|_| tokio::spawn(worker(client.clone(), accounts.clone(), until))).collect();
        for t in tasks {
            let (entries, answers) = t.await.expect("worker");
            history.entries.extend(entries);
            for (k, n) in answers {
                *history.answers.entry(k).or_default() += n;
            }
        }
        findings = check::check(&db, slug, &history).await;
        if stop(&findings) || round + 1 == setup.rounds {
            break;
        }
    }
    println!(
        "== histories: {} ({} workers, {} pairs of accounts, {:.0} s of load)",
        if setup.weak { "bank-weak: `other` loaded without a lock, edits without If-Match" } else { "bank" },
        setup.workers,
        setup.pairs,
        started.elapsed().as_secs_f64()
    );
    println!("{findings}");
    println!("answers {:?}", history.answers);
    if !setup.weak && findings.anomalies() == 0 {
        check::doctored_histories_are_caught(&db, slug, &history).await;
    }
    server.stop().await;
    (findings, history)
}

/// One client: random operations on random accounts until `until`.
async fn worker(c: Arc<Client>, accounts: Arc<Vec<Account>>, until: Instant) -> (Vec<Entry>, BTreeMap<String, u64>) {
    let mut entries = Vec::new();
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    while Instant::now() < until {
        let roll = rand::random::<u32>() % 100;
        let account = &accounts[rand::random::<usize>() % accounts.len()];
        let id = account.initial.id;
        let invoked = Instant::now();
        if roll < 40 {
            let deposit = rand::random::<u32>() % 100 < 35;
            let amount = if deposit {
                1 + rand::random::<i64>().rem_euclid(30)
            } else {
                1 + rand::random::<i64>().rem_euclid(40)
            };
            let poison = rand::random::<u32>() % 8 == 0;
            let token = format!("m-{}", Uuid::new_v4().simple());
            let body = json!({ "data": {
                "account_id": id, "other_id": account.partner,
                "kind": if deposit { "deposit" } else { "withdraw" },
                "amount": amount, "token": token, "poison": poison,
            }});
            let answer = c.call(c.http.post(c.url("entities/move")).json(&body)).await;
            *answers.entry(answer_key(&answer)).or_default() += 1;
            let outcome = settle(&answer, |b| {
                let read = (b["data"]["seen_balance"].as_i64()?, b["data"]["seen_other"].as_i64()?);
                Some(Outcome::Ok { seen: Vec::new(), guard_read: Some(read) })
            });
            let op = Op::Move { token, account: id, other: account.partner, deposit, amount, poison };
            entries.push(Entry { op, invoked, completed: Instant::now(), outcome });
        } else if roll < 65 {
            // Read, then write one more visit on what was read.
            let answer = c.call(c.http.get(c.url(&format!("entities/account/{id}")))).await;
            *answers.entry(answer_key(&answer)).or_default() += 1;
            let outcome = settle(&answer, |b| Some(Outcome::Ok { seen: vec![Snapshot::of(b)?], guard_read: None }));
            let read = match &outcome {
                Outcome::Ok { seen, .. } => seen.first().cloned(),
                _ => None,
            };
            entries.push(Entry { op: Op::Read { pair: false }, invoked, completed: Instant::now(), outcome });
            let Some(read) = read else { continue };
            let token = format!("e-{}", Uuid::new_v4().simple());
            let invoked = Instant::now();
            let mut req = c
                .http
                .patch(c.url(&format!("entities/account/{id}")))
                .json(&json!({ "data": { "visits": read.visits + 1, "stamp": token } }));
            if c.if_match {
                req = req.header("if-match", read.version.to_string());
            }
            let answer = c.call(req).await;
            *answers.entry(answer_key(&answer)).or_default() += 1;
            let outcome = settle(&answer, |b| Some(Outcome::Ok { seen: vec![Snapshot::of(b)?], guard_read: None }));
            entries.push(Entry { op: Op::Edit { token, account: id }, invoked, completed: Instant::now(), outcome });
        } else {
            let pair = roll >= 82;
            let url = if pair {
                c.url(&format!("entities/account?pair={}&limit=10", account.pair))
            } else {
                c.url(&format!("entities/account/{id}"))
            };
            let answer = c.call(c.http.get(url)).await;
            *answers.entry(answer_key(&answer)).or_default() += 1;
            let outcome = settle(&answer, |b| {
                let seen = if pair {
                    b["data"].as_array()?.iter().map(Snapshot::of).collect::<Option<Vec<_>>>()?
                } else {
                    vec![Snapshot::of(b)?]
                };
                Some(Outcome::Ok { seen, guard_read: None })
            });
            entries.push(Entry { op: Op::Read { pair }, invoked, completed: Instant::now(), outcome });
        }
    }
    (entries, answers)
}

fn setup(weak: bool) -> Setup {
    Setup {
        weak,
        workers: env_u64("HISTORIES_WORKERS", 8) as usize,
        pairs: env_u64("HISTORIES_PAIRS", 2) as usize,
        seconds: env_u64("HISTORIES_SECONDS", 12),
        rounds: 1,
    }
}

/// The engine as it is: every anomaly count is 0, and the checker, given doctored copies of this
/// history, reports each kind of anomaly (so each check can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_of_concurrent_moves_edits_and_reads_have_no_anomaly() {
    let (f, history) = run(setup(false), |_| true).await;
    // (`run` also gave the checker doctored copies of this history: each anomaly was caught.)
    assert!(f.moves_ok > 0 && f.edits_ok > 0 && f.reads > 0, "too little was done: {f}");
    assert!(f.moves_refused > 0 && f.moves_poisoned > 0, "no move was refused: {f}");
    assert_eq!(f.anomalies(), 0, "{f}");
    assert!(!history.answers.keys().any(|a| a.starts_with('5') || a.starts_with('0')), "{:?}", history.answers);
}

/// `bank-weak` (the guard's read of the other account without a lock) and edits without
/// `If-Match`: the checker reports write skew (a pair below zero) and lost updates. Rounds of
/// load go on until both are found (at most 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weakened_locking_is_caught_by_the_checker() {
    let mut s = setup(true);
    s.seconds = env_u64("HISTORIES_WEAK_SECONDS", 5);
    s.rounds = 6;
    let (f, _) = run(s, |f| f.write_skew > 0 && f.lost_updates > 0).await;
    assert!(f.write_skew > 0, "no write skew found with the lock dropped: {f}");
    assert!(f.lost_updates > 0, "no lost update found with edits without If-Match: {f}");
}
