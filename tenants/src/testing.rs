//! Tests that live in a package (`tests/*.yaml`): scenarios a consultant keeps beside the types
//! they test, as GoRules keeps test events beside a decision and Camunda test scenarios beside a
//! process.
//!
//! This module is the format and everything about it that needs no database: reading the files
//! (every problem with its file and path, like the rest of the package), checking them against the
//! package (types, transitions, users and `@keys` exist), and writing skeleton scenarios from the
//! workflows (`switchyard tenant test --generate`), and the coverage of the workflows by a run
//! (the one query here reads what a run fired). The runner, which drives the production engine
//! and API on a throwaway database, is `api::cli::package_test`.
//!
//! ```yaml
//! # tests/shipments.yaml
//! scenarios:
//!   - name: A COD shipment is delivered against cash
//!     steps:
//!       - transition: dispatch
//!         on: "@zuri_to_nakuru"          # a sample row's key, or a key a create step gave
//!         as: ops@pwani.test
//!         expect: { state: IN_TRANSIT, events: [shipment.dispatched] }
//!       - check: "@zuri"                 # another entity, after the steps so far
//!         expect: { data: { balance: 1550 } }
//!       - transition: deliver
//!         on: "@zuri_to_nakuru"
//!         as: ops@pwani.test
//!         input: { pod_reference: SIG-1 }
//!         expect: { error: { code: GUARD_FAILED, message: Collect the full } }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::def::WorkflowDef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::PackageError;
use crate::package::{read_yaml, yaml_files, Package};

/// At most this many scenarios in a package, and steps in a scenario: a package's tests run before
/// every publish, so they stay bounded like everything else a package says.
pub const MAX_SCENARIOS: usize = 500;
pub const MAX_STEPS: usize = 200;

/// One file of `tests/`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(default)]
    pub scenarios: Vec<Scenario>,
}

/// Given entities, then steps, each with what must hold after it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Start from the package's sample data (`data/*.yaml`, the default) or from nothing.
    #[serde(default = "sample")]
    pub data: DataSet,
    /// Entities created before the steps, written as rows of `data/*.yaml` (their `key`s are
    /// usable as `"@key"`).
    #[serde(default)]
    pub given: Vec<crate::package::SampleRow>,
    pub steps: Vec<Step>,
}

