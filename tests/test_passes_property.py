"""Property: on random graphs, optimize + run == run, and optimize is idempotent."""
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.errors import ShapeError
from graphc.interpreter import evaluate
from graphc.ops.registry import broadcast_shapes
from graphc.passes import optimize, sample_inputs

UNARY = ["exp", "tanh", "neg", "abs", "sigmoid", "relu", "square", "sqrt", "log", "identity"]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "pow"]
SPECIAL = [0.0, 1.0, 2.0, -1.0, 0.5]  # constants the simplification rules look for


def _compatible(a, b):
    try:
        broadcast_shapes(a.shape, b.shape)
        return True
    except ShapeError:
        return False


def build_random_graph(data):
    """A random graph over two placeholders; returns (graph, fetch nodes, fed nodes)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        y = gc.placeholder("float32", (3,), name="y")
        c = gc.constant(np.linspace(-1.0, 1.0, 9, dtype=np.float32).reshape(3, 3), name="c")
        pool = [x, y, c]
        for _ in range(data.draw(st.integers(2, 14), label="steps")):
            kind = data.draw(st.sampled_from(["unary", "binary", "binary", "const", "reduce",
                                              "matmul", "transpose", "reshape"]), label="kind")
            t = pool[-1 - data.draw(st.integers(0, len(pool) - 1), label="operand")]  # recent first
            if kind == "unary":
                out = getattr(gc, data.draw(st.sampled_from(UNARY)))(t)
            elif kind == "binary":
                others = [u for u in pool if _compatible(t, u)]
                u = data.draw(st.sampled_from(others))
                out = getattr(gc, data.draw(st.sampled_from(BINARY)))(t, u)
            elif kind == "const":
                value = data.draw(st.sampled_from(SPECIAL))
                op = data.draw(st.sampled_from(BINARY))
                out = getattr(gc, op)(t, value) if data.draw(st.booleans()) else getattr(gc, op)(value, t)
            elif kind == "reduce":
                if t.ndim == 0:
                    continue
                axis = data.draw(st.sampled_from([None] + list(range(t.ndim))))
                fn = data.draw(st.sampled_from([gc.reduce_sum, gc.reduce_mean, gc.reduce_max]))
                out = fn(t, axis=axis, keepdims=data.draw(st.booleans()))
            elif kind == "matmul":
                if t.ndim != 2:
                    continue
                right = [u for u in pool if u.ndim == 2 and u.shape[0] == t.shape[1]]
                if not right:
                    continue
                out = gc.matmul(t, data.draw(st.sampled_from(right)))
            elif kind == "transpose":
                if t.ndim != 2:
                    continue
                out = gc.transpose(t)
                if data.draw(st.booleans()):
                    out = gc.transpose(out)
            else:  # reshape
                if t.ndim == 0 or sum(d is None for d in t.shape) > 1:
                    continue
                last = t.shape[-1]
                if last is None:
                    continue
                out = gc.reshape(gc.reshape(t, (-1,)), (-1, last))
            pool.append(out)
        fetched = [pool[-1]]
        if data.draw(st.booleans()):
            fetched.append(data.draw(st.sampled_from(pool[3:] or pool)))
    return g, [f.node for f in fetched], [x.node, y.node]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_optimize_preserves_values_and_is_idempotent(data):
    g, fetches, feeds = build_random_graph(data)
    fv, state = sample_inputs(g, fetches, feeds, seed=data.draw(st.integers(0, 100), label="seed"))
    try:
        with np.errstate(all="ignore"):
            want = evaluate(g, fetches, fv, state).values
    except ValueError:  # a None dimension that does not broadcast at run time: not a valid program
        assume(False)
    opt, rep = optimize(g, fetches, feeds=feeds, debug=True)
    assert not rep.debug_notes
    opt.validate()
    assert opt.num_nodes() <= g.num_nodes()
    with np.errstate(all="ignore"):
        got = evaluate(opt, rep.fetches, {n: v for n, v in fv.items() if n in opt}, state).values
    for a, b in zip(want, got):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0, equal_nan=True)
    again, rep2 = optimize(opt, rep.fetches, feeds=feeds)
    assert rep2.changed == 0, str(rep2)
    assert again.num_nodes() == opt.num_nodes()
    assert sorted(again.nx.edges) == sorted(opt.nx.edges)
