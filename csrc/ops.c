/*
 * ops.c -- the op table, the loss table and the optimizer table.
 *
 * One entry per op (see fnn_ops.h for what an entry holds). The kernels
 * themselves live in dense.c, activations.c, dropout.c, losses.c and
 * optim.c; an entry adapts them to the uniform signatures the model runs.
 *
 * Ops and what they read of fnn_attrs:
 *   linear      units (OUT >= 1), bias (0/1), init (fnn_init). Input 1-D
 *               (IN,). Parameters: weight (IN, OUT) then bias (OUT).
 *   relu, sigmoid, tanh, gelu   nothing; any shape, output = input shape.
 *   leaky_relu  slope (finite).
 *   softmax     axis: -1 or 1 (batch is axis 0): row-wise over a 1-D sample.
 *   dropout     p in [0, 1); identity in evaluation mode.
 *   max_pool2d, avg_pool2d   input (C, H, W); kernel (kh, kw) >= 1, stride
 *               >= 1, padding in [0, k / 2]; flags FNN_POOL_CEIL_MODE (and
 *               FNN_POOL_EXCLUDE_PAD for avg). Output (C, OH, OW) (pool.c).
 *   adaptive_avg_pool2d      input (C, H, W); kernel = the OUTPUT size
 *               (OH, OW) >= 1 ((1, 1): global average pooling).
 *   flatten     axis = start_dim in [1, ndim] (dim 0 is the batch): the
 *               per-sample dims from axis - 1 on become one; a copy.
 *   batch_norm  units = C (= dim[0] of a (C,), (C, L) or (C, H, W) input),
 *               bias = affine (0/1), eps > 0, momentum in [0, 1], flags
 *               FNN_NORM_NO_STATS (no buffers: batch statistics always),
 *               FNN_NORM_CUMULATIVE (momentum=None). Parameters: weight (C)
 *               then bias (C) when affine (start 1 and 0). Buffers:
 *               running_mean (C, start 0), running_var (C, start 1),
 *               num_batches_tracked (1, start 0; a float: exact to 2^24).
 *               Training mode normalizes with the batch statistics and
 *               updates the buffers in forward; evaluation mode uses them.
 *   layer_norm  units = D, the number of normalized elements = the product
 *               of the last `axis` per-sample dims (axis in [1, ndim]);
 *               bias = elementwise_affine (0/1), flags FNN_NORM_NO_BIAS,
 *               eps > 0. Parameters: weight (D) then bias (D). Scratch: 2
 *               floats (mean, rstd) per normalized row, kept for backward.
 *
 *   conv2d      input (C, H, W); units = O (out channels), kernel (kh, kw),
 *               stride, dilation >= 1, padding (top, left) >= 0, groups
 *               dividing C and O, bias (0/1); flags FNN_CONV_PAD_EXTRA_0 /
 *               _1: one more zero row at the bottom / column at the right
 *               (PyTorch's 'same' with an odd total). Parameters: weight
 *               (O, C/groups, kh, kw) then bias (O), PyTorch's layout and
 *               default init (conv_init_as). Output (O, OH, OW) (conv.c).
 *               Scratch: the im2col patches of each row, kept from forward
 *               for backward (as layer_norm's statistics).
 *   conv1d      input (C, L); the first element of kernel, stride, padding,
 *               dilation; FNN_CONV_PAD_EXTRA_0 pads one more at the end.
 *               Weight (O, C/groups, k). Output (O, OL).
 *
 * Initialisation (linear): w_i = (2 u_i - 1) a in double, rounded to float,
 * with u_i = (splitmix64(key + i) >> 11) 2^-53 and a = sqrt(6 / IN) (He)
 * or sqrt(6 / (IN + OUT)) (Xavier); biases 0. key comes from the model
 * seed and the node index (fnn_op_init), so a model is reproducible from
 * its seed and fastnn/reference/init.py draws the same numbers.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "fnn_ops.h"
#include "fnn_conv.h"

/* ------------------------------------------------------------ helpers */

int fnn__name_ok(const char *name) {
    return name && memchr(name, '\0', FNN_NAME_MAX) != NULL && name[0] != '\0';
}

int64_t fnn__shape_numel(const fnn_shape *s) {
    if (!s || s->ndim < 1 || s->ndim > FNN_MAX_DIMS) return -1;
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        if (s->dim[d] < 1 || fnn__mul_overflow(n, s->dim[d], &n)) return -1;
    return n;
}

const char *fnn__shape_str(const fnn_shape *s, char *buf, size_t size) {
    size_t k = 0;
    int nd = s ? s->ndim : 0;
    if (nd < 0 || nd > FNN_MAX_DIMS) nd = 0;
    k += (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < nd && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, d ? ", %lld" : "%lld", (long long)s->dim[d]);
    if (k < size) snprintf(buf + k, size - k, nd == 1 ? ",)" : ")");
    return buf;
}

/* An elementwise op's describe: same shape out, nothing else. */
static fnn_status same_shape(const fnn_attrs *a, const fnn_shape *in, fnn_node_info *info) {
    (void)a;
    info->out_shape = *in;
    return FNN_OK;
}

/* ------------------------------------------------------------- linear */

static fnn_status linear_describe(const fnn_attrs *a, const fnn_shape *in,
                                  fnn_node_info *info) {
    char s[96];
    if (in->ndim != 1)
        return fnn__error(FNN_ERR_ARG, "linear: input must be 1-D per sample (features), "
                          "got per-sample shape %s", fnn__shape_str(in, s, sizeof s));
    if (a->units < 1)
        return fnn__error(FNN_ERR_ARG, "linear: units must be >= 1, got %lld",
                          (long long)a->units);
    if (a->bias != 0 && a->bias != 1)
        return fnn__error(FNN_ERR_ARG, "linear: bias must be 0 or 1, got %d", a->bias);
    if (a->init < FNN_INIT_AUTO || a->init > FNN_INIT_XAVIER)
        return fnn__error(FNN_ERR_ARG, "linear: unknown init %d", a->init);
    int64_t nw;
    if (fnn__mul_overflow(in->dim[0], a->units, &nw) || nw > INT64_MAX - a->units)
        return fnn__error(FNN_ERR_SIZE, "linear: %lld x %lld weights overflow",
                          (long long)in->dim[0], (long long)a->units);
    memset(&info->out_shape, 0, sizeof info->out_shape);
    info->out_shape.ndim = 1;
    info->out_shape.dim[0] = a->units;
    info->num_params = nw + (a->bias ? a->units : 0);
    return FNN_OK;
}

