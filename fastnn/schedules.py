"""Learning-rate schedules (PyTorch names, defaults and formulas).

A schedule wraps an optimizer and rewrites ``optimizer.lr`` once per epoch.
Use it either way:

* the explicit loop, PyTorch style: call ``sched.step()`` after each epoch
  (``sched.step(val_loss)`` for :class:`ReduceLROnPlateau`)::

      opt = fnn.SGD(model.parameters(), lr=0.1)
      sched = fnn.StepLR(opt, step_size=10, gamma=0.5)
      for epoch in range(30):
          for xb, yb in fnn.batches(X, y, 32, seed=epoch):
              model.train_step(xb, yb, loss_fn, opt)
          sched.step()

* in ``fit``, Keras style: every schedule is a :class:`~fastnn.Callback`
  that steps at the end of each epoch, so pass it in ``callbacks``, with
  the same optimizer instance in ``optimizer``::

      model.fit(X, y, optimizer=opt, epochs=30, callbacks=[fnn.StepLR(opt, 10, 0.5)])

  ``history.history["lr"]`` then records the learning rate each epoch
  trained with.

Notation: e = ``last_epoch``, the number of ``step()`` calls so far (0 right
after construction, when the optimizer's lr is left unchanged), lr0 = the
optimizer's lr at construction (``base_lr``). The epoch-based schedules use
PyTorch's closed forms; PyTorch's own ``step()`` computes the same values
recursively from the current lr, so they agree to rounding as long as
nothing else changes the lr.
"""
import math

from .callbacks import Callback
from .checks import is_int
from .optim import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


class LRScheduler(Callback):
    """Base class: ``step()`` advances ``last_epoch`` and sets ``optimizer.lr``
    to ``get_lr()``; as a fit callback it steps at each epoch end.

    Subclasses define ``get_lr()``, the lr for epoch ``self.last_epoch``.
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs a fastnn optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0
        self._last_lr = [self.base_lr]

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        """End of an epoch: e ← e + 1, optimizer.lr ← schedule(e)."""
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()
        self._last_lr = [self.optimizer.lr]

    def get_last_lr(self):
        """[lr] last set by this scheduler (a list, as PyTorch: one entry per group)."""
        return list(self._last_lr)

    def state_dict(self):
        """The scheduler's state (everything but the optimizer)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "model")}

    def load_state_dict(self, state):
        self.__dict__.update(state)

    # ------------------------------------------------------------ fit hooks
    def on_train_begin(self, logs=None):
        used = getattr(self.model, "optimizer", None)
        if used is not None and used is not self.optimizer:
            raise ValueError(f"{type(self).__name__} was created for another optimizer than "
                             "the one fit uses; pass that same optimizer instance to "
                             "fit(optimizer=...)")

    def on_epoch_end(self, epoch, logs=None):
        self.step()

    def __repr__(self):
        skip = ("optimizer", "model", "_last_lr", "base_lr", "last_epoch")
        args = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()
                         if k not in skip and not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _positive_int(name, value):
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class StepLR(LRScheduler):
    """Decay the lr by ``gamma`` every ``step_size`` epochs:

        lr(e) = lr0 · gamma^⌊e / step_size⌋

    Args:
        optimizer: the fastnn optimizer whose ``lr`` is scheduled.
        step_size (int): epochs between decays.
        gamma (float): multiplicative factor (default 0.1).

    Example::

        sched = StepLR(opt, step_size=30, gamma=0.1)  # lr0, x0.1 after 30 epochs, ...
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def get_lr(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """Decay the lr by ``gamma`` every epoch:  lr(e) = lr0 · gamma^e.

    Args:
        optimizer: the fastnn optimizer whose ``lr`` is scheduled.
        gamma (float): multiplicative factor per epoch.
    """

    def __init__(self, optimizer, gamma):
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def get_lr(self):
        return self.base_lr * self.gamma ** self.last_epoch


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing (Loshchilov & Hutter 2017, SGDR without restarts):

        lr(e) = eta_min + (lr0 - eta_min) · (1 + cos(π · e / T_max)) / 2

    lr0 at e = 0, eta_min at e = T_max; past T_max the cosine continues (the
    lr rises again over the next T_max epochs), as in PyTorch.

    Args:
        optimizer: the fastnn optimizer whose ``lr`` is scheduled.
        T_max (int): epochs of one half cosine period.
        eta_min (float): the minimum lr (default 0).
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def get_lr(self):
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + cos) / 2.0


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric stops improving (PyTorch semantics).

    Each ``step(metric)`` compares the metric with the best seen so far. It is
    an improvement when (mode "min", threshold_mode "rel")
    ``metric < best · (1 - threshold)``; "max" uses ``metric > best · (1 +
    threshold)``, and threshold_mode "abs" ``best ∓ threshold``. After more
    than ``patience`` epochs without improvement:

        lr ← max(lr · factor, min_lr)   (skipped when the change is <= eps)

    then ``cooldown`` epochs pass before bad epochs are counted again.

    Args:
        optimizer: the fastnn optimizer whose ``lr`` is scheduled.
        mode: "min" (a loss) or "max" (an accuracy).
        factor (float < 1), patience (int), threshold, threshold_mode
            ("rel" or "abs"), cooldown (int), min_lr, eps: as PyTorch.
        monitor: the log key read when used as a ``fit`` callback (fastnn's
            addition; default "val_loss": pass validation data, or monitor="loss").

    Example::

        sched = ReduceLROnPlateau(opt, factor=0.5, patience=3)
        for epoch in range(50):
            train_one_epoch()
            sched.step(model.evaluate(X_val, y_val)["loss"])
    """

    def __init__(self, optimizer=None, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8, monitor="val_loss"):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"fastnn.ReduceLROnPlateau is PyTorch's scheduler and needs the "
                            f"optimizer first, got {type(optimizer).__name__}; Keras's "
                            "callback ReduceLROnPlateau(monitor='val_loss', factor=0.1, ...) "
                            "is fastnn.callbacks.ReduceLROnPlateau")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not factor < 1.0:
            raise ValueError("Factor should be < 1.0.")
        if not is_int(patience) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        self.mode, self.factor, self.patience = mode, float(factor), patience
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.min_lr, self.eps = int(cooldown), float(min_lr), float(eps)
        self.monitor = monitor
        super().__init__(optimizer)
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def is_better(self, a, best):
        """True when metric value `a` improves on `best` by more than the threshold."""
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                        else best - self.threshold)
        return a > (best * (1.0 + self.threshold) if self.threshold_mode == "rel"
                    else best + self.threshold)

    def step(self, metrics):
        """End of an epoch with the monitored value `metrics` (a number)."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [self.optimizer.lr]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"ReduceLROnPlateau monitors {self.monitor!r} but the logs only "
                             f"have {', '.join(logs)}; pass validation_data or "
                             "validation_split, or monitor='loss'")
        self.step(logs[self.monitor])
