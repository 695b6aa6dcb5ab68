import { el } from './dom.js';
import { get } from './api.js';

// What /queues answered over the last minutes, kept while the page is
// open (bounded), for the charts and the rates.

const KEEP_MS = 10 * 60 * 1000;
const MAX_POINTS = 400;

let last = null; // the previous answer
const series = new Map(); // queue -> [{t, depth, putRate, getRate}]

// record adds an answer of /queues and returns, per queue, the put and
// get rates since the previous answer (null for the first).
export function record(ans) {
  const t = ans.time_ms;
  const prev = last && new Map(last.queues.map(q => [q.name, q]));
  const dt = last ? (t - last.time_ms) / 1000 : 0;
  const rates = new Map();
  for (const q of ans.queues) {
    let putRate = null, getRate = null;
    const p = prev && prev.get(q.name);
    if (p && dt > 0) {
      putRate = Math.max(0, (q.puts - p.puts) / dt);
      getRate = Math.max(0, (q.gets - p.gets) / dt);
    }
    rates.set(q.name, { putRate, getRate });
    if (last && t <= last.time_ms) continue; // the same answer again
    let s = series.get(q.name);
    if (!s) series.set(q.name, s = []);
    s.push({ t, depth: q.depth, putRate, getRate });
    while (s.length > MAX_POINTS || (s.length && s[0].t < t - KEEP_MS)) s.shift();
  }
  for (const name of series.keys()) {
    if (!ans.queues.some(q => q.name === name)) series.delete(name);
  }
  if (!last || t > last.time_ms) last = ans;
  return rates;
}

// points returns a queue's [t, value] pairs for field.
export function points(name, field) {
  return (series.get(name) || []).map(p => [p.t, p[field]]);
}

// totals sums field over every queue per sample time.
export function totals(field) {
  const by = new Map();
  for (const s of series.values()) for (const p of s) {
    if (p[field] === null) continue;
    by.set(p.t, (by.get(p.t) || 0) + p[field]);
  }
  return [...by.entries()].sort((a, b) => a[0] - b[0]);
}

// poll asks /queues and records the answer: {ans, rates}. On the pubsub
// port, which has no queues (404), it puts a note into box saying where
// they are and returns null.
export async function poll(box) {
  let ans;
  try {
    ans = await get('/queues');
  } catch (e) {
    if (e.status !== 404) throw e;
    box.replaceChildren(await queuePortNote());
    return null;
  }
  return { ans, rates: record(ans) };
}

// queuePortNote explains, on the pubsub port, where the queue pages are.
async function queuePortNote() {
  const p = el('p', { class: 'muted', id: 'queue-port-note' }, 'The queues are served on the queue port. ');
  try {
    const st = await get('/cluster/status');
    const me = (st.members || []).find(m => m.id === st.node_id);
    if (me && me.queue_addr) {
      p.append(el('a', { href: location.protocol + '//' + me.queue_addr + '/ui/#/queues' }, 'Open this node\'s UI there'), '.');
    }
  } catch (e) { /* the note stands without the link */ }
  return p;
}
