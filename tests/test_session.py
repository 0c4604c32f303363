"""Session: fetches, feeds, variable state, atomic runs, closing, value ownership."""
import numpy as np
import pytest

import graphc as gc


def init_session(graph=None, executor=None):
    s = gc.Session(graph, executor=executor)
    s.run(gc.global_variables_initializer(graph))
    return s


@pytest.fixture(params=["reference", "compiled"])
def executor(request):
    """Both executors must give the same Session semantics."""
    return request.param


# -- fetches ------------------------------------------------------------------------------------------------
def test_fetch_by_name_and_by_op():
    a = gc.constant([1.0, 2.0], name="a")
    b = gc.multiply(a, 2.0, name="b")
    sess = gc.Session()
    np.testing.assert_array_equal(sess.run("b"), [2.0, 4.0])
    np.testing.assert_array_equal(sess.run("b:0"), [2.0, 4.0])
    np.testing.assert_array_equal(sess.run(["a", b]), [[1.0, 2.0], [2.0, 4.0]])


def test_fetching_an_operation_returns_none(executor):
    """As in TensorFlow 1: fetching an Operation (not its output tensor) runs it and gives None."""
    v = gc.Variable(1.0)
    inc = v.assign_add(1.0)
    sess = init_session(executor=executor)
    assert sess.run(inc.op) is None
    assert float(sess.run(v)) == 2.0


def test_same_tensor_fetched_twice_runs_once(executor):
    v = gc.Variable(0)
    inc = v.assign_add(1)
    sess = init_session(executor=executor)
    out = sess.run([inc, inc, {"again": inc}])
    assert int(out[0]) == 1 and int(out[1]) == 1 and int(out[2]["again"]) == 1
    assert int(sess.run(v)) == 1


def test_two_assigns_in_one_run_both_apply(executor):
    v = gc.Variable(0)
    a1 = v.assign_add(1)
    a2 = v.assign_add(10)
    sess = init_session(executor=executor)
    sess.run(gc.group(a1, a2))
    assert int(sess.run(v)) == 11


def test_dict_fetch_with_tensor_keys():
    a = gc.constant(1.0)
    b = gc.constant(2.0)
    out = gc.Session().run({a: b, b: a})
    assert float(out[a]) == 2.0 and float(out[b]) == 1.0


def test_run_returns_numpy_arrays_for_scalars():
    out = gc.Session().run(gc.constant(3.0) * 2.0)
    assert isinstance(out, np.ndarray)
    assert out.shape == () and out.dtype == np.float32 and float(out) == 6.0


def test_only_needed_nodes_run():
    """A fetch that does not depend on an unfed placeholder or uninitialized variable runs fine."""
    x = gc.placeholder("float32", (None,), name="x")
    v = gc.Variable(1.0, name="v")
    unused = x + v  # noqa: F841
    c = gc.constant(5.0) + 1.0
    assert float(gc.Session().run(c)) == 6.0


# -- feeds ----------------------------------------------------------------------------------------------------
def test_feed_python_lists_and_compatible_dtypes():
    x = gc.placeholder("float32", (None, 2), name="x")
    y = x * 2.0
    sess = gc.Session()
    out = sess.run(y, {x: [[1, 2], [3, 4]]})  # ints into a float placeholder
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[2, 4], [6, 8]])
    out = sess.run(y, {x: np.array([[0.5, 1.5]], np.float64)})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.0, 3.0]])


def test_feed_scalar_placeholder():
    lr = gc.placeholder("float32", (), name="lr")
    y = lr * 10.0
    sess = gc.Session()
    assert float(sess.run(y, {lr: 0.5})) == 5.0
    assert float(sess.run(y, {lr: np.float32(0.25)})) == 2.5


def test_feed_int_and_bool_placeholders():
    i = gc.placeholder("int32", (None,), name="i")
    m = gc.placeholder("bool", (None,), name="m")
    y = gc.where(m, i * 2, i)
    out = gc.Session().run(y, {i: [1, 2, 3], m: [True, False, True]})
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [2, 2, 6])


def test_feeding_an_intermediate_tensor_overrides_it():
    x = gc.placeholder("float32", (2,), name="x")
    h = x * 2.0
    y = h + 1.0
    sess = gc.Session()
    # x need not be fed when h is fed
    np.testing.assert_array_equal(sess.run(y, {h: np.array([10.0, 20.0], np.float32)}), [11.0, 21.0])


