/**
 * Messages: search with the API's filters (kept in the address, so a
 * search can be shared and the back button works), and one message with
 * its payload, attributes and, per publisher, its state and every attempt.
 * Payloads and attributes are shown as text: never as HTML.
 */
import {
  api,
  ApiError,
  type Attempt,
  type Delivery,
  type Message,
  type Publisher,
  type SearchItem,
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
  labelCells,
  preview,
  pretty,
  replace,
  shortTarget,
  table,
  targetText,
  time,
  toast,
} from '../dom.js';
import { field, formError, input, onSubmit, select, showErrors, textOf } from '../forms.js';
import { go, link, pageHeader, type Page, type View } from '../view.js';

const FILTERS = ['topic', 'publisher', 'state', 'from', 'to', 'id', 'q'] as const;

function stateBadges(item: SearchItem): HTMLElement | string {
  if (!item.deliveries || item.deliveries.length === 0) return '—';
  return h(
    'span',
    { class: 'badges' },
    item.deliveries.map((d) =>
      h('span', { class: 'badge-group', title: `publisher #${d.publisher_id}` }, `#${d.publisher_id}`, badge(d.state)),
    ),
  );
}

function toLocal(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export const messagesPage: Page = async (view) => {
  const q = view.query;
  const [{ data: topics }, { data: publishers }] = await Promise.all([
    api<{ data: Topic[] }>('GET', '/api/topics'),
    api<{ data: Publisher[] }>('GET', '/api/publishers'),
  ]);
  if (view.gone) return;
  const attrName = [...q.keys()].find((k) => k.startsWith('attributes.'));
  const form = h(
    'form',
    { class: 'form-grid search-form', role: 'search', 'aria-label': 'Search messages' },
    field(
      'Topic',
      'topic',
      select([['', 'Any topic'], ...topics.map((t): [string, string] => [t.name, t.name])], q.get('topic') ?? ''),
    ),
    field(
      'Publisher',
      'publisher',
      select(
        [
          ['', 'Any publisher'],
          ...publishers.map((p): [string, string] => [p.id, `#${p.id} ${p.topic} → ${shortTarget(p.target, 40)}`]),
        ],
        q.get('publisher') ?? '',
      ),
    ),
    field(
      'State',
      'state',
      select(
        [
          ['', 'Any state'],
          ['pending', 'Pending'],
          ['leased', 'Leased (pull)'],
          ['delivered', 'Delivered'],
          ['retrying', 'Retrying'],
          ['dead', 'Dead'],
          ['purged', 'Purged'],
          ['skipped', 'Skipped (filtered out)'],
          ['deleted', 'Deleted'],
        ],
        q.get('state') ?? '',
      ),
    ),
    field('Message id', 'id', input({ value: q.get('id') ?? '', placeholder: 'exact id' })),
    field('Received from', 'from', input({ type: 'datetime-local', value: toLocal(q.get('from')) })),
    field('Received to', 'to', input({ type: 'datetime-local', value: toLocal(q.get('to')) })),
    field('Payload contains', 'q', input({ value: q.get('q') ?? '', placeholder: 'text in the payload JSON' })),
    h(
      'div',
      { class: 'attr-pair' },
      field(
        'Attribute',
        'attr_name',
        input({ value: attrName ? attrName.slice('attributes.'.length) : '', placeholder: 'name' }),
      ),
      field('equals', 'attr_value', input({ value: attrName ? (q.get(attrName) ?? '') : '', placeholder: 'value' })),
    ),
    h('div', { class: 'span-all' }, formError()),
    h(
      'div',
      { class: 'span-all form-submit' },
      h('a', { class: 'btn', href: '#/messages' }, 'Clear'),
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Search'),
    ),
  );
  onSubmit(form, async (data) => {
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      let v = textOf(data, name);
      if (v === '') continue;
      if (name === 'from' || name === 'to') v = isoWithOffset(v);
      next.set(name, v);
    }
    const an = textOf(data, 'attr_name');
    if (an !== '') next.set(`attributes.${an}`, textOf(data, 'attr_value'));
    go(`#/messages?${next.toString()}`);
  });

  const results = h('div', { class: 'results' });
  const more = h('div', { class: 'more' });
  const status = h('p', { class: 'subtitle', 'aria-live': 'polite' });
  const params = new URLSearchParams();
  for (const [k, v] of q)
    if ((FILTERS as readonly string[]).includes(k) || k.startsWith('attributes.')) params.set(k, v);
  const withStates = params.has('state') || params.has('publisher');
  // On a phone the filters fold away once a search is made, so the results come first.
  const narrow = window.matchMedia('(max-width: 760px)').matches;
  const active = [...params.keys()].length;
  const rows: HTMLElement[] = [];
  const body = h('tbody');
  const labels = ['Id', 'Topic', 'Received', ...(withStates ? ['Deliveries'] : []), 'Payload'];
  let pages = 0;
  let shown = '';
  const rowOf = (m: SearchItem): HTMLElement =>
    h(
      'tr',
      { 'data-message': m.id },
      h('td', { class: 'mono id-cell truncate', title: m.id }, link(`#/messages/${encodeURIComponent(m.id)}`, m.id)),
      h('td', null, m.topic),
      h('td', null, time(m.received_at)),
      withStates ? h('td', { class: 'wrap' }, stateBadges(m)) : null,
      h('td', { class: 'mono truncate payload-preview', title: preview(m.payload, 400) }, preview(m.payload)),
    );
  const load = async (cursor?: string, again = false): Promise<void> => {
    const p = new URLSearchParams(params);
    p.set('limit', '25');
    if (cursor) p.set('cursor', cursor);
    let page: SearchPage;
    try {
      page = await api<SearchPage>('GET', `/api/messages?${p.toString()}`);
    } catch (err) {
      if (err instanceof ApiError) {
        showErrors(form, err.fields);
        replace(status, 'Fix the search above.');
        return;
      }
      throw err;
    }
    if (view.gone) return;
    if (again) {
      // A live refresh of the first page: redrawn only when something changed.
      const text = JSON.stringify(page.data.map((m) => [m.id, m.deliveries]));
      if (text === shown) return;
      shown = text;
      rows.length = 0;
      body.replaceChildren();
    } else if (!cursor) shown = JSON.stringify(page.data.map((m) => [m.id, m.deliveries]));
    pages++;
    for (const m of page.data) {
      const row = rowOf(m);
      rows.push(row);
      body.append(row);
    }
    labelCells(body, labels);
    replace(
      status,
      rows.length === 0 ? 'No messages match.' : `${rows.length} message${rows.length === 1 ? '' : 's'}`,
      page.truncated ? ` (stopped after scanning ${page.scanned ?? 0} entries: load more to go on)` : '',
    );
    replace(
      more,
      page.cursor
        ? h(
            'button',
            {
              type: 'button',
              class: 'btn',
              on: { click: () => void load(page.cursor ?? undefined).catch(() => undefined) },
            },
            'Load more',
          )
        : null,
    );
  };
  replace(
    results,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'stack' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            labels.map((c) => h('th', null, c)),
          ),
        ),
        body,
      ),
    ),
  );
  await load();
  if (view.gone) return;
  // Live: the first page is looked at again while it is the only one shown.
  view.every(5000, async () => {
    if (pages === 1) {
      pages = 0;
      await load(undefined, true);
      pages = 1;
    }
  });
  replace(
    view.main,
    pageHeader('Messages', 'Search every topic’s retained messages, newest first.'),
    h(
      'details',
      { class: 'card search-card', open: !narrow || active === 0 },
      h(
        'summary',
        null,
        h('h2', null, 'Search'),
        active > 0 ? h('span', { class: 'muted' }, `${active} filter${active === 1 ? '' : 's'}`) : null,
      ),
      form,
    ),
    card(h('span', null, 'Results'), status, results, more),
  );
};

