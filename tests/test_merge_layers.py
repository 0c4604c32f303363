"""Merge layers: values against numpy in one model, output shapes with broadcasting and
unknown dimensions, and the errors for bad input lists."""
import numpy as np
import pytest

from graphc import layers as L
from graphc.layers.merge import _broadcast_shape
from graphc.models import Model

RNG = np.random.default_rng(5)
A, B, C = (RNG.normal(size=(3, 4)).astype(np.float32) for _ in range(3))


def test_merge_values():
    ins = [L.Input(shape=(4,)) for _ in range(3)]
    outs = [L.Add()(ins), L.Subtract()(ins[:2]), L.Multiply()(ins), L.Maximum()(ins), L.Minimum()(ins),
            L.Average()(ins), L.Concatenate()(ins), L.concatenate(ins[:2], axis=0), L.add(ins[1:])]
    got = Model(ins, outs).predict([A, B, C])
    want = [A + B + C, A - B, A * B * C, np.maximum(np.maximum(A, B), C), np.minimum(np.minimum(A, B), C),
            (A + B + C) / 3, np.concatenate([A, B, C], -1), np.concatenate([A, B], 0), B + C]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_output_shapes():
    a, b = L.Input(shape=(4,)), L.Input(shape=(1,))
    assert L.Add()([a, b]).shape == (None, 4)                       # broadcasting a size-1 axis
    assert L.Concatenate(axis=1)([a, b]).shape == (None, 5)
    # as Keras: the other axes come from the first input
    assert L.Concatenate()([L.Input(shape=(None, 2)), L.Input(shape=(3, 2))]).shape == (None, None, 4)
    assert L.Concatenate(axis=1)([L.Input(shape=(None, 2)), L.Input(shape=(3, 2))]).shape == (None, None, 2)
    assert _broadcast_shape([(None, 4), (3, 1), (3, 4)]) == (3, 4)
    assert L.Concatenate(axis=2).get_config()["axis"] == 2


def test_errors():
    a = L.Input(shape=(4,))
    with pytest.raises(ValueError, match="Add needs a list of at least 2 inputs"):
        L.Add()([a])
    with pytest.raises(ValueError, match=r"merge: incompatible shapes \[\(None, 4\), \(None, 3\)\]"):
        L.Multiply()([a, L.Input(shape=(3,))])
    with pytest.raises(ValueError, match="merge: inputs have different ranks"):
        L.Maximum()([a, L.Input(shape=(2, 4))])
    with pytest.raises(ValueError, match="Subtract 'subtract.*' needs exactly 2 inputs, got 3 inputs"):
        L.Subtract()([a, a, a])
