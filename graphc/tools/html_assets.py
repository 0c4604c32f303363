"""The CSS and JavaScript of the HTML viewer (graphc/tools/html.py), kept apart from the Python.

The script lays the graph out in the browser (the same longest-path layering with barycenter sweeps
the viewer always used), so that expanding or collapsing a name-scope group re-lays the drawing out.
Layout units are nodes and collapsed groups; edges between units are aggregated (one path per unit
pair, ``data-count`` = how many node edges it stands for). The SVG is scaled to the viewport on open
(fit-to-window); zoom buttons scale from there, ``fit`` returns to it. The search box highlights nodes
whose name contains the text, expands their groups, selects the first and scrolls to it.
"""

CSS = """
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
.passinfo{font:12px monospace;padding:6px 12px;color:#555;height:16px;overflow:hidden;white-space:nowrap}
#details{width:360px;border-left:1px solid #ccc;padding:10px 14px;overflow:auto;background:#fff}
#details h2{font-size:14px;margin:4px 0 8px;word-break:break-all}
#details pre{background:#f4f4f4;padding:6px;overflow:auto;font-size:11px}
#details table{border-collapse:collapse;font-size:12px}#details td{padding:2px 6px;vertical-align:top}
#details a{cursor:pointer;color:#1565c0;text-decoration:underline}
svg.graph{display:block}
.edge{fill:none;stroke:#999;stroke-width:1.2}.edge.hl{stroke:#e65100;stroke-width:2.4}
.node{cursor:pointer}.node rect{stroke:#555;stroke-width:1}
.node.selected>rect{stroke:#e65100;stroke-width:3}.node.new>rect{stroke-dasharray:4 2}
.node.match>rect{stroke:#d50000;stroke-width:4}
.node text{font:11px monospace;pointer-events:none}.node text.op{font-weight:600}
.toggle rect{fill:#fff;stroke:#555}.toggle text{font:bold 13px monospace}
.sub rect{fill:#fffde7;stroke:#999}.sub text{font:11px monospace}
.group{cursor:pointer}.group>rect{fill:#eceff1;stroke:#455a64;stroke-width:1.5}
.group text{font:12px monospace;pointer-events:none}.group text.gname{font-weight:600}
.hull>rect{fill:rgba(69,90,100,.06);stroke:#90a4ae;stroke-dasharray:5 3}
.hull text{font:11px monospace;fill:#455a64;cursor:pointer}
.legend{display:flex;gap:8px;font-size:11px}.legend span{padding:1px 6px;border:1px solid #777;border-radius:3px;color:#222}
.zoom{margin-left:auto;display:flex;gap:4px;align-items:center}#search{width:180px}#search-count{min-width:60px}
"""

