//! Moving in-flight entities to a newer published version.
//!
//! An entity is pinned to the version it was created in (`entities.config_version`), and its
//! transitions run with that version's definitions, so publishing never changes what an entity
//! in flight does. Migrating moves the entities pinned to a version *before* the target onto
//! it:
//!
//! * **Entities in a terminal state stay pinned.** Nothing will happen to them any more, and
//!   their history is best read with the definitions it was written under. They are counted as
//!   `pinned` in the report and never blocked on.
//! * **Append-only entities stay pinned**, forever (`entities.immutable`: their type was
//!   `immutable: true` in their version): moving them would update them, which the database
//!   refuses. A mutable entity moved to a version in which its type is append-only becomes
//!   append-only.
//! * Every other entity's state is mapped through the state map (`OLD=NEW`, or
//!   `type.OLD=NEW` for one type; a state without a mapping keeps its name), the new type's
//!   defaults are filled in for missing fields (as at create), and its data is re-validated
//!   against the new type's schema. It **cannot move** when its type or (mapped) state does not
//!   exist in the target version or its data does not validate; such entities are reported with
//!   every reason and left untouched.
//! * The others move in **one transaction**: the entity row gets the new version, state and data
//!   (its `version` is bumped, so a client holding the old one gets a conflict), and a history
//!   row `transition = 'migrate'` records the from/to state and
//!   `changes: {config_version: {from, to}, <filled field>: {from, to}…}` by the acting user.
//!   Any error rolls every move back; moves that would give two entities the same values of a
//!   unique constraint (the indexes cover every version) are [`MigrateError::Unique`].
//!
//! A dry run does the same reads and decisions and writes nothing.
//!
//! The entities are read [`BATCH`] at a time in id order within that one transaction; a state
//! map entry that names a type or (target) state the target version does not have refuses the
//! whole migration ([`MigrateError::UnknownStates`]) before anything is read. The CPU work
//! (compiling the target, deciding a batch) runs inline for the CLI ([`migrate`]) and off the
//! reactor for the server ([`migrate_offloaded`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use engine::compiled::CompiledTenant;
use engine::def::{StateKind, WorkflowDef};
use engine::limits::Limits;
use engine::offload::{Busy, Offload};
use engine::store::{TenantId, TenantSlug};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::PackageError;
use crate::export::{self, VersionError};

/// What can stop a migration as a whole (entities that cannot move do not).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("version {version} does not compile: {}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid { version: i64, problems: Vec<PackageError> },
    #[error("bad --state-map: {0}")]
    StateMap(String),
    #[error("the state map names what version {version} does not have: {}", problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("; "))]
    UnknownStates { version: i64, problems: Vec<MapProblem> },
    /// Moving the entities would give two of them the same values of a unique constraint (the
    /// target's defaults filled in, say): nothing moved.
    #[error("the migration would give two {type_name} entities the same {}: nothing was moved", fields.join(" and "))]
    Unique { index: String, type_name: String, fields: Vec<String> },
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// A unique constraint's violation as [`MigrateError::Unique`] (its index's comment names the
/// fields); any other error as it is.
fn unique_violation(e: sqlx::Error) -> MigrateError {
    match engine::store::StoreError::from(e) {
        // The index's name only: its fields are read by `named` (this transaction is aborted).
        engine::store::StoreError::Unique { index, .. } => {
            MigrateError::Unique { index, type_name: String::new(), fields: Vec::new() }
        }
        engine::store::StoreError::Db(e) => MigrateError::Db(e),
        other => MigrateError::Db(sqlx::Error::Protocol(other.to_string())),
    }
}

/// `result` with a [`MigrateError::Unique`] naming its type and fields.
async fn named<T>(pool: &PgPool, result: Result<T, MigrateError>) -> Result<T, MigrateError> {
    match result {
        Err(MigrateError::Unique { index, .. }) => {
            let (type_name, fields) =
                engine::store::sql::unique_index_fields(pool, &index).await.ok().flatten().unwrap_or_default();
            Err(MigrateError::Unique { index, type_name, fields })
        }
        other => other,
    }
}

