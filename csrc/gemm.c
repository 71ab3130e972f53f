/*
 * gemm.c -- fnn_sgemm: C = alpha * op(A) * op(B) + beta * C, row-major float32.
 *
 * The driver around the micro-kernels of gemm_kernel_*.c (contract in
 * gemm_internal.h; kernel picked once per process in cpu.c). Paths:
 *
 *   direct  (no packing) -- op(B) = B and B small enough to stay in L2
 *           (k * n * 4 <= kernel.direct_max_b), A either way round with
 *           M <= 1024 when transposed, no leading dimension a multiple of
 *           512 floats (L1 set conflicts). Covers the MLP training shapes
 *           X.W and X^T.dY; the kernel reads A and B where they lie.
 *   packed  GotoBLAS/BLIS five loops (Goto & van de Geijn, TOMS 2008;
 *           Van Zee & van de Geijn, TOMS 2015):
 *             jc over N by NC   B~ (KC x NC) packed in NR-wide micro-panels
 *             pc over K by KC
 *             ic over M by MC   A~ (MC x KC) packed in MR-tall micro-panels
 *             jr by NR, ir by MR: micro-kernel on an MR x NR tile
 *           Transposes are folded into packing; edges are zero-padded.
 *           When A is small (M*K*4 <= direct_max_b / 2) and the kernel is
 *           direct-capable, only B is packed and A is read in place (the
 *           NT shapes of backward, dY.W^T: one pass over W per call, done
 *           by the kernel's register-transposing pack_bt when it has one).
 *   narrow  op(A) = A, op(B) = B, N <= FNN_NARROW_NN_MAX (4), one thread,
 *           with a kernel that has narrow_nn (AVX-512): x.w of a layer with
 *           one output, vectors along M; the direct path's bits.
 *           op(A) = A^T, N <= 16 (X^T.dY of an output layer): computes C^T
 *           with vectors along M (see narrow_tn), one thread; taken when
 *           M >= 2 NR, or for any M > N when N <= 8 (a 16 x 1 weight
 *           gradient: 3x faster than 16 one-lane rows). Other N <= 16
 *           shapes run the kernels' one-vector (narrow-N) tiles.
 *
 * Threads: one below 2 MFLOP (fork/join costs ~1-100 us on these machines);
 * otherwise C is split into row or column slabs (N in NR multiples when
 * there are >= 2 slabs per thread, else M in MR multiples; M first when A
 * is transposed), each thread packing its own panels. K is never split and every element is summed
 * over k in the same order by the same kernel whatever its tile, so the
 * result is bitwise identical for every thread count.
 *
 * Packing buffers: one 64-byte aligned block per call (all threads'
 * panels), obtained before anything is written, so FNN_ERR_NOMEM leaves C
 * untouched. It is cached per calling thread (grown on demand, up to
 * GEMM_CACHE_MAX bytes, freed when the thread exits), so a training step
 * allocates nothing once warm; concurrent callers each have their own.
 * fnn_alloc_count() counts the allocations, for the tests that prove it.
 *
 * Floating point: while a call runs, each worker sets FTZ/DAZ (x86 MXCSR;
 * denormals slow the FMA pipes several-fold) and restores the caller's
 * mode afterwards, so denormal inputs/products count as zero. NaN and Inf
 * propagate as in a plain product. beta == 0 never reads C; alpha == 0 or
 * K == 0 gives beta * C without reading A or B.
 *
 * Size letters: M rows of C, N columns of C, K the inner dimension.
 */
#include <stdlib.h>
#include <string.h>
#include "gemm_internal.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__SSE__) || defined(_M_X64))
#include <xmmintrin.h>
#define FNN_HAVE_MXCSR 1
#endif

#define GEMM_PAR_MIN_FLOPS 2.0e6
#define GEMM_ALIGN 64
#define EPI_MIN 1024  /* floats of C per epilogue call on the direct path */
#define PACK_KB 16   /* k-steps per transposing pack block: one source cache line */

