//! The serde model of a type file (`types/<name>.yaml`, see `docs/tenant-package.md`).
//!
//! Plain data, deserialized as written: unknown keys are refused (a typo must not be silently
//! ignored), and whether the options fit together is checked by
//! [`CompiledType::compile`](crate::CompiledType::compile), which can say where the problem is.
//! Serializing skips what is at its default, so an exported package reads like a written one.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::{FieldName, TypeName};

/// One entity type: its fields, display title, number and (uninterpreted) workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityTypeDef {
    /// The type's name; the file name must match (checked by the `tenants` crate).
    pub name: TypeName,
    /// Human label, e.g. "Order".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Display title: a minijinja template over the entity's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A per-tenant sequence number rendered into a field once, at create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<NumberDef>,
    /// The data fields, in the order written.
    pub fields: IndexMap<FieldName, FieldDef>,
    /// Append-only (`immutable: true`): entities of the type are created and never updated or
    /// deleted, by anyone, through any route; the database refuses it too (a trigger on
    /// `entities`). What such a type may declare is checked by the `tenants` crate (no
    /// transitions, no `editable`, no `edit`/`delete` permission).
    #[serde(default, skip_serializing_if = "is_false")]
    pub immutable: bool,
    /// Unique constraints over several fields (`unique: [[a, b], { fields: [c, d],
    /// case_insensitive: true }]`): no two entities of the type (in the tenant) have the same
    /// values in all of them. One field alone says `unique: true` on the field instead. See
    /// [`EntityTypeDef::unique_constraints`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<UniqueDef>,
    /// Which entities each role sees (role → a JSON-Logic rule over `entity` and `actor`),
    /// kept raw: the `engine` crate compiles them to SQL (`engine::rows`). A role with `view`
    /// and no rule here sees every entity of the type.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub record_rules: IndexMap<String, Value>,
    /// The workflow, kept raw: the `engine` crate parses it (this crate sits below it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Value>,
}

impl EntityTypeDef {
    /// Every unique constraint of the type: the fields' `unique:` (in field order), then the
    /// type's `unique:` list. Not checked: [`CompiledType::compile`](crate::CompiledType::compile)
    /// refuses what does not fit.
    pub fn unique_constraints(&self) -> Vec<UniqueConstraint> {
        let fields = self.fields.iter().filter_map(|(name, f)| {
            let case_insensitive = match f.unique? {
                FieldUnique::Flag(false) => return None,
                FieldUnique::Flag(true) => false,
                FieldUnique::Options(o) => o.case_insensitive,
            };
            Some(UniqueConstraint { fields: vec![name.to_string()], case_insensitive, declared: None })
        });
        let listed = self.unique.iter().enumerate().map(|(i, u)| UniqueConstraint {
            fields: u.fields().iter().map(ToString::to_string).collect(),
            case_insensitive: u.case_insensitive(),
            declared: Some(i),
        });
        fields.chain(listed).collect()
    }
}

/// One unique constraint of a type, from a field's `unique:` or the type's `unique:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueConstraint {
    /// The top-level fields, in the order written.
    pub fields: Vec<String>,
    /// Compared in lower case (string fields only).
    pub case_insensitive: bool,
    /// Its index in the type's `unique:` list; `None` for a field's own `unique:`.
    pub declared: Option<usize>,
}

/// A field's `unique:`: `true`, or `{ case_insensitive: true }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FieldUnique {
    Flag(bool),
    Options(UniqueOptions),
}

/// `unique: { case_insensitive: true }` on a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueOptions {
    /// Compare the values in lower case (`"ABC"` and `"abc"` are the same).
    #[serde(default)]
    pub case_insensitive: bool,
}

/// One entry of a type's `unique:` list: `[a, b]`, or `{ fields: [a, b], case_insensitive: true }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum UniqueDef {
    Fields(Vec<FieldName>),
    Options(UniqueListOptions),
}

/// `{ fields: [a, b], case_insensitive: true }` in a type's `unique:` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniqueListOptions {
    pub fields: Vec<FieldName>,
    /// Compare every (string) field of the constraint in lower case.
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
}

impl UniqueDef {
    pub fn fields(&self) -> &[FieldName] {
        match self {
            UniqueDef::Fields(f) => f,
            UniqueDef::Options(o) => &o.fields,
        }
    }

