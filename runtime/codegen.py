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

float32 ``exp``/``log``/``tanh``/``sigmoid`` (also ``math.exp``/``log``/``tanh`` inside other
float32 templates, e.g. approximate gelu) call the branch-free polynomial
approximations of ``FAST_MATH`` (Cephes ``expf``/``logf``, a rational ``tanh``; <= 5 ulp,
numpy's results for NaN, +-inf, overflow, underflow and subnormals) instead of
scalar libm calls, so the loop vectorizes (numba's ``math.exp`` is one ``expf``
call per element: pip's llvmlite lacks the SVML patch even with ``intel-cmplr-lib-rt``
installed). Kernels using them are compiled with ``fastmath={'contract'}`` (FMA
contraction only: never changes NaN/inf behaviour, and only ever reduces rounding
error) and, on AVX-512 CPUs, for 512-bit vectors (``_wide_vectors``).

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
import contextlib
import hashlib

import numpy as np

from graphc import config
from graphc.ir import TensorSpec
from graphc.ops.registry import get_op

from . import cache
from .emit import Source

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


class _FastCalls(ast.NodeTransformer):
    """``math.exp/log/tanh(...)`` -> the vectorizable float32 approximations (names into ``used``)."""

    def __init__(self, used: set):
        self.used = used

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "math" \
                and f"math.{f.attr}" in _FAST_CALLS:
            name = _FAST_CALLS[f"math.{f.attr}"]
            self.used.add(name)
            return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=node.args, keywords=[])
        return node


_FAST_CALLS = {"math.exp": "_vexp", "math.log": "_vlog", "math.tanh": "_vtanh"}


class _IntOps(ast.NodeTransformer):
    """In a step over integers only: ``a ** b`` -> ``_ipow(a, b)``, ``a // b`` -> ``_ifloordiv(a, b)``
    (names into ``used``)."""

    HELPER = {ast.Pow: "_ipow", ast.FloorDiv: "_ifloordiv"}

    def __init__(self, used: set):
        self.used = used

    def visit_BinOp(self, node):
        self.generic_visit(node)
        name = self.HELPER.get(type(node.op))
        if name is None:
            return node
        self.used.add(name)
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[node.left, node.right], keywords=[])


# Helpers a step's expression may call, put before the kernel when used, where numba's integer
# arithmetic is not numpy's:
# * ``_ipow``: numpy's integer power, by squaring with wrap-around (numba's int ** int goes through
#   the float pow for exponents above 2**16: 7 ** (2**31 - 1) gave 0 in int32, (-1) ** (2**63 - 1)
#   gave 1). Products wrap in int64; the step's cast to its dtype then wraps as a product in that
#   dtype would. numpy and TensorFlow reject negative exponents; here 1 ** -n is 1, (-1) ** -n is
#   +-1 and any other base gives 0 (the truncated reciprocal), without an error (docs/ops-contract.md,
#   "Special values").
# * ``_ifloordiv``: numba gives 0 for int64's min // -1, numpy the wrapped quotient, min itself.
#   Division by zero gives 0, as numpy (which warns).
SCALAR_HELPERS = {"_ipow": '''
@njit(error_model="numpy")
def _ipow(x, y):
    b = np.int64(x)
    e = np.int64(y)
    if e < 0:
        if b == 1:
            return np.int64(1)
        if b == -1:
            return np.int64(1) if e % 2 == 0 else np.int64(-1)
        return np.int64(0)
    r = np.int64(1)
    while e > 0:
        if e & 1:
            r *= b
        b *= b
        e >>= 1
    return r
''', "_ifloordiv": '''
@njit(error_model="numpy")
def _ifloordiv(x, y):
    if y == -1:
        return np.int64(0) - np.int64(x)      # wraps: -min is min
    return x // y
'''}


