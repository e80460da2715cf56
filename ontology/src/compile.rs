//! Compiling type definitions: checking that every field's options fit its kind, generating
//! the JSON Schema of the entity's data and its validator, parsing the templates, and
//! collecting the references between types.
//!
//! Everything that can be decided about a type is decided here, once per published package
//! version, so the per-request work ([`CompiledType::validate`], [`CompiledType::apply_defaults`],
//! the renders) does no parsing and, for valid data, no allocation beyond the validator's own.
//!
//! Field paths in errors and [`Reference`]s use dots for nesting and `[]` for array elements
//! (`items[].product_id`); validation errors use JSON pointers into the data
//! (`/items/0/product_id`).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use indexmap::IndexMap;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::{Location, LocationSegment};
use jsonschema::{Draft, PatternOptions, ValidationError, Validator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::def::{EntityTypeDef, FieldDef, FieldKind, UniqueConstraint};
use crate::error::OntologyError;
use crate::names::{FieldName, TypeName};
use crate::template::Template;

/// The dialect of the generated schemas.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Shape of a `date`, besides `format: date`: consumers of the schema (the studio's forms) may
/// not assert formats, and a pattern they all understand.
const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

/// Shape of a stored decimal (the canonical form of [`crate::decimal`]).
const DECIMAL_PATTERN: &str = "^-?[0-9]+(\\.[0-9]+)?$";

/// Whether `minimum` and `maximum` apply to the kind.
fn is_numeric(kind: FieldKind) -> bool {
    matches!(kind, FieldKind::Number | FieldKind::Integer | FieldKind::Decimal)
}

/// What a decimal field enforces; `None` for other kinds (or a decimal field without a scale,
/// which does not compile).
pub fn decimal_spec(field: &FieldDef) -> Option<crate::decimal::Spec> {
    if field.kind != FieldKind::Decimal {
        return None;
    }
    let bound = |b: Option<f64>| b.and_then(|b| crate::decimal::from_f64(b).ok());
    Some(crate::decimal::Spec {
        precision: field.precision.unwrap_or(crate::decimal::DEFAULT_PRECISION),
        scale: field.scale?,
        rounding: field.rounding,
        minimum: bound(field.minimum),
        maximum: bound(field.maximum),
    })
}

/// Whether `value` is the field's declared default (a decimal compared by its value: `"0.00"`
/// is the default `0`).
pub fn is_default(field: &FieldDef, value: &Value) -> bool {
    let Some(default) = &field.default else { return false };
    match decimal_spec(field) {
        Some(spec) => spec.canonical(default).is_ok_and(|d| spec.canonical(value).is_ok_and(|v| v == d)),
        None => default == value,
    }
}

/// Deepest nesting of objects and arrays a type may declare. Far beyond any real document, and
/// keeps the recursive walks here and in the validator shallow.
const MAX_DEPTH: usize = 16;

/// Builds a validator with the options every schema of this crate is checked with.
fn build_validator(schema: &Value) -> Result<Validator, ValidationError<'static>> {
    jsonschema::draft202012::options()
        // 2020-12 treats `format` as an annotation by default; dates and uuids must be real.
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        // Patterns come from tenants: the `regex` engine runs in linear time (no lookaround or
        // backreferences, which is the point: no catastrophic backtracking).
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
}

/// A field error found by [`CompiledType::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON pointer into the data, e.g. `/items/0/quantity`; for a missing required property,
    /// the property's own pointer (`/customer_id`). `""` is the data itself.
    pub path: String,
    /// Human message, e.g. `is required`, `must be >= 1`.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A reference field, wherever it is nested.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// Field path, e.g. `customer_id` or `items[].product_id`.
    pub path: String,
    /// The referenced type.
    pub to: TypeName,
}

/// A user field (`type: user`), wherever it is nested.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserField {
    /// Field path, e.g. `driver_id` or `stops[].signed_by`.
    pub path: String,
    /// The role the user must have, if the field names one.
    pub role: Option<String>,
}

/// A checked entity type, ready to validate data and render its templates. Immutable; share it
/// in an `Arc`.
pub struct CompiledType {
    def: EntityTypeDef,
    schema: Value,
    validator: Validator,
    title: Option<Template>,
    /// The reference fields the title names by their entities' titles (`title_of`).
    title_references: Vec<Reference>,
    number: Option<Template>,
    references: Vec<Reference>,
    users: Vec<UserField>,
    /// Lets [`CompiledType::apply_defaults`] return at once for types without any default.
    has_defaults: bool,
    /// Lets the decimal walks return at once for types without any decimal field.
    has_decimals: bool,
}

impl std::fmt::Debug for CompiledType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledType")
            .field("name", &self.def.name)
            .field("fields", &self.def.fields.len())
            .field("references", &self.references)
            .finish_non_exhaustive()
    }
}

