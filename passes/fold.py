"""Constant folding: a node whose inputs are all constants becomes a constant.

One topological sweep, so whole constant subgraphs collapse in one pass. The
value comes from the op's numpy reference (the same oracle the interpreter
uses). Never folded: placeholders, variables, fed nodes, random ops, stateful
ops, and nodes whose result would exceed ``fold_max_elements`` elements (a
scalar broadcast to 10^8 elements stays an op). A reference that raises
leaves the node alone (the error then surfaces at run time, as the user expects).

The node is rewritten in place (same id and name), so fetches stay valid.
"""
from __future__ import annotations

import warnings

import numpy as np

from graphc.ir import Graph, TensorSpec, TupleSpec
from graphc.ops.registry import get_op

from .core import PassContext, PassResult, fully_known, is_const, numel, rewrite_in_place


def foldable(g: Graph, n: int, ctx: PassContext) -> bool:
    """Inputs all constant, op pure and deterministic, result within the size cap."""
    op = g.op(n)
    if op == "constant" or ctx.is_fed(n):
        return False
    d = get_op(op)
    if d.random or d.stateful or d.reference is None or d.fusion == "source" \
            or isinstance(g.spec(n), TupleSpec):     # a loop's results: its tuple_gets stay ops
        return False
    ins = g.inputs(n)
    if not ins or not all(is_const(g, i, ctx) for i in ins):
        return False
    spec = g.spec(n)
    return fully_known(spec) and numel(spec.shape) <= ctx.options["fold_max_elements"]


def evaluate_node(g: Graph, n: int) -> np.ndarray | None:
    """The node's value from its reference, or None if the reference fails or disagrees with the spec."""
    d = get_op(g.op(n))
    vals = [g.attrs(i)["value"] for i in g.inputs(n)]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = np.asarray(d.reference(vals, dict(g.attrs(n))))
    except Exception:  # noqa: BLE001 - the run reports the error where the user can see it
        return None
    spec = g.spec(n)
    if out.dtype != spec.dtype or out.shape != tuple(spec.shape):
        return None
    return np.array(out, copy=True)  # own the memory: never alias an input constant


def fold(g: Graph, ctx: PassContext) -> PassResult:
    """Replace all-constant subgraphs by their values."""
    res = PassResult()
    skipped = 0
    for n in g.topo_order():
        if not foldable(g, n, ctx):
            continue
        value = evaluate_node(g, n)
        if value is None:
            skipped += 1
            continue
        rewrite_in_place(g, n, "constant", {"value": value}, [],
                         TensorSpec(tuple(value.shape), value.dtype))
        res.changed += 1
    if skipped:
        res.notes.append(f"{skipped} node(s) not folded: their reference raised")
    return res
