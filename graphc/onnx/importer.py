"""ONNX -> graphc: load a model file safely and build a graphc graph from its nodes.

Loading only parses protobuf messages (``onnx.load`` with external data off) and reads external
tensor data from files inside the model's folder: nothing in a model is executed. Each ONNX op
has one converter in ``converters.CONVERTERS`` that builds graphc ops (or a composition of them).

    >>> import numpy as np, onnx
    >>> from onnx import helper, TensorProto
    >>> n = helper.make_node("Relu", ["x"], ["y"])
    >>> g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
    ...                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    >>> b = build(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "m.onnx")
    >>> b.inputs["x"].shape, b.outputs["y"].shape
    ((2,), (2,))
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import OnnxError, UnsupportedError, require_onnx

#: the opsets of the default domain the converters follow (older ones changed attributes to inputs)
MIN_OPSET, MAX_OPSET = 7, 27
#: ONNX element types graphc computes with
DTYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64), 6: np.dtype(np.int32),
          7: np.dtype(np.int64), 9: np.dtype(np.bool_)}


def dtype_of(elem_type: int, path="", node=None, op=None) -> np.dtype:
    """The numpy dtype of ONNX element type ``elem_type``, or UnsupportedError (kind ``dtype``)."""
    if elem_type in DTYPES:
        return DTYPES[elem_type]
    onnx = require_onnx()
    try:
        name = onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        name = str(elem_type)
    raise UnsupportedError(path, node, op, f"dtype {name} is not supported (graphc computes with "
                           "float32, float64, int32, int64, bool)", kind="dtype")


# -- loading ---------------------------------------------------------------------------------------------
def _check_external(model, path: str) -> None:
    """External tensor data must be files inside the model's folder; load them, or a clear error."""
    onnx = require_onnx()
    from onnx.external_data_helper import _get_all_tensors, uses_external_data
    base = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    ext = [t for t in _get_all_tensors(model) if uses_external_data(t)]
    for t in ext:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        full = os.path.realpath(os.path.join(base, loc))
        if not loc or os.path.isabs(loc) or os.path.commonpath([base, full]) != base:
            raise OnnxError(path, None, None, f"initializer {t.name!r}: external data path {loc!r} leaves "
                            f"the model's folder {base}; only files inside it are read")
        if not os.path.isfile(full):
            raise OnnxError(path, None, None, f"initializer {t.name!r}: external data file {loc!r} not found "
                            f"(looked for {full})")
    if ext:
        try:
            onnx.external_data_helper.load_external_data_for_model(model, base)
        except Exception as e:  # a short file, bad offsets...
            raise OnnxError(path, None, None, f"reading external data failed: {type(e).__name__}: {e}") from None


def load(path) -> "object":
    """Parse ``path`` (an ONNX file) into a ModelProto: a clear OnnxError for anything malformed.

    External data files are read only from inside the model's folder.
    """
    onnx = require_onnx()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OnnxError(path, reason="file not found")
    try:
        with open(path, "rb") as f:
            data = f.read()
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as e:
        raise OnnxError(path, reason=f"not a valid ONNX model (truncated or malformed protobuf: "
                        f"{type(e).__name__}: {e})") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise OnnxError(path, reason="not a valid ONNX model (no graph; truncated or not an .onnx file?)")
    _check_external(model, path)
    return model


# -- building -----------------------------------------------------------------------------------------------
@dataclass
class Built:
    """A graphc graph built from an ONNX model: input placeholders and output tensors by ONNX name."""
    graph: object
    inputs: dict
    outputs: dict
    input_info: list    # [(name, shape with None for symbolic dims, dtype)]
    output_info: list
    baked: tuple = ()   # inputs built in as constants (``input_values``): not fed


def value_info(vi, path):
    """(name, shape or None, dtype) of a ValueInfoProto; shape entries None where symbolic."""
    t = vi.type
    if t.WhichOneof("value") != "tensor_type":
        raise UnsupportedError(path, None, None, f"graph input/output {vi.name!r} is a "
                               f"{t.WhichOneof('value')}, not a tensor; only tensors are supported",
                               kind="dtype")
    dt = dtype_of(t.tensor_type.elem_type, path, None, None)
    if not t.tensor_type.HasField("shape"):
        return vi.name, None, dt
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim)
    return vi.name, shape, dt


