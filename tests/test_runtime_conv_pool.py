"""Convolution and pooling kernels against the reference interpreter: im2col + GEMM, the direct
single-channel kernels (and their batch split over threads), fused epilogues, pooling and its
gradients. Winograd's convolutions have their own file (test_runtime_winograd.py)."""
import numpy as np
import pytest

import graphc as gc
from graphc import runtime
from graphc.ops.registry import apply, get_op
from kernel_checks import RNG, data, run_both, split_into


@pytest.mark.parametrize("stride,padding,dil", [(1, "VALID", 1), (2, "SAME", 1), (1, "SAME", 2)])
def test_conv2d_forward_backward_and_fused(stride, padding, dil):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 7, 6, 3), name="x")
        f = gc.constant(data((3, 2, 3, 4)))
        b = gc.constant(data((4,)))
        y = gc.nn.conv2d(x, f, strides=stride, padding=padding, dilations=dil)
        gi = gc.nn.conv2d_backprop_input(x, f, y, strides=stride, padding=padding, dilations=dil)
        gf = gc.nn.conv2d_backprop_filter(x, f, y, strides=stride, padding=padding, dilations=dil)
        fc = apply("fused_contraction", [x, f, b],
                   {"contraction": "conv2d", "n_c": 2,
                    "c_attrs": tuple(sorted(y.op.attrs.items())),
                    "program": (("add", (0, 1), ()), ("relu", (2,), ()))})
        one = gc.nn.conv2d(x, gc.constant(data((1, 1, 3, 2))))
    run_both([y, gi, gf, fc, one], {x: data((2, 7, 6, 3))}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape,fshape,stride,padding,dil", [
    ((3, 9, 8, 1), (3, 3, 1, 5), 1, "VALID", 1),
    ((2, 9, 8, 1), (3, 2, 1, 4), 2, "SAME", 1),        # stride, borders
    ((2, 7, 9, 1), (3, 3, 1, 3), 1, "SAME", 2),         # dilation
    ((2, 7, 9, 1), (3, 3, 1, 3), (1, 3), "SAME", 1),    # uneven strides
    ((1, 2, 3, 1), (5, 5, 1, 2), 1, "SAME", 1),         # kernel larger than the image
    ((2, 5, 5, 1), (1, 1, 1, 3), 3, "VALID", 1),        # one tap
    ((2, 12, 11, 1), (3, 3, 1, 32), 2, "SAME", 1),     # vector blocks only
    ((2, 12, 11, 1), (3, 3, 1, 27), 1, "SAME", 1),     # full, half-register blocks and a tail
    ((2, 9, 8, 1), (3, 3, 1, 8), 1, "VALID", 1),       # a half-register block
])
def test_conv2d_filter_gradient_single_channel(monkeypatch, configure, threads, shape, fshape, stride, padding,
                                               dil):
    # single-channel inputs: 9 taps run the direct kernel (sums in registers, simd.py), other
    # filters the tap-major im2col (im2col_taps) + one GEMM
    split_into(monkeypatch, configure, threads)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None,) + shape[1:], name="x")
        f = gc.constant(data(fshape))
        y = gc.nn.conv2d(x, f, strides=stride, padding=padding, dilations=dil)
        gf = gc.nn.conv2d_backprop_filter(x, f, y * 1.5, strides=stride, padding=padding, dilations=dil)
    exe, _, _ = run_both([gf], {x: data(shape)}, rtol=1e-4, atol=1e-4)
    call = [st.call for st in exe.plan.kernel_calls if st.op == "conv2d_backprop_filter"][0]
    taps = fshape[0] * fshape[1]
    assert call.name == ("conv2d_backprop_filter[direct]" if taps == 9 else
                         "conv2d_backprop_filter[im2col_taps+gemm]")


@pytest.mark.parametrize("o", [4, 11])
def test_conv2d_filter_gradient_9_taps_float64(o):
    # float64: half as many lanes per register (4 or 8), the same blocks and tail
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float64", (None, 8, 9, 1), name="x")
        f = gc.constant(data((3, 3, 1, o), "float64"))
        y = gc.nn.conv2d(x, f, padding="SAME")
        gf = gc.nn.conv2d_backprop_filter(x, f, y - 0.25, padding="SAME")
    exe, _, _ = run_both([gf], {x: data((3, 8, 9, 1), "float64")}, rtol=1e-10, atol=1e-10)
    assert [st.call.name for st in exe.plan.kernel_calls if st.op == "conv2d_backprop_filter"] == \
        ["conv2d_backprop_filter[direct]"]


