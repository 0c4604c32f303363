"""Control flow: ``cond``, ``while_loop`` and ``scan`` (TensorFlow's names and semantics) as ops
whose bodies are sub-graphs.

Each control flow node keeps its body (a ``funcgraph.Body``: a graph with input placeholders and
results) in its attrs and has several results, read by ``tuple_get`` nodes (its spec is a
``TupleSpec``). The body is traced once, from the Python function, with the loop variables'
specs; a ``None`` dimension stays unknown, so one graph (and one compiled program) serves every
sequence length and batch size. Outer tensors the function reads become the node's inputs
(captures), so gradients reach them.

* ``scan`` (the primitive under ``gc.scan``, ``gc.map_fn`` and the recurrent layers): inputs
  ``carries + xs + captures``; the body maps ``(carry..., x_t..., capture...)`` to
  ``(carry'..., y_t...)``; results: the final carries, then every ``y`` stacked over the steps.
* ``while_loop``: inputs ``loop vars + captures``; ``cond`` and ``body`` bodies over both; results:
  the final loop vars (then, once differentiated, what the gradient saved per iteration).
* ``cond``: inputs ``pred + captures``; two bodies over the captures; only the taken one runs.

Gradients (``control_flow_grad``) are control flow too: a reverse ``scan`` over the values the
forward loop saved per step, and a ``cond`` of the branches' gradients.

    >>> import graphc as gc
    >>> xs = gc.constant(np.arange(1, 5, dtype=np.float32))
    >>> gc.Session().run(gc.scan(lambda acc, x: acc * x, xs, initializer=gc.constant(1.0))).tolist()
    [1.0, 2.0, 6.0, 24.0]
"""
from __future__ import annotations

import numpy as np

from ..errors import DtypeError, GraphError, ShapeError
from ..funcgraph import Body, flatten, trace, unflatten, with_captures
from ..ir import Tensor, TensorSpec, _shapes_agree, _user_call_site, tuple_spec
from .registry import OpDef, _fmt, apply, convert_to_tensor, register

__all__ = ["cond", "while_loop", "scan", "map_fn"]


# -- tuple_get: one result of a control flow node ---------------------------------------------------
register(OpDef(
    "tuple_get", fusion="opaque",
    infer=lambda s, a: s[0].parts[a["index"]],
    reference=lambda v, a: v[0][a["index"]],
    grad=lambda x, y, dy, a: [(a["index"], dy)],     # autodiff collects one gradient per result
    doc="Result attrs['index'] of a control flow node (scan, while_loop, cond)."))


def part(t: Tensor, k: int, name: str | None = None) -> Tensor:
    """Result ``k`` of control flow node ``t``."""
    return apply("tuple_get", [t], {"index": int(k)}, name=name or f"{t.name.rsplit('/', 1)[-1]}_{k}")


def _check_inputs(op: str, body: Body, want: list, what) -> None:
    """``want`` (the specs the node's inputs give the body) fit ``body``'s placeholders."""
    if len(want) != len(body.inputs):
        raise GraphError(f"{op}: {len(want)} inputs for a body of {len(body.inputs)}")
    for i, (w, b) in enumerate(zip(want, body.in_specs)):
        if w.dtype != b.dtype or not _shapes_agree(tuple(w.shape), tuple(b.shape)):
            raise ShapeError(f"{op}: {what(i)} is {w} but the body was traced for {b}")


def _check_carries(op: str, carries: list, outs: list, names) -> None:
    for i, (c, o) in enumerate(zip(carries, outs)):
        if c.dtype != o.dtype:
            raise DtypeError(f"{op}: {names(i)} enters the loop as {c.dtype.name} but the body returns "
                             f"{o.dtype.name}; a loop variable keeps its dtype (cast it in the body)")
        if not _shapes_agree(tuple(c.shape), tuple(o.shape)):
            raise ShapeError(f"{op}: {names(i)} enters the loop with shape {_fmt(c.shape)} but the "
                             f"body returns shape {_fmt(o.shape)}; a loop variable keeps its shape "
                             "(give a shape invariant with None for a dimension that may change)")


# -- scan ----------------------------------------------------------------------------------------------
def _steps(specs, a):
    k, m = a["n_carry"], a["n_xs"]
    t_len = a.get("length")
    for j, x in enumerate(specs[k:k + m]):
        if not x.shape:
            raise ShapeError(f"scan: elems {j} is a scalar; scan slices the first dimension")
        if t_len is not None and x.shape[0] is not None and x.shape[0] != t_len:
            raise ShapeError(f"scan: elems {j} has {x.shape[0]} steps but the others have {t_len}; "
                             "every elems tensor needs the same first dimension")
        t_len = x.shape[0] if t_len is None else t_len
    return t_len