/// One bad entry of a state map: its key (`OLD` or `type.OLD`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapProblem {
    pub key: String,
    pub message: String,
}

/// `OLD=NEW` pairs, optionally for one type (`order.OLD=NEW`, which wins over a plain `OLD=NEW`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateMap {
    rules: Vec<StateRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StateRule {
    type_name: Option<String>,
    from: String,
    to: String,
}

impl StateMap {
    /// Parses `OLD=NEW[,OLD=NEW…]` items (each item may itself hold several, comma-separated).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<StateMap, MigrateError> {
        let mut rules = Vec::new();
        for pair in items.iter().flat_map(|i| i.as_ref().split(',')).map(str::trim).filter(|p| !p.is_empty()) {
            let (from, to) = pair
                .split_once('=')
                .map(|(a, b)| (a.trim(), b.trim()))
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .ok_or_else(|| MigrateError::StateMap(format!("`{pair}` is not OLD=NEW")))?;
            let (type_name, from) = match from.split_once('.') {
                Some((t, s)) if !t.is_empty() && !s.is_empty() => (Some(t.to_string()), s.to_string()),
                _ => (None, from.to_string()),
            };
            let rule = StateRule { type_name, from, to: to.to_string() };
            if rules.iter().any(|r: &StateRule| r.type_name == rule.type_name && r.from == rule.from) {
                return Err(MigrateError::StateMap(format!("`{pair}`: state `{}` is mapped twice", rule.from)));
            }
            rules.push(rule);
        }
        Ok(StateMap { rules })
    }

    /// The JSON form of a state map, `{"OLD": "NEW", "type.OLD": "NEW"}`: each key is what
    /// precedes `=` in [`StateMap::parse`]'s items, with the same meaning (a typed key wins over
    /// a plain one for its type). Names are taken as they are (no trimming); a key or value that
    /// is empty, has an empty type or state part, or holds whitespace, `,` or `=` is a problem.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<StateMap, Vec<MapProblem>> {
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        let bad = |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == ',' || c == '=');
        for (key, to) in entries {
            let (type_name, from) = match key.split_once('.') {
                Some((t, s)) => (Some(t), s),
                None => (None, key),
            };
            let message = if type_name.is_some_and(bad) || bad(from) {
                "a key is `OLD` or `type.OLD`: a state name, optionally after its type and a dot"
            } else if bad(to) {
                "the new state must be a state name"
            } else {
                rules.push(StateRule {
                    type_name: type_name.map(str::to_string),
                    from: from.to_string(),
                    to: to.to_string(),
                });
                continue;
            };
            problems.push(MapProblem { key: key.to_string(), message: message.to_string() });
        }
        if problems.is_empty() {
            Ok(StateMap { rules })
        } else {
            Err(problems)
        }
    }

    /// The entries that name a type, or map to a state, that version `to` (`target`) does not
    /// have. A plain `OLD=NEW` needs `NEW` to be a state of some type.
    pub fn check(&self, target: &CompiledTenant, to: i64) -> Vec<MapProblem> {
        let mut problems = Vec::new();
        for rule in &self.rules {
            let key = match &rule.type_name {
                Some(t) => format!("{t}.{}", rule.from),
                None => rule.from.clone(),
            };
            let message = match &rule.type_name {
                Some(t) => match target.workflow(t) {
                    None => format!("type {t} does not exist in version {to}"),
                    Some(wf) if !wf.has_state(&rule.to) => {
                        format!("{} is not a state of {t} in version {to}", rule.to)
                    }
                    Some(_) => continue,
                },
                None if target
                    .ontology()
                    .names()
                    .any(|t| target.workflow(t).is_some_and(|w| w.has_state(&rule.to))) =>
                {
                    continue
                }
                None => format!("{} is not a state of any type in version {to}", rule.to),
            };
            problems.push(MapProblem { key, message });
        }
        problems
    }

    /// Where `state` of a `type_name` entity goes, if it is mapped.
    pub fn map(&self, type_name: &str, state: &str) -> Option<&str> {
        let typed = self.rules.iter().find(|r| r.type_name.as_deref() == Some(type_name) && r.from == state);
        typed.or_else(|| self.rules.iter().find(|r| r.type_name.is_none() && r.from == state)).map(|r| r.to.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// How to migrate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The version to move entities to.
    pub to: i64,
    pub state_map: StateMap,
    /// Report only; change nothing.
    pub dry_run: bool,
    /// Who migrates (the history rows' actor and the entities' `updated_by`), e.g. `cli`, or a
    /// user's id.
    pub actor: String,
    /// The acting user's email for the history rows (empty: none, as for the CLI).
    pub actor_email: String,
}

/// What happens (or happened) to one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Moved (or would move) to the target version.
    Moved,
    /// Left untouched: see the reasons.
    CannotMove,
    /// In a terminal state: stays on its version.
    Pinned,
}

