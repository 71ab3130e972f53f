/*
 * gemm_kernel_avx512.c -- AVX-512 SGEMM micro-kernel, 8 x 32 register tile.
 *
 * 16 zmm accumulators (8 rows x 2 vectors of 16 columns): enough to hide
 * the 4-cycle FMA latency on two FMA ports (Intel) or one double-pumped
 * port (AMD Zen 4). Each k step loads 2 vectors of B and broadcasts 8
 * elements of A (embedded-broadcast FMAs). Contract in gemm_internal.h.
 *
 *   a: element (i, p) at a[i*rsa + p*csa] -- packed (rsa 1, csa 8),
 *      row-major A (rsa lda, csa 1) or A^T (rsa 1, csa lda)
 *   b: (k, n), row stride rsb -- packed panel or the caller's B
 *   c: (m, n), row stride ldc; m <= 8, n <= 32
 *
 * Edges: N tails use __mmask16 masked loads/stores (masked lanes never
 * fault), M tails a specialised kernel per m = 1..8, so the kernel reads
 * only rows i < m of a and columns j < n of b: safe on unpacked operands
 * (the driver's direct path). n <= 16 runs one vector per row (the
 * narrow-N case, e.g. a 10-class output layer).
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
T512_INLINE void tile_8x32(const int MR_, const int NV, const int CONTIG,
                           int64_t k, float alpha,
                           const float *FNN_RESTRICT a, int64_t rsa, int64_t csa,
                           const float *FNN_RESTRICT b, int64_t rsb,
                           float beta, float *FNN_RESTRICT c, int64_t ldc,
                           __mmask16 m0, __mmask16 m1) {
    __m512 acc0[8], acc1[8];
    const int64_t ra = CONTIG ? 1 : rsa;
#pragma GCC unroll 8
    for (int i = 0; i < MR_; i++) {
        acc0[i] = _mm512_setzero_ps();
        if (NV == 2) acc1[i] = _mm512_setzero_ps();
    }
#pragma GCC unroll 2
    for (int64_t p = 0; p < k; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = NV == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : b0;
#pragma GCC unroll 8
        for (int i = 0; i < MR_; i++) {
            __m512 ai = _mm512_set1_ps(a[i * ra]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            if (NV == 2) acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
        a += csa;
        b += rsb;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
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
#define TILE_CASES(NV, CONTIG)                                        \
    switch (m) {                                                      \
    case 1: tile_8x32(1, NV, CONTIG, TILE_ARGS); break;               \
    case 2: tile_8x32(2, NV, CONTIG, TILE_ARGS); break;               \
    case 3: tile_8x32(3, NV, CONTIG, TILE_ARGS); break;               \
    case 4: tile_8x32(4, NV, CONTIG, TILE_ARGS); break;               \
    case 5: tile_8x32(5, NV, CONTIG, TILE_ARGS); break;               \
    case 6: tile_8x32(6, NV, CONTIG, TILE_ARGS); break;               \
    case 7: tile_8x32(7, NV, CONTIG, TILE_ARGS); break;               \
    default: tile_8x32(8, NV, CONTIG, TILE_ARGS); break;              \
    }

T512 static void fnn__sgemm_ukr_avx512_8x32(int64_t k, float alpha,
                                            const float *a, int64_t rsa, int64_t csa,
                                            const float *b, int64_t rsb,
                                            float beta, float *c, int64_t ldc,
                                            int64_t m, int64_t n) {
    __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
    __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF
                 : n > 16 ? (__mmask16)((1u << (n - 16)) - 1u) : (__mmask16)0;
    if (n <= 16) {
        if (rsa == 1) { TILE_CASES(1, 1) } else { TILE_CASES(1, 0) }
    } else {
        if (rsa == 1) { TILE_CASES(2, 1) } else { TILE_CASES(2, 0) }
    }
}

const fnn__sgemm_kernel fnn__sgemm_kernel_avx512 = {
    "avx512_8x32", 8, 32,
    256, 192, 4096,         /* kc, mc, nc */
    1, (int64_t)1 << 20,    /* direct path while B <= 1 MiB */
    fnn__sgemm_ukr_avx512_8x32,
};

#endif /* FNN_GEMM_X86 */
