"""Fusion passes: elementwise regions, matmul/conv2d epilogues, reduction prologues; idempotence."""
import numpy as np
import pytest

import graphc as gc
from graphc.interpreter import evaluate
from graphc.ops.fused import run_program
from graphc.passes import optimize, sample_inputs


def count(g, op):
    return sum(1 for n in g.nx.nodes if g.op(n) == op)


def nodes_of(g, op):
    return [n for n in g.topo_order() if g.op(n) == op]


def check(g, fetches, feeds=(), options=None):
    """Full pipeline in debug mode, equal to the reference, and idempotent."""
    fetches = [getattr(f, "node", f) for f in fetches]
    feeds = [getattr(f, "node", f) for f in feeds]
    opt, rep = optimize(g, fetches, feeds=feeds, debug=True, options=options)
    fv, state = sample_inputs(g, fetches, feeds, seed=3)
    with np.errstate(all="ignore"):
        want = evaluate(g, fetches, fv, state).values
        got = evaluate(opt, rep.fetches, {n: v for n, v in fv.items() if n in opt}, state).values
    for a, b in zip(want, got):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True)
    again, rep2 = optimize(opt, rep.fetches, feeds=feeds, options=options)
    assert rep2.changed == 0 and again.num_nodes() == opt.num_nodes(), str(rep2)
    return opt, rep


# -- elementwise -------------------------------------------------------------------------------------
def test_chain_becomes_one_fused_node():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4), name="x")
        y = gc.sigmoid(gc.tanh(gc.exp(x) + 1.0) * 3.0)
    opt, rep = check(g, [y], [x])
    assert count(opt, "fused_elementwise") == 1 and opt.num_nodes() == 4  # x, 1.0, 3.0, fused
    (f,) = nodes_of(opt, "fused_elementwise")
    assert f == y.node and opt.name(f) == g.name(y.node)
    assert [s[0] for s in opt.attrs(f)["program"]] == ["exp", "add", "tanh", "mul", "sigmoid"]
    assert sorted(opt.op(i) for i in opt.inputs(f)) == ["constant", "constant", "placeholder"]


def test_program_runs_like_the_ops():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        y = gc.where(x > 0.0, gc.sqrt(gc.abs(x)), gc.cast(gc.cast(x, "int32"), "float32") * x)
    opt, rep = check(g, [y], [x])
    (f,) = nodes_of(opt, "fused_elementwise")
    xs = np.array([-2.5, 0.0, 4.0], np.float32)
    ins = [xs if opt.op(i) == "placeholder" else opt.attrs(i)["value"] for i in opt.inputs(f)]
    want = evaluate(g, [y.node], {x.node: xs}).values[0]
    np.testing.assert_array_equal(run_program(opt.attrs(f)["program"], ins), want)


def test_diamond_is_one_region_without_duplicated_work():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2, 3), name="x")
        e = gc.exp(x)
        y = gc.tanh(e) * gc.sigmoid(e) + e
    opt, _ = check(g, [y], [x])
    (f,) = nodes_of(opt, "fused_elementwise")
    prog = opt.attrs(f)["program"]
    assert [s[0] for s in prog].count("exp") == 1 and len(prog) == 5


def test_value_used_outside_the_region_is_a_boundary():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3, 3), name="x")
        h = gc.exp(x) + 1.0                      # used by the region below and by matmul
        y = gc.tanh(h) * 2.0
        z = gc.matmul(h, h)
    opt, _ = check(g, [y, z], [x])
    fused = nodes_of(opt, "fused_elementwise")
    assert len(fused) == 2 and h.node in fused and y.node in fused
    assert h.node in opt.inputs(y.node) and sum(s[0] == "exp" for f in fused for s in opt.attrs(f)["program"]) == 1


def test_fetched_value_is_a_boundary():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        h = gc.exp(x) * 2.0
        y = gc.log(h + 1.0) - 3.0
    opt, rep = check(g, [y, h], [x])
    assert rep.fetches == [y.node, h.node]
    assert opt.op(h.node) == "fused_elementwise" and opt.op(y.node) == "fused_elementwise"
    assert h.node in opt.inputs(y.node)


