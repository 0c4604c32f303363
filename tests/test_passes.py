"""The optimization pipeline (graphc.passes): DCE, CSE, constant folding, simplification, the manager."""
import numpy as np
import pytest

import graphc as gc
from graphc.interpreter import evaluate
from graphc.ops.registry import apply
from graphc.passes import (DEFAULT_PIPELINE, PassCheckError, PassContext, PassManager, PassResult,
                           cse, dce, fold, optimize, sample_inputs, simplify, transpose_shared_rhs)


# -- helpers ---------------------------------------------------------------------------------------
def ops(g):
    return [g.op(n) for n in g.topo_order()]


def count(g, op):
    return sum(1 for n in g.nx.nodes if g.op(n) == op)


def check_same(g, fetches, feeds=(), pipeline=None, options=None, seed=0):
    """Optimize (debug mode), then compare with the reference interpreter; returns (opt, report)."""
    fetches = [getattr(f, "node", f) for f in fetches]
    feeds = [getattr(f, "node", f) for f in feeds]
    opt, rep = optimize(g, fetches, feeds=feeds, pipeline=pipeline, options=options, debug=True)
    opt.validate()
    fv, state = sample_inputs(g, fetches, feeds, seed=seed)
    with np.errstate(all="ignore"):
        want = evaluate(g, fetches, fv, state)
        got = evaluate(opt, rep.fetches, {n: v for n, v in fv.items() if n in opt}, state)
    for a, b in zip(want.values, got.values):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True)
    return opt, rep


def fingerprint(g):
    nodes = sorted((n, d["op"], d["name"], str(d["spec"]), repr(sorted(
        (k, v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in d["attrs"].items())))
        for n, d in g.nx.nodes(data=True))
    return nodes, sorted(g.nx.edges(data="pos"))


def one_pass(fn):
    return [(fn.__name__, fn)]


# -- the manager -----------------------------------------------------------------------------------
def test_user_graph_is_not_mutated():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        y = gc.relu(gc.transpose(gc.transpose(x * 1.0)) + (gc.constant(1.0) + 2.0))
        z = gc.reduce_sum(gc.square(y))
        gc.exp(x)  # not fetched
    before = fingerprint(g)
    opt, rep = optimize(g, [y, z], feeds=[x])
    assert fingerprint(g) == before
    assert opt is not g and opt.num_nodes() < g.num_nodes()


def test_report_records_every_pass_and_prints():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (4,), name="x")
        y = gc.exp(x * 1.0) + gc.constant(2.0) * 3.0
    opt, rep = optimize(g, [y], feeds=[x], keep_snapshots=True)
    assert [p.name for p in rep.passes] == [name for name, _ in DEFAULT_PIPELINE]
    assert rep.passes[0].nodes_before == g.num_nodes()
    assert rep.passes[-1].nodes_after == opt.num_nodes()
    assert all(p.seconds >= 0 for p in rep.passes)
    assert rep.changed == sum(p.changed for p in rep.passes) > 0
    assert [name for name, _ in rep.snapshots] == ["input"] + [p.name for p in rep.passes]
    assert all(s.num_nodes() == p.nodes_after for (_, s), p in zip(rep.snapshots[1:], rep.passes))
    text = str(rep)
    assert "fold" in text and "simplify" in text and "total" in text and "mul_one" in text
    assert rep.fetches == [y.node]  # rewritten in place: the fetch keeps its id


def test_pipeline_by_name_and_custom_pass():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2,), name="x")
        y = gc.exp(x) + gc.exp(x)
    opt, rep = optimize(g, [y], feeds=[x], pipeline=["cse", "dce"])
    assert count(opt, "exp") == 1 and [p.name for p in rep.passes] == ["cse", "dce"]
    seen = []

    def spy(graph, ctx):
        seen.append(graph.num_nodes())
        return PassResult(notes=["looked"])
    opt, rep = PassManager([("spy", spy), ("dce", dce)]).run(g, [y], feeds=[x])
    assert seen == [g.num_nodes()] and rep.passes[0].notes == ["looked"]
    with pytest.raises(ValueError, match="unknown pass"):
        optimize(g, [y], pipeline=["no_such_pass"])


