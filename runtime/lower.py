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
from .kernels import Call, In, NodeCtx, bind, finish, reference_call

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
    offset: int = 0            # bytes into ``buffer``: a piece written in place of a join (_join_in_place)
    alias: tuple | None = None  # storage "alias": the join's view of ``buffer`` (see _join_geometry)


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
    joins: dict = field(default_factory=dict)         # join node -> the nodes written in place of it

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
            if s.storage in ("buf", "alias"):
                return f"buf{s.buffer}" + (f"+{s.offset}" if s.offset else "") + \
                    (f"@{s.alias[0]}{list(s.alias[2])}" if s.alias else "")
            return {"feed": "feed:", "var": "var:", "const": "const:"}.get(s.kind, "%") + g.name(n)
        for s in self.steps:
            spec = f"{s.dtype.name}{list(s.shape)}" if s.shape is not None and s.dtype is not None else "?"
            if s.storage == "alias":
                lines.append(f"  {s.op}: pieces written in place -> {where(s.node)} {spec}   # {g.name(s.node)}")
            elif s.kind == "call":
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
    plan.joins = _join_in_place(b.graph, b.steps)
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


def _join_in_place(graph: Graph, steps: list) -> dict:
    """Joins (``stack``, ``concat``) whose pieces are mostly the whole output of a kernel, or the
    same view (a slice) of it, become views: those kernels write consecutive slabs of one buffer,
    any other piece (a feed, a numpy result) is copied into its slab when the join's line runs, and
    the join is a strided view of the buffer (storage ``alias``), not a copy. The unrolled
    row-LSTM's training step joined its 28 steps' ``h`` (for ``dU``; the first is a zero state)
    and gate gradients (for ``dW``, ``dU``) with copies of 75 and 125 us. Returns {join node: the
    piece written in place in each slab, or None}."""
    by_node = {s.node: s for s in steps}
    joins: dict = {}
    taken: set = set()
    for s in steps:
        if s.kind != "call" or s.op not in ("stack", "concat") or s.storage != "buf" or len(s.inputs) < 2:
            continue
        pieces, views, mine = [], [], set()
        for u in s.inputs:
            p, v = by_node.get(u), None
            if p is not None and p.kind == "call" and p.storage == "value" and len(p.inputs) == 1 \
                    and getattr(p.call.steps[0][0], "view_only", False):
                v, p = p, by_node.get(p.inputs[0])
            ok = p is not None and p.kind == "call" and p.storage == "buf" \
                and p.node not in taken and p.node not in mine
            pieces.append(p if ok else None)
            views.append(v)
            if ok:
                mine.add(p.node)
        if 2 * sum(p is not None for p in pieces) <= len(pieces):
            continue
        geometry = _join_geometry(s, graph.attrs(s.node)["axis"], pieces, views,
                                  [by_node.get(u) for u in s.inputs])
        if geometry is not None:
            s.storage, s.alias = "alias", geometry
            joins[s.node] = [p.node if p is not None else None for p in pieces]
            taken.update(p.node for p in pieces if p is not None)
    return joins


