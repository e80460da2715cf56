//! HTTP routes, one module per area. Each declares its routes once, in a `routes()` function
//! ([`Routes`]: method, path template, handler); [`all`] merges them, and the router
//! ([`crate::http`]) and the route table ([`table`], which the OpenAPI tests check the document
//! against) are both made from those declarations.
//!
//! Tenant routes live under `/api/v1/t/{tenant}/…` and take the caller through an extractor
//! (`crate::extract::TenantActor`, or `crate::extract::Admin` for admin-only areas).

pub mod api_keys;
pub mod auth;
pub mod config;
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

use crate::state::AppState;

/// One route: its method and path template (`/api/v1/t/{tenant}/users/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
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
    /// Declares `method path` answered by `handler`.
    pub fn route<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum can route");
        self.router = self.router.route(path, on(filter, handler));
        self.table.push(Route { method, path });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Routes {
        self.route(Method::GET, path, handler)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Routes {
        self.route(Method::POST, path, handler)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Routes {
        self.route(Method::PUT, path, handler)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Routes {
        self.route(Method::PATCH, path, handler)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Routes {
        self.route(Method::DELETE, path, handler)
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

/// Every route of the API: each module's [`Routes`]. A new module of routes is added here.
pub fn all() -> Routes {
    Routes::default()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(auth::routes())
        .merge(openapi::routes())
        .merge(types::routes())
        .merge(config::routes())
        .merge(drafts::routes())
        .merge(rules::routes())
        .merge(entities::routes())
        .merge(inbox::routes())
        .merge(users::routes())
        .merge(invites::routes())
        .merge(api_keys::routes())
        .merge(events::routes())
        .merge(webhooks::routes())
}

/// The method and path template of every route of the API.
pub fn table() -> Vec<Route> {
    all().table
}
