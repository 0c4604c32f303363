"""Every loss against a numpy version of Keras 3's formula: per-sample values, ``from_logits``,
label smoothing, sparse labels, the stable path through a softmax/sigmoid output, ``Loss``
reductions and sample weights, ``get``/``serialize``/``deserialize`` and their errors.

Graphs run on the reference interpreter (the oracle; the compiled kernels are checked against
it elsewhere), so these tests compile nothing.
"""
import numpy as np
import pytest

import graphc as gc
from graphc import losses

EPS = 1e-7
RNG = np.random.default_rng(7)
YT = RNG.uniform(0.0, 2.0, (4, 3)).astype(np.float32)
YP = RNG.uniform(0.1, 2.0, (4, 3)).astype(np.float32)
LOGITS = RNG.normal(0.0, 2.0, (4, 3)).astype(np.float32)
ONEHOT = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
LABELS = np.array([0, 2, 1, 2])
BIN = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]], np.float32)


def run(t):
    return gc.Session(executor="reference").run(t)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def log_softmax(x):
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_cce(yt, p):
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(yt * np.log(p)).sum(-1)


def np_bce(yt, p):
    p = np.clip(p, EPS, 1 - EPS)
    return (-(yt * np.log(p) + (1 - yt) * np.log(1 - p))).mean(-1)


def np_hinge_labels(yt):   # Keras converts {0, 1} labels to {-1, 1}, leaves -1/1 labels alone
    return 2 * yt - 1 if np.isin(yt, (0, 1)).all() else yt


# name, numpy reference, y_true, y_pred
CASES = [
    ("mean_squared_error", lambda t, p: ((p - t) ** 2).mean(-1), YT, YP),
    ("mean_absolute_error", lambda t, p: np.abs(p - t).mean(-1), YT, YP),
    ("mean_absolute_percentage_error",
     lambda t, p: 100 * np.abs((t - p) / np.maximum(np.abs(t), EPS)).mean(-1), YT, YP),
    ("mean_squared_logarithmic_error",
     lambda t, p: ((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2).mean(-1),
     YT, YP),
    ("categorical_crossentropy", np_cce, ONEHOT, YP),
    ("binary_crossentropy", np_bce, BIN, sigmoid(LOGITS)),
    ("kl_divergence", lambda t, p: (np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / np.clip(p, EPS, 1))
                                    ).sum(-1), softmax(LOGITS + 1), softmax(LOGITS)),
    ("poisson", lambda t, p: (p - t * np.log(p + EPS)).mean(-1), YT, YP),
    ("hinge", lambda t, p: np.maximum(1 - np_hinge_labels(t) * p, 0).mean(-1), BIN, LOGITS),
    ("hinge", lambda t, p: np.maximum(1 - np_hinge_labels(t) * p, 0).mean(-1), 2 * BIN - 1, LOGITS),
    ("squared_hinge", lambda t, p: (np.maximum(1 - np_hinge_labels(t) * p, 0) ** 2).mean(-1), BIN, LOGITS),
    ("squared_hinge", lambda t, p: (np.maximum(1 - np_hinge_labels(t) * p, 0) ** 2).mean(-1),
     2 * BIN - 1, LOGITS),
    ("huber", lambda t, p: np.where(np.abs(p - t) <= 1, 0.5 * (p - t) ** 2, np.abs(p - t) - 0.5).mean(-1),
     YT, 3 * YP),
    ("log_cosh", lambda t, p: np.log(np.cosh(p - t)).mean(-1), YT, 3 * YP),
    ("cosine_similarity", lambda t, p: -(t * p).sum(-1) / np.linalg.norm(t, axis=-1)
     / np.linalg.norm(p, axis=-1), YT, LOGITS),
]


