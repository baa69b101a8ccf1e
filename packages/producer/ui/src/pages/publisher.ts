/**
 * One publisher: how it is doing (success rate and latency of its recent
 * attempts, its last error with the answer, its circuit breaker, backlog
 * and oldest waiting message, recent attempts), what can be done to its
 * messages (retry all, recover dead letters, purge, seek, deactivate,
 * delete: each confirmed with the count it touches), and its settings
 * (the form, with only the fields of its type).
 *
 * Recent attempts come from the API as it is: the publisher's latest
 * messages (`GET /api/messages?publisher=`) and each one's attempts
 * (`GET /api/messages/:id`), at most `RECENT` messages a refresh.
 */
import {
  api,
  type Attempt,
  type Circuit,
  type ClusterView,
  type FailingItem,
  type Message,
  type Publisher,
  type PublisherStats,
  type SearchPage,
  type Topic,
} from '../api.js';
import {
  act,
  badge,
  card,
  confirmAction,
  h,
  isoWithOffset,
  localInput,
  num,
  replace,
  table,
  targetText,
  time,
  toast,
  type Child,
} from '../dom.js';
import { mountSeriesChart, SERIES_REFRESH_MS } from '../charts.js';
import { Invalid, field, formError, input, onSubmit, textOf } from '../forms.js';
import { quantile } from '../text.js';
import { go, link, pageHeader, type Page, type View } from '../view.js';
import { flowCard } from './flow.js';
import { loadPublisherPage, workerText } from './messages.js';
import { deletePublisher, publisherForm, statsOf, toggleActive } from './publishers.js';

/** Messages whose attempts a refresh reads. */
const RECENT = 20;
const REFRESH_MS = 5000;

interface Recent {
  readonly messageId: string;
  readonly attempt: Attempt;
}

/** Whether an attempt delivered (a 2xx, a pull lease completed or replaced). */
function succeeded(a: Attempt): boolean {
  if (a.status !== undefined) return a.status >= 200 && a.status < 300;
  if (a.outcome !== undefined) return a.outcome === 'completed' || a.outcome === 'replaced';
  return a.error === undefined;
}

/** Whether an attempt counts for the success rate: not a skip by the filter, not a lease still running. */
function settled(a: Attempt): boolean {
  return a.outcome !== 'skipped' && a.outcome !== 'leased';
}

function ms(n: number | undefined): string {
  if (n === undefined) return '—';
  return n >= 1000 ? `${(n / 1000).toFixed(n >= 10_000 ? 0 : 1)} s` : `${Math.round(n)} ms`;
}

function fact(label: string, value: Child, key: string, tone = ''): HTMLElement {
  return h(
    'div',
    { class: `figure ${tone}`, 'data-stat': key },
    h('div', { class: 'figure-label' }, label),
    h('div', { class: 'figure-value small-value' }, value),
  );
}

/** The publisher's latest attempts, newest first. */
async function recentAttempts(id: string): Promise<Recent[]> {
  const page = await api<SearchPage>('GET', `/api/messages?publisher=${encodeURIComponent(id)}&limit=${RECENT}`);
  const messages = await Promise.all(
    page.data.map((m) =>
      api<{ data: Message }>('GET', `/api/messages/${encodeURIComponent(m.id)}`).then(
        (r) => r.data,
        () => undefined,
      ),
    ),
  );
  const out: Recent[] = [];
  for (const m of messages) {
    const d = m?.deliveries.find((x) => x.publisher_id === id);
    if (!m || !d) continue;
    for (const a of d.attempts) out.push({ messageId: m.id, attempt: a });
  }
  return out.sort((a, b) => Date.parse(b.attempt.at) - Date.parse(a.attempt.at));
}

