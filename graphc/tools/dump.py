"""Graph dumps: stages of the pass pipeline as text (jaxpr-like), JSON (documented in docs/cli.md) or DOT.

    >>> from graphc.tools.workloads import build
    >>> p = build("chain_4", quick=True)
    >>> print(render(p, "optimized", "text").splitlines()[1])
      v0:f32[?] = placeholder  # x
"""
from __future__ import annotations

import json

import numpy as np

from graphc.funcgraph import Body, bodies
from graphc.ir import TupleSpec
from graphc.ops.control_flow_grad import VJP
from graphc.ops.fused import format_program
from graphc.ops.registry import get_op

from .workloads import Program, TargetError

JSON_FORMAT = "graphc-graph/1"
_DT = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64", "bool": "bool",
       "float16": "f16", "uint8": "u8", "int8": "i8"}
_HIDDEN = {"program", "value"}   # shown as a sub-expression / summarised


class Stage:
    """One graph to show: ``name`` ("raw", "optimized" or a pass), its nodes in schedule order, and
    (for pass stages) the pass record and the nodes new since the previous stage."""

    def __init__(self, name, graph, nodes, fetches, feeds, record=None, added=(), removed=()):
        self.name, self.graph, self.nodes = name, graph, list(nodes)
        self.fetches, self.feeds = list(fetches), list(feeds)
        self.record, self.added, self.removed = record, set(added), list(removed)


def _schedule(graph, fetches, feeds):
    from graphc.interpreter import schedule
    return schedule(graph, fetches, set(n for n in feeds if n in graph))


def stages(prog: Program, stage: str = "optimized") -> list[Stage]:
    """The stages ``--stage`` asks for: ``raw``, ``optimized``, ``all`` or ``after=PASS``.

        >>> from graphc.tools.workloads import build
        >>> [s.name for s in stages(build("chain_4", quick=True), "all")][:3]
        ['raw', 'dce', 'unroll_short_loops']
    """
    raw = Stage("raw", prog.graph, _schedule(prog.graph, prog.fetches, prog.feeds), prog.fetches, prog.feeds)
    if stage == "raw":
        return [raw]
    from graphc.passes import optimize
    from graphc.passes.manager import DEFAULT_PIPELINE
    names = [n for n, _ in DEFAULT_PIPELINE]
    after = None
    if stage.startswith("after="):
        after = stage[len("after="):]
        if after not in names:
            raise TargetError(f"--stage after={after}: unknown pass; passes: {', '.join(names)}")
    elif stage not in ("optimized", "all"):
        raise TargetError(f"--stage {stage}: expected raw, optimized, all or after=PASS")
    keep = stage != "optimized"
    g, report = optimize(_needed_graph(prog.graph, raw.nodes), prog.fetches, feeds=prog.feeds,
                         keep_snapshots=keep)
    if stage == "optimized":
        return [Stage("optimized", g, _schedule(g, report.fetches, prog.feeds), report.fetches, prog.feeds)]
    out, prev = [raw], set(raw.nodes)
    # a pass stage shows every node its snapshot holds (dead ones too, until a dce removes them);
    # fetch ids of intermediate snapshots are not recorded: the final ones where present, else a guess
    for (name, snap), rec in zip(report.snapshots[1:], report.passes):
        fetches = _stage_fetches(snap, prog, report)
        nodes = snap.topo_order()
        cur = set(nodes)
        st = Stage(name, snap, nodes, fetches, prog.feeds, rec, cur - prev, sorted(prev - cur))
        prev = cur
        if after is None:
            out.append(st)
        elif name == after:
            return [st]
    return out


def _needed_graph(graph, needed):
    """A copy of ``graph`` holding only the ``needed`` nodes (the raw stage's), ids and names kept.

    A model's graph also holds its other programs (a training graph's ``predict`` nodes, unused
    initialisers); the passes are run on this copy so that the first pass's input is the raw stage
    (``nodes_before`` of the first pass == the raw node count), not the whole model graph.
    """
    keep = set(needed)
    g = graph.copy()
    g.remove([n for n in g.nodes() if n not in keep])
    return g


def _stage_fetches(snap, prog, report):
    fs = [f for f in report.fetches if f in snap]
    if len(fs) == len(report.fetches):
        return fs
    fs = [f for f in prog.fetches if f in snap]
    return fs or [n for n in snap.nodes() if not snap.consumers(n)]


