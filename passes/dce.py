"""Feed pruning and dead-code elimination.

* ``prune_feeds``: a fed node's value comes from the feed, so what computes it
  is not needed: a fed node that is not already a placeholder/variable becomes
  a placeholder of the same spec (same id and name, so feeds still find it).
* ``dce``: only the fetches and their ancestors survive (stopping at fed
  nodes), plus the fed nodes themselves. Assign ops survive only if a fetch needs them (a fetched ``group``
  or the assign itself); this is what TensorFlow does too.
"""
from __future__ import annotations

from graphc.ir import Graph
from graphc.ops.registry import get_op

from .core import PassContext, PassResult, rewrite_in_place


def prune_feeds(g: Graph, ctx: PassContext) -> PassResult:
    """Fed nodes become placeholders: their producers are cut off."""
    res = PassResult()
    for n in sorted(ctx.feeds):
        if n not in g or get_op(g.op(n)).external:    # already a feed (or the session's state)
            continue
        spec = g.spec(n)
        rewrite_in_place(g, n, "placeholder", {"shape": tuple(spec.shape), "dtype": spec.dtype}, [])
        res.changed += 1
        res.notes.append(f"fed {g.name(n)} is now a placeholder")
    return res


def needed(g: Graph, ctx: PassContext) -> set:
    """Fetches and their ancestors; fed nodes cut off their producers.

    Fed nodes always stay (as placeholders), even if no fetch needs them, so a
    runtime can look up every fed id in the optimized graph.
    """
    roots = [f for f in ctx.fetches if f in g] + [f for f in ctx.feeds if f in g]
    return g.ancestors(roots, stop=ctx.feeds)


def dce(g: Graph, ctx: PassContext) -> PassResult:
    """Remove every node the fetches do not need (fed nodes are pruned first)."""
    res = prune_feeds(g, ctx)
    keep = needed(g, ctx)
    dead = [n for n in g.nodes() if n not in keep]
    g.remove(dead)
    res.changed += len(dead)
    return res
