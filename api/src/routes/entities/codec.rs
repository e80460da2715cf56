//! The CSV and JSON codec of export and import, pure: entities as CSV rows (formula-like cells
//! neutralized), and CSV cells or JSON objects as the data of new entities, by field kind.

use std::borrow::Cow;

use indexmap::IndexMap;
use ontology::compile::FieldError;
use ontology::def::{FieldDef, FieldKind};
use ontology::names::FieldName;
use serde_json::{json, Value};

use crate::error::ApiError;

/// The columns of an export before the type's fields.
pub(super) const EXPORT_COLUMNS: [&str; 4] = ["id", "state", "version", "created_at"];

/// The first characters that make a spreadsheet run a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `s` is quotes (maybe none) then a formula character: the cells the export guards.
fn guarded_shape(s: &str) -> bool {
    s.trim_start_matches('\'').starts_with(FORMULA_START)
}

/// A string cell a spreadsheet would run as a formula gets a leading `'` (import removes it).
/// So does one that already starts with quotes before such a character (`'=1`), or the import
/// would take its own quote away. A plain negative number (`-12.50`, a decimal) is no formula and
/// stays as it is.
pub(super) fn neutralize_formula(s: &str) -> Cow<'_, str> {
    let plain_number = s.strip_prefix('-').is_some_and(|rest| {
        let (int, frac) = rest.split_once('.').unwrap_or((rest, "0"));
        !int.is_empty() && !frac.is_empty() && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    });
    if !plain_number && guarded_shape(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

pub(super) fn csv_cell(v: Option<&Value>) -> Cow<'_, str> {
    match v {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => neutralize_formula(s),
        Some(Value::Number(n)) => Cow::Owned(n.to_string()),
        Some(Value::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

pub(super) fn csv_rows(
    entities: &[engine::model::Entity],
    fields: &[String],
    header: bool,
) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    if header {
        w.write_record(EXPORT_COLUMNS.iter().copied().chain(fields.iter().map(String::as_str)))?;
    }
    for e in entities {
        let id = e.id.to_string();
        let version = e.version.to_string();
        let created = engine::model::rfc3339(e.created_at);
        let mut record: Vec<Cow<'_, str>> =
            vec![Cow::Borrowed(&id), Cow::Borrowed(&e.state), Cow::Borrowed(&version), Cow::Borrowed(&created)];
        record.extend(fields.iter().map(|f| csv_cell(e.data.get(f))));
        w.write_record(record.iter().map(|c| c.as_bytes()))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// One record of an import: its 1-based number, and its data or why it has none.
pub(super) type ImportRow = (usize, Result<Value, Vec<FieldError>>);

pub(super) fn row_error(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { path: path.into(), message: message.into() }
}

/// A CSV cell as the JSON value of a field of `kind`; `None` for an empty cell.
pub(super) fn csv_value(kind: FieldKind, cell: &str) -> Result<Option<Value>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    let v = match kind {
        FieldKind::String
        | FieldKind::Enum
        | FieldKind::Reference
        | FieldKind::User
        | FieldKind::Date
        | FieldKind::Datetime => {
            // Undo the export's formula guard: one quote, before quotes and a formula character.
            let unguarded = match cell.strip_prefix('\'') {
                Some(rest) if guarded_shape(rest) => rest,
                _ => cell,
            };
            Value::String(unguarded.to_string())
        }
        // Kept as written: the field's scale and rounding decide (an error names the field).
        FieldKind::Decimal => Value::String(cell.trim().to_string()),
        FieldKind::Integer => {
            cell.trim().parse::<i64>().map(Value::from).map_err(|_| "must be an integer".to_string())?
        }
        FieldKind::Number => match cell.trim().parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => cell
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| "must be a number".to_string())?,
        },
        FieldKind::Boolean => match cell.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err("must be true or false".into()),
        },
        FieldKind::Object | FieldKind::Array => {
            let v: Value = serde_json::from_str(cell).map_err(|_| format!("must be a JSON {kind}"))?;
            let fits = if kind == FieldKind::Object { v.is_object() } else { v.is_array() };
            if !fits {
                return Err(format!("must be a JSON {kind}"));
            }
            v
        }
    };
    Ok(Some(v))
}

pub(super) fn csv_import_rows(
    bytes: &[u8],
    fields: &IndexMap<FieldName, FieldDef>,
) -> Result<Vec<ImportRow>, ApiError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| ApiError::validation(json!([{ "path": "/header", "message": e.to_string() }])))?
        .clone();
    // Each column: the field it fills, or `None` for the entity's own columns (an export has them).
    let mut columns: Vec<Option<(String, FieldKind)>> = Vec::with_capacity(header.len());
    let mut errors = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        if header.iter().take(i).any(|h| h.trim() == name) {
            errors.push(json!({ "path": format!("/header/{i}"), "message": format!("`{name}` is given twice") }));
        }
        if ontology::RESERVED_FIELDS.contains(&name) {
            columns.push(None);
        } else if let Some(def) = fields.get(name) {
            columns.push(Some((name.to_string(), def.kind)));
        } else {
            errors.push(json!({ "path": format!("/header/{i}"), "message": format!("`{name}` is not a field") }));
            columns.push(None);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(Value::Array(errors)));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push((row, Err(vec![row_error("", e.to_string())])));
                continue;
            }
        };
        if record.len() != columns.len() {
            let message = format!("has {} cells, the header has {}", record.len(), columns.len());
            rows.push((row, Err(vec![row_error("", message)])));
            continue;
        }
        let mut data = serde_json::Map::new();
        let mut errs = Vec::new();
        for (column, cell) in columns.iter().zip(record.iter()) {
            let Some((name, kind)) = column else { continue };
            match csv_value(*kind, cell) {
                Ok(Some(v)) => {
                    data.insert(name.clone(), v);
                }
                Ok(None) => {}
                Err(message) => errs.push(row_error(format!("/data/{name}"), message)),
            }
        }
        rows.push((row, if errs.is_empty() { Ok(Value::Object(data)) } else { Err(errs) }));
    }
    Ok(rows)
}

pub(super) fn json_import_rows(bytes: &[u8]) -> Result<Vec<ImportRow>, ApiError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Array(items) = v else {
        return Err(ApiError::validation(json!([{ "path": "", "message": "must be an array of data objects" }])));
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let data = if item.is_object() { Ok(item) } else { Err(vec![row_error("/data", "must be an object")]) };
            (i + 1, data)
        })
        .collect())
}