@pytest.mark.parametrize("threads", [1, 3])
def test_conv2d_direct_batch_split(monkeypatch, configure, threads):
    # single-channel conv2d runs the direct kernel, its batch cut into chunks that THREADS threads
    # share (11 images: uneven chunks) in a plan without GEMMs; THREADS=1 stays serial
    split_into(monkeypatch, configure, threads)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 9, 8, 1), name="x")
        y = gc.nn.conv2d(x, gc.constant(data((3, 3, 1, 5))), padding="SAME")
        fc = apply("fused_contraction", [x, gc.constant(data((3, 3, 1, 4))), gc.constant(data((4,)))],
                   {"contraction": "conv2d", "n_c": 2,
                    "c_attrs": (("dilations", (1, 1)), ("padding", "VALID"), ("strides", (2, 1))),
                    "program": (("add", (0, 1), ()), ("relu", (2,), ()))})
    run_both([y, fc], {x: data((11, 9, 8, 1))}, rtol=1e-4, atol=1e-4)
    exe = runtime.compile(g, [y.node], [x.node])
    exe.run({x.node: data((11, 9, 8, 1))}, {}, 0)
    assert exe.plan.kernel_calls[0].call.name == "conv2d[direct]"
    split = exe.plan.kernel_calls[0].call.steps[0][0].__name__.endswith("_batch_split")
    assert split == (threads > 1)


def test_no_batch_split_in_a_plan_with_gemms(monkeypatch, configure):
    # OpenBLAS's workers spin after a threaded GEMM, so a plan that runs GEMMs keeps its
    # batch-split kernels on one thread (lower._serial_beside_blas); the results are the same
    split_into(monkeypatch, configure, 2)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 9, 8, 1), name="x")
        y = gc.nn.conv2d(x, gc.constant(data((3, 3, 1, 5))), padding="SAME")
        z = gc.matmul(gc.reshape(y, (-1, 9 * 8 * 5)), gc.constant(data((9 * 8 * 5, 3))))
    xv = data((11, 9, 8, 1))

    def conv_fn(fetch):
        exe, _, _ = run_both([fetch], {x: xv}, rtol=1e-4, atol=1e-4)
        step = [st for st in exe.plan.kernel_calls if st.op == "conv2d"][0]
        return step.call.steps[0][0].__name__
    assert conv_fn(y).endswith("_batch_split")
    assert not conv_fn(z).endswith("_batch_split")


def test_direct_conv_adds_the_epilogue_bias():
    # a fused single-channel conv whose epilogue starts with a per-channel bias add has the direct
    # kernel add it, and a relu that is all that follows apply it: the epilogue keeps only the rest
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 8, 7, 1), name="x")
        f = gc.constant(data((3, 3, 1, 5)))
        c_attrs = (("dilations", (1, 1)), ("padding", "SAME"), ("strides", (1, 1)))

        def fc(extra, program):
            return apply("fused_contraction", [x, f] + extra,
                         {"contraction": "conv2d", "n_c": 2, "c_attrs": c_attrs, "program": program})
        b, b4, full = gc.constant(data((5,))), gc.constant(data((1, 1, 1, 5))), gc.constant(data((8, 7, 5)))
        cases = [  # (fused node, the conv kernel adds the bias, epilogue steps left)
            (fc([b], (("add", (0, 1), ()),)), True, 0),
            (fc([b], (("add", (1, 0), ()), ("relu", (2,), ()))), True, 0),   # relu too: nothing left
            (fc([], (("relu", (0,), ()),)), False, 0),                       # relu without a bias
            (fc([b], (("add", (0, 1), ()), ("relu", (2,), ()), ("neg", (3,), ()))), True, 1),
            (fc([b4, b], (("add", (0, 1), ()), ("mul", (3, 2), ()), ("sub", (4, 2), ()))), True, 1),
            (fc([b], (("add", (0, 1), ()), ("mul", (2, 0), ()))), False, 1),   # reads the raw conv
            (fc([full], (("add", (0, 1), ()),)), False, 1),                   # not a per-channel row
        ]
    exe, _, _ = run_both([c[0] for c in cases], {x: data((3, 8, 7, 1))}, rtol=1e-4, atol=1e-4)
    calls = {st.node: st.call for st in exe.plan.kernel_calls}
    from graphc.runtime.kernels import In
    got = [(isinstance(calls[node.node].steps[0][1][3], In), len(calls[node.node].steps) - 1)
           for node, _, _ in cases]
    assert got == [(peeled, rest) for _, peeled, rest in cases]


