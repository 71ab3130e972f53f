/*
 * fnn_internal.h -- helpers shared by the C core (not installed, not public).
 *
 * Sizes and indices are int64_t. fnn__threads_for() decides how many OpenMP
 * threads a kernel may use: 1 for small jobs, inside an enclosing parallel
 * region, or in a child process forked after the parent used threads
 * (libgomp's pool does not survive fork: GCC PR 60035).
 */
#ifndef FNN_INTERNAL_H
#define FNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "fastnn.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FNN_RESTRICT __restrict__
#define FNN_LIKELY(x) __builtin_expect(!!(x), 1)
#define FNN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define FNN_RESTRICT
#define FNN_LIKELY(x) (x)
#define FNN_UNLIKELY(x) (x)
#endif

/* Work below this many floating-point operations runs on one thread: an
   OpenMP fork/join costs ~1-100 us on these machines (bench/compare.py), and at
   2e5 a digits epoch (17k-parameter Adam updates on 2 threads) ran 1.8x
   slower on 2 threads than on 1 (bench/compare.py). */
#define FNN_PAR_MIN_FLOPS 1.0e6

/* splitmix64 (Steele, Lea & Flood, OOPSLA 2014): the counter-based generator
   of dropout masks and of parameter initialisation. */
static inline uint64_t fnn__splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Count one heap allocation in fnn_alloc_count() (csrc/gemm.c). */
void fnn__count_alloc(void);

/* Set this thread's fnn_last_error() message (printf format) and return s. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
fnn_status fnn__error(fnn_status s, const char *fmt, ...);

/* Clear this thread's fnn_last_error() message: the public entry points of
   the model and the tables call it first, so that a kernel that fails with
   a bare status is never reported with an older call's message. */
void fnn__clear_error(void);

/* Threads to use for a job of `work` flops (or elementwise ops x a cost
   factor): 1 when small, nested, or in a forked child; else the set count. */
int fnn__threads_for(double work);

/* 1 if a * b overflows int64 (a, b >= 0), else 0 and *out = a * b. */
static inline int fnn__mul_overflow(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0) return 1;
    if (a != 0 && b > INT64_MAX / a) return 1;
    *out = a * b;
    return 0;
}

/* FNN_OK if every size is >= 0 and the product of (rows, cols) fits int64. */
static inline fnn_status fnn__check_2d(int64_t rows, int64_t cols) {
    int64_t p;
    return fnn__mul_overflow(rows, cols, &p) ? FNN_ERR_SIZE : FNN_OK;
}

/* ------------------------------------------------ SIMD clones and ranges */
/* The build has no -march flag (a wheel runs on any x86-64), so plain loops
   compile to SSE2. FNN_SIMD_CLONES on a `static` function over a range
   [lo, hi) makes GCC emit AVX-512 (x86-64-v4), AVX2 (x86-64-v3) and baseline
   copies of it, one chosen at load time by an ifunc resolver. Only on GCC
   (>= 11, for the arch=x86-64-vN names), x86-64, ELF with glibc (ifunc);
   empty elsewhere, and -DFNN_NO_SIMD_CLONES turns it off.
   The attribute does nothing for the body of a `#pragma omp parallel for`
   inside the function (GCC outlines it and compiles it for the default
   target), so the pattern is: a FNN_SIMD_CLONES range function with the
   plain loop, called by each thread on its chunk (FNN_PARALLEL_RANGES).
   Rounding: every copy rounds like the scalar code because -std=c99 implies
   -ffp-contract=off (no FMA contraction) and there is no -ffast-math;
   vector add, mul, div, sqrt and max (x > m ? x : m) are exact IEEE. Keep
   -ffp-contract=off in any build that defines FNN_SIMD_CLONES. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER) && \
    __GNUC__ >= 11 && defined(__x86_64__) && defined(__ELF__) && \
    defined(__linux__) && defined(__GLIBC__) && !defined(FNN_NO_SIMD_CLONES)
#define FNN_SIMD_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FNN_SIMD_CLONES
#endif

/* Forces inlining, so that a body called with constant flags is specialised
   into one branch-free loop per variant (see optim.c). */
#if defined(__GNUC__) || defined(__clang__)
#define FNN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FNN_ALWAYS_INLINE inline
#endif

