"""A self-contained HTML viewer: an SVG per stage, laid out here in Python (layers by topological depth).

No network, no Graphviz: the layout is a longest-path layering with two barycenter sweeps to reduce
edge crossings. Nodes are coloured by fusion class; fused nodes have a ``+`` that unfolds the
sub-expression they hold; clicking a node fills the side panel; ``--stage all`` gives one tab per stage.

    >>> from graphc.tools.workloads import build
    >>> from graphc.tools.dump import render
    >>> page = render(build("chain_4", quick=True), "optimized", "html")
    >>> page.startswith("<!DOCTYPE html>") and page.count('class="node ') == 4
    True
"""
from __future__ import annotations

import html
import json

from .dump import _COLORS

W, H, GX, GY, PAD = 176, 46, 28, 56, 24


def layout(nodes: list[dict]) -> dict[int, tuple[float, float]]:
    """Top-left ``(x, y)`` of each node id: layer = longest path from a source, barycenter order.

        >>> layout([{"id": 0, "inputs": []}, {"id": 1, "inputs": [0]}])[1][1] > 0
        True
    """
    ids = [n["id"] for n in nodes]
    present = set(ids)
    preds = {n["id"]: [u for u in n["inputs"] if u in present] for n in nodes}
    succs: dict[int, list] = {i: [] for i in ids}
    for v, us in preds.items():
        for u in us:
            succs[u].append(v)
    depth: dict[int, int] = {}
    for i in ids:  # nodes arrive in schedule (topological) order
        depth[i] = 1 + max((depth[u] for u in preds[i]), default=-1)
    # sources sit just above their first consumer (constants and weights near their use)
    for i in reversed(ids):
        if not preds[i] and succs[i]:
            depth[i] = max(0, min(depth[v] for v in succs[i]) - 1)
    layers: dict[int, list] = {}
    for i in ids:
        layers.setdefault(depth[i], []).append(i)
    order = {i: k for layer in layers.values() for k, i in enumerate(layer)}
    for sweep in range(4):
        down = sweep % 2 == 0
        for d in (sorted(layers) if down else sorted(layers, reverse=True)):
            nb = preds if down else succs

            def key(i):
                ps = [order[u] for u in nb[i]]
                return (sum(ps) / len(ps)) if ps else order[i]
            layers[d].sort(key=key)
            for k, i in enumerate(layers[d]):
                order[i] = k
    widest = max((len(v) for v in layers.values()), default=1)
    pos = {}
    for d, layer in layers.items():
        off = (widest - len(layer)) * (W + GX) / 2
        for k, i in enumerate(layer):
            pos[i] = (PAD + off + k * (W + GX), PAD + d * (H + GY))
    return pos


def _short(s: str, n: int = 26) -> str:
    return s if len(s) <= n else s[:n - 1] + "\u2026"


def stage_svg(index: int, stage: dict) -> str:
    """The SVG of one stage (one ``<g class="node ...">`` per node, edges as paths)."""
    nodes = stage["nodes"]
    pos = layout(nodes)
    width = max((x for x, _ in pos.values()), default=0) + W + PAD
    height = max((y for _, y in pos.values()), default=0) + H + PAD
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" id="svg-{index}" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">',
           '<defs><marker id="arrow-%d" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>' % index,
           '<g class="edges">']
    for e in stage["edges"]:
        if e["source"] not in pos or e["target"] not in pos:
            continue
        (x1, y1), (x2, y2) = pos[e["source"]], pos[e["target"]]
        x1, y1, x2, y2 = x1 + W / 2, y1 + H, x2 + W / 2, y2
        my = (y1 + y2) / 2
        out.append(f'<path class="edge" data-src="{e["source"]}" data-dst="{e["target"]}" '
                   f'd="M{x1:.1f},{y1:.1f} C{x1:.1f},{my:.1f} {x2:.1f},{my:.1f} {x2:.1f},{y2 - 2:.1f}" '
                   f'marker-end="url(#arrow-{index})"/>')
    out.append('</g><g class="nodes">')
    for n in nodes:
        x, y = pos[n["id"]]
        shape = ",".join("?" if d is None else str(d) for d in (n["shape"] or []))
        color = _COLORS.get(n["kind"], "#eee")
        new = " new" if n.get("new") else ""
        title = html.escape(f'{n["name"]} ({n["op"]})')
        out.append(f'<g class="node kind-{n["kind"]}{new}" data-id="{n["id"]}" '
                   f'transform="translate({x:.1f},{y:.1f})"><title>{title}</title>'
                   f'<rect width="{W}" height="{H}" rx="7" fill="{color}"/>'
                   f'<text x="8" y="18" class="op">v{n["id"]} = {html.escape(_short(n["op"], 16 if n.get("fused") else 20))}</text>'
                   f'<text x="8" y="36" class="spec">{html.escape(_short(n["dtype"] + "[" + shape + "]"))}'
                   f'</text>')
        fused = n.get("fused")
        if fused:
            fh = 16 * len(fused) + 10
            fw = max(W, 8 + 7.2 * max(len(s) for s in fused))
            out.append(f'<g class="toggle" data-id="{n["id"]}"><rect x="{W - 22}" y="4" width="18" '
                       f'height="18" rx="4"/><text x="{W - 17}" y="17">+</text></g>'
                       f'<g class="sub" style="display:none"><rect y="{H + 2}" width="{fw:.0f}" '
                       f'height="{fh}" rx="5"/>')
            for k, line in enumerate(fused):
                out.append(f'<text x="8" y="{H + 18 + 16 * k}">{html.escape(line)}</text>')
            out.append('</g>')
        out.append('</g>')
    out.append('</g></svg>')
    return "\n".join(out)


