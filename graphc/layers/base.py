"""``Layer``: the Keras layer contract on top of graphc graphs.

A layer is called in two ways:

* on *symbolic* ``KerasTensor``s (from ``Input(...)`` or another layer): nothing
  is computed; the call is recorded as a ``Node`` and output shapes come from
  ``compute_output_shape``. Models replay these nodes into their own graph.
* on graph ``gc.Tensor``s: the layer builds its weights (``gc.Variable``s, in the
  tensors' graph, initialized in numpy) the first time, then ``call`` adds its
  ops to the graph.
* on numpy arrays (eagerly, as in Keras 3): the result is a numpy array, computed by a program
  compiled once per input signature (``graphc.layers.eager``).

    >>> import graphc as gc
    >>> from graphc.layers import Dense
    >>> x = gc.placeholder("float32", (None, 3))
    >>> layer = Dense(4, activation="relu")
    >>> layer(x).shape, [w.shape for w in layer.weights]
    ((None, 4), [(3, 4), (4,)])
"""
from __future__ import annotations

import contextvars
import itertools
import re
from typing import Any

import numpy as np

from .. import initializers as _init
from ..ir import Tensor, _user_call_site, user_site

_LAYER_CLASSES: dict[str, type] = {}
_NAME_COUNTS: dict[str, int] = {}
_NODE_IDS = itertools.count()
# set while load_model rebuilds a model: [values left, values in all] of the file's weights. The
# layers' weights are made as zeros, not drawn, and one that would not fit what is left is refused
# before it is allocated (a config claiming Dense(10**7) is not 640 MB of memory)
WEIGHTS_TO_COME: contextvars.ContextVar = contextvars.ContextVar("graphc_weights_to_come", default=None)


def unique_object_name(base: str) -> str:
    """Keras-style automatic names: ``dense``, ``dense_1``, ``dense_2``..."""
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def snake_case(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    return s.replace("2_d", "2d").replace("1_d", "1d").replace("3_d", "3d")


def get_layer_class(name: str) -> type:
    try:
        return _LAYER_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown layer class {name!r}; known: {', '.join(sorted(_LAYER_CLASSES))}"
                         ) from None


# -- nests -------------------------------------------------------------------------------------------
def flatten(x) -> list:
    if isinstance(x, (list, tuple)):
        return [y for v in x for y in flatten(v)]
    if isinstance(x, dict):
        return [y for k in x for y in flatten(x[k])]
    return [x]


def map_structure(fn, x):
    if isinstance(x, list):
        return [map_structure(fn, v) for v in x]
    if isinstance(x, tuple):
        return tuple(map_structure(fn, v) for v in x)
    if isinstance(x, dict):
        return {k: map_structure(fn, v) for k, v in x.items()}
    return fn(x)


# -- symbolic tensors ----------------------------------------------------------------------------------
class KerasTensor:
    """A symbolic model tensor: static shape (batch ``None``), dtype, and the layer call that made it."""

    def __init__(self, shape, dtype="float32", node=None, index=0, name=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape} dtype={self.dtype.name} name={self.name}>"

    def __len__(self):
        raise TypeError("a KerasTensor is symbolic: len() is unknown")

    # convenient operators record a Lambda-free node through merge layers
    def __add__(self, other):
        from .merge import Add
        return Add()([self, other])


class Node:
    """One call of a layer on symbolic inputs (the edges of the functional model DAG)."""

    def __init__(self, layer, args, kwargs, outputs):
        self.id = next(_NODE_IDS)
        self.layer = layer
        self.args = args          # nest with KerasTensors as leaves
        self.kwargs = kwargs
        self.outputs = outputs    # nest of KerasTensors
        self.inputs = [t for t in flatten((args, kwargs)) if isinstance(t, KerasTensor)]
        layer._inbound_nodes.append(self)

    @property
    def parents(self):
        return [t.node for t in self.inputs if t.node is not None]


class _UpdateCollector:
    """Collects state updates (BatchNorm moving averages) made while building a training graph."""
    stack: list[list] = []


def _shape_of(x):
    return tuple(x.shape)


