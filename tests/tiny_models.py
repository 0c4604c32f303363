"""Tiny models whose training can be computed by hand, for the model-API tests."""
import numpy as np

from graphc.layers import Dense
from graphc.models import Sequential
from graphc.optimizers import SGD


def per_sample_model(n, lr=0.5):
    """``y = x @ w`` fed one-hot rows ``x = eye(n)`` and targets 1: sample i moves only w[i]
    (SGD on mse); returns ``(model, x, y)``."""
    m = Sequential([Dense(1, use_bias=False, kernel_initializer="zeros", input_dim=n)])
    m.compile(optimizer=SGD(lr), loss="mse")
    return m, np.eye(n, dtype=np.float32), np.ones((n, 1), np.float32)
