"""gc.get_variable / gc.variable_scope / gc.AUTO_REUSE with TF-1 semantics."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


def test_scoped_names_and_nested_scopes():
    with gc.variable_scope("outer"):
        a = gc.get_variable("a", shape=(2,))
        with gc.variable_scope("inner"):
            b = gc.get_variable("b", shape=(3, 4))
            c = gc.add(b, 1.0, name="c")
    assert (a.name, b.name) == ("outer/a", "outer/inner/b")
    assert c.name == "outer/inner/c"               # other ops get the name scope
    assert b.shape == (3, 4) and b.dtype == np.float32 and b.trainable


def test_reuse_true_returns_the_existing_variable():
    with gc.variable_scope("s"):
        w = gc.get_variable("w", shape=(2, 2))
    with gc.variable_scope("s", reuse=True):
        w2 = gc.get_variable("w")
        w3 = gc.get_variable("w", shape=(2, 2))
    assert w2.node == w.node == w3.node
    assert len(gc.global_variables()) == 1


def test_creating_an_existing_name_raises_like_tf():
    with gc.variable_scope("scope"):
        gc.get_variable("w", shape=())
    with pytest.raises(ValueError, match=r"^Variable scope/w already exists, disallowed\. "
                                         r"Did you mean to set reuse=True"):
        with gc.variable_scope("scope"):
            gc.get_variable("w", shape=())


def test_reusing_a_missing_variable_raises():
    with pytest.raises(ValueError, match="Variable scope/nope does not exist"):
        with gc.variable_scope("scope", reuse=True):
            gc.get_variable("nope", shape=())


def test_sharing_with_another_shape_or_dtype_raises():
    with gc.variable_scope("s"):
        gc.get_variable("w", shape=(2,))
    with gc.variable_scope("s", reuse=True):
        with pytest.raises(ValueError, match=r"share variable s/w.*\(3,\).*\(2,\)"):
            gc.get_variable("w", shape=(3,))
        with pytest.raises(ValueError, match="dtype int32"):
            gc.get_variable("w", dtype="int32")


def test_auto_reuse():
    def layer(x):
        with gc.variable_scope("dense", reuse=gc.AUTO_REUSE):
            w = gc.get_variable("w", initializer=np.full((2,), 2.0, np.float32))
        return x * w
    y1, y2 = layer(gc.constant([1.0, 1.0])), layer(gc.constant([3.0, 3.0]))
    assert len(gc.global_variables()) == 1
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    assert s.run(y1).tolist() == [2.0, 2.0] and s.run(y2).tolist() == [6.0, 6.0]


def test_reuse_is_inherited_and_cannot_be_turned_off():
    with gc.variable_scope("a"):
        with gc.variable_scope("b"):
            v = gc.get_variable("v", shape=())
    with gc.variable_scope("a", reuse=True):
        with gc.variable_scope("b", reuse=False) as sc:
            assert sc.reuse is True
            assert gc.get_variable("v").node == v.node


def test_scope_object_and_reuse_variables():
    with gc.variable_scope("net") as scope:
        v = gc.get_variable("v", shape=(1,))
        gc.get_variable_scope().reuse_variables()
        assert gc.get_variable("v").node == v.node
    with gc.variable_scope(scope, reuse=True):
        assert gc.get_variable("v").node == v.node
    with gc.name_scope("elsewhere"), gc.variable_scope(scope, reuse=True):
        assert gc.get_variable("v").node == v.node        # variable names ignore name scopes


def test_initializers_and_defaults():
    gc.initializers.set_seed(0)
    with gc.variable_scope("i", initializer=gc.initializers.Constant(0.5)):
        a = gc.get_variable("a", shape=(2,))
        b = gc.get_variable("b", shape=(2,), initializer="ones")
        c = gc.get_variable("c", initializer=gc.constant([1.0, 2.0, 3.0]))
    g = gc.get_variable("glorot", shape=(50, 50))
    n = gc.get_variable("count", shape=(), dtype="int64")
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    assert s.run(a).tolist() == [0.5, 0.5] and s.run(b).tolist() == [1.0, 1.0]
    assert s.run(c).tolist() == [1.0, 2.0, 3.0]
    gv = s.run(g)
    limit = np.sqrt(6 / 100)
    assert np.all(np.abs(gv) <= limit) and gv.std() > limit / 4         # glorot_uniform by default
    assert s.run(n) == 0 and n.dtype == np.int64


def test_a_new_variable_needs_a_shape_or_a_value():
    with pytest.raises(ValueError, match="Shape of a new variable \\(x\\) must be fully defined"):
        gc.get_variable("x")
    with pytest.raises(ValueError, match="shape \\(2,\\) but shape=\\(3,\\)"):
        gc.get_variable("y", shape=(3,), initializer=[1.0, 2.0])


def test_variables_are_per_graph():
    g1, g2 = gc.Graph(), gc.Graph()
    with g1.as_default():
        gc.get_variable("w", shape=())
    with g2.as_default():
        w = gc.get_variable("w", shape=())          # no clash with g1's
        assert w.graph is g2
    gc.reset_default_graph()
    gc.get_variable("w", shape=())                   # a fresh default graph forgets them too


def test_name_taken_by_another_node_is_a_clear_error():
    gc.constant(1.0, name="k/w")
    with gc.variable_scope("k"):
        with pytest.raises(ValueError, match="'k/w' is already used in this graph"):
            gc.get_variable("w", shape=())


def test_default_name_is_made_unique():
    with gc.variable_scope(None, default_name="dense"):
        a = gc.get_variable("w", shape=())
    with gc.variable_scope(None, default_name="dense"):
        b = gc.get_variable("w", shape=())
    assert (a.name, b.name) == ("dense/w", "dense_1/w")


def test_get_variable_works_with_the_tf1_optimizers():
    with gc.variable_scope("lin"):
        w = gc.get_variable("w", initializer=np.array([1.0], np.float32))
    op = gc.train.GradientDescentOptimizer(0.5).minimize(gc.reduce_sum(w * w))
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(op)
    assert s.run(w).tolist() == [0.0]
