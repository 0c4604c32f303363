"""Learning-rate schedules (Keras names and formulas), evaluated in the graph from a step tensor.

A schedule is called with the optimizer's ``iterations`` (the number of
updates already applied) and returns the learning rate for the next update.
Called with a graph tensor it builds elementwise graph ops (so the rate is part
of the compiled training step); called with a Python number it computes the
same formula with numpy (handy for plotting and tests).

    >>> import graphc as gc
    >>> lr = gc.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    >>> round(float(lr(10)), 6)
    0.05
    >>> opt = gc.optimizers.SGD(learning_rate=lr)   # evaluated from opt.iterations each step
"""
from __future__ import annotations

import abc

import math

import numpy as np

from .ir import Tensor
from .object_registry import Registry

__all__ = ["LearningRateSchedule", "ExponentialDecay", "CosineDecay", "InverseTimeDecay",
           "PiecewiseConstantDecay", "serialize", "deserialize", "get"]


class _NumpyMath:
    """The few math functions the schedules need, on numpy float32 scalars."""
    f = np.float32

    def cast(self, x):
        return np.asarray(x, dtype=np.float32)

    pow = staticmethod(lambda a, b: np.power(np.float32(a), np.float32(b)).astype(np.float32))
    floor = staticmethod(np.floor)
    cos = staticmethod(lambda x: np.cos(x).astype(np.float32))
    minimum = staticmethod(lambda a, b: np.minimum(a, np.float32(b)))
    where = staticmethod(lambda c, a, b: np.where(c, a, b).astype(np.float32))
    less = staticmethod(lambda a, b: np.less(a, b))
    const = staticmethod(lambda v: np.float32(v))


class _GraphMath:
    """The same functions as graph ops (elementwise, so they fuse)."""

    def __init__(self):
        from . import ops
        self.ops = ops

    def cast(self, x):
        return self.ops.cast(x, "float32")

    def pow(self, a, b):
        return self.ops.pow(a, b)

    def floor(self, x):
        return self.ops.floor(x)

    def cos(self, x):
        return self.ops.cos(x)

    def minimum(self, a, b):
        return self.ops.minimum(a, b)

    def where(self, c, a, b):
        return self.ops.where(c, a, b)

    def less(self, a, b):
        return self.ops.less(a, b)

    def const(self, v):
        return self.ops.constant(np.float32(v))


def _math(step):
    return _GraphMath() if isinstance(step, Tensor) else _NumpyMath()


class LearningRateSchedule(abc.ABC):
    """Base class: subclasses implement ``__call__(step)`` and ``get_config()``."""

    @abc.abstractmethod
    def __call__(self, step):
        """The learning rate at ``step`` (a graph tensor or a number)."""

    @abc.abstractmethod
    def get_config(self) -> dict:
        """The constructor arguments, for ``from_config``."""

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _StepDecay(LearningRateSchedule):
    """Shared by the decays of ``step / decay_steps`` (floored with ``staircase``); subclasses give ``_rate``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        if decay_steps <= 0:
            raise ValueError(f"{type(self).__name__}: decay_steps must be > 0, got {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name or type(self).__name__

    def __call__(self, step):
        m = _math(step)
        p = m.cast(step) / np.float32(self.decay_steps)
        if self.staircase:
            p = m.floor(p)
        return self._rate(m, p)

    @abc.abstractmethod
    def _rate(self, m, p):
        """The learning rate at progress ``p`` (with ``m`` the graph or numpy math)."""

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase`` the
    exponent is floored (the rate drops every ``decay_steps`` steps).

        >>> s = ExponentialDecay(1.0, decay_steps=2, decay_rate=0.5, staircase=True)
        >>> [float(s(i)) for i in range(4)]
        [1.0, 1.0, 0.5, 0.5]
    """

    def _rate(self, m, p):
        return m.pow(np.float32(self.decay_rate), p) * np.float32(self.initial_learning_rate)


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` to ``alpha * initial_learning_rate`` over
    ``decay_steps`` steps (constant afterwards); optional linear warmup to ``warmup_target``
    over ``warmup_steps`` first, as in Keras:

    ``decayed = (1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha``,
    ``lr = initial_learning_rate * decayed``.

        >>> s = CosineDecay(1.0, decay_steps=4)
        >>> [round(float(s(i)), 4) for i in (0, 2, 4, 9)]
        [1.0, 0.5, 0.0, 0.0]
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        if decay_steps <= 0:
            raise ValueError(f"CosineDecay: decay_steps must be > 0, got {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.alpha = float(alpha)
        self.name = name
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = warmup_steps

    def _decay(self, m, step, decay_from):
        completed = step / np.float32(self.decay_steps)
        cosine = (m.cos(completed * np.float32(math.pi)) + np.float32(1.0)) * np.float32(0.5)
        decayed = cosine * np.float32(1.0 - self.alpha) + np.float32(self.alpha)
        return decayed * np.float32(decay_from)

    def __call__(self, step):
        m = _math(step)
        s = m.cast(step)
        if self.warmup_target is None:
            return self._decay(m, m.minimum(s, np.float32(self.decay_steps)), self.initial_learning_rate)
        s = m.minimum(s, np.float32(self.decay_steps + self.warmup_steps))
        ws = np.float32(max(self.warmup_steps, 1))
        warm = s / ws * np.float32(self.warmup_target - self.initial_learning_rate) \
            + np.float32(self.initial_learning_rate)
        decay = self._decay(m, s - np.float32(self.warmup_steps), self.warmup_target)
        return m.where(m.less(s, np.float32(self.warmup_steps)), warm, decay)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (floored with staircase)."""

    def _rate(self, m, p):
        return np.float32(self.initial_learning_rate) / (p * np.float32(self.decay_rate) + np.float32(1.0))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]`` (Keras semantics).

        >>> s = PiecewiseConstantDecay([2, 4], [1.0, 0.5, 0.1])
        >>> [round(float(s(i)), 6) for i in (0, 2, 3, 5)]
        [1.0, 1.0, 0.5, 0.1]
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstantDecay: need len(values) == len(boundaries) + 1, got "
                             f"{len(values)} values and {len(boundaries)} boundaries")
        self.boundaries = list(boundaries)
        self.values = [float(v) for v in values]
        self.name = name

    def __call__(self, step):
        m = _math(step)
        s = m.cast(step)
        out = m.const(self.values[-1])
        for b, v in reversed(list(zip(self.boundaries, self.values[:-1]))):
            out = m.where(m.less(np.float32(b), s), out, m.const(v))
        return out

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


_REGISTRY = Registry("learning-rate schedule", base=LearningRateSchedule,
                     hint="a float, a LearningRateSchedule or a serialize() dict")
for _cls in (ExponentialDecay, CosineDecay, InverseTimeDecay, PiecewiseConstantDecay):
    _REGISTRY.register(_cls)


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": ...}`` for ``deserialize``."""
    return _REGISTRY.serialize(schedule)


def deserialize(config: dict, custom_objects=None) -> LearningRateSchedule:
    """Rebuild a schedule from ``serialize``'s dict."""
    return _REGISTRY.deserialize(config, custom_objects)


def get(identifier, custom_objects=None):
    """A schedule from a ``serialize`` dict; anything else (a float, a schedule, a tensor) is
    returned as is, since an optimizer's learning rate may be any of those.

        >>> get({"class_name": "InverseTimeDecay", "config": {"initial_learning_rate": 1.0,
        ...      "decay_steps": 1, "decay_rate": 1.0}})(1).item()
        0.5
    """
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    return identifier
