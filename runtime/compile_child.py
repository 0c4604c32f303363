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

A ``"plan"`` job (``cache.bind_in_background``, from a process that has not imported numba) holds
a graph, its fetches, feeds, feed shapes, schedule and configuration instead: the child binds the
plan itself, writes ``todo`` and the JSON list of the kernels it lacks (``cache.entry_key``), reads
a second message, the parent's baseline first-run times by node, compiles the kernels in the
order of the baseline time they save (``executor._by_benefit``), writing each one's index as it
lands, and marks the plan compiled (``cache.mark_plan_compiled``).
"""
from __future__ import annotations

import json
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
    if "plan" in job:
        return _bind_and_compile(job["plan"], out)
    for i, (modname, path, func, sig) in enumerate(job["kernels"]):
        disp = getattr(cache.import_cached(modname, path), func)
        cache.ensure_compiled(disp, sig)
        out.write(b"%d\n" % i)     # kernel i is in the cache (the parent may swap it in now)
        out.flush()
    return 0


def _bind_and_compile(p: dict, out) -> int:
    from graphc import config

    from . import cache
    from .executor import _by_benefit
    from .lower import bind_schedule, lower
    with config.use(p["config"]):
        binding = bind_schedule(p["graph"], p["fetches"], p["feeds"], p["shapes"], order=p["order"])
        todo = cache.cold(binding.kernels())
        out.write(b"todo " + json.dumps([cache.entry_key(d, s) for d, s in todo]).encode() + b"\n")
        out.flush()
        seconds = pickle.load(sys.stdin.buffer)
        if todo:
            baseline = lower(p["graph"], p["fetches"], p["feeds"], p["shapes"], reference_only=True,
                             order=p["order"])
            index = {pair: i for i, pair in enumerate(todo)}
            ranked = list(_by_benefit(binding, baseline, todo, seconds))

            def landed(pair):
                out.write(b"%d\n" % index[pair])
                out.flush()
            if config.get().compile_jobs > 2:      # more children, each a share of the modules
                if not cache.compile_in_background(ranked, on_done=landed):
                    return 1
            else:
                for disp, sig in ranked:
                    cache.ensure_compiled(disp, sig)
                    landed((disp, sig))
        cache.mark_plan_compiled(p["marker"])
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except BaseException:       # noqa: BLE001 - the parent compiles (or reports) what is left
        code = 1
    os._exit(code)
