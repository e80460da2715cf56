//! The tenant package as files: reading a folder into a [`Package`], and its canonical JSON form
//! (what is stored as an immutable config version, and hashed).
//!
//! Layout (see `docs/tenant-package.md`): `tenant.yaml`, `types/*.yaml` (one entity type per
//! file, its workflow inline), optional `decisions/*.yaml` (one decision table per file) and
//! optional `data/*.yaml` sample rows.

use std::path::{Path, PathBuf};

use engine::decision::DecisionDef;
use indexmap::IndexMap;
use ontology::def::EntityTypeDef;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::PackageError;

/// `tenant.yaml`: who the tenant is, its roles, its dev users and its named rules.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    pub slug: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub terminology: IndexMap<String, String>,
    /// The tenant's time zone (an IANA name, e.g. `Africa/Nairobi`; UTC when absent): the date
    /// functions of scripts and guards work in it ("the start of the month" is the tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub roles: IndexMap<String, RoleDef>,
    /// The attributes a user may carry (`customer_id: { type: reference, to: customer }`), read
    /// by rules as `actor.attributes.<name>`; set by `users:` and by admins over the API.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub user_attributes: IndexMap<String, UserAttributeDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<DevUser>,
    /// Named JSON-Logic rules, reusable as `{"rule": "name"}` in guards, load expressions and
    /// other rules (replaced when compiled).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub rules: IndexMap<String, Value>,
    /// Webhooks the package declares (replaced by name on each apply; webhooks created over the
    /// API are left alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookDef>,
}

/// A webhook of the package. Its signing secret is never in the package (which lives in git):
/// `secret_env` names the server's environment variable holding it, read when applying.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookDef {
    pub name: String,
    pub url: String,
    /// Event names or `prefix.*` patterns (`order.*`, `payment.reconciled`).
    pub events: Vec<String>,
    pub secret_env: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Type-level permissions: type name (or `*`) → `[view, create, edit, delete, export]`.
    /// Absent: the role may do everything to every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<engine::permissions::RolePermissions>,
    /// Rules at creation: type name → the fields the role may (`fields`) or may not (`except`)
    /// set when it creates one, and a condition (`rule`, `message`) the new entity must meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<engine::permissions::RoleCreateRules>,
}

/// A user created by `serve --demo` (never in production).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DevUser {
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub roles: Vec<String>,
    /// Values of the declared `user_attributes`; a string `"@key"` is the id of the sample row
    /// of that key (as in `data/*.yaml`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, Value>,
}

/// The kind of a user attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    String,
    Number,
    Boolean,
    /// The id of an entity of the type `to`.
    Reference,
    /// One of `values`.
    Enum,
    /// An array of strings.
    Array,
}

/// Most characters of a string attribute (and of each string of an array one).
pub const MAX_ATTRIBUTE_STRING: usize = 1000;
/// Most strings in an array attribute.
pub const MAX_ATTRIBUTE_ITEMS: usize = 100;
/// Most attributes a package declares.
pub const MAX_USER_ATTRIBUTES: usize = 50;

