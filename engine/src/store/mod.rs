//! The Postgres executor: the only module that runs a database transaction.
//!
//! Everything a request does happens in one transaction that first sets the tenant for
//! row-level security (`set_config('app.tenant_id', …, true)`), so a connection never sees
//! another tenant's rows even if a query forgot its `tenant_id` filter (none does: every
//! statement in [`sql`] takes the tenant explicitly as well).
//!
//! A transition is: lock the entity, [`crate::eval::prepare`] (pure), run the declared loads
//! (locking what may change, in id order), [`crate::eval::decide`] (pure), then write the
//! entity, the related rows, new entities, history and outbox, and run follow-up transitions the
//! same way to a bounded depth. Any error rolls the whole transaction back.
//!
//! An entity entering a state with `timers:` starts them in the same transaction (a row in
//! `timers`); leaving the state cancels them. [`Store::fire_due_timers`] fires the due ones.

mod cache;
pub mod conn;
mod decisions;
mod edit;
mod error;
mod exec;
mod explain;
mod inbox;
pub mod query;
mod refs;
pub mod sql;
mod tenant_id;
mod timers;
mod titles;
pub mod tx;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
pub use tx::Tx;
use uuid::Uuid;

use crate::compiled::CompiledTenant;
use crate::limits::Limits;
use crate::model::{Actor, Entity};
use crate::permissions::Action;

pub use cache::DefinitionCache;
pub use error::{unique_message, StoreError, IMMUTABLE_SQLSTATE};
pub use exec::{
    DryRun, DryRunDefinitions, EntityChange, FollowUpRun, TransitionInfo, TransitionOptions, TransitionOutcome,
    TransitionRequest, ENTITY_CHANGED,
};
pub use inbox::{
    candidate_states, InboxGroup, InboxItem, InboxPage, InboxRequest, INBOX_DEFAULT_LIMIT, INBOX_MAX_LIMIT,
    INBOX_MAX_SCAN,
};
pub use query::{ListMode, ListPage, ListRequest, ParamValue};
pub use tenant_id::TenantId;
pub use timers::{timer_actor, TimerInfo};
pub use titles::MAX_TITLED_REFERENCES;

pub use crate::names::TenantSlug;

/// An event written to the outbox by a transition or a creation.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct EmittedEvent {
    pub id: Uuid,
    pub name: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub payload: Value,
}

/// One row of an entity's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub transition: String,
    pub from: Option<String>,
    pub to: String,
    pub actor: HistoryActor,
    pub at: DateTime<Utc>,
    pub input: Value,
    pub changes: Value,
    pub definition_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryActor {
    pub id: String,
    pub email: String,
}

/// How a new entity is made: by a client (defaults: new id, initial state) or by sample data
/// (a stable id, maybe an explicit state, skipped if it already exists).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: Option<Uuid>,
    pub state: Option<String>,
    pub skip_if_exists: bool,
    /// The input of the type's create transition (`create: true`; `None`: `{}`). An input for
    /// a type without one is refused.
    pub input: Option<Value>,
}

/// The executor. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// Connections whose last transaction ended cleanly, for the next one ([`tx`]).
    shelf: Arc<tx::Shelf>,
    defs: DefinitionCache,
    limits: Arc<Limits>,
    /// Each tenant's live version as last read, and when: permission checks use it for up to
    /// [`LIVE_VERSION_TTL`] instead of asking the database on every request.
    live: Arc<std::sync::RwLock<std::collections::HashMap<TenantId, (i64, std::time::Instant)>>>,
    /// Tenants whose outbox rows this process has just committed: the process's outbox relay
    /// hears of them here, in memory, rather than from a NOTIFY inside every transaction (a
    /// transaction that notifies commits under a cluster-wide lock; see
    /// `migrations/0007_outbox_without_notify.sql` and [`Store::subscribe_commits`]).
    commits: tokio::sync::broadcast::Sender<TenantId>,
    /// How long an idempotency record answers for its key ([`Store::with_idempotency_ttl`]).
    idempotency_ttl: std::time::Duration,
    /// Where slow tenant code is evaluated ([`crate::offload`]).
    offload: Arc<crate::offload::Offload>,
    /// Microseconds added to the wall clock ([`Store::now`]): 0 in a server; `switchyard tenant
    /// test` moves it forward with `advance` steps so timers and `now` see the scenario's time.
    clock_offset: Arc<std::sync::atomic::AtomicI64>,
    /// Decision tables whose rows are entities, compiled per change of their rows.
    data_tables: decisions::DataTableCache,
}

