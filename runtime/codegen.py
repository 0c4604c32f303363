"""Code generation for elementwise programs: one numba loop nest per (program, dtypes, rank, pattern).

A fused elementwise program (``graphc/ops/fused.py``) or a single elementwise
op becomes the body of a generated Python function::

    @njit(cache=True, nogil=True, error_model='numpy', parallel=True)
    def kernel(a0, a1, out):
        n0 = out.shape[0]
        n1 = out.shape[1]
        for i0 in prange(n0):
            for i1 in range(n1):
                x0 = a0[i0, i1]
                x1 = a1[0, i1]
                t0 = np.float32((x0 * x1))
                out[i0, i1] = t0

Each step's scalar template (``OpDef.scalar``) is filled in with the argument
names and scalar attrs, its numeric literals are typed as the step's dtype
(``np.float32(1.0)`` in float32 code, so loops stay float32 and vectorize) and
its result is cast to the step's dtype (so integer wrap-around and casts match
numpy). Kernels are specialised on dtypes, rank and broadcast pattern (which
input dimensions are broadcast), never on sizes: one compiled kernel serves
every batch size. Shapes are first *collapsed*: size-1 output dimensions are
dropped and neighbouring dimensions with the same broadcast pattern merged,
so a same-shape chain is a flat 1-D loop whatever its rank.

    >>> import numpy as np
    >>> collapse((4, 3, 5), [(4, 3, 5), (1, 1, 5)])
    ((12, 5), [(12, 5), (1, 5)], ((False, False), (True, False)))
"""
from __future__ import annotations

import ast
import hashlib

import numpy as np

from graphc.ir import TensorSpec
from graphc.ops.registry import get_op

from . import cache

PARALLEL_MIN_ELEMENTS = 1 << 17   # prange only pays above this (static estimate, None dims = 32)
_MEMO: dict = {}


# -- shapes -----------------------------------------------------------------------------------------
def collapse(out_shape: tuple, in_shapes: list, static_out: tuple | None = None,
             static_in: list | None = None) -> tuple:
    """Drop size-1 output dims and merge neighbours with equal broadcast pattern.

    Returns ``(out_shape, in_shapes, pattern)`` where ``pattern[k][d]`` says input
    ``k`` is broadcast along collapsed dimension ``d``. Rank is at least 1. With the
    static shapes (``None`` = unknown) a dimension that is 1 only at run time (a
    batch of 1) is kept, so the pattern, hence the kernel, is the same for every
    batch size.
    """
    r = len(out_shape)
    aligned = [(1,) * (r - len(s)) + tuple(s) for s in in_shapes]
    static_out = tuple(static_out) if static_out is not None else tuple(out_shape)
    if static_in is None:
        static_in = in_shapes
    s_aligned = [(1,) * (r - len(s)) + tuple(s) for s in static_in]
    dims = [d for d in range(r) if not (out_shape[d] == 1 and static_out[d] == 1)]

    def bit(k, d):
        if out_shape[d] != 1:
            return aligned[k][d] == 1
        return s_aligned[k][d] == 1 and static_out[d] != 1
    groups: list[list[int]] = []
    bits_prev = None
    for d in dims:
        bits = tuple(bit(k, d) for k in range(len(aligned)))
        if groups and bits == bits_prev:
            groups[-1].append(d)
        else:
            groups.append([d])
        bits_prev = bits
    if not groups:
        n = len(in_shapes)
        return (1,), [(1,)] * n, tuple((False,) for _ in range(n))
    out2 = tuple(int(np.prod([out_shape[d] for d in g])) for g in groups)
    ins2, pattern = [], []
    for k, a in enumerate(aligned):
        bits = tuple(bit(k, g[0]) for g in groups)
        ins2.append(tuple(1 if b else n for b, n in zip(bits, out2)))
        pattern.append(bits)
    return out2, ins2, tuple(pattern)


def static_elements(shape: tuple, none_as: int = 32) -> int:
    n = 1
    for d in shape:
        n *= none_as if d is None else d
    return n


# -- scalar expressions -------------------------------------------------------------------------------
_CAST = {"float32": "np.float32({})", "float64": "np.float64({})", "int32": "np.int32({})",
         "int64": "np.int64({})", "bool": "(({}) != 0)"}


class _Literals(ast.NodeTransformer):
    """Type numeric literals as float32 (in float32 code) and use numpy floor/ceil."""

    def __init__(self, f32: bool):
        self.f32 = f32

    def visit_Constant(self, node):
        if self.f32 and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return ast.Call(func=ast.Attribute(value=ast.Name(id="np", ctx=ast.Load()), attr="float32",
                                               ctx=ast.Load()), args=[node], keywords=[])
        return node

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id == "math" and node.attr in ("floor", "ceil"):
            return ast.Attribute(value=ast.Name(id="np", ctx=ast.Load()), attr=node.attr, ctx=ast.Load())
        return node


