"""The ``fastnn`` command line (``python -m fastnn``, the ``fastnn`` script):
argument parsing, the ``demo``, ``train`` and ``predict`` commands, and the
dispatch to them and to ``bench``.

    fastnn [demo] [--epochs 30] [--compare]      # the bundled digits (the default)
    fastnn demo --model cnn                      # a small CNN on them, as 1x8x8 images
    fastnn train data.csv --target label --hidden 128,64 --epochs 20 [--plot loss.png]
    fastnn train images.npz --conv 32,32 --hidden 128 --dropout 0.3   # a CNN
    fastnn predict model.fnn new.csv [--out preds.csv] [--proba]
    fastnn bench [--quick]

``demo`` trains an MLP (or, with ``--model cnn``, a small CNN on the digits
as 1x8x8 images) on the bundled digits and prints the test accuracy, the
training time and samples/s; ``--compare`` runs the identical job on the
NumPy reference too and prints the speed ratio.

``train`` fits an MLP on your data (CSV with a header row, .npz or .npy; see
:func:`fastnn.cli.csvio.read_training_data`), classification or regression
chosen from the target (:func:`infer_task`), features standardised with the
training part's mean and std. The model file keeps the scaling, the feature
names and the class labels in its ``metadata``, so ``predict`` takes raw data
and writes labels as they were in the training file. With ``--conv`` it fits
a CNN (:func:`fastnn.cli.network.build_cnn`) on images: an .npz whose ``X`` is
(N, H, W) or (N, C, H, W), or rows of C*H*W pixels with ``--image-shape``.

A user error (missing file or column, non-numeric feature, empty data)
prints one line ``fastnn <command>: error: ...`` to stderr and exits with status 2.
"""
import argparse
import importlib.util
import math
import os
import sys
import time

import numpy as np

import fastnn as fnn

from . import bench
from .csvio import (CLIError, check_file, csv_text, feature_scaling, read_features,
                    read_training_data, standardise, target_scaling, unstandardise)
from .network import ACTIVATIONS, build_cnn, build_mlp, describe
from .progress import Progress

COMMANDS = ("demo", "train", "predict", "bench")
MAX_CLASSES = 20          # infer_task: at most this many distinct integer values
METADATA_FORMAT = "fastnn-cli/1"
THREADS_HELP = "kernel threads (default: all cores; negative: cores+1+n)"


# ------------------------------------------------------------------ parsing
def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 128,64, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def _image_shape(text):
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"expected an image shape like 1,28,28 or 28,28, "
                                         f"got {text!r}")
    return shape if len(shape) == 3 else (1,) + shape


# demo --model: (conv channels, default hidden sizes, dropout)
DEMO_MODELS = {"mlp": ([], [128, 64], 0.0), "cnn": ([32, 32], [128], 0.3)}


def _add_demo(sub):
    demo = sub.add_parser("demo", help="train an MLP (or a CNN) on the bundled digits "
                          "(the default)")
    demo.add_argument("--model", choices=sorted(DEMO_MODELS), default="mlp",
                      help="mlp: 64-128-64-10 (default); cnn: two 3x3 convolutions of 32 "
                      "channels, a max pool and a 128-unit layer on the digits as 1x8x8 images")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--hidden", type=_hidden, default=None,
                      help="hidden layer sizes, comma-separated (default 128,64; cnn 128)")
    demo.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    demo.add_argument("--backend", choices=fnn._backend.BACKENDS, default="c")
    demo.add_argument("--compare", action="store_true",
                      help="also run the same job on the NumPy reference; print the ratio")
    demo.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    demo.set_defaults(func=run_demo)


