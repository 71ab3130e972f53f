/*
 * gemm_kernel_avx2.c -- AVX2+FMA SGEMM micro-kernel, 6 x 16 register tile.
 *
 * 12 ymm accumulators (6 rows x 2 vectors of 8 columns) of the 16 ymm
 * registers, the tile of BLIS haswell and salykova/matmul.c. Each k step
 * loads 2 vectors of B and broadcasts 6 elements of A. Contract in
 * gemm_internal.h.
 *
 *   a: element (i, p) at a[i*rsa + p*csa] -- packed (rsa 1, csa 6),
 *      row-major A (rsa lda, csa 1) or A^T (rsa 1, csa lda)
 *   b: (k, n), row stride rsb -- packed panel or the caller's B
 *   c: (m, n), row stride ldc; m <= 6, n <= 16
 *
 * Edges: N tails load B with vmaskmovps (masked lanes never fault) and
 * store C through a small buffer (masked stores cost ~42 uops on AMD,
 * uops.info); M tails use a kernel specialised per m = 1..6. So only
 * rows i < m of a and columns j < n of b are read: safe on unpacked
 * operands (the driver's direct path).
 *
 * Functions carry __attribute__((target("avx2,fma"))); no -march flags.
 * x86-64 + GCC/Clang only; elsewhere the file is empty.
 */
#include "gemm_internal.h"

#ifdef FNN_GEMM_X86
#include <immintrin.h>

#define TAVX2 __attribute__((target("avx2,fma")))
#define TAVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* One m x 16 tile, m = MR_ constant after inlining. EDGE: n < 16 (masked
   B loads, C through a buffer). CONTIG: rsa == 1. */
TAVX2_INLINE void tile_6x16(const int MR_, const int EDGE, const int CONTIG,
                            int64_t k, float alpha,
                            const float *FNN_RESTRICT a, int64_t rsa, int64_t csa,
                            const float *FNN_RESTRICT b, int64_t rsb,
                            float beta, float *FNN_RESTRICT c, int64_t ldc, int64_t n) {
    __m256 acc0[6], acc1[6];
    const int64_t ra = CONTIG ? 1 : rsa;
    __m256i k0 = _mm256_setzero_si256(), k1 = _mm256_setzero_si256();
    if (EDGE) {
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        k0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
        k1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n - 8), idx);
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++) {
        acc0[i] = _mm256_setzero_ps();
        acc1[i] = _mm256_setzero_ps();
    }
#pragma GCC unroll 2
    for (int64_t p = 0; p < k; p++) {
        __m256 b0 = EDGE ? _mm256_maskload_ps(b, k0) : _mm256_loadu_ps(b);
        __m256 b1 = EDGE ? _mm256_maskload_ps(b + 8, k1) : _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR_; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * ra);
            acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
        }
        a += csa;
        b += rsb;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < MR_; i++) {
        float *ci = c + i * ldc;
        __m256 r0 = _mm256_mul_ps(va, acc0[i]);
        __m256 r1 = _mm256_mul_ps(va, acc1[i]);
        if (!EDGE) {
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        } else {
            float tmp[16];
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci, k0), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8, k1), r1);
            }
            _mm256_storeu_ps(tmp, r0);
            _mm256_storeu_ps(tmp + 8, r1);
            for (int64_t j = 0; j < n; j++) ci[j] = tmp[j];
        }
    }
}

#define TILE_ARGS k, alpha, a, rsa, csa, b, rsb, beta, c, ldc, n
#define TILE_CASES(EDGE, CONTIG)                                      \
    switch (m) {                                                      \
    case 1: tile_6x16(1, EDGE, CONTIG, TILE_ARGS); break;             \
    case 2: tile_6x16(2, EDGE, CONTIG, TILE_ARGS); break;             \
    case 3: tile_6x16(3, EDGE, CONTIG, TILE_ARGS); break;             \
    case 4: tile_6x16(4, EDGE, CONTIG, TILE_ARGS); break;             \
    case 5: tile_6x16(5, EDGE, CONTIG, TILE_ARGS); break;             \
    default: tile_6x16(6, EDGE, CONTIG, TILE_ARGS); break;            \
    }

TAVX2 static void fnn__sgemm_ukr_avx2_6x16(int64_t k, float alpha,
                                           const float *a, int64_t rsa, int64_t csa,
                                           const float *b, int64_t rsb,
                                           float beta, float *c, int64_t ldc,
                                           int64_t m, int64_t n) {
    if (n >= 16) {
        if (rsa == 1) { TILE_CASES(0, 1) } else { TILE_CASES(0, 0) }
    } else {
        if (rsa == 1) { TILE_CASES(1, 1) } else { TILE_CASES(1, 0) }
    }
}

const fnn__sgemm_kernel fnn__sgemm_kernel_avx2 = {
    "avx2_6x16", 6, 16,
    256, 192, 4080,         /* kc, mc, nc */
    1, (int64_t)1 << 20,    /* direct path while B <= 1 MiB */
    fnn__sgemm_ukr_avx2_6x16,
    NULL,
    NULL,
};

#endif /* FNN_GEMM_X86 */
