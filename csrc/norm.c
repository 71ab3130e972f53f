/*
 * norm.c -- batch normalization and layer normalization.
 *
 * Batch norm over x (N, C, S): C channels, S spatial elements per channel
 * (1 for BatchNorm1d on (C,), L on (C, L), H*W for BatchNorm2d), M = N*S
 * values per channel. PyTorch semantics:
 *   training (or no running statistics): mean and the BIASED variance of
 *     the batch normalize; the running statistics (when given) become
 *     (1 - m) running + m batch, with the UNBIASED variance (M / (M - 1));
 *     m = momentum, or 1 / num_batches (the cumulative average) under
 *     FNN_NORM_CUMULATIVE; num_batches counts training calls. M == 1 is an
 *     error, as torch's "Expected more than 1 value per channel when training".
 *   evaluation: the running statistics normalize.
 *   y = (x - mean) / sqrt(var + eps) * weight + bias (weight, bias NULL: 1, 0).
 * Statistics are accumulated in double (for S > 1 in 8 interleaved partial
 * sums per channel, added in a fixed order), shifted by the channel's first
 * value (K = x[0, c, 0]) against cancellation: s1 = sum (x - K),
 * s2 = sum (x - K)^2, mean = K + s1 / M, var = (s2 - s1^2 / M) / M.
 *
 * Nothing is stored between forward and backward: backward recomputes the
 * batch statistics from x with the same loops in the same order (so the
 * same bits) in the pass that also sums dy and dy (x - K), then writes
 *   dx = w inv (dy - sum(dy) / M - xhat sum(dy xhat) / M)   (training,
 *        computed as A dy + (B (x - mean) + Cc): no cancellation)
 *   dx = w inv dy                                          (evaluation)
 * with xhat = (x - mean) inv, inv = 1 / sqrt(var + eps); dweight +=
 * sum(dy xhat), dbias += sum(dy). Channels are split over threads and each
 * channel's sums run in one fixed order: the same bits for any thread count.
 *
 * Layer norm over rows x (R, D): mean and biased variance of each row (in
 * double, two passes), stats (R, 2) = (mean, rstd) as floats, kept by the
 * caller for backward; y = (x - mean) rstd weight + bias. Backward:
 * dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy weight; dweight +=
 * sum over rows of dy xhat and dbias += sum of dy, each column summed over
 * rows in row order by one thread.
 */
#include <math.h>
#include <string.h>
#include "fnn_internal.h"

#define CH 32   /* channels per block: the per-channel sums live on the stack */

typedef struct bn_args {
    float *y;               /* forward output, or backward dx (may be NULL) */
    const float *x, *dy, *weight, *bias;
    float *rmean, *rvar;    /* forward: updated when training (NULL: not tracked) */
    float *dweight, *dbias;
    int64_t N, C, S;
    int batch;              /* 1: batch statistics normalize */
    int update;             /* forward: update the running statistics */
    double momentum;
    float eps;
} bn_args;

#define LANES 8   /* partial sums per channel (bn_sums) */

