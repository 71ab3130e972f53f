/*
 * pool.c -- 2-D max and average pooling and adaptive average pooling over
 * NCHW planes.
 *
 * x is (NC, H, W): N * C planes, each pooled on its own, so every kernel
 * splits the planes over threads (one plane is written by one thread, in a
 * fixed order: the same bits for any thread count).
 *
 * Output size (PyTorch's rule): O = floor((I + 2 p - k) / s) + 1, with
 * ceil instead of floor under FNN_POOL_CEIL_MODE, where the last window
 * must then start inside the input or the left padding (else O - 1).
 * Windows are clipped to the input; padding never wins a max. An average
 * divides by the window's size including the padding (count_include_pad,
 * the default) but excluding what lies beyond the right padding (ceil
 * mode), or by the number of input elements it covers under
 * FNN_POOL_EXCLUDE_PAD. Both as torch.nn.functional.{max,avg}_pool2d.
 *
 * Max pooling ties: the FIRST largest element of the window in row-major
 * order wins (as PyTorch's CPU kernel, which keeps the first on `>`); a
 * NaN in the window makes the output NaN. Backward recomputes the winner
 * from x and y (the first element equal to y, or the first NaN when y is
 * NaN), so nothing is stored between forward and backward.
 *
 * Adaptive average pooling to (OH, OW): output i covers input rows
 * [floor(i H / OH), ceil((i + 1) H / OH)) (likewise columns), as PyTorch.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fnn_internal.h"

int64_t fnn_pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int ceil_mode) {
    if (in < 1 || k < 1 || s < 1 || p < 0 || p > k / 2) return -1;
    int64_t span = in + 2 * p - k;
    if (span < 0) return -1;
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) o--;
    return o;
}

typedef struct pool_geom {
    int64_t H, W, OH, OW, kh, kw, sh, sw, ph, pw;
    int exclude_pad;
} pool_geom;

static fnn_status geom(pool_geom *g, int64_t NC, int64_t H, int64_t W, const int64_t *k,
                       const int64_t *s, const int64_t *p, int32_t flags) {
    if (!k || !s || !p) return FNN_ERR_ARG;
    int ceil_mode = (flags & FNN_POOL_CEIL_MODE) != 0;
    g->H = H; g->W = W;
    g->kh = k[0]; g->kw = k[1]; g->sh = s[0]; g->sw = s[1]; g->ph = p[0]; g->pw = p[1];
    g->OH = fnn_pool_out_size(H, k[0], s[0], p[0], ceil_mode);
    g->OW = fnn_pool_out_size(W, k[1], s[1], p[1], ceil_mode);
    g->exclude_pad = (flags & FNN_POOL_EXCLUDE_PAD) != 0;
    if (NC < 0 || g->OH < 1 || g->OW < 1) return FNN_ERR_SIZE;
    int64_t t;
    if (fnn__mul_overflow(NC, H * W, &t) || fnn__mul_overflow(NC, g->OH * g->OW, &t))
        return FNN_ERR_SIZE;
    return FNN_OK;
}

/* ------------------------------------------------------------ max pool */

static void max_planes(float *FNN_RESTRICT y, const float *FNN_RESTRICT x, const pool_geom *g,
                       int64_t lo, int64_t hi) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t q = lo; q < hi; q++) {
        const float *xp = x + q * H * W;
        float *yp = y + q * OH * OW;
        if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 &&
            g->pw == 0 && 2 * OH <= H && 2 * OW <= W) {
            /* the common 2x2/2 window, always inside: no clipping */
            for (int64_t oh = 0; oh < OH; oh++) {
                const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
                float *yr = yp + oh * OW;
                for (int64_t ow = 0; ow < OW; ow++) {
                    float m = r0[2 * ow], v;
                    v = r0[2 * ow + 1]; if (v > m || v != v) m = v;
                    v = r1[2 * ow];     if (v > m || v != v) m = v;
                    v = r1[2 * ow + 1]; if (v > m || v != v) m = v;
                    yr[ow] = m;
                }
            }
            continue;
        }
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * g->sh - g->ph, h1 = h0 + g->kh;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * g->sw - g->pw, w1 = w0 + g->kw;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                float m = -INFINITY;
                int nan = 0;
                for (int64_t h = h0; h < h1 && !nan; h++)
                    for (int64_t w = w0; w < w1; w++) {
                        float v = xp[h * W + w];
                        if (v != v) { m = v; nan = 1; break; }
                        if (v > m) m = v;
                    }
                yp[oh * OW + ow] = m;
            }
        }
    }
}