def _scan_infer(specs, a):
    body, k, m = a["body"], a["n_carry"], a["n_xs"]
    t_len = _steps(specs, a)
    want = list(specs[:k]) + [TensorSpec(tuple(x.shape[1:]), x.dtype) for x in specs[k:k + m]] \
        + list(specs[k + m:])
    _check_inputs("scan", body, want, lambda i: (f"carry {i}" if i < k else f"a step of elems {i - k}"
                                                 if i < k + m else f"captured input {i - k - m}"))
    outs = body.out_specs
    _check_carries("scan", body.in_specs[:k], outs[:k], lambda i: f"carry {i}")
    carries = body.in_specs[:k]
    concrete = _concrete(body, want)
    if concrete is not None:        # every input shape known (lowering): the results' shapes too
        outs = concrete
        if all(c.shape == tuple(w.shape) for c, w in zip(outs[:k], want[:k])):
            carries = list(want[:k])
    return tuple_spec(carries + [TensorSpec((t_len,) + tuple(o.shape), o.dtype) for o in outs[k:]])


def _concrete(body: Body, specs: list) -> list | None:
    """The body's result specs for fully known input ``specs`` (None when some size is unknown)."""
    if not all(_known(s) for s in specs):
        return None
    try:
        shapes = body.out_shapes([s.shape for s in specs])
    except (ShapeError, GraphError):
        return None
    return [TensorSpec(tuple(sh), o.dtype) for sh, o in zip(shapes, body.out_specs)]


def _known(spec) -> bool:
    return isinstance(spec, TensorSpec) and all(d is not None for d in spec.shape)


def stack_steps(ys: list, body: Body, k: int, in_shapes: list) -> list:
    """Per-step results stacked on a new first axis (a loop of no steps: empty arrays of the
    shapes the body would have given)."""
    if len(body.outputs) == k:      # nothing stacked: the carries' shapes need not be known
        return []
    if ys and ys[0]:
        return [np.stack(y) for y in ys]
    shapes = body.out_shapes(in_shapes)[k:]
    return [np.zeros((0,) + tuple(s), sp.dtype) for s, sp in zip(shapes, body.out_specs[k:])]


def _scan_ref(v, a):
    body, k, m = a["body"], a["n_carry"], a["n_xs"]
    carries, xs, caps = list(v[:k]), v[k:k + m], list(v[k + m:])
    t_len = xs[0].shape[0] if m else int(a["length"])
    if any(x.shape[0] != t_len for x in xs):
        raise ShapeError(f"scan: elems have different numbers of steps {[x.shape[0] for x in xs]}")
    ys = [[] for _ in range(len(body.outputs) - k)]
    for t in (range(t_len - 1, -1, -1) if a["reverse"] else range(t_len)):
        outs = body.evaluate(carries + [x[t] for x in xs] + caps)
        carries = outs[:k]
        for j, y in enumerate(outs[k:]):
            ys[j].append(y)
    if a["reverse"]:
        ys = [y[::-1] for y in ys]
    shapes = [c.shape for c in carries] + [x.shape[1:] for x in xs] + [c.shape for c in caps]
    return tuple(carries + stack_steps(ys, body, k, shapes))


def _scan_grad(x, y, dy, a):
    from .control_flow_grad import scan_grad
    return scan_grad(x, y, dy, a)


register(OpDef(
    "scan", fusion="opaque", infer=_scan_infer, reference=_scan_ref, grad=_scan_grad,
    doc="attrs['body'] over steps of inputs n_carry..n_carry+n_xs, carrying inputs 0..n_carry; "
        "results: the final carries, then the body's other results stacked (attrs['reverse']: "
        "last step first)."))


def scan_node(body: Body, captured: list, init: list, xs: list, reverse: bool = False,
              length: int | None = None, name: str = "scan") -> Tensor:
    """The ``scan`` node of ``body`` (carries ``init``, sliced ``xs``, then ``captured``)."""
    return apply("scan", list(init) + list(xs) + list(captured),
                 {"body": body, "n_carry": len(init), "n_xs": len(xs), "reverse": bool(reverse),
                  "length": length}, name=name)


