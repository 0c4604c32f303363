"""Exceptions raised by graphc.

Every error names the op or layer, the shapes/dtypes involved and what to do.
They subclass the built-in exception a Python user would expect
(``ValueError`` for bad shapes/values, ``TypeError`` for bad dtypes), so
``except ValueError`` keeps working.
"""
from __future__ import annotations


class GraphcError(Exception):
    """Base class of every graphc error."""


class ShapeError(GraphcError, ValueError):
    """Incompatible shapes when building an op, or a fed value of the wrong shape."""


class DtypeError(GraphcError, TypeError):
    """Incompatible dtypes when building an op, or a fed value of the wrong dtype."""


class FeedError(GraphcError, ValueError):
    """A placeholder needed by a fetch was not fed, or a feed is unusable."""


class FetchError(GraphcError, ValueError):
    """A fetch is not a tensor of the session's graph."""


class UninitializedVariableError(GraphcError, RuntimeError):
    """A variable was read before ``global_variables_initializer()`` ran."""


class GraphError(GraphcError, ValueError):
    """The graph itself is malformed (cycle, dangling edge, spec mismatch)."""


class KernelFallbackError(GraphcError, RuntimeError):
    """A compiled kernel failed to bind or compile with ``strict_kernels`` set (``graphc.config``)."""


class KernelFallbackWarning(RuntimeWarning):
    """A compiled kernel failed to bind or compile, so its op runs the numpy reference (slower)."""
