"""1-D convolution and pooling layers over ``(batch, steps, channels)``: Conv1D, MaxPooling1D,
AveragePooling1D.

They insert a height-1 axis and run the 2-D ops (``conv2d``, ``max_pool2d``, ``avg_pool2d``), so
they compile to the same kernels as Conv2D and MaxPooling2D. The Conv1D kernel has Keras' shape
``(kernel_size, in_channels, filters)``; ``kernel_size``, ``strides``, ``dilation_rate`` and
``pool_size`` are kept as 1-tuples, as in Keras.

    >>> from graphc.layers import Input, Conv1D, MaxPooling1D
    >>> x = Input(shape=(100, 8))
    >>> MaxPooling1D(2)(Conv1D(16, 5, activation="relu")(x)).shape
    (None, 48, 16)
"""
from __future__ import annotations

from .conv import Conv2D, _out_dim, _Pool2D


def _ops():
    from .. import ops
    return ops


def _single(v, what):
    t = (v,) if isinstance(v, int) else tuple(int(a) for a in v)
    if len(t) != 1 or t[0] < 1:
        raise ValueError(f"{what} must be a positive int or a 1-tuple, got {v!r}")
    return t


def _check_rank3(layer, shape):
    if len(shape) != 3 or shape[-1] is None:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects inputs (batch, steps, "
                         f"channels) with known channels, got {tuple(shape)}")


class Conv1D(Conv2D):
    """1-D convolution over time: ``activation(conv1d(x, kernel) + bias)``.

    ``kernel`` has shape ``(kernel_size, in_channels, filters)``; ``strides`` and
    ``dilation_rate`` cannot both exceed 1 (as in Keras). ``padding`` is ``"valid"``,
    ``"same"`` or ``"causal"`` (``(kernel_size - 1) * dilation_rate`` zeros before the first
    step, so output ``t`` sees only inputs up to ``t``).

        >>> Conv1D(4, 3, padding="same").compute_output_shape((None, 10, 2))
        (None, 10, 4)
        >>> Conv1D(4, 3, padding="causal", dilation_rate=2).compute_output_shape((None, 10, 2))
        (None, 10, 4)
    """

    _spatial = staticmethod(_single)

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, **kwargs):
        causal = isinstance(padding, str) and padding.lower() == "causal"
        super().__init__(filters, kernel_size, strides=strides,
                         padding="valid" if causal else padding, data_format=data_format,
                         dilation_rate=dilation_rate, **kwargs)
        if causal:
            self.padding = "causal"
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(f"Conv1D {self.name!r}: strides={self.strides[0]} and dilation_rate="
                             f"{self.dilation_rate[0]} cannot both be above 1")

    def build(self, input_shape):
        _check_rank3(self, input_shape)
        super().build((input_shape[0], 1) + tuple(input_shape[1:]))

    def call(self, inputs, training=None):
        o = _ops()
        _check_rank3(self, inputs.shape)
        padding = self.padding
        if padding == "causal":
            left = (self.kernel_size[0] - 1) * self.dilation_rate[0]
            inputs = o.pad(inputs, [[0, 0], [left, 0], [0, 0]])
            padding = "valid"
        y = o.conv2d(o.expand_dims(inputs, 1), o.expand_dims(self.kernel, 0),
                     strides=(1,) + self.strides, padding=padding.upper(),
                     dilations=(1,) + self.dilation_rate)
        y = o.squeeze(y, axis=1)
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        _check_rank3(self, input_shape)
        b, t, _ = input_shape
        padding = "same" if self.padding == "causal" else self.padding   # same length as "same"
        return (b, _out_dim(t, self.kernel_size[0], self.strides[0], self.dilation_rate[0],
                            padding), self.filters)


class _Pool1D(_Pool2D):
    _spatial = staticmethod(_single)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format,
                         **kwargs)

    def call(self, inputs, training=None):
        o = _ops()
        _check_rank3(self, inputs.shape)
        y = getattr(o, self._op)(o.expand_dims(inputs, 1), (1,) + self.pool_size,
                                 strides=(1,) + self.strides, padding=self.padding.upper())
        return o.squeeze(y, axis=1)

    def compute_output_shape(self, input_shape):
        _check_rank3(self, input_shape)
        b, t, c = input_shape
        return (b, _out_dim(t, self.pool_size[0], self.strides[0], 1, self.padding), c)


class MaxPooling1D(_Pool1D):
    """Max over windows of ``pool_size`` steps (``strides`` defaults to ``pool_size``).

        >>> MaxPooling1D(2).compute_output_shape((None, 7, 3))
        (None, 3, 3)
    """
    _op = "max_pool2d"


class AveragePooling1D(_Pool1D):
    """Mean over windows of ``pool_size`` steps; with ``same`` padding, over the valid steps.

        >>> AveragePooling1D(2, padding="same").compute_output_shape((None, 7, 3))
        (None, 4, 3)
    """
    _op = "avg_pool2d"


MaxPool1D, AvgPool1D = MaxPooling1D, AveragePooling1D
