"""``Session``: runs fetches of a graph with feeds, holding variable values across runs.

    >>> import graphc as gc
    >>> a = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> with gc.Session() as sess:
    ...     sess.run(a + a).tolist()
    [[2.0, 4.0], [6.0, 8.0]]
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable

import numpy as np

from . import config as _config
from . import dtypes as _dt
from .errors import DtypeError, FeedError, FetchError, ShapeError
from .interpreter import evaluate
from .ir import Graph, Operation, Tensor, get_default_graph
from .ops.registry import get_op


class Session:
    """Runs parts of a graph (``run(fetches, feed_dict)``); variables live in the session.

    Each distinct (fetches, fed tensors) pair is prepared once: the graph is
    optimized by ``graphc.passes`` (``optimize=False`` skips that) and
    compiled by ``graphc.runtime`` (``executor="compiled"``, the default) or
    run by the numpy reference interpreter (``executor="reference"``).

    ``config``: a ``graphc.config.Config`` (default: ``graphc.config.get()`` when the session is
    created), or a dict of changes to it; the session's programs are compiled under it.
    ``executor`` overrides its ``executor`` field.

        >>> import graphc as gc
        >>> gc.Session(config={"threads": 1}).config.threads
        1
    """

    def __init__(self, graph: Graph | None = None, *, optimize: bool = True,
                 executor: str | None = None, config: _config.Config | dict | None = None):
        self.graph = graph if graph is not None else get_default_graph()
        self.optimize = optimize
        if config is None:
            config = _config.get()
        elif isinstance(config, dict):
            config = _config.replace(_config.get(), **config)
        elif not isinstance(config, _config.Config):
            raise TypeError(f"Session: config must be a graphc.config.Config or a dict of settings "
                            f"({', '.join(_config.FIELDS)}), got {type(config).__name__}")
        if executor is not None:
            if executor not in ("compiled", "reference"):
                raise ValueError(f"Session: executor must be 'compiled' or 'reference', got {executor!r}")
            config = _config.replace(config, executor=executor)
        self.config = config
        self.executor = config.executor
        self.state: dict[str, np.ndarray] = {}
        self._runs = 0
        self._closed = False
        self._programs: dict[tuple, Callable] = {}
        self._fetch_plans: dict = {}
        self._feed_fast: dict = {}
        self._prepare_lock = threading.RLock()     # one thread prepares a program; others wait
        self._state_lock = threading.Lock()        # runs that update variables, one at a time
        self._updating: set = set()                # program keys whose runs update variables

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
        run succeeds. ``options`` and ``run_metadata`` (TensorFlow's tracing hooks) are not
        supported: anything but None raises.
        """
        if self._closed:
            raise RuntimeError("this Session is closed; create a new gc.Session()")
        if options is not None or run_metadata is not None:
            raise TypeError("Session.run: options= and run_metadata= are not supported by graphc (no "
                            "RunOptions/RunMetadata tracing); drop them, and use `graphc dump` or "
                            "Executable.bound.line_times to see what a run does")
        nodes, none_mask, rebuild = self._fetch_plan(fetches)
        feeds = self._feeds(feed_dict) if feed_dict else {}
        values = self._execute(nodes, feeds)
        return rebuild([None if skip else _own(v) for skip, v in zip(none_mask, values)])

    def _commit(self, updates: dict) -> None:
        if updates:
            for v in updates.values():
                v.flags.writeable = False  # state is replaced, never written in place
            self.state = {**self.state, **updates}  # one step: a concurrent run sees all or none
        self._runs += 1

    def _fetch_plan(self, fetches) -> tuple:
        """(fetch node ids, which fetches give None, rebuild) for a fetch structure; memoized for a
        tensor/op or a flat list/tuple of them (the node ids are re-checked against the graph)."""
        t = type(fetches)
        key = None
        if t is Tensor or t is Operation:
            key = fetches
        elif (t is list or t is tuple) and all(type(f) is Tensor or type(f) is Operation for f in fetches):
            key = (t, tuple(fetches))
        if key is not None:
            fp = self._fetch_plans.get(key)
            if fp is not None and all(n in self.graph for n in fp[0]):
                return fp
        flat, rebuild = _flatten(fetches)
        nodes = [self._fetch_node(f) for f in flat]
        none_mask = [isinstance(f, Operation) or self.graph.op(n) == "group" for f, n in zip(flat, nodes)]
        if key is not None:
            if t is Tensor or t is Operation:
                rebuild = _first
            else:
                rebuild = t
            if len(self._fetch_plans) > 512:
                self._fetch_plans.clear()
            self._fetch_plans[key] = (nodes, none_mask, rebuild)
        return nodes, none_mask, rebuild

    def _execute(self, nodes: list[int], feeds: dict[int, np.ndarray]):
        """Run a program and commit its updates. Runs that update variables hold the session's
        state lock from reading the variables to committing, so concurrent training steps apply
        one after another, each seeing all of the steps before it (in the order they take the
        lock); runs that only read (predict, evaluate) run at once, each on one state snapshot."""
        key = (tuple(nodes), tuple(sorted(feeds)))
        program = self._programs.get(key) or self._program(key)
        if key in self._updating:
            with self._state_lock:
                values, updates = program(feeds, self.state, self._runs)
                self._commit(updates)
        else:
            values, updates = program(feeds, self.state, self._runs)
            self._commit(updates)
        return values

    def _program(self, key: tuple) -> Callable:
        """The program for ``key`` = (fetch nodes, fed nodes), prepared once (thread-safe)."""
        with self._prepare_lock:
            program = self._programs.get(key)
            if program is None:
                program = self._programs[key] = self._prepare(list(key[0]), list(key[1]))
            return program

    def make_callable(self, fetches, feed_list=None, accept_options: bool = False) -> Callable:
        """A function running ``fetches`` with the values of ``feed_list`` as positional arguments
        (``tf.Session.make_callable``): ``step = sess.make_callable([train, loss], [x, y]);
        _, l = step(xb, yb)``. Same results, errors and state commits as ``run``, with the
        fetch structure, program and feed checks resolved once: a call checks each value's
        dtype, rank and fixed dimensions and runs the compiled program.

        The callable also has ``run_steps(batches, on_step=None)``: one call per entry of
        ``batches`` (each a sequence of feed values), committing each step's updates before the
        next; returns the list of per-step results.
        """
        if self._closed:
            raise RuntimeError("this Session is closed; create a new gc.Session()")
        if accept_options:
            raise TypeError("Session.make_callable: accept_options=True is not supported by graphc "
                            "(no RunOptions/RunMetadata); leave it False")
        nodes, none_mask, rebuild = self._fetch_plan(fetches)
        feed_list = list(feed_list or [])
        feed_nodes = [self._fetch_node(f) for f in feed_list]
        if len(set(feed_nodes)) != len(feed_nodes):
            raise FeedError(f"make_callable: feed_list names a tensor twice: {feed_list}")
        fed = sorted(feed_nodes)
        key = (tuple(nodes), tuple(fed))
        program = self._programs.get(key) or self._program(key)
        return _make_callable(self, program, nodes, none_mask, rebuild, feed_nodes, fed)

    def _prepare(self, nodes: list[int], fed: list[int]) -> Callable:
        """Optimize and compile the subgraph a run needs; returns run(feeds, state, key)."""
        graph, fetches = self.graph, nodes
        if self.optimize:
            from .passes import optimize
            graph, report = optimize(self.graph, nodes, feeds=fed)
            fetches = report.fetches
        if any(get_op(graph.op(n)).state_update is not None
               for n in graph.ancestors(fetches, stop=fed)):
            self._updating.add((tuple(nodes), tuple(fed)))
        if self.executor == "compiled":
            from . import runtime
            exe = runtime.compile(graph, fetches, feeds=fed, config=self.config)
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
        fast = self._feed_fast
        for key, value in feed_dict.items():
            hit = fast.get(key) if type(key) is Tensor else None
            if hit is not None and hit[0] in self.graph:
                n, dt, shape = hit
                if type(value) is np.ndarray and value.dtype == dt and len(value.shape) == len(shape) \
                        and all(d is None or d == s for d, s in zip(shape, value.shape)):
                    out[n] = value
                    continue
            n = self._fetch_node(key)
            out[n] = convert_feed(self.graph, n, value)
            if type(key) is Tensor:
                spec = self.graph.spec(n)
                fast[key] = (n, spec.dtype, tuple(spec.shape))
        return out


