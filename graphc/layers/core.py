"""Core layers: Input/InputLayer, Dense, Activation, Dropout, Flatten, Reshape, Lambda.

    >>> from graphc.layers import Input, Dense
    >>> x = Input(shape=(784,))
    >>> Dense(64, activation="relu")(x).shape
    (None, 64)
"""
from __future__ import annotations

import numpy as np

from .. import activations as _act
from .. import initializers as _init
from .base import KerasTensor, Layer, Node, reject_unsupported, serialize_obj


def _ops():
    from .. import ops
    return ops


def matmul_last(x, w):
    """``x @ w`` over the last axis of ``x`` (any rank >= 2; leading dims folded into rows)."""
    o = _ops()
    if x.ndim == 2:
        return o.matmul(x, w)
    lead = x.shape[:-1]
    flat = o.reshape(x, (-1, x.shape[-1]))
    y = o.matmul(flat, w)
    unknown = [i for i, d in enumerate(lead) if d is None]
    if len(unknown) <= 1:
        return o.reshape(y, tuple(-1 if d is None else d for d in lead) + (w.shape[-1],))
    # several unknown leading dims: reshape like x with the last dim replaced
    like = o.getitem(o.zeros_like(x), (Ellipsis, slice(0, 1)))
    ones = o.ones_like(o.reshape(w[0:1, :], (1,) * (x.ndim - 1) + (w.shape[-1],)))
    return o.reshape_like(y, like * ones)


class InputLayer(Layer):
    """The layer behind ``Input``: it has no weights and no call; it makes the model's inputs."""

    def __init__(self, input_shape=None, batch_size=None, dtype="float32", name=None,
                 batch_input_shape=None, batch_shape=None, **kwargs):
        if batch_shape is not None:
            batch_input_shape = batch_shape
        if batch_input_shape is None:
            if input_shape is None:
                raise ValueError("Input needs shape= (the shape of one sample, without the batch)")
            batch_input_shape = (batch_size,) + tuple(input_shape)
        super().__init__(name=name or None, dtype=dtype, batch_input_shape=batch_input_shape, **kwargs)
        self.built = True
        out = KerasTensor(self._batch_input_shape, self.dtype, name=self.name)
        node = Node(self, (), {}, out)
        out.node = node

    def get_config(self):
        return {"batch_input_shape": list(self._batch_input_shape), "dtype": self.dtype.name,
                "name": self.name}

    def compute_output_shape(self, input_shape):
        return self._batch_input_shape


def Input(shape=None, batch_size=None, name=None, dtype="float32", batch_shape=None, **kwargs):
    """A symbolic model input: ``Input(shape=(784,))`` has shape ``(None, 784)``."""
    if shape is not None and isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    layer = InputLayer(input_shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                       batch_shape=batch_shape, **kwargs)
    return layer._inbound_nodes[0].outputs


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` over the last axis."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        reject_unsupported("Dense", activity_regularizer=activity_regularizer,
                           kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        super().__init__(**kwargs)
        self.supports_masking = True        # per position: a time step's mask passes through
        self.units = int(units)
        if self.units <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.activation = _act.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = _init.get(kernel_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer

    def build(self, input_shape):
        d = input_shape[-1]
        if d is None:
            raise ValueError(f"Dense {self.name!r}: the last input dimension must be known, got "
                             f"input shape {input_shape}")
        self.kernel = self.add_weight("kernel", (d, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.units,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def call(self, inputs, training=None):
        y = matmul_last(inputs, self.kernel)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": _act.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": serialize_obj(self.kernel_initializer),
                "bias_initializer": serialize_obj(self.bias_initializer),
                "kernel_regularizer": serialize_obj(self.kernel_regularizer),
                "bias_regularizer": serialize_obj(self.bias_regularizer)}


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.activation = _act.get(activation)

    def call(self, inputs, training=None):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": _act.serialize(self.activation)}


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of the inputs while training (scaling the rest); identity otherwise."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.seed = seed
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        from ..ops.nn import dropout
        return dropout(inputs, rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_dtype(self, input_dtype):
        return input_dtype

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": list(self.noise_shape) if self.noise_shape else None, "seed": self.seed}


class Masking(Layer):
    """Marks the time steps whose features all equal ``mask_value`` as padding (Keras' ``Masking``):
    they become zeros, and the output's mask tells a following recurrent layer to skip them.

        >>> Masking(0.0).compute_output_shape((None, 7, 3))
        (None, 7, 3)
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.mask_value = float(mask_value)

    def _keep(self, inputs):
        from .. import ops
        return ops.reduce_any(ops.not_equal(inputs, ops.cast(self.mask_value, inputs.dtype)), axis=-1)

    def call(self, inputs, training=None):
        from .. import ops
        return inputs * ops.cast(ops.expand_dims(self._keep(inputs), -1), inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        return self._keep(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


class Flatten(Layer):
    def call(self, inputs, training=None):
        shape = self.compute_output_shape(inputs.shape)
        if shape[1] is None:
            raise ValueError(f"Flatten {self.name!r}: the non-batch dimensions of {inputs.shape} must "
                             "be known")
        return _ops().reshape(inputs, (-1, shape[1]))

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        n = None if any(d is None for d in rest) else int(np.prod(rest)) if rest else 1
        return (input_shape[0], n)

    def compute_output_dtype(self, input_dtype):
        return input_dtype


class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def _resolved(self, input_shape):
        target = list(self.target_shape)
        if -1 in target:
            rest = input_shape[1:]
            if any(d is None for d in rest):
                return tuple(None if d == -1 else d for d in target)
            known = int(np.prod([d for d in target if d != -1]))
            total = int(np.prod(rest))
            if total % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape {input_shape} to "
                                 f"{self.target_shape}")
            target[target.index(-1)] = total // known
        return tuple(target)

    def call(self, inputs, training=None):
        t = self._resolved(inputs.shape)
        if any(d is None for d in t):
            raise ValueError(f"Reshape {self.name!r}: input shape {inputs.shape} must be known")
        return _ops().reshape(inputs, (-1,) + t)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolved(input_shape)

    def compute_output_dtype(self, input_dtype):
        return input_dtype

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Lambda(Layer):
    """Wraps a function of graph tensors (not serializable into a config)."""

    def __init__(self, function, output_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self._output_shape = output_shape

    def call(self, inputs, training=None):
        return self.function(inputs)

    def compute_output_shape(self, input_shape):
        if callable(self._output_shape):
            return tuple(self._output_shape(input_shape))
        if self._output_shape is not None:
            return (input_shape[0],) + tuple(self._output_shape)
        return self._traced_output_shape(input_shape)

    def get_config(self):
        raise ValueError(f"Lambda layer {self.name!r} wraps a Python function and cannot be saved "
                         "into a config; write a Layer subclass instead")
