/*
 * optim.c -- in-place optimizer updates over flat buffers of P floats:
 * SGD (momentum, dampening, Nesterov), Adam / AdamW, RMSprop, AdaGrad.
 *
 * Update rules follow PyTorch's torch.optim (the pseudo-code in each class's
 * documentation, https://pytorch.org/docs/stable/optim.html) operation by
 * operation, in float32 like PyTorch's CPU kernels; scalar factors that
 * depend on `step` (Adam's bias corrections, AdaGrad's decayed rate) are
 * computed in double and rounded once. `step` is 1-based.
 *
 * lr == 0: the state buffers are updated as usual but params are not
 * written, so they stay bitwise unchanged (p - 0 * g could turn -0 into +0,
 * or NaN in, with an infinite g).
 * Elementwise, so the result is bitwise identical for every thread count.
 *
 * Speed: each update is a FNN_SIMD_CLONES range function (AVX-512 / AVX2 /
 * baseline copies) that each thread calls on its chunk. The flags that are
 * fixed for a call (weight decay on, momentum, first step, Nesterov) are
 * constant arguments of an always-inline body, so every variant becomes its
 * own branch-free loop that vectorises; each variant does the same float
 * operations, in the same order, as the single generic loop it replaced.
 */
#include <math.h>
#include "fnn_internal.h"

/* Shared argument checks: sizes, pointers (NULL allowed when P == 0), step. */
static fnn_status check_flat(int64_t P, int64_t step, const void *params,
                             const void *grads, const void *state) {
    if (P < 0) return FNN_ERR_SIZE;
    if (step < 1) return FNN_ERR_ARG;
    if (P > 0 && (!params || !grads || !state)) return FNN_ERR_ARG;
    return FNN_OK;
}

/* Cost of one parameter in fnn__threads_for's unit (a GEMM flop, see
   csrc/activations.c's COST_CHEAP), from the updates measured on 1 thread
   at P = 61,706 (LeNet-5): SGD 0.10 ns, with momentum 0.15, Adam 0.32,
   RMSprop and AdaGrad 0.31. At the earlier guesses (5-12) LeNet's Adam
   (20 us) ran on one thread while the other waited. */
#define COST_SGD 10.0
#define COST_SGD_MOMENTUM 15.0
#define COST_ADAM 32.0
#define COST_RMSPROP 30.0
#define COST_ADAGRAD 30.0

/* ------------------------------------------------------------------ SGD */
typedef struct {
    float lr, wd, momentum, damp;
} sgd_coef;

/* One variant of the SGD loop over [lo, hi); the int flags are constants. */
static FNN_ALWAYS_INLINE void sgd_body(float *FNN_RESTRICT p, float *FNN_RESTRICT b,
                                       const float *FNN_RESTRICT gr, int64_t lo, int64_t hi,
                                       sgd_coef c, const int use_wd, const int use_mom,
                                       const int first, const int nesterov, const int write_p) {
    for (int64_t i = lo; i < hi; i++) {
        float g = gr[i];
        if (use_wd) g += c.wd * p[i];
        if (use_mom) {
            b[i] = first ? g : c.momentum * b[i] + c.damp * g;
            g = nesterov ? g + c.momentum * b[i] : b[i];
        }
        if (write_p) p[i] -= c.lr * g;
    }
}

/* params, buf, grads over [lo, hi): picks the variant, then one loop.
   lr == 0 (rare) runs one loop with the flags left as variables. */
static FNN_SIMD_CLONES void sgd_range(float *FNN_RESTRICT p, float *FNN_RESTRICT b,
                                      const float *FNN_RESTRICT gr, int64_t lo, int64_t hi,
                                      sgd_coef c, int use_wd, int use_mom, int first,
                                      int nesterov, int write_p) {
#define SGD_WD(MOM, FIRST, NEST)                                               \
    do {                                                                       \
        if (use_wd) sgd_body(p, b, gr, lo, hi, c, 1, MOM, FIRST, NEST, 1);     \
        else sgd_body(p, b, gr, lo, hi, c, 0, MOM, FIRST, NEST, 1);            \
    } while (0)
    if (!write_p) sgd_body(p, b, gr, lo, hi, c, use_wd, use_mom, first, nesterov, 0);
    else if (!use_mom) SGD_WD(0, 0, 0);
    else if (first) { if (nesterov) SGD_WD(1, 1, 1); else SGD_WD(1, 1, 0); }
    else            { if (nesterov) SGD_WD(1, 0, 1); else SGD_WD(1, 0, 0); }
#undef SGD_WD
}