/** The publisher's circuit breaker (`circuit` of `GET /api/stats`, recorded by the node that runs it). */
function breakerFacts(circuit: Circuit | null | undefined, cluster: ClusterView | undefined, id: string): Child {
  if (circuit) {
    return h(
      'div',
      { 'data-breaker': circuit.state },
      badge(circuit.state, circuit.state === 'open' ? 'red' : 'amber'),
      circuit.node ? [' ', h('span', { class: 'muted' }, circuit.node)] : '',
      circuit.failures ? ` · ${circuit.failures} failure${circuit.failures === 1 ? '' : 's'} in a row` : '',
      circuit.next_probe_at ? [' · next probe ', time(circuit.next_probe_at)] : '',
    );
  }
  const runs = cluster?.nodes.some((n) => n.slots.some((s) => s.startsWith(`${id}/`))) ?? true;
  return h(
    'span',
    { 'data-breaker': 'closed' },
    badge('closed', 'green'),
    runs ? '' : h('span', { class: 'muted' }, ' (no node runs it now)'),
  );
}

function lastErrorCard(recent: Recent[], failing: FailingItem[]): HTMLElement {
  let last: Recent | undefined = recent.find((r) => settled(r.attempt) && !succeeded(r.attempt));
  for (const f of failing) {
    const a = f.last_attempt;
    if (a && !succeeded(a) && (!last || Date.parse(a.at) > Date.parse(last.attempt.at)))
      last = { messageId: f.id, attempt: a };
  }
  if (!last)
    return card('Last error', h('p', { class: 'muted', 'data-testid': 'last-error' }, 'No failed attempt recently.'));
  const a = last.attempt;
  return card(
    'Last error',
    h(
      'div',
      { 'data-testid': 'last-error' },
      h(
        'p',
        null,
        a.status !== undefined ? badge(`HTTP ${a.status}`, 'red') : badge(a.outcome ?? 'error', 'red'),
        ' ',
        time(a.at),
        ' · ',
        link(`#/messages/${encodeURIComponent(last.messageId)}`, 'the message'),
      ),
      a.error && a.error !== `HTTP ${a.status}` ? h('p', { class: 'wrap-text' }, a.error) : null,
      a.worker !== undefined ? h('p', { class: 'muted' }, 'worker ', workerText(a.worker)) : null,
      a.response ? h('pre', { class: 'response', 'data-testid': 'last-response' }, a.response) : null,
    ),
  );
}

function recentTable(recent: Recent[]): HTMLElement {
  return table(
    ['At', 'Message', 'Outcome', 'Duration'],
    recent.slice(0, 15).map((r) => {
      const a = r.attempt;
      const outcome =
        a.status !== undefined
          ? badge(String(a.status), succeeded(a) ? 'green' : 'red')
          : a.outcome
            ? badge(a.outcome)
            : badge(succeeded(a) ? 'delivered' : 'error', succeeded(a) ? 'green' : 'red');
      return h(
        'tr',
        { 'data-recent': r.messageId },
        h('td', null, time(a.at)),
        h(
          'td',
          { class: 'mono truncate id-cell', title: r.messageId },
          link(`#/messages/${encodeURIComponent(r.messageId)}`, r.messageId),
        ),
        h(
          'td',
          { class: 'wrap' },
          outcome,
          a.error && a.error !== `HTTP ${a.status}` ? h('span', { class: 'muted' }, ` ${a.error}`) : null,
        ),
        h('td', { class: 'num' }, a.duration_ms === undefined ? '—' : `${a.duration_ms} ms`),
      );
    }),
    'No attempt yet.',
  );
}

/** How many dead letters died at or after `since` (ms), reading the failing list; `more` when it stopped early. */
export async function deadSince(id: string, since: number): Promise<{ count: number; more: boolean }> {
  let count = 0;
  let cursor: string | null = null;
  for (let page = 0; page < 20; page++) {
    const q = new URLSearchParams({ state: 'dead', limit: '200' });
    if (cursor) q.set('cursor', cursor);
    const res: { data: FailingItem[]; cursor: string | null } = await api(
      'GET',
      `/api/publishers/${encodeURIComponent(id)}/failing?${q.toString()}`,
    );
    for (const f of res.data) if (f.dead_at && Date.parse(f.dead_at) >= since) count++;
    cursor = res.cursor;
    if (!cursor) return { count, more: false };
  }
  return { count, more: true };
}

