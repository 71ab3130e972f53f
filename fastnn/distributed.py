"""Data-parallel training over MPI (mpi4py): ``model.fit(..., distributed=MPI())``.

Run the same script on every rank, e.g. ``mpiexec -n 4 python train.py``::

    import fastnn as fnn
    from fastnn.distributed import MPI
    model = fnn.Sequential(fnn.Linear(784, 256), fnn.ReLU(), fnn.Linear(256, 10), seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="adam", batch_size=256,
              distributed=MPI())          # batch_size: the GLOBAL batch

What one step does (:meth:`MPI._epoch`): every rank takes the same global
batch of ``batch_size`` rows (the same shuffled order on every rank: the
epoch seed is rank 0's), computes the loss gradient of its contiguous shard of
it with the C model's ``compute_gradients``, normalised by the denominator of
the WHOLE batch (its rows; the sum of class weights for a weighted
CrossEntropyLoss), sums the flat gradient buffer over the ranks with one
in-place ``Allreduce`` (the buffer is the C model's own memory: no copy), and
applies the optimizer update with ``apply_gradients``. The sum of the shards'
gradients is the gradient of the whole batch, so every rank makes the update
single-process training with batch ``batch_size`` makes, up to the order of the
float32 sums; parameters stay identical on every rank. At the start rank 0's
parameters and buffers are broadcast.

Loss and accuracy are summed over the ranks once per epoch; validation data is
split over the ranks the same way and reduced. Callbacks and the per-epoch
lines run on rank 0 only (``History`` on every rank, with the same logs); rank
0's ``stop_training`` (EarlyStopping...) is broadcast after each epoch, so all
ranks stop together. Save the model from rank 0 (``if MPI().rank == 0``) or in
a callback.

``MPI(sharded=True)``: each rank passes only its own rows. Each epoch, every
rank shuffles its rows (the same seed, its own permutation) and global batch
k is the concatenation over ranks of their local batch k (``batch_size``
split over the ranks as evenly as possible); a rank with fewer rows sits out
(zero gradient) once its rows run out.

Failure: an exception on one rank during a step (a NaN in its shard, say)
is reported to all ranks by a one-integer Allreduce after each step's
gradient Allreduce; every rank then raises :class:`DistributedError` naming
the rank and its error (the failing rank chains its own), so no rank waits
forever. Any other exception that leaves ``fit`` on one rank only (its data
fails fit's checks, a callback raises on rank 0) is printed with the rank and
ends the whole job through ``MPI_Abort``.

Not the same as single-process training: Dropout masks (drawn per row of each
shard) and BatchNorm batch statistics (per shard, as PyTorch DDP without
SyncBatchNorm: each rank's running statistics follow its own shards; save
from rank 0, whose statistics the model file then holds). Frozen parameters
(requires_grad False) and losses, layers or optimizers without the fused C
step are refused. The gradients are reduced after the whole backward: the
backward is one C call, so there is no point at which Python could start a
per-layer ``Iallreduce`` while earlier layers still run (see docs/scaling.md
for what that costs and when it matters).
"""
import numpy as np

__all__ = ["MPI", "DistributedError"]

INSTALL_HINT = 'pip install "fastnn[mpi]" (mpi4py and, without a system MPI, mpich)'


class DistributedError(RuntimeError):
    """A rank failed during a distributed step; raised on every rank alike."""


def _mpi4py():
    try:
        from mpi4py import MPI as mpi
    except ImportError as e:
        raise ImportError(f"fastnn.distributed.MPI needs mpi4py: {INSTALL_HINT} ({e})") from None
    return mpi


def _split(n, parts, k):
    """[lo, hi) of part k when n rows are split into `parts` near-equal parts."""
    q, r = divmod(n, parts)
    lo = k * q + min(k, r)
    return lo, lo + q + (1 if k < r else 0)


