/*
 * conv.c -- 2-D and 1-D convolution (cross-correlation, as PyTorch) over
 * NCHW / NCL samples: the kernels of the ops conv2d and conv1d (ops.c).
 *
 * Per sample x (C, H, W), weight (O, C/G, KH, KW), bias (O), output
 * (O, OH, OW) with G groups (group g maps input channels [g C/G, (g+1) C/G)
 * to output channels [g O/G, (g+1) O/G)):
 *   y[o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] x[gC/G + c, i sh - pt + u dh,
 *                                                  j sw - pl + v dw]
 * with zeros outside the input. Padding: pt rows on top, pb at the bottom,
 * pl, pr columns left and right (PyTorch's 'same' pads one more at the
 * bottom / right when the total is odd). OH = (H + pt + pb - dh (KH-1) - 1)
 * / sh + 1 (floor), likewise OW. Conv1d is the case H = KH = 1.
 *
 * im2col + GEMM: the patches of one sample and group become the (C/G KH KW,
 * OH OW) matrix `col` (scratch), and y_g = W_g . col is one fnn_sgemm;
 * backward: dW_g += dy_g . col^T with the forward's col, still in scratch
 * (the model keeps a node's scratch from forward to backward, as for
 * layer_norm), then dcol = W_g^T . dy_g over it and col2im. 1x1
 * kernels with stride 1 and no padding use x itself.
 * On AVX-512, with <= 16 output channels per group and >= 256 output pixels:
 * dW by dot products over the whole batch (dw_dot) instead of per-sample
 * GEMMs, and with <= 64 patch elements and stride-1 columns as well a direct
 * forward and dW that read x in place, vectors along the output row, FMA
 * intrinsics (fwd_direct, dw_direct: LeNet's conv1; no im2col). An earlier
 * plain-C direct loop (no FMA: -ffp-contract=off) measured 3-8x slower than
 * im2col + GEMM on LeNet's 1->6 and 6->16 5x5 at batch 64; the intrinsics
 * version is ~2x faster on 1->6 and is not used for 6->16 (P = 100).
 * Otherwise dW by per-sample GEMMs, the shape chosen by measurement (see
 * dwt_block): wide patch matrices as dy . col^T over each thread's block of
 * columns (dw_cols), up to 128 output channels per group as dW^T = col .
 * dy^T in blocks of rows (dwt_block), else dy . col^T in 32-column blocks.
 * dx: with stride 1, >= FLIP_MIN_C input channels per group and padding at
 * most the dilated kernel's reach, as the forward conv of dy with the
 * flipped, transposed weight (dx_flip: one GEMM per sample and group
 * straight into dx); otherwise dcol = W^T . dy (GEMM) and col2im.
 * Forward and dx split the samples over threads (each sample written by one
 * thread); dW splits its columns into blocks (dw_cols: fixed, or one per
 * thread; dwt_block: sized by the thread count, which the per-element FMA
 * order does not see;
 * dw_dot and dw_direct: fixed tiles) and every block adds the samples in order 0..N-1
 * (one GEMM per sample and group, beta 1; or one register tile); db sums
 * in a fixed order: the bits do not depend on threads.
 */
#include <string.h>
#include "fnn_internal.h"
#include "fnn_conv.h"
#include "gemm_internal.h"

#ifdef FNN_GEMM_X86
#include <immintrin.h>
#endif

static int pointwise(const fnn_conv_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 &&
           g->pb == 0 && g->pl == 0 && g->pr == 0;
}

int64_t fnn__conv_scratch(const fnn_conv_geom *g) {
    if (pointwise(g)) return 0;
    return g->C * g->KH * g->KW * g->OH * g->OW;
}

/* ------------------------------------------------------------- im2col */

/* col (C KH KW, OH OW) of one sample's channels x (C, H, W). Rows are short
   (LeNet: 28 floats): plain loops, not memcpy/memset calls. */
FNN_SIMD_CLONES
static void im2col(float *FNN_RESTRICT col, const float *FNN_RESTRICT x, const fnn_conv_geom *g,
                   int64_t C) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t c = 0; c < C; c++)
        for (int64_t u = 0; u < g->KH; u++)
            for (int64_t v = 0; v < g->KW; v++) {
                float *FNN_RESTRICT dst = col + ((c * g->KH + u) * g->KW + v) * OH * OW;
                const float *xc = x + c * H * W;
                for (int64_t i = 0; i < OH; i++) {
                    const int64_t h = i * g->sh - g->pt + u * g->dh;
                    float *d = dst + i * OW;
                    if (h < 0 || h >= H) {
                        for (int64_t j = 0; j < OW; j++) d[j] = 0.0f;
                        continue;
                    }
                    const float *xr = xc + h * W;
                    const int64_t w0 = v * g->dw - g->pl;
                    if (g->sw == 1) {
                        /* columns j with 0 <= j + w0 < W */
                        int64_t ja = w0 < 0 ? -w0 : 0, jb = W - w0;
                        if (jb > OW) jb = OW;
                        if (ja > OW) ja = OW;
                        if (jb < ja) jb = ja;
                        for (int64_t j = 0; j < ja; j++) d[j] = 0.0f;
                        const float *xs = xr + w0;
                        for (int64_t j = ja; j < jb; j++) d[j] = xs[j];
                        for (int64_t j = jb; j < OW; j++) d[j] = 0.0f;
                    } else {
                        for (int64_t j = 0; j < OW; j++) {
                            const int64_t w = j * g->sw + w0;
                            d[j] = w >= 0 && w < W ? xr[w] : 0.0f;
                        }
                    }
                }
            }
}

/* dx (C, H, W) += the patches col (C KH KW, OH OW) put back (dx zeroed by the caller) */
FNN_SIMD_CLONES
static void col2im(float *FNN_RESTRICT dx, const float *FNN_RESTRICT col, const fnn_conv_geom *g,
                   int64_t C) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    for (int64_t c = 0; c < C; c++)
        for (int64_t u = 0; u < g->KH; u++)
            for (int64_t v = 0; v < g->KW; v++) {
                const float *src = col + ((c * g->KH + u) * g->KW + v) * OH * OW;
                float *dc = dx + c * H * W;
                for (int64_t i = 0; i < OH; i++) {
                    const int64_t h = i * g->sh - g->pt + u * g->dh;
                    if (h < 0 || h >= H) continue;
                    float *FNN_RESTRICT dr = dc + h * W;
                    const float *s = src + i * OW;
                    const int64_t w0 = v * g->dw - g->pl;
                    if (g->sw == 1) {
                        int64_t ja = w0 < 0 ? -w0 : 0, jb = W - w0;
                        if (jb > OW) jb = OW;
                        for (int64_t j = ja; j < jb; j++) dr[j + w0] += s[j];
                    } else {
                        for (int64_t j = 0; j < OW; j++) {
                            const int64_t w = j * g->sw + w0;
                            if (w >= 0 && w < W) dr[w] += s[j];
                        }
                    }
                }
            }
}

