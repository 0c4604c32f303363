"""graphc.distributed: the allreduce op, data-parallel fit on a real two-process MPI job
(``mpiexec -n 2`` from the ``graphc[mpi]`` extra, started as subprocesses with timeouts), failure
handling, and resuming from a checkpoint with the optimizer state."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import graphc as gc
from graphc.ops.registry import get_op

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mpi_worker  # noqa: E402

try:
    import mpi4py  # noqa: F401  (not mpi4py.MPI: that would initialize MPI in the test process)
    _MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    _MPIEXEC = _MPIEXEC if os.path.exists(_MPIEXEC) else shutil.which("mpiexec")
    _SKIP = None if _MPIEXEC else ("no mpiexec next to the Python executable nor on PATH "
                                   "(pip install graphc[mpi])")
except ImportError:
    _MPIEXEC, _SKIP = None, "mpi4py is not installed (pip install graphc[mpi] installs mpi4py and mpich)"
needs_mpi = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


def mpirun(mode, out, timeout=90):
    """``mpiexec -n 2 python tests/mpi_worker.py MODE OUT``: (returncode, output, seconds)."""
    env = dict(os.environ, GRAPHC_TIERED="0", GRAPHC_COMPILE_JOBS="1", GRAPHC_THREADS="1",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    t0 = time.monotonic()
    p = subprocess.run([_MPIEXEC, "-n", "2", sys.executable, os.path.join(HERE, "mpi_worker.py"),
                        mode, str(out)], env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


def weights(out, name, rank):
    with np.load(os.path.join(out, f"{name}_rank{rank}.npz")) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def assert_close(a, b, tol):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=0, atol=tol)


# -- the op, in one process ------------------------------------------------------------------------
def test_allreduce_op_record_shape_rule_and_single_process_identity():
    d = get_op("allreduce")
    assert d.stateful and not d.random and d.grad is not None     # never folded nor merged
    x = gc.placeholder("float32", (None, 3))
    y = gc.distributed.allreduce(x, op="sum")
    assert y.shape == (None, 3) and y.dtype == np.float32
    with pytest.raises(ValueError, match="op must be one of"):
        gc.distributed.allreduce(x, op="max")
    with pytest.raises(gc.DtypeError, match="needs a float tensor"):
        gc.distributed.allreduce(gc.placeholder("int32", (2,)), op="mean")
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    for executor in ("reference", "compiled"):
        with gc.config.override(executor=executor):
            out = gc.Session().run(y, {x: v})
        np.testing.assert_array_equal(out, v)        # the sum over one process is the input
    assert gc.distributed.rank() == 0 and gc.distributed.size() == 1


def test_allreduce_is_not_folded_or_merged_away():
    from graphc import passes
    c = gc.constant([1.0, 2.0])
    a, b = gc.distributed.allreduce(c, op="sum"), gc.distributed.allreduce(c, op="sum")
    out = a + b
    g, report = passes.optimize(gc.get_default_graph(), [out])
    ops = [g.op(n) for n in g.nodes()]
    assert ops.count("allreduce") == 2, ops


def test_allreduce_gradient_is_the_same_reduction():
    x = gc.placeholder("float32", (2,))
    (gx,) = gc.gradients(gc.reduce_sum(gc.distributed.allreduce(x, op="mean") * 3.0), [x])
    g = gx.graph
    assert "allreduce" in {g.op(n) for n in g.ancestors([gx.node])}
    np.testing.assert_allclose(gc.Session().run(gx, {x: np.ones(2, np.float32)}), [3.0, 3.0])


def test_bucketed_gradients_use_one_allreduce_per_step():
    from graphc.layers import Dense
    from graphc.models import Sequential
    m = Sequential([Dense(4, activation="relu", input_dim=3), Dense(2)])
    m.compile("adam", "mse")
    x, y = np.ones((8, 3), np.float32), np.ones((8, 2), np.float32)
    with gc.distributed.DataParallel():
        h = m.fit(x, y, batch_size=3, verbose=0)   # one process: plain fit, partial batch kept
    assert h.params["steps"] == 3 and not [k for k in m._programs if k[0] == "train_dp"]
    prog = m._get_program("train_dp", m._x_list(x), m._y_list(y))   # what mpiexec -n 2 runs
    m._run(prog, [x, y])
    g = m._state.graph
    reduces = [n for n in g.ancestors([prog.step.node]) if g.op(n) == "allreduce"]
    assert len(reduces) == 1
    assert g.spec(reduces[0]).shape == (3 * 4 + 4 + 4 * 2 + 2,)   # every gradient, one buffer


# -- two processes ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if _SKIP:
        pytest.skip(_SKIP)
    out = tmp_path_factory.mktemp("mpi")
    rc, log, _ = mpirun("train", out)
    assert rc == 0, log
    return out


@needs_mpi
def test_data_parallel_matches_single_process_training_on_the_concatenated_batches(trained):
    w0, w1 = weights(trained, "shuffled", 0), weights(trained, "shuffled", 1)
    assert_close(w0, w1, 0.0)                         # identical on both ranks, bit for bit
    # one process, global batches of 2 x 8 in the same shuffled order, rank 0's initial weights
    x, y = mpi_worker.data()
    m = mpi_worker.make_model(5)
    h = m.fit(x, y, batch_size=2 * mpi_worker.BATCH, epochs=mpi_worker.EPOCHS, verbose=0)
    assert_close(m.get_weights(), w0, 1e-5)
    with open(os.path.join(trained, "shuffled_rank0.json")) as f:
        info = json.load(f)
    assert info["steps"] == len(x) // (2 * mpi_worker.BATCH)
    np.testing.assert_allclose(info["history"]["loss"], h.history["loss"], rtol=1e-5)
    # only rank 0 wrote the checkpoints, atomically (no temporary files left)
    assert sorted(f for f in os.listdir(trained) if f.startswith("shuffled_") and f.endswith(".npz")
                  and "rank" not in f) == ["shuffled_1.npz", "shuffled_2.npz"]
    assert not [f for f in os.listdir(trained) if f.endswith(".tmp")]


@needs_mpi
def test_a_stop_asked_for_on_one_rank_stops_all_at_the_epoch_end(trained):
    for r in (0, 1):
        with open(os.path.join(trained, f"stopped_rank{r}.json")) as f:
            assert json.load(f) == 1        # one epoch of five, on both ranks (no mismatched calls)


@needs_mpi
def test_allreduce_op_in_a_session_graph_sums_over_the_ranks(trained):
    for r in (0, 1):
        with open(os.path.join(trained, f"op_rank{r}.json")) as f:
            s, mean, g = json.load(f)
        assert s == [10.0, 12.0, 14.0] and mean == [5.0, 6.0, 7.0]
        assert g == [40.0, 48.0, 56.0]     # d/dv of sum over ranks of sum(s^2): allreduce(2 s)


@needs_mpi
def test_resume_from_a_distributed_checkpoint_gives_the_uninterrupted_weights(trained):
    rc, log, _ = mpirun("resume", trained)
    assert rc == 0, log
    plain = weights(trained, "plain", 0)
    for r in (0, 1):
        assert_close(weights(trained, "resumed", r), plain, 1e-6)


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_the_whole_job_quickly(tmp_path, how):
    rc, log, seconds = mpirun(how, tmp_path, timeout=60)   # a hang raises TimeoutExpired
    assert rc != 0
    assert seconds < 60
    if how == "raise":
        assert "rank 1 of 2 failed in Model.fit: RuntimeError: rank 1 fails on purpose" in log
        assert "MPI_Abort" in log
    else:
        assert "KILLED" in log or "signal 9" in log or "BAD TERMINATION" in log, log


@needs_mpi
def test_mnist_mlp_example_runs_distributed_and_reports_once():
    env = dict(os.environ, GRAPHC_TIERED="0", GRAPHC_THREADS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    example = os.path.join(os.path.dirname(HERE), "examples", "mnist_mlp.py")
    p = subprocess.run([_MPIEXEC, "-n", "2", sys.executable, example, "--distributed", "--epochs", "1",
                        "--verbose", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [l for l in p.stdout.splitlines() if l.startswith("held-out accuracy")]
    assert len(lines) == 1, p.stdout                      # rank 0 only
    assert float(lines[0].split()[2]) > 0.8, lines
