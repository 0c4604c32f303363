"""Converters of ONNX's reductions, arg-reductions, CumSum and the loss ops, added to ``CONVERTERS``.

Reduce* ops take their axes as an attribute before opset 13 (ReduceSum) or 18 (the others) and
as an input after; both are read here. A missing or empty axes list reduces everything (unless
``noop_with_empty_axes``).

    >>> from graphc.onnx.converters import CONVERTERS
    >>> "ReduceLogSumExp" in CONVERTERS and "SoftmaxCrossEntropyLoss" in CONVERTERS
    True
"""
from __future__ import annotations

import numpy as np

import graphc as gc

from .converters import _axes, _float, _scalar, op


# -- reductions -------------------------------------------------------------------------------------------
_RED = {"ReduceSum": gc.reduce_sum, "ReduceMean": gc.reduce_mean, "ReduceMax": gc.reduce_max,
        "ReduceMin": gc.reduce_min, "ReduceProd": gc.reduce_prod}


@op("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")
def _reduce(cx, ins):
    name = cx.node.op_type
    x = ins[0]
    since = 13 if name == "ReduceSum" else 18
    axes = _axes(cx, ins, since=since)
    keep = bool(cx.attr("keepdims", 1))
    if axes is not None and len(axes) == 0:
        axes = None
    if axes is None and cx.attr("noop_with_empty_axes", 0):
        return gc.identity(x)
    ax = None if axes is None else tuple(sorted(a % x.ndim for a in axes)) if x.ndim else None
    if x.dtype.kind == "b":
        if name not in ("ReduceMax", "ReduceMin"):
            raise cx.unsupported("bool input is not supported", kind="dtype")
        return (gc.reduce_any if name == "ReduceMax" else gc.reduce_all)(x, axis=ax, keepdims=keep)
    empty = any(x.shape[a] == 0 for a in (ax if ax is not None else range(x.ndim)))
    if empty and name in ("ReduceMax", "ReduceMin", "ReduceLogSumExp", "ReduceMean"):
        raise cx.unsupported("reducing an empty dimension is not supported for this op", kind="attribute")
    if name in _RED:
        return _RED[name](x, axis=ax, keepdims=keep)
    if name == "ReduceL1":
        return gc.reduce_sum(gc.abs(x), axis=ax, keepdims=keep)
    if name == "ReduceSumSquare":
        return gc.reduce_sum(x * x, axis=ax, keepdims=keep)
    _float(cx, x)
    if name == "ReduceL2":
        return gc.sqrt(gc.reduce_sum(x * x, axis=ax, keepdims=keep))
    if name == "ReduceLogSum":
        return gc.log(gc.reduce_sum(x, axis=ax, keepdims=keep))
    # ReduceLogSumExp, stable: m + log(sum(exp(x - m))); a dedicated op would save two passes
    m = gc.stop_gradient(gc.reduce_max(x, axis=ax, keepdims=True))
    m = gc.where(gc.equal(gc.abs(m), _scalar(cx, x, np.inf)), gc.zeros_like(m), m)
    s = gc.log(gc.reduce_sum(gc.exp(x - m), axis=ax, keepdims=True)) + m
    if not keep:
        s = gc.reshape(s, [(-1 if d is None else d) for i, d in enumerate(x.shape)
                           if i not in (ax if ax is not None else range(x.ndim))]) \
            if sum(d is None for d in x.shape) <= 1 else gc.squeeze(s, list(ax or range(x.ndim)))
    return s


@op("ArgMax", "ArgMin")
def _arg(cx, ins):
    x = ins[0]
    ax = int(cx.attr("axis", 0)) % x.ndim
    fn = gc.argmax if cx.node.op_type == "ArgMax" else gc.argmin
    if cx.attr("select_last_index", 0):   # the first index of the reversed axis, counted from the end
        d = x.shape[ax]
        if d is None:
            raise cx.unsupported("select_last_index=1 over an unknown size", kind="dynamic")
        rev = x[(slice(None),) * ax + (slice(None, None, -1),)]
        y = cx.constant(np.asarray(d - 1, np.int64)) - fn(rev, axis=ax, output_type="int64")
    else:
        y = fn(x, axis=ax, output_type="int64")
    return gc.expand_dims(y, ax) if cx.attr("keepdims", 1) else y


@op("CumSum")
def _cumsum(cx, ins):
    """A product with a triangular 0/1 matrix along the axis (a cumsum op would be one pass)."""
    x = ins[0]
    ax = int(np.asarray(cx.value(ins[1], "axis")).reshape(())) % x.ndim
    d = x.shape[ax]
    if d is None:
        raise cx.unsupported("an unknown size along the axis", kind="dynamic")
    if x.dtype == np.int32 and d < 2 ** 21:   # exact in float64: |sums| < 2**52
        ins = [gc.cast(x, "float64")] + list(ins[1:])
        return gc.cast(_cumsum(cx, ins), "int32")
    _float(cx, x, "input (int64 CumSum)")
    i, j = np.indices((d, d))
    rev, exc = cx.attr("reverse", 0), cx.attr("exclusive", 0)
    m = (i > j if exc else i >= j) if rev else (i < j if exc else i <= j)
    if x.ndim == 1:
        return gc.matmul(gc.expand_dims(x, 0), cx.constant(m.astype(x.dtype)))[0]
    perm = [k for k in range(x.ndim) if k != ax] + [ax]
    y = gc.matmul(gc.transpose(x, perm), cx.constant(m.astype(x.dtype)))
    return gc.transpose(y, list(np.argsort(perm)))


def _nll(cx, logp, target, weight):
    """NegativeLogLikelihoodLoss of log-probabilities ``logp`` (N, C, ...) at ``target`` (N, ...)."""
    c = logp.shape[1]
    if c is None:
        raise cx.unsupported("an unknown class count", kind="dynamic")
    t = gc.cast(target, "int64")
    ii = cx.attr("ignore_index")
    mask = None
    if ii is not None:
        mask = gc.not_equal(t, _scalar(cx, t, ii))
        t = gc.where(mask, t, gc.zeros_like(t))
    picked = gc.reduce_sum(gc.one_hot(t, c, axis=1, dtype=logp.dtype) * logp, axis=1)
    loss = -picked
    w = gc.gather(weight, t) if weight is not None else None
    if mask is not None:
        m = gc.cast(mask, logp.dtype)
        w = m if w is None else w * m
    if w is not None:
        loss = loss * w
    red = cx.attr("reduction", "mean")
    if red == "none":
        return loss
    if red == "sum":
        return gc.reduce_sum(loss)
    if red != "mean":
        raise cx.unsupported(f"reduction {red!r} is not supported")
    return gc.reduce_mean(loss) if w is None else gc.reduce_sum(loss) / gc.reduce_sum(w)


@op("NegativeLogLikelihoodLoss")
def _nll_op(cx, ins):
    x = _float(cx, ins[0])
    return _nll(cx, x, ins[1], ins[2] if len(ins) > 2 else None)


@op("SoftmaxCrossEntropyLoss")
def _sce(cx, ins):
    x = _float(cx, ins[0])
    logp = gc.nn.log_softmax(x, axis=1)   # (N, C, d...): softmax over the classes
    loss = _nll(cx, logp, ins[1], ins[2] if len(ins) > 2 else None)
    return [loss, logp]
