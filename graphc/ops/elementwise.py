"""Elementwise ops: unary math, binary arithmetic with numpy broadcasting, comparisons, where, cast.

Each record carries its scalar template (``scalar``), which the fusion code
generator composes into one loop body; the numpy reference is the oracle.

    >>> import graphc as gc
    >>> x = gc.constant([1.0, 4.0])
    >>> gc.Session().run(gc.sqrt(x) + 1.0).tolist()
    [2.0, 3.0]
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..errors import DtypeError
from ..ir import Tensor, TensorSpec
from .registry import OpDef, apply, broadcast_shapes, convert_to_tensor, operands, register, same_dtype

__all__ = [
    "add", "subtract", "multiply", "divide", "floordiv", "mod", "pow", "maximum", "minimum",
    "squared_difference", "negative", "abs", "exp", "expm1", "log", "log1p", "sqrt", "rsqrt",
    "square", "reciprocal", "sign", "floor", "ceil", "round", "sin", "cos", "tanh", "sigmoid",
    "relu", "relu6", "softplus", "softsign", "erf", "leaky_relu", "elu", "selu", "gelu", "swish",
    "silu", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
    "logical_or", "logical_not", "where", "cast", "stop_gradient", "identity", "clip_by_value",
    "sub", "mul", "div", "truediv", "neg",
]

_erf_np = np.vectorize(math.erf, otypes=[np.float64])
_SQRT1_2 = 0.7071067811865476
_SQRT2_PI = 0.7978845608028654  # sqrt(2/pi)
_SELU_A, _SELU_S = 1.6732632423543772, 1.0507009873554805


def _sum_to(dy: Tensor, shape: tuple) -> Tensor:
    from .reduction import sum_to_shape
    return sum_to_shape(dy, shape)


def _ew_infer_unary(kinds: str):
    """Shape rule of a unary elementwise op accepting dtype kinds ``kinds`` ('f', 'i', 'b')."""
    def infer(specs, a):
        (x,) = specs
        if x.dtype.kind not in kinds:
            want = {"f": "float", "i": "integer", "b": "bool"}
            raise DtypeError(f"dtype {x.dtype.name} is not supported; expected "
                             f"{' or '.join(want[k] for k in kinds)}" +
                             ("; use gc.cast(x, 'float32') first" if "f" in kinds else ""))
        return TensorSpec(x.shape, x.dtype)
    return infer


def _ew_infer_binary(kinds: str, out_dtype=None):
    def infer(specs, a):
        dt = same_dtype(specs)
        if dt.kind not in kinds:
            want = " or ".join({"f": "float", "i": "integer", "b": "bool"}[k] for k in kinds)
            raise DtypeError(f"dtype {dt.name} is not supported by this op (it takes {want} "
                             f"tensors); convert the inputs with gc.cast(x, ...)" +
                             (" or use gc.floordiv for integer division" if "f" == kinds else ""))
        return TensorSpec(broadcast_shapes(specs[0].shape, specs[1].shape),
                          out_dtype if out_dtype is not None else dt)
    return infer


def _ufunc_of(fn, ref):
    """Mark ``ref`` as ``fn``'s numpy ufunc form (``ref.ufunc``, ``ref.consts``: the reference is
    ``ufunc(*inputs, *consts)`` cast to its dtype) when ``fn`` is one; the baseline tier
    (``runtime/baseline.py``) then calls the ufunc with ``out=`` a buffer instead."""
    uf = fn if isinstance(fn, np.ufunc) else getattr(fn, "ufunc", None)
    if uf is not None:
        ref.ufunc, ref.consts = uf, tuple(getattr(fn, "consts", ()))
    return ref


def _cast_ref(fn):
    """Wrap a numpy reference so the result keeps the input dtype."""
    def ref(v, a):
        return np.asarray(fn(*v)).astype(v[0].dtype, copy=False)
    return _ufunc_of(fn, ref)


def _out_ref(fn, out_dtype):
    """Wrap a numpy reference so the result has dtype ``out_dtype`` (comparisons: bool)."""
    def ref(v, a):
        return np.asarray(fn(*v)).astype(out_dtype, copy=False)
    return _ufunc_of(fn, ref)


def _unary(name, ref, scalar, grad, kinds="f", doc="", scalar_f32=None):
    register(OpDef(name, fusion="elementwise", infer=_ew_infer_unary(kinds), reference=_cast_ref(ref),
                   scalar=scalar, grad=grad, differentiable=grad is not None and "f" in kinds, doc=doc,
                   scalar_f32=scalar_f32))


def _binary(name, ref, scalar, grad, kinds="fi", out_dtype=None, doc="", commutative=False):
    differentiable = grad is not None and "f" in kinds and out_dtype is None
    register(OpDef(name, fusion="elementwise", infer=_ew_infer_binary(kinds, out_dtype),
                   reference=_out_ref(ref, out_dtype) if out_dtype is not None else _cast_ref(ref),
                   scalar=scalar, grad=grad, differentiable=differentiable, doc=doc,
                   commutative=commutative))


# -- records: unary ------------------------------------------------------------------------------
# Gradient rules take (inputs, output, dy, attrs) and return one entry per input.
_unary("neg", np.negative, "(-{0})", lambda x, y, dy, a: [negative(dy)], kinds="fi")
_unary("abs", np.abs, "abs({0})", lambda x, y, dy, a: [dy * sign(x[0])], kinds="fi")
_unary("exp", np.exp, "math.exp({0})", lambda x, y, dy, a: [dy * y])
_unary("expm1", np.expm1, "math.expm1({0})", lambda x, y, dy, a: [dy * (y + 1.0)])
_unary("log", np.log, "math.log({0})", lambda x, y, dy, a: [dy / x[0]])
_unary("log1p", np.log1p, "math.log1p({0})", lambda x, y, dy, a: [dy / (x[0] + 1.0)])
_unary("sqrt", np.sqrt, "math.sqrt({0})", lambda x, y, dy, a: [dy * 0.5 / y])
_unary("rsqrt", lambda x: 1.0 / np.sqrt(x), "(1.0 / math.sqrt({0}))",
       lambda x, y, dy, a: [dy * -0.5 * y / x[0]])
_unary("square", np.square, "({0} * {0})", lambda x, y, dy, a: [dy * 2.0 * x[0]], kinds="fi")
_unary("reciprocal", np.reciprocal, "(1.0 / {0})", lambda x, y, dy, a: [-dy * y * y])
# piecewise-constant ops: no gradient (None), as in TensorFlow
# sign(NaN) is NaN (numpy, TensorFlow): the comparisons alone would give 0
_unary("sign", np.sign, "({0} if {0} != {0} else ({0} > 0) - ({0} < 0))", None, kinds="fi")
_unary("floor", np.floor, "math.floor({0})", None)
_unary("ceil", np.ceil, "math.ceil({0})", None)
_unary("round", np.round, "np.round({0})", None)
_unary("sin", np.sin, "math.sin({0})", lambda x, y, dy, a: [dy * cos(x[0])])
_unary("cos", np.cos, "math.cos({0})", lambda x, y, dy, a: [-dy * sin(x[0])])
_unary("tanh", np.tanh, "math.tanh({0})", lambda x, y, dy, a: [dy * (1.0 - y * y)])
# stable sigmoid: exp of a non-positive number only
_unary("sigmoid", lambda x: np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))),
                                     np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x)))),
       "(1.0 / (1.0 + math.exp(-{0})) if {0} >= 0 else math.exp({0}) / (1.0 + math.exp({0})))",
       lambda x, y, dy, a: [dy * y * (1.0 - y)], scalar_f32="_vsigmoid({0})")
# relu's gradient reads its output (y > 0 exactly when x > 0, NaN included), as TF's ReluGrad
# does: the pre-activation then has one use and fuses into a conv/matmul epilogue with the relu
# relu(-0.0) is +0.0, relu(NaN) NaN: numpy's maximum(x, 0) (a tie returns the second operand)
def _relu_np(x):
    return np.maximum(x, 0)


_relu_np.ufunc, _relu_np.consts = np.maximum, (0,)
_unary("relu", _relu_np, "({0} if {0} > 0 or {0} != {0} else 0)",
       lambda x, y, dy, a: [where(greater(y, 0), dy, 0)], kinds="fi")
_unary("relu6", lambda x: np.clip(x, 0, 6), "min(max({0}, 0), 6)",
       lambda x, y, dy, a: [where(logical_and(greater(x[0], 0), less(x[0], 6)), dy, 0)])
_unary("softplus", lambda x: np.logaddexp(0, x),
       "(max({0}, 0.0) + math.log1p(math.exp(-abs({0}))))",
       lambda x, y, dy, a: [dy * sigmoid(x[0])])
_unary("softsign", lambda x: x / (1 + np.abs(x)), "({0} / (1.0 + abs({0})))",
       lambda x, y, dy, a: [dy / square(1.0 + abs(x[0]))])
_unary("erf", lambda x: _erf_np(x).astype(x.dtype), "math.erf({0})",
       lambda x, y, dy, a: [dy * (2.0 / math.sqrt(math.pi)) * exp(-square(x[0]))])
_unary("logical_not", np.logical_not, "(not {0})", None, kinds="b")
_unary("stop_gradient", lambda x: x, "{0}", None, kinds="fib")
_unary("identity", lambda x: x, "{0}", lambda x, y, dy, a: [dy], kinds="fib")


def _param_unary(name, ref, scalar, grad, doc=""):
    """A unary elementwise op with scalar attributes (``alpha``...), substituted as ``{alpha}``."""
    register(OpDef(name, fusion="elementwise", infer=_ew_infer_unary("f"),
                   reference=lambda v, a: np.asarray(ref(v[0], a)).astype(v[0].dtype, copy=False),
                   scalar=scalar, grad=grad, doc=doc))


_param_unary("leaky_relu", lambda x, a: np.where(x > 0, x, x * a["alpha"]),
             "({0} if {0} > 0 else {0} * {alpha})",
             lambda x, y, dy, a: [where(greater(x[0], 0), dy, dy * a["alpha"])])
# expm1 of the non-positive part only (no overflow warnings); np.where rather than np.minimum(x, 0),
# which turns -0.0 into +0.0: elu(-0.0) is alpha * expm1(-0.0) = -0.0, as the kernel and TF give
_param_unary("elu", lambda x, a: np.where(x > 0, x, a["alpha"] * np.expm1(np.where(x > 0, 0, x))),
             "({0} if {0} > 0 else {alpha} * math.expm1({0}))",
             lambda x, y, dy, a: [where(greater(x[0], 0), dy, dy * (y + a["alpha"]))])
_param_unary("selu", lambda x, a: _SELU_S * np.where(x > 0, x, _SELU_A * np.expm1(np.where(x > 0, 0, x))),
             f"({_SELU_S!r} * ({{0}} if {{0}} > 0 else {_SELU_A!r} * math.expm1({{0}})))",
             lambda x, y, dy, a: [where(greater(x[0], 0), dy * _SELU_S, dy * (y + _SELU_S * _SELU_A))])


def _gelu_ref(x, a):
    if a["approximate"]:
        return 0.5 * x * (1.0 + np.tanh(_SQRT2_PI * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf_np(x * _SQRT1_2).astype(x.dtype))


def _gelu_grad(x, y, dy, a):
    x = x[0]
    if a["approximate"]:
        inner = _SQRT2_PI * (x + 0.044715 * x * x * x)
        t = tanh(inner)
        d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT2_PI * (1.0 + 3 * 0.044715 * x * x)
        return [dy * d]
    cdf = 0.5 * (1.0 + erf(x * _SQRT1_2))
    pdf = exp(-0.5 * square(x)) * (1.0 / math.sqrt(2 * math.pi))
    return [dy * (cdf + x * pdf)]


_param_unary("gelu", _gelu_ref,
             "(0.5 * {0} * (1.0 + (math.tanh(0.7978845608028654 * ({0} + 0.044715 * {0} * {0} * {0})) "
             "if {approximate} else math.erf({0} * 0.7071067811865476))))",
             _gelu_grad)


# -- records: binary -----------------------------------------------------------------------------
def _gx(x, dy):
    return _sum_to(dy, x.shape)


_binary("add", np.add, "({0} + {1})", lambda x, y, dy, a: [_gx(x[0], dy), _gx(x[1], dy)], commutative=True)
_binary("sub", np.subtract, "({0} - {1})", lambda x, y, dy, a: [_gx(x[0], dy), _gx(x[1], -dy)])
_binary("mul", np.multiply, "({0} * {1})",
        lambda x, y, dy, a: [_gx(x[0], dy * x[1]), _gx(x[1], dy * x[0])], commutative=True)
_binary("div", np.divide, "({0} / {1})", kinds="f",
        grad=
        lambda x, y, dy, a: [_gx(x[0], dy / x[1]), _gx(x[1], -dy * y / x[1])])
_binary("floordiv", np.floor_divide, "({0} // {1})", None)
_binary("mod", np.mod, "({0} % {1})",
        lambda x, y, dy, a: [_gx(x[0], dy), _gx(x[1], -dy * floordiv(x[0], x[1]))])
_binary("pow", np.power, "({0} ** {1})",
        lambda x, y, dy, a: [_gx(x[0], dy * x[1] * pow(x[0], x[1] - 1.0)),
                             _gx(x[1], dy * y * log(where(greater(x[0], 0), x[0], 1)))])
# numpy's maximum/minimum propagate a NaN from either side (Python's max(1, nan) is 1) and, on
# ties (+0.0 and -0.0), return the second operand, as numpy's loops do
_binary("maximum", np.maximum, "({0} if {0} > {1} or {0} != {0} else {1})",
        lambda x, y, dy, a: [_gx(x[0], where(greater_equal(x[0], x[1]), dy, 0)),
                             _gx(x[1], where(less(x[0], x[1]), dy, 0))], commutative=True)
_binary("minimum", np.minimum, "({0} if {0} < {1} or {0} != {0} else {1})",
        lambda x, y, dy, a: [_gx(x[0], where(less_equal(x[0], x[1]), dy, 0)),
                             _gx(x[1], where(greater(x[0], x[1]), dy, 0))], commutative=True)
_binary("squared_difference", lambda p, q: np.square(p - q), "(({0} - {1}) * ({0} - {1}))",
        lambda x, y, dy, a: [_gx(x[0], 2.0 * dy * (x[0] - x[1])), _gx(x[1], -2.0 * dy * (x[0] - x[1]))],
        commutative=True)
for _n, _f, _s in [("equal", np.equal, "=="), ("not_equal", np.not_equal, "!="),
                   ("less", np.less, "<"), ("less_equal", np.less_equal, "<="),
                   ("greater", np.greater, ">"), ("greater_equal", np.greater_equal, ">=")]:
    _eq = _s in ("==", "!=")            # equality tests take bools too and commute
    _binary(_n, _f, "({0} %s {1})" % _s, None, kinds="fib" if _eq else "fi", out_dtype=_dt.bool_,
            commutative=_eq)
_binary("logical_and", np.logical_and, "({0} and {1})", None, kinds="b", commutative=True)
_binary("logical_or", np.logical_or, "({0} or {1})", None, kinds="b", commutative=True)


def _where_infer(specs, a):
    c, x, y = specs
    if c.dtype != _dt.bool_:
        raise DtypeError(f"condition must be bool, got {c.dtype.name}; compare first (x > 0)")
    dt = same_dtype([x, y], "the two branches")
    return TensorSpec(broadcast_shapes(broadcast_shapes(c.shape, x.shape), y.shape), dt)


register(OpDef(
    "where", fusion="elementwise", infer=_where_infer,
    reference=lambda v, a: np.where(v[0], v[1], v[2]).astype(v[1].dtype, copy=False),
    scalar="({1} if {0} else {2})",
    grad=lambda x, y, dy, a: [None, _gx(x[1], where(x[0], dy, 0)),
                              _gx(x[2], where(x[0], 0, dy))]))


def _cast_infer(specs, a):
    return TensorSpec(specs[0].shape, a["dtype"])


register(OpDef(
    "cast", fusion="elementwise", infer=_cast_infer,
    reference=lambda v, a: v[0].astype(a["dtype"]),
    scalar="{0}",  # the code generator casts on store to the output dtype
    grad=lambda x, y, dy, a: [cast(dy, x[0].dtype) if x[0].dtype.kind == "f" else None]))


# -- public functions ----------------------------------------------------------------------------
def _u(op):
    def f(x, name=None):
        return apply(op, [convert_to_tensor(x)], name=name)
    f.__name__ = op
    return f


def _b(op):
    def f(x, y, name=None):
        a, b = operands(x, y)
        return apply(op, [a, b], name=name)
    f.__name__ = op
    return f


negative = neg = _u("neg")
abs = _u("abs")  # noqa: A001 - TensorFlow's name
exp, expm1, log, log1p = _u("exp"), _u("expm1"), _u("log"), _u("log1p")
sqrt, rsqrt, square, reciprocal = _u("sqrt"), _u("rsqrt"), _u("square"), _u("reciprocal")
sign, floor, ceil, round = _u("sign"), _u("floor"), _u("ceil"), _u("round")  # noqa: A001
sin, cos, tanh, sigmoid = _u("sin"), _u("cos"), _u("tanh"), _u("sigmoid")
relu, relu6, softplus, softsign, erf = _u("relu"), _u("relu6"), _u("softplus"), _u("softsign"), _u("erf")
logical_not, stop_gradient, identity = _u("logical_not"), _u("stop_gradient"), _u("identity")

add = _b("add")
subtract = sub = _b("sub")
multiply = mul = _b("mul")
divide = div = truediv = _b("div")
floordiv, mod, pow, maximum, minimum = _b("floordiv"), _b("mod"), _b("pow"), _b("maximum"), _b("minimum")  # noqa: A001
squared_difference = _b("squared_difference")
equal, not_equal, less, less_equal = _b("equal"), _b("not_equal"), _b("less"), _b("less_equal")
greater, greater_equal = _b("greater"), _b("greater_equal")
logical_and, logical_or = _b("logical_and"), _b("logical_or")


def leaky_relu(features, alpha: float = 0.2, name=None):
    """``x if x > 0 else alpha * x`` (TensorFlow's default alpha is 0.2)."""
    return apply("leaky_relu", [convert_to_tensor(features)], {"alpha": float(alpha)}, name=name)


def elu(features, alpha: float = 1.0, name=None):
    """``x if x > 0 else alpha * (exp(x) - 1)``."""
    return apply("elu", [convert_to_tensor(features)], {"alpha": float(alpha)}, name=name)


def selu(features, name=None):
    """Scaled ELU with the self-normalizing constants."""
    return apply("selu", [convert_to_tensor(features)], name=name)


def gelu(features, approximate: bool = False, name=None):
    """Gaussian error linear unit; exact (erf) by default, tanh approximation if asked.

        >>> import graphc as gc
        >>> print(f"{gc.Session().run(gc.gelu(gc.constant(1.0))):.4f}")
        0.8413
    """
    return apply("gelu", [convert_to_tensor(features)], {"approximate": bool(approximate)}, name=name)


def swish(features, name=None):
    """``x * sigmoid(x)`` (also ``silu``)."""
    x = convert_to_tensor(features)
    return multiply(x, sigmoid(x), name=name)


silu = swish


def where(condition, x=None, y=None, name=None):
    """Pick ``x`` where ``condition`` is true, else ``y`` (all three broadcast together)."""
    if x is None or y is None:
        raise ValueError("where: graphc needs both x and y (the index form where(cond) is not supported)")
    c = convert_to_tensor(condition)
    a, b = operands(x, y)
    return apply("where", [c, a, b], name=name)


def cast(x, dtype, name=None):
    """Convert ``x`` to ``dtype`` (float to int truncates toward zero, like TensorFlow)."""
    x = convert_to_tensor(x)
    dt = _dt.as_dtype(dtype)
    if x.dtype == dt:
        return x
    return apply("cast", [x], {"dtype": dt}, name=name)


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    """``minimum(maximum(t, lo), hi)``."""
    t = convert_to_tensor(t)
    return minimum(maximum(t, clip_value_min), clip_value_max, name=name)
