"""scikit-learn's bundled 8x8 digits (1,797 images; real data, no download).

``(x_train, y_train), (x_test, y_test) = load_data()``: images ``float32``
``(n, 8, 8)`` scaled to [0, 1], labels ``int64``; a fixed shuffled split with
``test_size`` of the samples held out.
"""
from __future__ import annotations

import numpy as np


def load_data(test_size=0.2, seed=0):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    x, y = x[perm], y[perm]
    n_test = int(round(len(x) * test_size))
    return (x[n_test:], y[n_test:]), (x[:n_test], y[:n_test])
