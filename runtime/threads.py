"""Batch-split threading for nogil numba kernels (the single-channel direct conv, pooling gradients,
elementwise kernels of 2^20 elements or more: ``kernels.split_rows``).

A kernel whose batch items are independent is cut into chunks along the batch, which the calling
thread and persistent worker threads take one at a time (numba's ``nogil`` kernels release the
GIL, so they really run at once). A worker that starts late, or shares its core with another busy
thread, takes fewer chunks, so a split is never much slower than one call. numba's own ``prange``
threading (``GRAPHC_PARALLEL=1``) was slower for these memory-bound loops, and its OpenMP workers
spin against the BLAS threads of the GEMMs that follow.

The hand-off decides whether a split pays at these sizes: a single-channel conv at batch 32 takes
0.28 ms, and a ``ThreadPoolExecutor`` job took 64 us from submit to done on the 2-core dev box
(the idle vCPU has to be woken). So a worker waits for its next job by spinning for ``SPIN_US`` on
a flag (``sync.wait_change``, GIL released) before it sleeps on an event. The spin is short
because a spinning worker takes a core from the BLAS threads of a GEMM that follows: 80 us of
spin already slowed the next GEMM. Measured on that conv (``Executable.run``, medians of
interleaved rounds): one thread 0.42 ms, thread pool 0.30 ms, these workers 0.27 ms (0.90x).

Plans that run BLAS GEMMs do not split at all (``lower._serial_beside_blas``): OpenBLAS's own
idle workers spin for ~0.1 s after each threaded GEMM and hold the second core. With another
process keeping a core busy, a split measured 1.06x the one-thread time (the thread pool 0.8x: a
woken sleeper gets the core sooner than a spinning worker); ``GRAPHC_THREADS=1`` suits such setups.
The caller waits for the last chunk by spinning briefly, then yielding its core between checks.

``threads=1`` in ``graphc.config`` (``GRAPHC_THREADS=1``) keeps every kernel on the calling thread;
the default is min(2, cpu count).
A second Python thread that calls a split kernel while the workers are busy runs it whole on its
own thread.

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
import time

import numpy as np

from graphc import config

# below this much work (multiply-adds or element visits) the hand-off costs more than the second
# core saves
SPLIT_MIN_WORK = 1 << 20
CHUNKS_PER_THREAD = 4
SPIN_US = 30.0       # how long an idle worker spins for the next job before it sleeps
_POOL: list = [None, None]    # [Workers, pid]: rebuilt in a forked process
_POOL_LOCK = threading.Lock()


class Workers:
    """Persistent kernel worker threads with a spin-then-sleep hand-off.

    ``run(jobs)`` runs ``jobs[0]`` on the calling thread and ``jobs[1:]`` on workers, returning
    when all are done and re-raising the first error. The pool grows to ``len(jobs) - 1`` workers.
    Calls from several Python threads at once are safe: a caller that finds the workers busy runs
    its jobs itself, one after another.
    """

    def __init__(self):
        self._threads: list[_Worker] = []
        self._busy = threading.Lock()
        from . import sync      # numba intrinsics: imported with the first split kernel, not before
        self.wait, self.publish = sync.fam.get("_wait_change"), sync.fam.get("_publish")
        self.turns = _calibrate(self.wait)

    def run(self, jobs: list) -> None:
        if len(jobs) < 2 or not self._busy.acquire(blocking=False):
            for job in jobs:
                job()
            return
        try:
            while len(self._threads) < len(jobs) - 1:
                self._threads.append(_Worker(self, len(self._threads)))
            posted = self._threads[:len(jobs) - 1]
            for w, job in zip(posted, jobs[1:]):
                w.post(job)
            try:
                jobs[0]()
            finally:
                errors = [w.join() for w in posted]
            for e in errors:
                if e is not None:
                    raise e
        finally:
            self._busy.release()


class _Worker:
    # flags[0]: the number of jobs posted, flags[1]: the number done (one 64-byte line of int64)
    def __init__(self, pool: Workers, k: int):
        self.flags = np.zeros(8, dtype=np.int64)
        self.wait, self.publish, self.turns = pool.wait, pool.publish, pool.turns
        self.posted = 0
        self.job = None
        self.error: BaseException | None = None
        self.wake = threading.Event()
        threading.Thread(target=self._loop, name=f"graphc-kernel-{k}", daemon=True).start()

    def _loop(self) -> None:
        done = 0
        while True:
            # spin for the next job; after SPIN_US, sleep until post() sets the event (the flag is
            # checked again after each wake-up, so a post racing the sleep is never lost)
            if self.wait(self.flags, 0, done, self.turns) == done:
                self.wake.wait()
                self.wake.clear()
                continue
            done += 1
            job, self.job = self.job, None
            try:
                job()
            except BaseException as e:  # handed to the caller by join()
                self.error = e
            self.publish(self.flags, 1, done)

    def post(self, job) -> None:
        self.job = job
        self.error = None
        self.posted += 1
        self.publish(self.flags, 0, self.posted)
        self.wake.set()

    def join(self) -> BaseException | None:
        # the worker's last chunk ends about when the caller's does: spin for it (GIL released),
        # then yield the core between checks, in case the worker waits for this very core
        if self.wait(self.flags, 1, self.posted - 1, self.turns) != self.posted:
            while self.wait(self.flags, 1, self.posted - 1, 64) != self.posted:
                _yield()
        return self.error


_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


def _calibrate(wait) -> int:
    # pause turns in SPIN_US (a pause is ~30 ns on Zen 4, ~40 ns on Skylake, a few ns on older cores)
    flags = np.zeros(8, dtype=np.int64)
    wait(flags, 0, 0, 1)
    n = 20000
    t = time.perf_counter()
    wait(flags, 0, 0, n)
    per_us = n / max((time.perf_counter() - t) * 1e6, 1e-3)
    return max(16, int(SPIN_US * per_us))


def pool() -> Workers:
    """The process's kernel workers, created on first use."""
    pid = os.getpid()
    if _POOL[0] is None or _POOL[1] != pid:
        with _POOL_LOCK:
            if _POOL[0] is None or _POOL[1] != pid:
                _POOL[0] = Workers()
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
    call.dispatcher, call.signature = disp, tuple(sig)     # for a jitted plan driver (driver.py)
    return call


