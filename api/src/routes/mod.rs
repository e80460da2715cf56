//! HTTP routes, one module per area, each with its own `router()`; merged in [`crate::http`].

pub mod api_keys;
pub mod auth;
pub mod config;
pub mod entities;
pub mod events;
pub mod health;
pub mod metrics;
pub mod rules;
pub mod types;
pub mod users;
pub mod webhooks;
