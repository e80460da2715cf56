//! A tenant's definitions compiled once per published version: the ontology plus, per type, a
//! [`CompiledWorkflow`] whose transitions hold compiled guards, load expressions, input
//! validator and script. Nothing here is parsed again per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use jsonschema::error::ValidationErrorKind;
use ontology::compile::{CompiledType, FieldError, Ontology};
use serde_json::Value;

use crate::decision::Decisions;
use crate::def::{Editable, GuardDef, LoadDef, StateDef, StateKind, TransitionDef, WorkflowDef, FOUR_EYES_CREATOR};
use crate::error::EngineError;
use crate::limits::Limits;
use crate::logic::Logic;
use crate::model::Actor;
use crate::permissions::Permissions;
use crate::rows::{RowScope, TypeRowRules};
use crate::rules::NamedRules;
use crate::script::{Script, ScriptEngine, CONTEXT_NAMES};

/// All compiled definitions of one tenant version.
#[derive(Debug)]
pub struct CompiledTenant {
    ontology: Ontology,
    workflows: HashMap<String, CompiledWorkflow>,
    rules: NamedRules,
    /// Per type, its record rules (types without any are absent).
    row_rules: HashMap<String, TypeRowRules>,
    permissions: Permissions,
    scripts: ScriptEngine,
    limits: Limits,
    /// The decision tables (`decisions/*.yaml`), callable by `decide`.
    decisions: Arc<Decisions>,
}

impl CompiledTenant {
    /// The decision tables of the version.
    pub fn decisions(&self) -> &Arc<Decisions> {
        &self.decisions
    }

    /// Sets the decision tables (they live in `decisions/`, beside the types).
    pub fn with_decisions(mut self, decisions: Decisions) -> CompiledTenant {
        self.decisions = Arc::new(decisions);
        self
    }

    /// The type-level permissions of the package's roles.
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// Sets the tenant's time zone (`time_zone:` of `tenant.yaml`): the date functions of scripts
    /// work in it.
    pub fn with_time_zone(mut self, zone: chrono_tz::Tz) -> CompiledTenant {
        self.scripts.set_time_zone(zone);
        self
    }

