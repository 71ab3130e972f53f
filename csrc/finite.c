/*
 * finite.c -- fnn_all_finite: does an array hold only finite floats?
 *
 * The input check of every training step (NaN/Inf in X or y would turn every
 * weight into NaN): one pass, no allocation, vectorised. A float is finite
 * iff its exponent bits are not all ones; the loop ORs a flag per element
 * so it has no early exit and gcc vectorises it.
 */
#include <string.h>
#include "fnn_internal.h"

static FNN_SIMD_CLONES int all_finite_range(const float *x, int64_t lo, int64_t hi) {
    uint32_t bad = 0;
    for (int64_t i = lo; i < hi; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

/* [lo, hi) in blocks of FINITE_BLOCK floats (stay in cache, stop early on
   a bad block); *bad set by any thread stops the others at their next block. */
#define FINITE_BLOCK 65536
static void finite_blocks(const float *x, int64_t lo, int64_t hi, int *bad) {
    for (int64_t b = lo; b < hi; b += FINITE_BLOCK) {
        int seen;
#ifdef _OPENMP
#pragma omp atomic read
#endif
        seen = *bad;
        if (seen) return;
        int64_t e = hi - b > FINITE_BLOCK ? b + FINITE_BLOCK : hi;
        if (!all_finite_range(x, b, e)) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            *bad = 1;
            return;
        }
    }
}

int fnn_all_finite(const float *x, int64_t n) {
    if (n <= 0 || !x) return 1;
    /* memory-bound: a data set of 1M floats (4 MB) or more is read on every
       thread (fit checks its whole X and y once a call) */
    int bad = 0;
    const int nt = fnn__threads_for((double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, finite_blocks(x, lo, hi, &bad));
    return bad == 0;
}
