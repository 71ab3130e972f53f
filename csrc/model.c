/*
 * model.c -- fnn_model: a network's layout, flat buffers, loss, optimizer
 * and workspace, and the two calls that run it (forward, train step).
 *
 * Layout. Node i reads slot i and writes slot i + 1 (slot 0 is the input):
 * the plan is a list of ops over numbered tensor slots, validated here
 * through the op table (csrc/ops.c). Only chains are accepted so far; the
 * slot numbering already has room for ops with two inputs. Parameters of
 * node i lie at info[i].param_offset in ONE flat buffer of P floats (in node
 * order, each op's own order inside: linear is weight (IN, OUT) then bias);
 * gradients in another of P floats; non-trainable buffers (running
 * statistics) in one of B floats.
 *
 * Workspace for n rows, in floats, each part rounded up to 16 floats:
 *   training: act[s] (n, numel[s]) for every slot s >= 1 (kept for
 *             backward), two gradient buffers (n, W) used in turn, and
 *             each node's scratch (n, scratch_per_row[i]);
 *   forward:  two activation buffers (n, W) used in turn and the largest
 *             scratch of one node;
 * W being the widest slot after the input (slot 0 is read in place: a wide
 * input, such as a sparse one, costs no workspace). A train step allocates nothing once its
 * workspace exists (the caller's, or the model's own grown once).
 *
 * A batch may also come as a CSR matrix (fnn_csr) when node 0 is linear:
 * node 0 then runs the kernels of csrc/sparse.c (no input gradient), every
 * other node is unchanged.
 *
 * Both calls compose the same kernels the Python layer-by-layer path calls,
 * in the same order, so the two give the same bits at a fixed thread count.
 * Size letters: L nodes, P parameters, B buffers, n batch rows.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fnn_ops.h"

#define MAX_NODES 65536
#define ROUND 16

struct fnn_model {
    fnn_shape input;
    int32_t L;
    fnn_node *nodes;            /* (L) owned copy */
    const fnn_op_def **defs;    /* (L) */
    fnn_shape *shapes;          /* (L + 1) slot shapes; [0] is the input */
    int64_t *numel;             /* (L + 1) per-sample elements of each slot */
    fnn_node_info *info;        /* (L) with offsets */
    int64_t P, B, W;            /* parameters, buffers, widest slot s >= 1 */
    float *params, *grads, *buffers;
    uint64_t seed;
    int64_t step, counter;      /* optimizer steps; training forward passes */
    char *meta;
    int64_t meta_len;
    int has_loss, has_opt;
    fnn_loss_desc loss;         /* weight points at loss_weight */
    const fnn_loss_def *ldef;
    float *loss_weight;
    fnn_optim_desc opt;         /* state[] point at borrowed or own buffers */
    const fnn_optim_def *odef;  /* its table entry (looked up once, at bind time) */
    float *own_state[FNN_MAX_STATE];
    float *work;                /* the model's own training workspace */
    int64_t work_cap;
    int64_t *act, *scr;         /* (L + 1), (L): training workspace offsets ... */
    int64_t g[2], layout_n;     /* ... and gradient buffers, computed for layout_n rows */
    int64_t layout_need;        /* train_layout(layout_n): the workspace it needs */
    signed char *fuse;          /* (L) FNN_ACT_* that node i (linear) applies for node i+1 */
    unsigned char *pool_relu;   /* (L) 1: node i (max_pool2d) does node i-1's (relu) backward */
    int64_t *zero;              /* (2 L) runs (offset, count) of the gradient a step zeroes */
    int32_t nzero;              /* ... their number: the params of ops that accumulate */
    void *gather;               /* fnn_model_train_epoch's batch buffers (grown once) */
    size_t gather_cap;
};

static int64_t round_up(int64_t x) { return (x + ROUND - 1) / ROUND * ROUND; }

/* n * k rounded up, or -1 on overflow */
static int64_t part(int64_t n, int64_t k) {
    int64_t p;
    if (fnn__mul_overflow(n, k, &p) || p > INT64_MAX - ROUND) return -1;
    return round_up(p);
}

/* a + b, or -1 if either is -1 or the sum overflows */
static int64_t add(int64_t a, int64_t b) {
    return (a < 0 || b < 0 || a > INT64_MAX - b) ? -1 : a + b;
}

static float *alloc_floats(int64_t n) {
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float)) return NULL;
    fnn__count_alloc();
    return calloc(n > 0 ? (size_t)n : 1, sizeof(float));
}

void fnn_model_free(fnn_model *m) {
    if (!m) return;
    free(m->nodes);
    free(m->defs);
    free(m->shapes);
    free(m->numel);
    free(m->info);
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m->meta);
    free(m->loss_weight);
    for (int k = 0; k < FNN_MAX_STATE; k++) free(m->own_state[k]);
    free(m->work);
    free(m->act);
    free(m->scr);
    free(m->fuse);
    free(m->pool_relu);
    free(m->zero);
    free(m->gather);
    free(m);
}

/* 1 if node i's op writes its parameter gradients in backward
   (FNN_OPF_GRADS_SET); 0 if it accumulates into a zeroed run. */
static int writes_grads(const fnn_model *m, int32_t i) {
    return (m->defs[i]->flags & FNN_OPF_GRADS_SET) != 0;
}

