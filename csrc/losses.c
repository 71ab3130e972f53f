/*
 * losses.c -- MSE, MAE, Huber, BCE-with-logits and softmax cross-entropy.
 *
 * Size letters: N rows, D target columns (C classes for cross-entropy).
 * Each loss writes the mean loss to *loss and, when dpred is not NULL,
 * OVERWRITES dpred (N, D) with d(mean loss)/d(pred). The fnn__*_w
 * variants (the model's) also take row weights rw (N, finite, >= 0; NULL:
 * all 1) and a denominator: loss = sum_i rw_i l_i / denom (times 1/D for
 * the elementwise losses), denom <= 0 meaning the total weight (a weighted
 * mean; with no row weights, the plain mean of the public functions). Per-element terms are
 * computed in double and the gradient is rounded to float once.
 *
 * Determinism: rows are split into NBLK fixed blocks (independent of the
 * thread count); each block sums its rows in order into a double, and the
 * NBLK partial sums are added in block order on one thread. So the loss and
 * dpred are bitwise identical for every thread count, and nothing is
 * allocated (the partials live on the stack).
 *
 * Stability: BCE uses softplus(-z) = log1p(exp(-|z|)) + max(-z, 0);
 * cross-entropy subtracts the row max before exp (log-sum-exp). Logits of
 * +-1e4 give a finite loss and gradient.
 */
#include <float.h>
#include <math.h>
#include <string.h>
#include "fnn_internal.h"

#define NBLK 64

/* Everything a row function needs; unused fields are 0/NULL. */
typedef struct {
    float *dpred;              /* (N, D) or NULL */
    const float *pred;         /* (N, D) predictions or logits */
    const float *target;       /* (N, D); NULL for cross-entropy */
    const float *w;            /* pos_weight (D) or class weight (C), or NULL */
    const int64_t *labels;     /* (N) cross-entropy labels */
    int64_t D, ignore_index;
    double scale;              /* 1 / (denominator D), or 1 / denominator */
    double delta;              /* Huber threshold */
    const float *rw;           /* (N) row (sample) weights, or NULL: all 1 */
} loss_args;

/* The factor of row i's gradient: the scale, times the row's weight. */
static inline double row_scale(const loss_args *a, int64_t i) {
    return a->rw ? a->scale * (double)a->rw[i] : a->scale;
}

/* Loss summed over row i; writes row i of dpred (pre-scaled) if given. */
typedef double (*row_loss_fn)(const loss_args *a, int64_t i);

/* First row of block k when N rows are split into NBLK near-equal blocks. */
static inline int64_t block_start(int64_t N, int64_t k) {
    int64_t q = N / NBLK, r = N % NBLK;
    return q * k + (k < r ? k : r);
}

/* Sum of f over the rows of block k, in row order. sum_block, sum_rows and
   elementwise_loss are inlined into each loss, so that f is a known
   function there, and the cheap row functions (mse, mae, huber) are
   always inlined too (no call per row: a tiny net's step spent ~10% of
   its time in these calls). */
static FNN_ALWAYS_INLINE double sum_block(row_loss_fn f, const loss_args *a, int64_t N,
                                          int64_t k) {
    double s = 0.0;
    if (a->rw) {
        for (int64_t i = block_start(N, k); i < block_start(N, k + 1); i++)
            s += (double)a->rw[i] * f(a, i);
    } else {
        for (int64_t i = block_start(N, k); i < block_start(N, k + 1); i++) s += f(a, i);
    }
    return s;
}

/* Sum of f over rows 0..N-1, in a fixed order (see the top comment). */
static FNN_ALWAYS_INLINE double sum_rows(row_loss_fn f, const loss_args *a, int64_t N,
                                         double cost) {
    double part[NBLK];
    int nt = fnn__threads_for(cost * (double)N * (double)a->D);
    const int64_t nb = N < NBLK ? N : NBLK;   /* the blocks with rows: the first min(N, NBLK) */
    int64_t k;
    FNN_PARALLEL_FOR(nt, k, nb, part[k] = sum_block(f, a, N, k));
    double total = 0.0;
    for (k = 0; k < nb; k++) total += part[k];
    /* The empty blocks' sums are +0.0. Adding +0.0 only turns -0.0 into +0.0
       and commutes with every other addition, so one addition at the end
       gives the bits of adding each empty block in its place. */
    if (nb < NBLK) total += 0.0;
    return total;
}

