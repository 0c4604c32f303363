"""``Model``: the functional API (``Model(inputs=..., outputs=...)``) over one graph and session.

A model records the DAG of layer calls made on symbolic ``KerasTensor``s. It owns
a ``gc.Graph`` (where its layers' weights are ``gc.Variable``s) and a
``gc.Session`` (holding their values). Each program it runs (training step,
evaluation, prediction) is built once per input signature by *replaying* the DAG
on placeholders, and runs as one ``Session.make_callable`` call per batch.

    >>> from graphc.layers import Input, Dense
    >>> from graphc.models import Model
    >>> x = Input(shape=(4,)); y = Dense(2, activation="softmax")(Dense(8)(x))
    >>> m = Model(inputs=x, outputs=y)
    >>> m.count_params(), m.predict(np.zeros((3, 4), np.float32), verbose=0).shape
    (58, (3, 2))
"""
from __future__ import annotations

import inspect

import numpy as np

from ..ir import Graph
from ..layers.base import KerasTensor, Layer, flatten, map_structure
from .serialization import deserialize_layer, serialize_layer
from .training import TrainingMixin


class GraphState:
    """The graph and session shared by the models (and layers) that use the same weights."""

    def __init__(self, graph: Graph | None = None):
        from ..session import Session
        self.graph = graph if graph is not None else Graph()
        self.session = Session(self.graph)
        self._setters: dict[int, tuple] = {}

    def init_new_variables(self) -> None:
        """Run the initializers of the variables the session does not hold yet."""
        from ..ir import Tensor
        g = self.graph
        todo = [n for n in g.collections.get("initializers", [])
                if g.name(g.inputs(n)[0]) not in self.session.state]
        if todo:
            self.session.run([Tensor(g, n) for n in todo])

    def get_values(self, variables) -> list:
        if not variables:
            return []
        return [np.array(v) for v in self.session.run(list(variables))]

    def set_values(self, variables, values) -> None:
        from ..ops.state import assign, placeholder
        fetches, feed = [], {}
        for v, val in zip(variables, values):
            val = np.asarray(val)
            if tuple(val.shape) != tuple(v.shape):
                raise ValueError(f"weight {v.name!r} has shape {v.shape}, got a value of shape "
                                 f"{val.shape}")
            if v.node not in self._setters:
                with self.graph.as_default():
                    ph = placeholder(v.dtype, v.shape, name=v.name + "/set_value")
                    self._setters[v.node] = (ph, assign(v, ph, name=v.name + "/set"))
            ph, op = self._setters[v.node]
            fetches.append(op)
            feed[ph] = val.astype(v.dtype, copy=False)
        if fetches:
            self.session.run(fetches, feed)


def _unique(weights) -> list:
    """``weights`` in order, each object once (a layer shared by two branches owns its weights once)."""
    out, seen = [], set()
    for w in weights:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def _accepts(layer, arg: str) -> bool:
    try:
        return arg in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False


def _accepts_training(layer) -> bool:
    cached = getattr(layer, "_accepts_training_cache", None)
    if cached is None:
        try:
            params = inspect.signature(layer.call).parameters
            cached = "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
        except (TypeError, ValueError):
            cached = False
        layer._accepts_training_cache = cached
    return cached


