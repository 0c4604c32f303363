"""Winograd F(4x4, 3x3): 3x3 stride-1 convolutions and their two gradients in 36 small GEMMs each.

A 4x4 block of one output channel is Y = A^T [U ⊙ V] A, with U = G g G^T the 6x6 transform of the
3x3 filter g and V = B^T d B that of the 6x6 input tile d under it (Lavin & Gray, "Fast Algorithms
for Convolutional Neural Networks", 2016). Summed over the input channels, each of the 36 positions
of U ⊙ V is one GEMM over all tiles:

    M[e] = V[e] (tiles, C) @ U[e] (C, O)        e = 0 .. 35

That is 36 * 16 / 144 = 4x fewer multiply-adds than im2col + GEMM; the price is three passes over
memory (the filter, input and output transforms) and rounding: the transforms scale values by up to
~100, so float32 results differ from a direct sum by a few 1e-6 of the output's magnitude (im2col +
GEMM: ~1e-6). A NaN or inf in the input can reach outputs of every 4x4 tile whose 6x6 input window
holds it (a direct conv: only the outputs whose 3x3 window holds it).

The plan runs four steps (``conv_steps``): the filter transform -> U (36, C, O), two small GEMMs
in numpy; ``winograd_input`` -> V (36, tiles, C); one stacked ``np.matmul`` (BLAS) -> M (36, tiles,
O); ``winograd_output`` -> the NHWC output, adding the bias and applying the relu of a fused conv +
bias (+ relu) epilogue on the way. The input gradient of a 3x3 stride-1 conv is the same
correlation of the output gradient with the filter turned 180 degrees and its channels swapped,
padded by 2 - the forward padding. The filter gradient of each 4x4 tile of the output gradient dy
is G^T [(A dy A^T) ⊙ (B^T d B)] G (the same identity transposed), so its sum over tiles is 36
GEMMs (C, tiles) @ (tiles, O) between the two transforms (``filter_grad_steps``). The transforms'
arithmetic is simd.winograd_bt / winograd_at / winograd_a.
Tiles go through them 8 at a time, so each vector loop runs over 8 * C (or 8 * O) contiguous
values: one tile's C = 32 were too short to pay for a vector loop.

Measured on the 2-core dev box (batch 32, float32; Executable.run, medians of interleaved rounds):
13x13x32 -> 64 VALID 0.65 ms against 1.03 ms for im2col + GEMM (torch: 0.77 ms); in the MNIST
CNN's training step, the forward conv 0.83 ms against 1.08 ms (im2col + GEMM + epilogue). Isolated
forward convs, one thread, against im2col + GEMM: 28x28x32 -> 32 SAME 4.4 vs 7.8 ms, 7x7x64 -> 64
SAME 0.60 vs 0.79 ms, 28x28x4 -> 32 SAME 1.5 vs 2.1 ms. The two kernels add ~1.2 s to a cold start
(the disk cache keeps them). Splitting the 36 GEMMs over two threads took them from 413 to 275 us
alone, but not the CNN's training step (OpenBLAS's own threads spin beside them): not done.
Filter gradients against im2col + GEMM (same conditions): 13x13x32 -> 64 VALID 0.72 vs 1.07 ms,
28x28x32 -> 32 SAME 8.8 vs 12.3 ms, 7x7x64 -> 64 SAME 0.60 vs 1.82 ms, 28x28x8 -> 16 0.89 vs 5.6 ms.

    >>> from graphc.runtime.kernels_winograd import applies
    >>> applies(kh=3, kw=3, sh=1, sw=1, dh=1, dw=1, c=32, dtype="float32", oh=11, ow=11)
    True
    >>> applies(3, 3, 2, 2, 1, 1, 32, "float32", 11, 11), applies(3, 3, 1, 1, 1, 1, 32, "float32", 13, 13)
    (False, False)
"""
from __future__ import annotations

import numpy as np

from .families import KernelFamily
from .kernels import Const, Scratch, arr_t, scalar_t


def _prelude() -> str:
    from . import simd      # numba intrinsics: imported when a kernel is bound
    return ("from graphc.runtime.simd import copy_values, winograd_a, winograd_at, winograd_bt, zero_values"
            f"  # simd {simd.source_digest()}\n")


fam = KernelFamily("winograd", prelude=_prelude)