/* Validate (N, D) and the pointers every regression-style loss needs. */
static fnn_status check_pair(const double *loss, const float *pred, const float *target,
                             int64_t N, int64_t D) {
    if (fnn__check_2d(N, D)) return FNN_ERR_SIZE;
    if (!loss || (N * D > 0 && (!pred || !target))) return FNN_ERR_ARG;
    return FNN_OK;
}

/* Row weights must be finite and >= 0: the first bad row, or -1. */
static int64_t bad_row_weight(const float *rw, int64_t N) {
    if (rw)
        for (int64_t i = 0; i < N; i++)
            if (!(rw[i] >= 0.0f && rw[i] <= FLT_MAX)) return i;
    return -1;
}

static fnn_status row_weight_error(const float *rw, int64_t i) {
    return fnn__error(FNN_ERR_ARG, "sample weight at row %lld is %g: weights must be "
                      "finite and >= 0", (long long)i, (double)rw[i]);
}

/* Sum of row weights (N when rw is NULL), in row order. */
static double total_row_weight(const float *rw, int64_t N) {
    if (!rw) return (double)N;
    double t = 0.0;
    for (int64_t i = 0; i < N; i++) t += rw[i];
    return t;
}

/* sum_i rw_i * (row i's sum of f) / (denom D); denom <= 0 means the total
   row weight (N when rw is NULL: the plain mean). Loss 0 and a zero
   gradient when empty or when the denominator is 0. */
static FNN_ALWAYS_INLINE fnn_status elementwise_loss(row_loss_fn f, double cost, double *loss,
                                                     float *dpred, const float *pred,
                                                     const float *target, const float *w,
                                                     const float *rw, double denom,
                                                     int64_t N, int64_t D, double delta) {
    fnn_status s = check_pair(loss, pred, target, N, D);
    if (s != FNN_OK) return s;
    *loss = 0.0;
    if (N * D == 0) return FNN_OK;
    int64_t bad = bad_row_weight(rw, N);
    if (bad >= 0) return row_weight_error(rw, bad);
    if (!(denom > 0.0)) denom = total_row_weight(rw, N);
    if (!(denom > 0.0)) {
        if (dpred) memset(dpred, 0, (size_t)(N * D) * sizeof(float));
        return FNN_OK;
    }
    loss_args a = {dpred, pred, target, w, NULL, D, 0, 1.0 / (denom * (double)D), delta, rw};
    *loss = sum_rows(f, &a, N, cost) * a.scale;
    return FNN_OK;
}

/* ------------------------------------------------------------ regression */
/* l = r^2, dl/dp = 2 r, r = p - t */
static FNN_ALWAYS_INLINE double mse_row(const loss_args *a, int64_t i) {
    const float *p = a->pred + i * a->D, *t = a->target + i * a->D;
    float *d = a->dpred ? a->dpred + i * a->D : NULL;
    const double sc = row_scale(a, i);
    double s = 0.0;
    for (int64_t j = 0; j < a->D; j++) {
        double r = (double)p[j] - (double)t[j];
        s += r * r;
        if (d) d[j] = (float)(2.0 * r * sc);
    }
    return s;
}

/* l = |r|, dl/dp = sign(r) (0 at r == 0, NaN for NaN) */
static FNN_ALWAYS_INLINE double mae_row(const loss_args *a, int64_t i) {
    const float *p = a->pred + i * a->D, *t = a->target + i * a->D;
    float *d = a->dpred ? a->dpred + i * a->D : NULL;
    const double sc = row_scale(a, i);
    double s = 0.0;
    for (int64_t j = 0; j < a->D; j++) {
        double r = (double)p[j] - (double)t[j];
        s += fabs(r);
        if (d) d[j] = (float)((r > 0.0 ? 1.0 : r < 0.0 ? -1.0 : r * 0.0) * sc);
    }
    return s;
}

