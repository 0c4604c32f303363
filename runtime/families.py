"""Hand-written numba kernel families: plain Python functions, compiled through the kernel cache.

A family's functions live in one generated module (``cache.load_module``) so they may call each
other; its source is built from the functions' own lines (``function_source``), and a ``prelude``
(helpers, intrinsics imported from graphc) is put before them.

    >>> fam = KernelFamily("doc")
    >>> @fam.kernel()
    ... def twice(x):
    ...     return 2 * x
    >>> "@njit(cache=True" in fam.source()
    True
"""
from __future__ import annotations

import inspect
import linecache
import textwrap
import types

from graphc import config

from .cache import GENERATION, cache_dir, load_module


def function_source(fn) -> str:
    """``inspect.getsource(fn)``, the same text, for a function defined at the top level of a file:
    its lines from its first decorator to the end of its last statement, which the code object's
    positions give (Python 3.11+), checked by the next line that is not blank being at the top
    level (else, and before 3.11, inspect's). inspect tokenizes each function in Python, ~1 ms apiece, and a
    warm start builds the source of a whole family (17 functions in the nn one) to find its module."""
    code = fn.__code__
    lines = linecache.getlines(code.co_filename)
    end = _last_line(code) if hasattr(code, "co_positions") else None
    if lines and end is not None and code.co_firstlineno <= end <= len(lines):
        after = (ln for ln in lines[end:] if ln.strip())
        if not next(after, "")[:1].isspace():       # not an indented line (inspect keeps comments)
            return "".join(lines[code.co_firstlineno - 1:end])
    return inspect.getsource(fn)


def _last_line(code) -> int | None:
    """The last source line of ``code`` and the code nested in it."""
    ends = [p[1] for p in code.co_positions() if p[1] is not None]
    ends += [_last_line(c) or 0 for c in code.co_consts if isinstance(c, types.CodeType)]
    return max(ends, default=None)


# -- hand-written kernel families ------------------------------------------------------------------
class KernelFamily:
    """Hand-written numba kernels kept as plain Python functions, compiled through the cache.

    ``@fam.kernel(parallel=False)`` marks a function; ``fam.get(name)`` returns its
    numba dispatcher (all marked functions of the family live in one cached module
    so they may call each other).
    """

    def __init__(self, tag: str, prelude=None):
        """``prelude``: a callable returning source text put before the kernels (helpers they call;
        called when the module is built, so it may depend on run-time settings)."""
        self.tag = tag
        self.prelude = prelude
        self.funcs: list[tuple] = []
        self._mod = None
        self._key = None

    def kernel(self, parallel: bool = False, contract: bool = False, reassoc: bool = False):
        """``contract``: let LLVM fuse a*b+c into one FMA (results may differ in the last bit);
        ``reassoc``: let LLVM reorder a float reduction so it vectorizes (a sum's rounding changes).
        Helpers are plain kernels too: LLVM inlines small ones into their callers after numba links
        them. numba's own ``inline="always"`` types the helper again at every call site; dropping it
        took the LSTM program's cold compile from ~6.4 to ~3.9 s at the same run time."""
        def deco(fn):
            self.funcs.append((fn, (parallel, contract, reassoc)))
            return fn
        return deco

    def source(self) -> str:
        parallel = config.get().parallel
        parts = [self.prelude()] if self.prelude else []
        for fn, (par, contract, reassoc) in self.funcs:
            src = textwrap.dedent(function_source(fn))
            lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith("@")]
            opts = ", parallel=True" if par and parallel else ""
            flags = ["'contract'"] * contract + ["'reassoc'"] * reassoc
            opts += f", fastmath={{{', '.join(flags)}}}" if flags else ""
            deco = f"@njit(cache=True, nogil=True, error_model='numpy'{opts})"
            parts.append(deco + "\n" + "\n".join(lines) + "\n")
        return "\n\n".join(parts)

    def get(self, name: str):
        key = (cache_dir(), GENERATION[0], config.get().parallel, self.prelude() if self.prelude else None)
        if self._mod is None or self._key != key:
            self._mod = load_module(self.source(), self.tag)
            self._key = key
        return getattr(self._mod, name)
