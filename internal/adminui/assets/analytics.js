// Analytics: the aggregates of `quorumq analyze` read live from the
// node's Redis: moments over time, each histogram, the click graph.

import { el, on, clear, fmt, cell, table } from './dom.js';
import { get } from './api.js';
import { chartBox, graphSvg, PALETTE } from './charts.js';

const STATS = [
  ['mean', 'Mean'], ['variance', 'Variance'], ['skewness', 'Skewness'], ['excess_kurtosis', 'Excess kurtosis'],
];

export function mount(view, r) {
  const node = r.params.get('node') || '';
  const top = Math.min(500, Math.max(1, parseInt(r.params.get('top') || '20', 10) || 20));
  const moments = el('div', {});
  const hists = el('div', { class: 'grid' });
  const nodeInput = el('input', { id: 'graph-node', value: node, placeholder: 'a referrer or a URL; empty: whole graph', size: 40 });
  const topInput = el('input', { id: 'graph-top', type: 'number', min: 1, max: 500, value: top, size: 5 });
  const form = el('form', { class: 'inline', id: 'graph-form' },
    el('label', {}, 'Node', nodeInput), el('label', {}, 'Strongest links', topInput),
    el('button', { type: 'submit' }, 'Show'));
  on(form, 'submit', ev => { ev.preventDefault(); select(nodeInput.value.trim(), topInput.value); });
  const select = (n, t = top) => {
    const q = new URLSearchParams();
    if (n) q.set('node', n);
    q.set('top', t);
    location.hash = '#/analytics?' + q.toString();
  };
  const graphInfo = el('p', { class: 'muted', id: 'graph-info' });
  const graph = el('div', { id: 'graph' });
  const edges = el('div', {});
  const rest = el('div', {}, el('h2', {}, 'Histograms'), hists,
    el('div', { class: 'card' }, el('h2', {}, 'Click graph'), form, graphInfo, graph, edges));
  view.append(el('h1', {}, 'Analytics'), moments, rest);
  const charts = new Map();
  let histCharts = new Map();
  return {
    every: 3000,
    async refresh() {
      const params = { top };
      if (node) params.node = node;
      let ans;
      try {
        ans = await get('/analytics', params);
      } catch (e) {
        if (e.status !== 404) throw e;
        // A node started without --analytics-redis: say so in the page.
        clear(moments).append(el('p', { class: 'card muted', id: 'analytics-off' }, e.line));
        rest.hidden = true;
        return;
      }
      rest.hidden = false;
      // Moments: the current values and their history.
      clear(moments);
      for (const m of ans.moments) {
        const rows = [el('tr', { 'data-moments': m.key },
          cell(m.key, { field: 'key' }), cell(fmt(m.n), { num: true, field: 'n' }),
          STATS.map(([k]) => cell(fmt(m[k]), { num: true, field: k })),
          cell(fmt(m.stddev), { num: true, field: 'stddev' }))];
        let box = charts.get(m.key);
        if (!box) {
          box = STATS.map(([, label]) => chartBox(`${m.key}: ${label.toLowerCase()}`));
          charts.set(m.key, box);
        }
        moments.append(el('div', { class: 'card' }, el('h2', {}, 'Moments'),
          table(['Key', { label: 'n', num: true }, ...STATS.map(([, l]) => ({ label: l, num: true })), { label: 'Std dev', num: true }], rows)),
        el('div', { class: 'grid' }, box));
        const span = Math.max(60000, m.history.length ? m.history[m.history.length - 1].time_ms - m.history[0].time_ms : 0);
        STATS.forEach(([k, label], i) => box[i].draw([{ label, color: PALETTE[i], points: m.history.map(s => [s.time_ms, s[k]]) }], { span }));
      }
      // Histograms: one bar chart each.
      const next = new Map();
      clear(hists);
      for (const h of ans.histograms) {
        const box = histCharts.get(h.key) || chartBox(`${h.key} (${h.kind}, total ${fmt(h.total)})`, 'bar');
        box.setAttribute('data-histogram', h.key);
        next.set(h.key, box);
        hists.append(box);
        const bars = h.bins.map(b => ({ label: h.kind === 'int' ? String(b.value) : b.label, count: b.count }));
        if (h.kind === 'float') {
          if (h.underflow) bars.unshift({ label: 'under', count: h.underflow });
          if (h.overflow) bars.push({ label: 'over', count: h.overflow });
        }
        box.draw(bars);
      }
      histCharts = next;
      if (!ans.histograms.length) hists.append(el('p', { class: 'muted' }, 'No histograms in this Redis.'));
      // The click graph.
      const g = ans.graph;
      graphInfo.textContent = node
        ? `${node}: ${g.edges.length} strongest links (out and in) of a graph of ${fmt(g.node_count)} nodes` + (g.partial ? ' (links in looked for among part of the nodes)' : '')
        : `Heaviest ${g.edges.length} edges of a graph of ${fmt(g.node_count)} nodes. Click a node for its strongest links.`;
      clear(graph).append(graphSvg(g, id => select(id)));
      clear(edges).append(table(['From', 'To', { label: 'Clicks', num: true }],
        g.edges.map(e => el('tr', {}, cell(e.from, { field: 'from', cls: 'data' }), cell(e.to, { field: 'to', cls: 'data' }),
          cell(fmt(e.weight), { num: true, field: 'weight' }))), { id: 'graph-edges' }));
    },
  };
}