def test_feed_all_none_dims():
    x = gc.placeholder("float32", (None, None), name="x")
    y = gc.reduce_sum(x * x, axis=1)
    assert y.shape == (None,)
    sess = gc.Session()
    for shape in [(1, 1), (3, 5), (0, 4), (4, 0)]:
        xv = np.ones(shape, np.float32)
        out = sess.run(y, {x: xv})
        np.testing.assert_array_equal(out, np.sum(xv * xv, axis=1))


# -- variables ----------------------------------------------------------------------------------------------
def test_variable_properties_and_collections():
    w = gc.Variable(np.zeros((3, 2), np.float32), name="w")
    b = gc.Variable(np.zeros((2,), np.float64), name="b", trainable=False)
    assert w.shape == (3, 2) and w.dtype == np.float32 and w.trainable
    assert b.dtype == np.float64 and not b.trainable
    assert gc.global_variables() == [w, b]
    assert gc.trainable_variables() == [w]
    assert isinstance(gc.global_variables()[0], gc.Variable)


def test_variable_dtype_argument_and_tensor_initial_value():
    v = gc.Variable([1, 2], dtype="float64")
    assert v.dtype == np.float64
    u = gc.Variable(gc.constant([1.0, 2.0]) * 3.0)
    sess = init_session()
    np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])
    assert sess.run(v).dtype == np.float64
    np.testing.assert_array_equal(sess.run(u), [3.0, 6.0])


def test_variables_initializer_subset():
    a = gc.Variable(1.0, name="a")
    b = gc.Variable(2.0, name="b")
    sess = gc.Session()
    assert sess.run(gc.variables_initializer([a])) is None
    assert float(sess.run(a)) == 1.0
    with pytest.raises(gc.UninitializedVariableError, match="'b'"):
        sess.run(b)


def test_variable_state_is_per_session_and_graph(executor):
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(1.0, name="v")
        inc = v.assign_add(1.0)
    s1, s2 = init_session(g, executor=executor), init_session(g, executor=executor)
    s1.run(inc)
    s1.run(inc)
    s2.run(inc)
    assert float(s1.run(v)) == 3.0
    assert float(s2.run(v)) == 2.0


def test_assign_from_placeholder_and_from_expression(executor):
    v = gc.Variable(np.zeros(3, np.float32), name="v")
    x = gc.placeholder("float32", (3,), name="x")
    set_v = v.assign(x)
    double = v.assign(v * 2.0)
    sess = init_session(executor=executor)
    xv = np.array([1.0, 2.0, 3.0], np.float32)
    sess.run(set_v, {x: xv})
    xv[:] = 100.0  # the session must hold its own copy of the fed value
    np.testing.assert_array_equal(sess.run(v), [1.0, 2.0, 3.0])
    sess.run(double)
    np.testing.assert_array_equal(sess.run(v), [2.0, 4.0, 6.0])


# -- ownership of returned values (TF returns fresh numpy arrays) ----------------------------------------------
def test_mutating_a_fetched_variable_does_not_change_it(executor):
    v = gc.Variable(np.arange(6, dtype=np.float32), name="v")
    sess = init_session(executor=executor)
    out = sess.run(v)
    out[:] = -1.0
    np.testing.assert_array_equal(sess.run(v), np.arange(6))
    out = sess.run(v.assign_add(np.ones(6, np.float32)))
    out[:] = -1.0
    np.testing.assert_array_equal(sess.run(v), np.arange(6) + 1)


def test_mutating_a_fetched_view_of_a_variable_does_not_change_it(executor):
    v = gc.Variable(np.arange(6, dtype=np.float32), name="v")
    r = gc.reshape(v, (2, 3))
    s = v[1:3]
    i = gc.identity(v)
    sess = init_session(executor=executor)
    for t in (r, s, i):
        out = sess.run(t)
        out[...] = -1.0
        np.testing.assert_array_equal(sess.run(v), np.arange(6), err_msg=t.name)


def test_mutating_a_fetched_constant_does_not_change_the_graph(executor):
    c = gc.constant([1.0, 2.0], name="c")
    sess = gc.Session(executor=executor)
    out = sess.run(c)
    out[0] = 99.0
    np.testing.assert_array_equal(sess.run(c), [1.0, 2.0])
    out = sess.run(gc.reshape(c, (2, 1)))
    out[...] = 7.0
    np.testing.assert_array_equal(sess.run(c), [1.0, 2.0])


