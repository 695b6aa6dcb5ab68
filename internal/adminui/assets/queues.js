// Queues: every queue with its counters, rates and limits, and charts of
// depth and rates over the last minutes.

import { el, clear, fmt, rate, duration, bytes, cell, table } from './dom.js';
import { chartBox, PALETTE } from './charts.js';
import * as history from './history.js';

// MAX_LINES bounds the queues drawn in the depth chart (the deepest).
const MAX_LINES = 8;

export function mount(view) {
  const list = el('div', {});
  const depth = chartBox('Depth (deepest queues)');
  const rates = chartBox('Rates, all queues (messages/s)');
  view.append(el('h1', {}, 'Queues'), list, el('div', { class: 'grid' }, depth, rates));
  return {
    every: 2000,
    async refresh() {
      const polled = await history.poll(list);
      if (!polled) return;
      const { ans, rates: r } = polled;
      const rows = ans.queues.map(q => {
        const { putRate, getRate } = r.get(q.name);
        const c = q.config || {};
        return el('tr', { 'data-queue': q.name },
          cell(el('a', { href: '#/queue/' + encodeURIComponent(q.name) }, q.name), { field: 'name' }),
          cell(fmt(q.depth), { num: true, field: 'depth' }),
          cell(fmt(q.in_flight), { num: true, field: 'in_flight' }),
          cell(fmt(q.deferred), { num: true, field: 'deferred' }),
          cell(fmt(q.dead), { num: true, field: 'dead' }),
          cell(bytes(q.bytes), { num: true, field: 'bytes' }),
          cell(rate(putRate), { num: true, field: 'put_rate' }),
          cell(rate(getRate), { num: true, field: 'get_rate' }),
          cell(duration(q.oldest_age_ms), { num: true, field: 'oldest_age' }),
          cell(limits(c), { field: 'limits' }));
      });
      clear(list).append(rows.length
        ? table(['Queue', { label: 'Depth', num: true }, { label: 'In flight', num: true }, { label: 'Deferred', num: true },
          { label: 'Dead', num: true }, { label: 'Bytes', num: true }, { label: 'Put/s', num: true }, { label: 'Get/s', num: true },
          { label: 'Oldest', num: true }, 'Limits'], rows, { id: 'queues' })
        : el('p', { class: 'muted', id: 'queues-empty' }, 'No queues yet: a queue appears with its first message or setting.'));
      const deepest = [...ans.queues].sort((a, b) => b.depth - a.depth).slice(0, MAX_LINES);
      depth.draw(deepest.map((q, i) => ({ label: q.name, color: PALETTE[i % PALETTE.length], points: history.points(q.name, 'depth') })), { min: 0 });
      rates.draw([
        { label: 'put/s', color: PALETTE[0], points: history.totals('putRate') },
        { label: 'get/s', color: PALETTE[1], points: history.totals('getRate') },
      ], { min: 0 });
    },
  };
}

// limits words a queue's configured limits.
export function limits(c) {
  const parts = [];
  if (c.max_depth) parts.push('depth ≤ ' + fmt(c.max_depth));
  if (c.max_bytes) parts.push('bytes ≤ ' + bytes(c.max_bytes));
  if (c.max_depth || c.max_bytes) parts.push(c.overflow);
  if (c.max_attempts) parts.push(c.max_attempts + ' attempts');
  if (c.dead_letter) parts.push('dead → ' + c.dead_letter);
  if (c.lease && c.lease !== '0s') parts.push('lease ' + c.lease);
  return parts.length ? parts.join(', ') : 'node defaults';
}
