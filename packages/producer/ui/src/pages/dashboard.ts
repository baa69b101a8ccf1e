/**
 * The dashboard: totals, charts over the last hour or day, and per publisher
 * its backlog, oldest undelivered message and circuit breaker; refreshes
 * itself. Messages are counted once (received); everything else counts
 * deliveries, one per message and publisher, and each figure says which.
 */
import { api, type PublisherStats, type Stats } from '../api.js';
import { mountSeriesChart, SERIES_REFRESH_MS } from '../charts.js';
import { badge, duration, h, num, replace, table, targetText } from '../dom.js';
import { link, pageHeader, type Page } from '../view.js';

const REFRESH_MS = 2000;

function figure(label: string, unit: string, value: number, key: string, tone = ''): HTMLElement {
  return h(
    'div',
    { class: `figure ${tone}`, 'data-stat': key },
    h('div', { class: 'figure-label' }, label),
    h('div', { class: 'figure-value' }, num(value)),
    h('div', { class: 'figure-unit' }, unit),
  );
}

/** "in 12 s", "now" (a probe due or under way). */
function until(iso: string | null): string {
  if (!iso) return 'now';
  const s = (Date.parse(iso) - Date.now()) / 1000;
  return s < 1 ? 'now' : `in ${duration(s)}`;
}

/** What the publisher's circuit breaker does, in words (null: closed). */
function circuitText(p: PublisherStats): string | null {
  const c = p.circuit;
  if (!c) return null;
  return c.state === 'open'
    ? `Circuit open: the target kept failing; next probe ${until(c.next_probe_at)}`
    : 'Circuit half-open: one probe message is out';
}

function circuitBanner(stats: Stats): HTMLElement | null {
  const open = stats.per_publisher.filter((p) => p.circuit);
  if (open.length === 0) return null;
  return h(
    'div',
    { class: 'alert alert-red', role: 'status', 'data-circuits': String(open.length) },
    h(
      'strong',
      null,
      open.length === 1 ? 'One publisher has its circuit open' : `${open.length} publishers have their circuit open`,
    ),
    ': it sends nothing but one probe message until its target answers again. ',
    open.map((p, i) => [
      i > 0 ? '; ' : '',
      link(`#/publishers/${p.id}`, `#${p.id}`),
      ` (${p.topic}): `,
      p.circuit?.state === 'open' ? `next probe ${until(p.circuit.next_probe_at)}` : 'probing now',
    ]),
  );
}

function publisherCell(p: PublisherStats): HTMLElement {
  const circuit = circuitText(p);
  return h(
    'td',
    null,
    h(
      'span',
      { class: 'id-state' },
      link(`#/publishers/${p.id}`, `#${p.id}`),
      badge(p.active ? 'active' : 'inactive'),
      p.circuit
        ? badge(p.circuit.state === 'open' ? 'circuit open' : 'probing', p.circuit.state === 'open' ? 'red' : 'amber')
        : null,
    ),
    circuit ? h('div', { class: 'small muted circuit-note', 'data-col': 'circuit' }, circuit) : null,
  );
}

function draw(body: HTMLElement, publishers: HTMLElement, stats: Stats, updated: HTMLElement): void {
  const leased = stats.leased ?? 0;
  const anyPull = stats.per_publisher.some((p) => p.type === 'pull');
  const anySkipped = stats.per_publisher.some((p) => (p.skipped ?? 0) > 0);
  const inFlight = stats.in_flight ?? Math.max(0, stats.pending - stats.retrying - leased);
  replace(
    body,
    circuitBanner(stats),
    h(
      'div',
      { class: 'figures' },
      figure('Topics', 'topics', stats.topics, 'topics'),
      figure('Publishers', `${num(stats.active_publishers)} active`, stats.publishers, 'publishers'),
      figure('Received', 'messages', stats.received, 'received'),
      figure('Delivered', 'deliveries', stats.delivered, 'delivered', 'tone-green'),
      figure('Waiting', 'deliveries not made yet', stats.backlog, 'backlog', stats.backlog > 0 ? 'tone-blue' : ''),
      figure('In flight', 'deliveries under way', inFlight, 'in-flight'),
      figure('Retrying', 'deliveries', stats.retrying, 'retrying', stats.retrying > 0 ? 'tone-amber' : ''),
      leased > 0 || anyPull ? figure('Leased', 'pull deliveries', leased, 'leased', 'tone-blue') : null,
      figure('Dead', 'deliveries given up', stats.dead, 'dead', stats.dead > 0 ? 'tone-red' : ''),
      (stats.skipped ?? 0) > 0 ? figure('Skipped', 'by filters', stats.skipped ?? 0, 'skipped') : null,
      (stats.circuits_open ?? 0) > 0
        ? figure('Circuits open', 'publishers', stats.circuits_open ?? 0, 'circuits', 'tone-red')
        : null,
    ),
    h(
      'p',
      { class: 'muted small figures-note' },
      'A message is received once and delivered once to each of its topic’s publishers: ' +
        'a message with two publishers makes two deliveries. Waiting = not read yet + in flight + retrying + leased.',
    ),
  );
  replace(
    publishers,
    h(
      'section',
      { class: 'card' },
      h('h2', null, 'Publishers'),
      table(
        [
          'Publisher',
          'Topic',
          ['Target', 'hide-narrow'],
          ['Waiting', 'num'],
          ['Retrying', 'num'],
          ...(anyPull ? [['Leased', 'num'] as [string, string]] : []),
          ['Dead', 'num'],
          ...(anySkipped ? [['Skipped', 'num hide-narrow'] as [string, string]] : []),
          ['Delivered', 'num'],
          'Oldest waiting',
        ],
        stats.per_publisher.map((p) =>
          h(
            'tr',
            { 'data-publisher': p.id, ...(p.circuit ? { class: 'row-alert' } : {}) },
            publisherCell(p),
            h('td', null, p.topic),
            h('td', { class: 'wrap hide-narrow' }, targetText(p.target, 40)),
            h('td', { class: 'num', 'data-col': 'backlog' }, num(p.backlog)),
            h(
              'td',
              { class: 'num', 'data-col': 'retrying' },
              p.retrying > 0 ? link(`#/failing/${p.id}?state=retrying`, num(p.retrying)) : '0',
            ),
            anyPull ? h('td', { class: 'num', 'data-col': 'leased' }, num(p.leased ?? 0)) : null,
            h(
              'td',
              { class: 'num', 'data-col': 'dead' },
              p.dead > 0 ? link(`#/failing/${p.id}?state=dead`, num(p.dead)) : '0',
            ),
            anySkipped ? h('td', { class: 'num hide-narrow', 'data-col': 'skipped' }, num(p.skipped ?? 0)) : null,
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
  const charts = h('div', { class: 'series-box' });
  const publishers = h('div');
  const stats = await api<{ data: Stats }>('GET', '/api/stats');
  if (view.gone) return;
  replace(
    view.main,
    pageHeader('Dashboard', 'Messages and deliveries at a glance, refreshed every 2 seconds.', updated),
    body,
    h('section', { class: 'card', 'data-section': 'charts' }, h('h2', null, 'Over time'), charts),
    publishers,
  );
  draw(body, publishers, stats.data, updated);
  const chart = mountSeriesChart(charts, {});
  view.every(REFRESH_MS, async () => {
    const next = await api<{ data: Stats }>('GET', '/api/stats');
    if (!view.gone) draw(body, publishers, next.data, updated);
  });
  view.every(SERIES_REFRESH_MS, () => chart.refresh());
};