/// How many commit signals a slow subscriber may fall behind before it is told it lagged.
const COMMIT_SIGNALS: usize = 1024;

/// How long a tenant's live version is trusted before it is read again (a newly published
/// version's permissions apply within this time in every server process).
pub const LIVE_VERSION_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long an idempotency record answers for its key unless the caller says otherwise
/// ([`Store::with_idempotency_ttl`]).
pub const DEFAULT_IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    pub fn new(pool: PgPool, limits: Limits) -> Store {
        let limits = Arc::new(limits);
        let (commits, _) = tokio::sync::broadcast::channel(COMMIT_SIGNALS);
        Store {
            shelf: tx::Shelf::new(&pool),
            pool,
            defs: DefinitionCache::new(limits.clone()),
            limits,
            live: Arc::default(),
            commits,
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            offload: Arc::default(),
            clock_offset: Arc::default(),
            data_tables: decisions::DataTableCache::default(),
        }
    }

    /// The time of a transaction: the wall clock (plus the test clock's offset) at the precision
    /// Postgres stores (microseconds), so `now` in a script equals the `at` of the history row
    /// and of any timestamp it is written to.
    pub fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        let offset = self.clock_offset.load(std::sync::atomic::Ordering::Relaxed);
        (Utc::now() + chrono::Duration::microseconds(offset)).trunc_subsecs(6)
    }

    /// Moves this store's clock (and its clones') to `offset` after the wall clock. For package
    /// tests (`advance` steps); a server never calls it.
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        let micros = offset.num_microseconds().unwrap_or(i64::MAX);
        self.clock_offset.store(micros, std::sync::atomic::Ordering::Relaxed);
    }

    /// Where this store (and its callers: templates, the rules playground, package compiles)
    /// evaluates slow tenant code: off the reactor, on bounded slots with a per-tenant share.
    pub fn offload(&self) -> &crate::offload::Offload {
        &self.offload
    }

    /// This store with another retention of idempotency records (default
    /// [`DEFAULT_IDEMPOTENCY_TTL`]). A record at least `ttl` old (by the database's clock) is
    /// treated as absent: the same key may be used again, for any request, which then executes
    /// and replaces the record. Whether a purge (`purge_expired_idempotency`, see
    /// `migrations/0010_idempotency_expiry.sql`) has deleted it yet makes no difference.
    pub fn with_idempotency_ttl(mut self, ttl: std::time::Duration) -> Store {
        self.idempotency_ttl = ttl;
        self
    }

    /// How long an idempotency record answers for its key.
    pub fn idempotency_ttl(&self) -> std::time::Duration {
        self.idempotency_ttl
    }

    /// The tenants of this process's committed writes (transitions, creations, edits, deletions,
    /// fired timers), one message per committed transaction, sent right after its commit. The
    /// outbox relay of `api::workers` wakes on them; `RecvError::Lagged` means some were missed
    /// (look at every tenant).
    pub fn subscribe_commits(&self) -> tokio::sync::broadcast::Receiver<TenantId> {
        self.commits.subscribe()
    }

    /// Says that a transaction of `tenant` which may have written outbox rows has committed.
    /// The store calls it after its own commits; a caller committing its own transaction
    /// around [`Store::create_entity_in`] may call it too (otherwise the relay finds the rows
    /// when it next polls).
    pub fn outbox_committed(&self, tenant: TenantId) {
        // No subscriber (no workers in this process) is not an error.
        let _ = self.commits.send(tenant);
    }

    /// Commits a transaction that may have written outbox rows, then says so
    /// ([`Store::outbox_committed`]).
    pub(crate) async fn commit_writes(&self, tx: Tx, tenant: TenantId) -> Result<(), StoreError> {
        // Lost while committing: applied or not, nobody knows; never run again.
        tx.commit().await.map_err(|e| match conn::note(&e) {
            true => StoreError::CommitLost(e),
            false => StoreError::from(e),
        })?;
        self.outbox_committed(tenant);
        Ok(())
    }

    /// The live version's definitions, through the short-lived live-version cache (permission
    /// checks, display titles).
    pub async fn live_cached(&self, tenant: TenantId) -> Result<Arc<CompiledTenant>, StoreError> {
        if let Some(defs) = self.live_fresh(tenant) {
            return Ok(defs);
        }
        let (version, defs) = self.live_definitions(tenant).await?;
        self.remember_live(tenant, version);
        Ok(defs)
    }

    /// [`Store::live_cached`] inside a transaction: when the cache is stale, the live version is
    /// read in `tx`, never on a second connection. Work that holds a connection must not wait for
    /// another: with every pooled connection held by transitions whose cache expired at once,
    /// each waited for a connection none would give back (a test saw a 30 s stall).
    pub(crate) async fn live_cached_in(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
    ) -> Result<Arc<CompiledTenant>, StoreError> {
        if let Some(defs) = self.live_fresh(tenant) {
            return Ok(defs);
        }
        let (version, defs) = self.live_in(tx, tenant).await?;
        self.remember_live(tenant, version);
        Ok(defs)
    }

    /// The live version's definitions if read less than [`LIVE_VERSION_TTL`] ago.
    fn live_fresh(&self, tenant: TenantId) -> Option<Arc<CompiledTenant>> {
        let (version, at) = self.live.read().ok().and_then(|m| m.get(&tenant).copied())?;
        if at.elapsed() < LIVE_VERSION_TTL {
            self.defs.peek(tenant, version)
        } else {
            None
        }
    }

    fn remember_live(&self, tenant: TenantId, version: i64) {
        if let Ok(mut m) = self.live.write() {
            m.insert(tenant, (version, std::time::Instant::now()));
        }
    }

    /// Whether the actor may do `action` to entities of `type_name`, by the live version's
    /// permissions: without `view`, the type (or, `on_entity`, the entity) is not found.
    pub async fn authorize(
        &self,
        tenant: TenantId,
        actor: &Actor,
        type_name: &str,
        action: Action,
        on_entity: bool,
    ) -> Result<(), StoreError> {
        let defs = self.live_cached(tenant).await?;
        edit::authorize(&defs, actor, type_name, action, on_entity)
    }

    /// [`Store::authorize`], and then, for one entity, whether the actor sees it by the live
    /// version's record rules: an entity outside them does not exist for the actor (404, as an
    /// unknown id).
    pub async fn authorize_entity(
        &self,
        tenant: TenantId,
        actor: &Actor,
        type_name: &str,
        id: Uuid,
        action: Action,
    ) -> Result<(), StoreError> {
        let defs = self.live_cached(tenant).await?;
        edit::authorize(&defs, actor, type_name, action, true)?;
        let scope = defs.row_scope(actor, type_name);
        if scope.is_all() {
            return Ok(());
        }
        let mut tx = self.begin(tenant).await?;
        let seen = query::rows::visible_ids(&mut tx, tenant, type_name, &[id], &scope, actor).await?;
        tx.commit().await?;
        if seen.contains(&id) {
            Ok(())
        } else {
            Err(StoreError::EntityNotFound)
        }
    }

    /// Which of `ids` (entities of `type_name`) the actor sees by the live version's record
    /// rules; `None` when the actor sees every entity of the type (no rule applies).
    pub async fn visible_ids(
        &self,
        tenant: TenantId,
        actor: &Actor,
        type_name: &str,
        ids: &[Uuid],
    ) -> Result<Option<std::collections::HashSet<Uuid>>, StoreError> {
        let defs = self.live_cached(tenant).await?;
        let scope = defs.row_scope(actor, type_name);
        if scope.is_all() {
            return Ok(None);
        }
        let mut tx = self.begin(tenant).await?;
        let seen = query::rows::visible_ids(&mut tx, tenant, type_name, ids, &scope, actor).await?;
        tx.commit().await?;
        Ok(Some(seen))
    }

    /// Whether the actor sees entity `id` by the live version's record rules, read in `tx` (a
    /// transition checks it on the row it has locked). No statement when no rule applies.
    pub(crate) async fn sees(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        actor: &Actor,
        type_name: &str,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        if actor.system {
            return Ok(true);
        }
        let defs = self.live_cached_in(tx, tenant).await?;
        let scope = defs.row_scope(actor, type_name);
        if scope.is_all() {
            return Ok(true);
        }
        Ok(query::rows::visible_ids(tx, tenant, type_name, &[id], &scope, actor).await?.contains(&id))
    }

    /// Changes data fields of an entity (a JSON merge patch), within what the actor may edit in
    /// its current state. Writes an `edit` history row and a `<type>.updated` event.
    pub async fn patch_entity(
        &self,
        tenant: TenantId,
        target: (&str, Uuid),
        patch: serde_json::Map<String, Value>,
        actor: &Actor,
        if_match: Option<i64>,
    ) -> Result<Entity, StoreError> {
        let out = edit::patch(self, tenant, target.0, target.1, patch, actor, if_match).await;
        self.explained(out).await
    }

    /// `result` with a [`StoreError::Unique`] naming its type and fields (looked up by the name
    /// of the index the database reported).
    async fn explained<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match result {
            Err(StoreError::Unique { index, type_name, fields }) if fields.is_empty() => {
                match sql::unique_index_fields(&self.pool, &index).await {
                    Ok(Some((type_name, fields))) => Err(StoreError::Unique { index, type_name, fields }),
                    Ok(None) => Err(StoreError::Unique { index, type_name, fields }),
                    Err(e) => {
                        tracing::warn!(error = %e, index, "could not read which fields a unique index covers");
                        Err(StoreError::Unique { index, type_name, fields })
                    }
                }
            }
            other => other,
        }
    }

    /// Deletes an entity (its history stays, ending with a `delete` row).
    pub async fn delete_entity(
        &self,
        tenant: TenantId,
        type_name: &str,
        id: Uuid,
        actor: &Actor,
        if_match: Option<i64>,
    ) -> Result<(), StoreError> {
        edit::delete(self, tenant, type_name, id, actor, if_match).await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Opens a transaction with the tenant set for row-level security.
    /// A connection found dead at `BEGIN` (the database restarted, the connection was
    /// terminated) is retired and the transaction opened on another ([`conn::retry_dead`]):
    /// nothing had been done on it.
    /// When the database cannot be reached, the error says so ([`StoreError::Unreachable`]):
    /// nothing was done.
    pub async fn begin(&self, tenant: TenantId) -> Result<Tx, StoreError> {
        conn::retry_dead(|| self.shelf.begin(sql::begin_for(tenant))).await.map_err(StoreError::unreachable)
    }

    /// Begins a transaction of `tenant` and locks the entity `type_name`/`id` in it (`None`:
    /// there is none), in one round trip where [`Store::begin`] and [`sql::get_typed`] take two
    /// ([`sql::begin_and_lock`]); the two when the type name is not a type name's shape.
    pub async fn begin_locked(
        &self,
        tenant: TenantId,
        type_name: &str,
        id: Uuid,
    ) -> Result<(Tx, Option<sql::StoredEntity>), StoreError> {
        let Some(statements) = sql::begin_and_lock(tenant, type_name, id) else {
            let mut tx = self.begin(tenant).await?;
            let found = sql::get_typed(&mut tx, tenant, type_name, id, true).await?;
            return Ok((tx, found));
        };
        let prepare = sql::prepare_transition_statements();
        let (tx, rows) = conn::retry_dead(|| self.shelf.begin_fetching(statements.clone(), prepare))
            .await
            .map_err(StoreError::unreachable)?;
        let found = rows.first().map(sql::entity_from_row).transpose()?;
        Ok((tx, found))
    }

    /// Begins a transaction that sets no tenant (it sees no tenant's rows: finding a tenant by
    /// its slug, claiming a due timer of any tenant before setting its tenant).
    pub(crate) async fn begin_untenanted(&self) -> Result<Tx, StoreError> {
        conn::retry_dead(|| self.shelf.begin("begin")).await.map_err(StoreError::unreachable)
    }

    /// How many connections wait on this store's shelf for the next transaction ([`tx`]): idle,
    /// though the pool counts them as handed out.
    pub fn parked_connections(&self) -> usize {
        self.shelf.len()
    }

    /// Finds a tenant's id by its slug (login, CLI, the demo).
    pub async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<TenantId>, StoreError> {
        let mut tx = self.begin_untenanted().await?;
        let id = sql::tenant_by_slug(&mut tx, slug).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The compiled definitions of a tenant's live version.
    pub async fn live_definitions(&self, tenant: TenantId) -> Result<(i64, Arc<CompiledTenant>), StoreError> {
        let mut tx = self.begin(tenant).await?;
        let version = sql::live_version(&mut tx, tenant).await?.ok_or(StoreError::NoLiveVersion)?;
        let defs = self.defs.get(&mut tx, tenant, version).await?;
        tx.commit().await?;
        Ok((version, defs))
    }

    /// The live version's definitions with its decision tables whose rows are entities, read
    /// (or taken from this server's cache, checked against the rows' stamp) in one transaction:
    /// for evaluating a table outside a transition (the admins' playground).
    pub async fn live_decisions(
        &self,
        tenant: TenantId,
    ) -> Result<(Arc<CompiledTenant>, Arc<crate::decision::DataTables>), StoreError> {
        let mut tx = self.begin(tenant).await?;
        let version = sql::live_version(&mut tx, tenant).await?.ok_or(StoreError::NoLiveVersion)?;
        let defs = self.defs.get(&mut tx, tenant, version).await?;
        let data = self.data_tables.tables(&mut tx, tenant, version, &defs).await?;
        tx.commit().await?;
        Ok((defs, data))
    }

    /// Creates an entity of `type_name` in the live version's initial state (or `opts.state`).
    pub async fn create_entity(
        &self,
        tenant: TenantId,
        type_name: &str,
        data: Value,
        actor: &Actor,
        opts: CreateOptions,
    ) -> Result<Entity, StoreError> {
        Ok(self.create_entity_once(tenant, type_name, data, actor, opts, None).await?.0)
    }

    /// Creates an entity; with an `Idempotency-Key`, once: the key's first request creates it and
    /// its answer is kept (`SWITCHYARD_IDEMPOTENCY_TTL`, with the transitions' keys of the same
    /// actor), the same request again gets that answer and `true` (nothing created), another
    /// request with the key is refused ([`StoreError::IdempotencyKeyReused`]). A second request
    /// with the key while the first runs waits for it.
    pub async fn create_entity_once(
        &self,
        tenant: TenantId,
        type_name: &str,
        data: Value,
        actor: &Actor,
        opts: CreateOptions,
        key: Option<&str>,
    ) -> Result<(Entity, bool), StoreError> {
        let hash = key.map(|_| exec::create_hash(type_name, &data, opts.input.as_ref()));
        let create = async |data: Value, opts: CreateOptions| {
            let mut tx = self.begin(tenant).await?;
            if let (Some(key), Some(hash)) = (key, &hash) {
                sql::lock_idempotency_key(&mut tx, tenant, &actor.id, key).await?;
                if let Some((stored, _status, response)) =
                    sql::get_idempotency(&mut tx, tenant, &actor.id, key, self.idempotency_ttl).await?
                {
                    if &stored != hash {
                        return Err(StoreError::IdempotencyKeyReused);
                    }
                    tx.commit().await?;
                    let entity: Entity =
                        serde_json::from_value(response).map_err(|e| StoreError::Definitions(e.to_string()))?;
                    return Ok((entity, true));
                }
            }
            let entity = exec::create(self, &mut tx, tenant, type_name, data, actor, opts).await?;
            if let (Some(key), Some(hash)) = (key, &hash) {
                let response = serde_json::to_value(&entity).map_err(|e| StoreError::Definitions(e.to_string()))?;
                let record = sql::IdempotencyRecord { request_hash: hash, status: 201, response: &response };
                sql::put_idempotency(&mut tx, tenant, &actor.id, key, record, self.idempotency_ttl).await?;
            }
            self.commit_writes(tx, tenant).await?;
            Ok((entity, false))
        };
        // Run again, like a transition, when the connection died before the commit.
        let mut attempt = 1;
        let created = loop {
            let out = create(data.clone(), opts.clone()).await;
            match &out {
                Err(StoreError::Db(e)) if attempt < conn::ATTEMPTS && conn::is_dead_connection(e) => attempt += 1,
                _ => break out,
            }
        };
        self.explained(created).await
    }

    pub async fn create_entity_in(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        type_name: &str,
        data: Value,
        actor: &Actor,
        opts: CreateOptions,
    ) -> Result<Entity, StoreError> {
        let out = exec::create(self, tx, tenant, type_name, data, actor, opts).await;
        self.explained(out).await
    }

    pub async fn get_entity(&self, tenant: TenantId, type_name: &str, id: Uuid) -> Result<Entity, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let entity = sql::get_typed(&mut tx, tenant, type_name, id, false)
            .await?
            .map(|s| s.entity)
            .ok_or(StoreError::EntityNotFound)?;
        tx.commit().await?;
        Ok(entity)
    }

    /// A page of a list query: filters, search, sort and cursor of `request` parsed against the
    /// live definitions of `type_name` (see [`query`]).
    /// A page of a list of `type_name`, of the rows `actor` may see (its roles' record rules).
    pub async fn query(
        &self,
        tenant: TenantId,
        actor: &Actor,
        type_name: &str,
        request: &ListRequest,
    ) -> Result<ListPage, StoreError> {
        query::run(self, tenant, actor, type_name, request).await
    }

    pub async fn history(&self, tenant: TenantId, type_name: &str, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        sql::get_typed(&mut tx, tenant, type_name, id, false).await?.ok_or(StoreError::EntityNotFound)?;
        let rows = sql::history(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Executes a transition: see the module documentation.
    pub async fn transition(
        &self,
        tenant: TenantId,
        request: TransitionRequest<'_>,
        actor: &Actor,
        opts: TransitionOptions,
    ) -> Result<TransitionOutcome, StoreError> {
        // A connection that died before the commit rolled everything back: the transition is
        // run again on a new one (`conn`), as the client would, without it seeing the failure.
        let mut attempt = 1;
        let out = loop {
            let out = exec::transition(self, tenant, request.clone(), actor, opts.clone()).await;
            match &out {
                Err(StoreError::Db(e)) if attempt < conn::ATTEMPTS && conn::is_dead_connection(e) => attempt += 1,
                _ => break out,
            }
        };
        self.explained(out).await
    }

    /// What the transition would do, without doing it: evaluated and written like
    /// [`Store::transition`] (follow-ups, creates, events, timers), reported, then rolled back.
    /// With [`DryRunDefinitions::Given`], the entity and its follow-ups are evaluated with those
    /// definitions (a draft package) instead of their pinned versions. A refusal by the
    /// definitions is the report's `rejection`, not an error. No idempotency key, no commit
    /// signal: nothing is left behind.
    pub async fn dry_run(
        &self,
        tenant: TenantId,
        request: TransitionRequest<'_>,
        actor: &Actor,
        definitions: DryRunDefinitions,
    ) -> Result<DryRun, StoreError> {
        let out = exec::dry_run(self, tenant, request, actor, definitions).await;
        self.explained(out).await
    }

    /// What this actor can do now from the entity's current state, and why not.
    pub async fn available_transitions(
        &self,
        tenant: TenantId,
        type_name: &str,
        id: Uuid,
        actor: &Actor,
    ) -> Result<Vec<TransitionInfo>, StoreError> {
        exec::available(self, tenant, type_name, id, actor).await
    }

    /// A page of the actor's inbox: the entities on which it can fire a transition now (see
    /// [`inbox`]).
    pub async fn inbox(
        &self,
        tenant: TenantId,
        actor: &Actor,
        request: &InboxRequest,
    ) -> Result<InboxPage, StoreError> {
        inbox::page(self, tenant, actor, request).await
    }

    /// Fires up to `limit` due state timers of any tenant, each in its own transaction, as the
    /// system actor ([`timer_actor`]). Safe to call from several processes at once: each timer
    /// is claimed by one (`FOR UPDATE SKIP LOCKED`). Returns how many timers were settled:
    /// fired, refused by their transition (outcome = the rejection code, e.g. `GUARD_FAILED`),
    /// or cancelled. A timer whose entity is locked by a request is left for a later call.
    pub async fn fire_due_timers(&self, limit: i64) -> Result<usize, StoreError> {
        timers::fire_due(self, self.now(), limit).await
    }

    /// [`Store::fire_due_timers`] with the clock given: fires timers due at `now`, and `now` is
    /// the time of the transitions it fires (tests, catching up).
    pub async fn fire_due_timers_at(&self, now: DateTime<Utc>, limit: i64) -> Result<usize, StoreError> {
        timers::fire_due(self, now, limit).await
    }

    /// An entity's timers (pending and settled), oldest first.
    pub async fn entity_timers(&self, tenant: TenantId, entity_id: Uuid) -> Result<Vec<TimerInfo>, StoreError> {
        timers::of_entity(self, tenant, entity_id).await
    }

    async fn live_in(&self, tx: &mut PgConnection, tenant: TenantId) -> Result<(i64, Arc<CompiledTenant>), StoreError> {
        let version = sql::live_version(tx, tenant).await?.ok_or(StoreError::NoLiveVersion)?;
        let defs = self.defs.get(tx, tenant, version).await?;
        Ok((version, defs))
    }
}

/// The public JSON form of an entity with its `display` title, rendered by its type's `title`
/// template in `defs` (see [`add_display`]).
pub fn entity_json_titled(e: &Entity, defs: &CompiledTenant) -> Value {
    let mut v = entity_json(e);
    add_display(&mut v, defs);
    v
}

/// Adds `display` to an entity's public JSON form (`{"type", "data", …}`): its type's `title`
/// template in `defs` rendered over its data (bounded: `ontology::template`). Left out when the
/// type has no title template, the title renders blank (a number not assigned yet), or the
/// render fails (a failed title is logged, never an error of the request that wanted it).
pub fn add_display(v: &mut Value, defs: &CompiledTenant) {
    let Some(ty) = v.get("type").and_then(Value::as_str).and_then(|t| defs.type_(t)) else { return };
    let Some(data) = v.get("data") else { return };
    let title = match ty.render_title(data) {
        Ok(title) => title,
        Err(e) => {
            tracing::debug!(error = %e, "display title not rendered");
            None
        }
    };
    if let (Some(title), Some(obj)) = (title, v.as_object_mut()) {
        obj.insert("display".into(), Value::String(title));
    }
}

/// The most users [`Store::add_users`] names in one answer (a page of 500 entities with a user
/// field or two each stays far below it); ids beyond it are left without a name.
pub const MAX_NAMED_USERS: usize = 2000;

impl Store {
    /// Adds `users` to entities' public JSON forms (`{"type", "data", …}`, of types in `defs`):
    /// for each user id the entity's user fields hold, `{ "name", "email" }` of that user (active
    /// or not), so a client shows the driver by name without reading the users list, which
    /// non-admins cannot. An id that names no user is left out. One statement for all the
    /// entities, none when their types have no user field.
    pub async fn add_users(
        &self,
        tenant: TenantId,
        values: &mut [Value],
        defs: &CompiledTenant,
    ) -> Result<(), StoreError> {
        let per_entity: Vec<std::collections::BTreeSet<Uuid>> = values
            .iter()
            .map(|v| {
                let ty = v.get("type").and_then(Value::as_str).and_then(|t| defs.type_(t));
                match (ty, v.get("data")) {
                    (Some(ty), Some(data)) if !ty.user_fields().is_empty() => refs::user_ids(ty, data),
                    _ => Default::default(),
                }
            })
            .collect();
        let all: std::collections::BTreeSet<Uuid> = per_entity.iter().flatten().copied().collect();
        if all.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = all.into_iter().take(MAX_NAMED_USERS).collect();
        let mut tx = self.begin(tenant).await?;
        let users = sql::users_by_ids(&mut tx, tenant, &ids, false).await?;
        tx.commit().await?;
        let by_id: std::collections::HashMap<Uuid, &sql::UserRow> = users.iter().map(|u| (u.id, u)).collect();
        for (v, ids) in values.iter_mut().zip(per_entity) {
            if ids.is_empty() {
                continue;
            }
            let named: serde_json::Map<String, Value> = ids
                .iter()
                .filter_map(|id| by_id.get(id))
                .map(|u| (u.id.to_string(), serde_json::json!({ "name": u.name, "email": u.email })))
                .collect();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("users".into(), Value::Object(named));
            }
        }
        Ok(())
    }

    /// The choices of a user field: the active users of the tenant having `role` (any role when
    /// `None`), ordered by name, at most `limit`.
    pub async fn user_choices(
        &self,
        tenant: TenantId,
        role: Option<&str>,
        limit: i64,
    ) -> Result<Vec<sql::UserRow>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let users = sql::user_choices(&mut tx, tenant, role, limit).await?;
        tx.commit().await?;
        Ok(users)
    }
}