impl CompiledType {
    /// Checks `def` and compiles it. Fails on the first problem found, naming its field path.
    pub fn compile(def: EntityTypeDef) -> Result<CompiledType, OntologyError> {
        let checker = Checker { type_name: def.name.as_str() };
        let mut found = Found::default();
        checker.check_fields(&def.fields, "", 0, &mut found)?;
        let Found { references, users } = found;
        checker.check_number(&def)?;
        checker.check_unique(&def)?;

        let schema = root_schema(&def);
        let validator =
            build_validator(&schema).map_err(|err| OntologyError::Schema(format!("type {}: {err}", def.name)))?;
        let title = def.title.as_deref().map(|source| checker.template("title", source)).transpose()?;
        let number =
            def.number.as_ref().map(|number| checker.template("number.template", &number.template)).transpose()?;
        // `tenant validate` says when `title_of` is applied to anything else (or in a number):
        // such a use renders the value as it is.
        let title_references = match &title {
            Some(t) => references.iter().filter(|r| t.titled_variables().contains(&r.path)).cloned().collect(),
            None => Vec::new(),
        };
        let has_defaults = def.fields.values().any(has_defaults);
        let has_decimals = def.fields.values().any(has_decimals);

        Ok(CompiledType {
            def,
            schema,
            validator,
            title,
            title_references,
            number,
            references,
            users,
            has_defaults,
            has_decimals,
        })
    }

    /// The type's name.
    pub fn name(&self) -> &TypeName {
        &self.def.name
    }

    /// The definition it was compiled from.
    pub fn def(&self) -> &EntityTypeDef {
        &self.def
    }

    /// The JSON Schema (draft 2020-12) of the entity's data.
    pub fn json_schema(&self) -> &Value {
        &self.schema
    }

    /// Validates the entity's data, returning every error.
    pub fn validate(&self, data: &Value) -> Result<(), Vec<FieldError>> {
        // The common case costs one pass and builds no error values.
        if self.validator.is_valid(data) {
            return Ok(());
        }
        let mut errors = Vec::new();
        for err in self.validator.iter_errors(data) {
            self.describe(&err, &mut errors);
        }
        if errors.is_empty() {
            // `is_valid` and `iter_errors` disagreeing would be a validator bug; still refuse.
            errors.push(FieldError { path: String::new(), message: "is invalid".into() });
        }
        Err(errors)
    }

    /// Whether the type has a `decimal` field, at any depth.
    pub fn has_decimals(&self) -> bool {
        self.has_decimals
    }

    /// Puts the value of every decimal field in its canonical form (a number or any decimal
    /// string becomes `"1250.00"`), rounding where the field declares `rounding`. A value that is
    /// not a decimal, has more decimals than the scale (and no rounding), more digits than the
    /// precision, or is out of bounds is left as it was and returned as a field error.
    pub fn normalize(&self, data: &mut Value) -> Result<(), Vec<FieldError>> {
        if !self.has_decimals {
            return Ok(());
        }
        let mut errors = Vec::new();
        let mut pointer = String::new();
        walk_decimals(&self.def.fields, data, &mut pointer, &mut |field, value, at| {
            let Some(spec) = decimal_spec(field) else { return };
            match spec.canonical(value) {
                Ok(canonical) => {
                    if value.as_str() != Some(canonical.as_str()) {
                        *value = Value::String(canonical);
                    }
                }
                Err(message) => errors.push(FieldError { path: at.to_owned(), message }),
            }
        });
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// What every write checks: [`CompiledType::normalize`], then [`CompiledType::validate`]
    /// (a field refused by the first is not reported again by the second).
    pub fn prepare(&self, data: &mut Value) -> Result<(), Vec<FieldError>> {
        let normalized = self.normalize(data);
        match (normalized, self.validate(data)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(errors), Ok(())) | (Ok(()), Err(errors)) => Err(errors),
            (Err(mut errors), Err(more)) => {
                for e in more {
                    if !errors.iter().any(|known| known.path == e.path) {
                        errors.push(e);
                    }
                }
                Err(errors)
            }
        }
    }

    /// Calls `f` with the value of every decimal field present in `data`, at any depth (for
    /// readers that want decimals as numbers of their own: rules, scripts, SQL).
    pub fn for_each_decimal(&self, data: &mut Value, f: &mut dyn FnMut(&mut Value)) {
        if self.has_decimals {
            let mut pointer = String::new();
            walk_decimals(&self.def.fields, data, &mut pointer, &mut |_, value, _| f(value));
        }
    }

    /// Fills in missing fields that have a `default`, at every depth: inside objects, and inside
    /// each element of arrays. Present values (even `null`) are never overwritten, and missing
    /// objects are not created unless they have a default themselves.
    pub fn apply_defaults(&self, data: &mut Value) {
        if self.has_defaults {
            fill_defaults(&self.def.fields, data);
        }
    }

    /// Renders the display title over the data; `None` without a title template or when it
    /// renders blank (e.g. the number is not assigned yet), so callers can fall back.
    pub fn render_title(&self, data: &Value) -> Result<Option<String>, OntologyError> {
        let Some(template) = &self.title else {
            return Ok(None);
        };
        let title = template.render(data, &[]).map_err(|err| self.template_error("title", &err))?;
        let title = title.trim();
        Ok((!title.is_empty()).then(|| title.to_owned()))
    }