def test_broadcasting_region_and_scalar_constants_as_inputs():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 1, 4), name="x")
        b = gc.placeholder("float32", (3, 1), name="b")
        y = gc.relu(x * 0.5 + b) - gc.constant(np.arange(4, dtype=np.float32))
    opt, _ = check(g, [y], [x, b])
    (f,) = nodes_of(opt, "fused_elementwise")
    assert opt.spec(f).shape == (None, 3, 4)
    assert count(opt, "constant") == 2 and len(opt.inputs(f)) == 4


def test_single_ops_are_left_alone():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3, 3), name="x")
        y = gc.matmul(gc.exp(x), gc.transpose(gc.tanh(x)))
    opt, _ = check(g, [y], [x])
    assert count(opt, "fused_elementwise") == 0 and count(opt, "exp") == 1


def test_region_size_cap():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2,), name="x")
        y = x
        for _ in range(10):
            y = gc.tanh(y)
    opt, _ = check(g, [y], [x], options={"max_fusion_steps": 4})
    sizes = sorted(len(opt.attrs(f)["program"]) for f in nodes_of(opt, "fused_elementwise"))
    assert sum(sizes) + count(opt, "tanh") == 10 and max(sizes) <= 4


def test_fused_nodes_are_inlined_into_a_larger_region():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        y = gc.exp(gc.tanh(gc.sigmoid(gc.abs(x) + 1.0) * 2.0) - x)
    small, rep = optimize(g, [y], feeds=[x], options={"max_fusion_steps": 2})
    assert count(small, "fused_elementwise") >= 2
    big, rep2 = optimize(small, rep.fetches, feeds=[x.node], pipeline=["fuse_elementwise"], debug=True)
    assert count(big, "fused_elementwise") == 1
    (f,) = nodes_of(big, "fused_elementwise")
    assert [s[0] for s in big.attrs(f)["program"]] == ["abs", "add", "sigmoid", "mul", "tanh", "sub", "exp"]
    xs = np.array([-1.0, 0.5, 3.0], np.float32)
    want = evaluate(g, [y.node], {x.node: xs}).values[0]
    np.testing.assert_array_equal(evaluate(big, rep2.fetches, {x.node: xs}).values[0], want)


def test_integer_and_bool_regions():
    g = gc.Graph()
    with g.as_default():
        i = gc.placeholder("int32", (4,), name="i")
        y = gc.logical_and((i * 2 + 1) > 2, gc.logical_not(gc.equal(i, 0)))
    opt, _ = check(g, [y], [i])
    assert count(opt, "fused_elementwise") == 1 and opt.spec(y.node).dtype == np.bool_


# -- epilogue ----------------------------------------------------------------------------------------------
def test_matmul_bias_relu_becomes_one_contraction():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4), name="x")
        w = gc.Variable(np.ones((4, 3), np.float32), name="w")
        b = gc.Variable(np.zeros(3, np.float32), name="b")
        y = gc.relu(gc.nn.bias_add(gc.matmul(x, w), b))
    opt, _ = check(g, [y], [x])
    assert [opt.op(n) for n in opt.topo_order()] == ["placeholder", "variable", "variable",
                                                     "fused_contraction"]
    a = opt.attrs(y.node)
    assert a["contraction"] == "matmul" and a["n_c"] == 2
    assert dict(a["c_attrs"]) == {"transpose_a": False, "transpose_b": False}
    assert [s[0] for s in a["program"]] == ["add", "relu"]
    assert opt.inputs(y.node) == [x.node, w.node, b.node]


def test_matmul_with_residual_and_transposes():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3, 3), name="x")
        w = gc.placeholder("float32", (3, 3), name="w")
        y = gc.tanh(gc.matmul(x, w, transpose_b=True) * gc.matmul(x, w) + x)
    opt, _ = check(g, [y], [x, w])
    assert count(opt, "fused_contraction") == 1 and count(opt, "matmul") == 1


def test_matmul_with_two_consumers_is_not_fused():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3, 3), name="x")
        m = gc.matmul(x, x)
        y = gc.relu(m) + gc.reduce_sum(m)
    opt, _ = check(g, [y], [x])
    assert count(opt, "matmul") == 1 and count(opt, "fused_contraction") == 0


def test_fetched_matmul_is_not_fused():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3, 3), name="x")
        m = gc.matmul(x, x)
        y = gc.relu(m)
    opt, _ = check(g, [y, m], [x])
    assert count(opt, "matmul") == 1 and opt.op(y.node) == "relu"


