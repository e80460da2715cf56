#!/usr/bin/env bash
# Runs every test of the workspace against a private Postgres cluster (under target/test-pg,
# started by the first test that needs it, reached over a unix socket in that folder, so no port
# is shared with anything else on the machine) and stops that cluster afterwards (unless another
# run of this script still uses it).
set -uo pipefail
cd "$(dirname "$0")/.."

pg_home="${SWITCHYARD_TEST_PG_HOME:-$PWD/target/test-pg}"
# Several runs of this script may share the cluster (two terminals, parallel filters): each holds
# a shared lock on it while it runs, and only the last one to finish stops it.
mkdir -p "$(dirname "$pg_home")"
exec 9>"$pg_home.runs.lock"
flock -s 9
stop_test_cluster() {
    # Another run still uses the cluster: it stops it when it ends.
    flock -n -x 9 || return 0
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
