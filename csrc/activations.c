/*
 * activations.c -- forward/backward pairs of ReLU, LeakyReLU, Sigmoid, Tanh,
 * GELU (tanh approximation) and row-wise Softmax.
 *
 * Size letters: n elements (elementwise ops); N rows, C columns (softmax).
 * Forward: y = f(x). Backward: dx = dy * f'(x), dx OVERWRITTEN; f' is taken
 * from y where that is cheaper (sigmoid y(1-y), tanh 1-y^2). For the
 * elementwise ops dx may alias dy (so dx, dy carry no restrict).
 * IEEE semantics (no -ffast-math): NaN in x propagates to y, as numpy's
 * np.maximum does for ReLU. Backward of ReLU/LeakyReLU selects (like
 * PyTorch's threshold_backward): dx = x > 0 ? dy : slope * dy.
 * Threads: each thread takes a contiguous chunk of the elements (or softmax
 * rows), sized by fnn__threads_for so small arrays stay on one thread. Every
 * element is computed the same way on any thread, so results are bitwise
 * identical for every thread count.
 * SIMD: every loop is an FNN_SIMD_CLONES range function (AVX-512 / AVX2 /
 * baseline copies chosen at load time). exp and tanh come from vmath.h
 * (branch-free, <= 1.3 ulp, vectorised; libm's are opaque scalar calls, 8-10x
 * slower), so results are the same on every CPU and libm version. The
 * double-precision row sums of softmax stay sequential (vectorising would
 * reorder them).
 */
#include <math.h>
#include <string.h>
#include "fnn_internal.h"
#include "vmath.h"

/* Rough cost of one element in fnn__threads_for's unit, a GEMM flop
   (FNN_PAR_MIN_FLOPS of them are about 10 us of GEMM at 100 GFLOPS). ReLU
   measured 0.12 ns an element forward and 0.16 backward on 1 thread
   ((64, 6, 28, 28), LeNet's conv1 output), about 12-16 such flops: at 1.0,
   arrays under a million elements (100+ us) ran on one thread while the
   other waited. */
#define COST_CHEAP 10.0
#define COST_EXP 20.0

#define CHECK_N(n, ...) do {                                   \
        if ((n) < 0) return FNN_ERR_SIZE;                      \
        if ((n) > 0 && !(__VA_ARGS__)) return FNN_ERR_ARG;    \
    } while (0)

/* ------------------------------------------------------------------ ReLU */
/* y, x over [lo, hi); y may alias x */
static FNN_SIMD_CLONES void relu_fwd_range(float *y, const float *x, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] = fnn__reluf(x[i]);
}

/* dx, dy, x over [lo, hi); dx may alias dy */
static FNN_SIMD_CLONES void relu_bwd_range(float *dx, const float *dy, const float *x,
                                           int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        float g = dy[i];                 /* loads outside the select: vectorises */
        dx[i] = x[i] > 0.0f ? g : 0.0f;
    }
}

/* y, x (n) */
fnn_status fnn_relu_forward(float *y, const float *x, int64_t n) {
    CHECK_N(n, y && x);
    int nt = fnn__threads_for(COST_CHEAP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, relu_fwd_range(y, x, lo, hi));
    return FNN_OK;
}

/* dx, dy, x, y (n); y unused */
fnn_status fnn_relu_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n) {
    (void)y;
    CHECK_N(n, dx && dy && x);
    int nt = fnn__threads_for(COST_CHEAP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, relu_bwd_range(dx, dy, x, lo, hi));
    return FNN_OK;
}

/* ------------------------------------------------------------- LeakyReLU */
static FNN_SIMD_CLONES void leaky_fwd_range(float *y, const float *x, float slope,
                                            int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        float v = x[i];
        float pos = v > 0.0f ? v : 0.0f, neg = v > 0.0f ? 0.0f : v;
        y[i] = pos + slope * neg;   /* both selects, no branch: vectorises */
    }
}

static FNN_SIMD_CLONES void leaky_bwd_range(float *dx, const float *dy, const float *x,
                                            float slope, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        float g = dy[i];
        float pos = x[i] > 0.0f ? g : 0.0f, neg = x[i] > 0.0f ? 0.0f : g;
        dx[i] = pos + slope * neg;
    }
}

fnn_status fnn_leaky_relu_forward(float *y, const float *x, int64_t n, float slope) {
    CHECK_N(n, y && x);
    int nt = fnn__threads_for(COST_CHEAP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, leaky_fwd_range(y, x, slope, lo, hi));
    return FNN_OK;
}

