"""Tests of graphc/ops/random.py: counter-based stateless random numbers."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops import random as R
from graphc.ops.registry import get_op


def build_and_run(build, runs=2, seed=None):
    """Build a fresh graph with ``build()`` and fetch its output ``runs`` times in a new Session."""
    g = gc.Graph()
    with g.as_default():
        if seed is not None:
            gc.set_random_seed(seed)
        t = build()
    sess = gc.Session(g, optimize=False)
    return [sess.run(t) for _ in range(runs)]


# -- the generator ----------------------------------------------------------------------------------
def test_mix64_is_splitmix64():
    # splitmix64 from state 0: the first output is mix64(0 + GOLDEN) = 0xE220A8397B1DCDAF
    assert R.mix64_int(R.GOLDEN) == 0xE220A8397B1DCDAF
    zs = [0, 1, R.GOLDEN, 2**63 + 5, 2**64 - 1, 123456789]
    np.testing.assert_array_equal(R.mix64(np.array(zs, np.uint64)),
                                  np.array([R.mix64_int(z) for z in zs], np.uint64))


def test_bits_follow_the_documented_formula():
    seed, key = 0xDEADBEEF12345678, 42
    stream = R.mix64_int(seed ^ R.mix64_int(key + R.GOLDEN))
    want = [R.mix64_int(stream + (c + 1) * R.GOLDEN) for c in range(5)]
    np.testing.assert_array_equal(R.random_bits(seed, key, np.arange(5)), np.array(want, np.uint64))


def test_reference_is_counter_based():
    """Element i depends only on (seed, key, i): a longer draw extends a shorter one."""
    for op, extra in [("random_uniform", {"minval": 0.0, "maxval": 1.0}),
                      ("random_normal", {"mean": 0.0, "stddev": 1.0}),
                      ("truncated_normal", {"mean": 0.0, "stddev": 1.0})]:
        ref = get_op(op).reference
        for dt in (gc.float32, gc.float64):
            a = ref([], {"shape": (10,), "dtype": dt, "seed": 7, **extra}, 99)
            b = ref([], {"shape": (4, 5), "dtype": dt, "seed": 7, **extra}, 99)
            np.testing.assert_array_equal(a, b.ravel()[:10])
            c = ref([], {"shape": (10,), "dtype": dt, "seed": 7, **extra}, 100)
            assert not np.array_equal(a, c)


def test_uniform_reference_values():
    attrs = {"shape": (6,), "dtype": gc.float32, "seed": 3, "minval": 0.0, "maxval": 1.0}
    bits = R.random_bits(3, 11, np.arange(6))
    want = ((bits >> np.uint64(40)).astype(np.float64) * 2.0 ** -24).astype(np.float32)
    np.testing.assert_array_equal(get_op("random_uniform").reference([], attrs, 11), want)
    attrs64 = dict(attrs, dtype=gc.float64)
    want64 = (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    np.testing.assert_array_equal(get_op("random_uniform").reference([], attrs64, 11), want64)


# -- seeds and runs --------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [gc.random_uniform, gc.random_normal, gc.truncated_normal])
def test_new_values_each_run_same_sequence_in_new_session(fn):
    g = gc.Graph()
    with g.as_default():
        t = fn((3, 4), seed=11)
    s1, s2 = gc.Session(g, optimize=False), gc.Session(g, optimize=False)
    a1, b1 = s1.run(t), s1.run(t)
    a2, b2 = s2.run(t), s2.run(t)
    assert not np.array_equal(a1, b1)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)


def test_op_and_graph_seeds():
    a = build_and_run(lambda: gc.random_uniform((5,), seed=1))
    b = build_and_run(lambda: gc.random_uniform((5,), seed=1))
    c = build_and_run(lambda: gc.random_uniform((5,), seed=2))
    d = build_and_run(lambda: gc.random_uniform((5,), seed=1), seed=9)
    e = build_and_run(lambda: gc.random_uniform((5,), seed=1), seed=9)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], d[0])
    np.testing.assert_array_equal(d[0], e[0])


def test_graph_seed_only_and_no_seed_are_reproducible():
    def two():
        x = gc.random_uniform((4,))
        y = gc.random_uniform((4,))
        return gc.stack([x, y]) if hasattr(gc, "stack") else x - y
    for seed in (None, 5):
        a = build_and_run(two, seed=seed)
        b = build_and_run(two, seed=seed)
        np.testing.assert_array_equal(a[0], b[0])
    g = gc.Graph()
    with g.as_default():
        x, y = gc.random_uniform((4,)), gc.random_uniform((4,))
    vx, vy = gc.Session(g, optimize=False).run([x, y])
    assert not np.array_equal(vx, vy)   # different creation order -> different streams
    assert x.op.attrs["seed"] != y.op.attrs["seed"]


def test_set_random_seed_sets_graph_seed():
    g = gc.Graph()
    with g.as_default():
        gc.set_random_seed(123)
        assert g.seed == 123
        t = gc.random_normal((2,))
    assert gc.get_default_graph().seed is None
    assert t.op.attrs["seed"] == R.combine_seeds(123, None, t.node)


def test_two_ops_in_one_run_differ():
    g = gc.Graph()
    with g.as_default():
        a, b = gc.random_uniform((100,), seed=1), gc.random_uniform((100,), seed=2)
    va, vb = gc.Session(g, optimize=False).run([a, b])
    assert not np.array_equal(va, vb)


# -- distributions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_range_and_moments(dtype):
    t = gc.random_uniform((200, 500), minval=-2.0, maxval=3.0, dtype=dtype, seed=4)
    assert t.shape == (200, 500) and t.dtype == gc.as_dtype(dtype)
    v = gc.Session(optimize=False).run(t)
    assert v.dtype == np.dtype(dtype)
    assert v.min() >= -2.0 and v.max() < 3.0
    assert abs(v.mean() - 0.5) < 0.02
    assert abs(v.var() - 25 / 12) < 0.03
    assert len(np.unique(v)) > 90000


def test_uniform_float32_stays_below_maxval():
    v = gc.Session(optimize=False).run(gc.random_uniform((100000,), 1.0, 1.0000001, seed=1))
    assert np.all(v < np.float32(1.0000001)) and np.all(v >= 1.0)


def test_uniform_integers():
    t = gc.random_uniform((10000,), minval=-3, maxval=4, dtype="int32", seed=1)
    v = gc.Session(optimize=False).run(t)
    assert v.dtype == np.int32
    assert set(np.unique(v).tolist()) == set(range(-3, 4))
    with pytest.raises(gc.DtypeError, match="explicit maxval"):
        gc.random_uniform((3,), dtype="int64")
    with pytest.raises(ValueError, match="minval < maxval"):
        gc.random_uniform((3,), 5, 5, dtype="int32")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_moments(dtype):
    v = gc.Session(optimize=False).run(gc.random_normal((300000,), mean=1.5, stddev=2.0,
                                                       dtype=dtype, seed=3))
    assert v.dtype == np.dtype(dtype) and np.all(np.isfinite(v))
    assert abs(v.mean() - 1.5) < 0.02
    assert abs(v.std() - 2.0) < 0.02
    z = (v - 1.5) / 2.0
    assert abs(np.mean(z ** 3)) < 0.03 and abs(np.mean(z ** 4) - 3.0) < 0.06
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.005


def test_truncated_normal():
    v = gc.Session(optimize=False).run(gc.truncated_normal((200000,), mean=-1.0, stddev=0.5, seed=8))
    assert v.dtype == np.float32
    assert v.min() >= -2.0 - 1e-6 and v.max() <= 1e-6
    assert abs(v.mean() + 1.0) < 0.01
    assert abs(v.std() - 0.5 * 0.8796) < 0.01   # std of a standard normal truncated at 2


# -- shapes ------------------------------------------------------------------------------------------
def test_like_with_none_batch():
    x = gc.placeholder("float32", (None, 3))
    u = gc.random_uniform_like(x, seed=1)
    n = gc.random_normal_like(x, seed=2)
    p = gc.random_uniform((None, 1), like=x, seed=3)
    assert u.shape == (None, 3) and n.shape == (None, 3) and p.shape == (None, 1)
    sess = gc.Session(optimize=False)
    for b in (1, 5, 2):
        vu, vn, vp = sess.run([u, n, p], {x: np.zeros((b, 3), np.float32)})
        assert vu.shape == (b, 3) and vn.shape == (b, 3) and vp.shape == (b, 1)
    t = gc.truncated_normal((None, 3), like=x, dtype="float64")
    assert sess.run(t, {x: np.zeros((4, 3), np.float32)}).dtype == np.float64


def test_shape_forms_and_errors():
    assert gc.random_uniform(5).shape == (5,)
    assert gc.random_normal([2, 0, 3]).shape == (2, 0, 3)
    assert gc.Session(optimize=False).run(gc.random_normal([2, 0, 3])).shape == (2, 0, 3)
    with pytest.raises(gc.ShapeError, match="like=x"):
        gc.random_uniform((None, 3))
    with pytest.raises(gc.ShapeError, match="bad dimension"):
        gc.random_normal((2, -3))
    with pytest.raises(gc.ShapeError, match="rank"):
        gc.random_uniform((None,), like=gc.placeholder("float32", (None, 2)))
    with pytest.raises(gc.DtypeError, match="not supported"):
        gc.random_normal((2,), dtype="int32")
    with pytest.raises(gc.DtypeError):
        gc.random_uniform((2,), dtype="bool")


def test_op_records():
    for op in ("random_uniform", "random_normal", "truncated_normal"):
        d = get_op(op)
        assert d.random and not d.differentiable


def test_random_ops_block_gradients():
    x = gc.placeholder("float32", (None, 3))
    y = gc.random_uniform_like(x) * 2.0
    (g,) = gc.gradients(gc.reduce_sum(y * x), [x])
    sess = gc.Session(optimize=False)
    # d/dx sum(u * 2 * x) = 2u, with u drawn in the same run
    out_y, out_g = sess.run([y, g], {x: np.ones((2, 3), np.float32)})
    np.testing.assert_allclose(out_g, out_y)