def opset_of(model, path) -> int:
    version = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            version = imp.version
    if version is None:
        domains = sorted({imp.domain for imp in model.opset_import})
        raise UnsupportedError(path, None, None, f"the model imports only the domains {domains}, which are "
                               "not supported (graphc reads ops of the default ONNX domain)", kind="opset")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise UnsupportedError(path, None, None, f"opset {version} is not supported (graphc reads "
                               f"opsets {MIN_OPSET}..{MAX_OPSET} of the default domain)", kind="opset")
    return version


class Context:
    """What a converter sees: the node, its attributes, the opset, and helpers for constants."""

    def __init__(self, graph, path, opset):
        self.graph, self.path, self.opset = graph, path, opset
        self.node, self.label = None, None
        self.input_of = {}   # placeholder node -> ONNX input name
        self.attrs = {}
        self.env = {}        # ONNX value name -> Tensor, as far as converted (a body reads the outer scope)
        self._consts: dict = {}

    # errors ---------------------------------------------------------------------------------------
    def unsupported(self, reason, kind="attribute"):
        return UnsupportedError(self.path, self.label, self.node.op_type, reason, kind=kind)

    def error(self, reason):
        return OnnxError(self.path, self.label, self.node.op_type, reason)

    # attributes -------------------------------------------------------------------------------------
    def attr(self, name, default=None):
        return self.attrs.get(name, default)

    # constants --------------------------------------------------------------------------------------
    def value(self, t, what="input"):
        """The numpy value of tensor ``t`` if it depends on no graph input, else UnsupportedError.
        In a control flow body, a captured outer value is known if the outer tensor is; a value
        computed from the body's arguments is not."""
        from ..interpreter import evaluate
        g = t.graph
        if t.node in self._consts:
            return self._consts[t.node]
        if g.op(t.node) == "constant":
            v = g.attrs(t.node)["value"]
        else:
            anc = g.ancestors([t.node]) | {t.node}
            fed = sorted(self.input_of[n] for n in anc if n in self.input_of)
            if fed:
                e = self.unsupported(f"{what} must be known when the model is built (a constant or "
                                     "computed from static shapes); values computed from the inputs "
                                     f"{fed} are not supported", kind="dynamic")
                e.inputs = fed   # InferenceSession may build the graph for these inputs' values
                raise e
            feeds = {}
            outer = {c: o for o, c in getattr(g, "captures", {}).items()}
            for n in anc:
                if g.op(n) == "placeholder":
                    src = next((o for o in getattr(g, "captured", []) if o.node == outer.get(n)), None)
                    if src is None:
                        raise self.unsupported(f"{what} computed from a control flow body's inputs (such "
                                               "as a Loop's iteration number) is not supported: graphc "
                                               "must know it when the model is built", kind="dynamic")
                    feeds[n] = self.value(src, what)
            v = evaluate(g, [t.node], feeds).values[0]
        self._consts[t.node] = v
        return v

    def constant(self, value, dtype=None):
        from ..ops.state import constant
        arr = np.asarray(value, dtype=dtype)
        return constant(arr, dtype=arr.dtype)


def _attrs(node, path):
    onnx = require_onnx()
    from onnx import helper
    out = {}
    for a in node.attribute:
        if a.ref_attr_name:
            raise UnsupportedError(path, node.name, node.op_type, f"attribute {a.name!r} refers to a function "
                                   "attribute; model-local functions are not supported", kind="attribute")
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = tensor_value(a.t, path, node)
        elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            out[a.name] = a   # control flow: the converter (if any) decides
        else:
            v = helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif isinstance(v, list) and v and isinstance(v[0], bytes):
                v = [x.decode("utf-8", "replace") for x in v]
            out[a.name] = v
    return out


def tensor_value(t, path, node=None):
    """A TensorProto's value as a numpy array of a supported dtype (UnsupportedError otherwise)."""
    from onnx import numpy_helper
    dt = dtype_of(t.data_type, path, node.name if node is not None else None,
                  node.op_type if node is not None else None)
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:
        raise OnnxError(path, node.name if node is not None else None,
                        node.op_type if node is not None else None,
                        f"tensor {t.name!r} cannot be read: {type(e).__name__}: {e}") from None
    return np.ascontiguousarray(arr, dtype=dt).reshape(arr.shape)   # (a scalar stays 0-D)


