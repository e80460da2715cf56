#!/usr/bin/env bash
# The performance benchmark (docs/benchmarks.md), run by `make bench`: builds switchyard-bench in
# release mode and runs it once. It starts its own embedded Postgres in a temp folder, measures
# (a) evaluation cost, (b) transitions/s and latency through the engine and HTTP, (c) a pgbench
# baseline on the same cluster, prints the report, writes it to target/bench-report.md, and stops
# everything it started. Then the studio designer's benchmark (studio/e2e/bench-designer.ts).
#
# Settings (environment): BENCH_SECONDS (measured seconds per level, default 10),
# BENCH_WARMUP_SECONDS (default 2), BENCH_CLIENTS (default 1,8,32), BENCH_ROUNDS (default 5),
# BENCH_EVAL_MS (default 1000),
# BENCH_SEED (default 42), BENCH_REPORT (default target/bench-report.md), BENCH_PGBENCH.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pgbench >/dev/null 2>&1 && [ -z "${BENCH_PGBENCH:-}" ] \
    && ! compgen -G "/usr/lib/postgresql/*/bin/pgbench" >/dev/null 2>&1; then
    echo "bench: pgbench not found; run scripts/setup.sh (installs postgresql-client)" >&2
    exit 1
fi

cargo build --release -p switchyard-bench -p switchyard-api
cargo run --release -q -p switchyard-bench

# The studio's designer (docs/benchmarks.md, "The designer"): a 60-state workflow rendered in
# headless Chromium against the release server, with its baselines (target/bench-designer.md).
(cd studio && npx vite build --logLevel warn && SWITCHYARD_BIN="$PWD/../target/release/switchyard" npm run -s bench:designer)
