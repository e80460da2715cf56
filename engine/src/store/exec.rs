//! Transitions and creations inside one transaction: the IO around the pure evaluation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row as _};
use tracing::Instrument;
use uuid::Uuid;

use super::sql::{self, HistoryRow, NewTimer, StoredEntity};
use super::tx::Tx;
use super::{conn, entity_json, CreateOptions, EmittedEvent, Store, StoreError, TenantId};
use crate::compiled::{CompiledTenant, CompiledWorkflow};
use crate::eval::{self, GuardKind, LoadKind, LoadRequest, Rejection};
use crate::model::{Actor, Entity, Loaded};
use crate::offload::cost_key;

/// Most rows a `where` load may return: a transition is not a batch job.
pub(super) const MAX_LOAD_ROWS: i64 = 10_000;

/// Which transition to execute on which entity, with what input.
#[derive(Debug, Clone)]
pub struct TransitionRequest<'a> {
    pub type_name: &'a str,
    pub id: Uuid,
    pub name: &'a str,
    pub input: Value,
}

/// Request options of a transition.
#[derive(Debug, Clone, Default)]
pub struct TransitionOptions {
    pub idempotency_key: Option<String>,
    /// `If-Match`: the entity's version the client saw.
    pub if_match: Option<i64>,
    /// Evaluate and write everything, then roll back.
    pub dry_run: bool,
}

/// The answer of a transition: the entity after it, and the events it emitted.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TransitionOutcome {
    pub entity: Value,
    pub events: Vec<EmittedEvent>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// True when this answer is the replay of an earlier request with the same key.
    #[serde(skip)]
    pub replayed: bool,
}

/// One transition available from the current state, explained for this actor.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionInfo {
    pub name: String,
    pub label: Option<String>,
    pub to: String,
    pub allowed: bool,
    pub role_allowed: bool,
    pub roles: Vec<String>,
    pub guards: Vec<eval::GuardResult>,
    pub input_schema: Option<Value>,
    /// Why it is not allowed (when it is not), e.g. "role", "four_eyes", "guard", "load".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A dry run's definitions: those of the entity's pinned version, or the caller's (a draft
/// package, compiled).
#[derive(Debug, Clone, Default)]
pub enum DryRunDefinitions {
    /// The entity's pinned version, as a real transition uses.
    #[default]
    Pinned,
    /// These, for the entity and every follow-up (the studio's draft).
    Given(Arc<CompiledTenant>),
}

/// What a transition would do, from [`Store::dry_run`](super::Store::dry_run): evaluated and
/// written in a transaction that was rolled back.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// Why the transition (or one of its follow-ups) was refused; `None`: it would apply.
    pub rejection: Option<Rejection>,
    /// The requested transition's four-eyes checks and guards, every one of them (as
    /// `GET …/transitions` explains them), with the values of those that fail; empty when it
    /// was refused before its guards (not available, role, input).
    pub guards: Vec<eval::GuardResult>,
    /// Every entity the transition and its follow-ups changed or created, in the order they were
    /// first touched (the entity itself first); empty when refused.
    pub changes: Vec<EntityChange>,
    /// The events that would be emitted, in outbox order; empty when refused.
    pub events: Vec<EmittedEvent>,
    /// The transitions the script fired on other entities (and theirs), in the order they ran;
    /// empty when refused.
    pub follow_ups: Vec<FollowUpRun>,
}

/// An entity before and after a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct EntityChange {
    #[serde(rename = "type")]
    pub type_name: String,
    pub id: Uuid,
    pub created: bool,
    /// The entity as it was (public JSON form); `None` when created.
    pub before: Option<Value>,
    /// The entity as the transition left it.
    pub after: Option<Value>,
}

/// A follow-up transition a script fired, and how deep in the cascade (1: by the requested
/// transition's script).
#[derive(Debug, Clone, Serialize)]
pub struct FollowUpRun {
    #[serde(rename = "type")]
    pub type_name: String,
    pub id: Uuid,
    pub transition: String,
    pub input: Value,
    pub depth: usize,
}

/// What the steps of a dry run record for its report.
#[derive(Debug, Default)]
pub(super) struct Journal {
    guards: Vec<eval::GuardResult>,
    /// Entity id → (type, the entity before; `None`: the run created it), in the order first
    /// touched.
    touched: IndexMap<Uuid, (String, Option<Entity>)>,
    follow_ups: Vec<FollowUpRun>,
}

impl Journal {
    /// `entity` is about to change (`created`: was just created); its first state is kept.
    fn touch(&mut self, entity: &Entity, created: bool) {
        let before = if created { None } else { Some(entity.clone()) };
        self.touched.entry(entity.id).or_insert_with(|| (entity.type_name.clone(), before));
    }
}

/// The version under which evaluation costs of definitions given by the caller are recorded
/// ([`crate::offload::cost_key`]); published versions are 1 and up.
const GIVEN_DEFS_COST_VERSION: i64 = -1;

