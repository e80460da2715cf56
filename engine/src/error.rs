//! The crate's error type: problems found while compiling definitions or running a rule or
//! script, each variant saying where (type, transition, guard index, script line).
//!
//! Rejections of a *request* (wrong state, missing role, failed guard …) are not errors of the
//! engine; they are [`crate::eval::Rejection`]s.

/// Formats an optional script position as ` at line L, column C` (or nothing).
fn at(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// An error of the engine, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A JSON-Logic rule that does not compile.
    #[error("invalid JSON-Logic rule: {message}")]
    LogicCompile { message: String },
    /// A JSON-Logic rule that failed while being evaluated.
    #[error("JSON-Logic evaluation failed: {message}")]
    LogicEval { message: String },
    /// A decision table called by a rule or a script failed (an input of the wrong type, two
    /// rows under `hit: unique`, an unknown table): the tenant's configuration or data, answered
    /// 422 `DECISION_FAILED`.
    #[error("{message}")]
    Decision { message: String },
    /// A JSON-Logic rule that ran out of its budget ([`crate::limits::Limits`]: steps, time,
    /// memory): the tenant's configuration, answered 422 `RULE_LIMIT`.
    #[error("rule limit exceeded: {message}")]
    RuleLimit { message: String },
    /// A script that does not compile.
    #[error("script does not compile{}: {message}", at(.line, .column))]
    ScriptCompile { message: String, line: Option<usize>, column: Option<usize> },
    /// A script that failed at run time (a runtime error or `throw`): a bug in the script.
    #[error("script failed{}: {message}", at(.line, &None))]
    ScriptFailed { message: String, line: Option<usize> },
    /// A script that rejected the transition with `fail(message)`: a business rule the script
    /// computed, answered like a failed guard.
    #[error("{message}")]
    ScriptRejected { message: String, line: Option<usize> },
    /// A script that hit a sandbox limit ([`crate::limits::Limits`]).
    #[error("script limit exceeded: {message}")]
    ScriptLimit { message: String },
    /// The `workflow:` value of a type does not have the expected shape.
    #[error("type `{type_name}`: invalid workflow: {message}")]
    WorkflowSyntax { type_name: String, message: String },
    /// A workflow without exactly one initial state.
    #[error("type `{type_name}`: the workflow has {count} initial states; it needs exactly one")]
    InitialStates { type_name: String, count: usize },
    /// A transition naming a state the workflow does not declare.
    #[error("type `{type_name}`, transition `{transition}`: unknown state `{state}` in `{field}`")]
    UnknownState {
        type_name: String,
        transition: String,
        /// `from` or `to`.
        field: &'static str,
        state: String,
    },
    /// A transition that nobody may fire (`roles:` missing or empty).
    #[error("type `{type_name}`, transition `{transition}`: the role list is empty")]
    NoRoles { type_name: String, transition: String },
    /// A transition with an empty `from:` list.
    #[error("type `{type_name}`, transition `{transition}`: `from` is empty")]
    NoFromStates { type_name: String, transition: String },
    /// A create transition (`create: true`) declaring what it cannot (`from`, `four_eyes`), or
    /// a second one in the workflow (`field`: `create`).
    #[error("type `{type_name}`, transition `{transition}`: {message}")]
    CreateTransition { type_name: String, transition: String, field: &'static str, message: String },
    /// A guard whose rule does not compile.
    #[error("type `{type_name}`, transition `{transition}`, guard {index}: {message}")]
    Guard { type_name: String, transition: String, index: usize, message: String },
    /// A transition script that does not compile.
    #[error("type `{type_name}`, transition `{transition}`, script{}: {message}", at(.line, .column))]
    Script { type_name: String, transition: String, line: Option<usize>, column: Option<usize>, message: String },
    /// A transition input schema that is not a valid JSON Schema.
    #[error("type `{type_name}`, transition `{transition}`, input schema: {message}")]
    InputSchema { type_name: String, transition: String, message: String },
    /// A load declaration that is wrong (unknown type, not exactly one of `id`/`where`, a rule
    /// that does not compile).
    #[error("type `{type_name}`, transition `{transition}`, load `{load}`: {message}")]
    Load { type_name: String, transition: String, load: String, message: String },
    /// A named rule (`rules:` of the tenant) that is broken: it refers to an unknown rule, is
    /// part of a cycle, or does not compile.
    #[error("rule `{rule}`: {message}")]
    Rule { rule: String, message: String },
    /// A `four_eyes` entry that is neither `creator` nor a transition of the workflow.
    #[error("type `{type_name}`, transition `{transition}`, four_eyes: `{entry}` is neither `creator` nor a transition of this workflow")]
    FourEyes { type_name: String, transition: String, entry: String },
    /// A record rule (`record_rules:` of a type) that does not compile to SQL.
    #[error("type `{type_name}`, record_rules, role `{role}`: {message}")]
    RecordRule { type_name: String, role: String, message: String },
    /// A problem with a state's `editable` or `timers`.
    #[error("type `{type_name}`, state `{state}`, {message}")]
    State { type_name: String, state: String, message: String },
}