fnn_status fnn_leaky_relu_backward(float *dx, const float *dy, const float *x,
                                   const float *y, int64_t n, float slope) {
    (void)y;
    CHECK_N(n, dx && dy && x);
    int nt = fnn__threads_for(COST_CHEAP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, leaky_bwd_range(dx, dy, x, slope, lo, hi));
    return FNN_OK;
}

/* --------------------------------------------------------------- Sigmoid */
static FNN_SIMD_CLONES void sigmoid_fwd_range(float *y, const float *x, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] = fnn__sigmoidf(x[i]);
}

fnn_status fnn_sigmoid_forward(float *y, const float *x, int64_t n) {
    CHECK_N(n, y && x);
    int nt = fnn__threads_for(COST_EXP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, sigmoid_fwd_range(y, x, lo, hi));
    return FNN_OK;
}

static FNN_SIMD_CLONES void sigmoid_bwd_range(float *dx, const float *dy, const float *y,
                                              int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

/* dx = dy * y * (1 - y); x unused */
fnn_status fnn_sigmoid_backward(float *dx, const float *dy, const float *x,
                                const float *y, int64_t n) {
    (void)x;
    CHECK_N(n, dx && dy && y);
    int nt = fnn__threads_for(COST_CHEAP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, sigmoid_bwd_range(dx, dy, y, lo, hi));
    return FNN_OK;
}

/* ------------------------------------------------------------------ Tanh */
static FNN_SIMD_CLONES void tanh_fwd_range(float *y, const float *x, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] = fnn__tanhf(x[i]);
}

fnn_status fnn_tanh_forward(float *y, const float *x, int64_t n) {
    CHECK_N(n, y && x);
    int nt = fnn__threads_for(COST_EXP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, tanh_fwd_range(y, x, lo, hi));
    return FNN_OK;
}

static FNN_SIMD_CLONES void tanh_bwd_range(float *dx, const float *dy, const float *y,
                                           int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* dx = dy * (1 - y^2); x unused */
fnn_status fnn_tanh_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n) {
    (void)x;
    CHECK_N(n, dx && dy && y);
    int nt = fnn__threads_for(COST_CHEAP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, tanh_bwd_range(dx, dy, y, lo, hi));
    return FNN_OK;
}

/* ------------------------------------------------------------------ GELU */
/* f(x) = 0.5 x (1 + tanh(u)), u = k0 (x + k1 x^3), k0 = sqrt(2/pi).
   Computed as x * sigmoid(2u) (the same function, since 1 + tanh(u) =
   2 sigmoid(2u)): no cancellation in 1 + tanh(u) for negative x.
   f'(x) = s + x s (1 - s) 2 k0 (1 + 3 k1 x^2), s = sigmoid(2u), where
   s (1 - s) = e / (1 + e)^2 with e = exp(-|2u|) avoids cancellation. */
#define GELU_K0 0.7978845608028654f
#define GELU_K1 0.044715f

static FNN_SIMD_CLONES void gelu_fwd_range(float *y, const float *x, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        float v = x[i];
        float u2 = 2.0f * GELU_K0 * (v + GELU_K1 * v * v * v);
        y[i] = v * fnn__sigmoidf(u2);
    }
}

fnn_status fnn_gelu_forward(float *y, const float *x, int64_t n) {
    CHECK_N(n, y && x);
    int nt = fnn__threads_for(COST_EXP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, gelu_fwd_range(y, x, lo, hi));
    return FNN_OK;
}

static FNN_SIMD_CLONES void gelu_bwd_range(float *dx, const float *dy, const float *x,
                                           int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        float v = x[i];
        float u2 = 2.0f * GELU_K0 * (v + GELU_K1 * v * v * v);
        float e = fnn__expf(-fabsf(u2)), q = 1.0f / (1.0f + e);
        float s = u2 >= 0.0f ? q : e * q;
        float s1s = e * q * q;               /* s (1 - s), without cancellation */
        float du2 = 2.0f * GELU_K0 * (1.0f + 3.0f * GELU_K1 * v * v);
        dx[i] = dy[i] * (s + v * s1s * du2);
    }
}

/* dx = dy * f'(x); y unused */
fnn_status fnn_gelu_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n) {
    (void)y;
    CHECK_N(n, dx && dy && x);
    int nt = fnn__threads_for(COST_EXP * (double)n);
    FNN_PARALLEL_RANGES(nt, n, lo, hi, gelu_bwd_range(dx, dy, x, lo, hi));
    return FNN_OK;
}