def build(model, path="<model>", input_shapes: dict | None = None, input_values: dict | None = None) -> Built:
    """Build a graphc graph from ModelProto ``model``; ``input_shapes`` fixes symbolic dimensions,
    ``input_values`` makes inputs constants (for inputs a graph needs to know when it is built,
    such as Reshape's shape or Slice's starts fed as graph inputs).

    Raises UnsupportedError naming the node and op for anything graphc cannot express.
    """
    from .. import ir
    from ..ops.state import constant, placeholder
    opset = opset_of(model, path)
    if len(model.functions):
        onnx = require_onnx()
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:
            raise UnsupportedError(path, None, None, f"model-local functions could not be inlined: {e}") from None
    graph = model.graph
    g = ir.Graph()
    env: dict = {}
    inputs, input_info, output_info = {}, [], []
    with g.as_default():
        init_names = set()
        for t in graph.initializer:
            env[t.name] = constant(tensor_value(t, path), name=_safe(t.name))
            init_names.add(t.name)
        for t in graph.sparse_initializer:
            raise UnsupportedError(path, None, None, f"sparse initializer {t.values.name!r} is not supported",
                                   kind="dtype")
        for vi in graph.input:
            if vi.name in init_names:
                continue
            name, shape, dt = value_info(vi, path)
            if input_shapes and name in input_shapes:
                shape = tuple(input_shapes[name])
            elif shape is None:
                raise UnsupportedError(path, None, None, f"input {name!r} has no shape; graphc needs the rank "
                                       "of every input", kind="dynamic")
            if input_values and name in input_values:
                ph = constant(np.asarray(input_values[name], dtype=dt), name=_safe(name))
            else:
                ph = placeholder(dt, shape, name=_safe(name))
            env[name] = ph
            inputs[name] = ph
            input_info.append((name, shape, dt))
        cx = Context(g, path, opset)
        cx.input_of = {t.node: name for name, t in inputs.items() if name not in (input_values or {})}
        convert_nodes(cx, graph.node, env)
        outputs = {}
        for vi in graph.output:
            if vi.name not in env:
                raise OnnxError(path, None, None, f"graph output {vi.name!r} is not produced by any node")
            name, shape, dt = value_info(vi, path)
            t = env[vi.name]
            if t.dtype != dt:
                raise OnnxError(path, None, None, f"graph output {name!r} is declared {dt.name} but its node "
                                f"produces {t.dtype.name}")
            outputs[name] = t
            output_info.append((name, t.shape if shape is None else shape, dt))
    return Built(g, inputs, outputs, input_info, output_info, tuple(input_values or ()))


def convert_nodes(cx: Context, nodes, env: dict) -> None:
    """Convert ONNX ``nodes`` (in order) into graphc ops in ``cx.graph``, reading and extending
    ``env`` (ONNX value name -> graphc Tensor); also used for the bodies of Scan, Loop and If."""
    from .converters import CONVERTERS
    g, path = cx.graph, cx.path
    for k, node in enumerate(nodes):
        domain = node.domain or ""
        label = node.name or next((o for o in node.output if o), f"#{k}")
        if domain not in ("", "ai.onnx"):
            raise UnsupportedError(path, label, node.op_type, f"op {domain}.{node.op_type} is not supported "
                                   "(graphc reads the default ONNX domain only)", kind="op")
        conv = CONVERTERS.get(node.op_type)
        if conv is None:
            raise UnsupportedError(path, label, node.op_type, f"op {node.op_type} is not supported; "
                                   f"supported ops: {', '.join(sorted(CONVERTERS))}", kind="op")
        ins = []
        for nm in node.input:
            if nm == "":
                ins.append(None)
            elif nm in env:
                ins.append(env[nm])
            else:
                raise OnnxError(path, label, node.op_type, f"input {nm!r} is not produced by any earlier "
                                "node, initializer or graph input (nodes must be in topological order)")
        cx.node, cx.label, cx.attrs, cx.env = node, label, _attrs(node, path), env
        try:
            with g.name_scope(_safe(label)):
                outs = conv(cx, ins)
        except OnnxError:
            raise
        except Exception as e:  # graphc's own shape/dtype checks: name the ONNX node too
            from ..errors import GraphcError
            if isinstance(e, (GraphcError, ValueError, TypeError)):
                raise UnsupportedError(path, label, node.op_type, f"not supported: graphc cannot build "
                                       f"it: {type(e).__name__}: {e}", kind="build") from e
            raise
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        for i, nm in enumerate(node.output):
            if nm == "":
                continue
            if i >= len(outs) or outs[i] is None:
                raise cx.unsupported(f"output {i} ({nm!r}) is not supported")
            env[nm] = outs[i]


def _safe(name: str) -> str:
    """A graphc node name from an ONNX name ('/' starts scopes in graphc)."""
    s = "".join(c if c.isalnum() or c in "_.-" else "_" for c in name)
    return s or "v"
