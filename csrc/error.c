/*
 * error.c -- status strings, the per-thread last-error message, the version.
 *
 * A failing call returns an fnn_status; where it knows more (which node,
 * which shape, which byte of a file) it also writes an English message with
 * fnn__error() into a thread-local buffer that fnn_last_error() returns, so
 * concurrent calls in different threads never see each other's messages.
 */
#include <stdarg.h>
#include <stdio.h>
#include "fnn_internal.h"

#if defined(_MSC_VER)
#define FNN_THREAD_LOCAL __declspec(thread)
#elif defined(__GNUC__) || defined(__clang__)
#define FNN_THREAD_LOCAL __thread
#else
#define FNN_THREAD_LOCAL     /* no thread-local storage: one shared buffer */
#endif

static FNN_THREAD_LOCAL char last_error[512];

const char *fnn_status_string(fnn_status s) {
    switch (s) {
    case FNN_OK: return "ok";
    case FNN_ERR_SIZE: return "invalid size (negative, overflowing, or leading dimension too small)";
    case FNN_ERR_LABEL: return "class label out of range";
    case FNN_ERR_NOMEM: return "out of memory";
    case FNN_ERR_ARG: return "invalid argument";
    case FNN_ERR_STATE: return "the model lacks what this call needs";
    case FNN_ERR_IO: return "input/output error";
    case FNN_ERR_FORMAT: return "invalid model file";
    }
    return "unknown status";
}

const char *fnn_last_error(void) { return last_error; }

const char *fnn_version(void) { return FASTNN_VERSION; }

void fnn__clear_error(void) { last_error[0] = '\0'; }

fnn_status fnn__error(fnn_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}