JS = r"""
const DATA = JSON.parse(document.getElementById('graph-data').textContent);
const W = 176, H = 46, GX = 28, GY = 56, PAD = 24;
let cur = 0, scale = 1;
const expanded = DATA.stages.map(()=>new Set()), matches = DATA.stages.map(()=>new Set());
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function short(s, n){ s = String(s); return s.length <= n ? s : s.slice(0, n-1)+'\u2026'; }
function byId(st, id){return DATA.stages[st].nodes.find(n=>n.id===id);}
function groupOf(st, id){ return (DATA.stages[st].groups_of||{})[id]; }
// the unit a node is drawn as: itself, or its collapsed group
function unitOf(st, id){ const g = groupOf(st, id); return (g !== undefined && !expanded[st].has(g)) ? 'g:'+g : 'n'+id; }
function layout(units, preds){
  // units in schedule order; depth = longest path from a source (back edges between groups ignored)
  const succs = new Map(units.map(u=>[u, []])), depth = new Map(), idx = new Map(units.map((u,k)=>[u,k]));
  units.forEach(u=>preds.get(u).forEach(p=>succs.get(p).push(u)));
  units.forEach(u=>{ let d = -1; preds.get(u).forEach(p=>{ if(depth.has(p)) d = Math.max(d, depth.get(p)); });
                     depth.set(u, d+1); });
  for(let k = units.length-1; k >= 0; k--){ const u = units[k], s = succs.get(u).filter(v=>idx.get(v) > k);
    if(!preds.get(u).length && s.length) depth.set(u, Math.max(0, Math.min(...s.map(v=>depth.get(v)))-1)); }
  const layers = new Map();
  units.forEach(u=>{ const d = depth.get(u); if(!layers.has(d)) layers.set(d, []); layers.get(d).push(u); });
  const keys = [...layers.keys()].sort((a,b)=>a-b), order = new Map();
  keys.forEach(d=>layers.get(d).forEach((u,k)=>order.set(u,k)));
  for(let sweep = 0; sweep < 4; sweep++){
    const down = sweep % 2 === 0, nb = down ? preds : succs;
    (down ? keys : [...keys].reverse()).forEach(d=>{
      const key = u=>{ const ps = nb.get(u).map(v=>order.get(v)); return ps.length ? ps.reduce((a,b)=>a+b,0)/ps.length : order.get(u); };
      const ks = new Map(layers.get(d).map(u=>[u, key(u)]));
      layers.get(d).sort((a,b)=>ks.get(a)-ks.get(b)); layers.get(d).forEach((u,k)=>order.set(u,k)); });
  }
  const widest = Math.max(1, ...[...layers.values()].map(l=>l.length)), pos = new Map();
  keys.forEach((d, row)=>{ const l = layers.get(d), off = (widest - l.length)*(W+GX)/2;
    l.forEach((u,k)=>pos.set(u, [PAD + off + k*(W+GX), PAD + row*(H+GY)])); });
  return pos;
}
function nodeSvg(st, n, x, y){
  const shape = (n.shape||[]).map(d=>d===null?'?':d).join(','), color = DATA.colors[n.kind]||'#eee';
  let s = '<g class="node kind-'+n.kind+(n.new?' new':'')+(matches[st].has(n.id)?' match':'')+'" data-id="'+n.id+
    '" transform="translate('+x.toFixed(1)+','+y.toFixed(1)+')"><title>'+esc(n.name+' ('+n.op+')')+'</title>'+
    '<rect width="'+W+'" height="'+H+'" rx="7" fill="'+color+'"/>'+
    '<text x="8" y="18" class="op">v'+n.id+' = '+esc(short(n.op, n.fused?16:20))+'</text>'+
    '<text x="8" y="36" class="spec">'+esc(short(n.dtype+'['+shape+']', 26))+'</text>';
  if(n.fused){ const fh = 16*n.fused.length+10, fw = Math.max(W, 8+7.2*Math.max(...n.fused.map(l=>l.length)));
    s += '<g class="toggle" data-id="'+n.id+'"><rect x="'+(W-22)+'" y="4" width="18" height="18" rx="4"/><text x="'+(W-17)+
      '" y="17">+</text></g><g class="sub" style="display:none"><rect y="'+(H+2)+'" width="'+fw.toFixed(0)+'" height="'+fh+'" rx="5"/>'+
      n.fused.map((l,k)=>'<text x="8" y="'+(H+18+16*k)+'">'+esc(l)+'</text>').join('')+'</g>'; }
  return s+'</g>';
}
function render(st){
  const S = DATA.stages[st], svg = document.getElementById('svg-'+st), units = [], preds = new Map(), seen = new Set();
  S.nodes.forEach(n=>{ const u = unitOf(st, n.id); if(!seen.has(u)){ seen.add(u); units.push(u); preds.set(u, new Set()); } });
  const agg = new Map();
  S.edges.forEach(e=>{ if(!seen.has(unitOf(st, e.source)) || !seen.has(unitOf(st, e.target))) return;
    const a = unitOf(st, e.source), b = unitOf(st, e.target); if(a === b) return;
    preds.get(b).add(a); const k = a+'>'+b; agg.set(k, (agg.get(k)||0)+1); });
  preds.forEach((v,k)=>preds.set(k, [...v]));
  const pos = layout(units, preds);
  let w = PAD+W, h = PAD+H; pos.forEach(([x,y])=>{ w = Math.max(w, x+W+PAD); h = Math.max(h, y+H+PAD); });
  const out = ['<defs><marker id="arrow-'+st+'" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" '+
               'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs><g class="hulls">'];
  expanded[st].forEach(g=>{ const ps = (S.groups[g]||[]).map(i=>pos.get('n'+i)).filter(p=>p); if(!ps.length) return;
    const x0 = Math.min(...ps.map(p=>p[0]))-8, y0 = Math.min(...ps.map(p=>p[1]))-20, x1 = Math.max(...ps.map(p=>p[0]))+W+8, y1 = Math.max(...ps.map(p=>p[1]))+H+8;
    out.push('<g class="hull" data-group="'+esc(g)+'"><rect x="'+x0+'" y="'+y0+'" width="'+(x1-x0)+'" height="'+(y1-y0)+'" rx="9"/>'+
             '<text x="'+(x0+6)+'" y="'+(y0+14)+'">\u2212 '+esc(g)+'</text></g>'); });
  out.push('</g><g class="edges">');
  const uid = u=>u.startsWith('g:') ? esc(u) : u.slice(1);
  agg.forEach((c, k)=>{ const [a, b] = k.split('>'), [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
    const X1 = x1+W/2, Y1 = y1+H, X2 = x2+W/2, Y2 = y2, my = (Y1+Y2)/2;
    out.push('<path class="edge" data-src="'+uid(a)+'" data-dst="'+uid(b)+'" data-count="'+c+'" style="stroke-width:'+
             (1.2+Math.log2(c)).toFixed(1)+'" d="M'+X1.toFixed(1)+','+Y1.toFixed(1)+' C'+X1.toFixed(1)+','+my.toFixed(1)+' '+
             X2.toFixed(1)+','+my.toFixed(1)+' '+X2.toFixed(1)+','+(Y2-2).toFixed(1)+'" marker-end="url(#arrow-'+st+')"><title>'+c+
             ' edge'+(c>1?'s':'')+'</title></path>'); });
  out.push('</g><g class="nodes">');
  units.forEach(u=>{ const [x, y] = pos.get(u);
    if(u.startsWith('g:')){ const g = u.slice(2), n = S.groups[g].length;
      out.push('<g class="group" data-group="'+esc(g)+'" data-count="'+n+'" transform="translate('+x.toFixed(1)+','+y.toFixed(1)+')">'+
               '<title>'+esc(g)+': '+n+' nodes (click to expand)</title><rect width="'+W+'" height="'+H+'" rx="3"/>'+
               '<text x="8" y="18" class="gname">\u25b8 '+esc(short(g, 20))+'</text><text x="8" y="36">'+n+' nodes</text></g>');
    } else out.push(nodeSvg(st, byId(st, +u.slice(1)), x, y)); });
  out.push('</g>');
  svg.setAttribute('viewBox', '0 0 '+w.toFixed(0)+' '+h.toFixed(0)); svg.innerHTML = out.join('');
  svg.querySelectorAll('.group,.hull').forEach(g=>g.addEventListener('click', ()=>toggleGroup(st, g.dataset.group)));
  svg.querySelectorAll('.node').forEach(g=>g.addEventListener('click', ev=>{ if(!ev.target.closest('.toggle')) select(+g.dataset.id); }));
  svg.querySelectorAll('.toggle').forEach(t=>t.addEventListener('click', ev=>{ ev.stopPropagation();
    const g = t.parentNode, sub = g.querySelector('.sub'), open = sub.style.display==='none';
    sub.style.display = open ? '' : 'none'; t.querySelector('text').textContent = open ? '\u2212' : '+';
    g.parentNode.appendChild(g); }));
  size(svg);
}
function toggleGroup(st, g){ if(expanded[st].has(g)) expanded[st].delete(g); else expanded[st].add(g); render(st); }
// fit-to-window: at scale 1 the SVG box is the visible area and the viewBox is scaled into it (meet)
// (measured without scrollbars, so that fit gives the same size whatever the zoom was)
function size(svg){ const v = document.querySelector('.view'), info = svg.parentNode.querySelector('.passinfo');
  v.style.overflow = 'hidden';
  const vw = v.clientWidth - 2, vh = v.clientHeight - (info ? info.offsetHeight : 0) - 2;
  v.style.overflow = scale > 1 ? 'auto' : 'hidden';
  svg.setAttribute('width', Math.max(50, vw*scale)); svg.setAttribute('height', Math.max(50, vh*scale)); }
function zoom(f){ scale = f ? scale*f : 1; document.querySelectorAll('svg.graph').forEach(size); }
function showStage(i){
  cur = i;
  document.querySelectorAll('.stage').forEach(s=>s.classList.toggle('active', +s.dataset.stage===i));
  document.querySelectorAll('.tab').forEach(t=>t.classList.toggle('active', +t.dataset.stage===i));
  document.getElementById('details').innerHTML = '<p>Click a node to see its details.</p>';
  size(document.getElementById('svg-'+i));
}
function select(id){
  const g0 = groupOf(cur, id); if(g0 !== undefined && !expanded[cur].has(g0)){ expanded[cur].add(g0); render(cur); }
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
    '<tr><td>trace</td><td class="node-trace">'+esc(n.trace||'')+'</td></tr></table>';
  if(n.fused){ h += '<h3>fused sub-expression</h3><pre class="fused">'+esc(n.fused.join('\n'))+'</pre>'; }
  h += '<h3>attrs</h3><pre class="attrs">'+esc(JSON.stringify(n.attrs, null, 1))+'</pre>';
  const d = document.getElementById('details'); d.innerHTML = h; d.dataset.node = id;
  d.querySelectorAll('a[data-goto]').forEach(a=>a.addEventListener('click',()=>select(+a.dataset.goto)));
  return g;
}
// search: substring of the node name (case-insensitive) or "v<id>"; expands the groups of the matches
function search(q){
  q = q.trim().toLowerCase(); const S = DATA.stages[cur], found = q ? S.nodes.filter(n=>
    n.name.toLowerCase().includes(q) || 'v'+n.id === q) : [];
  matches[cur] = new Set(found.map(n=>n.id));
  found.forEach(n=>{ const g = groupOf(cur, n.id); if(g !== undefined) expanded[cur].add(g); });
  render(cur);
  document.getElementById('search-count').textContent = q ? found.length+' found' : '';
  if(!found.length) return;
  const g = select(found[0].id), svg = document.getElementById('svg-'+cur), vb = svg.viewBox.baseVal;
  const k = Math.min(svg.clientWidth/vb.width, svg.clientHeight/vb.height);
  if(k < 0.8){ zoom(0.8/k); }   // readable: about 0.8 screen pixels per layout unit
  if(g) g.scrollIntoView({block:'center', inline:'center'});
}
document.querySelectorAll('.tab').forEach(t=>t.addEventListener('click',()=>showStage(+t.dataset.stage)));
document.getElementById('zin').onclick=()=>zoom(1.25);
document.getElementById('zout').onclick=()=>zoom(0.8);
document.getElementById('zfit').onclick=()=>zoom(0);
const box = document.getElementById('search');
box.addEventListener('input', ()=>search(box.value));
box.addEventListener('keydown', ev=>{ if(ev.key==='Enter') search(box.value); });
window.addEventListener('resize', ()=>zoom(1));
DATA.stages.forEach((_, i)=>render(i));
showStage(0);
"""
