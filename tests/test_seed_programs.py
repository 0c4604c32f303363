"""The seed programs of the Foundation issue, written the way a TensorFlow-1 user writes them."""
import collections

import numpy as np
import pytest

import graphc as tf
import graphc as gc


def test_seed_add_with_session_context():
    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    b = tf.constant([[5.0, 6.0], [7.0, 8.0]])
    c = tf.add(a, b)
    with tf.Session() as sess:
        out = sess.run(c)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[6.0, 8.0], [10.0, 12.0]])
    assert str(out) == "[[ 6.  8.]\n [10. 12.]]"


def test_seed_matmul_without_with():
    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    b = tf.constant([[5.0, 6.0], [7.0, 8.0]])
    sess = tf.Session()
    out = sess.run(tf.matmul(a, b))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[19.0, 22.0], [43.0, 50.0]])


def test_seed_int_constants_stay_int():
    a = tf.constant([[1, 2], [3, 4]])
    b = tf.constant([[5, 6], [7, 8]])
    assert a.dtype == np.int32
    sess = tf.Session()
    s = sess.run(tf.add(a, b))
    m = sess.run(tf.matmul(a, b))
    assert s.dtype == np.int32 and m.dtype == np.int32
    np.testing.assert_array_equal(s, [[6, 8], [10, 12]])
    np.testing.assert_array_equal(m, [[19, 22], [43, 50]])


def test_seed_float_constant_is_float32_and_operator_form():
    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    b = tf.constant([[5.0, 6.0], [7.0, 8.0]])
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(a + b), [[6, 8], [10, 12]])
        np.testing.assert_array_equal(sess.run(a @ b), [[19, 22], [43, 50]])


def test_placeholder_784_fed_with_different_batch_sizes():
    x = tf.placeholder("float32", shape=(None, 784), name="x")
    assert x.shape == (None, 784)
    assert x.dtype == np.float32
    assert x.name == "x"
    w = tf.constant(np.full((784, 10), 0.5, np.float32))
    y = tf.matmul(x, w) + 1.0
    assert y.shape == (None, 10)
    rng = np.random.default_rng(0)
    with tf.Session() as sess:
        for batch in (1, 7, 32, 0):
            xv = rng.standard_normal((batch, 784)).astype(np.float32)
            out = sess.run(y, feed_dict={x: xv})
            assert out.shape == (batch, 10)
            assert out.dtype == np.float32
            np.testing.assert_allclose(out, xv @ np.full((784, 10), 0.5, np.float32) + 1.0,
                                       rtol=1e-5, atol=1e-4)


def test_feed_by_placeholder_name():
    x = tf.placeholder("float32", shape=(None, 2), name="x")
    y = x * 3.0
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(y, feed_dict={"x:0": [[1.0, 2.0]]}), [[3.0, 6.0]])
        np.testing.assert_array_equal(sess.run(y, feed_dict={"x": [[1.0, 2.0]]}), [[3.0, 6.0]])


def test_variable_with_global_variables_initializer():
    w = tf.Variable([[1.0, 2.0], [3.0, 4.0]], name="w")
    b = tf.Variable(np.zeros(2, np.float32), name="b")
    x = tf.placeholder("float32", shape=(None, 2), name="x")
    y = tf.matmul(x, w) + b
    init = tf.global_variables_initializer()
    with tf.Session() as sess:
        assert sess.run(init) is None
        out = sess.run(y, feed_dict={x: [[1.0, 1.0]]})
    np.testing.assert_array_equal(out, [[4.0, 6.0]])


def test_variables_keep_values_across_runs():
    v = tf.Variable(0.0, name="counter")
    inc = v.assign_add(1.0)
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    for i in range(1, 4):
        assert float(sess.run(inc)) == float(i)
    assert float(sess.run(v)) == 3.0
    # a second session has its own copy of the state
    other = tf.Session()
    other.run(tf.global_variables_initializer())
    assert float(other.run(v)) == 0.0
    assert float(sess.run(v)) == 3.0


def test_assign_and_assign_add_are_runnable_ops():
    v = tf.Variable([1.0, 2.0])
    set_op = v.assign([10.0, 20.0])
    add_op = v.assign_add([1.0, 1.0])
    sub_op = v.assign_sub([5.0, 5.0])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])
        np.testing.assert_array_equal(sess.run(set_op), [10.0, 20.0])
        np.testing.assert_array_equal(sess.run(v), [10.0, 20.0])
        np.testing.assert_array_equal(sess.run(add_op), [11.0, 21.0])
        np.testing.assert_array_equal(sess.run(sub_op), [6.0, 16.0])
        np.testing.assert_array_equal(sess.run(v), [6.0, 16.0])
        assert sess.run(v).dtype == np.float32