/* Validate the desc into m's layout arrays (already allocated). */
static fnn_status build_layout(fnn_model *m, const fnn_model_desc *d) {
    char s[96];
    m->shapes[0] = d->input;
    if ((m->numel[0] = fnn__shape_numel(&d->input)) < 0)
        return fnn__error(FNN_ERR_SIZE, "invalid input shape %s (1 to %d dimensions, each "
                          ">= 1)", fnn__shape_str(&d->input, s, sizeof s), FNN_MAX_DIMS);
    m->W = 0;   /* the widest slot a node writes: the input (slot 0) is never copied */
    for (int32_t i = 0; i < m->L; i++) {
        const fnn_node *nd = &m->nodes[i];
        if (!fnn__name_ok(nd->op))
            return fnn__error(FNN_ERR_ARG, "node %d: op name is empty or not NUL-terminated",
                              (int)i);
        if (!(m->defs[i] = fnn__op_lookup(nd->op)))
            return fnn__error(FNN_ERR_ARG, "node %d: unknown op '%s'", (int)i, nd->op);
        if (nd->in[0] != i || nd->in[1] != -1 || nd->out != i + 1)
            return fnn__error(FNN_ERR_ARG, "node %d (%s): reads slots (%d, %d) and writes %d; "
                              "only chains are supported (node i reads slot i, in[1] = -1, "
                              "writes slot i + 1)", (int)i, nd->op, (int)nd->in[0],
                              (int)nd->in[1], (int)nd->out);
        fnn_node_info *inf = &m->info[i];
        fnn_status st = fnn_op_describe(inf, nd, &m->shapes[i]);
        if (st != FNN_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", fnn_last_error());
            return fnn__error(st, "node %d: %s", (int)i, msg);
        }
        inf->param_offset = m->P;
        inf->buffer_offset = m->B;
        m->P = add(m->P, inf->num_params);
        m->B = add(m->B, inf->num_buffers);
        if (m->P < 0 || m->B < 0)
            return fnn__error(FNN_ERR_SIZE, "node %d: parameter count overflows", (int)i);
        m->shapes[i + 1] = inf->out_shape;
        m->numel[i + 1] = fnn__shape_numel(&inf->out_shape);
        if (m->numel[i + 1] > m->W) m->W = m->numel[i + 1];
    }
    /* Fusion: a linear node followed by relu, tanh or sigmoid applies that
       activation in its GEMM write-out (fnn__dense_forward_act) and writes
       the activation's slot directly; the linear's own slot is never
       written. The activation's backward then reads its output in place of
       its input: tanh and sigmoid use only y, and relu's x > 0 equals
       y > 0 bit for bit (y = x or 0, NaN stays NaN), so the gradients are
       those of the unfused pair. */
    for (int32_t i = 0; i + 1 < m->L; i++) {
        if (strcmp(m->nodes[i].op, "linear") != 0) continue;
        const char *next = m->nodes[i + 1].op;
        m->fuse[i] = !strcmp(next, "relu") ? FNN_ACT_RELU
                   : !strcmp(next, "tanh") ? FNN_ACT_TANH
                   : !strcmp(next, "sigmoid") ? FNN_ACT_SIGMOID : FNN_ACT_NONE;
        if (m->fuse[i]) i++;   /* the activation node cannot start a pair */
    }
    /* Backward only: a max_pool2d right after a relu (Conv -> ReLU -> MaxPool)
       masks its dx with the relu's (x > 0 on the pool's input, the relu's
       output: the same as on the relu's input, see above) in the same pass,
       and the relu node is skipped (fnn__maxpool_relu_backward). Not when the
       relu is node 0 (no dx below it) or the activation of a fused linear. */
    for (int32_t i = 2; i < m->L; i++)
        m->pool_relu[i] = !strcmp(m->nodes[i].op, "max_pool2d") &&
                          !strcmp(m->nodes[i - 1].op, "relu") && !m->fuse[i - 2];
    if (getenv("FASTNN_NO_FUSION")) {   /* the unfused plan, for benchmarks and tests */
        memset(m->fuse, 0, (size_t)m->L);
        memset(m->pool_relu, 0, (size_t)m->L);
    }
    /* The gradient runs a step zeroes before backward: the parameters of
       ops that accumulate into their gradient. A linear (FNN_OPF_GRADS_SET)
       writes its dw and db, fused or not, and needs no pass of its own. */
    m->nzero = 0;
    for (int32_t i = 0; i < m->L; i++) {
        const fnn_node_info *inf = &m->info[i];
        if (inf->num_params == 0 || writes_grads(m, i)) continue;
        int64_t *run = m->zero + 2 * (m->nzero - 1);
        if (m->nzero > 0 && run[0] + run[1] == inf->param_offset) {
            run[1] += inf->num_params;
        } else {
            m->zero[2 * m->nzero] = inf->param_offset;
            m->zero[2 * m->nzero + 1] = inf->num_params;
            m->nzero++;
        }
    }
    return FNN_OK;
}

/* Forward of node i (with node i + 1 when fused): y from x. */
static fnn_status linear_act_forward(const fnn_model *m, int32_t i, const fnn_op_ctx *c,
                                     float *y, const float *x) {
    const float *w = c->params;
    return fnn__dense_forward_act(y, x, w, m->nodes[i].attrs.bias ? w + c->IN * c->OUT : NULL,
                                  c->N, c->IN, c->OUT, m->fuse[i]);
}

/* A model with its layout built from d (nodes, shapes, offsets) but no
   parameter memory yet; *out NULL on error. */
