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
    # the same checks with tiny cache blocks: every blocking loop (K over kc,
    # M over mc, N over nc) runs many times on these small shapes
    echo "== FASTNN_ISA=$isa FASTNN_GEMM_BLOCKS=1,16,1 (rounded up to one tile)"
    FASTNN_ISA=$isa FASTNN_GEMM_BLOCKS=1,16,1 "$out"
done
