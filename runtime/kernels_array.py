"""Layout / indexing kernels: transpose, concat, stack, gather, one_hot, pad and the summed gradients
of many slices (strided_slice_grad_n), written into planned buffers.

Views (reshape, expand_dims, squeeze, slicing) stay numpy views: their
references are zero-copy and the memory plan keeps the viewed buffer alive.
Data-moving ops copy into the planned buffer with numpy's ``out=`` loops or a
numba kernel (one_hot); invalid indices fall back to the reference, which raises
its usual error.

    >>> from graphc.runtime.kernels import KERNELS
    >>> all(op in KERNELS for op in ("transpose", "concat", "gather", "one_hot", "pad"))
    True
"""
from __future__ import annotations

import numpy as np

from graphc.ops.registry import get_op

from .families import KernelFamily
from .kernels import Call, Const, In, NodeCtx, Out, arr_t, scalar_t, kernel_for

fam = KernelFamily("array")


@fam.kernel(parallel=False)
def one_hot_last(idx, out, on, off):
    n, d = out.shape
    for r in range(n):
        k = idx[r]
        for j in range(d):
            out[r, j] = off
        if k >= 0 and k < d:
            out[r, k] = on


@fam.kernel(parallel=False)
def transpose_last2(x, out):
    """``out[b] = x[b].T`` through an 8x8 tile, so that reads and writes both run along rows:
    4-5x numpy's ``copyto`` of a transposed view on a (128, 512) or (1024, 1024) float32 matrix."""
    nb, r, c = x.shape
    tile = np.empty((8, 8), x.dtype)
    r8, c8 = r - r % 8, c - c % 8
    for b in range(nb):
        for i0 in range(0, r8, 8):
            for j0 in range(0, c8, 8):
                for i in range(8):
                    for j in range(8):
                        tile[j, i] = x[b, i0 + i, j0 + j]
                for j in range(8):
                    for i in range(8):
                        out[b, j0 + j, i0 + i] = tile[j, i]
        for i in range(r8, r):          # the rows and columns past the last whole tile
            for j in range(c):
                out[b, j, i] = x[b, i, j]
        for i in range(r8):
            for j in range(c8, c):
                out[b, j, i] = x[b, i, j]


@fam.kernel(parallel=False)
def transpose_rows(xf, out, oshape, xstride):
    """A permutation that keeps the last axis: row ``(i0, i1, i2)`` of the flat output ``out`` (of
    shape ``oshape``) is the row of the flat input ``xf`` at ``sum(i_k * xstride[k])``, copied whole.
    Attention's head split and merge, (batch, steps, heads, dim) <-> (batch, heads, steps, dim):
    numpy's strided copy took ~22 us for (32, 28, 4, 16), this 6-7 us (flat indices: a row view
    per row took longer than the copy)."""
    # unsigned offsets: numba checks a signed index for wrap-around (a negative index counts from
    # the end), which kept this loop scalar and branchy: 69 -> 6.8 us on (32, 28, 4, 16)
    n0, n1, n2, d = oshape[0], oshape[1], oshape[2], np.uint64(oshape[3])
    s0, s1, s2 = xstride[0], xstride[1], xstride[2]
    o = np.uint64(0)
    for i0 in range(n0):
        for i1 in range(n1):
            for i2 in range(n2):
                base = np.uint64(i0 * s0 + i1 * s1 + i2 * s2)
                for j in range(d):
                    out[o + j] = xf[base + j]
                o += d


# Transposes smaller than this keep numpy's copy: the kernels save at most ~15 us a call there
# (an LSTM's (64, 256) recurrent kernel: 16 -> 10 us), and each costs 0.15-0.8 s to compile
# cold (the LSTM program's cold start went up 0.35 s with both).
MIN_KERNEL_TRANSPOSE = 1 << 15


