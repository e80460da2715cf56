//! The parameters of a list, parsed against the type's definition (pure): filters, `q`, sort,
//! limit and cursor become a [`Parsed`] request, or a 422 naming every bad parameter. The
//! statements they become are [`super`]'s.

use chrono::{DateTime, NaiveDate, Utc};
use ontology::compile::{CompiledType, FieldError};
use ontology::def::{FieldDef, FieldKind};
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::compiled::CompiledTenant;
use crate::eval::Rejection;

/// Errors of one request, each naming its query parameter (`/amount[gte]`).
#[derive(Default)]
pub(super) struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, param: &str, message: impl Into<String>) {
        self.0.push(FieldError { path: format!("/{param}"), message: message.into() });
    }
}

pub(super) fn one<'a>(param: &str, value: &'a ParamValue, errors: &mut Errors) -> Option<&'a str> {
    match value {
        ParamValue::One(s) => Some(s),
        ParamValue::Many(_) => {
            errors.add(param, "takes one value, not a list");
            None
        }
    }
}

/// The value of a user field's filter that stands for the actor (`driver_id=me`).
pub const ME: &str = "me";

/// Parses `request` against the definition of `type_name`; `me` is the signed-in user's id
/// (what `me` means in a user field's filter), `None` for the system and API keys.
pub(super) fn parse(
    defs: &CompiledTenant,
    type_name: &str,
    request: &ListRequest,
    me: Option<Uuid>,
) -> Result<Parsed, StoreError> {
    let ty = defs.type_(type_name).ok_or_else(|| StoreError::TypeNotFound(type_name.to_string()))?;
    let states: Vec<String> =
        defs.workflow(type_name).map(|w| w.states().keys().cloned().collect()).unwrap_or_default();
    let mut errors = Errors::default();
    let mut filters = Vec::new();
    let mut search = None;
    let mut sort_param: Option<&str> = None;
    let mut limit_param: Option<&str> = None;
    let mut cursor_param: Option<&str> = None;
    let mut total = false;
    let mut seen_reserved: Vec<&str> = Vec::new();

    for (param, value) in &request.params {
        let reserved = matches!(param.as_str(), "limit" | "cursor" | "sort" | "q" | "total");
        if reserved {
            if seen_reserved.contains(&param.as_str()) {
                errors.add(param, "is given more than once");
                continue;
            }
            seen_reserved.push(param);
            let allowed = match request.mode {
                ListMode::List => true,
                ListMode::Export => matches!(param.as_str(), "sort" | "q"),
                ListMode::Filter => param == "q",
            };
            if !allowed {
                errors.add(param, "is not allowed here (only filters are)");
                continue;
            }
            let Some(v) = one(param, value, &mut errors) else { continue };
            match param.as_str() {
                "limit" => limit_param = Some(v),
                "cursor" => cursor_param = Some(v),
                "sort" => sort_param = Some(v),
                "total" => match v {
                    "true" => total = true,
                    "false" => total = false,
                    _ => errors.add(param, "must be true or false"),
                },
                _ => search = parse_q(ty, v, &mut errors),
            }
            continue;
        }
        if let Some(f) = parse_filter(ty, (&states, me), param, value, &mut errors) {
            filters.push(f);
        }
    }

    let sort = parse_sort(ty, sort_param, &mut errors);
    let limit = match (request.limit, limit_param) {
        (Some(l), _) => l.clamp(1, MAX_LIMIT),
        (None, None) => DEFAULT_LIMIT,
        (None, Some(s)) => match s.parse::<i64>() {
            Ok(l) if (1..=MAX_LIMIT).contains(&l) => l,
            _ => {
                errors.add("limit", format!("must be an integer between 1 and {MAX_LIMIT}"));
                DEFAULT_LIMIT
            }
        },
    };
    let cursor = match request.cursor.as_deref().or(cursor_param) {
        Some(c) if !c.is_empty() => match (&sort, decode_cursor(c, sort.as_ref())) {
            (Some(_), Some(cursor)) => Some(cursor),
            (Some(_), None) => {
                errors.add("cursor", "is not a cursor of this list (a cursor works only with the sort it came from)");
                None
            }
            (None, _) => None,
        },
        _ => None,
    };
    if !errors.0.is_empty() {
        return Err(Rejection::Validation { errors: errors.0 }.into());
    }
    let sort = sort.unwrap_or_else(default_sort);
    Ok(Parsed { type_name: type_name.to_string(), filters, search, sort, limit, cursor, total, scope: None })
}

