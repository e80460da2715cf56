//! Static analysis of a package folder: `switchyard tenant validate DIR`.
//!
//! [`validate_dir`] reads every file on its own (a file that does not parse hides nothing in
//! the others), runs the compilers of the `ontology` and `engine` crates over what parsed, and
//! adds the checks that need the whole package: names referenced across files (types, states,
//! roles, transitions, fields), the states a workflow can reach, the `var` paths of every
//! JSON-Logic rule, the variables templates read, the names scripts pass as literals, who can
//! fire each transition, and the webhooks. Every problem names its file (relative to the
//! package folder), a JSON pointer into that file and a message; see [`Problem`] for the format
//! and `docs/tenant-package.md` ("Validation") for the list of checks and their messages.
//!
//! Here: the report ([`Problem`], [`Report`]), [`validate_dir`] and the helpers the checks share.
//! Loading is [`load`], the checks [`checks`], the `var` paths of JSON-Logic rules [`scope`],
//! sample data [`sample`], the YAML helpers [`yaml`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use engine::compiled::CompiledTenant;
use engine::def::{LoadDef, StateKind, WorkflowDef};
use engine::error::EngineError;
use engine::limits::Limits;
use engine::permissions::{Action, Permissions};
use engine::rules::NamedRules;
use engine::script::{CallArg, ScriptEngine};
use indexmap::IndexMap;
use ontology::{
    CompiledType, EntityTypeDef, FieldDef, FieldKind, FieldName, Ontology, OntologyError, Template, TypeName,
};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::package::{SampleRow, TenantFile};

mod checks;
mod load;
mod sample;
mod scope;
mod tests;
mod yaml;

use load::*;
use sample::*;
use scope::*;
use yaml::*;

pub(crate) use yaml::esc;
pub use yaml::missing_key;

/// How bad a problem is: errors fail `validate` (exit code 1), warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The package is wrong: it will not publish, or it cannot work as written.
    Error,
    /// The package publishes, but something in it is most likely a mistake.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in a package.
