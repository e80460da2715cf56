#!/usr/bin/env bash
# Installs what building and running Switchyard needs on a fresh Debian machine, and nothing
# that is already there: PostgreSQL server binaries (>= 15) and cargo-nextest.
set -euo pipefail

have_pg() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1
}

apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "setup: please install: $*  (needs root)" >&2
        return 1
    fi
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! have_pg; then
    echo "setup: installing PostgreSQL server binaries"
    apt_install postgresql
fi
# flock (util-linux): scripts/test.sh shares its cluster between concurrent runs with it.
if ! command -v flock >/dev/null 2>&1; then
    apt_install util-linux
fi
if ! command -v psql >/dev/null 2>&1 || ! command -v pgbench >/dev/null 2>&1; then
    apt_install postgresql-client
fi
if ! command -v cargo-nextest >/dev/null 2>&1 && ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest (from source)"
    cargo install cargo-nextest --locked >/dev/null
fi
