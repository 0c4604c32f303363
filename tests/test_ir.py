"""The graph IR: names, name scopes, default graphs, Tensor handles and operators, Graph utilities."""
import numpy as np
import pytest

import graphc as gc
from graphc.ir import TensorSpec


def run(t, feed=None):
    return gc.Session(t.graph if isinstance(t, gc.Tensor) else None).run(t, feed_dict=feed)


# -- names -------------------------------------------------------------------------------------------
def test_unique_readable_names():
    a = gc.constant(1.0)
    b = gc.constant(2.0)
    assert a.name == "Const" and b.name == "Const_1"
    s1, s2, s3 = gc.add(a, b), gc.add(a, b), a + b
    assert [s1.name, s2.name, s3.name] == ["add", "add_1", "add_2"]
    p = gc.placeholder("float32", (None,))
    assert p.name == "Placeholder"
    assert gc.placeholder("float32", (None,)).name == "Placeholder_1"


def test_name_argument_on_ops():
    a = gc.constant([1.0, 2.0], name="a")
    x = gc.placeholder("float32", (2,), name="x")
    assert a.name == "a" and x.name == "x"
    y = gc.add(a, x, name="sum")
    assert y.name == "sum"
    assert gc.multiply(a, x, name="sum").name == "sum_1"
    assert gc.exp(a, name="e").name == "e"
    assert gc.cast(a, "int32", name="c").name == "c"
    assert gc.matmul(gc.constant([[1.0]]), gc.constant([[2.0]]), name="mm").name == "mm"
    assert gc.reduce_sum(a, name="total").name == "total"
    v = gc.Variable(1.0, name="w")
    assert v.name == "w"
    assert v.assign(2.0, name="set_w").name == "set_w"


def test_explicit_name_colliding_with_generated_name():
    gc.constant(1.0, name="add_1")
    a = gc.constant(1.0, name="a")
    names = [(a + a).name for _ in range(3)]
    assert names[0] == "add"
    assert len(set(names + ["add_1"])) == 4  # never reuses the explicit name
    assert "add_1" not in names


def test_tensor_properties():
    x = gc.placeholder("float32", (None, 3), name="x")
    y = x * 2.0
    assert y.shape == (None, 3)
    assert y.get_shape() == (None, 3)
    assert y.dtype == np.float32
    assert y.dtype.name == "float32"
    assert y.ndim == 2
    assert y.name == "mul"
    assert isinstance(y.op, gc.Operation)
    assert y.op.type == "mul"
    assert y.op.name == "mul"
    assert y.op.inputs[0] == x
    assert y.op.outputs == [y]
    assert "mul" in repr(y)
    assert y.graph is gc.get_default_graph()


def test_name_scope():
    with gc.name_scope("dense"):
        w = gc.constant(1.0, name="w")
        y = w * w
    z = gc.constant(1.0, name="w")
    assert w.name == "dense/w"
    assert y.name == "dense/mul"
    assert z.name == "w"


def test_nested_name_scopes():
    with gc.name_scope("outer"):
        with gc.name_scope("inner") as scope:
            c = gc.constant(1.0, name="c")
        d = gc.constant(1.0, name="d")
    assert scope == "outer/inner/"
    assert c.name == "outer/inner/c"
    assert d.name == "outer/d"


def test_reentered_name_scope_gets_suffix():
    with gc.name_scope("layer") as s0:
        a = gc.constant(1.0, name="w")
    with gc.name_scope("layer") as s1:
        b = gc.constant(1.0, name="w")
    with gc.name_scope("layer") as s2:
        c = gc.constant(1.0, name="w")
    assert (s0, s1, s2) == ("layer/", "layer_1/", "layer_2/")
    assert (a.name, b.name, c.name) == ("layer/w", "layer_1/w", "layer_2/w")
    with gc.name_scope("outer"):
        with gc.name_scope("inner"):
            x = gc.constant(1.0, name="x")
        with gc.name_scope("inner"):
            y = gc.constant(1.0, name="x")
    assert x.name == "outer/inner/x" and y.name == "outer/inner_1/x"


def test_by_name_lookup():
    g = gc.get_default_graph()
    with gc.name_scope("s"):
        t = gc.constant(3.0, name="t")
    assert g.by_name("s/t") == t.node
    assert g.by_name("s/t:0") == t.node
    with pytest.raises(KeyError, match="nope"):
        g.by_name("nope")