static void linear_init(const fnn_attrs *a, const fnn_shape *in, int he, float *params,
                        float *buffers, uint64_t key) {
    (void)buffers;
    const int64_t IN = in->dim[0], OUT = a->units, nw = IN * OUT;
    int scheme = a->init == FNN_INIT_AUTO ? (he ? FNN_INIT_HE : FNN_INIT_XAVIER) : a->init;
    double bound = scheme == FNN_INIT_HE ? sqrt(6.0 / (double)IN)
                                         : sqrt(6.0 / (double)(IN + OUT));
    for (int64_t i = 0; i < nw; i++) {
        double u = (double)(fnn__splitmix64(key + (uint64_t)i) >> 11) * 0x1p-53;
        params[i] = (float)((2.0 * u - 1.0) * bound);
    }
    if (a->bias) memset(params + nw, 0, (size_t)OUT * sizeof(float));
}

static fnn_status linear_forward(const fnn_op_ctx *c, float *y, const float *x) {
    const float *w = c->params;
    return fnn_dense_forward(y, x, w, c->attrs->bias ? w + c->IN * c->OUT : NULL,
                             c->N, c->IN, c->OUT);
}

static fnn_status linear_backward(const fnn_op_ctx *c, float *dx, float *grads,
                                  const float *dy, const float *x, const float *y) {
    (void)y;
    return fnn__dense_backward_to(dx, grads, c->attrs->bias ? grads + c->IN * c->OUT : NULL,
                                  dy, x, c->params, c->N, c->IN, c->OUT, c->accumulate);
}

/* -------------------------------------------------------- activations */

/* forward/backward adapters of the elementwise kernels of activations.c */
#define ELEMENTWISE(op)                                                                 \
    static fnn_status op##_fwd(const fnn_op_ctx *c, float *y, const float *x) {        \
        return fnn_##op##_forward(y, x, c->N * c->IN);                                  \
    }                                                                                   \
    static fnn_status op##_bwd(const fnn_op_ctx *c, float *dx, float *grads,            \
                               const float *dy, const float *x, const float *y) {       \
        (void)grads;                                                                    \
        return dx ? fnn_##op##_backward(dx, dy, x, y, c->N * c->IN) : FNN_OK;           \
    }
ELEMENTWISE(relu)
ELEMENTWISE(sigmoid)
ELEMENTWISE(tanh)
ELEMENTWISE(gelu)

static fnn_status leaky_describe(const fnn_attrs *a, const fnn_shape *in,
                                 fnn_node_info *info) {
    if (!isfinite(a->slope))
        return fnn__error(FNN_ERR_ARG, "leaky_relu: slope must be finite, got %g",
                          (double)a->slope);
    return same_shape(a, in, info);
}

static fnn_status leaky_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    return fnn_leaky_relu_forward(y, x, c->N * c->IN, c->attrs->slope);
}

static fnn_status leaky_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                            const float *x, const float *y) {
    (void)grads;
    return dx ? fnn_leaky_relu_backward(dx, dy, x, y, c->N * c->IN, c->attrs->slope) : FNN_OK;
}

static fnn_status softmax_describe(const fnn_attrs *a, const fnn_shape *in,
                                   fnn_node_info *info) {
    char s[96];
    if (in->ndim != 1)
        return fnn__error(FNN_ERR_ARG, "softmax: the per-sample input must be 1-D (classes) "
                          "for now, got %s", fnn__shape_str(in, s, sizeof s));
    if (a->axis != -1 && a->axis != 1)
        return fnn__error(FNN_ERR_ARG, "softmax: only the last axis (-1 or 1) is supported, "
                          "got axis %lld", (long long)a->axis);
    return same_shape(a, in, info);
}

/* rows of the last dimension: (N * IN / C, C) */
static fnn_status softmax_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    int64_t C = c->in->dim[c->in->ndim - 1];
    return fnn_softmax_forward(y, x, c->N * (c->IN / C), C);
}

static fnn_status softmax_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                              const float *x, const float *y) {
    (void)grads;
    int64_t C = c->in->dim[c->in->ndim - 1];
    return dx ? fnn_softmax_backward(dx, dy, x, y, c->N * (c->IN / C), C) : FNN_OK;
}

/* ------------------------------------------------------------ dropout */

static fnn_status dropout_describe(const fnn_attrs *a, const fnn_shape *in,
                                   fnn_node_info *info) {
    if (!(a->p >= 0.0f && a->p < 1.0f))
        return fnn__error(FNN_ERR_ARG, "dropout: p must be in [0, 1), got %g", (double)a->p);
    return same_shape(a, in, info);
}

static fnn_status dropout_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    int64_t n = c->N * c->IN;
    if (c->training && c->attrs->p > 0.0f)
        return fnn_dropout_forward(y, x, n, c->attrs->p, c->key);
    if (n > 0 && y != x) memcpy(y, x, (size_t)n * sizeof(float));
    return FNN_OK;
}

static fnn_status dropout_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                              const float *x, const float *y) {
    (void)grads; (void)x; (void)y;
    int64_t n = c->N * c->IN;
    if (!dx) return FNN_OK;
    if (c->training && c->attrs->p > 0.0f)
        return fnn_dropout_backward(dx, dy, n, c->attrs->p, c->key);
    if (n > 0 && dx != dy) memcpy(dx, dy, (size_t)n * sizeof(float));
    return FNN_OK;
}

/* ------------------------------------------------------------ pooling */