@pytest.mark.parametrize("name, ref, yt, yp", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_matches_keras_formula(name, ref, yt, yp):
    got = run(losses.get(name)(gc.constant(yt), gc.constant(yp)))
    assert got.shape == (4,)
    np.testing.assert_allclose(got, ref(yt.astype(np.float64), yp.astype(np.float64)), rtol=2e-5, atol=1e-6)


def test_aliases_resolve_to_the_same_functions():
    for alias, fn in [("mse", losses.mean_squared_error), ("MAE", losses.mean_absolute_error),
                      ("mape", losses.mean_absolute_percentage_error),
                      ("msle", losses.mean_squared_logarithmic_error), ("kld", losses.kl_divergence),
                      ("kullback_leibler_divergence", losses.kl_divergence), ("huber_loss", losses.huber),
                      ("logcosh", losses.log_cosh)]:
        assert losses.get(alias) is fn


def test_huber_delta():
    t, p = YT, 3 * YP
    err = np.abs(p - t)
    want = np.where(err <= 0.5, 0.5 * err ** 2, 0.5 * err - 0.125).mean(-1)
    np.testing.assert_allclose(run(losses.Huber(0.5, reduction="none")(t, gc.constant(p))), want, rtol=1e-5)


def test_crossentropies_from_logits_and_through_softmax_output():
    logits = gc.constant(LOGITS)
    want = -(ONEHOT * log_softmax(LOGITS.astype(np.float64))).sum(-1)
    np.testing.assert_allclose(run(losses.categorical_crossentropy(ONEHOT, logits, from_logits=True)),
                               want, rtol=1e-5)
    # from a softmax output, the loss is computed from its logits (stable, exact)
    np.testing.assert_allclose(run(losses.categorical_crossentropy(ONEHOT, gc.softmax(logits))), want,
                               rtol=1e-5)
    big = gc.constant(LOGITS * 100)                     # saturated softmax: clipping would cap it
    want_big = -(ONEHOT * log_softmax(LOGITS.astype(np.float64) * 100)).sum(-1)
    np.testing.assert_allclose(run(losses.categorical_crossentropy(ONEHOT, gc.softmax(big))), want_big,
                               rtol=1e-5, atol=1e-6)
    assert want_big.max() > -np.log(EPS)               # the clipped form could not reach this
    want_s = -log_softmax(LOGITS.astype(np.float64))[np.arange(4), LABELS]
    for labels in (LABELS, LABELS[:, None], LABELS.astype(np.float32)):
        np.testing.assert_allclose(
            run(losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)), want_s, rtol=1e-5)
        np.testing.assert_allclose(run(losses.sparse_categorical_crossentropy(labels, gc.softmax(logits))),
                                   want_s, rtol=1e-5)
    p = softmax(LOGITS.astype(np.float64))
    np.testing.assert_allclose(run(losses.sparse_categorical_crossentropy(LABELS, gc.constant(p.astype(np.float32)))),
                               -np.log(np.clip(p[np.arange(4), LABELS], EPS, 1 - EPS)), rtol=1e-5)
    x = LOGITS.astype(np.float64)
    want_b = (np.maximum(x, 0) - x * BIN + np.log1p(np.exp(-np.abs(x)))).mean(-1)
    np.testing.assert_allclose(run(losses.binary_crossentropy(BIN, logits, from_logits=True)), want_b, rtol=1e-5)
    np.testing.assert_allclose(run(losses.binary_crossentropy(BIN, gc.sigmoid(logits))), want_b, rtol=1e-5)


def test_label_smoothing():
    ls = 0.2
    smooth = ONEHOT * (1 - ls) + ls / 3
    want = -(smooth * log_softmax(LOGITS.astype(np.float64))).sum(-1)
    got = run(losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls, reduction="none")(
        ONEHOT, gc.constant(LOGITS)))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    sb = BIN * (1 - ls) + 0.5 * ls
    p = sigmoid(LOGITS.astype(np.float64))
    got = run(losses.BinaryCrossentropy(label_smoothing=ls, reduction="none")(BIN, gc.constant(p.astype(np.float32))))
    np.testing.assert_allclose(got, np_bce(sb, p), rtol=1e-5)


