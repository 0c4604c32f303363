"""Winograd F(4x4, 3x3) convolutions (runtime/kernels_winograd.py) against the reference interpreter.

Each test checks that the plan really took the Winograd path (the call's name), so a change in the
routing rule cannot turn these into tests of im2col + GEMM.
"""
import numpy as np
import pytest

import graphc as gc
from graphc import runtime
from graphc.interpreter import evaluate
from graphc.ops.registry import apply
from graphc.runtime import kernels_winograd as W



def _fused_conv(rng, h, w, c, o, program):
    """A placeholder x (None, h, w, c) and the fused VALID conv + ``program`` of it with a random
    3x3 filter and, when the program reads input 1, a random bias."""
    x = gc.placeholder("float32", (None, h, w, c), name="x")
    f = gc.constant(rng.standard_normal((3, 3, c, o)).astype(np.float32))
    reads_bias = any(1 in args for _, args, _ in program)
    extra = [gc.constant(rng.standard_normal(o).astype(np.float32))] if reads_bias else []
    c_attrs = (("dilations", (1, 1)), ("padding", "VALID"), ("strides", (1, 1)))
    return x, apply("fused_contraction", [x, f] + extra,
                    {"contraction": "conv2d", "n_c": 2, "c_attrs": c_attrs, "program": program})


def _run(fetches, feeds, dtype):
    g = fetches[0].graph
    fn = [f.node for f in fetches]
    fv = {k.node: v for k, v in feeds.items()}
    exe = runtime.compile(g, fn, list(fv))
    out, _ = exe.run(fv, {}, 0)
    ref = evaluate(g, fn, fv, {}, run_key=0).values
    for a, b in zip(out, ref):
        assert a.shape == b.shape and a.dtype == b.dtype
        # float32: the transforms round to a few 1e-6 of the output's magnitude
        scale = float(np.nanmax(np.abs(b))) if b.size else 1.0
        tol = 1e-12 if a.dtype == np.float64 else 2e-5
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)
    return exe, out, ref


def _names(exe):
    return [s.call.name for s in exe.plan.kernel_calls]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n,h,w,c,o,pad", [
    (3, 13, 13, 32, 64, "VALID"),     # the MNIST CNN's second conv: 11x11 out, 3x3 tiles
    (1, 8, 8, 4, 1, "SAME"),          # fewest channels, one output channel, whole tiles
    (2, 7, 7, 5, 3, "SAME"),          # 7x7: the last tile row and column are partly outside
    (2, 17, 13, 9, 17, "VALID"),      # 15x11: ragged on one axis only, odd channel counts
    (1, 6, 10, 6, 2, "VALID"),        # 4x8 out: a single row of two tiles
])
def test_conv2d_forward(dtype, n, h, w, c, o, pad):
    rng = np.random.default_rng(n * h + c)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (None, h, w, c), name="x")
        y = gc.nn.conv2d(x, gc.constant(rng.standard_normal((3, 3, c, o)).astype(dtype)), padding=pad)
    exe, _, _ = _run([y], {x: rng.standard_normal((n, h, w, c)).astype(dtype)}, dtype)
    assert _names(exe) == ["conv2d[winograd]"]


def test_one_plan_serves_other_batch_sizes_and_strided_inputs():
    rng = np.random.default_rng(1)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 10, 10, 6), name="x")
        y = gc.nn.conv2d(x[:, 1:, :9, :], gc.constant(rng.standard_normal((3, 3, 6, 8)).astype(np.float32)))
    for n in (1, 5, 0, 2):
        exe, _, _ = _run([y], {x: rng.standard_normal((n, 10, 10, 6)).astype(np.float32)}, "float32")
        assert "conv2d[winograd]" in _names(exe)


@pytest.mark.parametrize("program,left", [
    ((("add", (0, 1), ()),), 0),                                    # bias: added by the output transform
    ((("add", (1, 0), ()), ("relu", (2,), ())), 0),                 # bias + relu: both there
    ((("add", (0, 1), ()), ("relu", (2,), ()), ("neg", (3,), ())), 1),   # the rest stays an epilogue
    ((("relu", (0,), ()),), 0),                                     # relu without a bias: there too
])
def test_fused_bias_and_relu(program, left):
    rng = np.random.default_rng(2)
    g = gc.Graph()
    with g.as_default():
        x, y = _fused_conv(rng, 9, 10, 7, 5, program)
    exe, _, _ = _run([y], {x: rng.standard_normal((2, 9, 10, 7)).astype(np.float32)}, "float32")
    call = exe.plan.kernel_calls[0].call
    assert call.name.startswith("conv2d+ew") and call.steps[0][0] is W._filter
    assert len(call.steps) == 4 + left


def test_relu_keeps_nan_and_nan_stays_in_its_tiles():
    # a NaN in the input can make NaN the outputs of the 4x4 tiles whose 6x6 window holds it (more
    # than the direct conv's 3x3 neighbourhood, never fewer); the relu keeps it NaN; the rest is exact
    rng = np.random.default_rng(3)
    g = gc.Graph()
    with g.as_default():
        x, y = _fused_conv(rng, 14, 14, 4, 6, (("add", (0, 1), ()), ("relu", (2,), ())))
    xv = rng.standard_normal((2, 14, 14, 4)).astype(np.float32)
    xv[1, 5, 5, 2] = np.nan     # input row/col 5: in the windows (rows 4t .. 4t+5) of tiles 0 and 1
    exe = runtime.compile(g, [y.node], [x.node])
    got = exe.run({x.node: xv}, {}, 0)[0][0]
    want = evaluate(g, [y.node], {x.node: xv}, {}, run_key=0).values[0]
    assert exe.plan.kernel_calls[0].call.steps[0][0] is W._filter
    nan = np.isnan(got)
    assert nan[np.isnan(want)].all() and not nan[0].any()
    assert nan.sum() > np.isnan(want).sum() and not nan[1, 8:].any() and not nan[1, :, 8:].any()
    np.testing.assert_allclose(got[~nan], want[~nan], rtol=2e-5, atol=2e-5 * np.abs(want[~nan]).max())
    assert (got[~nan] >= 0).all()


