"""Lowering: an optimized graph + one set of input shapes -> a ``Plan``.

A Plan is the run's schedule (the interpreter's: topological, creation-order
ties) as kernel calls over numbered buffers:

1. concrete shapes of every scheduled node are inferred from the feed shapes
   with the ops' own shape rules (a node whose shape depends on values runs
   its numpy reference, as do its consumers with unknown shapes);
2. every node is bound to a kernel (``kernels.bind``: generated elementwise
   kernels, hand-written numba kernels, else the numpy reference);
3. liveness analysis assigns kernel outputs and scratch space to reused,
   preallocated buffers (best fit by size). A value returned by a numpy
   reference may alias its inputs (views), so it keeps their buffers alive.
   Fetched values and assign results are fresh arrays each run (callers keep
   them), never pool buffers; a kernel result that only becomes a variable's
   new value is written straight into a fresh array that the assign keeps.

    >>> import graphc as gc
    >>> from graphc.runtime import compile
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     x = gc.placeholder("float32", (None, 4), name="x"); y = gc.exp(x) * 2.0 + 1.0
    >>> exe = compile(g, [y.node], [x.node])
    >>> plan = exe.prepare({x.node: (8, 4)})
    >>> plan.peak_bytes > 0
    True
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from graphc.interpreter import schedule
from graphc.ir import Graph, TensorSpec, TupleSpec
from graphc.ops.registry import get_op

from . import cache
from .baseline import baseline_call
from .kernels import Call, NodeCtx, bind, finish, reference_call

ALIGN = 64


@dataclass
class Step:
    """One scheduled node: ``kind`` is feed, var, const, unfed, assign, random or call."""
    node: int
    op: str
    kind: str
    inputs: list
    call: Call | None = None
    shape: tuple | None = None
    dtype: np.dtype | None = None
    storage: str = ""          # buf / fresh / value / ext
    buffer: int | None = None
    takes_value: bool = False  # a plain assign whose new value is a fresh array of this run: no copy
    scratch_buffers: list = field(default_factory=list)
    value: np.ndarray | None = None     # a "const" step's value when the graph has none (bind-time fold)


@dataclass
class Plan:
    """Ordered kernel calls over numbered buffers for one set of input shapes."""
    graph: Graph
    fetches: list
    feeds: list
    steps: list
    shapes_key: tuple
    buffers: list = field(default_factory=list)       # capacity in bytes of each pool buffer
    fetch_bytes: int = 0
    naive_bytes: int = 0

    @property
    def pool_bytes(self) -> int:
        return int(sum(self.buffers))

    @property
    def peak_bytes(self) -> int:
        """Pool buffers plus the fresh arrays of one run (fetched outputs, new variable values)."""
        return self.pool_bytes + self.fetch_bytes

    @property
    def kernel_calls(self) -> list:
        return [s for s in self.steps if s.kind == "call"]

    def __str__(self) -> str:
        g = self.graph
        lines = [f"Plan: {len(self.kernel_calls)} kernel calls, {len(self.buffers)} buffers, "
                 f"pool {self.pool_bytes} B + fresh {self.fetch_bytes} B = peak {self.peak_bytes} B "
                 f"(without reuse: {self.naive_bytes} B)"]
        for i, b in enumerate(self.buffers):
            lines.append(f"  buf{i}: {b} B")

        def where(n):
            s = self._by_node.get(n)
            if s is None:
                return g.name(n)
            if s.storage == "buf":
                return f"buf{s.buffer}"
            return {"feed": "feed:", "var": "var:", "const": "const:"}.get(s.kind, "%") + g.name(n)
        for s in self.steps:
            spec = f"{s.dtype.name}{list(s.shape)}" if s.shape is not None and s.dtype is not None else "?"
            if s.kind == "call":
                extra = "".join(f" scratch=buf{b}" for b in s.scratch_buffers)
                lines.append(f"  {s.call.name}({', '.join(where(i) for i in s.inputs)}) -> "
                             f"{where(s.node)} {spec}{extra}   # {g.name(s.node)}")
            elif s.kind in ("assign", "random"):
                lines.append(f"  {s.kind}:{s.op}({', '.join(where(i) for i in s.inputs)}) -> "
                             f"%{g.name(s.node)} {spec}")
        lines.append("  return " + ", ".join(where(f) for f in self.fetches))
        return "\n".join(lines)

    @property
    def _by_node(self) -> dict:
        return {s.node: s for s in self.steps}


def _nbytes(shape, dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _known(shape) -> bool:
    return shape is not None and all(d is not None for d in shape)


# bind-time folds make values of at most this many elements constants of the plan
FOLD_MAX_ELEMENTS = 1 << 12


def _fold(graph: Graph, n: int, op: str, ins: list, in_shapes: list, shape, known: dict):
    """The value of node n if it is known when binding for these shapes, else None: a shape reader
    of an input whose shape is known, or a pure op of bind-time values (constants and such folds).
    With a batch dimension of None, a mean's gradient divides by a count computed from the batch's
    shape; for one set of feed shapes that chain (shape -> gather -> reduce_prod -> cast ...) is a
    constant, and its kernel calls cost the MNIST MLP's training step ~15 us of ~140."""
    opdef = get_op(op)
    if opdef.random or opdef.stateful or opdef.reference is None or opdef.fusion == "source" \
            or isinstance(graph.spec(n), TupleSpec) or not _known(shape) or int(np.prod(shape, dtype=np.int64)) > FOLD_MAX_ELEMENTS:
        return None
    if opdef.reads_shape_only and _known(in_shapes[0]):
        vals = [np.broadcast_to(np.zeros((), graph.spec(ins[0]).dtype), in_shapes[0])]
    elif ins and all(i in known for i in ins):
        vals = [known[i] for i in ins]
    else:
        return None
    try:
        val = np.asarray(opdef.reference(vals, graph.attrs(n)))
    except Exception:       # the run raises the reference's error, as without the fold
        return None
    spec = graph.spec(n)
    if val.shape != tuple(shape) or val.dtype != spec.dtype:
        return None
    val = np.array(val, order="C")          # a copy (a reference may return a view of its input)
    val.flags.writeable = False
    return val