def test_module_level_assign_functions():
    v = tf.Variable(5)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(tf.assign(v, 7))
        assert int(sess.run(v)) == 7
        sess.run(tf.assign_add(v, 3))
        assert int(sess.run(v)) == 10
        assert sess.run(v).dtype == np.int32


def test_initializer_resets_variable():
    v = tf.Variable(1.0)
    inc = v.assign_add(2.0)
    sess = tf.Session()
    init = tf.global_variables_initializer()
    sess.run(init)
    sess.run(inc)
    assert float(sess.run(v)) == 3.0
    sess.run(init)
    assert float(sess.run(v)) == 1.0
    sess.run(v.initializer)
    assert float(sess.run(v)) == 1.0


def test_fetch_structures_returned_in_same_structure():
    a = tf.constant(1.0)
    b = tf.constant([2, 3])
    c = tf.constant([[4.0]])
    sess = tf.Session()
    lst = sess.run([a, b])
    assert isinstance(lst, list) and len(lst) == 2
    assert float(lst[0]) == 1.0
    np.testing.assert_array_equal(lst[1], [2, 3])
    tup = sess.run((a, b, c))
    assert isinstance(tup, tuple) and len(tup) == 3
    np.testing.assert_array_equal(tup[2], [[4.0]])
    d = sess.run({"a": a, "c": c})
    assert isinstance(d, dict) and set(d) == {"a", "c"}
    assert float(d["a"]) == 1.0
    nested = sess.run({"x": [a, (b, c)], "y": {"z": a}})
    assert isinstance(nested["x"], list) and isinstance(nested["x"][1], tuple)
    np.testing.assert_array_equal(nested["x"][1][0], [2, 3])
    assert float(nested["y"]["z"]) == 1.0
    assert sess.run([]) == []
    single = sess.run([a])
    assert isinstance(single, list) and len(single) == 1


def test_fetch_namedtuple_and_ordered_dict():
    P = collections.namedtuple("P", ["loss", "acc"])
    a, b = tf.constant(1.0), tf.constant(2.0)
    sess = tf.Session()
    out = sess.run(P(a, b))
    assert isinstance(out, P)
    assert float(out.loss) == 1.0 and float(out.acc) == 2.0
    od = sess.run(collections.OrderedDict([("b", b), ("a", a)]))
    assert isinstance(od, collections.OrderedDict)
    assert list(od) == ["b", "a"]
    assert float(od["b"]) == 2.0


def test_group_fetches_as_none_and_runs_its_inputs():
    v1 = tf.Variable(1.0)
    v2 = tf.Variable(10.0)
    step = tf.group(v1.assign_add(1.0), v2.assign_add(5.0))
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    assert sess.run(step) is None
    out = sess.run([step, v1])
    assert out[0] is None
    assert float(out[1]) == 2.0  # a variable read sees the value at the start of the run
    assert float(sess.run(v1)) == 3.0  # step ran twice
    assert float(sess.run(v2)) == 20.0
    assert sess.run(tf.no_op()) is None


def test_small_training_loop_tf1_style():
    """Linear regression by hand-written gradient steps: the values persist and converge."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((64, 3)).astype(np.float32)
    true_w = np.array([[1.0], [-2.0], [0.5]], np.float32)
    ys = xs @ true_w
    x = tf.placeholder("float32", (None, 3), name="x")
    y = tf.placeholder("float32", (None, 1), name="y")
    w = tf.Variable(np.zeros((3, 1), np.float32), name="w")
    err = tf.matmul(x, w) - y
    grad = tf.matmul(tf.transpose(x), err) * (1.0 / 64)
    step = w.assign_sub(grad * 0.5)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(200):
            sess.run(step, feed_dict={x: xs, y: ys})
        np.testing.assert_allclose(sess.run(w), true_w, atol=1e-3)


def test_import_as_gc_alias_is_same_module():
    assert gc is tf
    assert gc.float32 == np.float32 and gc.int32 == np.int32
    assert gc.float64 == np.float64 and gc.int64 == np.int64 and gc.bool == np.bool_
    assert isinstance(gc.__version__, str)


def test_eval_on_tensor():
    c = tf.constant([1.0, 2.0]) * 2.0
    np.testing.assert_array_equal(c.eval(), [2.0, 4.0])
    sess = tf.Session()
    np.testing.assert_array_equal(c.eval(session=sess), [2.0, 4.0])


@pytest.mark.parametrize("value,dtype", [(1.5, np.float32), (3, np.int32), (True, np.bool_),
                                         (2 ** 40, np.int64)])
def test_python_values_map_to_tf_dtypes(value, dtype):
    c = tf.constant(value)
    assert c.dtype == dtype
    assert c.shape == ()
    out = tf.Session().run(c)
    assert out.dtype == dtype and out == value
