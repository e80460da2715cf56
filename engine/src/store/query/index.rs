//! The indexes that keep lists index-backed: one per (tenant, type, filterable or sortable
//! scalar field), named by a hash of what it indexes, created concurrently when a version is
//! published (`tenants::indexes`).

use ontology::def::EntityTypeDef;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::*;

/// An index a list needs: one per (tenant, type, filterable or sortable scalar field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    /// `entities_q_` + 24 hex digits of a hash of what it indexes: deterministic, so creating
    /// it again is a no-op, and a change of the field's kind makes a new one.
    pub name: String,
    pub type_name: String,
    pub field: String,
    /// `create index concurrently if not exists …` (run outside a transaction).
    pub create_sql: String,
    /// What the index is, as JSON (stored as the index's comment, so obsolete indexes of a
    /// tenant can be found and dropped).
    pub comment: Value,
}

/// A SQL string literal. Only ever given checked identifiers and uuids; quoted all the same.
pub(super) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The indexes the lists of `types` need in `tenant`. Names are checked identifiers (the
/// ontology's `TypeName`/`FieldName`), checked again here, and only ever written as literals.
pub fn index_specs(tenant: Uuid, types: &[EntityTypeDef]) -> Vec<IndexSpec> {
    let mut out = Vec::new();
    for def in types {
        let type_name = def.name.as_str();
        if !is_identifier(type_name) {
            continue;
        }
        for (field, f) in &def.fields {
            let field = field.as_str();
            if !(f.filterable || f.sortable) || !is_identifier(field) {
                continue;
            }
            let Some(accessor) = Accessor::of(f.kind) else { continue };
            let mut h = Sha256::new();
            h.update(INDEX_RECIPE.to_le_bytes());
            h.update(tenant.as_bytes());
            for part in [type_name, field, accessor.function()] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            let name = format!("{INDEX_PREFIX}{}", &hex::encode(h.finalize())[..24]);
            // The same expression `Stmt::key` writes, with the field name a literal instead of
            // a parameter; the same predicate `base` proves.
            let create_sql = format!(
                "create index concurrently if not exists {name} on entities ({}(data, {}), id) \
                 where tenant_id = {}::uuid and type = {}::text",
                accessor.function(),
                literal(field),
                literal(&tenant.to_string()),
                literal(type_name),
            );
            let comment = json!({
                "tenant": tenant, "type": type_name, "field": field,
                "function": accessor.function(), "recipe": INDEX_RECIPE,
            });
            out.push(IndexSpec {
                name,
                type_name: type_name.to_string(),
                field: field.to_string(),
                create_sql,
                comment,
            });
        }
    }
    out
}
