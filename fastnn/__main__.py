"""Command line: ``python -m fastnn`` / ``fastnn``.

    fastnn [demo] [--epochs 30] [--compare]      # the bundled digits (the default)
    fastnn train data.csv --target label --hidden 128,64 --epochs 20 [--plot loss.png]
    fastnn predict model.fnn new.csv [--out preds.csv] [--proba]
    fastnn bench [--quick]

``demo`` trains an MLP on the bundled digits and prints the test accuracy,
the training time and samples/s; ``--compare`` runs the identical job on the
NumPy reference too and prints the speed ratio.

``train`` fits an MLP on your data (CSV with a header row, .npz or .npy; see
:func:`read_training_data`), classification or regression chosen from the
target (:func:`infer_task`), features standardised with the training part's
mean and std. The model file keeps the scaling, the feature names and the
class labels in its ``metadata``, so ``predict`` takes raw data and writes
labels as they were in the training file.

A user error (missing file or column, non-numeric feature, empty data)
prints one line ``fastnn: error: ...`` to stderr and exits with status 2.
"""
import argparse
import csv
import importlib.util
import io
import math
import os
import pathlib
import sys
import time

import numpy as np

import fastnn as fnn


def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 128,64, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="Fast CPU training of dense neural networks. "
        "With no command, runs the digits demo.")
    parser.add_argument("--version", action="version", version=f"fastnn {fnn.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train an MLP on the bundled digits (the default)")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--hidden", type=_hidden, default=[128, 64],
                      help="hidden layer sizes, comma-separated (default 128,64)")
    demo.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, default=None,
                      help="kernel threads (default: all cores; negative: cores+1+n)")
    demo.add_argument("--backend", choices=fnn._backend.BACKENDS, default="c")
    demo.add_argument("--compare", action="store_true",
                      help="also run the same job on the NumPy reference; print the ratio")
    demo.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    demo.set_defaults(func=run_demo)

    train = sub.add_parser(
        "train", help="train an MLP on a CSV/.npz/.npy file and save it",
        description="Train an MLP on your data: classification or regression is chosen "
        "from the target (integer-valued with few distinct values, or text: "
        "classification), features are standardised, the model is saved with its "
        "preprocessing.")
    train.add_argument("data", help="CSV with a header row, .npz (arrays X and y) or .npy "
                       "(2-D, the target one of its columns)")
    train.add_argument("--target", help="target column name (CSV; required), array name "
                       "(.npz; default y) or column index (.npy; default -1, the last)")
    train.add_argument("--task", choices=("classification", "regression"),
                       help="override the task inferred from the target")
    train.add_argument("--hidden", type=_hidden, default=[128, 64],
                       help="hidden layer sizes, comma-separated (default 128,64)")
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    train.add_argument("--val-split", type=float, default=0.2,
                       help="fraction held out for validation metrics (0: none; default 0.2)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=None,
                       help="kernel threads (default: all cores; negative: cores+1+n)")
    train.add_argument("--out", default="model.fnn", help="model file (default model.fnn)")
    train.add_argument("--plot", metavar="PNG", help="save the loss/accuracy curves here "
                       "(needs matplotlib)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch output")
    train.set_defaults(func=run_train)

    predict = sub.add_parser("predict", help="predict with a model saved by train",
                             description="Write one prediction per row of DATA as CSV: "
                             "class labels (as in the training data) or regression values.")
    predict.add_argument("model", help="a .fnn file written by fastnn train (or fastnn.save)")
    predict.add_argument("data", help="CSV/.npz/.npy with the training features (a target "
                         "column, if present, is ignored)")
    predict.add_argument("--out", help="output CSV (default: standard output)")
    predict.add_argument("--proba", action="store_true",
                         help="also write class probabilities (classification)")
    predict.set_defaults(func=run_predict)

    bench = sub.add_parser("bench", help="print the C vs NumPy (vs PyTorch) comparison table",
                           description="Runs bench/compare.py from a source checkout; "
                           "otherwise (an installed package) a small built-in comparison.")
    bench.add_argument("--quick", action="store_true", help="fewer repeats")
    bench.add_argument("--threads", type=int, nargs="*", help="thread counts to measure")
    bench.add_argument("--builtin", action="store_true",
                       help="run the small built-in comparison even in a source checkout")
    bench.set_defaults(func=run_bench)
    return parser


