"""Programs to dump or benchmark: the built-in workloads and user targets (``file.py:name``, a model file).

A ``Program`` is a graph plus the node ids fetched and fed, and (for workloads) sample feed values and
variable state, so it can be optimized, compiled and run as it is.

    >>> p = build("mlp_infer", quick=True)
    >>> p.name, len(p.fetches), sorted(p.feed_values) == sorted(p.feeds)
    ('mlp_infer', 1, True)
"""
from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


class TargetError(Exception):
    """A dump/bench target that cannot be loaded; the CLI prints the message as one line (exit 2)."""


@dataclass
class Program:
    """A graph with its fetched and fed node ids (and, when known, sample feeds and variable state)."""
    name: str
    graph: object
    fetches: list
    feeds: list
    feed_values: dict = field(default_factory=dict)   # node id -> array
    state: dict = field(default_factory=dict)         # variable name -> array
    description: str = ""

    def needed(self) -> list:
        """The nodes a run of ``fetches`` needs, in schedule order."""
        from graphc.interpreter import schedule
        return schedule(self.graph, self.fetches, set(self.feeds))


# -- models ------------------------------------------------------------------------------------------
def _sample(shape, dtype, rng, batch):
    shape = tuple(batch if i == 0 and d is None else (8 if d is None else d) for i, d in enumerate(shape))
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        return rng.integers(0, 2, size=shape).astype(dt)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    return rng.standard_normal(shape).astype(dt)


def model_program(model, train: bool = False, batch: int = 32, name: str = "model") -> Program:
    """The inference (or, with ``train``, the training-step) program of a Keras-style model.

        >>> from graphc.models import Sequential; from graphc.layers import Dense
        >>> m = Sequential([Dense(2, input_dim=3)]); m.compile("sgd", "mse")
        >>> model_program(m, train=True).name
        'model (training step)'
    """
    from graphc import losses
    rng = np.random.default_rng(0)
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError) as e:
        raise TargetError(f"{name}: the model has no input shape yet ({e}); give its first layer "
                          "input_shape=... or build it") from None
    xs = [_sample(t.shape, t.dtype, rng, batch) for t in inputs]
    xarg = xs if len(xs) > 1 else xs[0]
    xs = model._x_list(xarg)
    if not train:
        prog = model._get_program("predict", xs)
        arrays, label = xs, "inference"
    else:
        if not getattr(model, "compiled", False):
            raise TargetError(f"{name}: --train needs a compiled model (call model.compile(optimizer=..., "
                              "loss=...) before returning it)")
        ys = []
        for t, fn in zip(model.outputs, model._loss_fns):
            if fn is not None and losses.is_sparse(fn):
                ys.append(rng.integers(0, max(1, t.shape[-1] or 2), size=(batch,)).astype(np.int32))
            else:
                ys.append(_sample(t.shape, "float32", rng, batch))
        ys = model._y_list(ys if len(ys) > 1 else ys[0])
        prog = model._get_program("train", xs, ys)
        arrays, label = xs + ys, "training step"
    state = model._ensure_built()
    feeds = [t.node for t in prog.feeds]
    fetches = [t.node for t in prog.fetches]
    return Program(f"{name} ({label})" if name == "model" else name, state.graph, fetches, feeds,
                   dict(zip(feeds, arrays)), dict(state.session.state), f"{type(model).__name__} {label}")


# -- built-in workloads ---------------------------------------------------------------------------------
def _chain(length: int, quick: bool) -> Program:
    import graphc as gc
    n = 1 << 16 if quick else 1 << 20
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None,), name="x")
        h = x
        ops = (lambda t: t * 1.5, lambda t: t + 0.25, gc.tanh, lambda t: t * t, lambda t: t - 0.5,
               gc.relu, gc.sigmoid, lambda t: gc.maximum(t, 0.1))
        for i in range(length):
            h = ops[i % len(ops)](h)
    xv = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    return Program(f"chain_{length}", g, [h.node], [x.node], {x.node: xv},
                   description=f"{length}-op elementwise chain on {n} float32")


