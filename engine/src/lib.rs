//! Workflows, guards, scripts, the pure evaluation of a transition and the Postgres executor
//! around it.
//!
//! The pure core imports no tokio, sqlx or HTTP: [`def`] (the `workflow:` model) →
//! [`compiled`] (definitions compiled once per published version) → [`eval`] ([`eval::prepare`],
//! then the store loads, then [`eval::decide`]). [`logic`] (JSON-Logic) and [`script`] (Rhai)
//! are the two rule languages; [`rules`] expands the tenant's named rules into them at compile
//! time; [`decimals`] makes their arithmetic exact; [`limits`] bounds them; [`model`] is the data the store fills; [`names`] parses the
//! slugs and state and transition names that come from outside; [`rows`] compiles record rules
//! (which rows a role sees) for the store's SQL.
//!
//! Around the core, with tokio: [`store`] (the Postgres executor) and [`offload`] (slow tenant
//! code runs off the reactor, on bounded slots with a per-tenant share).

pub mod compiled;
pub mod dates;
pub mod decimals;
pub mod decision;
pub mod def;
pub mod error;
pub mod eval;
pub mod limits;
pub mod logic;
pub mod model;
pub mod names;
pub mod offload;
pub mod permissions;
pub mod rows;
pub mod rules;
pub mod script;
pub mod store;

pub use error::EngineError;
pub use limits::Limits;
