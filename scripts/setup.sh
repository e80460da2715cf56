#!/usr/bin/env bash
# Installs what building and running Switchyard needs on a fresh Debian machine, and nothing
# that is already there: PostgreSQL server binaries (>= 15) and cargo-nextest; for the studio,
# Node.js (>= 20) and npm, Chromium, and the studio's npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

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
# pg_trgm (search indexes, migrations/0016): contrib, shipped with Debian's postgresql-15; a
# distribution that splits contrib out has it in postgresql-contrib.
if ! compgen -G "/usr/share/postgresql/*/extension/pg_trgm.control" >/dev/null 2>&1 \
    && ! { command -v pg_config >/dev/null 2>&1 && [ -f "$(pg_config --sharedir)/extension/pg_trgm.control" ]; }; then
    echo "setup: installing postgresql-contrib (pg_trgm)"
    apt_install postgresql-contrib
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

# The studio (studio/): Node >= 20 with npm, Chromium for its end-to-end tests (Debian's, driven
# by playwright-core: no browser is downloaded), and its npm packages from the lockfile.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing Node.js and npm"
    apt_install nodejs
    command -v npm >/dev/null 2>&1 || apt_install npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "setup: the studio needs Node.js >= 20 (found $(node --version))" >&2
    exit 1
fi
if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then
    echo "setup: installing Chromium (the studio's end-to-end tests)"
    apt_install chromium
fi
# npm ci when the lockfile changed since the last install (it starts from an empty node_modules).
lock_hash=$(sha256sum studio/package-lock.json | cut -d' ' -f1)
if [ "$(cat studio/node_modules/.lock-hash 2>/dev/null)" != "$lock_hash" ]; then
    echo "setup: installing the studio's packages (npm ci)"
    (cd studio && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" > studio/node_modules/.lock-hash
fi
