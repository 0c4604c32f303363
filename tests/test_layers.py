"""Layers: output shapes (None batch), weight counts, config round trips, numpy forwards,
and one training step lowering the loss."""
import numpy as np
import pytest

import graphc as gc
from graphc.funcgraph import walk
from graphc import layers as L
from graphc.models import Model, Sequential
from graphc.optimizers import SGD

RNG = np.random.default_rng(0)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# -- numpy forwards ---------------------------------------------------------------------------------
def np_conv2d(x, k, stride=(1, 1), padding="valid", dilation=(1, 1)):
    kh, kw, _, co = k.shape
    dh, dw = dilation
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    n, h, w, _ = x.shape
    if padding == "same":
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
        ph = max((oh - 1) * stride[0] + eh - h, 0)
        pw = max((ow - 1) * stride[1] + ew - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - eh) // stride[0] + 1, (w - ew) // stride[1] + 1
    out = np.zeros((n, oh, ow, co), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride[0]:i * stride[0] + eh:dh, j * stride[1]:j * stride[1] + ew:dw, :]
            out[:, i, j, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2]))
    return out


def np_pool(x, size, fn):
    n, h, w, c = x.shape
    oh, ow = h // size, w // size
    x = x[:, :oh * size, :ow * size].reshape(n, oh, size, ow, size, c)
    return fn(x, axis=(2, 4))


