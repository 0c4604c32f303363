"""Recurrent-cell rewrites: a training step's LSTM cells keep their gates for the gradient.

``lstm_cell_grad`` needs the four activated gates of its step. Computed again from ``z`` they
cost four of its five transcendental functions; ``lstm_cell(gates=True)`` writes them beside
``[h | c]`` instead (``[h | c | i f g o]``), which the gradient reads. Such a cell then adds its
``z`` itself: the step's ``h @ U`` (``z_sum``) and the bias row of ``x @ W + b`` (``z_bias``), in
the order the graph added them. The values are the same bits either way (the same functions on
the same inputs), so this changes no result.

    >>> import graphc as gc
    >>> from graphc.passes import optimize
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     z = gc.placeholder("float32", (None, 8), name="z")
    ...     c = gc.placeholder("float32", (None, 2), name="c")
    ...     hc = gc.nn.lstm_cell(z, c)
    ...     dz, dc = gc.gradients(gc.reduce_sum(hc[:, :2] * hc[:, 2:]), [z, c])
    >>> opt, report = optimize(g, [dz, dc], feeds=[z, c], pipeline=["save_lstm_gates"])
    >>> [opt.spec(n).shape for n in opt.topo_order() if opt.op(n) == "lstm_cell"]
    [(None, 12)]
"""
from __future__ import annotations

from graphc.ir import Graph, TensorSpec
from graphc.ops.registry import get_op

from .core import PassContext, PassResult, new_node, remove_unused, rewrite_in_place


def _column_range(key: tuple, width: int) -> tuple[int, int] | None:
    """The columns ``[a, b)`` a ``strided_slice`` key ``[:, a:b]`` of a (batch, width) matrix reads."""
    if len(key) != 2 or key[0] != ("s", None, None, None) or not isinstance(key[1], tuple):
        return None
    _, start, stop, step = key[1]
    if step not in (None, 1):
        return None
    a, b, _ = slice(start, stop).indices(width)
    return a, b


def _reads_as_out(g: Graph, v: int, n: int) -> bool:
    """Gradient step ``v`` reads cell ``n``'s output as its ``out`` (and n's own z and c), only."""
    from graphc.ops.rnn import _grad_layout
    ins = list(g.inputs(v))
    _, n_d = _grad_layout(len(ins), g.attrs(v))
    return ins[-1 - n_d] == n and ins[:-1 - n_d] == list(g.inputs(n)) and n not in ins[-n_d:]


def split_lstm_grad_inputs(g: Graph, ctx: PassContext) -> PassResult:
    """``lstm_cell_grad(..., d_out)`` with ``d_out = [dh | dc]`` assembled from two pieces (an
    unrolled LSTM's ``dh = dz_next @ U^T`` and ``dc`` from the next step's gradient) ->
    ``lstm_cell_grad(..., dh, dc, split_d=True)``: the kernel reads both where they lie, and the
    copy into one matrix goes."""
    res = PassResult()
    for v in list(g.topo_order()):
        if g.op(v) != "lstm_cell_grad" or g.attrs(v).get("split_d"):
            continue
        d = g.inputs(v)[-1]
        if g.op(d) != "strided_slice_grad_n" or g.num_uses(d) != 1 or ctx.is_fetched(d) \
                or ctx.is_fed(d) or len(g.inputs(d)) != 3:
            continue
        width = g.spec(d).shape[1]
        cols = [_column_range(k, width) for k in g.attrs(d)["keys"]]
        pieces = dict(zip(cols, g.inputs(d)[:2]))
        u = width // 2
        if set(cols) != {(0, u), (u, width)}:
            continue
        g.set_inputs(v, list(g.inputs(v)[:-1]) + [pieces[(0, u)], pieces[(u, width)]])
        g.node_data(v)["attrs"] = {**g.attrs(v), "split_d": True}
        remove_unused(g, [d], ctx)
        res.changed += 1
    if res.changed:
        res.notes = [f"{res.changed} LSTM step gradients read dh and dc apart"]
    return res


def _sum_into_cell(g: Graph, n: int, grads: list, ctx: PassContext) -> None:
    """``lstm_cell(p + q, ...)`` whose gradients read its saved gates -> ``lstm_cell(p, ..., q,
    z_sum=True)``: the cell adds (an unrolled step's ``h @ U`` and its ``x @ W + b`` slice), and the
    add's own kernel goes. With the gates saved, the gradients read only z's shape: they get ``p``."""
    z = g.inputs(n)[0]
    if g.op(z) != "add" or ctx.is_fetched(z) or ctx.is_fed(z) \
            or any(g.spec(i) != g.spec(z) for i in g.inputs(z)) \
            or set(g.users(z)) != {n, *grads} or any(g.inputs(v).count(z) != 1 or g.inputs(v)[0] != z
                                                    for v in [n, *grads]):
        return
    p, q = g.inputs(z)
    g.set_inputs(n, [p] + list(g.inputs(n)[1:]) + [q])
    g.node_data(n)["attrs"] = {**g.attrs(n), "z_sum": True}
    for v in grads:
        g.set_input(v, 0, p)
    remove_unused(g, [z], ctx)


_FULL = ("s", None, None, None)


def _one_step(key: tuple) -> bool:
    """A ``strided_slice`` key ``[t]`` (or ``[t, :, ...]``): one index on axis 0, every other axis whole."""
    return bool(key) and isinstance(key[0], int) and all(k == _FULL for k in key[1:])


