//! Compiled definitions, once per published version: nothing is parsed per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use indexmap::IndexMap;
use ontology::def::EntityTypeDef;
use sqlx::PgConnection;

use super::sql::{self};
use super::{StoreError, TenantId};
use crate::compiled::CompiledTenant;
use crate::limits::Limits;
use crate::permissions::{Permissions, RoleCreateRules, RolePermissions};
use crate::rules::NamedRules;

type Compiled = HashMap<(TenantId, i64), Arc<CompiledTenant>>;

/// `(tenant, version)` → compiled definitions. Versions are immutable, so entries never go
/// stale; a version is compiled at most a few times concurrently on a cold start.
#[derive(Clone)]
pub struct DefinitionCache {
    inner: Arc<RwLock<Compiled>>,
    limits: Arc<Limits>,
}

impl DefinitionCache {
    pub fn new(limits: Arc<Limits>) -> DefinitionCache {
        DefinitionCache { inner: Arc::default(), limits }
    }

    /// The compiled version if it is cached already.
    pub fn peek(&self, tenant: TenantId, version: i64) -> Option<Arc<CompiledTenant>> {
        self.inner.read().ok().and_then(|m| m.get(&(tenant, version)).cloned())
    }

    pub async fn get(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        version: i64,
    ) -> Result<Arc<CompiledTenant>, StoreError> {
        if let Some(hit) = self.inner.read().ok().and_then(|m| m.get(&(tenant, version)).cloned()) {
            return Ok(hit);
        }
        let (types, rules, roles, decisions, zone) = sql::config_definitions(tx, tenant, version)
            .await?
            .ok_or_else(|| StoreError::Definitions(format!("version {version} not found")))?;
        let compiled = compile_package_json(types, rules, &self.limits)?.with_decisions(decisions_json(decisions)?);
        let permissions = permissions_json(roles, compiled.rules(), &self.limits)?;
        let mut compiled = compiled.with_permissions(permissions);
        if let Some(zone) = zone {
            let zone =
                crate::dates::zone(&zone).map_err(|e| StoreError::Definitions(format!("tenant.time_zone: {e}")))?;
            compiled = compiled.with_time_zone(zone);
        }
        let compiled = Arc::new(compiled);
        if let Ok(mut m) = self.inner.write() {
            m.insert((tenant, version), compiled.clone());
        }
        Ok(compiled)
    }
}

/// Compiles the `types` array of a stored package with its `tenant.rules` (absent or null: no
/// named rules).
pub fn compile_package_json(
    types: serde_json::Value,
    rules: Option<serde_json::Value>,
    limits: &Limits,
) -> Result<CompiledTenant, StoreError> {
    let defs: Vec<EntityTypeDef> = serde_json::from_value(types).map_err(|e| StoreError::Definitions(e.to_string()))?;
    let rules: IndexMap<String, serde_json::Value> = match rules {
        None | Some(serde_json::Value::Null) => IndexMap::new(),
        Some(r) => serde_json::from_value(r).map_err(|e| StoreError::Definitions(format!("tenant.rules: {e}")))?,
    };
    let ontology = ontology::compile::compile_types(defs)
        .map_err(|errs| StoreError::Definitions(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")))?;
    CompiledTenant::compile_with(ontology, &rules, limits)
        .map_err(|errs| StoreError::Definitions(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")))
}

/// The decision tables of a stored package (`decisions`, absent before tables existed).
pub fn decisions_json(decisions: Option<serde_json::Value>) -> Result<crate::decision::Decisions, StoreError> {
    let defs: Vec<crate::decision::DecisionDef> = match decisions {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(d) => serde_json::from_value(d).map_err(|e| StoreError::Definitions(format!("decisions: {e}")))?,
    };
    crate::decision::Decisions::compile(defs)
        .map_err(|errs| StoreError::Definitions(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
}

/// The permissions of the stored package's `tenant.roles` (`{role: {permissions?: {…},
/// create?: {…}}}`), the create conditions compiled with the tenant's named rules.
pub fn permissions_json(
    roles: Option<serde_json::Value>,
    rules: &NamedRules,
    limits: &Limits,
) -> Result<Permissions, StoreError> {
    #[derive(serde::Deserialize)]
    struct Role {
        #[serde(default)]
        permissions: Option<RolePermissions>,
        #[serde(default)]
        create: Option<RoleCreateRules>,
    }
    let roles: IndexMap<String, Role> = match roles {
        None | Some(serde_json::Value::Null) => IndexMap::new(),
        Some(r) => serde_json::from_value(r).map_err(|e| StoreError::Definitions(format!("tenant.roles: {e}")))?,
    };
    let (permissions, errors) = Permissions::new(roles.iter().map(|(name, r)| (name.as_str(), r.permissions.as_ref())))
        .with_create_rules(
            roles.iter().filter_map(|(name, r)| Some((name.as_str(), r.create.as_ref()?))),
            rules,
            limits,
        );
    match errors.first() {
        None => Ok(permissions),
        Some(e) => Err(StoreError::Definitions(format!("tenant.yaml {}: {}", e.pointer, e.message))),
    }
}
