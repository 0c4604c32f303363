"""Register-blocked inner loops written as LLVM IR (numba intrinsics), where numba's own code
leaves half the machine idle.

numba arrays are memory, and LLVM cannot prove that a kernel's stores leave its filter array
unchanged, so a loop like ``out[p, c] = sum_t x[p + off[t]] * f[t, c]`` reloads all of ``f`` for
every pixel: 9 vector loads per 9 FMAs, which makes the single-channel conv load-bound at about half
of the FMA rate. Here the IR holds one channel block's 9 filter vectors and its bias vector as SSA
values across the whole pixel loop, so the loop body is 9 scalar broadcasts and 9 multiply-adds.
Measured (batch 32, 28x28x1 -> 32 channels, 3x3, one thread, Zen 4): 256 -> 131 us with 8-lane
vectors, 113 us with 16.

Vectors are one register of the target CPU: 16 float32 lanes with AVX-512, 8 with AVX, 4 otherwise
(half as many float64); a half-register block follows the full ones. ``llvm.fmuladd`` fuses the
multiply-add where the CPU has FMA and stays a multiply and an add where it has not.

Two loops live here: the single-channel 3x3 conv (``conv_taps9_rows``) and its filter gradient
(``conv_filter_grad_taps9_rows``), whose 9 sums per channel block stay in registers; and the
Winograd transforms (``rows_combination``: constant small matrices applied to rows of values).

    >>> import numpy as np
    >>> from numba import njit
    >>> from graphc.runtime.simd import conv_taps9_rows
    >>> @njit
    ... def run(out, xb, tof, fp, fb):
    ...     return conv_taps9_rows(out, 0, xb, 0, 1, tof, fp, fb, 0, out.shape[0], 0)
    >>> xb = np.arange(12, dtype=np.float32)
    >>> tof = np.arange(9, dtype=np.int64)                  # taps: 9 consecutive inputs
    >>> fp = np.ones((9, 34), np.float32)
    >>> out = np.zeros((2, 34), np.float32)
    >>> done = int(run(out, xb, tof, fp, np.zeros(34, np.float32)))  # whole vector blocks only
    >>> done == 32 and out[:, :32].tolist() == [[36.0] * 32, [45.0] * 32]
    True
    >>> bool((out[:, done:] == 0).all())
    True
"""
from __future__ import annotations

import hashlib
import inspect
import sys

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _vector_bytes() -> int:
    """The widest vector register of the CPU numba compiles for: 64 bytes with AVX-512 (on Zen 4:
    113 vs 131 us for 32 bytes, same conv), 32 with AVX, else 16. Follows NUMBA_CPU_NAME /
    NUMBA_CPU_FEATURES when they are set (a portable cache)."""
    import llvmlite.binding as llvm
    from numba.core import config
    if config.CPU_NAME and config.CPU_NAME != "host":
        names = {f[1:] for f in (config.CPU_FEATURES or "").split(",") if f.startswith("+")}
    else:
        names = {k for k, on in llvm.get_host_cpu_features().items() if on}
    return 64 if "avx512f" in names else 32 if "avx" in names else 16


_VECTOR_BYTES = _vector_bytes()
VECTOR_BYTES = _VECTOR_BYTES      # for the generated elementwise kernels (codegen.ew_source)


