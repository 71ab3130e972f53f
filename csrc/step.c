/*
 * step.c -- a Sequential of built-in layers run as a plan: the forward pass,
 * and a whole training step (forward, loss, backward, optimizer update) in
 * ONE call with no allocation.
 *
 * The plan is composed from the same public kernels the layer-by-layer path
 * calls (dense, activations, dropout, losses, optimizers), in the same order
 * and with the same arguments, so both paths give bitwise-identical results
 * at a fixed thread count.
 *
 * Workspace for a batch of N rows (fnn_plan_workspace):
 *   act[l]  (N, out_l) for every layer l: outputs kept for backward
 *   g0, g1  (N, W) each, W = widest layer: gradients, ping-pong
 * Size letters: N batch rows, L layers, P parameters, W widest layer.
 */
#include <string.h>
#include "fnn_internal.h"

/* Check the plan and compute the widest layer (*W) and the sum of outputs (*S). */
static fnn_status plan_check(const fnn_layer *layers, int64_t L, int64_t P,
                             int64_t *W, int64_t *S) {
    if (!layers || L < 1) return FNN_ERR_ARG;
    int64_t w = 0, s = 0;
    for (int64_t l = 0; l < L; l++) {
        const fnn_layer *ly = &layers[l];
        if (ly->in < 1 || ly->out < 1) return FNN_ERR_SIZE;
        if (l > 0 && ly->in != layers[l - 1].out) return FNN_ERR_SIZE;
        if (ly->op == FNN_OP_DENSE) {
            int64_t nw;
            if (fnn__mul_overflow(ly->in, ly->out, &nw)) return FNN_ERR_SIZE;
            if (P >= 0 && (ly->w_off < 0 || ly->w_off > P - nw)) return FNN_ERR_SIZE;
            if (ly->has_bias && P >= 0 && (ly->b_off < 0 || ly->b_off > P - ly->out))
                return FNN_ERR_SIZE;
        } else if (ly->op >= FNN_OP_RELU && ly->op <= FNN_OP_DROPOUT) {
            if (ly->in != ly->out) return FNN_ERR_SIZE;
            if (ly->op == FNN_OP_DROPOUT && !(ly->param >= 0.0f && ly->param < 1.0f))
                return FNN_ERR_ARG;
        } else {
            return FNN_ERR_ARG;
        }
        if (ly->in > w) w = ly->in;
        if (ly->out > w) w = ly->out;
        if (s > INT64_MAX - ly->out) return FNN_ERR_SIZE;
        s += ly->out;
    }
    *W = w;
    *S = s;
    return FNN_OK;
}

fnn_status fnn_plan_workspace(int64_t *size, const fnn_layer *layers, int64_t L, int64_t N) {
    int64_t W, S, a, b;
    fnn_status st = plan_check(layers, L, -1, &W, &S);
    if (st != FNN_OK) return st;
    if (N < 0 || fnn__mul_overflow(N, S, &a) || fnn__mul_overflow(N, 2 * W, &b) ||
        a > INT64_MAX - b)
        return FNN_ERR_SIZE;
    *size = a + b;
    return FNN_OK;
}

/* y = layer l applied to x (N rows). training: dropout active with `key`. */
static fnn_status layer_forward(const fnn_layer *ly, float *y, const float *x,
                                const float *params, int64_t N, int training,
                                uint64_t key) {
    const int64_t n = N * ly->in;
    switch (ly->op) {
    case FNN_OP_DENSE:
        return fnn_dense_forward(y, x, params + ly->w_off,
                                 ly->has_bias ? params + ly->b_off : NULL, N, ly->in, ly->out);
    case FNN_OP_RELU: return fnn_relu_forward(y, x, n);
    case FNN_OP_LEAKY_RELU: return fnn_leaky_relu_forward(y, x, n, ly->param);
    case FNN_OP_SIGMOID: return fnn_sigmoid_forward(y, x, n);
    case FNN_OP_TANH: return fnn_tanh_forward(y, x, n);
    case FNN_OP_GELU: return fnn_gelu_forward(y, x, n);
    case FNN_OP_SOFTMAX: return fnn_softmax_forward(y, x, N, ly->in);
    case FNN_OP_DROPOUT:
        if (training && ly->param > 0.0f) return fnn_dropout_forward(y, x, n, ly->param, key);
        if (n > 0) memcpy(y, x, (size_t)n * sizeof(float));
        return FNN_OK;
    }
    return FNN_ERR_ARG;
}

