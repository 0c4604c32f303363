"""Models: the seed programs on the digits data, compile/fit/evaluate/predict, callbacks,
summary, weights, save/load (atomic), datasets and utils."""
import os

import numpy as np
import pytest

from graphc import callbacks as C
from graphc import layers as L
from graphc.datasets import digits, mnist
from graphc.models import Model, Sequential, load_model
from graphc.optimizers import SGD, Adam
from graphc.utils import to_categorical

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


@pytest.fixture(scope="module")
def digit_data():
    (xtr, ytr), (xte, yte) = digits.load_data()
    return xtr.reshape(len(xtr), 64), ytr, xte.reshape(len(xte), 64), yte


def _mlp(input_dim=64):
    model = Sequential()
    model.add(L.Dense(units=64, activation="relu", input_dim=input_dim))
    model.add(L.Dense(units=10, activation="softmax"))
    return model


def test_seed_mlp_trains_on_digits(digit_data):
    xtr, ytr, xte, yte = digit_data
    model = _mlp()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(xtr, to_categorical(ytr, 10), epochs=10, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    loss, acc = model.evaluate(xte, to_categorical(yte, 10), verbose=0)
    assert acc >= 0.93, acc
    pred = model.predict(xte, batch_size=7)
    assert pred.shape == (len(xte), 10)
    assert np.mean(pred.argmax(1) == yte) == pytest.approx(acc, abs=1e-6)


def test_cnn_seed_shapes_and_training(digit_data):
    xtr, ytr, _, _ = digit_data
    x = xtr[:256].reshape(-1, 8, 8, 1)
    model = Sequential([L.Conv2D(8, (3, 3), activation="relu", input_shape=(8, 8, 1)),
                        L.MaxPooling2D(pool_size=(2, 2)), L.Flatten(),
                        L.Dense(32, activation="relu"), L.Dense(10, activation="softmax")])
    assert model.outputs[0].shape == (None, 10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, ytr[:256], epochs=3, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_functional_lstm_varying_lengths():
    rng = np.random.default_rng(0)
    inp = L.Input(shape=(None, 3))
    out = L.Dense(2, activation="softmax")(L.LSTM(8, return_sequences=True)(inp))
    model = Model(inputs=inp, outputs=out)
    assert out.shape == (None, None, 2)
    model.compile(optimizer=Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for t in (4, 6, 4):   # label: is the first feature positive
        x = rng.normal(size=(32, t, 3)).astype(np.float32)
        model.fit(x, (x[..., 0] > 0).astype(np.int32), epochs=5, batch_size=32, verbose=0)
    x = rng.normal(size=(64, 5, 3)).astype(np.float32)
    acc = model.evaluate(x, (x[..., 0] > 0).astype(np.int32), verbose=0)[1]
    assert acc > 0.8
    assert model.predict(x[:3]).shape == (3, 5, 2)


def test_fused_softmax_cross_entropy():
    model = Sequential([L.Dense(3, activation="softmax", input_dim=2, kernel_initializer="ones")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.array([[1000.0, -1000.0]], np.float32)
    y = np.array([[0.0, 0.0, 1.0]], np.float32)
    model.set_weights([np.array([[50.0, 0.0, -50.0], [0.0, 0.0, 0.0]], np.float32), np.zeros(3, np.float32)])
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss) and loss == pytest.approx(100000.0, rel=1e-4)   # exact, not clipped
    ops = {model.graph.op(n) for n in model.graph.nodes()}
    assert "softmax_cross_entropy_with_logits" in ops


@pytest.mark.parametrize("loss,y,last,acc_fn", [
    ("categorical_crossentropy", np.eye(3)[[0, 1, 2, 1]], 3, "categorical"),
    ("sparse_categorical_crossentropy", np.array([0, 1, 2, 1]), 3, "sparse"),
    ("binary_crossentropy", np.array([[0], [1], [1], [0]]), 1, "binary"),
    ("mse", np.array([0.5, 1.0, 2.0, 0.0]), 1, "mae"),
])
def test_losses_and_metrics(loss, y, last, acc_fn):
    act = {"categorical": "softmax", "sparse": "softmax", "binary": "sigmoid", "mae": None}[acc_fn]
    model = Sequential([L.Dense(last, activation=act, input_dim=2)])
    metric = "mae" if acc_fn == "mae" else "accuracy"
    model.compile(optimizer="sgd", loss=loss, metrics=[metric])
    x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x).astype(np.float64)
    if acc_fn == "categorical":
        want = np.mean(p.argmax(1) == y.argmax(1))
        want_loss = -np.mean(np.sum(y * np.log(p), 1))
    elif acc_fn == "sparse":
        want = np.mean(p.argmax(1) == y)
        want_loss = -np.mean(np.log(p[np.arange(4), y]))
    elif acc_fn == "binary":
        want = np.mean((p > 0.5) == y)
        want_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    else:
        want = np.mean(np.abs(p[:, 0] - y))
        want_loss = np.mean((p[:, 0] - y) ** 2)
    assert res[metric] == pytest.approx(want, abs=1e-5)
    assert res["loss"] == pytest.approx(want_loss, rel=1e-4)


def test_multi_io_shared_layer_and_summary(capsys):
    a, b = L.Input(shape=(4,), name="a"), L.Input(shape=(4,), name="b")
    shared = L.Dense(3, activation="relu")
    merged = L.Concatenate()([shared(a), shared(b)])
    out1 = L.Dense(1, name="reg")(merged)
    out2 = L.Dense(2, activation="softmax", name="cls")(merged)
    model = Model(inputs=[a, b], outputs=[out1, out2])
    assert model.count_params() == 15 + 7 + 14
    model.compile(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"],
                  metrics={"cls": ["accuracy"]})
    rng = np.random.default_rng(1)
    xa, xb = rng.normal(size=(16, 4)), rng.normal(size=(16, 4))
    h = model.fit([xa, xb], [rng.normal(size=(16, 1)), rng.integers(0, 2, 16)], epochs=2, verbose=0)
    assert {"loss", "reg_loss", "cls_loss", "cls_accuracy"} <= set(h.history)
    p1, p2 = model.predict({"a": xa, "b": xb})
    assert p1.shape == (16, 1) and p2.shape == (16, 2)
    model.summary()
    text = capsys.readouterr().out
    assert "concatenate" in text and "Total params: 36" in text and "Connected to" in text


def test_sequential_summary_and_deferred_build(capsys):
    m = Sequential([L.Dense(4, activation="relu"), L.Dense(2)])
    with pytest.raises(ValueError, match="not been built"):
        m.summary()
    m.compile("sgd", "mse")
    m.fit(np.zeros((8, 3), np.float32), np.zeros((8, 2), np.float32), verbose=0)
    m.summary()
    out = capsys.readouterr().out
    assert "(None, 4)" in out and "Total params: 26" in out


def test_fit_progress_output(capsys):
    m = _mlp(4)
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    x, y = np.zeros((40, 4), np.float32), np.zeros(40, np.int32)
    m.fit(x, y, epochs=2, batch_size=10, verbose=1, validation_split=0.25)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "3/3 [" in out and "val_accuracy" in out
    m.fit(x, y, epochs=1, batch_size=10, verbose=2)
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and "4/4 - " in out and "loss:" in out


def test_weights_roundtrip_and_train_on_batch():
    m = _mlp(5)
    w = m.get_weights()
    assert [a.shape for a in w] == [(5, 64), (64,), (64, 10), (10,)]
    m.set_weights([np.full_like(a, 0.1) for a in w])
    assert all(np.all(a == np.float32(0.1)) for a in m.get_weights())
    m.compile(SGD(0.1), "categorical_crossentropy", ["accuracy"])
    x, y = np.ones((4, 5), np.float32), np.eye(10)[[1, 2, 3, 4]]
    l1 = m.train_on_batch(x, y)[0]
    l2 = m.train_on_batch(x, y)[0]
    assert l2 < l1
    assert m.predict_on_batch(x).shape == (4, 10)


def test_save_load_roundtrip(tmp_path):
    inp = L.Input(shape=(6,))
    h = L.Dropout(0.3)(L.BatchNormalization()(L.Dense(8, activation="relu")(inp)))
    model = Model(inp, L.Dense(3, activation="softmax")(h))
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(32, 6)).astype(np.float32), rng.integers(0, 3, 32)
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.compiled and loaded.optimizer.learning_rate == pytest.approx(0.01)
    assert loaded.evaluate(x, y, verbose=0)[0] == pytest.approx(model.evaluate(x, y, verbose=0)[0], rel=1e-6)
    seq = _mlp(6)
    seq.save(str(tmp_path / "seq.npz"))
    np.testing.assert_array_equal(load_model(str(tmp_path / "seq.npz")).predict(x), seq.predict(x))


def test_crash_mid_save_keeps_old_file(tmp_path, monkeypatch):
    from graphc.models import saving
    m = _mlp(3)
    path = tmp_path / "m.npz"
    m.save(path)
    before, w_old = path.read_bytes(), m.get_weights()
    m.set_weights([w + 1 for w in w_old])

    def crash(f, arrays):
        f.write(b"PK\x03\x04 partial garbage")
        raise KeyboardInterrupt("simulated crash")
    monkeypatch.setattr(saving, "_savez", crash)
    with pytest.raises(KeyboardInterrupt):
        m.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(path).get_weights()[0], w_old[0])


def test_early_stopping_restores_best(tmp_path):
    m = _mlp(4)
    m.compile(SGD(0.1), "mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = np.zeros((16, 10), np.float32)
    losses = iter([1.0, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1])
    seen = {}

    class FakeVal(C.Callback):   # runs before EarlyStopping: supplies a scripted val_loss
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)
            if epoch == 1:
                seen["best"] = self.model.get_weights()
    es = C.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    ckpt = C.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_loss", save_best_only=True)
    csv_path = tmp_path / "log.csv"
    h = m.fit(x, y, epochs=7, verbose=0, callbacks=[FakeVal(), es, ckpt, C.CSVLogger(str(csv_path))])
    assert len(h.history["loss"]) == 4 and es.stopped_epoch == 3
    for a, b in zip(m.get_weights(), seen["best"]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(load_model(tmp_path / "best.npz").get_weights(), seen["best"]):
        np.testing.assert_array_equal(a, b)
    rows = csv_path.read_text().strip().splitlines()
    assert rows[0] == "epoch,loss,val_loss" and len(rows) == 5


def test_learning_rate_callbacks():
    m = _mlp(4)
    m.compile(SGD(0.1), "mse")
    x, y = np.ones((8, 4), np.float32), np.zeros((8, 10), np.float32)
    w0 = m.get_weights()
    m.fit(x, y, epochs=2, verbose=0, callbacks=[C.LearningRateScheduler(lambda e, lr: 0.0)])
    for a, b in zip(w0, m.get_weights()):
        np.testing.assert_array_equal(a, b)   # lr 0: nothing moves
    assert m.optimizer.learning_rate == 0.0
    m.optimizer.learning_rate = 0.5   # set by the user: taken by the next fit
    r = C.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)
    h = m.fit(x, y, epochs=3, verbose=0, callbacks=[r])
    assert h.history["learning_rate"] == [0.5, 0.5, 0.25]   # logged before reducing
    assert m.optimizer.learning_rate == pytest.approx(0.125)


def test_datasets_and_utils(tmp_path, configure):
    assert to_categorical([[1], [0]], 3).tolist() == [[0, 1, 0], [1, 0, 0]]
    (xtr, ytr), (xte, yte) = digits.load_data()
    assert xtr.shape[1:] == (8, 8) and len(xtr) + len(xte) == 1797 and xtr.max() <= 1.0
    configure(data_dir=None)
    with pytest.raises(FileNotFoundError, match="GRAPHC_DATA"):
        mnist.load_data(str(tmp_path))
    if os.path.exists(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz")):
        configure(data_dir=MNIST_DIR)
        (xtr, ytr), (xte, yte) = mnist.load_data()
        assert xtr.shape == (8000, 28, 28) and xte.shape == (2000, 28, 28) and xtr.dtype == np.uint8
        assert set(np.unique(ytr)) == set(range(10))
