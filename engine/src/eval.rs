//! The pure evaluation of a transition, in two steps so the store can load data in between:
//!
//! 1. [`prepare`]: the transition exists from the entity's state, the actor holds a role, the
//!    input is valid, and the loads that read no other load are computed into [`LoadRequest`]s;
//! 2. (the store runs the pending load requests ([`Prepared::pending_loads`]), locking what they
//!    say, and asks [`Prepared::next_stage`] for the requests of the loads that read what was
//!    just loaded, until there are none; when [`Prepared::needs_history`] names transitions, it
//!    gives who fired them on the entity to [`Prepared::set_history`]);
//! 3. [`decide`]: four-eyes, guards, script, and the validation of every changed or created
//!    entity, giving a [`Decision`] (or a [`Rejection`]) with a [`Trace`].
//!
//! No IO happens here; the clock is an argument.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use ontology::compile::{CompiledType, FieldError};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::rc::Rc;
use std::sync::Arc;
use uuid::Uuid;

use crate::compiled::{CompiledLoadKind, CompiledTenant, CompiledTransition, CompiledWorkflow};
use crate::decision::{DataTables, DecisionTrace};
use crate::def::FOUR_EYES_CREATOR;
use crate::error::EngineError;
use crate::limits::Limits;
use crate::logic::LogicContext;
use crate::model::{is_reserved, rfc3339, Actor, Entity, Loaded};
use crate::permissions::Action;
use crate::script::Effect;

/// Why a transition was refused. Serialized as `{"code": "GUARD_FAILED", "details": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "code", content = "details", rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Rejection {
    /// The transition does not exist, or not from the entity's state (HTTP 409).
    #[error("this transition is not available in state `{state}`")]
    InvalidTransition {
        state: String,
        /// The transitions that do exist from `state`.
        available: Vec<String>,
    },
    /// The actor holds none of the transition's roles (HTTP 403).
    #[error("this transition needs one of the roles {}", required_roles.join(", "))]
    Forbidden { required_roles: Vec<String> },
    /// The actor's roles may create entities of the type but not these (`roles.<role>.create`
    /// of `tenant.yaml`): a field they may not set, or a create condition that is false
    /// (HTTP 403).
    #[error("{}", create_refusal_message(type_name, refusal))]
    CreateRefused { type_name: String, refusal: crate::permissions::CreateRefusal },
    /// The input, or data the transition would write, is invalid (HTTP 422). Paths are JSON
    /// pointers: `/input/…`, `/entity/…` (the entity's data), `/update/<type>/<id>/…`,
    /// `/create/<type>/<n>/…` (n counts the script's creates from 0).
    #[serde(rename = "VALIDATION_FAILED")]
    #[error("validation failed: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation { errors: Vec<FieldError> },
    /// A guard is false (or could not be evaluated), or four-eyes refused the actor.
    #[error("{message}")]
    GuardFailed {
        /// Index of the guard in the transition's `guards`; `None` when the script rejected the
        /// transition with `fail(message)` or four-eyes refused it (then the last guard result
        /// of the trace is the four-eyes check, with `kind: four_eyes`).
        index: Option<usize>,
        message: String,
        /// Boxed: the trace is large, and rejections travel in every `Result` of the module.
        trace: Box<Trace>,
    },
    /// The script failed (`fail(message)`, `throw`, a runtime error) or produced an effect
    /// that cannot be applied.
    #[error("{message}")]
    ScriptFailed { message: String, line: Option<usize> },
    /// The script hit a sandbox limit.
    #[error("{message}")]
    ScriptLimit { message: String },
    /// A decision table failed (an input of the wrong type, two rows matching under
    /// `hit: unique`, an unknown table, a row kept as data that does not compile): the tenant's
    /// configuration or data (HTTP 422). `at` says where (`guard 0`, `load customer`, `script`).
    #[error("{at}: {message}")]
    DecisionFailed { at: String, message: String },
    /// A JSON-Logic rule (a guard, a load expression) ran out of its budget (steps, time,
    /// memory), or the transition's output passed a bound ([`Limits::max_events`] …): the
    /// tenant's configuration (HTTP 422). `at` says where (`guard 0`, `load customer`,
    /// `events`).
    #[error("{at}: {message}")]
    RuleLimit { at: String, message: String },
    /// A template (a number, a title) failed or ran out of its budget: the tenant's
    /// configuration (HTTP 422). `at` is the type and template (`order: number.template`).
    #[error("{at}: {message}")]
    TemplateFailed { at: String, message: String },
    /// A bug or an inconsistency between the caller and the definitions (HTTP 500; never shown
    /// to the client).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Rejection {
    /// The error code of the API envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidTransition { .. } => "INVALID_TRANSITION",
            Rejection::Forbidden { .. } | Rejection::CreateRefused { .. } => "FORBIDDEN",
            Rejection::Validation { .. } => "VALIDATION_FAILED",
            Rejection::GuardFailed { .. } => "GUARD_FAILED",
            Rejection::ScriptFailed { .. } => "SCRIPT_FAILED",
            Rejection::ScriptLimit { .. } => "SCRIPT_LIMIT",
            Rejection::RuleLimit { .. } => "RULE_LIMIT",
            Rejection::DecisionFailed { .. } => "DECISION_FAILED",
            Rejection::TemplateFailed { .. } => "TEMPLATE_FAILED",
            Rejection::Internal(_) => "INTERNAL",
        }
    }
}

