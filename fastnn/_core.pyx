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
import operator

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint64_t, INT64_MAX
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from libc.math cimport isfinite

cnp.import_array()

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


def sgemm_blocking():
    """(mc, kc, nc): the GEMM cache blocks of this process (see csrc/cpu.c)."""
    cdef int64_t mc = 0, kc = 0, nc = 0
    fnn_sgemm_blocking(&mc, &kc, &nc)
    return (mc, kc, nc)


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



cdef void _set_attrs(fnn_attrs *a, dict attrs) except *:
    """Fill a node's typed attributes from a dict (missing fields stay 0)."""
    memset(a, 0, sizeof(fnn_attrs))
    cdef int k
    for key, v in attrs.items():
        if key in ("kernel", "stride", "padding", "dilation"):
            pair = (v, v) if isinstance(v, int) else tuple(v)
            if len(pair) != 2:
                raise ValueError(f"attribute {key!r} must be an int or a pair, got {v!r}")
            for k in range(2):
                if key == "kernel": a.kernel[k] = pair[k]
                elif key == "stride": a.stride[k] = pair[k]
                elif key == "padding": a.padding[k] = pair[k]
                else: a.dilation[k] = pair[k]
        elif key == "units": a.units = v
        elif key == "groups": a.groups = v
        elif key == "axis": a.axis = v
        elif key == "bias": a.bias = v
        elif key == "init": a.init = v
        elif key == "flags": a.flags = v
        elif key == "slope": a.slope = v
        elif key == "p": a.p = v
        elif key == "eps": a.eps = v
        elif key == "momentum": a.momentum = v
        else:
            raise ValueError(f"unknown op attribute {key!r}")


cdef double _short(float v):
    """The shortest decimal that rounds to the float32 v (0.3, not 0.30000001...),
    so that attributes read back from C compare equal to what Python gave."""
    return float(str(np.float32(v)))


cdef dict _get_attrs(const fnn_attrs *a):
    """The non-zero attributes of a node as a dict (the inverse of _set_attrs)."""
    d = {"units": a.units, "kernel": (a.kernel[0], a.kernel[1]),
         "stride": (a.stride[0], a.stride[1]), "padding": (a.padding[0], a.padding[1]),
         "dilation": (a.dilation[0], a.dilation[1]), "groups": a.groups, "axis": a.axis,
         "bias": a.bias, "init": a.init, "flags": a.flags, "slope": _short(a.slope),
         "p": _short(a.p), "eps": _short(a.eps), "momentum": _short(a.momentum)}
    return {k: v for k, v in d.items() if v not in (0, 0.0, (0, 0))}


cdef void _set_node(fnn_node *node, str op, dict attrs, int32_t index) except *:
    cdef bytes name = op.encode()
    if len(name) >= FNN_NAME_MAX:
        raise ValueError(f"op name {op!r} is too long")
    memset(node, 0, sizeof(fnn_node))
    memcpy(node.op, <char *>name, len(name))
    node.in_[0] = index
    node.in_[1] = -1
    node.out = index + 1
    _set_attrs(&node.attrs, attrs)


cdef void _set_shape(fnn_shape *s, object shape) except *:
    shape = tuple(shape)
    if not 1 <= len(shape) <= FNN_MAX_DIMS:
        raise ValueError(f"a per-sample shape has 1 to {FNN_MAX_DIMS} dimensions, got {shape}")
    memset(s, 0, sizeof(fnn_shape))
    s.ndim = len(shape)
    for d, n in enumerate(shape):
        s.dim[d] = n


cdef tuple _shape_tuple(const fnn_shape *s):
    return tuple(s.dim[d] for d in range(s.ndim))


cdef object _error(fnn_status s, str where):
    """The Python exception for status s, with the C core's message."""
    msg = fnn_last_error().decode("utf-8", "replace") or fnn_status_string(s).decode()
    text = f"{where}: {msg}"
    if s == FNN_ERR_NOMEM:
        return MemoryError(text)
    if s == FNN_ERR_IO:
        return OSError(text)
    if s == FNN_ERR_LABEL:
        return IndexError(text)
    return ValueError(text)


# ----------------------------------------------------------------- sparse

cdef void _set_csr(fnn_csr *c, object indptr, object indices, object data,
                   int64_t cols) except *:
    """Fill c from the three CSR arrays (int64 indptr (rows + 1,), int64 indices
    (nnz,), float32 data (nnz,)); their values are checked in C."""
    cdef cnp.ndarray ap = _arr(indptr, "indptr", False, cnp.NPY_INT64)
    cdef cnp.ndarray ai = _arr(indices, "indices", False, cnp.NPY_INT64)
    cdef cnp.ndarray ad = _arr(data, "data", False)
    if cnp.PyArray_NDIM(ap) != 1 or ap.shape[0] < 1:
        raise ValueError(f"indptr must be 1-D with rows + 1 >= 1 entries, got shape "
                         f"{_shp(ap)}")
    if cnp.PyArray_NDIM(ai) != 1 or cnp.PyArray_NDIM(ad) != 1 or ai.shape[0] != ad.shape[0]:
        raise ValueError(f"indices and data must be 1-D of the same length, got shapes "
                         f"{_shp(ai)} and {_shp(ad)}")
    c.indptr = <int64_t *>cnp.PyArray_DATA(ap)
    c.indices = <int64_t *>cnp.PyArray_DATA(ai)
    c.data = <float *>cnp.PyArray_DATA(ad)
    c.rows = ap.shape[0] - 1
    c.cols = cols
    c.nnz = ad.shape[0]


def csr_dense_forward(y, indptr, indices, data, w, b):
    """y (N, OUT) = x @ w (IN, OUT) + b (OUT; None: no bias) for x (N, IN) given
    as CSR arrays: int64 indptr (N + 1,), int64 indices and float32 data (nnz,).
    y is overwritten; duplicate entries of a row add up (as in scipy.sparse)."""
    cdef cnp.ndarray aw = _arr(w, "w", False), ay = _arr(y, "y", True)
    if cnp.PyArray_NDIM(aw) != 2:
        raise ValueError(f"w must be 2-D (in, out), got shape {_shp(aw)}")
    cdef fnn_csr c
    _set_csr(&c, indptr, indices, data, aw.shape[0])
    cdef int64_t OUT = aw.shape[1]
    _shape2(ay, "y", c.rows, OUT)
    cdef float *pb = _fp_opt(b, "b", False, OUT)
    for other, oname in ((w, "w"), (b, "b"), (data, "data"), (indices, "indices"),
                         (indptr, "indptr")):
        _no_overlap(y, "y", other, oname)
    cdef float *py = <float *>cnp.PyArray_DATA(ay)
    cdef float *pw = <float *>cnp.PyArray_DATA(aw)
    cdef fnn_status s
    with nogil:
        s = fnn_csr_dense_forward(py, &c, pw, pb, OUT)
    if s != FNN_OK:
        raise _error(s, "csr_dense_forward")


def csr_dense_backward(dw, db, dy, indptr, indices, data):
    """dw (IN, OUT) += x.T @ dy (N, OUT), db (OUT; None: no bias) += dy.sum(0), for
    x (N, IN) given as CSR arrays (as ``csr_dense_forward``). No input gradient."""
    cdef cnp.ndarray adw = _arr(dw, "dw", True), ady = _arr(dy, "dy", False)
    if cnp.PyArray_NDIM(adw) != 2:
        raise ValueError(f"dw must be 2-D (in, out), got shape {_shp(adw)}")
    cdef fnn_csr c
    _set_csr(&c, indptr, indices, data, adw.shape[0])
    cdef int64_t OUT = adw.shape[1]
    _shape2(ady, "dy", c.rows, OUT)
    cdef float *pdb = _fp_opt(db, "db", True, OUT)
    for other, oname in ((dy, "dy"), (data, "data"), (indices, "indices"),
                         (indptr, "indptr")):
        _no_overlap(dw, "dw", other, oname)
        _no_overlap(db, "db", other, oname)
    _no_overlap(dw, "dw", db, "db")
    cdef float *pdw = <float *>cnp.PyArray_DATA(adw)
    cdef float *pdy = <float *>cnp.PyArray_DATA(ady)
    cdef fnn_status s
    with nogil:
        s = fnn_csr_dense_backward(pdw, pdb, pdy, &c, OUT)
    if s != FNN_OK:
        raise _error(s, "csr_dense_backward")


