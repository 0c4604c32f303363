"""The baseline tier's calls: fused elementwise programs run as numpy ufuncs into preallocated buffers.

Tiered execution (``executor.Executable._bind``) first runs a plan lowered with
``reference_only=True`` while a child process compiles its kernels. Run op by op through
``fused.run_program``, an optimizer's multi-output update program allocated a fresh array per
step, cast each result with ``astype`` and stacked the results with ``np.stack``: Adam's update
of the MNIST MLP's (784, 64) weight took 0.84 ms that way, 0.09 ms here. ``baseline_call`` binds
``fused_elementwise``, ``fused_multi_output``, ``fused_contraction`` (its epilogue),
``fused_reduction`` (its prologue) and single elementwise ops to one generated function per
program (``emit.Source``): each step whose reference is a plain numpy ufunc (the op record's
``ufunc`` form, see ``elementwise._cast_ref``) calls that ufunc with ``out=`` a scratch buffer
of the plan (reused once the value is dead, in place when shapes match) or the node's output
buffer (a multi-output program writes each result straight into its row); ``cast``,
``broadcast_like`` and ``where`` are copies (``np.copyto``); every other step calls its op's
reference, as ``run_program`` does. The values are the references' bit for bit: a ufunc
computes in the loop its input dtypes select, and ``out=`` is only used where that loop's
result dtype is the reference's result dtype, so no cast happens at all.

    >>> import numpy as np
    >>> prog = (("mul", (0, 0), ()), ("add", (2, 1), ()))       # x*x + y
    >>> fn, scratch = program_function(prog, [((3,), np.float32), ((), np.float32)])
    >>> out = np.empty(3, np.float32)
    >>> fn(np.arange(3, dtype=np.float32), np.ones((), np.float32), out, *[np.empty(s, d) for d, s in scratch])
    >>> out.tolist()
    [1.0, 2.0, 5.0]
"""
from __future__ import annotations

import numpy as np

from graphc.ir import TensorSpec
from graphc.ops.fused import infer_program_env
from graphc.ops.registry import OPS, get_op

from .emit import Source
from .kernels import Call, In, NodeCtx, Out, Scratch, reference_call

_FUNCTIONS: dict = {}       # (program, input specs, outputs, final) -> (function, scratch)
_MAX_FUNCTIONS = 512


def _ufunc_form(op: str, attrs: tuple, arg_dtypes: list, result_dtype):
    """``(ufunc, constants)`` when step ``op`` is exactly ``ufunc(*args, *constants)`` computed in
    ``result_dtype`` (no cast after the loop), else None."""
    ref = get_op(op).reference
    uf = getattr(ref, "ufunc", None)
    if uf is None or attrs:
        return None
    consts = tuple(getattr(ref, "consts", ()))
    try:
        with np.errstate(all="ignore"):
            natural = uf(*[np.ones((), d) for d in arg_dtypes], *consts).dtype
    except TypeError:
        return None
    return (uf, consts) if natural == np.dtype(result_dtype) else None


def _copy_form(op: str, attrs: dict, arg_dtypes: list, result_dtype) -> str | None:
    """The numpy copy that computes ``op`` exactly: ``cast`` is ``astype`` (unsafe casting),
    ``broadcast_like`` a broadcast copy of input 0, ``where`` input 2 then input 1 where input 0."""
    if op == "cast" and np.dtype(attrs["dtype"]) == np.dtype(result_dtype):
        return "cast"
    if op == "broadcast_like" and np.dtype(arg_dtypes[0]) == np.dtype(result_dtype):
        return "broadcast_like"
    if op == "where" and np.dtype(arg_dtypes[1]) == np.dtype(arg_dtypes[2]) == np.dtype(result_dtype):
        return "where"
    return None