def test_conv2d_bias_activation():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 6, 6, 2), name="x")
        f = gc.Variable(np.full((3, 3, 2, 4), 0.1, np.float32), name="f")
        b = gc.Variable(np.arange(4, dtype=np.float32), name="b")
        y = gc.nn.elu(gc.nn.bias_add(gc.nn.conv2d(x, f, strides=1, padding="SAME"), b))
    opt, _ = check(g, [y], [x])
    assert count(opt, "fused_contraction") == 1 and count(opt, "conv2d") == 0
    assert opt.attrs(y.node)["contraction"] == "conv2d"


# -- reduction ----------------------------------------------------------------------------------------
def test_conv_bias_relu_fuses_in_a_training_graph():
    # relu's gradient reads relu's output, not its input, so in a training graph the conv + bias
    # result feeds only the relu and the whole chain is one contraction node (its output is the
    # activation that the max_pool and the relu gradient read)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 8, 8, 1), name="x")
        f = gc.Variable(np.random.default_rng(0).standard_normal((3, 3, 1, 4)).astype(np.float32))
        b = gc.Variable(np.zeros(4, np.float32))
        a = gc.nn.relu(gc.nn.bias_add(gc.nn.conv2d(x, f), b))
        loss = gc.reduce_sum(gc.nn.max_pool2d(a, 2, 2, "VALID"))
        grads = gc.gradients(loss, [f, b])
    opt, _ = check(g, [loss] + grads, [x])
    progs = [[s[0] for s in opt.attrs(n)["program"]] for n in nodes_of(opt, "fused_contraction")]
    assert ["add", "relu"] in progs, progs


def test_mean_of_squares_is_one_reduction():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 5), name="x")
        t = gc.placeholder("float32", (None, 5), name="t")
        y = gc.reduce_mean(gc.square(x - t), axis=1)
    opt, _ = check(g, [y], [x, t])
    assert [opt.op(n) for n in opt.topo_order()] == ["placeholder", "placeholder", "fused_reduction"]
    a = opt.attrs(y.node)
    assert a["reduce"] == "reduce_mean" and dict(a["r_attrs"]) == {"axis": (1,), "keepdims": False}
    assert [s[0] for s in a["program"]] == ["sub", "square"]


def test_handwritten_softmax_and_cross_entropy():
    g = gc.Graph()
    with g.as_default():
        logits = gc.placeholder("float32", (None, 4), name="logits")
        labels = gc.placeholder("float32", (None, 4), name="labels")
        z = logits - gc.reduce_max(logits, axis=1, keepdims=True)
        e = gc.exp(z)
        p = e / gc.reduce_sum(e, axis=1, keepdims=True)
        loss = gc.reduce_mean(-gc.reduce_sum(labels * gc.log(p + 1e-7), axis=1))
    opt, _ = check(g, [loss, p], [logits, labels])
    assert count(opt, "fused_reduction") >= 2
    assert count(opt, "exp") + count(opt, "log") + count(opt, "mul") == 0


def test_reduction_input_used_elsewhere_is_not_fused():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (4,), name="x")
        s = gc.square(x)
        y = gc.reduce_sum(s) + s
    opt, _ = check(g, [y], [x])
    assert count(opt, "fused_reduction") == 0 and count(opt, "reduce_sum") == 1


# -- multi-output fusion ---------------------------------------------------------------------------------
def test_regions_sharing_an_internal_value_become_one_multi_output_kernel():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (4, 3), name="x")
        t = gc.exp(x) * 0.5                       # read by both results only: absorbed
        y = gc.tanh(t) + 1.0
        z = t * t - x
    opt, _ = check(g, [y, z], [x])
    (m,) = nodes_of(opt, "fused_multi_output")
    assert opt.spec(m).shape == (2, 4, 3) and count(opt, "fused_elementwise") == 0
    assert opt.op(y.node) == opt.op(z.node) == "fused_output" and t.node not in opt
    assert [s[0] for s in opt.attrs(m)["program"]].count("exp") == 1
    assert opt.num_nodes() <= g.num_nodes()


