"""Divergence, killed saves, determinism.

* divergence: lr=1e6 -> FloatingPointError naming epoch and step at the first
  non-finite loss; with TerminateOnNaN (Keras) or a callback declaring
  ``handles_nonfinite`` the callback decides instead.
* a subprocess saving a ~50 MB model is SIGKILLed at random moments: the
  previous file always loads and equals the last complete save; the next
  save clears the temporary files the killed process left.
* same seed, data and thread count -> bitwise-identical weights (SHA-256),
  in one process and in two fresh processes.
"""
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import fastnn as fnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILLS = int(os.environ.get("FASTNN_TEST_KILLS", "5"))


# ----------------------------------------------------------------- divergence
def _diverging():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = np.arange(64) % 3
    m = fnn.Sequential(fnn.Linear(4, 8), fnn.ReLU(), fnn.Linear(8, 3), seed=0)
    return m, X, y, fnn.SGD(m.parameters(), lr=1e6)


class Recorder(fnn.Callback):
    """Sees every batch loss; declares that it handles non-finite losses (keeps going)."""
    handles_nonfinite = True

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append((self.epoch, batch, logs["loss"]))


def _first_nonfinite():
    m, X, y, opt = _diverging()
    rec = Recorder()
    m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, batch_size=8, shuffle=False,
          callbacks=[rec], verbose=0)
    return next((e, b) for e, b, v in rec.losses if not np.isfinite(v)), rec


def test_divergence_raises_at_the_first_nonfinite_step():
    (epoch, step), rec = _first_nonfinite()
    assert len(rec.losses) == 3 * 8            # "ignore": the callback let all epochs run
    m, X, y, opt = _diverging()
    with pytest.raises(FloatingPointError,
                       match=f"at epoch {epoch + 1}, step {step + 1}: training diverged"):
        m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1000, batch_size=8,
              shuffle=False, verbose=0)
    assert opt.step_count == epoch * 8 + step + 1      # stopped at that very step


def test_terminate_on_nan_stops_at_once_and_names_the_step():
    (epoch, step), _ = _first_nonfinite()
    m, X, y, opt = _diverging()
    cb = fnn.TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match=f"epoch {epoch + 1}, step {step + 1}"):
        h = m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1000, batch_size=8,
                  shuffle=False, callbacks=[cb], verbose=0)
    assert (cb.stopped_epoch, cb.stopped_step) == (epoch, step)
    assert opt.step_count == epoch * 8 + step + 1
    assert len(h.epoch) == epoch + 1 and not np.isfinite(h.history["loss"][-1])


def test_terminate_on_nan_is_silent_when_training_converges():
    m, X, y, _ = _diverging()
    cb = fnn.TerminateOnNaN()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = m.fit(X, y, loss="cross_entropy", epochs=3, callbacks=[cb], verbose=0)
    assert cb.stopped_epoch is None and len(h.epoch) == 3


