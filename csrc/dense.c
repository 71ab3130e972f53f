/*
 * dense.c -- the linear layer: forward y = x.w + b, backward dx, dw, db.
 *
 * Size letters: N batch rows, IN input features, OUT output features.
 * All three matrix products go through fnn_sgemm (row-major, no copies):
 *   forward   y  = act(x . w + b)                     (NN; b and act applied
 *                                                      in the GEMM write-out)
 *   backward  dx = dy . w^T                           (NT, beta = 0: overwritten)
 *             dw += x^T . dy                          (TN, beta = 1: accumulated)
 *             db += column sums of dy                 (accumulated, see below)
 * Deterministic for every thread count: sgemm never splits K, and the column
 * sums of db are each computed by one thread in row order (the column block
 * is a FNN_SIMD_CLONES function: vectorised across columns, never reordered).
 */
#include <string.h>
#include "fnn_internal.h"
#include "vmath.h"

/* Columns summed per block of db: a stack accumulator, so dy is read row by
   row (contiguous, vectorised) and nothing is allocated. */
#define DB_BLOCK 256

/* FNN_OK if every size is >= 0 and every matrix size fits int64. */
static fnn_status check_sizes(int64_t N, int64_t IN, int64_t OUT) {
    if (fnn__check_2d(N, IN) || fnn__check_2d(IN, OUT) || fnn__check_2d(N, OUT))
        return FNN_ERR_SIZE;
    return FNN_OK;
}

/* The forward's epilogue: y = act(y + b) on a finished block of y, with the
   scalar functions the activation kernels use (vmath.h), so the bits are
   those of the separate passes. One clone per activation: the loops stay
   branch-free and vectorise along the row. */
typedef struct { const float *b; int act; } bias_act;

#define BIAS_ACT_BLOCK(name, F)                                                           \
    static FNN_SIMD_CLONES void name(float *c, int64_t ldc, int64_t m, int64_t n,         \
                                     const float *FNN_RESTRICT b) {                      \
        if (ldc == n && m > 1) {   /* contiguous rows: bias by row, F in one long loop */ \
            if (b)                                                                        \
                for (int64_t i = 0; i < m; i++)                                           \
                    for (int64_t j = 0; j < n; j++) c[i * n + j] = c[i * n + j] + b[j];   \
            for (int64_t k = 0; k < m * n; k++) c[k] = F(c[k]);                           \
            return;                                                                       \
        }                                                                                 \
        for (int64_t i = 0; i < m; i++) {                                                 \
            float *FNN_RESTRICT r = c + i * ldc;                                          \
            if (b) for (int64_t j = 0; j < n; j++) r[j] = F(r[j] + b[j]);                 \
            else for (int64_t j = 0; j < n; j++) r[j] = F(r[j]);                          \
        }                                                                                 \
    }
#define ACT_NONE(v) (v)
BIAS_ACT_BLOCK(bias_block, ACT_NONE)
BIAS_ACT_BLOCK(bias_relu_block, fnn__reluf)
BIAS_ACT_BLOCK(bias_tanh_block, fnn__tanhf)
BIAS_ACT_BLOCK(bias_sigmoid_block, fnn__sigmoidf)

static void bias_act_epi(float *c, int64_t ldc, int64_t m, int64_t n, int64_t j0,
                         const void *ctx) {
    const bias_act *e = (const bias_act *)ctx;
    const float *b = e->b ? e->b + j0 : NULL;
    switch (e->act) {
    case FNN_ACT_RELU: bias_relu_block(c, ldc, m, n, b); break;
    case FNN_ACT_TANH: bias_tanh_block(c, ldc, m, n, b); break;
    case FNN_ACT_SIGMOID: bias_sigmoid_block(c, ldc, m, n, b); break;
    default: if (b) bias_block(c, ldc, m, n, b); break;
    }
}

/* y (N, OUT) = act(y) in place, with the epilogue's scalar functions. */
void fnn__act_inplace(float *y, int64_t N, int64_t OUT, int act) {
    bias_act e = {NULL, act};
    if (N > 0 && OUT > 0) bias_act_epi(y, OUT, N, OUT, 0, &e);
}

/* y (N, OUT) = act(x (N, IN) . w (IN, OUT) + b (OUT or NULL)). The bias is
   added to the finished product, x.w + b: the same single rounding as the
   kernel's beta = 1 update of a y preset to b, so every act gives the bits
   of the unfused kernels. */