/* dx = gradient through layer l (dx NULL: input gradient not needed);
   dense parameter gradients accumulate into grads. */
static fnn_status layer_backward(const fnn_layer *ly, float *dx, float *grads,
                                 const float *dy, const float *x, const float *y,
                                 const float *params, int64_t N, uint64_t key) {
    const int64_t n = N * ly->in;
    if (ly->op == FNN_OP_DENSE)
        return fnn_dense_backward(dx, grads + ly->w_off, ly->has_bias ? grads + ly->b_off : NULL,
                                  dy, x, params + ly->w_off, N, ly->in, ly->out);
    if (!dx) return FNN_OK;
    switch (ly->op) {
    case FNN_OP_RELU: return fnn_relu_backward(dx, dy, x, y, n);
    case FNN_OP_LEAKY_RELU: return fnn_leaky_relu_backward(dx, dy, x, y, n, ly->param);
    case FNN_OP_SIGMOID: return fnn_sigmoid_backward(dx, dy, x, y, n);
    case FNN_OP_TANH: return fnn_tanh_backward(dx, dy, x, y, n);
    case FNN_OP_GELU: return fnn_gelu_backward(dx, dy, x, y, n);
    case FNN_OP_SOFTMAX: return fnn_softmax_backward(dx, dy, x, y, N, ly->in);
    case FNN_OP_DROPOUT:
        if (ly->param > 0.0f) return fnn_dropout_backward(dx, dy, n, ly->param, key);
        memcpy(dx, dy, (size_t)n * sizeof(float));
        return FNN_OK;
    }
    return FNN_ERR_ARG;
}

fnn_status fnn_forward(float *out, const fnn_layer *layers, int64_t L,
                       const float *params, int64_t P, const float *x, int64_t N,
                       float *work, int64_t work_size) {
    int64_t W, S, need;
    fnn_status st = plan_check(layers, L, P, &W, &S);
    if (st != FNN_OK) return st;
    if ((st = fnn_plan_workspace(&need, layers, L, N)) != FNN_OK) return st;
    if (work_size < need || !out || (N > 0 && (!x || !work || !params))) return FNN_ERR_ARG;
    if (N == 0) return FNN_OK;
    float *buf[2] = {work, work + N * W};
    const float *cur = x;
    for (int64_t l = 0; l < L; l++) {
        float *y = (l == L - 1) ? out : buf[l & 1];
        if ((st = layer_forward(&layers[l], y, cur, params, N, 0, 0)) != FNN_OK) return st;
        cur = y;
    }
    return FNN_OK;
}

static fnn_status loss_eval(double *loss, float *dpred, const fnn_loss *ld, const float *pred,
                            const float *tf, const int64_t *ti, int64_t N, int64_t D,
                            int64_t *bad) {
    switch (ld->kind) {
    case FNN_LOSS_MSE: return fnn_mse_loss(loss, dpred, pred, tf, N, D);
    case FNN_LOSS_MAE: return fnn_mae_loss(loss, dpred, pred, tf, N, D);
    case FNN_LOSS_HUBER: return fnn_huber_loss(loss, dpred, pred, tf, N, D, ld->delta);
    case FNN_LOSS_BCE_WITH_LOGITS:
        return fnn_bce_with_logits_loss(loss, dpred, pred, tf, ld->weight, N, D);
    case FNN_LOSS_CROSS_ENTROPY:
        return fnn_cross_entropy_loss(loss, dpred, pred, ti, ld->weight, N, D,
                                      ld->ignore_index, bad);
    }
    return FNN_ERR_ARG;
}