_CSS = """
body{margin:0;font:13px system-ui,sans-serif;color:#222;display:flex;flex-direction:column;height:100vh}
header{padding:8px 12px;background:#263238;color:#fff;display:flex;gap:16px;align-items:center}
header h1{font-size:15px;margin:0;font-weight:600}
.tabs{display:flex;flex-wrap:wrap;gap:4px;padding:6px 12px;background:#eceff1;border-bottom:1px solid #ccc}
.tabs[hidden]{display:none}
.tab{border:1px solid #bbb;background:#fff;border-radius:4px;padding:3px 9px;cursor:pointer;font:12px monospace}
.tab.active{background:#263238;color:#fff}
main{flex:1;display:flex;min-height:0}
.view{flex:1;overflow:auto;position:relative;background:#fafafa}
.stage{display:none}.stage.active{display:block}
.passinfo{font:12px monospace;padding:6px 12px;color:#555}
#details{width:360px;border-left:1px solid #ccc;padding:10px 14px;overflow:auto;background:#fff}
#details h2{font-size:14px;margin:4px 0 8px;word-break:break-all}
#details pre{background:#f4f4f4;padding:6px;overflow:auto;font-size:11px}
#details table{border-collapse:collapse;font-size:12px}#details td{padding:2px 6px;vertical-align:top}
#details a{cursor:pointer;color:#1565c0;text-decoration:underline}
svg.graph{overflow:visible;display:block}
.edge{fill:none;stroke:#999;stroke-width:1.2}.edge.hl{stroke:#e65100;stroke-width:2.4}
.node{cursor:pointer}.node rect{stroke:#555;stroke-width:1}
.node.selected>rect{stroke:#e65100;stroke-width:3}.node.new>rect{stroke-dasharray:4 2}
.node text{font:11px monospace;pointer-events:none}.node text.op{font-weight:600}
.toggle rect{fill:#fff;stroke:#555}.toggle text{font:bold 13px monospace}
.sub rect{fill:#fffde7;stroke:#999}.sub text{font:11px monospace}
.legend{display:flex;gap:8px;font-size:11px}.legend span{padding:1px 6px;border:1px solid #777;border-radius:3px;color:#222}
.zoom{margin-left:auto}
"""