/// A declared user attribute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserAttributeDef {
    #[serde(rename = "type")]
    pub kind: AttributeKind,
    /// The type a `reference` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The values of an `enum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl UserAttributeDef {
    /// Checks a value of the attribute (`Err`: why it does not fit, for a message).
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let short = |s: &str| s.chars().count() <= MAX_ATTRIBUTE_STRING;
        match (self.kind, value) {
            (AttributeKind::String, Value::String(s)) if short(s) => Ok(()),
            (AttributeKind::String, Value::String(_)) => {
                Err(format!("must have at most {MAX_ATTRIBUTE_STRING} characters"))
            }
            (AttributeKind::String, _) => Err("must be a string".into()),
            (AttributeKind::Number, Value::Number(_)) => Ok(()),
            (AttributeKind::Number, _) => Err("must be a number".into()),
            (AttributeKind::Boolean, Value::Bool(_)) => Ok(()),
            (AttributeKind::Boolean, _) => Err("must be true or false".into()),
            (AttributeKind::Reference, Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => Ok(()),
            (AttributeKind::Reference, _) => Err(format!(
                "must be the id (a uuid) of a {}",
                self.to.as_deref().unwrap_or("referenced entity")
            )),
            (AttributeKind::Enum, Value::String(s)) if self.values.iter().flatten().any(|v| v == s) => Ok(()),
            (AttributeKind::Enum, _) => {
                Err(format!("must be one of {}", self.values.iter().flatten().cloned().collect::<Vec<_>>().join(", ")))
            }
            (AttributeKind::Array, Value::Array(items))
                if items.len() <= MAX_ATTRIBUTE_ITEMS && items.iter().all(|i| i.as_str().is_some_and(short)) =>
            {
                Ok(())
            }
            (AttributeKind::Array, _) => Err(format!(
                "must be an array of at most {MAX_ATTRIBUTE_ITEMS} strings (of at most {MAX_ATTRIBUTE_STRING} characters)"
            )),
        }
    }
}

/// Checks a user's attributes against the declarations: the JSON pointer (`/<name>`, under
/// the attributes object) and the message of each problem. An undeclared name is a problem.
pub fn attribute_problems(
    declared: &IndexMap<String, UserAttributeDef>,
    values: &serde_json::Map<String, Value>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in values {
        let pointer = format!("/{}", name.replace('~', "~0").replace('/', "~1"));
        match declared.get(name) {
            None if declared.is_empty() => {
                out.push((pointer, format!("`{name}` is not a declared user attribute (the package declares none)")))
            }
            None => out.push((
                pointer,
                format!(
                    "`{name}` is not a declared user attribute (declared: {})",
                    declared.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
            Some(def) => {
                if let Err(message) = def.check(value) {
                    out.push((pointer, message));
                }
            }
        }
    }
    out
}

/// One sample row of `data/*.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SampleRow {
    #[serde(rename = "type")]
    pub type_name: String,
    /// A name other rows refer to as `"@key"`; also makes the row's id stable across applies.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    pub data: Value,
    /// Where the row came from, for error messages (`data/010-catalog.yaml#3`).
    #[serde(skip)]
    pub origin: String,
}

/// A whole package, as read from a folder or from a stored version.
#[derive(Debug, Clone)]
pub struct Package {
    pub tenant: TenantFile,
    pub types: Vec<EntityTypeDef>,
    /// Decision tables (`decisions/*.yaml`, one per file, named after it).
    pub decisions: Vec<DecisionDef>,
    /// Sample data; not part of the published version (and not hashed).
    pub data: Vec<SampleRow>,
}

impl Package {
    /// Reads a package folder. Every file that does not parse is reported, with its path.
    pub fn load_dir(dir: &Path) -> Result<Package, Vec<PackageError>> {
        let mut errors = Vec::new();
        let tenant_path = dir.join("tenant.yaml");
        let tenant = match read_yaml::<TenantFile>(&tenant_path) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(e);
                None
            }
        };

        let mut types = Vec::new();
        for path in yaml_files(&dir.join("types"), &mut errors) {
            match read_yaml::<EntityTypeDef>(&path) {
                Ok(def) => {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                    if def.name.as_str() != stem {
                        errors.push(PackageError::at(
                            &path,
                            "/name",
                            format!("type `{}` must be in a file named {}.yaml", def.name.as_str(), def.name.as_str()),
                        ));
                    }
                    types.push(def);
                }
                Err(e) => errors.push(e),
            }
        }

        let mut decisions = Vec::new();
        let decisions_dir = dir.join("decisions");
        if decisions_dir.is_dir() {
            for path in yaml_files(&decisions_dir, &mut errors) {
                match read_yaml::<DecisionDef>(&path) {
                    Ok(def) => {
                        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                        if def.name != stem {
                            errors.push(PackageError::at(
                                &path,
                                "/name",
                                format!("decision `{}` must be in a file named {}.yaml", def.name, def.name),
                            ));
                        }
                        decisions.push(def);
                    }
                    Err(e) => errors.push(e),
                }
            }
        }

        let mut data = Vec::new();
        let data_dir = dir.join("data");
        if data_dir.is_dir() {
            for path in yaml_files(&data_dir, &mut errors) {
                match read_yaml::<Vec<SampleRow>>(&path) {
                    Ok(rows) => {
                        let rel = relative(dir, &path);
                        data.extend(rows.into_iter().enumerate().map(|(i, mut row)| {
                            row.origin = format!("{rel}#{i}");
                            row
                        }));
                    }
                    Err(e) => errors.push(e),
                }
            }
        }

        match (tenant, errors.is_empty()) {
            (Some(tenant), true) => Ok(Package { tenant, types, decisions, data }),
            _ => Err(errors),
        }
    }

    /// The canonical JSON form stored in `config_versions.package`: `{tenant, types: [...]}`,
    /// plus `decisions: [...]` when the package has decision tables (left out otherwise, so the
    /// hash of a package without any is what it was before tables existed). The engine compiles
    /// a version from its `types`, `tenant.rules`, `tenant.roles` and `decisions`.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::json!({
            "tenant": self.tenant,
            "types": self.types,
        });
        if !self.decisions.is_empty() {
            out["decisions"] = serde_json::json!(self.decisions);
        }
        out
    }

    /// Rebuilds a package from its stored JSON form (sample data is not stored).
    pub fn from_json(value: &Value) -> Result<Package, PackageError> {
        #[derive(Deserialize)]
        struct Stored {
            tenant: TenantFile,
            types: Vec<EntityTypeDef>,
            #[serde(default)]
            decisions: Vec<DecisionDef>,
        }
        let stored: Stored = serde_json::from_value(value.clone()).map_err(|e| PackageError::Stored(e.to_string()))?;
        Ok(Package { tenant: stored.tenant, types: stored.types, decisions: stored.decisions, data: Vec::new() })
    }

    /// The version hash: sha-256 of the canonical JSON (keys in file order, which the YAML
    /// preserves; identical packages hash identically).
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

