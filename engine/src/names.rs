//! Names that come from outside and stand for checked things, parsed once ("parse, don't
//! validate"): a tenant's slug ([`TenantSlug`]) and the names of a workflow's states and
//! transitions ([`StateName`], [`TransitionName`]). Holding one proves its text follows the rule
//! a package is held to (`tenants::validate` and publishing, `tenants::compile`, apply the same
//! parsers), so a string from a URL, a login form or a command line reaches the store only
//! through them. Entity type names are `ontology::TypeName`; every name, theirs and these, gets
//! its common traits (text access, comparison with text, `FromStr`, serializing) from the one
//! macro `ontology::checked_name!`.
//!
//! Versions published before state and transition names had a rule still load (the engine's
//! compiler does not check them); a name of theirs that breaks it cannot be named in a URL.

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {kind}: {rule}")]
pub struct NameError {
    /// `tenant slug`, `state name` or `transition name`.
    pub kind: &'static str,
    /// The text refused (cut to 100 characters).
    pub value: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

impl NameError {
    fn new(kind: &'static str, value: &str, rule: &'static str) -> NameError {
        NameError { kind, value: value.chars().take(100).collect(), rule }
    }
}

/// The rule of slugs, as said to whoever wrote one.
pub const SLUG_RULE: &str =
    "2 to 63 lowercase letters and digits, starting with a letter, in words joined by single hyphens";

/// The rule of state and transition names, as said to whoever wrote one.
pub const WORKFLOW_NAME_RULE: &str =
    "1 to 63 ASCII letters, digits and underscores, starting with a letter (`DRAFT`, `submitOrder`)";

/// Longest state or transition name: Postgres' identifier length, like type and field names.
const MAX_WORKFLOW_NAME: usize = 63;

/// A tenant's slug, the name of the tenant in URLs, tokens and on the command line: lowercase
/// ASCII letters and digits in words joined by single hyphens, starting with a letter, 2 to 63
/// characters (`chemichemi`, `change-control`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Parses a slug.
    pub fn parse(value: &str) -> Result<TenantSlug, NameError> {
        let ok = (2..=63).contains(&value.len())
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .split('-')
                .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if ok {
            Ok(TenantSlug(value.to_string()))
        } else {
            Err(NameError::new("tenant slug", value, SLUG_RULE))
        }
    }
}

ontology::checked_name!(TenantSlug, NameError);

/// Checks the rule of state and transition names.
fn workflow_name(kind: &'static str, value: &str) -> Result<String, NameError> {
    let mut bytes = value.bytes();
    let ok = value.len() <= MAX_WORKFLOW_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(NameError::new(kind, value, WORKFLOW_NAME_RULE))
    }
}

/// The name of a state of a workflow (`DRAFT`, `AWAITING_PAYMENT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateName(String);

impl StateName {
    /// Parses a state name.
    pub fn parse(value: &str) -> Result<StateName, NameError> {
        workflow_name("state name", value).map(StateName)
    }
}

ontology::checked_name!(StateName, NameError);

/// The name of a transition of a workflow (`submitOrder`, `approve`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransitionName(String);

impl TransitionName {
    /// Parses a transition name.
    pub fn parse(value: &str) -> Result<TransitionName, NameError> {
        workflow_name("transition name", value).map(TransitionName)
    }
}

ontology::checked_name!(TransitionName, NameError);

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_words_joined_by_single_hyphens() {
        for good in ["chemichemi", "change-control", "a1", "ab", "x-1-y", &format!("a{}", "b".repeat(62))] {
            assert_eq!(TenantSlug::parse(good).unwrap().as_str(), good, "{good:?}");
        }
        for bad in [
            "",
            "a",
            "1abc",
            "-abc",
            "abc-",
            "a--b",
            "Chemichemi",
            "che mi",
            "ché",
            "a_b",
            "a.b",
            "a/b",
            "%61b",
            &format!("a{}", "b".repeat(63)),
        ] {
            let err = TenantSlug::parse(bad).unwrap_err();
            assert_eq!(err.kind, "tenant slug", "{bad:?}");
            assert_eq!(err.rule, SLUG_RULE);
        }
    }

    #[test]
    fn state_and_transition_names_are_identifiers() {
        for good in ["DRAFT", "AWAITING_PAYMENT", "submitOrder", "a", "x1_y", &"a".repeat(63)] {
            assert_eq!(StateName::parse(good).unwrap().as_str(), good);
            assert_eq!(TransitionName::parse(good).unwrap().to_string(), good);
        }
        for bad in ["", "1st", "_x", "submit-order", "submit order", "a.b", "a/b", "é", "a\n", &"a".repeat(64)] {
            assert_eq!(StateName::parse(bad).unwrap_err().kind, "state name", "{bad:?}");
            assert_eq!(TransitionName::parse(bad).unwrap_err().kind, "transition name", "{bad:?}");
        }
    }

    #[test]
    fn a_refusal_names_the_value_cut_short() {
        let err = TransitionName::parse(&"é".repeat(1000)).unwrap_err();
        assert_eq!(err.value.chars().count(), 100);
        assert!(err.to_string().starts_with("`éé"), "{err}");
        assert!(err.to_string().ends_with(WORKFLOW_NAME_RULE), "{err}");
    }

    #[test]
    fn names_compare_and_serialize_as_their_text() {
        let name = TransitionName::parse("approve").unwrap();
        assert_eq!(name, "approve");
        assert_eq!(*"approve", name);
        assert_eq!(String::from("approve"), name);
        assert_eq!(&*name, "approve");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"approve\"");
        assert_eq!("chemichemi".parse::<TenantSlug>().unwrap().into_string(), "chemichemi");
    }

    /// What the shared macro (`ontology::checked_name!`) gives every name besides: maps keyed by
    /// names answer a `&str`, and conversions from text go through the parser.
    #[test]
    fn names_borrow_as_str_and_convert_only_through_their_parser() {
        let mut map = std::collections::HashMap::new();
        map.insert(StateName::parse("DRAFT").unwrap(), 1);
        assert_eq!(map.get("DRAFT"), Some(&1));
        assert_eq!(TenantSlug::try_from("acme").unwrap(), "acme");
        assert_eq!(TenantSlug::try_from("Acme".to_string()).unwrap_err().kind, "tenant slug");
        assert_eq!(TransitionName::try_from("a b").unwrap_err().kind, "transition name");
    }
}
