"""cond, while_loop, scan and map_fn: values against numpy on both executors, shape rules and
errors, captures, one compiled program for every length, and the gradient's saved values.
(Finite-difference checks of their gradients are in tests/test_gradients.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.errors import DtypeError, GraphError, ShapeError
from graphc.ops.control_flow import part

EXECUTORS = ["reference", "compiled"]
RNG = np.random.default_rng(7)


def run(executor, fetches, feed=None):
    return gc.Session(executor=executor).run(fetches, feed)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_scan_cumulative_product_and_structure(executor):
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder("float32", (None, 2), name="xs")
        prod = gc.scan(lambda a, x: a * x, xs, initializer=gc.ones((2,)))
        pair = gc.scan(lambda acc, x: {"s": acc["s"] + x, "n": acc["n"] + 1}, xs,
                       initializer={"s": gc.zeros((2,)), "n": gc.constant(0)})
        first = gc.scan(lambda a, x: a + x, xs, reverse=True)
        sess = gc.Session(g, executor=executor)
        v = RNG.uniform(0.5, 1.5, (5, 2)).astype(np.float32)
        p, d, f = sess.run([prod, pair, first], {xs: v})
    np.testing.assert_allclose(p, np.cumprod(v, axis=0), rtol=1e-6)
    np.testing.assert_allclose(d["s"], np.cumsum(v, axis=0), rtol=1e-6)
    assert d["n"].tolist() == [1, 2, 3, 4, 5] and d["n"].dtype == np.int32
    np.testing.assert_allclose(f, np.cumsum(v[::-1], axis=0)[::-1], rtol=1e-6)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_scan_of_no_steps_keeps_its_shapes(executor):
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder("float32", (None, 3), name="xs")
        h0 = gc.placeholder("float32", (None,), name="h0")
        ys = gc.scan(lambda h, x: gc.tanh(h + gc.reduce_sum(x)), xs, initializer=h0)
        out = gc.Session(g, executor=executor).run(ys, {xs: np.zeros((0, 3), np.float32),
                                                        h0: np.ones(4, np.float32)})
    assert out.shape == (0, 4) and out.dtype == np.float32


@pytest.mark.parametrize("executor", EXECUTORS)
def test_while_loop_values_limits_and_invariants(executor):
    g = gc.Graph()
    with g.as_default():
        n = gc.placeholder("int32", (), name="n")
        i, s = gc.while_loop(lambda i, s: i < n, lambda i, s: (i + 1, s + i), (0, 0))
        capped = gc.while_loop(lambda i: i < 100, lambda i: i + 1, gc.constant(0), maximum_iterations=7)
        grow = gc.while_loop(lambda x: gc.size(x) < 10, lambda x: gc.concat([x, x], 0),
                             gc.ones((1,)), shape_invariants=[(None,)])
        sess = gc.Session(g, executor=executor)
        assert sess.run([i, s], {n: 6}) == [6, 15]
        assert sess.run([i, s], {n: 0}) == [0, 0]
        assert sess.run(capped) == 7
        assert sess.run(grow).shape == (16,)
        assert grow.shape == (None,)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_cond_runs_only_the_taken_branch(executor):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None,), name="x")
        idx = gc.placeholder("int32", (), name="idx")
        # the false branch would fail (index out of range) if it ran
        y = gc.cond(idx < 2, lambda: gc.gather(x, idx) * 2.0, lambda: gc.gather(x, idx + 100))
        sess = gc.Session(g, executor=executor)
        assert sess.run(y, {x: np.arange(3, dtype=np.float32), idx: 1}) == 2.0
        a, b = gc.cond(gc.constant(False), lambda: (x, x * 0.0), lambda: (x * 2.0, x + 1.0))
        va, vb = sess.run([a, b], {x: np.ones(2, np.float32)})
    assert va.tolist() == [2.0, 2.0] and vb.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_map_fn_and_captured_placeholders(executor):
    g = gc.Graph()
    with g.as_default():
        m = gc.placeholder("float32", (None, 3), name="m")
        w = gc.placeholder("float32", (3,), name="w")
        rows = gc.map_fn(lambda r: gc.reduce_sum(r * w), m)
        mv, wv = RNG.normal(size=(4, 3)).astype(np.float32), RNG.normal(size=3).astype(np.float32)
        out = gc.Session(g, executor=executor).run(rows, {m: mv, w: wv})
    np.testing.assert_allclose(out, mv @ wv, rtol=1e-5, atol=1e-6)
    node = rows.op.inputs[0]
    assert node.op.type == "scan" and [t.name for t in node.op.inputs] == ["m", "w"]


def test_one_compiled_program_serves_every_length(monkeypatch):
    import weakref
    from graphc.runtime import kernels_control
    monkeypatch.setattr(kernels_control, "_COMPILED", weakref.WeakKeyDictionary())
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder("float32", (None, None, 4), name="xs")        # (time, batch, features)
        w = RNG.normal(size=(4, 4)).astype(np.float32)
        hs = gc.scan(lambda h, x: gc.tanh(gc.matmul(h, gc.constant(w)) + x), xs,
                     initializer=gc.zeros_like(xs[0]))
        sess = gc.Session(g)
        fn = sess.make_callable(hs, [xs])
        for t_len in (1, 5, 9, 30):
            v = RNG.normal(size=(t_len, 2, 4)).astype(np.float32)
            h, ref = np.zeros((2, 4), np.float32), []
            for t in range(t_len):
                h = np.tanh(h @ w + v[t])
                ref.append(h)
            np.testing.assert_allclose(fn(v), np.stack(ref), rtol=1e-5, atol=1e-6)
    (program,) = sess._programs.values()
    assert program.__self__.bound_shape_sets == 4       # the loop's plan: one per length
    new = [cb for per in kernels_control._COMPILED.values() for cb in per.values()]
    assert len(new) == 1 and new[0].exe.bound_shape_sets == 1   # its body: bound once for all steps


def test_errors_name_the_op_and_the_problem():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        with pytest.raises(ShapeError, match=r"loop variable 0 enters the loop with shape \(3,\).*\(6,\)"):
            gc.while_loop(lambda v: gc.reduce_sum(v) < 5.0, lambda v: gc.concat([v, v], 0), x)
        with pytest.raises(DtypeError, match="loop variable 0 enters the loop as float32.*int32"):
            gc.while_loop(lambda v: gc.reduce_sum(v) < 5.0, lambda v: gc.cast(v, "int32"), x)
        with pytest.raises(ShapeError, match="cond must return one scalar bool"):
            gc.while_loop(lambda v: v > 0.0, lambda v: v - 1.0, x)
        with pytest.raises(ShapeError, match="pred must be a scalar bool"):
            gc.cond(x > 0.0, lambda: x, lambda: -x)
        with pytest.raises(ShapeError, match="result 0 is float32.*int32"):
            gc.cond(gc.constant(True), lambda: x, lambda: gc.cast(x, "int32"))
        with pytest.raises(GraphError, match="different structures"):
            gc.cond(gc.constant(True), lambda: (x, x), lambda: x)
        with pytest.raises(GraphError, match=r"test_control_flow.py:\d+\) draws random numbers"):
            gc.map_fn(lambda r: gc.nn.dropout(r, 0.5), gc.ones((2, 3)))
        with pytest.raises(GraphError, match="belongs to the body of 'map_fn'.*cannot change inside"):
            v = gc.Variable(np.zeros(3, np.float32))
            gc.map_fn(lambda r: gc.assign_add(v, r), gc.ones((2, 3)))
        with pytest.raises(ShapeError, match="elems 0 is a scalar"):
            gc.scan(lambda a, e: a + e, gc.constant(1.0), initializer=gc.constant(0.0))
        with pytest.raises(GraphError, match="fn returned a structure"):
            gc.scan(lambda a, e: (a, a), gc.ones((3,)), initializer=gc.constant(0.0))
        with pytest.raises(TypeError, match="unexpected argument"):
            gc.cond(gc.constant(True), lambda: x, lambda: x, bogus=1)


def test_gradient_saves_step_values_instead_of_recomputing():
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder("float32", (None, 2, 3), name="xs")
        u = gc.Variable(RNG.normal(size=(3, 3)).astype(np.float32), name="u")
        hs = gc.scan(lambda h, x: gc.tanh(gc.matmul(h, u) + x), xs, initializer=gc.zeros((2, 3)))
        loss = gc.reduce_sum(hs * hs)
        (du,) = gc.gradients(loss, [u])
        (du2,) = gc.gradients(loss * 2.0, [u])      # a second gradient reuses the saved values
        init = gc.global_variables_initializer()
    scans = [n for n in g.nodes() if g.op(n) == "scan" and g.users(n)]
    fwd = [n for n in scans if g.attrs(n).get("vjp") is not None]
    assert len(fwd) == 1 and len(scans) == 3    # the forward loop (replaced once) and two backward loops
    vjp = g.attrs(fwd[0])["vjp"]
    back_ops = {vjp.backward.graph.op(n) for n in vjp.backward.graph.nodes()}
    assert "tanh" not in back_ops and vjp.n_saved >= 1      # tanh's result is saved, not recomputed
    sess = gc.Session(g)
    sess.run(init)
    v = RNG.normal(size=(4, 2, 3)).astype(np.float32)
    a, b = sess.run([du, du2], {xs: v})
    np.testing.assert_allclose(b, 2 * a, rtol=1e-5)


def test_dump_nests_loop_bodies_under_their_op():
    import json
    from graphc.tools.dump import render
    from graphc.tools.workloads import Program
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder("float32", (None, 3), name="xs")
        w = gc.placeholder("float32", (3,), name="w")
        ys = gc.scan(lambda h, x: gc.tanh(h * w + gc.map_fn(lambda e: e * 2.0, x)), xs,
                     initializer=gc.zeros((3,)))
    prog = Program("rnn", g, [ys.node], [xs.node, w.node])
    text = render(prog, "raw", "text")
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "= scan[" in ln)
    assert lines[at + 1].strip().startswith("body { scan(") and "tanh" in text
    inner = next(ln for ln in lines if "body { map_fn(" in ln)      # the nested loop, indented deeper
    assert len(inner) - len(inner.lstrip()) > len(lines[at + 1]) - len(lines[at + 1].lstrip())
    doc = json.loads(render(prog, "raw", "json"))
    (scan,) = [n for n in doc["nodes"] if n["op"] == "scan"]
    body = scan["bodies"]["body"]
    ops = [n["op"] for n in body["nodes"]]
    assert "tanh" in ops and "scan" in ops and len(body["inputs"]) == 3
    (inner_scan,) = [n for n in body["nodes"] if n["op"] == "scan"]
    assert "mul" in [n["op"] for n in inner_scan["bodies"]["body"]["nodes"]]
    assert "<html" in render(prog, "raw", "html")


@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_masked_steps_are_skipped(cell, unroll):
    from graphc import layers as L
    from graphc.models import Model
    ids = gc_ids = np.array([[3, 7, 1, 9, 2]], np.int32)
    inp = L.Input(shape=(None,), dtype="int32")
    h = L.Embedding(12, 4, mask_zero=True)(inp)
    seq = getattr(L, cell)(5, return_sequences=True, unroll=unroll)(h)
    last = getattr(L, cell)(3, unroll=unroll)(seq)
    m = Model(inp, [seq, last])
    want_seq, want_last = m.predict(ids)
    for padded in (np.pad(gc_ids, ((0, 0), (0, 3))), np.pad(gc_ids, ((0, 0), (2, 0)))):
        got_seq, got_last = m.predict(padded)
        keep = padded[0] != 0
        np.testing.assert_allclose(got_seq[0, keep], want_seq[0], rtol=1e-5, atol=1e-6)
        assert np.all(got_seq[0, ~keep] == 0.0)            # a masked step outputs zeros
        np.testing.assert_allclose(got_last, want_last, rtol=1e-5, atol=1e-6)


def test_masking_layer_and_training_with_a_mask():
    from graphc import layers as L
    from graphc.models import Model
    x = RNG.normal(size=(8, 6, 3)).astype(np.float32)
    x[:4, 4:] = 0.0                                         # padded rows
    y = RNG.normal(size=(8, 2)).astype(np.float32)
    inp = L.Input(shape=(None, 3))
    out = L.Dense(2)(L.LSTM(4)(L.Masking(0.0)(inp)))
    m = Model(inp, out)
    m.compile(optimizer="adam", loss="mse")
    np.testing.assert_allclose(m.predict(x[:4, :4]), m.predict(x[:4]), rtol=1e-5, atol=1e-6)
    losses = [m.train_on_batch(x, y) for _ in range(20)]
    assert losses[-1] < losses[0]
    cfg = m.get_config()
    assert any(lyr["class_name"] == "Masking" for lyr in cfg["layers"])


@pytest.mark.parametrize("unroll, programs", [(False, 1), (True, 3)])
def test_a_model_with_an_open_length_builds_one_program(unroll, programs):
    from graphc import layers as L
    from graphc.models import Model
    inp = L.Input(shape=(None, 4))
    out = L.Dense(3, activation="softmax")(L.LSTM(5, return_sequences=True, unroll=unroll)(inp))
    m = Model(inp, out)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    for t_len in (2, 7, 11):
        x = RNG.normal(size=(4, t_len, 4)).astype(np.float32)
        y = RNG.integers(0, 3, size=(4, t_len)).astype(np.int32)
        m.train_on_batch(x, y)
        assert m.predict(x).shape == (4, t_len, 3)
    assert len([k for k in m._programs if k[0] == "train"]) == programs


def test_hoisting_moves_invariant_work_and_transposes_out_of_the_loop():
    from graphc.passes import optimize
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder("float32", (None, 2, 3), name="xs")
        u = gc.placeholder("float32", (3, 3), name="u")
        w = gc.placeholder("float32", (3,), name="w")
        hs = gc.scan(lambda h, x: gc.tanh(gc.matmul(h, u, transpose_b=True) * gc.exp(w) + x), xs,
                     initializer=gc.zeros((2, 3)))
    opt, report = optimize(g, [hs], feeds=[xs, u, w])
    (node,) = [n for n in opt.nodes() if opt.op(n) == "scan"]
    body = opt.attrs(node)["body"]
    body_ops = [body.graph.op(n) for n in body.graph.nodes()]
    assert "exp" not in body_ops and "transpose" not in body_ops
    assert not any(body.graph.attrs(n).get("transpose_b") for n in body.graph.nodes()
                   if body.graph.op(n) == "matmul")
    assert {"exp", "transpose"} <= {opt.op(n) for n in opt.nodes()}
    v = {xs: RNG.normal(size=(4, 2, 3)).astype(np.float32), u: RNG.normal(size=(3, 3)).astype(np.float32),
         w: RNG.normal(size=3).astype(np.float32)}
    np.testing.assert_allclose(gc.Session(g).run(hs, v), gc.Session(g, optimize=False, executor="reference")
                               .run(hs, v), rtol=1e-5, atol=1e-6)


def test_the_loss_and_metrics_skip_masked_steps():
    from graphc import layers as L
    from graphc.models import Model
    ids = RNG.integers(1, 9, size=(6, 5)).astype(np.int32)
    y = RNG.integers(0, 3, size=(6, 5)).astype(np.int32)
    padded, y_pad = np.pad(ids, ((0, 0), (0, 4))), np.pad(y, ((0, 0), (0, 4)))
    inp = L.Input(shape=(None,), dtype="int32")
    out = L.Dense(3, activation="softmax")(L.GRU(4, return_sequences=True)(L.Embedding(10, 4, mask_zero=True)(inp)))
    m = Model(inp, out)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # the padded batch's loss and accuracy are the unpadded batch's: padding counts for nothing
    np.testing.assert_allclose(m.evaluate(padded, y_pad, verbose=0), m.evaluate(ids, y, verbose=0), rtol=1e-5)


def _random_body(rng, depth=4):
    """A random elementwise function of (carry, x, w), the same for a given generator state."""
    unary = [gc.tanh, gc.sin, lambda t: gc.exp(gc.clip_by_value(t, -3.0, 3.0)), lambda t: t * 0.5]
    binary = [gc.add, gc.multiply, gc.subtract, gc.maximum,
              lambda a, b: gc.where(a > b, a * 0.3, b)]
    plan = [(int(rng.integers(2)), int(rng.integers(5)), int(rng.integers(4)), int(rng.integers(3)))
            for _ in range(depth)]

    def fn(h, x, w):
        vals = [h, x, w]
        for kind, b, u, j in plan:
            a = vals[-1]
            vals.append(binary[b](a, vals[j]) if kind else unary[u](a))
        return gc.tanh(vals[-1])
    return fn


@pytest.mark.parametrize("seed", range(12))
def test_random_loop_bodies_compiled_match_the_reference(seed):
    """Random bodies in scan (both directions), while_loop and cond: compiled values and gradients
    equal the reference interpreter's."""
    rng = np.random.default_rng(1000 + seed)
    step = _random_body(rng)
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder("float64", (None, 3), name="xs")
        w = gc.placeholder("float64", (3,), name="w")
        h0 = gc.placeholder("float64", (3,), name="h0")
        fwd = gc.scan(lambda h, x: step(h, x, w), xs, initializer=h0, reverse=bool(seed % 2))
        _, wl = gc.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, step(h, h * 0.5, w)), (0, h0))
        br = gc.cond(gc.reduce_sum(w) > 0.0, lambda: step(h0, w, w), lambda: step(w, h0, h0))
        loss = gc.reduce_sum(fwd * fwd) + gc.reduce_sum(wl) + gc.reduce_sum(br * w)
        grads = gc.gradients(loss, [xs, w, h0])
    feed = {xs: rng.normal(size=(int(rng.integers(0, 6)), 3)), w: rng.normal(size=3),
            h0: rng.normal(size=3)}
    fetches = [fwd, wl, br, loss] + grads
    got = gc.Session(g).run(fetches, feed)
    want = gc.Session(g, optimize=False, executor="reference").run(fetches, feed)
    for a, b, t in zip(got, want, fetches):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=t.name)