/// One entity of the report.
#[derive(Debug, Clone, Serialize)]
pub struct EntityMove {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub outcome: Outcome,
    pub from_version: i64,
    pub from_state: String,
    /// The state in the target version (for a moved entity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_state: Option<String>,
    /// Fields the target version's defaults fill in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filled: Vec<String>,
    /// Why it cannot move.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// What a migration did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tenant: String,
    pub to_version: i64,
    pub live_version: Option<i64>,
    pub dry_run: bool,
    pub moved: usize,
    pub cannot_move: usize,
    pub pinned: usize,
    /// Every entity pinned to an earlier version, in id order.
    pub entities: Vec<EntityMove>,
}

impl Report {
    /// The report as text: one line per entity that moves or cannot, then the totals.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Migrating tenant {} to version {}{}.\n",
            self.tenant,
            self.to_version,
            if self.dry_run { " (dry run: nothing is changed)" } else { "" }
        );
        if self.live_version.is_some_and(|l| l != self.to_version) {
            out.push_str(&format!(
                "Note: version {} is not the live version ({}); new entities are still created in the live one.\n",
                self.to_version,
                self.live_version.unwrap_or_default()
            ));
        }
        if self.entities.is_empty() {
            out.push_str(&format!("\nNo entity is pinned to a version before {}.\n", self.to_version));
            return out;
        }
        out.push('\n');
        for e in self.entities.iter().filter(|e| e.outcome != Outcome::Pinned) {
            let title = e.title.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
            let what = match e.outcome {
                Outcome::Moved => {
                    let mut parts = vec![format!("version {} → {}", e.from_version, self.to_version)];
                    match e.to_state.as_deref() {
                        Some(to) if to != e.from_state => parts.push(format!("state {} → {to}", e.from_state)),
                        _ => parts.push(format!("state {}", e.from_state)),
                    }
                    if !e.filled.is_empty() {
                        parts.push(format!("defaults filled: {}", e.filled.join(", ")));
                    }
                    format!("{:<12} {} {}{title}: {}", "moved", e.type_name, e.id, parts.join(", "))
                }
                _ => format!("{:<12} {} {}{title}: {}", "cannot move", e.type_name, e.id, e.reasons.join("; ")),
            };
            out.push_str(&format!("  {what}\n"));
        }
        if self.pinned > 0 {
            let append_only = self
                .entities
                .iter()
                .any(|e| e.outcome == Outcome::Pinned && e.reasons.iter().any(|r| r.ends_with(APPEND_ONLY)));
            out.push_str(&format!(
                "\n{} {} in terminal states{} {} on {} version.\n",
                self.pinned,
                if self.pinned == 1 { "entity" } else { "entities" },
                if append_only { " or of append-only types" } else { "" },
                if self.pinned == 1 { "stays" } else { "stay" },
                if self.pinned == 1 { "its" } else { "their" },
            ));
        }
        let verb = if self.dry_run { "Would move" } else { "Moved" };
        out.push_str(&format!("\n{verb} {} to version {}", plural(self.moved), self.to_version));
        if self.cannot_move > 0 {
            out.push_str(&format!("; {} cannot move (left untouched)", plural(self.cannot_move)));
        }
        out.push_str(".\n");
        out
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 entity".into()
    } else {
        format!("{n} entities")
    }
}

