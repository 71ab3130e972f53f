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
#include "gemm_internal.h"   /* FNN_GEMM_X86, the chosen ISA */

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

/* the 2x2/2 window without padding, every window inside the input */
static int is_2x2(const pool_geom *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 &&
           g->pw == 0 && 2 * g->OH <= g->H && 2 * g->OW <= g->W;
}

/* ------------------------------------------- 2x2/2 max pool on AVX-512 */
/* The 2x2/2 window inside the input on AVX-512 (when the SGEMM kernel chosen
   is the AVX-512 one, so FASTNN_ISA caps this path too): 16 windows of an
   output row at a time, their 32 input columns of each row loaded with a
   mask (a row's tail needs no scalar loop) and split into even and odd
   columns with two permutes; backward interleaves its 4 outputs back the
   same way. The comparisons and selects are the scalar loops' own, lane by
   lane (forward: a later element wins on > or when it is NaN; backward: the
   first element equal to y or NaN gets dy, the others +0), so the bits are
   those of max_planes / max_2x2_bw_plane. */
#ifdef FNN_GEMM_X86
#include <immintrin.h>
#define POOL_T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))

static int pool_avx512(void) {
    return fnn__sgemm_kernel_get() == &fnn__sgemm_kernel_avx512;
}

/* the even (*a) and odd (*b) columns of p[0 .. 2n), n <= 16 windows */
static inline POOL_T512 void split_pairs(const float *p, int64_t n, __m512 *a, __m512 *b) {
    const __mmask16 lo = n >= 8 ? (__mmask16)0xFFFF : (__mmask16)((1u << (2 * n)) - 1);
    const __mmask16 hi = n > 8 ? (__mmask16)((1u << (2 * n - 16)) - 1) : (__mmask16)0;
    const __m512 v0 = _mm512_maskz_loadu_ps(lo, p), v1 = _mm512_maskz_loadu_ps(hi, p + 16);
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                         28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                         29, 31);
    *a = _mm512_permutex2var_ps(v0, ev, v1);
    *b = _mm512_permutex2var_ps(v0, od, v1);
}

/* p[0 .. 2n) = a0 b0 a1 b1 ... (n <= 16 windows) */
static inline POOL_T512 void store_pairs(float *p, int64_t n, __m512 a, __m512 b) {
    const __mmask16 lo = n >= 8 ? (__mmask16)0xFFFF : (__mmask16)((1u << (2 * n)) - 1);
    const __mmask16 hi = n > 8 ? (__mmask16)((1u << (2 * n - 16)) - 1) : (__mmask16)0;
    const __m512i il0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7,
                                          23);
    const __m512i il1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                          15, 31);
    _mm512_mask_storeu_ps(p, lo, _mm512_permutex2var_ps(a, il0, b));
    _mm512_mask_storeu_ps(p + 16, hi, _mm512_permutex2var_ps(a, il1, b));
}

/* Two output rows of n <= 8 windows each in one vector: lanes [0, n) from
   p0's pairs, lanes [8, 8 + n) from p1's; *a even columns, *b odd. */
static inline POOL_T512 void split_two_rows(const float *p0, const float *p1, int64_t n,
                                            __m512 *a, __m512 *b) {
    const __mmask16 k = (__mmask16)((1u << (2 * n)) - 1);
    const __m512 v0 = _mm512_maskz_loadu_ps(k, p0), v1 = _mm512_maskz_loadu_ps(k, p1);
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                         28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                         29, 31);
    *a = _mm512_permutex2var_ps(v0, ev, v1);
    *b = _mm512_permutex2var_ps(v0, od, v1);
}

