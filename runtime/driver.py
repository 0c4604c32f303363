"""Jitted plan drivers: runs of consecutive kernel calls compiled into one numba function.

The executor's driver is straight-line Python (``bound.Bound``). Where several kernel calls in a
row are numba kernels, they become one *segment*: a generated numba function that takes every array
and number those calls use as arguments and calls the kernels one after another, so the Python
driver makes one call where it made many. Steps numba cannot run (numpy references, variable
assigns, random ops, GEMMs without ``blas.AVAILABLE``, kernels split over Python threads) stay
Python lines between segments; so do lines that only read a variable, bind a buffer or make a view,
which may run before a segment that is still being collected.

A segment does not link its kernels' code into its own (numba would compile every kernel again
inside each driver: seconds for the conv kernels). Each kernel's compiled native function is
registered with LLVM under a name derived from its module, name and signature (``kernel_symbol``),
and the segment calls it through that name with numba's calling convention (``kernel_call``): a
segment compiles in a fraction of a second, its disk cache entry is small, and a warm process
loads it once its kernels are loaded (the names are registered again, at their new addresses).
An error raised inside a kernel propagates out of the segment as it would from the kernel.

What it buys, measured on the 2-core dev box (thread-CPU per training step, MNIST, batch 32, the
same plan bound both ways in one process and alternated, medians of 40 rounds of 20 steps): MLP
140 -> 136 us (0.96-0.99x over three runs; 2 segments of 21 and 4 calls), LSTM 0.92-1.01x
(41 segments, 348 calls), CNN 0.99-1.02x. Calling a numba entry point from Python costs ~0.1 us
plus ~0.03 us per array, and at batch 32 the kernels' own work dominates; what Python work stays
(reading variables, allocating the fresh arrays a step returns, views, assigns) is not kernel calls.
The price is compile time: a segment is one more numba function, ~0.3 s plus ~0.03 s per call on a
cold cache (the MLP's two 0.8 s, the LSTM's 28 segments 4.5 s; from the warm disk cache 10-30 ms).
So segments are off by default: ``driver="numba"`` in ``graphc.config`` (``GRAPHC_DRIVER=numba``,
or ``gc.config.override(driver="numba")`` around the session's creation) turns them on, for long
runs of a warm cache where 2-3% matter.

    >>> import numpy as np, graphc as gc
    >>> from graphc.runtime import compile
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     x = gc.placeholder("float32", (None, 3), name="x")
    ...     y = gc.reduce_sum(gc.exp(x) * 2.0, axis=1) + gc.reduce_max(x, axis=1)
    >>> with gc.config.override(driver="numba"):     # as GRAPHC_DRIVER=numba does
    ...     exe = compile(g, [y.node], [x.node])
    >>> exe.run({x.node: np.zeros((2, 3), np.float32)}, {}, 0)[0][0].tolist()
    [6.0, 6.0]
    >>> exe.bound.segments                           # kernel calls run by one jitted function
    1
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from . import cache
from .emit import Source

# a run of fewer kernel calls stays Python lines: one call saves ~0.2 us, a segment costs a compile
MIN_CALLS = 3

_SIGS: dict[str, tuple] = {}         # symbol -> (argument types, return type)
_ADDRESSES: dict[str, int] = {}      # symbol -> address registered with LLVM in this process
_CALLS: dict[str, object] = {}       # symbol -> its kernel_call intrinsic


def numba_callable(fn, warm: dict):
    """``(dispatcher, signature)`` when plan step function ``fn`` is a compiled numba kernel (or a
    ``threads.entry_point`` of one), else None. ``warm``: id(dispatcher) -> signature."""
    disp, sig = getattr(fn, "dispatcher", None), getattr(fn, "signature", None)
    if disp is None:
        disp, sig = fn, warm.get(id(fn))
    if sig is None or tuple(sig) not in getattr(disp, "overloads", {}):
        return None
    return disp, tuple(sig)


def kernel_symbol(disp, sig: tuple) -> str:
    """The LLVM name under which ``disp``'s native code for ``sig`` is registered (now, in this
    process): stable across processes for the same kernel source and signature."""
    import llvmlite.binding as ll       # (this module is imported by the baseline tier too: no numba)
    cres = disp.overloads[sig]
    py = disp.py_func
    key = f"{py.__module__}.{py.__qualname__}({', '.join(map(str, sig))})"
    name = "graphc_k_" + hashlib.sha256(key.encode()).hexdigest()[:24]
    addr = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
    if _ADDRESSES.get(name) != addr:
        ll.add_symbol(name, addr)
        _ADDRESSES[name] = addr
        _SIGS[name] = (tuple(sig), cres.signature.return_type)
    return name


def kernel_call(symbol: str):
    """An intrinsic calling the kernel registered as ``symbol`` (see ``kernel_symbol``) with its
    exact argument types; an error status it returns propagates to the caller."""
    fn = _CALLS.get(symbol)
    if fn is not None:
        return fn
    from numba import types
    from numba.core import cgutils
    from numba.core.errors import TypingError
    from numba.extending import intrinsic
    argtys, resty = _SIGS[symbol]
    names = ", ".join(f"a{i}" for i in range(len(argtys)))

    def typer(typingctx, args):
        if tuple(args) != argtys:
            raise TypingError(f"graphc driver: kernel {symbol} takes {argtys}, got {tuple(args)}")
        return types.none(*argtys), codegen

    def codegen(context, builder, sig, args):
        fnty = context.call_conv.get_function_type(resty, argtys)
        callee = cgutils.get_or_insert_function(builder.module, fnty, symbol)
        status, res = context.call_conv.call_function(builder, callee, resty, argtys, args)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        if resty != types.none and context.enable_nrt:
            context.nrt.decref(builder, resty, res)
        return context.get_dummy_value()
    ns = {"_typer": typer}
    exec(f"def call(typingctx, {names}):\n    return _typer(typingctx, ({names}{',' if names else ''}))\n", ns)
    fn = _CALLS[symbol] = intrinsic(ns["call"])
    return fn


@dataclass(frozen=True)
class Line:
    """One line of a plan driver's body and what it may depend on.

    ``kind``: ``"free"`` reads only feeds, variables or bound arrays, or makes a view (of node
    ``view``), so it may run before kernel calls still being collected into a segment;
    ``"barrier"`` may read kernel results, so every kernel call before it runs first; ``"kernel"``
    is a kernel call, joining a segment when ``jit`` (its ``(dispatcher, signature)``) is set and
    none of ``copies`` (nodes it takes a contiguous copy of) is a view made while collecting: the
    copy, evaluated before the segment runs, would miss the kernels filling the view's buffer.
    """
    text: str
    kind: str
    jit: tuple | None = None
    args: list = field(default_factory=list)
    copies: frozenset = frozenset()
    view: int | None = None


def place_segments(lines: list, bind, jit: bool) -> tuple:
    """The driver body for ``lines`` (a list of ``Line``) and the number of jitted segments in it.
    Without ``jit`` the lines stay in order; with it, each run of kernel lines becomes one call of
    a compiled segment, the free lines among them going before it."""
    out: list = []
    seg = Segment(bind)
    pending: set = set()        # views made while the segment is collected
    for ln in lines:
        if ln.kind == "kernel" and jit and ln.jit is not None and not (ln.copies & pending):
            seg.add(ln.text, ln.jit[0], ln.jit[1], ln.args)
        elif ln.kind == "free":
            out.append(ln.text)
            if ln.view is not None and len(seg):
                pending.add(ln.view)
        else:
            out.extend(seg.close())
            pending.clear()
            out.append(ln.text)
    out.extend(seg.close())
    return out, seg.compiled


class Segment:
    """Kernel calls collected for one generated numba function.

    ``add(line, disp, sig, exprs)`` records a call whose Python form is ``line`` and whose
    arguments are the Python expressions ``exprs`` (evaluated before the segment runs); ``close()``
    returns the Python lines that run the collected calls: one call of the compiled segment, or the
    calls' own lines when there are too few of them or the segment does not compile.
    """

    def __init__(self, bind_global):
        self._bind = bind_global          # (object, prefix) -> global name in the Python driver
        self.compiled = 0                 # segments closed as one jitted call
        self.clear()

    def clear(self):
        self.lines: list = []
        self.calls: list = []             # (symbol, [slot index])
        self.slots: dict = {}             # (expression, numba type) -> index

    def __len__(self) -> int:
        return len(self.calls)

    def add(self, line: str, disp, sig: tuple, exprs: list) -> None:
        idx = [self.slots.setdefault((e, t), len(self.slots)) for e, t in zip(exprs, sig)]
        self.calls.append((kernel_symbol(disp, sig), idx))
        self.lines.append(line)

    def close(self) -> list:
        lines, calls, slots = self.lines, self.calls, list(self.slots)
        self.clear()
        if len(calls) < MIN_CALLS:
            return lines
        try:
            ep = compile_segment(calls, [t for _, t in slots])
        except Exception as e:          # numba cannot type or compile it: the calls' own lines
            FAILURES.append(f"{type(e).__name__}: {str(e)[:200]}")
            return lines
        self.compiled += 1
        return [f"{self._bind(ep, 'S')}({', '.join(e for e, _ in slots)})"]


FAILURES: list = []


def segment_source(calls: list, n_args: int) -> str:
    """The numba module of a segment: the kernel intrinsics, then one function calling them."""
    symbols = list(dict.fromkeys(s for s, _ in calls))
    src = Source()
    src.extend(["from graphc.runtime.driver import kernel_call as _kc", ""])
    src.extend(f"K{i} = _kc({s!r})" for i, s in enumerate(symbols))
    src.extend(["", "", "@njit(cache=True, nogil=True)"])
    with src.block(f"def segment({', '.join(f'p{i}' for i in range(n_args))}):"):
        src.extend(f"K{symbols.index(s)}({', '.join(f'p{j}' for j in idx)})" for s, idx in calls)
        src.add("return None")
    return src.text()


def compile_segment(calls: list, argtypes: list):
    """The compiled entry point of the segment running ``calls`` over arguments of ``argtypes``."""
    mod = cache.load_module(segment_source(calls, len(argtypes)), tag="drv")
    sig = tuple(argtypes)
    cache.ensure_compiled(mod.segment, sig)
    return mod.segment.overloads[sig].entry_point
