"""NN kernels: softmax / log-softmax / cross-entropy over the last axis, pooling and its gradients,
and the direct conv2d forward used for single-channel inputs (bound in kernels_linalg).

Rows are processed independently (``prange`` over rows / batch); sums are
accumulated in float64. Cases a kernel does not cover (softmax over another
axis, invalid labels...) run the numpy reference, which also raises the
reference's error messages.

    >>> from graphc.runtime.kernels import KERNELS
    >>> "max_pool2d_grad" in KERNELS
    True
"""
from __future__ import annotations

import math

import numpy as np

from graphc import config
from graphc.ops.nn import _geometry
from graphc.ops.registry import get_op

from . import codegen, threads
from .families import KernelFamily
from .kernels import Call, Const, In, NodeCtx, Out, arr_t, scalar_t, kernel_for


def _prelude() -> str:
    from . import simd      # numba intrinsics: imported when a kernel is bound, not by the baseline tier
    return codegen.exp_prelude() + \
        f"from graphc.runtime.simd import conv_filter_grad_taps9_rows, conv_taps9_rows  # simd " \
        f"{simd.source_digest()}\n"


fam = KernelFamily("nn", prelude=_prelude)
prange = range      # the family's kernels run compiled, where prange is numba's (cache.HEADER)


@fam.kernel()
def _row_max(xr, c):
    # the largest of xr[0..c) (the shift that keeps exp from overflowing)
    m = xr[0]
    for j in range(1, c):
        if xr[j] > m:
            m = xr[j]
    return m


@fam.kernel(reassoc=True)
def _row_sum(v, c):
    # sum of v[0..c) in float64, reordered by LLVM so it vectorizes
    s = 0.0
    for j in range(c):
        s += v[j]
    return s


def _exp(x):
    """exp(x). The family's generated module defines its own ``_exp`` in its prelude
    (``codegen.exp_prelude``: the vectorizable float32 exp); this one, libm's, is its meaning."""
    return math.exp(x)


@fam.kernel()
def _row_exp(xr, c, m, e):
    # e[:c] = exp(xr - m)
    for j in range(c):
        e[j] = _exp(xr[j] - m)


# Softmax family: the exponentials go into a row (the output itself, or a scratch row) with the
# vectorized float32 exp, then one reassociated sum. Measured (8192 rows of 64, float32, one thread):
# softmax 2.06 -> 0.67 ms; libm's scalar exp in the summing loop was the cost.
@fam.kernel(parallel=False)
def softmax_rows(x, out):
    n, c = x.shape
    for r in range(n):
        xr = x[r]
        orow = out[r]
        _row_exp(xr, c, _row_max(xr, c), orow)
        inv = 1.0 / _row_sum(orow, c)
        for j in range(c):
            orow[j] = orow[j] * inv


@fam.kernel(parallel=False)
def log_softmax_rows(x, out):
    n, c = x.shape
    for r in range(n):
        xr = x[r]
        orow = out[r]
        m = _row_max(xr, c)
        _row_exp(xr, c, m, orow)
        ls = math.log(_row_sum(orow, c))
        for j in range(c):
            orow[j] = (xr[j] - m) - ls


@fam.kernel(parallel=False)
def sparse_xent_rows(labels, x, out):
    n, c = x.shape
    e = np.empty(c, dtype=x.dtype)
    for r in range(n):
        lab = labels[r]
        if lab < 0 or lab >= c:
            return r
        xr = x[r]
        m = _row_max(xr, c)
        _row_exp(xr, c, m, e)
        out[r] = math.log(_row_sum(e, c)) - (xr[lab] - m)
    return -1


@fam.kernel(parallel=False)
def dense_xent_rows(labels, x, out):
    n, c = x.shape
    e = np.empty(c, dtype=x.dtype)
    for r in range(n):
        xr = x[r]
        m = _row_max(xr, c)
        _row_exp(xr, c, m, e)
        ls = math.log(_row_sum(e, c))
        acc = 0.0
        for j in range(c):
            acc += labels[r, j] * ((xr[j] - m) - ls)
        out[r] = -acc


