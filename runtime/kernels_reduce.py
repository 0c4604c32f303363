"""Reduction kernels: reduce_sum/mean/max/min/prod/any/all into the planned buffer, and
``fused_reduction`` (generated elementwise prologue into scratch, then the reduction).

Reductions use numpy's own reduction loops with ``out=`` (pairwise float
summation, SIMD): bit-identical to the references and allocation-free. The
exception is a float sum or mean over the leading axes (a bias gradient), the
trailing axes (layer norm, softmax gradients), a block of middle axes (a mean over
tokens) or all axes (a loss): numpy runs those 3-10x slower than a numba loop
accumulating in float64, which is also more accurate.

    >>> from graphc.runtime.kernels import KERNELS
    >>> "fused_reduction" in KERNELS
    True
"""
from __future__ import annotations

import numba
import numpy as np

from graphc.ir import TensorSpec
from graphc.ops.fused import infer_program

from .cache import KernelFamily
from .kernels import Call, Const, In, NodeCtx, Out, Scratch, arr_t, ew_call, kernel_for

fam = KernelFamily("reduce")


@fam.kernel(parallel=False)
def sum_rows(x, out, scale):
    # out[j] = scale * sum over rows r of x[r, j], accumulated in float64; the column loop is
    # contiguous, so it vectorizes without reordering any column's sum
    n, c = x.shape
    acc = np.zeros(c, dtype=np.float64)
    for r in range(n):
        xr = x[r]
        for j in range(c):
            acc[j] += xr[j]
    for j in range(c):
        out[j] = acc[j] * scale

_NP = {"reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min, "reduce_prod": np.prod,
       "reduce_any": np.any, "reduce_all": np.all, "reduce_mean": np.mean}


def _reducer(op: str, axis: tuple, keepdims: bool):
    fn = _NP[op]
    axis = tuple(axis)

    def reduce_into(x, out):
        fn(x, axis=axis, keepdims=keepdims, out=out)
    reduce_into.__name__ = f"{op}_into"
    return reduce_into


def _supported(op: str, dtype, in_shape, axis) -> bool:
    if op not in _NP:
        return False
    if op == "reduce_mean" and np.dtype(dtype).kind != "f":
        return False          # TensorFlow's truncating integer mean: the reference does it
    if op in ("reduce_max", "reduce_min") and any(in_shape[a] == 0 for a in axis):
        return False          # empty max/min: the reference's fill value
    return True


@fam.kernel(parallel=False)
def sum_mid(x, out, scale):
    # out[i, j] = scale * sum over r of x[i, r, j], in float64: a sum over middle axes (a mean
    # over a sequence's tokens), one slab of column sums per leading index
    a, k, c = x.shape
    acc = np.zeros(c, dtype=np.float64)
    for i in range(a):
        for j in range(c):
            acc[j] = 0.0
        for r in range(k):
            xr = x[i, r]
            for j in range(c):
                acc[j] += xr[j]
        orow = out[i]
        for j in range(c):
            orow[j] = acc[j] * scale


@fam.kernel(parallel=False, reassoc=True)
def sum_each_row(x, out, scale):
    # out[r] = scale * sum of row r, in float64; reassoc lets LLVM vectorize the row's sum
    n, c = x.shape
    for r in range(n):
        xr = x[r]
        s = 0.0
        for j in range(c):
            s += xr[j]
        out[r] = s * scale


@fam.kernel()
def arg_rows(x, out, want_max):
    # out[r] = the index of the first maximum (want_max) or minimum of row r, a NaN counting as
    # both (np.argmax / np.argmin): the first NaN of a row is its answer
    n, c = x.shape
    for r in range(n):
        xr = x[r]
        best = xr[0]
        k = 0
        if best == best:
            for j in range(1, c):
                v = xr[j]
                if v != v:
                    k = j
                    break
                if (v > best) if want_max else (v < best):
                    best = v
                    k = j
        out[r] = k


@kernel_for("argmax", "argmin")
def bind_arg(ctx: NodeCtx):
    """argmax/argmin over the last axis: one numba call (0.4 us for 32 rows of 10; numpy's
    argmax + astype 1.7 us, and 10-14 us inside the MNIST CNN's training step, where the
    interpreter's data has left the caches). Other axes run the reference."""
    shape = ctx.in_shapes[0]
    (ax,) = ctx.attrs["axis"]
    if ax % len(shape) != len(shape) - 1 or 0 in shape:
        return None
    rows, cols = int(np.prod(shape[:-1], dtype=np.int64)), int(shape[-1])
    k = fam.get("arg_rows")
    sig = (arr_t(ctx.in_dtypes[0], 2), arr_t(ctx.out_dtype, 1), numba.types.boolean)
    return Call(steps=[(k, [In(0, (rows, cols)), Out((rows,)), Const(ctx.op == "argmax")])], name=ctx.op,
                warm=[(k, sig)])


