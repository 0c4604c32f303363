"""TensorFlow-1 names, so that tutorial TF-1 code runs with ``import graphc.compat.v1 as tf``.

    >>> import numpy as np
    >>> import graphc.compat.v1 as tf
    >>> tf.disable_eager_execution()          # a no-op: graphc always builds graphs
    >>> tf.reset_default_graph()
    >>> x = tf.placeholder(tf.float32, [None, 2], name="x")
    >>> y = tf.placeholder(tf.float32, [None, 1], name="y")
    >>> with tf.variable_scope("linear"):
    ...     w = tf.get_variable("w", [2, 1], initializer=tf.zeros_initializer())
    ...     b = tf.get_variable("b", [1], initializer=tf.constant_initializer(0.0))
    >>> loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
    >>> train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    >>> xs = np.array([[1, 0], [0, 1], [1, 1]], np.float32); ys = np.array([[3], [4], [6]], np.float32)
    >>> with tf.Session() as sess:
    ...     sess.run(tf.global_variables_initializer())
    ...     for _ in range(500):
    ...         _ = sess.run(train_op, {x: xs, y: ys})
    ...     print(f"{float(sess.run(loss, {x: xs, y: ys})):.3f}")
    0.000

Everything in ``graphc`` (ops, ``Session``, ``Variable``, ``gradients``, ``nn``,
``train``, ``get_variable``, ``variable_scope``, ``AUTO_REUSE``...) is here under
its TF-1 name, plus the ``*_initializer`` constructors. ``disable_eager_execution``
and ``disable_v2_behavior`` do nothing and return None (graphc has no eager mode);
``executing_eagerly()`` is False. TF-1's functional ``tf.layers`` / ``tf.losses`` /
``tf.metrics`` / ``tf.summary`` are not provided: using them raises an
``AttributeError`` naming graphc's alternative (the Keras-style ``graphc.layers``,
``graphc.losses`` and ``graphc.metrics`` work differently, so they are not
offered under TF-1 names).
"""
from graphc import *  # noqa: F401,F403  (every public graphc name)
from graphc import initializers as _init
from graphc import train, nn, math  # noqa: F401

# Keras-style modules whose TF-1 namesakes have other signatures: not exported under TF-1 names
for _name in ("layers", "losses", "metrics", "models", "callbacks"):
    globals().pop(_name, None)
del _name

_MISSING = {
    "layers": "graphc has no TF-1 functional tf.layers; use graphc.layers (Keras layers) or "
              "tf.get_variable + tf.matmul",
    "losses": "graphc has no TF-1 tf.losses; write the loss with ops (e.g. tf.reduce_mean(tf.square(p - y))) "
              "or tf.nn.softmax_cross_entropy_with_logits_v2",
    "metrics": "graphc has no TF-1 streaming tf.metrics; compute them with ops or use graphc.metrics",
    "summary": "graphc has no tf.summary / TensorBoard writer",
    "contrib": "tf.contrib does not exist in graphc",
    "keras": "use graphc's Keras-style modules directly: graphc.layers, graphc.models, graphc.losses",
    "InteractiveSession": "graphc has no InteractiveSession; use `sess = tf.Session()` and sess.run(...)",
}


def __getattr__(name):
    if name in _MISSING:
        raise AttributeError(f"graphc.compat.v1.{name}: {_MISSING[name]}")
    raise AttributeError(f"module 'graphc.compat.v1' has no attribute {name!r}")


def disable_eager_execution() -> None:
    """No-op kept for TF-1 scripts: graphc always builds graphs and runs them in a Session.

        >>> import graphc.compat.v1 as tf
        >>> tf.disable_eager_execution() is None
        True
    """
    return None


def disable_v2_behavior() -> None:
    """No-op kept for TF-1 scripts (``tf.compat.v1.disable_v2_behavior()``); returns None."""
    return None


def executing_eagerly() -> bool:
    """Always False: graphc has no eager mode."""
    return False


def zeros_initializer(dtype=None):
    """``tf.zeros_initializer()``: an initializer for ``get_variable`` (``dtype`` is ignored:
    ``get_variable`` gives it)."""
    return _init.Zeros()


def ones_initializer(dtype=None):
    """``tf.ones_initializer()``."""
    return _init.Ones()


def constant_initializer(value=0, dtype=None):
    """``tf.constant_initializer(value)`` (a scalar ``value``)."""
    return _init.Constant(value)


def random_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=None):
    """``tf.random_normal_initializer`` (TF-1 default ``stddev=1.0``)."""
    return _init.RandomNormal(mean=mean, stddev=stddev, seed=seed)


def truncated_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=None):
    """``tf.truncated_normal_initializer`` (TF-1 default ``stddev=1.0``)."""
    return _init.TruncatedNormal(mean=mean, stddev=stddev, seed=seed)


def random_uniform_initializer(minval=0.0, maxval=None, seed=None, dtype=None):
    """``tf.random_uniform_initializer`` (TF-1 defaults ``[0, 1)``)."""
    return _init.RandomUniform(minval=minval, maxval=1.0 if maxval is None else maxval, seed=seed)


def glorot_uniform_initializer(seed=None, dtype=None):
    """``tf.glorot_uniform_initializer`` (``get_variable``'s default for floats)."""
    return _init.GlorotUniform(seed=seed)


def glorot_normal_initializer(seed=None, dtype=None):
    """``tf.glorot_normal_initializer``."""
    return _init.GlorotNormal(seed=seed)