# The one-op kernels of the backend API (``relu_forward(y, x)``, ...), made
# by a loop over the C op table: each runs one node through fnn_op_forward /
# fnn_op_backward. ``SCALARS`` names the attributes an op's kernels take as
# trailing arguments; dropout also takes its key and no x, y in backward.
SCALARS = {"leaky_relu": ("slope",), "dropout": ("p",)}
FIXED = {"softmax": {"axis": -1}}      # attributes these kernels always pass


cdef _run_op(str op, tuple names, tuple scalars, bint backward, dx_or_y, dy_or_x, x, y, key):
    cdef fnn_node node
    cdef fnn_shape shp
    cdef cnp.ndarray a
    cdef int64_t N = 1, n
    cdef uint64_t k = 0 if key is None else <uint64_t>(key & 0xFFFFFFFFFFFFFFFF)
    _set_node(&node, op, dict(zip(names, scalars), **FIXED.get(op, {})), 0)
    if op == "dropout" and not 0.0 <= scalars[0] < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {scalars[0]}")
    if backward:
        if x is None:       # dropout: the mask needs no x, y
            n = _elementwise(dx_or_y, "dx", dy_or_x, "dy")
            x = y = dy_or_x
        else:
            n = _elementwise_bw(dx_or_y, dy_or_x, x, y)
        a = <cnp.ndarray>dy_or_x
    else:
        n = _elementwise(dx_or_y, "y", dy_or_x, "x")
        a = <cnp.ndarray>dy_or_x
    if op == "softmax":
        if cnp.PyArray_NDIM(a) != 2:
            raise ValueError(f"softmax expects 2-D (batch, classes), got shape {_shp(a)}")
        _no_overlap(dx_or_y, "dx" if backward else "y", dy_or_x, "dy" if backward else "x")
        N = a.shape[0]
    if n == 0:
        return
    _set_shape(&shp, (<int64_t>a.shape[1],) if op == "softmax" else (n,))
    cdef float *p0 = <float *>cnp.PyArray_DATA(dx_or_y)
    cdef float *p1 = <float *>cnp.PyArray_DATA(dy_or_x)
    cdef float *px = <float *>cnp.PyArray_DATA(x) if backward else NULL
    cdef float *py = <float *>cnp.PyArray_DATA(y) if backward else NULL
    cdef fnn_status s
    with nogil:
        if backward:
            s = fnn_op_backward(&node, &shp, N, p0, NULL, p1, px, py, NULL, NULL, NULL, 1, k)
        else:
            s = fnn_op_forward(&node, &shp, N, p0, p1, NULL, NULL, NULL, 1, k)
    if s != FNN_OK:
        raise _error(s, f"{op}_{'backward' if backward else 'forward'}")


def _signature(names, keywords=()):
    import inspect
    P = inspect.Parameter
    return inspect.Signature([P(n, P.POSITIONAL_OR_KEYWORD) for n in names] +
                             [P(n, P.KEYWORD_ONLY, default=None if n == "sample_weight" else 0.0)
                              for n in keywords])


def _scalar_count(str op, tuple names, tuple scalars):
    if len(scalars) != len(names):
        raise TypeError(f"{op} kernels take {len(names)} scalar argument(s) "
                        f"({', '.join(names) or 'none'}), got {len(scalars)}")


def _make_kernels(str op):
    names = SCALARS.get(op, ())
    keyed = op == "dropout"
    if keyed:
        def forward(y, x, p, key):
            _run_op(op, names, (p,), False, y, x, None, None, key)
        def backward(dx, dy, p, key):
            _run_op(op, names, (p,), True, dx, dy, None, None, key)
    else:
        def forward(y, x, *scalars):
            _scalar_count(op, names, scalars)
            _run_op(op, names, scalars, False, y, x, None, None, None)
        def backward(dx, dy, x, y, *scalars):
            _scalar_count(op, names, scalars)
            _run_op(op, names, scalars, True, dx, dy, x, y, None)
        # the signature the NumPy reference has too: scalars by name
        forward.__signature__ = _signature(("y", "x") + names)
        backward.__signature__ = _signature(("dx", "dy", "x", "y") + names)
    forward.__name__, backward.__name__ = f"{op}_forward", f"{op}_backward"
    forward.__doc__ = f"y = {op}(x): one node of the C op table (csrc/ops.c)."
    backward.__doc__ = f"dx = dy * {op}'(x) (OVERWRITTEN): one node of the C op table."
    return forward, backward


OP_NAMES = tuple(fnn_op_name(i).decode() for i in range(fnn_op_count()))
# ops with hand-written kernels (linear: dense_forward/backward above; pooling and
# normalization below) or none (flatten is a reshape in Python)
HAND_WRITTEN = ("linear", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "flatten",
                "batch_norm", "layer_norm", "conv2d", "conv1d")
for _op in OP_NAMES:
    if _op not in HAND_WRITTEN:
        globals()[f"{_op}_forward"], globals()[f"{_op}_backward"] = _make_kernels(_op)
del _op


# ------------------------------------------------------ pooling (pool.c)

cdef inline void _ndim(cnp.ndarray a, str name, int nd, str what) except *:
    if cnp.PyArray_NDIM(a) != nd:
        raise ValueError(f"{name} must be {nd}-D {what}, got shape {_shp(a)}")


cdef void _pair(int64_t *out, object v, str name) except *:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        out[0], out[1] = v[0], v[1]
    else:
        out[0] = out[1] = v


