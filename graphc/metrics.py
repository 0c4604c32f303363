"""Keras metrics as per-sample graph functions; ``fit`` averages them over each epoch.

``"accuracy"`` / ``"acc"`` picks binary, categorical or sparse categorical
accuracy from the loss and the output shape, like Keras; any loss name is a
metric too.

    >>> import graphc as gc
    >>> from graphc import metrics
    >>> y = gc.constant([[0.0, 1.0], [1.0, 0.0]]); p = gc.constant([[0.2, 0.8], [0.3, 0.7]])
    >>> gc.Session().run(metrics.categorical_accuracy(y, p)).tolist()
    [1.0, 0.0]
"""
from __future__ import annotations

from . import losses as _losses
from .object_registry import Registry


def _ops():
    from . import ops
    return ops


def categorical_accuracy(y_true, y_pred):
    o = _ops()
    return o.cast(o.equal(o.argmax(y_true, axis=-1), o.argmax(y_pred, axis=-1)), "float32")


def sparse_categorical_accuracy(y_true, y_pred):
    o = _ops()
    yt = o.convert_to_tensor(y_true)
    if yt.ndim == y_pred.ndim and yt.shape[-1] == 1:
        yt = o.squeeze(yt, axis=-1)
    yt = o.cast(yt, "int64")
    return o.cast(o.equal(yt, o.argmax(y_pred, axis=-1)), "float32")


def binary_accuracy(y_true, y_pred, threshold=0.5):
    o = _ops()
    yt = _losses._match(y_true, y_pred)
    pred = o.cast(o.greater(y_pred, threshold), y_pred.dtype)
    return o.reduce_mean(o.cast(o.equal(yt, pred), "float32"), axis=-1)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    o = _ops()
    # true class score >= k-th largest score <=> fewer than k scores exceed it
    true_score = o.reduce_sum(y_true * y_pred, axis=-1, keepdims=True)
    above = o.reduce_sum(o.cast(o.greater(y_pred, true_score), "float32"), axis=-1)
    return o.cast(o.less(above, float(k)), "float32")


mean_squared_error = mse = _losses.mean_squared_error
mean_absolute_error = mae = _losses.mean_absolute_error
mean_absolute_percentage_error = mape = _losses.mean_absolute_percentage_error
mean_squared_logarithmic_error = msle = _losses.mean_squared_logarithmic_error
categorical_crossentropy = _losses.categorical_crossentropy
sparse_categorical_crossentropy = _losses.sparse_categorical_crossentropy
binary_crossentropy = _losses.binary_crossentropy


class Metric:
    """A named metric wrapping a per-sample function (``fit`` keeps the running mean)."""

    def __init__(self, fn=None, name=None, **kwargs):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "metric")
        self.kwargs = kwargs

    def __call__(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.kwargs)


class Accuracy(Metric):
    def __init__(self, name="accuracy"):
        super().__init__(None, name)


class CategoricalAccuracy(Metric):
    def __init__(self, name="categorical_accuracy"):
        super().__init__(categorical_accuracy, name)


class SparseCategoricalAccuracy(Metric):
    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(sparse_categorical_accuracy, name)


class BinaryAccuracy(Metric):
    def __init__(self, name="binary_accuracy", threshold=0.5):
        super().__init__(binary_accuracy, name, threshold=threshold)


class MeanSquaredError(Metric):
    def __init__(self, name="mean_squared_error"):
        super().__init__(_losses.mean_squared_error, name)


class MeanAbsoluteError(Metric):
    def __init__(self, name="mean_absolute_error"):
        super().__init__(_losses.mean_absolute_error, name)


_REGISTRY = Registry("metric", base=Metric,
                     hint="a name such as 'accuracy', a graphc.metrics.Metric, a graphc.losses.Loss "
                          "or a function fn(y_true, y_pred) returning per-sample values")
_REGISTRY.register(Accuracy, "accuracy", "acc")
for _fn in (categorical_accuracy, sparse_categorical_accuracy, binary_accuracy,
            top_k_categorical_accuracy):
    _REGISTRY.register(_fn, _fn.__name__)
for _cls in (CategoricalAccuracy, SparseCategoricalAccuracy, BinaryAccuracy, MeanSquaredError,
             MeanAbsoluteError):
    _REGISTRY.register(_cls)


def get(identifier, custom_objects=None):
    """A metric from a name (a metric's, ``"accuracy"``, or any loss name), a ``Metric`` (class
    or instance), a ``Loss`` or a callable. An unknown name raises ``ValueError`` listing the
    metric names, so ``compile`` reports a misspelled metric at once.

        >>> get("categorical_accuracy") is categorical_accuracy, type(get("acc")).__name__
        (True, 'Accuracy')
    """
    if isinstance(identifier, _losses.Loss):
        return identifier
    if isinstance(identifier, str) and identifier not in _REGISTRY and not (
            custom_objects and identifier in custom_objects):
        if identifier in _losses._REGISTRY:
            return _losses.get(identifier)
        raise _REGISTRY.unknown(identifier, ", or any loss name (see graphc.losses)")
    return _REGISTRY.get(identifier, custom_objects)


def _accuracy_for(loss_fn, y_pred):
    if _losses.is_sparse(loss_fn):
        return sparse_categorical_accuracy
    last = y_pred.shape[-1] if y_pred.ndim else 1
    base = getattr(loss_fn, "__func__", loss_fn)
    owner = getattr(loss_fn, "__self__", None)
    if base is _losses.binary_crossentropy or isinstance(owner, _losses.BinaryCrossentropy) or last == 1:
        return binary_accuracy
    return categorical_accuracy


def resolve(metric, loss_fn, y_pred):
    """``(per_sample_fn, display_name)`` for a metric given by name, object or callable; a name
    is displayed as given, ``"accuracy"`` picks the accuracy that fits the loss and output."""
    m = get(metric)
    given = metric if isinstance(metric, str) else None
    if isinstance(m, Accuracy):
        return _accuracy_for(loss_fn, y_pred), given or m.name
    if isinstance(m, Metric):
        return m, given or m.name
    if isinstance(m, _losses.Loss):
        return m.call, given or m.name
    return m, given or getattr(m, "__name__", "metric")
