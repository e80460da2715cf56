//! Loading a package folder, every file on its own: `tenant.yaml`, `types/*.yaml`,
//! `data/*.yaml` are read and parsed (raw, to locate problems, and typed), a file that does not
//! parse hiding nothing in the others; a type's workflow is parsed again for the paths of its
//! errors, and a type declared twice counts once.

use super::*;

/// A file as read: its raw YAML (as JSON, for locating problems) and its typed form.
pub(super) struct Parsed<T> {
    pub(super) rel: String,
    pub(super) raw: Option<Value>,
    pub(super) typed: Option<T>,
}

/// A type file.
pub(super) struct TypeFile {
    pub(super) parsed: Parsed<EntityTypeDef>,
    /// The type's name: from the typed definition, else from the raw `name:`, else the file's
    /// stem (so references to a type whose file has an error are not reported as well).
    pub(super) name: Option<String>,
    /// The workflow, parsed (the implicit one when the type declares none); `None` when it
    /// does not parse.
    pub(super) workflow: Option<WorkflowDef>,
    /// Whether the type declares a `workflow:`.
    pub(super) explicit_workflow: bool,
    /// False for the second and later files declaring the same name.
    pub(super) primary: bool,
}

impl TypeFile {
    pub(super) fn def(&self) -> Option<&EntityTypeDef> {
        self.parsed.typed.as_ref()
    }
}

/// The whole package as read.
pub(super) struct Loaded {
    pub(super) tenant: Parsed<TenantFile>,
    pub(super) types: Vec<TypeFile>,
    pub(super) data: Vec<Parsed<Vec<SampleRow>>>,
    /// Every type name declared by some file (including files with errors).
    pub(super) names: HashSet<String>,
    /// The primary file of each type name, by name.
    pub(super) by_name: HashMap<String, usize>,
    /// The named rules of `tenant.yaml` (`rules:`), as written.
    pub(super) rules: IndexMap<String, Value>,
    /// The same, expanded, for reading the `var`s of rules that use them.
    pub(super) named: NamedRules,
}

impl Loaded {
    pub(super) fn new(tenant: Parsed<TenantFile>, types: Vec<TypeFile>, data: Vec<Parsed<Vec<SampleRow>>>) -> Loaded {
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

    pub(super) fn primary_types(&self) -> impl Iterator<Item = &TypeFile> {
        self.types.iter().filter(|t| t.primary)
    }

    pub(super) fn type_named(&self, name: &str) -> Option<&TypeFile> {
        self.by_name.get(name).map(|&i| &self.types[i])
    }

    /// The definition of the type named `name`, if its file parsed.
    pub(super) fn def(&self, name: &str) -> Option<&EntityTypeDef> {
        self.type_named(name).and_then(TypeFile::def)
    }

    /// The file of the type named `name` (`types/<name>.yaml` when there is none).
    pub(super) fn file_of(&self, name: &str) -> String {
        self.type_named(name).map_or_else(|| format!("types/{name}.yaml"), |t| t.parsed.rel.clone())
    }

    /// The roles `tenant.yaml` declares; `None` when it did not parse (role checks are skipped).
    pub(super) fn roles(&self) -> Option<HashSet<&str>> {
        self.tenant.typed.as_ref().map(|t| t.roles.keys().map(String::as_str).collect())
    }
}

impl Validation {
    /// Reads and parses one file: syntax and duplicate keys first, then the typed model.
    pub(super) fn parse<T: DeserializeOwned>(&mut self, dir: &Path, path: &Path) -> Parsed<T> {
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

    pub(super) fn yaml_files(&mut self, dir: &Path, sub: &str) -> Vec<PathBuf> {
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

    pub(super) fn load_tenant(&mut self, dir: &Path) -> Parsed<TenantFile> {
        self.parse(dir, &dir.join("tenant.yaml"))
    }

    pub(super) fn load_types(&mut self, dir: &Path) -> Vec<TypeFile> {
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

    pub(super) fn load_data(&mut self, dir: &Path) -> Vec<Parsed<Vec<SampleRow>>> {
        if !dir.join("data").is_dir() {
            return Vec::new();
        }
        self.yaml_files(dir, "data").into_iter().map(|path| self.parse(dir, &path)).collect()
    }
}