static fnn_status new_layout(fnn_model **out, const fnn_model_desc *d) {
    *out = NULL;
    if (!d || !d->nodes) return fnn__error(FNN_ERR_ARG, "model description or nodes is NULL");
    if (d->num_nodes < 1 || d->num_nodes > MAX_NODES)
        return fnn__error(FNN_ERR_ARG, "a model has 1 to %d nodes, got %d", MAX_NODES,
                          (int)d->num_nodes);
    fnn_model *m = calloc(1, sizeof *m);
    if (!m) return fnn__error(FNN_ERR_NOMEM, "out of memory");
    const size_t L = (size_t)d->num_nodes;
    m->L = d->num_nodes;
    m->input = d->input;
    m->nodes = malloc(L * sizeof *m->nodes);
    m->defs = calloc(L, sizeof *m->defs);
    m->shapes = calloc(L + 1, sizeof *m->shapes);
    m->numel = calloc(L + 1, sizeof *m->numel);
    m->info = calloc(L, sizeof *m->info);
    m->act = calloc(L + 1, sizeof *m->act);
    m->scr = calloc(L, sizeof *m->scr);
    m->fuse = calloc(L, sizeof *m->fuse);
    m->pool_relu = calloc(L, sizeof *m->pool_relu);
    m->zero = calloc(2 * L, sizeof *m->zero);
    fnn_status st;
    if (m->nodes && m->defs && m->shapes && m->numel && m->info && m->act && m->scr &&
        m->fuse && m->pool_relu && m->zero) {
        memcpy(m->nodes, d->nodes, L * sizeof *m->nodes);
        st = build_layout(m, d);
    } else {
        st = fnn__error(FNN_ERR_NOMEM, "out of memory");
    }
    if (st != FNN_OK) {
        fnn_model_free(m);
        return st;
    }
    *out = m;
    return FNN_OK;
}

fnn_status fnn_model_desc_sizes(const fnn_model_desc *d, int64_t *num_params,
                                int64_t *num_buffers) {
    fnn__clear_error();
    fnn_model *m;
    fnn_status st = new_layout(&m, d);
    if (st != FNN_OK) return st;
    if (num_params) *num_params = m->P;
    if (num_buffers) *num_buffers = m->B;
    fnn_model_free(m);
    return FNN_OK;
}

fnn_status fnn_model_create(fnn_model **out, const fnn_model_desc *d, uint64_t seed) {
    fnn__clear_error();
    if (!out) return fnn__error(FNN_ERR_ARG, "out is NULL");
    fnn_model *m;
    fnn_status st = new_layout(&m, d);
    if (st != FNN_OK) {
        *out = NULL;
        return st;
    }
    m->params = alloc_floats(m->P);
    m->grads = alloc_floats(m->P);
    m->buffers = alloc_floats(m->B);
    if (!m->params || !m->grads || !m->buffers)
        st = fnn__error(FNN_ERR_NOMEM, "out of memory for %lld parameters", (long long)m->P);
    if (st == FNN_OK) st = fnn_model_init(m, seed);
    if (st != FNN_OK) {
        fnn_model_free(m);
        m = NULL;
    }
    *out = m;
    return st;
}

fnn_status fnn_model_init(fnn_model *m, uint64_t seed) {
    if (!m) return fnn__error(FNN_ERR_ARG, "model is NULL");
    for (int32_t i = 0; i < m->L; i++) {
        const fnn_node_info *inf = &m->info[i];
        fnn_status st = fnn_op_init(&m->nodes[i], &m->shapes[i],
                                    i + 1 < m->L ? &m->nodes[i + 1] : NULL,
                                    m->params + inf->param_offset,
                                    m->buffers + inf->buffer_offset, seed, i);
        if (st != FNN_OK) return st;
    }
    if (m->P > 0) memset(m->grads, 0, (size_t)m->P * sizeof(float));
    for (int k = 0; k < FNN_MAX_STATE; k++)
        if (m->own_state[k]) memset(m->own_state[k], 0, (size_t)m->P * sizeof(float));
    m->seed = seed;
    m->step = m->counter = 0;
    return FNN_OK;
}

/* ------------------------------------------------------------ queries */

int32_t fnn_model_num_nodes(const fnn_model *m) { return m ? m->L : 0; }

const fnn_node *fnn_model_node(const fnn_model *m, int32_t i) {
    return m && i >= 0 && i < m->L ? &m->nodes[i] : NULL;
}

fnn_status fnn_model_node_info(const fnn_model *m, int32_t i, fnn_node_info *info) {
    if (!m || !info || i < 0 || i >= m->L)
        return fnn__error(FNN_ERR_ARG, "no node %d", (int)i);
    *info = m->info[i];
    return FNN_OK;
}

fnn_shape fnn_model_input_shape(const fnn_model *m) {
    fnn_shape none = {0, 0, {0, 0, 0}};
    return m ? m->shapes[0] : none;
}

fnn_shape fnn_model_output_shape(const fnn_model *m) {
    fnn_shape none = {0, 0, {0, 0, 0}};
    return m ? m->shapes[m->L] : none;
}

int64_t fnn_model_num_params(const fnn_model *m) { return m ? m->P : 0; }
int64_t fnn_model_num_buffers(const fnn_model *m) { return m ? m->B : 0; }
float *fnn_model_params(fnn_model *m) { return m ? m->params : NULL; }
float *fnn_model_grads(fnn_model *m) { return m ? m->grads : NULL; }
float *fnn_model_buffers(fnn_model *m) { return m ? m->buffers : NULL; }
uint64_t fnn_model_seed(const fnn_model *m) { return m ? m->seed : 0; }
int64_t fnn_model_step(const fnn_model *m) { return m ? m->step : 0; }
int64_t fnn_model_counter(const fnn_model *m) { return m ? m->counter : 0; }

void fnn_model_set_counters(fnn_model *m, int64_t step, int64_t counter) {
    if (!m) return;
    m->step = step < 0 ? 0 : step;
    m->counter = counter;
}

