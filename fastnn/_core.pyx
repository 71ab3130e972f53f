# cython: language_level=3
"""The C backend: a thin bridge from NumPy arrays to fastnn's C core.

Every function here checks dtype, contiguity, shape and writability, raises a
clear ``TypeError``/``ValueError``, releases the GIL for exactly one call to
an ``fnn_*`` function and turns its status into a Python exception. It does
no arithmetic. The pure-NumPy twin with the same signatures is
``fastnn.reference``.

Conventions (as in csrc/fastnn.h): outputs first, then inputs, then scalars.
Input gradients (``dx``) are overwritten, parameter gradients (``dw``, ``db``)
accumulate. Arrays handed to this module are never copied: a float64 or
strided array is an error here (the public API converts before it calls).
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.math cimport isfinite

cnp.import_array()

cdef extern from "fastnn.h" nogil:
    ctypedef enum fnn_status:
        FNN_OK
        FNN_ERR_SIZE
        FNN_ERR_LABEL
        FNN_ERR_NOMEM
        FNN_ERR_ARG
    const char *fnn_status_string(fnn_status s)
    int fnn_get_num_threads()
    fnn_status fnn_set_num_threads(int n)
    int fnn_has_openmp()
    fnn_status fnn_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K,
                         float alpha, const float *A, int64_t lda,
                         const float *B, int64_t ldb,
                         float beta, float *C, int64_t ldc)
    const char *fnn_sgemm_kernel_name()
    int64_t fnn_alloc_count()
    int fnn_all_finite(const float *x, int64_t n)
    fnn_status fnn_dense_forward(float *y, const float *x, const float *w,
                                 const float *b, int64_t N, int64_t IN, int64_t OUT)
    fnn_status fnn_dense_backward(float *dx, float *dw, float *db,
                                  const float *dy, const float *x, const float *w,
                                  int64_t N, int64_t IN, int64_t OUT)
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
    fnn_status fnn_clip_grad_norm(float *grads, int64_t P, float max_norm, double *norm)

    ctypedef struct fnn_layer:
        int32_t op
        int32_t has_bias
        int64_t in_ "in"
        int64_t out
        int64_t w_off
        int64_t b_off
        float param
    ctypedef struct fnn_loss:
        int32_t kind
        float delta
        const float *weight
        int64_t ignore_index
    ctypedef struct fnn_optim:
        int32_t kind
        int32_t flag
        float lr, weight_decay, eps, momentum, dampening, beta1, beta2, alpha, lr_decay
        float max_grad_norm
        float *state0
        float *state1
    fnn_status fnn_plan_workspace(int64_t *size, const fnn_layer *layers, int64_t L, int64_t N)
    fnn_status fnn_forward(float *out, const fnn_layer *layers, int64_t L,
                           const float *params, int64_t P, const float *x, int64_t N,
                           float *work, int64_t work_size)
    fnn_status fnn_train_step(double *loss, const fnn_layer *layers, int64_t L,
                              float *params, float *grads, int64_t P,
                              const float *x, const float *target_f, const int64_t *target_i,
                              int64_t N, const fnn_loss *lossd, const fnn_optim *opt,
                              int64_t step, uint64_t seed, int64_t counter,
                              float *work, int64_t work_size, int64_t *bad_index)

NAME = "c"

# --------------------------------------------------------------- checks

cdef object _shp(object a, bint strides=False):
    """The shape (or strides) tuple of an array, for messages and comparisons."""
    return a.strides if strides else a.shape


cdef inline cnp.ndarray _arr(object a, str name, bint out, int typenum=cnp.NPY_FLOAT32):
    """Check that `a` is a C-contiguous ndarray of the given dtype (writable if out)."""
    if not isinstance(a, cnp.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum:
        expected = "float32" if typenum == cnp.NPY_FLOAT32 else "int64"
        raise TypeError(f"{name}: expected {expected}, got {arr.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{name} must be C-contiguous (got strides {_shp(arr, True)} "
                         f"for shape {_shp(arr)}); use numpy.ascontiguousarray")
    if out and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} is read-only")
    return arr


cdef inline float *_fp(object a, str name, bint out) except? NULL:
    return <float *>cnp.PyArray_DATA(_arr(a, name, out))


cdef inline float *_fp_opt(object a, str name, bint out, int64_t size) except? NULL:
    """Pointer of an optional float32 array of `size` elements (None -> NULL)."""
    if a is None:
        return NULL
    cdef cnp.ndarray arr = _arr(a, name, out)
    if cnp.PyArray_SIZE(arr) != size:
        raise ValueError(f"{name} must have {size} elements, got shape {_shp(arr)}")
    return <float *>cnp.PyArray_DATA(arr)


cdef inline void _shape2(cnp.ndarray a, str name, int64_t rows, int64_t cols) except *:
    if cnp.PyArray_NDIM(a) != 2 or a.shape[0] != rows or a.shape[1] != cols:
        raise ValueError(f"{name} must have shape ({rows}, {cols}), got {_shp(a)}")


cdef inline void _same_shape(cnp.ndarray a, str name, cnp.ndarray ref, str refname) except *:
    if _shp(a) != _shp(ref):
        raise ValueError(f"{name} must have the same shape as {refname} {_shp(ref)}, "
                         f"got {_shp(a)}")


cdef inline char *_extent(cnp.ndarray a, char **end):
    """[start, *end): the bytes an array's elements span (like numpy's may_share_memory)."""
    cdef char *start = <char *>cnp.PyArray_DATA(a)
    cdef char *stop = start
    cdef int d
    cdef cnp.npy_intp n, st
    if cnp.PyArray_SIZE(a) == 0:
        end[0] = start
        return start
    stop = start + cnp.PyArray_ITEMSIZE(a)
    for d in range(cnp.PyArray_NDIM(a)):
        n = cnp.PyArray_DIM(a, d)
        st = cnp.PyArray_STRIDE(a, d)
        if st >= 0:
            stop += (n - 1) * st
        else:
            start += (n - 1) * st
    end[0] = stop
    return start


cdef inline void _no_overlap(object out, str oname, object inp, str iname) except *:
    """ValueError if the memory spans of `out` and `inp` intersect (both ndarrays
    or None). A bounds check: cheap, and conservative like may_share_memory."""
    if out is None or inp is None:
        return
    if not isinstance(out, cnp.ndarray) or not isinstance(inp, cnp.ndarray):
        bad = oname if not isinstance(out, cnp.ndarray) else iname
        raise TypeError(f"{bad}: expected a numpy.ndarray")
    cdef char *e1
    cdef char *e2
    cdef char *s1 = _extent(<cnp.ndarray>out, &e1)
    cdef char *s2 = _extent(<cnp.ndarray>inp, &e2)
    if s1 < e2 and s2 < e1:
        raise ValueError(f"{oname} must not share memory with {iname}")


cdef inline object _raise(fnn_status s, str where):
    if s == FNN_OK:
        return None
    msg = f"{where}: {fnn_status_string(s).decode()}"
    if s == FNN_ERR_NOMEM:
        raise MemoryError(msg)
    raise ValueError(msg)


cdef inline int64_t _isize(object n) except? -1:
    return <int64_t>n


# --------------------------------------------------------------- threads

def get_num_threads():
    """Number of threads the C kernels use (1 in a build without OpenMP)."""
    return fnn_get_num_threads()


def set_num_threads(int n):
    """Set the kernels' thread count (n >= 1), or 0 for OpenMP's default."""
    _raise(fnn_set_num_threads(n), "set_num_threads")


def has_openmp():
    """True if the C core was compiled with OpenMP."""
    return bool(fnn_has_openmp())


def sgemm_kernel_name():
    """Name of the GEMM micro-kernel chosen at import."""
    return fnn_sgemm_kernel_name().decode()


def alloc_count():
    """Heap allocations the C core has made so far (flat once a step is warm)."""
    return fnn_alloc_count()


def all_finite(x):
    """True if the float32 C-contiguous array x holds no NaN or infinity."""
    cdef cnp.ndarray a = _arr(x, "x", False)
    cdef const float *p = <const float *>cnp.PyArray_DATA(a)
    cdef int64_t n = cnp.PyArray_SIZE(a)
    cdef int ok
    with nogil:
        ok = fnn_all_finite(p, n)
    return bool(ok)


# ------------------------------------------------------------------ gemm

cdef inline int64_t _ld(cnp.ndarray a, str name) except -1:
    """Leading dimension (row stride in elements) of a 2-D float32 view."""
    if not isinstance(a, cnp.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT32:
        raise TypeError(f"{name}: expected float32, got {a.dtype}")
    if cnp.PyArray_NDIM(a) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {_shp(a)}")
    cdef int64_t rows = a.shape[0], cols = a.shape[1]
    cdef int64_t s0 = a.strides[0], s1 = a.strides[1]
    if rows == 0 or cols == 0:
        return cols if cols > 0 else 1
    if cols > 1 and s1 != 4:
        raise ValueError(f"{name} must have contiguous rows (column stride 4 bytes, "
                         f"got {s1}); use numpy.ascontiguousarray")
    if rows == 1:
        return cols
    if s0 <= 0 or s0 % 4 != 0 or s0 // 4 < cols:
        raise ValueError(f"{name} has an unsupported row stride {s0} bytes "
                         f"(must be positive, a multiple of 4 and >= {4 * cols})")
    return s0 // 4


def sgemm(bint transA, bint transB, float alpha, A, B, float beta, C):
    """C = alpha * op(A) @ op(B) + beta * C, in place.

    A, B and C are 2-D float32 arrays whose rows are contiguous; their row
    strides are passed as leading dimensions, so slices such as
    ``big[:, :n]`` work. beta == 0 overwrites C without reading it.
    """
    cdef int64_t lda = _ld(A, "A"), ldb = _ld(B, "B"), ldc = _ld(C, "C")
    cdef int64_t M = C.shape[0], N = C.shape[1]
    cdef int64_t K = A.shape[0] if transA else A.shape[1]
    cdef int64_t am = A.shape[1] if transA else A.shape[0]
    cdef int64_t bk = B.shape[1] if transB else B.shape[0]
    cdef int64_t bn = B.shape[0] if transB else B.shape[1]
    if am != M or bn != N or bk != K:
        raise ValueError(f"sgemm shapes do not match: op(A) is ({am}, {K}), "
                         f"op(B) is ({bk}, {bn}), C is ({M}, {N})")
    if not C.flags.writeable:
        raise ValueError("C is read-only")
    _no_overlap(C, "C", A, "A")
    _no_overlap(C, "C", B, "B")
    cdef const float *pa = <const float *>cnp.PyArray_DATA(A)
    cdef const float *pb = <const float *>cnp.PyArray_DATA(B)
    cdef float *pc = <float *>cnp.PyArray_DATA(C)
    cdef fnn_status s
    with nogil:
        s = fnn_sgemm(transA, transB, M, N, K, alpha, pa, lda, pb, ldb, beta, pc, ldc)
    _raise(s, "sgemm")


# ----------------------------------------------------------------- dense

def dense_forward(y, x, w, b):
    """y (N, OUT) = x (N, IN) @ w (IN, OUT) + b (OUT); b may be None."""
    cdef cnp.ndarray ax = _arr(x, "x", False), aw = _arr(w, "w", False)
    cdef cnp.ndarray ay = _arr(y, "y", True)
    if cnp.PyArray_NDIM(ax) != 2:
        raise ValueError(f"x must be 2-D (batch, features), got shape {_shp(ax)}")
    if cnp.PyArray_NDIM(aw) != 2:
        raise ValueError(f"w must be 2-D (in, out), got shape {_shp(aw)}")
    cdef int64_t N = ax.shape[0], IN = ax.shape[1], OUT = aw.shape[1]
    if aw.shape[0] != IN:
        raise ValueError(f"x has {IN} features but w expects {aw.shape[0]} "
                         f"(x is {_shp(ax)}, w is {_shp(aw)})")
    _shape2(ay, "y", N, OUT)
    cdef float *pb = _fp_opt(b, "b", False, OUT)
    _no_overlap(y, "y", x, "x")
    _no_overlap(y, "y", w, "w")
    _no_overlap(y, "y", b, "b")
    cdef float *py = <float *>cnp.PyArray_DATA(ay)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef float *pw = <float *>cnp.PyArray_DATA(aw)
    cdef fnn_status s
    with nogil:
        s = fnn_dense_forward(py, px, pw, pb, N, IN, OUT)
    _raise(s, "dense_forward")


def dense_backward(dx, dw, db, dy, x, w):
    """dx = dy @ w.T (overwritten; None skips it), dw += x.T @ dy, db += dy.sum(0)."""
    cdef cnp.ndarray ax = _arr(x, "x", False), aw = _arr(w, "w", False)
    cdef cnp.ndarray ady = _arr(dy, "dy", False), adw = _arr(dw, "dw", True)
    if cnp.PyArray_NDIM(ax) != 2 or cnp.PyArray_NDIM(aw) != 2:
        raise ValueError(f"x and w must be 2-D, got {_shp(ax)} and {_shp(aw)}")
    cdef int64_t N = ax.shape[0], IN = ax.shape[1], OUT = aw.shape[1]
    _shape2(aw, "w", IN, OUT)
    _shape2(ady, "dy", N, OUT)
    _shape2(adw, "dw", IN, OUT)
    cdef float *pdx = NULL
    if dx is not None:
        _shape2(_arr(dx, "dx", True), "dx", N, IN)
        pdx = <float *>cnp.PyArray_DATA(dx)
        for other, oname in ((dw, "dw"), (db, "db"), (dy, "dy"), (x, "x"), (w, "w")):
            _no_overlap(dx, "dx", other, oname)
    cdef float *pdb = _fp_opt(db, "db", True, OUT)
    for other, oname in ((dy, "dy"), (x, "x"), (w, "w")):
        _no_overlap(dw, "dw", other, oname)
        _no_overlap(db, "db", other, oname)
    _no_overlap(dw, "dw", db, "db")
    cdef float *pdw = <float *>cnp.PyArray_DATA(adw)
    cdef float *pdy = <float *>cnp.PyArray_DATA(ady)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef float *pw = <float *>cnp.PyArray_DATA(aw)
    cdef fnn_status s
    with nogil:
        s = fnn_dense_backward(pdx, pdw, pdb, pdy, px, pw, N, IN, OUT)
    _raise(s, "dense_backward")


# ----------------------------------------------------------- activations

cdef inline int64_t _elementwise(object y, str yname, object x, str xname) except -1:
    """Check y (out) and x (in) are float32 C-contiguous of one shape; return size."""
    cdef cnp.ndarray ay = _arr(y, yname, True), ax = _arr(x, xname, False)
    _same_shape(ay, yname, ax, xname)
    return cnp.PyArray_SIZE(ax)


cdef inline int64_t _elementwise_bw(object dx, object dy, object x, object y) except -1:
    cdef int64_t n = _elementwise(dx, "dx", dy, "dy")
    _same_shape(_arr(x, "x", False), "x", <cnp.ndarray>dy, "dy")
    _same_shape(_arr(y, "y", False), "y", <cnp.ndarray>dy, "dy")
    _no_overlap(dx, "dx", x, "x")
    _no_overlap(dx, "dx", y, "y")
    return n


def relu_forward(y, x):
    """y = max(x, 0)."""
    cdef int64_t n = _elementwise(y, "y", x, "x")
    cdef float *py = _fp(y, "y", True)
    cdef float *px = _fp(x, "x", False)
    cdef fnn_status s
    with nogil:
        s = fnn_relu_forward(py, px, n)
    _raise(s, "relu_forward")


def relu_backward(dx, dy, x, y):
    """dx = dy * (x > 0)."""
    cdef int64_t n = _elementwise_bw(dx, dy, x, y)
    cdef float *pdx = _fp(dx, "dx", True)
    cdef float *pdy = _fp(dy, "dy", False)
    cdef float *px = _fp(x, "x", False)
    cdef float *py = _fp(y, "y", False)
    cdef fnn_status s
    with nogil:
        s = fnn_relu_backward(pdx, pdy, px, py, n)
    _raise(s, "relu_backward")


def leaky_relu_forward(y, x, float slope):
    """y = x if x > 0 else slope * x."""
    cdef int64_t n = _elementwise(y, "y", x, "x")
    cdef float *py = _fp(y, "y", True)
    cdef float *px = _fp(x, "x", False)
    cdef fnn_status s
    with nogil:
        s = fnn_leaky_relu_forward(py, px, n, slope)
    _raise(s, "leaky_relu_forward")


def leaky_relu_backward(dx, dy, x, y, float slope):
    """dx = dy if x > 0 else slope * dy."""
    cdef int64_t n = _elementwise_bw(dx, dy, x, y)
    cdef float *pdx = _fp(dx, "dx", True)
    cdef float *pdy = _fp(dy, "dy", False)
    cdef float *px = _fp(x, "x", False)
    cdef float *py = _fp(y, "y", False)
    cdef fnn_status s
    with nogil:
        s = fnn_leaky_relu_backward(pdx, pdy, px, py, n, slope)
    _raise(s, "leaky_relu_backward")


ctypedef fnn_status (*unary_fw_t)(float *, const float *, int64_t) noexcept nogil
ctypedef fnn_status (*unary_bw_t)(float *, const float *, const float *,
                                  const float *, int64_t) noexcept nogil


cdef inline _unary_fw(unary_fw_t f, y, x, str where):
    cdef int64_t n = _elementwise(y, "y", x, "x")
    cdef float *py = _fp(y, "y", True)
    cdef float *px = _fp(x, "x", False)
    cdef fnn_status s
    with nogil:
        s = f(py, px, n)
    _raise(s, where)


cdef inline _unary_bw(unary_bw_t f, dx, dy, x, y, str where):
    cdef int64_t n = _elementwise_bw(dx, dy, x, y)
    cdef float *pdx = _fp(dx, "dx", True)
    cdef float *pdy = _fp(dy, "dy", False)
    cdef float *px = _fp(x, "x", False)
    cdef float *py = _fp(y, "y", False)
    cdef fnn_status s
    with nogil:
        s = f(pdx, pdy, px, py, n)
    _raise(s, where)


def sigmoid_forward(y, x):
    """y = 1 / (1 + exp(-x))."""
    _unary_fw(fnn_sigmoid_forward, y, x, "sigmoid_forward")


def sigmoid_backward(dx, dy, x, y):
    """dx = dy * y * (1 - y)."""
    _unary_bw(fnn_sigmoid_backward, dx, dy, x, y, "sigmoid_backward")


def tanh_forward(y, x):
    """y = tanh(x)."""
    _unary_fw(fnn_tanh_forward, y, x, "tanh_forward")


def tanh_backward(dx, dy, x, y):
    """dx = dy * (1 - y^2)."""
    _unary_bw(fnn_tanh_backward, dx, dy, x, y, "tanh_backward")


def gelu_forward(y, x):
    """GELU, tanh approximation."""
    _unary_fw(fnn_gelu_forward, y, x, "gelu_forward")


def gelu_backward(dx, dy, x, y):
    """dx = dy * GELU'(x) (tanh approximation)."""
    _unary_bw(fnn_gelu_backward, dx, dy, x, y, "gelu_backward")


