/*
 * sparse.c -- the linear layer with a sparse (CSR) input: forward
 * y = x.w + b and the parameter gradients dw, db. dx is never computed: a
 * sparse input is the model's input, which has no gradient.
 *
 * Size letters: N batch rows, IN input features, OUT output features, NNZ
 * stored entries. x is CSR (struct fnn_csr in csrc/fastnn.h): row i holds
 * the entries k in [indptr[i], indptr[i+1]), x[i, indices[k]] = data[k].
 * Column indices need not be sorted; a repeated (i, j) counts as the sum of
 * its entries (scipy.sparse's meaning), explicit zeros are kept.
 *
 *   forward   y[i, :] = b + sum_k data[k] * w[indices[k], :]     (OVERWRITTEN)
 *   backward  dw[indices[k], :] += data[k] * dy[i, :]            (ACCUMULATED)
 *             db += column sums of dy                             (ACCUMULATED)
 *
 * Deterministic for every thread count. Forward splits rows across threads
 * and each y element is summed by one thread over k in order. Backward
 * splits dw's COLUMNS (blocks of OUT) across threads: every thread walks all
 * rows and entries in order for its own columns, so each dw element gets its
 * terms in the same order whatever the thread count, with no atomics and no
 * per-thread copies of dw (which would cost IN * OUT per thread: IN is the
 * large dimension of sparse data). db is dense.c's column sums (the same bits
 * as the dense layer).
 */
#include "fnn_internal.h"

/* Columns of dw per backward block: 16 floats, one cache line, so two
   threads never write the same line of a dw row. */
#define COL_BLOCK 16

fnn_status fnn_csr_check(const fnn_csr *x) {
    if (!x) return fnn__error(FNN_ERR_ARG, "sparse input is NULL");
    const int64_t N = x->rows, IN = x->cols, NNZ = x->nnz;
    if (N < 0 || IN < 0 || NNZ < 0)
        return fnn__error(FNN_ERR_SIZE, "sparse input: %lld rows, %lld columns, %lld entries",
                          (long long)N, (long long)IN, (long long)NNZ);
    if (!x->indptr || (NNZ > 0 && (!x->indices || !x->data)))
        return fnn__error(FNN_ERR_ARG, "sparse input: indptr, indices or data is NULL");
    if (x->indptr[0] != 0)
        return fnn__error(FNN_ERR_ARG, "sparse input: indptr[0] is %lld, must be 0",
                          (long long)x->indptr[0]);
    for (int64_t i = 0; i < N; i++)
        if (x->indptr[i + 1] < x->indptr[i])
            return fnn__error(FNN_ERR_ARG, "sparse input: indptr decreases at row %lld "
                              "(%lld then %lld); it must be non-decreasing", (long long)i,
                              (long long)x->indptr[i], (long long)x->indptr[i + 1]);
    if (x->indptr[N] != NNZ)
        return fnn__error(FNN_ERR_ARG, "sparse input: indptr[%lld] is %lld, must equal the "
                          "number of entries %lld", (long long)N, (long long)x->indptr[N],
                          (long long)NNZ);
    for (int64_t k = 0; k < NNZ; k++)
        if (x->indices[k] < 0 || x->indices[k] >= IN)
            return fnn__error(FNN_ERR_ARG, "sparse input: column index %lld at entry %lld is "
                              "out of range for %lld columns", (long long)x->indices[k],
                              (long long)k, (long long)IN);
    return FNN_OK;
}

/* y[lo:hi] of the forward (x already checked). */
static FNN_SIMD_CLONES void forward_rows(float *FNN_RESTRICT y, const fnn_csr *x,
                                         const float *FNN_RESTRICT w,
                                         const float *FNN_RESTRICT b, int64_t OUT,
                                         int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        float *FNN_RESTRICT yi = y + i * OUT;
        for (int64_t j = 0; j < OUT; j++) yi[j] = b ? b[j] : 0.0f;
        for (int64_t k = x->indptr[i]; k < x->indptr[i + 1]; k++) {
            const float v = x->data[k];
            const float *FNN_RESTRICT wr = w + x->indices[k] * OUT;
            for (int64_t j = 0; j < OUT; j++) yi[j] += v * wr[j];
        }
    }
}

