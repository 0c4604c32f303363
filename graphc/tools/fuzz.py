"""Random graphs, compiled against the reference interpreter (issue #22).

``make_case(seed)`` builds one random DAG from a seed (deterministic: the same seed gives the same
graph and inputs): placeholders of broadcast-compatible shapes, then a few ops drawn from the
registry's elementwise ops (``get_op(op).fusion == "elementwise"``, unary and binary, called
through their public functions), ``where``, reductions (axes, keepdims), argmax/argmin, matmul,
transpose/reshape/slice/concat/expand_dims/squeeze, softmax/log_softmax, casts, and sometimes
``gc.gradients`` of a sum of one output with respect to the float inputs. Inputs are float32,
float64, int32 or bool, with size-0 and size-1 dimensions, and floats carry NaN, +-inf, +-0,
huge and tiny (normal and subnormal) values. ``make_case(seed, none_dims=True)`` is the same
graph and inputs with some placeholder dimensions declared ``None`` (unknown until run time, fed
the same concrete values) and every spec inferred anew: the shape-polymorphic compiled plan.

``run_case(case)`` runs the fetches with ``gc.Session(config=COMPILED)`` (compiled, optimize on,
untiered: a tiered session would run a cold plan on the numpy references, comparing the oracle
with itself; strict: a kernel that fails to compile raises) and with
``gc.Session(executor="reference")`` and classifies the result (``Outcome.kind``):

* ``ok``: every fetch agrees (``compare``).
* ``build_error``: no op could be built. An op that raises a ``GraphcError`` while the graph is
  built (a shape or dtype rule said no) is the correct outcome; it is counted as ``rejected``
  and another op is drawn.
* ``crash``: anything raised that is not a ``GraphcError``, while building, compiling or running.
* ``excluded``: a by-design difference of docs/ops-contract.md ("Special values"), named in
  ``Outcome.detail``; see ``BY_DESIGN``.
* ``ill_conditioned``: every differing element is one that rounding alone moves past the
  tolerance (docs/ops-contract.md, "Ill-conditioned results"; ``_ill_conditioned``): the reference
  graph run in perturbed arithmetic, each rounding op's result (and each term of a sum or
  contraction) off by ``ILL_ULPS`` ulps, moves it too. ``Outcome.detail`` names the first op the
  perturbation moved past the tolerance, its operands and both values.
* ``mismatch``: anything else.

Tolerance policy (``compare``): same dtype and shape; integers and bools exactly; floats: NaN at
the same positions, the same infinities, and finite values within ``|a - b| <= rtol * (max(|a|, |b|) + 1)``, where
``rtol`` is ``RTOL`` of the least precise float dtype anywhere in the graph (a float32 result
cast to float64 carries float32 rounding): 2e-5 for float32 (~170 ulp: fast-math exp/log/tanh
are <= 5 ulp, FMA contraction, float64 accumulation in reductions, and exp/pow multiply a
relative error by the argument along a chain), 1e-12 for float64. Measured: 1e-5/1e-12 over
300 graphs gave no difference but that of a float32 matmul cast to float64 (8e-8 relative). Zero signs are not compared here (the special
values test checks them op by op; here CSE may swap maximum/minimum's operands, a documented
caveat of the ``commutative`` trait).

By-design differences (docs/ops-contract.md) are kept out where the inputs are made or named
when seen; nothing else is excluded but ill-conditioned results (``ill_conditioned`` above):

* integer ``pow`` with a negative exponent: the reference raises, compiled gives 0/1/-1. A
  reference ``ValueError`` from it is ``excluded``.
* NaN/inf/out-of-range float cast to an integer is undefined: float-to-int casts are built as
  ``cast(clip_by_value(where(x == x, x, 0), -1e6, 1e6))``.
* float sums/means (float64 accumulation, reassociated) and matmul (summation order, FMA) whose
  partial sums overflow: an output where the reference or the compiled value is +-inf or NaN
  wherever they differ, in a graph with a reduction or contraction op, is ``excluded``
  when the inputs hold values above ``OVERFLOW_RISK`` (``BY_DESIGN["overflow_order"]``).
* float32 FMA contraction in fast-math kernels: ``a * b + c`` where ``a * b`` alone overflows is
  finite compiled; the same rule covers it (float32 inputs with huge values).
"""
from __future__ import annotations

