#!/usr/bin/env bash
# The studio's checks (part of `make test`): its generated API types are those of the server's
# OpenAPI document, then typecheck, lint, unit tests, a production build, and the end-to-end
# tests in Chromium against a real `switchyard serve --demo` built by cargo (its own embedded
# Postgres in a temporary folder). `scripts/setup.sh` installs Node, Chromium and the packages.
set -euo pipefail
cd "$(dirname "$0")/.."

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
cargo build -q -p switchyard-api --bin switchyard
export SWITCHYARD_BIN="$PWD/target/debug/switchyard"

cd studio
start=$(date +%s)
step() { echo "studio: $*"; }
step "generated API types"; npm run -s check:api
step "typecheck"; npm run -s typecheck
step "lint"; npm run -s lint
step "unit tests"; npm test -s -- --reporter=dot
step "build"; npx vite build --logLevel warn
step "end-to-end tests (Chromium)"; npm run -s e2e
echo "studio: all checks passed in $(( $(date +%s) - start )) s"
