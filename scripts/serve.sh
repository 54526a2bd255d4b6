#!/usr/bin/env bash
# Sets up what Moviola needs and starts the studio on its embedded defaults: SQLite and media
# under ./data, listening on http://127.0.0.1:8080. Extra arguments go to `moviola serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --locked --release -p moviola-server --bin moviola -- serve "$@"
