"""Shared by the runtime kernel tests: run a graph through the compiled runtime and the reference
interpreter and compare, random test data, and forcing the batch-split threading."""
import numpy as np

from graphc import runtime
from graphc.interpreter import evaluate

RNG = np.random.default_rng(7)


def run_both(fetches, feeds, state=None, run_key=5, rtol=2e-5, atol=1e-5):
    g = fetches[0].graph
    fn = [f.node for f in fetches]
    fv = {k.node: v for k, v in feeds.items()}
    exe = runtime.compile(g, fn, list(fv))
    out, upd = exe.run(fv, dict(state or {}), run_key)
    ref = evaluate(g, fn, fv, dict(state or {}), run_key=run_key)
    for a, b, f in zip(out, ref.values, fetches):
        assert a.dtype == b.dtype, (f, a.dtype, b.dtype)
        assert a.shape == b.shape, (f, a.shape, b.shape)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=str(f))
        else:
            np.testing.assert_array_equal(a, b, err_msg=str(f))
    return exe, out, upd


def data(shape, dtype="float32", lo=-2.0, hi=2.0):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return RNG.uniform(lo, hi, shape).astype(dt)
    if dt.kind == "b":
        return RNG.random(shape) > 0.5
    return RNG.integers(-5, 6, shape).astype(dt)


def split_into(monkeypatch, configure, threads):
    # batch-split kernels cut into `threads` chunks however small the batch (1: no split)
    from graphc.runtime import threads as threads_mod
    configure(threads=threads)
    monkeypatch.setattr(threads_mod, "SPLIT_MIN_WORK", 1)


# a script prelude: a compile child this process starts fails at once (the parent's compiles work)
FAILING_COMPILE_CHILD = r"""
import sys
from graphc.runtime import cache
cache.CHILD_COMMAND = [sys.executable, "-c", "import sys; sys.stdin.buffer.read(); sys.exit(1)"]
"""
