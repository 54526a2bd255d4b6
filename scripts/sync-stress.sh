#!/usr/bin/env bash
# The live-sync tests in a loop under CPU stress, with random delays between each socket and
# its project (the randomized test sets [limits] test_jitter_ms itself), for flakes that show
# only under load. Not part of CI (scripts/test.sh runs each test once).
#   scripts/sync-stress.sh [DURATION]    default 30m; e.g. 10m, 2h
# MOVIOLA_SYNC_ROUNDS (default here 200) sets the randomized test's length; a failing run
# prints its seed, which MOVIOLA_TEST_SEED replays; MOVIOLA_TEST_TRACE=1 prints each sync
# message of the Rust clients, MOVIOLA_LOG=moviola_actors::project=trace the server's.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-30m}
command -v stress-ng >/dev/null || {
    if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq stress-ng >/dev/null
}
cargo build --locked -p moviola-server --bin moviola
stress-ng --cpu "$(nproc)" --timeout 0 >/dev/null 2>&1 &
stress=$!
trap 'kill $stress 2>/dev/null || true' EXIT
MOVIOLA_SYNC_ROUNDS=${MOVIOLA_SYNC_ROUNDS:-200} cargo nextest run --locked --workspace --no-fail-fast \
    -E 'test(/^sync::/) | test(/^node::/) | test(/^bad_input::/)' --stress-duration "$duration"