/* ------------------------------------------------------------ utilities */

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* 64-byte aligned malloc: the raw pointer is kept just below the block. */
static void *aligned_alloc64(size_t bytes) {
    size_t extra = GEMM_ALIGN + sizeof(void *);
    if (bytes > SIZE_MAX - extra) return NULL;
    void *raw = malloc(bytes + extra);
    if (!raw) return NULL;
    uintptr_t p = ((uintptr_t)raw + extra) & ~(uintptr_t)(GEMM_ALIGN - 1);
    ((void **)p)[-1] = raw;
    return (void *)p;
}

static void aligned_free64(void *p) {
    if (p) free(((void **)p)[-1]);
}

/* Heap allocations made by the core (atomic; read by fnn_alloc_count). */
static int64_t gemm_allocs = 0;

int64_t fnn_alloc_count(void) { return __atomic_load_n(&gemm_allocs, __ATOMIC_RELAXED); }

void fnn__count_alloc(void) { __atomic_fetch_add(&gemm_allocs, 1, __ATOMIC_RELAXED); }

static void *counted_alloc64(size_t bytes) {
    __atomic_fetch_add(&gemm_allocs, 1, __ATOMIC_RELAXED);
    return aligned_alloc64(bytes);
}

/* The per-thread packing-buffer cache: a pthread key whose destructor frees
   the block when the thread exits. Blocks above GEMM_CACHE_MAX bytes (large
   GEMMs, where malloc is noise) are allocated and freed per call. */
#define GEMM_CACHE_MAX ((size_t)16 << 20)
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
typedef struct { float *buf; size_t bytes; } pack_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_ok = 0;

static void cache_free(void *p) {
    pack_cache *c = (pack_cache *)p;
    aligned_free64(c->buf);
    free(c);
}

static void cache_init(void) { cache_ok = pthread_key_create(&cache_key, cache_free) == 0; }

/* A block of >= bytes for this call; *owned = 1 if the caller must free it. */
static float *pack_buffer(size_t bytes, int *owned) {
    *owned = 1;
    pthread_once(&cache_once, cache_init);
    if (!cache_ok || bytes > GEMM_CACHE_MAX) return (float *)counted_alloc64(bytes);
    pack_cache *c = (pack_cache *)pthread_getspecific(cache_key);
    if (!c) {
        c = (pack_cache *)calloc(1, sizeof *c);
        if (!c) return NULL;
        __atomic_fetch_add(&gemm_allocs, 1, __ATOMIC_RELAXED);
        if (pthread_setspecific(cache_key, c) != 0) { free(c); return NULL; }
    }
    if (c->bytes < bytes) {
        float *nb = (float *)counted_alloc64(bytes);
        if (!nb) return NULL;
        aligned_free64(c->buf);
        c->buf = nb;
        c->bytes = bytes;
    }
    *owned = 0;
    return c->buf;
}
#else
static float *pack_buffer(size_t bytes, int *owned) {
    *owned = 1;
    return (float *)counted_alloc64(bytes);
}
#endif

/* FTZ (bit 15) and DAZ (bit 6) on for the duration of a call. */
static inline unsigned int fp_enter(void) {
#ifdef FNN_HAVE_MXCSR
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0;
#endif
}