/* Elements per chunk boundary in fnn__thread_range: 16 floats = 64 bytes,
   one cache line and one AVX-512 vector, so threads never share a line of
   an aligned buffer and each chunk but the last is a whole number of vectors. */
#define FNN_RANGE_ALIGN 16

/* The calling thread's contiguous chunk [*lo, *hi) of [0, n): blocks of
   FNN_RANGE_ALIGN elements dealt out evenly, in thread order. Depends only
   on n, the team size and the thread number (deterministic). Outside a
   parallel region, or without OpenMP, the whole range [0, n). */
static inline void fnn__thread_range(int64_t n, int64_t *lo, int64_t *hi) {
#ifdef _OPENMP
    int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    int64_t t = 0, T = 1;
#endif
    int64_t nb = (n + FNN_RANGE_ALIGN - 1) / FNN_RANGE_ALIGN;
    int64_t q = nb / T, r = nb % T;
    int64_t b0 = t * q + (t < r ? t : r), b1 = b0 + q + (t < r ? 1 : 0);
    *lo = b0 * FNN_RANGE_ALIGN < n ? b0 * FNN_RANGE_ALIGN : n;
    *hi = b1 * FNN_RANGE_ALIGN < n ? b1 * FNN_RANGE_ALIGN : n;
}

/* The calling thread's number in the innermost OpenMP team (0 without
   OpenMP or outside a parallel region). */
static inline int fnn__thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Runs the statement `call` (which uses the int64_t names lo, hi) once per
   thread on that thread's chunk of [0, n): directly over [0, n) when
   nt == 1 (no OpenMP fork), else inside one `omp parallel` of nt threads. */
#ifdef _OPENMP
#define FNN_PARALLEL_RANGES(nt, n, lo, hi, call) do {                       \
        const int fnn__nt_ = (nt);                                          \
        const int64_t fnn__n_ = (n);                                        \
        if (fnn__nt_ <= 1) {                                                \
            int64_t lo = 0, hi = fnn__n_;                                   \
            call;                                                           \
        } else {                                                            \
            _Pragma("omp parallel num_threads(fnn__nt_)")                   \
            {                                                               \
                int64_t lo, hi;                                             \
                fnn__thread_range(fnn__n_, &lo, &hi);                       \
                if (lo < hi) { call; }                                      \
            }                                                               \
        }                                                                   \
    } while (0)
#else
#define FNN_PARALLEL_RANGES(nt, n, lo, hi, call) do {                       \
        (void)(nt);                                                         \
        int64_t lo = 0, hi = (n);                                           \
        call;                                                               \
    } while (0)
#endif

/* for (i = 0; i < n; i++) stmt; -- split over nt threads (schedule static)
   when nt > 1, else a plain loop. Not `#pragma omp parallel for if (nt > 1)`:
   a serialised region still costs libgomp a team allocation (malloc/free)
   and futex calls, measured at several microseconds per tiny training step. */
#ifdef _OPENMP
#define FNN_PARALLEL_FOR(nt, i, n, stmt) do {                                \
        const int fnn__ntf_ = (nt);                                         \
        if (fnn__ntf_ > 1) {                                                \
            _Pragma("omp parallel for schedule(static) num_threads(fnn__ntf_)") \
            for (i = 0; i < (n); i++) { stmt; }                             \
        } else {                                                            \
            for (i = 0; i < (n); i++) { stmt; }                             \
        }                                                                   \
    } while (0)
#else
#define FNN_PARALLEL_FOR(nt, i, n, stmt) do {                                \
        (void)(nt);                                                         \
        for (i = 0; i < (n); i++) { stmt; }                                 \
    } while (0)
#endif

/* db (OUT) += column sums of dy (N, OUT), deterministic (csrc/dense.c). */
void fnn__column_sums_add(float *db, const float *dy, int64_t N, int64_t OUT);
/* The sparse linear kernels of csrc/sparse.c without their checks: x must
   have passed fnn_csr_check and the sizes fnn__check_2d. */
fnn_status fnn__csr_dense_forward(float *y, const fnn_csr *x, const float *w, const float *b,
                                  int64_t OUT);
fnn_status fnn__csr_dense_backward(float *dw, float *db, const float *dy, const fnn_csr *x,
                                   int64_t OUT);

/* The losses of csrc/losses.c with row (sample) weights rw (N values, finite
   and >= 0, or NULL) and a denominator (<= 0: the total weight): see the top
   comment of losses.c. The public fnn_*_loss are these with rw NULL, denom 0. */
