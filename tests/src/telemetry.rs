//! Silent tests: tracing is initialised once per process with a sink, so every span and event is
//! still formatted (a broken `Display` of a field fails the test that logs it) but nothing is
//! printed. `TEST_LOG=1` prints to the test's captured output instead, filtered by `RUST_LOG`
//! (default `info`).

use std::sync::Once;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process; later calls do nothing).
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
        let builder = tracing_subscriber::fmt().with_env_filter(filter);
        // `try_init`: a test binary may have installed its own subscriber first; keep it.
        let _ = if std::env::var_os("TEST_LOG").is_some_and(|v| !v.is_empty() && v != "0") {
            builder.with_test_writer().try_init()
        } else {
            builder.with_writer(std::io::sink).try_init()
        };
    });
}
