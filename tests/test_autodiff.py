"""``gc.gradients``: fan-out, stop_gradient, unconnected and integer paths, grad_ys, variables,
higher-order gradients, error messages, and the gradient graph going through the passes."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphError
from graphc.ops.registry import OPS, OpDef, get_op
from gradcheck import check_grad

RNG = np.random.default_rng(7)


def u(*shape):
    return RNG.uniform(-1, 1, size=shape)


def test_variable_gradient():
    """Gradients with respect to variables (read at the start of the run) match finite differences."""
    w0 = np.array([[0.3, -1.2], [0.8, 0.5]])
    x = np.array([[1.0, 2.0], [-0.5, 0.7], [0.2, 0.1]])
    w = gc.Variable(w0, name="w")
    loss = gc.reduce_sum(gc.tanh(gc.matmul(gc.constant(x), w)) ** 2.0)
    (gw,) = gc.gradients(loss, [w])
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    an = s.run(gw)
    num = np.zeros_like(w0)
    for idx in np.ndindex(*w0.shape):
        p, m = w0.copy(), w0.copy()
        p[idx] += 1e-6
        m[idx] -= 1e-6
        num[idx] = (s.run(loss, {w: p}) - s.run(loss, {w: m})) / 2e-6
    np.testing.assert_allclose(an, num, rtol=1e-5, atol=1e-7)



def test_fan_out_accumulates():
    check_grad(lambda x: x[0] * x[0] + gc.sin(x[0]) * x[0] + gc.exp(x[0]), [u(3)])


def test_gradients_of_many_slices_of_one_tensor_are_one_node():
    # an RNN reads x[:, t] for every t (and the gates z[:, k*u:(k+1)*u]): the slice gradients go
    # into one strided_slice_grad_n, not one full-size zero tensor each plus their sum
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float64", (None, 5, 3), name="x")
        h = gc.zeros_like(x[:, 0])
        for t in range(5):
            h = gc.tanh(x[:, t] + h * 0.5)
        loss = gc.reduce_sum(h * h) + gc.reduce_sum(x[:, 2:4] * 3.0)
        gx, = gc.gradients(loss, [x])
    ops = collections.Counter(g.op(n) for n in g.topo_order([gx.node]))    # what gx computes from
    assert ops["strided_slice_grad_n"] == 1 and ops["strided_slice_grad"] == 0
    assert len(g.inputs(gx.node)) == 7              # six slice gradients and x
    check_grad(lambda xs: gc.reduce_sum(gc.stack([gc.tanh(xs[0][:, t]) for t in range(3)]) ** 2)
               + gc.reduce_sum(xs[0][:, 1:] * 2.0), [u(2, 3, 2)])


def test_merged_slice_gradients_stay_usable_elsewhere():
    # add passes dy through, so one slice-gradient tensor can be merged in one sum and still be
    # another result (here the gradient of n itself, and of b): it must stay in the graph
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float64", (4,), name="x")
        b = gc.placeholder("float64", (4,), name="b")
        n = x + x + b
        gn, gx, gb = gc.gradients(gc.reduce_sum(n[0:2]) + gc.reduce_sum(n[1:3] * 2.0), [n, x, b])
        gx1, gb1 = gc.gradients(gc.reduce_sum(n[0:2]), [x, b])     # x's two terms are one tensor
    vals = gc.Session(graph=g).run([gn, gx, gb, gx1, gb1], {x: np.ones(4), b: np.ones(4)})
    np.testing.assert_array_equal(vals[0], [1.0, 3.0, 2.0, 0.0])
    np.testing.assert_array_equal(vals[1], [2.0, 6.0, 4.0, 0.0])
    np.testing.assert_array_equal(vals[2], [1.0, 3.0, 2.0, 0.0])
    np.testing.assert_array_equal(vals[3], [2.0, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(vals[4], [1.0, 1.0, 0.0, 0.0])


def test_stop_gradient_is_respected():
    x = gc.placeholder("float64", (3,))
    y = x * gc.stop_gradient(x * 3.0) + gc.stop_gradient(x)
    (g,) = gc.gradients(gc.reduce_sum(y), [x])
    v = np.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(gc.Session().run(g, {x: v}), 3.0 * v)


def test_stop_gradients_argument():
    x = gc.placeholder("float64", (2,))
    h = x * 2.0
    y = gc.reduce_sum(h * x)
    (g,) = gc.gradients(y, [x], stop_gradients=[h])
    np.testing.assert_allclose(gc.Session().run(g, {x: np.array([1.0, 3.0])}), [2.0, 6.0])


def test_unconnected_and_integer_paths_give_none():
    x = gc.placeholder("float64", (2,))
    z = gc.placeholder("float64", (2,))
    i = gc.placeholder("int32", (2,))
    y = gc.reduce_sum(x * gc.cast(i, "float64"))
    gx, gz, gi = gc.gradients(y, [x, z, i])
    assert gz is None and gi is None and gx is not None
    # through an integer intermediate (cast to int and back) there is no gradient either
    y2 = gc.reduce_sum(gc.cast(gc.cast(x, "int32"), "float64"))
    assert gc.gradients(y2, [x]) == [None]
    # through non-differentiable ops (comparisons, floor, argmax)
    y3 = gc.reduce_sum(gc.floor(x)) + gc.cast(gc.argmax(x, axis=0), "float64")
    assert gc.gradients(y3, [x]) == [None]
    zero = gc.gradients(y, [z], unconnected_gradients="zero")[0]
    np.testing.assert_array_equal(gc.Session().run(zero, {z: np.ones(2)}), np.zeros(2))


def test_grad_ys_weights_the_outputs():
    x = gc.placeholder("float64", (2,))
    (g,) = gc.gradients(x * x, [x], grad_ys=gc.constant(np.array([10.0, -1.0])))
    np.testing.assert_allclose(gc.Session().run(g, {x: np.array([1.0, 2.0])}), [20.0, -4.0])


def test_gradient_with_unknown_batch_dimension():
    x = gc.placeholder("float64", (None, 3))
    b = gc.placeholder("float64", (3,))
    y = gc.reduce_mean(gc.square(x + b))
    gx, gb = gc.gradients(y, [x, b])
    xv, bv = u(4, 3), u(3)
    rx, rb = gc.Session().run([gx, gb], {x: xv, b: bv})
    np.testing.assert_allclose(rx, 2 * (xv + bv) / 12)
    np.testing.assert_allclose(rb, (2 * (xv + bv) / 12).sum(0))


def test_multiple_ys_are_summed():
    x = gc.placeholder("float64", (2,))
    gx = gc.gradients([gc.reduce_sum(x * x), gc.reduce_sum(3.0 * x)], [x])[0]
    np.testing.assert_allclose(gc.Session().run(gx, {x: np.array([1.0, -2.0])}), [5.0, -1.0])


def test_gradient_with_respect_to_an_intermediate_tensor():
    x = gc.placeholder("float64", (2,))
    h = gc.exp(x)
    y = gc.reduce_sum(h * h)
    gh, gx = gc.gradients(y, [h, x])
    xv = np.array([0.1, -0.3])
    rh, rx = gc.Session().run([gh, gx], {x: xv})
    np.testing.assert_allclose(rh, 2 * np.exp(xv))
    np.testing.assert_allclose(rx, 2 * np.exp(2 * xv))


def test_second_order_gradient():
    x = gc.placeholder("float64", (3,))
    (g1,) = gc.gradients(gc.reduce_sum(x ** 3.0 + gc.sin(x)), [x])
    (g2,) = gc.gradients(gc.reduce_sum(g1), [x])
    xv = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(gc.Session().run(g2, {x: xv}), 6 * xv - np.sin(xv), rtol=1e-12)


def test_gradient_nodes_are_named_under_gradients_scope():
    x = gc.placeholder("float64", (2,))
    (g,) = gc.gradients(gc.reduce_sum(gc.tanh(x)), [x])
    assert g.name.startswith("gradients")


def test_op_without_gradient_rule_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(OPS, "no_grad_test_op", OpDef("no_grad_test_op", infer=lambda s, a: s[0],
                                                      reference=lambda v, a: v[0], fusion="opaque"))
    x = gc.placeholder("float64", (2,))
    y = gc.ops.apply("no_grad_test_op", [x])
    with pytest.raises(GraphError, match="no gradient rule"):
        gc.gradients(gc.reduce_sum(y), [x])


def test_gradient_rule_with_wrong_shape_is_a_clear_error(monkeypatch):
    bad = OpDef("bad_grad_test_op", infer=lambda s, a: s[0], reference=lambda v, a: v[0], fusion="opaque",
                grad=lambda x, y, dy, a: [gc.reduce_sum(dy)])
    monkeypatch.setitem(OPS, "bad_grad_test_op", bad)
    x = gc.placeholder("float64", (2,))
    with pytest.raises(GraphError, match="gradient rule of bad_grad_test_op"):
        gc.gradients(gc.reduce_sum(gc.ops.apply("bad_grad_test_op", [x])), [x])


def test_tensors_of_another_graph_are_rejected():
    x = gc.placeholder("float64", (2,))
    g = gc.Graph()
    with g.as_default():
        z = gc.placeholder("float64", (2,))
    with pytest.raises(GraphError, match="another graph"):
        gc.gradients(gc.reduce_sum(x), [z])


def test_backward_elementwise_chains_are_fused_and_shared_with_forward():
    """The gradient graph goes through the same passes: the backward chain of an elementwise
    function fuses, and subexpressions shared with the forward pass are computed once."""
    passes = pytest.importorskip("graphc.passes")
    x = gc.placeholder("float32", (None, 8))
    y = gc.reduce_sum(gc.tanh(gc.sigmoid(x) * 2.0 + 1.0))
    (gx,) = gc.gradients(y, [x])
    g2, report = passes.optimize(x.graph, [y.node, gx.node], feeds=[x.node])
    ops = collections.Counter(g2.op(n) for n in g2.nodes())
    kernels = sum(c for o, c in ops.items() if get_op(o).fusion == "elementwise")
    # forward: sigmoid (shared with the backward pass, computed once) and the tanh chain;
    # backward: one chain. 12 elementwise ops before fusion.
    assert ops["fused_elementwise"] >= 1 and kernels <= 3, dict(ops)
    xv = RNG.normal(size=(4, 8)).astype(np.float32)
    ref = gc.Session(optimize=False, executor="reference").run([y, gx], {x: xv})
    got = gc.Session().run([y, gx], {x: xv})
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
