"""Error messages: each names what is wrong (op, node, shapes, dtypes, placeholder, variable) and the fix."""
import numpy as np
import pytest

import graphc as gc

HERE = "test_errors.py"


def test_error_classes_subclass_builtin_exceptions():
    assert issubclass(gc.ShapeError, ValueError)
    assert issubclass(gc.DtypeError, TypeError)
    assert issubclass(gc.FeedError, ValueError)
    assert issubclass(gc.FetchError, ValueError)
    assert issubclass(gc.UninitializedVariableError, RuntimeError)
    assert issubclass(gc.GraphError, ValueError)
    for cls in (gc.ShapeError, gc.DtypeError, gc.FeedError, gc.FetchError,
                gc.UninitializedVariableError, gc.GraphError):
        assert issubclass(cls, gc.GraphcError)


# -- build-time shape errors ------------------------------------------------------------------------------------
def test_incompatible_shapes_name_op_node_shapes_and_call_site():
    a = gc.constant(np.ones((4, 5), np.float32), name="a")
    b = gc.constant(np.ones((6,), np.float32), name="b")
    with pytest.raises(gc.ShapeError) as ei:
        gc.add(a, b, name="my_sum")
    msg = str(ei.value)
    assert "add" in msg
    assert "my_sum" in msg
    assert "(4, 5)" in msg or "[4,5]" in msg
    assert "(6,)" in msg or "[6]" in msg
    assert HERE in msg  # where the user built it
    assert "broadcast" in msg
    assert gc.get_default_graph().num_nodes() == 2  # the failed op left no node behind


def test_incompatible_shapes_via_operator_names_default_node_name():
    a = gc.placeholder("float32", (None, 3), name="x")
    b = gc.constant(np.ones((4,), np.float32))
    with pytest.raises(gc.ShapeError) as ei:
        a * b
    msg = str(ei.value)
    assert "mul" in msg
    assert "3" in msg and "4" in msg
    assert "?" in msg or "None" in msg  # the unknown batch dim is shown


def test_matmul_shape_error_names_inner_dims():
    a = gc.constant(np.ones((2, 3), np.float32), name="a")
    b = gc.constant(np.ones((4, 5), np.float32), name="b")
    with pytest.raises(gc.ShapeError) as ei:
        gc.matmul(a, b, name="proj")
    msg = str(ei.value)
    assert "matmul" in msg and "proj" in msg
    assert "3" in msg and "4" in msg
    with pytest.raises(ValueError):
        a @ b


def test_reshape_error_names_sizes():
    x = gc.constant(np.ones((2, 3), np.float32))
    with pytest.raises(gc.ShapeError) as ei:
        gc.reshape(x, (4, 2), name="r")
    msg = str(ei.value)
    assert "reshape" in msg and "r" in msg
    assert "6" in msg or "(2, 3)" in msg


def test_reduce_axis_out_of_range():
    x = gc.constant(np.ones((2, 3), np.float32))
    with pytest.raises(gc.ShapeError) as ei:
        gc.reduce_sum(x, axis=2)
    msg = str(ei.value)
    assert "reduce_sum" in msg and "2" in msg and "range" in msg


def test_assign_shape_and_dtype_errors():
    v = gc.Variable(np.zeros((2,), np.float32), name="w")
    with pytest.raises(gc.ShapeError) as ei:
        v.assign(np.zeros(3, np.float32))
    msg = str(ei.value)
    assert "assign" in msg and "(2,)" in msg and "(3,)" in msg
    with pytest.raises(gc.DtypeError) as ei:
        v.assign_add(gc.constant([1, 2]))
    msg = str(ei.value)
    assert "int32" in msg and "float32" in msg and "cast" in msg


def test_variable_needs_known_shape_and_assign_needs_variable():
    x = gc.placeholder("float32", (None, 3))
    with pytest.raises(gc.ShapeError, match="fully known"):
        gc.Variable(x)
    with pytest.raises(TypeError, match="Variable"):
        gc.assign(gc.constant(1.0), 2.0)


def test_bad_placeholder_shape_and_constant_shape():
    with pytest.raises(gc.ShapeError, match="negative"):
        gc.placeholder("float32", (2, -3), name="p")
    with pytest.raises(gc.ShapeError) as ei:
        gc.constant([1.0, 2.0, 3.0], shape=(2, 2), name="k")
    assert "k" in str(ei.value) and "3" in str(ei.value)


# -- build-time dtype errors -------------------------------------------------------------------------------------
def test_dtype_mismatch_names_both_dtypes_and_suggests_cast():
    a = gc.constant(np.ones(3, np.float32), name="a")
    b = gc.constant(np.ones(3, np.float64), name="b")
    with pytest.raises(gc.DtypeError) as ei:
        gc.add(a, b, name="mixed")
    msg = str(ei.value)
    assert "float32" in msg and "float64" in msg
    assert "gc.cast" in msg
    assert "add" in msg and "mixed" in msg
    i = gc.constant([1, 2, 3])
    with pytest.raises(gc.DtypeError) as ei:
        a - i
    msg = str(ei.value)
    assert "float32" in msg and "int32" in msg and "gc.cast" in msg


