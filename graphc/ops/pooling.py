"""Pooling ops: max_pool2d and avg_pool2d over NHWC windows, their gradients and second gradient.

They share the convolution's window geometry (``nn._geometry``: SAME/VALID padding as TensorFlow).

    >>> import graphc as gc
    >>> x = gc.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
    >>> gc.Session().run(gc.nn.max_pool2d(x, 2, padding="SAME"))[0, :, :, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ir import Tensor, TensorSpec
from .nn import (_check_dy, _check_rank4, _compatible, _crop, _ew, _float_dtype, _geometry, _nchw, _pad,
                 _padded_shape, _padding, _pair, _scatter_windows, _windows)
from .registry import OpDef, apply, convert_to_tensor, register

__all__ = ["max_pool2d", "avg_pool2d", "max_pool", "avg_pool"]


def _pool_infer(specs, a):
    (x,) = specs
    _float_dtype(specs, "input")
    _check_rank4(x, "input")
    (oh, *_), (ow, *_) = _geometry(x.shape[1:3], a["ksize"], a)
    return TensorSpec((x.shape[0], oh, ow, x.shape[3]), x.dtype)


def _max_ref(v, a):
    (x,) = v
    g = _geometry(x.shape[1:3], a["ksize"], a)
    win = _windows(_pad(x, g, -np.inf), g, a["ksize"], a)
    return np.max(win, axis=(3, 4)) if win.size else np.zeros(win.shape[:3] + win.shape[5:], x.dtype)


def _avg_counts(h, w, g, a):
    ones = _pad(np.ones((1, h, w, 1)), g)
    return np.sum(_windows(ones, g, a["ksize"], a), axis=(3, 4))   # (1, oh, ow, 1)


def _avg_ref(v, a):
    (x,) = v
    g = _geometry(x.shape[1:3], a["ksize"], a)
    win = _windows(_pad(x, g), g, a["ksize"], a)
    s = np.sum(win, axis=(3, 4), dtype=np.float64)
    return (s / _avg_counts(x.shape[1], x.shape[2], g, a)).astype(x.dtype)


def _argmax_windows(x, a):
    g = _geometry(x.shape[1:3], a["ksize"], a)
    win = _windows(_pad(x, g, -np.inf), g, a["ksize"], a)
    n, oh, ow, kh, kw, c = win.shape
    flat = win.reshape(n, oh, ow, kh * kw, c)
    am = np.argmax(flat, axis=3) if flat.size else np.zeros((n, oh, ow, c), np.int64)
    return g, am


def _pool_grad_infer(specs, a):
    x, dy = specs
    _float_dtype(specs, "input and out_backprop")
    _check_dy(dy, _pool_infer([x], a).shape, "pooling")
    return TensorSpec(x.shape, x.dtype)


def _max_grad_ref(v, a):
    x, dy = v
    g, am = _argmax_windows(x, a)
    kw = a["ksize"][1]
    dxp = _scatter_windows(_padded_shape(x.shape, g), x.dtype, g, a["ksize"], a,
                           lambda i, j: np.where(am == i * kw + j, dy, 0))
    dx = np.ascontiguousarray(_crop(dxp, g, x.shape[1], x.shape[2])).astype(x.dtype, copy=False)
    # relu_mask: where(x > 0, dx, 0), the gradient of a relu before the pool folded in (passes.simplify)
    return np.where(x > 0, dx, 0).astype(x.dtype) if a.get("relu_mask") else dx


def _max_grad_grad(i, y, d, a):
    # relu_mask multiplies by the constant mask x > 0, so the gradient is masked the same way
    a = dict(a)
    if a.pop("relu_mask", False):
        ew = _ew()
        d = ew.where(ew.greater(i[0], 0), d, 0)
    return [None, apply("max_pool2d_grad_grad", [i[0], d], a)]


def _max_gradgrad_infer(specs, a):
    x, ddx = specs
    _float_dtype(specs, "input and its gradient")
    if not _compatible(x.shape, ddx.shape):
        raise ShapeError(f"gradient shape {ddx.shape} does not match input shape {x.shape}")
    return _pool_infer([x], a)


def _max_gradgrad_ref(v, a):
    x, ddx = v
    g, am = _argmax_windows(x, a)
    win = _windows(_pad(ddx, g), g, a["ksize"], a)
    n, oh, ow, kh, kw, c = win.shape
    flat = win.reshape(n, oh, ow, kh * kw, c)
    return np.take_along_axis(flat, am[:, :, :, None, :], axis=3)[:, :, :, 0, :].astype(x.dtype)


def _avg_grad_ref(v, a):
    x, dy = v
    g = _geometry(x.shape[1:3], a["ksize"], a)
    scaled = dy / _avg_counts(x.shape[1], x.shape[2], g, a)
    dxp = _scatter_windows(_padded_shape(x.shape, g), x.dtype, g, a["ksize"], a,
                           lambda i, j: scaled)
    return np.ascontiguousarray(_crop(dxp, g, x.shape[1], x.shape[2])).astype(x.dtype, copy=False)


register(OpDef("max_pool2d", fusion="opaque", infer=_pool_infer, reference=_max_ref,
               grad=lambda i, y, dy, a: [apply("max_pool2d_grad", [i[0], dy], dict(a))],
               doc="Max over NHWC windows (SAME pads with -inf)."))
register(OpDef("max_pool2d_grad", fusion="opaque", infer=_pool_grad_infer, reference=_max_grad_ref,
               grad=_max_grad_grad,
               doc="Routes dy to the (first) argmax of each window; inputs (input, dy). attrs['relu_mask'] "
                   "keeps only positions where input > 0."))
register(OpDef("max_pool2d_grad_grad", fusion="opaque", infer=_max_gradgrad_infer,
               reference=_max_gradgrad_ref,
               grad=lambda i, y, d, a: [None, apply("max_pool2d_grad", [i[0], d], dict(a))],
               doc="Picks the gradient at each window's argmax; inputs (input, d_input)."))
register(OpDef("avg_pool2d", fusion="opaque", infer=_pool_infer, reference=_avg_ref,
               grad=lambda i, y, dy, a: [apply("avg_pool2d_grad", [i[0], dy], dict(a))],
               doc="Mean over NHWC windows; SAME divides by the number of valid elements."))
register(OpDef("avg_pool2d_grad", fusion="opaque", infer=_pool_grad_infer, reference=_avg_grad_ref,
               grad=lambda i, y, d, a: [None, apply("avg_pool2d", [d], dict(a))],
               doc="Spreads dy / count over each window; inputs (input [shape only], dy)."))


def _pool(op, input, ksize, strides, padding, data_format, name):
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    if data_format == "NCHW":
        ksize = ksize if isinstance(ksize, (int, np.integer)) or len(ksize) != 4 \
            else (1, ksize[2], ksize[3], 1)
        if strides is not None and not isinstance(strides, (int, np.integer)) and len(strides) == 4:
            strides = (1, strides[2], strides[3], 1)
    k = _pair(ksize, "ksize")
    attrs = {"ksize": k, "strides": _pair(strides, "strides", default=k),
             "padding": _padding(padding)}
    x = convert_to_tensor(input)
    return _nchw(lambda t: apply(op, [t], attrs, name=name), x, data_format)


def max_pool2d(input, ksize, strides=None, padding="VALID", data_format="NHWC", name=None) -> Tensor:
    """Max pooling over NHWC windows (``tf.nn.max_pool2d``); ``strides`` defaults to ``ksize``.

        >>> import graphc as gc
        >>> x = gc.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
        >>> gc.Session().run(gc.nn.max_pool2d(x, 2))[0, :, :, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
    """
    return _pool("max_pool2d", input, ksize, strides, padding, data_format, name)


def avg_pool2d(input, ksize, strides=None, padding="VALID", data_format="NHWC", name=None) -> Tensor:
    """Average pooling over NHWC windows; with SAME, divides by the count of valid elements.

        >>> import graphc as gc
        >>> x = gc.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
        >>> gc.Session().run(gc.nn.avg_pool2d(x, 2))[0, :, :, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """
    return _pool("avg_pool2d", input, ksize, strides, padding, data_format, name)


max_pool, avg_pool = max_pool2d, avg_pool2d
