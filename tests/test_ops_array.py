"""Array/layout ops: values against numpy, shape rules (incl. None), errors, gradients."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import graphc as gc
from graphc.interpreter import evaluate
from graphc.ops.registry import apply, get_op
from gradcheck import check_grad

DTYPES = ["float32", "float64", "int32", "int64"]


def run(t, feed=None):
    return gc.Session().run(t, feed)


def data(shape, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.5
    return rng.integers(-9, 10, size=shape).astype(dtype)


def same(t, want, feed=None):
    got = run(t, feed)
    want = np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert len(t.shape) == got.ndim and all(d is None or d == s for d, s in zip(t.shape, got.shape))
    np.testing.assert_array_equal(got, want)


# -- reshape -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES + ["bool"])
@pytest.mark.parametrize("shape,target", [((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1, 2)),
                                          ((6,), (1, 6, 1)), ((1,), ()), ((), (1, 1)), ((0, 3), (3, 0)),
                                          ((0, 3), (-1, 3))])
def test_reshape_values(dtype, shape, target):
    a = data(shape, dtype)
    same(gc.reshape(gc.constant(a), target), a.reshape(target))


def test_reshape_with_none_batch():
    x = gc.placeholder("float32", (None, 28, 28))
    y = gc.reshape(x, (-1, 784))
    assert y.shape == (None, 784)
    assert y.op.attrs["shape"] == (-1, 784)
    for b in (1, 3):
        a = data((b, 28, 28), "float32")
        same(y, a.reshape(-1, 784), {x: a})
    assert gc.reshape(gc.placeholder("float32", (None, 4)), (2, -1)).shape == (2, None)
    assert gc.reshape(gc.placeholder("float32", (None, 4)), (None, 2, 2)).shape == (None, 2, 2)
    assert gc.reshape(gc.placeholder("float32", (None, 4)), (8,)).shape == (8,)


def test_reshape_errors():
    x = gc.placeholder("float32", (2, 3))
    with pytest.raises(gc.ShapeError, match=r"6 elements.*\(4, 2\).*8 elements"):
        gc.reshape(x, (4, 2))
    with pytest.raises(gc.ShapeError, match="more than one -1"):
        gc.reshape(x, (-1, -1))
    with pytest.raises(gc.ShapeError, match="not divisible"):
        gc.reshape(x, (4, -1))
    with pytest.raises(gc.ShapeError, match="not a multiple"):
        gc.reshape(gc.placeholder("float32", (None, 4)), (6,))


def test_reshape_like():
    a = data((2, 6))
    like = gc.placeholder("float64", (None, None, 2))
    y = gc.reshape_like(gc.constant(a), like)
    assert y.shape == (None, None, 2)
    same(y, a.reshape(3, 2, 2), {like: np.zeros((3, 2, 2))})


# -- transpose / expand_dims / squeeze -----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,perm", [((2, 3), None), ((2, 3, 4), (1, 0, 2)), ((2, 3, 4), (2, 0, 1)),
                                        ((2, 3, 4), (-1, 0, 1)), ((5,), None), ((), None), ((0, 2), (1, 0))])
def test_transpose(dtype, shape, perm):
    a = data(shape, dtype)
    same(gc.transpose(gc.constant(a), perm), np.transpose(a, perm))


def test_transpose_none_and_errors():
    x = gc.placeholder("float32", (None, 3))
    assert gc.transpose(x).shape == (3, None)
    assert x.T.shape == (3, None)
    with pytest.raises(gc.ShapeError, match="not a permutation"):
        gc.transpose(x, (0, 0))


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_expand_dims(axis):
    a = data((2, 3), "int32")
    same(gc.expand_dims(gc.constant(a), axis), np.expand_dims(a, axis))


def test_expand_dims_errors_and_none():
    assert gc.expand_dims(gc.placeholder("float32", (None,)), 0).shape == (1, None)
    with pytest.raises(gc.ShapeError, match=r"out of range.*valid axes are -3\.\.2"):
        gc.expand_dims(gc.zeros((2, 3)), 3)


@pytest.mark.parametrize("shape,axis", [((1, 3, 1), None), ((1, 3, 1), 0), ((1, 3, 1), -1),
                                        ((1, 3, 1), (0, 2)), ((1,), None), ((2, 3), None)])
def test_squeeze(shape, axis):
    a = data(shape, "float32")
    same(gc.squeeze(gc.constant(a), axis), np.squeeze(a, axis))


def test_squeeze_none_and_errors():
    x = gc.placeholder("float32", (None, 1, 3))
    assert gc.squeeze(x).shape == (None, 3)
    y = gc.squeeze(x, axis=0)
    assert y.shape == (1, 3)
    same(y, np.ones((1, 3), np.float32), {x: np.ones((1, 1, 3), np.float32)})
    with pytest.raises(gc.ShapeError, match="size is 3, not 1"):
        gc.squeeze(x, axis=2)


# -- concat / stack / unstack --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes,axis", [([(2, 3), (2, 1)], 1), ([(2, 3), (4, 3), (0, 3)], 0),
                                         ([(2, 3, 4)], -1), ([(1, 2), (1, 2)], -2)])
def test_concat(dtype, shapes, axis):
    arrs = [data(s, dtype, seed=i) for i, s in enumerate(shapes)]
    same(gc.concat([gc.constant(a) for a in arrs], axis), np.concatenate(arrs, axis))


def test_concat_none_and_python_values():
    x = gc.placeholder("float32", (None, 3))
    y = gc.concat([x, x, [[1.0, 2.0, 3.0]]], 0)
    assert y.shape == (None, 3)
    a = data((2, 3), "float32")
    same(y, np.concatenate([a, a, [[1, 2, 3]]]).astype(np.float32), {x: a})
    assert gc.concat([x, gc.placeholder("float32", (2, None))], 1).shape == (2, None)


def test_concat_errors():
    with pytest.raises(gc.ShapeError, match=r"all dimensions except the concat axis 1 must match"):
        gc.concat([gc.zeros((2, 3)), gc.zeros((3, 3))], 1)
    with pytest.raises(gc.ShapeError, match="same rank"):
        gc.concat([gc.zeros((2, 3)), gc.zeros((2,))], 0)
    with pytest.raises(gc.DtypeError, match="different dtypes"):
        gc.concat([gc.zeros((2,)), gc.zeros((2,), "int32")], 0)
    with pytest.raises(gc.ShapeError, match="scalars"):
        gc.concat([gc.constant(1.0), gc.constant(2.0)], 0)
    with pytest.raises(gc.ShapeError, match="empty list"):
        gc.concat([], 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(dtype, axis):
    arrs = [data((2, 3), dtype, seed=i) for i in range(3)]
    same(gc.stack([gc.constant(a) for a in arrs], axis), np.stack(arrs, axis))


def test_stack_scalars_none_and_errors():
    same(gc.stack([1, 2, 3]), np.array([1, 2, 3], np.int32))
    x = gc.placeholder("float32", (None, 2))
    assert gc.stack([x, x], axis=1).shape == (None, 2, 2)
    with pytest.raises(gc.ShapeError, match="equal shapes"):
        gc.stack([gc.zeros((2,)), gc.zeros((3,))])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unstack(axis):
    a = data((2, 3, 4))
    parts = gc.unstack(gc.constant(a), axis=axis)
    want = [np.take(a, i, axis=axis) for i in range(a.shape[axis])]
    assert len(parts) == len(want)
    for p, w in zip(parts, want):
        same(p, w)


def test_unstack_none():
    x = gc.placeholder("float32", (None, 2))
    with pytest.raises(gc.ShapeError, match="pass num="):
        gc.unstack(x)
    a, b = gc.unstack(x, axis=1)
    assert a.shape == (None,)
    same(b, np.array([2.0, 4.0], np.float32), {x: np.array([[1, 2], [3, 4]], np.float32)})


# -- slicing -------------------------------------------------------------------------------------
KEYS = [0, -1, (1, 2), (slice(None), 0), slice(1, None), slice(None, None, -1), slice(None, None, 2),
        (slice(3, 0, -2), slice(None, None, -1)), (Ellipsis, 1), (None, 0), (0, None, slice(1, 3)),
        (slice(None), None, Ellipsis, None), (Ellipsis,), (1, Ellipsis, 2), slice(10, 20),
        slice(-2, None), (slice(None), slice(-100, 100, 3))]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_getitem_matches_numpy(key, dtype):
    a = data((4, 5, 3), dtype)
    same(gc.constant(a)[key], a[key])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-6, 6)), st.one_of(st.none(), st.integers(-6, 6)),
                          st.sampled_from([None, 1, 2, 3, -1, -2])), min_size=1, max_size=3))
def test_getitem_slices_hypothesis(parts):
    a = np.arange(4 * 5 * 2).reshape(4, 5, 2)
    key = tuple(slice(*p) for p in parts)
    with gc.Graph().as_default():
        same(gc.constant(a)[key], a[key])


def test_getitem_on_none_dims():
    x = gc.placeholder("float32", (None, 4, 5))
    y = x[:, None, ::-2, 0]
    assert y.shape == (None, 1, 2)
    z = x[0]
    assert z.shape == (4, 5)
    w = x[-1, 1:3]
    assert w.shape == (2, 5)
    for b in (1, 3):
        a = data((b, 4, 5), "float32")
        same(y, a[:, None, ::-2, 0], {x: a})
        same(z, a[0], {x: a})
        same(w, a[-1, 1:3], {x: a})
    with pytest.raises(gc.ShapeError, match="out of bounds"):
        run(x[2], {x: np.zeros((1, 4, 5), np.float32)})


def test_getitem_canonical_attrs_and_errors():
    x = gc.placeholder("float32", (3, 4))
    assert x[0].op.attrs == x[0, :].op.attrs == x[0, ...].op.attrs == x[np.int64(0)].op.attrs
    assert x[np.array(1), 1:].op.attrs == x[1, 1::1].op.attrs
    assert x[:, gc.newaxis].shape == (3, 1, 4)
    with pytest.raises(gc.ShapeError, match=r"index 3 is out of bounds for dimension 0 of size 3"):
        x[3]
    with pytest.raises(gc.ShapeError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(gc.ShapeError, match="single Ellipsis"):
        x[..., ...]
    with pytest.raises(TypeError, match="gc.gather"):
        x[[0, 1]]
    with pytest.raises(TypeError, match="gc.gather"):
        x[gc.constant(0)]
    with pytest.raises(gc.ShapeError, match="step cannot be zero"):
        x[::0]


def test_strided_slice_grad_n_sums_slice_gradients_in_one_buffer():
    # the reference: zeros like x, each dy added at its key (overlaps add up)
    rng = np.random.default_rng(4)
    x, d0, d1 = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((2, 2))
    d2 = rng.standard_normal((3, 2))
    keys = ((1,), (("s", 1, None, None), ("s", None, None, 2)),
            (("s", None, None, None), ("s", 2, None, None)))
    y = apply("strided_slice_grad_n", [gc.constant(d0), gc.constant(d1), gc.constant(d2), gc.constant(x)],
              {"keys": keys})
    want = np.zeros((3, 4))
    want[1] += d0
    want[1:, ::2] += d1
    want[:, 2:] += d2
    assert y.shape == (3, 4)
    np.testing.assert_allclose(gc.Session().run(y), want)
    with pytest.raises(gc.ShapeError, match="2 gradients for 3 keys"):
        apply("strided_slice_grad_n", [gc.constant(d0), gc.constant(d0), gc.constant(x)], {"keys": keys})


def test_slice_and_strided_slice():
    a = data((4, 6), "int32")
    same(gc.slice(gc.constant(a), [1, 2], [2, -1]), a[1:3, 2:])
    same(gc.strided_slice(gc.constant(a), [0, 5], [4, 0], [2, -1]), a[0:4:2, 5:0:-1])
    same(gc.strided_slice(gc.constant(a), [1, 0], [0, 3], begin_mask=0, end_mask=1), a[1:, 0:3])
    same(gc.strided_slice(gc.constant(a), [2, 0], [3, 6], shrink_axis_mask=1), a[2, 0:6])
    same(gc.strided_slice(gc.constant(a), [0, 0], [0, 2], new_axis_mask=1), a[None, 0:2])
    same(gc.strided_slice(gc.constant(a), [0, 1], [0, 2], ellipsis_mask=1), a[..., 1:2])
    x = gc.placeholder("float32", (None, 6))
    assert gc.slice(x, [0, 1], [-1, 2]).shape == (None, 2)
    with pytest.raises(gc.ShapeError, match="does not fit"):
        gc.slice(gc.constant(a), [3, 0], [2, 1])


# -- gather / unsorted_segment_sum / one_hot -----------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("idx", [[2, 0, 2], [[1], [0]], 1, [], [-1]])
def test_gather(dtype, axis, idx):
    a = data((3, 4, 3), dtype)
    i = np.asarray(idx, np.int32)
    same(gc.gather(gc.constant(a), idx, axis=axis), np.take(a, i, axis=axis))
    same(gc.gather(gc.constant(a), gc.constant(i.astype(np.int64)), axis=axis), np.take(a, i, axis=axis))


def test_gather_none_and_errors():
    p = gc.placeholder("float32", (None, 3))
    i = gc.placeholder("int32", (None,))
    y = gc.gather(p, i)
    assert y.shape == (None, 3)
    a = data((5, 3), "float32")
    same(y, a[[4, 0]], {p: a, i: np.array([4, 0], np.int32)})
    with pytest.raises(gc.DtypeError, match=r"int32 or int64.*gc\.cast"):
        gc.gather(p, [0.0, 1.0])
    with pytest.raises(gc.ShapeError, match=r"index 7 is out of range for axis 0 of size 5"):
        run(y, {p: a, i: np.array([7], np.int32)})


def test_unsorted_segment_sum():
    d = data((5, 2))
    ids = np.array([0, 2, 0, -1, 7], np.int32)
    y = gc.unsorted_segment_sum(gc.constant(d), ids, 3)
    want = np.zeros((3, 2))
    for k, s in enumerate(ids):
        if 0 <= s < 3:
            want[s] += d[k]
    assert y.shape == (3, 2)
    np.testing.assert_allclose(run(y), want)
    d2 = data((2, 3), "int32")
    same(gc.unsorted_segment_sum(gc.constant(d2), [[0, 1, 1], [1, 1, 0]], 2),
         np.array([d2[0, 0] + d2[1, 2], d2[0, 1] + d2[0, 2] + d2[1, 0] + d2[1, 1]], np.int32))
    with pytest.raises(gc.ShapeError, match="prefix"):
        gc.unsorted_segment_sum(gc.constant(d), [0, 1], 2)


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("dtype", ["float32", "int32", "float64"])
def test_one_hot(axis, dtype):
    idx = np.array([[0, 2], [3, -1]], np.int64)
    y = gc.one_hot(idx, 3, on_value=5, off_value=-1, axis=axis, dtype=dtype)
    hot = np.where(idx[..., None] == np.arange(3), 5, -1).astype(dtype)
    same(y, np.moveaxis(hot, -1, axis))


def test_one_hot_default_and_errors():
    same(gc.one_hot([1, 0], 2), np.array([[0, 1], [1, 0]], np.float32))
    x = gc.placeholder("int32", (None,))
    assert gc.one_hot(x, 4).shape == (None, 4)
    with pytest.raises(gc.DtypeError, match="int32 or int64"):
        gc.one_hot(gc.constant([1.0]), 2)


# -- pad -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "SYMMETRIC", "reflect"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pads", [[[1, 2], [0, 1]], [[0, 0], [2, 2]], [[2, 0], [1, 0]]])
def test_pad(mode, dtype, pads):
    a = data((3, 4), dtype)
    if mode == "CONSTANT":
        want = np.pad(a, pads, constant_values=np.asarray(7).astype(dtype))
        same(gc.pad(gc.constant(a), pads, mode, constant_values=7), want)
    else:
        same(gc.pad(gc.constant(a), pads, mode), np.pad(a, pads, mode=mode.lower()))


def test_pad_none_and_errors():
    x = gc.placeholder("float32", (None, 3))
    y = gc.pad(x, [[1, 1], [2, 0]])
    assert y.shape == (None, 5)
    a = data((2, 3), "float32")
    same(y, np.pad(a, [[1, 1], [2, 0]]), {x: a})
    with pytest.raises(gc.ShapeError, match="one \\[before, after\\] pair per dimension"):
        gc.pad(x, [[1, 1]])
    with pytest.raises(gc.ShapeError, match="too large; at most 2"):
        gc.pad(gc.zeros((3,)), [[3, 0]], "REFLECT")
    with pytest.raises(ValueError, match="CONSTANT, REFLECT or SYMMETRIC"):
        gc.pad(x, [[0, 0], [0, 0]], "EDGE")
    with pytest.raises(gc.DtypeError, match="not exact"):
        gc.pad(gc.constant([1, 2]), [[1, 1]], constant_values=0.5)


# -- broadcast_to / broadcast_like / tile --------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,target", [((3,), (2, 3)), ((1, 3), (4, 3)), ((2, 1), (2, 2, 5)),
                                          ((), (2,)), ((1,), (0,))])
def test_broadcast_to(dtype, shape, target):
    a = data(shape, dtype)
    same(gc.broadcast_to(gc.constant(a), target), np.broadcast_to(a, target))


def test_broadcast_like_and_errors():
    like = gc.placeholder("float32", (None, 3))
    y = gc.broadcast_like(gc.constant([1.0, 2.0, 3.0]), like)
    assert y.shape == (None, 3)
    same(y, np.tile(np.float32([1, 2, 3]), (2, 1)), {like: np.zeros((2, 3), np.float32)})
    s = gc.broadcast_like(gc.constant(2.5), gc.constant(1.0))       # the reference keeps a scalar 0-d
    assert evaluate(s.graph, [s.node]).values[0].shape == ()
    with pytest.raises(gc.ShapeError, match="cannot broadcast shape \\(2,\\) to \\(3, 3\\)"):
        gc.broadcast_to(gc.zeros((2,)), (3, 3))
    with pytest.raises(gc.ShapeError, match="fully known"):
        gc.broadcast_to(gc.zeros((2,)), (None, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,mult", [((2, 3), (2, 1)), ((2, 3), (1, 3)), ((3,), (0,)), ((2, 1, 2), (2, 3, 1))])
def test_tile(dtype, shape, mult):
    a = data(shape, dtype)
    same(gc.tile(gc.constant(a), mult), np.tile(a, mult))


def test_tile_none_and_errors():
    x = gc.placeholder("float32", (None, 2))
    y = gc.tile(x, [2, 3])
    assert y.shape == (None, 6)
    a = data((3, 2), "float32")
    same(y, np.tile(a, (2, 3)), {x: a})
    with pytest.raises(gc.ShapeError, match="one entry per dimension"):
        gc.tile(x, [2])


# -- creation and shape queries ------------------------------------------------------------------
def test_creation_ops():
    same(gc.zeros((2, 3)), np.zeros((2, 3), np.float32))
    same(gc.ones([2], "int64"), np.ones(2, np.int64))
    same(gc.fill([2, 2], 1.5), np.full((2, 2), 1.5, np.float32))
    same(gc.fill([3], 7), np.full(3, 7, np.int32))
    with pytest.raises(gc.ShapeError, match="zeros_like"):
        gc.zeros((None, 3))


@pytest.mark.parametrize("dtype", DTYPES + ["bool"])
def test_zeros_like_ones_like(dtype):
    x = gc.placeholder(dtype, (None, 2))
    a = data((3, 2), dtype)
    z, o = gc.zeros_like(x), gc.ones_like(x)
    assert z.shape == o.shape == (None, 2) and z.dtype == np.dtype(dtype)
    same(z, np.zeros((3, 2), dtype), {x: a})
    same(o, np.ones((3, 2), dtype), {x: a})
    same(gc.zeros_like(x, dtype="float64"), np.zeros((3, 2)), {x: a})


def test_shape_size_rank():
    x = gc.placeholder("float32", (None, 3))
    a = np.zeros((5, 3), np.float32)
    same(gc.shape(x), np.array([5, 3], np.int32), {x: a})
    same(gc.shape(x, out_type="int64"), np.array([5, 3], np.int64), {x: a})
    same(gc.size(x), np.int32(15), {x: a})
    same(gc.rank(x), np.int32(2))
    assert gc.shape(x).shape == (2,)


# -- gradients -----------------------------------------------------------------------------------
A = np.random.default_rng(3).standard_normal((3, 4))
B = np.random.default_rng(4).standard_normal((3, 2))
C = np.random.default_rng(5).standard_normal((2, 3, 4))


@pytest.mark.parametrize("fn,arrays", [
    (lambda xs: gc.reshape(xs[0], (2, -1, 2)), [A]),
    (lambda xs: gc.reshape_like(xs[0], xs[1]), [A, np.zeros((6, 2))]),
    (lambda xs: gc.transpose(xs[0], (2, 0, 1)), [C]),
    (lambda xs: gc.expand_dims(xs[0], 1), [A]),
    (lambda xs: gc.squeeze(xs[0]), [A.reshape(3, 1, 4)]),
    (lambda xs: gc.concat([xs[0], xs[1], xs[0]], 1), [A, B]),
    (lambda xs: gc.stack([xs[0], xs[1] * 2.0], 1), [A, A + 1]),
    (lambda xs: gc.unstack(xs[0], axis=1)[2], [A]),
    (lambda xs: xs[0][1:, ::-2], [A]),
    (lambda xs: xs[0][:, None, -1, 1:3], [C]),
    (lambda xs: xs[0][..., 0] * xs[0][..., 1], [C]),
    (lambda xs: gc.slice(xs[0], [1, 1], [2, -1]), [A]),
    (lambda xs: gc.strided_slice(xs[0], [2, 3], [0, 0], [-1, -2]), [A]),
    (lambda xs: gc.gather(xs[0], [2, 0, 2, 2]), [A]),
    (lambda xs: gc.gather(xs[0], [[1, 3], [3, 3]], axis=1), [A]),
    (lambda xs: gc.unsorted_segment_sum(xs[0], [1, 0, 1, 5], 3), [np.ascontiguousarray(A.T)]),
    (lambda xs: gc.pad(xs[0], [[1, 2], [0, 3]]), [A]),
    (lambda xs: gc.pad(xs[0], [[2, 1], [3, 3]], "REFLECT"), [A]),
    (lambda xs: gc.pad(xs[0], [[3, 2], [1, 4]], "SYMMETRIC"), [A]),
    (lambda xs: gc.broadcast_to(xs[0], (2, 3, 4)), [A[:1]]),
    (lambda xs: gc.broadcast_like(xs[0], xs[1]), [A[:, :1], A]),
    (lambda xs: gc.tile(xs[0], [2, 3]), [A]),
    (lambda xs: xs[0] + gc.zeros_like(xs[0]) * gc.ones_like(xs[0]), [A]),
])
def test_gradients(fn, arrays):
    check_grad(fn, arrays)


def test_scatter_add_gradient():
    ref = np.random.default_rng(0).standard_normal((4, 3))
    upd = np.random.default_rng(1).standard_normal((2, 2, 3))
    check_grad(lambda xs: apply("scatter_add", [xs[0], gc.constant([[1, 1], [3, 0]]), xs[1]], {"axis": 0}),
               [ref, upd])


def _second(op_fn):
    """d/dx of sum(op_fn(x) * w): a function whose graph contains the op's gradient helper."""
    def fn(xs):
        x = xs[0]
        y = op_fn(x)
        w = gc.constant(np.linspace(0.5, 1.5, int(np.prod(y.shape))).reshape(y.shape))
        return gc.gradients(gc.reduce_sum(y * w * y), x)[0]
    return fn


