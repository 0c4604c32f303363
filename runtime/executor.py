"""The executor: ``compile(graph, fetches, feeds)`` -> ``Executable``; ``run`` has the interpreter's semantics.

Per set of feed shapes the graph is lowered once (``lower.lower``) to a Plan,
its buffers are allocated, and a *driver* is generated: a straight-line Python
function calling every kernel with its prebound arguments (preallocated
buffer views and constants are bound as globals of the driver; only feeds,
variables and reference results are looked up per run; ``bound.py``). Shape sets are cached,
so a repeated batch size costs one dict lookup; a new batch size re-plans but
never recompiles a kernel (kernels are specialised on dtype and rank only). An Executable keeps
the ``graphc.config.Config`` it was created under and binds every shape set under it.

Variables: ``variable`` reads see ``state`` as it was at the start of the run;
assign / assign_add / assign_sub apply in schedule order, each seeing earlier
ones of the same run; the new values are returned in ``updates`` (fresh
arrays), and nothing is written to ``state``.

    >>> import numpy as np, graphc as gc
    >>> from graphc.runtime import compile
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     x = gc.placeholder("float32", (None,), name="x"); y = x * 2.0 + 1.0
    >>> exe = compile(g, [y.node], [x.node])
    >>> exe.run({x.node: np.arange(3, dtype=np.float32)}, {}, 0)[0][0].tolist()
    [1.0, 3.0, 5.0]
"""
from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
import warnings

import numpy as np

from graphc import config as _config
from graphc.errors import GraphError, KernelFallbackWarning, UninitializedVariableError
from graphc.interpreter import evaluate, schedule
from graphc.ir import Graph

from . import cache
from .bound import Bound, NeedsInterpreter
from .lower import Plan, bind_schedule, complete, lower, mixed


# a partial swap once the landed kernels not swapped in yet save this share of the baseline's time
PARTIAL_SWAP_SHARE = 0.1
# the background compile waits this long for the baseline's first run to order the kernels by
PROFILE_WAIT_S = 2.0
# a tier swap waits this long for the executable's next run to make it between two steps; after
# that (no run came: a loop ended, or one step takes longer) its background thread makes it
BETWEEN_RUNS_WAIT_S = 0.5


def numba_imported() -> bool:
    """Whether this process has imported numba (~0.15 s, which a cold plan's first step does not
    wait for: ``Executable._baseline_tier``)."""
    return "numba" in sys.modules


class FirstRunTimes:
    """The seconds each call of a baseline plan takes in its first run (``seconds``, by node;
    ``ready`` is set when the first run of the driver ``watch`` wraps returns). The plan's calls
    are wrapped for that run; ``watch`` then puts the unwrapped calls back in the driver's
    globals (a flag check per call cost the MNIST MLP's baseline step ~3%, 34 calls). Measured on
    the MNIST CNN's baseline step (19 ms): its two max-pool gradients' numpy references took
    8 ms, the elementwise programs on the same elements well under 1 ms each; sizes alone did
    not tell them apart."""

    def __init__(self, plan: Plan):
        self.seconds: dict[int, float] = {}
        self.ready = threading.Event()
        self._wrapped: dict[int, object] = {}       # id(timed wrapper) -> the call it wraps
        for s in plan.steps:
            if s.kind == "call" and s.call is not None:
                s.call.steps = [(self._timed(fn, s.node), d) for fn, d in s.call.steps]

    def _timed(self, fn, node: int):
        seconds, ready = self.seconds, self.ready

        @functools.wraps(fn)
        def timed(*args):
            if ready.is_set():
                return fn(*args)
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                seconds[node] = seconds.get(node, 0.0) + time.perf_counter() - t
        self._wrapped[id(timed)] = fn
        return timed

    def _unwrap(self, names: dict) -> None:
        """Every timed wrapper among ``names`` (a driver's globals) replaced by its call."""
        for name, v in list(names.items()):
            fn = self._wrapped.get(id(v))
            if fn is not None and getattr(v, "__wrapped__", None) is fn:
                names[name] = fn

    def watch(self, driver, second=None, names: dict | None = None):
        """``driver`` (the baseline Bound's), setting ``ready`` when its first run returns, and
        calling ``second()`` (once) when a later run starts. ``names``: the driver's globals, from
        which the timed wrappers are then removed."""
        ready = self.ready
        pending = [second] if second is not None else []

        def first_run(F, state, run_key):
            if pending and ready.is_set():
                try:
                    start = pending.pop()       # atomic: one of two threads gets it
                except IndexError:
                    pass
                else:
                    start()
            try:
                return driver(F, state, run_key)
            finally:
                if not ready.is_set():
                    ready.set()
                    if names is not None:
                        self._unwrap(names)
        return first_run