/** A pull lease's worker: its host, pid and name as text, never `[object Object]`. */
export function workerText(worker: unknown): string {
  if (worker === null || worker === undefined) return 'unknown worker';
  if (typeof worker === 'string' || typeof worker === 'number') return String(worker);
  if (typeof worker !== 'object') return 'unknown worker';
  const w = worker as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof w.name === 'string' && w.name) parts.push(w.name);
  if (typeof w.host === 'string' && w.host) parts.push(w.host);
  if (typeof w.pid === 'number') parts.push(`pid ${w.pid}`);
  for (const [k, v] of Object.entries(w))
    if (!['name', 'host', 'pid'].includes(k) && (typeof v === 'string' || typeof v === 'number'))
      parts.push(`${k} ${v}`);
  return parts.length > 0 ? parts.join(' · ') : 'unnamed worker';
}

const LEASE_TONES: Record<string, string> = {
  leased: 'teal',
  completed: 'green',
  replaced: 'green',
  expired: 'amber',
  retry: 'amber',
  failed: 'red',
};

/** One lease of a pull publisher's message: worker, when it ends or ended, outcome, and the worker's reason. */
function leaseRow(a: Attempt): HTMLElement {
  const outcome = a.outcome ?? 'leased';
  return h(
    'tr',
    { 'data-attempt': outcome, 'data-lease': outcome },
    h('td', null, time(a.at)),
    h('td', { class: 'wrap lease-worker', 'data-worker': '' }, workerText(a.worker)),
    h(
      'td',
      null,
      a.lease_expires_at
        ? h(
            'span',
            { 'data-expires': a.lease_expires_at },
            outcome === 'leased' ? 'ends ' : 'ended ',
            time(a.lease_expires_at),
          )
        : '—',
    ),
    h('td', null, badge(outcome, LEASE_TONES[outcome] ?? 'grey')),
    h('td', { class: 'wrap' }, a.error ?? (a.duration_ms === undefined ? '' : `${a.duration_ms} ms`)),
  );
}