# -- values -> text / JSON ----------------------------------------------------------------------------------
def spec_str(spec) -> str:
    """``f32[?,784]`` for a TensorSpec."""
    if spec is None:
        return "?"
    if isinstance(spec, TupleSpec):
        return "(" + ", ".join(spec_str(p) for p in spec.parts) + ")"
    dims = ",".join("?" if d is None else str(d) for d in spec.shape)
    return f"{_DT.get(spec.dtype.name, spec.dtype.name)}[{dims}]"


def _val_str(v) -> str:
    if isinstance(v, Body):
        return f"{{{v.label}: {v.graph.num_nodes()} nodes}}"
    if isinstance(v, VJP):
        return f"saved {v.n_saved} per step"
    if isinstance(v, np.ndarray) or isinstance(v, np.generic):
        a = np.asarray(v)
        if a.size <= 4:
            body = np.array2string(a, separator=",", threshold=8).replace("\n", "")
            return body if a.ndim == 0 else f"{body}"
        return f"array({_DT.get(a.dtype.name, a.dtype.name)}[{','.join(map(str, a.shape))}])"
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, (tuple, list)):
        return "(" + ",".join(_val_str(x) for x in v) + ("," if len(v) == 1 and isinstance(v, tuple) else "") + ")"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def to_jsonable(v):
    """Attribute values as JSON: arrays become ``{"array": {"dtype", "shape", "value"?}}``."""
    if isinstance(v, (np.ndarray, np.generic)):
        a = np.asarray(v)
        d = {"dtype": a.dtype.name, "shape": list(a.shape)}
        if a.size <= 16:
            d["value"] = a.tolist()
        return {"array": d}
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (Body, VJP)):
        return _val_str(v)
    return repr(v)


def kind(graph, n) -> str:
    """The node's fusion class: source, elementwise, reduction, contraction, layout, opaque, state."""
    try:
        return get_op(graph.op(n)).fusion
    except Exception:
        return "opaque"


def body_lines(graph, n, indent: str = "") -> list[str]:
    """A control flow node's bodies, nested under it: each body's inputs, its nodes (bodies within
    it nested again) and its results, in the stage's text format (empty for other nodes)."""
    out = []
    for key, body in bodies(graph.attrs(n)):
        bg = body.graph
        ins = " ".join(f"v{i}:{spec_str(s)}" for i, s in zip(body.inputs, body.in_specs))
        out.append(f"{indent}{key} {{ {body.label}({ins}):")
        for m in bg.topo_order(body.outputs, stop=body.inputs):
            if m in body.inputs:
                continue
            at = attr_text(bg, m)
            args = " ".join(f"v{i}" for i in bg.inputs(m))
            out.append(f"{indent}  v{m}:{spec_str(bg.spec(m))} = {bg.op(m)}{'[' + at + ']' if at else ''}"
                       f"{' ' + args if args else ''}  # {bg.name(m)}")
            out.extend(f"{indent}    {x}" for x in fused_lines(bg, m, {}))
            out.extend(body_lines(bg, m, indent + "    "))
        out.append(f"{indent}  return {', '.join(f'v{o}' for o in body.outputs)} }}")
    return out


def fused_lines(graph, n, names) -> list[str]:
    """The sub-expression a fused node holds, one SSA line per step, or a control flow node's
    bodies (``body_lines``); empty for other nodes."""
    op, a = graph.op(n), graph.attrs(n)
    if bodies(a):
        return body_lines(graph, n)
    ins = [names.get(i, f"v{i}") for i in graph.inputs(n)]
    if op == "fused_elementwise":
        return format_program(a["program"], len(ins), ins)
    if op == "fused_contraction":
        k = a["n_c"]
        c_attrs = ", ".join(f"{key}={_val_str(v)}" for key, v in _items(a.get("c_attrs", ())))
        head = f"c = {a['contraction']}({', '.join(ins[:k])}{', ' + c_attrs if c_attrs else ''})"
        return [head] + format_program(a["program"], 1 + len(ins) - k, ["c"] + ins[k:])
    if op == "fused_reduction":
        lines = format_program(a["program"], len(ins), ins)
        r_attrs = ", ".join(f"{key}={_val_str(v)}" for key, v in _items(a.get("r_attrs", ())))
        last = f"t{len(a['program']) - 1}"
        return lines + [f"r = {a['reduce']}({last}{', ' + r_attrs if r_attrs else ''})"]
    return []


