"""Keras losses on graph tensors: per-sample functions, ``Loss`` classes and ``get``.

A loss function ``fn(y_true, y_pred)`` returns one value per sample (the last
axis reduced); ``Loss`` objects average it over the batch. Cross-entropies on
the output of a softmax (or sigmoid) are computed in the stable fused form from
that op's input (the logits), as Keras does.

    >>> import graphc as gc
    >>> from graphc import losses
    >>> y = gc.constant([[0.0, 1.0]]); p = gc.constant([[0.5, 0.5]])
    >>> round(float(gc.Session().run(losses.MeanSquaredError()(y, p))), 4)
    0.25
"""
from __future__ import annotations

import numpy as np

from .object_registry import Registry

EPSILON = 1e-7


def _ops():
    from . import ops
    return ops


def _logits_of(y_pred, op_type):
    """The input of ``y_pred`` if it is the output of a last-axis ``op_type`` op, else None."""
    try:
        op = y_pred.op
        if op.type != op_type:
            return None
        if op_type == "softmax" and op.attrs.get("axis") != y_pred.ndim - 1:
            return None
        return op.inputs[0]
    except AttributeError:
        return None


def _match(y_true, y_pred):
    o = _ops()
    y_true = o.convert_to_tensor(y_true)
    if y_true.dtype != y_pred.dtype:
        y_true = o.cast(y_true, y_pred.dtype)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = o.expand_dims(y_true, -1)
    return y_true