@intrinsic
def conv_taps9_rows(typingctx, out, r0, xb, base0, step, tof, fp, fb, j0, j1, relu):
    """For pixels j in [j0, j1): ``out[r0 + j, c] = fb[c] + sum_t xb[base0 + j*step + tof[t]] *
    fp[t, c]`` over the 9 taps t, then ``max(., 0)`` when ``relu`` is nonzero (a NaN stays NaN), for
    the channels c of whole vector blocks (full registers, then half a register); returns how many
    channels that was (the caller finishes the rest). out, fp 2-D with contiguous rows, fb 1-D
    contiguous, xb and tof 1-D; all of one float dtype but tof (int64)."""
    if not _typed(out, (out, xb, fp, fb), tof):
        return None
    sig = types.int64(out, r0, xb, base0, step, tof, fp, fb, j0, j1, relu)

    def codegen(context, builder, sig, args):
        e = _Emit(context, builder, sig, args)
        out_a, x_a, f_a, b_a = (e.array(k) for k in (0, 2, 6, 7))
        r0, base0, step, j0, j1, relu = (e.int(k) for k in (1, 3, 4, 8, 9, 10))
        o = builder.extract_value(f_a.shape, 1)
        fstride, ostride = e.stride(f_a), e.stride(out_a)         # bytes per row
        offs = e.taps(e.array(5))
        on = builder.icmp_signed("!=", relu, _I64(0))
        n = builder.sub(j1, j0)

        def blocks(lanes, done):
            # channel blocks of `lanes` from channel `done` on; returns the channels done after them
            vt, fmuladd, zero = e.vector(lanes)
            relu_v = e.splat(ir.VectorType(ir.IntType(1), lanes), on)
            nblk = builder.sdiv(builder.sub(o, done), _I64(lanes))
            with cgutils.for_range(builder, nblk) as blk:
                cbytes = e.channel_bytes(done, blk.index, lanes)
                fv = [e.load_vec(f_a, builder.add(builder.mul(_I64(t), fstride), cbytes), vt)
                      for t in range(9)]
                bv = e.load_vec(b_a, cbytes, vt)
                with cgutils.for_range(builder, n) as jl:
                    j = builder.add(j0, jl.index)
                    base = builder.add(base0, builder.mul(j, step))
                    acc = bv
                    for t in range(9):
                        sv = e.splat(vt, e.load_elem(x_a, builder.add(base, offs[t])))
                        acc = builder.call(fmuladd, [sv, fv[t], acc])
                    neg = builder.fcmp_ordered("<", acc, zero)      # false for NaN: NaN stays
                    acc = builder.select(builder.and_(neg, relu_v), zero, acc)
                    row = builder.mul(builder.add(r0, j), ostride)
                    e.store_vec(acc, out_a, builder.add(row, cbytes))
            return builder.add(done, builder.mul(nblk, _I64(lanes)))
        return e.over_widths(blocks)
    return sig, codegen


@intrinsic
def conv_filter_grad_taps9_rows(typingctx, acc, xb, base0, step, tof, dy, r0, j0, j1):
    """The single-channel conv's filter gradient over pixels j in [j0, j1) of one row:
    ``acc[t, c] += sum_j xb[base0 + j*step + tof[t]] * dy[r0 + j, c]`` for the 9 taps t and the
    channels c of whole vector blocks (full registers, then half a register); returns how many
    channels that was. The row's 9 sums per block are loop-carried SSA values (registers), added
    to acc once at the end: a sum of one row first, then of rows, as BLAS blocks its sums. Replaces
    a tap-major im2col + a GEMM whose 9 rows BLAS ran at ~20 GFLOP/s: 477 -> 152 us (batch 32,
    28x28x1 -> 32). acc and dy 2-D with contiguous rows, xb and tof 1-D; float32/64 (tof int64)."""
    if not _typed(acc, (acc, xb, dy), tof):
        return None
    sig = types.int64(acc, xb, base0, step, tof, dy, r0, j0, j1)

    def codegen(context, builder, sig, args):
        e = _Emit(context, builder, sig, args)
        acc_a, x_a, d_a = (e.array(k) for k in (0, 1, 5))
        base0, step, r0, j0, j1 = (e.int(k) for k in (2, 3, 6, 7, 8))
        o = builder.extract_value(acc_a.shape, 1)
        astride, dstride = e.stride(acc_a), e.stride(d_a)
        offs = e.taps(e.array(4))
        n = builder.sub(j1, j0)

        def blocks(lanes, done):
            vt, fmuladd, zero = e.vector(lanes)
            nblk = builder.sdiv(builder.sub(o, done), _I64(lanes))
            with cgutils.for_range(builder, nblk) as blk:
                cbytes = e.channel_bytes(done, blk.index, lanes)
                # the pixel loop by hand: its 9 sums are phi nodes, carried in registers
                pre = builder.block
                head = builder.append_basic_block("fgrad.head")
                body = builder.append_basic_block("fgrad.body")
                tail = builder.append_basic_block("fgrad.tail")
                builder.branch(head)
                builder.position_at_end(head)
                jl = builder.phi(_I64)
                sums = [builder.phi(vt) for _ in range(9)]
                jl.add_incoming(_I64(0), pre)
                for sm in sums:
                    sm.add_incoming(zero, pre)
                builder.cbranch(builder.icmp_signed("<", jl, n), body, tail)
                builder.position_at_end(body)
                j = builder.add(j0, jl)
                base = builder.add(base0, builder.mul(j, step))
                dv = e.load_vec(d_a, builder.add(builder.mul(builder.add(r0, j), dstride), cbytes), vt)
                new = [builder.call(fmuladd, [e.splat(vt, e.load_elem(x_a, builder.add(base, offs[t]))),
                                              dv, sums[t]]) for t in range(9)]
                jl.add_incoming(builder.add(jl, _I64(1)), builder.block)
                for sm, v in zip(sums, new):
                    sm.add_incoming(v, builder.block)
                builder.branch(head)
                builder.position_at_end(tail)
                for t in range(9):
                    off = builder.add(builder.mul(_I64(t), astride), cbytes)
                    e.store_vec(builder.fadd(e.load_vec(acc_a, off, vt), sums[t]), acc_a, off)
            return builder.add(done, builder.mul(nblk, _I64(lanes)))
        return e.over_widths(blocks)
    return sig, codegen