def lower(graph: Graph, fetches: list, feeds: list, feed_shapes: dict, reference_only: bool = False,
          order: list | None = None) -> Plan:
    """Bind every scheduled node to a kernel for ``feed_shapes`` and plan the buffers (both
    halves below). ``reference_only``: every node runs its numpy reference (the baseline tier of
    tiered execution: it runs at once, with nothing to compile)."""
    return complete(bind_schedule(graph, fetches, feeds, feed_shapes, reference_only, order))


@dataclass
class Bindings:
    """A schedule whose nodes are bound to kernels not compiled yet (``bind_schedule``)."""
    graph: Graph
    fetches: list
    feeds: list
    feed_shapes: dict
    steps: list
    contexts: dict

    def kernels(self) -> list:
        """The ``(dispatcher, signature)`` pairs its kernels need that this process lacks."""
        pairs = [(d, tuple(sig)) for st in self.steps if st.kind == "call" for d, sig in st.call.warm]
        return list(dict.fromkeys((d, sig) for d, sig in pairs if sig not in d.overloads))


def bind_schedule(graph: Graph, fetches: list, feeds: list, feed_shapes: dict,
                  reference_only: bool = False, order: list | None = None) -> Bindings:
    """Steps 1-2 of lowering: shapes, bind-time folds and each node's kernel, nothing compiled.
    ``order``: the run's schedule when the caller has it (it depends on the graph, not on shapes)."""
    fed = set(feeds)
    if order is None:
        order = schedule(graph, fetches, {n: None for n in fed})
    fetch_set = set(fetches)
    shapes: dict[int, tuple | None] = {}
    known: dict[int, np.ndarray] = {}       # values known at bind time: constants and folds
    contexts: dict[int, NodeCtx] = {}
    tuples: dict[int, TupleSpec] = {}       # control flow nodes' result specs (tuple_get reads them)
    steps: list[Step] = []
    for n in order:
        op = graph.op(n)
        spec = graph.spec(n)
        ins = graph.inputs(n)
        if n in fed:
            st = Step(n, op, "feed", [], shape=tuple(feed_shapes[n]), dtype=spec.dtype, storage="ext")
        elif op == "placeholder":
            st = Step(n, op, "unfed", [], storage="ext")
        elif op == "variable":
            st = Step(n, op, "var", [], shape=tuple(spec.shape), dtype=spec.dtype, storage="ext")
        elif op == "constant":
            v = graph.attrs(n)["value"]
            st = Step(n, op, "const", [], shape=tuple(np.shape(v)), dtype=spec.dtype, storage="ext")
            known[n] = v
        else:
            opdef = get_op(op)
            in_shapes = [shapes.get(i) for i in ins]
            shape = None
            if all(_known(s) for s in in_shapes):
                try:
                    out = opdef.infer([tuples.get(i) or TensorSpec(tuple(s), graph.spec(i).dtype)
                                       for s, i in zip(in_shapes, ins)], graph.attrs(n))
                    shape = tuple(out.shape) if _known(out.shape) else None
                    if isinstance(out, TupleSpec):      # a loop's results, concrete for these shapes
                        tuples[n] = out
                except Exception:
                    shape = None
            kind = "assign" if opdef.state_update else ("random" if opdef.random else "call")
            val = _fold(graph, n, op, ins, in_shapes, shape, known) if kind == "call" and n not in fetch_set \
                else None
            if val is not None:
                kind = "const"
                known[n] = val
            st = Step(n, op, kind, list(ins) if val is None else [], shape=shape, dtype=spec.dtype,
                      value=val)
            if kind == "const":
                st.storage = "ext"
            elif kind == "call":
                ctx = NodeCtx(n, op, graph.attrs(n), in_shapes, [graph.spec(i).dtype for i in ins],
                              shape, spec.dtype, tuple(spec.shape), [graph.spec(i).shape for i in ins])
                if shape is None:
                    st.call = reference_call(ctx)
                elif reference_only:        # the baseline tier: numpy, nothing to compile
                    st.call = baseline_call(ctx)
                else:
                    st.call = bind(ctx, compile=False)
                contexts[n] = ctx
            else:
                st.storage = "fresh" if kind == "assign" else "value"
        shapes[n] = st.shape
        steps.append(st)
    return Bindings(graph, list(fetches), list(feeds), dict(feed_shapes), steps, contexts)


