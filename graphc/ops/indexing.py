"""Indexing ops: numpy-style slicing (``strided_slice``), gather / scatter, one_hot.

Basic indexing (``x[1:, None, ::2]``, ``x[..., 0]``) builds one ``strided_slice`` node whose
``key`` attr is canonical (Ellipsis expanded): ints, ``("s", start, stop, step)`` and ``None``
(new axis). An int index on a ``None`` dimension is checked at run time.

    >>> import graphc as gc
    >>> x = gc.constant(np.arange(6.0).reshape(2, 3))
    >>> gc.Session().run(gc.gather(x, [1, 0])[:, ::2]).tolist()
    [[3.0, 5.0], [0.0, 2.0]]
"""
from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes as _dt
from ..errors import DtypeError, ShapeError
from ..ir import Tensor, TensorSpec
from .array import _float, _fmt, _ints, _ops, expand_dims
from .creation import zeros_like
from .registry import OpDef, apply, convert_to_tensor, normalize_axis, register, same_dtype

__all__ = ["getitem", "slice", "strided_slice", "gather", "unsorted_segment_sum", "one_hot"]

_slice = builtins.slice

# ================================================================================================
# slicing: getitem / strided_slice / slice
# ================================================================================================
def _np_key(key: tuple) -> tuple:
    return tuple(np.newaxis if k is None else (_slice(k[1], k[2], k[3]) if isinstance(k, tuple) else k)
                 for k in key)


def _ss_infer(specs, a):
    (x,) = specs
    out, dim = [], 0
    for k in a["key"]:
        if k is None:
            out.append(1)
            continue
        if dim >= len(x.shape):
            raise ShapeError(f"too many indices for a tensor of rank {len(x.shape)}")
        d = x.shape[dim]
        if isinstance(k, tuple):
            if d is None:
                out.append(None)
            else:
                out.append(len(range(*_slice(k[1], k[2], k[3]).indices(d))))
        else:
            if d is not None and not -d <= k < d:
                raise ShapeError(f"index {k} is out of bounds for dimension {dim} of size {d} "
                                 f"(shape {_fmt(x.shape)}); valid indices are {-d}..{d - 1}")
        dim += 1
    out.extend(x.shape[dim:])
    return TensorSpec(tuple(out), x.dtype)


def _ss_ref(v, a):
    x = v[0]
    try:
        return np.asarray(x[_np_key(a["key"])])
    except IndexError as e:
        raise ShapeError(f"strided_slice: {e} (the input has run-time shape {x.shape})") from None


register(OpDef(
    "strided_slice", fusion="layout", infer=_ss_infer, reference=_ss_ref,
    grad=lambda x, y, dy, a: [apply("strided_slice_grad", [dy, x[0]], {"key": a["key"]})],
    doc="numpy basic indexing x[key] (ints, slices, new axes; Ellipsis already expanded)."))


def _ssg_ref(v, a):
    dy, x = v
    out = np.zeros(x.shape, dtype=dy.dtype)
    out[_np_key(a["key"])] = dy
    return out


register(OpDef(
    "strided_slice_grad", fusion="layout",
    infer=lambda s, a: TensorSpec(s[1].shape, s[0].dtype), reference=_ssg_ref,
    grad=lambda x, y, ddy, a: [apply("strided_slice", [ddy], {"key": a["key"]}), None],
    doc="Zeros shaped like input 1 with input 0 written at [key] (the adjoint of strided_slice)."))


def _ssgn_infer(specs, a):
    *dys, x = specs
    if len(dys) != len(a["keys"]):
        raise ShapeError(f"strided_slice_grad_n: {len(dys)} gradients for {len(a['keys'])} keys")
    if any(d.dtype != dys[0].dtype for d in dys):
        raise DtypeError("strided_slice_grad_n: the gradients have dtypes "
                         f"{sorted({d.dtype.name for d in dys})}; they must all be one dtype")
    return TensorSpec(x.shape, dys[0].dtype)


