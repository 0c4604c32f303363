"""Random ops: counter-based, stateless random numbers (uniform, normal, truncated normal).

Every random value is a pure function of three integers and the element's flat
index ``i`` (row-major), using splitmix64's mixing function ``mix64`` in uint64
arithmetic (all arithmetic wraps modulo 2**64)::

    stream   = mix64(seed ^ mix64(key + GOLDEN))          # one per (op, run)
    bits(c)  = mix64(stream + (c + 1) * GOLDEN)            # the c-th 64-bit word

* ``seed`` is the node's ``attrs["seed"]``: ``mix64(mix64(graph_seed) ^ op_seed)``,
  fixed when the op is built (TensorFlow's rule: the graph seed is
  ``gc.set_random_seed``'s value at build time; a missing op seed is the node's
  creation index; a missing graph seed is ``DEFAULT_GRAPH_SEED``), so a rebuilt
  graph reproduces the same numbers.
* ``key`` is the run key the interpreter passes to ``reference(values, attrs, key)``;
  it changes on every ``Session.run``, so each run draws new numbers, and a new
  Session replays the same sequence of keys.
* uniform: counter ``c = i``; float32 uses the top 24 bits (``(bits >> 40) * 2**-24``),
  float64 the top 53 bits (``(bits >> 11) * 2**-53``), both in ``[0, 1)``, then
  ``minval + (maxval - minval) * u`` computed in float64 and rounded to the dtype
  (clamped below ``maxval``). Integers: ``minval + bits % (maxval - minval)``.
* normal: Box-Muller over counters ``2i`` and ``2i + 1`` (53-bit uniforms):
  ``sqrt(-2 log(1 - u0)) * cos(2 pi u1)``, then ``mean + stddev * z``.
* truncated normal: round ``r = 0, 1, ...`` uses counters ``2(iR + r)`` and
  ``2(iR + r) + 1`` (``R = TRUNC_ROUNDS``); the first ``|z| <= 2`` is kept
  (after ``R`` rejected rounds, ``z`` is clipped to ``[-2, 2]``).

A numba kernel can reproduce every element independently from ``(seed, key, i)``.

    >>> import graphc as gc
    >>> u = gc.random_uniform((2, 3), seed=1)
    >>> s = gc.Session(); a, b = s.run(u), s.run(u)
    >>> a.shape, bool((a != b).any()), bool(((0 <= a) & (a < 1)).all())
    ((2, 3), True, True)
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..errors import DtypeError, ShapeError
from ..ir import Tensor, TensorSpec, get_default_graph
from .registry import OpDef, apply, convert_to_tensor, register

__all__ = ["random_uniform", "random_normal", "truncated_normal", "random_uniform_like",
           "random_normal_like", "set_random_seed", "get_seed"]

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
DEFAULT_GRAPH_SEED = 87654321
TRUNC_ROUNDS = 16


# -- the generator -------------------------------------------------------------------------------
def mix64_int(z: int) -> int:
    """splitmix64's finalizer on a Python int (the scalar twin of ``mix64``)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def stream_of(seed: int, key: int) -> int:
    """The per-(op, run) stream word: ``mix64(seed ^ mix64(key + GOLDEN))``."""
    return mix64_int((seed & MASK64) ^ mix64_int((key + GOLDEN) & MASK64))


