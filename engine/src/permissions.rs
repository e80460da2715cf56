//! Type-level permissions per role (view, create, edit, delete, export), from `tenant.yaml`,
//! and each role's rules at creation (`create:`, which fields it may set and a condition that
//! must hold over the new data and the actor):
//!
//! ```yaml
//! roles:
//!   sales:
//!     permissions:
//!       order: [view, create, edit, export]
//!       "*": [view]            # every other type
//!     create:
//!       order:
//!         except: [discount_amount]          # or `fields: [...]`, the only fields it may set
//!         rule: { "==": [ { var: entity.customer_id }, { var: actor.id } ] }
//!         message: You may only order for yourself
//! ```
//!
//! A role that declares no `permissions` may do everything to every type (packages written
//! before permissions existed keep working; `tenant validate` warns about such a role when other
//! roles declare permissions). The system actor may do everything. Pure: the API asks, the store
//! answers 404/403 accordingly.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::eval::Rejection;
use crate::limits::Limits;
use crate::logic::{Logic, LogicContext};
use crate::model::{rfc3339, Actor, Entity};
use crate::rules::NamedRules;

/// What a role may do to entities of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    View,
    Create,
    Edit,
    Delete,
    /// Reading entities in bulk: the CSV export. `view` alone does not grant it.
    Export,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Create => "create",
            Action::Edit => "edit",
            Action::Delete => "delete",
            Action::Export => "export",
        }
    }
}

/// The `permissions:` of one role: type name (or `*`) → actions.
pub type RolePermissions = IndexMap<String, Vec<Action>>;

/// `roles.<role>.create.<type>` in `tenant.yaml`: what the role may set when it creates an
/// entity of the type, and a condition the new entity must meet. At most one of `fields` and
/// `except`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateRuleDef {
    /// The only top-level data fields the role may set at create (any other is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// Top-level data fields the role may not set at create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    /// A JSON-Logic rule over `entity` (the new data, defaults applied, with `type`, `state`:
    /// the initial state), `actor` and `now`, as guards see them; it must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Value>,
    /// The refusal's message when `rule` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The `create:` of one role: type name → its rules at creation.
pub type RoleCreateRules = IndexMap<String, CreateRuleDef>;

/// A compiled [`CreateRuleDef`].
#[derive(Debug)]
struct CreateRule {
    fields: Option<HashSet<String>>,
    except: HashSet<String>,
    rule: Option<(Logic, String)>,
}

/// The message of a create condition that declares none.
pub const DEFAULT_CREATE_MESSAGE: &str = "your roles may not create this entity";

/// A problem with a role's `create:` found when compiling it: the JSON pointer under
/// `tenant.yaml` and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRuleError {
    pub pointer: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// Every declared role → its permissions: type (or `*`) → actions, or `None` when the role
    /// declares none (it may do everything). A role not declared at all may do nothing.
    roles: HashMap<String, Option<HashMap<String, HashSet<Action>>>>,
    /// Role → type → its rules at creation (roles and types without any: no rule).
    create: std::sync::Arc<HashMap<String, HashMap<String, CreateRule>>>,
}

/// Why a creation is refused by the roles' `create:` rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateRefusal {
    /// Fields the actor's roles may not set (in the data's order).
    Fields(Vec<String>),
    /// The condition is false: its message.
    Rule(String),
}

