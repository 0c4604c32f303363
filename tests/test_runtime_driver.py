"""Jitted driver segments (runtime/driver.py): runs of numba kernel calls compiled into one function."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc
from graphc import runtime
from graphc.runtime import driver

from kernel_checks import data, run_both

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def jit(monkeypatch, configure):
    # segments on, however short the run of kernel calls
    configure(driver="numba")
    monkeypatch.setattr(driver, "MIN_CALLS", 1)


def _train(steps: int):
    """Three SGD steps of a two-layer softmax classifier through a Session (matmuls, fused
    epilogues, reductions, cross-entropy and its gradient, assigns); the fetched values, the final
    variables and the number of jitted segments in the training step's driver."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 6), name="x")
        lab = gc.placeholder("int32", (None,), name="lab")
        w1 = gc.Variable(np.linspace(-1, 1, 30, dtype=np.float32).reshape(6, 5), name="w1")
        b1 = gc.Variable(np.zeros(5, np.float32), name="b1")
        w2 = gc.Variable(np.linspace(1, -1, 15, dtype=np.float32).reshape(5, 3), name="w2")
        logits = gc.matmul(gc.nn.relu(gc.matmul(x, w1) + b1), w2)
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=logits))
        grads = gc.gradients(loss, [w1, b1, w2])
        train = gc.group(*[gc.assign_sub(v, 0.1 * d) for v, d in zip((w1, b1, w2), grads)])
        acc = gc.reduce_mean(gc.cast(gc.equal(gc.cast(gc.argmax(logits, axis=1), "int32"), lab), "float32"))
        sess = gc.Session()
        sess.run(gc.global_variables_initializer())
        feed = {x: np.linspace(-2, 2, 42, dtype=np.float32).reshape(7, 6),
                lab: np.array([0, 2, 1, 1, 0, 2, 2], np.int32)}
        values = [sess.run([loss, acc, train], feed)[:2] for _ in range(steps)]
        final = sess.run([w1, b1, w2])
    segments = max(b.segments for exe in _executables(sess) for b in exe._bound.values() if b is not None)
    return values, final, segments


def _executables(sess):
    return [p.__self__ for p in sess._programs.values() if hasattr(getattr(p, "__self__", None), "_bound")]


def test_segments_train_as_the_python_driver_does():
    runs = {}
    for on in (True, False):
        with gc.config.override(driver="numba" if on else "python"):
            runs[on] = _train(3)
    (v1, f1, s1), (v0, f0, s0) = runs[True], runs[False]
    assert s1 >= 1 and s0 == 0
    np.testing.assert_allclose(np.array(v1, np.float64), np.array(v0, np.float64), rtol=1e-6, atol=1e-7)
    for a, b in zip(f1, f0):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert v1[0][0] > v1[-1][0]               # the loss went down: the updates were applied


def test_lines_that_read_kernel_results_wait_for_the_segment(jit):
    # tile has no kernel: its numpy reference reads `a`, so the segment computing `a` runs before it
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4), name="x")
        a = gc.exp(x) * 2.0 + 1.0
        b = gc.reduce_sum(a, axis=1)
        c = gc.tile(a, [1, 2])
        fetches = [gc.tanh(c) * 3.0, b + 1.0]
    exe, out, _ = run_both(fetches, {x: data((5, 4))})
    lines = exe.bound.source.splitlines()
    seg = [i for i, ln in enumerate(lines) if ln.strip().startswith("S")]
    tile = [i for i, ln in enumerate(lines) if "run_reference" in str(exe.bound.globals.get(
        ln.split("= ")[-1].split("(")[0], ""))]
    assert len(seg) >= 2 and len(tile) == 1 and seg[0] < tile[0] < seg[-1]


