#!/usr/bin/env bash
# Real footage for the tests, from Debian's opencv-doc package (OpenCV's sample videos:
# pedestrians, a tree, an animation, a cup, a box), extracted into data/test-media/ without
# installing the package. Idempotent; scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/test-media
videos=(Megamind.avi tree.avi vtest.avi cup.mp4 box.mp4)
have=1
for v in "${videos[@]}"; do [[ -s $out/$v ]] || have=0; done
((have)) && exit 0
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "test-media: downloading opencv-doc (OpenCV's sample videos)"
if ! (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1); then
    # No package lists yet on this machine: fetch them, then try again.
    if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    (cd "$tmp" && apt-get download opencv-doc >/dev/null)
fi
dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb | tar -x -C "$tmp" \
    ./usr/share/doc/opencv-doc/examples/data/Megamind.avi \
    ./usr/share/doc/opencv-doc/examples/data/tree.avi \
    ./usr/share/doc/opencv-doc/examples/data/vtest.avi \
    ./usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz \
    ./usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz
for v in Megamind.avi tree.avi vtest.avi; do mv "$tmp/usr/share/doc/opencv-doc/examples/data/$v" "$out/$v"; done
for v in cup.mp4 box.mp4; do gunzip -c "$tmp/usr/share/doc/opencv-doc/opencv4/html/$v.gz" > "$out/$v"; done