/// The message of a [`Rejection::CreateRefused`].
pub fn create_refusal_message(type_name: &str, refusal: &crate::permissions::CreateRefusal) -> String {
    match refusal {
        crate::permissions::CreateRefusal::Fields(fields) => format!(
            "your roles may not set {} when creating {type_name} entities",
            fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        ),
        crate::permissions::CreateRefusal::Rule(message) => message.clone(),
    }
}

impl From<EngineError> for Rejection {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::ScriptFailed { message, line } => Rejection::ScriptFailed { message, line },
            EngineError::ScriptRejected { message, .. } => {
                Rejection::GuardFailed { index: None, message, trace: Box::default() }
            }
            EngineError::ScriptLimit { message } => Rejection::ScriptLimit { message },
            EngineError::RuleLimit { message } => Rejection::RuleLimit { at: "rule".into(), message },
            EngineError::Decision { message } => Rejection::DecisionFailed { at: "rule".into(), message },
            other => Rejection::Internal(other.to_string()),
        }
    }
}

/// What a load asks the store for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadRequest {
    /// The load's name (the key of `loaded` in [`decide`]).
    pub name: String,
    pub type_name: String,
    /// Lock the rows (`FOR UPDATE`, in id order).
    pub lock: bool,
    pub kind: LoadKind,
}

/// How to find a load's rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// One row by id; `None` when the id rule gave null or a string that is no UUID (the load is
    /// then `Loaded::One(None)` without a query).
    ById(Option<Uuid>),
    /// Rows matching every condition: `(field or "state" or "id", value)`; a scalar means
    /// equality, an array "one of".
    Where(Vec<(String, Value)>),
}

/// What a [`GuardResult`] is the result of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GuardKind {
    /// A guard of the transition's `guards` (`index` is its position there).
    #[default]
    Guard,
    /// An entry of the transition's `four_eyes` (`index` is its position there); checked
    /// before the guards.
    FourEyes,
}

/// A guard's result, for traces and for "which transitions can I fire, and why not".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardResult {
    pub kind: GuardKind,
    pub index: usize,
    pub message: String,
    pub passed: bool,
    /// The evaluation error, if the rule could not be evaluated (it then counts as false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The decision tables the rule evaluated (`decide`), with the rows that matched and won.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<DecisionTrace>,
    /// For a guard that did not pass: the values of the variables its rule reads.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub values: Map<String, Value>,
}

/// A load's result size, for traces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadTrace {
    pub name: String,
    pub type_name: String,
    pub rows: usize,
}

/// What happened during a decision: loads, guards with their results, effects the script
/// produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Trace {
    pub loads: Vec<LoadTrace>,
    pub guards: Vec<GuardResult>,
    pub script_ran: bool,
    pub effects: Vec<Effect>,
    /// The decision tables the load expressions and the script evaluated (the guards' are in
    /// their results), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<DecisionTrace>,
}

/// A change to a loaded row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowUpdate {
    pub type_name: String,
    pub id: Uuid,
    /// The row's full new data.
    pub data: Value,
    /// `{field: {from, to}}` for changed top-level fields.
    pub changes: Value,
}

/// An entity the script created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewEntity {
    pub id: Uuid,
    pub type_name: String,
    /// The initial state of its type's workflow.
    pub state: String,
    /// Its data, defaults applied and validated (generated fields, e.g. a number, not filled).
    pub data: Value,
}

/// A transition to fire on a loaded row, in the same database transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowUp {
    pub type_name: String,
    pub id: Uuid,
    pub transition: String,
    pub input: Value,
}

/// An event for the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventOut {
    pub name: String,
    pub payload: Value,
}

/// The outcome of an accepted transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub transition: String,
    pub from: String,
    pub to: String,
    /// The entity's full new data.
    pub data: Value,
    /// `{field: {from, to}}` for changed top-level fields.
    pub changes: Value,
    pub updates: Vec<RowUpdate>,
    pub creates: Vec<NewEntity>,
    pub follow_ups: Vec<FollowUp>,
    /// Declared events first (payload `{id, type, from, to, transition}`), then the script's.
    pub events: Vec<EventOut>,
    pub trace: Trace,
}

/// A transition that passed the first checks, with what it needs loaded.
#[derive(Debug)]
pub struct Prepared<'t> {
    tenant: &'t CompiledTenant,
    ty: &'t Arc<CompiledType>,
    workflow: &'t CompiledWorkflow,
    transition: &'t CompiledTransition,
    entity: Entity,
    /// `{entity, input, actor, now}` (an object).
    context: Value,
    /// The requests computed so far, stage by stage.
    load_requests: Vec<LoadRequest>,
    /// How many of `load_requests` the store has run (the rest are pending).
    resolved: usize,
    /// The load stage whose requests were computed last.
    stage: usize,
    /// Loads whose type the actor may not view: their values are left out of guard values, both
    /// those [`guard_results`] explains and those in the trace of a refusal by [`decide`].
    hidden_loads: Vec<String>,
    /// Who fires it (for four-eyes), and whether it is the system (exempt from four-eyes).
    actor_id: String,
    actor_system: bool,
    /// The transitions named by `four_eyes` whose earlier actors are needed (none for a system
    /// actor, who is exempt).
    needs_history: Vec<String>,
    /// Transition → the ids of the actors who fired it on the entity before.
    history: Option<IndexMap<String, Vec<String>>>,
    /// The decision tables whose rows the store read from entities (see
    /// [`Prepared::set_data_tables`]).
    data_tables: Arc<DataTables>,
    /// The traces of the decision tables the load expressions evaluated, stage by stage.
    load_decisions: Vec<DecisionTrace>,
}

