//! What applying a package would change: the difference between a package and the tenant's
//! live version, readable like a terraform plan, and its impact on existing entities.
//!
//! ```text
//! + type trip
//! ~ type order
//!   + state ON_HOLD
//!   - transition rejectOrder
//!   ~ transition approveOrder: guards changed
//!   ~ field notes: max_length: 2000 → 500
//!
//! Impact on live entities:
//!   3 order entities are in state PENDING_APPROVAL, which would be removed
//!
//! Unique indexes:
//!   + unique product (sku): a unique index is built when the version is published
//!
//! Pinned entities: they keep running the definition of the version they were created or migrated under, not this one:
//!   order: 12 entities on versions 1, 2 (8 in non-terminal states)
//!
//! To move those in non-terminal states onto version 3 (the version apply publishes), after apply run:
//!   switchyard tenant migrate shop --to 3 --state-map order.PENDING_APPROVAL=<state> --dry-run
//! ```
//!
//! [`diff`] and [`compute`] are pure; [`plan`] reads the live version and the entity counts,
//! the unique indexes to build or drop with the duplicates that refuse them
//! ([`crate::unique::check`]), and the entities pinned to other versions ([`pinned`], pure, says
//! which of them run a definition that differs and how to migrate them).
//! The comparison works on the canonical JSON of the package (workflows normalised through
//! [`WorkflowDef`], so `{}` and `{ kind: active }` are the same state): every key is compared,
//! including ones this module does not know by name, which show up as `~ key changed`.

use engine::eval::same;
use engine::store::{TenantId, TenantSlug};
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;

use engine::def::WorkflowDef;
use ontology::def::EntityTypeDef;

use crate::error::PackageError;
use crate::export::{self, VersionError};
use crate::package::Package;

/// Whether something is added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Add,
    Remove,
    Change,
}

impl Op {
    fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Remove => '-',
            Op::Change => '~',
        }
    }
}

/// One line of a plan, with the lines nested under it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub op: Op,
    /// What changes: `type`, `field`, `state`, `transition`, `role`, `user`, `terminology`, or the
    /// name of an attribute (`name`, `label`, `title`, …).
    pub kind: String,
    /// Which one (empty for an attribute).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// What about it, e.g. `guards changed`, `max_length: 2000 → 500`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Change>,
}

impl Change {
    fn new(op: Op, kind: &str, name: &str, details: Vec<String>) -> Change {
        Change { op, kind: kind.to_string(), name: name.to_string(), details, children: Vec::new() }
    }

    fn line(&self) -> String {
        let mut line = format!("{} {}", self.op.symbol(), self.kind);
        if !self.name.is_empty() {
            line.push(' ');
            line.push_str(&self.name);
        }
        if !self.details.is_empty() {
            line.push_str(": ");
            line.push_str(&self.details.join(", "));
        }
        line
    }

    fn render(&self, depth: usize, out: &mut String) {
        out.push_str(&"  ".repeat(depth));
        out.push_str(&self.line());
        out.push('\n');
        for c in &self.children {
            c.render(depth + 1, out);
        }
    }
}

/// How many entities of a type are in a state (all entities of the tenant, whatever version
/// they are pinned to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateCount {
    pub type_name: String,
    pub state: String,
    pub count: i64,
}

/// What happens to existing entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpactKind {
    /// Their type would be removed.
    TypeRemoved,
    /// Their state would not exist any more.
    StateRemoved,
    /// Transitions they can take now would not be available from their state any more.
    TransitionsLost,
}

/// Entities affected by a plan, counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    pub kind: ImpactKind,
    pub type_name: String,
    /// The state (empty for a removed type).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    pub count: i64,
    /// The transitions lost (for [`ImpactKind::TransitionsLost`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<String>,
    /// The same in words, e.g. "3 order entities are in state PENDING_APPROVAL, which would be
    /// removed".
    pub message: String,
}

/// The live version a plan compares against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Live {
    pub version: i64,
    pub hash: String,
}

/// Counts of a plan's top-level changes (a changed type counts each change inside it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
}

/// What applying a package would do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub tenant: String,
    /// The live version, `None` for a new tenant (then everything is an addition).
    pub live: Option<Live>,
    /// The hash of the planned package.
    pub hash: String,
    /// Whether applying would change anything: the live version (the hashes differ), or the
    /// package's users (see [`with_users`]).
    pub changed: bool,
    /// An earlier version with this very package: applying makes it live again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_version: Option<i64>,
    pub changes: Vec<Change>,
    pub impact: Vec<Impact>,
    /// Why applying would be refused, though the package validates: it drops `immutable: true`
    /// from (or removes) an append-only type whose entities exist. Empty: apply may publish.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<PackageError>,
    /// The unique indexes applying builds (with the duplicate values that refuse it) or drops.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<crate::unique::UniqueChange>,
    /// Per type whose definition changes, the entities that stay pinned to an earlier version
    /// and so keep running its definition after apply (see [`PinnedEntities`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pinned: Vec<PinnedEntities>,
    /// How to move the pinned entities onto the version apply publishes (when some can move).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationHint>,
    pub summary: Summary,
}

/// Entities of one type that stay on an earlier version when the package is applied: an entity
/// runs the definitions of the version it was created (or last migrated) under, never the live
/// one, until it is migrated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedEntities {
    #[serde(rename = "type")]
    pub type_name: String,
    /// All of them.
    pub total: i64,
    /// Those not in a terminal state of their version: still in flight (what a migration moves).
    pub non_terminal: i64,
    /// The versions they are pinned to.
    pub versions: Vec<i64>,
    /// The package no longer has the type (its entities cannot be migrated).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub type_removed: bool,
}

/// The migration that moves pinned entities onto the version apply publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationHint {
    /// The version apply publishes (or makes live again).
    pub to: i64,
    /// The CLI command, to run after apply (first with `--dry-run`).
    pub command: String,
    /// States of in-flight entities the version does not have: each needs a `--state-map`
    /// entry `type.STATE=<a state of the version>` (in the command as `<state>`), else those
    /// entities cannot move.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmapped: Vec<UnmappedState>,
}

/// A state in-flight entities are in that the new version's workflow does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnmappedState {
    #[serde(rename = "type")]
    pub type_name: String,
    pub state: String,
    pub count: i64,
}

/// The live version a plan is computed against.
#[derive(Debug, Clone, Copy)]
pub struct LiveVersion<'a> {
    pub version: i64,
    pub hash: &'a str,
    pub package: &'a Package,
}