function attemptRow(a: Attempt): HTMLElement {
  const outcome =
    a.status !== undefined
      ? badge(String(a.status), a.status >= 200 && a.status < 300 ? 'green' : 'red')
      : a.outcome
        ? badge(a.outcome)
        : a.error
          ? badge('error', 'red')
          : badge('delivered');
  const why = a.outcome === 'skipped' ? 'not sent: the publisher’s filter does not match' : (a.error ?? '');
  return h(
    'tr',
    { 'data-attempt': a.outcome ?? (a.status !== undefined ? String(a.status) : a.error ? 'error' : 'delivered') },
    h('td', null, time(a.at)),
    h('td', null, outcome),
    h(
      'td',
      { class: 'wrap' },
      why,
      // A failed attempt's answer, as text: never as HTML.
      a.response
        ? h('pre', { class: 'response', 'data-testid': 'response', title: 'The answer (first 1 KB)' }, a.response)
        : null,
    ),
    h('td', { class: 'num' }, a.duration_ms === undefined ? '—' : `${a.duration_ms} ms`),
  );
}

const ACTIONABLE = new Set(['retrying', 'dead', 'leased']);

function deliveryCard(m: Message, d: Delivery, redraw: () => void): HTMLElement {
  const facts: [string, Node | string][] = [
    ['Target', targetText(d.target, 64)],
    ['Attempts', String(d.attempt_count)],
  ];
  if (d.next_attempt_at) facts.push(['Next attempt', time(d.next_attempt_at)]);
  if (d.dead_reason) facts.push(['Dead because', d.dead_reason]);
  if (d.last_action) facts.push(['Last action', actionText(d.last_action)]);
  if (d.replaced_by) facts.push(['Replaced by', d.replaced_by.join(', ')]);
  const base = `/api/publishers/${encodeURIComponent(d.publisher_id)}/failing`;
  const actions = ACTIONABLE.has(d.state)
    ? h(
        'div',
        { class: 'delivery-actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-small btn-primary',
            'data-action': 'retry',
            on: {
              click: act(async () => {
                const res = await api<{ data: { count: number } }>('POST', `${base}/retry`, { ids: [m.id] });
                toast(
                  res.data.count === 1
                    ? `Publisher #${d.publisher_id} sends it again now.`
                    : 'It was no longer failing: nothing to retry.',
                );
                redraw();
              }),
            },
          },
          'Retry now',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-small btn-danger-ghost',
            'data-action': 'delete',
            on: {
              click: act(async () => {
                const ok = await confirmAction({
                  title: `Delete this message for publisher #${d.publisher_id}?`,
                  message: `It will never be delivered to ${d.target}. Other publishers keep it.`,
                  count: 1,
                  action: 'Delete',
                });
                if (!ok) return;
                const res = await api<{ data: { count: number } }>('POST', `${base}/delete`, { ids: [m.id] });
                toast(
                  res.data.count === 1
                    ? `Deleted for publisher #${d.publisher_id}: it will not be delivered.`
                    : 'It was no longer failing: nothing deleted.',
                );
                redraw();
              }),
            },
          },
          'Delete',
        ),
      )
    : null;
  const pull = d.type === 'pull';
  const attempts: readonly Attempt[] = d.attempts;
  return h(
    'section',
    { class: 'card delivery', 'data-delivery': d.publisher_id },
    h(
      'div',
      { class: 'delivery-head' },
      h(
        'h3',
        null,
        link(`#/publishers/${d.publisher_id}`, `Publisher #${d.publisher_id}`),
        h('span', { class: 'muted' }, ` · ${d.type}`),
      ),
      badge(d.state),
    ),
    h(
      'dl',
      { class: 'facts' },
      facts.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
    ),
    actions,
    attempts.length === 0
      ? h('p', { class: 'muted' }, pull ? 'Not leased yet.' : 'No attempt yet.')
      : pull && attempts.some((a) => a.worker !== undefined)
        ? table(
            ['Leased', 'Worker', 'Lease', 'Outcome', 'Reason'],
            attempts.map((a) => (a.worker !== undefined ? leaseRow(a) : attemptRow(a))),
          )
        : table(['At', 'Outcome', 'Answer', 'Duration'], attempts.map(attemptRow)),
  );
}