def scan(fn, elems, initializer=None, reverse=False, name="scan", **unused):
    """Apply ``fn(acc, x)`` over the first dimension of ``elems``, stacking each new ``acc``
    (``tf.scan``). ``elems`` and ``initializer`` may be nested lists/tuples/dicts of tensors; without
    ``initializer`` the first step of ``elems`` is the initial value (and the first result).

        >>> import graphc as gc
        >>> cum = gc.scan(lambda a, x: a + x, gc.constant([1.0, 2.0, 3.0]))
        >>> gc.Session().run(cum).tolist()
        [1.0, 3.0, 6.0]
    """
    _no_options("scan", unused, ("parallel_iterations", "back_prop", "swap_memory", "infer_shape"))
    xs_leaves, xs_struct = flatten(elems)
    xs_leaves = [convert_to_tensor(x) for x in xs_leaves]
    first = None
    if initializer is None:
        first = [x[-1] if reverse else x[0] for x in xs_leaves]
        xs_leaves = [x[:-1] if reverse else x[1:] for x in xs_leaves]
        init_leaves, init_struct = first, xs_struct
    else:
        init_leaves, init_struct = flatten(initializer)
        init_leaves = [convert_to_tensor(t) for t in init_leaves]
    k = len(init_leaves)
    specs = [t.spec for t in init_leaves] + [TensorSpec(tuple(x.shape[1:]), x.dtype) for x in xs_leaves]

    def step(*args):
        acc = unflatten(init_struct, args[:k])
        new, new_struct = flatten(fn(acc, unflatten(xs_struct, args[k:])))
        if new_struct != init_struct:
            raise GraphError(f"scan '{name}': fn returned a structure of {len(new)} tensors unlike the "
                             f"accumulator's {k} (at {_user_call_site()})")
        return list(new) + list(new)
    body, captured, _ = trace(step, specs, name)
    (body,), captured = with_captures([(body, captured)])
    node = scan_node(body, captured, init_leaves, xs_leaves, reverse, name=name)
    stacked = [part(node, k + i) for i in range(k)]
    if first is not None:
        from .array import concat, expand_dims
        pieces = [(s, expand_dims(f, 0)) if reverse else (expand_dims(f, 0), s) for s, f in zip(stacked, first)]
        stacked = [concat(list(p), 0) for p in pieces]
    return unflatten(init_struct, stacked)


def map_fn(fn, elems, dtype=None, name="map_fn", **unused):
    """``fn`` applied to each slice of ``elems`` along its first dimension, results stacked
    (``tf.map_fn``); one compiled body serves every length.

        >>> import graphc as gc
        >>> gc.Session().run(gc.map_fn(lambda r: gc.reduce_sum(r), gc.ones((3, 4)))).tolist()
        [4.0, 4.0, 4.0]
    """
    _no_options("map_fn", unused, ("parallel_iterations", "back_prop", "swap_memory", "infer_shape",
                                   "fn_output_signature"))
    xs_leaves, xs_struct = flatten(elems)
    xs_leaves = [convert_to_tensor(x) for x in xs_leaves]
    specs = [TensorSpec(tuple(x.shape[1:]), x.dtype) for x in xs_leaves]
    out_struct = []

    def step(*args):
        leaves, s = flatten(fn(unflatten(xs_struct, args)))
        out_struct.append(s)
        return leaves
    body, captured, _ = trace(step, specs, name)
    (body,), captured = with_captures([(body, captured)])
    node = scan_node(body, captured, [], xs_leaves, name=name)
    return unflatten(out_struct[0], [part(node, i) for i in range(len(body.outputs))])


# -- while_loop ---------------------------------------------------------------------------------------
def _while_infer(specs, a):
    cond_b, body, k = a["cond"], a["body"], a["n_vars"]
    n_in = len(specs) - (1 if a.get("max_input") else 0)
    _check_inputs("while_loop", body, list(specs[:n_in]),
                  lambda i: f"loop variable {i}" if i < k else f"captured input {i - k}")
    c = cond_b.out_specs[0]
    if c.dtype != np.bool_ or c.shape != ():
        raise ShapeError(f"while_loop: cond must return a scalar bool, got {c}")
    _check_carries("while_loop", body.in_specs[:k], body.out_specs[:k], lambda i: f"loop variable {i}")
    finals, outs = body.in_specs[:k], body.out_specs
    concrete = _concrete(body, list(specs[:n_in]))
    if concrete is not None:        # a variable one iteration leaves as it is keeps its known shape
        outs = concrete
        finals = [w if c.shape == tuple(w.shape) else f
                  for c, w, f in zip(concrete[:k], specs[:k], finals)]
    return tuple_spec(list(finals) + [TensorSpec((None,) + tuple(o.shape), o.dtype) for o in outs[k:]])


