"""``Session``: runs fetches of a graph with feeds, holding variable values across runs.

    >>> import graphc as gc
    >>> a = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> with gc.Session() as sess:
    ...     sess.run(a + a).tolist()
    [[2.0, 4.0], [6.0, 8.0]]
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from . import dtypes as _dt
from .errors import DtypeError, FeedError, FetchError, ShapeError
from .interpreter import evaluate
from .ir import Graph, Operation, Tensor, get_default_graph


class Session:
    """Runs parts of a graph (``run(fetches, feed_dict)``); variables live in the session.

    Each distinct (fetches, fed tensors) pair is prepared once: the graph is
    optimized by ``graphc.passes`` (``optimize=False`` skips that) and
    compiled by ``graphc.runtime`` (``executor="compiled"``, the default) or
    run by the numpy reference interpreter (``executor="reference"``; the
    environment variable ``GRAPHC_EXECUTOR`` sets the default).
    """

    def __init__(self, graph: Graph | None = None, *, optimize: bool = True,
                 executor: str | None = None, config: Any = None):
        self.graph = graph if graph is not None else get_default_graph()
        self.optimize = optimize
        self.executor = executor or os.environ.get("GRAPHC_EXECUTOR", "compiled")
        if self.executor not in ("compiled", "reference"):
            raise ValueError(f"Session: executor must be 'compiled' or 'reference', got {self.executor!r}")
        self.state: dict[str, np.ndarray] = {}
        self._runs = 0
        self._closed = False
        self._programs: dict[tuple, Callable] = {}

    # -- context manager / lifecycle ---------------------------------------------------------------
    def __enter__(self) -> "Session":
        self._default_cm = self.graph.as_default()
        self._default_cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._default_cm.__exit__(*exc)
        self.close()

    def close(self) -> None:
        self._closed = True

    def as_default(self):
        return self.graph.as_default()

    # -- running -------------------------------------------------------------------------------------
    def run(self, fetches, feed_dict: dict | None = None, options=None, run_metadata=None):
        """Evaluate ``fetches`` (a tensor, op, name, or a list/tuple/dict nesting of them).

        Returns values in the same structure; runnable ops (``gc.group``,
        initializers) give ``None``. Variable updates commit only if the whole
        run succeeds.
        """
        if self._closed:
            raise RuntimeError("this Session is closed; create a new gc.Session()")
        flat, rebuild = _flatten(fetches)
        nodes = [self._fetch_node(f) for f in flat]
        feeds = self._feeds(feed_dict or {})
        values, updates = self._execute(nodes, feeds)
        self.state.update(updates)
        self._runs += 1
        for v in updates.values():
            v.flags.writeable = False  # state is replaced, never written in place
        out = []
        for f, n, v in zip(flat, nodes, values):
            if isinstance(f, Operation) or self.graph.op(n) == "group":
                out.append(None)
            else:
                v = np.asarray(v)
                # read-only values belong to the graph or the variable state: hand out a copy
                out.append(v if v.flags.writeable else v.copy())
        return rebuild(out)

    def _execute(self, nodes: list[int], feeds: dict[int, np.ndarray]):
        key = (tuple(nodes), tuple(sorted(feeds)))
        program = self._programs.get(key)
        if program is None:
            program = self._programs[key] = self._prepare(list(nodes), sorted(feeds))
        return program(feeds, self.state, self._runs)

    def _prepare(self, nodes: list[int], fed: list[int]) -> Callable:
        """Optimize and compile the subgraph a run needs; returns run(feeds, state, key)."""
        graph, fetches = self.graph, nodes
        if self.optimize:
            from .passes import optimize
            graph, report = optimize(self.graph, nodes, feeds=fed)
            fetches = report.fetches
        if self.executor == "compiled":
            from . import runtime
            exe = runtime.compile(graph, fetches, feeds=fed)
            return exe.run

        def run(feeds, state, key):
            res = evaluate(graph, fetches, feeds, state, run_key=key)
            return res.values, res.updates
        return run

    def _fetch_node(self, f) -> int:
        if isinstance(f, str):
            try:
                return self.graph.by_name(f)
            except KeyError:
                raise FetchError(f"fetch {f!r}: no tensor or op of that name in the session's graph") from None
        if isinstance(f, (Tensor, Operation)):
            if f.graph is not self.graph:
                raise FetchError(f"fetch {f!r} belongs to another graph than this session's; create the "
                                 "session with gc.Session(graph=that_graph)")
            if f.node not in self.graph:
                raise FetchError(f"fetch of node {f.node} ({type(f).__name__}): it is no longer in the "
                                 "session's graph (removed after it was built)")
            return f.node
        if hasattr(f, "_as_tensor"):
            return self._fetch_node(f._as_tensor())
        raise FetchError(f"cannot fetch {f!r} (a {type(f).__name__}): fetches must be tensors, ops, "
                         "names, or lists/tuples/dicts of them")

    def _feeds(self, feed_dict: dict) -> dict[int, np.ndarray]:
        out = {}
        for key, value in feed_dict.items():
            n = self._fetch_node(key)
            out[n] = convert_feed(self.graph, n, value)
        return out


def convert_feed(graph: Graph, n: int, value) -> np.ndarray:
    """Check and convert a fed value for node ``n`` (dtype cast only where no meaning is lost)."""
    spec = graph.spec(n)
    name = graph.name(n)
    if isinstance(value, Tensor):
        raise FeedError(f"feed for '{name}' is a symbolic tensor ({value.name}); feed numpy arrays or "
                        "Python values (run the tensor first)")
    arr = np.asarray(value)
    if arr.dtype != spec.dtype:
        if arr.dtype == object or not (np.can_cast(arr.dtype, spec.dtype, "same_kind") or arr.dtype.kind == "b"):
            raise DtypeError(f"feed for '{name}' has dtype {arr.dtype}, but '{name}' is "
                             f"{spec.dtype.name}; convert it with .astype('{spec.dtype.name}')")
        arr = arr.astype(spec.dtype)
    if arr.ndim != len(spec.shape) or any(d is not None and d != s for d, s in zip(spec.shape, arr.shape)):
        raise ShapeError(f"feed for '{name}' has shape {arr.shape}, but '{name}' expects "
                         f"{_shape_str(spec.shape)} (None = any size)")
    _dt.as_dtype(arr.dtype)
    return arr


def _shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _flatten(fetches):
    """Flatten a nest of lists/tuples/dicts into a list and return a function rebuilding it."""
    flat: list = []

    def walk(x):
        if isinstance(x, dict):
            keys = list(x.keys())
            subs = [walk(x[k]) for k in keys]
            return lambda it: type(x)((k, s(it)) for k, s in zip(keys, subs)) if type(x) is not dict \
                else {k: s(it) for k, s in zip(keys, subs)}
        if isinstance(x, (list, tuple)) and not isinstance(x, Tensor):
            subs = [walk(v) for v in x]
            if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
                return lambda it: type(x)(*[s(it) for s in subs])
            return lambda it: type(x)(s(it) for s in subs)
        flat.append(x)
        return lambda it: next(it)

    build = walk(fetches)
    return flat, lambda values: build(iter(values))

