"""Keras-style training callbacks: Callback, History, EarlyStopping, TerminateOnNaN,
ModelCheckpoint, CSVLogger, ReduceLROnPlateau, LearningRateScheduler (Keras's
names, arguments and defaults).

``fit`` calls ``on_train_begin(logs)``, then per epoch ``on_epoch_begin(epoch,
logs)`` and ``on_epoch_end(epoch, logs)`` with ``logs`` such as
``{"loss": 0.12, "accuracy": 0.97, "val_loss": 0.15, "val_accuracy": 0.96}``,
then ``on_train_end(logs)``. A callback stops training by setting
``self.model.stop_training = True``.

Callbacks run between epochs, also when the whole epoch runs in C (fit's
fast path): a callback that changes the learning rate (ReduceLROnPlateau,
LearningRateScheduler, fastnn's schedules) takes effect at the next epoch, the
fused C optimizer being rebound on any hyperparameter change. Only a callback
that needs every batch (``on_train_batch_end``, or ``wants_batches = True``)
makes fit run step by step.

Note: :class:`ReduceLROnPlateau` here is Keras's callback; PyTorch's scheduler
of that name (optimizer first) is ``fastnn.ReduceLROnPlateau``
(fastnn/schedules.py).
"""
import csv
import math
import os
import warnings

import numpy as np

from .checks import is_int, is_real

__all__ = ["Callback", "History", "EarlyStopping", "TerminateOnNaN", "ModelCheckpoint",
           "CSVLogger", "ReduceLROnPlateau", "LearningRateScheduler"]


class Callback:
    """Base class; override the hooks you need. ``self.model`` and ``self.params``
    ({"verbose", "epochs", "steps"}) are set by fit."""
    model = None
    params = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        """After each training step: ``batch`` is the 0-based step in the epoch,
        ``logs = {"loss": float, "size": rows}``. Setting
        ``self.model.stop_training`` here stops at once (Keras)."""
        self.on_batch_end(batch, logs)

    def on_batch_end(self, batch, logs=None):
        """Keras's older name of on_train_batch_end."""


class History(Callback):
    """What ``fit`` returns (and keeps as ``model.history``): ``history.history``
    maps each log key to a list with one value per epoch ("loss", "val_loss",
    "accuracy", "lr", ...); ``history.epoch`` lists the epoch numbers
    (0-based); ``history.params`` is {"verbose", "epochs", "steps"} (steps per
    epoch), as Keras."""

    def __init__(self):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs in a row (at least one; Keras semantics).

    mode: "min", "max" or "auto" (max for names containing "acc", else min).
    restore_best_weights: at the end of training, put back the weights of the
    best epoch. ``stopped_epoch`` and ``best`` are set for inspection.
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0,
                 restore_best_weights=False, mode="auto"):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), abs(min_delta)
        self.restore_best_weights = restore_best_weights
        self.maximize = mode == "max" or (mode == "auto" and "acc" in monitor)

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, None, None
        self.best = -math.inf if self.maximize else math.inf
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r} but the logs only have "
                             f"{', '.join(logs)}; pass validation_data or validation_split, "
                             "or monitor='loss'")
        value = logs[self.monitor]
        better = value > self.best + self.min_delta if self.maximize else \
            value < self.best - self.min_delta
        if better:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = np.copy(self.model.flat_params)
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.flat_params[...] = self.best_weights


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or Inf (Keras's callback).

    With it, ``fit`` does not raise FloatingPointError on a non-finite loss
    (``handles_nonfinite``); this callback stops training right after that
    batch instead, warns (RuntimeWarning) naming the epoch and step (1-based,
    as fit's error), and records them, 0-based, in ``stopped_epoch`` and
    ``stopped_step`` (None if training never diverged). The weights are
    those after the failed step, i.e. usually NaN: restore a checkpoint.
    Write your own callback with ``handles_nonfinite = True`` to decide
    otherwise (e.g. keep going, or lower the learning rate).
    """
    handles_nonfinite = True

    def on_train_begin(self, logs=None):
        self.stopped_epoch = self.stopped_step = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.stopped_epoch, self.stopped_step = self._epoch, batch
            warnings.warn(f"TerminateOnNaN: loss is {loss} at epoch {self._epoch + 1}, "
                          f"step {batch + 1}; training stopped", RuntimeWarning, stacklevel=2)
            self.model.stop_training = True


def _monitor_op(monitor, mode, who):
    """(improved(current, best, min_delta), best start): Keras's rule -- "auto" is
    max for names containing "acc" (or starting with "fmeasure"), else min."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    maximize = mode == "max" or (mode == "auto" and ("acc" in monitor or
                                                     monitor.startswith("fmeasure")))
    if maximize:
        return (lambda a, b, d: a > b + d), -math.inf
    return (lambda a, b, d: a < b - d), math.inf