fnn_status fnn_model_set_metadata(fnn_model *m, const char *bytes, int64_t len) {
    if (!m || len < 0 || (len > 0 && !bytes))
        return fnn__error(FNN_ERR_ARG, "invalid metadata");
    char *copy = NULL;
    if (len > 0) {
        if ((uint64_t)len >= SIZE_MAX) return fnn__error(FNN_ERR_SIZE, "metadata too large");
        if (!(copy = malloc((size_t)len + 1))) return fnn__error(FNN_ERR_NOMEM, "out of memory");
        memcpy(copy, bytes, (size_t)len);
        copy[len] = '\0';
    }
    free(m->meta);
    m->meta = copy;
    m->meta_len = len;
    return FNN_OK;
}

const char *fnn_model_metadata(const fnn_model *m, int64_t *len) {
    if (len) *len = m ? m->meta_len : 0;
    return m && m->meta ? m->meta : "";
}

/* ---------------------------------------------------- loss, optimizer */

fnn_status fnn_model_set_loss(fnn_model *m, const fnn_loss_desc *d) {
    fnn__clear_error();
    if (!m || !d) return fnn__error(FNN_ERR_ARG, "model or loss is NULL");
    const fnn_loss_def *def = fnn__loss_lookup(d->name);
    if (!def) return fnn__error(FNN_ERR_ARG, "unknown loss '%s'", d->name ? d->name : "");
    const int64_t D = m->numel[m->L];
    float *w = NULL;
    if (d->weight) {
        if (!def->weighted)
            return fnn__error(FNN_ERR_ARG, "loss %s takes no weight", def->name);
        if (d->weight_len != D)
            return fnn__error(FNN_ERR_SIZE, "loss %s: weight has %lld values, the model has "
                              "%lld outputs", def->name, (long long)d->weight_len, (long long)D);
        if (!(w = alloc_floats(D))) return fnn__error(FNN_ERR_NOMEM, "out of memory");
        memcpy(w, d->weight, (size_t)D * sizeof(float));
    }
    free(m->loss_weight);
    m->loss_weight = w;
    m->loss = *d;
    m->loss.name = def->name;    /* static storage: the caller's string may go */
    m->loss.weight = w;
    m->loss.weight_len = w ? D : 0;
    m->ldef = def;
    m->has_loss = 1;
    return FNN_OK;
}

fnn_status fnn_model_set_optimizer(fnn_model *m, const fnn_optim_desc *d) {
    fnn__clear_error();
    if (!m || !d) return fnn__error(FNN_ERR_ARG, "model or optimizer is NULL");
    const fnn_optim_def *def = fnn__optim_lookup(d->name);
    if (!def) return fnn__error(FNN_ERR_ARG, "unknown optimizer '%s'", d->name ? d->name : "");
    if (!(d->lr >= 0.0f && d->lr < INFINITY))
        return fnn__error(FNN_ERR_ARG, "%s: invalid learning rate %g", def->name, (double)d->lr);
    fnn_optim_desc o = *d;
    o.name = def->name;
    int32_t ns = def->num_state(d);
    for (int32_t k = 0; k < FNN_MAX_STATE; k++) {
        if (k >= ns) {
            o.state[k] = NULL;
        } else if (!d->state[k]) {
            if (!m->own_state[k] && !(m->own_state[k] = alloc_floats(m->P)))
                return fnn__error(FNN_ERR_NOMEM, "out of memory for optimizer state");
            /* the model's own buffer starts at zero for a newly bound optimizer
               (or a buffer it did not use before); rebinding the same one, e.g.
               for a new learning rate, keeps its state */
            if (!m->has_opt || m->opt.name != def->name || m->opt.state[k] != m->own_state[k])
                memset(m->own_state[k], 0, (size_t)m->P * sizeof(float));
            o.state[k] = m->own_state[k];
        }
    }
    m->opt = o;
    m->odef = def;
    m->has_opt = 1;
    return FNN_OK;
}

/* ---------------------------------------------------------- workspace */

/* Offsets of the training workspace: act[s] for s = 1..L at act[s], then
   g0, g1, then node scratch; returns the total (or -1 on overflow).
   act and scr may be NULL (size only). */
static int64_t train_layout(const fnn_model *m, int64_t n, int64_t *act, int64_t *g,
                            int64_t *scr) {
    int64_t off = 0;
    for (int32_t s = 1; s <= m->L; s++) {
        if (act) act[s] = off;
        off = add(off, part(n, m->numel[s]));
    }
    for (int k = 0; k < 2; k++) {
        if (g) g[k] = off;
        off = add(off, part(n, m->W));
    }
    for (int32_t i = 0; i < m->L; i++) {
        if (scr) scr[i] = off;
        off = add(off, part(n, m->info[i].scratch_per_row));
    }
    return off;
}

fnn_status fnn_model_output_offset(const fnn_model *m, int64_t n, int64_t *offset) {
    fnn__clear_error();
    if (!m || !offset) return fnn__error(FNN_ERR_ARG, "model or offset is NULL");
    if (n < 1) return fnn__error(FNN_ERR_SIZE, "batch of %lld rows", (long long)n);
    int64_t off = 0;   /* the slots before the last, as train_layout lays them out */
    for (int32_t s = 1; s < m->L; s++) off = add(off, part(n, m->numel[s]));
    if (off < 0 || train_layout(m, n, NULL, NULL, NULL) < 0)
        return fnn__error(FNN_ERR_SIZE, "workspace for %lld rows overflows", (long long)n);
    *offset = off;
    return FNN_OK;
}

/* Forward workspace: two (n, W) buffers, then the largest node scratch. */
static int64_t forward_size(const fnn_model *m, int64_t n) {
    int64_t scratch = 0;
    for (int32_t i = 0; i < m->L; i++)
        if (m->info[i].scratch_per_row > scratch) scratch = m->info[i].scratch_per_row;
    return add(add(part(n, m->W), part(n, m->W)), part(n, scratch));
}