/* 2x2/2 windows inside the input: each window's 4 dx values written with bit
   masks, no branch on which element won. Random data makes that branch
   unpredictable (3 of 4 outcomes): the branchy loop plus a memset ran ~12x
   slower than the forward on a VGG-sized tensor. The windows are deinterleaved
   into chunks of contiguous a, b, c, d so that the mask arithmetic
   vectorises. An element is a candidate when it equals y or is NaN (a NaN
   in the window makes y NaN, and nothing equals a NaN y); the first
   candidate of a, b, c, d wins. */
#define POOL_CHUNK 64
/* A chunk may run on across output rows: a plane's windows are taken in
   row-major order, POOL_CHUNK at a time, so that narrow planes (LeNet's 14
   and 5 windows a row) still fill the mask loop's vectors; the gather and
   scatter loops walk each row's segment of the chunk. x, dx: the plane (row
   stride W); y, dy: its OH * OW outputs, contiguous. */
FNN_SIMD_CLONES
static void max_2x2_bw_plane(float *FNN_RESTRICT dx, const float *FNN_RESTRICT x,
                             const float *FNN_RESTRICT y, const float *FNN_RESTRICT dy,
                             int64_t W, int64_t OH, int64_t OW) {
    float a[POOL_CHUNK], b[POOL_CHUNK], c[POOL_CHUNK];
    float oa[POOL_CHUNK], ob[POOL_CHUNK], oc[POOL_CHUNK], od[POOL_CHUNK];
    const int64_t total = OH * OW;
    int64_t oh = 0, ow = 0;   /* the chunk's first window */
    for (int64_t k0 = 0; k0 < total; k0 += POOL_CHUNK) {
        const int64_t n = total - k0 < POOL_CHUNK ? total - k0 : POOL_CHUNK;
        int64_t h = oh, w = ow;
        for (int64_t j = 0; j < n;) {
            const int64_t seg = OW - w < n - j ? OW - w : n - j;
            const float *p0 = x + 2 * h * W + 2 * w, *p1 = p0 + W;
            for (int64_t t = 0; t < seg; t++) {
                a[j + t] = p0[2 * t];
                b[j + t] = p0[2 * t + 1];
                c[j + t] = p1[2 * t];
            }
            j += seg;
            if ((w += seg) == OW) { w = 0; h++; }
        }
        const float *yr = y + k0, *dyr = dy + k0;
        for (int64_t j = 0; j < n; j++) {
            const float m = yr[j];
            uint32_t v;
            memcpy(&v, dyr + j, sizeof v);
            const uint32_t ma = 0u - (uint32_t)((a[j] == m) | (a[j] != a[j]));
            const uint32_t mb = ~ma & (0u - (uint32_t)((b[j] == m) | (b[j] != b[j])));
            const uint32_t mc = ~ma & ~mb & (0u - (uint32_t)((c[j] == m) | (c[j] != c[j])));
            const uint32_t t[4] = {v & ma, v & mb, v & mc, v & ~(ma | mb | mc)};
            memcpy(oa + j, t, sizeof(float));
            memcpy(ob + j, t + 1, sizeof(float));
            memcpy(oc + j, t + 2, sizeof(float));
            memcpy(od + j, t + 3, sizeof(float));
        }
        for (int64_t j = 0; j < n;) {
            const int64_t seg = OW - ow < n - j ? OW - ow : n - j;
            float *q0 = dx + 2 * oh * W + 2 * ow, *q1 = q0 + W;
            for (int64_t t = 0; t < seg; t++) {
                q0[2 * t] = oa[j + t];
                q0[2 * t + 1] = ob[j + t];
                q1[2 * t] = oc[j + t];
                q1[2 * t + 1] = od[j + t];
            }
            j += seg;
            if ((ow += seg) == OW) { ow = 0; oh++; }
        }
    }
}

static void max_planes_bw(float *FNN_RESTRICT dx, const float *FNN_RESTRICT dy,
                          const float *FNN_RESTRICT x, const float *FNN_RESTRICT y,
                          const pool_geom *g, int64_t lo, int64_t hi) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t q = lo; q < hi; q++) {
        const float *xp = x + q * H * W;
        const float *yp = y + q * OH * OW, *dyp = dy + q * OH * OW;
        float *dxp = dx + q * H * W;
        if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 &&
            g->pw == 0 && 2 * OH <= H && 2 * OW <= W) {
            /* 2x2/2: disjoint windows inside the input, the first match of 4 */
            max_2x2_bw_plane(dxp, xp, yp, dyp, W, OH, OW);
            for (int64_t h = 0; h < 2 * OH; h++)   /* columns outside every window */
                for (int64_t w = 2 * OW; w < W; w++) dxp[h * W + w] = 0.0f;
            if (2 * OH < H)
                memset(dxp + 2 * OH * W, 0, (size_t)((H - 2 * OH) * W) * sizeof(float));
            continue;
        }
        memset(dxp, 0, (size_t)(H * W) * sizeof(float));
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * g->sh - g->ph, h1 = h0 + g->kh;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * g->sw - g->pw, w1 = w0 + g->kw;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                const float m = yp[oh * OW + ow];
                const int nan = m != m;
                int64_t at = -1;
                for (int64_t h = h0; h < h1 && at < 0; h++)
                    for (int64_t w = w0; w < w1; w++) {
                        float v = xp[h * W + w];
                        if (nan ? v != v : v == m) { at = h * W + w; break; }
                    }
                if (at >= 0) dxp[at] += dyp[oh * OW + ow];
            }
        }
    }
}