def test_debug_mode_catches_a_wrong_pass():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        y = gc.exp(x) + 1.0

    def wrong(graph, ctx):  # replaces exp(x) by x: a miscompile
        e = next(n for n in graph.nx.nodes if graph.op(n) == "exp")
        ctx.replace(graph, e, graph.inputs(e)[0])
        return PassResult(changed=1)
    with pytest.raises(PassCheckError, match="wrong"):
        optimize(g, [y], feeds=[x], pipeline=[("wrong", wrong)], debug=True)


def test_debug_mode_catches_an_invalid_graph():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        y = gc.exp(x)

    def broken(graph, ctx):
        graph.node_data(y.node)["spec"] = gc.TensorSpec((4,), np.dtype("float32"))
        return PassResult()
    with pytest.raises(PassCheckError, match="invalid graph"):
        optimize(g, [y], feeds=[x], pipeline=[("broken", broken)], debug=True)


def test_fetches_as_tensors_names_and_duplicates():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2,), name="x")
        a = gc.exp(x, name="a")
        gc.exp(x, name="b")
    opt, rep = optimize(g, [a, "b", a.node], feeds=[x], pipeline=["cse", "dce"])
    assert rep.fetches[0] == rep.fetches[1] == rep.fetches[2]
    assert rep.fetches[0] in opt


# -- dead-code elimination -------------------------------------------------------------------------
def test_dce_keeps_only_what_fetches_need():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2,), name="x")
        y = gc.exp(x)
        gc.log(x) + 1.0  # unused branch
    opt, rep = check_same(g, [y], [x], pipeline=["dce"])
    assert ops(opt) == ["placeholder", "exp"]
    assert rep.passes[0].changed == 3


def test_dce_drops_unfetched_assigns_and_keeps_fetched_ones():
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.zeros(2, np.float32), name="v")
        w = gc.Variable(np.ones(2, np.float32), name="w")
        up_v = v.assign_add([1.0, 1.0])
        w.assign(w * 2.0)
        step = gc.group(up_v)
    opt, _ = optimize(g, [step], debug=True)
    assert count(opt, "assign_add") == 1 and count(opt, "assign") == 0
    assert g.name(w.node) not in {opt.name(n) for n in opt.nx.nodes}
    state = {"v": np.zeros(2, np.float32), "w": np.ones(2, np.float32)}
    res = evaluate(opt, [step.node], {}, state)
    assert set(res.updates) == {"v"} and res.updates["v"].tolist() == [1.0, 1.0]


def test_fed_node_becomes_a_placeholder_and_its_producers_go():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2,), name="x")
        h = gc.exp(x) * 3.0  # fed: its producers are not needed
        y = h + 1.0
    opt, rep = check_same(g, [y], [h])
    assert x.node not in opt and count(opt, "exp") == 0
    assert opt.op(h.node) == "placeholder" and opt.name(h.node) == g.name(h.node)
    got = evaluate(opt, rep.fetches, {h.node: np.array([1.0, 2.0], np.float32)}).values[0]
    assert got.tolist() == [2.0, 3.0]


def test_fed_constant_is_not_folded():
    g = gc.Graph()
    with g.as_default():
        c = gc.constant(2.0, name="c")
        y = c * 3.0
    opt, rep = optimize(g, [y], feeds=[c])
    assert count(opt, "mul") == 1 and opt.op(c.node) == "placeholder"
    assert evaluate(opt, rep.fetches, {c.node: np.float32(5.0)}).values[0] == 15.0


# -- common-subexpression elimination ------------------------------------------------------------------
def test_cse_merges_equal_nodes_and_commutative_inputs():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        z = gc.placeholder("float32", (3,), name="z")
        a = gc.exp(x) + z
        b = z + gc.exp(x)
        y = a * b
    opt, rep = check_same(g, [y], [x, z], pipeline=["cse", "dce"])
    assert count(opt, "exp") == 1 and count(opt, "add") == 1
    assert count(opt, "placeholder") == 2  # equal placeholders are different inputs


