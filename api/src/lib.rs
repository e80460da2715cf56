//! The Switchyard server: HTTP API, auth, CLI, embedded Postgres cluster.