    /// The reference fields the title names by their entities' titles (`{{ product_id |
    /// title_of }}`): what [`CompiledType::render_title_with`] wants looked up.
    pub fn title_references(&self) -> &[Reference] {
        &self.title_references
    }

    /// Renders the display title as [`CompiledType::render_title`] does, with `titles` (entity
    /// id → its title) for the references it names by title; one absent renders as its id.
    pub fn render_title_with(
        &self,
        data: &Value,
        titles: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<String>, OntologyError> {
        let Some(template) = &self.title else {
            return Ok(None);
        };
        let title = template.render_with_titles(data, titles).map_err(|err| self.template_error("title", &err))?;
        let title = title.trim();
        Ok((!title.is_empty()).then(|| title.to_owned()))
    }

    /// The field the number is rendered into, if the type has a number.
    pub fn number_field(&self) -> Option<&str> {
        self.def.number.as_ref().map(|number| number.field.as_str())
    }

    /// Renders the number for sequence value `seq`. The template sees the data's fields and
    /// `seq`, `year` (4 digits), `month` and `day` (2 digits), which win over fields of the
    /// same name. `None` if the type has no number.
    pub fn render_number(&self, seq: i64, now: DateTime<Utc>, data: &Value) -> Result<Option<String>, OntologyError> {
        let Some(template) = &self.number else {
            return Ok(None);
        };
        let number = template
            .render(data, &number_variables(seq, now))
            .map_err(|err| self.template_error("number.template", &err))?;
        if number.trim().is_empty() {
            return Err(OntologyError::Template {
                type_name: self.def.name.to_string(),
                path: "number.template".into(),
                message: "rendered an empty number".into(),
            });
        }
        Ok(Some(number))
    }

    /// Every reference field, nested ones included, in definition order.
    pub fn references(&self) -> Vec<Reference> {
        self.references.clone()
    }

    /// Every user field (`type: user`), nested ones included, in definition order.
    pub fn user_fields(&self) -> &[UserField] {
        &self.users
    }

    /// The field at a dotted path: `customer_id`, `shipping.method`, `items.product_id` (array
    /// elements' fields are reached through the array's name; `items[].product_id` works too).
    /// `items` is the array field; `items[]` its element.
    pub fn field(&self, path: &str) -> Option<&FieldDef> {
        let mut found: Option<&FieldDef> = None;
        for segment in path.split('.') {
            let name = segment.trim_end_matches("[]");
            let fields = match found {
                None => &self.def.fields,
                Some(mut field) => {
                    while field.kind == FieldKind::Array {
                        field = field.items.as_deref()?;
                    }
                    field.fields.as_ref()?
                }
            };
            let mut field = fields.get(name)?;
            for _ in 0..(segment.len() - name.len()) / 2 {
                field = field.items.as_deref()?;
            }
            found = Some(field);
        }
        found
    }

    fn template_error(&self, path: &str, err: &minijinja::Error) -> OntologyError {
        OntologyError::Template { type_name: self.def.name.to_string(), path: path.into(), message: err.to_string() }
    }

    /// The field definition of the value at `location` in the data; `None` for the data itself.
    fn field_at(&self, location: &Location) -> Option<&FieldDef> {
        let mut found: Option<&FieldDef> = None;
        for segment in location.segments() {
            found = match (found, segment) {
                (None, LocationSegment::Property(name)) => self.def.fields.get(name.as_ref()),
                (Some(field), LocationSegment::Property(name)) => field.fields.as_ref()?.get(name.as_ref()),
                (Some(field), LocationSegment::Index(_)) => field.items.as_deref(),
                (None, LocationSegment::Index(_)) => None,
            };
            found?;
        }
        found
    }

    /// Turns one validator error into field errors with our paths and messages.
    fn describe(&self, err: &ValidationError<'_>, out: &mut Vec<FieldError>) {
        let location = err.instance_path();
        let field = self.field_at(location);
        let mut push = |path: String, message: String| {
            // A date failing both `format` and `pattern` is one problem, said once.
            if !out.iter().any(|e| e.path == path && e.message == message) {
                out.push(FieldError { path, message });
            }
        };
        let here = || location.as_str().to_owned();
        match err.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                push(child_pointer(location.as_str(), name), "is required".into());
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    push(child_pointer(location.as_str(), name), "unknown field".into());
                }
            }
            ValidationErrorKind::Type { .. } => push(here(), kind_message(field)),
            ValidationErrorKind::Format { format } => {
                let message = match field.map(|f| f.kind) {
                    Some(FieldKind::Date | FieldKind::Datetime | FieldKind::Reference | FieldKind::User) => {
                        kind_message(field)
                    }
                    _ if format == "email" => "must be an email address".into(),
                    _ => format!("must be a valid {format}"),
                };
                push(here(), message);
            }
            ValidationErrorKind::Pattern { pattern } => {
                let message = match field.map(|f| f.kind) {
                    Some(FieldKind::Date | FieldKind::Decimal) => kind_message(field),
                    _ => format!("must match the pattern {pattern}"),
                };
                push(here(), message);
            }
            ValidationErrorKind::Enum { options } => {
                let values = options
                    .as_array()
                    .map(|values| {
                        values
                            .iter()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                push(here(), format!("must be one of: {values}"));
            }
            ValidationErrorKind::Minimum { limit } => push(here(), format!("must be >= {limit}")),
            ValidationErrorKind::Maximum { limit } => push(here(), format!("must be <= {limit}")),
            ValidationErrorKind::MinLength { limit } => {
                push(here(), format!("must be at least {limit} characters long"));
            }
            ValidationErrorKind::MaxLength { limit } => {
                push(here(), format!("must be at most {limit} characters long"));
            }
            ValidationErrorKind::MinItems { limit } => {
                push(here(), format!("must have at least {limit} items"));
            }
            ValidationErrorKind::MaxItems { limit } => {
                push(here(), format!("must have at most {limit} items"));
            }
            _ => push(here(), err.to_string()),
        }
    }
}