def rows_combination(matrix, name: str):
    """An intrinsic ``f(src, s0, ss, dst, d0, ds, n, reps, rs, rd)``: for r < reps and i < n,
    ``dst[d0 + r*rd + a*ds + i] = sum_j M[a][j] * src[s0 + r*rs + j*ss + i]`` for every row a of
    the constant matrix ``M``. src and dst are 1-D contiguous arrays of one float dtype (they may be
    the same array when the rows read and the rows written are disjoint); offsets, strides and
    counts are integers. Each vector of source values is loaded once and every output row stored;
    the coefficients are constants of the IR (a 1 adds, a -1 subtracts, a zero row stores zeros).

    Winograd's transforms (kernels_winograd) run through these. numba's own loops, one per output
    row (with more stores per loop LLVM gave up vectorizing), ran as fast but took ~0.7 s to compile
    per call site; ``reps`` keeps the repetitions inside one call, as a loop: call sites in the
    caller's short constant loops were each unrolled into a copy of the IR (36 copies of the
    copy loop: 1.5 s to compile)."""
    rows = [[float(c) for c in row] for row in matrix]
    used = sorted({j for row in rows for j, c in enumerate(row) if c})

    def combine(builder, xs, const):
        out = []
        for row in rows:
            acc = None
            for j, c in enumerate(row):
                if not c:
                    continue
                term = xs[j] if abs(c) == 1.0 else builder.fmul(const(abs(c)), xs[j])
                if acc is None:
                    acc = term if c > 0 else builder.fsub(const(0.0), term)
                else:
                    acc = builder.fadd(acc, term) if c > 0 else builder.fsub(acc, term)
            out.append(const(0.0) if acc is None else acc)
        return out

    @intrinsic
    def rows_intrinsic(typingctx, src, s0, ss, dst, d0, ds, n, reps, rs, rd):
        if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
                and src.dtype in (types.float32, types.float64) and src.ndim == dst.ndim == 1):
            return None
        sig = types.void(src, s0, ss, dst, d0, ds, n, reps, rs, rd)

        def codegen(context, builder, sig, args):
            e = _Emit(context, builder, sig, args)
            src_a, dst_a = e.array(0), e.array(3)
            s0, ss, d0, ds, n, reps, rs, rd = (e.int(k) for k in (1, 2, 4, 5, 6, 7, 8, 9))
            size = _I64(e.size)
            lanes = _VECTOR_BYTES // e.size
            vt = ir.VectorType(e.ft, lanes)
            nvec = builder.sdiv(n, _I64(lanes))
            done = builder.mul(nvec, _I64(lanes))
            with cgutils.for_range(builder, reps) as rp:
                sr = builder.add(s0, builder.mul(rp.index, rs))
                dr = builder.add(d0, builder.mul(rp.index, rd))

                def at(base, k, stride, i):  # the byte offset of element base + k*stride + i
                    return builder.mul(builder.add(builder.add(base, builder.mul(_I64(k), stride)), i), size)

                def run(i, vt, const):       # one vector (or scalar) column of every row, from element i
                    xs = {j: e.load_vec(src_a, at(sr, j, ss, i), vt) for j in used}
                    for a, v in enumerate(combine(builder, xs, const)):
                        e.store_vec(v, dst_a, at(dr, a, ds, i))
                with cgutils.for_range(builder, nvec) as lp:
                    run(builder.mul(lp.index, _I64(lanes)), vt, lambda c: ir.Constant(vt, [c] * lanes))
                with cgutils.for_range(builder, builder.sub(n, done)) as lp:
                    run(builder.add(done, lp.index), e.ft, lambda c: ir.Constant(e.ft, c))
            return context.get_dummy_value()
        return sig, codegen
    rows_intrinsic.__name__ = name
    return rows_intrinsic


