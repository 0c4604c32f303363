"""ONNX emitters of graphc's control flow: ``scan`` -> ``Scan``, ``while_loop`` -> ``Loop``,
``cond`` -> ``If``, ``tuple_get`` (a result of one of them), and ``zeros_like``/``ones_like``.

A body (``funcgraph.Body``) becomes an ONNX sub-graph exported by a child exporter
(``_Exporter.child``) through the same emitters: its argument placeholders are the sub-graph's
inputs, its captured inputs refer to the outer ONNX values by name (ONNX sub-graphs see the
enclosing scopes), and its constants are initializers of the main graph (read from the outer
scope too). A control flow emitter returns the list of its ONNX outputs; ``tuple_get`` picks one.

    >>> all(op in EMITTERS for op in ("scan", "while_loop", "cond", "tuple_get", "zeros_like"))
    True
"""
from __future__ import annotations

import numpy as np

from .export import _ONNX_TYPE, EMITTERS, emitter

_BIG = np.iinfo(np.int64).max


def _value_info(name, spec):
    from onnx import helper
    return helper.make_tensor_value_info(name, _ONNX_TYPE[spec.dtype.name],
                                         [None if d is None else int(d) for d in spec.shape])


def subgraph(ex, body, arg_names, captured, label, extra_inputs=(), first_output=None):
    """The ONNX GraphProto of ``body``: graph inputs ``extra_inputs`` (ValueInfoProtos) then one per
    argument of ``body`` (named after ``arg_names``); its capture placeholders read the outer ONNX
    values ``captured``. Outputs: the body's results, after ``first_output(sub, names)`` (a Loop
    body's condition: a scalar bool computed in the sub-graph from the results' ONNX names)."""
    from onnx import TensorProto, helper
    sub = ex.child(body.graph)
    n_args = len(arg_names)
    inputs = list(extra_inputs)
    for node, nm in zip(body.inputs[:n_args], arg_names):
        sub.names[node] = sub.fresh(nm)
        inputs.append(_value_info(sub.names[node], body.graph.spec(node)))
    for node, outer in zip(body.inputs[n_args:], captured):
        sub.names[node] = outer
    # every result gets its own name (a body may return an input, an outer value, or one value twice)
    outs = [sub.node("Identity", [nm], base=f"{label}_out")
            for nm in sub.emit(list(body.outputs), stop=body.inputs)]
    outputs = [_value_info(nm, spec) for nm, spec in zip(outs, body.out_specs)]
    if first_output is not None:
        c = sub.node("Identity", [first_output(sub, outs)], base=f"{label}_cond")
        outputs.insert(0, helper.make_tensor_value_info(c, TensorProto.BOOL, []))
    return helper.make_graph(sub.nodes, label, inputs, outputs)


def _multi(ex, op_type, inputs, n_out, base, **attrs):
    """``ex.node`` returning a list of output names even for one output."""
    outs = ex.node(op_type, inputs, n_out=n_out, base=base, **attrs)
    return outs if isinstance(outs, list) else [outs]


def inline(ex, body, input_names):
    """Emit ``body``'s computation into ``ex``'s own graph over the ONNX values ``input_names``."""
    sub = ex.child(body.graph, nodes=ex.nodes)
    for node, nm in zip(body.inputs, input_names):
        sub.names[node] = nm
    return sub.emit(list(body.outputs), stop=body.inputs)


def _reverse0(ex, x, base):
    """``x`` reversed along axis 0."""
    c = lambda v: ex.const(np.asarray(v, np.int64), "c")  # noqa: E731
    return ex.node("Slice", [x, c([-1]), c([-_BIG]), c([0]), c([-1])], base=base)


@emitter("tuple_get")
def _tuple_get(ex, n, ins, a):
    outs = ins[0]
    if not isinstance(outs, (list, tuple)):
        raise ex.fail(n, "tuple_get of a node that is not a control flow op")
    return outs[int(a["index"])]


@emitter("zeros_like", "ones_like")
def _fill_like(ex, n, ins, a):
    v = 0 if ex.g.op(n) == "zeros_like" else 1
    from onnx import helper
    dt = np.dtype(a["dtype"])
    value = helper.make_tensor("value", _ONNX_TYPE[dt.name], [1], [v if dt != np.bool_ else bool(v)])
    return ex.node("ConstantOfShape", [ex.node("Shape", ins)], base=ex.g.name(n), value=value)


