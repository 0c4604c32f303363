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
* traits (what passes and the runtime ask about an op, instead of keeping
  lists of op names): ``commutative``, ``view``, ``state_update``, ``reduce``,
  ``epilogue``, ``external``, ``reads_shape_only``, ``stateful``, ``random``,
  ``differentiable`` and ``composite``; see ``OpDef``.

    >>> from graphc.ops.registry import get_op
    >>> get_op("add").fusion, get_op("add").scalar, get_op("add").commutative
    ('elementwise', '({0} + {1})', True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .. import dtypes as _dt
from ..errors import DtypeError, GraphcError, GraphError, ShapeError
from ..ir import Graph, Tensor, TensorSpec, _user_call_site, get_default_graph

FUSION_CLASSES = ("source", "elementwise", "reduction", "contraction", "layout", "opaque", "state")


@dataclass(frozen=True)
class OpDef:
    """One op, defined once: shape/dtype rule, numpy reference, gradient, fusion class, traits.

    Traits (all default to "no"; passes and the runtime read them with ``get_op(op).<trait>``,
    a dict lookup, so no module keeps a list of op names):

    * ``differentiable``: ``False`` for ops without a gradient (autodiff skips them silently).
    * ``stateful``: reads or writes session state (variable, assign ops, group), or talks to
      other processes (``allreduce``): never folded, merged or moved by passes.
    * ``random``: draws random numbers; its reference takes a third argument, the run key.
    * ``commutative``: a two-input op whose value does not change when the inputs are swapped
      (``add``, ``mul``, ``maximum``, ``equal``...): CSE sorts its inputs. Bit for bit except
      the sign of a zero that ``maximum``/``minimum`` pick between ``+0.0`` and ``-0.0`` (equal
      values: the caveat of simplify's ``add_zero``).
    * ``view``: the numpy reference returns input 0's elements in the same row-major order, as
      a view of input 0 when that input is C-contiguous (``reshape``, ``expand_dims``,
      ``squeeze``, ``reshape_like``): a chain of them is one reshape, and a runtime may bind
      the result as a view of its input.
    * ``state_update``: for assign ops, how the new value combines the variable's current
      value and input 1: ``"assign"`` (the value itself), ``"add"``, ``"sub"`` (the name of
      the elementwise op computing ``op(current, value)``). ``graphc.ops.state.update_value``
      computes it; every runtime uses that one function.
    * ``reduce``: a plain reduction (``reduce_sum``... over ``axis``/``keepdims``) that
      ``fuse_reduction`` may take as a ``fused_reduction``'s final op.
    * ``epilogue``: a contraction that ``fuse_epilogue`` may give an elementwise epilogue as a
      ``fused_contraction`` (``matmul``, ``conv2d``); other contractions (the conv
      gradients) have no fused form.
    * ``external``: the value comes from outside the graph at run time, a feed or the
      session's state (``placeholder``, ``variable``): never folded or merged, and already
      what a fed node becomes. ``constant`` is a ``source`` too, but its value is known.
    * ``reads_shape_only``: the value is a function of input 0's shape alone, never of its
      elements (``shape``, ``size``): known as soon as that shape is.
    * ``scalar_f32``: a float32 form of the ``scalar`` template for generated kernels with fast
      math on, over the runtime's vectorizable helpers (``_vexp``, ``_vsigmoid``...): sigmoid
      as one exp instead of the stable form's three.
    * ``composite(inputs, attrs) -> Tensor``: the op written with other graph ops; for an op
      without a ``grad`` rule, autodiff differentiates this form instead (``lstm_cell_grad``).

        >>> op = get_op("assign_add")
        >>> op.fusion, op.state_update, op.stateful, get_op("squeeze").view
        ('state', 'add', True, True)
    """
    name: str
    infer: Callable[[Sequence[TensorSpec], dict], TensorSpec] | None
    reference: Callable[[Sequence[np.ndarray], dict], np.ndarray] | None
    fusion: str = "opaque"
    grad: Callable | None = None
    scalar: str | None = None
    scalar_f32: str | None = None
    differentiable: bool = True
    stateful: bool = False
    random: bool = False
    commutative: bool = False
    view: bool = False
    state_update: str | None = None
    reduce: bool = False
    epilogue: bool = False
    external: bool = False
    reads_shape_only: bool = False
    composite: Callable | None = None
    doc: str = ""

    def __post_init__(self):
        if self.fusion not in FUSION_CLASSES:
            raise ValueError(f"op {self.name}: unknown fusion class {self.fusion!r}")
        if self.fusion == "elementwise" and self.scalar is None:
            raise ValueError(f"elementwise op {self.name} needs a scalar template")
        if self.state_update is not None and (self.state_update not in ("assign", "add", "sub")
                                              or self.fusion != "state"):
            raise ValueError(f"op {self.name}: state_update {self.state_update!r} needs fusion "
                             "'state' and one of assign, add, sub")
        if self.commutative and self.fusion != "elementwise":
            raise ValueError(f"op {self.name}: only elementwise ops are marked commutative")
        if self.reduce and self.fusion != "reduction" or self.epilogue and self.fusion != "contraction":
            raise ValueError(f"op {self.name}: reduce needs fusion 'reduction', epilogue 'contraction'")


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
    default = get_default_graph()
    if inputs and getattr(default, "capture", None) is not None:
        return default      # a loop body or branch being traced: outer tensors are captured
    graphs = {id(t.graph): t.graph for t in inputs}
    inner = [t for t in inputs if getattr(t.graph, "capture", None) is not None]
    if len(graphs) > 1 and inner:
        raise GraphError(f"tensor {inner[0].name!r} belongs to the body of {inner[0].graph.label!r} "
                         f"and is used outside it (at {_user_call_site()}): a value made in a loop "
                         "body or branch is seen outside only through the loop's results, and "
                         "session state (variables, assign ops) cannot change inside one; update "
                         "it after the loop")
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
    if any(t.graph is not g for t in inputs) and getattr(g, "capture", None) is not None:
        inputs = [g.capture(t) for t in inputs]     # outer tensors become the body's inputs
    if inputs and graph is not None and inputs[0].graph is not graph:
        raise GraphError(f"{op}: inputs belong to another graph")
    specs = [t.spec for t in inputs]
    try:
        spec = opdef.infer(specs, attrs)
    except GraphcError as e:
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


def one_axis(axis, x: Tensor, who: str) -> int:
    """``axis`` (a Python int, negative from the end) of ``x`` as a non-negative int; errors
    name ``who`` (e.g. ``"split 'split'"``), the input's shape and the valid range."""
    if isinstance(axis, Tensor) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{who}: axis must be a Python int, got {axis!r}")
    if x.ndim == 0:
        raise ShapeError(f"{who}: the input is a scalar; it needs rank >= 1 (reshape it to (1,) first)")
    try:
        return normalize_axis(int(axis), x.ndim)[0]
    except ShapeError as e:
        raise ShapeError(f"{who}: {e} (input shape {_fmt(x.shape)}); valid axes are "
                         f"{-x.ndim}..{x.ndim - 1}") from None


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

