//! Record rules: which rows of a type a role sees, compiled once per published version.
//!
//! A type may say, per role, which of its entities that role sees (`record_rules:` in the type
//! file, see `docs/tenant-package.md`, "Record rules"):
//!
//! ```yaml
//! record_rules:
//!   sales:  { in: [ { var: actor.email }, { var: entity.customer_id.territory_id.assigned_users } ] }
//!   driver: { "==": [ { var: entity.trip_id.driver_id }, { var: actor.email } ] }
//! ```
//!
//! A rule is JSON-Logic restricted to what compiles to an index-backed SQL condition: `and`,
//! `or`, `!`, `!!` of a field, `==`, `!=`, `<`, `<=`, `>`, `>=` between an entity path and a value
//! (a literal or an attribute of the actor), `in` of a value in an array field or of a field in
//! a list (literal or the actor's). An entity path is `entity.<field>` (or `id`, `state`,
//! `created_by`),
//! following reference fields at most [`MAX_HOPS`] times (`entity.customer_id.territory_id.x`).
//!
//! What a user sees: a role with `view` on the type and no rule sees every row; a role with a
//! rule sees the rows it matches; a user with several roles sees what any of them sees
//! ([`RowScope`]). Nulls: a missing field equals nothing but a missing literal `null`, and a
//! comparison with a value of the actor that is missing or of the wrong type is false (whatever
//! the operator), so a rule never grants more because of what a user lacks.
//!
//! Pure: this module parses and checks rules against the ontology; the SQL is written by
//! `store::query::rows` with the actor's values as parameters.

use indexmap::IndexMap;
use ontology::compile::Ontology;
use ontology::def::FieldKind;
use serde_json::Value;

use crate::error::EngineError;
use crate::model::Actor;
use crate::permissions::{Action, Permissions};

/// Most reference hops in an entity path (`entity.a_id.b_id.field` is two).
pub const MAX_HOPS: usize = 2;
/// Most operations in one rule (its nodes), so a rule's SQL stays small.
pub const MAX_RULE_NODES: usize = 64;
/// Most values in a literal list.
pub const MAX_LIST: usize = 1000;
/// What a rule may read of the actor (`actor.<name>`), besides the user's attributes
/// (`actor.attributes.<name>`, [`ATTRIBUTES_PREFIX`]).
pub const ACTOR_ATTRIBUTES: &[&str] = &["id", "email", "roles"];
/// How a rule names a user attribute: `actor.attributes.<name>` (the package declares them in
/// `user_attributes:`; the tenants crate checks the name is declared).
pub const ATTRIBUTES_PREFIX: &str = "attributes.";

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn parse(op: &str) -> Option<CmpOp> {
        Some(match op {
            "==" | "===" => CmpOp::Eq,
            "!=" | "!==" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return None,
        })
    }

    /// The operator with its sides swapped (`a < b` is `b > a`).
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            op => op,
        }
    }

    /// The SQL operator (a fixed string).
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A step through a reference field: the field of the current type, and the type it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub field: String,
    pub to: String,
}

/// What the end of a path reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    /// The entity's id.
    Id,
    /// The entity's state.
    State,
    /// Who created the entity (the creating actor's id, as `actor.id`).
    CreatedBy,
    /// A data field of a kind (scalar, or an array of scalars for `in`).
    Field { name: String, kind: FieldKind, items: Option<FieldKind> },
}

impl Leaf {
    /// The kind of a value compared with this leaf (the items' kind for an array).
    pub fn value_kind(&self) -> FieldKind {
        match self {
            Leaf::Id => FieldKind::Reference,
            Leaf::State | Leaf::CreatedBy => FieldKind::Enum,
            Leaf::Field { kind: FieldKind::Array, items, .. } => items.unwrap_or(FieldKind::String),
            Leaf::Field { kind, .. } => *kind,
        }
    }

