/*
 * fastnn.h -- the one public header of fastnn's C core.
 *
 * Plain C99, no Python. Every symbol is prefixed fnn_. An application can
 * compile the csrc C files and link against this header without Python (see
 * tests/c/test_core.c).
 *
 * Conventions:
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

/* Version of the library and of the C API (fnn_version() at run time). */
#define FASTNN_VERSION_MAJOR 0
#define FASTNN_VERSION_MINOR 2
#define FASTNN_VERSION_PATCH 0
#define FASTNN_VERSION "0.2.0"

/* FNN_API marks the exported symbols of libfastnn; everything else in the
   library is hidden. FNN_STATIC (set when the core is compiled into another
   binary, e.g. the Python extension) keeps the fnn_ symbols hidden too. */
#if defined(_WIN32) && !defined(FNN_STATIC)
#  ifdef FNN_BUILDING
#    define FNN_API __declspec(dllexport)
#  else
#    define FNN_API __declspec(dllimport)
#  endif
#elif (defined(__GNUC__) || defined(__clang__)) && !defined(FNN_STATIC)
#  define FNN_API __attribute__((visibility("default")))
#else
#  define FNN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fnn_status {
    FNN_OK = 0,
    FNN_ERR_SIZE = 1,     /* a size is negative, a product overflows, or ld too small */
    FNN_ERR_LABEL = 2,    /* a class label is out of range */
    FNN_ERR_NOMEM = 3,    /* an allocation failed */
    FNN_ERR_ARG = 4,      /* another bad argument (NULL pointer, bad scalar) */
    FNN_ERR_STATE = 5,    /* the call needs what the model lacks (no loss, no optimizer) */
    FNN_ERR_IO = 6,       /* a file could not be opened, read, written or renamed */
    FNN_ERR_FORMAT = 7    /* a model file is damaged, foreign or of another version */
} fnn_status;

/* A short English name for a status code (static storage, never NULL). */
FNN_API const char *fnn_status_string(fnn_status s);
/* What the last failing call of this thread said, in English (never NULL;
   "" before any error). Each failing call that knows more than its status
   code overwrites it. */
FNN_API const char *fnn_last_error(void);
/* FASTNN_VERSION of the library actually linked. */
FNN_API const char *fnn_version(void);

/* ---------------------------------------------------------------- threads */
/* Number of threads the kernels use: the value set by fnn_set_num_threads,
   else OpenMP's default (which honours OMP_NUM_THREADS). 1 without OpenMP. */
FNN_API int fnn_get_num_threads(void);
/* n >= 1 sets the count; n == 0 returns to OpenMP's default. */
FNN_API fnn_status fnn_set_num_threads(int n);
/* 1 if the core was compiled with OpenMP, else 0. */
FNN_API int fnn_has_openmp(void);

/* 1 if the n floats at x are all finite (no NaN, no +-Inf), else 0. */
FNN_API int fnn_all_finite(const float *x, int64_t n);

/* ------------------------------------------------------------------- gemm */
/* C = alpha * op(A) * op(B) + beta * C, with op(X) = X or X^T.
   op(A) is (M, K), op(B) is (K, N), C is (M, N); all row-major with leading
   dimensions lda, ldb, ldc (elements between consecutive rows).
   A is (M, K) if !transA else (K, M); B is (K, N) if !transB else (N, K).
   beta == 0: C is overwritten and never read (NaN in C is ignored).
   alpha == 0 or K == 0: C = beta * C; A and B are not read.
   Deterministic: K is never split across threads, so the result is bitwise
   identical for every thread count. */
FNN_API fnn_status fnn_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K,
                     float alpha, const float *A, int64_t lda,
                     const float *B, int64_t ldb,
                     float beta, float *C, int64_t ldc);
/* Heap allocations the core has made since it was loaded (GEMM packing
   buffers, cached per thread and grown on demand): flat across calls once
   warm, which is how the tests prove that a training step allocates nothing. */
FNN_API int64_t fnn_alloc_count(void);
/* Name of the micro-kernel in use, e.g. "generic". */
FNN_API const char *fnn_sgemm_kernel_name(void);
/* The cache blocks fnn_sgemm uses in this process (any pointer may be NULL):
   the kernel's, lowered to fit the L2 (mc) and L3 (nc) the OS reports, or
   FASTNN_GEMM_BLOCKS=mc,kc,nc (read at the first call). */
FNN_API void fnn_sgemm_blocking(int64_t *mc, int64_t *kc, int64_t *nc);

/* ------------------------------------------------------------------ dense */
/* y (N, OUT) = x (N, IN) . w (IN, OUT) + b (OUT). b may be NULL (no bias). */
FNN_API fnn_status fnn_dense_forward(float *y, const float *x, const float *w,
                             const float *b, int64_t N, int64_t IN, int64_t OUT);