import inspect
import re
import traceback
import warnings
from dataclasses import dataclass, field

import numpy as np

import graphc as gc
from graphc.errors import GraphcError
from graphc.ir import TensorSpec
from graphc.ops.registry import OPS, get_op

DTYPES = ("float32", "float64", "int32", "bool")
DTYPE_P = (0.4, 0.35, 0.15, 0.1)
RTOL = {"float32": 2e-5, "float64": 1e-12}
OVERFLOW_RISK = 1e30          # an input above this can overflow a sum's or a product's partial sum
BY_DESIGN = {
    "int_pow_negative_exponent": "integer pow with a negative exponent: the reference raises, "
                                 "a generated loop has no error path (docs/ops-contract.md)",
    "overflow_order": "a sum, mean or matmul whose partial sums overflow: float64 accumulation, "
                      "reassociation, BLAS order and float32 FMA decide which overflow "
                      "(docs/ops-contract.md, Special values)",
}
ORDER_SENSITIVE = ("reduction", "contraction")     # fusion classes that accumulate
# the kernels themselves: a tiered session runs a cold plan on the numpy references (the oracle
# itself) while they compile, and a kernel that fails to compile would fall back to them quietly
COMPILED = {"tiered": False, "strict_kernels": True}
ILL_ULPS = 4          # a legitimate per-op difference: fast-math exp/log/tanh are <= 5 ulp, numpy's <= 4
ILL_SAMPLES = 4       # perturbed reference runs (sign patterns) that estimate a result's conditioning
EXACT_FUSION = ("layout", "source")                # these ops move or make values, never round them


def _arity(op) -> int:
    return len(set(re.findall(r"\{(\d+)\}", op.scalar or "")))


def _required(fn) -> int:
    return sum(1 for p in inspect.signature(fn).parameters.values()
               if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _elementwise(arity: int) -> tuple:
    """The registry's elementwise ops of ``arity`` operands whose public function takes exactly
    those operands (``cast``'s dtype, ``broadcast_like``'s shape source and ``where`` are drawn
    by their own rules; ``fused_*`` has no public function)."""
    return tuple(n for n, o in OPS.items() if o.fusion == "elementwise" and hasattr(gc, n)
                 and _arity(o) == arity and _required(getattr(gc, n)) == arity)


UNARY = _elementwise(1)
BINARY = _elementwise(2)
# the public reduce_* functions of reduction ops (axis, keepdims)
REDUCERS = tuple(n for n, o in OPS.items() if o.fusion == "reduction" and n.startswith("reduce_")
                 and hasattr(gc, n))


@dataclass
class Case:
    seed: int
    graph: gc.Graph
    fetches: list
    feeds: dict
    steps: list = field(default_factory=list)      # what was built, in order (for reports)
    rejected: list = field(default_factory=list)   # GraphcErrors of op attempts (correct outcomes)


@dataclass
class Outcome:
    kind: str          # ok, build_error, crash, mismatch, excluded, ill_conditioned
    seed: int
    detail: str = ""
    steps: list = field(default_factory=list)
    rejected: int = 0


# -- values ----------------------------------------------------------------------------------------
def _values(rng, shape, dtype) -> np.ndarray:
    dt = np.dtype(dtype)
    n = int(np.prod(shape)) if shape else 1
    if dt.kind == "b":
        return (rng.random(n) > 0.5).reshape(shape)
    if dt.kind == "i":
        v = rng.integers(-6, 7, n)
        if rng.random() < 0.2:
            ii = np.iinfo(dt)
            v = np.where(rng.random(n) < 0.2, rng.choice([ii.max, ii.min, ii.max - 1]), v)
        return v.astype(dt).reshape(shape)
    fi = np.finfo(dt)
    v = rng.normal(0, rng.choice([0.5, 2.0, 30.0]), n).astype(dt)
    if rng.random() < 0.6:
        specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, fi.max, -fi.max, fi.tiny,
                             -fi.tiny, fi.smallest_subnormal, 1e20, -1e15, 1.0, -1.0], dt)
        mask = rng.random(n) < rng.choice([0.1, 0.3])
        v = np.where(mask, rng.choice(specials, n), v).astype(dt)
    return v.reshape(shape)


