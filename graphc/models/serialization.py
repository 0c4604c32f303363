"""Layer and model configs: ``serialize_layer`` and ``deserialize_layer`` (Keras' layout
``{"class_name": ..., "config": ...}``; a functional ``Model`` is saved as ``"Functional"``).

This module imports no model class: classes are found by name in the layer registry (every
``Layer`` subclass, ``Model`` and ``Sequential`` included, registers itself when defined), so
``functional``, ``sequential`` and ``saving`` all use it without importing one another for it.

    >>> from graphc.layers import Dense
    >>> from graphc.models.serialization import deserialize_layer, serialize_layer
    >>> spec = serialize_layer(Dense(3, activation="relu", name="d"))
    >>> spec["class_name"], deserialize_layer(spec).units
    ('Dense', 3)
"""
from __future__ import annotations

import inspect

from ..layers.base import _LAYER_CLASSES, Layer

__all__ = ["class_name", "serialize_layer", "deserialize_layer", "UnknownLayerError"]


class UnknownLayerError(ValueError):
    """A config names a layer class that is neither graphc's nor in ``custom_objects``."""


def _public_layer_names() -> list:
    """graphc's own public layer classes (not tests' or users' subclasses, nor private ones)."""
    return sorted(n for n, c in _LAYER_CLASSES.items() if not n.startswith("_")
                  and c.__module__.startswith("graphc.") and n != "Model") + ["Functional"]


def _layer_class(name):
    cls = _LAYER_CLASSES.get("Model" if name == "Functional" else name)
    if cls is None:
        raise UnknownLayerError(
            f"unknown layer class {name!r}; known: {', '.join(_public_layer_names())}; for a "
            f"layer of your own pass custom_objects={{{str(name)!r}: YourLayerClass}}")
    return cls


def class_name(layer) -> str:
    """The saved class name of ``layer``: its class's, except ``"Functional"`` for ``Model``."""
    name = type(layer).__name__
    return "Functional" if name == "Model" else name


def serialize_layer(layer) -> dict:
    """``{"class_name": ..., "config": layer.get_config()}`` for ``deserialize_layer``."""
    return {"class_name": class_name(layer), "config": layer.get_config()}


def deserialize_layer(spec: dict, custom_objects=None):
    """A layer (or model) from ``serialize_layer``'s dict; ``custom_objects`` maps class names to
    your own ``Layer`` classes (and is handed on to models, for the layers inside them)."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"a serialized layer is a dict with 'class_name' and 'config', got {spec!r}")
    name = spec["class_name"]
    if custom_objects and name in custom_objects:
        cls = custom_objects[name]
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(f"custom_objects[{name!r}] is {cls!r}, not a graphc Layer class")
    else:
        cls = _layer_class(name)
    config = spec.get("config", {})
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        return cls.from_config(config, custom_objects=custom_objects)
    return cls.from_config(config)