/* dx (N, IN) = dy (N, OUT) . w^T           (OVERWRITTEN; dx may be NULL: skipped)
   dw (IN, OUT) += x^T . dy                  (ACCUMULATED)
   db (OUT) += sum over rows of dy           (ACCUMULATED; NULL: no bias) */
FNN_API fnn_status fnn_dense_backward(float *dx, float *dw, float *db,
                              const float *dy, const float *x, const float *w,
                              int64_t N, int64_t IN, int64_t OUT);

/* ----------------------------------------------------------------- sparse */
/* A CSR matrix (rows, cols) with nnz stored entries: row i holds the entries
   k in [indptr[i], indptr[i+1]), x[i, indices[k]] = data[k]. indptr[0] == 0,
   indptr is non-decreasing, indptr[rows] == nnz and every index lies in
   [0, cols); indices need not be sorted and a repeated (i, j) means the sum
   of its entries (scipy.sparse's CSR). */
typedef struct fnn_csr {
    const int64_t *indptr;   /* (rows + 1) */
    const int64_t *indices;  /* (nnz) column of each entry */
    const float *data;       /* (nnz) value of each entry */
    int64_t rows, cols, nnz;
} fnn_csr;

/* FNN_OK if x is a valid CSR matrix (above), else FNN_ERR_ARG naming the
   first bad indptr or index in fnn_last_error(). O(rows + nnz). */
FNN_API fnn_status fnn_csr_check(const fnn_csr *x);
/* y (rows, OUT) = x (rows, cols, CSR) . w (cols, OUT) + b (OUT or NULL).
   OVERWRITES y. Checks x first (fnn_csr_check). Deterministic. */
FNN_API fnn_status fnn_csr_dense_forward(float *y, const fnn_csr *x, const float *w,
                                         const float *b, int64_t OUT);
/* dw (cols, OUT) += x^T . dy (rows, OUT)    (ACCUMULATED)
   db (OUT) += sum over rows of dy           (ACCUMULATED; NULL: no bias)
   The input gradient is not computed. Checks x first. Deterministic: the
   same bits for every thread count. */
FNN_API fnn_status fnn_csr_dense_backward(float *dw, float *db, const float *dy,
                                          const fnn_csr *x, int64_t OUT);

/* ------------------------------------------------------------ activations */
/* Elementwise: y = f(x) over n floats. Backward: dx = dy * f'(x), where f'
   is computed from x and/or y (both must be given: the forward's input and
   output). dx is OVERWRITTEN and may alias dy. */
FNN_API fnn_status fnn_relu_forward(float *y, const float *x, int64_t n);
FNN_API fnn_status fnn_relu_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n);
/* f(x) = x if x > 0 else slope * x */
FNN_API fnn_status fnn_leaky_relu_forward(float *y, const float *x, int64_t n, float slope);
FNN_API fnn_status fnn_leaky_relu_backward(float *dx, const float *dy, const float *x,
                                   const float *y, int64_t n, float slope);
/* f(x) = 1 / (1 + exp(-x)), computed without overflow */
FNN_API fnn_status fnn_sigmoid_forward(float *y, const float *x, int64_t n);
FNN_API fnn_status fnn_sigmoid_backward(float *dx, const float *dy, const float *x,
                                const float *y, int64_t n);
FNN_API fnn_status fnn_tanh_forward(float *y, const float *x, int64_t n);
FNN_API fnn_status fnn_tanh_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n);
/* GELU, tanh approximation (Hendrycks & Gimpel 2016; PyTorch approximate='tanh'):
   f(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
FNN_API fnn_status fnn_gelu_forward(float *y, const float *x, int64_t n);
FNN_API fnn_status fnn_gelu_backward(float *dx, const float *dy, const float *x,
                             const float *y, int64_t n);
/* Row-wise softmax over x (N, C): y[i, j] = exp(x[i,j] - max_i) / sum_j(...).
   Backward: dx[i, j] = y[i, j] * (dy[i, j] - sum_k dy[i, k] y[i, k]). */
FNN_API fnn_status fnn_softmax_forward(float *y, const float *x, int64_t N, int64_t C);
FNN_API fnn_status fnn_softmax_backward(float *dx, const float *dy, const float *x,
                                const float *y, int64_t N, int64_t C);

/* ----------------------------------------------------------------- losses */
/* Each loss writes the mean loss to *loss (accumulated in double) and, when
   dpred is not NULL, OVERWRITES dpred (same shape as pred) with
   d(mean loss)/d(pred). pred and target are (N, D); the mean is over N*D. */
FNN_API fnn_status fnn_mse_loss(double *loss, float *dpred, const float *pred,
                        const float *target, int64_t N, int64_t D);
/* MAE (L1). The subgradient at pred == target is 0 (as PyTorch's sign). */
FNN_API fnn_status fnn_mae_loss(double *loss, float *dpred, const float *pred,
                        const float *target, int64_t N, int64_t D);
