/*
 * gemm_kernel_avx512.c -- AVX-512 SGEMM micro-kernel, 12 x 32 register tile.
 *
 * 24 zmm accumulators (12 rows x 2 vectors of 16 columns), of the 32
 * registers: more than the 8 FMAs in flight that the 4-cycle latency on two
 * FMA ports needs, and 14 loads (2 vectors of B, 12 embedded broadcasts of
 * A) per 24 FMAs instead of 10 per 16 with 8 rows. Measured on a 2-core
 * Xeon (AVX-512, L1d 48 KiB, L2 2 MiB; bench/compare_gemm.py): 8 x 32
 * reached 123-127 GFLOPS on 1024^2-2048^2 squares, 12 x 32 132-139, with
 * the same blocking. Contract in gemm_internal.h.
 *
 *   a: element (i, p) at a[i*rsa + p*csa] -- packed (rsa 1, csa 12),
 *      row-major A (rsa lda, csa 1) or A^T (rsa 1, csa lda)
 *   b: (k, n), row stride rsb -- packed panel or the caller's B
 *   c: (m, n), row stride ldc; m <= 12, n <= 32
 *
 * Edges: N tails use __mmask16 masked loads/stores (masked lanes never
 * fault), M tails a specialised kernel per m = 1..12, so the kernel reads
 * only rows i < m of a and columns j < n of b: safe on unpacked operands
 * (the driver's direct path). n <= 16 runs one vector per row (the
 * narrow-N case, e.g. a 10-class output layer). Unpacked B rows get a
 * software prefetch 8 k-steps ahead; packed panels stream on their own.
 *
 * Also here: fnn__sgemm_pack_bt_avx512_32 packs a 32-wide panel of B^T
 * (the NT case) through 16 x 16 in-register transposes.
 *
 * Blocking (first tuned on a 2-core Zen 4, L1d 32 KiB, L2 1 MiB; KC 256 and
 * 384, MC 96-480 measured no better on the Xeon): KC 512, MC 144, NC 4096;
 * the direct path runs while B <= 1 MiB.
 *
 * Compiled in the same build as everything else (no -march flags): the
 * functions carry __attribute__((target(...))), helpers are static.
 * x86-64 + GCC/Clang only; elsewhere the file is empty.
 */
#include "gemm_internal.h"

#ifdef FNN_GEMM_X86
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define T512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

/* One m x (16*NV) tile, m = MR_ (a compile-time constant after inlining).
   CONTIG: rsa == 1 (packed or transposed A), so row offsets are immediates. */
T512_INLINE void tile_12x32(const int MR_, const int NV, const int CONTIG, const int PF,
                           int64_t k, float alpha,
                           const float *FNN_RESTRICT a, int64_t rsa, int64_t csa,
                           const float *FNN_RESTRICT b, int64_t rsb,
                           float beta, float *FNN_RESTRICT c, int64_t ldc,
                           __mmask16 m0, __mmask16 m1) {
    __m512 acc0[12], acc1[12];
    const int64_t ra = CONTIG ? 1 : rsa;
#pragma GCC unroll 12
    for (int i = 0; i < MR_; i++) {
        acc0[i] = _mm512_setzero_ps();
        if (NV == 2) acc1[i] = _mm512_setzero_ps();
    }
    /* rows 4j..4j+3 at a4[j] + {0, 1, 2, 3} ra: with a runtime row stride
       the 12 row addresses then need 3 pointers and 2 index registers
       (ra, 3 ra: x86 scales 1, 2, 4, 8), not 12 offsets that spill; a
       pointer past the tile's rows is never formed */
    const float *a4[3] = {a, MR_ > 4 ? a + 4 * ra : a, MR_ > 8 ? a + 8 * ra : a};
    const int64_t ra3 = 3 * ra;
#pragma GCC unroll 2
    for (int64_t p = 0; p < k; p++) {
        if (PF) {
            _mm_prefetch((const char *)(b + 8 * rsb), _MM_HINT_T0);
            if (NV == 2) _mm_prefetch((const char *)(b + 8 * rsb + 16), _MM_HINT_T0);
        }
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = NV == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < MR_; i++) {
            const float *ar = a4[i >> 2];
            const float ae = CONTIG ? a[i]
                           : (i & 3) == 0 ? ar[0] : (i & 3) == 1 ? ar[ra]
                           : (i & 3) == 2 ? ar[2 * ra] : ar[ra3];
            __m512 ai = _mm512_set1_ps(ae);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            if (NV == 2) acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
        a += csa;
        a4[0] += csa;
        a4[1] += csa;
        a4[2] += csa;
        b += rsb;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int i = 0; i < MR_; i++) {
        float *ci = c + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, acc0[i]);
        if (beta != 0.0f) r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
        _mm512_mask_storeu_ps(ci, m0, r0);
        if (NV == 2) {
            __m512 r1 = _mm512_mul_ps(va, acc1[i]);
            if (beta != 0.0f) r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
            _mm512_mask_storeu_ps(ci + 16, m1, r1);
        }
    }
}

