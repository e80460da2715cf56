#!/usr/bin/env bash
# Fuzzes the demo server's API with schemathesis (from PyPI) against the tenant's generated
# OpenAPI document: no 5xx, and every response must match the document.
#
# One run, bounded by ST_MAX_TIME seconds (default 1500): the examples and coverage phases once
# (each operation on its own), then fuzzing (ST_MAX_EXAMPLES cases per operation) and the stateful
# phase take turns until the time is spent. The stateless phases make up the ids in paths, so
# operations on one entity mostly answer 404 there; the stateful phase runs sequences of calls
# that follow the document's OpenAPI links (`links` on the answers: a creation or a list page to
# the entity's get, patch, history and transitions; a transition to those fired from the state
# it led to; …), so they get real ids. Before the run, the package's test scenarios are replayed
# through the API (scripts/schemathesis-seed.py), so that every type has entities to list, and
# both documents (the tenant's, the generic one) are validated as OpenAPI 3.1
# (openapi-spec-validator); after it, per operation, how many got a 2xx and how many mostly a 404
# is counted from the run's HAR (scripts/schemathesis-coverage.py).
#
#   scripts/schemathesis.sh                                  # 25 examples per operation, 1500 s
#   ST_MAX_EXAMPLES=100 ST_MAX_TIME=3600 scripts/schemathesis.sh
#   ST_PHASES=examples,coverage,fuzzing scripts/schemathesis.sh   # without the stateful phase
#   ST_COVERAGE=0 scripts/schemathesis.sh                    # no HAR, no per-operation counts
#   ST_SEED=0 scripts/schemathesis.sh                        # the demo's sample data only
#   ST_WORKERS=2 scripts/schemathesis.sh   # faster, but with Python 3.11.7 hypothesis sometimes
#                                          # fails ("AST constructor recursion depth mismatch")
#                                          # when two workers parse lambdas at once
#
# It starts its own `switchyard serve --demo` on a free 127.0.0.1 port with a private home,
# and stops it when done. The documents, the HAR and the server's log are left in
# target/schemathesis/.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    "$venv/bin/pip" install -q 'openapi-spec-validator>=0.7,<1'
fi
out=target/schemathesis
mkdir -p "$out"

cargo build -q -p switchyard-api --bin switchyard
bin=target/debug/switchyard
home=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SWITCHYARD_HOME="$home/home" SWITCHYARD_LISTEN="127.0.0.1:$port" RUST_LOG=warn
# The fuzzer sends thousands of requests: no rate limit for this run.
export SWITCHYARD_RATE_LIMIT=off SWITCHYARD_RATE_LIMIT_IP=off
"$bin" serve --demo > "$home/serve.log" 2>&1 &
server=$!
cleanup() {
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    cp "$home/serve.log" "$out/serve.log" 2>/dev/null || true
    rm -rf "$home"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
token=$("$bin" token --tenant chemichemi --user admin@chemichemi.test --ttl 2h 2>/dev/null | tail -n1)
# Entities of every type, in several states (the package's test scenarios replayed through the
# API): the demo's sample data has none of orders, trips, payments, …, and random data rarely
# creates one, so without them the links from list pages would lead nowhere.
if [ "${ST_SEED:-1}" != 0 ]; then
    "$venv/bin/python" scripts/schemathesis-seed.py "http://127.0.0.1:$port" chemichemi examples/chemichemi "$bin"
fi
curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/t/chemichemi/openapi.json" > "$home/openapi.json"

cp "$home/openapi.json" "$out/openapi.json"

# The documents are valid OpenAPI 3.1 (their links too): schemathesis itself reads them leniently.
"$bin" openapi > "$out/generic.json"
"$venv/bin/openapi-spec-validator" "$out/openapi.json" "$out/generic.json"

# Every documented operation is fuzzed except:
# - events_stream (GET …/events/stream): a server-sent event stream stays open (up to 30 min), so
#   a client that reads the whole body never gets an answer; tests/tests/suite/events.rs covers it;
# - config_apply (POST …/config/apply): a package that validates would be published, replacing
#   the live configuration (and the very document under test) mid-run; tests/tests/suite/config.rs
#   covers it. Its neighbours `config_validate` and `config_plan` are fuzzed.
# `logout` is fuzzed: the token used here (from `switchyard token`) belongs to no session, so
# signing out everywhere does not end it. The token is the tenant admin's, passed as a header to
# every request: OpenAPI links set an operation's parameters, not its credentials, so `login`
# links to nothing and the fuzzer does not sign in itself.
st() {
    local name=$1
    shift
    local report=()
    if [ "${ST_COVERAGE:-1}" != 0 ]; then
        report=(--report har --report-har-path "$out/$name.har")
    fi
    "$venv/bin/schemathesis" run "$out/openapi.json" \
        --url "http://127.0.0.1:$port" \
        -H "Authorization: Bearer $token" \
        --exclude-operation-id events_stream \
        --exclude-operation-id config_apply \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --workers "${ST_WORKERS:-1}" \
        --seed 1 \
        --no-color \
        "${report[@]}" \
        "$@"
}
coverage() {
    if [ "${ST_COVERAGE:-1}" != 0 ]; then
        echo "== $1: operations reached (from $out/$1.har)"
        python3 scripts/schemathesis-coverage.py "$out/openapi.json" "$out/$1.har"
    fi
}

# One run, bounded by ST_MAX_TIME seconds: the examples and the coverage phase once, then
# fuzzing and the stateful phase take turns until the time is spent. The stateful phase follows
# the links, and reuses the ids that the earlier phases saw created.
st run --phases "${ST_PHASES:-examples,coverage,fuzzing,stateful}" \
    --max-examples "${ST_MAX_EXAMPLES:-25}" --max-time "${ST_MAX_TIME:-1500}" || status=$?
coverage run
exit "${status:-0}"