# Pooling: NHWC with the channel loop innermost (contiguous in x, out, dy and dx), so LLVM vectorizes
# it; the window loops run outside. Measured (batch 32, 26x26x32 -> 13x13, 2x2, one thread): max_pool
# 3.6 -> 0.17 ms, max_pool_grad 3.6 -> 0.85 ms (0.43 ms with its two-pass select); the old order
# (window loops innermost, one channel at a time) read x with a stride of c and ran scalar.
@fam.kernel(parallel=True)
def max_pool(x, out, kh, kw, sh, sw, dh, dw, ph, pw):
    # max over the in-bounds window; a NaN in the window propagates (np.max over the -inf padded
    # windows, the reference)
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for b in prange(n):
        for i in range(oh):
            for j in range(ow):
                orow = out[b, i, j]
                for ch in range(c):
                    orow[ch] = -np.inf
                for p in range(kh):
                    y = i * sh + p * dh - ph
                    if y < 0 or y >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw + q * dw - pw
                        if xx < 0 or xx >= w:
                            continue
                        xrow = x[b, y, xx]
                        for ch in range(c):
                            v = xrow[ch]
                            m = orow[ch]
                            orow[ch] = v if (v > m or v != v) else m


@fam.kernel(parallel=True)
def avg_pool(x, out, kh, kw, sh, sw, dh, dw, ph, pw):
    # mean over the in-bounds window (padding not counted), summed in float64
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    acc = np.empty((n, c), dtype=np.float64)
    for b in prange(n):
        arow = acc[b]
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    arow[ch] = 0.0
                cnt = 0
                for p in range(kh):
                    y = i * sh + p * dh - ph
                    if y < 0 or y >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw + q * dw - pw
                        if xx < 0 or xx >= w:
                            continue
                        cnt += 1
                        xrow = x[b, y, xx]
                        for ch in range(c):
                            arow[ch] += xrow[ch]
                orow = out[b, i, j]
                for ch in range(c):
                    orow[ch] = arow[ch] / cnt


@fam.kernel(parallel=True)
def max_pool_grad(x, dy, dx, relu, kh, kw, sh, sw, dh, dw, ph, pw):
    # dy goes to the first maximum of each window in (p, q) order, a NaN counting as the maximum
    # (np.argmax, the reference). best/arg track it per channel as a window tap index, with selects,
    # and a second pass over the window adds dy where the tap is the argmax: both loops vectorize
    # (a scatter through flat positions did not: 0.81 -> 0.43 ms on 26x26x32, batch 32). The window
    # loops skip out-of-bounds taps with `continue`, which also tells LLVM the index is not negative
    # (looping over a precomputed in-bounds tap range measured 8% slower). Disjoint windows (stride
    # >= window, the usual 2x2/2) store instead of add, and skip the zero fill when they cover the
    # whole input: 0.46 -> 0.37 ms on 26x26x32, batch 32. relu (0/1): only where x > 0 (the op's
    # relu_mask, the gradient of a relu before the pool); at the argmax x is the window's maximum.
    n, h, w, c = x.shape
    oh, ow = dy.shape[1], dy.shape[2]
    disjoint = sh >= (kh - 1) * dh + 1 and sw >= (kw - 1) * dw + 1
    full = disjoint and kh == sh and kw == sw and ph == 0 and pw == 0 and oh * sh == h and ow * sw == w
    best = np.empty((n, c), dtype=x.dtype)
    arg = np.empty((n, c), dtype=np.int64)
    for b in prange(n):
        if not full:
            dx[b] = 0
        brow = best[b]
        arow = arg[b]
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    arow[ch] = -1
                for p in range(kh):
                    y = i * sh + p * dh - ph
                    if y < 0 or y >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw + q * dw - pw
                        if xx < 0 or xx >= w:
                            continue
                        tap = p * kw + q
                        xrow = x[b, y, xx]
                        for ch in range(c):
                            v = xrow[ch]
                            m = brow[ch]
                            take = arow[ch] < 0 or v > m or (v != v and m == m)
                            brow[ch] = v if take else m
                            arow[ch] = tap if take else arow[ch]
                dyrow = dy[b, i, j]
                for p in range(kh):
                    y = i * sh + p * dh - ph
                    if y < 0 or y >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw + q * dw - pw
                        if xx < 0 or xx >= w:
                            continue
                        tap = p * kw + q
                        drow = dx[b, y, xx]
                        if disjoint:
                            for ch in range(c):
                                keep = arow[ch] == tap and (relu == 0 or brow[ch] > 0)
                                drow[ch] = dyrow[ch] if keep else 0
                        else:
                            for ch in range(c):
                                keep = arow[ch] == tap and (relu == 0 or brow[ch] > 0)
                                drow[ch] += dyrow[ch] if keep else 0


