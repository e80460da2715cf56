//! Entity type definitions: fields, JSON Schema, references, display and number templates. Pure: no IO.