# Vectorizable float32 exp/log/tanh/sigmoid (Cephes expf/logf polynomials, Eigen's rational tanh;
# branches are selects, 2^n is built from exponent bits). Max error against the exact value over
# dense sweeps: exp 2.1 ulp, log 2.4 ulp, tanh 4.7 ulp (< 4e-7 relative); NaN, +-inf, overflow,
# underflow and subnormals as numpy.
FAST_MATH = '''
from numba import types as _nbt
from numba.extending import intrinsic as _intrinsic
from llvmlite import ir as _llir


@_intrinsic
def _f2i(typingctx, x):
    def cg(context, builder, sig, args):
        return builder.bitcast(args[0], _llir.IntType(32))
    return _nbt.int32(_nbt.float32), cg


@_intrinsic
def _i2f(typingctx, x):
    def cg(context, builder, sig, args):
        return builder.bitcast(args[0], _llir.FloatType())
    return _nbt.float32(_nbt.int32), cg


@_intrinsic
def _wide_vectors(typingctx):
    # the calling function's loops vectorize at the full 512 bits (llvmlite knows no string
    # attributes, hence set.add)
    def cg(context, builder, sig, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()
    return _nbt.none(), cg


_F = np.float32
_I = np.int32


@njit(error_model="numpy")
def _vexp(x):
    x = _F(x)
    xc = _F(0.0) if x != x else x
    xc = _F(89.0) if xc > _F(89.0) else xc          # exp(89) = inf in float32
    xc = _F(-104.0) if xc < _F(-104.0) else xc      # exp(-104) = 0 in float32
    n = np.floor(xc * _F(1.44269504088896341) + _F(0.5))
    r = xc - n * _F(0.693359375)
    r = r - n * _F(-2.12194440e-4)
    p = ((((_F(1.9875691500e-4) * r + _F(1.3981999507e-3)) * r + _F(8.3334519073e-3)) * r
          + _F(4.1665795894e-2)) * r + _F(1.6666665459e-1)) * r + _F(5.0000001201e-1)
    p = p * (r * r) + r + _F(1.0)
    ni = _I(n)
    h = ni >> _I(1)                                 # 2^n as 2^h * 2^(n-h): no exponent overflow,
    res = p * _i2f((h + _I(127)) << _I(23)) * _i2f((ni - h + _I(127)) << _I(23))  # subnormals round
    return res if x == x else x


@njit(error_model="numpy")
def _vlog(x):
    x = _F(x)
    sub = x < _F(1.17549435e-38)                    # subnormals: scale by 2^24 first
    bits = _f2i(x * _F(16777216.0) if sub else x)
    e = ((bits >> _I(23)) & _I(0xff)) - (_I(150) if sub else _I(126))
    m = _i2f((bits & _I(0x7fffff)) | _I(0x3f000000))   # mantissa in [0.5, 1)
    lo = m < _F(0.707106781186547524)
    ef = _F(e - _I(1)) if lo else _F(e)
    m = (m + m - _F(1.0)) if lo else (m - _F(1.0))
    z = m * m
    y = ((((((((_F(7.0376836292e-2) * m - _F(1.1514610310e-1)) * m + _F(1.1676998740e-1)) * m
             - _F(1.2420140846e-1)) * m + _F(1.4249322787e-1)) * m - _F(1.6668057665e-1)) * m
           + _F(2.0000714765e-1)) * m - _F(2.4999993993e-1)) * m + _F(3.3333331174e-1)) * m * z
    y = y + _F(-2.12194440e-4) * ef - _F(0.5) * z
    res = m + y + _F(0.693359375) * ef
    res = _F(-np.inf) if x == _F(0.0) else res
    res = _F(np.nan) if x < _F(0.0) else res
    return x if (x == _F(np.inf) or x != x) else res


@njit(error_model="numpy")
def _vtanh(x):
    x = _F(x)                                       # 13/6 rational (Eigen's ptanh_float) on the
    c = _F(7.90531110763549805)                     # clamped input
    xc = c if x > c else x
    xc = -c if xc < -c else xc
    z = xc * xc
    p = ((((((_F(-2.76076847742355e-16) * z + _F(2.00018790482477e-13)) * z
              + _F(-8.60467152213735e-11)) * z + _F(5.12229709037114e-08)) * z
            + _F(1.48572235717979e-05)) * z + _F(6.37261928875436e-04)) * z
         + _F(4.89352455891786e-03)) * xc
    q = ((_F(1.19825839466702e-06) * z + _F(1.18534705686654e-04)) * z
         + _F(2.26843463243900e-03)) * z + _F(4.89352518554385e-03)
    r = p / q
    r = (_F(1.0) if x > _F(0.0) else _F(-1.0)) if abs(x) >= c else r   # saturated: exactly +-1
    return x if abs(x) < _F(0.0004) else r          # tiny x (and -0.0): tanh(x) = x


@njit(error_model="numpy")
def _vsigmoid(x):
    x = _F(x)
    e = _vexp(-abs(x))
    r = _F(1.0) / (_F(1.0) + e)                     # one division for both signs
    return r if x >= _F(0.0) else e * r
'''