def complete(b: Bindings) -> Plan:
    """Step 3 of lowering: the kernels compiled (or loaded), then the buffers planned."""
    # the plan's kernels compile together (on two processes when none is cached), then each call
    # is checked: one whose kernels do not compile runs its numpy reference
    calls = [st for st in b.steps if st.kind == "call"]
    cache.compile_parallel([pair for st in calls for pair in st.call.warm])
    fetch_set = set(b.fetches)
    for st in calls:
        st.call = finish(b.contexts[st.node], st.call)
        st.storage = ("fresh" if st.node in fetch_set else "buf") if st.call.mode == "out" else "value"
    plan = Plan(b.graph, b.fetches, b.feeds, b.steps, tuple(tuple(b.feed_shapes[f]) for f in b.feeds))
    _hand_over_updates(b.graph, b.steps, fetch_set)
    _serial_beside_blas(b.steps)
    _plan_memory(plan)
    return plan


def mixed(b: Bindings, baseline: Plan, ready) -> Plan:
    """A plan of ``b`` between the tiers: each call whose kernels are all in ``ready`` (pairs
    compiled into the disk cache) or in this process runs them, every other call the baseline
    plan's call for its node (tiered execution swaps such plans in as kernels land). ``b`` is not
    changed: its own ``complete`` makes the compiled plan later."""
    base = baseline._by_node
    steps = []
    for st in b.steps:
        st = dataclasses.replace(st, scratch_buffers=[])
        if st.kind == "call":
            done = all((d, tuple(sig)) in ready or tuple(sig) in d.overloads for d, sig in st.call.warm)
            st.call = copy.copy(st.call if done else base[st.node].call)
        steps.append(st)
    return complete(dataclasses.replace(b, steps=steps))