/* l[0] + ... + l[LANES - 1] as a pairwise tree, in one fixed order. */
static FNN_ALWAYS_INLINE double lane_sum(const double *l) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* s1, s2 (and sdy, sdyd = sum dy (x - K) when dy) of channels c0..c0+nc. */
static FNN_ALWAYS_INLINE void bn_sums(const bn_args *a, const float *dy, int64_t c0, int nc,
                                      double *k, double *s1, double *s2, double *sdy,
                                      double *sdyd) {
    const int64_t N = a->N, C = a->C, S = a->S;
    const float *x = a->x;
    for (int j = 0; j < nc; j++) {
        k[j] = a->batch ? (double)x[(c0 + j) * S] : 0.0;
        s1[j] = s2[j] = sdy[j] = sdyd[j] = 0.0;
    }
    if (S == 1) {
        for (int64_t n = 0; n < N; n++) {
            const float *xr = x + n * C + c0;
            if (a->batch)
                for (int j = 0; j < nc; j++) {
                    double d = (double)xr[j] - k[j];
                    s1[j] += d;
                    s2[j] += d * d;
                }
            if (dy) {
                const float *dr = dy + n * C + c0;
                for (int j = 0; j < nc; j++) {
                    double d = (double)xr[j] - k[j];
                    sdy[j] += (double)dr[j];
                    sdyd[j] += (double)dr[j] * d;
                }
            }
        }
        return;
    }
    /* S > 1: each channel's N rows of S contiguous values in LANES interleaved
       partial sums (value i of a row goes to lane i % LANES), added up in a
       fixed order at the end: independent add chains instead of one, and the
       same bits for any thread count (a channel is summed by one thread). */
    for (int j = 0; j < nc; j++) {
        double l1[LANES] = {0}, l2[LANES] = {0}, l3[LANES] = {0}, l4[LANES] = {0};
        const double kj = k[j];
        const int64_t S0 = S / LANES * LANES;
        for (int64_t n = 0; n < N; n++) {
            const float *xr = x + (n * C + c0 + j) * S;
            const float *dr = dy ? dy + (n * C + c0 + j) * S : NULL;
            if (a->batch) {
                for (int64_t s = 0; s < S0; s += LANES)
                    for (int u = 0; u < LANES; u++) {
                        double d = (double)xr[s + u] - kj;
                        l1[u] += d;
                        l2[u] += d * d;
                    }
                for (int64_t s = S0; s < S; s++) {
                    double d = (double)xr[s] - kj;
                    l1[s - S0] += d;
                    l2[s - S0] += d * d;
                }
            }
            if (dr) {
                for (int64_t s = 0; s < S0; s += LANES)
                    for (int u = 0; u < LANES; u++) {
                        l3[u] += (double)dr[s + u];
                        l4[u] += (double)dr[s + u] * ((double)xr[s + u] - kj);
                    }
                for (int64_t s = S0; s < S; s++) {
                    l3[s - S0] += (double)dr[s];
                    l4[s - S0] += (double)dr[s] * ((double)xr[s] - kj);
                }
            }
        }
        s1[j] = lane_sum(l1); s2[j] = lane_sum(l2); sdy[j] = lane_sum(l3); sdyd[j] = lane_sum(l4);
    }
}

/* mean and inv of channel c (batch: from the sums; else the running ones) */
static FNN_ALWAYS_INLINE void bn_moments(const bn_args *a, int64_t c, double k, double s1,
                                         double s2, double *mean, double *var, double *inv) {
    if (a->batch) {
        const double M = (double)(a->N * a->S);
        *mean = k + s1 / M;
        double v = (s2 - s1 * s1 / M) / M;
        *var = v > 0.0 ? v : 0.0;
    } else {
        *mean = (double)a->rmean[c];
        *var = (double)a->rvar[c];
    }
    *inv = 1.0 / sqrt(*var + (double)a->eps);
}

static FNN_SIMD_CLONES void bn_forward_range(const bn_args *a, int64_t lo, int64_t hi) {
    const int64_t N = a->N, C = a->C, S = a->S;
    double k[CH], s1[CH], s2[CH], t1[CH], t2[CH];
    float sc[CH], sh[CH];
    for (int64_t c0 = lo; c0 < hi; c0 += CH) {
        const int nc = (int)(hi - c0 < CH ? hi - c0 : CH);
        bn_sums(a, NULL, c0, nc, k, s1, s2, t1, t2);
        for (int j = 0; j < nc; j++) {
            const int64_t c = c0 + j;
            double mean, var, inv;
            bn_moments(a, c, k[j], s1[j], s2[j], &mean, &var, &inv);
            double w = a->weight ? (double)a->weight[c] : 1.0;
            double b = a->bias ? (double)a->bias[c] : 0.0;
            sc[j] = (float)(w * inv);
            sh[j] = (float)(b - mean * w * inv);
            if (a->update) {
                const double m = a->momentum, M = (double)(N * S);
                a->rmean[c] = (float)((1.0 - m) * (double)a->rmean[c] + m * mean);
                a->rvar[c] = (float)((1.0 - m) * (double)a->rvar[c] + m * var * M / (M - 1.0));
            }
        }
        if (S == 1) {
            for (int64_t n = 0; n < N; n++) {
                const float *xr = a->x + n * C + c0;
                float *yr = a->y + n * C + c0;
                for (int j = 0; j < nc; j++) yr[j] = xr[j] * sc[j] + sh[j];
            }
        } else {
            for (int j = 0; j < nc; j++)
                for (int64_t n = 0; n < N; n++) {
                    const float *xr = a->x + (n * C + c0 + j) * S;
                    float *yr = a->y + (n * C + c0 + j) * S;
                    const float s = sc[j], t = sh[j];
                    for (int64_t i = 0; i < S; i++) yr[i] = xr[i] * s + t;
                }
        }
    }
}

