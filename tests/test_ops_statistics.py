"""reduce_logsumexp, reduce_variance, reduce_std, cumsum, split, nn.moments, nn.batch_normalization:
against numpy and TensorFlow's documented semantics, through the reference interpreter and the
compiled runtime (their kernels, no numpy fallback), shape rules and build-time errors.
Their gradients are checked by finite differences in tests/test_gradients.py (and the compositions'
here)."""
import numpy as np
import pytest

import graphc as gc
from graphc.errors import DtypeError, ShapeError
from gradcheck import check_grad
from kernel_checks import run_both

RNG = np.random.default_rng(11)
FLOATS = ["float32", "float64"]


def both(fetches, feeds, tol=None):
    """Values of ``fetches`` from the compiled runtime (asserting it ran no numpy reference) and
    the reference interpreter, compared; returns the reference's."""
    kw = tol or {}
    exe, out, _ = run_both(fetches, feeds, **kw)
    assert not [s.op for s in exe.plan.kernel_calls if s.call.name.startswith("ref:")]
    return out


def np_logsumexp(x, axis=None, keepdims=False):
    x = x.astype(np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


AXES = [None, 0, 1, -1, (0, 1), (1, 2), (0, 2), (2, 0, 1)]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_variance_std_against_numpy(dt, keepdims):
    x = gc.placeholder(dt, (None, 3, 4))
    xv = (RNG.standard_normal((5, 3, 4)) * 3).astype(dt)
    fetches, want = [], []
    for ax in AXES:
        fetches += [gc.reduce_logsumexp(x, ax, keepdims), gc.reduce_variance(x, ax, keepdims),
                    gc.reduce_std(x, ax, keepdims), gc.math.reduce_variance(x, ax, keepdims)]
        npax = None if ax is None else (ax if isinstance(ax, int) else tuple(ax))
        var = np.var(xv.astype(np.float64), axis=npax, keepdims=keepdims)
        want += [np_logsumexp(xv, npax, keepdims), var, np.sqrt(var), var]
    out = both(fetches, {x: xv})
    for f, o, w in zip(fetches, out, want):
        assert o.dtype == np.dtype(dt) and o.shape == w.shape
        assert tuple(5 if d is None else d for d in f.shape) == w.shape      # the static shape
        np.testing.assert_allclose(o, w, rtol=2e-5 if dt == "float32" else 1e-12, atol=1e-6, err_msg=str(f))


def test_logsumexp_is_stable_and_follows_tensorflow_on_special_values():
    # TF: the max is subtracted first unless it is not finite; an empty reduction is -inf
    x = gc.placeholder("float32", (None, 3))
    xv = np.array([[1000.0, 1000.0, -1000.0], [-np.inf] * 3, [np.inf, 1.0, 2.0], [np.nan, 1.0, 2.0],
                   [-1000.0, -1000.0, -np.inf]], np.float32)
    out = both([gc.reduce_logsumexp(x, axis=1)], {x: xv})[0]
    np.testing.assert_allclose(out, [1000 + np.log(2), -np.inf, np.inf, np.nan, -1000 + np.log(2)],
                               rtol=1e-6)
    e = gc.placeholder("float64", (2, 0))
    for ex in ("reference", "compiled"):
        got = gc.Session(executor=ex).run([gc.reduce_logsumexp(e, 1), gc.reduce_variance(e, 1)],
                                          {e: np.zeros((2, 0))})
        np.testing.assert_array_equal(got[0], [-np.inf, -np.inf])
        assert np.isnan(got[1]).all()


def test_variance_is_the_population_variance_as_in_tensorflow():
    # tf.math.reduce_variance([[1., 2.], [3., 4.]]) == 1.25; axis 0: [1., 1.]; axis 1: [0.25, 0.25]
    x = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    s = gc.Session()
    assert s.run(gc.reduce_variance(x)) == 1.25
    assert s.run(gc.math.reduce_variance(x, 0)).tolist() == [1.0, 1.0]
    assert s.run(gc.reduce_std(x, 1)).tolist() == [0.5, 0.5]
    # accurate for a large mean (two passes in float64, not E[x^2] - E[x]^2)
    big = gc.placeholder("float32", (None,))
    v = np.float32(1e4) + np.array([0.0, 1.0, 2.0, 3.0], np.float32)
    np.testing.assert_allclose(both([gc.reduce_variance(big)], {big: v})[0], 1.25, rtol=1e-6)


CUMSUM_SHAPES = [((6,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), 1), ((2, 3, 4), -1), ((2, 1, 5), 2)]


@pytest.mark.parametrize("dt", FLOATS + ["int32", "int64"])
def test_cumsum_against_numpy(dt):
    fetches, want, feeds = [], [], {}
    for shape, ax in CUMSUM_SHAPES:
        x = gc.placeholder(dt, (None,) + shape[1:])
        xv = (RNG.standard_normal(shape) * 4).astype(dt)
        feeds[x] = xv
        for exclusive in (False, True):
            for reverse in (False, True):
                fetches.append(gc.cumsum(x, ax, exclusive, reverse))
                a = np.flip(xv, ax) if reverse else xv
                r = np.cumsum(a, axis=ax, dtype=dt)
                if exclusive:
                    r = np.cumsum(a, axis=ax, dtype=dt) - a        # exact for ints; floats: tolerance
                want.append(np.flip(r, ax) if reverse else r)
    out = both(fetches, feeds, tol=dict(rtol=0, atol=0))     # kernel and reference: the same order
    for f, o, w in zip(fetches, out, want):
        assert o.dtype == np.dtype(dt) and o.shape == w.shape
        np.testing.assert_allclose(o, w, rtol=1e-5, atol=1e-5, err_msg=str(f))


def test_cumsum_follows_tensorflow_examples_and_keeps_signed_zeros():
    s = gc.Session()
    x = gc.constant([1.0, 2.0, 4.0])
    assert s.run(gc.cumsum(x)).tolist() == [1, 3, 7]
    assert s.run(gc.cumsum(x, exclusive=True)).tolist() == [0, 1, 3]
    assert s.run(gc.math.cumsum(x, reverse=True)).tolist() == [7, 6, 4]
    assert s.run(gc.cumsum(x, exclusive=True, reverse=True)).tolist() == [6, 4, 0]
    z = gc.placeholder("float32", (None,))
    out = both([gc.cumsum(z), gc.cumsum(z, exclusive=True)], {z: np.array([-0.0, -0.0, 1.0], np.float32)},
               tol=dict(rtol=0, atol=0))
    assert np.signbit(out[0][:2]).all() and not np.signbit(out[1][0])     # as np.cumsum


def test_cumsum_and_reductions_shape_rules_and_errors():
    x = gc.placeholder("float32", (None, 3))
    assert gc.cumsum(x, 1).shape == (None, 3)
    assert gc.reduce_logsumexp(x, 1, keepdims=True).shape == (None, 1)
    assert gc.reduce_variance(x).shape == ()
    with pytest.raises(ShapeError, match="cumsum .cumsum.: the input is a scalar"):
        gc.cumsum(gc.constant(1.0))
    with pytest.raises(ShapeError, match=r"cumsum.*axis 2 is out of range.*\(None, 3\)"):
        gc.cumsum(x, axis=2)
    with pytest.raises(DtypeError, match="cumsum does not accept dtype bool"):
        gc.cumsum(gc.constant([True]))
    with pytest.raises(DtypeError, match="reduce_logsumexp does not accept dtype int32.*cast"):
        gc.reduce_logsumexp(gc.constant([1, 2]))
    with pytest.raises(DtypeError, match="reduce_variance does not accept dtype int32"):
        gc.reduce_std(gc.constant([1, 2]))
    with pytest.raises(ShapeError, match=r"reduce_variance.*axis 5 is out of range"):
        gc.reduce_variance(x, axis=5)


# -- split ---------------------------------------------------------------------------------------------
def test_split_by_count_and_sizes_against_numpy():
    x = gc.placeholder("float32", (4, None, 6))
    xv = RNG.standard_normal((4, 7, 6)).astype(np.float32)
    cases = [(gc.split(x, 3, axis=2), np.split(xv, 3, axis=2)),
             (gc.split(x, 2), np.split(xv, 2, axis=0)),
             (gc.split(x, [2, -1, 4], axis=-2), np.split(xv, [2, 3], axis=1)),
             (gc.split(x, [0, 5, -1, 0], axis=1), np.split(xv, [0, 5, 7], axis=1)),
             (gc.split(x, [1, 1, 4], axis=2), np.split(xv, [1, 2], axis=2))]
    fetches = [t for parts, _ in cases for t in parts]
    out = both(fetches, {x: xv})
    want = [w for _, ws in cases for w in ws]
    assert len(out) == len(want)
    for o, w in zip(out, want):
        np.testing.assert_array_equal(o, w)
    assert [t.shape for t in cases[0][0]] == [(4, None, 2)] * 3
    assert isinstance(cases[0][0], list)


def test_split_errors_say_what_to_do():
    x = gc.placeholder("float32", (None, 6))
    with pytest.raises(ShapeError, match=r"split 'split': dimension 1 of shape \(None, 6\) has size 6, "
                                         r"which does not divide into 4 equal parts"):
        gc.split(x, 4, axis=1)
    with pytest.raises(ShapeError, match="add up to 5, but dimension 1 .* has size 6"):
        gc.split(x, [2, 3], axis=1)
    with pytest.raises(ShapeError, match="at most one of them -1"):
        gc.split(x, [-1, -1], axis=1)
    with pytest.raises(ShapeError, match="add up to more than"):
        gc.split(x, [4, 3, -1], axis=1)
    with pytest.raises(ShapeError, match="is unknown, so 2 equal parts have no static size"):
        gc.split(x, 2, axis=0)
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        gc.split(x, 2, axis=2)
    with pytest.raises(ShapeError, match="num=3 but"):
        gc.split(x, 2, axis=1, num=3)
    with pytest.raises(ShapeError, match="split .split.: the input is a scalar"):
        gc.split(gc.constant(1.0), 1)


def test_split_gradient():
    # each part's gradient lands in its own columns; an unused part gets zeros
    def f(xs):
        a, b, _ = gc.split(xs[0], [1, 2, -1], axis=1)
        return gc.concat([b * 3.0, a], axis=1)
    check_grad(f, [RNG.standard_normal((2, 5))])


# -- moments, batch_normalization ------------------------------------------------------------------------
@pytest.mark.parametrize("keepdims", [False, True])
def test_moments_against_numpy(keepdims):
    x = gc.placeholder("float32", (None, 4, 4, 3))
    xv = RNG.standard_normal((2, 4, 4, 3)).astype(np.float32) * 2 + 1
    mean, var = gc.nn.moments(x, axes=[0, 1, 2], keepdims=keepdims)
    m2, v2 = gc.nn.moments(x, axes=-1)
    out = both([mean, var, m2, v2], {x: xv})
    x64 = xv.astype(np.float64)
    np.testing.assert_allclose(out[0], x64.mean(axis=(0, 1, 2), keepdims=keepdims), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1], x64.var(axis=(0, 1, 2), keepdims=keepdims), rtol=1e-5)
    np.testing.assert_allclose(out[3], x64.var(axis=-1), rtol=1e-5, atol=1e-6)
    assert mean.shape == ((1, 1, 1, 3) if keepdims else (3,))
    with pytest.raises(DtypeError, match="moments 'moments': x has dtype int32"):
        gc.nn.moments(gc.constant([1, 2]), axes=[0])


