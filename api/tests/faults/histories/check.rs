//! The checker: the client's history against the database's.
//!
//! The database's truth is each account's history (`transitions` rows, oldest first; row k is
//! version k + 1, the creation being version 1) with its `changes` (`{field: {from, to}}`), and
//! the entities as they are. From it, each account's committed states are rebuilt version by
//! version, and each write is known by the token it left in `stamp`. Then:
//!
//! * **lost updates**: every acknowledged write is in history once (`lost` otherwise); each
//!   history row changes what the previous one left (`from` = the previous `to`: a write computed
//!   from a stale read breaks the chain); a move changed the balance by its amount from exactly
//!   what its guard read; and each account's final balance and visits are the fold of the
//!   acknowledged operations (initial + deposits - withdrawals; initial + one per edit);
//! * **write skew**: at every committed point (both accounts of a pair merged in history-id
//!   order, which is their commit order as long as every move on a pair locks both accounts)
//!   the pair holds zero or more, and so does every read of a pair (one statement: one snapshot);
//! * **reads of uncommitted or rolled-back data**: every state a read saw (version, balance,
//!   visits, stamp) is the committed state of that version; a stamp of a write the client saw
//!   refused is an aborted read; a read never sees a version older than one acknowledged to a
//!   client before the read began (stale read); a failed write is never in history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use super::{Entry, History, Op, Outcome, Snapshot};
use crate::harness::Db;

/// What the check found. Everything from `lost` on must be 0.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    pub operations: usize,
    pub moves_ok: usize,
    /// Refused by the guard (not enough in the pair) or, poisoned, by the audit after the write.
    pub moves_refused: usize,
    pub moves_poisoned: usize,
    pub edits_ok: usize,
    pub edits_conflict: usize,
    pub reads: usize,
    pub unknown: usize,
    /// Account history rows after the creations.
    pub committed_writes: usize,
    /// Acknowledged writes missing from history.
    pub lost: usize,
    /// Writes the client saw refused, found in history.
    pub aborted_committed: usize,
    /// Writes made from a stale read, and accounts whose final value is not the fold of the
    /// acknowledged operations (visits: by how many).
    pub lost_updates: usize,
    /// Committed points where a pair was below zero.
    pub write_skew: usize,
    /// Reads of a pair that saw it below zero.
    pub skew_reads: usize,
    /// Reads that saw a write the client saw refused.
    pub aborted_reads: usize,
    /// Reads of a state that history does not have.
    pub uncommitted_reads: usize,
    /// Reads older than a write acknowledged before they began.
    pub stale_reads: usize,
    /// An entity that is not what its history folds to.
    pub history_mismatch: usize,
    pub details: Vec<String>,
    /// Details kept per kind (at most 3 of each).
    kept: BTreeMap<&'static str, usize>,
}

impl Findings {
    pub fn anomalies(&self) -> usize {
        self.lost
            + self.aborted_committed
            + self.lost_updates
            + self.write_skew
            + self.skew_reads
            + self.aborted_reads
            + self.uncommitted_reads
            + self.stale_reads
            + self.history_mismatch
    }

    fn note(&mut self, kind: &'static str, what: String) {
        let kept = self.kept.entry(kind).or_default();
        if *kept < 3 {
            *kept += 1;
            self.details.push(format!("{kind}: {what}"));
        }
    }
}