    /// The tenant's time zone (UTC unless `tenant.yaml` says otherwise).
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.scripts.time_zone()
    }

    /// Sets the roles' permissions (they live in `tenant.yaml`, beside the types).
    pub fn with_permissions(mut self, permissions: Permissions) -> CompiledTenant {
        self.permissions = permissions;
        self
    }

    /// Compiles the workflow of every type of `ontology`, without named rules, returning every
    /// problem found.
    pub fn compile(ontology: Ontology, limits: &Limits) -> Result<CompiledTenant, Vec<EngineError>> {
        Self::compile_with(ontology, &IndexMap::new(), limits)
    }

    /// Compiles the workflow of every type of `ontology` with the tenant's named rules
    /// (`rules:` of `tenant.yaml`; `{"rule": "name"}` in guards and load expressions is replaced
    /// by the rule), returning every problem found.
    pub fn compile_with(
        ontology: Ontology,
        rules: &IndexMap<String, Value>,
        limits: &Limits,
    ) -> Result<CompiledTenant, Vec<EngineError>> {
        let scripts = ScriptEngine::new(limits);
        let mut workflows = HashMap::with_capacity(ontology.len());
        let mut errors = Vec::new();
        let rules = NamedRules::compile_limited(rules, limits, &mut errors);
        for (name, ty) in ontology.iter() {
            match WorkflowDef::parse(name, ty.def().workflow.as_ref()) {
                Ok(def) => {
                    let cx = Cx { ontology: &ontology, scripts: &scripts, rules: &rules, limits };
                    if let Some(wf) = CompiledWorkflow::compile(name, def, &cx, &mut errors) {
                        workflows.insert(name.to_string(), wf);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        let mut row_rules = HashMap::new();
        for (name, ty) in ontology.iter() {
            if ty.def().record_rules.is_empty() {
                continue;
            }
            match crate::rows::compile_type_rules(&ontology, name, &ty.def().record_rules) {
                Ok(r) => {
                    row_rules.insert(name.to_string(), r);
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(CompiledTenant {
                ontology,
                workflows,
                rules,
                row_rules,
                permissions: Permissions::default(),
                scripts,
                limits: limits.clone(),
                decisions: Arc::default(),
            })
        } else {
            Err(errors)
        }
    }

    /// Which rows of `type_name` `actor` sees, by the record rules of the roles that may view
    /// the type (see [`crate::rows`]).
    pub fn row_scope(&self, actor: &Actor, type_name: &str) -> RowScope {
        RowScope::of(actor, type_name, &self.permissions, self.row_rules.get(type_name))
    }

    /// The record rules of a type, if it has any.
    pub fn row_rules(&self, type_name: &str) -> Option<&TypeRowRules> {
        self.row_rules.get(type_name)
    }

    /// The tenant's named rules, expanded.
    pub fn rules(&self) -> &NamedRules {
        &self.rules
    }

    /// The compiled types.
    pub fn ontology(&self) -> &Ontology {
        &self.ontology
    }

    /// The type named `name`.
    pub fn type_(&self, name: &str) -> Option<&Arc<CompiledType>> {
        self.ontology.get(name)
    }

    /// The workflow of a type (every type has one, maybe the implicit one).
    pub fn workflow(&self, type_name: &str) -> Option<&CompiledWorkflow> {
        self.workflows.get(type_name)
    }

    /// The script engine the scripts were compiled for.
    pub fn script_engine(&self) -> &ScriptEngine {
        &self.scripts
    }

    /// The limits the tenant was compiled with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// What compiling a workflow needs besides its definition.
struct Cx<'a> {
    ontology: &'a Ontology,
    scripts: &'a ScriptEngine,
    rules: &'a NamedRules,
    limits: &'a Limits,
}

/// One type's workflow.
#[derive(Debug)]
pub struct CompiledWorkflow {
    type_name: String,
    states: IndexMap<String, StateDef>,
    initial: String,
    transitions: IndexMap<String, CompiledTransition>,
    /// State → its timers (states without timers are absent).
    timers: HashMap<String, Vec<CompiledTimer>>,
}

/// A compiled state timer: `after` entering the state, the system fires `transition`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledTimer {
    /// How long after the entity entered the state.
    pub after: Duration,
    /// The transition to fire (available from the state).
    pub transition: String,
    /// Its input, valid against the transition's input schema.
    pub input: Value,
}

impl CompiledWorkflow {
    /// Compiles `def`, pushing every problem to `errors`; `None` if there was any.
    fn compile(
        type_name: &str,
        def: WorkflowDef,
        cx: &Cx<'_>,
        errors: &mut Vec<EngineError>,
    ) -> Option<CompiledWorkflow> {
        let before = errors.len();
        let initials: Vec<&String> =
            def.states.iter().filter(|(_, s)| s.kind == StateKind::Initial).map(|(n, _)| n).collect();
        if initials.len() != 1 {
            errors.push(EngineError::InitialStates { type_name: type_name.to_string(), count: initials.len() });
        }
        let initial = initials.first().map(|s| s.to_string()).unwrap_or_default();
        let names: Vec<String> = def.transitions.keys().cloned().collect();
        for second in def.transitions.iter().filter(|(_, t)| t.create).skip(1).map(|(n, _)| n) {
            errors.push(EngineError::CreateTransition {
                type_name: type_name.to_string(),
                transition: second.clone(),
                field: "create",
                message: "a workflow has at most one create transition".into(),
            });
        }
        let mut transitions = IndexMap::with_capacity(def.transitions.len());
        for (name, t) in def.transitions {
            for entry in &t.four_eyes {
                if entry != FOUR_EYES_CREATOR && !names.contains(entry) {
                    errors.push(EngineError::FourEyes {
                        type_name: type_name.to_string(),
                        transition: name.clone(),
                        entry: entry.clone(),
                    });
                }
            }
            let mut at = At { type_name, transition: &name, errors };
            if let Some(ct) = CompiledTransition::compile(&mut at, &def.states, t, cx) {
                transitions.insert(name, ct);
            }
        }
        let ty = cx.ontology.get(type_name);
        let mut timers = HashMap::new();
        for (state, s) in &def.states {
            let mut problem = |message: String| {
                errors.push(EngineError::State { type_name: type_name.to_string(), state: state.clone(), message });
            };
            if let Some(editable) = &s.editable {
                for field in &editable.fields {
                    if !ty.is_some_and(|t| t.def().fields.contains_key(field.as_str())) {
                        problem(format!("editable: `{field}` is not a field of `{type_name}`"));
                    }
                }
            }
            let mut compiled = Vec::with_capacity(s.timers.len());
            for (i, timer) in s.timers.iter().enumerate() {
                let after = match humantime::parse_duration(timer.after.trim()) {
                    Ok(d) if d.is_zero() => {
                        problem(format!("timer {i}: `after` must be longer than zero"));
                        None
                    }
                    Ok(d) if chrono::Duration::from_std(d).is_err() => {
                        problem(format!("timer {i}: `after: {}` is too long", timer.after));
                        None
                    }
                    Ok(d) => Some(d),
                    Err(e) => {
                        problem(format!(
                            "timer {i}: `after: {}` is not a duration ({e}), e.g. `30m`, `72h`, `7days`",
                            timer.after
                        ));
                        None
                    }
                };
                let input = timer.input.clone().unwrap_or_else(|| Value::Object(serde_json::Map::new()));
                if !names.contains(&timer.transition) {
                    problem(format!("timer {i}: unknown transition `{}`", timer.transition));
                    continue;
                }
                // A transition that failed to compile was reported already.
                let Some(t) = transitions.get(&timer.transition) else { continue };
                if !t.from().contains(state) {
                    problem(format!("timer {i}: transition `{}` cannot be fired from `{state}`", timer.transition));
                    continue;
                }
                if let Err(field_errors) = t.validate_input(&input) {
                    let text: Vec<String> = field_errors.iter().map(ToString::to_string).collect();
                    problem(format!("timer {i}: invalid input for `{}`: {}", timer.transition, text.join("; ")));
                    continue;
                }
                if let Some(after) = after {
                    compiled.push(CompiledTimer { after, transition: timer.transition.clone(), input });
                }
            }
            if !compiled.is_empty() {
                timers.insert(state.clone(), compiled);
            }
        }
        (errors.len() == before).then(|| CompiledWorkflow {
            type_name: type_name.to_string(),
            states: def.states,
            initial,
            transitions,
            timers,
        })
    }

    /// What may be edited outside a transition while an entity is in `state`, and by whom.
    pub fn editable(&self, state: &str) -> Option<&Editable> {
        self.states.get(state).and_then(|s| s.editable.as_ref())
    }

    /// The timers started when an entity enters `state` (empty for most states).
    pub fn timers(&self, state: &str) -> &[CompiledTimer] {
        self.timers.get(state).map(Vec::as_slice).unwrap_or_default()
    }

    /// The type this workflow belongs to.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The states, in the order written.
    pub fn states(&self) -> &IndexMap<String, StateDef> {
        &self.states
    }

    /// Whether the workflow has a state named `state`.
    pub fn has_state(&self, state: &str) -> bool {
        self.states.contains_key(state)
    }

    /// The state new entities start in.
    pub fn initial_state(&self) -> &str {
        &self.initial
    }

    /// Every transition, in the order written.
    pub fn transitions(&self) -> impl Iterator<Item = &CompiledTransition> {
        self.transitions.values()
    }

    /// The transition named `name`.
    pub fn transition(&self, name: &str) -> Option<&CompiledTransition> {
        self.transitions.get(name)
    }

    /// The create transition (`create: true`), run when an entity is created.
    pub fn create_transition(&self) -> Option<&CompiledTransition> {
        self.transitions.values().find(|t| t.def.create)
    }

    /// The transitions that may be fired from `state`, in the order written.
    pub fn transitions_from<'a>(&'a self, state: &'a str) -> impl Iterator<Item = &'a CompiledTransition> + 'a {
        self.transitions.values().filter(move |t| t.def.from.iter().any(|s| s == state))
    }
}

/// Where compile errors are reported.
struct At<'a> {
    type_name: &'a str,
    transition: &'a str,
    errors: &'a mut Vec<EngineError>,
}

impl At<'_> {
    fn ty(&self) -> String {
        self.type_name.to_string()
    }
    fn tr(&self) -> String {
        self.transition.to_string()
    }
    fn load(&mut self, load: &str, message: String) {
        let e = EngineError::Load { type_name: self.ty(), transition: self.tr(), load: load.to_string(), message };
        self.errors.push(e);
    }
}

/// A compiled guard.
#[derive(Debug)]
pub struct CompiledGuard {
    /// The rule.
    pub logic: Logic,
    /// The message shown when it is false.
    pub message: String,
    /// The `var` paths the rule reads (for traces).
    pub vars: Vec<String>,
}

/// A compiled load.
#[derive(Debug)]
pub struct CompiledLoad {
    /// The name scripts and rules see it under.
    pub name: String,
    /// The loaded type.
    pub type_name: String,
    /// Whether the rows are locked (and may be updated by the script).
    pub lock: bool,
    /// How the rows are found.
    pub kind: CompiledLoadKind,
    /// The loads declared before this one that its `id`/`where` rules read (by name, in
    /// declaration order); empty for a load that reads only entity, input, actor and now.
    pub reads: Vec<String>,
    /// When it can run: 0 for a load that reads no other load, else one more than the latest
    /// stage of the loads it reads. The store runs the loads stage by stage.
    pub stage: usize,
}

/// How a load finds its rows.
#[derive(Debug)]
pub enum CompiledLoadKind {
    /// One row; the rule gives its id.
    ById(Logic),
    /// Rows whose fields (or `state`) match; each rule gives a value or an array of values.
    Where(Vec<(String, Logic)>),
}

/// A compiled transition.
#[derive(Debug)]
pub struct CompiledTransition {
    name: String,
    def: TransitionDef,
    guards: Vec<CompiledGuard>,
    loads: Vec<CompiledLoad>,
    input: Option<jsonschema::Validator>,
    script: Option<Script>,
    /// Whether a guard, a load expression or the script calls `decide` (then the store reads
    /// the decision tables whose rows are entities before evaluating it).
    uses_decisions: bool,
}

impl CompiledTransition {
    /// Whether a guard, a load expression or the script calls `decide`.
    pub fn uses_decisions(&self) -> bool {
        self.uses_decisions
    }

    fn compile(
        at: &mut At<'_>,
        states: &IndexMap<String, StateDef>,
        def: TransitionDef,
        cx: &Cx<'_>,
    ) -> Option<CompiledTransition> {
        let (ontology, scripts) = (cx.ontology, cx.scripts);
        let before = at.errors.len();
        if def.create {
            if !def.from.is_empty() {
                at.errors.push(EngineError::CreateTransition {
                    type_name: at.ty(),
                    transition: at.tr(),
                    field: "from",
                    message: "a create transition declares no `from`: it runs when the entity is created".into(),
                });
            }
            if !def.four_eyes.is_empty() {
                at.errors.push(EngineError::CreateTransition {
                    type_name: at.ty(),
                    transition: at.tr(),
                    field: "four_eyes",
                    message: "a create transition has no earlier actors to keep apart (no `four_eyes`)".into(),
                });
            }
        } else if def.from.is_empty() {
            at.errors.push(EngineError::NoFromStates { type_name: at.ty(), transition: at.tr() });
        }
        let unknown_states: Vec<(&'static str, &String)> = def
            .from
            .iter()
            .map(|s| ("from", s))
            .chain(std::iter::once(("to", &def.to)))
            .filter(|(_, s)| !states.contains_key(s.as_str()))
            .collect();
        for (field, state) in unknown_states {
            at.errors.push(EngineError::UnknownState {
                type_name: at.ty(),
                transition: at.tr(),
                field,
                state: state.clone(),
            });
        }
        if def.roles.is_empty() {
            at.errors.push(EngineError::NoRoles { type_name: at.ty(), transition: at.tr() });
        }
        let input = def.input.as_ref().and_then(|schema| match input_validator(schema, cx.limits) {
            Ok(v) => Some(v),
            Err(message) => {
                at.errors.push(EngineError::InputSchema { type_name: at.ty(), transition: at.tr(), message });
                None
            }
        });
        let load_names: Vec<&str> = def.load.keys().map(String::as_str).collect();
        let mut loads: Vec<CompiledLoad> = Vec::with_capacity(def.load.len());
        for (position, (name, l)) in def.load.iter().enumerate() {
            let order = LoadOrder { names: &load_names, position, compiled: &loads };
            if let Some(load) = compile_load(at, name, l, ontology, cx.rules, &order) {
                loads.push(load);
            }
        }
        let guards: Vec<CompiledGuard> = def
            .guards
            .iter()
            .enumerate()
            .filter_map(|(index, GuardDef { rule, message })| {
                match cx.rules.expand(rule).and_then(|rule| Logic::compile(&rule).map_err(|e| e.to_string())) {
                    Ok(logic) => Some(CompiledGuard { vars: logic.vars(), logic, message: message.clone() }),
                    Err(message) => {
                        at.errors.push(EngineError::Guard { type_name: at.ty(), transition: at.tr(), index, message });
                        None
                    }
                }
            })
            .collect();
        let script = def.script.as_deref().and_then(|src| match scripts.compile(src, &load_names) {
            Ok(s) => Some(s),
            Err(e) => {
                let (message, line, column) = match e {
                    EngineError::ScriptCompile { message, line, column } => (message, line, column),
                    other => (other.to_string(), None, None),
                };
                at.errors.push(EngineError::Script { type_name: at.ty(), transition: at.tr(), line, column, message });
                None
            }
        });
        let rule_decides = |l: &Logic| !crate::logic::decided_tables(l.source()).is_empty();
        let uses_decisions = guards.iter().any(|g| rule_decides(&g.logic))
            || loads.iter().any(|l| match &l.kind {
                CompiledLoadKind::ById(logic) => rule_decides(logic),
                CompiledLoadKind::Where(fields) => fields.iter().any(|(_, logic)| rule_decides(logic)),
            })
            || script.as_ref().is_some_and(|s| s.effect_calls().iter().any(|c| c.function == "decide"));
        (at.errors.len() == before).then(|| CompiledTransition {
            name: at.tr(),
            def,
            guards,
            loads,
            input,
            script,
            uses_decisions,
        })
    }

    /// The transition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The definition as written.
    pub fn def(&self) -> &TransitionDef {
        &self.def
    }

    /// Its label, if it has one.
    pub fn label(&self) -> Option<&str> {
        self.def.label.as_deref()
    }

    /// The states it may be fired from.
    pub fn from(&self) -> &[String] {
        &self.def.from
    }

    /// The state it leads to.
    pub fn to(&self) -> &str {
        &self.def.to
    }

    /// The roles that may fire it.
    pub fn roles(&self) -> &[String] {
        &self.def.roles
    }

    /// The JSON Schema of its input, if it declares one.
    pub fn input_schema(&self) -> Option<&Value> {
        self.def.input.as_ref()
    }

    /// The `four_eyes` entries: `creator` and/or names of transitions of the workflow.
    pub fn four_eyes(&self) -> &[String] {
        &self.def.four_eyes
    }

    /// The compiled guards, in order.
    pub fn guards(&self) -> &[CompiledGuard] {
        &self.guards
    }

    /// The compiled loads, in the order written.
    pub fn loads(&self) -> &[CompiledLoad] {
        &self.loads
    }

    /// The last load stage (0 when no load reads another, or there are no loads).
    pub fn last_load_stage(&self) -> usize {
        self.loads.iter().map(|l| l.stage).max().unwrap_or(0)
    }

    /// The compiled script, if any.
    pub fn script(&self) -> Option<&Script> {
        self.script.as_ref()
    }

    /// The events it declares.
    pub fn events(&self) -> &[String] {
        &self.def.events
    }

    /// Validates an input against the input schema (any object passes without one). Paths are
    /// JSON pointers under `/input`.
    pub fn validate_input(&self, input: &Value) -> Result<(), Vec<FieldError>> {
        let Some(validator) = &self.input else {
            return if input.is_object() {
                Ok(())
            } else {
                Err(vec![FieldError { path: "/input".into(), message: "must be an object".into() }])
            };
        };
        if validator.is_valid(input) {
            return Ok(());
        }
        let mut errors = Vec::new();
        for e in validator.iter_errors(input) {
            let here = format!("/input{}", e.instance_path());
            match e.kind() {
                ValidationErrorKind::Required { property } => errors.push(FieldError {
                    path: child_pointer(&here, property.as_str().unwrap_or_default()),
                    message: "is required".into(),
                }),
                ValidationErrorKind::AdditionalProperties { unexpected } => errors.extend(
                    unexpected
                        .iter()
                        .map(|name| FieldError { path: child_pointer(&here, name), message: "unknown field".into() }),
                ),
                _ => errors.push(FieldError { path: here, message: e.to_string() }),
            }
        }
        Err(errors)
    }
}

/// `parent/name` as a JSON pointer (escaping `~` and `/`).
fn child_pointer(parent: &str, name: &str) -> String {
    format!("{parent}/{}", name.replace('~', "~0").replace('/', "~1"))
}

/// Compiles a transition's input schema (JSON Schema 2020-12, formats checked). The schema is
/// the tenant's: it is measured first (depth, size, as a rule is), and its `pattern`s run on the
/// linear-time `regex` engine (no backtracking, so no catastrophic pattern), as the types'.
fn input_validator(schema: &Value, limits: &Limits) -> Result<jsonschema::Validator, String> {
    let m = crate::rules::measure(schema);
    if m.depth > limits.max_rule_depth {
        return Err(format!("the schema nests deeper than {} levels (limit max_rule_depth)", limits.max_rule_depth));
    }
    if m.size > limits.max_rule_size {
        return Err(format!("the schema is larger than {} bytes (limit max_rule_size)", limits.max_rule_size));
    }
    jsonschema::meta::validate(schema).map_err(|e| match e.instance_path().as_str() {
        "" => e.to_string(),
        path => format!("at {path}: {e}"),
    })?;
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
        .map_err(|e| e.to_string())
}

/// Where a load stands among its transition's loads, to tell which other loads it may read.
struct LoadOrder<'a> {
    /// Every load of the transition, in declaration order.
    names: &'a [&'a str],
    /// This load's position in `names`.
    position: usize,
    /// The loads before it that compiled.
    compiled: &'a [CompiledLoad],
}

