"""Shared pieces of the passes: the pass context, pass results, and small graph helpers.

A pass is a plain function ``(graph, ctx) -> PassResult`` that rewrites
``graph`` in place. ``ctx`` knows what must survive: the fetched node ids
(kept up to date through ``ctx.replace``), the fed node ids (opaque sources:
never folded, merged, simplified or fused) and the options.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from graphc.ir import Graph, TensorSpec
from graphc.ops.registry import get_op

DEFAULT_OPTIONS = {
    "fold_max_elements": 1_000_000,  # constant folding never creates a constant larger than this
    "max_fusion_steps": 200,         # a fused program holds at most this many steps
    "unsafe_math": False,            # rules that change results for Inf/NaN or rounding (log(exp x))
}


@dataclass
class PassResult:
    """What one pass did: how many rewrites, and free-form notes for the report."""
    changed: int = 0
    notes: list = field(default_factory=list)


class PassContext:
    """What passes must respect: fetches (kept current on replace), feeds, options."""

    def __init__(self, fetches: Iterable[int], feeds: Iterable[int] = (), options: dict | None = None):
        self.fetches = list(fetches)
        self.feeds = frozenset(feeds)
        self.options = {**DEFAULT_OPTIONS, **(options or {})}
        self._fetch_pos: dict[int, list[int]] = {}
        for i, f in enumerate(self.fetches):
            self._fetch_pos.setdefault(f, []).append(i)

    def is_fetched(self, n: int) -> bool:
        return n in self._fetch_pos

    def is_fed(self, n: int) -> bool:
        return n in self.feeds

    def replace(self, g: Graph, old: int, new: int) -> None:
        """Make every consumer (and fetch) of ``old`` use ``new``; ``old`` is left unused."""
        if old == new:
            return
        g.replace(old, new)
        pos = self._fetch_pos.pop(old, None)
        if pos:
            for i in pos:
                self.fetches[i] = new
            self._fetch_pos.setdefault(new, []).extend(pos)


# -- helpers ---------------------------------------------------------------------------------------
def is_const(g: Graph, n: int, ctx: PassContext) -> bool:
    """A constant node whose value is known at compile time (fed constants are not)."""
    return g.op(n) == "constant" and not ctx.is_fed(n)


def const_value(g: Graph, n: int) -> np.ndarray:
    return g.attrs(n)["value"]


def const_is(g: Graph, n: int, ctx: PassContext, value) -> bool:
    """``n`` is a constant every element of which equals ``value`` (and is not NaN)."""
    if not is_const(g, n, ctx):
        return False
    v = const_value(g, n)
    return v.size > 0 and v.dtype.kind in "iufb" and bool(np.all(v == value))


def fully_known(spec: TensorSpec) -> bool:
    return all(d is not None for d in spec.shape)


def numel(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def canonical(value):
    """A hashable key for an attribute value; arrays (by a digest of their bytes) and floats
    compare by their bits. Equal keys of arrays are confirmed with ``same_bytes``."""
    if isinstance(value, np.ndarray):
        digest = hashlib.blake2b(np.ascontiguousarray(value).data, digest_size=16).digest()
        return ("nd", value.dtype.str, value.shape, digest)
    if isinstance(value, (bool, np.bool_)):
        return ("b", bool(value))
    if isinstance(value, (float, np.floating)):
        return ("f", float(value).hex())
    if isinstance(value, (int, np.integer)):
        return ("i", int(value))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("d", tuple(sorted((k, canonical(v)) for k, v in value.items())))
    if isinstance(value, np.dtype):
        return ("dt", value.str)
    return (type(value).__name__, value)


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def attrs_key(attrs: dict):
    return tuple(sorted((k, canonical(v)) for k, v in attrs.items()))


def attrs_tuple(attrs: dict) -> tuple:
    """Attrs as the sorted ``(key, value)`` tuple used in fused programs."""
    return tuple(sorted(attrs.items()))


def new_node(g: Graph, op: str, inputs: list[int], attrs: dict, like: int) -> int:
    """Add ``op(inputs)`` with its spec inferred, named and traced after node ``like``."""
    spec = get_op(op).infer([g.spec(i) for i in inputs], attrs)
    return g.add_node(op, inputs, attrs, spec, name=g.name(like), trace=g.trace(like))


def rewrite_in_place(g: Graph, n: int, op: str, attrs: dict, inputs: list[int],
                     spec: TensorSpec | None = None) -> None:
    """Turn node ``n`` into ``op(inputs)`` keeping its id, name and trace (fetch ids stay valid)."""
    d = g.node_data(n)
    d["op"] = op
    d["attrs"] = dict(attrs)
    if spec is not None:
        d["spec"] = spec
    g.set_inputs(n, inputs)


def remove_unused(g: Graph, nodes: Iterable[int], ctx: PassContext) -> int:
    """Remove ``nodes`` that have no consumers and are not fetched; returns how many."""
    dead = [n for n in nodes if n in g and g.num_uses(n) == 0 and not ctx.is_fetched(n)]
    g.remove(dead)
    return len(dead)