#ifdef FNN_GEMM_X86
/* AVX-512 im2col / col2im for stride-1 columns (any dilation, padding):
   every output row is whole 16-float masked vectors -- LeNet's rows of 10
   and 28 floats cost the plain loops' scalar tails and bound arithmetic
   (perf: im2col + col2im 22% of a LeNet step). Same elements, and col2im
   adds in the same order (c, u, v, i), so the same bits as the plain
   loops. Used when the process's GEMM kernel is the AVX-512 one (cpu.c;
   FASTNN_ISA=avx2|generic selects the plain loops). */
#define T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))

/* lanes j0 + [0, 16) that fall in [lo, hi) */
T512 static inline __mmask16 lane_mask(int64_t j0, int64_t lo, int64_t hi) {
    int64_t a = lo - j0, b = hi - j0;
    if (a < 0) a = 0;
    if (b > 16) b = 16;
    if (b <= a) return 0;
    return (__mmask16)((((uint32_t)1 << b) - 1) & ~(((uint32_t)1 << a) - 1));
}

/* The lane masks of a call, which depend only on the column offset v and the
   16-column chunk q (not on c, u, i), computed once: per element the masks
   cost more than the copy (perf: the mask arithmetic was most of im2col_512).
   Rows up to MASK_Q chunks wide, kernels up to MASK_V wide (use_512). */
#define MASK_V 16
#define MASK_Q 32
typedef struct {
    __mmask16 in[MASK_V][MASK_Q];   /* im2col: chunk q of output row, lanes with 0 <= j + off_v < W */
    __mmask16 out[MASK_Q];          /* lanes of chunk q inside the output row (j < OW) */
} im2col_masks;

T512 static void im2col_masks_of(im2col_masks *mk, const fnn_conv_geom *g) {
    const int64_t W = g->W, OW = g->OW, nq = (OW + 15) / 16;
    for (int64_t q = 0; q < nq; q++) mk->out[q] = lane_mask(16 * q, 0, OW);
    for (int64_t v = 0; v < g->KW; v++) {
        const int64_t w0 = v * g->dw - g->pl;
        for (int64_t q = 0; q < nq; q++) mk->in[v][q] = lane_mask(16 * q, -w0, W - w0);
    }
}

T512 static void im2col_512(float *col, const float *x, const fnn_conv_geom *g, int64_t C) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, nq = (OW + 15) / 16;
    const __m512 z = _mm512_setzero_ps();
    im2col_masks mk;
    im2col_masks_of(&mk, g);
    for (int64_t c = 0; c < C; c++)
        for (int64_t u = 0; u < g->KH; u++)
            for (int64_t v = 0; v < g->KW; v++) {
                float *dst = col + ((c * g->KH + u) * g->KW + v) * OH * OW;
                const float *xc = x + c * H * W;
                const int64_t w0 = v * g->dw - g->pl;
                const __mmask16 *mi = mk.in[v];
                for (int64_t i = 0; i < OH; i++) {
                    const int64_t h = i * g->sh - g->pt + u * g->dh;
                    float *d = dst + i * OW;
                    if (h < 0 || h >= H) {
                        for (int64_t q = 0; q < nq; q++)
                            _mm512_mask_storeu_ps(d + 16 * q, mk.out[q], z);
                        continue;
                    }
                    const float *xs = xc + h * W + w0;
                    for (int64_t q = 0; q < nq; q++) {
                        __m512 t = _mm512_maskz_loadu_ps(mi[q], xs + 16 * q);
                        _mm512_mask_storeu_ps(d + 16 * q, mk.out[q], t);
                    }
                }
            }
}

/* Loop order c, u, i, then v inside: for a fixed (c, u) each input row h
   comes from one output row i, so every dx element still gets its adds in
   the order (u, v, i) of col2im -- but a dx row is loaded and stored once per
   (c, u, i), in registers across v (KW overlapping masked stores to the same
   row measured slower than the plain loop: store forwarding fails). The masks
   depend only on (v, 16-column chunk of the dx row): computed once per call. */
T512 static void col2im_512(float *dx, const float *col, const fnn_conv_geom *g, int64_t C) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, KW = g->KW;
    const int64_t nq = (W + 15) / 16;
    __mmask16 mw[MASK_Q], m[MASK_Q][MASK_V];   /* m[q][v]: dr[16q + l] += s[16q + l - off_v] */
    for (int64_t q = 0; q < nq; q++) {
        mw[q] = lane_mask(16 * q, 0, W);
        for (int64_t v = 0; v < KW; v++) {
            const int64_t off = v * g->dw - g->pl;
            m[q][v] = mw[q] & lane_mask(16 * q, off, off + OW);
        }
    }
    for (int64_t c = 0; c < C; c++)
        for (int64_t u = 0; u < g->KH; u++) {
            const float *src = col + (c * g->KH + u) * KW * OH * OW;
            float *dc = dx + c * H * W;
            for (int64_t i = 0; i < OH; i++) {
                const int64_t h = i * g->sh - g->pt + u * g->dh;
                if (h < 0 || h >= H) continue;
                float *dr = dc + h * W;
                for (int64_t q = 0; q < nq; q++) {
                    const int64_t w0 = 16 * q;
                    __m512 acc = _mm512_maskz_loadu_ps(mw[q], dr + w0);
                    for (int64_t v = 0; v < KW; v++) {
                        /* dr[j + off] += s[j] for j in [0, OW), 0 <= j + off < W */
                        const __mmask16 mv = m[q][v];
                        if (!mv) continue;
                        const int64_t off = v * g->dw - g->pl;
                        const float *s = src + v * OH * OW + i * OW;
                        __m512 t = _mm512_maskz_loadu_ps(mv, s + (w0 - off));
                        acc = _mm512_mask_add_ps(acc, mv, acc, t);
                    }
                    _mm512_mask_storeu_ps(dr + w0, mw[q], acc);
                }
            }
        }
}
#undef T512