def test_constant_snapshots_the_numpy_value(executor):
    a = np.ones(3, np.float32)
    c = gc.constant(a)
    v = gc.Variable(a)
    a[0] = 5.0  # changing the array after building must not change the graph
    sess = init_session(executor=executor)
    np.testing.assert_array_equal(sess.run(c), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(sess.run(v), [1.0, 1.0, 1.0])


# -- failed runs are atomic ------------------------------------------------------------------------------------
def test_failed_run_leaves_variables_unchanged_runtime_shape_error(executor):
    v = gc.Variable(np.array([1.0, 2.0], np.float32), name="v")
    inc = v.assign_add([10.0, 10.0])          # built first: scheduled before the failing op
    x = gc.placeholder("float32", (None,), name="x")
    y = gc.placeholder("float32", (None,), name="y")
    bad = x + y                                # fails at run time when the sizes differ
    sess = init_session(executor=executor)
    with pytest.raises(ValueError):
        sess.run([inc, bad], {x: np.ones(3, np.float32), y: np.ones(4, np.float32)})
    np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])
    with pytest.raises(ValueError):
        sess.run(gc.group(inc, bad), {x: np.ones(3, np.float32), y: np.ones(4, np.float32)})
    np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])
    # the same fetches succeed with good feeds
    sess.run([inc, bad], {x: np.ones(3, np.float32), y: np.ones(3, np.float32)})
    np.testing.assert_array_equal(sess.run(v), [11.0, 12.0])


def test_failed_run_leaves_variables_unchanged_bad_reshape(executor):
    v = gc.Variable(0.0, name="counter")
    w = gc.Variable(np.ones(2, np.float32), name="w")
    step = gc.group(v.assign_add(1.0), w.assign(w * 3.0))
    x = gc.placeholder("float32", (None,), name="x")
    r = gc.reshape(x, (-1, 4))                 # a batch of 6 cannot be reshaped to (-1, 4)
    sess = init_session(executor=executor)
    with pytest.raises(ValueError):
        sess.run([step, r], {x: np.ones(6, np.float32)})
    assert float(sess.run(v)) == 0.0
    np.testing.assert_array_equal(sess.run(w), [1.0, 1.0])


def test_failed_run_after_uninitialized_read_leaves_others_unchanged(executor):
    a = gc.Variable(1.0, name="a")
    b = gc.Variable(2.0, name="b")
    inc_a = a.assign_add(1.0)
    read_b = b * 2.0
    sess = gc.Session(executor=executor)
    sess.run(gc.variables_initializer([a]))
    with pytest.raises(gc.UninitializedVariableError):
        sess.run([inc_a, read_b])
    assert float(sess.run(a)) == 1.0


def test_failed_feed_leaves_variables_unchanged(executor):
    v = gc.Variable(1.0, name="v")
    x = gc.placeholder("float32", (2,), name="x")
    inc = v.assign_add(gc.reduce_sum(x))
    sess = init_session(executor=executor)
    with pytest.raises(gc.ShapeError):
        sess.run(inc, {x: np.ones(3, np.float32)})
    with pytest.raises(gc.FeedError):
        sess.run(inc)
    assert float(sess.run(v)) == 1.0


# -- lifecycle -------------------------------------------------------------------------------------------------
def test_closed_session_refuses_to_run():
    c = gc.constant(1.0)
    with gc.Session() as sess:
        sess.run(c)
    with pytest.raises(RuntimeError, match="closed"):
        sess.run(c)
    s2 = gc.Session()
    s2.close()
    with pytest.raises(RuntimeError):
        s2.run(c)


def test_session_on_explicit_graph_outside_its_default():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("int32", (None,), name="x")
        y = x * 3
    sess = gc.Session(graph=g)
    np.testing.assert_array_equal(sess.run(y, {x: [1, 2]}), [3, 6])
    np.testing.assert_array_equal(sess.run("mul", {"x": [4]}), [12])


def test_run_accepts_options_and_run_metadata_arguments():
    c = gc.constant(2.0)
    assert float(gc.Session().run(c, options=None, run_metadata=None)) == 2.0


# -- make_callable and the memoized fetch structure ----------------------------------------------------------
def _train_graph():
    x = gc.placeholder("float32", (None, 3), name="x")
    y = gc.placeholder("float32", (None, 1), name="y")
    w = gc.Variable(np.full((3, 1), 0.5, np.float32), name="w")
    loss = gc.reduce_mean(gc.square(gc.matmul(x, w) - y))
    step = w.assign_sub(0.1 * gc.gradients(loss, [w])[0])
    return x, y, w, loss, step


