"""The layer registry, the C model behind Sequential, standalone layers,
state dicts, summaries, pickling and the package's import structure."""
import ast
import copy
import importlib
import os
import pickle
import warnings

import numpy as np
import pytest

import fastnn as fnn
from fastnn import _core
from fastnn.nn import registry
from fastnn.reference.init import linear_init

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
f32 = np.float32


def _data(n=64, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(f32), rng.integers(0, classes, n)


def _mlp(act=fnn.ReLU, backend=None, seed=0, dropout=0.0):
    layers = [fnn.Linear(6, 16), act()]
    if dropout:
        layers.append(fnn.Dropout(dropout))
    return fnn.Sequential(*layers, fnn.Linear(16, 3), seed=seed, backend=backend)


# ------------------------------------------------------------- the registry

def test_every_c_op_has_one_python_class():
    assert sorted(registry.LAYERS) == sorted(_core.OP_NAMES)
    for op, cls in registry.LAYERS.items():
        assert cls.op == op
    assert registry.ACTIVATIONS["logistic"] is fnn.Sigmoid
    assert registry.ACTIVATIONS["relu"] is fnn.ReLU


SAMPLES = [fnn.Linear(5, 7), fnn.Linear(5, 2, bias=False), fnn.ReLU(), fnn.LeakyReLU(0.2),
           fnn.Sigmoid(), fnn.Tanh(), fnn.GELU(), fnn.Softmax(), fnn.Dropout(0.3)]


@pytest.mark.parametrize("layer", SAMPLES, ids=repr)
def test_python_layout_agrees_with_the_c_table(layer):
    """Each layer's Python description (output shape, parameter shapes) is what
    the C op table's describe says for the same node."""
    shape = (5,)
    m = _core.Model(shape, [(layer.op, layer.node_attrs())], 0)
    info = m.node_info(0)
    assert info["out_shape"] == tuple(layer.output_shape(shape))
    assert info["num_params"] == sum(int(np.prod(s)) for _, s in layer.param_shapes(shape))
    assert info["num_buffers"] == sum(int(np.prod(s)) for _, s in layer.buffer_shapes(shape))
    rebuilt = type(layer).from_node_attrs(m.node(0)[1], shape)
    assert rebuilt.node_attrs() == layer.node_attrs() and repr(rebuilt) == repr(layer)


@pytest.mark.parametrize("after", [None, fnn.ReLU, fnn.LeakyReLU, fnn.GELU, fnn.Tanh,
                                   fnn.Sigmoid, fnn.Softmax, fnn.Dropout])
@pytest.mark.parametrize("init", ["auto", "he", "xavier"])
def test_c_initialisation_equals_the_reference(after, init):
    """Bit for bit, for every scheme and every next layer (He before the
    ReLU family: the C table's flag and the Python class's agree)."""
    layers = [fnn.Linear(9, 11, init=init)] + ([after()] if after else [])
    c = fnn.Sequential(*layers, seed=123)
    n = fnn.Sequential(*[type(l)(**l.config()) for l in layers], seed=123, backend="numpy")
    np.testing.assert_array_equal(c.flat_params, n.flat_params)
    he = init == "he" or (init == "auto" and getattr(after, "he_before", False))
    ref = np.empty(9 * 11 + 11, f32)
    linear_init(ref, 9, 11, True, he, 123, 0)
    np.testing.assert_array_equal(c.flat_params, ref)
    bound = np.sqrt(6 / 9) if he else np.sqrt(6 / 20)
    w = c.layers[0].weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.15 * bound     # U(-a, a) has std a/sqrt(3)


def test_sequential_is_a_c_model_only_for_builtin_layers():
    assert _mlp()._get_plan() is not None
    assert _mlp(backend="numpy")._get_plan() is None

    class MyTanh(fnn.Tanh):
        pass
    assert not registry.is_builtin(MyTanh())
    assert _mlp(MyTanh)._get_plan() is None
    only = fnn.Sequential(fnn.Tanh(), input_shape=(4,))    # no Linear: shape given
    assert only._get_plan() is not None and only.input_shape == (4,)
    x = np.linspace(-2, 2, 8, dtype=f32).reshape(2, 4)
    np.testing.assert_allclose(only.predict(x), np.tanh(x), rtol=1e-6)


# -------------------------------------------------------- standalone layers

def test_standalone_linear():
    lin = fnn.Linear(4, 3, seed=0)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(f32)
    y = lin(x)
    np.testing.assert_allclose(y, x @ lin.weight.data + lin.bias.data, rtol=1e-5, atol=1e-6)
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    again = fnn.Linear(4, 3, seed=0)
    np.testing.assert_array_equal(again(x), y)             # the seed decides
    sd = lin.state_dict()
    other = fnn.Linear(4, 3, seed=5)
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other(x), y)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lin))(x), y)
    lin.backward(np.ones((5, 3), f32))
    np.testing.assert_allclose(lin.bias.grad, np.full(3, 5.0))
    # the same layer then joins a model: the model's buffers and seed take over
    m = fnn.Sequential(lin, seed=0)
    assert lin.weight.owner is m and lin.weight.flat is m.flat_params


