/*
 * test_core.c -- pure-C smoke test of fastnn's core without Python.
 *
 * Builds from csrc/ alone (see run.sh) and checks fnn_sgemm against a
 * double-precision triple loop on edge shapes, all transposes, padded
 * leading dimensions, alpha/beta, a sentinel frame around C (no stray
 * writes), beta == 0 over NaN, and bitwise equality across thread counts.
 * Run it once per FASTNN_ISA value to cover every kernel.
 *
 * Exit status 0 when every check passes; prints the first failures.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastnn.h"
#include "gemm_internal.h"   /* the cache-block rule (cpu.c) */

static int failures = 0;
static unsigned long long rng_state = 88172645463325252ULL;

static float frand(void) {  /* xorshift64, uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

#define SENT 12345.0f
#define PAD 3

/* One case: returns 0 if it passed. */
static int check(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                 int64_t extra_ld, int nan_c, int threads_check) {
    int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int64_t lda = ac + extra_ld, ldb = bc + extra_ld, ldc = N + extra_ld;
    /* +1 float offsets: operands are not 16-byte aligned */
    float *A = malloc(sizeof(float) * (size_t)(ar * lda + 1)) , *B = malloc(sizeof(float) * (size_t)(br * ldb + 1));
    int64_t csize = (M + 2 * PAD) * ldc + 2 * PAD + 1;
    float *Cbuf = malloc(sizeof(float) * (size_t)csize), *C0 = malloc(sizeof(float) * (size_t)(M * N + 1));
    float *Cbuf2 = malloc(sizeof(float) * (size_t)csize);
    double *R = malloc(sizeof(double) * (size_t)(M * N + 1)), *E = malloc(sizeof(double) * (size_t)(M * N + 1));
    float *a = A + 1, *b = B + 1;
    for (int64_t i = 0; i < ar * lda; i++) a[i] = frand();
    for (int64_t i = 0; i < br * ldb; i++) b[i] = frand();
    for (int64_t i = 0; i < csize; i++) Cbuf[i] = SENT;
    float *c = Cbuf + PAD * ldc + PAD + 1;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) c[i * ldc + j] = C0[i * N + j] = nan_c ? NAN : frand();
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0, e = 0.0;
            for (int64_t p = 0; p < K; p++) {
                double x = ta ? a[p * lda + i] : a[i * lda + p];
                double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += x * y;
                e += fabs(x * y);
            }
            double r = alpha * s + (beta != 0.0f ? beta * (double)C0[i * N + j] : 0.0);
            R[i * N + j] = (alpha == 0.0f || K == 0) ? (beta != 0.0f ? beta * (double)C0[i * N + j] : 0.0) : r;
            E[i * N + j] = 4.0 * (K + 2) * ldexp(1.0, -24) * (fabs(alpha) * e + (beta != 0.0f ? fabs(beta * (double)C0[i * N + j]) : 0.0)) + 1e-30;
        }
    int bad = 0;
    fnn_status s = fnn_sgemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
    if (s != FNN_OK) bad = 1;
    int64_t base = PAD * ldc + PAD + 1;
    for (int64_t idx = 0; idx < csize && !bad; idx++) {
        int64_t o = idx - base, i = o >= 0 ? o / ldc : -1, j = o >= 0 ? o % ldc : -1;
        float v = Cbuf[idx];
        if (o < 0 || i >= M || j >= N) {
            if (v != SENT) bad = 2;  /* a stray write outside the tile */
        } else if (!(fabs(v - R[i * N + j]) <= E[i * N + j])) {
            bad = 3;
        }
    }
    if (!bad && threads_check) {
        for (int nt = 1; nt <= 3 && !bad; nt++) {
            memcpy(Cbuf2, Cbuf, sizeof(float) * (size_t)csize);
            float *c2 = Cbuf2 + PAD * ldc + PAD + 1;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) c2[i * ldc + j] = C0[i * N + j];
            fnn_set_num_threads(nt);
            fnn_sgemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c2, ldc);
            fnn_set_num_threads(0);
            if (memcmp(Cbuf, Cbuf2, sizeof(float) * (size_t)csize) != 0) bad = 4;
        }
    }
    if (bad && failures++ < 10)
        printf("FAIL(%d) ta=%d tb=%d M=%lld N=%lld K=%lld alpha=%g beta=%g extra_ld=%lld nan_c=%d\n",
               bad, ta, tb, (long long)M, (long long)N, (long long)K, alpha, beta,
               (long long)extra_ld, nan_c);
    free(A); free(B); free(Cbuf); free(Cbuf2); free(C0); free(R); free(E);
    return bad;
}

/* The cache-block rule of cpu.c: the kernel's blocks unless the caches are
   smaller; the override string; bad override strings ignored. */
