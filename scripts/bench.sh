#!/usr/bin/env bash
# Builds the release server and the load client, installs the npm sync server it is compared
# with, and runs the live-sync benchmark. Extra arguments go to the load client, e.g.
#   scripts/bench.sh --clients 10,100 --rate 1 --seconds 20
# Figures and how to read them: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd tests/bench && npm install --no-audit --no-fund --loglevel=error)
cargo build --locked --release -p moviola-server --bin moviola -p moviola-tests --bin bench_sync
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem/{print $2}') GiB"
exec target/release/bench_sync "$@"