/* params, buf, grads (P). buf may be NULL when momentum == 0.
   g = grad + wd p; buf = g (step 1) or momentum buf + (1 - dampening) g;
   g = nesterov ? g + momentum buf : buf; p -= lr g. */
fnn_status fnn_sgd_update(float *params, float *buf, const float *grads, int64_t P,
                          int64_t step, float lr, float momentum, float dampening,
                          float weight_decay, int nesterov) {
    int use_mom = momentum != 0.0f;
    fnn_status s = check_flat(P, step, params, grads, use_mom ? (const void *)buf : params);
    if (s != FNN_OK) return s;
    const int first = step == 1, write_p = lr != 0.0f, use_wd = weight_decay != 0.0f;
    if (!use_mom && !write_p) return FNN_OK;      /* no state, params unchanged */
    const sgd_coef c = {lr, weight_decay, momentum, 1.0f - dampening};
    int nt = fnn__threads_for((use_mom ? COST_SGD_MOMENTUM : COST_SGD) * (double)P);
    FNN_PARALLEL_RANGES(nt, P, lo, hi,
        sgd_range(params, buf, grads, lo, hi, c, use_wd, use_mom, first,
                  nesterov != 0, write_p));
    return FNN_OK;
}

/* ----------------------------------------------------------------- Adam */
typedef struct {
    float l2, decay, beta1, beta2, c1, c2, step_size, inv_bc2_sqrt, eps;
} adam_coef;

/* One variant of the Adam loop over [lo, hi); the int flags are constants. */
static FNN_ALWAYS_INLINE void adam_body(float *FNN_RESTRICT p, float *FNN_RESTRICT mm,
                                        float *FNN_RESTRICT vv, const float *FNN_RESTRICT gr,
                                        int64_t lo, int64_t hi, adam_coef c,
                                        const int use_l2, const int decay_p, const int write_p) {
    for (int64_t i = lo; i < hi; i++) {
        float g = gr[i];
        if (use_l2) g += c.l2 * p[i];
        mm[i] = c.beta1 * mm[i] + c.c1 * g;
        vv[i] = c.beta2 * vv[i] + c.c2 * g * g;
        if (write_p) {
            float pi = decay_p ? p[i] * c.decay : p[i];
            /* one square root and one division an element (both use the
               divider): with parameters in L2 this took the loop from 0.54
               to 0.38 ns a parameter; from L3 it is bandwidth-bound and the
               same either way */
            float denom = sqrtf(vv[i]) * c.inv_bc2_sqrt + c.eps;
            p[i] = pi - (c.step_size * mm[i]) / denom;
        }
    }
}

static FNN_SIMD_CLONES void adam_range(float *FNN_RESTRICT p, float *FNN_RESTRICT mm,
                                       float *FNN_RESTRICT vv, const float *FNN_RESTRICT gr,
                                       int64_t lo, int64_t hi, adam_coef c,
                                       int use_l2, int decay_p, int write_p) {
    if (!write_p) adam_body(p, mm, vv, gr, lo, hi, c, use_l2, 0, 0);
    else if (use_l2) {
        adam_body(p, mm, vv, gr, lo, hi, c, 1, 0, 1);
    } else if (decay_p) {
        adam_body(p, mm, vv, gr, lo, hi, c, 0, 1, 1);
    } else {
        adam_body(p, mm, vv, gr, lo, hi, c, 0, 0, 1);
    }
}

/* params, m, v, grads (P).
   decoupled (AdamW): p *= 1 - lr wd; else g += wd p;
   m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
   p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps), the division
   by sqrt(1 - b2^t) taken as a product with its reciprocal (rounded once,
   in double). */
