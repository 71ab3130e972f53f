"""plot_history: a readable PNG from a History (matplotlib is optional)."""
import sys

import numpy as np
import pytest

import fastnn as fnn

PNG = b"\x89PNG\r\n\x1a\n"


def _history():
    X, y = fnn.datasets.load_digits()
    model = fnn.Sequential(fnn.Linear(64, 32), fnn.ReLU(), fnn.Linear(32, 10), seed=0)
    opt = fnn.Adam(model.parameters(), lr=0.01)
    return model.fit(X, y, loss=fnn.CrossEntropyLoss(), optimizer=opt, epochs=4, verbose=0,
                     validation_split=0.2, callbacks=[fnn.StepLR(opt, 2, 0.5)])


def test_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "h.png"
    fig = fnn.plot_history(_history(), path, title="digits")
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 20_000
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Loss", "Accuracy", "Learning rate"]     # lr changed: its own panel
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["train", "validation"]
    width, height = np.frombuffer(data[16:24], ">u4")          # IHDR: readable size
    assert width >= 1200 and height >= 450


def test_dict_without_validation(tmp_path):
    pytest.importorskip("matplotlib")
    fig = fnn.plot_history({"loss": [3.0, 2.0, 1.5]}, tmp_path / "h.svg")
    assert [ax.get_title() for ax in fig.axes] == ["Loss"]
    assert (tmp_path / "h.svg").read_bytes().lstrip().startswith(b"<?xml")
    with pytest.raises(ValueError, match="non-empty 'loss'"):
        fnn.plot_history({"loss": []})


def test_does_not_change_pyplot_backend(tmp_path):
    mpl = pytest.importorskip("matplotlib")
    before = mpl.get_backend()
    fnn.plot_history({"loss": [1.0, 0.5]}, tmp_path / "h.png")
    assert mpl.get_backend() == before


def test_missing_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[plot\]'"):
        fnn.plot_history({"loss": [1.0]})