def test_a_slice_of_a_kernel_result_made_while_collecting_is_copied_after_the_segment(jit):
    # the slice is a view line that may run before the segment; the contiguous copy the next kernel
    # needs must not: it would copy the buffer before the kernel that fills it ran (an LSTM's gates)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 6), name="x")
        a = gc.exp(x) * 2.0
        s = a[:, 1:4]                               # row-strided view of a's buffer
        fetches = [gc.tanh(s) + 1.0, gc.reduce_sum(s * 3.0, axis=1)]
    for _ in range(2):                               # the second run would see the first run's data
        exe, out, _ = run_both(fetches, {x: data((5, 6))})
    assert exe.bound.segments >= 1


def test_an_error_raised_in_a_kernel_propagates_out_of_its_segment():
    from numba import njit, types

    @njit(nogil=True)
    def put(a, k):
        if k < 0:
            raise ValueError("negative k")
        a[0] += k
    sig = (types.float64[::1], types.int64)
    put.compile(sig)
    symbol = driver.kernel_symbol(put, sig)
    segment = driver.compile_segment([(symbol, [0, 1]), (symbol, [0, 1])], list(sig))
    a = np.zeros(2)
    segment(a, 3)
    assert a.tolist() == [6.0, 0.0]
    with pytest.raises(ValueError, match="negative k"):
        segment(a, -1)
    assert a.tolist() == [6.0, 0.0]


def test_a_segment_that_does_not_compile_keeps_the_calls_as_python_lines(jit, monkeypatch):
    def fail(calls, argtypes):
        raise RuntimeError("no compiler today")
    monkeypatch.setattr(driver, "compile_segment", fail)
    before = len(driver.FAILURES)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        fetches = [gc.reduce_sum(gc.exp(x) * 2.0, axis=0) + 1.0]
    exe, _, _ = run_both(fetches, {x: data((4, 3))})
    assert exe.bound.segments == 0 and len(driver.FAILURES) > before
    assert "no compiler today" in driver.FAILURES[-1]


def test_kernel_call_refuses_other_argument_types(jit):
    from numba import njit, types
    from numba.core.errors import TypingError
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        fetches = [gc.exp(x) * 2.0 + 1.0]
    exe, _, _ = run_both(fetches, {x: data((4, 3))})
    step = exe.plan.kernel_calls[0].call
    disp, sig = step.warm[0]
    call = driver.kernel_call(driver.kernel_symbol(disp, sig))

    @njit
    def wrong(a):
        call(a, a)
    assert len(sig) == 2 and sig[0] == types.Array(types.float32, 1, "C")
    with pytest.raises(TypingError, match="graphc driver"):
        wrong(np.zeros(3, np.float64))


def test_a_new_process_loads_its_segments_from_the_disk_cache(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, graphc as gc
        from graphc import runtime
        g = gc.Graph()
        with g.as_default():
            x = gc.placeholder("float32", (None, 8), name="x")
            w = gc.constant(np.arange(24, dtype=np.float32).reshape(8, 3) / 10)
            h = gc.nn.relu(gc.matmul(x, w) + 1.0)
            y = gc.reduce_sum(gc.nn.softmax(h) * 3.0, axis=1) + gc.reduce_mean(h, axis=1)
        exe = runtime.compile(g, [y.node], [x.node])
        out = exe.run({x.node: np.linspace(-1, 1, 40, dtype=np.float32).reshape(5, 8)}, {}, 0)[0][0]
        print(exe.bound.segments, np.round(out, 5).tolist())
        print("compiled", runtime.STATS["compiled"])
    """)
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path), GRAPHC_DRIVER="numba",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    first, second = (r.stdout.splitlines() for r in runs)
    assert first[0] == second[0] and first[0].startswith("1 ")
    assert first[1] != "compiled 0" and second[1] == "compiled 0"      # kernels and segment loaded
    cached = [f for f in os.listdir(tmp_path / "kernels" / "__pycache__") if f.startswith("graphc_drv_")]
    assert any(f.endswith(".nbi") for f in cached)
