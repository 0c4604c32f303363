"""Convolution and pooling layers (channels-last, NHWC): Conv2D, MaxPooling2D,
AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D.

    >>> from graphc.layers import Input, Conv2D, MaxPooling2D
    >>> x = Input(shape=(28, 28, 1))
    >>> MaxPooling2D((2, 2))(Conv2D(32, (3, 3), activation="relu")(x)).shape
    (None, 13, 13, 32)
"""
from __future__ import annotations

from .. import activations as _act
from .. import initializers as _init
from .base import Layer, reject_unsupported, serialize_obj


def _ops():
    from .. import ops
    return ops


def _pair(v, what):
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{what} must be an int or a pair of ints, got {v}")
    return v


def _out_dim(size, k, s, d, padding):
    if size is None:
        return None
    if padding == "same":
        return -(-size // s)
    eff = (k - 1) * d + 1
    return max(0, (size - eff) // s + 1)


def _check_format(data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError("only data_format='channels_last' (NHWC) is supported")


def _padding(padding, who):
    p = str(padding).lower()
    if p not in ("valid", "same"):
        raise ValueError(f"{who}: padding must be 'valid' or 'same', got {padding!r}"
                         + (" (causal padding is not supported)" if p == "causal" else ""))
    return p


class Conv2D(Layer):
    """2-D convolution: ``activation(conv2d(x, kernel) + bias)``; kernel shape ``(kh, kw, in, filters)``."""

    @staticmethod
    def _spatial(v, what):
        return _pair(v, what)

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        who = type(self).__name__
        reject_unsupported(who, activity_regularizer=activity_regularizer,
                           kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        super().__init__(**kwargs)
        _check_format(data_format)
        if groups != 1:
            raise ValueError(f"{who}: groups != 1 is not supported")
        self.filters = int(filters)
        self.kernel_size = self._spatial(kernel_size, "kernel_size")
        self.strides = self._spatial(strides, "strides")
        self.dilation_rate = self._spatial(dilation_rate, "dilation_rate")
        self.padding = _padding(padding, who)
        self.activation = _act.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = _init.get(kernel_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"Conv2D {self.name!r} expects inputs (batch, height, width, channels) "
                             f"with known channels, got {input_shape}")
        self.kernel = self.add_weight("kernel", self.kernel_size + (input_shape[-1], self.filters),
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def call(self, inputs, training=None):
        o = _ops()
        y = o.conv2d(inputs, self.kernel, strides=self.strides, padding=self.padding.upper(),
                     dilations=self.dilation_rate)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, _out_dim(h, self.kernel_size[0], self.strides[0], self.dilation_rate[0], self.padding),
                _out_dim(w, self.kernel_size[1], self.strides[1], self.dilation_rate[1], self.padding),
                self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "dilation_rate": list(self.dilation_rate),
                "activation": _act.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": serialize_obj(self.kernel_initializer),
                "bias_initializer": serialize_obj(self.bias_initializer),
                "kernel_regularizer": serialize_obj(self.kernel_regularizer),
                "bias_regularizer": serialize_obj(self.bias_regularizer)}


class _Pool2D(Layer):
    _op = ""

    @staticmethod
    def _spatial(v, what):
        return _pair(v, what)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        _check_format(data_format)
        self.pool_size = self._spatial(pool_size, "pool_size")
        self.strides = self._spatial(strides, "strides") if strides is not None else self.pool_size
        self.padding = _padding(padding, type(self).__name__)

    def call(self, inputs, training=None):
        fn = getattr(_ops(), self._op)
        return fn(inputs, self.pool_size, strides=self.strides, padding=self.padding.upper())

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, _out_dim(h, self.pool_size[0], self.strides[0], 1, self.padding),
                _out_dim(w, self.pool_size[1], self.strides[1], 1, self.padding), c)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pool2D):
    _op = "max_pool2d"


class AveragePooling2D(_Pool2D):
    _op = "avg_pool2d"


class GlobalAveragePooling2D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        _check_format(data_format)
        self.keepdims = keepdims

    def call(self, inputs, training=None):
        return _ops().reduce_mean(inputs, axis=[1, 2], keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        b, _, _, c = input_shape
        return (b, 1, 1, c) if self.keepdims else (b, c)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalMaxPooling2D(GlobalAveragePooling2D):
    def call(self, inputs, training=None):
        return _ops().reduce_max(inputs, axis=[1, 2], keepdims=self.keepdims)


class GlobalAveragePooling1D(Layer):
    """Mean over the time axis of ``(batch, steps, features)``."""

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = keepdims

    def call(self, inputs, training=None):
        return _ops().reduce_mean(inputs, axis=1, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        b, _, c = input_shape
        return (b, 1, c) if self.keepdims else (b, c)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalMaxPooling1D(GlobalAveragePooling1D):
    """Max over the time axis of ``(batch, steps, features)``.

        >>> GlobalMaxPooling1D().compute_output_shape((None, 5, 3))
        (None, 3)
    """

    def call(self, inputs, training=None):
        return _ops().reduce_max(inputs, axis=1, keepdims=self.keepdims)


MaxPool2D, AvgPool2D, AveragePool2D = MaxPooling2D, AveragePooling2D, AveragePooling2D
GlobalAvgPool2D, GlobalMaxPool2D = GlobalAveragePooling2D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalMaxPool1D = GlobalAveragePooling1D, GlobalMaxPooling1D
