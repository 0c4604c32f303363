"""Binding: a Plan's buffers allocated and its driver generated, one emitter per step kind.

The driver is ``driver(F, state, run_key) -> (fetch values, updates)``, with ``F`` the feed values
in the Executable's feed order: straight-line Python whose kernels, buffers and constants are
globals (``emit.Source``). ``EMITTERS`` maps each plan step kind (``lower.Step.kind``) to the
function writing its lines:

| kind   | emitter         | lines |
|--------|-----------------|-------|
| feed   | `_emit_feed`    | `vN = F[i]` |
| var    | `_emit_var`     | `vN = state.get(name, UNINIT)` |
| const  | `_emit_const`   | `vN = G` (bound once) |
| unfed  | `_emit_unfed`   | none: the interpreter raises the exact error |
| assign | `_emit_assign`  | the variable's new value, kept in the run's updates |
| random | `_emit_random`  | the op's counter-based reference with the run key |
| call   | `_emit_call`    | a value call (`vN = K(...)`), a view made at bind time, or out-buffer kernel calls |

Each line is a ``driver.Line`` saying what it may depend on; ``driver.place_segments`` turns the
list into the driver's body, collecting runs of numba kernel calls into jitted segments when the
configuration's ``driver`` is ``"numba"``.
"""
from __future__ import annotations

import numpy as np

from graphc import config
from graphc.funcgraph import bodies
from graphc.interpreter import random_key
from graphc.ops.registry import get_op
from graphc.ops.state import update_value

from . import blas_threads, driver
from .driver import Line
from .emit import Source
from .kernels import Const, In, InRows, Out, Scratch
from .lower import ALIGN, Plan

UNINIT = object()


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


class NeedsInterpreter(Exception):
    """The schedule has an unfed placeholder: the interpreter raises the exact error."""


def _one_blas_thread(run):
    """``run`` with numpy's OpenBLAS on one thread: a plan with a loop (an RNN's training step). Its
    GEMMs are small, and after a threaded GEMM OpenBLAS's idle worker spins and holds the other core
    through the loop that follows: the row-LSTM's step took 8.0 ms with loops alone kept on one
    thread, 3.1 ms with the whole step (2 cores, one of them busy with another process)."""
    def driver(F, state, run_key):
        with blas_threads.serial():
            return run(F, state, run_key)
    return driver


class Bound:
    """A Plan with its buffers allocated and its driver generated (``source``, ``globals``,
    ``segments``: how many jitted segments the driver calls). Binds under ``cfg``. ``serial_blas``:
    the driver runs on one BLAS thread (tiered execution's baseline tier, see ``executor._bind``)."""

    def __init__(self, exe, plan: Plan, cfg: config.Config, serial_blas: bool = False):
        self.plan = plan
        self.raws = [_alloc(c) for c in plan.buffers]
        em = _Emitter(exe, plan, self.raws)
        for s in plan.steps:
            if s.kind not in ("feed", "var", "const", "unfed"):
                em.check_inputs(s)
            EMITTERS[s.kind](em, s)
        em.emit_return()
        body, self.segments = driver.place_segments(em.lines, em.src.bind,
                                                    jit=cfg.driver == "numba")
        src = em.src
        with src.block("def driver(F, state, run_key):"):
            src.extend(body)
        self.driver = src.function("driver", f"<graphc driver {id(self):x}>")
        self.source, self.globals = src.text(), src.globals
        if serial_blas or any(bodies(plan.graph.attrs(s.node)) for s in plan.steps if s.kind == "call"):
            self.driver = _one_blas_thread(self.driver)

    def line_times(self, F, state, run_key=0, repeat: int = 20) -> list:
        """Best time in seconds of every driver line (a profile of one shape set; runs the driver)."""
        import time
        body = self.source.splitlines()[1:-1]
        src = Source(dict(self.globals, _pc=time.perf_counter))
        with src.block("def _timed(F, state, run_key, _T):"):
            for i, ln in enumerate(body):
                src.extend(["_t = _pc()", ln.strip(), f"_T[{i}] = min(_T[{i}], _pc() - _t)"])
        timed = src.function("_timed")
        times = [float("inf")] * len(body)
        for _ in range(repeat):
            timed(F, state, run_key, times)
        return [(ln.strip(), t) for ln, t in zip(body, times)]


