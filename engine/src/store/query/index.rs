//! The indexes that keep lists index-backed: one per (tenant, type, filterable or sortable
//! scalar field), named by a hash of what it indexes, created concurrently when a version is
//! published (`tenants::indexes`).

use crate::store::TenantId;
use ontology::def::EntityTypeDef;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;

/// An index a list needs: one per (tenant, type, filterable or sortable scalar field), and one
/// per (tenant, type with searched fields) for `q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    /// `entities_q_` + 24 hex digits of a hash of what it indexes: deterministic, so creating
    /// it again is a no-op, and a change of the field's kind makes a new one.
    pub name: String,
    pub type_name: String,
    /// The field; for the search index, the searched fields joined by `,`.
    pub field: String,
    /// The search index: a trigram GIN index over `search_text(data, fields)` with the operator
    /// class `search_trgm_ops` (migration 0016), which only a superuser can create: without it,
    /// the index is not built.
    pub search: bool,
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
///
/// Besides the filterable and sortable fields, every scalar field a record rule reads (of the
/// type, or of a type it reaches through references) is indexed, so a list under a rule is
/// index-backed too.
pub fn index_specs(tenant: TenantId, types: &[EntityTypeDef]) -> Vec<IndexSpec> {
    let tenant = tenant.as_uuid();
    let ruled = rule_fields(types);
    let mut out = Vec::new();
    for def in types {
        let type_name = def.name.as_str();
        if !is_identifier(type_name) {
            continue;
        }
        for (field, f) in &def.fields {
            let field = field.as_str();
            let by_rule = ruled.contains(&(type_name.to_string(), field.to_string()));
            if !(f.filterable || f.sortable || by_rule) || !is_identifier(field) {
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
                "create index concurrently if not exists {name} on {} ({}(data, {}), id) \
                 where tenant_id = {}::uuid and type = {}::text",
                partition_of(tenant),
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
                search: false,
                create_sql,
                comment,
            });
        }
        if let Some(spec) = search_spec(tenant, def) {
            out.push(spec);
        }
    }
    out
}

/// The operator class of the search index (migration 0016).
pub const SEARCH_OPCLASS: &str = "search_trgm_ops";

/// `search_text(data, '{a,b}'::text[])`: the searched text of a type whose fields are checked
/// identifiers (the query binds the same array as a parameter, which the planner folds to this
/// very constant).
fn search_expr(fields: &[String]) -> String {
    format!("search_text(data, {}::text[])", literal(&format!("{{{}}}", fields.join(","))))
}

/// The search index of a type with searched fields (`searchable`, or string fields of the
/// title): a trigram GIN index over their text, in the tenant's rows of the type.
fn search_spec(tenant: uuid::Uuid, def: &EntityTypeDef) -> Option<IndexSpec> {
    let type_name = def.name.as_str();
    let fields = super::parse::search_fields(def);
    if fields.is_empty() || !fields.iter().all(|f| is_identifier(f)) {
        return None;
    }
    let mut h = Sha256::new();
    h.update(SEARCH_RECIPE.to_le_bytes());
    h.update(tenant.as_bytes());
    h.update(type_name.as_bytes());
    h.update([0]);
    for f in &fields {
        h.update(f.as_bytes());
        h.update([0]);
    }
    h.update(SEARCH_OPCLASS.as_bytes());
    let name = format!("{INDEX_PREFIX}{}", &hex::encode(h.finalize())[..24]);
    let create_sql = format!(
        "create index concurrently if not exists {name} on {} using gin ({} {SEARCH_OPCLASS}) \
         where tenant_id = {}::uuid and type = {}::text",
        partition_of(tenant),
        search_expr(&fields),
        literal(&tenant.to_string()),
        literal(type_name),
    );
    let comment = json!({
        "tenant": tenant, "type": type_name, "search": fields, "recipe": SEARCH_RECIPE,
    });
    Some(IndexSpec {
        name,
        type_name: type_name.to_string(),
        field: fields.join(","),
        search: true,
        create_sql,
        comment,
    })
}

/// Bumped when what the search index contains changes.
const SEARCH_RECIPE: u32 = 1;

/// Bumped when what a unique index compares changes, so indexes of the old recipe are replaced.
/// 2: `tenant_id` leads the key (a unique index must include the distribution column of a
/// Citus table; `tests/tests/suite/catalog.rs`).
const UNIQUE_RECIPE: u32 = 2;
/// Prefix of the name of every index [`unique_specs`] makes (a unique violation on an index of
/// this prefix is [`StoreError::Unique`]).
pub const UNIQUE_PREFIX: &str = "entities_u_";

/// The tenant's partition of `entities` (migration 0021: the table is partitioned by tenant,
/// one partition created with each tenant), which its list, search and unique indexes are built
/// on: the SQL function `entities_partition` gives the same name.
pub fn entities_partition(tenant: TenantId) -> String {
    partition_of(tenant.as_uuid())
}

fn partition_of(tenant: uuid::Uuid) -> String {
    format!("entities_of_{}", tenant.simple())
}