static fnn_status pool_describe_as(const char *op, int32_t known, const fnn_attrs *a,
                                   const fnn_shape *in, fnn_node_info *info) {
    char s[96];
    if (in->ndim != 3)
        return fnn__error(FNN_ERR_ARG, "%s: input must be (C, H, W) per sample, got %s", op,
                          fnn__shape_str(in, s, sizeof s));
    if (a->flags & ~known)
        return fnn__error(FNN_ERR_ARG, "%s: unknown flags 0x%x", op, (unsigned)a->flags);
    int64_t o[2];
    for (int d = 0; d < 2; d++) {
        const int64_t I = in->dim[1 + d], k = a->kernel[d], st = a->stride[d], p = a->padding[d];
        if (k < 1 || st < 1 || p < 0)
            return fnn__error(FNN_ERR_ARG, "%s: kernel (%lld, %lld) and stride (%lld, %lld) "
                              "must be >= 1 and padding (%lld, %lld) >= 0", op,
                              (long long)a->kernel[0], (long long)a->kernel[1],
                              (long long)a->stride[0], (long long)a->stride[1],
                              (long long)a->padding[0], (long long)a->padding[1]);
        if (p > k / 2)
            return fnn__error(FNN_ERR_ARG, "%s: padding %lld must be at most half the kernel "
                              "size %lld", op, (long long)p, (long long)k);
        o[d] = fnn_pool_out_size(I, k, st, p, (a->flags & FNN_POOL_CEIL_MODE) != 0);
        if (o[d] < 1)
            return fnn__error(FNN_ERR_ARG, "%s: kernel (%lld, %lld) is larger than the padded "
                              "input %s with padding (%lld, %lld)", op,
                              (long long)a->kernel[0], (long long)a->kernel[1],
                              fnn__shape_str(in, s, sizeof s), (long long)a->padding[0],
                              (long long)a->padding[1]);
    }
    info->out_shape = *in;
    info->out_shape.dim[1] = o[0];
    info->out_shape.dim[2] = o[1];
    return FNN_OK;
}

static fnn_status maxpool_describe(const fnn_attrs *a, const fnn_shape *in, fnn_node_info *info) {
    return pool_describe_as("max_pool2d", FNN_POOL_CEIL_MODE, a, in, info);
}

static fnn_status avgpool_describe(const fnn_attrs *a, const fnn_shape *in, fnn_node_info *info) {
    return pool_describe_as("avg_pool2d", FNN_POOL_CEIL_MODE | FNN_POOL_EXCLUDE_PAD, a, in,
                            info);
}

static fnn_status maxpool_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    const fnn_attrs *a = c->attrs;
    return fnn_max_pool2d_forward(y, x, c->N * c->in->dim[0], c->in->dim[1], c->in->dim[2],
                                  a->kernel, a->stride, a->padding, a->flags);
}

static fnn_status maxpool_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                              const float *x, const float *y) {
    (void)grads;
    const fnn_attrs *a = c->attrs;
    return fnn_max_pool2d_backward(dx, dy, x, y, c->N * c->in->dim[0], c->in->dim[1],
                                   c->in->dim[2], a->kernel, a->stride, a->padding, a->flags);
}

fnn_status fnn__maxpool_relu_backward(const fnn_op_ctx *c, float *dx, const float *dy,
                                      const float *x, const float *y) {
    const fnn_attrs *a = c->attrs;
    return fnn__max_pool2d_backward_relu(dx, dy, x, y, c->N * c->in->dim[0], c->in->dim[1],
                                         c->in->dim[2], a->kernel, a->stride, a->padding,
                                         a->flags, 1);
}

static fnn_status avgpool_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    const fnn_attrs *a = c->attrs;
    return fnn_avg_pool2d_forward(y, x, c->N * c->in->dim[0], c->in->dim[1], c->in->dim[2],
                                  a->kernel, a->stride, a->padding, a->flags);
}

static fnn_status avgpool_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                              const float *x, const float *y) {
    (void)grads; (void)x; (void)y;
    const fnn_attrs *a = c->attrs;
    return fnn_avg_pool2d_backward(dx, dy, c->N * c->in->dim[0], c->in->dim[1], c->in->dim[2],
                                   a->kernel, a->stride, a->padding, a->flags);
}

static fnn_status adaptive_describe(const fnn_attrs *a, const fnn_shape *in,
                                    fnn_node_info *info) {
    char s[96];
    if (in->ndim != 3)
        return fnn__error(FNN_ERR_ARG, "adaptive_avg_pool2d: input must be (C, H, W) per "
                          "sample, got %s", fnn__shape_str(in, s, sizeof s));
    if (a->kernel[0] < 1 || a->kernel[1] < 1)
        return fnn__error(FNN_ERR_ARG, "adaptive_avg_pool2d: output size (%lld, %lld) must be "
                          ">= 1", (long long)a->kernel[0], (long long)a->kernel[1]);
    info->out_shape = *in;
    info->out_shape.dim[1] = a->kernel[0];
    info->out_shape.dim[2] = a->kernel[1];
    return FNN_OK;
}

static fnn_status adaptive_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    return fnn_adaptive_avg_pool2d_forward(y, x, c->N * c->in->dim[0], c->in->dim[1],
                                           c->in->dim[2], c->attrs->kernel[0],
                                           c->attrs->kernel[1]);
}

static fnn_status adaptive_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                               const float *x, const float *y) {
    (void)grads; (void)x; (void)y;
    return fnn_adaptive_avg_pool2d_backward(dx, dy, c->N * c->in->dim[0], c->in->dim[1],
                                            c->in->dim[2], c->attrs->kernel[0],
                                            c->attrs->kernel[1]);
}

/* ------------------------------------------------------------ flatten */

static fnn_status flatten_describe(const fnn_attrs *a, const fnn_shape *in,
                                   fnn_node_info *info) {
    char s[96];
    if (a->axis < 1 || a->axis > in->ndim)
        return fnn__error(FNN_ERR_ARG, "flatten: start_dim %lld is out of range for per-sample "
                          "shape %s (1 to %d; dim 0 is the batch)", (long long)a->axis,
                          fnn__shape_str(in, s, sizeof s), (int)in->ndim);
    memset(&info->out_shape, 0, sizeof info->out_shape);
    const int k = (int)a->axis - 1;
    int64_t n = 1;
    for (int d = 0; d < k; d++) info->out_shape.dim[d] = in->dim[d];
    for (int d = k; d < in->ndim; d++) n *= in->dim[d];
    info->out_shape.dim[k] = n;
    info->out_shape.ndim = k + 1;
    return FNN_OK;
}

static fnn_status flatten_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    if (y != x) memcpy(y, x, (size_t)(c->N * c->IN) * sizeof(float));
    return FNN_OK;
}

