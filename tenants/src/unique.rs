//! Unique constraints (`unique:` on a field, or a type's `unique:` list), enforced by one unique
//! index per constraint on the tenant's partition of `entities` (migration 0021;
//! `engine::store::query::unique_specs` writes them):
//!
//! ```sql
//! create unique index if not exists entities_u_<hash>
//!     on entities_of_<tenant hex> (tenant_id, lower(field_text(data, 'code')))
//!     where tenant_id = '<tenant uuid>'::uuid and type = 'customer'::text
//! ```
//!
//! **Built in the publishing transaction** ([`apply`], called by `apply::publish`): a plain
//! `create unique index` (`concurrently` cannot run in a transaction), so the version and its
//! indexes commit together or not at all. It holds a `SHARE` lock on the tenant's partition while
//! it builds (the tenant's reads go on; its inserts, updates and deletes wait until the publish
//! commits; other tenants' partitions are not touched) and reads the tenant's rows once. Dropping
//! an index (a constraint a new version no longer has) takes an `ACCESS EXCLUSIVE` lock on the
//! tenant's partition until the commit, briefly.
//!
//! **Existing rows first.** Before building, the values more than one entity holds are looked up
//! ([`check`]): `plan` lists them (values and counts, [`UniqueChange::duplicates`]), and apply
//! refuses (nothing written) while any exist.
//!
//! **Per type, whatever the version.** An index covers every entity of the tenant's type,
//! whichever version it is pinned to, and exists while the live version asks for it. Entities
//! with no value in one of a constraint's fields are not compared (as SQL's `NULL`s): any number
//! of them may exist. The index's comment (JSON: tenant, type, fields) is how a violation names
//! its fields and how a later publish finds the indexes of the tenant it no longer wants.

use std::collections::HashMap;

use engine::store::query::{unique_specs, UniqueSpec, UNIQUE_PREFIX};
use engine::store::TenantId;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApplyError, PackageError};
use crate::package::Package;

/// How many distinct duplicated values a plan (and a refusal) lists per constraint.
pub const DUPLICATES_SHOWN: i64 = 10;

/// What publishing does about one unique constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UniqueAction {
    /// Its index is built.
    Create,
    /// Its index is dropped (the new version no longer has the constraint).
    Drop,
}

/// Values that more than one entity holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Duplicate {
    /// One value per field of the constraint (lower-cased when case-insensitive).
    pub values: Vec<Value>,
    /// How many entities hold them.
    pub count: i64,
}

/// A unique index publishing builds or drops.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UniqueChange {
    pub action: UniqueAction,
    #[serde(rename = "type")]
    pub type_name: String,
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub case_insensitive: bool,
    /// The index's name.
    pub index: String,
    /// For [`UniqueAction::Create`]: values more than one entity holds now, most frequent first
    /// (at most [`DUPLICATES_SHOWN`]). Not empty: apply is refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<Duplicate>,
    /// How many distinct duplicated values there are (all of them, not only those listed).
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicated_values: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl UniqueChange {
    /// One line of the plan's text.
    pub fn line(&self) -> String {
        let mut what = format!("{} ({}", self.type_name, self.fields.join(", "));
        if self.case_insensitive {
            what.push_str(", case-insensitive");
        }
        what.push(')');
        match self.action {
            UniqueAction::Drop => format!("- unique {what}: its index is dropped"),
            UniqueAction::Create if self.duplicates.is_empty() => {
                format!("+ unique {what}: a unique index is built when the version is published")
            }
            UniqueAction::Create => format!("+ unique {what}: refused, {}", self.duplicates_text()),
        }
    }

    /// "2 values are held by more than one entity: "A-1" (3 entities), "B" (2 entities)".
    fn duplicates_text(&self) -> String {
        let shown: Vec<String> = self
            .duplicates
            .iter()
            .map(|d| {
                let values: Vec<String> = d.values.iter().map(Value::to_string).collect();
                format!("{} ({} entities)", values.join(" + "), d.count)
            })
            .collect();
        let more = self.duplicated_values - self.duplicates.len() as i64;
        let (n, verb) = if self.duplicated_values == 1 { ("1 value", "is") } else { ("", "are") };
        let n = if n.is_empty() { format!("{} values", self.duplicated_values) } else { n.to_string() };
        let mut text = format!("{n} {verb} held by more than one {} entity: {}", self.type_name, shown.join(", "));
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    }

    /// Why apply refuses this change (duplicates exist), naming the file and place.
    pub fn refusal(&self, package: &Package) -> Option<PackageError> {
        if self.action != UniqueAction::Create || self.duplicates.is_empty() {
            return None;
        }
        let file = format!("types/{}.yaml", self.type_name);
        let listed = package
            .types
            .iter()
            .find(|t| t.name.as_str() == self.type_name)
            .and_then(|t| t.unique_constraints().into_iter().find(|c| c.fields == self.fields))
            .and_then(|c| c.declared);
        let path = match (listed, self.fields.first()) {
            (Some(n), _) => format!("/unique/{n}"),
            (None, Some(f)) => format!("/fields/{f}/unique"),
            (None, None) => String::new(),
        };
        Some(PackageError::Invalid {
            file,
            path,
            message: format!(
                "{} cannot be made unique: {}; change or delete those entities first",
                self.fields.join(" + "),
                self.duplicates_text()
            ),
        })
    }
}