def test_cse_compares_constants_by_value():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2,), name="x")
        y = (x + gc.constant([1.0, 2.0])) * (x + gc.constant([1.0, 2.0]))
        z = (x + gc.constant(0.0)) * (x + gc.constant(-0.0))  # different bits: not merged
    opt, _ = check_same(g, [y, z], [x], pipeline=["cse", "dce"])
    assert count(opt, "constant") == 3 and count(opt, "add") == 3


def test_cse_never_merges_random_ops_or_variables():
    g = gc.Graph()
    with g.as_default():
        attrs = {"shape": (3,), "dtype": np.dtype("float32"), "mean": 0.0, "stddev": 1.0, "seed": 7}
        r1 = apply("random_normal", [], attrs)
        r2 = apply("random_normal", [], dict(attrs))
        v1 = gc.Variable(np.zeros(3, np.float32), name="v")
        v2 = gc.Variable(np.zeros(3, np.float32), name="v")
        y = r1 + r2 + v1 + v2
    opt, _ = optimize(g, [y], pipeline=["cse", "dce"], debug=True)
    assert count(opt, "random_normal") == 2 and count(opt, "variable") == 2


def test_cse_is_linear_on_a_long_chain():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2,), name="x")
        a = b = x
        for _ in range(300):
            a, b = gc.tanh(a), gc.tanh(b)
        y = a - b
    opt, rep = check_same(g, [y], [x], pipeline=["cse", "dce"])
    assert count(opt, "tanh") == 300 and rep.passes[0].changed == 300


# -- constant folding --------------------------------------------------------------------------------
def test_fold_collapses_constant_subgraphs():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2, 3), name="x")
        c = gc.reduce_sum(gc.exp(gc.constant([[1.0, 2.0, 3.0]])) * 2.0, axis=0)
        m = gc.matmul(gc.constant(np.eye(3, dtype=np.float32)), gc.transpose(gc.constant(np.ones((2, 3), np.float32))))
        y = x + c
    opt, rep = check_same(g, [y, m], [x], pipeline=["fold", "dce"])
    assert sorted(ops(opt)) == ["add", "constant", "constant", "placeholder"]
    assert rep.passes[0].changed == 5  # exp, mul, reduce_sum, transpose, matmul
    assert opt.op(m.node) == "constant" and rep.fetches[1] == m.node  # in place: same id


def test_fold_never_folds_variables_placeholders_or_random_ops():
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.ones(2, np.float32), name="v")
        r = gc.random_uniform((2,), seed=1)
        x = gc.placeholder("float32", (2,), name="x")
        y = (v * 2.0) + (r * 2.0) + (x * 2.0)
    opt, _ = check_same(g, [y], [x], pipeline=["fold", "dce"])
    assert count(opt, "mul") == 3 and count(opt, "random_uniform") == 1


def test_fold_size_cap_keeps_huge_broadcasts_as_ops():
    g = gc.Graph()
    with g.as_default():
        big = gc.broadcast_to(gc.constant(1.0), (1100, 1000))
        small = gc.broadcast_to(gc.constant(1.0), (10, 10))
        y = gc.reduce_sum(big)
    opt, _ = optimize(g, [big, small, y], pipeline=["fold", "dce"])
    assert opt.op(big.node) == "broadcast_to" and opt.op(y.node) == "reduce_sum"
    assert opt.op(small.node) == "constant"
    opt, _ = optimize(g, [small], pipeline=["fold"], options={"fold_max_elements": 50})
    assert opt.op(small.node) == "broadcast_to"


def test_fold_keeps_nan_and_inf_results():
    g = gc.Graph()
    with g.as_default():
        y = gc.log(gc.constant([-1.0, 0.0, 1.0]))
    opt, _ = check_same(g, [y], pipeline=["fold", "dce"])
    v = opt.attrs(y.node)["value"]
    assert np.isnan(v[0]) and v[1] == -np.inf and v[2] == 0.0