class ModelCheckpoint(Callback):
    """Save the model (``fastnn.save``, atomic) after each epoch or every
    ``save_freq`` batches -- Keras's callback.

    Args:
        filepath: a path, formatted with ``epoch`` (1-based) and the logs:
            ``"ckpt-{epoch:02d}-{val_loss:.2f}.fnn"``.
        monitor, mode ("auto", "min", "max"): the quantity save_best_only compares.
        verbose: 1 prints a line per save.
        save_best_only: save only when ``monitor`` improved (a warning, and no
            save, when it is not in the logs).
        save_weights_only: write ``model.save_weights`` (an .npz of the
            state_dict) instead of the whole model file.
        save_freq: "epoch", or an integer: save every that many batches (this
            needs batch logs, so fit then runs step by step rather than whole
            epochs in C).
        initial_value_threshold: the starting "best" value (Keras's argument).
    ``best`` holds the best monitored value so far.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        if save_freq != "epoch" and not (is_int(save_freq) and save_freq > 0):
            raise ValueError(f"Unrecognized save_freq: {save_freq!r}; expected 'epoch' or a "
                             "positive integer")
        self.save_freq = save_freq
        self.monitor_op, self.best = _monitor_op(monitor, mode, "ModelCheckpoint")
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        self._batches = 0
        self._epoch = 0

    @property
    def wants_batches(self):
        return self.save_freq != "epoch"

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches % self.save_freq == 0:
            self._save(self._epoch, {k: v for k, v in (logs or {}).items() if k != "size"},
                       batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs or {})

    def _path(self, epoch, logs, batch=None):
        try:
            if batch is None:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f"ModelCheckpoint: failed to format filepath {self.filepath!r}: "
                           f"the logs have no key {e}; they have {', '.join(logs)}") from None

    def _save(self, epoch, logs, batch=None):
        path = self._path(epoch, logs, batch)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available, "
                              "skipping.", stacklevel=2)
                return
            if not self.monitor_op(current, self.best, 0.0):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} "
                      f"to {current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class CSVLogger(Callback):
    """Write one row per epoch (``epoch`` 0-based, then the log keys sorted) to a
    CSV file -- Keras's callback. ``append=True`` appends (the header only when
    the file is empty or new); the file is flushed after every row and closed
    at the end of training."""

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys = self.writer = self.csv_file = None

    def on_train_begin(self, logs=None):
        header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename) as f:
                header = not f.readline()
        self.append_header = header
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self.keys = self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}

        def value(v):
            if isinstance(v, np.ndarray) and v.ndim == 0:
                v = v.item()
            if isinstance(v, str):
                return v
            if isinstance(v, (list, tuple, np.ndarray)):
                return '"[%s]"' % ", ".join(map(str, v))
            return v

        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            sep = self.sep

            class Dialect(csv.excel):
                delimiter = sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, value(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None:
            self.csv_file.close()
        self.csv_file = self.writer = None


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved
    by more than ``min_delta`` for ``patience`` epochs -- Keras's callback and
    rule (lr = max(lr * factor, min_lr), only while lr > min_lr; then
    ``cooldown`` epochs before counting again). It changes the optimizer fit
    uses; the new lr applies from the next epoch (the C step is rebound).
    A missing ``monitor`` warns, as Keras. PyTorch's scheduler of this name is
    ``fastnn.ReduceLROnPlateau`` (fastnn/schedules.py)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected arguments {sorted(kwargs)}")
        if not is_real(factor) or factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.mode, self.min_delta = verbose, mode, float(min_delta)
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self.monitor_op, self.best = _monitor_op(monitor, mode, "ReduceLROnPlateau")
        self.wait = self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self.monitor_op, self.best = _monitor_op(self.monitor, self.mode, "ReduceLROnPlateau")
        self.wait = self.cooldown_counter = 0

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best, self.min_delta):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                opt = self.model.optimizer
                old = float(opt.lr)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    opt.lr = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                              f"rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)``
    (epoch 0-based, lr the current one; a one-argument ``schedule(epoch)`` is
    accepted too, as Keras) -- Keras's callback. The result must be a number
    (ValueError otherwise)."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, got "
                            f"{type(schedule).__name__}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(opt.lr))
        except TypeError:   # the old API: schedule(epoch)
            lr = self.schedule(epoch)
        if isinstance(lr, np.ndarray) and lr.ndim == 0:
            lr = lr.item()
        if not is_real(lr):
            raise ValueError(f'The output of the "schedule" function should be a float. '
                             f"Got: {lr!r}")
        opt.lr = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(lr)}.")
