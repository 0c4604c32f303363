"""Reductions: values against numpy, shape rules (incl. None), errors, gradients."""
import numpy as np
import pytest

import graphc as gc
from graphc.ops.registry import get_op
from graphc.ir import TensorSpec
from gradcheck import check_grad


def run(t, feed=None):
    return gc.Session().run(t, feed)


def _data(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.5
    return rng.integers(-5, 6, size=shape).astype(dtype)


NP = {"reduce_sum": np.sum, "reduce_mean": np.mean, "reduce_max": np.max, "reduce_min": np.min,
      "reduce_prod": np.prod, "reduce_any": np.any, "reduce_all": np.all}
CASES = [((2, 3, 4), None), ((2, 3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), (0, 2)), ((2, 3, 4), (2, 0)),
         ((5,), 0), ((1, 1), None), ((3, 1, 2), 1), ((), None), ((2, 3), ())]


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("shape,axis", CASES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_numeric_reductions_match_numpy(rng, op, dtype, shape, axis, keepdims):
    a = _data(rng, shape, dtype)
    if op == "reduce_prod" and dtype.startswith("int"):
        a = np.clip(a, -2, 2)
    y = getattr(gc, op)(gc.constant(a), axis=axis, keepdims=keepdims)
    got = run(y)
    ax = tuple(axis) if isinstance(axis, tuple) else axis
    if op == "reduce_mean" and dtype.startswith("int"):
        s = np.sum(a, axis=ax, keepdims=keepdims, dtype=np.int64)
        n = a.size // max(np.asarray(s).size, 1) if ax != () else 1
        want = (np.sign(s) * (np.abs(s) // n)).astype(dtype)
    else:
        want = np.asarray(NP[op](a, axis=ax, keepdims=keepdims)).astype(dtype)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == want.shape == y.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["reduce_any", "reduce_all"])
@pytest.mark.parametrize("shape,axis", CASES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logical_reductions(rng, op, shape, axis, keepdims):
    a = _data(rng, shape, "bool")
    got = run(getattr(gc, op)(gc.constant(a), axis=axis, keepdims=keepdims))
    ax = tuple(axis) if isinstance(axis, tuple) else axis
    want = NP[op](a, axis=ax, keepdims=keepdims)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, want)


def test_integer_mean_truncates_toward_zero_like_tf():
    assert run(gc.reduce_mean(gc.constant([1, 2]))).item() == 1
    assert run(gc.reduce_mean(gc.constant([-1, -2]))).item() == -1
    r = gc.reduce_mean(gc.constant(np.array([[3, 4], [-7, 0]], np.int64)), axis=1)
    assert r.dtype == np.int64
    assert run(r).tolist() == [3, -3]


@pytest.mark.parametrize("batch", [1, 4, 0])
@pytest.mark.parametrize("op", ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"])
def test_reduce_over_unknown_batch(rng, batch, op):
    x = gc.placeholder("float64", (None, 3))
    a = rng.standard_normal((batch, 3))
    y0 = getattr(gc, op)(x, axis=0)
    y1 = getattr(gc, op)(x, axis=1, keepdims=True)
    yall = getattr(gc, op)(x)
    assert y0.shape == (3,) and y1.shape == (None, 1) and yall.shape == ()
    g0, g1, gall = run([y0, y1, yall], {x: a})
    if batch == 0 and op in ("reduce_max", "reduce_min"):
        fill = -np.inf if op == "reduce_max" else np.inf
        np.testing.assert_array_equal(g0, np.full(3, fill))
        assert gall == fill
    elif batch == 0 and op == "reduce_mean":
        assert np.isnan(g0).all()
    else:
        np.testing.assert_allclose(g0, NP[op](a, axis=0))
        np.testing.assert_allclose(gall, NP[op](a))
    np.testing.assert_allclose(g1, NP[op](a, axis=1, keepdims=True))


def test_empty_max_min_int_give_dtype_limits():
    a = np.zeros((0, 2), np.int32)
    assert run(gc.reduce_max(gc.constant(a), axis=0)).tolist() == [np.iinfo(np.int32).min] * 2
    assert run(gc.reduce_min(gc.constant(a), axis=0)).tolist() == [np.iinfo(np.int32).max] * 2
    assert run(gc.reduce_sum(gc.constant(a), axis=0)).tolist() == [0, 0]


def test_reduce_shape_inference():
    x = gc.placeholder("float32", (None, 3, None, 5))
    assert gc.reduce_sum(x).shape == ()
    assert gc.reduce_sum(x, axis=1).shape == (None, None, 5)
    assert gc.reduce_sum(x, axis=(0, -1), keepdims=True).shape == (1, 3, None, 1)
    assert gc.reduce_max(x, axis=[2]).shape == (None, 3, 5)
    rule = get_op("reduce_mean").infer
    assert rule([TensorSpec((None, 4), np.dtype("float32"))], {"axis": (1,), "keepdims": False}) == \
        TensorSpec((None,), np.dtype("float32"))


def test_reduce_attrs_are_normalized():
    x = gc.placeholder("float32", (2, 3, 4))
    y1 = gc.reduce_sum(x, axis=(-1, 0))
    y2 = gc.reduce_sum(x, axis=[2, 0])
    assert y1.op.attrs == y2.op.attrs == {"axis": (0, 2), "keepdims": False}
    assert get_op("reduce_sum").fusion == "reduction"


def test_tf_aliases_keep_dims_and_reduction_indices():
    x = gc.constant(np.ones((2, 3), np.float32))
    assert gc.reduce_sum(x, reduction_indices=1, keep_dims=True).shape == (2, 1)


def test_reduce_errors_are_helpful():
    x = gc.placeholder("float32", (2, 3))
    with pytest.raises(gc.ShapeError, match=r"out of range.*valid axes are -2\.\.1"):
        gc.reduce_sum(x, axis=2)
    with pytest.raises(gc.ShapeError, match="repeats"):
        gc.reduce_sum(x, axis=(0, -2))
    with pytest.raises(gc.DtypeError, match=r"reduce_sum.*bool.*gc\.cast"):
        gc.reduce_sum(gc.constant([True, False]))
    with pytest.raises(gc.DtypeError, match=r"reduce_any.*float32.*bool"):
        gc.reduce_any(x)
    with pytest.raises(TypeError, match="axis must be"):
        gc.reduce_sum(x, axis=gc.constant(0))


# -- argmax / argmin -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_argmax_argmin(rng, dtype, axis):
    a = _data(rng, (4, 5), dtype)
    for fn, ref in ((gc.argmax, np.argmax), (gc.argmin, np.argmin)):
        y = fn(gc.constant(a), axis=axis)
        got = run(y)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, ref(a, axis=0 if axis is None else axis))


def test_argmax_ties_output_type_and_none_batch():
    assert run(gc.argmax(gc.constant([1.0, 3.0, 3.0]))).item() == 1
    y = gc.argmax(gc.constant([[1, 2]]), axis=1, output_type="int32")
    assert y.dtype == np.int32 and run(y).tolist() == [1]
    x = gc.placeholder("float32", (None, 3))
    y = gc.argmax(x, axis=1)
    assert y.shape == (None,)
    a = np.array([[0, 5, 1], [7, 0, 0]], np.float32)
    assert run(y, {x: a}).tolist() == [1, 0]
    assert y.op.attrs["axis"] == (1,)


def test_argmax_errors():
    with pytest.raises(gc.ShapeError, match="rank >= 1"):
        gc.argmax(gc.constant(1.0))
    with pytest.raises(gc.ShapeError, match="size 0"):
        gc.argmax(gc.constant(np.zeros((0, 2), np.float32)), axis=0)
    with pytest.raises(gc.DtypeError, match="int32 or int64"):
        gc.argmax(gc.constant([1.0]), output_type="float32")


def test_count_nonzero():
    x = gc.constant([[0.0, 1.0], [2.0, 0.0], [3.0, 4.0]])
    assert run(gc.count_nonzero(x)).item() == 4
    assert run(gc.count_nonzero(x, axis=0)).tolist() == [2, 2]
    assert run(gc.count_nonzero(gc.constant([True, False, True]))).item() == 2


# -- sum_to_shape --------------------------------------------------------------------------------
@pytest.mark.parametrize("dshape,shape", [((4, 2, 3), (2, 3)), ((4, 2, 3), (1, 3)), ((4, 2, 3), (3,)),
                                          ((4, 2, 3), ()), ((2, 3), (2, 3)), ((2, 3), (2, 1)),
                                          ((5, 1), (1, 1)), ((0, 3), (3,))])
def test_sum_to_shape(rng, dshape, shape):
    d = rng.standard_normal(dshape)
    r = gc.sum_to_shape(gc.constant(d), shape)
    assert r.shape == shape
    lead = len(dshape) - len(shape)
    want = d.sum(axis=tuple(range(lead))) if lead else d
    want = want.sum(axis=tuple(i for i, s in enumerate(shape) if s == 1 and want.shape[i] != 1),
                    keepdims=True) if shape else want
    np.testing.assert_allclose(run(r), want.reshape(shape))


def test_sum_to_shape_with_none_dims():
    dy = gc.placeholder("float64", (None, 3, 4))
    r = gc.sum_to_shape(dy, (None, 1, 4))
    assert r.shape == (None, 1, 4)
    a = np.ones((2, 3, 4))
    np.testing.assert_allclose(run(r, {dy: a}), np.full((2, 1, 4), 3.0))
    r2 = gc.sum_to_shape(dy, (3, 1))
    assert r2.shape == (3, 1)
    np.testing.assert_allclose(run(r2, {dy: a}), np.full((3, 1), 8.0))
    assert gc.sum_to_shape(dy, (None, 3, 4)) is dy


def test_sum_to_shape_errors():
    dy = gc.constant(np.ones((2, 3)))
    with pytest.raises(gc.ShapeError, match="fewer dimensions"):
        gc.sum_to_shape(dy, (1, 2, 3))
    with pytest.raises(gc.ShapeError, match="not a broadcast"):
        gc.sum_to_shape(dy, (2, 4))


# -- gradients -----------------------------------------------------------------------------------
GRAD_CASES = [((3, 4), None, False), ((3, 4), 0, False), ((3, 4), 1, True), ((2, 3, 4), (0, 2), False),
              ((2, 3, 4), -1, True), ((5,), 0, False)]


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"])
@pytest.mark.parametrize("shape,axis,keepdims", GRAD_CASES)
def test_reduction_gradients(rng, op, shape, axis, keepdims):
    a = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    check_grad(lambda xs: getattr(gc, op)(xs[0], axis=axis, keepdims=keepdims), [a])


def test_max_gradient_splits_ties_equally():
    x = gc.constant(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]))
    g = gc.gradients(gc.reduce_max(x, axis=1), x)[0]
    np.testing.assert_allclose(run(g), [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    g = gc.gradients(gc.reduce_min(x), x)[0]
    np.testing.assert_allclose(run(g), [[0, 0, 0], [0, 1, 0]])


def test_prod_gradient_with_zeros():
    a = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])
    x = gc.constant(a)
    g = gc.gradients(gc.reduce_prod(x, axis=1), x)[0]
    np.testing.assert_allclose(run(g), [[0, 6, 0], [0, 0, 0], [8, 4, 2]])
    check_grad(lambda xs: gc.reduce_prod(xs[0], axis=0), [a])


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_mean", "reduce_max", "reduce_prod"])
def test_reduction_gradients_with_unknown_batch(rng, op):
    x = gc.placeholder("float64", (None, 3))
    y = getattr(gc, op)(x, axis=0)
    g = gc.gradients(gc.reduce_sum(y * gc.constant([1.0, 2.0, 3.0], "float64")), x)[0]
    assert g.shape == (None, 3)
    for batch in (1, 4):
        a = rng.uniform(0.5, 1.5, (batch, 3))
        got = run(g, {x: a})
        w = np.array([1.0, 2.0, 3.0])
        if op == "reduce_sum":
            want = np.broadcast_to(w, a.shape)
        elif op == "reduce_mean":
            want = np.broadcast_to(w / batch, a.shape)
        elif op == "reduce_max":
            want = (a == a.max(0)) * w
        else:
            want = a.prod(0) / a * w
        np.testing.assert_allclose(got, want)


def test_mean_gradient_over_several_unknown_dims(rng):
    x = gc.placeholder("float64", (None, None))
    g = gc.gradients(gc.reduce_mean(x), x)[0]
    a = rng.standard_normal((3, 5))
    np.testing.assert_allclose(run(g, {x: a}), np.full((3, 5), 1 / 15))


EMPTY_GRAD_CASES = [((33, 0, 1), 2), ((33, 0, 1), 0), ((33, 0, 1), 1), ((33, 0, 1), None), ((0, 3), 1),
                    ((2, 0), 0), ((3, 0, 2), (0, 2)), ((None, 0, 1), 2), ((None, 4, 0), (0, 1))]


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"])
@pytest.mark.parametrize("shape,axis", EMPTY_GRAD_CASES)
def test_reduction_gradients_with_size0_dims(op, shape, axis):
    # issue #23: reduce_prod's gradient reshaped to (..., -1), ambiguous when a kept dimension is 0
    x = gc.placeholder("float64", shape)
    y = getattr(gc, op)(x, axis=axis, keepdims=True)
    g = gc.gradients(gc.reduce_sum(y * 2.0), x)[0]
    a = np.ones([33 if d is None else d for d in shape])
    for executor in ("reference", "compiled"):
        got = gc.Session(executor=executor).run(g, {x: a})
        assert got.shape == a.shape and got.dtype == np.float64


def test_prod_gradient_of_an_empty_reduction_next_to_kept_dims():
    # reduce_prod over a size-0 axis is 1 (the empty product) and its gradient is empty; over a
    # non-empty axis of a tensor with a size-0 kept dimension, the gradient is empty too; the
    # other reduced elements still give the product of the others
    x = gc.placeholder("float64", (2, None, 3))
    y = gc.reduce_prod(x, axis=(0, 2))
    g = gc.gradients(gc.reduce_sum(y), x)[0]
    for executor in ("reference", "compiled"):
        sess = gc.Session(executor=executor)
        out, grad = sess.run([y, g], {x: np.ones((2, 0, 3))})
        assert out.shape == (0,) and grad.shape == (2, 0, 3)
        a = np.arange(1.0, 7.0).reshape(2, 1, 3)
        np.testing.assert_allclose(sess.run(g, {x: a}), 720.0 / a)


def test_integer_reductions_have_no_gradient():
    x = gc.constant([1.0, 2.0])
    y = gc.cast(gc.reduce_sum(gc.cast(x, "int32")), "float32")
    assert gc.gradients(y, x) == [None]


def test_every_differentiable_reduction_has_a_gradient():
    for name in ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"]:
        assert get_op(name).grad is not None and get_op(name).differentiable
    for name in ["reduce_any", "reduce_all", "argmax", "argmin", "reduce_prod_grad"]:
        assert not get_op(name).differentiable