/* the inverse: p0[0 .. 2n) = a0 b0 ... from lanes [0, n), p1 from [8, 8 + n) */
static inline POOL_T512 void store_two_rows(float *p0, float *p1, int64_t n, __m512 a,
                                            __m512 b) {
    const __mmask16 k = (__mmask16)((1u << (2 * n)) - 1);
    const __m512i il0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7,
                                          23);
    const __m512i il1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                          15, 31);
    _mm512_mask_storeu_ps(p0, k, _mm512_permutex2var_ps(a, il0, b));
    _mm512_mask_storeu_ps(p1, k, _mm512_permutex2var_ps(a, il1, b));
}

/* v wins over m: v > m, or v is NaN */
static inline POOL_T512 __mmask16 wins(__m512 v, __m512 m) {
    return (__mmask16)(_mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) |
                       _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
}

/* v is the window's max y: equal to it, or NaN */
static inline POOL_T512 __mmask16 is_max(__m512 v, __m512 y) {
    return (__mmask16)(_mm512_cmp_ps_mask(v, y, _CMP_EQ_OQ) |
                       _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
}

/* rows: OH output rows of OW windows, input rows 2 oh and 2 oh + 1 at x +
   2 oh W (several whole planes in a row when H = 2 OH and W = 2 OW) */
/* with relu: the lanes where v > 0 (ReLU's backward mask, a NaN fails it), else all */
static inline POOL_T512 __mmask16 relu_mask(__m512 v, int relu) {
    return relu ? _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ) : (__mmask16)0xFFFF;
}

static POOL_T512 void max_2x2_fwd_rows_avx512(float *FNN_RESTRICT y,
                                              const float *FNN_RESTRICT x, int64_t W,
                                              int64_t OH, int64_t OW) {
    int64_t oh = 0;
    if (OW <= 8) {   /* narrow rows: two output rows a vector */
        const __mmask16 k2 = (__mmask16)((1u << (2 * OW)) - 1);
        const __mmask16 kx = (__mmask16)(((1u << OW) - 1) * 0x101u);
        for (; oh + 1 < OH; oh += 2) {
            const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
            __m512 a, b, c, d;
            split_two_rows(r0, r0 + 2 * W, OW, &a, &b);
            split_two_rows(r1, r1 + 2 * W, OW, &c, &d);
            __m512 m = _mm512_mask_mov_ps(a, wins(b, a), b);
            m = _mm512_mask_mov_ps(m, wins(c, m), c);
            m = _mm512_mask_mov_ps(m, wins(d, m), d);
            _mm512_mask_storeu_ps(y + oh * OW, k2, _mm512_maskz_compress_ps(kx, m));
        }
    }
    for (; oh < OH; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        for (int64_t ow = 0; ow < OW; ow += 16) {
            const int64_t n = OW - ow < 16 ? OW - ow : 16;
            __m512 a, b, c, d;
            split_pairs(r0 + 2 * ow, n, &a, &b);
            split_pairs(r1 + 2 * ow, n, &c, &d);
            __m512 m = _mm512_mask_mov_ps(a, wins(b, a), b);
            m = _mm512_mask_mov_ps(m, wins(c, m), c);
            m = _mm512_mask_mov_ps(m, wins(d, m), d);
            _mm512_mask_storeu_ps(y + oh * OW + ow, (__mmask16)((1u << n) - 1), m);
        }
    }
}

