//! Entity type definitions: fields, JSON Schema, references, display and number templates.
//! Pure: no IO.
//!
//! A tenant's `types/<name>.yaml` deserializes into [`EntityTypeDef`] ([`def`]); [`CompiledType::compile`]
//! checks it and turns it into a JSON Schema validator, default filler and templates
//! ([`compile`]); [`compile_types`] does that for a whole tenant and checks that references
//! between types resolve.

pub mod compile;
pub mod decimal;
pub mod def;
pub mod error;
pub mod names;
pub mod template;

pub use compile::{compile_types, CompiledType, FieldError, Ontology, Reference, UserField};
pub use def::{EntityTypeDef, FieldDef, FieldKind, NumberDef};
pub use error::OntologyError;
pub use names::{FieldName, TypeName, RESERVED_FIELDS};
pub use template::Template;
