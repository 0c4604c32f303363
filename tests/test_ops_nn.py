"""Tests of graphc/ops/nn.py and the gc.nn namespace against independent numpy references."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc
from gradcheck import check_grad


def run(fetches, feed=None, graph=None):
    return gc.Session(graph, optimize=False).run(fetches, feed)


# -- independent references (naive loops, small sizes) ---------------------------------------------
def same_pads(size, k, s, d):
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return out, total // 2


def naive_conv(x, f, strides, padding, dilations=(1, 1)):
    n, h, w, c = x.shape
    kh, kw, ci, co = f.shape
    (sh, sw), (dh, dw) = strides, dilations
    if padding == "SAME":
        oh, ph = same_pads(h, kh, sh, dh)
        ow, pw = same_pads(w, kw, sw, dw)
    else:
        oh, ow, ph, pw = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1, 0, 0
    out = np.zeros((n, oh, ow, co))
    for b, i, j, o in itertools.product(range(n), range(oh), range(ow), range(co)):
        acc = 0.0
        for p, q, ch in itertools.product(range(kh), range(kw), range(c)):
            r, s = i * sh + p * dh - ph, j * sw + q * dw - pw
            if 0 <= r < h and 0 <= s < w:
                acc += x[b, r, s, ch] * f[p, q, ch, o]
        out[b, i, j, o] = acc
    return out


def naive_pool(x, k, strides, padding, kind):
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = k, strides
    if padding == "SAME":
        oh, ph = same_pads(h, kh, sh, 1)
        ow, pw = same_pads(w, kw, sw, 1)
    else:
        oh, ow, ph, pw = (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0
    out = np.zeros((n, oh, ow, c))
    for b, i, j, ch in itertools.product(range(n), range(oh), range(ow), range(c)):
        vals = [x[b, i * sh + p - ph, j * sw + q - pw, ch]
                for p in range(kh) for q in range(kw)
                if 0 <= i * sh + p - ph < h and 0 <= j * sw + q - pw < w]
        out[b, i, j, ch] = max(vals) if kind == "max" else sum(vals) / len(vals)
    return out


def np_log_softmax(x, axis=-1):
    x = x.astype(np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


# -- softmax / log_softmax -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((5,), -1), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1),
                                        ((1, 1), -1), ((0, 3), -1)])
def test_softmax_and_log_softmax_match_numpy(rng, dtype, shape, axis):
    x = (rng.normal(size=shape) * 5).astype(dtype)
    ls = np_log_softmax(x, axis)
    a, b = run([gc.nn.softmax(gc.constant(x), axis=axis), gc.nn.log_softmax(gc.constant(x), axis=axis)])
    assert a.dtype == dtype and b.dtype == dtype and a.shape == shape
    np.testing.assert_allclose(a, np.exp(ls), **tol(dtype))
    np.testing.assert_allclose(b, ls, **tol(dtype))


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1000.0, 1000.0, -1000.0], [-1e30, 0.0, 1e30]], np.float32)
    a, b = run([gc.nn.softmax(x), gc.nn.log_softmax(x)])
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    np.testing.assert_allclose(a[0], [0.5, 0.5, 0.0], atol=1e-7)
    np.testing.assert_allclose(b[0, :2], [-np.log(2)] * 2, rtol=1e-6)


def test_softmax_none_batch_and_shape(rng):
    x = gc.placeholder("float32", (None, 4))
    y = gc.nn.softmax(x)
    assert y.shape == (None, 4) and y.dtype == gc.float32
    for n in (1, 3, 7):
        v = rng.normal(size=(n, 4)).astype(np.float32)
        np.testing.assert_allclose(run(y, {x: v}), np.exp(np_log_softmax(v)), rtol=1e-5)


def test_softmax_errors():
    with pytest.raises(gc.DtypeError, match="float32 or float64"):
        gc.nn.softmax(gc.constant([1, 2]))
    with pytest.raises(gc.ShapeError, match="out of range"):
        gc.nn.softmax(gc.constant([[1.0, 2.0]]), axis=2)
    with pytest.raises(gc.ShapeError, match="rank >= 1"):
        gc.nn.softmax(gc.constant(1.0))


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_gradients(rng, axis):
    x = rng.normal(size=(3, 4))
    check_grad(lambda t: gc.nn.softmax(t[0], axis=axis), [x])
    check_grad(lambda t: gc.nn.log_softmax(t[0], axis=axis), [x])


# -- cross-entropies ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((4, 5), -1), ((2, 3, 4), -1), ((4, 5), 0), ((6,), -1)])
def test_softmax_cross_entropy(rng, dtype, shape, axis):
    logits = (rng.normal(size=shape) * 3).astype(dtype)
    labels = rng.dirichlet(np.ones(shape[axis]), size=int(np.prod(shape)) // shape[axis])
    labels = np.moveaxis(labels.reshape(tuple(np.delete(shape, axis)) + (shape[axis],)), -1, axis)
    labels = labels.astype(dtype)
    y = gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=axis)
    want = -(labels * np_log_softmax(logits, axis)).sum(axis=axis)
    assert y.shape == want.shape
    out = run(y)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, want, **tol(dtype))


def test_softmax_cross_entropy_stable_and_none_batch():
    lg = gc.placeholder("float32", (None, 3))
    lb = gc.placeholder("float32", (None, 3))
    y = gc.nn.softmax_cross_entropy_with_logits(labels=lb, logits=lg)
    assert y.shape == (None,)
    for n in (1, 4):
        logits = np.tile(np.array([[1000.0, 0.0, -1000.0]], np.float32), (n, 1))
        labels = np.tile(np.array([[0.0, 1.0, 0.0]], np.float32), (n, 1))
        np.testing.assert_allclose(run(y, {lg: logits, lb: labels}), [1000.0] * n, rtol=1e-6)


def test_softmax_cross_entropy_gradients(rng):
    logits = rng.normal(size=(3, 4))
    labels = rng.dirichlet(np.ones(4), size=3)
    check_grad(lambda t: gc.nn.softmax_cross_entropy_with_logits(labels=t[0], logits=t[1]),
               [labels, logits])
    # unnormalized labels: the gradient is exact (sum(labels) * softmax - labels)
    check_grad(lambda t: gc.nn.softmax_cross_entropy_with_logits(labels=t[0], logits=t[1], axis=0),
               [rng.uniform(size=(3, 4)), logits])


def test_softmax_cross_entropy_grad_is_softmax_minus_labels():
    logits = gc.constant(np.array([[1.0, 2.0, 3.0]]))
    labels = gc.constant(np.array([[0.0, 0.0, 1.0]]))
    loss = gc.reduce_sum(gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    (g,) = gc.gradients(loss, [logits])
    sm = np.exp(np_log_softmax(np.array([[1.0, 2.0, 3.0]])))
    np.testing.assert_allclose(run(g), sm - [[0, 0, 1]], rtol=1e-12)


def test_softmax_cross_entropy_errors():
    with pytest.raises(gc.ShapeError, match="must equal logits shape"):
        gc.nn.softmax_cross_entropy_with_logits(labels=np.zeros((2, 3), np.float32),
                                                logits=np.zeros((2, 4), np.float32))
    with pytest.raises(gc.DtypeError, match="different dtypes"):
        gc.nn.softmax_cross_entropy_with_logits(labels=gc.constant(np.zeros((2, 3))),
                                                logits=gc.constant(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match="labels= and logits="):
        gc.nn.softmax_cross_entropy_with_logits(logits=[[1.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ldtype", ["int32", "int64"])
def test_sparse_softmax_cross_entropy(rng, dtype, ldtype):
    logits = (rng.normal(size=(2, 3, 5)) * 4).astype(dtype)
    labels = rng.integers(0, 5, size=(2, 3)).astype(ldtype)
    y = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    assert y.shape == (2, 3) and y.dtype == dtype
    ls = np_log_softmax(logits)
    want = np.array([[-ls[i, j, labels[i, j]] for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(run(y), want, **tol(dtype))


def test_sparse_softmax_cross_entropy_none_batch_grad_and_errors(rng):
    lg = gc.placeholder("float64", (None, 4))
    lb = gc.placeholder("int32", (None,))
    y = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lb, logits=lg)
    assert y.shape == (None,)
    v = rng.normal(size=(3, 4))
    np.testing.assert_allclose(run(y, {lg: v, lb: np.array([0, 3, 1], np.int32)}),
                               -np_log_softmax(v)[np.arange(3), [0, 3, 1]], rtol=1e-12)
    with pytest.raises(ValueError, match="out of range for 4 classes"):
        run(y, {lg: v, lb: np.array([0, 4, 1], np.int32)})
    labels = np.array([2, 0, 1])
    check_grad(lambda t: gc.nn.sparse_softmax_cross_entropy_with_logits(
        labels=gc.constant(labels, dtype="int32"), logits=t[0]), [rng.normal(size=(3, 4))])
    with pytest.raises(gc.DtypeError, match="integer class"):
        gc.nn.sparse_softmax_cross_entropy_with_logits(labels=[0.0, 1.0], logits=np.zeros((2, 3)))
    with pytest.raises(gc.ShapeError, match="without its last"):
        gc.nn.sparse_softmax_cross_entropy_with_logits(labels=[0, 1, 2], logits=np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_cross_entropy(rng, dtype):
    x = (rng.normal(size=(4, 3)) * 10).astype(dtype)
    x[0, 0], x[0, 1] = 200.0, -200.0
    z = rng.uniform(size=(4, 3)).astype(dtype)
    y = gc.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x)
    xd, zd = x.astype(np.float64), z.astype(np.float64)
    want = np.logaddexp(0, xd) - xd * zd   # -z log s(x) - (1 - z) log(1 - s(x))
    out = run(y)
    assert out.dtype == dtype and np.all(np.isfinite(out))
    np.testing.assert_allclose(out, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    check_grad(lambda t: gc.nn.sigmoid_cross_entropy_with_logits(labels=t[0], logits=t[1]),
               [rng.uniform(size=(3, 2)), rng.normal(size=(3, 2))])
    check_grad(lambda t: gc.nn.sigmoid_cross_entropy_with_logits(labels=t[0], logits=t[1]),
               [rng.uniform(size=(2,)), rng.normal(size=(3, 2))])   # broadcast labels


def test_l2_loss(rng):
    x = rng.normal(size=(3, 4)).astype(np.float32)
    y = gc.nn.l2_loss(x)
    assert y.shape == () and y.dtype == gc.float32
    np.testing.assert_allclose(run(y), (x.astype(np.float64) ** 2).sum() / 2, rtol=1e-5)
    check_grad(lambda t: gc.nn.l2_loss(t[0]), [rng.normal(size=(2, 3))])
    with pytest.raises(gc.DtypeError, match="not a float"):
        gc.nn.l2_loss(gc.constant([1, 2]))


# -- conv2d ------------------------------------------------------------------------------------------
CONV_CASES = [
    # (x shape, filter shape, strides, padding, dilations)
    ((2, 5, 5, 3), (3, 3, 3, 4), (1, 1), "VALID", (1, 1)),
    ((2, 5, 5, 3), (3, 3, 3, 4), (1, 1), "SAME", (1, 1)),
    ((1, 7, 6, 2), (3, 2, 2, 3), (2, 2), "SAME", (1, 1)),
    ((1, 7, 6, 2), (3, 2, 2, 3), (2, 3), "VALID", (1, 1)),
    ((2, 8, 8, 1), (4, 4, 1, 2), (3, 3), "SAME", (1, 1)),   # even kernel: extra pad at the end
    ((1, 9, 8, 2), (3, 3, 2, 2), (1, 1), "SAME", (2, 2)),
    ((1, 9, 8, 2), (2, 3, 2, 2), (1, 1), "VALID", (3, 2)),
    ((3, 4, 4, 2), (1, 1, 2, 5), (1, 1), "VALID", (1, 1)),
    ((1, 3, 3, 1), (5, 5, 1, 1), (1, 1), "SAME", (1, 1)),   # kernel larger than the input
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,fs,st,pad,dil", CONV_CASES)
def test_conv2d_matches_naive_loop(rng, dtype, xs, fs, st, pad, dil):
    x = rng.normal(size=xs).astype(dtype)
    f = rng.normal(size=fs).astype(dtype)
    y = gc.nn.conv2d(x, f, strides=st, padding=pad, dilations=dil)
    want = naive_conv(x.astype(np.float64), f.astype(np.float64), st, pad, dil)
    assert y.shape == want.shape
    out = run(y)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, want, rtol=1e-4 if dtype == np.float32 else 1e-11,
                               atol=1e-4 if dtype == np.float32 else 1e-11)


def test_conv2d_stride_and_dilation_forms():
    x = np.ones((1, 8, 8, 1), np.float32)
    f = np.ones((3, 3, 1, 1), np.float32)
    a = gc.nn.conv2d(x, f, strides=2, padding="SAME")
    b = gc.nn.conv2d(x, f, strides=(2, 2), padding="same")
    c = gc.nn.conv2d(x, f, strides=[1, 2, 2, 1], padding="SAME")
    d = gc.nn.conv2d(x, f, dilations=[1, 2, 2, 1], padding="VALID")
    assert a.shape == b.shape == c.shape == (1, 4, 4, 1) and d.shape == (1, 4, 4, 1)
    ra, rb, rc = run([a, b, c])
    np.testing.assert_array_equal(ra, rb)
    np.testing.assert_array_equal(ra, rc)
    assert a.op.attrs["strides"] == (2, 2) and a.op.attrs["padding"] == "SAME"


def test_conv2d_nchw(rng):
    x = rng.normal(size=(2, 3, 6, 5)).astype(np.float32)   # NCHW
    f = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    y = gc.nn.conv2d(x, f, strides=[1, 1, 2, 2], padding="SAME", data_format="NCHW")
    assert y.shape == (2, 4, 3, 3)
    want = naive_conv(x.transpose(0, 2, 3, 1).astype(np.float64), f, (2, 2), "SAME")
    np.testing.assert_allclose(run(y), want.transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape,k,s,pad,want", [
    ((None, 28, 28, 1), 5, 1, "SAME", (None, 28, 28, 8)),
    ((None, 28, 28, 1), 5, 1, "VALID", (None, 24, 24, 8)),
    ((None, 28, 28, 1), 5, 2, "SAME", (None, 14, 14, 8)),
    ((None, 28, 28, 1), 5, 2, "VALID", (None, 12, 12, 8)),
    ((None, 7, 7, 1), 3, 3, "SAME", (None, 3, 3, 8)),
    ((4, None, 10, 1), 3, 1, "SAME", (4, None, 10, 8)),
])
def test_conv2d_shape_inference(x_shape, k, s, pad, want):
    x = gc.placeholder("float32", x_shape)
    f = gc.placeholder("float32", (k, k, 1, 8))
    assert gc.nn.conv2d(x, f, strides=s, padding=pad).shape == want
    from graphc.ops.registry import get_op
    spec = get_op("conv2d").infer([x.spec, f.spec], {"strides": (s, s), "padding": pad,
                                                      "dilations": (1, 1)})
    assert spec.shape == want and spec.dtype == gc.float32


def test_conv2d_none_batch_different_sizes(rng):
    x = gc.placeholder("float64", (None, 6, 5, 2))
    f = rng.normal(size=(3, 3, 2, 3))
    y = gc.nn.conv2d(x, f, strides=2, padding="SAME")
    assert y.shape == (None, 3, 3, 3)
    sess = gc.Session(optimize=False)
    for n in (1, 4, 2):
        v = rng.normal(size=(n, 6, 5, 2))
        np.testing.assert_allclose(sess.run(y, {x: v}), naive_conv(v, f, (2, 2), "SAME"), rtol=1e-10)


def test_conv2d_unknown_spatial_dims(rng):
    x = gc.placeholder("float64", (None, None, None, 2))
    f = rng.normal(size=(3, 3, 2, 1))
    y = gc.nn.conv2d(x, f, padding="SAME")
    assert y.shape == (None, None, None, 1)
    v = rng.normal(size=(1, 5, 4, 2))
    np.testing.assert_allclose(run(y, {x: v}), naive_conv(v, f, (1, 1), "SAME"), rtol=1e-10)
    (gx,) = gc.gradients(gc.reduce_sum(y), [x])
    assert run(gx, {x: v}).shape == v.shape


def test_conv_and_pool_empty_batch(rng):
    x = gc.placeholder("float64", (None, 6, 6, 2))
    f = gc.constant(rng.normal(size=(3, 3, 2, 4)))
    ys = [gc.nn.conv2d(x, f, strides=2, padding="SAME"), gc.nn.max_pool2d(x, 3, 2, "SAME"),
          gc.nn.avg_pool2d(x, 3, 2, "SAME")]
    grads = gc.gradients(gc.reduce_sum(ys[0]) + gc.reduce_sum(ys[1]) + gc.reduce_sum(ys[2]),
                         [x, f])
    out = run(ys + grads, {x: np.zeros((0, 6, 6, 2))})
    assert [o.shape for o in out] == [(0, 3, 3, 4), (0, 3, 3, 2), (0, 3, 3, 2), (0, 6, 6, 2),
                                      (3, 3, 2, 4)]
    np.testing.assert_array_equal(out[4], 0)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), kh=st.integers(1, 4), kw=st.integers(1, 4),
       s=st.integers(1, 3), d=st.integers(1, 2), same=st.booleans(), seed=st.integers(0, 99))
def test_conv2d_property_against_naive_loop(h, w, kh, kw, s, d, same, seed):
    if s > 1 and d > 1:
        d = 1
    pad = "SAME" if same else "VALID"
    if not same and (h < (kh - 1) * d + 1 or w < (kw - 1) * d + 1):
        return
    r = np.random.default_rng(seed)
    x, f = r.normal(size=(2, h, w, 2)), r.normal(size=(kh, kw, 2, 3))
    y = gc.nn.conv2d(x, f, strides=s, padding=pad, dilations=d)
    want = naive_conv(x, f, (s, s), pad, (d, d))
    assert y.shape == want.shape
    np.testing.assert_allclose(run(y), want, rtol=1e-10, atol=1e-12)
    # the backprop ops are the adjoints of conv2d
    dy = r.normal(size=want.shape)
    gi, gf = run([gc.nn.conv2d_backprop_input(x, f, dy, s, pad, d),
                  gc.nn.conv2d_backprop_filter(x, f, dy, s, pad, d)])
    np.testing.assert_allclose((gi * x).sum(), (want * dy).sum(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose((gf * f).sum(), (want * dy).sum(), rtol=1e-9, atol=1e-9)


def test_conv2d_errors():
    x = gc.placeholder("float32", (None, 8, 8, 3), name="img")
    with pytest.raises(gc.ShapeError, match=r"input has 3 channels but filters expect 1 \(filters are "
                                            r"HWIO: \(kh, kw, in_channels, out_channels\)\)") as e:
        gc.nn.conv2d(x, np.zeros((3, 3, 1, 4), np.float32), name="c1")
    assert "conv2d 'c1'" in str(e.value)
    with pytest.raises(gc.ShapeError, match="rank 4"):
        gc.nn.conv2d(gc.placeholder("float32", (8, 8, 3)), np.zeros((3, 3, 3, 4), np.float32))
    with pytest.raises(gc.ShapeError, match="HWIO"):
        gc.nn.conv2d(x, np.zeros((3, 3, 3), np.float32))
    with pytest.raises(gc.ShapeError, match="smaller than the window"):
        gc.nn.conv2d(x, np.zeros((9, 9, 3, 4), np.float32), padding="VALID")
    with pytest.raises(ValueError, match="'SAME' or 'VALID'"):
        gc.nn.conv2d(x, np.zeros((3, 3, 3, 4), np.float32), padding="FULL")
    with pytest.raises(gc.ShapeError, match="strides"):
        gc.nn.conv2d(x, np.zeros((3, 3, 3, 4), np.float32), strides=(2, 2, 2))
    with pytest.raises(gc.ShapeError, match="batch and channel entries must be 1"):
        gc.nn.conv2d(x, np.zeros((3, 3, 3, 4), np.float32), strides=(2, 2, 2, 2))
    with pytest.raises(gc.DtypeError, match="different dtypes"):
        gc.nn.conv2d(x, gc.constant(np.zeros((3, 3, 3, 4))))
    with pytest.raises(gc.DtypeError, match="float32 or float64"):
        gc.nn.conv2d(gc.placeholder("int32", (1, 4, 4, 1)), gc.constant(np.zeros((1, 1, 1, 1), np.int32)))
    with pytest.raises(ValueError, match="cannot both be > 1"):
        gc.nn.conv2d(x, np.zeros((3, 3, 3, 4), np.float32), strides=2, dilations=2)


@pytest.mark.parametrize("xs,fs,st,pad,dil", [CONV_CASES[0], CONV_CASES[2], CONV_CASES[4],
                                              CONV_CASES[5], CONV_CASES[8],
                                              ((1, 6, 5, 2), (3, 3, 2, 2), (2, 2), "VALID", (1, 1))])
def test_conv2d_gradients(rng, xs, fs, st, pad, dil):
    xs = (1,) + xs[1:]
    check_grad(lambda t: gc.nn.conv2d(t[0], t[1], strides=st, padding=pad, dilations=dil),
               [rng.normal(size=xs), rng.normal(size=fs)])


def test_conv2d_backprop_ops_direct(rng):
    x = rng.normal(size=(2, 7, 6, 2))
    f = rng.normal(size=(3, 2, 2, 3))
    kw = dict(strides=2, padding="SAME")
    dy = rng.normal(size=naive_conv(x, f, (2, 2), "SAME").shape)
    gi = gc.nn.conv2d_backprop_input(gc.placeholder("float64", (None, 7, 6, 2)), f, dy, **kw)
    assert gi.shape == (None, 7, 6, 2)
    gf = gc.nn.conv2d_backprop_filter(x, gc.placeholder("float64", (3, 2, 2, 3)), dy, **kw)
    assert gf.shape == (3, 2, 2, 3)
    # adjoint identities: <conv(x, f), dy> = <x, B_in(f, dy)> = <f, B_f(x, dy)>
    lhs = (naive_conv(x, f, (2, 2), "SAME") * dy).sum()
    gin = run(gi, {gi.op.inputs[0]: x})
    gfl = run(gf, {gf.op.inputs[1]: f})
    np.testing.assert_allclose((x * gin).sum(), lhs, rtol=1e-10)
    np.testing.assert_allclose((f * gfl).sum(), lhs, rtol=1e-10)
    with pytest.raises(gc.ShapeError, match="out_backprop shape"):
        gc.nn.conv2d_backprop_input(x, f, np.zeros((2, 3, 3, 3)), strides=1, padding="SAME")


@pytest.mark.parametrize("st,pad,dil", [((1, 1), "VALID", (1, 1)), ((2, 2), "SAME", (1, 1)),
                                        ((1, 1), "SAME", (2, 1))])
def test_conv2d_backprop_gradients(rng, st, pad, dil):
    """Second order: the backprop ops are differentiable in their data inputs."""
    x = rng.normal(size=(1, 5, 5, 2))
    f = rng.normal(size=(3, 2, 2, 2))
    dy = rng.normal(size=naive_conv(x, f, st, pad, dil).shape)
    kw = dict(strides=st, padding=pad, dilations=dil)
    check_grad(lambda t: gc.nn.conv2d_backprop_input(gc.constant(x), t[0], t[1], **kw), [f, dy])
    check_grad(lambda t: gc.nn.conv2d_backprop_filter(t[0], gc.constant(f), t[1], **kw), [x, dy])


def test_conv2d_second_order_through_gradients(rng):
    x = rng.normal(size=(1, 4, 4, 1))
    f = rng.normal(size=(2, 2, 1, 2))

    def fn(t):
        y = gc.nn.conv2d(t[0], t[1], padding="SAME")
        (gx,) = gc.gradients(gc.reduce_sum(y * y), [t[0]])
        return gx
    check_grad(fn, [x, f], atol=1e-4)


# -- pooling -----------------------------------------------------------------------------------------
POOL_CASES = [
    ((2, 4, 4, 3), (2, 2), None, "VALID"),
    ((1, 5, 5, 2), (2, 2), None, "SAME"),
    ((1, 5, 7, 2), (3, 3), (2, 2), "SAME"),
    ((2, 6, 5, 1), (3, 2), (1, 2), "VALID"),
    ((1, 3, 3, 1), (3, 3), (1, 1), "SAME"),
    ((1, 4, 4, 1), (1, 1), (2, 2), "VALID"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,k,st,pad", POOL_CASES)
def test_pooling_matches_naive_loop(rng, dtype, xs, k, st, pad):
    x = rng.normal(size=xs).astype(dtype)
    s = st or k
    mp = gc.nn.max_pool2d(x, k, st, pad)
    ap = gc.nn.avg_pool2d(x, k, st, pad)
    wm = naive_pool(x.astype(np.float64), k, s, pad, "max")
    wa = naive_pool(x.astype(np.float64), k, s, pad, "avg")
    assert mp.shape == wm.shape and ap.shape == wa.shape
    om, oa = run([mp, ap])
    assert om.dtype == dtype and oa.dtype == dtype
    np.testing.assert_allclose(om, wm, **tol(dtype))
    np.testing.assert_allclose(oa, wa, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_pooling_aliases_forms_and_none_batch(rng):
    x = gc.placeholder("float32", (None, 6, 6, 2))
    a = gc.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
    b = gc.nn.avg_pool(x, 3, 2, "SAME")
    assert a.shape == (None, 3, 3, 2) and b.shape == (None, 3, 3, 2)
    sess = gc.Session(optimize=False)
    for n in (1, 3):
        v = rng.normal(size=(n, 6, 6, 2)).astype(np.float32)
        ra, rb = sess.run([a, b], {x: v})
        np.testing.assert_allclose(ra, naive_pool(v, (2, 2), (2, 2), "SAME", "max"), rtol=1e-6)
        np.testing.assert_allclose(rb, naive_pool(v, (3, 3), (2, 2), "SAME", "avg"), rtol=1e-5)


def test_avg_pool_same_divides_by_valid_count():
    x = np.ones((1, 3, 3, 1), np.float32)
    np.testing.assert_array_equal(run(gc.nn.avg_pool2d(x, 3, 1, "SAME")), np.ones((1, 3, 3, 1)))


def test_pool_nchw(rng):
    x = rng.normal(size=(1, 2, 4, 6)).astype(np.float32)
    y = gc.nn.max_pool2d(x, [1, 1, 2, 2], [1, 1, 2, 2], "VALID", data_format="NCHW")
    assert y.shape == (1, 2, 2, 3)
    want = naive_pool(x.transpose(0, 2, 3, 1), (2, 2), (2, 2), "VALID", "max").transpose(0, 3, 1, 2)
    np.testing.assert_allclose(run(y), want)


def test_pool_errors():
    x = gc.placeholder("float32", (None, 4, 4, 1))
    with pytest.raises(gc.ShapeError, match="rank 4"):
        gc.nn.max_pool2d(gc.placeholder("float32", (4, 4)), 2)
    with pytest.raises(gc.ShapeError, match="smaller than the window"):
        gc.nn.avg_pool2d(x, 5, padding="VALID")
    with pytest.raises(gc.ShapeError, match="ksize"):
        gc.nn.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="'SAME' or 'VALID'"):
        gc.nn.max_pool2d(x, 2, padding="valid2")
    with pytest.raises(gc.DtypeError, match="float32 or float64"):
        gc.nn.max_pool2d(gc.placeholder("int32", (1, 4, 4, 1)), 2)


def _distinct(rng, shape):
    """Values with well-separated entries so max pooling has no near-ties."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + rng.uniform(0, 0.01, size=shape)


