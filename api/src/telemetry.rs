//! Logging to stderr: human-readable by default (colours only on a terminal), JSON with
//! `SWITCHYARD_LOG_FORMAT=json`; the filter from `RUST_LOG`, else `default` (the server logs
//! `info`, the CLI's one-shot commands only `warn` so their output stays readable).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("SWITCHYARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