    fn is_array(&self) -> bool {
        matches!(self, Leaf::Field { kind: FieldKind::Array, .. })
    }
}

/// `entity.<hops…>.<leaf>`: the hops' types are checked, so the SQL names only declared types
/// and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityPath {
    pub hops: Vec<Hop>,
    pub leaf: Leaf,
}

/// A value a path is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    /// `actor.id`, `actor.email`, `actor.roles` or `actor.attributes.<name>` (the text after
    /// `actor.`).
    Actor(String),
}

impl Operand {
    /// The operand's value for `actor` (`None`: the actor has no such attribute).
    pub fn value(&self, actor: &Actor) -> Option<Value> {
        match self {
            Operand::Literal(v) => Some(v.clone()),
            Operand::Actor(name) => actor_value(actor, name),
        }
    }
}

/// An actor's attribute as rules see it.
pub fn actor_value(actor: &Actor, name: &str) -> Option<Value> {
    match name {
        "id" => Some(Value::String(actor.id.clone())),
        "email" => Some(Value::String(actor.email.clone())),
        "roles" => Some(Value::from(actor.roles.clone())),
        _ => match name.strip_prefix(ATTRIBUTES_PREFIX) {
            // A missing attribute, or one set to null, is missing: the comparison is false.
            Some(attr) => actor.attributes.get(attr).filter(|v| !v.is_null()).cloned(),
            None => None,
        },
    }
}

/// A compiled record rule.
#[derive(Debug, Clone, PartialEq)]
pub enum RowExpr {
    Const(bool),
    And(Vec<RowExpr>),
    Or(Vec<RowExpr>),
    Not(Box<RowExpr>),
    /// `path <op> value`.
    Compare {
        path: EntityPath,
        op: CmpOp,
        value: Operand,
    },
    /// `value in path` where the path's leaf is an array field.
    Contains {
        path: EntityPath,
        value: Operand,
    },
    /// `path in list` (literal list, or an actor attribute that is a list).
    InList {
        path: EntityPath,
        list: Operand,
    },
    /// `!!path` (`true`) or `!path` (`false`): the field is present and not null.
    Present {
        path: EntityPath,
        present: bool,
    },
}

/// The record rules of one type: role → rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeRowRules {
    rules: IndexMap<String, RowExpr>,
}

impl TypeRowRules {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, role: &str) -> Option<&RowExpr> {
        self.rules.get(role)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &RowExpr)> {
        self.rules.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Which rows of a type an actor sees.
#[derive(Debug, Clone, PartialEq)]
pub enum RowScope {
    /// Every row (no rule applies: the system, or a role with `view` and no rule).
    All,
    /// The rows matching any of these rules (one per role of the actor with `view` and a rule).
    Rules(Vec<RowExpr>),
}

impl RowScope {
    /// The scope of `actor` over `type_name`: `rules` of the roles that may view the type.
    pub fn of(actor: &Actor, type_name: &str, permissions: &Permissions, rules: Option<&TypeRowRules>) -> RowScope {
        if actor.system {
            return RowScope::All;
        }
        let Some(rules) = rules.filter(|r| !r.is_empty()) else { return RowScope::All };
        let mut out = Vec::new();
        for role in &actor.roles {
            if !permissions.allows(std::slice::from_ref(role), false, type_name, Action::View) {
                continue;
            }
            match rules.get(role) {
                None => return RowScope::All,
                Some(rule) => out.push(rule.clone()),
            }
        }
        RowScope::Rules(out)
    }

    pub fn is_all(&self) -> bool {
        matches!(self, RowScope::All)
    }
}

/// Compiles the `record_rules:` of type `type_name` (role → JSON-Logic).
pub fn compile_type_rules(
    ontology: &Ontology,
    type_name: &str,
    raw: &IndexMap<String, Value>,
) -> Result<TypeRowRules, Vec<EngineError>> {
    let mut rules = IndexMap::new();
    let mut errors = Vec::new();
    for (role, rule) in raw {
        let mut cx = Parser { ontology, type_name, nodes: 0 };
        match cx.expr(rule) {
            Ok(expr) => {
                rules.insert(role.clone(), expr);
            }
            Err(message) => {
                errors.push(EngineError::RecordRule { type_name: type_name.to_string(), role: role.clone(), message })
            }
        }
    }
    if errors.is_empty() {
        Ok(TypeRowRules { rules })
    } else {
        Err(errors)
    }
}

struct Parser<'a> {
    ontology: &'a Ontology,
    type_name: &'a str,
    nodes: usize,
}

