//! The inbox ("needs me"): every entity on which the actor can fire a transition now — its
//! roles, four-eyes and guards all pass — oldest first.
//!
//! The candidates are narrowed in SQL ([`sql::inbox_candidates`]): entities of the types the
//! actor may view, in the states from which the live version has a transition open to one of
//! the actor's roles, read by index (tenant, type, state, id). The candidates are then explained
//! together ([`explain::explain_many`]: the same answer as `GET …/transitions` gives each, with
//! its pinned version, the loads batched across the candidates), and each is kept when at least
//! one transition is allowed. A page evaluates at most [`INBOX_MAX_SCAN`]
//! candidates: when that many were looked at before `limit` entities were found, the page is
//! shorter and its cursor says where to go on.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::exec::TransitionInfo;
use super::explain;
use super::sql;
use super::{Store, StoreError, TenantId};
use crate::compiled::CompiledTenant;
use crate::model::{Actor, Entity};
use crate::permissions::Action;

/// Largest inbox page, and the page without `limit`.
pub const INBOX_MAX_LIMIT: i64 = 100;
pub const INBOX_DEFAULT_LIMIT: i64 = 25;
/// Most candidates one page evaluates (their loads and guards): the bound of a request's work.
pub const INBOX_MAX_SCAN: usize = 500;

/// One inbox page's request.
#[derive(Debug, Clone, Default)]
pub struct InboxRequest {
    /// Only entities of this type (it must be a type the actor may view).
    pub type_name: Option<String>,
    /// The id after which the page starts (a previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Entities per page (1 to [`INBOX_MAX_LIMIT`]).
    pub limit: i64,
}

/// An entity the actor can act on, and the transitions it may fire on it now.
#[derive(Debug, Clone)]
pub struct InboxItem {
    pub entity: Entity,
    pub transitions: Vec<TransitionInfo>,
}

/// How many entities of a page wait for one transition of one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxGroup {
    #[serde(rename = "type")]
    pub type_name: String,
    pub transition: String,
    pub label: Option<String>,
    pub count: usize,
}

/// One page of the inbox.
#[derive(Debug, Clone)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    /// Where the next page starts; `None` when every candidate has been looked at.
    pub next_cursor: Option<Uuid>,
    /// How many candidates this page evaluated.
    pub scanned: usize,
}

impl InboxPage {
    /// The page's entities grouped by type and transition (an entity with two allowed
    /// transitions counts in both), in the order the groups first appear (oldest first).
    pub fn groups(&self) -> Vec<InboxGroup> {
        group(&self.items)
    }
}

fn group(items: &[InboxItem]) -> Vec<InboxGroup> {
    let mut groups: Vec<InboxGroup> = Vec::new();
    for item in items {
        for t in &item.transitions {
            match groups.iter_mut().find(|g| g.type_name == item.entity.type_name && g.transition == t.name) {
                Some(g) => g.count += 1,
                None => groups.push(InboxGroup {
                    type_name: item.entity.type_name.clone(),
                    transition: t.name.clone(),
                    label: t.label.clone(),
                    count: 1,
                }),
            }
        }
    }
    groups
}

/// The `(type, state)` pairs whose entities may be in the actor's inbox, by the live version:
/// types the actor may view (only `only`, when given), states with a transition open to one of
/// the actor's roles. Sorted, without repeats. A type the actor may not view given as `only` is
/// [`StoreError::TypeNotFound`], like its list.
pub fn candidate_states(
    defs: &CompiledTenant,
    actor: &Actor,
    only: Option<&str>,
) -> Result<Vec<(String, String)>, StoreError> {
    if let Some(name) = only {
        super::edit::authorize(defs, actor, name, Action::View, false)?;
    }
    let mut pairs = BTreeSet::new();
    for name in defs.ontology().names() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        if !defs.permissions().allows(&actor.roles, actor.system, name, Action::View) {
            continue;
        }
        let Some(workflow) = defs.workflow(name) else { continue };
        for t in workflow.transitions().filter(|t| actor.may(t.roles())) {
            for from in t.from() {
                pairs.insert((name.to_string(), from.clone()));
            }
        }
    }
    Ok(pairs.into_iter().collect())
}