def _ssgn_ref(v, a):
    *dys, x = v
    out = np.zeros(x.shape, dtype=dys[0].dtype)
    for dy, key in zip(dys, a["keys"]):
        out[_np_key(key)] += dy
    return out


register(OpDef(
    "strided_slice_grad_n", fusion="layout", infer=_ssgn_infer, reference=_ssgn_ref,
    grad=lambda x, y, ddy, a: [apply("strided_slice", [ddy], {"key": k}) for k in a["keys"]] + [None],
    doc="The sum of strided_slice_grad(dy_i, x, key_i) over i, in one zeros buffer (inputs: dy_1..dy_n, "
        "x). Autodiff emits it where one tensor is sliced many times (an RNN's time steps, its gates): "
        "n full-size zero tensors and their sum cost O(n) passes over x's shape; this costs one."))


def accumulate_slice_grads(terms: list) -> list:
    """``terms`` (gradient tensors to be summed) with the unconsumed ``strided_slice_grad`` ones that
    share their ``like`` input and dtype merged into one ``strided_slice_grad_n`` each. The sum of
    the returned terms equals the sum of ``terms``. The merged nodes stay in the graph (autodiff
    may hold the same tensor in another sum, or return it: ``add`` passes its dy through); unused,
    they are never scheduled and the passes' DCE drops them."""
    groups: dict = {}
    for t in terms:
        g, n = t.graph, t.node
        if g.op(n) == "strided_slice_grad" and not g.consumers(n):
            groups.setdefault((g.inputs(n)[1], t.dtype), []).append(t)
    merged = {t.node for items in groups.values() if len(items) > 1 for t in items}
    if not merged:
        return terms
    out = [t for t in terms if t.node not in merged]
    g = terms[0].graph
    for (like, _), items in groups.items():
        if len(items) > 1:
            out.append(apply("strided_slice_grad_n", [Tensor(g, g.inputs(t.node)[0]) for t in items]
                             + [Tensor(g, like)], {"keys": tuple(g.attrs(t.node)["key"] for t in items)}))
    return out


def _normalize_key(key, shape: tuple) -> tuple:
    if not isinstance(key, tuple):
        key = (key,)
    items = []
    for k in key:
        if isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind in "iu":
            k = int(k)
        if isinstance(k, Tensor):
            raise TypeError(f"indexing with a tensor ({k.name}) is not supported; use "
                            "gc.gather(x, indices, axis) for tensor indices")
        if k is None or k is Ellipsis or isinstance(k, _slice):
            items.append(k)
        elif isinstance(k, (bool, np.bool_)):
            raise TypeError("boolean indices are not supported; use gc.where or gc.gather")
        elif isinstance(k, (int, np.integer)):
            items.append(int(k))
        else:
            raise TypeError(f"unsupported index {k!r} ({type(k).__name__}); graphc supports ints, "
                            "slices, None/newaxis and Ellipsis; use gc.gather for lists of indices")
    if sum(k is Ellipsis for k in items) > 1:
        raise ShapeError("an index can only have a single Ellipsis ('...')")
    consumed = sum(1 for k in items if k is not None and k is not Ellipsis)
    if consumed > len(shape):
        raise ShapeError(f"too many indices ({consumed}) for a tensor of rank {len(shape)} "
                         f"(shape {_fmt(shape)})")
    fill = [_slice(None)] * (len(shape) - consumed)
    if Ellipsis in items:
        i = items.index(Ellipsis)
        items = items[:i] + fill + items[i + 1:]
    else:
        items = items + fill
    out = []
    for k in items:
        if isinstance(k, _slice):
            parts = []
            for p in (k.start, k.stop, k.step):
                if isinstance(p, Tensor):
                    raise TypeError("slice bounds must be Python ints, not tensors")
                parts.append(None if p is None else int(p))
            if parts[2] == 0:
                raise ShapeError("slice step cannot be zero")
            if parts[2] == 1:
                parts[2] = None
            out.append(("s", *parts))
        else:
            out.append(k)
    return tuple(out)