impl fmt::Display for Findings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "operations {} (moves {} ok, {} refused of which {} poisoned; edits {} ok, {} version conflicts; reads {}; unknown {}), committed writes {}",
            self.operations,
            self.moves_ok,
            self.moves_refused,
            self.moves_poisoned,
            self.edits_ok,
            self.edits_conflict,
            self.reads,
            self.unknown,
            self.committed_writes
        )?;
        write!(
            f,
            "anomalies {}: lost {}, aborted writes committed {}, lost updates {}, write skew {} (and {} reads of it), aborted reads {}, uncommitted reads {}, stale reads {}, history mismatches {}",
            self.anomalies(),
            self.lost,
            self.aborted_committed,
            self.lost_updates,
            self.write_skew,
            self.skew_reads,
            self.aborted_reads,
            self.uncommitted_reads,
            self.stale_reads,
            self.history_mismatch
        )?;
        for d in &self.details {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

/// An account's committed states, version 1 first, with the history row that wrote each.
struct Chain {
    states: Vec<Snapshot>,
    /// The history row id of each state (0 for the creation).
    rows: Vec<i64>,
}

impl Chain {
    fn at(&self, version: i64) -> Option<&Snapshot> {
        usize::try_from(version - 1).ok().and_then(|i| self.states.get(i))
    }
}

/// A field of a snapshot as JSON, to compare with a history row's `from`.
fn field(s: &Snapshot, name: &str) -> Option<Value> {
    match name {
        "balance" => Some(s.balance.into()),
        "visits" => Some(s.visits.into()),
        "stamp" => Some(s.stamp.clone().map_or(Value::Null, Value::String)),
        _ => None,
    }
}

/// What the database has: the accounts' history rows (id, entity, transition, changes), the
/// accounts as they are (id, version, data), and the tokens of the moves.
pub struct Truth {
    rows: Vec<(i64, Uuid, String, Value)>,
    current: Vec<(Uuid, i64, Value)>,
    moves: HashSet<String>,
}

impl Truth {
    pub async fn load(db: &Db, slug: &str) -> Truth {
        let mut conn = db.connect().await;
        let tenant: Uuid = sqlx::query_scalar("select id from tenants where slug = $1")
            .bind(slug)
            .fetch_one(&mut conn)
            .await
            .expect("tenant");
        let rows = sqlx::query_as(
            "select id, entity_id, transition, changes from transitions \
             where tenant_id = $1 and entity_type = 'account' order by id",
        )
        .bind(tenant)
        .fetch_all(&mut conn)
        .await
        .expect("history");
        let current =
            sqlx::query_as("select id, version, data from entities where tenant_id = $1 and type = 'account'")
                .bind(tenant)
                .fetch_all(&mut conn)
                .await
                .expect("accounts");
        let moves = sqlx::query_scalar::<_, String>(
            "select data->>'token' from entities where tenant_id = $1 and type = 'move'",
        )
        .bind(tenant)
        .fetch_all(&mut conn)
        .await
        .expect("moves")
        .into_iter()
        .collect();
        Truth { rows, current, moves }
    }
}

pub async fn check(db: &Db, slug: &str, history: &History) -> Findings {
    let t = Truth::load(db, slug).await;
    judge(history, &t.rows, &t.current, &t.moves)
}

/// The check itself, on what was read from the database (pure, so doctored histories can be
/// given to it).
fn judge(
    history: &History,
    rows: &[(i64, Uuid, String, Value)],
    current: &[(Uuid, i64, Value)],
    moves: &HashSet<String>,
) -> Findings {
    let mut f = Findings::default();

    // Each account's committed states, rebuilt from its history.
    let mut chains: HashMap<Uuid, Chain> = HashMap::new();
    for a in &history.accounts {
        chains.insert(a.initial.id, Chain { states: vec![a.initial.clone()], rows: vec![0] });
    }
    // Which history row (account, version) each token wrote.
    let mut written: HashMap<String, Vec<(Uuid, i64)>> = HashMap::new();
    for (row, entity, transition, changes) in rows {
        if transition == "create" {
            continue;
        }
        let Some(chain) = chains.get_mut(entity) else { continue };
        f.committed_writes += 1;
        let Some(prev) = chain.states.last().cloned() else { continue };
        let mut next = Snapshot { version: prev.version + 1, ..prev.clone() };
        for (name, change) in changes.as_object().into_iter().flatten() {
            let Some(before) = field(&prev, name) else { continue };
            if !engine::eval::same(&before, &change["from"]) {
                f.lost_updates += 1;
                f.note(
                    "lost update",
                    format!(
                    "stale write: account {entity} version {}: `{name}` changed from {} but version {} had {before}",
                    next.version, change["from"], prev.version
                ),
                );
            }
            let to = &change["to"];
            match name.as_str() {
                "balance" => next.balance = to.as_i64().unwrap_or(i64::MIN),
                "visits" => next.visits = to.as_i64().unwrap_or(i64::MIN),
                _ => next.stamp = to.as_str().map(str::to_string),
            }
        }
        if let Some(token) = changes["stamp"]["to"].as_str() {
            written.entry(token.to_string()).or_default().push((*entity, next.version));
        }
        chain.states.push(next);
        chain.rows.push(*row);
    }
    for (id, version, data) in current {
        let Some(chain) = chains.get(id) else { continue };
        let last = chain.states.last();
        let now = Snapshot {
            id: *id,
            version: *version,
            balance: data["balance"].as_i64().unwrap_or(i64::MIN),
            visits: data["visits"].as_i64().unwrap_or(i64::MIN),
            stamp: data["stamp"].as_str().map(str::to_string),
        };
        if last != Some(&now) {
            f.history_mismatch += 1;
            f.note("history mismatch", format!("account {id} is {now:?}, its history folds to {last:?}"));
        }
    }

    // Tokens of writes the client saw refused.
    let refused: HashSet<&str> =
        history.entries.iter().filter(|e| matches!(e.outcome, Outcome::Fail(_))).filter_map(|e| e.op.token()).collect();
    // When each version was acknowledged, per account (for stale reads).
    let mut acked_at: HashMap<Uuid, Vec<(Instant, i64)>> = HashMap::new();
    // The fold: per account, the balance change and visits of the writes applied.
    let mut fold: HashMap<Uuid, (i64, i64)> = HashMap::new();

    f.operations = history.entries.len();
    for e in &history.entries {
        let found = e.op.token().and_then(|t| written.get(t)).cloned().unwrap_or_default();
        match (&e.op, &e.outcome) {
            (Op::Move { poison, .. }, Outcome::Fail(_)) => {
                f.moves_refused += 1;
                f.moves_poisoned += usize::from(*poison);
            }
            (Op::Edit { .. }, Outcome::Fail(code)) => {
                f.edits_conflict += usize::from(code == "VERSION_CONFLICT");
            }
            (Op::Move { .. }, Outcome::Ok { .. }) => f.moves_ok += 1,
            (Op::Edit { .. }, Outcome::Ok { .. }) => f.edits_ok += 1,
            (Op::Read { .. }, Outcome::Ok { .. }) => f.reads += 1,
            (_, Outcome::Unknown(why)) => {
                f.unknown += 1;
                f.note("unknown", format!("no definite answer ({why}): {:?}", e.op));
            }
            (Op::Read { .. }, Outcome::Fail(_)) => {}
        }
        // The fold counts every acknowledged write (found or not) and the unknown ones found.
        let applied = match e.outcome {
            Outcome::Ok { .. } => true,
            Outcome::Unknown(_) => found.len() == 1,
            Outcome::Fail(_) => false,
        };
        match &e.op {
            Op::Move { account, deposit, amount, .. } if applied => {
                fold.entry(*account).or_default().0 += if *deposit { *amount } else { -*amount };
            }
            Op::Edit { account, .. } if applied => fold.entry(*account).or_default().1 += 1,
            _ => {}
        }
        let token = e.op.token().unwrap_or("");
        match (&e.outcome, e.op.token()) {
            (Outcome::Fail(_), Some(_)) => {
                if !found.is_empty() || moves.contains(token) {
                    f.aborted_committed += 1;
                    f.note("aborted write committed", format!("write {token}, refused to the client, is in history"));
                }
                continue;
            }
            (Outcome::Ok { .. }, Some(_)) if found.len() != 1 => {
                f.lost += 1;
                f.note("lost", format!("acknowledged write {token} is in history {} times", found.len()));
                continue;
            }
            (Outcome::Unknown(_), Some(_)) if found.len() != 1 => continue,
            _ => {}
        }
        // An applied write: where it is, what it did.
        if let Some(&(account, version)) = found.first() {
            let chain = &chains[&account];
            let (Some(before), Some(after)) = (chain.at(version - 1), chain.at(version)) else { continue };
            if let Outcome::Ok { .. } = e.outcome {
                acked_at.entry(account).or_default().push((e.completed, version));
            }
            match &e.op {
                Op::Move { account: on, deposit, amount, .. } => {
                    if *on != account {
                        f.lost += 1;
                        f.note("lost", format!("move {token} on {on} wrote account {account}"));
                    }
                    if after.balance - before.balance != if *deposit { *amount } else { -*amount } {
                        f.lost_updates += 1;
                        f.note(
                            "lost update",
                            format!(
                                "move {token} ({}{amount}) took account {account} from {} to {} (version {version})",
                                if *deposit { "+" } else { "-" },
                                before.balance,
                                after.balance
                            ),
                        );
                    }
                }
                Op::Edit { .. } | Op::Read { .. } => {}
            }
        }
        if let (Op::Move { account, other, .. }, Outcome::Ok { guard_read: Some((mine, theirs)), .. }) =
            (&e.op, &e.outcome)
        {
            // The locked account was read at its latest version (the one the move replaced);
            // the other account at some committed version.
            if let Some(&(_, version)) = found.first() {
                let before = chains[account].at(version - 1).map(|s| s.balance);
                if before != Some(*mine) {
                    f.lost_updates += 1;
                    f.note(
                        "lost update",
                        format!("move {token} read balance {mine} of {account}, but it replaced {before:?}"),
                    );
                }
            }
            if let Some(chain) = chains.get(other) {
                if !chain.states.iter().any(|s| s.balance == *theirs) {
                    f.uncommitted_reads += 1;
                    f.note(
                        "uncommitted read",
                        format!("move {token} read balance {theirs} of {other}, which it never had"),
                    );
                }
            }
        }
    }

    // Reads (and the states edits were answered with).
    for a in acked_at.values_mut() {
        a.sort();
    }
    for e in &history.entries {
        let Outcome::Ok { seen, .. } = &e.outcome else { continue };
        for s in seen {
            let Some(chain) = chains.get(&s.id) else { continue };
            if chain.at(s.version) != Some(s) {
                if s.stamp.as_deref().is_some_and(|t| refused.contains(t)) {
                    f.aborted_reads += 1;
                    f.note("aborted read", format!("read {s:?}: the write of its stamp was refused (rolled back)"));
                } else {
                    f.uncommitted_reads += 1;
                    f.note(
                        "uncommitted read",
                        format!("read {s:?}: history has {:?} at that version", chain.at(s.version)),
                    );
                }
            }
            let newest_acked = acked_at
                .get(&s.id)
                .map(|a| a.iter().take_while(|(at, _)| *at < e.invoked).map(|(_, v)| *v).max().unwrap_or(0))
                .unwrap_or(0);
            if newest_acked > s.version {
                f.stale_reads += 1;
                f.note("stale read", format!("read {s:?} began after version {newest_acked} was acknowledged"));
            }
        }
        if let Op::Read { pair: true } = e.op {
            let sum: i64 = seen.iter().map(|s| s.balance).sum();
            if seen.len() == 2 && sum < 0 {
                f.skew_reads += 1;
                f.note(
                    "write skew read",
                    format!("a read of a pair saw {} + {} < 0", seen[0].balance, seen[1].balance),
                );
            }
        }
    }

    // The fold of the acknowledged (and applied unknown) operations is the final value.
    for a in &history.accounts {
        let chain = &chains[&a.initial.id];
        let Some(last) = chain.states.last() else { continue };
        let (delta, edits) = fold.get(&a.initial.id).copied().unwrap_or_default();
        if last.balance != a.initial.balance + delta {
            f.lost_updates += 1;
            f.note(
                "lost update",
                format!(
                    "account {}: balance {}, the moves fold to {}",
                    a.initial.id,
                    last.balance,
                    a.initial.balance + delta
                ),
            );
        }
        let expected = a.initial.visits + edits;
        if last.visits != expected {
            f.lost_updates += usize::try_from((expected - last.visits).unsigned_abs()).unwrap_or(usize::MAX);
            f.note(
                "lost update",
                format!(
                    "account {}: visits {}, {edits} edits acknowledged fold to {expected}",
                    a.initial.id, last.visits
                ),
            );
        }
    }

    // Write skew: each pair at every committed point, in history-id order.
    let mut pairs: BTreeMap<usize, Vec<Uuid>> = BTreeMap::new();
    for a in &history.accounts {
        pairs.entry(a.pair).or_default().push(a.initial.id);
    }
    for ids in pairs.values() {
        let mut points: Vec<(i64, usize, i64)> = Vec::new();
        let mut balances = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let chain = &chains[id];
            balances.push(chain.states[0].balance);
            for (row, s) in chain.rows.iter().zip(&chain.states).skip(1) {
                points.push((*row, i, s.balance));
            }
        }
        points.sort();
        for (row, i, balance) in points {
            balances[i] = balance;
            let sum: i64 = balances.iter().sum();
            if sum < 0 {
                f.write_skew += 1;
                f.note("write skew", format!("pair {ids:?} at {balances:?} after history row {row}"));
            }
        }
    }
    f
}