/** A delivery's last action (`{action, at}`) in words. */
function actionText(action: unknown): Node | string {
  if (action && typeof action === 'object' && 'action' in action) {
    const a = action as { action: unknown; at?: unknown };
    const words: Record<string, string> = {
      retry_now: 'retried by hand',
      rescheduled: 'next attempt moved',
      recovered: 'recovered',
      deleted: 'deleted from the failing list',
      purged: 'purged',
      sought: 'sent again by a seek',
    };
    const name = String(a.action);
    return h('span', null, words[name] ?? name.replace(/_/g, ' '), typeof a.at === 'string' ? [' ', time(a.at)] : null);
  }
  return preview(action, 120);
}

/** A page for what is not there: says so, and links back. */
export function notFound(title: string, text: string, back: string, backLabel: string): HTMLElement {
  return h(
    'div',
    { class: 'card empty-state not-found', 'data-testid': 'not-found' },
    h('h1', null, title),
    h('p', null, text),
    h('a', { class: 'btn', href: back }, backLabel),
  );
}

/**
 * What `load` gives, or undefined once "Publisher not found" is shown with a
 * link back (`back`, `backLabel`) when the API answered 404; any other error is thrown.
 */
export async function loadPublisherPage<T>(
  view: View,
  id: string,
  back: string,
  backLabel: string,
  load: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await load();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    replace(
      view.main,
      notFound('Publisher not found', `There is no publisher #${id}: it may have been deleted.`, back, backLabel),
    );
    return undefined;
  }
}

