//! YAML helpers of validation: raw parsing with duplicate keys refused, typed parsing with the
//! path of the error, JSON pointers, and the position of a pointer in its document (to sort
//! problems in document order).

use super::*;

/// The file as JSON. Refuses YAML syntax errors and duplicate keys (which the typed parse
/// would silently resolve to the last one). `Err((pointer, message))`.
pub(super) fn parse_raw(text: &str) -> Result<Value, (String, String)> {
    let duplicate = RefCell::new(None);
    let seed = RawSeed { pointer: String::new(), duplicate: &duplicate };
    let result = seed.deserialize(serde_yaml_ng::Deserializer::from_str(text));
    result.map_err(|e| {
        let at = location(&e);
        match duplicate.into_inner() {
            Some((pointer, key)) => (pointer, format!("duplicate key `{key}`{at}")),
            None => (String::new(), format!("YAML syntax error: {}{at}", strip_location(&e.to_string()))),
        }
    })
}

pub(super) fn location(e: &serde_yaml_ng::Error) -> String {
    e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column())).unwrap_or_default()
}

/// Parses into the typed model; `Err((pointer, message))` names where it went wrong.
pub(super) fn parse_typed<T: DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let serde_path = e.path().to_string();
        let inner = e.into_inner();
        let mut message = strip_location(&inner.to_string());
        // serde_yaml_ng starts nested errors with its own path (`roles.clerk: unknown field`).
        if let Some((prefix, rest)) = message.split_once(": ") {
            if !prefix.contains(' ') && serde_path.starts_with(prefix) {
                message = rest.to_string();
            }
        }
        let mut pointer = json_pointer(&serde_path);
        // A missing key: point at it, under the mapping that lacks it.
        if let Some(key) = missing_key(&message) {
            pointer.push('/');
            pointer.push_str(&esc(key));
        }
        (pointer, format!("{message}{}", location(&inner)))
    })
}

/// The key of serde's ``missing field `x` `` message.
pub fn missing_key(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next().filter(|k| !k.is_empty())
}

pub(super) fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// serde_path_to_error's `items[0].product_id` → `/items/0/product_id`; `.` → ``. Stops at
/// a `?` (a key it could not read).
pub(super) fn json_pointer(serde_path: &str) -> String {
    let mut out = String::new();
    if serde_path == "." {
        return out;
    }
    for part in serde_path.split('.') {
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            let (name, tail) = rest.split_at(open);
            if !name.is_empty() {
                out.push('/');
                out.push_str(&esc(name));
            }
            let close = tail.find(']').unwrap_or(tail.len());
            out.push('/');
            out.push_str(&tail[1..close]);
            rest = tail.get(close + 1..).unwrap_or("");
        }
        if rest == "?" {
            break;
        }
        if !rest.is_empty() {
            out.push('/');
            out.push_str(&esc(rest));
        }
    }
    out
}

/// Escapes one JSON pointer token (`~` → `~0`, `/` → `~1`).
pub(crate) fn esc(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

pub(super) fn unesc(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Where a pointer lands in the document, as the index of each key or element on the way, so
/// problems sort in the order of the file (a pointer that leaves the document sorts after the
/// part that exists).
pub(super) fn document_position(root: &Value, pointer: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut current = Some(root);
    for token in pointer.split('/').skip(1) {
        let token = unesc(token);
        let next = match current {
            Some(Value::Object(map)) => map.keys().position(|k| *k == token).map(|i| (i, map.get(&token))),
            Some(Value::Array(items)) => token.parse::<usize>().ok().map(|i| (i, items.get(i))),
            _ => None,
        };
        match next {
            Some((i, value)) => {
                out.push(i);
                current = value;
            }
            None => {
                out.push(usize::MAX);
                break;
            }
        }
    }
    out
}

pub(super) fn relative(base: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Deserializes any YAML into JSON, refusing duplicate keys (recording where).
pub(super) struct RawSeed<'a> {
    pub(super) pointer: String,
    pub(super) duplicate: &'a RefCell<Option<(String, String)>>,
}

impl RawSeed<'_> {
    pub(super) fn child(&self, token: &str) -> Self {
        RawSeed { pointer: format!("{}/{}", self.pointer, esc(token)), duplicate: self.duplicate }
    }
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child(&out.len().to_string()))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) =
            map.next_key_seed(KeySeed { seen: &out, pointer: &self.pointer, duplicate: self.duplicate })?
        {
            let value = map.next_value_seed(self.child(&key))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key, as a string (YAML allows numbers and booleans as keys). A key the mapping
/// already has is refused here, while the key is read, so the error has the key's line.
pub(super) struct KeySeed<'a> {
    pub(super) seen: &'a Map<String, Value>,
    pub(super) pointer: &'a str,
    pub(super) duplicate: &'a RefCell<Option<(String, String)>>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl KeySeed<'_> {
    /// Refused inside the visitor, so the deserializer gives the error the key's position.
    pub(super) fn accept<E: de::Error>(&self, key: String) -> Result<String, E> {
        if self.seen.contains_key(&key) {
            *self.duplicate.borrow_mut() = Some((self.pointer.to_string(), key.clone()));
            return Err(E::custom(format!("duplicate key `{key}`")));
        }
        Ok(key)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        self.accept("null".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        assert_eq!(json_pointer("."), "");
        assert_eq!(json_pointer("fields.items.items[0].x"), "/fields/items/items/0/x");
        assert_eq!(json_pointer("fields.?"), "/fields");
        assert_eq!(field_pointer("items[].product_id"), "/fields/items/items/fields/product_id");
        assert_eq!(field_pointer("a.b"), "/fields/a/fields/b");
        assert_eq!(esc("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn document_order() {
        let doc = serde_json::json!({"b": {"x": 1, "y": [0, 1]}, "a": 2});
        assert_eq!(document_position(&doc, "/b/y/1"), vec![0, 1, 1]);
        assert_eq!(document_position(&doc, "/a"), vec![1]);
        assert_eq!(document_position(&doc, "/b/z"), vec![0, usize::MAX]);
    }

    #[test]
    fn duplicate_keys_are_found_with_their_place() {
        let (pointer, message) = parse_raw("a:\n  b: 1\n  c: 2\n  b: 3\n").expect_err("duplicate");
        assert_eq!(pointer, "/a");
        assert!(message.starts_with("duplicate key `b`"), "{message}");
    }
}
