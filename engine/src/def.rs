//! The serde model of a type's `workflow:` (see `docs/tenant-package.md`), parsed as written:
//! unknown keys are refused. Whether it fits together (states exist, rules compile, …) is
//! checked by [`crate::compiled`].

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EngineError;

/// The state of a type without a workflow.
pub const IMPLICIT_STATE: &str = "ACTIVE";

/// A type's workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDef {
    /// The states, in the order written.
    pub states: IndexMap<String, StateDef>,
    /// The transitions, in the order written.
    #[serde(default)]
    pub transitions: IndexMap<String, TransitionDef>,
}

impl WorkflowDef {
    /// Parses the raw `workflow:` value of a type; `None` gives the implicit workflow
    /// ([`WorkflowDef::implicit`]).
    pub fn parse(type_name: &str, raw: Option<&Value>) -> Result<WorkflowDef, EngineError> {
        match raw {
            None | Some(Value::Null) => Ok(WorkflowDef::implicit()),
            Some(v) => WorkflowDef::deserialize(v)
                .map_err(|e| EngineError::WorkflowSyntax { type_name: type_name.to_string(), message: e.to_string() }),
        }
    }

    /// The workflow of a type that declares none: one initial state `ACTIVE`, no transitions.
    pub fn implicit() -> WorkflowDef {
        let mut states = IndexMap::new();
        states.insert(IMPLICIT_STATE.to_string(), StateDef { kind: StateKind::Initial, ..StateDef::default() });
        WorkflowDef { states, transitions: IndexMap::new() }
    }
}

/// A state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StateDef {
    /// Initial (exactly one per workflow), active (the default) or terminal.
    #[serde(default)]
    pub kind: StateKind,
    /// Human label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The fields that may be edited (by PATCH) while the entity is in this state, and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editable: Option<Editable>,
    /// Transitions fired by the system when the entity has stayed in this state long enough.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<TimerDef>,
    /// Where the studio's designer draws the state. Layout only: kept in the package (and its
    /// hash), never read by evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

/// `position: { x: 120, y: 40 }` of a state: its place in the studio's workflow designer, in
/// the designer's units. Each coordinate is a finite number of at most [`MAX_COORDINATE`] in
/// absolute value (refused when parsed, so the error has its path).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Position {
    #[serde(deserialize_with = "coordinate")]
    pub x: f64,
    #[serde(deserialize_with = "coordinate")]
    pub y: f64,
}

/// The largest absolute value of a [`Position`] coordinate.
pub const MAX_COORDINATE: f64 = 1e6;

/// A coordinate of a [`Position`]: finite, within ±[`MAX_COORDINATE`].
fn coordinate<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if value.is_finite() && value.abs() <= MAX_COORDINATE {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "a position coordinate must be a finite number between -{MAX_COORDINATE} and {MAX_COORDINATE}, not {value}"
        )))
    }
}

/// `editable: { fields: [...], roles: [...] }` of a state: which data fields may be changed
/// outside a transition while the entity is in the state, and which roles may change them.
/// The engine only checks that the fields exist; the API enforces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Editable {
    /// Top-level data fields of the type.
    pub fields: Vec<String>,
    /// Roles that may edit them.
    pub roles: Vec<String>,
}

/// `timers: [{ after: "72h", transition: cancelOrder, input: {…} }]` of a state: once the
/// entity has been in the state for `after` (a humantime duration), the system fires
/// `transition` with `input`, unless the entity has left the state by then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerDef {
    /// How long after entering the state, e.g. `30m`, `72h`, `7days`.
    pub after: String,
    /// A transition available from the state.
    pub transition: String,
    /// Its input (validated against its input schema when compiled); `{}` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

/// The kind of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StateKind {
    /// Where new entities start.
    Initial,
    /// Any state in between.
    #[default]
    Active,
    /// No way out is expected.
    Terminal,
}

