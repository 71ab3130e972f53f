/*
 * gemm.c -- fnn_sgemm: C = alpha * op(A) * op(B) + beta * C (row-major).
 *
 * PLACEHOLDER DRIVER (to be replaced by the packed/blocked driver): correct on
 * every shape, blocked over K and N so the inner loop is a contiguous
 * axpy the compiler vectorises. Threads split rows of C (never K), so the
 * result is bitwise identical for every thread count.
 */
#include <string.h>
#include "fnn_internal.h"

#define KB 256

static inline float a_at(const float *A, int64_t lda, int transA, int64_t i, int64_t p) {
    return transA ? A[p * lda + i] : A[i * lda + p];
}

fnn_status fnn_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K,
                     float alpha, const float *A, int64_t lda,
                     const float *B, int64_t ldb,
                     float beta, float *C, int64_t ldc) {
    if (M < 0 || N < 0 || K < 0) return FNN_ERR_SIZE;
    if (M == 0 || N == 0) return FNN_OK;
    if (ldc < N || lda < (transA ? M : K) || ldb < (transB ? K : N)) return FNN_ERR_SIZE;
    int64_t mn, mnk;
    if (fnn__mul_overflow(M, N, &mn) || fnn__mul_overflow(mn, K, &mnk)) return FNN_ERR_SIZE;
    int nt = fnn__threads_for(2.0 * (double)mnk);
    int64_t i;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f) for (int64_t j = 0; j < N; j++) c[j] *= beta;
        if (alpha == 0.0f || K == 0) continue;
        for (int64_t p = 0; p < K; p++) {
            float a = alpha * a_at(A, lda, transA, i, p);
            if (!transB) {
                const float *b = B + p * ldb;
                for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (int64_t j = 0; j < N; j++) c[j] += a * B[j * ldb + p];
            }
        }
    }
    return FNN_OK;
}

const char *fnn_sgemm_kernel_name(void) { return "placeholder"; }