static fnn_status flatten_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                              const float *x, const float *y) {
    (void)grads; (void)x; (void)y;
    if (dx && dx != dy) memcpy(dx, dy, (size_t)(c->N * c->IN) * sizeof(float));
    return FNN_OK;
}

/* ------------------------------------------------------ normalization */

static fnn_status norm_common(const char *op, const fnn_attrs *a, int32_t known) {
    if (a->bias != 0 && a->bias != 1)
        return fnn__error(FNN_ERR_ARG, "%s: bias (affine) must be 0 or 1, got %d", op, a->bias);
    if (a->flags & ~known)
        return fnn__error(FNN_ERR_ARG, "%s: unknown flags 0x%x", op, (unsigned)a->flags);
    if (!(a->eps > 0.0f) || !isfinite(a->eps))
        return fnn__error(FNN_ERR_ARG, "%s: eps must be finite and > 0, got %g", op,
                          (double)a->eps);
    return FNN_OK;
}

static fnn_status bn_describe(const fnn_attrs *a, const fnn_shape *in, fnn_node_info *info) {
    char s[96];
    fnn_status st = norm_common("batch_norm", a, FNN_NORM_NO_STATS | FNN_NORM_CUMULATIVE);
    if (st != FNN_OK) return st;
    if (a->units < 1 || in->dim[0] != a->units)
        return fnn__error(FNN_ERR_ARG, "batch_norm: expected %lld channels (dim 0 of the "
                          "per-sample shape), got per-sample shape %s", (long long)a->units,
                          fnn__shape_str(in, s, sizeof s));
    if (!(a->flags & FNN_NORM_CUMULATIVE) && !(a->momentum >= 0.0f && a->momentum <= 1.0f))
        return fnn__error(FNN_ERR_ARG, "batch_norm: momentum must be in [0, 1], got %g",
                          (double)a->momentum);
    info->out_shape = *in;
    info->num_params = a->bias ? 2 * a->units : 0;
    info->num_buffers = (a->flags & FNN_NORM_NO_STATS) ? 0 : 2 * a->units + 1;
    return FNN_OK;
}

/* weight 1 (C), then bias 0 (C) when there is one */
static void affine_init(float *params, int64_t C, int with_bias) {
    for (int64_t i = 0; i < C; i++) params[i] = 1.0f;
    if (with_bias) memset(params + C, 0, (size_t)C * sizeof(float));
}

static void bn_init(const fnn_attrs *a, const fnn_shape *in, int he, float *params,
                    float *buffers, uint64_t key) {
    (void)in; (void)he; (void)key;
    const int64_t C = a->units;
    if (a->bias) affine_init(params, C, 1);
    if (!(a->flags & FNN_NORM_NO_STATS))   /* running mean 0, running var 1, count 0 */
        for (int64_t i = 0; i < 2 * C + 1; i++) buffers[i] = (i >= C && i < 2 * C) ? 1.0f : 0.0f;
}

static void ln_init(const fnn_attrs *a, const fnn_shape *in, int he, float *params,
                    float *buffers, uint64_t key) {
    (void)in; (void)he; (void)buffers; (void)key;
    if (a->bias) affine_init(params, a->units, !(a->flags & FNN_NORM_NO_BIAS));
}

static fnn_status bn_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    const fnn_attrs *a = c->attrs;
    const int64_t C = a->units;
    const float *w = c->params, *b = c->params ? c->params + C : NULL;
    float *bf = c->buffers;
    return fnn_batch_norm_forward(y, x, w, b, bf, bf ? bf + C : NULL, bf ? bf + 2 * C : NULL,
                                  c->N, C, c->IN / C, c->training, a->momentum, a->eps,
                                  a->flags);
}

static fnn_status bn_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                         const float *x, const float *y) {
    (void)y;
    const fnn_attrs *a = c->attrs;
    const int64_t C = a->units;
    const float *bf = c->buffers;
    return fnn_batch_norm_backward(dx, grads, grads ? grads + C : NULL, dy, x, c->params,
                                   bf, bf ? bf + C : NULL, c->N, C, c->IN / C, c->training,
                                   a->eps);
}

static fnn_status ln_describe(const fnn_attrs *a, const fnn_shape *in, fnn_node_info *info) {
    char s[96];
    fnn_status st = norm_common("layer_norm", a, FNN_NORM_NO_BIAS);
    if (st != FNN_OK) return st;
    int64_t D = 1;
    if (a->axis >= 1 && a->axis <= in->ndim)
        for (int d = in->ndim - (int)a->axis; d < in->ndim; d++) D *= in->dim[d];
    if (a->axis < 1 || a->axis > in->ndim || D != a->units)
        return fnn__error(FNN_ERR_ARG, "layer_norm: normalized shape of %lld dim(s) with %lld "
                          "elements does not match the end of per-sample shape %s",
                          (long long)a->axis, (long long)a->units,
                          fnn__shape_str(in, s, sizeof s));
    info->out_shape = *in;
    info->num_params = a->bias ? ((a->flags & FNN_NORM_NO_BIAS) ? D : 2 * D) : 0;
    info->scratch_per_row = 2 * (fnn__shape_numel(in) / D);
    return FNN_OK;
}

static fnn_status ln_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    const fnn_attrs *a = c->attrs;
    const int64_t D = a->units;
    const float *w = c->params;
    const float *b = w && !(a->flags & FNN_NORM_NO_BIAS) ? w + D : NULL;
    return fnn_layer_norm_forward(y, c->scratch, x, w, b, c->N * (c->IN / D), D, a->eps);
}

static fnn_status ln_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                         const float *x, const float *y) {
    (void)y;
    const fnn_attrs *a = c->attrs;
    const int64_t D = a->units;
    float *gb = grads && !(a->flags & FNN_NORM_NO_BIAS) ? grads + D : NULL;
    return fnn_layer_norm_backward(dx, grads, gb, dy, x, c->params, c->scratch,
                                   c->N * (c->IN / D), D);
}

/* -------------------------------------------------------- convolution */

/* The geometry of a conv2d (nd = 2) or conv1d (nd = 1) node on input `in`,
   or an error naming the op and the shapes. */