/* dW by dot products along P, for few output channels per group (Og <= DW_DOT_MAX_O)
   and long rows (P >= DW_DOT_MIN_P pixels):
   dW_g (Og, Kg) += sum_n dy_ng (Og, P) . col_ng^T over the whole batch in one
   pass per register tile, 16-lane partial sums kept in registers across all
   samples and reduced once at the end. The GEMM way (one NT call per sample
   and DW_BLOCK columns) pays a transposing pack of col per call and leaves
   most lanes idle on LeNet's Og = 6 / 16 rows (perf: dW 18% of a LeNet step,
   half of it in pack_bt). Tile: RO rows of dy (channels) x RK rows of col
   (patch elements), RO*RK <= 24 accumulators; per 16 pixels RO + RK loads
   and RO*RK FMAs. Measured with the standalone conv2d_backward (no dx, batch
   64, 1 thread, best of 30): LeNet's conv1 (P = 784) 0.89-0.91 ms against
   the GEMM way's 1.0-1.3; conv2 (P = 100) slower than the GEMM way (7
   vectors per sample row: loop and tail overhead), hence DW_DOT_MIN_P. Every tile is summed in one fixed order (n, then p in
   vectors, lane partials reduced by _mm512_reduce_add_ps), so the bits do
   not depend on threads (which split the tiles). */
#define T512F __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define T512F_INLINE static inline __attribute__((always_inline, \
    target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define DW_DOT_MAX_O 16
#define DW_DOT_MIN_P 256

/* dw[o*ldw + k] += sum_n sum_p dy[n*sdy + o*P + p] src[n*ssrc + k*P + p]
   for o < RO, k < RK (compile-time after inlining) */
T512F_INLINE void dw_dot_tile(const int RO, const int RK, float *dw, int64_t ldw,
                              const float *dy, int64_t sdy, const float *src, int64_t ssrc,
                              int64_t P, int64_t N) {
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int o = 0; o < RO; o++)
#pragma GCC unroll 4
        for (int k = 0; k < RK; k++) acc[o][k] = _mm512_setzero_ps();
    const int64_t Pv = P / 16 * 16;
    const __mmask16 mt = (__mmask16)((1u << (P - Pv)) - 1u);
    for (int64_t n = 0; n < N; n++) {
        const float *d = dy + n * sdy, *s = src + n * ssrc;
        for (int64_t p = 0; p <= P - 16; p += 16) {
            __m512 sv[4];
#pragma GCC unroll 4
            for (int k = 0; k < RK; k++) sv[k] = _mm512_loadu_ps(s + k * P + p);
#pragma GCC unroll 8
            for (int o = 0; o < RO; o++) {
                const __m512 dv = _mm512_loadu_ps(d + o * P + p);
#pragma GCC unroll 4
                for (int k = 0; k < RK; k++) acc[o][k] = _mm512_fmadd_ps(dv, sv[k], acc[o][k]);
            }
        }
        if (mt) {
            __m512 sv[4];
#pragma GCC unroll 4
            for (int k = 0; k < RK; k++) sv[k] = _mm512_maskz_loadu_ps(mt, s + k * P + Pv);
#pragma GCC unroll 8
            for (int o = 0; o < RO; o++) {
                const __m512 dv = _mm512_maskz_loadu_ps(mt, d + o * P + Pv);
#pragma GCC unroll 4
                for (int k = 0; k < RK; k++) acc[o][k] = _mm512_fmadd_ps(dv, sv[k], acc[o][k]);
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < RO; o++)
#pragma GCC unroll 4
        for (int k = 0; k < RK; k++) dw[o * ldw + k] += _mm512_reduce_add_ps(acc[o][k]);
}

/* The (ro, rk) switch shared by dw_dot and dw_direct: TILE(RO, RK, args...)
   with compile-time RO <= 8 and RK <= 4 (RK 4 only with RO <= 6, the 24
   accumulators plus sources that fit the 32 zmm registers). */
#define DW_TILE_RO(TILE, RK, ...)                                           \
    switch (ro) {                                                           \
    case 1: TILE(1, RK, __VA_ARGS__); break;                                \
    case 2: TILE(2, RK, __VA_ARGS__); break;                                \
    case 3: TILE(3, RK, __VA_ARGS__); break;                                \
    case 4: TILE(4, RK, __VA_ARGS__); break;                                \
    case 5: TILE(5, RK, __VA_ARGS__); break;                                \
    case 6: TILE(6, RK, __VA_ARGS__); break;                                \
    case 7: TILE(7, RK, __VA_ARGS__); break;                                \
    default: TILE(8, RK, __VA_ARGS__); break;                               \
    }
#define DW_TILE_SWITCH(TILE, ...)                                           \
    switch (rk) {                                                           \
    case 1: DW_TILE_RO(TILE, 1, __VA_ARGS__) break;                         \
    case 2: DW_TILE_RO(TILE, 2, __VA_ARGS__) break;                         \
    case 3: DW_TILE_RO(TILE, 3, __VA_ARGS__) break;                         \
    default:                                                                \
        switch (ro) {                                                       \
        case 1: TILE(1, 4, __VA_ARGS__); break;                             \
        case 2: TILE(2, 4, __VA_ARGS__); break;                             \
        case 3: TILE(3, 4, __VA_ARGS__); break;                             \
        case 4: TILE(4, 4, __VA_ARGS__); break;                             \
        case 5: TILE(5, 4, __VA_ARGS__); break;                             \
        default: TILE(6, 4, __VA_ARGS__); break;                            \
        }                                                                   \
        break;                                                              \
    }

#define DW_DOT_ARGS dw, ldw, dy, sdy, src, ssrc, P, N
/* one tile: ro <= 8 rows of dy, rk <= 4 (rk 4 only with ro <= 6) rows of src */
T512F static void dw_dot(int ro, int rk, float *dw, int64_t ldw, const float *dy, int64_t sdy,
                         const float *src, int64_t ssrc, int64_t P, int64_t N) {
    DW_TILE_SWITCH(dw_dot_tile, DW_DOT_ARGS)
}
/* Direct convolution for few input channels (use_direct: Kg <= DIRECT_MAX_K
   patch elements, Og <= 16 channels, P >= DW_DOT_MIN_P, stride-1 columns):
   LeNet's conv1 (1 -> 6, 5x5 on 28x28) expands each sample 25-fold into
   col, so im2col wrote and dW read back 5 MB per step (L3, not L2:
   perf put the stores first in im2col_512). Here forward and dW read x
   in place through the same lane masks as im2col_512, a row of 16 output
   pixels at a time: forward keeps Og accumulators (one per channel), each
   input vector feeding Og FMAs; dW is dw_dot's tile with the col rows
   replaced by the shifted input rows they copy. Padding rows are zero
   vectors, not skipped, so 0 * w behaves as on the im2col path (NaN/Inf).
   dx keeps the GEMM + col2im way (it never read the forward's patches). */
#define DIRECT_MAX_K 64

/* y (Og, OH, OW) of one sample and group from x (Cg, H, W), w (Og, Kg), b (Og)
   or NULL; RO = Og (compile-time after inlining) */
T512F_INLINE void fwd_direct_tile(const int RO, float *y, const float *x, const float *w,
                                  const float *b, const fnn_conv_geom *g, int64_t Cg,
                                  const im2col_masks *mk) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, P = OH * OW;
    const int64_t Kg = Cg * g->KH * g->KW, nq = (OW + 15) / 16;
    const __m512 z = _mm512_setzero_ps();
    for (int64_t i = 0; i < OH; i++)
        for (int64_t q = 0; q < nq; q++) {
            __m512 acc[16];
#pragma GCC unroll 16
            for (int o = 0; o < RO; o++) acc[o] = z;
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t u = 0; u < g->KH; u++) {
                    const int64_t h = i * g->sh - g->pt + u * g->dh;
                    const int in = h >= 0 && h < H;
                    const float *xr = in ? x + c * H * W + h * W + 16 * q - g->pl : x;
                    const float *wk = w + (c * g->KH + u) * g->KW;
                    for (int64_t v = 0; v < g->KW; v++) {
                        const __m512 xv =
                            in ? _mm512_maskz_loadu_ps(mk->in[v][q], xr + v * g->dw) : z;
#pragma GCC unroll 16
                        for (int o = 0; o < RO; o++)
                            acc[o] = _mm512_fmadd_ps(_mm512_set1_ps(wk[o * Kg + v]), xv, acc[o]);
                    }
                }
            float *yq = y + i * OW + 16 * q;
#pragma GCC unroll 16
            for (int o = 0; o < RO; o++) {
                __m512 r = b ? _mm512_add_ps(acc[o], _mm512_set1_ps(b[o])) : acc[o];
                _mm512_mask_storeu_ps(yq + o * P, mk->out[q], r);
            }
        }
}