fnn_status fnn_model_workspace_size(const fnn_model *m, int64_t n, int training,
                                    int64_t *floats) {
    if (!m || !floats) return fnn__error(FNN_ERR_ARG, "model or floats is NULL");
    if (n < 0) return fnn__error(FNN_ERR_SIZE, "batch size %lld < 0", (long long)n);
    int64_t s = training ? train_layout(m, n, NULL, NULL, NULL) : forward_size(m, n);
    if (s < 0) return fnn__error(FNN_ERR_SIZE, "workspace for %lld rows overflows",
                                 (long long)n);
    *floats = s;
    return FNN_OK;
}

/* A context for node i on n rows. */
static void node_ctx(const fnn_model *m, int32_t i, int64_t n, float *scratch, int training,
                     fnn_op_ctx *c) {
    const fnn_node_info *inf = &m->info[i];
    c->attrs = &m->nodes[i].attrs;
    c->in = &m->shapes[i];
    c->info = inf;
    c->N = n;
    c->IN = m->numel[i];
    c->OUT = m->numel[i + 1];
    c->params = inf->num_params ? m->params + inf->param_offset : NULL;
    c->buffers = inf->num_buffers ? m->buffers + inf->buffer_offset : NULL;
    c->scratch = inf->scratch_per_row ? scratch : NULL;
    c->training = training;
    c->key = training && (m->defs[i]->flags & FNN_OPF_KEY)
                 ? fnn_dropout_key(m->seed, i, m->counter + 1) : 0;
    c->accumulate = 1;
    c->forward_only = 0;
}

/* Prefix "node i (op): " to the message of a failed kernel call. */
static fnn_status node_error(const fnn_model *m, int32_t i, fnn_status st) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", fnn_last_error());
    return fnn__error(st, "node %d (%s): %s", (int)i, m->nodes[i].op,
                      msg[0] ? msg : fnn_status_string(st));
}

/* FNN_OK if the CSR batch xs fits the model for a batch of n rows: the
   first node is linear, xs is (n, input) and a valid CSR matrix. */
static fnn_status check_csr_input(const fnn_model *m, const fnn_csr *xs, int64_t n) {
    if (strcmp(m->defs[0]->name, "linear") != 0)
        return fnn__error(FNN_ERR_ARG, "sparse input needs a model whose first node is "
                          "linear, node 0 is %s", m->nodes[0].op);
    if (xs->rows != n || xs->cols != m->numel[0])
        return fnn__error(FNN_ERR_SIZE, "sparse input is (%lld, %lld), the model expects "
                          "(%lld, %lld)", (long long)xs->rows, (long long)xs->cols,
                          (long long)n, (long long)m->numel[0]);
    return fnn_csr_check(xs);
}

/* Node i's forward into y, with the activation after it when the two are
   fused (fuse[i]); for node 0, the sparse linear kernel on xs when given
   (checked by check_csr_input), its activation then applied in place. */
static fnn_status node_forward(const fnn_model *m, int32_t i, const fnn_op_ctx *c, float *y,
                               const float *x, const fnn_csr *xs) {
    if (i == 0 && xs) {
        const float *w = c->params;
        fnn_status st = fnn__csr_dense_forward(y, xs, w, c->attrs->bias ? w + c->IN * c->OUT
                                                                        : NULL, c->OUT);
        if (st == FNN_OK && m->fuse[0]) fnn__act_inplace(y, c->N, c->OUT, m->fuse[0]);
        return st;
    }
    return m->fuse[i] ? linear_act_forward(m, i, c, y, x) : m->defs[i]->forward(c, y, x);
}

/* fnn_model_forward on a dense x (xs NULL) or a CSR x (x NULL). */
static fnn_status run_forward(const fnn_model *m, float *out, const float *x,
                              const fnn_csr *xs, int64_t n, float *work, int64_t work_size) {
    int64_t need;
    fnn_status st = fnn_model_workspace_size(m, n, 0, &need);
    if (st != FNN_OK) return st;
    if (xs && (st = check_csr_input(m, xs, n)) != FNN_OK) return st;
    if (n == 0) return FNN_OK;
    if (!out || !(x || xs)) return fnn__error(FNN_ERR_ARG, "forward: out and x must not be NULL");
    float *own = NULL;
    if (!work) {
        if (!(own = work = alloc_floats(need)))
            return fnn__error(FNN_ERR_NOMEM, "out of memory for the forward workspace");
    } else if (work_size < need) {
        return fnn__error(FNN_ERR_SIZE, "forward: workspace has %lld floats, %lld rows need "
                          "%lld", (long long)work_size, (long long)n, (long long)need);
    }
    float *buf[2] = {work, work + part(n, m->W)};
    float *scratch = work + 2 * part(n, m->W);
    const float *cur = x;
    int k = 0;   /* the buffer written next: never the one cur is in */
    for (int32_t i = 0; i < m->L && st == FNN_OK; i++) {
        int32_t last = m->fuse[i] ? i + 1 : i;   /* the node whose slot is written */
        float *y = (last == m->L - 1) ? out : buf[k];
        k ^= 1;
        fnn_op_ctx c;
        node_ctx(m, i, n, scratch, 0, &c);
        c.forward_only = 1;
        st = node_forward(m, i, &c, y, cur, xs);
        if (st != FNN_OK) st = node_error(m, i, st);
        cur = y;
        i = last;
    }
    free(own);
    return st;
}

fnn_status fnn_model_forward(const fnn_model *m, float *out, const float *x, int64_t n,
                             float *work, int64_t work_size) {
    fnn__clear_error();
    if (!m) return fnn__error(FNN_ERR_ARG, "model is NULL");
    return run_forward(m, out, x, NULL, n, work, work_size);
}