static fnn_status conv_geom_of(fnn_conv_geom *g, const char *op, int nd, const fnn_attrs *a,
                               const fnn_shape *in) {
    char s[96];
    if (in->ndim != nd + 1)
        return fnn__error(FNN_ERR_ARG, "%s: input must be %s per sample, got %s", op,
                          nd == 2 ? "(C, H, W)" : "(C, L)", fnn__shape_str(in, s, sizeof s));
    if (a->flags & ~(FNN_CONV_PAD_EXTRA_0 | FNN_CONV_PAD_EXTRA_1))
        return fnn__error(FNN_ERR_ARG, "%s: unknown flags 0x%x", op, (unsigned)a->flags);
    if (a->bias != 0 && a->bias != 1)
        return fnn__error(FNN_ERR_ARG, "%s: bias must be 0 or 1, got %d", op, a->bias);
    const int64_t C = in->dim[0], O = a->units, G = a->groups;
    if (O < 1 || G < 1)
        return fnn__error(FNN_ERR_ARG, "%s: out_channels (%lld) and groups (%lld) must be >= 1",
                          op, (long long)O, (long long)G);
    if (C % G || O % G)
        return fnn__error(FNN_ERR_ARG, "%s: in_channels %lld (input %s) and out_channels %lld "
                          "must be divisible by groups %lld", op, (long long)C,
                          fnn__shape_str(in, s, sizeof s), (long long)O, (long long)G);
    int64_t k[2] = {1, 1}, st[2] = {1, 1}, dl[2] = {1, 1}, p0[2] = {0, 0}, p1[2] = {0, 0};
    int64_t I[2] = {1, 1}, o[2];
    for (int d = 0; d < nd; d++) {
        const int e = 2 - nd + d;   /* conv1d's L is the W of a 1-row image */
        k[e] = a->kernel[d]; st[e] = a->stride[d]; dl[e] = a->dilation[d];
        p0[e] = a->padding[d];
        p1[e] = a->padding[d] + ((a->flags & (d ? FNN_CONV_PAD_EXTRA_1 : FNN_CONV_PAD_EXTRA_0))
                                 ? 1 : 0);
        I[e] = in->dim[1 + d];
        if (k[e] < 1 || st[e] < 1 || dl[e] < 1 || p0[e] < 0 || k[e] > (1 << 20) ||
            dl[e] > (1 << 20) || p0[e] > (1 << 20) || st[e] > (1 << 20))
            return fnn__error(FNN_ERR_ARG, "%s: kernel %lld, stride %lld and dilation %lld must "
                              "be >= 1 and padding %lld >= 0 (each at most 2^20)", op,
                              (long long)k[e], (long long)st[e], (long long)dl[e],
                              (long long)p0[e]);
    }
    for (int e = 0; e < 2; e++) {
        const int64_t span = I[e] + p0[e] + p1[e] - dl[e] * (k[e] - 1) - 1;
        if (span < 0)
            return fnn__error(FNN_ERR_ARG, "%s: kernel size %lld (dilation %lld) is larger than "
                              "the padded input %s (padding %lld + %lld)", op, (long long)k[e],
                              (long long)dl[e], fnn__shape_str(in, s, sizeof s),
                              (long long)p0[e], (long long)p1[e]);
        o[e] = span / st[e] + 1;
    }
    g->C = C; g->H = I[0]; g->W = I[1]; g->O = O; g->OH = o[0]; g->OW = o[1];
    g->KH = k[0]; g->KW = k[1]; g->sh = st[0]; g->sw = st[1]; g->dh = dl[0]; g->dw = dl[1];
    g->pt = p0[0]; g->pb = p1[0]; g->pl = p0[1]; g->pr = p1[1]; g->G = G;
    int64_t t;
    if (fnn__mul_overflow(O, C / G, &t) || fnn__mul_overflow(t, k[0] * k[1], &t) ||
        t > INT64_MAX - O || fnn__mul_overflow(O, o[0] * o[1], &t) ||
        fnn__mul_overflow(C * k[0] * k[1], o[0] * o[1], &t))
        return fnn__error(FNN_ERR_SIZE, "%s: sizes overflow for input %s", op,
                          fnn__shape_str(in, s, sizeof s));
    return FNN_OK;
}

static fnn_status conv_describe_as(const char *op, int nd, const fnn_attrs *a,
                                   const fnn_shape *in, fnn_node_info *info) {
    fnn_conv_geom g;
    fnn_status st = conv_geom_of(&g, op, nd, a, in);
    if (st != FNN_OK) return st;
    memset(&info->out_shape, 0, sizeof info->out_shape);
    info->out_shape.ndim = nd + 1;
    info->out_shape.dim[0] = g.O;
    if (nd == 2) {
        info->out_shape.dim[1] = g.OH;
        info->out_shape.dim[2] = g.OW;
    } else {
        info->out_shape.dim[1] = g.OW;
    }
    info->num_params = g.O * (g.C / g.G) * g.KH * g.KW + (a->bias ? g.O : 0);
    info->scratch_per_row = fnn__conv_scratch(&g);
    return FNN_OK;
}

static fnn_status conv2d_describe(const fnn_attrs *a, const fnn_shape *in, fnn_node_info *info) {
    return conv_describe_as("conv2d", 2, a, in, info);
}

static fnn_status conv1d_describe(const fnn_attrs *a, const fnn_shape *in, fnn_node_info *info) {
    return conv_describe_as("conv1d", 1, a, in, info);
}

/* PyTorch's default: kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
   for the weight, the same bound for the bias; fan_in = C/G KH KW. Draws
   u_i for the weights then u_{nw + o} for the bias, as linear's. */
static void conv_init_as(int nd, const fnn_attrs *a, const fnn_shape *in, float *params,
                         uint64_t key) {
    int64_t fan_in = in->dim[0] / a->groups;
    for (int d = 0; d < nd; d++) fan_in *= a->kernel[d];
    const int64_t nw = a->units * fan_in, np = nw + (a->bias ? a->units : 0);
    const double bound = 1.0 / sqrt((double)fan_in);
    for (int64_t i = 0; i < np; i++) {
        double u = (double)(fnn__splitmix64(key + (uint64_t)i) >> 11) * 0x1p-53;
        params[i] = (float)((2.0 * u - 1.0) * bound);
    }
}