def test_standalone_activation_and_dropout():
    x = np.linspace(-1, 1, 12, dtype=f32).reshape(3, 4)
    np.testing.assert_array_equal(fnn.ReLU()(x), np.maximum(x, 0))
    d = fnn.Dropout(0.5)
    assert d.eval()(x) is x


# ------------------------------------------------------ state and summaries

def test_named_parameters_state_dict_and_summary(capsys):
    m = _mlp()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [p.name for p in m.parameters()] == names
    sd = m.state_dict()
    assert list(sd) == names and m.named_buffers() == []
    other = _mlp(seed=9)
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other.flat_params, m.flat_params)
    with pytest.raises(ValueError, match="do not match"):
        other.load_state_dict({"0.weight": sd["0.weight"]})
    text = m.summary()
    out = capsys.readouterr().out
    assert text in out
    for fragment in ("Linear(6→16)", "(N, 16)", "(N, 3)", "112", "51", "163 parameters"):
        assert fragment in text, fragment
    assert m.summary(print_fn=None) == text


def test_importing_fastnn_layers_warns_but_works():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import fastnn.layers
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importlib.reload(fastnn.layers)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert fastnn.layers.Linear is fnn.Linear


# ---------------------------------------------------------------- pickling

@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_pickle_and_deepcopy_round_trip_and_continue_identically(backend):
    X, y = _data()
    model = _mlp(backend=backend, dropout=0.2)
    opt = fnn.Adam(model.parameters(), lr=1e-2)
    loss = fnn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5], f32))
    model.fit(X, y, loss=loss, optimizer=opt, epochs=2, batch_size=16, verbose=0)
    copies = [pickle.loads(pickle.dumps((model, opt, loss))), copy.deepcopy((model, opt, loss))]
    for m, o, l in copies:
        assert m is not model and o.params[0].owner is m and m.flat_params is not model.flat_params
        np.testing.assert_array_equal(m.predict(X), model.predict(X))
        assert m._counter == model._counter and o.step_count == opt.step_count
        assert m.summary(print_fn=None) == model.summary(print_fn=None)
    for m, o, l in [(model, opt, loss)] + copies:
        m.fit(X, y, loss=l, optimizer=o, epochs=2, batch_size=16, seed=3, verbose=0)
    for m, o, l in copies:
        np.testing.assert_array_equal(m.flat_params, model.flat_params)
        np.testing.assert_array_equal(o.state[0]["exp_avg"], opt.state[0]["exp_avg"])


def test_pickled_optimizer_alone_brings_its_model():
    X, y = _data()
    model = _mlp()
    opt = fnn.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, verbose=0)
    o = pickle.loads(pickle.dumps(opt))
    m = o.params[0].owner
    assert isinstance(m, fnn.Sequential) and o.flat
    np.testing.assert_array_equal(m.flat_params, model.flat_params)


def test_layers_losses_and_schedules_pickle():
    for obj in SAMPLES + [fnn.MSELoss(), fnn.HuberLoss(delta=0.5),
                          fnn.BCEWithLogitsLoss(pos_weight=np.ones(2, f32))]:
        again = pickle.loads(pickle.dumps(obj))
        assert type(again) is type(obj) and repr(again) == repr(obj)


# ---------------------------------------------------- files across C/Python

