"""Per-epoch output of ``fastnn train``: a progress bar redrawn in place on a
terminal, one plain line per epoch when the output is piped."""
import sys
import time

import fastnn as fnn


class Progress(fnn.Callback):
    """A training callback printing the progress of `epochs` epochs of `steps`
    batches each to `stream` (default standard output)."""

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
