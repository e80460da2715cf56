#!/usr/bin/env bash
# Runs every test of the workspace against a private Postgres cluster (under target/test-pg,
# started by the first test that needs it, reached over a unix socket in that folder, so no port
# is shared with anything else on the machine) and stops that cluster afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."

pg_home="${SWITCHYARD_TEST_PG_HOME:-$PWD/target/test-pg}"
stop_test_cluster() {
    local pidfile="$pg_home/pgdata/postmaster.pid"
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(head -n1 "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}
trap stop_test_cluster EXIT

# A failing test shows its message, not a backtrace that hides it (set RUST_BACKTRACE=1 to see one).
export RUST_BACKTRACE="${RUST_BACKTRACE_TESTS:-0}"
cargo nextest run --workspace --no-fail-fast "$@"