/* --------------------------------------------------------------- Softmax */
/* Max of xi (C >= 1) as the loop `m = xi[j] > m ? xi[j] : m` from
   m = xi[0] computes it, but in SOFTMAX_LANES independent lanes (each a
   `>`-select, i.e. maxps). Every lane starts at xi[0], so, as in the
   sequential loop, a NaN is never taken (x > m is false) unless xi[0] is
   NaN, and then every lane stays NaN. Otherwise m is the largest non-NaN
   value whatever the order, except that a tie of -0 and +0 may pick the
   other zero, which changes no x - m (x +- 0 == x, and +-0 - +-0 == +-0
   gives exp == 1). So every y is bitwise the one the sequential loop gives,
   except that in an all-NaN row the sign of a NaN may differ: when two NaNs
   meet in yi[j] * inv, which one comes out depends on the operand order the
   compiler picks (IEEE 754 leaves it open). */
#define SOFTMAX_LANES 16
static inline float row_max(const float *xi, int64_t C) {
    float m = xi[0];
    int64_t j = 1;
    if (C > SOFTMAX_LANES) {
        float lane[SOFTMAX_LANES];
        for (int k = 0; k < SOFTMAX_LANES; k++) lane[k] = m;
        for (; j + SOFTMAX_LANES <= C; j += SOFTMAX_LANES)
            for (int k = 0; k < SOFTMAX_LANES; k++)
                lane[k] = xi[j + k] > lane[k] ? xi[j + k] : lane[k];
        for (int k = 0; k < SOFTMAX_LANES; k++) m = lane[k] > m ? lane[k] : m;
    }
    for (; j < C; j++) m = xi[j] > m ? xi[j] : m;
    return m;
}

/* One row: yi, xi (C). */
static FNN_SIMD_CLONES void softmax_fwd_row(float *yi, const float *xi, int64_t C) {
    float m = row_max(xi, C);
    for (int64_t j = 0; j < C; j++) yi[j] = fnn__expf(xi[j] - m);
    double sum = 0.0;
    for (int64_t j = 0; j < C; j++) sum += yi[j];
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < C; j++) yi[j] *= inv;
}

/* y, x (N, C): y[i, :] = exp(x[i, :] - max_i) / sum; the sum in double.
   A NaN anywhere in a row makes the whole row NaN. */
fnn_status fnn_softmax_forward(float *y, const float *x, int64_t N, int64_t C) {
    if (fnn__check_2d(N, C)) return FNN_ERR_SIZE;
    if (N == 0 || C == 0) return FNN_OK;
    if (!y || !x) return FNN_ERR_ARG;
    int nt = fnn__threads_for(COST_EXP * (double)N * (double)C);
    int64_t i;
    FNN_PARALLEL_FOR(nt, i, N, softmax_fwd_row(y + i * C, x + i * C, C));
    return FNN_OK;
}

/* One row: dxi, dyi, yi (C); dxi may alias dyi (the dot is taken first). */
static FNN_SIMD_CLONES void softmax_bwd_row(float *dxi, const float *dyi, const float *yi,
                                            int64_t C) {
    double dot = 0.0;
    for (int64_t j = 0; j < C; j++) dot += (double)dyi[j] * yi[j];
    float fdot = (float)dot;
    for (int64_t j = 0; j < C; j++) dxi[j] = yi[j] * (dyi[j] - fdot);
}

/* dx, dy, y (N, C): dx[i, j] = y[i, j] (dy[i, j] - sum_k dy[i, k] y[i, k]).
   The row's dot product is taken before the row is written, so dx may
   alias dy here too (the bridge still rejects it); x unused. */
fnn_status fnn_softmax_backward(float *dx, const float *dy, const float *x,
                                const float *y, int64_t N, int64_t C) {
    (void)x;
    if (fnn__check_2d(N, C)) return FNN_ERR_SIZE;
    if (N == 0 || C == 0) return FNN_OK;
    if (!dx || !dy || !y) return FNN_ERR_ARG;
    int nt = fnn__threads_for(4.0 * (double)N * (double)C);
    int64_t i;
    FNN_PARALLEL_FOR(nt, i, N, softmax_bwd_row(dx + i * C, dy + i * C, y + i * C, C));
    return FNN_OK;
}