    pub fn case_insensitive(&self) -> bool {
        match self {
            UniqueDef::Fields(_) => false,
            UniqueDef::Options(o) => o.case_insensitive,
        }
    }
}

// Deserialized by hand rather than `untagged`, so a mistake says what is expected (and which
// key is unknown) instead of "did not match any variant".
impl<'de> Deserialize<'de> for FieldUnique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FieldUnique;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`true`, `false` or `{ case_insensitive: true }`")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<FieldUnique, E> {
                Ok(FieldUnique::Flag(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<FieldUnique, A::Error> {
                UniqueOptions::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(FieldUnique::Options)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for UniqueDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UniqueDef;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of fields (`[a, b]`) or `{ fields: [a, b], case_insensitive: true }`")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<UniqueDef, A::Error> {
                Vec::<FieldName>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(UniqueDef::Fields)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<UniqueDef, A::Error> {
                UniqueListOptions::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(UniqueDef::Options)
            }
        }
        d.deserialize_any(V)
    }
}

/// `number: { field, template }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberDef {
    /// The field receiving the number: a top-level `string` field with `generated: true`.
    pub field: FieldName,
    /// A minijinja template; sees `seq`, `year`, `month`, `day` and the data fields.
    pub template: String,
}

/// The kind of a field (`type:` in YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    /// JSON string.
    String,
    /// JSON number.
    Number,
    /// JSON integer.
    Integer,
    /// An exact decimal with a declared `scale` (and `precision`): a canonical decimal string
    /// such as `"1250.00"` (see [`crate::decimal`]).
    Decimal,
    /// JSON boolean.
    Boolean,
    /// `"YYYY-MM-DD"`.
    Date,
    /// RFC 3339 date-time string.
    Datetime,
    /// One string of `values`.
    Enum,
    /// The id (uuid string) of an entity of type `to`.
    Reference,
    /// The id (uuid string) of a user of the tenant, optionally one having `role`. The store
    /// checks on every write that changes it that the user exists, is active and has the role.
    User,
    /// An object with `fields`.
    Object,
    /// An array of `items`.
    Array,
}

impl FieldKind {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::String => "string",
            FieldKind::Number => "number",
            FieldKind::Integer => "integer",
            FieldKind::Decimal => "decimal",
            FieldKind::Boolean => "boolean",
            FieldKind::Date => "date",
            FieldKind::Datetime => "datetime",
            FieldKind::Enum => "enum",
            FieldKind::Reference => "reference",
            FieldKind::User => "user",
            FieldKind::Object => "object",
            FieldKind::Array => "array",
        }
    }

    /// Whether values of the kind have an order lists compare with (`[gt]`, `[gte]`, `[lt]`,
    /// `[lte]`): text, numbers, dates.
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldKind::String
                | FieldKind::Number
                | FieldKind::Integer
                | FieldKind::Decimal
                | FieldKind::Date
                | FieldKind::Datetime
        )
    }

    /// Whether the value is a single JSON scalar (not an object or array).
    pub fn is_scalar(self) -> bool {
        !matches!(self, FieldKind::Object | FieldKind::Array)
    }
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One field. A flat struct rather than an enum per kind so the YAML stays a flat map; which
/// options fit which kind is checked at compile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// `type:` in YAML.
    #[serde(rename = "type")]
    pub kind: FieldKind,
    /// The client must provide it (unless `generated`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Filled in when missing (see [`CompiledType::apply_defaults`](crate::CompiledType::apply_defaults)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Human label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Filled by the server (e.g. a number); never required of the client.
    #[serde(default, skip_serializing_if = "is_false")]
    pub generated: bool,
    /// `enum`: the allowed strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// `reference`: the referenced type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TypeName>,
    /// `user`: the role the user must have (a role the package declares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `object`: its fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<IndexMap<FieldName, FieldDef>>,
    /// `array`: the element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<FieldDef>>,
    /// `decimal`: digits in all (default 18, at most 28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// `decimal`: digits after the point (required; at most the precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// `decimal`: how a value with more decimals than the scale is rounded; without it such a
    /// value is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<crate::decimal::Rounding>,
    /// `number`/`integer`/`decimal`: inclusive lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// `number`/`integer`/`decimal`: inclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// `string`: minimum length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// `string`: maximum length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// `string`: a regular expression the value must match (unanchored, as in JSON Schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// `string`: a JSON Schema format, e.g. `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `array`: minimum number of elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// `array`: maximum number of elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// Can be filtered on in list queries (gets an index).
    #[serde(default, skip_serializing_if = "is_false")]
    pub filterable: bool,
    /// Can be sorted on in list queries (gets an index).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sortable: bool,
    /// Takes part in full-text search.
    #[serde(default, skip_serializing_if = "is_false")]
    pub searchable: bool,
    /// No two entities of the type have the same value (top-level scalar fields): `true`, or
    /// `{ case_insensitive: true }`. Enforced by a unique index built when the version is
    /// published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<FieldUnique>,
}