impl Permissions {
    /// From each role's declared permissions (`None`: the role declares none).
    pub fn new<'a>(roles: impl IntoIterator<Item = (&'a str, Option<&'a RolePermissions>)>) -> Permissions {
        let roles = roles
            .into_iter()
            .map(|(role, perms)| {
                let by_type = perms
                    .map(|p| p.iter().map(|(t, actions)| (t.clone(), actions.iter().copied().collect())).collect());
                (role.to_string(), by_type)
            })
            .collect();
        Permissions { roles, create: std::sync::Arc::default() }
    }

    /// Adds the roles' rules at creation (`roles.<role>.create`), compiling their conditions with
    /// the tenant's named rules. Returns every problem found (a field list naming both `fields`
    /// and `except`, a rule that does not compile); the rules that compile are kept.
    pub fn with_create_rules<'a>(
        mut self,
        roles: impl IntoIterator<Item = (&'a str, &'a RoleCreateRules)>,
        rules: &NamedRules,
        limits: &Limits,
    ) -> (Permissions, Vec<CreateRuleError>) {
        let mut errors = Vec::new();
        let mut create: HashMap<String, HashMap<String, CreateRule>> = HashMap::new();
        for (role, by_type) in roles {
            for (type_name, def) in by_type {
                let at = format!("/roles/{}/create/{}", escape(role), escape(type_name));
                if def.fields.is_some() && !def.except.is_empty() {
                    errors.push(CreateRuleError {
                        pointer: at.clone(),
                        message: "declare `fields` (what the role may set) or `except` (what it may not), not both"
                            .into(),
                    });
                }
                let rule = match &def.rule {
                    None => None,
                    Some(r) => match rules
                        .expand(r)
                        .and_then(|r| Logic::compile_limited(&r, limits).map_err(|e| e.to_string()))
                    {
                        Ok(logic) => {
                            Some((logic, def.message.clone().unwrap_or_else(|| DEFAULT_CREATE_MESSAGE.to_string())))
                        }
                        Err(message) => {
                            errors.push(CreateRuleError { pointer: format!("{at}/rule"), message });
                            continue;
                        }
                    },
                };
                let compiled = CreateRule {
                    fields: def.fields.as_ref().map(|f| f.iter().cloned().collect()),
                    except: def.except.iter().cloned().collect(),
                    rule,
                };
                create.entry(role.to_string()).or_default().insert(type_name.clone(), compiled);
            }
        }
        self.create = std::sync::Arc::new(create);
        (self, errors)
    }

    /// Whether any role declares rules at creation for `type_name` (else
    /// [`Permissions::check_create`] allows anything).
    pub fn has_create_rules(&self, type_name: &str) -> bool {
        self.create.values().any(|by_type| by_type.contains_key(type_name))
    }

    /// Whether the actor may create an entity of `type_name` with `data` (the client's data, a
    /// JSON object) by its roles' `create:` rules, once `create` itself is allowed
    /// ([`Permissions::allows`]). Each of the actor's roles that may create the type is asked in
    /// turn: a role without rules for it allows any data; a role with rules allows data that sets
    /// only fields it may set and meets its condition. One role allowing is enough; when none
    /// does, the first role's refusal is the answer. `entity` is the new entity as rules see it
    /// ([`create_context_entity`]). Pure; the system may always.
    pub fn check_create(
        &self,
        actor: &Actor,
        type_name: &str,
        data: &Value,
        entity: &Value,
        now: DateTime<Utc>,
        limits: &Limits,
    ) -> Result<(), Rejection> {
        if actor.system {
            return Ok(());
        }
        let mut first: Option<CreateRefusal> = None;
        let mut context: Option<Value> = None;
        for role in
            actor.roles.iter().filter(|r| self.allows(std::slice::from_ref(r), false, type_name, Action::Create))
        {
            let Some(rule) = self.create.get(role).and_then(|t| t.get(type_name)) else { return Ok(()) };
            let refused: Vec<String> = data
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .filter(|k| rule.except.contains(*k) || rule.fields.as_ref().is_some_and(|f| !f.contains(*k)))
                .cloned()
                .collect();
            if !refused.is_empty() {
                first.get_or_insert(CreateRefusal::Fields(refused));
                continue;
            }
            let Some((logic, message)) = &rule.rule else { return Ok(()) };
            let context = context.get_or_insert_with(|| {
                let mut c = Map::with_capacity(4);
                c.insert("entity".into(), entity.clone());
                c.insert("input".into(), Value::Object(Map::new()));
                c.insert("actor".into(), actor.to_context_value());
                c.insert("now".into(), Value::String(rfc3339(now)));
                Value::Object(c)
            });
            let holds = crate::logic::budget(limits, || logic.truthy(&LogicContext::new(context)));
            match holds {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    first.get_or_insert(CreateRefusal::Rule(message.clone()));
                }
                Err(crate::EngineError::RuleLimit { message }) => {
                    return Err(Rejection::RuleLimit { at: format!("create rule of role `{role}`"), message })
                }
                // A rule that cannot be evaluated on this data does not hold.
                Err(_) => {
                    first.get_or_insert(CreateRefusal::Rule(message.clone()));
                }
            }
        }
        match first {
            None => Ok(()),
            Some(refusal) => Err(Rejection::CreateRefused { type_name: type_name.to_string(), refusal }),
        }
    }
}

/// The new entity as a create condition sees it (the shape guards see: data fields plus `id`,
/// `type`, `state`, …), before it is written.
pub fn create_context_entity(type_name: &str, state: &str, data: &Value, actor: &Actor, now: DateTime<Utc>) -> Value {
    Entity {
        id: uuid::Uuid::nil(),
        type_name: type_name.to_string(),
        state: state.to_string(),
        version: 0,
        data: data.clone(),
        created_by: actor.id.clone(),
        updated_by: actor.id.clone(),
        created_at: now,
        updated_at: now,
    }
    .to_context_value()
}