def program_function(program: tuple, in_specs: list, outputs: tuple | None = None,
                     final: str = "out"):
    """A function running ``program`` over inputs of ``in_specs`` (``(shape, dtype)`` pairs), and
    the ``(dtype, shape)`` of the scratch buffers it takes. It is called ``fn(*inputs, out,
    *scratch)`` and writes the result into ``out``; with ``outputs`` (env indices) result ``j``
    into ``out[j]``. ``final="return"``: the result is returned instead, and there is no ``out``
    argument (a reduction's operand). Memoized per program, specs and outputs."""
    key = (program, tuple((tuple(s), np.dtype(d).str) for s, d in in_specs), outputs, final)
    hit = _FUNCTIONS.get(key)
    if hit is None:
        if len(_FUNCTIONS) >= _MAX_FUNCTIONS:
            _FUNCTIONS.clear()
        hit = _FUNCTIONS[key] = _generate(program, in_specs, outputs, final)
    return hit


def _generate(program: tuple, in_specs: list, outputs, final: str):
    n = len(in_specs)
    env = infer_program_env(program, [TensorSpec(tuple(s), np.dtype(d)) for s, d in in_specs])
    last = n + len(program) - 1
    results = list(outputs) if outputs is not None else ([last] if final == "out" else [])
    dest_of = {}                                  # env index -> out expression it is stored in
    for j, e in enumerate(results):
        dest_of.setdefault(e, "out" if outputs is None else f"out[{j}]")
    # liveness: a buffer is free once every value that may view it is dead (a reference that
    # returns a view of its argument keeps the argument's buffer alive)
    last_use = {e: n + k for k, (_, args, _) in enumerate(program) for e in args}
    for e in results:
        last_use[e] = len(program) + n
    if final == "return":
        last_use[last] = len(program) + n
    src = Source({"np": np})
    names = [f"x{k}" for k in range(n)] + [f"t{k}" for k in range(len(program))]
    roots: dict = {}                              # env index -> scratch buffers its value may view
    scratch: list = []                            # (dtype, shape) per scratch buffer
    free: dict = {}                               # (shape, dtype) -> buffers not holding live values
    holders: dict = {}                            # buffer -> env indices whose values may view it
    lines = []

    def release(step: int, e: int) -> None:
        for b in roots.get(e, ()):
            if holders[b] and all(last_use.get(v, -1) <= step for v in holders[b]):
                free.setdefault((scratch[b][1], scratch[b][0]), []).append(b)
                holders[b] = set()                # free (released once)

    def take(e: int) -> str:
        if e in dest_of:
            return dest_of[e]
        spec = env[e]
        pool = free.get((tuple(spec.shape), np.dtype(spec.dtype)), [])
        if pool:
            b = pool.pop()
        else:
            b = len(scratch)
            scratch.append((np.dtype(spec.dtype), tuple(spec.shape)))
        holders[b] = {e}
        roots[e] = {b}
        return f"s{b}"

    for k, (op, args, attrs) in enumerate(program):
        e, step = n + k, n + k
        dts = [env[i].dtype for i in args]
        rdt = env[e].dtype
        form = _ufunc_form(op, attrs, dts, rdt)
        a = [names[i] for i in args]
        if form is not None:          # in place into a dead argument's buffer is safe elementwise
            for i in dict.fromkeys(args):
                release(step, i)
            dest = take(e)
            consts = "".join(f", {src.value(c)}" for c in form[1])
            lines.append(f"{names[e]} = {src.bind(form[0], 'U')}({', '.join(a)}{consts}, out={dest})")
        elif (copy := _copy_form(op, dict(attrs), dts, rdt)) is not None:
            dest = take(e)
            if copy == "cast":
                lines.append(f"np.copyto({dest}, {a[0]}, casting='unsafe')")
            elif copy == "broadcast_like":
                lines.append(f"np.copyto({dest}, {a[0]})")
            else:
                lines += [f"np.copyto({dest}, {a[2]})", f"np.copyto({dest}, {a[1]}, where={a[0]})"]
            lines.append(f"{names[e]} = {dest}")
            for i in dict.fromkeys(args):
                release(step, i)
        else:                         # the op's reference, as fused.run_program calls it
            ref = src.bind(get_op(op).reference, "R")
            lines.append(f"{names[e]} = np.asarray({ref}([{', '.join(a)}], {src.bind(dict(attrs))}))")
            roots[e] = set().union(*[roots.get(i, set()) for i in args])
            for b in roots[e]:
                holders[b].add(e)
            if e in dest_of:
                lines.append(f"{dest_of[e]}[...] = {names[e]}")
            for i in dict.fromkeys(args):
                release(step, i)
    for e, d in dest_of.items():                  # results that are inputs, or stored twice
        if e < n:
            lines.append(f"{d}[...] = {names[e]}")
    for j, e in enumerate(results):
        if outputs is not None and dest_of[e] != f"out[{j}]":
            lines.append(f"out[{j}][...] = {dest_of[e]}")
    params = names[:n] + ([] if final == "return" else ["out"]) + [f"s{b}" for b in range(len(scratch))]
    with src.block(f"def program({', '.join(params)}):"):
        src.extend(lines)
        if final == "return":
            src.add(f"return {names[last]}")
    fn = src.function("program")
    fn.takes_strided = True       # numpy code: any strides, no contiguous copies
    return fn, scratch