fnn_status fnn_adam_update(float *params, float *m, float *v, const float *grads,
                           int64_t P, int64_t step, float lr, float beta1, float beta2,
                           float eps, float weight_decay, int decoupled) {
    fnn_status s = check_flat(P, step, params, grads, m);
    if (s != FNN_OK) return s;
    if (P > 0 && !v) return FNN_ERR_ARG;
    const double t = (double)step;
    adam_coef c;
    c.step_size = (float)((double)lr / (1.0 - pow((double)beta1, t)));
    c.inv_bc2_sqrt = (float)(1.0 / sqrt(1.0 - pow((double)beta2, t)));
    c.decay = (float)(1.0 - (double)lr * (double)weight_decay);
    c.l2 = decoupled ? 0.0f : weight_decay;
    c.beta1 = beta1;
    c.beta2 = beta2;
    c.c1 = 1.0f - beta1;
    c.c2 = 1.0f - beta2;
    c.eps = eps;
    const int use_l2 = c.l2 != 0.0f;
    const int decay_p = decoupled && weight_decay != 0.0f, write_p = lr != 0.0f;
    int nt = fnn__threads_for(COST_ADAM * (double)P);
    FNN_PARALLEL_RANGES(nt, P, lo, hi,
        adam_range(params, m, v, grads, lo, hi, c, use_l2, decay_p, write_p));
    return FNN_OK;
}

/* -------------------------------------------------------------- RMSprop */
typedef struct {
    float lr, wd, alpha, c, eps, momentum;
} rmsprop_coef;

/* One variant of the RMSprop loop over [lo, hi); the int flags are constants. */
static FNN_ALWAYS_INLINE void rmsprop_body(float *FNN_RESTRICT p, float *FNN_RESTRICT q,
                                           float *FNN_RESTRICT b, const float *FNN_RESTRICT gr,
                                           int64_t lo, int64_t hi, rmsprop_coef c,
                                           const int use_wd, const int use_mom,
                                           const int write_p) {
    for (int64_t i = lo; i < hi; i++) {
        float g = gr[i];
        if (use_wd) g += c.wd * p[i];
        q[i] = c.alpha * q[i] + c.c * g * g;
        float avg = sqrtf(q[i]) + c.eps;
        float step_i;
        if (use_mom) {
            b[i] = c.momentum * b[i] + g / avg;
            step_i = c.lr * b[i];
        } else {
            step_i = c.lr * g / avg;
        }
        if (write_p) p[i] -= step_i;
    }
}

static FNN_SIMD_CLONES void rmsprop_range(float *FNN_RESTRICT p, float *FNN_RESTRICT q,
                                          float *FNN_RESTRICT b, const float *FNN_RESTRICT gr,
                                          int64_t lo, int64_t hi, rmsprop_coef c,
                                          int use_wd, int use_mom, int write_p) {
#define RMS_WD(MOM, WP)                                                        \
    do {                                                                       \
        if (use_wd) rmsprop_body(p, q, b, gr, lo, hi, c, 1, MOM, WP);          \
        else rmsprop_body(p, q, b, gr, lo, hi, c, 0, MOM, WP);                 \
    } while (0)
    if (!write_p) rmsprop_body(p, q, b, gr, lo, hi, c, use_wd, use_mom, 0);
    else if (use_mom) RMS_WD(1, 1);
    else RMS_WD(0, 1);
#undef RMS_WD
}

/* params, sq, buf, grads (P). buf may be NULL when momentum == 0.
   g += wd p; sq = alpha sq + (1 - alpha) g^2; a = sqrt(sq) + eps;
   momentum > 0: buf = momentum buf + g / a, p -= lr buf; else p -= lr g / a. */
fnn_status fnn_rmsprop_update(float *params, float *sq, float *buf, const float *grads,
                              int64_t P, int64_t step, float lr, float alpha, float eps,
                              float weight_decay, float momentum) {
    fnn_status s = check_flat(P, step, params, grads, sq);
    if (s != FNN_OK) return s;
    const int use_mom = momentum > 0.0f, write_p = lr != 0.0f;
    if (P > 0 && use_mom && !buf) return FNN_ERR_ARG;
    const int use_wd = weight_decay != 0.0f;
    const rmsprop_coef c = {lr, weight_decay, alpha, 1.0f - alpha, eps, momentum};
    int nt = fnn__threads_for(COST_RMSPROP * (double)P);
    FNN_PARALLEL_RANGES(nt, P, lo, hi,
        rmsprop_range(params, sq, buf, grads, lo, hi, c, use_wd, use_mom, write_p));
    return FNN_OK;
}

