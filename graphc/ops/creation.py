"""Creation ops and shape queries: zeros, ones, fill, zeros_like, ones_like, shape, size, rank.

``zeros``/``ones``/``fill`` build constants; ``zeros_like``/``ones_like`` are ops
because they follow the run-time shape of their input (``None`` dimensions).

    >>> import graphc as gc
    >>> x = gc.placeholder("float32", (None, 2))
    >>> gc.Session().run(gc.ones_like(x), {x: np.zeros((3, 2))}).shape
    (3, 2)
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..errors import DtypeError, ShapeError
from ..ir import Tensor, TensorSpec
from .array import _ints_or_none
from .registry import OpDef, apply, convert_to_tensor, register

__all__ = ["zeros", "ones", "zeros_like", "ones_like", "fill", "shape", "size", "rank"]

def _static_shape(shape, what):
    shape = _ints_or_none(shape, what)
    if any(d is None or d < 0 for d in shape):
        raise ShapeError(f"{what} {shape} must be fully known and non-negative; for a shape with "
                         "unknown (None) dimensions use zeros_like/ones_like of a tensor")
    return shape


def zeros(shape, dtype="float32", name=None) -> Tensor:
    """A constant of zeros with a static ``shape``.

        >>> import graphc as gc
        >>> gc.zeros((2, 3), "int32").dtype.name
        'int32'
    """
    from .state import constant
    shape = _static_shape(shape, "zeros: shape")
    return constant(np.zeros(shape, _dt.as_dtype(dtype)), name=name or "zeros")


def ones(shape, dtype="float32", name=None) -> Tensor:
    """A constant of ones with a static ``shape``.

        >>> import graphc as gc
        >>> gc.Session().run(gc.ones((2,))).tolist()
        [1.0, 1.0]
    """
    from .state import constant
    shape = _static_shape(shape, "ones: shape")
    return constant(np.ones(shape, _dt.as_dtype(dtype)), name=name or "ones")


def fill(dims, value, name=None) -> Tensor:
    """A constant of shape ``dims`` filled with ``value`` (dtype from the value, TF-style).

        >>> import graphc as gc
        >>> gc.Session().run(gc.fill([2], 7)).tolist()
        [7, 7]
    """
    from .state import constant
    shape = _static_shape(dims, "fill: dims")
    v = _dt.array_for_value(value)
    if v.ndim:
        raise ShapeError(f"fill: value must be a scalar, got shape {v.shape}")
    return constant(np.full(shape, v, dtype=v.dtype), name=name or "fill")


def _like_infer(specs, a):
    return TensorSpec(specs[0].shape, a["dtype"])


register(OpDef(
    "zeros_like", fusion="opaque", infer=_like_infer, reads_shape_only=True,
    reference=lambda v, a: np.zeros(v[0].shape, a["dtype"]),
    grad=lambda x, y, dy, a: [None], doc="Zeros with the run-time shape of the input."))
register(OpDef(
    "ones_like", fusion="opaque", infer=_like_infer, reads_shape_only=True,
    reference=lambda v, a: np.ones(v[0].shape, a["dtype"]),
    grad=lambda x, y, dy, a: [None], doc="Ones with the run-time shape of the input."))


def zeros_like(tensor, dtype=None, name=None) -> Tensor:
    """Zeros with the (run-time) shape of ``tensor``; dtype defaults to its dtype.

        >>> import graphc as gc
        >>> gc.zeros_like(gc.placeholder("float32", (None, 3))).shape
        (None, 3)
    """
    x = convert_to_tensor(tensor)
    dt = x.dtype if dtype is None else _dt.as_dtype(dtype)
    return apply("zeros_like", [x], {"dtype": dt}, name=name)


def ones_like(tensor, dtype=None, name=None) -> Tensor:
    """Ones with the (run-time) shape of ``tensor``; dtype defaults to its dtype.

        >>> import graphc as gc
        >>> gc.Session().run(gc.ones_like(gc.constant([5, 6]))).tolist()
        [1, 1]
    """
    x = convert_to_tensor(tensor)
    dt = x.dtype if dtype is None else _dt.as_dtype(dtype)
    return apply("ones_like", [x], {"dtype": dt}, name=name)


def _int_out(a):
    if a["out_type"] not in _dt.INTS:
        raise DtypeError(f"out_type must be int32 or int64, got {a['out_type'].name}")
    return a["out_type"]


register(OpDef(
    "shape", fusion="opaque", reads_shape_only=True, differentiable=False,
    infer=lambda s, a: TensorSpec((len(s[0].shape),), _int_out(a)),
    reference=lambda v, a: np.array(v[0].shape, dtype=a["out_type"]),
    doc="The run-time shape of the input as a 1-D int tensor."))
register(OpDef(
    "size", fusion="opaque", reads_shape_only=True, differentiable=False,
    infer=lambda s, a: TensorSpec((), _int_out(a)),
    reference=lambda v, a: np.array(v[0].size, dtype=a["out_type"]),
    doc="The run-time number of elements of the input."))


def shape(input, out_type="int32", name=None) -> Tensor:
    """The run-time shape of ``input`` as a 1-D int tensor (``tf.shape``).

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 3))
        >>> gc.Session().run(gc.shape(x), {x: np.zeros((5, 3))}).tolist()
        [5, 3]
    """
    return apply("shape", [convert_to_tensor(input)], {"out_type": _dt.as_dtype(out_type)}, name=name)


def size(input, out_type="int32", name=None) -> Tensor:
    """The run-time number of elements of ``input`` (a scalar int tensor).

        >>> import graphc as gc
        >>> gc.Session().run(gc.size(gc.zeros((2, 3)))).item()
        6
    """
    return apply("size", [convert_to_tensor(input)], {"out_type": _dt.as_dtype(out_type)}, name=name)


def rank(input, name=None) -> Tensor:
    """The (static) rank of ``input`` as a scalar int32 constant.

        >>> import graphc as gc
        >>> gc.Session().run(gc.rank(gc.zeros((2, 3)))).item()
        2
    """
    from .state import constant
    return constant(np.int32(convert_to_tensor(input).ndim), name=name or "rank")
