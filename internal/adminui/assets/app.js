// The admin UI: one page, hash routes, each page polls the node.

import { el, on, clear } from './dom.js';
import { token, setToken } from './api.js';
import * as cluster from './cluster.js';
import * as queues from './queues.js';
import * as queue from './queue.js';
import * as pubsub from './pubsub.js';
import * as analytics from './analytics.js';

const pages = { cluster, queues, queue, pubsub, analytics };

const view = document.getElementById('view');
const status = document.getElementById('status');

// route reads location.hash: #/page/arg?key=value.
function route() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, query] = h.split('?');
  const [name, ...rest] = path.split('/');
  return {
    name: pages[name] ? name : 'cluster',
    arg: rest.length ? decodeURIComponent(rest.join('/')) : '',
    params: new URLSearchParams(query || ''),
  };
}

let current = null; // {page, timer, stopped}

// setStatus shows the last refresh or the last error.
export function setStatus(text, isError = false) {
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

function show() {
  if (current) {
    current.stopped = true;
    clearTimeout(current.timer);
    current.page.unmount && current.page.unmount();
  }
  const r = route();
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === r.name || (r.name === 'queue' && a.dataset.page === 'queues'));
  }
  clear(view);
  const page = pages[r.name].mount(view, r);
  const me = { page, timer: 0, stopped: false };
  current = me;
  // Each refresh starts after the previous one ended: a slow node is
  // never asked twice at once.
  const tick = async () => {
    if (me.stopped) return;
    try {
      await page.refresh();
      setStatus('updated ' + new Date().toLocaleTimeString());
    } catch (e) {
      setStatus(e.message, true);
    }
    if (!me.stopped) me.timer = setTimeout(tick, page.every || 2000);
  };
  tick();
}

// refreshNow runs the current page's refresh at once (after an action).
export function refreshNow() {
  if (current && !current.stopped) current.page.refresh().catch(e => setStatus(e.message, true));
}

const tokenInput = document.getElementById('token');
tokenInput.value = token();
on(document.getElementById('token-form'), 'submit', ev => {
  ev.preventDefault();
  setToken(tokenInput.value.trim());
  show();
});
on(document.getElementById('token-clear'), 'click', () => {
  tokenInput.value = '';
  setToken('');
  show();
});
window.addEventListener('hashchange', show);
show();