def _leading_sum(op: str, dtype, in_shape, axis, out_desc, in_desc):
    """A numba kernel for a float sum/mean over the leading axes 0..k-1 (a bias gradient: column
    sums), the trailing axes (row sums: layer norm, softmax gradients), a block of middle axes (a
    mean over a sequence's tokens: 34 -> ~4 us, 32x28x64 over axis 1) or all axes (a loss). numpy's
    loops are slow for these narrow shapes, and its calls cost 3-4 us where the kernel's cost
    0.3-1 us. Measured (one thread): 32x26x26x32 over (0, 1, 2) 368 -> 94 us, 32x64x256 over
    (0, 1) 62 -> 41 us; rows of 64, 2048 of them, 56 -> 13 us; 32x10 over 0 2.7 -> 0.3 us, a mean
    of 32 values 4.0 -> 0.3 us. None where numpy's loop stays."""
    k, nd = len(axis), len(in_shape)
    if op not in ("reduce_sum", "reduce_mean") or np.dtype(dtype) not in (np.float32, np.float64) or \
            not 0 < k <= nd or 0 in in_shape:
        return None
    if tuple(sorted(axis)) == tuple(range(nd)):               # everything: one row
        rows, cols = 1, int(np.prod(in_shape, dtype=np.int64))
        kern, n_out, scale = fam.get("sum_each_row"), 1, 1.0 / cols
    elif tuple(axis) == tuple(range(k)):
        rows, cols = int(np.prod(in_shape[:k], dtype=np.int64)), int(np.prod(in_shape[k:], dtype=np.int64))
        kern, n_out, scale = fam.get("sum_rows"), cols, 1.0 / rows
    elif tuple(axis) == tuple(range(nd - k, nd)):
        rows, cols = int(np.prod(in_shape[:nd - k], dtype=np.int64)), int(np.prod(in_shape[nd - k:],
                                                                                dtype=np.int64))
        kern, n_out, scale = fam.get("sum_each_row"), rows, 1.0 / cols
    elif tuple(sorted(axis)) == tuple(range(min(axis), min(axis) + k)):      # a block of middle axes
        a0, a1 = min(axis), min(axis) + k
        lead, mid, tail = (int(np.prod(in_shape[i:j], dtype=np.int64)) for i, j in ((0, a0), (a0, a1), (a1, nd)))
        kern = fam.get("sum_mid")
        step = (kern, [in_desc((lead, mid, tail)), out_desc((lead, tail)),
                       Const(1.0 / mid if op == "reduce_mean" else 1.0)])
        return step, (kern, (arr_t(dtype, 3), arr_t(dtype, 2), numba.types.float64))
    else:
        return None
    step = (kern, [in_desc((rows, cols)), out_desc((n_out,)), Const(scale if op == "reduce_mean" else 1.0)])
    return step, (kern, (arr_t(dtype, 2), arr_t(dtype, 1), numba.types.float64))


@kernel_for(*_NP)
def bind_reduce(ctx: NodeCtx):
    axis, kd = ctx.attrs["axis"], ctx.attrs["keepdims"]
    if not _supported(ctx.op, ctx.out_dtype, ctx.in_shapes[0], axis):
        return None
    lead = _leading_sum(ctx.op, ctx.out_dtype, ctx.in_shapes[0], axis, Out, lambda s: In(0, s))
    if lead is not None:
        return Call(steps=[lead[0]], name=ctx.op, warm=[lead[1]])
    return Call(steps=[(_reducer(ctx.op, axis, kd), [In(0), Out()])], name=ctx.op)


@kernel_for("fused_reduction")
def bind_fused_reduction(ctx: NodeCtx):
    a = ctx.attrs
    rop, rattrs = a["reduce"], dict(a["r_attrs"])
    specs = [TensorSpec(tuple(s), d) for s, d in zip(ctx.in_shapes, ctx.in_dtypes)]
    pro = infer_program(a["program"], specs)
    p_shape, p_dt = tuple(pro.shape), pro.dtype
    if not _supported(rop, p_dt, p_shape, rattrs["axis"]):
        return None
    static = infer_program(a["program"], [TensorSpec(tuple(s), d) for s, d in
                                          zip(ctx.static_in_shapes, ctx.in_dtypes)]).shape
    step, warm = ew_call(a["program"], ctx.in_shapes, ctx.in_dtypes, p_shape, p_dt,
                         tuple(static), "prologue", out_desc=lambda s: Scratch(0, s),
                         static_in_shapes=ctx.static_in_shapes)
    label = "+".join(s[0] for s in a["program"])
    lead = _leading_sum(rop, p_dt, p_shape, rattrs["axis"], Out, lambda s: Scratch(0, s))
    if lead is not None and np.dtype(p_dt) == np.dtype(ctx.out_dtype):
        return Call(steps=[step, lead[0]], name=f"ew[{label}]+{rop}", scratch=[(p_dt, p_shape)],
                    warm=[warm, lead[1]])
    red = _reducer(rop, rattrs["axis"], rattrs["keepdims"])
    return Call(steps=[step, (red, [Scratch(0, p_shape), Out()])], name=f"ew[{label}]+{rop}",
                scratch=[(p_dt, p_shape)], warm=[warm])
