"""Normalization: ``moments`` (mean and variance over axes) and ``batch_normalization``.

Both are compositions of graph ops, TensorFlow's own definitions: ``moments`` is one
``reduce_mean`` and one ``reduce_variance`` (each a kernel, ``runtime/kernels_reduce.py``);
``batch_normalization`` is elementwise arithmetic that fusion compiles into one generated loop
(with the per-channel ``rsqrt(variance + eps) * scale`` in a small kernel of its own when the
statistics have fewer elements than ``x``). Their gradients are the compositions' gradients.

    >>> import graphc as gc
    >>> x = gc.constant([[1.0, 2.0], [3.0, 6.0]])
    >>> mean, var = gc.nn.moments(x, axes=[0])
    >>> y = gc.nn.batch_normalization(x, mean, var, offset=None, scale=None, variance_epsilon=0.0)
    >>> gc.Session().run([mean, var, y])[2].tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
"""
from __future__ import annotations

from ..errors import DtypeError, ShapeError
from ..ir import Tensor
from .registry import _fmt, convert_to_tensor, operands

__all__ = ["moments", "batch_normalization"]


def _ops():
    from .. import ops
    return ops


def moments(x, axes, shift=None, keepdims=False, name=None, keep_dims=None) -> tuple:
    """Mean and variance of ``x`` over ``axes`` (TensorFlow's ``tf.nn.moments``): a tuple
    ``(reduce_mean(x, axes), reduce_variance(x, axes))``, with the reduced axes kept as size 1 if
    ``keepdims``. ``shift`` is accepted and unused, as in TensorFlow 2 (the variance kernel
    subtracts the mean itself, in float64). For batch normalization of NHWC images, ``axes=[0, 1, 2]``.

        >>> import graphc as gc
        >>> mean, var = gc.nn.moments(gc.constant([[1.0, 2.0], [3.0, 6.0]]), axes=[0])
        >>> [v.tolist() for v in gc.Session().run([mean, var])]
        [[2.0, 4.0], [1.0, 4.0]]
    """
    ops = _ops()
    t = convert_to_tensor(x)
    if t.dtype.kind != "f":
        raise DtypeError(f"moments '{name or 'moments'}': x has dtype {t.dtype.name}; the mean and "
                         "variance of an integer tensor need gc.cast(x, 'float32') first")
    if keep_dims is not None:
        keepdims = keep_dims
    if axes is None or isinstance(axes, Tensor):
        raise TypeError(f"moments '{name or 'moments'}': axes must be a Python int or list of ints "
                        f"(the axes to reduce), got {axes!r}")
    scope = name or "moments"
    return (ops.reduce_mean(t, axes, keepdims=keepdims, name=f"{scope}/mean"),
            ops.reduce_variance(t, axes, keepdims=keepdims, name=f"{scope}/variance"))


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon, name=None) -> Tensor:
    """``(x - mean) * scale / sqrt(variance + variance_epsilon) + offset`` (TensorFlow's
    ``tf.nn.batch_normalization``, computed as TensorFlow does: ``inv = rsqrt(variance + eps) *
    scale``, then ``x * inv + (offset - mean * inv)``). ``mean``, ``variance``, ``offset`` and
    ``scale`` broadcast to ``x``'s shape (usually one value per channel, or the ``keepdims``
    moments); ``offset``/``scale`` may be None (0 and 1).

        >>> import graphc as gc
        >>> y = gc.nn.batch_normalization(gc.constant([1.0, 3.0]), 2.0, 4.0, offset=10.0, scale=2.0,
        ...                               variance_epsilon=0.0)
        >>> gc.Session().run(y).tolist()
        [9.0, 11.0]
    """
    ops = _ops()
    who = f"batch_normalization '{name or 'batchnorm'}'"
    t = convert_to_tensor(x)
    if t.dtype.kind != "f":
        raise DtypeError(f"{who}: x has dtype {t.dtype.name}; normalize a float tensor "
                         "(gc.cast(x, 'float32'))")
    named = {"mean": mean, "variance": variance, "offset": offset, "scale": scale}
    given = {k: v for k, v in named.items() if v is not None}
    try:
        vals = operands(t, *given.values(), variance_epsilon)
    except DtypeError as e:
        raise DtypeError(f"{who}: {e}") from None
    stats = dict(zip(given, vals[1:-1]))
    eps = vals[-1]
    for k, v in list(stats.items()) + [("variance_epsilon", eps)]:
        if v.dtype != t.dtype:
            raise DtypeError(f"{who}: {k} has dtype {v.dtype.name} but x has {t.dtype.name}; "
                             "use gc.cast so that they match")
        # broadcasts to x without growing it (None, unknown, is checked at run time)
        if len(v.shape) > len(t.shape) or not all(
                d in (1, None) or e is None or d == e for d, e in zip(reversed(v.shape), reversed(t.shape))):
            raise ShapeError(f"{who}: {k} of shape {_fmt(v.shape)} does not broadcast to x's shape "
                             f"{_fmt(t.shape)}; give one value per channel (shape ({t.shape[-1]},) for "
                             "channels last) or use gc.nn.moments(..., keepdims=True)")
    inv = ops.rsqrt(stats["variance"] + eps)
    if "scale" in stats:
        inv = inv * stats["scale"]
    shift = (stats["offset"] - stats["mean"] * inv) if "offset" in stats else -(stats["mean"] * inv)
    return ops.add(t * inv, shift, name=name)