impl<'t> Prepared<'t> {
    /// Every load request computed so far (after [`prepare`]: those of the loads that read no
    /// other load; each [`Prepared::next_stage`] adds the next stage's).
    pub fn load_requests(&self) -> &[LoadRequest] {
        &self.load_requests
    }

    /// The requests the store has still to run: those of the stage computed last.
    pub fn pending_loads(&self) -> &[LoadRequest] {
        &self.load_requests[self.resolved.min(self.load_requests.len())..]
    }

    /// Whether every load has its request (no stage is left to compute). [`decide`] counts a
    /// load without a request as empty, so the store asks [`Prepared::next_stage`] until this
    /// holds.
    pub fn loads_complete(&self) -> bool {
        self.stage >= self.transition.last_load_stage()
    }

    /// Marks the pending requests as run and computes the requests of the next stage: the loads
    /// that read loads of earlier stages, evaluated against `loaded` (every load run so far, by
    /// name; a missing one counts as empty). Returns whether there are new pending requests;
    /// `false` once every load has its request. Pure: the store runs the requests.
    ///
    /// Nothing changes unless it succeeds, so a caller may run it again after an error.
    pub fn next_stage(&mut self, loaded: &IndexMap<String, Loaded>) -> Result<bool, Rejection> {
        let resolved = self.load_requests.len();
        let mut stage = self.stage;
        while stage < self.transition.last_load_stage() {
            stage += 1;
            if !self.transition.loads().iter().any(|l| l.stage == stage) {
                continue;
            }
            let (context, _) = full_context(self, loaded);
            let (requests, traces) =
                stage_requests(self.tenant, self.ty, self.transition, &context, stage, &self.data_tables)?;
            self.load_decisions.extend(traces);
            self.resolved = resolved;
            self.stage = stage;
            self.load_requests.extend(requests);
            return Ok(true);
        }
        self.resolved = resolved;
        self.stage = stage;
        Ok(false)
    }

    /// The transition being fired.
    pub fn transition(&self) -> &'t CompiledTransition {
        self.transition
    }

    /// The workflow it belongs to.
    pub fn workflow(&self) -> &'t CompiledWorkflow {
        self.workflow
    }

    /// The entity it is fired on.
    pub fn entity(&self) -> &Entity {
        &self.entity
    }

    /// The validated input (`{}` when none was given).
    pub fn input(&self) -> &Value {
        self.context.get("input").unwrap_or(&Value::Null)
    }

    /// The transitions (named by the transition's `four_eyes`) whose earlier actors on this
    /// entity the store must give to [`Prepared::set_history`] before [`decide`] or
    /// [`guard_results`]. Empty when there are none, or when the actor is the system.
    pub fn needs_history(&self) -> &[String] {
        &self.needs_history
    }

    /// Gives the ids of the actors who fired each of [`Prepared::needs_history`] on the entity
    /// before (a transition nobody fired may be missing). Without it, a transition whose
    /// four-eyes needs history is refused (fail closed).
    pub fn set_history(&mut self, history: IndexMap<String, Vec<String>>) {
        self.history = Some(history);
    }

    /// Gives the decision tables whose rows are kept as entities (`rows_from`), read by the
    /// store (cached, checked against the rows' version). Without it, such a table has only its
    /// default.
    ///
    /// Given before any load has run, the first stage's requests are computed again with them
    /// (a load expression may call such a table).
    pub fn set_data_tables(&mut self, tables: Arc<DataTables>) -> Result<(), Rejection> {
        self.data_tables = tables;
        if self.resolved == 0 && self.stage == 0 && !self.load_requests.is_empty() {
            let (requests, traces) =
                stage_requests(self.tenant, self.ty, self.transition, &self.context, 0, &self.data_tables)?;
            self.load_requests = requests;
            self.load_decisions = traces;
        }
        Ok(())
    }

    /// The tenant's compiled definitions.
    pub fn tenant(&self) -> &'t CompiledTenant {
        self.tenant
    }
}

/// Checks that the transition may be fired (it exists from the entity's state, the actor holds
/// one of its roles, the input is valid) and computes its load requests.
pub fn prepare<'t>(
    tenant: &'t CompiledTenant,
    entity: &Entity,
    transition: &str,
    input: &Value,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Prepared<'t>, Rejection> {
    prepare_inner(tenant, entity, transition, input, actor, now, Checks { roles_and_input: true, creating: false })
}

/// What [`prepare_inner`] checks.
#[derive(Clone, Copy)]
struct Checks {
    /// The actor's roles and the input (not when explaining).
    roles_and_input: bool,
    /// The create transition on a new entity (else a transition from the entity's state).
    creating: bool,
}

/// [`prepare`] of the workflow's create transition (`create: true`) on a new entity, just
/// inserted in the initial state: the roles and input are checked as for any transition.
pub fn prepare_create<'t>(
    tenant: &'t CompiledTenant,
    entity: &Entity,
    input: &Value,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Prepared<'t>, Rejection> {
    let name = tenant
        .workflow(&entity.type_name)
        .and_then(|w| w.create_transition())
        .map(|t| t.name().to_string())
        .ok_or_else(|| Rejection::Internal(format!("type `{}` has no create transition", entity.type_name)))?;
    prepare_inner(tenant, entity, &name, input, actor, now, Checks { roles_and_input: true, creating: true })
}

