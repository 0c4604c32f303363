"""TF-1 variable sharing: ``get_variable``, ``variable_scope`` and ``AUTO_REUSE``.

``get_variable(name)`` creates the variable ``"<scope>/<name>"`` named after the
enclosing variable scopes (not the name scopes), or, when the scope reuses
variables, returns the one created before. The variables made by
``get_variable`` are recorded in their graph (collection ``"get_variable"``):
each graph has its own, and ``reset_default_graph`` forgets them.

    >>> import graphc as gc
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     with gc.variable_scope("layer"):
    ...         w = gc.get_variable("w", shape=(2, 3))
    ...     with gc.variable_scope("layer", reuse=True):
    ...         w2 = gc.get_variable("w")
    >>> w.name, w2.node == w.node
    ('layer/w', True)

Errors follow TF-1: creating a name that exists without reuse, or reusing a
name that does not exist, raises ``ValueError``. ``reuse=AUTO_REUSE`` creates
the variable on first use and returns it afterwards. As in TF-1, ``reuse`` is
inherited: inside a reusing scope, ``reuse=False`` or ``None`` still reuses.
"""
from __future__ import annotations

import contextlib
import weakref

import numpy as np

from . import dtypes as _dt
from .ir import Graph, Tensor, get_default_graph

__all__ = ["AUTO_REUSE", "VariableScope", "variable_scope", "get_variable", "get_variable_scope"]

_COLLECTION = "get_variable"


class _ReuseMode:
    def __repr__(self):
        return "AUTO_REUSE"


AUTO_REUSE = _ReuseMode()
"""``reuse=AUTO_REUSE``: ``get_variable`` creates a variable if it does not exist, else returns it."""


class VariableScope:
    """A variable scope: its ``name`` (``"outer/inner"``), ``reuse`` (False, True or
    ``AUTO_REUSE``) and default ``initializer`` / ``dtype`` for ``get_variable``.

    ``variable_scope(scope_object)`` re-enters a scope captured with ``as``.
    """

    def __init__(self, name: str, reuse=False, initializer=None, dtype=None, name_scope: str = ""):
        self.name = name
        self.reuse = reuse
        self.initializer = initializer
        self.dtype = dtype
        self.original_name_scope = name_scope

    def reuse_variables(self) -> None:
        """Reuse variables in this scope from now on (``tf.get_variable_scope().reuse_variables()``)."""
        self.reuse = True

    def __repr__(self):
        return f"<VariableScope {self.name!r} reuse={self.reuse!r}>"


# Per graph: the stack of entered scopes (weak keys: dropping a graph drops its stack).
_STACKS: "weakref.WeakKeyDictionary[Graph, list[VariableScope]]" = weakref.WeakKeyDictionary()


def _stack(graph: Graph) -> list:
    st = _STACKS.get(graph)
    if st is None:
        st = _STACKS[graph] = [VariableScope("")]
    return st


def get_variable_scope() -> VariableScope:
    """The current variable scope of the default graph (the root scope, name ``""``, outside any)."""
    return _stack(get_default_graph())[-1]


@contextlib.contextmanager
def variable_scope(name_or_scope, default_name=None, reuse=None, initializer=None, dtype=None):
    """Prefix the names of ``get_variable``'s variables with ``name_or_scope/`` and open a name
    scope of the same name for other ops; ``reuse=True`` / ``AUTO_REUSE`` shares variables.

    ``name_or_scope`` may be a ``VariableScope`` (re-entered by its full name) or None with
    ``default_name`` (made unique: ``"dense"``, ``"dense_1"``...).

        >>> import graphc as gc
        >>> g = gc.Graph()
        >>> with g.as_default():
        ...     with gc.variable_scope("net", reuse=gc.AUTO_REUSE) as scope:
        ...         a = gc.get_variable("b", shape=(), initializer=gc.initializers.Zeros())
        ...         b = gc.get_variable("b")
        >>> scope.name, a.name, a.node == b.node
        ('net', 'net/b', True)
    """
    if reuse not in (None, True, False) and reuse is not AUTO_REUSE:
        raise ValueError(f"variable_scope: reuse must be None, True, False or AUTO_REUSE, got {reuse!r}")
    graph = get_default_graph()
    stack = _stack(graph)
    parent = stack[-1]
    if isinstance(name_or_scope, VariableScope):
        full = name_or_scope.name
        short = full.rsplit("/", 1)[-1]
        inherited = name_or_scope.reuse or parent.reuse
        initializer = initializer if initializer is not None else name_or_scope.initializer
        dtype = dtype if dtype is not None else name_or_scope.dtype
    else:
        if name_or_scope is None:
            if default_name is None:
                raise TypeError("variable_scope: give name_or_scope or default_name")
            short = _unique_scope_name(parent, default_name, graph)
        elif isinstance(name_or_scope, str) and name_or_scope:
            short = name_or_scope
        else:
            raise TypeError(f"variable_scope: name_or_scope must be a non-empty string or a "
                            f"VariableScope, got {name_or_scope!r}")
        full = f"{parent.name}/{short}" if parent.name else short
        inherited = parent.reuse
    effective = reuse or inherited       # TF-1: reuse is inherited and cannot be turned off
    scope = VariableScope(full, reuse=effective,
                          initializer=initializer if initializer is not None else parent.initializer,
                          dtype=dtype if dtype is not None else parent.dtype)
    with graph.name_scope(short) as ns:
        scope.original_name_scope = ns
        stack.append(scope)
        try:
            yield scope
        finally:
            stack.pop()


