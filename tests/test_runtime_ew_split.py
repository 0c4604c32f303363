"""Elementwise kernels cut over the worker threads along their collapsed leading dimension
(``kernels.split_rows``): the same values as one call and as numpy, whatever the sizes, broadcasts,
in-place epilogues and ``threads`` setting. The size threshold is lowered so small arrays split."""
import numpy as np
import pytest

import graphc as gc
from graphc.runtime import kernels
from graphc.runtime.kernels import In, Out

F = np.float32


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(kernels, "EW_SPLIT_MIN_ELEMENTS", 64)


def chain(x, b):
    t = gc.sigmoid(x * F(1.5) + b)
    return gc.maximum(t * t - F(0.5), F(0.1))


def chain_np(x, b):
    t = F(1) / (F(1) + np.exp(-(x * F(1.5) + b)))
    return np.maximum(t * t - F(0.5), F(0.1))


def _materialize(descs, arrays, out):
    return [out.reshape(d.shape) if isinstance(d, Out) else arrays[d.k].reshape(d.shape)
            for d in descs]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("b_shape", [(), (1, 37), (251, 1), (251, 37)])
def test_function_with_broadcast_inputs_matches_numpy(low_threshold, threads, b_shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((251, 37)).astype(F)        # odd sizes: uneven chunks
    b = rng.standard_normal(b_shape).astype(F)
    with gc.config.override(threads=threads):
        fn = gc.function(chain)
        got = fn(x, b)
    np.testing.assert_allclose(got, chain_np(x, b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(1001,), (3, 5, 67), (2, 4099)])
def test_split_kernel_equals_one_call(low_threshold, shape):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(shape).astype(F), rng.standard_normal(shape[-1:]).astype(F)
    prog = (("mul", (0, 1), ()), ("tanh", (2,), ()), ("add", (3, 0), ()))
    results = []
    for threads in (1, 2):
        with gc.config.override(threads=threads):
            (fn, descs), _ = kernels.ew_call(prog, [shape, shape[-1:]], [F, F], shape, F, shape, "t")
        assert hasattr(fn, "serial") == (threads == 2)
        out = np.full(shape, np.nan, F)
        fn(*_materialize(descs, [x, y], out))
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[1], np.tanh(x * y) + x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_in_place_epilogue_is_cut_like_the_output(low_threshold, threads):
    # input 0 is the output buffer itself (a conv epilogue run in place): every chunk reads and
    # writes its own rows; the per-channel bias (broadcast along the rows) goes whole to each
    rng = np.random.default_rng(2)
    shape = (999, 13)
    x, bias = rng.standard_normal(shape).astype(F), rng.standard_normal(13).astype(F)
    prog = (("add", (0, 1), ()), ("relu", (2,), ()))
    with gc.config.override(threads=threads):
        (fn, descs), _ = kernels.ew_call(prog, [shape, (13,)], [F, F], shape, F, shape, "epi",
                                         in_index=lambda k, s: Out(s) if k == 0 else In(k, s))
    assert descs[0] == descs[-1]
    out = x.copy()
    fn(*_materialize(descs, [None, bias], out))
    np.testing.assert_array_equal(out, np.maximum(x + bias, F(0)))


def test_small_outputs_and_one_row_stay_one_call():
    shape = (kernels.EW_SPLIT_MIN_ELEMENTS - 1,)
    prog = (("exp", (0,), ()),)
    with gc.config.override(threads=2):
        (small, _), _ = kernels.ew_call(prog, [shape], [F], shape, F, shape, "t")
        big = (1, kernels.EW_SPLIT_MIN_ELEMENTS)        # a batch of 1 of a (None, n) value
        (row, _), _ = kernels.ew_call((("add", (0, 1), ()),), [big, big[1:]], [F, F], big, F,
                                      (None, big[1]), "t", static_in_shapes=[(None, big[1]), big[1:]])
    assert not hasattr(small, "serial") and not hasattr(row, "serial")