@pytest.mark.parametrize("shape,fshape,stride,padding,dil", [
    ((3, 10, 9, 1), (3, 3, 1, 32), 1, "VALID", 1),     # one group of 9 taps: the hoisted interior run
    ((2, 12, 11, 1), (3, 3, 1, 19), 2, "SAME", 1),     # 19 channels: vector blocks and a scalar tail
    ((3, 10, 9, 1), (3, 3, 1, 7), 1, "SAME", 1),       # border pixels gather through crow
    ((2, 11, 12, 3), (5, 5, 3, 17), 2, "SAME", 1),     # 75 taps: 9 groups, the last zero-padded
    ((2, 9, 8, 2), (3, 2, 2, 5), 1, "SAME", 2),        # dilation, 12 taps
    ((2, 4, 4, 1), (3, 3, 1, 3), 3, "SAME", 1),        # stride larger than the interior
    ((1, 2, 2, 1), (3, 3, 1, 4), 1, "SAME", 1),        # every pixel on the border
    ((2, 5, 5, 1), (1, 1, 1, 3), 1, "VALID", 1),       # one tap
])
def test_conv2d_direct_kernel_geometries(shape, fshape, stride, padding, dil):
    # the direct kernel called on its own (with a bias row, as the fused conv + bias epilogue runs
    # it), against the conv2d op's numpy reference
    from graphc.runtime.kernels_linalg import _conv_geom
    from graphc.runtime.kernels_nn import fam
    x, f, bias = data(shape), data(fshape), data(fshape[3:])
    attrs = {"strides": (stride, stride), "padding": padding, "dilations": (dil, dil)}
    want = get_op("conv2d").reference([x, f], attrs) + bias
    oh, ow, geom = _conv_geom(shape, fshape, attrs)
    for dt in (np.float32, np.float64):       # 8 and 4 lanes in simd.conv_taps9_rows
        x, f, bias = x.astype(dt), f.astype(dt), bias.astype(dt)
        for b, add, relu in ((bias, bias, 0), (None, 0.0, 0), (bias, bias, 1)):   # None: a plain conv
            out = np.full((shape[0] * oh * ow, fshape[3]), np.nan, dt)
            fam.get("conv2d_direct")(x, x.reshape(shape[0], -1), f.reshape(-1, fshape[3]), b, out, relu,
                                     *geom)
            expect = want - bias + add
            np.testing.assert_allclose(out.reshape(want.shape), np.maximum(expect, 0) if relu else expect,
                                       rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("o", [32, 27, 19, 8])
def test_conv2d_direct_relu_keeps_nan(o):
    # the relu the direct kernel applies (in simd.conv_taps9_rows for whole and half-register
    # blocks of channels, in numba for the rest) is the reference's: NaN stays NaN, negatives 0
    from graphc.runtime.kernels_linalg import _conv_geom
    from graphc.runtime.kernels_nn import fam
    x, f, bias = data((2, 9, 10, 1)), data((3, 3, 1, o)), data((o,))
    x[1, 4, 5, 0] = np.nan
    attrs = {"strides": (1, 1), "padding": "SAME", "dilations": (1, 1)}
    want = get_op("conv2d").reference([x, f], attrs) + bias
    oh, ow, geom = _conv_geom(x.shape, f.shape, attrs)
    out = np.zeros((2 * oh * ow, o), np.float32)
    fam.get("conv2d_direct")(x, x.reshape(2, -1), f.reshape(-1, o), bias, out, 1, *geom)
    got = out.reshape(want.shape)
    assert np.isnan(got[1, 3:6, 4:7]).all() and np.isnan(got).sum() == 9 * o
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, np.where(want < 0, 0, want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,s,padding", [(2, 2, "VALID"), (3, 2, "SAME"), (1, 1, "VALID")])
def test_pooling_and_gradients(k, s, padding):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 5, 7, 2), name="x")
        mp = gc.nn.max_pool2d(x, k, s, padding)
        ap = gc.nn.avg_pool2d(x, k, s, padding)
        attrs = dict(mp.op.attrs)
        mg = apply("max_pool2d_grad", [x, mp], attrs)
        ag = apply("avg_pool2d_grad", [x, ap], dict(ap.op.attrs))
    run_both([mp, ap, mg, ag], {x: data((3, 5, 7, 2))})