pub(super) async fn page(
    store: &Store,
    tenant: TenantId,
    actor: &Actor,
    request: &InboxRequest,
) -> Result<InboxPage, StoreError> {
    let limit = request.limit.clamp(1, INBOX_MAX_LIMIT);
    let mut tx = store.begin(tenant).await?;
    let (_, live) = store.live_in(&mut tx, tenant).await?;
    let pairs = candidate_states(&live, actor, request.type_name.as_deref())?;
    let mut items = Vec::new();
    let mut after = request.after.unwrap_or(Uuid::nil());
    let mut scanned = 0;
    let mut exhausted = pairs.is_empty();
    let now = store.now();
    'pages: while !exhausted {
        // Read a few more than still needed: some candidates' guards will fail.
        let batch = (limit - items.len() as i64).max(10);
        let rows = sql::inbox_candidates(&mut tx, tenant, &pairs, after, batch).await?;
        exhausted = (rows.len() as i64) < batch;
        let read = rows.len();
        let hidden = hidden_by_record_rules(&mut tx, tenant, &live, actor, &rows).await?;
        // At most what the scan bound still allows, then every visible candidate explained in
        // one go (its loads batched across the candidates).
        let rows: Vec<sql::StoredEntity> = rows.into_iter().take(INBOX_MAX_SCAN.saturating_sub(scanned)).collect();
        let shown: Vec<&sql::StoredEntity> = rows.iter().filter(|r| !hidden.contains(&r.entity.id)).collect();
        let mut explained = explain::explain_many(store, &mut tx, tenant, &shown, actor, now).await?.into_iter();
        for (i, stored) in rows.into_iter().enumerate() {
            after = stored.entity.id;
            scanned += 1;
            if !hidden.contains(&stored.entity.id) {
                let allowed: Vec<TransitionInfo> =
                    explained.next().unwrap_or_default().into_iter().filter(|t| t.allowed).collect();
                if !allowed.is_empty() {
                    items.push(InboxItem { entity: stored.entity, transitions: allowed });
                }
            }
            if items.len() as i64 >= limit || scanned >= INBOX_MAX_SCAN {
                // Stopped before the end of what there is: there may be more (a short batch
                // read to its last row was the end).
                exhausted = exhausted && i + 1 == read;
                break 'pages;
            }
        }
    }
    tx.commit().await?;
    Ok(InboxPage { items, next_cursor: (!exhausted).then_some(after), scanned })
}

/// The candidates the actor does not see by the record rules of its roles (one statement per
/// type of the batch that has rules for the actor, none otherwise): they are not in its inbox.
async fn hidden_by_record_rules(
    tx: &mut PgConnection,
    tenant: TenantId,
    live: &crate::compiled::CompiledTenant,
    actor: &Actor,
    rows: &[sql::StoredEntity],
) -> Result<std::collections::HashSet<Uuid>, StoreError> {
    let mut by_type: std::collections::BTreeMap<&str, Vec<Uuid>> = std::collections::BTreeMap::new();
    for r in rows {
        by_type.entry(r.entity.type_name.as_str()).or_default().push(r.entity.id);
    }
    let mut hidden = std::collections::HashSet::new();
    for (type_name, ids) in by_type {
        let scope = live.row_scope(actor, type_name);
        if scope.is_all() {
            continue;
        }
        let seen = super::query::rows::visible_ids(tx, tenant, type_name, &ids, &scope, actor).await?;
        hidden.extend(ids.into_iter().filter(|id| !seen.contains(id)));
    }
    Ok(hidden)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn item(type_name: &str, transitions: &[&str]) -> InboxItem {
        InboxItem {
            entity: Entity {
                id: Uuid::now_v7(),
                type_name: type_name.into(),
                state: "S".into(),
                version: 1,
                data: serde_json::json!({}),
                created_by: "u".into(),
                updated_by: "u".into(),
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
            },
            transitions: transitions
                .iter()
                .map(|n| TransitionInfo {
                    name: (*n).into(),
                    label: None,
                    to: "T".into(),
                    allowed: true,
                    role_allowed: true,
                    roles: vec![],
                    guards: vec![],
                    input_schema: None,
                    reason: None,
                })
                .collect(),
        }
    }

    #[test]
    fn groups_count_each_transition_of_each_type_in_first_seen_order() {
        let items = [item("order", &["approve", "reject"]), item("trip", &["start"]), item("order", &["approve"])];
        let got: Vec<(String, String, usize)> =
            group(&items).into_iter().map(|g| (g.type_name, g.transition, g.count)).collect();
        let want = [("order", "approve", 2), ("order", "reject", 1), ("trip", "start", 1)];
        assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c)).to_vec());
        assert!(group(&[]).is_empty());
        let first = group(&items[..1]).into_iter().next().unwrap();
        assert_eq!(first.count, 1);
    }
}