/* dx of max_2x2_fwd_rows_avx512's rows; y, dy: its outputs */
static POOL_T512 void max_2x2_bw_rows_avx512(float *FNN_RESTRICT dx,
                                             const float *FNN_RESTRICT x,
                                             const float *FNN_RESTRICT y,
                                             const float *FNN_RESTRICT dy, int64_t W,
                                             int64_t OH, int64_t OW, int relu) {
    int64_t oh = 0;
    if (OW <= 8) {   /* narrow rows: two output rows a vector */
        const __mmask16 k2 = (__mmask16)((1u << (2 * OW)) - 1);
        const __mmask16 kx = (__mmask16)(((1u << OW) - 1) * 0x101u);
        for (; oh + 1 < OH; oh += 2) {
            const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
            float *q0 = dx + 2 * oh * W, *q1 = q0 + W;
            __m512 a, b, c, d;
            split_two_rows(r0, r0 + 2 * W, OW, &a, &b);
            split_two_rows(r1, r1 + 2 * W, OW, &c, &d);
            const __m512 m = _mm512_maskz_expand_ps(kx, _mm512_maskz_loadu_ps(k2, y + oh * OW));
            const __m512 g = _mm512_maskz_expand_ps(kx, _mm512_maskz_loadu_ps(k2, dy + oh * OW));
            const __mmask16 ka = is_max(a, m);
            const __mmask16 kb = (__mmask16)(~ka & is_max(b, m));
            const __mmask16 kc = (__mmask16)(~(ka | kb) & is_max(c, m));
            const __mmask16 kd = (__mmask16)~(ka | kb | kc);
            const __mmask16 ra = relu_mask(a, relu), rb = relu_mask(b, relu);
            const __mmask16 rc = relu_mask(c, relu), rd = relu_mask(d, relu);
            store_two_rows(q0, q0 + 2 * W, OW, _mm512_maskz_mov_ps(ka & ra, g),
                           _mm512_maskz_mov_ps(kb & rb, g));
            store_two_rows(q1, q1 + 2 * W, OW, _mm512_maskz_mov_ps(kc & rc, g),
                           _mm512_maskz_mov_ps(kd & rd, g));
        }
    }
    for (; oh < OH; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        float *q0 = dx + 2 * oh * W, *q1 = q0 + W;
        for (int64_t ow = 0; ow < OW; ow += 16) {
            const int64_t n = OW - ow < 16 ? OW - ow : 16;
            const __mmask16 mn = (__mmask16)((1u << n) - 1);
            __m512 a, b, c, d;
            split_pairs(r0 + 2 * ow, n, &a, &b);
            split_pairs(r1 + 2 * ow, n, &c, &d);
            const __m512 m = _mm512_maskz_loadu_ps(mn, y + oh * OW + ow);
            const __m512 g = _mm512_maskz_loadu_ps(mn, dy + oh * OW + ow);
            const __mmask16 ka = is_max(a, m);
            const __mmask16 kb = (__mmask16)(~ka & is_max(b, m));
            const __mmask16 kc = (__mmask16)(~(ka | kb) & is_max(c, m));
            const __mmask16 kd = (__mmask16)~(ka | kb | kc);
            const __mmask16 ra = relu_mask(a, relu), rb = relu_mask(b, relu);
            const __mmask16 rc = relu_mask(c, relu), rd = relu_mask(d, relu);
            store_pairs(q0 + 2 * ow, n, _mm512_maskz_mov_ps(ka & ra, g),
                        _mm512_maskz_mov_ps(kb & rb, g));
            store_pairs(q1 + 2 * ow, n, _mm512_maskz_mov_ps(kc & rc, g),
                        _mm512_maskz_mov_ps(kd & rd, g));
        }
    }
}
#endif

/* ------------------------------------------------------------ max pool */

static void max_planes(float *FNN_RESTRICT y, const float *FNN_RESTRICT x, const pool_geom *g,
                       int64_t lo, int64_t hi) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
#ifdef FNN_GEMM_X86
    const int avx512 = pool_avx512() && is_2x2(g);
    if (avx512 && H == 2 * OH && W == 2 * OW) {   /* the planes' rows follow on */
        max_2x2_fwd_rows_avx512(y + lo * OH * OW, x + lo * H * W, W, (hi - lo) * OH, OW);
        return;
    }
