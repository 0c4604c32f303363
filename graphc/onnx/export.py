"""graphc -> ONNX: walk a graph's inference program and emit ONNX nodes, one emitter per graphc op.

Variables and constants become initializers; an unknown (``None``) dimension of an input becomes
a symbolic dimension. ``export(model, path)`` exports a Keras-style model's ``predict`` program;
its LSTM layers become one ONNX ``LSTM`` node each, its other recurrent layers (graphc ``scan``
nodes) ONNX ``Scan`` nodes, so a model whose time axis is ``None`` exports with a symbolic time
axis. Control flow (``scan``, ``while_loop``, ``cond``) becomes ``Scan``, ``Loop`` and ``If`` with
sub-graphs exported through the same emitters (``emitters_control``).

    >>> import graphc as gc, numpy as np, tempfile, os
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     x = gc.placeholder("float32", (None, 3), name="x")
    ...     y = gc.nn.relu(gc.matmul(x, gc.constant(np.eye(3, dtype=np.float32))))
    >>> path = os.path.join(tempfile.mkdtemp(), "relu.onnx")
    >>> export_graph([y], [x], path)
    >>> import graphc.onnx as gco
    >>> gco.InferenceSession(path).run(None, {"x": np.ones((2, 3), np.float32) * -1})[0].tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from .errors import OnnxError, require_onnx

DEFAULT_OPSET = 17
MIN_EXPORT_OPSET = 13    # Squeeze/Unsqueeze/ReduceSum take axes as inputs from 13 on
EMITTERS: dict = {}
_ONNX_TYPE = {"float32": 1, "float64": 11, "int32": 6, "int64": 7, "bool": 9}


def emitter(*ops):
    def deco(fn):
        for o in ops:
            EMITTERS[o] = fn
        return fn
    return deco


class _Exporter:
    """Emit the ONNX graph for ``fetches`` of graphc ``graph`` fed at ``feeds``."""

    def __init__(self, graph, feeds, fetches, state, path, dyn_dims=None, absorbed=None, opset=DEFAULT_OPSET):
        self.g, self.feeds, self.fetches, self.state, self.path = graph, feeds, fetches, state, path
        self.opset = _check_opset(opset, path)
        self.dyn_dims = dyn_dims or {}      # sample size -> (input name, axis): a symbolic non-batch dim
        self.absorbed = absorbed or {}      # output node -> (emit function, nodes it covers, its inputs)
        self.nodes, self.inits, self.names, self._used = [], [], {}, set()

    # names ----------------------------------------------------------------------------------------------
    def fresh(self, base):
        base = "".join(c if c.isalnum() or c in "_./-" else "_" for c in base) or "v"
        name, k = base, 1
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def node(self, op_type, inputs, n_out=1, base=None, **attrs):
        from onnx import helper
        outs = [self.fresh(f"{base or op_type}" + (f":{i}" if n_out > 1 else "")) for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.fresh("n_" + outs[0]),
                                           **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value, base="const"):
        from onnx import numpy_helper
        name = self.fresh(base)
        arr = np.asarray(value)     # (np.ascontiguousarray alone would make a scalar 1-D)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr).reshape(arr.shape), name))
        return name

    def fail(self, n, reason):
        g = self.g
        return OnnxError(self.path, g.name(n), g.op(n), f"cannot export: {reason}")

    # shapes -------------------------------------------------------------------------------------------
    def shape_input(self, dims):
        """An int64 shape tensor for Reshape: static entries, -1, and symbolic dims read at run time."""
        parts, static = [], []
        for d in dims:
            if d in self.dyn_dims:
                if static:
                    parts.append(self.const(np.asarray(static, np.int64), "shape"))
                    static = []
                inp, ax = self.dyn_dims[d]
                parts.append(self.node("Shape", [inp], base="dim", start=ax, end=ax + 1))
            else:
                static.append(-1 if d is None else int(d))
        if static:
            parts.append(self.const(np.asarray(static, np.int64), "shape"))
        return parts[0] if len(parts) == 1 else self.node("Concat", parts, base="shape", axis=0)

    # walking ------------------------------------------------------------------------------------------
    def emit_node(self, n):
        """Emit graphc node ``n`` (its inputs already have ONNX names) and record its ONNX name(s)."""
        g = self.g
        op = g.op(n)
        if op == "variable":
            if g.name(n) not in self.state:
                raise self.fail(n, "the variable has no value (run its initializer first)")
            self.names[n] = self.const(np.asarray(self.state[g.name(n)]), g.name(n))
        elif op == "constant":
            self.names[n] = self.const(np.asarray(g.attrs(n)["value"]), g.name(n))
        elif op == "placeholder":
            raise self.fail(n, "a placeholder the outputs need is not among the inputs")
        else:
            em = EMITTERS.get(op)
            if em is None:
                raise self.fail(n, f"graphc op {op!r} has no ONNX emitter; exportable ops: "
                                f"{', '.join(sorted(EMITTERS))}")
            self.names[n] = em(self, n, [self.names[i] for i in g.inputs(n)], g.attrs(n))

    def emit(self, targets, stop=()):
        """Emit every node ``targets`` need (up to the already named ones); their ONNX names."""
        for n in self.g.topo_order(list(targets), stop=set(stop) | set(self.names)):
            if n not in self.names:
                self.emit_node(n)
        return [self.names[n] for n in targets]

    def child(self, graph, nodes=None):
        """An exporter for a control flow body ``graph`` (a sub-graph): it shares this exporter's
        names (ONNX names are unique across nested graphs), initializers, symbolic dims and
        variable values, and appends its nodes to ``nodes`` (default: a new list, the
        sub-graph's)."""
        sub = _Exporter.__new__(_Exporter)
        sub.g, sub.feeds, sub.fetches, sub.state, sub.path = graph, [], [], self.state, self.path
        sub.opset, sub.dyn_dims, sub.absorbed = self.opset, self.dyn_dims, {}
        sub.nodes = [] if nodes is None else nodes
        sub.inits, sub.names, sub._used = self.inits, {}, self._used
        return sub

    def run(self, input_names, output_names):
        from onnx import helper
        g = self.g
        order = g.topo_order(self.fetches, stop=set(self.feeds))
        used, stack = set(), list(self.fetches)
        while stack:   # the nodes the outputs read, an absorbed layer reading only its input
            n = stack.pop()
            if n in used:
                continue
            used.add(n)
            if n in self.feeds:
                continue
            stack.extend(self.absorbed[n][2] if n in self.absorbed else g.inputs(n))
        covered = {n for n in order if n not in used}
        inputs = []
        for n, nm in zip(self.feeds, input_names):
            spec = g.spec(n)
            name = self.fresh(nm)
            self.names[n] = name
            dims = []
            for i, d in enumerate(spec.shape):
                sym = [k for k, (inp, ax) in self.dyn_dims.items() if inp == name and ax == i]
                dims.append("batch" if d is None and i == 0 else f"{name}_dim{i}" if d is None
                            else (f"{name}_len{i}" if sym else d))
            inputs.append(helper.make_tensor_value_info(name, _ONNX_TYPE[spec.dtype.name], dims))
        for n in order:
            if n in self.names or n in covered:
                continue
            if n in self.absorbed:
                self.names[n] = self.absorbed[n][0](self)
                continue
            self.emit_node(n)
        outputs = []
        for n, nm in zip(self.fetches, output_names):
            spec = g.spec(n)
            name = self.node("Identity", [self.names[n]], base=nm)
            dims = [("batch" if i == 0 else f"{name}_dim{i}") if d is None else d for i, d in enumerate(spec.shape)]
            for k, (inp, ax) in self.dyn_dims.items():
                dims = [f"{inp}_len{ax}" if d == k and i > 0 else d for i, d in enumerate(dims)]
            outputs.append(helper.make_tensor_value_info(name, _ONNX_TYPE[spec.dtype.name], dims))
        return inputs, outputs


def _check_opset(opset, path):
    onnx = require_onnx()
    top = onnx.defs.onnx_opset_version()
    if not MIN_EXPORT_OPSET <= int(opset) <= top:
        raise OnnxError(os.fspath(path), reason=f"cannot export at opset {opset}: graphc emits opsets "
                        f"{MIN_EXPORT_OPSET}..{top} (the installed onnx's newest)")
    return int(opset)


def _save(model, path):
    """Check and write ``model`` atomically (temp file in the same folder, then rename)."""
    onnx = require_onnx()
    onnx.checker.check_model(model)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _make_model(ex, inputs, outputs, opset, name):
    from onnx import helper
    graph = helper.make_graph(ex.nodes, name, inputs, outputs, initializer=ex.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             producer_name="graphc", ir_version=8)


def _tensors(xs, what):
    from ..ir import Tensor
    xs = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    ts = [x._as_tensor() if hasattr(x, "_as_tensor") else x for x in xs]
    if not ts or not all(isinstance(t, Tensor) for t in ts):
        raise TypeError(f"export_graph: {what} must be graphc Tensors")
    return ts


def export_graph(outputs, inputs, path, *, session=None, opset=None, input_names=None,
                 output_names=None) -> None:
    """Export the TensorFlow-1 style graph computing ``outputs`` from placeholders ``inputs`` to ``path``.

    Variables take their values from ``session`` (a ``gc.Session`` that initialized them);
    ``None`` dimensions of the placeholders become symbolic ONNX dimensions.

        >>> import graphc as gc, numpy as np, tempfile, os
        >>> x = gc.placeholder("float32", (None, 2), name="x")
        >>> w = gc.Variable(np.ones((2, 1), np.float32), name="w")
        >>> sess = gc.Session(); _ = sess.run(gc.global_variables_initializer())
        >>> export_graph(gc.matmul(x, w), x, os.path.join(tempfile.mkdtemp(), "m.onnx"), session=sess)
    """
    require_onnx()
    from . import emitters  # noqa: F401  (fill EMITTERS)
    outs, ins = _tensors(outputs, "outputs"), _tensors(inputs, "inputs")
    g = outs[0].graph
    state = dict(session.state) if session is not None else {}
    ex = _Exporter(g, [t.node for t in ins], [t.node for t in outs], state, os.fspath(path),
                   opset=opset or DEFAULT_OPSET)
    in_names = input_names or [g.name(t.node) for t in ins]
    out_names = output_names or [g.name(t.node).replace("/", "_") for t in outs]
    vi_in, vi_out = ex.run(in_names, out_names)
    _save(_make_model(ex, vi_in, vi_out, ex.opset, "graphc"), path)


def _unrolled_over(g, feeds, fetches, absorbed, t_len) -> bool:
    """Whether a node outside the absorbed layers picks an inner step of a ``t_len``-long axis (an
    unrolled loop, which would fix the exported length). A ``scan`` reads its steps itself; its
    first or last step alone (an initial state's shape) is read at any length."""
    covered = set().union(*(v[1] for v in absorbed.values())) if absorbed else set()
    for n in g.topo_order(fetches, stop=set(feeds)):
        if n in covered or g.op(n) != "strided_slice":
            continue
        shape, dim = g.spec(g.inputs(n)[0]).shape, 0
        for k in g.attrs(n)["key"]:
            if k is None:
                continue
            if not isinstance(k, tuple) and dim < len(shape) and shape[dim] == t_len \
                    and int(k) not in (0, -1):
                return True
            dim += 1
    return False


def _sample_len(taken):
    """A prime sample length no static size of the model has (so a Reshape target equal to it can only
    be the symbolic length)."""
    for cand in (13, 17, 19, 23, 29, 31, 37, 41, 43, 47):
        if cand not in taken:
            return cand
    raise OnnxError("<model>", reason="no sample length free of the model's static sizes")


def export(model, path, opset=None) -> None:
    """Export a Keras-style model's inference program (``model.predict``; dropout off) to ``path``.

    The batch dimension is symbolic; so is any other ``None`` dimension of the model's inputs (a
    sequence length): recurrent layers become ONNX ``Scan`` nodes over it (LSTMs with the default
    activations, forward, one ``LSTM`` node), other ``gc.scan``/``while_loop``/``cond`` nodes
    ``Scan``/``Loop``/``If`` nodes. Layers with ``unroll=True`` need a fixed length.

        >>> from graphc.models import Sequential; from graphc.layers import Dense
        >>> import tempfile, os
        >>> m = Sequential([Dense(2, input_dim=3, activation="softmax")])
        >>> export(m, os.path.join(tempfile.mkdtemp(), "m.onnx"))
    """
    require_onnx()
    from . import emitters
    try:
        model_inputs = list(model.inputs)
    except (AttributeError, ValueError) as e:
        raise OnnxError(os.fspath(path), reason=f"the model has no input shape yet ({e}); give its first "
                        "layer input_shape=... or build it") from None
    taken = set()
    for lyr in getattr(model, "layers", []):
        for w in getattr(lyr, "weights", []):
            taken |= set(int(d) for d in w.shape)
    for t in model_inputs:
        taken |= {int(d) for d in t.shape if d is not None}
    t_len = _sample_len(taken)
    xs = []
    dyn = []   # (input index, axis)
    for k, t in enumerate(model_inputs):
        shape = []
        for i, d in enumerate(t.shape):
            if d is None and i == 0:
                shape.append(2)
            elif d is None:
                shape.append(t_len)
                dyn.append((k, i))
            else:
                shape.append(d)
        xs.append(np.zeros(shape, dtype=t.dtype))
    xs = model._x_list(xs if len(xs) > 1 else xs[0])
    prog = model._program_for("predict", xs, [])    # at the sample sizes: dyn_dims maps them back
    state = model._ensure_built()
    g = state.graph
    feeds = [t.node for t in prog.feeds]
    fetches = [t.node for t in prog.fetches]
    in_names = [getattr(t, "name", f"input_{k}").split(":")[0].replace("/", "_") or f"input_{k}"
                for k, t in enumerate(model_inputs)]
    in_names = [nm if nm not in in_names[:k] else f"{nm}_{k}" for k, nm in enumerate(in_names)]
    dyn_dims = {t_len: (in_names[k], ax) for k, ax in dyn[:1]}
    if len({ax for _, ax in dyn}) > 1 or len(dyn) > 1:
        raise OnnxError(os.fspath(path), reason="export supports one symbolic non-batch dimension "
                        f"(the model's inputs have {len(dyn)})")
    absorbed = emitters.absorb_lstm_layers(model, g, feeds, fetches, dict(state.session.state), path)
    ex = _Exporter(g, feeds, fetches, dict(state.session.state), os.fspath(path), dyn_dims, absorbed,
                   opset=opset or DEFAULT_OPSET)
    if dyn and _unrolled_over(g, feeds, fetches, absorbed, t_len):
        raise OnnxError(os.fspath(path), reason="cannot export with a variable sequence length: the "
                        "graph picks single steps of that axis (an unrolled loop, such as a recurrent "
                        "layer with unroll=True), which graphc writes out per length; use unroll=False "
                        "(a scan, exported as an ONNX Scan) or give the model a fixed length")
    out_names = [f"output_{k}" for k in range(len(fetches))] if len(fetches) > 1 else ["output"]
    vi_in, vi_out = ex.run(in_names, out_names)
    _save(_make_model(ex, vi_in, vi_out, ex.opset, getattr(model, "name", "graphc")), path)
