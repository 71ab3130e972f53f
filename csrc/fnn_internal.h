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

/* Work below this many floating-point operations runs on one thread:
   an OpenMP fork/join costs ~1-100 us on these machines (notes/gemm.md). */
#define FNN_PAR_MIN_FLOPS 2.0e5

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

#endif /* FNN_INTERNAL_H */