/// Like [`prepare`] with an empty input and without the role and input checks: for explaining
/// which transitions an actor could fire and why not ([`guard_results`]). Never pass the result
/// to [`decide`].
pub fn prepare_explain<'t>(
    tenant: &'t CompiledTenant,
    entity: &Entity,
    transition: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Prepared<'t>, Rejection> {
    prepare_inner(
        tenant,
        entity,
        transition,
        &Value::Null,
        actor,
        now,
        Checks { roles_and_input: false, creating: false },
    )
}

fn prepare_inner<'t>(
    tenant: &'t CompiledTenant,
    entity: &Entity,
    transition: &str,
    input: &Value,
    actor: &Actor,
    now: DateTime<Utc>,
    checks: Checks,
) -> Result<Prepared<'t>, Rejection> {
    let _span = tracing::debug_span!("prepare", entity.type = %entity.type_name, transition).entered();
    let (Some(ty), Some(workflow)) = (tenant.type_(&entity.type_name), tenant.workflow(&entity.type_name)) else {
        return Err(Rejection::Internal(format!("unknown type `{}`", entity.type_name)));
    };
    let t = match workflow.transition(transition) {
        Some(t) if checks.creating && t.def().create => t,
        Some(t) if !checks.creating && t.from().contains(&entity.state) => t,
        _ => {
            return Err(Rejection::InvalidTransition {
                state: entity.state.clone(),
                available: workflow.transitions_from(&entity.state).map(|t| t.name().to_string()).collect(),
            })
        }
    };
    if checks.roles_and_input && !actor.may(t.roles()) {
        return Err(Rejection::Forbidden { required_roles: t.roles().to_vec() });
    }
    let input = match input {
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    };
    if checks.roles_and_input {
        t.validate_input(&input).map_err(|errors| Rejection::Validation { errors })?;
    }

    let mut context = Map::with_capacity(4 + t.loads().len());
    context.insert("entity".into(), entity.to_context_value());
    context.insert("input".into(), input);
    context.insert("actor".into(), actor.to_context_value());
    context.insert("now".into(), Value::String(rfc3339(now)));
    let context = Value::Object(context);

    let (load_requests, load_decisions) = if t.loads().is_empty() {
        (Vec::new(), Vec::new())
    } else {
        stage_requests(tenant, ty, t, &context, 0, &Arc::default())?
    };
    // Loads of types the actor may not view: their values never appear in guard results, whether
    // explained or in the trace of a refusal.
    let permissions = tenant.permissions();
    let hidden_loads = t
        .loads()
        .iter()
        .filter(|l| !permissions.allows(&actor.roles, actor.system, &l.type_name, Action::View))
        .map(|l| l.name.clone())
        .collect();
    let needs_history = if actor.system {
        Vec::new()
    } else {
        t.four_eyes().iter().filter(|e| e.as_str() != FOUR_EYES_CREATOR).cloned().collect()
    };
    Ok(Prepared {
        tenant,
        ty,
        workflow,
        transition: t,
        entity: entity.clone(),
        context,
        load_requests,
        resolved: 0,
        stage: 0,
        hidden_loads,
        actor_id: actor.id.clone(),
        actor_system: actor.system,
        needs_history,
        history: None,
        data_tables: Arc::default(),
        load_decisions,
    })
}

/// The requests of the loads of `stage`, in declaration order, their rules evaluated against
/// `context` (`{entity, input, actor, now}` and the loads of the earlier stages).
fn stage_requests(
    tenant: &CompiledTenant,
    ty: &CompiledType,
    t: &CompiledTransition,
    context: &Value,
    stage: usize,
    data: &Arc<DataTables>,
) -> Result<(Vec<LoadRequest>, Vec<DecisionTrace>), Rejection> {
    let shapes = shapes(tenant, ty, t);
    let rules = RulesContext::new(context, &shapes);
    let (requests, traces) = crate::decision::scope(tenant.decisions(), data, Some(&|| rules.get()), || {
        crate::dates::in_zone(tenant.time_zone(), || {
            crate::logic::budget(tenant.limits(), || stage_requests_within(t, &rules, stage))
        })
    });
    Ok((requests?, traces))
}

/// A transition's context as its rules read it ([`LogicContext::shaped`]), converted when a rule
/// first needs it and shared by the guards, the loads' expressions and the decision tables'
/// inputs.
struct RulesContext<'c> {
    context: &'c Value,
    shapes: &'c crate::decimals::Shapes<'c>,
    converted: std::cell::OnceCell<Rc<LogicContext>>,
}

impl<'c> RulesContext<'c> {
    fn new(context: &'c Value, shapes: &'c crate::decimals::Shapes<'c>) -> Self {
        RulesContext { context, shapes, converted: std::cell::OnceCell::new() }
    }

    fn get(&self) -> Rc<LogicContext> {
        self.converted.get_or_init(|| Rc::new(LogicContext::shaped(self.context, self.shapes))).clone()
    }
}

fn stage_requests_within(
    t: &CompiledTransition,
    rules: &RulesContext<'_>,
    stage: usize,
) -> Result<Vec<LoadRequest>, Rejection> {
    let mut requests = Vec::new();
    for load in t.loads().iter().filter(|l| l.stage == stage) {
        let ctx = rules.get();
        let eval = |logic: &crate::logic::Logic| {
            logic.evaluate(&ctx).map_err(|e| match e {
                EngineError::RuleLimit { message } => {
                    Rejection::RuleLimit { at: format!("load `{}`", load.name), message }
                }
                EngineError::Decision { message } => {
                    Rejection::DecisionFailed { at: format!("load `{}`", load.name), message }
                }
                e => Rejection::Internal(format!("load `{}`: {e}", load.name)),
            })
        };
        let kind = match &load.kind {
            CompiledLoadKind::ById(logic) => LoadKind::ById(match eval(logic)? {
                Value::String(s) => Uuid::parse_str(&s).ok(),
                _ => None,
            }),
            CompiledLoadKind::Where(fields) => LoadKind::Where(
                fields.iter().map(|(f, logic)| Ok((f.clone(), eval(logic)?))).collect::<Result<_, Rejection>>()?,
            ),
        };
        requests.push(LoadRequest {
            name: load.name.clone(),
            type_name: load.type_name.clone(),
            lock: load.lock,
            kind,
        });
    }
    Ok(requests)
}

