"""Reverse-mode gradients of ``scan``, ``while_loop`` and ``cond``, built from the same ops.

A loop's gradient is a reverse ``scan`` whose body is the vector-Jacobian product of the forward
body. What that product needs from each forward step is *saved* by the forward loop, as TensorFlow
and JAX do: the first time a loop node is differentiated, ``vjp`` splits the differentiated body
into the forward part and the gradient part; every forward value the gradient part reads becomes
an extra stacked result of a new forward node (the loop variables entering the step, the gate
activations of a cell...), which replaces the old node in the graph. Values that depend only on
captured inputs are recomputed instead of stacked (they are the same every step), and a step's
input slice is read from the original ``elems``. The new node remembers its ``VJP``, so a second
``gradients`` call reuses it.

``cond``'s gradient is a ``cond`` over the two branches' gradients (each branch recomputed inside
its gradient branch: a branch runs once, so nothing is worth saving).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import GraphError
from ..funcgraph import Body, FuncGraph, inline
from ..ir import Tensor, TensorSpec, get_default_graph
from .registry import apply


@dataclass(eq=False, frozen=True)
class VJP:
    """A loop body's gradient: ``forward`` (the body plus its saved values as extra results) and
    ``backward`` (the reverse step), with which forward inputs each part concerns."""
    forward: Body
    backward: Body
    n_saved: int          # extra results of ``forward``: one stack each
    saved_parts: tuple    # for each saved value, the forward node's result index holding its stack
    d_carries: tuple      # carry indices with a gradient (float)
    d_caps: tuple         # body input indices of the captures with a gradient (float)
    d_xs: tuple           # body input indices of the step slices with a gradient (float)
    xs_read: tuple        # body input indices of step slices the backward step reads
    caps_read: tuple      # body input indices of captures the backward step reads


def _floats(specs, idx) -> tuple:
    return tuple(i for i in idx if specs[i].dtype.kind == "f")


def _placeholder(g, spec: TensorSpec, name: str) -> Tensor:
    return Tensor(g, g.add_node("placeholder", [], {"shape": tuple(spec.shape), "dtype": spec.dtype},
                                spec, name=name))


def vjp(body: Body, k: int, m: int, y_dims: tuple, at_least_one: bool = False) -> VJP:
    """The gradient step of a loop ``body`` with ``k`` carries and ``m`` step slices (then captures).
    ``y_dims``: indices of the body's per-step results that receive gradients (floats).
    ``at_least_one``: save at least one value per step (a while loop's gradient learns its number
    of iterations from the saved stacks)."""
    from ..autodiff import gradients
    specs, n_in = body.in_specs, len(body.inputs)
    d_carries = _floats(specs, range(k))
    d_xs = _floats(specs, range(k, k + m))
    d_caps = _floats(specs, range(k + m, n_in))
    fg = FuncGraph(get_default_graph(), "grad/" + body.label)
    with fg.as_default(), fg.name_scope("grad"):
        p_in = [_placeholder(fg, s, f"in{i}") for i, s in enumerate(specs)]
        outs, fmap = inline(body, p_in)
        forward_nodes = {t.node for t in fmap.values()}
        seeds_c = [_placeholder(fg, specs[i], f"d_carry{i}") for i in d_carries]
        seeds_y = [_placeholder(fg, body.out_specs[k + j], f"d_y{j}") for j in y_dims]
        acc = [_placeholder(fg, specs[i], f"d_acc{i}") for i in d_caps]
        wrt = [p_in[i] for i in d_carries + d_xs + d_caps]
        grads = gradients([outs[i] for i in d_carries] + [outs[k + j] for j in y_dims], wrt,
                          grad_ys=seeds_c + seeds_y, unconnected_gradients="zero")
        grads = [g if g is not None else _zeros(w) for g, w in zip(grads, wrt)]
        nc, nx = len(d_carries), len(d_xs)
        new_acc = [a + g for a, g in zip(acc, grads[nc + nx:])]
        results = grads[:nc] + new_acc + grads[nc:nc + nx]
    if fg.captured:
        raise GraphError(f"gradient of {body.label}: the gradient step read outer tensors "
                         f"{[t.name for t in fg.captured]} (a graphc bug)")
    result_nodes = [t.node for t in results]
    saved, xs_read, caps_read = _split(fg, result_nodes, forward_nodes, p_in, k, m)
    if at_least_one and not saved:
        saved = [p_in[d_carries[0] if d_carries else 0].node]
    # each saved forward value becomes a step input of the backward body
    inverse = {t.node: b for b, t in fmap.items()}
    with fg.as_default():
        saved_in = []
        for j, u in enumerate(saved):
            p = _placeholder(fg, fg.spec(u), f"saved{j}")
            fg.replace(u, p.node)
            result_nodes = [p.node if r == u else r for r in result_nodes]
            saved_in.append(p.node)
    live = fg.ancestors(result_nodes)
    keep = set(live) | {t.node for t in seeds_c + seeds_y + acc} | set(saved_in) | \
        {p_in[i].node for i in xs_read + caps_read}
    fg.remove([n for n in fg.nodes() if n not in keep])
    backward = Body(fg, tuple(t.node for t in seeds_c + acc) + tuple(saved_in)
                    + tuple(p_in[i].node for i in xs_read) + tuple(t.node for t in seeds_y)
                    + tuple(p_in[i].node for i in caps_read), tuple(result_nodes), "grad/" + body.label)
    # a saved value that the loop stacks anyway (a y, e.g. an RNN's h) is read from that stack
    ys = {o: k + j for j, o in reversed(list(enumerate(body.outputs[k:])))}
    extra, parts = [], []
    for u in saved:
        b = inverse[u]
        if b in ys:
            parts.append(ys[b])
        else:
            parts.append(len(body.outputs) + len(extra))
            extra.append(b)
    forward = Body(body.graph, body.inputs, body.outputs + tuple(extra), body.label)
    return VJP(forward, backward, len(extra), tuple(parts), d_carries, d_caps, d_xs, tuple(xs_read),
               tuple(caps_read))


def _split(fg, result_nodes, forward_nodes, p_in, k, m):
    """Which forward values the gradient part reads: saved per step (carries entering the step and
    intermediates), read from the step slices, or from the captures; values that depend on
    captures alone are recomputed by the backward step."""
    inputs = {t.node: i for i, t in enumerate(p_in)}
    varying = fg.descendants([p_in[i].node for i in range(k + m)])
    live = fg.ancestors(result_nodes)
    frontier = [u for n in live if n not in forward_nodes for u in fg.inputs(n) if u in forward_nodes]
    frontier += [r for r in result_nodes if r in forward_nodes]
    saved, xs_read, caps_read, seen = [], [], [], set()
    while frontier:
        u = frontier.pop()
        if u in seen:
            continue
        seen.add(u)
        i = inputs.get(u)
        if i is not None and k <= i < k + m:
            xs_read.append(i)
        elif i is not None and i >= k + m:
            caps_read.append(i)
        elif i is None and u not in varying:
            frontier.extend(fg.inputs(u))        # loop-invariant: recompute from the captures
        else:
            saved.append(u)                      # a carry entering the step, or a step's value
    return sorted(saved), sorted(xs_read), sorted(caps_read)


def _part(t, k):
    from .control_flow import part
    return part(t, k)


def _zeros(like: Tensor) -> Tensor:
    from .creation import zeros_like
    return zeros_like(like)


def _differentiated(node: Tensor, op: str, inputs: list, attrs: dict, make) -> tuple[Tensor, VJP]:
    """The forward node with its VJP: ``node`` itself once differentiated before, else a new node
    saving what the gradient reads, which takes ``node``'s place in the graph."""
    if attrs.get("vjp") is not None:
        return node, attrs["vjp"]
    v = make()
    new = apply(op, inputs, {**attrs, "body": v.forward, "vjp": v}, name=node.name.rsplit("/", 1)[-1])
    node.graph.replace(node.node, new.node)
    return new, v


