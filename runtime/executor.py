"""The executor: ``compile(graph, fetches, feeds)`` -> ``Executable``; ``run`` has the interpreter's semantics.

Per set of feed shapes the graph is lowered once (``lower.lower``) to a Plan,
its buffers are allocated, and a *driver* is generated: a straight-line Python
function calling every kernel with its prebound arguments (preallocated
buffer views and constants are bound as globals of the driver; only feeds,
variables and reference results are looked up per run). Shape sets are cached,
so a repeated batch size costs one dict lookup; a new batch size re-plans but
never recompiles a kernel (kernels are specialised on dtype and rank only).

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

import builtins

import numpy as np

from graphc.errors import GraphError, UninitializedVariableError
from graphc.interpreter import evaluate, random_key
from graphc.ir import Graph
from graphc.ops.registry import get_op

from . import driver
from .kernels import Const, In, Out, Scratch
from .lower import ALIGN, Plan, lower

_UNINIT = object()


def _c(x, shape):
    """``x`` as a C-contiguous array of ``shape`` (a view when possible; read-only stays read-only:
    numba kernels are called through their compiled entry points, which accept it)."""
    if not x.flags.c_contiguous:
        x = np.array(x, order="C")
    return x.reshape(shape)


def _c0(x):
    if not x.flags.c_contiguous:
        x = np.array(x, order="C")
    return x


def _cw(x, shape):
    """``x`` as a writeable C-contiguous array of ``shape`` (for a numba dispatcher called directly)."""
    if not (x.flags.c_contiguous and x.flags.writeable):
        x = np.array(x, order="C")
    return x.reshape(shape)


def _cw0(x):
    if not (x.flags.c_contiguous and x.flags.writeable):
        x = np.array(x, order="C")
    return x


def _assign(cur, val):
    return np.array(val, copy=True, order="C")      # new variable values are C-ordered (as the reference)


def _assign_add(cur, val):
    r = cur + val
    if type(r) is not np.ndarray or r.dtype != cur.dtype or not r.flags.c_contiguous:
        return np.array(np.asarray(r).astype(cur.dtype, copy=False), copy=True, order="C")
    return r          # a fresh array: the reference's value exactly


def _assign_sub(cur, val):
    r = cur - val
    if type(r) is not np.ndarray or r.dtype != cur.dtype or not r.flags.c_contiguous:
        return np.array(np.asarray(r).astype(cur.dtype, copy=False), copy=True, order="C")
    return r


_ASSIGN = {"assign": _assign, "assign_add": _assign_add, "assign_sub": _assign_sub}


def _alloc(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + ALIGN, dtype=np.uint8)
    off = (-raw.ctypes.data) % ALIGN
    return raw[off:off + nbytes]


def _view(raw, shape, dtype):
    nb = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return raw[:nb].view(np.dtype(dtype)).reshape(shape)


def _entry_point(fn, warm: dict):
    """The compiled entry point of numba dispatcher ``fn`` for its warmed signature, else None.

    Calling it skips numba's dispatch and accepts read-only arrays (the variable state and
    constants) without a copy or a recompile; the descriptors guarantee dtype, rank and layout.
    """
    sig = warm.get(id(fn))
    if sig is None:
        return None
    cres = getattr(fn, "overloads", {}).get(sig)
    return getattr(cres, "entry_point", None)


def _any_layout(sig: tuple, pos: int) -> bool:
    t = sig[pos] if pos < len(sig) else None
    return getattr(t, "layout", "C") == "A"


class Bound:
    """A Plan with its buffers allocated and its driver generated.

    The driver is ``driver(F, state, run_key) -> (fetch values, updates)`` with ``F`` the feed
    values in the Executable's feed order; straight-line Python, kernels and buffers prebound, and
    runs of numba kernel calls compiled into one jitted segment each (``driver.Segment``). Lines
    that only read a feed or variable, bind a buffer or make a view are independent of the kernels
    in flight, so they may go before a segment still being collected; any other line closes it, and
    so does a kernel whose argument is a contiguous copy of a view made while collecting (the copy
    would run before the kernels that fill the view's buffer).
    """

    def __init__(self, exe: "Executable", plan: Plan):
        self.plan = plan
        g = exe.graph
        raws = [_alloc(c) for c in plan.buffers]
        glb = {"np": np, "_c": _c, "_c0": _c0, "_cw": _cw, "_cw0": _cw0, "UNINIT": _UNINIT,
               "_uninit": exe._uninit, "_rk": random_key}
        lines = ["def driver(F, state, run_key):"]
        fixed: dict[int, object] = {}     # node -> fixed array (constants, pool buffers)
        per_run: set = set()
        counter = [0]
        feed_pos = {f: i for i, f in enumerate(exe.feeds)}
        assigned: dict[str, str] = {}     # variable name -> local holding its value updated this run

        def gname(obj, prefix="G"):
            counter[0] += 1
            nm = f"{prefix}{counter[0]}"
            glb[nm] = obj
            return nm

        arrays: dict[tuple, str] = {}

        def aname(arr):             # one global per distinct fixed array view (a segment's argument)
            key = (arr.ctypes.data, arr.shape, arr.strides, arr.dtype.str)
            if key not in arrays:
                arrays[key] = gname(arr)
            return arrays[key]

        consts: dict[tuple, str] = {}

        def cname(value):           # one global per distinct scalar constant
            if not isinstance(value, (int, float, np.integer, np.floating, type(None))):
                return gname(value)
            key = (type(value).__name__, value)
            if key not in consts:
                consts[key] = gname(value)
            return consts[key]

        seg = driver.Segment(gname)

        pending_views: set = set()      # views made while a segment is collected: their data may not exist yet

        def emit(line):             # a line that may depend on the kernels in flight: close the segment
            if len(seg):
                lines.extend(seg.close())
            pending_views.clear()
            lines.append(line)

        # first consumer of each variable (except assign's own ref input) gets the check
        var_nodes = {s.node for s in plan.steps if s.kind == "var"}
        checked: set = set()
        for s in plan.steps:
            n = s.node
            if s.kind == "unfed":
                raise _NeedsInterpreter()
            if s.kind == "feed":
                lines.append(f"    v{n} = F[{feed_pos[n]}]")
                per_run.add(n)
                continue
            if s.kind == "var":
                lines.append(f"    v{n} = state.get({g.name(n)!r}, UNINIT)")
                per_run.add(n)
                continue
            if s.kind == "const":
                val = s.value if s.value is not None else g.attrs(n)["value"]
                lines.append(f"    v{n} = {gname(val)}")
                fixed[n] = np.array(val, order="C") if not (val.flags.c_contiguous and val.flags.writeable) \
                    else val
                continue
            for pos, u in enumerate(s.inputs):
                if u in var_nodes and u not in checked and not (s.kind == "assign" and pos == 0):
                    lines.append(f"    if v{u} is UNINIT: _uninit({u})")
                    checked.add(u)
            if s.kind == "assign":
                ref = g.name(s.inputs[0])
                cur = assigned.get(ref) or f"state.get({ref!r})"
                if s.op != "assign" and ref not in assigned:
                    emit(f"    cur = {cur}")
                    lines.append(f"    if cur is None: _uninit({s.inputs[0]})")
                    cur = "cur"
                fn = _ASSIGN.get(s.op)
                if s.takes_value:       # a fresh array of this run (lower._hand_over_updates): keep it
                    lines.append(f"    v{n} = v{s.inputs[1]}")
                elif fn is not None:
                    emit(f"    v{n} = {gname(fn, 'A')}({cur}, v{s.inputs[1]})")
                else:
                    opdef = get_op(s.op)
                    emit(f"    v{n} = np.array({gname(opdef.reference)}([{cur}, v{s.inputs[1]}], "
                         f"{gname(g.attrs(n))}), copy=True, order='C')")
                assigned[ref] = f"v{n}"
                per_run.add(n)
                continue
            if s.kind == "random":
                opdef = get_op(s.op)
                attrs = g.attrs(n)
                args = ", ".join(f"v{u}" for u in s.inputs)
                emit(f"    v{n} = {gname(opdef.reference)}([{args}], {gname(attrs)}, "
                     f"_rk(run_key, {int(attrs.get('seed', 0))}))")
                per_run.add(n)
                continue
            call = s.call
            if call.mode == "value":
                fn, descs = call.steps[0]
                view = _fixed_view(s, fn, descs, fixed, per_run)
                if view is not None:        # a view of a fixed array, made once
                    fixed[n] = view
                    lines.append(f"    v{n} = {gname(view)}")
                    continue
                args = []
                for d in descs:
                    if isinstance(d, In):
                        u = s.inputs[d.k]
                        args.append(f"v{u}" if u in per_run or u not in fixed
                                    else gname(fixed[u]))
                    elif isinstance(d, Const):
                        args.append(gname(d.value))
                    else:
                        raise ValueError("value-mode calls take inputs and constants only")
                line = f"    v{n} = {gname(fn, 'K')}({', '.join(args)})"
                if getattr(fn, "view_only", False):
                    lines.append(line)
                    if len(seg):
                        pending_views.add(n)
                else:
                    emit(line)
                per_run.add(n)
                continue
            # out-mode: output buffer
            if s.storage == "buf":
                out_arr = _view(raws[s.buffer], s.shape, s.dtype)
                fixed[n] = out_arr
                lines.append(f"    v{n} = {aname(out_arr)}")
            else:
                lines.append(f"    v{n} = np.empty({tuple(s.shape)!r}, {gname(s.dtype)})")
                per_run.add(n)
            scratch = [_view(raws[b], shp, dt) for b, (dt, shp) in zip(s.scratch_buffers, call.scratch)]
            warm = {id(disp): tuple(sig) for disp, sig in call.warm}
            for fn, descs in call.steps:
                jit = driver.numba_callable(fn, warm)
                ep = _entry_point(fn, warm)
                ro_ok = ep is not None or not hasattr(fn, "overloads")
                c, c0 = ("_c", "_c0") if ro_ok else ("_cw", "_cw0")
                sig = warm.get(id(fn), ())
                args = []
                copies = False      # an argument is a contiguous copy of a view made while collecting
                for pos, d in enumerate(descs):
                    if isinstance(d, In):
                        # numpy code that takes any strides (BLAS through np.matmul), or a kernel
                        # typed for any layout (blas.gemm_into): the value as it is
                        asis = getattr(fn, "takes_strided", False) or _any_layout(sig, pos)
                        u = s.inputs[d.k]
                        if u in fixed and u not in per_run:
                            arr = fixed[u]
                            args.append(aname(arr.reshape(d.shape) if d.shape is not None else arr))
                        elif d.shape is not None:
                            args.append(f"{c}(v{u}, {tuple(d.shape)!r})")
                            copies |= u in pending_views
                        else:
                            args.append(f"v{u}" if asis else f"{c0}(v{u})")
                            copies |= u in pending_views and not asis
                    elif isinstance(d, Out):
                        if n in fixed:
                            args.append(aname(fixed[n].reshape(d.shape) if d.shape is not None
                                              else fixed[n]))
                        else:
                            args.append(f"v{n}.reshape({tuple(d.shape)!r})" if d.shape is not None
                                        else f"v{n}")
                    elif isinstance(d, Scratch):
                        a = scratch[d.j]
                        args.append(aname(a.reshape(d.shape) if d.shape is not None else a))
                    elif isinstance(d, Const):
                        args.append(cname(d.value))
                line = f"    {gname(ep if ep is not None else fn, 'K')}({', '.join(args)})"
                # a copy evaluated before the segment runs would miss the kernels filling its source
                if jit is not None and driver.ENABLED and not copies:
                    seg.add(line, jit[0], jit[1], args)
                else:
                    emit(line)
        # fetches: uninitialized variables raise; values that may alias pool buffers are copied
        roots_pool = _pool_aliased(plan)
        outs = []
        for f in plan.fetches:
            if f in var_nodes and f not in checked:
                lines.append(f"    if v{f} is UNINIT: _uninit({f})")
            outs.append(f"np.array(v{f}, copy=True)" if f in roots_pool else f"v{f}")
        upd = ", ".join(f"{k!r}: {v}" for k, v in assigned.items())
        emit(f"    return [{', '.join(outs)}], {{{upd}}}")
        self.segments = seg.compiled      # jitted segments (driver.py) in the driver
        self.source = "\n".join(lines) + "\n"
        self.globals = glb
        code = builtins.compile(self.source, f"<graphc driver {id(self)}>", "exec")
        exec(code, glb)
        self.driver = glb["driver"]
        self.raws = raws

    def line_times(self, F, state, run_key=0, repeat: int = 20) -> list:
        """Best time in seconds of every driver line (a profile of one shape set; runs the driver)."""
        import time
        body = self.source.splitlines()[1:]
        src = ["def _timed(F, state, run_key, _T):"]
        for i, ln in enumerate(body[:-1]):
            src += ["    _t = _pc()", ln, f"    _T[{i}] = min(_T[{i}], _pc() - _t)"]
        glb = dict(self.globals, _pc=time.perf_counter)
        exec("\n".join(src) + "\n", glb)
        times = [float("inf")] * (len(body) - 1)
        for _ in range(repeat):
            glb["_timed"](F, state, run_key, times)
        return [(ln.strip(), t) for ln, t in zip(body[:-1], times)]


# ops whose numpy reference returns a view of a contiguous input
_VIEW_OPS = frozenset({"reshape", "expand_dims", "squeeze"})


def _fixed_view(s, fn, descs, fixed: dict, per_run: set):
    """The value of a view op whose input is a fixed array (a pool buffer or a constant), made at
    bind time: the view always shows the buffer's current contents, and the run skips a numpy call
    (in the MNIST CNN's step a flatten cost 7-18 us there: after kernels that streamed megabytes,
    the interpreter's own data is out of the caches; 0.9 us alone). None unless the reference really
    returned a view of the whole input."""
    if s.op not in _VIEW_OPS or not s.inputs or any(u not in fixed or u in per_run for u in s.inputs):
        return None
    base = fixed[s.inputs[0]]
    args = [fixed[s.inputs[d.k]] if isinstance(d, In) else d.value for d in descs]
    try:
        val = fn(*args)
    except Exception:           # the run raises it
        return None
    if isinstance(val, np.ndarray) and val.size and val.size == base.size and np.shares_memory(val, base) \
            and val.ctypes.data == base.ctypes.data:
        return val
    return None


def _pool_aliased(plan: Plan) -> set:
    """Nodes whose value may be (a view of) a pool buffer."""
    out = set()
    for s in plan.steps:
        if s.storage == "buf" or (s.storage == "value" and s.kind == "call"
                                  and any(u in out for u in s.inputs)):
            out.add(s.node)
    return out


class _NeedsInterpreter(Exception):
    """The schedule has an unfed placeholder: the interpreter raises the exact error."""


class Executable:
    """A compiled graph: ``run(feed_values, state, run_key) -> (fetch values, updates)``."""

    def __init__(self, graph: Graph, fetches, feeds=()):
        self.graph = graph
        self.fetches = [int(f) for f in fetches]
        self.feeds = [int(f) for f in feeds]
        self._bound: dict[tuple, Bound | None] = {}
        self._last: Bound | None = None
        self._feed_dtypes = {f: graph.spec(f).dtype for f in self.feeds}

    # -- planning ----------------------------------------------------------------------------------
    def prepare(self, feed_shapes: dict) -> Plan | None:
        """Plan, allocate and bind for one set of feed shapes (done on first use otherwise)."""
        key = tuple(tuple(feed_shapes[f]) for f in self.feeds)
        b = self._get(key)
        return b.plan if b is not None else None

    def _get(self, key: tuple) -> Bound | None:
        b = self._bound.get(key, False)
        if b is False:
            try:
                plan = lower(self.graph, self.fetches, self.feeds, dict(zip(self.feeds, key)))
                b = Bound(self, plan)
            except _NeedsInterpreter:
                b = None
            self._bound[key] = b
        if b is not None:
            self._last = b
        return b

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
        the fed nodes' dtypes (``Session.make_callable`` checks them); no conversion here."""
        b = self._bound.get(tuple([v.shape for v in F]))
        if b is None:
            b = self._get(tuple([v.shape for v in F]))
            if b is None:
                res = evaluate(self.graph, self.fetches, dict(zip(self.feeds, F)), state, run_key=run_key,
                               check=False)
                return res.values, res.updates
        self._last = b
        try:
            return b.driver(F, state, run_key)
        except UninitializedVariableError:
            raise
        except Exception as kernel_error:
            self._kernel_failed(kernel_error, F, state, run_key)

    def run_steps(self, batches, state: dict, run_key: int = 0, on_step=None):
        """Run once per entry of ``batches`` (each a feed list as in ``run_list``), every step seeing
        the variable updates of the previous ones (as consecutive ``run`` calls whose updates are
        committed). Run keys are ``run_key, run_key + 1, ...``. Returns ``(per-step fetch value lists,
        accumulated updates)``; ``on_step(i, values, updates)`` is called after each step, and a
        step that raises stops the loop with nothing of that step applied (the earlier steps'
        updates are attached to the exception as ``exc.graphc_updates`` and ``exc.graphc_steps``).
        """
        cur = dict(state)
        total: dict = {}
        out = []
        for i, F in enumerate(batches):
            try:
                values, upd = self.run_list(F, cur, run_key + i)
            except Exception as e:
                e.graphc_updates, e.graphc_steps = total, i
                raise
            cur.update(upd)
            total.update(upd)
            out.append(values)
            if on_step is not None:
                on_step(i, values, upd)
        return out, total

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


def compile(graph: Graph, fetches, feeds=(), *, cache_dir: str | None = None) -> Executable:  # noqa: A001
    """Compile ``fetches`` (node ids) of ``graph`` given fed nodes ``feeds`` into an ``Executable``.

    ``cache_dir`` overrides ``$GRAPHC_CACHE_DIR`` for the kernels of this process.
    """
    if cache_dir is not None:
        import os
        os.environ["GRAPHC_CACHE_DIR"] = str(cache_dir)
    exe = Executable(graph, fetches, feeds)
    exe.plan  # noqa: B018  (static shapes: plan and compile now)
    return exe