def test_variable_names_are_readable():
    v = gc.Variable(1.0, name="w")
    assert v.name == "w"
    assert v.initializer.name.startswith("w/")
    assert v.initial_value.name.startswith("w/")
    v1 = gc.Variable(1.0)
    v2 = gc.Variable(1.0)
    assert v1.name == "Variable" and v2.name == "Variable_1"
    # the initial value of a variable lives under that variable's own name
    assert v2.initializer.name.startswith("Variable_1/")
    assert v2.initial_value.name.startswith("Variable_1/"), v2.initial_value.name


# -- default graph --------------------------------------------------------------------------------------
def test_graph_as_default_and_get_default_graph():
    outer = gc.get_default_graph()
    g = gc.Graph()
    with g.as_default() as entered:
        assert entered is g
        assert gc.get_default_graph() is g
        c = gc.constant(1.0)
        g2 = gc.Graph()
        with g2.as_default():
            assert gc.get_default_graph() is g2
            d = gc.constant(2.0)
        assert gc.get_default_graph() is g
    assert gc.get_default_graph() is outer
    assert c.graph is g and d.graph is g2
    assert outer.num_nodes() == 0
    assert g.num_nodes() == 1
    # names are per graph
    assert c.name == "Const" and d.name == "Const"


def test_reset_default_graph():
    g0 = gc.get_default_graph()
    gc.constant(1.0)
    gc.reset_default_graph()
    g1 = gc.get_default_graph()
    assert g1 is not g0
    assert g1.num_nodes() == 0
    assert gc.constant(1.0).name == "Const"


def test_reset_default_graph_inside_as_default_is_an_error():
    g = gc.Graph()
    with g.as_default():
        with pytest.raises(gc.GraphError, match="as_default"):
            gc.reset_default_graph()


def test_session_uses_default_graph_and_with_block_makes_its_graph_default():
    g = gc.Graph()
    with g.as_default():
        c = gc.constant(2.0)
    sess = gc.Session(g)
    with sess:
        assert gc.get_default_graph() is g
        d = c * 3.0
        assert float(sess.run(d)) == 6.0
    assert d.graph is g


def test_mixing_graphs_is_a_clear_error():
    g1, g2 = gc.Graph(), gc.Graph()
    with g1.as_default():
        a = gc.constant(1.0, name="a")
    with g2.as_default():
        b = gc.constant(1.0, name="b")
    with pytest.raises(gc.GraphError) as ei:
        a + b
    msg = str(ei.value)
    assert "different graphs" in msg
    assert "a" in msg and "b" in msg
    assert "as_default" in msg
    with pytest.raises(gc.GraphError):
        gc.matmul(gc.reshape(a, (1, 1)), gc.reshape(b, (1, 1)))


def test_op_with_python_value_goes_into_the_tensor_graph():
    g = gc.Graph()
    with g.as_default():
        a = gc.constant([1.0, 2.0])
    y = a + 1.0  # default graph is another one here
    assert y.graph is g
    np.testing.assert_array_equal(gc.Session(g).run(y), [2.0, 3.0])
    assert gc.get_default_graph().num_nodes() == 0


# -- operators ----------------------------------------------------------------------------------------------
def test_python_arithmetic_operators():
    xv = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    yv = np.array([[0.5, 2.0], [-1.0, 3.0]], np.float32)
    x, y = gc.constant(xv), gc.constant(yv)
    sess = gc.Session()
    cases = {
        "add": (x + y, xv + yv), "radd": (1.0 + x, 1.0 + xv),
        "sub": (x - y, xv - yv), "rsub": (1.0 - x, 1.0 - xv),
        "mul": (x * y, xv * yv), "rmul": (2 * x, 2 * xv),
        "div": (x / y, xv / yv), "rdiv": (1.0 / y, 1.0 / yv),
        "matmul": (x @ y, xv @ yv),
        "pow": (y ** 2, yv ** 2), "rpow": (2.0 ** x, 2.0 ** xv),
        "neg": (-x, -xv), "abs": (abs(x), np.abs(xv)), "pos": (+x, xv),
    }
    for key, (t, ref) in cases.items():
        out = sess.run(t)
        assert out.dtype == np.float32, key
        np.testing.assert_allclose(out, ref, rtol=1e-6, err_msg=key)


