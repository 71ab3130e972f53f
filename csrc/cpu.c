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
 * The cache blocks (fnn__sgemm_blocks) are the kernel's kc, mc and nc --
 * tuned on cores with a 1-2 MiB L2, where mc from 96 to 480 measured alike
 * -- lowered where this CPU's caches are smaller: mc so that the packed A
 * block (mc x kc floats) takes at most half the L2, nc so that the packed B
 * block (kc x nc) takes at most half the L3, from the sizes the OS reports
 * (sysconf, else Linux sysfs; unknown: the kernel's own blocks).
 * FASTNN_GEMM_BLOCKS=mc,kc,nc replaces them (rounded to the kernel's tile),
 * for tuning and for the tests that run every blocking loop on small shapes.
 *
 * Thread safety: the choices are pure functions of the CPU and environment,
 * so racing first calls compute the same values; each is published with an
 * atomic store (GCC/Clang builtins) and read with an atomic load.
 */
#if !defined(_GNU_SOURCE) && defined(__linux__)
#define _GNU_SOURCE 1   /* sysconf's _SC_LEVEL2_CACHE_SIZE (glibc) */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
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

/* ------------------------------------------------------------ cache blocks */

/* Bytes of the level-`level` (2 or 3) data cache of CPU 0; 0 if unknown. */
static int64_t cache_bytes(int level) {
#if defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
    long v = sysconf(level == 2 ? _SC_LEVEL2_CACHE_SIZE : _SC_LEVEL3_CACHE_SIZE);
    if (v > 0) return (int64_t)v;
#endif
#ifdef __linux__
    char path[64];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", level);
    FILE *f = fopen(path, "r");
    if (f) {
        long long n = 0;
        char unit = 0;
        int got = fscanf(f, "%lld%c", &n, &unit);
        fclose(f);
        if (got >= 1 && n > 0)
            return (int64_t)n * (unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : 1);
    }
#endif
    (void)level;
    return 0;
}

static int64_t round_down_min(int64_t x, int64_t m) { return x < m ? m : x / m * m; }

fnn__gemm_blocks fnn__sgemm_blocks_for(const fnn__sgemm_kernel *k, const char *env,
                                       int64_t l2, int64_t l3) {
    fnn__gemm_blocks b = {k->mc, k->kc, k->nc};
    long long mc, kc, nc;
    if (env && sscanf(env, "%lld,%lld,%lld", &mc, &kc, &nc) == 3 && mc > 0 && kc > 0 &&
        nc > 0 && mc <= (1 << 20) && kc <= (1 << 20) && nc <= (1 << 20)) {
        b.mc = round_down_min(mc, k->mr);
        b.kc = kc;
        b.nc = round_down_min(nc, k->nr);
        return b;
    }
    const int64_t panel = b.kc * (int64_t)sizeof(float);   /* bytes per row of a block */
    if (l2 > 0 && b.mc * panel > l2 / 2) b.mc = round_down_min(l2 / 2 / panel, k->mr);
    if (l3 > 0 && b.nc * panel > l3 / 2) b.nc = round_down_min(l3 / 2 / panel, k->nr);
    return b;
}

/* mc, kc, nc (each < 2^21) packed in one word, so one atomic publishes all. */
static int64_t fnn_blocks_word = 0;

fnn__gemm_blocks fnn__sgemm_blocks(void) {
    int64_t w;
#if defined(__GNUC__) || defined(__clang__)
    w = __atomic_load_n(&fnn_blocks_word, __ATOMIC_ACQUIRE);
#else
    w = fnn_blocks_word;
#endif
    if (FNN_UNLIKELY(w == 0)) {
        fnn__gemm_blocks b = fnn__sgemm_blocks_for(fnn__sgemm_kernel_get(),
                                                   getenv("FASTNN_GEMM_BLOCKS"),
                                                   cache_bytes(2), cache_bytes(3));
        w = b.mc | (b.kc << 21) | (b.nc << 42);
#if defined(__GNUC__) || defined(__clang__)
        __atomic_store_n(&fnn_blocks_word, w, __ATOMIC_RELEASE);
#else
        fnn_blocks_word = w;
#endif
    }
    const int64_t mask = ((int64_t)1 << 21) - 1;
    fnn__gemm_blocks b = {w & mask, (w >> 21) & mask, (w >> 42) & mask};
    return b;
}