def test_python_file_loads_in_c_and_c_file_loads_in_python(tmp_path):
    X, y = _data()
    model = _mlp(fnn.GELU, dropout=0.1)
    model.fit(X, y, loss="cross_entropy", epochs=2, verbose=0)
    model.metadata = {"note": "hello"}
    model.save(tmp_path / "py.fnn")
    cm = _core.Model.load(tmp_path / "py.fnn")
    out = np.empty((len(X), 3), f32)
    cm.forward(out, X, np.empty(cm.workspace_size(len(X), False), f32))
    np.testing.assert_array_equal(out, model.predict(X))
    cm.save(tmp_path / "c.fnn")
    assert (tmp_path / "c.fnn").read_bytes() == (tmp_path / "py.fnn").read_bytes()
    back = fnn.load(tmp_path / "c.fnn")
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    assert back.metadata == {"note": "hello"} and back.seed == model.seed
    with pytest.raises(ValueError, match="input shape is unknown"):
        fnn.Sequential(fnn.ReLU()).save(tmp_path / "x.fnn")


# ------------------------------------------------------- package structure

def _module_imports(path, package):
    """Modules of `package` that `path` imports at module level (relative imports)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    mod = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    if mod.endswith(".__init__"):
        mod = mod[:-9]
    base = mod.split(".") if path.endswith("__init__.py") else mod.split(".")[:-1]
    found = set()
    for node in tree.body:          # module level only: lazy imports in functions are fine
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = base[:len(base) - node.level + 1]
            target = ".".join(parts + ([node.module] if node.module else []))
            names = [a.name for a in node.names]
            for n in names:         # "from . import x" imports the submodule x
                if os.path.exists(os.path.join(ROOT, *(target.split(".") + [n])) + ".py") or \
                        os.path.isdir(os.path.join(ROOT, *(target.split(".") + [n]))):
                    found.add(f"{target}.{n}")
            found.add(target)
    return mod, {f for f in found if f.startswith(package) and f != mod}


def test_no_import_cycle_between_modules():
    """Module-level imports inside fastnn/ form a DAG apart from each package
    importing its own submodules (fit lives in training; nn does not get it
    grafted on; io is above nn)."""
    graph = {}
    for dirpath, _, files in os.walk(os.path.join(ROOT, "fastnn")):
        for f in files:
            if f.endswith(".py"):
                mod, deps = _module_imports(os.path.join(dirpath, f), "fastnn")
                graph[mod] = deps
    packages = {m for m in graph if os.path.isdir(os.path.join(ROOT, *m.split(".")))}

    def edges(m):   # a package's own __init__ importing its children is not a cycle
        return {d for d in graph.get(m, ()) if not (d in packages and m.startswith(d + "."))}

    state = {}

    def visit(m, stack):
        state[m] = "open"
        for d in edges(m):
            if state.get(d) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack + [m, d]))
            if d not in state:
                visit(d, stack + [m])
        state[m] = "done"
    for m in graph:
        if m not in state:
            visit(m, [])


# ------------------------------------------- regressions found in review

def test_crafted_file_with_a_huge_layer_is_rejected_before_allocating(tmp_path):
    """A 300-byte file naming Linear(100000 -> 100000) with no payload: the sizes
    are checked before the model (40 GB) would be created."""
    from fastnn import fileformat
    nodes = [{"op": "linear", "in": (0, -1), "out": 1, "attrs": {"units": 100000, "bias": 1}}]
    parts = fileformat.encode_v2((100000,), nodes, np.zeros(0, f32), np.zeros(0, f32), 0, b"")
    (tmp_path / "huge.fnn").write_bytes(b"".join(parts))
    with pytest.raises(fnn.FormatError, match="layout does not match"):
        fnn.load(tmp_path / "huge.fnn")


def test_non_chain_and_foreign_attributes_in_a_file_are_rejected(tmp_path):
    from fastnn import fileformat
    model = _mlp()
    for bad in ({"in": (0, -1)}, {"attrs": {"units": 16, "bias": 1, "slope": 0.5}}):
        nodes = [{"op": l.op, "in": (i, -1), "out": i + 1, "attrs": l.node_attrs()}
                 for i, l in enumerate(model.layers)]
        nodes[1].update(bad) if "in" in bad else nodes[0].update(bad)
        (tmp_path / "x.fnn").write_bytes(b"".join(fileformat.encode_v2(
            model.input_shape, nodes, model.flat_params, model.flat_buffers, 0, b"")))
        with pytest.raises(fnn.FormatError, match="only chains|are not those of"):
            fnn.load(tmp_path / "x.fnn")


def test_bridge_rejects_what_would_crash_it():
    with pytest.raises(TypeError, match="input shape"):
        _core.Model()
    m = _core.Model((2,), [("linear", {"units": 1})], 0)
    m.set_loss("mse")
    m.set_optimizer("sgd", {"lr": 0.1})
    work = np.zeros(m.workspace_size(1), f32)
    with pytest.raises(ValueError, match="target must have shape"):
        m.train_step(np.ones((1, 2), f32), np.array(1.0, f32), work, 0, 0)      # 0-d
    with pytest.raises(ValueError, match="out must have shape"):
        m.forward(np.array(1.0, f32), np.ones((1, 2), f32), work)
    with pytest.raises(ValueError, match="out of range"):
        m.train_step(np.ones((1, 2), f32), np.ones((1, 1), f32), work, 2**63 - 1, 0)
    with pytest.raises(ValueError, match="needs 2 state buffer"):
        m.set_optimizer("adam", {"lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8})
    with pytest.raises(TypeError, match="1 scalar argument"):
        _core.leaky_relu_forward(np.ones(2, f32), np.ones(2, f32))
    with pytest.raises(ValueError, match="softmax: the per-sample input must be 1-D"):
        _core.Model((2, 3), [("softmax", {"axis": -1})], 0)


def _both_paths(build, steps, mutate=None):
    """Train two identical models, fused and layer by layer; return both."""
    out = []
    for fused in (True, False):
        model, loss, opt = build()
        model.fused = fused
        X, y = _data()
        for s in range(steps):
            if mutate and s == steps // 2:
                mutate(model, loss, opt)
            model.train_step(X[:16], y[:16], loss, opt)
        out.append(model)
    return out


def test_a_layer_in_eval_mode_is_respected_by_the_fused_step():
    def build():
        m = _mlp(dropout=0.5)
        m.layers[2].eval()            # this dropout layer off, the model in training
        return m, fnn.CrossEntropyLoss(), fnn.SGD(m.parameters(), lr=0.1)
    a, b = _both_paths(build, 6)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_class_weights_changed_in_place_rebind_the_fused_step():
    def build():
        m = _mlp()
        return m, fnn.CrossEntropyLoss(weight=np.ones(3, f32)), fnn.Adam(m.parameters())
    a, b = _both_paths(build, 6, mutate=lambda m, l, o: l.weight.__setitem__(0, 5.0))
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_momentum_switched_on_later_is_an_error_on_both_paths():
    for fused in (True, False):
        m = _mlp()
        m.fused = fused
        opt = fnn.SGD(m.parameters(), lr=0.1)
        X, y = _data()
        m.train_step(X, y, "cross_entropy", opt)
        opt.param_groups[0]["momentum"] = 0.9
        with pytest.raises(ValueError, match="state buffer"):
            m.train_step(X, y, "cross_entropy", opt)


def test_bad_label_changes_nothing_on_either_path():
    for fused in (True, False):
        m = _mlp(dropout=0.2)
        m.fused = fused
        X, y = _data()
        y[3] = 7
        before, counter = m.flat_params.copy(), m._counter
        with pytest.raises(IndexError):
            m.train_step(X, y, fnn.CrossEntropyLoss(), fnn.SGD(m.parameters(), lr=0.1))
        assert m._counter == counter
        np.testing.assert_array_equal(m.flat_params, before)


def test_a_trained_standalone_layer_keeps_its_weights_in_a_model():
    lin = fnn.Linear(6, 3, seed=4)
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(f32)
    lin.weight.data[...] += 1.0          # "trained" on its own
    expect = lin(x).copy()
    model = fnn.Sequential(lin, seed=99)
    np.testing.assert_array_equal(model.predict(x), expect)


def test_fused_step_outputs_are_the_forward_before_the_update():
    """The outputs a fused step returns (a view of its workspace at
    Model.output_offset) are the model's outputs on the batch before the update."""
    X, y = _data(n=24)
    m = _mlp()
    for n in (24, 7):
        before = m.predict(X[:n])
        loss, out = m._train_step(X[:n], y[:n], fnn.CrossEntropyLoss(), fnn.SGD(m.parameters(), lr=0.5))
        np.testing.assert_array_equal(out, before)
        assert np.shares_memory(out, m._tls.work[(n, True)][0])