/// The reason of an append-only entity's staying pinned, after its type's name.
const APPEND_ONLY: &str = "entities are append-only";

/// An entity row as the migration reads it.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub id: Uuid,
    pub type_name: String,
    pub state: String,
    pub data: Value,
    pub config_version: i64,
    /// Append-only (never moved).
    pub immutable: bool,
}

/// Decides what happens to one entity (pure). `old` is the workflow of its type in the version
/// it is pinned to; `titles` the titles of the entities its title names by title (`title_of`).
/// Returns the report line and, when it moves, its new data.
pub fn decide(
    entity: &Pinned,
    old: Option<&WorkflowDef>,
    target: &CompiledTenant,
    to: i64,
    map: &StateMap,
    titles: &BTreeMap<String, String>,
) -> (EntityMove, Option<Value>) {
    let mut line = EntityMove {
        id: entity.id,
        type_name: entity.type_name.clone(),
        title: None,
        outcome: Outcome::Moved,
        from_version: entity.config_version,
        from_state: entity.state.clone(),
        to_state: None,
        filled: Vec::new(),
        reasons: Vec::new(),
    };
    let terminal = old.and_then(|w| w.states.get(&entity.state)).is_some_and(|s| s.kind == StateKind::Terminal);
    let ty = target.type_(&entity.type_name);
    line.title = ty.and_then(|t| t.render_title_with(&entity.data, titles).ok().flatten());
    if entity.immutable {
        line.outcome = Outcome::Pinned;
        line.reasons.push(format!("{} {APPEND_ONLY}", entity.type_name));
        return (line, None);
    }
    if terminal {
        line.outcome = Outcome::Pinned;
        line.reasons.push(format!("state {} is terminal", entity.state));
        return (line, None);
    }
    let (Some(ty), Some(workflow)) = (ty, target.workflow(&entity.type_name)) else {
        line.outcome = Outcome::CannotMove;
        line.reasons.push(format!("type {} does not exist in version {to}", entity.type_name));
        return (line, None);
    };
    let mapped = map.map(&entity.type_name, &entity.state);
    let state = mapped.unwrap_or(&entity.state);
    if !workflow.has_state(state) {
        line.reasons.push(match mapped {
            Some(m) => format!(
                "the state map maps {} to {m}, which is not a state of {} in version {to}",
                entity.state, entity.type_name
            ),
            None => format!(
                "state {} does not exist in version {to}: map it to one of that version's states (state map {}=<state>)",
                entity.state, entity.state
            ),
        });
    }
    let mut data = entity.data.clone();
    ty.apply_defaults(&mut data);
    if let Err(errors) = ty.prepare(&mut data) {
        line.reasons.extend(errors.iter().map(|e| format!("data does not validate: /data{}: {}", e.path, e.message)));
    }
    if !line.reasons.is_empty() {
        line.outcome = Outcome::CannotMove;
        return (line, None);
    }
    if let Value::Object(filled) = engine::eval::diff(&entity.data, &data) {
        line.filled = filled.keys().cloned().collect();
    }
    line.to_state = Some(state.to_string());
    (line, Some(data))
}

/// Entities read, decided and written per round trip (see [`migrate`]).
pub const BATCH: i64 = 500;

/// Migrates the tenant `slug` (see the module documentation), doing the CPU work (compiling
/// the target version, deciding each batch) inline: for the CLI, which has the process to
/// itself. A server uses [`migrate_offloaded`].
pub async fn migrate(
    pool: &PgPool,
    slug: &TenantSlug,
    opts: &Options,
    limits: &Limits,
) -> Result<Report, MigrateError> {
    named(pool, run(pool, slug, opts, limits, None).await).await
}

/// [`migrate`] with its CPU work on `offload`'s slots, within the tenant's share
/// ([`engine::offload`]), so a large migration never holds a reactor thread: only the database
/// round trips are awaited on it. A slot not had in time is [`MigrateError::Busy`].
pub async fn migrate_offloaded(
    pool: &PgPool,
    slug: &TenantSlug,
    opts: &Options,
    limits: &Limits,
    offload: &Offload,
) -> Result<Report, MigrateError> {
    named(pool, run(pool, slug, opts, limits, Some(offload)).await).await
}