pub(super) async fn dry_run(
    store: &Store,
    tenant: TenantId,
    request: TransitionRequest<'_>,
    actor: &Actor,
    definitions: DryRunDefinitions,
) -> Result<DryRun, StoreError> {
    let TransitionRequest { type_name, id, name, input } = request;
    let span = tracing::info_span!(
        "dry_run",
        tenant.id = %tenant,
        entity.type = type_name,
        entity.id = %id,
        transition = name,
        given_definitions = matches!(definitions, DryRunDefinitions::Given(_)),
    );
    async {
        let mut tx = store.begin(tenant).await?;
        let stored = sql::get_typed(&mut tx, tenant, type_name, id, true).await?.ok_or(StoreError::EntityNotFound)?;
        let mut cx = RunCtx::new(store, tenant, store.now());
        if let DryRunDefinitions::Given(defs) = definitions {
            // The draft may not have the entity's type (any more): nothing to evaluate.
            if defs.workflow(type_name).is_none() {
                return Err(StoreError::TypeNotFound(type_name.to_string()));
            }
            cx.defs = Some(defs);
        }
        cx.journal = Some(std::sync::Mutex::default());
        let mut events = Vec::new();
        let result = run(
            &cx,
            &mut tx,
            stored,
            Step { name, input, actor, depth: 0, parent: None, creating: false },
            &mut events,
        )
        .await;
        let journal = cx
            .journal
            .take()
            .map(|j| j.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
            .unwrap_or_default();
        let report = match result {
            Ok(_) => {
                // Read back in the transaction: each entity as everything (follow-ups included)
                // left it.
                let mut changes = Vec::with_capacity(journal.touched.len());
                for (id, (type_name, before)) in journal.touched {
                    let after = sql::get_entity(&mut tx, tenant, id, false).await?.map(|s| entity_json(&s.entity));
                    changes.push(EntityChange {
                        type_name,
                        id,
                        created: before.is_none(),
                        before: before.as_ref().map(entity_json),
                        after,
                    });
                }
                DryRun { rejection: None, guards: journal.guards, changes, events, follow_ups: journal.follow_ups }
            }
            // A refusal is the answer; an internal rejection is a bug, not one.
            Err(StoreError::Rejected(r)) if !matches!(r, Rejection::Internal(_)) => DryRun {
                rejection: Some(r),
                guards: journal.guards,
                changes: Vec::new(),
                events: Vec::new(),
                follow_ups: Vec::new(),
            },
            Err(e) => return Err(e),
        };
        tx.rollback().await?;
        tracing::info!(applied = report.rejection.is_none(), "dry run");
        Ok(report)
    }
    .instrument(span)
    .await
}

pub(super) async fn transition(
    store: &Store,
    tenant: TenantId,
    request: TransitionRequest<'_>,
    actor: &Actor,
    opts: TransitionOptions,
) -> Result<TransitionOutcome, StoreError> {
    let TransitionRequest { type_name, id, name, input } = request;
    let span = tracing::info_span!(
        "transition",
        tenant.id = %tenant,
        entity.type = type_name,
        entity.id = %id,
        transition = name,
        outcome = tracing::field::Empty,
    );
    // Metric labels come from the URL: only names the entity's definitions declare are used as
    // they are (anything else is `unknown`), so made-up names cannot mint series.
    let mut known = (false, false);
    let result = async {
        // Without a key, the entity is locked with the `BEGIN` (one round trip); with one, the
        // key is locked first.
        let (mut tx, mut locked) = match opts.idempotency_key {
            None => {
                let (tx, found) = store.begin_locked(tenant, type_name, id).await?;
                (tx, Some(found))
            }
            Some(_) => (store.begin(tenant).await?, None),
        };
        // What the idempotency record stands for (only with a key: it hashes the input).
        let request_hash = opts.idempotency_key.as_ref().map(|_| request_hash(type_name, id, name, &input));
        if let (Some(key), Some(request_hash)) = (&opts.idempotency_key, &request_hash) {
            // Held to the end of the transaction: a second request with the key waits here, then
            // finds this one's record (or, if this one rolled back, none).
            sql::lock_idempotency_key(&mut tx, tenant, &actor.id, key).await?;
            // An expired record is absent: the key is free again, for any request.
            if let Some((hash, _status, response)) =
                sql::get_idempotency(&mut tx, tenant, &actor.id, key, store.idempotency_ttl).await?
            {
                if &hash != request_hash {
                    return Err(StoreError::IdempotencyKeyReused);
                }
                tx.commit().await?;
                let mut outcome: TransitionOutcome =
                    serde_json::from_value(response).map_err(|e| StoreError::Definitions(e.to_string()))?;
                outcome.replayed = true;
                // The same request (type, id, name, input) succeeded before: its names exist.
                known = (true, true);
                return Ok(outcome);
            }
        }

        let stored = match locked.take() {
            Some(found) => found,
            None => sql::get_typed(&mut tx, tenant, type_name, id, true).await?,
        }
        .ok_or(StoreError::EntityNotFound)?;
        // Outside the actor's record rules, the entity does not exist for it (every route:
        // one entity, bulk by ids or by filter).
        if !store.sees(&mut tx, tenant, actor, type_name, id).await? {
            return Err(StoreError::EntityNotFound);
        }
        let defs = store.defs.get(&mut tx, tenant, stored.config_version).await?;
        known = (true, defs.workflow(type_name).is_some_and(|w| w.transition(name).is_some()));
        if let Some(expected) = opts.if_match {
            if expected != stored.entity.version {
                return Err(StoreError::VersionConflict { expected, actual: stored.entity.version });
            }
        }
        let mut run_ctx = RunCtx::new(store, tenant, store.now());
        if opts.idempotency_key.is_none() && !opts.dry_run && tx.by_hand() {
            run_ctx.last_write = Some(std::sync::Mutex::default());
        }
        let mut events = Vec::new();
        let entity = run(
            &run_ctx,
            &mut tx,
            stored,
            Step { name, input, actor, depth: 0, parent: None, creating: false },
            &mut events,
        )
        .await?;
        let outcome =
            TransitionOutcome { entity: entity_json(&entity), events, dry_run: opts.dry_run, replayed: false };
        if opts.dry_run {
            tx.rollback().await?;
            return Ok(outcome);
        }
        if let (Some(key), Some(request_hash)) = (&opts.idempotency_key, &request_hash) {
            let response = serde_json::to_value(&outcome).map_err(|e| StoreError::Definitions(e.to_string()))?;
            let record = sql::IdempotencyRecord { request_hash, status: 200, response: &response };
            sql::put_idempotency(&mut tx, tenant, &actor.id, key, record, store.idempotency_ttl).await?;
        }
        let last =
            run_ctx.last_write.take().and_then(|w| w.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner));
        match last {
            Some(last) => last.commit(store, tx, tenant).await?,
            None => store.commit_writes(tx, tenant).await?,
        }
        Ok(outcome)
    }
    .instrument(span.clone())
    .await;
    let outcome = match &result {
        Ok(o) if o.dry_run => "dry_run",
        Ok(_) => "ok",
        Err(StoreError::Rejected(r)) => r.code(),
        Err(_) => "error",
    };
    span.record("outcome", outcome);
    let (type_label, transition_label) = match known {
        (true, true) => (type_name, name),
        (true, false) => (type_name, "unknown"),
        _ => ("unknown", "unknown"),
    };
    metrics::counter!("switchyard_transitions_total", "tenant" => tenant.to_string(), "type" => type_label.to_string(), "transition" => transition_label.to_string(), "outcome" => outcome).increment(1);
    result
}