def random_bits(seed: int, key: int, counters: np.ndarray) -> np.ndarray:
    """64 random bits for each counter: ``mix64(stream + (c + 1) * GOLDEN)``."""
    c = np.asarray(counters, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(stream_of(seed, key)) + (c + np.uint64(1)) * np.uint64(GOLDEN)
    return mix64(z)


def _unit(bits: np.ndarray, dtype) -> np.ndarray:
    """Uniform floats in [0, 1) from 64-bit words: 24 bits for float32, 53 for float64."""
    if np.dtype(dtype) == np.float32:
        return (bits >> np.uint64(40)).astype(np.float64) * (2.0 ** -24)
    return (bits >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def _box_muller(b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    u0, u1 = _unit(b0, np.float64), _unit(b1, np.float64)
    return np.sqrt(-2.0 * np.log1p(-u0)) * np.cos(2.0 * np.pi * u1)


def combine_seeds(graph_seed: int | None, op_seed: int | None, node_index: int) -> int:
    """The node's seed word from the graph seed, the op seed and its creation index."""
    g = DEFAULT_GRAPH_SEED if graph_seed is None else int(graph_seed)
    o = node_index if op_seed is None else int(op_seed)
    return mix64_int(mix64_int(g & MASK64) ^ (o & MASK64))


def set_random_seed(seed: int | None) -> None:
    """Set the graph-level seed of the default graph (``tf.set_random_seed``).

    Random ops built afterwards derive their seed from it (and their op seed,
    or their creation index), so rebuilding the graph reproduces the numbers.

        >>> import graphc as gc
        >>> g = gc.Graph()
        >>> with g.as_default():
        ...     gc.set_random_seed(7)
        >>> g.seed
        7
    """
    get_default_graph().seed = None if seed is None else int(seed)


def get_seed(op_seed: int | None, graph=None) -> tuple:
    """``(graph_seed, op_seed)`` as TensorFlow would pick them (``None`` where unset)."""
    g = graph or get_default_graph()
    return g.seed, (None if op_seed is None else int(op_seed))


# -- records -------------------------------------------------------------------------------------
def _out_shape(specs, a) -> tuple:
    shape = tuple(a["shape"])
    if not specs:
        return shape
    like = specs[0].shape
    if len(like) != len(shape):
        raise ShapeError(f"shape {shape} has rank {len(shape)} but the tensor it takes its unknown "
                         f"dimensions from has rank {len(like)}")
    out = []
    for i, (d, l) in enumerate(zip(shape, like)):
        if d is None:
            out.append(l)
        else:
            out.append(d)
    return tuple(out)


def _runtime_shape(values, a) -> tuple:
    shape = tuple(a["shape"])
    if not values:
        return shape
    like = values[0].shape
    return tuple(like[i] if d is None else d for i, d in enumerate(shape))


def _random_infer(kinds):
    def infer(specs, a):
        dt = a["dtype"]
        if dt.kind not in kinds:
            raise DtypeError(f"dtype {dt.name} is not supported; use "
                             f"{'float32/float64' if kinds == 'f' else 'a float or integer dtype'}")
        if len(specs) > 1:
            raise ShapeError("a random op takes at most one input (the tensor whose runtime shape "
                             "fills the None dimensions)")
        shape = _out_shape(specs, a)
        if any(d is not None and d < 0 for d in shape):
            raise ShapeError(f"negative dimension in shape {shape}")
        return TensorSpec(shape, dt)
    return infer


def _uniform_ref(values, a, key):
    shape = _runtime_shape(values, a)
    n = int(np.prod(shape, dtype=np.int64))
    dt = a["dtype"]
    bits = random_bits(a["seed"], key, np.arange(n, dtype=np.uint64))
    lo, hi = a["minval"], a["maxval"]
    if dt.kind in "iu":
        span = int(hi) - int(lo)
        out = int(lo) + (bits % np.uint64(span)).astype(np.int64)
        return out.astype(dt).reshape(shape)
    u = _unit(bits, dt)
    out = (lo + (hi - lo) * u).astype(dt)
    if hi > lo:  # rounding to float32 may reach maxval; keep the interval half-open
        out = np.minimum(out, np.nextafter(dt.type(hi), dt.type(lo)))
    return out.reshape(shape)


def _normal_ref(values, a, key):
    shape = _runtime_shape(values, a)
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.uint64)
    z = _box_muller(random_bits(a["seed"], key, 2 * i),
                    random_bits(a["seed"], key, 2 * i + np.uint64(1)))
    return (a["mean"] + a["stddev"] * z).astype(a["dtype"]).reshape(shape)


def _truncated_ref(values, a, key):
    shape = _runtime_shape(values, a)
    n = int(np.prod(shape, dtype=np.int64))
    z = np.zeros(n)
    todo = np.arange(n, dtype=np.uint64)
    R = np.uint64(TRUNC_ROUNDS)
    for r in range(TRUNC_ROUNDS):
        if todo.size == 0:
            break
        c = np.uint64(2) * (todo * R + np.uint64(r))
        zr = _box_muller(random_bits(a["seed"], key, c),
                         random_bits(a["seed"], key, c + np.uint64(1)))
        ok = np.abs(zr) <= 2.0
        z[todo[ok].astype(np.int64)] = zr[ok]
        if r == TRUNC_ROUNDS - 1:
            z[todo[~ok].astype(np.int64)] = np.clip(zr[~ok], -2.0, 2.0)
        todo = todo[~ok]
    return (a["mean"] + a["stddev"] * z).astype(a["dtype"]).reshape(shape)


def _no_grad(inputs, output, dy, a):
    return [None] * len(inputs)


register(OpDef("random_uniform", fusion="opaque", infer=_random_infer("fi"), reference=_uniform_ref,
               grad=_no_grad, random=True, differentiable=False,
               doc="Uniform numbers in [minval, maxval) from (seed, run key, element index)."))
register(OpDef("random_normal", fusion="opaque", infer=_random_infer("f"), reference=_normal_ref,
               grad=_no_grad, random=True, differentiable=False,
               doc="Normal numbers (Box-Muller) from (seed, run key, element index)."))
register(OpDef("truncated_normal", fusion="opaque", infer=_random_infer("f"),
               reference=_truncated_ref, grad=_no_grad, random=True, differentiable=False,
               doc="Normal numbers re-drawn until within two standard deviations."))


# -- user API ------------------------------------------------------------------------------------
def _norm_shape(shape, what: str) -> tuple:
    if isinstance(shape, Tensor):
        raise ShapeError(f"{what}: shape must be a tuple of ints (None for a dimension taken from "
                         f"`like`), not a tensor; for a shape like tensor x use {what}_like(x) "
                         "or like=x")
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    out = []
    for d in tuple(shape):
        if d is None or (isinstance(d, (int, np.integer)) and d == -1):
            out.append(None)
        elif isinstance(d, (int, np.integer)) and d >= 0:
            out.append(int(d))
        else:
            raise ShapeError(f"{what}: bad dimension {d!r} in shape {tuple(shape)}; use "
                             "non-negative ints, or None for a dimension taken from `like`")
    return tuple(out)


def _build(op: str, shape, dtype, attrs: dict, seed, like, name, what: str) -> Tensor:
    shape = _norm_shape(shape, what)
    inputs = []
    if like is not None:
        like = convert_to_tensor(like)
        inputs = [like]
    elif any(d is None for d in shape):
        raise ShapeError(f"{what}: shape {shape} has unknown (None) dimensions; pass like=x, a "
                         "tensor whose runtime shape fills them (or use random_uniform_like(x))")
    g = inputs[0].graph if inputs else get_default_graph()
    dt = _dt.as_dtype(dtype)
    attrs = dict(attrs, shape=shape, dtype=dt,
                 seed=combine_seeds(g.seed, seed, g._next_id))
    return apply(op, inputs, attrs, name=name or what, graph=g)


def random_uniform(shape, minval=0, maxval=None, dtype="float32", seed=None, name=None,
                   like=None) -> Tensor:
    """Uniform random numbers in ``[minval, maxval)`` (``tf.random_uniform``).

    ``maxval`` defaults to 1 for floats and is required for integer dtypes.
    ``None`` dimensions of ``shape`` are taken at run time from ``like``'s shape
    (same rank), e.g. a batch dimension: ``random_uniform((None, 10), like=x)``.

        >>> import graphc as gc
        >>> gc.random_uniform((2, 2), minval=-1.0, maxval=1.0, seed=3).shape
        (2, 2)
    """
    dt = _dt.as_dtype(dtype)
    if dt.kind in "iu":
        if maxval is None:
            raise DtypeError(f"random_uniform: an integer dtype ({dt.name}) needs an explicit maxval")
        lo, hi = int(minval), int(maxval)
        if hi <= lo:
            raise ValueError(f"random_uniform: need minval < maxval for integers, got [{lo}, {hi})")
    elif dt.kind == "f":
        lo, hi = float(minval), float(1.0 if maxval is None else maxval)
        if hi < lo:
            raise ValueError(f"random_uniform: maxval {hi} is below minval {lo}")
    else:
        raise DtypeError(f"random_uniform: dtype {dt.name} is not supported; use a float or "
                         "integer dtype")
    return _build("random_uniform", shape, dt, {"minval": lo, "maxval": hi}, seed, like, name,
                  "random_uniform")


def random_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None,
                  like=None) -> Tensor:
    """Normal random numbers with ``mean`` and ``stddev`` (``tf.random_normal``).

        >>> import graphc as gc
        >>> gc.random_normal((3,), stddev=0.1, seed=1).dtype.name
        'float32'
    """
    return _build("random_normal", shape, dtype, {"mean": float(mean), "stddev": float(stddev)},
                  seed, like, name, "random_normal")


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None,
                     like=None) -> Tensor:
    """Normal numbers re-drawn when more than 2 ``stddev`` from ``mean`` (``tf.truncated_normal``).

        >>> import graphc as gc
        >>> gc.truncated_normal((4, 4), seed=2).shape
        (4, 4)
    """
    return _build("truncated_normal", shape, dtype, {"mean": float(mean), "stddev": float(stddev)},
                  seed, like, name, "truncated_normal")


def random_uniform_like(x, minval=0, maxval=None, dtype=None, seed=None, name=None) -> Tensor:
    """Uniform numbers shaped like ``x`` at run time (works with a ``None`` batch dimension).

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (None, 3))
        >>> gc.random_uniform_like(x, seed=1).shape
        (None, 3)
    """
    x = convert_to_tensor(x)
    dt = dtype if dtype is not None else (x.dtype if x.dtype.kind == "f" else "float32")
    return random_uniform((None,) * x.ndim, minval, maxval, dt, seed, name, like=x)


def random_normal_like(x, mean=0.0, stddev=1.0, dtype=None, seed=None, name=None) -> Tensor:
    """Normal numbers shaped like ``x`` at run time (works with a ``None`` batch dimension)."""
    x = convert_to_tensor(x)
    dt = dtype if dtype is not None else (x.dtype if x.dtype.kind == "f" else "float32")
    return random_normal((None,) * x.ndim, mean, stddev, dt, seed, name, like=x)
