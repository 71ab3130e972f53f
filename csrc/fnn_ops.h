/*
 * fnn_ops.h -- the op, loss and optimizer tables (internal, not installed).
 *
 * Every op of a network is ONE entry of the table in csrc/ops.c: its name,
 * how it validates its attributes and derives its output shape and sizes
 * (describe), how its parameters start (init) and its forward and backward
 * kernels. The model (csrc/model.c), the one-op entry points of fastnn.h and
 * the file reader only ever go through an entry; adding an op is its
 * kernels, its entry, its Python class and NumPy twin, and its tests.
 *
 * Size letters: N batch rows; IN/OUT per-sample element counts of the
 * op's input and output.
 */
#ifndef FNN_OPS_H
#define FNN_OPS_H

#include "fnn_internal.h"

/* What a kernel sees of its node at run time. */
typedef struct fnn_op_ctx {
    const fnn_attrs *attrs;
    const fnn_shape *in;        /* per-sample input shape */
    const fnn_node_info *info;  /* output shape and sizes (describe's result) */
    int64_t N;                  /* batch rows */
    int64_t IN, OUT;            /* per-sample element counts of input and output */
    const float *params;        /* (num_params) or NULL */
    float *buffers;             /* (num_buffers) or NULL */
    float *scratch;             /* (N * scratch_per_row) or NULL */
    int training;               /* 1: training behaviour (dropout active) */
    uint64_t key;               /* dropout key of this call */
    int accumulate;             /* 1: backward adds into grads; 0 (given only to ops
                                   with FNN_OPF_GRADS_SET): it writes them */
    int forward_only;           /* 1: no backward follows this forward, so what
                                   forward leaves in scratch need not be kept
                                   (the model's fused forward, fnn_model_forward) */
} fnn_op_ctx;

/* The op prefers He initialisation for a linear layer right before it. */
#define FNN_OPF_HE_BEFORE 1
/* The op reads fnn_op_ctx.key (the model derives one per call only for these). */
#define FNN_OPF_KEY 2
/* The op's backward writes its whole gradient when fnn_op_ctx.accumulate is
   0, so the model's step need not zero it first (model.c). */
#define FNN_OPF_GRADS_SET 4

typedef struct fnn_op_def {
    const char *name;
    int32_t flags;          /* FNN_OPF_* */
    /* Check attrs against the per-sample input shape; fill out_shape,
       num_params, num_buffers, scratch_per_row (offsets stay 0).
       Errors go through fnn__error naming the op and the shapes. */
    fnn_status (*describe)(const fnn_attrs *a, const fnn_shape *in, fnn_node_info *info);
    /* Initial parameters and buffers; `he` resolves FNN_INIT_AUTO. NULL: none. */
    void (*init)(const fnn_attrs *a, const fnn_shape *in, int he, float *params,
                 float *buffers, uint64_t key);
    /* y (N, OUT) from x (N, IN). */
    fnn_status (*forward)(const fnn_op_ctx *c, float *y, const float *x);
    /* dx (N, IN) OVERWRITTEN (NULL: not needed), grads ACCUMULATED (or
       written, see FNN_OPF_GRADS_SET), from dy (N, OUT) and the forward's x
       and y. */
    fnn_status (*backward)(const fnn_op_ctx *c, float *dx, float *grads, const float *dy,
                           const float *x, const float *y);
} fnn_op_def;

typedef struct fnn_loss_def {
    const char *name;
    int32_t labels;         /* 1: integer class labels; 0: float targets like pred */
    int32_t weighted;       /* 1: takes weight (C or D values) */
    /* rw: (N) row weights or NULL; denom <= 0: the total weight (losses.c) */
    fnn_status (*eval)(const fnn_loss_desc *d, double *loss, float *dpred,
                       const float *pred, const float *target, const int64_t *labels,
                       const float *rw, double denom, int64_t N, int64_t D,
                       int64_t *bad_index);
} fnn_loss_def;

typedef struct fnn_optim_def {
    const char *name;
    int32_t (*num_state)(const fnn_optim_desc *d);
    /* One update at step t >= 1; state holds num_state non-NULL buffers. */
    fnn_status (*update)(const fnn_optim_desc *d, float *params, const float *grads,
                         float *const *state, int64_t P, int64_t t);
} fnn_optim_def;

/* The entry called `name`, or NULL. */
const fnn_op_def *fnn__op_lookup(const char *name);
const fnn_loss_def *fnn__loss_lookup(const char *name);
const fnn_optim_def *fnn__optim_lookup(const char *name);

/* Clip (when d->max_grad_norm > 0) and update: fnn_optim_step without its
   checks, for a caller that validated d once (the model at bind time). */
fnn_status fnn__optim_apply(const fnn_optim_def *def, const fnn_optim_desc *d, float *params,
                            float *grads, int64_t P, int64_t t);

/* The backward of a max_pool2d node (c) and of the relu node below it in
   one pass: dx is the relu's input gradient; x the relu's output (the
   pool's input), y the pool's output (ops.c). */
fnn_status fnn__maxpool_relu_backward(const fnn_op_ctx *c, float *dx, const float *dy,
                                      const float *x, const float *y);

/* Elements of a per-sample shape (FNN_ERR_SIZE via -1 on a bad shape). */
int64_t fnn__shape_numel(const fnn_shape *s);
/* "(a, b, c)" into buf, for messages. */
const char *fnn__shape_str(const fnn_shape *s, char *buf, size_t size);
/* A node's name as a NUL-terminated string (op[] may lack the NUL). */
int fnn__name_ok(const char *name);

#endif /* FNN_OPS_H */
