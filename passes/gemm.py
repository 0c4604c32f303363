"""Fewer, larger GEMMs: sums of matrix products become one product over stacked rows.

A weight gradient of a recurrent layer is a sum over time steps: an unrolled LSTM's
``dU = sum_t h_{t-1}^T @ dz_t`` is 28 small GEMMs and 27 adds, and its input kernel's
``dW = sum_t x_t^T @ dz_t`` a batched product summed over its batch axis. Both are one GEMM:
``sum_i a_i^T @ b_i == concat(a_i)^T @ concat(b_i)`` (rows stacked in the same order on both
sides). One (T*B)-row GEMM runs at BLAS's large-matrix speed and on both cores; the small ones are
sequential calls with a fixed cost each.

Like ``layout``, these rewrites keep every value but may change the last bits of a result: the
merged GEMM sums the same products in another order (BLAS already picks its own order inside a
product). They run after CSE (equal operands are one node by then) and before fusion (which wraps
matmuls into fused contractions).

    >>> import graphc as gc
    >>> from graphc.passes import optimize
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     hs = [gc.placeholder("float32", (None, 4), name=f"h{i}") for i in range(4)]
    ...     ds = [gc.placeholder("float32", (None, 3), name=f"d{i}") for i in range(4)]
    ...     p = [gc.matmul(h, d, transpose_a=True) for h, d in zip(hs, ds)]
    ...     total = p[0] + p[1] + p[2] + p[3]
    >>> opt, report = optimize(g, [total], feeds=hs + ds, pipeline=["merge_gemms"])
    >>> sorted(opt.op(n) for n in opt.topo_order() if opt.op(n) != "placeholder")
    ['concat', 'concat', 'matmul']
"""
from __future__ import annotations

from graphc.ir import Graph

from .core import PassContext, PassResult, new_node, remove_unused

# The fewest products a sum must have before they merge. Measured (float32, 2 cores, OpenBLAS):
# 28 products of (32 x 64)^T @ (32 x 256) took 291 us as separate GEMMs plus 44 us of adds, and
# 130-220 us as one (896-row) GEMM plus ~15 us to stack the left operands; at 4 products the
# copies cost about what the calls save.
MIN_PRODUCTS = 4


def _is_tn_product(g: Graph, n: int, ctx: PassContext) -> bool:
    """``n`` is ``a^T @ b`` of two matrices, used once, neither fetched nor fed."""
    if g.op(n) != "matmul" or ctx.is_fetched(n) or ctx.is_fed(n) or g.num_uses(n) != 1:
        return False
    at = g.attrs(n)
    a, b = g.inputs(n)
    return at["transpose_a"] and not at["transpose_b"] and len(g.spec(a).shape) == 2 \
        and len(g.spec(b).shape) == 2


def _sum_terms(g: Graph, root: int, ctx: PassContext) -> list[int]:
    """The terms of the tree of ``add`` nodes under ``root``: inner adds have root's spec (no
    broadcasting) and no other consumer."""
    spec, terms, todo = g.spec(root), [], [root]
    while todo:
        for i in g.inputs(todo.pop()):
            if g.op(i) == "add" and g.spec(i) == spec and g.num_uses(i) == 1 \
                    and not ctx.is_fetched(i) and not ctx.is_fed(i):
                todo.append(i)
            else:
                terms.append(i)
    return terms


def _is_inner_add(g: Graph, n: int, ctx: PassContext) -> bool:
    """``n`` is an inner node of a larger add tree (its root handles it)."""
    if g.num_uses(n) != 1 or ctx.is_fetched(n):
        return False
    (u,) = g.users(n)
    return g.op(u) == "add" and g.spec(u) == g.spec(n)


def _rows(g: Graph, parts: list[int], like: int) -> tuple[int, list[int]]:
    """``parts`` (matrices with equal column counts) stacked by rows, and the order used: an
    existing ``stack`` of exactly these matrices is reused (an RNN's gate gradients are stacked
    for the input kernel's gradient already), else a new ``concat``."""
    if len(set(parts)) == len(parts):
        for s in g.users(parts[0]):
            if g.op(s) == "stack" and g.attrs(s)["axis"] == 0 and sorted(g.inputs(s)) == sorted(parts):
                cols = g.spec(parts[0]).shape[1]
                return new_node(g, "reshape", [s], {"shape": (-1, cols)}, like), list(g.inputs(s))
    return new_node(g, "concat", list(parts), {"axis": 0}, like), list(parts)