#define TILE_ARGS k, alpha, a, rsa, csa, b, rsb, beta, c, ldc, m0, m1
#define TILE_CASES(NV, CONTIG, PF)                                    \
    switch (m) {                                                      \
    case 1: tile_12x32(1, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 2: tile_12x32(2, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 3: tile_12x32(3, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 4: tile_12x32(4, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 5: tile_12x32(5, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 6: tile_12x32(6, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 7: tile_12x32(7, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 8: tile_12x32(8, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 9: tile_12x32(9, NV, CONTIG, PF, TILE_ARGS); break;               \
    case 10: tile_12x32(10, NV, CONTIG, PF, TILE_ARGS); break;             \
    case 11: tile_12x32(11, NV, CONTIG, PF, TILE_ARGS); break;             \
    default: tile_12x32(12, NV, CONTIG, PF, TILE_ARGS); break;             \
    }

T512 static void fnn__sgemm_ukr_avx512_12x32(int64_t k, float alpha,
                                            const float *a, int64_t rsa, int64_t csa,
                                            const float *b, int64_t rsb,
                                            float beta, float *c, int64_t ldc,
                                            int64_t m, int64_t n) {
    __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
    __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF
                 : n > 16 ? (__mmask16)((1u << (n - 16)) - 1u) : (__mmask16)0;
    /* packed B (rsb == 32) streams contiguously; unpacked B rows get a
       software prefetch 8 k-steps ahead */
    if (n <= 16) {
        if (rsa == 1 && rsb == 32) { TILE_CASES(1, 1, 0) }
        else if (rsa == 1) { TILE_CASES(1, 1, 1) }
        else { TILE_CASES(1, 0, 1) }
    } else {
        if (rsa == 1 && rsb == 32) { TILE_CASES(2, 1, 0) }
        else if (rsa == 1) { TILE_CASES(2, 1, 1) }
        else { TILE_CASES(2, 0, 1) }
    }
}

/* Transpose a 16 x 16 block in registers: r[j][c] -> out[c][j]
   (unpack ps, unpack pd, then two rounds of 128-bit lane shuffles). */
T512_INLINE void transpose_16x16(__m512 r[16]) {
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {   /* rows 4g..4g+3 */
        __m512d a0 = _mm512_castps_pd(t[4 * g]), a1 = _mm512_castps_pd(t[4 * g + 1]);
        __m512d a2 = _mm512_castps_pd(t[4 * g + 2]), a3 = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    /* u[4g + q], lane L: rows 4g..4g+3 of column 4L + q */
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        __m512 x = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88);
        __m512 y = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD);
        __m512 x2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
        __m512 y2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
        r[q] = _mm512_shuffle_f32x4(x, x2, 0x88);
        r[4 + q] = _mm512_shuffle_f32x4(y, y2, 0x88);
        r[8 + q] = _mm512_shuffle_f32x4(x, x2, 0xDD);
        r[12 + q] = _mm512_shuffle_f32x4(y, y2, 0xDD);
    }
}

/* dst (kc, 32) <- B^T panel: dst[p*32 + j] = b[j*ldb + p] (j < n), zero
   for n <= j < 32. 16 x 16 blocks transposed in registers; k tails use
   masked loads, missing rows are zero vectors (never loaded). */
T512 static void fnn__sgemm_pack_bt_avx512_32(float *dst, const float *b, int64_t ldb,
                                              int64_t kc, int64_t n) {
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
        int64_t kr = kc - p0 < 16 ? kc - p0 : 16;
        __mmask16 km = kr == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << kr) - 1u);
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
            for (int j = 0; j < 16; j++) {
                int64_t jj = h * 16 + j;
                r[j] = jj < n ? _mm512_maskz_loadu_ps(km, b + jj * ldb + p0)
                              : _mm512_setzero_ps();
            }
            transpose_16x16(r);
            float *d = dst + p0 * 32 + h * 16;
            for (int64_t c = 0; c < kr; c++) _mm512_storeu_ps(d + c * 32, r[c]);
        }
    }
}

/* c (m, n) = alpha a (m, k) . b (k, n) + beta c for n <= FNN_NARROW_NN_MAX
   (a layer with one output, say): 16 rows at a time, each 16 x 16 block of
   a transposed in registers so that a vector holds one column of a (16
   rows), multiplied by a broadcast element of b. The ukr instead spends a
   whole vector on each row for n lanes. Per element: p = 0..k-1 FMAs into
   a zero accumulator, then alpha, then beta as an FMA: the ukr's order
   (contract in gemm_internal.h). k tails use masked loads; rows past m
   are zero vectors, never loaded, and never stored. */
T512_INLINE void narrow_nn(const int64_t n, int64_t m, int64_t k, float alpha,
                           const float *FNN_RESTRICT a, int64_t lda,
                           const float *FNN_RESTRICT b, int64_t ldb, float beta,
                           float *FNN_RESTRICT c, int64_t ldc) {
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int64_t i0 = 0; i0 < m; i0 += 16) {
        const int64_t mi = m - i0 < 16 ? m - i0 : 16;
        const __mmask16 mm = mi == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << mi) - 1u);
        __m512 acc[FNN_NARROW_NN_MAX];
#pragma GCC unroll 4
        for (int j = 0; j < FNN_NARROW_NN_MAX; j++) acc[j] = _mm512_setzero_ps();
        for (int64_t p0 = 0; p0 < k; p0 += 16) {
            const int64_t kr = k - p0 < 16 ? k - p0 : 16;
            const __mmask16 km = kr == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << kr) - 1u);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = i < mi ? _mm512_maskz_loadu_ps(km, a + (i0 + i) * lda + p0)
                              : _mm512_setzero_ps();
            transpose_16x16(r);   /* r[p]: rows i0.. of column p0 + p */
            const float *bp = b + p0 * ldb;
