/*
 * fastnn.h -- the one public header of fastnn's C core.
 *
 * Plain C99, no Python. Every symbol is prefixed fnn_. An application can
 * compile the csrc C files and link against this header without Python (see
 * tests/c/test_core.c).
 *
 * Conventions (see shared/STYLE.md):
 *   - All tensors are row-major float32. Sizes are int64_t.
 *   - Argument order: outputs first, then inputs, then sizes, then scalars.
 *   - Input gradients (dx) are OVERWRITTEN. Parameter gradients (dw, db)
 *     are ACCUMULATED (+=), so zero_grad is one memset over the flat buffer.
 *   - A function returns FNN_OK or an error status; library code never
 *     prints, asserts or exits. On error no output has been written.
 *   - Pointers may be NULL only where a comment says so, or when the
 *     tensor has zero elements.
 *
 * Size letters: N batch rows, IN input features, OUT output features,
 * C classes, D target columns, P number of parameters in a flat buffer.
 */
#ifndef FASTNN_H
#define FASTNN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fnn_status {
    FNN_OK = 0,
    FNN_ERR_SIZE = 1,     /* a size is negative, a product overflows, or ld too small */
    FNN_ERR_LABEL = 2,    /* a class label is out of range */
    FNN_ERR_NOMEM = 3,    /* an allocation failed */
    FNN_ERR_ARG = 4       /* another bad argument (NULL pointer, bad scalar) */
} fnn_status;

/* A short English name for a status code (static storage, never NULL). */
const char *fnn_status_string(fnn_status s);

/* ---------------------------------------------------------------- threads */
/* Number of threads the kernels use: the value set by fnn_set_num_threads,
   else OpenMP's default (which honours OMP_NUM_THREADS). 1 without OpenMP. */
int fnn_get_num_threads(void);
/* n >= 1 sets the count; n == 0 returns to OpenMP's default. */
fnn_status fnn_set_num_threads(int n);
/* 1 if the core was compiled with OpenMP, else 0. */
int fnn_has_openmp(void);

/* 1 if the n floats at x are all finite (no NaN, no +-Inf), else 0. */
int fnn_all_finite(const float *x, int64_t n);

/* ------------------------------------------------------------------- gemm */
/* C = alpha * op(A) * op(B) + beta * C, with op(X) = X or X^T.
   op(A) is (M, K), op(B) is (K, N), C is (M, N); all row-major with leading
   dimensions lda, ldb, ldc (elements between consecutive rows).
   A is (M, K) if !transA else (K, M); B is (K, N) if !transB else (N, K).
   beta == 0: C is overwritten and never read (NaN in C is ignored).
   alpha == 0 or K == 0: C = beta * C; A and B are not read.
   Deterministic: K is never split across threads, so the result is bitwise
   identical for every thread count. */
fnn_status fnn_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K,
                     float alpha, const float *A, int64_t lda,
                     const float *B, int64_t ldb,
                     float beta, float *C, int64_t ldc);
/* Heap allocations the core has made since it was loaded (GEMM packing
   buffers, cached per thread and grown on demand): flat across calls once
   warm, which is how the tests prove that a training step allocates nothing. */
int64_t fnn_alloc_count(void);
/* Name of the micro-kernel in use, e.g. "generic". */
const char *fnn_sgemm_kernel_name(void);

/* ------------------------------------------------------------------ dense */
/* y (N, OUT) = x (N, IN) . w (IN, OUT) + b (OUT). b may be NULL (no bias). */
fnn_status fnn_dense_forward(float *y, const float *x, const float *w,
                             const float *b, int64_t N, int64_t IN, int64_t OUT);
/* dx (N, IN) = dy (N, OUT) . w^T           (OVERWRITTEN; dx may be NULL: skipped)
   dw (IN, OUT) += x^T . dy                  (ACCUMULATED)
   db (OUT) += sum over rows of dy           (ACCUMULATED; NULL: no bias) */
fnn_status fnn_dense_backward(float *dx, float *dw, float *db,
                              const float *dy, const float *x, const float *w,
                              int64_t N, int64_t IN, int64_t OUT);

