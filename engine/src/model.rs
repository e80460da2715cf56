//! Plain data the store fills and the evaluation reads: an entity row, the actor, and what a
//! load returned.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Keys of the evaluation context's entity object that are not data fields. No field may use
/// them, and a script may not change them (the ontology's list).
pub const RESERVED: &[&str] = ontology::RESERVED_FIELDS;

/// Whether `key` is one of [`RESERVED`].
pub fn is_reserved(key: &str) -> bool {
    RESERVED.contains(&key)
}

/// One entity row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub id: Uuid,
    pub type_name: String,
    pub state: String,
    pub version: i64,
    /// The data fields (a JSON object).
    pub data: Value,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Entity {
    /// The entity as rules and scripts see it: its data fields, plus `id`, `type`, `state`,
    /// `version`, `created_by`, `updated_by`, `created_at`, `updated_at` (RFC 3339).
    pub fn to_context_value(&self) -> Value {
        let fields = self.data.as_object().map_or(0, Map::len);
        let mut map = Map::with_capacity(fields + 8);
        if let Value::Object(data) = &self.data {
            for (k, v) in data {
                if !is_reserved(k) {
                    map.insert(k.clone(), v.clone());
                }
            }
        }
        map.insert("id".into(), Value::String(self.id.to_string()));
        map.insert("type".into(), Value::String(self.type_name.clone()));
        map.insert("state".into(), Value::String(self.state.clone()));
        map.insert("version".into(), Value::from(self.version));
        map.insert("created_by".into(), Value::String(self.created_by.clone()));
        map.insert("updated_by".into(), Value::String(self.updated_by.clone()));
        map.insert("created_at".into(), Value::String(rfc3339(self.created_at)));
        map.insert("updated_at".into(), Value::String(rfc3339(self.updated_at)));
        Value::Object(map)
    }
}

/// Formats a timestamp the way the context shows it (`2026-01-02T03:04:05.123456Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Who fires a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub email: String,
    pub roles: Vec<String>,
    /// The system itself (timers, follow-ups, the demo loader): bypasses role checks.
    pub system: bool,
    /// The user's attributes (`user_attributes:` of the package, e.g. `customer_id`); empty for
    /// the system and API keys.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

impl Actor {
    /// The actor as rules and scripts see it.
    pub fn to_context_value(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "email": self.email,
            "roles": self.roles,
            "system": self.system,
            "attributes": self.attributes,
        })
    }

    /// The user the actor is, as a user field stores it: `None` for the system and API keys
    /// (their ids are not users' ids).
    pub fn user_id(&self) -> Option<Uuid> {
        if self.system {
            return None;
        }
        Uuid::parse_str(&self.id).ok()
    }

    /// Whether the actor may fire a transition open to `roles`.
    pub fn may(&self, roles: &[String]) -> bool {
        self.system || self.roles.iter().any(|r| roles.contains(r))
    }
}

/// What a load request returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// A load by id: the row, or `None` when there is no such row (or the id was null).
    One(Option<Entity>),
    /// A load by filter: the matching rows.
    Many(Vec<Entity>),
}

impl Loaded {
    /// The loaded rows, whatever the kind of load.
    pub fn rows(&self) -> &[Entity] {
        match self {
            Loaded::One(Some(e)) => std::slice::from_ref(e),
            Loaded::One(None) => &[],
            Loaded::Many(rows) => rows,
        }
    }

    /// The value the context shows under the load's name: an entity object or `null`, or an
    /// array of entity objects.
    pub fn to_context_value(&self) -> Value {
        match self {
            Loaded::One(Some(e)) => e.to_context_value(),
            Loaded::One(None) => Value::Null,
            Loaded::Many(rows) => Value::Array(rows.iter().map(Entity::to_context_value).collect()),
        }
    }
}

/// An order at version 3 in `DRAFT`, created by `u1` at `at` and updated by `u2` at `at`
/// (unit tests of the entity's forms).
#[cfg(test)]
pub(crate) fn test_order(id: Uuid, data: Value, at: DateTime<Utc>) -> Entity {
    Entity {
        id,
        type_name: "order".into(),
        state: "DRAFT".into(),
        version: 3,
        data,
        created_by: "u1".into(),
        updated_by: "u2".into(),
        created_at: at,
        updated_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_value_is_flat_with_reserved_keys() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").expect("valid").with_timezone(&Utc);
        let e = test_order(Uuid::nil(), json!({"notes": "n", "state": "sneaky"}), t);
        let v = e.to_context_value();
        assert_eq!(v["notes"], "n");
        assert_eq!(v["state"], "DRAFT");
        assert_eq!(v["version"], 3);
        assert_eq!(v["created_at"], "2026-01-02T03:04:05Z");
        assert_eq!(v["type"], "order");
    }
}
