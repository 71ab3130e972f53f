#!/usr/bin/env bash
# Build tests/c/test_core.c against csrc/ alone (no Python) and run it once
# per FASTNN_ISA value. Extra compiler flags may come in CFLAGS
# (e.g. CFLAGS="-fsanitize=address,undefined -g").
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${TMPDIR:-/tmp}/fastnn_test_core
cc=${CC:-gcc}
$cc -O2 -std=c99 -fopenmp ${CFLAGS:-} -Icsrc tests/c/test_core.c \
    csrc/*.c -lm -o "$out"   # the whole core links without Python
for isa in generic avx2 avx512; do
    echo "== FASTNN_ISA=$isa"
    FASTNN_ISA=$isa "$out"
done