fn request_hash(type_name: &str, id: Uuid, name: &str, input: &Value) -> String {
    let mut h = Sha256::new();
    h.update(type_name.as_bytes());
    h.update(id.as_bytes());
    h.update(name.as_bytes());
    h.update(input.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// What an `Idempotency-Key` of a creation stands for: the type, the data and the create input.
pub(super) fn create_hash(type_name: &str, data: &Value, input: Option<&Value>) -> String {
    let mut h = Sha256::new();
    h.update(b"create\0");
    h.update(type_name.as_bytes());
    h.update(b"\0");
    h.update(data.to_string().as_bytes());
    h.update(b"\0");
    h.update(input.map(Value::to_string).unwrap_or_default().as_bytes());
    hex::encode(h.finalize())
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What every step of one request shares.
pub(super) struct RunCtx<'a> {
    pub(super) store: &'a Store,
    pub(super) tenant: TenantId,
    pub(super) now: DateTime<Utc>,
    /// What the transition and its follow-ups have decided to write so far (bounded as a whole
    /// by the output limits).
    pub(super) output: std::sync::Mutex<eval::OutputSize>,
    /// Definitions to evaluate every step with instead of each entity's pinned version (a dry
    /// run of a draft package); `None`: the pinned versions.
    defs: Option<Arc<CompiledTenant>>,
    /// What a dry run reports, recorded as the steps run; `None` when nobody asks.
    journal: Option<std::sync::Mutex<Journal>>,
    /// Where the requested transition leaves its writes, unwritten, when nothing follows them
    /// (no follow-up, update, create or timer to start): the caller sends them with the
    /// `COMMIT`, in one round trip ([`LastWrite`]). `None`: every step writes as it runs.
    last_write: Option<std::sync::Mutex<Option<LastWrite>>>,
}

/// The writes of a transition that nothing follows, left for the transaction's last round trip
/// ([`sql::record_transition_and_commit`]): the entity's new state and data, its history row and
/// outbox events, and whether its timers are cancelled (the state changed).
pub(super) enum LastWrite {
    /// As one simple query with the `COMMIT`, its text made when the transition was decided (so
    /// nothing of the decision is copied to be written later).
    Literal {
        statements: String,
        /// The entity's version once written (it is locked: nobody else writes it meanwhile).
        version: i64,
    },
    /// A value no literal can hold (text with a NUL): the parameterized statements, then the
    /// `COMMIT`.
    Parameterized(Box<Writes>),
}

/// The values of a [`LastWrite::Parameterized`].
pub(super) struct Writes {
    data: Value,
    entity_id: Uuid,
    entity_type: String,
    transition: String,
    from: String,
    to: String,
    actor_id: String,
    actor_email: String,
    at: DateTime<Utc>,
    input: Value,
    changes: Value,
    config_version: i64,
    events: Vec<EmittedEvent>,
    cancel_timers: bool,
    version: i64,
}

impl Writes {
    fn history(&self) -> HistoryRow<'_> {
        HistoryRow {
            entity_id: self.entity_id,
            entity_type: &self.entity_type,
            transition: &self.transition,
            from: Some(&self.from),
            to: &self.to,
            actor_id: &self.actor_id,
            actor_email: &self.actor_email,
            at: self.at,
            input: &self.input,
            changes: &self.changes,
            config_version: self.config_version,
            parent_id: None,
        }
    }
}

impl LastWrite {
    /// Writes and commits: as one simple query when every value could be a literal, else the
    /// parameterized statements and then `COMMIT`.
    async fn commit(self, store: &Store, mut tx: Tx, tenant: TenantId) -> Result<(), StoreError> {
        let (statements, expected) = match self {
            LastWrite::Literal { statements, version } => (statements, version),
            LastWrite::Parameterized(w) => {
                let (updated, _) = sql::record_transition(&mut tx, tenant, &w.data, w.history(), &w.events).await?;
                if w.cancel_timers {
                    sql::cancel_timers(&mut tx, tenant, w.entity_id, w.at).await?;
                }
                if updated.entity.version != w.version {
                    return Err(StoreError::EntityNotFound);
                }
                return store.commit_writes(tx, tenant).await;
            }
        };
        // Lost on the way: applied or not, nobody knows (as a lost `COMMIT`); never run again.
        let rows = tx.commit_fetching(&statements).await.map_err(|e| match conn::note(&e) {
            true => StoreError::CommitLost(e),
            false => StoreError::from(e),
        })?;
        store.outbox_committed(tenant);
        // The update found the locked row (else nothing was written: no history row without it).
        let version: Option<i64> = rows.first().map(|r| r.try_get("version")).transpose()?;
        if version != Some(expected) {
            return Err(StoreError::EntityNotFound);
        }
        Ok(())
    }
}

impl<'a> RunCtx<'a> {
    pub(super) fn new(store: &'a Store, tenant: TenantId, now: DateTime<Utc>) -> Self {
        RunCtx { store, tenant, now, output: std::sync::Mutex::default(), defs: None, journal: None, last_write: None }
    }

    /// Records into the journal, if there is one.
    fn note(&self, f: impl FnOnce(&mut Journal)) {
        if let Some(journal) = &self.journal {
            f(&mut journal.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        }
    }

    /// Adds a decision's output to the transition's and checks the sum against the limits.
    fn count_output(&self, decision: &eval::Decision) -> Result<(), Rejection> {
        let mut total = self.output.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *total = total.plus(eval::OutputSize::of(decision));
        total.check(&self.store.limits)
    }
}

/// One transition to run: the requested one (depth 0) or a follow-up.
pub(super) struct Step<'a> {
    pub(super) name: &'a str,
    pub(super) input: Value,
    pub(super) actor: &'a Actor,
    pub(super) depth: usize,
    pub(super) parent: Option<i64>,
    /// The create transition of an entity inserted a moment ago in this transaction: its
    /// history row is the entity's first (from no state).
    pub(super) creating: bool,
}

/// Gives `prepared` the earlier actors its four-eyes needs (one query, only when it needs any).
async fn load_history(
    tx: &mut PgConnection,
    tenant: TenantId,
    prepared: &mut eval::Prepared<'_>,
) -> Result<(), StoreError> {
    if prepared.needs_history().is_empty() {
        return Ok(());
    }
    let names = prepared.needs_history().to_vec();
    let history = sql::earlier_actors(tx, tenant, prepared.entity().id, &names).await?;
    prepared.set_history(history);
    Ok(())
}

/// `entity` has just entered its state (created in it, or moved to it from another state):
/// starts the state's timers, due from `now`.
async fn start_timers(
    tx: &mut PgConnection,
    tenant: TenantId,
    workflow: &CompiledWorkflow,
    entity: &Entity,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let timers = workflow.timers(&entity.state);
    if timers.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(timers.len());
    for t in timers {
        let due_at =
            chrono::Duration::from_std(t.after).ok().and_then(|d| now.checked_add_signed(d)).ok_or_else(|| {
                Rejection::Internal(format!(
                    "timer `{}` of state `{}`: due date out of range",
                    t.transition, entity.state
                ))
            })?;
        rows.push(NewTimer { transition: &t.transition, input: &t.input, due_at });
    }
    sql::insert_timers(tx, tenant, entity.id, &entity.state, entity.version, now, &rows).await
}

/// Runs one transition on a locked entity and, recursively, its follow-ups.
pub(super) fn run<'a>(
    cx: &'a RunCtx<'a>,
    tx: &'a mut PgConnection,
    stored: StoredEntity,
    step: Step<'a>,
    events: &'a mut Vec<EmittedEvent>,
) -> BoxFut<'a, Result<Entity, StoreError>> {
    Box::pin(async move {
        let (store, tenant, now) = (cx.store, cx.tenant, cx.now);
        let Step { name, input, actor, depth, parent, creating } = step;
        if depth > store.limits.max_follow_up_depth {
            return Err(Rejection::ScriptLimit {
                message: format!("follow-up transitions nested deeper than {}", store.limits.max_follow_up_depth),
            }
            .into());
        }
        if stored.immutable {
            // Append-only: no transition changes it. Asked for by the client, that is its 409;
            // fired by a script of the package (a follow-up), the package's bug: its 422.
            let type_name = stored.entity.type_name;
            return Err(if depth == 0 {
                StoreError::Immutable { type_name }
            } else {
                Rejection::ScriptFailed {
                    message: format!(
                        "transition({type_name} {}, \"{name}\"): {type_name} entities are append-only and cannot be changed",
                        stored.entity.id
                    ),
                    line: None,
                }
                .into()
            });
        }
        let defs = match &cx.defs {
            Some(defs) => defs.clone(),
            None => store.defs.get(tx, tenant, stored.config_version).await?,
        };
        let entity = stored.entity;
        cx.note(|j| j.touch(&entity, false));
        // Load expressions, guards and the script are pure but CPU-bound (each bounded by the
        // limits, up to a few hundred milliseconds): slow ones run off the reactor. Definitions
        // given by the caller keep their costs apart from the published versions'.
        let version = if cx.defs.is_some() { GIVEN_DEFS_COST_VERSION } else { stored.config_version };
        let key = |part: &str| cost_key(tenant, version, &[&entity.type_name, name, part]);
        let mut prepared = store
            .offload
            .run(tenant, key("prepare"), || {
                if creating {
                    eval::prepare_create(&defs, &entity, &input, actor, now)
                } else {
                    eval::prepare(&defs, &entity, name, &input, actor, now)
                }
            })
            .await??;
        if prepared.transition().uses_decisions() {
            prepared.set_data_tables(store.data_tables.tables(tx, tenant, stored.config_version, &defs).await?)?;
        }
        let workflow = prepared.workflow();
        let loaded = load_stages(store, tx, tenant, &mut prepared, Locks::AsDeclared).await?;
        load_history(tx, tenant, &mut prepared).await?;
        if depth == 0 && cx.journal.is_some() {
            // Every guard explained (not only up to the first that fails), as `available` does.
            let guards = store
                .offload
                .run(tenant, key("explain"), || eval::guard_results(&prepared, &loaded, &store.limits))
                .await?;
            cx.note(|j| j.guards = guards);
        }
        let mut decision =
            store.offload.run(tenant, key("decide"), || eval::decide_ref(&prepared, &loaded, &store.limits)).await??;
        cx.count_output(&decision)?;

        // The transition's events go into the outbox with its history row, in the same
        // statement, unless the script creates entities: their `created` events come first.
        let events_now = decision.creates.is_empty();
        let own_events: Vec<EmittedEvent> = std::mem::take(&mut decision.events)
            .into_iter()
            .map(|e| EmittedEvent {
                id: Uuid::now_v7(),
                name: e.name,
                entity_type: entity.type_name.clone(),
                entity_id: entity.id,
                payload: e.payload,
            })
            .collect();
        // A transition that emits nothing of its own still shows on the event stream, as the
        // built-in `entity.changed` (not in the answer's `events`): live views follow every
        // change. A creation has its `created` event already.
        let changed: Vec<EmittedEvent> = if own_events.is_empty() && !creating {
            vec![changed_event(&entity.type_name, entity.id, &decision.to, entity.version + 1)]
        } else {
            Vec::new()
        };
        let written: &[EmittedEvent] = if !events_now {
            &[]
        } else if changed.is_empty() {
            &own_events
        } else {
            &changed
        };
        let last_write = cx.last_write.as_ref().filter(|_| {
            depth == 0
                && !creating
                && cx.journal.is_none()
                && decision.updates.is_empty()
                && decision.creates.is_empty()
                && decision.follow_ups.is_empty()
                && (decision.to == decision.from || workflow.timers(&decision.to).is_empty())
        });
        if let Some(slot) = last_write {
            // Nothing follows the writes: they go with the `COMMIT` (the caller sends them). The
            // references are checked first (no create to wait for), and the entity answered is
            // the one the write will leave: it is locked, so nobody else writes it meanwhile.
            if let Some(ty) = defs.type_(&entity.type_name) {
                super::refs::check(tx, tenant, ty, &decision.data, Some(&entity.data), "/entity").await?;
            }
            let history = HistoryRow {
                entity_id: entity.id,
                entity_type: &entity.type_name,
                transition: name,
                from: Some(&decision.from),
                to: &decision.to,
                actor_id: &actor.id,
                actor_email: &actor.email,
                at: now,
                input: &input,
                changes: &decision.changes,
                config_version: stored.config_version,
                parent_id: None,
            };
            let cancel_timers = decision.to != decision.from;
            let version = entity.version + 1;
            let write =
                match sql::record_transition_and_commit(tenant, &decision.data, &history, written, cancel_timers) {
                    Some(statements) => LastWrite::Literal { statements, version },
                    None => LastWrite::Parameterized(Box::new(Writes {
                        data: decision.data.clone(),
                        entity_id: entity.id,
                        entity_type: entity.type_name.clone(),
                        transition: name.to_string(),
                        from: decision.from.clone(),
                        to: decision.to.clone(),
                        actor_id: actor.id.clone(),
                        actor_email: actor.email.clone(),
                        at: now,
                        input,
                        changes: decision.changes.clone(),
                        config_version: stored.config_version,
                        events: written.to_vec(),
                        cancel_timers,
                        version,
                    })),
                };
            *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(write);
            events.extend(own_events);
            return Ok(Entity {
                state: decision.to,
                version: entity.version + 1,
                data: decision.data,
                updated_at: now,
                updated_by: actor.id.clone(),
                ..entity
            });
        }
        let (updated, history_id) = sql::record_transition(
            tx,
            tenant,
            &decision.data,
            HistoryRow {
                entity_id: entity.id,
                entity_type: &entity.type_name,
                transition: name,
                from: if creating { None } else { Some(&decision.from) },
                to: &decision.to,
                actor_id: &actor.id,
                actor_email: &actor.email,
                at: now,
                input: &input,
                changes: &decision.changes,
                config_version: stored.config_version,
                parent_id: parent,
            },
            written,
        )
        .await?;
        if decision.to != decision.from || creating {
            // Leaving a state cancels its pending timers (always asked: an entity migrated to
            // another version may have timers its current definitions no longer declare).
            sql::cancel_timers(tx, tenant, entity.id, now).await?;
            start_timers(tx, tenant, workflow, &updated.entity, now).await?;
        }

        // Reference checks run after the creates (a row may reference what the script created).
        let mut updated_before = Vec::with_capacity(decision.updates.len());
        for u in &decision.updates {
            let write = sql::RowWrite {
                type_name: &u.type_name,
                id: u.id,
                data: &u.data,
                changes: &u.changes,
                transition: name,
                actor_id: &actor.id,
                actor_email: &actor.email,
                at: now,
                parent_id: history_id,
                // A loaded row the script changed emits no event of its own: `entity.changed`.
                event_id: Uuid::now_v7(),
            };
            let (row, written) = sql::record_update(tx, tenant, write).await?.ok_or(StoreError::EntityNotFound)?;
            if !written {
                // The script wrote to a loaded row of an append-only type: the package's bug
                // (`validate` refuses `lock: true` loads of such types in new versions).
                return Err(Rejection::ScriptFailed {
                    message: format!(
                        "update({} {}): {} entities are append-only and cannot be changed",
                        u.type_name, u.id, u.type_name
                    ),
                    line: None,
                }
                .into());
            }
            cx.note(|j| j.touch(&row.entity, false));
            updated_before.push((u, row.entity.data));
        }

        for c in &decision.creates {
            let created = insert_new(
                tx,
                tenant,
                &defs,
                stored.config_version,
                c.id,
                &c.type_name,
                Some(c.state.clone()),
                c.data.clone(),
                actor,
                now,
                Some(history_id),
                (false, true),
            )
            .await?;
            if let Some(created) = created {
                cx.note(|j| j.touch(&created, true));
                events.push(created_event(&created));
                sql::insert_event(tx, tenant, events.last().ok_or(StoreError::EntityNotFound)?, Some(history_id))
                    .await?;
            }
        }

        // After the creates: the entity and updated rows may reference what the script created.
        if let Some(ty) = defs.type_(&entity.type_name) {
            super::refs::check(tx, tenant, ty, &decision.data, Some(&entity.data), "/entity").await?;
        }
        for (u, before) in &updated_before {
            if let Some(ty) = defs.type_(&u.type_name) {
                let prefix = format!("/update/{}/{}", u.type_name, u.id);
                super::refs::check(tx, tenant, ty, &u.data, Some(before), &prefix).await?;
            }
        }

        if !events_now {
            for event in own_events.iter().chain(&changed) {
                sql::insert_event(tx, tenant, event, Some(history_id)).await?;
            }
        }
        events.extend(own_events);

        // Follow-ups run as the system on behalf of the actor: the package declared them, so the
        // target transition's roles are not asked of the actor (history still names the actor).
        let cascade_actor = Actor { system: true, ..actor.clone() };
        for f in &decision.follow_ups {
            cx.note(|j| {
                j.follow_ups.push(FollowUpRun {
                    type_name: f.type_name.clone(),
                    id: f.id,
                    transition: f.transition.clone(),
                    input: f.input.clone(),
                    depth: depth + 1,
                })
            });
            let target =
                sql::get_typed(tx, tenant, &f.type_name, f.id, true).await?.ok_or(StoreError::EntityNotFound)?;
            let step = Step {
                name: &f.transition,
                input: f.input.clone(),
                actor: &cascade_actor,
                depth: depth + 1,
                parent: Some(history_id),
                creating: false,
            };
            run(cx, tx, target, step, events).await?;
        }
        // Re-read when follow-ups may have touched this entity through a load.
        if decision.follow_ups.is_empty() {
            Ok(updated.entity)
        } else {
            Ok(sql::get_entity(tx, tenant, entity.id, false).await?.map(|s| s.entity).unwrap_or(updated.entity))
        }
    })
}