///
/// Displayed on one line as `<severity>: <file>: <path>: <message>`, e.g.
/// ``error: types/order.yaml: /workflow/transitions/submitOrder/to: unknown state `PENDING` ``.
/// The path is left out when it is the whole file (`""`), and the file when the problem is
/// about the package folder itself. A problem inside a script or template has its position
/// after the path, `<path>:<line>:<column>` (`…/script:3:1: script does not compile: …`).
///
/// As JSON: `{severity, file, path, message}` plus `line` and `column` when known (absent, not
/// `null`, otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the package folder, with `/` separators: `tenant.yaml`,
    /// `types/order.yaml`, `data/010-catalog.yaml`.
    pub file: String,
    /// A JSON pointer into the file's YAML (RFC 6901), e.g. `/workflow/states/DRAFT`; `""` for
    /// the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// The line (1-based) within the string `path` points to, for a problem inside a script or
    /// a template: the script's first line is line 1 (not the file's line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The column (1-based, in characters) within that line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Problem {
    /// A problem without a position inside its value.
    pub fn new(
        severity: Severity,
        file: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Problem {
        Problem { severity, file: file.into(), path: path.into(), message: message.into(), line: None, column: None }
    }

    /// An error (see [`Problem::new`]).
    pub fn error(file: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Severity::Error, file, path, message)
    }

    /// The same problem at `line`/`column` of the script or template `path` points to.
    pub fn at(self, line: Option<usize>, column: Option<usize>) -> Problem {
        // A column without its line locates nothing.
        Problem { line, column: line.and(column), ..self }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        if !self.path.is_empty() || self.line.is_some() {
            f.write_str(&self.path)?;
            match (self.line, self.column) {
                (Some(l), Some(c)) => write!(f, ":{l}:{c}")?,
                (Some(l), None) => write!(f, ":{l}")?,
                _ => {}
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Everything [`validate_dir`] found, errors and warnings, in file order (`tenant.yaml`,
/// `types/*`, `data/*`) and, within a file, in the order of the places they point to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The problems; empty for a clean package.
    pub problems: Vec<Problem>,
}

impl Report {
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Warning)
    }

    /// Whether there is at least one error (warnings do not count).
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

impl fmt::Display for Report {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Validates the package in `dir`, returning every problem found. Never fails: a folder that
/// cannot be read is a problem too.
pub fn validate_dir(dir: &Path, limits: &Limits) -> Report {
    let mut v = Validation::default();
    if !dir.is_dir() {
        v.error("", "", format!("`{}` is not a package folder (no such directory)", dir.display()));
        return v.finish();
    }
    let tenant = v.load_tenant(dir);
    let types = v.load_types(dir);
    let data = v.load_data(dir);
    let package = Loaded::new(tenant, types, data);

    v.check_tenant(&package);
    v.check_create_rules(&package, limits);
    v.check_types(&package);
    let compiled = v.compile(&package, limits);
    let scripts = ScriptEngine::new(limits);
    for ty in package.primary_types() {
        v.check_workflow(&package, ty);
        v.check_terminal_states(ty);
        v.check_firing_roles(&package, ty);
        v.check_scripts(&package, ty, &scripts);
    }
    v.check_immutable(&package);
    v.check_webhooks(&package);
    v.check_decisions(dir, &package, &scripts);
    v.check_data(&package, compiled.as_ref());
    v.check_tests(dir);
    v.finish()
}

#[derive(Default)]
struct Validation {
    problems: Vec<Problem>,
    /// The raw YAML of each file, to sort problems in document order.
    raw: HashMap<String, Value>,
    /// The events the package's transitions declare and its scripts `emit` with a literal
    /// name (collected by `check_scripts`, read by `check_webhooks`).
    emitted: HashSet<String>,
    /// Whether some event name cannot be known statically (a computed `emit`, a workflow or
    /// script that does not compile): unmatched webhook patterns are not reported then.
    emitted_unknown: bool,
}

impl Validation {
    fn push(&mut self, severity: Severity, file: &str, path: &str, message: String) {
        self.problems.push(Problem::new(severity, file, path, message));
    }

    /// An error at `line`/`column` of the script or template `path` points to.
    fn error_at(&mut self, file: &str, path: &str, (line, column): (Option<usize>, Option<usize>), message: String) {
        self.problems.push(Problem::error(file, path, message).at(line, column));
    }

    fn error(&mut self, file: &str, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, file, path, message.into());
    }

    /// Sorts (by file, then by where in the file, stable) and removes repeated problems.
    fn finish(self) -> Report {
        let Validation { problems, raw, .. } = self;
        let mut keyed: Vec<_> = problems
            .into_iter()
            .map(|p| {
                let rank = match p.file.as_str() {
                    "" => 0,
                    "tenant.yaml" => 1,
                    f if f.starts_with("types") => 2,
                    f if f.starts_with("decisions") => 3,
                    f if f.starts_with("data") => 4,
                    _ => 5,
                };
                let position = raw.get(&p.file).map(|v| document_position(v, &p.path)).unwrap_or_default();
                ((rank, p.file.clone(), position, p.line, p.column), p)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        // A set, not `out.contains`: a hostile package can have 100,000 problems (a list of that
        // many unknown roles), and a quadratic dedup took minutes over them.
        let mut seen: HashSet<Problem> = HashSet::with_capacity(keyed.len());
        let mut out: Vec<Problem> = Vec::with_capacity(keyed.len());
        for (_, p) in keyed {
            if seen.insert(p.clone()) {
                out.push(p);
            }
        }
        Report { problems: out }
    }
}

/// Checks a variable a template reads (`customer.name`, from [`Template::variables`]): a title
/// sees the data fields; a number template also `seq`, `year`, `month` and `day`.
fn template_var(def: &EntityTypeDef, var: &str, number: bool) -> Result<(), String> {
    let segments: Vec<&str> = var.split('.').collect();
    let (root, rest) = (segments[0], &segments[1..]);
    let sees = if number {
        "a number template sees the data fields and seq, year, month, day"
    } else {
        "a title sees the data fields"
    };
    if number && NUMBER_VARS.contains(&root) {
        return if rest.is_empty() { Ok(()) } else { Err(format!("`{root}` is a string ({sees})")) };
    }
    let Some(mut field) = def.fields.get(root) else {
        return Err(format!("type `{}` has no field `{root}` ({sees})", def.name));
    };
    for (k, segment) in rest.iter().enumerate() {
        let next = match field.kind {
            FieldKind::Object => field.fields.as_ref().and_then(|f| f.get(*segment)),
            FieldKind::Array if is_index(segment) => field.items.as_deref(),
            _ => None,
        };
        field =
            next.ok_or_else(|| format!("type `{}` has no field `{}`", def.name, field_path(&segments[..=k + 1])))?;
    }
    Ok(())
}

/// What a number template sees besides the data fields.
const NUMBER_VARS: &[&str] = &["seq", "year", "month", "day"];

/// Checks `transition(row, "name")` in a script of transition `t` of `ty`: the row's type is
/// known when it is `entity` or a load (an element of a load by `where`); then the name must be
/// one of its transitions, else one of some type's.
fn script_transition(
    package: &Loaded,
    ty: &TypeFile,
    t: &engine::def::TransitionDef,
    row: &CallArg,
    name: &str,
) -> Result<(), String> {
    let target = match row {
        CallArg::Var { name: var, indexed: false } if var == "entity" => ty.name.clone(),
        CallArg::Var { name: var, indexed } => match t.load.get(var) {
            Some(load) if load.r#where.is_some() == *indexed => Some(load.type_name.clone()),
            _ => None,
        },
        _ => None,
    };
    match target.as_deref().map(|n| (n, package.type_named(n).and_then(|t| t.workflow.as_ref()))) {
        Some((_, None)) => Ok(()),
        Some((type_name, Some(wf))) if !wf.transitions.contains_key(name) => {
            Err(format!("type `{type_name}` has no transition `{name}`"))
        }
        Some(_) => Ok(()),
        None => {
            let known =
                package.primary_types().any(|t| t.workflow.as_ref().is_none_or(|wf| wf.transitions.contains_key(name)));
            if known {
                Ok(())
            } else {
                Err(format!("no type has a transition `{name}`"))
            }
        }
    }
}

/// What every environment variable a package webhook's `secret_env` names starts with: the
/// server reads no other variable for a package (a tenant must not have it sign with
/// `DATABASE_URL`, nor learn which variables exist).
pub const WEBHOOK_SECRET_ENV_PREFIX: &str = "SWITCHYARD_WEBHOOK_SECRET_";

/// Whether `slug` is a tenant slug: lowercase ASCII letters and digits in words joined by single
/// hyphens, starting with a letter, 2 to 63 characters (`chemichemi`, `change-control`). The
/// rule is [`engine::names::TenantSlug`]'s, the one parser of slugs.
pub fn valid_slug(slug: &str) -> bool {
    engine::names::TenantSlug::parse(slug).is_ok()
}

/// The prefix of the variables tenant `slug` may name: `SWITCHYARD_WEBHOOK_SECRET_<SLUG>__`, the
/// slug in upper case with `_` for `-`. As slugs never hold two hyphens in a row, no tenant's
/// prefix begins another's: one tenant cannot name another tenant's secret.
pub fn webhook_secret_env_prefix(slug: &str) -> String {
    format!("{WEBHOOK_SECRET_ENV_PREFIX}{}__", slug.to_ascii_uppercase().replace('-', "_"))
}

/// Why `name` cannot be the `secret_env` of a webhook of tenant `slug` (it is not
/// `SWITCHYARD_WEBHOOK_SECRET_<SLUG>__<NAME>`, NAME of `A-Z`, `0-9` and `_`), if it cannot. The
/// message does not repeat the name.
pub fn webhook_secret_env_problem(slug: &str, name: &str) -> Option<String> {
    let prefix = webhook_secret_env_prefix(slug);
    let ok = name.strip_prefix(&prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    });
    (!ok).then(|| {
        format!("must name a server variable {prefix}<NAME> (NAME of A-Z, 0-9 and _); no other variable is read")
    })
}

/// A webhook's URL as the API accepts it (before resolving the host): http or https, a host,
/// no credentials.
fn webhook_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs are allowed".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed (the signing secret authenticates)".into());
    }
    Ok(())
}