fn sample() -> DataSet {
    DataSet::Sample
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSet {
    Sample,
    None,
}

/// One step: exactly one of `create`, `transition`, `edit`, `check` or `advance`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Create an entity of this type (`data`, and `input` for a create transition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<String>,
    /// Fire this transition on the entity `on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<String>,
    /// Change fields (`data`, a merge patch) of the entity `"@key"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<String>,
    /// Only expectations, on the entity `"@key"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Let time pass (`90s`, `5h`, `2days`): the timers due by then fire, as the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance: Option<String>,
    /// The entity a transition is fired on: `"@key"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// The user acting (an email of the package's `users:`).
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The name a created entity is known by in later steps (`"@key"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Names for entities the step's entity refers to, for later steps: `{ the_ndr: ndr_id }`
    /// makes `"@the_ndr"` the entity whose id the reference field `ndr_id` holds after the step
    /// (e.g. one its script created).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remember: BTreeMap<String, String>,
    /// What must hold; without it, the step must succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
}

/// What must hold after a step. `data` is compared as a subset: every field it names must be
/// equal (objects recursively, arrays and scalars exactly; numbers as numbers).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Event names the step emitted (each must be among them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// The step is refused: its error code and a part of its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExpectError>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a step does, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    Create(&'a str),
    Transition(&'a str),
    Edit(&'a str),
    Check(&'a str),
    Advance(&'a str),
}

impl Step {
    /// The step's action; `None` when it names none or several (a problem `check` reports).
    pub fn action(&self) -> Option<Action<'_>> {
        let all = [
            self.create.as_deref().map(Action::Create),
            self.transition.as_deref().map(Action::Transition),
            self.edit.as_deref().map(Action::Edit),
            self.check.as_deref().map(Action::Check),
            self.advance.as_deref().map(Action::Advance),
        ];
        let mut given = all.into_iter().flatten();
        match (given.next(), given.next()) {
            (Some(a), None) => Some(a),
            _ => None,
        }
    }

    /// A line naming the step in reports: `transition dispatch on @zuri_to_nakuru as ops@…`.
    pub fn describe(&self) -> String {
        let what = match self.action() {
            Some(Action::Create(t)) => format!("create {t}"),
            Some(Action::Transition(t)) => format!("transition {t} on {}", self.on.as_deref().unwrap_or("?")),
            Some(Action::Edit(k)) => format!("edit {k}"),
            Some(Action::Check(k)) => format!("check {k}"),
            Some(Action::Advance(d)) => format!("advance {d}"),
            None => "an invalid step".to_string(),
        };
        match &self.actor {
            Some(a) => format!("{what} as {a}"),
            None => what,
        }
    }
}

/// Which of the package's transitions a run fired, and which it did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// `type.transition` of every transition of the package's workflows, in the order written.
    pub all: Vec<String>,
    /// Those never fired (committed) by any scenario, steps, follow-ups and timers included.
    pub missing: Vec<String>,
}

impl Coverage {
    /// From the `(type, transition)` pairs a run committed.
    pub fn of(package: &Package, fired: &BTreeSet<(String, String)>) -> Coverage {
        let mut all = Vec::new();
        let mut missing = Vec::new();
        for ty in &package.types {
            let Ok(wf) = WorkflowDef::parse(ty.name.as_str(), ty.workflow.as_ref()) else { continue };
            for t in wf.transitions.keys() {
                let name = format!("{}.{t}", ty.name.as_str());
                if !fired.contains(&(ty.name.as_str().to_string(), t.clone())) {
                    missing.push(name.clone());
                }
                all.push(name);
            }
        }
        Coverage { all, missing }
    }

    /// `Transitions fired: 20 of 22 (never: order.x, trip.y)`.
    pub fn line(&self) -> String {
        let fired = self.all.len() - self.missing.len();
        if self.missing.is_empty() {
            format!("Transitions fired: all {fired} of the package's workflows")
        } else {
            format!("Transitions fired: {fired} of {} (never: {})", self.all.len(), self.missing.join(", "))
        }
    }
}

/// The `(type, transition)` pairs committed in a database (a run's throwaway one), any tenant.
pub async fn fired_transitions(owner: &sqlx::PgPool) -> Result<BTreeSet<(String, String)>, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select distinct entity_type, transition from transitions").fetch_all(owner).await?;
    Ok(rows.into_iter().collect())
}

/// A duration as timers write it (`90s`, `5h`, `2days`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text).ok()
}

/// The test files of a package folder (`tests/*.yaml`, in name order); none when it has no
/// `tests/` folder. Every file that does not parse is an error.
pub fn load(dir: &Path) -> Result<Vec<(PathBuf, TestFile)>, Vec<PackageError>> {
    let (files, errors) = load_each(dir);
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// [`load`], keeping the files that parse beside the errors of those that do not (`validate`
/// checks the former and reports the latter).
pub fn load_each(dir: &Path) -> (Vec<(PathBuf, TestFile)>, Vec<PackageError>) {
    let tests = dir.join("tests");
    let mut errors = Vec::new();
    let mut files = Vec::new();
    if !tests.is_dir() {
        return (files, errors);
    }
    for path in yaml_files(&tests, &mut errors) {
        match read_yaml::<TestFile>(&path) {
            Ok(f) => files.push((path, f)),
            Err(e) => errors.push(e),
        }
    }
    (files, errors)
}

/// Checks test files against their package without running them: every step names one action,
/// and the types, transitions, users, `@keys` (of the sample data, `given` or an earlier create)
/// and durations it names exist. Each problem with its file and path.
pub fn check(package: &Package, files: &[(PathBuf, TestFile)]) -> Vec<PackageError> {
    let mut problems = Vec::new();
    let users: BTreeSet<String> = package.tenant.users.iter().map(|u| u.email.to_lowercase()).collect();
    let sample_keys: HashMap<&str, &str> =
        package.data.iter().filter_map(|r| r.key.as_deref().map(|k| (k, r.type_name.as_str()))).collect();
    let workflows: HashMap<&str, Option<WorkflowDef>> = package
        .types
        .iter()
        .map(|t| (t.name.as_str(), WorkflowDef::parse(t.name.as_str(), t.workflow.as_ref()).ok()))
        .collect();
    let total: usize = files.iter().map(|(_, f)| f.scenarios.len()).sum();
    if total > MAX_SCENARIOS {
        if let Some((path, _)) = files.first() {
            problems.push(PackageError::at(
                path,
                "",
                format!("the package has {total} test scenarios; at most {MAX_SCENARIOS}"),
            ));
        }
    }
    for (path, file) in files {
        for (si, scenario) in file.scenarios.iter().enumerate() {
            let at = |rest: &str| format!("/scenarios/{si}{rest}");
            if scenario.steps.is_empty() || scenario.steps.len() > MAX_STEPS {
                problems.push(PackageError::at(path, &at("/steps"), format!("a scenario has 1 to {MAX_STEPS} steps")));
            }
            // The keys known at each point, with their types.
            let mut keys: HashMap<String, String> = HashMap::new();
            if scenario.data == DataSet::Sample {
                keys.extend(sample_keys.iter().map(|(k, t)| (k.to_string(), t.to_string())));
            }
            for (gi, row) in scenario.given.iter().enumerate() {
                if !workflows.contains_key(row.type_name.as_str()) {
                    problems.push(PackageError::at(
                        path,
                        &at(&format!("/given/{gi}/type")),
                        format!("no type `{}` in the package", row.type_name),
                    ));
                }
                if let Some(k) = &row.key {
                    keys.insert(k.clone(), row.type_name.clone());
                }
            }
            for (i, step) in scenario.steps.iter().enumerate() {
                let mut remembered: Vec<(String, String)> = Vec::new();
                let here = |rest: &str| at(&format!("/steps/{i}{rest}"));
                let mut problem =
                    |rest: &str, message: String| problems.push(PackageError::at(path, &here(rest), message));
                let key_type = |r: &str, keys: &HashMap<String, String>| -> Result<String, String> {
                    match r.strip_prefix('@') {
                        Some(k) => keys.get(k).cloned().ok_or_else(|| {
                            format!(
                                "no entity `@{k}` here (a key of the sample data, `given` or an earlier create step)"
                            )
                        }),
                        None => Err(format!("`{r}`: name the entity by its key, `@key`")),
                    }
                };
                if let Some(actor) = &step.actor {
                    if !users.contains(&actor.to_lowercase()) {
                        problem("/as", format!("`{actor}` is not one of the package's users"));
                    }
                }
                if let Some(e) = &step.expect {
                    if e.error.is_some() && (e.state.is_some() || e.data.is_some() || e.events.is_some()) {
                        problem("/expect", "a refused step expects only its `error`".to_string());
                    }
                }
                let step_type = match step.action() {
                    Some(Action::Create(ty)) => Some(ty.to_string()),
                    Some(Action::Transition(_)) => step.on.as_deref().and_then(|r| key_type(r, &keys).ok()),
                    Some(Action::Edit(r) | Action::Check(r)) => key_type(r, &keys).ok(),
                    _ => None,
                };
                for (key, field) in &step.remember {
                    let target = step_type.as_deref().and_then(|ty| reference_target(package, ty, field));
                    match target {
                        Some(to) => {
                            remembered.push((key.clone(), to));
                        }
                        None => problem(
                            &format!("/remember/{key}"),
                            format!("`{field}` is not a reference field of the step's entity"),
                        ),
                    }
                }
                if let Some(e) = &step.expect {
                    if e.events.is_some() && !matches!(step.action(), Some(Action::Transition(_))) {
                        problem("/expect/events", "events are checked on transitions".to_string());
                    }
                }
                match step.action() {
                    None => problem("", "a step does one of: create, transition, edit, check, advance".to_string()),
                    Some(Action::Create(ty)) => {
                        if !workflows.contains_key(ty) {
                            problem("/create", format!("no type `{ty}` in the package"));
                        }
                        if step.actor.is_none() {
                            problem("", "who creates it? (`as:` a user's email)".to_string());
                        }
                        if let Some(k) = &step.key {
                            keys.insert(k.clone(), ty.to_string());
                        }
                    }
                    Some(Action::Transition(name)) => {
                        if step.actor.is_none() {
                            problem("", "who fires it? (`as:` a user's email)".to_string());
                        }
                        match step.on.as_deref().map(|on| key_type(on, &keys)) {
                            None => problem("", "the entity it is fired on (`on: \"@key\"`)".to_string()),
                            Some(Err(m)) => problem("/on", m),
                            Some(Ok(ty)) => {
                                let known = workflows
                                    .get(ty.as_str())
                                    .and_then(Option::as_ref)
                                    .is_some_and(|w| w.transitions.contains_key(name));
                                if !known {
                                    problem("/transition", format!("type `{ty}` has no transition `{name}`"));
                                }
                            }
                        }
                    }
                    Some(Action::Edit(r)) => {
                        if let Err(m) = key_type(r, &keys) {
                            problem("/edit", m);
                        }
                        if step.actor.is_none() {
                            problem("", "who edits it? (`as:` a user's email)".to_string());
                        }
                        if !step.data.as_ref().is_some_and(Value::is_object) {
                            let at = if step.data.is_some() { "/data" } else { "" };
                            problem(at, "the fields to change (`data`, an object)".to_string());
                        }
                    }
                    Some(Action::Check(r)) => {
                        if let Err(m) = key_type(r, &keys) {
                            problem("/check", m);
                        }
                        if step.expect.is_none() {
                            problem("", "a check without `expect` checks nothing".to_string());
                        }
                    }
                    Some(Action::Advance(d)) => {
                        if parse_duration(d).is_none() {
                            problem("/advance", format!("`{d}` is not a duration (e.g. 90s, 5h, 2days)"));
                        }
                    }
                }
                keys.extend(remembered);
            }
        }
    }
    problems
}

/// The type a reference field of `type_name` refers to: `field`, or `field.N` for the N-th
/// (0-based) of an array of references (`trip_ids.0`).
pub fn reference_target(package: &Package, type_name: &str, field: &str) -> Option<String> {
    let ty = package.types.iter().find(|t| t.name.as_str() == type_name)?;
    let (name, index) = match field.split_once('.') {
        Some((name, i)) => (name, Some(i.parse::<usize>().ok()?)),
        None => (field, None),
    };
    let mut def = ty.fields.iter().find(|(n, _)| n.as_str() == name).map(|(_, d)| d)?;
    if index.is_some() {
        def = def.items.as_deref().filter(|_| matches!(def.kind, ontology::FieldKind::Array))?;
    }
    match def.kind {
        ontology::FieldKind::Reference => def.to.as_ref().map(|t| t.as_str().to_string()),
        _ => None,
    }
}

/// The id a `remember` path (`field` or `field.N`) holds in an entity's data.
pub fn remembered_id<'a>(data: &'a Value, field: &str) -> Option<&'a str> {
    match field.split_once('.') {
        Some((name, i)) => data.get(name)?.get(i.parse::<usize>().ok()?)?.as_str(),
        None => data.get(field)?.as_str(),
    }
}

/// Whether `got` holds everything `want` says: objects by the keys `want` names (recursively),
/// numbers as numbers (`3` and `3.0` are equal), everything else exactly. On a difference, the
/// JSON pointer of the first one and what was found there.
///
/// A few matchers say more than equality, as an object with one `$` key (field names are
/// snake_case, so none starts with `$`): `{ $contains: "text" }` (a string containing it),
/// `{ $includes: [a, b] }` (an array holding each, in any order, among others), `{ $exists: true }`
/// (present and not null; `false`: absent or null).
pub fn subset(want: &Value, got: &Value) -> Result<(), (String, Value)> {
    fn matcher(w: &serde_json::Map<String, Value>, g: &Value) -> Option<bool> {
        let (key, arg) = w.iter().next().filter(|_| w.len() == 1)?;
        Some(match (key.as_str(), arg) {
            ("$contains", Value::String(part)) => g.as_str().is_some_and(|s| s.contains(part.as_str())),
            ("$includes", Value::Array(items)) => {
                g.as_array().is_some_and(|have| items.iter().all(|i| have.iter().any(|h| subset(i, h).is_ok())))
            }
            ("$exists", Value::Bool(yes)) => g.is_null() != *yes,
            _ => return None,
        })
    }
    fn walk(want: &Value, got: &Value, at: &mut String) -> Result<(), (String, Value)> {
        let here = |at: &String| if at.is_empty() { "/".to_string() } else { at.clone() };
        if let Value::Object(w) = want {
            if let Some(ok) = matcher(w, got) {
                return if ok { Ok(()) } else { Err((here(at), got.clone())) };
            }
        }
        match (want, got) {
            (Value::Object(w), Value::Object(g)) => {
                for (k, wv) in w {
                    let len = at.len();
                    at.push('/');
                    at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    walk(wv, g.get(k).unwrap_or(&Value::Null), at)?;
                    at.truncate(len);
                }
                Ok(())
            }
            (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
                for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                    let len = at.len();
                    at.push_str(&format!("/{i}"));
                    walk(wv, gv, at)?;
                    at.truncate(len);
                }
                Ok(())
            }
            (Value::Number(w), Value::Number(g)) if w.as_f64() == g.as_f64() => Ok(()),
            (w, g) if w == g => Ok(()),
            (_, g) => Err((here(at), g.clone())),
        }
    }
    walk(want, got, &mut String::new())
}

/// Skeleton scenarios from the workflows, for the consultant to complete: per type, one scenario
/// per transition that reaches its source state by the shortest path from a sample row (or a
/// create) and fires it, and one per guard expecting its refusal. Returns `(file name, YAML
/// text)` per type with a workflow; the text has `TODO` comments where only a person knows what
/// to write (the data that makes a guard fail, the fields a transition sets).
pub fn generate(package: &Package) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let permissions = engine::permissions::Permissions::new(
        package.tenant.roles.iter().map(|(name, role)| (name.as_str(), role.permissions.as_ref())),
    );
    for ty in &package.types {
        let Ok(wf) = WorkflowDef::parse(ty.name.as_str(), ty.workflow.as_ref()) else { continue };
        if wf.transitions.is_empty() {
            continue;
        }
        let name = ty.name.as_str();
        let initial = wf
            .states
            .iter()
            .find(|(_, s)| s.kind == engine::def::StateKind::Initial)
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        // The shortest path (transition names) from the initial state to every state.
        let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        paths.insert(initial.clone(), Vec::new());
        let mut queue = VecDeque::from([initial.clone()]);
        while let Some(state) = queue.pop_front() {
            let here = paths.get(&state).cloned().unwrap_or_default();
            for (t, def) in &wf.transitions {
                if def.create || !def.from.contains(&state) || paths.contains_key(&def.to) {
                    continue;
                }
                let mut p = here.clone();
                p.push(t.clone());
                paths.insert(def.to.clone(), p);
                queue.push_back(def.to.clone());
            }
        }
        let user_for = |roles: &[String]| -> String {
            package
                .tenant
                .users
                .iter()
                .find(|u| u.roles.iter().any(|r| roles.contains(r)))
                .map(|u| u.email.clone())
                .unwrap_or_else(|| "TODO@user.of.the.package".to_string())
        };
        let creator = package
            .tenant
            .users
            .iter()
            .find(|u| permissions.allows(&u.roles, false, name, engine::permissions::Action::Create))
            .map(|u| u.email.clone())
            .unwrap_or_else(|| "TODO@user.of.the.package".to_string());
        // A sample row in the initial state starts each path; else the path creates one.
        let start = package
            .data
            .iter()
            .find(|r| r.type_name == name && r.key.is_some() && r.state.as_deref().is_none_or(|s| s == initial))
            .and_then(|r| r.key.clone());

        let mut text = format!(
            "# Generated by `switchyard tenant test --generate` from the workflow of `{name}`: one scenario per\n\
             # transition (reaching its state by the shortest path) and one per guard (its refusal).\n\
             # Fill in the TODOs — the data that makes each guard fail, the fields each step sets — and keep\n\
             # what you fill in: the file is not regenerated over your changes.\n\
             scenarios:\n"
        );
        let path_steps = |text: &mut String, to_state: &str| {
            let Some(path) = paths.get(to_state) else { return };
            let on = start.clone().unwrap_or_else(|| "it".to_string());
            if start.is_none() {
                text.push_str(&format!(
                    "      - create: {name}\n        as: {creator}\n        key: it\n        data: {{}}   # TODO: the fields of a {name}\n"
                ));
            }
            for t in path {
                let def = &wf.transitions[t];
                text.push_str(&format!(
                    "      - transition: {t}\n        on: \"@{on}\"\n        as: {}\n        expect: {{ state: {} }}\n",
                    user_for(&def.roles),
                    def.to
                ));
            }
        };
        for (t, def) in &wf.transitions {
            if def.create {
                continue;
            }
            let Some(from) = def.from.iter().find(|f| paths.contains_key(*f)) else {
                text.push_str(&format!("  # `{t}`: none of its states ({}) is reachable\n", def.from.join(", ")));
                continue;
            };
            let on = start.clone().unwrap_or_else(|| "it".to_string());
            text.push_str(&format!("  - name: {name} {t} from {from}\n    steps:\n"));
            path_steps(&mut text, from);
            let input = if def.input.is_some() { "\n        input: {}   # TODO: its input" } else { "" };
            text.push_str(&format!(
                "      - transition: {t}\n        on: \"@{on}\"\n        as: {}{input}\n        expect: {{ state: {} }}\n",
                user_for(&def.roles),
                def.to
            ));
            for (gi, g) in def.guards.iter().enumerate() {
                text.push_str(&format!("  - name: {name} {t} refused by guard {gi}\n    steps:\n"));
                path_steps(&mut text, from);
                text.push_str(&format!(
                    "      # TODO: a step that makes this guard false\n      - transition: {t}\n        on: \"@{on}\"\n        as: {}{input}\n        expect:\n          error: {{ code: GUARD_FAILED, message: {} }}\n",
                    user_for(&def.roles),
                    serde_json::to_string(&g.message).unwrap_or_default()
                ));
            }
        }
        out.push((format!("{name}.generated.yaml"), text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_compares_named_fields_numbers_as_numbers_and_says_where_it_differs() {
        let got = json!({ "a": 1, "b": { "c": [1, 2], "d": "x" }, "e": 3.0 });
        assert_eq!(subset(&json!({ "b": { "d": "x" }, "e": 3 }), &got), Ok(()));
        assert_eq!(subset(&json!({ "b": { "c": [1, 3] } }), &got), Err(("/b/c/1".to_string(), json!(2))));
        assert_eq!(subset(&json!({ "z": 1 }), &got), Err(("/z".to_string(), Value::Null)));
        assert_eq!(subset(&json!({ "b": { "c": [1] } }), &got), Err(("/b/c".to_string(), json!([1, 2]))));
    }

    #[test]
    fn matchers_say_contains_includes_and_exists() {
        let got = json!({ "msg": "Trip TRP-2026-000001 cancelled", "ids": [3, 1, 2], "lines": [{ "a": 1, "b": 2 }] });
        assert_eq!(subset(&json!({ "msg": { "$contains": "cancelled" } }), &got), Ok(()));
        assert!(subset(&json!({ "msg": { "$contains": "approved" } }), &got).is_err());
        assert_eq!(subset(&json!({ "ids": { "$includes": [1, 3] } }), &got), Ok(()));
        assert!(subset(&json!({ "ids": { "$includes": [4] } }), &got).is_err());
        assert_eq!(subset(&json!({ "lines": { "$includes": [{ "a": 1 }] } }), &got), Ok(()));
        assert_eq!(subset(&json!({ "msg": { "$exists": true }, "nope": { "$exists": false } }), &got), Ok(()));
        assert_eq!(subset(&json!({ "nope": { "$exists": true } }), &got), Err(("/nope".to_string(), Value::Null)));
    }

    #[test]
    fn a_step_names_exactly_one_action() {
        let two = Step { create: Some("x".into()), check: Some("@y".into()), ..Step::default() };
        assert_eq!(two.action(), None);
        let one = Step { advance: Some("5h".into()), ..Step::default() };
        assert_eq!(one.action(), Some(Action::Advance("5h")));
        assert_eq!(parse_duration("2days"), Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_duration("soon"), None);
    }
}
