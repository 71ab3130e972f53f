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

int fnn_all_finite(const float *x, int64_t n) {
    if (n <= 0 || !x) return 1;
    /* blocks of 64 Ki floats: stop early on a bad block, and stay in cache */
    for (int64_t lo = 0; lo < n; lo += 65536) {
        int64_t hi = n - lo > 65536 ? lo + 65536 : n;
        if (!all_finite_range(x, lo, hi)) return 0;
    }
    return 1;
}
