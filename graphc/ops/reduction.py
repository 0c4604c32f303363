"""Reductions (reduce_sum/mean/max/min/prod/any/all, reduce_logsumexp/variance/std, argmax/argmin),
the cumulative sum ``cumsum`` and ``sum_to_shape``.

Every reduction record has attrs ``{"axis": sorted tuple of non-negative ints,
"keepdims": bool}`` and fusion class ``reduction`` (``cumsum``, a scan, has ``{"axis": int,
"exclusive": bool, "reverse": bool}`` and fusion class ``opaque``). Reducing over a ``None``
(unknown) dimension works: the reference sees the real size at run time.

    >>> import graphc as gc
    >>> x = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> gc.Session().run(gc.reduce_sum(x, axis=1)).tolist()
    [3.0, 7.0]

Gradient conventions:

* ``reduce_max``/``reduce_min`` follow TensorFlow: the incoming gradient is
  split *equally* between all elements equal to the extremum (two tied maxima
  each receive half).
* ``reduce_prod``'s gradient is the product of all *other* elements (exact also
  when the input contains zeros); it is computed by the helper op
  ``reduce_prod_grad``, which has no second-order gradient.
* ``reduce_logsumexp``'s gradient is ``dy * exp(x - y)`` (the softmax over the axes),
  ``reduce_variance``'s ``dy * 2 (x - mean) / n``; ``reduce_std`` is ``sqrt(reduce_variance)``
  (TensorFlow's definition: its gradient is not finite where the variance is 0).
* ``cumsum``'s gradient is the cumulative sum of ``dy`` the other way (``reverse`` flipped).
* ``reduce_any``/``reduce_all``/``argmax``/``argmin`` are not differentiable.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import dtypes as _dt
from ..errors import DtypeError, ShapeError
from ..ir import Tensor, TensorSpec
from .registry import OpDef, apply, convert_to_tensor, normalize_axis, one_axis, register

__all__ = [
    "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_any",
    "reduce_all", "argmax", "argmin", "sum_to_shape", "count_nonzero", "reduce_logsumexp",
    "reduce_variance", "reduce_std", "cumsum",
]


def _ops():
    from .. import ops
    return ops


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


# -- shape rules ---------------------------------------------------------------------------------
def _reduced_shape(shape: tuple, axis: tuple, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axis else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axis)


def _check_axis(x: TensorSpec, axis: tuple):
    for a in axis:
        if not 0 <= a < len(x.shape):
            raise ShapeError(f"axis {a} is out of range for a tensor of rank {len(x.shape)} "
                             f"(shape {_fmt(x.shape)}); valid axes are {-len(x.shape)}..{len(x.shape) - 1}")


def _reduce_infer(kinds: str, what: str):
    def infer(specs, a):
        (x,) = specs
        if x.dtype.kind not in kinds:
            hint = ("use gc.cast(x, 'float32') (or 'int32') first" if "b" not in kinds
                    else "compare first (e.g. x > 0) to get a bool tensor")
            raise DtypeError(f"{what} does not accept dtype {x.dtype.name}; {hint}")
        _check_axis(x, a["axis"])
        return TensorSpec(_reduced_shape(x.shape, a["axis"], a["keepdims"]), x.dtype)
    return infer


def _np_reduce(fn, empty_fill=None):
    def ref(v, a):
        x = v[0]
        ax = a["axis"]
        if empty_fill is not None and any(x.shape[i] == 0 for i in ax):
            out_shape = _reduced_shape(x.shape, ax, a["keepdims"])
            return np.full(out_shape, empty_fill(x.dtype), dtype=x.dtype)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            r = fn(x, axis=ax, keepdims=a["keepdims"])
        return np.asarray(r).astype(x.dtype, copy=False)
    return ref


def _lowest(dt):
    return -np.inf if dt.kind == "f" else np.iinfo(dt).min


def _highest(dt):
    return np.inf if dt.kind == "f" else np.iinfo(dt).max


def _mean(x, axis, keepdims):
    if x.dtype.kind in "iu":  # TensorFlow: integer mean stays integer (truncating division)
        n = int(np.prod([x.shape[i] for i in axis], dtype=np.int64))
        s = np.sum(x, axis=axis, keepdims=keepdims, dtype=np.int64)
        if n == 0:
            return np.zeros_like(s)
        q = np.abs(s) // n
        return np.where(s < 0, -q, q)
    return np.mean(x, axis=axis, keepdims=keepdims)


# -- gradients -----------------------------------------------------------------------------------
def _keep(dy: Tensor, x: Tensor, a) -> Tensor:
    """``dy`` (the reduction's output gradient) broadcast back to ``x``'s shape."""
    ops = _ops()
    if not a["keepdims"]:
        for ax in a["axis"]:  # ascending: each insert lands at its final position
            dy = ops.expand_dims(dy, ax)
    if all(d is not None for d in x.shape):
        if tuple(dy.shape) == tuple(x.shape):
            return dy
        return ops.broadcast_to(dy, x.shape)
    return ops.broadcast_like(dy, x)


def _reduce_sum_grad(inputs, output, dy, a):
    (x,) = inputs
    if x.dtype.kind != "f":
        return [None]
    return [_keep(dy, x, a)]


def _count(x: Tensor, axis: tuple) -> Tensor:
    """Number of elements of ``x`` over ``axis``, as a scalar of ``x.dtype`` (runtime if unknown)."""
    ops = _ops()
    dims = [x.shape[i] for i in axis]
    if all(d is not None for d in dims):
        from .state import constant
        return constant(np.array(np.prod(dims, dtype=np.int64), dtype=x.dtype))
    sh = ops.shape(x, out_type="int64")
    n = reduce_prod(ops.gather(sh, list(axis)))
    return ops.cast(n, x.dtype)


def _reduce_mean_grad(inputs, output, dy, a):
    (x,) = inputs
    if x.dtype.kind != "f":
        return [None]
    return [_ops().divide(_keep(dy, x, a), _count(x, a["axis"]))]


def _minmax_grad(inputs, output, dy, a):
    (x,) = inputs
    if x.dtype.kind != "f":
        return [None]
    ops = _ops()
    y = _keep(output, x, a)
    mask = ops.cast(ops.equal(x, y), x.dtype)
    n = reduce_sum(mask, axis=a["axis"], keepdims=True)
    return [ops.divide(ops.multiply(mask, _keep(dy, x, a)), n)]


def _prod_grad_ref(v, a):
    x, dyb = v  # dyb: the gradient already broadcast to x's shape
    ax = a["axis"]
    rest = [i for i in range(x.ndim) if i not in ax]
    perm = rest + list(ax)
    xt = np.transpose(x, perm)
    lead = xt.shape[:len(rest)]
    n = int(np.prod([x.shape[i] for i in ax], dtype=np.int64))
    flat = xt.reshape(lead + (n,))      # not (-1,): a size-0 kept dimension leaves -1 ambiguous
    left = np.ones_like(flat)
    right = np.ones_like(flat)
    if n > 1:
        left[..., 1:] = np.cumprod(flat[..., :-1], axis=-1)
        right[..., :-1] = np.cumprod(flat[..., ::-1][..., :-1], axis=-1)[..., ::-1]
    others = (left * right).reshape(xt.shape)
    inv = np.argsort(perm)
    return (np.transpose(others, inv) * dyb).astype(x.dtype, copy=False)


register(OpDef(
    "reduce_prod_grad", fusion="opaque", differentiable=False,
    infer=lambda s, a: TensorSpec(s[0].shape, s[0].dtype),
    reference=_prod_grad_ref,
    doc="Gradient of reduce_prod: dy times the product of the other reduced elements "
        "(inputs: x, dy broadcast to x's shape). No second-order gradient."))


def _reduce_prod_grad(inputs, output, dy, a):
    (x,) = inputs
    if x.dtype.kind != "f":
        return [None]
    return [apply("reduce_prod_grad", [x, _keep(dy, x, a)], {"axis": a["axis"]})]


# -- records -------------------------------------------------------------------------------------
register(OpDef("reduce_sum", fusion="reduction", reduce=True, infer=_reduce_infer("fi", "reduce_sum"),
               reference=_np_reduce(np.sum), grad=_reduce_sum_grad,
               doc="Sum over attrs['axis']."))
register(OpDef("reduce_mean", fusion="reduction", reduce=True, infer=_reduce_infer("fi", "reduce_mean"),
               reference=_np_reduce(_mean), grad=_reduce_mean_grad,
               doc="Mean over attrs['axis'] (integer inputs: truncating integer mean, like TF)."))
register(OpDef("reduce_max", fusion="reduction", reduce=True, infer=_reduce_infer("fi", "reduce_max"),
               reference=_np_reduce(np.max, _lowest), grad=_minmax_grad,
               doc="Max over attrs['axis'] (empty: the dtype's lowest value, like TF)."))
register(OpDef("reduce_min", fusion="reduction", reduce=True, infer=_reduce_infer("fi", "reduce_min"),
               reference=_np_reduce(np.min, _highest), grad=_minmax_grad,
               doc="Min over attrs['axis'] (empty: the dtype's highest value, like TF)."))
register(OpDef("reduce_prod", fusion="reduction", reduce=True, infer=_reduce_infer("fi", "reduce_prod"),
               reference=_np_reduce(np.prod), grad=_reduce_prod_grad,
               doc="Product over attrs['axis']."))
register(OpDef("reduce_any", fusion="reduction", reduce=True, differentiable=False,
               infer=_reduce_infer("b", "reduce_any"), reference=_np_reduce(np.any),
               doc="Logical or over attrs['axis']."))
register(OpDef("reduce_all", fusion="reduction", reduce=True, differentiable=False,
               infer=_reduce_infer("b", "reduce_all"), reference=_np_reduce(np.all),
               doc="Logical and over attrs['axis']."))


# -- logsumexp, variance: float reductions with a kernel each (runtime/kernels_reduce.py) ---------------
def _logsumexp_ref(v, a):
    # TensorFlow's stable form: the max is subtracted first, except where it is not finite (all
    # -inf, an inf or a NaN), where 0 is; an empty reduction is log(0) = -inf
    x, ax, kd = v[0], a["axis"], a["keepdims"]
    if any(x.shape[i] == 0 for i in ax):
        return np.full(_reduced_shape(x.shape, ax, kd), -np.inf, x.dtype)
    with np.errstate(all="ignore"):
        m = np.max(x, axis=ax, keepdims=True)
        m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
        r = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    return (r if kd else np.squeeze(r, axis=ax)).astype(x.dtype, copy=False)


def _logsumexp_grad(inputs, output, dy, a):
    (x,) = inputs
    ops = _ops()
    return [ops.multiply(_keep(dy, x, a), ops.exp(ops.subtract(x, _keep(output, x, a))))]


def _variance_ref(v, a):
    x, ax = v[0], a["axis"]
    if any(x.shape[i] == 0 for i in ax):
        return np.full(_reduced_shape(x.shape, ax, a["keepdims"]), np.nan, x.dtype)
    with np.errstate(all="ignore"):
        return np.var(x, axis=ax, keepdims=a["keepdims"]).astype(x.dtype, copy=False)


def _variance_grad(inputs, output, dy, a):
    (x,) = inputs
    ops = _ops()
    centered = ops.subtract(x, reduce_mean(x, axis=a["axis"], keepdims=True))
    scale = ops.divide(_count(x, a["axis"]), 2.0)
    return [ops.divide(ops.multiply(_keep(dy, x, a), centered), scale)]


register(OpDef("reduce_logsumexp", fusion="reduction", infer=_reduce_infer("f", "reduce_logsumexp"),
               reference=_logsumexp_ref, grad=_logsumexp_grad,
               doc="log(sum(exp(x))) over attrs['axis'], computed stably (empty: -inf)."))
register(OpDef("reduce_variance", fusion="reduction", infer=_reduce_infer("f", "reduce_variance"),
               reference=_variance_ref, grad=_variance_grad,
               doc="Population variance (mean of squared deviations) over attrs['axis'] (empty: NaN)."))


# -- cumsum -------------------------------------------------------------------------------------------
def _cumsum_infer(specs, a):
    (x,) = specs
    if x.dtype.kind not in "fi":
        raise DtypeError(f"cumsum does not accept dtype {x.dtype.name}; use gc.cast(x, 'int32') or "
                         "a float dtype first")
    if len(x.shape) == 0:
        raise ShapeError("cumsum needs a tensor of rank >= 1, got a scalar; reshape it to (1,) first")
    _check_axis(x, (a["axis"],))
    return TensorSpec(x.shape, x.dtype)


def _cumsum_ref(v, a):
    x, ax = v[0], a["axis"]
    if a["reverse"]:
        x = np.flip(x, ax)
    r = np.cumsum(x, axis=ax, dtype=x.dtype)
    if a["exclusive"]:          # shifted by one: the first is 0, each other the sum before it
        shifted = np.zeros_like(r)
        take = [slice(None)] * x.ndim
        put = list(take)
        take[ax], put[ax] = slice(None, -1), slice(1, None)
        shifted[tuple(put)] = r[tuple(take)]
        r = shifted
    if a["reverse"]:
        r = np.flip(r, ax)
    return np.ascontiguousarray(r)


def _cumsum_grad(inputs, output, dy, a):
    (x,) = inputs
    if x.dtype.kind != "f":
        return [None]
    return [apply("cumsum", [dy], {**a, "reverse": not a["reverse"]})]


register(OpDef("cumsum", fusion="opaque", infer=_cumsum_infer, reference=_cumsum_ref, grad=_cumsum_grad,
               doc="Running sum along attrs['axis'] (exclusive: of the elements before; reverse: "
                   "from the end), accumulated in the input's dtype."))


def _arg_infer(what):
    def infer(specs, a):
        (x,) = specs
        if x.dtype.kind not in "fi":
            raise DtypeError(f"{what} does not accept dtype {x.dtype.name}; cast to a number first")
        if len(x.shape) == 0:
            raise ShapeError(f"{what} needs a tensor of rank >= 1, got a scalar")
        _check_axis(x, a["axis"])
        (ax,) = a["axis"]
        if x.shape[ax] == 0:
            raise ShapeError(f"{what} over axis {ax} of size 0 (shape {_fmt(x.shape)}) has no answer")
        return TensorSpec(tuple(d for i, d in enumerate(x.shape) if i != ax), a["output_type"])
    return infer


register(OpDef("argmax", fusion="reduction", differentiable=False, infer=_arg_infer("argmax"),
               reference=lambda v, a: np.argmax(v[0], axis=a["axis"][0]).astype(a["output_type"]),
               doc="Index of the largest element along the single axis attrs['axis'] (first one on ties)."))
register(OpDef("argmin", fusion="reduction", differentiable=False, infer=_arg_infer("argmin"),
               reference=lambda v, a: np.argmin(v[0], axis=a["axis"][0]).astype(a["output_type"]),
               doc="Index of the smallest element along the single axis attrs['axis'] (first one on ties)."))


# -- public functions ----------------------------------------------------------------------------
def _reduce(op, input_tensor, axis, keepdims, name, reduction_indices=None, keep_dims=None):
    x = convert_to_tensor(input_tensor)
    if axis is None and reduction_indices is not None:
        axis = reduction_indices
    if keep_dims is not None:
        keepdims = keep_dims
    if isinstance(axis, Tensor):
        raise TypeError(f"{op}: axis must be a Python int or tuple of ints, not a tensor")
    if axis is not None and not isinstance(axis, (int, np.integer)) and len(tuple(axis)) == 0:
        axes = ()
    else:
        try:
            axes = normalize_axis(axis, x.ndim)
        except ShapeError as e:
            raise ShapeError(f"{op} '{name or op}': {e} (input shape {_fmt(x.shape)}); "
                             f"valid axes are {-x.ndim}..{x.ndim - 1}") from None
    return apply(op, [x], {"axis": axes, "keepdims": bool(keepdims)}, name=name)


def reduce_sum(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
               keep_dims=None) -> Tensor:
    """Sum of elements over ``axis`` (None: all axes; int or tuple; negative counts from the end).

        >>> import graphc as gc
        >>> gc.Session().run(gc.reduce_sum(gc.constant([[1, 2], [3, 4]]), axis=0)).tolist()
        [4, 6]
    """
    return _reduce("reduce_sum", input_tensor, axis, keepdims, name, reduction_indices, keep_dims)


def reduce_mean(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
                keep_dims=None) -> Tensor:
    """Mean over ``axis``; an integer tensor gives a (truncated) integer mean, as in TensorFlow.

        >>> import graphc as gc
        >>> gc.Session().run(gc.reduce_mean(gc.constant([1.0, 2.0, 6.0]))).item()
        3.0
    """
    return _reduce("reduce_mean", input_tensor, axis, keepdims, name, reduction_indices, keep_dims)


def reduce_max(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
               keep_dims=None) -> Tensor:
    """Maximum over ``axis``. Gradient: split equally among tied maxima.

        >>> import graphc as gc
        >>> gc.Session().run(gc.reduce_max(gc.constant([[1.0, 5.0], [3.0, 4.0]]), axis=1)).tolist()
        [5.0, 4.0]
    """
    return _reduce("reduce_max", input_tensor, axis, keepdims, name, reduction_indices, keep_dims)


def reduce_min(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
               keep_dims=None) -> Tensor:
    """Minimum over ``axis``. Gradient: split equally among tied minima.

        >>> import graphc as gc
        >>> gc.Session().run(gc.reduce_min(gc.constant([2, -1, 7]))).item()
        -1
    """
    return _reduce("reduce_min", input_tensor, axis, keepdims, name, reduction_indices, keep_dims)


def reduce_prod(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
                keep_dims=None) -> Tensor:
    """Product over ``axis``.

        >>> import graphc as gc
        >>> gc.Session().run(gc.reduce_prod(gc.constant([2.0, 3.0, 4.0]))).item()
        24.0
    """
    return _reduce("reduce_prod", input_tensor, axis, keepdims, name, reduction_indices, keep_dims)


def reduce_any(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
               keep_dims=None) -> Tensor:
    """Logical or over ``axis`` of a bool tensor.

        >>> import graphc as gc
        >>> gc.Session().run(gc.reduce_any(gc.constant([False, True]))).item()
        True
    """
    return _reduce("reduce_any", input_tensor, axis, keepdims, name, reduction_indices, keep_dims)


def reduce_all(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None,
               keep_dims=None) -> Tensor:
    """Logical and over ``axis`` of a bool tensor.

        >>> import graphc as gc
        >>> gc.Session().run(gc.reduce_all(gc.constant([False, True]))).item()
        False
    """
    return _reduce("reduce_all", input_tensor, axis, keepdims, name, reduction_indices, keep_dims)


def count_nonzero(input_tensor, axis=None, keepdims=False, dtype="int64", name=None) -> Tensor:
    """Number of non-zero (or True) elements over ``axis``.

        >>> import graphc as gc
        >>> gc.Session().run(gc.count_nonzero(gc.constant([0.0, 2.0, 3.0]))).item()
        2
    """
    ops = _ops()
    x = convert_to_tensor(input_tensor)
    nz = ops.not_equal(x, ops.zeros_like(x)) if x.dtype.kind != "b" else x
    return reduce_sum(ops.cast(nz, dtype), axis=axis, keepdims=keepdims, name=name)


def reduce_logsumexp(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """``log(sum(exp(x)))`` over ``axis``, without overflow: the max is subtracted first (as
    TensorFlow does; an all ``-inf`` slice gives ``-inf``, an empty one ``-inf``). Float tensors.

        >>> import graphc as gc
        >>> x = gc.constant([[0.0, 0.0, 0.0], [1000.0, 1000.0, 0.0]])
        >>> [round(v, 3) for v in gc.Session().run(gc.reduce_logsumexp(x, axis=1)).tolist()]
        [1.099, 1000.693]
    """
    return _reduce("reduce_logsumexp", input_tensor, axis, keepdims, name)


def reduce_variance(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Variance over ``axis``: the mean of the squared deviations from the mean (divisor ``n``,
    as TensorFlow and ``np.var``). Float tensors; an empty reduction gives NaN.

        >>> import graphc as gc
        >>> x = gc.constant([[1.0, 2.0], [3.0, 4.0]])
        >>> gc.Session().run(gc.reduce_variance(x)).item(), gc.Session().run(gc.reduce_variance(x, 0)).tolist()
        (1.25, [1.0, 1.0])
    """
    return _reduce("reduce_variance", input_tensor, axis, keepdims, name)


def reduce_std(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    """Standard deviation over ``axis``: ``sqrt(reduce_variance(x))``, TensorFlow's definition (a
    composition: the variance kernel, then an elementwise sqrt; its gradient is infinite where the
    variance is 0).

        >>> import graphc as gc
        >>> gc.Session().run(gc.reduce_std(gc.constant([[1.0, 2.0], [3.0, 4.0]]), axis=0)).tolist()
        [1.0, 1.0]
    """
    return _ops().sqrt(reduce_variance(input_tensor, axis, keepdims), name=name)


def cumsum(x, axis=0, exclusive=False, reverse=False, name=None) -> Tensor:
    """Cumulative sum along ``axis`` (TensorFlow's ``tf.math.cumsum``). ``exclusive``: each
    element is the sum of the ones before it (the first is 0); ``reverse``: summed from the end.
    Accumulates in the input's dtype, in order (as ``np.cumsum``).

        >>> import graphc as gc
        >>> x = gc.constant([1, 2, 3])
        >>> s = gc.Session()
        >>> s.run(gc.cumsum(x)).tolist(), s.run(gc.cumsum(x, exclusive=True)).tolist()
        ([1, 3, 6], [0, 1, 3])
        >>> s.run(gc.cumsum(x, reverse=True)).tolist(), s.run(gc.cumsum(x, exclusive=True, reverse=True)).tolist()
        ([6, 5, 3], [5, 3, 0])
    """
    t = convert_to_tensor(x)
    ax = one_axis(axis, t, f"cumsum '{name or 'cumsum'}'")
    return apply("cumsum", [t], {"axis": ax, "exclusive": bool(exclusive), "reverse": bool(reverse)},
                 name=name)


def _arg(op, input, axis, output_type, name, dimension):
    x = convert_to_tensor(input)
    if axis is None:
        axis = dimension if dimension is not None else 0  # TensorFlow 1: axis None means 0
    if isinstance(axis, Tensor):
        raise TypeError(f"{op}: axis must be a Python int, not a tensor")
    if x.ndim == 0:
        raise ShapeError(f"{op} '{name or op}': the input is a scalar; {op} needs rank >= 1")
    (ax,) = normalize_axis(int(axis), x.ndim)
    dt = _dt.as_dtype(output_type)
    if dt.kind != "i":
        raise DtypeError(f"{op}: output_type must be int32 or int64, got {dt.name}")
    return apply(op, [x], {"axis": (ax,), "keepdims": False, "output_type": dt}, name=name)


def argmax(input, axis=None, output_type="int64", name=None, dimension=None) -> Tensor:
    """Index of the largest value along ``axis`` (TF1: ``axis=None`` means 0); int64 by default.

        >>> import graphc as gc
        >>> gc.Session().run(gc.argmax(gc.constant([[1.0, 9.0], [8.0, 2.0]]), axis=1)).tolist()
        [1, 0]
    """
    return _arg("argmax", input, axis, output_type, name, dimension)


def argmin(input, axis=None, output_type="int64", name=None, dimension=None) -> Tensor:
    """Index of the smallest value along ``axis`` (TF1: ``axis=None`` means 0); int64 by default.

        >>> import graphc as gc
        >>> gc.Session().run(gc.argmin(gc.constant([3, 1, 2]))).item()
        1
    """
    return _arg("argmin", input, axis, output_type, name, dimension)


# -- gradient helper -----------------------------------------------------------------------------
def sum_to_shape(dy: Tensor, shape: tuple) -> Tensor:
    """Undo numpy broadcasting: sum ``dy`` down to ``shape`` (used by every broadcasting gradient).

    Sums over the leading dimensions ``dy`` has in excess and over every
    dimension where ``shape`` has 1 but ``dy`` does not; ``None`` (unknown)
    dimensions on both sides are taken to be equal.

        >>> import graphc as gc
        >>> g = gc.constant(np.ones((4, 2, 3), np.float32))
        >>> r = sum_to_shape(g, (1, 3))
        >>> r.shape, gc.Session().run(r).tolist()
        ((1, 3), [[8.0, 8.0, 8.0]])
    """
    shape = tuple(shape)
    dshape = tuple(dy.shape)
    if dshape == shape:
        return dy
    lead = len(dshape) - len(shape)
    if lead < 0:
        raise ShapeError(f"sum_to_shape: gradient of shape {_fmt(dshape)} has fewer dimensions "
                         f"than the target shape {_fmt(shape)}")
    for t, d in zip(shape, dshape[lead:]):
        if t is not None and d is not None and t != 1 and t != d:
            raise ShapeError(f"sum_to_shape: gradient of shape {_fmt(dshape)} cannot be summed "
                             f"down to {_fmt(shape)} (not a broadcast of it)")
    out = dy
    if lead:
        out = reduce_sum(out, axis=tuple(range(lead)))
    ones = tuple(i for i, (t, d) in enumerate(zip(shape, dshape[lead:])) if t == 1 and d != 1)
    if ones:
        out = reduce_sum(out, axis=ones, keepdims=True)
    return out
