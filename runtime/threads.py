"""Batch-split threading for nogil numba kernels (direct conv, im2col, pooling and its gradients).

A kernel whose batch items are independent is cut into ``THREADS`` chunks along the batch: the
calling thread runs the first chunk while a small, persistent Python thread pool runs the others
(numba's ``nogil`` kernels release the GIL, so they really run at once). This is the runtime's
default way to use both cores of a small machine: numba's own ``prange`` threading
(``GRAPHC_PARALLEL=1``) was slower for these memory-bound loops, and its OpenMP workers spin
against the BLAS threads of the GEMMs that follow.

``GRAPHC_THREADS=1`` keeps every kernel on the calling thread; the default is min(2, cpu count).
Measured on the 2-core dev box (batch 32, medians of interleaved rounds): the single-channel
direct conv 0.29 -> 0.21 ms, max_pool_grad (26x26x32) 0.43 -> 0.36 ms. The second core gives well
under 2x here: two threads running a pure-FMA loop each took 1.37x the time of one alone.

    >>> import numpy as np
    >>> from graphc.runtime.threads import batch_split
    >>> def double(x, out):          # any callable with the batch first in the split arguments
    ...     out[:] = 2 * x
    >>> x, out = np.ones((8, 3)), np.empty((8, 3))
    >>> batch_split(double, work_per_item=1 << 20, split=(0, 1))(x, out); float(out.sum())
    48.0
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

THREADS = max(1, int(os.environ.get("GRAPHC_THREADS", "0") or 0) or min(2, os.cpu_count() or 1))
# below this much work (multiply-adds or element visits) the thread hand-off (~20-40 us) costs more
# than the second core saves
SPLIT_MIN_WORK = 1 << 20
_POOL: list = [None, None]    # [executor, pid]: rebuilt in a forked child
_POOL_LOCK = threading.Lock()


def pool() -> ThreadPoolExecutor:
    """The process's worker pool (THREADS - 1 threads), created on first use."""
    pid = os.getpid()
    if _POOL[0] is None or _POOL[1] != pid:
        with _POOL_LOCK:
            if _POOL[0] is None or _POOL[1] != pid:
                _POOL[0] = ThreadPoolExecutor(max_workers=max(1, THREADS - 1),
                                              thread_name_prefix="graphc-kernel")
                _POOL[1] = pid
    return _POOL[0]


def entry_point(disp, sig: tuple):
    """``disp``'s compiled entry point for ``sig`` once it is compiled (``disp`` itself until then):
    calling it skips numba's dispatch and takes read-only arrays without a new specialisation."""
    memo: list = []

    def call(*args):
        if not memo:
            cres = getattr(disp, "overloads", {}).get(tuple(sig))
            if cres is None:
                return disp(*args)
            memo.append(cres.entry_point)
        return memo[0](*args)
    call.__name__ = getattr(disp, "__name__", "kernel")
    return call


def batch_split(kern, work_per_item: int, split: tuple = (0, 2)):
    """``kern(*args)`` run as THREADS chunks of the batch.

    ``split`` are the positions of the arguments cut along their first axis: the first one's
    length is the batch ``n``; each of them has ``n * rows`` leading entries (``rows`` per item, 1
    for a 4-D image batch, ``oh * ow`` for im2col's column matrix). The other arguments are shared
    by every chunk. Small batches (``n * work_per_item < SPLIT_MIN_WORK``) or THREADS=1 run in one call.
    """
    def run(*args):
        n = args[split[0]].shape[0]
        parts = min(THREADS, n)
        if parts < 2 or n * work_per_item < SPLIT_MIN_WORK:
            kern(*args)
            return
        rows = [args[k].shape[0] // n for k in split]
        bounds = [n * i // parts for i in range(parts + 1)]

        def chunk(b0, b1):
            a = list(args)
            for k, r in zip(split, rows):
                a[k] = args[k][b0 * r:b1 * r]
            return a
        futs = [pool().submit(kern, *chunk(b0, b1)) for b0, b1 in zip(bounds[1:-1], bounds[2:])]
        try:
            kern(*chunk(0, bounds[1]))
        finally:
            for fu in futs:
                fu.result()
    run.__name__ = f"{getattr(kern, '__name__', 'kernel')}_batch_split"
    return run