def _unique_scope_name(parent: VariableScope, base: str, graph: Graph) -> str:
    taken = {graph.name(n) for n in graph.collections.get(_COLLECTION, [])}
    prefix = f"{parent.name}/" if parent.name else ""
    name, i = base, 0
    while any(t.startswith(f"{prefix}{name}/") for t in taken):
        i += 1
        name = f"{base}_{i}"
    return name


def _find(graph: Graph, full: str):
    from .ops.state import _VariableView
    try:
        node = graph.by_name(full)
    except KeyError:
        return None
    return _VariableView(graph, node) if node in graph.collections.get(_COLLECTION, []) else None


def get_variable(name: str, shape=None, dtype=_dt.float32, initializer=None, trainable: bool = True):
    """``tf.get_variable``: the variable ``"<variable scope>/<name>"``, created or (when the scope
    reuses) looked up.

    ``initializer``: an initializer (``gc.initializers.*``, a name such as ``"zeros"``, or any
    callable ``(shape, dtype) -> array``), or a value (array, number or tensor; then ``shape``
    may be omitted). Default: the scope's initializer, else ``glorot_uniform`` for floats and
    zeros otherwise (as TF-1).

        >>> import graphc as gc
        >>> g = gc.Graph()
        >>> with g.as_default(), gc.variable_scope("s"):
        ...     v = gc.get_variable("v", initializer=[1.0, 2.0])
        ...     gc.get_variable("v")
        Traceback (most recent call last):
        ...
        ValueError: Variable s/v already exists, disallowed. Did you mean to set reuse=True or reuse=tf.AUTO_REUSE in VarScope?
    """
    from . import initializers as _init
    from .ops.state import Variable
    if not isinstance(name, str) or not name:
        raise TypeError(f"get_variable: name must be a non-empty string, got {name!r}")
    graph = get_default_graph()
    scope = _stack(graph)[-1]
    full = f"{scope.name}/{name}" if scope.name else name
    shape = None if shape is None else tuple(int(d) for d in ((shape,) if np.isscalar(shape) else shape))
    dtype = _dt.as_dtype(dtype if dtype is not None else (scope.dtype or _dt.float32))
    existing = _find(graph, full)
    if existing is not None:
        if scope.reuse is True or scope.reuse is AUTO_REUSE:
            if shape is not None and tuple(existing.shape) != shape:
                raise ValueError(f"Trying to share variable {full}, but specified shape {shape} and "
                                 f"found shape {tuple(existing.shape)}.")
            if dtype != existing.dtype:
                raise ValueError(f"Trying to share variable {full}, but specified dtype {dtype.name} "
                                 f"and found dtype {existing.dtype.name}.")
            return existing
        raise ValueError(f"Variable {full} already exists, disallowed. Did you mean to set reuse=True "
                         "or reuse=tf.AUTO_REUSE in VarScope?")
    if scope.reuse is True:
        raise ValueError(f"Variable {full} does not exist, or was not created with tf.get_variable(). "
                         "Did you mean to set reuse=tf.AUTO_REUSE in VarScope?")
    if full in getattr(graph, "_name_counts", {}):
        raise ValueError(f"get_variable: the name {full!r} is already used in this graph by a node "
                         "or name scope not created with get_variable; choose another name")
    initializer = initializer if initializer is not None else scope.initializer
    if initializer is None:
        initializer = "glorot_uniform" if dtype.kind == "f" else "zeros"
    if isinstance(initializer, str) or (callable(initializer) and not isinstance(initializer, Tensor)):
        if shape is None:
            raise ValueError(f"Shape of a new variable ({full}) must be fully defined, but instead "
                             "was None (give shape=..., or a value as initializer)")
        value = np.asarray(_init.get(initializer)(shape, dtype), dtype=dtype)
    elif isinstance(initializer, Tensor):
        value = initializer
    else:
        value = np.asarray(initializer, dtype=dtype)
    if shape is not None and tuple(value.shape) != shape:
        raise ValueError(f"get_variable {full}: the initial value has shape {tuple(value.shape)} but "
                         f"shape={shape} was given")
    saved, graph._scopes = graph._scopes, []          # variable-scope names ignore name scopes
    try:
        with graph.as_default():
            var = Variable(value, trainable=trainable, name=full, dtype=dtype if not isinstance(value, Tensor) else None)
    finally:
        graph._scopes = saved
    graph.add_to_collection(_COLLECTION, var.node)
    return var