fnn_status fnn_model_forward_csr(const fnn_model *m, float *out, const fnn_csr *x,
                                 float *work, int64_t work_size) {
    fnn__clear_error();
    if (!m || !x) return fnn__error(FNN_ERR_ARG, "model or x is NULL");
    return run_forward(m, out, NULL, x, x->rows, work, work_size);
}

/* Forward (training mode), loss and backward: the gradients OVERWRITTEN. */
static fnn_status gradients(fnn_model *m, const fnn_train_args *a, fnn_train_result *r) {
    const int64_t n = a->n, L = m->L;
    if (n < 1) return fnn__error(FNN_ERR_SIZE, "train step: batch of %lld rows", (long long)n);
    const fnn_csr *xs = a->x_csr;
    if (xs ? a->x != NULL : !a->x)
        return fnn__error(FNN_ERR_ARG, "train step: give x or x_csr (exactly one)");
    fnn_status st = xs ? check_csr_input(m, xs, n) : FNN_OK;
    if (st != FNN_OK) return st;
    if (m->ldef->labels ? !a->labels : !a->target)
        return fnn__error(FNN_ERR_ARG, "train step: loss %s needs %s", m->ldef->name,
                          m->ldef->labels ? "labels" : "a float target");
    int64_t need = m->layout_n == n ? m->layout_need : train_layout(m, n, NULL, NULL, NULL);
    if (need < 0) return fnn__error(FNN_ERR_SIZE, "workspace for %lld rows overflows",
                                    (long long)n);
    float *work = a->work;
    if (work) {
        if (a->work_size < need)
            return fnn__error(FNN_ERR_SIZE, "train step: workspace has %lld floats, %lld rows "
                              "need %lld", (long long)a->work_size, (long long)n,
                              (long long)need);
    } else {
        if (m->work_cap < need) {
            float *w = alloc_floats(need);
            if (!w) return fnn__error(FNN_ERR_NOMEM, "out of memory for the workspace");
            free(m->work);
            m->work = w;
            m->work_cap = need;
        }
        work = m->work;
    }
    int64_t *act = m->act, *scr = m->scr, *g = m->g;
    if (m->layout_n != n) {     /* offsets depend on n only: once per batch size */
        train_layout(m, n, act, g, scr);
        m->layout_n = n;
        m->layout_need = need;
    }
    fnn_op_ctx c;

    /* forward, keeping every slot */
    const float *cur = a->x;
    for (int32_t i = 0; i < L && st == FNN_OK; i++) {
        node_ctx(m, i, n, work + scr[i], 1, &c);
        int32_t last = m->fuse[i] ? i + 1 : i;   /* the node whose slot is written */
        float *y = work + act[last + 1];
        if ((st = node_forward(m, i, &c, y, cur, xs)) != FNN_OK) st = node_error(m, i, st);
        cur = y;
        i = last;
    }
    /* loss and d(loss)/d(output) into g[0]; labels are checked before any write */
    if (st == FNN_OK)
        st = m->ldef->eval(&m->loss, &r->loss, work + g[0], cur, a->target, a->labels,
                           a->sample_weight, a->denom, n, m->numel[L], &r->bad_index);
    if (st == FNN_ERR_LABEL)
        fnn__error(st, "label at row %lld is out of range for %lld classes",
                   (long long)r->bad_index, (long long)m->numel[L]);
    /* backward: each linear writes its parameter gradients; the other ops
       accumulate into their zeroed runs, as does a sparse first linear */
    if (st == FNN_OK) {
        for (int32_t z = 0; z < m->nzero; z++)
            memset(m->grads + m->zero[2 * z], 0, (size_t)m->zero[2 * z + 1] * sizeof(float));
        if (xs && m->info[0].num_params > 0 && writes_grads(m, 0))
            memset(m->grads + m->info[0].param_offset, 0,
                   (size_t)m->info[0].num_params * sizeof(float));
        int k = 0;
        int bias_done = 0;   /* the next node (a fused linear) has its bias gradient */
        for (int32_t i = (int32_t)L - 1; i >= 0 && st == FNN_OK; i--) {
            const float *xi = i == 0 ? a->x : work + act[i];
            float *dx = i == 0 ? NULL : work + g[k ^ 1];
            float *gi = m->info[i].num_params ? m->grads + m->info[i].param_offset : NULL;
            const float *dy = work + g[k];
            node_ctx(m, i, n, work + scr[i], 1, &c);
            c.accumulate = !writes_grads(m, i);
            if (i == 0 && xs) {
                /* the sparse first linear layer: dw (and db unless the fused
                   activation above gave it); no dx */
                int with_db = c.attrs->bias && !bias_done;
                st = fnn__csr_dense_backward(gi, with_db ? gi + c.IN * c.OUT : NULL, dy, xs,
                                             c.OUT);
                bias_done = 0;
            } else if (i > 0 && m->fuse[i - 1]) {
                /* a fused activation: its input slot was never written and its
                   output stands in (see build_layout); with a bias below, the
                   bias gradient comes out of the same pass */
                const float *y = work + act[i + 1];
                if (m->nodes[i - 1].attrs.bias) {
                    float *db = m->grads + m->info[i - 1].param_offset +
                                m->numel[i - 1] * m->numel[i];
                    st = fnn__act_backward_bias(dx, db, dy, y, n, m->numel[i], m->fuse[i - 1],
                                                !writes_grads(m, i - 1));
                    bias_done = 1;
                } else {
                    st = m->defs[i]->backward(&c, dx, gi, dy, y, y);
                }
            } else if (bias_done) {
                st = fnn__dense_backward_to(dx, gi, NULL, dy, xi, c.params, n, c.IN, c.OUT,
                                            c.accumulate);
                bias_done = 0;
            } else if (m->pool_relu[i]) {
                /* the relu node i - 1 too: dx is its input's gradient */
                st = fnn__maxpool_relu_backward(&c, dx, dy, xi, work + act[i + 1]);
                if (st != FNN_OK) st = node_error(m, i, st);
                k ^= 1;
                i--;
                continue;
            } else {
                st = m->defs[i]->backward(&c, dx, gi, dy, xi, work + act[i + 1]);
            }
            if (st != FNN_OK) st = node_error(m, i, st);
            k ^= 1;
        }
    }
    if (st == FNN_OK) r->output_offset = act[L];
    return st;
}