/// `~` and `/` escaped for a JSON pointer segment.
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl Permissions {
    /// Whether any of `roles` may do `action` to entities of `type_name`.
    pub fn allows(&self, roles: &[String], system: bool, type_name: &str, action: Action) -> bool {
        if system {
            return true;
        }
        roles.iter().any(|role| match self.roles.get(role) {
            None => false,
            Some(None) => true,
            Some(Some(by_type)) => {
                by_type.get(type_name).or_else(|| by_type.get("*")).is_some_and(|actions| actions.contains(&action))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms() -> Permissions {
        let sales: RolePermissions =
            [("order".to_string(), vec![Action::View, Action::Create]), ("*".to_string(), vec![Action::View])]
                .into_iter()
                .collect();
        let nothing: RolePermissions = IndexMap::new();
        Permissions::new([("sales", Some(&sales)), ("guest", Some(&nothing)), ("admin", None)])
    }

    #[test]
    fn a_type_entry_overrides_the_wildcard() {
        let p = perms();
        let sales = ["sales".to_string()];
        assert!(p.allows(&sales, false, "order", Action::Create));
        assert!(!p.allows(&sales, false, "order", Action::Delete));
        assert!(p.allows(&sales, false, "product", Action::View));
        assert!(!p.allows(&sales, false, "product", Action::Edit));
    }

    fn actor(roles: &[&str]) -> Actor {
        Actor {
            id: "u1".into(),
            email: "c@x.test".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            system: false,
            attributes: Default::default(),
        }
    }

    fn with_create_rules() -> Permissions {
        let mut create = IndexMap::new();
        let customer: RoleCreateRules = serde_json::from_value(serde_json::json!({
            "order": {
                "fields": ["email", "qty"],
                "rule": { "==": [ { "var": "entity.email" }, { "var": "actor.email" } ] },
                "message": "only for yourself"
            }
        }))
        .expect("rules");
        let sales: RoleCreateRules =
            serde_json::from_value(serde_json::json!({ "order": { "except": ["paid"] } })).expect("rules");
        create.insert("customer", customer);
        create.insert("sales", sales);
        let all: RolePermissions = [("*".to_string(), vec![Action::View, Action::Create])].into_iter().collect();
        let (p, errors) = Permissions::new([("customer", Some(&all)), ("sales", Some(&all)), ("admin", None)])
            .with_create_rules(
                create.iter().map(|(r, c)| (*r, c)),
                &NamedRules::compile(&IndexMap::new(), &mut Vec::new()),
                &Limits::default(),
            );
        assert!(errors.is_empty(), "{errors:?}");
        p
    }

    fn check(p: &Permissions, roles: &[&str], data: Value) -> Result<(), Rejection> {
        let a = actor(roles);
        let now = Utc::now();
        let entity = create_context_entity("order", "NEW", &data, &a, now);
        p.check_create(&a, "order", &data, &entity, now, &Limits::default())
    }

    fn refusal(r: Result<(), Rejection>) -> CreateRefusal {
        match r {
            Err(Rejection::CreateRefused { refusal, .. }) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn create_rules_refuse_fields_and_false_conditions() {
        let p = with_create_rules();
        let mine = serde_json::json!({ "email": "c@x.test", "qty": 1 });
        assert!(check(&p, &["customer"], mine.clone()).is_ok());
        let paid = serde_json::json!({ "email": "c@x.test", "qty": 1, "paid": true, "note": null });
        assert_eq!(refusal(check(&p, &["customer"], paid.clone())), CreateRefusal::Fields(vec!["paid".into()]));
        assert_eq!(refusal(check(&p, &["sales"], paid.clone())), CreateRefusal::Fields(vec!["paid".into()]));
        let theirs = serde_json::json!({ "email": "d@x.test", "qty": 1 });
        assert_eq!(refusal(check(&p, &["customer"], theirs.clone())), CreateRefusal::Rule("only for yourself".into()));
        // One role allowing is enough; a role without rules allows anything; the system may.
        assert!(check(&p, &["customer", "sales"], theirs).is_ok());
        assert!(check(&p, &["admin"], paid.clone()).is_ok());
        assert!(p
            .check_create(
                &Actor { system: true, ..actor(&[]) },
                "order",
                &paid,
                &Value::Null,
                Utc::now(),
                &Limits::default()
            )
            .is_ok());
    }

    #[test]
    fn create_rules_that_do_not_fit_are_reported_with_their_place() {
        let bad: RoleCreateRules = serde_json::from_value(serde_json::json!({
            "order": { "fields": ["a"], "except": ["b"], "rule": { "frobnicate": [] } }
        }))
        .expect("parses");
        let (_, errors) = Permissions::new([]).with_create_rules(
            [("r/1", &bad)],
            &NamedRules::compile(&IndexMap::new(), &mut Vec::new()),
            &Limits::default(),
        );
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/roles/r~11/create/order", "/roles/r~11/create/order/rule"]);
    }

    #[test]
    fn roles_add_up_and_undeclared_permissions_allow_everything() {
        let p = perms();
        assert!(!p.allows(&["guest".to_string()], false, "order", Action::View));
        assert!(p.allows(&["guest".to_string(), "sales".to_string()], false, "order", Action::View));
        assert!(p.allows(&["admin".to_string()], false, "anything", Action::Delete));
        assert!(!p.allows(&[], false, "order", Action::View), "no roles, no access");
        assert!(!p.allows(&["intruder".to_string()], false, "order", Action::View), "undeclared roles get nothing");
        assert!(p.allows(&[], true, "order", Action::Delete), "the system may");
    }
}
