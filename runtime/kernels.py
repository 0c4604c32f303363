"""The kernel registry ``KERNELS`` (op name -> binder) and the elementwise / fallback binders.

A *binder* gets a ``NodeCtx`` (the node, its attrs and the concrete shapes of
one shape set) and returns a ``Call``: the kernel invocations that compute the
node, over argument descriptors the executor turns into arrays:

* ``In(k, shape)``: input ``k`` (reshaped to ``shape``, a view; C-contiguous),
* ``InRows(k, rows, cols)``: input ``k`` as a ``rows`` x ``cols`` matrix with a leading
  dimension, passed as two arguments (a flat C-contiguous array and the row pitch),
* ``Out(shape)``: the node's output buffer (preallocated by the memory plan),
* ``Scratch(j, shape)``: temporary buffer ``j`` of ``Call.scratch``,
* ``Const(value)``: a bound Python/numpy value.

``mode="value"`` calls instead return the output (numpy references; views).
A binder returning ``None`` (a case it does not cover) makes the node run its numpy reference,
so every op runs; ``KERNELS`` lists the ops with kernels. A binder that raises, or a kernel
that does not compile, is a bug: the node falls back to its reference with a
``KernelFallbackWarning`` (once per op), or raises ``KernelFallbackError`` when the configuration
sets ``strict_kernels`` (the test suite does).

    >>> "fused_elementwise" in KERNELS and "matmul" in KERNELS
    True
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from graphc import config
from graphc.errors import KernelFallbackError, KernelFallbackWarning
from graphc.funcgraph import bodies
from graphc.ops.registry import OPS, get_op

from . import blas_threads, cache, codegen, threads


@dataclass(frozen=True)
class In:
    k: int
    shape: tuple | None = None


@dataclass(frozen=True)
class InRows:
    """Input ``k`` as a ``rows`` x ``cols`` matrix in two kernel arguments, BLAS-style: a flat
    C-contiguous array from its first element to its last, and ``ld``, the distance in elements
    between row starts. A fixed view whose rows are contiguous but spaced apart (a column block of
    a pool buffer: the unrolled LSTM's stacked gate gradients) is passed where it lies instead of
    copied; anything else is made C-contiguous (``ld == cols``)."""
    k: int
    rows: int
    cols: int


@dataclass(frozen=True)
class Out:
    shape: tuple | None = None


@dataclass(frozen=True)
class Scratch:
    j: int
    shape: tuple | None = None


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass
class Call:
    """How to compute one node: ``steps`` of ``(fn, [descriptors])`` run in order."""
    steps: list
    name: str
    mode: str = "out"                         # "out": kernels write Out; "value": steps[0] returns it
    scratch: list = field(default_factory=list)   # [(dtype, shape)]
    warm: list = field(default_factory=list)      # [(numba dispatcher, signature)] compiled at bind
    contiguous: bool = True                   # inputs made C-contiguous before the call


@dataclass
class NodeCtx:
    node: int
    op: str
    attrs: dict
    in_shapes: list
    in_dtypes: list
    out_shape: tuple
    out_dtype: np.dtype
    static_out_shape: tuple
    static_in_shapes: list

    @property
    def n_in(self) -> int:
        return len(self.in_shapes)


KERNELS: dict[str, Callable[[NodeCtx], Call | None]] = {}


def kernel_for(*ops: str):
    """Register a binder for op names ``ops``."""
    def deco(fn):
        for op in ops:
            KERNELS[op] = fn
        return fn
    return deco


# Signatures are built when a kernel is bound, and numba imported then: the baseline tier (numpy
# references) runs a cold plan's first steps in a process that has not imported numba (~0.15 s).
def arr_t(dtype, ndim: int, layout: str = "C"):
    """The numba type of a C-contiguous array."""
    import numba
    return numba.types.Array(numba.from_dtype(np.dtype(dtype)), ndim, layout)


def scalar_t(kind):
    """The numba type of a scalar argument: of a numpy dtype, or numba's type of that name
    (``"int64"``, ``"float64"``, ``"intp"``, ``"boolean"``, ``"none"``)."""
    import numba
    return getattr(numba.types, kind) if isinstance(kind, str) else numba.from_dtype(np.dtype(kind))


def reference_call(ctx: NodeCtx) -> Call:
    """Fallback: the op's numpy reference (correct, not fast)."""
    opdef = get_op(ctx.op)
    ref, attrs = opdef.reference, ctx.attrs
    if bodies(attrs):       # a loop on the reference tier: its steps' small GEMMs on one BLAS thread
        def run_reference(*vals):
            with blas_threads.serial():
                return ref(list(vals), attrs)
        return Call(steps=[(run_reference, [In(k) for k in range(ctx.n_in)])], name=f"ref:{ctx.op}",
                    mode="value", contiguous=False)

    def run_reference(*vals):
        return ref(list(vals), attrs)
    return Call(steps=[(run_reference, [In(k) for k in range(ctx.n_in)])], name=f"ref:{ctx.op}",
                mode="value", contiguous=False)


def bind(ctx: NodeCtx, compile: bool = True) -> Call:
    """The kernel call for ``ctx``: its registered binder, else the numpy reference. With
    ``compile=False`` the call's kernels are not compiled yet: ``finish`` does that (lowering
    compiles a whole plan's kernels together, see cache.compile_parallel)."""
    binder = KERNELS.get(ctx.op)
    if binder is None and ctx.op in OPS and OPS[ctx.op].fusion == "elementwise" \
            and OPS[ctx.op].scalar not in (None, "<program>"):
        binder = bind_elementwise
    if binder is not None:
        try:
            call = binder(ctx)
        except Exception as e:  # a kernel that cannot handle this case: reference instead
            call = None
            fell_back(ctx, "binding", e)
        if call is not None:
            return finish(ctx, call) if compile else call
    return reference_call(ctx)


def finish(ctx: NodeCtx, call: Call) -> Call:
    """``call`` with its kernels compiled (or loaded from the disk cache); the numpy reference
    if one of them does not compile."""
    try:
        for disp, sig in call.warm:
            cache.ensure_compiled(disp, sig)
        return call
    except Exception as e:
        fell_back(ctx, "compile", e)
    return reference_call(ctx)


FALLBACK_REASONS: dict = {}     # (op, "binding" | "compile") -> the last reason, in this process


def fell_back(ctx: NodeCtx, stage: str, error: Exception) -> None:
    """A kernel for ``ctx`` failed at ``stage``: raise with ``strict_kernels`` set (the test suite
    runs so), else warn once per op and stage and record the reason in ``FALLBACK_REASONS``."""
    reason = f"{type(error).__name__}: {str(error)[:300]}"
    where = (f"{ctx.op} (node {ctx.node}, inputs {', '.join(str(s) for s in ctx.in_shapes)} "
             f"{', '.join(np.dtype(d).name for d in ctx.in_dtypes)})")
    if config.get().strict_kernels:
        raise KernelFallbackError(f"{where}: kernel {stage} failed ({reason}) and strict_kernels is "
                                  "set; unset GRAPHC_STRICT_KERNELS to run the numpy reference "
                                  "instead, and report this as a graphc bug") from error
    key = (ctx.op, stage)
    if key not in FALLBACK_REASONS:
        warnings.warn(f"graphc: {where} runs its numpy reference (slower): kernel {stage} failed "
                      f"({reason})", KernelFallbackWarning, stacklevel=2)
    FALLBACK_REASONS[key] = reason


# -- elementwise -----------------------------------------------------------------------------------
def ew_call(program, in_shapes, in_dtypes, out_shape, out_dtype, static_out_shape, name,
            in_index=None, out_desc=None, static_in_shapes=None, outputs=None):
    """Call descriptors for one generated elementwise kernel over (collapsed) shapes.

    ``outputs``: a multi-output program; ``out_shape`` is then one result's shape and the
    output buffer is ``(len(outputs), *out_shape)``."""
    out2, ins2, pattern = codegen.collapse(tuple(out_shape), [tuple(s) for s in in_shapes],
                                           static_out_shape, static_in_shapes)
    parallel = config.get().parallel and \
        codegen.static_elements(static_out_shape) >= codegen.PARALLEL_MIN_ELEMENTS
    r = len(out2)
    lead = () if outputs is None else (len(outputs),)
    idx = in_index or (lambda k, shape: In(k, shape))
    args = [idx(k, ins2[k]) for k in range(len(in_shapes))]
    args.append(out_desc(lead + out2) if out_desc else Out(lead + out2))
    # inputs that are the output buffer itself (an in-place epilogue): the kernel reads them as out
    alias = tuple(k for k in range(len(in_shapes))
                  if outputs is None and args[k] == args[-1] and not any(pattern[k]))
    disp = codegen.ew_kernel(program, in_dtypes, out_dtype, pattern, parallel, outputs, alias)
    sig = tuple(arr_t(d, r) for d in in_dtypes) + (arr_t(out_dtype, r + len(lead)),)
    fn = disp if parallel or outputs is not None else split_rows(disp, sig, out2, pattern)
    return (fn, args), (disp, sig)


# Below this many output elements an elementwise kernel runs whole on the calling thread. Measured
# on the 2-core dev box (float32 6-op chains, the split's time over one call's, best of 40
# interleaved rounds), the second core mostly idle:
#   elements      2^16  2^17  2^18  2^19  2^20  2^21  8M
#   arithmetic    6.8   3.7   1.9   1.07  0.86  0.75  0.57
#   with sigmoid  2.5   1.3   0.85  0.76  0.65  0.60  0.51
# (waking the worker costs 30-60 us). With another process holding the second core, every split
# waits ~100 us for it: 2^20 1.2-1.4x, 8M arithmetic 1.06x. So splits start at 2^20.
EW_SPLIT_MIN_ELEMENTS = 1 << 20


def split_rows(disp, sig: tuple, out_shape: tuple, pattern: tuple):
    """Single-output elementwise kernel ``disp(a0.., out)`` over collapsed ``out_shape``, cut along
    dimension 0 over ``config.threads`` threads (``threads.batch_split``) from
    ``EW_SPLIT_MIN_ELEMENTS`` elements on; ``disp`` itself below that or with one thread. Inputs
    broadcast along dimension 0 (``pattern[k][0]``) go whole to every chunk; the others, and an
    in-place input (the output itself), are cut like the output."""
    total = int(np.prod(out_shape))
    if config.get().threads < 2 or total < EW_SPLIT_MIN_ELEMENTS or out_shape[0] < 2:
        return disp
    n_in = len(pattern)
    split = (n_in,) + tuple(k for k in range(n_in) if not pattern[k][0])
    fn = threads.batch_split(threads.entry_point(disp, sig), total // out_shape[0], split=split,
                             min_work=EW_SPLIT_MIN_ELEMENTS)
    fn.serial = disp            # beside BLAS (lower._serial_beside_blas): exactly the one-call step
    return fn


def bind_elementwise(ctx: NodeCtx) -> Call:
    if ctx.op == "fused_elementwise":
        program = ctx.attrs["program"]
        label = "+".join(step[0] for step in program)
    else:
        program = codegen.single_op_program(ctx.op, ctx.n_in, ctx.attrs)
        label = ctx.op
    if ctx.out_dtype.kind not in "fiub" or any(np.dtype(d).kind not in "fiub" for d in ctx.in_dtypes):
        return None
    step, warm = ew_call(program, ctx.in_shapes, ctx.in_dtypes, ctx.out_shape, ctx.out_dtype,
                         ctx.static_out_shape, label, static_in_shapes=ctx.static_in_shapes)
    return Call(steps=[step], name=f"ew[{label}]", warm=[warm])


KERNELS["fused_elementwise"] = bind_elementwise
for _name, _od in list(OPS.items()):
    if _od.fusion == "elementwise" and _od.scalar not in (None, "<program>"):
        KERNELS[_name] = bind_elementwise


@kernel_for("fused_multi_output")
def bind_multi_output(ctx: NodeCtx) -> Call | None:
    """One loop nest computing every result of the program into ``out[j, ...]``."""
    program, outputs = ctx.attrs["program"], ctx.attrs["outputs"]
    if ctx.out_dtype.kind not in "fiub" or any(np.dtype(d).kind not in "fiub" for d in ctx.in_dtypes):
        return None
    label = "+".join(step[0] for step in program)
    step, warm = ew_call(program, ctx.in_shapes, ctx.in_dtypes, ctx.out_shape[1:], ctx.out_dtype,
                         ctx.static_out_shape[1:], label, static_in_shapes=ctx.static_in_shapes,
                         outputs=outputs)
    return Call(steps=[step], name=f"ew{len(outputs)}[{label}]", warm=[warm])


def _output_view(x, k):
    return x[k]


_output_view.view_only = True       # reads no values: the driver need not wait for its input's kernel


@kernel_for("fused_output")
def bind_fused_output(ctx: NodeCtx) -> Call:
    # a view of one result of a fused_multi_output buffer (no copy)
    return Call(steps=[(_output_view, [In(0), Const(int(ctx.attrs["index"]))])], name="view",
                mode="value", contiguous=False)


def _identity_value(x):
    return x


_identity_value.view_only = True


@kernel_for("identity", "stop_gradient")
def bind_identity(ctx: NodeCtx) -> Call:
    # the interpreter passes the very same array through (no copy)
    return Call(steps=[(_identity_value, [In(0)])], name="identity", mode="value", contiguous=False)