def batch_split(kern, work_per_item: int, split: tuple = (0, 2), n_threads: int | None = None,
                min_work: int | None = None):
    """``kern(*args)`` run over chunks of the batch, shared out among ``n_threads`` threads (default:
    ``threads`` of the configuration in force when the split is made, i.e. when a plan is bound).

    ``split`` are the positions of the arguments cut along their first axis: the first one's
    length is the batch ``n``; each of them has ``n * rows`` leading entries (``rows`` per item, 1
    for a 4-D image batch, ``oh * ow`` for im2col's column matrix). The other arguments are shared
    by every chunk. The batch is cut into CHUNKS_PER_THREAD chunks per thread, which the threads
    take one at a time: a worker that starts late, or shares its core with another busy thread,
    takes fewer, so a split is never much slower than one call. Small batches
    (``n * work_per_item < min_work``, default SPLIT_MIN_WORK) or one thread run in one call.
    """
    n_threads = config.get().threads if n_threads is None else n_threads
    min_work = SPLIT_MIN_WORK if min_work is None else min_work

    def run(*args):
        n = args[split[0]].shape[0]
        if n_threads < 2 or n < 2 or n * work_per_item < min_work:
            kern(*args)
            return
        rows = [args[k].shape[0] // n for k in split]
        parts = min(n_threads * CHUNKS_PER_THREAD, n)
        bounds = [n * i // parts for i in range(parts + 1)]
        chunks = []
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            a = list(args)
            for k, r in zip(split, rows):
                a[k] = args[k][b0 * r:b1 * r]
            chunks.append(a)
        todo = iter(chunks)     # next() on it is atomic under the GIL: each chunk runs once

        def share():
            for a in todo:
                kern(*a)
        pool().run([share] * min(n_threads, parts))
    run.__name__ = f"{getattr(kern, '__name__', 'kernel')}_batch_split"
    run.serial = kern           # the one-call form, for plans that keep to one thread
    return run