def getitem(x, key, name=None) -> Tensor:
    """numpy basic indexing of a tensor (what ``x[...]`` calls): ints, slices with any step,
    ``None``/``gc.newaxis`` and ``...``.

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 4, 5))
        >>> x[:, None, ::-2, 0].shape
        (None, 1, 2)
    """
    x = convert_to_tensor(x)
    k = _normalize_key(key, x.shape)
    try:
        return apply("strided_slice", [x], {"key": k}, name=name)
    except ShapeError as e:
        raise ShapeError(f"{e} [index {key!r}]") from None


def slice(input_, begin, size, name=None) -> Tensor:  # noqa: A001 - TensorFlow's name
    """``tf.slice``: ``size[i]`` elements from ``begin[i]`` on each axis (``-1``: to the end).

        >>> import graphc as gc
        >>> gc.slice(gc.zeros((4, 5)), [1, 0], [2, -1]).shape
        (2, 5)
    """
    x = convert_to_tensor(input_)
    begin, size = _ints(begin, "slice: begin"), _ints(size, "slice: size")
    if len(begin) != x.ndim or len(size) != x.ndim:
        raise ShapeError(f"slice '{name or 'slice'}': begin {begin} and size {size} need one entry "
                         f"per dimension of shape {_fmt(x.shape)}")
    key = []
    for i, (b, s, d) in enumerate(zip(begin, size, x.shape)):
        if b < 0 or s < -1 or (d is not None and (b > d or (s != -1 and b + s > d))):
            raise ShapeError(f"slice '{name or 'slice'}': begin {b} size {s} does not fit dimension "
                             f"{i} of size {d} (shape {_fmt(x.shape)})")
        key.append(_slice(b, None if s == -1 else b + s))
    return getitem(x, tuple(key), name=name or "slice")


def strided_slice(input_, begin, end, strides=None, begin_mask=0, end_mask=0, ellipsis_mask=0,
                  new_axis_mask=0, shrink_axis_mask=0, name=None) -> Tensor:
    """``tf.strided_slice`` with static ``begin``/``end``/``strides`` and the five bit masks.

        >>> import graphc as gc
        >>> gc.strided_slice(gc.zeros((4, 6)), [0, 5], [4, 0], [2, -1]).shape
        (2, 5)
    """
    begin, end = _ints(begin, "strided_slice: begin"), _ints(end, "strided_slice: end")
    strides = (1,) * len(begin) if strides is None else _ints(strides, "strided_slice: strides")
    if not len(begin) == len(end) == len(strides):
        raise ShapeError("strided_slice: begin, end and strides must have the same length")
    key = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        if ellipsis_mask & bit:
            key.append(Ellipsis)
        elif new_axis_mask & bit:
            key.append(None)
        elif shrink_axis_mask & bit:
            key.append(b)
        else:
            key.append(_slice(None if begin_mask & bit else b, None if end_mask & bit else e, s))
    return getitem(input_, tuple(key), name=name or "strided_slice")


# ================================================================================================
# gather / scatter
# ================================================================================================
def _gather_infer(specs, a):
    p, idx = specs
    if idx.dtype.kind != "i":
        raise DtypeError(f"indices must be int32 or int64, got {idx.dtype.name}; cast them with "
                         "gc.cast(indices, 'int32')")
    ax = a["axis"]
    if not 0 <= ax < len(p.shape):
        raise ShapeError(f"axis {ax} is out of range for params of rank {len(p.shape)}")
    return TensorSpec(p.shape[:ax] + idx.shape + p.shape[ax + 1:], p.dtype)


