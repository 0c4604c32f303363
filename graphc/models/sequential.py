"""``Sequential``: a linear stack of layers (a functional model built from the first layer's
input shape, or from the first data it sees).

    >>> from graphc.models import Sequential
    >>> from graphc.layers import Dense
    >>> m = Sequential([Dense(4, activation="relu", input_dim=3), Dense(1)])
    >>> [l.name.split("_")[0] for l in m.layers], m.count_params()
    (['dense', 'dense'], 21)
"""
from __future__ import annotations

import numpy as np

from ..layers.base import KerasTensor, Layer
from .functional import Model
from .serialization import deserialize_layer, serialize_layer


class Sequential(Model):
    """``Sequential([layer, ...])`` or ``Sequential()`` followed by ``.add(layer)``."""

    def __init__(self, layers=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._stack: list[Layer] = []
        self._input_tensor = None       # an explicit Input() given to add()
        self._build_shape = None        # batch input shape found from data / build()
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        if isinstance(layer, KerasTensor):
            if self._stack or self._input_tensor is not None:
                raise ValueError("an Input can only be the first thing added to a Sequential model")
            self._input_tensor = layer
            self._invalidate()
            return
        if type(layer).__name__ == "InputLayer":
            self._input_tensor = layer._inbound_nodes[0].outputs
            self._invalidate()
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {layer!r}")
        if any(l is layer for l in self._stack):
            raise ValueError(f"layer {layer.name!r} is already in this model")
        self._stack.append(layer)
        if self._nodes:   # extend the symbolic chain by one call
            inp, out = self.inputs[0], self.outputs[0]
            self._init_network(inp, layer(out))
        else:
            self._invalidate()
            if self._batch_shape() is not None:
                self._ensure_network()

    def pop(self) -> Layer:
        if not self._stack:
            raise TypeError("there are no layers in the model to pop")
        layer = self._stack.pop()
        self._invalidate()
        return layer

    def _invalidate(self) -> None:
        self._nodes = []
        self._programs = {}

    def _batch_shape(self):
        if self._input_tensor is not None:
            return self._input_tensor.shape
        if self._stack and self._stack[0]._batch_input_shape is not None:
            return self._stack[0]._batch_input_shape
        return self._build_shape

    def _ensure_network(self) -> None:
        if self._nodes:
            return
        if not self._stack:
            raise ValueError(f"Sequential model {self.name!r} has no layers; add some with .add()")
        shape = self._batch_shape()
        if shape is None:
            raise ValueError(f"Sequential model {self.name!r} has not been built: give the first layer "
                             "input_shape= (or input_dim=), call model.build(input_shape), or "
                             "fit/predict on data first")
        from ..layers.core import Input
        if self._input_tensor is not None:
            x = self._input_tensor
        else:
            x = Input(batch_shape=tuple(shape), dtype=self._stack[0].dtype,
                      name=f"{self._stack[0].name}_input")
        inp = x
        for layer in self._stack:
            x = layer(x)
        self._init_network(inp, x)

    def _ensure_network_for(self, x):
        if self._nodes:
            return
        if self._batch_shape() is not None:
            self._ensure_network()
            return
        first = x[0] if isinstance(x, (list, tuple)) else x
        arr = np.asarray(first)
        self._build_shape = (None,) + tuple(arr.shape[1:])
        self._ensure_network()

    def build(self, input_shape=None):
        if input_shape is not None and self._batch_shape() is None:
            self._build_shape = tuple(input_shape)
        self._ensure_network()
        self._ensure_built()

    @property
    def layers(self) -> list:
        return list(self._stack)

    def _all_leaf_layers(self):
        self._ensure_network()
        return super()._all_leaf_layers()

    def get_config(self) -> dict:
        cfg = {"name": self.name, "layers": [serialize_layer(layer) for layer in self._stack]}
        shape = self._batch_shape()
        if shape is not None:
            cfg["build_input_shape"] = list(shape)
        if self._input_tensor is not None:
            cfg["input_dtype"] = self._input_tensor.dtype.name
        return cfg

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        model = cls(name=config.get("name"))
        if config.get("input_dtype") and config.get("build_input_shape"):
            from ..layers.core import Input
            model.add(Input(batch_shape=tuple(config["build_input_shape"]),
                            dtype=config["input_dtype"]))
        for spec in config["layers"]:
            model.add(deserialize_layer(spec, custom_objects))
        if config.get("build_input_shape") is not None and model._batch_shape() is None:
            model._build_shape = tuple(config["build_input_shape"])
        return model