/** Retry all of a publisher's failing messages, after a confirmation with their count; whether it ran. */
export async function retryAllOf(id: string): Promise<boolean> {
  const fresh = await statsOf(id);
  const count = fresh ? fresh.retrying + fresh.dead + (fresh.leased ?? 0) : null;
  if (count === 0) {
    toast(`Nothing to retry: publisher #${id} has no retrying message and no dead letter.`);
    return false;
  }
  const ok = await confirmAction({
    title: `Retry every failing message of publisher #${id}?`,
    message: 'Retrying messages and dead letters are sent again at once.',
    count,
    action: 'Retry all',
  });
  if (!ok) return false;
  const res = await api<{ data: { count: number } }>(
    'POST',
    `/api/publishers/${encodeURIComponent(id)}/failing/retry`,
    { all: true },
  );
  toast(`Retry now: ${res.data.count} message${res.data.count === 1 ? '' : 's'}.`);
  return true;
}

/** Recover a publisher's dead letters since a local time, after a confirmation with their count; whether it ran. */
export async function recoverSince(id: string, local: string): Promise<boolean> {
  if (local === '') throw new Invalid({ since: ["can't be blank"] });
  const since = isoWithOffset(local);
  const { count, more } = await deadSince(id, Date.parse(since));
  if (count === 0) {
    toast('Nothing to recover: no dead letter died since that time.');
    return false;
  }
  const ok = await confirmAction({
    title: `Recover ${more ? 'at least ' : ''}${count} dead letter${count === 1 ? '' : 's'}?`,
    message: `Publisher #${id} sends them again at once; one that fails again is a dead letter again.`,
    count,
    what: 'dead letter',
    action: 'Recover',
  });
  if (!ok) return false;
  const res = await api<{ data: { count: number } }>(
    'POST',
    `/api/publishers/${encodeURIComponent(id)}/failing/recover`,
    { since },
  );
  toast(`Recovered ${res.data.count} dead letter${res.data.count === 1 ? '' : 's'}.`);
  return true;
}

function actionsCard(p: Publisher, stats: PublisherStats | undefined, reload: () => void): HTMLElement {
  const retryAll = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-primary',
      'data-action': 'retry-all',
      on: {
        click: act(async () => {
          if (await retryAllOf(p.id)) reload();
        }),
      },
    },
    'Retry all',
  );
  const recover = h(
    'form',
    { class: 'form-row', 'aria-label': 'Recover dead letters' },
    field(
      'Recover dead letters since',
      'since',
      input({ type: 'datetime-local', value: localInput(new Date(Date.now() - 3600_000)) }),
      'Every dead letter that died at or after this time is sent again.',
      'recover-',
    ),
    formError(),
    h('div', { class: 'form-submit' }, h('button', { type: 'submit', class: 'btn' }, 'Recover…')),
  );
  onSubmit(recover, async (data) => {
    if (await recoverSince(p.id, textOf(data, 'since'))) reload();
  });
  const toggle = h(
    'button',
    {
      type: 'button',
      class: 'btn',
      'data-action': p.active ? 'deactivate' : 'activate',
      on: {
        click: act(async () => {
          if (await toggleActive(p)) reload();
        }),
      },
    },
    p.active ? 'Deactivate' : 'Activate',
  );
  const remove = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-danger-ghost',
      'data-action': 'delete',
      on: {
        click: act(async () => {
          if (await deletePublisher(p)) go('#/publishers');
        }),
      },
    },
    'Delete publisher',
  );
  return card(
    'Actions',
    h(
      'div',
      { class: 'toolbar' },
      retryAll,
      toggle,
      h(
        'a',
        { class: 'btn', href: `#/failing/${p.id}` },
        `Failing messages${stats ? ` (${num(stats.retrying + stats.dead)})` : ''}`,
      ),
      h('a', { class: 'btn', href: `#/messages?publisher=${encodeURIComponent(p.id)}` }, 'Messages'),
      remove,
    ),
    recover,
  );
}