@emitter("scan")
def _scan(ex, n, ins, a):
    """ONNX ``Scan`` (``scan_input_directions``/``scan_output_directions`` 1 for a reverse scan:
    graphc stacks a reverse scan's results in the order of its inputs' steps); a scan over no
    sequences (``length`` steps) is a ``Loop`` with that trip count."""
    g, body = ex.g, a["body"]
    k, m = int(a["n_carry"]), int(a["n_xs"])
    carries, xs, caps = ins[:k], ins[k:k + m], ins[k + m:]
    name = g.name(n)
    if m == 0:
        return _scan_as_loop(ex, n, a, carries, caps)
    graph = subgraph(ex, body, [f"{name}/carry{i}" for i in range(k)] + [f"{name}/x{i}" for i in range(m)],
                     caps, ex.fresh(name + "/body"))
    n_y = len(body.outputs) - k
    dirs = {}
    if a["reverse"]:
        dirs = {"scan_input_directions": [1] * m}
        if n_y:
            dirs["scan_output_directions"] = [1] * n_y
    return _multi(ex, "Scan", list(carries) + list(xs), k + n_y, name, body=graph, num_scan_inputs=m,
                  **dirs)


def _loop_signature(ex, name):
    """The names and ValueInfoProtos of a Loop body's ``(iter_num, cond_in)`` inputs."""
    from onnx import TensorProto, helper
    it, c = ex.fresh(f"{name}/iter"), ex.fresh(f"{name}/cond_in")
    return it, c, [helper.make_tensor_value_info(it, TensorProto.INT64, []),
                   helper.make_tensor_value_info(c, TensorProto.BOOL, [])]


def _scan_as_loop(ex, n, a, carries, caps):
    g, body = ex.g, a["body"]
    k, name = int(a["n_carry"]), g.name(n)
    if a.get("length") is None:
        raise ex.fail(n, "a scan over no sequences needs its length")
    _, c, extra = _loop_signature(ex, name)
    graph = subgraph(ex, body, [f"{name}/carry{i}" for i in range(k)], caps, ex.fresh(name + "/body"),
                     extra_inputs=extra, first_output=lambda sub, outs: c)
    trip = ex.const(np.asarray(int(a["length"]), np.int64), f"{name}/trip_count")
    outs = _multi(ex, "Loop", [trip, "", *carries], len(body.outputs), name, body=graph)
    if a["reverse"]:
        outs = outs[:k] + [_reverse0(ex, y, f"{name}_rev") for y in outs[k:]]
    return outs


@emitter("while_loop")
def _while(ex, n, ins, a):
    """ONNX ``Loop``: M is the maximum number of iterations (empty when none), the condition is
    the cond body run once before the loop and, inside the Loop body, on the new loop variables
    (ONNX checks the body's ``cond_out`` before each next iteration, like ``tf.while_loop``)."""
    g = ex.g
    cond_b, body, k = a["cond"], a["body"], int(a["n_vars"])
    name = g.name(n)
    if a.get("max_input"):
        ins, m_in = ins[:-1], ins[-1]
        m_name = m_in if g.spec(g.inputs(n)[-1]).dtype == np.int64 else \
            ex.node("Cast", [m_in], base=f"{name}/max_iter", to=_ONNX_TYPE["int64"])
    elif a.get("max_iter") is not None:
        m_name = ex.const(np.asarray(int(a["max_iter"]), np.int64), f"{name}/max_iter")
    else:
        m_name = ""
    loop_vars, caps = list(ins[:k]), list(ins[k:])
    (first,) = inline(ex, cond_b, loop_vars + caps)
    _, _, extra = _loop_signature(ex, name)

    def cond_out(sub, outs):   # the cond body on the new loop variables, inside the Loop body
        sub_c = ex.child(cond_b.graph, nodes=sub.nodes)
        for node, nm in zip(cond_b.inputs, outs[:k] + caps):
            sub_c.names[node] = nm
        return sub_c.emit(list(cond_b.outputs), stop=cond_b.inputs)[0]
    graph = subgraph(ex, body, [f"{name}/var{i}" for i in range(k)], caps, ex.fresh(name + "/body"),
                     extra_inputs=extra, first_output=cond_out)
    return _multi(ex, "Loop", [m_name, first, *loop_vars], len(body.outputs), name, body=graph)


@emitter("cond")
def _cond(ex, n, ins, a):
    """ONNX ``If`` with the two bodies as ``then_branch``/``else_branch`` (no inputs: they read
    the captured values from the outer scope)."""
    name = ex.g.name(n)
    pred, caps = ins[0], list(ins[1:])
    then_g = subgraph(ex, a["true"], [], caps, ex.fresh(name + "/then"))
    else_g = subgraph(ex, a["false"], [], caps, ex.fresh(name + "/else"))
    return _multi(ex, "If", [pred], len(a["true"].outputs), name, then_branch=then_g, else_branch=else_g)
