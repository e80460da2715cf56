//! One test binary for the crate's integration tests (one link instead of one per file: a
//! fraction of the disk and the link time). Each module is what was once its own file's binary;
//! nextest still runs every test in its own process.

mod append_only;
mod auth_cookie;
mod client_ip;
mod config;
mod conflicts;
mod create_rules;
mod drafts;
mod engine_features;
mod envelope_and_tokens;
mod events;
mod generated_fields;
mod harness;
mod hostile_http;
mod idempotency;
mod identity;
mod inbox;
mod invite;
mod isolation_db;
mod isolation_http;
mod migrate_http;
mod openapi;
mod ops;
mod package_webhooks;
mod path_names;
mod permissions;
mod plan_pinned;
mod queries;
mod record_rules;
mod scenario_change_control;
mod scenario_chemichemi;
mod studio_serving;
mod timers;
mod transitions;
mod unique;
mod user_attributes;