/// The public JSON form of an entity.
pub fn entity_json(e: &Entity) -> Value {
    // Built by hand: `json!` would copy the data by serializing it. The timestamps as their
    // serde form (RFC 3339), as before.
    let time = |t: &DateTime<Utc>| serde_json::to_value(t).unwrap_or(Value::Null);
    let mut map = serde_json::Map::with_capacity(10);
    map.insert("id".into(), Value::String(e.id.to_string()));
    map.insert("type".into(), Value::String(e.type_name.clone()));
    map.insert("state".into(), Value::String(e.state.clone()));
    map.insert("version".into(), Value::from(e.version));
    map.insert("data".into(), e.data.clone());
    map.insert("created_at".into(), time(&e.created_at));
    map.insert("updated_at".into(), time(&e.updated_at));
    map.insert("created_by".into(), Value::String(e.created_by.clone()));
    map.insert("updated_by".into(), Value::String(e.updated_by.clone()));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The public form built by hand is the one `json!` built: same keys, same order, the
    /// timestamps in their serde form (to the microsecond).
    #[test]
    fn the_public_json_of_an_entity_is_its_serde_form() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z").expect("valid").with_timezone(&Utc);
        let mut e = crate::model::test_order(Uuid::from_u128(0x1234), json!({"b": 1, "a": [1.5, "x"], "n": null}), at);
        e.updated_at = at + chrono::Duration::seconds(1);
        let expected = json!({
            "id": e.id,
            "type": e.type_name,
            "state": e.state,
            "version": e.version,
            "data": e.data,
            "created_at": e.created_at,
            "updated_at": e.updated_at,
            "created_by": e.created_by,
            "updated_by": e.updated_by,
        });
        let built = entity_json(&e);
        assert_eq!(serde_json::to_string(&built).ok(), serde_json::to_string(&expected).ok());
        assert_eq!(built["created_at"], "2026-01-02T03:04:05.123456Z");
    }
}