# -- algebraic simplification ------------------------------------------------------------------------
def _simplified(build, feeds_shape=(2, 3), options=None, dtype="float32"):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, feeds_shape, name="x")
        y = build(x)
    opt, rep = check_same(g, [y], [x], pipeline=["simplify", "dce"], options=options)
    return opt, rep


@pytest.mark.parametrize("build, rule", [
    (lambda x: x * 1.0, "mul_one"),
    (lambda x: 1.0 * x, "mul_one"),
    (lambda x: x + 0.0, "add_zero"),
    (lambda x: 0.0 + x, "add_zero"),
    (lambda x: x - 0.0, "sub_zero"),
    (lambda x: x / 1.0, "div_one"),
    (lambda x: x ** 1.0, "pow_one"),
    (lambda x: -(-x), "neg_neg"),
    (lambda x: gc.transpose(gc.transpose(x)), "transpose_transpose"),
    (lambda x: gc.transpose(x, (0, 1)), "transpose_identity"),
    (lambda x: gc.reshape(x, (2, 3)), "reshape_noop"),
    (lambda x: gc.reshape(gc.reshape(x, (6,)), (2, 3)), "reshape_chain"),
    (lambda x: gc.squeeze(gc.expand_dims(x, 0), 0), "reshape_chain"),
    (lambda x: apply("cast", [x], {"dtype": np.dtype("float32")}), "cast_same"),
    (lambda x: gc.identity(x), "identity"),
    (lambda x: gc.stop_gradient(x), "identity"),
    (lambda x: gc.broadcast_to(x, (2, 3)), "broadcast_noop"),
])
def test_rules_remove_the_op(build, rule):
    opt, rep = _simplified(build)
    assert ops(opt) == ["placeholder"]
    assert any(rule in note for note in rep.passes[0].notes)


def test_rules_with_unknown_batch_dimension():
    opt, _ = _simplified(lambda x: gc.reshape(gc.transpose(gc.transpose(x * 1.0)), (-1, 3)),
                         feeds_shape=(None, 3))
    assert ops(opt) == ["placeholder"]


def test_transpose_pair_becomes_one_transpose():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2, 3, 4), name="x")
        y = gc.transpose(gc.transpose(x, (1, 2, 0)), (1, 0, 2))
    opt, _ = check_same(g, [y], [x], pipeline=["simplify", "dce"])
    assert ops(opt) == ["placeholder", "transpose"]
    (t,) = [n for n in opt.nx.nodes if opt.op(n) == "transpose"]
    assert opt.attrs(t)["perm"] == (2, 1, 0)


def test_reshape_chain_becomes_one_reshape():
    opt, _ = _simplified(lambda x: gc.reshape(gc.reshape(gc.reshape(x, (3, 2)), (6, 1)), (1, 6)))
    assert ops(opt) == ["placeholder", "reshape"]


def test_pow_two_becomes_mul():
    opt, _ = _simplified(lambda x: x ** 2.0)
    assert ops(opt) == ["placeholder", "mul"]
    (m,) = [n for n in opt.nx.nodes if opt.op(n) == "mul"]
    assert opt.inputs(m) == [opt.inputs(m)[0]] * 2


def test_static_shape_becomes_a_constant():
    opt, _ = _simplified(lambda x: gc.cast(gc.shape(x), "float32") + 1.0)
    assert "shape" not in ops(opt)


def test_zeros_like_of_a_known_shape_becomes_a_constant():
    opt, _ = _simplified(lambda x: gc.zeros_like(x) + gc.ones_like(x) * x)
    assert count(opt, "zeros_like") == count(opt, "ones_like") == 0
    opt, _ = _simplified(lambda x: gc.zeros_like(x) + x, feeds_shape=(None, 3))
    assert count(opt, "zeros_like") == 1  # the run-time shape is not known


def test_fold_leaves_a_failing_reference_to_the_run():
    g = gc.Graph()
    with g.as_default():
        y = gc.gather(gc.constant([1.0, 2.0]), gc.constant([5]))
    opt, rep = optimize(g, [y], pipeline=["fold"])
    assert opt.op(y.node) == "gather" and "reference raised" in rep.passes[0].notes[0]


