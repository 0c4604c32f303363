"""GEMMs called from numba kernels, on numpy's own BLAS library.

numba's ``np.dot`` reaches BLAS through SciPy, whose wheel carries a second OpenBLAS with its own
thread pool: in a process that used both in turn, a 32x784x64 sgemm took 56 us through numpy and
64 us through numba, against 26 us with numpy's alone. Here ``cblas_gemm`` is an intrinsic that
calls the ``cblas_?gemm`` numpy itself was built with (found with ``dlsym`` through numpy's
extension module, which links it; registered with LLVM under a fixed name, so a kernel that calls
it caches like any other). So every GEMM of a plan, whether numpy or a kernel calls it, runs on one
BLAS and one set of threads, and GEMMs can run inside a jitted plan driver (``driver.py``).

``gemm_into(a, b, out, ta, tb)`` is the 2-D kernel: ``out = op(a) @ op(b)`` with ``op`` a transpose
where ``ta`` / ``tb`` is nonzero; ``a`` and ``b`` may have any strides (an LSTM's row slices are
handed to BLAS as they are, like numpy's matmul does). ``gemm_batch_into`` is its 3-D form, with a
batch of 1 broadcast. Measured (2-core dev box): a 32x64 @ 64x10 float32 product 2.1 us through
``np.matmul(..., out=)`` and 1.0 us through the kernel's entry point; a 32x784x64 one the same
(~60 us) both ways.

Plans use these kernels with jitted drivers on (``driver="numba"`` in ``graphc.config``), where a GEMM would otherwise
cut a segment; else ``np.matmul``: the kernel's cold compile is ~0.45 s past numba's own start-up
(the MLP forward's cold compile + first run: 1.0-1.2 s with np.matmul, 2.1-2.3 s with the kernel),
which ~1 us per call does not pay back.

``AVAILABLE`` is False where the library cannot be found (numpy built on another BLAS whose symbols
do not come through its extension module): GEMMs then stay with ``np.matmul``.

    >>> import numpy as np
    >>> from graphc.runtime import blas
    >>> a, b = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    >>> out = np.empty((2, 4), np.float32)
    >>> if blas.AVAILABLE: blas.gemm_kernel(2)(a, b, out, 0, 1)
    ... else: np.matmul(a, b.T, out=out)
    >>> out.tolist()
    [[3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0]]
"""
from __future__ import annotations

import ctypes

import llvmlite.binding as ll
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .families import KernelFamily

# (symbol pattern, integer bits): numpy >= 2 wheels (scipy-openblas, ILP64), numpy 1.2x wheels
# (openblas64_), then LP64 builds (Accelerate, system OpenBLAS / MKL)
_CANDIDATES = (("scipy_cblas_{}gemm64_", 64), ("cblas_{}gemm64_", 64), ("scipy_cblas_{}gemm", 32),
               ("cblas_{}gemm", 32))
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _find_gemm():
    """(addresses {"s": ..., "d": ...}, integer bits, symbol pattern) of numpy's cblas sgemm/dgemm,
    or None."""
    try:
        try:
            from numpy._core import _multiarray_umath as mu        # numpy >= 2
        except ImportError:                                         # pragma: no cover (numpy 1.x)
            from numpy.core import _multiarray_umath as mu
        lib = ctypes.CDLL(mu.__file__)    # already loaded: dlsym searches it and the libraries it links
    except (OSError, ImportError, AttributeError):                  # pragma: no cover
        return None
    for pattern, bits in _CANDIDATES:
        try:
            addr = {p: ctypes.cast(getattr(lib, pattern.format(p)), ctypes.c_void_p).value for p in "sd"}
        except AttributeError:
            continue
        return addr, bits, pattern
    return None                                                     # pragma: no cover


_FOUND = _find_gemm()
AVAILABLE = _FOUND is not None
INT_BITS = _FOUND[1] if AVAILABLE else 0
LIBRARY_SYMBOL = _FOUND[2] if AVAILABLE else ""


def _symbol(prefix: str) -> str:
    return f"graphc_cblas_{prefix}gemm_i{INT_BITS}"


if AVAILABLE:
    for _p, _addr in _FOUND[0].items():
        ll.add_symbol(_symbol(_p), _addr)


