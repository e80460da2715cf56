//! Static analysis of a package folder: `switchyard tenant validate DIR`.
//!
//! [`validate_dir`] reads every file on its own (a file that does not parse hides nothing in
//! the others), runs the compilers of the `ontology` and `engine` crates over what parsed, and
//! adds the checks that need the whole package: names referenced across files (types, states,
//! roles, transitions, fields), the states a workflow can reach, the `var` paths of every
//! JSON-Logic rule, the variables templates read, the names scripts pass as literals, who can
//! fire each transition, and the webhooks. Every problem names its file (relative to the package folder), a JSON
//! pointer into that file and a message; see [`Problem`] for the format and
//! `docs/tenant-package.md` ("Validation") for the list of checks and their messages.

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
/// about the package folder itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
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
    v.check_types(&package);
    let compiled = v.compile(&package, limits);
    let scripts = ScriptEngine::new(limits);
    for ty in package.primary_types() {
        v.check_workflow(&package, ty);
        v.check_terminal_states(ty);
        v.check_firing_roles(&package, ty);
        v.check_scripts(&package, ty, &scripts);
    }
    v.check_webhooks(&package);
    v.check_data(&package, compiled.as_ref());
    v.finish()
}

// ---------------------------------------------------------------------------------------------
// Loading: every file on its own.

/// A file as read: its raw YAML (as JSON, for locating problems) and its typed form.
struct Parsed<T> {
    rel: String,
    raw: Option<Value>,
    typed: Option<T>,
}

/// A type file.
struct TypeFile {
    parsed: Parsed<EntityTypeDef>,
    /// The type's name: from the typed definition, else from the raw `name:`, else the file's
    /// stem (so references to a type whose file has an error are not reported as well).
    name: Option<String>,
    /// The workflow, parsed (the implicit one when the type declares none); `None` when it
    /// does not parse.
    workflow: Option<WorkflowDef>,
    /// Whether the type declares a `workflow:`.
    explicit_workflow: bool,
    /// False for the second and later files declaring the same name.
    primary: bool,
}

impl TypeFile {
    fn def(&self) -> Option<&EntityTypeDef> {
        self.parsed.typed.as_ref()
    }
}

/// The whole package as read.
struct Loaded {
    tenant: Parsed<TenantFile>,
    types: Vec<TypeFile>,
    data: Vec<Parsed<Vec<SampleRow>>>,
    /// Every type name declared by some file (including files with errors).
    names: HashSet<String>,
    /// The primary file of each type name, by name.
    by_name: HashMap<String, usize>,
    /// The named rules of `tenant.yaml` (`rules:`), as written.
    rules: IndexMap<String, Value>,
    /// The same, expanded, for reading the `var`s of rules that use them.
    named: NamedRules,
}