/// The unique indexes of `tenant` on `entities`, by name, with the comment saying what each is.
async fn existing(tx: &mut sqlx::PgConnection, tenant: TenantId) -> Result<HashMap<String, Value>, sqlx::Error> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "select c.relname::text, obj_description(c.oid, 'pg_class') \
         from pg_index i join pg_class c on c.oid = i.indexrelid \
         where i.indrelid in (select inhrelid from pg_inherits where inhparent = 'entities'::regclass) and starts_with(c.relname::text, $1)",
    )
    .bind(UNIQUE_PREFIX)
    .fetch_all(&mut *tx)
    .await?;
    let tenant = tenant.to_string();
    Ok(rows
        .into_iter()
        .filter_map(|(name, comment)| {
            let comment: Value = serde_json::from_str(&comment?).ok()?;
            (comment["tenant"].as_str() == Some(tenant.as_str())).then_some((name, comment))
        })
        .collect())
}

/// The values of `spec`'s fields more than one entity of the tenant holds, and how many such
/// values there are.
async fn duplicates(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    spec: &UniqueSpec,
) -> Result<(Vec<Duplicate>, i64), sqlx::Error> {
    let rows: Vec<(Value, i64, i64)> =
        sqlx::query_as(&spec.duplicates_sql()).bind(tenant).bind(DUPLICATES_SHOWN).fetch_all(&mut *tx).await?;
    let total = rows.first().map_or(0, |r| r.2);
    let list = rows
        .into_iter()
        .map(|(values, count, _)| Duplicate { values: values.as_array().cloned().unwrap_or_default(), count })
        .collect();
    Ok((list, total))
}

/// What publishing `package` would build and drop, with the duplicates that would refuse it,
/// read in `tx` (whose tenant is set).
pub async fn check(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    package: &Package,
) -> Result<Vec<UniqueChange>, sqlx::Error> {
    let wanted = unique_specs(tenant, &package.types);
    let existing = existing(tx, tenant).await?;
    let mut out = Vec::new();
    for spec in &wanted {
        if existing.contains_key(&spec.name) {
            continue;
        }
        let (duplicates, duplicated_values) = duplicates(tx, tenant, spec).await?;
        out.push(UniqueChange {
            action: UniqueAction::Create,
            type_name: spec.type_name.clone(),
            fields: spec.fields.clone(),
            case_insensitive: spec.case_insensitive,
            index: spec.name.clone(),
            duplicates,
            duplicated_values,
        });
    }
    let mut dropped: Vec<(&String, &Value)> =
        existing.iter().filter(|(name, _)| !wanted.iter().any(|w| &w.name == *name)).collect();
    dropped.sort_by(|a, b| a.0.cmp(b.0));
    for (name, comment) in dropped {
        out.push(UniqueChange {
            action: UniqueAction::Drop,
            type_name: comment["type"].as_str().unwrap_or_default().to_string(),
            fields: comment["fields"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            case_insensitive: comment["case_insensitive"].as_bool().unwrap_or(false),
            index: name.clone(),
            duplicates: Vec::new(),
            duplicated_values: 0,
        });
    }
    Ok(out)
}

/// The changes a new tenant's first version makes: every constraint's index is built.
pub fn for_new_tenant(package: &Package) -> Vec<UniqueChange> {
    unique_specs(TenantId::generate(), &package.types)
        .into_iter()
        .map(|spec| UniqueChange {
            action: UniqueAction::Create,
            type_name: spec.type_name,
            fields: spec.fields,
            case_insensitive: spec.case_insensitive,
            index: String::new(),
            duplicates: Vec::new(),
            duplicated_values: 0,
        })
        .collect()
}

/// Builds the indexes of `package`'s unique constraints and drops those of `tenant` it no longer
/// has, in the publishing transaction `tx` (tenant set). Refused ([`ApplyError::Invalid`],
/// nothing built) while entities hold duplicate values.
pub async fn apply(tx: &mut sqlx::PgConnection, tenant: TenantId, package: &Package) -> Result<(), ApplyError> {
    let changes = check(tx, tenant, package).await?;
    let refused: Vec<PackageError> = changes.iter().filter_map(|c| c.refusal(package)).collect();
    if !refused.is_empty() {
        return Err(ApplyError::Invalid(refused));
    }
    let wanted = unique_specs(tenant, &package.types);
    for change in &changes {
        // Names come from `unique_specs` or from the catalog filtered by prefix; checked all the same.
        if !change.index.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            continue;
        }
        match change.action {
            UniqueAction::Drop => {
                let drop = format!("drop index if exists {}", change.index);
                sqlx::query(&drop).execute(&mut *tx).await?;
                tracing::info!(index = %change.index, r#type = %change.type_name, "dropped a unique index");
            }
            UniqueAction::Create => {
                let Some(spec) = wanted.iter().find(|s| s.name == change.index) else { continue };
                if let Err(e) = sqlx::query(&spec.create_sql).execute(&mut *tx).await {
                    // A duplicate written between the check and the build (the build waits for it).
                    if let sqlx::Error::Database(db) = &e {
                        if db.code().as_deref() == Some("23505") {
                            return Err(ApplyError::Invalid(vec![PackageError::Invalid {
                                file: format!("types/{}.yaml", spec.type_name),
                                path: String::new(),
                                message: format!(
                                    "{} cannot be made unique: more than one {} entity holds the same values",
                                    spec.fields.join(" + "),
                                    spec.type_name
                                ),
                            }]));
                        }
                    }
                    return Err(e.into());
                }
                let comment = spec.comment.to_string().replace('\'', "''");
                let comment = format!("comment on index {} is '{comment}'", spec.name);
                sqlx::query(&comment).execute(&mut *tx).await?;
                tracing::info!(index = %spec.name, r#type = %spec.type_name, fields = ?spec.fields, "built a unique index");
            }
        }
    }
    Ok(())
}