pub(super) fn default_sort() -> Sort {
    Sort { key: Key::Column(Column::Id), desc: false, spec: "id".into() }
}

/// `name` or `name[op]`.
pub(super) fn split_param(param: &str) -> Option<(&str, Option<&str>)> {
    match param.split_once('[') {
        None => Some((param, None)),
        Some((name, rest)) => {
            let op = rest.strip_suffix(']')?;
            Some((name, Some(op)))
        }
    }
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.len() <= 63
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// The key a filter names, if the type allows filtering on it.
pub(super) fn filter_key(ty: &CompiledType, param: &str, name: &str, errors: &mut Errors) -> Option<Key> {
    if let Some(c) = Column::parse(name) {
        return Some(Key::Column(c));
    }
    if !is_identifier(name) {
        errors.add(param, "is not a known filter");
        return None;
    }
    let Some(def) = ty.def().fields.get(name) else {
        errors.add(param, format!("`{name}` is not a field of {}", ty.name()));
        return None;
    };
    if !(def.filterable || def.sortable) {
        errors.add(param, format!("`{name}` is not filterable"));
        return None;
    }
    let Some(accessor) = Accessor::of(def.kind) else {
        errors.add(param, format!("a {} field cannot be filtered on", def.kind));
        return None;
    };
    Some(Key::Field { name: name.to_string(), kind: def.kind, accessor })
}

pub(super) fn parse_filter(
    ty: &CompiledType,
    known: (&[String], Option<Uuid>),
    param: &str,
    value: &ParamValue,
    errors: &mut Errors,
) -> Option<Filter> {
    let Some((name, op)) = split_param(param) else {
        errors.add(param, "is not a known filter");
        return None;
    };
    let op = match op {
        None => Op::Eq,
        Some(o) => match Op::parse(o) {
            Some(op) => op,
            None => {
                errors.add(param, "unknown operator (eq, gt, gte, lt, lte, in, null)");
                return None;
            }
        },
    };
    let key = filter_key(ty, param, name, errors)?;
    let field = match &key {
        Key::Field { name, .. } => ty.def().fields.get(name.as_str()),
        Key::Column(_) => None,
    };
    match op {
        Op::Null => {
            if !key.nullable() {
                errors.add(param, format!("`{name}` is never null"));
                return None;
            }
            let v = one(param, value, errors)?;
            match v {
                "true" => Some(Filter { key, cond: Cond::IsNull(true) }),
                "false" => Some(Filter { key, cond: Cond::IsNull(false) }),
                _ => {
                    errors.add(param, "must be true or false");
                    None
                }
            }
        }
        Op::In => {
            let raw: Vec<&str> = match value {
                ParamValue::One(s) => s.split(',').collect(),
                ParamValue::Many(v) => v.iter().map(String::as_str).collect(),
            };
            if raw.is_empty() || raw.len() > MAX_IN_VALUES {
                errors.add(param, format!("needs 1 to {MAX_IN_VALUES} values"));
                return None;
            }
            let mut vals = Vec::with_capacity(raw.len());
            for r in raw {
                vals.push(parse_value(&key, field, known, param, r, errors)?);
            }
            Some(Filter { key, cond: Cond::In(vals) })
        }
        _ => {
            if op.is_range() {
                let ranged = match &key {
                    Key::Column(c) => matches!(c, Column::CreatedAt | Column::UpdatedAt),
                    Key::Field { kind, .. } => kind.is_ordered(),
                };
                if !ranged {
                    errors.add(param, format!("`{name}` has no order: use eq or in"));
                    return None;
                }
            }
            let v = one(param, value, errors)?;
            let val = parse_value(&key, field, known, param, v, errors)?;
            Some(Filter { key, cond: Cond::Compare(op, val) })
        }
    }
}

/// Parses one value to the key's kind. `known` is the type's states and the actor's user id.
pub(super) fn parse_value(
    key: &Key,
    field: Option<&FieldDef>,
    (states, me): (&[String], Option<Uuid>),
    param: &str,
    raw: &str,
    errors: &mut Errors,
) -> Option<Val> {
    let mut bad = |message: String| {
        errors.add(param, message);
        None
    };
    if raw.chars().count() > MAX_VALUE_CHARS {
        return bad(format!("a value may have at most {MAX_VALUE_CHARS} characters"));
    }
    match key {
        Key::Column(Column::State) => {
            if states.iter().any(|s| s == raw) {
                Some(Val::Text(raw.to_string()))
            } else {
                bad(format!("`{raw}` is not a state of this type"))
            }
        }
        Key::Column(Column::Id) => match Uuid::parse_str(raw) {
            Ok(u) => Some(Val::Uuid(u)),
            Err(_) => bad("must be an entity id (uuid)".into()),
        },
        Key::Column(Column::CreatedAt | Column::UpdatedAt) => parse_datetime(raw)
            .or_else(|| bad("must be an RFC 3339 date-time with an offset (2026-01-31T12:00:00Z)".into())),
        Key::Field { kind, .. } => match kind {
            FieldKind::String => Some(Val::Text(raw.to_string())),
            FieldKind::Enum => {
                let values = field.and_then(|f| f.values.as_deref()).unwrap_or_default();
                if values.iter().any(|v| v == raw) {
                    Some(Val::Text(raw.to_string()))
                } else {
                    bad(format!("must be one of {}", values.join(", ")))
                }
            }
            FieldKind::Date => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                // Canonical form, so text order is date order.
                Ok(d) => Some(Val::Text(d.format("%Y-%m-%d").to_string())),
                Err(_) => bad("must be a date (YYYY-MM-DD)".into()),
            },
            FieldKind::Number => match raw.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && !raw.trim().is_empty() => Some(Val::Number(n)),
                _ => bad("must be a number".into()),
            },
            FieldKind::Integer => match raw.trim().parse::<i64>() {
                Ok(n) => Some(Val::Number(n as f64)),
                Err(_) => bad("must be an integer".into()),
            },
            FieldKind::Decimal => match ontology::decimal::parse_str(raw) {
                Some(d) => Some(Val::Decimal(d.to_string())),
                None => bad("must be a decimal number (e.g. 12.50)".into()),
            },
            FieldKind::Boolean => match raw {
                "true" => Some(Val::Boolean(true)),
                "false" => Some(Val::Boolean(false)),
                _ => bad("must be true or false".into()),
            },
            FieldKind::Reference => match Uuid::parse_str(raw) {
                Ok(u) => Some(Val::Uuid(u)),
                Err(_) => bad("must be an entity id (uuid)".into()),
            },
            FieldKind::User => match (raw, me) {
                (ME, Some(me)) => Some(Val::Uuid(me)),
                (ME, None) => bad(format!("`{ME}` stands for the signed-in user, and the caller is not one")),
                _ => match Uuid::parse_str(raw) {
                    Ok(u) => Some(Val::Uuid(u)),
                    Err(_) => bad(format!("must be a user id (uuid) or `{ME}`")),
                },
            },
            FieldKind::Datetime => parse_datetime(raw)
                .or_else(|| bad("must be an RFC 3339 date-time with an offset (2026-01-31T12:00:00Z)".into())),
            FieldKind::Object | FieldKind::Array => bad("cannot be filtered on".into()),
        },
    }
}