def scalar_expr(op: str, attrs: dict, args: list[str], in_dtypes: list, out_dtype) -> str:
    """The scalar expression of one elementwise op over variable names ``args``."""
    opdef = get_op(op)
    tmpl = opdef.scalar
    if tmpl is None or tmpl == "<program>":
        raise ValueError(f"op {op} has no scalar template")
    kw = {k: repr(v) for k, v in attrs.items() if isinstance(v, (bool, int, float, np.generic))}
    text = tmpl.format(*args, **kw)
    f32 = any(np.dtype(d) == np.float32 for d in in_dtypes) or np.dtype(out_dtype) == np.float32
    tree = ast.parse(text, mode="eval")
    tree = ast.fix_missing_locations(_Literals(f32).visit(tree))
    return ast.unparse(tree)


def cast_to(expr: str, dtype) -> str:
    return _CAST[np.dtype(dtype).name].format(expr)


def step_dtypes(program: tuple, in_dtypes: list) -> list:
    """dtype of every step of ``program`` (from the steps' shape rules)."""
    env = [TensorSpec((), np.dtype(d)) for d in in_dtypes]
    out = []
    for op, args, attrs in program:
        spec = get_op(op).infer([env[i] for i in args], dict(attrs))
        env.append(spec)
        out.append(spec.dtype)
    return out


def program_lines(program: tuple, in_names: list[str], in_dtypes: list, prefix: str = "t") -> tuple:
    """Lines computing every step (``t0 = ...``); returns (lines, result name, result dtype)."""
    names = list(in_names)
    dts = list(np.dtype(d) for d in in_dtypes)
    lines = []
    for k, (op, args, attrs) in enumerate(program):
        opdef = get_op(op)
        ad = dict(attrs)
        a_dt = [dts[i] for i in args]
        out_dt = opdef.infer([TensorSpec((), d) for d in a_dt], ad).dtype
        expr = scalar_expr(op, ad, [names[i] for i in args], a_dt, out_dt)
        nm = f"{prefix}{k}"
        lines.append(f"{nm} = {cast_to(expr, out_dt)}")
        names.append(nm)
        dts.append(out_dt)
    return lines, names[-1], dts[-1]


def single_op_program(op: str, n_inputs: int, attrs: dict) -> tuple:
    items = tuple(sorted((k, v) for k, v in attrs.items()))
    return ((op, tuple(range(n_inputs)), items),)


# -- kernel source --------------------------------------------------------------------------------
def ew_source(program: tuple, in_dtypes: list, out_dtype, pattern: tuple, parallel: bool) -> str:
    """Source of one elementwise kernel ``kernel(a0.., out)`` for collapsed rank ``len(pattern[0])``."""
    n = len(in_dtypes)
    rank = len(pattern[0]) if pattern else 1
    ivars = [f"i{d}" for d in range(rank)]
    par = ", parallel=True" if parallel else ""
    src = [f"@njit(cache=True, nogil=True, error_model='numpy'{par})",
           f"def kernel({', '.join([f'a{k}' for k in range(n)] + ['out'])}):"]
    for d in range(rank):
        src.append(f"    n{d} = out.shape[{d}]")
    hoisted, inner = [], []
    for k in range(n):
        bits = pattern[k]
        idx = ", ".join("0" if b else v for b, v in zip(bits, ivars))
        line = f"x{k} = a{k}[{idx}]"
        (hoisted if all(bits) else inner).append(line)
    body, res, res_dt = program_lines(program, [f"x{k}" for k in range(n)], in_dtypes)
    for ln in hoisted:
        src.append("    " + ln)
    ind = "    "
    for d in range(rank):
        rng = "prange" if (d == 0 and parallel) else "range"
        src.append(f"{ind}for i{d} in {rng}(n{d}):")
        ind += "    "
    for ln in inner + body:
        src.append(ind + ln)
    store = res if np.dtype(res_dt) == np.dtype(out_dtype) else cast_to(res, out_dtype)
    src.append(f"{ind}out[{', '.join(ivars)}] = {store}")
    return "\n".join(src) + "\n"


def ew_kernel(program: tuple, in_dtypes: list, out_dtype, pattern: tuple, parallel: bool):
    """The numba dispatcher for this elementwise kernel (generated, cached on disk, memoized)."""
    key = (program, tuple(np.dtype(d).name for d in in_dtypes), np.dtype(out_dtype).name, pattern,
           parallel, cache.cache_dir(), cache.GENERATION[0])
    try:
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _MEMO:
        return _MEMO[key]
    src = ew_source(program, in_dtypes, out_dtype, pattern, parallel)
    mod = cache.load_module(src, "ew")
    disp = mod.kernel
    if key is not None:
        _MEMO[key] = disp
    return disp


def program_digest(program: tuple) -> str:
    return hashlib.sha1(repr(program).encode()).hexdigest()[:8]
