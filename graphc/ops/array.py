"""Array (layout) ops: reshape, transpose, expand_dims, squeeze, concat, stack, slicing, gather,
pad, broadcast_to, tile (indexing ops live in ``indexing.py``, creation ops in ``creation.py``).

Most records have fusion class ``layout`` (they move data, no arithmetic).
Shapes may contain ``None`` (unknown, e.g. the batch): ops whose gradient
needs the run-time shape of a tensor use helper ops that read it from a
second input (``reshape_like``, ``broadcast_like``, ``strided_slice_grad``,
``concat_split``, ``pad_grad``, ``tile_grad``); each helper's gradient is the
op it is the adjoint of, so second-order gradients work.

    >>> import graphc as gc
    >>> x = gc.constant(np.arange(6.0).reshape(2, 3))
    >>> gc.Session().run(gc.transpose(x)[1:, ::-1]).tolist()
    [[4.0, 1.0], [5.0, 2.0]]
"""
from __future__ import annotations

import builtins

import numpy as np

from ..errors import DtypeError, ShapeError
from ..ir import Tensor, TensorSpec
from .registry import (OpDef, apply, broadcast_shapes, convert_to_tensor, normalize_axis, one_axis,
                       operands, register, same_dtype)

__all__ = [
    "reshape", "transpose", "expand_dims", "squeeze", "concat", "stack", "unstack", "pad", "broadcast_to",
    "broadcast_like", "tile", "reshape_like", "newaxis", "split",
]

newaxis = None  # x[:, gc.newaxis] inserts an axis, as in numpy

_slice = builtins.slice


def _ops():
    from .. import ops
    return ops


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _known(shape) -> bool:
    return all(d is not None for d in shape)


def _float(t: Tensor) -> bool:
    return t.dtype.kind == "f"


def _merge(a, b):
    """Merge two compatible static dims (``None`` = unknown)."""
    return b if a is None else a


def _ints(values, what: str) -> tuple:
    if isinstance(values, Tensor):
        raise TypeError(f"{what} must be static Python ints (a list or tuple), not a tensor")
    if isinstance(values, (int, np.integer)):
        values = (values,)
    try:
        return tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a list/tuple of ints, got {values!r}") from None


