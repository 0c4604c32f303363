"""Shape inference on its own: static specs, computed without running anything, None dims included."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.ops.registry import broadcast_shapes, get_op, normalize_axis, same_dtype
from graphc.ir import TensorSpec

f32, f64, i32, b = (np.dtype("float32"), np.dtype("float64"), np.dtype("int32"), np.dtype("bool"))


def spec(shape, dtype=f32):
    return TensorSpec(tuple(shape), np.dtype(dtype))


# -- broadcasting rule ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b_,want", [
    ((), (), ()),
    ((3,), (), (3,)),
    ((), (2, 3), (2, 3)),
    ((2, 3), (3,), (2, 3)),
    ((2, 1), (1, 3), (2, 3)),
    ((4, 1, 5), (3, 1), (4, 3, 5)),
    ((0,), (1,), (0,)),
    ((1,), (0,), (0,)),
    ((0, 3), (1, 3), (0, 3)),
    ((None,), (3,), (3,)),
    ((3,), (None,), (3,)),
    ((None, 3), (3,), (None, 3)),
    ((None, 3), (1, 3), (None, 3)),
    ((None, 1), (1, 5), (None, 5)),
    ((None,), (1,), (None,)),
    ((1,), (None,), (None,)),
    ((None, None), (None, 4), (None, 4)),
    ((None,), (None,), (None,)),
    ((None, 784), (784,), (None, 784)),
    ((2, None), (None, 1, 1), (None, 2, None)),
])
def test_broadcast_shapes(a, b_, want):
    assert broadcast_shapes(a, b_) == want


@pytest.mark.parametrize("a,b_", [((2,), (3,)), ((2, 3), (3, 2)), ((0,), (2,)), ((None, 3), (4,)),
                                  ((4, None), (3, 1))])
def test_broadcast_shapes_incompatible(a, b_):
    with pytest.raises(gc.ShapeError) as ei:
        broadcast_shapes(a, b_)
    assert "broadcast" in str(ei.value)


DIMS = st.sampled_from([0, 1, 2, 3, None])


@settings(max_examples=80, deadline=None)
@given(st.lists(DIMS, max_size=4), st.lists(DIMS, max_size=4),
       st.lists(st.integers(0, 3), min_size=8, max_size=8))
def test_broadcast_shapes_agrees_with_numpy_for_any_filling(a, b_, fills):
    """For every way of filling the None dims that numpy accepts, the static result is compatible;
    a static error means no filling can broadcast."""
    a, b_ = tuple(a), tuple(b_)
    it = iter(fills)
    ca = tuple(next(it) if d is None else d for d in a)
    cb = tuple(next(it) if d is None else d for d in b_)
    try:
        got = broadcast_shapes(a, b_)
    except gc.ShapeError:
        with pytest.raises(ValueError):
            np.broadcast_shapes(ca, cb)
        return
    try:
        ref = np.broadcast_shapes(ca, cb)
    except ValueError:
        assert None in a or None in b_  # only unknown dims may hide a run-time mismatch
        return
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g is None or g == r
    if None not in a and None not in b_:
        assert got == ref


# -- per-op rules called directly on specs (no graph) ---------------------------------------------------------
def test_elementwise_infer_on_specs():
    add = get_op("add").infer
    assert add([spec((None, 3)), spec((3,))], {}) == spec((None, 3))
    assert get_op("less").infer([spec((2, 1), i32), spec((4,), i32)], {}) == spec((2, 4), b)
    assert get_op("exp").infer([spec((None, 0), f64)], {}) == spec((None, 0), f64)
    assert get_op("cast").infer([spec((None, 2))], {"dtype": i32}) == spec((None, 2), i32)
    assert get_op("where").infer([spec((None, 1), b), spec((3,)), spec(())], {}) == spec((None, 3))
    assert get_op("logical_not").infer([spec((5,), b)], {}) == spec((5,), b)


def test_elementwise_infer_rejects_bad_dtypes_on_specs():
    with pytest.raises(gc.DtypeError):
        get_op("add").infer([spec((2,), f32), spec((2,), f64)], {})
    with pytest.raises(gc.DtypeError):
        get_op("exp").infer([spec((2,), i32)], {})
    with pytest.raises(gc.DtypeError):
        get_op("logical_and").infer([spec((2,), f32), spec((2,), f32)], {})
    with pytest.raises(gc.DtypeError):
        get_op("where").infer([spec((2,), f32), spec((2,)), spec((2,))], {})
    with pytest.raises(gc.ShapeError):
        get_op("mul").infer([spec((2, 3)), spec((2,))], {})


def test_state_infer_on_specs():
    assert get_op("assign").infer([spec((2, 3)), spec((2, 3))], {}) == spec((2, 3))
    assert get_op("assign_add").infer([spec((2, 3)), spec((None, 3))], {}) == spec((2, 3))
    with pytest.raises(gc.ShapeError):
        get_op("assign").infer([spec((2, 3)), spec((3, 2))], {})
    with pytest.raises(gc.ShapeError):
        get_op("assign").infer([spec((2, 3)), spec((3,))], {})  # no broadcasting into a variable
    with pytest.raises(gc.DtypeError):
        get_op("assign_sub").infer([spec((2,)), spec((2,), f64)], {})


def test_normalize_axis_and_same_dtype_helpers():
    assert normalize_axis(None, 3) == (0, 1, 2)
    assert normalize_axis(-1, 3) == (2,)
    assert normalize_axis([2, 0], 3) == (0, 2)
    with pytest.raises(gc.ShapeError, match="out of range"):
        normalize_axis(3, 3)
    with pytest.raises(gc.ShapeError, match="repeats"):
        normalize_axis([1, -2], 3)
    assert same_dtype([spec(()), spec((2,))]) == f32
    with pytest.raises(gc.DtypeError, match="cast"):
        same_dtype([spec((), i32), spec((), f32)])


# -- specs of built graphs (never run) ---------------------------------------------------------------------------
def test_static_specs_of_an_mlp_with_none_batch():
    x = gc.placeholder("float32", (None, 784), name="x")
    labels = gc.placeholder("int32", (None,), name="labels")
    w1 = gc.Variable(np.zeros((784, 128), np.float32))
    b1 = gc.Variable(np.zeros((128,), np.float32))
    h = gc.nn.relu(gc.matmul(x, w1) + b1)
    assert h.shape == (None, 128) and h.dtype == np.float32
    w2 = gc.Variable(np.zeros((128, 10), np.float32))
    logits = gc.matmul(h, w2)
    assert logits.shape == (None, 10)
    probs = gc.nn.softmax(logits)
    assert probs.shape == (None, 10)
    pred = gc.argmax(logits, axis=1)
    assert pred.shape == (None,) and pred.dtype.kind == "i"
    correct = gc.equal(gc.cast(pred, "int32"), labels)
    assert correct.shape == (None,) and correct.dtype == np.bool_
    acc = gc.reduce_mean(gc.cast(correct, "float32"))
    assert acc.shape == () and acc.dtype == np.float32
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    assert loss.shape == ()


def test_static_specs_of_reductions():
    x = gc.placeholder("float32", (None, 3, 4), name="x")
    assert gc.reduce_sum(x).shape == ()
    assert gc.reduce_sum(x, axis=1).shape == (None, 4)
    assert gc.reduce_sum(x, axis=0).shape == (3, 4)
    assert gc.reduce_mean(x, axis=[1, 2], keepdims=True).shape == (None, 1, 1)
    assert gc.reduce_max(x, axis=-1).shape == (None, 3)
    assert gc.reduce_min(x, axis=0, keepdims=True).shape == (1, 3, 4)
    assert gc.argmax(x, axis=2).shape == (None, 3)


def test_static_specs_of_layout_ops():
    x = gc.placeholder("float32", (None, 3, 4), name="x")
    assert gc.reshape(x, (-1, 12)).shape == (None, 12)
    assert gc.reshape(x, (-1,)).shape == (None,)
    assert gc.transpose(x).shape == (4, 3, None)
    assert gc.transpose(x, (0, 2, 1)).shape == (None, 4, 3)
    assert gc.expand_dims(x, 1).shape == (None, 1, 3, 4)
    assert gc.expand_dims(x, -1).shape == (None, 3, 4, 1)
    y = gc.placeholder("float32", (None, 1, 4), name="y")
    assert gc.squeeze(y, axis=1).shape == (None, 4)
    assert gc.concat([x, x], axis=1).shape == (None, 6, 4)
    assert gc.concat([x, x], axis=0).shape == (None, 3, 4)
    assert gc.stack([x, x], axis=1).shape == (None, 2, 3, 4)
    assert x[:, 1:, ::2].shape == (None, 2, 2)
    assert x[0].shape == (3, 4)
    assert x[..., 0].shape == (None, 3)
    assert x[:, None].shape == (None, 1, 3, 4)


def test_static_specs_of_matmul_variants():
    a = gc.placeholder("float32", (None, 5, 3), name="a")
    w = gc.placeholder("float32", (3, 7), name="w")
    m = gc.placeholder("float32", (2, 3), name="m")
    assert gc.matmul(a, gc.placeholder("float32", (None, 3, 7))).shape == (None, 5, 7)
    assert gc.matmul(m, m, transpose_b=True).shape == (2, 2)
    assert gc.matmul(m, m, transpose_a=True).shape == (3, 3)
    assert gc.matmul(m, w).shape == (2, 7)
    assert (m @ w).shape == (2, 7)


def test_static_specs_of_nn_ops():
    img = gc.placeholder("float32", (None, 28, 28, 1), name="img")
    k = gc.constant(np.zeros((3, 3, 1, 8), np.float32))
    assert gc.nn.conv2d(img, k, strides=1, padding="VALID").shape == (None, 26, 26, 8)
    assert gc.nn.conv2d(img, k, strides=1, padding="SAME").shape == (None, 28, 28, 8)
    assert gc.nn.conv2d(img, k, strides=2, padding="SAME").shape == (None, 14, 14, 8)
    assert gc.nn.max_pool2d(img, 2).shape == (None, 14, 14, 1)
    assert gc.one_hot(gc.placeholder("int32", (None,)), 10).shape == (None, 10)


def test_specs_are_computed_without_a_session():
    """Building never evaluates: a graph reading an unfed placeholder and uninitialized variable builds fine."""
    x = gc.placeholder("float32", (None, 2), name="x")
    v = gc.Variable(np.ones((2, 2), np.float32))
    y = gc.log(gc.matmul(x, v) - 1e9)
    assert y.shape == (None, 2) and y.dtype == np.float32


def test_python_scalar_operand_spec():
    x = gc.placeholder("float64", (None, 2), name="x")
    t = x + 1
    assert t.shape == (None, 2) and t.dtype == np.float64
    c = t.op.inputs[1]
    assert c.shape == () and c.dtype == np.float64


def test_placeholder_shapes():
    assert gc.placeholder("float32", 5).shape == (5,)
    assert gc.placeholder("float32", [None, 3]).shape == (None, 3)
    assert gc.placeholder("float32", (-1, 3)).shape == (None, 3)
    assert gc.placeholder("int64", ()).shape == ()
    assert gc.placeholder(np.float64, (2,)).dtype == np.float64
    assert gc.placeholder(gc.bool, (2,)).dtype == np.bool_


def test_constant_shape_argument():
    assert gc.constant(0.0, shape=(2, 3)).shape == (2, 3)
    assert gc.constant([1, 2, 3, 4], shape=(2, 2)).shape == (2, 2)
    np.testing.assert_array_equal(gc.Session().run(gc.constant(7, shape=[2])), [7, 7])
    with pytest.raises(gc.ShapeError):
        gc.constant([1, 2, 3], shape=(2, 2))


def test_inferred_spec_matches_value_for_every_fed_size():
    x = gc.placeholder("float32", (None, 4), name="x")
    outs = [x + 1.0, gc.reduce_sum(x, axis=0), gc.reshape(x, (-1, 2)), gc.transpose(x), x[:, :2],
            gc.expand_dims(x, 0), gc.concat([x, x], 0), gc.matmul(x, gc.ones((4, 3)))]
    sess = gc.Session()
    for n in (0, 1, 3):
        vals = sess.run(outs, {x: np.ones((n, 4), np.float32)})
        for t, v in zip(outs, vals):
            assert v.ndim == len(t.shape), t
            assert v.dtype == t.dtype
            for d, s in zip(t.shape, v.shape):
                assert d is None or d == s, (t, v.shape)