def softmax_forward(y, x):
    """Row-wise softmax of x (N, C)."""
    cdef int64_t n = _elementwise(y, "y", x, "x")
    if (<cnp.ndarray>x).ndim != 2:
        raise ValueError(f"softmax expects 2-D (batch, classes), got shape {_shp(x)}")
    _no_overlap(y, "y", x, "x")
    cdef int64_t N = x.shape[0], C = x.shape[1]
    cdef float *py = _fp(y, "y", True)
    cdef float *px = _fp(x, "x", False)
    cdef fnn_status s
    with nogil:
        s = fnn_softmax_forward(py, px, N, C)
    _raise(s, "softmax_forward")


def softmax_backward(dx, dy, x, y):
    """dx = y * (dy - sum(dy * y, axis=1))."""
    cdef int64_t n = _elementwise_bw(dx, dy, x, y)
    if (<cnp.ndarray>dy).ndim != 2:
        raise ValueError(f"softmax expects 2-D (batch, classes), got shape {_shp(dy)}")
    _no_overlap(dx, "dx", dy, "dy")
    cdef int64_t N = dy.shape[0], C = dy.shape[1]
    cdef float *pdx = _fp(dx, "dx", True)
    cdef float *pdy = _fp(dy, "dy", False)
    cdef float *px = _fp(x, "x", False)
    cdef float *py = _fp(y, "y", False)
    cdef fnn_status s
    with nogil:
        s = fnn_softmax_backward(pdx, pdy, px, py, N, C)
    _raise(s, "softmax_backward")


