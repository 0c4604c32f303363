"""Regularizers in models: the penalty is added to the reported loss and its gradient to the
update (L1's sign, L2's 2 * l2 * w), bias regularizers, configs through layer round trips,
and the registry's names and errors. (Values on bare tensors: tests/test_optimizers.py.)"""
import numpy as np
import pytest

import graphc as gc
from graphc import regularizers as R
from graphc.layers import Dense
from graphc.models import Sequential, clone_model
from graphc.optimizers import SGD

W0 = np.array([[0.5], [-1.0], [0.0]], np.float32)
X = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0]], np.float32)
Y = np.array([[1.0], [0.0]], np.float32)
LR = 0.1


def _one_step(**dense_kwargs):
    m = Sequential([Dense(1, use_bias=False, kernel_initializer=gc.initializers.Constant(0.0),
                          input_dim=3, **dense_kwargs)])
    m.set_weights([W0])
    m.compile(optimizer=SGD(LR), loss="mse")
    loss = m.train_on_batch(X, Y)
    return loss, m.get_weights()[0]


def _mse_and_grad(w):
    err = X @ w - Y
    return float((err ** 2).mean()), 2 * X.T @ err / len(X)


@pytest.mark.parametrize("reg, penalty, grad", [
    (R.L2(0.3), lambda w: 0.3 * (w ** 2).sum(), lambda w: 0.6 * w),
    (R.L1(0.2), lambda w: 0.2 * np.abs(w).sum(), lambda w: 0.2 * np.sign(w)),
    (R.L1L2(l1=0.2, l2=0.3), lambda w: 0.2 * np.abs(w).sum() + 0.3 * (w ** 2).sum(),
     lambda w: 0.2 * np.sign(w) + 0.6 * w),
    ("l2", lambda w: 0.01 * (w ** 2).sum(), lambda w: 0.02 * w),
    ("l1_l2", lambda w: 0.01 * np.abs(w).sum() + 0.01 * (w ** 2).sum(), lambda w: 0.01 * np.sign(w) + 0.02 * w),
])
def test_penalty_adds_to_loss_and_gradient(reg, penalty, grad):
    loss, w1 = _one_step(kernel_regularizer=reg)
    mse, g = _mse_and_grad(W0.astype(np.float64))
    assert loss == pytest.approx(mse + penalty(W0.astype(np.float64)), rel=1e-5)
    np.testing.assert_allclose(w1, W0 - LR * (g + grad(W0.astype(np.float64))), rtol=1e-5, atol=1e-7)


def test_no_regularizer_is_plain_mse():
    loss, w1 = _one_step()
    mse, g = _mse_and_grad(W0.astype(np.float64))
    assert loss == pytest.approx(mse, rel=1e-6)
    np.testing.assert_allclose(w1, W0 - LR * g, rtol=1e-5)


def test_bias_regularizer_and_model_losses():
    m = Sequential([Dense(2, kernel_regularizer="l1", bias_regularizer=R.L2(0.5), input_dim=3,
                          bias_initializer=gc.initializers.Constant(2.0))])
    m.compile(optimizer="sgd", loss="mse")
    m.build()
    assert len(m.losses) == 2
    k, b = m.get_weights()
    vals = m._ensure_built().session.run(m.losses)
    np.testing.assert_allclose(vals, [0.01 * np.abs(k).sum(), 0.5 * (b ** 2).sum()], rtol=1e-5)


def test_regularizer_configs_survive_model_round_trips():
    m = Sequential([Dense(2, kernel_regularizer=R.L1L2(l1=0.1, l2=0.2), bias_regularizer="l2", input_dim=3)])
    cfg = m.get_config()["layers"][0]["config"]
    assert cfg["kernel_regularizer"] == {"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}}
    again = clone_model(m)
    again.build()
    assert len(again.losses) == 2
    assert again.layers[0].get_config()["kernel_regularizer"] == cfg["kernel_regularizer"]


def test_registry_names_custom_objects_and_errors():
    assert type(R.get("L1")) is R.L1 and type(R.get("l1l2")) is R.L1L2
    assert R.get("L1L2").get_config() == {"l1": 0.0, "l2": 0.0}       # the class: Keras' zero defaults
    assert R.l1_l2().get_config() == {"l1": 0.01, "l2": 0.01}
    assert R.get({"class_name": "L2", "config": {"l2": 0.5}}).l2 == 0.5
    assert repr(R.L1L2(l1=0.5)) == "L1L2(l1=0.5, l2=0.0)"

    def mine(w):
        return gc.reduce_sum(w)
    assert R.get(mine) is mine and R.get("mine", custom_objects={"mine": mine}) is mine
    with pytest.raises(ValueError, match=r"unknown regularizer 'l3'; known regularizers: l1, l1_l2, l1l2, l2"):
        R.get("l3")
    with pytest.raises(ValueError, match="could not interpret the regularizer 0.1"):
        R.get(0.1)
    with pytest.raises(ValueError, match="l1 must be a non-negative number, got -0.5"):
        R.L1L2(l1=-0.5)
    with pytest.raises(ValueError, match="unknown regularizer 'L3'"):
        R.deserialize({"class_name": "L3", "config": {}})
