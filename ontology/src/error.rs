//! The crate's one error type. Every variant says where the problem is: the type and the
//! field path (`items[].product_id`, the notation of [`crate::Reference::path`]) or the
//! template (`title`, `number.template`), so a consultant can find it in the YAML.

/// An error in a type definition, or in rendering one of its templates.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OntologyError {
    /// A type or field name that does not follow the naming rules.
    #[error("invalid {kind} name {value:?}: {reason}")]
    InvalidName {
        /// `"type"` or `"field"`.
        kind: &'static str,
        /// The rejected name.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A field whose options do not fit its kind (enum without values, …).
    #[error("type {type_name}: field {path}: {message}")]
    InvalidField {
        /// The type the field belongs to.
        type_name: String,
        /// Field path, e.g. `items[].quantity`; `number` for the `number:` section.
        path: String,
        /// What is wrong.
        message: String,
    },

    /// A template that does not parse, or that failed to render (fuel, size, error).
    #[error("type {type_name}: template {path}: {message}")]
    Template {
        /// The type the template belongs to.
        type_name: String,
        /// `title` or `number.template`.
        path: String,
        /// The template engine's message, with its line.
        message: String,
    },

    /// A reference whose `to:` names no type of the set given to [`crate::compile_types`].
    #[error("type {type_name}: field {path}: reference to unknown type {to:?}")]
    UnknownReference {
        /// The type holding the reference.
        type_name: String,
        /// Field path of the reference.
        path: String,
        /// The missing target type.
        to: String,
    },

    /// Two definitions with the same type name given to [`crate::compile_types`].
    #[error("type {name} is defined more than once")]
    DuplicateType {
        /// The repeated name.
        name: String,
    },

    /// The generated JSON Schema was refused by the validator (the message names the type).
    /// A bug of this crate, since the field checks are meant to catch everything first; kept as
    /// an error rather than a panic.
    #[error("schema: {0}")]
    Schema(String),
}