def train_digits(args, backend, verbose):
    """Train on the digits; return (test accuracy, seconds, samples/s)."""
    X, y = fnn.datasets.load_digits()
    X_tr, X_te, y_tr, y_te = fnn.train_test_split(X, y, test_size=0.25, seed=args.seed,
                                                  stratify=True)
    sizes = [X.shape[1]] + args.hidden + [10]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [fnn.Linear(n_in, n_out), fnn.ReLU()]
    model = fnn.Sequential(*layers[:-1], seed=args.seed, backend=backend)
    optimizer = fnn.Adam(model.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr, loss=fnn.CrossEntropyLoss(), optimizer=optimizer,
              epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
              verbose=verbose)
    seconds = time.perf_counter() - t0
    accuracy = model.evaluate(X_te, y_te)["accuracy"]
    return accuracy, seconds, args.epochs * len(X_tr) / seconds, len(X_tr), len(X_te), sizes


def run_demo(args):
    if args.threads is not None:
        fnn.set_num_threads(args.threads)
    backends = [args.backend] + (["numpy" if args.backend == "c" else "c"] if args.compare else [])
    results = {}
    for i, backend in enumerate(backends):
        threads = fnn.get_num_threads() if backend == "c" else "numpy's BLAS"
        if i == 0 or not args.quiet:
            print(f"fastnn {fnn.__version__}: digits MLP, backend {backend} ({threads} threads)")
        acc, seconds, rate, n_tr, n_te, sizes = train_digits(args, backend, 0 if args.quiet else 1)
        results[backend] = (acc, seconds, rate)
        print(f"network {'-'.join(map(str, sizes))} ReLU, Adam lr={args.lr:g}, "
              f"{args.epochs} epochs, batch {args.batch_size}, {n_tr} train / {n_te} test samples")
        print(f"test accuracy: {acc:.4f}")
        print(f"training time: {seconds:.3f} s ({rate:,.0f} samples/s) [{backend}]")
    if args.compare:
        print("\n| backend | test accuracy | training time (s) | samples/s |")
        print("|---|---|---|---|")
        for b, (acc, seconds, rate) in results.items():
            print(f"| {b} | {acc:.4f} | {seconds:.3f} | {rate:,.0f} |")
        c_time, np_time = results["c"][1], results["numpy"][1]
        print(f"speed ratio (numpy time / c time): {np_time / c_time:.2f}x")
    return 0


# ------------------------------------------------------------------ your data
COMMANDS = ("demo", "train", "predict", "bench")
ACTIVATIONS = {"relu": fnn.ReLU, "leaky_relu": fnn.LeakyReLU, "tanh": fnn.Tanh,
               "sigmoid": fnn.Sigmoid, "gelu": fnn.GELU}
MAX_CLASSES = 20          # infer_task: at most this many distinct integer values
METADATA_FORMAT = "fastnn-cli/1"


class CLIError(Exception):
    """A user error: ``main`` prints ``fastnn <command>: error: <message>`` and returns 2."""


def _check_file(path):
    if not os.path.exists(path):
        raise CLIError(f"file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a directory, not a data file")


def _to_float(values):
    """A float64 array of the strings `values`, or None if one is not a number."""
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return None


