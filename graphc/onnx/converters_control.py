"""Converters of ONNX control flow: ``Scan`` -> graphc ``scan``, ``Loop`` -> ``while_loop``,
``If`` -> ``cond``.

A sub-graph attribute (``body``, ``then_branch``, ``else_branch``) is converted node by node by
the importer's ``convert_nodes`` while ``funcgraph.trace`` records it as a graphc body: the
sub-graph's inputs are the traced arguments, and a value of an enclosing scope it reads (the
ONNX outer-scope reference) is an outer graphc tensor, which the body captures as an input.

    >>> all(op in CONVERTERS for op in ("Scan", "Loop", "If"))
    True
"""
from __future__ import annotations

import numpy as np

import graphc as gc

from ..funcgraph import trace, with_captures
from ..ir import TensorSpec, _shapes_agree
from ..ops.control_flow import part, scan_node
from ..ops.registry import apply
from .converters import CONVERTERS, op
from .importer import Context, convert_nodes, tensor_value


def _graph(cx, name):
    a = cx.attr(name)
    if a is None or not a.HasField("g"):
        raise cx.error(f"attribute {name!r} (a graph) is missing")
    return a.g


def _run_subgraph(cx, gp, args, what):
    """Convert ONNX sub-graph ``gp`` into the graph being traced (the default graph) with its
    inputs bound to ``args``; its outputs (outer-scope names resolve to the enclosing tensors)."""
    fg = gc.get_default_graph()
    if len(args) != len(gp.input):
        raise cx.error(f"{what} has {len(gp.input)} inputs; the op passes it {len(args)}")
    inner = Context(fg, cx.path, cx.opset)
    env = dict(cx.env)
    for t in gp.initializer:
        env[t.name] = inner.constant(tensor_value(t, cx.path))
    for vi, a in zip(gp.input, args):
        env[vi.name] = a
    convert_nodes(inner, gp.node, env)
    missing = [o.name for o in gp.output if o.name not in env]
    if missing:
        raise cx.error(f"{what}: outputs {missing} are not produced by any node of the sub-graph")
    return [env[o.name] for o in gp.output]


def _scalar(cx, t, dtype, what):
    if t.dtype != np.dtype(dtype):
        raise cx.unsupported(f"{what} must be {np.dtype(dtype).name}, got {t.dtype.name}", kind="dtype")
    if t.shape != ():
        if any(d not in (1, None) for d in t.shape):
            raise cx.error(f"{what} must hold one element, got shape {t.shape}")
        t = gc.reshape(t, ())
    return t


def _move_axis(x, src, dst):
    """``x`` with its axis ``src`` moved to position ``dst``."""
    if src == dst:
        return x
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    return gc.transpose(x, perm)


def _axes(cx, name, n, rank_of):
    axes = list(cx.attr(name) or [0] * n)
    if len(axes) != n:
        raise cx.error(f"attribute {name} has {len(axes)} entries for {n} values")
    out = []
    for i, a in enumerate(axes):
        r = rank_of(i)
        if not -r <= a < r:
            raise cx.error(f"attribute {name}[{i}] = {a} is out of range for rank {r}")
        out.append(a % r)
    return out


@op("Scan")
def _scan(cx, ins):
    """Scan (opset 9+): initial states, then ``num_scan_inputs`` sequences sliced along
    ``scan_input_axes``; per-value directions become reversed inputs/outputs (or a reverse
    graphc scan when every direction is reversed)."""
    if cx.opset < 9:
        raise cx.unsupported("Scan of opset 8 (with a batch axis and sequence_lens) is not supported; "
                             "opset 9 and later are", kind="opset")
    gp = _graph(cx, "body")
    m = int(cx.attr("num_scan_inputs"))
    n_state = len(ins) - m
    if m < 1 or n_state < 0:
        raise cx.error(f"num_scan_inputs={m} for {len(ins)} inputs")
    if any(t is None for t in ins):
        raise cx.unsupported("optional (empty) Scan inputs are not supported")
    n_y = len(gp.output) - n_state
    if n_y < 0:
        raise cx.error(f"the body returns {len(gp.output)} values for {n_state} states")
    states, xs = list(ins[:n_state]), list(ins[n_state:])
    in_axes = _axes(cx, "scan_input_axes", m, lambda i: xs[i].ndim)
    in_dirs = list(cx.attr("scan_input_directions") or [0] * m)
    out_dirs = list(cx.attr("scan_output_directions") or [0] * n_y)
    xs = [_move_axis(x, a, 0) for x, a in zip(xs, in_axes)]
    rev = all(in_dirs) and all(out_dirs)
    if not rev:
        xs = [x[::-1] if d else x for x, d in zip(xs, in_dirs)]
    specs = [s.spec for s in states] + [TensorSpec(tuple(x.shape[1:]), x.dtype) for x in xs]
    body, captured, _ = trace(lambda *a: _run_subgraph(cx, gp, list(a), "the Scan body"), specs,
                              "scan_body")
    (body,), captured = with_captures([(body, captured)])
    node = scan_node(body, captured, states, xs, reverse=rev, name="scan")
    outs = [part(node, i) for i in range(len(body.outputs))]
    ys = outs[n_state:]
    if not rev:
        ys = [y[::-1] if d else y for y, d in zip(ys, out_dirs)]
    out_axes = _axes(cx, "scan_output_axes", n_y, lambda j: ys[j].ndim)
    return outs[:n_state] + [_move_axis(y, 0, a) for y, a in zip(ys, out_axes)]


