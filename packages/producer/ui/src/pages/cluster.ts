/** The cluster: live consumer nodes, the slots (leases) each holds, and per publisher its lag; refreshes itself. */
import { api, type ClusterView } from '../api.js';
import { ago, badge, card, h, num, replace, table, time } from '../dom.js';
import { link, pageHeader, type Page } from '../view.js';

function draw(body: HTMLElement, c: ClusterView): void {
  const janitor = c.singletons.janitor ?? null;
  replace(
    body,
    h(
      'div',
      { class: 'figures' },
      h(
        'div',
        { class: 'figure', 'data-stat': 'nodes' },
        h('div', { class: 'figure-label' }, 'Live nodes'),
        h('div', { class: 'figure-value' }, num(c.nodes.length)),
      ),
      h(
        'div',
        { class: 'figure', 'data-stat': 'slots' },
        h('div', { class: 'figure-label' }, 'Slots held'),
        h('div', { class: 'figure-value' }, num(c.nodes.reduce((n, node) => n + node.slots.length, 0))),
      ),
      h(
        'div',
        { class: 'figure' },
        h('div', { class: 'figure-label' }, 'Janitor'),
        h('div', { class: 'figure-value small-value mono' }, janitor ?? 'none'),
      ),
    ),
    card(
      'Nodes',
      table(
        ['Node', 'Host', 'PID', 'Started', 'Last heartbeat', 'Slots (publisher/slot)'],
        c.nodes.map((n) =>
          h(
            'tr',
            { 'data-node': n.id },
            h('td', { class: 'mono' }, n.id, n.id === janitor ? h('span', { class: 'tag' }, 'janitor') : null),
            h('td', null, n.host ?? '—'),
            h('td', { class: 'num' }, n.pid === undefined ? '—' : String(n.pid)),
            h('td', null, time(n.started_at)),
            h('td', null, ago(n.last_heartbeat)),
            h(
              'td',
              null,
              n.slots.length === 0
                ? h('span', { class: 'muted' }, 'none')
                : h(
                    'span',
                    { class: 'chips' },
                    n.slots.map((s) => h('span', { class: 'chip mono' }, s)),
                  ),
            ),
          ),
        ),
        'No consumer node is alive: nothing is being delivered.',
      ),
    ),
    card(
      'Publishers',
      table(
        ['Publisher', 'Topic', 'State', 'Slots', 'Lag', 'Pending', 'Retrying', 'Rate limit'],
        c.publishers.map((p) =>
          h(
            'tr',
            { 'data-publisher': p.id },
            h(
              'td',
              null,
              link(`#/publishers/${p.id}`, `#${p.id}`),
              p.ordered ? h('span', { class: 'tag' }, 'ordered') : null,
            ),
            h('td', null, p.topic),
            h('td', null, badge(p.active ? 'active' : 'inactive')),
            h(
              'td',
              null,
              h(
                'span',
                { class: 'chips' },
                p.slots.map((s) =>
                  h(
                    'span',
                    { class: s.node ? 'chip mono' : 'chip chip-free mono', title: s.node ?? 'free' },
                    `${s.slot}: ${s.node ?? 'free'}`,
                  ),
                ),
              ),
            ),
            h('td', { class: 'num', 'data-col': 'lag' }, num(p.lag)),
            h('td', { class: 'num' }, num(p.pending)),
            h('td', { class: 'num' }, num(p.retrying)),
            h('td', null, p.rate_limit ? `${p.rate_limit.per_second}/s, burst ${p.rate_limit.burst}` : 'none'),
          ),
        ),
        'No publishers yet.',
      ),
    ),
  );
}

export const clusterPage: Page = async (view) => {
  const body = h('div');
  const first = await api<{ data: ClusterView }>('GET', '/api/cluster');
  if (view.gone) return;
  replace(
    view.main,
    pageHeader(
      'Cluster',
      'Consumer nodes share the publishers’ slots through leases in Redis. Refreshed every 3 seconds.',
    ),
    body,
  );
  draw(body, first.data);
  view.every(3000, async () => {
    const next = await api<{ data: ClusterView }>('GET', '/api/cluster');
    if (!view.gone) draw(body, next.data);
  });
};
