"""ONNX export: onnxruntime gives fastnn's predictions for every exportable layer."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn as fnn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RTOL = ATOL = 1e-5


def _run(path, X):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": np.asarray(X, np.float32)})[0]


def _data(n=37, f=6, seed=0):
    # wide range: exercises the saturated parts of sigmoid/tanh/GELU
    return (3 * np.random.default_rng(seed).standard_normal((n, f))).astype(np.float32)


LAYERS = {
    "ReLU": fnn.ReLU, "LeakyReLU": lambda: fnn.LeakyReLU(0.2), "Sigmoid": fnn.Sigmoid,
    "Tanh": fnn.Tanh, "GELU": fnn.GELU, "Softmax": fnn.Softmax,
    "Dropout": lambda: fnn.Dropout(0.5),
}


@pytest.mark.parametrize("opset", [13, 17, 20])
@pytest.mark.parametrize("name", LAYERS)
def test_each_layer(tmp_path, name, opset):
    model = fnn.Sequential(fnn.Linear(6, 9), LAYERS[name](), fnn.Linear(9, 4), LAYERS[name](),
                           seed=1)
    model.flat_params[...] *= 2      # larger pre-activations than at initialisation
    path = tmp_path / "m.onnx"
    model.to_onnx(path, opset=opset)
    X = _data()
    got = _run(path, X)
    np.testing.assert_allclose(got, model.predict(X), rtol=RTOL, atol=ATOL)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert "Gemm" in ops and "Dropout" not in ops
    if name == "GELU":
        assert ("Gelu" in ops) == (opset >= 20)


def test_linear_without_bias_and_dynamic_batch(tmp_path):
    model = fnn.Sequential(fnn.Linear(6, 5, bias=False), fnn.Tanh(), fnn.Linear(5, 2), seed=0)
    path = tmp_path / "m.onnx"
    proto = fnn.onnx.export(model, path)
    assert [n.op_type for n in proto.graph.node] == ["MatMul", "Tanh", "Gemm"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 6
    for n in (1, 2, 300):                    # one file, any batch size
        X = _data(n)
        np.testing.assert_allclose(_run(path, X), model.predict(X), rtol=RTOL, atol=ATOL)


def test_activation_only_models(tmp_path):
    for layers in ([fnn.Dropout(0.3)], [fnn.Softmax()]):
        model = fnn.Sequential(*layers)
        path = tmp_path / "a.onnx"
        model.to_onnx(path)
        X = _data(5, 3)
        np.testing.assert_allclose(_run(path, X), model.predict(X), rtol=RTOL, atol=ATOL)


def test_trained_digits_model(tmp_path):
    X, y = fnn.datasets.load_digits()
    X_tr, X_te, y_tr, y_te = fnn.train_test_split(X, y, test_size=0.25, seed=0, stratify=True)
    model = fnn.Sequential(fnn.Linear(64, 64), fnn.GELU(), fnn.Dropout(0.1), fnn.Linear(64, 32),
                           fnn.LeakyReLU(), fnn.Linear(32, 10), seed=0)
    model.fit(X_tr, y_tr, loss=fnn.CrossEntropyLoss(), epochs=8, verbose=0)
    path = tmp_path / "digits.onnx"
    model.to_onnx(path)
    logits = _run(path, X_te)
    np.testing.assert_allclose(logits, model.predict(X_te), rtol=RTOL, atol=ATOL)
    acc = (logits.argmax(1) == y_te).mean()
    assert acc == model.evaluate(X_te, y_te)["accuracy"] and acc > 0.9


def test_unsupported_layer_named():
    class Scale(fnn.ReLU):             # a user subclass: its forward is unknown to ONNX
        pass

    model = fnn.Sequential(fnn.Linear(3, 3), Scale(), seed=0)
    with pytest.raises(TypeError, match=r"cannot export layer 1 .*\(Scale\)"):
        model.to_onnx(None)


def test_bad_opset_and_not_a_model():
    model = fnn.Sequential(fnn.Linear(3, 3), seed=0)
    with pytest.raises(ValueError, match="opset must be an integer from 13"):
        model.to_onnx(None, opset=7)
    with pytest.raises(TypeError, match="Sequential"):
        fnn.onnx.export(fnn.Linear(3, 3), None)


def test_import_fastnn_does_not_import_onnx_or_matplotlib():
    code = ("import sys, fastnn; bad = [m for m in ('onnx', 'onnxruntime', 'matplotlib') "
            "if m in sys.modules]; assert not bad, bad")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_missing_onnx_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)     # makes `import onnx` fail
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[onnx\]'"):
        fnn.Sequential(fnn.Linear(3, 3), seed=0).to_onnx(None)