export const messagePage: Page = async (view) => {
  const id = view.params[0] ?? '';
  const body = h('div');
  let current = '';
  let topicPublishers: { id: string; type: string; target: string }[] | undefined;
  const fetchOne = async (): Promise<Message | undefined> => {
    try {
      return (await api<{ data: Message }>('GET', `/api/messages/${encodeURIComponent(id)}`)).data;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  };
  const draw = (m: Message): void => {
    const scheduled = m.state === 'scheduled';
    const deliveries: Node[] = scheduled
      ? (topicPublishers ?? []).map((p) =>
          h(
            'section',
            { class: 'card delivery', 'data-delivery': p.id },
            h(
              'div',
              { class: 'delivery-head' },
              h(
                'h3',
                null,
                link(`#/publishers/${p.id}`, `Publisher #${p.id}`),
                h('span', { class: 'muted' }, ` · ${p.type}`),
              ),
              badge('scheduled'),
            ),
            h('dl', { class: 'facts' }, h('dt', null, 'Target'), h('dd', null, targetText(p.target, 64))),
            h(
              'p',
              { class: 'muted' },
              'Sent to it once the message is released into the topic, ',
              time(m.schedule_at),
              '.',
            ),
          ),
        )
      : m.deliveries.map((d) => deliveryCard(m, d, () => void refresh().catch(() => undefined)));
    replace(
      body,
      pageHeader(
        h('span', { class: 'mono wrap-text' }, m.id),
        h(
          'span',
          null,
          'Topic ',
          link(`#/messages?topic=${encodeURIComponent(m.topic)}`, m.topic),
          m.received_at ? ' · received ' : '',
          m.received_at ? time(m.received_at) : '',
        ),
        m.state ? badge(m.state) : null,
      ),
      scheduled
        ? h(
            'p',
            { class: 'notice', 'data-testid': 'scheduled' },
            'Scheduled: released into ',
            m.topic,
            ' ',
            time(m.schedule_at),
            ', then delivered to its publishers.',
          )
        : null,
      h(
        'div',
        { class: 'two-columns' },
        card('Payload', h('pre', { class: 'json', 'data-testid': 'payload' }, pretty(m.payload))),
        card('Attributes', h('pre', { class: 'json', 'data-testid': 'attributes' }, pretty(m.attributes))),
      ),
      h('h2', { class: 'section-title' }, 'Deliveries'),
      deliveries.length === 0 ? h('p', { class: 'muted' }, `Topic ${m.topic} has no publisher.`) : deliveries,
    );
  };
  const load = async (m: Message): Promise<void> => {
    if (m.state === 'scheduled' && topicPublishers === undefined) {
      const t = await api<{ data: { publishers?: { id: string | number; type: string; target: string }[] } }>(
        'GET',
        `/api/topics/${encodeURIComponent(m.topic)}`,
      );
      topicPublishers = (t.data.publishers ?? []).map((p) => ({ id: String(p.id), type: p.type, target: p.target }));
    }
  };
  const missing = (): void =>
    replace(
      view.main,
      notFound(
        'Message not found',
        `No message has the id ${id}: it may have been trimmed after its retention, or never existed.`,
        '#/messages',
        'Back to messages',
      ),
    );
  const refresh = async (): Promise<void> => {
    const m = await fetchOne();
    if (view.gone) return;
    if (!m) {
      missing();
      return;
    }
    await load(m);
    if (view.gone) return;
    const text = JSON.stringify(m);
    if (text === current) return;
    current = text;
    draw(m);
  };
  const first = await fetchOne();
  if (view.gone) return;
  if (!first) {
    missing();
    return;
  }
  await load(first);
  if (view.gone) return;
  replace(view.main, body);
  current = JSON.stringify(first);
  draw(first);
  view.every(2000, refresh);
};