#pragma GCC unroll 16
            for (int p = 0; p < 16; p++) {
                if (p >= kr) break;
#pragma GCC unroll 4
                for (int64_t j = 0; j < n; j++)
                    acc[j] = _mm512_fmadd_ps(r[p], _mm512_set1_ps(bp[p * ldb + j]), acc[j]);
            }
        }
#pragma GCC unroll 4
        for (int64_t j = 0; j < n; j++) {
            __m512 res = _mm512_mul_ps(va, acc[j]);
            float *cj = c + i0 * ldc + j;
            if (ldc == 1) {   /* one column, contiguous */
                if (beta != 0.0f) res = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mm, cj), res);
                _mm512_mask_storeu_ps(cj, mm, res);
            } else {
                float t[16];
                if (beta != 0.0f) {
                    for (int64_t i = 0; i < mi; i++) t[i] = cj[i * ldc];
                    res = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mm, t), res);
                }
                _mm512_storeu_ps(t, res);
                for (int64_t i = 0; i < mi; i++) cj[i * ldc] = t[i];
            }
        }
    }
}

/* n a compile-time constant in each case: the accumulators stay in registers */
T512 static void fnn__sgemm_narrow_nn_avx512(int64_t m, int64_t n, int64_t k, float alpha,
                                             const float *a, int64_t lda, const float *b,
                                             int64_t ldb, float beta, float *c,
                                             int64_t ldc) {
    switch (n) {
    case 1: narrow_nn(1, m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
    case 2: narrow_nn(2, m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
    case 3: narrow_nn(3, m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
    default: narrow_nn(4, m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
    }
}

const fnn__sgemm_kernel fnn__sgemm_kernel_avx512 = {
    "avx512_12x32", 12, 32,
    512, 144, 4096,         /* kc, mc, nc */
    1, (int64_t)1 << 20,    /* direct path while B <= 1 MiB */
    fnn__sgemm_ukr_avx512_12x32,
    fnn__sgemm_pack_bt_avx512_32,
    fnn__sgemm_narrow_nn_avx512,
};

#endif /* FNN_GEMM_X86 */
