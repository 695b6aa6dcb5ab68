// One queue: its counters, a peek at its messages with paging, purge,
// dead-letter redrive and its settings.

import { el, on, clear, fmt, duration, bytes, fact, cell, table } from './dom.js';
import { get, post } from './api.js';
import { chartBox, PALETTE } from './charts.js';
import * as history from './history.js';
import { refreshNow } from './app.js';

const PAGE_SIZES = [20, 50, 100];

export function mount(view, r) {
  const name = r.arg || 'default';
  let offset = Math.max(0, parseInt(r.params.get('offset') || '0', 10) || 0);
  let limit = PAGE_SIZES.includes(+r.params.get('limit')) ? +r.params.get('limit') : PAGE_SIZES[0];

  const facts = el('div', { class: 'card facts', id: 'queue-facts' });
  const chart = chartBox('Depth and rates');
  const actions = actionsCard(name);
  const settings = settingsCard(name);
  const peekInfo = el('span', { class: 'muted', id: 'peek-info' });
  const prev = el('button', { type: 'button', id: 'peek-prev' }, '← Newer');
  const next = el('button', { type: 'button', id: 'peek-next' }, 'Older →');
  const size = el('select', { id: 'peek-limit', 'aria-label': 'messages per page' }, PAGE_SIZES.map(n => el('option', { value: n, selected: n === limit }, n + ' per page')));
  const peek = el('div', { id: 'peek' });
  const go = o => { offset = Math.max(0, o); refreshNow(); };
  on(prev, 'click', () => go(offset - limit));
  on(next, 'click', () => go(offset + limit));
  on(size, 'change', () => { limit = +size.value; go(0); });
  view.append(
    el('h1', {}, el('a', { href: '#/queues' }, 'Queues'), ' / ', el('span', { id: 'queue-name' }, name)),
    facts,
    el('div', { class: 'grid' }, chart, actions, settings),
    el('div', { class: 'card' }, el('h2', {}, 'Messages (ready, from the head)'),
      el('div', { class: 'pager' }, prev, next, size, peekInfo), peek));

  return {
    every: 2000,
    async refresh() {
      const polled = await history.poll(facts);
      if (!polled) return;
      const { ans, rates } = polled;
      const q = ans.queues.find(x => x.name === name);
      if (!q) {
        facts.replaceChildren(el('p', { class: 'muted' }, 'No such queue (yet): it appears with its first message or setting.'));
      } else {
        const { putRate, getRate } = rates.get(name);
        facts.replaceChildren(
          fact('Depth', fmt(q.depth), 'depth'), fact('In flight', fmt(q.in_flight), 'in_flight'),
          fact('Deferred', fmt(q.deferred), 'deferred'), fact('Dead', fmt(q.dead), 'dead'),
          fact('Bytes', bytes(q.bytes), 'bytes'), fact('Deepest', fmt(q.depth_high_water), 'depth_high_water'),
          fact('Oldest', duration(q.oldest_age_ms), 'oldest_age'),
          fact('Puts', fmt(q.puts), 'puts'), fact('Gets', fmt(q.gets), 'gets'), fact('Acks', fmt(q.acks), 'acks'),
          fact('Nacks', fmt(q.nacks), 'nacks'), fact('Lease expiries', fmt(q.expired), 'expired'),
          fact('Redelivered', fmt(q.redelivered), 'redelivered'), fact('Overflow', fmt(q.overflow), 'overflow'),
          fact('Put/s', putRate === null ? '-' : fmt(Math.round(putRate * 100) / 100), 'put_rate'),
          fact('Get/s', getRate === null ? '-' : fmt(Math.round(getRate * 100) / 100), 'get_rate'));
      }
      chart.draw([
        { label: 'depth', color: PALETTE[0], points: history.points(name, 'depth') },
        { label: 'put/s', color: PALETTE[1], points: history.points(name, 'putRate') },
        { label: 'get/s', color: PALETTE[2], points: history.points(name, 'getRate') },
      ], { min: 0 });
      let page;
      try {
        page = await get('/dump', { queue: name, format: 'json', limit, offset });
      } catch (e) {
        // A token may read the counters but not the messages (consume).
        clear(peek).append(el('p', { class: 'error', id: 'peek-error' }, e.message));
        peekInfo.textContent = '';
        prev.disabled = next.disabled = true;
        return;
      }
      if (offset > 0 && offset >= page.total) {
        // The queue shrank under the page: show its last page instead.
        offset = Math.max(0, page.total - limit);
        page = await get('/dump', { queue: name, format: 'json', limit, offset });
      }
      prev.disabled = offset === 0;
      next.disabled = offset + page.messages.length >= page.total;
      peekInfo.textContent = page.total === 0 ? 'empty'
        : `${fmt(offset + 1)}–${fmt(offset + page.messages.length)} of ${fmt(page.total)}`;
      const rows = page.messages.map(m => el('tr', { 'data-id': m.id },
        cell(m.id, { field: 'id' }), cell(fmt(m.attempts), { num: true, field: 'attempts' }),
        cell(m.encoding ? [el('span', { class: 'badge' }, m.encoding), ' ', m.data] : m.data, { field: 'data', cls: 'data' }), cell(m.dead_from || '', { field: 'dead_from' }),
        cell(m.error || '', { field: 'error' })));
      clear(peek).append(rows.length
        ? table(['Id', { label: 'Attempts', num: true }, 'Data', 'Dead-lettered from', 'Last error'], rows, { id: 'messages' })
        : el('p', { class: 'muted' }, 'No ready messages.'));
    },
  };
}

