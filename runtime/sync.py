"""Low-latency hand-off between the calling thread and the kernel worker threads (``threads.py``).

A worker that blocks on a lock or an event after each job takes 30-60 us to wake on a small VM:
the idle vCPU has to be rescheduled. That is as long as half of a batch-split conv. So a worker
first waits by spinning, for a few tens of microseconds, on a flag in a small int64 array that
the caller bumps, and only then blocks. The spin runs inside a nogil numba loop: it holds neither
the GIL nor a lock. The flag is read with an atomic acquire load, so LLVM cannot hoist the read
out of the loop, and written with a release store, so the job's arguments are visible before the
flag. x86 gets a ``pause`` per turn, which is kind to the core's other hyperthread.

    >>> import numpy as np
    >>> from graphc.runtime.sync import publish, wait_change
    >>> flags = np.zeros(8, dtype=np.int64)
    >>> publish(flags, 0, 5)
    >>> int(wait_change(flags, 0, 0, 10))       # already changed: returns at once with the new value
    5
    >>> int(wait_change(flags, 1, 0, 10))       # unchanged after 10 turns: returns the old value
    0
"""
from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .families import KernelFamily

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def load_acquire(typingctx, arr, idx):
    """``arr[idx]`` read with acquire ordering (int64 arrays): never cached in a register."""
    sig = types.int64(arr, idx)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.load_atomic(builder.gep(ary.data, [args[1]]), "acquire", 8)
    return sig, codegen


@intrinsic
def store_release(typingctx, arr, idx, val):
    """``arr[idx] = val`` with release ordering: the writes before it are seen first."""
    sig = types.void(arr, idx, val)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        builder.store_atomic(args[2], builder.gep(ary.data, [args[1]]), "release", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def cpu_relax(typingctx):
    """The spin-wait hint (``pause`` on x86; nothing elsewhere)."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        if _X86:
            fn = builder.module.declare_intrinsic("llvm.x86.sse2.pause", fnty=ir.FunctionType(ir.VoidType(), []))
            builder.call(fn, [])
        return context.get_dummy_value()
    return sig, codegen


fam = KernelFamily("sync", prelude=lambda: "from graphc.runtime.sync import cpu_relax, load_acquire, store_release\n")


@fam.kernel()
def _wait_change(flags, i, old, turns):
    # spin while flags[i] == old, at most `turns` times: the new value, or old when it did not change
    for _ in range(turns):
        v = load_acquire(flags, i)
        if v != old:
            return v
        cpu_relax()
    return old


@fam.kernel()
def _publish(flags, i, v):
    store_release(flags, i, v)


def wait_change(flags, i: int, old: int, turns: int) -> int:
    """Spin (GIL released) until ``flags[i] != old``, at most ``turns`` pause turns; the value seen
    last (``old`` on time-out)."""
    return fam.get("_wait_change")(flags, i, old, turns)


def publish(flags, i: int, v: int) -> None:
    """``flags[i] = v`` with release ordering: what this thread wrote before is visible first."""
    fam.get("_publish")(flags, i, v)