def test_rules_do_not_fire_when_the_constant_broadcasts():
    opt, _ = _simplified(lambda x: x + gc.constant(np.zeros((4, 2, 3), np.float32)))
    assert count(opt, "add") == 1
    opt, _ = _simplified(lambda x: x * gc.constant(np.ones((2, 1, 3), np.float32)), feeds_shape=(1, 3))
    assert count(opt, "mul") == 1


def test_rules_do_not_fire_for_near_identity_constants():
    opt, _ = _simplified(lambda x: (x * gc.constant([1.0, 1.0, 1.5])) + gc.constant([0.0, 1e-30, 0.0]))
    assert count(opt, "mul") == 1 and count(opt, "add") == 1


@pytest.mark.parametrize("build, op", [
    (lambda x: x * 0.0, "mul"),        # Inf*0 and NaN*0 are NaN: never 0
    (lambda x: x - x, "sub"),          # Inf-Inf is NaN: never 0
    (lambda x: x / x, "div"),          # 0/0 is NaN: never 1
    (lambda x: gc.exp(gc.log(x)), "exp"),  # wrong for x <= 0
    (lambda x: gc.log(gc.exp(x)), "log"),  # exp overflows: only with unsafe_math
    (lambda x: 0.0 - x, "sub"),        # 0 - 0 is +0 but -0 is -0
])
def test_no_rule_changes_nan_or_inf_results(build, op):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (5,), name="x")
        y = build(x)
    opt, rep = optimize(g, [y], feeds=[x], pipeline=["simplify", "dce"])
    assert count(opt, op) == 1
    special = np.array([np.nan, np.inf, -np.inf, 0.0, 100.0], np.float32)
    with np.errstate(all="ignore"):
        want = evaluate(g, [y.node], {x.node: special}).values[0]
        got = evaluate(opt, rep.fetches, {x.node: special}).values[0]
    np.testing.assert_array_equal(want, got)


def test_safe_rules_keep_nan_and_inf():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (4,), name="x")
        y = (-(-(x * 1.0)) / 1.0 - 0.0) ** 1.0
    opt, rep = optimize(g, [y], feeds=[x], pipeline=["simplify", "dce"])
    assert ops(opt) == ["placeholder"]
    special = np.array([np.nan, np.inf, -np.inf, -0.0], np.float32)
    got = evaluate(opt, rep.fetches, {x.node: special}).values[0]
    np.testing.assert_array_equal(got, special)


def test_log_exp_only_with_unsafe_math():
    build = lambda x: gc.log(gc.exp(x))  # noqa: E731
    opt, _ = _simplified(build)
    assert count(opt, "log") == 1
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        y = build(x)
    opt, _ = optimize(g, [y], feeds=[x], pipeline=["simplify", "dce"], options={"unsafe_math": True})
    assert ops(opt) == ["placeholder"]


def test_relu_gradient_folds_into_the_max_pool_gradient():
    # relu -> max_pool in a training graph: the relu's gradient where(y > 0, max_pool2d_grad(y, g),
    # 0) becomes max_pool2d_grad(..., relu_mask) and no `where` is left; values bit-identical (ties
    # at 0, negatives and NaN in the sample make the mask matter)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 6, 6, 3), name="x")
        y = gc.nn.relu(x)
        loss = gc.reduce_sum(gc.nn.max_pool2d(y, 2, 2, "VALID") * gc.constant(np.float32(1.5)))
        (dx,) = gc.gradients(loss, [x])
    opt, rep = optimize(g, [dx], feeds=[x], pipeline=["simplify", "dce"])
    pg = [n for n in opt.nx.nodes if opt.op(n) == "max_pool2d_grad"]
    assert count(opt, "where") == 0 and len(pg) == 1 and opt.attrs(pg[0])["relu_mask"] is True
    xv = np.random.default_rng(0).integers(-2, 3, (2, 6, 6, 3)).astype(np.float32)
    xv[0, 1, 1, 0], xv[1, 3, 2, 2] = np.nan, -np.inf
    want = evaluate(g, [dx.node], {x.node: xv}).values[0]
    got = evaluate(opt, rep.fetches, {x.node: xv}).values[0]
    np.testing.assert_array_equal(want, got)
    # a mask on another value, or a where with a non-zero else, stays as it is
    with g.as_default():
        other = gc.placeholder("float32", (None, 6, 6, 3), name="o")
        pgn = gc.gradients(loss, [y])[0]
        keep1 = gc.where(gc.greater(other, 0.0), pgn, 0.0)
        keep2 = gc.where(gc.greater(y, 0.0), pgn, 1.0)
    opt2, _ = optimize(g, [keep1, keep2], feeds=[x, other], pipeline=["simplify", "dce"])
    assert count(opt2, "where") == 2


