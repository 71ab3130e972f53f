"""The Keras-style loop: fit, evaluate, predict, and :class:`Trainable`, the
base class that gives a model these methods (Sequential derives from it).

Inputs are validated once per call, up front (:mod:`fastnn.data`): any real
array-like X becomes C-contiguous float32 (float64/int converted), y is
converted to what the loss needs (float32 targets, int64 labels). The epoch
loop then slices batches and calls ``model._train_step`` -- the one place a
fused C step replaces the layer-by-layer path.
"""
import math
import time

import numpy as np

from .callbacks import Callback, History
from .checks import check_consistent_length, check_int, check_X, check_y, is_int, is_real
from .losses import get_loss
from .optim import Optimizer, get_optimizer

__all__ = ["fit", "evaluate", "predict", "predict_proba", "predict_classes", "Trainable"]


def check_optimizer(model, optimizer):
    """ValueError unless `optimizer` updates exactly this model's parameters."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastnn Optimizer built on model.parameters(), "
                        f"got {type(optimizer).__name__}")
    mine = model.flat_params
    if optimizer.flat:
        ok = optimizer._targets[0][0] is mine
    else:
        ok = all(p.flat is mine for p in optimizer.params)
    if not ok:
        raise ValueError("the optimizer was created for another model's parameters; "
                         "create it with model.parameters()")


def check_features(model, X):
    """ValueError unless X (N, F) has the feature count the first Linear expects."""
    if model.in_features is not None and X.shape[1] != model.in_features:
        first = next((layer for layer in model.layers if hasattr(layer, "in_features")), None)
        if first is None or tuple(model.input_shape) != (first.in_features,):
            raise ValueError(f"the model expects inputs of per-sample shape "
                             f"{tuple(model.input_shape)} ({model.in_features} features), "
                             f"got {X.shape[1]} features")
        raise ValueError(f"{first!r} expects {model.in_features} features, got {X.shape[1]}")


def as_rows(model, X):
    """Image-like X (N, *input_shape), e.g. (N, C, H, W), as the (N, features) rows
    the API works on (a view); anything else unchanged (check_X judges it)."""
    shape = getattr(model, "input_shape", None)
    if isinstance(X, np.ndarray) and X.ndim > 2 and shape is not None and \
            tuple(X.shape[1:]) == tuple(shape):
        return X.reshape(X.shape[0], -1)
    return X


def check_step(model, x, y, loss_fn, optimizer):
    """The checks of one explicit train_step: (x, prepared y, loss)."""
    x = check_X(as_rows(model, x))
    check_features(model, x)
    check_optimizer(model, optimizer)
    loss_fn = get_loss(loss_fn)
    y = check_y(y)
    check_consistent_length(x, y)
    width = model.out_features_
    y = loss_fn.prepare_target(y, None if width is None else (len(x), width))
    if width is not None and hasattr(loss_fn, "check_range"):
        loss_fn.check_range(y, width)   # a bad label changes nothing, on either path
    return x, y, loss_fn


def _check_xy(model, X, y, loss, name="X"):
    X = check_X(as_rows(model, X), name)
    check_features(model, X)
    y = check_y(y, "y" if name == "X" else name.replace("X", "y"))
    check_consistent_length(X, y)
    width = model.out_features_
    y = loss.prepare_target(y, None if width is None else (len(X), width))
    if width is not None and hasattr(loss, "check_range"):
        loss.check_range(y, width)
    return X, y


# ------------------------------------------------- labels and sample weights
def _is_label_encoded(loss):
    """Losses whose targets are class labels that fit may encode (cross-entropy)."""
    return type(loss).__name__ == "CrossEntropyLoss"


def _label_array(y):
    """y as an array: numbers as they are, anything else (strings, tuples, any
    hashable) as a 1-D array of labels (object dtype unless all strings)."""
    if isinstance(y, np.ndarray):
        arr = y
    else:
        try:
            arr = np.asarray(y)
        except (ValueError, TypeError):
            arr = None
        if arr is None or (arr.dtype.kind in "biuf" and not
                           (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1))) or \
                arr.dtype.kind not in "biufUS":
            items = list(y)
            arr = np.empty(len(items), object)
            for i, v in enumerate(items):
                arr[i] = v
    if arr.dtype.kind not in "biuf" and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.reshape(-1)
    return arr


def _encode_labels(model, y, loss, fitting, name="y"):
    """Labels that are not numbers (strings or any hashable) as their indices in
    ``model.classes_``: fit sets classes_ (the sorted distinct labels; order of
    first appearance when they cannot be sorted), evaluate and validation data
    use it (an unseen label is a ValueError). Numbers are class indices as
    before (fit then sets classes_ to None)."""
    if not _is_label_encoded(loss):
        return y
    arr = _label_array(y)
    if arr.dtype.kind in "biuf":
        if fitting:
            model.classes_ = None
        return arr
    if arr.ndim != 1:
        raise ValueError(f"{name}: labels must be 1-D, got shape {arr.shape}")
    if fitting:
        if arr.dtype.kind in "US":
            classes, codes = np.unique(arr, return_inverse=True)
            model.classes_ = classes
            codes = codes.reshape(-1).astype(np.int64)
        else:
            try:
                uniq = list(dict.fromkeys(arr.tolist()))
            except TypeError as e:
                raise TypeError(f"{name}: class labels must be hashable: {e}") from None
            try:
                uniq = sorted(uniq)
            except TypeError:
                pass
            classes = np.empty(len(uniq), object)
            for i, c in enumerate(uniq):
                classes[i] = c
            model.classes_ = classes
            index = {c: i for i, c in enumerate(uniq)}
            codes = np.fromiter((index[v] for v in arr.tolist()), np.int64, len(arr))
        width = model.out_features_
        if width is not None and len(model.classes_) > width:
            raise ValueError(f"{name} has {len(model.classes_)} classes but the model has "
                             f"{width} outputs")
        return codes
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise TypeError(f"{name}: labels of dtype {arr.dtype} need a model fitted on such "
                        "labels (model.classes_ is None); pass integer class indices")
    index = {c: i for i, c in enumerate(classes.tolist())}
    try:
        codes = [index.get(v, -1) for v in arr.tolist()]
    except TypeError as e:
        raise TypeError(f"{name}: class labels must be hashable: {e}") from None
    codes = np.asarray(codes, np.int64)
    if (codes < 0).any():
        unseen = list(dict.fromkeys(arr[codes < 0].tolist()))[:5]
        raise ValueError(f"{name} contains labels not seen in fit: {unseen} "
                         f"(model.classes_ = {list(classes)})")
    return codes


def check_sample_weight(sample_weight, n, name="sample_weight"):
    """Per-row weights as C-contiguous float32 (n,), each finite and >= 0."""
    try:
        w = np.asarray(sample_weight)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} could not be converted to an array: {e}") from None
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {w.dtype}")
    if w.ndim == 2 and w.shape[1] == 1:
        w = w.reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one weight per sample), "
                         f"got {w.shape}")
    with np.errstate(over="ignore"):
        w = np.ascontiguousarray(w, dtype=np.float32)
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name}[{row}] is {w[row]}: weights must be finite and >= 0")
    return w


def _class_weight_rows(model, class_weight, y, loss):
    """Keras's class_weight: row i gets class_weight.get(class of row i, 1.0).
    The class is the label (cross-entropy; keys are the original labels when
    fit encoded them, see model.classes_), or for BCEWithLogitsLoss the rounded
    target (one output) or its argmax (several), as Keras."""
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class: weight}}, got "
                        f"{type(class_weight).__name__}")
    if not loss.classification:
        raise ValueError(f"class_weight needs a classification loss (CrossEntropyLoss, "
                         f"BCEWithLogitsLoss), got {type(loss).__name__}")
    classes = getattr(model, "classes_", None) if _is_label_encoded(loss) else None
    table = {}
    for key, value in class_weight.items():
        if not is_real(value) or not math.isfinite(value) or value < 0:
            raise ValueError(f"class_weight[{key!r}] must be a finite number >= 0, "
                             f"got {value!r}")
        if classes is not None:
            hits = [i for i, c in enumerate(classes.tolist()) if c == key]
            if not hits:
                raise ValueError(f"class_weight has the key {key!r}, which is not a class "
                                 f"(model.classes_ = {list(classes)})")
            key = hits[0]
        elif not (is_int(key) or (isinstance(key, (float, np.floating)) and key == int(key))):
            raise ValueError(f"class_weight keys must be integer class indices, got {key!r}")
        table[int(key)] = float(value)
    if y.ndim == 2:
        y = np.argmax(y, axis=1) if y.shape[1] > 1 else y[:, 0]
    labels = np.round(y).astype(np.int64)
    keys = np.fromiter(table, np.int64, len(table))
    vals = np.fromiter(table.values(), np.float64, len(table))
    w = np.ones(len(labels), np.float64)
    if len(keys):
        order = np.argsort(keys)
        keys, vals = keys[order], vals[order]
        pos = np.clip(np.searchsorted(keys, labels), 0, len(keys) - 1)
        hit = keys[pos] == labels
        w[hit] = vals[pos[hit]]
    return w


def _row_weights(model, y, loss, sample_weight, class_weight, name="sample_weight"):
    """The per-row float32 weights of sample_weight times class_weight, or None."""
    if sample_weight is None and class_weight is None:
        return None
    w = np.ones(len(y), np.float64) if sample_weight is None else \
        check_sample_weight(sample_weight, len(y), name).astype(np.float64)
    if class_weight is not None:
        w *= _class_weight_rows(model, class_weight, y, loss)
    return check_sample_weight(w, len(y), name)


def fit(model, X, y, loss=None, optimizer="adam", epochs=10, batch_size=32, shuffle=True,
        seed=None, validation_data=None, validation_split=0.0, callbacks=None, verbose=1,
        sample_weight=None, class_weight=None, distributed=None):
    """Train the model; return a :class:`History`.

    Args:
        X (N, IN), y: training data (y: labels (N,) for CrossEntropyLoss, else
            targets shaped like the output; (N,) is accepted for one output).
        loss: a loss instance or name ("cross_entropy", "mse", ...). Kept as
            ``model.loss`` for later ``evaluate`` calls.
        optimizer: an optimizer built on ``model.parameters()`` or a name
            ("adam", "sgd", ...: default settings, new each call).
        epochs: passes over the data (0 trains nothing).
        batch_size: N for full-batch, 1 for stochastic, b for mini-batch
            gradient descent -- the same optimizer in every case.
        shuffle, seed: reshuffle every epoch; seed=None draws one from the
            model's seeded generator, so runs are reproducible.
        validation_data: (X_val, y_val) or (X_val, y_val, sample_weight_val),
            or validation_split: the fraction of samples (and sample weights)
            taken from the END of X, y (before shuffling, as Keras).
        callbacks: list of :class:`Callback`, e.g. EarlyStopping.
        verbose: 0 silent, 1 or 2 one line per epoch.
        sample_weight (N,): per-sample weights (finite, >= 0). class_weight:
            {class: weight} (classification losses; class = label, or the
            original label when labels were encoded), missing classes 1.0.
            As Keras: row weight = sample weight x class weight, and each
            batch's loss is sum(w l) / the batch's rows (not / sum w).
            Accuracy stays unweighted (Keras's ``metrics``, not
            ``weighted_metrics``).
        distributed: a :class:`fastnn.distributed.MPI` strategy for
            data-parallel training (batch_size is then the global batch; see
            that module for what is and is not the same as one process).

    Labels for CrossEntropyLoss may be strings or any hashable: fit stores the
    sorted distinct labels in ``model.classes_`` (saved with the model) and
    trains on their indices; :func:`predict_classes` decodes back.

    history.history holds "loss" (sample-weighted mean of the batch losses
    of the epoch, weights as they were at each batch), "accuracy" for
    classification losses, "val_" versions with validation data, and "lr"
    (the optimizer's learning rate during the epoch; schedules such as
    :class:`fastnn.StepLR` are callbacks that change it at each epoch end).

    Raises FloatingPointError naming the epoch and step when the loss becomes
    NaN or Inf (lower the learning rate) -- unless a callback with
    ``handles_nonfinite = True`` such as :class:`TerminateOnNaN` is given: then
    callbacks see every batch's loss in ``on_train_batch_end(step, logs)`` and
    decide (TerminateOnNaN stops at once, after that batch, as Keras's).
    """
    args = (model, X, y, loss, optimizer, epochs, batch_size, shuffle, seed, validation_data,
            validation_split, callbacks, verbose, sample_weight, class_weight, distributed)
    if distributed is None:
        return _fit(*args)
    if not hasattr(distributed, "_run"):
        raise TypeError(f"distributed must be a fastnn.distributed strategy such as MPI(), "
                        f"got {type(distributed).__name__}")
    return distributed._run(_fit, args)    # an error on one rank ends every rank


def _fit(model, X, y, loss, optimizer, epochs, batch_size, shuffle, seed, validation_data,
         validation_split, callbacks, verbose, sample_weight, class_weight, distributed):
    loss = get_loss(loss)
    optimizer = get_optimizer(optimizer, model.parameters())
    check_optimizer(model, optimizer)
    epochs = check_int(epochs, "epochs", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    X, y = _check_xy(model, X, _encode_labels(model, y, loss, True), loss)
    w = _row_weights(model, y, loss, sample_weight, class_weight)
    if not is_real(validation_split) or not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    wv = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (X_val, y_val) or "
                             "(X_val, y_val, sample_weight_val)")
        Xv, yv = _check_xy(model, validation_data[0],
                           _encode_labels(model, validation_data[1], loss, False, "y_val"),
                           loss, name="X_val")
        if len(validation_data) == 3 and validation_data[2] is not None:
            wv = check_sample_weight(validation_data[2], len(Xv), "sample_weight_val")
    elif validation_split > 0:
        split = int(len(X) * (1.0 - validation_split))
        if split in (0, len(X)):
            raise ValueError(f"validation_split={validation_split} leaves an empty training "
                             f"or validation set out of {len(X)} samples")
        X, Xv, y, yv = X[:split], X[split:], y[:split], y[split:]
        if w is not None:
            w, wv = w[:split], w[split:]
    else:
        Xv = yv = None
    if seed is not None:
        seed = check_int(seed, "seed", 0)
    callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else \
        [] if callbacks is None else [callbacks]
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}] must be a fastnn Callback, got {type(cb).__name__}")
    epoch_seed = int(model._rng.integers(2**63)) if seed is None else seed
    if distributed is not None:      # rank 0's parameters, buffers and epoch seed
        epoch_seed = distributed._setup(model, loss, optimizer, epoch_seed)
    rng = np.random.default_rng(epoch_seed)

    model.loss, model.optimizer = loss, optimizer
    history = model.history = History()
    callbacks = [history] + callbacks
    if distributed is not None:      # callbacks and printing on rank 0 only
        callbacks = distributed._callbacks(callbacks, history)
        verbose = verbose if distributed.is_root else 0
    # a callback with handles_nonfinite (TerminateOnNaN) decides what a NaN/Inf loss does
    nonfinite_raises = not any(getattr(cb, "handles_nonfinite", False) for cb in callbacks)
    batch_cbs = [cb for cb in callbacks if _wants_batches(cb)]
    params = {"verbose": verbose, "epochs": epochs, "steps": -(-len(X) // batch_size)}
    for cb in callbacks:
        cb.set_model(model)
        cb.set_params(params)
    for cb in callbacks:
        cb.on_train_begin({})
    model.stop_training = False
    model.train()
    rows = min(batch_size, len(X))
    xbuf, ybuf = np.empty((rows,) + X.shape[1:], X.dtype), np.empty((rows,) + y.shape[1:], y.dtype)
    wbuf = None if w is None else np.empty(rows, np.float32)
    for epoch in range(epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {})
        t0 = time.perf_counter()
        order = None
        if shuffle:   # each epoch's order: a 64-bit key from rng, then the backend's permutation
            order = np.empty(len(X), np.int64)
            model.backend.permutation(order, int(rng.integers(2**64, dtype=np.uint64)))
        # the whole epoch in C, Python regaining control every ~50 ms (Ctrl-C, and
        # nothing per step): when no callback needs each batch and the step is fused
        cm = None if batch_cbs or not nonfinite_raises or distributed is not None else \
            model._epoch_model(loss, optimizer)
        if distributed is not None:
            cm_dist = distributed._bound(model, loss, optimizer)   # lr may have changed
            total, correct, seen = distributed._epoch(model, cm_dist, X, y, order, batch_size,
                                                      loss, optimizer, epoch, w)
            if nonfinite_raises and not math.isfinite(total):
                raise FloatingPointError(
                    f"loss is {total / max(seen, 1)} in epoch {epoch + 1}: training diverged; "
                    f"lower the learning rate (now {optimizer.lr:g})")
        elif cm is not None:
            total, correct, seen = _epoch_in_c(model, cm, X, y, order, batch_size, loss,
                                               optimizer, epoch, w)
        else:
            total, correct, seen = _epoch_by_step(model, X, y, order, batch_size, loss,
                                                  optimizer, epoch, xbuf, ybuf, batch_cbs,
                                                  nonfinite_raises, w, wbuf)
        logs = {"loss": total / seen}
        if loss.classification:
            logs["accuracy"] = correct / seen
        if Xv is not None:
            val = _evaluate(model, Xv, yv, loss, sample_weight=wv) if distributed is None \
                else distributed._evaluate(model, Xv, yv, loss, wv, _evaluate)
            logs.update({"val_" + k: v for k, v in val.items()})
            model.train()
        logs["lr"] = optimizer.lr     # the lr this epoch trained with
        seconds = time.perf_counter() - t0
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if verbose:
            metrics = " - ".join(f"{k}: {v:.4g}" if k == "lr" else f"{k}: {v:.4f}"
                                 for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{epochs} - {seconds:.2f}s - {metrics}", flush=True)
        if distributed is not None:      # rank 0's decisions (stop, lr), on every rank
            distributed._sync_decisions(model, optimizer)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end({})
    return history


def _diverged(value, epoch, step, optimizer):
    return FloatingPointError(
        f"loss is {value} at epoch {epoch + 1}, step {step + 1}: training "
        f"diverged; lower the learning rate (now {optimizer.lr:g})")


def _wants_batches(cb):
    """Whether a callback needs on_train_batch_end (which keeps the epoch out of C):
    its ``wants_batches`` attribute when it has one, else whether it overrides a
    batch hook."""
    flag = getattr(cb, "wants_batches", None)
    if flag is not None:
        return bool(flag)
    return type(cb).on_train_batch_end is not Callback.on_train_batch_end \
        or type(cb).on_batch_end is not Callback.on_batch_end


def _epoch_by_step(model, X, y, order, batch_size, loss, optimizer, epoch, xbuf, ybuf,
                   batch_cbs, nonfinite_raises, w=None, wbuf=None):
    """One epoch, one ``model._train_step`` per batch; returns (loss sum, correct, rows)."""
    total = correct = 0.0
    seen = 0
    wb = None
    for step, start in enumerate(range(0, len(X), batch_size)):
        if order is None:   # views: no copy
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            if w is not None:
                wb = w[start:start + batch_size]
        else:               # gathered into buffers allocated once per fit
            idx = order[start:start + batch_size]
            xb = np.take(X, idx, axis=0, out=xbuf[:len(idx)], mode="clip")
            yb = np.take(y, idx, axis=0, out=ybuf[:len(idx)], mode="clip")
            if w is not None:
                wb = np.take(w, idx, out=wbuf[:len(idx)], mode="clip")
        value, out = model._train_step(xb, yb, loss, optimizer, wb)
        if nonfinite_raises and not math.isfinite(value):
            raise _diverged(value, epoch, step, optimizer)
        total += value * len(xb)
        seen += len(xb)
        if loss.classification:
            correct += loss.correct(out, yb)
        if batch_cbs:
            for cb in batch_cbs:
                cb.on_train_batch_end(step, {"loss": value, "size": len(xb)})
            if model.stop_training:
                break
    return total, correct, seen


# Seconds of training per C call in _epoch_in_c: how soon Ctrl-C is seen.
EPOCH_SLICE_SECONDS = 0.05


def _epoch_in_c(model, cm, X, y, order, batch_size, loss, optimizer, epoch, w=None):
    """One epoch through ``fnn_model_train_epoch``: the same batches, gathers, steps
    and sums, in the same order, as _epoch_by_step (same bits), in calls of about
    EPOCH_SLICE_SECONDS each so that Python handles signals between them."""
    total = correct = 0.0
    seen, first, chunk = 0, 0, 1
    nbatch = -(-len(X) // batch_size)
    order = None if order is None else np.ascontiguousarray(order, dtype=np.int64)
    while first < nbatch:
        t0 = time.perf_counter()
        total, correct, rows, done, stop, last = cm.train_epoch(
            X, y, order, batch_size, first, chunk, loss._metric, total, correct,
            optimizer.step_count, model._counter, sample_weight=w,
            weights_per_row=w is not None)
        model._counter += done
        optimizer.step_count += done
        seen += rows
        if stop >= 0:
            raise _diverged(last, epoch, stop, optimizer)
        first += done
        dt = time.perf_counter() - t0
        chunk = max(1, min(8 * chunk, int(chunk * EPOCH_SLICE_SECONDS / dt) if dt > 0 else 8 * chunk))
    return total, correct, seen


def _predict(model, X, batch_size):
    # a model without Linear layers keeps its input width
    out = np.empty((len(X), model.out_features_ or X.shape[1]), np.float32)
    if model.fused and model._get_plan() is not None:
        # the C plan's forward is evaluation mode and each thread has its own
        # workspace: concurrent predicts run in parallel, no state is switched
        for start in range(0, len(X), batch_size):
            model._infer(X[start:start + batch_size], out[start:start + batch_size])
        return out
    with model._lock:      # layer-by-layer: shared layer buffers and train/eval mode
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(X), batch_size):
                model._infer(X[start:start + batch_size], out[start:start + batch_size])
        finally:
            model.train(was_training)
    return out


def _evaluate(model, X, y, loss, batch_size=1024, sample_weight=None):
    pred = _predict(model, X, batch_size)
    if sample_weight is None:
        logs = {"loss": loss.forward(pred, y, model.backend)}
    else:       # Keras: sum(w l) over the set / its rows
        logs = {"loss": loss.forward(pred, y, model.backend, sample_weight, float(len(X)))}
    if loss.classification:
        logs["accuracy"] = loss.correct(pred, y) / len(X)
    return logs


def evaluate(model, X, y, loss=None, batch_size=1024, sample_weight=None):
    """{"loss": mean loss, "accuracy": ... (classification)} on X, y in eval mode.

    loss defaults to the one of the last ``fit``. Labels are encoded through
    ``model.classes_`` when fit encoded them. sample_weight (N,): the loss is
    sum(w l) / N, as fit's (Keras); accuracy stays unweighted.
    """
    loss = get_loss(loss if loss is not None else model.loss)
    X, y = _check_xy(model, X, _encode_labels(model, y, loss, False), loss)
    w = None if sample_weight is None else check_sample_weight(sample_weight, len(X))
    return _evaluate(model, X, y, loss, check_int(batch_size, "batch_size", 1), w)


def predict(model, X, batch_size=1024):
    """Model outputs (logits for classifiers) for X (N, IN), in eval mode (no dropout).

    Returns a new (N, OUT) float32 array owned by the caller.
    """
    X = check_X(as_rows(model, X))
    check_features(model, X)
    return _predict(model, X, check_int(batch_size, "batch_size", 1))


def predict_proba(model, X, batch_size=1024):
    """Class probabilities: softmax of the outputs (N, C) for several outputs,
    sigmoid (N, 1) for one output; outputs of a final Softmax/Sigmoid layer are
    returned as they are."""
    out = predict(model, X, batch_size)
    if type(model.layers[-1]).__name__ in ("Softmax", "Sigmoid"):
        return out
    probs = np.empty_like(out)
    if out.shape[1] == 1:
        model.backend.sigmoid_forward(probs, out)
    else:
        model.backend.softmax_forward(probs, out)
    return probs


def predict_classes(model, X, batch_size=1024):
    """Predicted classes: argmax of the outputs (several outputs) or output > 0
    (one output: a logit), decoded through ``model.classes_`` when fit encoded
    the labels (strings come back as strings), else class indices (int64)."""
    out = predict(model, X, batch_size)
    if out.shape[1] == 1:
        threshold = 0.5 if type(model.layers[-1]).__name__ in ("Softmax", "Sigmoid") else 0.0
        idx = (out[:, 0] > threshold).astype(np.int64)
    else:
        idx = out.argmax(axis=1).astype(np.int64)
    classes = getattr(model, "classes_", None)
    return idx if classes is None else classes[idx]


class Trainable:
    """What a model gets for being trainable: ``fit``, ``evaluate``, ``predict``,
    ``predict_proba`` and ``predict_classes`` (the functions of this module, as
    methods). ``classes_`` is the label encoder fit sets (None: labels are
    class indices)."""
    classes_ = None
    fit = fit
    evaluate = evaluate
    predict = predict
    predict_proba = predict_proba
    predict_classes = predict_classes
