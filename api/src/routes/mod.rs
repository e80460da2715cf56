//! HTTP routes, one module per area. Each declares its routes once, in a `routes()` function
//! ([`Routes`]: method, path template, handler and documentation); [`all`] merges them, and the
//! router ([`crate::http`]), the route table ([`table`]) and the OpenAPI operations
//! ([`operations`], which `crate::openapi::document` assembles) are all made from those
//! declarations. A route cannot be declared without its documentation: an operation object
//! ([`op`]), or [`Doc::PerType`] for the entity routes `crate::openapi` documents per entity type
//! (and transition) from the tenant's definitions.
//!
//! Tenant routes live under `/api/v1/t/{tenant}/…` and take the caller through an extractor
//! (`crate::extract::TenantActor`, or `crate::extract::Admin` for admin-only areas).

pub mod api_keys;
pub mod auth;
pub mod config;
pub mod decisions;
pub mod drafts;
pub mod entities;
pub mod events;
pub mod health;
pub mod inbox;
pub mod invites;
pub mod metrics;
pub mod openapi;
pub mod rules;
pub mod studio;
pub mod types;
pub mod users;
pub mod webhooks;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;
use serde_json::Value;

pub use crate::openapi::Context as DocContext;
use crate::openapi::StaticOperation;
use crate::state::AppState;

/// How a route is documented in the OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub enum Doc {
    /// Its OpenAPI operation object (tags, operationId, parameters, body, responses), built with
    /// the blocks of `crate::openapi`.
    Operation(fn(&DocContext) -> Value),
    /// An entity route (`{type}` in the path): `crate::openapi::document` writes an operation for
    /// each entity type (and each transition, for `transitions/{name}`) from the definitions.
    PerType,
}

/// The documentation of a route: its operation object. A closure that captures nothing will do
/// (`op(|_| json!({ … }))`).
pub fn op(build: fn(&DocContext) -> Value) -> Doc {
    Doc::Operation(build)
}

/// One route: its method, path template (`/api/v1/t/{tenant}/users/{id}`) and documentation.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub doc: Doc,
}

/// Routes being declared: the router they make and the table of what was declared.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    table: Vec<Route>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").field("table", &self.table).finish_non_exhaustive()
    }
}

impl Routes {
    /// Declares `method path` answered by `handler`, documented by `doc`.
    pub fn route<H, T>(mut self, method: Method, path: &'static str, handler: H, doc: Doc) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum can route");
        self.router = self.router.route(path, on(filter, handler));
        self.table.push(Route { method, path, doc });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H, doc: Doc) -> Routes {
        self.route(Method::GET, path, handler, doc)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H, doc: Doc) -> Routes {
        self.route(Method::POST, path, handler, doc)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H, doc: Doc) -> Routes {
        self.route(Method::PUT, path, handler, doc)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H, doc: Doc) -> Routes {
        self.route(Method::PATCH, path, handler, doc)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H, doc: Doc) -> Routes {
        self.route(Method::DELETE, path, handler, doc)
    }

    /// A layer around these routes only (those declared so far), like [`Router::layer`].
    pub fn layer<L>(mut self, layer: L) -> Routes
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response: axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error: Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.router = self.router.layer(layer);
        self
    }

    /// These routes and `other`'s.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }

    pub fn table(&self) -> &[Route] {
        &self.table
    }
}

/// Every route of the API: each module's [`Routes`]. A new module of routes is added here (the
/// OpenAPI document lists the operations in this order).
pub fn all() -> Routes {
    Routes::default()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(auth::routes())
        .merge(openapi::routes())
        .merge(types::routes())
        .merge(config::routes())
        .merge(drafts::routes())
        .merge(events::routes())
        .merge(inbox::routes())
        .merge(users::routes())
        .merge(invites::routes())
        .merge(api_keys::routes())
        .merge(webhooks::routes())
        .merge(rules::routes())
        .merge(decisions::routes())
        .merge(entities::routes())
}

/// Every route of the API: method, path template and documentation.
pub fn table() -> Vec<Route> {
    all().table
}

/// The OpenAPI operations of every route that is not an entity route, in the order declared
/// (what `crate::openapi::document` takes). Made once.
pub fn operations() -> &'static [StaticOperation] {
    static OPERATIONS: std::sync::OnceLock<Vec<StaticOperation>> = std::sync::OnceLock::new();
    OPERATIONS.get_or_init(|| {
        table()
            .into_iter()
            .filter_map(|route| match route.doc {
                Doc::Operation(build) => {
                    Some(StaticOperation { method: method_name(&route.method), path: route.path, build })
                }
                Doc::PerType => None,
            })
            .collect()
    })
}

/// The key of a method in an OpenAPI path item.
fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        Method::HEAD => "head",
        Method::OPTIONS => "options",
        Method::TRACE => "trace",
        _ => "x-unknown",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every route is documented where it is declared: entity routes per type (by
    /// `openapi::entity_paths`, which writes each of them, for a type and for any type), every
    /// other one by an operation object with a unique operation id and a success response.
    #[test]
    fn every_route_is_declared_with_its_documentation() {
        let table = table();
        let any =
            crate::openapi::EntitySchemas { data: crate::openapi::any_object(), entity: crate::openapi::any_object() };
        let entity_paths = crate::openapi::entity_paths(
            "/api/v1/t/{tenant}/entities/{type}",
            &crate::openapi::EntityPathsOf::Any,
            &any,
        );
        let mut ids = BTreeSet::new();
        let mut declared = BTreeSet::new();
        for route in &table {
            assert!(
                declared.insert((route.method.clone(), route.path)),
                "{} {} declared once",
                route.method,
                route.path
            );
            match route.doc {
                Doc::PerType => {
                    assert!(route.path.contains("{type}"), "{} {}", route.method, route.path);
                    let item = entity_paths.iter().find(|(path, _)| path == route.path).map(|(_, item)| item);
                    let op = item.and_then(|item| item.get(method_name(&route.method)));
                    let op = op.unwrap_or_else(|| {
                        panic!("{} {} is written by openapi::entity_paths", route.method, route.path)
                    });
                    let id = op["operationId"].as_str().expect("an operationId").to_string();
                    assert!(ids.insert(id.clone()), "operationId {id} is unique");
                }
                Doc::Operation(build) => {
                    assert!(!route.path.contains("{type}"), "{} {} is documented per type", route.method, route.path);
                    let op = build(&DocContext { type_names: &["order"] });
                    let id = op["operationId"].as_str().expect("an operationId").to_string();
                    assert!(ids.insert(id.clone()), "operationId {id} is unique");
                    let responses = op["responses"].as_object().expect("responses");
                    assert!(responses.keys().any(|k| k.starts_with('2')), "{id} documents its success");
                }
            }
        }
        let per_type = table.iter().filter(|r| matches!(r.doc, Doc::PerType)).count();
        assert!(per_type >= 11, "the entity routes are in the table");
        let written: usize = entity_paths
            .iter()
            .map(|(_, item)| item.as_object().map_or(0, |ops| ops.keys().filter(|k| *k != "parameters").count()))
            .sum();
        assert_eq!(written, per_type, "openapi::entity_paths writes the entity routes and no other");
        assert_eq!(operations().len(), table.len() - per_type);
        assert!(operations().iter().any(|o| o.method == "put" && o.path == "/api/v1/t/{tenant}/config/draft"));
    }
}
