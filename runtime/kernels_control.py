"""Control flow in the runtime: ``scan``, ``while_loop`` and ``cond`` run their bodies as compiled
programs of their own.

A body is compiled once per process and configuration into an ``Executable`` over the inputs it
reads (``CompiledBody``), with its own plan, buffers and kernels per set of input shapes, exactly
like a top-level graph: a loop step is one call of that body's bound driver, with no graph work in
between, and the loop's own Python is one iteration per step. The body's kernels are listed in the
loop call's ``warm`` pairs, so lowering compiles them with the rest of the plan (and tiered
execution compiles them in the background while the loop runs on the reference interpreter).

Because shapes are run-time values, one compiled loop serves every number of steps and every
batch size: a new length only changes the trip count; a new batch size binds the body once more
(kernels are specialised on dtype and rank, never on sizes).

    >>> import numpy as np, graphc as gc
    >>> xs = gc.placeholder("float32", (None, 2), name="xs")
    >>> total = gc.scan(lambda a, x: a + x, xs, initializer=gc.zeros((2,)))
    >>> sess = gc.Session()
    >>> [sess.run(total, {xs: np.ones((n, 2), np.float32)})[-1].tolist() for n in (3, 5)]
    [[3.0, 3.0], [5.0, 5.0]]
"""
from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

from graphc import config
from graphc.funcgraph import Body
from graphc.interpreter import schedule
from graphc.ops.control_flow import stack_steps

from . import blas_threads
from .kernels import Call, Const, In, NodeCtx, kernel_for


class CompiledBody:
    """``body`` as an ``Executable`` over the inputs its results depend on."""

    def __init__(self, body: Body, cfg: config.Config):
        from .executor import Executable
        self.body = body
        self.used = body.used()
        self.feeds = [n for n, u in zip(body.inputs, self.used) if u]
        # the loop's own plan decides about tiers: a body compiles when the loop's plan does
        self.exe = Executable(body.graph, list(body.outputs), self.feeds, config.replace(cfg, tiered=False))
        self.order = schedule(body.graph, list(body.outputs), {n: None for n in self.feeds})
        self._pairs: dict = {}

    def __call__(self, values: list) -> list:
        return self.exe.run_list([v for v, u in zip(values, self.used) if u], {}, 0)[0]

    @contextlib.contextmanager
    def steps(self):
        """``step(values) -> results`` for a loop: the body's bindings are held for the whole loop
        (``Executable.runner``), so a step is one call of its bound driver."""
        idx = [i for i, u in enumerate(self.used) if u]
        with self.exe.runner() as run:
            yield lambda values: run([values[i] for i in idx])

    def kernels(self, in_shapes: list) -> list:
        """The ``(dispatcher, signature)`` pairs the body needs for these input shapes that this
        process has not compiled yet."""
        from .lower import bind_schedule
        key = tuple(tuple(s) for s, u in zip(in_shapes, self.used) if u)
        if any(None in s for s in key):
            return []
        pairs = self._pairs.get(key)
        if pairs is None:       # kernels depend on dtypes and ranks: one bind per shape set at most
            shapes = dict(zip(self.feeds, key))
            pairs = self._pairs[key] = bind_schedule(self.body.graph, list(self.body.outputs),
                                                     self.feeds, shapes, order=self.order).kernels()
        return [(d, sig) for d, sig in pairs if sig not in d.overloads]


_COMPILED: "weakref.WeakKeyDictionary[Body, dict]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def compiled(body: Body) -> CompiledBody:
    """The process's compiled form of ``body`` under the configuration in force."""
    cfg = config.get()
    with _LOCK:
        per_cfg = _COMPILED.setdefault(body, {})
        cb = per_cfg.get(cfg)
        if cb is None:
            cb = per_cfg[cfg] = CompiledBody(body, cfg)
    return cb


def _run_scan(body: CompiledBody, k: int, m: int, reverse: bool, length, *vals):
    # a step's GEMMs are too small to split over BLAS threads
    with blas_threads.serial(), body.steps() as step:
        return _scan_steps(step, body, k, m, reverse, length, vals)


