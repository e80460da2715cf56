//! Shared helpers for the integration tests.
//!
//! * [`test_db`]: a fresh, migrated database per test, cloned from a template in one PostgreSQL
//!   cluster shared by every test process (cargo-nextest runs one process per test).
//! * [`init_tracing`]: silent telemetry, shown only with `TEST_LOG=1`.

pub mod db;
pub mod telemetry;

pub use db::{test_db, TestDb};
pub use telemetry::init_tracing;