#define FWD_DIRECT_ARGS y, x, w, b, g, Cg, mk
T512F static void fwd_direct(int ro, float *y, const float *x, const float *w, const float *b,
                             const fnn_conv_geom *g, int64_t Cg, const im2col_masks *mk) {
    switch (ro) {
    case 1: fwd_direct_tile(1, FWD_DIRECT_ARGS); break;
    case 2: fwd_direct_tile(2, FWD_DIRECT_ARGS); break;
    case 3: fwd_direct_tile(3, FWD_DIRECT_ARGS); break;
    case 4: fwd_direct_tile(4, FWD_DIRECT_ARGS); break;
    case 5: fwd_direct_tile(5, FWD_DIRECT_ARGS); break;
    case 6: fwd_direct_tile(6, FWD_DIRECT_ARGS); break;
    case 7: fwd_direct_tile(7, FWD_DIRECT_ARGS); break;
    case 8: fwd_direct_tile(8, FWD_DIRECT_ARGS); break;
    case 9: fwd_direct_tile(9, FWD_DIRECT_ARGS); break;
    case 10: fwd_direct_tile(10, FWD_DIRECT_ARGS); break;
    case 11: fwd_direct_tile(11, FWD_DIRECT_ARGS); break;
    case 12: fwd_direct_tile(12, FWD_DIRECT_ARGS); break;
    case 13: fwd_direct_tile(13, FWD_DIRECT_ARGS); break;
    case 14: fwd_direct_tile(14, FWD_DIRECT_ARGS); break;
    case 15: fwd_direct_tile(15, FWD_DIRECT_ARGS); break;
    default: fwd_direct_tile(16, FWD_DIRECT_ARGS); break;
    }
}
#undef FWD_DIRECT_ARGS

/* dw[o*ldw + kk] += sum_n sum_{i, j} dy_n[o, i, j] col_n[k0 + kk, (i, j)] for
   o < RO, kk < RK, with col_n's rows read from x_n (Cg, H, W) in place;
   dy (N, ..) rows of P at stride sdy, x at stride sx */
T512F_INLINE void dw_direct_tile(const int RO, const int RK, float *dw, int64_t ldw,
                                 const float *dy, int64_t sdy, const float *x, int64_t sx,
                                 int64_t k0, int64_t N, const fnn_conv_geom *g,
                                 const im2col_masks *mk) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, P = OH * OW;
    const int64_t nq = (OW + 15) / 16;
    const __m512 z = _mm512_setzero_ps();
    int64_t off[4], u0[4], vv[4];   /* patch element k0 + kk = (c, u, v) */
#pragma GCC unroll 4
    for (int kk = 0; kk < RK; kk++) {
        const int64_t k = k0 + kk, v = k % g->KW, u = k / g->KW % g->KH, c = k / g->KW / g->KH;
        vv[kk] = v;
        u0[kk] = u * g->dh - g->pt;
        off[kk] = c * H * W + v * g->dw - g->pl;
    }
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int o = 0; o < RO; o++)
#pragma GCC unroll 4
        for (int kk = 0; kk < RK; kk++) acc[o][kk] = z;
    for (int64_t n = 0; n < N; n++) {
        const float *d = dy + n * sdy, *xn = x + n * sx;
        for (int64_t i = 0; i < OH; i++)
            for (int64_t q = 0; q < nq; q++) {
                __m512 sv[4];
#pragma GCC unroll 4
                for (int kk = 0; kk < RK; kk++) {
                    const int64_t h = i * g->sh + u0[kk];
                    sv[kk] = h >= 0 && h < H ? _mm512_maskz_loadu_ps(
                                                   mk->in[vv[kk]][q], xn + off[kk] + h * W + 16 * q)
                                             : z;
                }
                const float *dq = d + i * OW + 16 * q;
#pragma GCC unroll 8
                for (int o = 0; o < RO; o++) {
                    const __m512 dv = _mm512_maskz_loadu_ps(mk->out[q], dq + o * P);
#pragma GCC unroll 4
                    for (int kk = 0; kk < RK; kk++)
                        acc[o][kk] = _mm512_fmadd_ps(dv, sv[kk], acc[o][kk]);
                }
            }
    }
#pragma GCC unroll 8
    for (int o = 0; o < RO; o++)
#pragma GCC unroll 4
        for (int kk = 0; kk < RK; kk++) dw[o * ldw + kk] += _mm512_reduce_add_ps(acc[o][kk]);
}

#define DW_DIRECT_ARGS dw, ldw, dy, sdy, x, sx, k0, N, g, mk
/* one tile as dw_dot's (ro <= 8, rk <= 4, rk 4 only with ro <= 6) */
T512F static void dw_direct(int ro, int rk, float *dw, int64_t ldw, const float *dy,
                            int64_t sdy, const float *x, int64_t sx, int64_t k0, int64_t N,
                            const fnn_conv_geom *g, const im2col_masks *mk) {
    DW_TILE_SWITCH(dw_direct_tile, DW_DIRECT_ARGS)
}
#undef DW_DIRECT_ARGS
#undef DW_DOT_ARGS
#undef DW_TILE_SWITCH
#undef DW_TILE_RO
#undef T512F
#undef T512F_INLINE