def test_operators_with_numpy_operands():
    xv = np.array([1.0, 2.0, 3.0], np.float32)
    x = gc.constant(xv)
    c = np.array([2.0, 2.0, 2.0], np.float32)
    out = gc.Session().run([x * c, c * x, c - x, np.float32(3.0) + x])
    np.testing.assert_array_equal(out[0], xv * 2)
    np.testing.assert_array_equal(out[1], xv * 2)
    np.testing.assert_array_equal(out[2], 2 - xv)
    np.testing.assert_array_equal(out[3], xv + 3)
    assert all(isinstance(o, np.ndarray) for o in out)


def test_comparison_operators_give_bool():
    xv = np.array([1, 2, 3, 4], np.int32)
    x = gc.constant(xv)
    sess = gc.Session()
    for t, ref in [(x < 3, xv < 3), (x <= 3, xv <= 3), (x > 2, xv > 2), (x >= 2, xv >= 2),
                   (2 < x, 2 < xv)]:
        assert t.dtype == np.bool_
        assert t.shape == (4,)
        out = sess.run(t)
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(out, ref)


def test_logical_operators_on_bool():
    a = gc.constant([True, True, False, False])
    b = gc.constant([True, False, True, False])
    sess = gc.Session()
    np.testing.assert_array_equal(sess.run(a & b), [True, False, False, False])
    np.testing.assert_array_equal(sess.run(a | b), [True, True, True, False])
    np.testing.assert_array_equal(sess.run(~a), [False, False, True, True])


def test_equality_is_identity_and_tensors_are_hashable():
    a = gc.constant([1.0, 2.0])
    b = gc.constant([1.0, 2.0])
    assert (a == a) is True
    assert (a == b) is False
    assert (a != b) is True
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    # a fresh handle to the same node is equal and hashes the same
    same = gc.get_default_graph().tensor(a.node)
    assert same == a and hash(same) == hash(a) and d[same] == "a"
    assert a in {a, b}
    assert gc.get_default_graph().num_nodes() == 2  # == built no node


def test_truth_value_and_iteration_are_errors():
    x = gc.placeholder("float32", (None, 3))
    with pytest.raises(TypeError, match="truth value"):
        bool(x > 0)
    with pytest.raises(TypeError):
        iter(x)
    with pytest.raises(TypeError):
        len(x)
    assert len(gc.constant([1.0, 2.0, 3.0])) == 3


def test_slicing_operator():
    xv = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = gc.constant(xv)
    sess = gc.Session()
    keys = [0, -1, (1, 2), slice(1, None), (slice(None), 1), (Ellipsis, 1), (0, slice(None, None, 2)),
            (slice(None), None, slice(1, 3)), (slice(None, None, -1),), (1, Ellipsis, slice(0, 0))]
    for key in keys:
        t = x[key]
        ref = xv[key]
        assert t.shape == ref.shape, key
        out = sess.run(t)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, ref, err_msg=str(key))


def test_slicing_with_none_batch_dim():
    x = gc.placeholder("float32", (None, 4), name="x")
    t = x[:, 1:3]
    assert t.shape == (None, 2)
    u = x[0]
    assert u.shape == (4,)
    sess = gc.Session()
    for n in (1, 5):
        xv = np.arange(4 * n, dtype=np.float32).reshape(n, 4)
        np.testing.assert_array_equal(sess.run(t, {x: xv}), xv[:, 1:3])
        np.testing.assert_array_equal(sess.run(u, {x: xv}), xv[0])


def test_T_property():
    x = gc.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert x.T.shape == (3, 2)
    np.testing.assert_array_equal(gc.Session().run(x.T), np.arange(6).reshape(2, 3).T)