/// Doctored copies of a clean history, each with one kind of anomaly, must be reported: the
/// checks can fail.
pub async fn doctored_histories_are_caught(db: &Db, slug: &str, clean: &History) {
    let Truth { rows, current, moves } = Truth::load(db, slug).await;
    let base = judge(clean, &rows, &current, &moves);
    assert_eq!(base.anomalies(), 0, "{base}");
    let account = clean.accounts[0].initial.id;
    let later = Instant::now() + Duration::from_secs(3600);
    let read = |s: Snapshot, invoked: Instant| Entry {
        op: Op::Read { pair: false },
        invoked,
        completed: invoked,
        outcome: Outcome::Ok { seen: vec![s], guard_read: None },
    };
    let last = current.iter().find(|(id, ..)| *id == account).map(|(_, v, _)| *v).expect("account");

    // An acknowledged edit the database does not have: lost, and the visits fold is off by one.
    let mut h = clean.clone();
    h.entries.push(Entry {
        op: Op::Edit { token: "e-phantom".into(), account },
        invoked: later,
        completed: later,
        outcome: Outcome::Ok { seen: Vec::new(), guard_read: None },
    });
    let f = judge(&h, &rows, &current, &moves);
    assert!(f.lost == 1 && f.lost_updates >= 1, "a lost edit was missed: {f}");

    // A read of a refused (rolled-back) move's write: the poisoned move's stamp, at a version
    // after the last committed one.
    let mut h = clean.clone();
    let poisoned = clean.entries.iter().find_map(|e| match (&e.op, &e.outcome) {
        (Op::Move { token, account, poison: true, .. }, Outcome::Fail(_)) => Some((token.clone(), *account)),
        _ => None,
    });
    let (token, on) = poisoned.expect("a poisoned move in the history");
    let on_last = current.iter().find(|(id, ..)| *id == on).map(|(_, v, _)| *v).expect("account");
    let s = Snapshot { id: on, version: on_last + 1, balance: 0, visits: 0, stamp: Some(token) };
    h.entries.push(read(s, later));
    let f = judge(&h, &rows, &current, &moves);
    assert!(f.aborted_reads == 1, "a read of a rolled-back write was missed: {f}");

    // A read of a state history does not have (the last version with one more in the balance).
    let mut h = clean.clone();
    let mut s = judge_state(clean, &rows, account, last);
    s.balance += 1;
    h.entries.push(read(s, later));
    let f = judge(&h, &rows, &current, &moves);
    assert!(f.uncommitted_reads == 1, "a read of a state never committed was missed: {f}");

    // A read, begun after every write was acknowledged, of the account's first version.
    let mut h = clean.clone();
    let acked_later = clean.entries.iter().any(|e| {
        matches!((&e.op, &e.outcome), (Op::Edit { account: a, .. }, Outcome::Ok { .. }) if *a == account)
            || matches!((&e.op, &e.outcome), (Op::Move { account: a, .. }, Outcome::Ok { .. }) if *a == account)
    });
    assert!(acked_later, "no acknowledged write on the first account");
    h.entries.push(read(clean.accounts[0].initial.clone(), later));
    let f = judge(&h, &rows, &current, &moves);
    assert!(f.stale_reads == 1, "a stale read was missed: {f}");

    // A pair of accounts below zero at a committed point: one withdrawal more than the pair had,
    // written into history.
    let mut rows2 = rows.clone();
    let pair = &clean.accounts[0];
    let total = judge_state(clean, &rows, pair.initial.id, i64::MAX).balance
        + judge_state(clean, &rows, pair.partner, i64::MAX).balance;
    let before = judge_state(clean, &rows, account, i64::MAX);
    let to = before.balance - total - 1;
    let id = rows2.last().map_or(1, |r| r.0 + 1);
    rows2.push((id, account, "apply".into(), serde_json::json!({ "balance": { "from": before.balance, "to": to } })));
    let f = judge(clean, &rows2, &current, &moves);
    assert!(f.write_skew >= 1, "a pair below zero was missed: {f}");
    println!("the checker caught each doctored history: a lost edit, a rolled-back read, an uncommitted read, a stale read, a pair below zero");
}

/// The committed state of `account` at `version` (its last when past the end), from history.
fn judge_state(h: &History, rows: &[(i64, Uuid, String, Value)], account: Uuid, version: i64) -> Snapshot {
    let mut s = h.accounts.iter().find(|a| a.initial.id == account).map(|a| a.initial.clone()).expect("account");
    for (_, entity, transition, changes) in rows {
        if *entity != account || transition == "create" || s.version >= version {
            continue;
        }
        s.version += 1;
        for (name, change) in changes.as_object().into_iter().flatten() {
            let to = &change["to"];
            match name.as_str() {
                "balance" => s.balance = to.as_i64().unwrap_or(i64::MIN),
                "visits" => s.visits = to.as_i64().unwrap_or(i64::MIN),
                "stamp" => s.stamp = to.as_str().map(str::to_string),
                _ => {}
            }
        }
    }
    s
}
