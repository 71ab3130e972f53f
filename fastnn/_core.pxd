# cython: language_level=3
"""The C API of csrc/fastnn.h as Cython declarations (one copy, cimported by
_core.pyx and by any other Cython module that calls the core)."""
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "fastnn.h" nogil:
    ctypedef enum fnn_status:
        FNN_OK
        FNN_ERR_SIZE
        FNN_ERR_LABEL
        FNN_ERR_NOMEM
        FNN_ERR_ARG
        FNN_ERR_STATE
        FNN_ERR_IO
        FNN_ERR_FORMAT
    const char *fnn_status_string(fnn_status s)
    const char *fnn_last_error()
    const char *fnn_version()
    int fnn_get_num_threads()
    fnn_status fnn_set_num_threads(int n)
    int fnn_has_openmp()
    fnn_status fnn_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K,
                         float alpha, const float *A, int64_t lda,
                         const float *B, int64_t ldb,
                         float beta, float *C, int64_t ldc)
    const char *fnn_sgemm_kernel_name()
    void fnn_sgemm_blocking(int64_t *mc, int64_t *kc, int64_t *nc)
    int64_t fnn_alloc_count()
    int fnn_all_finite(const float *x, int64_t n)
    fnn_status fnn_dense_forward(float *y, const float *x, const float *w,
                                 const float *b, int64_t N, int64_t IN, int64_t OUT)
    fnn_status fnn_dense_backward(float *dx, float *dw, float *db,
                                  const float *dy, const float *x, const float *w,
                                  int64_t N, int64_t IN, int64_t OUT)
    ctypedef struct fnn_csr:
        const int64_t *indptr
        const int64_t *indices
        const float *data
        int64_t rows, cols, nnz
    fnn_status fnn_csr_check(const fnn_csr *x)
    fnn_status fnn_csr_dense_forward(float *y, const fnn_csr *x, const float *w,
                                     const float *b, int64_t OUT)
    fnn_status fnn_csr_dense_backward(float *dw, float *db, const float *dy,
                                      const fnn_csr *x, int64_t OUT)
    fnn_status fnn_relu_forward(float *y, const float *x, int64_t n)
    fnn_status fnn_relu_backward(float *dx, const float *dy, const float *x,
                                 const float *y, int64_t n)
    fnn_status fnn_leaky_relu_forward(float *y, const float *x, int64_t n, float slope)
    fnn_status fnn_leaky_relu_backward(float *dx, const float *dy, const float *x,
                                       const float *y, int64_t n, float slope)
    fnn_status fnn_sigmoid_forward(float *y, const float *x, int64_t n)
    fnn_status fnn_sigmoid_backward(float *dx, const float *dy, const float *x,
                                    const float *y, int64_t n)
    fnn_status fnn_tanh_forward(float *y, const float *x, int64_t n)
    fnn_status fnn_tanh_backward(float *dx, const float *dy, const float *x,
                                 const float *y, int64_t n)
    fnn_status fnn_gelu_forward(float *y, const float *x, int64_t n)
    fnn_status fnn_gelu_backward(float *dx, const float *dy, const float *x,
                                 const float *y, int64_t n)
    fnn_status fnn_softmax_forward(float *y, const float *x, int64_t N, int64_t C)
    fnn_status fnn_softmax_backward(float *dx, const float *dy, const float *x,
                                    const float *y, int64_t N, int64_t C)
    fnn_status fnn_mse_loss(double *loss, float *dpred, const float *pred,
                            const float *target, int64_t N, int64_t D)
    fnn_status fnn_mae_loss(double *loss, float *dpred, const float *pred,
                            const float *target, int64_t N, int64_t D)
    fnn_status fnn_huber_loss(double *loss, float *dpred, const float *pred,
                              const float *target, int64_t N, int64_t D, float delta)
    fnn_status fnn_bce_with_logits_loss(double *loss, float *dpred, const float *logits,
                                        const float *target, const float *pos_weight,
                                        int64_t N, int64_t D)
    fnn_status fnn_cross_entropy_loss(double *loss, float *dpred, const float *logits,
                                      const int64_t *labels, const float *weight,
                                      int64_t N, int64_t C, int64_t ignore_index,
                                      int64_t *bad_index)
    fnn_status fnn_sgd_update(float *params, float *buf, const float *grads, int64_t P,
                              int64_t step, float lr, float momentum, float dampening,
                              float weight_decay, int nesterov)
    fnn_status fnn_adam_update(float *params, float *m, float *v, const float *grads,
                               int64_t P, int64_t step, float lr, float beta1, float beta2,
                               float eps, float weight_decay, int decoupled)
    fnn_status fnn_rmsprop_update(float *params, float *sq, float *buf, const float *grads,
                                  int64_t P, int64_t step, float lr, float alpha, float eps,
                                  float weight_decay, float momentum)
    fnn_status fnn_adagrad_update(float *params, float *sum, const float *grads, int64_t P,
                                  int64_t step, float lr, float lr_decay, float eps,
                                  float weight_decay)
    fnn_status fnn_dropout_forward(float *y, const float *x, int64_t n, float p, uint64_t key)
    fnn_status fnn_dropout_backward(float *dx, const float *dy, int64_t n, float p, uint64_t key)
    uint64_t fnn_dropout_key(uint64_t seed, int64_t layer, int64_t counter)
    fnn_status fnn_permutation(int64_t *order, int64_t n, uint64_t key)
    fnn_status fnn_clip_grad_norm(float *grads, int64_t P, float max_norm, double *norm)

    # --- pooling and normalization (csrc/pool.c, csrc/norm.c)
    enum: FNN_POOL_CEIL_MODE
    enum: FNN_POOL_EXCLUDE_PAD
    enum: FNN_NORM_NO_STATS
    enum: FNN_NORM_CUMULATIVE
    enum: FNN_NORM_NO_BIAS
    int64_t fnn_pool_out_size(int64_t in_, int64_t k, int64_t s, int64_t p, int ceil_mode)
    fnn_status fnn_max_pool2d_forward(float *y, const float *x, int64_t NC, int64_t H,
                                      int64_t W, const int64_t *kernel, const int64_t *stride,
                                      const int64_t *padding, int32_t flags)
    fnn_status fnn_max_pool2d_backward(float *dx, const float *dy, const float *x,
                                       const float *y, int64_t NC, int64_t H, int64_t W,
                                       const int64_t *kernel, const int64_t *stride,
                                       const int64_t *padding, int32_t flags)
    fnn_status fnn_avg_pool2d_forward(float *y, const float *x, int64_t NC, int64_t H,
                                      int64_t W, const int64_t *kernel, const int64_t *stride,
                                      const int64_t *padding, int32_t flags)
    fnn_status fnn_avg_pool2d_backward(float *dx, const float *dy, int64_t NC, int64_t H,
                                       int64_t W, const int64_t *kernel, const int64_t *stride,
                                       const int64_t *padding, int32_t flags)
    fnn_status fnn_adaptive_avg_pool2d_forward(float *y, const float *x, int64_t NC,
                                               int64_t H, int64_t W, int64_t OH, int64_t OW)
    fnn_status fnn_adaptive_avg_pool2d_backward(float *dx, const float *dy, int64_t NC,
                                                int64_t H, int64_t W, int64_t OH, int64_t OW)
    fnn_status fnn_batch_norm_forward(float *y, const float *x, const float *weight,
                                      const float *bias, float *running_mean,
                                      float *running_var, float *num_batches, int64_t N,
                                      int64_t C, int64_t S, int training, float momentum,
                                      float eps, int32_t flags)
    fnn_status fnn_batch_norm_backward(float *dx, float *dweight, float *dbias,
                                       const float *dy, const float *x, const float *weight,
                                       const float *running_mean, const float *running_var,
                                       int64_t N, int64_t C, int64_t S, int training, float eps)
    fnn_status fnn_layer_norm_forward(float *y, float *stats, const float *x,
                                      const float *weight, const float *bias, int64_t R,
                                      int64_t D, float eps)
    fnn_status fnn_layer_norm_backward(float *dx, float *dweight, float *dbias,
                                       const float *dy, const float *x, const float *weight,
                                       const float *stats, int64_t R, int64_t D)

    # --- shapes, nodes, the op table
    enum: FNN_MAX_DIMS
    enum: FNN_NAME_MAX
    enum: FNN_MAX_STATE
    enum: FNN_WEIGHTS_MEAN
    enum: FNN_WEIGHTS_ROWS
    ctypedef struct fnn_shape:
        int32_t ndim
        int64_t dim[3]
    ctypedef struct fnn_attrs:
        int64_t units
        int64_t kernel[2]
        int64_t stride[2]
        int64_t padding[2]
        int64_t dilation[2]
        int64_t groups
        int64_t axis
        int32_t bias
        int32_t init
        int32_t flags
        float slope
        float p
        float eps
        float momentum
    ctypedef struct fnn_node:
        char op[24]
        int32_t in_ "in"[2]
        int32_t out
        fnn_attrs attrs
    ctypedef struct fnn_node_info:
        fnn_shape out_shape
        int64_t param_offset
        int64_t num_params
        int64_t buffer_offset
        int64_t num_buffers
        int64_t scratch_per_row
    int32_t fnn_op_count()
    const char *fnn_op_name(int32_t i)
    fnn_status fnn_op_describe(fnn_node_info *info, const fnn_node *node, const fnn_shape *in_)
    fnn_status fnn_op_forward(const fnn_node *node, const fnn_shape *in_, int64_t N,
                              float *y, const float *x, const float *params,
                              float *buffers, float *scratch, int training, uint64_t key)
    fnn_status fnn_op_backward(const fnn_node *node, const fnn_shape *in_, int64_t N,
                               float *dx, float *grads, const float *dy,
                               const float *x, const float *y, const float *params,
                               const float *buffers, float *scratch, int training,
                               uint64_t key)
    fnn_status fnn_op_init(const fnn_node *node, const fnn_shape *in_, const fnn_node *next,
                           float *params, float *buffers, uint64_t seed, int64_t index)

    # --- losses and optimizers
    ctypedef struct fnn_loss_desc:
        const char *name
        float delta
        const float *weight
        int64_t weight_len
        int64_t ignore_index
    ctypedef struct fnn_optim_desc:
        const char *name
        float lr, weight_decay, eps, momentum, dampening, beta1, beta2, alpha, lr_decay
        float max_grad_norm
        int32_t nesterov
        float *state[2]
    int32_t fnn_loss_count()
    const char *fnn_loss_name(int32_t i)
    int32_t fnn_optim_count()
    const char *fnn_optim_name(int32_t i)
    int32_t fnn_optim_num_state(const fnn_optim_desc *d)
    fnn_status fnn_optim_step(const fnn_optim_desc *d, float *params, float *grads,
                              int64_t P, int64_t t)
    fnn_status fnn_loss_eval(const fnn_loss_desc *d, double *loss, float *dpred,
                             const float *pred, const float *target, const int64_t *labels,
                             int64_t N, int64_t D, int64_t *bad_index)
    fnn_status fnn_loss_eval_weighted(const fnn_loss_desc *d, double *loss, float *dpred,
                                      const float *pred, const float *target,
                                      const int64_t *labels, const float *sample_weight,
                                      double denom, int64_t N, int64_t D, int64_t *bad_index)

    # --- the model
    ctypedef struct fnn_model:
        pass
    ctypedef struct fnn_model_desc:
        fnn_shape input
        int32_t num_nodes
        const fnn_node *nodes
    ctypedef struct fnn_train_args:
        const float *x
        const float *target
        const int64_t *labels
        int64_t n
        float *work
        int64_t work_size
        const float *sample_weight
        double denom
        const fnn_csr *x_csr
    ctypedef struct fnn_train_result:
        double loss
        int64_t bad_index
        int64_t output_offset
    fnn_status fnn_model_create(fnn_model **out, const fnn_model_desc *desc, uint64_t seed)
    fnn_status fnn_model_desc_sizes(const fnn_model_desc *desc, int64_t *num_params,
                                    int64_t *num_buffers)
    void fnn_model_free(fnn_model *m)
    fnn_status fnn_model_init(fnn_model *m, uint64_t seed)
    int32_t fnn_model_num_nodes(const fnn_model *m)
    const fnn_node *fnn_model_node(const fnn_model *m, int32_t i)
    fnn_status fnn_model_node_info(const fnn_model *m, int32_t i, fnn_node_info *info)
    fnn_shape fnn_model_input_shape(const fnn_model *m)
    fnn_shape fnn_model_output_shape(const fnn_model *m)
    int64_t fnn_model_num_params(const fnn_model *m)
    int64_t fnn_model_num_buffers(const fnn_model *m)
    float *fnn_model_params(fnn_model *m)
    float *fnn_model_grads(fnn_model *m)
    float *fnn_model_buffers(fnn_model *m)
    uint64_t fnn_model_seed(const fnn_model *m)
    int64_t fnn_model_step(const fnn_model *m)
    int64_t fnn_model_counter(const fnn_model *m)
    void fnn_model_set_counters(fnn_model *m, int64_t step, int64_t counter)
    fnn_status fnn_model_set_metadata(fnn_model *m, const char *data, int64_t len)
    const char *fnn_model_metadata(const fnn_model *m, int64_t *len)
    fnn_status fnn_model_set_loss(fnn_model *m, const fnn_loss_desc *d)
    fnn_status fnn_model_set_optimizer(fnn_model *m, const fnn_optim_desc *d)
    fnn_status fnn_model_workspace_size(const fnn_model *m, int64_t n, int training,
                                        int64_t *floats)
    fnn_status fnn_model_forward(const fnn_model *m, float *out, const float *x, int64_t n,
                                 float *work, int64_t work_size)
    fnn_status fnn_model_forward_csr(const fnn_model *m, float *out, const fnn_csr *x,
                                     float *work, int64_t work_size)
    fnn_status fnn_model_train_step(fnn_model *m, const fnn_train_args *a, fnn_train_result *r)
    fnn_status fnn_model_compute_gradients(fnn_model *m, const fnn_train_args *a,
                                           fnn_train_result *r)
    fnn_status fnn_model_apply_gradients(fnn_model *m)
    fnn_status fnn_model_output_offset(const fnn_model *m, int64_t n, int64_t *offset)
    ctypedef struct fnn_epoch_args:
        const float *x
        const float *target
        const int64_t *labels
        int64_t rows
        const int64_t *order
        int64_t batch_size
        int64_t first_batch
        int64_t max_batches
        int32_t metric
        int32_t weight_norm
        const float *sample_weight
    ctypedef struct fnn_epoch_result:
        double loss_sum
        double correct
        int64_t rows, batches, stop_batch, bad_index
        double last_loss
    fnn_status fnn_model_train_epoch(fnn_model *m, const fnn_epoch_args *a, fnn_epoch_result *r)
    fnn_status fnn_model_save(const fnn_model *m, const char *path)
    fnn_status fnn_model_load(fnn_model **out, const char *path)
    fnn_status fnn_model_load_bytes(fnn_model **out, const unsigned char *data, int64_t len)
