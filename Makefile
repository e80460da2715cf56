# The two commands of the README: `make demo` and `make test`.
.PHONY: demo test setup lint bench studio

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
