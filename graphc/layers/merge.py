"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate.

    >>> from graphc.layers import Input, Add, Concatenate
    >>> a, b = Input(shape=(4,)), Input(shape=(4,))
    >>> Add()([a, b]).shape, Concatenate()([a, b]).shape
    ((None, 4), (None, 8))
"""
from __future__ import annotations

from functools import reduce

from .base import Layer


def _ops():
    from .. import ops
    return ops


def _broadcast_shape(shapes):
    def dim(a, b):
        if a == b or b == 1:
            return a
        if a == 1:
            return b
        if a is None or b is None:
            return a if b is None else b
        raise ValueError(f"merge: incompatible shapes {shapes}")
    out = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(out):
            raise ValueError(f"merge: inputs have different ranks: {shapes}")
        out = [dim(a, b) for a, b in zip(out, s)]
    return tuple(out)


class _Merge(Layer):
    """Base of the elementwise merge layers: each subclass defines ``_merge(a, b)`` on two tensors."""

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{type(self).__name__} needs a list of at least 2 inputs")
        return reduce(self._merge, inputs)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{type(self).__name__} needs a list of at least 2 inputs")
        return _broadcast_shape(input_shape)


class Add(_Merge):
    def _merge(self, a, b):
        return a + b


class Subtract(_Merge):
    def call(self, inputs, training=None):
        self._check_two(inputs)
        return inputs[0] - inputs[1]

    def compute_output_shape(self, input_shape):   # checked when the model is defined, too
        self._check_two(input_shape)
        return super().compute_output_shape(input_shape)

    def _check_two(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            n = len(inputs) if isinstance(inputs, (list, tuple)) else "not a list of"
            raise ValueError(f"Subtract {self.name!r} needs exactly 2 inputs, got {n} inputs")


class Multiply(_Merge):
    def _merge(self, a, b):
        return a * b


class Maximum(_Merge):
    def _merge(self, a, b):
        return _ops().maximum(a, b)


class Minimum(_Merge):
    def _merge(self, a, b):
        return _ops().minimum(a, b)


class Average(_Merge):
    def call(self, inputs, training=None):
        return super().call(inputs) * (1.0 / len(inputs))

    def _merge(self, a, b):
        return a + b


class Concatenate(Layer):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, training=None):
        return _ops().concat(list(inputs), axis=self.axis)

    def compute_output_shape(self, input_shape):
        rank = len(input_shape[0])
        ax = self.axis % rank
        out = list(input_shape[0])
        dims = [s[ax] for s in input_shape]
        out[ax] = None if any(d is None for d in dims) else sum(dims)
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)