def convert_feed(graph: Graph, n: int, value) -> np.ndarray:
    """Check and convert a fed value for node ``n`` (dtype cast only where no meaning is lost)."""
    spec = graph.spec(n)
    name = graph.name(n)
    if isinstance(value, Tensor):
        raise FeedError(f"feed for '{name}' is a symbolic tensor ({value.name}); feed numpy arrays or "
                        "Python values (run the tensor first)")
    try:
        arr = np.asarray(value)
    except ValueError as e:         # ragged nested lists
        raise FeedError(f"feed for '{name}' is not a rectangular array ({e}); feed a numpy array of "
                        f"shape {_shape_str(spec.shape)}") from None
    if arr.dtype != spec.dtype:
        if arr.dtype == object or not (np.can_cast(arr.dtype, spec.dtype, "same_kind") or arr.dtype.kind == "b"):
            raise DtypeError(f"feed for '{name}' has dtype {arr.dtype}, but '{name}' is "
                             f"{spec.dtype.name}; convert it with .astype('{spec.dtype.name}')")
        with np.errstate(over="ignore", invalid="ignore"):
            cast = arr.astype(spec.dtype)
        _check_cast(name, arr, cast, spec.dtype)
        arr = cast
    if arr.ndim != len(spec.shape) or any(d is not None and d != s for d, s in zip(spec.shape, arr.shape)):
        raise ShapeError(f"feed for '{name}' has shape {arr.shape}, but '{name}' expects "
                         f"{_shape_str(spec.shape)} (None = any size)")
    _dt.as_dtype(arr.dtype)
    return arr