@pytest.mark.parametrize("k,s,padding", [(2, 2, "VALID"), (3, 1, "SAME")])
def test_max_pool_ties_and_nan_follow_the_reference(k, s, padding):
    # ties send the gradient to the first maximum in window order, a NaN is the maximum (np.max /
    # np.argmax semantics); 33 channels: more than one vector width plus a remainder
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 6, 5, 33), name="x")
        mp = gc.nn.max_pool2d(x, k, s, padding)
        mg = apply("max_pool2d_grad", [x, mp], dict(mp.op.attrs))
    xv = RNG.integers(-2, 3, (2, 6, 5, 33)).astype(np.float32)    # many ties
    xv[0, 1, 1, 3] = np.nan
    xv[1, 4, 2, 30] = np.nan
    run_both([mp, mg], {x: xv})


@pytest.mark.parametrize("hw,k,s,padding", [((6, 4), 2, 2, "VALID"),    # disjoint, covers all
                                             ((7, 5), 2, 2, "VALID"),    # disjoint, last row/col left
                                             ((8, 8), 2, 3, "VALID"),    # gaps between windows
                                             ((5, 5), 2, 2, "SAME"),     # disjoint with padding
                                             ((6, 6), 3, 2, "VALID")])   # overlapping: adds
def test_max_pool_grad_kernel_writes_every_element(hw, k, s, padding):
    # the kernel stores into disjoint windows and zero-fills only what they leave uncovered: dx
    # starts as NaN here, so an element it forgets to write fails the comparison
    from graphc.runtime.kernels_nn import _pool_geom, fam
    xv = RNG.integers(-2, 3, (2,) + hw + (9,)).astype(np.float32)     # ties
    mp = gc.nn.max_pool2d(gc.placeholder("float32", (None,) + hw + (9,)), k, s, padding)
    attrs = dict(mp.op.attrs)
    mp = get_op("max_pool2d").reference([xv], attrs)
    dy = data(mp.shape)
    for relu in (0, 1):         # relu_mask: only where the input is positive
        want = get_op("max_pool2d_grad").reference([xv, dy], {**attrs, "relu_mask": bool(relu)})
        dx = np.full_like(xv, np.nan)
        fam.get("max_pool_grad")(xv, dy, dx, relu, *_pool_geom(xv.shape, attrs))
        # (overlapping windows sum several dy into one element, in another order than the reference)
        np.testing.assert_allclose(dx, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 3])
def test_pooling_batch_split(monkeypatch, configure, threads):
    # pooling gradients are cut over the batch (5 images: one per chunk) and shared by the worker
    # threads; a read-only feed goes through the compiled entry point without a copy
    split_into(monkeypatch, configure, threads)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 7, 6, 17), name="x")
        fetches = []
        for k, s, padding in ((2, 2, "VALID"), (3, 1, "SAME")):     # disjoint and overlapping windows
            mp = gc.nn.max_pool2d(x, k, s, padding)
            ap = gc.nn.avg_pool2d(x, k, s, padding)
            fetches += [mp, ap, apply("max_pool2d_grad", [x, mp * 1.5], dict(mp.op.attrs)),
                        apply("avg_pool2d_grad", [x, ap], dict(ap.op.attrs))]
    xv = RNG.integers(-2, 3, (5, 7, 6, 17)).astype(np.float32)     # ties
    xv[3, 2, 2, 5] = np.nan
    xv.flags.writeable = False
    exe, _, _ = run_both(fetches, {x: xv})
    grads = [st for st in exe.plan.kernel_calls if "pool2d_grad" in st.call.name]
    assert len(grads) == 4
    assert all(st.call.steps[0][0].__name__.endswith("_batch_split") == (threads > 1) for st in grads)
