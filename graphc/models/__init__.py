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
from ..layers.core import Input

__all__ = ["Model", "Sequential", "load_model", "save_model", "Input", "model_from_json",
           "clone_model"]


def model_from_json(json_string, custom_objects=None):
    import json
    from .functional import deserialize_layer
    spec = json.loads(json_string)
    return deserialize_layer(spec, custom_objects)


def clone_model(model):
    """A new model with the same architecture and freshly initialized weights."""
    from .functional import deserialize_layer
    cls = type(model).__name__
    return deserialize_layer({"class_name": "Functional" if cls == "Model" else cls,
                              "config": model.get_config()})