/// A transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionDef {
    /// The states it may be fired from (none for the create transition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// `create: true`: the create transition. It runs when an entity of the type is created
    /// (`POST …/entities/{type}`, an import row), in the same database transaction as the
    /// insert, and the entity is created in its `to` state; it declares no `from` and is never
    /// fired otherwise. At most one per workflow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create: bool,
    /// The state it leads to.
    pub to: String,
    /// Human label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The roles that may fire it (at least one).
    #[serde(default)]
    pub roles: Vec<String>,
    /// JSON Schema of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Related data the guards and the script read, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub load: IndexMap<String, LoadDef>,
    /// Four-eyes: the actor must not be the entity's creator (`creator`) nor anyone who fired
    /// one of the named transitions on the entity before. Checked before the guards; system
    /// actors are exempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub four_eyes: Vec<String>,
    /// Rules that must all hold, evaluated in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardDef>,
    /// A Rhai script computing the effects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Events emitted when the transition is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
}

/// The `four_eyes` entry that names the entity's creator rather than a transition.
pub const FOUR_EYES_CREATOR: &str = "creator";

/// A guard: a JSON-Logic rule and the message shown when it is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardDef {
    pub rule: Value,
    pub message: String,
}

/// A load: one entity by id, or the entities matching a filter (exactly one of `id`/`where`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadDef {
    /// The type of the loaded entities.
    #[serde(rename = "type")]
    pub type_name: String,
    /// JSON-Logic computing the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// Field (or `state`) → JSON-Logic or literal; an array value means "one of".
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub r#where: Option<IndexMap<String, Value>>,
    /// Lock the rows for the transaction; required for the script to change them.
    #[serde(default)]
    pub lock: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_defaults() {
        let wf = WorkflowDef::parse(
            "order",
            Some(&json!({
                "states": {"DRAFT": {"kind": "initial"}, "DONE": {}},
                "transitions": {"finish": {"from": ["DRAFT"], "to": "DONE", "roles": ["a"],
                    "load": {"c": {"type": "customer", "id": {"var": "entity.customer_id"}}}}}
            })),
        )
        .expect("parses");
        assert_eq!(wf.states["DONE"].kind, StateKind::Active);
        assert!(!wf.transitions["finish"].load["c"].lock);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = WorkflowDef::parse("order", Some(&json!({"states": {}, "transitons": {}}))).expect_err("typo");
        assert!(err.to_string().contains("transitons"), "{err}");
    }

    #[test]
    fn positions_are_kept_and_bounded() {
        let yaml = "states:\n  DRAFT: { kind: initial, position: { x: 120, y: -40.5 } }\n  DONE: { kind: terminal }\n";
        let wf: WorkflowDef = serde_yaml_ng::from_str(yaml).expect("parses");
        assert_eq!(wf.states["DRAFT"].position, Some(Position { x: 120.0, y: -40.5 }));
        assert_eq!(wf.states["DONE"].position, None);
        // Written back as read; no `position` key when there is none.
        let json = serde_json::to_value(&wf).expect("json");
        assert_eq!(json["states"]["DRAFT"]["position"], json!({"x": 120.0, "y": -40.5}));
        assert!(json["states"]["DONE"].get("position").is_none(), "{json}");
        let back: WorkflowDef = serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&wf).expect("yaml")).expect("back");
        assert_eq!(back, wf);

        for bad in [
            json!({"x": 1e7, "y": 0}),
            json!({"x": 0, "y": -1000001}),
            json!({"x": 0}),
            json!({"x": 0, "y": 0, "z": 0}),
        ] {
            let raw = json!({"states": {"A": {"kind": "initial", "position": bad}}});
            assert!(WorkflowDef::parse("t", Some(&raw)).is_err(), "{bad}");
        }
        let nan = "states:\n  A: { kind: initial, position: { x: .nan, y: 0 } }\n";
        let err = serde_yaml_ng::from_str::<WorkflowDef>(nan).expect_err("NaN");
        assert!(err.to_string().contains("finite"), "{err}");
    }

    #[test]
    fn implicit_workflow() {
        let wf = WorkflowDef::parse("x", None).expect("implicit");
        assert_eq!(wf.states.len(), 1);
        assert_eq!(wf.states[IMPLICIT_STATE].kind, StateKind::Initial);
    }
}