async function drawOverview(view: View, holder: HTMLElement, p: Publisher): Promise<void> {
  const [stats, recent, failing, cluster] = await Promise.all([
    statsOf(p.id),
    recentAttempts(p.id),
    api<{ data: FailingItem[] }>('GET', `/api/publishers/${encodeURIComponent(p.id)}/failing?limit=25`).then(
      (r) => r.data,
      () => [],
    ),
    api<{ data: ClusterView }>('GET', '/api/cluster').then(
      (r) => r.data,
      () => undefined,
    ),
  ]);
  if (view.gone) return;
  const done = recent.filter((r) => settled(r.attempt));
  const ok = done.filter((r) => succeeded(r.attempt)).length;
  const rate = done.length > 0 ? ok / done.length : undefined;
  const durations = done
    .map((r) => r.attempt.duration_ms)
    .filter((d): d is number => typeof d === 'number')
    .sort((a, b) => a - b);
  const rateTone = rate === undefined ? '' : rate >= 0.99 ? 'tone-green' : rate >= 0.9 ? 'tone-amber' : 'tone-red';
  replace(
    holder,
    h(
      'div',
      { class: 'figures figures-compact' },
      fact(
        'Success rate',
        h(
          'span',
          { title: `${ok} of the last ${done.length} attempts delivered` },
          rate === undefined ? '—' : `${(rate * 100).toFixed(rate === 1 || rate === 0 ? 0 : 1)} %`,
        ),
        'success-rate',
        rateTone,
      ),
      fact('Latency p50', ms(quantile(durations, 0.5)), 'p50'),
      fact('Latency p99', ms(quantile(durations, 0.99)), 'p99'),
      fact('Backlog', num(stats?.backlog), 'backlog', (stats?.backlog ?? 0) > 0 ? 'tone-blue' : ''),
      fact('Oldest waiting', stats?.oldest_undelivered_at ? time(stats.oldest_undelivered_at) : 'none', 'oldest'),
      fact('Retrying', num(stats?.retrying), 'retrying', (stats?.retrying ?? 0) > 0 ? 'tone-amber' : ''),
      p.type === 'pull' ? fact('Leased', num(stats?.leased ?? 0), 'leased') : null,
      fact('Dead', num(stats?.dead), 'dead', (stats?.dead ?? 0) > 0 ? 'tone-red' : ''),
      fact('Delivered', num(stats?.delivered), 'delivered', 'tone-green'),
    ),
    h(
      'p',
      { class: 'muted small' },
      `Success rate and latency: the last ${done.length} attempts of its ${RECENT} latest messages.`,
    ),
    h(
      'div',
      { class: 'two-columns' },
      lastErrorCard(recent, failing),
      card(
        'Circuit breaker',
        h('div', { 'data-testid': 'breaker' }, breakerFacts(stats?.circuit, cluster, p.id)),
        h(
          'p',
          { class: 'hint' },
          'Opens after consecutive failures: the node stops taking new messages and probes the target with one, later and later, until it answers.',
        ),
      ),
    ),
    card('Recent attempts', recentTable(recent)),
  );
}

export const publisherPage: Page = async (view) => {
  const id = view.params[0] ?? '';
  const loaded = await loadPublisherPage(view, id, '#/publishers', 'Back to publishers', () =>
    Promise.all([
      api<{ data: Publisher }>('GET', `/api/publishers/${encodeURIComponent(id)}`),
      api<{ data: Topic[] }>('GET', '/api/topics'),
    ]),
  );
  if (!loaded) return;
  const [{ data: p }, { data: topics }] = loaded;
  const overview = h('div', { class: 'publisher-overview' });
  await drawOverview(view, overview, p);
  if (view.gone) return;
  const stats = await statsOf(p.id);
  if (view.gone) return;
  const reload = (): void => go(location.hash);
  const charts = h('div', { class: 'series-box' });
  const form = publisherForm(topics, p, undefined, () => reload());
  replace(
    view.main,
    pageHeader(
      h(
        'span',
        { class: 'id-state' },
        `Publisher #${p.id}`,
        badge(p.active ? 'active' : 'inactive'),
        h('span', { class: 'tag' }, p.type),
      ),
      h('span', null, link(`#/messages?topic=${encodeURIComponent(p.topic)}`, p.topic), ' → ', targetText(p.target)),
    ),
    overview,
    h('section', { class: 'card publisher-charts', 'data-publisher': p.id }, h('h2', null, 'Over time'), charts),
    actionsCard(p, stats, reload),
    flowCard(p),
    card('Settings', form),
  );
  const chart = mountSeriesChart(charts, { publisher: p.id });
  view.every(REFRESH_MS, () => drawOverview(view, overview, p));
  view.every(SERIES_REFRESH_MS, () => chart.refresh());
};