/// Runs `work` on `offload` (inline without one).
async fn cpu<T: Send + 'static>(
    offload: Option<&Offload>,
    tenant: TenantId,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, MigrateError> {
    match offload {
        Some(offload) => Ok(offload.spawn(tenant, work).await?),
        None => Ok(work()),
    }
}

/// The workflows of earlier versions, by (version, type): what tells a terminal state.
type OldWorkflows = HashMap<(i64, String), WorkflowDef>;

/// One transaction; the entities pinned before `opts.to` are read in id order, [`BATCH`] at a
/// time (locked until the commit when not dry), decided off the reactor, and the moves of a
/// batch written in two statements.
async fn run(
    pool: &PgPool,
    slug: &TenantSlug,
    opts: &Options,
    limits: &Limits,
    offload: Option<&Offload>,
) -> Result<Report, MigrateError> {
    let mut tx = pool.begin().await?;
    let tenant =
        export::tenant_id_in(&mut tx, slug).await?.ok_or_else(|| VersionError::NoSuchTenant(slug.to_string()))?;
    let target = export::version_in(&mut tx, tenant, Some(opts.to))
        .await?
        .ok_or_else(|| VersionError::NoSuchVersion { slug: slug.to_string(), version: opts.to })?;
    let live_version: Option<i64> =
        sqlx::query_scalar("select live_version from tenants where id = $1").bind(tenant).fetch_one(&mut *tx).await?;
    let (to, limits_owned) = (opts.to, limits.clone());
    let compiled = cpu(offload, tenant, move || -> Result<CompiledTenant, MigrateError> {
        let package = target.package().map_err(VersionError::from)?;
        crate::compile::compile(&package, &limits_owned)
            .map_err(|problems| MigrateError::Invalid { version: to, problems })
    })
    .await??;
    let problems = opts.state_map.check(&compiled, opts.to);
    if !problems.is_empty() {
        return Err(MigrateError::UnknownStates { version: opts.to, problems });
    }
    let compiled = Arc::new(compiled);
    let map = Arc::new(opts.state_map.clone());

    let now = Utc::now();
    let mut report = Report {
        tenant: slug.to_string(),
        to_version: opts.to,
        live_version,
        dry_run: opts.dry_run,
        moved: 0,
        cannot_move: 0,
        pinned: 0,
        entities: Vec::new(),
    };
    let mut workflows = OldWorkflows::new();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut after: Option<Uuid> = None;
    loop {
        let batch = pinned_batch(&mut tx, tenant, opts.to, after, !opts.dry_run).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id);
        let full = batch.len() as i64 == BATCH;
        // The workflows of versions this batch is pinned to that earlier batches were not.
        let mut missing: Vec<i64> = batch.iter().map(|e| e.config_version).filter(|v| !seen.contains(v)).collect();
        missing.sort_unstable();
        missing.dedup();
        seen.extend(&missing);
        let old_types = if missing.is_empty() { Vec::new() } else { version_types(&mut tx, tenant, &missing).await? };
        let titles = reference_titles(&mut tx, tenant, &compiled, &batch).await?;

        let (compiled, map) = (compiled.clone(), map.clone());
        let (known, decided) = cpu(offload, tenant, move || {
            let mut workflows = workflows;
            add_workflows(&mut workflows, old_types);
            let decided: Vec<(Pinned, EntityMove, Option<Value>)> = batch
                .into_iter()
                .map(|e| {
                    let old = workflows.get(&(e.config_version, e.type_name.clone()));
                    let (line, data) = decide(&e, old, &compiled, to, &map, &titles);
                    (e, line, data)
                })
                .collect();
            (workflows, decided)
        })
        .await?;
        workflows = known;

        let mut moves = Moves::default();
        for (entity, line, data) in decided {
            match line.outcome {
                Outcome::Moved => report.moved += 1,
                Outcome::CannotMove => report.cannot_move += 1,
                Outcome::Pinned => report.pinned += 1,
            }
            if let (Some(data), Some(state)) = (data, line.to_state.as_deref()) {
                moves.push(&entity, state, data, opts.to);
            }
            report.entities.push(line);
        }
        if !opts.dry_run && !moves.ids.is_empty() {
            moves.write(&mut tx, tenant, opts, now).await.map_err(unique_violation)?;
        }
        if !full {
            break;
        }
    }
    if opts.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
        tracing::info!(
            tenant.slug = slug.as_str(),
            to = opts.to,
            moved = report.moved,
            cannot_move = report.cannot_move,
            "migrated"
        );
    }
    Ok(report)
}

