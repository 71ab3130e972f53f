"""Keras-style training callbacks: Callback, History, EarlyStopping.

``fit`` calls ``on_train_begin(logs)``, then per epoch ``on_epoch_begin(epoch,
logs)`` and ``on_epoch_end(epoch, logs)`` with ``logs`` such as
``{"loss": 0.12, "accuracy": 0.97, "val_loss": 0.15, "val_accuracy": 0.96}``,
then ``on_train_end(logs)``. A callback stops training by setting
``self.model.stop_training = True``.
"""
import math
import warnings

import numpy as np

__all__ = ["Callback", "History", "EarlyStopping", "TerminateOnNaN"]


class Callback:
    """Base class; override the hooks you need. ``self.model`` is set by fit."""
    model = None

    def set_model(self, model):
        self.model = model

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
    """What ``fit`` returns: ``history.history`` maps each log key to a list with
    one value per epoch ("loss", "val_loss", "accuracy", ...); ``history.epoch``
    lists the epoch numbers (0-based)."""

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