static void conv2d_init(const fnn_attrs *a, const fnn_shape *in, int he, float *params,
                        float *buffers, uint64_t key) {
    (void)he; (void)buffers;
    conv_init_as(2, a, in, params, key);
}

static void conv1d_init(const fnn_attrs *a, const fnn_shape *in, int he, float *params,
                        float *buffers, uint64_t key) {
    (void)he; (void)buffers;
    conv_init_as(1, a, in, params, key);
}

static fnn_status conv_fwd_as(const char *op, int nd, const fnn_op_ctx *c, float *y,
                              const float *x) {
    fnn_conv_geom g;
    fnn_status st = conv_geom_of(&g, op, nd, c->attrs, c->in);
    if (st != FNN_OK) return st;
    const float *w = c->params;
    const float *b = c->attrs->bias ? w + g.O * (g.C / g.G) * g.KH * g.KW : NULL;
    return fnn__conv_forward(y, x, w, b, c->scratch, c->N, &g, !c->forward_only);
}

static fnn_status conv_bwd_as(const char *op, int nd, const fnn_op_ctx *c, float *dx,
                              float *grads, const float *dy, const float *x) {
    fnn_conv_geom g;
    fnn_status st = conv_geom_of(&g, op, nd, c->attrs, c->in);
    if (st != FNN_OK) return st;
    const int64_t nw = g.O * (g.C / g.G) * g.KH * g.KW;
    float *db = grads && c->attrs->bias ? grads + nw : NULL;
    return fnn__conv_backward(dx, grads, db, dy, x, c->params, c->scratch, c->N, &g);
}

static fnn_status conv2d_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    return conv_fwd_as("conv2d", 2, c, y, x);
}

static fnn_status conv1d_fwd(const fnn_op_ctx *c, float *y, const float *x) {
    return conv_fwd_as("conv1d", 1, c, y, x);
}

static fnn_status conv2d_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                             const float *x, const float *y) {
    (void)y;
    return conv_bwd_as("conv2d", 2, c, dx, grads, dy, x);
}

static fnn_status conv1d_bwd(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                             const float *x, const float *y) {
    (void)y;
    return conv_bwd_as("conv1d", 1, c, dx, grads, dy, x);
}

/* --------------------------------------------------------------- table */

static const fnn_op_def OPS[] = {
    {"linear", FNN_OPF_GRADS_SET, linear_describe, linear_init, linear_forward, linear_backward},
    {"relu", FNN_OPF_HE_BEFORE, same_shape, NULL, relu_fwd, relu_bwd},
    {"leaky_relu", FNN_OPF_HE_BEFORE, leaky_describe, NULL, leaky_fwd, leaky_bwd},
    {"sigmoid", 0, same_shape, NULL, sigmoid_fwd, sigmoid_bwd},
    {"tanh", 0, same_shape, NULL, tanh_fwd, tanh_bwd},
    {"gelu", FNN_OPF_HE_BEFORE, same_shape, NULL, gelu_fwd, gelu_bwd},
    {"softmax", 0, softmax_describe, NULL, softmax_fwd, softmax_bwd},
    {"dropout", FNN_OPF_KEY, dropout_describe, NULL, dropout_fwd, dropout_bwd},
    {"max_pool2d", 0, maxpool_describe, NULL, maxpool_fwd, maxpool_bwd},
    {"avg_pool2d", 0, avgpool_describe, NULL, avgpool_fwd, avgpool_bwd},
    {"adaptive_avg_pool2d", 0, adaptive_describe, NULL, adaptive_fwd, adaptive_bwd},
    {"flatten", 0, flatten_describe, NULL, flatten_fwd, flatten_bwd},
    {"batch_norm", 0, bn_describe, bn_init, bn_fwd, bn_bwd},
    {"layer_norm", 0, ln_describe, ln_init, ln_fwd, ln_bwd},
    {"conv2d", 0, conv2d_describe, conv2d_init, conv2d_fwd, conv2d_bwd},
    {"conv1d", 0, conv1d_describe, conv1d_init, conv1d_fwd, conv1d_bwd},
};
#define N_OPS ((int32_t)(sizeof OPS / sizeof OPS[0]))

int32_t fnn_op_count(void) { return N_OPS; }

const char *fnn_op_name(int32_t i) { return i >= 0 && i < N_OPS ? OPS[i].name : NULL; }

const fnn_op_def *fnn__op_lookup(const char *name) {
    if (!fnn__name_ok(name)) return NULL;
    for (int32_t i = 0; i < N_OPS; i++)
        if (strcmp(OPS[i].name, name) == 0) return &OPS[i];
    return NULL;
}

/* The entry of a node, or NULL with fnn_last_error set. */
static const fnn_op_def *node_def(const fnn_node *node) {
    if (!node) {
        fnn__error(FNN_ERR_ARG, "node is NULL");
        return NULL;
    }
    const fnn_op_def *def = fnn__op_lookup(node->op);
    if (!def) {
        if (fnn__name_ok(node->op))
            fnn__error(FNN_ERR_ARG, "unknown op '%s'", node->op);
        else
            fnn__error(FNN_ERR_ARG, "op name is empty or not NUL-terminated");
    }
    return def;
}

fnn_status fnn_op_describe(fnn_node_info *info, const fnn_node *node, const fnn_shape *in) {
    fnn__clear_error();
    char s[96];
    if (!info) return fnn__error(FNN_ERR_ARG, "info is NULL");
    const fnn_op_def *def = node_def(node);
    if (!def) return FNN_ERR_ARG;
    if (fnn__shape_numel(in) < 0)
        return fnn__error(FNN_ERR_SIZE, "%s: invalid input shape %s (1 to %d dimensions, "
                          "each >= 1)", def->name, fnn__shape_str(in, s, sizeof s),
                          FNN_MAX_DIMS);
    memset(info, 0, sizeof *info);
    fnn_status st = def->describe(&node->attrs, in, info);
    if (st == FNN_OK && fnn__shape_numel(&info->out_shape) < 0)
        return fnn__error(FNN_ERR_SIZE, "%s: output shape overflows", def->name);
    return st;
}