def _items(attrs):
    return sorted(attrs.items()) if isinstance(attrs, dict) else list(attrs)


def attr_text(graph, n) -> str:
    a = graph.attrs(n)
    parts = []
    source = get_op(graph.op(n)).external
    for k, v in sorted(a.items()):
        if k in ("c_attrs", "r_attrs", "n_c") or k in _HIDDEN and graph.op(n).startswith("fused"):
            continue
        if source and k in ("dtype", "shape"):   # the spec says it
            continue
        if k == "value":
            parts.append(f"value={_val_str(v)}")
        elif k != "program":
            parts.append(f"{k}={_val_str(v)}")
    return ", ".join(parts)


# -- formats -------------------------------------------------------------------------------------------------
def stage_text(st: Stage, title: str) -> str:
    """jaxpr-like text: ``v3:f32[?,64] = matmul[transpose_b=False] v0 v1  # dense/MatMul``."""
    g = st.graph
    names = {n: f"v{n}" for n in st.nodes}
    head = f"# {title} [{st.name}]: {len(st.nodes)} nodes"
    lines = [head]
    if st.record is not None:
        r = st.record
        notes = "; ".join(str(x) for x in r.notes)
        lines.append(f"#   pass {r.name}: {r.nodes_before} -> {r.nodes_after} nodes, {r.changed} changed, "
                     f"{r.seconds * 1e3:.1f} ms{'; ' + notes if notes else ''}")
        if st.removed:
            shown = ", ".join(f"v{n}" for n in st.removed[:20])
            more = f" (+{len(st.removed) - 20} more)" if len(st.removed) > 20 else ""
            lines.append(f"#   removed: {shown}{more}")
        if not r.changed and not st.added and not st.removed:
            lines.append("#   (graph unchanged)")
            return "\n".join(lines)
    for n in st.nodes:
        at = attr_text(g, n)
        ins = " ".join(names.get(i, f"v{i}") for i in g.inputs(n))
        mark = "+ " if n in st.added else "  "
        line = f"{mark}v{n}:{spec_str(g.spec(n))} = {g.op(n)}{'[' + at + ']' if at else ''}{' ' + ins if ins else ''}"
        lines.append(f"{line}  # {g.name(n)}")
        lines.extend(f"        {s}" for s in fused_lines(g, n, names))
    lines.append(f"  return {', '.join(f'v{f}' for f in st.fetches)}")
    return "\n".join(lines)


def stage_json(st: Stage, title: str) -> dict:
    """The documented JSON object of one stage (docs/cli.md)."""
    g = st.graph
    names = {n: f"v{n}" for n in st.nodes}
    nodes, edges = [], []
    for n in st.nodes:
        spec = g.spec(n)
        node = {"id": n, "name": g.name(n), "op": g.op(n), "kind": kind(g, n),
                "inputs": g.inputs(n), "shape": list(spec.shape) if spec else None,
                "dtype": spec.dtype.name if spec else None,
                "attrs": {k: to_jsonable(v) for k, v in sorted(g.attrs(n).items()) if k != "program"},
                "trace": g.trace(n)}
        found = bodies(g.attrs(n))
        if found:       # a loop's or branch's sub-graphs, nested (docs/cli.md)
            node["bodies"] = {key: body_json(b) for key, b in found}
            node["fused"] = fused_lines(g, n, names)
        if "program" in g.attrs(n):
            node["program"] = [{"op": op, "args": list(args), "attrs": to_jsonable(dict(at))}
                               for op, args, at in g.attrs(n)["program"]]
            node["fused"] = fused_lines(g, n, names)
        if n in st.added:
            node["new"] = True
        nodes.append(node)
        edges.extend({"source": u, "target": n, "pos": pos} for pos, u in enumerate(g.inputs(n)))
    out = {"format": JSON_FORMAT, "target": title, "stage": st.name, "nodes": nodes, "edges": edges,
           "inputs": [f for f in st.feeds if f in set(st.nodes)], "outputs": st.fetches}
    if st.record is not None:
        r = st.record
        out["pass"] = {"name": r.name, "nodes_before": r.nodes_before, "nodes_after": r.nodes_after,
                       "changed": r.changed, "seconds": r.seconds, "notes": [str(x) for x in r.notes],
                       "removed": st.removed}
    return out