/* -------------------------------------------------------------- AdaGrad */
/* One variant of the AdaGrad loop over [lo, hi); the int flags are constants. */
static FNN_ALWAYS_INLINE void adagrad_body(float *FNN_RESTRICT p, float *FNN_RESTRICT acc,
                                           const float *FNN_RESTRICT gr, int64_t lo,
                                           int64_t hi, float clr, float eps, float wd,
                                           const int use_wd, const int write_p) {
    for (int64_t i = lo; i < hi; i++) {
        float g = gr[i];
        if (use_wd) g += wd * p[i];
        acc[i] += g * g;
        if (write_p) p[i] -= clr * g / (sqrtf(acc[i]) + eps);
    }
}

static FNN_SIMD_CLONES void adagrad_range(float *FNN_RESTRICT p, float *FNN_RESTRICT acc,
                                          const float *FNN_RESTRICT gr, int64_t lo,
                                          int64_t hi, float clr, float eps, float wd,
                                          int use_wd, int write_p) {
    if (!write_p) adagrad_body(p, acc, gr, lo, hi, clr, eps, wd, use_wd, 0);
    else if (use_wd) adagrad_body(p, acc, gr, lo, hi, clr, eps, wd, 1, 1);
    else adagrad_body(p, acc, gr, lo, hi, clr, eps, wd, 0, 1);
}

/* params, sum, grads (P).
   g += wd p; clr = lr / (1 + (t - 1) lr_decay); sum += g^2;
   p -= clr g / (sqrt(sum) + eps). */
fnn_status fnn_adagrad_update(float *params, float *sum, const float *grads, int64_t P,
                              int64_t step, float lr, float lr_decay, float eps,
                              float weight_decay) {
    fnn_status s = check_flat(P, step, params, grads, sum);
    if (s != FNN_OK) return s;
    const float clr = (float)((double)lr / (1.0 + (double)(step - 1) * (double)lr_decay));
    const int write_p = lr != 0.0f, use_wd = weight_decay != 0.0f;
    int nt = fnn__threads_for(COST_ADAGRAD * (double)P);
    FNN_PARALLEL_RANGES(nt, P, lo, hi,
        adagrad_range(params, sum, grads, lo, hi, clr, eps, weight_decay, use_wd, write_p));
    return FNN_OK;
}

/* --------------------------------------------------------- clip grad norm */
#define CLIP_BLOCKS 64

/* Sum of squares of g over [lo, hi) in double, sequential. */
static double sumsq_range(const float *g, int64_t lo, int64_t hi) {
    double s = 0.0;
    for (int64_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
    return s;
}

static FNN_SIMD_CLONES void scale_range(float *g, float c, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) g[i] *= c;
}

/* grads (P). The L2 norm is the square root of CLIP_BLOCKS fixed-block sums
   of squares (double) added in block order: the same bits for every thread
   count. PyTorch's clip_grad_norm_: coef = max_norm / (norm + 1e-6), and if
   coef < 1 the gradients are multiplied by it (a NaN norm makes them NaN). */
fnn_status fnn_clip_grad_norm(float *grads, int64_t P, float max_norm, double *norm) {
    if (P < 0) return FNN_ERR_SIZE;
    if (!(max_norm > 0.0f) || (P > 0 && !grads)) return FNN_ERR_ARG;
    double part[CLIP_BLOCKS];
    int nt = fnn__threads_for(2.0 * (double)P);
    int64_t k;
    FNN_PARALLEL_FOR(nt, k, CLIP_BLOCKS,
                     part[k] = sumsq_range(grads, P * k / CLIP_BLOCKS,
                                           P * (k + 1) / CLIP_BLOCKS));
    double total = 0.0;
    for (k = 0; k < CLIP_BLOCKS; k++) total += part[k];
    total = sqrt(total);
    if (norm) *norm = total;
    double coef = (double)max_norm / (total + 1e-6);
    if (!(coef >= 1.0)) {
        float c = (float)coef;
        FNN_PARALLEL_RANGES(nt, P, lo, hi, scale_range(grads, c, lo, hi));
    }
    return FNN_OK;
}
