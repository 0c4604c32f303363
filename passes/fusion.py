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
  Before the regions are formed, state updates are made fusable: an
  ``assign_add``/``assign_sub`` of an elementwise delta to a variable with no
  other state op becomes ``assign(v, v + delta)``, and readers of such a sole
  assign read the assigned value itself (same value; the assign still runs
  through its ``group``). After them, *multi-output* fusion merges regions of
  one fully known shape and dtype that feed each other or share a full-size
  input (the m / v / var updates of one parameter) into one
  ``fused_multi_output`` node computed by one loop nest, its results reaching
  their consumers through ``fused_output`` views; a merged group with a single
  result is an ordinary ``fused_elementwise``. A group must absorb a node or
  feed an assign (else the graph would grow by one node for one kernel less). Merges keep the graph acyclic
  (a bounded search for a path leaving and re-entering the group) and leave
  the nodes that ``fuse_epilogue``/``fuse_reduction`` will take alone.
* ``fuse_epilogue``: ``matmul``/``conv2d`` whose only consumer is elementwise
  (plain or fused) becomes one ``fused_contraction`` (``MatMulBiasAct``...).
* ``fuse_reduction``: an elementwise producer (plain or fused) whose only
  consumer is a ``reduce_*`` is folded into a ``fused_reduction``.
"""
from __future__ import annotations

from graphc.ir import Graph, TensorSpec
from graphc.ops.registry import get_op

from .core import PassContext, PassResult, attrs_tuple, fully_known, new_node, numel, rewrite_in_place


def is_elementwise(g: Graph, n: int, ctx: PassContext) -> bool:
    return get_op(g.op(n)).fusion == "elementwise" and not ctx.is_fed(n)


def n_steps(g: Graph, n: int) -> int:
    return len(g.attrs(n)["program"]) if g.op(n) == "fused_elementwise" else 1


def program_of(g: Graph, n: int) -> tuple:
    """The program of an elementwise node: its own, or one step over its inputs."""
    if g.op(n) == "fused_elementwise":
        return g.attrs(n)["program"]
    return ((g.op(n), tuple(range(len(g.inputs(n)))), attrs_tuple(g.attrs(n))),)


def region_program(g: Graph, members: list[int], values: dict | None = None) -> tuple[list[int], tuple]:
    """External inputs and the program of ``members`` (topologically sorted; the last is the root).

    ``values``, when given, receives each member's env index in the program."""
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
    if values is not None:
        values.update((m, val[m]) for m in members)
    return ext, tuple(steps)


def _check_spec(g: Graph, n: int, op: str, attrs: dict, inputs: list[int]) -> bool:
    """The fused record's shape rule reproduces ``n``'s spec exactly."""
    try:
        spec = get_op(op).infer([g.spec(i) for i in inputs], attrs)
    except Exception:  # noqa: BLE001 - a fusion that does not type-checks is simply skipped
        return False
    return spec == g.spec(n)


def fuse_elementwise(g: Graph, ctx: PassContext) -> PassResult:
    """State updates made fusable, maximal single-output regions of elementwise ops -> one
    ``fused_elementwise`` each, then same-shape regions merged into multi-output kernels."""
    res = PassResult()
    _expose_state_updates(g, ctx, res)
    _fuse_regions(g, ctx, res)
    _fuse_multi_output(g, ctx, res)
    return res


def _expose_state_updates(g: Graph, ctx: PassContext, res: PassResult) -> None:
    """``assign_add(v, d)`` -> ``assign(v, v + d)`` (d elementwise, v's only state op); readers
    of v's only assign read its value directly (the assign keeps running through its group/fetch)."""
    n_state: dict[int, int] = {}
    for n in g.nodes():
        if get_op(g.op(n)).state_update:
            v = g.inputs(n)[0]
            n_state[v] = n_state.get(v, 0) + 1
    for n in g.topo_order():
        update = get_op(g.op(n)).state_update
        if not update or ctx.is_fed(n):
            continue
        v, d = g.inputs(n)
        if update != "assign":
            # assign_add/sub(v, d) -> assign(v, add/sub(v, d)): state_update names the elementwise op
            # update_value applies (same value), which the delta's region can then take in
            if n_state[v] != 1 or not is_elementwise(g, d, ctx):
                continue
            try:
                val = new_node(g, update, [v, d], {}, like=n)
            except Exception:  # noqa: BLE001 - a delta that does not type-check stays as it is
                continue
            if g.spec(val) != g.spec(v):
                g.remove([val])
                continue
            rewrite_in_place(g, n, "assign", {}, [v, val])
            res.changed += 1
        if g.op(n) != "assign" or n_state[v] != 1:  # readers of one of several updates of v
            continue                                  # also order them: keep
        readers = [(c, pos) for c, pos in g.consumers(n) if g.op(c) != "group"]
        if readers and (ctx.is_fetched(n) or len(readers) < g.num_uses(n)):
            val = g.inputs(n)[1]
            for c, pos in readers:
                g.set_input(c, pos, val)
            res.changed += 1


def _fuse_regions(g: Graph, ctx: PassContext, res: PassResult) -> None:
    """Maximal single-output regions of elementwise ops -> one ``fused_elementwise`` each."""
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
                outside[i] = outside.get(i, g.num_uses(i)) - 1
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


MAX_OUTPUTS = 8          # results of one multi-output kernel
PATH_BUDGET = 2000       # nodes the acyclicity search may visit per merge (else: no merge)
SHARE_SCAN = 16          # consumers of a shared input looked at


