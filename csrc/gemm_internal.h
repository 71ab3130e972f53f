/*
 * gemm_internal.h -- the micro-kernel contract shared by gemm.c, cpu.c and
 * the gemm_kernel_*.c files (internal, not installed).
 *
 * A micro-kernel computes one register tile of C (m <= MR rows, n <= NR
 * columns) over the whole k it is given:
 *
 *   c[i*ldc + j] = alpha * sum_p a[i*rsa + p*csa] * b[p*rsb + j] + beta * c[i*ldc + j]
 *
 * for 0 <= i < m, 0 <= j < n, with p running 0..k-1 in order (one
 * accumulator per element, so the result never depends on where the tile
 * sits or how many threads run). beta == 0: c is written, never read.
 *
 *   a: element (i, p) at a[i*rsa + p*csa]  -- a packed micro-panel
 *      (rsa = 1, csa = MR), a row-major block (rsa = lda, csa = 1) or a
 *      transposed one (rsa = 1, csa = lda);
 *   b: (k, n) with contiguous rows of stride rsb -- packed (rsb = NR) or
 *      the caller's B itself.
 *
 * A kernel with `direct` set reads only rows i < m of a and columns j < n
 * of b, so the driver may call it on unpacked operands. A kernel without
 * it (the portable one) reads the full MR x NR tile and so needs packed,
 * zero-padded panels.
 */
#ifndef FNN_GEMM_INTERNAL_H
#define FNN_GEMM_INTERNAL_H

#include "fnn_internal.h"

typedef void (*fnn__sgemm_ukr_fn)(int64_t k, float alpha,
                                  const float *a, int64_t rsa, int64_t csa,
                                  const float *b, int64_t rsb,
                                  float beta, float *c, int64_t ldc,
                                  int64_t m, int64_t n);

/* Optional packing helper: one NR-wide micro-panel of B^T.
   dst (kc, NR) <- dst[p*NR + j] = b[j*ldb + p] for j < n, 0 for n <= j < NR.
   b is (n, kc) with row stride ldb (the caller's B, transposed). */
typedef void (*fnn__sgemm_pack_bt_fn)(float *dst, const float *b, int64_t ldb,
                                      int64_t kc, int64_t n);

/* Optional narrow-N NN path: c (m, n) = alpha a (m, k) . b (k, n) + beta c,
   a and b row-major (strides lda, ldb), n <= FNN_NARROW_NN_MAX, with
   vectors along m (a's rows transposed in registers) instead of along n.
   Each element gets the same operations, in the same order, as the
   kernel's ukr gives it (p = 0..k-1 fused multiply-adds into a zero
   accumulator, then alpha and beta), so the bits are those of the direct
   path. beta == 0: c is written, never read. */
#define FNN_NARROW_NN_MAX 4
typedef void (*fnn__sgemm_narrow_nn_fn)(int64_t m, int64_t n, int64_t k, float alpha,
                                        const float *a, int64_t lda, const float *b,
                                        int64_t ldb, float beta, float *c, int64_t ldc);

typedef struct fnn__sgemm_kernel {
    const char *name;       /* e.g. "avx512_12x32" */
    int mr, nr;             /* register tile */
    int64_t kc, mc, nc;     /* cache blocks (mc a multiple of mr, nc of nr) */
    int direct;             /* 1: ukr is safe on unpacked operands (see above) */
    int64_t direct_max_b;   /* bytes of B (k * n * 4) up to which the direct path runs */
    fnn__sgemm_ukr_fn ukr;
    fnn__sgemm_pack_bt_fn pack_bt;  /* NULL: gemm.c's portable loop */
    fnn__sgemm_narrow_nn_fn narrow_nn;  /* NULL: narrow NN shapes run ukr */
} fnn__sgemm_kernel;

/* The portable kernel (gemm_kernel_ref.c), always present. */
extern const fnn__sgemm_kernel fnn__sgemm_kernel_generic;
/* x86-64 SIMD kernels need GCC/Clang's target attribute (no -march flags in
   the build); elsewhere (aarch64, MSVC), or when built with
   -DFNN_GEMM_PORTABLE_ONLY, only the portable kernel exists. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(FNN_GEMM_PORTABLE_ONLY)
#define FNN_GEMM_X86 1
#endif

#ifdef FNN_GEMM_X86
extern const fnn__sgemm_kernel fnn__sgemm_kernel_avx2;    /* gemm_kernel_avx2.c */
extern const fnn__sgemm_kernel fnn__sgemm_kernel_avx512;  /* gemm_kernel_avx512.c */
#endif

/* The kernel chosen for this process (cpu.c): picked once, at first call,
   from the CPU's features and FASTNN_ISA=generic|avx2|avx512. */
const fnn__sgemm_kernel *fnn__sgemm_kernel_get(void);

/* The cache blocks fnn_sgemm uses on this CPU (cpu.c): the chosen kernel's,
   lowered to fit the detected L2 (mc) and L3 (nc), or FASTNN_GEMM_BLOCKS=
   mc,kc,nc. Computed once per process. */
typedef struct fnn__gemm_blocks { int64_t mc, kc, nc; } fnn__gemm_blocks;
fnn__gemm_blocks fnn__sgemm_blocks(void);
/* The rule itself, for kernel k, an override string env (NULL: none) and
   cache sizes in bytes (0: unknown). */
fnn__gemm_blocks fnn__sgemm_blocks_for(const fnn__sgemm_kernel *k, const char *env,
                                       int64_t l2, int64_t l3);

#endif /* FNN_GEMM_INTERNAL_H */