static FNN_SIMD_CLONES void bn_backward_range(const bn_args *a, int64_t lo, int64_t hi) {
    const int64_t N = a->N, C = a->C, S = a->S;
    const double M = (double)(N * S);
    double k[CH], s1[CH], s2[CH], sdy[CH], sdyd[CH];
    float ca[CH], cb[CH], cc[CH], mf[CH];
    for (int64_t c0 = lo; c0 < hi; c0 += CH) {
        const int nc = (int)(hi - c0 < CH ? hi - c0 : CH);
        bn_sums(a, a->dy, c0, nc, k, s1, s2, sdy, sdyd);
        for (int j = 0; j < nc; j++) {
            const int64_t c = c0 + j;
            double mean, var, inv;
            bn_moments(a, c, k[j], s1[j], s2[j], &mean, &var, &inv);
            /* sdyd is sum dy (x - K) with K = k[j] (0 in evaluation mode) */
            double sdx = inv * (sdyd[j] - (mean - k[j]) * sdy[j]);   /* sum dy xhat */
            if (a->dweight) a->dweight[c] += (float)sdx;
            if (a->dbias) a->dbias[c] += (float)sdy[j];
            double w = a->weight ? (double)a->weight[c] : 1.0;
            mf[j] = (float)mean;
            if (a->batch) {     /* dx = A dy + (B (x - mean) + Cc): no cancellation in B x */
                double A = w * inv, B = -w * inv * inv * sdx / M;
                ca[j] = (float)A;
                cb[j] = (float)B;
                cc[j] = (float)(-A * sdy[j] / M);
            } else {
                ca[j] = (float)(w * inv);
                cb[j] = cc[j] = 0.0f;
            }
        }
        if (!a->y) continue;
        if (S == 1) {
            for (int64_t n = 0; n < N; n++) {
                const float *xr = a->x + n * C + c0, *dr = a->dy + n * C + c0;
                float *r = a->y + n * C + c0;
                if (a->batch)
                    for (int j = 0; j < nc; j++)
                        r[j] = dr[j] * ca[j] + ((xr[j] - mf[j]) * cb[j] + cc[j]);
                else
                    for (int j = 0; j < nc; j++) r[j] = dr[j] * ca[j];
            }
        } else {
            for (int j = 0; j < nc; j++)
                for (int64_t n = 0; n < N; n++) {
                    const int64_t o = (n * C + c0 + j) * S;
                    const float *xr = a->x + o, *dr = a->dy + o;
                    float *r = a->y + o;
                    const float A = ca[j], B = cb[j], Cc = cc[j], m = mf[j];
                    if (a->batch)
                        for (int64_t i = 0; i < S; i++) r[i] = dr[i] * A + ((xr[i] - m) * B + Cc);
                    else
                        for (int64_t i = 0; i < S; i++) r[i] = dr[i] * A;
                }
        }
    }
}

static fnn_status bn_check(int64_t N, int64_t C, int64_t S, float eps) {
    int64_t t;
    if (N < 0 || C < 1 || S < 1 || fnn__mul_overflow(N, C, &t) || fnn__mul_overflow(t, S, &t))
        return fnn__error(FNN_ERR_SIZE, "batch_norm: invalid sizes N %lld, C %lld, S %lld",
                          (long long)N, (long long)C, (long long)S);
    if (!(eps >= 0.0f) || !isfinite(eps))
        return fnn__error(FNN_ERR_ARG, "batch_norm: eps must be finite and >= 0, got %g",
                          (double)eps);
    return FNN_OK;
}