/// Plans `package` for the tenant `slug` against what is live in the database.
pub async fn plan(pool: &PgPool, slug: &TenantSlug, package: &Package) -> Result<Plan, VersionError> {
    let first = || {
        let mut plan = compute(slug, None, package, &[], None);
        plan.unique = crate::unique::for_new_tenant(package);
        plan
    };
    let Some(tenant) = export::tenant_id(pool, slug).await? else {
        return Ok(first());
    };
    let Some(stored) = export::version(pool, tenant, None).await? else {
        return Ok(first());
    };
    let live = stored.package()?;
    let counts = state_counts(pool, tenant).await?;
    let hash = package.hash();
    let existing = export::version_by_hash(pool, tenant, &hash).await?.filter(|v| *v != stored.info.version);
    let live = LiveVersion { version: stored.info.version, hash: &stored.info.hash, package: &live };
    let users = stored_users(pool, tenant).await?;
    let mut plan = with_users(compute(slug, Some(live), package, &counts, existing), package, &users, tenant);
    let mut tx = pool.begin().await?;
    plan.refused = immutable_refusals(package, &immutable_counts(&mut tx, tenant).await?);
    plan.unique = crate::unique::check(&mut tx, tenant, package).await?;
    plan.refused.extend(plan.unique.iter().filter_map(|u| u.refusal(package)));
    let to = match existing {
        Some(v) => v,
        None if !plan.changed => stored.info.version,
        None => max_version(&mut tx, tenant).await? + 1,
    };
    let pins = pin_counts(&mut tx, tenant, to).await?;
    tx.commit().await?;
    let (pinned, migration) = pinned(slug, package, to, &pins);
    plan.pinned = pinned;
    plan.migration = migration;
    Ok(plan)
}

/// The tenant's latest version number (0 without one).
async fn max_version(tx: &mut sqlx::PgConnection, tenant: TenantId) -> Result<i64, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar("select max(version) from config_versions where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
    Ok(v.unwrap_or(0))
}

/// Entities pinned to a version other than `to`, counted by type, version and state, with
/// their type's definition in that version.
#[derive(Debug, Clone, PartialEq)]
pub struct PinCount {
    pub type_name: String,
    pub version: i64,
    pub state: String,
    pub count: i64,
    /// The type as that version defines it (`None`: the version does not have it).
    pub def: Option<EntityTypeDef>,
}

/// [`PinCount`]s of the tenant's entities not on version `to` (tx: tenant set).
async fn pin_counts(tx: &mut sqlx::PgConnection, tenant: TenantId, to: i64) -> Result<Vec<PinCount>, sqlx::Error> {
    let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
        "select type, config_version, state, count(*) from entities where tenant_id = $1 and config_version <> $2 \
         group by type, config_version, state order by type, config_version, state",
    )
    .bind(tenant)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    let mut versions: Vec<i64> = rows.iter().map(|r| r.1).collect();
    versions.sort_unstable();
    versions.dedup();
    // The stored packages are `json` (key order kept): one row per (version, type).
    let types: Vec<(i64, String)> = sqlx::query_as(
        "select v.version, t::text from config_versions v, json_array_elements(v.package -> 'types') t \
         where v.tenant_id = $1 and v.version = any($2)",
    )
    .bind(tenant)
    .bind(&versions)
    .fetch_all(&mut *tx)
    .await?;
    let defs: Vec<(i64, EntityTypeDef)> = types
        .into_iter()
        .filter_map(|(v, text)| serde_json::from_str::<EntityTypeDef>(&text).ok().map(|d| (v, d)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|(type_name, version, state, count)| {
            let def = defs.iter().find(|(v, d)| *v == version && d.name.as_str() == type_name).map(|(_, d)| d.clone());
            PinCount { type_name, version, state, count, def }
        })
        .collect())
}

/// The entities that keep running an earlier definition of their type after `package` is
/// published as version `to`, and the migration that would move them (pure). A type whose
/// definition in the entities' version is the package's is left out: nothing differs for them.
pub fn pinned(
    slug: &str,
    package: &Package,
    to: i64,
    pins: &[PinCount],
) -> (Vec<PinnedEntities>, Option<MigrationHint>) {
    let mut out: Vec<PinnedEntities> = Vec::new();
    let mut unmapped: Vec<UnmappedState> = Vec::new();
    let mut movable = false;
    for p in pins.iter().filter(|p| p.count > 0) {
        let new_def = package.types.iter().find(|t| t.name.as_str() == p.type_name);
        if new_def.is_some() && new_def == p.def.as_ref() {
            continue;
        }
        let old_wf = p.def.as_ref().and_then(|d| WorkflowDef::parse(d.name.as_str(), d.workflow.as_ref()).ok());
        let terminal = old_wf
            .as_ref()
            .and_then(|w| w.states.get(&p.state))
            .is_some_and(|s| s.kind == engine::def::StateKind::Terminal);
        let entry = match out.iter_mut().find(|e| e.type_name == p.type_name) {
            Some(e) => e,
            None => {
                out.push(PinnedEntities {
                    type_name: p.type_name.clone(),
                    total: 0,
                    non_terminal: 0,
                    versions: Vec::new(),
                    type_removed: new_def.is_none(),
                });
                let Some(last) = out.last_mut() else { continue };
                last
            }
        };
        entry.total += p.count;
        if !entry.versions.contains(&p.version) {
            entry.versions.push(p.version);
            entry.versions.sort_unstable();
        }
        if terminal {
            continue;
        }
        entry.non_terminal += p.count;
        let Some(new_def) = new_def else { continue };
        movable = true;
        let new_wf = WorkflowDef::parse(new_def.name.as_str(), new_def.workflow.as_ref()).ok();
        if new_wf.is_some_and(|w| !w.states.contains_key(&p.state)) {
            match unmapped.iter_mut().find(|u| u.type_name == p.type_name && u.state == p.state) {
                Some(u) => u.count += p.count,
                None => unmapped.push(UnmappedState {
                    type_name: p.type_name.clone(),
                    state: p.state.clone(),
                    count: p.count,
                }),
            }
        }
    }
    if !movable {
        return (out, None);
    }
    let mut command = format!("switchyard tenant migrate {slug} --to {to}");
    for u in &unmapped {
        command.push_str(&format!(" --state-map {}.{}=<state>", u.type_name, u.state));
    }
    (out, Some(MigrationHint { to, command, unmapped }))
}

/// How many append-only entities (`entities.immutable`, set by the database from their pinned
/// version) each type has.
pub async fn immutable_counts(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    engine::store::sql::set_tenant(tx, tenant).await?;
    sqlx::query_as("select type, count(*) from entities where tenant_id = $1 and immutable group by type order by type")
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await
}

/// The refusals of publishing `package` when these append-only entities exist (pure): a version
/// cannot drop `immutable: true` from their type, or remove the type, while they do. (They would
/// stay append-only anyway, pinned to their version; the refusal keeps the package honest.)
pub fn immutable_refusals(package: &Package, counts: &[(String, i64)]) -> Vec<PackageError> {
    let mut out = Vec::new();
    for (type_name, count) in counts.iter().filter(|(_, n)| *n > 0) {
        let entities =
            if *count == 1 { "1 of its entities exists".to_string() } else { format!("{count} of its entities exist") };
        let file = format!("types/{type_name}.yaml");
        match package.types.iter().find(|t| t.name.as_str() == type_name) {
            Some(t) if t.immutable => {}
            Some(_) => out.push(PackageError::Invalid {
                file,
                path: "/immutable".into(),
                message: format!(
                    "type `{type_name}` is append-only (`immutable: true`) in the live version and {entities}: \
                     a new version cannot drop the marking while they do"
                ),
            }),
            None => out.push(PackageError::Invalid {
                file,
                path: String::new(),
                message: format!(
                    "type `{type_name}` is append-only (`immutable: true`) and {entities}: a new version cannot \
                     remove the type while they do"
                ),
            }),
        }
    }
    out
}

