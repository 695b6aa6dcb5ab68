// Pubsub: the topics with subscribers anywhere in the cluster, and each
// node's subscribers, drops and kicks.

import { el, clear, fmt, cell, table } from './dom.js';
import { get } from './api.js';

export function mount(view) {
  const topics = el('div', {});
  const nodes = el('div', {});
  view.append(el('h1', {}, 'Pubsub'), el('h2', {}, 'Topics'), topics, el('h2', {}, 'Nodes'), nodes);
  return {
    every: 2000,
    async refresh() {
      const ans = await get('/pubsub/topics');
      const trows = ans.topics.map(t => el('tr', { 'data-topic': t.name },
        cell(t.name, { field: 'name' }),
        cell(fmt(t.subscribers), { num: true, field: 'subscribers' }),
        cell(Object.entries(t.nodes).sort().map(([n, c]) => `${n}: ${c}`).join(', '), { field: 'nodes' })));
      clear(topics).append(trows.length
        ? table(['Topic', { label: 'Subscribers', num: true }, 'Per node'], trows, { id: 'topics' })
        : el('p', { class: 'muted' }, 'No subscribers on any node.'));
      const nrows = ans.nodes.map(n => el('tr', { 'data-node': n.id },
        cell(n.id, { field: 'id' }),
        cell(fmt(n.subscribers), { num: true, field: 'subscribers' }),
        cell(fmt(n.drops), { num: true, field: 'drops' }),
        cell(fmt(n.kicked), { num: true, field: 'kicked' }),
        cell(n.error || '', { field: 'error', cls: n.error ? 'error' : '' })));
      clear(nodes).append(table(['Node', { label: 'Subscribers', num: true }, { label: 'Messages dropped', num: true },
        { label: 'Subscribers kicked', num: true }, ''], nrows, { id: 'pubsub-nodes' }));
    },
  };
}
