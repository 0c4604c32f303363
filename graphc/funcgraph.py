"""Sub-graphs of control flow ops: ``FuncGraph`` (a body traced from a Python function, capturing
the outer tensors it reads) and ``Body`` (what a ``scan``/``while_loop``/``cond`` node keeps in its
attrs: the graph, its input placeholders and its results).

A body is an ordinary ``Graph``: every pass, the interpreter and the runtime work on it as on any
graph. Its inputs are placeholders: the loop variables (or a branch's nothing), then one per
*captured* outer tensor, in capture order. A tensor of an enclosing graph used inside the traced
function becomes such a placeholder (``FuncGraph.capture``), and the control flow node takes the
outer tensor as an input, so gradients flow to it as to any input. Constants are copied into the
body instead (passes can then fold them).

    >>> import graphc as gc
    >>> with gc.Graph().as_default():
    ...     w = gc.constant(np.float32(3.0)); x = gc.placeholder("float32", (), name="x")
    ...     f32 = gc.TensorSpec((), np.dtype("float32"))
    ...     body, captured, _ = trace(lambda a: a * w + x, [f32], "f")
    ...     (body,), captured = with_captures([(body, captured)])     # arguments, then captures
    >>> [body.graph.name(n) for n in body.inputs], [t.name for t in captured]
    (['f/arg0', 'f/capture/x'], ['x'])
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import GraphError, ShapeError
from .ir import Graph, Tensor, TensorSpec, TupleSpec, get_default_graph


class FuncGraph(Graph):
    """The graph of a body being traced inside ``outer``; ``capture`` turns outer tensors into inputs."""

    def __init__(self, outer: Graph, label: str):
        super().__init__()
        self.outer = outer
        self.label = label
        self.seed = outer.seed
        self.captures: dict[int, int] = {}      # outer node id -> the body node standing for it
        self.captured: list[Tensor] = []        # the outer tensors fed to placeholders, in order

    def capture(self, t: Tensor) -> Tensor:
        """``t`` as a tensor of this graph: itself, a copy of a constant, or a new input placeholder."""
        if t.graph is self:
            return t
        if t.graph is not self.outer:
            if not isinstance(self.outer, FuncGraph):
                raise GraphError(f"{self.label}: tensor {t.name!r} belongs to a graph that does not "
                                 "enclose this body; build it in the graph the loop is built in")
            t = self.outer.capture(t)
        n = self.captures.get(t.node)
        if n is None:
            g = t.graph
            if g.op(t.node) == "constant":
                n = self.add_node("constant", [], dict(g.attrs(t.node)), t.spec, name=g.name(t.node))
            else:
                n = self.add_node("placeholder", [], {"shape": tuple(t.shape), "dtype": t.dtype},
                                  t.spec, name="capture/" + g.name(t.node))
                self.captured.append(t)
            self.captures[t.node] = n
        return Tensor(self, n)

    def input_for(self, t: Tensor) -> int:
        """The placeholder of captured outer tensor ``t`` (made now if the body does not read it)."""
        return self.capture(t).node


@dataclass(eq=False, frozen=True)
class Body:
    """A control flow op's sub-graph: ``graph``, its input placeholders ``inputs`` (arguments, then
    captures) and its ``outputs``. Shared, never changed in place: passes make new ones."""
    graph: Graph
    inputs: tuple
    outputs: tuple
    label: str = "body"

    @property
    def in_specs(self) -> list:
        return [self.graph.spec(n) for n in self.inputs]

    @property
    def out_specs(self) -> list:
        return [self.graph.spec(n) for n in self.outputs]

    @functools.cached_property
    def order(self) -> list[int]:
        """The nodes the results need, in topological order (inputs included)."""
        return self.graph.topo_order(self.outputs, stop=self.inputs)

    def used(self) -> list[bool]:
        """Which inputs the outputs depend on (an unused input is not fed)."""
        need = self.graph.ancestors(self.outputs, stop=self.inputs)
        return [n in need for n in self.inputs]

    def evaluate(self, values: Sequence[np.ndarray]) -> list:
        """The outputs for input ``values``, by the reference interpreter."""
        from .interpreter import evaluate
        feeds = {n: v for n, v in zip(self.inputs, values) if n in self.graph}
        return evaluate(self.graph, list(self.outputs), feeds).values

    def out_shapes(self, in_shapes: Sequence[tuple]) -> list[tuple]:
        """The outputs' concrete shapes for concrete input shapes, from the shape rules alone (a
        loop of zero steps still knows the shape of what it would have stacked)."""
        from .ops.registry import get_op
        shapes = {n: tuple(s) for n, s in zip(self.inputs, in_shapes)}
        for n in self.order:
            if n in shapes:
                continue
            ins = self.graph.inputs(n)
            spec = get_op(self.graph.op(n)).infer(
                [_with_shape(self.graph.spec(i), shapes[i]) for i in ins], self.graph.attrs(n))
            shapes[n] = spec if isinstance(spec, TupleSpec) else tuple(spec.shape)
        out = [shapes[n] for n in self.outputs]
        if any(not isinstance(s, tuple) or None in s for s in out):
            raise ShapeError(f"{self.label}: the results' shapes {out} are not known from the input "
                             f"shapes {list(in_shapes)} alone")
        return out

    def __repr__(self) -> str:
        return (f"<Body {self.label}: {self.graph.num_nodes()} nodes, "
                f"({', '.join(str(s) for s in self.in_specs)}) -> "
                f"({', '.join(str(s) for s in self.out_specs)})>")


def _with_shape(spec, shape):
    if isinstance(spec, TupleSpec) or isinstance(shape, TupleSpec):
        return shape if isinstance(shape, TupleSpec) else spec
    return TensorSpec(tuple(shape), spec.dtype)


def bodies(attrs: dict) -> list[tuple[str, Body]]:
    """The ``(attr name, Body)`` pairs of a node's attrs (a control flow node's sub-graphs)."""
    return [(k, v) for k, v in attrs.items() if isinstance(v, Body)]


def walk(graph: Graph):
    """Every ``(graph, node)`` of ``graph`` and, depth first, of the bodies of its control flow nodes.

        >>> import graphc as gc
        >>> g = gc.Graph()
        >>> with g.as_default():
        ...     y = gc.map_fn(lambda r: gc.tanh(r), gc.ones((2, 3)))
        >>> "tanh" in {gr.op(n) for gr, n in walk(g)}
        True
    """
    for n in graph.nodes():
        yield graph, n
        for _, b in bodies(graph.attrs(n)):
            yield from walk(b.graph)


# -- nested structures of tensors (a loop's variables may be a list, tuple or dict of them) --------
def flatten(value) -> tuple[list, object]:
    """``value``'s leaves (anything not a list, tuple or dict) and its structure, for ``unflatten``."""
    if isinstance(value, (list, tuple)):
        parts = [flatten(v) for v in value]
        return [x for leaves, _ in parts for x in leaves], (type(value), [s for _, s in parts])
    if isinstance(value, dict):
        keys = sorted(value)
        parts = [flatten(value[k]) for k in keys]
        return [x for leaves, _ in parts for x in leaves], (dict, keys, [s for _, s in parts])
    return [value], None