/* l = 0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta);
   dl/dp = clamp(r, -delta, delta) */
static FNN_ALWAYS_INLINE double huber_row(const loss_args *a, int64_t i) {
    const float *p = a->pred + i * a->D, *t = a->target + i * a->D;
    float *d = a->dpred ? a->dpred + i * a->D : NULL;
    const double sc = row_scale(a, i);
    double s = 0.0, dl = a->delta;
    for (int64_t j = 0; j < a->D; j++) {
        double r = (double)p[j] - (double)t[j], ar = fabs(r);
        s += ar <= dl ? 0.5 * r * r : dl * (ar - 0.5 * dl);
        if (d) d[j] = (float)((r < -dl ? -dl : r > dl ? dl : r) * sc);
    }
    return s;
}

fnn_status fnn__mse_loss_w(double *loss, float *dpred, const float *pred,
                           const float *target, const float *rw, double denom,
                           int64_t N, int64_t D) {
    return elementwise_loss(mse_row, 3.0, loss, dpred, pred, target, NULL, rw, denom, N, D,
                            0.0);
}

fnn_status fnn__mae_loss_w(double *loss, float *dpred, const float *pred,
                           const float *target, const float *rw, double denom,
                           int64_t N, int64_t D) {
    return elementwise_loss(mae_row, 3.0, loss, dpred, pred, target, NULL, rw, denom, N, D,
                            0.0);
}

fnn_status fnn__huber_loss_w(double *loss, float *dpred, const float *pred,
                             const float *target, const float *rw, double denom,
                             int64_t N, int64_t D, float delta) {
    if (!(delta > 0.0f)) return FNN_ERR_ARG;
    return elementwise_loss(huber_row, 4.0, loss, dpred, pred, target, NULL, rw, denom, N, D,
                            delta);
}

fnn_status fnn_mse_loss(double *loss, float *dpred, const float *pred,
                        const float *target, int64_t N, int64_t D) {
    return fnn__mse_loss_w(loss, dpred, pred, target, NULL, 0.0, N, D);
}

fnn_status fnn_mae_loss(double *loss, float *dpred, const float *pred,
                        const float *target, int64_t N, int64_t D) {
    return fnn__mae_loss_w(loss, dpred, pred, target, NULL, 0.0, N, D);
}

fnn_status fnn_huber_loss(double *loss, float *dpred, const float *pred,
                          const float *target, int64_t N, int64_t D, float delta) {
    return fnn__huber_loss_w(loss, dpred, pred, target, NULL, 0.0, N, D, delta);
}

/* ------------------------------------------------------- BCE with logits */
/* c = 1 + (pw - 1) t; l = (1 - t) z + c softplus(-z);
   dl/dz = (1 - t) - c sigmoid(-z). */
static double bce_row(const loss_args *a, int64_t i) {
    const float *z = a->pred + i * a->D, *t = a->target + i * a->D;
    float *d = a->dpred ? a->dpred + i * a->D : NULL;
    const double sc = row_scale(a, i);
    double s = 0.0;
    for (int64_t j = 0; j < a->D; j++) {
        double zj = z[j], tj = t[j], pw = a->w ? (double)a->w[j] : 1.0;
        double c = 1.0 + (pw - 1.0) * tj;
        double e = exp(-fabs(zj));                         /* in (0, 1] */
        double softplus_neg = log1p(e) + (zj < 0.0 ? -zj : 0.0);
        s += (1.0 - tj) * zj + c * softplus_neg;
        if (d) {
            double sig_neg = zj >= 0.0 ? e / (1.0 + e) : 1.0 / (1.0 + e);
            d[j] = (float)(((1.0 - tj) - c * sig_neg) * sc);
        }
    }
    return s;
}