/// A side of a comparison, before it is known which is the path.
enum Side {
    Path(EntityPath),
    Value(Operand),
}

impl Parser<'_> {
    fn expr(&mut self, v: &Value) -> Result<RowExpr, String> {
        self.nodes += 1;
        if self.nodes > MAX_RULE_NODES {
            return Err(format!("a record rule has at most {MAX_RULE_NODES} operations"));
        }
        match v {
            Value::Bool(b) => return Ok(RowExpr::Const(*b)),
            Value::Object(map) if map.len() == 1 => {}
            _ => {
                return Err(format!(
                    "expected an operation (`and`, `or`, `!`, `!!`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`) or true/false, found {}",
                    brief(v)
                ))
            }
        }
        let Some((op, args)) = v.as_object().and_then(|m| m.iter().next()) else {
            return Err("expected an operation".into());
        };
        let list: Vec<&Value> = match args {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        match op.as_str() {
            "and" | "or" => {
                if list.is_empty() {
                    return Err(format!("`{op}` needs at least one operand"));
                }
                let items = list.into_iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
                Ok(if op == "and" { RowExpr::And(items) } else { RowExpr::Or(items) })
            }
            "!" | "!!" => {
                let [arg] = list.as_slice() else { return Err(format!("`{op}` takes one operand")) };
                let present = op == "!!";
                if let Some(path) = self.try_path(arg)? {
                    return Ok(RowExpr::Present { path, present });
                }
                if present {
                    return Err("`!!` takes an entity path (`{\"var\": \"entity.<field>\"}`)".into());
                }
                Ok(RowExpr::Not(Box::new(self.expr(arg)?)))
            }
            "in" => {
                let [a, b] = list.as_slice() else { return Err("`in` takes two operands".into()) };
                match (self.side(a)?, self.side(b)?) {
                    (Side::Value(value), Side::Path(path)) => {
                        if !path.leaf.is_array() {
                            return Err(format!(
                                "`in`: `{}` is not an array field (to compare with one value, use `==`)",
                                path_text(&path)
                            ));
                        }
                        check_value(&value, path.leaf.value_kind(), false)?;
                        Ok(RowExpr::Contains { path, value })
                    }
                    (Side::Path(path), Side::Value(list)) => {
                        if path.leaf.is_array() {
                            return Err(format!("`in`: `{}` is an array field", path_text(&path)));
                        }
                        check_value(&list, path.leaf.value_kind(), true)?;
                        Ok(RowExpr::InList { path, list })
                    }
                    (Side::Path(_), Side::Path(_)) => {
                        Err("`in`: compare an entity path with a value or the actor, not with another path".into())
                    }
                    (Side::Value(_), Side::Value(_)) => {
                        Err("`in`: one operand must be an entity path (`{\"var\": \"entity.<field>\"}`)".into())
                    }
                }
            }
            other => {
                let Some(cmp) = CmpOp::parse(other) else {
                    return Err(format!(
                        "`{other}` cannot be used in a record rule (allowed: and, or, !, !!, ==, !=, <, <=, >, >=, in)"
                    ));
                };
                let [a, b] = list.as_slice() else { return Err(format!("`{other}` takes two operands")) };
                let (path, op, value) = match (self.side(a)?, self.side(b)?) {
                    (Side::Path(p), Side::Value(v)) => (p, cmp, v),
                    (Side::Value(v), Side::Path(p)) => (p, cmp.flipped(), v),
                    (Side::Path(_), Side::Path(_)) => {
                        return Err(format!(
                            "`{other}`: compare an entity path with a value or the actor, not with another path"
                        ))
                    }
                    (Side::Value(_), Side::Value(_)) => {
                        return Err(format!(
                            "`{other}`: one operand must be an entity path (`{{\"var\": \"entity.<field>\"}}`)"
                        ))
                    }
                };
                if path.leaf.is_array() {
                    return Err(format!("`{other}`: `{}` is an array field (use `in`)", path_text(&path)));
                }
                check_value(&value, path.leaf.value_kind(), false)?;
                if !matches!(op, CmpOp::Eq | CmpOp::Ne)
                    && matches!(path.leaf.value_kind(), FieldKind::Boolean | FieldKind::Reference | FieldKind::User)
                {
                    return Err(format!("`{other}`: `{}` cannot be ordered", path_text(&path)));
                }
                Ok(RowExpr::Compare { path, op, value })
            }
        }
    }

    fn side(&mut self, v: &Value) -> Result<Side, String> {
        if let Some(path) = self.try_path(v)? {
            return Ok(Side::Path(path));
        }
        if let Some(name) = var_name(v) {
            if let Some(attr) = name.strip_prefix("actor.") {
                if attr == "system" {
                    return Err("`actor.system` cannot be used in a record rule (the system sees every row)".into());
                }
                if let Some(user_attr) = attr.strip_prefix(ATTRIBUTES_PREFIX) {
                    if !is_attribute_name(user_attr) {
                        return Err(format!("`{name}`: `{user_attr}` is not an attribute name (snake_case)"));
                    }
                } else if !ACTOR_ATTRIBUTES.contains(&attr) {
                    return Err(format!(
                        "`{name}`: a record rule reads the actor's {} and attributes.<name>",
                        ACTOR_ATTRIBUTES.join(", ")
                    ));
                }
                return Ok(Side::Value(Operand::Actor(attr.to_string())));
            }
            return Err(format!("`{name}`: a record rule reads `entity.…` and `actor.…` only"));
        }
        match v {
            Value::Object(_) => Err(format!("an operand must be a `var` or a literal, found {}", brief(v))),
            Value::Array(items) if items.len() > MAX_LIST => Err(format!("a list has at most {MAX_LIST} values")),
            Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
                Err("a list holds only strings, numbers and booleans".into())
            }
            _ => Ok(Side::Value(Operand::Literal(v.clone()))),
        }
    }

    /// `{"var": "entity.…"}` as a checked path; `None` for anything else.
    fn try_path(&self, v: &Value) -> Result<Option<EntityPath>, String> {
        let Some(name) = var_name(v) else { return Ok(None) };
        let Some(rest) = name.strip_prefix("entity.") else { return Ok(None) };
        let segments: Vec<&str> = rest.split('.').collect();
        let mut type_name = self.type_name.to_string();
        let mut hops = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let ty = self.ontology.get(&type_name).ok_or_else(|| format!("`{name}`: unknown type `{type_name}`"))?;
            let column = match *seg {
                "id" => Some(Leaf::Id),
                "state" => Some(Leaf::State),
                "created_by" => Some(Leaf::CreatedBy),
                _ => None,
            };
            if let (true, Some(leaf)) = (last, column) {
                return Ok(Some(EntityPath { hops, leaf }));
            }
            let field = ty
                .def()
                .fields
                .get(*seg)
                .ok_or_else(|| format!("`{name}`: type `{type_name}` has no field `{seg}`"))?;
            if last {
                let items = field.items.as_ref().map(|i| i.kind);
                let ok =
                    field.kind.is_scalar() || (field.kind == FieldKind::Array && items.is_some_and(|k| k.is_scalar()));
                if !ok {
                    return Err(format!("`{name}`: `{seg}` is a {}, not a value or an array of values", field.kind));
                }
                return Ok(Some(EntityPath {
                    hops,
                    leaf: Leaf::Field { name: seg.to_string(), kind: field.kind, items },
                }));
            }
            let (FieldKind::Reference, Some(to)) = (field.kind, field.to.as_ref()) else {
                return Err(format!("`{name}`: `{seg}` is not a reference field, so the path cannot go through it"));
            };
            if hops.len() == MAX_HOPS {
                return Err(format!("`{name}`: a path follows at most {MAX_HOPS} references"));
            }
            hops.push(Hop { field: seg.to_string(), to: to.as_str().to_string() });
            type_name = to.as_str().to_string();
        }
        Err(format!("`{name}`: an empty path"))
    }
}