@fam.kernel(parallel=True)
def avg_pool_grad(dy, dx, kh, kw, sh, sw, dh, dw, ph, pw):
    # each window's dy / (its in-bounds count) added to every in-bounds position
    n, h, w, c = dx.shape
    oh, ow = dy.shape[1], dy.shape[2]
    for b in prange(n):
        dx[b] = 0
        for i in range(oh):
            for j in range(ow):
                cnt = 0
                for p in range(kh):
                    y = i * sh + p * dh - ph
                    for q in range(kw):
                        xx = j * sw + q * dw - pw
                        if y >= 0 and y < h and xx >= 0 and xx < w:
                            cnt += 1
                if cnt == 0:
                    continue
                inv = 1.0 / cnt
                dyrow = dy[b, i, j]
                for p in range(kh):
                    y = i * sh + p * dh - ph
                    if y < 0 or y >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw + q * dw - pw
                        if xx < 0 or xx >= w:
                            continue
                        dxrow = dx[b, y, xx]
                        for ch in range(c):
                            dxrow[ch] += dyrow[ch] * inv


@fam.kernel(contract=True)
def _taps9(orow, src, base, tof, fp, fb, t, o, accumulate):
    # orow[:] = (+= when accumulate) the sum over the 9 taps t..t+8 of src[base + tof[tap]] * fp[tap],
    # plus the bias row fb in the first group (accumulate False):
    # the loop over the output channels (contiguous in orow and fp) vectorizes, the 9 inputs stay in
    # registers. Not inlined, and called with run-time arguments only: numba compiled it once per
    # literal argument and call site otherwise (8 copies, 3 s of a cold conv2d_direct compile); it
    # only runs for kernels of more than 9 taps and for border pixels
    v0 = src[base + tof[t]]
    v1 = src[base + tof[t + 1]]
    v2 = src[base + tof[t + 2]]
    v3 = src[base + tof[t + 3]]
    v4 = src[base + tof[t + 4]]
    v5 = src[base + tof[t + 5]]
    v6 = src[base + tof[t + 6]]
    v7 = src[base + tof[t + 7]]
    v8 = src[base + tof[t + 8]]
    f0 = fp[t]
    f1 = fp[t + 1]
    f2 = fp[t + 2]
    f3 = fp[t + 3]
    f4 = fp[t + 4]
    f5 = fp[t + 5]
    f6 = fp[t + 6]
    f7 = fp[t + 7]
    f8 = fp[t + 8]
    if accumulate:
        for oc in range(o):
            orow[oc] += ((v0 * f0[oc] + v1 * f1[oc] + v2 * f2[oc]) + (v3 * f3[oc] + v4 * f4[oc] + v5 * f5[oc])
                          + (v6 * f6[oc] + v7 * f7[oc] + v8 * f8[oc]))
    elif fb is None:
        for oc in range(o):
            orow[oc] = ((v0 * f0[oc] + v1 * f1[oc] + v2 * f2[oc]) + (v3 * f3[oc] + v4 * f4[oc] + v5 * f5[oc])
                        + (v6 * f6[oc] + v7 * f7[oc] + v8 * f8[oc]))
    else:
        for oc in range(o):
            orow[oc] = ((v0 * f0[oc] + v1 * f1[oc] + v2 * f2[oc]) + (v3 * f3[oc] + v4 * f4[oc] + v5 * f5[oc])
                        + (v6 * f6[oc] + v7 * f7[oc] + v8 * f8[oc])) + fb[oc]


