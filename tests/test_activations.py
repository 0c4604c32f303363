"""Activations against numpy versions of Keras 3's formulas, and ``get``/``serialize``."""
import math

import numpy as np
import pytest

import graphc as gc
from graphc import activations as A

X = np.array([[-3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 7.0]], np.float32)
X64 = X.astype(np.float64)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
erf = np.vectorize(math.erf)


def run(t):
    return gc.Session(executor="reference").run(t)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


CASES = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": softmax,
    "log_softmax": lambda x: np.log(softmax(x)),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "relu6": lambda x: np.clip(x, 0, 6),
    "exponential": np.exp,
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_activation_matches_keras_formula(name):
    fn = A.get(name)
    np.testing.assert_allclose(run(fn(gc.constant(X))), CASES[name](X64), rtol=2e-5, atol=1e-6)
    assert A.serialize(fn) in (name, "swish")            # silu is swish
    assert A.get(name.upper()) is fn


def test_parameterised_forms():
    x = gc.constant(X)
    np.testing.assert_allclose(run(A.relu(x, negative_slope=0.1)), np.where(X64 > 0, X64, 0.1 * X64), rtol=1e-6)
    np.testing.assert_allclose(run(A.relu(x, max_value=1.0)), np.clip(X64, 0, 1), rtol=1e-6)
    # Keras: x >= threshold -> x, else negative_slope * (x - threshold)
    np.testing.assert_allclose(run(A.relu(x, negative_slope=0.5, threshold=0.5, max_value=5.0)),
                               np.minimum(np.where(X64 >= 0.5, X64, 0.5 * (X64 - 0.5)), 5.0), rtol=1e-6)
    np.testing.assert_allclose(run(A.elu(x, alpha=0.5)), np.where(X64 > 0, X64, 0.5 * (np.exp(X64) - 1)),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(run(A.leaky_relu(x, negative_slope=0.3)), np.where(X64 > 0, X64, 0.3 * X64),
                               rtol=1e-6)
    approx = 0.5 * X64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (X64 + 0.044715 * X64 ** 3)))
    np.testing.assert_allclose(run(A.gelu(x, approximate=True)), approx, rtol=1e-5, atol=1e-6)
    m = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    np.testing.assert_allclose(run(A.softmax(gc.constant(m), axis=0)), softmax(m.T.astype(np.float64)).T, rtol=1e-6)


def test_get_and_serialize():
    assert A.get(None) is A.linear
    assert A.get({"class_name": "relu"}) is A.relu
    assert A.get({"class_name": "Activation", "config": {"name": "tanh"}}) is A.tanh

    def mine(x):
        return x
    assert A.get(mine) is mine and A.serialize(mine) == "mine"
    assert A.get("mine", custom_objects={"mine": mine}) is mine
    with pytest.raises(ValueError, match=r"unknown activation 'rellu' \(did you mean 'relu'\?\); known "
                                         r"activations: elu, exponential.*custom_objects"):
        A.get("rellu")
    with pytest.raises(ValueError, match="could not interpret the activation 3; pass a name such as 'relu'"):
        A.get(3)