@pytest.mark.parametrize("xs,k,st,pad", POOL_CASES[1:5])
def test_pooling_gradients(rng, xs, k, st, pad):
    xs = (1,) + xs[1:]
    check_grad(lambda t: gc.nn.max_pool2d(t[0], k, st, pad), [_distinct(rng, xs)])
    check_grad(lambda t: gc.nn.avg_pool2d(t[0], k, st, pad), [rng.normal(size=xs)])


def test_pool_grad_ops_and_second_order(rng):
    x = _distinct(rng, (1, 5, 5, 2))
    for op in ("max_pool2d", "avg_pool2d"):
        pool = getattr(gc.nn, op)
        y = pool(gc.constant(x), 2, 2, "SAME")
        dy = rng.normal(size=y.shape)
        (g,) = gc.gradients(gc.reduce_sum(y * gc.constant(dy)), [y.op.inputs[0]])
        assert g.op.type == op + "_grad"
        # second order: the grad op is differentiable in dy
        check_grad(lambda t, op=op: gc.ops.apply(op + "_grad", [gc.constant(x), t[0]],
                                                 dict(y.op.attrs)), [dy])
    y = gc.nn.max_pool2d(gc.constant(x), 2, 2, "SAME")
    check_grad(lambda t: gc.ops.apply("max_pool2d_grad_grad", [gc.constant(x), t[0]],
                                      dict(y.op.attrs)), [rng.normal(size=x.shape)])


