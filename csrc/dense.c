/*
 * dense.c -- the linear layer: forward y = x.w + b, backward dx, dw, db.
 *
 * Size letters: N batch rows, IN input features, OUT output features.
 * All three matrix products go through fnn_sgemm (row-major, no copies):
 *   forward   y  = b (broadcast) then y += x . w      (NN, beta = 1)
 *   backward  dx = dy . w^T                           (NT, beta = 0: overwritten)
 *             dw += x^T . dy                          (TN, beta = 1: accumulated)
 *             db += column sums of dy                 (accumulated, see below)
 * Deterministic for every thread count: sgemm never splits K, and the column
 * sums of db are each computed by one thread in row order (the column block
 * is a FNN_SIMD_CLONES function: vectorised across columns, never reordered).
 */
#include <string.h>
#include "fnn_internal.h"

/* Columns summed per block of db: a stack accumulator, so dy is read row by
   row (contiguous, vectorised) and nothing is allocated. */
#define DB_BLOCK 256

/* FNN_OK if every size is >= 0 and every matrix size fits int64. */
static fnn_status check_sizes(int64_t N, int64_t IN, int64_t OUT) {
    if (fnn__check_2d(N, IN) || fnn__check_2d(IN, OUT) || fnn__check_2d(N, OUT))
        return FNN_ERR_SIZE;
    return FNN_OK;
}

/* y (N, OUT) = x (N, IN) . w (IN, OUT) + b (OUT or NULL) */
fnn_status fnn_dense_forward(float *y, const float *x, const float *w,
                             const float *b, int64_t N, int64_t IN, int64_t OUT) {
    fnn_status s = check_sizes(N, IN, OUT);
    if (s != FNN_OK) return s;
    if (N == 0 || OUT == 0) return FNN_OK;
    if (!y || (IN > 0 && (!x || !w))) return FNN_ERR_ARG;
    if (b) {
        for (int64_t i = 0; i < N; i++)
            memcpy(y + i * OUT, b, (size_t)OUT * sizeof(float));
    }
    return fnn_sgemm(0, 0, N, OUT, IN, 1.0f, x, IN, w, OUT, b ? 1.0f : 0.0f, y, OUT);
}

/* One block of db: db[j0 : j0 + nj] += sum over rows of dy[:, j0 : j0 + nj]
   (nj <= DB_BLOCK), the rows summed in order into a fresh accumulator. */
static FNN_SIMD_CLONES void column_sums_block(float *FNN_RESTRICT db,
                                              const float *FNN_RESTRICT dy,
                                              int64_t N, int64_t OUT, int64_t j0, int64_t nj) {
    float acc[DB_BLOCK];
    for (int64_t j = 0; j < nj; j++) acc[j] = 0.0f;
    for (int64_t i = 0; i < N; i++) {
        const float *row = dy + i * OUT + j0;
        for (int64_t j = 0; j < nj; j++) acc[j] += row[j];
    }
    for (int64_t j = 0; j < nj; j++) db[j0 + j] += acc[j];
}

/* db (OUT) += sum over rows of dy (N, OUT). Each column block sums its rows
   into a fresh accumulator, then adds it once: db + (dy_0 + dy_1 + ...).
   Also the db of csrc/sparse.c. */
void fnn__column_sums_add(float *db, const float *dy, int64_t N, int64_t OUT) {
    int64_t nblocks = (OUT + DB_BLOCK - 1) / DB_BLOCK;
    int nt = fnn__threads_for((double)N * (double)OUT);
    int64_t blk;
    FNN_PARALLEL_FOR(nt, blk, nblocks,
                     column_sums_block(db, dy, N, OUT, blk * DB_BLOCK,
                                       OUT - blk * DB_BLOCK < DB_BLOCK ? OUT - blk * DB_BLOCK
                                                                       : DB_BLOCK));
}

/* dx (N, IN) = dy (N, OUT) . w^T   (overwritten; NULL: skipped)
   dw (IN, OUT) += x^T . dy         (accumulated)
   db (OUT) += sum_rows dy          (accumulated; NULL: no bias) */
fnn_status fnn_dense_backward(float *dx, float *dw, float *db,
                              const float *dy, const float *x, const float *w,
                              int64_t N, int64_t IN, int64_t OUT) {
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
        s = fnn_sgemm(1, 0, IN, OUT, N, 1.0f, x, IN, dy, OUT, 1.0f, dw, OUT);
        if (s != FNN_OK) return s;
    }
    if (db && ny > 0) fnn__column_sums_add(db, dy, N, OUT);
    return FNN_OK;
}