def _check_cast(name: str, arr: np.ndarray, cast: np.ndarray, dtype: np.dtype) -> None:
    """A narrowing cast of a feed must not change values: integers out of range would wrap
    (2**40 + 5 became 5 in int32) and finite floats beyond float32's range would become inf."""
    if not arr.size:
        return
    if dtype.kind in "iu" and arr.dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            bad = hi if hi > info.max else lo
            raise FeedError(f"feed for '{name}' holds {bad}, outside {dtype.name}'s range "
                            f"[{info.min}, {info.max}]; '{name}' is {dtype.name}: use a wider dtype")
    elif dtype.kind == "f" and arr.dtype.kind == "f":
        grew = np.isinf(cast) & np.isfinite(arr)
        if grew.any():
            raise FeedError(f"feed for '{name}' holds {float(arr[grew].flat[0])!r}, beyond {dtype.name}'s range "
                            f"(it would become inf); '{name}' is {dtype.name}")


def _shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _own(v):
    """A fetched value the caller may keep: read-only values (constants, variable state) are copied."""
    v = np.asarray(v)
    return v if v.flags.writeable else v.copy()


def _first(values):
    return values[0]


def _make_callable(sess: Session, program, nodes, none_mask, rebuild, feed_nodes, fed):
    """Generate the straight-line function behind ``Session.make_callable``."""
    from .runtime.emit import Source
    g = sess.graph
    exe = getattr(program, "__self__", None)
    run_list = getattr(exe, "run_list", None)
    src = Source({"np": np, "ndarray": np.ndarray, "sess": sess, "program": program, "run_list": run_list,
                  "_own": _own, "rebuild": rebuild})
    pos = {n: i for i, n in enumerate(feed_nodes)}
    with src.block(f"def call({', '.join(f'a{i}' for i in range(len(feed_nodes)))}):"):
        with src.block("if sess._closed:"):
            src.add("raise RuntimeError('this Session is closed; create a new gc.Session()')")
        for i, n in enumerate(feed_nodes):       # the fast check; anything else goes through convert_feed
            spec = g.spec(n)
            dt = src.bind(spec.dtype, "D")
            conds = [f"type(a{i}) is ndarray", f"(a{i}.dtype is {dt} or a{i}.dtype == {dt})",
                     f"a{i}.ndim == {len(spec.shape)}"]
            conds += [f"a{i}.shape[{ax}] == {d}" for ax, d in enumerate(spec.shape) if d is not None]
            with src.block(f"if not ({' and '.join(conds)}):"):
                src.add(f"a{i} = {src.bind((lambda n: lambda v: convert_feed(g, n, v))(n), 'slow')}(a{i})")
        with contextlib.ExitStack() as locked:     # as Session._execute: updating runs one at a time
            if (tuple(nodes), tuple(fed)) in sess._updating:
                locked.enter_context(src.block("with sess._state_lock:"))
            if run_list is not None and list(exe.feeds) == list(fed):
                src.add(f"values, updates = run_list([{', '.join(f'a{pos[n]}' for n in fed)}], "
                        "sess.state, sess._runs)")
            else:
                src.add(f"values, updates = program({{{', '.join(f'{n}: a{pos[n]}' for n in fed)}}}, "
                        "sess.state, sess._runs)")
            src.add("sess._commit(updates)")
        outs = ", ".join("None" if skip else f"_own(values[{k}])" for k, skip in enumerate(none_mask))
        src.add(f"return rebuild([{outs}])")
    call = src.function("call", f"<graphc make_callable {id(src):x}>")

    def run_steps(batches, on_step=None):
        """``[call(*b) for b in batches]`` (each step's updates committed before the next)."""
        out = []
        for i, b in enumerate(batches):
            r = call(*b)
            out.append(r)
            if on_step is not None:
                on_step(i, r)
        return out

    call.run_steps = run_steps
    call.feed_list = list(feed_nodes)
    return call


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