class Layer:
    """Base class of all layers (``build``, ``call``, ``compute_output_shape``, ``get_config``).

    Subclasses create weights in ``build(input_shape)`` with ``add_weight`` and
    add graph ops in ``call(inputs, training=None)``.
    """

    _allowed_kwargs = {"input_shape", "batch_input_shape", "batch_size", "input_dim", "dtype",
                       "name", "trainable", "weights", "input_length", "autocast"}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _LAYER_CLASSES[cls.__name__] = cls

    def __init__(self, trainable=True, name=None, dtype="float32", **kwargs):
        for k in kwargs:
            if k not in self._allowed_kwargs:
                raise TypeError(f"{type(self).__name__}: unexpected keyword argument {k!r}")
        self.name = name or unique_object_name(snake_case(type(self).__name__))
        self.trainable = trainable
        self.dtype = np.dtype(dtype or "float32")
        self.built = False
        self._weights: list = []
        self._weight_trainable: list[bool] = []
        self._regularized: list = []        # (variable, regularizer)
        self._inbound_nodes: list[Node] = []
        self._runtime = None                # shared graph + session holder (set by models)
        self.supports_masking = False
        batch_input_shape = kwargs.get("batch_input_shape")
        if batch_input_shape is None:
            if kwargs.get("input_shape") is not None:
                batch_input_shape = (kwargs.get("batch_size"),) + tuple(kwargs["input_shape"])
            elif kwargs.get("input_dim") is not None:
                ish = (kwargs["input_dim"],)
                if kwargs.get("input_length") is not None:
                    ish = (kwargs["input_length"],) + ish
                batch_input_shape = (kwargs.get("batch_size"),) + ish
        self._batch_input_shape = tuple(batch_input_shape) if batch_input_shape is not None else None
        self._initial_weights = kwargs.get("weights")
        self._site = _user_call_site()      # the user's line; a symbolic call replaces it

    # -- weights -----------------------------------------------------------------------------------
    def add_weight(self, name=None, shape=(), dtype=None, initializer="glorot_uniform",
                   regularizer=None, trainable=True, constraint=None):
        """Create a ``gc.Variable`` (in the current default graph) initialized in numpy."""
        from ..ops.state import Variable
        dtype = np.dtype(dtype or self.dtype)
        init = _init.get(initializer if initializer is not None else "zeros")
        shape = tuple(int(d) for d in shape)
        budget = WEIGHTS_TO_COME.get()
        if budget is not None:          # load_model: the file's arrays replace these values
            size = int(np.prod(shape, dtype=np.int64))
            if size > budget[0]:
                raise ValueError(f"layer {self.name!r} declares a weight of shape {shape}, more values "
                                 f"than the {budget[1]} the file holds in all")
            budget[0] -= size
            value = np.zeros(shape, dtype)
        else:
            value = np.asarray(init(shape, dtype=dtype)).astype(dtype)
        with user_site(getattr(self, "_site", None)):
            var = Variable(value, trainable=bool(trainable and self.trainable), name=name or "weight")
        self._weights.append(var)
        self._weight_trainable.append(bool(trainable))
        if regularizer is not None:
            self._regularized.append((var, get_regularizer(regularizer)))
        return var

    @property
    def weights(self) -> list:
        return list(self._weights) + [w for l in self._sublayers() for w in l.weights
                                      if w not in self._weights]

    @property
    def trainable_weights(self) -> list:
        if not self.trainable:
            return []
        own = [w for w, t in zip(self._weights, self._weight_trainable) if t]
        return own + [w for l in self._sublayers() for w in l.trainable_weights]

    @property
    def non_trainable_weights(self) -> list:
        tw = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in tw]

    trainable_variables = trainable_weights
    variables = weights

    def _sublayers(self) -> list:
        return []

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet, so its weights (and their "
                             "count) are unknown; call it on an input or give input_shape=")
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def _session(self):
        if self._runtime is None and not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet, so it has no weights; a model "
                             "builds its layers' weights on first use: call model.build() (or "
                             "predict/fit) first")
        if self._runtime is None:
            raise ValueError(f"layer {self.name!r} has no session holding its weight values; "
                             "use it inside a Model (weights live in the model's session)")
        return self._runtime

    def get_weights(self) -> list:
        return self._session().get_values(self.weights)

    def set_weights(self, weights) -> None:
        session = self._session()
        ws = self.weights
        if len(weights) != len(ws):
            raise ValueError(f"layer {self.name!r} has {len(ws)} weights, got {len(weights)} arrays")
        session.set_values(ws, weights)

    @property
    def losses(self) -> list:
        """Regularization penalties as graph tensors."""
        return [reg(v) for v, reg in self._regularized] + \
            [t for l in self._sublayers() for t in l.losses]

    def add_update(self, update) -> None:
        """Register a state update (assign op) to run with the training step."""
        if _UpdateCollector.stack:
            _UpdateCollector.stack[-1].append(update)

    # -- building & calling ------------------------------------------------------------------------
    def build(self, input_shape) -> None:
        self.built = True

    def call(self, inputs, training=None):
        return inputs

    def compute_mask(self, inputs, mask=None):
        """The mask of the output (a bool ``(batch, time)`` tensor, or None): Keras' convention, the
        input mask passed on by layers with ``supports_masking`` (elementwise and per-step layers),
        dropped by the others. ``Embedding(mask_zero=True)`` and ``Masking`` make one; a recurrent
        layer consumes it (``call(..., mask=)``)."""
        return mask if self.supports_masking else None

    def compute_output_shape(self, input_shape):
        """Output shape(s) for an input shape (batch ``None``); default: traced on a scratch graph."""
        return self._traced_output_shape(input_shape)

    def compute_output_dtype(self, input_dtype):
        return self.dtype

    def _traced_output_shape(self, input_shape):
        import copy
        from ..ir import Graph
        from ..ops.state import placeholder
        clone = copy.copy(self)
        clone.built, clone._weights, clone._regularized, clone._inbound_nodes = False, [], [], []
        clone._weight_trainable, clone._runtime = [], None
        g = Graph()
        with g.as_default():
            def ph(s):
                return placeholder(self.dtype, s)
            if _is_shape(input_shape):
                xs = ph(input_shape)
            else:
                xs = [ph(s) for s in input_shape]
            out = clone(xs)
        return map_structure(lambda t: tuple(t.shape), out)

    def _build_once(self, input_shape) -> None:
        if not self.built:
            self.build(input_shape)
            self.built = True
            if self._initial_weights is not None and self._runtime is not None:
                self.set_weights(self._initial_weights)

    def __call__(self, inputs, *args, **kwargs):
        leaves = flatten((inputs, args, kwargs))
        if any(isinstance(t, KerasTensor) for t in leaves):
            return self._symbolic_call(inputs, args, kwargs)
        from .eager import is_eager_call
        if is_eager_call(inputs, leaves):
            return self._eager_call(inputs, args, kwargs)
        tensors = [t for t in flatten(inputs) if isinstance(t, Tensor)]
        if not tensors:
            from ..ops.registry import convert_to_tensor
            inputs = map_structure(convert_to_tensor, inputs)
            tensors = flatten(inputs)
        graph = tensors[0].graph
        with graph.as_default(), graph.name_scope(self.name), user_site(getattr(self, "_site", None)):
            if not self.built:
                self._build_once(map_structure(_shape_of, inputs))
            if self._weights and self._weights[0].graph is not graph:
                raise ValueError(f"layer {self.name!r} holds its weights in another graph; a layer "
                                 "can only be used by models that share that graph")
            return self.call(inputs, *args, **kwargs)

    # -- eager calls on numpy arrays (see graphc.layers.eager) ----------------------------------------
    def _eager_call(self, inputs, args, kwargs):
        from .eager import eager_call
        return eager_call(self, inputs, args, kwargs)

    def _eager_prepare(self, inputs):
        """The inputs to feed (float arrays cast to the layer's dtype) and the ``GraphState`` that
        holds the weights: the model's, or a new one for a layer used on its own."""
        if self._runtime is None:
            if self.built and self._weights:
                raise ValueError(f"layer {self.name!r} was built on tensors of a graph of your own, "
                                 "so its weight values live in your gc.Session; call it on tensors "
                                 "of that graph, or use a fresh layer on numpy arrays")
            from ..models.functional import GraphState
            self._runtime = GraphState()

        def cast(a):
            if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.dtype != self.dtype:
                return a.astype(self.dtype)
            return a
        return map_structure(cast, inputs), self._runtime

    def _symbolic_call(self, inputs, args, kwargs):
        self._site = _user_call_site()
        in_shape = map_structure(lambda t: t.shape if isinstance(t, KerasTensor) else None, inputs)
        out_shape = self.compute_output_shape(in_shape)
        in_dtypes = [t.dtype for t in flatten(inputs) if isinstance(t, KerasTensor)]
        dt = self.compute_output_dtype(in_dtypes[0] if in_dtypes else self.dtype)
        idx = itertools.count()
        if _is_shape(out_shape):
            outputs = KerasTensor(out_shape, dt, index=next(idx))
        else:
            outputs = map_structure_shapes(lambda s: KerasTensor(s, dt, index=next(idx)), out_shape)
        node = Node(self, (inputs,) + tuple(args), dict(kwargs), outputs)
        for i, t in enumerate(flatten(outputs)):
            t.node = node
            t.index = i
            t.name = f"{self.name}/output_{i}" if i else self.name
        return outputs

    # -- config -----------------------------------------------------------------------------------
    def get_config(self) -> dict:
        cfg: dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                               "dtype": self.dtype.name}
        if self._batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self._batch_input_shape)
        return cfg

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    # -- misc -------------------------------------------------------------------------------------
    @property
    def input_shape(self):
        if not self._inbound_nodes:
            if self._batch_input_shape is not None:
                return self._batch_input_shape
            raise AttributeError(f"layer {self.name!r} has not been called on a symbolic input")
        ins = self._inbound_nodes[0].inputs
        return ins[0].shape if len(ins) == 1 else [t.shape for t in ins]

    @property
    def output_shape(self):
        if not self._inbound_nodes:
            raise AttributeError(f"layer {self.name!r} has not been called on a symbolic input")
        outs = flatten(self._inbound_nodes[0].outputs)
        return outs[0].shape if len(outs) == 1 else [t.shape for t in outs]

    @property
    def input(self):
        ins = self._inbound_nodes[0].inputs
        return ins[0] if len(ins) == 1 else ins

    @property
    def output(self):
        return self._inbound_nodes[0].outputs

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def _is_shape(s) -> bool:
    return isinstance(s, tuple) and all(d is None or isinstance(d, (int, np.integer)) for d in s)