/// A unique index of a type's unique constraint (`unique:` on a field, or the type's `unique:`
/// list), in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueSpec {
    /// `entities_u_` + 24 hex digits of a hash of tenant, type, fields (with their kinds) and
    /// case-insensitivity: deterministic and 35 bytes long.
    pub name: String,
    pub type_name: String,
    pub fields: Vec<String>,
    pub case_insensitive: bool,
    /// `create unique index if not exists …` (plain: runs in the publishing transaction).
    pub create_sql: String,
    /// The key, one SQL expression per field (the field's accessor, under `lower(…)` when
    /// case-insensitive): what [`UniqueSpec::duplicates_sql`] groups by.
    pub key: Vec<String>,
    /// What the index is, as JSON (stored as the index's comment: the fields a violation names,
    /// and which indexes of a tenant its live version no longer asks for).
    pub comment: Value,
}

impl UniqueSpec {
    /// `select <values as a JSON array>, count(*), <number of such groups>` of the values more than
    /// one entity of the tenant's type holds (rows missing a value in any field are not
    /// compared), most frequent first; `$1` the tenant, `$2` how many groups to return.
    pub fn duplicates_sql(&self) -> String {
        let key = self.key.join(", ");
        let not_null: Vec<String> = self.key.iter().map(|k| format!("{k} is not null")).collect();
        format!(
            "select jsonb_build_array({key}), count(*), count(*) over () from entities \
             where tenant_id = $1 and type = {} and {} group by {key} having count(*) > 1 \
             order by count(*) desc, 1 limit $2",
            literal(&self.type_name),
            not_null.join(" and "),
        )
    }
}

/// The unique indexes the types' unique constraints need in `tenant` (constraints naming a field
/// the type does not have, or of a kind an index cannot compare, are skipped: compiling refuses
/// them). Names are checked identifiers, and only ever written as literals.
pub fn unique_specs(tenant: TenantId, types: &[EntityTypeDef]) -> Vec<UniqueSpec> {
    let tenant = tenant.as_uuid();
    let mut out = Vec::new();
    for def in types {
        let type_name = def.name.as_str();
        if !is_identifier(type_name) {
            continue;
        }
        'constraints: for c in def.unique_constraints() {
            let mut h = Sha256::new();
            h.update(UNIQUE_RECIPE.to_le_bytes());
            h.update(tenant.as_bytes());
            h.update(type_name.as_bytes());
            h.update([0, u8::from(c.case_insensitive)]);
            let mut key = Vec::new();
            for field in &c.fields {
                let Some(f) = def.fields.get(field.as_str()) else { continue 'constraints };
                let Some(accessor) = Accessor::of(f.kind) else { continue 'constraints };
                if !is_identifier(field) || c.fields.is_empty() {
                    continue 'constraints;
                }
                for part in [field.as_str(), accessor.function()] {
                    h.update(part.as_bytes());
                    h.update([0]);
                }
                let expr = format!("{}(data, {})", accessor.function(), literal(field));
                key.push(if c.case_insensitive && accessor == Accessor::Text {
                    format!("lower({expr})")
                } else {
                    expr
                });
            }
            if key.is_empty() {
                continue;
            }
            let name = format!("{UNIQUE_PREFIX}{}", &hex::encode(h.finalize())[..24]);
            let create_sql = format!(
                "create unique index if not exists {name} on {} (tenant_id, {}) where tenant_id = {}::uuid and type = {}::text",
                partition_of(tenant),
                key.join(", "),
                literal(&tenant.to_string()),
                literal(type_name),
            );
            let comment = json!({
                "tenant": tenant, "type": type_name, "fields": c.fields,
                "case_insensitive": c.case_insensitive, "recipe": UNIQUE_RECIPE,
            });
            out.push(UniqueSpec {
                name,
                type_name: type_name.to_string(),
                fields: c.fields.clone(),
                case_insensitive: c.case_insensitive,
                create_sql,
                key,
                comment,
            });
        }
    }
    out
}

/// The (type, field) pairs the record rules of `types` read: each `{"var": "entity.a.b.c"}`
/// walked through the reference fields it names.
fn rule_fields(types: &[EntityTypeDef]) -> std::collections::HashSet<(String, String)> {
    let by_name: std::collections::HashMap<&str, &EntityTypeDef> = types.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut out = std::collections::HashSet::new();
    for def in types {
        let mut stack: Vec<&Value> = def.record_rules.values().collect();
        while let Some(v) = stack.pop() {
            match v {
                Value::Array(items) => stack.extend(items),
                Value::Object(map) => {
                    if let Some(path) = map.get("var").and_then(Value::as_str).and_then(|p| p.strip_prefix("entity.")) {
                        let mut ty = Some(def);
                        for seg in path.split('.') {
                            let Some(t) = ty else { break };
                            let Some(field) = t.fields.get(seg) else { break };
                            out.insert((t.name.as_str().to_string(), seg.to_string()));
                            ty = field.to.as_ref().and_then(|to| by_name.get(to.as_str()).copied());
                        }
                    }
                    stack.extend(map.values());
                }
                _ => {}
            }
        }
    }
    out
}
