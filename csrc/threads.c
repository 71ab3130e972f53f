/*
 * threads.c -- thread count and fork safety for the C core.
 *
 * The count set by fnn_set_num_threads() is process-wide (like OpenMP's own
 * ICV it is a setting, not per-model state); 0 means "OpenMP's default",
 * which honours OMP_NUM_THREADS. A pthread_atfork child handler marks a
 * forked child, which then runs every kernel on one thread: libgomp's pool
 * hangs in a child forked after the parent ran a parallel region
 * (GCC PR 60035, OpenBLAS #294; tests/test_threads.py forks after a parallel
 * region).
 */
#include "fnn_internal.h"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FNN_HAVE_ATFORK 1
#endif

static volatile int fnn_threads_requested = 0; /* 0: OpenMP default */
static volatile int fnn_in_forked_child = 0;

#ifdef FNN_HAVE_ATFORK
static void fnn__atfork_child(void) { fnn_in_forked_child = 1; }
static pthread_once_t fnn_atfork_once = PTHREAD_ONCE_INIT;
static void fnn__register_atfork(void) {
    pthread_atfork(NULL, NULL, fnn__atfork_child);
}
#define FNN_ENSURE_ATFORK() pthread_once(&fnn_atfork_once, fnn__register_atfork)
#else
#define FNN_ENSURE_ATFORK() ((void)0)
#endif

int fnn_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fnn_get_num_threads(void) {
    FNN_ENSURE_ATFORK();
#ifdef _OPENMP
    if (fnn_in_forked_child) return 1;
    int n = fnn_threads_requested;
    return n > 0 ? n : omp_get_max_threads();
#else
    return 1;
#endif
}

fnn_status fnn_set_num_threads(int n) {
    FNN_ENSURE_ATFORK();
    if (n < 0) return FNN_ERR_ARG;
    fnn_threads_requested = n;
    return FNN_OK;
}

int fnn__threads_for(double work) {
#ifdef _OPENMP
    FNN_ENSURE_ATFORK();
    if (work < FNN_PAR_MIN_FLOPS || fnn_in_forked_child || omp_in_parallel())
        return 1;
    return fnn_get_num_threads();
#else
    (void)work;
    return 1;
#endif
}
