"""Passes over control flow: ``hoist_invariants`` moves loop-invariant work out of ``scan`` bodies,
and ``optimize_bodies`` runs the whole default pipeline inside every body (folding, CSE, fusion...
apply within a body as in any graph; nested bodies are reached by the same pass, recursively).

A body is never changed in place (a ``Body`` may be shared by graph copies): both passes make a
new ``Body`` and rewrite the node's attrs.

    >>> import graphc as gc
    >>> from graphc.passes import optimize
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     xs = gc.placeholder("float32", (None, 3), name="xs"); w = gc.placeholder("float32", (3,), name="w")
    ...     ys = gc.scan(lambda h, x: gc.tanh(h * gc.exp(w) + x), xs, initializer=gc.zeros((3,)))
    >>> opt, report = optimize(g, [ys], feeds=[xs, w])
    >>> [p.changed for p in report.passes if p.name == "hoist_invariants"]    # exp(w): once, outside
    [1]
"""
from __future__ import annotations

from graphc.funcgraph import Body, bodies, inline
from graphc.ir import Graph
from graphc.ops.registry import get_op

from .core import PassContext, PassResult, new_node, rewrite_in_place


# a scan of at most this many steps, known when the graph is optimized, is unrolled: there a loop's
# per-step calls cost more than the larger graph. Measured on 2 cores, alternating runs: graphc bench
# --quick lstm_train (8 steps, 16 units) 0.235 ms per training step as a loop, 0.131 ms unrolled; the
# row-LSTM seed (28 steps, 64 units, batch 32, 8,000 images) 0.84-0.87 s per epoch as a loop,
# 0.71-0.73 s unrolled (the previous main's unrolled layer: 0.68-0.70 s). With another process busy
# on one core the unrolled form is erratic (its GEMMs use two BLAS threads; a plan with a loop runs
# on one, see runtime/bound.py), 0.7-2.2 s against the loop's 0.82-0.99 s.
MAX_UNROLL = 32


def unroll_short_loops(g: Graph, ctx: PassContext) -> PassResult:
    """A ``scan`` whose number of steps is known and at most ``MAX_UNROLL`` becomes its body inlined
    once per step (slices of the sequences in, results stacked): no loop, and the passes after this
    one (CSE, fusion) see across steps."""
    from graphc.ops.array import stack
    res = PassResult()
    for n in g.nodes():
        if n not in g or g.op(n) != "scan" or ctx.is_fetched(n):
            continue
        a = g.attrs(n)
        k, m, body = a["n_carry"], a["n_xs"], a["body"]
        ins = [g.tensor(i) for i in g.inputs(n)]
        t_len = ins[k].shape[0] if m else a.get("length")
        if t_len is None or not 0 < t_len <= MAX_UNROLL or any(g.op(c) != "tuple_get" for c in g.users(n)):
            continue
        carries, xs, caps = ins[:k], ins[k:k + m], ins[k + m:]
        steps: dict[int, list] = {}
        with g.as_default(), g.name_scope(g.name(n).rsplit("/", 1)[-1] + "_unrolled"):
            for t in (range(t_len - 1, -1, -1) if a["reverse"] else range(t_len)):
                outs, _ = inline(body, carries + [x[t] for x in xs] + caps, graph=g)
                carries, steps[t] = outs[:k], outs[k:]
            results = carries + [stack([steps[t][j] for t in range(t_len)], axis=0)
                                 for j in range(len(body.outputs) - k)]
        for c in g.users(n):
            ctx.replace(g, c, results[g.attrs(c)["index"]].node)
        res.changed += 1
    return res


def optimize_bodies(g: Graph, ctx: PassContext) -> PassResult:
    """Every control flow node's bodies through the default pipeline (new ``Body`` objects)."""
    res = PassResult()
    for n in g.nodes():
        found = bodies(g.attrs(n))
        if not found:
            continue
        attrs = dict(g.attrs(n))
        for key, body in found:
            attrs[key] = _optimized(body, ctx.options)
        g.node_data(n)["attrs"] = attrs
        res.changed += 1
    return res