/// Which values of a transition's context hold entities of which type: `entity`, and each
/// load (a row, or a list of rows). Rules read their decimal fields as numbers, scripts as
/// decimals (see [`crate::decimals`]). Public for the benchmark, which runs guards and scripts
/// on their own as the engine runs them.
pub fn shapes<'t>(
    tenant: &'t CompiledTenant,
    ty: &'t CompiledType,
    t: &'t CompiledTransition,
) -> Vec<(&'t str, &'t CompiledType)> {
    let mut out = Vec::with_capacity(1 + t.loads().len());
    out.push(("entity", ty));
    for load in t.loads() {
        if let Some(loaded) = tenant.type_(&load.type_name) {
            out.push((load.name.as_str(), loaded.as_ref()));
        }
    }
    out
}

/// The four-eyes checks of the transition, in the order of its `four_eyes` (none for a system
/// actor); with `stop_at_first_failure`, stops after the first that fails.
fn run_four_eyes(prepared: &Prepared<'_>, stop_at_first_failure: bool) -> Vec<GuardResult> {
    let four_eyes = prepared.transition.four_eyes();
    if prepared.actor_system || four_eyes.is_empty() {
        return Vec::new();
    }
    let noun = prepared.entity.type_name.replace('_', " ");
    let me = prepared.actor_id.as_str();
    let mut results = Vec::with_capacity(four_eyes.len());
    for (index, entry) in four_eyes.iter().enumerate() {
        let mut values = Map::new();
        let (passed, error, message) = if entry == FOUR_EYES_CREATOR {
            let passed = prepared.entity.created_by != me;
            if !passed {
                values.insert("actor.id".into(), Value::String(me.to_string()));
                values.insert("entity.created_by".into(), Value::String(prepared.entity.created_by.clone()));
            }
            let message = if passed {
                format!("four-eyes: not by the creator of this {noun}")
            } else {
                format!("four-eyes: you created this {noun}")
            };
            (passed, None, message)
        } else {
            match prepared.history.as_ref() {
                None => (
                    false,
                    Some("the earlier actors of this transition were not loaded".to_string()),
                    format!("four-eyes: cannot tell who fired {entry} on this {noun}"),
                ),
                Some(history) => {
                    let actors = history.get(entry).map(Vec::as_slice).unwrap_or_default();
                    let passed = !actors.iter().any(|a| a == me);
                    if !passed {
                        values.insert("actor.id".into(), Value::String(me.to_string()));
                        values.insert(format!("history.{entry}"), json!(actors));
                    }
                    let message = if passed {
                        format!("four-eyes: not by whoever fired {entry} on this {noun}")
                    } else {
                        format!("four-eyes: you fired {entry} on this {noun}")
                    };
                    (passed, None, message)
                }
            }
        };
        results.push(GuardResult {
            kind: GuardKind::FourEyes,
            index,
            message,
            passed,
            error,
            values,
            decisions: Vec::new(),
        });
        if !passed && stop_at_first_failure {
            break;
        }
    }
    results
}