fnn_status fnn__dense_forward_act(float *y, const float *x, const float *w, const float *b,
                                  int64_t N, int64_t IN, int64_t OUT, int act) {
    fnn_status s = check_sizes(N, IN, OUT);
    if (s != FNN_OK) return s;
    if (N == 0 || OUT == 0) return FNN_OK;
    if (!y || (IN > 0 && (!x || !w))) return FNN_ERR_ARG;
    bias_act e = {b, act};
    int fuse = b || act != FNN_ACT_NONE;
    return fnn__sgemm_epi(0, 0, N, OUT, IN, 1.0f, x, IN, w, OUT, 0.0f, y, OUT,
                          fuse ? bias_act_epi : NULL, &e);
}

/* y (N, OUT) = x (N, IN) . w (IN, OUT) + b (OUT or NULL) */
fnn_status fnn_dense_forward(float *y, const float *x, const float *w,
                             const float *b, int64_t N, int64_t IN, int64_t OUT) {
    return fnn__dense_forward_act(y, x, w, b, N, IN, OUT, FNN_ACT_NONE);
}

/* db[0 : nj] += acc (add) or = acc: the last pass of a column block. */
static FNN_ALWAYS_INLINE void store_sums(float *FNN_RESTRICT db, const float *FNN_RESTRICT acc,
                                         int64_t nj, int add) {
    if (add)
        for (int64_t j = 0; j < nj; j++) db[j] += acc[j];
    else
        for (int64_t j = 0; j < nj; j++) db[j] = acc[j];
}

/* One block of db: db[j0 : j0 + nj] (+)= sum over rows of dy[:, j0 : j0 + nj]
   (nj <= DB_BLOCK), the rows summed in order into a fresh accumulator that
   is added to db (add) or written over it. */
static FNN_SIMD_CLONES void column_sums_block(float *FNN_RESTRICT db,
                                              const float *FNN_RESTRICT dy,
                                              int64_t N, int64_t OUT, int64_t j0, int64_t nj,
                                              int add) {
    float acc[DB_BLOCK];
    for (int64_t j = 0; j < nj; j++) acc[j] = 0.0f;
    for (int64_t i = 0; i < N; i++) {
        const float *row = dy + i * OUT + j0;
        for (int64_t j = 0; j < nj; j++) acc[j] += row[j];
    }
    store_sums(db + j0, acc, nj, add);
}

/* db (OUT) (+)= sum over rows of dy (N, OUT). Each column block sums its
   rows into a fresh accumulator, then adds it once: db + (dy_0 + dy_1 +
   ...), or writes it (equal to adding it to zeros, but for the sign of a
   zero sum). Also the db of csrc/sparse.c. */
static void column_sums(float *db, const float *dy, int64_t N, int64_t OUT, int add) {
    int64_t nblocks = (OUT + DB_BLOCK - 1) / DB_BLOCK;
    int nt = fnn__threads_for((double)N * (double)OUT);
    int64_t blk;
    FNN_PARALLEL_FOR(nt, blk, nblocks,
                     column_sums_block(db, dy, N, OUT, blk * DB_BLOCK,
                                       OUT - blk * DB_BLOCK < DB_BLOCK ? OUT - blk * DB_BLOCK
                                                                       : DB_BLOCK,
                                       add));
}

void fnn__column_sums_add(float *db, const float *dy, int64_t N, int64_t OUT) {
    column_sums(db, dy, N, OUT, 1);
}

/* The backward twin of the fused forward: dz = dy * act'(y), written, and
   db += column sums of dz, in one pass over dy and y. Each column block sums
   its rows in order into a fresh accumulator, as column_sums_block does, and
   each dz is the expression of the activation's own backward (activations.c;
   relu reads its output, which is > 0 exactly where its input is). */
#define ACT_GRAD_ROWS(G, NJ)                                                               \
    do {                                                                                   \
        for (int64_t j = 0; j < (NJ); j++) acc[j] = 0.0f;                                  \
        for (int64_t i = 0; i < N; i++) {                                                  \
            const float *g = dy + i * OUT + j0, *v = y + i * OUT + j0;                     \
            float *d = dz + i * OUT + j0;                                                  \
            for (int64_t j = 0; j < (NJ); j++) {                                           \
                float t = G(g[j], v[j]);                                                   \
                d[j] = t;                                                                  \
                acc[j] += t;                                                               \
            }                                                                              \
        }                                                                                  \
        store_sums(db + j0, acc, (NJ), add);                                               \
    } while (0)
/* A block of exactly 16 columns (a 16-unit layer) has its own copy of the
   loop, whose accumulator GCC keeps in one register instead of on the
   stack: the same operations in the same order. */
