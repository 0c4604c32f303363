"""The op registry: every op is one ``OpDef`` record, registered once.

An ``OpDef`` holds everything every layer needs to know about an op:

* ``infer(specs, attrs) -> TensorSpec``: the shape/dtype rule. It raises
  ``ShapeError``/``DtypeError`` describing the problem; ``apply`` prefixes the
  op type, node name and the user's call site.
* ``reference(values, attrs) -> np.ndarray``: the numpy implementation used by
  the reference interpreter (the oracle) and by constant folding.
* ``grad(inputs, output, dy, attrs) -> [Tensor | None]``: the gradient rule,
  built from graph ops (``None`` for an input with no gradient).
* ``fusion``: how passes treat it: ``source`` (constant/placeholder/variable),
  ``elementwise``, ``reduction``, ``contraction`` (matmul/conv), ``layout``
  (transpose/reshape/slicing: moves data, no arithmetic), ``opaque``, ``state``
  (assign ops).
* ``scalar``: for elementwise ops, the scalar expression template the fusion
  code generator emits, over ``{0}``, ``{1}``... (e.g. ``"({0} + {1})"``).

    >>> from graphc.ops.registry import get_op
    >>> get_op("add").fusion, get_op("add").scalar
    ('elementwise', '({0} + {1})')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .. import dtypes as _dt
from ..errors import DtypeError, GraphcError, GraphError, ShapeError
from ..ir import Graph, Tensor, TensorSpec, get_default_graph

FUSION_CLASSES = ("source", "elementwise", "reduction", "contraction", "layout", "opaque", "state")


@dataclass(frozen=True)
class OpDef:
    """One op, defined once: shape/dtype rule, numpy reference, gradient, fusion class."""
    name: str
    infer: Callable[[Sequence[TensorSpec], dict], TensorSpec] | None
    reference: Callable[[Sequence[np.ndarray], dict], np.ndarray] | None
    fusion: str = "opaque"
    grad: Callable | None = None
    scalar: str | None = None
    differentiable: bool = True
    stateful: bool = False
    random: bool = False
    doc: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.fusion not in FUSION_CLASSES:
            raise ValueError(f"op {self.name}: unknown fusion class {self.fusion!r}")
        if self.fusion == "elementwise" and self.scalar is None:
            raise ValueError(f"elementwise op {self.name} needs a scalar template")


OPS: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    """Add ``opdef`` to the registry (each op name once)."""
    if opdef.name in OPS:
        raise ValueError(f"op {opdef.name!r} is already registered")
    OPS[opdef.name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise GraphError(f"unknown op type {name!r}; known ops: {', '.join(sorted(OPS))}") from None


def _graph_of(inputs: Sequence[Tensor]) -> Graph:
    graphs = {id(t.graph): t.graph for t in inputs}
    if len(graphs) > 1:
        raise GraphError("inputs come from different graphs: " +
                         ", ".join(f"{t.name} ({t.graph!r})" for t in inputs) +
                         "; build all tensors under one `with graph.as_default():`")
    return inputs[0].graph if inputs else get_default_graph()


def apply(op: str, inputs: Sequence[Tensor], attrs: dict | None = None,
          name: str | None = None, graph: Graph | None = None) -> Tensor:
    """Build one node of op type ``op`` over ``inputs``; returns its output tensor.

    Shape/dtype errors are raised here, at graph-build time, naming the op,
    the node name, the user's call site and the input specs.
    """
    opdef = get_op(op)
    attrs = dict(attrs or {})
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: input {i} is {type(t).__name__}, expected a Tensor "
                            "(internal: convert values with convert_to_tensor first)")
    g = graph if graph is not None else _graph_of(inputs)
    if inputs and graph is not None and inputs[0].graph is not graph:
        raise GraphError(f"{op}: inputs belong to another graph")
    specs = [t.spec for t in inputs]
    try:
        spec = opdef.infer(specs, attrs)
    except GraphcError as e:
        from ..ir import _user_call_site
        where = _user_call_site()
        shown = name or op
        desc = ", ".join(str(s) for s in specs)
        raise type(e)(f"{op} '{shown}' (at {where}) with inputs ({desc}): {e}") from None
    nid = g.add_node(op, [t.node for t in inputs], attrs, spec, name=name)
    return Tensor(g, nid)


# -- helpers shared by op families ---------------------------------------------------------------
def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """numpy broadcasting of static shapes; ``None`` is an unknown size."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x is None:
            out.append(y)
        elif y is None or x == y:
            out.append(x)
        else:
            raise ShapeError(f"shapes {_fmt(a)} and {_fmt(b)} cannot be broadcast "
                             f"(dimension {-i}: {x} vs {y}); reshape or expand_dims one of them")
    return tuple(reversed(out))


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def same_dtype(specs: Sequence[TensorSpec], what: str = "inputs") -> np.dtype:
    """The common dtype of ``specs``; a clear error if they differ (graphc never promotes silently)."""
    dts = {s.dtype for s in specs}
    if len(dts) > 1:
        raise DtypeError(f"{what} have different dtypes ({', '.join(s.dtype.name for s in specs)}); "
                         "graphc does not promote implicitly: use gc.cast(x, dtype)")
    return specs[0].dtype


