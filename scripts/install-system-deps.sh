#!/usr/bin/env bash
# Install the Debian packages the test suite needs beyond Python: nginx (reverse-proxy tests),
# docker-compose (compose files are validated with `config`; there is no Docker engine here),
# Chromium + chromedriver (widget e2e tests), Redis (a local server and cluster nodes),
# psql (the Postgres init script is run against the test server), the PostgreSQL server
# binaries (the fault tests run private servers they stop and start) and PgBouncer (the
# transaction-pooler test starts its own).
#
# Idempotent: each package is checked with `command -v` first, and `apt-get update` runs only
# when at least one is missing, so a warm machine pays nothing. Needs root (or sudo) only when
# something must be installed.
set -euo pipefail

# binary-to-check:debian-package; the binary name differs from the package for a few.
required=(
    "nginx:nginx"
    "docker-compose:docker-compose"
    "chromium:chromium"
    "chromedriver:chromium-driver"
    "redis-server:redis-server"
    "redis-cli:redis-tools"
    "psql:postgresql-client"
    "pgbouncer:pgbouncer"
)

missing=()
for entry in "${required[@]}"; do
    binary="${entry%%:*}"
    package="${entry##*:}"
    # nginx, redis-server and pgbouncer live in /usr/sbin on some images, which is not on a user's PATH.
    if ! command -v "$binary" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$binary" ]; then
        missing+=("$package")
    fi
done

# The fault tests (tests/faults) start and stop PostgreSQL servers of their own: they need the
# server binaries (initdb, pg_ctl), which Debian keeps off the PATH.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=("postgresql")
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo env DEBIAN_FRONTEND=noninteractive)
fi

echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# apt and debconf chatter goes to a log that is shown only when the install fails.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { "${sudo_cmd[@]}" apt-get update -qq \
    && "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-system-deps: apt-get failed" >&2
    exit 1
fi
# The Debian nginx package starts a system-wide nginx on :80 where an init system exists; the
# tests run their own instances, so a stray daemon is only in the way. `|| true`: no init here.
if [[ " ${missing[*]} " == *" nginx "* ]]; then
    "${sudo_cmd[@]}" service nginx stop >/dev/null 2>&1 || true
fi
# Likewise the pgbouncer package's own daemon (:6432): the pooler test starts its own.
if [[ " ${missing[*]} " == *" pgbouncer "* ]]; then
    "${sudo_cmd[@]}" service pgbouncer stop >/dev/null 2>&1 || true
fi