fnn_status fnn_batch_norm_forward(float *y, const float *x, const float *weight,
                                  const float *bias, float *running_mean, float *running_var,
                                  float *num_batches, int64_t N, int64_t C, int64_t S,
                                  int training, float momentum, float eps, int32_t flags) {
    fnn_status st = bn_check(N, C, S, eps);
    if (st != FNN_OK || N == 0) return st;
    if (!x || !y || (running_mean == NULL) != (running_var == NULL))
        return fnn__error(FNN_ERR_ARG, "batch_norm: x, y and both running statistics (or "
                          "neither) must be given");
    const int cumulative = (flags & FNN_NORM_CUMULATIVE) != 0;
    if (running_mean && training && cumulative && !num_batches)
        return fnn__error(FNN_ERR_ARG, "batch_norm: the cumulative average needs num_batches");
    if (running_mean && training && !cumulative && !(momentum >= 0.0f && momentum <= 1.0f))
        return fnn__error(FNN_ERR_ARG, "batch_norm: momentum must be in [0, 1], got %g",
                          (double)momentum);
    bn_args a = {y, x, NULL, weight, bias, running_mean, running_var, NULL, NULL, N, C, S,
                 training || !running_mean, training && running_mean, 0.0, eps};
    if (a.batch && N * S < 2)
        return fnn__error(FNN_ERR_ARG, "batch_norm: expected more than 1 value per channel "
                          "when training, got input of %lld row(s) with %lld value(s) per "
                          "channel", (long long)N, (long long)S);
    if (a.update) {
        if (num_batches) num_batches[0] += 1.0f;
        a.momentum = cumulative ? 1.0 / (double)num_batches[0] : (double)momentum;
    }
    int nt = fnn__threads_for(8.0 * (double)(N * C * S));
    FNN_PARALLEL_RANGES(nt, C, lo, hi, bn_forward_range(&a, lo, hi));
    return FNN_OK;
}

fnn_status fnn_batch_norm_backward(float *dx, float *dweight, float *dbias, const float *dy,
                                   const float *x, const float *weight,
                                   const float *running_mean, const float *running_var,
                                   int64_t N, int64_t C, int64_t S, int training, float eps) {
    fnn_status st = bn_check(N, C, S, eps);
    if (st != FNN_OK || N == 0) return st;
    if (!x || !dy || (running_mean == NULL) != (running_var == NULL))
        return fnn__error(FNN_ERR_ARG, "batch_norm: x, dy and both running statistics (or "
                          "neither) must be given");
    bn_args a = {dx, x, dy, weight, NULL, (float *)running_mean, (float *)running_var,
                 dweight, dbias, N, C, S, training || !running_mean, 0, 0.0, eps};
    if (a.batch && N * S < 2)
        return fnn__error(FNN_ERR_ARG, "batch_norm: expected more than 1 value per channel "
                          "when training");
    int nt = fnn__threads_for(12.0 * (double)(N * C * S));
    FNN_PARALLEL_RANGES(nt, C, lo, hi, bn_backward_range(&a, lo, hi));
    return FNN_OK;
}

/* ---------------------------------------------------------- layer norm */

static void ln_forward_rows(float *FNN_RESTRICT y, float *FNN_RESTRICT stats,
                            const float *FNN_RESTRICT x, const float *w, const float *b,
                            int64_t D, float eps, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double s = 0.0, v = 0.0;
        for (int64_t d = 0; d < D; d++) s += (double)xr[d];
        const double mean = s / (double)D;
        for (int64_t d = 0; d < D; d++) {
            double t = (double)xr[d] - mean;
            v += t * t;
        }
        const float m = (float)mean, rs = (float)(1.0 / sqrt(v / (double)D + (double)eps));
        stats[2 * r] = m;
        stats[2 * r + 1] = rs;
        if (w && b)
            for (int64_t d = 0; d < D; d++) yr[d] = (xr[d] - m) * rs * w[d] + b[d];
        else if (w)
            for (int64_t d = 0; d < D; d++) yr[d] = (xr[d] - m) * rs * w[d];
        else
            for (int64_t d = 0; d < D; d++) yr[d] = (xr[d] - m) * rs;
    }
}

