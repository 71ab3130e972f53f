/*
 * vmath.h -- expf and tanhf written so that gcc vectorises the loops that
 * call them (libm's are opaque calls, one element at a time).
 *
 * Branch-free: clamps and selects only, no -ffast-math. Accuracy against
 * float64 on every 61st float32 of both signs (70 million inputs), largest
 * error: fnn__expf 1.17 ulp, fnn__tanhf 1.29, fnn__sigmoidf 2.33.
 * tests/test_activations.py asserts tanh <= 1.5 and sigmoid <= 2.5 ulp on
 * the vectorised kernels over every 2039th float; fnn__expf is only called
 * with arguments <= 0 (sigmoid, GELU, softmax), so sigmoid covers it.
 * NaN propagates; exp(+inf) = +inf, exp(-inf) = 0; tanh(+-inf) = +-1.
 *
 * expf: e^x = 2^k e^r with k = round(x / ln 2) and r = x - k ln 2 (ln 2
 * split in two parts, Cody & Waite), |r| <= ln2 / 2; e^r by its degree-7
 * Taylor polynomial (truncation < 6e-9 relative); 2^k applied as two
 * exact power-of-two factors so subnormal results round once.
 * tanhf: |x| < 0.625: x p(x^2) with p a degree-6 least-squares fit on
 * Chebyshev nodes (error 1.5e-10 before float rounding); otherwise
 * sign(x) (1 - 2 / (e^{2|x|} + 1)), which loses under one bit there, with
 * an exp reduced to what that range needs (about 35 vector operations an
 * element instead of 50: tanh was 30% of a 2-16-16-1 training step).
 */
#ifndef FNN_VMATH_H
#define FNN_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float fnn__bits_to_float(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline float fnn__expf(float x) {
    const float hi = 88.72283905f;   /* above: +inf */
    const float lo = -103.9720840f;  /* below: 0 */
    float xs = x == x ? x : 0.0f;   /* NaN handled at the end */
    xs = xs > hi ? hi : xs;
    xs = xs < lo ? lo : xs;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float kf = (xs * 1.44269504f + shifter) - shifter;
    float r = xs - kf * 0.693145752f;  /* ln2 high part: 0x3f317200, exact products */
    r = r - kf * 1.42860677e-06f;      /* ln2 - high part */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t k = (int32_t)kf;           /* in [-150, 128] */
    int32_t k1 = k / 2, k2 = k - k1;   /* each in [-75, 64]: normal powers of two */
    float y = p * fnn__bits_to_float((k1 + 127) << 23) * fnn__bits_to_float((k2 + 127) << 23);
    y = x > hi ? INFINITY : y;
    y = x < lo ? 0.0f : y;
    return x == x ? y : x;
}

static inline int32_t fnn__float_to_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

static inline float fnn__tanhf(float x) {
    float ax = fabsf(x), u = x * x;
    float p = 0.0021303086541593075f;
    p = p * u - 0.008161230944097042f;
    p = p * u + 0.021692754700779915f;
    p = p * u - 0.05394488945603371f;
    p = p * u + 0.13333185017108917f;
    p = p * u - 0.333333283662796f;
    p = p * u + 1.0f;
    float small = x * p;
    /* |x| >= 0.625: e = e^z, z = 2|x| in [1.25, 19], as fnn__expf computes
       it (same k, r and polynomial) but with none of its range handling:
       z > 19 (|x| > 9.5, where tanh is 1 in float) is clamped to 19, a NaN
       stays NaN through every step, and 2^k (k in [1, 28]) is one exact
       factor built from the bits of the rounding sum t (no float-to-int
       conversion, so a NaN is never converted). Bitwise the value
       1 - 2 / (fnn__expf(2|x|) + 1) had. */
    const float shifter = 12582912.0f;
    float z = ax > 9.5f ? 19.0f : 2.0f * ax;
    float t = z * 1.44269504f + shifter;
    float kf = t - shifter;
    float r = z - kf * 0.693145752f;
    r = r - kf * 1.42860677e-06f;
    float q = 1.0f / 5040.0f;
    q = q * r + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    q = q * r + 1.0f;
    q = q * r + 1.0f;
    int32_t k = fnn__float_to_bits(t) - fnn__float_to_bits(shifter);
    float e = q * fnn__bits_to_float((int32_t)((uint32_t)(k + 127) << 23));
    float big = copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return ax < 0.625f ? small : big;
}

/* The logistic function without overflow: e = e^-|z| in (0, 1]. */
static inline float fnn__sigmoidf(float z) {
    float e = fnn__expf(-fabsf(z));
    return z >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

/* ReLU as the kernels compute it: NaN stays NaN. */
static inline float fnn__reluf(float x) { return x < 0.0f ? 0.0f : x; }

#endif /* FNN_VMATH_H */
