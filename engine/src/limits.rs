//! Every sandbox bound of the engine in one place.
//!
//! Scripts are written by tenants, so each resource a script can consume has a bound here; the
//! defaults are generous for business logic (a few hundred lines over a few hundred rows) and
//! small enough that a runaway script fails in well under a second. The Rhai engine is built
//! from these values once per compiled tenant ([`crate::script::ScriptEngine::new`]); the store
//! reads [`Limits::max_follow_up_depth`] when it evaluates follow-up transitions.

use std::time::Duration;

/// Sandbox bounds. Construct with [`Limits::default`] and override single fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Rhai operations per script run (each statement, expression step and loop iteration
    /// counts); exceeding it fails with `SCRIPT_LIMIT`.
    pub max_operations: u64,
    /// Nesting depth of Rhai function calls (stops runaway recursion).
    pub max_call_levels: usize,
    /// Nesting depth of an expression at the global level of a script (checked at compile).
    pub max_expr_depth: usize,
    /// Nesting depth of an expression inside a script function (checked at compile).
    pub max_function_expr_depth: usize,
    /// Largest string a script may build, in bytes.
    pub max_string_size: usize,
    /// Largest array a script may build, in elements.
    pub max_array_size: usize,
    /// Largest object map a script may build, in entries.
    pub max_map_size: usize,
    /// Wall time one script run may take; checked every [`Limits::TIME_CHECK_EVERY`] operations.
    pub script_timeout: Duration,
    /// How deep follow-up transitions may cascade (a follow-up of a follow-up … of the request).
    pub max_follow_up_depth: usize,
    /// Effects (updates, creates, follow-ups, events) one script run may produce.
    pub max_effects: usize,
}

impl Limits {
    /// The wall clock is read once per this many Rhai operations, not at every one.
    pub const TIME_CHECK_EVERY: u64 = 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 1024 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            script_timeout: Duration::from_millis(500),
            max_follow_up_depth: 4,
            max_effects: 1000,
        }
    }
}