class _Emitter:
    """What the emitters share while one driver is generated."""

    def __init__(self, exe, plan: Plan, raws: list):
        self.g, self.plan, self.raws = exe.graph, plan, raws
        self.src = Source({"np": np, "_c": _c, "_c0": _c0, "_cw": _cw, "_cw0": _cw0, "UNINIT": UNINIT,
                           "_uninit": exe._uninit, "_rk": random_key})
        self.lines: list[Line] = []
        self.fixed: dict[int, np.ndarray] = {}   # node -> fixed array (constants, pool buffers)
        self.per_run: set = set()                # nodes whose value is new each run
        self.assigned: dict[str, str] = {}       # variable name -> local holding its new value
        self.feed_pos = {f: i for i, f in enumerate(exe.feeds)}
        self.var_nodes = {s.node for s in plan.steps if s.kind == "var"}
        self.checked: set = set()                # variables whose first reader checked them

    def free(self, text: str, view: int | None = None) -> None:
        """A line reading only feeds, variables or bound arrays, or making a view (``view``)."""
        self.lines.append(Line(text, "free", view=view))

    def barrier(self, text: str) -> None:
        """A line that may read kernel results: it runs after every kernel call before it."""
        self.lines.append(Line(text, "barrier"))

    def arg(self, u: int) -> str:
        """Node ``u``'s value: its bound array when fixed, else its local."""
        return f"v{u}" if u in self.per_run or u not in self.fixed else self.src.bind(self.fixed[u])

    def check_inputs(self, s) -> None:
        # the first consumer of each variable (except an assign's own ref input) checks it was set
        for pos, u in enumerate(s.inputs):
            if u in self.var_nodes and u not in self.checked and not (s.kind == "assign" and pos == 0):
                self.free(f"if v{u} is UNINIT: _uninit({u})")
                self.checked.add(u)

    def emit_return(self) -> None:
        # fetches: uninitialized variables raise; values that may alias pool buffers are copied
        roots_pool = _pool_aliased(self.plan)
        outs = []
        for f in self.plan.fetches:
            if f in self.var_nodes and f not in self.checked:
                self.free(f"if v{f} is UNINIT: _uninit({f})")
            outs.append(f"np.array(v{f}, copy=True)" if f in roots_pool else f"v{f}")
        upd = ", ".join(f"{k!r}: {v}" for k, v in self.assigned.items())
        self.barrier(f"return [{', '.join(outs)}], {{{upd}}}")


def _emit_feed(em: _Emitter, s) -> None:
    em.free(f"v{s.node} = F[{em.feed_pos[s.node]}]")
    em.per_run.add(s.node)


def _emit_var(em: _Emitter, s) -> None:
    em.free(f"v{s.node} = state.get({em.g.name(s.node)!r}, UNINIT)")
    em.per_run.add(s.node)


def _emit_const(em: _Emitter, s) -> None:
    val = s.value if s.value is not None else em.g.attrs(s.node)["value"]
    em.free(f"v{s.node} = {em.src.bind(val)}")
    em.fixed[s.node] = val if val.flags.c_contiguous and val.flags.writeable else np.array(val, order="C")


def _emit_unfed(em: _Emitter, s) -> None:
    raise NeedsInterpreter()


def _emit_assign(em: _Emitter, s) -> None:
    n, ref = s.node, em.g.name(s.inputs[0])
    cur = em.assigned.get(ref) or f"state.get({ref!r})"
    if s.op != "assign" and ref not in em.assigned:
        em.barrier(f"cur = {cur}")
        em.free(f"if cur is None: _uninit({s.inputs[0]})")
        cur = "cur"
    if s.takes_value:       # a fresh array of this run (lower._hand_over_updates): keep it
        em.free(f"v{n} = v{s.inputs[1]}")
    else:                   # the one implementation of assign semantics, shared with the interpreter
        em.barrier(f"v{n} = {em.src.bind(update_value, 'A')}({em.src.bind(get_op(s.op))}, {cur}, "
                   f"v{s.inputs[1]})")
    em.assigned[ref] = f"v{n}"
    em.per_run.add(n)


def _emit_random(em: _Emitter, s) -> None:
    attrs = em.g.attrs(s.node)
    args = ", ".join(f"v{u}" for u in s.inputs)
    em.barrier(f"v{s.node} = {em.src.bind(get_op(s.op).reference)}([{args}], {em.src.bind(attrs)}, "
               f"_rk(run_key, {int(attrs.get('seed', 0))}))")
    em.per_run.add(s.node)


