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
from numba import prange

from graphc.ops.nn import _geometry
from graphc.ops.registry import get_op

from .cache import KernelFamily
from .kernels import I64, Call, Const, In, NodeCtx, Out, arr_t, kernel_for

fam = KernelFamily("nn")


@fam.kernel(parallel=False)
def softmax_rows(x, out):
    n, c = x.shape
    for r in range(n):
        m = x[r, 0]
        for j in range(1, c):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(c):
            e = math.exp(x[r, j] - m)
            out[r, j] = e
            s += e
        inv = 1.0 / s
        for j in range(c):
            out[r, j] = out[r, j] * inv


@fam.kernel(parallel=False)
def log_softmax_rows(x, out):
    n, c = x.shape
    for r in range(n):
        m = x[r, 0]
        for j in range(1, c):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(c):
            s += math.exp(x[r, j] - m)
        ls = math.log(s)
        for j in range(c):
            out[r, j] = (x[r, j] - m) - ls


@fam.kernel(parallel=False)
def sparse_xent_rows(labels, x, out):
    n, c = x.shape
    for r in range(n):
        lab = labels[r]
        if lab < 0 or lab >= c:
            return r
        m = x[r, 0]
        for j in range(1, c):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(c):
            s += math.exp(x[r, j] - m)
        out[r] = math.log(s) - (x[r, lab] - m)
    return -1


@fam.kernel(parallel=False)
def dense_xent_rows(labels, x, out):
    n, c = x.shape
    for r in range(n):
        m = x[r, 0]
        for j in range(1, c):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(c):
            s += math.exp(x[r, j] - m)
        ls = math.log(s)
        acc = 0.0
        for j in range(c):
            acc += labels[r, j] * ((x[r, j] - m) - ls)
        out[r] = -acc