impl LoadOrder<'_> {
    /// The loads a rule reads (`var`s whose first segment names a load), checked: only loads
    /// declared before this one may be read. `what` is `id` or `where.<field>`.
    fn reads(&self, at: &mut At<'_>, name: &str, what: &str, logic: &Logic, reads: &mut Vec<String>) {
        for var in logic.vars() {
            let root = var.split('.').next().unwrap_or_default();
            let Some(index) = self.names.iter().position(|n| *n == root) else { continue };
            if index < self.position {
                if !reads.iter().any(|r| r == root) {
                    reads.push(root.to_string());
                }
            } else if index == self.position {
                at.load(name, format!("{what}: reads `{var}`: a load cannot read itself"));
            } else {
                at.load(
                    name,
                    format!(
                        "{what}: reads `{var}` of load `{root}`, which is declared after `{name}`; \
                         a load reads only the loads declared before it"
                    ),
                );
            }
        }
    }

    /// The stage of a load reading `reads`: 0 when it reads none, else one more than theirs.
    fn stage(&self, reads: &[String]) -> usize {
        reads.iter().filter_map(|r| self.compiled.iter().find(|l| &l.name == r)).map(|l| l.stage + 1).max().unwrap_or(0)
    }
}

fn compile_load(
    at: &mut At<'_>,
    name: &str,
    def: &LoadDef,
    ontology: &Ontology,
    rules: &NamedRules,
    order: &LoadOrder<'_>,
) -> Option<CompiledLoad> {
    let before = at.errors.len();
    if CONTEXT_NAMES.contains(&name) {
        at.load(name, format!("`{name}` is a name the context already has; choose another"));
    }
    let ty = ontology.get(&def.type_name);
    if ty.is_none() {
        at.load(name, format!("unknown type `{}`", def.type_name));
    }
    let compile = |at: &mut At<'_>, what: &str, rule: &Value| match rules
        .expand(rule)
        .and_then(|rule| Logic::compile(&rule).map_err(|e| e.to_string()))
    {
        Ok(l) => Some(l),
        Err(e) => {
            at.load(name, format!("{what}: {e}"));
            None
        }
    };
    let kind = match (&def.id, &def.r#where) {
        (Some(id), None) => compile(at, "id", id).map(CompiledLoadKind::ById),
        (None, Some(filter)) => {
            let mut fields = Vec::with_capacity(filter.len());
            for (field, rule) in filter {
                let known =
                    field == "state" || field == "id" || ty.is_none_or(|t| t.def().fields.contains_key(field.as_str()));
                if !known {
                    at.load(name, format!("`where`: `{}` has no field `{field}`", def.type_name));
                }
                if let Some(l) = compile(at, &format!("where.{field}"), rule) {
                    fields.push((field.clone(), l));
                }
            }
            Some(CompiledLoadKind::Where(fields))
        }
        _ => {
            at.load(name, "needs exactly one of `id` and `where`".into());
            None
        }
    };
    let mut reads = Vec::new();
    match &kind {
        Some(CompiledLoadKind::ById(logic)) => order.reads(at, name, "id", logic, &mut reads),
        Some(CompiledLoadKind::Where(fields)) => {
            for (field, logic) in fields {
                order.reads(at, name, &format!("where.{field}"), logic, &mut reads);
            }
        }
        None => {}
    }
    let kind = kind.filter(|_| at.errors.len() == before)?;
    let stage = order.stage(&reads);
    Some(CompiledLoad { name: name.to_string(), type_name: def.type_name.clone(), lock: def.lock, kind, reads, stage })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store shares compiled definitions across tasks and holds a `Prepared` across awaits.
    #[test]
    fn compiled_definitions_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<CompiledTenant>();
        send_sync::<Logic>();
        send_sync::<Script>();
        send_sync::<crate::eval::Prepared<'static>>();
        fn send<T: Send>() {}
        send::<crate::logic::LogicContext>();
    }
}