TILE = 4            # output rows and columns per tile
BATCH = 8           # tiles per pass of the input and output transforms
MIN_CHANNELS = 4    # below this, the GEMMs' K is too short: im2col + GEMM (or the direct kernel)
# Whole 4x4 tiles cover the output: 11x11 takes 12x12, 13x13 16x16 (1.51x the pixels). Winograd's
# cost grows with the tiles, so it runs only where they cover at most this many times the output.
# Measured (batch 32, input gradients through Executable.run against GEMM + col2im, medians of
# interleaved rounds): 13x13 output (1.51) 0.79x; 14x14 and 7x7 (1.31) 1.09x and 1.21x; 28x28 and
# 12x12 (1.0) 1.13-1.77x. The forward convs above cover 1.0-1.31 and all gained.
MAX_COVER = 1.35


def applies(kh, kw, sh, sw, dh, dw, c, dtype, oh, ow) -> bool:
    """Whether a conv with this geometry, these input channels and this output size runs through
    Winograd."""
    cover = -(-oh // TILE) * -(-ow // TILE) * TILE * TILE / max(oh * ow, 1)
    return (kh == kw == 3 and sh == sw == 1 and dh == dw == 1 and c >= MIN_CHANNELS
            and np.dtype(dtype).kind == "f" and cover <= MAX_COVER)


# -- numba kernels -------------------------------------------------------------------------------------
# Arrays are passed flat and indexed through unsigned offsets: numba checks a signed computed index
# for wrap-around, which keeps LLVM from vectorizing a loop. The transforms themselves are
# simd.winograd_bt / winograd_at (IR with the matrices' coefficients as constants).


@fam.kernel()
def winograd_input(x, xf, vf, buf, ph, pw, th, tw, tb, win):
    # vf[e*T*C + t*C + c] = (B^T d B)[e // 6, e % 6] of tile t's 6x6 window d (win = 6; zeros
    # outside the image) starting at row 4*ti - ph, column 4*tj - pw; with win = 4, (A d A^T) of
    # its 4x4 window (the filter gradient's transform of the output gradient). x (N, H, W, C) and
    # xf its flat memory, T = N*th*tw tiles (t = (n*th + ti)*tw + tj), buf (>= 2*36*tb*C) scratch
    n_, h, w, c = x.shape
    tiles = n_ * th * tw
    uc = np.uint64(c)
    sl = np.uint64(tb * c)                      # one window position: tb tiles' channels
    es = np.uint64(tiles * c)                   # one of the 36 rows of v
    half = np.uint64(36) * sl
    for t0 in range(0, tiles, tb):
        nt = min(tb, tiles - t0)
        for tt in range(nt):                    # gather: buf[(win*a + b)*sl + tt*C + c] = d[a, b, c]
            t = t0 + tt
            b_ = t // (th * tw)
            r = t - b_ * (th * tw)
            y0 = (r // tw) * 4 - ph
            x0 = (r - (r // tw) * tw) * 4 - pw
            o = np.uint64(tt) * uc
            a0, a1, c0, c1 = max(0, -y0), min(win, h - y0), max(0, -x0), min(win, w - x0)
            if a0 > 0 or a1 < win or c0 > 0 or c1 < win:        # the window crosses the border
                zero_values(xf, 0, 0, buf, o, 0, uc, win * win, 0, sl)
            for a in range(a0, a1):             # row a's columns c0 .. c1 - 1 lie side by side in x
                src = ((b_ * h + y0 + a) * w + x0 + c0) * c
                copy_values(xf, src, 0, buf, np.uint64(win * a + c0) * sl + o, 0, uc, c1 - c0, uc, sl)
        m = np.uint64(nt) * uc
        wsl = np.uint64(win) * sl
        # columns: buf2[win*a + b] = sum_i M[a, i] d[i, b]; rows: v[6a + b] = sum_j buf2[win*a + j] M[b, j]
        # (M = B^T, or A with win = 4)
        if win == 6:
            winograd_bt(buf, 0, wsl, buf, half, wsl, m, win, sl, sl)
            winograd_bt(buf, half, sl, vf, np.uint64(t0) * uc, es, m, 6, wsl, np.uint64(6) * es)
        else:
            winograd_a(buf, 0, wsl, buf, half, wsl, m, win, sl, sl)
            winograd_a(buf, half, sl, vf, np.uint64(t0) * uc, es, m, 6, wsl, np.uint64(6) * es)


@fam.kernel()
def winograd_output(mf, yf, n_, oh, ow, o, bias, relu, th, tw, buf, tb):
    # yf[n, y, x, o] (flat, oh x ow pixels) = (A^T M A)[y % 4, x % 4] of tile (n, y // 4, x // 4),
    # plus bias[o], then max(., 0) when relu (NaN kept): mf (36 * T*O) flat, buf (>= 40 * tb * O)
    # scratch. A conv without a bias passes zeros: one compiled kernel serves both, and the adds
    # cost less than a second compile (~0.3 s)
    tiles = n_ * th * tw
    uo = np.uint64(o)
    sl = np.uint64(tb * o)
    es = np.uint64(tiles * o)
    rows = np.uint64(24) * sl                    # buf: [24 column sums | 16 output positions]
    zero = np.empty(1, mf.dtype)
    zero[0] = 0
    for t0 in range(0, tiles, tb):
        nt = min(tb, tiles - t0)
        m = np.uint64(nt) * uo
        # columns: buf[6a + b] = sum_i AT[a, i] M[i, b]; rows: buf2[4a + b] = sum_j buf[6a + j] AT[b, j]
        winograd_at(mf, np.uint64(t0) * uo, np.uint64(6) * es, buf, 0, np.uint64(6) * sl, m, 6, es, sl)
        winograd_at(buf, 0, sl, buf, rows, sl, m, 4, np.uint64(6) * sl, np.uint64(4) * sl)
        for tt in range(nt):                    # scatter the tiles' pixels that lie in the output
            t = t0 + tt
            b_ = t // (th * tw)
            r = t - b_ * (th * tw)
            y0 = (r // tw) * 4
            x0 = (r - (r // tw) * tw) * 4
            for a in range(min(4, oh - y0)):
                for b in range(min(4, ow - x0)):
                    src = rows + np.uint64(4 * a + b) * sl + np.uint64(tt) * uo
                    dst = np.uint64(((b_ * oh + y0 + a) * ow + x0 + b) * o)
                    for i in range(uo):
                        v = buf[src + i] + bias[i]
                        yf[dst + i] = zero[0] if relu and v < 0 else v


# -- binding -------------------------------------------------------------------------------------------
# G, the filter transform, in each float dtype (float32 rounds U to ~6e-8 of its size: far below the
# transforms' own rounding)
_G = {np.dtype(dt): np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dt)
      for dt in (np.float32, np.float64)}


def _filter(f, t, u):
    # u[a, b] = (G g G^T)[a, b] for every (c, o): f (3, 3*C*O) the HWIO filter's rows, t (6, 3*C*O)
    # scratch, u (6, 6, C*O); two small GEMMs (BLAS), no numba kernel to compile
    g = _G[f.dtype]
    np.matmul(g, f, out=t)
    np.matmul(g, t.reshape(6, 3, -1), out=u)


def _flip(f, ft):
    # ft[i, j, o, c] = f[2 - i, 2 - j, c, o]: the filter of the input gradient's correlation
    np.copyto(ft, f[::-1, ::-1].transpose(0, 1, 3, 2))


def _bmm(a, b, out):
    np.matmul(a, b, out=out)


_filter.blas = _bmm.blas = True     # BLAS runs its own threads: see lower._serial_beside_blas


def conv_steps(x_shape, f_shape, dtype, oh, ow, ph, pw, x_in, f_in, out_desc, scratch0: int,
               bias=None, relu=False, flip=False):
    """The plan steps of a Winograd conv of x (N, H, W, C) with the HWIO filter f (3, 3, C, O) into
    out (N, oh, ow, O): x_in(shape) and f_in(shape) describe the inputs, out_desc(shape) the
    output, and scratch is numbered from scratch0. ``flip``: correlate with f turned 180 degrees
    and its channels swapped (the input gradient; then f is (3, 3, O, C) with O the output's
    channels). Returns (steps, scratch, warm)."""
    n, _, _, c = (int(s) for s in x_shape)
    o = int(f_shape[2] if flip else f_shape[3])
    dt = np.dtype(dtype)
    th, tw = -(-oh // TILE), -(-ow // TILE)
    tiles = n * th * tw
    t_s, u_s, v_s, m_s, buf_s, flip_s = range(scratch0, scratch0 + 6)
    scratch = [(dt, (6, 3 * c * o)), (dt, (36 * c * o,)), (dt, (36 * tiles * c,)), (dt, (36 * tiles * o,)),
               (dt, (max(2 * 36 * c, 40 * o) * BATCH,))]
    steps = []
    f_rows = f_in((3, 3 * c * o))
    if flip:
        scratch.append((dt, (3, 3, c, o)))
        steps.append((_flip, [f_in(None), Scratch(flip_s, (3, 3, c, o))]))
        f_rows = Scratch(flip_s, (3, 3 * c * o))
    inp, outp = fam.get("winograd_input"), fam.get("winograd_output")
    b_desc = bias if bias is not None else Const(np.zeros(o, dt))
    steps += [(_filter, [f_rows, Scratch(t_s, None), Scratch(u_s, (6, 6, c * o))]),
              (inp, [x_in(None), x_in((int(np.prod(x_shape)),)), Scratch(v_s, None), Scratch(buf_s, None)]
               + [Const(v) for v in (ph, pw, th, tw, BATCH, 6)]),
              (_bmm, [Scratch(v_s, (36, tiles, c)), Scratch(u_s, (36, c, o)), Scratch(m_s, (36, tiles, o))]),
              (outp, [Scratch(m_s, None), out_desc((n * oh * ow * o,))]
               + [Const(v) for v in (n, oh, ow, o)] + [b_desc, Const(int(relu)), Const(th), Const(tw),
                                                       Scratch(buf_s, None), Const(BATCH)])]
    flat = arr_t(dt, 1)
    warm = [(inp, (arr_t(dt, 4), flat, flat, flat) + (scalar_t("int64"),) * 6),
            (outp, (flat, flat) + (scalar_t("int64"),) * 4 + (flat,) + (scalar_t("int64"),) * 3 + (flat, scalar_t("int64")))]
    return steps, scratch, warm


# G^T, the filter gradient's last transform
_GT = {dt: g.T.copy() for dt, g in _G.items()}


def _filter_grad(s, t, out):
    # out[i, j] = (G^T S G)[i, j] for every (c, o): s (6, 6*C*O) the summed products, t (3, 6*C*O)
    # scratch, out (3, 3, C*O) the HWIO gradient
    g = _GT[s.dtype]
    np.matmul(g, s, out=t)
    np.matmul(g, t.reshape(3, 6, -1), out=out)


def _bmm_tn(a, b, out):
    # out[e] = a[e]^T @ b[e]
    np.matmul(a.transpose(0, 2, 1), b, out=out)


_filter_grad.blas = _bmm_tn.blas = True


def filter_grad_steps(x_shape, dy_shape, dtype, ph, pw, x_in, dy_in, out_desc):
    """The plan steps of a 3x3 stride-1 conv's filter gradient by Winograd: for each tile of the
    output gradient dy (N, oh, ow, O) and the 6x6 window of x (N, H, W, C) under it,
    dW = G^T [(A dy A^T) ⊙ (B^T d B)] G, the products summed over all tiles as 36 GEMMs
    (C, tiles) @ (tiles, O). Returns (steps, scratch, warm)."""
    n, oh, ow, o = (int(s) for s in dy_shape)
    c = int(x_shape[3])
    dt = np.dtype(dtype)
    th, tw = -(-oh // TILE), -(-ow // TILE)
    tiles = n * th * tw
    inp = fam.get("winograd_input")
    scratch = [(dt, (36 * tiles * c,)), (dt, (36 * tiles * o,)), (dt, (36 * c * o,)), (dt, (3, 6 * c * o)),
               (dt, (2 * 36 * max(c, o) * BATCH,))]
    steps = [(inp, [x_in(None), x_in((int(np.prod(x_shape)),)), Scratch(0, None), Scratch(4, None)]
              + [Const(v) for v in (ph, pw, th, tw, BATCH, 6)]),
             (inp, [dy_in(None), dy_in((int(np.prod(dy_shape)),)), Scratch(1, None), Scratch(4, None)]
              + [Const(v) for v in (0, 0, th, tw, BATCH, 4)]),
             (_bmm_tn, [Scratch(0, (36, tiles, c)), Scratch(1, (36, tiles, o)), Scratch(2, (36, c, o))]),
             (_filter_grad, [Scratch(2, (6, 6 * c * o)), Scratch(3, None), out_desc((3, 3, c * o))])]
    flat = arr_t(dt, 1)
    return steps, scratch, [(inp, (arr_t(dt, 4), flat, flat, flat) + (scalar_t("int64"),) * 6)]
