"""Keras-style weight initializers, computed in numpy when a layer is built.

An initializer is a callable ``init(shape, dtype="float32") -> np.ndarray``.
Those without an explicit ``seed`` draw from one module-level generator
(re-seed it with ``graphc.initializers.set_seed`` or
``graphc.utils.set_random_seed``), so a program that builds the same model
twice from the same seed gets the same weights.

    >>> from graphc import initializers
    >>> initializers.get("zeros")((2, 3)).tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    >>> initializers.GlorotUniform(seed=1)((4, 5)).shape
    (4, 5)
"""
from __future__ import annotations

import abc

import math

import numpy as np

from .object_registry import Registry

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeNormal",
           "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal", "Identity", "get",
           "serialize", "deserialize", "set_seed"]

_GLOBAL = [np.random.default_rng(1337)]


def set_seed(seed: int) -> None:
    """Re-seed the generator used by initializers created without a ``seed``."""
    _GLOBAL[0] = np.random.default_rng(seed)


def compute_fans(shape) -> tuple[float, float]:
    """(fan_in, fan_out) as Keras computes them (conv kernels: receptive field x channels)."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    rf = float(np.prod(shape[:-2]))
    return shape[-2] * rf, shape[-1] * rf


class Initializer(abc.ABC):
    """Base class: subclasses implement ``__call__(shape, dtype)`` and ``get_config``."""

    @abc.abstractmethod
    def __call__(self, shape, dtype="float32"):
        """A numpy array of ``shape`` and ``dtype``."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _rng(self):
        seed = getattr(self, "seed", None)
        if seed is None:
            return _GLOBAL[0]
        # a seeded initializer gives different draws on each call (like Keras), reproducibly
        self._calls = getattr(self, "_calls", 0) + 1
        return np.random.default_rng([int(seed), self._calls])

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.zeros(tuple(shape), dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.ones(tuple(shape), dtype=dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype="float32"):
        return np.full(tuple(shape), self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype="float32"):
        return self._rng().normal(self.mean, self.stddev, size=tuple(shape)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype="float32"):
        return self._rng().uniform(self.minval, self.maxval, size=tuple(shape)).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated(rng, shape, stddev):
    """Normal(0, stddev) redrawn outside two standard deviations."""
    out = rng.normal(0.0, 1.0, size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype="float32"):
        return (self.mean + _truncated(self._rng(), tuple(shape), self.stddev)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """Keras' VarianceScaling: scale / fan (fan_in, fan_out or fan_avg); normal or uniform."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"VarianceScaling: unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, fan)
        rng = self._rng()
        shape = tuple(shape)
        if self.distribution == "truncated_normal":
            out = _truncated(rng, shape, math.sqrt(scale) / 0.87962566103423978)
        elif self.distribution == "untruncated_normal":
            out = rng.normal(0.0, math.sqrt(scale), size=shape)
        else:
            limit = math.sqrt(3.0 * scale)
            out = rng.uniform(-limit, limit, size=shape)
        return out.astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


class _Preset(VarianceScaling):
    _args: tuple = ()

    def __init__(self, seed=None):
        super().__init__(*self._args, seed=seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_Preset):
    _args = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Preset):
    _args = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_Preset):
    _args = (2.0, "fan_in", "truncated_normal")


class HeUniform(_Preset):
    _args = (2.0, "fan_in", "uniform")


class LecunNormal(_Preset):
    _args = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_Preset):
    _args = (1.0, "fan_in", "uniform")


class Orthogonal(Initializer):
    """A (flattened) orthogonal matrix times ``gain`` (Keras' default recurrent kernel init)."""

    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype="float32"):
        shape = tuple(shape)
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        cols = shape[-1]
        a = self._rng().normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return np.ascontiguousarray((self.gain * q[:rows, :cols]).reshape(shape), dtype=dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype="float32"):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2-D shape, got {tuple(shape)}")
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


_REGISTRY = Registry("initializer", base=Initializer, none=None,
                     hint="a name such as 'glorot_uniform', a config dict, an Initializer or a "
                          "callable init(shape, dtype) returning an array")
for _cls, *_names in (
        (Zeros, "zeros", "zero"), (Ones, "ones", "one"), (Constant, "constant"),
        (RandomNormal, "random_normal", "normal"), (RandomUniform, "random_uniform", "uniform"),
        (TruncatedNormal, "truncated_normal"), (VarianceScaling, "variance_scaling"),
        (GlorotUniform, "glorot_uniform"), (GlorotNormal, "glorot_normal"),
        (HeNormal, "he_normal"), (HeUniform, "he_uniform"), (LecunNormal, "lecun_normal"),
        (LecunUniform, "lecun_uniform"), (Orthogonal, "orthogonal"), (Identity, "identity")):
    _REGISTRY.register(_cls, *_names)


def get(identifier, custom_objects=None):
    """An initializer from a name (``"he_normal"``), a config dict, an instance, an
    ``Initializer`` class or a callable; ``None`` gives ``None``.

        >>> type(get("glorot_uniform")).__name__
        'GlorotUniform'
    """
    return _REGISTRY.get(identifier, custom_objects)


def serialize(init) -> dict | str | None:
    """``{"class_name": ..., "config": ...}`` for an ``Initializer`` (``None`` stays ``None``)."""
    return _REGISTRY.serialize(init)


def deserialize(config, custom_objects=None):
    """An initializer from ``serialize``'s dict or a name."""
    return _REGISTRY.deserialize(config, custom_objects)