@op("Loop")
def _loop(cx, ins):
    """Loop: a graphc ``while_loop`` over ``(iteration, condition, v...)``; its condition is
    ``cond and iteration < M`` (either part absent when its input is); the body's scan outputs
    are the while_loop's per-iteration results, stacked."""
    gp = _graph(cx, "body")
    if len(ins) < 2:
        raise cx.error(f"{len(ins)} inputs; Loop takes M, cond, then the loop-carried values")
    m_t, c_t, vs = ins[0], ins[1], list(ins[2:])
    n_v = len(vs)
    n_scan = len(gp.output) - 1 - n_v
    if n_scan < 0:
        raise cx.error(f"the body returns {len(gp.output)} values for {n_v} loop-carried values")
    if any(v is None for v in vs):
        raise cx.unsupported("optional (empty) loop-carried inputs are not supported")
    if m_t is None and c_t is None:
        raise cx.unsupported("a Loop with neither a trip count M nor a condition would never stop",
                             kind="attribute")
    limit = None if m_t is None else _scalar(cx, m_t, np.int64, "M")
    c0 = _scalar(cx, c_t, np.bool_, "cond") if c_t is not None else cx.constant(True)
    init = [cx.constant(np.int64(0)), c0] + vs

    def cond_fn(i, c, *v):
        return [gc.logical_and(c, gc.less(i, limit)) if limit is not None else gc.identity(c)]

    def body_fn(i, c, *v):
        outs = _run_subgraph(cx, gp, [i, c] + list(v), "the Loop body")
        c_out = _scalar(cx, outs[0], np.bool_, "the body's cond_out") if c_t is not None \
            else gc.constant(True)      # without a cond input, ONNX ignores cond_out
        return [i + gc.constant(np.int64(1)), c_out] + list(outs[1:])

    specs = [t.spec for t in init]
    for _ in range(2):      # a loop-carried value whose size changes: retrace with those dims unknown
        cond_b, cond_caps, _ = trace(cond_fn, specs, "loop_cond")
        body_b, body_caps, _ = trace(body_fn, specs, "loop_body")
        outs = body_b.out_specs[:len(specs)]
        if all(_shapes_agree(tuple(s.shape), tuple(o.shape)) for s, o in zip(specs, outs)):
            break
        if any(len(s.shape) != len(o.shape) for s, o in zip(specs, outs)):
            raise cx.unsupported("a loop-carried value changes rank across iterations", kind="build")
        specs = [TensorSpec(tuple(a if a == b else None for a, b in zip(s.shape, o.shape)), s.dtype)
                 for s, o in zip(specs, outs)]
    (cond_b, body_b), captured = with_captures([(cond_b, cond_caps), (body_b, body_caps)])
    node = apply("while_loop", init + captured,
                 {"cond": cond_b, "body": body_b, "n_vars": len(init), "max_iter": None}, name="loop")
    return [part(node, i) for i in range(2, len(init) + n_scan)]


@op("If")
def _if(cx, ins):
    """If: a graphc ``cond`` of the two branches (both must give the same number of outputs with
    the same dtypes and ranks)."""
    pred = _scalar(cx, ins[0], np.bool_, "cond")
    then_g, else_g = _graph(cx, "then_branch"), _graph(cx, "else_branch")
    if len(then_g.output) != len(else_g.output):
        raise cx.error(f"then_branch has {len(then_g.output)} outputs, else_branch {len(else_g.output)}")
    outs = gc.cond(pred, lambda: _run_subgraph(cx, then_g, [], "then_branch"),
                   lambda: _run_subgraph(cx, else_g, [], "else_branch"), name="if")
    return list(outs)
