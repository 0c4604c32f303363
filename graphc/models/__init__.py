"""Keras-style models: ``Sequential``, functional ``Model``, ``load_model``.

    >>> from graphc.models import Sequential
    >>> from graphc.layers import Dense
    >>> model = Sequential()
    >>> model.add(Dense(units=64, activation="relu", input_dim=784))
    >>> model.add(Dense(units=10, activation="softmax"))
    >>> model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    >>> model.count_params()
    50890
"""
from .functional import Model
from .sequential import Sequential
from .saving import load_model, save_model
from .serialization import deserialize_layer, serialize_layer
from ..layers.core import Input

__all__ = ["Model", "Sequential", "load_model", "save_model", "Input", "model_from_json",
           "clone_model", "serialize_layer", "deserialize_layer"]


def model_from_json(json_string, custom_objects=None):
    """A model (fresh weights) from ``model.to_json()``."""
    import json
    return deserialize_layer(json.loads(json_string), custom_objects)


def clone_model(model):
    """A new model with the same architecture and freshly initialized weights."""
    return deserialize_layer(serialize_layer(model))