def _gather_ref(v, a):
    p, idx = v
    n = p.shape[a["axis"]]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)].reshape(-1)[0]
        raise ShapeError(f"gather: index {bad} is out of range for axis {a['axis']} of size {n}")
    return np.take(p, idx, axis=a["axis"])


def _gather_grad(x, y, dy, a):
    p, idx = x
    if not _float(p):
        return [None, None]
    return [apply("scatter_add", [zeros_like(p), idx, dy], {"axis": a["axis"]}), None]


register(OpDef(
    "gather", fusion="opaque", infer=_gather_infer, reference=_gather_ref, grad=_gather_grad,
    doc="params.take(indices, axis) (negative indices count from the end)."))


def _scatter_infer(specs, a):
    ref, idx, upd = specs
    if idx.dtype.kind != "i":
        raise DtypeError(f"indices must be int32 or int64, got {idx.dtype.name}")
    same_dtype([ref, upd], "ref and updates")
    ax = a["axis"]
    want = ref.shape[:ax] + idx.shape + ref.shape[ax + 1:]
    if len(want) != len(upd.shape) or any(w is not None and u is not None and w != u
                                    for w, u in zip(want, upd.shape)):
        raise ShapeError(f"updates have shape {_fmt(upd.shape)} but must be {_fmt(want)} "
                         "(ref.shape[:axis] + indices.shape + ref.shape[axis+1:])")
    return ref


def _scatter_ref(v, a):
    ref, idx, upd = v
    out = np.array(ref, copy=True)
    np.add.at(out, (_slice(None),) * a["axis"] + (idx,), upd)
    return out


register(OpDef(
    "scatter_add", fusion="opaque", infer=_scatter_infer, reference=_scatter_ref,
    grad=lambda x, y, dy, a: [dy, None, gather(dy, x[1], axis=a["axis"])]
    if _float(x[0]) else [None, None, None],
    doc="ref + updates added at indices along attrs['axis'] (repeated indices accumulate); "
        "the gradient of gather."))


def _uss_infer(specs, a):
    data, ids = specs
    if ids.dtype.kind != "i":
        raise DtypeError(f"segment_ids must be int32 or int64, got {ids.dtype.name}")
    if data.dtype.kind not in "fi":
        raise DtypeError(f"data must be numeric, got {data.dtype.name}")
    k = len(ids.shape)
    if k > len(data.shape) or any(i is not None and d is not None and i != d
                            for i, d in zip(ids.shape, data.shape[:k])):
        raise ShapeError(f"segment_ids shape {_fmt(ids.shape)} must be a prefix of data shape "
                         f"{_fmt(data.shape)}")
    return TensorSpec((a["num_segments"],) + data.shape[k:], data.dtype)


def _uss_ref(v, a):
    data, ids = v
    n = a["num_segments"]
    out = np.zeros((n,) + data.shape[ids.ndim:], dtype=data.dtype)
    ok = (ids >= 0) & (ids < n)  # TensorFlow drops out-of-range ids
    np.add.at(out, ids[ok], data[ok])
    return out


def _uss_grad(x, y, dy, a):
    data, ids = x
    if not _float(data):
        return [None, None]
    ids_c = _ops().clip_by_value(ids, 0, a["num_segments"] - 1)
    valid = _ops().logical_and(_ops().greater_equal(ids, 0), _ops().less(ids, a["num_segments"]))
    g = gather(dy, ids_c, axis=0)
    for _ in range(data.ndim - ids.ndim):
        valid = expand_dims(valid, -1)
    return [_ops().where(valid, g, zeros_like(g)), None]


register(OpDef(
    "unsorted_segment_sum", fusion="opaque", infer=_uss_infer, reference=_uss_ref, grad=_uss_grad,
    doc="Sums of data rows per segment id (attrs['num_segments'] segments; other ids dropped)."))