/// Whether `name` can name a user attribute: snake_case (`customer_id`), at most 64 bytes.
pub fn is_attribute_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// The name of `{"var": "…"}` (or `{"var": ["…"]}`).
fn var_name(v: &Value) -> Option<&str> {
    let obj = v.as_object().filter(|m| m.len() == 1)?;
    match obj.get("var")? {
        Value::String(s) => Some(s),
        Value::Array(a) if a.len() == 1 => a[0].as_str(),
        _ => None,
    }
}

/// Checks that a literal can be compared with a field of `kind` (actor attributes are checked
/// when bound: a value of the wrong type matches nothing).
fn check_value(value: &Operand, kind: FieldKind, list: bool) -> Result<(), String> {
    // A user field holds ids: `actor.email` would never match (a rule written before the field
    // became a user field, most likely).
    if matches!((kind, value), (FieldKind::User, Operand::Actor(name)) if name == "email") {
        return Err("a user field holds the user's id: compare it with `actor.id`, not `actor.email`".into());
    }
    let Operand::Literal(v) = value else { return Ok(()) };
    let items: Vec<&Value> = match (v, list) {
        (Value::Array(a), true) => a.iter().collect(),
        (_, true) => return Err(format!("expected a list of values, found {}", brief(v))),
        (Value::Array(_), false) => return Err("expected a single value, found a list".into()),
        (v, false) => vec![v],
    };
    for item in items {
        let fits = match (kind, item) {
            (_, Value::Null) => !list,
            (FieldKind::Number | FieldKind::Integer, Value::Number(_)) => true,
            (FieldKind::Decimal, v) => ontology::decimal::from_json(v).is_ok(),
            (FieldKind::Boolean, Value::Bool(_)) => true,
            (FieldKind::String | FieldKind::Enum | FieldKind::Date | FieldKind::Datetime, Value::String(_)) => true,
            (FieldKind::Reference | FieldKind::User, Value::String(s)) => uuid::Uuid::parse_str(s).is_ok(),
            _ => false,
        };
        if !fits {
            return Err(format!("{} cannot be compared with a {kind} field", brief(item)));
        }
    }
    Ok(())
}