def _shape(rng, rank) -> tuple:
    dims = [int(rng.choice([1, 2, 3, 4, 5])) for _ in range(rank)]
    if rank and rng.random() < 0.2:
        # past a vector width: the generated loops' vectorized bodies, not only their tails
        dims[int(rng.integers(rank))] = int(rng.choice([17, 33, 64]))
    if rank and rng.random() < 0.1:
        dims[int(rng.integers(rank))] = 0
    return tuple(dims)


def _broadcast_variant(rng, shape) -> tuple:
    s = list(shape)
    if s and rng.random() < 0.3:
        s = s[int(rng.integers(1, len(s) + 1)):]
    return tuple(1 if d and rng.random() < 0.25 else d for d in s)


# -- building --------------------------------------------------------------------------------------
class _Builder:
    def __init__(self, rng):
        self.rng = rng
        self.feeds = {}
        self.pool = []
        self.steps = []

    def placeholder(self, shape, dtype):
        p = gc.placeholder(dtype, shape, name=f"in{len(self.feeds)}")
        self.feeds[p] = _values(self.rng, shape, dtype)
        self.pool.append(p)
        self.steps.append(f"in{len(self.feeds) - 1} = placeholder({dtype}, {shape})")
        return p

    def pick(self, dtype=None, min_rank=0):
        cands = [t for t in self.pool if (dtype is None or t.dtype == dtype) and len(t.shape) >= min_rank]
        if not cands:
            return None
        # prefer recent tensors: deeper chains
        w = np.arange(1, len(cands) + 1, dtype=float)
        return cands[int(self.rng.choice(len(cands), p=w / w.sum()))]

    def partner(self, x):
        y = self.pick(x.dtype) if self.rng.random() < 0.6 else None
        if y is None or y is x and self.rng.random() < 0.5:
            y = self.placeholder(_broadcast_variant(self.rng, tuple(x.shape)), x.dtype.name)
        return y

    def step(self):
        rng = self.rng
        kind = rng.choice(["unary", "binary", "where", "reduce", "arg", "matmul", "layout",
                           "softmax", "cast"], p=[0.25, 0.25, 0.05, 0.13, 0.03, 0.07, 0.12, 0.05, 0.05])
        x = self.pick()
        r = len(x.shape)
        if kind == "unary":
            op = str(rng.choice(UNARY))
            return op, getattr(gc, op)(x)
        if kind == "binary":
            op = str(rng.choice(BINARY))
            y = self.partner(x)
            a, b = (x, y) if rng.random() < 0.5 else (y, x)
            return op, getattr(gc, op)(a, b)
        if kind == "where":
            y = self.partner(x)
            return "where", gc.where(gc.greater(x, y) if x.dtype.name != "bool" else x, x, y)
        if kind == "reduce":
            op = str(rng.choice(REDUCERS))
            axis = None if r == 0 or rng.random() < 0.25 else \
                sorted(int(a) for a in rng.choice(r, int(rng.integers(1, r + 1)), replace=False))
            if axis is not None and rng.random() < 0.2:
                axis = [a - r for a in axis]           # negative axes
            keepdims = bool(rng.random() < 0.4)
            return f"{op}(axis={axis}, keepdims={keepdims})", getattr(gc, op)(x, axis=axis, keepdims=keepdims)
        if kind == "arg":
            op = str(rng.choice(["argmax", "argmin"]))
            axis = int(rng.integers(r)) if r else 0
            return f"{op}(axis={axis})", getattr(gc, op)(x, axis=axis)
        if kind == "matmul":
            x2 = self.pick(min_rank=2)
            x = x if x2 is None else x2
            if len(x.shape) < 2:
                x = gc.reshape(x, (-1, 1))
            k = x.shape[-1]
            n = int(rng.choice([1, 2, 3, 4]))
            wshape = (k, n) if rng.random() < 0.6 or len(x.shape) == 2 else tuple(x.shape[:-2]) + (k, n)
            w = self.placeholder(wshape, x.dtype.name)
            ta = bool(rng.random() < 0.2)
            a = gc.transpose(x, list(range(len(x.shape) - 2)) + [len(x.shape) - 1, len(x.shape) - 2]) if ta else x
            return f"matmul(transpose_a={ta})", gc.matmul(a, w, transpose_a=ta)
        if kind == "layout":
            sub = str(rng.choice(["transpose", "reshape", "slice", "concat", "expand_dims", "squeeze"]))
            shape = tuple(x.shape)
            if sub == "transpose":
                perm = [int(p) for p in rng.permutation(r)]
                return f"transpose({perm})", gc.transpose(x, perm)
            if sub == "reshape":
                n = int(np.prod(shape)) if shape else 1
                target = rng.choice(["flat", "col", "split"])
                new = (n,) if target == "flat" else (-1, 1) if target == "col" else \
                    ((2, n // 2) if n % 2 == 0 else (1, n))
                return f"reshape({new})", gc.reshape(x, new)
            if sub == "slice":
                if not r:
                    return "slice", gc.identity(x)
                begin = [int(rng.integers(0, d + 1)) for d in shape]
                size = [int(rng.integers(-1, d - b + 1)) for d, b in zip(shape, begin)]
                return f"slice({begin}, {size})", gc.slice(x, begin, size)
            if sub == "concat":
                y = self.partner(x)
                axis = int(rng.integers(max(r, 1)))
                return f"concat(axis={axis})", gc.concat([x, y], axis=axis)
            if sub == "expand_dims":
                axis = int(rng.integers(-r - 1, r + 1))
                return f"expand_dims({axis})", gc.expand_dims(x, axis)
            return "squeeze", gc.squeeze(x)
        if kind == "softmax":
            op = str(rng.choice(["softmax", "log_softmax"]))
            axis = int(rng.integers(-r, r)) if r else -1
            return f"{op}(axis={axis})", getattr(gc, op)(x, axis=axis)
        # cast
        to = str(rng.choice(DTYPES))
        if x.dtype.kind == "f" and np.dtype(to).kind == "i":
            # NaN/inf/out-of-range float -> int is undefined (by design): sanitized first
            safe = gc.clip_by_value(gc.where(gc.equal(x, x), x, gc.zeros_like(x)), -1e6, 1e6)
            return f"cast({to}, sanitized)", gc.cast(safe, to)
        return f"cast({to})", gc.cast(x, to)


def make_case(seed: int, none_dims: bool = False) -> Case:
    """The random graph of ``seed``: raises only what building it raises (GraphcErrors of single
    ops are caught, recorded in ``rejected``, and another op drawn). With ``none_dims`` the same
    graph and inputs, with unknown dimensions declared on its placeholders (``_relax``)."""
    rng = np.random.default_rng(seed)
    g = gc.Graph()
    with g.as_default():
        b = _Builder(rng)
        dtype = str(rng.choice(DTYPES, p=DTYPE_P))
        base = _shape(rng, int(rng.choice([0, 1, 2, 2, 3, 3])))
        for _ in range(int(rng.integers(1, 4))):
            b.placeholder(_broadcast_variant(rng, base), dtype)
        rejected = []
        n_ops = int(rng.integers(2, 8))
        built = 0
        for _ in range(n_ops * 3):
            if built == n_ops:
                break
            try:
                what, t = b.step()
            except GraphcError as e:
                rejected.append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
                continue
            b.pool.append(t)
            b.steps.append(f"t{len(b.pool) - 1} = {what} -> {t.dtype.name}{tuple(t.shape)}")
            built += 1
        outs = [t for t in b.pool if t not in b.feeds]
        fetches = outs[-1:] + ([outs[int(rng.integers(len(outs)))]] if len(outs) > 1 and rng.random() < 0.5 else [])
        if outs and rng.random() < 0.3:
            y = outs[-1]
            xs = [p for p in b.feeds if p.dtype.kind == "f"]
            if y.dtype.kind == "f" and xs:
                try:
                    grads = gc.gradients(gc.reduce_sum(y * y if rng.random() < 0.5 else y), xs)
                    got = [d for d in grads if d is not None]
                    fetches += got
                    b.steps.append(f"gradients(sum(t{len(b.pool) - 1}), inputs): {len(got)} fetched")
                except GraphcError as e:
                    rejected.append(f"gradients: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    case = Case(seed, g, fetches, b.feeds, b.steps, rejected)
    # its own stream: the graph of a seed is the same with and without None dims
    return _relax(case, np.random.default_rng([seed, 22])) if none_dims else case


def _relax(case: Case, rng) -> Case:
    """``case`` with some placeholder dimensions declared ``None`` (unknown until run time; fed
    the same concrete values, size-0 and size-1 dims included) and every other node's spec
    inferred anew from them, so that the compiled plan is the shape-polymorphic one. An op whose
    shape rule rejects the unknown dims leaves the case as it was, the error in ``rejected``."""
    g = case.graph.copy()
    declared = []
    for p in case.feeds:
        spec = g.spec(p.node)
        if spec.shape and rng.random() < 0.7:
            shape = tuple(None if rng.random() < 0.5 else d for d in spec.shape)
            if None not in shape:
                shape = (None,) + shape[1:]
            g.nx.nodes[p.node]["spec"] = TensorSpec(shape, spec.dtype)
            declared.append(f"{p.name}{shape}")
    if not declared:
        return case
    try:
        for n in g.topo_order():
            if g.inputs(n):       # sources keep their spec: placeholders as declared, constants
                g.nx.nodes[n]["spec"] = get_op(g.op(n)).infer([g.spec(i) for i in g.inputs(n)],
                                                              dict(g.attrs(n)))
    except GraphcError as e:
        case.rejected.append(f"None dims {declared}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return case
    return Case(case.seed, g, [g.tensor(t.node) for t in case.fetches],
                {g.tensor(p.node): v for p, v in case.feeds.items()},
                case.steps + [f"None dims: {', '.join(declared)}"], case.rejected)


# -- comparing -------------------------------------------------------------------------------------
def differ(compiled: np.ndarray, ref: np.ndarray, rtol: float | None = None) -> np.ndarray:
    """Where two arrays of one dtype and shape disagree under the policy (module docstring)."""
    compiled, ref = np.asarray(compiled), np.asarray(ref)
    if compiled.dtype.kind != "f":
        return compiled != ref
    a, b = compiled.astype(np.float64), ref.astype(np.float64)
    bad = np.isnan(a) != np.isnan(b)
    bad |= (np.isinf(a) | np.isinf(b)) & (a != b) & ~(np.isnan(a) & np.isnan(b))
    fin = np.isfinite(a) & np.isfinite(b)
    with np.errstate(all="ignore"):
        rtol = RTOL[compiled.dtype.name] if rtol is None else rtol
        tol = rtol * (np.maximum(np.abs(a), np.abs(b)) + 1.0)
        bad |= fin & ~(np.abs(a - b) <= tol)
    return bad


def compare(compiled: np.ndarray, ref: np.ndarray, rtol: float | None = None) -> str:
    """'' when ``compiled`` agrees with ``ref`` (module docstring), else what differs."""
    compiled, ref = np.asarray(compiled), np.asarray(ref)
    if compiled.dtype != ref.dtype or compiled.shape != ref.shape:
        return f"dtype/shape {compiled.dtype}{compiled.shape} vs reference {ref.dtype}{ref.shape}"
    bad = differ(compiled, ref, rtol)
    if not bad.any():
        return ""
    idx = np.flatnonzero(bad)[:6]
    return (f"{int(bad.sum())} of {bad.size} differ at {idx.tolist()}: compiled "
            f"{compiled.ravel()[idx].tolist()}, reference {ref.ravel()[idx].tolist()}")


def _rtol(case: Case) -> float:
    """RTOL of the least precise float dtype anywhere in the graph."""
    g = case.graph
    return max((RTOL[g.spec(n).dtype.name] for n in g.nodes() if g.spec(n).dtype.name in RTOL),
               default=RTOL["float64"])


def _graph_ops(g) -> set:
    ops = set()
    for n in g.nodes():
        ops.add(g.op(n))
    return ops


def run_case(case: Case) -> Outcome:
    steps, nrej = case.steps, len(case.rejected)
    if not case.fetches:
        return Outcome("build_error", case.seed, "; ".join(case.rejected[:3]), steps, nrej)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            ref = gc.Session(case.graph, executor="reference").run(case.fetches, case.feeds)
        except ValueError as e:
            if "negative integer powers" in str(e):
                return Outcome("excluded", case.seed, "int_pow_negative_exponent", steps, nrej)
            return Outcome("crash", case.seed, "reference: " + traceback.format_exc(limit=-3), steps, nrej)
        except GraphcError as e:
            return Outcome("crash", case.seed, f"reference raised {type(e).__name__}: {e}", steps, nrej)
        except Exception:
            return Outcome("crash", case.seed, "reference: " + traceback.format_exc(limit=-3), steps, nrej)
        try:
            got = gc.Session(case.graph, config=COMPILED).run(case.fetches, case.feeds)
        except GraphcError as e:
            return Outcome("mismatch", case.seed, f"compiled raised {type(e).__name__} where the "
                           f"reference ran: {e}", steps, nrej)
        except Exception:
            return Outcome("crash", case.seed, "compiled: " + traceback.format_exc(limit=-4), steps, nrej)
    rtol = _rtol(case)
    diffs = []
    for i, (a, b) in enumerate(zip(got, ref)):
        d = compare(a, b, rtol)
        if d:
            diffs.append((i, d, np.asarray(a), np.asarray(b)))
    if not diffs:
        return Outcome("ok", case.seed, "", steps, nrej)
    if all(_overflow_order(case, a, b) for _, _, a, b in diffs):
        return Outcome("excluded", case.seed, "overflow_order: " + diffs[0][1], steps, nrej)
    ill = _ill_conditioned(case, {i: differ(a, b, rtol) for i, _, a, b in diffs if a.shape == b.shape}, rtol)
    # excluded only when every differing element is one the perturbed runs move too
    if ill and all(a.shape == b.shape == ill[0][i].shape and a.dtype == b.dtype
                   and not (differ(a, b, rtol) & ~ill[0][i]).any() for i, _, a, b in diffs):
        return Outcome("ill_conditioned", case.seed, f"{ill[1]}; {diffs[0][1]}", steps, nrej)
    return Outcome("mismatch", case.seed, "; ".join(f"fetch {i} ({case.fetches[i].name}): {d}"
                                                     for i, d, _, _ in diffs), steps, nrej)


def _overflow_order(case: Case, a: np.ndarray, b: np.ndarray) -> bool:
    """BY_DESIGN["overflow_order"]: the reference has +-inf or NaN wherever they differ, the
    graph has an order-sensitive op and an input above OVERFLOW_RISK."""
    if a.dtype.kind != "f" or not any(OPS[op].fusion in ORDER_SENSITIVE for op in _graph_ops(case.graph)):
        return False
    if not any(v.dtype.kind == "f" and np.any(np.abs(v[np.isfinite(v)]) > OVERFLOW_RISK)
               for v in case.feeds.values()):
        return False
    x, y = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):
        tol = _rtol(case) * (np.maximum(np.abs(x), np.abs(y)) + 1.0)
        diff = ~((x == y) | (np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= tol))
    return bool(np.all(~np.isfinite(y[diff]) | ~np.isfinite(x[diff])))


# -- conditioning (docs/ops-contract.md, "Ill-conditioned results") ----------------------------------
def _jitter(v: np.ndarray, salt: int, ulps: int, direction: int = 0) -> np.ndarray:
    """``v`` with each float element moved by ``ulps * eps`` of itself: towards +inf
    (``direction`` 1) or -inf (-1), which moves a sum by the most, ``ulps * eps * sum |x|``, or
    (0) up or down by a sign hashed from the element's own bits and ``salt``. Either way equal
    values move alike (ties and equalities among one op's results survive, as in any elementwise
    implementation), and finite values stay finite."""
    v = np.array(v, order="C", copy=None)        # (ascontiguousarray makes a 0-d array 1-d)
    if v.dtype.kind != "f" or not v.size:
        return v
    h = (v.view(f"u{v.itemsize}").astype(np.uint64) ^ np.uint64(salt)) * np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)                 # splitmix64's finalizer: a well-mixed top bit
    sign = np.where((h >> np.uint64(63)) == 1, 1.0, -1.0)
    if direction:
        sign = np.where(np.signbit(v), -direction, direction)
    fi = np.finfo(v.dtype)
    with np.errstate(all="ignore"):
        w = np.clip(v.astype(np.float64) * (1.0 + sign * ulps * float(fi.eps)), -float(fi.max), float(fi.max))
        return np.where(np.isfinite(v), w, v).astype(v.dtype)


def _evaluate(case: Case, sample: int = 0) -> dict:
    """node -> value of every node the fetches need, by the ops' references. ``sample`` > 0 runs
    the perturbed arithmetic of the conditioning rule: every rounding op's float result moves by
    ``ILL_ULPS`` ulps, and so do the float operands of a plain reduction or a contraction (its
    backward error: a sum in any order is the exact sum of operands each off by a few ulps);
    samples 1 and 2 move everything towards +inf and -inf, the others by hashed signs."""
    g = case.graph
    env = {p.node: np.asarray(v) for p, v in case.feeds.items()}
    for n in g.topo_order([t.node for t in case.fetches], stop=env):
        if n in env:
            continue
        op = get_op(g.op(n))
        vals = [env[i] for i in g.inputs(n)]
        salt, way = (sample * 1_000_003 + n) * 8, {1: 1, 2: -1}.get(sample, 0)   # 1, 2: directed
        if sample and g.spec(n).dtype.kind == "f" and (op.reduce or op.fusion == "contraction"):
            vals = [_jitter(v, salt + 1 + k, ILL_ULPS, way) for k, v in enumerate(vals)]
        out = np.asarray(op.reference(vals, g.attrs(n)))
        env[n] = _jitter(out, salt, ILL_ULPS, way) if sample and op.fusion not in EXACT_FUSION else out
    return env


def _ill_conditioned(case: Case, which: dict, rtol: float):
    """``(masks, reason)``: per fetch, the elements that ``ILL_SAMPLES`` perturbed reference runs
    move past the tolerance (``differ``: their value is not determined at this precision), and
    the first op, in graph order, that the fetches of ``which`` (index -> differing elements)
    depend on and whose result moves: it, its operands and how far it moved (at a differing
    element where the shapes allow). ``None`` when no fetch of ``which`` has such an element or
    the analysis itself fails."""
    g = case.graph
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            base = _evaluate(case)
            # the nodes the differing fetches depend on, fed ones aside
            cands = g.ancestors([case.fetches[i].node for i in which]) - {p.node for p in case.feeds}
            masks = [np.zeros(np.shape(base[t.node]), bool) for t in case.fetches]
            origin = None
            for sample in range(1, ILL_SAMPLES + 1):
                pert = _evaluate(case, sample)
                for i, t in enumerate(case.fetches):
                    masks[i] |= differ(pert[t.node], base[t.node], rtol)
                for n in cands & set(base):    # node ids follow creation: the first moved one amplifies
                    moved = differ(pert[n], base[n], rtol)
                    if moved.any() and (origin is None or n < origin[0]):
                        at = [m & moved for m in which.values() if m.shape == moved.shape and (m & moved).any()]
                        origin = (n, int(np.flatnonzero(at[0] if at else moved)[0]), pert[n])
    except Exception:   # noqa: BLE001 - no estimate, no exclusion: the mismatch is reported
        return None
    if origin is None or not any(masks[i].any() for i in which):
        return None
    n, k, perturbed = origin
    operands = [_operand(base[i], k, np.size(base[n])) for i in g.inputs(n)]
    return masks, (f"{g.op(n)} '{g.name(n)}' of {operands} gives {base[n].ravel()[k].item()!r}, {perturbed.ravel()[k].item()!r} when each "
                   f"op is off by {ILL_ULPS} ulps")


def _operand(v: np.ndarray, k: int, size: int):
    """Element ``k`` of an elementwise operand (its only one, broadcast), else a summary of the
    terms of a reduction or contraction: their count and sum of magnitudes (cancellation)."""
    v = np.asarray(v)
    if v.size in (1, size):
        return v.ravel()[k if v.size == size else 0].item()
    return f"{v.size} values, sum of magnitudes {np.sum(np.abs(v), dtype=np.float64):.3g}"


def fuzz_one(seed: int, none_dims: bool = False) -> Outcome:
    try:
        case = make_case(seed, none_dims)
    except GraphcError as e:
        return Outcome("build_error", seed, f"{type(e).__name__}: {e}")
    except Exception:
        return Outcome("crash", seed, "building: " + traceback.format_exc(limit=-3))
    return run_case(case)


def report(o: Outcome) -> str:
    return f"seed {o.seed}: {o.kind}: {o.detail}\n    " + "\n    ".join(o.steps)
