"""Keras-style utilities: ``to_categorical``, ``normalize``, ``set_random_seed``.

    >>> from graphc.utils import to_categorical
    >>> to_categorical([0, 2], num_classes=3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
"""
from __future__ import annotations

import numpy as np

__all__ = ["to_categorical", "normalize", "set_random_seed"]


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels (a trailing axis of size 1 is dropped, as in Keras)."""
    y = np.asarray(y, dtype="int64")
    shape = y.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    y = y.reshape(-1)
    if y.size and y.min() < 0:
        raise ValueError("to_categorical: labels must be non-negative integers")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and y.max() >= num_classes:
        raise ValueError(f"to_categorical: label {int(y.max())} is out of range for "
                         f"num_classes={num_classes}")
    out = np.zeros((y.shape[0], num_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Scale ``x`` to unit ``order``-norm along ``axis`` (zero vectors stay zero)."""
    x = np.asarray(x)
    n = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    n[n == 0] = 1
    return x / n


def set_random_seed(seed: int) -> None:
    """Seed weight initialization (``graphc.initializers``), numpy's global generator and the
    graph-level seed of random ops in graphs created afterwards."""
    from . import initializers
    initializers.set_seed(seed)
    np.random.seed(seed)
    try:
        from .ops.random import set_random_seed as _graph_seed
        _graph_seed(seed)
    except Exception:  # pragma: no cover - random ops module without a global seed
        pass