def _creates_cycle(g: Graph, group: set, pos: dict, hi: int) -> bool:
    """Some path leaves ``group`` and re-enters it (merging it into one node would be a cycle).
    Bounded: an exhausted budget counts as a cycle."""
    stack = [v for m in group for v in g.users(m) if v not in group and pos.get(v, hi) < hi]
    seen: set = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if len(seen) > PATH_BUDGET:
            return True
        for v in g.users(n):
            if v in group:
                return True
            if pos.get(v, hi) < hi:
                stack.append(v)
    return False


def _multi_candidate(g: Graph, n: int, ctx: PassContext) -> bool:
    """An elementwise node of fully known non-scalar shape that no later fusion pass wants."""
    if not is_elementwise(g, n, ctx):
        return False
    spec = g.spec(n)
    if not fully_known(spec) or numel(spec.shape) < 2 or spec.dtype.kind not in "fiub":
        return False
    users = g.users(n)
    if len(users) == 1 and not ctx.is_fetched(n) and get_op(g.op(users[0])).reduce:
        return False  # fuse_reduction's prologue
    return not any(get_op(g.op(i)).epilogue and g.num_uses(i) == 1 and not ctx.is_fetched(i)
                   for i in g.inputs(n))  # fuse_epilogue's epilogue


def _fuse_multi_output(g: Graph, ctx: PassContext, res: PassResult) -> None:
    """Same-spec elementwise regions that feed each other or share a full-size input -> one kernel."""
    order = g.topo_order()
    pos = {n: i for i, n in enumerate(order)}
    cap = ctx.options["max_fusion_steps"]
    parent: dict[int, int] = {}
    members: dict[int, list] = {}

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def n_outputs(ms):
        mset = set(ms)
        return sum(1 for m in ms if ctx.is_fetched(m) or any(v not in mset for v in g.users(m)))

    for c in order:
        if not _multi_candidate(g, c, ctx):
            continue
        parent[c] = c
        members[c] = [c]
        spec = g.spec(c)
        partners: list[int] = []
        for i in dict.fromkeys(g.inputs(c)):
            if i in parent:
                if g.spec(i) == spec:
                    partners.append(i)   # producer -> consumer
            elif g.op(i) != "constant" and fully_known(g.spec(i)) \
                    and numel(g.spec(i).shape) == numel(spec.shape):
                for u, _ in g.consumers(i)[:SHARE_SCAN]:  # siblings reading the same full-size input
                    if u in parent and u != c and g.spec(u) == spec:
                        partners.append(u)
        for p in partners:
            a, b = find(c), find(p)
            if a == b:
                continue
            merged = members[a] + members[b]
            if sum(n_steps(g, m) for m in merged) > cap or n_outputs(merged) > MAX_OUTPUTS:
                continue
            if _creates_cycle(g, set(merged), pos, max(pos[m] for m in merged)):
                continue
            parent[b] = a
            members[a] = merged
            del members[b]
    absorbed: list[int] = []
    made = []
    for root, ms in members.items():
        if len(ms) < 2:
            continue
        ms.sort(key=pos.__getitem__)
        mset = set(ms)
        outs = [m for m in ms if ctx.is_fetched(m) or any(v not in mset for v in g.users(m))]
        if len(outs) == len(ms) and not any(get_op(g.op(v)).state_update for o in outs for v in g.users(o)):
            continue  # nothing absorbed and no state update: the graph would only grow by one node
        values: dict = {}
        ext, program = region_program(g, ms, values)
        if len(outs) == 1:   # one result: an ordinary (larger) single-output region
            (out,) = outs
            if out != ms[-1] or not _check_spec(g, out, "fused_elementwise", {"program": program}, ext):
                continue
            rewrite_in_place(g, out, "fused_elementwise", {"program": program}, ext)
        else:
            attrs = {"program": program, "outputs": tuple(values[o] for o in outs)}
            spec = g.spec(outs[0])
            want = TensorSpec((len(outs),) + tuple(spec.shape), spec.dtype)
            try:
                ok = get_op("fused_multi_output").infer([g.spec(i) for i in ext], attrs) == want
            except Exception:  # noqa: BLE001 - a group that does not type-check is skipped
                ok = False
            if not ok:
                continue
            multi = g.add_node("fused_multi_output", ext, attrs, want, name=g.name(outs[0]) + "/multi",
                               trace=g.trace(outs[0]))
            for k, o in enumerate(outs):
                rewrite_in_place(g, o, "fused_output", {"index": k}, [multi])
        absorbed.extend(m for m in ms if m not in outs)
        made.append((len(outs), len(program)))
        res.changed += 1
    g.remove(absorbed)
    if made:
        res.notes.append(f"{len(made)} multi-output group(s), "
                         f"{sum(k for k, _ in made)} result(s), {sum(s for _, s in made)} step(s)")


def fuse_epilogue(g: Graph, ctx: PassContext) -> PassResult:
    """``matmul``/``conv2d`` + its only (elementwise) consumer -> one ``fused_contraction``."""
    res = PassResult()
    absorbed = []
    for c in g.topo_order():
        if not get_op(g.op(c)).epilogue or ctx.is_fed(c) or ctx.is_fetched(c):
            continue
        users = g.users(c)
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
        if not get_op(g.op(r)).reduce or ctx.is_fed(r):
            continue
        (p,) = g.inputs(r)
        if not is_elementwise(g, p, ctx) or ctx.is_fetched(p) or g.num_uses(p) != 1:
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
