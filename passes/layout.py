"""Operand layouts for the kernels: rewrites that keep every value but hand BLAS its operands in
the layout it runs fastest on. They run after CSE (equal operands are one node by then) and
before fusion (which wraps matmuls into fused contractions).

Unlike the algebraic rules of ``simplify``, these may change the last bit of a result: BLAS can
sum a product in another order when an operand's layout changes.

    >>> import graphc as gc
    >>> from graphc.passes import optimize
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     w = gc.placeholder("float32", (8, 4), name="w")
    ...     xs = [gc.placeholder("float32", (2, 4), name=f"x{i}") for i in range(3)]
    ...     ys = [gc.matmul(x, w, transpose_b=True) for x in xs]
    >>> opt, report = optimize(g, ys, feeds=[w] + xs, pipeline=["transpose_shared_rhs"])
    >>> sorted(opt.op(n) for n in opt.topo_order() if opt.op(n) != "placeholder")
    ['matmul', 'matmul', 'matmul', 'transpose']
"""
from __future__ import annotations

from graphc.ir import Graph

from .core import PassContext, PassResult, new_node, rewrite_in_place

# How many matmuls must read one operand transposed before it is transposed once for all of them.
# Measured with OpenBLAS on this class of machine (float32, 2 cores): at M = 32 rows the NT product
# takes 1.25-1.9x the NN one (32x256 @ (64x256)^T: 20 vs 10.6 us); the tiled transpose kernel
# costs about as much as one use saves, so three uses are a clear win.
MIN_SHARED_NT = 3


def transpose_shared_rhs(g: Graph, ctx: PassContext) -> PassResult:
    """``matmul(a_i, b, transpose_b=True)`` for ``MIN_SHARED_NT`` or more matmuls reading the same
    ``b`` -> ``t = transpose(b)`` once and ``matmul(a_i, t)``: an unrolled RNN's backward pass
    multiplies every step's gate gradient by the transposed recurrent kernel (``dh = dz @ U^T``)."""
    res = PassResult()
    for b in g.topo_order():
        spec = g.spec(b)
        if len(spec.shape) < 2 or g.op(b) == "transpose":
            continue
        users = [v for v in g.users(b)
                 if g.op(v) == "matmul" and g.attrs(v)["transpose_b"] and g.inputs(v)[1] == b]
        if len(users) < MIN_SHARED_NT:
            continue
        nd = len(spec.shape)
        t = new_node(g, "transpose", [b], {"perm": tuple(range(nd - 2)) + (nd - 1, nd - 2)}, users[0])
        for v in users:
            rewrite_in_place(g, v, "matmul", {**g.attrs(v), "transpose_b": False}, [g.inputs(v)[0], t])
        res.changed += len(users)
    if res.changed:
        res.notes = [f"{res.changed} matmuls read a shared transposed operand"]
    return res