# -- Graph utilities --------------------------------------------------------------------------------------------
def test_graph_structure_queries():
    g = gc.Graph()
    with g.as_default():
        a = gc.constant(1.0, name="a")
        b = gc.constant(2.0, name="b")
        c = gc.subtract(a, b, name="c")
        d = gc.multiply(c, c, name="d")
    assert g.num_nodes() == 4
    assert g.nodes() == sorted([a.node, b.node, c.node, d.node])
    assert g.op(c.node) == "sub"
    assert g.inputs(c.node) == [a.node, b.node]
    assert g.inputs(d.node) == [c.node, c.node]  # one producer feeding two positions
    assert g.consumers(c.node) == [(d.node, 0), (d.node, 1)]
    assert g.spec(d.node) == TensorSpec((), np.dtype("float32"))
    order = g.topo_order()
    assert order.index(a.node) < order.index(c.node) < order.index(d.node)
    assert set(g.topo_order([c.node])) == {a.node, b.node, c.node}
    assert ":" in g.trace(c.node)  # file:line of the user's call site
    assert "test_ir.py" in g.trace(c.node)


def test_graph_copy_is_independent():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None,), name="x")
        y = gc.add(x, 1.0, name="y")
    h = g.copy()
    assert h is not g
    assert h.num_nodes() == g.num_nodes()
    assert h.name(y.node) == "y" and h.by_name("y") == y.node
    # grow the copy: the original is untouched, names continue uniquely in each
    with h.as_default():
        z = h.tensor(y.node) * 2.0
        y2 = gc.add(h.tensor(x.node), 5.0, name="y")
    assert y2.name == "y_1"
    assert z.graph is h
    assert g.num_nodes() == 3 and h.num_nodes() == 7
    with g.as_default():
        assert gc.add(x, 1.0, name="y").name == "y_1"
    # attrs are copied, not shared
    h.attrs(y.node)["marker"] = 1
    assert "marker" not in g.attrs(y.node)
    # removing from the copy leaves the original whole
    h.remove([y.node, z.node])
    assert y.node not in h and y.node in g
    assert g.num_nodes() == 5 and g.by_name("y") == y.node
    out = gc.Session(g).run(y, {x: np.array([1.0, 2.0], np.float32)})
    np.testing.assert_array_equal(out, [2.0, 3.0])
    out = gc.Session(h).run(y2, {h.tensor(x.node): np.array([1.0], np.float32)})
    np.testing.assert_array_equal(out, [6.0])


def test_graph_replace_redirects_consumers():
    g = gc.Graph()
    with g.as_default():
        a = gc.constant([1.0, 2.0], name="a")
        b = gc.constant([10.0, 20.0], name="b")
        c = gc.multiply(a, 3.0, name="c")
        d = gc.add(a, a, name="d")
    g.replace(a.node, b.node)
    assert g.inputs(c.node)[0] == b.node
    assert g.inputs(d.node) == [b.node, b.node]
    assert g.consumers(a.node) == []
    sess = gc.Session(g)
    np.testing.assert_array_equal(sess.run(c), [30.0, 60.0])
    np.testing.assert_array_equal(sess.run(d), [20.0, 40.0])
    g.validate()


def test_graph_replace_refuses_different_specs():
    g = gc.Graph()
    with g.as_default():
        a = gc.constant([1.0, 2.0], name="a")
        b = gc.constant([1.0, 2.0, 3.0], name="b")
        i = gc.constant([1, 2], name="i")
        c = a * 2.0
    with pytest.raises(gc.GraphError, match="a"):
        g.replace(a.node, b.node)
    with pytest.raises(gc.GraphError):
        g.replace(a.node, i.node)
    assert g.inputs(c.node)[0] == a.node


def test_graph_validate_accepts_good_graph():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        v = gc.Variable(np.ones((3, 2), np.float32), name="v")
        y = gc.nn.relu(gc.matmul(x, v)) + 1.0
        gc.reduce_sum(y, axis=1)
        gc.global_variables_initializer()
    g.validate()


def test_graph_validate_catches_corrupted_spec():
    g = gc.Graph()
    with g.as_default():
        a = gc.constant([1.0, 2.0], name="a")
        b = gc.exp(a, name="bad_node")
    g.nx.nodes[b.node]["spec"] = TensorSpec((3,), np.dtype("float32"))
    with pytest.raises(gc.GraphError, match="bad_node"):
        g.validate()
    g.nx.nodes[b.node]["spec"] = TensorSpec((2,), np.dtype("float64"))
    with pytest.raises(gc.GraphError, match="bad_node"):
        g.validate()