def _specs(ctx: NodeCtx, ks) -> list:
    return [(tuple(ctx.in_shapes[k]), ctx.in_dtypes[k]) for k in ks]


def _call(ctx: NodeCtx, fn, scratch: list, name: str) -> Call:
    descs = [In(k) for k in range(ctx.n_in)] + [Out()] + [Scratch(j) for j in range(len(scratch))]
    return Call(steps=[(fn, descs)], name=f"ref:np-{name}", scratch=list(scratch), contiguous=False)


NP_REDUCERS = {"reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min, "reduce_prod": np.prod,
               "reduce_any": np.any, "reduce_all": np.all, "reduce_mean": np.mean}


def numpy_reducer(op: str, axis: tuple, keepdims: bool, dtype=None):
    """``reduce_into(x, out)``: numpy's own reduction for ``op`` into ``out`` (pairwise float sums,
    SIMD; bit for bit the reference's where ``numpy_reduction_ok``), without the reference's
    warning filters (4-5 us a call: a quarter of the MNIST MLP's baseline step went to small
    reductions and softmax references). ``dtype``: the operand's, when known."""
    fn = NP_REDUCERS[op]
    axis = tuple(axis)
    if op == "reduce_mean" and dtype is not None and np.dtype(dtype) in (np.float32, np.float64):
        def reduce_into(x, out):    # np.mean's own two steps (numpy's _methods._mean) without its
            np.add.reduce(x, axis=axis, keepdims=keepdims, out=out)      # wrapper: 10 -> 3 us
            count = 1
            for a in axis:
                count *= x.shape[a]
            np.true_divide(out, np.intp(count), out=out, casting="unsafe")
    else:
        def reduce_into(x, out):
            fn(x, axis=axis, keepdims=keepdims, out=out)
    reduce_into.__name__ = f"{op}_into"
    reduce_into.takes_strided = True        # numpy code: any strides
    return reduce_into


def numpy_reduction_ok(op: str, dtype, in_shape, axis) -> bool:
    """Whether ``numpy_reducer(op, ...)`` computes the reference's value for these specs."""
    if op not in NP_REDUCERS:
        return False
    if op == "reduce_mean" and np.dtype(dtype).kind != "f":
        return False          # TensorFlow's truncating integer mean: the reference does it
    if op == "reduce_mean" and np.dtype(dtype) == np.float16:
        return False          # into a float16 out, np.mean divides the rounded sum in float16
    if op in ("reduce_max", "reduce_min") and any(in_shape[a] == 0 for a in axis):
        return False          # empty max/min: the reference's fill value
    return True


def _with_prologue(pre, fn, n_pre: int):
    """``fn(*inputs, out, *scratch)`` whose input 0 is ``pre(*inputs[:n_pre])`` (a contraction)."""
    def run(*args):
        return fn(pre(*args[:n_pre]), *args[n_pre:])
    run.takes_strided = True
    return run