impl Loaded {
    fn new(tenant: Parsed<TenantFile>, types: Vec<TypeFile>, data: Vec<Parsed<Vec<SampleRow>>>) -> Loaded {
        let names = types.iter().filter_map(|t| t.name.clone()).collect();
        let by_name = types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.primary)
            .filter_map(|(i, t)| t.name.clone().map(|n| (n, i)))
            .collect();
        let rules: IndexMap<String, Value> = tenant
            .raw
            .as_ref()
            .and_then(|t| t.get("rules"))
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let named = NamedRules::compile(&rules, &mut Vec::new());
        Loaded { tenant, types, data, names, by_name, rules, named }
    }

    fn primary_types(&self) -> impl Iterator<Item = &TypeFile> {
        self.types.iter().filter(|t| t.primary)
    }

    fn type_named(&self, name: &str) -> Option<&TypeFile> {
        self.by_name.get(name).map(|&i| &self.types[i])
    }

    /// The definition of the type named `name`, if its file parsed.
    fn def(&self, name: &str) -> Option<&EntityTypeDef> {
        self.type_named(name).and_then(TypeFile::def)
    }

    /// The file of the type named `name` (`types/<name>.yaml` when there is none).
    fn file_of(&self, name: &str) -> String {
        self.type_named(name).map_or_else(|| format!("types/{name}.yaml"), |t| t.parsed.rel.clone())
    }

    /// The roles `tenant.yaml` declares; `None` when it did not parse (role checks are skipped).
    fn roles(&self) -> Option<HashSet<&str>> {
        self.tenant.typed.as_ref().map(|t| t.roles.keys().map(String::as_str).collect())
    }
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
        self.problems.push(Problem { severity, file: file.to_string(), path: path.to_string(), message });
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
                    f if f.starts_with("data") => 3,
                    _ => 4,
                };
                let position = raw.get(&p.file).map(|v| document_position(v, &p.path)).unwrap_or_default();
                ((rank, p.file.clone(), position), p)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<Problem> = Vec::with_capacity(keyed.len());
        for (_, p) in keyed {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Report { problems: out }
    }

    /// Reads and parses one file: syntax and duplicate keys first, then the typed model.
    fn parse<T: DeserializeOwned>(&mut self, dir: &Path, path: &Path) -> Parsed<T> {
        let rel = relative(dir, path);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.error(&rel, "", "missing: every package has this file");
                return Parsed { rel, raw: None, typed: None };
            }
            Err(e) => {
                self.error(&rel, "", format!("cannot read the file: {e}"));
                return Parsed { rel, raw: None, typed: None };
            }
        };
        let raw = match parse_raw(&text) {
            Ok(raw) => raw,
            Err((pointer, message)) => {
                self.error(&rel, &pointer, message);
                return Parsed { rel, raw: None, typed: None };
            }
        };
        self.raw.insert(rel.clone(), raw.clone());
        let typed = match parse_typed::<T>(&text) {
            Ok(t) => Some(t),
            Err((pointer, message)) => {
                self.error(&rel, &pointer, message);
                None
            }
        };
        Parsed { rel, raw: Some(raw), typed }
    }

    fn yaml_files(&mut self, dir: &Path, sub: &str) -> Vec<PathBuf> {
        let folder = dir.join(sub);
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.error(sub, "", "missing: every package has this folder");
                return Vec::new();
            }
            Err(e) => {
                self.error(sub, "", format!("cannot read the folder: {e}"));
                return Vec::new();
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        files
    }

    fn load_tenant(&mut self, dir: &Path) -> Parsed<TenantFile> {
        self.parse(dir, &dir.join("tenant.yaml"))
    }

    fn load_types(&mut self, dir: &Path) -> Vec<TypeFile> {
        let mut types = Vec::new();
        for path in self.yaml_files(dir, "types") {
            let parsed = self.parse::<EntityTypeDef>(dir, &path);
            let Some(raw) = &parsed.raw else {
                // Unreadable: assume the type is named after its file, so references to it are
                // not reported as well.
                let name = path.file_stem().and_then(|s| s.to_str()).map(str::to_string);
                types.push(TypeFile { parsed, name, workflow: None, explicit_workflow: false, primary: true });
                continue;
            };
            let name = match &parsed.typed {
                Some(def) => Some(def.name.to_string()),
                None => raw.get("name").and_then(Value::as_str).map(str::to_string),
            };
            let explicit_workflow = raw.get("workflow").is_some_and(|w| !w.is_null());
            // The workflow is raw in the type's model: parse it from the text again, to have
            // the path and line of its errors.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let workflow = match parse_typed::<WorkflowOf>(&text) {
                Ok(w) => Some(w.workflow.unwrap_or_else(WorkflowDef::implicit)),
                Err((pointer, message)) => {
                    self.error(&parsed.rel, &pointer, message);
                    None
                }
            };
            if let (Some(def), Some(stem)) = (&parsed.typed, path.file_stem().and_then(|s| s.to_str())) {
                if def.name.as_str() != stem {
                    let message = format!("type `{0}` must be in a file named {0}.yaml", def.name);
                    self.error(&parsed.rel, "/name", message);
                }
            }
            types.push(TypeFile { parsed, name, workflow, explicit_workflow, primary: true });
        }

        // The same name in two files: the file named after the type is the one that counts.
        let mut first: HashMap<String, usize> = HashMap::new();
        for i in 0..types.len() {
            let Some(name) = types[i].name.clone() else { continue };
            let named_after =
                types[i].parsed.rel.rsplit('/').next().and_then(|f| f.split('.').next()) == Some(name.as_str());
            match first.get(&name).copied() {
                None => {
                    first.insert(name, i);
                }
                Some(j) => {
                    let j_named_after =
                        types[j].parsed.rel.rsplit('/').next().and_then(|f| f.split('.').next()) == Some(name.as_str());
                    let (keep, drop) = if named_after && !j_named_after { (i, j) } else { (j, i) };
                    types[drop].primary = false;
                    first.insert(name.clone(), keep);
                    let message = format!("type `{name}` is already declared in {}", types[keep].parsed.rel);
                    let rel = types[drop].parsed.rel.clone();
                    self.error(&rel, "/name", message);
                }
            }
        }
        types
    }

    fn load_data(&mut self, dir: &Path) -> Vec<Parsed<Vec<SampleRow>>> {
        if !dir.join("data").is_dir() {
            return Vec::new();
        }
        self.yaml_files(dir, "data").into_iter().map(|path| self.parse(dir, &path)).collect()
    }

    // -----------------------------------------------------------------------------------------
    // tenant.yaml

    fn check_tenant(&mut self, package: &Loaded) {
        let Some(tenant) = &package.tenant.typed else { return };
        let file = package.tenant.rel.clone();
        if !valid_slug(&tenant.slug) {
            self.error(
                &file,
                "/slug",
                format!(
                    "`{}` is not a slug: 2 to 63 lowercase letters and digits, starting with a letter, in words \
                     joined by single hyphens",
                    tenant.slug
                ),
            );
        }
        let roles: HashSet<&str> = tenant.roles.keys().map(String::as_str).collect();
        for (i, user) in tenant.users.iter().enumerate() {
            for (j, role) in user.roles.iter().enumerate() {
                if !roles.contains(role.as_str()) {
                    self.error(&file, &format!("/users/{i}/roles/{j}"), format!("unknown role `{role}`"));
                }
            }
        }
        // Emails are unique per tenant, ignoring case (as the `users` table has them).
        let mut emails: HashMap<String, usize> = HashMap::new();
        for (i, user) in tenant.users.iter().enumerate() {
            match emails.get(&user.email.to_lowercase()) {
                Some(first) => self.error(
                    &file,
                    &format!("/users/{i}/email"),
                    format!("email `{}` is already used by /users/{first}", user.email),
                ),
                None => {
                    emails.insert(user.email.to_lowercase(), i);
                }
            }
        }
        for name in tenant.terminology.keys() {
            if !package.names.contains(name) {
                self.error(&file, &format!("/terminology/{}", esc(name)), format!("unknown type `{name}`"));
            }
        }
        // Roles without permissions may do everything: fine for a package that declares none,
        // an oversight when others do.
        if tenant.roles.values().any(|r| r.permissions.is_some()) {
            for role in tenant.roles.iter().filter(|(_, d)| d.permissions.is_none()).map(|(r, _)| r) {
                self.push(
                    Severity::Warning,
                    &file,
                    &format!("/roles/{}", esc(role)),
                    format!("role `{role}` declares no permissions while other roles do: it may do everything to every type"),
                );
            }
        }
        for (role, def) in &tenant.roles {
            for name in def.permissions.iter().flat_map(|p| p.keys()) {
                if name != "*" && !package.names.contains(name) {
                    let path = format!("/roles/{}/permissions/{}", esc(role), esc(name));
                    self.error(&file, &path, format!("unknown type `{name}`"));
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // types/*.yaml: what the ontology cannot say for a single type.

    fn check_types(&mut self, package: &Loaded) {
        for ty in package.primary_types() {
            let Some(def) = ty.def() else { continue };
            let file = ty.parsed.rel.clone();
            let mut refs = Vec::new();
            references(&def.fields, "/fields", &mut refs);
            for (pointer, to) in refs {
                if !package.names.contains(to.as_str()) {
                    self.error(&file, &format!("{pointer}/to"), format!("unknown type `{to}`"));
                }
            }
            // Parsed here rather than left to the ontology, which stops at a type's first
            // problem: a field error must not hide a broken template.
            let templates = [
                ("/title", "title", def.title.as_deref()),
                ("/number/template", "number.template", def.number.as_ref().map(|n| n.template.as_str())),
            ];
            for (pointer, name, source) in templates {
                match source.map(|s| Template::parse(name, s)) {
                    Some(Err(e)) => self.error(&file, pointer, format!("template does not parse: {e}")),
                    Some(Ok(template)) => {
                        let number = name != "title";
                        for var in template.variables() {
                            if let Err(message) = template_var(def, &var, number) {
                                self.error(&file, pointer, format!("template reads `{var}`: {message}"));
                            }
                        }
                    }
                    None => {}
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The compilers of the ontology and the engine.

    /// Compiles the types and workflows that parsed. A type that does not compile (or whose
    /// file does not parse) is replaced by a stub with no fields but its workflow, so the other
    /// types and every workflow are still compiled; the stubs' own consequences (unknown types,
    /// missing `where` fields) are checked here instead, and filtered out of the engine's errors.
    fn compile(&mut self, package: &Loaded, limits: &Limits) -> Option<Compiled> {
        let mut defs = Vec::new();
        let mut stubs: HashSet<String> = HashSet::new();
        for ty in package.primary_types() {
            match ty.def() {
                Some(def) => match CompiledType::compile(def.clone()) {
                    Ok(_) => defs.push(def.clone()),
                    Err(e) => {
                        for e in type_errors(def, e) {
                            self.ontology_error(package, e);
                        }
                        stubs.insert(def.name.to_string());
                        defs.push(stub(def.name.clone(), def.workflow.clone()));
                    }
                },
                None => {
                    if let Some(name) = ty.name.as_deref().and_then(|n| n.parse::<TypeName>().ok()) {
                        stubs.insert(name.to_string());
                        defs.push(stub(name, None));
                    }
                }
            }
        }
        // Types referenced but declared nowhere (already reported) become stubs too.
        let mut missing = Vec::new();
        for def in &defs {
            let mut refs = Vec::new();
            references(&def.fields, "", &mut refs);
            missing.extend(refs.into_iter().map(|(_, to)| to));
        }
        for to in missing {
            if !defs.iter().any(|d| d.name == to) {
                stubs.insert(to.to_string());
                defs.push(stub(to, None));
            }
        }

        let ontology = match ontology::compile_types(defs) {
            Ok(o) => o,
            Err(errors) => {
                for e in errors {
                    self.ontology_error(package, e);
                }
                return None;
            }
        };
        if let Err(errors) = CompiledTenant::compile_with(ontology.clone(), &package.rules, limits) {
            for e in errors {
                self.engine_error(package, e);
            }
        }
        Some(Compiled { ontology, stubs })
    }

    fn ontology_error(&mut self, package: &Loaded, e: OntologyError) {
        match e {
            OntologyError::InvalidField { type_name, path, message } => {
                // `number` is the ontology's path of a `number.field` that does not fit.
                let pointer = if path == "number" { "/number/field".to_string() } else { field_pointer(&path) };
                self.error(&package.file_of(&type_name), &pointer, message);
            }
            // Parsed (and reported) by `check_types`; references and duplicates likewise.
            OntologyError::Template { .. }
            | OntologyError::UnknownReference { .. }
            | OntologyError::DuplicateType { .. } => {}
            OntologyError::InvalidName { kind, value, reason } => {
                self.error("types", "", format!("invalid {kind} name {value:?}: {reason}"));
            }
            other => {
                let text = other.to_string();
                let file = named_type(&text).map(|t| package.file_of(t)).unwrap_or_else(|| "types".into());
                self.error(&file, "", text);
            }
        }
    }

    fn engine_error(&mut self, package: &Loaded, e: EngineError) {
        let tr = |t: &str| format!("/workflow/transitions/{}", esc(t));
        match e {
            // Parsed (and reported, with its path) when the file was read.
            EngineError::WorkflowSyntax { type_name, message } => {
                if package.type_named(&type_name).is_some_and(|t| t.workflow.is_some()) {
                    self.error(&package.file_of(&type_name), "/workflow", message);
                }
            }
            EngineError::InitialStates { type_name, count } => self.error(
                &package.file_of(&type_name),
                "/workflow/states",
                format!("the workflow has {count} initial states; it needs exactly one"),
            ),
            EngineError::UnknownState { type_name, transition, field, state } => {
                let index = package
                    .type_named(&type_name)
                    .and_then(|t| t.workflow.as_ref())
                    .and_then(|w| w.transitions.get(&transition))
                    .and_then(|t| t.from.iter().position(|s| *s == state));
                let pointer = match (field, index) {
                    ("from", Some(i)) => format!("{}/from/{i}", tr(&transition)),
                    (field, _) => format!("{}/{field}", tr(&transition)),
                };
                self.error(&package.file_of(&type_name), &pointer, format!("unknown state `{state}`"));
            }
            EngineError::NoRoles { type_name, transition } => self.error(
                &package.file_of(&type_name),
                &format!("{}/roles", tr(&transition)),
                "no role can fire this transition: its role list is empty",
            ),
            EngineError::NoFromStates { type_name, transition } => self.error(
                &package.file_of(&type_name),
                &format!("{}/from", tr(&transition)),
                "`from` is empty: the transition can never fire",
            ),
            EngineError::Guard { type_name, transition, index, message } => {
                self.error(&package.file_of(&type_name), &format!("{}/guards/{index}/rule", tr(&transition)), message)
            }
            EngineError::Script { type_name, transition, line, column, message } => {
                let at = match (line, column) {
                    (Some(l), Some(c)) => format!(" (script line {l}, column {c})"),
                    (Some(l), None) => format!(" (script line {l})"),
                    _ => String::new(),
                };
                self.error(
                    &package.file_of(&type_name),
                    &format!("{}/script", tr(&transition)),
                    format!("script does not compile: {message}{at}"),
                );
            }
            EngineError::InputSchema { type_name, transition, message } => self.error(
                &package.file_of(&type_name),
                &format!("{}/input", tr(&transition)),
                format!("invalid input schema: {message}"),
            ),
            EngineError::Load { type_name, transition, load, message } => {
                let base = format!("{}/load/{}", tr(&transition), esc(&load));
                // Checked by `check_workflow` (against every declared type, stubs included).
                if message.starts_with("unknown type") || message.starts_with("`where`: ") {
                    return;
                }
                // A load reading a later load (or itself): reported by the `var` checks.
                if message.contains(": reads `") {
                    return;
                }
                let (pointer, message) = if let Some(rest) = message.strip_prefix("id: ") {
                    (format!("{base}/id"), rest.to_string())
                } else if let Some((field, rest)) = message.strip_prefix("where.").and_then(|m| m.split_once(": ")) {
                    (format!("{base}/where/{}", esc(field)), rest.to_string())
                } else {
                    (base, message)
                };
                self.error(&package.file_of(&type_name), &pointer, message);
            }
            EngineError::Rule { rule, message } => {
                self.error(&package.tenant.rel, &format!("/rules/{}", esc(&rule)), message);
            }
            EngineError::FourEyes { type_name, transition, entry } => {
                let index = package
                    .type_named(&type_name)
                    .and_then(|t| t.workflow.as_ref())
                    .and_then(|w| w.transitions.get(&transition))
                    .and_then(|t| t.four_eyes.iter().position(|e| *e == entry));
                let pointer = match index {
                    Some(i) => format!("{}/four_eyes/{i}", tr(&transition)),
                    None => format!("{}/four_eyes", tr(&transition)),
                };
                let message = format!("`{entry}` is neither `creator` nor a transition of this workflow");
                self.error(&package.file_of(&type_name), &pointer, message);
            }
            EngineError::State { type_name, state, message } => {
                let base = format!("/workflow/states/{}", esc(&state));
                // Checked by `check_workflow`, which knows the fields of types that do not compile.
                if message.starts_with("editable: ") {
                    return;
                }
                let timer = message.strip_prefix("timer ").and_then(|m| m.split_once(": "));
                let (pointer, message) = match timer {
                    Some((i, rest)) if i.bytes().all(|b| b.is_ascii_digit()) => {
                        let key = if rest.starts_with("`after") {
                            "after"
                        } else if rest.starts_with("invalid input") {
                            "input"
                        } else {
                            "transition"
                        };
                        (format!("{base}/timers/{i}/{key}"), rest.to_string())
                    }
                    _ => (base, message),
                };
                self.error(&package.file_of(&type_name), &pointer, message);
            }
            other => {
                let text = other.to_string();
                let file = named_type(&text).map(|t| package.file_of(t)).unwrap_or_else(|| "types".into());
                self.error(&file, "/workflow", text);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Workflows.

    fn check_workflow(&mut self, package: &Loaded, ty: &TypeFile) {
        let (Some(def), Some(wf)) = (ty.def(), ty.workflow.as_ref()) else { return };
        let file = ty.parsed.rel.clone();
        let roles = package.roles();

        // Roles.
        for (name, t) in &wf.transitions {
            let Some(roles) = &roles else { break };
            let base = format!("/workflow/transitions/{}", esc(name));
            let mut any_known = false;
            for (i, role) in t.roles.iter().enumerate() {
                if roles.contains(role.as_str()) {
                    any_known = true;
                } else {
                    self.error(&file, &format!("{base}/roles/{i}"), format!("unknown role `{role}`"));
                }
            }
            if !t.roles.is_empty() && !any_known {
                let message = "no role can fire this transition: none of its roles is declared in tenant.yaml";
                self.error(&file, &format!("{base}/roles"), message);
            }
        }

        // States: editable fields (the engine's check is skipped: it cannot tell a type that
        // does not compile from one without the field) and roles. Timers are the engine's.
        for (state, s) in &wf.states {
            let base = format!("/workflow/states/{}", esc(state));
            if let Some(editable) = &s.editable {
                for (i, field) in editable.fields.iter().enumerate() {
                    if !def.fields.contains_key(field.as_str()) {
                        self.error(
                            &file,
                            &format!("{base}/editable/fields/{i}"),
                            format!("type `{}` has no field `{field}`", def.name),
                        );
                    }
                }
                if let Some(roles) = &roles {
                    for (i, role) in editable.roles.iter().enumerate() {
                        if !roles.contains(role.as_str()) {
                            self.error(&file, &format!("{base}/editable/roles/{i}"), format!("unknown role `{role}`"));
                        }
                    }
                }
            }
        }

        // Reachability and dead ends (warnings). The implicit workflow (and any workflow
        // without transitions) is a single resting state, not a dead end.
        let initials: Vec<&String> =
            wf.states.iter().filter(|(_, s)| s.kind == StateKind::Initial).map(|(n, _)| n).collect();
        if let ([initial], true) = (initials.as_slice(), ty.explicit_workflow && !wf.transitions.is_empty()) {
            let mut reached: HashSet<&str> = HashSet::from([initial.as_str()]);
            loop {
                let before = reached.len();
                for t in wf.transitions.values() {
                    if t.from.iter().any(|s| reached.contains(s.as_str())) {
                        reached.insert(t.to.as_str());
                    }
                }
                if reached.len() == before {
                    break;
                }
            }
            for (state, s) in &wf.states {
                let pointer = format!("/workflow/states/{}", esc(state));
                // Both are errors: an unreachable state or a dead end is a workflow bug (mark a
                // resting state `terminal`; remove a state nothing leads to).
                if !reached.contains(state.as_str()) {
                    self.error(
                        &file,
                        &pointer,
                        format!("state `{state}` cannot be reached from the initial state `{initial}`"),
                    );
                }
                let leaves = wf.transitions.values().any(|t| t.from.contains(state));
                if s.kind != StateKind::Terminal && !leaves {
                    self.error(&file, &pointer, format!("state `{state}` is not terminal but no transition leaves it"));
                }
            }
        }

        // Loads and rules.
        for (name, t) in &wf.transitions {
            let base = format!("/workflow/transitions/{}", esc(name));
            let env = Env { package, def, input: t.input.as_ref(), loads: &t.load };
            for (position, (load_name, load)) in t.load.iter().enumerate() {
                let lbase = format!("{base}/load/{}", esc(load_name));
                if !package.names.contains(&load.type_name) {
                    self.error(&file, &format!("{lbase}/type"), format!("unknown type `{}`", load.type_name));
                }
                if let Some(id) = &load.id {
                    self.check_rule(&file, &format!("{lbase}/id"), &env, Scope::Load(position), id);
                }
                for (key, rule) in load.r#where.iter().flatten() {
                    let pointer = format!("{lbase}/where/{}", esc(key));
                    if let Some(loaded) = package.def(&load.type_name) {
                        if key != "id" && key != "state" && !loaded.fields.contains_key(key.as_str()) {
                            self.error(&file, &pointer, format!("type `{}` has no field `{key}`", load.type_name));
                        }
                    }
                    self.check_rule(&file, &pointer, &env, Scope::Load(position), rule);
                }
            }
            for (i, guard) in t.guards.iter().enumerate() {
                self.check_rule(&file, &format!("{base}/guards/{i}/rule"), &env, Scope::Guard, &guard.rule);
            }
        }
    }

    /// A state marked `terminal` that a transition leaves: a workflow bug (the state is not
    /// terminal, or the transition is wrong).
    fn check_terminal_states(&mut self, ty: &TypeFile) {
        let Some(wf) = ty.workflow.as_ref() else { return };
        for (state, _) in wf.states.iter().filter(|(_, s)| s.kind == StateKind::Terminal) {
            let leaving: Vec<String> =
                wf.transitions.iter().filter(|(_, t)| t.from.contains(state)).map(|(n, _)| format!("`{n}`")).collect();
            if !leaving.is_empty() {
                let message = format!("state `{state}` is terminal but transitions leave it: {}", leaving.join(", "));
                self.error(&ty.parsed.rel, &format!("/workflow/states/{}", esc(state)), message);
            }
        }
    }

    /// A transition whose roles all lack `view` of the type (or are undeclared): no user
    /// holding one of them can fire it (firing needs one of the roles and `view`). Transitions
    /// none of whose roles is declared are reported by `check_workflow`.
    fn check_firing_roles(&mut self, package: &Loaded, ty: &TypeFile) {
        let (Some(tenant), Some(wf), Some(name)) = (&package.tenant.typed, &ty.workflow, &ty.name) else { return };
        let permissions =
            Permissions::new(tenant.roles.iter().map(|(role, def)| (role.as_str(), def.permissions.as_ref())));
        for (transition, t) in &wf.transitions {
            if !t.roles.iter().any(|r| tenant.roles.contains_key(r)) {
                continue;
            }
            let mut reasons = Vec::new();
            for role in &t.roles {
                if !tenant.roles.contains_key(role) {
                    reasons.push(format!("`{role}` is not declared in tenant.yaml"));
                } else if permissions.allows(std::slice::from_ref(role), false, name, Action::View) {
                    break;
                } else {
                    reasons.push(format!("`{role}` may not view `{name}`"));
                }
            }
            if reasons.len() == t.roles.len() {
                let pointer = format!("/workflow/transitions/{}/roles", esc(transition));
                let message = format!("no role can fire this transition: {}", reasons.join(", "));
                self.error(&ty.parsed.rel, &pointer, message);
            }
        }
    }

    /// The string literals scripts pass to `create` (a type) and `transition` (a transition
    /// of the row's type, when the row is `entity` or a load, else of some type), and the
    /// events they `emit` (for `check_webhooks`). Scripts that do not compile are the engine's.
    fn check_scripts(&mut self, package: &Loaded, ty: &TypeFile, scripts: &ScriptEngine) {
        let Some(wf) = ty.workflow.as_ref() else {
            self.emitted_unknown = true;
            return;
        };
        for (name, t) in &wf.transitions {
            self.emitted.extend(t.events.iter().cloned());
            let Some(source) = &t.script else { continue };
            let loads: Vec<&str> = t.load.keys().map(String::as_str).collect();
            let Ok(script) = scripts.compile(source, &loads) else {
                self.emitted_unknown = true;
                continue;
            };
            let pointer = format!("/workflow/transitions/{}/script", esc(name));
            for call in script.effect_calls() {
                let at = match (call.line, call.column) {
                    (Some(l), Some(c)) => format!(" (script line {l}, column {c})"),
                    (Some(l), None) => format!(" (script line {l})"),
                    _ => String::new(),
                };
                match (call.function.as_str(), call.args.as_slice()) {
                    ("emit", [CallArg::Str(event), ..]) => {
                        self.emitted.insert(event.clone());
                    }
                    ("emit", _) => self.emitted_unknown = true,
                    ("create", [CallArg::Str(type_name), ..]) if !package.names.contains(type_name) => {
                        let message = format!("create(\"{type_name}\", …): unknown type `{type_name}`{at}");
                        self.error(&ty.parsed.rel, &pointer, message);
                    }
                    ("transition", [row, CallArg::Str(transition), ..]) => {
                        if let Err(message) = script_transition(package, ty, t, row, transition) {
                            self.error(
                                &ty.parsed.rel,
                                &pointer,
                                format!("transition(…, \"{transition}\"): {message}{at}"),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// `webhooks:` of `tenant.yaml`: unique names, http(s) URLs, event patterns as the API
    /// accepts them, and (a warning) patterns no event of the package matches.
    fn check_webhooks(&mut self, package: &Loaded) {
        let Some(tenant) = &package.tenant.typed else { return };
        let file = package.tenant.rel.clone();
        // Every type's entities are created, edited and deleted; transitions and scripts add theirs.
        let mut emitted = self.emitted.clone();
        for name in &package.names {
            for what in ["created", "updated", "deleted"] {
                emitted.insert(format!("{name}.{what}"));
            }
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, hook) in tenant.webhooks.iter().enumerate() {
            let base = format!("/webhooks/{i}");
            if let Some(first) = names.get(hook.name.as_str()) {
                let message = format!("webhook name `{}` is already used by /webhooks/{first}", hook.name);
                self.error(&file, &format!("{base}/name"), message);
            } else {
                names.insert(&hook.name, i);
            }
            if let Err(message) = webhook_url(&hook.url) {
                self.error(&file, &format!("{base}/url"), format!("`{}`: {message}", hook.url));
            }
            if let Some(message) = webhook_secret_env_problem(&tenant.slug, &hook.secret_env) {
                self.error(&file, &format!("{base}/secret_env"), message);
            }
            if hook.events.is_empty() {
                self.error(&file, &format!("{base}/events"), "at least one event name or pattern is required");
            }
            for (j, pattern) in hook.events.iter().enumerate() {
                let pointer = format!("{base}/events/{j}");
                match event_pattern(pattern) {
                    None => self.error(&file, &pointer, format!("`{pattern}` is not an event name, `prefix.*` or `*`")),
                    Some(matches) if !self.emitted_unknown && !emitted.iter().any(|e| matches(e)) => self.push(
                        Severity::Warning,
                        &file,
                        &pointer,
                        format!(
                            "no event of the package matches `{pattern}` (events are `<type>.created`, `.updated`, \
                             `.deleted`, the transitions' `events` and the scripts' `emit`s)"
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    /// Checks every `var` path of a rule against what the context holds.
    /// Named rules are expanded first (a rule that does not expand is the engine's error), so
    /// their `var`s are read where they are used, inside iterations included.
    fn check_rule(&mut self, file: &str, pointer: &str, env: &Env<'_>, scope: Scope, rule: &Value) {
        let direct = engine::logic::vars(rule);
        let expanded = env.package.named.expand(rule).map(|r| engine::logic::vars(&r)).unwrap_or_default();
        let mut used = Vec::new();
        named_rules(rule, &mut used);
        let through = match used.as_slice() {
            [] => String::new(),
            [one] => format!(" (read by rule `{one}`)"),
            many => format!(
                " (read by one of the rules {})",
                many.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
            ),
        };
        let mut all = direct.clone();
        all.extend(expanded.into_iter().filter(|v| !direct.contains(v)));
        for var in all {
            if let Err(message) = env.check_var(&var, scope) {
                let suffix = if direct.contains(&var) { "" } else { through.as_str() };
                self.error(file, pointer, format!("`{var}`: {message}{suffix}"));
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // data/*.yaml

    fn check_data(&mut self, package: &Loaded, compiled: Option<&Compiled>) {
        let mut keys: HashMap<&str, String> = HashMap::new();
        for file in &package.data {
            for (i, row) in file.typed.iter().flatten().enumerate() {
                if let Some(key) = &row.key {
                    let here = format!("{}#{i}", file.rel);
                    if let Some(first) = keys.get(key.as_str()) {
                        let message = format!("sample key `{key}` is already used by {first}");
                        self.error(&file.rel, &format!("/{i}/key"), message);
                    } else {
                        keys.insert(key, here);
                    }
                }
            }
        }
        for file in &package.data {
            for (i, row) in file.typed.iter().flatten().enumerate() {
                let Some(ty) = package.type_named(&row.type_name) else {
                    self.error(&file.rel, &format!("/{i}/type"), format!("unknown type `{}`", row.type_name));
                    continue;
                };
                if let (Some(state), Some(wf)) = (&row.state, &ty.workflow) {
                    if !wf.states.contains_key(state) {
                        let message = format!("unknown state `{state}` of type `{}`", row.type_name);
                        self.error(&file.rel, &format!("/{i}/state"), message);
                    }
                }
                let mut unknown = Vec::new();
                sample_keys(&row.data, &format!("/{i}/data"), &keys, &mut unknown);
                for (pointer, key) in unknown {
                    self.error(&file.rel, &pointer, format!("unknown sample key `@{key}`"));
                }
                let Some(compiled) =
                    compiled.filter(|c| !c.stubs.contains(&row.type_name)).and_then(|c| c.ontology.get(&row.type_name))
                else {
                    continue;
                };
                let mut data = with_placeholder_ids(&row.data);
                compiled.apply_defaults(&mut data);
                if let Err(errors) = compiled.validate(&data) {
                    for e in errors {
                        self.error(&file.rel, &format!("/{i}/data{}", e.path), e.message);
                    }
                }
            }
        }
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
/// hyphens, starting with a letter, 2 to 63 characters (`chemichemi`, `change-control`).
pub fn valid_slug(slug: &str) -> bool {
    (2..=63).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && slug
            .split('-')
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
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
    EntityTypeDef { name, label: None, description: None, title: None, number: None, fields: IndexMap::new(), workflow }
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
    fn field(f: &FieldDef, pointer: String, out: &mut Vec<(String, TypeName)>) {
        if let Some(to) = &f.to {
            out.push((pointer.clone(), to.clone()));
        }
        if let Some(fields) = &f.fields {
            references(fields, &format!("{pointer}/fields"), out);
        }
        if let Some(items) = &f.items {
            field(items, format!("{pointer}/items"), out);
        }
    }
    for (name, f) in fields {
        field(f, format!("{base}/{}", esc(name.as_str())), out);
    }
}

/// `items[].product_id` (the ontology's field paths) → `/fields/items/items/fields/product_id`.
fn field_pointer(path: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// JSON-Logic `var` paths.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// A guard: entity, input, actor, now and the loads.
    Guard,
    /// A load's `id` or `where` (the load at this position of the transition's `load`):
    /// entity, input, actor, now and the loads declared before it.
    Load(usize),
}

/// What a transition's rules see.
struct Env<'a> {
    package: &'a Loaded,
    def: &'a EntityTypeDef,
    input: Option<&'a Value>,
    loads: &'a IndexMap<String, LoadDef>,
}

/// Fields every entity has besides its data fields (scalars).
const META: &[&str] = ontology::RESERVED_FIELDS;

/// The actor's keys.
const ACTOR: &[&str] = &["id", "email", "roles", "system"];

fn is_index(segment: &str) -> bool {
    segment == "*" || (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()))
}

/// `items.*.quantity` → `items[].quantity`.
fn field_path(segments: &[&str]) -> String {
    let mut out = String::new();
    for s in segments {
        if is_index(s) {
            out.push_str("[]");
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        }
    }
    out
}

impl Env<'_> {
    fn check_var(&self, var: &str, scope: Scope) -> Result<(), String> {
        let segments: Vec<&str> = var.split('.').collect();
        let (root, rest) = (segments[0], &segments[1..]);
        match root {
            "entity" => entity_path(self.def, rest),
            "input" => match (self.input, rest.is_empty()) {
                (_, true) => Ok(()),
                (None, false) => Err("the transition has no input schema".into()),
                (Some(schema), false) => match schema_path(schema, rest) {
                    Ok(()) => Ok(()),
                    Err(k) => Err(format!("the input schema has no property `{}`", rest[..=k].join("."))),
                },
            },
            "actor" => match rest {
                [] => Ok(()),
                [key] if ACTOR.contains(key) => Ok(()),
                ["roles", index] if is_index(index) => Ok(()),
                _ => Err("the actor has only id, email, roles and system".into()),
            },
            "now" if rest.is_empty() => Ok(()),
            "now" => Err("`now` is a timestamp (a string)".into()),
            load if self.sees_load(load, scope) => {
                let Some(def) = self.loads.get(load) else { return Ok(()) };
                let Some(loaded) = self.package.def(&def.type_name) else { return Ok(()) };
                if def.r#where.is_none() || rest.is_empty() {
                    return entity_path(loaded, rest);
                }
                match rest.split_first() {
                    Some((index, rest)) if is_index(index) => entity_path(loaded, rest),
                    _ => Err(format!(
                        "load `{load}` is a list (`where`): read an element (`{load}.0.…`) or iterate over it"
                    )),
                }
            }
            _ => Err(match scope {
                Scope::Guard => {
                    let mut names = vec!["entity", "input", "actor", "now"];
                    names.extend(self.loads.keys().map(String::as_str));
                    format!("unknown variable `{root}`; a guard sees {}", names.join(", "))
                }
                Scope::Load(position) => match self.loads.get_index_of(root) {
                    Some(i) if i == position => format!("a load cannot read itself (`{root}`)"),
                    Some(_) => format!(
                        "load `{root}` is declared after this one; a load reads only the loads declared before it"
                    ),
                    None => {
                        let mut names = vec!["entity", "input", "actor", "now"];
                        names.extend(self.loads.keys().take(position).map(String::as_str));
                        format!("unknown variable `{root}`; a load expression sees {}", names.join(", "))
                    }
                },
            }),
        }
    }

    /// Whether a rule in `scope` sees the load named `load`: a guard sees every load, a load's
    /// rules only the loads declared before it.
    fn sees_load(&self, load: &str, scope: Scope) -> bool {
        match (self.loads.get_index_of(load), scope) {
            (Some(_), Scope::Guard) => true,
            (Some(i), Scope::Load(position)) => i < position,
            (None, _) => false,
        }
    }
}

/// Checks a path (after `entity.` or `<load>.`) against a type's fields and the entity's
/// meta fields. Array elements are reached by index (`items.0.quantity`) or, as
/// [`engine::logic::vars`] reports element variables, by `*`.
fn entity_path(def: &EntityTypeDef, segments: &[&str]) -> Result<(), String> {
    let missing = |k: usize| format!("type `{}` has no field `{}`", def.name, field_path(&segments[..=k]));
    let Some((first, rest)) = segments.split_first() else { return Ok(()) };
    if META.contains(first) {
        return if rest.is_empty() { Ok(()) } else { Err(missing(1)) };
    }
    let mut field = def.fields.get(*first).ok_or_else(|| missing(0))?;
    for (k, segment) in rest.iter().enumerate() {
        let next = match field.kind {
            FieldKind::Array if is_index(segment) => field.items.as_deref(),
            FieldKind::Object => field.fields.as_ref().and_then(|f| f.get(*segment)),
            _ => None,
        };
        field = next.ok_or_else(|| missing(k + 1))?;
    }
    Ok(())
}

/// Checks a path (after `input.`) against a JSON Schema's `properties` (and `items` for an
/// index). A part of the schema that does not list its properties (or allows others through
/// `additionalProperties`/`patternProperties`, or combines schemas) is not checked further.
/// `Err(k)`: the `k`-th segment is not there.
fn schema_path(schema: &Value, segments: &[&str]) -> Result<(), usize> {
    let mut current = schema;
    for (k, segment) in segments.iter().enumerate() {
        let Some(obj) = current.as_object() else { return Ok(()) };
        let open = ["allOf", "anyOf", "oneOf", "$ref", "$dynamicRef", "if", "patternProperties"]
            .iter()
            .any(|key| obj.contains_key(*key))
            || obj.get("additionalProperties").is_some_and(|a| a.is_object() || a == &Value::Bool(true));
        if open {
            return Ok(());
        }
        if let Some(next) = obj.get("properties").and_then(Value::as_object).and_then(|p| p.get(*segment)) {
            current = next;
            continue;
        }
        if is_index(segment) {
            if let Some(items) = obj.get("items") {
                current = items;
                continue;
            }
        }
        if obj.contains_key("properties") || obj.contains_key("items") {
            return Err(k);
        }
        return Ok(());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sample data.

/// Every `"@key"` string under `value` whose key no row declares.
fn sample_keys(value: &Value, pointer: &str, keys: &HashMap<&str, String>, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => {
            if let Some(key) = s.strip_prefix('@').filter(|k| !k.is_empty()) {
                if !keys.contains_key(key) {
                    out.push((pointer.to_string(), key.to_string()));
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                sample_keys(v, &format!("{pointer}/{i}"), keys, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                sample_keys(v, &format!("{pointer}/{}", esc(k)), keys, out);
            }
        }
        _ => {}
    }
}

/// The data with each `"@key"` replaced by a uuid, as `apply` does with the real ids.
fn with_placeholder_ids(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > 1 && s.starts_with('@') => {
            Value::String(uuid::Uuid::new_v5(&uuid::Uuid::nil(), s.as_bytes()).to_string())
        }
        Value::Array(items) => Value::Array(items.iter().map(with_placeholder_ids).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), with_placeholder_ids(v))).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// YAML: raw parsing with duplicate keys refused, typed parsing with paths, pointers.

/// The file as JSON. Refuses YAML syntax errors and duplicate keys (which the typed parse
/// would silently resolve to the last one). `Err((pointer, message))`.
fn parse_raw(text: &str) -> Result<Value, (String, String)> {
    let duplicate = RefCell::new(None);
    let seed = RawSeed { pointer: String::new(), duplicate: &duplicate };
    let result = seed.deserialize(serde_yaml_ng::Deserializer::from_str(text));
    result.map_err(|e| {
        let at = location(&e);
        match duplicate.into_inner() {
            Some((pointer, key)) => (pointer, format!("duplicate key `{key}`{at}")),
            None => (String::new(), format!("YAML syntax error: {}{at}", strip_location(&e.to_string()))),
        }
    })
}

fn location(e: &serde_yaml_ng::Error) -> String {
    e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column())).unwrap_or_default()
}

/// Parses into the typed model; `Err((pointer, message))` names where it went wrong.
fn parse_typed<T: DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let serde_path = e.path().to_string();
        let inner = e.into_inner();
        let mut message = strip_location(&inner.to_string());
        // serde_yaml_ng starts nested errors with its own path (`roles.clerk: unknown field`).
        if let Some((prefix, rest)) = message.split_once(": ") {
            if !prefix.contains(' ') && serde_path.starts_with(prefix) {
                message = rest.to_string();
            }
        }
        (json_pointer(&serde_path), format!("{message}{}", location(&inner)))
    })
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// serde_path_to_error's `items[0].product_id` → `/items/0/product_id`; `.` → ``. Stops at
/// a `?` (a key it could not read).
fn json_pointer(serde_path: &str) -> String {
    let mut out = String::new();
    if serde_path == "." {
        return out;
    }
    for part in serde_path.split('.') {
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            let (name, tail) = rest.split_at(open);
            if !name.is_empty() {
                out.push('/');
                out.push_str(&esc(name));
            }
            let close = tail.find(']').unwrap_or(tail.len());
            out.push('/');
            out.push_str(&tail[1..close]);
            rest = tail.get(close + 1..).unwrap_or("");
        }
        if rest == "?" {
            break;
        }
        if !rest.is_empty() {
            out.push('/');
            out.push_str(&esc(rest));
        }
    }
    out
}

/// Escapes one JSON pointer token (`~` → `~0`, `/` → `~1`).
fn esc(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

fn unesc(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Where a pointer lands in the document, as the index of each key or element on the way, so
/// problems sort in the order of the file (a pointer that leaves the document sorts after the
/// part that exists).
fn document_position(root: &Value, pointer: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut current = Some(root);
    for token in pointer.split('/').skip(1) {
        let token = unesc(token);
        let next = match current {
            Some(Value::Object(map)) => map.keys().position(|k| *k == token).map(|i| (i, map.get(&token))),
            Some(Value::Array(items)) => token.parse::<usize>().ok().map(|i| (i, items.get(i))),
            _ => None,
        };
        match next {
            Some((i, value)) => {
                out.push(i);
                current = value;
            }
            None => {
                out.push(usize::MAX);
                break;
            }
        }
    }
    out
}

fn relative(base: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Deserializes any YAML into JSON, refusing duplicate keys (recording where).
struct RawSeed<'a> {
    pointer: String,
    duplicate: &'a RefCell<Option<(String, String)>>,
}

impl RawSeed<'_> {
    fn child(&self, token: &str) -> Self {
        RawSeed { pointer: format!("{}/{}", self.pointer, esc(token)), duplicate: self.duplicate }
    }
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child(&out.len().to_string()))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) =
            map.next_key_seed(KeySeed { seen: &out, pointer: &self.pointer, duplicate: self.duplicate })?
        {
            let value = map.next_value_seed(self.child(&key))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key, as a string (YAML allows numbers and booleans as keys). A key the mapping
/// already has is refused here, while the key is read, so the error has the key's line.
struct KeySeed<'a> {
    seen: &'a Map<String, Value>,
    pointer: &'a str,
    duplicate: &'a RefCell<Option<(String, String)>>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl KeySeed<'_> {
    /// Refused inside the visitor, so the deserializer gives the error the key's position.
    fn accept<E: de::Error>(&self, key: String) -> Result<String, E> {
        if self.seen.contains_key(&key) {
            *self.duplicate.borrow_mut() = Some((self.pointer.to_string(), key.clone()));
            return Err(E::custom(format!("duplicate key `{key}`")));
        }
        Ok(key)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.accept(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        self.accept("null".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        assert_eq!(json_pointer("."), "");
        assert_eq!(json_pointer("fields.items.items[0].x"), "/fields/items/items/0/x");
        assert_eq!(json_pointer("fields.?"), "/fields");
        assert_eq!(field_pointer("items[].product_id"), "/fields/items/items/fields/product_id");
        assert_eq!(field_pointer("a.b"), "/fields/a/fields/b");
        assert_eq!(esc("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn document_order() {
        let doc = serde_json::json!({"b": {"x": 1, "y": [0, 1]}, "a": 2});
        assert_eq!(document_position(&doc, "/b/y/1"), vec![0, 1, 1]);
        assert_eq!(document_position(&doc, "/a"), vec![1]);
        assert_eq!(document_position(&doc, "/b/z"), vec![0, usize::MAX]);
    }

    #[test]
    fn duplicate_keys_are_found_with_their_place() {
        let (pointer, message) = parse_raw("a:\n  b: 1\n  c: 2\n  b: 3\n").expect_err("duplicate");
        assert_eq!(pointer, "/a");
        assert!(message.starts_with("duplicate key `b`"), "{message}");
    }
}