_EXP_DISPATCH = '''
from numba.extending import overload as _overload


def _exp(x):
    return math.exp(x)


@_overload(_exp)
def _exp_for(x):
    # float32: the vectorizable _vexp; other floats: libm
    if isinstance(x, _nbt.Float) and x.bitwidth == 32:
        return lambda x: _vexp(x)
    return lambda x: math.exp(x)
'''


def exp_prelude() -> str:
    """Source of ``_exp(x)`` for hand-written kernel modules (``KernelFamily(prelude=...)``): the
    vectorizable float32 exp above, or libm's with GRAPHC_FAST_MATH=0 and for other dtypes."""
    if config.get().fast_math:
        return FAST_MATH + _EXP_DISPATCH
    return "\n@njit(error_model='numpy')\ndef _exp(x):\n    return math.exp(x)\n"


def scalar_expr(op: str, attrs: dict, args: list[str], in_dtypes: list, out_dtype,
                fast: set | None = None, helpers: set | None = None) -> str:
    """The scalar expression of one elementwise op over variable names ``args``.

    With ``fast`` (a set collecting the helper names used), float32 transcendentals use the
    vectorizable approximations of ``FAST_MATH``. ``helpers`` collects the ``SCALAR_HELPERS``
    the expression calls (a step over integers computes ``**`` and ``//`` with them)."""
    opdef = get_op(op)
    tmpl = opdef.scalar
    if tmpl is None or tmpl == "<program>":
        raise ValueError(f"op {op} has no scalar template")
    f32 = any(np.dtype(d) == np.float32 for d in in_dtypes) or np.dtype(out_dtype) == np.float32
    use_fast = fast is not None and np.dtype(out_dtype) == np.float32 and \
        all(np.dtype(d) != np.float64 for d in in_dtypes)
    if use_fast and opdef.scalar_f32 is not None:      # a whole-op fast form (sigmoid: one exp)
        fast.update(("_vexp", opdef.scalar_f32.split("(")[0]))
        return opdef.scalar_f32.format(*args)
    kw = {k: repr(v) for k, v in attrs.items() if isinstance(v, (bool, int, float, np.generic))}
    text = tmpl.format(*args, **kw)
    tree = ast.parse(text, mode="eval")
    tree = _Literals(f32).visit(tree)
    if use_fast:
        tree = _FastCalls(fast).visit(tree)
    if all(np.dtype(d).kind in "iu" for d in in_dtypes) and np.dtype(out_dtype).kind in "iu":
        tree = _IntOps(helpers if helpers is not None else set()).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


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


def program_lines(program: tuple, in_names: list[str], in_dtypes: list, prefix: str = "t",
                  fast: set | None = None, names_out: list | None = None,
                  helpers: set | None = None) -> tuple:
    """Lines computing every step (``t0 = ...``); returns (lines, result name, result dtype).

    ``fast``, ``helpers``: see ``scalar_expr``; ``names_out`` receives the name of every env entry."""
    names = list(in_names)
    dts = list(np.dtype(d) for d in in_dtypes)
    lines = []
    for k, (op, args, attrs) in enumerate(program):
        opdef = get_op(op)
        ad = dict(attrs)
        a_dt = [dts[i] for i in args]
        out_dt = opdef.infer([TensorSpec((), d) for d in a_dt], ad).dtype
        expr = scalar_expr(op, ad, [names[i] for i in args], a_dt, out_dt, fast, helpers)
        nm = f"{prefix}{k}"
        lines.append(f"{nm} = {cast_to(expr, out_dt)}")
        names.append(nm)
        dts.append(out_dt)
    if names_out is not None:
        names_out.extend(zip(names, dts))
    return lines, names[-1], dts[-1]


