"""One BLAS thread while a loop runs: ``with serial(): ...``.

A loop body's GEMMs are small (one time step: batch x units) and strictly sequential, and
OpenBLAS splits such a GEMM over its threads, then hands the next one over again: on the 2-core
machine the row-LSTM's training epoch took 1.4-1.8 s with numpy's default two BLAS threads and
0.19 s with one (scan-based layer, MNIST rows, batch 32, same run; the unrolled layer 0.45 vs
0.18 s). ``serial`` sets numpy's OpenBLAS to one thread while at least one loop runs (counted, so
nested and concurrent loops nest) and restores the previous count after the last. Where numpy's
BLAS is not OpenBLAS (no such symbol), it does nothing.

    >>> with serial():
    ...     pass
"""
from __future__ import annotations

import contextlib
import ctypes
import threading

_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
            ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
            ("openblas_set_num_threads", "openblas_get_num_threads"))


def _find():
    try:
        try:
            from numpy._core import _multiarray_umath as mu        # numpy >= 2
        except ImportError:                                         # pragma: no cover (numpy 1.x)
            from numpy.core import _multiarray_umath as mu
        lib = ctypes.CDLL(mu.__file__)    # already loaded: dlsym searches the libraries it links
    except (OSError, ImportError, AttributeError):                  # pragma: no cover
        return None
    for set_name, get_name in _SYMBOLS:
        if hasattr(lib, set_name) and hasattr(lib, get_name):
            set_fn, get_fn = getattr(lib, set_name), getattr(lib, get_name)
            set_fn.argtypes, set_fn.restype, get_fn.restype = [ctypes.c_int], None, ctypes.c_int
            return set_fn, get_fn
    return None                                                     # pragma: no cover


_FNS = _find()
AVAILABLE = _FNS is not None
_LOCK = threading.Lock()
_DEPTH = [0, 1]     # loops running, the thread count to restore


def num_threads() -> int:
    """numpy's OpenBLAS thread count now (1 where unknown)."""
    return int(_FNS[1]()) if AVAILABLE else 1


@contextlib.contextmanager
def serial():
    """One BLAS thread inside the block (and in every thread while any such block runs)."""
    if not AVAILABLE:
        yield
        return
    with _LOCK:
        if _DEPTH[0] == 0:
            _DEPTH[1] = int(_FNS[1]())
            if _DEPTH[1] != 1:
                _FNS[0](1)
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0 and _DEPTH[1] != 1:
                _FNS[0](_DEPTH[1])