def _scan_steps(step, body, k, m, reverse, length, vals):
    carries, xs, caps = list(vals[:k]), vals[k:k + m], list(vals[k + m:])
    t_len = xs[0].shape[0] if m else int(length)
    if any(x.shape[0] != t_len for x in xs):
        raise ValueError(f"scan: elems have different numbers of steps {[x.shape[0] for x in xs]}")
    ys = None
    for t in (range(t_len - 1, -1, -1) if reverse else range(t_len)):
        outs = step(carries + [x[t] for x in xs] + caps)
        carries = outs[:k]
        if ys is None:
            ys = [np.empty((t_len,) + y.shape, y.dtype) for y in outs[k:]]
        for y, out in zip(outs[k:], ys):
            out[t] = y
    if ys is None:
        shapes = [c.shape for c in carries] + [x.shape[1:] for x in xs] + [c.shape for c in caps]
        ys = stack_steps([], body.body, k, shapes)
    return tuple(carries + ys)


@kernel_for("scan")
def bind_scan(ctx: NodeCtx) -> Call:
    a = ctx.attrs
    k, m = a["n_carry"], a["n_xs"]
    body = compiled(a["body"])
    shapes = list(ctx.in_shapes[:k]) + [s[1:] for s in ctx.in_shapes[k:k + m]] + list(ctx.in_shapes[k + m:])
    args = [Const(body), Const(k), Const(m), Const(bool(a["reverse"])), Const(a.get("length"))]
    return Call(steps=[(_run_scan, args + [In(i) for i in range(ctx.n_in)])],
                name=f"scan[{a['body'].label}]", mode="value", warm=body.kernels(shapes))


def _run_while(cond: CompiledBody, body: CompiledBody, k: int, limit, has_limit_input: bool, *vals):
    with blas_threads.serial(), cond.steps() as test, body.steps() as step:
        return _while_steps(test, step, body, k, limit, has_limit_input, vals)


def _while_steps(test, step, body, k, limit, has_limit_input, vals):
    if has_limit_input:
        limit, vals = int(vals[-1]), vals[:-1]
    loop_vars, caps = list(vals[:k]), list(vals[k:])
    saved = None
    i = 0
    while (limit is None or i < limit) and bool(test(loop_vars + caps)[0]):
        outs = step(loop_vars + caps)
        if saved is None:
            saved = [[] for _ in outs[k:]]
        for lst, r in zip(saved, outs[k:]):
            lst.append(r)
        loop_vars, i = outs[:k], i + 1
    stacks = stack_steps(saved or [], body.body, k, [x.shape for x in loop_vars + caps]) \
        if len(body.body.outputs) > k else []
    return tuple(loop_vars + stacks)


@kernel_for("while_loop")
def bind_while(ctx: NodeCtx) -> Call:
    a = ctx.attrs
    cond, body = compiled(a["cond"]), compiled(a["body"])
    n = ctx.n_in - (1 if a.get("max_input") else 0)
    shapes = list(ctx.in_shapes[:n])
    args = [Const(cond), Const(body), Const(a["n_vars"]), Const(a.get("max_iter")),
            Const(bool(a.get("max_input")))]
    return Call(steps=[(_run_while, args + [In(i) for i in range(ctx.n_in)])],
                name=f"while[{a['body'].label}]", mode="value",
                warm=cond.kernels(shapes) + body.kernels(shapes))


def _run_cond(true: CompiledBody, false: CompiledBody, pred, *caps):
    return tuple((true if bool(pred) else false)(list(caps)))


@kernel_for("cond")
def bind_cond(ctx: NodeCtx) -> Call:
    a = ctx.attrs
    true, false = compiled(a["true"]), compiled(a["false"])
    shapes = list(ctx.in_shapes[1:])
    return Call(steps=[(_run_cond, [Const(true), Const(false)] + [In(i) for i in range(ctx.n_in)])],
                name=f"cond[{a['true'].label}]", mode="value",
                warm=true.kernels(shapes) + false.kernels(shapes))


def _tuple_item(t, k):
    return t[k]


@kernel_for("tuple_get")
def bind_tuple_get(ctx: NodeCtx) -> Call:
    return Call(steps=[(_tuple_item, [In(0), Const(int(ctx.attrs["index"]))])], name="tuple_get",
                mode="value", contiguous=False)
