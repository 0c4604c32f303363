"""Neural-network ops: softmax, cross-entropies, conv2d, bias_add, dropout, l2_loss (pooling: pooling.py).

Image ops use NHWC data (batch, height, width, channels) and HWIO filters
(kernel height, kernel width, in channels, out channels), like TensorFlow.
``SAME`` padding pads ``max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)``
in total, the extra element at the end; ``VALID`` pads nothing.

    >>> import graphc as gc
    >>> x = gc.constant(np.ones((1, 4, 4, 1), np.float32))
    >>> y = gc.nn.conv2d(x, np.ones((3, 3, 1, 2), np.float32), strides=1, padding="SAME")
    >>> gc.Session().run(y)[0, :, :, 0].tolist()[0]
    [4.0, 6.0, 6.0, 4.0]
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import DtypeError, ShapeError
from ..ir import Tensor, TensorSpec
from .registry import (OpDef, apply, broadcast_shapes, convert_to_tensor, normalize_axis, operands,
                       register, same_dtype)

__all__ = [
    "softmax", "log_softmax", "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2", "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits", "l2_loss", "conv2d", "conv2d_backprop_input",
    "conv2d_backprop_filter", "bias_add",
    "dropout",
]


def _ew():
    from . import elementwise
    return elementwise


def _red():
    from . import reduction
    return reduction


def _arr():
    """The public op namespace (array/indexing functions: expand_dims, one_hot, transpose, reshape)."""
    from .. import ops
    return ops


def _float_dtype(specs, what="inputs"):
    dt = same_dtype(specs, what)
    if dt.kind != "f":
        raise DtypeError(f"{what} have dtype {dt.name}; this op needs float32 or float64: "
                         "use gc.cast(x, 'float32')")
    return dt


def _compatible(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _merge(a: tuple, b: tuple) -> tuple:
    return tuple(x if x is not None else y for x, y in zip(a, b))


# =================================================================================================
# softmax / log_softmax
# =================================================================================================
def _softmax_infer(specs, a):
    (x,) = specs
    _float_dtype(specs, "logits")
    if x.rank == 0:
        raise ShapeError("logits must have rank >= 1 (softmax normalizes along an axis)")
    if not 0 <= a["axis"] < x.rank:
        raise ShapeError(f"axis {a['axis']} is out of range for logits of rank {x.rank}")
    return x


# The references call the ufuncs' reduce methods: np.max and np.sum are these same reductions
# behind a Python wrapper that cost 1.5-2.5 us a call, half of a (32, 10) softmax (this reference is
# the baseline tier's kernel while the compiled one builds).
def _np_softmax(x, axis):
    if x.size == 0:
        return x.copy()
    e = np.subtract(x, np.maximum.reduce(x, axis=axis, keepdims=True))
    np.exp(e, out=e)
    return (e / np.add.reduce(e, axis=axis, keepdims=True)).astype(x.dtype, copy=False)


def _np_log_softmax(x, axis):
    if x.size == 0:
        return x.copy()
    z = x - np.maximum.reduce(x, axis=axis, keepdims=True)
    # sum and log in float64 as the kernels do (in float32, 1 + 2e-10 rounded to 1: fuzz seed 203759)
    ls = np.log(np.add.reduce(np.exp(z), axis=axis, keepdims=True, dtype=np.float64))
    return (z - ls).astype(x.dtype, copy=False)


def _softmax_grad(inputs, y, dy, a):
    rs = _red().reduce_sum
    return [y * (dy - rs(dy * y, axis=a["axis"], keepdims=True))]


def _log_softmax_grad(inputs, y, dy, a):
    rs = _red().reduce_sum
    return [dy - _ew().exp(y) * rs(dy, axis=a["axis"], keepdims=True)]


register(OpDef("softmax", fusion="reduction", infer=_softmax_infer,
               reference=lambda v, a: _np_softmax(v[0], a["axis"]), grad=_softmax_grad,
               doc="exp(x - max) / sum(exp(x - max)) along attrs['axis']."))
register(OpDef("log_softmax", fusion="reduction", infer=_softmax_infer,
               reference=lambda v, a: _np_log_softmax(v[0], a["axis"]), grad=_log_softmax_grad,
               doc="x - max - log(sum(exp(x - max))) along attrs['axis']."))


def _axis1(axis, rank: int) -> int:
    if not isinstance(axis, (int, np.integer)):
        raise ShapeError(f"axis must be one int, got {axis!r}")
    return normalize_axis(int(axis), rank)[0]


def softmax(logits, axis: int = -1, name=None) -> Tensor:
    """Softmax along ``axis`` (numerically stable: the max is subtracted first).

        >>> import graphc as gc
        >>> gc.Session().run(gc.nn.softmax(gc.constant([0.0, 0.0]))).tolist()
        [0.5, 0.5]
    """
    x = convert_to_tensor(logits)
    return apply("softmax", [x], {"axis": _axis1(axis, max(x.ndim, 1))}, name=name)


def log_softmax(logits, axis: int = -1, name=None) -> Tensor:
    """``log(softmax(logits))`` computed stably (``x - max - log(sum(exp(x - max)))``).

        >>> import graphc as gc
        >>> round(float(gc.Session().run(gc.nn.log_softmax(gc.constant([1.0, 1.0])))[0]), 4)
        -0.6931
    """
    x = convert_to_tensor(logits)
    return apply("log_softmax", [x], {"axis": _axis1(axis, max(x.ndim, 1))}, name=name)


# =================================================================================================
# cross-entropies
# =================================================================================================
def _sce_infer(specs, a):
    labels, logits = specs
    dt = _float_dtype(specs, "labels and logits")
    if logits.rank == 0:
        raise ShapeError("logits must have rank >= 1 (the class axis)")
    if not _compatible(labels.shape, logits.shape):
        raise ShapeError(f"labels shape {labels.shape} must equal logits shape {logits.shape} "
                         "(one probability per class); for integer class indices use "
                         "sparse_softmax_cross_entropy_with_logits")
    if not 0 <= a["axis"] < logits.rank:
        raise ShapeError(f"axis {a['axis']} is out of range for logits of rank {logits.rank}")
    shape = _merge(logits.shape, labels.shape)
    return TensorSpec(shape[:a["axis"]] + shape[a["axis"] + 1:], dt)


def _sce_ref(v, a):
    labels, logits = v
    return (-np.add.reduce(labels * _np_log_softmax(logits, a["axis"]), axis=a["axis"])).astype(logits.dtype)


def _sce_grad(inputs, y, dy, a):
    labels, logits = inputs
    ax = a["axis"]
    dyk = _arr().expand_dims(dy, ax)
    total = _red().reduce_sum(labels, axis=ax, keepdims=True)
    # d/dlogits of -sum(l * log_softmax(z)) is sum(l) * softmax(z) - l (= softmax - labels
    # for labels that sum to one, which is what TensorFlow computes).
    d_logits = dyk * (total * softmax(logits, axis=ax) - labels)
    d_labels = -dyk * log_softmax(logits, axis=ax)
    return [d_labels, d_logits]


register(OpDef("softmax_cross_entropy_with_logits", fusion="reduction", infer=_sce_infer,
               reference=_sce_ref, grad=_sce_grad,
               doc="-sum(labels * log_softmax(logits)) along attrs['axis'], per example."))


def _sparse_infer(specs, a):
    labels, logits = specs
    if labels.dtype.kind not in "iu":
        raise DtypeError(f"labels have dtype {labels.dtype.name}; sparse labels are integer class "
                         "indices (int32/int64); for one-hot or probability labels use "
                         "softmax_cross_entropy_with_logits")
    if logits.dtype.kind != "f":
        raise DtypeError(f"logits have dtype {logits.dtype.name}; use float32 or float64")
    if logits.rank == 0:
        raise ShapeError("logits must have rank >= 1 (the last axis holds the classes)")
    if not _compatible(labels.shape, logits.shape[:-1]):
        raise ShapeError(f"labels shape {labels.shape} must be logits shape {logits.shape} without "
                         f"its last (class) axis, i.e. {logits.shape[:-1]}")
    return TensorSpec(_merge(logits.shape[:-1], labels.shape), logits.dtype)


def _sparse_ref(v, a):
    labels, logits = v
    n = logits.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        bad = labels[(labels < 0) | (labels >= n)].ravel()[0]
        raise ValueError(f"sparse_softmax_cross_entropy_with_logits: label {int(bad)} is out of "
                         f"range for {n} classes (labels must be in [0, {n}))")
    ls = _np_log_softmax(logits, -1)
    picked = np.take_along_axis(ls, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    return (-picked).astype(logits.dtype)


def _sparse_grad(inputs, y, dy, a):
    labels, logits = inputs
    depth = logits.shape[-1]
    if depth is None:
        raise ShapeError("the gradient of sparse_softmax_cross_entropy_with_logits needs a known "
                         "number of classes (last logits dimension)")
    oh = _arr().one_hot(labels, depth, dtype=logits.dtype)
    return [None, _arr().expand_dims(dy, -1) * (softmax(logits) - oh)]


register(OpDef("sparse_softmax_cross_entropy_with_logits", fusion="reduction",
               infer=_sparse_infer, reference=_sparse_ref, grad=_sparse_grad,
               doc="logsumexp(logits) - logits[label] per example; labels are class indices."))


def _sigce_ref(v, a):
    z, x = v
    return (np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)


def _sigce_grad(inputs, y, dy, a):
    from .reduction import sum_to_shape
    z, x = inputs
    return [sum_to_shape(-dy * x, z.shape),
            sum_to_shape(dy * (_ew().sigmoid(x) - z), x.shape)]


def _sigce_infer(specs, a):
    dt = _float_dtype(specs, "labels and logits")
    return TensorSpec(broadcast_shapes(specs[0].shape, specs[1].shape), dt)


register(OpDef("sigmoid_cross_entropy_with_logits", fusion="elementwise", infer=_sigce_infer,
               reference=_sigce_ref, grad=_sigce_grad,
               scalar="(max({1}, 0.0) - {1} * {0} + math.log1p(math.exp(-abs({1}))))",
               doc="Stable max(x, 0) - x * z + log1p(exp(-|x|)); inputs (labels, logits)."))


def softmax_cross_entropy_with_logits(labels=None, logits=None, axis: int = -1, name=None,
                                      dim=None) -> Tensor:
    """Per-example ``-sum(labels * log_softmax(logits), axis)``, computed stably.

    Gradients flow to both logits and labels (as in TensorFlow v2).

        >>> import graphc as gc
        >>> loss = gc.nn.softmax_cross_entropy_with_logits(labels=[[0.0, 1.0]], logits=[[0.0, 0.0]])
        >>> round(float(gc.Session().run(loss)[0]), 4)
        0.6931
    """
    if labels is None or logits is None:
        raise ValueError("softmax_cross_entropy_with_logits needs labels= and logits= (keywords)")
    if dim is not None:
        axis = dim
    lab, lg = operands(labels, logits)
    return apply("softmax_cross_entropy_with_logits", [lab, lg],
                 {"axis": _axis1(axis, max(lg.ndim, 1))}, name=name)


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits


def sparse_softmax_cross_entropy_with_logits(labels=None, logits=None, name=None) -> Tensor:
    """Per-example cross-entropy with integer class ``labels`` (shape ``logits.shape[:-1]``).

        >>> import graphc as gc
        >>> loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=[1], logits=[[0.0, 0.0]])
        >>> round(float(gc.Session().run(loss)[0]), 4)
        0.6931
    """
    if labels is None or logits is None:
        raise ValueError("sparse_softmax_cross_entropy_with_logits needs labels= and logits=")
    lg = convert_to_tensor(logits)
    lab = convert_to_tensor(labels, graph=lg.graph) if not isinstance(labels, Tensor) else labels
    return apply("sparse_softmax_cross_entropy_with_logits", [lab, lg], name=name)


def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name=None) -> Tensor:
    """Elementwise logistic loss ``max(x, 0) - x * z + log(1 + exp(-|x|))`` (x logits, z labels).

        >>> import graphc as gc
        >>> loss = gc.nn.sigmoid_cross_entropy_with_logits(labels=[1.0], logits=[0.0])
        >>> round(float(gc.Session().run(loss)[0]), 4)
        0.6931
    """
    if labels is None or logits is None:
        raise ValueError("sigmoid_cross_entropy_with_logits needs labels= and logits=")
    lab, lg = operands(labels, logits)
    return apply("sigmoid_cross_entropy_with_logits", [lab, lg], name=name)


def l2_loss(t, name=None) -> Tensor:
    """``sum(t ** 2) / 2`` (a scalar), as ``tf.nn.l2_loss``.

        >>> import graphc as gc
        >>> float(gc.Session().run(gc.nn.l2_loss(gc.constant([1.0, 2.0]))))
        2.5
    """
    t = convert_to_tensor(t)
    if t.dtype.kind != "f":
        raise DtypeError(f"l2_loss '{name or 'l2_loss'}': dtype {t.dtype.name} is not a float dtype; "
                         "use gc.cast(t, 'float32')")
    return _ew().multiply(_red().reduce_sum(_ew().square(t)), 0.5, name=name or "l2_loss")


# =================================================================================================
# convolution and pooling geometry
# =================================================================================================
def _window_dim(size, k, s, d, padding, what="input"):
    """(out, pad_before, pad_after) of one spatial dimension; ``None`` where size is unknown."""
    if size is None or k is None:
        return None, None, None
    eff = (k - 1) * d + 1
    if padding == "VALID":
        if size < eff:
            raise ShapeError(f"{what} size {size} is smaller than the window size {eff} "
                             f"(kernel {k}, dilation {d}) with padding='VALID'; use padding='SAME' "
                             "or a smaller kernel")
        return (size - eff) // s + 1, 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return out, total // 2, total - total // 2


def _pair(v, what: str, default=None) -> tuple:
    """An int, a pair or an NHWC 4-tuple (1, h, w, 1) as ``(h, w)`` positive ints."""
    if v is None:
        v = default
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    v = tuple(int(x) for x in v)
    if len(v) == 4:
        if v[0] != 1 or v[3] != 1:
            raise ShapeError(f"{what} {v}: with 4 values (NHWC) the batch and channel entries "
                             "must be 1")
        v = v[1:3]
    if len(v) != 2 or min(v) < 1:
        raise ShapeError(f"{what} must be a positive int or a tuple of 2 (or 4 NHWC) positive "
                         f"ints, got {v}")
    return v


def _padding(p) -> str:
    if not isinstance(p, str) or p.upper() not in ("SAME", "VALID"):
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {p!r}")
    return p.upper()


def _geometry(hw, khw, a):
    """Output sizes and pads of both spatial dims: ((oh, ph0, ph1), (ow, pw0, pw1))."""
    return tuple(_window_dim(hw[i], khw[i], a["strides"][i], a.get("dilations", (1, 1))[i],
                             a["padding"], ("height", "width")[i]) for i in range(2))


def _pad(x, g, value=0.0):
    (_, h0, h1), (_, w0, w1) = g
    if h0 == h1 == w0 == w1 == 0:
        return x
    return np.pad(x, ((0, 0), (h0, h1), (w0, w1), (0, 0)), constant_values=value)


def _windows(xp, g, khw, a):
    """A strided view (N, oh, ow, kh, kw, C) of the padded input ``xp``."""
    (oh, *_), (ow, *_) = g
    sh, sw = a["strides"]
    dh, dw = a.get("dilations", (1, 1))
    n, _, _, c = xp.shape
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (n, oh, ow, khw[0], khw[1], c),
                      (s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3), writeable=False)


def _scatter_windows(dxp_shape, dtype, g, khw, a, contrib):
    """Sum ``contrib(i, j)`` (N, oh, ow, C) into window offset (i, j) of a zero (padded) array."""
    (oh, *_), (ow, *_) = g
    sh, sw = a["strides"]
    dh, dw = a.get("dilations", (1, 1))
    out = np.zeros(dxp_shape, dtype=dtype)
    for i in range(khw[0]):
        for j in range(khw[1]):
            out[:, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                j * dw: j * dw + sw * (ow - 1) + 1: sw, :] += contrib(i, j)
    return out


def _crop(xp, g, h, w):
    (_, h0, _), (_, w0, _) = g
    return xp[:, h0:h0 + h, w0:w0 + w, :]


def _padded_shape(shape, g):
    (_, h0, h1), (_, w0, w1) = g
    return (shape[0], shape[1] + h0 + h1, shape[2] + w0 + w1, shape[3])


def _check_rank4(spec, what):
    if spec.rank != 4:
        raise ShapeError(f"{what} must be rank 4 (NHWC: batch, height, width, channels), got rank "
                         f"{spec.rank} shape {spec.shape}")


# =================================================================================================
# conv2d and its two backprop ops
# =================================================================================================
def _conv_out_spec(x, f, a):
    _check_rank4(x, "input")
    if f.rank != 4:
        raise ShapeError(f"filters must be rank 4 (HWIO: kh, kw, in_channels, out_channels), got "
                         f"shape {f.shape}")
    if x.shape[3] is not None and f.shape[2] is not None and x.shape[3] != f.shape[2]:
        raise ShapeError(f"input has {x.shape[3]} channels but filters expect {f.shape[2]} "
                         "(filters are HWIO: (kh, kw, in_channels, out_channels))")
    (oh, *_), (ow, *_) = _geometry(x.shape[1:3], f.shape[0:2], a)
    return (x.shape[0], oh, ow, f.shape[3])


def _conv_infer(specs, a):
    x, f = specs
    dt = _float_dtype(specs, "input and filters")
    return TensorSpec(_conv_out_spec(x, f, a), dt)


def _conv_ref(v, a):
    x, f = v
    g = _geometry(x.shape[1:3], f.shape[0:2], a)
    win = _windows(_pad(x, g), g, f.shape[0:2], a)
    return np.tensordot(win, f, axes=([3, 4, 5], [0, 1, 2])).astype(x.dtype, copy=False)


def _check_dy(dy, want, what):
    if not _compatible(dy.shape, want):
        raise ShapeError(f"out_backprop shape {dy.shape} does not match the {what} output shape "
                         f"{want}")


def _bp_input_infer(specs, a):
    x, f, dy = specs
    dt = _float_dtype(specs, "input, filters and out_backprop")
    _check_dy(dy, _conv_out_spec(x, f, a), "conv2d")
    return TensorSpec(x.shape, dt)


def _bp_input_ref(v, a):
    x, f, dy = v
    g = _geometry(x.shape[1:3], f.shape[0:2], a)
    dxp = _scatter_windows(_padded_shape(x.shape, g), x.dtype, g, f.shape[0:2], a,
                           lambda i, j: dy @ f[i, j].T)
    return np.ascontiguousarray(_crop(dxp, g, x.shape[1], x.shape[2])).astype(x.dtype, copy=False)


def _bp_filter_infer(specs, a):
    x, f, dy = specs
    dt = _float_dtype(specs, "input, filters and out_backprop")
    _check_dy(dy, _conv_out_spec(x, f, a), "conv2d")
    return TensorSpec(f.shape, dt)


def _bp_filter_ref(v, a):
    x, f, dy = v
    g = _geometry(x.shape[1:3], f.shape[0:2], a)
    win = _windows(_pad(x, g), g, f.shape[0:2], a)
    return np.tensordot(win, dy, axes=([0, 1, 2], [0, 1, 2])).astype(x.dtype, copy=False)


def _conv_attrs(a):
    return {k: a[k] for k in ("strides", "padding", "dilations")}


def _conv_grad(inputs, y, dy, a):
    x, f = inputs
    return [apply("conv2d_backprop_input", [x, f, dy], _conv_attrs(a)),
            apply("conv2d_backprop_filter", [x, f, dy], _conv_attrs(a))]


def _bp_input_grad(inputs, y, ddx, a):
    x, f, dy = inputs   # y = B_in(f, dy) is bilinear; x only gives the shape
    return [None, apply("conv2d_backprop_filter", [ddx, f, dy], _conv_attrs(a)),
            apply("conv2d", [ddx, f], _conv_attrs(a))]


def _bp_filter_grad(inputs, y, ddf, a):
    x, f, dy = inputs   # y = B_f(x, dy) is bilinear; f only gives the shape
    return [apply("conv2d_backprop_input", [x, ddf, dy], _conv_attrs(a)), None,
            apply("conv2d", [x, ddf], _conv_attrs(a))]


register(OpDef("conv2d", fusion="contraction", epilogue=True, infer=_conv_infer, reference=_conv_ref,
               grad=_conv_grad, doc="2-D convolution (cross-correlation), NHWC input, HWIO filters."))
register(OpDef("conv2d_backprop_input", fusion="contraction", infer=_bp_input_infer,
               reference=_bp_input_ref, grad=_bp_input_grad,
               doc="Gradient of conv2d w.r.t. its input; inputs (input [shape only], filters, dy)."))
register(OpDef("conv2d_backprop_filter", fusion="contraction", infer=_bp_filter_infer,
               reference=_bp_filter_ref, grad=_bp_filter_grad,
               doc="Gradient of conv2d w.r.t. its filters; inputs (input, filters [shape only], dy)."))


def _conv_args(strides, padding, dilations, data_format):
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    if data_format == "NCHW":   # (1, 1, h, w) -> NHWC order
        if not isinstance(strides, (int, np.integer)) and len(strides) == 4:
            strides = (1, strides[2], strides[3], 1)
        if not isinstance(dilations, (int, np.integer)) and len(dilations) == 4:
            dilations = (1, dilations[2], dilations[3], 1)
    st, dl = _pair(strides, "strides"), _pair(dilations, "dilations")
    if st != (1, 1) and dl != (1, 1):
        raise ValueError(f"conv2d: strides {st} and dilations {dl} cannot both be > 1 "
                         "(TensorFlow restriction)")
    return {"strides": st, "padding": _padding(padding), "dilations": dl}


def _nchw(fn, x, data_format):
    if data_format != "NCHW":
        return fn(x)
    t = _arr().transpose
    return t(fn(t(x, (0, 2, 3, 1))), (0, 3, 1, 2))


def conv2d(input, filters, strides=1, padding="VALID", data_format="NHWC", dilations=1,
           name=None, filter=None) -> Tensor:
    """2-D convolution of NHWC ``input`` with HWIO ``filters`` (``tf.nn.conv2d``).

    ``strides`` / ``dilations``: an int, ``(h, w)`` or NHWC ``(1, h, w, 1)``;
    ``padding``: ``"VALID"`` or ``"SAME"`` (TensorFlow's rule: extra padding at the end).

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 28, 28, 1))
        >>> gc.nn.conv2d(x, np.zeros((5, 5, 1, 8), np.float32), strides=2, padding="SAME").shape
        (None, 14, 14, 8)
    """
    if filters is None:
        filters = filter
    x, f = operands(input, filters)
    attrs = _conv_args(strides, padding, dilations, data_format)
    return _nchw(lambda t: apply("conv2d", [t, f], attrs, name=name), x, data_format)


def conv2d_backprop_input(input, filters, out_backprop, strides=1, padding="VALID",
                          dilations=1, name=None) -> Tensor:
    """Gradient of ``conv2d`` w.r.t. its input (``input`` only gives the runtime shape).

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 5, 5, 1)); f = gc.constant(np.ones((3, 3, 1, 1), np.float32))
        >>> gc.nn.conv2d_backprop_input(x, f, gc.nn.conv2d(x, f)).shape
        (None, 5, 5, 1)
    """
    x, f, dy = operands(input, filters, out_backprop)
    return apply("conv2d_backprop_input", [x, f, dy],
                 _conv_args(strides, padding, dilations, "NHWC"), name=name)


def conv2d_backprop_filter(input, filters, out_backprop, strides=1, padding="VALID",
                           dilations=1, name=None) -> Tensor:
    """Gradient of ``conv2d`` w.r.t. its filters (``filters`` only gives the shape).

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 5, 5, 1)); f = gc.constant(np.ones((3, 3, 1, 1), np.float32))
        >>> gc.nn.conv2d_backprop_filter(x, f, gc.nn.conv2d(x, f)).shape
        (3, 3, 1, 1)
    """
    x, f, dy = operands(input, filters, out_backprop)
    return apply("conv2d_backprop_filter", [x, f, dy],
                 _conv_args(strides, padding, dilations, "NHWC"), name=name)


# =================================================================================================
# bias_add, dropout
# =================================================================================================
def bias_add(value, bias, data_format=None, name=None) -> Tensor:
    """``value + bias`` with a rank-1 ``bias`` over the channel (last, NHWC) dimension.

        >>> import graphc as gc
        >>> gc.Session().run(gc.nn.bias_add(gc.constant([[1.0, 2.0]]), [10.0, 20.0])).tolist()
        [[11.0, 22.0]]
    """
    v, b = operands(value, bias)
    if b.ndim != 1:
        raise ShapeError(f"bias_add '{name or 'BiasAdd'}': bias must be rank 1, got shape {b.shape}")
    if v.ndim < 2:
        raise ShapeError(f"bias_add '{name or 'BiasAdd'}': value must have rank >= 2, got shape "
                         f"{v.shape}")
    ch = 1 if data_format in ("NCHW", "NCW", "NCDHW") else v.ndim - 1
    if v.shape[ch] is not None and b.shape[0] is not None and v.shape[ch] != b.shape[0]:
        raise ShapeError(f"bias_add '{name or 'BiasAdd'}': bias has {b.shape[0]} elements but value "
                         f"has {v.shape[ch]} channels (dimension {ch} of shape {v.shape})")
    if ch != v.ndim - 1:
        b = _arr().reshape(b, (-1,) + (1,) * (v.ndim - 2))
    return _ew().add(v, b, name=name or "BiasAdd")


def dropout(x, rate=None, noise_shape=None, seed=None, training: bool = True, name=None,
            keep_prob=None) -> Tensor:
    """Zero elements with probability ``rate`` and scale the rest by ``1 / (1 - rate)``.

    ``rate`` (or TF1's ``keep_prob = 1 - rate``) is a Python float or a scalar
    tensor; ``noise_shape`` (``None`` entries follow ``x``'s runtime shape)
    shares one draw along its size-1 dimensions. ``training=False`` or
    ``rate == 0`` returns ``x`` itself. New elements are dropped on every run.

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 4))
        >>> gc.nn.dropout(x, rate=0.5, seed=1).shape
        (None, 4)
    """
    from .random import random_uniform
    ew = _ew()
    x = convert_to_tensor(x)
    if x.dtype.kind != "f":
        raise DtypeError(f"dropout: x has dtype {x.dtype.name}; dropout needs a float tensor")
    if rate is None and keep_prob is None:
        raise ValueError("dropout needs rate= (or keep_prob=)")
    if rate is not None and keep_prob is not None:
        raise ValueError("dropout: pass rate= or keep_prob=, not both")
    if not training:
        return x
    if rate is None:
        rate = (1.0 - keep_prob) if not isinstance(keep_prob, Tensor) \
            else ew.subtract(1.0, ew.cast(keep_prob, x.dtype))
    if not isinstance(rate, Tensor):
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout: rate must be in [0, 1), got {rate} (rate is the fraction "
                             "dropped; keep_prob = 1 - rate)")
        if rate == 0.0:
            return x
    else:
        rate = ew.cast(rate, x.dtype)
        if rate.ndim != 0:
            raise ShapeError(f"dropout: rate must be a scalar, got shape {rate.shape}")
    with x.graph.as_default():
        if noise_shape is None:
            u = random_uniform((None,) * x.ndim, dtype=x.dtype, seed=seed, like=x, name="dropout/u")
        else:
            ns = tuple(noise_shape)
            if len(ns) != x.ndim:
                raise ShapeError(f"dropout: noise_shape {ns} must have the rank of x {x.shape}")
            for d, s in zip(ns, x.shape):
                if d is not None and d != 1 and s is not None and d != s:
                    raise ShapeError(f"dropout: noise_shape {ns} is not broadcastable to x's shape "
                                     f"{x.shape} (each entry must be 1 or the x dimension)")
            u = random_uniform(ns, dtype=x.dtype, seed=seed, name="dropout/u",
                               like=x if any(d is None for d in ns) else None)
        keep = ew.cast(ew.greater_equal(u, rate), x.dtype)
        scale = (1.0 / (1.0 - rate)) if not isinstance(rate, Tensor) else \
            ew.divide(1.0, ew.subtract(1.0, rate))
        return ew.multiply(ew.multiply(x, scale), keep, name=name or "dropout")