/// The full context (`{entity, input, actor, now, <loads>}`) and load traces, loads in
/// declaration order. A load missing from `loaded`, or whose request was not computed yet (a
/// later stage), counts as empty (`null` for a load by id, `[]` for a filter).
/// The context with the loads' values: `prepared`'s own, borrowed, when the transition has no
/// loads (no copy of the entity's data on the way of a plain transition).
fn full_context<'p>(
    prepared: &'p Prepared<'_>,
    loaded: &IndexMap<String, Loaded>,
) -> (std::borrow::Cow<'p, Value>, Vec<LoadTrace>) {
    let loads = prepared.transition.loads();
    if loads.is_empty() {
        return (std::borrow::Cow::Borrowed(&prepared.context), Vec::new());
    }
    let mut context = match &prepared.context {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let mut traces = Vec::with_capacity(loads.len());
    for load in loads {
        let requested = prepared.load_requests.iter().any(|r| r.name == load.name);
        let (value, rows) = match (loaded.get(&load.name).filter(|_| requested), &load.kind) {
            (Some(l), _) => (l.to_context_value(), l.rows().len()),
            (None, CompiledLoadKind::ById(_)) => (Value::Null, 0),
            (None, CompiledLoadKind::Where(_)) => (Value::Array(Vec::new()), 0),
        };
        context.insert(load.name.clone(), value);
        traces.push(LoadTrace { name: load.name.clone(), type_name: load.type_name.clone(), rows });
    }
    (std::borrow::Cow::Owned(Value::Object(context)), traces)
}

/// Evaluates guards in order; with `stop_at_first_failure`, stops after the first that fails.
/// A guard that ran out of its budget stops the evaluation: its limit is returned beside the
/// results (a limit is the configuration's fault, not a guard that is false).
fn run_guards(
    transition: &CompiledTransition,
    ctx: &LogicContext,
    stop_at_first_failure: bool,
) -> (Vec<GuardResult>, Option<Rejection>) {
    let mut results = Vec::with_capacity(transition.guards().len());
    for (index, g) in transition.guards().iter().enumerate() {
        let outcome = g.logic.truthy(ctx);
        let decisions = crate::decision::take_traces();
        let (passed, error) = match outcome {
            Ok(b) => (b, None),
            Err(e @ (EngineError::RuleLimit { .. } | EngineError::Decision { .. })) => {
                let message = match &e {
                    EngineError::RuleLimit { message } | EngineError::Decision { message } => message.clone(),
                    _ => e.to_string(),
                };
                results.push(GuardResult {
                    kind: GuardKind::Guard,
                    index,
                    message: g.message.clone(),
                    passed: false,
                    error: Some(message.clone()),
                    values: Map::new(),
                    decisions,
                });
                let at = format!("guard {index}");
                let rejection = match e {
                    EngineError::RuleLimit { .. } => Rejection::RuleLimit { at, message },
                    _ => Rejection::DecisionFailed { at, message },
                };
                return (results, Some(rejection));
            }
            Err(e) => (false, Some(e.to_string())),
        };
        let values = if passed {
            Map::new()
        } else {
            g.vars
                .iter()
                .filter(|p| !p.contains('*'))
                .map(|p| (p.clone(), ctx.lookup(p).unwrap_or(Value::Null)))
                .collect()
        };
        results.push(GuardResult {
            kind: GuardKind::Guard,
            index,
            message: g.message.clone(),
            passed,
            error,
            values,
            decisions,
        });
        if !passed && stop_at_first_failure {
            break;
        }
    }
    (results, None)
}

/// Evaluates every four-eyes check and every guard (not stopping at the first false one), for
/// `GET …/transitions`: four-eyes results first (`kind: four_eyes`), then the guards.
/// Prepared by [`prepare_explain`], the values of a failed guard leave out every variable of a
/// load whose type the actor may not view (`passed` and the message stay).
/// `_limits` is taken for symmetry with [`decide`]; guards need no limit today.
pub fn guard_results(prepared: &Prepared<'_>, loaded: &IndexMap<String, Loaded>, _limits: &Limits) -> Vec<GuardResult> {
    let mut results = run_four_eyes(prepared, false);
    if prepared.transition.guards().is_empty() {
        return results;
    }
    let (context, _) = full_context(prepared, loaded);
    let shapes = shapes(prepared.tenant, prepared.ty, prepared.transition);
    let rules = RulesContext::new(&context, &shapes);
    // A guard over its budget shows as not passed, with the limit as its error.
    let ((mut guards, _limit), _) =
        crate::decision::scope(prepared.tenant.decisions(), &prepared.data_tables, Some(&|| rules.get()), || {
            crate::dates::in_zone(prepared.tenant.time_zone(), || {
                crate::logic::budget(prepared.tenant.limits(), || run_guards(prepared.transition, &rules.get(), false))
            })
        });
    hide_values(prepared, &mut guards);
    results.extend(guards);
    results
}

/// Drops from guard `values` the variables read from loads the actor may not view.
fn hide_values(prepared: &Prepared<'_>, guards: &mut [GuardResult]) {
    if prepared.hidden_loads.is_empty() {
        return;
    }
    for g in guards {
        g.values.retain(|path, _| {
            let root = path.split('.').next().unwrap_or_default();
            !prepared.hidden_loads.iter().any(|h| h == root)
        });
    }
}

/// Evaluates guards and script and validates every change.
pub fn decide(
    prepared: Prepared<'_>,
    loaded: IndexMap<String, Loaded>,
    limits: &Limits,
) -> Result<Decision, Rejection> {
    decide_ref(&prepared, &loaded, limits)
}

/// [`decide`] on borrowed inputs: pure, so it may be run again (the store does, off the reactor,
/// when inline evaluation ran past its leash).
pub fn decide_ref(
    prepared: &Prepared<'_>,
    loaded: &IndexMap<String, Loaded>,
    limits: &Limits,
) -> Result<Decision, Rejection> {
    let t = prepared.transition;
    let _span =
        tracing::debug_span!("decide", entity.type = %prepared.entity.type_name, transition = t.name()).entered();
    let (context, load_traces) = full_context(prepared, loaded);
    let shapes = shapes(prepared.tenant, prepared.ty, t);
    let rules = RulesContext::new(&context, &shapes);
    let (decision, _) =
        crate::decision::scope(prepared.tenant.decisions(), &prepared.data_tables, Some(&|| rules.get()), || {
            crate::dates::in_zone(prepared.tenant.time_zone(), || {
                decide_in_scope(prepared, loaded, limits, &context, &rules, &shapes, load_traces)
            })
        });
    decision
}

/// [`decide_ref`] inside the scope of the tenant's decision tables.
fn decide_in_scope(
    prepared: &Prepared<'_>,
    loaded: &IndexMap<String, Loaded>,
    limits: &Limits,
    context: &Value,
    rules: &RulesContext<'_>,
    shapes: &crate::decimals::Shapes<'_>,
    load_traces: Vec<LoadTrace>,
) -> Result<Decision, Rejection> {
    let t = prepared.transition;
    let mut trace = Trace { loads: load_traces, decisions: prepared.load_decisions.clone(), ..Trace::default() };

    trace.guards = run_four_eyes(prepared, true);
    if let Some(failed) = trace.guards.iter().find(|g| !g.passed) {
        if let Some(error) = &failed.error {
            return Err(Rejection::Internal(format!("four-eyes of `{}`: {error}", t.name())));
        }
        return Err(Rejection::GuardFailed { index: None, message: failed.message.clone(), trace: Box::new(trace) });
    }
    if !t.guards().is_empty() {
        let ctx = rules.get();
        let (guards, limit) = crate::logic::budget(limits, || run_guards(t, &ctx, true));
        if let Some(limit) = limit {
            return Err(limit);
        }
        trace.guards.extend(guards);
        hide_values(prepared, &mut trace.guards);
        if let Some(failed) = trace.guards.iter().find(|g| !g.passed) {
            return Err(Rejection::GuardFailed {
                index: Some(failed.index),
                message: failed.message.clone(),
                trace: Box::new(trace),
            });
        }
    }

    let (mut data, effects) = match t.script() {
        Some(script) => {
            trace.script_ran = true;
            let out = prepared.tenant.script_engine().run_shaped(script, context, shapes);
            trace.decisions.extend(crate::decision::take_traces());
            let out = match out {
                Ok(out) => out,
                Err(EngineError::ScriptRejected { message, .. }) => {
                    return Err(Rejection::GuardFailed { index: None, message, trace: Box::new(trace) });
                }
                Err(e) => return Err(e.into()),
            };
            (out.data, out.effects)
        }
        None => (prepared.entity.data.clone(), Vec::new()),
    };
    if effects.len() > limits.max_effects {
        return Err(Rejection::ScriptLimit {
            message: format!("the script produced more than {} effects", limits.max_effects),
        });
    }
    trace.effects = effects.clone();

    let entity = &prepared.entity;
    prepared.ty.prepare(&mut data).map_err(|errors| validation("/entity", errors))?;
    let changes = diff(&entity.data, &data);

    let declared = t.events().iter().map(|name| EventOut {
        name: name.clone(),
        payload: json!({
            "id": entity.id.to_string(),
            "type": entity.type_name,
            "from": entity.state,
            "to": t.to(),
            "transition": t.name(),
        }),
    });
    let mut decision = Decision {
        transition: t.name().to_string(),
        from: entity.state.clone(),
        to: t.to().to_string(),
        data,
        changes,
        updates: Vec::new(),
        creates: Vec::new(),
        follow_ups: Vec::new(),
        events: declared.collect(),
        trace: Trace::default(),
    };
    apply_effects(prepared, loaded, effects, &mut decision)?;
    OutputSize::of(&decision).check(limits)?;
    decision.trace = trace;
    Ok(decision)
}

/// What a transition writes, measured against the output bounds of [`Limits`]: events, created
/// entities, and bytes (as JSON) of the entity's data, changed rows, created entities and event
/// payloads. The store adds up the sizes of a transition and its follow-ups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputSize {
    pub events: usize,
    pub creates: usize,
    pub bytes: usize,
    /// The largest event payload.
    pub largest_event: usize,
}