def test_make_callable_matches_run_and_commits_state(executor):
    x, y, w, loss, step = _train_graph()
    xb = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    yb = np.ones((4, 1), np.float32)
    s1, s2 = init_session(executor=executor), init_session(executor=executor)
    fn = s2.make_callable([step, loss], [x, y])
    for _ in range(3):
        a = s1.run([step, loss], {x: xb, y: yb})
        b = fn(xb, yb)
        assert isinstance(b, list) and len(b) == 2
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(s1.run(w), s2.run(w))
    assert s1._runs == s2._runs
    assert not s2.state["w"].flags.writeable
    b[0][...] = 7.0            # fetched values are the caller's own
    assert not np.any(s2.run(w) == 7.0)


def test_make_callable_structures_and_feed_order(executor):
    a = gc.placeholder("float32", (None,), name="a")
    b = gc.placeholder("float32", (None,), name="b")
    d = a - b
    sess = gc.Session(executor=executor)
    one, two = np.ones(2, np.float32), np.full(2, 2.0, np.float32)
    np.testing.assert_array_equal(sess.make_callable(d, [b, a])(one, two), [1.0, 1.0])
    out = sess.make_callable({"d": d, "t": (a, gc.group())}, [a, b])(one, two)
    assert set(out) == {"d", "t"} and out["t"][1] is None
    np.testing.assert_array_equal(out["d"], [-1.0, -1.0])
    np.testing.assert_array_equal(sess.make_callable(d * 0.0 + 3.0, [d])(one), [3.0, 3.0])


def test_make_callable_checks_feeds(executor):
    x, y, w, loss, step = _train_graph()
    sess = init_session(executor=executor)
    fn = sess.make_callable(loss, [x, y])
    ok_x, ok_y = np.ones((2, 3), np.float32), np.ones((2, 1), np.float32)
    # lists and float64 are converted as in run
    assert np.isclose(fn([[1.0, 1.0, 1.0]], np.ones((1, 1))), sess.run(loss, {x: ok_x[:1], y: ok_y[:1]}))
    with pytest.raises(gc.errors.ShapeError, match="'x'"):
        fn(np.ones((2, 4), np.float32), ok_y)
    with pytest.raises(gc.errors.ShapeError):
        fn(np.ones(3, np.float32), ok_y)
    with pytest.raises(gc.errors.DtypeError):
        fn(ok_x.astype(np.complex64), ok_y)
    with pytest.raises(TypeError):
        fn(ok_x)
    with pytest.raises(gc.errors.FeedError):
        sess.make_callable(loss, [x, x])
    sess.close()
    with pytest.raises(RuntimeError, match="closed"):
        fn(ok_x, ok_y)


def test_make_callable_failed_run_commits_nothing(executor):
    v = gc.Variable(np.zeros(2, np.float32), name="v")
    idx = gc.placeholder("int64", (None,), name="idx")
    up = v.assign_add(gc.ones(2))
    bad = gc.gather(gc.constant([1.0, 2.0]), idx)
    sess = init_session(executor=executor)
    fn = sess.make_callable([up, bad], [idx])
    fn(np.array([0, 1]))
    with pytest.raises(Exception):
        fn(np.array([5]))
    np.testing.assert_array_equal(sess.run(v), [1.0, 1.0])


def test_make_callable_run_steps(executor):
    x, y, w, loss, step = _train_graph()
    s1, s2 = init_session(executor=executor), init_session(executor=executor)
    rng = np.random.default_rng(0)
    batches = [(rng.random((4, 3), dtype=np.float32), rng.random((4, 1), dtype=np.float32)) for _ in range(4)]
    seen = []
    out = s2.make_callable([step, loss], [x, y]).run_steps(batches, on_step=lambda i, r: seen.append(i))
    ref = [s1.run([step, loss], {x: bx, y: by}) for bx, by in batches]
    assert seen == [0, 1, 2, 3]
    for a, b in zip(ref, out):
        np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(s1.run(w), s2.run(w))


def test_memoized_fetch_structure_still_sees_graph_changes():
    a = gc.constant([1.0, 2.0], name="a")
    b = a * 2.0
    sess = gc.Session()
    for _ in range(2):
        np.testing.assert_array_equal(sess.run([b, a])[0], [2.0, 4.0])
        assert isinstance(sess.run((a, b)), tuple)
        np.testing.assert_array_equal(sess.run(b), [2.0, 4.0])
    sess.graph.remove([b.node])
    with pytest.raises(gc.errors.FetchError, match="no longer"):
        sess.run([b, a])
