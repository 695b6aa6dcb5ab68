// Cluster: this node's view of the members, the leader and the indexes.

import { el, clear, fmt, fact, cell, table } from './dom.js';
import { get } from './api.js';

export function mount(view) {
  const facts = el('div', { class: 'card facts' });
  const warning = el('p', { class: 'card error', id: 'no-leader', hidden: true });
  const members = el('div', {});
  view.append(el('h1', {}, 'Cluster'), warning, facts, el('h2', {}, 'Members'), members);
  return {
    every: 2000,
    async refresh() {
      const st = await get('/cluster/status');
      facts.replaceChildren(
        fact('This node', st.node_id, 'node_id'),
        fact('State', badge(st.state), 'state'),
        fact('Leader', st.leader_id || 'none known', 'leader_id'),
        fact('Term', fmt(st.term), 'term'),
        fact('Commit index', fmt(st.commit_index), 'commit_index'),
        fact('Applied index', fmt(st.applied_index), 'applied_index'),
      );
      // Why there is no leader, as far as this node can tell.
      const seeds = st.unreached_seeds || [];
      warning.hidden = !!st.leader_id;
      warning.textContent = st.leader_id ? '' : 'No leader known. ' + (
        seeds.length ? 'Not joined: the join seeds ' + seeds.join(', ') + ' do not answer.'
          : st.bootstrap ? 'Not in a cluster yet: ' + st.bootstrap
            : 'An election may be under way, or a majority of the voters is unreachable.');
      const rows = (st.members || []).map(m => {
        const role = m.id === st.leader_id ? 'leader' : m.suffrage === 'nonvoter' ? 'non-voter' : m.voter ? 'follower' : (m.suffrage || 'none');
        const lag = m.lag === undefined || m.lag < 0 ? '-' : fmt(m.lag);
        return el('tr', { 'data-member': m.id },
          cell(m.id, { field: 'id' }),
          cell(badge(role), { field: 'role' }),
          cell(badge(m.status), { field: 'status' }),
          cell(m.applied_index === undefined ? '-' : fmt(m.applied_index), { num: true, field: 'applied_index' }),
          cell(lag, { num: true, field: 'lag' }),
          cell(nodeLink(m), { field: 'queue_addr' }),
          cell(m.pubsub_addr || '-', { field: 'pubsub_addr' }),
          cell(m.raft_addr || '-', { field: 'raft_addr' }));
      });
      clear(members).append(table(['Node', 'Role', 'Health', { label: 'Applied index', num: true }, { label: 'Lag', num: true }, 'Queue port', 'Pubsub port', 'Raft'],
        rows, { id: 'members' }));
    },
  };
}

function badge(s) {
  return el('span', { class: 'badge ' + String(s).replace(/[^a-z-]/g, '') }, s);
}

// nodeLink links to the member's own UI on its queue port.
function nodeLink(m) {
  if (!m.queue_addr) return '-';
  return el('a', { href: location.protocol + '//' + m.queue_addr + '/ui/', rel: 'noreferrer' }, m.queue_addr);
}
