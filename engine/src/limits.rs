//! Every sandbox bound of the engine in one place.
//!
//! Tenants write code that runs in a process every tenant shares: Rhai scripts, JSON-Logic
//! (guards, load expressions, named rules, the rules playground) and templates (titles,
//! numbers). Each resource that code can consume has a bound here (depth, size, time); the
//! defaults are generous for business logic (a few hundred lines over a few hundred rows) and
//! small enough that a runaway evaluation fails in well under a second with a clear 422 for the
//! tenant (`SCRIPT_LIMIT`, `RULE_LIMIT`, `TEMPLATE_LIMIT`), never an abort or a stall for the
//! others. The Rhai engine is built from these values once per compiled tenant
//! ([`crate::script::ScriptEngine::new`]); JSON-Logic is compiled and evaluated under them
//! ([`crate::logic`], [`crate::rules`]); the store reads [`Limits::max_follow_up_depth`] and the
//! transition output bounds when it applies a decision.
//!
//! Templates are compiled by the `ontology` crate, below this one; their bounds are constants
//! there and listed here ([`TEMPLATE_FUEL`], [`MAX_TEMPLATE_OUTPUT`], [`MAX_TEMPLATE_SOURCE`],
//! [`MAX_TEMPLATE_STRING`]) so this module stays the one index of every bound.

use std::time::Duration;

pub use ontology::template::{MAX_TEMPLATE_OUTPUT, MAX_TEMPLATE_SOURCE, MAX_TEMPLATE_STRING, TEMPLATE_FUEL};

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

    /// Nesting depth of a JSON-Logic rule (a guard, a load expression, a named rule) once its
    /// named rules are expanded; checked when it is compiled.
    pub max_rule_depth: usize,
    /// Size of a JSON-Logic rule once its named rules are expanded, in bytes of JSON text
    /// (measured before expanding, so rules that refer to each other cannot blow up).
    pub max_rule_size: usize,
    /// Iteration steps (one per element an iterating operator — `map`, `filter`, `reduce`,
    /// `all`, `some`, `none`, `sort`, `group_by` — visits) the JSON-Logic of one evaluation may
    /// take: all the guards and load expressions of one transition, or one playground call.
    pub rule_steps: u64,
    /// Wall time the JSON-Logic of one evaluation may take, checked inside loops.
    pub rule_timeout: Duration,
    /// Memory one JSON-Logic rule evaluation may allocate for its values, in bytes (strings and
    /// arrays it builds: `cat`, `merge`, `map` …).
    pub max_rule_memory: usize,

    /// Events one transition may emit (declared and the script's), follow-ups included.
    pub max_events: usize,
    /// Bytes (as JSON) of one event's payload.
    pub max_event_bytes: usize,
    /// Entities one transition may create, follow-ups included.
    pub max_creates: usize,
    /// Bytes (as JSON) one transition may write: the entity's and changed rows' data, created
    /// entities and event payloads, follow-ups included.
    pub max_transition_bytes: usize,
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
            max_rule_depth: 64,
            max_rule_size: 256 * 1024,
            rule_steps: 1_000_000,
            rule_timeout: Duration::from_millis(250),
            max_rule_memory: 32 * 1024 * 1024,
            max_events: 200,
            max_event_bytes: 64 * 1024,
            max_creates: 200,
            max_transition_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The short leash of evaluation that runs inline, on a request thread (see
/// [`crate::offload`]): rules and scripts read it where they read their own clock (inside
/// loops), and stop when it is past, so a transition known to be fast that turns out slow with
/// other data holds the thread for at most [`INLINE_LEASH`] before it is run again off the
/// reactor, with its full budget. Evaluation is pure, so running it again is safe.
pub mod leash {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    thread_local! {
        static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
        static HIT: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f` on the leash; returns its result and whether the leash stopped it (then the
    /// result is to be thrown away).
    pub fn run<T>(leash: Duration, f: impl FnOnce() -> T) -> (T, bool) {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                DEADLINE.with(|d| d.set(None));
                HIT.with(|h| h.set(false));
            }
        }
        let _reset = Reset;
        DEADLINE.with(|d| d.set(Some(Instant::now() + leash)));
        HIT.with(|h| h.set(false));
        let out = f();
        (out, HIT.with(Cell::get))
    }

    /// Whether evaluation on this thread is on a leash that has run out (and, if so, marks it).
    pub fn expired() -> bool {
        let over = DEADLINE.with(Cell::get).is_some_and(|d| Instant::now() >= d);
        if over {
            HIT.with(|h| h.set(true));
        }
        over
    }

    /// Whether evaluation on this thread is on a leash at all.
    pub fn active() -> bool {
        DEADLINE.with(Cell::get).is_some()
    }
}

/// How long inline evaluation may hold a request thread before it moves off the reactor.
pub const INLINE_LEASH: Duration = Duration::from_millis(5);
