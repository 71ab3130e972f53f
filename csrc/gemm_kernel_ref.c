/*
 * gemm_kernel_ref.c -- the portable SGEMM micro-kernel (the reference).
 *
 * Plain C99 that gcc -O3 auto-vectorises on any target (SSE2 on baseline
 * x86-64, NEON on aarch64); no intrinsics here. It computes a 4 x 8 tile
 * of C from packed, zero-padded panels (contract in gemm_internal.h):
 * the accumulators fill 8 of the 16 SSE (32 NEON) vector registers.
 *
 *   a: packed A micro-panel, (k, MR) -- element (i, p) at a[i + p*csa]
 *      (the driver gives this kernel packed A only, so rsa == 1)
 *   b: packed B micro-panel, (k, NR) with row stride rsb
 *   c: (m, n) block of C, row stride ldc, m <= MR, n <= NR
 *
 * It reads the full MR x NR tile (padding included), so `direct` is 0.
 */
#include "gemm_internal.h"

#define REF_MR 4
#define REF_NR 8

static void fnn__sgemm_ukr_generic_4x8(int64_t k, float alpha,
                                        const float *FNN_RESTRICT a, int64_t rsa, int64_t csa,
                                        const float *FNN_RESTRICT b, int64_t rsb,
                                        float beta, float *FNN_RESTRICT c, int64_t ldc,
                                        int64_t m, int64_t n) {
    float acc[REF_MR][REF_NR];
    (void)rsa;
    for (int i = 0; i < REF_MR; i++)
        for (int j = 0; j < REF_NR; j++) acc[i][j] = 0.0f;
    for (int64_t p = 0; p < k; p++) {
        const float *bp = b + p * rsb;
        const float *ap = a + p * csa;
        for (int i = 0; i < REF_MR; i++) {
            float ai = ap[i];
            for (int j = 0; j < REF_NR; j++) acc[i][j] += ai * bp[j];
        }
    }
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f) {
            for (int64_t j = 0; j < n; j++) ci[j] = alpha * acc[i][j];
        } else {
            for (int64_t j = 0; j < n; j++) ci[j] = alpha * acc[i][j] + beta * ci[j];
        }
    }
}

const fnn__sgemm_kernel fnn__sgemm_kernel_generic = {
    "generic_4x8", REF_MR, REF_NR,
    256, 128, 4096,         /* kc, mc, nc */
    0, 0,                   /* packed only */
    fnn__sgemm_ukr_generic_4x8,
    NULL,
    NULL,
};