/// The JSON pointer of property `name` of the value at `parent`.
fn child_pointer(parent: &str, name: &str) -> String {
    let mut pointer = String::with_capacity(parent.len() + name.len() + 1);
    pointer.push_str(parent);
    pointer.push('/');
    for c in name.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
    pointer
}

/// What a value of the field at hand must be; for type and format errors.
fn kind_message(field: Option<&FieldDef>) -> String {
    let Some(field) = field else {
        return "must be an object".into();
    };
    match field.kind {
        FieldKind::String => "must be a string".into(),
        FieldKind::Number => "must be a number".into(),
        FieldKind::Integer => "must be an integer".into(),
        FieldKind::Decimal => "must be a decimal number (e.g. \"12.50\")".into(),
        FieldKind::Boolean => "must be true or false".into(),
        FieldKind::Date => "must be a date (YYYY-MM-DD)".into(),
        FieldKind::Datetime => "must be a date-time (RFC 3339, e.g. 2026-01-31T09:30:00Z)".into(),
        FieldKind::Enum => format!("must be one of: {}", field.values.as_deref().unwrap_or_default().join(", ")),
        FieldKind::Reference => match &field.to {
            Some(to) => format!("must be the id (a uuid) of a {to}"),
            None => "must be an id (a uuid)".into(),
        },
        FieldKind::User => match &field.role {
            Some(role) => format!("must be the id (a uuid) of a user with the role {role}"),
            None => "must be the id (a uuid) of a user".into(),
        },
        FieldKind::Object => "must be an object".into(),
        FieldKind::Array => "must be an array".into(),
    }
}

fn has_decimals(field: &FieldDef) -> bool {
    field.kind == FieldKind::Decimal
        || field.fields.as_ref().is_some_and(|fields| fields.values().any(has_decimals))
        || field.items.as_deref().is_some_and(has_decimals)
}

/// Calls `f(field, value, pointer)` for each decimal field's value in `data` (`pointer` is the
/// JSON pointer of the value).
fn walk_decimals(
    fields: &IndexMap<FieldName, FieldDef>,
    data: &mut Value,
    pointer: &mut String,
    f: &mut dyn FnMut(&FieldDef, &mut Value, &str),
) {
    let Value::Object(map) = data else {
        return;
    };
    for (name, field) in fields.iter().filter(|(_, field)| has_decimals(field)) {
        if let Some(value) = map.get_mut(name.as_str()) {
            let len = pointer.len();
            pointer.push('/');
            pointer.push_str(name.as_str());
            walk_value(field, value, pointer, f);
            pointer.truncate(len);
        }
    }
}

fn walk_value(
    field: &FieldDef,
    value: &mut Value,
    pointer: &mut String,
    f: &mut dyn FnMut(&FieldDef, &mut Value, &str),
) {
    match (field.kind, value) {
        (FieldKind::Decimal, value) => f(field, value, pointer),
        (FieldKind::Object, value) => {
            if let Some(fields) = &field.fields {
                walk_decimals(fields, value, pointer, f);
            }
        }
        (FieldKind::Array, Value::Array(elements)) => {
            if let Some(items) = field.items.as_deref() {
                for (i, element) in elements.iter_mut().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    walk_value(items, element, pointer, f);
                    pointer.truncate(len);
                }
            }
        }
        _ => {}
    }
}

fn has_defaults(field: &FieldDef) -> bool {
    field.default.is_some()
        || field.fields.as_ref().is_some_and(|fields| fields.values().any(has_defaults))
        || field.items.as_deref().is_some_and(has_defaults)
}

fn fill_defaults(fields: &IndexMap<FieldName, FieldDef>, data: &mut Value) {
    let Value::Object(map) = data else {
        return;
    };
    for (name, field) in fields {
        if let Some(default) = &field.default {
            if !map.contains_key(name.as_str()) {
                map.insert(name.to_string(), default.clone());
            }
        }
        if let Some(value) = map.get_mut(name.as_str()) {
            fill_value(field, value);
        }
    }
}

