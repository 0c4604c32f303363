"""matmul (2-D, batched, broadcast batch dims, transposes), matvec, tensordot."""
import numpy as np
import pytest

import graphc as gc
from graphc.ir import TensorSpec
from graphc.ops.registry import get_op
from gradcheck import check_grad


def run(t, feed=None):
    return gc.Session().run(t, feed)


def data(shape, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-5, 6, size=shape).astype(dtype)


def _np_mm(a, b, ta, tb):
    if ta:
        a = np.swapaxes(a, -1, -2)
    if tb:
        b = np.swapaxes(b, -1, -2)
    return a @ b


SHAPES = [((2, 3), (3, 4)), ((1, 1), (1, 1)), ((4, 2, 3), (4, 3, 5)), ((4, 2, 3), (3, 5)),
          ((2, 3), (6, 3, 5)), ((2, 1, 2, 3), (1, 4, 3, 2)), ((0, 3), (3, 2)), ((2, 0), (0, 3))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_matches_numpy(dtype, sa, sb, ta, tb):
    a = data(sa, dtype, 0)
    b = data(sb, dtype, 1)
    if ta:
        a = np.ascontiguousarray(np.swapaxes(a, -1, -2))
    if tb:
        b = np.ascontiguousarray(np.swapaxes(b, -1, -2))
    y = gc.matmul(gc.constant(a), gc.constant(b), transpose_a=ta, transpose_b=tb)
    got = run(y)
    want = _np_mm(a, b, ta, tb)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape == y.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_matmul_operator_and_fusion_class():
    a = data((2, 3))
    b = data((3, 2))
    np.testing.assert_allclose(run(gc.constant(a) @ gc.constant(b)), a @ b)
    np.testing.assert_allclose(run(b @ gc.constant(a)), b @ a)
    assert get_op("matmul").fusion == "contraction"
    assert gc.matmul(a, b).op.attrs == {"transpose_a": False, "transpose_b": False}


def test_matmul_none_batch():
    x = gc.placeholder("float32", (None, 784))
    w = gc.constant(data((784, 10), "float32"))
    y = gc.matmul(x, w)
    assert y.shape == (None, 10)
    for b in (1, 5, 0):
        a = data((b, 784), "float32")
        np.testing.assert_allclose(run(y, {x: a}), a @ run(w), rtol=1e-4, atol=1e-4)
    xb = gc.placeholder("float32", (None, None, 3))
    assert gc.matmul(xb, gc.zeros((3, 2))).shape == (None, None, 2)
    assert gc.matmul(gc.zeros((5, 2, 3)), xb, transpose_b=True).shape == (5, 2, None)


def test_matmul_shape_rule():
    rule = get_op("matmul").infer
    f32 = np.dtype("float32")
    got = rule([TensorSpec((None, 2, 3), f32), TensorSpec((1, 3, 4), f32)],
               {"transpose_a": False, "transpose_b": False})
    assert got == TensorSpec((None, 2, 4), f32)


def test_matmul_inner_dimension_error_is_helpful():
    x = gc.placeholder("float32", (None, 784))
    w = gc.zeros((100, 64))
    with pytest.raises(gc.ShapeError) as e:
        gc.matmul(x, w, name="dense")
    msg = str(e.value)
    assert "matmul 'dense'" in msg
    assert "inner dimensions differ: a is (None, 784) and b is (100, 64)" in msg
    assert "the columns of a (784) must equal the rows of b (100)" in msg
    assert "test_ops_linalg.py" in msg  # the user's call site
    with pytest.raises(gc.ShapeError, match="did you mean transpose_b=True"):
        gc.matmul(gc.zeros((2, 3)), gc.zeros((4, 3)))
    with pytest.raises(gc.ShapeError, match=r"columns of a \(transposed\)"):
        gc.matmul(gc.zeros((2, 3)), gc.zeros((3, 3)), transpose_a=True)


def test_matmul_other_errors():
    with pytest.raises(gc.ShapeError, match=r"rank >= 2.*expand_dims"):
        gc.matmul(gc.zeros((3,)), gc.zeros((3, 2)))
    with pytest.raises(gc.ShapeError, match="batch dimensions.*cannot be broadcast"):
        gc.matmul(gc.zeros((2, 2, 3)), gc.zeros((3, 3, 4)))
    with pytest.raises(gc.DtypeError, match="different dtypes.*gc.cast"):
        gc.matmul(gc.zeros((2, 3)), gc.zeros((3, 2), "float64"))
    with pytest.raises(gc.DtypeError, match="numbers"):
        gc.matmul(gc.constant([[True]]), gc.constant([[True]]))


@pytest.mark.parametrize("sa,sb", [((2, 3), (3, 4)), ((3, 2, 3), (3, 3, 2)), ((3, 2, 3), (3, 2)),
                                   ((2, 3), (2, 3, 4)), ((2, 1, 2, 3), (1, 3, 3, 2))])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_gradients(sa, sb, ta, tb):
    a = data(sa, "float64", 0)
    b = data(sb, "float64", 1)
    if ta:
        a = np.ascontiguousarray(np.swapaxes(a, -1, -2))
    if tb:
        b = np.ascontiguousarray(np.swapaxes(b, -1, -2))
    check_grad(lambda xs: gc.matmul(xs[0], xs[1], transpose_a=ta, transpose_b=tb), [a, b])


def test_matmul_gradient_with_none_batch():
    x = gc.placeholder("float64", (None, 3))
    w = gc.constant(data((3, 2)))
    g = gc.gradients(gc.reduce_sum(gc.matmul(x, w)), [x, w])
    a = data((4, 3), seed=2)
    gx, gw = run(g, {x: a})
    np.testing.assert_allclose(gx, np.ones((4, 2)) @ run(w).T)
    np.testing.assert_allclose(gw, a.T @ np.ones((4, 2)))


def test_int_matmul_has_no_gradient_and_stays_int():
    y = gc.matmul(gc.constant([[1, 2]]), gc.constant([[3], [4]]))
    assert y.dtype == np.int32 and run(y).tolist() == [[11]]


def test_matvec_and_tensordot():
    a, v = data((2, 4, 3)), data((3,), seed=1)
    np.testing.assert_allclose(run(gc.matvec(a, v)), a @ v)
    b = data((3, 4, 5), seed=2)
    c = data((2, 3, 4), seed=3)
    np.testing.assert_allclose(run(gc.tensordot(c, b, axes=2)), np.tensordot(c, b, axes=2))
    np.testing.assert_allclose(run(gc.tensordot(c, b, axes=([1], [0]))),
                               np.tensordot(c, b, axes=([1], [0])))
    check_grad(lambda xs: gc.tensordot(xs[0], xs[1], axes=[[2, 1], [1, 0]]), [c, b])
    x = gc.placeholder("float64", (None, 3, 4))
    y = gc.tensordot(x, b, axes=2)
    assert y.shape == (None, 5)
    np.testing.assert_allclose(run(y, {x: c}), np.tensordot(c, b, axes=2))
