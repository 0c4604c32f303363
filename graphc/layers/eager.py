"""Eager calls: ``layer(x)`` and ``model(x)`` on numpy arrays return numpy arrays (as in Keras 3).

The call is still compiled: the first call for an input signature (the arrays' shapes past the
batch axis, their dtypes, the other arguments) adds the layer's ops on placeholders to the graph
that holds its weights and makes one ``Session.make_callable`` program; later calls with that
signature only run the program. ``training`` defaults to ``False`` (dropout off, BatchNorm uses
its moving statistics). A layer that is not built yet is built from the arrays' shapes, in a graph
and session of its own that a model using the layer later shares.

    >>> import numpy as np
    >>> from graphc.layers import Dense
    >>> layer = Dense(2, kernel_initializer="ones")
    >>> layer(np.ones((3, 4), np.float32))
    array([[4., 4.],
           [4., 4.],
           [4., 4.]], dtype=float32)

Symbolic inputs (``Input``) and graph tensors (``gc.placeholder``) are unaffected: they still
record model nodes or add graph ops.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..errors import GraphcError
from ..ir import Tensor


def is_eager_call(inputs, leaves) -> bool:
    """True when no argument is a graph tensor and the inputs hold a numpy array."""
    from .base import flatten
    if any(isinstance(t, Tensor) for t in leaves):
        return False
    return any(isinstance(t, np.ndarray) for t in flatten(inputs))


def accepts_training(layer) -> bool:
    try:
        params = inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _leaf_key(v):
    if isinstance(v, np.ndarray):
        return ("array", v.shape[1:] if v.ndim else None, v.dtype.str)
    return (type(v).__name__, repr(v))


def eager_call(layer, inputs, args, kwargs):
    """Run ``layer`` (or a model) on the numpy arrays in ``inputs``/``args``/``kwargs``."""
    from .base import flatten, map_structure
    inputs, state = layer._eager_prepare(inputs)
    kwargs = dict(kwargs)
    if "training" not in kwargs and accepts_training(layer):
        kwargs["training"] = False
    nest = (inputs, tuple(args), kwargs)
    key = (id(state), repr(map_structure(_leaf_key, nest)))
    programs = layer.__dict__.setdefault("_eager_programs", {})
    prog = programs.get(key)
    if prog is None:
        prog = programs[key] = _build(layer, state, nest)
    fn, out = prog
    values = iter(fn(*[a for a in flatten(nest) if isinstance(a, np.ndarray)]))
    return map_structure(lambda t: np.asarray(next(values)) if isinstance(t, Tensor) else t, out)


def _build(layer, state, nest):
    """Placeholders for the arrays of ``nest``, the layer's graph call on them, and the callable."""
    from ..ops.state import placeholder
    from .base import Layer, flatten, map_structure
    g = state.graph
    phs = []

    def to_placeholder(v):
        if not isinstance(v, np.ndarray):
            return v
        shape = (None,) + v.shape[1:] if v.ndim else ()
        phs.append(placeholder(v.dtype, shape, name=f"input_{len(phs)}"))
        return phs[-1]
    with g.as_default(), g.name_scope(f"eager_{layer.name}"):
        inputs, args, kwargs = map_structure(to_placeholder, nest)
        try:
            out = Layer.__call__(layer, inputs, *args, **kwargs)
        except GraphcError as e:     # an op's error: say which layer, on which arrays
            shapes = map_structure(lambda p: getattr(p, "shape", p), inputs)
            raise type(e)(f"{type(layer).__name__} {layer.name!r} called on numpy arrays of shapes "
                          f"{shapes}: {e}") from e
    state.init_new_variables()
    fetches = [t for t in flatten(out) if isinstance(t, Tensor)]
    return state.session.make_callable(fetches, phs), out
