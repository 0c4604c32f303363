"""Keras-style activation functions on graph tensors; ``get`` resolves names and callables.

    >>> import graphc as gc
    >>> from graphc import activations
    >>> x = gc.constant([-1.0, 2.0])
    >>> gc.Session().run(activations.get("relu")(x)).tolist()
    [0.0, 2.0]
"""
from __future__ import annotations

from .object_registry import Registry


def _ops():
    from . import ops
    return ops


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    o = _ops()
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return o.relu(x)
    if threshold != 0.0:  # Keras: x where x >= threshold, else negative_slope * (x - threshold)
        y = o.where(o.greater_equal(x, float(threshold)), x, (x - float(threshold)) * float(negative_slope))
    else:
        y = o.leaky_relu(x, alpha=negative_slope) if negative_slope else o.relu(x)
    return o.minimum(y, float(max_value)) if max_value is not None else y


def sigmoid(x):
    return _ops().sigmoid(x)


def tanh(x):
    return _ops().tanh(x)


def softmax(x, axis=-1):
    return _ops().softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return _ops().log_softmax(x, axis=axis)


def elu(x, alpha=1.0):
    return _ops().elu(x, alpha=alpha)


def selu(x):
    return _ops().selu(x)


def softplus(x):
    return _ops().softplus(x)


def softsign(x):
    return _ops().softsign(x)


def swish(x):
    return _ops().swish(x)


silu = swish


def gelu(x, approximate=False):
    return _ops().gelu(x, approximate=approximate)


def leaky_relu(x, negative_slope=0.2):
    return _ops().leaky_relu(x, alpha=negative_slope)


def relu6(x):
    return _ops().relu6(x)


def exponential(x):
    return _ops().exp(x)


def hard_sigmoid(x):
    o = _ops()
    return o.clip_by_value(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)


_REGISTRY = Registry("activation", base=None, none=linear,
                     hint="a name such as 'relu' or a callable taking and returning a tensor")
for _name, _fn in {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "log_softmax": log_softmax, "elu": elu, "selu": selu, "softplus": softplus,
    "softsign": softsign, "swish": swish, "silu": silu, "gelu": gelu, "leaky_relu": leaky_relu,
    "relu6": relu6, "exponential": exponential, "hard_sigmoid": hard_sigmoid,
}.items():
    _REGISTRY.register(_fn, _name)


def get(identifier, custom_objects=None):
    """The activation for a name (``"relu"``), ``None`` (linear), a Keras dict or a callable
    (returned as is); ``custom_objects`` maps extra names to functions.

        >>> get("relu") is relu, get(None) is linear
        (True, True)
    """
    if isinstance(identifier, dict):  # a Keras-style serialized activation: the name inside
        identifier = identifier.get("config", identifier).get("name", identifier.get("class_name"))
    return _REGISTRY.get(identifier, custom_objects)


def serialize(fn) -> str:
    """The name of a known activation (configs hold names); other callables by their __name__."""
    name = _REGISTRY.name_of(fn)
    return name if name is not None else getattr(fn, "__name__", repr(fn))