def test_graph_validate_catches_cycle_and_bad_positions():
    g = gc.Graph()
    with g.as_default():
        a = gc.constant([1.0, 2.0], name="a")
        b = gc.exp(a, name="b")
        c = gc.exp(b, name="c")
    h = g.copy()
    h.nx.add_edge(c.node, b.node, pos=1)
    with pytest.raises(gc.GraphError, match="cycle"):
        h.validate()
    k = g.copy()
    k.set_inputs(c.node, [])
    k.nx.add_edge(b.node, c.node, pos=1)
    with pytest.raises(gc.GraphError, match="c"):
        k.validate()


def test_set_inputs_and_remove():
    g = gc.Graph()
    with g.as_default():
        a = gc.constant(1.0, name="a")
        b = gc.constant(5.0, name="b")
        c = gc.exp(a, name="c")
    g.set_inputs(c.node, [b.node])
    assert g.inputs(c.node) == [b.node]
    assert float(gc.Session(g).run(c)) == pytest.approx(np.exp(5.0), rel=1e-6)
    g.remove([a.node])
    assert a.node not in g
    with pytest.raises(KeyError):
        g.by_name("a")
    g.validate()


def test_set_input_users_and_num_uses():
    g = gc.Graph()
    with g.as_default():
        a, b = gc.constant(2.0, name="a"), gc.constant(3.0, name="b")
        y = gc.multiply(a, a, name="y")
        z = gc.add(a, b, name="z")
    assert g.users(a.node) == [y.node, z.node] and g.num_uses(a.node) == 3
    g.set_input(y.node, 1, b.node)                       # y = a * b
    assert g.inputs(y.node) == [a.node, b.node] and g.num_uses(a.node) == 2
    assert g.users(b.node) == [z.node, y.node]           # the order reads began
    assert float(gc.Session(g).run(y)) == 6.0
    with pytest.raises(gc.GraphError, match="no input 2"):
        g.set_input(y.node, 2, b.node)
    g.validate()


def test_ancestors_descendants_and_topo_order_with_stop():
    g = gc.Graph()
    with g.as_default():
        a = gc.constant(1.0, name="a")
        b = gc.exp(a, name="b")
        c = gc.constant(2.0, name="c")
        d = gc.add(b, c, name="d")
        e = gc.multiply(d, b, name="e")
        late = gc.constant(4.0, name="late")        # a producer made after its consumer's inputs
    g.set_input(b.node, 0, late.node)               # b = exp(late): late's id is the largest
    names = {t.node: t.name for t in (a, b, c, d, e, late)}
    assert g.ancestors([e.node]) == {b.node, c.node, d.node, e.node, late.node}
    assert g.ancestors([e.node], stop=[b.node]) == {b.node, c.node, d.node, e.node}
    assert g.descendants([b.node]) == {b.node, d.node, e.node}
    assert g.descendants([late.node], stop={d.node}) == {late.node, b.node, d.node, e.node}
    assert g.descendants([c.node], stop={d.node}) == {c.node, d.node}
    assert [names[n] for n in g.topo_order([e.node])] == ["c", "late", "b", "d", "e"]
    # b fed: its producer drops out and the rest keep their order among all ancestors (b after c,
    # though b's id is smaller): the schedule interpreter.schedule and the runtime run
    assert [names[n] for n in g.topo_order([e.node], stop=[b.node])] == ["c", "b", "d", "e"]
    assert g.topo_order([], stop=[b.node]) == []


def test_eval_makes_a_session_through_the_registered_factory(monkeypatch):
    from graphc import ir
    y = gc.constant([1.0, 2.0]) * 2.0
    made = []

    def factory(graph):
        made.append(graph)
        return gc.Session(graph)
    monkeypatch.setattr(ir, "_SESSION_FACTORY", [factory])
    np.testing.assert_array_equal(y.eval(), [2.0, 4.0])
    assert made == [y.graph]
    np.testing.assert_array_equal(y.eval(session=gc.Session(y.graph)), [2.0, 4.0])   # no new one
    assert len(made) == 1
    monkeypatch.setattr(ir, "_SESSION_FACTORY", [None])
    with pytest.raises(gc.GraphError, match="import graphc"):
        y.eval()


def test_tensor_spec_str():
    s = TensorSpec((None, 3), np.dtype("float32"))
    assert s.rank == 2
    assert str(s) == "float32[?,3]"