fn fill_value(field: &FieldDef, value: &mut Value) {
    match (field.kind, value) {
        (FieldKind::Object, value) => {
            if let Some(fields) = &field.fields {
                fill_defaults(fields, value);
            }
        }
        (FieldKind::Array, Value::Array(elements)) => {
            if let Some(items) = field.items.as_deref().filter(|items| has_defaults(items)) {
                for element in elements {
                    fill_value(items, element);
                }
            }
        }
        _ => {}
    }
}

/// A JSON number for a bound: integral bounds are written as integers, so schemas and
/// messages read `1`, not `1.0`.
fn bound(value: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: larger f64s are not exact integers.
    if value.fract() == 0.0 && value.abs() < EXACT {
        #[expect(clippy::cast_possible_truncation, reason = "integral and within 2^53")]
        Value::from(value as i64)
    } else {
        Value::from(value)
    }
}

fn root_schema(def: &EntityTypeDef) -> Value {
    let mut schema = Map::new();
    schema.insert("$schema".into(), DRAFT_2020_12.into());
    annotate(&mut schema, def.label.as_deref(), def.description.as_deref());
    object_schema(&mut schema, &def.fields);
    Value::Object(schema)
}

fn annotate(schema: &mut Map<String, Value>, label: Option<&str>, description: Option<&str>) {
    if let Some(label) = label {
        schema.insert("title".into(), label.into());
    }
    if let Some(description) = description {
        schema.insert("description".into(), description.into());
    }
}

fn object_schema(schema: &mut Map<String, Value>, fields: &IndexMap<FieldName, FieldDef>) {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, field) in fields {
        properties.insert(name.to_string(), field_schema(field));
        // Generated fields are filled by the server, after the client's data is checked.
        if field.required && !field.generated {
            required.push(Value::from(name.as_str()));
        }
    }
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("additionalProperties".into(), false.into());
}

fn field_schema(field: &FieldDef) -> Value {
    let mut schema = Map::new();
    annotate(&mut schema, field.label.as_deref(), field.description.as_deref());
    let mut set = |key: &str, value: Value| {
        schema.insert(key.into(), value);
    };
    match field.kind {
        FieldKind::String => {
            set("type", "string".into());
            if let Some(n) = field.min_length {
                set("minLength", n.into());
            }
            if let Some(n) = field.max_length {
                set("maxLength", n.into());
            }
            if let Some(pattern) = &field.pattern {
                set("pattern", pattern.as_str().into());
            }
            if let Some(format) = &field.format {
                set("format", format.as_str().into());
            }
        }
        FieldKind::Number | FieldKind::Integer => {
            let kind = if field.kind == FieldKind::Number { "number" } else { "integer" };
            set("type", kind.into());
            if let Some(n) = field.minimum {
                set("minimum", bound(n));
            }
            if let Some(n) = field.maximum {
                set("maximum", bound(n));
            }
        }
        FieldKind::Decimal => {
            // The canonical string; clients may also send a number (see `crate::decimal`).
            set("type", "string".into());
            set("pattern", DECIMAL_PATTERN.into());
            let mut x = Map::new();
            x.insert("precision".into(), field.precision.unwrap_or(crate::decimal::DEFAULT_PRECISION).into());
            x.insert("scale".into(), field.scale.unwrap_or(0).into());
            if let Some(r) = field.rounding {
                x.insert("rounding".into(), r.as_str().into());
            }
            for (key, bound) in [("minimum", field.minimum), ("maximum", field.maximum)] {
                if let Some(d) = bound.and_then(|b| crate::decimal::from_f64(b).ok()) {
                    x.insert(key.into(), d.normalize().to_string().into());
                }
            }
            set("x-decimal", Value::Object(x));
        }
        FieldKind::Boolean => set("type", "boolean".into()),
        FieldKind::Date => {
            set("type", "string".into());
            set("format", "date".into());
            set("pattern", DATE_PATTERN.into());
        }
        FieldKind::Datetime => {
            set("type", "string".into());
            set("format", "date-time".into());
        }
        FieldKind::Enum => {
            set("type", "string".into());
            set("enum", json!(field.values.as_deref().unwrap_or_default()));
        }
        FieldKind::Reference => {
            set("type", "string".into());
            set("format", "uuid".into());
            if let Some(to) = &field.to {
                set("x-reference", to.as_str().into());
            }
        }
        FieldKind::User => {
            set("type", "string".into());
            set("format", "uuid".into());
            // Tells editors (the studio's forms) to offer the tenant's users having the role.
            let role = field.role.as_deref().map_or(Value::Null, Value::from);
            set("x-user", json!({ "role": role }));
        }
        FieldKind::Object => {
            let empty = IndexMap::new();
            object_schema(&mut schema, field.fields.as_ref().unwrap_or(&empty));
        }
        FieldKind::Array => {
            set("type", "array".into());
            if let Some(items) = &field.items {
                set("items", field_schema(items));
            }
            if let Some(n) = field.min_items {
                set("minItems", n.into());
            }
            if let Some(n) = field.max_items {
                set("maxItems", n.into());
            }
        }
    }
    if let Some(default) = &field.default {
        let default = match decimal_spec(field).map(|spec| spec.canonical(default)) {
            Some(Ok(canonical)) => Value::String(canonical),
            _ => default.clone(),
        };
        schema.insert("default".into(), default);
    }
    if field.generated {
        schema.insert("readOnly".into(), true.into());
    }
    Value::Object(schema)
}