/* Fill a context for one op call (after fnn_op_describe succeeded). */
static void make_ctx(fnn_op_ctx *c, const fnn_node *node, const fnn_shape *in,
                     const fnn_node_info *info, int64_t N, const float *params,
                     float *buffers, float *scratch, int training, uint64_t key) {
    c->attrs = &node->attrs;
    c->in = in;
    c->info = info;
    c->N = N;
    c->IN = fnn__shape_numel(in);
    c->OUT = fnn__shape_numel(&info->out_shape);
    c->params = params;
    c->buffers = buffers;
    c->scratch = scratch;
    c->training = training;
    c->key = key;
    c->accumulate = 1;
    c->forward_only = 0;
}

/* Common checks of the one-op entry points. */
static fnn_status op_call_check(const fnn_op_def **def, fnn_node_info *info,
                                const fnn_node *node, const fnn_shape *in, int64_t N,
                                const float *params, const float *buffers,
                                const float *scratch) {
    fnn_status st = fnn_op_describe(info, node, in);
    if (st != FNN_OK) return st;
    *def = fnn__op_lookup(node->op);
    int64_t rows;
    if (N < 0 || fnn__mul_overflow(N, fnn__shape_numel(in), &rows) ||
        fnn__mul_overflow(N, fnn__shape_numel(&info->out_shape), &rows))
        return fnn__error(FNN_ERR_SIZE, "%s: invalid batch size %lld", node->op, (long long)N);
    if ((info->num_params > 0 && !params) || (info->num_buffers > 0 && !buffers) ||
        (info->scratch_per_row > 0 && N > 0 && !scratch))
        return fnn__error(FNN_ERR_ARG, "%s: missing parameters, buffers or scratch", node->op);
    return FNN_OK;
}

fnn_status fnn_op_forward(const fnn_node *node, const fnn_shape *in, int64_t N, float *y,
                          const float *x, const float *params, float *buffers,
                          float *scratch, int training, uint64_t key) {
    const fnn_op_def *def;
    fnn_node_info info;
    fnn_status st = op_call_check(&def, &info, node, in, N, params, buffers, scratch);
    if (st != FNN_OK) return st;
    if (N == 0) return FNN_OK;
    if (!x || !y) return fnn__error(FNN_ERR_ARG, "%s: x and y must not be NULL", node->op);
    fnn_op_ctx c;
    make_ctx(&c, node, in, &info, N, params, buffers, scratch, training != 0, key);
    return def->forward(&c, y, x);
}

fnn_status fnn_op_backward(const fnn_node *node, const fnn_shape *in, int64_t N, float *dx,
                           float *grads, const float *dy, const float *x, const float *y,
                           const float *params, const float *buffers, float *scratch,
                           int training, uint64_t key) {
    const fnn_op_def *def;
    fnn_node_info info;
    fnn_status st = op_call_check(&def, &info, node, in, N, params, buffers, scratch);
    if (st != FNN_OK) return st;
    if (N == 0) return FNN_OK;
    if (!dy || !x || !y || (info.num_params > 0 && !grads))
        return fnn__error(FNN_ERR_ARG, "%s: dy, x, y (and grads) must not be NULL", node->op);
    fnn_op_ctx c;
    make_ctx(&c, node, in, &info, N, params, (float *)buffers, scratch, training != 0, key);
    return def->backward(&c, dx, grads, dy, x, y);
}

fnn_status fnn_op_init(const fnn_node *node, const fnn_shape *in, const fnn_node *next,
                       float *params, float *buffers, uint64_t seed, int64_t index) {
    fnn_node_info info;
    fnn_status st = fnn_op_describe(&info, node, in);
    if (st != FNN_OK) return st;
    if ((info.num_params > 0 && !params) || (info.num_buffers > 0 && !buffers))
        return fnn__error(FNN_ERR_ARG, "%s: missing parameters or buffers", node->op);
    const fnn_op_def *def = fnn__op_lookup(node->op), *nd = next ? fnn__op_lookup(next->op) : NULL;
    if (def->init)
        def->init(&node->attrs, in, nd && (nd->flags & FNN_OPF_HE_BEFORE), params, buffers,
                  fnn_dropout_key(seed, index, -1));
    return FNN_OK;
}

/* -------------------------------------------------------------- losses */

#define LOSS_EVAL(name) \
    static fnn_status name(const fnn_loss_desc *d, double *loss, float *dpred, \
                           const float *pred, const float *target, const int64_t *labels, \
                           const float *rw, double denom, int64_t N, int64_t D, int64_t *bad)

LOSS_EVAL(mse_eval) {
    (void)d; (void)labels; (void)bad;
    return fnn__mse_loss_w(loss, dpred, pred, target, rw, denom, N, D);
}

LOSS_EVAL(mae_eval) {
    (void)d; (void)labels; (void)bad;
    return fnn__mae_loss_w(loss, dpred, pred, target, rw, denom, N, D);
}

LOSS_EVAL(huber_eval) {
    (void)labels; (void)bad;
    return fnn__huber_loss_w(loss, dpred, pred, target, rw, denom, N, D, d->delta);
}

LOSS_EVAL(bce_eval) {
    (void)labels; (void)bad;
    return fnn__bce_with_logits_loss_w(loss, dpred, pred, target, d->weight, rw, denom, N, D);
}

LOSS_EVAL(ce_eval) {
    (void)target;
    return fnn__cross_entropy_loss_w(loss, dpred, pred, labels, d->weight, rw, denom, N, D,
                                     d->ignore_index, bad);
}

static const fnn_loss_def LOSSES[] = {
    {"mse", 0, 0, mse_eval},
    {"mae", 0, 0, mae_eval},
    {"huber", 0, 0, huber_eval},
    {"bce_with_logits", 0, 1, bce_eval},
    {"cross_entropy", 1, 1, ce_eval},
};

#define N_LOSSES ((int32_t)(sizeof LOSSES / sizeof LOSSES[0]))

int32_t fnn_loss_count(void) { return N_LOSSES; }

const char *fnn_loss_name(int32_t i) { return i >= 0 && i < N_LOSSES ? LOSSES[i].name : NULL; }

const fnn_loss_def *fnn__loss_lookup(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof LOSSES / sizeof LOSSES[0]; i++)
        if (strcmp(LOSSES[i].name, name) == 0) return &LOSSES[i];
    return NULL;
}