cdef tuple _pool_args(str op, object y, object x, kernel, stride, padding, bint ceil_mode,
                      bint bw, int64_t *k, int64_t *st, int64_t *p):
    """Checks of a pooling kernel's arrays: x (N, C, H, W), y (N, C, OH, OW)."""
    cdef cnp.ndarray ax = _arr(x, "x", False), ay = _arr(y, "y", not bw)
    _ndim(ax, "x", 4, "(N, C, H, W)")
    _pair(k, kernel, "kernel")
    _pair(st, stride, "stride")
    _pair(p, padding, "padding")
    cdef int64_t oh = fnn_pool_out_size(ax.shape[2], k[0], st[0], p[0], ceil_mode)
    cdef int64_t ow = fnn_pool_out_size(ax.shape[3], k[1], st[1], p[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: kernel ({k[0]}, {k[1]}), stride ({st[0]}, {st[1]}), padding "
                         f"({p[0]}, {p[1]}) do not fit input {_shp(ax)} (kernel and stride "
                         f">= 1, padding at most half the kernel, kernel <= padded input)")
    want = (ax.shape[0], ax.shape[1], oh, ow)
    if _shp(ay) != want:
        raise ValueError(f"{op}: y must have shape {want}, got {_shp(ay)}")
    return ax, ay


cdef void _pool_grad(object dx, object dy, cnp.ndarray ax, cnp.ndarray ay) except *:
    if dx is not None:
        _same_shape(_arr(dx, "dx", True), "dx", ax, "x")
        _no_overlap(dx, "dx", dy, "dy")
    _same_shape(_arr(dy, "dy", False), "dy", ay, "y")


def max_pool2d_forward(y, x, kernel, stride, padding, ceil_mode):
    """y (N, C, OH, OW) = 2-D max pooling of x (N, C, H, W) (csrc/pool.c)."""
    cdef int64_t k[2]
    cdef int64_t st[2]
    cdef int64_t p[2]
    cdef cnp.ndarray ax, ay
    ax, ay = _pool_args("max_pool2d", y, x, kernel, stride, padding, ceil_mode, False, k, st, p)
    _no_overlap(y, "y", x, "x")
    cdef float *py = <float *>cnp.PyArray_DATA(ay)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef int64_t NC = ax.shape[0] * ax.shape[1], H = ax.shape[2], W = ax.shape[3]
    cdef int32_t fl = FNN_POOL_CEIL_MODE if ceil_mode else 0
    cdef fnn_status s
    with nogil:
        s = fnn_max_pool2d_forward(py, px, NC, H, W, k, st, p, fl)
    _raise(s, "max_pool2d_forward")


def max_pool2d_backward(dx, dy, x, y, kernel, stride, padding, ceil_mode):
    """dx (OVERWRITTEN) from dy and the forward's x, y: each dy goes to its window's
    first maximum."""
    cdef int64_t k[2]
    cdef int64_t st[2]
    cdef int64_t p[2]
    cdef cnp.ndarray ax, ay
    ax, ay = _pool_args("max_pool2d", y, x, kernel, stride, padding, ceil_mode, True, k, st, p)
    _pool_grad(dx, dy, ax, ay)
    for other, oname in ((x, "x"), (y, "y")):
        _no_overlap(dx, "dx", other, oname)
    cdef float *pdx = _fp(dx, "dx", True) if dx is not None else NULL
    cdef float *pdy = _fp(dy, "dy", False)
    cdef float *py = <float *>cnp.PyArray_DATA(ay)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef int64_t NC = ax.shape[0] * ax.shape[1], H = ax.shape[2], W = ax.shape[3]
    cdef int32_t fl = FNN_POOL_CEIL_MODE if ceil_mode else 0
    cdef fnn_status s
    with nogil:
        s = fnn_max_pool2d_backward(pdx, pdy, px, py, NC, H, W, k, st, p, fl)
    _raise(s, "max_pool2d_backward")


def avg_pool2d_forward(y, x, kernel, stride, padding, ceil_mode, count_include_pad):
    """y (N, C, OH, OW) = 2-D average pooling of x (N, C, H, W) (csrc/pool.c)."""
    cdef int64_t k[2]
    cdef int64_t st[2]
    cdef int64_t p[2]
    cdef cnp.ndarray ax, ay
    ax, ay = _pool_args("avg_pool2d", y, x, kernel, stride, padding, ceil_mode, False, k, st, p)
    _no_overlap(y, "y", x, "x")
    cdef float *py = <float *>cnp.PyArray_DATA(ay)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef int64_t NC = ax.shape[0] * ax.shape[1], H = ax.shape[2], W = ax.shape[3]
    cdef int32_t fl = (FNN_POOL_CEIL_MODE if ceil_mode else 0) | \
        (0 if count_include_pad else FNN_POOL_EXCLUDE_PAD)
    cdef fnn_status s
    with nogil:
        s = fnn_avg_pool2d_forward(py, px, NC, H, W, k, st, p, fl)
    _raise(s, "avg_pool2d_forward")


def avg_pool2d_backward(dx, dy, x, y, kernel, stride, padding, ceil_mode, count_include_pad):
    """dx (OVERWRITTEN): each dy spread evenly over its window."""
    cdef int64_t k[2]
    cdef int64_t st[2]
    cdef int64_t p[2]
    cdef cnp.ndarray ax, ay
    ax, ay = _pool_args("avg_pool2d", y, x, kernel, stride, padding, ceil_mode, True, k, st, p)
    _pool_grad(dx, dy, ax, ay)
    cdef float *pdx = _fp(dx, "dx", True) if dx is not None else NULL
    cdef float *pdy = _fp(dy, "dy", False)
    cdef int64_t NC = ax.shape[0] * ax.shape[1], H = ax.shape[2], W = ax.shape[3]
    cdef int32_t fl = (FNN_POOL_CEIL_MODE if ceil_mode else 0) | \
        (0 if count_include_pad else FNN_POOL_EXCLUDE_PAD)
    cdef fnn_status s
    with nogil:
        s = fnn_avg_pool2d_backward(pdx, pdy, NC, H, W, k, st, p, fl)
    _raise(s, "avg_pool2d_backward")


cdef tuple _adaptive_args(object y, object x, bint bw):
    cdef cnp.ndarray ax = _arr(x, "x", False), ay = _arr(y, "y", not bw)
    _ndim(ax, "x", 4, "(N, C, H, W)")
    _ndim(ay, "y", 4, "(N, C, OH, OW)")
    if ay.shape[0] != ax.shape[0] or ay.shape[1] != ax.shape[1] or ay.shape[2] < 1 or \
            ay.shape[3] < 1:
        raise ValueError(f"adaptive_avg_pool2d: y {_shp(ay)} does not fit x {_shp(ax)}")
    return ax, ay


def adaptive_avg_pool2d_forward(y, x):
    """y (N, C, OH, OW) = adaptive average pooling of x (N, C, H, W) to y's size."""
    cdef cnp.ndarray ax, ay
    ax, ay = _adaptive_args(y, x, False)
    _no_overlap(y, "y", x, "x")
    cdef float *py = <float *>cnp.PyArray_DATA(ay)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef int64_t NC = ax.shape[0] * ax.shape[1], H = ax.shape[2], W = ax.shape[3]
    cdef int64_t OH = ay.shape[2], OW = ay.shape[3]
    cdef fnn_status s
    with nogil:
        s = fnn_adaptive_avg_pool2d_forward(py, px, NC, H, W, OH, OW)
    _raise(s, "adaptive_avg_pool2d_forward")


def adaptive_avg_pool2d_backward(dx, dy, x, y):
    """dx (OVERWRITTEN): each dy spread evenly over its window."""
    cdef cnp.ndarray ax, ay
    ax, ay = _adaptive_args(y, x, True)
    _pool_grad(dx, dy, ax, ay)
    cdef float *pdx = _fp(dx, "dx", True) if dx is not None else NULL
    cdef float *pdy = _fp(dy, "dy", False)
    cdef int64_t NC = ax.shape[0] * ax.shape[1], H = ax.shape[2], W = ax.shape[3]
    cdef int64_t OH = ay.shape[2], OW = ay.shape[3]
    cdef fnn_status s
    with nogil:
        s = fnn_adaptive_avg_pool2d_backward(pdx, pdy, NC, H, W, OH, OW)
    _raise(s, "adaptive_avg_pool2d_backward")


# ------------------------------------------------------ convolution (conv.c)

def _conv_padding(padding, int nd):
    """Per-dim (before, after) zero padding from an int, nd ints (symmetric) or nd
    (before, after) pairs; after - before must be 0 or 1 (PyTorch's 'same')."""
    if isinstance(padding, int):
        pads = [(padding, padding)] * nd
    else:
        padding = tuple(padding)
        if nd == 1 and len(padding) == 2 and all(isinstance(v, int) for v in padding):
            pads = [padding]
        elif len(padding) == nd:
            pads = [(v, v) if isinstance(v, int) else tuple(v) for v in padding]
        else:
            raise ValueError(f"conv: padding must be an int, {nd} ints or {nd} (before, after) "
                             f"pairs, got {padding!r}")
    for p in pads:
        if len(p) != 2 or p[0] < 0 or p[1] - p[0] not in (0, 1):
            raise ValueError(f"conv: padding {padding!r}: each (before, after) must have "
                             f"before >= 0 and after = before or before + 1")
    return pads


cdef _conv_run(str op, int nd, bint bw, out, dw, db, dy_or_x, x, weight, bias, stride,
               padding, dilation, groups):
    """Forward (out = y) or backward (out = dx, may be None) of one conv node."""
    cdef cnp.ndarray ax = _arr(x, "x", False), aw = _arr(weight, "weight", False)
    _ndim(ax, "x", nd + 2, "(N, C, H, W)" if nd == 2 else "(N, C, L)")
    _ndim(aw, "weight", nd + 2, "(O, C/groups, KH, KW)" if nd == 2 else "(O, C/groups, K)")
    pads = _conv_padding(padding, nd)
    st = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    dl = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    if len(st) != nd or len(dl) != nd:
        raise ValueError(f"{op}: stride and dilation must be an int or {nd} ints, got "
                         f"{stride!r}, {dilation!r}")
    O = aw.shape[0]
    ker = tuple(_shp(aw)[2:])
    attrs = {"units": O, "groups": groups, "bias": 1,
             "kernel": ker + (1,) * (2 - nd), "stride": st + (1,) * (2 - nd),
             "padding": tuple(p[0] for p in pads) + (0,) * (2 - nd),
             "dilation": dl + (1,) * (2 - nd),
             "flags": (1 if pads[0][1] > pads[0][0] else 0) |
                      (2 if nd == 2 and pads[1][1] > pads[1][0] else 0)}
    cdef fnn_node node
    cdef fnn_shape shp
    cdef fnn_node_info info
    _set_node(&node, op, attrs, 0)
    _set_shape(&shp, _shp(ax)[1:])
    cdef fnn_status s = fnn_op_describe(&info, &node, &shp)
    if s != FNN_OK:
        raise _error(s, f"{op}_{'backward' if bw else 'forward'}")
    C = ax.shape[1]
    want_w = (O, C // groups) + ker
    if _shp(aw) != want_w:
        raise ValueError(f"{op}: weight must have shape {want_w} for input {_shp(ax)} and "
                         f"groups {groups}, got {_shp(aw)}")
    yshape = (ax.shape[0],) + _shape_tuple(&info.out_shape)
    cdef int64_t nw = cnp.PyArray_SIZE(aw), N = ax.shape[0]
    params = np.empty(nw + O, np.float32)
    params[:nw] = aw.reshape(-1)
    if bias is not None:
        params[nw:] = _arr(bias, "bias", False).reshape(O)
    else:
        params[nw:] = 0.0
    scratch = np.empty(max(1, N * info.scratch_per_row), np.float32)
    cdef float *pp = <float *>cnp.PyArray_DATA(params)
    cdef float *ps = <float *>cnp.PyArray_DATA(scratch)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef float *po = NULL
    cdef float *pdy = NULL
    cdef float *pg = NULL
    cdef cnp.ndarray ady, grads
    if not bw:
        ay = _arr(out, "y", True)
        if _shp(ay) != yshape:
            raise ValueError(f"{op}: y must have shape {yshape}, got {_shp(ay)}")
        _no_overlap(out, "y", x, "x")
        po = <float *>cnp.PyArray_DATA(ay)
        if bias is None:
            node.attrs.bias = 0
        with nogil:
            s = fnn_op_forward(&node, &shp, N, po, px, pp, NULL, ps, 1, 0)
        if s != FNN_OK:
            raise _error(s, f"{op}_forward")
        return
    ady = _arr(dy_or_x, "dy", False)
    if _shp(ady) != yshape:
        raise ValueError(f"{op}: dy must have shape {yshape}, got {_shp(ady)}")
    if out is not None:
        _same_shape(_arr(out, "dx", True), "dx", ax, "x")
        _no_overlap(out, "dx", dy_or_x, "dy")
        po = <float *>cnp.PyArray_DATA(out)
    if dw is not None:
        _same_shape(_arr(dw, "dweight", True), "dweight", aw, "weight")
    if db is not None and cnp.PyArray_SIZE(_arr(db, "dbias", True)) != O:
        raise ValueError(f"{op}: dbias must have {O} elements, got shape {_shp(db)}")
    if db is None:
        node.attrs.bias = 0
    grads = np.zeros(nw + O, np.float32)
    pg = <float *>cnp.PyArray_DATA(grads)
    pdy = <float *>cnp.PyArray_DATA(ady)
    y = np.empty(yshape, np.float32)     # backward reads the forward's patches in scratch
    cdef float *py = <float *>cnp.PyArray_DATA(y)
    with nogil:
        s = fnn_op_forward(&node, &shp, N, py, px, pp, NULL, ps, 1, 0)
        if s == FNN_OK:
            s = fnn_op_backward(&node, &shp, N, po, pg, pdy, px, py, pp, NULL, ps, 1, 0)
    if s != FNN_OK:
        raise _error(s, f"{op}_backward")
    if dw is not None:
        dw.reshape(-1)[...] += grads[:nw]
    if db is not None:
        db.reshape(-1)[...] += grads[nw:]


def conv2d_forward(y, x, weight, bias, stride, padding, dilation, groups):
    """y (N, O, OH, OW) = the 2-D convolution of x (N, C, H, W) with weight
    (O, C/groups, KH, KW) and bias (O) or None (csrc/conv.c). padding: an int, a pair,
    or ((top, bottom), (left, right)) with bottom - top and right - left in {0, 1}."""
    _conv_run("conv2d", 2, False, y, None, None, None, x, weight, bias, stride, padding,
              dilation, groups)


def conv2d_backward(dx, dweight, dbias, dy, x, weight, stride, padding, dilation, groups):
    """dx (OVERWRITTEN; None: skipped), dweight, dbias (ACCUMULATED; None: skipped)."""
    _conv_run("conv2d", 2, True, dx, dweight, dbias, dy, x, weight, None, stride, padding,
              dilation, groups)


def conv1d_forward(y, x, weight, bias, stride, padding, dilation, groups):
    """y (N, O, OL) = the 1-D convolution of x (N, C, L) with weight (O, C/groups, K);
    padding: an int or (left, right) with right - left in {0, 1}."""
    _conv_run("conv1d", 1, False, y, None, None, None, x, weight, bias, stride, padding,
              dilation, groups)


def conv1d_backward(dx, dweight, dbias, dy, x, weight, stride, padding, dilation, groups):
    """dx (OVERWRITTEN; None: skipped), dweight, dbias (ACCUMULATED; None: skipped)."""
    _conv_run("conv1d", 1, True, dx, dweight, dbias, dy, x, weight, None, stride, padding,
              dilation, groups)


# ------------------------------------------------ normalization (norm.c)

cdef tuple _bn_x(object x):
    """(N, C, S) of a batch-norm input x (N, C), (N, C, L) or (N, C, H, W)."""
    cdef cnp.ndarray ax = _arr(x, "x", False)
    cdef int nd = cnp.PyArray_NDIM(ax)
    if not 2 <= nd <= 4:
        raise ValueError(f"batch_norm: x must be (N, C), (N, C, L) or (N, C, H, W), got "
                         f"shape {_shp(ax)}")
    return ax, ax.shape[0], ax.shape[1], int(np.prod(_shp(ax)[2:], dtype=np.int64))


def batch_norm_forward(y, x, weight, bias, running_mean, running_var, num_batches_tracked,
                       training, momentum, eps):
    """y = batch norm of x (N, C, ...) (csrc/norm.c): batch statistics when training
    (running_mean/var, None when not tracked, updated in place with momentum; None:
    the cumulative average over num_batches_tracked (1 float, incremented)), else the
    running ones. weight, bias (C) may be None."""
    cdef cnp.ndarray ax
    ax, N, C, S = _bn_x(x)
    cdef cnp.ndarray ay = _arr(y, "y", True)
    _same_shape(ay, "y", ax, "x")
    _no_overlap(y, "y", x, "x")
    cdef float *pw = _fp_opt(weight, "weight", False, C)
    cdef float *pb = _fp_opt(bias, "bias", False, C)
    cdef float *prm = _fp_opt(running_mean, "running_mean", True, C)
    cdef float *prv = _fp_opt(running_var, "running_var", True, C)
    cdef float *pnb = _fp_opt(num_batches_tracked, "num_batches_tracked", True, 1)
    arrays = ((y, "y"), (running_mean, "running_mean"), (running_var, "running_var"),
              (num_batches_tracked, "num_batches_tracked"))
    for i, (a, an) in enumerate(arrays):
        for b, bn in arrays[i + 1:] + ((x, "x"), (weight, "weight"), (bias, "bias")):
            _no_overlap(a, an, b, bn)
    cdef int32_t fl = FNN_NORM_CUMULATIVE if momentum is None else 0
    cdef float mom = 0.0 if momentum is None else momentum
    cdef float e = eps
    cdef int tr = bool(training)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef float *py = <float *>cnp.PyArray_DATA(ay)
    cdef int64_t n = N, c = C, sp = S
    cdef fnn_status s
    with nogil:
        s = fnn_batch_norm_forward(py, px, pw, pb, prm, prv, pnb, n, c, sp, tr, mom, e, fl)
    if s != FNN_OK:
        raise _error(s, "batch_norm_forward")


def batch_norm_backward(dx, dweight, dbias, dy, x, weight, running_mean, running_var,
                        training, eps):
    """dx (OVERWRITTEN, None: skipped), dweight, dbias (ACCUMULATED, None: skipped)
    of batch norm; the batch statistics are recomputed from x."""
    cdef cnp.ndarray ax
    ax, N, C, S = _bn_x(x)
    cdef cnp.ndarray ady = _arr(dy, "dy", False)
    _same_shape(ady, "dy", ax, "x")
    cdef float *pdx = NULL
    if dx is not None:
        _same_shape(_arr(dx, "dx", True), "dx", ax, "x")
        pdx = _fp(dx, "dx", True)
    cdef float *pdw = _fp_opt(dweight, "dweight", True, C)
    cdef float *pdb = _fp_opt(dbias, "dbias", True, C)
    cdef float *pw = _fp_opt(weight, "weight", False, C)
    cdef float *prm = _fp_opt(running_mean, "running_mean", False, C)
    cdef float *prv = _fp_opt(running_var, "running_var", False, C)
    arrays = ((dx, "dx"), (dweight, "dweight"), (dbias, "dbias"))
    for i, (a, an) in enumerate(arrays):
        for b, bn in arrays[i + 1:] + ((dy, "dy"), (x, "x"), (weight, "weight"),
                                       (running_mean, "running_mean"),
                                       (running_var, "running_var")):
            _no_overlap(a, an, b, bn)
    cdef float e = eps
    cdef int tr = bool(training)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef float *pdy = <float *>cnp.PyArray_DATA(ady)
    cdef int64_t n = N, c = C, sp = S
    cdef fnn_status s
    with nogil:
        s = fnn_batch_norm_backward(pdx, pdw, pdb, pdy, px, pw, prm, prv, n, c, sp, tr, e)
    if s != FNN_OK:
        raise _error(s, "batch_norm_backward")


cdef tuple _ln_args(object x, object stats, bint out):
    cdef cnp.ndarray ax = _arr(x, "x", False), ast = _arr(stats, "stats", out)
    _ndim(ax, "x", 2, "(rows, normalized elements)")
    if _shp(ast) != (ax.shape[0], 2):
        raise ValueError(f"layer_norm: stats must have shape ({ax.shape[0]}, 2), got "
                         f"{_shp(ast)}")
    return ax, ast


def layer_norm_forward(y, stats, x, weight, bias, eps):
    """y = layer norm of the rows of x (R, D); stats (R, 2) = (mean, rstd) for backward.
    weight, bias (D) may be None."""
    cdef cnp.ndarray ax, ast
    ax, ast = _ln_args(x, stats, True)
    cdef cnp.ndarray ay = _arr(y, "y", True)
    _same_shape(ay, "y", ax, "x")
    cdef int64_t R = ax.shape[0], D = ax.shape[1]
    cdef float *pw = _fp_opt(weight, "weight", False, D)
    cdef float *pb = _fp_opt(bias, "bias", False, D)
    for a, an in ((y, "y"), (stats, "stats")):
        for b, bn in ((x, "x"), (weight, "weight"), (bias, "bias")):
            _no_overlap(a, an, b, bn)
    _no_overlap(y, "y", stats, "stats")
    cdef float e = eps
    cdef float *py = <float *>cnp.PyArray_DATA(ay)
    cdef float *ps = <float *>cnp.PyArray_DATA(ast)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef fnn_status s
    with nogil:
        s = fnn_layer_norm_forward(py, ps, px, pw, pb, R, D, e)
    if s != FNN_OK:
        raise _error(s, "layer_norm_forward")


def layer_norm_backward(dx, dweight, dbias, dy, x, weight, stats):
    """dx (OVERWRITTEN, None: skipped), dweight, dbias (ACCUMULATED, None: skipped)."""
    cdef cnp.ndarray ax, ast
    ax, ast = _ln_args(x, stats, False)
    cdef cnp.ndarray ady = _arr(dy, "dy", False)
    _same_shape(ady, "dy", ax, "x")
    cdef int64_t R = ax.shape[0], D = ax.shape[1]
    cdef float *pdx = NULL
    if dx is not None:
        _same_shape(_arr(dx, "dx", True), "dx", ax, "x")
        pdx = _fp(dx, "dx", True)
    cdef float *pdw = _fp_opt(dweight, "dweight", True, D)
    cdef float *pdb = _fp_opt(dbias, "dbias", True, D)
    cdef float *pw = _fp_opt(weight, "weight", False, D)
    arrays = ((dx, "dx"), (dweight, "dweight"), (dbias, "dbias"))
    for i, (a, an) in enumerate(arrays):
        for b, bn in arrays[i + 1:] + ((dy, "dy"), (x, "x"), (weight, "weight"),
                                       (stats, "stats")):
            _no_overlap(a, an, b, bn)
    cdef float *pdy = <float *>cnp.PyArray_DATA(ady)
    cdef float *px = <float *>cnp.PyArray_DATA(ax)
    cdef float *ps = <float *>cnp.PyArray_DATA(ast)
    cdef fnn_status s
    with nogil:
        s = fnn_layer_norm_backward(pdx, pdw, pdb, pdy, px, pw, ps, R, D)
    if s != FNN_OK:
        raise _error(s, "layer_norm_backward")


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


# The loss kernels of the backend API (``mse_loss(dpred, pred, target)``, ...),
# made by a loop over the C loss table: each is one fnn_loss_eval call. The
# table below names each one's arguments after dpred, in order (the NumPy
# reference has the same signatures).
LOSS_ARGS = {
    "mse": ("pred", "target"),
    "mae": ("pred", "target"),
    "huber": ("pred", "target", "delta"),
    "bce_with_logits": ("logits", "target", "pos_weight"),
    "cross_entropy": ("logits", "labels", "weight", "ignore_index"),
}


cdef double _loss(str name, dpred, dict kw, sample_weight=None, double denom=0.0) except? -1:
    cdef str pname = "logits" if "logits" in kw else "pred"
    cdef str tname = "labels" if "labels" in kw else "target"
    cdef str wname = "pos_weight" if "pos_weight" in kw else "weight"
    pred, target, weight = kw[pname], kw[tname], kw.get(wname)
    cdef cnp.ndarray ap = _pred2d(pred, pname), at
    cdef int64_t N = ap.shape[0], D = ap.shape[1]
    cdef fnn_loss_desc d
    cdef bytes bname = name.encode()
    d.name = bname
    d.delta = kw.get("delta", 0.0)
    d.ignore_index = kw.get("ignore_index", -100)
    if "delta" in kw and not d.delta > 0:
        raise ValueError(f"huber delta must be > 0, got {d.delta}")
    cdef const float *pt = NULL
    cdef const int64_t *pl = NULL
    if tname == "labels":
        at = _arr(target, "labels", False, cnp.NPY_INT64)
        if cnp.PyArray_NDIM(at) != 1 or at.shape[0] != N:
            raise ValueError(f"labels must have shape ({N},), got {_shp(at)}")
        pl = <int64_t *>cnp.PyArray_DATA(at)
    else:
        at = _arr(target, "target", False)
        _same_shape(at, "target", ap, pname)
        pt = <float *>cnp.PyArray_DATA(at)
    d.weight = _fp_opt(weight, wname, False, D)
    d.weight_len = D if weight is not None else 0
    cdef const float *pw = _fp_opt(sample_weight, "sample_weight", False, N)
    if not isfinite(denom):
        raise ValueError(f"denom must be finite, got {denom}")
    cdef float *pd = _dpred(dpred, ap, pname, ((pred, pname), (target, tname), (weight, wname),
                                               (sample_weight, "sample_weight")))
    cdef const float *pp = <float *>cnp.PyArray_DATA(ap)
    cdef double loss = 0.0
    cdef int64_t bad = -1
    cdef fnn_status s
    with nogil:
        s = fnn_loss_eval_weighted(&d, &loss, pd, pp, pt, pl, pw, denom, N, D, &bad)
    if s == FNN_ERR_LABEL:
        raise IndexError(f"target {target[bad]} is out of bounds for {D} classes (row {bad})")
    if s != FNN_OK:
        raise _error(s, f"{name}_loss")
    return loss


def _make_loss(str name):
    names = LOSS_ARGS[name]

    def loss(dpred, *args, sample_weight=None, denom=0.0):
        if len(args) != len(names):
            raise TypeError(f"{name}_loss() takes {len(names) + 1} arguments "
                            f"(dpred, {', '.join(names)}), got {len(args) + 1}")
        return _loss(name, dpred, dict(zip(names, args)), sample_weight, denom)
    loss.__name__ = f"{name}_loss"
    loss.__signature__ = _signature(("dpred",) + names, ("sample_weight", "denom"))
    loss.__doc__ = (f"Mean {name} loss of ({', '.join(names)}); writes d(loss)/d(pred) "
                    f"into dpred (None: skip). sample_weight (N,) and denom: loss = "
                    f"sum w l / denom (denom <= 0: sum w). One entry of the C loss table.")
    return loss


LOSS_NAMES = tuple(fnn_loss_name(i).decode() for i in range(fnn_loss_count()))
for _name in LOSS_NAMES:
    globals()[f"{_name}_loss"] = _make_loss(_name)
del _name


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


# The optimizer kernels of the backend API (``sgd_update(params, buf, grads,
# step, lr, ...)``), made by a loop over the C optimizer table: each is one
# fnn_optim_step call. The table below names each one's state arrays and
# hyperparameters, in order; AdamW is ``adam_update(..., decoupled=True)``,
# the table's "adamw" entry.
OPTIM_ARGS = {
    "sgd": (("buf",), ("lr", "momentum", "dampening", "weight_decay", "nesterov")),
    "adam": (("m", "v"), ("lr", "beta1", "beta2", "eps", "weight_decay", "decoupled")),
    "rmsprop": (("sq", "buf"), ("lr", "alpha", "eps", "weight_decay", "momentum")),
    "adagrad": (("sum",), ("lr", "lr_decay", "eps", "weight_decay")),
}


cdef void _set_hyper(fnn_optim_desc *d, dict hp) except *:
    """An optimizer descriptor's hyperparameters from a dict (missing: 0)."""
    d.lr = hp.get("lr", 0.0)
    d.weight_decay = hp.get("weight_decay", 0.0)
    d.eps = hp.get("eps", 0.0)
    d.momentum = hp.get("momentum", 0.0)
    d.dampening = hp.get("dampening", 0.0)
    d.beta1 = hp.get("beta1", 0.0)
    d.beta2 = hp.get("beta2", 0.0)
    d.alpha = hp.get("alpha", 0.0)
    d.lr_decay = hp.get("lr_decay", 0.0)
    d.nesterov = bool(hp.get("nesterov", False))


cdef _update(str name, tuple snames, tuple hnames, tuple args):
    cdef int ns = len(snames), k, j
    if len(args) != ns + 3 + len(hnames):
        raise TypeError(f"{name}_update() takes params, {', '.join(snames)}, grads, step, "
                        f"{', '.join(hnames)}")
    params, states, grads = args[0], args[1:1 + ns], args[1 + ns]
    cdef long long step = args[2 + ns]
    hp = dict(zip(hnames, args[3 + ns:]))
    cdef fnn_optim_desc d
    memset(&d, 0, sizeof(fnn_optim_desc))
    d.lr = hp["lr"]
    _step_ok(step, d.lr)
    cdef int64_t P = _flat(params, grads, tuple(zip(states, snames)))
    for k in range(ns):
        for j in range(k + 1, ns):
            _no_overlap(states[k], snames[k], states[j], snames[j])
    cdef bytes bname = ("adamw" if hp.get("decoupled") else name).encode()
    _set_hyper(&d, hp)
    d.name = bname
    for k in range(fnn_optim_num_state(&d)):
        if states[k] is None:
            raise ValueError(f"{name}_update needs the state buffer {snames[k]} with these "
                             f"settings (momentum {d.momentum:g})" if "momentum" in hnames
                             else f"{name}_update needs the state buffer {snames[k]}")
    for k in range(ns):
        d.state[k] = _fp_opt(states[k], snames[k], True, P)
    cdef float *pp = _fp(params, "params", True)
    cdef float *pg = _fp(grads, "grads", False)
    cdef fnn_status s
    with nogil:
        s = fnn_optim_step(&d, pp, pg, P, step)
    _raise(s, f"{name}_update")


def _make_update(str name):
    snames, hnames = OPTIM_ARGS[name]

    def update(*args):
        _update(name, snames, hnames, args)
    update.__name__ = f"{name}_update"
    update.__signature__ = _signature(("params",) + snames + ("grads", "step") + hnames)
    update.__doc__ = (f"One {name} update of params in place (PyTorch semantics); one entry "
                      f"of the C optimizer table.")
    return update


OPTIM_NAMES = tuple(fnn_optim_name(i).decode() for i in range(fnn_optim_count()))
for _name in OPTIM_NAMES:
    if _name in OPTIM_ARGS:     # "adamw" is adam_update(decoupled=True)
        globals()[f"{_name}_update"] = _make_update(_name)
del _name


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


# ----------------------------------------------------------- permutation

def permutation(order, key):
    """order (n,) int64 = a random permutation of 0..n-1, a pure function of
    (n, key) (Fisher-Yates on the splitmix64 generator seeded with key, csrc/
    permutation.c): the order fit visits the rows in each epoch."""
    cdef cnp.ndarray ao = _arr(order, "order", True, cnp.NPY_INT64)
    if cnp.PyArray_NDIM(ao) != 1:
        raise ValueError(f"order must be 1-D, got shape {_shp(ao)}")
    cdef uint64_t k = <uint64_t>(operator.index(key) & 0xFFFFFFFFFFFFFFFF)
    cdef int64_t n = cnp.PyArray_SIZE(ao)
    cdef int64_t *po = <int64_t *>cnp.PyArray_DATA(ao)
    cdef fnn_status s
    with nogil:
        s = fnn_permutation(po, n, k)
    _raise(s, "permutation")



# ----------------------------------------------------------------- model

cdef enum:
    N_WRITTEN = 4   # params, grads, state0, state1: what a train step writes

_WRAP = object()    # Model.__new__(Model, _WRAP): a shell for _wrap to fill


cdef class Model:
    """A C ``fnn_model`` (csrc/model.c): layout, flat buffers, loss, optimizer.

    ``Model(input_shape, nodes, seed)`` builds it from a per-sample input
    shape and a list of ``(op name, attrs dict)`` (a chain: node i reads
    slot i) and initialises the parameters from ``seed``. ``params``,
    ``grads`` and ``buffers`` are NumPy views of the model's own memory
    (they keep the model alive). ``Model.load(path)`` reads a model file.

    ``set_loss``/``set_optimizer`` bind the loss and the optimizer (its
    state arrays are borrowed: kept alive here); ``train_step`` then checks
    only the batch and the workspace -- type, shape, no overlap with any
    buffer the step writes -- and makes the one C call.
    """
    cdef fnn_model *m
    cdef readonly object params, grads, buffers
    cdef readonly tuple input_shape, output_shape
    cdef readonly int64_t in_size, out_size
    cdef readonly bint labels
    cdef fnn_shape in_shape_c
    cdef object keep        # arrays the C model borrows (optimizer state)
    cdef char *lo[N_WRITTEN]
    cdef char *hi[N_WRITTEN]

    def __cinit__(self, input_shape=None, nodes=None, seed=0):
        if input_shape is _WRAP:    # Model._wrap fills it
            return
        if input_shape is None or nodes is None:
            raise TypeError("Model(input_shape, nodes, seed): a per-sample input shape and a "
                            "list of (op, attrs) nodes")
        nodes = list(nodes)
        cdef fnn_model_desc desc
        cdef int64_t L = len(nodes), i
        if L < 1:
            raise ValueError("a model needs at least one node")
        cdef fnn_node *buf = <fnn_node *>malloc(L * sizeof(fnn_node))
        if buf == NULL:
            raise MemoryError()
        cdef fnn_status s
        cdef uint64_t sd = <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)
        try:
            for i, (op, attrs) in enumerate(nodes):
                _set_node(&buf[i], op, attrs, i)
            _set_shape(&desc.input, input_shape)
            desc.num_nodes = L
            desc.nodes = buf
            with nogil:
                s = fnn_model_create(&self.m, &desc, sd)
        finally:
            free(buf)
        if s != FNN_OK:
            raise _error(s, "Model")
        self._views()

    cdef void _views(self) except *:
        cdef fnn_shape si = fnn_model_input_shape(self.m), so = fnn_model_output_shape(self.m)
        self.in_shape_c = si
        self.input_shape, self.output_shape = _shape_tuple(&si), _shape_tuple(&so)
        self.in_size = int(np.prod(self.input_shape))
        self.out_size = int(np.prod(self.output_shape))
        self.params = self._view(fnn_model_params(self.m), fnn_model_num_params(self.m))
        self.grads = self._view(fnn_model_grads(self.m), fnn_model_num_params(self.m))
        self.buffers = self._view(fnn_model_buffers(self.m), fnn_model_num_buffers(self.m))
        self.lo[0] = _extent(self.params, &self.hi[0])
        self.lo[1] = _extent(self.grads, &self.hi[1])
        self.lo[2] = self.hi[2] = self.lo[3] = self.hi[3] = NULL

    cdef object _view(self, float *p, int64_t n):
        cdef cnp.npy_intp dims[1]
        dims[0] = n
        arr = cnp.PyArray_SimpleNewFromData(1, dims, cnp.NPY_FLOAT32, <void *>p)
        cnp.set_array_base(arr, self)
        return arr

    def __dealloc__(self):
        fnn_model_free(self.m)

    @staticmethod
    cdef Model _wrap(fnn_model *m):
        cdef Model self = Model.__new__(Model, _WRAP)
        self.m = m
        self._views()
        return self

    @staticmethod
    def load(path):
        """Read a model file written by ``save`` or by C's fnn_model_save."""
        cdef bytes p = str(path).encode()
        cdef const char *cp = p
        cdef fnn_model *m = NULL
        cdef fnn_status s
        with nogil:
            s = fnn_model_load(&m, cp)
        if s != FNN_OK:
            raise _error(s, f"load {path}")
        return Model._wrap(m)

    @staticmethod
    def load_bytes(data):
        """The same from bytes in memory."""
        cdef const unsigned char[::1] view = memoryview(data).cast("B")
        cdef fnn_model *m = NULL
        cdef fnn_status s
        cdef int64_t n = view.shape[0]
        with nogil:
            s = fnn_model_load_bytes(&m, &view[0] if n > 0 else NULL, n)
        if s != FNN_OK:
            raise _error(s, "load_bytes")
        return Model._wrap(m)

    def save(self, path):
        """Write the model file (atomic: temp file, fsync, rename)."""
        cdef bytes p = str(path).encode()
        cdef const char *cp = p
        cdef fnn_status s
        with nogil:
            s = fnn_model_save(self.m, cp)
        if s != FNN_OK:
            raise _error(s, f"save {path}")

    def init(self, seed):
        """Re-initialise parameters and buffers from seed (counters to 0)."""
        cdef fnn_status s = fnn_model_init(self.m, <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF))
        if s != FNN_OK:
            raise _error(s, "init")

    @property
    def seed(self):
        return fnn_model_seed(self.m)

    @property
    def num_nodes(self):
        return fnn_model_num_nodes(self.m)

    def node(self, int i):
        """(op name, attrs dict) of node i."""
        cdef const fnn_node *nd = fnn_model_node(self.m, i)
        if nd == NULL:
            raise IndexError(f"no node {i}")
        cdef bytes op = <const char *>nd.op
        return op.decode(), _get_attrs(&nd.attrs)

    def node_info(self, int i):
        """{"out_shape", "param_offset", "num_params", "buffer_offset", "num_buffers",
        "scratch_per_row"} of node i."""
        cdef fnn_node_info inf
        cdef fnn_status s = fnn_model_node_info(self.m, i, &inf)
        if s != FNN_OK:
            raise IndexError(f"no node {i}")
        return {"out_shape": _shape_tuple(&inf.out_shape), "param_offset": inf.param_offset,
                "num_params": inf.num_params, "buffer_offset": inf.buffer_offset,
                "num_buffers": inf.num_buffers, "scratch_per_row": inf.scratch_per_row}

    @property
    def metadata(self):
        cdef int64_t n = 0
        cdef const char *p = fnn_model_metadata(self.m, &n)
        return p[:n]

    @metadata.setter
    def metadata(self, bytes data):
        cdef fnn_status s = fnn_model_set_metadata(self.m, data, len(data))
        if s != FNN_OK:
            raise _error(s, "metadata")

    @property
    def counters(self):
        """(optimizer steps taken, training forward passes) of the C model."""
        return fnn_model_step(self.m), fnn_model_counter(self.m)

    def workspace_size(self, long long n, bint training=True):
        """Floats of workspace a batch of n rows needs (training or forward)."""
        cdef int64_t size = 0
        cdef fnn_status s = fnn_model_workspace_size(self.m, n, training, &size)
        if s != FNN_OK:
            raise _error(s, "workspace_size")
        return size

    cdef cnp.ndarray _batch(self, object x):
        """x as a float32 C-contiguous (n, *input_shape) or (n, in_size) array
        (checked in C: this runs every step)."""
        cdef cnp.ndarray ax = _arr(x, "x", False)
        cdef int nd = cnp.PyArray_NDIM(ax), d
        cdef bint ok = nd == 2 and ax.shape[1] == self.in_size
        if not ok and nd == self.in_shape_c.ndim + 1:
            ok = True
            for d in range(self.in_shape_c.ndim):
                ok = ok and ax.shape[d + 1] == self.in_shape_c.dim[d]
        if not ok:
            raise ValueError(f"x must have shape (n, {', '.join(map(str, self.input_shape))})"
                             f", got {_shp(ax)}")
        return ax

    cdef void _csr_batch(self, fnn_csr *c, object x) except *:
        """c from a CSR batch x = (indptr, indices, data) of (n, in_size)."""
        if len(x) != 3:
            raise ValueError("a sparse x is a tuple (indptr, indices, data)")
        _set_csr(c, x[0], x[1], x[2], self.in_size)

    def forward(self, out, x, work):
        """out (n, output) = the forward pass of x (n, input) in evaluation mode.
        x may be a CSR batch, a tuple (indptr, indices, data) (see
        ``csr_dense_forward``), when node 0 is linear."""
        cdef fnn_csr c
        cdef bint sparse = type(x) is tuple
        cdef cnp.ndarray ax
        cdef cnp.ndarray aout = _arr(out, "out", True)
        cdef cnp.ndarray aw = _arr(work, "work", True)
        cdef int64_t n
        if sparse:
            self._csr_batch(&c, x)
            n = c.rows
            xs = x
        else:
            ax = self._batch(x)
            n = ax.shape[0]
            xs = (x,)
        if cnp.PyArray_NDIM(aout) < 1 or cnp.PyArray_SIZE(aout) != n * self.out_size or \
                aout.shape[0] != n:
            raise ValueError(f"out must have shape ({n}, "
                             f"{', '.join(map(str, self.output_shape))}), got {_shp(aout)}")
        for a, an in ((out, "out"), (work, "work")):
            for b, bn in ((self.params, "params"), (self.buffers, "buffers")):
                _no_overlap(a, an, b, bn)
            for b in xs:
                _no_overlap(a, an, b, "x")
        _no_overlap(out, "out", work, "work")
        cdef fnn_status s
        cdef float *pout = <float *>cnp.PyArray_DATA(aout)
        cdef float *pw = <float *>cnp.PyArray_DATA(aw)
        cdef int64_t nw = cnp.PyArray_SIZE(aw)
        if sparse:
            with nogil:
                s = fnn_model_forward_csr(self.m, pout, &c, pw, nw)
        else:
            with nogil:
                s = fnn_model_forward(self.m, pout, <float *>cnp.PyArray_DATA(ax), n, pw, nw)
        if s != FNN_OK:
            raise _error(s, "forward")

    def set_loss(self, str name, float delta=0.0, weight=None, long long ignore_index=-100):
        """Bind a loss of the C loss table (the model copies the weight)."""
        cdef fnn_loss_desc d
        cdef bytes bname = name.encode()
        d.name = bname
        d.delta = delta
        d.weight = _fp_opt(weight, "weight", False, self.out_size)
        d.weight_len = self.out_size if weight is not None else 0
        d.ignore_index = ignore_index
        cdef fnn_status s = fnn_model_set_loss(self.m, &d)
        if s != FNN_OK:
            raise _error(s, "set_loss")
        self.labels = name == "cross_entropy"

    def set_optimizer(self, str name, dict hp, states=()):
        """Bind an optimizer of the C table with hyperparameters ``hp`` (lr,
        weight_decay, eps, momentum, dampening, beta1, beta2, alpha, lr_decay,
        max_grad_norm, nesterov) and its state arrays (borrowed, P floats each)."""
        cdef fnn_optim_desc d
        memset(&d, 0, sizeof(fnn_optim_desc))
        cdef bytes bname = name.encode()
        _set_hyper(&d, hp)
        d.name = bname
        d.max_grad_norm = hp.get("max_grad_norm", 0.0) or 0.0
        _step_ok(1, d.lr)
        cdef int64_t P = cnp.PyArray_SIZE(self.params)
        states = tuple(states)
        if len(states) > FNN_MAX_STATE:
            raise ValueError(f"at most {FNN_MAX_STATE} state buffers, got {len(states)}")
        written = [(self.params, "params"), (self.grads, "grads")]
        cdef int k
        for k, st in enumerate(states):
            name_k = f"state{k}"
            d.state[k] = _fp_opt(st, name_k, True, P)
            for other, oname in written:
                _no_overlap(st, name_k, other, oname)
            written.append((st, name_k))
        needed = fnn_optim_num_state(&d)
        if needed > 0 and sum(st is not None for st in states[:needed]) < needed:
            raise ValueError(f"set_optimizer: {name} with these settings needs {needed} state "
                             f"buffer(s), got {sum(st is not None for st in states)}")
        cdef fnn_status s = fnn_model_set_optimizer(self.m, &d)
        if s != FNN_OK:
            raise _error(s, "set_optimizer")
        for k in range(2):
            st = states[k] if k < len(states) else None
            if st is None:
                self.lo[2 + k] = self.hi[2 + k] = NULL
            else:
                self.lo[2 + k] = _extent(<cnp.ndarray>st, &self.hi[2 + k])
        self.keep = states

    cdef void _disjoint(self, cnp.ndarray a, str name) except *:
        """ValueError if a overlaps a buffer the step writes."""
        cdef char *e
        cdef char *b = _extent(a, &e)
        cdef int i
        for i in range(N_WRITTEN):
            if self.lo[i] != NULL and b < self.hi[i] and self.lo[i] < e:
                raise ValueError(f"{('params', 'grads', 'state0', 'state1')[i]} must not "
                                 f"share memory with {name}")

    def output_offset(self, long long n):
        """Where a train step on n rows leaves its outputs (n, output) in the workspace."""
        cdef int64_t off = 0
        cdef fnn_status s = fnn_model_output_offset(self.m, n, &off)
        if s != FNN_OK:
            raise _error(s, "output_offset")
        return off

    cdef cnp.ndarray _target(self, object target, int64_t n):
        """The batch's int64 labels (n,) for cross-entropy, else float32 targets
        (n, *output), checked."""
        cdef cnp.ndarray at
        if self.labels:
            at = _arr(target, "labels", False, cnp.NPY_INT64)
            if cnp.PyArray_NDIM(at) != 1 or at.shape[0] != n:
                raise ValueError(f"labels must have shape ({n},), got {_shp(at)}")
        else:
            at = _arr(target, "target", False)
            if cnp.PyArray_NDIM(at) < 1 or at.shape[0] != n or \
                    cnp.PyArray_SIZE(at) != n * self.out_size:
                raise ValueError(f"target must have shape ({n}, "
                                 f"{', '.join(map(str, self.output_shape))}), got {_shp(at)}")
        return at

    cdef void _check_counters(self, long long steps_done, long long counter) except *:
        """Steps and training passes made so far, with room for an epoch's worth more."""
        if steps_done < 0:
            raise ValueError(f"step must be >= 1, got {steps_done + 1}")
        if steps_done >= INT64_MAX // 2 or counter >= INT64_MAX // 2 or counter < -1:
            raise ValueError(f"step or dropout counter out of range: {steps_done}, {counter}")

    cdef void _step_status(self, fnn_status s, object target, int64_t bad, str where) except *:
        """The exception for a failed train step or epoch (a bad label names its row)."""
        if s == FNN_ERR_LABEL:
            raise IndexError(f"target {target[bad]} is out of bounds for {self.out_size} "
                             f"classes (row {bad})")
        if s != FNN_OK:
            raise _error(s, where)

    cdef cnp.ndarray _step_args(self, fnn_train_args *a, fnn_csr *c, x, target, work,
                                sample_weight, double denom, long long steps_done,
                                long long counter):
        """Fill a train step's args from a checked batch (x dense, or a CSR tuple
        (indptr, indices, data) described into c); returns the target array (kept
        alive by the caller for the call)."""
        cdef cnp.ndarray ax, aw, at, asw
        memset(a, 0, sizeof(fnn_train_args))
        if type(x) is tuple:
            self._csr_batch(c, x)
            a.n = c.rows
            a.x_csr = c
            xs = x
        else:
            ax = self._batch(x)
            a.n = ax.shape[0]
            a.x = <float *>cnp.PyArray_DATA(ax)
            xs = (x,)
        at = self._target(target, a.n)
        a.labels = <int64_t *>cnp.PyArray_DATA(at) if self.labels else NULL
        a.target = NULL if self.labels else <float *>cnp.PyArray_DATA(at)
        self._check_counters(steps_done, counter)
        for xa in xs:
            self._disjoint(<cnp.ndarray>xa, "x")
        self._disjoint(at, "target")
        if work is not None:
            aw = _arr(work, "work", True)
            self._disjoint(aw, "work")
            for xa in xs:
                _no_overlap(work, "work", xa, "x")
            _no_overlap(work, "work", target, "target")
            a.work = <float *>cnp.PyArray_DATA(aw)
            a.work_size = cnp.PyArray_SIZE(aw)
        if sample_weight is not None:
            asw = _arr(sample_weight, "sample_weight", False)
            if cnp.PyArray_NDIM(asw) != 1 or asw.shape[0] != a.n:
                raise ValueError(f"sample_weight must have shape ({a.n},), got {_shp(asw)}")
            self._disjoint(asw, "sample_weight")
            _no_overlap(work, "work", sample_weight, "sample_weight")
            a.sample_weight = <float *>cnp.PyArray_DATA(asw)
        if not isfinite(denom):
            raise ValueError(f"denom must be finite, got {denom}")
        a.denom = denom
        fnn_model_set_counters(self.m, steps_done, counter)
        return at

    def train_step(self, x, target, work, long long steps_done, long long counter,
                   sample_weight=None, double denom=0.0):
        """One fused training step on (x, target); returns the loss (before the update).

        ``steps_done``/``counter``: optimizer steps and training passes made so
        far (the step uses steps_done + 1; dropout keys counter + 1). ``work``:
        a workspace array, or None for the model's own. ``sample_weight`` (n,)
        float32 and ``denom``: the loss is sum w l / denom (denom <= 0: sum w).
        x may be a CSR batch, a tuple (indptr, indices, data) as ``forward``."""
        cdef fnn_train_args a
        cdef fnn_train_result r
        cdef fnn_csr c
        at = self._step_args(&a, &c, x, target, work, sample_weight, denom, steps_done,
                             counter)
        cdef fnn_status s
        with nogil:
            s = fnn_model_train_step(self.m, &a, &r)
        self._step_status(s, target, r.bad_index, "train_step")
        return r.loss

    def compute_gradients(self, x, target, work, long long steps_done, long long counter,
                          sample_weight=None, double denom=0.0):
        """Forward, loss and backward of a train step without the update: ``grads``
        is overwritten, nothing else changes. Returns the loss. Arguments as
        ``train_step``; needs a loss, not an optimizer."""
        cdef fnn_train_args a
        cdef fnn_train_result r
        cdef fnn_csr c
        at = self._step_args(&a, &c, x, target, work, sample_weight, denom, steps_done,
                             counter)
        cdef fnn_status s
        with nogil:
            s = fnn_model_compute_gradients(self.m, &a, &r)
        self._step_status(s, target, r.bad_index, "compute_gradients")
        return r.loss

    def apply_gradients(self, long long steps_done, long long counter):
        """One optimizer update (clipping first) from the current ``grads``, as the
        second half of a train step that made ``steps_done`` steps before."""
        self._check_counters(steps_done, counter)
        fnn_model_set_counters(self.m, steps_done, counter)
        cdef fnn_status s
        with nogil:
            s = fnn_model_apply_gradients(self.m)
        if s != FNN_OK:
            raise _error(s, "apply_gradients")

    def train_epoch(self, x, target, order, long long batch_size, long long first_batch,
                    long long max_batches, int metric, double loss_sum, double correct,
                    long long steps_done, long long counter, sample_weight=None,
                    bint weights_per_row=False):
        """Batches first_batch.. (at most max_batches; <= 0: all) of an epoch over the
        whole (x, target) in `order` (int64 permutation or None), each one fused step
        (csrc/model.c fnn_model_train_epoch). Returns (loss_sum, correct, rows,
        batches, stop_batch, last_loss); loss_sum and correct are carried in.
        ``sample_weight`` (rows,) float32: each batch's loss is sum w l / sum w, or
        / its rows with ``weights_per_row`` (Keras)."""
        cdef cnp.ndarray ax = self._batch(x), at, ao, asw
        cdef fnn_epoch_args a
        cdef fnn_epoch_result r
        memset(&a, 0, sizeof(fnn_epoch_args))
        a.rows = ax.shape[0]
        at = self._target(target, a.rows)
        a.labels = <int64_t *>cnp.PyArray_DATA(at) if self.labels else NULL
        a.target = NULL if self.labels else <float *>cnp.PyArray_DATA(at)
        if order is not None:
            ao = _arr(order, "order", False, cnp.NPY_INT64)
            if cnp.PyArray_NDIM(ao) != 1 or ao.shape[0] != a.rows:
                raise ValueError(f"order must have shape ({a.rows},), got {_shp(ao)}")
            a.order = <int64_t *>cnp.PyArray_DATA(ao)
            self._disjoint(ao, "order")
        if sample_weight is not None:
            asw = _arr(sample_weight, "sample_weight", False)
            if cnp.PyArray_NDIM(asw) != 1 or asw.shape[0] != a.rows:
                raise ValueError(f"sample_weight must have shape ({a.rows},), got "
                                 f"{_shp(asw)}")
            self._disjoint(asw, "sample_weight")
            a.sample_weight = <float *>cnp.PyArray_DATA(asw)
        a.weight_norm = FNN_WEIGHTS_ROWS if weights_per_row else FNN_WEIGHTS_MEAN
        self._check_counters(steps_done, counter)
        self._disjoint(ax, "x")
        self._disjoint(at, "target")
        a.x = <float *>cnp.PyArray_DATA(ax)
        a.batch_size = batch_size
        a.first_batch = first_batch
        a.max_batches = max_batches
        a.metric = metric
        r.loss_sum = loss_sum
        r.correct = correct
        fnn_model_set_counters(self.m, steps_done, counter)
        cdef fnn_status s
        with nogil:
            s = fnn_model_train_epoch(self.m, &a, &r)
        self._step_status(s, target, r.bad_index, "train_epoch")
        return r.loss_sum, r.correct, r.rows, r.batches, r.stop_batch, r.last_loss
