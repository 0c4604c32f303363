"""Embedding: integer ids -> rows of a trainable ``(input_dim, output_dim)`` table.

    >>> from graphc.layers import Input, Embedding
    >>> Embedding(1000, 16)(Input(shape=(10,), dtype="int32")).shape
    (None, 10, 16)
"""
from __future__ import annotations

import numpy as np

from .. import initializers as _init
from .base import Layer, reject_unsupported, serialize_obj


class Embedding(Layer):
    """``mask_zero=True``: id 0 is padding; the output's mask (``compute_mask``) is ``ids != 0``,
    which a following recurrent layer uses to skip those steps."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, mask_zero=False, input_length=None, **kwargs):
        reject_unsupported("Embedding", **{k: kwargs.pop(k, None) for k in (
            "embeddings_constraint", "activity_regularizer")})
        if input_length is not None and "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = _init.get(embeddings_initializer)
        self.embeddings_regularizer = embeddings_regularizer
        self.mask_zero = mask_zero

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer)

    def call(self, inputs, training=None):
        from .. import ops
        ids = inputs if inputs.dtype.kind in "iu" else ops.cast(inputs, "int32")
        return ops.gather(self.embeddings, ids)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        from .. import ops
        return ops.not_equal(inputs, ops.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_output_dtype(self, input_dtype):
        return np.dtype(self.dtype)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": serialize_obj(self.embeddings_initializer),
                "embeddings_regularizer": serialize_obj(self.embeddings_regularizer),
                "mask_zero": self.mask_zero}
