#!/usr/bin/env bash
# Development build: compile the extension and drop it into fastnn/ so tests
# run from the source tree. Builds are serialised with flock, and the new .so
# replaces the old one by rename, so parallel sessions never see a half file.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>/tmp/fastnn_dev_build.lock
flock 9
# one build folder per source tree: worktrees never share stale objects
out=/tmp/fastnn_dev_build/$(pwd -P | md5sum | cut -c1-12)
python setup.py -q build_ext -b "$out/lib" -t "$out/tmp" "$@"
so=$(ls "$out"/lib/fastnn/_core*.so)
cp "$so" fastnn/.core_new.so
mv -f fastnn/.core_new.so "fastnn/$(basename "$so")"
echo "built fastnn/$(basename "$so")"
# the embeddable C library, header and fastnn.pc (fastnn.config), file by file
# the same way (symlinks stay symlinks)
(cd "$out/lib/fastnn" && find lib include \( -type f -o -type l \)) | while read -r f; do
    mkdir -p "fastnn/$(dirname "$f")"
    cp -a "$out/lib/fastnn/$f" "fastnn/$f.new"
    mv -f "fastnn/$f.new" "fastnn/$f"
done
echo "built fastnn/lib/libfastnn.* fastnn/include/fastnn.h"