def test_max_pool_grad_routes_to_the_max(rng):
    x = np.array([[1.0, 5.0], [3.0, 2.0]]).reshape(1, 2, 2, 1)
    xt = gc.constant(x)
    (g,) = gc.gradients(gc.reduce_sum(gc.nn.max_pool2d(xt, 2) * 7.0), [xt])
    np.testing.assert_array_equal(run(g).ravel(), [0, 7, 0, 0])


# -- bias_add, dropout -----------------------------------------------------------------------------------
def test_bias_add(rng):
    x = gc.placeholder("float32", (None, 3, 3, 4))
    b = rng.normal(size=4).astype(np.float32)
    y = gc.nn.bias_add(x, b)
    assert y.shape == (None, 3, 3, 4)
    v = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run(y, {x: v}), v + b)
    with pytest.raises(gc.ShapeError, match="bias has 5 elements but value has 4 channels"):
        gc.nn.bias_add(x, np.zeros(5, np.float32))
    with pytest.raises(gc.ShapeError, match="rank 1"):
        gc.nn.bias_add(x, np.zeros((1, 4), np.float32))
    check_grad(lambda t: gc.nn.bias_add(t[0], t[1]), [rng.normal(size=(2, 3)), rng.normal(size=3)])
    nchw = gc.nn.bias_add(gc.constant(np.zeros((1, 2, 2, 2), np.float32)), [1.0, 2.0],
                          data_format="NCHW")
    np.testing.assert_array_equal(run(nchw)[0, :, 0, 0], [1.0, 2.0])