pub(crate) fn yaml_files(dir: &Path, errors: &mut Vec<PackageError>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(PackageError::Io { file: dir.display().to_string(), message: e.to_string() });
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

pub(crate) fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, PackageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PackageError::Io { file: path.display().to_string(), message: e.to_string() })?;
    let de = serde_yaml_ng::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path_in_file = e.path().to_string();
        let inner = e.into_inner();
        let message = match inner.location() {
            Some(loc) => {
                format!("{} (line {}, column {})", strip_location(&inner.to_string()), loc.line(), loc.column())
            }
            None => inner.to_string(),
        };
        PackageError::Parse { file: path.display().to_string(), path: json_pointer(&path_in_file), message }
    })
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// `items[0].product_id` → `/items/0/product_id`; `.` (the root) → ``.
fn json_pointer(serde_path: &str) -> String {
    if serde_path == "." {
        return String::new();
    }
    let mut out = String::new();
    for part in serde_path.split('.') {
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            let (name, tail) = rest.split_at(open);
            if !name.is_empty() {
                out.push('/');
                out.push_str(name);
            }
            let close = tail.find(']').unwrap_or(tail.len());
            out.push('/');
            out.push_str(&tail[1..close]);
            rest = tail.get(close + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            out.push('/');
            out.push_str(rest);
        }
    }
    out
}

fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::json_pointer;

    #[test]
    fn serde_paths_become_pointers() {
        assert_eq!(json_pointer("."), "");
        assert_eq!(json_pointer("fields.items.items[0].x"), "/fields/items/items/0/x");
        assert_eq!(json_pointer("[2].data"), "/2/data");
    }
}