def _hand_over_updates(graph: Graph, steps: list, fetch_set: set) -> None:
    """A kernel result that only feeds plain ``assign``s (directly, or through its ``fused_output``
    views, each used by nothing else) is written into a fresh array each run, and those assigns keep
    it as the variable's new value instead of a copy out of the pool: the pool shrinks by every
    updated variable (an optimizer's whole state)."""
    consumers: dict[int, list] = {}
    for s in steps:
        for pos, u in enumerate(s.inputs):
            consumers.setdefault(u, []).append((s, pos))

    def sole_assign(n):             # the plain assign that is the one and only use of value n
        use = consumers.get(n, [])
        if n in fetch_set or len(use) != 1:
            return None
        s, pos = use[0]
        return s if s.kind == "assign" and get_op(s.op).state_update == "assign" and pos == 1 else None

    for p in steps:
        if p.kind != "call" or p.storage != "buf" or p.node in fetch_set or not consumers.get(p.node):
            continue
        takers, parts = [], set()
        for c, pos in consumers[p.node]:
            if c.kind == "assign":
                a = sole_assign(p.node)
            elif c.op == "fused_output" and graph.attrs(c.node)["index"] not in parts:
                parts.add(graph.attrs(c.node)["index"])     # distinct parts: no two variables share
                a = sole_assign(c.node)
            else:
                a = None
            if a is None:
                break
            takers.append(a)
        else:
            p.storage = "fresh"
            for a in takers:
                a.takes_value = True


def _serial_beside_blas(steps: list) -> None:
    """In a plan that runs BLAS GEMMs, batch-split kernels run as one call on the calling thread.
    After each threaded GEMM, OpenBLAS's idle workers spin for about 0.1 s (measured: 110 ms of
    user CPU after one 512x512 sgemm), so a split kernel's second half shares a core with one of
    them and arrives late. Measured on the MNIST CNN (2 cores, medians of interleaved rounds): the
    training step 4-10% faster with no split kernels, the GEMM-free single-channel conv 1.3x
    slower without them. Splits stay in plans with no GEMM."""
    calls = [s.call for s in steps if s.kind == "call" and s.call is not None]
    if not any(getattr(fn, "blas", False) for c in calls for fn, _ in c.steps):
        return
    for c in calls:
        c.steps = [(getattr(fn, "serial", fn), descs) for fn, descs in c.steps]


def _plan_memory(plan: Plan) -> None:
    """Liveness-based best-fit assignment of pool buffers (outputs and scratch)."""
    steps = plan.steps
    index = {s.node: i for i, s in enumerate(steps)}
    roots: dict[int, frozenset] = {}
    last_use: dict[int, int] = {}        # value (node) or ("scratch", step, j) -> last step index
    end = len(steps)
    for i, s in enumerate(steps):
        if s.storage == "buf":
            roots[s.node] = frozenset([s.node])
        elif s.storage == "value":
            r = set()
            for u in s.inputs:
                r |= roots.get(u, frozenset())
            roots[s.node] = frozenset(r)
        else:
            roots[s.node] = frozenset()
        for u in s.inputs:
            for b in roots.get(u, ()):
                last_use[b] = i
    for f in plan.fetches:
        for b in roots.get(f, ()):
            last_use[b] = end
    free: list[int] = []           # buffer ids not in use
    caps: list[int] = []
    owner_release: dict[int, list] = {}
    naive = 0

    def take(nbytes: int) -> int:
        fits = [b for b in free if caps[b] >= nbytes]
        if fits:
            b = min(fits, key=lambda b: caps[b])
        elif free:
            b = max(free, key=lambda b: caps[b])
            caps[b] = nbytes
        else:
            caps.append(nbytes)
            return len(caps) - 1
        free.remove(b)
        return b

    fetch_bytes = 0
    for i, s in enumerate(steps):
        if s.storage == "fresh" and s.shape is not None and not s.takes_value:
            fetch_bytes += _nbytes(s.shape, s.dtype)
        if s.kind != "call":
            pass
        else:
            if s.storage == "buf":
                nb = _nbytes(s.shape, s.dtype)
                naive += nb
                s.buffer = take(_round(nb))
                owner_release.setdefault(last_use.get(s.node, i), []).append(s.buffer)
            s.scratch_buffers = []
            for dt, shp in s.call.scratch:
                nb = _nbytes(shp, dt)
                naive += nb
                s.scratch_buffers.append(take(_round(nb)))
            free.extend(s.scratch_buffers)
        for b in owner_release.pop(i, []):
            free.append(b)
    plan.buffers = caps
    plan.fetch_bytes = fetch_bytes
    plan.naive_bytes = naive + fetch_bytes
    del index


def _round(nb: int) -> int:
    return max(ALIGN, -(-nb // ALIGN) * ALIGN)
