"""Learning-rate schedules beyond tests/test_optimizers.py's first ten steps: closed forms at
large and boundary steps (graph and numpy), staircase inverse-time decay, warmup edges, a
schedule driving model.fit step by step, configs, get and constructor errors."""
import math

import numpy as np
import pytest

import graphc as gc
from graphc import schedules as S
from graphc.layers import Dense
from graphc.models import Sequential
from graphc.optimizers import SGD

STEPS = [0, 1, 7, 99, 100, 101, 1000, 123456]


def both(sched, step):
    """(numpy value, graph value) at ``step``."""
    t = gc.placeholder("int64", ())
    return float(sched(step)), float(gc.Session(executor="reference").run(sched(t), {t: step}))


@pytest.mark.parametrize("sched, formula", [
    (S.ExponentialDecay(0.3, 100, 0.96), lambda s: 0.3 * 0.96 ** (s / 100)),
    (S.ExponentialDecay(0.3, 100, 0.96, staircase=True), lambda s: 0.3 * 0.96 ** (s // 100)),
    (S.InverseTimeDecay(0.3, 100, 0.5), lambda s: 0.3 / (1 + 0.5 * s / 100)),
    (S.InverseTimeDecay(0.3, 100, 0.5, staircase=True), lambda s: 0.3 / (1 + 0.5 * (s // 100))),
    (S.CosineDecay(0.3, 1000, alpha=0.2),
     lambda s: 0.3 * (0.8 * 0.5 * (1 + math.cos(math.pi * min(s, 1000) / 1000)) + 0.2)),
    (S.CosineDecay(0.1, 1000, warmup_target=0.5, warmup_steps=100),
     lambda s: 0.1 + 0.4 * s / 100 if s < 100 else
     0.5 * 0.5 * (1 + math.cos(math.pi * min(s - 100, 1000) / 1000))),
    (S.PiecewiseConstantDecay([100, 1000], [0.3, 0.2, 0.1]),
     lambda s: 0.3 if s <= 100 else 0.2 if s <= 1000 else 0.1),
])
def test_closed_form_at_large_and_boundary_steps(sched, formula):
    for step in STEPS:
        want = formula(step)
        np_val, graph_val = both(sched, step)
        assert np_val == pytest.approx(want, rel=1e-5, abs=1e-7), step
        assert graph_val == pytest.approx(want, rel=1e-5, abs=1e-7), step


def test_schedule_drives_fit_one_rate_per_step():
    """SGD on w -> 1 with mse from one sample: w_{k+1} = w_k + 2 * lr_k * (1 - w_k)."""
    sched = S.PiecewiseConstantDecay([1, 2], [0.25, 0.125, 0.0625])
    m = Sequential([Dense(1, use_bias=False, kernel_initializer="zeros", input_dim=1)])
    m.compile(optimizer=SGD(sched), loss="mse")
    m.fit(np.ones((1, 1)), np.ones((1, 1)), epochs=4, verbose=0)
    w = 0.0
    for k in range(4):      # iterations 0, 1, 2, 3 -> rates 0.25, 0.25, 0.125, 0.0625
        w += 2 * float(sched(k)) * (1 - w)
    assert m.get_weights()[0].item() == pytest.approx(w, rel=1e-6)
    assert [float(sched(k)) for k in range(4)] == [0.25, 0.25, 0.125, 0.0625]


def test_configs_repr_and_get():
    s = S.CosineDecay(0.1, 10, alpha=0.5, warmup_target=0.2, warmup_steps=3, name="cd")
    assert S.get(S.serialize(s)).get_config() == s.get_config()
    assert S.serialize(s)["class_name"] == "CosineDecay"
    assert S.get(0.01) == 0.01 and S.get(s) is s and S.get(None) is None
    assert repr(S.PiecewiseConstantDecay([1], [2, 3])) == \
        "PiecewiseConstantDecay(boundaries=[1], values=[2.0, 3.0], name='PiecewiseConstant')"
    assert S.ExponentialDecay(1.0, 2, 0.5).get_config()["name"] == "ExponentialDecay"
    assert type(S.deserialize({"class_name": "exponentialdecay",
                               "config": {"initial_learning_rate": 1.0, "decay_steps": 1,
                                          "decay_rate": 0.5}})) is S.ExponentialDecay
    with pytest.raises(ValueError, match=r"unknown learning-rate schedule 'CosineDecayRestarts'"
                                         r".*known learning-rate schedules: CosineDecay, ExponentialDecay"):
        S.deserialize({"class_name": "CosineDecayRestarts", "config": {}})


def test_constructor_errors():
    with pytest.raises(ValueError, match="ExponentialDecay: decay_steps must be > 0, got 0"):
        S.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="InverseTimeDecay: decay_steps must be > 0, got -1"):
        S.InverseTimeDecay(0.1, -1, 0.5)
    with pytest.raises(ValueError, match="CosineDecay: decay_steps must be > 0"):
        S.CosineDecay(0.1, 0)
    with pytest.raises(ValueError, match="need len\\(values\\) == len\\(boundaries\\) \\+ 1, got 2 values and 2"):
        S.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
