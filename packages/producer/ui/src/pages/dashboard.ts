/** The dashboard: totals and, per publisher, its backlog and oldest undelivered message; refreshes itself. */
import { api, type Stats } from '../api.js';
import { badge, duration, h, num, replace, table } from '../dom.js';
import { link, pageHeader, type Page } from '../view.js';

const REFRESH_MS = 2000;

function figure(label: string, value: number, key: string, tone = ''): HTMLElement {
  return h(
    'div',
    { class: `figure ${tone}`, 'data-stat': key },
    h('div', { class: 'figure-label' }, label),
    h('div', { class: 'figure-value' }, num(value)),
  );
}

function draw(body: HTMLElement, stats: Stats, updated: HTMLElement): void {
  replace(
    body,
    h(
      'div',
      { class: 'figures' },
      figure('Topics', stats.topics, 'topics'),
      figure('Publishers', stats.publishers, 'publishers'),
      figure('Received', stats.received, 'received'),
      figure('Delivered', stats.delivered, 'delivered', 'tone-green'),
      figure('Pending', stats.backlog, 'pending', stats.backlog > 0 ? 'tone-blue' : ''),
      figure('Retrying', stats.retrying, 'retrying', stats.retrying > 0 ? 'tone-amber' : ''),
      (stats.leased ?? 0) > 0 ? figure('Leased', stats.leased ?? 0, 'leased', 'tone-blue') : null,
      figure('Dead', stats.dead, 'dead', stats.dead > 0 ? 'tone-red' : ''),
      (stats.skipped ?? 0) > 0 ? figure('Skipped', stats.skipped ?? 0, 'skipped') : null,
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', null, 'Publishers'),
      table(
        [
          'Publisher',
          'Topic',
          ['Target', 'hide-narrow'],
          ['Backlog', 'num'],
          ['Retrying', 'num'],
          ['Dead', 'num'],
          ['Skipped', 'num hide-narrow'],
          ['Delivered', 'num'],
          'Oldest waiting',
        ],
        stats.per_publisher.map((p) =>
          h(
            'tr',
            { 'data-publisher': p.id },
            h(
              'td',
              null,
              h(
                'span',
                { class: 'id-state' },
                link(`#/publishers/${p.id}`, `#${p.id}`),
                badge(p.active ? 'active' : 'inactive'),
              ),
            ),
            h('td', null, p.topic),
            h('td', { class: 'mono truncate hide-narrow', title: p.target }, p.target),
            h('td', { class: 'num', 'data-col': 'backlog' }, num(p.backlog)),
            h(
              'td',
              { class: 'num', 'data-col': 'retrying' },
              p.retrying > 0 ? link(`#/failing/${p.id}?state=retrying`, num(p.retrying)) : '0',
            ),
            h(
              'td',
              { class: 'num', 'data-col': 'dead' },
              p.dead > 0 ? link(`#/failing/${p.id}?state=dead`, num(p.dead)) : '0',
            ),
            h('td', { class: 'num hide-narrow', 'data-col': 'skipped' }, num(p.skipped ?? 0)),
            h('td', { class: 'num', 'data-col': 'delivered' }, num(p.delivered)),
            h(
              'td',
              { 'data-col': 'oldest' },
              p.oldest_undelivered_age_seconds === null ? '—' : duration(p.oldest_undelivered_age_seconds),
            ),
          ),
        ),
        'No publishers yet: create a topic, then a publisher.',
      ),
    ),
  );
  replace(updated, `Updated ${new Date().toLocaleTimeString()}`);
}

export const dashboardPage: Page = async (view) => {
  const updated = h('span', { class: 'live', 'aria-live': 'polite' });
  const body = h('div');
  const stats = await api<{ data: Stats }>('GET', '/api/stats');
  if (view.gone) return;
  replace(
    view.main,
    pageHeader('Dashboard', 'Messages and publishers at a glance, refreshed every 2 seconds.', updated),
    body,
  );
  draw(body, stats.data, updated);
  view.every(REFRESH_MS, async () => {
    const next = await api<{ data: Stats }>('GET', '/api/stats');
    if (!view.gone) draw(body, next.data, updated);
  });
};