def test_int_tensor_with_non_integral_python_float():
    i = gc.placeholder("int32", (None,), name="counts")
    with pytest.raises(gc.DtypeError) as ei:
        i * 0.5
    msg = str(ei.value)
    assert "0.5" in msg and "int32" in msg and "cast" in msg


@pytest.mark.parametrize("make,kind", [
    (lambda: gc.exp(gc.constant([1, 2])), "int32"),
    (lambda: gc.sqrt(gc.constant([True])), "bool"),
    (lambda: gc.constant([1, 2]) / gc.constant([3, 4]), "int32"),
    (lambda: gc.constant([True]) + gc.constant([False]), "bool"),
    (lambda: gc.less(gc.constant([True]), gc.constant([False])), "bool"),
    (lambda: gc.logical_and(gc.constant([1.0]), gc.constant([0.0])), "float32"),
])
def test_unsupported_dtype_names_dtype_and_suggests_cast(make, kind):
    with pytest.raises(gc.DtypeError) as ei:
        make()
    msg = str(ei.value)
    assert kind in msg
    assert "cast" in msg, msg


def test_where_condition_must_be_bool():
    x = gc.constant([1.0, -1.0])
    with pytest.raises(gc.DtypeError) as ei:
        gc.where(x, x, x)
    msg = str(ei.value)
    assert "bool" in msg and "float32" in msg
    with pytest.raises(ValueError, match="both x and y"):
        gc.where(x > 0)


def test_unknown_dtype_lists_supported_ones():
    with pytest.raises(gc.DtypeError) as ei:
        gc.placeholder("float16", (2,))
    msg = str(ei.value)
    assert "float16" in msg and "float32" in msg and "int64" in msg
    with pytest.raises(gc.DtypeError) as ei:
        gc.constant(np.array([1 + 2j]))
    assert "complex" in str(ei.value)
    with pytest.raises(gc.DtypeError):
        gc.constant("hello")


# -- run-time errors ---------------------------------------------------------------------------------------------
def test_missing_feed_names_the_placeholder():
    x = gc.placeholder("float32", (None, 784), name="images")
    y = gc.reduce_sum(x * 2.0, name="total")
    sess = gc.Session()
    with pytest.raises(gc.FeedError) as ei:
        sess.run(y)
    msg = str(ei.value)
    assert "images" in msg
    assert "feed_dict" in msg
    assert "total" in msg  # the fetch that needs it


def test_missing_one_of_two_feeds_names_the_right_one():
    x = gc.placeholder("float32", (2,), name="xs")
    y = gc.placeholder("float32", (2,), name="ys")
    z = x + y
    with pytest.raises(gc.FeedError) as ei:
        gc.Session().run(z, {x: np.ones(2, np.float32)})
    msg = str(ei.value)
    assert "'ys'" in msg and "'xs'" not in msg


def test_feed_of_wrong_shape_names_placeholder_and_expected_shape():
    x = gc.placeholder("float32", (None, 784), name="x")
    y = x + 1.0
    sess = gc.Session()
    with pytest.raises(gc.ShapeError) as ei:
        sess.run(y, {x: np.zeros((2, 783), np.float32)})
    msg = str(ei.value)
    assert "'x'" in msg
    assert "(None, 784)" in msg
    assert "(2, 783)" in msg
    with pytest.raises(gc.ShapeError) as ei:
        sess.run(y, {x: np.zeros((784,), np.float32)})  # wrong rank
    assert "'x'" in str(ei.value) and "(None, 784)" in str(ei.value)


def test_feed_of_wrong_dtype_names_placeholder_and_dtypes():
    labels = gc.placeholder("int32", (None,), name="labels")
    y = labels + 1
    sess = gc.Session()
    with pytest.raises(gc.DtypeError) as ei:
        sess.run(y, {labels: np.array([0.5, 1.5])})
    msg = str(ei.value)
    assert "'labels'" in msg and "float64" in msg and "int32" in msg
    assert "astype" in msg
    mask = gc.placeholder("bool", (2,), name="mask")
    with pytest.raises(gc.DtypeError) as ei:
        sess.run(gc.logical_not(mask), {mask: np.array([1, 0])})
    assert "'mask'" in str(ei.value)
    with pytest.raises(gc.DtypeError):
        sess.run(y, {labels: np.array(["a", "b"])})


def test_feed_of_a_symbolic_tensor_is_an_error():
    x = gc.placeholder("float32", (2,), name="x")
    with pytest.raises(gc.FeedError) as ei:
        gc.Session().run(x * 2.0, {x: gc.constant([1.0, 2.0])})
    msg = str(ei.value)
    assert "'x'" in msg and "symbolic" in msg


def test_unknown_fetch_name():
    gc.constant(1.0, name="a")
    sess = gc.Session()
    with pytest.raises(gc.FetchError) as ei:
        sess.run("logits:0")
    assert "logits" in str(ei.value)
    with pytest.raises(gc.FetchError) as ei:
        sess.run(["a", "nope"])
    assert "nope" in str(ei.value)


