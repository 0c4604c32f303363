"""Initializers: each one's statistics as Keras defines them (mean, standard deviation, limits,
fans of dense and conv kernels), seeded reproducibility, and get/serialize/deserialize."""
import math

import numpy as np
import pytest

from graphc import initializers as I

SHAPE = (240, 260)       # 62400 draws: sample std within ~1% of the true one
FAN_IN, FAN_OUT = 240.0, 260.0


def stats(a):
    return float(a.mean()), float(a.std()), float(a.min()), float(a.max())


def test_constant_initializers():
    assert (I.Zeros()((2, 3)) == 0).all() and I.Zeros()((2, 3)).dtype == np.float32
    assert (I.Ones()((4,), dtype="float64") == 1).all() and I.Ones()((4,), "float64").dtype == np.float64
    np.testing.assert_array_equal(I.Constant(2.5)((2, 2)), np.full((2, 2), 2.5, np.float32))
    np.testing.assert_array_equal(I.Identity(gain=3.0)((3, 4)), 3 * np.eye(3, 4))
    with pytest.raises(ValueError, match=r"Identity initializer needs a 2-D shape, got \(2, 2, 2\)"):
        I.Identity()((2, 2, 2))


def test_random_normal_uniform_truncated():
    mean, std, lo, hi = stats(I.RandomNormal(mean=1.0, stddev=0.5, seed=1)(SHAPE))
    assert mean == pytest.approx(1.0, abs=0.01) and std == pytest.approx(0.5, rel=0.02)
    mean, std, lo, hi = stats(I.RandomUniform(-0.2, 0.6, seed=1)(SHAPE))
    assert -0.2 <= lo < -0.199 and 0.599 < hi <= 0.6 and mean == pytest.approx(0.2, abs=0.005)
    assert std == pytest.approx(0.8 / math.sqrt(12), rel=0.02)
    mean, std, lo, hi = stats(I.TruncatedNormal(mean=0.5, stddev=0.1, seed=1)(SHAPE))
    # a normal cut at two standard deviations: std 0.8796 * stddev, all within mean +- 2 stddev
    assert 0.3 <= lo and hi <= 0.7 and mean == pytest.approx(0.5, abs=0.002)
    assert std == pytest.approx(0.1 * 0.87962566, rel=0.02)
    defaults = I.RandomNormal().get_config(), I.RandomUniform().get_config(), I.TruncatedNormal().get_config()
    assert defaults == ({"mean": 0.0, "stddev": 0.05, "seed": None},
                        {"minval": -0.05, "maxval": 0.05, "seed": None},
                        {"mean": 0.0, "stddev": 0.05, "seed": None})


@pytest.mark.parametrize("cls, scale, fan, dist", [
    (I.GlorotUniform, 1.0, (FAN_IN + FAN_OUT) / 2, "uniform"),
    (I.GlorotNormal, 1.0, (FAN_IN + FAN_OUT) / 2, "truncated_normal"),
    (I.HeNormal, 2.0, FAN_IN, "truncated_normal"),
    (I.HeUniform, 2.0, FAN_IN, "uniform"),
    (I.LecunNormal, 1.0, FAN_IN, "truncated_normal"),
    (I.LecunUniform, 1.0, FAN_IN, "uniform"),
])
def test_variance_scaling_presets(cls, scale, fan, dist):
    w = cls(seed=3)(SHAPE)
    mean, std, lo, hi = stats(w)
    want_std = math.sqrt(scale / fan)      # Keras: variance scale / fan for every distribution
    assert mean == pytest.approx(0.0, abs=0.003) and std == pytest.approx(want_std, rel=0.02)
    if dist == "uniform":
        limit = math.sqrt(3 * scale / fan)     # glorot_uniform: sqrt(6 / (fan_in + fan_out))
        assert -limit <= lo < -0.99 * limit and 0.99 * limit < hi <= limit
    else:   # truncated at two standard deviations of the untruncated normal
        bound = 2 * want_std / 0.87962566103423978
        assert -bound <= lo and hi <= bound and hi > 0.95 * bound
    assert cls().get_config() == {"seed": None}


