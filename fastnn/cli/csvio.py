"""Reading the data files of ``fastnn train`` / ``fastnn predict`` (CSV with a
header row, .npz, .npy), writing predictions as CSV, and the feature-scaling
helpers. Bad input raises :class:`CLIError` with a message naming the file,
and for CSV the column and line."""
import csv
import io
import math
import os
import pathlib

import numpy as np


class CLIError(Exception):
    """A user error (bad data or options): the command line prints
    ``fastnn <command>: error: <message>`` and exits with status 2."""


def check_file(path):
    """Raise CLIError unless `path` exists and is not a directory."""
    if not os.path.exists(path):
        raise CLIError(f"file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a directory, not a data file")


def to_float(values):
    """A float64 array of the strings `values`, or None if one is not a number."""
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return None


def read_csv(path):
    """(header, columns, lines): the CSV's header row, each column as a list of
    strings, and the file line number of each data row.

    Blank lines are skipped; every other row must have as many fields as the header.
    """
    check_file(path)
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


def _is_finite_number(text):
    values = to_float([text])
    return values is not None and math.isfinite(values[0])


def _csv_features(path, header, columns, lines, names):
    """The (N, F) float64 matrix of the columns `names`; CLIError naming a bad value."""
    out = []
    for name in names:
        col = columns[header.index(name)]
        values = to_float(col)
        if values is None or not np.isfinite(values).all():
            bad = next(i for i, v in enumerate(col) if not _is_finite_number(v))
            what = "a missing value" if col[bad] == "" else f"the value {col[bad]!r}"
            raise CLIError(f"non-numeric feature column {name!r} in {path}: {what} at line "
                           f"{lines[bad]} (features must be numbers; encode or drop it)")
        out.append(values)
    return np.stack(out, axis=1)


def _load_array(path):
    check_file(path)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CLIError(f"cannot read {path}: {e}") from None


def _check_matrix(X, path):
    """`X` as a float64 feature matrix; CLIError unless 2-D, non-empty, numeric, finite."""
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


def image_rows(X):
    """(rows, image shape): an (N, H, W) or (N, C, H, W) array of images as
    (N, C*H*W) rows and its per-sample (C, H, W); any other array unchanged,
    with shape None."""
    X = np.asarray(X)
    if X.ndim == 3:
        return X.reshape(len(X), -1), (1,) + X.shape[1:]
    if X.ndim == 4:
        return X.reshape(len(X), -1), X.shape[1:]
    return X, None


def _npz_training_data(path, target):
    with _load_array(path) as data:
        key = target or "y"
        if "X" not in data.files or key not in data.files:
            raise CLIError(f"{path} must hold arrays 'X' and {key!r} (--target), "
                           f"found {', '.join(data.files) or 'none'}")
        X, shape = image_rows(data["X"])
        X, y = _check_matrix(X, path), np.asarray(data[key])
    if y.ndim != 1 or len(y) != len(X):
        raise CLIError(f"{path}: {key!r} must be 1-D with one value per row of X, "
                       f"got shape {y.shape} for X {X.shape}")
    return X, y, [f"x{j}" for j in range(X.shape[1])], key, shape


def _npy_training_data(path, target):
    A = _check_matrix(_load_array(path), path)
    col = _npy_target(target)
    if not -A.shape[1] <= col < A.shape[1] or A.shape[1] < 2:
        raise CLIError(f"{path}: target column {col} out of range for "
                       f"{A.shape[1]} columns (features + target)")
    col %= A.shape[1]
    X = np.delete(A, col, axis=1)
    return X, A[:, col], [f"x{j}" for j in range(X.shape[1])], col, None


def _csv_training_data(path, target):
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
    y = to_float(raw)
    y = y if y is not None and np.isfinite(y).all() else np.array(raw)
    return X, y, names, target, None


def read_training_data(path, target):
    """(X (N, F) float64, y (N,), feature names, target, image shape) from a
    data file; the image shape is None unless X held images.

    * ``.csv``: a header row; ``target`` names the label column (required),
      every other column is a numeric feature; the target may hold text.
    * ``.npz``: arrays ``X`` (N, F), or images (N, H, W) / (N, C, H, W) taken
      as rows of C*H*W features, and ``target`` (default ``y``).
    * ``.npy``: one 2-D numeric array; ``target`` is a column index
      (default -1, the last column).
    """
    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".npz":
        return _npz_training_data(path, target)
    if suffix == ".npy":
        return _npy_training_data(path, target)
    return _csv_training_data(path, target)


def _csv_prediction_features(path, meta):
    header, columns, lines = read_csv(path)
    names = meta["features"] if meta is not None else \
        [h for h in header if to_float(columns[header.index(h)]) is not None]
    missing = [n for n in names if n not in header]
    if missing:
        raise CLIError(f"{path} lacks the feature column(s) {', '.join(missing)} "
                       "the model was trained on")
    return _csv_features(path, header, columns, lines, names)


def read_features(path, meta, n_features):
    """(N, F) float64 features for prediction, matching a trained model.

    CSV columns are picked by the training feature names in `meta` (any
    order; others, e.g. the target, are ignored; without `meta`, every numeric
    column); .npz uses ``X``; a .npy array must have F columns, or F + 1 with
    the training target column, which is dropped.
    """
    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".npz":
        with _load_array(path) as data:
            if "X" not in data.files:
                raise CLIError(f"{path} must hold an array 'X'")
            X = _check_matrix(image_rows(data["X"])[0], path)
    elif suffix == ".npy":
        X = _check_matrix(_load_array(path), path)
        if meta is not None and isinstance(meta.get("target"), int) and \
                X.shape[1] == n_features + 1:
            X = np.delete(X, meta["target"], axis=1)
    else:
        X = _csv_prediction_features(path, meta)
    if n_features is not None and X.shape[1] != n_features:
        raise CLIError(f"{path} has {X.shape[1]} feature columns; the model expects "
                       f"{n_features}")
    return X


def _fmt(v):
    return f"{v:.7g}" if isinstance(v, (float, np.floating)) else str(v)


def csv_text(header, rows):
    """The CSV text of a header row and data rows; floats with 7 significant digits."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_fmt(v) for v in row] for row in rows)
    return buf.getvalue()


def feature_scaling(X):
    """(mean, std) of each column of `X`; a constant column gets std 1, so it scales to 0."""
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std == 0] = 1.0
    return mean, std


def target_scaling(y):
    """(mean, std) of a regression target as floats; std 1 for a constant target."""
    return float(y.mean()), float(y.std()) or 1.0


def standardise(A, mean, std):
    """(A - mean) / std as float32, the dtype the models compute in."""
    return ((A - mean) / std).astype(np.float32)


def unstandardise(v, mean, std):
    """The inverse of :func:`standardise`, in float64: v * std + mean."""
    return v.astype(np.float64) * std + mean