static inline void fp_leave(unsigned int old) {
#ifdef FNN_HAVE_MXCSR
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

/* --------------------------------------------------------------- packing */

/* One micro-panel dst (kc, w), row-major, from kc source rows of n <= w
   contiguous floats (src + p*ld); columns n..w-1 zeroed. */
static void panel_rows(float *FNN_RESTRICT dst, const float *FNN_RESTRICT src, int64_t ld,
                       int64_t kc, int64_t n, int w) {
    for (int64_t p = 0; p < kc; p++) {
        const float *s = src + p * ld;
        float *d = dst + p * w;
        int64_t j = 0;
        for (; j < n; j++) d[j] = s[j];
        for (; j < w; j++) d[j] = 0.0f;
    }
}

/* One micro-panel dst (kc, w), row-major, from n <= w source rows of kc
   contiguous floats (src + j*ld), transposed: dst[p*w + j] = src[j*ld + p];
   columns n..w-1 zeroed. In blocks of PACK_KB k-steps so the source lines
   and the destination rows both stay in L1. */
static void panel_cols(float *FNN_RESTRICT dst, const float *FNN_RESTRICT src, int64_t ld,
                       int64_t kc, int64_t n, int w) {
    for (int64_t pb = 0; pb < kc; pb += PACK_KB) {
        int64_t pe = imin(kc, pb + PACK_KB);
        for (int64_t j = 0; j < n; j++) {
            const float *s = src + j * ld;
            for (int64_t p = pb; p < pe; p++) dst[p * w + j] = s[p];
        }
        for (int64_t j = n; j < w; j++)
            for (int64_t p = pb; p < pe; p++) dst[p * w + j] = 0.0f;
    }
}

/* Ap <- op(A)[i0 : i0+mc, p0 : p0+kc] as ceil(mc/MR) micro-panels, each
   (kc, MR) row-major (element (i, p) at p*MR + i), rows past mc zeroed.
   A is (M, K) if !ta else (K, M). */
static void pack_a(float *FNN_RESTRICT Ap, const float *FNN_RESTRICT A, int64_t lda, int ta,
                   int64_t i0, int64_t p0, int64_t mc, int64_t kc, int mr) {
    for (int64_t ir = 0; ir < mc; ir += mr) {
        int64_t m = imin(mr, mc - ir);
        if (ta)   /* op(A)(i, p) = A[p*lda + i]: each p gives m contiguous floats */
            panel_rows(Ap + ir * kc, A + p0 * lda + i0 + ir, lda, kc, m, mr);
        else      /* op(A)(i, p) = A[i*lda + p]: row i is contiguous over p */
            panel_cols(Ap + ir * kc, A + (i0 + ir) * lda + p0, lda, kc, m, mr);
    }
}

/* Bp <- op(B)[p0 : p0+kc, j0 : j0+nc] as ceil(nc/NR) micro-panels, each
   (kc, NR) row-major, columns past nc zeroed. B is (K, N) if !tb else (N, K). */
static void pack_b(float *FNN_RESTRICT Bp, const float *FNN_RESTRICT B, int64_t ldb, int tb,
                   int64_t p0, int64_t j0, int64_t kc, int64_t nc, int nr,
                   fnn__sgemm_pack_bt_fn pack_bt) {
    for (int64_t jr = 0; jr < nc; jr += nr) {
        int64_t n = imin(nr, nc - jr);
        float *dst = Bp + jr * kc;
        if (!tb)                /* row p of op(B) is contiguous */
            panel_rows(dst, B + p0 * ldb + j0 + jr, ldb, kc, n, nr);
        else if (pack_bt)       /* the kernel's own transposing pack */
            pack_bt(dst, B + (j0 + jr) * ldb + p0, ldb, kc, n);
        else                    /* op(B)(p, j) = B[j*ldb + p]: column j is contiguous */
            panel_cols(dst, B + (j0 + jr) * ldb + p0, ldb, kc, n, nr);
    }
}

/* ---------------------------------------------------------------- driver */

typedef struct gemm_args {
    const fnn__sgemm_kernel *kr;
    int ta, tb;
    int64_t K;
    float alpha, beta;
    const float *A; int64_t lda;   /* A is (M, K) if !ta else (K, M) */
    const float *B; int64_t ldb;   /* B is (K, N) if !tb else (N, K) */
    float *C; int64_t ldc;         /* C is (M, N) */
    int direct;
    int a_in_place;                /* packed path: B packed, A read where it lies */
    int64_t mc, kc, nc;            /* effective cache blocks */
    int64_t buf_a, buf_b;          /* floats per thread in each buffer */
    fnn__gemm_epi_fn epi;          /* NULL, or applied to each finished block */
    const void *epi_ctx;
} gemm_args;

/* C[m0 : m0+m, n0 : n0+n] on the direct path: the kernel reads A and B in place. */
static void block_direct(const gemm_args *g, int64_t m0, int64_t m, int64_t n0, int64_t n) {
    const fnn__sgemm_kernel *kr = g->kr;
    int64_t rsa = g->ta ? 1 : g->lda, csa = g->ta ? g->lda : 1;
    int64_t done = 0;   /* rows before this one have had the epilogue */
    for (int64_t i = 0; i < m; i += kr->mr) {
        int64_t mr = imin(kr->mr, m - i);
        const float *a = g->A + (m0 + i) * rsa;
        float *c = g->C + (m0 + i) * g->ldc + n0;
        for (int64_t j = 0; j < n; j += kr->nr) {
            kr->ukr(g->K, g->alpha, a, rsa, csa, g->B + n0 + j, g->ldb,
                    g->beta, c + j, g->ldc, mr, imin(kr->nr, n - j));
        }
        /* the epilogue on finished strips, EPI_MIN floats or more at a time
           (still in L1, and few calls when rows are short) */
        if (g->epi && ((i + mr - done) * n >= EPI_MIN || i + mr == m)) {
            g->epi(g->C + (m0 + done) * g->ldc + n0, g->ldc, i + mr - done, n, n0, g->epi_ctx);
            done = i + mr;
        }
    }
}

/* C[m0 : m0+m, n0 : n0+n] on the packed path, with this thread's buffers. */
static void block_packed(const gemm_args *g, int64_t m0, int64_t m, int64_t n0, int64_t n,
                         float *Ap, float *Bp) {
    const fnn__sgemm_kernel *kr = g->kr;
    const int mr = kr->mr, nr = kr->nr;
    for (int64_t jc = 0; jc < n; jc += g->nc) {
        int64_t nc = imin(g->nc, n - jc);
        for (int64_t pc = 0; pc < g->K; pc += g->kc) {
            int64_t kc = imin(g->kc, g->K - pc);
            float beta = pc == 0 ? g->beta : 1.0f;
            pack_b(Bp, g->B, g->ldb, g->tb, pc, n0 + jc, kc, nc, nr, kr->pack_bt);
            for (int64_t ic = 0; ic < m; ic += g->mc) {
                int64_t mc = imin(g->mc, m - ic);
                /* A~: packed micro-panels, or A in place when it is small */
                const float *ap = Ap;
                int64_t rsa = 1, csa = mr, step = kc;
                if (g->a_in_place) {
                    rsa = g->ta ? 1 : g->lda;
                    csa = g->ta ? g->lda : 1;
                    ap = g->A + (m0 + ic) * rsa + pc * csa;
                    step = rsa;
                } else {
                    pack_a(Ap, g->A, g->lda, g->ta, m0 + ic, pc, mc, kc, mr);
                }
                float *c = g->C + (m0 + ic) * g->ldc + n0 + jc;
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    int64_t nn = imin(nr, nc - jr);
                    for (int64_t ir = 0; ir < mc; ir += mr) {
                        kr->ukr(kc, g->alpha, ap + ir * step, rsa, csa, Bp + jr * kc, nr,
                                beta, c + ir * g->ldc + jr, g->ldc, imin(mr, mc - ir), nn);
                    }
                    /* the last k block: this (mc, NR) panel of C is final and in L1 */
                    if (g->epi && pc + kc == g->K)
                        g->epi(c + jr, g->ldc, mc, nn, n0 + jc + jr, g->epi_ctx);
                }
            }
        }
    }
}

