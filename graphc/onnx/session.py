"""``InferenceSession``: run an ONNX model through graphc's optimizer and compiled runtime.

The API is onnxruntime's (``run``, ``get_inputs``, ``get_outputs``), so switching is one import.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import OnnxError, UnsupportedError
from .importer import build, load


_MAX_BAKED = 64      # inputs up to this many elements may be specialized on (when a converter needs them)
_MAX_BUILDS = 64     # graphs kept per session before the cache starts over


@dataclass(frozen=True)
class NodeArg:
    """An input or output of the model: ``name``, ``shape`` (ints, or names for symbolic dims), ``type``."""
    name: str
    shape: list
    type: str


_TYPE = {"float32": "tensor(float)", "float64": "tensor(double)", "int32": "tensor(int32)",
         "int64": "tensor(int64)", "bool": "tensor(bool)"}


class InferenceSession:
    """An ONNX model built into a graphc graph and run by a ``gc.Session`` (passes.optimize + compiled
    kernels; ``executor="reference"`` runs the numpy reference interpreter).

        >>> import os, tempfile, numpy as np, graphc as gc, graphc.onnx as gco
        >>> g = gc.Graph()
        >>> with g.as_default():
        ...     x = gc.placeholder("float32", (None, 2), name="x")
        ...     y = gc.nn.softmax(x * 2.0)
        >>> path = os.path.join(tempfile.mkdtemp(), "softmax.onnx")
        >>> gco.export_graph(y, x, path, output_names=["y"])
        >>> sess = gco.InferenceSession(path)
        >>> [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()]
        (['x'], ['y'])
        >>> sess.get_inputs()[0].shape, sess.get_inputs()[0].type
        (['batch', 2], 'tensor(float)')
        >>> sess.run(["y"], {"x": np.zeros((1, 2), np.float32)})[0].tolist()
        [[0.5, 0.5]]

    Models whose shapes are computed from the input sizes (a Reshape fed by Shape of a symbolic
    dimension) are built for each new set of input shapes; when a converter needs the value of a
    small input (Reshape's shape, Slice's bounds, Resize's scales fed as graph inputs), for each
    value of that input too. ``sess_options`` and ``providers`` are accepted for onnxruntime
    compatibility and ignored; ``executor="reference"`` runs graphc's numpy interpreter.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, *, executor: str | None = None,
                 optimize: bool = True):
        if isinstance(path_or_bytes, (bytes, bytearray)):
            raise TypeError("InferenceSession: pass the model's file path (graphc reads external data "
                            "relative to it)")
        self.path = os.fspath(path_or_bytes)
        self._model = load(self.path)
        self._executor, self._optimize = executor, optimize
        self._value_inputs = []     # inputs whose values the graph is specialized on, once needed
        try:
            b = build(self._model, self.path)
        except UnsupportedError as e:
            if e.kind != "dynamic":
                raise
            b = None   # built at run time, for the fed shapes (and the values it needs)
        from .importer import value_info
        g = self._model.graph
        inits = {t.name for t in g.initializer}
        self._inputs = [value_info(vi, self.path) for vi in g.input if vi.name not in inits]
        self._outputs = [value_info(vi, self.path) for vi in g.output]
        self._sym = {vi.name: [d.dim_param or None if not d.HasField("dim_value") else d.dim_value
                               for d in vi.type.tensor_type.shape.dim] for vi in list(g.input) + list(g.output)}
        if b is not None:
            self._sessions = {None: self._session(b)}
        else:
            self._sessions = {}

    def _session(self, b):
        import graphc as gc
        return b, gc.Session(b.graph, executor=self._executor, optimize=self._optimize)

    def get_inputs(self):
        return [NodeArg(n, self._sym.get(n) or list(s or ()), _TYPE[dt.name]) for n, s, dt in self._inputs]

    def get_outputs(self):
        return [NodeArg(n, self._sym.get(n) or list(s or ()), _TYPE[dt.name]) for n, s, dt in self._outputs]

    def get_providers(self):
        return ["GraphcExecutionProvider"]

    def run(self, output_names, input_feed: dict, run_options=None):
        """Outputs ``output_names`` (all when None) as a list of numpy arrays, given {input name: array}."""
        names = [n for n, _, _ in self._inputs]
        missing = [n for n in names if n not in input_feed]
        extra = [n for n in input_feed if n not in names]
        if missing or extra:
            raise OnnxError(self.path, reason=f"run: inputs {missing} missing, {extra} unknown; the model's "
                            f"inputs are {names}")
        feeds = {}
        for n, shape, dt in self._inputs:
            v = np.asarray(input_feed[n])
            if v.dtype != dt:
                raise OnnxError(self.path, reason=f"run: input {n!r} has dtype {v.dtype.name}, the model "
                                f"expects {dt.name}")
            if shape is not None and (v.ndim != len(shape) or any(
                    s is not None and s != d for s, d in zip(shape, v.shape))):
                raise OnnxError(self.path, reason=f"run: input {n!r} has shape {v.shape}, the model expects "
                                f"{tuple(shape)} (None: any size)")
            feeds[n] = v
        if None in self._sessions:
            b, sess = self._sessions[None]
        else:
            b, sess = self._specialized(names, feeds)
        outs = [n for n, _, _ in self._outputs] if output_names is None else list(output_names)
        bad = [n for n in outs if n not in b.outputs]
        if bad:
            raise OnnxError(self.path, reason=f"run: unknown outputs {bad}; the model's outputs are "
                            f"{list(b.outputs)}")
        fd = {b.inputs[n]: v for n, v in feeds.items() if n not in b.baked}
        vals = sess.run([b.outputs[n] for n in outs], fd)
        return [np.asarray(v) for v in vals]

    def _specialized(self, names, feeds):
        """The graph built for these input shapes; when a converter needs the value of an input
        (a shape, slice bounds, axes or scales fed as inputs), built for that value too."""
        shapes = {n: feeds[n].shape for n in names}
        while True:
            vals = {n: feeds[n] for n in self._value_inputs}
            key = tuple(shapes[n] for n in names) + tuple((n, v.shape, v.tobytes()) for n, v in vals.items())
            if key in self._sessions:
                return self._sessions[key]
            try:
                b = build(self._model, self.path, shapes, vals)
            except UnsupportedError as e:
                new = [n for n in e.inputs if n not in self._value_inputs]
                if e.kind != "dynamic" or not new or any(feeds[n].size > _MAX_BAKED for n in new):
                    raise
                self._value_inputs = sorted(set(self._value_inputs) | set(new))
                continue
            if len(self._sessions) > _MAX_BUILDS:
                self._sessions = {}
            self._sessions[key] = self._session(b)
            return self._sessions[key]

    @property
    def graph(self):
        """The graphc graph built from the model (for its generic input shapes, when it has one)."""
        if None in self._sessions:
            return self._sessions[None][0].graph
        raise OnnxError(self.path, reason="the model is built per input shape; run it first")