fn path_text(p: &EntityPath) -> String {
    let mut s = String::from("entity");
    for h in &p.hops {
        s.push('.');
        s.push_str(&h.field);
    }
    s.push('.');
    s.push_str(match &p.leaf {
        Leaf::Id => "id",
        Leaf::State => "state",
        Leaf::CreatedBy => "created_by",
        Leaf::Field { name, .. } => name,
    });
    s
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use ontology::def::EntityTypeDef;
    use serde_json::json;

    use super::*;

    fn ontology() -> Ontology {
        let defs: Vec<EntityTypeDef> = serde_json::from_value(json!([
            { "name": "territory", "fields": {
                "name": { "type": "string" },
                "assigned_users": { "type": "array", "items": { "type": "string" } } } },
            { "name": "customer", "fields": {
                "name": { "type": "string" },
                "territory_id": { "type": "reference", "to": "territory" },
                "addresses": { "type": "array", "items": { "type": "object", "fields": { "city": { "type": "string" } } } } } },
            { "name": "order", "fields": {
                "customer_id": { "type": "reference", "to": "customer" },
                "total": { "type": "number" },
                "paid": { "type": "boolean" },
                "seller": { "type": "user", "role": "sales" } } },
        ]))
        .unwrap();
        ontology::compile::compile_types(defs).unwrap()
    }

    fn compile(rule: Value) -> Result<RowExpr, String> {
        let raw: IndexMap<String, Value> = [("sales".to_string(), rule)].into_iter().collect();
        match compile_type_rules(&ontology(), "order", &raw) {
            Ok(r) => Ok(r.get("sales").unwrap().clone()),
            Err(e) => Err(e[0].to_string()),
        }
    }

    #[test]
    fn paths_follow_references() {
        let r = compile(
            json!({ "in": [ { "var": "actor.email" }, { "var": "entity.customer_id.territory_id.assigned_users" } ] }),
        )
        .unwrap();
        let RowExpr::Contains { path, value } = r else { panic!("{r:?}") };
        assert_eq!(path.hops.len(), 2);
        assert_eq!(path.hops[1], Hop { field: "territory_id".into(), to: "territory".into() });
        assert_eq!(value, Operand::Actor("email".into()));
    }

    #[test]
    fn user_attributes_are_read_from_the_actor() {
        let r =
            compile(json!({ "==": [ { "var": "entity.customer_id" }, { "var": "actor.attributes.customer_id" } ] }))
                .unwrap();
        let RowExpr::Compare { value, .. } = r else { panic!("{r:?}") };
        assert_eq!(value, Operand::Actor("attributes.customer_id".into()));
        let mut actor =
            Actor { id: "u".into(), email: "u@x".into(), roles: vec![], system: false, attributes: Default::default() };
        assert_eq!(value.value(&actor), None);
        actor.attributes.insert("customer_id".into(), Value::Null);
        assert_eq!(value.value(&actor), None);
        actor.attributes.insert("customer_id".into(), json!("c-1"));
        assert_eq!(value.value(&actor), Some(json!("c-1")));
        assert_eq!(actor.to_context_value()["attributes"]["customer_id"], json!("c-1"));
    }

    #[test]
    fn sides_are_normalised() {
        let r = compile(json!({ "<": [ 100, { "var": "entity.total" } ] })).unwrap();
        assert!(matches!(r, RowExpr::Compare { op: CmpOp::Gt, .. }), "{r:?}");
        let r = compile(json!({ "!": { "var": "entity.paid" } })).unwrap();
        assert!(matches!(r, RowExpr::Present { present: false, .. }), "{r:?}");
        let r = compile(json!({ "!": { "==": [ { "var": "entity.state" }, "DRAFT" ] } })).unwrap();
        assert!(matches!(r, RowExpr::Not(_)), "{r:?}");
        let r = compile(json!({ "in": [ { "var": "entity.state" }, ["A", "B"] ] })).unwrap();
        assert!(matches!(r, RowExpr::InList { .. }), "{r:?}");
    }

    #[test]
    fn what_cannot_compile_is_refused_with_the_reason() {
        let cases = [
            (json!({ "==": [ { "var": "entity.nope" }, 1 ] }), "has no field `nope`"),
            (json!({ "==": [ { "var": "entity.total.x" }, 1 ] }), "not a reference field"),
            (json!({ "==": [ { "var": "entity.customer_id.territory_id.name.x" }, 1 ] }), "not a reference field"),
            (json!({ "==": [ { "var": "entity.customer_id.addresses" }, 1 ] }), "not a value or an array of values"),
            (json!({ "map": [ [1], 1 ] }), "cannot be used in a record rule"),
            (json!({ "==": [ { "var": "entity.total" }, "ten" ] }), "cannot be compared with a number field"),
            (json!({ "==": [ { "var": "entity.customer_id" }, "not-a-uuid" ] }), "cannot be compared"),
            (json!({ "==": [ { "var": "input.x" }, 1 ] }), "`entity.…` and `actor.…` only"),
            (json!({ "==": [ { "var": "entity.total" }, { "var": "entity.total" } ] }), "not with another path"),
            (json!({ "<": [ { "var": "entity.paid" }, true ] }), "cannot be ordered"),
            (json!({ "==": [ { "var": "actor.system" }, true ] }), "actor.system"),
            (json!({ "in": [ "x", { "var": "entity.total" } ] }), "not an array field"),
            (json!({ "==": [ { "var": "actor.territory" }, 1 ] }), "reads the actor's id, email, roles"),
            (
                json!({ "==": [ { "var": "entity.total" }, { "var": "actor.attributes.Bad-Name" } ] }),
                "not an attribute name",
            ),
            (json!("yes"), "expected an operation"),
            (json!({ "==": [ { "var": "entity.seller" }, { "var": "actor.email" } ] }), "compare it with `actor.id`"),
            (json!({ "<": [ { "var": "entity.seller" }, { "var": "actor.id" } ] }), "cannot be ordered"),
            (json!({ "==": [ { "var": "entity.seller" }, "sam@x.test" ] }), "cannot be compared with a user field"),
        ];
        for (rule, want) in cases {
            let err = compile(rule.clone()).unwrap_err();
            assert!(err.contains(want), "{rule}: {err}");
            assert!(err.contains("record_rules") || err.contains("role `sales`"), "{err}");
        }
    }

    #[test]
    fn a_user_field_is_compared_with_the_actors_id() {
        let r = compile(json!({ "==": [ { "var": "entity.seller" }, { "var": "actor.id" } ] })).unwrap();
        assert!(matches!(r, RowExpr::Compare { .. }), "{r:?}");
    }

    #[test]
    fn rules_are_bounded() {
        let mut rule = json!({ "==": [ { "var": "entity.total" }, 1 ] });
        for _ in 0..100 {
            rule = json!({ "and": [ rule ] });
        }
        assert!(compile(rule).unwrap_err().contains("at most"));
        let long: Vec<i64> = (0..2000).collect();
        assert!(compile(json!({ "in": [ { "var": "entity.total" }, long ] })).unwrap_err().contains("at most"));
    }

    #[test]
    fn scopes_add_up_over_roles() {
        let o = ontology();
        let raw: IndexMap<String, Value> =
            [("sales".to_string(), json!({ "==": [ { "var": "entity.total" }, 1 ] }))].into_iter().collect();
        let rules = compile_type_rules(&o, "order", &raw).unwrap();
        let perms = Permissions::new([("sales", None), ("manager", None), ("guest", Some(&IndexMap::new()))]);
        let actor = |roles: &[&str]| Actor {
            id: "u".into(),
            email: "u@x".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            system: false,
            attributes: Default::default(),
        };
        assert!(
            matches!(RowScope::of(&actor(&["sales"]), "order", &perms, Some(&rules)), RowScope::Rules(r) if r.len() == 1)
        );
        assert_eq!(RowScope::of(&actor(&["sales", "manager"]), "order", &perms, Some(&rules)), RowScope::All);
        // A role without view adds nothing.
        assert!(
            matches!(RowScope::of(&actor(&["sales", "guest"]), "order", &perms, Some(&rules)), RowScope::Rules(r) if r.len() == 1)
        );
        assert!(
            matches!(RowScope::of(&actor(&["guest"]), "order", &perms, Some(&rules)), RowScope::Rules(r) if r.is_empty())
        );
        let mut system = actor(&[]);
        system.system = true;
        assert_eq!(RowScope::of(&system, "order", &perms, Some(&rules)), RowScope::All);
    }
}