def _by_benefit(binding, baseline: Plan, todo: list, seconds: dict | None = None) -> dict:
    """``todo``'s kernel pairs, the most valuable first, each with the baseline time it saves:
    its calls' ``seconds`` in the baseline's first run (split among the kernels a call needs).
    Without a measurement (no run within ``PROFILE_WAIT_S``) each call's elements read and
    written stand in, four times over where the baseline runs the op's plain numpy reference
    rather than a generated numpy program."""
    base = baseline._by_node
    wanted = set(todo)
    weights = dict.fromkeys(todo, 0.0)
    calls = [(st, [p for p in dict.fromkeys((d, tuple(sig)) for d, sig in st.call.warm) if p in wanted])
             for st in binding.steps if st.kind == "call"]
    calls = [(st, pairs) for st, pairs in calls if pairs]
    # a run's times, if it timed every call that matters (a first run that raised part way did not)
    seconds = seconds if seconds and all(st.node in seconds for st, _ in calls) else None
    for st, pairs in calls:
        if seconds:
            cost = seconds.get(st.node, 0.0)
        else:
            ctx = binding.contexts[st.node]
            elements = sum(int(np.prod(s, dtype=np.int64)) for s in [ctx.out_shape] + list(ctx.in_shapes)
                           if s is not None)
            b = base.get(st.node)
            cost = elements * (4.0 if b is not None and b.call is not None and b.call.name.startswith("ref:")
                               else 1.0)
        for p in pairs:
            weights[p] += cost / len(pairs)
    return dict(sorted(weights.items(), key=lambda kv: -kv[1]))


class BetweenRuns:
    """Work that tiered execution's background threads hand to the thread making an executable's
    next run, done before that run starts: binding a plan, loading landed kernels and installing
    a swapped plan happen between two steps, not beside them. Python on a background thread
    beside running steps takes the GIL from them whenever they release it (every numpy call
    does), and then holds it for up to a switch interval: binding the MNIST LSTM's plan (0.25 s,
    numba's import included) there made its cold 3-epoch ``fit`` 2-5% slower than binding it
    before the first step. ``call(fn)`` returns ``fn()``'s result (or raises its error) once a
    run has done it, or does it itself when no run has started within ``wait_s``; the runs call
    ``run_pending()``."""

    def __init__(self, wait_s: float | None = None):
        self.wait_s = BETWEEN_RUNS_WAIT_S if wait_s is None else wait_s
        self.jobs: list = []            # (checked by every run: empty almost always)
        self._lock = threading.Lock()

    def call(self, fn):
        job = _Job(fn)
        with self._lock:
            self.jobs.append(job)
        if not job.done.wait(self.wait_s):
            job.run()                   # no run took it: here (nothing, if one took it just now)
            job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def run_pending(self) -> None:
        with self._lock:
            jobs, self.jobs = self.jobs, []
        for job in jobs:
            job.run()


class _Job:
    __slots__ = ("fn", "done", "claim", "result", "error")

    def __init__(self, fn):
        self.fn, self.done, self.claim = fn, threading.Event(), threading.Lock()
        self.result = self.error = None

    def run(self) -> None:
        if not self.claim.acquire(blocking=False):      # taken by the other thread
            return
        try:
            self.result = self.fn()
        except BaseException as e:      # noqa: BLE001 - raised again in the waiting thread
            self.error = e
        finally:
            self.done.set()


