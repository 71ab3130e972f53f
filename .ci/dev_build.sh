#!/usr/bin/env bash
# Development build: compile the extension and drop it into fastnn/ so tests
# run from the source tree. Builds are serialised with flock, and the new .so
# replaces the old one by rename, so parallel sessions never see a half file.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>/tmp/fastnn_dev_build.lock
flock 9
out=/tmp/fastnn_dev_build
python setup.py -q build_ext -b "$out/lib" -t "$out/tmp" "$@"
so=$(ls "$out"/lib/fastnn/_core*.so)
cp "$so" fastnn/.core_new.so
mv -f fastnn/.core_new.so "fastnn/$(basename "$so")"
echo "built fastnn/$(basename "$so")"
