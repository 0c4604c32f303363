"""Linear algebra: ``matmul`` (2-D and batched with broadcast batch dimensions).

    >>> import graphc as gc
    >>> a = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> gc.Session().run(gc.matmul(a, a, transpose_b=True)).tolist()
    [[5.0, 11.0], [11.0, 25.0]]

``matmul`` has fusion class ``contraction``; its attrs are
``{"transpose_a": bool, "transpose_b": bool}``. Integer matmul stays integer.
"""
from __future__ import annotations

import numpy as np

from ..errors import DtypeError, ShapeError
from ..ir import Tensor, TensorSpec
from .registry import OpDef, apply, broadcast_shapes, operands, register, same_dtype

__all__ = ["matmul", "linalg_matmul", "batch_matmul", "matvec", "tensordot"]


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _matmul_infer(specs, a):
    sa, sb = specs
    dt = same_dtype(specs, "a and b")
    if dt.kind not in "fi":
        raise DtypeError(f"matmul needs numbers, got {dt.name}; cast with gc.cast(x, 'float32')")
    for nm, s in (("a", sa), ("b", sb)):
        if len(s.shape) < 2:
            raise ShapeError(f"{nm} has shape {_fmt(s.shape)} (rank {len(s.shape)}) but matmul needs rank >= 2; "
                             f"use gc.expand_dims({nm}, 0) (row vector) or gc.expand_dims({nm}, -1) "
                             "(column vector), or gc.matvec")
    ta, tb = a["transpose_a"], a["transpose_b"]
    m, k1 = (sa.shape[-1], sa.shape[-2]) if ta else (sa.shape[-2], sa.shape[-1])
    k2, n = (sb.shape[-1], sb.shape[-2]) if tb else (sb.shape[-2], sb.shape[-1])
    if k1 is not None and k2 is not None and k1 != k2:
        ea = "a" + (" (transposed)" if ta else "")
        eb = "b" + (" (transposed)" if tb else "")
        hint = ""
        if not tb and k1 == sb.shape[-1]:
            hint = "; did you mean transpose_b=True?"
        elif not ta and sa.shape[-2] == k2:
            hint = "; did you mean transpose_a=True?"
        raise ShapeError(f"inner dimensions differ: a is {_fmt(sa.shape)} and b is {_fmt(sb.shape)}; "
                         f"the columns of {ea} ({k1}) must equal the rows of {eb} ({k2}){hint}")
    try:
        batch = broadcast_shapes(sa.shape[:-2], sb.shape[:-2])
    except ShapeError:
        raise ShapeError(f"batch dimensions of a {_fmt(sa.shape)} and b {_fmt(sb.shape)} cannot be "
                         f"broadcast ({_fmt(sa.shape[:-2])} vs {_fmt(sb.shape[:-2])}); they must be "
                         "equal or 1") from None
    return TensorSpec(batch + (m, n), dt)


def _matmul_ref(v, a):
    x, y = v
    if a["transpose_a"]:
        x = np.swapaxes(x, -1, -2)
    if a["transpose_b"]:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y).astype(v[0].dtype, copy=False)


def _matmul_grad(inputs, output, dy, a):
    x, y = inputs
    if x.dtype.kind != "f":
        return [None, None]
    from .reduction import sum_to_shape
    ta, tb = a["transpose_a"], a["transpose_b"]
    if not ta and not tb:
        da = matmul(dy, y, transpose_b=True)
        db = matmul(x, dy, transpose_a=True)
    elif ta and not tb:
        da = matmul(y, dy, transpose_b=True)
        db = matmul(x, dy)
    elif not ta and tb:
        da = matmul(dy, y)
        db = matmul(dy, x, transpose_a=True)
    else:
        da = matmul(y, dy, transpose_a=True, transpose_b=True)
        db = matmul(dy, x, transpose_a=True, transpose_b=True)
    return [sum_to_shape(da, x.shape), sum_to_shape(db, y.shape)]