/// A user of the tenant as the database has it: email, name, roles, attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub attributes: Map<String, Value>,
}

/// The tenant's users (apply creates or updates the package's among them).
pub async fn stored_users(pool: &PgPool, tenant: TenantId) -> Result<Vec<StoredUser>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    type Row = (String, String, Vec<String>, sqlx::types::Json<Map<String, Value>>);
    let rows: Vec<Row> = sqlx::query_as("select email, name, roles, attributes from users where tenant_id = $1")
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(email, name, roles, attributes)| StoredUser { email, name, roles, attributes: attributes.0 })
        .collect())
}

/// The plan's user lines made to say what apply will do to the users (pure): apply gives every
/// user of the package its name, roles and attributes (`"@key"` resolved to the sample row's id
/// in `tenant`), so a `+ user` is one the tenant does not have and a `~ user` one whose name,
/// roles or attributes differ from the database's (an admin may have changed them over the
/// API), whether or not the package changed. `- user` lines (dropped from the package;
/// apply keeps the user) stay. User changes alone make the plan `changed`.
pub fn with_users(mut plan: Plan, package: &Package, users: &[StoredUser], tenant: TenantId) -> Plan {
    plan.changes.retain(|c| !(c.kind == "user" && c.op != Op::Remove));
    let at = plan.changes.iter().position(|c| c.kind == "user" || c.kind == "users" || c.kind == "type");
    let mut lines = Vec::new();
    for u in &package.tenant.users {
        let stored = users.iter().find(|s| s.email.to_lowercase() == u.email.to_lowercase());
        match stored {
            None => lines.push(Change::new(
                Op::Add,
                "user",
                &u.email.to_lowercase(),
                vec![format!("roles {}", show(&serde_json::json!(u.roles)))],
            )),
            Some(s) => {
                let mut details = Vec::new();
                if s.name != u.name {
                    details.push(format!(
                        "name: {} → {}",
                        show(&Value::String(s.name.clone())),
                        show(&Value::String(u.name.clone()))
                    ));
                }
                if s.roles != u.roles {
                    details.push(format!(
                        "roles: {} → {}",
                        show(&serde_json::json!(s.roles)),
                        show(&serde_json::json!(u.roles))
                    ));
                }
                let attributes = crate::apply::resolve_keys(tenant, &Value::Object(u.attributes.clone()));
                if Value::Object(s.attributes.clone()) != attributes {
                    details.push(format!(
                        "attributes: {} → {}",
                        show(&Value::Object(s.attributes.clone())),
                        show(&attributes)
                    ));
                }
                if !details.is_empty() {
                    lines.push(Change::new(Op::Change, "user", &u.email.to_lowercase(), details));
                }
            }
        }
    }
    if !lines.is_empty() {
        plan.changed = true;
    }
    let at = at.unwrap_or(plan.changes.len()).min(plan.changes.len());
    plan.changes.splice(at..at, lines);
    plan.summary = Summary::default();
    count(&plan.changes, &mut plan.summary);
    plan
}

/// How many entities of each type are in each state.
pub async fn state_counts(pool: &PgPool, tenant: TenantId) -> Result<Vec<StateCount>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "select type, state, count(*) from entities where tenant_id = $1 group by type, state order by type, state",
    )
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|(type_name, state, count)| StateCount { type_name, state, count }).collect())
}

/// The plan of `package` against `live` (pure).
pub fn compute(
    slug: &str,
    live: Option<LiveVersion<'_>>,
    package: &Package,
    counts: &[StateCount],
    existing_version: Option<i64>,
) -> Plan {
    let hash = package.hash();
    let changed = live.is_none_or(|l| l.hash != hash);
    let (changes, impact) = match live {
        Some(_) if !changed => (Vec::new(), Vec::new()),
        Some(l) => (diff(Some(l.package), package), impact(l.package, package, counts)),
        None => (diff(None, package), Vec::new()),
    };
    let mut summary = Summary::default();
    count(&changes, &mut summary);
    Plan {
        tenant: slug.to_string(),
        live: live.map(|l| Live { version: l.version, hash: l.hash.to_string() }),
        hash,
        changed,
        existing_version,
        changes,
        impact,
        refused: Vec::new(),
        unique: Vec::new(),
        pinned: Vec::new(),
        migration: None,
        summary,
    }
}

fn count(changes: &[Change], summary: &mut Summary) {
    for c in changes {
        match c.op {
            Op::Add => summary.add += 1,
            Op::Remove => summary.remove += 1,
            Op::Change if c.children.is_empty() || !c.details.is_empty() => summary.change += 1,
            Op::Change => count(&c.children, summary),
        }
    }
}

impl Plan {
    /// The plan as text, terraform style.
    pub fn text(&self) -> String {
        let mut out = String::new();
        match &self.live {
            None => out.push_str(&format!(
                "Tenant {} has no live version: the package (hash {}) would be its first.\n",
                self.tenant,
                short(&self.hash)
            )),
            Some(l) => out.push_str(&format!(
                "Tenant {}: live version {} (hash {}), package hash {}.\n",
                self.tenant,
                l.version,
                short(&l.hash),
                short(&self.hash)
            )),
        }
        if !self.changed {
            out.push_str("\nNo changes: the package is the live version.\n");
            return out;
        }
        out.push('\n');
        for c in &self.changes {
            c.render(0, &mut out);
        }
        if self.changes.is_empty() {
            out.push_str("~ package: only its layout changed (key order or formatting)\n");
        }
        if let Some(v) = self.existing_version {
            out.push_str(&format!("\nThis package is version {v}: applying it makes that version live again.\n"));
        }
        if !self.refused.is_empty() {
            out.push_str("\nRefused: applying this package would fail:\n");
            for r in &self.refused {
                out.push_str(&format!("  {r}\n"));
            }
        }
        if self.live.is_some() {
            if self.impact.is_empty() {
                out.push_str("\nNo live entity is affected.\n");
            } else {
                out.push_str("\nImpact on live entities:\n");
                for i in &self.impact {
                    out.push_str(&format!("  {}\n", i.message));
                }
            }
        }
        if !self.unique.is_empty() {
            out.push_str("\nUnique indexes:\n");
            for u in &self.unique {
                out.push_str(&format!("  {}\n", u.line()));
            }
        }
        if !self.pinned.is_empty() {
            out.push_str(
                "\nPinned entities: they keep running the definition of the version they were created \
                 or migrated under, not this one:\n",
            );
            for p in &self.pinned {
                out.push_str(&format!("  {}\n", p.line()));
            }
        }
        if let Some(m) = &self.migration {
            let after = if self.existing_version.is_some() { "makes live" } else { "publishes" };
            out.push_str(&format!(
                "\nTo move those in non-terminal states onto version {} (the version apply {after}), after apply run:\n  \
                 {} --dry-run\nthen the same without --dry-run (or POST /api/v1/t/{}/config/migrate).\n",
                m.to, m.command, self.tenant
            ));
            for u in &m.unmapped {
                let entities =
                    if u.count == 1 { "1 entity is".to_string() } else { format!("{} entities are", u.count) };
                out.push_str(&format!(
                    "  {}.{}: {entities} in a state version {} does not have: map it to one of its states, \
                     or they cannot move\n",
                    u.type_name, u.state, m.to
                ));
            }
        }
        let s = self.summary;
        out.push_str(&format!("\nPlan: {} to add, {} to change, {} to remove.\n", s.add, s.change, s.remove));
        out
    }
}

