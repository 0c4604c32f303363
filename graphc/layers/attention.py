"""MultiHeadAttention (Keras layout: per-head ``(dim, heads, key_dim)`` projection kernels).

    >>> from graphc.layers import Input, MultiHeadAttention
    >>> x = Input(shape=(28, 32))
    >>> MultiHeadAttention(num_heads=4, key_dim=8)(x, x).shape
    (None, 28, 32)
"""
from __future__ import annotations

import math

import numpy as np

from .. import initializers as _init
from .base import Layer, reject_unsupported, serialize_obj
from .core import matmul_last


def _ops():
    from .. import ops
    return ops


class MultiHeadAttention(Layer):
    """Scaled dot-product attention over ``num_heads`` heads: ``layer(query, value, key=None)``."""

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 seed=None, **kwargs):
        kwargs.pop("flash_attention", None)     # a speed hint: the result is the same
        reject_unsupported("MultiHeadAttention", **{k: kwargs.pop(k, None) for k in (
            "activity_regularizer", "kernel_constraint", "bias_constraint")})
        super().__init__(**kwargs)
        if attention_axes is not None:
            raise ValueError("MultiHeadAttention: attention_axes is not supported (attends over axis 1)")
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout, self.use_bias, self.seed = float(dropout), use_bias, seed
        self._output_dim = output_shape if output_shape is None or isinstance(output_shape, int) \
            else int(tuple(output_shape)[-1])
        self.kernel_initializer = _init.get(kernel_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def build(self, query_shape, value_shape=None, key_shape=None):
        if isinstance(query_shape, list):   # built from a call: [query, value, key?]
            shapes = query_shape + [None] * (3 - len(query_shape))
            query_shape, value_shape, key_shape = shapes
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        h = self.num_heads
        out_dim = self._output_dim or query_shape[-1]

        def dense(name, din, dout_shape):
            k = self.add_weight(f"{name}_kernel", (din,) + dout_shape, initializer=self.kernel_initializer,
                                regularizer=self.kernel_regularizer)
            b = self.add_weight(f"{name}_bias", dout_shape, initializer=self.bias_initializer,
                                regularizer=self.bias_regularizer) if self.use_bias else None
            return k, b
        self.q_kernel, self.q_bias = dense("query", query_shape[-1], (h, self.key_dim))
        self.k_kernel, self.k_bias = dense("key", key_shape[-1], (h, self.key_dim))
        self.v_kernel, self.v_bias = dense("value", value_shape[-1], (h, self.value_dim))
        self.o_kernel = self.add_weight("attention_output_kernel", (h, self.value_dim, out_dim),
                                        initializer=self.kernel_initializer,
                                        regularizer=self.kernel_regularizer)
        self.o_bias = self.add_weight("attention_output_bias", (out_dim,),
                                      initializer=self.bias_initializer,
                                      regularizer=self.bias_regularizer) if self.use_bias else None

    def _project(self, x, kernel, bias, dim):
        o = _ops()
        h = self.num_heads
        t = x.shape[1]
        if t is None:
            raise ValueError(f"MultiHeadAttention {self.name!r}: the sequence axis of {x.shape} must "
                             "be known when the graph is built")
        y = matmul_last(x, o.reshape(kernel, (kernel.shape[0], h * dim)))
        if bias is not None:
            y = y + o.reshape(bias, (h * dim,))
        return o.transpose(o.reshape(y, (-1, t, h, dim)), (0, 2, 1, 3))   # (B, H, T, dim)

    def __call__(self, query, value=None, key=None, **kwargs):
        if isinstance(query, list) and value is None:   # replayed from a recorded call
            return super().__call__(query, **kwargs)
        value = query if value is None else value
        return super().__call__([query, value] + ([key] if key is not None else []), **kwargs)

    def call(self, inputs, attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False, **kwargs):
        o = _ops()
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        q = self._project(query, self.q_kernel, self.q_bias, self.key_dim)
        k = self._project(key, self.k_kernel, self.k_bias, self.key_dim)
        v = self._project(value, self.v_kernel, self.v_bias, self.value_dim)
        scores = o.matmul(q * (1.0 / math.sqrt(self.key_dim)), k, transpose_b=True)  # (B,H,Tq,Tk)
        tq, tk = query.shape[1], key.shape[1]
        mask = None
        if attention_mask is not None:
            mask = o.cast(o.convert_to_tensor(attention_mask), scores.dtype)
            mask = o.expand_dims(mask, 1) if mask.ndim == 3 else mask
        if use_causal_mask:
            causal = o.constant(np.tril(np.ones((tq, tk), dtype=scores.dtype.name)))
            mask = causal if mask is None else mask * causal
        if mask is not None:
            scores = scores + (1.0 - mask) * -1e9
        weights = o.softmax(scores, axis=-1)
        attn = weights
        if training and self.dropout:
            attn = o.nn.dropout(weights, rate=self.dropout, seed=self.seed)
        ctx = o.matmul(attn, v)                                                      # (B,H,Tq,vd)
        ctx = o.reshape(o.transpose(ctx, (0, 2, 1, 3)), (-1, tq, self.num_heads * self.value_dim))
        out = matmul_last(ctx, o.reshape(self.o_kernel, (self.num_heads * self.value_dim, -1)))
        if self.o_bias is not None:
            out = out + self.o_bias
        return [out, weights] if return_attention_scores else out

    def compute_output_shape(self, input_shape):
        q = input_shape[0]
        return tuple(q[:-1]) + (self._output_dim or q[-1],)

    def _symbolic_call(self, inputs, args, kwargs):
        out = super()._symbolic_call(inputs, args, kwargs)
        if kwargs.get("return_attention_scores"):
            raise ValueError("return_attention_scores=True is not supported on symbolic inputs")
        return out

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": self._output_dim, "seed": self.seed,
                "kernel_initializer": serialize_obj(self.kernel_initializer),
                "bias_initializer": serialize_obj(self.bias_initializer),
                "kernel_regularizer": serialize_obj(self.kernel_regularizer),
                "bias_regularizer": serialize_obj(self.bias_regularizer)}