def normalize_axis(axis, rank: int, what: str = "axis") -> tuple:
    """``axis`` (int, sequence or None) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(rank))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -rank <= a < rank:
            raise ShapeError(f"{what} {a} is out of range for a tensor of rank {rank}")
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ShapeError(f"{what} {axes} repeats an axis")
    return tuple(sorted(out))


def convert_to_tensor(value, dtype=None, name: str | None = None, graph: Graph | None = None) -> Tensor:
    """Return ``value`` as a Tensor: tensors pass through (dtype checked), values become constants.

        >>> import graphc as gc
        >>> gc.convert_to_tensor([1, 2]).dtype.name
        'int32'
    """
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != _dt.as_dtype(dtype):
            raise DtypeError(f"tensor {value.name!r} has dtype {value.dtype.name}, expected "
                             f"{_dt.as_dtype(dtype).name}; use gc.cast")
        return value
    if hasattr(value, "_as_tensor"):
        return value._as_tensor()
    arr = _dt.array_for_value(value, dtype)
    arr.flags.writeable = False
    return apply("constant", [], {"value": arr}, name=name or "Const", graph=graph)


def operands(*values, dtype=None) -> list[Tensor]:
    """Convert operands of an op that needs one common dtype, TensorFlow-style.

    Python scalars and lists adopt the dtype of the tensor operands (``x * 2``
    with float32 ``x`` makes a float32 constant); a Python float next to an
    integer tensor is an error rather than a silent truncation.
    """
    tensors = [v for v in values if isinstance(v, Tensor) or hasattr(v, "_as_tensor")]
    tensors = [convert_to_tensor(v) for v in tensors]
    graph = tensors[0].graph if tensors else None
    if dtype is None and tensors:
        dtype = tensors[0].dtype
    out = []
    for v in values:
        if isinstance(v, Tensor) or hasattr(v, "_as_tensor"):
            out.append(convert_to_tensor(v))
            continue
        if dtype is not None and not isinstance(v, np.ndarray):
            arr = np.asarray(v)
            if arr.dtype.kind == "f" and np.dtype(dtype).kind in "iub" and not np.all(arr == np.round(arr)):
                raise DtypeError(f"cannot use the float value {v!r} with a {np.dtype(dtype).name} "
                                 "tensor; cast the tensor to a float dtype first")
            out.append(convert_to_tensor(arr.astype(dtype), graph=graph))
        else:
            out.append(convert_to_tensor(v, graph=graph))
    return out


def static_numel(shape: tuple) -> int | None:
    n = 1
    for d in shape:
        if d is None:
            return None
        n *= d
    return n