class Model(TrainingMixin, Layer):
    """A functional model: ``Model(inputs=Input(...), outputs=...)`` (lists for several)."""

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        trainable = kwargs.pop("trainable", True)
        super().__init__(name=name or _model_name(type(self)), trainable=trainable, **kwargs)
        self._state: GraphState | None = None
        self._programs: dict = {}
        self.stop_training = False
        self.history = None
        self.optimizer = None
        self.compiled = False
        self._inputs_nested = inputs
        self._outputs_nested = outputs
        self.inputs, self.outputs = [], []
        self._nodes: list = []
        self._layers: list = []
        if inputs is not None and outputs is not None:
            self._init_network(inputs, outputs)
            self._ensure_built()   # weights exist from the start, as in Keras
        elif (inputs is None) != (outputs is None):
            raise ValueError("Model needs both inputs= and outputs=")

    # -- the layer DAG -------------------------------------------------------------------------------
    def _init_network(self, inputs, outputs) -> None:
        self._inputs_nested, self._outputs_nested = inputs, outputs
        ins, outs = flatten(inputs), flatten(outputs)
        for t in ins + outs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors from Input() and "
                                f"layer calls, got {t!r}")
        for t in ins:
            if type(t.node.layer).__name__ != "InputLayer":
                raise ValueError(f"model input {t.name!r} is not an Input(); pass the tensors "
                                 "returned by graphc.layers.Input")
        seen, order = set(), []

        def visit(node):
            if node.id in seen:
                return
            seen.add(node.id)
            for p in node.parents:
                visit(p)
            order.append(node)
        for t in outs:
            visit(t.node)
        input_nodes = {t.node.id for t in ins}
        for node in order:
            if type(node.layer).__name__ == "InputLayer" and node.id not in input_nodes:
                raise ValueError(f"output depends on input {node.layer.name!r}, which is not among "
                                 "the model's inputs")
        self.inputs, self.outputs = ins, outs
        self._nodes = order
        layers = []
        for node in order:
            if node.layer not in layers:
                layers.append(node.layer)
        self._layers = layers
        self._programs = {}

    def _ensure_network(self) -> None:
        if not self._nodes:
            raise ValueError(f"model {self.name!r} has no inputs/outputs yet; build it with "
                             "Model(inputs=..., outputs=...) or give the first layer input_shape=")

    @property
    def layers(self) -> list:
        self._ensure_network_if_possible()
        return list(self._layers)

    def _ensure_network_if_possible(self):
        try:
            self._ensure_network()
        except ValueError:
            pass

    def get_layer(self, name=None, index=None):
        layers = self.layers
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {[l.name for l in layers]}")

    def _sublayers(self):
        return self.layers

    @property
    def input_names(self):
        return [t.node.layer.name for t in self.inputs]

    @property
    def output_names(self):
        return [t.node.layer.name for t in self.outputs]

    # -- graph, session, weights -----------------------------------------------------------------------
    def _ensure_built(self) -> GraphState:
        self._ensure_network()
        if self._state is None:
            existing = [l._runtime for l in self._all_leaf_layers() if l._runtime is not None]
            self._state = existing[0] if existing else GraphState()
        self._runtime = self._state
        g = self._state.graph
        with g.as_default():
            self._build_nodes(g, self._state)
        self.built = True
        self._state.init_new_variables()
        return self._state

    def _build_nodes(self, g, state) -> None:
        for node in self._nodes:
            layer = node.layer
            if isinstance(layer, Model):
                layer._state = state
                layer._runtime = state
                layer._build_nodes(g, state)
                layer.built = True
                continue
            if layer._runtime is not None and layer._runtime is not state:
                raise ValueError(f"layer {layer.name!r} is already used by a model with another "
                                 "graph; models that share layers must be built from one another")
            layer._runtime = state
            if not layer.built:
                shapes = map_structure(lambda t: t.shape if isinstance(t, KerasTensor) else t,
                                       node.args[0])
                with g.name_scope(layer.name):
                    layer._build_once(shapes)

    def _all_leaf_layers(self):
        out = []
        for l in self._layers:
            out.extend(l._all_leaf_layers() if isinstance(l, Model) else [l])
        return out

    def build(self, input_shape=None):
        self._ensure_built()

    @property
    def weights(self) -> list:
        self._ensure_network()
        if not self.built:
            self._ensure_built()
        return _unique(w for l in self._layers for w in l.weights)

    @property
    def trainable_weights(self) -> list:
        if not self.trainable:
            return []
        return _unique(w for l in self.layers for w in l.trainable_weights)

    @property
    def losses(self) -> list:
        return [t for l in self.layers for t in l.losses]

    def count_params(self) -> int:
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def get_weights(self) -> list:
        return self._ensure_built().get_values(self.weights)

    def set_weights(self, weights) -> None:
        ws = self.weights
        weights = list(weights)
        if len(weights) != len(ws):
            raise ValueError(f"model {self.name!r} has {len(ws)} weight arrays, got {len(weights)}")
        self._ensure_built().set_values(ws, weights)

    @property
    def session(self):
        return self._ensure_built().session

    @property
    def graph(self):
        return self._ensure_built().graph

    # -- replay ----------------------------------------------------------------------------------------
    def call(self, inputs, training=None):
        """Replay the layer DAG on graph tensors (used when this model is a layer of another)."""
        self._ensure_network()
        outs = self._replay(flatten(inputs), training)
        return outs[0] if len(outs) == 1 else outs

    def _replay(self, tensors, training, masks: list | None = None) -> list:
        """The outputs for graph ``tensors``; ``masks``, when given, receives each output's Keras
        mask (or None)."""
        if len(tensors) != len(self.inputs):
            raise ValueError(f"model {self.name!r} expects {len(self.inputs)} inputs, got {len(tensors)}")
        env = {id(k): t for k, t in zip(self.inputs, tensors)}
        found: dict = {}        # KerasTensor id -> its Keras mask (a bool graph tensor)

        def sub(v):
            return env[id(v)] if isinstance(v, KerasTensor) else v
        for node in self._nodes:
            if type(node.layer).__name__ == "InputLayer":
                continue
            args = map_structure(sub, node.args)
            kwargs = map_structure(sub, node.kwargs)
            if _accepts_training(node.layer):
                kwargs["training"] = bool(training)
            ins = [t for t in flatten(node.args[:1]) if isinstance(t, KerasTensor)]
            in_mask = found.get(id(ins[0])) if len(ins) == 1 else None
            if in_mask is not None and _accepts(node.layer, "mask") and "mask" not in kwargs:
                kwargs["mask"] = in_mask
            outs = node.layer(*args, **kwargs)
            out_keys = flatten(node.outputs)
            for k, t in zip(out_keys, flatten(outs)):
                env[id(k)] = t
            if len(out_keys) == 1 and len(ins) <= 1:
                x = args[0]
                with x.graph.as_default(), x.graph.name_scope(node.layer.name + "_mask"):
                    out_mask = node.layer.compute_mask(x, in_mask)
                if out_mask is not None:
                    found[id(out_keys[0])] = out_mask
        if masks is not None:
            masks.extend(found.get(id(o)) for o in self.outputs)
        return [env[id(o)] for o in self.outputs]

    # -- eager calls: model(numpy arrays) ----------------------------------------------------------------
    def _eager_prepare(self, inputs):
        self._ensure_network_for(inputs)
        xs = self._x_list(inputs)
        return (xs if len(xs) > 1 else xs[0]), self._ensure_built()

    def _eager_call(self, inputs, args, kwargs):
        """``model(x)`` on arrays: outputs as numpy arrays (nested like ``outputs=``); with
        ``training`` off it runs the ``predict`` program of x's signature, in one batch."""
        if args or set(kwargs) - {"training"} or kwargs.get("training"):
            return super()._eager_call(inputs, args, kwargs)
        self._ensure_network_for(inputs)
        xs = self._x_list(inputs)
        outs = self._run(self._get_program("predict", xs), xs)
        return _renest([np.asarray(o) for o in outs], _nesting(self._outputs_nested))

    def compute_output_shape(self, input_shape):
        shapes = [o.shape for o in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    # -- summary ---------------------------------------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False):
        """Print a Keras-style table of layers, output shapes and parameter counts."""
        self._ensure_network()
        self._ensure_built()
        pf = print_fn or print
        functional = type(self).__name__ != "Sequential"
        width = line_length or (98 if functional else 65)
        cols = [0.33, 0.55, 0.67, 1.0] if functional else [0.45, 0.85, 1.0]
        stops = [int(width * c) for c in cols]
        heads = ["Layer (type)", "Output Shape", "Param #", "Connected to"][:len(stops)]

        def row(fields):
            line = ""
            for i, f in enumerate(fields):
                start = stops[i - 1] if i else 0
                cell = (" " if i == 0 else "") + str(f)
                room = stops[i] - start - 1 if i < len(stops) - 1 else 10 ** 6
                line = line.ljust(start) + cell[:max(room, 1)]
            return line
        pf(f'Model: "{self.name}"')
        pf("_" * width)
        pf(row(heads))
        pf("=" * width)
        nodes = [n for n in self._nodes if functional or type(n.layer).__name__ != "InputLayer"]
        for i, node in enumerate(nodes):
            layer = node.layer
            outs = flatten(node.outputs)
            shape = outs[0].shape if len(outs) == 1 else [o.shape for o in outs]
            n = layer.count_params() if layer.built else 0
            fields = [f"{layer.name} ({type(layer).__name__})", _fmt_shape(shape), n]
            if functional:
                fields.append(", ".join(f"{t.node.layer.name}[0][{t.index}]" for t in node.inputs))
            pf(row(fields))
            if functional:
                pf(("=" if i == len(nodes) - 1 else "_") * width)
        if not functional:
            pf("=" * width)
        total = self.count_params()
        trainable = int(sum(int(np.prod(w.shape)) for w in self.trainable_weights))
        pf(f"Total params: {total:,} ({_fmt_bytes(total * 4)})")
        pf(f"Trainable params: {trainable:,} ({_fmt_bytes(trainable * 4)})")
        pf(f"Non-trainable params: {total - trainable:,} ({_fmt_bytes((total - trainable) * 4)})")
        pf("_" * width)

    # -- config ----------------------------------------------------------------------------------------
    def get_config(self) -> dict:
        self._ensure_network()
        node_index = {node.id: i for i, node in enumerate(self._nodes)}

        def ref(t):
            if isinstance(t, KerasTensor):
                return {"__keras_tensor__": [node_index[t.node.id], t.index]}
            if isinstance(t, np.ndarray):
                return t.tolist()
            return t
        layers = []
        for layer in self._layers:
            layers.append(serialize_layer(layer))
        nodes = [{"layer": node.layer.name, "args": map_structure(ref, list(node.args)),
                  "kwargs": map_structure(ref, node.kwargs)} for node in self._nodes]
        return {"name": self.name, "trainable": self.trainable, "layers": layers, "nodes": nodes,
                "inputs": [ref(t) for t in self.inputs], "outputs": [ref(t) for t in self.outputs],
                "nested_inputs": _nesting(self._inputs_nested),
                "nested_outputs": _nesting(self._outputs_nested)}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        layers = {}
        for spec in config["layers"]:
            layers[spec["config"]["name"]] = deserialize_layer(spec, custom_objects)
        produced: list = []

        def unref(v):
            if isinstance(v, dict) and "__keras_tensor__" in v:
                ni, ti = v["__keras_tensor__"]
                return flatten(produced[ni])[ti]
            return v
        for nspec in config["nodes"]:
            layer = layers[nspec["layer"]]
            if type(layer).__name__ == "InputLayer":
                produced.append(layer._inbound_nodes[0].outputs)
                continue
            args = _unref_nest(nspec["args"], unref)
            kwargs = _unref_nest(nspec["kwargs"], unref)
            produced.append(layer(*args, **kwargs))
        ins = _renest([unref(r) for r in config["inputs"]], config.get("nested_inputs"))
        outs = _renest([unref(r) for r in config["outputs"]], config.get("nested_outputs"))
        return cls(inputs=ins, outputs=outs, name=config["name"])

    def to_json(self) -> str:
        import json
        return json.dumps(serialize_layer(self))

    def save(self, filepath, overwrite=True, include_optimizer=True) -> None:
        """Save config, weights, compile settings and (``include_optimizer``) the optimizer's
        state (slots and iteration count) in one ``.npz`` file, atomically."""
        from .saving import save_model
        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True) -> None:
        from .saving import save_weights
        save_weights(self, filepath)

    def load_weights(self, filepath) -> None:
        from .saving import load_weights
        load_weights(self, filepath)


def _unref_nest(v, unref):
    if isinstance(v, dict) and "__keras_tensor__" in v:
        return unref(v)
    if isinstance(v, list):
        return [_unref_nest(x, unref) for x in v]
    if isinstance(v, dict):
        return {k: _unref_nest(x, unref) for k, x in v.items()}
    return v


def _nesting(x):
    """'single' or 'list' (how inputs/outputs were given) for a faithful round trip."""
    return "list" if isinstance(x, (list, tuple)) else "single"


def _renest(flat, how):
    return flat if how == "list" or len(flat) != 1 else flat[0]


def _model_name(cls) -> str:
    from ..layers.base import snake_case, unique_object_name
    base = "functional" if cls.__name__ == "Model" else snake_case(cls.__name__)
    return unique_object_name(base)


def _fmt_shape(shape) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_fmt_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _fmt_bytes(n: int) -> str:
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:.2f} B" if n != 1 else "1.00 Byte"
