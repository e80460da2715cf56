//! Explaining the transitions of many entities at once (the inbox's page): the same answer as
//! [`exec::explain`] gives each entity, with the IO batched across them. Each load stage runs
//! one statement per type for the loads by id (`id = any(…)`) and one per type for the `where`
//! loads (a `union all` branch per request, identical requests asked once); the
//! four-eyes history of every entity is one statement; the definitions and decision tables are
//! read once per version. The pure parts (preparing, the next stage's requests, the guards) run
//! per entity and transition, exactly as for one entity.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::exec::{self, TransitionInfo, MAX_LOAD_ROWS};
use super::sql::{self, StoredEntity};
use super::{Store, StoreError, TenantId};
use crate::compiled::{CompiledTenant, CompiledTransition};
use crate::decision::DataTables;
use crate::eval::{self, LoadKind, LoadRequest};
use crate::model::{Actor, Entity, Loaded};
use crate::offload::cost_key;

/// One transition of one entity being explained.
struct Job<'d> {
    /// The entity's position in the input.
    entity: usize,
    version: i64,
    transition: &'d CompiledTransition,
    role_allowed: bool,
    /// Prepared (with the role; `None` without it, or when preparing failed).
    prepared: Option<eval::Prepared<'d>>,
    loaded: IndexMap<String, Loaded>,
    /// Why its loads could not run (the transition is then not allowed, with this reason).
    error: Option<String>,
    /// Every load stage has run.
    done: bool,
}

impl Job<'_> {
    fn loading(&self) -> bool {
        self.prepared.is_some() && self.error.is_none() && !self.done
    }
}

/// The transitions from each entity's state explained for `actor`, in the order of `entities`:
/// what [`exec::explain`] answers for each.
pub(super) async fn explain_many(
    store: &Store,
    tx: &mut PgConnection,
    tenant: TenantId,
    entities: &[&StoredEntity],
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<Vec<TransitionInfo>>, StoreError> {
    let role_allowed = |t: &CompiledTransition| actor.system || t.roles().iter().any(|r| actor.roles.contains(r));
    // The definitions of each version, and its decision tables when a transition that may be
    // evaluated reads them.
    let mut defs: BTreeMap<i64, Arc<CompiledTenant>> = BTreeMap::new();
    let mut tables: HashMap<i64, Result<Arc<DataTables>, String>> = HashMap::new();
    for stored in entities {
        let version = stored.config_version;
        if let std::collections::btree_map::Entry::Vacant(e) = defs.entry(version) {
            e.insert(store.defs.get(tx, tenant, version).await?);
        }
        let Some(d) = defs.get(&version).cloned() else { continue };
        let type_name = stored.entity.type_name.as_str();
        let workflow = d.workflow(type_name).ok_or_else(|| StoreError::TypeNotFound(type_name.to_string()))?;
        let needs_tables =
            workflow.transitions_from(&stored.entity.state).any(|t| role_allowed(t) && t.uses_decisions());
        if needs_tables && !tables.contains_key(&version) {
            let got = store.data_tables.tables(tx, tenant, version, &d).await.map_err(|e| e.to_string());
            tables.insert(version, got);
        }
    }

    let mut jobs: Vec<Job<'_>> = Vec::new();
    for (i, stored) in entities.iter().enumerate() {
        let version = stored.config_version;
        let Some(d) = defs.get(&version) else { continue };
        let Some(workflow) = d.workflow(&stored.entity.type_name) else { continue };
        for t in workflow.transitions_from(&stored.entity.state) {
            let mut job = Job {
                entity: i,
                version,
                transition: t,
                role_allowed: role_allowed(t),
                prepared: None,
                loaded: IndexMap::new(),
                error: None,
                done: false,
            };
            // Without a role, nothing is loaded and no guard evaluated.
            if job.role_allowed {
                match eval::prepare_explain(d, &stored.entity, t.name(), actor, now) {
                    Ok(mut p) => {
                        if t.uses_decisions() {
                            match tables.get(&version) {
                                Some(Ok(tb)) => {
                                    if let Err(r) = p.set_data_tables(tb.clone()) {
                                        job.error = Some(StoreError::from(r).to_string());
                                    }
                                }
                                Some(Err(e)) => job.error = Some(e.clone()),
                                None => {}
                            }
                        }
                        job.prepared = Some(p);
                    }
                    Err(r) => job.error = Some(r.to_string()),
                }
            }
            jobs.push(job);
        }
    }

    // Load stage by stage: every job's pending requests in a few statements, then each job's
    // next stage.
    while jobs.iter().any(Job::loading) {
        let mut requests: Vec<(usize, LoadRequest)> = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            if let (true, Some(p)) = (job.loading(), &job.prepared) {
                requests.extend(p.pending_loads().iter().map(|r| (j, r.clone())));
            }
        }
        let results = run_requests(tx, tenant, requests.iter().map(|(_, r)| r)).await?;
        for ((j, request), loaded) in requests.into_iter().zip(results) {
            if let Some(job) = jobs.get_mut(j) {
                job.loaded.insert(request.name, loaded);
            }
        }
        for job in jobs.iter_mut().filter(|j| j.loading()) {
            let Job { prepared: Some(p), loaded, entity, .. } = job else { continue };
            let type_name = entities.get(*entity).map_or("", |s| s.entity.type_name.as_str());
            let key = cost_key(tenant, 0, &[type_name, p.transition().name(), "stages"]);
            match store.offload.run(tenant, key, || p.next_stage(loaded)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => job.done = true,
                Ok(Err(r)) => job.error = Some(StoreError::from(r).to_string()),
                Err(busy) => job.error = Some(StoreError::from(busy).to_string()),
            }
        }
    }

    // The four-eyes history of every entity that needs it, in one statement.
    let mut ids: BTreeSet<Uuid> = BTreeSet::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for job in jobs.iter().filter(|j| j.error.is_none()) {
        if let Some(p) = job.prepared.as_ref().filter(|p| !p.needs_history().is_empty()) {
            ids.insert(p.entity().id);
            names.extend(p.needs_history().iter().cloned());
        }
    }
    if !ids.is_empty() {
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let names: Vec<String> = names.into_iter().collect();
        let history = sql::earlier_actors_many(tx, tenant, &ids, &names).await?;
        for job in jobs.iter_mut().filter(|j| j.error.is_none()) {
            let Some(p) = job.prepared.as_mut().filter(|p| !p.needs_history().is_empty()) else { continue };
            let mut mine = history.get(&p.entity().id).cloned().unwrap_or_default();
            mine.retain(|t, _| p.needs_history().contains(t));
            p.set_history(mine);
        }
    }

    let mut out: Vec<Vec<TransitionInfo>> = vec![Vec::new(); entities.len()];
    for job in jobs {
        let guards = match (&job.prepared, &job.error) {
            (Some(p), None) => {
                let type_name = p.entity().type_name.as_str();
                let key = cost_key(tenant, job.version, &[type_name, job.transition.name(), "explain"]);
                store.offload.run(tenant, key, || eval::guard_results(p, &job.loaded, &store.limits)).await?
            }
            _ => Vec::new(),
        };
        if let Some(infos) = out.get_mut(job.entity) {
            infos.push(exec::transition_info(job.transition, job.role_allowed, guards, job.error));
        }
    }
    Ok(out)
}