def scan_grad(ins, out, dy, a):
    body, k, m = a["body"], a["n_carry"], a["n_xs"]
    n_y = len(body.outputs) - k - (a["vjp"].n_saved if a.get("vjp") else 0)
    y_dims = tuple(j for j in range(n_y) if body.out_specs[k + j].dtype.kind == "f")
    fwd, v = _differentiated(out, "scan", list(ins), a, lambda: vjp(body, k, m, y_dims))
    return _backward(fwd, v, ins, dy, k, m, n_y, y_dims, a["reverse"], a.get("length"))


def _backward(fwd, v: VJP, ins, dy, k, m, n_y, y_dims, reverse, length):
    from .control_flow import scan_node
    init = [dy[i] if dy[i] is not None else _zeros(_part(fwd, i)) for i in v.d_carries]
    init += [_zeros(ins[i]) for i in v.d_caps]
    saved = [_part(fwd, i) for i in v.saved_parts]
    d_ys = [dy[k + j] if dy[k + j] is not None else _zeros(_part(fwd, k + j)) for j in y_dims]
    xs = saved + [ins[i] for i in v.xs_read] + d_ys
    back = scan_node(v.backward, [ins[i] for i in v.caps_read], init, xs, reverse=not reverse,
                     length=length if not xs else None, name="scan_grad")
    grads = [None] * len(ins)
    for j, i in enumerate(v.d_carries + v.d_caps):
        grads[i] = _part(back, j)
    n_c = len(v.d_carries) + len(v.d_caps)
    for j, i in enumerate(v.d_xs):
        grads[i] = _part(back, n_c + j)
    return grads


def while_grad(ins, out, dy, a):
    body, k = a["body"], a["n_vars"]
    fwd, v = _differentiated(out, "while_loop", list(ins), a,
                             lambda: vjp(body, k, 0, (), at_least_one=True))
    limit = [None] if a.get("max_input") else []        # maximum_iterations as a tensor
    return _backward(fwd, v, list(ins[:len(ins) - len(limit)]), dy, k, 0, 0, (), False, None) + limit


def cond_grad(ins, out, dy, a):
    from ..autodiff import gradients
    from .elementwise import identity
    from .control_flow import cond
    pred, caps = ins[0], list(ins[1:])
    wrt = [i for i, c in enumerate(caps) if c.dtype.kind == "f"]
    parts = out.spec.parts
    seeds = [d if d is not None or p.dtype.kind != "f" else _zeros(_part(out, j))
             for j, (d, p) in enumerate(zip(dy, parts))]
    if not wrt:
        return [None] * len(ins)

    def branch(b: Body):
        def grad_fn():
            leaves = [identity(c) for c in caps]
            outs, _ = inline(b, leaves)
            fl = [j for j, p in enumerate(parts) if p.dtype.kind == "f"]
            gs = gradients([outs[j] for j in fl], [leaves[i] for i in wrt],
                           grad_ys=[seeds[j] for j in fl], unconnected_gradients="zero")
            return list(gs)
        return grad_fn
    res = cond(pred, branch(a["true"]), branch(a["false"]), name="cond_grad")
    grads = [None] * len(ins)
    for j, i in enumerate(wrt):
        grads[1 + i] = res[j]
    return grads
