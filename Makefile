# The two commands of the README: `make demo` and `make test`.
.PHONY: demo test setup lint bench bench-realistic bench-scale bench-studio studio faults histories

setup:
	@scripts/setup.sh

demo: setup studio
	cargo run --release -p switchyard-api --bin switchyard -- serve --demo

# The studio's production build (studio/dist), served at /studio/ by `switchyard serve`.
studio: setup
	cd studio && npx vite build --logLevel warn

test: setup lint
	scripts/test.sh
	scripts/studio-test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: setup
	scripts/bench.sh

# The realistic mix (docs/benchmarks.md, "The realistic mix"): chemichemi order lives over HTTP
# against a real `switchyard serve` process on 50 tenants at 8 and 32 clients, each level against
# pgbench running the same SQL mix on the same cluster. About 9 minutes on 2 cores (most of it
# applying the 50 tenants); BENCH_SECONDS, BENCH_CLIENTS, BENCH_TENANTS change it. Report:
# target/bench-realistic.md.
bench-realistic: setup
	cargo build --release -p switchyard-bench -p switchyard-api
	BENCH_ONLY=realistic target/release/switchyard-bench

# The scale benchmark (docs/benchmarks.md, "(e) Scale of data"): a million orders in one tenant
# beside 100 small ones, loaded with COPY, then lists, counts, searches, history and the event
# stream's catch-up over HTTP with their plans. About 10 minutes on 2 cores; not in `make test`.
bench-scale: setup
	cargo build --release -p switchyard-bench
	BENCH_ONLY=scale cargo run --release -q -p switchyard-bench

# The console list's render in headless Chromium at 100,000 orders (docs/benchmarks.md, "The
# console list"; a few minutes, not part of `make test`): the release server, the built studio.
bench-studio: setup studio
	cargo build --release -p switchyard-bench -p switchyard-api
	cd studio && SWITCHYARD_BIN="$$PWD/../target/release/switchyard" npm run -s bench:list

# The fault harness's long run (docs/reliability.md): real servers killed and their database
# restarted under load, then the ledger checked. FAULTS_SECONDS of load and FAULTS_KILLS faults
# per scenario (`make test` runs the same scenarios, but the slow-link one, for 15 s with 2 faults).
faults: setup
	FAULTS_SECONDS=$${FAULTS_SECONDS:-300} FAULTS_KILLS=$${FAULTS_KILLS:-10} scripts/test.sh -E 'binary(faults)' --run-ignored all --no-capture

# The history checks' long run (docs/reliability.md, "Histories checked"): random concurrent moves,
# edits and reads on shared rows for HISTORIES_SECONDS, then the history checked for lost updates,
# write skew and reads of uncommitted data; and the weakened run that must be caught.
histories: setup
	HISTORIES_SECONDS=$${HISTORIES_SECONDS:-300} scripts/test.sh -E 'binary(faults) and test(/^histories::/)' --no-capture