#define ACT_GRAD_BLOCK(name, G)                                                            \
    static FNN_SIMD_CLONES void name(float *FNN_RESTRICT dz, float *FNN_RESTRICT db,       \
                                     const float *FNN_RESTRICT dy,                         \
                                     const float *FNN_RESTRICT y, int64_t N, int64_t OUT, \
                                     int64_t j0, int64_t nj, int add) {                    \
        float acc[DB_BLOCK];                                                               \
        if (nj == 16) ACT_GRAD_ROWS(G, 16);                                                \
        else ACT_GRAD_ROWS(G, nj);                                                         \
    }
#define RELU_GRAD(g, v) ((v) > 0.0f ? (g) : 0.0f)
#define TANH_GRAD(g, v) ((g) * (1.0f - (v) * (v)))
#define SIGMOID_GRAD(g, v) ((g) * (v) * (1.0f - (v)))
ACT_GRAD_BLOCK(relu_grad_block, RELU_GRAD)
ACT_GRAD_BLOCK(tanh_grad_block, TANH_GRAD)
ACT_GRAD_BLOCK(sigmoid_grad_block, SIGMOID_GRAD)

static void act_grad_block(int act, float *dz, float *db, const float *dy, const float *y,
                           int64_t N, int64_t OUT, int64_t j0, int64_t nj, int add) {
    switch (act) {
    case FNN_ACT_RELU: relu_grad_block(dz, db, dy, y, N, OUT, j0, nj, add); break;
    case FNN_ACT_TANH: tanh_grad_block(dz, db, dy, y, N, OUT, j0, nj, add); break;
    default: sigmoid_grad_block(dz, db, dy, y, N, OUT, j0, nj, add); break;
    }
}

fnn_status fnn__act_backward_bias(float *dz, float *db, const float *dy, const float *y,
                                  int64_t N, int64_t OUT, int act, int add) {
    fnn_status s = fnn__check_2d(N, OUT);
    if (s != FNN_OK) return s;
    if (N == 0 || OUT == 0) return FNN_OK;
    if (!dz || !db || !dy || !y || act < FNN_ACT_RELU || act > FNN_ACT_SIGMOID)
        return FNN_ERR_ARG;
    int64_t nblocks = (OUT + DB_BLOCK - 1) / DB_BLOCK;
    int nt = fnn__threads_for(2.0 * (double)N * (double)OUT);
    int64_t blk;
    FNN_PARALLEL_FOR(nt, blk, nblocks,
                     act_grad_block(act, dz, db, dy, y, N, OUT, blk * DB_BLOCK,
                                    OUT - blk * DB_BLOCK < DB_BLOCK ? OUT - blk * DB_BLOCK
                                                                    : DB_BLOCK,
                                    add));
    return FNN_OK;
}

/* dx (N, IN) = dy (N, OUT) . w^T   (overwritten; NULL: skipped)
   dw (IN, OUT) (+)= x^T . dy       (accumulated when add, else written)
   db (OUT) (+)= sum_rows dy        (likewise; NULL: no bias) */
fnn_status fnn__dense_backward_to(float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, int64_t N, int64_t IN,
                                  int64_t OUT, int add) {
    fnn_status s = check_sizes(N, IN, OUT);
    if (s != FNN_OK) return s;
    int64_t nx = N * IN, nw = IN * OUT, ny = N * OUT;
    if ((ny > 0 && !dy) || (nx > 0 && !x) || (nw > 0 && (!w || !dw)))
        return FNN_ERR_ARG;
    if (dx && nx > 0) {
        s = fnn_sgemm(0, 1, N, IN, OUT, 1.0f, dy, OUT, w, OUT, 0.0f, dx, IN);
        if (s != FNN_OK) return s;
    }
    if (nw > 0) {
        s = fnn_sgemm(1, 0, IN, OUT, N, 1.0f, x, IN, dy, OUT, add ? 1.0f : 0.0f, dw, OUT);
        if (s != FNN_OK) return s;
    }
    /* with no rows, a written db is zeros (column_sums reads no dy) */
    if (db && (ny > 0 || !add)) column_sums(db, dy, N, OUT, add);
    return FNN_OK;
}

fnn_status fnn_dense_backward(float *dx, float *dw, float *db,
                              const float *dy, const float *x, const float *w,
                              int64_t N, int64_t IN, int64_t OUT) {
    return fnn__dense_backward_to(dx, dw, db, dy, x, w, N, IN, OUT, 1);
}
