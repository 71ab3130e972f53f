"""Data-parallel fit over MPI (fastnn/distributed.py, run through examples/mpi_train.py with
mpiexec -n 2 and -n 4, oversubscribing this machine's cores) and a hyperparameter search
on joblib and on a Dask LocalCluster. Every MPI run is bounded by a timeout: a hang fails."""
import os
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastnn as fnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "mpi_train.py")
sys.path.insert(0, os.path.join(ROOT, "examples"))


@pytest.fixture(autouse=True)
def _restore_threads():
    """Tests here pin fastnn to 1 thread, and Dask's LocalCluster sets OMP_NUM_THREADS
    and friends in this process's environment; later test files expect neither."""
    old, env = fnn.get_num_threads(), dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(env)
    fnn.set_num_threads(old)


def _mpiexec():
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install 'fastnn[mpi]')")
    exe = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    exe = exe if os.path.exists(exe) else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec (pip install mpich)")
    return exe


def _run(n, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    return subprocess.run([_mpiexec(), "-n", str(n), sys.executable, EXAMPLE, *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def _single_process(epochs=3):
    import mpi_train
    fnn.set_num_threads(1)
    X, y = mpi_train.data()
    Xv, yv = mpi_train.data(n=96, seed=1)
    m = mpi_train.model()
    h = m.fit(X, y, loss="cross_entropy", optimizer=fnn.Adam(m.parameters(), lr=1e-2),
              epochs=epochs, batch_size=64, seed=5, validation_data=(Xv, yv), verbose=0)
    return m.flat_params.copy(), h.history


def _rank_lines(out):
    return re.findall(r"rank (\d+)/(\d+): epochs (\d+) loss ([0-9.]+) val_loss ([0-9.]+) "
                      r"val_accuracy ([0-9.]+) param_sum (\S+)", out)


@pytest.mark.parametrize("n", [2, 4])
def test_params_equal_single_process_training(tmp_path, n):
    res = _run(n, "--out", str(tmp_path / "p.npy"))
    assert res.returncode == 0, res.stderr
    lines = _rank_lines(res.stdout)
    assert len(lines) == n
    assert len({line[2:] for line in lines}) == 1      # every rank: the same logs and params
    params, hist = _single_process()
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), params, rtol=0, atol=1e-5)
    loss, val_loss = float(lines[0][3]), float(lines[0][4])
    assert loss == pytest.approx(hist["loss"][-1], abs=1e-5)
    assert val_loss == pytest.approx(hist["val_loss"][-1], abs=1e-5)
    # only rank 0 prints the epoch lines
    assert res.stdout.count("Epoch 3/3") == 1


def test_two_runs_are_bitwise_identical(tmp_path):
    for k in range(2):
        res = _run(2, "--out", str(tmp_path / f"p{k}.npy"))
        assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "p0.npy"), np.load(tmp_path / "p1.npy"))


def test_sharded_data_keeps_ranks_in_step(tmp_path):
    res = _run(2, "--sharded", "--out", str(tmp_path / "p.npy"))
    assert res.returncode == 0, res.stderr
    lines = _rank_lines(res.stdout)
    assert len(lines) == 2 and lines[0][2:] == lines[1][2:]
    assert float(lines[0][5]) > 0.6          # it learned


def test_a_failing_step_stops_every_rank_with_its_error():
    res = _run(3, "--fail-on", "1", timeout=60)
    assert res.returncode != 0
    msg = "rank 1 failed at epoch 1, step 5: MemoryError: injected failure in step 5"
    for r in range(3):                                # raised on each of the 3 ranks
        assert f"rank {r}: distributed fit: {msg}" in res.stderr, res.stderr


def test_bad_data_on_one_rank_aborts_the_job():
    res = _run(2, "--sharded", "--bad-label-on", "1", timeout=60)
    assert res.returncode != 0
    assert "rank 1 of 2 failed (IndexError: target 7 is out of bounds" in res.stderr


def test_refuses_what_it_cannot_distribute():
    pytest.importorskip("mpi4py")
    from fastnn.distributed import MPI
    X = np.zeros((8, 3), np.float32)
    y = np.zeros(8, np.int64)
    m = fnn.Sequential(fnn.Linear(3, 2), seed=0)
    m.fused = False
    with pytest.raises(NotImplementedError, match="fused C step"):
        m.fit(X, y, loss="cross_entropy", epochs=1, verbose=0, distributed=MPI())
    with pytest.raises(TypeError, match="distributed must be"):
        fnn.Sequential(fnn.Linear(3, 2)).fit(X, y, loss="cross_entropy", epochs=1,
                                             distributed="mpi")


def test_one_rank_equals_plain_fit():
    """A 1-rank communicator (the test process itself): the same bits as fit."""
    pytest.importorskip("mpi4py")
    from fastnn.distributed import MPI
    import mpi_train
    X, y = mpi_train.data()
    fnn.set_num_threads(1)
    a, b = mpi_train.model(), mpi_train.model()
    a.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, batch_size=50, seed=1,
          verbose=0)
    b.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, batch_size=50, seed=1,
          verbose=0, distributed=MPI())
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


# ------------------------------------------------------------ search
def _search_data():
    X, y = fnn.datasets.load_digits()
    return X[:400].astype(np.float64), y[:400]


def test_estimators_and_models_pickle():
    skl = pytest.importorskip("fastnn.sklearn")
    pytest.importorskip("sklearn")
    X, y = _search_data()
    est = skl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est.predict_proba(X), again.predict_proba(X))
    m = fnn.Sequential(fnn.Linear(64, 8), fnn.ReLU(), fnn.Linear(8, 10), seed=0)
    opt = fnn.Adam(m.parameters(), lr=1e-3)
    m2, opt2 = pickle.loads(pickle.dumps((m, opt)))
    np.testing.assert_array_equal(m.predict(X[:5].astype(np.float32)),
                                  m2.predict(X[:5].astype(np.float32)))
    assert type(opt2) is fnn.Adam


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_grid_search_on_joblib_processes():
    pytest.importorskip("sklearn")
    from sklearn.model_selection import GridSearchCV
    from fastnn.sklearn import MLPClassifier
    X, y = _search_data()
    grid = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-2]}
    search = GridSearchCV(MLPClassifier(max_iter=100, learning_rate_init=1e-2,
                                        random_state=0), grid, cv=2, n_jobs=2)
    search.fit(X, y)
    assert search.best_score_ > 0.8
    assert len(search.cv_results_["params"]) == 4


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_grid_search_on_a_dask_local_cluster():
    pytest.importorskip("sklearn")
    distributed = pytest.importorskip("dask.distributed")
    import joblib
    from sklearn.model_selection import GridSearchCV
    from fastnn.sklearn import MLPClassifier
    X, y = _search_data()
    grid = {"hidden_layer_sizes": [(16,), (32,)], "learning_rate_init": [3e-3, 1e-2]}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        # each worker process trains with one fastnn thread: no oversubscription
        threads = client.run(lambda: __import__("fastnn").get_num_threads())
        assert set(threads.values()) == {1}, threads
        with joblib.parallel_backend("dask"):
            search = GridSearchCV(MLPClassifier(max_iter=100, random_state=0), grid, cv=2,
                                  n_jobs=-1).fit(X, y)
    assert search.best_score_ > 0.8
    assert len(search.cv_results_["params"]) == 4