def _join_geometry(join, axis: int, pieces: list, views: list, inputs: list):
    """``(byte offset, shape, strides, copies)`` of ``join``'s value (joined along ``axis``) as a
    view of a buffer holding the outputs of its ``pieces`` back to back (None: a slab filled by
    copying the input), or None when the join is not such a view. ``copies``: ``(slab, input
    node, (byte offset, shape, strides))`` for the copied inputs. Found on a zeroed buffer of that
    size: each piece's view is made as the run makes it, and the joined axis must step through
    them at a constant distance."""
    made = [(t, p) for t, p in enumerate(pieces) if p is not None]
    shape, dtype = made[0][1].shape, np.dtype(made[0][1].dtype)
    if any(p.shape != shape or np.dtype(p.dtype) != dtype or (views[t] is None) != (views[made[0][0]] is None)
           for t, p in made):
        return None
    k, nb = len(pieces), _nbytes(shape, dtype)
    if nb == 0 or join.shape is None or np.dtype(join.dtype) != dtype:
        return None
    raw = np.zeros(k * nb, np.uint8)
    parts = []
    for t, _ in made:
        a = raw[t * nb:(t + 1) * nb].view(dtype).reshape(shape)
        if views[t] is not None:
            fn, descs = views[t].call.steps[0]
            a = fn(*[a if isinstance(d, In) else d.value for d in descs])
            if not isinstance(a, np.ndarray) or a.size == 0 or not np.shares_memory(a, raw):
                return None
        parts.append((t, a.ctypes.data - raw.ctypes.data, a.shape, a.strides))
    (t0, off0, pshape, pstrides), (t1, off1) = parts[0], parts[1][:2]
    if (off1 - off0) % (t1 - t0):
        return None
    step = (off1 - off0) // (t1 - t0)
    off = off0 - t0 * step
    if any((sh, st) != (pshape, pstrides) or o != off + t * step for t, o, sh, st in parts):
        return None
    extent = sum((n - 1) * abs(st) for n, st in zip(pshape, pstrides)) + dtype.itemsize
    copies = []
    for t, p in enumerate(pieces):
        if p is None:
            src = inputs[t]
            if src is None or src.shape is None or tuple(src.shape) != tuple(pshape) or \
                    np.dtype(src.dtype) != dtype or not 0 <= off + t * step <= len(raw) - extent:
                return None
            copies.append((t, join.inputs[t], (off + t * step, pshape, pstrides)))
    if join.op == "stack":
        axis %= len(pshape) + 1
        vshape, vstrides = pshape[:axis] + (k,) + pshape[axis:], pstrides[:axis] + (step,) + pstrides[axis:]
    else:
        axis %= len(pshape)
        if pshape[axis] != 1 and step != pshape[axis] * pstrides[axis]:
            return None
        vshape = pshape[:axis] + (k * pshape[axis],) + pshape[axis + 1:]
        vstrides = pstrides[:axis] + (step if pshape[axis] == 1 else pstrides[axis],) + pstrides[axis + 1:]
    return (off, vshape, vstrides, copies) if tuple(vshape) == tuple(join.shape) else None


def _plan_memory(plan: Plan) -> None:
    """Liveness-based best-fit assignment of pool buffers (outputs and scratch). The pieces of a
    join written in place (``plan.joins``) share one buffer, live from the first piece to the last
    use of any piece or of the join."""
    steps = plan.steps
    index = {s.node: i for i, s in enumerate(steps)}
    group = {p: j for j, ps in plan.joins.items() for p in ps if p is not None}     # piece -> its join
    slot = {p: t for ps in plan.joins.values() for t, p in enumerate(ps) if p is not None}
    group_buffer: dict[int, int] = {}
    roots: dict[int, frozenset] = {}
    last_use: dict[int, int] = {}        # value (node) or ("scratch", step, j) -> last step index
    end = len(steps)
    for i, s in enumerate(steps):
        if s.storage == "buf":
            roots[s.node] = frozenset([group.get(s.node, s.node)])
        elif s.storage == "alias":
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
            if s.storage == "buf" and s.node in group:
                j, nb = group[s.node], _nbytes(s.shape, s.dtype)
                if j not in group_buffer:
                    naive += nb * len(plan.joins[j])
                    group_buffer[j] = take(_round(nb * len(plan.joins[j])))
                    owner_release.setdefault(last_use.get(j, i), []).append(group_buffer[j])
                s.buffer, s.offset = group_buffer[j], slot[s.node] * nb
            elif s.storage == "buf":
                nb = _nbytes(s.shape, s.dtype)
                naive += nb
                s.buffer = take(_round(nb))
                owner_release.setdefault(last_use.get(s.node, i), []).append(s.buffer)
            elif s.storage == "alias":
                s.buffer = group_buffer[s.node]
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
