// Charts drawn here, on <canvas> (lines, bars) and in SVG (the click
// graph). Labels are drawn as canvas text or SVG text nodes, never HTML.

import { el, svg, on, fmt } from './dom.js';

export const PALETTE = ['#2b5797', '#d9822b', '#1f7a3a', '#b3261e', '#7b4fa0', '#138d90', '#8a6d3b', '#c2185b'];

// fit sizes a canvas's drawing buffer to its box and the screen's pixel
// ratio, and returns its 2D context in CSS pixels.
function fit(canvas) {
  const r = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, h = canvas.clientHeight || 180;
  if (canvas.width !== Math.round(w * r) || canvas.height !== Math.round(h * r)) {
    canvas.width = Math.round(w * r);
    canvas.height = Math.round(h * r);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(r, 0, 0, r, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  return { ctx, w, h };
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(x) {
  if (!(x > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

// chartBox is a canvas with a legend under it; draw(series) redraws it.
export function chartBox(title, kind = 'line') {
  const canvas = el('canvas', { class: 'chart', 'data-chart': title });
  const legend = el('div', { class: 'legend' });
  const box = el('div', { class: 'card chart-box' }, el('h2', {}, title), canvas, legend);
  box.draw = (data, opts) => {
    if (kind === 'bar') barChart(canvas, data, opts);
    else lineChart(canvas, data, opts);
    legend.replaceChildren(...(kind === 'line' ? data.map((s, i) => {
      const sp = el('span', {}, s.label);
      sp.style.setProperty('--swatch', s.color || PALETTE[i % PALETTE.length]);
      return sp;
    }) : []));
  };
  return box;
}

// Bounds of a line chart's time span when none is given: the span of
// the data, at least a minute (the history kept is ten minutes).
const MIN_SPAN = 60 * 1000, MAX_SPAN = 10 * 60 * 1000;

// lineChart draws series ({label, color, points: [[timeMs, value], ...]})
// against time, the newest at the right edge, over span ms (default:
// the data's).
export function lineChart(canvas, series, { span, min } = {}) {
  const { ctx, w, h } = fit(canvas);
  const left = 56, right = 10, top = 10, bottom = 22;
  const pw = w - left - right, ph = h - top - bottom;
  let tmax = 0, lo = Infinity, hi = -Infinity;
  for (const s of series) for (const [t, v] of s.points) {
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    tmax = Math.max(tmax, t); lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  ctx.strokeStyle = '#dde1e7'; ctx.fillStyle = '#5d6877'; ctx.lineWidth = 1;
  if (!Number.isFinite(lo)) {
    ctx.fillText('no data yet', left + 8, top + 16);
    return;
  }
  if (span === undefined) {
    const first = Math.min(...series.flatMap(s => s.points.map(p => p[0])));
    span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, tmax - first));
  }
  if (min !== undefined) lo = Math.min(lo, min);
  if (lo >= 0 && min !== undefined) lo = min;
  let range = hi - lo;
  if (range === 0) range = Math.abs(hi) || 1;
  const ymax = lo >= 0 ? niceMax(hi) : hi + range * 0.1;
  const ymin = lo >= 0 ? 0 : lo - range * 0.1;
  const tmin = tmax - span;
  const x = t => left + (t - tmin) / span * pw;
  const y = v => top + ph - (v - ymin) / (ymax - ymin) * ph;
  ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const v = ymin + (ymax - ymin) * i / 4;
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - right, y(v)); ctx.stroke();
    ctx.fillText(fmt(Math.abs(v) >= 100 ? Math.round(v) : Number(v.toPrecision(3))), left - 6, y(v));
  }
  ctx.textAlign = 'center'; ctx.textBaseline = 'top';
  for (let i = 0; i <= 4; i++) {
    const t = tmin + span * i / 4;
    const ago = Math.round((tmax - t) / 1000);
    ctx.fillText(ago === 0 ? 'now' : '-' + (ago >= 60 ? (ago / 60).toFixed(ago % 60 ? 1 : 0) + ' min' : ago + ' s'), x(t), top + ph + 6);
  }
  series.forEach((s, i) => {
    ctx.strokeStyle = s.color || PALETTE[i % PALETTE.length]; ctx.lineWidth = 2;
    ctx.beginPath();
    let pen = false;
    for (const [t, v] of s.points) {
      if (t < tmin || v === null || v === undefined || !Number.isFinite(v)) { pen = false; continue; }
      if (pen) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
      pen = true;
    }
    ctx.stroke();
  });
}

// barChart draws bars ({label, count}) left to right, the count above
// each when there is room.
export function barChart(canvas, bars) {
  const { ctx, w, h } = fit(canvas);
  const left = 48, right = 8, top = 14, bottom = 30;
  const pw = w - left - right, ph = h - top - bottom;
  ctx.fillStyle = '#5d6877'; ctx.strokeStyle = '#dde1e7';
  if (!bars.length) { ctx.fillText('empty', left + 8, top + 16); return; }
  const ymax = niceMax(Math.max(...bars.map(b => b.count)));
  const y = v => top + ph - v / ymax * ph;
  ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - right, y(v)); ctx.stroke();
    ctx.fillText(fmt(Math.round(v)), left - 6, y(v));
  }
  const bw = pw / bars.length;
  const every = Math.ceil(bars.length / Math.max(1, Math.floor(pw / 60)));
  bars.forEach((b, i) => {
    ctx.fillStyle = PALETTE[0];
    const bh = ph - (y(b.count) - top);
    ctx.fillRect(left + i * bw + 1, y(b.count), Math.max(1, bw - 2), bh);
    ctx.fillStyle = '#5d6877';
    if (i % every === 0) {
      ctx.textAlign = 'center'; ctx.textBaseline = 'top';
      ctx.fillText(b.label, left + (i + 0.5) * bw, top + ph + 6, bw * every);
    }
    if (bw > 26 && b.count > 0) {
      ctx.textAlign = 'center'; ctx.textBaseline = 'bottom';
      ctx.fillText(fmt(b.count), left + (i + 0.5) * bw, y(b.count) - 1);
    }
  });
}

// short shortens a long node name (a URL) for a label.
function short(s, n = 40) {
  const t = s.replace(/^https?:\/\//, '');
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}

// graphSvg draws a click graph ({nodes, edges, node}) as SVG: with a
// selected node, it sits in the middle with the nodes that link to it on
// the left and those it links to on the right; otherwise referrers are
// on the left and targets on the right. Edge width follows the weight.
// onSelect(id) runs when a node is clicked.
export function graphSvg(g, onSelect) {
  const W = 1000, pad = 24, ROW = 18;
  const edges = g.edges || [];
  if (!edges.length && !g.node) {
    return svg('svg', { class: 'graph', viewBox: `0 0 ${W} 80`, role: 'img', 'aria-label': 'click graph' },
      svg('text', { x: pad, y: pad * 2 }, 'no clicks yet'));
  }
  const sel = g.node || '';
  const leftIds = [], rightIds = [];
  const seen = new Set(sel ? [sel] : []);
  const add = (list, id) => { if (!seen.has(id)) { seen.add(id); list.push(id); } };
  for (const e of edges) {
    if (sel) {
      if (e.from === sel) add(rightIds, e.to); else add(leftIds, e.from);
    } else {
      add(leftIds, e.from);
      add(rightIds, e.to);
    }
  }
  // Tall enough for a label a row on the longer column.
  const H = Math.max(520, 2 * pad + ROW * Math.max(leftIds.length, rightIds.length));
  const root = svg('svg', { class: 'graph', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'click graph' });
  const pos = new Map();
  const column = (ids, x) => ids.forEach((id, i) => pos.set(id, [x, pad + (i + 0.5) * (H - 2 * pad) / ids.length]));
  // Labels of up to 40 characters fit on either side.
  column(leftIds, 290);
  column(rightIds, 710);
  if (sel) pos.set(sel, [W / 2, H / 2]);
  const wmax = Math.max(1, ...edges.map(e => e.weight));
  const edgeLayer = svg('g', {});
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const line = svg('line', {
      class: 'edge', x1: a[0], y1: a[1], x2: b[0], y2: b[1],
      'stroke-width': (1 + 7 * e.weight / wmax).toFixed(1),
      'data-from': e.from, 'data-to': e.to, 'data-weight': e.weight,
    }, svg('title', {}, `${e.from} → ${e.to}: ${e.weight}`));
    edgeLayer.append(line);
  }
  root.append(edgeLayer);
  const weight = new Map((g.nodes || []).map(n => [n.id, n.weight]));
  const nmax = Math.max(1, ...weight.values());
  for (const [id, [x, y]] of pos) {
    const isLeft = x < W / 2, isSel = id === sel;
    const r = 4 + 8 * Math.sqrt((weight.get(id) || 0) / nmax);
    const cls = 'node' + (isSel ? ' selected' : '') + (!sel && isLeft ? ' referrer' : '');
    const gNode = svg('g', { class: cls, 'data-node': id, tabindex: 0 },
      svg('circle', { cx: x, cy: y, r: r.toFixed(1) }),
      svg('text', {
        x: isSel ? x : isLeft ? x - r - 4 : x + r + 4, y: isSel ? y - r - 6 : y + 4,
        'text-anchor': isSel ? 'middle' : isLeft ? 'end' : 'start',
      }, short(id)),
      svg('title', {}, `${id} (${fmt(weight.get(id) || 0)} clicks shown)`));
    on(gNode, 'click', () => onSelect && onSelect(id));
    on(gNode, 'keydown', ev => { if (ev.key === 'Enter' && onSelect) onSelect(id); });
    root.append(gNode);
  }
  return root;
}