def test_batch_normalization_against_numpy_and_fused():
    x = gc.placeholder("float32", (None, 5, 3))
    xv = RNG.standard_normal((4, 5, 3)).astype(np.float32)
    mean, var = gc.nn.moments(x, axes=[0, 1])
    offset = gc.constant(np.array([0.5, -1.0, 2.0], np.float32))
    scale = gc.constant(np.array([2.0, 1.0, 0.5], np.float32))
    y = gc.nn.batch_normalization(x, mean, var, offset, scale, variance_epsilon=1e-3)
    y0 = gc.nn.batch_normalization(x, mean, var, None, None, 1e-3)
    y1 = gc.nn.batch_normalization(x, 0.5, 2.0, offset=1.0, scale=None, variance_epsilon=0.0)
    out = both([y, y0, y1], {x: xv})
    m, v = xv.mean(axis=(0, 1)), xv.var(axis=(0, 1))
    want = (xv - m) / np.sqrt(v + 1e-3) * [2.0, 1.0, 0.5] + [0.5, -1.0, 2.0]
    np.testing.assert_allclose(out[0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[1], (xv - m) / np.sqrt(v + 1e-3), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[2], (xv - 0.5) / np.sqrt(2.0) + 1.0, rtol=1e-6, atol=1e-6)
    # compiled: the normalization of x is one fused elementwise loop (the per-channel statistics
    # are computed apart, at their own size)
    sess = gc.Session()
    sess.run(y, {x: xv})
    from graphc.passes import optimize
    g2, _ = optimize(y.graph, [y.node], feeds=[x.node])
    full = [n for n in g2.nodes() if g2.spec(n).shape == (None, 5, 3) and g2.op(n) != "placeholder"]
    assert [g2.op(n) for n in full] == ["fused_elementwise"]


def test_batch_normalization_errors():
    x = gc.placeholder("float32", (None, 4))
    with pytest.raises(ShapeError, match=r"batch_normalization 'batchnorm': mean of shape \(3,\) does not "
                                         r"broadcast to x's shape \(None, 4\); give one value per channel"):
        gc.nn.batch_normalization(x, gc.zeros((3,)), gc.ones((4,)), None, None, 1e-3)
    with pytest.raises(ShapeError, match="scale of shape"):
        gc.nn.batch_normalization(x, gc.zeros((4,)), gc.ones((4,)), None, gc.ones((3, 1, 4)), 1e-3)
    with pytest.raises(DtypeError, match="variance has dtype float64 but x has float32"):
        gc.nn.batch_normalization(x, gc.zeros((4,)), gc.ones((4,), "float64"), None, None, 1e-3)
    with pytest.raises(DtypeError, match="x has dtype int32"):
        gc.nn.batch_normalization(gc.constant([1, 2]), 0.0, 1.0, None, None, 1e-3)


def test_moments_and_batch_normalization_gradients():
    # w.r.t. x through the batch statistics, and w.r.t. offset and scale
    def f(xs):
        x, off, sc = xs
        mean, var = gc.nn.moments(x, axes=[0])
        return gc.nn.batch_normalization(x, mean, var, off, sc, variance_epsilon=1e-3)
    check_grad(f, [RNG.standard_normal((4, 3)), RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)],
               atol=1e-5, rtol=1e-4)
    check_grad(lambda xs: gc.nn.moments(xs[0], axes=[1], keepdims=True)[1] * 2.0,
               [RNG.standard_normal((2, 5))])


def test_new_reductions_run_kernels_for_every_axis_set():
    # consecutive axes: one numba call over a (lead, mid, tail) view; others after a transposed copy
    x = gc.placeholder("float64", (None, 3, 4, 2))
    fetches = [op(x, ax) for op in (gc.reduce_logsumexp, gc.reduce_variance) for ax in
               (None, 0, 3, (1, 2), (0, 2), (3, 1))] + [gc.cumsum(x, ax) for ax in range(4)]
    exe, _, _ = run_both(fetches, {x: RNG.standard_normal((3, 3, 4, 2))}, rtol=1e-12, atol=1e-12)
    names = [s.call.name for s in exe.plan.kernel_calls]
    assert names == ["reduce_logsumexp"] * 6 + ["reduce_variance"] * 6 + ["cumsum"] * 4
