"""BatchNormalization and LayerNormalization (Keras defaults: axis -1, epsilon 1e-3).

BatchNormalization normalizes with the batch statistics while training and
updates its moving mean/variance (``moving = moving * momentum + batch * (1 -
momentum)``) as part of the training step; inference uses the moving statistics.

    >>> from graphc.layers import Input, BatchNormalization
    >>> BatchNormalization()(Input(shape=(8,))).shape
    (None, 8)
"""
from __future__ import annotations

from .. import initializers as _init
from .base import Layer, reject_unsupported, serialize_obj


def _ops():
    from .. import ops
    return ops


def _axes(axis, rank):
    axes = [axis] if isinstance(axis, int) else list(axis)
    return sorted(a % rank for a in axes)


class _Norm(Layer):
    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, **kwargs):
        for k in ("fused", "synchronized"):    # speed / multi-device hints: same result on one device
            kwargs.pop(k, None)
        reject_unsupported(type(self).__name__, **{k: kwargs.pop(k, None) for k in (
            "beta_constraint", "gamma_constraint", "rms_scaling", "renorm", "virtual_batch_size",
            "adjustment")})
        super().__init__(**kwargs)
        self.axis = axis if isinstance(axis, int) else list(axis)
        self.epsilon = float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer = _init.get(beta_initializer)
        self.gamma_initializer = _init.get(gamma_initializer)
        self.beta_regularizer, self.gamma_regularizer = beta_regularizer, gamma_regularizer

    def _param_shape(self, input_shape):
        rank = len(input_shape)
        axes = _axes(self.axis, rank)
        for a in axes:
            if input_shape[a] is None:
                raise ValueError(f"{type(self).__name__} {self.name!r}: axis {a} of {input_shape} "
                                 "must be known")
        return axes, tuple(input_shape[a] for a in axes)

    def _broadcast(self, t, axes, rank):
        """Reshape a parameter of shape ``[dims at axes]`` to broadcast against the input."""
        if axes == [rank - 1]:
            return t
        shape = [1] * rank
        for a, d in zip(axes, t.shape):
            shape[a] = d
        return _ops().reshape(t, tuple(shape))

    def build(self, input_shape):
        axes, shape = self._param_shape(input_shape)
        self.gamma = self.add_weight("gamma", shape, initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer) if self.scale else None
        self.beta = self.add_weight("beta", shape, initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer) if self.center else None

    def _affine(self, xhat, axes, rank):
        if self.scale:
            xhat = xhat * self._broadcast(self.gamma, axes, rank)
        if self.center:
            xhat = xhat + self._broadcast(self.beta, axes, rank)
        return xhat

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": serialize_obj(self.beta_initializer),
                "gamma_initializer": serialize_obj(self.gamma_initializer),
                "beta_regularizer": serialize_obj(self.beta_regularizer),
                "gamma_regularizer": serialize_obj(self.gamma_regularizer)}


class BatchNormalization(_Norm):
    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kwargs):
        super().__init__(axis=axis, epsilon=epsilon, **kwargs)
        self.momentum = float(momentum)
        self.moving_mean_initializer = _init.get(moving_mean_initializer)
        self.moving_variance_initializer = _init.get(moving_variance_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        _, shape = self._param_shape(input_shape)
        self.moving_mean = self.add_weight("moving_mean", shape,
                                           initializer=self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               initializer=self.moving_variance_initializer,
                                               trainable=False)

    def call(self, inputs, training=None):
        o = _ops()
        rank = inputs.ndim
        axes = _axes(self.axis, rank)
        red = [a for a in range(rank) if a not in axes]
        if training:
            mean = o.reduce_mean(inputs, axis=red, keepdims=True)
            var = o.reduce_mean(o.square(inputs - mean), axis=red, keepdims=True)
            xhat = (inputs - mean) * o.rsqrt(var + self.epsilon)
            m = self.momentum
            bm = o.reshape(mean, self.moving_mean.shape)
            bv = o.reshape(var, self.moving_variance.shape)
            self.add_update(o.assign(self.moving_mean, self.moving_mean * m + bm * (1.0 - m)))
            self.add_update(o.assign(self.moving_variance, self.moving_variance * m + bv * (1.0 - m)))
        else:
            mean = self._broadcast(self.moving_mean, axes, rank)
            var = self._broadcast(self.moving_variance, axes, rank)
            xhat = (inputs - mean) * o.rsqrt(var + self.epsilon)
        return self._affine(xhat, axes, rank)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum,
                "moving_mean_initializer": serialize_obj(self.moving_mean_initializer),
                "moving_variance_initializer": serialize_obj(self.moving_variance_initializer)}


class LayerNormalization(_Norm):
    def call(self, inputs, training=None):
        o = _ops()
        rank = inputs.ndim
        axes = _axes(self.axis, rank)
        mean = o.reduce_mean(inputs, axis=axes, keepdims=True)
        var = o.reduce_mean(o.square(inputs - mean), axis=axes, keepdims=True)
        xhat = (inputs - mean) * o.rsqrt(var + self.epsilon)
        return self._affine(xhat, axes, rank)