def test_unknown_feed_key_name():
    x = gc.placeholder("float32", (2,), name="x")
    with pytest.raises(gc.GraphcError) as ei:
        gc.Session().run(x * 1.0, {"x": [1.0, 2.0], "xx": [1.0]})
    assert "xx" in str(ei.value)


@pytest.mark.parametrize("bad", [3, 1.5, None, object(), np.ones(2)])
def test_fetch_of_a_non_tensor(bad):
    with pytest.raises(gc.FetchError) as ei:
        gc.Session().run(bad)
    msg = str(ei.value)
    assert "fetch" in msg and "tensor" in msg


def test_fetch_from_another_graph():
    g = gc.Graph()
    with g.as_default():
        c = gc.constant(1.0, name="other_c")
    with pytest.raises(gc.FetchError) as ei:
        gc.Session().run(c)
    msg = str(ei.value)
    assert "other_c" in msg and "graph" in msg


def test_fetch_of_removed_node():
    c = gc.constant(1.0, name="gone")
    gc.get_default_graph().remove([c.node])
    with pytest.raises(gc.FetchError, match="gone|no longer"):
        gc.Session().run(c)


def test_uninitialized_variable_is_named_with_the_fix():
    w = gc.Variable(np.ones((2, 2), np.float32), name="weights")
    y = gc.reduce_sum(w * 2.0)
    sess = gc.Session()
    for fetch in (w, y, w.assign_add(np.ones((2, 2), np.float32))):
        with pytest.raises(gc.UninitializedVariableError) as ei:
            sess.run(fetch)
        msg = str(ei.value)
        assert "'weights'" in msg
        assert "global_variables_initializer" in msg
    sess.run(gc.global_variables_initializer())
    assert float(sess.run(y)) == 8.0


def test_assign_on_uninitialized_variable_initializes_it():
    v = gc.Variable(0.0, name="v")
    sess = gc.Session()
    sess.run(v.assign(5.0))
    assert float(sess.run(v)) == 5.0


@pytest.mark.parametrize("executor", ["reference", "compiled"])
def test_runtime_shape_mismatch_between_unknown_dims_names_the_op(executor):
    x = gc.placeholder("float32", (None,), name="x")
    y = gc.placeholder("float32", (None,), name="y")
    z = gc.add(x, y, name="joined")
    with pytest.raises(ValueError) as ei:
        gc.Session(executor=executor).run(z, {x: np.ones(3, np.float32), y: np.ones(4, np.float32)})
    msg = str(ei.value)
    assert "3" in msg and "4" in msg and "(4,)" in msg
    assert "joined" in msg, msg  # which node failed, as TensorFlow reports it


def test_truth_value_error_explains_symbolic_tensor():
    x = gc.placeholder("float32", (), name="flag")
    with pytest.raises(TypeError) as ei:
        if x > 0:
            pass
    msg = str(ei.value)
    assert "symbolic" in msg and "Session" in msg


def test_reset_default_graph_inside_block_message():
    with gc.Graph().as_default():
        with pytest.raises(gc.GraphError) as ei:
            gc.reset_default_graph()
    assert "as_default" in str(ei.value)


def test_feeds_that_would_change_value_when_cast_are_refused():
    # int64 beyond int32 wrapped (2**40 + 5 became 5), float64 1e300 became inf; ragged lists
    xi = gc.placeholder("int32", (None,), name="xi")
    yf = gc.placeholder("float32", (None,), name="yf")
    sess = gc.Session()
    with pytest.raises(gc.FeedError, match=r"'xi' holds 1099511627781, outside int32's range"):
        sess.run(xi * 1, {xi: np.array([1, 2 ** 40 + 5])})
    with pytest.raises(gc.FeedError, match=r"'yf' holds 1e\+300, beyond float32's range"):
        sess.run(yf * 1.0, {yf: np.array([0.5, 1e300])})
    with pytest.raises(gc.FeedError, match=r"'yf' is not a rectangular array"):
        sess.run(yf * 1.0, {yf: [[1.0, 2.0], [3.0]]})
    call = sess.make_callable(xi * 1, [xi])
    with pytest.raises(gc.FeedError, match="outside int32's range"):
        call(np.array([-2 ** 33]))
    # in range, and infinities that were infinities: converted as before
    assert sess.run(xi * 1, {xi: np.array([2 ** 31 - 1])}).tolist() == [2 ** 31 - 1]
    assert np.isinf(sess.run(yf * 1.0, {yf: np.array([np.inf])})).all()


def test_fit_and_evaluate_refuse_inputs_they_would_misread():
    from graphc.layers import Dense
    from graphc.models import Sequential
    m = Sequential([Dense(3, activation="softmax", input_dim=4)])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match=r"sparse labels must be whole class indices, got 0\.7"):
        m.fit(x, np.array([0.7, 1.0, 2.0, 9.7]), verbose=0)
    m.fit(x, np.array([0.0, 1.0, 2.0, 1.0]), verbose=0)        # whole floats are fine
    with pytest.raises(ValueError, match="evaluate: model .* got 0 samples"):
        m.evaluate(x[:0], np.zeros(0, np.int32), verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        m.fit(x, np.zeros(4, np.int32), batch_size=-3, verbose=0)