def read_csv(path):
    """(header, columns): the CSV's header row and each column as a list of strings.

    Blank lines are skipped; every other row must have as many fields as the header.
    """
    _check_file(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [(n, row) for n, row in enumerate(csv.reader(f), 1) if any(c.strip() for c in row)]
    if not rows:
        raise CLIError(f"{path} is empty")
    header = [h.strip() for h in rows[0][1]]
    if len(rows) == 1:
        raise CLIError(f"{path} has a header row but no data rows")
    for n, row in rows[1:]:
        if len(row) != len(header):
            raise CLIError(f"{path}, line {n}: {len(row)} fields, but the header has "
                           f"{len(header)}")
    lines = [n for n, _ in rows[1:]]
    columns = [[row[j].strip() for _, row in rows[1:]] for j in range(len(header))]
    return header, columns, lines


def _csv_features(path, header, columns, lines, names):
    """The (N, F) float64 matrix of the columns `names`; CLIError naming a bad value."""
    out = []
    for name in names:
        col = columns[header.index(name)]
        values = _to_float(col)
        if values is None or not np.isfinite(values).all():
            bad = next(i for i, v in enumerate(col)
                       if _to_float([v]) is None or not math.isfinite(float(v)))
            what = "a missing value" if col[bad] == "" else f"the value {col[bad]!r}"
            raise CLIError(f"non-numeric feature column {name!r} in {path}: {what} at line "
                           f"{lines[bad]} (features must be numbers; encode or drop it)")
        out.append(values)
    return np.stack(out, axis=1)


def _load_array(path):
    _check_file(path)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CLIError(f"cannot read {path}: {e}") from None


def _check_matrix(X, path):
    if X.ndim != 2:
        raise CLIError(f"{path}: features must be a 2-D array, got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise CLIError(f"{path} has no data (features of shape {X.shape})")
    if X.dtype.kind not in "biuf":
        raise CLIError(f"{path}: non-numeric features (dtype {X.dtype})")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise CLIError(f"{path}: the features contain NaN or infinite values")
    return X


def _npy_target(target):
    try:
        return -1 if target is None else int(target)
    except ValueError:
        raise CLIError(f"--target must be a column index for .npy input, got {target!r}") \
            from None


def read_training_data(path, target):
    """(X (N, F) float64, y (N,), feature names, target) from a data file.

    * ``.csv``: a header row; ``target`` names the label column (required),
      every other column is a numeric feature; the target may hold text.
    * ``.npz``: arrays ``X`` (N, F) and ``target`` (default ``y``).
    * ``.npy``: one 2-D numeric array; ``target`` is a column index
      (default -1, the last column).
    """
    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".npz":
        with _load_array(path) as data:
            key = target or "y"
            if "X" not in data.files or key not in data.files:
                raise CLIError(f"{path} must hold arrays 'X' and {key!r} (--target), "
                               f"found {', '.join(data.files) or 'none'}")
            X, y = _check_matrix(data["X"], path), np.asarray(data[key])
        if y.ndim != 1 or len(y) != len(X):
            raise CLIError(f"{path}: {key!r} must be 1-D with one value per row of X, "
                           f"got shape {y.shape} for X {X.shape}")
        return X, y, [f"x{j}" for j in range(X.shape[1])], key
    if suffix == ".npy":
        A = _check_matrix(_load_array(path), path)
        col = _npy_target(target)
        if not -A.shape[1] <= col < A.shape[1] or A.shape[1] < 2:
            raise CLIError(f"{path}: target column {col} out of range for "
                           f"{A.shape[1]} columns (features + target)")
        col %= A.shape[1]
        X = np.delete(A, col, axis=1)
        return X, A[:, col], [f"x{j}" for j in range(X.shape[1])], col
    if target is None:
        raise CLIError("--target is required for CSV input: the name of the column to predict")
    header, columns, lines = read_csv(path)
    if target not in header:
        raise CLIError(f"target column {target!r} not found in {path}; columns: "
                       f"{', '.join(header)}")
    names = [h for h in header if h != target]
    if not names:
        raise CLIError(f"{path} has no feature columns besides the target {target!r}")
    X = _csv_features(path, header, columns, lines, names)
    raw = columns[header.index(target)]
    if "" in raw:
        raise CLIError(f"missing target value in {path} at line {lines[raw.index('')]}")
    y = _to_float(raw)
    return X, (y if y is not None and np.isfinite(y).all() else np.array(raw)), names, target


def infer_task(y):
    """"classification" for a text target or an integer-valued one with at most
    20 distinct values (and at most half as many as rows), else "regression"."""
    if y.dtype.kind not in "biuf":
        return "classification"
    values = np.unique(y)
    few = len(values) <= max(2, min(MAX_CLASSES, len(y) // 2))
    return "classification" if few and np.all(values == np.round(values)) else "regression"


def _json_label(v):
    """A class label as a JSON value: int for integer-valued numbers, else float or str."""
    if isinstance(v, (np.floating, float)):
        return int(v) if float(v).is_integer() else float(v)
    return v.item() if isinstance(v, np.generic) else v


class Progress(fnn.Callback):
    """Per-epoch output of ``fastnn train``: a redrawn progress bar per epoch on
    a terminal (Keras style), one plain line per epoch when piped."""

    def __init__(self, epochs, steps, stream=None, width=30):
        self.epochs, self.steps, self.width = epochs, steps, width
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = self._drawn = time.perf_counter()
        self.epoch = epoch

    def _bar(self, done, text):
        fill = self.width * done // self.steps
        bar = "=" * fill + (">" if fill < self.width else "") + "." * (self.width - fill - 1)
        line = f"Epoch {self.epoch + 1}/{self.epochs} [{bar}] {done}/{self.steps} {text}"
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.tty and now - self._drawn > 0.1:      # redraw at most 10 times a second
            self._drawn = now
            self._bar(batch + 1, f"- loss: {logs['loss']:.4f}")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.t0
        metrics = " - ".join(f"{k}: {v:.4g}" if k == "lr" else f"{k}: {v:.4f}"
                             for k, v in logs.items())
        if self.tty:
            self._bar(self.steps, f"- {seconds:.2f}s - {metrics}")
            self.stream.write("\n")
        else:
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs} - {seconds:.2f}s - {metrics}\n")
        self.stream.flush()


def _regression_metrics(pred, y):
    err = pred - y
    ss = float(((y - y.mean()) ** 2).sum())
    return {"rmse": float(np.sqrt((err ** 2).mean())), "mae": float(np.abs(err).mean()),
            "r2": 1.0 - float((err ** 2).sum()) / ss if ss > 0 else float("nan")}


def run_train(args):
    """``fastnn train``: read, split, standardise, fit, report, save (and plot)."""
    if args.epochs < 1 or args.batch_size < 1:
        raise CLIError("--epochs and --batch-size must be >= 1")
    if not 0.0 <= args.val_split < 1.0:
        raise CLIError(f"--val-split must be in [0, 1), got {args.val_split}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise CLIError(f"--lr must be a positive number, got {args.lr}")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise CLIError("--plot needs matplotlib: pip install 'fastnn[plot]'")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise CLIError(f"cannot save the model to {args.out}: no directory {out_dir}")
    if args.threads is not None:
        try:
            fnn.set_num_threads(args.threads)
        except ValueError as e:
            raise CLIError(str(e)) from None
    X, y_raw, names, target = read_training_data(args.data, args.target)
    task = args.task or infer_task(y_raw)
    meta = {"format": METADATA_FORMAT, "task": task, "features": names, "target": target,
            "source": os.path.basename(args.data)}
    if task == "classification":
        classes, y = np.unique(y_raw, return_inverse=True)
        if len(classes) < 2:
            raise CLIError(f"the target {target!r} has a single value ({classes[0]!r}); "
                           "classification needs at least 2 classes")
        meta["classes"] = [_json_label(c) for c in classes]
        n_out, loss = len(classes), fnn.CrossEntropyLoss()
    else:
        if y_raw.dtype.kind not in "biuf":
            raise CLIError(f"the target {target!r} is not numeric: regression needs numbers "
                           "(use --task classification)")
        y = y_raw.astype(np.float64)
        n_out, loss = 1, fnn.MSELoss()
    if args.val_split > 0:
        stratify = task == "classification" and np.bincount(y).min() >= 2
        try:
            X_tr, X_val, y_tr, y_val = fnn.train_test_split(
                X, y, test_size=args.val_split, seed=args.seed, stratify=stratify)
        except ValueError as e:
            raise CLIError(f"--val-split {args.val_split}: {e}") from None
    else:
        X_tr, y_tr, X_val, y_val = X, y, None, None
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std == 0] = 1.0                                 # constant features stay 0
    meta.update(mean=mean.tolist(), std=std.tolist())
    if task == "regression":                            # targets standardised too
        y_mean, y_std = float(y_tr.mean()), float(y_tr.std()) or 1.0
        meta.update(target_mean=y_mean, target_std=y_std)
        scale_y = lambda v: ((v - y_mean) / y_std).astype(np.float32)   # noqa: E731
        y_tr_fit, y_val_fit = scale_y(y_tr), None if y_val is None else scale_y(y_val)
    else:
        y_tr_fit, y_val_fit = y_tr, y_val
    scale = lambda A: ((A - mean) / std).astype(np.float32)             # noqa: E731

    sizes = [X.shape[1]] + args.hidden + [n_out]
    layers = []
    for n_in, n_o in zip(sizes[:-1], sizes[1:]):
        layers += [fnn.Linear(n_in, n_o), ACTIVATIONS[args.activation]()]
    model = fnn.Sequential(*layers[:-1], seed=args.seed)
    model.metadata = meta
    optimizer = fnn.Adam(model.parameters(), lr=args.lr)
    what = (f"{len(meta['classes'])} classes" if task == "classification"
            else "standardised for training")
    print(f"fastnn {fnn.__version__}: {task} of {target!r} ({what}) on {args.data}: "
          f"{len(X)} rows, {X.shape[1]} features; {len(X_tr)} train / "
          f"{0 if X_val is None else len(X_val)} validation")
    print(f"network {'-'.join(map(str, sizes))} {args.activation}, Adam lr={args.lr:g}, "
          f"{args.epochs} epochs, batch {args.batch_size}, {fnn.get_num_threads()} threads",
          flush=True)
    steps = -(-len(X_tr) // args.batch_size)
    t0 = time.perf_counter()
    history = model.fit(scale(X_tr), y_tr_fit, loss=loss, optimizer=optimizer,
                        epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        validation_data=None if X_val is None else (scale(X_val), y_val_fit),
                        callbacks=[] if args.quiet else [Progress(args.epochs, steps)],
                        verbose=0)
    seconds = time.perf_counter() - t0
    part, X_ev, y_ev = ("validation", X_val, y_val) if X_val is not None else \
        ("training", X_tr, y_tr)
    out = model.predict(scale(X_ev))
    if task == "classification":
        acc = float((out.argmax(axis=1) == y_ev).mean())
        logs = model.evaluate(scale(X_ev), y_ev)
        print(f"{part} accuracy: {acc:.4f}  {part} loss: {logs['loss']:.4f}")
    else:
        m = _regression_metrics(out[:, 0].astype(np.float64) * y_std + y_mean, y_ev)
        print(f"{part} RMSE: {m['rmse']:.6g}  MAE: {m['mae']:.6g}  R^2: {m['r2']:.4f}")
    print(f"training time: {seconds:.3f} s ({args.epochs * len(X_tr) / seconds:,.0f} samples/s)")
    try:
        model.save(args.out)
    except OSError as e:
        raise CLIError(f"cannot save the model to {args.out}: {e}") from None
    print(f"saved {args.out}")
    if args.plot:
        fnn.plot_history(history, args.plot, title=f"fastnn: {target} from "
                         f"{os.path.basename(args.data)} ({'-'.join(map(str, sizes))})")
        print(f"saved {args.plot}")
    return 0


def read_features(path, meta, n_features):
    """(N, F) float64 features for prediction, matching a trained model.

    CSV columns are picked by the training feature names (any order; others,
    e.g. the target, are ignored); .npz uses ``X``; a .npy array must have F
    columns, or F + 1 with the training target column, which is dropped.
    """
    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".npz":
        with _load_array(path) as data:
            if "X" not in data.files:
                raise CLIError(f"{path} must hold an array 'X'")
            X = _check_matrix(data["X"], path)
    elif suffix == ".npy":
        X = _check_matrix(_load_array(path), path)
        if meta is not None and isinstance(meta.get("target"), int) and \
                X.shape[1] == n_features + 1:
            X = np.delete(X, meta["target"], axis=1)
    else:
        header, columns, lines = read_csv(path)
        names = meta["features"] if meta is not None else \
            [h for h in header if _to_float(columns[header.index(h)]) is not None]
        missing = [n for n in names if n not in header]
        if missing:
            raise CLIError(f"{path} lacks the feature column(s) {', '.join(missing)} "
                           "the model was trained on")
        X = _csv_features(path, header, columns, lines, names)
    if n_features is not None and X.shape[1] != n_features:
        raise CLIError(f"{path} has {X.shape[1]} feature columns; the model expects "
                       f"{n_features}")
    return X


def _fmt(v):
    return f"{v:.7g}" if isinstance(v, (float, np.floating)) else str(v)


def run_predict(args):
    """``fastnn predict``: load the model, apply its preprocessing, write a CSV."""
    _check_file(args.model)
    try:
        model = fnn.load(args.model)
    except fnn.FormatError as e:
        raise CLIError(str(e)) from None
    meta = getattr(model, "metadata", None)
    if not (isinstance(meta, dict) and meta.get("format") == METADATA_FORMAT):
        meta = None            # a model saved from Python: raw features, raw outputs
    X = read_features(args.data, meta, model.in_features)
    if meta is not None:
        X = (X - np.asarray(meta["mean"])) / np.asarray(meta["std"])
    X = X.astype(np.float32)
    if meta is not None and meta["task"] == "classification":
        proba = model.predict_proba(X)
        classes = meta["classes"]
        header = [str(meta["target"])] + ([f"proba_{c}" for c in classes] if args.proba else [])
        rows = [[classes[k]] + (list(p) if args.proba else [])
                for k, p in zip(proba.argmax(axis=1), proba)]
    elif args.proba and (meta is not None or model.out_features_ is None):
        raise CLIError("--proba needs a classification model")
    elif meta is not None:
        pred = model.predict(X)[:, 0].astype(np.float64) * meta["target_std"] + \
            meta["target_mean"]
        header, rows = [str(meta["target"])], [[v] for v in pred]
    else:
        out = model.predict_proba(X) if args.proba else model.predict(X)
        header = [f"{'proba' if args.proba else 'output'}_{j}" for j in range(out.shape[1])]
        rows = out.tolist()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_fmt(v) for v in row] for row in rows)
    if args.out:
        try:
            with open(args.out, "w", newline="") as f:
                f.write(buf.getvalue())
        except OSError as e:
            raise CLIError(f"cannot write {args.out}: {e}") from None
        print(f"wrote {len(rows)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(buf.getvalue())
    return 0


# ------------------------------------------------------------------- bench
def _compare_script():
    """bench/compare.py of a source checkout holding this fastnn, or None."""
    path = pathlib.Path(fnn.__file__).resolve().parent.parent / "bench" / "compare.py"
    return path if path.is_file() else None


def _time_per_call(fn, reps):
    fn()                                                 # warm up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def builtin_bench(quick=False, stream=None):
    """A small in-process comparison of the C and NumPy backends: one training
    step (784-256-128-10, batch 128, Adam) and one digits epoch (64-128-64-10,
    batch 64). Prints a markdown table."""
    stream = stream or sys.stdout
    reps = 3 if quick else 7
    X_d, y_d = fnn.datasets.load_digits()
    rng = np.random.default_rng(0)
    X_s = rng.standard_normal((128, 784)).astype(np.float32)
    y_s = rng.integers(0, 10, 128)
    works = {"step 784-256-128-10 b128": ((784, 256, 128, 10), X_s, y_s, None),
             "epoch digits 64-128-64-10 b64": ((64, 128, 64, 10), X_d, y_d, 64)}
    stream.write(f"fastnn {fnn.__version__} built-in comparison ({fnn.get_num_threads()} "
                 f"threads, median of {reps}; bench/compare.py in a source checkout "
                 "measures more)\n\n| work | fastnn (C) | NumPy ref | C vs NumPy |\n"
                 "|---|---|---|---|\n")
    for name, (sizes, X, y, batch) in works.items():
        sec = {}
        for backend in ("c", "numpy"):
            layers = []
            for n_in, n_out in zip(sizes[:-1], sizes[1:]):
                layers += [fnn.Linear(n_in, n_out), fnn.ReLU()]
            model = fnn.Sequential(*layers[:-1], seed=0, backend=backend)
            opt, loss = fnn.Adam(model.parameters()), fnn.CrossEntropyLoss()
            if batch is None:
                job = lambda: model.train_step(X, y, loss, opt)                  # noqa: E731
            else:
                job = lambda: model.fit(X, y, loss=loss, optimizer=opt, epochs=1,  # noqa: E731
                                        batch_size=batch, verbose=0)
            sec[backend] = _time_per_call(job, reps)
        stream.write(f"| {name} | {sec['c'] * 1e3:.2f} ms | {sec['numpy'] * 1e3:.2f} ms | "
                     f"{sec['numpy'] / sec['c']:.1f}× |\n")
    stream.write("\n'C vs NumPy' = NumPy's time / fastnn's C time (> 1: C is faster).\n")
    return 0


def run_bench(args):
    """``fastnn bench``: bench/compare.py when available, else :func:`builtin_bench`."""
    if args.threads is not None and any(t == 0 for t in args.threads):
        raise CLIError("--threads counts must be non-zero")
    script = None if args.builtin else _compare_script()
    if script is not None:
        try:
            spec = importlib.util.spec_from_file_location("fastnn_bench_compare", script)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as e:      # e.g. a syntax this Python does not read
            print(f"fastnn bench: cannot run {script} ({type(e).__name__}: {e}); running "
                  "the built-in comparison", file=sys.stderr)
        else:
            argv = (["--quick"] if args.quick else []) + \
                (["--threads", *map(str, args.threads)] if args.threads else [])
            return module.main(argv)
    if args.threads:
        fnn.set_num_threads(args.threads[0])
    return builtin_bench(args.quick)


def main(argv=None):
    """Run the command line with `argv` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS + ("-h", "--help", "--version"):
        argv = ["demo"] + argv     # the default action
    args = parser.parse_args(argv)
    if args.command == "demo" and (args.epochs < 0 or args.batch_size < 1):
        parser.error("--epochs must be >= 0 and --batch-size >= 1")
    try:
        return args.func(args)
    except CLIError as e:
        print(f"fastnn {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
