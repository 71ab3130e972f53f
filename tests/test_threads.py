"""Threads: Python threads, OpenMP thread counts, the GIL, fork.

What the thread count changes (measured here, asserted below): nothing. GEMM
never splits K (each C element is summed by one thread in one order), the
loss kernels reduce in fixed blocks, and the optimizers are elementwise, so
the weights after training are bitwise identical for 1, 2 and 5 threads.
"""
import multiprocessing as mp
import threading

import numpy as np
import pytest

import fastnn as fnn
from fastnn._backend import get_backend

C = get_backend("c")


@pytest.fixture
def restore_threads():
    old = C.get_num_threads()
    yield
    C.set_num_threads(old)


def _data(seed, n=512, d=32, k=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, :k].argmax(1) + (X[:, k] > 1)) % k
    return X, y


def _model(seed, d=32, k=5, backend=None):
    return fnn.Sequential(fnn.Linear(d, 96), fnn.ReLU(), fnn.Dropout(0.1), fnn.Linear(96, 64),
                          fnn.Tanh(), fnn.Linear(64, k), seed=seed, backend=backend)


def _train(seed, epochs=3):
    X, y = _data(seed)
    m = _model(seed)
    m.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(m.parameters(), lr=3e-3),
          epochs=epochs, batch_size=32, verbose=0)
    return m.flat_params.copy()


def test_two_models_in_two_threads_equal_serial():
    serial = [_train(1), _train(2)]
    results = [None, None]
    errors = []

    def work(i):
        try:
            results[i] = _train(i + 1)
        except BaseException as e:   # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    for got, want in zip(results, serial):
        np.testing.assert_array_equal(got, want)


def test_predict_from_8_threads_equals_serial(backend_name):
    """C: one plan, a workspace per thread, in parallel. numpy: layer by layer under
    the model's lock. Both: the model's train/eval mode is left as it was."""
    X, y = _data(3)
    m = _model(3, backend=backend_name)
    m.fit(X, y, loss="cross_entropy", epochs=1, verbose=0)
    assert m.training
    sizes = [1, 7, 32, 33, 100, 512]                 # several workspace sizes at once
    want = {n: m.predict(X[:n]) for n in sizes}
    bad, errors = [], []
    barrier = threading.Barrier(8)

    def work(t):
        try:
            barrier.wait()
            for j in range(200):
                n = sizes[(t + j) % len(sizes)]
                if not np.array_equal(m.predict(X[:n]), want[n]):
                    bad.append((t, j, n))
        except BaseException as e:   # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors and not bad, (errors, bad[:5])
    assert m.training


def test_kernels_from_8_threads_equal_serial():
    """G8: 8 Python threads x 100 GEMM / loss calls on mixed shapes, GIL released."""
    rng = np.random.default_rng(4)
    shapes = [(1, 1, 1), (17, 33, 5), (64, 65, 63), (130, 70, 129)]
    cases = []
    for M, N, K in shapes:
        A = rng.normal(size=(M, K)).astype(np.float32)
        B = rng.normal(size=(K, N)).astype(np.float32)
        out = np.empty((M, N), np.float32)
        C.sgemm(False, False, 1.0, A, B, 0.0, out)
        labels = rng.integers(0, N, M)
        loss = C.cross_entropy_loss(None, out, labels, None, -100)
        cases.append((A, B, out.copy(), labels, loss))
    bad = []

    def work(t):
        for j in range(100):
            A, B, want, labels, loss = cases[(t + j) % len(cases)]
            out = np.empty_like(want)
            C.sgemm(False, False, 1.0, A, B, 0.0, out)
            dpred = np.empty_like(out)
            if not (np.array_equal(out, want) and
                    C.cross_entropy_loss(dpred, out, labels, None, -100) == loss):
                bad.append((t, j))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not bad


def test_thread_counts_1_2_5_equal_and_bitwise_run_to_run(restore_threads):
    """T2/G7: 5 threads is more than the cores of CI (2). Run to run bitwise at a fixed
    count; across counts within tolerance -- and, in fact, bitwise (module doc)."""
    results = {}
    for n in (1, 2, 5):
        C.set_num_threads(n)
        runs = [_train(7, epochs=2) for _ in range(2)]
        np.testing.assert_array_equal(runs[0], runs[1])
        results[n] = runs[0]
    for n in (2, 5):
        np.testing.assert_allclose(results[n], results[1], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(results[n], results[1])


def test_big_gemm_bitwise_across_thread_counts(restore_threads):
    """A GEMM big enough to run in parallel gives the same bits on 1, 2, 3, 5 threads."""
    rng = np.random.default_rng(5)
    A = rng.normal(size=(301, 257)).astype(np.float32)
    B = rng.normal(size=(257, 263)).astype(np.float32)
    outs = []
    for n in (1, 2, 3, 5):
        C.set_num_threads(n)
        out = np.empty((301, 263), np.float32)
        C.sgemm(False, False, 1.0, A, B, 0.0, out)
        outs.append(out)
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_gil_released_during_long_kernel(restore_threads):
    """T4: while one thread is inside a long C call, another Python thread runs.
    A progress check, not a timing assertion: the main thread counts while the
    worker's single sgemm call is in flight."""
    C.set_num_threads(1)
    n = 1024
    rng = np.random.default_rng(6)
    A = rng.normal(size=(n, n)).astype(np.float32)
    B = rng.normal(size=(n, n)).astype(np.float32)
    out = np.empty((n, n), np.float32)
    started, done = threading.Event(), threading.Event()

    def worker():
        started.set()
        for _ in range(4):           # four calls; each releases the GIL for its whole length
            C.sgemm(False, False, 1.0, A, B, 0.0, out)
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    count = 0
    while not done.is_set():
        count += 1
    t.join()
    # holding the GIL would freeze this loop for the call's whole length; with the
    # GIL released it spins millions of times. 1,000 is far below either.
    assert count > 1000, count


def _child_gemm(q):
    rng = np.random.default_rng(8)
    A = rng.normal(size=(300, 300)).astype(np.float32)
    out = np.empty((300, 300), np.float32)
    C.sgemm(False, False, 1.0, A, A, 0.0, out)
    q.put((out, C.get_num_threads()))


def test_fork_after_parallel_kernel(restore_threads):
    """T5: a kernel on 2 threads in the parent, then the same kernel in a 'fork'
    child: correct and within the timeout (libgomp's pool would hang the child
    without csrc/threads.c's pthread_atfork handler)."""
    C.set_num_threads(2)
    rng = np.random.default_rng(8)
    A = rng.normal(size=(300, 300)).astype(np.float32)
    want = np.empty((300, 300), np.float32)
    C.sgemm(False, False, 1.0, A, A, 0.0, want)        # the parent's OpenMP pool is up
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_gemm, args=(q,))
    p.start()
    try:
        got, child_threads = q.get(timeout=60)
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()
    assert p.exitcode == 0
    assert child_threads == 1                     # the child runs serially
    np.testing.assert_array_equal(got, want)       # and K is never split: same bits