@kernel_for("transpose")
def bind_transpose(ctx: NodeCtx):
    perm = tuple(ctx.attrs["perm"])
    nd = len(perm)
    big = int(np.prod(ctx.out_shape, dtype=np.int64)) >= MIN_KERNEL_TRANSPOSE
    if big and 3 <= nd <= 4 and perm[-1] == nd - 1 and np.dtype(ctx.out_dtype).kind in "fiu":
        # rows stay whole: one contiguous copy per output row, read at the permuted input offset
        s = tuple(int(d) for d in ctx.in_shapes[0])
        elem = [int(np.prod(s[k + 1:], dtype=np.int64)) for k in range(nd)]  # C strides, in elements
        xstride = np.array([0] * (4 - nd) + [elem[p] for p in perm[:-1]], dtype=np.int64)
        o4 = (1,) * (4 - nd) + tuple(int(d) for d in ctx.out_shape)
        k = fam.get("transpose_rows")
        flat = (int(np.prod(s, dtype=np.int64)),)
        return Call(steps=[(k, [In(0, flat), Out(flat), Const(np.array(o4, dtype=np.int64)), Const(xstride)])],
                    name="transpose", warm=[(k, (arr_t(ctx.out_dtype, 1), arr_t(ctx.out_dtype, 1),
                                                 arr_t(np.int64, 1), arr_t(np.int64, 1)))])
    if (big and nd >= 2 and perm == tuple(range(nd - 2)) + (nd - 1, nd - 2)
            and np.dtype(ctx.out_dtype).kind in "fiu"):
        # a matrix (or batch of matrices) transposed: the tiled kernel over (batch, rows, cols)
        s = ctx.in_shapes[0]
        shape3 = (int(np.prod(s[:-2], dtype=np.int64)), s[-2], s[-1])
        k = fam.get("transpose_last2")
        t3 = arr_t(ctx.out_dtype, 3)
        return Call(steps=[(k, [In(0, shape3), Out((shape3[0], s[-1], s[-2]))])], name="transpose",
                    warm=[(k, (t3, t3))])

    def transpose_into(x, out):
        np.copyto(out, np.transpose(x, perm))
    return Call(steps=[(transpose_into, [In(0), Out()])], name="transpose")


@kernel_for("concat")
def bind_concat(ctx: NodeCtx):
    axis = ctx.attrs["axis"]

    def concat_into(*arrays):
        np.concatenate(arrays[:-1], axis=axis, out=arrays[-1])
    return Call(steps=[(concat_into, [In(k) for k in range(ctx.n_in)] + [Out()])], name="concat")


@kernel_for("stack")
def bind_stack(ctx: NodeCtx):
    # into the planned buffer, reading strided pieces as they are (an unrolled RNN's per-step
    # gate gradients are column slices of each step's buffer)
    axis = ctx.attrs["axis"]

    def stack_into(*arrays):
        np.stack(arrays[:-1], axis=axis, out=arrays[-1])
    stack_into.takes_strided = True
    return Call(steps=[(stack_into, [In(k) for k in range(ctx.n_in)] + [Out()])], name="stack")


@kernel_for("gather")
def bind_gather(ctx: NodeCtx):
    a = ctx.attrs
    if set(a) - {"axis", "batch_dims"} or a.get("batch_dims", 0):
        return None
    axis = a["axis"]
    n = ctx.in_shapes[0][axis]
    ref = get_op("gather").reference

    def gather_into(p, idx, out):
        if idx.size and (idx.min() < -n or idx.max() >= n):
            ref([p, idx], a)                # raises the reference's error
        np.take(p, idx, axis=axis, out=out)
    return Call(steps=[(gather_into, [In(0), In(1), Out()])], name="gather")


@kernel_for("one_hot")
def bind_one_hot(ctx: NodeCtx):
    a = ctx.attrs
    depth = int(a["depth"])
    if a["axis"] not in (-1, len(ctx.out_shape) - 1) or 0 in ctx.out_shape:
        return None
    dt = np.dtype(a["dtype"])
    if dt.kind not in "fi" or np.dtype(ctx.in_dtypes[0]).kind not in "iu":
        return None
    rows = int(np.prod(ctx.in_shapes[0], dtype=np.int64))
    on, off = np.array(a["on_value"]).astype(dt)[()], np.array(a["off_value"]).astype(dt)[()]
    k = fam.get("one_hot_last")
    sc = scalar_t(dt)
    return Call(steps=[(k, [In(0, (rows,)), Out((rows, depth)), Const(on), Const(off)])],
                name="one_hot", warm=[(k, (arr_t(ctx.in_dtypes[0], 1), arr_t(dt, 2), sc, sc))])


@kernel_for("pad")
def bind_pad(ctx: NodeCtx):
    a = ctx.attrs
    if a.get("mode", "CONSTANT") != "CONSTANT":
        return None
    pads = tuple((int(lo), int(hi)) for lo, hi in a["paddings"])
    cv = a.get("constant_values", 0)
    inner = tuple(slice(lo, lo + int(s)) for (lo, _), s in zip(pads, ctx.in_shapes[0]))

    def pad_into(x, out):
        out.fill(cv)
        out[inner] = x
    return Call(steps=[(pad_into, [In(0), Out()])], name="pad")


