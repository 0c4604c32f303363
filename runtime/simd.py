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
(half as many float64). ``llvm.fmuladd`` fuses the multiply-add where the CPU has FMA and stays a multiply and an
add where it has not.

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


@intrinsic
def conv_taps9_rows(typingctx, out, r0, xb, base0, step, tof, fp, fb, j0, j1, relu):
    """For pixels j in [j0, j1): ``out[r0 + j, c] = fb[c] + sum_t xb[base0 + j*step + tof[t]] *
    fp[t, c]`` over the 9 taps t, then ``max(., 0)`` when ``relu`` is nonzero (a NaN stays NaN), for
    the channels c of whole vector blocks (full registers, then half a register); returns how many
    channels that was (the caller finishes the rest). out, fp 2-D with contiguous rows, fb 1-D contiguous, xb and tof 1-D; all of one float
    dtype but tof (int64)."""
    if not all(isinstance(a, types.Array) for a in (out, xb, tof, fp, fb)):
        return None
    dt = out.dtype
    if dt not in (types.float32, types.float64) or any(a.dtype != dt for a in (xb, fp, fb)) \
            or tof.dtype != types.int64:
        return None
    sig = types.int64(out, r0, xb, base0, step, tof, fp, fb, j0, j1, relu)

    def codegen(context, builder, sig, args):
        out_a, x_a, t_a, f_a, b_a = (context.make_array(sig.args[k])(context, builder, args[k])
                                     for k in (0, 2, 5, 6, 7))
        r0, base0, step, j0, j1, relu = (context.cast(builder, args[k], sig.args[k], types.int64)
                                         for k in (1, 3, 4, 8, 9, 10))
        i64, i32, i1 = ir.IntType(64), ir.IntType(32), ir.IntType(1)
        ft = context.get_value_type(dt)
        size = 4 if dt == types.float32 else 8
        o = builder.extract_value(f_a.shape, 1)
        fstride = builder.extract_value(f_a.strides, 0)         # bytes per filter row
        ostride = builder.extract_value(out_a.strides, 0)
        xstride = builder.extract_value(x_a.strides, 0)
        tstride = builder.extract_value(t_a.strides, 0)
        on = builder.icmp_signed("!=", relu, i64(0))
        n = builder.sub(j1, j0)
        i8p = ir.IntType(8).as_pointer()

        def at(ary, byte_off, ty):
            return builder.bitcast(builder.gep(builder.bitcast(ary.data, i8p), [byte_off]), ty)
        offs = [builder.load(at(t_a, builder.mul(i64(t), tstride), i64.as_pointer())) for t in range(9)]

        def blocks(lanes, done):
            # channel blocks of `lanes` from channel `done` on; returns the channels done after them
            vt = ir.VectorType(ft, lanes)
            vp = vt.as_pointer()
            fmuladd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vt, [vt, vt, vt]),
                f"llvm.fmuladd.v{lanes}{'f32' if dt == types.float32 else 'f64'}")
            lane0 = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            undef = ir.Constant(vt, ir.Undefined)
            zero = ir.Constant(vt, [0.0] * lanes)
            relu_v = builder.shuffle_vector(
                builder.insert_element(ir.Constant(ir.VectorType(i1, lanes), ir.Undefined), on, i64(0)),
                ir.Constant(ir.VectorType(i1, lanes), ir.Undefined), lane0)
            nblk = builder.sdiv(builder.sub(o, done), i64(lanes))
            with cgutils.for_range(builder, nblk) as blk:
                cbytes = builder.mul(builder.add(done, builder.mul(blk.index, i64(lanes))), i64(size))
                fv = [builder.load(at(f_a, builder.add(builder.mul(i64(t), fstride), cbytes), vp), align=size)
                      for t in range(9)]
                bv = builder.load(at(b_a, cbytes, vp), align=size)
                with cgutils.for_range(builder, n) as jl:
                    j = builder.add(j0, jl.index)
                    base = builder.add(base0, builder.mul(j, step))
                    acc = bv
                    for t in range(9):
                        v = builder.load(at(x_a, builder.mul(builder.add(base, offs[t]), xstride),
                                            ft.as_pointer()))
                        sv = builder.shuffle_vector(builder.insert_element(undef, v, i64(0)), undef, lane0)
                        acc = builder.call(fmuladd, [sv, fv[t], acc])
                    neg = builder.fcmp_ordered("<", acc, zero)      # false for NaN: NaN stays
                    acc = builder.select(builder.and_(neg, relu_v), zero, acc)
                    row = builder.mul(builder.add(r0, j), ostride)
                    builder.store(acc, at(out_a, builder.add(row, cbytes), vp), align=size)
            return builder.add(done, builder.mul(nblk, i64(lanes)))
        # full registers, then one half-width block where at least half a register of channels is
        # left (8 channels with AVX-512 float32: none would fit a full register)
        lanes = _VECTOR_BYTES // size
        done = blocks(lanes, i64(0))
        return blocks(lanes // 2, done) if lanes >= 8 else done
    return sig, codegen


def source_digest() -> str:
    """A digest of this module's code: kernels that call its intrinsics put it in their cached
    source, so a change here recompiles them instead of loading stale machine code."""
    return hashlib.sha256(inspect.getsource(sys.modules[__name__]).encode()).hexdigest()[:16]