/// The titles (in `target`'s definitions) of the entities the titles of `batch` name by title
/// (`title_of`), by id: the report names "Stock of SKU-1 Soda in WH-N North", not two ids.
async fn reference_titles(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    target: &CompiledTenant,
    batch: &[Pinned],
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let ids: BTreeSet<Uuid> = batch
        .iter()
        .filter_map(|e| target.type_(&e.type_name).map(|t| (e, t)))
        .flat_map(|(e, t)| t.title_references().iter().filter_map(|r| e.data.get(&r.path)?.as_str()?.parse().ok()))
        .collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<Uuid> = ids.into_iter().collect();
    let rows: Vec<(Uuid, String, Value)> =
        sqlx::query_as("select id, type, data from entities where tenant_id = $1 and id = any($2)")
            .bind(tenant)
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, type_name, data)| {
            let title = target.type_(&type_name)?.render_title(&data).ok()??;
            Some((id.to_string(), title))
        })
        .collect())
}

/// The next [`BATCH`] entities of the tenant pinned before `to`, after `after` in id order
/// (locked until the transaction ends when `lock`).
async fn pinned_batch(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    to: i64,
    after: Option<Uuid>,
    lock: bool,
) -> Result<Vec<Pinned>, sqlx::Error> {
    let lock = if lock { " for update" } else { "" };
    let rows = sqlx::query(&format!(
        "select id, type, state, data, config_version, immutable from entities \
         where tenant_id = $1 and config_version < $2 and ($3::uuid is null or id > $3) order by id limit $4{lock}"
    ))
    .bind(tenant)
    .bind(to)
    .bind(after)
    .bind(BATCH)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Pinned {
                id: r.try_get("id")?,
                type_name: r.try_get("type")?,
                state: r.try_get("state")?,
                data: r.try_get("data")?,
                config_version: r.try_get("config_version")?,
                immutable: r.try_get("immutable")?,
            })
        })
        .collect()
}

/// The `types` of these versions of the tenant's package.
async fn version_types(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    versions: &[i64],
) -> Result<Vec<(i64, Value)>, sqlx::Error> {
    sqlx::query_as("select version, package -> 'types' from config_versions where tenant_id = $1 and version = any($2)")
        .bind(tenant)
        .bind(versions)
        .fetch_all(&mut **tx)
        .await
}

fn add_workflows(workflows: &mut OldWorkflows, old_types: Vec<(i64, Value)>) {
    for (version, types) in old_types {
        for t in types.as_array().into_iter().flatten() {
            let Some(name) = t.get("name").and_then(Value::as_str) else { continue };
            if let Ok(wf) = WorkflowDef::parse(name, t.get("workflow")) {
                workflows.insert((version, name.to_string()), wf);
            }
        }
    }
}

/// The moves of one batch, as the columns of the two statements that write them.
#[derive(Default)]
struct Moves {
    ids: Vec<Uuid>,
    types: Vec<String>,
    from_states: Vec<String>,
    to_states: Vec<String>,
    data: Vec<Value>,
    changes: Vec<Value>,
}

impl Moves {
    fn push(&mut self, entity: &Pinned, state: &str, data: Value, to: i64) {
        let mut changes = match engine::eval::diff(&entity.data, &data) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        changes.insert("config_version".into(), json!({ "from": entity.config_version, "to": to }));
        self.ids.push(entity.id);
        self.types.push(entity.type_name.clone());
        self.from_states.push(entity.state.clone());
        self.to_states.push(state.to_string());
        self.data.push(data);
        self.changes.push(Value::Object(changes));
    }