def test_reductions_and_sample_weight():
    per = ((YP - YT) ** 2).mean(-1)
    w = np.array([1.0, 0.0, 2.0, 0.5], np.float32)
    t, p = gc.constant(YT), gc.constant(YP)
    np.testing.assert_allclose(run(losses.MeanSquaredError()(t, p)), per.mean(), rtol=1e-6)
    np.testing.assert_allclose(run(losses.MeanSquaredError(reduction="sum")(t, p)), per.sum(), rtol=1e-6)
    np.testing.assert_allclose(run(losses.MeanSquaredError(reduction="none")(t, p)), per, rtol=1e-6)
    np.testing.assert_allclose(run(losses.MeanSquaredError()(t, p, sample_weight=w)), (per * w).mean(), rtol=1e-6)
    np.testing.assert_allclose(run(losses.MeanSquaredError(reduction="sum")(t, p, sample_weight=w)),
                               (per * w).sum(), rtol=1e-6)


def test_labels_one_rank_lower_are_expanded():
    t = np.array([1.0, 0.0, 2.0], np.float32)
    p = np.array([[0.5], [1.0], [2.0]], np.float32)
    np.testing.assert_allclose(run(losses.mse(t, gc.constant(p))), (p[:, 0] - t) ** 2, rtol=1e-6)


def test_loss_classes_names_and_configs():
    for cls in (losses.MeanSquaredError, losses.MeanAbsoluteError, losses.MeanAbsolutePercentageError,
                losses.MeanSquaredLogarithmicError, losses.CategoricalCrossentropy,
                losses.SparseCategoricalCrossentropy, losses.BinaryCrossentropy, losses.KLDivergence,
                losses.Poisson, losses.Hinge, losses.SquaredHinge, losses.Huber, losses.LogCosh,
                losses.CosineSimilarity):
        obj = cls()
        assert losses.get(obj.name) is type(obj).fn, cls   # the default name is a registered name
        again = losses.deserialize(losses.serialize(obj))
        assert type(again) is cls and again.get_config() == obj.get_config()
    c = losses.CategoricalCrossentropy(True, 0.1, name="cce")
    assert c.get_config() == {"name": "cce", "reduction": "sum_over_batch_size", "from_logits": True,
                              "label_smoothing": 0.1}
    assert losses.name_of(c) == "cce" and losses.name_of("mse") == "mse"
    assert losses.name_of(losses.hinge) == "hinge"


def test_get_serialize_deserialize():
    assert losses.get("Huber").__self__.__class__ is losses.Huber       # class names work too
    assert isinstance(losses.get(losses.Poisson).__self__, losses.Poisson)
    h = losses.Huber(delta=2.0)
    assert losses.get(h).__self__ is h
    assert losses.get({"class_name": "Huber", "config": {"delta": 3.0}}).__self__.kwargs == {"delta": 3.0}

    def my_loss(t, p):
        return p
    assert losses.get(my_loss) is my_loss
    assert losses.get("my_loss", custom_objects={"my_loss": my_loss}) is my_loss
    assert losses.serialize("mse") == "mse" and losses.serialize(losses.mean_absolute_error) == "mean_absolute_error"
    assert losses.deserialize("mse") is losses.mean_squared_error
    assert losses.is_sparse(losses.get("sparse_categorical_crossentropy"))
    assert losses.is_sparse(losses.get(losses.SparseCategoricalCrossentropy(from_logits=True)))
    assert not losses.is_sparse(losses.get("categorical_crossentropy"))


def test_errors_name_the_loss_and_what_to_do():
    with pytest.raises(ValueError, match=r"unknown loss 'mean_square_error' \(did you mean "
                                         r"'mean_squared_error'\?\); known losses: binary_crossentropy.*"
                                         r"custom_objects"):
        losses.get("mean_square_error")
    with pytest.raises(ValueError, match="could not interpret the loss 3"):
        losses.get(3)
    with pytest.raises(ValueError, match="no loss given"):
        losses.get(None)
    with pytest.raises(ValueError, match="cannot serialize the loss <function"):
        losses.serialize(lambda t, p: p)
    with pytest.raises(ValueError, match="unknown loss 'Nope'"):
        losses.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="'mse'.*as a class name"):
        losses.deserialize({"class_name": "mse", "config": {}})
    with pytest.raises(ValueError, match="dict with 'class_name'"):
        losses.deserialize({"config": {}})
