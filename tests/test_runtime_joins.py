"""Joins written in place (``lower._join_in_place``) and strided views of pool buffers made at bind
time (``bound._fixed_view``): the plans' structure, and every run equal to the interpreter."""
import numpy as np
import pytest

import graphc as gc
from graphc import runtime
from graphc.interpreter import evaluate


@pytest.fixture(params=["python", "numba"])
def driver(request):
    with gc.config.override(driver=request.param, tiered=False):
        yield request.param


def _check_runs(exe, g, fetches, feeds, shapes, runs=3, seed=0):
    """Runs the executable on new data each time and compares every fetch with the interpreter
    (a stale buffer or a copy made too early shows up on the second run)."""
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        vals = {f.node: rng.standard_normal(s).astype(np.float32) for f, s in zip(feeds, shapes)}
        got, _ = exe.run(vals, {}, 0)
        want = evaluate(g, [f.node for f in fetches], vals, {}).values
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _step(plan, op):
    return [s for s in plan.steps if s.op == op]


def test_a_stack_of_kernel_outputs_is_their_buffer(driver):
    # four kernels write consecutive slabs of one buffer; the stack is a view of it, no copy
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 5), name="x")
        pieces = [gc.tanh(x * float(t + 1)) for t in range(4)]
        y = gc.stack(pieces, axis=0) * 2.0 + 1.0
    exe = runtime.compile(g, [y.node], [x.node])
    plan = exe.prepare({x.node: (3, 5)})
    join = _step(plan, "stack")[0]
    assert join.storage == "alias" and len(plan.joins[join.node]) == 4
    assert all(p is not None for p in plan.joins[join.node])
    assert "stack_into" not in exe.bound.source and "_c0(G" not in exe.bound.source
    _check_runs(exe, g, [y], [x], [(3, 5)])


def test_a_concat_of_column_slices_with_a_fed_piece(driver):
    # an unrolled RNN's h_t: a column block of each step's output, the first piece a feed; the
    # slices are strided views of the join's buffer, the feed is copied into its slab each run
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 6), name="x")
        h0 = gc.placeholder("float32", (None, 2), name="h0")
        outs = [gc.exp(x * (0.1 * (t + 1))) for t in range(4)]
        hs = gc.concat([h0] + [o[:, 1:3] for o in outs], axis=0)         # (5 * batch, 2)
        w = gc.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
        y = gc.matmul(hs, w)                # BLAS takes the strided view as it is
        z = gc.sigmoid(hs) + 1.0            # an elementwise kernel gets a contiguous copy
        last = outs[-1][:, 0:2] * 3.0       # a strided view of a piece, read by another kernel
    exe = runtime.compile(g, [y.node, z.node, last.node], [x.node, h0.node])
    plan = exe.prepare({x.node: (3, 6), h0.node: (3, 2)})
    join = _step(plan, "concat")[0]
    assert join.storage == "alias" and plan.joins[join.node][0] is None
    assert all(p is not None for p in plan.joins[join.node][1:])
    assert "np.copyto(" in exe.bound.source and "concat_into" not in exe.bound.source
    assert "slice_view" not in exe.bound.source          # the slices are made at bind time
    _check_runs(exe, g, [y, z, last], [x, h0], [(3, 6), (3, 2)])


def test_a_stack_on_an_inner_axis_of_slices(driver):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 8), name="x")
        pieces = [gc.tanh(x + float(t))[:, 2:6] for t in range(3)]
        s = gc.stack(pieces, axis=1)                     # (batch, 3, 4)
        y = gc.reduce_sum(s, axis=0)
    exe = runtime.compile(g, [y.node], [x.node])
    plan = exe.prepare({x.node: (4, 8)})
    join = _step(plan, "stack")[0]
    assert join.storage == "alias"
    assert join.alias[2][1] == 4 * 8 * 4          # the joined axis steps one piece's slab
    _check_runs(exe, g, [y], [x], [(4, 8)])