def test_multi_output_merge_never_makes_a_cycle():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (4, 3), name="x")
        t = gc.exp(x) * 0.5
        s = gc.reduce_sum(t, axis=1, keepdims=True)     # t -> reduce -> z: z cannot join t's kernel
        y = gc.tanh(t) + 1.0
        z = t * s
        w = gc.sqrt(gc.abs(t)) - 1.0
    opt, _ = check(g, [y, z, w, s], [x])
    opt.validate()
    assert opt.op(z.node) in ("fused_elementwise", "mul")


def test_state_updates_of_one_parameter_fuse_into_one_kernel():
    g = gc.Graph()
    with g.as_default():
        grad = gc.placeholder("float32", (3, 2), name="g")
        w = gc.Variable(np.ones((3, 2), np.float32), name="w")
        m = gc.Variable(np.zeros((3, 2), np.float32), name="m")
        m_new = m.assign_add((grad - m) * 0.1)          # read below: readers use the value
        w_up = w.assign_sub(m_new * 0.01)
        step = gc.group(m_new, w_up)
    opt, rep = check(g, [step], [grad])
    (k,) = nodes_of(opt, "fused_multi_output")
    assert count(opt, "fused_output") == 2 and count(opt, "assign") == 2 and count(opt, "assign_add") == 0
    assert {opt.op(opt.inputs(n)[1]) for n in nodes_of(opt, "assign")} == {"fused_output"}
    state = {"w": np.full((3, 2), 2.0, np.float32), "m": np.full((3, 2), 0.5, np.float32)}
    gv = {grad.node: np.arange(6, dtype=np.float32).reshape(3, 2)}
    want = evaluate(g, [step.node], gv, state).updates
    got = evaluate(opt, rep.fetches, gv, state).updates
    assert set(got) == {"w", "m"} and all(np.array_equal(got[n], want[n]) for n in want)
    # a variable updated twice in one run keeps its assign_add (the second sees the first)
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.zeros(2, np.float32), name="v")
        grad = gc.placeholder("float32", (2,), name="g")
        step = gc.group(v.assign_add(grad * 2.0), v.assign_add(grad * 3.0))
    opt, _ = check(g, [step], [grad])
    assert count(opt, "assign_add") == 2
    # an assign_add of a constant stays; its readers keep reading the new value (v + 3, not 3)
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.ones((2, 2), np.float32), name="v")
        y = v.assign_add(np.full((2, 2), 3.0, np.float32)) * 2.0
    opt, rep = check(g, [y])
    assert count(opt, "assign_add") == 1
    assert evaluate(opt, rep.fetches, {}, {"v": np.ones((2, 2), np.float32)}).values[0].tolist() == [[8.0] * 2] * 2


# -- end to end -----------------------------------------------------------------------------------------
def test_dense_layer_training_graph_with_variables():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        y_true = gc.placeholder("float32", (None, 2), name="y")
        w = gc.Variable(np.full((3, 2), 0.5, np.float32), name="w")
        b = gc.Variable(np.zeros(2, np.float32), name="b")
        pred = gc.sigmoid(gc.matmul(x, w) + b)
        loss = gc.reduce_mean(gc.square(pred - y_true))
        dw, db = gc.gradients(loss, [w, b])
        step = gc.group(w.assign_sub(dw * 0.1), b.assign_sub(db * 0.1))
    opt, _ = check(g, [loss, step], [x, y_true])
    assert opt.num_nodes() < g.num_nodes()
    # w -= dw * 0.1 became assign(w, w - dw * 0.1), the subtraction fused into the kernel of dw
    assert count(opt, "assign_sub") == 0 and count(opt, "assign") == 2
    for n in nodes_of(opt, "assign"):
        assert opt.op(opt.inputs(n)[1]) in ("fused_elementwise", "fused_contraction")


def test_unfused_random_op_stays_and_keeps_its_values():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4), name="x")
        y = gc.nn.dropout(gc.relu(x * 2.0), rate=0.5, seed=1)
    opt, rep = check(g, [y], [x])
    assert count(opt, "random_uniform") == 1


@pytest.mark.parametrize("n", [1, 3])
def test_optimize_twice_changes_nothing(n):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        h = x
        for _ in range(n):
            h = gc.relu(gc.matmul(h * 1.0, gc.constant(np.eye(3, dtype=np.float32))) + 1.0)
            h = h - gc.reduce_mean(gc.exp(h), axis=1, keepdims=True)
    check(g, [h], [x])