def _emit_call(em: _Emitter, s) -> None:
    if s.storage == "alias":
        _emit_alias(em, s)
    elif s.call.mode == "value":
        _emit_value_call(em, s)
    else:
        _emit_out_call(em, s)


def _emit_alias(em: _Emitter, s) -> None:
    """A join whose pieces were written in place (``lower._join_in_place``): a strided view of
    their buffer, made once here; its other inputs are copied into their slabs when it runs."""
    off, shape, strides, copies = s.alias
    raw = em.raws[s.buffer]
    for _, u, (o, shp, st) in copies:
        slab = np.ndarray(shp, s.dtype, buffer=raw, offset=o, strides=st)
        em.barrier(f"np.copyto({em.src.array(slab)}, {em.arg(u)})")
    view = np.ndarray(shape, s.dtype, buffer=raw, offset=off, strides=strides)
    em.fixed[s.node] = view
    em.free(f"v{s.node} = {em.src.array(view)}")


def _emit_value_call(em: _Emitter, s) -> None:
    """A kernel returning the node's value: a view of a fixed array is made once, here."""
    n = s.node
    fn, descs = s.call.steps[0]
    view = _fixed_view(s, fn, descs, em.fixed, em.per_run)
    if view is not None:
        em.fixed[n] = view
        em.free(f"v{n} = {em.src.bind(view)}")
        return
    args = []
    for d in descs:
        if isinstance(d, In):
            args.append(em.arg(s.inputs[d.k]))
        elif isinstance(d, Const):
            args.append(em.src.bind(d.value))
        else:
            raise ValueError("value-mode calls take inputs and constants only")
    line = f"v{n} = {em.src.bind(fn, 'K')}({', '.join(args)})"
    em.per_run.add(n)
    if getattr(fn, "view_only", False):     # slices, multi-output parts: read no values
        em.free(line, view=n)
    else:
        em.barrier(line)


def _emit_out_call(em: _Emitter, s) -> None:
    """Kernels writing the node's output buffer (a pool buffer, or a fresh array per run)."""
    n, call = s.node, s.call
    if s.storage == "buf":
        em.fixed[n] = _view(em.raws[s.buffer][s.offset:], s.shape, s.dtype)
        em.free(f"v{n} = {em.src.array(em.fixed[n])}")
    else:
        em.free(f"v{n} = np.empty({tuple(s.shape)!r}, {em.src.bind(s.dtype)})")
        em.per_run.add(n)
    scratch = [_view(em.raws[b], shp, dt) for b, (dt, shp) in zip(s.scratch_buffers, call.scratch)]
    warm = {id(disp): tuple(sig) for disp, sig in call.warm}
    for fn, descs in call.steps:
        ep = _entry_point(fn, warm)
        args, copies, fixed_copies = _kernel_args(em, s, fn, descs, warm, scratch,
                                                  read_only_ok=ep is not None or not hasattr(fn, "overloads"))
        line = f"{em.src.bind(ep if ep is not None else fn, 'K')}({', '.join(args)})"
        # a copy of a fixed strided view is made when its line runs, after the kernels before it:
        # never inside a jitted segment, whose arguments are all evaluated before its first call
        jit = None if fixed_copies else driver.numba_callable(fn, warm)
        em.lines.append(Line(line, "kernel", jit=jit, args=args, copies=frozenset(copies)))


