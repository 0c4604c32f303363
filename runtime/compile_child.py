"""The compile child: a new Python process that compiles kernels into the disk cache and exits.

``cache.compile_parallel`` and tiered execution (``cache.compile_in_background``) hand part of a
plan's kernels to such a process while this one goes on. It is started as a new interpreter
(``subprocess``, which execs through ``vfork``), not forked: ``fork()`` runs OpenBLAS's
``pthread_atfork`` handler, which stops OpenBLAS's worker threads, and a GEMM another thread of
the process was running on them then waited forever (a loop of 256 x 256 ``np.matmul`` beside
a thread that forks hung at once; with one BLAS thread it ran on). The price is the child's
start: ~0.5 s to import numba and this package, while the parent runs.

The child dies with the parent (``PR_SET_PDEATHSIG``; the parent's pid is its argument), imports
numba and this package, then reads one pickled job from its stdin (the parent may send it after
the child started: its import overlaps the parent's work): per kernel, the module name and file
in the cache folder, the function's name and the numba signature. It imports each module from
its file as the parent did (``cache.import_cached``), compiles with ``cache.ensure_compiled``
(numba writes its cache files by rename: a killed child leaves no entry a later process would
trust), and exits with status 1 on the first failure. After each kernel it writes the kernel's
index in the job to stdout, one line each: tiered execution swaps kernels in as they land
(``cache.compile_in_background``).
"""
from __future__ import annotations

import os
import pickle
import sys


def _die_with_parent(parent: int) -> None:
    import ctypes
    import signal
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))    # PR_SET_PDEATHSIG
    if os.getppid() != parent:          # the parent died before the line above
        os._exit(1)


def main() -> int:
    _die_with_parent(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
    from . import cache         # before the job: the parent may still be deciding what to send
    job = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    for i, (modname, path, func, sig) in enumerate(job["kernels"]):
        disp = getattr(cache.import_cached(modname, path), func)
        cache.ensure_compiled(disp, sig)
        out.write(b"%d\n" % i)     # kernel i is in the cache (the parent may swap it in now)
        out.flush()
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except BaseException:       # noqa: BLE001 - the parent compiles (or reports) what is left
        code = 1
    os._exit(code)
