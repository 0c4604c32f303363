"""The pass manager: the default pipeline, ``optimize``, the report, and the debug checks.

    >>> import graphc as gc
    >>> from graphc.passes import optimize
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     x = gc.placeholder("float32", (None, 4), name="x")
    ...     y = gc.relu(x * 1.0 + (gc.constant(2.0) * 3.0))
    >>> opt, report = optimize(g, [y], feeds=[x])
    >>> [opt.op(n) for n in opt.topo_order()]
    ['placeholder', 'constant', 'fused_elementwise']
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from graphc.errors import GraphError
from graphc.ir import Graph

from .core import PassContext, PassResult
from .cse import cse
from .dce import dce
from .fold import fold
from .gemm import merge_gemms
from .rnn import save_lstm_gates, split_lstm_grad_inputs
from .fusion import fuse_elementwise, fuse_epilogue, fuse_reduction
from .layout import transpose_shared_rhs
from .loops import hoist_invariants, optimize_bodies, unroll_short_loops
from .simplify import simplify

PassFn = Callable[[Graph, PassContext], PassResult]

# The default pipeline, in order. Clean-up first (so later passes see less), then the
# rewrites that enable each other (folding exposes x*1, simplification exposes folding
# and equal subexpressions), then operand layouts for BLAS, then fusion last, on the smallest graph.
DEFAULT_PIPELINE: list[tuple[str, PassFn]] = [
    ("dce", dce),                            # fed nodes become placeholders; drop what fetches don't need
    ("unroll_short_loops", unroll_short_loops),  # a scan of a few known steps -> its body once per step
    ("hoist_invariants", hoist_invariants),  # loop-invariant work in scan bodies -> once, before the loop
    ("fold", fold),                          # all-constant subgraphs -> constants
    ("simplify", simplify),                  # algebraic rules (x*1, transpose pairs, reshape chains...)
    ("fold.2", fold),                        # what simplification exposed (e.g. reduce of a bypassed op)
    ("cse", cse),                            # equal nodes -> one node
    ("dce.2", dce),                          # drop what folding/simplification/CSE left unused
    ("merge_gemms", merge_gemms),            # sums of matrix products -> one GEMM over stacked rows
    ("split_lstm_grad_inputs", split_lstm_grad_inputs),  # LSTM step gradients read dh, dc in place
    ("save_lstm_gates", save_lstm_gates),    # LSTM steps keep their gates for their gradient
    ("optimize_bodies", optimize_bodies),    # this whole pipeline inside every loop body and branch
    ("transpose_shared_rhs", transpose_shared_rhs),  # a matrix many matmuls read transposed: transpose once
    ("fuse_elementwise", fuse_elementwise),  # elementwise regions -> fused_elementwise
    ("fuse_epilogue", fuse_epilogue),        # matmul/conv2d + elementwise tail -> fused_contraction
    ("fuse_reduction", fuse_reduction),      # elementwise prologue + reduce_* -> fused_reduction
]

# every pass by name (``pipeline=["dce", "cse"]`` works too; pipeline names like "fold.2" as well)
PASSES: dict[str, PassFn] = {**{fn.__name__: fn for _, fn in DEFAULT_PIPELINE}, **dict(DEFAULT_PIPELINE)}


class PassCheckError(GraphError):
    """A pass produced an invalid graph or changed a fetched value (debug mode)."""


@dataclass
class PassRecord:
    name: str
    nodes_before: int
    nodes_after: int
    changed: int
    notes: list
    seconds: float


@dataclass
class Report:
    """What ``optimize`` did: one record per pass, the new fetch ids, optional snapshots."""
    fetches: list
    passes: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)  # [(stage name, Graph)] when keep_snapshots
    seconds: float = 0.0
    debug_notes: list = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(p.changed for p in self.passes)

    def __str__(self) -> str:
        lines = [f"{'pass':<18}{'nodes':>15}{'changed':>9}{'ms':>9}  notes"]
        for p in self.passes:
            nodes = f"{p.nodes_before} -> {p.nodes_after}"
            lines.append(f"{p.name:<18}{nodes:>15}{p.changed:>9}{p.seconds * 1e3:>9.1f}  "
                         + "; ".join(str(x) for x in p.notes))
        first = self.passes[0].nodes_before if self.passes else 0
        last = self.passes[-1].nodes_after if self.passes else 0
        lines.append(f"{'total':<18}{f'{first} -> {last}':>15}{self.changed:>9}"
                     f"{self.seconds * 1e3:>9.1f}")
        lines.extend(f"debug: {x}" for x in self.debug_notes)
        return "\n".join(lines)


def _resolve(pipeline) -> list[tuple[str, PassFn]]:
    if pipeline is None:
        return list(DEFAULT_PIPELINE)
    out = []
    for p in pipeline:
        if isinstance(p, str):
            if p not in PASSES:
                raise ValueError(f"unknown pass {p!r}; known passes: {', '.join(PASSES)}")
            out.append((p, PASSES[p]))
        elif callable(p):
            out.append((p.__name__, p))
        else:
            name, fn = p
            out.append((str(name), fn))
    return out


def _node_id(graph: Graph, f, strict: bool = True) -> int | None:
    """Node id of a fetch/feed given as id, Tensor/Operation or name (None: a missing feed)."""
    n = f.node if hasattr(f, "node") and hasattr(f, "graph") else f
    if hasattr(f, "graph") and f.graph is not graph:
        raise GraphError(f"{f!r} belongs to another graph than the one being optimized")
    if isinstance(n, str):
        if not strict and n not in graph._names:
            return None
        return graph.by_name(n)
    n = int(n)
    if n not in graph:
        if not strict:  # a feed the graph no longer has (e.g. re-optimizing an optimized graph)
            return None
        raise GraphError(f"node {n} is not in the graph being optimized")
    return n


class PassManager:
    """Runs an explicit, ordered list of ``(name, pass)``; see ``DEFAULT_PIPELINE``."""

    def __init__(self, pipeline: Sequence | None = None):
        self.pipeline = _resolve(pipeline)

    def run(self, graph: Graph, fetches: Iterable, *, feeds: Iterable = (), debug: bool = False,
            keep_snapshots: bool = False, options: dict | None = None) -> tuple[Graph, Report]:
        """Optimize a copy of ``graph`` for ``fetches``; the input graph is never changed."""
        t_start = time.perf_counter()
        fetch_ids = [_node_id(graph, f) for f in fetches]
        feed_ids = [n for n in (_node_id(graph, f, strict=False) for f in feeds) if n is not None]
        g = graph.copy()
        ctx = PassContext(fetch_ids, feed_ids, options)
        report = Report(fetches=ctx.fetches)
        checker = _DebugChecker(graph, fetch_ids, feed_ids, report) if debug else None
        if keep_snapshots:
            report.snapshots.append(("input", g.copy()))
        for name, fn in self.pipeline:
            before = g.num_nodes()
            t0 = time.perf_counter()
            res = fn(g, ctx) or PassResult()
            dt = time.perf_counter() - t0
            report.passes.append(PassRecord(name, before, g.num_nodes(), res.changed,
                                            list(res.notes), dt))
            if checker is not None:
                checker.check(name, g, ctx.fetches)
            if keep_snapshots:
                report.snapshots.append((name, g.copy()))
        report.fetches = list(ctx.fetches)
        report.seconds = time.perf_counter() - t_start
        return g, report


def optimize(graph: Graph, fetches, *, feeds=(), pipeline=None, debug: bool = False,
             keep_snapshots: bool = False, options: dict | None = None) -> tuple[Graph, Report]:
    """The smallest equivalent graph for ``fetches`` (node ids, tensors or names).

    ``feeds`` are the nodes fed at run time (never folded through; what computes
    them is dropped). Returns ``(optimized_graph, report)``; ``report.fetches``
    are the node ids producing the fetched values in the new graph. ``debug``
    validates the graph after every pass and compares the fetched values with
    the reference interpreter on random sample inputs. ``options``: see
    ``graphc.passes.core.DEFAULT_OPTIONS``.
    """
    if not isinstance(fetches, (list, tuple)):
        fetches = [fetches]
    return PassManager(pipeline).run(graph, fetches, feeds=feeds, debug=debug,
                                     keep_snapshots=keep_snapshots, options=options)


# -- debug mode ----------------------------------------------------------------------------------
def sample_value(spec, rng: np.random.Generator, unknown: int = 3) -> np.ndarray:
    """A random array of ``spec`` (``None`` dims get size ``unknown``)."""
    shape = tuple(unknown if d is None else d for d in spec.shape)
    dt = spec.dtype
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        return rng.integers(0, 3, size=shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def sample_inputs(graph: Graph, fetches: Sequence[int], feeds: Iterable[int] = (), seed: int = 0):
    """Random feeds (placeholders and fed nodes) and variable state for a run of ``fetches``."""
    from graphc.interpreter import schedule
    fed = set(feeds)
    rng = np.random.default_rng(seed)
    feed_vals, state = {}, {}
    for n in schedule(graph, fetches, fed):
        if n in fed or graph.op(n) == "placeholder":
            feed_vals[n] = sample_value(graph.spec(n), rng)
        elif graph.op(n) == "variable":
            state[graph.name(n)] = sample_value(graph.spec(n), rng)
    return feed_vals, state


def values_match(a, b, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
    return bool(np.array_equal(a, b))


class _DebugChecker:
    """Validates the graph after each pass and compares fetched values and variable updates."""

    def __init__(self, graph: Graph, fetches: list, feeds: list, report: Report):
        from graphc.interpreter import evaluate
        self.report = report
        self.feeds, self.state = sample_inputs(graph, fetches, feeds)
        try:
            with np.errstate(all="ignore"):
                self.ref = evaluate(graph, fetches, self.feeds, self.state)
        except Exception as e:  # noqa: BLE001 - e.g. indices out of range on random inputs
            self.ref = None
            report.debug_notes.append(f"value check off: the original graph fails on sample "
                                      f"inputs ({type(e).__name__}: {e})")

    def check(self, name: str, g: Graph, fetches: list) -> None:
        from graphc.interpreter import evaluate
        try:
            g.validate()
        except GraphError as e:
            raise PassCheckError(f"pass {name!r} left an invalid graph: {e}") from e
        if self.ref is None:
            return
        feeds = {n: v for n, v in self.feeds.items() if n in g}
        try:
            with np.errstate(all="ignore"):
                got = evaluate(g, fetches, feeds, self.state)
        except Exception as e:  # noqa: BLE001
            raise PassCheckError(f"after pass {name!r} the graph fails on sample inputs "
                                 f"that the original graph runs: {type(e).__name__}: {e}") from e
        for i, (want, have) in enumerate(zip(self.ref.values, got.values)):
            if not values_match(want, have):
                raise PassCheckError(f"pass {name!r} changed fetch {i} ({g.name(fetches[i])}): "
                                     f"expected {np.asarray(want)!r}, got {np.asarray(have)!r}")
        if set(self.ref.updates) != set(got.updates) or not all(
                values_match(self.ref.updates[k], got.updates[k]) for k in self.ref.updates):
            raise PassCheckError(f"pass {name!r} changed the variable updates of the run")