/* Clip and update from the current gradients; advance the counters. */
static fnn_status apply(fnn_model *m) {
    fnn_status st = fnn__optim_apply(m->odef, &m->opt, m->params, m->grads, m->P, m->step + 1);
    if (st == FNN_OK) {
        m->step += 1;
        m->counter += 1;
    }
    return st;
}

/* The checks every entry point that trains makes; need_opt: also an optimizer. */
static fnn_status begin_step(fnn_model *m, const fnn_train_args *a, fnn_train_result *r,
                             int need_opt) {
    fnn__clear_error();
    if (!m || !a || !r) return fnn__error(FNN_ERR_ARG, "model, args or result is NULL");
    r->loss = 0.0;
    r->bad_index = -1;
    r->output_offset = 0;
    if (!m->has_loss) return fnn__error(FNN_ERR_STATE, "no loss: call fnn_model_set_loss first");
    if (need_opt && !m->has_opt)
        return fnn__error(FNN_ERR_STATE, "no optimizer: call fnn_model_set_optimizer first");
    if (!isfinite(a->denom))
        return fnn__error(FNN_ERR_ARG, "train step: denominator %g is not finite", a->denom);
    return FNN_OK;
}

fnn_status fnn_model_train_step(fnn_model *m, const fnn_train_args *a, fnn_train_result *r) {
    fnn_status st = begin_step(m, a, r, 1);
    if (st == FNN_OK) st = gradients(m, a, r);
    if (st == FNN_OK) st = apply(m);
    if (st != FNN_OK) r->output_offset = 0;
    return st;
}

fnn_status fnn_model_compute_gradients(fnn_model *m, const fnn_train_args *a,
                                       fnn_train_result *r) {
    fnn_status st = begin_step(m, a, r, 0);
    return st == FNN_OK ? gradients(m, a, r) : st;
}

fnn_status fnn_model_apply_gradients(fnn_model *m) {
    fnn__clear_error();
    if (!m) return fnn__error(FNN_ERR_ARG, "model is NULL");
    if (!m->has_opt)
        return fnn__error(FNN_ERR_STATE, "no optimizer: call fnn_model_set_optimizer first");
    return apply(m);
}

/* ------------------------------------------------------------- epochs */

/* dst[0 : n] = src[0 : n]. Short rows (a 2-feature input, a 1-column
   target) inline, as 4-float moves and a switch, with no loop that GCC
   would turn back into a memcpy call: a library call per row was ~5% of a
   tiny net's step. */
static inline void copy_row(float *FNN_RESTRICT dst, const float *FNN_RESTRICT src, int64_t n) {
    if (n > 16) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) memcpy(dst + k, src + k, 4 * sizeof(float));
    switch (n - k) {
    case 3: dst[k + 2] = src[k + 2]; /* fall through */
    case 2: dst[k + 1] = src[k + 1]; /* fall through */
    case 1: dst[k] = src[k]; /* fall through */
    default: break;
    }
}

/* A batch of 62,500 floats (250 KB) or more is gathered on every thread:
   rows of a large data set come from DRAM, and one core's outstanding
   misses bound the copy (784-float rows at batch 512: ~12% of a step). */
#define GATHER_WORK_PER_FLOAT 16.0

/* Rows i0 <= i < i1 of a batch starting at data row `start`: x rows into
   xb, labels or targets into tb, weights into wb. */
static void gather_rows(const fnn_epoch_args *a, int64_t start, int64_t i0, int64_t i1,
                        int64_t IN, int64_t D, int labels, float *xb, void *tb, float *wb) {
    for (int64_t i = i0; i < i1; i++) {
        const int64_t row = a->order ? a->order[start + i] : start + i;
        copy_row(xb + i * IN, a->x + row * IN, IN);
        if (labels)
            ((int64_t *)tb)[i] = a->labels[row];
        else
            copy_row((float *)tb + i * D, a->target + row * D, D);
        if (wb) wb[i] = a->sample_weight[row];
    }
}

/* The metric of one batch of outputs out (n, D). */
static double batch_metric(int32_t metric, const float *out, const float *target,
                           const int64_t *labels, int64_t n, int64_t D) {
    int64_t hits = 0;
    if (metric == FNN_METRIC_ARGMAX) {
        for (int64_t i = 0; i < n; i++) {
            const float *o = out + i * D;
            int64_t best = 0;   /* NumPy's argmax: the first largest, or the first NaN */
            for (int64_t j = 0; j < D; j++) {
                if (o[j] != o[j]) { best = j; break; }
                if (o[j] > o[best]) best = j;
            }
            hits += best == labels[i];
        }
        return (double)hits;
    }
    if (metric == FNN_METRIC_SIGN) {
        for (int64_t k = 0; k < n * D; k++) hits += (out[k] > 0.0f) == (target[k] > 0.5f);
        return (double)hits / (double)D;
    }
    return 0.0;
}