def _index_tensor(indices) -> Tensor:
    """Indices as a tensor; an empty Python list becomes int32 (not float32)."""
    if isinstance(indices, Tensor) or hasattr(indices, "_as_tensor"):
        return convert_to_tensor(indices)
    arr = np.asarray(indices)
    return convert_to_tensor(arr.astype(np.int32) if arr.size == 0 else indices)


def gather(params, indices, axis=0, batch_dims=0, name=None, validate_indices=None) -> Tensor:
    """Pick slices of ``params`` along ``axis`` at ``indices`` (an int tensor or list).

        >>> import graphc as gc
        >>> emb = gc.constant([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
        >>> gc.Session().run(gc.gather(emb, [2, 0])).tolist()
        [[2.0, 2.0], [0.0, 0.0]]
    """
    p = convert_to_tensor(params)
    idx = _index_tensor(indices)
    if batch_dims:
        raise ValueError(f"gather: batch_dims={batch_dims} is not supported (only 0); gather per batch "
                         "row with gc.gather on a reshaped tensor instead")
    if axis is None:
        axis = 0
    if p.ndim == 0:
        raise ShapeError(f"gather '{name or 'gather'}': params is a scalar; it needs rank >= 1")
    (ax,) = normalize_axis(int(axis), p.ndim)
    return apply("gather", [p, idx], {"axis": ax}, name=name)


def unsorted_segment_sum(data, segment_ids, num_segments, name=None) -> Tensor:
    """``out[s] = sum of data[i] with segment_ids[i] == s`` for ``s < num_segments``.

        >>> import graphc as gc
        >>> r = gc.unsorted_segment_sum(gc.constant([1.0, 2.0, 3.0]), [1, 0, 1], 2)
        >>> gc.Session().run(r).tolist()
        [2.0, 4.0]
    """
    if isinstance(num_segments, Tensor):
        raise TypeError("unsorted_segment_sum: num_segments must be a Python int")
    return apply("unsorted_segment_sum", [convert_to_tensor(data), _index_tensor(segment_ids)],
                 {"num_segments": int(num_segments)}, name=name)


# ================================================================================================
# one_hot
# ================================================================================================
def _one_hot_infer(specs, a):
    (idx,) = specs
    if idx.dtype.kind != "i":
        raise DtypeError(f"indices must be int32 or int64, got {idx.dtype.name}")
    ax = a["axis"]
    return TensorSpec(idx.shape[:ax] + (a["depth"],) + idx.shape[ax:], a["dtype"])


def _one_hot_ref(v, a):
    idx = v[0]
    hot = idx[..., None] == np.arange(a["depth"])
    out = np.where(hot, a["on_value"], a["off_value"]).astype(a["dtype"])
    return np.moveaxis(out, -1, a["axis"])


register(OpDef(
    "one_hot", fusion="opaque", differentiable=False, infer=_one_hot_infer, reference=_one_hot_ref,
    doc="One-hot encoding (indices outside 0..depth-1 give all off_value, like TF)."))


def one_hot(indices, depth, on_value=1, off_value=0, axis=-1, dtype="float32", name=None) -> Tensor:
    """One-hot vectors of length ``depth`` inserted at ``axis`` (default last).

        >>> import graphc as gc
        >>> gc.Session().run(gc.one_hot([0, 2], 3)).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    idx = _index_tensor(indices)
    dt = _dt.as_dtype(dtype)
    r = idx.ndim + 1
    ax = int(axis)
    if not -r <= ax < r:
        raise ShapeError(f"one_hot '{name or 'one_hot'}': axis {ax} is out of range for output rank {r}")
    if int(depth) < 0:
        raise ShapeError(f"one_hot '{name or 'one_hot'}': depth must be >= 0, got {depth}")
    on, off = np.asarray(on_value).astype(dt).item(), np.asarray(off_value).astype(dt).item()
    return apply("one_hot", [idx], {"depth": int(depth), "on_value": on, "off_value": off,
                                    "axis": ax % r, "dtype": dt}, name=name)
