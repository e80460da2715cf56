//! The Switchyard server: the HTTP API ([`http`], [`routes`]), authentication ([`auth`]), the
//! database and its embedded cluster ([`db`], [`cluster`]), and the demo ([`demo`]).

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