# ---------------------------------------------------------------- losses

cdef inline cnp.ndarray _pred2d(object pred, str name):
    cdef cnp.ndarray a = _arr(pred, name, False)
    if cnp.PyArray_NDIM(a) != 2:
        raise ValueError(f"{name} must be 2-D (batch, outputs), got shape {_shp(a)}")
    return a


cdef inline float *_dpred(object dpred, cnp.ndarray pred, str pname, object others) except? NULL:
    if dpred is None:
        return NULL
    cdef cnp.ndarray a = _arr(dpred, "dpred", True)
    _same_shape(a, "dpred", pred, pname)
    for other, oname in others:
        _no_overlap(dpred, "dpred", other, oname)
    return <float *>cnp.PyArray_DATA(a)


ctypedef fnn_status (*reg_loss_t)(double *, float *, const float *, const float *,
                                  int64_t, int64_t) noexcept nogil


cdef inline double _regression(reg_loss_t f, dpred, pred, target, str where) except? -1:
    cdef cnp.ndarray ap = _pred2d(pred, "pred")
    cdef cnp.ndarray at = _arr(target, "target", False)
    _same_shape(at, "target", ap, "pred")
    cdef float *pd = _dpred(dpred, ap, "pred", ((pred, "pred"), (target, "target")))
    cdef int64_t N = ap.shape[0], D = ap.shape[1]
    cdef float *pp = <float *>cnp.PyArray_DATA(ap)
    cdef float *pt = <float *>cnp.PyArray_DATA(at)
    cdef double loss = 0.0
    cdef fnn_status s
    with nogil:
        s = f(&loss, pd, pp, pt, N, D)
    _raise(s, where)
    return loss