def test_dropout_basic_properties():
    x = gc.placeholder("float32", (None, 1000))
    y = gc.nn.dropout(x, rate=0.25, seed=5)
    assert y.shape == (None, 1000) and y.dtype == gc.float32
    v = np.ones((20, 1000), np.float32)
    sess = gc.Session(optimize=False)
    a, b = sess.run(y, {x: v}), sess.run(y, {x: v[:7]})
    assert a.shape == (20, 1000) and b.shape == (7, 1000)
    assert set(np.unique(a).tolist()) <= {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.02
    assert abs(a.mean() - 1.0) < 0.03   # keeps the expectation
    assert not np.array_equal(a[:7], sess.run(y, {x: v[:7]}))   # new mask every run


def test_dropout_identity_cases_and_errors():
    x = gc.placeholder("float32", (None, 3))
    assert gc.nn.dropout(x, rate=0.0) is x
    assert gc.nn.dropout(x, rate=0.5, training=False) is x
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        gc.nn.dropout(x, rate=1.0)
    with pytest.raises(gc.DtypeError, match="float"):
        gc.nn.dropout(gc.constant([1, 2]), rate=0.5)
    with pytest.raises(gc.ShapeError, match="not broadcastable"):
        gc.nn.dropout(x, rate=0.5, noise_shape=(None, 2))


def test_dropout_noise_shape_and_keep_prob_tensor():
    x = gc.placeholder("float64", (None, 50, 4))
    y = gc.nn.dropout(x, rate=0.5, noise_shape=(None, 1, 4), seed=1)
    out = run(y, {x: np.ones((6, 50, 4))})
    assert out.shape == (6, 50, 4)
    assert np.all(out == out[:, :1, :])   # one draw shared along the size-1 dimension
    kp = gc.placeholder("float32", ())
    z = gc.nn.dropout(x, keep_prob=kp, seed=2)
    r = run(z, {x: np.ones((10, 50, 4)), kp: np.float32(0.8)})
    assert abs((r == 0).mean() - 0.2) < 0.04
    np.testing.assert_allclose(np.unique(r[r != 0]), [1 / np.float32(0.8)], rtol=1e-6)
    np.testing.assert_array_equal(run(z, {x: np.ones((2, 50, 4)), kp: np.float32(1.0)}),
                                  np.ones((2, 50, 4)))


def test_dropout_gradient_is_the_mask():
    x = gc.placeholder("float64", (None, 200))
    y = gc.nn.dropout(x, rate=0.4, seed=3)
    (g,) = gc.gradients(gc.reduce_sum(y), [x])
    out, grad = run([y, g], {x: np.ones((3, 200))})
    np.testing.assert_allclose(grad, out)   # with x = 1 the output is the scaled mask


# -- the fused LSTM cell ---------------------------------------------------------------------------------
def np_lstm_cell(z, c):
    u = z.shape[1] // 4
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))                          # noqa: E731
    i, f, g, o = sig(z[:, :u]), sig(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), sig(z[:, 3 * u:])
    c_new = i * g + (0.0 if c is None else f * c)
    return np.concatenate([o * np.tanh(c_new), c_new], axis=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_cell_against_numpy(dtype):
    rng = np.random.default_rng(5)
    zv, cv = (rng.standard_normal((3, 20)) * 3).astype(dtype), rng.standard_normal((3, 5)).astype(dtype)
    z, c = gc.placeholder(dtype, (None, 20)), gc.placeholder(dtype, (None, 5))
    hc, h1 = gc.nn.lstm_cell(z, c), gc.nn.lstm_cell(z)
    assert hc.shape == (None, 10) and hc.dtype == np.dtype(dtype)
    got = run([hc, h1], {z: zv, c: cv})
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got[0], np_lstm_cell(zv, cv), rtol=tol, atol=tol)
    np.testing.assert_allclose(got[1], np_lstm_cell(zv, None), rtol=tol, atol=tol)
    assert got[0].dtype == np.dtype(dtype)