def mean_squared_error(y_true, y_pred):
    o = _ops()
    return o.reduce_mean(o.square(y_pred - _match(y_true, y_pred)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    o = _ops()
    return o.reduce_mean(o.abs(y_pred - _match(y_true, y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    o = _ops()
    yt = _match(y_true, y_pred)
    diff = o.abs((yt - y_pred) / o.maximum(o.abs(yt), EPSILON))
    return 100.0 * o.reduce_mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    o = _ops()
    yt = _match(y_true, y_pred)
    a = o.log(o.maximum(y_pred, EPSILON) + 1.0)
    b = o.log(o.maximum(yt, EPSILON) + 1.0)
    return o.reduce_mean(o.square(a - b), axis=-1)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    o = _ops()
    yt = _match(y_true, y_pred)
    if label_smoothing:
        k = y_pred.shape[-1]
        yt = yt * (1.0 - label_smoothing) + label_smoothing / k
    logits = y_pred if from_logits else _logits_of(y_pred, "softmax")
    if logits is not None:
        return o.softmax_cross_entropy_with_logits(labels=yt, logits=logits, axis=axis)
    p = y_pred / o.reduce_sum(y_pred, axis=axis, keepdims=True)
    p = o.clip_by_value(p, EPSILON, 1.0 - EPSILON)
    return -o.reduce_sum(yt * o.log(p), axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1,
                                    ignore_class=None):
    o = _ops()
    yt = o.convert_to_tensor(y_true)
    if yt.ndim == y_pred.ndim and yt.shape[-1] == 1:
        yt = o.squeeze(yt, axis=-1)
    if yt.dtype.kind == "f":
        yt = o.cast(yt, "int32")
    logits = y_pred if from_logits else _logits_of(y_pred, "softmax")
    if logits is not None:
        return o.sparse_softmax_cross_entropy_with_logits(labels=yt, logits=logits)
    depth = y_pred.shape[-1]
    oh = o.one_hot(yt, depth, dtype=y_pred.dtype)
    p = o.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
    return -o.reduce_sum(oh * o.log(p), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    o = _ops()
    yt = _match(y_true, y_pred)
    if label_smoothing:
        yt = yt * (1.0 - label_smoothing) + 0.5 * label_smoothing
    logits = y_pred if from_logits else _logits_of(y_pred, "sigmoid")
    if logits is not None:
        return o.reduce_mean(o.sigmoid_cross_entropy_with_logits(labels=yt, logits=logits), axis=axis)
    p = o.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
    return o.reduce_mean(-(yt * o.log(p) + (1.0 - yt) * o.log(1.0 - p)), axis=axis)


def kl_divergence(y_true, y_pred):
    o = _ops()
    yt = o.clip_by_value(_match(y_true, y_pred), EPSILON, 1.0)
    yp = o.clip_by_value(y_pred, EPSILON, 1.0)
    return o.reduce_sum(yt * o.log(yt / yp), axis=-1)


def poisson(y_true, y_pred):
    o = _ops()
    return o.reduce_mean(y_pred - _match(y_true, y_pred) * o.log(y_pred + EPSILON), axis=-1)


def _hinge_labels(y_true, y_pred):
    """Keras' conversion: labels that are all 0 or 1 become -1/1; -1/1 labels stay as they are."""
    o = _ops()
    yt = _match(y_true, y_pred)
    binary = o.reduce_all(o.logical_or(o.equal(yt, 0.0), o.equal(yt, 1.0)))
    return o.where(binary, 2.0 * yt - 1.0, yt)


def hinge(y_true, y_pred):
    o = _ops()
    yt = _hinge_labels(y_true, y_pred)
    return o.reduce_mean(o.maximum(1.0 - yt * y_pred, 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    o = _ops()
    yt = _hinge_labels(y_true, y_pred)
    return o.reduce_mean(o.square(o.maximum(1.0 - yt * y_pred, 0.0)), axis=-1)


def huber(y_true, y_pred, delta=1.0):
    o = _ops()
    err = y_pred - _match(y_true, y_pred)
    a = o.abs(err)
    quad = o.minimum(a, delta)
    return o.reduce_mean(0.5 * o.square(quad) + delta * (a - quad), axis=-1)


def log_cosh(y_true, y_pred):
    o = _ops()
    x = y_pred - _match(y_true, y_pred)
    return o.reduce_mean(x + o.softplus(-2.0 * x) - float(np.log(2.0)), axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    o = _ops()
    yt = _match(y_true, y_pred)

    def l2n(t):
        return t * o.rsqrt(o.maximum(o.reduce_sum(o.square(t), axis=axis, keepdims=True), 1e-12))
    return -o.reduce_sum(l2n(yt) * l2n(y_pred), axis=axis)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence


class Loss:
    """A loss object: ``loss(y_true, y_pred)`` is the batch mean of the per-sample values."""
    fn = None
    default_name = "loss"

    def __init__(self, reduction="sum_over_batch_size", name=None, **kwargs):
        self.reduction = reduction
        self.name = name or self.default_name
        self.kwargs = kwargs

    def call(self, y_true, y_pred):
        return type(self).fn(y_true, y_pred, **self.kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        o = _ops()
        per = self.call(y_true, y_pred)
        if sample_weight is not None:
            per = per * o.convert_to_tensor(sample_weight)
        if self.reduction in ("none", None):
            return per
        if self.reduction == "sum":
            return o.reduce_sum(per)
        return o.reduce_mean(per)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, **self.kwargs}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _loss_class(cls_name, fn, name, params=()):
    def __init__(self, *args, reduction="sum_over_batch_size", name=name, **kwargs):
        for p, v in zip(params, args):
            kwargs[p] = v
        Loss.__init__(self, reduction=reduction, name=name, **kwargs)
    return type(cls_name, (Loss,), {"fn": staticmethod(fn), "default_name": name,
                                    "__init__": __init__})


MeanSquaredError = _loss_class("MeanSquaredError", mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _loss_class("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error")
MeanAbsolutePercentageError = _loss_class("MeanAbsolutePercentageError",
                                          mean_absolute_percentage_error,
                                          "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _loss_class("MeanSquaredLogarithmicError",
                                          mean_squared_logarithmic_error,
                                          "mean_squared_logarithmic_error")
CategoricalCrossentropy = _loss_class("CategoricalCrossentropy", categorical_crossentropy,
                                      "categorical_crossentropy", ("from_logits", "label_smoothing"))
SparseCategoricalCrossentropy = _loss_class("SparseCategoricalCrossentropy",
                                            sparse_categorical_crossentropy,
                                            "sparse_categorical_crossentropy", ("from_logits",))
BinaryCrossentropy = _loss_class("BinaryCrossentropy", binary_crossentropy, "binary_crossentropy",
                                 ("from_logits", "label_smoothing"))
KLDivergence = _loss_class("KLDivergence", kl_divergence, "kl_divergence")
Poisson = _loss_class("Poisson", poisson, "poisson")
Hinge = _loss_class("Hinge", hinge, "hinge")
SquaredHinge = _loss_class("SquaredHinge", squared_hinge, "squared_hinge")
Huber = _loss_class("Huber", huber, "huber", ("delta",))
LogCosh = _loss_class("LogCosh", log_cosh, "log_cosh")
CosineSimilarity = _loss_class("CosineSimilarity", cosine_similarity, "cosine_similarity", ("axis",))

_REGISTRY = Registry("loss", "losses", base=Loss,
                     hint="a name such as 'mse', a graphc.losses.Loss or a function "
                          "fn(y_true, y_pred) returning per-sample values")
for _fn, *_names in (
        (mean_squared_error, "mean_squared_error", "mse"),
        (mean_absolute_error, "mean_absolute_error", "mae"),
        (mean_absolute_percentage_error, "mean_absolute_percentage_error", "mape"),
        (mean_squared_logarithmic_error, "mean_squared_logarithmic_error", "msle"),
        (categorical_crossentropy, "categorical_crossentropy"),
        (sparse_categorical_crossentropy, "sparse_categorical_crossentropy"),
        (binary_crossentropy, "binary_crossentropy"),
        (kl_divergence, "kl_divergence", "kld", "kullback_leibler_divergence"),
        (poisson, "poisson"), (hinge, "hinge"), (squared_hinge, "squared_hinge"),
        (huber, "huber", "huber_loss"), (log_cosh, "log_cosh", "logcosh"),
        (cosine_similarity, "cosine_similarity")):
    _REGISTRY.register(_fn, *_names)
for _cls in (MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
             MeanSquaredLogarithmicError, CategoricalCrossentropy, SparseCategoricalCrossentropy,
             BinaryCrossentropy, KLDivergence, Poisson, Hinge, SquaredHinge, Huber, LogCosh,
             CosineSimilarity):
    _REGISTRY.register(_cls)


def get(identifier, custom_objects=None):
    """A per-sample loss function ``fn(y_true, y_pred)`` from a name (``"mse"``, or a class name
    such as ``"Huber"``), a ``serialize`` dict, a ``Loss`` (class or instance) or a callable.

        >>> get("mse") is mean_squared_error
        True
    """
    obj = _REGISTRY.get(identifier, custom_objects)
    return obj.call if isinstance(obj, Loss) else obj


def name_of(identifier) -> str:
    if isinstance(identifier, str):
        return identifier
    if isinstance(identifier, Loss):
        return identifier.name
    return getattr(identifier, "__name__", "loss")


def is_sparse(fn) -> bool:
    """Whether a resolved loss takes integer class labels."""
    base = getattr(fn, "__func__", None)
    owner = getattr(fn, "__self__", None)
    return fn is sparse_categorical_crossentropy or (
        base is not None and isinstance(owner, SparseCategoricalCrossentropy))


def serialize(identifier):
    """A name (kept as given), a registered loss function's name, or a ``Loss``'s Keras dict."""
    return _REGISTRY.serialize(identifier)


def deserialize(config, custom_objects=None):
    """A ``Loss`` from ``serialize``'s dict (or, for a name, the function ``get`` gives)."""
    return _REGISTRY.deserialize(config, custom_objects)