static void ln_dx_rows(float *FNN_RESTRICT dx, const float *FNN_RESTRICT dy,
                       const float *FNN_RESTRICT x, const float *w,
                       const float *FNN_RESTRICT stats, int64_t D, int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
        const float *xr = x + r * D, *dr = dy + r * D;
        float *o = dx + r * D;
        const float m = stats[2 * r], rs = stats[2 * r + 1];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t d = 0; d < D; d++) {
            float g = w ? dr[d] * w[d] : dr[d];
            s1 += (double)g;
            s2 += (double)g * (double)((xr[d] - m) * rs);
        }
        const float a = (float)(s1 / (double)D), c = (float)(s2 / (double)D);
        for (int64_t d = 0; d < D; d++) {
            float g = w ? dr[d] * w[d] : dr[d];
            o[d] = rs * (g - a - (xr[d] - m) * rs * c);
        }
    }
}

static void ln_dparams_cols(float *dw, float *db, const float *FNN_RESTRICT dy,
                            const float *FNN_RESTRICT x, const float *FNN_RESTRICT stats,
                            int64_t R, int64_t D, int64_t lo, int64_t hi) {
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * D, *dr = dy + r * D;
        const float m = stats[2 * r], rs = stats[2 * r + 1];
        if (dw)
            for (int64_t d = lo; d < hi; d++) dw[d] += dr[d] * ((xr[d] - m) * rs);
        if (db)
            for (int64_t d = lo; d < hi; d++) db[d] += dr[d];
    }
}

static fnn_status ln_check(int64_t R, int64_t D, float eps) {
    int64_t t;
    if (R < 0 || D < 1 || fnn__mul_overflow(R, D, &t))
        return fnn__error(FNN_ERR_SIZE, "layer_norm: invalid sizes R %lld, D %lld",
                          (long long)R, (long long)D);
    if (!(eps >= 0.0f) || !isfinite(eps))
        return fnn__error(FNN_ERR_ARG, "layer_norm: eps must be finite and >= 0, got %g",
                          (double)eps);
    return FNN_OK;
}

fnn_status fnn_layer_norm_forward(float *y, float *stats, const float *x, const float *weight,
                                  const float *bias, int64_t R, int64_t D, float eps) {
    fnn_status st = ln_check(R, D, eps);
    if (st != FNN_OK || R == 0) return st;
    if (!y || !stats || !x || (bias && !weight))
        return fnn__error(FNN_ERR_ARG, "layer_norm: y, stats and x must be given (and a bias "
                          "only with a weight)");
    int nt = fnn__threads_for(8.0 * (double)(R * D));
    FNN_PARALLEL_RANGES(nt, R, lo, hi, ln_forward_rows(y, stats, x, weight, bias, D, eps,
                                                       lo, hi));
    return FNN_OK;
}

fnn_status fnn_layer_norm_backward(float *dx, float *dweight, float *dbias, const float *dy,
                                   const float *x, const float *weight, const float *stats,
                                   int64_t R, int64_t D) {
    fnn_status st = ln_check(R, D, 0.0f);
    if (st != FNN_OK || R == 0) return st;
    if (!dy || !x || !stats)
        return fnn__error(FNN_ERR_ARG, "layer_norm: dy, x and stats must be given");
    int nt = fnn__threads_for(10.0 * (double)(R * D));
    if (dx) FNN_PARALLEL_RANGES(nt, R, lo, hi, ln_dx_rows(dx, dy, x, weight, stats, D, lo, hi));
    if (dweight || dbias)
        FNN_PARALLEL_RANGES(nt, D, lo, hi, ln_dparams_cols(dweight, dbias, dy, x, stats, R, D,
                                                           lo, hi));
    return FNN_OK;
}
