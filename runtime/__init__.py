"""graphc.runtime: lowering to numba kernels, memory plan, disk cache and executor.

    compile(graph, fetches, feeds=(), *, cache_dir=None) -> Executable
    Executable.run(feed_values, state, run_key) -> (fetch values, updates)
    Executable.plan                 # the Plan: kernel calls over numbered buffers, peak_bytes
    cache_info(), cache_clear()     # for the CLI
    KERNELS                         # op name -> kernel binder (ops without one run their reference)

    >>> import graphc as gc
    >>> from graphc import runtime
    >>> "matmul" in runtime.KERNELS
    True
"""
from .cache import cache_clear, cache_info, STATS
from .kernels import KERNELS, FALLBACK_REASONS
from . import kernels_linalg, kernels_nn, kernels_reduce, kernels_array, kernels_rnn, kernels_control  # noqa: F401  (register kernels)
from .executor import Executable, compile
from .lower import Plan

__all__ = ["compile", "Executable", "Plan", "KERNELS", "cache_info", "cache_clear", "STATS",
           "FALLBACK_REASONS"]