fnn_status fnn_model_train_epoch(fnn_model *m, const fnn_epoch_args *a, fnn_epoch_result *r) {
    fnn__clear_error();
    if (!m || !a || !r) return fnn__error(FNN_ERR_ARG, "model, args or result is NULL");
    r->rows = r->batches = 0;
    r->stop_batch = r->bad_index = -1;
    r->last_loss = 0.0;
    if (!m->has_loss || !m->has_opt)
        return fnn__error(FNN_ERR_STATE, "an epoch needs a loss and an optimizer");
    const int labels = m->ldef->labels;
    const int64_t IN = m->numel[0], D = m->numel[m->L], bs = a->batch_size;
    if (a->rows < 1 || bs < 1 || a->first_batch < 0)
        return fnn__error(FNN_ERR_SIZE, "epoch: %lld rows, batch size %lld, first batch %lld",
                          (long long)a->rows, (long long)bs, (long long)a->first_batch);
    if (!a->x || (labels ? !a->labels : !a->target))
        return fnn__error(FNN_ERR_ARG, "epoch: x and the %s are needed",
                          labels ? "labels" : "targets");
    if (a->metric == FNN_METRIC_ARGMAX ? !labels : a->metric == FNN_METRIC_SIGN && labels)
        return fnn__error(FNN_ERR_ARG, "epoch: metric %d does not fit loss %s", (int)a->metric,
                          m->ldef->name);
    if (a->weight_norm != FNN_WEIGHTS_MEAN && a->weight_norm != FNN_WEIGHTS_ROWS)
        return fnn__error(FNN_ERR_ARG, "epoch: unknown weight_norm %d", (int)a->weight_norm);
    if (a->sample_weight)   /* checked here, so that a message names the data set's row */
        for (int64_t i = 0; i < a->rows; i++)
            if (!(a->sample_weight[i] >= 0.0f && a->sample_weight[i] <= FLT_MAX))
                return fnn__error(FNN_ERR_ARG, "sample weight at row %lld is %g: weights "
                                  "must be finite and >= 0", (long long)i,
                                  (double)a->sample_weight[i]);
    if (a->order)   /* a permutation: every index in range (repeats would only bias) */
        for (int64_t i = 0; i < a->rows; i++)
            if (a->order[i] < 0 || a->order[i] >= a->rows)
                return fnn__error(FNN_ERR_ARG, "epoch: order[%lld] = %lld is out of range",
                                  (long long)i, (long long)a->order[i]);
    const int64_t rows_b = bs < a->rows ? bs : a->rows;
    int64_t xs, ts;
    if (fnn__mul_overflow(rows_b, IN, &xs) || fnn__mul_overflow(rows_b, labels ? 1 : D, &ts) ||
        (uint64_t)xs > SIZE_MAX / 16 || (uint64_t)ts > SIZE_MAX / 16)
        return fnn__error(FNN_ERR_SIZE, "epoch: batch buffers overflow");
    /* the x part rounded up to 64 bytes: the labels after it are int64 */
    const size_t xbytes = ((size_t)xs * sizeof(float) + 63) / 64 * 64;
    const size_t tbytes = ((size_t)ts * 8 + 63) / 64 * 64;
    size_t need = xbytes + tbytes + (a->sample_weight ? (size_t)rows_b * sizeof(float) : 0);
    if (m->gather_cap < need) {
        void *g = malloc(need);
        if (!g) return fnn__error(FNN_ERR_NOMEM, "out of memory for the batch buffers");
        fnn__count_alloc();
        free(m->gather);
        m->gather = g;
        m->gather_cap = need;
    }
    float *xb = (float *)m->gather;
    void *tb = (char *)m->gather + xbytes;
    float *wb = a->sample_weight ? (float *)((char *)m->gather + xbytes + tbytes) : NULL;
    const int64_t nbatch = (a->rows + bs - 1) / bs;
    int64_t last = a->max_batches > 0 && a->first_batch + a->max_batches < nbatch
                       ? a->first_batch + a->max_batches : nbatch;
    fnn_status st = FNN_OK;
    for (int64_t b = a->first_batch; b < last && st == FNN_OK; b++) {
        const int64_t start = b * bs, n = a->rows - start < bs ? a->rows - start : bs;
        /* gather the batch, rows in order; a large one split over the
           threads (a copy: the same bytes however it is split) */
        const int nt = fnn__threads_for((double)n * (double)IN * GATHER_WORK_PER_FLOAT);
        FNN_PARALLEL_RANGES(nt, n, lo, hi,
            gather_rows(a, start, lo, hi, IN, D, labels, xb, tb, wb));
        fnn_train_args t = {xb, labels ? NULL : (const float *)tb,
                            labels ? (const int64_t *)tb : NULL, n, NULL, 0, wb,
                            wb && a->weight_norm == FNN_WEIGHTS_ROWS ? (double)n : 0.0};
        fnn_train_result tr;
        st = fnn_model_train_step(m, &t, &tr);
        if (st == FNN_ERR_LABEL) {
            r->bad_index = a->order ? a->order[start + tr.bad_index] : start + tr.bad_index;
            break;
        }
        if (st != FNN_OK) break;
        r->loss_sum += tr.loss * (double)n;
        r->last_loss = tr.loss;
        if (a->metric != FNN_METRIC_NONE)
            r->correct += batch_metric(a->metric, m->work + tr.output_offset,
                                       (const float *)tb, (const int64_t *)tb, n, D);
        r->rows += n;
        r->batches += 1;
        if (!(tr.loss - tr.loss == 0.0)) {   /* NaN or +-Inf: stop after this batch */
            r->stop_batch = b;
            break;
        }
    }
    return st;
}
