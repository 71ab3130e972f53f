/*
 * dropout.c -- inverted dropout with a stateless, counter-based mask.
 *
 * keep(i) = u(key, i) >= p with u = (splitmix64(key + i) >> 40) / 2^24, a
 * uniform draw on a 2^-24 grid; y = keep ? x / (1 - p) : 0. The mask is a
 * pure function of (key, i), so it is the same for any thread count, can be
 * recomputed in backward instead of stored, and the NumPy reference
 * (fastnn/reference/dropout.py) reproduces it bit for bit.
 * splitmix64: Steele, Lea & Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014.
 */
#include <math.h>
#include "fnn_internal.h"

#define splitmix64 fnn__splitmix64

uint64_t fnn_dropout_key(uint64_t seed, int64_t layer, int64_t counter) {
    return splitmix64(splitmix64(seed ^ splitmix64((uint64_t)layer)) + (uint64_t)counter);
}

/* y, x over [lo, hi): y = x * m(key); y may alias x. 64-bit multiplies, so
   the AVX-512 copy (vpmullq) is the one that gains most. */
static FNN_SIMD_CLONES void dropout_range(float *y, const float *x, float scale,
                                          uint64_t thresh, uint64_t key,
                                          int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        uint64_t u = splitmix64(key + (uint64_t)i) >> 40;
        y[i] = x[i] * (u >= thresh ? scale : 0.0f);
    }
}

/* y (n) = x * m(key), m in {0, 1/(1-p)}: a product, so NaN in x stays NaN
   as in PyTorch. Also the backward (x = dy). */
static fnn_status dropout_apply(float *y, const float *x, int64_t n, float p, uint64_t key) {
    if (n < 0) return FNN_ERR_SIZE;
    if (!(p >= 0.0f && p < 1.0f)) return FNN_ERR_ARG;
    if (n > 0 && (!y || !x)) return FNN_ERR_ARG;
    const float scale = 1.0f / (1.0f - p);
    /* keep iff the 24-bit draw >= ceil(p * 2^24), i.e. with probability 1 - p */
    const uint64_t thresh = (uint64_t)ceil((double)p * 16777216.0);
    int nt = fnn__threads_for(8.0 * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, dropout_range(y, x, scale, thresh, key, lo, hi));
    return FNN_OK;
}

fnn_status fnn_dropout_forward(float *y, const float *x, int64_t n, float p, uint64_t key) {
    return dropout_apply(y, x, n, p, key);
}

fnn_status fnn_dropout_backward(float *dx, const float *dy, int64_t n, float p, uint64_t key) {
    return dropout_apply(dx, dy, n, p, key);
}
