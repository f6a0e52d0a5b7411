#!/usr/bin/env bash
# Run sluice's test suite — the one documented test command.
#
#   scripts/test.sh                # full suite: every target, then doc tests
#   scripts/test.sh --test it pg   # any other `cargo test` arguments
#
# First installs what the tests need and the machine lacks (Debian/Ubuntu,
# via apt-get; sudo only when not root):
#   * PostgreSQL server binaries (initdb, pg_ctl, postgres), unless an initdb
#     exists under /usr/lib/postgresql/*/bin, SLUICE_PG_BINDIR is set, or
#     SLUICE_TEST_DATABASE_URL points the tests at an existing server;
#   * Debian `chromium` for the docs-site browser tests, unless /usr/bin/chromium exists.
# Works non-interactively from a fresh clone (e.g. CI=true).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '==> %s\n' "$*" >&2; }

# Run a command as root: directly, or through sudo (never prompting under CI).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [ "${CI:-}" = "true" ]; then
            sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
        else
            sudo env DEBIAN_FRONTEND=noninteractive "$@"
        fi
    else
        log "need root to run: $* (and sudo is not installed)"
        return 1
    fi
}

apt_updated=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not available; install $* yourself (see README)"
        return 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root apt-get install -y -qq --no-install-recommends "$@"
}

have_pg_server() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if [ -n "${SLUICE_TEST_DATABASE_URL:-}" ] || [ -n "${SLUICE_PG_BINDIR:-}" ]; then
    log "PostgreSQL: using ${SLUICE_TEST_DATABASE_URL:+SLUICE_TEST_DATABASE_URL}${SLUICE_PG_BINDIR:+SLUICE_PG_BINDIR=$SLUICE_PG_BINDIR}"
elif ! have_pg_server; then
    log "PostgreSQL server not found under /usr/lib/postgresql/*/bin; installing"
    apt_install postgresql-15 || apt_install postgresql
    have_pg_server || { log "PostgreSQL server install failed"; exit 1; }
fi

if [ ! -x /usr/bin/chromium ]; then
    log "chromium not found at /usr/bin/chromium; installing (docs-site browser tests)"
    apt_install chromium
fi

# Keep a copy of the output so the runner's summary lines can be repeated at the end.
output="$(mktemp "${TMPDIR:-/tmp}/sluice-test.XXXXXX")"
summary() {
    local status=$?
    echo
    echo "==> test summary"
    # Which binary ran, its result line, and any failed test or cargo error.
    grep -E '^ +(Running|Doc-tests) |^test result:|^test .* \.\.\. FAILED$|^error' "$output" || true
    rm -f "$output"
    if [ "$status" -eq 0 ]; then echo "==> all tests passed"; else echo "==> tests FAILED (exit $status)"; fi
}
trap summary EXIT

if [ "$#" -gt 0 ]; then
    cargo test "$@" 2>&1 | tee -a "$output"
else
    # --all-targets covers lib, bins and the `it` integration binary (not doc tests).
    cargo test --all-targets 2>&1 | tee -a "$output"
    cargo test --doc 2>&1 | tee -a "$output"
fi
