"""Algebraic simplification: small named rules applied with a worklist until none fires.

Each rule is ``rule(graph, node, ctx) -> replacement node id | None``; it may
add new nodes (``new_node``) but never edits existing ones. The driver only
accepts a replacement whose spec equals the node's spec *exactly* (same dtype,
same shape tuple), so a rule like ``x + 0`` never fires where the ``0`` would
broadcast ``x`` to a larger shape. When a rule fires, the consumers of the
replacement go back on the worklist, so chains simplify in one pass (linear).

Every default rule gives bit-identical results for every input, NaN and Inf
included (the one exception, stated at ``add_zero``: ``-0.0 + 0.0`` is
``+0.0``). ``x*0 -> 0`` (wrong for Inf/NaN) and ``exp(log x) -> x`` (wrong for
x <= 0) do not exist; ``log(exp x) -> x`` (exp overflows to Inf for large x)
runs only with the ``unsafe_math`` option.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from graphc.ir import Graph
from graphc.ops.registry import get_op

from .core import PassContext, PassResult, const_is, fully_known, new_node, numel, remove_unused


def _same(g: Graph, a: int, n: int) -> bool:
    return g.spec(a) == g.spec(n)


def _binary_with_const(g, n, ctx, value, commutative):
    """``x`` if ``n`` is ``op(x, c)`` (or ``op(c, x)`` when commutative) with ``c`` all ``value``."""
    a, b = g.inputs(n)
    if const_is(g, b, ctx, value) and _same(g, a, n):
        return a
    if commutative and const_is(g, a, ctx, value) and _same(g, b, n):
        return b
    return None


# -- the rules -----------------------------------------------------------------------------------
def mul_one(g, n, ctx):
    # x*1 and 1*x -> x: multiplying by one is exact for every value, NaN and Inf included
    return _binary_with_const(g, n, ctx, 1, True)


def add_zero(g, n, ctx):
    # x+0 and 0+x -> x: exact except that -0.0 + 0.0 gives +0.0 (equal under ==), as XLA/Grappler
    return _binary_with_const(g, n, ctx, 0, True)


def sub_zero(g, n, ctx):
    # x-0 -> x: exact for +0 (-0.0 - 0.0 is -0.0); x-(-0.0) has add_zero's signed-zero caveat
    return _binary_with_const(g, n, ctx, 0, False)


def div_one(g, n, ctx):
    # x/1 -> x: exact for every value
    return _binary_with_const(g, n, ctx, 1, False)


def pow_one(g, n, ctx):
    # x**1 -> x: exact (power with exponent one returns its base, NaN included)
    return _binary_with_const(g, n, ctx, 1, False)


def pow_two(g, n, ctx):
    # x**2 -> x*x: numpy computes power(x, 2) as x*x, so bit-identical and cheaper to fuse
    x, c = g.inputs(n)
    if const_is(g, c, ctx, 2) and _same(g, x, n):
        return new_node(g, "mul", [x, x], {}, n)
    return None


def neg_neg(g, n, ctx):
    # neg(neg x) -> x: negation is exact
    (x,) = g.inputs(n)
    if g.op(x) == "neg" and not ctx.is_fed(x):
        (y,) = g.inputs(x)
        return y if _same(g, y, n) else None
    return None


def transpose_transpose(g, n, ctx):
    # transpose(transpose(x, p), q) -> transpose(x, p[q]) (or x when that is the identity)
    (x,) = g.inputs(n)
    if g.op(x) != "transpose" or ctx.is_fed(x):
        return None
    (y,) = g.inputs(x)
    p, q = g.attrs(x)["perm"], g.attrs(n)["perm"]
    perm = tuple(p[i] for i in q)
    if perm == tuple(range(len(perm))):
        return y
    return new_node(g, "transpose", [y], {"perm": perm}, n)


def transpose_identity(g, n, ctx):
    # transpose(x, (0, 1, ..)) -> x: the identity permutation moves nothing
    perm = g.attrs(n)["perm"]
    (x,) = g.inputs(n)
    return x if tuple(perm) == tuple(range(len(perm))) else None


def _reshape_target(spec):
    if sum(d is None for d in spec.shape) > 1:
        return None
    return tuple(-1 if d is None else d for d in spec.shape)


def reshape_chain(g, n, ctx):
    # a reshape (view op: reshape, expand_dims, squeeze...) of a view op's result -> one reshape of
    # the view op's input 0: both keep the row-major element order, so the chain is one reshape
    (x,) = g.inputs(n)
    if not get_op(g.op(x)).view or ctx.is_fed(x):
        return None
    target = _reshape_target(g.spec(n))
    if target is None:
        return None
    y = g.inputs(x)[0]
    if _same(g, y, n):
        return y
    try:
        r = new_node(g, "reshape", [y], {"shape": target}, n)
    except Exception:  # noqa: BLE001 - the rule simply does not apply
        return None
    return r


def reshape_noop(g, n, ctx):
    # reshape to the shape it already has -> x (at most one unknown dim, so the sizes must agree)
    (x,) = g.inputs(n)
    return x if _same(g, x, n) and _reshape_target(g.spec(n)) is not None else None


def cast_same(g, n, ctx):
    # cast(x, x.dtype) -> x: a no-op conversion
    (x,) = g.inputs(n)
    return x if _same(g, x, n) else None


def identity(g, n, ctx):
    # identity(x), stop_gradient(x) -> x: gradients are built before optimization
    (x,) = g.inputs(n)
    return x if _same(g, x, n) else None


def broadcast_noop(g, n, ctx):
    # broadcast_to/broadcast_like/tile that change nothing -> x (the shape is already the target)
    x = g.inputs(n)[0]
    if not _same(g, x, n):
        return None
    if g.op(n) == "broadcast_like" and not fully_known(g.spec(n)):
        return None  # the run-time shape of `like` could be larger
    if g.op(n) == "tile" and any(m != 1 for m in g.attrs(n)["multiples"]):
        return None
    return x


def static_shape(g, n, ctx):
    # shape(x)/size(x) of a statically known shape -> a constant (independent of x's values)
    (x,) = g.inputs(n)
    spec = g.spec(x)
    if not fully_known(spec):
        return None
    dt = g.attrs(n)["out_type"]
    value = np.array(spec.shape if g.op(n) == "shape" else numel(spec.shape), dtype=dt)
    if value.shape != tuple(g.spec(n).shape):
        return None
    return g.add_node("constant", [], {"value": value}, g.spec(n), name=g.name(n) + "/static",
                      trace=g.trace(n))


def like_fill(g, n, ctx):
    # zeros_like/ones_like of a statically known shape -> a constant (within the folding size cap)
    spec = g.spec(n)
    if not fully_known(spec) or numel(spec.shape) > ctx.options["fold_max_elements"]:
        return None
    fill = np.zeros if g.op(n) == "zeros_like" else np.ones
    return g.add_node("constant", [], {"value": fill(spec.shape, spec.dtype)}, spec,
                      name=g.name(n) + "/static", trace=g.trace(n))


def log_exp(g, n, ctx):
    # log(exp x) -> x: only with unsafe_math (exp overflows to Inf for large x, so not exact)
    if not ctx.options.get("unsafe_math"):
        return None
    (x,) = g.inputs(n)
    if g.op(x) == "exp" and not ctx.is_fed(x):
        (y,) = g.inputs(x)
        return y if _same(g, y, n) else None
    return None


def relu_mask_into_pool_grad(g, n, ctx):
    # where(x > 0, max_pool2d_grad(x, dy), 0) -> max_pool2d_grad(x, dy, relu_mask): a relu's gradient
    # (y > 0) after the max pool that reads y, applied by the pool gradient kernel as it stores, not
    # in a pass of its own over the activation; bit-identical (the same select, NaN -> 0 included)
    cond, t, f = g.inputs(n)
    if g.op(cond) != "greater" or g.op(t) != "max_pool2d_grad" or not const_is(g, f, ctx, 0):
        return None
    x, zero = g.inputs(cond)
    attrs = g.attrs(t)
    if not const_is(g, zero, ctx, 0) or g.inputs(t)[0] != x or attrs.get("relu_mask") \
            or ctx.is_fed(t) or g.spec(t) != g.spec(n):
        return None
    return new_node(g, "max_pool2d_grad", list(g.inputs(t)), {**attrs, "relu_mask": True}, n)


def slice_of_stack(g, n, ctx):
    # stack([a0, a1, ...], axis=0)[t] -> a_t: an unrolled loop's saved values, read back per step
    key = g.attrs(n).get("key")
    (x,) = g.inputs(n)
    if g.op(x) != "stack" or g.attrs(x)["axis"] != 0 or not key or not isinstance(key[0], int) \
            or any(k != ("s", None, None, None) for k in key[1:]) or ctx.is_fed(x):
        return None
    parts = g.inputs(x)
    t = key[0] + len(parts) if key[0] < 0 else key[0]
    return parts[t] if 0 <= t < len(parts) else None


# op -> rules tried in order; the first replacement wins
RULES = {
    "mul": [mul_one],
    "add": [add_zero],
    "sub": [sub_zero],
    "div": [div_one],
    "pow": [pow_one, pow_two],
    "neg": [neg_neg],
    "transpose": [transpose_identity, transpose_transpose],
    "reshape": [reshape_noop, reshape_chain],
    "expand_dims": [reshape_chain],
    "squeeze": [reshape_noop, reshape_chain],
    "cast": [cast_same],
    "identity": [identity],
    "stop_gradient": [identity],
    "broadcast_to": [broadcast_noop],
    "broadcast_like": [broadcast_noop],
    "tile": [broadcast_noop],
    "shape": [static_shape],
    "size": [static_shape],
    "zeros_like": [like_fill],
    "ones_like": [like_fill],
    "log": [log_exp],
    "where": [relu_mask_into_pool_grad],
    "strided_slice": [slice_of_stack],
}


def simplify(g: Graph, ctx: PassContext, rules: dict | None = None) -> PassResult:
    """Apply the rules with a worklist (topological order first, then whatever a rewrite touches)."""
    rules = RULES if rules is None else rules
    res = PassResult()
    fired: dict[str, int] = {}
    work = deque(g.topo_order())
    queued = set(work)
    replaced = []
    while work:
        n = work.popleft()
        queued.discard(n)
        if n not in g or ctx.is_fed(n) or g.num_uses(n) == 0 and not ctx.is_fetched(n):
            continue
        for rule in rules.get(g.op(n), ()):
            r = rule(g, n, ctx)
            if r is None or r == n:
                continue
            if g.spec(r) != g.spec(n):  # never change a spec, even where shapes would "agree"
                if g.num_uses(r) == 0 and not ctx.is_fetched(r):
                    g.remove([r])  # a node the rule just made (or one that was dead anyway)
                continue
            moved = sorted(g.users(n))  # only these see a new input
            ctx.replace(g, n, r)
            fired[rule.__name__] = fired.get(rule.__name__, 0) + 1
            replaced.append(n)
            for m in [r] + moved:
                if m not in queued:
                    queued.add(m)
                    work.append(m)
            break
    res.changed = sum(fired.values())
    remove_unused(g, replaced, ctx)
    res.notes = [f"{k} x{v}" for k, v in sorted(fired.items())]
    return res