_JS = r"""
const DATA = JSON.parse(document.getElementById('graph-data').textContent);
let cur = 0, scale = 1;
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function byId(st, id){return DATA.stages[st].nodes.find(n=>n.id===id);}
function showStage(i){
  cur = i;
  document.querySelectorAll('.stage').forEach(s=>s.classList.toggle('active', +s.dataset.stage===i));
  document.querySelectorAll('.tab').forEach(t=>t.classList.toggle('active', +t.dataset.stage===i));
  document.getElementById('details').innerHTML = '<p>Click a node to see its details.</p>';
}
function select(id){
  const sec = document.querySelector('.stage[data-stage="'+cur+'"]');
  sec.querySelectorAll('.node.selected').forEach(g=>g.classList.remove('selected'));
  sec.querySelectorAll('.edge.hl').forEach(e=>e.classList.remove('hl'));
  const g = sec.querySelector('.node[data-id="'+id+'"]');
  if(g){g.classList.add('selected');}
  sec.querySelectorAll('.edge[data-src="'+id+'"],.edge[data-dst="'+id+'"]').forEach(e=>e.classList.add('hl'));
  const st = DATA.stages[cur], n = byId(cur, id);
  const link = u => { const m = byId(cur, u); return '<a data-goto="'+u+'">v'+u+(m?' '+esc(m.name):'')+'</a>'; };
  const consumers = st.edges.filter(e=>e.source===id).map(e=>e.target);
  const shape = '['+(n.shape||[]).map(d=>d===null?'?':d).join(',')+']';
  let h = '<h2 class="node-name">v'+n.id+' \u00b7 '+esc(n.name)+'</h2><table>'+
    '<tr><td>op</td><td class="node-op">'+esc(n.op)+'</td></tr>'+
    '<tr><td>kind</td><td>'+esc(n.kind)+'</td></tr>'+
    '<tr><td>spec</td><td class="node-spec">'+esc(n.dtype)+esc(shape)+'</td></tr>'+
    '<tr><td>inputs</td><td>'+(n.inputs.map(link).join('<br>')||'\u2013')+'</td></tr>'+
    '<tr><td>consumers</td><td>'+(consumers.map(link).join('<br>')||'\u2013')+'</td></tr>'+
    '<tr><td>trace</td><td>'+esc(n.trace||'')+'</td></tr></table>';
  if(n.fused){ h += '<h3>fused sub-expression</h3><pre class="fused">'+esc(n.fused.join('\n'))+'</pre>'; }
  h += '<h3>attrs</h3><pre class="attrs">'+esc(JSON.stringify(n.attrs, null, 1))+'</pre>';
  const d = document.getElementById('details'); d.innerHTML = h; d.dataset.node = id;
  d.querySelectorAll('a[data-goto]').forEach(a=>a.addEventListener('click',()=>select(+a.dataset.goto)));
}
document.querySelectorAll('.tab').forEach(t=>t.addEventListener('click',()=>showStage(+t.dataset.stage)));
document.querySelectorAll('.node').forEach(g=>g.addEventListener('click',ev=>{
  if(ev.target.closest('.toggle')) return; select(+g.dataset.id);}));
document.querySelectorAll('.toggle').forEach(t=>t.addEventListener('click',ev=>{
  ev.stopPropagation();
  const g = t.parentNode, sub = g.querySelector('.sub'), open = sub.style.display==='none';
  sub.style.display = open ? '' : 'none'; t.querySelector('text').textContent = open ? '\u2212' : '+';
  g.parentNode.appendChild(g);  // draw on top
}));
function zoom(f){ scale = f ? scale*f : 1;
  document.querySelectorAll('svg.graph').forEach(s=>{ const vb = s.viewBox.baseVal;
    s.setAttribute('width', vb.width*scale); s.setAttribute('height', vb.height*scale); }); }
document.getElementById('zin').onclick=()=>zoom(1.25);
document.getElementById('zout').onclick=()=>zoom(0.8);
document.getElementById('zreset').onclick=()=>zoom(0);
showStage(0);
"""


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
        sections.append(f'<section class="stage" data-stage="{i}"><div class="passinfo">{info}</div>'
                        f'{stage_svg(i, st)}</section>')
    legend = "".join(f'<span style="background:{c}">{k}</span>' for k, c in _COLORS.items())
    data = json.dumps({"title": title, "stages": [st for _, st in stages]}).replace("</", "<\\/")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>graphc: '
            f'{html.escape(title)}</title><style>{_CSS}</style></head><body>'
            f'<header><h1>graphc \u00b7 {html.escape(title)}</h1><div class="legend">{legend}</div>'
            f'<div class="zoom"><button id="zout">\u2212</button><button id="zreset">1:1</button>'
            f'<button id="zin">+</button></div></header>'
            f'<nav class="tabs"{" hidden" if len(stages) == 1 else ""}>{tabs}</nav>'
            f'<main><div class="view">{"".join(sections)}</div><aside id="details"></aside></main>'
            f'<script type="application/json" id="graph-data">{data}</script>'
            f'<script>{_JS}</script></body></html>\n')
