"""Functional Model construction: the errors for bad inputs/outputs, get_layer, models used as
layers of other models, frozen models, weight counts, and layers shared across graphs."""
import numpy as np
import pytest

from graphc import layers as L
from graphc.models import Model, Sequential

X = np.arange(12, dtype=np.float32).reshape(3, 4) / 10


def test_construction_errors():
    x = L.Input(shape=(4,))
    y = L.Dense(2)(x)
    with pytest.raises(ValueError, match="Model needs both inputs= and outputs="):
        Model(inputs=x)
    with pytest.raises(TypeError, match="Model inputs and outputs must be symbolic tensors from Input"):
        Model(x, np.zeros(2))
    with pytest.raises(ValueError, match="model input .* is not an Input\\(\\); pass the tensors returned by"):
        Model(y, L.Dense(1)(y))
    other = L.Input(shape=(4,), name="other")
    with pytest.raises(ValueError, match="output depends on input 'other', which is not among the model's inputs"):
        Model(x, L.Add()([y, L.Dense(2)(other)]))
    with pytest.raises(ValueError, match="has no inputs/outputs yet"):
        Model().count_params()


def test_get_layer_and_weights():
    x = L.Input(shape=(4,), name="in")
    m = Model(x, L.Dense(1, name="out")(L.Dense(3, name="hid")(x)))
    assert m.get_layer("hid").units == 3 and m.get_layer(index=2).name == "out"
    with pytest.raises(ValueError, match=r"no layer named 'nope'; layers: \['in', 'hid', 'out'\]"):
        m.get_layer("nope")
    assert m.count_params() == 4 * 3 + 3 + 3 + 1
    with pytest.raises(ValueError, match=r"model 'functional.*' has 4 weight arrays, got 1"):
        m.set_weights([np.zeros((4, 3))])
    assert m.graph is m.session.graph


def test_model_as_a_layer_of_another_model():
    inner_in = L.Input(shape=(4,))
    inner = Model(inner_in, L.Dense(2, name="inner_dense")(inner_in), name="inner")
    x = L.Input(shape=(4,))
    outer = Model(x, L.Dense(1, name="head")(inner(x)))
    k, b = outer.get_layer("inner").get_weights()
    hk, hb = outer.get_layer("head").get_weights()
    np.testing.assert_allclose(outer.predict(X), (X @ k + b) @ hk + hb, rtol=1e-5)
    seq = Sequential([inner, L.Dense(1)])
    assert seq.predict(X).shape == (3, 1)
    with pytest.raises(ValueError, match="model 'inner' expects 1 inputs, got 2"):
        inner._replay([None, None], training=False)


def test_frozen_model_has_no_trainable_weights_and_does_not_train():
    x = L.Input(shape=(4,))
    m = Model(x, L.Dense(1)(x))
    m.trainable = False
    assert m.trainable_weights == [] and len(m.weights) == 2
    m.compile(optimizer="sgd", loss="mse")
    before = m.get_weights()
    m.fit(X, np.ones((3, 1), np.float32), verbose=0)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_shared_layers_share_a_graph_and_models_of_two_graphs_cannot_mix():
    d1, d2 = L.Dense(2), L.Dense(2)
    x1, x2 = L.Input(shape=(4,)), L.Input(shape=(4,))
    m1, m2 = Model(x1, d1(x1)), Model(x2, d2(x2))
    x3 = L.Input(shape=(4,))
    m3 = Model(x3, d1(x3))                       # joins m1's graph: the same weights
    assert m3.graph is m1.graph
    np.testing.assert_array_equal(m3.predict(X), m1.predict(X))
    x4 = L.Input(shape=(4,))
    with pytest.raises(ValueError, match=f"layer {d2.name!r} is already used by a model with another graph"):
        Model(x4, L.Add()([d1(x4), d2(x4)]))
    assert m2.graph is not m1.graph


def test_summary_lists_layers_shapes_and_params():
    lines = []
    x = L.Input(shape=(4,), name="x")
    Model(x, L.Dense(3, name="d")(x), name="m").summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert lines[0] == 'Model: "m"' and "d (Dense)" in text and "(None, 3)" in text and "x[0][0]" in text
    assert "Total params: 15 (60.00 B)" in text
