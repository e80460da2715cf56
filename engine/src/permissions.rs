//! Type-level permissions per role (view, create, edit, delete), from `tenant.yaml`:
//!
//! ```yaml
//! roles:
//!   sales:
//!     permissions:
//!       order: [view, create, edit]
//!       "*": [view]            # every other type
//! ```
//!
//! A role that declares no `permissions` may do everything to every type (packages written
//! before permissions existed keep working; `tenant validate` warns about such a role when other
//! roles declare permissions). The system actor may do everything. Pure: the API asks, the store
//! answers 404/403 accordingly.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// What a role may do to entities of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    View,
    Create,
    Edit,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Create => "create",
            Action::Edit => "edit",
            Action::Delete => "delete",
        }
    }
}

/// The `permissions:` of one role: type name (or `*`) → actions.
pub type RolePermissions = IndexMap<String, Vec<Action>>;

#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// Every declared role → its permissions: type (or `*`) → actions, or `None` when the role
    /// declares none (it may do everything). A role not declared at all may do nothing.
    roles: HashMap<String, Option<HashMap<String, HashSet<Action>>>>,
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
        Permissions { roles }
    }

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
