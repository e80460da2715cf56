# The two commands of the README: `make demo` and `make test`.
.PHONY: demo test setup lint bench

setup:
	@scripts/setup.sh

demo: setup
	cargo run --release -p switchyard-api --bin switchyard -- serve --demo

test: setup lint
	scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: setup
	scripts/bench.sh