/// Whether loads take the row locks their declarations ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Locks {
    /// `lock: true` loads lock their rows (firing a transition).
    AsDeclared,
    /// Nothing is locked (explaining a transition changes nothing).
    None,
}

/// Runs a prepared transition's loads stage by stage: the pending requests, then those of the
/// loads that read them ([`eval::Prepared::next_stage`], pure), until every load has run.
async fn load_stages(
    store: &Store,
    tx: &mut PgConnection,
    tenant: TenantId,
    prepared: &mut eval::Prepared<'_>,
    locks: Locks,
) -> Result<IndexMap<String, Loaded>, StoreError> {
    let mut out = IndexMap::with_capacity(prepared.transition().loads().len());
    let key = cost_key(tenant, 0, &[&prepared.entity().type_name, prepared.transition().name(), "stages"]);
    loop {
        load_stage(tx, tenant, prepared.pending_loads(), locks, &mut out).await?;
        if !store.offload.run(tenant, key, || prepared.next_stage(&out)).await?? {
            return Ok(out);
        }
    }
}

/// Runs one stage's requests into `out`. Rows locked by id are taken in id order, before the
/// filters (each of which locks its rows in id order), so two transitions locking the same rows
/// in one stage take them in the same order.
async fn load_stage(
    tx: &mut PgConnection,
    tenant: TenantId,
    requests: &[LoadRequest],
    locks: Locks,
    out: &mut IndexMap<String, Loaded>,
) -> Result<(), StoreError> {
    let lock = |r: &LoadRequest| r.lock && locks == Locks::AsDeclared;
    let mut order: Vec<&LoadRequest> = requests.iter().collect();
    order.sort_by_key(|r| match &r.kind {
        LoadKind::ById(Some(id)) if lock(r) => (0, Some(*id)),
        _ => (1, None),
    });
    for r in order {
        let loaded = match &r.kind {
            LoadKind::ById(None) => Loaded::One(None),
            LoadKind::ById(Some(id)) => {
                Loaded::One(sql::get_typed(tx, tenant, &r.type_name, *id, lock(r)).await?.map(|s| s.entity))
            }
            LoadKind::Where(conditions) => Loaded::Many(
                sql::load_where(tx, tenant, &r.type_name, conditions, lock(r), MAX_LOAD_ROWS)
                    .await?
                    .into_iter()
                    .map(|s| s.entity)
                    .collect(),
            ),
        };
        out.insert(r.name.clone(), loaded);
    }
    Ok(())
}