// result is the line under an action: its outcome or the node's error.
function result(id) {
  const p = el('p', { id, role: 'alert' });
  p.ok = text => { p.className = 'ok'; p.textContent = text; };
  p.fail = e => { p.className = 'error'; p.textContent = e.message; };
  return p;
}

function actionsCard(name) {
  const purge = el('button', { type: 'button', class: 'danger', id: 'purge' }, 'Purge…');
  const confirmBox = el('div', { class: 'confirm', hidden: true, id: 'purge-confirm-box' },
    el('p', {}, 'Remove every ready and deferred message of ', el('strong', {}, name), '? Messages in flight stay.'));
  const yes = el('button', { type: 'button', class: 'danger', id: 'purge-confirm' }, 'Purge');
  const no = el('button', { type: 'button', id: 'purge-cancel' }, 'Cancel');
  confirmBox.append(yes, ' ', no);
  const purgeResult = result('purge-result');
  on(purge, 'click', () => { confirmBox.hidden = false; });
  on(no, 'click', () => { confirmBox.hidden = true; });
  on(yes, 'click', async () => {
    confirmBox.hidden = true;
    try {
      const r = await post('/purge', { queue: name });
      purgeResult.ok(`Purged ${fmt(r.purged)} messages.`);
    } catch (e) { purgeResult.fail(e); }
    refreshNow();
  });

  const to = el('input', { id: 'redrive-to', placeholder: 'origin of each message', size: 18 });
  const max = el('input', { id: 'redrive-max', type: 'number', min: 1, placeholder: 'all', size: 6 });
  const redriveResult = result('redrive-result');
  const form = el('form', { class: 'inline', id: 'redrive-form' },
    el('label', {}, 'To queue', to), el('label', {}, 'At most', max),
    el('button', { type: 'submit', id: 'redrive' }, 'Redrive'));
  on(form, 'submit', async ev => {
    ev.preventDefault();
    try {
      const r = await post('/redrive', { queue: name, to: to.value.trim() || undefined, max: max.value || undefined });
      redriveResult.ok(`Moved ${fmt(r.moved)}, ${fmt(r.left)} left.`);
    } catch (e) { redriveResult.fail(e); }
    refreshNow();
  });
  return el('div', { class: 'card' },
    el('h2', {}, 'Purge'), purge, confirmBox, purgeResult,
    el('h2', {}, 'Redrive dead letters'),
    el('p', { class: 'muted' }, 'Moves this queue\'s ready messages back to the queue each was dead-lettered from, or to the queue named.'),
    form, redriveResult);
}

const SETTINGS = [
  ['lease', 'Default lease', 'text', 'e.g. 30s; 0s: gets pop'],
  ['max_attempts', 'Max attempts', 'number', '0: unlimited'],
  ['dead_letter', 'Dead-letter queue', 'text', 'empty: dropped'],
  ['max_depth', 'Max depth', 'number', '0: the node\'s'],
  ['max_bytes', 'Max bytes', 'number', '0: the node\'s'],
];

function settingsCard(name) {
  const inputs = {};
  const fields = SETTINGS.map(([k, label, type, hint]) => {
    inputs[k] = el('input', { id: 'cfg-' + k, name: k, type, min: type === 'number' ? 0 : undefined, placeholder: hint, size: 12 });
    return el('label', {}, label, inputs[k]);
  });
  inputs.overflow = el('select', { id: 'cfg-overflow', name: 'overflow' }, el('option', { value: 'reject' }, 'reject'), el('option', { value: 'evict-oldest' }, 'evict-oldest'));
  fields.push(el('label', {}, 'When full', inputs.overflow));
  const out = result('settings-result');
  let loaded = {};
  const load = async () => {
    try {
      loaded = await get('/config', { queue: name });
      for (const k of Object.keys(inputs)) inputs[k].value = loaded[k] ?? '';
    } catch (e) { out.fail(e); }
  };
  const form = el('form', { class: 'inline', id: 'settings-form' }, fields, el('button', { type: 'submit', class: 'primary', id: 'settings-save' }, 'Save'));
  on(form, 'submit', async ev => {
    ev.preventDefault();
    // Only what changed is sent: the node applies each setting on its own.
    const change = { queue: name };
    let n = 0;
    for (const [k, input] of Object.entries(inputs)) {
      if (String(loaded[k] ?? '') !== input.value) { change[k] = input.value; n++; }
    }
    if (!n) { out.ok('Nothing changed.'); return; }
    try {
      loaded = await post('/config', change);
      for (const k of Object.keys(inputs)) inputs[k].value = loaded[k] ?? '';
      out.ok('Saved.');
    } catch (e) { out.fail(e); }
  });
  load();
  return el('div', { class: 'card' }, el('h2', {}, 'Settings'), form, out);
}