impl OutputSize {
    /// The size of one decision's output.
    pub fn of(decision: &Decision) -> OutputSize {
        let mut size = OutputSize {
            events: decision.events.len(),
            creates: decision.creates.len(),
            bytes: json_len(&decision.data),
            largest_event: 0,
        };
        for u in &decision.updates {
            size.bytes = size.bytes.saturating_add(json_len(&u.data));
        }
        for c in &decision.creates {
            size.bytes = size.bytes.saturating_add(json_len(&c.data));
        }
        for e in &decision.events {
            let n = json_len(&e.payload);
            size.largest_event = size.largest_event.max(n);
            size.bytes = size.bytes.saturating_add(n);
        }
        size
    }

    /// The sum of two outputs (a transition and a follow-up).
    pub fn plus(self, other: OutputSize) -> OutputSize {
        OutputSize {
            events: self.events.saturating_add(other.events),
            creates: self.creates.saturating_add(other.creates),
            bytes: self.bytes.saturating_add(other.bytes),
            largest_event: self.largest_event.max(other.largest_event),
        }
    }

    /// Refuses an output past a bound, with `RULE_LIMIT` naming it.
    pub fn check(&self, limits: &Limits) -> Result<(), Rejection> {
        let over = |at: &str, message: String| Err(Rejection::RuleLimit { at: at.into(), message });
        if self.events > limits.max_events {
            return over(
                "events",
                format!("the transition emits more than {} events (limit max_events)", limits.max_events),
            );
        }
        if self.largest_event > limits.max_event_bytes {
            return over(
                "events",
                format!("an event's payload is larger than {} bytes (limit max_event_bytes)", limits.max_event_bytes),
            );
        }
        if self.creates > limits.max_creates {
            return over(
                "creates",
                format!("the transition creates more than {} entities (limit max_creates)", limits.max_creates),
            );
        }
        if self.bytes > limits.max_transition_bytes {
            return over(
                "output",
                format!(
                    "the transition writes more than {} bytes of data and events (limit max_transition_bytes)",
                    limits.max_transition_bytes
                ),
            );
        }
        Ok(())
    }
}

/// The length of a value as compact JSON, without building the text.
pub fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn validation(prefix: &str, errors: Vec<FieldError>) -> Rejection {
    Rejection::Validation {
        errors: errors
            .into_iter()
            .map(|e| FieldError { path: format!("{prefix}{}", e.path), message: e.message })
            .collect(),
    }
}

fn script_failed(message: String) -> Rejection {
    Rejection::ScriptFailed { message, line: None }
}