pub(super) fn parse_datetime(raw: &str) -> Option<Val> {
    DateTime::parse_from_rfc3339(raw).ok().map(|t| Val::Timestamptz(t.with_timezone(&Utc)))
}

pub(super) fn parse_sort(ty: &CompiledType, sort: Option<&str>, errors: &mut Errors) -> Option<Sort> {
    let Some(spec) = sort else { return Some(default_sort()) };
    let (desc, name) = match spec.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, spec.strip_prefix('+').unwrap_or(spec)),
    };
    let key = match Column::parse(name) {
        Some(Column::State) => {
            errors.add("sort", "cannot sort by state (sort by a sortable field, id, created_at or updated_at)");
            return None;
        }
        Some(c) => Key::Column(c),
        None => {
            let field = if is_identifier(name) { ty.def().fields.get(name) } else { None };
            match field {
                None => {
                    errors.add("sort", format!("`{name}` is not a field of {}", ty.name()));
                    return None;
                }
                Some(def) if !def.sortable => {
                    errors.add("sort", format!("`{name}` is not sortable"));
                    return None;
                }
                Some(def) => match Accessor::of(def.kind) {
                    Some(accessor) => Key::Field { name: name.to_string(), kind: def.kind, accessor },
                    None => {
                        errors.add("sort", format!("a {} field cannot be sorted on", def.kind));
                        return None;
                    }
                },
            }
        }
    };
    Some(Sort { key, desc, spec: spec.to_string() })
}

