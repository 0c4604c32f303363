"""Fused recurrent-cell kernels: ``lstm_cell`` and ``lstm_cell_grad`` (graphc/ops/rnn.py).

One row-by-row loop per time step: the unit loop reads the four gate blocks of ``z`` and the
state rows contiguously, so it vectorizes. The source is generated per dtype: float32 uses the
vectorizable sigmoid/tanh of the elementwise kernels (``codegen.FAST_MATH``, off with
``GRAPHC_FAST_MATH=0``), float64 ``math.exp``/``math.tanh``. Without a cell state (the first
step) the same kernels run on a zero state: one compile each instead of two. The math helpers
are plain njit functions that LLVM inlines: with numba's ``inline="always"`` a cold compile took
1.1 s (cell) and 1.2 s (gradient), without it 0.9 s and 0.34 s.

    >>> from graphc.runtime.kernels import KERNELS
    >>> "lstm_cell" in KERNELS and "lstm_cell_grad" in KERNELS
    True
"""
from __future__ import annotations

import numpy as np

from graphc import config

from . import cache, codegen
from .kernels import Call, Const, In, NodeCtx, Out, arr_t, kernel_for

_EXACT = '''
@njit(error_model="numpy")
def _sig(x):
    e = math.exp(-abs(x))
    return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)


@njit(error_model="numpy")
def _tanh(x):
    return math.tanh(x)
'''

_FAST = codegen.FAST_MATH + '''

@njit(error_model="numpy")
def _sig(x):
    return _vsigmoid(x)


@njit(error_model="numpy")
def _tanh(x):
    return _vtanh(x)
'''

_CELL = '''
@njit(cache=True, nogil=True, error_model="numpy"{flags})
def lstm_cell(z, c, out):
    # out[:, :u] = h_new = o * tanh(c_new), out[:, u:] = c_new = f * c + i * g. The gate offsets
    # are unsigned: numba checks a signed index for wrap-around, and this loop ran 20% slower
    # (6.4 -> 5.1 us on 32 x 64 units; the gradient kernel measured the same either way)
    n, u = out.shape[0], np.uint64(out.shape[1] // 2)
    t = np.empty((2, out.shape[1] // 2), dtype=out.dtype)
    u2, u3 = np.uint64(2) * u, np.uint64(3) * u
    for b in range(n):
        zr = z[b]
        cr = c[b]
        for j in range(u):
            cn = _sig(zr[j]) * _tanh(zr[u2 + j]) + _sig(zr[u + j]) * cr[j]
            t[1, j] = cn
            t[0, j] = _sig(zr[u3 + j]) * _tanh(cn)
        _store_row(out[b], t)


@njit(cache=True, nogil=True, error_model="numpy"{flags})
def lstm_cell_grad(z, c, out, dout, g):
    # g = [dz_i dz_f dz_g dz_o (| dc_prev)] from the recomputed gates and d_out = [dh | dc];
    # dc_prev is stored when g has room for it (the op without a cell state has 4u columns)
    n, u = z.shape[0], z.shape[1] // 4
    t = np.empty((5, u), dtype=g.dtype)
    for b in range(n):
        zr = z[b]
        orow = out[b]
        drow = dout[b]
        for j in range(u):
            i = _sig(zr[j])
            f = _sig(zr[u + j])
            gg = _tanh(zr[2 * u + j])
            o = _sig(zr[3 * u + j])
            tc = _tanh(orow[u + j])
            dh = drow[j]
            dc = drow[u + j] + dh * o * ({one} - tc * tc)
            t[0, j] = dc * gg * i * ({one} - i)
            t[1, j] = dc * c[b, j] * f * ({one} - f)
            t[2, j] = dc * i * ({one} - gg * gg)
            t[3, j] = dh * tc * o * ({one} - o)
            t[4, j] = dc * f
        _store_row(g[b], t)


@njit(error_model="numpy")
def _store_row(row, t):
    # the blocks of one output row are computed into t (k, u) first: stores to several column
    # blocks of the same array at a run-time distance u kept LLVM from vectorizing the unit loop
    # (lstm_cell_grad 41 us -> 6.7 us on 32 x 64 units); the row takes its first len(row) // u
    u = t.shape[1]
    for q in range(row.shape[0] // u):
        for j in range(u):
            row[q * u + j] = t[q, j]
'''


def _module(dtype):
    fast = np.dtype(dtype) == np.float32 and config.get().fast_math
    one = "_F(1.0)" if fast else "1.0"      # a float32 constant keeps float32 math in float32
    src = (_FAST if fast else _EXACT) + _CELL.format(flags=", fastmath={'contract'}" if fast else "",
                                                     one=one)
    return cache.load_module(src, "rnn")


@kernel_for("lstm_cell", "lstm_cell_grad")
def bind_lstm(ctx: NodeCtx):
    dt = ctx.out_dtype
    if dt.kind != "f" or 0 in ctx.in_shapes[0]:
        return None
    ins = [In(i) for i in range(ctx.n_in)]
    if ctx.n_in == (1 if ctx.op == "lstm_cell" else 3):      # no cell state: a zero one
        n, u = ctx.in_shapes[0][0], ctx.in_shapes[0][1] // 4
        ins.insert(1, Const(np.zeros((n, u), dt)))
    k = getattr(_module(dt), ctx.op)
    return Call(steps=[(k, ins + [Out()])], name=ctx.op, warm=[(k, (arr_t(dt, 2),) * (len(ins) + 1))])