fnn_status fnn__bce_with_logits_loss_w(double *loss, float *dpred, const float *logits,
                                       const float *target, const float *pos_weight,
                                       const float *rw, double denom, int64_t N, int64_t D) {
    return elementwise_loss(bce_row, 40.0, loss, dpred, logits, target, pos_weight, rw, denom,
                            N, D, 0.0);
}

fnn_status fnn_bce_with_logits_loss(double *loss, float *dpred, const float *logits,
                                    const float *target, const float *pos_weight,
                                    int64_t N, int64_t D) {
    return fnn__bce_with_logits_loss_w(loss, dpred, logits, target, pos_weight, NULL, 0.0,
                                       N, D);
}

/* --------------------------------------------------------- cross-entropy */
/* l_i = w_y (logsumexp(z_i) - z_i[y]);
   dl_i/dz_ij = w_y (softmax(z_i)_j - [j == y]), scaled by 1 / sum of weights.
   Ignored rows contribute 0 and get a zero gradient row. */
static double ce_row(const loss_args *a, int64_t i) {
    int64_t C = a->D, y = a->labels[i];
    float *d = a->dpred ? a->dpred + i * C : NULL;
    if (y == a->ignore_index) {
        if (d) for (int64_t j = 0; j < C; j++) d[j] = 0.0f;
        return 0.0;
    }
    const float *z = a->pred + i * C;
    double w = a->w ? (double)a->w[y] : 1.0, sc = row_scale(a, i);
    float m = z[0];
    for (int64_t j = 1; j < C; j++) m = z[j] > m ? z[j] : m;
    double s = 0.0;
    for (int64_t j = 0; j < C; j++) s += exp((double)z[j] - m);
    if (d) {
        double g = w * sc / s;
        for (int64_t j = 0; j < C; j++) d[j] = (float)(g * exp((double)z[j] - m));
        d[y] = (float)(w * sc * (exp((double)z[y] - m) / s - 1.0));
    }
    return w * ((double)m + log(s) - (double)z[y]);
}

fnn_status fnn__cross_entropy_loss_w(double *loss, float *dpred, const float *logits,
                                     const int64_t *labels, const float *weight,
                                     const float *rw, double denom, int64_t N, int64_t C,
                                     int64_t ignore_index, int64_t *bad_index) {
    if (fnn__check_2d(N, C)) return FNN_ERR_SIZE;
    if (!loss || (N > 0 && !labels) || (N * C > 0 && !logits)) return FNN_ERR_ARG;
    int64_t badw = bad_row_weight(rw, N);
    if (badw >= 0) return row_weight_error(rw, badw);
    /* Every label is checked, and the total weight taken, before any write. */
    double total_w = 0.0;
    for (int64_t i = 0; i < N; i++) {
        int64_t y = labels[i];
        if (y == ignore_index) continue;
        if (y < 0 || y >= C) {
            if (bad_index) *bad_index = i;
            return FNN_ERR_LABEL;
        }
        total_w += (weight ? (double)weight[y] : 1.0) * (rw ? (double)rw[i] : 1.0);
    }
    *loss = 0.0;
    if (denom > 0.0) total_w = denom;
    if (total_w == 0.0) {              /* nothing counts: loss 0, gradient 0 */
        if (dpred) for (int64_t k = 0; k < N * C; k++) dpred[k] = 0.0f;
        return FNN_OK;
    }
    loss_args a = {dpred, logits, NULL, weight, labels, C, ignore_index, 1.0 / total_w, 0.0, rw};
    *loss = sum_rows(ce_row, &a, N, 40.0) * a.scale;
    return FNN_OK;
}

fnn_status fnn_cross_entropy_loss(double *loss, float *dpred, const float *logits,
                                  const int64_t *labels, const float *weight,
                                  int64_t N, int64_t C, int64_t ignore_index,
                                  int64_t *bad_index) {
    return fnn__cross_entropy_loss_w(loss, dpred, logits, labels, weight, NULL, 0.0, N, C,
                                     ignore_index, bad_index);
}