def mse_loss(dpred, pred, target):
    """Mean squared error; writes d(loss)/d(pred) into dpred (None: skip)."""
    return _regression(fnn_mse_loss, dpred, pred, target, "mse_loss")


def mae_loss(dpred, pred, target):
    """Mean absolute error; writes its subgradient into dpred (None: skip)."""
    return _regression(fnn_mae_loss, dpred, pred, target, "mae_loss")


def huber_loss(dpred, pred, target, float delta):
    """Mean Huber loss with threshold delta > 0."""
    if not delta > 0:
        raise ValueError(f"huber delta must be > 0, got {delta}")
    cdef cnp.ndarray ap = _pred2d(pred, "pred")
    cdef cnp.ndarray at = _arr(target, "target", False)
    _same_shape(at, "target", ap, "pred")
    cdef float *pd = _dpred(dpred, ap, "pred", ((pred, "pred"), (target, "target")))
    cdef int64_t N = ap.shape[0], D = ap.shape[1]
    cdef float *pp = <float *>cnp.PyArray_DATA(ap)
    cdef float *pt = <float *>cnp.PyArray_DATA(at)
    cdef double loss = 0.0
    cdef fnn_status s
    with nogil:
        s = fnn_huber_loss(&loss, pd, pp, pt, N, D, delta)
    _raise(s, "huber_loss")
    return loss


