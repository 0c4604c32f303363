"""Reduction kernels: reduce_sum/mean/max/min/prod/any/all into the planned buffer, and
``fused_reduction`` (generated elementwise prologue into scratch, then the reduction).

Reductions use numpy's own reduction loops with ``out=`` (pairwise float
summation, SIMD): bit-identical to the references and allocation-free.

    >>> from graphc.runtime.kernels import KERNELS
    >>> "fused_reduction" in KERNELS
    True
"""
from __future__ import annotations

import numpy as np

from graphc.ir import TensorSpec
from graphc.ops.fused import infer_program

from .kernels import Call, In, NodeCtx, Out, Scratch, ew_call, kernel_for

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


@kernel_for(*_NP)
def bind_reduce(ctx: NodeCtx):
    axis, kd = ctx.attrs["axis"], ctx.attrs["keepdims"]
    if not _supported(ctx.op, ctx.out_dtype, ctx.in_shapes[0], axis):
        return None
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
    red = _reducer(rop, rattrs["axis"], rattrs["keepdims"])
    label = "+".join(s[0] for s in a["program"])
    return Call(steps=[step, (red, [Scratch(0, p_shape), Out()])], name=f"ew[{label}]+{rop}",
                scratch=[(p_dt, p_shape)], warm=[warm])