/* ------------------------------------------------------------ activations */
/* Elementwise: y = f(x) over n floats. Backward: dx = dy * f'(x), where f'
   is computed from x and/or y (both must be given: the forward's input and
   output). dx is OVERWRITTEN and may alias dy. */
fnn_status fnn_relu_forward(float *y, const float *x, int64_t n);
fnn_status fnn_relu_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n);
/* f(x) = x if x > 0 else slope * x */
fnn_status fnn_leaky_relu_forward(float *y, const float *x, int64_t n, float slope);
fnn_status fnn_leaky_relu_backward(float *dx, const float *dy, const float *x,
                                   const float *y, int64_t n, float slope);
/* f(x) = 1 / (1 + exp(-x)), computed without overflow */
fnn_status fnn_sigmoid_forward(float *y, const float *x, int64_t n);
fnn_status fnn_sigmoid_backward(float *dx, const float *dy, const float *x,
                                const float *y, int64_t n);
fnn_status fnn_tanh_forward(float *y, const float *x, int64_t n);
fnn_status fnn_tanh_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n);
/* GELU, tanh approximation (Hendrycks & Gimpel 2016; PyTorch approximate='tanh'):
   f(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
fnn_status fnn_gelu_forward(float *y, const float *x, int64_t n);
fnn_status fnn_gelu_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n);
/* Row-wise softmax over x (N, C): y[i, j] = exp(x[i,j] - max_i) / sum_j(...).
   Backward: dx[i, j] = y[i, j] * (dy[i, j] - sum_k dy[i, k] y[i, k]). */
fnn_status fnn_softmax_forward(float *y, const float *x, int64_t N, int64_t C);
fnn_status fnn_softmax_backward(float *dx, const float *dy, const float *x,
                                const float *y, int64_t N, int64_t C);

/* ----------------------------------------------------------------- losses */
/* Each loss writes the mean loss to *loss (accumulated in double) and, when
   dpred is not NULL, OVERWRITES dpred (same shape as pred) with
   d(mean loss)/d(pred). pred and target are (N, D); the mean is over N*D. */
fnn_status fnn_mse_loss(double *loss, float *dpred, const float *pred,
                        const float *target, int64_t N, int64_t D);
/* MAE (L1). The subgradient at pred == target is 0 (as PyTorch's sign). */
fnn_status fnn_mae_loss(double *loss, float *dpred, const float *pred,
                        const float *target, int64_t N, int64_t D);
/* Huber: 0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta), r = pred - target.
   delta > 0. */
fnn_status fnn_huber_loss(double *loss, float *dpred, const float *pred,
                          const float *target, int64_t N, int64_t D, float delta);
/* Binary cross-entropy on logits z with targets t in [0, 1]:
   l = -(pw * t * log sigmoid(z) + (1 - t) * log(1 - sigmoid(z))),
   computed stably as (1 - t) z + (1 + (pw - 1) t) softplus(-z).
   pos_weight (D) may be NULL (all ones), as PyTorch's BCEWithLogitsLoss. */
fnn_status fnn_bce_with_logits_loss(double *loss, float *dpred, const float *logits,
                                    const float *target, const float *pos_weight,
                                    int64_t N, int64_t D);
/* Softmax cross-entropy on logits (N, C) with integer labels (N):
   l_i = w[y_i] * (logsumexp(z_i) - z_i[y_i]); loss = sum_i l_i / sum_i w[y_i]
   over rows whose label != ignore_index (PyTorch's weighted mean).
   weight (C) may be NULL (all ones). Every label is checked (0 <= y < C or
   y == ignore_index) before anything is written: FNN_ERR_LABEL otherwise,
   and *bad_index (may be NULL) receives the first offending row.
   If no row counts (all ignored, or total weight 0) the loss is 0 and
   dpred is all zeros. */
fnn_status fnn_cross_entropy_loss(double *loss, float *dpred, const float *logits,
                                  const int64_t *labels, const float *weight,
                                  int64_t N, int64_t C, int64_t ignore_index,
                                  int64_t *bad_index);