@fam.kernel()
def _interior_cols(w, kw, sw, dw, pw, ow):
    # the output columns [jlo, jhi) whose window lies inside the image width:
    # 0 <= j*sw - pw and j*sw - pw + (kw-1)*dw < w
    jlo = min((pw + sw - 1) // sw, ow)
    return jlo, min(max((w - 1 - (kw - 1) * dw + pw) // sw + 1, jlo), ow)


@fam.kernel()
def _row_span(b, i, h, kh, sh, dh, ph, oh, ow, jlo, jhi):
    # output row i of image b: its window's top input row y0, its first output pixel r0 and its
    # interior columns [j0, j1) (none where the window leaves the image vertically)
    y0 = i * sh - ph
    if y0 < 0 or y0 + (kh - 1) * dh >= h:
        return y0, (b * oh + i) * ow, ow, ow
    return y0, (b * oh + i) * ow, jlo, jhi


@fam.kernel(contract=True)
def _conv_run9(out, r0, xb, base0, step, tof, fp, fb, o, j0, j1, oc0):
    # interior output pixels j0..j1 of one row when all taps fit one group of 9, channels oc0..o
    # (those past simd.conv_taps9_rows's whole vector blocks): the tap offsets and filter rows are
    # loaded once per run, not per pixel. The channel range is unsigned: from a run-time start,
    # numba checks a signed index for wrap-around and the loop ran scalar, 8x slower.
    uoc0, uo = np.uint64(oc0), np.uint64(o)
    o0 = tof[0]
    o1 = tof[1]
    o2 = tof[2]
    o3 = tof[3]
    o4 = tof[4]
    o5 = tof[5]
    o6 = tof[6]
    o7 = tof[7]
    o8 = tof[8]
    f0 = fp[0]
    f1 = fp[1]
    f2 = fp[2]
    f3 = fp[3]
    f4 = fp[4]
    f5 = fp[5]
    f6 = fp[6]
    f7 = fp[7]
    f8 = fp[8]
    for j in range(j0, j1):
        base = base0 + j * step
        v0 = xb[base + o0]
        v1 = xb[base + o1]
        v2 = xb[base + o2]
        v3 = xb[base + o3]
        v4 = xb[base + o4]
        v5 = xb[base + o5]
        v6 = xb[base + o6]
        v7 = xb[base + o7]
        v8 = xb[base + o8]
        orow = out[r0 + j]
        if fb is None:          # a plain conv: numba compiles this branch alone for bias=None
            for oc in range(uoc0, uo):
                orow[oc] = ((v0 * f0[oc] + v1 * f1[oc] + v2 * f2[oc]) + (v3 * f3[oc] + v4 * f4[oc]
                            + v5 * f5[oc]) + (v6 * f6[oc] + v7 * f7[oc] + v8 * f8[oc]))
        else:
            for oc in range(uoc0, uo):
                orow[oc] = ((v0 * f0[oc] + v1 * f1[oc] + v2 * f2[oc]) + (v3 * f3[oc] + v4 * f4[oc]
                            + v5 * f5[oc]) + (v6 * f6[oc] + v7 * f7[oc] + v8 * f8[oc])) + fb[oc]


@fam.kernel(contract=True)
def conv2d_direct(x, xf, f, bias, out, relu, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow):
    # Direct NHWC conv2d for few input channels (im2col + GEMM is slow there): x (n, h, w, c)
    # C-contiguous and xf the same memory as (n, h*w*c), f (kh*kw*c, o) = the HWIO filter
    # flattened, bias (o,) added to every pixel (the fused conv + bias epilogue; None for a plain
    # conv), relu (0/1) the epilogue's relu after it, out (n*oh*ow, o); geometry as for im2col.
    # Each output pixel applies the taps 9 at a time (the filter zero-padded to a multiple of 9),
    # reading the input through per-tap offsets into the flattened image; pixels whose window
    # crosses the padding gather it into crow first (zeros outside the image). Adding the bias here
    # costs 0.45 -> 0.49 ms and saves the epilogue's pass over the output (0.70 ms for both).
    # Measured (batch 32, 28x28x1->32, one thread): 0.25 ms; gathering every window into a
    # scratch row first took 0.74 ms, and a runtime "first group" branch inside the pixel loop
    # 0.80 ms (LLVM then runs the scalar copy of the channel loop). Scratch comes from np.empty
    # alone, and xf from the caller: np.zeros, np.arange and reshape each cost numba 0.2-0.35 s to
    # type on first use in a process (cold compile 2.6-3.3 -> 1.9-2.0 s).
    n, h, w, c = x.shape
    o = f.shape[1]
    kk = kh * kw * c
    kp = (kk + 8) // 9 * 9
    fp = np.empty((kp, o), dtype=f.dtype)
    for t in range(kp):
        for oc in range(o):
            fp[t, oc] = f[t, oc] if t < kk else 0
    offs = np.empty(2 * kp, dtype=np.int64)       # [tap offsets | 0, 1, ... kp-1 for crow]
    for t in range(kp):
        offs[t] = 0
        offs[kp + t] = t
    for p in range(kh):
        for q in range(kw):
            for ch in range(c):
                offs[(p * kw + q) * c + ch] = (p * dh * w + q * dw) * c + ch
    tof = offs[:kp]
    brow = np.empty(o, dtype=x.dtype)     # the bias as a row (zeros for a plain conv)
    if bias is None:
        for oc in range(o):
            brow[oc] = 0
    else:
        for oc in range(o):
            brow[oc] = bias[oc]
    ident = offs[kp:]
    zero = n * 0        # a run-time 0: constant arguments would make numba compile _taps9 per literal
    crow = np.empty(kp, dtype=x.dtype)
    for t in range(kp):
        crow[t] = 0     # the taps past kk (the zero-padded filter rows) must read 0, never garbage
    jlo, jhi = _interior_cols(w, kw, sw, dw, pw, ow)
    for b in range(n):
        xb = xf[b]
        for i in range(oh):
            y0, r0, j0, j1 = _row_span(b, i, h, kh, sh, dh, ph, oh, ow, jlo, jhi)
            done = 0
            if kp == 9:
                # whole vector blocks of channels in registers (simd.py), the rest here
                done = conv_taps9_rows(out, r0, xb, (y0 * w - pw) * c, sw * c, tof, fp, brow, j0, j1,
                                       relu)
                if done < o:
                    _conv_run9(out, r0, xb, (y0 * w - pw) * c, sw * c, tof, fp, bias, o, j0, j1, done)
            else:
                for j in range(j0, j1):
                    orow = out[r0 + j]
                    base = (y0 * w + j * sw - pw) * c
                    for g in range(kp // 9):
                        _taps9(orow, xb, base, tof, fp, bias, g * 9, o, g > 0)
            for j in range(ow):
                if j >= j0 and j < j1:
                    continue
                x0 = j * sw - pw
                for p in range(kh):
                    y = y0 + p * dh
                    for q in range(kw):
                        xx = x0 + q * dw
                        t = (p * kw + q) * c
                        inb = y >= 0 and y < h and xx >= 0 and xx < w
                        for ch in range(c):
                            crow[t + ch] = x[b, y, xx, ch] if inb else 0
                orow = out[r0 + j]
                for g in range(kp // 9):
                    _taps9(orow, crow, zero, ident, fp, bias, g * 9, o, g > 0)
            if relu:            # the epilogue's relu, on the row while it is in cache (NaN stays),
                for j in range(ow):     # where conv_taps9_rows has not applied it
                    orow = out[r0 + j]
                    for oc in range(np.uint64(done if j >= j0 and j < j1 else 0), np.uint64(o)):
                        v = orow[oc]
                        orow[oc] = 0 if v < 0 else v


@fam.kernel(contract=True)
def conv2d_filter_grad9(x, xf, dy, out, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow):
    # The filter gradient of a single-channel conv with 9 taps: out (9, o) = sum over output pixels
    # of the input under each tap times dy (n*oh*ow, o); x (n, h, w, 1) and xf the same memory as
    # (n, h*w). Interior runs of each row go through simd.conv_filter_grad_taps9_rows (the 9 sums
    # in registers); the channels past its vector blocks and the pixels whose window crosses the
    # padding are summed here, the latter reading x with bounds checks.
    n, h, w = x.shape[0], x.shape[1], x.shape[2]
    o = out.shape[1]
    uo = np.uint64(o)
    for t in range(kh * kw):
        for oc in range(o):
            out[t, oc] = 0
    tof = np.empty(9, dtype=np.int64)
    for p in range(kh):
        for q in range(kw):
            tof[p * kw + q] = p * dh * w + q * dw
    jlo, jhi = _interior_cols(w, kw, sw, dw, pw, ow)
    for b in range(n):
        xb = xf[b]
        for i in range(oh):
            y0, r0, j0, j1 = _row_span(b, i, h, kh, sh, dh, ph, oh, ow, jlo, jhi)
            base0 = y0 * w - pw
            done = np.uint64(conv_filter_grad_taps9_rows(out, xb, base0, sw, tof, dy, r0, j0, j1))
            if done < uo:
                for j in range(j0, j1):
                    dyr = dy[r0 + j]
                    for t in range(9):
                        v = xb[base0 + j * sw + tof[t]]
                        orow = out[t]
                        for oc in range(done, uo):
                            orow[oc] += v * dyr[oc]
            for j in range(ow):
                if j >= j0 and j < j1:
                    continue
                dyr = dy[r0 + j]
                for p in range(kh):
                    y = y0 + p * dh
                    if y < 0 or y >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw - pw + q * dw
                        if xx < 0 or xx >= w:
                            continue
                        v = x[b, y, xx, 0]
                        orow = out[p * kw + q]
                        for oc in range(uo):
                            orow[oc] += v * dyr[oc]


# -- binders ---------------------------------------------------------------------------------------------
def _rows(shape):
    c = int(shape[-1])
    return (int(np.prod(shape[:-1], dtype=np.int64)), c)


@kernel_for("softmax", "log_softmax")
def bind_softmax(ctx: NodeCtx):
    shape = tuple(ctx.in_shapes[0])
    if ctx.attrs["axis"] != len(shape) - 1 or 0 in shape:
        return None
    rc = _rows(shape)
    k = fam.get("softmax_rows" if ctx.op == "softmax" else "log_softmax_rows")
    t = arr_t(ctx.out_dtype, 2)
    return Call(steps=[(k, [In(0, rc), Out(rc)])], name=ctx.op, warm=[(k, (t, t))])


@kernel_for("softmax_cross_entropy_with_logits")
def bind_dense_xent(ctx: NodeCtx):
    ls, xs = (tuple(s) for s in ctx.in_shapes)
    if ls != xs or ctx.attrs["axis"] != len(xs) - 1 or 0 in xs:
        return None
    rc = _rows(xs)
    k = fam.get("dense_xent_rows")
    t = arr_t(ctx.out_dtype, 2)
    return Call(steps=[(k, [In(0, rc), In(1, rc), Out((rc[0],))])], name=ctx.op,
                warm=[(k, (t, t, arr_t(ctx.out_dtype, 1)))])


@kernel_for("sparse_softmax_cross_entropy_with_logits")
def bind_sparse_xent(ctx: NodeCtx):
    xs = tuple(ctx.in_shapes[1])
    if 0 in xs or len(xs) < 1:
        return None
    rc = _rows(xs)
    k = fam.get("sparse_xent_rows")
    ref, attrs = get_op(ctx.op).reference, ctx.attrs

    sig = (arr_t(ctx.in_dtypes[0], 1), arr_t(ctx.out_dtype, 2), arr_t(ctx.out_dtype, 1))

    def sparse_xent(labels, x, out):
        # the compiled entry point (warmed at bind): read-only inputs (variable state) need no copy
        if k.overloads[sig].entry_point(labels, x, out) >= 0:   # an invalid label: the reference
            ref([labels.reshape(xs[:-1]), x.reshape(xs)], attrs)  # raises its error
    return Call(steps=[(sparse_xent, [In(0, (rc[0],)), In(1, rc), Out((rc[0],))])], name=ctx.op,
                warm=[(k, sig)])


def _pool_geom(x_shape, a):
    (oh, ph, _), (ow, pw, _) = _geometry(x_shape[1:3], a["ksize"], a)
    sh, sw = a["strides"]
    dh, dw = a.get("dilations", (1, 1))
    return tuple(int(v) for v in (a["ksize"][0], a["ksize"][1], sh, sw, dh, dw, ph, pw))


def _pool_call(ctx: NodeCtx, name: str, n_arrays: int, ins: list, dy_shape=None, flags=()) -> Call:
    """One pooling kernel over ``ins`` (input descriptors) and the output. A gradient kernel (given
    ``dy_shape``) is cut over the batch on the worker threads (runtime.threads) unless
    GRAPHC_PARALLEL=1 made it a prange kernel. Measured alone (2-core box, 26x26x32 -> 13x13, batch
    32): max_pool_grad 0.43 -> 0.36 ms split; the forward max_pool 0.175 -> 0.173 ms, so it stays whole."""
    geom = _pool_geom(ctx.in_shapes[0], ctx.attrs)
    k = fam.get(name)
    sig = (arr_t(ctx.out_dtype, 4),) * n_arrays + (scalar_t("int64"),) * (len(flags) + 8)
    fn = k
    cfg = config.get()
    if dy_shape is not None and cfg.threads > 1 and not cfg.parallel:
        work = 2 * int(np.prod(dy_shape[1:])) * geom[0] * geom[1]       # window visits per image
        fn = threads.batch_split(threads.entry_point(k, sig), work, split=tuple(range(n_arrays)))
    args = ins + [Out()] + [Const(int(v)) for v in flags] + [Const(g) for g in geom]
    return Call(steps=[(fn, args)], name=ctx.op, warm=[(k, sig)])


@kernel_for("max_pool2d", "avg_pool2d")
def bind_pool(ctx: NodeCtx):
    if 0 in ctx.in_shapes[0] or 0 in ctx.out_shape:
        return None
    return _pool_call(ctx, "max_pool" if ctx.op == "max_pool2d" else "avg_pool", 2, [In(0)])


@kernel_for("max_pool2d_grad")
def bind_max_pool_grad(ctx: NodeCtx):
    if 0 in ctx.in_shapes[0] or 0 in ctx.in_shapes[1]:
        return None
    return _pool_call(ctx, "max_pool_grad", 3, [In(0), In(1)], ctx.in_shapes[1],
                      flags=(bool(ctx.attrs.get("relu_mask")),))


@kernel_for("avg_pool2d_grad")
def bind_avg_pool_grad(ctx: NodeCtx):
    if 0 in ctx.in_shapes[0] or 0 in ctx.in_shapes[1]:
        return None
    return _pool_call(ctx, "avg_pool_grad", 2, [In(1)], ctx.in_shapes[1])