# ================================================================================================
# reshape
# ================================================================================================
def _reshape_infer(specs, a):
    (x,) = specs
    target = a["shape"]
    n_in = 1
    unknown_in = False
    for d in x.shape:
        if d is None:
            unknown_in = True
        else:
            n_in *= d
    known_t = 1
    for d in target:
        if d != -1:
            known_t *= d
    if target.count(-1) == 0:
        if not unknown_in and n_in != known_t:
            raise ShapeError(f"cannot reshape a tensor of {n_in} elements (shape {_fmt(x.shape)}) "
                             f"into shape {_fmt(target)} ({known_t} elements); the element counts "
                             "must match (use -1 for one dimension to infer it)")
        if unknown_in and n_in and known_t % n_in:
            raise ShapeError(f"cannot reshape shape {_fmt(x.shape)} into {_fmt(target)}: "
                             f"{known_t} elements is not a multiple of the known part {n_in}")
        return TensorSpec(tuple(target), x.dtype)
    if unknown_in:
        return TensorSpec(tuple(None if d == -1 else d for d in target), x.dtype)
    if known_t == 0 or n_in % known_t:
        raise ShapeError(f"cannot reshape a tensor of {n_in} elements (shape {_fmt(x.shape)}) into "
                         f"{_fmt(target)}: {n_in} is not divisible by {known_t}, the product of the "
                         "other dimensions")
    return TensorSpec(tuple(n_in // known_t if d == -1 else d for d in target), x.dtype)


def _reshape_back(dy: Tensor, x: Tensor) -> Tensor:
    """``dy`` reshaped to ``x``'s (possibly partly unknown) shape."""
    nones = sum(d is None for d in x.shape)
    if nones == 0:
        return reshape(dy, x.shape)
    if nones == 1:
        return reshape(dy, tuple(-1 if d is None else d for d in x.shape))
    return reshape_like(dy, x)


register(OpDef(
    "reshape", fusion="layout", view=True, infer=_reshape_infer,
    reference=lambda v, a: np.reshape(v[0], a["shape"]),
    grad=lambda x, y, dy, a: [_reshape_back(dy, x[0])],
    doc="Reshape to attrs['shape'] (one -1 is inferred; an unknown input with -1 gives None)."))


def _reshape_like_infer(specs, a):
    x, like = specs
    nx = 1 if _known(x.shape) else None
    nl = 1 if _known(like.shape) else None
    if nx is not None and nl is not None and int(np.prod(x.shape)) != int(np.prod(like.shape)):
        raise ShapeError(f"reshape_like: {_fmt(x.shape)} and {_fmt(like.shape)} have different "
                         "numbers of elements")
    return TensorSpec(like.shape, x.dtype)


register(OpDef(
    "reshape_like", fusion="layout", view=True, infer=_reshape_like_infer,
    reference=lambda v, a: np.reshape(v[0], v[1].shape),
    grad=lambda x, y, dy, a: [reshape_like(dy, x[0]), None],
    doc="Reshape input 0 to the run-time shape of input 1."))


def reshape(tensor, shape, name=None) -> Tensor:
    """Reshape ``tensor`` to ``shape``; one entry may be -1 (inferred). ``None`` counts as -1.

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 28, 28))
        >>> gc.reshape(x, (-1, 784)).shape
        (None, 784)
    """
    x = convert_to_tensor(tensor)
    target = tuple(-1 if d is None else d for d in _ints_or_none(shape, "reshape: shape"))
    if target.count(-1) > 1:
        raise ShapeError(f"reshape '{name or 'reshape'}': shape {target} has more than one -1 "
                         "(unknown) dimension; at most one can be inferred")
    if any(d < -1 for d in target):
        raise ShapeError(f"reshape '{name or 'reshape'}': shape {target} has a negative dimension")
    return apply("reshape", [x], {"shape": target}, name=name)


def _ints_or_none(values, what):
    if isinstance(values, Tensor):
        raise TypeError(f"{what} must be static (a list/tuple of ints), not a tensor; "
                        "use gc.reshape_like(x, other) for a run-time shape")
    if isinstance(values, (int, np.integer)):
        values = (values,)
    return tuple(None if v is None else int(v) for v in values)


def reshape_like(tensor, like, name=None) -> Tensor:
    """Reshape ``tensor`` to the run-time shape of ``like`` (same number of elements).

        >>> import graphc as gc
        >>> gc.reshape_like(gc.constant([1, 2, 3, 4]), gc.zeros((2, 2))).shape
        (2, 2)
    """
    return apply("reshape_like", [convert_to_tensor(tensor), convert_to_tensor(like)], name=name)


# ================================================================================================
# transpose, expand_dims, squeeze
# ================================================================================================
def _transpose_infer(specs, a):
    (x,) = specs
    perm = a["perm"]
    if sorted(perm) != list(range(len(x.shape))):
        raise ShapeError(f"perm {perm} is not a permutation of the {len(x.shape)} axes of a tensor of "
                         f"shape {_fmt(x.shape)}; give each of 0..{len(x.shape) - 1} once")
    return TensorSpec(tuple(x.shape[p] for p in perm), x.dtype)


register(OpDef(
    "transpose", fusion="layout", infer=_transpose_infer,
    reference=lambda v, a: np.transpose(v[0], a["perm"]),
    grad=lambda x, y, dy, a: [transpose(dy, tuple(int(i) for i in np.argsort(a["perm"])))],
    doc="Permute axes by attrs['perm']."))


def transpose(a, perm=None, name=None, conjugate=False) -> Tensor:
    """Permute the axes of ``a`` (default: reverse them); negative entries count from the end.

        >>> import graphc as gc
        >>> gc.transpose(gc.zeros((2, 3, 4)), perm=(0, 2, 1)).shape
        (2, 4, 3)
    """
    x = convert_to_tensor(a)
    r = x.ndim
    perm = tuple(range(r - 1, -1, -1)) if perm is None else tuple(
        p % r if -r <= p < 0 else p for p in _ints(perm, "transpose: perm"))
    return apply("transpose", [x], {"perm": perm}, name=name)


def _expand_infer(specs, a):
    (x,) = specs
    ax = a["axis"]
    if not 0 <= ax <= len(x.shape):
        raise ShapeError(f"axis {ax} is out of range for inserting into rank {len(x.shape)}")
    return TensorSpec(x.shape[:ax] + (1,) + x.shape[ax:], x.dtype)


register(OpDef(
    "expand_dims", fusion="layout", view=True, infer=_expand_infer,
    reference=lambda v, a: np.expand_dims(v[0], a["axis"]),
    grad=lambda x, y, dy, a: [squeeze(dy, a["axis"])],
    doc="Insert a size-1 axis at attrs['axis']."))


def expand_dims(input, axis, name=None) -> Tensor:
    """Insert a size-1 axis at ``axis`` (``-1`` appends one).

        >>> import graphc as gc
        >>> gc.expand_dims(gc.zeros((2, 3)), -1).shape
        (2, 3, 1)
    """
    x = convert_to_tensor(input)
    ax = int(axis)
    if not -(x.ndim + 1) <= ax <= x.ndim:
        raise ShapeError(f"expand_dims '{name or 'expand_dims'}': axis {ax} is out of range for a "
                         f"tensor of shape {_fmt(x.shape)}; valid axes are {-(x.ndim + 1)}..{x.ndim}")
    return apply("expand_dims", [x], {"axis": ax % (x.ndim + 1)}, name=name)


def _squeeze_infer(specs, a):
    (x,) = specs
    for ax in a["axis"]:
        if not 0 <= ax < len(x.shape):
            raise ShapeError(f"axis {ax} is out of range for rank {len(x.shape)}")
        if x.shape[ax] is not None and x.shape[ax] != 1:
            raise ShapeError(f"cannot squeeze axis {ax} of shape {_fmt(x.shape)}: its size is "
                             f"{x.shape[ax]}, not 1")
    return TensorSpec(tuple(d for i, d in enumerate(x.shape) if i not in a["axis"]), x.dtype)


def _squeeze_grad(x, y, dy, a):
    out = dy
    for ax in a["axis"]:
        out = expand_dims(out, ax)
    return [out]


register(OpDef(
    "squeeze", fusion="layout", view=True, infer=_squeeze_infer,
    reference=lambda v, a: np.reshape(v[0], [d for i, d in enumerate(v[0].shape) if i not in a["axis"]]),
    grad=_squeeze_grad,
    doc="Remove the size-1 axes attrs['axis'] (a None axis is checked at run time)."))


def squeeze(input, axis=None, name=None, squeeze_dims=None) -> Tensor:
    """Remove size-1 axes: ``axis=None`` removes every axis statically known to be 1.

        >>> import graphc as gc
        >>> gc.squeeze(gc.zeros((1, 3, 1))).shape
        (3,)
    """
    x = convert_to_tensor(input)
    if axis is None:
        axis = squeeze_dims
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axis(axis, x.ndim)
    return apply("squeeze", [x], {"axis": axes}, name=name)


# ================================================================================================
# concat, stack, unstack
# ================================================================================================
def _concat_infer(specs, a):
    if not specs:
        raise ShapeError("needs at least one tensor")
    dt = same_dtype(specs, "the tensors to concatenate")
    r = len(specs[0].shape)
    ax = a["axis"]
    if not 0 <= ax < r:
        raise ShapeError(f"axis {ax} is out of range for rank {r}")
    out = list(specs[0].shape)
    total = 0
    for k, s in enumerate(specs):
        if len(s.shape) != r:
            raise ShapeError(f"tensor {k} has rank {len(s.shape)} (shape {_fmt(s.shape)}) but tensor 0 has "
                             f"rank {r}; all tensors must have the same rank")
        for i, d in enumerate(s.shape):
            if i == ax:
                continue
            if d is not None and out[i] is not None and d != out[i]:
                raise ShapeError(f"tensor {k} has shape {_fmt(s.shape)} but tensor 0 has "
                                 f"{_fmt(specs[0].shape)}: all dimensions except the concat axis "
                                 f"{ax} must match (dimension {i}: {d} vs {out[i]})")
            out[i] = _merge(out[i], d)
        total = None if total is None or s.shape[ax] is None else total + s.shape[ax]
    out[ax] = total
    return TensorSpec(tuple(out), dt)


def _concat_grad(xs, y, dy, a):
    ax = a["axis"]
    if len(xs) == 1:
        return [dy]
    sizes = [x.shape[ax] for x in xs]
    if all(s is not None for s in sizes):
        out, off = [], 0
        for s in sizes:
            key = tuple(("s", None, None, None) if i != ax else ("s", off, off + s, None)
                        for i in range(dy.ndim))
            out.append(apply("strided_slice", [dy], {"key": key}))
            off += s
        return out
    return [apply("concat_split", [dy] + list(xs), {"axis": ax, "index": i}) for i in range(len(xs))]


register(OpDef(
    "concat", fusion="layout", infer=_concat_infer,
    reference=lambda v, a: np.concatenate(v, axis=a["axis"]),
    grad=_concat_grad, doc="Concatenate the inputs along attrs['axis']."))


def _concat_split_infer(specs, a):
    return TensorSpec(specs[1 + a["index"]].shape, specs[0].dtype)


def _concat_split_ref(v, a):
    dy, xs = v[0], v[1:]
    ax = a["axis"]
    off = sum(x.shape[ax] for x in xs[:a["index"]])
    n = xs[a["index"]].shape[ax]
    return np.take(dy, np.arange(off, off + n), axis=ax)


def _concat_split_grad(ins, y, ddy, a):
    xs = ins[1:]
    from .creation import zeros_like
    parts = [ddy if i == a["index"] else zeros_like(x) for i, x in enumerate(xs)]
    return [concat(parts, a["axis"])] + [None] * len(xs)


register(OpDef(
    "concat_split", fusion="layout", infer=_concat_split_infer, reference=_concat_split_ref,
    grad=_concat_split_grad,
    doc="Part attrs['index'] of input 0 split along attrs['axis'] like the concat of inputs 1..n "
        "(the gradient of concat when sizes are unknown)."))


def concat(values, axis, name=None) -> Tensor:
    """Join tensors along an existing ``axis`` (negative counts from the end).

        >>> import graphc as gc
        >>> gc.concat([gc.zeros((2, 3)), gc.ones((2, 1))], axis=1).shape
        (2, 4)
    """
    if isinstance(values, Tensor):
        values = [values]
    values = list(values)
    if not values:
        raise ShapeError(f"concat '{name or 'concat'}': needs at least one tensor, got an empty list")
    xs = operands(*values)
    r = xs[0].ndim
    if r == 0:
        raise ShapeError(f"concat '{name or 'concat'}': cannot concatenate scalars; use gc.stack")
    ax = int(axis)
    if not -r <= ax < r:
        raise ShapeError(f"concat '{name or 'concat'}': axis {ax} is out of range for tensors of "
                         f"rank {r}; valid axes are {-r}..{r - 1}")
    return apply("concat", xs, {"axis": ax % r}, name=name)


def _stack_infer(specs, a):
    if not specs:
        raise ShapeError("needs at least one tensor")
    dt = same_dtype(specs, "the tensors to stack")
    r = len(specs[0].shape)
    shape = list(specs[0].shape)
    for k, s in enumerate(specs):
        if len(s.shape) != r or any(d is not None and e is not None and d != e for d, e in zip(s.shape, shape)):
            raise ShapeError(f"tensor {k} has shape {_fmt(s.shape)} but tensor 0 has "
                             f"{_fmt(specs[0].shape)}; stack needs equal shapes")
        shape = [_merge(e, d) for e, d in zip(shape, s.shape)]
    ax = a["axis"]
    if not 0 <= ax <= r:
        raise ShapeError(f"axis {ax} is out of range for stacking rank-{r} tensors")
    return TensorSpec(tuple(shape[:ax]) + (len(specs),) + tuple(shape[ax:]), dt)


def _stack_grad(xs, y, dy, a):
    ax = a["axis"]
    return [apply("strided_slice", [dy],
                  {"key": tuple(("s", None, None, None) if j != ax else i for j in range(dy.ndim))})
            for i in range(len(xs))]


register(OpDef(
    "stack", fusion="layout", infer=_stack_infer,
    reference=lambda v, a: np.stack(v, axis=a["axis"]),
    grad=_stack_grad, doc="Stack equal-shaped inputs along a new axis attrs['axis']."))


def stack(values, axis=0, name=None) -> Tensor:
    """Stack tensors of one shape along a new ``axis``.

        >>> import graphc as gc
        >>> gc.stack([gc.zeros((2,)), gc.ones((2,))], axis=1).shape
        (2, 2)
    """
    if isinstance(values, Tensor):
        values = [values]
    values = list(values)
    if not values:
        raise ShapeError(f"stack '{name or 'stack'}': needs at least one tensor, got an empty list")
    xs = operands(*values)
    r = xs[0].ndim
    ax = int(axis)
    if not -(r + 1) <= ax <= r:
        raise ShapeError(f"stack '{name or 'stack'}': axis {ax} is out of range for stacking "
                         f"rank-{r} tensors; valid axes are {-(r + 1)}..{r}")
    return apply("stack", xs, {"axis": ax % (r + 1)}, name=name)


def unstack(value, num=None, axis=0, name=None) -> list:
    """Split ``value`` along ``axis`` into a list of tensors (the size must be static or ``num``).

        >>> import graphc as gc
        >>> [t.shape for t in gc.unstack(gc.zeros((2, 3)), axis=1)]
        [(2,), (2,), (2,)]
    """
    x = convert_to_tensor(value)
    if x.ndim == 0:
        raise ShapeError(f"unstack '{name or 'unstack'}': cannot unstack a scalar")
    (ax,) = normalize_axis(int(axis), x.ndim)
    n = x.shape[ax]
    if n is None:
        if num is None:
            raise ShapeError(f"unstack '{name or 'unstack'}': dimension {ax} of shape {_fmt(x.shape)} "
                             "is unknown; pass num= to say how many tensors to make")
        n = int(num)
    elif num is not None and int(num) != n:
        raise ShapeError(f"unstack '{name or 'unstack'}': num={num} but dimension {ax} has size {n}")
    return [apply("strided_slice", [x],
                  {"key": tuple(("s", None, None, None) if j != ax else i for j in range(x.ndim))},
                  name=name or "unstack") for i in range(n)]


def split(value, num_or_size_splits, axis=0, num=None, name="split") -> list:
    """Split ``value`` along ``axis`` into a list of tensors (TensorFlow's ``tf.split``).

    ``num_or_size_splits``: an int ``n`` (``n`` equal parts; the size must divide by ``n``), or a
    list of sizes summing to the dimension, one of which may be -1 (the rest). A composition: each
    part is a ``strided_slice`` of ``value`` (a view in the compiled runtime, no copy), and the parts'
    gradients are summed into one buffer (``strided_slice_grad_n``).

        >>> import graphc as gc
        >>> x = gc.constant([[1, 2, 3, 4, 5, 6]])
        >>> [gc.Session().run(t).tolist() for t in gc.split(x, 3, axis=1)]
        [[[1, 2]], [[3, 4]], [[5, 6]]]
        >>> [t.shape for t in gc.split(x, [1, -1, 2], axis=1)]
        [(1, 1), (1, 3), (1, 2)]
    """
    x = convert_to_tensor(value)
    who = f"split '{name or 'split'}'"
    ax = one_axis(axis, x, who)
    n = x.shape[ax]
    if isinstance(num_or_size_splits, Tensor):
        raise TypeError(f"{who}: num_or_size_splits must be a Python int or list of ints, not a tensor")
    if isinstance(num_or_size_splits, (int, np.integer)):
        k = int(num_or_size_splits)
        if k < 1:
            raise ShapeError(f"{who}: num_or_size_splits={k}; the number of parts must be >= 1")
        if n is None:
            raise ShapeError(f"{who}: dimension {ax} of shape {_fmt(x.shape)} is unknown, so {k} equal "
                             "parts have no static size; pass the sizes as a list (the last may be -1)")
        if n % k:
            raise ShapeError(f"{who}: dimension {ax} of shape {_fmt(x.shape)} has size {n}, which does "
                             f"not divide into {k} equal parts; pass a list of sizes instead")
        sizes = [n // k] * k
    else:
        sizes = _ints(num_or_size_splits, f"{who}: num_or_size_splits")
        if not sizes or any(d < -1 for d in sizes) or list(sizes).count(-1) > 1:
            raise ShapeError(f"{who}: size_splits {list(sizes)} must be non-negative sizes, at most one "
                             "of them -1 (the rest of the dimension)")
        sizes = list(sizes)
        known = sum(d for d in sizes if d != -1)
        if -1 in sizes:
            if n is not None:
                if known > n:
                    raise ShapeError(f"{who}: size_splits {sizes} add up to more than dimension {ax}'s "
                                     f"size {n} (shape {_fmt(x.shape)})")
                sizes[sizes.index(-1)] = n - known
        elif n is not None and known != n:
            raise ShapeError(f"{who}: size_splits {sizes} add up to {known}, but dimension {ax} of "
                             f"shape {_fmt(x.shape)} has size {n}; make them add up, or use -1 for one")
    if num is not None and int(num) != len(sizes):
        raise ShapeError(f"{who}: num={num} but num_or_size_splits makes {len(sizes)} parts")
    # bounds from the start up to a -1 (the rest of an unknown dimension), from the end after it
    rest = sizes.index(-1) if -1 in sizes else len(sizes)
    bounds = []
    for i, d in enumerate(sizes):
        if d == 0:
            bounds.append((0, 0))               # empty wherever it is
        elif i < rest:
            bounds.append((sum(sizes[:i]), sum(sizes[:i + 1])))
        else:
            after = sum(sizes[i + 1:])
            bounds.append((sum(sizes[:i]) if i == rest else -sum(sizes[i:]), -after if after else None))
    parts = []
    for begin, end in bounds:
        key = tuple(("s", begin, end, None) if j == ax else ("s", None, None, None) for j in range(x.ndim))
        parts.append(apply("strided_slice", [x], {"key": key}, name=name or "split"))
    return parts


# ================================================================================================
# pad
# ================================================================================================
def _pad_infer(specs, a):
    (x,) = specs
    pads = a["paddings"]
    if len(pads) != len(x.shape):
        raise ShapeError(f"paddings has {len(pads)} rows but the input has rank {len(x.shape)} "
                         f"(shape {_fmt(x.shape)}); give one [before, after] pair per dimension")
    out = []
    for i, ((b, e), d) in enumerate(zip(pads, x.shape)):
        if a["mode"] != "CONSTANT" and d is not None:
            lim = d - 1 if a["mode"] == "REFLECT" else d
            if b > lim or e > lim:
                raise ShapeError(f"{a['mode']} padding of ({b}, {e}) on dimension {i} of size {d} is "
                                 f"too large; at most {lim} is allowed")
        out.append(None if d is None else d + b + e)
    return TensorSpec(tuple(out), x.dtype)


def _pad_ref(v, a):
    x = v[0]
    if a["mode"] == "CONSTANT":
        return np.pad(x, a["paddings"], mode="constant",
                      constant_values=np.asarray(a["constant_values"]).astype(x.dtype))
    return np.pad(x, a["paddings"], mode=a["mode"].lower())


register(OpDef(
    "pad", fusion="layout", infer=_pad_infer, reference=_pad_ref,
    grad=lambda x, y, dy, a: [apply("pad_grad", [dy, x[0]],
                                    {"paddings": a["paddings"], "mode": a["mode"]})]
    if _float(x[0]) else [None],
    doc="Pad with attrs['paddings'] ((before, after) per dim); mode CONSTANT, REFLECT or SYMMETRIC."))


def _pad_grad_ref(v, a):
    dy, x = v
    out = dy
    for ax, (b, e) in enumerate(a["paddings"]):
        if b == 0 and e == 0:
            continue
        n = x.shape[ax]
        if a["mode"] == "CONSTANT":
            out = np.take(out, np.arange(b, b + n), axis=ax)
            continue
        src = np.pad(np.arange(n), (b, e), mode=a["mode"].lower())
        moved = np.moveaxis(out, ax, 0)
        acc = np.zeros((n,) + moved.shape[1:], dtype=dy.dtype)
        np.add.at(acc, src, moved)
        out = np.moveaxis(acc, 0, ax)
    return np.ascontiguousarray(out)


register(OpDef(
    "pad_grad", fusion="layout", infer=lambda s, a: TensorSpec(s[1].shape, s[0].dtype),
    reference=_pad_grad_ref,
    grad=lambda x, y, ddy, a: [pad(ddy, [list(p) for p in a["paddings"]], a["mode"]), None],
    doc="The adjoint of pad (input 1 gives the unpadded shape): slices for CONSTANT, folds the "
        "mirrored borders back for REFLECT/SYMMETRIC."))


def pad(tensor, paddings, mode="CONSTANT", constant_values=0, name=None) -> Tensor:
    """Pad ``tensor``: ``paddings[i] = [before, after]`` for dimension i.

    ``mode`` is ``"CONSTANT"`` (fill with ``constant_values``), ``"REFLECT"``
    (mirror without the edge) or ``"SYMMETRIC"`` (mirror with the edge).

        >>> import graphc as gc
        >>> gc.Session().run(gc.pad(gc.constant([1, 2]), [[1, 2]])).tolist()
        [0, 1, 2, 0, 0]
    """
    x = convert_to_tensor(tensor)
    if isinstance(paddings, Tensor):
        raise TypeError("pad: paddings must be static (a list of [before, after] pairs)")
    try:
        pads = tuple((int(b), int(e)) for b, e in paddings)
    except (TypeError, ValueError):
        raise ShapeError(f"pad '{name or 'pad'}': paddings must be a list of [before, after] pairs, "
                         f"got {paddings!r}") from None
    if any(b < 0 or e < 0 for b, e in pads):
        raise ShapeError(f"pad '{name or 'pad'}': paddings {pads} must be non-negative")
    m = str(mode).upper()
    if m not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise ValueError(f"pad '{name or 'pad'}': mode must be CONSTANT, REFLECT or SYMMETRIC, got {mode!r}")
    if isinstance(constant_values, Tensor):
        raise TypeError("pad: constant_values must be a Python number")
    cv = np.asarray(constant_values)
    if x.dtype.kind in "iub" and cv.dtype.kind == "f" and cv != np.round(cv):
        raise DtypeError(f"pad: constant_values {constant_values!r} is not exact in {x.dtype.name}")
    return apply("pad", [x], {"paddings": pads, "mode": m, "constant_values": cv.astype(x.dtype).item()},
                 name=name)


# ================================================================================================
# broadcast_to / broadcast_like / tile
# ================================================================================================
def _bt_infer(specs, a):
    (x,) = specs
    target = a["shape"]
    ok = len(x.shape) <= len(target)
    if ok:
        for d, t in zip(x.shape[::-1], target[::-1]):
            if d is not None and d != 1 and d != t:
                ok = False
    if not ok:
        raise ShapeError(f"cannot broadcast shape {_fmt(x.shape)} to {_fmt(target)}: each "
                         "dimension must be 1 or equal the target (aligned from the right)")
    return TensorSpec(tuple(target), x.dtype)


register(OpDef(
    "broadcast_to", fusion="layout", infer=_bt_infer,
    reference=lambda v, a: np.ascontiguousarray(np.broadcast_to(v[0], a["shape"])),
    grad=lambda x, y, dy, a: [_ops().sum_to_shape(dy, x[0].shape)],
    doc="numpy broadcast of the input to the static attrs['shape']."))


def _bl_infer(specs, a):
    x, like = specs
    try:
        broadcast_shapes(x.shape, like.shape)
    except ShapeError:
        raise ShapeError(f"cannot broadcast shape {_fmt(x.shape)} like {_fmt(like.shape)}") from None
    if len(x.shape) > len(like.shape):
        raise ShapeError(f"cannot broadcast rank-{len(x.shape)} shape {_fmt(x.shape)} to the lower rank "
                         f"shape {_fmt(like.shape)}")
    return TensorSpec(like.shape, x.dtype)


register(OpDef(
    # elementwise (its value is input 0 at every broadcast position; input 1 lends only its shape):
    # it fuses into its consumers instead of materialising the broadcast (a layer norm's backward
    # broadcast five (32, 28, 64) gradients, 14-16 us each, through the numpy reference)
    "broadcast_like", fusion="elementwise", scalar="{0}", infer=_bl_infer,
    # (ascontiguousarray makes a 0-d result 1-d: the reshape keeps a scalar's shape ())
    reference=lambda v, a: np.ascontiguousarray(np.broadcast_to(v[0], v[1].shape)).reshape(v[1].shape),
    grad=lambda x, y, dy, a: [_ops().sum_to_shape(dy, x[0].shape), None],
    doc="Broadcast input 0 to the run-time shape of input 1."))


def broadcast_to(input, shape, name=None) -> Tensor:
    """Broadcast ``input`` to a static ``shape`` (numpy rules).

        >>> import graphc as gc
        >>> gc.broadcast_to(gc.constant([1.0, 2.0]), (3, 2)).shape
        (3, 2)
    """
    x = convert_to_tensor(input)
    shape = _ints_or_none(shape, "broadcast_to: shape")
    if any(d is None or d < 0 for d in shape):
        raise ShapeError(f"broadcast_to '{name or 'broadcast_to'}': shape {shape} must be fully "
                         "known; use gc.broadcast_like(x, other) to match a run-time shape")
    return apply("broadcast_to", [x], {"shape": shape}, name=name)


def broadcast_like(input, like, name=None) -> Tensor:
    """Broadcast ``input`` to the run-time shape of ``like`` (works with ``None`` dimensions).

        >>> import graphc as gc
        >>> gc.broadcast_like(gc.constant([1.0, 2.0]), gc.placeholder("float32", (None, 2))).shape
        (None, 2)
    """
    return apply("broadcast_like", [convert_to_tensor(input), convert_to_tensor(like)], name=name)


def _tile_infer(specs, a):
    (x,) = specs
    m = a["multiples"]
    if len(m) != len(x.shape):
        raise ShapeError(f"multiples {m} needs one entry per dimension of shape {_fmt(x.shape)}")
    return TensorSpec(tuple(0 if k == 0 else (None if d is None else d * k) for d, k in zip(x.shape, m)),
                      x.dtype)


def _tile_grad(x, y, dy, a):
    (x,) = x
    if not _float(x):
        return [None]
    m = a["multiples"]
    if _known(x.shape):
        inter = tuple(v for k, d in zip(m, x.shape) for v in (k, d))
        r = _ops().reduce_sum(reshape(dy, inter), axis=tuple(range(0, 2 * x.ndim, 2)))
        return [r]
    return [apply("tile_grad", [dy, x], {"multiples": m})]


register(OpDef(
    "tile", fusion="layout", infer=_tile_infer,
    reference=lambda v, a: np.tile(v[0], a["multiples"]), grad=_tile_grad,
    doc="Repeat the input attrs['multiples'][i] times along dimension i."))


def _tile_grad_ref(v, a):
    dy, x = v
    inter = tuple(w for k, d in zip(a["multiples"], x.shape) for w in (k, d))
    return dy.reshape(inter).sum(axis=tuple(range(0, 2 * x.ndim, 2))).astype(dy.dtype, copy=False)


register(OpDef(
    "tile_grad", fusion="opaque", infer=lambda s, a: TensorSpec(s[1].shape, s[0].dtype),
    reference=_tile_grad_ref,
    grad=lambda x, y, ddy, a: [tile(ddy, a["multiples"]), None],
    doc="The adjoint of tile: sums the tiles of input 0 (input 1 gives the untiled shape)."))


def tile(input, multiples, name=None) -> Tensor:
    """Repeat ``input`` ``multiples[i]`` times along each dimension.

        >>> import graphc as gc
        >>> gc.Session().run(gc.tile(gc.constant([1, 2]), [2])).tolist()
        [1, 2, 1, 2]
    """
    x = convert_to_tensor(input)
    m = _ints(multiples, "tile: multiples")
    if any(k < 0 for k in m):
        raise ShapeError(f"tile '{name or 'tile'}': multiples {m} must be non-negative")
    return apply("tile", [x], {"multiples": m}, name=name)