/* Huber: 0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta), r = pred - target.
   delta > 0. */
FNN_API fnn_status fnn_huber_loss(double *loss, float *dpred, const float *pred,
                          const float *target, int64_t N, int64_t D, float delta);
/* Binary cross-entropy on logits z with targets t in [0, 1]:
   l = -(pw * t * log sigmoid(z) + (1 - t) * log(1 - sigmoid(z))),
   computed stably as (1 - t) z + (1 + (pw - 1) t) softplus(-z).
   pos_weight (D) may be NULL (all ones), as PyTorch's BCEWithLogitsLoss. */
FNN_API fnn_status fnn_bce_with_logits_loss(double *loss, float *dpred, const float *logits,
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
FNN_API fnn_status fnn_cross_entropy_loss(double *loss, float *dpred, const float *logits,
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
FNN_API fnn_status fnn_sgd_update(float *params, float *buf, const float *grads, int64_t P,
                          int64_t step, float lr, float momentum, float dampening,
                          float weight_decay, int nesterov);
/* Adam (Kingma & Ba 2015) with bias correction; decoupled != 0 gives AdamW
   (Loshchilov & Hutter 2019: p -= lr * wd * p before the Adam step) else
   L2 (g += wd * p). m, v (P) are the first and second moment buffers. */
FNN_API fnn_status fnn_adam_update(float *params, float *m, float *v, const float *grads,
                           int64_t P, int64_t step, float lr, float beta1, float beta2,
                           float eps, float weight_decay, int decoupled);
/* RMSprop, PyTorch semantics: sq = alpha sq + (1 - alpha) g^2;
   if momentum > 0: buf = momentum buf + g / (sqrt(sq) + eps); p -= lr buf
   else p -= lr g / (sqrt(sq) + eps). buf may be NULL when momentum == 0. */
FNN_API fnn_status fnn_rmsprop_update(float *params, float *sq, float *buf, const float *grads,
                              int64_t P, int64_t step, float lr, float alpha, float eps,
                              float weight_decay, float momentum);
/* AdaGrad, PyTorch semantics: clr = lr / (1 + (step - 1) lr_decay);
   sum += g^2; p -= clr g / (sqrt(sum) + eps). */
FNN_API fnn_status fnn_adagrad_update(float *params, float *sum, const float *grads, int64_t P,
                              int64_t step, float lr, float lr_decay, float eps,
                              float weight_decay);

/* Scale grads (P) in place so that their global L2 norm is at most max_norm
   (> 0), as PyTorch's clip_grad_norm_: coef = max_norm / (norm + 1e-6),
   applied when < 1. *norm (may be NULL) receives the norm before clipping,
   computed in double with a fixed blocking (same bits for any thread count). */
FNN_API fnn_status fnn_clip_grad_norm(float *grads, int64_t P, float max_norm, double *norm);

/* ---------------------------------------------------------------- dropout */
/* Inverted dropout with a counter-based generator: element i is kept iff
   u(key, i) >= p, where u is the top 24 bits of splitmix64(key + i) / 2^24,
   and a kept element is scaled by 1 / (1 - p). The mask depends only on
   (key, i): no state, identical for every thread count and in the NumPy
   reference. 0 <= p < 1. Backward recomputes the mask: dx = dy * mask.
   dx may alias dy; y may alias x. */
FNN_API fnn_status fnn_dropout_forward(float *y, const float *x, int64_t n, float p, uint64_t key);
FNN_API fnn_status fnn_dropout_backward(float *dx, const float *dy, int64_t n, float p, uint64_t key);
/* The key of one dropout call: a hash of the model seed, the layer's index
   in the plan and the call counter (the training step). */
FNN_API uint64_t fnn_dropout_key(uint64_t seed, int64_t layer, int64_t counter);

/* ------------------------------------------------------------ permutation */
/* order (n) = a random permutation of 0..n-1, a pure function of (n, key):
   Fisher-Yates with exactly uniform draws from the splitmix64 generator
   seeded with key (csrc/permutation.c; fastnn/reference/permutation.py
   gives the same one). fit shuffles every epoch with it; a C application
   can pass it to fnn_model_train_epoch as fnn_epoch_args.order. */
FNN_API fnn_status fnn_permutation(int64_t *order, int64_t n, uint64_t key);

/* ---------------------------------------------------------------- pooling */
/* x (NC, H, W): NC = N * C planes, each pooled on its own (NCHW layout);
   y (NC, OH, OW) with OH = fnn_pool_out_size(H, kernel[0], stride[0],
   padding[0], ceil_mode) and OW likewise (see csrc/pool.c for the rules,
   PyTorch's). flags: FNN_POOL_CEIL_MODE, FNN_POOL_EXCLUDE_PAD (average:
   count_include_pad=False). Max pooling: the first largest element of a
   window wins (NaN propagates); backward recomputes it from x and y.
   dx is OVERWRITTEN (NULL: skipped). */
#define FNN_POOL_CEIL_MODE 1
#define FNN_POOL_EXCLUDE_PAD 2
/* conv2d / conv1d (fnn_attrs.flags): one more zero row at the bottom (dim 0
   of the kernel pair; conv1d: at the end) / column at the right (dim 1)
   than padding[] says: PyTorch's padding='same' when the total is odd. */
#define FNN_CONV_PAD_EXTRA_0 1
#define FNN_CONV_PAD_EXTRA_1 2
/* Output size of one pooled dimension, or -1 if the arguments are invalid
   (in, k, s >= 1, 0 <= p <= k / 2, k <= in + 2 p). */
FNN_API int64_t fnn_pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int ceil_mode);
FNN_API fnn_status fnn_max_pool2d_forward(float *y, const float *x, int64_t NC, int64_t H,
                                          int64_t W, const int64_t *kernel,
                                          const int64_t *stride, const int64_t *padding,
                                          int32_t flags);
FNN_API fnn_status fnn_max_pool2d_backward(float *dx, const float *dy, const float *x,
                                           const float *y, int64_t NC, int64_t H, int64_t W,
                                           const int64_t *kernel, const int64_t *stride,
                                           const int64_t *padding, int32_t flags);
FNN_API fnn_status fnn_avg_pool2d_forward(float *y, const float *x, int64_t NC, int64_t H,
                                          int64_t W, const int64_t *kernel,
                                          const int64_t *stride, const int64_t *padding,
                                          int32_t flags);
FNN_API fnn_status fnn_avg_pool2d_backward(float *dx, const float *dy, int64_t NC, int64_t H,
                                           int64_t W, const int64_t *kernel,
                                           const int64_t *stride, const int64_t *padding,
                                           int32_t flags);
/* Adaptive average pooling of (NC, H, W) to (NC, OH, OW): output i covers
   rows [floor(i H / OH), ceil((i + 1) H / OH)), columns likewise. */
FNN_API fnn_status fnn_adaptive_avg_pool2d_forward(float *y, const float *x, int64_t NC,
                                                   int64_t H, int64_t W, int64_t OH,
                                                   int64_t OW);
FNN_API fnn_status fnn_adaptive_avg_pool2d_backward(float *dx, const float *dy, int64_t NC,
                                                    int64_t H, int64_t W, int64_t OH,
                                                    int64_t OW);

/* ---------------------------------------------------------- normalization */
/* Batch norm over x (N, C, S) (S = 1 for (C,) samples, L or H * W), PyTorch
   semantics (csrc/norm.c): training != 0, or running_mean == NULL (not
   tracked): batch mean and biased variance normalize, and the running
   statistics (when given) move by momentum with the unbiased variance;
   *num_batches (may be NULL unless FNN_NORM_CUMULATIVE) counts training
   calls, and FNN_NORM_CUMULATIVE uses momentum 1 / *num_batches (PyTorch's
   momentum=None). Else the running statistics normalize. weight, bias
   (C) may be NULL (1 and 0). Batch statistics of a single value per
   channel (N * S == 1) are an error. Backward recomputes the batch
   statistics from x (nothing is stored): dx OVERWRITTEN (NULL: skipped),
   dweight, dbias (C, NULL: skipped) ACCUMULATED. The same bits for any
   thread count. */
#define FNN_NORM_NO_STATS 1     /* batch norm: track_running_stats=False (no buffers) */
#define FNN_NORM_CUMULATIVE 2   /* batch norm: momentum=None (cumulative average) */
#define FNN_NORM_NO_BIAS 4      /* layer norm: elementwise_affine with bias=False */
FNN_API fnn_status fnn_batch_norm_forward(float *y, const float *x, const float *weight,
                                          const float *bias, float *running_mean,
                                          float *running_var, float *num_batches, int64_t N,
                                          int64_t C, int64_t S, int training, float momentum,
                                          float eps, int32_t flags);
FNN_API fnn_status fnn_batch_norm_backward(float *dx, float *dweight, float *dbias,
                                           const float *dy, const float *x,
                                           const float *weight, const float *running_mean,
                                           const float *running_var, int64_t N, int64_t C,
                                           int64_t S, int training, float eps);
/* Layer norm over the rows of x (R, D): y = (x - mean) rstd weight + bias
   with each row's mean and biased variance, rstd = 1 / sqrt(var + eps);
   stats (R, 2) receives (mean, rstd) for backward. weight and bias (D) may
   be NULL (bias only with a weight). Backward: dx OVERWRITTEN (NULL:
   skipped), dweight, dbias ACCUMULATED. */
FNN_API fnn_status fnn_layer_norm_forward(float *y, float *stats, const float *x,
                                          const float *weight, const float *bias, int64_t R,
                                          int64_t D, float eps);
FNN_API fnn_status fnn_layer_norm_backward(float *dx, float *dweight, float *dbias,
                                           const float *dy, const float *x,
                                           const float *weight, const float *stats,
                                           int64_t R, int64_t D);

/* ------------------------------------------------------ shapes and ops */
/* A network is a list of nodes over numbered tensor slots. Slot 0 is the
   model input; node i reads slot(s) in[] and writes slot out. Every tensor
   has a per-sample shape of 1..FNN_MAX_DIMS dimensions (e.g. (C, H, W));
   the batch N comes first at run time, so a tensor is (N, dim[0], ...)
   row-major. Each op is described once, in the op table of csrc/ops.c:
   its name, how it derives its output shape, its parameter, buffer and
   scratch sizes, its initialisation and its forward and backward kernels. */
#define FNN_MAX_DIMS 3
#define FNN_NAME_MAX 24    /* op, loss and optimizer names, with the NUL */

typedef struct fnn_shape {
    int32_t ndim;                  /* 1..FNN_MAX_DIMS */
    int32_t reserved;
    int64_t dim[FNN_MAX_DIMS];     /* per-sample sizes; dim[ndim..] are 0 */
} fnn_shape;

/* Linear weight initialisation (biases start at 0). */
typedef enum fnn_init {
    FNN_INIT_AUTO = 0,     /* he before a ReLU-family activation, else xavier */
    FNN_INIT_HE = 1,       /* U(-a, a), a = sqrt(6 / fan_in) */
    FNN_INIT_XAVIER = 2    /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
} fnn_init;

/* Typed attributes of one node; each op reads the fields it documents in
   the table and ignores the rest (keep them 0). */
typedef struct fnn_attrs {
    int64_t units;          /* linear: output features */
    int64_t kernel[2];      /* conv/pool: kernel size (h, w) */
    int64_t stride[2];      /* conv/pool: stride */
    int64_t padding[2];     /* conv/pool: zero padding */
    int64_t dilation[2];    /* conv: dilation */
    int64_t groups;         /* conv: groups */
    int64_t axis;           /* softmax: 1 (the feature axis) */
    int32_t bias;           /* linear: 1 with a bias; norms: 1 with affine */
    int32_t init;           /* linear: an fnn_init */
    int32_t flags;          /* op-specific switches: FNN_POOL_*, FNN_NORM_* */
    int32_t reserved;
    float slope;            /* leaky_relu: negative slope */
    float p;                /* dropout: drop probability in [0, 1) */
    float eps;              /* norms: epsilon */
    float momentum;         /* batch norm: running-statistics momentum */
} fnn_attrs;

/* Slots: node i writes slot i + 1 and reads slots written before it. So far
   fnn_model_create accepts chains only: node i reads slot i and in[1] = -1
   (the slot numbering already leaves room for ops with two inputs). */
typedef struct fnn_node {
    char op[FNN_NAME_MAX];  /* an op name of the table, e.g. "linear" */
    int32_t in[2];          /* slots read; in[1] = -1 for a unary op */
    int32_t out;            /* slot written (i + 1 for node i) */
    int32_t reserved;
    fnn_attrs attrs;
} fnn_node;

/* Number of ops in the table, and the name of op i (NULL out of range). */
FNN_API int32_t fnn_op_count(void);
FNN_API const char *fnn_op_name(int32_t i);

/* What one node is, once its input shape is known. */
typedef struct fnn_node_info {
    fnn_shape out_shape;    /* per-sample output shape */
    int64_t param_offset;   /* of its parameters in the flat buffers */
    int64_t num_params;
    int64_t buffer_offset;  /* of its non-trainable buffers (running stats) */
    int64_t num_buffers;
    int64_t scratch_per_row;/* floats of scratch per batch row it uses */
} fnn_node_info;

/* Validate one node on a per-sample input shape and describe it (the
   offsets are 0). FNN_ERR_ARG names the problem in fnn_last_error(). */
FNN_API fnn_status fnn_op_describe(fnn_node_info *info, const fnn_node *node,
                                   const fnn_shape *in);

/* One op on its own (what the Python layer-by-layer path calls): forward
   y (N, out) from x (N, in); params (num_params) and buffers (num_buffers)
   may be NULL when the op has none; training != 0 selects training
   behaviour (dropout active, with `key`). scratch: N * scratch_per_row
   floats, or NULL when that is 0. */
FNN_API fnn_status fnn_op_forward(const fnn_node *node, const fnn_shape *in, int64_t N,
                                  float *y, const float *x, const float *params,
                                  float *buffers, float *scratch, int training,
                                  uint64_t key);
/* Backward of the same call: dx (N, in) OVERWRITTEN (NULL: not needed),
   grads (num_params) ACCUMULATED, from dy (N, out), x and y of the forward,
   its buffers (read only: batch norm in evaluation mode reads the running
   statistics; NULL when the op has none), its scratch and its `training`. */
FNN_API fnn_status fnn_op_backward(const fnn_node *node, const fnn_shape *in, int64_t N,
                                   float *dx, float *grads, const float *dy,
                                   const float *x, const float *y, const float *params,
                                   const float *buffers, float *scratch, int training,
                                   uint64_t key);
/* Fill params (num_params) with the op's initial values from (seed, node
   index), and buffers (num_buffers) with their start values. `next` is the
   node after it (NULL if last): FNN_INIT_AUTO looks at it. The uniform draws
   are u_i = (splitmix64(key + i) >> 11) 2^-53 with key =
   fnn_dropout_key(seed, index, -1), so the NumPy reference reproduces them. */
FNN_API fnn_status fnn_op_init(const fnn_node *node, const fnn_shape *in,
                               const fnn_node *next, float *params, float *buffers,
                               uint64_t seed, int64_t index);

/* ------------------------------------------------------ losses, optimizers */
/* Losses and optimizers are tables too (csrc/ops.c), chosen by name. */
typedef struct fnn_loss_desc {
    const char *name;       /* "mse", "mae", "huber", "bce_with_logits", "cross_entropy" */
    float delta;            /* huber */
    const float *weight;    /* cross_entropy: class weights (C); bce: pos_weight (D);
                               NULL: none. The model keeps a copy. */
    int64_t weight_len;
    int64_t ignore_index;   /* cross_entropy (PyTorch default -100) */
} fnn_loss_desc;

#define FNN_MAX_STATE 2
typedef struct fnn_optim_desc {
    const char *name;       /* "sgd", "adam", "adamw", "rmsprop", "adagrad" */
    float lr, weight_decay, eps;
    float momentum;         /* sgd, rmsprop */
    float dampening;        /* sgd */
    float beta1, beta2;     /* adam, adamw */
    float alpha;            /* rmsprop */
    float lr_decay;         /* adagrad */
    float max_grad_norm;    /* > 0: clip the global gradient norm first; 0: off */
    int32_t nesterov;       /* sgd */
    int32_t reserved;
    /* State buffers of P floats each (sgd: momentum buf; adam: m, v;
       rmsprop: square average, momentum buf; adagrad: sum), or NULL: the
       model allocates them zeroed and owns them. Given pointers are
       borrowed: they must outlive the model's use of this optimizer. */
    float *state[FNN_MAX_STATE];
} fnn_optim_desc;

/* The loss and optimizer tables: how many entries, and the name of entry i
   (NULL out of range). */
FNN_API int32_t fnn_loss_count(void);
FNN_API const char *fnn_loss_name(int32_t i);
FNN_API int32_t fnn_optim_count(void);
FNN_API const char *fnn_optim_name(int32_t i);

/* Number of state buffers optimizer `name` uses with these settings
   (e.g. sgd without momentum: 0), or -1 for an unknown name. */
FNN_API int32_t fnn_optim_num_state(const fnn_optim_desc *d);

/* One update of flat buffers params, grads (P) with the optimizer d at step
   t (1-based), after clipping grads in place when d->max_grad_norm > 0.
   d->state must hold fnn_optim_num_state(d) non-NULL buffers. */
FNN_API fnn_status fnn_optim_step(const fnn_optim_desc *d, float *params, float *grads,
                                  int64_t P, int64_t t);

/* Mean loss of pred (N, D) against target (N, D) floats or labels (N), and
   dpred (N, D) = d(loss)/d(pred) OVERWRITTEN when not NULL. *bad_index (may
   be NULL) gets the first row with a label out of range (FNN_ERR_LABEL). */
FNN_API fnn_status fnn_loss_eval(const fnn_loss_desc *d, double *loss, float *dpred,
                                 const float *pred, const float *target,
                                 const int64_t *labels, int64_t N, int64_t D,
                                 int64_t *bad_index);
/* The same with per-row (sample) weights: loss = sum_i w_i l_i / denom, where
   l_i is row i's loss (its class weight included; summed over the D outputs
   and divided by D for the elementwise losses). sample_weight (N) finite and
   >= 0, or NULL (all 1); denom <= 0: the total weight, sum_i w_i (times the
   class weight for cross-entropy), a weighted mean; denom > 0: a fixed
   denominator (Keras divides by N; a data-parallel rank by the global batch). */
FNN_API fnn_status fnn_loss_eval_weighted(const fnn_loss_desc *d, double *loss, float *dpred,
                                          const float *pred, const float *target,
                                          const int64_t *labels, const float *sample_weight,
                                          double denom, int64_t N, int64_t D,
                                          int64_t *bad_index);

/* ------------------------------------------------------------ the model */
/* fnn_model owns a network's layout, its flat parameter, gradient and
   buffer arrays, its loss and optimizer (with their state unless borrowed)
   and a training workspace. One model is not for concurrent training;
   fnn_model_forward with a caller workspace may run in many threads. */
typedef struct fnn_model fnn_model;

typedef struct fnn_model_desc {
    fnn_shape input;        /* per-sample input shape */
    int32_t num_nodes;
    int32_t reserved;
    const fnn_node *nodes;  /* num_nodes nodes, in execution order */
} fnn_model_desc;

/* Create a model and initialise its parameters from seed (fnn_op_init of
   every node). *out is NULL on error; fnn_last_error() says why. */
FNN_API fnn_status fnn_model_create(fnn_model **out, const fnn_model_desc *desc,
                                    uint64_t seed);
/* Validate a description as fnn_model_create does and give the parameter
   and buffer counts it needs, without allocating them. */
FNN_API fnn_status fnn_model_desc_sizes(const fnn_model_desc *desc, int64_t *num_params,
                                        int64_t *num_buffers);
/* Free a model (NULL is fine). */
FNN_API void fnn_model_free(fnn_model *m);
/* Re-initialise parameters and buffers from seed; zero gradients, the
   optimizer state and the step and dropout counters. */
FNN_API fnn_status fnn_model_init(fnn_model *m, uint64_t seed);

/* Layout queries. The arrays returned are the model's own (P, P, B floats). */
FNN_API int32_t fnn_model_num_nodes(const fnn_model *m);
FNN_API const fnn_node *fnn_model_node(const fnn_model *m, int32_t i);
FNN_API fnn_status fnn_model_node_info(const fnn_model *m, int32_t i, fnn_node_info *info);
FNN_API fnn_shape fnn_model_input_shape(const fnn_model *m);
FNN_API fnn_shape fnn_model_output_shape(const fnn_model *m);
FNN_API int64_t fnn_model_num_params(const fnn_model *m);
FNN_API int64_t fnn_model_num_buffers(const fnn_model *m);
FNN_API float *fnn_model_params(fnn_model *m);
FNN_API float *fnn_model_grads(fnn_model *m);
FNN_API float *fnn_model_buffers(fnn_model *m);
FNN_API uint64_t fnn_model_seed(const fnn_model *m);
/* Optimizer steps taken and training forward passes made (dropout keys);
   a caller that also trains outside the model (Python's layer-by-layer
   path) sets them before the next fused step. */
FNN_API int64_t fnn_model_step(const fnn_model *m);
FNN_API int64_t fnn_model_counter(const fnn_model *m);
FNN_API void fnn_model_set_counters(fnn_model *m, int64_t step, int64_t counter);

/* Opaque application bytes kept with the model and in its file (Python
   stores its layer options and preprocessing there as JSON). */
FNN_API fnn_status fnn_model_set_metadata(fnn_model *m, const char *bytes, int64_t len);
FNN_API const char *fnn_model_metadata(const fnn_model *m, int64_t *len);

FNN_API fnn_status fnn_model_set_loss(fnn_model *m, const fnn_loss_desc *d);
FNN_API fnn_status fnn_model_set_optimizer(fnn_model *m, const fnn_optim_desc *d);

/* Floats of workspace a batch of n rows needs: training != 0 for
   fnn_model_train_step (every activation is kept), else for forward. */
FNN_API fnn_status fnn_model_workspace_size(const fnn_model *m, int64_t n, int training,
                                            int64_t *floats);

/* out (n, output) = the forward pass of x (n, input) in evaluation mode
   (dropout is the identity, batch norm uses running statistics). work:
   fnn_model_workspace_size(m, n, 0) floats, or NULL to allocate one for the
   call. Reads nothing the call does not own but m: thread-safe with
   distinct work and out. */
FNN_API fnn_status fnn_model_forward(const fnn_model *m, float *out, const float *x,
                                     int64_t n, float *work, int64_t work_size);
/* The same with a CSR batch x (x->rows rows, x->cols == the input size,
   checked with fnn_csr_check): node 0 must be linear, and it runs the sparse
   product of fnn_csr_dense_forward; the whole matrix is never densified. */
FNN_API fnn_status fnn_model_forward_csr(const fnn_model *m, float *out, const fnn_csr *x,
                                         float *work, int64_t work_size);

typedef struct fnn_train_args {
    const float *x;         /* (n, input) */
    const float *target;    /* (n, output) float targets, or NULL */
    const int64_t *labels;  /* (n) class labels (cross_entropy), or NULL */
    int64_t n;              /* batch rows, >= 1 */
    float *work;            /* fnn_model_workspace_size(m, n, 1) floats, or NULL:
                               the model's own (grown once, then reused) */
    int64_t work_size;
    const float *sample_weight;  /* (n) row weights, or NULL (all 1) */
    double denom;           /* the loss's denominator (fnn_loss_eval_weighted);
                               <= 0: the total weight (the plain mean unweighted) */
    const fnn_csr *x_csr;   /* (n, input) CSR batch instead of x (x then NULL), or
                               NULL; node 0 must be linear and runs the sparse
                               kernels of fnn_csr_dense_forward/backward */
} fnn_train_args;

typedef struct fnn_train_result {
    double loss;            /* mean loss of the batch, before the update */
    int64_t bad_index;      /* FNN_ERR_LABEL: the first row with a bad label */
    int64_t output_offset;  /* the outputs (n, output) lie at work + output_offset */
} fnn_train_result;

/* One training step in one call: forward (training mode), loss, backward
   (gradients OVERWRITTEN), one optimizer update. Needs a loss and an
   optimizer. Allocates nothing once the workspace exists. On error the
   parameters are unchanged. Zero-initialise the args (memset) so that
   fields added later keep their defaults. */
FNN_API fnn_status fnn_model_train_step(fnn_model *m, const fnn_train_args *a,
                                        fnn_train_result *r);

/* The two halves of fnn_model_train_step, for a caller that works on the
   gradients in between (averages them across processes, feeds an external
   optimizer such as L-BFGS): compute_gradients runs the forward pass, the
   loss and the backward pass (needs a loss, not an optimizer), OVERWRITES
   the gradients and changes nothing else; apply_gradients clips and
   applies one optimizer update from the current gradients and advances the
   step and dropout counters. compute then apply equals one train step. */
FNN_API fnn_status fnn_model_compute_gradients(fnn_model *m, const fnn_train_args *a,
                                               fnn_train_result *r);
FNN_API fnn_status fnn_model_apply_gradients(fnn_model *m);

/* Many training steps in one call: batches of batch_size rows (the last one
   shorter) taken in `order` from the whole data set, each gathered into the
   model's own buffers and trained exactly as fnn_model_train_step would. */
typedef struct fnn_epoch_args {
    const float *x;         /* (rows, input): the whole training set */
    const float *target;    /* (rows, output) float targets, or NULL */
    const int64_t *labels;  /* (rows) class labels (cross_entropy), or NULL */
    int64_t rows;
    const int64_t *order;   /* (rows) a permutation of 0..rows-1, or NULL: in order */
    int64_t batch_size;     /* >= 1 */
    int64_t first_batch;    /* run batches first_batch, first_batch + 1, ... */
    int64_t max_batches;    /* at most this many (<= 0: to the end of the epoch) */
    int32_t metric;         /* FNN_METRIC_*: what `correct` counts */
    int32_t weight_norm;    /* with sample_weight: FNN_WEIGHTS_MEAN or FNN_WEIGHTS_ROWS */
    const float *sample_weight;  /* (rows) row weights, gathered like x; or NULL */
} fnn_epoch_args;

#define FNN_WEIGHTS_MEAN 0      /* each batch's loss: sum w l / sum w (sklearn) */
#define FNN_WEIGHTS_ROWS 1      /* each batch's loss: sum w l / its rows (Keras) */

#define FNN_METRIC_NONE 0
#define FNN_METRIC_ARGMAX 1     /* rows whose first largest output is the label */
#define FNN_METRIC_SIGN 2       /* per batch: #((out > 0) == (target > 0.5)) / output */

typedef struct fnn_epoch_result {
    double loss_sum;        /* IN/OUT: += each batch's loss * its rows, in order */
    double correct;         /* IN/OUT: += each batch's metric, in order */
    int64_t rows, batches;  /* OUT: rows and batches trained by this call */
    int64_t stop_batch;     /* OUT: -1, or the batch whose loss was not finite (it was
                               applied; the call stopped after it) */
    int64_t bad_index;      /* OUT: FNN_ERR_LABEL: the row of the data set */
    double last_loss;       /* OUT: the loss of the last batch trained */
} fnn_epoch_result;

FNN_API fnn_status fnn_model_train_epoch(fnn_model *m, const fnn_epoch_args *a,
                                         fnn_epoch_result *r);

/* The output_offset a train step on n rows reports, without running one. */
FNN_API fnn_status fnn_model_output_offset(const fnn_model *m, int64_t n, int64_t *offset);

/* ---------------------------------------------------------- model files */
/* The model file (format version 2, described in csrc/model_io.c): the
   layout, parameters, buffers, seed and metadata, with a SHA-256 checksum.
   Saving writes a temporary file beside path, fsyncs it and renames it
   over path: a crash leaves the old file or the new one. */
FNN_API fnn_status fnn_model_save(const fnn_model *m, const char *path);
/* Read a file written by fnn_model_save or fastnn.save. Every size is
   checked against the file's length before anything is allocated. */
FNN_API fnn_status fnn_model_load(fnn_model **out, const char *path);
/* The same from memory (len bytes). */
FNN_API fnn_status fnn_model_load_bytes(fnn_model **out, const unsigned char *data,
                                        int64_t len);

#ifdef __cplusplus
}
#endif
#endif /* FASTNN_H */