def test_joins_that_are_not_views_keep_their_copy():
    # mostly fed pieces, pieces of different shapes, a fetched join: each keeps its own buffer
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4), name="x")
        a, b = gc.placeholder("float32", (None, 4), name="a"), gc.placeholder("float32", (None, 4), name="b")
        mostly_fed = gc.concat([a, b, gc.exp(x)], axis=0) * 2.0
        uneven = gc.concat([gc.exp(x), gc.tanh(x)[:, :2]], axis=1) * 2.0
        fetched = gc.stack([gc.exp(x), gc.tanh(x)], axis=0)
    with gc.config.override(tiered=False):
        exe = runtime.compile(g, [mostly_fed.node, uneven.node, fetched.node], [x.node, a.node, b.node])
        plan = exe.prepare({x.node: (3, 4), a.node: (3, 4), b.node: (3, 4)})
    assert plan.joins == {}
    assert all(s.storage != "alias" for s in plan.steps)
    _check_runs(exe, g, [mostly_fed, uneven, fetched], [x, a, b], [(3, 4)] * 3)


def test_join_buffers_are_reused_after_their_last_use():
    # the pieces' buffer lives from the first piece to the join's last reader, then is reused
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 16), name="x")
        y = gc.reduce_sum(gc.stack([gc.exp(x * float(t)) for t in range(4)], axis=0), axis=0)
        for _ in range(3):
            y = gc.tanh(y) * 1.5
    with gc.config.override(tiered=False):
        exe = runtime.compile(g, [y.node], [x.node])
        plan = exe.prepare({x.node: (8, 16)})
    assert plan.joins and plan.peak_bytes < plan.naive_bytes
    assert "+" in str(plan)         # the pieces at their offsets in the join's buffer
    _check_runs(exe, g, [y], [x], [(8, 16)])


def test_column_sums_read_a_stack_of_column_blocks_where_it_lies(driver):
    # the row-LSTM's bias gradient: a sum over (steps, batch) of a stack of column blocks of each
    # step's buffer; the kernel takes the block with its row pitch (InRows), no contiguous copy
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 6), name="x")
        s = gc.stack([gc.tanh(x * float(t + 1))[:, :4] for t in range(3)], axis=0)   # (3, batch, 4)
        total = gc.reduce_sum(s, axis=[0, 1]) * 2.0
        mean = gc.reduce_mean(s, axis=[0, 1]) + 1.0
    exe = runtime.compile(g, [total.node, mean.node], [x.node])
    plan = exe.prepare({x.node: (5, 6)})
    join = _step(plan, "stack")[0]
    assert join.storage == "alias" and join.alias[2][1:] == (6 * 4, 4)    # rows 6 apart
    names = {k for k, v in exe.bound.globals.items() if getattr(v, "__name__", "") == "sum_rows"}
    sums = [ln for ln in exe.bound.source.splitlines() if ln.strip().split("(")[0] in names]
    assert not any("_c" in ln for ln in sums), sums       # (numba: in a segment, or not copied)
    assert len(sums) == (2 if driver == "python" else 0)     # a copy would keep it out of a segment
    _check_runs(exe, g, [total, mean], [x], [(5, 6)])


def test_rows_view_finds_the_row_pitch_or_declines():
    from graphc.runtime.bound import _rows_view
    buf = np.arange(6 * 10, dtype=np.float32).reshape(6, 10)
    flat, ld = _rows_view(buf[:, 2:6], 6, 4)                   # a column block: rows 10 apart
    assert ld == 10 and flat.flags.c_contiguous and flat.size == 5 * 10 + 4
    assert np.shares_memory(flat, buf) and flat[0] == buf[0, 2] and flat[-1] == buf[5, 5]
    got = np.stack([flat[r * ld:r * ld + 4] for r in range(6)])
    np.testing.assert_array_equal(got, buf[:, 2:6])
    stacked = buf.reshape(3, 2, 10)[:, :, :4]                  # (3, 2, 4) slabs: one pitch for 6 rows
    assert _rows_view(stacked, 6, 4)[1] == 10
    assert _rows_view(buf, 6, 10)[1] == 10                     # contiguous: ld == cols
    assert _rows_view(buf[2:3, 1:5], 1, 4)[1] == 4             # one row
    assert _rows_view(buf[:, ::2], 6, 5) is None               # columns not contiguous
    assert _rows_view(buf[::-1], 6, 10) is None                # rows going backwards
    assert _rows_view(buf[:, :4].T, 4, 6) is None              # a transpose: no such view
    assert _rows_view(buf.reshape(3, 2, 10)[:, :, :4].transpose(1, 0, 2), 6, 4) is None