def bce_with_logits_loss(dpred, logits, target, pos_weight):
    """Mean binary cross-entropy on logits; pos_weight (D,) or None."""
    cdef cnp.ndarray ap = _pred2d(logits, "logits")
    cdef cnp.ndarray at = _arr(target, "target", False)
    _same_shape(at, "target", ap, "logits")
    cdef int64_t N = ap.shape[0], D = ap.shape[1]
    cdef float *pw = _fp_opt(pos_weight, "pos_weight", False, D)
    cdef float *pd = _dpred(dpred, ap, "logits",
                            ((logits, "logits"), (target, "target"), (pos_weight, "pos_weight")))
    cdef float *pp = <float *>cnp.PyArray_DATA(ap)
    cdef float *pt = <float *>cnp.PyArray_DATA(at)
    cdef double loss = 0.0
    cdef fnn_status s
    with nogil:
        s = fnn_bce_with_logits_loss(&loss, pd, pp, pt, pw, N, D)
    _raise(s, "bce_with_logits_loss")
    return loss


def cross_entropy_loss(dpred, logits, labels, weight, long long ignore_index):
    """Weighted-mean softmax cross-entropy of logits (N, C) with int64 labels (N,)."""
    cdef cnp.ndarray ap = _pred2d(logits, "logits")
    cdef cnp.ndarray al = _arr(labels, "labels", False, cnp.NPY_INT64)
    cdef int64_t N = ap.shape[0], C = ap.shape[1]
    if cnp.PyArray_NDIM(al) != 1 or al.shape[0] != N:
        raise ValueError(f"labels must have shape ({N},), got {_shp(al)}")
    cdef float *pw = _fp_opt(weight, "weight", False, C)
    cdef float *pd = _dpred(dpred, ap, "logits",
                            ((logits, "logits"), (labels, "labels"), (weight, "weight")))
    cdef float *pp = <float *>cnp.PyArray_DATA(ap)
    cdef int64_t *pl = <int64_t *>cnp.PyArray_DATA(al)
    cdef double loss = 0.0
    cdef int64_t bad = -1
    cdef fnn_status s
    with nogil:
        s = fnn_cross_entropy_loss(&loss, pd, pp, pl, pw, N, C, ignore_index, &bad)
    if s == FNN_ERR_LABEL:
        raise IndexError(f"target {labels[bad]} is out of bounds for {C} classes "
                         f"(row {bad})")
    _raise(s, "cross_entropy_loss")
    return loss


# ------------------------------------------------------------ optimizers