/* row blocks of <= 8 channels of a group, and the col rows per tile */
static int64_t dw_dot_oblocks(const fnn_conv_geom *g) { return (g->O / g->G + 7) / 8; }
static int dw_dot_rk(const fnn_conv_geom *g) {
    const int64_t Og = g->O / g->G, nob = dw_dot_oblocks(g);
    return (Og + nob - 1) / nob <= 6 ? 4 : 3;
}
static int64_t dw_dot_kblocks(const fnn_conv_geom *g) {
    const int64_t Kg = g->C / g->G * g->KH * g->KW;
    return (Kg + dw_dot_rk(g) - 1) / dw_dot_rk(g);
}

/* unit t of G * dw_dot_kblocks: group t / kblocks, rk rows of col from
   (t % kblocks) rk, every row block of channels, all N samples; the col rows
   come from x in place when direct (dw_direct), else from x itself for a
   pointwise conv or from the forward's patches in scratch (dw_dot) */
static void dw_tiles_unit(float *dw, const float *dy, const float *x, const float *scratch,
                          const fnn_conv_geom *g, int64_t t, int64_t N, int direct) {
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, P = g->OH * g->OW;
    const int64_t Kg = Cg * g->KH * g->KW, IN = g->C * g->H * g->W, OUT = g->O * P;
    const int64_t nkb = dw_dot_kblocks(g), nob = dw_dot_oblocks(g);
    const int rk = dw_dot_rk(g);
    const int64_t q = t / nkb, k0 = t % nkb * rk;
    const int kk = (int)(Kg - k0 < rk ? Kg - k0 : rk);
    const int pw = pointwise(g);
    const float *src = direct || pw ? x + q * Cg * g->H * g->W : scratch + q * Kg * P;
    const int64_t ssrc = direct || pw ? IN : fnn__conv_scratch(g);
    im2col_masks mk;
    if (direct) im2col_masks_of(&mk, g);
    for (int64_t ob = 0; ob < nob; ob++) {
        const int64_t o0 = Og * ob / nob, o1 = Og * (ob + 1) / nob;
        float *dwt = dw + (q * Og + o0) * Kg + k0;
        const float *dyt = dy + (q * Og + o0) * P;
        if (direct)
            dw_direct((int)(o1 - o0), kk, dwt, Kg, dyt, OUT, src, ssrc, k0, N, g, &mk);
        else
            dw_dot((int)(o1 - o0), kk, dwt, Kg, dyt, OUT, src + k0 * P, ssrc, P, N);
    }
}

static int use_512(const fnn_conv_geom *g) {
    return g->sw == 1 && g->KW <= MASK_V && g->OW <= 16 * MASK_Q && g->W <= 16 * MASK_Q &&
           fnn__sgemm_kernel_get() == &fnn__sgemm_kernel_avx512;
}

static int use_dw_dot(const fnn_conv_geom *g) {
    return g->O / g->G <= DW_DOT_MAX_O && g->OH * g->OW >= DW_DOT_MIN_P &&
           fnn__sgemm_kernel_get() == &fnn__sgemm_kernel_avx512;
}

static int use_direct(const fnn_conv_geom *g) {
    return use_dw_dot(g) && use_512(g) && !pointwise(g) &&
           g->C / g->G * g->KH * g->KW <= DIRECT_MAX_K;
}
#endif

/* the patches of one sample's channels, by the fastest copy this CPU has */
static void im2col_any(float *col, const float *x, const fnn_conv_geom *g, int64_t C) {
#ifdef FNN_GEMM_X86
    if (use_512(g)) {
        im2col_512(col, x, g, C);
        return;
    }
#endif
    im2col(col, x, g, C);
}

/* 1: the weight gradient recomputes the patches it reads (dw_rows), so the
   forward keeps none: when a batch's patches come to RECOMPUTE_MIN_FLOATS
   or more. Writing them all out for the backward pass sent them to DRAM
   (75 MB for VGG's 32 -> 32 at 32 x 32, batch 64), where recomputed ones
   stay in L2. bench/bench_cnn.py cells, 3 rounds alternating: VGG-style
   train b64 165-169 -> 141-145 ms (1 thread), 86-89 -> 73-75 (2); LeNet's
   conv2 (64 x 60 KB of patches) kept them: 2.59-2.64 ms, recomputing
   2.73-2.78. The dot-product weight gradients (dw_tiles_unit) read all
   samples' patches, so they keep them. */
#define RECOMPUTE_MIN_FLOATS (2 << 20)
static int recompute_patches(const fnn_conv_geom *g, int64_t N) {
#ifdef FNN_GEMM_X86
    if (use_dw_dot(g)) return 0;
#endif
    return !pointwise(g) && (double)N * (double)fnn__conv_scratch(g) >= RECOMPUTE_MIN_FLOATS;
}

/* The scratch slot of the calling thread in a loop run on nt threads: its
   number in the team (below nt, which callers keep <= N); with nt 1 the
   caller may be inside a team of its own, so slot 0. */
static int64_t team_slot(int nt) { return nt > 1 ? fnn__thread_num() : 0; }

static void col2im_any(float *dx, const float *col, const fnn_conv_geom *g, int64_t C) {
#ifdef FNN_GEMM_X86
    if (use_512(g)) {
        col2im_512(dx, col, g, C);
        return;
    }
#endif
    col2im(dx, col, g, C);
}

/* ------------------------------------------------------------ drivers */

/* Columns per GEMM call over a (K, P) patch matrix: K * cols * 4 bytes about
   256 KiB, a multiple of 64, at least 64 (and at most P). */
static int64_t slab_cols(int64_t K, int64_t P) {
    int64_t c = ((int64_t)1 << 18) / (4 * K) / 64 * 64;
    if (c < 64) c = 64;
    return c < P ? c : P;
}

/* Samples [lo, hi); their patches in scratch slot `slot` (< 0: each
   sample's own slot, kept for the backward pass). */
