#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer over the whole test suite.
#
# Builds fastnn._core with -fsanitize=address,undefined into a private copy of
# the tree (never touching the in-place fastnn/_core*.so others use), then
# runs pytest there with the sanitizer runtimes preloaded (without the
# preload, import fails: "ASan runtime does not come first in initial library
# list"). Leak detection is off: CPython leaks by design. Any report aborts
# the run (halt_on_error / -fno-sanitize-recover), so exit 0 means clean.
#
#   bash .ci/sanitize.sh [pytest args...]     # default: the whole tests/ dir
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/fastnn_sanitize.XXXXXX)"
trap 'rm -rf "$work"' EXIT
PY="${PYTHON:-python}"
t0=$(date +%s)

# copy the source tree (tracked + untracked, minus build outputs and .so files)
tar -C "$src" --exclude=.git --exclude='*.so' --exclude=build --exclude=.venv \
    --exclude='fastnn/_core.c' --exclude=__pycache__ --exclude=.hypothesis -cf - . \
    | tar -C "$work" -xf -

flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g -std=c99 -ffp-contract=off -fno-strict-aliasing"
(cd "$work" && FASTNN_DEBUG_CFLAGS="$flags" \
    FASTNN_EXTRA_LDFLAGS="-fsanitize=address,undefined" \
    "$PY" setup.py -q build_ext --inplace -t "$work/build" >"$work/build.log" 2>&1) || {
    cat "$work/build.log" >&2; exit 2; }
t1=$(date +%s)
echo "sanitize: build $((t1 - t0)) s"
ldd "$work"/fastnn/_core*.so | grep -q libasan || { echo "not an ASan build" >&2; exit 2; }

export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:strict_init_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export FASTNN_HYPOTHESIS_PROFILE="${FASTNN_HYPOTHESIS_PROFILE:-ci}"
cd "$work"
rc=0
# -s so sanitizer reports are not swallowed by pytest's capture; -p no:cacheprovider
# keeps the copy clean. The log is scanned too: a report from a forked or
# sub-process must fail the run even if pytest itself passed.
"$PY" -m pytest -q -s -p no:cacheprovider "${@:-tests}" 2>&1 | tee "$work/pytest.log" || rc=$?
t2=$(date +%s)
if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$work/pytest.log"; then
    echo "sanitize: sanitizer reports found" >&2
    grep -nE -A30 "ERROR: AddressSanitizer|runtime error:" "$work/pytest.log" | head -80 >&2
    rc=${rc/#0/1}
fi
echo "sanitize: tests $((t2 - t1)) s, total $((t2 - t0)) s, exit $rc"
exit $rc