def test_lstm_cell_errors():
    z = gc.placeholder("float32", (None, 12))
    with pytest.raises(gc.ShapeError, match=r"lstm_cell: z must be \(batch, 4 \* units\).*\(None, 10\)"):
        gc.nn.lstm_cell(gc.placeholder("float32", (None, 10)))
    with pytest.raises(gc.ShapeError, match=r"the cell state c must be \(batch, 3\).*got \(None, 4\)"):
        gc.nn.lstm_cell(z, gc.placeholder("float32", (None, 4)))
    with pytest.raises(gc.DtypeError, match="c is float64 but z is float32"):
        gc.nn.lstm_cell(z, gc.placeholder("float64", (None, 3)))
    with pytest.raises(gc.DtypeError, match="z must be a float tensor, got int32"):
        gc.nn.lstm_cell(gc.placeholder("int32", (None, 12)))


# -- the gc.nn namespace -----------------------------------------------------------------------------
def test_nn_namespace():
    for name in ["relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "leaky_relu", "elu",
                 "softplus", "conv2d", "max_pool2d", "avg_pool2d", "dropout", "bias_add",
                 "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits",
                 "sigmoid_cross_entropy_with_logits", "l2_loss", "max_pool", "avg_pool", "lstm_cell"]:
        assert callable(getattr(gc.nn, name)), name
    assert gc.nn.relu is gc.relu
    np.testing.assert_array_equal(run(gc.nn.relu(gc.constant([-1.0, 2.0]))), [0.0, 2.0])


def test_op_records():
    from graphc.ops.registry import get_op
    assert get_op("conv2d").fusion == "contraction"
    assert get_op("softmax").fusion == "reduction" and get_op("log_softmax").fusion == "reduction"
    for op in ("conv2d_backprop_input", "conv2d_backprop_filter", "max_pool2d_grad",
               "avg_pool2d_grad"):
        assert get_op(op).reference is not None and get_op(op).grad is not None
