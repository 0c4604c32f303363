"""graphc.compat.v1: TF-1 tutorial code runs unchanged with `import graphc.compat.v1 as tf`."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.compat.v1 as tf


def test_alias_module():
    assert gc.compat.v1 is tf
    for name in ("placeholder", "Variable", "Session", "global_variables_initializer", "gradients",
                 "get_variable", "variable_scope", "AUTO_REUSE", "get_variable_scope", "name_scope",
                 "reset_default_graph", "float32", "int64", "matmul", "reduce_mean", "argmax"):
        assert getattr(tf, name) is getattr(gc, name), name
    assert tf.train is gc.train and tf.nn is gc.nn
    assert tf.train.AdamOptimizer is gc.train.AdamOptimizer and tf.train.Saver is gc.train.Saver


def test_eager_switches_are_documented_no_ops():
    assert tf.disable_eager_execution() is None
    assert tf.disable_v2_behavior() is None
    assert tf.executing_eagerly() is False
    assert "no-op" in tf.disable_eager_execution.__doc__.lower()


def test_tf1_names_graphc_does_not_offer_raise_clear_errors():
    with pytest.raises(AttributeError, match="no TF-1 functional tf.layers"):
        tf.layers.dense
    with pytest.raises(AttributeError, match="graphc.layers, graphc.models"):
        tf.keras.layers
    with pytest.raises(AttributeError, match="no tf.summary"):
        tf.summary.scalar
    with pytest.raises(AttributeError, match="has no attribute 'not_a_tf_name'"):
        tf.not_a_tf_name


def test_initializer_constructors():
    tf.set_random_seed(1)
    with tf.variable_scope("init"):
        z = tf.get_variable("z", [2], initializer=tf.zeros_initializer())
        o = tf.get_variable("o", [2], initializer=tf.ones_initializer())
        c = tf.get_variable("c", [2], initializer=tf.constant_initializer(3.0))
        n = tf.get_variable("n", [2000], initializer=tf.random_normal_initializer(stddev=2.0, seed=0))
        t = tf.get_variable("t", [2000], initializer=tf.truncated_normal_initializer(seed=0))
        u = tf.get_variable("u", [2000], initializer=tf.random_uniform_initializer(seed=0))
        g = tf.get_variable("g", [20, 20], initializer=tf.glorot_uniform_initializer(seed=0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        zv, ov, cv, nv, tv, uv, gv = sess.run([z, o, c, n, t, u, g])
    assert zv.tolist() == [0, 0] and ov.tolist() == [1, 1] and cv.tolist() == [3, 3]
    assert 1.8 < nv.std() < 2.2
    assert np.abs(tv).max() <= 2.0 and 0.7 < tv.std() < 1.0     # truncated at 2 stddev
    assert uv.min() >= 0.0 and uv.max() < 1.0 and 0.4 < uv.mean() < 0.6
    assert np.abs(gv).max() <= np.sqrt(6 / 40)


def _softmax_regression(opt, steps):
    """The TF-1 "MNIST for beginners" program on a small separable problem."""
    rng = np.random.default_rng(0)
    centers = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], np.float32)
    labels = rng.integers(0, 3, 300)
    xs = (centers[labels] + rng.normal(0, 0.5, (300, 4))).astype(np.float32)
    ys = np.eye(3, dtype=np.float32)[labels]
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, [None, 4])
    y_ = tf.placeholder(tf.float32, [None, 3])
    with tf.variable_scope("softmax"):
        W = tf.get_variable("W", [4, 3], initializer=tf.zeros_initializer())
        b = tf.get_variable("b", [3], initializer=tf.zeros_initializer())
    y = tf.matmul(x, W) + b
    cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_, logits=y))
    global_step = tf.train.get_or_create_global_step()
    train_step = opt.minimize(cross_entropy, global_step=global_step)
    correct = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    saver = tf.train.Saver()
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    first = sess.run(cross_entropy, {x: xs, y_: ys})
    for i in range(steps):
        sess.run(train_step, feed_dict={x: xs[i % 3::3], y_: ys[i % 3::3]})
    return sess, saver, (first, sess.run(cross_entropy, {x: xs, y_: ys}),
                         sess.run(accuracy, {x: xs, y_: ys}), sess.run(global_step)), W


@pytest.mark.parametrize("make_opt", [
    lambda: tf.train.GradientDescentOptimizer(0.5),
    lambda: tf.train.AdamOptimizer(0.05),
    lambda: tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True),
    lambda: tf.train.RMSPropOptimizer(0.01),
], ids=["sgd", "adam", "momentum", "rmsprop"])
def test_tutorial_softmax_regression_trains(make_opt):
    _, _, (first, last, acc, step), _ = _softmax_regression(make_opt(), 60)
    assert first == pytest.approx(np.log(3), rel=1e-5)
    assert last < 0.5 * first and acc > 0.95 and step == 60


def test_tutorial_checkpoint_round_trip(tmp_path):
    sess, saver, _, W = _softmax_regression(tf.train.AdamOptimizer(0.05), 10)
    path = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=tf.train.get_global_step())
    assert path.endswith("model.ckpt-10")
    trained = sess.run(W)
    sess.run(tf.global_variables_initializer())
    saver.restore(sess, path)
    np.testing.assert_array_equal(sess.run(W), trained)