fnn_status fnn_loss_eval(const fnn_loss_desc *d, double *loss, float *dpred, const float *pred,
                         const float *target, const int64_t *labels, int64_t N, int64_t D,
                         int64_t *bad_index) {
    return fnn_loss_eval_weighted(d, loss, dpred, pred, target, labels, NULL, 0.0, N, D,
                                  bad_index);
}

fnn_status fnn_loss_eval_weighted(const fnn_loss_desc *d, double *loss, float *dpred,
                                  const float *pred, const float *target,
                                  const int64_t *labels, const float *sample_weight,
                                  double denom, int64_t N, int64_t D, int64_t *bad_index) {
    fnn__clear_error();
    const fnn_loss_def *def = d ? fnn__loss_lookup(d->name) : NULL;
    if (!def) return fnn__error(FNN_ERR_ARG, "unknown loss '%s'", d && d->name ? d->name : "");
    if (def->labels ? !labels : !target)
        return fnn__error(FNN_ERR_ARG, "%s needs %s", def->name,
                          def->labels ? "integer labels" : "float targets");
    if (d->weight && d->weight_len != D)
        return fnn__error(FNN_ERR_SIZE, "%s: weight has %lld values for %lld outputs",
                          def->name, (long long)d->weight_len, (long long)D);
    if (!isfinite(denom))              /* <= 0 means the total weight */
        return fnn__error(FNN_ERR_ARG, "%s: denominator %g is not finite", def->name, denom);
    return def->eval(d, loss, dpred, pred, target, labels, sample_weight, denom, N, D,
                     bad_index);
}

/* ---------------------------------------------------------- optimizers */

static int32_t sgd_nstate(const fnn_optim_desc *d) { return d->momentum != 0.0f ? 1 : 0; }
static int32_t two_state(const fnn_optim_desc *d) { (void)d; return 2; }
static int32_t one_state(const fnn_optim_desc *d) { (void)d; return 1; }
static int32_t rmsprop_nstate(const fnn_optim_desc *d) { return d->momentum > 0.0f ? 2 : 1; }

static fnn_status sgd_up(const fnn_optim_desc *d, float *p, const float *g, float *const *s,
                         int64_t P, int64_t t) {
    return fnn_sgd_update(p, d->momentum != 0.0f ? s[0] : NULL, g, P, t, d->lr, d->momentum,
                          d->dampening, d->weight_decay, d->nesterov);
}

static fnn_status adam_up(const fnn_optim_desc *d, float *p, const float *g, float *const *s,
                          int64_t P, int64_t t) {
    return fnn_adam_update(p, s[0], s[1], g, P, t, d->lr, d->beta1, d->beta2, d->eps,
                           d->weight_decay, 0);
}

static fnn_status adamw_up(const fnn_optim_desc *d, float *p, const float *g, float *const *s,
                           int64_t P, int64_t t) {
    return fnn_adam_update(p, s[0], s[1], g, P, t, d->lr, d->beta1, d->beta2, d->eps,
                           d->weight_decay, 1);
}

static fnn_status rmsprop_up(const fnn_optim_desc *d, float *p, const float *g,
                             float *const *s, int64_t P, int64_t t) {
    return fnn_rmsprop_update(p, s[0], d->momentum > 0.0f ? s[1] : NULL, g, P, t, d->lr,
                              d->alpha, d->eps, d->weight_decay, d->momentum);
}

static fnn_status adagrad_up(const fnn_optim_desc *d, float *p, const float *g,
                             float *const *s, int64_t P, int64_t t) {
    return fnn_adagrad_update(p, s[0], g, P, t, d->lr, d->lr_decay, d->eps, d->weight_decay);
}

static const fnn_optim_def OPTIMS[] = {
    {"sgd", sgd_nstate, sgd_up},
    {"adam", two_state, adam_up},
    {"adamw", two_state, adamw_up},
    {"rmsprop", rmsprop_nstate, rmsprop_up},
    {"adagrad", one_state, adagrad_up},
};

#define N_OPTIMS ((int32_t)(sizeof OPTIMS / sizeof OPTIMS[0]))

int32_t fnn_optim_count(void) { return N_OPTIMS; }

const char *fnn_optim_name(int32_t i) { return i >= 0 && i < N_OPTIMS ? OPTIMS[i].name : NULL; }

const fnn_optim_def *fnn__optim_lookup(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof OPTIMS / sizeof OPTIMS[0]; i++)
        if (strcmp(OPTIMS[i].name, name) == 0) return &OPTIMS[i];
    return NULL;
}

int32_t fnn_optim_num_state(const fnn_optim_desc *d) {
    const fnn_optim_def *def = d ? fnn__optim_lookup(d->name) : NULL;
    return def ? def->num_state(d) : -1;
}

fnn_status fnn_optim_step(const fnn_optim_desc *d, float *params, float *grads, int64_t P,
                          int64_t t) {
    fnn__clear_error();
    const fnn_optim_def *def = d ? fnn__optim_lookup(d->name) : NULL;
    if (!def)
        return fnn__error(FNN_ERR_ARG, "unknown optimizer '%s'", d && d->name ? d->name : "");
    if (!(d->lr >= 0.0f && isfinite(d->lr)))
        return fnn__error(FNN_ERR_ARG, "%s: invalid learning rate %g", def->name, (double)d->lr);
    if (t < 1) return fnn__error(FNN_ERR_ARG, "%s: step must be >= 1, got %lld", def->name,
                                 (long long)t);
    int32_t ns = def->num_state(d);
    for (int32_t k = 0; k < ns; k++)
        if (!d->state[k] && P > 0)
            return fnn__error(FNN_ERR_ARG, "%s: state buffer %d is NULL", def->name, (int)k);
    return fnn__optim_apply(def, d, params, grads, P, t);
}

fnn_status fnn__optim_apply(const fnn_optim_def *def, const fnn_optim_desc *d, float *params,
                            float *grads, int64_t P, int64_t t) {
    if (d->max_grad_norm > 0.0f) {
        fnn_status st = fnn_clip_grad_norm(grads, P, d->max_grad_norm, NULL);
        if (st != FNN_OK) return st;
    }
    return def->update(d, params, grads, d->state, P, t);
}