/* ------------------------------------------------------------- optimizers */
/* In-place updates over flat buffers of P floats: params, grads and state.
   `step` is the 1-based number of this update (used for bias correction and
   PyTorch's first-step momentum rule). A step with lr == 0 leaves params
   bitwise unchanged. Full-batch, stochastic and mini-batch gradient descent
   are the same kernel; only the batch that produced grads differs. */

/* SGD, PyTorch semantics: g = grad + wd * p;
   if momentum != 0: buf = g (step 1) else momentum * buf + (1 - dampening) * g;
                     g = nesterov ? g + momentum * buf : buf;
   p -= lr * g.  buf (P) may be NULL when momentum == 0. */
fnn_status fnn_sgd_update(float *params, float *buf, const float *grads, int64_t P,
                          int64_t step, float lr, float momentum, float dampening,
                          float weight_decay, int nesterov);
/* Adam (Kingma & Ba 2015) with bias correction; decoupled != 0 gives AdamW
   (Loshchilov & Hutter 2019: p -= lr * wd * p before the Adam step) else
   L2 (g += wd * p). m, v (P) are the first and second moment buffers. */
fnn_status fnn_adam_update(float *params, float *m, float *v, const float *grads,
                           int64_t P, int64_t step, float lr, float beta1, float beta2,
                           float eps, float weight_decay, int decoupled);
/* RMSprop, PyTorch semantics: sq = alpha sq + (1 - alpha) g^2;
   if momentum > 0: buf = momentum buf + g / (sqrt(sq) + eps); p -= lr buf
   else p -= lr g / (sqrt(sq) + eps). buf may be NULL when momentum == 0. */
fnn_status fnn_rmsprop_update(float *params, float *sq, float *buf, const float *grads,
                              int64_t P, int64_t step, float lr, float alpha, float eps,
                              float weight_decay, float momentum);
/* AdaGrad, PyTorch semantics: clr = lr / (1 + (step - 1) lr_decay);
   sum += g^2; p -= clr g / (sqrt(sum) + eps). */
fnn_status fnn_adagrad_update(float *params, float *sum, const float *grads, int64_t P,
                              int64_t step, float lr, float lr_decay, float eps,
                              float weight_decay);

/* Scale grads (P) in place so that their global L2 norm is at most max_norm
   (> 0), as PyTorch's clip_grad_norm_: coef = max_norm / (norm + 1e-6),
   applied when < 1. *norm (may be NULL) receives the norm before clipping,
   computed in double with a fixed blocking (same bits for any thread count). */
fnn_status fnn_clip_grad_norm(float *grads, int64_t P, float max_norm, double *norm);

/* ---------------------------------------------------------------- dropout */
/* Inverted dropout with a counter-based generator: element i is kept iff
   u(key, i) >= p, where u is the top 24 bits of splitmix64(key + i) / 2^24,
   and a kept element is scaled by 1 / (1 - p). The mask depends only on
   (key, i): no state, identical for every thread count and in the NumPy
   reference. 0 <= p < 1. Backward recomputes the mask: dx = dy * mask.
   dx may alias dy; y may alias x. */
fnn_status fnn_dropout_forward(float *y, const float *x, int64_t n, float p, uint64_t key);
fnn_status fnn_dropout_backward(float *dx, const float *dy, int64_t n, float p, uint64_t key);
/* The key of one dropout call: a hash of the model seed, the layer's index
   in the plan and the call counter (the training step). */
uint64_t fnn_dropout_key(uint64_t seed, int64_t layer, int64_t counter);

/* ------------------------------------------------- fused plan and step */
/* A Sequential of built-in layers as a plan the C core runs in one call.
   Parameters of all layers live in one flat buffer; gradients in another of
   the same size P; optimizer state in one or two more. */
typedef enum fnn_op {
    FNN_OP_DENSE = 1, FNN_OP_RELU = 2, FNN_OP_LEAKY_RELU = 3, FNN_OP_SIGMOID = 4,
    FNN_OP_TANH = 5, FNN_OP_GELU = 6, FNN_OP_SOFTMAX = 7, FNN_OP_DROPOUT = 8
} fnn_op;