def np_lstm(x, W, U, b, return_sequences=False):
    n, t, _ = x.shape
    u = U.shape[0]
    h = np.zeros((n, u)); c = np.zeros((n, u)); hs = []
    for s in range(t):
        z = x[:, s] @ W + h @ U + b
        i, f, g, o = _sig(z[:, :u]), _sig(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), _sig(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return (np.stack(hs, 1) if return_sequences else h), h, c


def np_gru(x, W, U, b):
    n, t, _ = x.shape
    u = U.shape[0]
    h = np.zeros((n, u))
    for s in range(t):
        xz = x[:, s] @ W + b[0]
        rz = h @ U + b[1]
        z = _sig(xz[:, :u] + rz[:, :u]); r = _sig(xz[:, u:2 * u] + rz[:, u:2 * u])
        hh = np.tanh(xz[:, 2 * u:] + r * rz[:, 2 * u:])
        h = z * h + (1 - z) * hh
    return h


def np_simple_rnn(x, W, U, b):
    h = np.zeros((x.shape[0], U.shape[0]))
    for s in range(x.shape[1]):
        h = np.tanh(x[:, s] @ W + h @ U + b)
    return h


def np_mha(q, v, wq, bq, wk, bk, wv, bv, wo, bo):
    def proj(x, w, b):   # (B,T,D) x (D,H,k) -> (B,H,T,k)
        return np.einsum("btd,dhk->bhtk", x, w) + b.transpose(0, 1)[None, :, None, :]
    Q, K, V = proj(q, wq, bq), proj(v, wk, bk), proj(v, wv, bv)
    s = np.einsum("bhqk,bhtk->bhqt", Q, K) / np.sqrt(wq.shape[-1])
    a = _softmax(s)
    ctx = np.einsum("bhqt,bhtv->bqhv", a, V)
    return np.einsum("bqhv,hvd->bqd", ctx, wo) + bo


# -- the table: (factory, input shape without batch, output shape, params, numpy forward) ----------
def _fw_dense(x, w):
    return np.maximum(x @ w[0] + w[1], 0)


CASES = [
    ("dense", lambda: L.Dense(5, activation="relu"), (4,), (None, 5), 25, _fw_dense),
    ("dense3d", lambda: L.Dense(3), (2, 4), (None, 2, 3), 15, lambda x, w: x @ w[0] + w[1]),
    ("activation", lambda: L.Activation("tanh"), (4,), (None, 4), 0, lambda x, w: np.tanh(x)),
    ("dropout", lambda: L.Dropout(0.5), (4,), (None, 4), 0, lambda x, w: x),
    ("flatten", lambda: L.Flatten(), (2, 3, 2), (None, 12), 0, lambda x, w: x.reshape(len(x), -1)),
    ("reshape", lambda: L.Reshape((3, -1)), (6,), (None, 3, 2), 0, lambda x, w: x.reshape(-1, 3, 2)),
    ("conv_valid", lambda: L.Conv2D(3, (3, 3)), (6, 6, 2), (None, 4, 4, 3), 57,
     lambda x, w: np_conv2d(x, w[0]) + w[1]),
    ("conv_same_stride", lambda: L.Conv2D(2, 3, strides=2, padding="same"), (7, 7, 1), (None, 4, 4, 2), 20,
     lambda x, w: np_conv2d(x, w[0], (2, 2), "same") + w[1]),
    ("conv_dilated", lambda: L.Conv2D(2, 3, dilation_rate=2, use_bias=False), (7, 7, 1), (None, 3, 3, 2), 18,
     lambda x, w: np_conv2d(x, w[0], dilation=(2, 2))),
    ("maxpool", lambda: L.MaxPooling2D((2, 2)), (4, 6, 2), (None, 2, 3, 2), 0,
     lambda x, w: np_pool(x, 2, np.max)),
    ("avgpool", lambda: L.AveragePooling2D(2), (4, 4, 1), (None, 2, 2, 1), 0,
     lambda x, w: np_pool(x, 2, np.mean)),
    ("gap", lambda: L.GlobalAveragePooling2D(), (3, 3, 2), (None, 2), 0, lambda x, w: x.mean((1, 2))),
    ("lstm", lambda: L.LSTM(4), (5, 3), (None, 4), 4 * (3 * 4 + 4 * 4 + 4),
     lambda x, w: np_lstm(x, *w)[0]),
    ("lstm_seq", lambda: L.LSTM(4, return_sequences=True), (5, 3), (None, 5, 4), 128,
     lambda x, w: np_lstm(x, *w, return_sequences=True)[0]),
    ("gru", lambda: L.GRU(4), (5, 3), (None, 4), 3 * (3 * 4 + 4 * 4) + 2 * 12, lambda x, w: np_gru(x, *w)),
    ("simple_rnn", lambda: L.SimpleRNN(4), (5, 3), (None, 4), 3 * 4 + 16 + 4,
     lambda x, w: np_simple_rnn(x, *w)),
    ("embedding", lambda: L.Embedding(10, 3), (4,), (None, 4, 3), 30, None),
    ("batchnorm", lambda: L.BatchNormalization(), (4,), (None, 4), 16,
     lambda x, w: (x - w[2]) / np.sqrt(w[3] + 1e-3) * w[0] + w[1]),
    ("layernorm", lambda: L.LayerNormalization(), (4,), (None, 4), 8,
     lambda x, w: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * w[0] + w[1]),
]


def _randomize(model):
    ws = [RNG.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()]
    for i, w in enumerate(model.weights):
        if "moving_variance" in w.name:
            ws[i] = np.abs(ws[i]) + 0.5
    model.set_weights(ws)
    return ws


@pytest.mark.parametrize("name,make,ishape,oshape,nparams,forward", CASES, ids=[c[0] for c in CASES])
def test_layer(name, make, ishape, oshape, nparams, forward):
    layer = make()
    inp = L.Input(shape=ishape, dtype="int32" if name == "embedding" else "float32")
    out = layer(inp)
    assert out.shape == oshape
    model = Model(inp, out)
    assert layer.count_params() == nparams
    assert model.count_params() == nparams
    # direct call on a graph tensor with an unknown batch
    g = gc.Graph()
    with g.as_default():
        ph = gc.placeholder(inp.dtype, (None,) + ishape)
        fresh = type(layer).from_config(layer.get_config())
        assert fresh(ph).shape == oshape
    # config round trip
    cfg = layer.get_config()
    assert type(layer).from_config(cfg).get_config() == cfg
    # values against numpy
    if name == "embedding":
        x = RNG.integers(0, 10, (3,) + ishape)
        w = _randomize(model)
        np.testing.assert_allclose(model.predict(x, verbose=0), w[0][x], rtol=1e-5)
        return
    x = RNG.normal(size=(3,) + ishape).astype(np.float32)
    w = _randomize(model)
    got = model.predict(x, verbose=0)
    assert got.shape == (3,) + oshape[1:]
    if forward is not None:
        np.testing.assert_allclose(got, forward(x.astype(np.float64), [a.astype(np.float64) for a in w]),
                                   rtol=2e-4, atol=2e-5)


TRAINABLE = [c for c in CASES if c[4] > 0]


@pytest.mark.parametrize("name,make,ishape,oshape,nparams,forward", TRAINABLE,
                         ids=[c[0] for c in TRAINABLE])
def test_one_step_lowers_loss(name, make, ishape, oshape, nparams, forward):
    layer = make()
    inp = L.Input(shape=ishape, dtype="int32" if name == "embedding" else "float32")
    h = layer(inp)
    if len(h.shape) > 2:
        h = L.Flatten()(h)
    model = Model(inp, L.Dense(1, kernel_initializer="ones")(h))
    model.compile(optimizer=SGD(1e-3), loss="mse")
    x = RNG.integers(0, 10, (8,) + ishape) if name == "embedding" else \
        RNG.normal(size=(8,) + ishape).astype(np.float32)
    y = RNG.normal(size=(8, 1)).astype(np.float32)
    before = model.evaluate(x, y, verbose=0)
    w0 = layer.get_weights()
    model.train_on_batch(x, y)
    after = model.evaluate(x, y, verbose=0)
    assert after < before
    assert any(not np.allclose(a, b) for a, b in zip(w0, layer.get_weights()))


def test_lstm_return_state_and_initial_state():
    inp = L.Input(shape=(5, 3))
    seq, h, c = L.LSTM(4, return_sequences=True, return_state=True)(inp)
    assert seq.shape == (None, 5, 4) and h.shape == (None, 4) and c.shape == (None, 4)
    model = Model(inp, [seq, h, c])
    x = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    W, U, b = model.get_weights()
    s, hh, cc = model.predict(x)
    es, eh, ec = np_lstm(x, W, U, b, return_sequences=True)
    np.testing.assert_allclose(s, es, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hh, eh, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cc, ec, rtol=1e-4, atol=1e-5)
    assert np.allclose(b[4:8], 1.0)   # unit_forget_bias


@pytest.mark.parametrize("cls", [L.LSTM, L.GRU, L.SimpleRNN])
@pytest.mark.parametrize("seqs", [False, True])
def test_go_backwards_reads_the_sequence_reversed(cls, seqs):
    # Keras: go_backwards runs the steps last to first (and returns the outputs in that order)
    x = RNG.normal(size=(3, 6, 2)).astype(np.float32)
    models = []
    for back in (False, True):
        inp = L.Input(shape=(6, 2))
        models.append(Model(inp, cls(4, go_backwards=back, return_sequences=seqs)(inp)))
    models[1].set_weights(models[0].get_weights())
    want = models[0].predict(x[:, ::-1])
    np.testing.assert_allclose(models[1].predict(x), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(models[0].predict(x), want, atol=1e-3)


def test_lstm_fused_cell_matches_the_primitive_op_cell():
    # default activations run the fused lstm_cell op; any other activation object (here the same
    # tanh, wrapped) runs primitive ops: forward values, losses and updated weights agree
    x = RNG.normal(size=(6, 7, 3)).astype(np.float32)
    y = RNG.normal(size=(6, 2)).astype(np.float32)
    models = []
    for act in ("tanh", lambda t: gc.tanh(t)):
        inp = L.Input(shape=(7, 3))
        m = Model(inp, L.Dense(2)(L.LSTM(5, activation=act, return_sequences=False)(inp)))
        m.compile(optimizer=SGD(0.1), loss="mse")
        models.append(m)
    models[1].set_weights(models[0].get_weights())
    np.testing.assert_allclose(models[0].predict(x), models[1].predict(x), rtol=1e-5, atol=1e-6)
    losses = [[m.train_on_batch(x, y) for _ in range(3)] for m in models]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    ops = [{g.op(n) for g, n in walk(m._state.graph)} for m in models]    # the loop bodies' ops too
    assert {"lstm_cell", "lstm_cell_grad"} <= ops[0] and "lstm_cell" not in ops[1]


def test_multi_head_attention_matches_numpy():
    inp = L.Input(shape=(4, 6))
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3)
    out = mha(inp, inp)
    assert out.shape == (None, 4, 6)
    model = Model(inp, out)
    assert mha.count_params() == 3 * (6 * 2 * 3 + 2 * 3) + 2 * 3 * 6 + 6
    w = _randomize(model)
    x = RNG.normal(size=(2, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), np_mha(x, x, *w), rtol=1e-4, atol=1e-5)
    cfg = mha.get_config()
    assert L.MultiHeadAttention.from_config(cfg).get_config() == cfg


def test_merge_layers():
    a, b = L.Input(shape=(3,)), L.Input(shape=(3,))
    s, c = L.Add()([a, b]), L.Concatenate()([a, b])
    assert s.shape == (None, 3) and c.shape == (None, 6)
    model = Model([a, b], [s, c])
    x1, x2 = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    got_s, got_c = model.predict([x1, x2])
    # float32 sums of float64 draws: an absolute floor too, for sums that nearly cancel
    np.testing.assert_allclose(got_s, x1 + x2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_c, np.concatenate([x1, x2], -1), rtol=1e-6, atol=1e-7)


def test_input_shape_and_input_dim_kwargs():
    assert Sequential([L.Dense(2, input_dim=7)]).layers[0].input_shape == (None, 7)
    m = Sequential([L.Conv2D(2, 3, input_shape=(5, 5, 1))])
    assert m.outputs[0].shape == (None, 3, 3, 2)


def test_initializers_and_activation_callable():
    layer = L.Dense(3, kernel_initializer="zeros", bias_initializer="ones",
                    activation=lambda t: t * 2.0)
    m = Sequential([layer], name="x")
    m.build((None, 2))
    np.testing.assert_array_equal(m.predict(np.ones((1, 2))), [[2.0, 2.0, 2.0]])
    he = L.Dense(100, kernel_initializer="he_normal", input_dim=400)
    Sequential([he]).build()
    assert abs(he.get_weights()[0].std() - np.sqrt(2 / 400)) < 0.01


def test_kernel_regularizer_adds_loss():
    m = Sequential([L.Dense(1, input_dim=2, kernel_initializer="ones", kernel_regularizer="l2")])
    m.compile("sgd", "mse")
    x, y = np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32)
    assert m.train_on_batch(x, y) == pytest.approx(0.01 * 2, rel=1e-5)   # l2(0.01) * sum(w^2)