@kernel_for("strided_slice")
def bind_strided_slice(ctx: NodeCtx):
    # a numpy view, its key converted once here (the reference converts it on every call). A bad
    # run-time index raises IndexError and the executor reruns the reference for its error.
    from graphc.ops.indexing import _np_key
    key = _np_key(ctx.attrs["key"])
    if all(isinstance(k, int) for k in key) and len(key) == len(ctx.in_shapes[0]):
        def slice_view(x):          # one element: a new 0-d array, as the reference returns
            return np.array(x[key])
    else:
        def slice_view(x):
            return x[key]
        slice_view.view_only = True         # a basic index: always a view, reads no values
    return Call(steps=[(slice_view, [In(0)])], name="strided_slice", mode="value", contiguous=False)


@kernel_for("strided_slice_grad_n")
def bind_slice_grads(ctx: NodeCtx):
    # the summed gradients of many slices of one tensor, into one planned buffer; keys that tile
    # the buffer exactly (an RNN's time steps, its gates) are plain copies with no zero fill
    from graphc.ops.indexing import _np_key
    keys = [_np_key(k) for k in ctx.attrs["keys"]]
    cover = np.zeros(ctx.out_shape, np.int64)       # times each element is written (no wrap-around)
    for key in keys:
        cover[key] += 1
    tiles = bool(cover.size) and cover.min() == cover.max() == 1
    cols = _column_blocks(keys, ctx.out_shape) if tiles else None
    if cols is not None and np.dtype(ctx.out_dtype).kind in "fiu" and \
            all(np.dtype(d) == np.dtype(ctx.out_dtype) for d in ctx.in_dtypes[:-1]):
        # pieces side by side along the last axis of a matrix (an LSTM step's [dh | dc]): one
        # numba call instead of a Python loop of copies, 3.7 -> ~1.7 us per LSTM step
        k = fam.get("copy_column_blocks")
        return Call(steps=[(k, [Out(), Const(np.array(cols, dtype=np.int64))]
                            + [In(i) for i in range(ctx.n_in - 1)])], name="strided_slice_grad_n")
    # the views of the keys into the output are made once per output array (the planned buffer is
    # the same array on every run): indexing with a tuple of slices cost ~1 us per key, as much as
    # copying an LSTM step's (32, 64) gradient
    seen: list = [None, ()]

    def views(out):
        if seen[0] is not out:
            # (Ellipsis: an all-integer key gives a 0-d view, not a copied scalar)
            seen[0], seen[1] = out, [out[key if Ellipsis in key else key + (Ellipsis,)] for key in keys]
        return seen[1]
    if tiles:
        def slice_grads_into(*arrays):
            for dy, v in zip(arrays[:-1], views(arrays[-1])):
                np.copyto(v, dy)
    else:
        def slice_grads_into(*arrays):
            out = arrays[-1]
            out.fill(0)
            for dy, v in zip(arrays[:-1], views(out)):
                np.add(v, dy, out=v)
    slice_grads_into.takes_strided = True
    return Call(steps=[(slice_grads_into, [In(k) for k in range(ctx.n_in - 1)] + [Out()])],
                name="strided_slice_grad_n")


def _column_blocks(keys, out_shape):
    """The first column of each key when the keys are ``[:, a:b]`` blocks of a matrix (the whole
    row each time), else None."""
    if len(out_shape) != 2:
        return None
    starts = []
    for key in keys:
        if len(key) != 2 or key[0] != slice(None) or not isinstance(key[1], slice) \
                or key[1].step not in (None, 1):
            return None
        starts.append(key[1].indices(out_shape[1])[0])
    return starts


@fam.kernel(parallel=False)
def copy_column_blocks(out, starts, *pieces):
    # out[:, starts[k]:starts[k] + pieces[k].shape[1]] = pieces[k], row by row (the pieces are
    # C-contiguous matrices of out's dtype and row count)
    n = out.shape[0]
    for k in range(len(pieces)):
        p = pieces[k]
        c0 = np.uint64(starts[k])
        w = np.uint64(p.shape[1])
        for r in range(n):
            orow = out[r]
            prow = p[r]
            for j in range(w):
                orow[c0 + j] = prow[j]
