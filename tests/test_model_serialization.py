"""Model configs: to_json/model_from_json, clone_model, serialize_layer/deserialize_layer with
custom_objects, Sequential's add/pop and its config, load_model's compile settings (Loss
objects, per-output losses) and its errors."""
import json

import numpy as np
import pytest

from graphc import layers as L
from graphc import losses
from graphc.layers.base import Layer
from graphc.models import (Model, Sequential, clone_model, deserialize_layer, load_model,
                           model_from_json, serialize_layer)
from graphc.optimizers import Adam

X = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)


class Scale(Layer):
    """Multiplies by a constant factor (a layer defined by the user)."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs, training=None):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class Shift(Scale):
    def call(self, inputs, training=None):
        return inputs + self.factor


def _two_headed():
    inp = L.Input(shape=(4,), name="x")
    h = L.Dense(3, activation="relu", name="hidden")(inp)
    return Model(inp, [L.Dense(2, name="a")(h), Scale(3.0, name="b")(L.Dense(1, name="c")(h))])


def test_json_round_trip_keeps_architecture_and_takes_weights():
    m = _two_headed()
    spec = json.loads(m.to_json())
    assert spec["class_name"] == "Functional" and [l["class_name"] for l in spec["config"]["layers"]] == \
        ["InputLayer", "Dense", "Dense", "Dense", "Scale"]
    again = model_from_json(m.to_json())
    assert again.get_config() == m.get_config()
    again.set_weights(m.get_weights())
    for a, b in zip(again.predict(X), m.predict(X)):
        np.testing.assert_array_equal(a, b)


def test_clone_model_has_fresh_weights():
    m = Sequential([L.Dense(3, input_dim=4), L.Dense(1)])
    c = clone_model(m)
    assert type(c) is Sequential and c.get_config()["layers"] == m.get_config()["layers"]
    assert not np.array_equal(c.get_weights()[0], m.get_weights()[0])
    f = clone_model(_two_headed())
    assert type(f) is Model and len(f.outputs) == 2


def test_custom_objects_choose_the_class():
    spec = serialize_layer(Scale(4.0, name="s"))
    assert spec == {"class_name": "Scale", "config": {"name": "s", "trainable": True, "dtype": "float32",
                                                      "factor": 4.0}}
    assert type(deserialize_layer(spec)) is Scale
    swapped = deserialize_layer(spec, custom_objects={"Scale": Shift})
    assert type(swapped) is Shift and swapped.factor == 4.0
    m = Sequential([L.Dense(2, input_dim=4, name="d"), Scale(2.0, name="s")])
    m2 = model_from_json(m.to_json(), custom_objects={"Scale": Shift})
    m2.set_weights(m.get_weights())
    np.testing.assert_allclose(m2.predict(X), m.predict(X) / 2.0 + 2.0, rtol=1e-6)   # Dense, then + 2
    with pytest.raises(TypeError, match=r"custom_objects\['Scale'\] is <function.*not a graphc Layer class"):
        deserialize_layer(spec, custom_objects={"Scale": lambda x: x})


def test_deserialize_layer_errors():
    with pytest.raises(ValueError, match="a serialized layer is a dict with 'class_name' and 'config', got 'Dense'"):
        deserialize_layer("Dense")
    with pytest.raises(ValueError, match="unknown layer class 'Dense2'; known: .*Dense"):
        deserialize_layer({"class_name": "Dense2", "config": {}})


def test_sequential_add_pop_and_inputs():
    m = Sequential()
    m.add(L.Input(shape=(4,), dtype="float64"))
    m.add(L.Dense(2, dtype="float64"))
    assert m.predict(X).dtype == np.float64 and m.predict(X).shape == (5, 2)
    cfg = m.get_config()
    assert cfg["input_dtype"] == "float64" and cfg["build_input_shape"] == [None, 4]
    assert Sequential.from_config(cfg).predict(X).dtype == np.float64
    with pytest.raises(ValueError, match="an Input can only be the first thing added"):
        m.add(L.Input(shape=(2,)))
    d = L.Dense(3, dtype="float64")
    m.add(d)
    assert m.predict(X).shape == (5, 3)
    with pytest.raises(ValueError, match=f"layer {d.name!r} is already in this model"):
        m.add(d)
    assert m.pop() is d and m.predict(X).shape == (5, 2)
    with pytest.raises(TypeError, match="Sequential.add expects a Layer, got 'dense'"):
        m.add("dense")
    with pytest.raises(TypeError, match="there are no layers in the model to pop"):
        Sequential().pop()
    with pytest.raises(ValueError, match="has no layers; add some with .add()"):
        Sequential().build()
    lazy = Sequential([L.Dense(2)])
    with pytest.raises(ValueError, match="has not been built: give the first layer input_shape="):
        lazy.count_params()
    assert lazy.predict(X).shape == (5, 2)        # built from the first data it sees
    built = Sequential([L.Dense(2)])
    built.build((None, 4))
    assert built.count_params() == 10


def test_load_model_restores_loss_objects_and_per_output_losses(tmp_path):
    m = Sequential([L.Dense(1, input_dim=4)])
    m.compile(optimizer=Adam(0.02), loss=losses.Huber(delta=0.5), metrics=["mae"], weighted_metrics=["mse"])
    m.save(tmp_path / "h.npz")
    h = load_model(tmp_path / "h.npz")
    assert h._compile_args["weighted_metrics"] == ["mse"] and h._compile_args["metrics"] == ["mae"]
    assert isinstance(h._compile_args["loss"], losses.Huber) and h._compile_args["loss"].kwargs == {"delta": 0.5}
    y = np.ones((5, 1), np.float32)
    assert h.evaluate(X, y, verbose=0) == pytest.approx(m.evaluate(X, y, verbose=0), rel=1e-6)
    assert h.optimizer.learning_rate == pytest.approx(0.02)
    two = _two_headed()
    two.compile(optimizer="sgd", loss={"a": losses.MeanAbsoluteError(), "b": "mse"}, loss_weights=[1.0, 0.5])
    two.save(tmp_path / "two.npz")
    back = load_model(tmp_path / "two.npz")
    assert isinstance(back._compile_args["loss"]["a"], losses.MeanAbsoluteError)
    assert back._compile_args["loss"]["b"] == "mse"
    ys = [np.zeros((5, 2), np.float32), np.ones((5, 1), np.float32)]
    np.testing.assert_allclose(back.evaluate(X, ys, verbose=0), two.evaluate(X, ys, verbose=0), rtol=1e-6)
    assert not load_model(tmp_path / "two.npz", compile=False).__dict__.get("compiled", False)


def test_save_and_load_errors(tmp_path):
    m = Sequential([L.Dense(1, input_dim=4)])
    path = tmp_path / "m.npz"
    m.save(path)
    with pytest.raises(FileExistsError, match="exists and overwrite=False"):
        m.save(path, overwrite=False)
    m.save_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="is not a graphc model file"):
        load_model(tmp_path / "w.npz")
    m.compile(optimizer="sgd", loss=lambda t, p: p)      # a plain function: saved uncompiled
    with pytest.warns(UserWarning, match=r"is saved without its compile settings \(cannot serialize "
                                         r"the loss <function.*compile it again after loading"):
        m.save(path)
    assert not getattr(load_model(path), "compiled", False)


def _resume_model(optimizer):
    from graphc.utils import set_random_seed
    set_random_seed(5)
    m = Sequential([L.Dense(8, activation="tanh", input_dim=6), L.BatchNormalization(),
                    L.Dense(3, activation="softmax")])
    m.compile(optimizer, "categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("optimizer", [lambda: Adam(0.02, amsgrad=True),
                                       lambda: __import__("graphc").optimizers.SGD(0.1, momentum=0.9)])
def test_train_2_epochs_equals_train_1_save_load_train_1(tmp_path, optimizer):
    """The model file holds the optimizer's iteration count and slots: training resumes exactly."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 96)]
    a = _resume_model(optimizer())
    a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    b = _resume_model(optimizer())
    b.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    b.save(tmp_path / "m.npz")
    c = load_model(tmp_path / "m.npz")
    assert c._state.session.run(c.optimizer.iterations) == 6
    c.fit(x, y, batch_size=16, epochs=2, initial_epoch=1, shuffle=False, verbose=0)
    for u, v in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-6)
    # without the optimizer state the optimizer restarts (iteration 0, zero slots): another result
    b.save(tmp_path / "no_opt.npz", include_optimizer=False)
    d = load_model(tmp_path / "no_opt.npz")
    d.fit(x, y, batch_size=16, epochs=2, initial_epoch=1, shuffle=False, verbose=0)
    assert max(np.abs(u - v).max() for u, v in zip(a.get_weights(), d.get_weights())) > 1e-4


def test_optimizer_state_that_does_not_fit_is_refused(tmp_path):
    x, y = np.ones((8, 6), np.float32), np.eye(3, dtype="float32")[np.arange(8) % 3]
    m = _resume_model(Adam(0.01))
    m.fit(x, y, batch_size=4, verbose=0)
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["optimizer_00001"] = np.zeros((2, 2), np.float32)      # the first slot, wrong shape
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"bad.npz: optimizer variable .* is \(6, 8\) float32 but the "
                                         r"file holds \(2, 2\) float32"):
        load_model(tmp_path / "bad.npz")