static void run_block(const gemm_args *g, int64_t m0, int64_t m, int64_t n0, int64_t n,
                      float *buf, int t) {
    if (m <= 0 || n <= 0) return;
    unsigned int fp = fp_enter();
    if (g->direct) {
        block_direct(g, m0, m, n0, n);
    } else {
        float *Ap = buf + (int64_t)t * (g->buf_a + g->buf_b);
        block_packed(g, m0, m, n0, n, Ap, Ap + g->buf_a);
    }
    fp_leave(fp);
}

/* TN with narrow N (the weight gradient of an output layer, X^T.dY with
   N <= 16): vectors along N would leave most lanes idle, so compute
   T = alpha op(B)^T op(A)^T = (alpha op(A) op(B))^T instead, whose rows run
   along M with every lane busy (A^T is stored (K, M): its rows are the
   kernel's contiguous B operand; B is read in place as the kernel's A),
   in column chunks of NARROW_MB, then C = T^T + beta C. One thread. */
#define NARROW_MB 256
static void narrow_tn(const gemm_args *g, int64_t M, int64_t N) {
    const fnn__sgemm_kernel *kr = g->kr;
    float T[16 * NARROW_MB];   /* T is (N, mb), row stride NARROW_MB */
    unsigned int fp = fp_enter();
    for (int64_t i0 = 0; i0 < M; i0 += NARROW_MB) {
        int64_t mb = imin(NARROW_MB, M - i0);
        for (int64_t j = 0; j < N; j += kr->mr)
            for (int64_t i = 0; i < mb; i += kr->nr)
                kr->ukr(g->K, g->alpha, g->B + j, 1, g->ldb, g->A + i0 + i, g->lda,
                        0.0f, T + j * NARROW_MB + i, NARROW_MB,
                        imin(kr->mr, N - j), imin(kr->nr, mb - i));
        for (int64_t i = 0; i < mb; i++) {
            float *c = g->C + (i0 + i) * g->ldc;
            if (g->beta == 0.0f)
                for (int64_t j = 0; j < N; j++) c[j] = T[j * NARROW_MB + i];
            else
                for (int64_t j = 0; j < N; j++) c[j] = T[j * NARROW_MB + i] + g->beta * c[j];
        }
    }
    fp_leave(fp);
}

