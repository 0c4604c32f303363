"""Common-subexpression elimination (value numbering in one topological sweep).

Two nodes with the same op, the same attributes (constants compared by dtype,
shape and bytes; floats by their bits) and the same inputs compute the same
value, so one replaces the other. Inputs of commutative ops are put in a
canonical order first (``a+b`` and ``b+a`` merge; exact in IEEE arithmetic, except
that ``maximum(+0.0, -0.0)`` and ``maximum(-0.0, +0.0)`` return the zero of the
second input: equal values of different sign bits).

Never merged: random ops (two draws differ), stateful ops (variables, assigns,
group), external ops (placeholders, variables), and fed nodes.
"""
from __future__ import annotations

from graphc.ir import Graph
from graphc.ops.registry import get_op

from .core import PassContext, PassResult, attrs_key, same_bytes


def mergeable(g: Graph, n: int, ctx: PassContext) -> bool:
    if ctx.is_fed(n):
        return False
    d = get_op(g.op(n))
    return not (d.external or d.random or d.stateful)


def cse(g: Graph, ctx: PassContext) -> PassResult:
    """Merge nodes that compute the same value (same op, attrs and inputs)."""
    res = PassResult()
    table: dict = {}
    merged = []
    for n in g.topo_order():
        if not mergeable(g, n, ctx):
            continue
        ins = tuple(g.inputs(n))
        op = g.op(n)
        if get_op(op).commutative:   # a+b and b+a: one canonical input order (see above)
            ins = tuple(sorted(ins))
        key = (op, attrs_key(g.attrs(n)), ins)
        first = table.get(key)
        if first is None:
            table[key] = n
            continue
        if g.spec(first) != g.spec(n):  # equal specs are implied; stay safe if a rule is loose
            continue
        if op == "constant" and not same_bytes(g.attrs(first)["value"], g.attrs(n)["value"]):
            continue  # a digest collision (never seen): keep both
        ctx.replace(g, n, first)
        merged.append(n)
    g.remove(merged)
    res.changed = len(merged)
    return res
