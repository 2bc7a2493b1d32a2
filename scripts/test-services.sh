#!/usr/bin/env bash
# Start the system services a few tests need, on Debian or Ubuntu; each is optional.
#
#   source scripts/test-services.sh              # both; exports SKPERCEPT_TEST_POSTGRES_URL
#   source scripts/test-services.sh postgres     # only PostgreSQL (or: chromium)
#   eval "$(scripts/test-services.sh)"           # the same from a script run as a command
#
# chromium  headless Chromium and its driver (apt packages chromium, chromium-driver): the
#           contact-sheet test (tests/photos/test_photos.py) renders a page in it, and the
#           documentation check (docs/check_site.py) drives it.
# postgres  a PostgreSQL server with a throwaway user and database, both 'skpercept_test': the
#           tuning-worker tests (tests/model_selection/test_workers.py, storage 'postgresql')
#           read its address from SKPERCEPT_TEST_POSTGRES_URL. As root: the first cluster of
#           Debian's postgresql package, installed and started if needed (the role and the
#           database are dropped and created again). As another user: a private cluster in
#           $SKPERCEPT_TEST_PGDATA (default /tmp/skpercept-test-pg-$UID) on port
#           $SKPERCEPT_TEST_PGPORT (default 55432), from the installed server binaries; nothing
#           system-wide is touched.
#
# Installing packages needs root or password-less sudo. Whatever cannot be done is said on
# stderr with the tests that will skip, and the rest goes on: sourced, it never stops the
# calling shell, even one running with `set -euo pipefail` (as .ci/run does). Run as a command,
# it prints the export line on stdout and exits 1 if a service could not be started.

_skpercept_say() { echo "test-services: $*" >&2; }

# The command prefix that runs a command as root: nothing, sudo -n, or fail.
_skpercept_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# apt-get install [options] packages, quietly; says why when it cannot.
_skpercept_apt_install() {
    command -v apt-get >/dev/null 2>&1 || { _skpercept_say "no apt-get: install $* yourself"; return 1; }
    if ! _skpercept_as_root true 2>/dev/null; then
        _skpercept_say "installing $* needs root or password-less sudo"
        return 1
    fi
    _skpercept_say "installing $* (apt-get) ..."
    { _skpercept_as_root apt-get update -qq \
        && _skpercept_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } \
        >/dev/null 2>&1 || { _skpercept_say "apt-get could not install $*"; return 1; }
}

_skpercept_chromium() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        _skpercept_apt_install chromium chromium-driver || return 1
    fi
    _skpercept_say "chromium: $(command -v chromium), driver $(command -v chromedriver)"
}

# The Debian cluster, run by root (as .ci/run did before this script).
_skpercept_postgres_cluster() {
    local version cluster port rest
    if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
        version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
        pg_createcluster "$version" main >/dev/null || return 1
    fi
    read -r version cluster port rest <<<"$(pg_lsclusters -h | head -n 1)"
    pg_ctlcluster "$version" "$cluster" status >/dev/null 2>&1 \
        || pg_ctlcluster "$version" "$cluster" start || return 1
    (cd / && su postgres -s /bin/sh -c "psql -q -p $port -v ON_ERROR_STOP=1") <<'SQL' || return 1
SET client_min_messages = warning;
DROP DATABASE IF EXISTS skpercept_test;
DROP ROLE IF EXISTS skpercept_test;
CREATE ROLE skpercept_test LOGIN PASSWORD 'skpercept_test';
CREATE DATABASE skpercept_test OWNER skpercept_test;
SQL
    _skpercept_url="postgresql+psycopg://skpercept_test:skpercept_test@localhost:$port/skpercept_test"
    _skpercept_say "PostgreSQL $version (cluster $cluster) on port $port"
}

# A private cluster owned by the calling user: initdb refuses to run as root, which needs none.
_skpercept_postgres_private() {
    local bin data port
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$bin/initdb" ] || { _skpercept_say "no PostgreSQL server binaries under /usr/lib/postgresql"; return 1; }
    data=${SKPERCEPT_TEST_PGDATA:-${TMPDIR:-/tmp}/skpercept-test-pg-$(id -u)}
    port=${SKPERCEPT_TEST_PGPORT:-55432}
    if [ ! -f "$data/PG_VERSION" ]; then
        "$bin/initdb" -D "$data" -U skpercept_test --auth=trust -E UTF8 >/dev/null || return 1
    fi
    if ! "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
            -o "-p $port -k $data -c listen_addresses=localhost" start >/dev/null \
            || { _skpercept_say "the server did not start; see $data/server.log"; return 1; }
    fi
    "$bin/dropdb" --if-exists -h localhost -p "$port" -U skpercept_test skpercept_test 2>/dev/null
    "$bin/createdb" -h localhost -p "$port" -U skpercept_test skpercept_test || return 1
    _skpercept_url="postgresql+psycopg://skpercept_test@localhost:$port/skpercept_test"
    _skpercept_say "PostgreSQL in $data on port $port (stop it: $bin/pg_ctl -D $data stop)"
}

_skpercept_postgres() {
    if [ -n "${SKPERCEPT_TEST_POSTGRES_URL:-}" ]; then
        _skpercept_say "SKPERCEPT_TEST_POSTGRES_URL is already set; using it"
        return 0
    fi
    if ! command -v pg_lsclusters >/dev/null 2>&1 && ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
        _skpercept_apt_install --no-install-recommends postgresql || return 1
    fi
    _skpercept_url=""
    if [ "$(id -u)" = 0 ]; then
        _skpercept_postgres_cluster || return 1
    else
        _skpercept_postgres_private || return 1
    fi
    export SKPERCEPT_TEST_POSTGRES_URL="$_skpercept_url"
}

_skpercept_services() {
    local service failed=0 start=$SECONDS
    for service in ${*:-chromium postgres}; do
        case "$service" in
        chromium)
            _skpercept_chromium || {
                failed=1
                _skpercept_say "no headless Chromium: the contact-sheet test will skip and docs/check_site.py cannot run"
            } ;;
        postgres)
            _skpercept_postgres || {
                failed=1
                _skpercept_say "no PostgreSQL: the 2 'postgresql' tests of tests/model_selection/test_workers.py will skip"
            } ;;
        *)
            failed=1
            _skpercept_say "unknown service '$service' (chromium, postgres)" ;;
        esac
    done
    _skpercept_say "done in $((SECONDS - start)) s"
    return "$failed"
}

if (return 0 2>/dev/null); then
    # Sourced: never stop the calling shell, whatever its options.
    _skpercept_services "$@" || true
else
    if _skpercept_services "$@"; then _skpercept_status=0; else _skpercept_status=1; fi
    if [ -n "${SKPERCEPT_TEST_POSTGRES_URL:-}" ]; then
        printf 'export SKPERCEPT_TEST_POSTGRES_URL=%q\n' "$SKPERCEPT_TEST_POSTGRES_URL"
    fi
    exit "$_skpercept_status"
fi
unset -f _skpercept_say _skpercept_as_root _skpercept_apt_install _skpercept_chromium \
    _skpercept_postgres_cluster _skpercept_postgres_private _skpercept_postgres _skpercept_services
unset _skpercept_url
