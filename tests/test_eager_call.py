"""Eager calls (issue #21): ``layer(x)`` and ``model(x)`` on numpy arrays return numpy arrays,
built from the arrays' shapes when needed, compiled once per input signature, with training off;
symbolic and graph-tensor calls keep building graphs."""
import numpy as np
import pytest

import graphc as gc
from graphc import layers as L
from graphc.models import Model, Sequential

RNG = np.random.default_rng(7)


def _x(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def test_layer_on_numpy_builds_from_the_shape_and_matches_numpy():
    layer = L.Dense(3, activation="relu")
    x = _x(5, 4)
    y = layer(x)
    assert isinstance(y, np.ndarray) and y.shape == (5, 3) and y.dtype == np.float32
    assert layer.built and [w.shape for w in layer.weights] == [(4, 3), (3,)]
    w, b = layer.get_weights()
    np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)
    # float64 arrays are cast to the layer's dtype, as Keras does
    np.testing.assert_allclose(layer(x.astype(np.float64)), y, rtol=1e-6)


def test_set_weights_then_eager_call_uses_them():
    layer = L.Conv1D(2, 2, use_bias=False)
    layer(_x(1, 3, 1))
    layer.set_weights([np.ones((2, 1, 2), np.float32)])
    np.testing.assert_array_equal(layer(np.array([[[1.], [2.], [4.]]], np.float32)),
                                  [[[3., 3.], [6., 6.]]])


def test_repeated_calls_reuse_one_program_per_signature():
    layer = L.Dense(2)
    layer(_x(3, 4))
    graph = layer._runtime.graph
    nodes = graph.num_nodes()
    for n in (3, 7, 1):                     # another batch size is the same signature
        layer(_x(n, 4))
    assert graph.num_nodes() == nodes
    assert len(layer._eager_programs) == 1
    act = L.Activation("tanh")
    act(_x(2, 3)); act(_x(2, 5))            # another feature shape is a new program
    assert len(act._eager_programs) == 2
    np.testing.assert_allclose(act(np.zeros((1, 5), np.float32)), np.zeros((1, 5)))


def test_training_is_off_by_default_and_can_be_turned_on():
    x = np.ones((200, 10), np.float32)
    drop = L.Dropout(0.5)
    np.testing.assert_array_equal(drop(x), x)
    y = drop(x, training=True)
    assert 0.3 < (y == 0).mean() < 0.7 and set(np.unique(y)) <= {0.0, 2.0}
    model = Sequential([L.Dense(10, kernel_initializer="ones", input_shape=(10,)), L.Dropout(0.5)])
    np.testing.assert_array_equal(model(x), model.predict(x, verbose=0))
    assert (model(x, training=True) == 0).mean() > 0.3


def test_model_call_matches_predict_and_follows_training():
    inp = L.Input(shape=(6,))
    model = Model(inp, L.Dense(1)(L.Dense(8, activation="tanh")(inp)))
    model.compile(optimizer="adam", loss="mse")
    x = _x(16, 6)
    before = model(x)
    assert isinstance(before, np.ndarray) and before.shape == (16, 1)
    np.testing.assert_allclose(before, model.predict(x, verbose=0), rtol=1e-6)
    n_programs = len(model._programs)
    model(x[:3])
    assert len(model._programs) == n_programs          # the predict program of this signature
    model.fit(x, x.sum(1, keepdims=True), epochs=3, verbose=0)
    after = model(x)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, model.predict(x, verbose=0), rtol=1e-6)
    # a layer of the model called on its own reads the model's (trained) weights
    dense = model.layers[1]
    w, b = dense.get_weights()
    np.testing.assert_allclose(dense(x), np.tanh(x @ w + b), rtol=1e-5, atol=1e-6)


def test_multi_input_multi_output_and_dict_inputs():
    a, b = L.Input(shape=(3,), name="a"), L.Input(shape=(2,), name="b")
    h = L.Concatenate()([a, b])
    model = Model([a, b], [L.Dense(2, name="o1")(h), L.Dense(1, name="o2")(h)])
    xa, xb = _x(4, 3), _x(4, 2)
    outs = model([xa, xb])
    assert isinstance(outs, list) and [o.shape for o in outs] == [(4, 2), (4, 1)]
    for got, want in zip(outs, model.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    for got, want in zip(model({"a": xa, "b": xb}), outs):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_sequential_without_input_shape_builds_from_the_array():
    model = Sequential([L.Conv1D(4, 3, activation="relu"), L.GlobalMaxPooling1D(), L.Dense(2)])
    y = model(_x(3, 10, 5))
    assert y.shape == (3, 2) and model.built
    assert model.layers[0].weights[0].shape == (3, 5, 4)


def test_integer_inputs_and_rnn_sequence_lengths():
    emb = L.Embedding(10, 3)
    ids = np.array([[1, 2, 9]])
    np.testing.assert_array_equal(emb(ids), emb.get_weights()[0][ids])
    gru = L.GRU(2, reset_after=False)
    assert gru(_x(2, 5, 3)).shape == (2, 2) and gru(_x(2, 8, 3)).shape == (2, 2)
    bi = L.Bidirectional(L.LSTM(2, return_sequences=True))
    assert bi(_x(2, 4, 3)).shape == (2, 4, 4)
    assert [w.shape for w in bi.forward_layer.get_weights()] == [(3, 8), (2, 8), (8,)]


def test_symbolic_and_graph_tensor_calls_still_build_graphs():
    layer = L.Dense(2)
    assert isinstance(layer(L.Input(shape=(4,))), L.KerasTensor)
    g = gc.Graph()
    with g.as_default():
        out = L.Dense(2)(gc.placeholder("float32", (None, 4)))
    assert isinstance(out, gc.Tensor) and out.shape == (None, 2)


def test_layer_built_in_a_user_graph_refuses_numpy_with_a_clear_error():
    layer = L.Dense(2, name="mine")
    with gc.Graph().as_default():
        layer(gc.placeholder("float32", (None, 4)))
    with pytest.raises(ValueError, match="layer 'mine' was built on tensors of a graph of your own"):
        layer(_x(1, 4))


def test_wrong_shape_names_the_layer():
    layer = L.Dense(2, name="d_shape")
    layer(_x(1, 4))
    with pytest.raises(ValueError, match=r"Dense 'd_shape' called on numpy arrays of shapes "
                                         r"\(None, 3\): .*inner dimensions differ"):
        layer(_x(1, 3))
    with pytest.raises(ValueError, match=r"Conv1D 'c1d'.*\(batch, steps, channels\).*\(None, 5\)"):
        L.Conv1D(2, 2, name="c1d")(_x(2, 5))
