//! The parameters of an entity route's path, parsed once, here: `{type}` into an
//! `ontology::TypeName`, `{id}` into a `Uuid`, `{name}` (a transition) into an
//! `engine::names::TransitionName`. A text that cannot be one names nothing that exists, so it is
//! answered as an unknown one is: 404 `NOT_FOUND` in the envelope (an id first, then the type,
//! then the transition, the order the handlers used to check them in).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use engine::names::TransitionName;
use engine::store::StoreError;
use ontology::TypeName;
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;

/// `…/entities/{type}`.
#[derive(Debug, Clone)]
pub struct TypePath {
    pub type_name: TypeName,
}

/// `…/entities/{type}/{id}`.
#[derive(Debug, Clone)]
pub struct EntityPath {
    pub type_name: TypeName,
    pub id: Uuid,
}

/// `…/entities/{type}/{id}/transitions/{name}`.
#[derive(Debug, Clone)]
pub struct TransitionPath {
    pub type_name: TypeName,
    pub id: Uuid,
    pub name: TransitionName,
}

/// `…/entities/{type}/transitions/{name}` (in bulk).
#[derive(Debug, Clone)]
pub struct BulkPath {
    pub type_name: TypeName,
    pub name: TransitionName,
}

/// The raw parameters of the matched route.
struct Raw(HashMap<String, String>);

impl Raw {
    async fn of<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Raw, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("no such route"))?;
        Ok(Raw(params))
    }

    fn get(&self, name: &str) -> Result<&str, ApiError> {
        self.0.get(name).map(String::as_str).ok_or_else(|| ApiError::not_found("no such route"))
    }

    fn type_name(&self) -> Result<TypeName, ApiError> {
        parse_type(self.get("type")?)
    }

    fn id(&self) -> Result<Uuid, ApiError> {
        parse_id(self.get("id")?)
    }

    fn transition(&self, type_name: &TypeName) -> Result<TransitionName, ApiError> {
        parse_transition(type_name, self.get("name")?)
    }
}

/// A type name, or the 404 of an unknown type.
pub fn parse_type(raw: &str) -> Result<TypeName, ApiError> {
    TypeName::parse(raw).map_err(|_| StoreError::TypeNotFound(raw.to_string()).into())
}

/// An entity id, or the 404 of an unknown entity.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("entity not found"))
}

/// A transition name, or the 404 of a transition the type does not have.
pub fn parse_transition(type_name: &TypeName, raw: &str) -> Result<TransitionName, ApiError> {
    TransitionName::parse(raw).map_err(|_| unknown_transition(type_name.as_str(), raw))
}

/// 404 `NOT_FOUND` for a transition `type_name`'s workflow does not have.
pub fn unknown_transition(type_name: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("unknown transition `{name}` of entity type `{type_name}`"))
        .with_details(json!({ "type": type_name, "transition": name }))
}

impl<S: Send + Sync> FromRequestParts<S> for TypePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = Raw::of(parts, state).await?;
        Ok(TypePath { type_name: raw.type_name()? })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for EntityPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = Raw::of(parts, state).await?;
        let id = raw.id()?;
        Ok(EntityPath { type_name: raw.type_name()?, id })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TransitionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = Raw::of(parts, state).await?;
        let id = raw.id()?;
        let type_name = raw.type_name()?;
        let name = raw.transition(&type_name)?;
        Ok(TransitionPath { type_name, id, name })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BulkPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = Raw::of(parts, state).await?;
        let type_name = raw.type_name()?;
        let name = raw.transition(&type_name)?;
        Ok(BulkPath { type_name, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_cannot_exist_is_not_found() {
        let order = parse_type("order").expect("a type name");
        assert_eq!(order.as_str(), "order");
        for bad in ["Order", "order-line", "", "a/b", "ordér"] {
            let e = parse_type(bad).expect_err(bad);
            assert_eq!((e.status.as_u16(), e.code), (404, "NOT_FOUND"), "{bad:?}");
            assert_eq!(e.message, format!("unknown entity type `{bad}`"));
        }
        assert!(parse_id("0190a6f2-7c3e-7000-8000-000000000000").is_ok());
        let e = parse_id("not-a-uuid").expect_err("not an id");
        assert_eq!((e.status.as_u16(), e.code, e.message.as_str()), (404, "NOT_FOUND", "entity not found"));
        assert_eq!(parse_transition(&order, "submitOrder").expect("a name").as_str(), "submitOrder");
        let e = parse_transition(&order, "submit order").expect_err("not a name");
        assert_eq!((e.status.as_u16(), e.code), (404, "NOT_FOUND"));
        assert_eq!(e.details, json!({ "type": "order", "transition": "submit order" }));
    }
}