def _add_train(sub):
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
    train.add_argument("--conv", type=_hidden, default=[],
                       help="a CNN: output channels of 3x3 convolutions, comma-separated "
                       "(e.g. 32,32), each with the activation, a 2x2 max pool after every "
                       "second one and the last; the input must be images")
    train.add_argument("--image-shape", type=_image_shape, default=None,
                       help="C,H,W (or H,W) of each row's pixels, for --conv on flat rows "
                       "(an .npz X of shape (N, H, W) or (N, C, H, W) gives it itself)")
    train.add_argument("--dropout", type=float, default=0.0,
                       help="dropout rate before each dense layer but an MLP's first (default 0)")
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    train.add_argument("--val-split", type=float, default=0.2,
                       help="fraction held out for validation metrics (0: none; default 0.2)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    train.add_argument("--out", default="model.fnn", help="model file (default model.fnn)")
    train.add_argument("--plot", metavar="PNG", help="save the loss/accuracy curves here "
                       "(needs matplotlib)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch output")
    train.set_defaults(func=run_train)


def _add_predict(sub):
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


def _add_bench(sub):
    parser = sub.add_parser("bench", help="print a C vs NumPy comparison table",
                            description=bench.DESCRIPTION)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, nargs="*",
                        help="thread counts to measure (the first one is used)")
    parser.add_argument("--builtin", action="store_true",
                        help="no effect: the built-in comparison is the only one "
                        "(kept so that existing command lines still work)")
    parser.set_defaults(func=bench.run_bench)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="Fast CPU training of dense neural networks. "
        "With no command, runs the digits demo.")
    parser.add_argument("--version", action="version", version=f"fastnn {fnn.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_train, _add_predict, _add_bench):
        add(sub)
    return parser


# --------------------------------------------------------------------- demo
def train_digits(args, backend, verbose):
    """Train on the digits; return (test accuracy, seconds, samples/s, train
    rows, test rows, layer sizes)."""
    X, y = fnn.datasets.load_digits()
    X_tr, X_te, y_tr, y_te = fnn.train_test_split(X, y, test_size=0.25, seed=args.seed,
                                                  stratify=True)
    conv, default_hidden, dropout = DEMO_MODELS[args.model]
    hidden = default_hidden if args.hidden is None else args.hidden
    if conv:
        model = build_cnn((1, 8, 8), conv, hidden, 10, dropout=dropout, seed=args.seed,
                          backend=backend)
    else:
        model = build_mlp([X.shape[1]] + hidden + [10], "relu", seed=args.seed,
                          backend=backend)
    optimizer = fnn.Adam(model.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr, loss=fnn.CrossEntropyLoss(), optimizer=optimizer,
              epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
              verbose=verbose)
    seconds = time.perf_counter() - t0
    accuracy = model.evaluate(X_te, y_te)["accuracy"]
    return (accuracy, seconds, args.epochs * len(X_tr) / max(seconds, 1e-9), len(X_tr),
            len(X_te), model)


def _print_backend_table(results):
    print("\n| backend | test accuracy | training time (s) | samples/s |")
    print("|---|---|---|---|")
    for b, (acc, seconds, rate) in results.items():
        print(f"| {b} | {acc:.4f} | {seconds:.3f} | {rate:,.0f} |")
    c_time, np_time = results["c"][1], results["numpy"][1]
    print(f"speed ratio (numpy time / c time): {np_time / c_time:.2f}x")


def run_demo(args):
    """``fastnn demo``: the digits MLP on one backend, or on both with --compare."""
    if args.threads is not None:
        fnn.set_num_threads(args.threads)
    backends = [args.backend] + (["numpy" if args.backend == "c" else "c"] if args.compare else [])
    results = {}
    for i, backend in enumerate(backends):
        threads = fnn.get_num_threads() if backend == "c" else "numpy's BLAS"
        if i == 0 or not args.quiet:
            print(f"fastnn {fnn.__version__}: digits {args.model.upper()}, backend {backend} "
                  f"({threads} threads)")
        acc, seconds, rate, n_tr, n_te, model = train_digits(args, backend,
                                                             0 if args.quiet else 1)
        results[backend] = (acc, seconds, rate)
        extra = f", dropout {DEMO_MODELS[args.model][2]:g}" if DEMO_MODELS[args.model][2] else ""
        print(f"network {describe(model)} ReLU{extra}, Adam lr={args.lr:g}, "
              f"{args.epochs} epochs, batch {args.batch_size}, {n_tr} train / {n_te} test samples")
        print(f"test accuracy: {acc:.4f}")
        print(f"training time: {seconds:.3f} s ({rate:,.0f} samples/s) [{backend}]")
    if args.compare:
        _print_backend_table(results)
    return 0


# -------------------------------------------------------------------- train
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


def _check_train_options(args):
    """Raise CLIError for a bad option; apply --threads."""
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
    if not 0.0 <= args.dropout < 1.0:
        raise CLIError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.image_shape is not None and not args.conv:
        raise CLIError("--image-shape is for a CNN: give --conv too")
    if args.threads is not None:
        try:
            fnn.set_num_threads(args.threads)
        except ValueError as e:
            raise CLIError(str(e)) from None


def _encode_target(y_raw, meta):
    """(y, output count, loss) to train on the raw target for ``meta["task"]``;
    a classification's labels go to ``meta["classes"]``."""
    target = meta["target"]
    if meta["task"] == "classification":
        classes, y = np.unique(y_raw, return_inverse=True)
        if len(classes) < 2:
            raise CLIError(f"the target {target!r} has a single value ({classes[0]!r}); "
                           "classification needs at least 2 classes")
        meta["classes"] = [_json_label(c) for c in classes]
        return y, len(classes), fnn.CrossEntropyLoss()
    if y_raw.dtype.kind not in "biuf":
        raise CLIError(f"the target {target!r} is not numeric: regression needs numbers "
                       "(use --task classification)")
    return y_raw.astype(np.float64), 1, fnn.MSELoss()


def _split(X, y, task, args):
    """(X_tr, X_val, y_tr, y_val) by --val-split; the validation part is None for 0."""
    if not args.val_split > 0:
        return X, None, y, None
    stratify = task == "classification" and np.bincount(y).min() >= 2
    try:
        return fnn.train_test_split(X, y, test_size=args.val_split, seed=args.seed,
                                    stratify=stratify)
    except ValueError as e:
        raise CLIError(f"--val-split {args.val_split}: {e}") from None


def _add_scaling(meta, X_tr, y_tr):
    """Record the training part's feature scaling (and a regression's target scaling)."""
    mean, std = feature_scaling(X_tr)
    meta.update(mean=mean.tolist(), std=std.tolist())
    if meta["task"] == "regression":                    # targets standardised too
        y_mean, y_std = target_scaling(y_tr)
        meta.update(target_mean=y_mean, target_std=y_std)


def _model_inputs(meta, X):
    """Raw features `X` scaled as the model with `meta` was trained, as float32."""
    return standardise(X, np.asarray(meta["mean"]), np.asarray(meta["std"]))


def _model_targets(meta, y):
    """The training targets the model sees: standardised for a regression."""
    if meta["task"] == "regression":
        return standardise(y, meta["target_mean"], meta["target_std"])
    return y


def _model_values(meta, out):
    """A regression model's (N, 1) output in the target's original units."""
    return unstandardise(out[:, 0], meta["target_mean"], meta["target_std"])


def _regression_metrics(pred, y):
    err = pred - y
    ss = float(((y - y.mean()) ** 2).sum())
    return {"rmse": float(np.sqrt((err ** 2).mean())), "mae": float(np.abs(err).mean()),
            "r2": 1.0 - float((err ** 2).sum()) / ss if ss > 0 else float("nan")}


def _image_shape_of(args, shape, n_features):
    """The (C, H, W) a --conv network reads: the data's own, or --image-shape."""
    given = args.image_shape
    if shape is not None and given is not None and tuple(given) != tuple(shape):
        raise CLIError(f"--image-shape {','.join(map(str, given))} disagrees with the data's "
                       f"images of shape {tuple(shape)}")
    shape = shape if shape is not None else given
    if shape is None:
        raise CLIError("--conv needs images: an .npz whose X is (N, H, W) or (N, C, H, W), "
                       "or --image-shape C,H,W for rows of pixels")
    if int(np.prod(shape)) != n_features:
        raise CLIError(f"--image-shape {','.join(map(str, shape))} has {int(np.prod(shape))} "
                       f"pixels but the data has {n_features} features per row")
    return tuple(int(d) for d in shape)


def _print_train_header(args, meta, sizes, n_rows, n_train, n_val):
    task, target = meta["task"], meta["target"]
    what = (f"{len(meta['classes'])} classes" if task == "classification"
            else "standardised for training")
    print(f"fastnn {fnn.__version__}: {task} of {target!r} ({what}) on {args.data}: "
          f"{n_rows} rows, {len(meta['features'])} features"
          f"{' as images ' + 'x'.join(map(str, meta['image_shape'])) if 'image_shape' in meta else ''}"
          f"; {n_train} train / {n_val} validation")
    dropout = f", dropout {args.dropout:g}" if args.dropout > 0 else ""
    print(f"network {sizes} {args.activation}{dropout}, Adam lr={args.lr:g}, "
          f"{args.epochs} epochs, batch {args.batch_size}, {fnn.get_num_threads()} threads",
          flush=True)


def _fit(model, loss, args, train, val):
    """Fit on the (X, y) pair `train`, validating on `val` (or None); return
    (history, seconds)."""
    meta = model.metadata
    optimizer = fnn.Adam(model.parameters(), lr=args.lr)
    steps = -(-len(train[0]) // args.batch_size)
    t0 = time.perf_counter()
    history = model.fit(_model_inputs(meta, train[0]), _model_targets(meta, train[1]),
                        loss=loss, optimizer=optimizer,
                        epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        validation_data=None if val is None else
                        (_model_inputs(meta, val[0]), _model_targets(meta, val[1])),
                        callbacks=[] if args.quiet else [Progress(args.epochs, steps)],
                        verbose=0)
    return history, time.perf_counter() - t0


def _print_fit_metrics(model, part, X, y):
    """Print the accuracy and loss, or RMSE, MAE and R^2, of `model` on the `part` data."""
    meta = model.metadata
    out = model.predict(_model_inputs(meta, X))
    if meta["task"] == "classification":
        acc = float((out.argmax(axis=1) == y).mean())
        logs = model.evaluate(_model_inputs(meta, X), y)
        print(f"{part} accuracy: {acc:.4f}  {part} loss: {logs['loss']:.4f}")
    else:
        m = _regression_metrics(_model_values(meta, out), y)
        print(f"{part} RMSE: {m['rmse']:.6g}  MAE: {m['mae']:.6g}  R^2: {m['r2']:.4f}")


def run_train(args):
    """``fastnn train``: read, split, standardise, fit, report, save (and plot)."""
    _check_train_options(args)
    X, y_raw, names, target, image_shape = read_training_data(args.data, args.target)
    meta = {"format": METADATA_FORMAT, "task": args.task or infer_task(y_raw),
            "features": names, "target": target, "source": os.path.basename(args.data)}
    y, n_out, loss = _encode_target(y_raw, meta)
    X_tr, X_val, y_tr, y_val = _split(X, y, meta["task"], args)
    _add_scaling(meta, X_tr, y_tr)
    if args.conv:
        shape = _image_shape_of(args, image_shape, X.shape[1])
        model = build_cnn(shape, args.conv, args.hidden, n_out, args.activation,
                          dropout=args.dropout, seed=args.seed)
        meta["image_shape"] = list(shape)
    else:
        layers = [X.shape[1]] + args.hidden + [n_out]
        model = build_mlp(layers, args.activation, dropout=args.dropout, seed=args.seed)
    sizes = describe(model)
    model.metadata = meta
    _print_train_header(args, meta, sizes, len(X), len(X_tr), 0 if X_val is None else len(X_val))
    val = None if X_val is None else (X_val, y_val)
    history, seconds = _fit(model, loss, args, (X_tr, y_tr), val)
    if val is None:
        _print_fit_metrics(model, "training", X_tr, y_tr)
    else:
        _print_fit_metrics(model, "validation", X_val, y_val)
    print(f"training time: {seconds:.3f} s ({args.epochs * len(X_tr) / seconds:,.0f} samples/s)")
    try:
        model.save(args.out)
    except OSError as e:
        raise CLIError(f"cannot save the model to {args.out}: {e}") from None
    print(f"saved {args.out}")
    if args.plot:
        fnn.plot_history(history, args.plot, title=f"fastnn: {target} from "
                         f"{os.path.basename(args.data)} ({sizes})")
        print(f"saved {args.plot}")
    return 0


# ------------------------------------------------------------------ predict
def _load_model(path):
    """(model, metadata): the metadata is None unless ``fastnn train`` wrote the model."""
    check_file(path)
    try:
        model = fnn.load(path)
    except fnn.FormatError as e:
        raise CLIError(str(e)) from None
    meta = getattr(model, "metadata", None)
    if not (isinstance(meta, dict) and meta.get("format") == METADATA_FORMAT):
        meta = None            # a model saved from Python: raw features, raw outputs
    return model, meta


def _prediction_table(model, meta, X, proba):
    """(header, rows) of the predictions for the float32 model inputs `X`."""
    if meta is not None and meta["task"] == "classification":
        p = model.predict_proba(X)
        classes = meta["classes"]
        header = [str(meta["target"])] + ([f"proba_{c}" for c in classes] if proba else [])
        return header, [[classes[k]] + (list(row) if proba else [])
                        for k, row in zip(p.argmax(axis=1), p)]
    if proba and (meta is not None or model.out_features_ is None):
        raise CLIError("--proba needs a classification model")
    if meta is not None:
        return [str(meta["target"])], [[v] for v in _model_values(meta, model.predict(X))]
    out = model.predict_proba(X) if proba else model.predict(X)
    return [f"{'proba' if proba else 'output'}_{j}" for j in range(out.shape[1])], out.tolist()


def run_predict(args):
    """``fastnn predict``: load the model, apply its preprocessing, write a CSV."""
    model, meta = _load_model(args.model)
    X = read_features(args.data, meta, model.in_features)
    X = _model_inputs(meta, X) if meta is not None else X.astype(np.float32)
    header, rows = _prediction_table(model, meta, X, args.proba)
    text = csv_text(header, rows)
    if not args.out:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.out, "w", newline="") as f:
            f.write(text)
    except OSError as e:
        raise CLIError(f"cannot write {args.out}: {e}") from None
    print(f"wrote {len(rows)} predictions to {args.out}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------- dispatch
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
    except BrokenPipeError:
        # the reader went away (`fastnn | head`): stop without a traceback, and point
        # stdout at /dev/null so that the interpreter's final flush does not raise again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141   # 128 + SIGPIPE, what a tool killed by the signal reports
