"""Every elementwise op against its numpy reference: shapes, dtypes, broadcasting, None batch dims."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.ops import elementwise

_erf = np.vectorize(math.erf, otypes=[np.float64])
SQ2PI = math.sqrt(2.0 / math.pi)
SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805

SHAPES = [(1,), (5,), (2, 3), (0,), (0, 3), (1, 4, 1), (2, 1, 3)]  # 0-d: test_unary_on_scalar
FLOATS = [np.float32, np.float64]
INTS = [np.int32, np.int64]


def tol(dtype):
    return dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


def sample(shape, dtype, rng, domain="any"):
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind == "i":
        lo, hi = {"any": (-5, 6), "pos": (1, 6), "small": (0, 4)}[domain]
        return rng.integers(lo, hi, size=shape).astype(dtype)
    if domain == "pos":
        return (rng.random(shape) * 3 + 0.1).astype(dtype)
    if domain == "gt-1":
        return (rng.random(shape) * 3 - 0.9).astype(dtype)
    return (rng.standard_normal(shape) * 2).astype(dtype)


def run(t, feed=None):
    """Run on the reference interpreter (the oracle), exactly as built."""
    return gc.Session(t.graph, optimize=False, executor="reference").run(t, feed_dict=feed)


# (function, numpy reference, dtypes allowed, input domain)
UNARY = {
    "negative": (gc.negative, np.negative, FLOATS + INTS, "any"),
    "neg": (gc.neg, np.negative, FLOATS + INTS, "any"),
    "abs": (gc.abs, np.abs, FLOATS + INTS, "any"),
    "square": (gc.square, np.square, FLOATS + INTS, "any"),
    "sign": (gc.sign, np.sign, FLOATS + INTS, "any"),
    "relu": (gc.relu, lambda x: np.maximum(x, 0), FLOATS + INTS, "any"),
    "exp": (gc.exp, np.exp, FLOATS, "any"),
    "expm1": (gc.expm1, np.expm1, FLOATS, "any"),
    "log": (gc.log, np.log, FLOATS, "pos"),
    "log1p": (gc.log1p, np.log1p, FLOATS, "gt-1"),
    "sqrt": (gc.sqrt, np.sqrt, FLOATS, "pos"),
    "rsqrt": (gc.rsqrt, lambda x: 1 / np.sqrt(x), FLOATS, "pos"),
    "reciprocal": (gc.reciprocal, lambda x: 1 / x, FLOATS, "pos"),
    "floor": (gc.floor, np.floor, FLOATS, "any"),
    "ceil": (gc.ceil, np.ceil, FLOATS, "any"),
    "round": (gc.round, np.round, FLOATS, "any"),  # half to even, like TensorFlow
    "sin": (gc.sin, np.sin, FLOATS, "any"),
    "cos": (gc.cos, np.cos, FLOATS, "any"),
    "tanh": (gc.tanh, np.tanh, FLOATS, "any"),
    "sigmoid": (gc.sigmoid, lambda x: 1 / (1 + np.exp(-x.astype(np.float64))), FLOATS, "any"),
    "relu6": (gc.relu6, lambda x: np.minimum(np.maximum(x, 0), 6), FLOATS, "any"),
    "softplus": (gc.softplus, lambda x: np.log1p(np.exp(x.astype(np.float64))), FLOATS, "any"),
    "softsign": (gc.softsign, lambda x: x / (1 + np.abs(x)), FLOATS, "any"),
    "erf": (gc.erf, lambda x: _erf(x), FLOATS, "any"),
    "leaky_relu": (gc.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x), FLOATS, "any"),
    "elu": (gc.elu, lambda x: np.where(x > 0, x, np.expm1(x)), FLOATS, "any"),
    "selu": (gc.selu, lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)), FLOATS, "any"),
    "gelu": (gc.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2.0))), FLOATS, "any"),
    "swish": (gc.swish, lambda x: x / (1 + np.exp(-x.astype(np.float64))), FLOATS, "any"),
    "silu": (gc.silu, lambda x: x / (1 + np.exp(-x.astype(np.float64))), FLOATS, "any"),
    "identity": (gc.identity, lambda x: x, FLOATS + INTS + [np.bool_], "any"),
    "stop_gradient": (gc.stop_gradient, lambda x: x, FLOATS + INTS + [np.bool_], "any"),
    "logical_not": (gc.logical_not, np.logical_not, [np.bool_], "any"),
}

BINARY = {
    "add": (gc.add, np.add, FLOATS + INTS, "any"),
    "subtract": (gc.subtract, np.subtract, FLOATS + INTS, "any"),
    "sub": (gc.sub, np.subtract, FLOATS + INTS, "any"),
    "multiply": (gc.multiply, np.multiply, FLOATS + INTS, "any"),
    "mul": (gc.mul, np.multiply, FLOATS + INTS, "any"),
    "divide": (gc.divide, np.divide, FLOATS, "pos"),
    "div": (gc.div, np.divide, FLOATS, "pos"),
    "truediv": (gc.truediv, np.divide, FLOATS, "pos"),
    "floordiv": (gc.floordiv, np.floor_divide, FLOATS + INTS, "pos"),
    "mod": (gc.mod, np.mod, FLOATS + INTS, "pos"),
    "pow": (gc.pow, np.power, FLOATS + INTS, "small"),
    "maximum": (gc.maximum, np.maximum, FLOATS + INTS, "any"),
    "minimum": (gc.minimum, np.minimum, FLOATS + INTS, "any"),
    "squared_difference": (gc.squared_difference, lambda a, b: (a - b) ** 2, FLOATS + INTS, "any"),
    "equal": (gc.equal, np.equal, FLOATS + INTS + [np.bool_], "small"),
    "not_equal": (gc.not_equal, np.not_equal, FLOATS + INTS + [np.bool_], "small"),
    "less": (gc.less, np.less, FLOATS + INTS, "small"),
    "less_equal": (gc.less_equal, np.less_equal, FLOATS + INTS, "small"),
    "greater": (gc.greater, np.greater, FLOATS + INTS, "small"),
    "greater_equal": (gc.greater_equal, np.greater_equal, FLOATS + INTS, "small"),
    "logical_and": (gc.logical_and, np.logical_and, [np.bool_], "any"),
    "logical_or": (gc.logical_or, np.logical_or, [np.bool_], "any"),
}
BOOL_OUT = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
            "logical_or"}
OTHER = {"where", "cast", "clip_by_value"}


def test_every_public_elementwise_function_is_tested():
    covered = set(UNARY) | set(BINARY) | OTHER
    assert set(elementwise.__all__) - covered == set()
    for name in elementwise.__all__:
        assert getattr(gc, name) is getattr(elementwise, name)


def _float_sample_for(name, shape, dtype, rng, domain):
    x = sample(shape, dtype, rng, domain)
    if name == "round" and np.dtype(dtype).kind == "f" and x.size:
        x.flat[0] = 2.5  # exact halves: banker's rounding
        if x.size > 1:
            x.flat[1] = -0.5
    return x


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_against_numpy(name, rng):
    fn, ref, dtypes, domain = UNARY[name]
    for dtype in dtypes:
        for shape in SHAPES:
            xv = _float_sample_for(name, shape, dtype, rng, domain)
            t = fn(gc.constant(xv))
            assert t.dtype == np.dtype(dtype), (name, dtype)
            assert t.shape == shape
            out = run(t)
            assert out.dtype == np.dtype(dtype), (name, dtype, shape)
            assert out.shape == shape
            want = np.asarray(ref(xv))
            if np.dtype(dtype).kind == "f":
                np.testing.assert_allclose(out, want.astype(dtype), **tol(dtype), err_msg=f"{name} {shape}")
            else:
                np.testing.assert_array_equal(out, want, err_msg=f"{name} {dtype} {shape}")


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_on_scalar(name):
    fn, ref, dtypes, domain = UNARY[name]
    for dtype in dtypes:
        value = {"pos": 1.5, "gt-1": 0.5}.get(domain, -1.5) if np.dtype(dtype).kind == "f" else (
            True if np.dtype(dtype) == np.bool_ else -2)
        xv = np.array(value, dtype)
        t = fn(gc.constant(xv))
        assert t.shape == ()
        out = run(t)
        assert out.shape == () and out.dtype == np.dtype(dtype), (name, dtype)
        np.testing.assert_allclose(out, np.asarray(ref(xv)).astype(dtype), rtol=1e-5, err_msg=name)


def test_gelu_approximate_and_parameters(rng):
    xv = sample((3, 4), np.float32, rng)
    out = run(gc.gelu(gc.constant(xv), approximate=True))
    x64 = xv.astype(np.float64)
    want = 0.5 * x64 * (1 + np.tanh(SQ2PI * (x64 + 0.044715 * x64 ** 3)))
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(run(gc.leaky_relu(gc.constant(xv), alpha=0.01)),
                               np.where(xv > 0, xv, 0.01 * xv), rtol=1e-6)
    np.testing.assert_allclose(run(gc.elu(gc.constant(xv), alpha=0.5)),
                               np.where(xv > 0, xv, 0.5 * np.expm1(xv)), rtol=1e-5, atol=1e-7)


def test_sigmoid_and_softplus_are_stable_for_large_inputs():
    xv = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], np.float32)
    s = run(gc.sigmoid(gc.constant(xv)))
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)
    sp = run(gc.softplus(gc.constant(xv)))
    assert np.all(np.isfinite(sp))
    np.testing.assert_allclose(sp, [0.0, 0.0, np.log(2.0), 100.0, 1000.0], rtol=1e-6, atol=1e-30)


BROADCAST_PAIRS = [
    ((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((), (4,)), ((4,), ()),
    ((0, 3), (1, 3)), ((3, 0), (3, 1)), ((1,), (0,)), ((2, 1, 3), (4, 1)), ((1, 1), (1,)),
    ((0,), ()),
]


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_against_numpy_with_broadcasting(name, rng):
    fn, ref, dtypes, domain = BINARY[name]
    for dtype in dtypes:
        for sa, sb in BROADCAST_PAIRS:
            a_domain = {"pow": "pos"}.get(name, "any" if domain == "small" else domain)
            av = sample(sa, dtype, rng, a_domain)
            bv = sample(sb, dtype, rng, domain)
            if name in ("equal", "not_equal") and av.size and bv.size:
                av.flat[0] = bv.flat[0]  # make some elements equal
            t = fn(gc.constant(av), gc.constant(bv))
            want = np.asarray(ref(av, bv))
            out_dtype = np.dtype(np.bool_) if name in BOOL_OUT else np.dtype(dtype)
            assert t.dtype == out_dtype, (name, dtype)
            assert t.shape == want.shape, (name, sa, sb)
            out = run(t)
            assert out.dtype == out_dtype
            assert out.shape == want.shape
            if out_dtype.kind == "f":
                np.testing.assert_allclose(out, want.astype(dtype), **tol(dtype), err_msg=f"{name} {sa} {sb}")
            else:
                np.testing.assert_array_equal(out, want, err_msg=f"{name} {dtype} {sa} {sb}")


def test_floordiv_and_mod_follow_python_semantics_for_negatives():
    a = gc.constant([-7, 7, -7, 7])
    b = gc.constant([2, -2, -2, 2])
    np.testing.assert_array_equal(run(a // b), [-4, -4, 3, 3])
    np.testing.assert_array_equal(run(a % b), [1, -1, -1, 1])
    af = gc.constant([-7.5, 7.5])
    np.testing.assert_allclose(run(af // 2.0), [-4.0, 3.0])
    np.testing.assert_allclose(run(af % 2.0), [0.5, 1.5])


@pytest.mark.parametrize("dtype", FLOATS + INTS)
def test_where_against_numpy(dtype, rng):
    for sc, sx, sy in [((2, 3), (2, 3), (2, 3)), ((2, 1), (3,), ()), ((3,), (2, 3), (1, 3)),
                       ((0, 3), (3,), (1,)), ((), (4,), (4,))]:
        c = rng.random(sc) < 0.5
        x, y = sample(sx, dtype, rng), sample(sy, dtype, rng)
        t = gc.where(gc.constant(c), gc.constant(x), gc.constant(y))
        want = np.where(c, x, y)
        assert t.shape == want.shape and t.dtype == np.dtype(dtype)
        out = run(t)
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out, want)


def test_where_with_python_scalars_adopts_tensor_dtype():
    x = gc.constant(np.array([-1.0, 2.0], np.float64))
    t = gc.where(x > 0, x, 0)
    assert t.dtype == np.float64
    np.testing.assert_array_equal(run(t), [0.0, 2.0])
    t = gc.where(gc.constant([True, False]), 1.0, 2.0)
    np.testing.assert_array_equal(run(t), [1.0, 2.0])


@pytest.mark.parametrize("src", FLOATS + INTS + [np.bool_])
@pytest.mark.parametrize("dst", FLOATS + INTS + [np.bool_])
def test_cast_against_numpy(src, dst):
    xv = np.array([[-2.7, -0.5, 0.0], [0.4, 1.0, 3.9]]).astype(src)
    t = gc.cast(gc.constant(xv), dst)
    assert t.dtype == np.dtype(dst) and t.shape == (2, 3)
    out = run(t)
    assert out.dtype == np.dtype(dst)
    np.testing.assert_array_equal(out, xv.astype(dst))  # float -> int truncates toward zero


def test_cast_accepts_names_and_gc_dtypes():
    x = gc.constant([1.5, -1.5])
    assert gc.cast(x, "int32").dtype == np.int32
    assert gc.cast(x, gc.float64).dtype == np.float64
    assert gc.cast(x, np.int64).dtype == np.int64
    assert gc.cast(x, gc.bool).dtype == np.bool_
    np.testing.assert_array_equal(run(gc.cast(x, "int32")), [1, -1])


def test_clip_by_value(rng):
    for dtype in FLOATS + INTS:
        xv = sample((3, 4), dtype, rng)
        t = gc.clip_by_value(gc.constant(xv), -1, 2)
        assert t.dtype == np.dtype(dtype)
        out = run(t)
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out, np.clip(xv, -1, 2))


def test_clip_by_value_with_tensor_bounds_broadcasts():
    xv = np.arange(6, dtype=np.float32).reshape(2, 3)
    lo = gc.constant([1.0, 0.0, 2.0])
    t = gc.clip_by_value(gc.constant(xv), lo, 4.0)
    np.testing.assert_array_equal(run(t), np.clip(xv, [1.0, 0.0, 2.0], 4.0))


# -- dtypes and Python scalars ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS + INTS)
def test_python_scalars_adopt_tensor_dtype(dtype):
    x = gc.constant(np.array([1, 2, 3], dtype))
    for t in [x * 2, 2 * x, x + 1, 1 + x, x - 3, 3 - x, gc.maximum(x, 2), gc.minimum(2, x), x ** 2]:
        assert t.dtype == np.dtype(dtype), t
        assert run(t).dtype == np.dtype(dtype)
    np.testing.assert_array_equal(run(x * 2), np.array([2, 4, 6], dtype))


def test_float32_stays_float32_with_python_floats():
    x = gc.constant(np.array([1.0, 2.0], np.float32))
    for t in [x * 2.5, 2.5 * x, x / 3.0, 3.0 / x, x - 0.1, x ** 0.5, -x, gc.exp(x) * 1e-3]:
        assert t.dtype == np.float32
        out = run(t)
        assert out.dtype == np.float32
    np.testing.assert_allclose(run(x / 3.0), np.array([1.0, 2.0], np.float32) / np.float32(3.0))


def test_python_float_with_int_tensor_is_a_clear_error():
    x = gc.constant([1, 2, 3])
    for make in (lambda: x * 2.5, lambda: 0.5 + x, lambda: gc.maximum(x, 1.5)):
        with pytest.raises(gc.DtypeError) as ei:
            make()
        msg = str(ei.value)
        assert "int32" in msg and "float" in msg
        assert "cast" in msg


def test_python_list_operand_adopts_dtype_and_broadcasts():
    x = gc.constant(np.ones((2, 3), np.float64))
    t = x + [1, 2, 3]
    assert t.dtype == np.float64 and t.shape == (2, 3)
    np.testing.assert_array_equal(run(t), np.ones((2, 3)) + [1, 2, 3])


def test_two_python_values_make_default_dtypes():
    assert gc.add(1.0, 2.0).dtype == np.float32
    assert gc.add(1, 2).dtype == np.int32
    assert float(run(gc.add(1.0, 2.0))) == 3.0


# -- None batch dims ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["add", "multiply", "maximum", "squared_difference", "greater", "divide"])
def test_binary_with_none_batch_dim_fed_with_different_sizes(name, rng):
    fn, ref, _, domain = BINARY[name]
    x = gc.placeholder("float32", (None, 3), name="x")
    bias = sample((3,), np.float32, rng, "pos")
    t = fn(x, gc.constant(bias))
    assert t.shape == (None, 3)
    u = fn(x, x)
    assert u.shape == (None, 3)
    sess = gc.Session(optimize=False, executor="reference")
    for n in (0, 1, 4, 9):
        xv = sample((n, 3), np.float32, rng, "pos")
        out_t, out_u = sess.run([t, u], {x: xv})
        assert out_t.shape == (n, 3) and out_u.shape == (n, 3)
        np.testing.assert_allclose(out_t, ref(xv, bias), rtol=1e-6)
        np.testing.assert_allclose(out_u, ref(xv, xv), rtol=1e-6)


def test_unary_chain_with_none_batch_dim(rng):
    x = gc.placeholder("float64", (None, None), name="x")
    y = gc.tanh(gc.exp(-gc.square(x)) * 2.0 + gc.abs(x))
    assert y.shape == (None, None) and y.dtype == np.float64
    sess = gc.Session(optimize=False, executor="reference")
    for shape in [(1, 1), (3, 2), (0, 5)]:
        xv = sample(shape, np.float64, rng)
        np.testing.assert_allclose(sess.run(y, {x: xv}), np.tanh(np.exp(-xv ** 2) * 2 + np.abs(xv)),
                                   rtol=1e-12)


def test_none_dim_broadcasts_against_one():
    x = gc.placeholder("float32", (None, 1), name="x")
    y = gc.placeholder("float32", (1, None), name="y")
    t = x + y
    assert t.shape == (None, None)
    out = run(t, {x: np.ones((2, 1), np.float32), y: np.arange(3, dtype=np.float32)[None]})
    np.testing.assert_array_equal(out, np.ones((2, 1)) + np.arange(3)[None])


# -- a property test over random broadcastable shapes ------------------------------------------------------------------
@st.composite
def broadcastable_pair(draw):
    rank = draw(st.integers(0, 3))
    base = [draw(st.integers(0, 3)) for _ in range(rank)]
    def variant():
        r = draw(st.integers(0, rank))
        dims = base[rank - r:]
        return tuple(1 if draw(st.booleans()) else d for d in dims)
    return variant(), variant()


@settings(max_examples=40, deadline=None)
@given(broadcastable_pair(), st.sampled_from(["add", "subtract", "multiply", "minimum", "less"]))
def test_binary_broadcasting_property(pair, name):
    sa, sb = pair
    fn, ref, _, _ = BINARY[name]
    rng = np.random.default_rng(0)
    av, bv = sample(sa, np.float64, rng), sample(sb, np.float64, rng)
    g = gc.Graph()
    with g.as_default():
        t = fn(gc.constant(av), gc.constant(bv))
    want = ref(av, bv)
    assert t.shape == np.shape(want)
    np.testing.assert_allclose(run(t), want)
