//! Sample data (`data/*.yaml`): `"@key"` references between rows, users named by e-mail in user
//! fields, and the placeholder ids they are checked with.

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

/// Replaces each e-mail given for a user field of `ty` in sample `data` by a placeholder id (as
/// creating the row replaces it by the user's id), and returns the pointers (under `prefix`)
/// and addresses of those that name none of `users` (the package's, in lower case).
pub(super) fn user_emails(
    ty: &CompiledType,
    data: &mut Value,
    users: &HashSet<String>,
    prefix: &str,
) -> Vec<(String, String)> {
    fn walk(
        value: &mut Value,
        segments: &[&str],
        pointer: String,
        users: &HashSet<String>,
        out: &mut Vec<(String, String)>,
    ) {
        let Some((first, rest)) = segments.split_first() else {
            if let Some(email) = value.as_str().filter(|s| s.contains('@') && uuid::Uuid::parse_str(s).is_err()) {
                let email = email.to_lowercase();
                if !users.contains(&email) {
                    out.push((pointer, email.clone()));
                }
                // Either way an id from here on: an unknown address is reported once, above.
                *value = Value::String(uuid::Uuid::new_v5(&uuid::Uuid::nil(), email.as_bytes()).to_string());
            }
            return;
        };
        let (name, each) = match first.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (*first, false),
        };
        let Some(child) = value.get_mut(name) else { return };
        let pointer = format!("{pointer}/{}", esc(name));
        if !each {
            walk(child, rest, pointer, users, out);
        } else if let Some(items) = child.as_array_mut() {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, rest, format!("{pointer}/{i}"), users, out);
            }
        }
    }
    let mut out = Vec::new();
    for field in ty.user_fields() {
        let segments: Vec<&str> = field.path.split('.').collect();
        walk(data, &segments, prefix.to_string(), users, &mut out);
    }
    out
}
