"""Reverse-mode automatic differentiation on the graph (``gc.gradients``).

Gradient rules live in each op's record (``OpDef.grad``); this module only
walks the graph backwards, accumulates fan-out and respects ``stop_gradient``.
An op with no rule but a ``composite`` form (``lstm_cell_grad``) is
differentiated through that form, so no op record imports this module.
The gradient is itself a graph, so passes and the compiler see the whole step.

    >>> import graphc as gc
    >>> x = gc.constant(3.0); y = x * x
    >>> gc.Session().run(gc.gradients(y, x))[0].item()
    6.0
"""
from __future__ import annotations

from typing import Sequence

from .errors import GraphError
from .ir import Tensor, TupleSpec
from .ops.indexing import accumulate_slice_grads
from .ops.registry import apply, convert_to_tensor, get_op


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def gradients(ys, xs, grad_ys=None, stop_gradients: Sequence[Tensor] = (),
              unconnected_gradients: str = "none", name: str = "gradients"):
    """d(sum of ``ys``)/d``xs`` as graph tensors, like ``tf.gradients``.

    ``grad_ys`` weights each y (default: ones). An x that no y depends on
    through differentiable float ops gets ``None`` (or zeros with
    ``unconnected_gradients="zero"``). Integer tensors get no gradient.
    """
    from . import ops
    ys = [convert_to_tensor(y) for y in _as_list(ys)]
    xs = [convert_to_tensor(x) if not isinstance(x, Tensor) else x for x in _as_list(xs)]
    if not ys:
        return [None] * len(xs)
    graph = ys[0].graph
    for t in ys + xs:
        if t.graph is not graph:
            raise GraphError(f"gradients: {t.name} belongs to another graph than {ys[0].name}")
    grad_ys = _as_list(grad_ys) if grad_ys is not None else [None] * len(ys)
    if len(grad_ys) != len(ys):
        raise ValueError(f"gradients: {len(ys)} ys but {len(grad_ys)} grad_ys")
    stops = {t.node for t in stop_gradients}
    # nodes on a path x -> y: forward-reachable from xs and backward-reachable from ys
    bwd = graph.ancestors([y.node for y in ys])
    between = graph.descendants([x.node for x in xs], stop=stops) & bwd
    partials: dict[int, list[Tensor]] = {}

    with graph.as_default(), graph.name_scope(name):
        for y, gy in zip(ys, grad_ys):
            if y.node not in between or y.dtype.kind != "f":
                continue
            seed = ops.ones_like(y) if gy is None else convert_to_tensor(gy, dtype=y.dtype)
            partials.setdefault(y.node, []).append(seed)
        order = [n for n in graph.topo_order(bwd) if n in between]
        for n in reversed(order):
            if n not in partials or n in stops:
                continue
            spec = graph.spec(n)
            if isinstance(spec, TupleSpec):     # a control flow op: one gradient (or None) per result
                dy = [_accumulate(partials[n][k]) if k in partials[n] else None
                      for k in range(len(spec.parts))]
            else:
                dy = _accumulate(partials[n])
                partials[n] = [dy]
                if spec.dtype.kind != "f":
                    continue
            opdef = get_op(graph.op(n))
            ins = graph.inputs(n)
            if not any(i in between for i in ins):
                continue
            in_tensors = [Tensor(graph, i) for i in ins]
            if opdef.grad is not None:
                in_grads = opdef.grad(in_tensors, Tensor(graph, n), dy, graph.attrs(n))
            elif opdef.composite is not None:
                in_grads = _composite_grads(opdef, in_tensors, dy, graph.attrs(n))
            elif opdef.differentiable:
                raise GraphError(f"gradients: op {graph.op(n)} '{graph.name(n)}' has no gradient rule")
            else:
                continue
            if len(in_grads) != len(ins):
                raise GraphError(f"gradient rule of {graph.op(n)} returned {len(in_grads)} entries "
                                 f"for {len(ins)} inputs")
            for i, (src, gi) in enumerate(zip(ins, in_grads)):
                if gi is None or src not in between:
                    continue
                want = graph.spec(src)
                if isinstance(want, TupleSpec):     # tuple_get's rule gives (result index, gradient)
                    k, gi = gi
                    if want.parts[k].dtype.kind == "f":
                        gi = convert_to_tensor(gi)
                        _check_grad_spec(graph, n, i, src, gi, want.parts[k])
                        partials.setdefault(src, {}).setdefault(k, []).append(gi)
                    continue
                if want.dtype.kind != "f":
                    continue
                gi = convert_to_tensor(gi)
                _check_grad_spec(graph, n, i, src, gi, want)
                partials.setdefault(src, []).append(gi)
        out = []
        for x in xs:
            if x.node in partials and x.dtype.kind == "f":
                out.append(_accumulate(partials[x.node]))
            elif unconnected_gradients == "zero" and x.dtype.kind == "f":
                out.append(ops.zeros_like(x))
            else:
                out.append(None)
    return out


def _composite_grads(opdef, inputs: list[Tensor], dy: Tensor, attrs: dict) -> list:
    """The gradient of an op without a rule through its ``composite`` form, as partial derivatives:
    taken on identity leaves, so a path by which one input is itself a function of another (the
    LSTM cell gradient's ``out`` of ``z``) stays the caller's."""
    leaves = [apply("identity", [t], {}) for t in inputs]
    return gradients(opdef.composite(leaves, attrs), leaves, grad_ys=dy)


def _accumulate(terms: list[Tensor]) -> Tensor:
    """Sum fan-out contributions (pairwise, so the tree is shallow); the gradients of many slices of
    one tensor (an RNN's time steps) become one ``strided_slice_grad_n`` instead of a sum of
    full-size zero tensors."""
    if len(terms) > 1:
        terms = accumulate_slice_grads(terms)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def _check_grad_spec(graph, n, i, src, gi: Tensor, want) -> None:
    got = gi.spec
    if got.dtype != want.dtype or len(got.shape) != len(want.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(got.shape, want.shape)):
        raise GraphError(f"gradient rule of {graph.op(n)} '{graph.name(n)}' gave {got} for input {i} "
                         f"'{graph.name(src)}', which is {want}")