def test_simplify_exposes_folding_and_cse():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        a = gc.exp(x * 1.0)
        b = gc.exp(gc.identity(x))
        c = gc.constant(2.0) * gc.constant(1.0) + gc.constant(0.0)
        y = a + b + c
    opt, _ = check_same(g, [y], [x], pipeline=["dce", "fold", "simplify", "fold.2", "cse", "dce.2"])
    assert count(opt, "exp") == 1 and count(opt, "constant") == 1 and count(opt, "mul") == 0


def test_simplify_is_linear_on_a_long_chain():
    def build(x):
        for _ in range(500):
            x = gc.transpose(gc.transpose(x * 1.0)) + 0.0
        return x
    opt, rep = _simplified(build)
    assert ops(opt) == ["placeholder"] and rep.passes[0].changed == 1500


def test_each_pass_alone_keeps_results():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        w = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
        h = gc.matmul(gc.transpose(gc.transpose(x)) * 1.0, w) + (gc.constant(1.0) + 1.0)
        y = gc.reduce_mean(gc.square(gc.tanh(h) - gc.tanh(h)), axis=1)
    for name, fn in DEFAULT_PIPELINE:
        check_same(g, [y, h], [x], pipeline=[(name, fn)])
    ctx = PassContext([y.node], [x.node])
    copy = g.copy()
    for fn in (dce, fold, simplify, cse):
        assert isinstance(fn(copy, ctx), PassResult)


# -- operand layouts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("uses,rewritten", [(2, False), (3, True), (5, True)])
def test_shared_transposed_rhs_is_transposed_once(uses, rewritten):
    # an unrolled RNN's backward: every step multiplies its gradient by the recurrent kernel^T
    g = gc.Graph()
    with g.as_default():
        u = gc.Variable(np.arange(12, dtype=np.float32).reshape(3, 4) / 7, name="u")
        xs = [gc.placeholder("float32", (None, 4), name=f"x{i}") for i in range(uses)]
        ys = [gc.matmul(x, u, transpose_b=True) for x in xs]
        other = gc.matmul(u, u, transpose_a=True)                # not a transposed right operand
    pipe = one_pass(transpose_shared_rhs)
    opt, rep = check_same(g, ys + [other], xs, pipeline=pipe)
    mms = [n for n in opt.topo_order() if opt.op(n) == "matmul"]
    assert count(opt, "transpose") == int(rewritten)
    assert sum(opt.attrs(n)["transpose_b"] for n in mms) == (0 if rewritten else uses)
    assert rep.passes[0].nodes_after == rep.passes[0].nodes_before + int(rewritten)


def test_shared_transposed_rhs_batched_and_in_the_default_pipeline():
    g = gc.Graph()
    with g.as_default():
        u = gc.placeholder("float64", (2, 3, 4), name="u")
        xs = [gc.placeholder("float64", (2, None, 4), name=f"x{i}") for i in range(3)]
        ys = [gc.tanh(gc.matmul(x, u, transpose_b=True)) for x in xs]
    opt, _ = check_same(g, ys, [u] + xs)
    (t,) = [n for n in opt.topo_order() if opt.op(n) == "transpose"]
    assert opt.attrs(t)["perm"] == (0, 2, 1)