fnn_status fnn__mse_loss_w(double *loss, float *dpred, const float *pred,
                           const float *target, const float *rw, double denom,
                           int64_t N, int64_t D);
fnn_status fnn__mae_loss_w(double *loss, float *dpred, const float *pred,
                           const float *target, const float *rw, double denom,
                           int64_t N, int64_t D);
fnn_status fnn__huber_loss_w(double *loss, float *dpred, const float *pred,
                             const float *target, const float *rw, double denom,
                             int64_t N, int64_t D, float delta);
fnn_status fnn__bce_with_logits_loss_w(double *loss, float *dpred, const float *logits,
                                       const float *target, const float *pos_weight,
                                       const float *rw, double denom, int64_t N, int64_t D);
fnn_status fnn__cross_entropy_loss_w(double *loss, float *dpred, const float *logits,
                                     const int64_t *labels, const float *weight,
                                     const float *rw, double denom, int64_t N, int64_t C,
                                     int64_t ignore_index, int64_t *bad_index);

/* ------------------------------------------------- fused GEMM epilogues */
/* An activation a linear layer's forward may apply in its GEMM write-out
   (dense.c, model.c): the ones whose backward can run from their output. */
enum { FNN_ACT_NONE = 0, FNN_ACT_RELU = 1, FNN_ACT_TANH = 2, FNN_ACT_SIGMOID = 3 };

/* A GEMM epilogue: applied once to each finished block of C, rows [0, m)
   and columns [j0, j0 + n) of C, where c points at (0, j0) (ldc: C's row
   stride); ctx is the caller's. Elementwise, so where the blocks fall never
   changes the result. */
typedef void (*fnn__gemm_epi_fn)(float *c, int64_t ldc, int64_t m, int64_t n, int64_t j0,
                                 const void *ctx);

/* fnn_sgemm, then epi on every element of C while its block is still in
   cache (gemm.c); epi NULL: exactly fnn_sgemm. */
fnn_status fnn__sgemm_epi(int transA, int transB, int64_t M, int64_t N, int64_t K,
                          float alpha, const float *A, int64_t lda, const float *B,
                          int64_t ldb, float beta, float *C, int64_t ldc,
                          fnn__gemm_epi_fn epi, const void *ctx);

/* y (N, OUT) = act(x (N, IN) . w (IN, OUT) + b) in one pass over y
   (dense.c); bitwise fnn_dense_forward followed by fnn_<act>_forward. */
fnn_status fnn__dense_forward_act(float *y, const float *x, const float *w, const float *b,
                                  int64_t N, int64_t IN, int64_t OUT, int act);

/* y (N, OUT) = act(y) in place, act FNN_ACT_RELU..SIGMOID (dense.c): the
   activation of a fused linear whose product came from elsewhere (sparse.c). */
void fnn__act_inplace(float *y, int64_t N, int64_t OUT, int act);

/* dz (N, OUT) = dy * act'(y) (written; dz, dy, y distinct) and db (OUT) +=
   its column sums (= when !add), in one pass (dense.c); bitwise fnn_<act>_backward then
   the bias gradient of fnn_dense_backward. act: FNN_ACT_RELU..SIGMOID. */
fnn_status fnn__act_backward_bias(float *dz, float *db, const float *dy, const float *y,
                                  int64_t N, int64_t OUT, int act, int add);

/* fnn_dense_backward with dw and db ACCUMULATED (add) or OVERWRITTEN (!add,
   equal to accumulating into zeros but for the sign of a zero sum): the
   model's step writes each linear's gradients without zeroing them first. */
fnn_status fnn__dense_backward_to(float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, int64_t N, int64_t IN,
                                  int64_t OUT, int add);

/* fnn_max_pool2d_backward; with relu, also the backward of a ReLU whose
   output x is: dx = (pool's gradient) where x > 0, else 0, bitwise
   fnn_relu_backward over the pool's dx (pool.c; the model's step fuses a
   relu -> max_pool2d pair with it). */
fnn_status fnn__max_pool2d_backward_relu(float *dx, const float *dy, const float *x,
                                         const float *y, int64_t NC, int64_t H, int64_t W,
                                         const int64_t *kernel, const int64_t *stride,
                                         const int64_t *padding, int32_t flags, int relu);

#endif /* FNN_INTERNAL_H */