register(OpDef(
    "matmul", fusion="contraction", epilogue=True, infer=_matmul_infer, reference=_matmul_ref,
    grad=_matmul_grad,
    doc="Matrix product of the last two dimensions (batch dimensions broadcast); "
        "attrs transpose_a/transpose_b."))


def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False,
           name=None) -> Tensor:
    """Matrix product ``a @ b`` over the last two dimensions; leading (batch) dimensions broadcast.

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 784))
        >>> w = gc.zeros((784, 10))
        >>> gc.matmul(x, w).shape
        (None, 10)
    """
    x, y = operands(a, b)
    return apply("matmul", [x, y], {"transpose_a": bool(transpose_a or adjoint_a),
                                    "transpose_b": bool(transpose_b or adjoint_b)}, name=name)


linalg_matmul = batch_matmul = matmul


def matvec(a, b, transpose_a=False, name=None) -> Tensor:
    """Matrix-vector product: ``a`` is ``(..., m, n)``, ``b`` is ``(..., n)``; gives ``(..., m)``.

        >>> import graphc as gc
        >>> gc.Session().run(gc.matvec(gc.constant([[1.0, 2.0]]), gc.constant([3.0, 4.0]))).tolist()
        [11.0]
    """
    from .array import expand_dims, squeeze
    x, y = operands(a, b)
    if y.ndim < 1:
        raise ShapeError(f"matvec '{name or 'matvec'}': b must be a vector (rank >= 1), got a scalar")
    r = matmul(x, expand_dims(y, -1), transpose_a=transpose_a)
    return squeeze(r, axis=-1, name=name)


def tensordot(a, b, axes, name=None) -> Tensor:
    """Sum products over ``axes`` (an int N: last N of a with first N of b; or a pair of lists).

    Built from transpose, reshape and matmul, so it needs the contracted and
    free dimensions of ``b`` and the contracted dimensions of ``a`` to be known.

        >>> import graphc as gc
        >>> gc.tensordot(gc.zeros((2, 3, 4)), gc.zeros((3, 4, 5)), axes=2).shape
        (2, 5)
    """
    from .array import reshape, transpose
    x, y = operands(a, b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        ax_a, ax_b = list(range(x.ndim - n, x.ndim)), list(range(n))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    ax_a = [int(i) % x.ndim for i in ax_a]
    ax_b = [int(i) % y.ndim for i in ax_b]
    if len(ax_a) != len(ax_b):
        raise ShapeError(f"tensordot '{name or 'tensordot'}': axes {ax_a} and {ax_b} differ in length")
    for i, j in zip(ax_a, ax_b):
        if x.shape[i] is not None and y.shape[j] is not None and x.shape[i] != y.shape[j]:
            raise ShapeError(f"tensordot '{name or 'tensordot'}': axis {i} of a {_fmt(x.shape)} and "
                             f"axis {j} of b {_fmt(y.shape)} differ ({x.shape[i]} vs {y.shape[j]})")
    free_a = [i for i in range(x.ndim) if i not in ax_a]
    free_b = [j for j in range(y.ndim) if j not in ax_b]
    k = 1
    for j in ax_b:
        if y.shape[j] is None:
            raise ShapeError(f"tensordot '{name or 'tensordot'}': contracted dimensions must be known")
        k *= y.shape[j]
    nb = 1
    for j in free_b:
        if y.shape[j] is None:
            raise ShapeError(f"tensordot '{name or 'tensordot'}': the free dimensions of b must be known")
        nb *= y.shape[j]
    xa = reshape(transpose(x, free_a + ax_a), (-1, k))
    yb = reshape(transpose(y, ax_b + free_b), (k, nb))
    out_shape = tuple(-1 if x.shape[i] is None else x.shape[i] for i in free_a) + \
        tuple(y.shape[j] for j in free_b)
    if sum(1 for d in out_shape if d == -1) > 1:
        raise ShapeError(f"tensordot '{name or 'tensordot'}': at most one free dimension of a may be unknown")
    return reshape(matmul(xa, yb), out_shape, name=name)