@fam.kernel(parallel=True)
def max_pool(x, out, kh, kw, sh, sw, dh, dw, ph, pw):
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for b in prange(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    m = -np.inf
                    for p in range(kh):
                        y = i * sh + p * dh - ph
                        if y < 0 or y >= h:
                            continue
                        for q in range(kw):
                            xx = j * sw + q * dw - pw
                            if xx >= 0 and xx < w and x[b, y, xx, ch] > m:
                                m = x[b, y, xx, ch]
                    out[b, i, j, ch] = m


@fam.kernel(parallel=True)
def avg_pool(x, out, kh, kw, sh, sw, dh, dw, ph, pw):
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for b in prange(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    s = 0.0
                    cnt = 0
                    for p in range(kh):
                        y = i * sh + p * dh - ph
                        if y < 0 or y >= h:
                            continue
                        for q in range(kw):
                            xx = j * sw + q * dw - pw
                            if xx >= 0 and xx < w:
                                s += x[b, y, xx, ch]
                                cnt += 1
                    out[b, i, j, ch] = s / cnt


@fam.kernel(parallel=True)
def max_pool_grad(x, dy, dx, kh, kw, sh, sw, dh, dw, ph, pw):
    n, h, w, c = x.shape
    oh, ow = dy.shape[1], dy.shape[2]
    for b in prange(n):
        dx[b] = 0
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    m = -np.inf
                    by = -1
                    bx = -1
                    for p in range(kh):
                        y = i * sh + p * dh - ph
                        for q in range(kw):
                            xx = j * sw + q * dw - pw
                            if y >= 0 and y < h and xx >= 0 and xx < w:
                                v = x[b, y, xx, ch]
                                if v > m or (by < 0 and not (v < m)):
                                    m = v
                                    by = y
                                    bx = xx
                    if by >= 0:
                        dx[b, by, bx, ch] += dy[b, i, j, ch]


@fam.kernel(parallel=True)
def avg_pool_grad(dy, dx, kh, kw, sh, sw, dh, dw, ph, pw):
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
                for p in range(kh):
                    y = i * sh + p * dh - ph
                    if y < 0 or y >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw + q * dw - pw
                        if xx < 0 or xx >= w:
                            continue
                        for ch in range(c):
                            dx[b, y, xx, ch] += dy[b, i, j, ch] / cnt


@fam.kernel(parallel=True)
def conv2d_direct(x, f, out, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow):
    # Direct NHWC conv2d for few input channels (im2col + GEMM is slow there): x (n, h, w, c),
    # f (kh*kw*c, o) = the HWIO filter flattened, out (n*oh*ow, o); geometry as for im2col.
    # Per output pixel the receptive field is gathered into col (zeros where padded), then the
    # taps are applied 9 at a time (col and the filter zero-padded to a multiple of 9) in a
    # loop over the output channels, contiguous in out and f, which LLVM vectorizes.
    n, h, w, c = x.shape
    o = f.shape[1]
    kk = kh * kw * c
    kp = (kk + 8) // 9 * 9
    fp = np.zeros((kp, o), dtype=f.dtype)
    for t in range(kk):
        for oc in range(o):
            fp[t, oc] = f[t, oc]
    ty = np.empty(kk, dtype=np.int64)
    tx = np.empty(kk, dtype=np.int64)
    tc = np.empty(kk, dtype=np.int64)
    for p in range(kh):
        for q in range(kw):
            for ch in range(c):
                t = (p * kw + q) * c + ch
                ty[t] = p * dh
                tx[t] = q * dw
                tc[t] = ch
    for b in prange(n):
        col = np.zeros(kp, dtype=x.dtype)
        for i in range(oh):
            y0 = i * sh - ph
            yin = y0 >= 0 and y0 + (kh - 1) * dh < h
            for j in range(ow):
                r = (b * oh + i) * ow + j
                x0 = j * sw - pw
                if yin and x0 >= 0 and x0 + (kw - 1) * dw < w:
                    for t in range(kk):
                        col[t] = x[b, y0 + ty[t], x0 + tx[t], tc[t]]
                else:
                    for t in range(kk):
                        y = y0 + ty[t]
                        xx = x0 + tx[t]
                        if y >= 0 and y < h and xx >= 0 and xx < w:
                            col[t] = x[b, y, xx, tc[t]]
                        else:
                            col[t] = 0
                t = 0
                v0 = col[t + 0]
                v1 = col[t + 1]
                v2 = col[t + 2]
                v3 = col[t + 3]
                v4 = col[t + 4]
                v5 = col[t + 5]
                v6 = col[t + 6]
                v7 = col[t + 7]
                v8 = col[t + 8]
                for oc in range(o):
                    out[r, oc] = ((v0 * fp[t + 0, oc] + v1 * fp[t + 1, oc] + v2 * fp[t + 2, oc])
                                  + (v3 * fp[t + 3, oc] + v4 * fp[t + 4, oc] + v5 * fp[t + 5, oc])
                                  + (v6 * fp[t + 6, oc] + v7 * fp[t + 7, oc] + v8 * fp[t + 8, oc]))
                for g in range(1, kp // 9):
                    t = g * 9
                    v0 = col[t + 0]
                    v1 = col[t + 1]
                    v2 = col[t + 2]
                    v3 = col[t + 3]
                    v4 = col[t + 4]
                    v5 = col[t + 5]
                    v6 = col[t + 6]
                    v7 = col[t + 7]
                    v8 = col[t + 8]
                    for oc in range(o):
                        out[r, oc] += ((v0 * fp[t + 0, oc] + v1 * fp[t + 1, oc] + v2 * fp[t + 2, oc])
                                       + (v3 * fp[t + 3, oc] + v4 * fp[t + 4, oc] + v5 * fp[t + 5, oc])
                                       + (v6 * fp[t + 6, oc] + v7 * fp[t + 7, oc] + v8 * fp[t + 8, oc]))


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


@kernel_for("max_pool2d", "avg_pool2d")
def bind_pool(ctx: NodeCtx):
    if 0 in ctx.in_shapes[0] or 0 in ctx.out_shape:
        return None
    geom = _pool_geom(ctx.in_shapes[0], ctx.attrs)
    k = fam.get("max_pool" if ctx.op == "max_pool2d" else "avg_pool")
    t = arr_t(ctx.out_dtype, 4)
    return Call(steps=[(k, [In(0), Out()] + [Const(g) for g in geom])], name=ctx.op,
                warm=[(k, (t, t) + (I64,) * 8)])


@kernel_for("max_pool2d_grad")
def bind_max_pool_grad(ctx: NodeCtx):
    if 0 in ctx.in_shapes[0] or 0 in ctx.in_shapes[1]:
        return None
    geom = _pool_geom(ctx.in_shapes[0], ctx.attrs)
    k = fam.get("max_pool_grad")
    t = arr_t(ctx.out_dtype, 4)
    return Call(steps=[(k, [In(0), In(1), Out()] + [Const(g) for g in geom])], name=ctx.op,
                warm=[(k, (t, t, t) + (I64,) * 8)])


@kernel_for("avg_pool2d_grad")
def bind_avg_pool_grad(ctx: NodeCtx):
    if 0 in ctx.in_shapes[0] or 0 in ctx.in_shapes[1]:
        return None
    geom = _pool_geom(ctx.in_shapes[0], ctx.attrs)
    k = fam.get("avg_pool_grad")
    t = arr_t(ctx.out_dtype, 4)
    return Call(steps=[(k, [In(1), Out()] + [Const(g) for g in geom])], name=ctx.op,
                warm=[(k, (t, t) + (I64,) * 8)])
