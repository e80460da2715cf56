//! The Switchyard server: the HTTP API ([`http`], [`routes`], [`extract`], [`middleware`],
//! [`openapi`]), credentials ([`auth`]), background work ([`workers`], woken through [`hub`]),
//! the database and its embedded cluster ([`db`], [`cluster`]), and the demo ([`demo`]).
//!
//! The modules form layers without a circle (ARCHITECTURE.md, "Inside the api crate";
//! `tests/layers.rs` keeps it so): `error`, `limits`, `config` → `metrics` → `auth` → `hub` →
//! `workers` → `state` → `extract`, `middleware` → `routes` → `http`. Below [`state`] nothing
//! takes `AppState`.

pub mod admission;
pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod cluster;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod extract;
pub mod http;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod publish;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod workers;
