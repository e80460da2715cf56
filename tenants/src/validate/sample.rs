//! Sample data (`data/*.yaml`): `"@key"` references between rows, and the placeholder ids they
//! are checked with.

use super::*;

/// Every `"@key"` string under `value` whose key no row declares.
pub(super) fn sample_keys(value: &Value, pointer: &str, keys: &HashMap<&str, String>, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => {
            if let Some(key) = s.strip_prefix('@').filter(|k| !k.is_empty()) {
                if !keys.contains_key(key) {
                    out.push((pointer.to_string(), key.to_string()));
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                sample_keys(v, &format!("{pointer}/{i}"), keys, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                sample_keys(v, &format!("{pointer}/{}", esc(k)), keys, out);
            }
        }
        _ => {}
    }
}

/// The data with each `"@key"` replaced by a uuid, as `apply` does with the real ids.
pub(super) fn with_placeholder_ids(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > 1 && s.starts_with('@') => {
            Value::String(uuid::Uuid::new_v5(&uuid::Uuid::nil(), s.as_bytes()).to_string())
        }
        Value::Array(items) => Value::Array(items.iter().map(with_placeholder_ids).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), with_placeholder_ids(v))).collect()),
        other => other.clone(),
    }
}