#endif
    for (int64_t q = lo; q < hi; q++) {
        const float *xp = x + q * H * W;
        float *yp = y + q * OH * OW;
        if (is_2x2(g)) {
            /* the common 2x2/2 window, always inside: no clipping */
#ifdef FNN_GEMM_X86
            if (avx512) {
                max_2x2_fwd_rows_avx512(yp, xp, W, OH, OW);
                continue;
            }
#endif
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

/* d = x > 0 ? d : 0 over n elements (csrc/activations.c's relu backward, in place) */
FNN_SIMD_CLONES
static void relu_mask_plane(float *FNN_RESTRICT d, const float *FNN_RESTRICT x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = d[i];
        d[i] = x[i] > 0.0f ? v : 0.0f;
    }
}

/* relu: also ReLU's backward below the pool (x is the ReLU's output): an
   element's gradient is kept only where x > 0 -- the values relu_backward
   would write over this dx, bit for bit, without its pass over memory. */
static void max_planes_bw(float *FNN_RESTRICT dx, const float *FNN_RESTRICT dy,
                          const float *FNN_RESTRICT x, const float *FNN_RESTRICT y,
                          const pool_geom *g, int64_t lo, int64_t hi, int relu) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
#ifdef FNN_GEMM_X86
    const int avx512 = pool_avx512() && is_2x2(g);
    if (avx512 && H == 2 * OH && W == 2 * OW) {   /* the planes' rows follow on */
        max_2x2_bw_rows_avx512(dx + lo * H * W, x + lo * H * W, y + lo * OH * OW,
                               dy + lo * OH * OW, W, (hi - lo) * OH, OW, relu);
        return;
    }
#endif
    for (int64_t q = lo; q < hi; q++) {
        const float *xp = x + q * H * W;
        const float *yp = y + q * OH * OW, *dyp = dy + q * OH * OW;
        float *dxp = dx + q * H * W;
        if (is_2x2(g)) {
            /* 2x2/2: disjoint windows inside the input, the first match of 4 */
#ifdef FNN_GEMM_X86
            if (avx512) {
                max_2x2_bw_rows_avx512(dxp, xp, yp, dyp, W, OH, OW, relu);
            } else
#endif
            {
                max_2x2_bw_plane(dxp, xp, yp, dyp, W, OH, OW);
                if (relu) relu_mask_plane(dxp, xp, H * W);
            }
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
        if (relu) relu_mask_plane(dxp, xp, H * W);
    }
}

/* Cost of one window element in fnn__threads_for's unit (a GEMM flop, see
   csrc/activations.c's COST_CHEAP): max pooling measured 0.16-0.29 ns forward
   and 0.33-0.79 ns backward a window element on 1 thread (2x2 windows, LeNet
   and VGG shapes), i.e. about 16-29 and 33-79 GEMM flops at 100 GFLOPS; at 1,
   LeNet's pool backward (133 us) ran on one thread. The AVX-512 2x2/2 path
   measured 0.10-0.13 ns forward and 0.18-0.25 backward in cache (LeNet's
   two pools), about twice that inside a training step, where x comes from
   memory: the same thresholds still split it from about 10 us. */
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
    return fnn__max_pool2d_backward_relu(dx, dy, x, y, NC, H, W, kernel, stride, padding, flags,
                                         0);
}

fnn_status fnn__max_pool2d_backward_relu(float *dx, const float *dy, const float *x,
                                         const float *y, int64_t NC, int64_t H, int64_t W,
                                         const int64_t *kernel, const int64_t *stride,
                                         const int64_t *padding, int32_t flags, int relu) {
    pool_geom g;
    fnn_status st = geom(&g, NC, H, W, kernel, stride, padding, flags);
    if (st != FNN_OK) return st;
    if (NC == 0 || !dx) return FNN_OK;
    if (!dy || !x || !y) return FNN_ERR_ARG;
    int nt = fnn__threads_for(MAX_BWD_COST * (double)NC * (double)(g.OH * g.OW) *
                              (double)(g.kh * g.kw));
    FNN_PARALLEL_RANGES(nt, NC, lo, hi, max_planes_bw(dx, dy, x, y, &g, lo, hi, relu));
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