def unflatten(structure, leaves: Sequence):
    """The inverse of ``flatten``."""
    it = iter(leaves)

    def build(s):
        if s is None:
            return next(it)
        if s[0] is dict:
            return {k: build(sub) for k, sub in zip(s[1], s[2])}
        return s[0](build(sub) for sub in s[1])
    return build(structure)


# -- tracing ----------------------------------------------------------------------------------------
def trace(fn: Callable, arg_specs: Sequence[TensorSpec], label: str, arg_names: Sequence[str] = (),
          structure=None, graph: FuncGraph | None = None) -> tuple[Body, list[Tensor], object]:
    """Call ``fn`` on placeholders of ``arg_specs`` inside a new ``FuncGraph`` (or ``graph``);
    returns the body, the outer tensors it captured, and the structure of what ``fn`` returned.
    With ``structure`` the placeholders are passed to ``fn`` in that structure."""
    from .ops.registry import convert_to_tensor
    fg = graph if graph is not None else FuncGraph(get_default_graph(), label)
    with fg.as_default(), fg.name_scope(label):
        args = [Tensor(fg, fg.add_node("placeholder", [], {"shape": tuple(s.shape), "dtype": s.dtype},
                                       s, name=(list(arg_names)[i] if i < len(arg_names) else f"arg{i}")))
                for i, s in enumerate(arg_specs)]
        result = fn(*([unflatten(structure, args)] if structure is not None else args))
        leaves, out_structure = flatten(result)
        outs = []
        for i, v in enumerate(leaves):
            if v is None:
                raise GraphError(f"{label}: result {i} is None; a body must return tensors")
            t = convert_to_tensor(v)
            outs.append(fg.capture(t) if t.graph is not fg else t)
    _check_pure(fg, label)
    return Body(fg, tuple(a.node for a in args), tuple(t.node for t in outs), label), fg.captured, \
        out_structure


def _check_pure(fg: Graph, label: str) -> None:
    from .ops.registry import get_op
    for n in fg.nodes():
        d = get_op(fg.op(n))
        if d.stateful or d.random:
            what = "draws random numbers" if d.random else "reads or changes session state"
            raise GraphError(f"{label}: op {fg.op(n)} '{fg.name(n)}' (at {fg.trace(n)}) {what}, which "
                             "a loop body or branch cannot do in graphc; compute it outside the loop "
                             "and use the result inside (e.g. draw a dropout mask for all steps first)")


def with_captures(bodies: list[tuple[Body, list[Tensor]]]) -> tuple[list[Body], list[Tensor]]:
    """Several bodies of one op (a while's cond and body, a cond's branches) over one shared list of
    captured tensors: each body gets an input for every capture, in one order."""
    order: dict[int, Tensor] = {}
    for _, caps in bodies:
        for t in caps:
            order.setdefault(t.node, t)
    captured = list(order.values())
    out = []
    for body, _ in bodies:
        fg = body.graph         # ``trace`` made it: its inputs are the arguments only, so far
        caps = tuple(fg.input_for(t) for t in captured)
        out.append(Body(fg, tuple(body.inputs) + caps, body.outputs, body.label))
    return out, captured


def inline(body: Body, inputs: Sequence[Tensor], graph: Graph | None = None) -> tuple[list[Tensor], dict]:
    """Copy ``body``'s computation into ``graph`` (default: the default graph) over ``inputs``;
    returns its outputs there and the map from body node ids to the new nodes."""
    from .ops.registry import apply
    g = graph if graph is not None else get_default_graph()
    if len(inputs) != len(body.inputs):
        raise GraphError(f"inline {body.label}: {len(inputs)} inputs for {len(body.inputs)}")
    mapped: dict[int, Tensor] = dict(zip(body.inputs, inputs))
    bg = body.graph
    with g.as_default():
        for n in bg.topo_order(body.outputs, stop=body.inputs):
            if n in mapped:
                continue
            op = bg.op(n)
            if op == "placeholder":
                raise GraphError(f"inline {body.label}: placeholder '{bg.name(n)}' is not an input")
            base = bg.name(n).rsplit("/", 1)[-1]
            mapped[n] = apply(op, [mapped[i] for i in bg.inputs(n)], dict(bg.attrs(n)), name=base)
    return [mapped[n] for n in body.outputs], mapped
