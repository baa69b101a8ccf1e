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
import { badge, card, h, isoWithOffset, preview, pretty, replace, table, time } from '../dom.js';
import { field, formError, input, onSubmit, select, showErrors, textOf } from '../forms.js';
import { go, link, pageHeader, type Page } from '../view.js';

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
          ...publishers.map((p): [string, string] => [p.id, `#${p.id} ${p.topic} → ${p.target}`]),
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
  const load = async (cursor?: string): Promise<void> => {
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
    for (const m of page.data) {
      const row = h(
        'tr',
        { 'data-message': m.id },
        h('td', { class: 'mono id-cell', title: m.id }, link(`#/messages/${encodeURIComponent(m.id)}`, m.id)),
        h('td', null, m.topic),
        h('td', null, time(m.received_at)),
        withStates ? h('td', null, stateBadges(m)) : null,
        h('td', { class: 'mono truncate payload-preview' }, preview(m.payload)),
      );
      rows.push(row);
      body.append(row);
    }
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
        null,
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Id', 'Topic', 'Received', ...(withStates ? ['Deliveries'] : []), 'Payload'].map((c) => h('th', null, c)),
          ),
        ),
        body,
      ),
    ),
  );
  await load();
  if (view.gone) return;
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

function attemptRow(a: Attempt): HTMLElement {
  const outcome =
    a.status !== undefined
      ? badge(String(a.status), a.status >= 200 && a.status < 300 ? 'green' : 'red')
      : a.outcome
        ? badge(a.outcome)
        : badge('error', 'red');
  const why =
    a.outcome === 'skipped'
      ? 'not sent: the publisher’s filter does not match'
      : (a.error ?? (a.worker ? `worker ${JSON.stringify(a.worker)}` : ''));
  return h(
    'tr',
    { 'data-attempt': a.outcome ?? (a.status !== undefined ? String(a.status) : 'error') },
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

function deliveryCard(d: Delivery): HTMLElement {
  const facts: [string, Node | string][] = [
    ['Target', h('span', { class: 'mono' }, d.target)],
    ['Attempts', String(d.attempt_count)],
  ];
  if (d.next_attempt_at) facts.push(['Next attempt', time(d.next_attempt_at)]);
  if (d.dead_reason) facts.push(['Dead because', d.dead_reason]);
  if (d.last_action) facts.push(['Last action', preview(d.last_action, 120)]);
  if (d.replaced_by) facts.push(['Replaced by', d.replaced_by.join(', ')]);
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
    d.attempts.length > 0
      ? table(['At', 'Outcome', 'Error', 'Duration'], d.attempts.map(attemptRow))
      : h('p', { class: 'muted' }, 'No attempt yet.'),
  );
}

export const messagePage: Page = async (view) => {
  const id = view.params[0] ?? '';
  const body = h('div');
  const draw = (m: Message): void => {
    replace(
      body,
      pageHeader(
        h('span', { class: 'mono' }, m.id),
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
      m.schedule_at ? h('p', { class: 'notice' }, 'Scheduled for ', time(m.schedule_at)) : null,
      h(
        'div',
        { class: 'two-columns' },
        card('Payload', h('pre', { class: 'json', 'data-testid': 'payload' }, pretty(m.payload))),
        card('Attributes', h('pre', { class: 'json', 'data-testid': 'attributes' }, pretty(m.attributes))),
      ),
      h('h2', { class: 'section-title' }, 'Deliveries'),
      m.deliveries.length === 0
        ? h('p', { class: 'muted' }, 'No publisher for this topic.')
        : m.deliveries.map(deliveryCard),
    );
  };
  const first = await api<{ data: Message }>('GET', `/api/messages/${encodeURIComponent(id)}`);
  if (view.gone) return;
  replace(view.main, body);
  draw(first.data);
  view.every(2000, async () => {
    const m = await api<{ data: Message }>('GET', `/api/messages/${encodeURIComponent(id)}`);
    if (view.gone) return;
    if (JSON.stringify(m.data) === JSON.stringify(first.data)) return;
    first.data = m.data;
    draw(m.data);
  });
};