cdef inline int64_t _flat(object params, object grads, object states) except -1:
    """Check params/grads/state buffers: float32, C-contiguous, one size."""
    cdef cnp.ndarray ap = _arr(params, "params", True)
    cdef cnp.ndarray ag = _arr(grads, "grads", False)
    cdef int64_t P = cnp.PyArray_SIZE(ap)
    if cnp.PyArray_SIZE(ag) != P:
        raise ValueError(f"grads has {cnp.PyArray_SIZE(ag)} elements, params has {P}")
    _no_overlap(params, "params", grads, "grads")
    for st, name in states:
        if st is None:
            continue
        if cnp.PyArray_SIZE(_arr(st, name, True)) != P:
            raise ValueError(f"{name} has {st.size} elements, params has {P}")
        _no_overlap(st, name, params, "params")
        _no_overlap(st, name, grads, "grads")
    return P


cdef inline void _step_ok(long long step, float lr) except *:
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if not (lr >= 0.0 and isfinite(lr)):     # also rejects NaN (torch's check)
        raise ValueError(f"Invalid learning rate: {lr}")


def sgd_update(params, buf, grads, long long step, float lr, float momentum,
               float dampening, float weight_decay, bint nesterov):
    """One SGD step in place (PyTorch semantics); buf may be None if momentum == 0."""
    _step_ok(step, lr)
    cdef int64_t P = _flat(params, grads, ((buf, "buf"),))
    if momentum != 0 and buf is None:
        raise ValueError("sgd_update: momentum != 0 needs a momentum buffer")
    cdef float *pp = _fp(params, "params", True)
    cdef float *pb = _fp_opt(buf, "buf", True, P)
    cdef float *pg = _fp(grads, "grads", False)
    cdef fnn_status s
    with nogil:
        s = fnn_sgd_update(pp, pb, pg, P, step, lr, momentum, dampening, weight_decay, nesterov)
    _raise(s, "sgd_update")


def adam_update(params, m, v, grads, long long step, float lr, float beta1, float beta2,
                float eps, float weight_decay, bint decoupled):
    """One Adam (decoupled=False) or AdamW (decoupled=True) step in place."""
    _step_ok(step, lr)
    cdef int64_t P = _flat(params, grads, ((m, "m"), (v, "v")))
    if m is None or v is None:
        raise ValueError("adam_update needs both moment buffers m and v")
    _no_overlap(m, "m", v, "v")
    cdef float *pp = _fp(params, "params", True)
    cdef float *pm = _fp(m, "m", True)
    cdef float *pv = _fp(v, "v", True)
    cdef float *pg = _fp(grads, "grads", False)
    cdef fnn_status s
    with nogil:
        s = fnn_adam_update(pp, pm, pv, pg, P, step, lr, beta1, beta2, eps,
                            weight_decay, decoupled)
    _raise(s, "adam_update")


def rmsprop_update(params, sq, buf, grads, long long step, float lr, float alpha,
                   float eps, float weight_decay, float momentum):
    """One RMSprop step in place; buf may be None if momentum == 0."""
    _step_ok(step, lr)
    cdef int64_t P = _flat(params, grads, ((sq, "sq"), (buf, "buf")))
    if sq is None:
        raise ValueError("rmsprop_update needs the square-average buffer sq")
    if momentum != 0 and buf is None:
        raise ValueError("rmsprop_update: momentum != 0 needs a momentum buffer")
    _no_overlap(sq, "sq", buf, "buf")
    cdef float *pp = _fp(params, "params", True)
    cdef float *psq = _fp(sq, "sq", True)
    cdef float *pb = _fp_opt(buf, "buf", True, P)
    cdef float *pg = _fp(grads, "grads", False)
    cdef fnn_status s
    with nogil:
        s = fnn_rmsprop_update(pp, psq, pb, pg, P, step, lr, alpha, eps, weight_decay, momentum)
    _raise(s, "rmsprop_update")


def adagrad_update(params, sum, grads, long long step, float lr, float lr_decay,
                   float eps, float weight_decay):
    """One AdaGrad step in place."""
    _step_ok(step, lr)
    cdef int64_t P = _flat(params, grads, ((sum, "sum"),))
    if sum is None:
        raise ValueError("adagrad_update needs the accumulator buffer sum")
    cdef float *pp = _fp(params, "params", True)
    cdef float *ps = _fp(sum, "sum", True)
    cdef float *pg = _fp(grads, "grads", False)
    cdef fnn_status s
    with nogil:
        s = fnn_adagrad_update(pp, ps, pg, P, step, lr, lr_decay, eps, weight_decay)
    _raise(s, "adagrad_update")


def clip_grad_norm(grads, float max_norm):
    """Scale grads in place so their global L2 norm is <= max_norm; return the norm
    before clipping (PyTorch's clip_grad_norm_ rule)."""
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    cdef cnp.ndarray ag = _arr(grads, "grads", True)
    cdef float *pg = <float *>cnp.PyArray_DATA(ag)
    cdef int64_t P = cnp.PyArray_SIZE(ag)
    cdef double norm = 0.0
    cdef fnn_status s
    with nogil:
        s = fnn_clip_grad_norm(pg, P, max_norm, &norm)
    _raise(s, "clip_grad_norm")
    return norm


# --------------------------------------------------------------- dropout

def dropout_key(seed, long long layer, long long counter):
    """Key of one dropout call: a hash of the model seed, layer index and counter."""
    return fnn_dropout_key(<uint64_t>(seed & 0xFFFFFFFFFFFFFFFF), layer, counter)


ctypedef fnn_status (*dropout_t)(float *, const float *, int64_t, float, uint64_t) noexcept nogil


