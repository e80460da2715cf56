//! Names of entity types and fields, parsed once ("parse, don't validate"): holding a
//! [`TypeName`] or [`FieldName`] proves it is a safe identifier, usable unquoted in JSON
//! pointers, template variables, JSON-Logic `var` paths and index names.

use serde::Deserialize;

use crate::error::OntologyError;

/// Names an entity has by itself (columns of the entity row, keys of the evaluation context's
/// `entity`), so no field may take them.
pub const RESERVED_FIELDS: &[&str] =
    &["id", "type", "state", "version", "created_at", "updated_at", "created_by", "updated_by"];

/// Longest name: 63 bytes, Postgres' identifier limit, since names end up in index names.
const MAX_LEN: usize = 63;

/// Checks `^[a-z][a-z0-9_]{0,62}$`, returning why not.
fn check_identifier(value: &str) -> Result<(), String> {
    let mut bytes = value.bytes();
    match bytes.next() {
        None => return Err("must not be empty".into()),
        Some(b'a'..=b'z') => {}
        Some(_) => return Err("must start with a lowercase letter a-z".into()),
    }
    if value.len() > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters long"));
    }
    if !bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_')) {
        return Err("may contain only lowercase letters a-z, digits and _ (snake_case)".into());
    }
    Ok(())
}

/// What [`checked_name!`](crate::checked_name) needs of serde, reachable from the crates that
/// use the macro whatever they depend on.
#[doc(hidden)]
pub mod __private {
    pub use serde::{Serialize, Serializer};
}

/// Gives a checked name — a `struct Name(String)` whose only way in is its
/// `fn parse(&str) -> Result<Name, Error>` — what every name of the workspace has: read access
/// to its text (`as_str`, `into_string`, `Deref<Target = str>`, `AsRef<str>`, `Borrow<str>`,
/// `Display`), comparison with text (`==` against `str`, `&str` and `String`, both ways),
/// parsing from text through `parse` (`FromStr`, `TryFrom<String>`, `TryFrom<&str>`, so
/// `#[serde(try_from = "String")]` works), and serializing as its text.
///
/// One definition for the names of `ontology` ([`TypeName`], [`FieldName`]) and those of the
/// engine (`engine::names`: tenant slugs, state and transition names). The struct must derive
/// `Hash`/`Eq` (and `Ord` if any) from its single `String` field, so that they agree with
/// `str`'s and maps keyed by names can be queried with a `&str`.
///
/// ```ignore
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// pub struct Slug(String);
/// impl Slug {
///     pub fn parse(value: &str) -> Result<Slug, MyError> { … }
/// }
/// ontology::checked_name!(Slug, MyError);
/// ```
#[macro_export]
macro_rules! checked_name {
    ($name:ident, $error:ty) => {
        impl $name {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::cmp::PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl ::std::cmp::PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl ::std::cmp::PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, $error> {
                Self::parse(s)
            }
        }

        impl ::std::convert::TryFrom<String> for $name {
            type Error = $error;
            fn try_from(s: String) -> Result<Self, $error> {
                Self::parse(&s)
            }
        }

        impl ::std::convert::TryFrom<&str> for $name {
            type Error = $error;
            fn try_from(s: &str) -> Result<Self, $error> {
                Self::parse(s)
            }
        }

        impl ::std::convert::From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl $crate::names::__private::Serialize for $name {
            fn serialize<S: $crate::names::__private::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

/// The name of an entity type: snake_case singular, `^[a-z][a-z0-9_]{0,62}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct TypeName(String);

impl TypeName {
    /// Parses a type name.
    pub fn parse(value: &str) -> Result<TypeName, OntologyError> {
        Self::parse_owned(value.to_owned())
    }

    fn parse_owned(value: String) -> Result<TypeName, OntologyError> {
        match check_identifier(&value) {
            Ok(()) => Ok(TypeName(value)),
            Err(reason) => Err(OntologyError::InvalidName { kind: "type", value, reason }),
        }
    }
}

crate::checked_name!(TypeName, OntologyError);

/// The name of a field: `^[a-z][a-z0-9_]{0,62}$` and not one of [`RESERVED_FIELDS`].
///
/// Reserved names are refused at every depth, not only at the top level: one rule is easier
/// to remember, and nested data is flattened into the same namespaces by scripts and filters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct FieldName(String);

impl FieldName {
    /// Parses a field name.
    pub fn parse(value: &str) -> Result<FieldName, OntologyError> {
        Self::parse_owned(value.to_owned())
    }

    fn parse_owned(value: String) -> Result<FieldName, OntologyError> {
        let reason = match check_identifier(&value) {
            Err(reason) => reason,
            Ok(()) if RESERVED_FIELDS.contains(&value.as_str()) => {
                format!("is reserved (every entity has it); reserved names are: {}", RESERVED_FIELDS.join(", "))
            }
            Ok(()) => return Ok(FieldName(value)),
        };
        Err(OntologyError::InvalidName { kind: "field", value, reason })
    }
}

crate::checked_name!(FieldName, OntologyError);

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn type_names_parse() {
        for good in ["order", "order_line", "a", "x1", "customer_2b", &"a".repeat(63)] {
            assert_eq!(TypeName::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "Order", "1order", "_order", "order-line", "order line", "ordér", "order.line", &"a".repeat(64)]
        {
            let err = TypeName::parse(bad).unwrap_err();
            assert!(matches!(err, OntologyError::InvalidName { kind: "type", .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn type_names_allow_reserved_words() {
        // Reserved words only restrict fields.
        assert!(TypeName::parse("state").is_ok());
    }

    #[test]
    fn field_names_parse() {
        assert_eq!(FieldName::parse("customer_id").unwrap().to_string(), "customer_id");
        for bad in ["", "Customer", "9lives", "a-b", "a/b", "a~b"] {
            assert!(FieldName::parse(bad).is_err(), "{bad:?}");
        }
        for reserved in RESERVED_FIELDS {
            let err = FieldName::parse(reserved).unwrap_err();
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        // Only exact matches are reserved.
        assert!(FieldName::parse("state_note").is_ok());
        assert!(FieldName::parse("type_code").is_ok());
    }

    #[test]
    fn names_serde_through_parse() {
        let name: FieldName = serde_json::from_str("\"quantity\"").unwrap();
        assert_eq!(name, "quantity");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"quantity\"");
        let err = serde_json::from_str::<FieldName>("\"id\"").unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(serde_json::from_str::<TypeName>("\"Bad\"").is_err());
    }

    #[test]
    fn names_borrow_as_str() {
        let mut map = indexmap::IndexMap::new();
        map.insert(FieldName::parse("qty").unwrap(), 1);
        assert_eq!(map.get("qty"), Some(&1));
    }
}