/// The built-in event of a change that emits none of its own (docs/api.md, "Events"): who
/// follows the stream learns that the entity changed, and its state and version, but none of
/// its data.
pub const ENTITY_CHANGED: &str = "entity.changed";

fn changed_event(type_name: &str, id: Uuid, state: &str, version: i64) -> EmittedEvent {
    EmittedEvent {
        id: Uuid::now_v7(),
        name: ENTITY_CHANGED.to_string(),
        entity_type: type_name.to_string(),
        entity_id: id,
        payload: json!({ "id": id, "type": type_name, "state": state, "version": version }),
    }
}

fn created_event(e: &Entity) -> EmittedEvent {
    EmittedEvent {
        id: Uuid::now_v7(),
        name: format!("{}.created", e.type_name),
        entity_type: e.type_name.clone(),
        entity_id: e.id,
        payload: json!({ "id": e.id, "type": e.type_name, "state": e.state }),
    }
}

pub(super) async fn create(
    store: &Store,
    tx: &mut PgConnection,
    tenant: TenantId,
    type_name: &str,
    mut data: Value,
    actor: &Actor,
    opts: CreateOptions,
) -> Result<Entity, StoreError> {
    let (version, defs) = store.live_in(tx, tenant).await?;
    let now = store.now();
    let workflow = defs.workflow(type_name).ok_or_else(|| StoreError::TypeNotFound(type_name.to_string()))?;
    // Sample data with an explicit state is placed there as it is: no create transition.
    let create_transition = if opts.state.is_none() { workflow.create_transition() } else { None };
    if let Some(input) = &opts.input {
        if create_transition.is_none() && !(input.is_null() || input.as_object().is_some_and(|m| m.is_empty())) {
            return Err(Rejection::Validation {
                errors: vec![ontology::compile::FieldError {
                    path: "/input".into(),
                    message: format!("{type_name} has no create transition to take an input"),
                }],
            }
            .into());
        }
    }
    // A user field may be given as the user's e-mail: from here on it is the user's id.
    if let Some(ty) = defs.type_(type_name) {
        super::refs::resolve_user_emails(tx, tenant, ty, &mut data, "/data").await?;
    }
    // A client (the API, an import) may not fill what the server fills, nor what its roles may
    // not set (`roles.<role>.create`); sample data (the system actor) may, and scripts'
    // `create()` does not come this way.
    if let Some(ty) = defs.type_(type_name) {
        super::edit::refuse_generated(ty, &data, actor)?;
        if !actor.system && data.is_object() && defs.permissions().has_create_rules(type_name) {
            let mut with_defaults = data.clone();
            ty.apply_defaults(&mut with_defaults);
            crate::decimals::numbers_for_rules(ty, &mut with_defaults);
            // A field given its declared default is not "set": the entity is the same as without
            // it (a generated form sends defaults it shows).
            let mut data = data.clone();
            if let Some(map) = data.as_object_mut() {
                map.retain(|k, v| {
                    !ty.def().fields.get(k.as_str()).is_some_and(|f| ontology::compile::is_default(f, v))
                });
            }
            let state = opts.state.as_deref().unwrap_or(workflow.initial_state());
            let key = cost_key(tenant, version, &[type_name, "create", "rules"]);
            store
                .offload
                .run(tenant, key, || {
                    let entity =
                        crate::permissions::create_context_entity(type_name, state, &with_defaults, actor, now);
                    defs.permissions().check_create(actor, type_name, &data, &entity, now, &store.limits)
                })
                .await??;
        }
    }
    let id = opts.id.unwrap_or_else(Uuid::now_v7);
    let history = create_transition.is_none();
    let created = insert_new(
        tx,
        tenant,
        &defs,
        version,
        id,
        type_name,
        opts.state,
        data,
        actor,
        now,
        None,
        (opts.skip_if_exists, history),
    )
    .await?;
    let Some(entity) = created else {
        // It existed already (sample data applied twice): answer with what is there.
        return sql::get_entity(tx, tenant, id, false).await?.map(|s| s.entity).ok_or(StoreError::EntityNotFound);
    };
    let Some(t) = create_transition else {
        sql::insert_event(tx, tenant, &created_event(&entity), None).await?;
        return Ok(entity);
    };
    // The create transition, in this transaction: the entity is created in the state it leads
    // to (the `created` event says so, and comes before the transition's events), or not at all.
    let mut event = created_event(&entity);
    event.payload["state"] = json!(t.to());
    sql::insert_event(tx, tenant, &event, None).await?;
    let span =
        tracing::info_span!("create_transition", tenant.id = %tenant, entity.type = type_name, transition = t.name());
    let cx = RunCtx::new(store, tenant, now);
    let mut events = Vec::new();
    let stored = StoredEntity { entity, config_version: version, immutable: false };
    let step = Step {
        name: t.name(),
        input: match opts.input {
            None | Some(Value::Null) => json!({}),
            Some(input) => input,
        },
        actor,
        depth: 0,
        parent: None,
        creating: true,
    };
    run(&cx, tx, stored, step, &mut events).instrument(span).await
}