def _shape_reader(g: Graph, v: int, s: int) -> bool:
    """Whether ``v``'s value depends on the shape of its input ``s`` only: a zero initial state made
    like the first step's gates (directly or through a slice), a slice gradient's shape operand."""
    op = g.op(v)
    if get_op(op).reads_shape_only:
        return True
    if op in ("strided_slice_grad", "strided_slice_grad_n"):
        ins = g.inputs(v)
        return ins[-1] == s and s not in ins[:-1]
    return op == "strided_slice" and all(_shape_reader(g, w, v) for w in g.users(v))


def _reads_gates(g: Graph, v: int, s: int) -> bool:
    """Whether node ``v`` reads ``s`` only as the ``z`` of a cell that keeps its gates, or of such
    a cell's gradient (which then reads only z's shape), or only for its shape."""
    if _shape_reader(g, v, s):
        return True
    ins = g.inputs(v)
    if not ins or ins[0] != s or s in ins[1:]:
        return False
    if g.op(v) == "lstm_cell":
        return bool(g.attrs(v).get("gates")) and not g.attrs(v).get("z_bias")
    if g.op(v) == "lstm_cell_grad":
        from graphc.ops.rnn import _grad_layout
        _, n_d = _grad_layout(len(ins), g.attrs(v))
        out = ins[-1 - n_d]
        return g.op(out) == "lstm_cell" and bool(g.attrs(out).get("gates"))
    return False


def _bias_into_cells(g: Graph, ctx: PassContext) -> int:
    """``a = m + b`` (an unrolled LSTM's ``x @ W + b`` for all steps, ``b`` a row of 4u) read only
    by step slices ``a[t]`` that are the ``z`` of cells keeping their gates (or of their
    gradients) -> the slices read ``m`` and each cell adds ``b`` itself (``z_bias``): the add's own
    pass over every step's gates goes (33 us of the row-LSTM's 1.6 ms training step). Returns the
    number of cells changed."""
    changed = 0
    for a in list(g.topo_order()):
        if g.op(a) != "add" or ctx.is_fetched(a) or ctx.is_fed(a) or len(set(g.inputs(a))) != 2:
            continue
        m, b = g.inputs(a)
        sa, sb = g.spec(a), g.spec(b)
        if len(sa.shape) < 3 or sa.shape[-1] is None or tuple(sb.shape) != (sa.shape[-1],) \
                or g.spec(m) != sa or sb.dtype != sa.dtype:
            continue
        users = list(dict.fromkeys(g.users(a)))
        slices = [s for s in users if not _shape_reader(g, s, a)]
        if not slices or any(g.op(s) != "strided_slice" or ctx.is_fetched(s) or ctx.is_fed(s)
                             or not _one_step(g.attrs(s)["key"])
                             or not all(_reads_gates(g, v, s) for v in g.users(s)) for s in slices):
            continue
        for s in slices:
            for v in dict.fromkeys(g.users(s)):
                if g.op(v) == "lstm_cell":
                    g.set_inputs(v, list(g.inputs(v)) + [b])
                    g.node_data(v)["attrs"] = {**g.attrs(v), "z_bias": True}
                    changed += 1
        for v in users:         # the slices, and readers of a's shape (m has the same)
            g.set_inputs(v, [m if i == a else i for i in g.inputs(v)])
        remove_unused(g, [a], ctx)
    return changed


def save_lstm_gates(g: Graph, ctx: PassContext) -> PassResult:
    """``lstm_cell`` whose output a ``lstm_cell_grad`` reads -> ``lstm_cell(gates=True)``. Its
    output grows by the gates' 4u columns, so its other readers keep seeing ``[h | c]``: a column
    slice within it gets explicit bounds, any other reader reads the view ``out[:, :2u]``. Then
    ``_sum_into_cell`` moves the add that makes its ``z`` into it."""
    res = PassResult()
    for n in list(g.topo_order()):
        if g.op(n) != "lstm_cell" or g.attrs(n).get("gates") or ctx.is_fetched(n) or ctx.is_fed(n):
            continue
        spec = g.spec(n)
        width = spec.shape[1]
        users = g.users(n)
        grads = [v for v in users if g.op(v) == "lstm_cell_grad" and _reads_as_out(g, v, n)]
        if not grads:
            continue
        rewrite_in_place(g, n, "lstm_cell", {**g.attrs(n), "gates": True}, g.inputs(n),
                         TensorSpec((spec.shape[0], 3 * width), spec.dtype))
        view = None
        for v in users:
            if v in grads:
                continue
            cols = _column_range(g.attrs(v)["key"], width) if g.op(v) == "strided_slice" else None
            if cols is not None:
                key = (("s", None, None, None), ("s", cols[0], cols[1], None))
                rewrite_in_place(g, v, "strided_slice", {**g.attrs(v), "key": key}, [n])
                continue
            if view is None:
                view = new_node(g, "strided_slice", [n], {"key": (("s", None, None, None),
                                                                   ("s", 0, width, None))}, n)
            g.set_inputs(v, [view if i == n else i for i in g.inputs(v)])
        _sum_into_cell(g, n, grads, ctx)
        res.changed += 1
    biased = _bias_into_cells(g, ctx)
    if res.changed:
        res.notes = [f"{res.changed} LSTM steps keep their gates"]
    if biased:
        res.changed += biased
        res.notes.append(f"{biased} LSTM steps add their bias themselves")
    return res