static void fwd_samples(float *y, const float *x, const float *w, const float *b,
                        float *scratch, const fnn_conv_geom *g, int64_t lo, int64_t hi,
                        int64_t slot) {
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, P = g->OH * g->OW;
    const int64_t Kg = Cg * g->KH * g->KW, IN = g->C * g->H * g->W, OUT = g->O * P;
    const int pw = pointwise(g);
    for (int64_t n = lo; n < hi; n++) {
        const float *xn = x + n * IN;
        float *yn = y + n * OUT;
        float *col = scratch + (slot < 0 ? n : slot) * fnn__conv_scratch(g);
        for (int64_t q = 0; q < g->G; q++) {
#ifdef FNN_GEMM_X86
            if (use_direct(g)) {
                im2col_masks mk;
                im2col_masks_of(&mk, g);
                fwd_direct((int)Og, yn + q * Og * P, xn + q * Cg * g->H * g->W, w + q * Og * Kg,
                           b ? b + q * Og : NULL, g, Cg, &mk);
                continue;
            }
#endif
            const float *src;
            if (pw) {
                src = xn + q * Cg * P;
            } else {
                im2col_any(col + q * Kg * P, xn + q * Cg * g->H * g->W, g, Cg);
                src = col + q * Kg * P;
            }
            float *yq = yn + q * Og * P;
            if (b)
                for (int64_t o = 0; o < Og; o++) {
                    float bo = b[q * Og + o];
                    for (int64_t p = 0; p < P; p++) yq[o * P + p] = bo;
                }
            /* column slabs of col small enough for GEMM's unpacked (direct) path
               and L2: a whole 32x32 image's 3x3x32 patches (1.2 MB) were
               packed first and ran at half the speed (bench/bench_cnn.py vgg) */
            const int64_t pc = slab_cols(Kg, P);
            for (int64_t p0 = 0; p0 < P; p0 += pc)
                fnn_sgemm(0, 0, Og, P - p0 < pc ? P - p0 : pc, Kg, 1.0f, w + q * Og * Kg, Kg,
                          src + p0, P, b ? 1.0f : 0.0f, yq + p0, P);
        }
    }
}

fnn_status fnn__conv_forward(float *y, const float *x, const float *w, const float *b,
                             float *scratch, int64_t N, const fnn_conv_geom *g, int keep) {
    if (N == 0) return FNN_OK;
    const double flops = 2.0 * (double)N * (double)g->O * (double)(g->OH * g->OW) *
                         (double)(g->C / g->G * g->KH * g->KW);
    int nt = fnn__threads_for(flops);
    if (nt > N) nt = (int)N;
    int64_t n;
    /* patches the backward pass reads stay in each sample's slot; else one
       slot per thread */
    const int own = keep && !recompute_patches(g, N);
    FNN_PARALLEL_FOR(nt, n, N, fwd_samples(y, x, w, b, scratch, g, n, n + 1,
                                           own ? -1 : team_slot(nt)));
    return FNN_OK;
}

static void dx_samples(float *dx, const float *dy, const float *w, float *scratch,
                       const fnn_conv_geom *g, int64_t lo, int64_t hi) {
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, P = g->OH * g->OW;
    const int64_t Kg = Cg * g->KH * g->KW, IN = g->C * g->H * g->W, OUT = g->O * P;
    const int pw = pointwise(g);
    for (int64_t n = lo; n < hi; n++) {
        float *dxn = dx + n * IN;
        const float *dyn = dy + n * OUT;
        float *col = scratch + n * fnn__conv_scratch(g);
        if (!pw) memset(dxn, 0, (size_t)IN * sizeof(float));
        for (int64_t q = 0; q < g->G; q++) {
            float *dst = pw ? dxn + q * Cg * P : col + q * Kg * P;
            fnn_sgemm(1, 0, Kg, P, Og, 1.0f, w + q * Og * Kg, Kg, dyn + q * Og * P, P, 0.0f,
                      dst, P);
            if (!pw) col2im_any(dxn + q * Cg * g->H * g->W, dst, g, Cg);
        }
    }
}

/* dx of a stride-1 conv as the forward conv of dy with the flipped,
   transposed weight w'[c, o, u, v] = w[o, c, KH-1-u, KW-1-v] (per group):
     dx[c, h, w] = sum_{o, u, v} w'[c, o, u, v] dy[o, h - pt' + u dh, w - pl' + v dw]
   with pt' = dh (KH-1) - pt (likewise pb', pl', pr'), which gives an output
   of exactly H x W. One GEMM of (Cg, Og KH KW) . (Og KH KW, H W) per sample
   and group, written straight into dx: no dcol of (Kg, P) to write out and
   read back by col2im (dcol = W^T . dy is a GEMM whose depth is only Og:
   VGG's 32 -> 32 at 32 x 32 wrote 1.2 MB a sample for 32 FMAs an element).
   Needs pt' .. pr' >= 0 (padding at most the dilated kernel's reach) and the
   scratch room dx_flip_slots counts: w' first, then one patch matrix of dy
   per thread that runs it. Each sample's dx is one
   thread's, same calls for any thread count. */
static void geom_flip(fnn_conv_geom *f, const fnn_conv_geom *g) {
    *f = *g;
    f->C = g->O; f->H = g->OH; f->W = g->OW;
    f->O = g->C; f->OH = g->H; f->OW = g->W;
    f->pt = g->dh * (g->KH - 1) - g->pt; f->pb = g->dh * (g->KH - 1) - g->pb;
    f->pl = g->dw * (g->KW - 1) - g->pl; f->pr = g->dw * (g->KW - 1) - g->pr;
}

static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

/* floats of w' and of one thread's patch matrix of dy (one group at a time) */
static int64_t flip_w_floats(const fnn_conv_geom *g) {
    return round16(g->O * (g->C / g->G) * g->KH * g->KW);
}
static int64_t flip_col_floats(const fnn_conv_geom *g) {
    return round16(g->O / g->G * g->KH * g->KW * g->H * g->W);
}

/* Input channels per group below which dx_flip loses: its GEMM has Cg rows,
   and the AVX-512 micro-kernel's tile 12. LeNet's conv2 (Cg 6) made the
   LeNet-5 train step 2.79 -> 3.9-4.2 ms (1 thread, batch 64); on VGG's
   convs (Cg 32, 64) the step went 177-185 -> 164-172 ms on 1 thread and
   94.7-96.7 -> 87.0-88.4 ms on 2 (bench/bench_cnn.py shapes, 3 rounds
   alternating). */
#define FLIP_MIN_C 16
/* The patch matrices of dy that dx_flip has room for (one per thread that
   runs it): as many as fit after w', at most min(N, FLIP_SLOTS); 0 when
   the flipped way does not apply or not even one fits. A function of the
   geometry and N only, never of the thread count, so that the way (hence
   the bits) never depends on the threads: sized by the running count, a
   batch of 3 took the flipped way on 1 thread and the dcol way on 3
   (tests/test_conv.py's bits test). dx_flip runs on min(nt, slots)
   threads. */