/* Cost of one window element in fnn__threads_for's unit (a GEMM flop, see
   csrc/activations.c's COST_CHEAP): max pooling measured 0.16-0.29 ns forward
   and 0.33-0.79 ns backward a window element on 1 thread (2x2 windows, LeNet
   and VGG shapes), i.e. about 16-29 and 33-79 GEMM flops at 100 GFLOPS; at 1,
   LeNet's pool backward (133 us) ran on one thread. */
#define MAX_FWD_COST 16.0
#define MAX_BWD_COST 32.0

fnn_status fnn_max_pool2d_forward(float *y, const float *x, int64_t NC, int64_t H, int64_t W,
                                  const int64_t *kernel, const int64_t *stride,
                                  const int64_t *padding, int32_t flags) {
    pool_geom g;
    fnn_status st = geom(&g, NC, H, W, kernel, stride, padding, flags);
    if (st != FNN_OK) return st;
    if (NC == 0) return FNN_OK;
    if (!x || !y) return FNN_ERR_ARG;
    int nt = fnn__threads_for(MAX_FWD_COST * (double)NC * (double)(g.OH * g.OW) *
                              (double)(g.kh * g.kw));
    FNN_PARALLEL_RANGES(nt, NC, lo, hi, max_planes(y, x, &g, lo, hi));
    return FNN_OK;
}

fnn_status fnn_max_pool2d_backward(float *dx, const float *dy, const float *x, const float *y,
                                   int64_t NC, int64_t H, int64_t W, const int64_t *kernel,
                                   const int64_t *stride, const int64_t *padding,
                                   int32_t flags) {
    pool_geom g;
    fnn_status st = geom(&g, NC, H, W, kernel, stride, padding, flags);
    if (st != FNN_OK) return st;
    if (NC == 0 || !dx) return FNN_OK;
    if (!dy || !x || !y) return FNN_ERR_ARG;
    int nt = fnn__threads_for(MAX_BWD_COST * (double)NC * (double)(g.OH * g.OW) *
                              (double)(g.kh * g.kw));
    FNN_PARALLEL_RANGES(nt, NC, lo, hi, max_planes_bw(dx, dy, x, y, &g, lo, hi));
    return FNN_OK;
}

/* ------------------------------------------------------------ avg pool */

/* The clipped window of output (oh, ow) and its divisor. */
static FNN_ALWAYS_INLINE float avg_window(const pool_geom *g, int64_t oh, int64_t ow,
                                          int64_t *h0, int64_t *h1, int64_t *w0,
                                          int64_t *w1) {
    int64_t a0 = oh * g->sh - g->ph, a1 = a0 + g->kh;
    int64_t b0 = ow * g->sw - g->pw, b1 = b0 + g->kw;
    if (a1 > g->H + g->ph) a1 = g->H + g->ph;
    if (b1 > g->W + g->pw) b1 = g->W + g->pw;
    int64_t size = (a1 - a0) * (b1 - b0);
    if (a0 < 0) a0 = 0;
    if (b0 < 0) b0 = 0;
    if (a1 > g->H) a1 = g->H;
    if (b1 > g->W) b1 = g->W;
    *h0 = a0; *h1 = a1; *w0 = b0; *w1 = b1;
    if (g->exclude_pad) size = (a1 - a0) * (b1 - b0);
    return (float)size;
}

static void avg_planes(float *FNN_RESTRICT y, const float *FNN_RESTRICT x, const pool_geom *g,
                       int64_t lo, int64_t hi) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t q = lo; q < hi; q++) {
        const float *xp = x + q * H * W;
        float *yp = y + q * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0, h1, w0, w1;
                float div = avg_window(g, oh, ow, &h0, &h1, &w0, &w1);
                float s = 0.0f;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) s += xp[h * W + w];
                yp[oh * OW + ow] = s / div;
            }
    }
}

