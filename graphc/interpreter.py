"""The reference interpreter: evaluates any graph with numpy only. It is the oracle.

    >>> import graphc as gc
    >>> from graphc.interpreter import evaluate
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     x = gc.placeholder("float32", (None,)); y = x * 2.0
    >>> evaluate(g, [y.node], {x.node: np.ones(2, np.float32)}).values[0].tolist()
    [2.0, 2.0]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import FeedError, GraphcError, GraphError, ShapeError, UninitializedVariableError
from .ir import Graph, TupleSpec
from .ops.registry import get_op
from .ops.state import update_value


@dataclass
class RunResult:
    """Fetched values, and the variable updates the run made (committed by the caller)."""
    values: list
    updates: dict = field(default_factory=dict)


def schedule(graph: Graph, fetches: Sequence[int], fed: Mapping[int, object] = ()) -> list[int]:
    """The nodes a run needs, in topological order; fed nodes cut off their ancestors."""
    return graph.topo_order(fetches, stop=fed)


def random_key(run_key: int, node_seed: int) -> int:
    """The per-run key handed to random ops (same formula in the runtime)."""
    return (int(run_key) * 0x9E3779B97F4A7C15 + int(node_seed)) & 0xFFFFFFFFFFFFFFFF


def evaluate(graph: Graph, fetches: Sequence[int], feeds: Mapping[int, np.ndarray] | None = None,
             state: Mapping[str, np.ndarray] | None = None, run_key: int = 0,
             check: bool = True) -> RunResult:
    """Run ``fetches`` (node ids) given ``feeds`` (node id -> array) and variable ``state``.

    Variables are keyed by node name. Assign ops see earlier assigns of the same
    run; ``RunResult.updates`` holds the new values, nothing is written to
    ``state``. With ``check`` every value is checked against its node's spec.
    """
    feeds = feeds or {}
    state = state or {}
    order = schedule(graph, fetches, feeds)
    env: dict[int, np.ndarray] = {}
    updates: dict[str, np.ndarray] = {}
    for n in order:
        if n in feeds:
            env[n] = feeds[n]
            continue
        op = graph.op(n)
        attrs = graph.attrs(n)
        if op == "placeholder":
            needed_by = [graph.name(f) for f in fetches if n in graph.ancestors([f], stop=feeds)]
            raise FeedError(f"placeholder '{graph.name(n)}' (shape {graph.spec(n).shape}, dtype "
                            f"{graph.spec(n).dtype.name}) must be fed: fetches {needed_by} depend on it; "
                            f"pass feed_dict={{{graph.name(n)}: value}}")
        if op == "variable":
            env[n] = state.get(graph.name(n), _UNINITIALIZED)
            continue
        ins = graph.inputs(n)
        vals = [env[i] for i in ins]
        opdef = get_op(op)
        update = opdef.state_update
        for k, v in enumerate(vals):
            if v is _UNINITIALIZED and not (k == 0 and update):
                _uninitialized(graph, ins[k])
        if update:
            key = graph.name(ins[0])
            current = updates.get(key, state.get(key))
            if current is None and update != "assign":
                _uninitialized(graph, ins[0])
            out = update_value(opdef, current, vals[1])
            updates[key] = out
        else:
            try:
                if opdef.random:
                    out = opdef.reference(vals, attrs, random_key(run_key, attrs.get("seed", 0)))
                else:
                    out = opdef.reference(vals, attrs)
            except GraphcError:
                raise
            except Exception as e:  # numpy's error, with the op, node and call site added
                raise run_error(graph, n, [np.shape(v) for v in vals], e) from e
        if isinstance(graph.spec(n), TupleSpec):     # a control flow op's results (tuple_get reads them)
            out = tuple(out)
        else:
            out = np.asarray(out)
            if check:
                _check_value(graph, n, out)
        env[n] = out
    for f in fetches:
        if env[f] is _UNINITIALIZED:
            _uninitialized(graph, f)
    return RunResult([env[f] for f in fetches], updates)


_UNINITIALIZED = object()


def _uninitialized(graph: Graph, n: int):
    raise UninitializedVariableError(
        f"variable '{graph.name(n)}' is used before it was initialized; run "
        "gc.global_variables_initializer() (or v.initializer) in this session first")


def run_error(graph: Graph, n: int, shapes: list, err: Exception) -> GraphcError:
    """A run-time failure of node ``n`` as a graphc error naming the op, node, call site and shapes."""
    kind = ShapeError if isinstance(err, (ValueError, IndexError)) else GraphcError
    return kind(f"{graph.op(n)} '{graph.name(n)}' (built at {graph.trace(n)}) failed at run time on "
                f"inputs of shapes {shapes}: {err}")


def _check_value(graph: Graph, n: int, out: np.ndarray) -> None:
    spec = graph.spec(n)
    if out.dtype != spec.dtype or out.ndim != len(spec.shape) or any(
            d is not None and d != s for d, s in zip(spec.shape, out.shape)):
        raise GraphError(f"op {graph.op(n)} '{graph.name(n)}' produced {out.dtype.name}{list(out.shape)} "
                         f"but its spec is {spec}: the op's reference or shape rule is wrong")