#define FLIP_SLOTS 16
static int64_t dx_flip_slots(const fnn_conv_geom *g, int64_t N) {
    if (g->sh != 1 || g->sw != 1 || pointwise(g) || g->C / g->G < FLIP_MIN_C) return 0;
    fnn_conv_geom f;
    geom_flip(&f, g);
    if (f.pt < 0 || f.pb < 0 || f.pl < 0 || f.pr < 0) return 0;   /* padding past the reach */
    const int64_t room = N * fnn__conv_scratch(g) - flip_w_floats(g);
    int64_t s = room < 0 ? 0 : room / flip_col_floats(g);
    if (s > N) s = N;
    return s < FLIP_SLOTS ? s : FLIP_SLOTS;
}

static void dx_flip_samples(float *dx, const float *dy, const float *wf, float *col,
                            const fnn_conv_geom *g, const fnn_conv_geom *f, int64_t lo,
                            int64_t hi) {
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, HW = g->H * g->W;
    const int64_t Kf = Og * g->KH * g->KW, P = g->OH * g->OW;
    const int64_t pc = slab_cols(Kf, HW);
    for (int64_t n = lo; n < hi; n++)
        for (int64_t q = 0; q < g->G; q++) {
            im2col_any(col, dy + (n * g->O + q * Og) * P, f, Og);
            float *dxq = dx + (n * g->C + q * Cg) * HW;
            for (int64_t p0 = 0; p0 < HW; p0 += pc)
                fnn_sgemm(0, 0, Cg, HW - p0 < pc ? HW - p0 : pc, Kf, 1.0f, wf + q * Cg * Kf,
                          Kf, col + p0, HW, 0.0f, dxq + p0, HW);
        }
}

static void dx_flip(float *dx, const float *dy, const float *w, float *scratch,
                    const fnn_conv_geom *g, int64_t N, int nt) {
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, KK = g->KH * g->KW;
    fnn_conv_geom f;
    geom_flip(&f, g);
    float *wf = scratch;   /* (G, Cg, Og, KH, KW) */
    for (int64_t q = 0; q < g->G; q++)
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t o = 0; o < Og; o++) {
                const float *src = w + ((q * Og + o) * Cg + c) * KK;
                float *dst = wf + ((q * Cg + c) * Og + o) * KK;
                for (int64_t k = 0; k < KK; k++) dst[k] = src[KK - 1 - k];
            }
    float *cols = scratch + flip_w_floats(g);
    const int64_t stride = flip_col_floats(g);
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        {
            const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
            dx_flip_samples(dx, dy, wf, cols + t * stride, g, &f, N * t / T, N * (t + 1) / T);
        }
        return;
    }
#endif
    (void)nt;
    dx_flip_samples(dx, dy, wf, cols, g, &f, 0, N);
}

/* Rows [k0, k1) of the (Kg, P) patch matrix of sample n and group q that
   dW reads: x itself for a pointwise conv; else the forward's col in
   scratch, or (recompute_patches) im2col of just the channels those rows
   come from, written into the calling thread's slot `slot` of scratch
   (rows k = (c KH + u) KW + v, so a row range is a channel range). The
   same values either way. */
static const float *dw_rows(const fnn_conv_geom *g, const float *x, float *scratch,
                            int64_t slot, int64_t n, int64_t N, int64_t q, int64_t k0,
                            int64_t k1) {
    const int64_t Cg = g->C / g->G, P = g->OH * g->OW, KK = g->KH * g->KW;
    if (pointwise(g)) return x + n * g->C * g->H * g->W + q * Cg * P + k0 * P;
    if (!recompute_patches(g, N))
        return scratch + n * fnn__conv_scratch(g) + (q * Cg * KK + k0) * P;
    const int64_t c0 = k0 / KK, c1 = (k1 + KK - 1) / KK;
    float *buf = scratch + slot * fnn__conv_scratch(g);
    im2col_any(buf, x + n * g->C * g->H * g->W + (q * Cg + c0) * g->H * g->W, g, c1 - c0);
    return buf + (k0 - c0 * KK) * P;
}

/* dW[:, k0 .. k1) += sum over samples n = 0..N-1 in order of dy_n . col_n^T,
   per group */
#define DW_BLOCK 32
static void dw_cols(float *dw, const float *dy, const float *x, float *scratch,
                    int64_t slot, const fnn_conv_geom *g, int64_t k0, int64_t k1, int64_t N) {
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, P = g->OH * g->OW;
    const int64_t Kg = Cg * g->KH * g->KW, OUT = g->O * P;
    for (int64_t n = 0; n < N; n++)
        for (int64_t q = 0; q < g->G; q++)
            fnn_sgemm(0, 1, Og, k1 - k0, P, 1.0f, dy + n * OUT + q * Og * P, P,
                      dw_rows(g, x, scratch, slot, n, N, q, k0, k1), P, 1.0f,
                      dw + q * Og * Kg + k0, Kg);
}

/* dW_g^T rows [k0, k1) for Og <= DWT_MAX_O output channels per group:
   T (k1-k0, Og) = dW_g[:, k0:k1]^T, then T += col_ng[k0:k1] . dy_ng^T for
   n = 0..N-1 in order (one GEMM per sample and group, beta 1), then
   dW_g[:, k0:k1] = T^T. The products of dw_cols (dy . col^T) with the
   operands swapped: per element of dW the same FMAs over p in the same
   order and the same beta-1 add per sample (gemm_internal.h's contract),
   so the same bits. The GEMM's transposing pack then takes dy (Og x P)
   once per block of rows instead of col (Kg x P): less whenever the block
   has more rows than Og. With <= 16 channels each row of T is one full
   vector: LeNet's conv2 (Og 16, Kg 150, P 100) had 2 row tiles (12 + 4) and
   5 column blocks per sample, and a 150 x 100 transpose. bench/conv_dw.py,
   1 thread, batch 64 (im2col included): LeNet's conv2 0.96-0.99 -> 0.85-0.91
   ms, VGG's 32 -> 32 at 32 x 32 (Og 32, Kg 288, P 1024) 56-59 -> 47-50 ms.
   T lives on the stack (DWT_T_FLOATS floats, 64 KiB): 128 rows at Og = 128.

   Which way, from the three GEMM shapes timed side by side on the VGG
   convolutions (1 thread, batch 64, the patches given, ms: T blocks of <=
   128 / <= 256 rows / dy . col^T over all Kg columns / 32-column blocks):
     3 -> 32   (Kg  27, P 1024, Og  32)   3.4 /  3.4 /  3.6 /  3.5
     32 -> 32  (Kg 288, P 1024, Og  32)  28.3 / 25.6 / 20.8 / 36.7
     32 -> 64  (Kg 288, P  256, Og  64)   7.5 /  7.7 /  8.4 /  8.8
     64 -> 64  (Kg 576, P  256, Og  64)  14.8 / 14.5 / 16.7 / 17.8
     64 -> 128 (Kg 576, P   64, Og 128)   8.0 /  7.2 /  7.4 /  8.4
   so: wide patch matrices (P >= DW_WIDE_MIN_P, Kg >= DW_WIDE_MIN_K) take
   dy . col^T over one block of columns per thread; up to DWT_MAX_O
   channels, T blocks; more channels, DW_BLOCK columns (dw_cols). In the
   VGG-style train step (bench/bench_cnn.py, 3 rounds alternating) the wide
   way alone: 1 thread 175.6-177.1 -> 166.9-171.6 ms, 2 threads 91.4-100.1
   -> 89.2-93.7. Every way gives the same bits (tests/test_conv.py). */
