//! Shared helpers for the integration tests.
//!
//! * [`test_db`]: a fresh, migrated database per test, cloned from a template in one PostgreSQL
//!   cluster shared by every test process (cargo-nextest runs one process per test).
//! * [`server::TestServer`]: the API on a free port over such a database, with a package applied.
//! * [`init_tracing`]: silent telemetry, shown only with `TEST_LOG=1`.

pub mod db;
pub mod server;
pub mod telemetry;

pub use db::{empty_db, test_db, TestDb};
pub use telemetry::init_tracing;
