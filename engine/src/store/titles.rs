//! Titles that name references by their entities' titles: `title: "Stock of {{ product_id |
//! title_of }} in {{ warehouse_id | title_of }}"` shows "Stock of SKU-1 Soda in WH-N North", not
//! two ids. The referenced entities are read for the whole answer at once (one statement per
//! referenced type), and only what the reader may see by its roles and record rules is named:
//! a reference to an entity it cannot see keeps its id, as the entity's data shows it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::TenantId;
use super::{edit, query, sql, Store, StoreError};
use crate::compiled::CompiledTenant;
use crate::model::Actor;
use crate::permissions::Action;

/// The most referenced entities one answer names by title (a page of 500 entities with two
/// titled references each stays below it); references past it keep their ids.
pub const MAX_TITLED_REFERENCES: usize = 2000;

impl Store {
    /// Re-renders the `display` of entities' public JSON forms (`{"type", "data", …}`, of types
    /// in `defs`) whose title names references by title (`title_of`), with the titles of the
    /// entities they reference that `actor` may view. No statement when no title of the
    /// answer's types names a reference.
    pub async fn add_reference_titles(
        &self,
        tenant: TenantId,
        actor: &Actor,
        values: &mut [Value],
        defs: &CompiledTenant,
    ) -> Result<(), StoreError> {
        let mut wanted: BTreeMap<&str, BTreeSet<Uuid>> = BTreeMap::new();
        let mut count = 0;
        for v in values.iter() {
            let Some(ty) = v.get("type").and_then(Value::as_str).and_then(|t| defs.type_(t)) else { continue };
            for r in ty.title_references() {
                let id = v.get("data").and_then(|d| d.get(&r.path)).and_then(Value::as_str);
                if let Some(id) = id.and_then(|id| Uuid::parse_str(id).ok()) {
                    if count < MAX_TITLED_REFERENCES && wanted.entry(r.to.as_str()).or_default().insert(id) {
                        count += 1;
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin(tenant).await?;
        let titles = titles_in(&mut tx, tenant, actor, defs, wanted).await?;
        tx.commit().await?;
        for v in values.iter_mut() {
            let Some(ty) = v.get("type").and_then(Value::as_str).and_then(|t| defs.type_(t)) else { continue };
            if ty.title_references().is_empty() {
                continue;
            }
            let Some(data) = v.get("data") else { continue };
            let title = match ty.render_title_with(data, &titles) {
                Ok(title) => title,
                Err(e) => {
                    tracing::debug!(error = %e, "display title not rendered");
                    continue;
                }
            };
            if let (Some(title), Some(obj)) = (title, v.as_object_mut()) {
                obj.insert("display".into(), Value::String(title));
            }
        }
        Ok(())
    }

    /// The titles (by `defs`) of the entities `ids` names, of any type, that `actor` may view,
    /// by id: what a title being previewed names with `title_of` (`POST …/preview-template`).
    /// At most [`MAX_TITLED_REFERENCES`] ids are looked up.
    pub async fn titles_of(
        &self,
        tenant: TenantId,
        actor: &Actor,
        defs: &CompiledTenant,
        ids: &[Uuid],
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let ids = &ids[..ids.len().min(MAX_TITLED_REFERENCES)];
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut tx = self.begin(tenant).await?;
        let typed = sql::types_of(&mut tx, tenant, ids).await?;
        let mut wanted: BTreeMap<&str, BTreeSet<Uuid>> = BTreeMap::new();
        for (id, type_name) in &typed {
            wanted.entry(type_name.as_str()).or_default().insert(*id);
        }
        let titles = titles_in(&mut tx, tenant, actor, defs, wanted).await?;
        tx.commit().await?;
        Ok(titles)
    }

    /// What every answer of entities adds to their public forms: the titles of the references
    /// their titles name ([`Store::add_reference_titles`]) and the users their user fields name
    /// ([`Store::add_users`]).
    pub async fn annotate(
        &self,
        tenant: TenantId,
        actor: &Actor,
        values: &mut [Value],
        defs: &CompiledTenant,
    ) -> Result<(), StoreError> {
        self.add_reference_titles(tenant, actor, values, defs).await?;
        self.add_users(tenant, values, defs).await
    }
}

/// The titles of `wanted` (type → ids) that `actor` may view (type permission, record rules),
/// each rendered by its own type's title in `defs` (its references by id: one level).
async fn titles_in(
    tx: &mut PgConnection,
    tenant: TenantId,
    actor: &Actor,
    defs: &CompiledTenant,
    wanted: BTreeMap<&str, BTreeSet<Uuid>>,
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut titles = BTreeMap::new();
    for (type_name, ids) in wanted {
        // A type the reader may not view is named by ids only.
        let (Some(target), Ok(())) =
            (defs.type_(type_name), edit::authorize(defs, actor, type_name, Action::View, false))
        else {
            continue;
        };
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let rows = sql::get_typed_many(tx, tenant, type_name, &ids).await?;
        let scope = defs.row_scope(actor, type_name);
        let visible = if actor.system || scope.is_all() {
            None
        } else {
            Some(query::rows::visible_ids(tx, tenant, type_name, &ids, &scope, actor).await?)
        };
        for row in rows {
            if visible.as_ref().is_some_and(|seen| !seen.contains(&row.entity.id)) {
                continue;
            }
            if let Ok(Some(title)) = target.render_title(&row.entity.data) {
                titles.insert(row.entity.id.to_string(), title);
            }
        }
    }
    Ok(titles)
}