def _kernel_args(em: _Emitter, s, fn, descs, warm: dict, scratch: list, read_only_ok: bool):
    """The argument expressions of one out-mode kernel call, the nodes it takes a contiguous copy
    of (a copy is made when the line runs: see ``driver.place_segments``), and whether one of
    those is a fixed strided view (bound at bind time, copied per run)."""
    n = s.node
    c, c0 = ("_c", "_c0") if read_only_ok else ("_cw", "_cw0")
    sig = warm.get(id(fn), ())
    args, copies, fixed_copies = [], [], False
    for pos, d in enumerate(descs):
        if isinstance(d, In):
            u = s.inputs[d.k]
            fixed = u in em.fixed and u not in em.per_run
            # numpy code that takes any strides (BLAS through np.matmul), or a kernel typed for
            # any layout (blas.gemm_into): the value as it is
            strided_ok = d.shape is None and (getattr(fn, "takes_strided", False) or _any_layout(sig, pos))
            if fixed and (em.fixed[u].flags.c_contiguous or strided_ok):
                arr = em.fixed[u]
                args.append(em.src.array(arr.reshape(d.shape) if d.shape is not None else arr))
                continue
            val = em.src.array(em.fixed[u]) if fixed else f"v{u}"
            fixed_copies |= fixed
            if d.shape is not None:
                args.append(f"{c}({val}, {tuple(d.shape)!r})")
                copies.append(u)
            elif strided_ok:
                args.append(val)
            else:
                args.append(f"{c0}({val})")
                copies.append(u)
        elif isinstance(d, InRows):
            u = s.inputs[d.k]
            fixed = u in em.fixed and u not in em.per_run
            where = _rows_view(em.fixed[u], d.rows, d.cols) if fixed else None
            if where is not None:           # (flat, ld): the view as it lies
                args += [em.src.array(where[0]), em.src.value(where[1])]
                continue
            val = em.src.array(em.fixed[u]) if fixed else f"v{u}"
            fixed_copies |= fixed
            args += [f"{c}({val}, {(d.rows * d.cols,)!r})", em.src.value(d.cols)]
            copies.append(u)
        elif isinstance(d, Out):
            if n in em.fixed:
                out = em.fixed[n]
                args.append(em.src.array(out.reshape(d.shape) if d.shape is not None else out))
            else:
                args.append(f"v{n}.reshape({tuple(d.shape)!r})" if d.shape is not None else f"v{n}")
        elif isinstance(d, Scratch):
            a = scratch[d.j]
            args.append(em.src.array(a.reshape(d.shape) if d.shape is not None else a))
        elif isinstance(d, Const):
            args.append(em.src.value(d.value))
    return args, copies, fixed_copies


def _rows_view(a: np.ndarray, rows: int, cols: int):
    """``(flat, ld)`` for ``InRows``: ``a`` as a ``rows`` x ``cols`` matrix whose rows are
    contiguous and ``ld`` elements apart, ``flat`` a C-contiguous 1-d view of ``a``'s memory from
    its first element to its last; None when ``a`` is not such a view."""
    if a.size != rows * cols or a.size == 0:
        return None
    m = a.reshape(rows, cols)
    if not np.shares_memory(m, a):      # reshape copied: no view of that shape
        return None
    item = m.dtype.itemsize
    s0, s1 = m.strides
    if (cols > 1 and s1 != item) or s0 % item or (rows > 1 and s0 < cols * item):
        return None
    ld = s0 // item if rows > 1 else cols
    return np.lib.stride_tricks.as_strided(m, ((rows - 1) * ld + cols,), (item,)), ld


EMITTERS = {"feed": _emit_feed, "var": _emit_var, "const": _emit_const, "unfed": _emit_unfed,
            "assign": _emit_assign, "random": _emit_random, "call": _emit_call}


def _fixed_view(s, fn, descs, fixed: dict, per_run: set):
    """The value of a view op whose input is a fixed array (a pool buffer or a constant), made at
    bind time: the view always shows the buffer's current contents, and the run skips a numpy call
    (in the MNIST CNN's step a flatten cost 7-18 us there: after kernels that streamed megabytes,
    the interpreter's own data is out of the caches; 0.9 us alone; the row-LSTM's training step
    made 112 strided slices, 0.5-0.6 us each). None unless the reference really returned a view of
    its input. A strided view is passed as it is only to kernels typed for any layout; others get a
    contiguous copy made when their line runs (``_kernel_args``)."""
    if not (get_op(s.op).view or getattr(fn, "view_only", False)) or not s.inputs \
            or any(u not in fixed or u in per_run for u in s.inputs):
        return None
    base = fixed[s.inputs[0]]
    args = [fixed[s.inputs[d.k]] if isinstance(d, In) else d.value for d in descs]
    try:
        val = fn(*args)
    except Exception:           # the run raises it
        return None
    if isinstance(val, np.ndarray) and val.size and np.shares_memory(val, base):
        return val
    return None


def _pool_aliased(plan: Plan) -> set:
    """Nodes whose value may be (a view of) a pool buffer."""
    out = set()
    for s in plan.steps:
        if s.storage in ("buf", "alias") or (s.storage == "value" and s.kind == "call"
                                  and any(u in out for u in s.inputs)):
            out.add(s.node)
    return out