    /// The entity rows get the new version, state and data (and a new `version`); each gets a
    /// `migrate` history row by the acting user.
    async fn write(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        tenant: TenantId,
        opts: &Options,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "update entities e set state = m.state, data = m.data, config_version = $2, version = e.version + 1, \
             updated_at = $3, updated_by = $4 \
             from unnest($5::uuid[], $6::text[], $7::jsonb[]) as m(id, state, data) \
             where e.tenant_id = $1 and e.id = m.id",
        )
        .bind(tenant)
        .bind(opts.to)
        .bind(now)
        .bind(&opts.actor)
        .bind(&self.ids)
        .bind(&self.to_states)
        .bind(&self.data)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "insert into transitions (tenant_id, entity_id, entity_type, transition, from_state, to_state, \
             actor_id, actor_email, at, input, changes, config_version) \
             select $1, m.id, m.type, 'migrate', m.from_state, m.to_state, $2, $3, $4, '{}', m.changes, $5 \
             from unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::jsonb[]) \
                  with ordinality as m(id, type, from_state, to_state, changes, n) \
             order by m.n",
        )
        .bind(tenant)
        .bind(&opts.actor)
        .bind(&opts.actor_email)
        .bind(now)
        .bind(opts.to)
        .bind(&self.ids)
        .bind(&self.types)
        .bind(&self.from_states)
        .bind(&self.to_states)
        .bind(&self.changes)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn state_maps_parse_and_typed_rules_win() {
        let map = StateMap::parse(&["WAITING=OPEN,order.WAITING=HELD", " X = Y "]).unwrap();
        assert_eq!(map.map("ticket", "WAITING"), Some("OPEN"));
        assert_eq!(map.map("order", "WAITING"), Some("HELD"));
        assert_eq!(map.map("order", "X"), Some("Y"));
        assert_eq!(map.map("order", "OPEN"), None);
        assert!(StateMap::parse(&[""]).unwrap().is_empty());
        assert!(StateMap::parse(&["A"]).is_err());
        assert!(StateMap::parse(&["A="]).is_err());
        assert!(StateMap::parse(&["A=B,A=C"]).is_err());
    }

    #[test]
    fn json_state_maps_read_like_the_cli_and_name_their_bad_keys() {
        let map = StateMap::from_entries([("WAITING", "OPEN"), ("order.WAITING", "HELD")]).unwrap();
        assert_eq!(map, StateMap::parse(&["WAITING=OPEN,order.WAITING=HELD"]).unwrap());
        let bad = StateMap::from_entries([("", "A"), ("A", ""), (".A", "B"), ("t.", "B"), ("A=B", "C"), ("A", "B C")])
            .unwrap_err();
        let keys: Vec<&str> = bad.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["", "A", ".A", "t.", "A=B", "A"]);
    }

    #[test]
    fn a_state_map_naming_what_the_target_lacks_is_refused() {
        let target = compiled(V2);
        let map = StateMap::parse(&["WAITING=OPEN,ticket.X=CLOSED"]).unwrap();
        assert!(map.check(&target, 2).is_empty());
        let map = StateMap::parse(&["WAITING=GONE,ticket.X=NOPE,order.X=OPEN"]).unwrap();
        let problems: Vec<(String, String)> = map.check(&target, 2).into_iter().map(|p| (p.key, p.message)).collect();
        assert_eq!(
            problems,
            [
                ("WAITING".to_string(), "GONE is not a state of any type in version 2".to_string()),
                ("ticket.X".to_string(), "NOPE is not a state of ticket in version 2".to_string()),
                ("order.X".to_string(), "type order does not exist in version 2".to_string()),
            ]
        );
    }

    fn compiled(yaml: &str) -> CompiledTenant {
        let def: ontology::EntityTypeDef = serde_yaml_ng::from_str(yaml).unwrap();
        CompiledTenant::compile(ontology::compile_types(vec![def]).unwrap(), &Limits::default()).unwrap()
    }

    const V1: &str = "
