/*
 * cpu.c -- ISA detection and the choice of SGEMM micro-kernel.
 *
 * The kernel is chosen once per process, at the first fnn_sgemm call:
 * the portable kernel first (it always works), then overridden by the best
 * kernel the CPU and OS support (GCC/Clang __builtin_cpu_supports, which
 * checks OSXSAVE and XCR0 before it reports AVX/AVX-512 -- gcc >= 8,
 * PR 85100). The environment variable FASTNN_ISA=generic|avx2|avx512
 * caps the choice (so tests can run every path on one machine); asking
 * for an ISA the CPU lacks, or for an unknown name, gives the best one
 * available instead -- never a crash.
 *
 * Thread safety: the choice is a pure function of the CPU and environment,
 * so racing first calls compute the same pointer; it is published with an
 * atomic store (GCC/Clang builtins) and read with an atomic load.
 */
#include <stdlib.h>
#include <string.h>
#include "gemm_internal.h"

static const fnn__sgemm_kernel *fnn_sgemm_chosen = NULL;

#ifdef FNN_GEMM_X86
static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma");
}
static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

static const fnn__sgemm_kernel *choose_kernel(void) {
    const char *want = getenv("FASTNN_ISA");
    int cap = 2; /* 0 generic, 1 avx2, 2 avx512 */
    if (want && strcmp(want, "generic") == 0) cap = 0;
    else if (want && strcmp(want, "avx2") == 0) cap = 1;
    const fnn__sgemm_kernel *k = &fnn__sgemm_kernel_generic;
#ifdef FNN_GEMM_X86
    if (cap >= 2 && cpu_has_avx512()) k = &fnn__sgemm_kernel_avx512;
    else if (cap >= 1 && cpu_has_avx2()) k = &fnn__sgemm_kernel_avx2;
#else
    (void)cap;
#endif
    return k;
}

const fnn__sgemm_kernel *fnn__sgemm_kernel_get(void) {
#if defined(__GNUC__) || defined(__clang__)
    const fnn__sgemm_kernel *k = __atomic_load_n(&fnn_sgemm_chosen, __ATOMIC_ACQUIRE);
    if (FNN_LIKELY(k != NULL)) return k;
    k = choose_kernel();
    __atomic_store_n(&fnn_sgemm_chosen, k, __ATOMIC_RELEASE);
    return k;
#else
    /* Other compilers: a benign race (every caller stores the same value). */
    if (!fnn_sgemm_chosen) fnn_sgemm_chosen = choose_kernel();
    return fnn_sgemm_chosen;
#endif
}