def _while_ref(v, a):
    cond_b, body, k = a["cond"], a["body"], a["n_vars"]
    limit = a.get("max_iter")
    if a.get("max_input"):
        limit, v = int(v[-1]), v[:-1]
    loop_vars, caps = list(v[:k]), list(v[k:])
    saved = [[] for _ in range(len(body.outputs) - k)]
    i = 0
    while (limit is None or i < limit) and bool(cond_b.evaluate(loop_vars + caps)[0]):
        outs = body.evaluate(loop_vars + caps)
        for j, r in enumerate(outs[k:]):
            saved[j].append(r)
        loop_vars, i = outs[:k], i + 1
    return tuple(loop_vars + stack_steps(saved, body, k, [x.shape for x in loop_vars + caps]))


def _while_grad(x, y, dy, a):
    from .control_flow_grad import while_grad
    return while_grad(x, y, dy, a)


register(OpDef(
    "while_loop", fusion="opaque", infer=_while_infer, reference=_while_ref, grad=_while_grad,
    doc="attrs['body'] repeated while attrs['cond'] holds (at most attrs['max_iter'] times) over "
        "loop variables 0..n_vars and captured inputs; results: the final loop variables, then "
        "the body's other results (saved for the gradient) stacked per iteration."))


def while_loop(cond, body, loop_vars, shape_invariants=None, maximum_iterations=None,
               name="while", **unused):
    """Repeat ``body`` while ``cond`` is true (``tf.while_loop``): both take the loop variables as
    arguments; ``body`` returns their new values (same structure, dtypes and shapes; a
    ``shape_invariants`` entry with ``None`` lets a dimension change). ``maximum_iterations`` caps
    the number of iterations, as in TensorFlow.

        >>> import graphc as gc
        >>> i, s = gc.while_loop(lambda i, s: i < 5, lambda i, s: (i + 1, s + i), (0, 0))
        >>> [int(v) for v in gc.Session().run([i, s])]
        [5, 10]
    """
    _no_options("while_loop", unused, ("parallel_iterations", "back_prop", "swap_memory",
                                       "return_same_structure"))
    single = not isinstance(loop_vars, (list, tuple))       # one tensor or a dict: one argument
    leaves, struct = flatten(loop_vars)
    leaves = [convert_to_tensor(t) for t in leaves]
    specs = [t.spec for t in leaves]
    if shape_invariants is not None:
        inv = _leaves_like(struct, shape_invariants)
        if len(inv) != len(leaves):
            raise GraphError(f"while_loop '{name}': {len(inv)} shape_invariants for {len(leaves)} "
                             "loop variables")
        specs = [_invariant(s, shape, i, name) for i, (s, shape) in enumerate(zip(specs, inv))]

    def call(fn):
        def wrapped(*args):
            vals = unflatten(struct, args)
            return fn(vals) if single else fn(*vals)
        return wrapped

    def body_fn(*args):
        new, new_struct = flatten(call(body)(*args))
        if new_struct != struct and not (single and len(new) == 1):
            raise GraphError(f"while_loop '{name}': body returned {len(new)} values in another "
                             f"structure than the {len(leaves)} loop variables")
        return new
    cond_b, cond_caps, _ = trace(call(cond), specs, name + "/cond")
    body_b, body_caps, _ = trace(body_fn, specs, name + "/body")
    (cond_b, body_b), captured = with_captures([(cond_b, cond_caps), (body_b, body_caps)])
    c = cond_b.out_specs[0]
    if len(cond_b.outputs) != 1 or c.dtype != np.bool_ or c.shape != ():
        raise ShapeError(f"while_loop '{name}': cond must return one scalar bool tensor, got "
                         f"{', '.join(str(s) for s in cond_b.out_specs)} (reduce it with gc.reduce_all "
                         "or compare a scalar)")
    attrs = {"cond": cond_b, "body": body_b, "n_vars": len(leaves), "max_iter": None}
    inputs = leaves + captured
    if isinstance(maximum_iterations, Tensor):
        attrs["max_input"] = True
        inputs = inputs + [maximum_iterations]
    elif maximum_iterations is not None:
        attrs["max_iter"] = int(maximum_iterations)
    node = apply("while_loop", inputs, attrs, name=name)
    outs = [part(node, i) for i in range(len(leaves))]
    return unflatten(struct, outs)