@intrinsic
def cblas_gemm(typingctx, ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    """``c = op(a) @ op(b)`` (row-major, alpha 1, beta 0) for float32/float64 arrays a, b, c given
    by their first elements: op transposes where ``ta`` / ``tb`` is nonzero; the leading dimensions
    are in elements."""
    if not AVAILABLE or not all(isinstance(t, types.Array) for t in (a, b, c)) \
            or not a.dtype == b.dtype == c.dtype or a.dtype not in (types.float32, types.float64):
        return None
    sig = types.void(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)

    def codegen(context, builder, sig, args):
        i32, iw = ir.IntType(32), ir.IntType(INT_BITS)
        ft = context.get_value_type(sig.args[5].dtype)
        fp = ft.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, iw, iw, iw, ft, fp, iw, fp, iw, ft, fp, iw])
        name = _symbol("s" if sig.args[5].dtype == types.float32 else "d")
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)

        def integer(k):
            v = context.cast(builder, args[k], sig.args[k], types.int64)
            return builder.trunc(v, iw) if INT_BITS < 64 else v

        def data(k):
            return builder.bitcast(context.make_array(sig.args[k])(context, builder, args[k]).data, fp)

        def trans(k):
            v = context.cast(builder, args[k], sig.args[k], types.int64)
            return builder.select(builder.icmp_signed("!=", v, ir.Constant(ir.IntType(64), 0)),
                                  ir.Constant(i32, _TRANS), ir.Constant(i32, _NO_TRANS))
        builder.call(fn, [ir.Constant(i32, _ROW_MAJOR), trans(0), trans(1), integer(2), integer(3),
                          integer(4), ir.Constant(ft, 1.0), data(5), integer(6), data(7), integer(8),
                          ir.Constant(ft, 0.0), data(9), integer(10)])
        return context.get_dummy_value()
    return sig, codegen


def _prelude() -> str:
    return f"from graphc.runtime.blas import cblas_gemm  # {LIBRARY_SYMBOL} i{INT_BITS}\n"


fam = KernelFamily("blas", prelude=_prelude)


@fam.kernel()
def _packed(a):
    # a C-contiguous copy of 2-D a, for strides BLAS cannot take (loops: np.ascontiguousarray
    # took 0.4 s more to compile)
    c = np.empty((a.shape[0], a.shape[1]), a.dtype)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            c[i, j] = a[i, j]
    return c


@fam.kernel()
def gemm_into(a, b, out, ta, tb):
    # out (m, n) = op(a) @ op(b), op a transpose where ta / tb is nonzero; out C-contiguous. An
    # operand stored by rows (unit column stride) or by columns goes to BLAS as it is, with its
    # leading dimension; other strides are packed first
    m, n = out.shape
    k = a.shape[0] if ta else a.shape[1]
    if m == 0 or n == 0:
        return
    if k == 0:
        for i in range(m):
            for j in range(n):
                out[i, j] = 0
        return
    isz = a.itemsize
    ta, tb = ta != 0, tb != 0
    r, c = a.shape
    if (c == 1 or a.strides[1] == isz) and (r == 1 or (a.strides[0] >= c * isz and a.strides[0] % isz == 0)):
        lda = max(a.strides[0] // isz, c) if r > 1 else c
    elif a.strides[1] > 0 and a.strides[1] % isz == 0 and (r == 1 or (a.strides[0] == isz and a.strides[1] >= r * isz)):
        lda, ta = (a.strides[1] // isz if c > 1 else r), not ta      # stored by columns: a^T by rows
    else:
        a = _packed(a)
        lda = c
    r, c = b.shape
    if (c == 1 or b.strides[1] == isz) and (r == 1 or (b.strides[0] >= c * isz and b.strides[0] % isz == 0)):
        ldb = max(b.strides[0] // isz, c) if r > 1 else c
    elif b.strides[1] > 0 and b.strides[1] % isz == 0 and (r == 1 or (b.strides[0] == isz and b.strides[1] >= r * isz)):
        ldb, tb = (b.strides[1] // isz if c > 1 else r), not tb
    else:
        b = _packed(b)
        ldb = c
    cblas_gemm(ta, tb, m, n, k, a, lda, b, ldb, out, n)


@fam.kernel()
def gemm_batch_into(a, b, out, ta, tb):
    # out[e] = op(a[e]) @ op(b[e]) for every e of out's batch; a batch of 1 in a or b is broadcast
    for e in range(out.shape[0]):
        gemm_into(a[e if a.shape[0] > 1 else 0], b[e if b.shape[0] > 1 else 0], out[e], ta, tb)


def gemm_kernel(ndim: int):
    """The numba GEMM kernel for operands of ``ndim`` (2 or 3) dimensions."""
    return fam.get("gemm_into" if ndim == 2 else "gemm_batch_into")


def gemm_signature(dtype, ndim: int) -> tuple:
    """The kernel's argument types: a and b of any layout, out C-contiguous, two int64 flags."""
    from .kernels import arr_t, scalar_t
    return (arr_t(dtype, ndim, "A"), arr_t(dtype, ndim, "A"), arr_t(dtype, ndim), scalar_t("int64"), scalar_t("int64"))