/// Where a loaded row was found: the row and whether some load holding it locks it.
fn find_row<'l>(
    prepared: &Prepared<'_>,
    loaded: &'l IndexMap<String, Loaded>,
    type_name: &str,
    id: Uuid,
) -> Option<(&'l Entity, bool)> {
    let mut found: Option<(&Entity, bool)> = None;
    for req in &prepared.load_requests {
        let Some(row) =
            loaded.get(&req.name).and_then(|l| l.rows().iter().find(|r| r.id == id && r.type_name == type_name))
        else {
            continue;
        };
        let locked = req.lock || found.is_some_and(|(_, l)| l);
        found = Some((row, locked));
    }
    found
}

fn apply_effects(
    prepared: &Prepared<'_>,
    loaded: &IndexMap<String, Loaded>,
    effects: Vec<Effect>,
    decision: &mut Decision,
) -> Result<(), Rejection> {
    let tenant = prepared.tenant;
    // Updates of one row are merged in order, then validated once.
    let mut updates: IndexMap<(String, Uuid), (&Entity, Value)> = IndexMap::new();
    for effect in effects {
        match effect {
            Effect::Update { type_name, id, patch } => {
                if id == prepared.entity.id {
                    return Err(script_failed(
                        "update(): the entity itself is changed by assigning to `entity`, not with update()".into(),
                    ));
                }
                let Some((row, locked)) = find_row(prepared, loaded, &type_name, id) else {
                    return Err(script_failed(format!("update(): `{type_name}` {id} is not a loaded row")));
                };
                if !locked {
                    return Err(script_failed(format!(
                        "update(): `{type_name}` {id} was not loaded with `lock: true`, so it cannot be changed"
                    )));
                }
                let Value::Object(patch) = patch else {
                    return Err(script_failed("update(): the patch must be a map".into()));
                };
                if let Some(k) = patch.keys().find(|k| is_reserved(k)) {
                    return Err(script_failed(format!("update(): `{k}` is a reserved field")));
                }
                let (_, data) = updates.entry((type_name, id)).or_insert_with(|| (row, row.data.clone()));
                if !data.is_object() {
                    *data = Value::Object(Map::new());
                }
                if let Value::Object(data) = data {
                    data.extend(patch);
                }
            }
            Effect::Create { type_name, id, data } => {
                let (Some(ty), Some(wf)) = (tenant.type_(&type_name), tenant.workflow(&type_name)) else {
                    return Err(script_failed(format!("create(): unknown type `{type_name}`")));
                };
                if let Some(k) = data.as_object().and_then(|d| d.keys().find(|k| is_reserved(k))) {
                    return Err(script_failed(format!("create(): `{k}` is a reserved field")));
                }
                let mut data = data;
                ty.apply_defaults(&mut data);
                let n = decision.creates.iter().filter(|c| c.type_name == type_name).count();
                ty.prepare(&mut data).map_err(|errors| validation(&format!("/create/{type_name}/{n}"), errors))?;
                decision.creates.push(NewEntity { id, type_name, state: wf.initial_state().to_string(), data });
            }
            Effect::FollowUp { type_name, id, transition, input } => {
                if find_row(prepared, loaded, &type_name, id).is_none() {
                    return Err(script_failed(format!("transition(): `{type_name}` {id} is not a loaded row")));
                }
                decision.follow_ups.push(FollowUp { type_name, id, transition, input });
            }
            Effect::Emit { name, payload } => decision.events.push(EventOut { name, payload }),
        }
    }
    for ((type_name, id), (row, mut data)) in updates {
        let Some(ty) = tenant.type_(&type_name) else {
            return Err(Rejection::Internal(format!("loaded row of unknown type `{type_name}`")));
        };
        ty.prepare(&mut data).map_err(|errors| validation(&format!("/update/{type_name}/{id}"), errors))?;
        let changes = diff(&row.data, &data);
        decision.updates.push(RowUpdate { type_name, id, data, changes });
    }
    Ok(())
}

/// `{field: {from, to}}` for every top-level field that differs (`1` and `1.0` are equal;
/// a missing field is `null`).
pub fn diff(before: &Value, after: &Value) -> Value {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for key in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
        let (from, to) = (b.get(key).unwrap_or(&Value::Null), a.get(key).unwrap_or(&Value::Null));
        if !same(from, to) {
            // Built by hand: `json!` would serialize both values again to copy them.
            let mut change = Map::with_capacity(2);
            change.insert("from".into(), from.clone());
            change.insert("to".into(), to.clone());
            out.insert(key.clone(), Value::Object(change));
        }
    }
    Value::Object(out)
}

/// JSON equality where numbers compare by value (`1` = `1.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_changed_fields_only() {
        let d = diff(&json!({"a": 1, "b": 2.0, "c": "x"}), &json!({"a": 1.0, "b": 3, "d": true}));
        assert_eq!(
            d,
            json!({"b": {"from": 2.0, "to": 3}, "c": {"from": "x", "to": null}, "d": {"from": null, "to": true}})
        );
    }

    #[test]
    fn codes_and_serialization() {
        let r = Rejection::Forbidden { required_roles: vec!["admin".into()] };
        assert_eq!(r.code(), "FORBIDDEN");
        let v = serde_json::to_value(&r).expect("serializes");
        assert_eq!(v["code"], "FORBIDDEN");
        assert_eq!(v["details"]["required_roles"], json!(["admin"]));
        let v = serde_json::to_value(Rejection::Validation { errors: vec![] }).expect("serializes");
        assert_eq!(v["code"], "VALIDATION_FAILED");
    }
}