def _leaves_like(struct, value) -> list:
    """``value``'s entries at the leaves of ``struct`` (a shape, itself a tuple, is one leaf)."""
    if struct is None:      # one loop variable: its shape, or a list holding it
        return [value[0] if len(value) == 1 and isinstance(value[0], (list, tuple)) else value]
    if struct[0] is dict:
        return [x for k, sub in zip(struct[1], struct[2]) for x in _leaves_like(sub, value[k])]
    if len(value) != len(struct[1]):
        raise GraphError(f"while_loop: shape_invariants {value!r} do not match the loop variables")
    return [x for sub, v in zip(struct[1], value) for x in _leaves_like(sub, v)]


def _invariant(spec: TensorSpec, shape, i: int, name: str) -> TensorSpec:
    shape = tuple(None if d is None or d == -1 else int(d) for d in shape)
    if len(shape) != len(spec.shape) or not _shapes_agree(shape, spec.shape):
        raise ShapeError(f"while_loop '{name}': shape invariant {_fmt(shape)} of loop variable {i} "
                         f"does not fit its initial shape {_fmt(spec.shape)}")
    return TensorSpec(shape, spec.dtype)


# -- cond ---------------------------------------------------------------------------------------------
def _merge(a: TensorSpec, b: TensorSpec, i: int) -> TensorSpec:
    if a.dtype != b.dtype or len(a.shape) != len(b.shape):
        raise ShapeError(f"cond: result {i} is {a} in true_fn but {b} in false_fn; both branches must "
                         "return the same structure, dtypes and ranks")
    return TensorSpec(tuple(x if x == y else None for x, y in zip(a.shape, b.shape)), a.dtype)


def _cond_infer(specs, a):
    p = specs[0]
    if p.dtype != np.bool_ or p.shape != ():
        raise ShapeError(f"cond: pred must be a scalar bool tensor, got {p} (reduce it with "
                         "gc.reduce_all/reduce_any, or compare scalars)")
    t, f = a["true"], a["false"]
    for b in (t, f):
        _check_inputs("cond", b, list(specs[1:]), lambda i: f"captured input {i}")
    if len(t.outputs) != len(f.outputs):
        raise ShapeError(f"cond: true_fn returns {len(t.outputs)} tensors but false_fn "
                         f"{len(f.outputs)}; both branches must return the same structure")
    t_out = _concrete(t, list(specs[1:])) or t.out_specs
    f_out = _concrete(f, list(specs[1:])) or f.out_specs
    return tuple_spec([_merge(x, y, i) for i, (x, y) in enumerate(zip(t_out, f_out))])


def _cond_ref(v, a):
    branch = a["true"] if bool(v[0]) else a["false"]
    return tuple(branch.evaluate(list(v[1:])))


def _cond_grad(x, y, dy, a):
    from .control_flow_grad import cond_grad
    return cond_grad(x, y, dy, a)


register(OpDef(
    "cond", fusion="opaque", infer=_cond_infer, reference=_cond_ref, grad=_cond_grad,
    doc="attrs['true'] if input 0 (a scalar bool) else attrs['false'], over the captured inputs."))


def cond(pred, true_fn, false_fn, name="cond", **unused):
    """``true_fn()`` if ``pred`` else ``false_fn()`` (``tf.cond``); only the taken branch runs. Both
    return the same structure of tensors with the same dtypes and ranks (a size that differs
    becomes ``None``).

        >>> import graphc as gc
        >>> x = gc.placeholder("float32", (), name="x")
        >>> y = gc.cond(x > 0.0, lambda: x * 2.0, lambda: -x)
        >>> gc.Session().run(y, {x: -3.0}).item()
        3.0
    """
    _no_options("cond", unused, ("strict",))
    pred = convert_to_tensor(pred)
    t_b, t_caps, t_struct = trace(lambda: true_fn(), [], name + "/true")
    f_b, f_caps, f_struct = trace(lambda: false_fn(), [], name + "/false")
    if t_struct != f_struct:
        raise GraphError(f"cond '{name}': true_fn and false_fn return different structures "
                         f"({len(t_b.outputs)} and {len(f_b.outputs)} tensors)")
    (t_b, f_b), captured = with_captures([(t_b, t_caps), (f_b, f_caps)])
    node = apply("cond", [pred] + captured, {"true": t_b, "false": f_b}, name=name)
    return unflatten(t_struct, [part(node, i) for i in range(len(t_b.outputs))])


def _no_options(op: str, given: dict, known: tuple) -> None:
    bad = [k for k in given if k not in known]
    if bad:
        raise TypeError(f"{op}: unexpected argument(s) {', '.join(bad)}")
