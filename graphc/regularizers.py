"""Weight regularizers (Keras names and defaults): penalties added to the loss as graph terms.

A regularizer is called on a weight tensor and returns a scalar tensor of the
weight's dtype; the model API adds it to the loss for ``kernel_regularizer=``.

    >>> import graphc as gc
    >>> w = gc.constant([[1.0, -2.0]])
    >>> gc.Session().run(gc.regularizers.L1L2(l1=0.1, l2=0.5)(w)).item()
    2.799999952316284
"""
from __future__ import annotations

import abc

from .object_registry import Registry

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1_l2", "get", "serialize", "deserialize"]


def _ops():
    from . import ops
    return ops


def _check(v, what):
    v = float(v)
    if not v >= 0:
        raise ValueError(f"{what} must be a non-negative number, got {v!r}")
    return v


class Regularizer(abc.ABC):
    """Base class: ``__call__(x) -> scalar tensor`` and ``get_config()``."""

    @abc.abstractmethod
    def __call__(self, x):
        """The penalty for weight tensor ``x``, a scalar graph term."""

    @abc.abstractmethod
    def get_config(self) -> dict:
        """The constructor arguments, for ``from_config``."""

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class L1(Regularizer):
    """``l1 * reduce_sum(abs(x))``."""

    def __init__(self, l1=0.01):
        self.l1 = _check(l1, "l1")

    def __call__(self, x):
        ops = _ops()
        x = ops.convert_to_tensor(x)
        return ops.reduce_sum(ops.abs(x)) * self.l1

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * reduce_sum(square(x))`` (no factor 1/2, as in Keras)."""

    def __init__(self, l2=0.01):
        self.l2 = _check(l2, "l2")

    def __call__(self, x):
        ops = _ops()
        x = ops.convert_to_tensor(x)
        return ops.reduce_sum(ops.square(x)) * self.l2

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * reduce_sum(abs(x)) + l2 * reduce_sum(square(x))`` (both default 0, as in Keras)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _check(l1, "l1")
        self.l2 = _check(l2, "l2")

    def __call__(self, x):
        ops = _ops()
        x = ops.convert_to_tensor(x)
        terms = ([ops.reduce_sum(ops.abs(x)) * self.l1] if self.l1 else []) + \
            ([ops.reduce_sum(ops.square(x)) * self.l2] if self.l2 else [])
        if not terms:   # in x's graph, which need not be the default one
            with x.graph.as_default():
                return ops.zeros((), x.dtype)
        return terms[0] + terms[1] if len(terms) == 2 else terms[0]

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


def l1_l2(l1=0.01, l2=0.01) -> L1L2:
    """Keras' ``l1_l2``: an ``L1L2`` with both factors 0.01 by default (the ``"l1_l2"`` name)."""
    return L1L2(l1=l1, l2=l2)


_REGISTRY = Registry("regularizer", base=Regularizer, none=None,
                     hint="a name such as 'l2', a config dict, a Regularizer or a callable "
                          "taking a weight tensor and returning a scalar tensor")
_REGISTRY.register(L1, "l1")
_REGISTRY.register(L2, "l2")
_REGISTRY.register(L1L2, "l1l2")
_REGISTRY.register(l1_l2, "l1_l2", factory=True)


def serialize(regularizer: Regularizer) -> dict:
    """``{"class_name": ..., "config": ...}`` for ``deserialize``."""
    return _REGISTRY.serialize(regularizer)


def deserialize(config: dict, custom_objects=None) -> Regularizer:
    """A regularizer from ``serialize``'s dict or a name."""
    return _REGISTRY.deserialize(config, custom_objects)


def get(identifier, custom_objects=None):
    """A regularizer from a name (``"l1"``, ``"l2"``, ``"l1_l2"``), a config dict, an instance or
    any callable; ``None`` gives ``None``.

        >>> get("l2").get_config()
        {'l2': 0.01}
    """
    return _REGISTRY.get(identifier, custom_objects)
