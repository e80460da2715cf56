#!/usr/bin/env bash
# Flame graphs of the benchmark's engine and HTTP windows (docs/flamegraphs/*.svg).
#
#   scripts/flamegraph.sh            # 32 clients
#   CLIENTS=8 scripts/flamegraph.sh
#
# Runs the release benchmark for one round (BENCH_SECONDS=10 per window), records the
# benchmark's own process with perf (DWARF call graphs, 299 Hz, 5 s, 3 s into the engine window
# and into the in-process HTTP window: the load's clients, axum and the engine share that
# process), folds the stacks with inferno and draws them. Needs `perf` (Debian: linux-perf) and
# inferno (`cargo install inferno`); stops the benchmark once both are recorded. Not part of
# `make test`: a profile is read, not asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${CLIENTS:-32}"
for tool in perf inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || { echo "flamegraph: $tool is not installed" >&2; exit 1; }
done
cargo build -q --release -p switchyard-api -p switchyard-bench
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
BENCH_CLIENTS="$clients" BENCH_ROUNDS=1 BENCH_SECONDS=10 BENCH_EVAL_MS=10 \
    BENCH_REPORT="$work/report.md" ./target/release/switchyard-bench >"$work/bench.out" 2>&1 &
bench=$!
for window in engine HTTP; do
    until grep -q "round 1/1: $window\$" "$work/bench.out"; do
        kill -0 "$bench" 2>/dev/null || { echo "flamegraph: the benchmark stopped" >&2; tail -20 "$work/bench.out" >&2; exit 1; }
        sleep 0.2
    done
    sleep 3
    perf record -q -p "$bench" -F 299 --call-graph dwarf,16384 -o "$work/$window.data" -- sleep 5 2>/dev/null
done
kill -INT "$bench" 2>/dev/null || true
wait "$bench" 2>/dev/null || true
mkdir -p docs/flamegraphs
lower() { tr '[:upper:]' '[:lower:]' <<<"$1"; }
for window in engine HTTP; do
    perf script -i "$work/$window.data" 2>/dev/null | inferno-collapse-perf >"$work/$window.folded"
    title="$window path, $clients clients, the benchmark's process ($(date -u +%F))"
    inferno-flamegraph --title "$title" --minwidth 0.5 "$work/$window.folded" \
        >"docs/flamegraphs/$(lower "$window")-$clients.svg"
    echo "flamegraph: docs/flamegraphs/$(lower "$window")-$clients.svg"
done