static int check_blocks(void) {
    const fnn__sgemm_kernel *k = &fnn__sgemm_kernel_generic;
    int bad = 0;
    fnn__gemm_blocks b = fnn__sgemm_blocks_for(k, NULL, 0, 0);   /* unknown caches */
    bad |= b.mc != k->mc || b.kc != k->kc || b.nc != k->nc;
    b = fnn__sgemm_blocks_for(k, NULL, (int64_t)1 << 40, (int64_t)1 << 40);  /* huge */
    bad |= b.mc != k->mc || b.kc != k->kc || b.nc != k->nc;
    b = fnn__sgemm_blocks_for(k, NULL, 64 * 1024, 1024 * 1024);   /* a small L2 and L3 */
    bad |= b.kc != k->kc || b.mc % k->mr != 0 || b.mc < k->mr || b.nc % k->nr != 0;
    bad |= b.mc > k->mr && b.mc * b.kc * 4 > 32 * 1024;            /* A block <= L2 / 2 */
    bad |= b.nc > k->nr && b.nc * b.kc * 4 > 512 * 1024;           /* B block <= L3 / 2 */
    b = fnn__sgemm_blocks_for(k, "100,77,1000", 0, 0);
    bad |= b.mc != 100 / k->mr * k->mr || b.kc != 77 || b.nc != 1000 / k->nr * k->nr;
    b = fnn__sgemm_blocks_for(k, "1,1,1", 0, 0);                   /* at least one tile */
    bad |= b.mc != k->mr || b.kc != 1 || b.nc != k->nr;
    static const char *junk[] = {"", "12", "12,16", "0,16,32", "-1,2,3", "a,b,c", "9,9,99999999"};
    for (int i = 0; i < 7; i++) {
        b = fnn__sgemm_blocks_for(k, junk[i], 0, 0);
        bad |= b.mc != k->mc || b.kc != k->kc || b.nc != k->nc;
    }
    if (bad) printf("FAIL cache-block rule (fnn__sgemm_blocks_for)\n");
    return bad;
}

int main(void) {
    static const int64_t sizes[] = {1, 2, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 65, 200};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    int cases = 0;
    printf("kernel %s, openmp %d, threads %d\n", fnn_sgemm_kernel_name(), fnn_has_openmp(),
           fnn_get_num_threads());
    for (int t = 0; t < 4; t++)
        for (int im = 0; im < ns; im += 1)
            for (int in = 0; in < ns; in += 2)
                for (int ik = 0; ik < ns; ik += 3) {
                    check(t >> 1, t & 1, sizes[im], sizes[in], sizes[ik], 1.0f, 0.0f,
                          (im + in) % 3 == 0 ? 5 : 0, 0, 0);
                    cases++;
                }
    /* blocks: K across KC, M across MC, N across a thread split; big-ld */
    static const int64_t big[][3] = {{257, 300, 513}, {97, 1031, 255}, {520, 70, 300},
                                     {128, 784, 256}, {784, 256, 32}, {32, 256, 784}};
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < 6; s++) {
            check(t >> 1, t & 1, big[s][0], big[s][1], big[s][2], 0.5f, -0.5f, 0, 0, 1);
            check(t >> 1, t & 1, big[s][0], big[s][1], big[s][2], 1.0f, 0.0f, 1024 - 256, 1, 1);
            cases += 2;
        }
    /* alpha/beta grid, beta == 0 over NaN, K == 0 and alpha == 0 */
    static const float alphas[] = {0.0f, 1.0f, -1.0f, 0.5f}, betas[] = {0.0f, 1.0f, -0.5f};
    for (int ia = 0; ia < 4; ia++)
        for (int ib = 0; ib < 3; ib++)
            for (int t = 0; t < 4; t++) {
                check(t >> 1, t & 1, 19, 37, 45, alphas[ia], betas[ib], 2, betas[ib] == 0.0f, 0);
                check(t >> 1, t & 1, 9, 33, 0, alphas[ia], betas[ib], 0, betas[ib] == 0.0f, 0);
                cases += 2;
            }
    /* calls from inside a parallel region (run serially, no shared buffers) */
    {
        const int64_t M = 130, N = 300, K = 257;
        float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
        float *c0 = malloc(sizeof(float) * M * N), *c1 = malloc(sizeof(float) * 4 * M * N);
        for (int64_t i = 0; i < M * K; i++) a[i] = frand();
        for (int64_t i = 0; i < K * N; i++) b[i] = frand();
        fnn_sgemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c0, N);
        int nested_bad = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(4) reduction(+:nested_bad)
#endif
        for (int t = 0; t < 4; t++) {
            float *c = c1 + (int64_t)t * M * N;
            if (fnn_sgemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N) != FNN_OK) nested_bad++;
            if (memcmp(c, c0, sizeof(float) * (size_t)(M * N)) != 0) nested_bad++;
        }
        if (nested_bad) { failures++; printf("FAIL nested/concurrent calls\n"); }
        cases++;
        free(a); free(b); free(c0); free(c1);
    }
    /* errors: negative size, small ld */
    float x = 0.0f;
    if (fnn_sgemm(0, 0, -1, 1, 1, 1.0f, &x, 1, &x, 1, 0.0f, &x, 1) != FNN_ERR_SIZE) failures++;
    if (fnn_sgemm(0, 0, 2, 2, 2, 1.0f, &x, 1, &x, 2, 0.0f, &x, 2) != FNN_ERR_SIZE) failures++;
    if (fnn_sgemm(0, 0, 0, 5, 5, 1.0f, NULL, 5, NULL, 5, 0.0f, NULL, 5) != FNN_OK) failures++;
    failures += check_blocks();
    cases += 1;
    int64_t mc, kc, nc;
    fnn_sgemm_blocking(&mc, &kc, &nc);
    printf("blocks mc %lld kc %lld nc %lld\n", (long long)mc, (long long)kc, (long long)nc);
    printf("%d cases, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
