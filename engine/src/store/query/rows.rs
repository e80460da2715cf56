//! Record rules in SQL: a [`RowScope`] written as a condition over a row of `entities`, with the
//! actor's values, the field names and the types it reaches as parameters (never SQL text from
//! configuration or input, as for list filters).
//!
//! A path through references becomes nested `in (select id …)` subqueries, each on the tenant
//! and the referenced type: `field_uuid(data, 'customer_id') in (select id from entities where
//! tenant_id = $1 and type = 'customer' and …)`, which the per-field indexes of the rule's
//! fields answer ([`super::index_specs`] indexes every field a rule reads).
//!
//! Nulls: in a positive position a condition that is null (a missing field, a missing
//! reference) excludes the row; under `!` it is read as false first, so `!` means what
//! JSON-Logic means.

use std::collections::HashSet;

use ontology::def::FieldKind;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Accessor, Bind, Stmt, Val};
use crate::model::Actor;
use crate::rows::{CmpOp, EntityPath, Leaf, Operand, RowExpr, RowScope};
use crate::store::{StoreError, TenantId};

/// The condition `scope` puts on rows of the alias `alias` (`None`: every row), for `actor`.
/// `tenant` is the placeholder of the tenant id already bound.
pub(super) fn scope_condition(
    s: &mut Stmt,
    tenant: &str,
    alias: &str,
    scope: &RowScope,
    actor: &Actor,
) -> Option<String> {
    match scope {
        RowScope::All => None,
        RowScope::Rules(rules) if rules.is_empty() => Some("false".into()),
        RowScope::Rules(rules) => {
            let mut w = Writer { s, tenant, actor, depth: 0 };
            let parts: Vec<String> = rules.iter().map(|r| w.expr(r, alias)).collect();
            Some(format!("({})", parts.join(" or ")))
        }
    }
}

struct Writer<'a> {
    s: &'a mut Stmt,
    tenant: &'a str,
    actor: &'a Actor,
    /// Nesting of subqueries, for their aliases.
    depth: usize,
}

impl Writer<'_> {
    fn expr(&mut self, e: &RowExpr, alias: &str) -> String {
        match e {
            RowExpr::Const(b) => b.to_string(),
            RowExpr::And(items) => self.join(items, alias, " and "),
            RowExpr::Or(items) => self.join(items, alias, " or "),
            RowExpr::Not(inner) => format!("(not coalesce({}, false))", self.expr(inner, alias)),
            RowExpr::Compare { path, op, value } => {
                let Some(cond) = self.compare(path, *op, value) else { return "false".into() };
                self.through(path, alias, &cond)
            }
            RowExpr::Contains { path, value } => {
                let Some(v) = value.value(self.actor) else { return "false".into() };
                let Some(item) = bind_json_item(self.s, path.leaf.value_kind(), &v) else { return "false".into() };
                let Leaf::Field { name, .. } = &path.leaf else { return "false".into() };
                let n = self.s.param(Bind::Text(name.clone()));
                self.through(path, alias, &format!("({{a}}.data -> {n}) @> jsonb_build_array({item})"))
            }
            RowExpr::InList { path, list } => {
                let Some(Value::Array(items)) = list.value(self.actor) else { return "false".into() };
                let Some(arr) = bind_list(self.s, path.leaf.value_kind(), &items) else { return "false".into() };
                let leaf = self.leaf(&path.leaf);
                self.through(path, alias, &format!("{leaf} = any({arr})"))
            }
            RowExpr::Present { path, present } => {
                let cond = match &path.leaf {
                    Leaf::Id | Leaf::State | Leaf::CreatedBy => "true".to_string(),
                    Leaf::Field { name, .. } => {
                        let n = self.s.param(Bind::Text(name.clone()));
                        // JSON-Logic's truthiness: null, false, 0, "" and [] are false.
                        format!(
                            "({{a}}.data -> {n}) not in ('null'::jsonb, 'false'::jsonb, '0'::jsonb, '\"\"'::jsonb, '[]'::jsonb)"
                        )
                    }
                };
                let positive = self.through(path, alias, &cond);
                if *present {
                    positive
                } else {
                    format!("(not coalesce({positive}, false))")
                }
            }
        }
    }

    fn join(&mut self, items: &[RowExpr], alias: &str, op: &str) -> String {
        let parts: Vec<String> = items.iter().map(|i| self.expr(i, alias)).collect();
        format!("({})", parts.join(op))
    }

    /// The leaf's SQL over `{a}` (the alias is filled in by [`Writer::through`]).
    fn leaf(&mut self, leaf: &Leaf) -> String {
        match leaf {
            Leaf::Id => "{a}.id".into(),
            Leaf::State => "{a}.state".into(),
            Leaf::CreatedBy => "{a}.created_by".into(),
            Leaf::Field { name, kind, .. } => {
                let accessor = Accessor::of(*kind).map(|a| a.function()).unwrap_or("field_text");
                let n = self.s.param(Bind::Text(name.clone()));
                format!("{accessor}({{a}}.data, {n})")
            }
        }
    }

    /// `path <op> value` over `{a}`; `None` when it can never hold (a value the actor lacks or
    /// of the wrong type).
    fn compare(&mut self, path: &EntityPath, op: CmpOp, value: &Operand) -> Option<String> {
        let v = value.value(self.actor)?;
        let leaf = self.leaf(&path.leaf);
        if v.is_null() {
            // Only a literal can be null (an actor's missing value is `None` above).
            return match op {
                CmpOp::Eq => Some(format!("{leaf} is null")),
                CmpOp::Ne => Some(format!("{leaf} is not null")),
                _ => None,
            };
        }
        let accessor = Accessor::of(path.leaf.value_kind())?;
        let val = Val::from_json(accessor, &v)?;
        let p = self.s.val(&val);
        Some(match op {
            // JSON-Logic: a missing field differs from every value.
            CmpOp::Ne => format!("{leaf} is distinct from {p}"),
            op => format!("{leaf} {} {p}", op.sql()),
        })
    }

    /// `cond` (over `{a}`) of the path's last type, reached from `alias` through the path's
    /// references.
    fn through(&mut self, path: &EntityPath, alias: &str, cond: &str) -> String {
        self.hop(path, 0, alias, cond)
    }

    fn hop(&mut self, path: &EntityPath, i: usize, alias: &str, cond: &str) -> String {
        let Some(h) = path.hops.get(i) else { return cond.replace("{a}", alias) };
        self.depth += 1;
        let inner = format!("r{}", self.depth);
        let field = self.s.param(Bind::Text(h.field.clone()));
        let ty = self.s.param(Bind::Text(h.to.clone()));
        let rest = self.hop(path, i + 1, &inner, cond);
        format!(
            "field_uuid({alias}.data, {field}) in (select {inner}.id from entities {inner} \
             where {inner}.tenant_id = {t} and {inner}.type = {ty} and {rest})",
            t = self.tenant
        )
    }
}