def test_dropout_only_in_training():
    m = Sequential([L.Dropout(0.5, input_shape=(1000,))])
    x = np.ones((2, 1000), np.float32)
    np.testing.assert_array_equal(m.predict(x), x)
    g = gc.Graph()
    with g.as_default():
        ph = gc.placeholder("float32", (None, 1000))
        y = L.Dropout(0.5)(ph, training=True)
    out = gc.Session(g).run(y, {ph: x})
    assert 0.3 < (out == 0).mean() < 0.7 and set(np.unique(out)) <= {0.0, 2.0}


def test_batchnorm_updates_moving_stats_in_fit():
    bn = L.BatchNormalization(momentum=0.5)
    m = Sequential([bn, L.Dense(1)])
    m.build((None, 3))
    m.compile("sgd", "mse")
    x = RNG.normal(5.0, 2.0, size=(64, 3)).astype(np.float32)
    m.fit(x, np.zeros((64, 1)), batch_size=64, epochs=3, verbose=0)
    _, _, mm, mv = bn.get_weights()
    assert np.allclose(mm, x.mean(0) * (1 - 0.5 ** 3), rtol=1e-3)
    assert np.all(mv > 1.0)


def test_relu_activation_with_threshold_matches_keras_formula():
    import graphc as gc
    from graphc import activations
    x = np.array([-2.0, -0.5, 0.5, 1.0, 3.0], np.float32)
    y = activations.relu(gc.constant(x), negative_slope=0.1, max_value=2.0, threshold=0.75)
    want = np.minimum(np.where(x >= 0.75, x, 0.1 * (x - 0.75)), 2.0)
    np.testing.assert_allclose(gc.Session().run(y), want, rtol=1e-6)