def body_json(body: Body) -> dict:
    """One body as JSON: its nodes (with their own nested bodies), edges, inputs and outputs."""
    bg = body.graph
    nodes, edges = [], []
    for n in bg.topo_order(body.outputs, stop=body.inputs):
        spec = bg.spec(n)
        node = {"id": n, "name": bg.name(n), "op": bg.op(n), "kind": kind(bg, n), "inputs": bg.inputs(n),
                "shape": list(spec.shape), "dtype": spec.dtype.name,
                "attrs": {k: to_jsonable(v) for k, v in sorted(bg.attrs(n).items()) if k != "program"}}
        found = bodies(bg.attrs(n))
        if found:
            node["bodies"] = {key: body_json(b) for key, b in found}
        nodes.append(node)
        edges.extend({"source": u, "target": n, "pos": pos} for pos, u in enumerate(bg.inputs(n)))
    return {"label": body.label, "nodes": nodes, "edges": edges, "inputs": list(body.inputs),
            "outputs": list(body.outputs)}


_COLORS = {"source": "#d9d9d9", "elementwise": "#b7e1b1", "reduction": "#fdd49e", "contraction": "#a6c8ee",
           "layout": "#d8c3ea", "opaque": "#f4b6b6", "state": "#fff2a8"}


def stage_dot(st: Stage, title: str, cluster: int | None = None) -> str:
    g = st.graph
    pre = f"s{cluster}_" if cluster is not None else ""
    out = []
    for n in st.nodes:
        label = f"v{n} = {g.op(n)}\\n{spec_str(g.spec(n))}\\n{_dot_esc(g.name(n))}"
        fl = fused_lines(g, n, {i: f"v{i}" for i in st.nodes})
        if fl:
            label += "\\n" + "\\l".join(_dot_esc(s) for s in fl) + "\\l"
        out.append(f'  {pre}n{n} [label="{label}", fillcolor="{_COLORS.get(kind(g, n), "#eee")}"];')
    for n in st.nodes:
        ins = g.inputs(n)
        for pos, u in enumerate(ins):
            lab = f' [label="{pos}"]' if len(ins) > 1 else ""
            out.append(f"  {pre}n{u} -> {pre}n{n}{lab};")
    return "\n".join(out)


def _dot_esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def render(prog: Program, stage: str = "optimized", fmt: str = "text") -> str:
    """The dump of ``prog`` at ``stage`` in ``fmt`` (text, json, dot or html), as a string.

        >>> from graphc.tools.workloads import build
        >>> import json
        >>> d = json.loads(render(build("chain_4", quick=True), "raw", "json"))
        >>> d["stage"], [n["op"] for n in d["nodes"]][:2]
        ('raw', ['placeholder', 'constant'])
    """
    sts = stages(prog, stage)
    title = prog.name
    if fmt == "text":
        return "\n\n".join(stage_text(s, title) for s in sts) + "\n"
    if fmt == "json":
        objs = [stage_json(s, title) for s in sts]
        doc = objs[0] if len(objs) == 1 else {"format": JSON_FORMAT, "target": title, "stages": objs}
        return json.dumps(doc, indent=1) + "\n"
    if fmt == "dot":
        head = ["digraph graphc {", "  rankdir=TB;", '  node [shape=box, style="rounded,filled", '
                'fontname="monospace", fontsize=10];', f'  label="{_dot_esc(title)}";']
        if len(sts) == 1:
            body = [stage_dot(sts[0], title)]
        else:
            body = [f'  subgraph cluster_{i} {{\n  label="{_dot_esc(s.name)}";\n{stage_dot(s, title, i)}\n  }}'
                    for i, s in enumerate(sts)]
        return "\n".join(head + body + ["}"]) + "\n"
    if fmt == "html":
        from .html import render_html
        return render_html(title, [(s.name, stage_json(s, title)) for s in sts])
    raise TargetError(f"--format {fmt}: expected text, json, dot or html")