def test_keras_on_batch_end_alias_and_stop_mid_epoch():
    seen = []

    class Old(fnn.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(batch)
            if batch == 2:
                self.model.stop_training = True

    m, X, y, _ = _diverging()
    h = m.fit(X, y, loss="cross_entropy", epochs=5, batch_size=8, callbacks=[Old()], verbose=0)
    assert seen == [0, 1, 2] and len(h.epoch) == 1


# --------------------------------------------------------------- killed saves
SAVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import fastnn as fnn
    path, start = sys.argv[1], int(sys.argv[2])
    m = fnn.Sequential(fnn.Linear(3500, 3500, bias=False), seed=0, backend="numpy")
    k = start
    while True:
        m.flat_params[...] = k
        m.save(path)
        print(k, flush=True)
        k += 1
""")


def _temps(directory):
    return [f for f in os.listdir(directory) if ".fnn-tmp-" in f]


def test_sigkill_during_save_keeps_previous_file(tmp_path):
    """KILLS (default 5, FASTNN_TEST_KILLS) SIGKILLs at random moments of a
    49 MB save loop. After each: the file loads and holds the last complete save
    (or the one whose rename had just happened when the kill came)."""
    path = tmp_path / "big.fnn"
    script = tmp_path / "saver.py"
    script.write_text(SAVER.format(root=ROOT))
    rng = np.random.default_rng(int(os.environ.get("FASTNN_TEST_SEED", "0")))
    last, strays = -1, 0
    for kill in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(last + 1)],
                                stdout=subprocess.PIPE, text=True)
        try:
            first = int(proc.stdout.readline())       # one complete save of this run
            time.sleep(rng.uniform(0.0, 0.6))          # then a random moment of the next
            proc.send_signal(signal.SIGKILL)
            rest = proc.stdout.read().split()
        finally:
            proc.kill()
            proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        done = int(rest[-1]) if rest else first
        loaded = fnn.load(path, backend="numpy")
        value = loaded.flat_params[0]
        assert value in (done, done + 1), (value, done)      # +1: killed after the rename
        assert np.all(loaded.flat_params == value)
        strays += len(_temps(tmp_path))
        last = int(value)
    # the next save to the target removes what the killed writers left behind
    loaded.save(path)
    assert _temps(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["big.fnn", "saver.py"]
    print(f"{KILLS} kills survived, {strays} stray temp files seen and cleared")


def test_save_leaves_temp_files_of_live_processes_alone(tmp_path):
    """A concurrent writer's temp file (its pid is alive) is not removed."""
    m = fnn.Sequential(fnn.Linear(2, 2), seed=0)
    live = tmp_path / f".m.fnn.fnn-tmp-{os.getpid()}-abcd1234"
    dead_pid = 2**22 + 12345                      # above Linux's default pid_max
    dead = tmp_path / f".m.fnn.fnn-tmp-{dead_pid}-abcd1234"
    other = tmp_path / f".n.fnn.fnn-tmp-{dead_pid}-abcd1234"   # another target's
    for f in (live, dead, other):
        f.write_bytes(b"partial")
    m.save(tmp_path / "m.fnn")
    assert live.exists() and other.exists() and not dead.exists()


# ---------------------------------------------------------------- determinism
TRAIN = textwrap.dedent("""
    import hashlib, sys
    sys.path.insert(0, {root!r})
    import numpy as np
    import fastnn as fnn
    fnn.set_num_threads({threads})
    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, 20)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    m = fnn.Sequential(fnn.Linear(20, 64), fnn.GELU(), fnn.Dropout(0.2), fnn.Linear(64, 3),
                       seed=123)
    m.fit(X, y, loss="cross_entropy", optimizer=fnn.AdamW(m.parameters()), epochs=2,
          batch_size=32, verbose=0)
    print(hashlib.sha256(m.flat_params.tobytes()).hexdigest())
""")


def _digest_here(threads):
    ns = {}
    code = TRAIN.format(root=ROOT, threads=threads).replace("print(", "RESULT = (")
    old = fnn.get_num_threads()
    try:
        exec(compile(code, "train", "exec"), ns)
    finally:
        fnn.set_num_threads(old)
    return ns["RESULT"]


def _digest_fresh(threads, tmp_path):
    script = tmp_path / f"train{threads}.py"
    script.write_text(TRAIN.format(root=ROOT, threads=threads))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_same_weights_across_runs_and_processes(threads, tmp_path):
    here = [_digest_here(threads) for _ in range(2)]
    fresh = [_digest_fresh(threads, tmp_path) for _ in range(2)]
    assert len(set(here + fresh)) == 1, (here, fresh)


def test_thread_count_does_not_change_the_weights(tmp_path):
    """Documented in test_threads.py: GEMM never splits K, losses use fixed blocks."""
    assert _digest_here(1) == _digest_here(2) == _digest_here(5)


def test_digest_is_sha256_of_the_flat_params():
    m = fnn.Sequential(fnn.Linear(3, 2), seed=4)
    assert hashlib.sha256(m.flat_params.tobytes()).hexdigest() == \
        hashlib.sha256(fnn.Sequential(fnn.Linear(3, 2), seed=4).flat_params.tobytes()).hexdigest()