impl PinnedEntities {
    /// "order: 12 entities on versions 1, 2 (8 in non-terminal states)".
    pub fn line(&self) -> String {
        let entities = if self.total == 1 { "1 entity".to_string() } else { format!("{} entities", self.total) };
        let versions: Vec<String> = self.versions.iter().map(ToString::to_string).collect();
        let noun = if versions.len() == 1 { "version" } else { "versions" };
        let mut line = format!(
            "{}: {entities} on {noun} {} ({} in non-terminal states)",
            self.type_name,
            versions.join(", "),
            self.non_terminal
        );
        if self.type_removed {
            line.push_str(&format!("; the package removes type {}, so they cannot be migrated", self.type_name));
        }
        line
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

// --- The diff ---------------------------------------------------------------------------------

/// Every difference between `live` (`None`: nothing yet) and `new`: tenant settings first (name,
/// terminology, roles, users, …), then types in the new package's order, then removed types.
pub fn diff(live: Option<&Package>, new: &Package) -> Vec<Change> {
    let empty = Map::new();
    let old_json = live.map(Package::to_json).unwrap_or_else(|| Value::Object(Map::new()));
    let new_json = new.to_json();
    let (old_top, new_top) = (old_json.as_object().unwrap_or(&empty), new_json.as_object().unwrap_or(&empty));

    let mut out = tenant_changes(obj(old_top.get("tenant")), obj(new_top.get("tenant")));

    let old_types: IndexMap<&str, &EntityTypeDef> =
        live.map(|p| p.types.iter().map(|t| (t.name.as_str(), t)).collect()).unwrap_or_default();
    let new_types: IndexMap<&str, &EntityTypeDef> = new.types.iter().map(|t| (t.name.as_str(), t)).collect();
    for (name, def) in &new_types {
        match old_types.get(name) {
            None => {
                let mut c = Change::new(Op::Add, "type", name, Vec::new());
                c.children = type_changes(None, def);
                out.push(c);
            }
            Some(old) => {
                let children = type_changes(Some(old), def);
                if !children.is_empty() {
                    let mut c = Change::new(Op::Change, "type", name, Vec::new());
                    c.children = children;
                    out.push(c);
                }
            }
        }
    }
    for name in old_types.keys().filter(|n| !new_types.contains_key(*n)) {
        out.push(Change::new(Op::Remove, "type", name, Vec::new()));
    }
    if live.is_some() && order_changed(old_types.keys().copied(), new_types.keys().copied()) {
        out.push(Change::new(Op::Change, "types", "", vec!["order changed".into()]));
    }

    // Top-level keys of the stored package besides `tenant` and `types`, if it ever has any.
    for key in union_keys(old_top, new_top) {
        if key == "tenant" || key == "types" {
            continue;
        }
        if key == "decisions" {
            out.extend(decision_changes(old_top.get(key), new_top.get(key)));
            continue;
        }
        out.extend(value_changes(key, old_top.get(key), new_top.get(key)));
    }
    out
}

/// The decision tables added, removed or changed (with the keys that changed: `rules`,
/// `default`, `hit` …), by name.
fn decision_changes(old: Option<&Value>, new: Option<&Value>) -> Vec<Change> {
    let by_name = |v: Option<&Value>| -> IndexMap<String, Value> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| Some((d.get("name")?.as_str()?.to_string(), d.clone())))
            .collect()
    };
    let (old, new) = (by_name(old), by_name(new));
    let mut out = Vec::new();
    for (name, def) in &new {
        match old.get(name) {
            None => out.push(Change::new(Op::Add, "decision", name, Vec::new())),
            Some(before) if before != def => {
                let empty = Map::new();
                let (a, b) = (before.as_object().unwrap_or(&empty), def.as_object().unwrap_or(&empty));
                let details = union_keys(a, b)
                    .into_iter()
                    .filter(|k| a.get(*k) != b.get(*k))
                    .map(|k| format!("{k} changed"))
                    .collect();
                out.push(Change::new(Op::Change, "decision", name, details));
            }
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(Change::new(Op::Remove, "decision", name, Vec::new()));
    }
    out
}

fn tenant_changes(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<Change> {
    let mut out = Vec::new();
    for key in union_keys(old, new) {
        let (a, b) = (old.get(key), new.get(key));
        match key {
            "users" => out.extend(user_changes(a, b)),
            "roles" => out.extend(entries("role", obj(a), obj(b))),
            "terminology" => out.extend(entries("terminology", obj(a), obj(b))),
            _ => out.extend(value_changes(key, a, b)),
        }
    }
    out
}

/// A key whose value is a map of named entries becomes `± singular name` lines; anything else
/// one attribute line.
fn value_changes(key: &str, a: Option<&Value>, b: Option<&Value>) -> Vec<Change> {
    let is_map = |v: Option<&Value>| v.is_none_or(Value::is_object);
    if is_map(a) && is_map(b) && (a.is_some() || b.is_some()) {
        entries(singular(key), obj(a), obj(b))
    } else {
        attr_change(key, a, b).into_iter().collect()
    }
}

fn singular(key: &str) -> &str {
    key.strip_suffix('s').unwrap_or(key)
}

/// Dev users, keyed by email (case-insensitive).
fn user_changes(a: Option<&Value>, b: Option<&Value>) -> Vec<Change> {
    let by_email = |v: Option<&Value>| -> Map<String, Value> {
        v.and_then(Value::as_array)
            .map(|users| {
                users
                    .iter()
                    .map(|u| (u.get("email").and_then(Value::as_str).unwrap_or_default().to_lowercase(), u.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = entries("user", &by_email(a), &by_email(b));
    for c in &mut out {
        c.details.retain(|d| !d.starts_with("email: "));
        // Apply deletes no user: one the package drops stays (deactivate it over the API).
        if c.op == Op::Remove {
            c.details.push("no longer in the package (the user is kept)".into());
        }
    }
    out
}

/// Named entries (states, transitions, roles, …): added, changed (with what changed) and removed,
/// plus a line when their order changed.
fn entries(kind: &str, old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<Change> {
    let mut out = Vec::new();
    for (name, b) in new {
        match old.get(name) {
            None => out.push(Change::new(Op::Add, kind, name, added_details(kind, b))),
            Some(a) => {
                let details = entry_details(a, b);
                if !details.is_empty() {
                    out.push(Change::new(Op::Change, kind, name, details));
                }
            }
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(Change::new(Op::Remove, kind, name, Vec::new()));
    }
    if order_changed(old.keys().map(String::as_str), new.keys().map(String::as_str)) {
        out.push(Change::new(Op::Change, &format!("{kind}s"), "", vec!["order changed".into()]));
    }
    out
}

/// What an added entry is, in a few words.
fn added_details(kind: &str, v: &Value) -> Vec<String> {
    match kind {
        "transition" => {
            let from = v.get("from").map(show).unwrap_or_default();
            let to = v.get("to").and_then(Value::as_str).unwrap_or_default();
            vec![format!("{from} → {to}")]
        }
        "state" => match v.get("kind").and_then(Value::as_str) {
            Some(k) if k != "active" => vec![k.to_string()],
            _ => Vec::new(),
        },
        "user" => v.get("roles").map(|r| vec![format!("roles {}", show(r))]).unwrap_or_default(),
        _ => match v {
            Value::Object(m) => m.get("label").filter(|l| small(l)).map(|l| vec![show(l)]).unwrap_or_default(),
            other if small(other) => vec![show(other)],
            _ => Vec::new(),
        },
    }
}

fn entry_details(a: &Value, b: &Value) -> Vec<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => attr_details(a, b, &[]),
        _ if same(a, b) => Vec::new(),
        _ if small(a) && small(b) => vec![format!("{} → {}", show(a), show(b))],
        _ => vec!["changed".into()],
    }
}

/// `key: old → new` for every attribute that differs (`key changed` for large values). A
/// missing boolean is `false` (serialization skips it).
fn attr_details(a: &Map<String, Value>, b: &Map<String, Value>, skip: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for key in union_keys(a, b) {
        if skip.contains(&key) {
            continue;
        }
        let (x, y) = normalise_bool(a.get(key), b.get(key));
        if let Some(d) = describe(key, x.as_ref(), y.as_ref()) {
            out.push(d);
        }
    }
    out
}

fn normalise_bool(a: Option<&Value>, b: Option<&Value>) -> (Option<Value>, Option<Value>) {
    match (a, b) {
        (None, Some(Value::Bool(_))) => (Some(Value::Bool(false)), b.cloned()),
        (Some(Value::Bool(_)), None) => (a.cloned(), Some(Value::Bool(false))),
        _ => (a.cloned(), b.cloned()),
    }
}

fn describe(key: &str, a: Option<&Value>, b: Option<&Value>) -> Option<String> {
    let shown = |v: Option<&Value>| v.map_or_else(|| "none".to_string(), show);
    match (a, b) {
        (None, None) => None,
        (Some(x), Some(y)) if same(x, y) => None,
        (x, y) if x.is_none_or(small) && y.is_none_or(small) => Some(format!("{key}: {} → {}", shown(x), shown(y))),
        (None, Some(_)) => Some(format!("{key} added")),
        (Some(_), None) => Some(format!("{key} removed")),
        _ => Some(format!("{key} changed")),
    }
}

/// One attribute (`name`, `label`, `title`, …) as its own line.
fn attr_change(key: &str, a: Option<&Value>, b: Option<&Value>) -> Option<Change> {
    let op = match (a, b) {
        (None, None) => return None,
        (Some(x), Some(y)) if same(x, y) => return None,
        (None, Some(_)) => Op::Add,
        (Some(_), None) => Op::Remove,
        _ => Op::Change,
    };
    let details = match (a, b) {
        (_, Some(y)) if op == Op::Add && small(y) => vec![show(y)],
        (Some(x), Some(y)) if small(x) && small(y) => vec![format!("{} → {}", show(x), show(y))],
        (Some(_), Some(_)) => vec!["changed".into()],
        _ => Vec::new(),
    };
    Some(Change::new(op, key, "", details))
}

/// The changes inside a type (`old`: `None` for a new type, whose contents are all additions).
fn type_changes(old: Option<&EntityTypeDef>, new: &EntityTypeDef) -> Vec<Change> {
    let empty = Map::new();
    let to_json = |d: &EntityTypeDef| serde_json::to_value(d).unwrap_or(Value::Null);
    let old_json = old.map(to_json).unwrap_or_else(|| Value::Object(Map::new()));
    let new_json = to_json(new);
    let (a, b) = (old_json.as_object().unwrap_or(&empty), new_json.as_object().unwrap_or(&empty));
    let mut out = Vec::new();
    if old.is_some() {
        for key in union_keys(a, b) {
            if !matches!(key, "name" | "fields" | "workflow" | "immutable") {
                out.extend(attr_change(key, a.get(key), b.get(key)));
            }
        }
    }
    // Append-only is said in words: it changes what may ever happen to the type's entities.
    match (old.is_some_and(|o| o.immutable), new.immutable) {
        (false, true) => out.push(Change::new(
            Op::Add,
            "immutable",
            "",
            vec!["the type becomes append-only: its new entities are never changed or deleted".into()],
        )),
        (true, false) => out.push(Change::new(
            Op::Remove,
            "immutable",
            "",
            vec!["the type is no longer append-only (refused while its entities exist)".into()],
        )),
        _ => {}
    }
    fields(obj(a.get("fields")), obj(b.get("fields")), "", old.is_some(), &mut out);

    let wa = old.map(workflow_json).unwrap_or_else(|| Value::Object(Map::new()));
    let wb = workflow_json(new);
    let (wa, wb) = (wa.as_object().unwrap_or(&empty), wb.as_object().unwrap_or(&empty));
    for key in union_keys(wa, wb) {
        let (x, y) = (wa.get(key), wb.get(key));
        match key {
            "states" => {
                out.extend(entries("state", &without_positions(obj(x)), &without_positions(obj(y))));
                out.extend(layout_change(obj(x), obj(y)));
            }
            "transitions" => out.extend(entries("transition", obj(x), obj(y))),
            _ => out.extend(value_changes(key, x, y)),
        }
    }
    out
}

/// The states without their `position` (where the studio's designer draws them), which
/// [`layout_change`] sums up in one line instead of one per moved state.
fn without_positions(states: &Map<String, Value>) -> Map<String, Value> {
    let mut states = states.clone();
    for state in states.values_mut() {
        if let Some(state) = state.as_object_mut() {
            state.remove("position");
        }
    }
    states
}

/// `~ layout: positions of N states` when states that both versions have were moved (or placed,
/// or unplaced) in the designer: a change of the package the engine ignores, said as such.
fn layout_change(old: &Map<String, Value>, new: &Map<String, Value>) -> Option<Change> {
    let moved = new
        .iter()
        .filter_map(|(name, b)| old.get(name).map(|a| (a.get("position"), b.get("position"))))
        .filter(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => !same(a, b),
            (a, b) => a.is_some() != b.is_some(),
        })
        .count();
    let noun = if moved == 1 { "state" } else { "states" };
    (moved > 0).then(|| Change::new(Op::Change, "layout", "", vec![format!("positions of {moved} {noun}")]))
}

/// The type's workflow in canonical form (defaults written out; the implicit workflow when it
/// has none), or as written when it does not parse.
fn workflow_json(def: &EntityTypeDef) -> Value {
    match WorkflowDef::parse(def.name.as_str(), def.workflow.as_ref()) {
        Ok(wf) => serde_json::to_value(&wf).unwrap_or(Value::Null),
        Err(_) => def.workflow.clone().unwrap_or(Value::Null),
    }
}

/// Fields, nested ones named by path (`address.city`, `items[].quantity`).
fn fields(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    prefix: &str,
    compare_order: bool,
    out: &mut Vec<Change>,
) {
    for (name, b) in new {
        let path = format!("{prefix}{name}");
        match old.get(name) {
            None => out.push(Change::new(Op::Add, "field", &path, vec![field_summary(b)])),
            Some(a) => field(a, b, &path, out),
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(Change::new(Op::Remove, "field", &format!("{prefix}{name}"), Vec::new()));
    }
    if compare_order && order_changed(old.keys().map(String::as_str), new.keys().map(String::as_str)) {
        let what = if prefix.is_empty() {
            "fields".to_string()
        } else {
            format!("fields of {}", prefix.trim_end_matches('.'))
        };
        out.push(Change::new(Op::Change, &what, "", vec!["order changed".into()]));
    }
}

fn field(a: &Value, b: &Value, path: &str, out: &mut Vec<Change>) {
    let empty = Map::new();
    let (am, bm) = (a.as_object().unwrap_or(&empty), b.as_object().unwrap_or(&empty));
    let details = attr_details(am, bm, &["fields", "items"]);
    if !details.is_empty() {
        out.push(Change::new(Op::Change, "field", path, details));
    }
    if am.contains_key("fields") || bm.contains_key("fields") {
        fields(obj(am.get("fields")), obj(bm.get("fields")), &format!("{path}."), true, out);
    }
    match (am.get("items"), bm.get("items")) {
        (Some(x), Some(y)) => field(x, y, &format!("{path}[]"), out),
        (None, Some(y)) => out.push(Change::new(Op::Add, "field", &format!("{path}[]"), vec![field_summary(y)])),
        (Some(_), None) => out.push(Change::new(Op::Remove, "field", &format!("{path}[]"), Vec::new())),
        (None, None) => {}
    }
}

/// `string`, `reference to customer, required`, `enum [low, high]`.
fn field_summary(f: &Value) -> String {
    let kind = f.get("type").and_then(Value::as_str).unwrap_or("?");
    let mut s = match (kind, f.get("to"), f.get("values")) {
        ("reference", Some(to), _) => format!("reference to {}", show(to).trim_matches('"')),
        ("enum", _, Some(values)) => format!("enum {}", show(values)),
        _ => kind.to_string(),
    };
    if f.get("required") == Some(&Value::Bool(true)) {
        s.push_str(", required");
    }
    s
}

// --- Impact -----------------------------------------------------------------------------------

/// Entities of `counts` that the change from `live` to `new` affects: their type or state would
/// be removed, or transitions they can take now would be gone from their state.
pub fn impact(live: &Package, new: &Package, counts: &[StateCount]) -> Vec<Impact> {
    let workflows = |p: &Package| -> IndexMap<String, Option<WorkflowDef>> {
        p.types
            .iter()
            .map(|t| (t.name.to_string(), WorkflowDef::parse(t.name.as_str(), t.workflow.as_ref()).ok()))
            .collect()
    };
    let (old_wf, new_wf) = (workflows(live), workflows(new));
    let mut out = Vec::new();
    let mut removed_types: IndexMap<&str, i64> = IndexMap::new();
    for c in counts.iter().filter(|c| c.count > 0) {
        let Some(new_def) = new_wf.get(&c.type_name) else {
            if old_wf.contains_key(&c.type_name) {
                *removed_types.entry(c.type_name.as_str()).or_default() += c.count;
            }
            continue;
        };
        let Some(new_def) = new_def else { continue };
        let entities = entities_phrase(c.count, &c.type_name);
        let old_def = old_wf.get(&c.type_name).and_then(Option::as_ref);
        if !new_def.states.contains_key(&c.state) {
            let what = if old_def.is_some_and(|w| w.states.contains_key(&c.state)) {
                "which would be removed"
            } else {
                "which the package does not have"
            };
            out.push(Impact {
                kind: ImpactKind::StateRemoved,
                type_name: c.type_name.clone(),
                state: c.state.clone(),
                count: c.count,
                transitions: Vec::new(),
                message: format!("{entities} in state {}, {what}", c.state),
            });
            continue;
        }
        let Some(old_def) = old_def else { continue };
        let lost: Vec<String> = old_def
            .transitions
            .iter()
            .filter(|(_, t)| t.from.contains(&c.state))
            .filter(|(name, _)| new_def.transitions.get(*name).is_none_or(|t| !t.from.contains(&c.state)))
            .map(|(name, _)| name.clone())
            .collect();
        if !lost.is_empty() {
            let noun = if lost.len() == 1 { "transition" } else { "transitions" };
            out.push(Impact {
                kind: ImpactKind::TransitionsLost,
                type_name: c.type_name.clone(),
                state: c.state.clone(),
                count: c.count,
                message: format!("{entities} in state {}, which would lose {noun} {}", c.state, lost.join(", ")),
                transitions: lost,
            });
        }
    }
    let removed = removed_types.into_iter().map(|(type_name, count)| {
        let (noun, verb) = if count == 1 { ("entity", "exists") } else { ("entities", "exist") };
        Impact {
            kind: ImpactKind::TypeRemoved,
            type_name: type_name.to_string(),
            state: String::new(),
            count,
            transitions: Vec::new(),
            message: format!("{count} {type_name} {noun} {verb}; type {type_name} would be removed"),
        }
    });
    removed.chain(out).collect()
}

/// "1 order entity is" / "3 order entities are".
fn entities_phrase(count: i64, type_name: &str) -> String {
    if count == 1 {
        format!("1 {type_name} entity is")
    } else {
        format!("{count} {type_name} entities are")
    }
}

// --- JSON helpers -----------------------------------------------------------------------------

fn obj(v: Option<&Value>) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    v.and_then(Value::as_object).unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// The keys of `a` in order, then those only `b` has.
fn union_keys<'a>(a: &'a Map<String, Value>, b: &'a Map<String, Value>) -> Vec<&'a str> {
    a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))).map(String::as_str).collect()
}

/// Whether the keys both sides have appear in a different order.
fn order_changed<'a>(old: impl Iterator<Item = &'a str>, new: impl Iterator<Item = &'a str>) -> bool {
    let old: Vec<&str> = old.collect();
    let new: Vec<&str> = new.collect();
    let a: Vec<&str> = old.iter().copied().filter(|k| new.contains(k)).collect();
    let b: Vec<&str> = new.iter().copied().filter(|k| old.contains(k)).collect();
    a != b
}

/// Short enough to show inline: a scalar or a list of scalars, on one line.
fn small(v: &Value) -> bool {
    let scalar = |v: &Value| match v {
        Value::String(s) => !s.contains('\n'),
        Value::Object(_) | Value::Array(_) => false,
        _ => true,
    };
    let fits = match v {
        Value::Array(items) => items.iter().all(scalar),
        other => scalar(other),
    };
    fits && show(v).chars().count() <= 80
}

/// A value as a plan shows it: strings quoted, lists as `[a, b]`, `2000.0` as `2000`.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_else(|_| s.clone()),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => show(other),
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::package::TenantFile;

    #[test]
    fn decision_tables_are_diffed_by_name() {
        let table = |name: &str, rate: f64| -> engine::decision::DecisionDef {
            serde_json::from_value(serde_json::json!({
                "name": name, "hit": "first", "inputs": { "a": { "type": "number" } },
                "outputs": { "rate": { "type": "number" } }, "default": { "rate": rate } }))
            .unwrap()
        };
        let mut old = package(TENANT, &[ORDER]);
        old.decisions = vec![table("discount", 0.0), table("gone", 0.0)];
        let mut new = package(TENANT, &[ORDER]);
        new.decisions = vec![table("discount", 0.1), table("carrier", 0.0)];
        let lines: Vec<String> = diff(Some(&old), &new).iter().map(Change::line).collect();
        assert!(lines.iter().any(|l| l.contains("decision discount") && l.contains("default changed")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with('+') && l.contains("decision carrier")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with('-') && l.contains("decision gone")), "{lines:?}");
    }

    fn package(tenant: &str, types: &[&str]) -> Package {
        Package {
            tenant: serde_yaml_ng::from_str::<TenantFile>(tenant).unwrap(),
            types: types.iter().map(|t| serde_yaml_ng::from_str(t).unwrap()).collect(),
            decisions: Vec::new(),
            data: Vec::new(),
        }
    }

    const TENANT: &str = "
slug: shop
name: Shop
roles: { admin: { label: Administrator }, clerk: {} }
users: [ { email: a@shop.test, name: A, roles: [admin] } ]
";

    const ORDER: &str = r#"
name: order
label: Order
fields:
  notes: { type: string, max_length: 2000 }
  priority: { type: enum, values: [low, high] }
  address: { type: object, fields: { city: { type: string } } }
  items: { type: array, items: { type: object, fields: { qty: { type: integer, minimum: 1 } } } }
workflow:
  states:
    DRAFT: { kind: initial }
    PENDING_APPROVAL: {}
    APPROVED: {}
    REJECTED: { kind: terminal }
  transitions:
    submitOrder: { from: [DRAFT], to: PENDING_APPROVAL, roles: [clerk] }
    approveOrder:
      from: [PENDING_APPROVAL]
      to: APPROVED
      roles: [admin]
      guards: [ { rule: { "!!": [ { var: entity.notes } ] }, message: needs notes } ]
    rejectOrder: { from: [PENDING_APPROVAL], to: REJECTED, roles: [admin] }
    reopen: { from: [APPROVED, REJECTED], to: DRAFT, roles: [admin] }
"#;

    const ORDER_CHANGED: &str = r#"
name: order
label: Sales order
fields:
  notes: { type: string, max_length: 500, required: true }
  priority: { type: enum, values: [low, high] }
  address: { type: object, fields: { city: { type: string }, zip: { type: string } } }
  items: { type: array, items: { type: object, fields: { qty: { type: integer, minimum: 2 } } } }
workflow:
  states:
    DRAFT: { kind: initial }
    APPROVED: { kind: active }
    ON_HOLD: { label: On hold }
    REJECTED: { kind: terminal }
  transitions:
    submitOrder: { from: [DRAFT], to: APPROVED, roles: [clerk] }
    approveOrder:
      from: [DRAFT]
      to: APPROVED
      roles: [admin]
      guards: [ { rule: { "!!": [ { var: entity.priority } ] }, message: needs a priority } ]
    hold: { from: [APPROVED], to: ON_HOLD, roles: [admin] }
    reopen: { from: [REJECTED], to: DRAFT, roles: [admin] }
"#;

    const TRIP: &str = "
name: trip
fields: { code: { type: string, required: true } }
";

    fn lines(changes: &[Change]) -> String {
        let mut out = String::new();
        for c in changes {
            c.render(0, &mut out);
        }
        out
    }

    #[test]
    fn a_layout_change_is_one_line() {
        let live = package(TENANT, &[ORDER]);
        let placed = ORDER
            .replace("DRAFT: { kind: initial }", "DRAFT: { kind: initial, position: { x: 0, y: 0 } }")
            .replace("APPROVED: {}", "APPROVED: { position: { x: 200, y: 0 } }");
        let new = package(TENANT, &[&placed]);
        let hash = live.hash();
        let plan = compute("shop", Some(LiveVersion { version: 1, hash: &hash, package: &live }), &new, &[], None);
        assert!(plan.changed);
        assert_eq!(lines(&plan.changes), "~ type order\n  ~ layout: positions of 2 states\n");
        assert_eq!(plan.summary, Summary { add: 0, change: 1, remove: 0 });
        assert!(plan.impact.is_empty());
        // Moved again: still a layout change; a state added with a position is a state.
        let moved = placed.replace("x: 200", "x: 240").replace(
            "REJECTED: { kind: terminal }",
            "REJECTED: { kind: terminal }\n    NEW: { position: { x: 1, y: 1 } }",
        );
        let text = lines(&diff(Some(&new), &package(TENANT, &[&moved])));
        assert_eq!(text, "~ type order\n  + state NEW\n  ~ layout: positions of 1 state\n");
    }

    #[test]
    fn the_same_package_plans_no_change() {
        let p = package(TENANT, &[ORDER]);
        let hash = p.hash();
        let plan = compute("shop", Some(LiveVersion { version: 1, hash: &hash, package: &p }), &p, &[], None);
        assert!(!plan.changed);
        assert!(plan.changes.is_empty());
        assert!(plan.text().contains("No changes"), "{}", plan.text());
        assert!(diff(Some(&p), &p).is_empty());
    }

    #[test]
    fn a_new_tenant_plans_as_all_additions() {
        let p = package(TENANT, &[ORDER, TRIP]);
        let plan = compute("shop", None, &p, &[], None);
        assert!(plan.changed);
        assert!(plan.changes.iter().all(|c| c.op == Op::Add), "{:?}", plan.changes);
        let text = plan.text();
        for line in [
            "+ name: \"Shop\"",
            "+ role admin: \"Administrator\"",
            "+ role clerk",
            "+ user a@shop.test: roles [admin]",
            "+ type order\n  + field notes: string\n",
            "  + state DRAFT: initial\n  + state PENDING_APPROVAL\n",
            "  + transition submitOrder: [DRAFT] → PENDING_APPROVAL",
            "+ type trip\n  + field code: string, required\n  + state ACTIVE: initial\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(plan.summary, Summary { add: 7, change: 0, remove: 0 });
    }

    #[test]
    fn user_lines_say_what_apply_does_to_the_stored_users() {
        let p = package(TENANT, &[ORDER]);
        let hash = p.hash();
        let same = compute("shop", Some(LiveVersion { version: 1, hash: &hash, package: &p }), &p, &[], None);
        let stored = |roles: &[&str], name: &str| StoredUser {
            email: "A@shop.test".into(),
            name: name.into(),
            roles: roles.iter().map(ToString::to_string).collect(),
            attributes: Map::new(),
        };
        let up_to_date = with_users(same.clone(), &p, &[stored(&["admin"], "A")], TenantId::generate());
        assert!(!up_to_date.changed && up_to_date.changes.is_empty(), "{}", up_to_date.text());
        // Changed over the API: apply sets the package's roles back, so the plan says so.
        let drifted = with_users(same.clone(), &p, &[stored(&["clerk"], "Ann")], TenantId::generate());
        assert!(drifted.changed);
        assert!(
            drifted.text().contains("~ user a@shop.test: name: \"Ann\" → \"A\", roles: [clerk] → [admin]\n"),
            "{}",
            drifted.text()
        );
        assert_eq!(drifted.summary, Summary { add: 0, change: 1, remove: 0 });
        // Missing (published before apply created users, or deleted): apply creates it.
        // Attributes set over the API: apply sets the package's (none) back.
        let mut api = stored(&["admin"], "A");
        api.attributes.insert("region".into(), Value::String("coast".into()));
        let drifted = with_users(same.clone(), &p, &[api], TenantId::generate());
        assert!(
            drifted.text().contains("~ user a@shop.test: attributes: {\"region\":\"coast\"} → {}\n"),
            "{}",
            drifted.text()
        );
        let missing = with_users(same, &p, &[], TenantId::generate());
        assert!(missing.text().contains("+ user a@shop.test: roles [admin]\n"), "{}", missing.text());
    }

    #[test]
    fn a_user_dropped_from_the_package_is_kept() {
        let live = package(TENANT, &[ORDER]);
        let without = package(
            &TENANT.replace("users: [ { email: a@shop.test, name: A, roles: [admin] } ]", "users: []"),
            &[ORDER],
        );
        let text = lines(&diff(Some(&live), &without));
        assert!(text.contains("- user a@shop.test: no longer in the package (the user is kept)\n"), "got\n{text}");
    }

    #[test]
    fn changes_are_listed_per_type_and_tenant() {
        let live = package(TENANT, &[ORDER, TRIP]);
        let tenant_changed = "
slug: shop
name: Shop Ltd
roles: { admin: { label: Administrator }, clerk: {}, auditor: {} }
users: [ { email: a@shop.test, name: A, roles: [admin, clerk] } ]
";
        let new = package(tenant_changed, &[ORDER_CHANGED]);
        let text = lines(&diff(Some(&live), &new));
        let expected = "\
~ name: \"Shop\" → \"Shop Ltd\"
+ role auditor
~ user a@shop.test: roles: [admin] → [admin, clerk]
~ type order
  ~ label: \"Order\" → \"Sales order\"
  ~ field notes: max_length: 2000 → 500, required: false → true
  + field address.zip: string
  ~ field items[].qty: minimum: 1 → 2
";
        assert!(text.starts_with(expected), "got\n{text}");
        for line in [
            "  + state ON_HOLD\n",
            "  - state PENDING_APPROVAL\n",
            "  ~ transition submitOrder: to: \"PENDING_APPROVAL\" → \"APPROVED\"\n",
            "  ~ transition approveOrder: from: [PENDING_APPROVAL] → [DRAFT], guards changed\n",
            "  ~ transition reopen: from: [APPROVED, REJECTED] → [REJECTED]\n",
            "  + transition hold: [APPROVED] → ON_HOLD\n",
            "  - transition rejectOrder\n",
            "- type trip\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("state APPROVED"), "{text}");
    }

    #[test]
    fn impact_counts_entities_in_removed_states_and_lost_transitions() {
        let live = package(TENANT, &[ORDER, TRIP]);
        let new = package(TENANT, &[ORDER_CHANGED]);
        let counts = [
            StateCount { type_name: "order".into(), state: "APPROVED".into(), count: 1 },
            StateCount { type_name: "order".into(), state: "DRAFT".into(), count: 4 },
            StateCount { type_name: "order".into(), state: "PENDING_APPROVAL".into(), count: 3 },
            StateCount { type_name: "order".into(), state: "REJECTED".into(), count: 2 },
            StateCount { type_name: "trip".into(), state: "ACTIVE".into(), count: 5 },
        ];
        let messages: Vec<String> = impact(&live, &new, &counts).into_iter().map(|i| i.message).collect();
        assert_eq!(
            messages,
            [
                "5 trip entities exist; type trip would be removed",
                "1 order entity is in state APPROVED, which would lose transition reopen",
                "3 order entities are in state PENDING_APPROVAL, which would be removed",
            ]
        );
        // DRAFT keeps submitOrder and gains approveOrder; REJECTED keeps reopen: no impact.
        let hash = live.hash();
        let plan = compute("shop", Some(LiveVersion { version: 2, hash: &hash, package: &live }), &new, &counts, None);
        let text = plan.text();
        assert!(text.starts_with("Tenant shop: live version 2 (hash "), "{text}");
        assert!(text.contains("\nImpact on live entities:\n  5 trip entities exist"), "{text}");
        assert!(text.ends_with("to remove.\n"), "{text}");
    }

    #[test]
    fn a_reorder_is_a_change() {
        let live = package(TENANT, &[ORDER, TRIP]);
        let new = package(TENANT, &[TRIP, ORDER]);
        assert_ne!(live.hash(), new.hash());
        assert_eq!(lines(&diff(Some(&live), &new)), "~ types: order changed\n");
    }

    #[test]
    fn pinned_entities_are_counted_per_changed_type_with_the_migration() {
        let live = package(TENANT, &[ORDER, TRIP]);
        let new = package(TENANT, &[ORDER_CHANGED]);
        let def = |p: &Package, name: &str| p.types.iter().find(|t| t.name.as_str() == name).cloned();
        let pin = |type_name: &str, version: i64, state: &str, count: i64, def: Option<EntityTypeDef>| PinCount {
            type_name: type_name.into(),
            version,
            state: state.into(),
            count,
            def,
        };
        let pins = [
            pin("order", 1, "DRAFT", 4, def(&live, "order")),
            pin("order", 1, "PENDING_APPROVAL", 3, def(&live, "order")),
            pin("order", 1, "REJECTED", 2, def(&live, "order")),
            pin("order", 2, "DRAFT", 1, def(&new, "order")),
            pin("trip", 1, "ACTIVE", 5, def(&live, "trip")),
        ];
        let (pinned, migration) = pinned("shop", &new, 3, &pins);
        assert_eq!(
            pinned,
            [
                PinnedEntities {
                    type_name: "order".into(),
                    total: 9,
                    non_terminal: 7,
                    versions: vec![1],
                    type_removed: false
                },
                PinnedEntities {
                    type_name: "trip".into(),
                    total: 5,
                    non_terminal: 5,
                    versions: vec![1],
                    type_removed: true
                },
            ],
            "the order on version 2 runs the same definition: not counted"
        );
        assert_eq!(pinned[1].line(), "trip: 5 entities on version 1 (5 in non-terminal states); the package removes type trip, so they cannot be migrated");
        let m = migration.unwrap();
        assert_eq!(m.command, "switchyard tenant migrate shop --to 3 --state-map order.PENDING_APPROVAL=<state>");
        assert_eq!(
            m.unmapped,
            [UnmappedState { type_name: "order".into(), state: "PENDING_APPROVAL".into(), count: 3 }]
        );
        // Only terminal (or unmovable) entities left: nothing to offer.
        let (pinned, migration) = super::pinned("shop", &new, 3, &pins[2..3]);
        assert_eq!((pinned[0].total, pinned[0].non_terminal), (2, 0));
        assert_eq!(migration, None);
    }

    #[test]
    fn values_are_shown_compactly() {
        assert_eq!(show(&serde_json::json!(2000.0)), "2000");
        assert_eq!(show(&serde_json::json!(0.5)), "0.5");
        assert_eq!(show(&serde_json::json!(["a", 1])), "[a, 1]");
        assert!(!small(&serde_json::json!({ "a": 1 })));
        assert!(!small(&serde_json::json!("two\nlines")));
    }
}