/// The compile-time checks of one type, reporting errors with the type's name.
struct Checker<'a> {
    type_name: &'a str,
}

/// What the field checks collect: the reference and user fields, at any depth.
#[derive(Default)]
struct Found {
    references: Vec<Reference>,
    users: Vec<UserField>,
}

/// Where a field sits, which decides what it may say.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    TopLevel,
    Nested,
    ArrayItem,
}

/// The variables a number template sees besides the data's fields (and which win over fields of
/// the same name): `seq`, `year` (4 digits), `month` and `day` (2 digits). Also what the studio's
/// template preview renders with.
pub fn number_variables(seq: i64, now: DateTime<Utc>) -> [(&'static str, minijinja::Value); 4] {
    [
        ("seq", minijinja::Value::from(seq)),
        ("year", minijinja::Value::from(format!("{:04}", now.year()))),
        ("month", minijinja::Value::from(format!("{:02}", now.month()))),
        ("day", minijinja::Value::from(format!("{:02}", now.day()))),
    ]
}

impl Checker<'_> {
    fn error(&self, path: &str, message: impl Into<String>) -> OntologyError {
        OntologyError::InvalidField {
            type_name: self.type_name.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn template(&self, path: &str, source: &str) -> Result<Template, OntologyError> {
        Template::parse(path, source).map_err(|err| OntologyError::Template {
            type_name: self.type_name.to_owned(),
            path: path.to_owned(),
            message: err.to_string(),
        })
    }

    fn check_fields(
        &self,
        fields: &IndexMap<FieldName, FieldDef>,
        prefix: &str,
        depth: usize,
        found: &mut Found,
    ) -> Result<(), OntologyError> {
        let place = if prefix.is_empty() { Place::TopLevel } else { Place::Nested };
        for (name, field) in fields {
            let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
            self.check_field(&path, field, place, depth, found)?;
        }
        Ok(())
    }

    fn check_field(
        &self,
        path: &str,
        field: &FieldDef,
        place: Place,
        depth: usize,
        found: &mut Found,
    ) -> Result<(), OntologyError> {
        use FieldKind as K;
        let kind = field.kind;
        if depth > MAX_DEPTH {
            return Err(self.error(path, format!("objects and arrays nest more than {MAX_DEPTH} levels deep")));
        }

        // Options that belong to other kinds: most likely a mistake about the kind.
        let options: [(&str, bool, bool, &str); 17] = [
            ("values", field.values.is_some(), kind == K::Enum, "enum"),
            ("precision", field.precision.is_some(), kind == K::Decimal, "decimal"),
            ("scale", field.scale.is_some(), kind == K::Decimal, "decimal"),
            ("rounding", field.rounding.is_some(), kind == K::Decimal, "decimal"),
            ("to", field.to.is_some(), kind == K::Reference, "reference"),
            ("role", field.role.is_some(), kind == K::User, "user"),
            ("fields", field.fields.is_some(), kind == K::Object, "object"),
            ("items", field.items.is_some(), kind == K::Array, "array"),
            ("minimum", field.minimum.is_some(), is_numeric(kind), "number, integer and decimal"),
            ("maximum", field.maximum.is_some(), is_numeric(kind), "number, integer and decimal"),
            ("min_length", field.min_length.is_some(), kind == K::String, "string"),
            ("max_length", field.max_length.is_some(), kind == K::String, "string"),
            ("pattern", field.pattern.is_some(), kind == K::String, "string"),
            ("format", field.format.is_some(), kind == K::String, "string"),
            ("min_items", field.min_items.is_some(), kind == K::Array, "array"),
            ("max_items", field.max_items.is_some(), kind == K::Array, "array"),
            ("searchable", field.searchable, kind == K::String, "string"),
        ];
        for (option, present, fits, allowed) in options {
            if present && !fits {
                return Err(
                    self.error(path, format!("`{option}` does not apply to a {kind} field (only to {allowed})"))
                );
            }
        }

        if place == Place::ArrayItem {
            // An element is there or not as a whole; these belong on the array field.
            for (option, present) in
                [("required", field.required), ("default", field.default.is_some()), ("generated", field.generated)]
            {
                if present {
                    return Err(self
                        .error(path, format!("`{option}` does not apply to array items (put it on the array field)")));
                }
            }
        }
        if place != Place::TopLevel && (field.filterable || field.sortable || field.searchable) {
            return Err(self.error(path, "`filterable`, `sortable` and `searchable` apply only to top-level fields"));
        }
        if place != Place::TopLevel && field.unique.is_some() {
            return Err(self.error(path, "`unique` applies only to top-level fields"));
        }
        if field.sortable && !kind.is_scalar() {
            return Err(self.error(path, format!("a {kind} field cannot be `sortable`")));
        }

        match kind {
            K::Enum => {
                let values = field.values.as_deref().unwrap_or_default();
                if values.is_empty() {
                    return Err(self.error(path, "an enum field needs `values: [...]`"));
                }
                for (i, value) in values.iter().enumerate() {
                    if values[..i].contains(value) {
                        return Err(self.error(path, format!("enum value {value:?} is listed twice")));
                    }
                }
            }
            K::Reference => match &field.to {
                Some(to) => found.references.push(Reference { path: path.to_owned(), to: to.clone() }),
                None => return Err(self.error(path, "a reference field needs `to: <type>`")),
            },
            K::User => {
                if field.role.as_deref().is_some_and(str::is_empty) {
                    return Err(self.error(path, "`role` must name a role"));
                }
                found.users.push(UserField { path: path.to_owned(), role: field.role.clone() });
            }
            K::Object => match &field.fields {
                Some(fields) if !fields.is_empty() => {
                    self.check_fields(fields, path, depth + 1, found)?;
                }
                _ => return Err(self.error(path, "an object field needs `fields: {...}`")),
            },
            K::Array => match &field.items {
                Some(items) => {
                    let item_path = format!("{path}[]");
                    self.check_field(&item_path, items, Place::ArrayItem, depth + 1, found)?;
                    check_range(field.min_items, field.max_items)
                        .map_err(|()| self.error(path, "`min_items` is greater than `max_items`"))?;
                }
                None => return Err(self.error(path, "an array field needs `items: <field>`")),
            },
            K::Decimal => {
                let Some(scale) = field.scale else {
                    return Err(
                        self.error(path, "a decimal field needs `scale:` (digits after the point, e.g. 2 for money)")
                    );
                };
                let precision = field.precision.unwrap_or(crate::decimal::DEFAULT_PRECISION);
                if !(1..=crate::decimal::MAX_PRECISION).contains(&precision) {
                    return Err(self
                        .error(path, format!("`precision` must be between 1 and {}", crate::decimal::MAX_PRECISION)));
                }
                if scale > precision {
                    return Err(
                        self.error(path, format!("`scale` ({scale}) is greater than `precision` ({precision})"))
                    );
                }
                for (option, bound) in [("minimum", field.minimum), ("maximum", field.maximum)] {
                    if let Some(b) = bound {
                        crate::decimal::from_f64(b)
                            .map_err(|message| self.error(path, format!("`{option}` {message}")))?;
                    }
                }
                if let (Some(min), Some(max)) = (field.minimum, field.maximum) {
                    if min > max {
                        return Err(self.error(path, "`minimum` is greater than `maximum`"));
                    }
                }
            }
            K::Number | K::Integer => {
                for (option, bound) in [("minimum", field.minimum), ("maximum", field.maximum)] {
                    if bound.is_some_and(|b| !b.is_finite()) {
                        return Err(self.error(path, format!("`{option}` must be a finite number")));
                    }
                }
                if let (Some(min), Some(max)) = (field.minimum, field.maximum) {
                    if min > max {
                        return Err(self.error(path, "`minimum` is greater than `maximum`"));
                    }
                }
            }
            K::String => {
                check_range(field.min_length, field.max_length)
                    .map_err(|()| self.error(path, "`min_length` is greater than `max_length`"))?;
                if let Some(pattern) = &field.pattern {
                    build_validator(&json!({ "pattern": pattern })).map_err(|err| {
                        self.error(path, format!("`pattern` is not a valid regular expression: {err}"))
                    })?;
                }
                if let Some(format) = &field.format {
                    let known = jsonschema::draft202012::options().is_known_format(Draft::Draft202012, format);
                    if !known {
                        return Err(self.error(path, format!("unknown `format` {format:?}")));
                    }
                }
            }
            K::Boolean | K::Date | K::Datetime => {}
        }

        if let (Some(default), Some(spec)) = (&field.default, decimal_spec(field)) {
            spec.canonical(default).map_err(|message| {
                self.error(path, format!("`default` {default} does not fit the field: it {message}"))
            })?;
        } else if let Some(default) = &field.default {
            // Checked against the field's own schema, so a bad default is a compile error
            // rather than every create failing.
            let schema = field_schema(field);
            let valid = build_validator(&schema)
                .map_err(|err| OntologyError::Schema(format!("type {}: {path}: {err}", self.type_name)))?
                .is_valid(default);
            if !valid {
                return Err(self.error(path, format!("`default` {default} does not fit the field")));
            }
        }
        Ok(())
    }

    /// The type's unique constraints: top-level fields of a kind an index can compare, a
    /// bounded number of them, none listed twice.
    fn check_unique(&self, def: &EntityTypeDef) -> Result<(), OntologyError> {
        let constraints = def.unique_constraints();
        // Where to point: the field of a field's `unique:`, or the entry of the type's list.
        let place = |c: &UniqueConstraint| match c.declared {
            Some(n) => format!("unique/{n}"),
            None => c.fields.first().cloned().unwrap_or_default(),
        };
        if let Some(first_over) = constraints.get(MAX_UNIQUE_CONSTRAINTS) {
            return Err(self.error(
                &place(first_over),
                format!(
                    "a type may have at most {MAX_UNIQUE_CONSTRAINTS} unique constraints (it has {})",
                    constraints.len()
                ),
            ));
        }
        for (i, c) in constraints.iter().enumerate() {
            let at = place(c);
            if c.fields.is_empty() {
                return Err(self.error(&at, "a unique constraint needs at least one field"));
            }
            if c.fields.len() > MAX_UNIQUE_FIELDS {
                return Err(self.error(
                    &at,
                    format!(
                        "a unique constraint may name at most {MAX_UNIQUE_FIELDS} fields (it names {})",
                        c.fields.len()
                    ),
                ));
            }
            for (j, name) in c.fields.iter().enumerate() {
                if c.fields[..j].contains(name) {
                    return Err(self.error(&at, format!("`unique` lists field `{name}` twice")));
                }
                let Some(field) = def.fields.get(name.as_str()) else {
                    return Err(self.error(&at, format!("`unique` names field `{name}`, which the type does not have")));
                };
                if !unique_kind(field.kind) {
                    let article = if field.kind.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
                    return Err(self.error(
                        &at,
                        format!(
                            "`{name}` cannot be unique: it is {article} {} field, and only string, enum, integer, \
                             number, date, datetime, reference and user fields can",
                            field.kind
                        ),
                    ));
                }
            }
            if c.case_insensitive {
                if let Some(name) =
                    c.fields.iter().find(|n| def.fields.get(n.as_str()).is_some_and(|f| f.kind != FieldKind::String))
                {
                    return Err(self
                        .error(&at, format!("`case_insensitive` applies only to string fields; `{name}` is not one")));
                }
            }
            let mut sorted = c.fields.clone();
            sorted.sort();
            let twice = constraints[..i].iter().any(|o| {
                let mut other = o.fields.clone();
                other.sort();
                other == sorted
            });
            if twice {
                let message = match c.fields.as_slice() {
                    [one] => format!("field `{one}` is already unique"),
                    many => format!("fields {} are already unique together", many.join(", ")),
                };
                return Err(self.error(&at, message));
            }
        }
        Ok(())
    }

    fn check_number(&self, def: &EntityTypeDef) -> Result<(), OntologyError> {
        let Some(number) = &def.number else {
            return Ok(());
        };
        let fits = def
            .fields
            .get(number.field.as_str())
            .is_some_and(|field| field.kind == FieldKind::String && field.generated);
        if !fits {
            return Err(self.error(
                "number",
                format!(
                    "`number.field` must name a top-level `string` field with `generated: true`; {:?} is not one",
                    number.field.as_str()
                ),
            ));
        }
        Ok(())
    }
}

/// The kinds a unique index can compare: scalars other than booleans (two entities at most).
fn unique_kind(kind: FieldKind) -> bool {
    kind.is_scalar() && kind != FieldKind::Boolean
}

/// How many unique constraints a type may have (each is an index on `entities`).
pub const MAX_UNIQUE_CONSTRAINTS: usize = 8;

/// How many fields one unique constraint may name.
pub const MAX_UNIQUE_FIELDS: usize = 8;

/// `Err` when both bounds are set and the lower one is greater.
fn check_range(min: Option<u64>, max: Option<u64>) -> Result<(), ()> {
    match (min, max) {
        (Some(min), Some(max)) if min > max => Err(()),
        _ => Ok(()),
    }
}

/// The compiled types of one tenant package version, by name, in definition order.
#[derive(Debug, Clone, Default)]
pub struct Ontology {
    types: IndexMap<String, Arc<CompiledType>>,
}

impl Ontology {
    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<CompiledType>> {
        self.types.get(name)
    }

    /// The types with their names, in definition order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<CompiledType>)> {
        self.types.iter().map(|(name, ty)| (name.as_str(), ty))
    }

    /// The type names, in definition order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// The number of types.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether there is no type.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

/// Compiles a tenant's types and checks that every reference names one of them. Returns every
/// error found: one per type that does not compile, plus one per dangling reference and per
/// duplicate name.
pub fn compile_types(defs: Vec<EntityTypeDef>) -> Result<Ontology, Vec<OntologyError>> {
    // Types that fail to compile still count as known, so one mistake is reported once and
    // not again by every reference to the type.
    let known: HashSet<String> = defs.iter().map(|def| def.name.to_string()).collect();
    let mut seen = HashSet::new();
    let mut types = IndexMap::with_capacity(defs.len());
    let mut errors = Vec::new();
    for def in defs {
        let name = def.name.to_string();
        if !seen.insert(name.clone()) {
            errors.push(OntologyError::DuplicateType { name });
            continue;
        }
        match CompiledType::compile(def) {
            Ok(compiled) => {
                for reference in &compiled.references {
                    if !known.contains(reference.to.as_str()) {
                        errors.push(OntologyError::UnknownReference {
                            type_name: name.clone(),
                            path: reference.path.clone(),
                            to: reference.to.to_string(),
                        });
                    }
                }
                types.insert(name, Arc::new(compiled));
            }
            Err(err) => errors.push(err),
        }
    }
    if errors.is_empty() {
        Ok(Ontology { types })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests;