fnn_status fnn_optim_step(const fnn_optim *o, float *params, float *grads,
                          int64_t P, int64_t step) {
    if (!o) return FNN_ERR_ARG;
    if (o->max_grad_norm > 0.0f) {
        fnn_status st = fnn_clip_grad_norm(grads, P, o->max_grad_norm, NULL);
        if (st != FNN_OK) return st;
    }
    switch (o->kind) {
    case FNN_OPTIM_SGD:
        return fnn_sgd_update(params, o->state0, grads, P, step, o->lr, o->momentum,
                              o->dampening, o->weight_decay, o->flag);
    case FNN_OPTIM_ADAM:
        return fnn_adam_update(params, o->state0, o->state1, grads, P, step, o->lr, o->beta1,
                               o->beta2, o->eps, o->weight_decay, o->flag);
    case FNN_OPTIM_RMSPROP:
        return fnn_rmsprop_update(params, o->state0, o->state1, grads, P, step, o->lr,
                                  o->alpha, o->eps, o->weight_decay, o->momentum);
    case FNN_OPTIM_ADAGRAD:
        return fnn_adagrad_update(params, o->state0, grads, P, step, o->lr, o->lr_decay,
                                  o->eps, o->weight_decay);
    }
    return FNN_ERR_ARG;
}

fnn_status fnn_train_step(double *loss, const fnn_layer *layers, int64_t L,
                          float *params, float *grads, int64_t P,
                          const float *x, const float *target_f, const int64_t *target_i,
                          int64_t N, const fnn_loss *lossd, const fnn_optim *opt,
                          int64_t step, uint64_t seed, int64_t counter,
                          float *work, int64_t work_size, int64_t *bad_index) {
    int64_t W, S, need;
    fnn_status st = plan_check(layers, L, P, &W, &S);
    if (st != FNN_OK) return st;
    if ((st = fnn_plan_workspace(&need, layers, L, N)) != FNN_OK) return st;
    if (!loss || !lossd || !opt || !params || !grads || !work || work_size < need || N < 1 ||
        !x || step < 1)
        return FNN_ERR_ARG;
    if (lossd->kind == FNN_LOSS_CROSS_ENTROPY ? !target_i : !target_f) return FNN_ERR_ARG;

    /* forward, keeping every layer's output */
    float *act = work, *g[2] = {work + N * S, work + N * S + N * W};
    const float *cur = x;
    float *y = act;
    for (int64_t l = 0; l < L; l++) {
        uint64_t key = fnn_dropout_key(seed, l, counter);
        if ((st = layer_forward(&layers[l], y, cur, params, N, 1, key)) != FNN_OK) return st;
        cur = y;
        y += N * layers[l].out;
    }
    /* loss and d(loss)/d(output) into g[0]; labels are checked before any write */
    const int64_t D = layers[L - 1].out;
    if ((st = loss_eval(loss, g[0], lossd, cur, target_f, target_i, N, D, bad_index)) != FNN_OK)
        return st;
    /* backward: parameter gradients accumulate into the zeroed flat buffer */
    memset(grads, 0, (size_t)P * sizeof(float));
    int k = 0;
    float *ylast = act + N * S; /* one past the last output */
    for (int64_t l = L - 1; l >= 0; l--) {
        const fnn_layer *ly = &layers[l];
        float *yl = ylast - N * ly->out;
        const float *xl = (l == 0) ? x : yl - N * ly->in;
        uint64_t key = fnn_dropout_key(seed, l, counter);
        float *dx = (l == 0) ? NULL : g[k ^ 1];
        if ((st = layer_backward(ly, dx, grads, g[k], xl, yl, params, N, key)) != FNN_OK)
            return st;
        k ^= 1;
        ylast = yl;
    }
    return fnn_optim_step(opt, params, grads, P, step);
}