/// A value bound as one element of a JSON array (`jsonb_build_array($n)`), typed as the array's
/// items are stored: numbers as numbers, booleans as booleans, everything else as text.
fn bind_json_item(s: &mut Stmt, kind: FieldKind, v: &Value) -> Option<String> {
    Some(match (kind, v) {
        (FieldKind::Number | FieldKind::Integer, Value::Number(n)) => s.param(Bind::Number(n.as_f64()?)),
        (FieldKind::Boolean, Value::Bool(b)) => s.param(Bind::Boolean(*b)),
        (FieldKind::Reference | FieldKind::User, Value::String(t)) => {
            s.param(Bind::Text(Uuid::parse_str(t).ok()?.to_string()))
        }
        (FieldKind::String | FieldKind::Enum | FieldKind::Date | FieldKind::Datetime, Value::String(t)) => {
            s.param(Bind::Text(t.clone()))
        }
        _ => return None,
    })
}

/// A list bound as an array of the leaf's SQL type; values of another type are left out (they
/// match nothing).
fn bind_list(s: &mut Stmt, kind: FieldKind, items: &[Value]) -> Option<String> {
    let accessor = Accessor::of(kind)?;
    let vals: Vec<Val> = items.iter().filter_map(|v| Val::from_json(accessor, v)).collect();
    let bind = match accessor {
        Accessor::Text => Bind::Texts(vals.iter().filter_map(super::as_text).collect()),
        Accessor::Number => Bind::Numbers(vals.iter().filter_map(super::as_number).collect()),
        Accessor::Decimal => Bind::Decimals(vals.iter().filter_map(super::as_decimal).collect()),
        Accessor::Boolean => Bind::Booleans(vals.iter().filter_map(super::as_bool).collect()),
        Accessor::Uuid => Bind::Uuids(vals.iter().filter_map(super::as_uuid).collect()),
        Accessor::Timestamptz => Bind::Timestamptzs(vals.iter().filter_map(super::as_ts).collect()),
    };
    Some(s.param(bind))
}