/* C = beta * C (alpha == 0 or K == 0): A and B are not read. */
static void scale_c(float *C, int64_t ldc, int64_t M, int64_t N, float beta) {
    if (beta == 1.0f) return;
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
}

/* 1 if the direct path suits this problem (see the top comment). */
static int use_direct(const fnn__sgemm_kernel *kr, int ta, int tb, int64_t M, int64_t N,
                      int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
    if (!kr->direct || tb) return 0;
    if (ta && M > 1024) return 0;
    if ((double)K * (double)N * 4.0 > (double)kr->direct_max_b) return 0;
    if ((lda % 512 == 0 && M > 1) || (ldb % 512 == 0 && K > 1) || (ldc % 512 == 0 && M > 1))
        return 0;
    return 1;
}

fnn_status fnn_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K,
                     float alpha, const float *A, int64_t lda,
                     const float *B, int64_t ldb,
                     float beta, float *C, int64_t ldc) {
    return fnn__sgemm_epi(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                          NULL, NULL);
}

fnn_status fnn__sgemm_epi(int transA, int transB, int64_t M, int64_t N, int64_t K,
                          float alpha, const float *A, int64_t lda, const float *B,
                          int64_t ldb, float beta, float *C, int64_t ldc,
                          fnn__gemm_epi_fn epi, const void *epi_ctx) {
    if (M < 0 || N < 0 || K < 0) return FNN_ERR_SIZE;
    if (M == 0 || N == 0) return FNN_OK;
    int ta = transA != 0, tb = transB != 0;
    if (ldc < N || lda < (ta ? M : K) || ldb < (tb ? K : N)) return FNN_ERR_SIZE;
    int64_t mn, mnk, span;
    if (fnn__mul_overflow(M, N, &mn) || fnn__mul_overflow(mn, K, &mnk)) return FNN_ERR_SIZE;
    if (fnn__mul_overflow(M, ldc, &span)) return FNN_ERR_SIZE;
    if (fnn__mul_overflow(ta ? K : M, lda, &span)) return FNN_ERR_SIZE;
    if (fnn__mul_overflow(tb ? N : K, ldb, &span)) return FNN_ERR_SIZE;
    if (!C) return FNN_ERR_ARG;
    if (alpha == 0.0f || K == 0) {
        scale_c(C, ldc, M, N, beta);
        if (epi) epi(C, ldc, M, N, 0, epi_ctx);
        return FNN_OK;
    }
    if (!A || !B) return FNN_ERR_ARG;

    gemm_args g;
    g.kr = fnn__sgemm_kernel_get();
    g.ta = ta; g.tb = tb; g.K = K; g.alpha = alpha; g.beta = beta;
    g.A = A; g.lda = lda; g.B = B; g.ldb = ldb; g.C = C; g.ldc = ldc;
    g.epi = epi; g.epi_ctx = epi_ctx;
    g.direct = use_direct(g.kr, ta, tb, M, N, K, lda, ldb, ldc);
    /* A small enough to stay in L2 and a direct-capable kernel: only B is
       packed (the NT shapes of backward, dY.W^T). */
    g.a_in_place = g.kr->direct && !g.direct && (ta ? M <= 1024 : 1) &&
                   (double)M * (double)K * 4.0 <= (double)g.kr->direct_max_b / 2 &&
                   (lda % 512 != 0 || (ta ? K : M) <= 1);
    const int64_t MR = g.kr->mr, NR = g.kr->nr;

    if (g.kr->direct && ta && !tb && N <= 16 && N < M && (M >= 2 * NR || N <= 8) &&
        lda % 512 != 0 && ldb % 512 != 0) {
        narrow_tn(&g, M, N);
        if (epi) epi(C, ldc, M, N, 0, epi_ctx);
        return FNN_OK;
    }

    double flops = 2.0 * (double)mnk;
    int nt = flops < GEMM_PAR_MIN_FLOPS ? 1 : fnn__threads_for(flops);

    /* narrow NN (a one-output layer's forward, x.w with w (K, 1)): vectors
       along M, the direct path's bits (see gemm_internal.h); one thread */
    if (g.kr->narrow_nn && !ta && !tb && N <= FNN_NARROW_NN_MAX && nt == 1 &&
        (lda % 512 != 0 || M <= 1)) {
        unsigned int fp = fp_enter();
        g.kr->narrow_nn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        fp_leave(fp);
        if (epi) epi(C, ldc, M, N, 0, epi_ctx);
        return FNN_OK;
    }

    /* Split: slabs of C over N (in NR multiples) or over M (in MR multiples).
       A^T (the weight-gradient shapes) splits over M when there are >= 2
       row slabs per thread: each thread then reads only its columns of A^T
       (measured 1.2-2x faster at 2 threads than an N split). */
    int64_t units_n = (N + NR - 1) / NR, units_m = (M + MR - 1) / MR;
    int split_n = ta ? units_m < 2 * (int64_t)nt
                     : (units_n >= 2 * (int64_t)nt || units_n >= units_m);
    int64_t units = split_n ? units_n : units_m;
    if (nt > units) nt = (int)units;
    if (nt < 1) nt = 1;

    /* Per-thread panel sizes, from the largest slab a thread can get. */
    float *buf = NULL;
    int owned = 0;
    g.buf_a = g.buf_b = 0;
    const fnn__gemm_blocks blk = fnn__sgemm_blocks();
    g.kc = imin(blk.kc, K);
    if (!g.direct) {
        int64_t slab = (units + nt - 1) / nt;
        int64_t mmax = split_n ? M : imin(M, slab * MR);
        int64_t nmax = split_n ? imin(N, slab * NR) : N;
        g.mc = imin(blk.mc, round_up(mmax, MR));
        g.nc = imin(blk.nc, round_up(nmax, NR));
        g.buf_a = g.a_in_place ? 0 : round_up(g.mc * g.kc, GEMM_ALIGN / (int64_t)sizeof(float));
        g.buf_b = round_up(g.nc * g.kc, GEMM_ALIGN / (int64_t)sizeof(float));
        int64_t total = (g.buf_a + g.buf_b) * nt;
        if ((double)total * sizeof(float) > (double)SIZE_MAX / 2) return FNN_ERR_NOMEM;
        buf = pack_buffer((size_t)total * sizeof(float), &owned);
        if (!buf) return FNN_ERR_NOMEM;
    } else {
        g.mc = MR; g.nc = NR;
    }

    if (nt == 1) {
        run_block(&g, 0, M, 0, N, buf, 0);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int64_t u0 = units * t / T, u1 = units * (t + 1) / T;
            if (split_n) run_block(&g, 0, M, u0 * NR, imin(N, u1 * NR) - u0 * NR, buf, t);
            else run_block(&g, u0 * MR, imin(M, u1 * MR) - u0 * MR, 0, N, buf, t);
        }
#else
        run_block(&g, 0, M, 0, N, buf, 0);
#endif
    }
    if (owned) aligned_free64(buf);
    return FNN_OK;
}

const char *fnn_sgemm_kernel_name(void) { return fnn__sgemm_kernel_get()->name; }

void fnn_sgemm_blocking(int64_t *mc, int64_t *kc, int64_t *nc) {
    const fnn__gemm_blocks b = fnn__sgemm_blocks();
    if (mc) *mc = b.mc;
    if (kc) *kc = b.kc;
    if (nc) *nc = b.nc;
}
