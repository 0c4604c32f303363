"""Fusion: elementwise regions, contraction epilogues, reduction prologues.

The fused nodes are the records of ``graphc.ops.fused`` (``program`` tuples of
``(op, args, attrs)`` steps). Every fusion rewrites the node that produces the
region's result *in place* (same id and name, so fetches stay valid) and removes
the nodes it absorbed.

* ``fuse_elementwise``: maximal connected regions of elementwise ops become one
  ``fused_elementwise``. A region has one output, its root: any other member
  must have all its consumers inside the region and must not be fetched, so
  no value is computed twice and nothing needed elsewhere disappears. Roots are
  tried in reverse topological order; a producer joins once all its consumers
  have (each node is looked at once per consumer: linear). Constants (also
  size-1 ones) are inputs of the fused node, never copied.
* ``fuse_epilogue``: ``matmul``/``conv2d`` whose only consumer is elementwise
  (plain or fused) becomes one ``fused_contraction`` (``MatMulBiasAct``...).
* ``fuse_reduction``: an elementwise producer (plain or fused) whose only
  consumer is a ``reduce_*`` is folded into a ``fused_reduction``.
"""
from __future__ import annotations

from graphc.ir import Graph
from graphc.ops.registry import get_op

from .core import PassContext, PassResult, attrs_tuple, rewrite_in_place

CONTRACTIONS = ("matmul", "conv2d")
REDUCTIONS = ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod",
              "reduce_any", "reduce_all")


def is_elementwise(g: Graph, n: int, ctx: PassContext) -> bool:
    return get_op(g.op(n)).fusion == "elementwise" and not ctx.is_fed(n)


def n_steps(g: Graph, n: int) -> int:
    return len(g.attrs(n)["program"]) if g.op(n) == "fused_elementwise" else 1


def program_of(g: Graph, n: int) -> tuple:
    """The program of an elementwise node: its own, or one step over its inputs."""
    if g.op(n) == "fused_elementwise":
        return g.attrs(n)["program"]
    return ((g.op(n), tuple(range(len(g.inputs(n)))), attrs_tuple(g.attrs(n))),)


def region_program(g: Graph, members: list[int]) -> tuple[list[int], tuple]:
    """External inputs and the program of ``members`` (topologically sorted; the last is the root)."""
    memset = set(members)
    ext: list[int] = []
    val: dict[int, int] = {}
    for m in members:
        for i in g.inputs(m):
            if i not in memset and i not in val:
                val[i] = len(ext)
                ext.append(i)
    n_in = len(ext)
    steps: list = []
    for m in members:
        local = [val[i] for i in g.inputs(m)]
        for op, args, attrs in program_of(g, m):  # a fused member is inlined step by step
            steps.append((op, tuple(local[a] for a in args), attrs))
            local.append(n_in + len(steps) - 1)
        val[m] = local[-1]
    return ext, tuple(steps)


def _check_spec(g: Graph, n: int, op: str, attrs: dict, inputs: list[int]) -> bool:
    """The fused record's shape rule reproduces ``n``'s spec exactly."""
    try:
        spec = get_op(op).infer([g.spec(i) for i in inputs], attrs)
    except Exception:  # noqa: BLE001 - a fusion that does not type-checks is simply skipped
        return False
    return spec == g.spec(n)


def fuse_elementwise(g: Graph, ctx: PassContext) -> PassResult:
    """Maximal single-output regions of elementwise ops -> one ``fused_elementwise`` each."""
    res = PassResult()
    order = g.topo_order()
    pos = {n: i for i, n in enumerate(order)}
    cap = ctx.options["max_fusion_steps"]
    taken: set = set()
    absorbed: list[int] = []
    sizes = []
    for root in reversed(order):
        if root in taken or not is_elementwise(g, root, ctx):
            continue
        taken.add(root)
        members = [root]
        memset = {root}
        size = n_steps(g, root)
        outside: dict[int, int] = {}  # producer -> consumer edges not yet inside the region
        stack: list[int] = []

        def enter(m):
            for i in g.inputs(m):
                outside[i] = outside.get(i, g.nx.out_degree(i)) - 1
                stack.append(i)
        enter(root)
        while stack:
            p = stack.pop()
            if outside[p] or p in memset or p in taken or ctx.is_fetched(p) \
                    or not is_elementwise(g, p, ctx):
                continue  # joins later if its other consumers join (it is pushed again then)
            if size + n_steps(g, p) > cap:
                continue
            members.append(p)
            memset.add(p)
            taken.add(p)
            size += n_steps(g, p)
            enter(p)
        if len(members) < 2:
            continue
        members.sort(key=pos.__getitem__)
        ext, program = region_program(g, members)
        attrs = {"program": program}
        if not _check_spec(g, root, "fused_elementwise", attrs, ext):
            res.notes.append(f"region at {g.name(root)} skipped: spec mismatch")
            continue
        rewrite_in_place(g, root, "fused_elementwise", attrs, ext)
        absorbed.extend(m for m in members if m != root)
        sizes.append(len(program))
        res.changed += 1
    g.remove(absorbed)
    if sizes:
        res.notes.append(f"{len(sizes)} region(s), {sum(sizes)} step(s), largest {max(sizes)}")
    return res


def fuse_epilogue(g: Graph, ctx: PassContext) -> PassResult:
    """``matmul``/``conv2d`` + its only (elementwise) consumer -> one ``fused_contraction``."""
    res = PassResult()
    absorbed = []
    for c in g.topo_order():
        if g.op(c) not in CONTRACTIONS or ctx.is_fed(c) or ctx.is_fetched(c):
            continue
        users = {v for _, v in g.nx.out_edges(c)}
        if len(users) != 1:
            continue
        (e,) = users
        if not is_elementwise(g, e, ctx):
            continue
        e_ins = g.inputs(e)
        rest: list[int] = []
        remap = []
        for i in e_ins:
            if i == c:
                remap.append(0)
            else:
                if i not in rest:
                    rest.append(i)
                remap.append(1 + rest.index(i))
        n_old, n_new = len(e_ins), 1 + len(rest)
        program = tuple((op, tuple(remap[a] if a < n_old else a - n_old + n_new for a in args), at)
                        for op, args, at in program_of(g, e))
        c_ins = g.inputs(c)
        attrs = {"contraction": g.op(c), "n_c": len(c_ins), "c_attrs": attrs_tuple(g.attrs(c)),
                 "program": program}
        inputs = c_ins + rest
        if not _check_spec(g, e, "fused_contraction", attrs, inputs):
            continue
        rewrite_in_place(g, e, "fused_contraction", attrs, inputs)
        absorbed.append(c)
        res.changed += 1
    g.remove(absorbed)
    return res


def fuse_reduction(g: Graph, ctx: PassContext) -> PassResult:
    """An elementwise producer used only by a ``reduce_*`` -> one ``fused_reduction``."""
    res = PassResult()
    absorbed = []
    for r in g.topo_order():
        if g.op(r) not in REDUCTIONS or ctx.is_fed(r):
            continue
        (p,) = g.inputs(r)
        if not is_elementwise(g, p, ctx) or ctx.is_fetched(p) or g.nx.out_degree(p) != 1:
            continue
        attrs = {"program": program_of(g, p), "reduce": g.op(r), "r_attrs": attrs_tuple(g.attrs(r))}
        inputs = g.inputs(p)
        if not _check_spec(g, r, "fused_reduction", attrs, inputs):
            continue
        rewrite_in_place(g, r, "fused_reduction", attrs, inputs)
        absorbed.append(p)
        res.changed += 1
    g.remove(absorbed)
    return res
