"""Keras layer arguments graphc does not implement (constraints, activity regularizers,
time_major, renorm...) raise NotImplementedError naming the layer and the argument; their
defaults, and pure speed hints, are accepted."""
import pytest

from graphc import layers as L

UNSUPPORTED = [
    (lambda **kw: L.Dense(2, **kw), "Dense", "kernel_constraint", "max_norm"),
    (lambda **kw: L.Dense(2, **kw), "Dense", "activity_regularizer", "l2"),
    (lambda **kw: L.Conv2D(2, 3, **kw), "Conv2D", "bias_constraint", "non_neg"),
    (lambda **kw: L.Embedding(5, 2, **kw), "Embedding", "embeddings_constraint", "unit_norm"),
    (lambda **kw: L.LSTM(2, **kw), "LSTM", "time_major", True),
    (lambda **kw: L.GRU(2, **kw), "GRU", "recurrent_constraint", "max_norm"),
    (lambda **kw: L.BatchNormalization(**kw), "BatchNormalization", "renorm", True),
    (lambda **kw: L.LayerNormalization(**kw), "LayerNormalization", "rms_scaling", True),
    (lambda **kw: L.MultiHeadAttention(2, 4, **kw), "MultiHeadAttention", "kernel_constraint", "max_norm"),
]


@pytest.mark.parametrize("make, layer, arg, value", UNSUPPORTED, ids=[f"{u[1]}-{u[2]}" for u in UNSUPPORTED])
def test_unsupported_arguments_raise(make, layer, arg, value):
    with pytest.raises(NotImplementedError, match=f"{layer}: {arg}={value!r} is not supported by graphc"):
        make(**{arg: value})
    make(**{arg: None if value is not True else False})      # the default is fine


def test_speed_hints_are_accepted():
    assert L.BatchNormalization(fused=True, synchronized=True).epsilon == 1e-3
    assert L.MultiHeadAttention(2, 4, flash_attention=True).num_heads == 2