def test_short_loops_of_known_length_are_unrolled_by_the_compiler():
    from graphc.passes import MAX_UNROLL, optimize
    g = gc.Graph()
    with g.as_default():
        short = gc.placeholder("float32", (MAX_UNROLL, 2, 3), name="short")
        long = gc.placeholder("float32", (MAX_UNROLL + 1, 2, 3), name="long")
        open_ = gc.placeholder("float32", (None, 2, 3), name="open")
        u = gc.constant(RNG.normal(size=(3, 3)).astype(np.float32))
        outs = [gc.scan(lambda h, x: gc.tanh(gc.matmul(h, u) + x), xs, initializer=gc.zeros((2, 3)))
                for xs in (short, long, open_)]
        loss = gc.reduce_sum(outs[0] * outs[0]) + gc.reduce_sum(outs[1] * outs[1]) + gc.reduce_sum(outs[2])
        grads = gc.gradients(loss, [short, long, open_])
    opt, report = optimize(g, [loss] + grads, feeds=[short, long, open_])
    scans = [n for n in opt.nodes() if opt.op(n) == "scan"]
    assert len(scans) == 4          # the long and the open loop, forward and backward
    assert [p.changed for p in report.passes if p.name == "unroll_short_loops"] == [2]
    feed = {short: RNG.normal(size=short.shape).astype(np.float32),
            long: RNG.normal(size=long.shape).astype(np.float32),
            open_: RNG.normal(size=(5, 2, 3)).astype(np.float32)}
    got = gc.Session(g).run([loss] + grads, feed)
    want = gc.Session(g, optimize=False, executor="reference").run([loss] + grads, feed)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5)