def test_variance_scaling_modes_distributions_and_conv_fans():
    assert I.compute_fans((3, 3, 4, 8)) == (36.0, 72.0)
    assert I.compute_fans((5,)) == (5.0, 5.0) and I.compute_fans(()) == (1.0, 1.0)
    # a conv kernel (3, 3, 4, 8000): fan_in 3*3*4, fan_out 3*3*8000 (8000 outputs for statistics)
    for mode, fan in (("fan_in", 36.0), ("fan_out", 72000.0), ("fan_avg", (36.0 + 72000.0) / 2)):
        w = I.VarianceScaling(scale=2.0, mode=mode, distribution="untruncated_normal", seed=5)((3, 3, 4, 8000))
        assert float(w.std()) == pytest.approx(math.sqrt(2.0 / fan), rel=0.02), mode
    w = I.VarianceScaling(distribution="uniform", seed=5)((2, 3))   # fan 2 -> limit sqrt(1.5)
    assert np.abs(w).max() <= math.sqrt(3 / 2)
    assert I.VarianceScaling(distribution="normal").distribution == "truncated_normal"
    with pytest.raises(ValueError, match="mode must be fan_in, fan_out or fan_avg, got 'fan'"):
        I.VarianceScaling(mode="fan")
    with pytest.raises(ValueError, match="unknown distribution 'cauchy'"):
        I.VarianceScaling(distribution="cauchy")


def test_orthogonal():
    for shape in ((6, 4), (4, 6), (2, 3, 5)):
        w = I.Orthogonal(gain=2.0, seed=1)(shape).reshape(-1, shape[-1]).astype(np.float64)
        small = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        np.testing.assert_allclose(small, 4.0 * np.eye(min(w.shape)), atol=1e-5)


def test_seeded_initializers_are_reproducible_and_vary_per_call():
    for cls in (I.RandomNormal, I.RandomUniform, I.TruncatedNormal, I.GlorotUniform, I.HeNormal, I.Orthogonal):
        a, b = cls(seed=11), cls(seed=11)
        first, second = a((5, 5)), a((5, 5))
        np.testing.assert_array_equal(first, b((5, 5)))           # same seed, same sequence
        np.testing.assert_array_equal(second, b((5, 5)))
        assert not np.array_equal(first, second)                   # each call draws anew
        assert not np.array_equal(first, cls(seed=12)((5, 5)))


def test_unseeded_initializers_follow_the_global_seed():
    I.set_seed(42)
    a = I.GlorotUniform()((4, 4))
    I.set_seed(42)
    np.testing.assert_array_equal(I.GlorotUniform()((4, 4)), a)
    assert not np.array_equal(I.GlorotUniform()((4, 4)), a)


def test_get_serialize_deserialize():
    assert I.get(None) is None
    for name, cls in (("zeros", I.Zeros), ("one", I.Ones), ("normal", I.RandomNormal), ("uniform", I.RandomUniform),
                      ("he_normal", I.HeNormal), ("GlorotUniform", I.GlorotUniform), ("Orthogonal", I.Orthogonal),
                      ("IDENTITY", I.Identity)):
        assert type(I.get(name)) is cls, name
    init = I.VarianceScaling(scale=0.5, mode="fan_out", distribution="uniform", seed=9)
    assert I.get(init) is init and type(I.get(I.HeUniform)) is I.HeUniform

    def fn(shape, dtype="float32"):
        return np.zeros(shape, dtype)
    assert I.get(fn) is fn and I.get("mine", custom_objects={"mine": fn}) is fn
    for obj in (init, I.Constant(3.0), I.Orthogonal(gain=0.5, seed=2), I.HeNormal(seed=4), I.Identity(2.0)):
        cfg = I.serialize(obj)
        again = I.deserialize(cfg)
        assert type(again) is type(obj) and again.get_config() == obj.get_config()
        assert cfg["class_name"] == type(obj).__name__
    assert repr(I.Constant(1.5)) == "Constant(value=1.5)"
    assert I.serialize(None) is None and type(I.deserialize("ones")) is I.Ones
    with pytest.raises(ValueError, match=r"unknown initializer 'glorot' \(did you mean 'glorot_normal'\?\)"):
        I.get("glorot")
    with pytest.raises(ValueError, match="cannot serialize the initializer <function"):
        I.serialize(fn)
    with pytest.raises(ValueError, match="could not interpret the initializer 1.5"):
        I.get(1.5)