def _mlp():
    from graphc.layers import Dense
    from graphc.models import Sequential
    m = Sequential([Dense(64, activation="relu", input_dim=784), Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def _cnn(quick):
    from graphc.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from graphc.models import Sequential
    m = Sequential([Conv2D(8 if quick else 32, 3, activation="relu", input_shape=(28, 28, 1)),
                    MaxPooling2D(2), Conv2D(16 if quick else 64, 3, activation="relu"), MaxPooling2D(2),
                    Flatten(), Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def _lstm(quick):
    from graphc.layers import LSTM, Dense
    from graphc.models import Sequential
    m = Sequential([LSTM(16 if quick else 32, input_shape=(8 if quick else 20, 16)),
                    Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def _transformer(quick):
    from graphc.layers import Add, Dense, Input, LayerNormalization, MultiHeadAttention
    from graphc.models import Model
    seq, d = (16, 32) if quick else (64, 64)
    x = Input((seq, d))
    a = MultiHeadAttention(num_heads=4, key_dim=d // 4)(x, x)
    h = LayerNormalization()(Add()([x, a]))
    f = Dense(d)(Dense(4 * d, activation="relu")(h))
    y = LayerNormalization()(Add()([h, f]))
    m = Model(x, y)
    m.compile(optimizer="adam", loss="mse")
    return m


def _model_workload(name: str, quick: bool) -> Program:
    kind, mode = name.split("_")
    model = {"mlp": lambda: _mlp(), "cnn": lambda: _cnn(quick), "lstm": lambda: _lstm(quick),
             "transformer": lambda: _transformer(quick)}[kind]()
    batch = 8 if quick else 32
    p = model_program(model, train=(mode == "train"), batch=batch, name=name)
    p.description = f"{kind} {'training step' if mode == 'train' else 'inference'}, batch {batch}"
    return p


def _synthetic(n_nodes: int, quick: bool) -> Program:
    """The pass-scaling chain of examples/bench_passes.py: every pass has work in each 12-node block."""
    import graphc as gc
    width = 8
    g = gc.Graph()
    w = np.eye(width, dtype=np.float32)
    with g.as_default():
        x = gc.placeholder("float32", (None, width), name="x")
        h = x
        for _ in range(max(1, n_nodes // 12)):
            a = h * gc.constant(1.0)
            c = gc.constant(2.0) + gc.constant(3.0)
            b = gc.tanh(a) + c
            t = gc.transpose(gc.transpose(b))
            h = gc.relu(gc.matmul(t, gc.constant(w))) * 0.5
    xv = np.random.default_rng(0).standard_normal((16, width)).astype(np.float32)
    return Program(f"synthetic_{n_nodes // 1000}k", g, [h.node], [x.node], {x.node: xv},
                   description=f"{g.num_nodes()}-node synthetic chain (pass scaling)")


CHAIN_LENGTHS = (4, 16, 64)
WORKLOADS: dict[str, Callable[[bool], Program]] = {
    **{f"chain_{k}": (lambda quick, k=k: _chain(k, quick)) for k in CHAIN_LENGTHS},
    **{f"{m}_{mode}": (lambda quick, nm=f"{m}_{mode}": _model_workload(nm, quick))
       for m in ("mlp", "cnn", "lstm") for mode in ("train", "infer")},
    "transformer_infer": lambda quick: _model_workload("transformer_infer", quick),
    "transformer_train": lambda quick: _model_workload("transformer_train", quick),
    "synthetic_2k": lambda quick: _synthetic(2000, quick),
    "synthetic_20k": lambda quick: _synthetic(20000, quick),
}
# short names accepted by ``graphc dump`` (``--train`` picks the training step)
ALIASES = {"mlp": "mlp", "cnn": "cnn", "lstm": "lstm", "transformer": "transformer"}


def build(name: str, quick: bool = False) -> Program:
    """Build the workload ``name`` (a key of ``WORKLOADS``; ``mlp`` means ``mlp_infer``).

        >>> build("chain_16", quick=True).graph.num_nodes()
        25
    """
    if name in ALIASES:
        name = f"{name}_infer"
    if name not in WORKLOADS:
        raise TargetError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    return WORKLOADS[name](quick)


# -- ONNX files ----------------------------------------------------------------------------------------------
def onnx_program(path: str, batch: int = 8) -> Program:
    """The graphc graph of an ONNX model (``graphc.onnx``'s importer), with sample inputs.

    Symbolic dimensions get sample sizes (``batch`` for the first, 8 for others); a model whose
    graph needs static shapes is built for those sizes.
    """
    try:
        from graphc.onnx.importer import build, load
        from graphc.onnx.errors import OnnxError
    except ImportError as e:
        raise TargetError(f"{path}: {e}") from None
    rng = np.random.default_rng(0)
    try:
        model = load(path)
        try:
            b = build(model, path)
        except OnnxError as e:
            if getattr(e, "kind", None) != "dynamic":
                raise
            b = None
        if b is None or any(None in (s or ()) for _, s, _ in b.input_info):
            shapes = {}
            info = b.input_info if b is not None else None
            if info is None:
                from graphc.onnx.importer import value_info
                inits = {t.name for t in model.graph.initializer}
                info = [value_info(vi, path) for vi in model.graph.input if vi.name not in inits]
            for name, shape, _ in info:
                shapes[name] = tuple(batch if i == 0 and d is None else (8 if d is None else d)
                                     for i, d in enumerate(shape or ()))
            if b is None:
                b = build(model, path, shapes)
        else:
            shapes = {name: shape for name, shape, _ in b.input_info}
    except OnnxError as e:
        raise TargetError(str(e)) from None
    feeds = [b.inputs[n].node for n, _, _ in b.input_info]
    values = {b.inputs[n].node: _sample(shapes[n], dt, rng, batch) for n, _, dt in b.input_info}
    fetches = [t.node for t in b.outputs.values()]
    return Program(os.path.basename(path), b.graph, fetches, feeds, values,
                   description=f"ONNX model {os.path.basename(path)}")


# -- user targets -----------------------------------------------------------------------------------------
def _load_module(path: str):
    modname = "graphc_target_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{path}: cannot be imported as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    return mod


def as_program(obj, name: str, train: bool = False) -> Program:
    """A ``Program`` from a Tensor, a list of Tensors, a Graph or a Model.

        >>> import graphc as gc
        >>> g = gc.Graph()
        >>> with g.as_default():
        ...     y = gc.placeholder("float32", (3,), name="x") * 2.0
        >>> as_program(y, "y").fetches == [y.node]
        True
    """
    from graphc.ir import Graph, Tensor
    from graphc.models import Model
    if isinstance(obj, Model):
        return model_program(obj, train=train, name=name)
    if train:
        raise TargetError(f"{name}: --train needs a model (got a {type(obj).__name__})")
    if isinstance(obj, Tensor) or hasattr(obj, "_as_tensor"):
        obj = [obj]
    if isinstance(obj, (list, tuple)) and obj:
        ts = [t._as_tensor() if hasattr(t, "_as_tensor") else t for t in obj]
        if not all(isinstance(t, Tensor) for t in ts):
            raise TargetError(f"{name}: a list of {', '.join(sorted({type(t).__name__ for t in ts}))}, "
                              "not of graphc Tensors")
        g = ts[0].graph
        if any(t.graph is not g for t in ts):
            raise TargetError(f"{name}: the tensors belong to different graphs")
        fetches = [t.node for t in ts]
    elif isinstance(obj, Graph):
        g = obj
        fetches = [n for n in g.nodes() if not g.consumers(n) and g.op(n) != "placeholder"]
        if not fetches:
            raise TargetError(f"{name}: the graph is empty")
    else:
        raise TargetError(f"{name}: not a graph or model (a {type(obj).__name__}); return a Tensor, a "
                          "list of Tensors, a Graph or a Model")
    p = Program(name, g, fetches, [])
    p.feeds = [n for n in p.needed() if g.op(n) == "placeholder"]
    return p


def load_target(target: str, train: bool = False, quick: bool = True) -> Program:
    """Resolve a dump target: ``file.py:name``, a saved model file, an ``.onnx`` file, or a workload name.

        >>> load_target("mlp").name
        'mlp_infer'
        >>> load_target("nope.py:f")
        Traceback (most recent call last):
        ...
        graphc.tools.workloads.TargetError: nope.py: file not found
    """
    path, _, attr = target.rpartition(":")
    if path and (path.endswith(".py") or os.path.exists(path)) and attr:
        if not os.path.isfile(path):
            raise TargetError(f"{path}: file not found")
        try:
            mod = _load_module(path)
        except TargetError:
            raise
        except Exception as e:
            raise TargetError(f"{path}: importing it failed: {type(e).__name__}: {e}") from e
        if not hasattr(mod, attr):
            names = [k for k in vars(mod) if not k.startswith("_")]
            raise TargetError(f"{path}: no name {attr!r} in the module (it has: {', '.join(names[:12])})")
        obj = getattr(mod, attr)
        from graphc.ir import Graph, Tensor
        from graphc.models import Model
        if callable(obj) and not isinstance(obj, (Graph, Tensor, Model, type)):
            try:
                obj = obj()
            except Exception as e:
                raise TargetError(f"{path}:{attr}() raised {type(e).__name__}: {e}") from e
        return as_program(obj, f"{os.path.basename(path)}:{attr}", train=train)
    if target.endswith(".py"):
        if not os.path.isfile(target):
            raise TargetError(f"{target}: file not found")
        raise TargetError(f"{target}: say which name to dump: {target}:NAME (a function or attribute)")
    if target.endswith(".onnx"):
        if not os.path.isfile(target):
            raise TargetError(f"{target}: file not found")
        if train:
            raise TargetError(f"{target}: --train needs a graphc model; an ONNX file holds inference only")
        return onnx_program(target)
    if os.path.isfile(target):
        from graphc.models import load_model
        try:
            model = load_model(target)
        except Exception as e:
            raise TargetError(f"{target}: not a graphc model file ({type(e).__name__}: {e})") from e
        return model_program(model, train=train, name=os.path.basename(target))
    base = target
    if base in ALIASES:
        base = f"{base}_{'train' if train else 'infer'}"
    elif train and base in WORKLOADS and not base.endswith("_train"):
        raise TargetError(f"{target}: --train applies to model workloads (mlp, cnn, lstm, transformer)")
    if base in WORKLOADS:
        return WORKLOADS[base](quick)
    if os.sep in target or "." in target:
        raise TargetError(f"{target}: file not found")
    raise TargetError(f"{target}: not a file, file.py:name, or workload (workloads: "
                      f"{', '.join(list(ALIASES) + list(WORKLOADS))})")