/// Runs a stage's requests (of many jobs): the loads by id, one statement per type; the `where`
/// loads, one per type (a branch per request), identical requests asked once. The answers in the order of
/// `requests`.
async fn run_requests<'r>(
    tx: &mut PgConnection,
    tenant: TenantId,
    requests: impl Iterator<Item = &'r LoadRequest> + Clone,
) -> Result<Vec<Loaded>, StoreError> {
    let mut by_id: BTreeMap<&str, BTreeSet<Uuid>> = BTreeMap::new();
    // Distinct `where` requests, by (type, conditions).
    let mut distinct: Vec<(&str, &[(String, Value)])> = Vec::new();
    let mut distinct_index: HashMap<(&str, String), usize> = HashMap::new();
    for r in requests.clone() {
        match &r.kind {
            LoadKind::ById(Some(id)) => {
                by_id.entry(r.type_name.as_str()).or_default().insert(*id);
            }
            LoadKind::ById(None) => {}
            LoadKind::Where(conditions) => {
                let key = (r.type_name.as_str(), serde_json::to_string(conditions).unwrap_or_default());
                distinct_index.entry(key).or_insert_with(|| {
                    distinct.push((r.type_name.as_str(), conditions.as_slice()));
                    distinct.len() - 1
                });
            }
        }
    }

    let mut rows_by_id: HashMap<(&str, Uuid), Entity> = HashMap::new();
    for (type_name, ids) in by_id {
        let ids: Vec<Uuid> = ids.into_iter().collect();
        for s in sql::get_typed_many(tx, tenant, type_name, &ids).await? {
            rows_by_id.insert((type_name, s.entity.id), s.entity);
        }
    }

    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (type_name, _)) in distinct.iter().enumerate() {
        groups.entry(type_name).or_default().push(i);
    }
    let mut where_rows: Vec<Vec<Entity>> = vec![Vec::new(); distinct.len()];
    for (type_name, members) in groups {
        let asked: Vec<&[(String, Value)]> = members.iter().filter_map(|&i| distinct.get(i).map(|d| d.1)).collect();
        let answers = sql::load_where_many(tx, tenant, type_name, &asked, MAX_LOAD_ROWS).await?;
        for (i, rows) in members.into_iter().zip(answers) {
            if let Some(slot) = where_rows.get_mut(i) {
                *slot = rows.into_iter().map(|s| s.entity).collect();
            }
        }
    }

    Ok(requests
        .map(|r| match &r.kind {
            LoadKind::ById(None) => Loaded::One(None),
            LoadKind::ById(Some(id)) => Loaded::One(rows_by_id.get(&(r.type_name.as_str(), *id)).cloned()),
            LoadKind::Where(conditions) => {
                let key = (r.type_name.as_str(), serde_json::to_string(conditions).unwrap_or_default());
                Loaded::Many(distinct_index.get(&key).and_then(|&i| where_rows.get(i)).cloned().unwrap_or_default())
            }
        })
        .collect())
}