typedef struct fnn_layer {
    int32_t op;       /* an fnn_op */
    int32_t has_bias; /* DENSE: 1 if it has a bias */
    int64_t in, out;  /* features in and out (equal except for DENSE) */
    int64_t w_off;    /* DENSE: offset of w (in, out) in the flat buffers */
    int64_t b_off;    /* DENSE with bias: offset of b (out) */
    float param;      /* LEAKY_RELU: slope; DROPOUT: probability p */
} fnn_layer;

typedef enum fnn_loss_kind {
    FNN_LOSS_MSE = 1, FNN_LOSS_MAE = 2, FNN_LOSS_HUBER = 3,
    FNN_LOSS_BCE_WITH_LOGITS = 4, FNN_LOSS_CROSS_ENTROPY = 5
} fnn_loss_kind;

typedef struct fnn_loss {
    int32_t kind;          /* an fnn_loss_kind */
    float delta;           /* HUBER */
    const float *weight;   /* CROSS_ENTROPY: class weights (C); BCE: pos_weight (D); or NULL */
    int64_t ignore_index;  /* CROSS_ENTROPY */
} fnn_loss;

typedef enum fnn_optim_kind {
    FNN_OPTIM_SGD = 1, FNN_OPTIM_ADAM = 2, FNN_OPTIM_RMSPROP = 3, FNN_OPTIM_ADAGRAD = 4
} fnn_optim_kind;

typedef struct fnn_optim {
    int32_t kind;       /* an fnn_optim_kind */
    int32_t flag;       /* SGD: nesterov; ADAM: decoupled (AdamW) */
    float lr, weight_decay, eps;
    float momentum;     /* SGD, RMSPROP */
    float dampening;    /* SGD */
    float beta1, beta2; /* ADAM */
    float alpha;        /* RMSPROP */
    float lr_decay;     /* ADAGRAD */
    float max_grad_norm; /* > 0: fnn_clip_grad_norm before the update; 0: off */
    float *state0;      /* (P) SGD buf | ADAM m | RMSPROP sq | ADAGRAD sum (NULL if unused) */
    float *state1;      /* (P) ADAM v | RMSPROP buf (NULL if unused) */
} fnn_optim;

/* One optimizer update of the whole flat buffer (dispatches on o->kind),
   after scaling grads in place to norm <= o->max_grad_norm when that is > 0. */
fnn_status fnn_optim_step(const fnn_optim *o, float *params, float *grads,
                          int64_t P, int64_t step);

/* Floats of workspace that fnn_train_step / fnn_forward need for a batch
   of N rows (*size), or FNN_ERR_SIZE on an invalid plan. */
fnn_status fnn_plan_workspace(int64_t *size, const fnn_layer *layers, int64_t L, int64_t N);

/* out (N, OUT_last) = the plan's forward pass on x (N, IN_first) in
   evaluation mode (dropout is the identity). work: fnn_plan_workspace floats. */
fnn_status fnn_forward(float *out, const fnn_layer *layers, int64_t L,
                       const float *params, int64_t P, const float *x, int64_t N,
                       float *work, int64_t work_size);

/* One training step in one call: forward (training mode) on x (N, IN),
   loss against the target, grads = gradient (OVERWRITTEN, not accumulated),
   then one optimizer update of params with `step` (1-based).
   Targets: target_f (N, OUT) for MSE/MAE/HUBER/BCE; target_i (N) labels for
   CROSS_ENTROPY (checked before anything is written). Dropout keys come
   from fnn_dropout_key(seed, layer index, counter). work: fnn_plan_workspace
   floats; nothing is allocated beyond what fnn_sgemm may cache per thread.
   *loss receives the loss before the update. On error params are unchanged. */
fnn_status fnn_train_step(double *loss, const fnn_layer *layers, int64_t L,
                          float *params, float *grads, int64_t P,
                          const float *x, const float *target_f, const int64_t *target_i,
                          int64_t N, const fnn_loss *lossd, const fnn_optim *opt,
                          int64_t step, uint64_t seed, int64_t counter,
                          float *work, int64_t work_size, int64_t *bad_index);

#ifdef __cplusplus
}
#endif
#endif /* FASTNN_H */
