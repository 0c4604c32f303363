"""Fused recurrent-cell kernels: ``lstm_cell`` and ``lstm_cell_grad`` (graphc/ops/rnn.py).

One row-by-row loop per time step: the unit loop reads the four gate blocks of ``z`` and the
state rows contiguously, so it vectorizes. The cell state (and a split gradient's ``dc``) is a
column block of the previous step's output, taken where it lies (any layout) and copied one row at
a time into a contiguous row. The source is generated per dtype: float32 uses the vectorizable
sigmoid/tanh of the elementwise kernels (``codegen.FAST_MATH``, off with ``GRAPHC_FAST_MATH=0``)
at the CPU's full vector width (512 bits on AVX-512: the 32 x 64 cell 8.7 -> 7.9 us), float64
``math.exp``/``math.tanh``. Without a cell state (the first
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
    # out[:, :u] = h_new = o * tanh(c_new), out[:, u:2u] = c_new = f * c + i * g, and with 6u
    # columns (lstm_cell(gates=True)) the activated gates i f g o after them, for the gradient
    n, u = out.shape[0], z.shape[1] // 4
    t = np.empty((out.shape[1] // u, u), dtype=out.dtype)
    cr = np.empty(u, dtype=out.dtype)
    for b in range(n):
        _copy_row(cr, c, b)
        _cell_row(z[b], cr, t)
        _store_row(out[b], t)


@njit(cache=True, nogil=True, error_model="numpy"{flags})
def lstm_cell_sum(z, w, bias, c, out):
    # lstm_cell of (z + bias) + w (attrs['z_sum'], attrs['z_bias']: an unrolled step's slice of
    # x @ W, its bias row and h @ U, added here instead of by kernels of their own between the
    # GEMMs and the cell; the bias add over all steps' x @ W cost the row-LSTM 33 us a step)
    {wide}n, u = out.shape[0], z.shape[1] // 4
    t = np.empty((out.shape[1] // u, u), dtype=out.dtype)
    zt = np.empty(z.shape[1], dtype=z.dtype)
    br = np.empty(z.shape[1], dtype=z.dtype)
    for j in range(br.shape[0]):        # the bias (a variable, any layout) as a contiguous row
        br[j] = bias[j]
    cr = np.empty(u, dtype=out.dtype)
    for b in range(n):
        zr = z[b]
        wr = w[b]
        for j in range(zt.shape[0]):
            zt[j] = (zr[j] + br[j]) + wr[j]
        _copy_row(cr, c, b)
        _cell_row(zt, cr, t)
        _store_row(out[b], t)


@njit(error_model="numpy"{flags})
def _cell_row(zr, cr, t):
    # one row's [h | c (| i f g o)] into t. The gate offsets are unsigned: numba checks a signed
    # index for wrap-around, and this loop ran 20% slower (6.4 -> 5.1 us on 32 x 64 units)
    {wide}u = np.uint64(t.shape[1])
    u2, u3 = np.uint64(2) * u, np.uint64(3) * u
    if t.shape[0] == 6:
        for j in range(u):
            i, f, g, o = _sig(zr[j]), _sig(zr[u + j]), _tanh(zr[u2 + j]), _sig(zr[u3 + j])
            cn = i * g + f * cr[j]
            t[1, j] = cn
            t[0, j] = o * _tanh(cn)
            t[2, j], t[3, j], t[4, j], t[5, j] = i, f, g, o
    else:
        for j in range(u):
            cn = _sig(zr[j]) * _tanh(zr[u2 + j]) + _sig(zr[u + j]) * cr[j]
            t[1, j] = cn
            t[0, j] = _sig(zr[u3 + j]) * _tanh(cn)


@njit(cache=True, nogil=True, error_model="numpy"{flags})
def lstm_cell_grad(z, c, out, dout, g):
    # g = [dz_i dz_f dz_g dz_o (| dc_prev)] from the gates and d_out = [dh | dc]; the gates are
    # read from out = [h | c | i f g o] when the forward step saved them (lstm_cell(gates=True):
    # 7.1 -> 3.9 us per 32 x 64 step), else computed again from z. dc_prev is stored when g has
    # room for it (the op without a cell state has 4u columns)
    n, u = z.shape[0], z.shape[1] // 4
    saved = out.shape[1] == 6 * u
    t = np.empty((5, u), dtype=g.dtype)
    cr = np.empty(u, dtype=g.dtype)
    for b in range(n):
        zr = z[b]
        orow = out[b]
        drow = dout[b]
        _copy_row(cr, c, b)
        if saved:
            for j in range(u):
                _grad_step(t, j, orow[2 * u + j], orow[3 * u + j], orow[4 * u + j], orow[5 * u + j],
                           _tanh(orow[u + j]), drow[j], drow[u + j], cr[j])
        else:
            for j in range(u):
                _grad_step(t, j, _sig(zr[j]), _sig(zr[u + j]), _tanh(zr[2 * u + j]), _sig(zr[3 * u + j]),
                           _tanh(orow[u + j]), drow[j], drow[u + j], cr[j])
        _store_row(g[b], t)


@njit(cache=True, nogil=True, error_model="numpy"{flags})
def lstm_cell_grad_split(z, c, out, dh, dc, g):
    # lstm_cell_grad with d_out = [dh | dc] as two matrices (attrs['split_d']): dh is the product
    # dz_next @ U^T, dc a column block of the next step's gradient, read in place: each row is
    # copied into a contiguous one first (with dc's strides unknown the unit loop did not
    # vectorize: 15.9 us per 32 x 64 step against 6 us)
    {wide}n, u = z.shape[0], z.shape[1] // 4
    saved = out.shape[1] == 6 * u
    t = np.empty((5, u), dtype=g.dtype)
    crow = np.empty(u, dtype=g.dtype)
    cr = np.empty(u, dtype=g.dtype)
    for b in range(n):
        zr = z[b]
        orow = out[b]
        hrow = dh[b]
        _copy_row(crow, dc, b)
        _copy_row(cr, c, b)
        if saved:
            for j in range(u):
                _grad_step(t, j, orow[2 * u + j], orow[3 * u + j], orow[4 * u + j], orow[5 * u + j],
                           _tanh(orow[u + j]), hrow[j], crow[j], cr[j])
        else:
            for j in range(u):
                _grad_step(t, j, _sig(zr[j]), _sig(zr[u + j]), _tanh(zr[2 * u + j]), _sig(zr[3 * u + j]),
                           _tanh(orow[u + j]), hrow[j], crow[j], cr[j])
        _store_row(g[b], t)


@njit(error_model="numpy"{flags})
def _grad_step(t, j, i, f, gg, o, tc, dh, dc_in, cp):
    dc = dc_in + dh * o * ({one} - tc * tc)
    t[0, j] = dc * gg * i * ({one} - i)
    t[1, j] = dc * cp * f * ({one} - f)
    t[2, j] = dc * i * ({one} - gg * gg)
    t[3, j] = dh * tc * o * ({one} - o)
    t[4, j] = dc * f


@njit(error_model="numpy")
def _copy_row(dst, a, b):
    # row b of a 2-D array of any strides (a column block of a step's output, read where it lies)
    # into a contiguous one, so the unit loops reading it vectorize
    for j in range(dst.shape[0]):
        dst[j] = a[b, j]


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
    from . import simd
    wide = "_wide_vectors()\n    " if fast and simd.VECTOR_BYTES == 64 else ""
    src = (_FAST if fast else _EXACT) + _CELL.format(flags=", fastmath={'contract'}" if fast else "",
                                                     one=one, wide=wide)
    return cache.load_module(src, "rnn")


@kernel_for("lstm_cell", "lstm_cell_grad")
def bind_lstm(ctx: NodeCtx):
    dt = ctx.out_dtype
    if dt.kind != "f" or 0 in ctx.in_shapes[0]:
        return None
    from graphc.ops.rnn import _cell_layout, _grad_layout
    cell = ctx.op == "lstm_cell"
    has_c, n_d = (_cell_layout(ctx.n_in, ctx.attrs), 0) if cell else _grad_layout(ctx.n_in, ctx.attrs)
    n, u = ctx.in_shapes[0][0], ctx.in_shapes[0][1] // 4
    z_sum = int(cell and bool(ctx.attrs.get("z_sum") or ctx.attrs.get("z_bias")))
    if z_sum:       # (z, [c,] [w,] [b]): the kernel takes (z, w, b, c), zeros for what is missing
        k = 1 + has_c
        w = In(k) if ctx.attrs.get("z_sum") else Const(np.zeros((n, 4 * u), dt))
        b = In(k + bool(ctx.attrs.get("z_sum"))) if ctx.attrs.get("z_bias") else Const(np.zeros(4 * u, dt))
        ins = [In(0), w, b] + ([In(1)] if has_c else [])
    else:
        ins = [In(i) for i in range(ctx.n_in)]
    if not has_c:      # no cell state: a zero one
        ins.insert(1 + 2 * z_sum, Const(np.zeros((n, u), dt)))
    sig = [arr_t(dt, 2)] * (len(ins) + 1)
    # the cell state is read where it lies (a column block of the previous step's output): a
    # contiguous copy of it per step cost the row-LSTM's training step 56 numpy calls
    sig[1 + 2 * z_sum] = arr_t(dt, 2, "A")
    if z_sum:       # the bias row: a variable as it is (no per-step contiguity check)
        sig[2] = arr_t(dt, 1, "A")
    name = "lstm_cell_sum" if z_sum else ctx.op
    if n_d == 2:        # dc is read where it lies, a column block of the next step's gradient
        name, sig[-2] = "lstm_cell_grad_split", arr_t(dt, 2, "A")
    k = getattr(_module(dt), name)
    return Call(steps=[(k, ins + [Out()])], name=ctx.op, warm=[(k, tuple(sig))])