impl FieldDef {
    /// A field of this kind with every option unset.
    pub fn new(kind: FieldKind) -> FieldDef {
        FieldDef {
            kind,
            required: false,
            default: None,
            label: None,
            description: None,
            generated: false,
            values: None,
            to: None,
            role: None,
            fields: None,
            items: None,
            precision: None,
            scale: None,
            rounding: None,
            minimum: None,
            maximum: None,
            min_length: None,
            max_length: None,
            pattern: None,
            format: None,
            min_items: None,
            max_items: None,
            filterable: false,
            sortable: false,
            searchable: false,
            unique: None,
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_yaml_ng::from_str::<FieldDef>("{ type: string, maxlength: 3 }").unwrap_err();
        assert!(err.to_string().contains("maxlength"), "{err}");
        let err = serde_yaml_ng::from_str::<EntityTypeDef>("{ name: a, fields: {}, colour: red }").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn bad_names_are_refused_while_parsing() {
        let err =
            serde_yaml_ng::from_str::<EntityTypeDef>("{ name: a, fields: { id: { type: string } } }").unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(serde_yaml_ng::from_str::<FieldDef>("{ type: text }").is_err());
    }

    #[test]
    fn unique_reads_its_forms_and_says_what_it_expects() {
        let field: FieldDef = serde_yaml_ng::from_str("{ type: string, unique: true }").unwrap();
        assert_eq!(field.unique, Some(FieldUnique::Flag(true)));
        let field: FieldDef = serde_yaml_ng::from_str("{ type: string, unique: { case_insensitive: true } }").unwrap();
        assert_eq!(field.unique, Some(FieldUnique::Options(UniqueOptions { case_insensitive: true })));
        assert_eq!(serde_json::to_value(&field).unwrap()["unique"], serde_json::json!({ "case_insensitive": true }));
        let err =
            serde_yaml_ng::from_str::<FieldDef>("{ type: string, unique: { case_sensitive: false } }").unwrap_err();
        assert!(err.to_string().contains("unknown field `case_sensitive`, expected `case_insensitive`"), "{err}");
        let err = serde_yaml_ng::from_str::<FieldDef>("{ type: string, unique: yes please }").unwrap_err();
        assert!(err.to_string().contains("expected `true`, `false` or `{ case_insensitive: true }`"), "{err}");

        let def: EntityTypeDef = serde_yaml_ng::from_str(
            "{ name: a, fields: { b: { type: string }, c: { type: string } }, \
               unique: [[b, c], { fields: [c], case_insensitive: true }] }",
        )
        .unwrap();
        let constraints = def.unique_constraints();
        assert_eq!(constraints.len(), 2);
        assert_eq!((constraints[1].fields.as_slice(), constraints[1].case_insensitive), (&["c".to_string()][..], true));
        let back: EntityTypeDef = serde_json::from_value(serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(back, def);
        let err = serde_yaml_ng::from_str::<EntityTypeDef>("{ name: a, fields: {}, unique: [b] }").unwrap_err();
        assert!(err.to_string().contains("expected a list of fields (`[a, b]`)"), "{err}");
    }

    #[test]
    fn serialization_skips_defaults() {
        let def: FieldDef = serde_yaml_ng::from_str("{ type: integer, minimum: 1 }").unwrap();
        assert_eq!(serde_json::to_value(&def).unwrap(), serde_json::json!({ "type": "integer", "minimum": 1.0 }));
    }
}