cdef inline _dropout(dropout_t f, out, str oname, inp, str iname, float p, key, str where):
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    cdef int64_t n = _elementwise(out, oname, inp, iname)
    cdef float *po = _fp(out, oname, True)
    cdef float *pi = _fp(inp, iname, False)
    cdef uint64_t k = key
    cdef fnn_status s
    with nogil:
        s = f(po, pi, n, p, k)
    _raise(s, where)


def dropout_forward(y, x, float p, key):
    """y = x * mask / (1 - p) with the stateless mask of `key` (see fastnn.h)."""
    _dropout(fnn_dropout_forward, y, "y", x, "x", p, key, "dropout_forward")


def dropout_backward(dx, dy, float p, key):
    """dx = dy * mask / (1 - p), recomputing the mask of `key`."""
    _dropout(fnn_dropout_backward, dx, "dx", dy, "dy", p, key, "dropout_backward")


# ------------------------------------------------------------------ plan

OPS = {"dense": 1, "relu": 2, "leaky_relu": 3, "sigmoid": 4, "tanh": 5, "gelu": 6,
       "softmax": 7, "dropout": 8}
LOSSES = {"mse": 1, "mae": 2, "huber": 3, "bce_with_logits": 4, "cross_entropy": 5}
OPTIMS = {"sgd": 1, "adam": 2, "rmsprop": 3, "adagrad": 4}


cdef class Plan:
    """A Sequential of built-in layers as a C plan: forward and a fused train step.

    ``layers`` is a list of dicts with keys ``op`` (a name in ``OPS``), ``in``,
    ``out`` and, for dense layers, ``w_off``, ``b_off`` (None: no bias) --
    offsets into the flat parameter buffer -- and ``param`` (leaky slope,
    dropout p). The plan owns a copy; it is immutable.
    """
    cdef fnn_layer *layers
    cdef readonly int64_t n_layers

    def __cinit__(self, layers):
        cdef int64_t L = len(layers), i
        if L < 1:
            raise ValueError("a plan needs at least one layer")
        self.layers = <fnn_layer *>malloc(L * sizeof(fnn_layer))
        if self.layers == NULL:
            raise MemoryError()
        self.n_layers = L
        for i, spec in enumerate(layers):
            if not isinstance(spec, dict) or not {"op", "in", "out"} <= spec.keys():
                raise ValueError(f"plan layer {i} must be a dict with keys 'op', 'in', 'out' "
                                 f"(and w_off, b_off, param), got {spec!r}")
            if spec["op"] not in OPS:
                raise ValueError(f"unknown plan op {spec['op']!r}; valid: {', '.join(OPS)}")
            self.layers[i].op = OPS[spec["op"]]
            self.layers[i].in_ = spec["in"]
            self.layers[i].out = spec["out"]
            self.layers[i].w_off = spec.get("w_off", 0) or 0
            b_off = spec.get("b_off", None)
            self.layers[i].has_bias = b_off is not None
            self.layers[i].b_off = b_off if b_off is not None else 0
            self.layers[i].param = spec.get("param", 0.0)
        cdef int64_t size
        _raise(fnn_plan_workspace(&size, self.layers, L, 1), "Plan")

    def __dealloc__(self):
        free(self.layers)

    def workspace_size(self, long long N):
        """Floats of workspace needed for a batch of N rows."""
        cdef int64_t size = 0
        _raise(fnn_plan_workspace(&size, self.layers, self.n_layers, N), "Plan.workspace_size")
        return size

    def forward(self, out, params, x, work):
        """out (N, OUT) = forward pass (evaluation mode) of x (N, IN)."""
        cdef cnp.ndarray ax = _pred2d(x, "x"), aout = _arr(out, "out", True)
        cdef cnp.ndarray ap = _arr(params, "params", False), aw = _arr(work, "work", True)
        cdef int64_t N = ax.shape[0]
        if ax.shape[1] != self.layers[0].in_:
            raise ValueError(f"x has {ax.shape[1]} features, the plan expects "
                             f"{self.layers[0].in_}")
        _shape2(aout, "out", N, self.layers[self.n_layers - 1].out)
        _no_overlap(out, "out", x, "x")
        _no_overlap(out, "out", work, "work")
        _no_overlap(out, "out", params, "params")
        _no_overlap(work, "work", x, "x")
        _no_overlap(work, "work", params, "params")
        cdef fnn_status s
        with nogil:
            s = fnn_forward(<float *>cnp.PyArray_DATA(aout), self.layers, self.n_layers,
                            <float *>cnp.PyArray_DATA(ap), cnp.PyArray_SIZE(ap),
                            <float *>cnp.PyArray_DATA(ax), N,
                            <float *>cnp.PyArray_DATA(aw), cnp.PyArray_SIZE(aw))
        _raise(s, "Plan.forward")

    def bind(self, params, grads, loss, optim):
        """A :class:`Step`: this plan bound to its flat buffers, loss and optimizer.

        loss: (name, delta, weight or None, ignore_index).
        optim: (name, flag, lr, weight_decay, eps, momentum, dampening, beta1, beta2,
        alpha, lr_decay, max_grad_norm (0: no clipping), state0 or None, state1 or None).
        """
        return Step(self, params, grads, loss, optim)

    def train_step(self, params, grads, x, target, loss, optim, long long step,
                   seed, long long counter, work):
        """One fused training step; returns the loss (before the update).
        ``bind(params, grads, loss, optim).run(x, target, step, seed, counter, work)``."""
        return Step(self, params, grads, loss, optim).run(x, target, step, seed, counter, work)


