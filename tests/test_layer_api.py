"""The Layer API around the math: weights before and after building, shapes of called layers,
KerasTensor operators, Lambda's output shapes, Input's errors, and direct calls on tensors."""
import numpy as np
import pytest

import graphc as gc
from graphc import layers as L
from graphc.models import Model, Sequential


def test_weights_need_a_built_layer_in_a_model():
    d = L.Dense(3)
    with pytest.raises(ValueError, match="layer 'dense.*' is not built yet.*give input_shape="):
        d.count_params()
    x = L.Input(shape=(2,))
    Model(x, d(x))
    assert d.count_params() == 9
    m = Sequential([L.Dense(2, input_dim=3)])
    layer = m.layers[0]
    with pytest.raises(ValueError, match=r"layer 'dense.*' is not built yet.*call model.build\(\)"):
        layer.get_weights()
    m.build()
    layer.set_weights([np.ones((3, 2), np.float32), np.full(2, 0.5, np.float32)])
    np.testing.assert_array_equal(m.predict(np.ones((1, 3), np.float32)), [[3.5, 3.5]])
    with pytest.raises(ValueError, match=r"layer 'dense.*' has 2 weights, got 1 arrays"):
        layer.set_weights([np.ones((3, 2))])
    lone = L.Dense(2)
    lone(gc.constant(np.ones((1, 3), np.float32)))        # built on a plain tensor: no model session
    with pytest.raises(ValueError, match="has no session holding its weight values; use it inside a Model"):
        lone.get_weights()


def test_initial_weights_argument():
    w = [np.full((2, 1), 2.0, np.float32), np.zeros(1, np.float32)]
    m = Sequential([L.Dense(1, input_dim=2, weights=w)])
    np.testing.assert_array_equal(m.predict(np.ones((1, 2), np.float32)), [[4.0]])


def test_shapes_of_called_layers_and_keras_tensors():
    x = L.Input(shape=(3,), name="inp")
    d = L.Dense(4)
    y = d(x)
    assert d.input_shape == (None, 3) and d.output_shape == (None, 4) and d.input is x and d.output is y
    assert L.Dense(2, input_shape=(5,)).input_shape == (None, 5)
    with pytest.raises(AttributeError, match="has not been called on a symbolic input"):
        L.Dense(2).input_shape
    with pytest.raises(AttributeError, match="has not been called on a symbolic input"):
        L.Dense(2).output_shape
    assert y.ndim == 2 and "shape=(None, 4)" in repr(y)
    with pytest.raises(TypeError, match="a KerasTensor is symbolic: len\\(\\) is unknown"):
        len(y)
    s = y + y
    got = Model(x, s).predict(np.ones((2, 3), np.float32))
    assert got.shape == (2, 4)
    assert repr(d).startswith("<Dense name='dense") and "built=True" in repr(d)


def test_lambda_output_shapes_and_config():
    x = L.Input(shape=(4,))
    assert L.Lambda(lambda t: t[:, :2])(x).shape == (None, 2)                    # traced
    assert L.Lambda(lambda t: t * 2, output_shape=(4,))(x).shape == (None, 4)
    assert L.Lambda(lambda t: t * 2, output_shape=lambda s: s)(x).shape == (None, 4)
    lam = L.Lambda(lambda t: t * 3)
    out = Model(x, lam(x)).predict(np.ones((2, 4), np.float32))
    np.testing.assert_array_equal(out, np.full((2, 4), 3.0))
    with pytest.raises(ValueError, match="Lambda layer 'lambda.*' wraps a Python function and cannot be saved"):
        lam.get_config()


def test_input_errors_and_forms():
    with pytest.raises(ValueError, match=r"Input needs shape= \(the shape of one sample"):
        L.Input()
    assert L.Input(5).shape == (None, 5)
    assert L.Input(shape=(2,), batch_size=8).shape == (8, 2)
    assert L.Input(batch_shape=(None, 3, 4)).shape == (None, 3, 4)
    with pytest.raises(TypeError, match="Dense: unexpected keyword argument 'unit'"):
        L.Dense(2, unit=3)
