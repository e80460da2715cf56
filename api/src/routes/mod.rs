//! HTTP routes, one module per area, each with its own `router()`; merged in [`crate::http`].

pub mod entities;
pub mod health;
pub mod rules;