#define DW_WIDE_MIN_P 1024
#define DW_WIDE_MIN_K 128
#define DWT_MAX_O 128
#define DWT_T_FLOATS 16384
static void dwt_block(float *dw, const float *dy, const float *x, float *scratch,
                      int64_t slot, const fnn_conv_geom *g, int64_t k0, int64_t k1, int64_t N) {
    const int64_t Cg = g->C / g->G, Og = g->O / g->G, P = g->OH * g->OW;
    const int64_t Kg = Cg * g->KH * g->KW, OUT = g->O * P;
    const int64_t R = k1 - k0;
    float T[DWT_T_FLOATS];
    for (int64_t q = 0; q < g->G; q++) {
        float *dwq = dw + q * Og * Kg + k0;
        for (int64_t o = 0; o < Og; o++)
            for (int64_t k = 0; k < R; k++) T[k * Og + o] = dwq[o * Kg + k];
        for (int64_t n = 0; n < N; n++)
            fnn_sgemm(0, 1, R, Og, P, 1.0f, dw_rows(g, x, scratch, slot, n, N, q, k0, k1), P,
                      dy + n * OUT + q * Og * P, P, 1.0f, T, Og);
        for (int64_t o = 0; o < Og; o++)
            for (int64_t k = 0; k < R; k++) dwq[o * Kg + k] = T[k * Og + o];
    }
}

/* sum of d[0..n) with 8 partial sums in a fixed order (vectorisable, and the
   same bits on every ISA). COST_ROW_SUM: an element in fnn__threads_for's
   unit (a GEMM flop, see csrc/activations.c), from LeNet's bias gradients
   (0.04-0.13 ns an element on 1 thread, (64, 16, 10, 10) in cache and
   (64, 6, 28, 28) out of it). */
#define COST_ROW_SUM 8.0
FNN_SIMD_CLONES
static float row_sum(const float *FNN_RESTRICT d, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t p = 0;
    for (; p + 8 <= n; p += 8)
        for (int k = 0; k < 8; k++) acc[k] += d[p + k];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; p < n; p++) s += d[p];
    return s;
}

fnn_status fnn__conv_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                              const float *w, float *scratch, int64_t N,
                              const fnn_conv_geom *g) {
    if (N == 0) return FNN_OK;
    const int64_t Cg = g->C / g->G, P = g->OH * g->OW;
    const int64_t Kg = Cg * g->KH * g->KW, OUT = g->O * P;
    const double flops = 2.0 * (double)N * (double)g->O * (double)P * (double)Kg;
    int nt = fnn__threads_for(flops);
    if (nt > N) nt = (int)N;
    if (db) {   /* channels split over threads; each sums its samples in order */
        int ntb = fnn__threads_for(COST_ROW_SUM * (double)N * (double)OUT);
        if (ntb > g->O) ntb = (int)g->O;
        int64_t o;
        FNN_PARALLEL_FOR(ntb, o, g->O, {
            float s = db[o];
            for (int64_t n = 0; n < N; n++) s += row_sum(dy + n * OUT + o * P, P);
            db[o] = s;
        });
    }
#ifdef FNN_GEMM_X86
    if (dw && (use_direct(g) || use_dw_dot(g))) {
        const int direct = use_direct(g);
        const int64_t units = g->G * dw_dot_kblocks(g);
        int ntw = nt < units ? nt : (int)units;
        int64_t t;
        FNN_PARALLEL_FOR(ntw, t, units, dw_tiles_unit(dw, dy, x, scratch, g, t, N, direct));
    } else
#endif
    if (dw && P >= DW_WIDE_MIN_P && Kg >= DW_WIDE_MIN_K) {
        /* wide: one block of about Kg / nt columns of dW per thread, each
           sample's dy . col^T a GEMM of the block's full width */
        const int64_t cols = round16((Kg + nt - 1) / nt), nb = (Kg + cols - 1) / cols;
        int ntw = nt < nb ? nt : (int)nb;
        int64_t b;
        FNN_PARALLEL_FOR(ntw, b, nb,
            dw_cols(dw, dy, x, scratch, team_slot(ntw), g, b * cols,
                    (b + 1) * cols < Kg ? (b + 1) * cols : Kg, N));
    } else if (dw && g->O / g->G <= DWT_MAX_O) {
        /* rows of dW^T in nt x per blocks of equal size (a multiple of 16),
           the fewest that T holds: every thread the same share, and every
           element's bits those of any other split */
        const int64_t cap = DWT_T_FLOATS / (g->O / g->G) / 16 * 16;
        const int64_t per = (Kg + (int64_t)nt * cap - 1) / ((int64_t)nt * cap);
        const int64_t rows = round16((Kg + nt * per - 1) / (nt * per));
        const int64_t nb = (Kg + rows - 1) / rows;
        int ntw = nt < nb ? nt : (int)nb;
        int64_t b;
        FNN_PARALLEL_FOR(ntw, b, nb,
            dwt_block(dw, dy, x, scratch, team_slot(ntw), g, b * rows,
                      (b + 1) * rows < Kg ? (b + 1) * rows : Kg, N));
    } else if (dw) {
        /* fixed blocks of DW_BLOCK columns of dW (Kg), one thread each: the same
           GEMM calls, hence the same bits, for any thread count */
        const int64_t nb = (Kg + DW_BLOCK - 1) / DW_BLOCK;
        int ntw = nt < nb ? nt : (int)nb;
        int64_t b;
        FNN_PARALLEL_FOR(ntw, b, nb,
            dw_cols(dw, dy, x, scratch, team_slot(ntw), g, b * DW_BLOCK,
                    (b + 1) * DW_BLOCK < Kg ? (b + 1) * DW_BLOCK : Kg, N));
    }
    int64_t n;
    const int64_t slots = dx ? dx_flip_slots(g, N) : 0;
    if (slots > 0)
        dx_flip(dx, dy, w, scratch, g, N, nt < slots ? nt : (int)slots);
    else if (dx)
        FNN_PARALLEL_FOR(nt, n, N, dx_samples(dx, dy, w, scratch, g, n, n + 1));
    return FNN_OK;
}