class MPI:
    """Data-parallel strategy over an MPI communicator (``comm``: default
    ``MPI.COMM_WORLD``); ``sharded``: each rank passes only its own rows."""

    def __init__(self, comm=None, sharded=False):
        self._mpi = _mpi4py()
        self.comm = self._mpi.COMM_WORLD if comm is None else comm
        self.sharded = bool(sharded)
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._flag = np.zeros(1, np.int64)
        self._sums = np.zeros(4, np.float64)

    def __repr__(self):
        return f"MPI(rank={self.rank}, size={self.size}, sharded={self.sharded})"

    @property
    def is_root(self):
        return self.rank == 0

    # ----------------------------------------------------------- setup
    def _run(self, fit, args):
        """fit(*args) on this rank. A step's error reaches every rank as a
        DistributedError (see _fail); any other error escaping on one rank
        (bad data found before training starts, a callback raising on rank 0)
        would leave the others waiting in a collective, so it is printed with
        the rank and the whole job is aborted (MPI_Abort: every rank exits
        non-zero)."""
        try:
            return fit(*args)
        except DistributedError:
            raise
        except BaseException as e:
            if self.size == 1:       # nobody waits: an ordinary exception
                raise
            import sys
            import time
            import traceback
            # the one-line reason first, then the traceback, then a moment for mpiexec to
            # forward them: MPI_Abort tears the job down, and output still in the
            # launcher's pipes can be lost (a sanitizer run once kept only the first
            # lines of the traceback)
            print(f"fastnn.distributed: rank {self.rank} of {self.size} failed "
                  f"({type(e).__name__}: {e}); aborting all ranks", file=sys.stderr, flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            time.sleep(0.5)
            self.comm.Abort(1)
            raise
    def _bound(self, model, loss, optimizer):
        """The C model bound to (loss, optimizer) for the fused step."""
        cm = model._bound_step(loss, optimizer) if model.fused else None
        if cm is None:
            raise NotImplementedError(
                "distributed fit needs the fused C step: built-in layers, loss and optimizer "
                "on the C backend (model.fused True)")
        return cm

    def _setup(self, model, loss, optimizer, seed):
        """Check the model can train this way, broadcast rank 0's parameters and
        buffers, and return rank 0's epoch seed."""
        self._bound(model, loss, optimizer)
        if optimizer._frozen() is not None:
            raise NotImplementedError("distributed fit does not support frozen parameters "
                                      "(requires_grad False)")
        self.comm.Bcast(model.flat_params, root=0)
        if model.flat_buffers.size:
            self.comm.Bcast(model.flat_buffers, root=0)
        return self.comm.bcast(seed, root=0)

    def _callbacks(self, callbacks, history):
        return callbacks if self.is_root else [history]

    def _sync_decisions(self, model, optimizer):
        """After rank 0's callbacks: its stop_training and its optimizer's scalar
        hyperparameters (a schedule may have changed the lr) on every rank."""
        group = optimizer.param_groups[0]
        hp = {k: v for k, v in group.items() if isinstance(v, (bool, int, float))}
        stop, hp = self.comm.bcast((bool(model.stop_training), hp), root=0)
        model.stop_training = stop
        group.update(hp)

    # ------------------------------------------------------------ steps
    def _denominator(self, loss, yb, wb):
        """The whole batch's denominator of its mean loss, as the C loss takes it
        (fit's Keras rule with sample weights: the rows)."""
        if wb is not None or not loss.classification or not hasattr(loss, "ignore_index"):
            return float(len(yb))
        keep = yb != loss.ignore_index
        if loss.weight is None:
            return float(np.count_nonzero(keep))
        return float(np.asarray(loss.weight, np.float64)[yb[keep]].sum())

    def _fail(self, error, epoch, step):
        """Tell every rank whether a rank failed (one Allreduce); raise if one did."""
        self._flag[0] = self.rank + 1 if error is not None else 0
        self.comm.Allreduce(self._mpi.IN_PLACE, self._flag, op=self._mpi.MAX)
        failed = int(self._flag[0]) - 1
        if failed < 0:
            return
        text = self.comm.bcast(f"{type(error).__name__}: {error}" if error else None,
                               root=failed)
        msg = f"distributed fit: rank {failed} failed at epoch {epoch + 1}, step {step + 1}: {text}"
        if error is not None:
            raise DistributedError(msg) from error
        raise DistributedError(msg)

    def _epoch(self, model, cm, X, y, order, batch_size, loss, optimizer, epoch, w=None):
        """One epoch of synchronous data-parallel steps; returns the (loss sum,
        correct, rows) of the whole epoch over all ranks."""
        mpi, comm, grads = self._mpi, self.comm, cm.grads
        n = len(X)
        if self.sharded:
            local_b = [_split(batch_size, self.size, k) for k in range(self.size)]
            lo_b, hi_b = local_b[self.rank]
            mine = max(hi_b - lo_b, 1)
            nsteps = np.array([-(-n // mine)], np.int64)
            comm.Allreduce(mpi.IN_PLACE, nsteps, op=mpi.MAX)
            nsteps = int(nsteps[0])
        else:
            nsteps = -(-n // batch_size)
        total = correct = 0.0
        seen = 0
        for step in range(nsteps):
            error = None
            value, rows, denom, batch_rows = 0.0, 0, 0.0, 0
            try:
                if self.sharded:
                    size = hi_b - lo_b
                    start = step * size
                    idx = np.arange(start, min(start + size, n)) if order is None else \
                        order[start:start + size]
                    xb, yb = X[idx], y[idx]
                    wb = None if w is None else w[idx]
                    d = np.array([self._denominator(loss, yb, wb), len(yb)])
                    comm.Allreduce(mpi.IN_PLACE, d, op=mpi.SUM)
                    denom, batch_rows = float(d[0]), int(d[1])
                    shard = (xb, yb, wb)
                else:
                    idx = np.arange(step * batch_size, min((step + 1) * batch_size, n)) \
                        if order is None else order[step * batch_size:(step + 1) * batch_size]
                    lo, hi = _split(len(idx), self.size, self.rank)
                    yg = y[idx]
                    wg = None if w is None else w[idx]
                    denom, batch_rows = self._denominator(loss, yg, wg), len(idx)
                    sel = idx[lo:hi]
                    shard = (X[sel], y[sel], None if w is None else w[sel])
                xb, yb, wb = shard
                rows = len(xb)
                if rows:
                    work, out = model._workspace(rows, True)
                    value = cm.compute_gradients(
                        np.ascontiguousarray(xb), np.ascontiguousarray(yb), work,
                        optimizer.step_count, model._counter,
                        None if wb is None else np.ascontiguousarray(wb, np.float32), denom)
                    if loss.classification:
                        correct += loss.correct(out, yb)
                else:
                    grads[...] = 0.0
            except Exception as e:      # reported to every rank below
                error = e
                grads[...] = 0.0
            comm.Allreduce(mpi.IN_PLACE, grads, op=mpi.SUM)
            self._fail(error, epoch, step)
            cm.apply_gradients(optimizer.step_count, model._counter)
            model._counter += 1
            optimizer.step_count += 1
            # value is this shard's part of the batch's mean loss (their sum over the
            # ranks), weighted by the batch's rows as fit weighs each batch mean
            total += value * batch_rows
            seen += rows
        s = self._sums
        s[:] = (total, correct, seen, 0.0)
        comm.Allreduce(mpi.IN_PLACE, s, op=mpi.SUM)
        return float(s[0]), float(s[1]), int(s[2])

    def _evaluate(self, model, Xv, yv, loss, wv, evaluate):
        """Validation split over the ranks (or each rank's own in sharded mode),
        summed: the logs of the whole validation set."""
        if self.sharded:
            xs, ys, ws = Xv, yv, wv
        else:
            lo, hi = _split(len(Xv), self.size, self.rank)
            xs, ys, ws = Xv[lo:hi], yv[lo:hi], None if wv is None else wv[lo:hi]
        s = self._sums
        s[:] = 0.0
        if len(xs):
            logs = evaluate(model, xs, ys, loss, sample_weight=ws)
            d = self._denominator(loss, ys, ws)
            s[:] = (logs["loss"] * d, logs.get("accuracy", 0.0) * len(xs), d, len(xs))
        self.comm.Allreduce(self._mpi.IN_PLACE, s, op=self._mpi.SUM)
        out = {"loss": float(s[0] / s[2]) if s[2] > 0 else 0.0}
        if loss.classification:
            out["accuracy"] = float(s[1] / s[3]) if s[3] > 0 else 0.0
        return out