def single_op_program(op: str, n_inputs: int, attrs: dict) -> tuple:
    items = tuple(sorted((k, v) for k, v in attrs.items()))
    return ((op, tuple(range(n_inputs)), items),)


# -- kernel source --------------------------------------------------------------------------------
def ew_source(program: tuple, in_dtypes: list, out_dtype, pattern: tuple, parallel: bool,
              outputs: tuple | None = None, alias: tuple = ()) -> str:
    """Source of one elementwise kernel ``kernel(a0.., out)`` for collapsed rank ``len(pattern[0])``.

    ``outputs`` (env indices): a multi-output kernel storing result ``j`` to ``out[j, ...]``.
    ``alias``: inputs that are ``out`` itself (an epilogue run in place), read through ``out``:
    LLVM vectorizes a loop only where it proves its arrays disjoint, and two names for one array
    fail its run-time overlap check, so the loop ran scalar (3x slower on a (3872, 64) bias + relu);
    one name, read and stored at the same index, needs no check."""
    n = len(in_dtypes)
    rank = len(pattern[0]) if pattern else 1
    ivars = [f"i{d}" for d in range(rank)]
    used: set | None = set() if config.get().fast_math else None
    names: list = []
    helpers: set = set()
    body, res, res_dt = program_lines(program, [f"x{k}" for k in range(n)], in_dtypes,
                                      fast=used, names_out=names, helpers=helpers)
    flags = ", parallel=True" if parallel else ""
    if used:
        flags += ", fastmath={'contract'}"
    src = Source()
    src.extend([FAST_MATH if used else ""] + [SCALAR_HELPERS[h] for h in sorted(helpers)] +
               [f"@njit(cache=True, nogil=True, error_model='numpy'{flags})"])
    hoisted, inner = [], []         # loads of fully broadcast inputs go before the loops
    for k in range(n):
        bits = pattern[k]
        idx = ", ".join("0" if b else v for b, v in zip(bits, ivars))
        line = f"x{k} = {'out' if k in alias else f'a{k}'}[{idx}]"
        (hoisted if all(bits) else inner).append(line)
    stores = [(", ".join(ivars), res, res_dt)] if outputs is None else \
        [(", ".join([str(j)] + ivars),) + tuple(names[e]) for j, e in enumerate(outputs)]
    with contextlib.ExitStack() as loops:
        loops.enter_context(src.block(f"def kernel({', '.join([f'a{k}' for k in range(n)] + ['out'])}):"))
        off = 1 if outputs is not None else 0
        # LLVM vectorizes at 256 bits on AVX-512 Intel cores (their prefer-256-bit tuning); the
        # polynomials are compute-bound: 512 bits took the 8M sigmoid chain from 7.0 to 5.1 ms
        from . import simd                      # (llvmlite: imported when a kernel is generated)
        if used and simd.VECTOR_BYTES == 64:
            src.add("_wide_vectors()")
        src.extend(f"n{d} = out.shape[{d + off}]" for d in range(rank))
        src.extend(hoisted)
        for d in range(rank):
            loops.enter_context(src.block(f"for i{d} in {'prange' if d == 0 and parallel else 'range'}(n{d}):"))
        src.extend(inner + body)
        for idx, nm, dt in stores:
            src.add(f"out[{idx}] = {nm if np.dtype(dt) == np.dtype(out_dtype) else cast_to(nm, out_dtype)}")
    return src.text()


def ew_kernel(program: tuple, in_dtypes: list, out_dtype, pattern: tuple, parallel: bool,
              outputs: tuple | None = None, alias: tuple = ()):
    """The numba dispatcher for this elementwise kernel (generated, cached on disk, memoized)."""
    key = (program, tuple(np.dtype(d).name for d in in_dtypes), np.dtype(out_dtype).name, pattern,
           parallel, outputs, alias, config.get().fast_math, cache.cache_dir(), cache.GENERATION[0])
    try:
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _MEMO:
        return _MEMO[key]
    src = ew_source(program, in_dtypes, out_dtype, pattern, parallel, outputs, alias)
    mod = cache.load_module(src, "ew")
    disp = mod.kernel
    if key is not None:
        _MEMO[key] = disp
    return disp


def program_digest(program: tuple) -> str:
    return hashlib.sha1(repr(program).encode()).hexdigest()[:8]