def map_structure_shapes(fn, s):
    """Map ``fn`` over the shapes of a nest of shapes (tuples of ints are leaves)."""
    if _is_shape(s):
        return fn(s)
    if isinstance(s, list):
        return [map_structure_shapes(fn, v) for v in s]
    if isinstance(s, tuple):
        return tuple(map_structure_shapes(fn, v) for v in s)
    if isinstance(s, dict):
        return {k: map_structure_shapes(fn, v) for k, v in s.items()}
    raise TypeError(f"not a shape nest: {s!r}")


def reject_unsupported(who: str, **given) -> None:
    """Keras arguments graphc does not implement: ``None``/``False`` (their defaults) pass, any
    other value raises ``NotImplementedError`` naming ``who`` and the argument, instead of being
    silently ignored.

        >>> reject_unsupported("Dense", kernel_constraint=None)
        >>> reject_unsupported("Dense", kernel_constraint="max_norm")
        Traceback (most recent call last):
        ...
        NotImplementedError: Dense: kernel_constraint='max_norm' is not supported by graphc (it would be ignored); leave it out or pass None
    """
    for name, value in given.items():
        if value is not None and value is not False:
            raise NotImplementedError(f"{who}: {name}={value!r} is not supported by graphc (it would "
                                      "be ignored); leave it out or pass None")


def get_regularizer(identifier):
    """``graphc.regularizers.get`` (names like ``"l2"``, objects, or callables)."""
    if identifier is None or (callable(identifier) and not isinstance(identifier, (str, dict))):
        return identifier
    from .. import regularizers
    return regularizers.get(identifier)


def serialize_obj(obj):
    """A config-friendly form of an initializer / regularizer / activation argument."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "get_config"):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    return obj