/* dw[:, c0:c1] += x^T dy[:, c0:c1] (x already checked), rows in order. */
static FNN_SIMD_CLONES void backward_cols(float *FNN_RESTRICT dw, const fnn_csr *x,
                                          const float *FNN_RESTRICT dy, int64_t OUT,
                                          int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < x->rows; i++) {
        const float *FNN_RESTRICT dyi = dy + i * OUT;
        for (int64_t k = x->indptr[i]; k < x->indptr[i + 1]; k++) {
            const float v = x->data[k];
            float *FNN_RESTRICT dwr = dw + x->indices[k] * OUT;
            for (int64_t j = c0; j < c1; j++) dwr[j] += v * dyi[j];
        }
    }
}

fnn_status fnn__csr_dense_forward(float *y, const fnn_csr *x, const float *w, const float *b,
                                  int64_t OUT) {
    const int64_t N = x->rows;
    if (N == 0 || OUT == 0) return FNN_OK;
    int nt = fnn__threads_for((double)x->nnz * (double)OUT + (double)N * (double)OUT);
    FNN_PARALLEL_RANGES(nt, N, lo, hi, forward_rows(y, x, w, b, OUT, lo, hi));
    return FNN_OK;
}

fnn_status fnn__csr_dense_backward(float *dw, float *db, const float *dy, const fnn_csr *x,
                                   int64_t OUT) {
    const int64_t N = x->rows;
    if (N == 0 || OUT == 0) return FNN_OK;
    int64_t nblocks = (OUT + COL_BLOCK - 1) / COL_BLOCK, blk;
    int nt = fnn__threads_for((double)x->nnz * (double)OUT);
    if (nt > nblocks) nt = (int)nblocks;
    FNN_PARALLEL_FOR(nt, blk, nblocks,
                     backward_cols(dw, x, dy, OUT, blk * COL_BLOCK,
                                   OUT - blk * COL_BLOCK < COL_BLOCK ? OUT
                                                                     : (blk + 1) * COL_BLOCK));
    if (db) fnn__column_sums_add(db, dy, N, OUT);
    return FNN_OK;
}

/* The checks both public kernels make: the CSR arrays, then the sizes. */
static fnn_status check_args(const fnn_csr *x, int64_t OUT, const char *what) {
    fnn_status s = fnn_csr_check(x);
    if (s != FNN_OK) return s;
    if (OUT < 0 || fnn__check_2d(x->rows, OUT) || fnn__check_2d(x->cols, OUT))
        return fnn__error(FNN_ERR_SIZE, "%s: %lld x %lld input and %lld outputs: sizes "
                          "overflow or are negative", what, (long long)x->rows,
                          (long long)x->cols, (long long)OUT);
    return FNN_OK;
}

fnn_status fnn_csr_dense_forward(float *y, const fnn_csr *x, const float *w, const float *b,
                                 int64_t OUT) {
    fnn_status s = check_args(x, OUT, "csr_dense_forward");
    if (s != FNN_OK) return s;
    if (x->rows > 0 && OUT > 0 && (!y || (x->nnz > 0 && !w)))
        return fnn__error(FNN_ERR_ARG, "csr_dense_forward: y or w is NULL");
    return fnn__csr_dense_forward(y, x, w, b, OUT);
}

fnn_status fnn_csr_dense_backward(float *dw, float *db, const float *dy, const fnn_csr *x,
                                  int64_t OUT) {
    fnn_status s = check_args(x, OUT, "csr_dense_backward");
    if (s != FNN_OK) return s;
    if (x->rows > 0 && OUT > 0 && (!dy || (x->nnz > 0 && !dw)))
        return fnn__error(FNN_ERR_ARG, "csr_dense_backward: dw or dy is NULL");
    return fnn__csr_dense_backward(dw, db, dy, x, OUT);
}
