"""A self-contained HTML viewer: one SVG per stage, laid out in the page (layers by topological depth).

No network, no Graphviz: the script in :mod:`graphc.tools.html_assets` lays the graph out with a
longest-path layering and barycenter sweeps to reduce edge crossings, and re-lays it out when a group
opens or closes. Nodes are coloured by fusion class; fused nodes have a ``+`` that unfolds the
sub-expression they hold; clicking a node fills the side panel; ``--stage all`` gives one tab per stage.

Large stages (more than :data:`GROUP_MIN_NODES` nodes) are drawn by name scope: see :func:`groups`.
The drawing is fitted to the window on open; a search box finds nodes by name.

    >>> from graphc.tools.workloads import build
    >>> from graphc.tools.dump import render
    >>> page = render(build("chain_4", quick=True), "optimized", "html")
    >>> page.startswith("<!DOCTYPE html>") and 'id="svg-0"' in page
    True
"""
from __future__ import annotations

import html
import json
from collections import Counter

from .dump import _COLORS
from .html_assets import CSS, JS

#: stages with more nodes than this start with their name-scope groups collapsed
GROUP_MIN_NODES = 100


def scope_key(name: str, program_scope: str | None) -> str | None:
    """The group of a node name: its first scope after the program scope, or None (no scope).

        >>> scope_key("train/dense/MatMul", "train"), scope_key("dense/kernel", "train")
        ('dense', 'dense')
        >>> scope_key("train/dense_input", "train") is None
        True
    """
    parts = name.split("/")
    if program_scope is not None and len(parts) > 1 and parts[0] == program_scope:
        parts = parts[1:]
    return parts[0] if len(parts) > 1 else None


def groups(nodes: list[dict]) -> dict[str, list[int]]:
    """Name-scope groups of a stage's nodes: ``{group: [node ids]}``, groups of two nodes or more.

    The group of a node is the first component of its scoped name, except that a *program scope* (a
    first component that more than half of the nodes share, such as ``train/`` or ``predict/``) is
    skipped: ``train/dense/MatMul`` and the variable ``dense/kernel`` both fall in group ``dense``,
    ``train/adam/sqrt_3`` in ``adam``. Nested scopes are not nested groups: ``train/gradients/dense/x``
    is in ``gradients``. A name with no scope left (``train/dense_input``) is in no group.

        >>> groups([{"id": 0, "name": "p/a/x"}, {"id": 1, "name": "p/a/y"}, {"id": 2, "name": "p/z"}])
        {'a': [0, 1]}
    """
    firsts = Counter(n["name"].split("/")[0] for n in nodes if "/" in n["name"])
    top = firsts.most_common(1)
    program_scope = top[0][0] if top and top[0][1] * 2 > len(nodes) else None
    out: dict[str, list[int]] = {}
    for n in nodes:
        key = scope_key(n["name"], program_scope)
        if key is not None:
            out.setdefault(key, []).append(n["id"])
    return {k: v for k, v in out.items() if len(v) > 1}


def _with_groups(st: dict) -> dict:
    """The stage as the page's script reads it: plus ``groups`` and ``groups_of`` (node id -> group)
    when the stage is large enough to start collapsed."""
    gs = groups(st["nodes"]) if len(st["nodes"]) > GROUP_MIN_NODES else {}
    return {**st, "groups": gs, "groups_of": {i: g for g, ids in gs.items() for i in ids}}


def render_html(title: str, stages: list[tuple[str, dict]]) -> str:
    """One self-contained page (inline CSS, JS and SVG) for ``[(stage name, stage JSON)]``.

        >>> page = render_html("t", [("raw", {"nodes": [], "edges": []})])
        >>> "<svg" in page and "http" not in page.replace('http://www.w3.org/2000/svg', '')
        True
    """
    tabs = "".join(f'<button class="tab" data-stage="{i}">{html.escape(name)} '
                   f'({len(st["nodes"])})</button>' for i, (name, st) in enumerate(stages))
    sections = []
    for i, (name, st) in enumerate(stages):
        info = f"{html.escape(name)}: {len(st['nodes'])} nodes"
        p = st.get("pass")
        if p:
            info += (f" \u00b7 pass {html.escape(p['name'])}: {p['nodes_before']} \u2192 {p['nodes_after']}"
                     f" nodes, {p['changed']} changed, {p['seconds'] * 1e3:.1f} ms")
            if p["notes"]:
                info += " \u00b7 " + html.escape("; ".join(p["notes"]))
        sections.append(f'<section class="stage" data-stage="{i}"><div class="passinfo" title="{info}">{info}'
                        f'</div><svg xmlns="http://www.w3.org/2000/svg" class="graph" id="svg-{i}"></svg>'
                        f'</section>')
    legend = "".join(f'<span style="background:{c}">{k}</span>' for k, c in _COLORS.items())
    data = json.dumps({"title": title, "colors": _COLORS,
                       "stages": [_with_groups(st) for _, st in stages]}).replace("</", "<\\/")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>graphc: '
            f'{html.escape(title)}</title><style>{CSS}</style></head><body>'
            f'<header><h1>graphc \u00b7 {html.escape(title)}</h1><div class="legend">{legend}</div>'
            f'<div class="zoom"><input id="search" type="search" placeholder="find node by name">'
            f'<span id="search-count"></span><button id="zout">\u2212</button>'
            f'<button id="zfit" title="fit to window">fit</button><button id="zin">+</button></div></header>'
            f'<nav class="tabs"{" hidden" if len(stages) == 1 else ""}>{tabs}</nav>'
            f'<main><div class="view">{"".join(sections)}</div><aside id="details"></aside></main>'
            f'<script type="application/json" id="graph-data">{data}</script>'
            f'<script>{JS}</script></body></html>\n')