cdef enum:
    N_WRITTEN = 4   # params, grads, state0, state1


cdef class Step:
    """A Plan bound to params, grads, loss and optimizer (all checked once here).

    ``run`` then checks only the batch and the workspace -- type, shape, no
    overlap with any buffer the step writes -- and makes the one C call, so a
    fused step costs about a microsecond of Python. Rebind when a
    hyperparameter changes.
    """
    cdef Plan plan
    cdef object keep
    cdef fnn_loss ld
    cdef fnn_optim od
    cdef cnp.ndarray ap, ag
    cdef int64_t P, D
    cdef bint labels
    cdef char *lo[N_WRITTEN]
    cdef char *hi[N_WRITTEN]

    def __cinit__(self, Plan plan, params, grads, loss, optim):
        self.plan = plan
        self.ap = _arr(params, "params", True)
        self.ag = _arr(grads, "grads", True)
        self.P = cnp.PyArray_SIZE(self.ap)
        self.D = plan.layers[plan.n_layers - 1].out
        if cnp.PyArray_SIZE(self.ag) != self.P:
            raise ValueError(f"grads has {cnp.PyArray_SIZE(self.ag)} elements, "
                             f"params has {self.P}")
        lname, delta, weight, ignore_index = loss
        if lname not in LOSSES:
            raise ValueError(f"unknown loss {lname!r}; valid: {', '.join(LOSSES)}")
        self.ld.kind = LOSSES[lname]
        self.ld.delta = delta
        self.ld.ignore_index = ignore_index
        self.ld.weight = _fp_opt(weight, "weight", False, self.D)
        self.labels = lname == "cross_entropy"
        (oname, flag, self.od.lr, self.od.weight_decay, self.od.eps, self.od.momentum,
         self.od.dampening, self.od.beta1, self.od.beta2, self.od.alpha, self.od.lr_decay,
         self.od.max_grad_norm, state0, state1) = optim
        if oname not in OPTIMS:
            raise ValueError(f"unknown optimizer {oname!r}; valid: {', '.join(OPTIMS)}")
        self.od.kind = OPTIMS[oname]
        self.od.flag = flag
        self.od.state0 = _fp_opt(state0, "state0", True, self.P)
        self.od.state1 = _fp_opt(state1, "state1", True, self.P)
        _step_ok(1, self.od.lr)
        written = ((params, "params"), (grads, "grads"), (state0, "state0"),
                   (state1, "state1"))
        for i, (arr, name) in enumerate(written):
            for other, oname in written[i + 1:] + ((weight, "weight"),):
                _no_overlap(arr, name, other, oname)
            if arr is None:
                self.lo[i] = self.hi[i] = NULL
            else:
                self.lo[i] = _extent(<cnp.ndarray>arr, &self.hi[i])
        self.keep = (params, grads, weight, state0, state1)

    cdef void _disjoint(self, cnp.ndarray a, str name) except *:
        """ValueError if a overlaps a buffer the step writes."""
        cdef char *e
        cdef char *b = _extent(a, &e)
        cdef int i
        for i in range(N_WRITTEN):
            if self.lo[i] != NULL and b < self.hi[i] and self.lo[i] < e:
                raise ValueError(f"{('params', 'grads', 'state0', 'state1')[i]} must not "
                                 f"share memory with {name}")

    def run(self, x, target, long long step, seed, long long counter, work):
        """One fused training step on the batch (x, target); returns the loss."""
        cdef Plan plan = self.plan
        cdef cnp.ndarray ax = _pred2d(x, "x"), aw = _arr(work, "work", True), at
        cdef int64_t N = ax.shape[0]
        if ax.shape[1] != plan.layers[0].in_:
            raise ValueError(f"x has {ax.shape[1]} features, the plan expects "
                             f"{plan.layers[0].in_}")
        cdef float *tf = NULL
        cdef int64_t *ti = NULL
        if self.labels:
            at = _arr(target, "labels", False, cnp.NPY_INT64)
            if cnp.PyArray_NDIM(at) != 1 or at.shape[0] != N:
                raise ValueError(f"labels must have shape ({N},), got {_shp(at)}")
            ti = <int64_t *>cnp.PyArray_DATA(at)
        else:
            at = _arr(target, "target", False)
            _shape2(at, "target", N, self.D)
            tf = <float *>cnp.PyArray_DATA(at)
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        self._disjoint(aw, "work")
        self._disjoint(ax, "x")
        self._disjoint(at, "target")
        _no_overlap(work, "work", x, "x")
        _no_overlap(work, "work", target, "target")
        cdef uint64_t sd = <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)
        cdef double value = 0.0
        cdef int64_t bad = -1
        cdef fnn_status s
        with nogil:
            s = fnn_train_step(&value, plan.layers, plan.n_layers,
                               <float *>cnp.PyArray_DATA(self.ap),
                               <float *>cnp.PyArray_DATA(self.ag), self.P,
                               <float *>cnp.PyArray_DATA(ax), tf, ti, N, &self.ld, &self.od,
                               step, sd, counter,
                               <float *>cnp.PyArray_DATA(aw), cnp.PyArray_SIZE(aw), &bad)
        if s == FNN_ERR_LABEL:
            raise IndexError(f"target {target[bad]} is out of bounds for {self.D} classes "
                             f"(row {bad})")
        _raise(s, "Plan.train_step")
        return value
