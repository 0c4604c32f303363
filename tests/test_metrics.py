"""Metrics against numpy: the accuracies (sparse label shapes, thresholds, top-k), the choice
``"accuracy"`` makes from the loss and the output, metric classes, loss names as metrics,
``get``'s errors, and the epoch means ``fit``/``evaluate`` report."""
import numpy as np
import pytest

import graphc as gc
from graphc import losses, metrics
from graphc.layers import Dense
from graphc.models import Sequential

P = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.05, 0.15, 0.8]], np.float32)
LABELS = np.array([1, 2, 2, 0])
ONEHOT = np.eye(3, dtype=np.float32)[LABELS]


def run(t):
    return gc.Session(executor="reference").run(t)


def test_categorical_and_sparse_accuracy():
    want = (P.argmax(-1) == LABELS).astype(np.float32)          # [1, 0, 1, 0]
    np.testing.assert_array_equal(run(metrics.categorical_accuracy(gc.constant(ONEHOT), gc.constant(P))), want)
    for labels in (LABELS, LABELS[:, None], LABELS.astype(np.float32)):
        np.testing.assert_array_equal(run(metrics.sparse_categorical_accuracy(labels, gc.constant(P))), want)


def test_binary_accuracy_and_threshold():
    yt = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    yp = np.array([[0.6, 0.4], [0.7, 0.9], [0.3, 0.55]], np.float32)
    for thr in (0.5, 0.35, 0.65):
        want = (yt == (yp > thr)).mean(-1)
        np.testing.assert_allclose(run(metrics.binary_accuracy(yt, gc.constant(yp), threshold=thr)), want)
    m = metrics.BinaryAccuracy(threshold=0.65)
    np.testing.assert_allclose(run(m(yt, gc.constant(yp))), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(run(metrics.binary_accuracy(np.array([1.0, 0.0], np.float32),
                                                           gc.constant(np.array([[0.9], [0.8]], np.float32)))),
                               [1.0, 0.0])    # labels one rank lower


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_categorical_accuracy(k):
    want = np.array([LABELS[i] in np.argsort(-P[i])[:k] for i in range(4)], np.float32)
    np.testing.assert_array_equal(run(metrics.top_k_categorical_accuracy(gc.constant(ONEHOT), gc.constant(P), k=k)),
                                  want)


def test_accuracy_follows_the_loss_and_output_like_keras():
    wide, narrow = gc.constant(P), gc.constant(P[:, :1])
    assert metrics.resolve("accuracy", losses.get("sparse_categorical_crossentropy"), wide)[0] \
        is metrics.sparse_categorical_accuracy
    assert metrics.resolve("acc", losses.get(losses.SparseCategoricalCrossentropy()), wide)[0] \
        is metrics.sparse_categorical_accuracy
    assert metrics.resolve("accuracy", losses.get("binary_crossentropy"), wide)[0] is metrics.binary_accuracy
    assert metrics.resolve("accuracy", losses.get(losses.BinaryCrossentropy()), wide)[0] is metrics.binary_accuracy
    assert metrics.resolve("accuracy", losses.get("mse"), narrow)[0] is metrics.binary_accuracy
    assert metrics.resolve("accuracy", losses.get("categorical_crossentropy"), wide)[0] \
        is metrics.categorical_accuracy
    fn, name = metrics.resolve(metrics.Accuracy(), losses.get("categorical_crossentropy"), wide)
    assert (fn, name) == (metrics.categorical_accuracy, "accuracy")


def test_resolve_names_objects_and_callables():
    mse_fn = losses.get("mse")
    wide = gc.constant(P)
    assert metrics.resolve("ACC", mse_fn, wide)[1] == "ACC"                 # shown as given
    assert metrics.resolve("mse", mse_fn, wide) == (losses.mean_squared_error, "mse")
    m = metrics.MeanAbsoluteError()
    assert metrics.resolve(m, mse_fn, wide) == (m, "mean_absolute_error")
    fn, name = metrics.resolve(losses.Huber(name="hub"), mse_fn, wide)
    assert name == "hub" and isinstance(fn.__self__, losses.Huber)

    def my_metric(t, p):
        return p
    assert metrics.resolve(my_metric, mse_fn, wide) == (my_metric, "my_metric")
    assert isinstance(metrics.get("CategoricalAccuracy"), metrics.CategoricalAccuracy)
    assert metrics.get("my", custom_objects={"my": my_metric}) is my_metric
    np.testing.assert_allclose(run(metrics.MeanSquaredError()(ONEHOT, gc.constant(P))),
                               ((P - ONEHOT) ** 2).mean(-1), rtol=1e-6)
    np.testing.assert_array_equal(run(metrics.SparseCategoricalAccuracy()(LABELS, gc.constant(P))), [1, 0, 1, 0])
    np.testing.assert_array_equal(run(metrics.CategoricalAccuracy()(ONEHOT, gc.constant(P))), [1, 0, 1, 0])


def test_unknown_metric_errors():
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy' \(did you mean 'accuracy'\?\); known "
                                         r"metrics: acc, accuracy, .*or any loss name"):
        metrics.get("acuracy")
    with pytest.raises(ValueError, match="could not interpret the metric 5; pass a name such as 'accuracy'"):
        metrics.get(5)


def test_fit_and_evaluate_report_epoch_means_of_the_metrics():
    x = np.eye(4, dtype=np.float32)
    y = np.array([[0.0], [1.0], [3.0], [0.5]], np.float32)
    m = Sequential([Dense(1, use_bias=False, kernel_initializer="zeros", input_dim=4)])
    m.compile(optimizer="sgd", loss="mse", metrics=["mae", "mse", "accuracy"])
    res = m.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)     # prediction 0 everywhere
    assert res["loss"] == pytest.approx(np.mean(y ** 2))
    assert res["mse"] == pytest.approx(np.mean(y ** 2))
    assert res["mae"] == pytest.approx(np.mean(np.abs(y)))
    assert res["accuracy"] == pytest.approx(np.mean(y == 0))        # binary accuracy for a 1-unit output