/// Which of `ids` (entities of `type_name`) `scope` lets `actor` see, in one statement.
pub(crate) async fn visible_ids(
    tx: &mut PgConnection,
    tenant: TenantId,
    type_name: &str,
    ids: &[Uuid],
    scope: &RowScope,
    actor: &Actor,
) -> Result<HashSet<Uuid>, StoreError> {
    if scope.is_all() {
        return Ok(ids.iter().copied().collect());
    }
    let mut s = Stmt::new("");
    let t = s.param(Bind::Uuid(tenant.as_uuid()));
    let ty = s.param(Bind::Text(type_name.to_string()));
    let list = s.param(Bind::Uuids(ids.to_vec()));
    let cond = scope_condition(&mut s, &t, "e", scope, actor).unwrap_or_else(|| "true".into());
    s.push(&format!(
        "select e.id from entities e where e.tenant_id = {t} and e.type = {ty} and e.id = any({list}) and {cond}"
    ));
    let rows: Vec<Uuid> = {
        let mut out = Vec::new();
        for row in s.query().fetch_all(&mut *tx).await? {
            out.push(sqlx::Row::try_get(&row, 0)?);
        }
        out
    };
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use indexmap::IndexMap;
    use ontology::def::EntityTypeDef;
    use serde_json::json;

    use super::*;
    use crate::permissions::Permissions;
    use crate::rows::compile_type_rules;

    fn sql_of(rule: Value, actor: &Actor) -> (String, usize) {
        let defs: Vec<EntityTypeDef> = serde_json::from_value(json!([
            { "name": "territory", "fields": {
                "assigned_users": { "type": "array", "items": { "type": "string" } } } },
            { "name": "customer", "fields": { "territory_id": { "type": "reference", "to": "territory" } } },
            { "name": "order", "fields": {
                "customer_id": { "type": "reference", "to": "customer" },
                "total": { "type": "number" }, "owner": { "type": "string" } } },
        ]))
        .unwrap();
        let o = ontology::compile::compile_types(defs).unwrap();
        let raw: IndexMap<String, Value> = [("sales".to_string(), rule)].into_iter().collect();
        let rules = compile_type_rules(&o, "order", &raw).unwrap();
        let perms = Permissions::new([("sales", None)]);
        let scope = RowScope::of(actor, "order", &perms, Some(&rules));
        let mut s = Stmt::new("");
        let t = s.param(Bind::Uuid(Uuid::nil()));
        let cond = scope_condition(&mut s, &t, "e", &scope, actor).unwrap();
        (cond, s.binds.len())
    }

    fn sales() -> Actor {
        Actor {
            id: Uuid::nil().to_string(),
            email: "sam@x.test".into(),
            roles: vec!["sales".into()],
            system: false,
            attributes: Default::default(),
        }
    }

    #[test]
    fn references_become_subqueries_on_the_tenant_and_type() {
        let (sql, binds) = sql_of(
            json!({ "in": [ { "var": "actor.email" }, { "var": "entity.customer_id.territory_id.assigned_users" } ] }),
            &sales(),
        );
        assert_eq!(
            sql,
            "(field_uuid(e.data, $4::text) in (select r1.id from entities r1 where r1.tenant_id = $1::uuid and r1.type = $5::text and \
             field_uuid(r1.data, $6::text) in (select r2.id from entities r2 where r2.tenant_id = $1::uuid and r2.type = $7::text and \
             (r2.data -> $3::text) @> jsonb_build_array($2::text))))"
        );
        assert_eq!(binds, 7);
    }

    #[test]
    fn operators_and_nulls() {
        let a = sales();
        assert_eq!(
            sql_of(json!({ "==": [ { "var": "entity.owner" }, { "var": "actor.email" } ] }), &a).0,
            "(field_text(e.data, $2::text) = $3::text)"
        );
        assert_eq!(
            sql_of(json!({ "!=": [ { "var": "entity.owner" }, "x" ] }), &a).0,
            "(field_text(e.data, $2::text) is distinct from $3::text)"
        );
        assert_eq!(
            sql_of(json!({ "==": [ { "var": "entity.owner" }, null ] }), &a).0,
            "(field_text(e.data, $2::text) is null)"
        );
        assert_eq!(
            sql_of(json!({ ">=": [ { "var": "entity.total" }, 10 ] }), &a).0,
            "(field_number(e.data, $2::text) >= $3::float8)"
        );
        assert_eq!(
            sql_of(json!({ "!": { "==": [ { "var": "entity.state" }, "DRAFT" ] } }), &a).0,
            "((not coalesce(e.state = $2::text, false)))"
        );
        assert_eq!(
            sql_of(json!({ "in": [ { "var": "entity.state" }, ["A", "B"] ] }), &a).0,
            "(e.state = any($2::text[]))"
        );
        assert!(sql_of(json!({ "!!": { "var": "entity.owner" } }), &a).0.contains("not in ('null'::jsonb"));
        // A value of the wrong type for the field (the actor's email against a reference) can
        // never match.
        assert_eq!(
            sql_of(json!({ "==": [ { "var": "entity.customer_id" }, { "var": "actor.email" } ] }), &a).0,
            "(false)"
        );
        assert_eq!(
            sql_of(
                json!({ "or": [ { "==": [ { "var": "entity.customer_id" }, { "var": "actor.id" } ] }, false ] }),
                &a
            )
            .0,
            "((field_uuid(e.data, $2::text) = $3::uuid or false))"
        );
    }
}
