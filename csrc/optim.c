/*
 * optim.c -- in-place optimizer updates over flat buffers of P floats:
 * SGD (momentum, dampening, Nesterov), Adam / AdamW, RMSprop, AdaGrad.
 *
 * Update rules follow PyTorch's torch.optim (the pseudo-code in each class's
 * documentation, https://pytorch.org/docs/stable/optim.html) operation by
 * operation, in float32 like PyTorch's CPU kernels; scalar factors that
 * depend on `step` (Adam's bias corrections, AdaGrad's decayed rate) are
 * computed in double and rounded once. `step` is 1-based.
 *
 * lr == 0: the state buffers are updated as usual but params are not
 * written, so they stay bitwise unchanged (p - 0 * g could turn -0 into +0,
 * or NaN in, with an infinite g).
 * Elementwise, so the result is bitwise identical for every thread count.
 */
#include <math.h>
#include "fnn_internal.h"

/* Shared argument checks: sizes, pointers (NULL allowed when P == 0), step. */
static fnn_status check_flat(int64_t P, int64_t step, const void *params,
                             const void *grads, const void *state) {
    if (P < 0) return FNN_ERR_SIZE;
    if (step < 1) return FNN_ERR_ARG;
    if (P > 0 && (!params || !grads || !state)) return FNN_ERR_ARG;
    return FNN_OK;
}

/* params, buf, grads (P). buf may be NULL when momentum == 0.
   g = grad + wd p; buf = g (step 1) or momentum buf + (1 - dampening) g;
   g = nesterov ? g + momentum buf : buf; p -= lr g. */
fnn_status fnn_sgd_update(float *params, float *buf, const float *grads, int64_t P,
                          int64_t step, float lr, float momentum, float dampening,
                          float weight_decay, int nesterov) {
    int use_mom = momentum != 0.0f;
    fnn_status s = check_flat(P, step, params, grads, use_mom ? (const void *)buf : params);
    if (s != FNN_OK) return s;
    float *FNN_RESTRICT p = params;
    float *FNN_RESTRICT b = buf;
    const float *FNN_RESTRICT gr = grads;
    const int first = step == 1, write_p = lr != 0.0f;
    const float damp = 1.0f - dampening;
    int nt = fnn__threads_for(5.0 * (double)P);
    int64_t i;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (i = 0; i < P; i++) {
        float g = gr[i];
        if (weight_decay != 0.0f) g += weight_decay * p[i];
        if (use_mom) {
            b[i] = first ? g : momentum * b[i] + damp * g;
            g = nesterov ? g + momentum * b[i] : b[i];
        }
        if (write_p) p[i] -= lr * g;
    }
    return FNN_OK;
}

/* params, m, v, grads (P).
   decoupled (AdamW): p *= 1 - lr wd; else g += wd p;
   m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
   p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
fnn_status fnn_adam_update(float *params, float *m, float *v, const float *grads,
                           int64_t P, int64_t step, float lr, float beta1, float beta2,
                           float eps, float weight_decay, int decoupled) {
    fnn_status s = check_flat(P, step, params, grads, m);
    if (s != FNN_OK) return s;
    if (P > 0 && !v) return FNN_ERR_ARG;
    float *FNN_RESTRICT p = params;
    float *FNN_RESTRICT mm = m;
    float *FNN_RESTRICT vv = v;
    const float *FNN_RESTRICT gr = grads;
    const double t = (double)step;
    const float step_size = (float)((double)lr / (1.0 - pow((double)beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow((double)beta2, t));
    const float decay = (float)(1.0 - (double)lr * (double)weight_decay);
    const float l2 = decoupled ? 0.0f : weight_decay;
    const int decay_p = decoupled && weight_decay != 0.0f, write_p = lr != 0.0f;
    const float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
    int nt = fnn__threads_for(12.0 * (double)P);
    int64_t i;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (i = 0; i < P; i++) {
        float g = gr[i];
        if (l2 != 0.0f) g += l2 * p[i];
        mm[i] = beta1 * mm[i] + c1 * g;
        vv[i] = beta2 * vv[i] + c2 * g * g;
        if (write_p) {
            float pi = decay_p ? p[i] * decay : p[i];
            float denom = sqrtf(vv[i]) / bc2_sqrt + eps;
            p[i] = pi - step_size * mm[i] / denom;
        }
    }
    return FNN_OK;
}

/* params, sq, buf, grads (P). buf may be NULL when momentum == 0.
   g += wd p; sq = alpha sq + (1 - alpha) g^2; a = sqrt(sq) + eps;
   momentum > 0: buf = momentum buf + g / a, p -= lr buf; else p -= lr g / a. */
fnn_status fnn_rmsprop_update(float *params, float *sq, float *buf, const float *grads,
                              int64_t P, int64_t step, float lr, float alpha, float eps,
                              float weight_decay, float momentum) {
    fnn_status s = check_flat(P, step, params, grads, sq);
    if (s != FNN_OK) return s;
    const int use_mom = momentum > 0.0f, write_p = lr != 0.0f;
    if (P > 0 && use_mom && !buf) return FNN_ERR_ARG;
    float *FNN_RESTRICT p = params;
    float *FNN_RESTRICT q = sq;
    float *FNN_RESTRICT b = buf;
    const float *FNN_RESTRICT gr = grads;
    const float c = 1.0f - alpha;
    int nt = fnn__threads_for(10.0 * (double)P);
    int64_t i;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (i = 0; i < P; i++) {
        float g = gr[i];
        if (weight_decay != 0.0f) g += weight_decay * p[i];
        q[i] = alpha * q[i] + c * g * g;
        float avg = sqrtf(q[i]) + eps;
        float step_i;
        if (use_mom) {
            b[i] = momentum * b[i] + g / avg;
            step_i = lr * b[i];
        } else {
            step_i = lr * g / avg;
        }
        if (write_p) p[i] -= step_i;
    }
    return FNN_OK;
}

/* params, sum, grads (P).
   g += wd p; clr = lr / (1 + (t - 1) lr_decay); sum += g^2;
   p -= clr g / (sqrt(sum) + eps). */
fnn_status fnn_adagrad_update(float *params, float *sum, const float *grads, int64_t P,
                              int64_t step, float lr, float lr_decay, float eps,
                              float weight_decay) {
    fnn_status s = check_flat(P, step, params, grads, sum);
    if (s != FNN_OK) return s;
    float *FNN_RESTRICT p = params;
    float *FNN_RESTRICT acc = sum;
    const float *FNN_RESTRICT gr = grads;
    const float clr = (float)((double)lr / (1.0 + (double)(step - 1) * (double)lr_decay));
    const int write_p = lr != 0.0f;
    int nt = fnn__threads_for(8.0 * (double)P);
    int64_t i;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (i = 0; i < P; i++) {
        float g = gr[i];
        if (weight_decay != 0.0f) g += weight_decay * p[i];
        acc[i] += g * g;
        if (write_p) p[i] -= clr * g / (sqrtf(acc[i]) + eps);
    }
    return FNN_OK;
}