# Winograd F(4x4, 3x3) (Lavin & Gray 2016): the input transform B^T and the output transform A^T;
winograd_bt = rows_combination([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], "winograd_bt")
winograd_at = rows_combination([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                                [0, 1, -1, 8, -8, 1]], "winograd_at")
# A = (A^T)^T: the filter gradient's transform of a 4x4 tile of the output gradient
winograd_a = rows_combination([[1, 0, 0, 0], [1, 1, 1, 1], [1, -1, 1, -1], [1, 2, 4, 8], [1, -2, 4, -8],
                               [0, 0, 0, 1]], "winograd_a")
# copies and zero fills of n values (the identity and the zero 1x1 matrices): cheaper for numba to
# compile than its own loops
copy_values = rows_combination([[1]], "copy_values")
zero_values = rows_combination([[0]], "zero_values")


# -- what both code generators share ------------------------------------------------------------------
_I64 = ir.IntType(64)


def _typed(first, floats, tof) -> bool:
    """Arrays of one float dtype (``floats``) and an int64 tap-offset array."""
    arrays = floats + (tof,)
    return all(isinstance(a, types.Array) for a in arrays) and first.dtype in (types.float32, types.float64) \
        and all(a.dtype == first.dtype for a in floats) and tof.dtype == types.int64


class _Emit:
    """IR helpers for one intrinsic call: its array and integer arguments, byte-offset loads and
    stores, the 9 tap offsets, vector types with their multiply-add, splats."""

    def __init__(self, context, builder, sig, args):
        self.context, self.builder, self.sig, self.args = context, builder, sig, args
        dt = next(a.dtype for a in sig.args if isinstance(a, types.Array) and a.dtype != types.int64)
        self.dt, self.ft = dt, context.get_value_type(dt)
        self.size = 4 if dt == types.float32 else 8

    def array(self, k):
        return self.context.make_array(self.sig.args[k])(self.context, self.builder, self.args[k])

    def int(self, k):
        return self.context.cast(self.builder, self.args[k], self.sig.args[k], types.int64)

    def stride(self, ary, axis=0):
        return self.builder.extract_value(ary.strides, axis)

    def _ptr(self, ary, byte_off, ty):
        b = self.builder
        i8p = ir.IntType(8).as_pointer()
        return b.bitcast(b.gep(b.bitcast(ary.data, i8p), [byte_off]), ty.as_pointer())

    def load_vec(self, ary, byte_off, vt):
        return self.builder.load(self._ptr(ary, byte_off, vt), align=self.size)

    def store_vec(self, value, ary, byte_off):
        self.builder.store(value, self._ptr(ary, byte_off, value.type), align=self.size)

    def load_elem(self, ary, index):
        """``ary[index]`` of a 1-D array (its stride honoured)."""
        return self.builder.load(self._ptr(ary, self.builder.mul(index, self.stride(ary)), self.ft))

    def taps(self, t_a):
        return [self.load_elem_i64(t_a, t) for t in range(9)]

    def load_elem_i64(self, ary, t):
        return self.builder.load(self._ptr(ary, self.builder.mul(_I64(t), self.stride(ary)), _I64))

    def vector(self, lanes):
        """The vector type of ``lanes`` elements, its llvm.fmuladd and its zero."""
        vt = ir.VectorType(self.ft, lanes)
        name = f"llvm.fmuladd.v{lanes}{'f32' if self.dt == types.float32 else 'f64'}"
        fmuladd = cgutils.get_or_insert_function(self.builder.module, ir.FunctionType(vt, [vt, vt, vt]), name)
        return vt, fmuladd, ir.Constant(vt, [0.0] * lanes)

    def splat(self, vt, value):
        undef = ir.Constant(vt, ir.Undefined)
        lane0 = ir.Constant(ir.VectorType(ir.IntType(32), vt.count), [0] * vt.count)
        return self.builder.shuffle_vector(self.builder.insert_element(undef, value, _I64(0)), undef, lane0)

    def channel_bytes(self, done, block, lanes):
        b = self.builder
        return b.mul(b.add(done, b.mul(block, _I64(lanes))), _I64(self.size))

    def over_widths(self, blocks):
        """Full-register blocks, then one half-register block (8 float32 channels with AVX-512 fit
        no full register); the channels done."""
        lanes = _VECTOR_BYTES // self.size
        done = blocks(lanes, _I64(0))
        return blocks(lanes // 2, done) if lanes >= 8 else done

def source_digest() -> str:
    """A digest of this module's code: kernels that call its intrinsics put it in their cached
    source, so a change here recompiles them instead of loading stale machine code."""
    return hashlib.sha256(inspect.getsource(sys.modules[__name__]).encode()).hexdigest()[:16]
