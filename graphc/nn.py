"""The ``gc.nn`` namespace (``tf.nn``): activations, softmax, losses, convolution, pooling, dropout,
moments and batch normalization, the fused LSTM cell.

    >>> import graphc as gc
    >>> x = gc.placeholder("float32", (None, 8, 8, 3))
    >>> h = gc.nn.relu(gc.nn.conv2d(x, np.zeros((3, 3, 3, 4), np.float32), padding="SAME"))
    >>> gc.nn.max_pool2d(h, 2).shape
    (None, 4, 4, 4)
"""
from __future__ import annotations

import numpy as np  # noqa: F401  (doctest namespace)

from .ops.elementwise import (elu, gelu, leaky_relu, relu, relu6, selu, sigmoid, silu, softplus,
                              softsign, swish, tanh)
from .ops.nn import (bias_add, conv2d, conv2d_backprop_filter, conv2d_backprop_input, dropout, l2_loss,
                     log_softmax, sigmoid_cross_entropy_with_logits, softmax,
                     softmax_cross_entropy_with_logits, softmax_cross_entropy_with_logits_v2,
                     sparse_softmax_cross_entropy_with_logits)
from .ops.normalization import batch_normalization, moments
from .ops.pooling import avg_pool, avg_pool2d, max_pool, max_pool2d
from .ops.rnn import lstm_cell

__all__ = [
    "relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "leaky_relu", "elu",
    "selu", "softplus", "softsign", "swish", "silu", "conv2d", "conv2d_backprop_input",
    "conv2d_backprop_filter", "max_pool2d", "avg_pool2d", "max_pool", "avg_pool", "dropout",
    "bias_add", "softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_v2",
    "sparse_softmax_cross_entropy_with_logits", "sigmoid_cross_entropy_with_logits", "l2_loss",
    "lstm_cell", "moments", "batch_normalization",
]