def baseline_call(ctx: NodeCtx) -> Call:
    """The baseline tier's call for ``ctx``: a generated numpy program (module docstring) for the
    fused and elementwise ops, else the op's numpy reference (``kernels.reference_call``)."""
    if ctx.out_shape is None or any(s is None for s in ctx.in_shapes):
        return reference_call(ctx)
    try:
        call = _program_call(ctx)
    except Exception:       # noqa: BLE001 - a spec the generator does not cover: the reference
        call = None
    return call if call is not None else reference_call(ctx)


def _plain_reduction(op: str, attrs: dict, in_shape, in_dtype, out_dtype) -> bool:
    """Reduction ``op`` of an operand of ``in_shape`` is one numpy computes into the output buffer
    as the reference does (not empty: the reference's empty means and fills, without warnings)."""
    return numpy_reduction_ok(op, out_dtype, in_shape, attrs.get("axis", ())) \
        and 0 not in in_shape and np.dtype(in_dtype) == np.dtype(out_dtype)


def _program_call(ctx: NodeCtx) -> Call | None:
    op, attrs = ctx.op, ctx.attrs
    if op == "fused_elementwise":
        fn, scratch = program_function(attrs["program"], _specs(ctx, range(ctx.n_in)))
        return _call(ctx, fn, scratch, op)
    if op == "fused_multi_output":
        fn, scratch = program_function(attrs["program"], _specs(ctx, range(ctx.n_in)),
                                       tuple(attrs["outputs"]))
        return _call(ctx, fn, scratch, op)
    if op == "fused_contraction":
        nc, cop, c_attrs = attrs["n_c"], get_op(attrs["contraction"]), dict(attrs["c_attrs"])
        cspec = cop.infer([TensorSpec(tuple(s), d) for s, d in _specs(ctx, range(nc))], c_attrs)
        fn, scratch = program_function(attrs["program"], [(tuple(cspec.shape), cspec.dtype)] +
                                       _specs(ctx, range(nc, ctx.n_in)))
        cref = cop.reference

        def contraction(*vals):
            return np.asarray(cref(list(vals), c_attrs))
        return _call(ctx, _with_prologue(contraction, fn, nc), scratch, op)
    if op == "fused_reduction":
        specs = _specs(ctx, range(ctx.n_in))
        fn, scratch = program_function(attrs["program"], specs, final="return")
        red, r_attrs, n = attrs["reduce"], dict(attrs["r_attrs"]), ctx.n_in
        pre = infer_program_env(attrs["program"], [TensorSpec(s, np.dtype(d)) for s, d in specs])[-1]
        if _plain_reduction(red, r_attrs, pre.shape, pre.dtype, ctx.out_dtype):
            reduce_into = numpy_reducer(red, r_attrs["axis"], r_attrs["keepdims"], pre.dtype)

            def reduction(*args):
                reduce_into(fn(*args[:n], *args[n + 1:]), args[n])
            reduction.__name__ = f"fused_{reduce_into.__name__}"
        else:
            rref = get_op(red).reference

            def reduction(*args):
                args[n][...] = rref([fn(*args[:n], *args[n + 1:])], r_attrs)
        reduction.takes_strided = True
        return _call(ctx, reduction, scratch, op)
    if _plain_reduction(op, attrs, ctx.in_shapes[0], ctx.in_dtypes[0], ctx.out_dtype):
        reduce_into = numpy_reducer(op, attrs["axis"], attrs["keepdims"], ctx.in_dtypes[0])
        return Call(steps=[(reduce_into, [In(0), Out()])],
                    name=f"ref:np-{op}", contiguous=False)
    od = OPS.get(op)
    if od is not None and od.fusion == "elementwise" and od.scalar not in (None, "<program>"):
        items = tuple(sorted(attrs.items()))
        if _ufunc_form(op, items, ctx.in_dtypes, ctx.out_dtype) is None and \
                _copy_form(op, attrs, ctx.in_dtypes, ctx.out_dtype) is None:
            return None         # the reference as a value call: no copy into a buffer
        program = ((op, tuple(range(ctx.n_in)), items),)
        fn, scratch = program_function(program, _specs(ctx, range(ctx.n_in)))
        return _call(ctx, fn, scratch, op)
    return None
