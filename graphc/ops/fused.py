"""Fused ops created by the fusion passes; each holds the sub-expression it replaces.

A *program* is a tuple of steps ``(op, args, attrs)``: ``op`` names an
elementwise op, ``args`` are integers (``i < n_inputs`` is input ``i`` of the
fused node, ``i >= n_inputs`` is the result of step ``i - n_inputs``) and
``attrs`` is a sorted tuple of ``(key, value)`` pairs. The last step is the
result. Programs are hashable, so CSE and the kernel cache see equal fusions
as equal.

* ``fused_elementwise``: inputs ``x0..xn``; result = program(x0..xn).
* ``fused_contraction``: a ``matmul``/``conv2d`` (the first ``n_c`` inputs,
  attrs ``c_attrs``) followed by an elementwise epilogue program whose input 0
  is the contraction result and inputs 1.. are the remaining node inputs
  (bias, residual...). ``MatMulBiasAct``/``Conv2DBiasAct`` in the dumps.
* ``fused_reduction``: an elementwise prologue program over the inputs feeding
  one reduction (op ``reduce`` with attrs ``r_attrs``).
* ``fused_multi_output``: one elementwise program with several results
  (``outputs``: env indices, inputs first then steps) of one shape and dtype,
  stacked: the node's spec is ``(k, *shape)``, computed by ONE loop nest. Each
  result reaches its consumers through a ``fused_output`` node (attr ``index``),
  a view ``stacked[index]`` (XLA's get-tuple-element), so every IR node keeps
  one output.

    >>> from graphc.ops.fused import run_program
    >>> import numpy as np
    >>> prog = (("mul", (0, 0), ()), ("add", (2, 1), ()))   # x*x + y
    >>> run_program(prog, [np.float32(3), np.float32(1)]).item()
    10.0
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import GraphError
from ..ir import TensorSpec
from .registry import OpDef, get_op, register

__all__: list[str] = []


def run_program(program: tuple, values: Sequence[np.ndarray]) -> np.ndarray:
    """Evaluate a fused program with the numpy references of its steps."""
    env = list(values)
    for op, args, attrs in program:
        env.append(get_op(op).reference([np.asarray(env[i]) for i in args], dict(attrs)))
    return env[-1]


def infer_program(program: tuple, specs: Sequence[TensorSpec]) -> TensorSpec:
    """The spec of a program's result, re-running each step's shape rule."""
    return infer_program_env(program, specs)[-1]


def infer_program_env(program: tuple, specs: Sequence[TensorSpec]) -> list:
    """The specs of the inputs and of every step's result."""
    env = list(specs)
    for op, args, attrs in program:
        opdef = get_op(op)
        if opdef.fusion != "elementwise":
            raise GraphError(f"fused program step {op} is not elementwise")
        env.append(opdef.infer([env[i] for i in args], dict(attrs)))
    return env


def format_program(program: tuple, n_inputs: int, input_names: Sequence[str] | None = None) -> list[str]:
    """One line per step, SSA style (``t2 = mul(in0, in0)``), for dumps."""
    names = list(input_names or [f"in{i}" for i in range(n_inputs)])
    lines = []
    for k, (op, args, attrs) in enumerate(program):
        nm = f"t{k}"
        a = ", ".join(f"{key}={val}" for key, val in attrs if key != "dtype") + \
            "".join(f", dtype={val.name}" for key, val in attrs if key == "dtype")
        lines.append(f"{nm} = {op}({', '.join(names[i] for i in args)}{', ' + a if a else ''})")
        names.append(nm)
    return lines


register(OpDef(
    "fused_elementwise", fusion="elementwise", scalar="<program>", differentiable=False,
    infer=lambda s, a: infer_program(a["program"], s),
    reference=lambda v, a: run_program(a["program"], v),
    doc="A fused region of elementwise ops (attrs['program'])."))


def _multi_infer(specs, a):
    env = infer_program_env(a["program"], specs)
    outs = [env[i] for i in a["outputs"]]
    if len(outs) < 2 or any(o != outs[0] for o in outs):
        raise GraphError(f"fused_multi_output: results {[str(o) for o in outs]} must be two or "
                         "more of one shape and dtype")
    return TensorSpec((len(outs),) + tuple(outs[0].shape), outs[0].dtype)


def _multi_ref(values, a):
    env = list(values)
    for op, args, attrs in a["program"]:
        env.append(get_op(op).reference([np.asarray(env[i]) for i in args], dict(attrs)))
    return np.stack([np.asarray(env[i]) for i in a["outputs"]])


register(OpDef(
    "fused_multi_output", fusion="opaque", differentiable=False,
    infer=_multi_infer, reference=_multi_ref,
    doc="An elementwise program with several same-spec results (attrs['outputs']), stacked."))


def _output_infer(specs, a):
    (s,) = specs
    k = a["index"]
    if not s.shape or s.shape[0] is None or not 0 <= k < s.shape[0]:
        raise GraphError(f"fused_output: index {k} out of range for {s}")
    return TensorSpec(tuple(s.shape[1:]), s.dtype)


register(OpDef(
    "fused_output", fusion="layout", differentiable=False,
    infer=_output_infer, reference=lambda v, a: v[0][a["index"]],
    doc="Result attrs['index'] of a fused_multi_output node (a view, no copy)."))


def _contraction_infer(specs, a):
    n = a["n_c"]
    c = get_op(a["contraction"]).infer(list(specs[:n]), dict(a["c_attrs"]))
    return infer_program(a["program"], [c] + list(specs[n:]))


def _contraction_ref(values, a):
    n = a["n_c"]
    c = get_op(a["contraction"]).reference(list(values[:n]), dict(a["c_attrs"]))
    return run_program(a["program"], [c] + list(values[n:]))


register(OpDef(
    "fused_contraction", fusion="contraction", differentiable=False,
    infer=_contraction_infer, reference=_contraction_ref,
    doc="matmul/conv2d + elementwise epilogue (bias, activation, ...)."))


def _reduction_infer(specs, a):
    operand = infer_program(a["program"], specs)
    return get_op(a["reduce"]).infer([operand], dict(a["r_attrs"]))


def _reduction_ref(values, a):
    operand = run_program(a["program"], values)
    return get_op(a["reduce"]).reference([operand], dict(a["r_attrs"]))


register(OpDef(
    "fused_reduction", fusion="reduction", differentiable=False,
    infer=_reduction_infer, reference=_reduction_ref,
    doc="An elementwise prologue (attrs['program']) feeding one reduction."))