def _optimized(body: Body, options: dict) -> Body:
    from .manager import optimize
    opt, report = optimize(body.graph, list(body.outputs), feeds=list(body.inputs), options=options)
    inputs = []
    for n in body.inputs:       # an input the results no longer read keeps a placeholder (positional)
        if n not in opt:
            spec = body.graph.spec(n)
            n = opt.add_node("placeholder", [], {"shape": tuple(spec.shape), "dtype": spec.dtype}, spec,
                             name=body.graph.name(n) + "/unused")
        inputs.append(n)
    return Body(opt, tuple(inputs), tuple(report.fetches), body.label)


def hoist_invariants(g: Graph, ctx: PassContext) -> PassResult:
    """Body values of a ``scan`` that depend on captured inputs alone (not on the carries or the
    step's slice) are computed once before the loop and captured instead (a loop-invariant matrix
    a matmul reads transposed is transposed there, once: ``_untransposed``)."""
    res = PassResult()
    for n in g.nodes():
        if g.op(n) != "scan":
            continue
        a = g.attrs(n)
        body = _untransposed(a["body"], a["n_carry"] + a["n_xs"])
        k, m = a["n_carry"], a["n_xs"]
        moved = _invariant_frontier(body, k + m)
        if not moved:
            continue
        outer_inputs = [g.tensor(i) for i in g.inputs(n)]
        caps_body = Body(body.graph, body.inputs[k + m:], tuple(moved), body.label)
        with g.as_default():
            hoisted, _ = inline(caps_body, outer_inputs[k + m:], graph=g)
        bg = body.graph.copy()
        new_inputs = []
        for u in moved:
            spec = bg.spec(u)
            p = bg.add_node("placeholder", [], {"shape": tuple(spec.shape), "dtype": spec.dtype}, spec,
                            name=bg.name(u) + "/hoisted")
            bg.replace(u, p)
            new_inputs.append(p)
        outputs = tuple(new_inputs[moved.index(o)] if o in moved else o for o in body.outputs)
        inputs = body.inputs + tuple(new_inputs)
        keep = bg.ancestors(outputs) | set(inputs)
        bg.remove([u for u in bg.nodes() if u not in keep])
        new_body = Body(bg, inputs, outputs, body.label)
        g.node_data(n)["attrs"] = {**a, "body": new_body}
        g.set_inputs(n, g.inputs(n) + [t.node for t in hoisted])
        res.changed += len(moved)
    return res


def _untransposed(body: Body, n_varying: int) -> Body:
    """``matmul(a, b, transpose_b=True)`` with a loop-invariant ``b`` reads ``transpose(b)`` instead,
    which hoisting then computes once before the loop: every step's product runs NN, as
    ``layout.transpose_shared_rhs`` does for an unrolled loop (an RNN's ``dh = dz @ U^T``)."""
    bg = body.graph
    varying = bg.descendants(body.inputs[:n_varying])
    hits = [v for v in bg.topo_order(body.outputs, stop=body.inputs)
            if bg.op(v) == "matmul" and bg.attrs(v)["transpose_b"] and bg.inputs(v)[1] not in varying
            and len(bg.spec(bg.inputs(v)[1]).shape) == 2]
    if not hits:
        return body
    bg = bg.copy()
    for v in hits:
        b = bg.inputs(v)[1]
        t = new_node(bg, "transpose", [b], {"perm": (1, 0)}, v)
        rewrite_in_place(bg, v, "matmul", {**bg.attrs(v), "transpose_b": False}, [bg.inputs(v)[0], t])
    return Body(bg, body.inputs, body.outputs, body.label)


def _invariant_frontier(body: Body, n_varying: int) -> list[int]:
    """The loop-invariant body nodes (neither inputs nor constants) that varying nodes or the
    results read: computing them before the loop computes every invariant node that matters."""
    bg = body.graph
    varying = bg.descendants(body.inputs[:n_varying])
    live = bg.ancestors(body.outputs)
    pure = {u for u in live if not get_op(bg.op(u)).stateful and not get_op(bg.op(u)).random}
    invariant = {u for u in live if u not in varying and bg.op(u) not in ("placeholder", "constant")
                 and u in pure and bg.ancestors([u]) <= pure | set(body.inputs)}
    frontier = {u for v in live if v in varying for u in bg.inputs(v) if u in invariant}
    frontier |= {o for o in body.outputs if o in invariant}
    return sorted(frontier)
