"""The ``gc.math`` namespace (``tf.math``): elementwise math, comparisons and reductions, the same
functions as at the top level of ``graphc``.

    >>> import graphc as gc
    >>> x = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> gc.Session().run(gc.math.reduce_variance(x, axis=1)).tolist()
    [0.25, 0.25]
"""
from __future__ import annotations

from .ops.elementwise import (abs, add, ceil, cos, divide, equal, erf, exp, expm1, floor, floordiv,  # noqa: A004
                              greater, greater_equal, less, less_equal, log, log1p, logical_and,
                              logical_not, logical_or, maximum, minimum, mod, multiply, negative,
                              not_equal, pow, reciprocal, round, rsqrt, sigmoid, sign, sin, softplus,
                              sqrt, square, squared_difference, subtract, tanh, truediv)
from .ops.reduction import (argmax, argmin, count_nonzero, cumsum, reduce_all, reduce_any,
                            reduce_logsumexp, reduce_max, reduce_mean, reduce_min, reduce_prod,
                            reduce_std, reduce_sum, reduce_variance)

__all__ = [
    "abs", "add", "ceil", "cos", "divide", "equal", "erf", "exp", "expm1", "floor", "floordiv",
    "greater", "greater_equal", "less", "less_equal", "log", "log1p", "logical_and", "logical_not",
    "logical_or", "maximum", "minimum", "mod", "multiply", "negative", "not_equal", "pow",
    "reciprocal", "round", "rsqrt", "sigmoid", "sign", "sin", "softplus", "sqrt", "square",
    "squared_difference", "subtract", "tanh", "truediv", "argmax", "argmin", "count_nonzero",
    "cumsum", "reduce_all", "reduce_any", "reduce_logsumexp", "reduce_max", "reduce_mean",
    "reduce_min", "reduce_prod", "reduce_std", "reduce_sum", "reduce_variance",
]