/// An event pattern as the API accepts it (`name`, `prefix.*` or `*`), as a matcher; `None`
/// when it is not one.
fn event_pattern(pattern: &str) -> Option<impl Fn(&str) -> bool + '_> {
    let p = pattern.trim();
    let (stem, prefix) = match p.strip_suffix(".*") {
        Some(stem) => (stem, true),
        None => (p, false),
    };
    let valid = p == "*"
        || (!stem.is_empty()
            && stem.len() <= 200
            && stem.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            }));
    valid.then_some(move |event: &str| {
        p == "*"
            || (prefix && event.strip_prefix(stem).is_some_and(|rest| rest.starts_with('.')))
            || (!prefix && event == stem)
    })
}

/// The compiled types, stubs included, and which types are stubs.
struct Compiled {
    ontology: Ontology,
    stubs: HashSet<String>,
}

/// The problems of a type that does not compile: the ontology stops at the first one (`first`),
/// so each top-level field (and the `number:`) is compiled on its own to find the others.
fn type_errors(def: &EntityTypeDef, first: OntologyError) -> Vec<OntologyError> {
    let mut errors = Vec::new();
    for (name, field) in &def.fields {
        let mut one = stub(def.name.clone(), None);
        one.fields.insert(name.clone(), field.clone());
        if let Err(e) = CompiledType::compile(one) {
            errors.push(e);
        }
    }
    if let Some(number) = &def.number {
        let mut one = stub(def.name.clone(), None);
        if let Some(field) = def.fields.get(number.field.as_str()) {
            one.fields.insert(number.field.clone(), field.clone());
        }
        one.number = Some(number.clone());
        if let Err(e @ OntologyError::InvalidField { .. }) = CompiledType::compile(one) {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        errors.push(first);
    }
    errors
}

/// `{ workflow }` of a type file, typed; the other keys are ignored.
#[derive(Deserialize)]
struct WorkflowOf {
    #[serde(default)]
    workflow: Option<WorkflowDef>,
}

/// A type with no fields, standing in for one that does not compile, so the rest still does.
fn stub(name: TypeName, workflow: Option<Value>) -> EntityTypeDef {
    EntityTypeDef {
        name,
        label: None,
        description: None,
        title: None,
        number: None,
        fields: IndexMap::new(),
        immutable: false,
        unique: Vec::new(),
        record_rules: IndexMap::new(),
        workflow,
    }
}

/// The names of the named rules a rule uses directly (`{"rule": "name"}`), in order.
fn named_rules(rule: &Value, out: &mut Vec<String>) {
    match rule {
        Value::Object(map) => {
            if let (1, Some(Value::String(name))) = (map.len(), map.get(engine::rules::RULE_OPERATOR)) {
                if !out.contains(name) {
                    out.push(name.clone());
                }
                return;
            }
            map.values().for_each(|v| named_rules(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| named_rules(v, out)),
        _ => {}
    }
}

/// Every reference field under `fields`: its JSON pointer (from `base`) and target.
fn references(fields: &IndexMap<FieldName, FieldDef>, base: &str, out: &mut Vec<(String, TypeName)>) {
    walk_fields(fields, base, &mut |f, pointer| {
        if let Some(to) = &f.to {
            out.push((pointer.to_string(), to.clone()));
        }
    });
}

/// The `role:` of every user field (`type: user`) at any depth, with its field's JSON pointer.
fn user_roles(fields: &IndexMap<FieldName, FieldDef>, base: &str, out: &mut Vec<(String, String)>) {
    walk_fields(fields, base, &mut |f, pointer| {
        if let Some(role) = &f.role {
            out.push((pointer.to_string(), role.clone()));
        }
    });
}

/// Calls `visit` with every field at any depth (objects' fields, arrays' items) and its JSON
/// pointer under `base` (`/fields/items/items/fields/product_id`).
fn walk_fields(fields: &IndexMap<FieldName, FieldDef>, base: &str, visit: &mut dyn FnMut(&FieldDef, &str)) {
    fn field(f: &FieldDef, pointer: String, visit: &mut dyn FnMut(&FieldDef, &str)) {
        visit(f, &pointer);
        if let Some(fields) = &f.fields {
            walk_fields(fields, &format!("{pointer}/fields"), visit);
        }
        if let Some(items) = &f.items {
            field(items, format!("{pointer}/items"), visit);
        }
    }
    for (name, f) in fields {
        field(f, format!("{base}/{}", esc(name.as_str())), visit);
    }
}

/// `items[].product_id` (the ontology's field paths) → `/fields/items/items/fields/product_id`.
pub(crate) fn field_pointer(path: &str) -> String {
    let mut out = String::new();
    for segment in path.split('.') {
        let name = segment.trim_end_matches("[]");
        out.push_str("/fields/");
        out.push_str(&esc(name));
        for _ in 0..(segment.len() - name.len()) / 2 {
            out.push_str("/items");
        }
    }
    out
}

/// The type named in an error's text: ``type `order`, …`` or `type order: …`.
fn named_type(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("type ")?;
    let rest = rest.strip_prefix('`').unwrap_or(rest);
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}
