"""Convolutions: C kernels (csrc/conv.c) against the NumPy twins
(fastnn/reference/conv.py), gradients against float64 finite differences, the
layers end to end (fused C plan, fit, save/load, pickle, ONNX). PyTorch parity
is tests/test_conv_torch.py."""
import pickle

import numpy as np
import pytest

import fastnn as fnn
from fastnn import _core as C
from fastnn import reference as R
from fastnn.reference.conv import conv_out_size, conv_padding
from fastnn.reference.init import conv_init
from finite_diff import numeric_grad  # tests/finite_diff.py


def _configs(seed, n, nd=2):
    """Random configurations: odd sizes, stride > kernel, padding > kernel / 2, dilation,
    groups (depthwise too), batch 1, 1x1 images, non-square, no bias, 'same' padding."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        G = int(rng.choice([1, 1, 2, 3]))
        Cin = G * int(rng.integers(1, 4))
        O = G * int(rng.integers(1, 4))
        if rng.random() < 0.15:        # depthwise
            G, O = Cin, Cin * int(rng.integers(1, 3))
        k = tuple(int(rng.integers(1, 5)) for _ in range(nd))
        s = tuple(int(rng.integers(1, 5)) for _ in range(nd))
        d = tuple(int(rng.integers(1, 3)) for _ in range(nd))
        if rng.random() < 0.2:          # 'same' (stride 1): maybe asymmetric
            s = (1,) * nd
            pads = tuple((t // 2, t - t // 2) for t in (dd * (kk - 1) for dd, kk in zip(d, k)))
        else:
            pads = tuple((p, p) for p in (int(rng.integers(0, 4)) for _ in range(nd)))
        sp = tuple(int(rng.integers(1, 10)) for _ in range(nd))
        if min(conv_out_size(sp[i], k[i], s[i], d[i], *pads[i]) for i in range(nd)) < 1:
            continue
        out.append((int(rng.integers(1, 4)), Cin, sp, O, k, s, pads, d, G,
                    bool(rng.random() < 0.75)))
    return out


HAND = [
    (2, 1, (28, 28), 6, (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1, True),    # LeNet
    (2, 6, (14, 14), 16, (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, True),
    (2, 16, (8, 8), 12, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),    # GEMM path
    # dW of the GEMM path as dW^T = col . dy^T (csrc/conv.c dwt_block) for <= 32 output
    # channels per group, in row blocks of at most 8192 / Og: 32 channels and 288 patch
    # rows (2 blocks), 20 per group; above 32 per group the dy . col^T way (dw_block)
    (2, 32, (5, 5), 32, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),
    (2, 8, (7, 7), 40, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 2, False),
    (1, 4, (5, 6), 70, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, False),
    (2, 6, (5, 5), 130, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2, True),
    (1, 3, (1, 1), 4, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, True),      # 1x1 image
    (2, 10, (5, 7), 6, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 2, False),    # pointwise
    (1, 8, (6, 5), 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 8, True),      # depthwise
    (3, 4, (9, 8), 5, (2, 3), (5, 4), ((3, 3), (2, 2)), (2, 1), 1, True),      # s > k, p > k/2
    (1, 12, (7, 9), 6, (4, 2), (1, 1), ((1, 2), (0, 1)), (1, 1), 3, True),     # asym 'same'
    (2, 9, (11, 4), 9, (3, 1), (2, 3), ((0, 0), (1, 1)), (3, 1), 1, False),
]
# csrc/conv.c on AVX-512 with <= 16 output channels per group and >= 256 output pixels:
# the direct forward and dW (fwd_direct, dw_direct: <= 64 patch elements per group,
# stride-1 columns), else dW by dot products over the patches (dw_dot: pointwise, column
# stride 2, 72 patch elements); the tiles of 1..8 channels x 3 or 4 patch rows, pixel
# tails, padding rows, groups, dilation, row strides; then shapes for the GEMM way
DOT = [
    (2, 1, (17, 19), 7, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),    # P 323, 7 ch
    (2, 4, (24, 18), 12, (3, 2), (1, 1), ((0, 0), (1, 1)), (2, 1), 2, False),  # groups, 6 ch
    (1, 3, (16, 20), 16, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, True),   # pointwise, 8+8
    (2, 2, (40, 30), 5, (5, 4), (2, 1), ((2, 2), (1, 1)), (1, 2), 1, True),    # stride 2 rows
    (1, 4, (16, 16), 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4, True),    # depthwise
    (1, 2, (20, 40), 3, (3, 3), (1, 2), ((1, 1), (1, 1)), (1, 1), 1, True),    # stride 2 cols
    (3, 1, (16, 16), 11, (2, 2), (1, 1), ((0, 1), (0, 1)), (1, 1), 1, True),   # P 256, 6+5
    (1, 8, (16, 16), 4, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),    # K 72: dw_dot
    (1, 1, (16, 16), 17, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),   # 17 ch: GEMM
    (2, 3, (15, 17), 4, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),    # P 255: GEMM
]
# csrc/conv.c dx_flip: with stride 1, >= 16 input channels per group and padding at most
# the dilated kernel's reach, dx is the forward conv of dy with the flipped, transposed
# weight; padding past the reach, or too little scratch for the flipped patches (batch 1,
# many more output than input channels), takes the dcol + col2im way
FLIP = [
    (2, 16, (7, 9), 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),
    (2, 32, (6, 5), 48, (3, 2), (1, 1), ((2, 2), (1, 1)), (1, 1), 1, False),   # pad = reach
    (1, 32, (9, 8), 16, (3, 3), (1, 1), ((1, 1), (1, 1)), (2, 2), 2, True),    # groups, dil
    (2, 16, (7, 6), 12, (4, 4), (1, 1), ((1, 2), (1, 2)), (1, 1), 1, True),    # asym 'same'
    (1, 20, (10, 12), 5, (5, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, True),   # valid
    (1, 16, (5, 5), 8, (3, 3), (1, 1), ((3, 3), (3, 3)), (1, 1), 1, True),     # pad > reach
    (1, 16, (4, 4), 96, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, False),   # no room
]
# csrc/conv.c's weight-gradient ways (see dwt_block): wide patch matrices (>= 1024 output
# pixels, >= 128 patch elements per group) as dy . col^T over one block of columns per
# thread; up to 128 output channels per group as col . dy^T in blocks of rows; more, in
# 32-column blocks
WIDE = [
    (1, 16, (32, 32), 20, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),  # P 1024, K 144
    (1, 32, (32, 33), 36, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2, False), # groups
    (1, 16, (63, 64), 17, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1, True),  # stride 2
    (2, 8, (6, 6), 72, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),     # 72 ch: row blocks
    (1, 4, (5, 5), 136, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),    # 136: columns
]
# a batch whose patches come to 2M floats or more: the weight gradient
# recomputes them per thread instead of reading the forward's (csrc/conv.c
# recompute_patches), on each of its three ways
RECOMPUTE = [
    (8, 32, (32, 32), 32, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),   # wide
    (64, 16, (16, 16), 48, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2, True),  # T blocks
    (64, 12, (40, 40), 20, (3, 3), (2, 2), ((1, 1), (0, 1)), (2, 2), 1, True),  # stride, dil
    (128, 8, (16, 16), 136, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, False),  # 32 cols
]
CONFIGS = _configs(0, 60) + HAND + DOT + FLIP
CONFIGS1 = _configs(1, 25, nd=1) + [(2, 4, (13,), 6, (3,), (2,), ((1, 1),), (2,), 2, True),
                                    (1, 2, (9,), 3, (4,), (1,), ((1, 2),), (1,), 1, False),
                                    # past the AVX-512 im2col's mask tables (csrc/conv.c
                                    # use_512): rows > 512 and kernels > 16 wide
                                    (2, 2, (600,), 3, (3,), (1,), ((1, 1),), (1,), 1, True),
                                    (1, 1, (40,), 2, (17,), (1,), ((8, 8),), (1,), 1, True),
                                    (2, 16, (20,), 8, (5,), (1,), ((2, 2),), (1,), 1, True)]


def _shape_of(x, w, s, pads, d):
    nd = x.ndim - 2
    return (x.shape[0], w.shape[0]) + tuple(
        conv_out_size(x.shape[2 + i], w.shape[2 + i], s[i], d[i], *pads[i]) for i in range(nd))


def _run(mod, x, w, b, s, pads, d, G, dy=None, need_dx=True):
    nd = x.ndim - 2
    y = np.empty(_shape_of(x, w, s, pads, d), x.dtype)
    getattr(mod, f"conv{nd}d_forward")(y, x, w, b, s, pads, d, G)
    if dy is None:
        return y
    dx = np.empty_like(x) if need_dx else None
    dw = np.full_like(w, 0.5)                 # accumulated: start from something
    db = None if b is None else np.full_like(b, -0.25)
    getattr(mod, f"conv{nd}d_backward")(dx, dw, db, dy, x, w, s, pads, d, G)
    return y, dx, dw, db


def _data(cfg, seed, dtype=np.float32):
    N, Cin, sp, O, k, s, pads, d, G, bias = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, Cin) + sp).astype(dtype)
    w = rng.standard_normal((O, Cin // G) + k).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if bias else None
    dy = rng.standard_normal(_shape_of(x, w, s, pads, d)).astype(dtype)
    return x, w, b, dy, s, pads, d, G


def _close(a, b, tol=2e-5):
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("cfg", CONFIGS + WIDE + RECOMPUTE + CONFIGS1)
def test_c_matches_reference(cfg):
    x, w, b, dy, s, pads, d, G = _data(cfg, 1)
    outs_c = _run(C, x, w, b, s, pads, d, G, dy)
    f64 = lambda a: None if a is None else a.astype(np.float64)
    outs_r = _run(R, f64(x), f64(w), f64(b), s, pads, d, G, f64(dy))
    for got, want in zip(outs_c, outs_r):
        if want is not None:
            _close(got, want)


@pytest.mark.parametrize("cfg", CONFIGS[::4] + CONFIGS1[::4])
def test_dx_none_skips_only_dx(cfg):
    x, w, b, dy, s, pads, d, G = _data(cfg, 2)
    full = _run(C, x, w, b, s, pads, d, G, dy)
    part = _run(C, x, w, b, s, pads, d, G, dy, need_dx=False)
    assert part[1] is None
    np.testing.assert_array_equal(part[2], full[2])
    if b is not None:
        np.testing.assert_array_equal(part[3], full[3])


def _fd(f, a, dy):
    """d sum(dy * f()) / da by central differences (f reads a)."""
    return numeric_grad(lambda: (dy * f()).sum(), a)


@pytest.mark.parametrize("cfg", CONFIGS[::5] + HAND[-4:] + DOT[:3] + FLIP[1:4] +
                         CONFIGS1[::5] + CONFIGS1[-1:])
def test_gradients_finite_differences(cfg):
    """Reference (float64) and C (float32) gradients of x, weight and bias against
    float64 central differences of the reference forward."""
    x, w, b, dy, s, pads, d, G = _data(cfg, 3, np.float64)
    f = lambda: _run(R, x, w, b, s, pads, d, G)
    _, dxr, dwr, dbr = _run(R, x, w, b, s, pads, d, G, dy)
    nx, nw = _fd(f, x, dy), _fd(f, w, dy)
    np.testing.assert_allclose(dxr, nx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dwr - 0.5, nw, rtol=1e-6, atol=1e-6)
    f32 = lambda a: None if a is None else a.astype(np.float32)
    _, dxc, dwc, dbc = _run(C, f32(x), f32(w), f32(b), s, pads, d, G, f32(dy))
    tol = 1e-4 * max(1.0, np.abs(nw).max())
    np.testing.assert_allclose(dxc, nx, rtol=1e-4, atol=tol)
    np.testing.assert_allclose(dwc - 0.5, nw, rtol=1e-4, atol=tol)
    if b is not None:
        nb = _fd(f, b, dy)
        np.testing.assert_allclose(dbr + 0.25, nb, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dbc + 0.25, nb, rtol=1e-4, atol=tol)


def test_same_bits_for_1_2_and_3_threads():
    cfgs = [(64, 1, (28, 28), 6, (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1, True),
            (16, 16, (16, 16), 32, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),
            (8, 8, (12, 12), 8, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 8, True),
            (4, 32, (6, 6), 32, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, False),
            (4, 6, (5, 5), 130, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2, True),
            (4,) + DOT[1][1:], (4,) + DOT[2][1:], (5,) + FLIP[2][1:],
            # batch 3, 16 -> 20 channels: the flipped dx had room for 1 thread's patches
            # and not for 3, so the way (and the bits) changed with the threads
            (3,) + WIDE[0][1:], (2,) + WIDE[1][1:], (3,) + WIDE[3][1:]] + RECOMPUTE
    old = C.get_num_threads()
    try:
        for cfg in cfgs:
            args = _data(cfg, 4)
            outs = []
            for t in (1, 2, 3):     # 3: channels (bias gradient) split unevenly
                C.set_num_threads(t)
                outs.append(_run(C, *args[:3], *args[4:], args[3]))
            for out in outs[1:]:
                for a, b in zip(outs[0], out):
                    np.testing.assert_array_equal(a, b)
    finally:
        C.set_num_threads(old)


def test_kernel_argument_errors():
    x = np.zeros((2, 4, 5, 5), np.float32)
    w = np.zeros((6, 2, 3, 3), np.float32)
    y = np.zeros((2, 6, 3, 3), np.float32)
    with pytest.raises(ValueError, match="conv2d.*larger than the padded input"):
        C.conv2d_forward(np.zeros((2, 6, 1, 1), np.float32), x,
                         np.zeros((6, 2, 7, 7), np.float32), None, 1, 0, 1, 2)
    with pytest.raises(ValueError, match=r"conv2d.*divisible by groups 3"):
        C.conv2d_forward(y, x, w, None, 1, 0, 1, 3)
    with pytest.raises(ValueError, match=r"weight must have shape \(6, 4, 3, 3\)"):
        C.conv2d_forward(y, x, w, None, 1, 0, 1, 1)
    with pytest.raises(ValueError, match=r"y must have shape \(2, 6, 3, 3\)"):
        C.conv2d_forward(np.zeros((2, 6, 4, 4), np.float32), x, w, None, 1, 0, 1, 2)
    with pytest.raises(ValueError, match="4-D"):
        C.conv2d_forward(y, x[0], w, None, 1, 0, 1, 2)
    with pytest.raises(ValueError, match="after = before or before"):
        C.conv2d_forward(y, x, w, None, 1, ((0, 2), (0, 0)), 1, 2)
    with pytest.raises(TypeError, match="float32"):
        C.conv2d_forward(y, x.astype(np.float64), w, None, 1, 0, 1, 2)


def test_c_describe_validates_too():
    """The C op table rejects what the Python layer would (a model file, the C API)."""
    base = {"units": 4, "kernel": (3, 3), "stride": (1, 1), "dilation": (1, 1), "groups": 1,
            "bias": 1}
    with pytest.raises(ValueError, match=r"conv2d: kernel size 3 .*larger than the padded "
                                         r"input \(2, 2, 2\)"):
        C.Model((2, 2, 2), [("conv2d", base)])
    with pytest.raises(ValueError, match=r"conv2d: in_channels 3 .*divisible by groups 2"):
        C.Model((3, 5, 5), [("conv2d", dict(base, groups=2))])
    with pytest.raises(ValueError, match=r"out_channels 3 must be divisible by groups 2"):
        C.Model((4, 5, 5), [("conv2d", dict(base, units=3, groups=2))])
    with pytest.raises(ValueError, match=r"conv2d: input must be \(C, H, W\)"):
        C.Model((4, 5), [("conv2d", base)])
    with pytest.raises(ValueError, match=r"conv1d: input must be \(C, L\)"):
        C.Model((4, 5, 5), [("conv1d", base)])
    with pytest.raises(ValueError, match="dilation"):
        C.Model((4, 5, 5), [("conv2d", dict(base, dilation=(0, 1)))])
    m = C.Model((4, 5, 5), [("conv2d", dict(base, padding=(1, 1), flags=3))])
    assert m.output_shape == (4, 6, 6)


def test_layer_arguments_and_errors():
    c = fnn.Conv2d(3, 8, 3, padding="same", dilation=2)
    assert c._pads == ((2, 2), (2, 2)) and c.weight.shape == (8, 3, 3, 3)
    assert fnn.Conv2d(3, 8, (4, 3), padding="same")._pads == ((1, 2), (1, 1))
    assert fnn.Conv2d(3, 8, 3, padding="valid")._pads == ((0, 0), (0, 0))
    assert fnn.Conv1d(2, 4, 4, padding="same")._pads == ((1, 2),)
    assert fnn.Conv2d(4, 8, 3, groups=4, bias=False).bias is None
    with pytest.raises(ValueError, match="strided"):
        fnn.Conv2d(3, 8, 3, stride=2, padding="same")
    for mode in ("reflect", "replicate", "circular"):
        with pytest.raises(NotImplementedError, match=mode):
            fnn.Conv2d(3, 8, 3, padding_mode=mode)
    with pytest.raises(ValueError, match="bogus"):
        fnn.Conv1d(3, 8, 3, padding_mode="bogus")
    with pytest.raises(ValueError, match=r"in_channels \(3\) must be divisible by groups \(2\)"):
        fnn.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(ValueError, match=r"out_channels \(3\) must be divisible"):
        fnn.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="kernel_size"):
        fnn.Conv2d(3, 8, 0)
    with pytest.raises(ValueError, match="padding"):
        fnn.Conv2d(3, 8, 3, padding="full")
    with pytest.raises(NotImplementedError):
        fnn.Conv2d(3, 8, 3, dtype=np.float64)
    # shapes: checked in Python, naming the layer and the shapes, before any C runs
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8, kernel_size=5\).*larger than the "
                                         r"padded input \(3, 4, 4\)"):
        fnn.Sequential(fnn.Conv2d(3, 8, 5), input_shape=(3, 4, 4))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expects 3 input channels, got "
                                         r"per-sample input \(2, 8, 8\)"):
        fnn.Sequential(fnn.Conv2d(3, 8, 3), input_shape=(2, 8, 8))
    with pytest.raises(ValueError, match=r"expects a \(C, H, W\) input per sample, got \(16,\)"):
        fnn.Sequential(fnn.Linear(8, 16), fnn.Conv2d(1, 2, 1))
    with pytest.raises(ValueError, match=r"expects a \(C, L\) input per sample"):
        fnn.Sequential(fnn.Conv1d(3, 2, 1), input_shape=(3, 4, 4))
    with pytest.raises(ValueError, match="expects a batch"):
        fnn.Conv2d(3, 2, 1, seed=0)(np.zeros((3, 4, 4), np.float32))


def test_initialisation_c_equals_reference_and_pytorch_bound():
    layers = lambda: [fnn.Conv2d(3, 8, (3, 2), groups=1), fnn.ReLU(),
                      fnn.Conv2d(8, 8, 3, groups=4, bias=False), fnn.Flatten(),
                      fnn.Linear(8 * 4 * 4, 2)]
    c = fnn.Sequential(*layers(), input_shape=(3, 8, 7), seed=7)
    n = fnn.Sequential(*layers(), input_shape=(3, 8, 7), seed=7, backend="numpy")
    np.testing.assert_array_equal(c.flat_params, n.flat_params)
    cm = C.Model((3, 8, 7), [(l.op, l.node_attrs()) for l in c.layers], 7)
    np.testing.assert_array_equal(cm.params, c.flat_params)
    ref = np.empty(8 * 3 * 6 + 8, np.float32)
    conv_init(ref, 18, 8 * 18, 8, 7, 0)
    np.testing.assert_array_equal(c.flat_params[:ref.size], ref)
    w = c.layers[0].weight.data
    bound = 1 / np.sqrt(18)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(c.layers[0].bias.data).max() <= bound
    assert np.abs(c.layers[2].weight.data).max() <= 1 / np.sqrt(18)


def _cnn(seed=0, **kw):
    # (no conv bias right before the BatchNorm: its gradient is 0 up to rounding,
    # which Adam would turn into full-size steps of noise)
    return fnn.Sequential(
        fnn.Conv2d(1, 4, 3, padding=1, bias=False), fnn.BatchNorm2d(4), fnn.ReLU(),
        fnn.MaxPool2d(2), fnn.Conv2d(4, 12, 3, padding="same"), fnn.ReLU(),
        fnn.Conv2d(12, 12, 3, groups=12, stride=2), fnn.Flatten(), fnn.Linear(12, 3),
        input_shape=(1, 8, 8), seed=seed, **kw)


def _images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    y = (X[:, 0, :4].mean(axis=(1, 2)) > 0).astype(np.int64) + (X[:, 0, :, :2].mean((1, 2)) > .2)
    return X, y


def test_cnn_fused_plan_trains_and_matches_layer_by_layer_and_numpy(tmp_path):
    """Conv2d, BatchNorm2d, MaxPool2d, Flatten, Linear in one C model: fit (the
    epoch in C) == the layer-by-layer C kernels bitwise; the numpy backend within
    float32 tolerance; the loss falls; predict, evaluate, save/load, pickle, summary."""
    X, y = _images()
    m = _cnn()
    assert m._get_plan() is not None
    h = m.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(m.parameters(), lr=0.01),
              epochs=6, batch_size=16, verbose=0, validation_split=0.25)
    assert h.history["loss"][-1] < 0.8 * h.history["loss"][0]
    assert len(h.history["val_loss"]) == 6
    ref = _cnn()
    ref.fused = False
    ref.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(ref.parameters(), lr=0.01),
            epochs=6, batch_size=16, verbose=0, validation_split=0.25)
    np.testing.assert_array_equal(m.flat_params, ref.flat_params)
    np.testing.assert_array_equal(m.flat_buffers, ref.flat_buffers)
    mn = _cnn(backend="numpy")
    mn.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=16,
           verbose=0)
    mc = _cnn()
    mc.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=16, verbose=0)
    np.testing.assert_allclose(mc.flat_params, mn.flat_params, rtol=1e-3, atol=1e-4)
    p = m.predict(X)
    assert p.shape == (96, 3)
    np.testing.assert_array_equal(p, m.predict(X.reshape(96, -1)))
    assert set(m.evaluate(X, y)) == {"loss", "accuracy"}
    m.save(tmp_path / "cnn.fnn")
    loaded = fnn.load(tmp_path / "cnn.fnn")
    assert [a.node_attrs() for a in loaded.layers] == [b.node_attrs() for b in m.layers]
    np.testing.assert_array_equal(loaded.predict(X), p)
    assert C.Model.load(tmp_path / "cnn.fnn").output_shape == (3,)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(m)).predict(X), p)
    text = m.summary(print_fn=None)
    assert "(N, 4, 8, 8)" in text and "(N, 12, 4, 4)" in text and "(N, 12, 1, 1)" in text


def _gemm_cnn(seed=0):
    # convolutions on the im2col + GEMM way (not the direct small-channel loop,
    # not pointwise): grouped, strided, dilated, 'same'
    return fnn.Sequential(
        fnn.Conv2d(3, 16, 3, padding=1), fnn.ReLU(), fnn.Conv2d(16, 24, 3, padding="same",
                                                                groups=2),
        fnn.BatchNorm2d(24), fnn.ReLU(), fnn.Conv2d(24, 32, 3, stride=2, dilation=2),
        fnn.Flatten(), fnn.Linear(32 * 4 * 4, 5), input_shape=(3, 12, 12), seed=seed)


@pytest.mark.parametrize("n", [1, 5, 64])
def test_fused_forward_reuses_a_patch_slot_per_thread_with_the_same_bits(n):
    """predict (fnn_model_forward: no backward follows, so each thread keeps
    its patches in one scratch slot) == the layer-by-layer kernels (every
    sample's slot) bitwise on 1, 2 and 3 threads; a predict between train
    steps changes nothing in training."""
    X = np.random.default_rng(n).standard_normal((n, 3, 12, 12)).astype(np.float32)
    y = np.arange(n) % 5
    old = C.get_num_threads()
    try:
        m = _gemm_cnn()
        m.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=1, verbose=0)
        m.eval()
        ref = pickle.loads(pickle.dumps(m))
        ref.fused = False
        want = ref.predict(X)
        for t in (1, 2, 3):
            C.set_num_threads(t)
            np.testing.assert_array_equal(m.predict(X), want)
        C.set_num_threads(2)
        runs = []
        for with_predict in (False, True):
            a = _gemm_cnn(seed=1)
            opt = fnn.SGD(a.parameters(), lr=0.01)
            for _ in range(3):
                a.train_step(X, y, "cross_entropy", opt)
                if with_predict:
                    a.predict(X)
            runs.append(a.flat_params.copy())
        np.testing.assert_array_equal(runs[0], runs[1])
    finally:
        C.set_num_threads(old)


def test_fused_step_with_recomputed_patches_matches_layer_by_layer_and_numpy():
    """A conv whose batch of patches is over 2M floats (16 -> 32 channels on
    16 x 16, batch 64): the weight gradient recomputes them. The fused train
    step == the layer-by-layer kernels bitwise on 2 threads, and the numpy
    backend within float32 tolerance."""
    def net(backend=None):
        kw = {} if backend is None else {"backend": backend}
        return fnn.Sequential(fnn.Conv2d(16, 32, 3, padding=1), fnn.ReLU(), fnn.MaxPool2d(4),
                              fnn.Flatten(), fnn.Linear(32 * 16, 4), input_shape=(16, 16, 16),
                              seed=3, **kw)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((64, 16, 16, 16)).astype(np.float32)
    y = rng.integers(0, 4, 64)
    old = C.get_num_threads()
    try:
        C.set_num_threads(2)
        params = []
        for fused, backend in ((True, None), (False, None), (True, "numpy")):
            m = net(backend)
            m.fused = fused
            opt = fnn.SGD(m.parameters(), lr=0.05)
            for _ in range(2):
                m.train_step(X, y, "cross_entropy", opt)
            params.append(m.flat_params.copy())
    finally:
        C.set_num_threads(old)
    np.testing.assert_array_equal(params[0], params[1])
    np.testing.assert_allclose(params[0], params[2], rtol=1e-4, atol=1e-5)


def test_conv1d_model_and_standalone_layer():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 2, 17)).astype(np.float32)
    y = (X[:, 0].mean(1) > 0).astype(np.int64)
    mk = lambda **kw: fnn.Sequential(fnn.Conv1d(2, 6, 4, padding="same"), fnn.ReLU(),
                                     fnn.Conv1d(6, 4, 3, stride=2, dilation=2), fnn.Flatten(),
                                     fnn.Linear(4 * 7, 2), input_shape=(2, 17), seed=1, **kw)
    a, b = mk(), mk()
    b.fused = False
    for m in (a, b):
        m.fit(X, y, loss="cross_entropy", epochs=3, batch_size=8, verbose=0)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    layer = fnn.Conv1d(2, 3, 5, padding=2, seed=3)
    out = layer(X[:4])
    want = np.empty((4, 3, 17))
    R.conv1d_forward(want, X[:4].astype(np.float64), layer.weight.data.astype(np.float64),
                     layer.bias.data.astype(np.float64), 1, 2, 1, 1)
    _close(out, want)
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == X[:4].shape and np.abs(layer.bias.grad - 17 * 4).max() < 1e-3


@pytest.mark.parametrize("make", [
    lambda: fnn.Conv2d(3, 4, 3, padding=1), lambda: fnn.Conv2d(3, 6, (3, 2), stride=2),
    lambda: fnn.Conv2d(3, 6, 4, padding="same", dilation=(1, 2)),
    lambda: fnn.Conv2d(3, 3, 3, groups=3, bias=False),
    lambda: fnn.Conv2d(3, 4, 1)])
def test_onnx_export(tmp_path, make):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m = fnn.Sequential(make(), fnn.ReLU(), fnn.MaxPool2d(2), input_shape=(3, 8, 6), seed=0)
    X = np.random.default_rng(0).standard_normal((5, 3, 8, 6)).astype(np.float32)
    m.to_onnx(tmp_path / "m.onnx")
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    np.testing.assert_allclose(got.reshape(5, -1), m.predict(X), rtol=1e-5, atol=1e-5)


def test_onnx_export_conv1d(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m = fnn.Sequential(fnn.Conv1d(2, 4, 4, padding="same"), fnn.Flatten(),
                       input_shape=(2, 9), seed=0)
    X = np.random.default_rng(0).standard_normal((3, 2, 9)).astype(np.float32)
    m.to_onnx(tmp_path / "m.onnx")
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    np.testing.assert_allclose(got, m.predict(X), rtol=1e-5, atol=1e-5)


def test_registry_and_exports():
    from fastnn.nn import registry
    for cls in (fnn.Conv2d, fnn.Conv1d):
        assert registry.layer_class(cls.op) is cls
        assert cls.__name__ in fnn.nn.__all__ and cls.__name__ in fnn.__all__
    assert conv_padding(((1, 2), 3), 2) == [(1, 2), (3, 3)]