class Executable:
    """A compiled graph: ``run(feed_values, state, run_key) -> (fetch values, updates)``."""

    def __init__(self, graph: Graph, fetches, feeds=(), config: _config.Config | None = None):
        self.graph = graph
        self.config = config if config is not None else _config.get()
        self.fetches = [int(f) for f in fetches]
        self.feeds = [int(f) for f in feeds]
        self._bound: dict[tuple, Bound | None] = {}     # shape set -> its first binding
        self._free: dict[tuple, list] = {}               # shape set -> bindings no run is using
        self._used: dict[tuple, int] = {}                # shape set -> run key of its latest run
        self._lock = threading.Lock()                    # planning and binding
        self.extra_bindings = 0     # buffer sets bound because every other was in use by a thread
        self._compiling: list[threading.Thread] = []     # tiered execution's background compiles
        self.tier_swaps = 0         # shape sets moved from the reference tier to compiled kernels
        self.tier_partial_swaps = 0     # plans with some kernels landed swapped in before that
        self._last: Bound | None = None
        self._order: list | None = None                  # the run's schedule, made on first bind
        self._marker: str | None = None                  # cache.plan_key of this executable's plan
        self._unbound: threading.Event | None = None     # set when the child binding its plan is done
        self._starts: list = []             # the baseline tier's compile starts (_baseline_tier)
        self._between = BetweenRuns()       # tier swaps made between two runs
        self._start_lock = threading.Lock()
        self._feed_dtypes = {f: graph.spec(f).dtype for f in self.feeds}

    # -- planning ----------------------------------------------------------------------------------
    def prepare(self, feed_shapes: dict) -> Plan | None:
        """Plan, allocate and bind for one set of feed shapes (done on first use otherwise)."""
        key = tuple(tuple(feed_shapes[f]) for f in self.feeds)
        b = self._get(key)
        return b.plan if b is not None else None

    def _get(self, key: tuple) -> Bound | None:
        with self._lock:
            b = self._bound.get(key, False)
            if b is False:
                try:
                    with _config.use(self.config):
                        b = self._bind(key)
                except NeedsInterpreter:
                    b = None
                if b is not None:
                    self._free[key] = [b]
                self._bound[key] = b
                self._used.setdefault(key, -1)      # run_list set it to this run's key
                self._evict()
        if b is not None:
            self._last = b
        return b

    def _evict(self) -> None:
        """Keep at most ``config.shape_sets`` bound shape sets, dropping the least recently run (a
        server seeing many batch sizes grew by every one: 500 sizes of one small graph held ~1 GB
        of buffers). A dropped shape set is planned again if it comes back; kernels stay compiled."""
        while len(self._bound) > self.config.shape_sets:
            old = min(list(self._used.items()), key=lambda kv: kv[1])[0]    # a copy: runs write it
            for d in (self._bound, self._free, self._used):
                d.pop(old, None)

    def _bind(self, key: tuple) -> Bound:
        """Lower and bind shape set ``key``. Tiered execution (``config.tiered``): when some of the
        plan's kernels are not in the disk cache, the plan first runs on its numpy references
        while a child process compiles them; a background thread then loads them, binds the
        compiled plan and swaps it in between two runs (``_swap_in``). In a process that has not
        imported numba, a plan not marked compiled (``cache.plan_compiled``) is not bound here at
        all: its compile child binds it (``_baseline_tier``)."""
        shapes = dict(zip(self.feeds, key))
        if self._order is None:     # the schedule: the same for every shape set (~45% of a bind)
            self._order = schedule(self.graph, self.fetches, {n: None for n in self.feeds})
        tiered = self.config.tiered and cache.can_compile_in_background()
        if tiered and not numba_imported() and not cache.plan_compiled(self._plan_key()):
            return self._baseline_tier(key, shapes)
        binding = bind_schedule(self.graph, self.fetches, self.feeds, shapes, order=self._order)
        if tiered:
            todo = cache.cold(binding.kernels())
            if todo:
                # one BLAS thread: the compile child has the other core (a GEMM split over two
                # threads waits for the half that shares a core with it; MNIST MLP baseline epochs
                # 0.37-0.46 s with numpy's two threads, 0.13 s with one)
                plan = lower(self.graph, self.fetches, self.feeds, shapes, reference_only=True,
                             order=self._order)
                timing = FirstRunTimes(plan)
                baseline = Bound(self, plan, self.config, serial_blas=True)
                timing.seconds.clear()          # view ops called while binding
                baseline.driver = timing.watch(baseline.driver, names=baseline.globals)
                t = threading.Thread(target=self._swap_in, args=(key, binding, todo, baseline, timing),
                                     daemon=True, name=f"graphc-compile-{len(todo)}-kernels")
                self._compiling.append(t)
                t.start()
                return baseline
        b = Bound(self, complete(binding), self.config)
        cache.mark_plan_compiled(self._plan_key())
        return b

    def _plan_key(self) -> str:
        if self._marker is None:
            self._marker = cache.plan_key((self.graph, self.fetches, self.feeds, self.config))
        return self._marker

    def _baseline_tier(self, key: tuple, shapes: dict) -> Bound:
        """Shape set ``key`` on its numpy references, in a process that has not imported numba,
        while a compile child binds the plan and compiles its kernels (``_swap_in_unbound``); the
        executable's later shape sets wait for that child, then bind as usual (``_swap_in_after``).
        Whether the plan has kernels at all is not known here: the child starts with the plan's
        second run, so a plan run once (a variable initializer) starts none (the MNIST MLP's two
        initializers' children took the first 0.4 s of its training steps from 0.4 to 0.8 ms)."""
        plan = lower(self.graph, self.fetches, self.feeds, shapes, reference_only=True, order=self._order)
        timing = FirstRunTimes(plan)
        baseline = Bound(self, plan, self.config, serial_blas=True)
        timing.seconds.clear()

        started = []

        def start():        # at the second run, or when wait_compiled is called
            with self._start_lock:
                if started:
                    return
                started.append(True)
                first = self._unbound is None
                if first:
                    self._unbound = threading.Event()
                t = threading.Thread(target=self._swap_in_unbound if first else self._swap_in_after,
                                     args=(key, shapes, baseline, timing), daemon=True,
                                     name="graphc-compile-unbound")
                self._compiling.append(t)
            t.start()
        self._starts.append(start)
        baseline.driver = timing.watch(baseline.driver, second=start, names=baseline.globals)
        return baseline

    def _swap_in(self, key: tuple, binding, todo: list, baseline: Bound, timing) -> None:
        """Background thread of tiered execution: compile ``todo`` in a child process, then bind
        the compiled plan and make it the one the next run of ``key`` takes. The kernels compile
        in the order of the baseline time they save (``_by_benefit``, from the baseline's first
        run, ``timing``); as they land, plans that run those already (``lower.mixed``) are swapped
        in whenever the landed ones not yet swapped in cover ``PARTIAL_SWAP_SHARE`` of it. A failed
        or hung compile leaves the shape set on its reference tier (or its last partial plan), with
        one warning naming the kernels."""
        ready, swapped, weights = set(), set(), {}

        def rank(pairs):        # called once the child is started: its import overlaps the wait
            timing.ready.wait(PROFILE_WAIT_S)
            weights.update(_by_benefit(binding, baseline.plan, pairs, dict(timing.seconds)))
            return list(weights)

        def landed(pair):
            ready.add(pair)
            self._between_runs(self._swap_landed, key, binding, baseline, ready, swapped, weights, len(todo))
        try:
            # a new thread starts with an empty context: the executable's config (cache folder,
            # compile_jobs) is put in force here, for the child and every lock and load
            with _config.use(self.config):
                if not cache.compile_in_background(todo, on_done=landed, rank=rank):
                    failed = cache.cold(todo)
                    raise RuntimeError("the compile process failed or hung on "
                                       f"{', '.join(d.py_func.__name__ for d, _ in failed) or 'a kernel'}")
        except Exception as e:      # noqa: BLE001 - reported, and the reference tier keeps running
            warnings.warn(f"graphc: background compile of {len(todo)} kernels failed ({type(e).__name__}: "
                          f"{e}); this plan keeps running its numpy references", KernelFallbackWarning)
            return
        self._swap_in_compiled(key, binding)

    def _swap_in_unbound(self, key: tuple, shapes: dict, baseline: Bound, timing) -> None:
        """``_swap_in`` for a plan this process has not bound: its compile child binds it
        (``cache.bind_in_background``). This process binds it (importing numba) once a kernel has
        landed, to swap in plans running the landed kernels as ``_swap_in`` does, or once the child
        is done; kernels still cold then (the child failed) leave the baseline tier, with one
        warning naming them."""
        state: dict = {"todo": [], "binding": None, "pairs": {}}
        ready, swapped, weights = set(), set(), {}

        def binding():      # (numba imported here when first needed: between two runs)
            if state["binding"] is None:
                b = bind_schedule(self.graph, self.fetches, self.feeds, shapes, order=self._order)
                state["pairs"] = {cache.entry_key(d, s): (d, s) for d, s in b.kernels()}
                state["binding"] = b
            return state["binding"]

        def seconds():
            timing.ready.wait(PROFILE_WAIT_S)
            return dict(timing.seconds)

        def land(entry):
            b = binding()
            pairs = state["pairs"]
            if not weights:
                weights.update(_by_benefit(b, baseline.plan, [pairs[e] for e in state["todo"] if e in pairs],
                                           dict(timing.seconds)))
            if entry in pairs:
                ready.add(pairs[entry])
                self._swap_landed(key, b, baseline, ready, swapped, weights, len(weights))

        def landed(entry):
            self._between_runs(land, entry)
        try:
            with _config.use(self.config):
                job = {"plan": {"graph": self.graph, "fetches": self.fetches, "feeds": self.feeds,
                                "shapes": shapes, "order": self._order, "config": self.config,
                                "marker": self._plan_key()}}
                try:
                    ok = cache.bind_in_background(job, seconds, state["todo"].extend, landed)
                finally:
                    self._unbound.set()
                todo = self._between_runs(lambda: cache.cold(binding().kernels()))
                if todo and not ok:
                    raise RuntimeError("the compile process failed or hung on "
                                       f"{', '.join(d.py_func.__name__ for d, _ in todo)}")
        except Exception as e:      # noqa: BLE001 - reported, and the reference tier keeps running
            warnings.warn(f"graphc: background compile of {len(state['todo']) or 'its'} kernels failed "
                          f"({type(e).__name__}: {e}); this plan keeps running its numpy references",
                          KernelFallbackWarning)
            return
        if todo:        # bound here otherwise than the child bound it: compiled as any cold plan
            self._swap_in(key, binding(), todo, baseline, timing)
            return
        self._swap_in_compiled(key, binding())

    def _swap_in_after(self, key: tuple, shapes: dict, baseline: Bound, timing) -> None:
        """A later shape set of a plan bound by its compile child: once that child is done, bound
        here, and swapped in (its kernels, specialised on dtype and rank, are mostly compiled)."""
        self._unbound.wait()

        def bind():
            b = bind_schedule(self.graph, self.fetches, self.feeds, shapes, order=self._order)
            return b, cache.cold(b.kernels())
        try:
            binding, todo = self._between_runs(bind)
        except Exception as e:      # noqa: BLE001
            warnings.warn(f"graphc: binding a plan's kernels failed ({type(e).__name__}: {e}); this plan "
                          "keeps running its numpy references", KernelFallbackWarning)
            return
        if todo:
            self._swap_in(key, binding, todo, baseline, timing)
        else:
            self._swap_in_compiled(key, binding)

    def _swap_in_compiled(self, key: tuple, binding) -> None:
        """Swap in the plan running every kernel of ``binding`` (all compiled), between two runs."""
        self._between_runs(self._install_compiled, key, binding)

    def _between_runs(self, fn, *args):
        """``fn(*args)`` under this executable's configuration, made between two of its runs
        (``BetweenRuns``); returns its result."""
        def job():
            with _config.use(self.config):
                return fn(*args)
        return self._between.call(job)

    def _install_compiled(self, key: tuple, binding) -> None:
        try:
            b = Bound(self, complete(binding), self.config)
        except Exception as e:      # noqa: BLE001
            warnings.warn(f"graphc: loading a plan's compiled kernels failed ({type(e).__name__}: {e}); "
                          "this plan keeps running its numpy references", KernelFallbackWarning)
            return
        cache.mark_plan_compiled(self._plan_key())
        if self._install(key, b):
            self.tier_swaps += 1

    def _swap_landed(self, key: tuple, binding, baseline: Bound, ready: set, swapped: set, weights: dict,
                     total: int) -> None:
        """After a kernel landed: a partial swap (``_partial_swap``) when the landed kernels not in
        use yet save ``PARTIAL_SWAP_SHARE`` of the baseline's time (``weights``: the time each
        kernel compiling saves) and fewer than all ``total`` kernels have landed."""
        waiting = sum(weights.get(p, 0.0) for p in ready - swapped)
        if waiting >= PARTIAL_SWAP_SHARE * (sum(weights.values()) or 1.0) and len(ready) < total \
                and self.config.driver != "numba":      # (a jitted driver compiles per plan)
            swapped.update(self._partial_swap(key, binding, baseline, ready, swapped))

    def _install(self, key: tuple, b: Bound) -> bool:
        """Make ``b`` the binding the next run of ``key`` takes (a tier swap); runs in flight
        finish on their own buffers. False if the shape set was dropped meanwhile (shape_sets)."""
        with self._lock:
            if key not in self._bound:
                return False
            self._bound[key] = b
            self._free[key] = [b]
            self._last = b
            return True

    def _partial_swap(self, key: tuple, binding, baseline: Bound, ready: set, swapped: set) -> set:
        """Swap in a plan running the kernels in ``ready`` and the baseline tier's calls for the
        rest (still on one BLAS thread: the compile child has the other core). A landed kernel
        whose module the child has locked (it compiles the module's next kernel) waits for the next
        swap: loading it would wait for that compile. Returns the pairs the plan now runs."""
        if key not in self._bound:      # dropped meanwhile (config.shape_sets)
            return swapped
        loaded = set()
        for disp, sig in ready:
            with contextlib.suppress(Exception):        # busy, or failing: the final swap reports
                cache.ensure_compiled(disp, sig, wait=False)
                loaded.add((disp, sig))
        if loaded <= swapped:
            return swapped
        try:
            b = Bound(self, mixed(binding, baseline.plan, loaded), self.config, serial_blas=True)
        except Exception:       # noqa: BLE001 - the next swap, or the final one, reports real errors
            return swapped
        if not self._install(key, b):
            return swapped
        self.tier_partial_swaps += 1
        return loaded

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait for tiered execution's background compiles (starting those that wait for a plan's
        second run); True when none is left running."""
        for start in list(self._starts):
            start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in list(self._compiling):
            while t.is_alive():
                self._between.run_pending()     # this thread makes no run meanwhile
                left = 0.02 if deadline is None else min(0.02, deadline - time.monotonic())
                if left <= 0:
                    break
                t.join(left)
        self._between.run_pending()
        return not any(t.is_alive() for t in self._compiling)

    def _acquire(self, key: tuple) -> Bound | None:
        """A binding of shape set ``key`` that no other run is using: each concurrent run has
        buffers of its own (kernels release the GIL, so two runs in one buffer set would mix their
        intermediates). The plan is shared; only a thread that finds every binding busy binds one
        more (the pool grows to the number of runs at once, then stays)."""
        first = self._get(key)
        if first is None:
            return None
        with self._lock:
            free = self._free[key]
            if free:
                return free.pop()
            self.extra_bindings += 1
            with _config.use(self.config):
                return Bound(self, first.plan, self.config)

    @property
    def plan(self) -> Plan | None:
        """The Plan of the most recently run (or prepared) shape set; planned now if shapes are static."""
        if self._last is None:
            shapes = [self.graph.spec(f).shape for f in self.feeds]
            if all(d is not None for s in shapes for d in s):
                self.prepare({f: s for f, s in zip(self.feeds, shapes)})
        return self._last.plan if self._last is not None else None

    @property
    def bound(self) -> Bound | None:
        """The bound form (buffers, generated ``source``, ``segments``) of the latest shape set."""
        if self._last is None:
            self.plan  # noqa: B018
        return self._last

    @property
    def bound_shape_sets(self) -> int:
        return len(self._bound)

    # -- running -------------------------------------------------------------------------------------
    def run(self, feed_values: dict, state: dict, run_key: int = 0):
        """Run once; returns ``(list of fetch values, updates dict)`` like ``interpreter.evaluate``."""
        F = []
        for f in self.feeds:
            try:
                v = feed_values[f]
            except KeyError:
                raise KeyError(f"compiled for feeds {self.feeds}; node {f} "
                               f"({self.graph.name(f)}) was not fed") from None
            if not isinstance(v, np.ndarray):
                v = np.asarray(v)
            if v.dtype != self._feed_dtypes[f]:
                v = v.astype(self._feed_dtypes[f])
            F.append(v)
        return self.run_list(F, state, run_key)

    def run_list(self, F: list, state: dict, run_key: int = 0):
        """``run`` with the feed values as a list in ``self.feeds`` order, already numpy arrays of
        the fed nodes' dtypes (``Session.make_callable`` checks them); no conversion here.
        Thread-safe: concurrent runs use separate buffer sets (``_acquire``)."""
        if self._between.jobs:      # a tier swap waiting to be made between two runs
            self._between.run_pending()
        key = tuple([v.shape for v in F])
        free = self._free.get(key)
        self._used[key] = run_key
        try:
            b = free.pop()
        except (AttributeError, IndexError):     # a new shape set, or every binding in use
            b = self._acquire(key)
            if b is None:
                res = evaluate(self.graph, self.fetches, dict(zip(self.feeds, F)), state, run_key=run_key,
                               check=False)
                return res.values, res.updates
            free = self._free[key]
        try:
            return b.driver(F, state, run_key)
        except UninitializedVariableError:
            raise
        except Exception as kernel_error:
            self._kernel_failed(kernel_error, F, state, run_key)
        finally:
            cur = self._bound.get(key)
            if cur is not None and cur.plan is b.plan:      # not a plan a tier swap replaced meanwhile
                free.append(b)

    @contextlib.contextmanager
    def runner(self):
        """``run_list`` for a caller making many runs in a row (a loop's steps): the bindings it
        takes stay its own until the block ends, so each run is one call of the bound driver.
        Yields ``run(F) -> fetch values`` (no state: bodies read none)."""
        held: dict = {}
        empty: dict = {}

        def run(F):
            if self._between.jobs:
                self._between.run_pending()
            key = tuple([v.shape for v in F])
            b = held.get(key)
            if b is None:
                self._used[key] = 0
                b = held[key] = self._acquire(key)
            if b is None:       # shapes that depend on values: the interpreter
                return self.run_list(F, empty)[0]
            try:
                return b.driver(F, empty, 0)[0]
            except UninitializedVariableError:
                raise
            except Exception as kernel_error:
                self._kernel_failed(kernel_error, F, empty, 0)
        try:
            yield run
        finally:
            with self._lock:
                for key, b in held.items():
                    if b is not None and key in self._free:     # not evicted meanwhile
                        self._free[key].append(b)

    def _kernel_failed(self, kernel_error, F, state, run_key):
        # bad input (e.g. a label out of range): the reference raises the clear, named error
        evaluate(self.graph, self.fetches, dict(zip(self.feeds, F)), state, run_key=run_key, check=False)
        # the reference succeeded, so the compiled kernel is wrong: never hide that
        raise GraphError(f"compiled kernel failed where the reference interpreter succeeds "
                         f"({type(kernel_error).__name__}: {kernel_error}); this is a graphc bug, "
                         "run with gc.Session(executor='reference') meanwhile") from kernel_error

    def _uninit(self, node: int):
        raise UninitializedVariableError(
            f"variable '{self.graph.name(node)}' is used before it was initialized; run "
            "gc.global_variables_initializer() (or v.initializer) in this session first")

    def __repr__(self) -> str:
        return (f"<graphc.runtime.Executable: {len(self.fetches)} fetches, {len(self.feeds)} feeds, "
                f"{len(self._bound)} shape sets>")


def compile(graph: Graph, fetches, feeds=(), *, config: _config.Config | None = None,  # noqa: A001
            cache_dir: str | None = None) -> Executable:
    """Compile ``fetches`` (node ids) of ``graph`` given fed nodes ``feeds`` into an ``Executable``,
    bound under ``config`` (default: ``graphc.config.get()``, the configuration in force).

    ``cache_dir`` is shorthand for that configuration with another kernel cache folder.
    """
    cfg = config if config is not None else _config.get()
    if cache_dir is not None:
        cfg = _config.replace(cfg, cache_dir=str(cache_dir))
    exe = Executable(graph, fetches, feeds, cfg)
    exe.plan  # noqa: B018  (static shapes: plan and compile now)
    return exe
