"""Reduction kernels: reduce_sum/mean/max/min/prod/any/all into the planned buffer,
``fused_reduction`` (generated elementwise prologue into scratch, then the reduction), and numba
kernels for reduce_logsumexp, reduce_variance and cumsum over a block of consecutive axes.

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

import math

import numpy as np

from graphc.ir import TensorSpec
from graphc.ops.fused import infer_program

from .baseline import NP_REDUCERS as _NP, numpy_reducer as _reducer, numpy_reduction_ok as _supported
from .families import KernelFamily
from .kernels import Call, Const, In, InRows, NodeCtx, Out, Scratch, arr_t, scalar_t, ew_call, kernel_for

fam = KernelFamily("reduce")


@fam.kernel(parallel=False)
def sum_rows(x, ld, out, scale):
    # out[j] = scale * sum over rows r of x[r * ld + j], accumulated in float64: the matrix's
    # rows lie ld elements apart (a column block is read where it lies); each row's loop is
    # contiguous, so it vectorizes without reordering any column's sum
    c = out.shape[0]
    n = (x.shape[0] - c) // ld + 1
    acc = np.zeros(c, dtype=np.float64)
    for r in range(n):
        xr = x[r * ld:r * ld + c]
        for j in range(c):
            acc[j] += xr[j]
    for j in range(c):
        out[j] = acc[j] * scale

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
    sig = (arr_t(ctx.in_dtypes[0], 2), arr_t(ctx.out_dtype, 1), scalar_t("boolean"))
    return Call(steps=[(k, [In(0, (rows, cols)), Out((rows,)), Const(ctx.op == "argmax")])], name=ctx.op,
                warm=[(k, sig)])


def _leading_sum(op: str, dtype, in_shape, axis, out_desc, in_desc, in_rows):
    """A numba kernel for a float sum/mean over the leading axes 0..k-1 (a bias gradient: column
    sums), the trailing axes (row sums: layer norm, softmax gradients), a block of middle axes (a
    mean over a sequence's tokens: 34 -> ~4 us, 32x28x64 over axis 1) or all axes (a loss). numpy's
    loops are slow for these narrow shapes, and its calls cost 3-4 us where the kernel's cost
    0.3-1 us. Measured (one thread): 32x26x26x32 over (0, 1, 2) 368 -> 94 us, 32x64x256 over
    (0, 1) 62 -> 41 us; rows of 64, 2048 of them, 56 -> 13 us; 32x10 over 0 2.7 -> 0.3 us, a mean
    of 32 values 4.0 -> 0.3 us. None where numpy's loop stays. ``in_desc(shape)`` describes the
    input reshaped, ``in_rows(rows, cols)`` it as a matrix with a leading dimension (column sums:
    the row-LSTM's bias gradient reads its stacked gate gradients, a column block of a buffer,
    where they lie: 61 -> 26 us for 896 x 256, which a contiguous copy cost before)."""
    k, nd = len(axis), len(in_shape)
    if op not in ("reduce_sum", "reduce_mean") or np.dtype(dtype) not in (np.float32, np.float64) or \
            not 0 < k <= nd or 0 in in_shape:
        return None
    if tuple(sorted(axis)) == tuple(range(nd)):               # everything: one row
        rows, cols = 1, int(np.prod(in_shape, dtype=np.int64))
        kern, n_out, scale = fam.get("sum_each_row"), 1, 1.0 / cols
    elif tuple(axis) == tuple(range(k)):
        rows, cols = int(np.prod(in_shape[:k], dtype=np.int64)), int(np.prod(in_shape[k:], dtype=np.int64))
        kern = fam.get("sum_rows")
        scale = 1.0 / rows if op == "reduce_mean" else 1.0
        step = (kern, in_rows(rows, cols) + [out_desc((cols,)), Const(scale)])
        return step, (kern, (arr_t(dtype, 1), scalar_t("intp"), arr_t(dtype, 1), scalar_t("float64")))
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
        return step, (kern, (arr_t(dtype, 3), arr_t(dtype, 2), scalar_t("float64")))
    else:
        return None
    step = (kern, [in_desc((rows, cols)), out_desc((n_out,)), Const(scale if op == "reduce_mean" else 1.0)])
    return step, (kern, (arr_t(dtype, 2), arr_t(dtype, 1), scalar_t("float64")))


@kernel_for(*_NP)
def bind_reduce(ctx: NodeCtx):
    axis, kd = ctx.attrs["axis"], ctx.attrs["keepdims"]
    if not _supported(ctx.op, ctx.out_dtype, ctx.in_shapes[0], axis):
        return None
    lead = _leading_sum(ctx.op, ctx.out_dtype, ctx.in_shapes[0], axis, Out, lambda s: In(0, s),
                        lambda r, c: [InRows(0, r, c)])
    if lead is not None:
        return Call(steps=[lead[0]], name=ctx.op, warm=[lead[1]])
    return Call(steps=[(_reducer(ctx.op, axis, kd, ctx.in_dtypes[0]), [In(0), Out()])], name=ctx.op)


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
    lead = _leading_sum(rop, p_dt, p_shape, rattrs["axis"], Out, lambda s: Scratch(0, s),
                        lambda r, c: [Scratch(0, (r * c,)), Const(c)])
    if lead is not None and np.dtype(p_dt) == np.dtype(ctx.out_dtype):
        return Call(steps=[step, lead[0]], name=f"ew[{label}]+{rop}", scratch=[(p_dt, p_shape)],
                    warm=[warm, lead[1]])
    red = _reducer(rop, rattrs["axis"], rattrs["keepdims"], p_dt)
    return Call(steps=[step, (red, [Scratch(0, p_shape), Out()])], name=f"ew[{label}]+{rop}",
                scratch=[(p_dt, p_shape)], warm=[warm])


# -- logsumexp, variance, cumsum over a block of consecutive axes --------------------------------------
# The input is viewed as (lead, mid, tail) with the reduced (or scanned) axes in the middle; each kernel
# keeps one row of per-column state for the tail, so the inner loops run along contiguous memory
# (a trailing reduction is tail 1, a leading one lead 1). Sums are in float64, as in sum_mid.
@fam.kernel(parallel=False)
def logsumexp_mid(x, out):
    # out[i, j] = m + log(sum over r of exp(x[i, r, j] - m)), m the max over r where it is finite,
    # else 0 (TensorFlow's form: all -inf gives -inf, an inf gives inf, a NaN NaN)
    a, k, c = x.shape
    m = np.empty(c, dtype=np.float64)
    acc = np.empty(c, dtype=np.float64)
    for i in range(a):
        for j in range(c):
            m[j] = -np.inf
        for r in range(k):
            xr = x[i, r]
            for j in range(c):
                v = np.float64(xr[j])
                m[j] = v if (v > m[j] or v != v) else m[j]
        for j in range(c):
            m[j] = m[j] if (m[j] - m[j] == 0.0) else 0.0
            acc[j] = 0.0
        for r in range(k):
            xr = x[i, r]
            for j in range(c):
                acc[j] += math.exp(np.float64(xr[j]) - m[j])
        orow = out[i]
        for j in range(c):
            orow[j] = math.log(acc[j]) + m[j]


@fam.kernel(parallel=False)
def variance_mid(x, out):
    # out[i, j] = the mean over r of (x[i, r, j] - mean)^2: two passes, in float64
    a, k, c = x.shape
    mean = np.empty(c, dtype=np.float64)
    acc = np.empty(c, dtype=np.float64)
    for i in range(a):
        for j in range(c):
            mean[j] = 0.0
            acc[j] = 0.0
        for r in range(k):
            xr = x[i, r]
            for j in range(c):
                mean[j] += xr[j]
        for j in range(c):
            mean[j] = mean[j] / k
        for r in range(k):
            xr = x[i, r]
            for j in range(c):
                d = xr[j] - mean[j]
                acc[j] += d * d
        orow = out[i]
        for j in range(c):
            orow[j] = acc[j] / k


@fam.kernel(parallel=False)
def cumsum_mid(x, out, exclusive, reverse, start):
    # running sums along the middle axis in x's dtype and order (np.cumsum's rounding); start is
    # -0.0 for floats, so that the first sum is the first element itself (np.cumsum([-0.0]) is -0.0)
    a, k, c = x.shape
    acc = np.empty(c, dtype=x.dtype)
    for i in range(a):
        for j in range(c):
            acc[j] = start
        for t in range(k):
            r = k - 1 - t if reverse else t
            xr = x[i, r]
            orow = out[i, r]
            if exclusive:
                for j in range(c):
                    orow[j] = acc[j] if t > 0 else 0
                    acc[j] += xr[j]
            else:
                for j in range(c):
                    acc[j] += xr[j]
                    orow[j] = acc[j]


def _mid_view(shape, axes) -> tuple | None:
    """``shape`` as (lead, mid, tail) with ``axes`` (consecutive) in the middle; None otherwise."""
    axes = sorted(axes)
    if not axes or axes != list(range(axes[0], axes[0] + len(axes))) or 0 in shape:
        return None
    a0, a1 = axes[0], axes[-1] + 1
    return tuple(int(np.prod(shape[i:j], dtype=np.int64)) for i, j in ((0, a0), (a0, a1), (a1, len(shape))))


def _permute_into(x, out, perm):
    np.copyto(out, x.transpose(perm))


@kernel_for("reduce_logsumexp", "reduce_variance")
def bind_mid_reduction(ctx: NodeCtx):
    """One numba call over a (lead, mid, tail) view. Axes that are not consecutive are moved to
    the end first (a transposed copy into scratch); empty inputs (-inf, NaN) run the reference."""
    shape, axis = tuple(ctx.in_shapes[0]), tuple(ctx.attrs["axis"])
    if np.dtype(ctx.out_dtype) not in (np.float32, np.float64) or 0 in shape or not axis:
        return None
    k = fam.get("logsumexp_mid" if ctx.op == "reduce_logsumexp" else "variance_mid")
    sig = (arr_t(ctx.out_dtype, 3), arr_t(ctx.out_dtype, 2))
    view = _mid_view(shape, axis)
    if view is not None:
        return Call(steps=[(k, [In(0, view), Out((view[0], view[2]))])], name=ctx.op, warm=[(k, sig)])
    perm = tuple(i for i in range(len(shape)) if i not in axis) + axis
    moved = tuple(shape[i] for i in perm)
    view = _mid_view(moved, range(len(shape) - len(axis), len(shape)))
    return Call(steps=[(_permute_into, [In(0), Scratch(0, moved), Const(perm)]),
                       (k, [Scratch(0, view), Out((view[0], view[2]))])],
                name=ctx.op, scratch=[(ctx.out_dtype, moved)], warm=[(k, sig)])


@kernel_for("cumsum")
def bind_cumsum(ctx: NodeCtx):
    view = _mid_view(ctx.in_shapes[0], (ctx.attrs["axis"],))
    dt = np.dtype(ctx.out_dtype)
    if view is None or dt.name not in ("float32", "float64", "int32", "int64"):
        return None
    k = fam.get("cumsum_mid")
    start = dt.type(-0.0) if dt.kind == "f" else dt.type(0)
    sig = (arr_t(dt, 3), arr_t(dt, 3), scalar_t("boolean"), scalar_t("boolean"), scalar_t(dt))
    return Call(steps=[(k, [In(0, view), Out(view), Const(bool(ctx.attrs["exclusive"])),
                            Const(bool(ctx.attrs["reverse"])), Const(start)])], name="cumsum", warm=[(k, sig)])
