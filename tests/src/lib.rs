//! Shared helpers for the integration tests: a private Postgres cluster, one database per test, a server on a free port.