static void avg_planes_bw(float *FNN_RESTRICT dx, const float *FNN_RESTRICT dy,
                          const pool_geom *g, int64_t lo, int64_t hi) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t q = lo; q < hi; q++) {
        const float *dyp = dy + q * OH * OW;
        float *dxp = dx + q * H * W;
        memset(dxp, 0, (size_t)(H * W) * sizeof(float));
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0, h1, w0, w1;
                float div = avg_window(g, oh, ow, &h0, &h1, &w0, &w1);
                float v = dyp[oh * OW + ow] / div;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) dxp[h * W + w] += v;
            }
    }
}

fnn_status fnn_avg_pool2d_forward(float *y, const float *x, int64_t NC, int64_t H, int64_t W,
                                  const int64_t *kernel, const int64_t *stride,
                                  const int64_t *padding, int32_t flags) {
    pool_geom g;
    fnn_status st = geom(&g, NC, H, W, kernel, stride, padding, flags);
    if (st != FNN_OK) return st;
    if (NC == 0) return FNN_OK;
    if (!x || !y) return FNN_ERR_ARG;
    int nt = fnn__threads_for((double)NC * (double)(g.OH * g.OW) * (double)(g.kh * g.kw));
    FNN_PARALLEL_RANGES(nt, NC, lo, hi, avg_planes(y, x, &g, lo, hi));
    return FNN_OK;
}

fnn_status fnn_avg_pool2d_backward(float *dx, const float *dy, int64_t NC, int64_t H,
                                   int64_t W, const int64_t *kernel, const int64_t *stride,
                                   const int64_t *padding, int32_t flags) {
    pool_geom g;
    fnn_status st = geom(&g, NC, H, W, kernel, stride, padding, flags);
    if (st != FNN_OK) return st;
    if (NC == 0 || !dx) return FNN_OK;
    if (!dy) return FNN_ERR_ARG;
    int nt = fnn__threads_for((double)NC * (double)(g.OH * g.OW) * (double)(g.kh * g.kw));
    FNN_PARALLEL_RANGES(nt, NC, lo, hi, avg_planes_bw(dx, dy, &g, lo, hi));
    return FNN_OK;
}

/* ---------------------------------------------------- adaptive average */

static void adaptive_planes(float *FNN_RESTRICT y, const float *FNN_RESTRICT x, int64_t H,
                            int64_t W, int64_t OH, int64_t OW, int64_t lo, int64_t hi) {
    for (int64_t q = lo; q < hi; q++) {
        const float *xp = x + q * H * W;
        float *yp = y + q * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
                float s = 0.0f;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) s += xp[h * W + w];
                yp[oh * OW + ow] = s / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
}

static void adaptive_planes_bw(float *FNN_RESTRICT dx, const float *FNN_RESTRICT dy, int64_t H,
                               int64_t W, int64_t OH, int64_t OW, int64_t lo, int64_t hi) {
    for (int64_t q = lo; q < hi; q++) {
        const float *dyp = dy + q * OH * OW;
        float *dxp = dx + q * H * W;
        memset(dxp, 0, (size_t)(H * W) * sizeof(float));
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
                float v = dyp[oh * OW + ow] / (float)((h1 - h0) * (w1 - w0));
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) dxp[h * W + w] += v;
            }
        }
    }
}

static fnn_status adaptive_check(int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW) {
    int64_t t;
    if (NC < 0 || H < 1 || W < 1 || OH < 1 || OW < 1 || fnn__mul_overflow(NC, H * W, &t) ||
        fnn__mul_overflow(NC, OH * OW, &t))
        return FNN_ERR_SIZE;
    return FNN_OK;
}

fnn_status fnn_adaptive_avg_pool2d_forward(float *y, const float *x, int64_t NC, int64_t H,
                                           int64_t W, int64_t OH, int64_t OW) {
    fnn_status st = adaptive_check(NC, H, W, OH, OW);
    if (st != FNN_OK || NC == 0) return st;
    if (!x || !y) return FNN_ERR_ARG;
    int nt = fnn__threads_for((double)NC * (double)(H * W + OH * OW));
    FNN_PARALLEL_RANGES(nt, NC, lo, hi, adaptive_planes(y, x, H, W, OH, OW, lo, hi));
    return FNN_OK;
}

fnn_status fnn_adaptive_avg_pool2d_backward(float *dx, const float *dy, int64_t NC, int64_t H,
                                            int64_t W, int64_t OH, int64_t OW) {
    fnn_status st = adaptive_check(NC, H, W, OH, OW);
    if (st != FNN_OK || NC == 0 || !dx) return st;
    if (!dy) return FNN_ERR_ARG;
    int nt = fnn__threads_for((double)NC * (double)(H * W + OH * OW));
    FNN_PARALLEL_RANGES(nt, NC, lo, hi, adaptive_planes_bw(dx, dy, H, W, OH, OW, lo, hi));
    return FNN_OK;
}