def _gradient(op, dtype, n, h, w, c, o, pad):
    """Run ``op`` (conv2d_backprop_input or _filter) of a 3x3 conv of x (n, h, w, c) to o channels,
    fed random x and dy, against the reference; returns the executable and the result."""
    rng = np.random.default_rng(h * w + o)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (None, h, w, c), name="x")
        f = gc.constant(rng.standard_normal((3, 3, c, o)).astype(dtype))
        y = gc.nn.conv2d(x, f, padding=pad)
        dy = gc.placeholder(dtype, (None,) + tuple(y.shape[1:]), name="dy")
        grad = getattr(gc.nn, op)(x, f, dy, padding=pad)
    exe, out, _ = _run([grad], {x: rng.standard_normal((n, h, w, c)).astype(dtype),
                                dy: rng.standard_normal((n,) + tuple(y.shape[1:])).astype(dtype)}, dtype)
    return exe, out[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("h,w,c,o,pad", [
    (12, 12, 3, 5, "SAME"),           # dy 12x12x5, pad 1: whole tiles
    (8, 8, 2, 6, "VALID"),            # dy 6x6x6, pad 2 on every side
    (7, 11, 4, 4, "SAME"),            # ragged dx (8x12 tiles for 7x11)
])
def test_conv2d_backprop_input(dtype, h, w, c, o, pad):
    exe, _ = _gradient("conv2d_backprop_input", dtype, 2, h, w, c, o, pad)
    assert _names(exe) == ["conv2d_backprop_input[winograd]"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n,h,w,c,o,pad", [
    (3, 13, 13, 32, 64, "VALID"),     # the MNIST CNN's second conv: dy 11x11 in 3x3 tiles
    (2, 12, 9, 5, 3, "SAME"),         # ragged on one axis; windows cross the padding
    (1, 10, 14, 4, 1, "VALID"),       # one output channel
    (0, 8, 8, 6, 2, "SAME"),          # an empty batch: zeros
])
def test_conv2d_backprop_filter(dtype, n, h, w, c, o, pad):
    # the sum over tiles of G^T [(A dy A^T) ⊙ (B^T d B)] G
    exe, out = _gradient("conv2d_backprop_filter", dtype, n, h, w, c, o, pad)
    assert _names(exe) == ["conv2d_backprop_filter[winograd]"]
    assert n or not out.any()


def test_routing_rule():
    # 3x3, stride 1, no dilation, >= MIN_CHANNELS input channels, tiles covering <= MAX_COVER
    assert W.applies(3, 3, 1, 1, 1, 1, W.MIN_CHANNELS, "float32", 28, 28)
    assert not W.applies(3, 3, 1, 1, 1, 1, W.MIN_CHANNELS - 1, "float32", 28, 28)
    assert not W.applies(3, 3, 1, 1, 2, 2, 32, "float32", 28, 28)
    assert not W.applies(3, 5, 1, 1, 1, 1, 32, "float32", 28, 28)
    assert not W.applies(3, 3, 1, 1, 1, 1, 32, "int32", 28, 28)
    assert W.applies(3, 3, 1, 1, 1, 1, 32, "float32", 7, 7)          # 8x8 / 49 = 1.31
    assert not W.applies(3, 3, 1, 1, 1, 1, 32, "float32", 13, 13)    # 16x16 / 169 = 1.51


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 16, 37])      # below, at and past one vector; a scalar tail
def test_rows_combination_against_numpy(dtype, n):
    # simd.rows_combination on a matrix with zero, +-1 and other coefficients and a zero row,
    # repeated with strides, reading and writing disjoint stretches of one array
    from numba import njit

    from graphc.runtime.simd import rows_combination
    mat = [[2, 0, -1], [0, 0, 0], [-1, 1, 0.5], [0, -3, 1]]
    comb = rows_combination(mat, "test_rows")

    @njit
    def run(buf, s0, ss, d0, ds, n, reps, rs, rd):
        comb(buf, s0, ss, buf, d0, ds, n, reps, rs, rd)
    rng = np.random.default_rng(n)
    reps, ss, rs = 3, n + 2, 3 * (n + 2)
    d0, ds, rd = reps * rs + 5, n + 1, 4 * (n + 1) + 3
    buf = rng.standard_normal(d0 + reps * rd + 8).astype(dtype)
    want = buf.copy()
    for r in range(reps):
        src = np.stack([buf[r * rs + j * ss:r * rs + j * ss + n] for j in range(3)])
        out = np.asarray(mat, np.float64) @ src
        for a in range(4):
            want[d0 + r * rd + a * ds:d0 + r * rd + a * ds + n] = out[a]
    run(buf, 0, ss, d0, ds, n, reps, rs, rd)
    np.testing.assert_allclose(buf, want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
