//! Decision tables whose rows are entities (`rows_from:`): read once per change, not per
//! evaluation, and never one query per row.
//!
//! Each server keeps, per (tenant, version, table), the compiled table and the *stamp* of the
//! rows it was built from: `(count, sum of versions, latest updated_at)` of the entities of the
//! rows' type. Every entity change moves the stamp (an edit raises a version, a creation adds
//! one row and a later `updated_at`, a deletion removes one), so a transition reads the stamps of
//! every data table's type in one query, and only a table whose stamp moved is read again (one
//! query for all its rows). A change made on any server is therefore seen by the next
//! evaluation on every server. Transitions that call no `decide` (in a guard, a load expression or
//! the script), and versions with no `rows_from` table, run no query at all.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::sql::{self};
use super::{StoreError, TenantId};
use crate::compiled::CompiledTenant;
use crate::decision::{DataTables, DecisionTable, MAX_ROWS};

/// What the rows of one type looked like: it moves with every change.
pub type Stamp = (i64, i64, Option<DateTime<Utc>>);

type Key = (TenantId, i64, String);

/// A table compiled with its rows, or why its rows do not compile.
type Compiled = Result<Arc<DecisionTable>, crate::decision::DecisionError>;

/// The compiled data tables of this server, by (tenant, version, table).
#[derive(Clone, Default)]
pub struct DataTableCache {
    inner: Arc<RwLock<HashMap<Key, (Stamp, Compiled)>>>,
}

impl DataTableCache {
    /// The data tables of `defs` (version `version` of `tenant`), up to date with the rows.
    pub async fn tables(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        version: i64,
        defs: &CompiledTenant,
    ) -> Result<Arc<DataTables>, StoreError> {
        let tables: Vec<&Arc<DecisionTable>> = defs.decisions().data_tables().collect();
        if tables.is_empty() {
            return Ok(Arc::default());
        }
        let mut types: Vec<String> = tables.iter().filter_map(|t| t.rows_from().map(|r| r.type_name.clone())).collect();
        types.sort();
        types.dedup();
        let stamps: HashMap<String, Stamp> = sql::row_stamps(tx, tenant, &types).await?.into_iter().collect();
        let mut out = DataTables::with_capacity(tables.len());
        for table in tables {
            let Some(from) = table.rows_from() else { continue };
            let stamp = stamps.get(&from.type_name).copied().unwrap_or((0, 0, None));
            let key = (tenant, version, table.name().to_string());
            let cached =
                self.inner.read().ok().and_then(|m| m.get(&key).filter(|(s, _)| *s == stamp).map(|(_, t)| t.clone()));
            let compiled = match cached {
                Some(t) => t,
                None => {
                    let rows = sql::decision_rows(tx, tenant, &from.type_name, &from.states, MAX_ROWS + 1).await?;
                    let compiled = compile_rows(table, from.order_by.as_deref(), rows).map(Arc::new);
                    if let Ok(mut m) = self.inner.write() {
                        m.insert(key, (stamp, compiled.clone()));
                    }
                    compiled
                }
            };
            out.insert(table.name().to_string(), compiled);
        }
        Ok(Arc::new(out))
    }
}

/// The table with `rows` (id, data, created_at) as its rows, ordered by the `order_by` field
/// (numbers ascending, rows without one last), then by creation.
fn compile_rows(
    table: &DecisionTable,
    order_by: Option<&str>,
    mut rows: Vec<(Uuid, serde_json::Value, DateTime<Utc>)>,
) -> Result<DecisionTable, crate::decision::DecisionError> {
    let position = |data: &serde_json::Value| {
        order_by.and_then(|f| data.get(f)).and_then(crate::decision::num::from_json).unwrap_or(f64::INFINITY)
    };
    rows.sort_by(|a, b| {
        crate::decision::num::cmp(position(&a.1), position(&b.1)).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0))
    });
    table.with_rows(rows.iter().map(|(id, data, _)| (id.to_string(), data)))
}
