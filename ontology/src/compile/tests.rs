//! Tests of compiling, validating and rendering.