/// The fields `q` searches: those marked `searchable`, plus the string fields the display title
/// shows, in the order of the type's fields (the order the search index joins them in).
pub(super) fn search_fields(def: &ontology::def::EntityTypeDef) -> Vec<String> {
    let title_words: Vec<&str> = def
        .title
        .as_deref()
        .map(|t| t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect())
        .unwrap_or_default();
    def.fields
        .iter()
        .filter(|(name, f)| {
            f.searchable
                || (matches!(f.kind, FieldKind::String | FieldKind::Enum) && title_words.contains(&name.as_str()))
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

pub(super) fn parse_q(ty: &CompiledType, q: &str, errors: &mut Errors) -> Option<(Vec<String>, Vec<String>)> {
    if q.trim().is_empty() {
        return None;
    }
    if q.chars().count() > MAX_Q_CHARS {
        errors.add("q", format!("may have at most {MAX_Q_CHARS} characters"));
        return None;
    }
    let words: Vec<String> = q.split_whitespace().map(str::to_string).collect();
    if words.len() > MAX_Q_WORDS {
        errors.add("q", format!("may have at most {MAX_Q_WORDS} words"));
        return None;
    }
    let fields = search_fields(ty.def());
    if fields.is_empty() {
        errors.add("q", format!("{} has no searchable fields", ty.name()));
        return None;
    }
    Some((fields, words))
}

// --- The cursor -------------------------------------------------------------------------------

pub(super) fn encode_cursor(sort: &Sort, value: Option<&Val>, id: Uuid) -> String {
    let body = json!({ "s": sort.spec, "v": value.map(Val::to_json), "i": id });
    hex::encode(body.to_string())
}

/// The cursor, if it is one of a list with this sort (`None` inside: decodes, but not ours).
pub(super) fn decode_cursor(cursor: &str, sort: Option<&Sort>) -> Option<Cursor> {
    let sort = sort?;
    let bytes = hex::decode(cursor).ok()?;
    let body: Value = serde_json::from_slice(&bytes).ok()?;
    if body["s"].as_str()? != sort.spec {
        return None;
    }
    let id = Uuid::parse_str(body["i"].as_str()?).ok()?;
    let value = match (&sort.key, &body["v"]) {
        (Key::Column(Column::Id), Value::Null) => None,
        (Key::Column(Column::Id), _) => return None,
        (key, Value::Null) if key.nullable() => None,
        (_, Value::Null) => return None,
        (key, v) => Some(Val::from_json(key.value_type(), v)?),
    };
    Some(Cursor { value, id })
}