/// Validates and inserts a new entity (number, defaults, schema), with its `create` history row.
/// Returns `None` when `skip_if_exists` and the id is taken.
#[expect(clippy::too_many_arguments, reason = "the parts of a new entity, each used once")]
async fn insert_new(
    tx: &mut PgConnection,
    tenant: TenantId,
    defs: &Arc<CompiledTenant>,
    version: i64,
    id: Uuid,
    type_name: &str,
    state: Option<String>,
    mut data: Value,
    actor: &Actor,
    now: DateTime<Utc>,
    parent: Option<i64>,
    (skip_if_exists, history): (bool, bool),
) -> Result<Option<Entity>, StoreError> {
    let ty = defs.type_(type_name).ok_or_else(|| StoreError::TypeNotFound(type_name.to_string()))?;
    if !data.is_object() {
        return Err(StoreError::NotAnObject);
    }
    let workflow = defs.workflow(type_name).ok_or_else(|| StoreError::TypeNotFound(type_name.to_string()))?;
    let state = match state {
        Some(s) if workflow.has_state(&s) => s,
        Some(s) => {
            return Err(Rejection::Validation {
                errors: vec![ontology::compile::FieldError {
                    path: "/state".into(),
                    message: format!("`{s}` is not a state of {type_name}"),
                }],
            }
            .into())
        }
        None => workflow.initial_state().to_string(),
    };
    ty.apply_defaults(&mut data);
    if let Some(field) = ty.number_field() {
        let already = data.get(field).is_some_and(|v| !v.is_null());
        if !already {
            let seq = sql::next_sequence(tx, tenant, &format!("{type_name}:{}", now.year())).await?;
            let number = ty.render_number(seq, now, &data).map_err(|e| match e {
                ontology::error::OntologyError::Template { type_name, path, message } => {
                    Rejection::TemplateFailed { at: format!("{type_name}: {path}"), message }
                }
                other => Rejection::TemplateFailed {
                    at: format!("{type_name}: number.template"),
                    message: other.to_string(),
                },
            })?;
            if let (Some(n), Some(obj)) = (number, data.as_object_mut()) {
                obj.insert(field.to_string(), Value::String(n));
            }
        }
    }
    ty.prepare(&mut data).map_err(|errors| Rejection::Validation {
        errors: errors
            .into_iter()
            .map(|e| ontology::compile::FieldError { path: format!("/data{}", e.path), message: e.message })
            .collect(),
    })?;
    super::refs::check(tx, tenant, ty, &data, None, "/data").await?;
    let Some(row) = sql::insert_entity(
        tx,
        tenant,
        id,
        type_name,
        (&state, i64::from(history)),
        &data,
        version,
        &actor.id,
        now,
        skip_if_exists,
    )
    .await?
    else {
        return Ok(None);
    };
    if !history {
        // A create transition follows: it writes the first history row and starts the timers
        // of the state it leads to.
        return Ok(Some(row.entity));
    }
    start_timers(tx, tenant, workflow, &row.entity, now).await?;
    sql::insert_history(
        tx,
        tenant,
        HistoryRow {
            entity_id: id,
            entity_type: type_name,
            transition: "create",
            from: None,
            to: &state,
            actor_id: &actor.id,
            actor_email: &actor.email,
            at: now,
            input: &json!({}),
            changes: &json!({}),
            config_version: version,
            parent_id: parent,
        },
    )
    .await?;
    Ok(Some(row.entity))
}