name: ticket
fields: { subject: { type: string }, notes: { type: string } }
workflow:
  states: { NEW: { kind: initial }, WAITING: {}, CLOSED: { kind: terminal } }
  transitions:
    wait: { from: [NEW], to: WAITING, roles: [a] }
    close: { from: [NEW, WAITING], to: CLOSED, roles: [a] }
";

    const V2: &str = "
name: ticket
fields:
  subject: { type: string }
  notes: { type: string, max_length: 5 }
  category: { type: enum, values: [general, billing], default: general, required: true }
workflow:
  states: { NEW: { kind: initial }, OPEN: {}, CLOSED: { kind: terminal } }
  transitions:
    close: { from: [NEW, OPEN], to: CLOSED, roles: [a] }
";

    fn entity(state: &str, data: Value) -> Pinned {
        Pinned {
            id: Uuid::now_v7(),
            type_name: "ticket".into(),
            state: state.into(),
            data,
            config_version: 1,
            immutable: false,
        }
    }

    #[test]
    fn entities_move_are_pinned_or_cannot_move() {
        let old_def: ontology::EntityTypeDef = serde_yaml_ng::from_str(V1).unwrap();
        let old = WorkflowDef::parse("ticket", old_def.workflow.as_ref()).unwrap();
        let target = compiled(V2);
        let none = StateMap::default();
        let map = StateMap::parse(&["WAITING=OPEN"]).unwrap();

        let (line, data) =
            decide(&entity("NEW", json!({ "subject": "a" })), Some(&old), &target, 2, &none, &BTreeMap::new());
        assert_eq!(line.outcome, Outcome::Moved);
        assert_eq!(line.to_state.as_deref(), Some("NEW"));
        assert_eq!(line.filled, ["category"]);
        assert_eq!(data.unwrap(), json!({ "subject": "a", "category": "general" }));

        let (line, _) = decide(
            &entity("CLOSED", json!({ "notes": "far too long" })),
            Some(&old),
            &target,
            2,
            &none,
            &BTreeMap::new(),
        );
        assert_eq!(line.outcome, Outcome::Pinned);

        let (line, data) = decide(&entity("WAITING", json!({})), Some(&old), &target, 2, &none, &BTreeMap::new());
        assert_eq!(line.outcome, Outcome::CannotMove);
        assert!(data.is_none());
        assert_eq!(
            line.reasons,
            ["state WAITING does not exist in version 2: map it to one of that version's states (state map WAITING=<state>)"]
        );
        let (line, _) = decide(&entity("WAITING", json!({})), Some(&old), &target, 2, &map, &BTreeMap::new());
        assert_eq!((line.outcome, line.to_state.as_deref()), (Outcome::Moved, Some("OPEN")));

        let (line, _) =
            decide(&entity("WAITING", json!({ "notes": "too long" })), Some(&old), &target, 2, &map, &BTreeMap::new());
        assert_eq!(line.outcome, Outcome::CannotMove);
        assert_eq!(line.reasons.len(), 1, "{:?}", line.reasons);
        assert!(line.reasons[0].starts_with("data does not validate: /data/notes: "), "{:?}", line.reasons);

        let bad_map = StateMap::parse(&["WAITING=GONE"]).unwrap();
        let (line, _) = decide(&entity("WAITING", json!({})), Some(&old), &target, 2, &bad_map, &BTreeMap::new());
        assert_eq!(line.reasons, ["the state map maps WAITING to GONE, which is not a state of ticket in version 2"]);

        let mut ledger = entity("NEW", json!({ "subject": "a" }));
        ledger.immutable = true;
        let (line, data) = decide(&ledger, Some(&old), &target, 2, &none, &BTreeMap::new());
        assert_eq!((line.outcome, data), (Outcome::Pinned, None));
        assert_eq!(line.reasons, ["ticket entities are append-only"]);

        let mut other = entity("NEW", json!({}));
        other.type_name = "gone".into();
        let (line, _) = decide(&other, None, &target, 2, &none, &BTreeMap::new());
        assert_eq!(line.reasons, ["type gone does not exist in version 2"]);
    }
}