def sum_of_products(g: Graph, root: int, ctx: PassContext) -> int | None:
    # sum_i a_i^T @ b_i (an add tree of MIN_PRODUCTS or more) -> concat(a_i)^T @ concat(b_i)
    if g.op(root) != "add" or _is_inner_add(g, root, ctx):
        return None
    terms = _sum_terms(g, root, ctx)
    spec = g.spec(root)
    prods = [t for t in terms if _is_tn_product(g, t, ctx) and g.spec(t) == spec]
    if len(prods) < MIN_PRODUCTS:
        return None
    pairs = {g.inputs(p)[1]: g.inputs(p)[0] for p in prods}
    if len(pairs) == len(prods):            # distinct right operands: an existing stack may serve
        b_rows, order = _rows(g, [g.inputs(p)[1] for p in prods], root)
        a_rows, _ = _rows(g, [pairs[b] for b in order], root)
    else:
        a_rows, _ = _rows(g, [g.inputs(p)[0] for p in prods], root)
        b_rows, _ = _rows(g, [g.inputs(p)[1] for p in prods], root)
    out = new_node(g, "matmul", [a_rows, b_rows], {"transpose_a": True, "transpose_b": False}, root)
    for t in terms:
        if t not in prods:
            out = new_node(g, "add", [out, t], {}, root)
    return out


def summed_batch_product(g: Graph, n: int, ctx: PassContext) -> int | None:
    # reduce_sum(A^T @ B, axis=0) over a batch of matrices -> reshape(A)^T @ reshape(B): one GEMM
    if g.op(n) != "reduce_sum" or tuple(g.attrs(n)["axis"]) != (0,) or g.attrs(n)["keepdims"]:
        return None
    (p,) = g.inputs(n)
    if g.op(p) != "matmul" or ctx.is_fetched(p) or ctx.is_fed(p) or g.num_uses(p) != 1:
        return None
    a, b = g.inputs(p)
    at = g.attrs(p)
    sa, sb = g.spec(a).shape, g.spec(b).shape
    if not at["transpose_a"] or at["transpose_b"] or len(sa) != 3 or len(sb) != 3 \
            or sa[0] is None or sa[0] != sb[0] or None in (sa[2], sb[2]):
        return None
    a2 = new_node(g, "reshape", [a], {"shape": (-1, sa[2])}, n)
    b2 = new_node(g, "reshape", [b], {"shape": (-1, sb[2])}, n)
    return new_node(g, "matmul", [a2, b2], {"transpose_a": True, "transpose_b": False}, n)


def _drop_replaced(g: Graph, n: int, ctx: PassContext) -> None:
    """Remove ``n`` and the adds and products under it that only it used (what a rule replaced)."""
    todo = [n]
    while todo:
        m = todo.pop()
        if m in g and g.op(m) in ("add", "matmul", "reduce_sum"):
            ins = g.inputs(m)
            if remove_unused(g, [m], ctx):
                todo.extend(ins)


RULES = {"sum_of_products": sum_of_products, "summed_batch_product": summed_batch_product}


def merge_gemms(g: Graph, ctx: PassContext) -> PassResult:
    """Apply ``RULES`` once to every node, roots of add trees included (a rule's new nodes are
    products and copies no rule rewrites again)."""
    res = PassResult()
    fired: dict[str, int] = {}
    for n in list(g.topo_order())[::-1]:      # consumers first: an add tree is seen from its root
        if n not in g:
            continue
        for name, rule in RULES.items():
            new = rule(g, n, ctx)
            if new is not None and g.spec(new) == g.spec(n):
                ctx.replace(g, n, new)
                _drop_replaced(g, n, ctx)
                fired[name] = fired.get(name, 0) + 1
                res.changed += 1
                break
    if res.changed:
        res.notes = [f"{k} x{v}" for k, v in sorted(fired.items())]
    return res