pub(super) async fn available(
    store: &Store,
    tenant: TenantId,
    type_name: &str,
    id: Uuid,
    actor: &Actor,
) -> Result<Vec<TransitionInfo>, StoreError> {
    let mut tx = store.begin(tenant).await?;
    let stored = sql::get_typed(&mut tx, tenant, type_name, id, false).await?.ok_or(StoreError::EntityNotFound)?;
    let out = explain(store, &mut tx, tenant, &stored, actor, store.now()).await?;
    tx.commit().await?;
    Ok(out)
}

/// Every transition from the entity's current state, explained for this actor with the
/// definitions of the entity's pinned version: roles, then (with the role) the loads, four-eyes
/// and guards, evaluated without locking anything. The list of an entity's transitions and the
/// inbox ([`super::inbox`]) both use it, so they cannot disagree.
pub(super) async fn explain(
    store: &Store,
    tx: &mut PgConnection,
    tenant: TenantId,
    stored: &StoredEntity,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<TransitionInfo>, StoreError> {
    let type_name = stored.entity.type_name.as_str();
    let defs = store.defs.get(tx, tenant, stored.config_version).await?;
    let workflow = defs.workflow(type_name).ok_or_else(|| StoreError::TypeNotFound(type_name.to_string()))?;
    let mut out = Vec::new();
    for t in workflow.transitions_from(&stored.entity.state) {
        let role_allowed = actor.system || t.roles().iter().any(|r| actor.roles.contains(r));
        // Without a role, nothing is loaded and no guard evaluated: the answer shows only that
        // the role is missing, never data the guards would read.
        let (guards, load_error) = if !role_allowed {
            (Vec::new(), None)
        } else {
            match eval::prepare_explain(&defs, &stored.entity, t.name(), actor, now) {
                // Explaining locks nothing: the loads run without `FOR UPDATE`.
                Ok(mut p) => match async {
                    if p.transition().uses_decisions() {
                        p.set_data_tables(store.data_tables.tables(tx, tenant, stored.config_version, &defs).await?)?;
                    }
                    load_stages(store, tx, tenant, &mut p, Locks::None).await
                }
                .await
                {
                    Ok(loaded) => {
                        load_history(tx, tenant, &mut p).await?;
                        let key = cost_key(tenant, stored.config_version, &[type_name, t.name(), "explain"]);
                        (
                            store.offload.run(tenant, key, || eval::guard_results(&p, &loaded, &store.limits)).await?,
                            None,
                        )
                    }
                    Err(e) => (Vec::new(), Some(e.to_string())),
                },
                Err(r) => (Vec::new(), Some(r.to_string())),
            }
        };
        out.push(transition_info(t, role_allowed, guards, load_error));
    }
    Ok(out)
}

/// A transition explained: allowed when the role is held, every guard (four-eyes included)
/// passed and the loads ran; otherwise the first reason of `role`, the load's error,
/// `four_eyes`, `guard`.
pub(super) fn transition_info(
    t: &crate::compiled::CompiledTransition,
    role_allowed: bool,
    guards: Vec<eval::GuardResult>,
    load_error: Option<String>,
) -> TransitionInfo {
    let guards_pass = guards.iter().all(|g| g.passed);
    let four_eyes_pass = guards.iter().all(|g| g.passed || g.kind != GuardKind::FourEyes);
    let allowed = role_allowed && guards_pass && load_error.is_none();
    let reason = if !role_allowed {
        Some("role".to_string())
    } else if let Some(e) = load_error {
        Some(e)
    } else if !four_eyes_pass {
        Some("four_eyes".to_string())
    } else if !guards_pass {
        Some("guard".to_string())
    } else {
        None
    };
    TransitionInfo {
        name: t.name().to_string(),
        label: t.label().map(str::to_string),
        to: t.to().to_string(),
        allowed,
        role_allowed,
        roles: t.roles().to_vec(),
        guards,
        input_schema: t.input_schema().cloned(),
        reason,
    }
}