@pytest.mark.parametrize("op_fn,shape", [
    (lambda x: x[1:, ::2], (3, 4)),                                # strided_slice_grad
    (lambda x: gc.pad(x, [[1, 1], [2, 2]], "REFLECT"), (3, 4)),     # pad_grad
    (lambda x: gc.gather(x, [0, 2, 2]), (3, 4)),                   # scatter_add
])
def test_second_order_gradients_of_helpers(op_fn, shape):
    a = np.random.default_rng(7).standard_normal(shape)
    check_grad(_second(op_fn), [a])


def test_helper_ops_directly():
    a = np.random.default_rng(8).standard_normal((6, 4))
    x2 = np.random.default_rng(9).standard_normal((3, 2))
    check_grad(lambda xs: apply("tile_grad", [xs[0], xs[1]], {"multiples": (2, 2)}), [a, x2])
    check_grad(lambda xs: apply("concat_split", [xs[0], xs[1], xs[1]], {"axis": 0, "index": 1}),
               [a, x2[:, :1].repeat(4, 1)])
    check_grad(lambda xs: apply("strided_slice_grad", [xs[0], xs[1]],
                                {"key": (("s", None, None, 2), 1)}), [a[:2, 0], x2])


def test_gradients_with_unknown_dims():
    """Gradient paths that need run-time shapes (reshape_like, concat_split, tile_grad, ...)."""
    x = gc.placeholder("float64", (None, None, 2))
    y = gc.placeholder("float64", (None, None, 2))
    outs = {
        "reshape": gc.reshape(x, (-1,)),
        "concat": gc.concat([x, y], 1) * 1.0,
        "tile": gc.tile(x, [1, 2, 3]),
        "slice": x[0, ::-1],
        "pad": gc.pad(x, [[0, 1], [1, 0], [0, 0]], "SYMMETRIC"),
        "mean": gc.reduce_mean(x, axis=1),
        "bcast": gc.broadcast_like(gc.reduce_sum(x, axis=0, keepdims=True), x),
    }
    a = np.random.default_rng(0).standard_normal((2, 3, 2))
    b = np.random.default_rng(1).standard_normal((2, 1, 2))
    sess = gc.Session()
    for name, out in outs.items():
        gx = gc.gradients(gc.reduce_sum(out * out), [x, y])
        got = sess.run([g for g in gx if g is not None], {x: a, y: b})
        # numeric reference via float64 central differences on x
        eps = 1e-6
        loss = gc.reduce_sum(out * out)
        num = np.zeros_like(a)
        for j in range(a.size):
            p, m = a.copy(), a.copy()
            p.reshape(-1)[j] += eps
            m.reshape(-1)[j] -= eps
            num.reshape(-1)[j] = (sess.run(loss, {x: p, y: b}) - sess.run(loss, {x: m, y: b})) / (2 * eps)
        np.testing.assert_allclose(got[0], num, atol=1e-5, rtol=1e-4, err_msg=name)


OWN_OPS = ["reshape", "reshape_like", "transpose", "expand_dims", "squeeze", "concat", "concat_split",
           "stack", "strided_slice", "strided_slice_grad", "strided_slice_grad_n", "gather", "scatter_add",
           "unsorted_segment_sum", "pad", "pad_grad", "broadcast_to", "broadcast_like", "tile", "tile_grad", "zeros_like", "ones_like"]


def test_every_differentiable_array_op_has_a_gradient():
    for name in OWN_OPS:
        assert get_op(name).differentiable and get_op(name).grad is not None, name
    for name in ["one_hot", "shape", "size"]:
        assert not get_op(name).differentiable
