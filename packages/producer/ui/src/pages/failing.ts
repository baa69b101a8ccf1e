/**
 * Failing messages of a publisher: retrying ones (soonest next attempt
 * first) and dead letters, a page at a time, with the repairs of the API:
 * retry now, set the next attempt, delete, and recover dead letters since
 * a time.
 */
import { api, type Attempt, type FailingItem, type Publisher, type PublisherStats, type Stats } from '../api.js';
import {
  act,
  badge,
  card,
  confirmAction,
  h,
  isoWithOffset,
  localInput,
  num,
  preview,
  replace,
  table,
  targetText,
  time,
  toast,
} from '../dom.js';
import { field, formError, input, onSubmit, textOf } from '../forms.js';
import { go, link, pageHeader, type Page, type View } from '../view.js';
import { loadPublisherPage, workerText } from './messages.js';
import { recoverSince, retryAllOf } from './publisher.js';

const PAGE_SIZE = 25;

async function drawFailingList(view: View, holder: HTMLElement): Promise<void> {
  const { data } = await api<{ data: Stats }>('GET', '/api/stats');
  if (view.gone) return;
  const row = (p: PublisherStats): HTMLElement =>
    h(
      'tr',
      { 'data-publisher': p.id },
      h('td', null, link(`#/publishers/${p.id}`, `#${p.id}`)),
      h('td', null, p.topic),
      h('td', { class: 'target-cell' }, targetText(p.target)),
      h('td', { class: 'num', 'data-col': 'retrying' }, p.retrying > 0 ? badge(num(p.retrying), 'amber') : '0'),
      (p.leased ?? 0) > 0
        ? h('td', { class: 'num', 'data-col': 'leased' }, badge(num(p.leased ?? 0), 'teal'))
        : h('td', { class: 'num', 'data-col': 'leased' }, '0'),
      h('td', { class: 'num', 'data-col': 'dead' }, p.dead > 0 ? badge(num(p.dead), 'red') : '0'),
      h('td', { class: 'row-actions' }, h('a', { class: 'btn btn-small', href: `#/failing/${p.id}` }, 'Open')),
    );
  const sorted = [...data.per_publisher].sort(
    (a, b) => b.retrying + b.dead + (b.leased ?? 0) - (a.retrying + a.dead + (a.leased ?? 0)),
  );
  replace(
    holder,
    table(['Publisher', 'Topic', 'Target', 'Retrying', 'Leased', 'Dead', ''], sorted.map(row), 'No publishers yet.'),
  );
}

export const failingListPage: Page = async (view) => {
  const holder = h('div');
  await drawFailingList(view, holder);
  if (view.gone) return;
  replace(
    view.main,
    pageHeader('Failing', 'Messages waiting for a retry, leased by pull workers, and dead letters, per publisher.'),
    card(null, holder),
  );
  view.every(3000, () => drawFailingList(view, holder));
};

export const failingPage: Page = async (view) => {
  const id = view.params[0] ?? '';
  const state = view.query.get('state') ?? '';
  const cursor = view.query.get('cursor') ?? '';
  const base = `/api/publishers/${encodeURIComponent(id)}`;
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (state) q.set('state', state);
  if (cursor) q.set('cursor', cursor);
  const loaded = await loadPublisherPage(view, id, '#/failing', 'Back to failing', () =>
    Promise.all([
      api<{ data: Publisher }>('GET', base),
      api<{ data: FailingItem[]; cursor: string | null }>('GET', `${base}/failing?${q.toString()}`),
    ]),
  );
  if (!loaded) return;
  const [{ data: publisher }, page] = loaded;
  if (view.gone) return;
  const here = (next: Record<string, string>): string => {
    const p = new URLSearchParams();
    const merged = { state, ...next };
    for (const [k, v] of Object.entries(merged)) if (v) p.set(k, v);
    const s = p.toString();
    return `#/failing/${id}${s ? `?${s}` : ''}`;
  };
  const reload = (): void => go(location.hash);

  const boxes: HTMLInputElement[] = [];
  const selected = (): string[] => boxes.filter((b) => b.checked).map((b) => b.value);
  const all = h('input', {
    type: 'checkbox',
    'aria-label': 'Select every message on this page',
    on: { change: () => boxes.forEach((b) => (b.checked = all.checked)) },
  });
  const rows = page.data.map((m) => {
    const box = h('input', { type: 'checkbox', value: m.id, 'aria-label': `Select ${m.id}` });
    boxes.push(box);
    const last: Attempt | undefined = m.last_attempt;
    return h(
      'tr',
      { 'data-message': m.id, 'data-state': m.state },
      h('td', null, box),
      h('td', { class: 'mono id-cell', title: m.id }, link(`#/messages/${encodeURIComponent(m.id)}`, m.id)),
      h('td', null, badge(m.state)),
      h('td', { class: 'num' }, String(m.attempt_count)),
      h(
        'td',
        { class: 'wrap' },
        last
          ? last.status !== undefined
            ? `HTTP ${last.status}`
            : last.worker !== undefined
              ? `${last.outcome ?? 'lease'} · ${workerText(last.worker)}${last.error ? ` · ${last.error}` : ''}`
              : (last.error ?? '—')
          : '—',
      ),
      h(
        'td',
        null,
        m.state === 'retrying'
          ? time(m.next_attempt_at)
          : m.state === 'leased'
            ? h('span', null, 'lease ends ', time(m.lease_expires_at))
            : h(
                'span',
                null,
                time(m.dead_at),
                m.dead_reason ? h('div', { class: 'muted small' }, m.dead_reason) : null,
              ),
      ),
      h('td', { class: 'mono truncate payload-preview', title: preview(m.payload, 400) }, preview(m.payload, 60)),
    );
  });

  const post = async (label: string, path: string, payload: Record<string, unknown>): Promise<void> => {
    const res = await api<{ data: { count: number; missing?: string[] } }>('POST', `${base}/failing/${path}`, payload);
    const missing = res.data.missing?.length ? `, ${res.data.missing.length} no longer failing` : '';
    toast(`${label}: ${res.data.count} message${res.data.count === 1 ? '' : 's'}${missing}.`);
    reload();
  };
  const run = (label: string, path: string, body: () => Record<string, unknown> | undefined) =>
    act(async () => {
      const payload = body();
      if (payload) await post(label, path, payload);
    });
  const needSelection = (): string[] | undefined => {
    const ids = selected();
    if (ids.length === 0) toast('Select messages first.', 'error');
    return ids.length === 0 ? undefined : ids;
  };
  const nextAt = input({
    type: 'datetime-local',
    value: localInput(new Date(Date.now() + 10 * 60_000)),
    'aria-label': 'Next attempt at',
  });

  const toolbar = h(
    'div',
    { class: 'toolbar' },
    h(
      'button',
      {
        type: 'button',
        class: 'btn btn-primary',
        'data-action': 'retry',
        on: {
          click: run('Retry now', 'retry', () => {
            const ids = needSelection();
            return ids && { ids };
          }),
        },
      },
      'Retry now',
    ),
    h(
      'span',
      { class: 'inline-group' },
      h('label', { class: 'inline-label' }, 'Next attempt at', nextAt),
      h(
        'button',
        {
          type: 'button',
          class: 'btn',
          'data-action': 'next-attempt',
          on: {
            click: run('Next attempt set', 'next_attempt', () => {
              const ids = needSelection();
              return ids && { ids, next_attempt_at: isoWithOffset(nextAt.value) };
            }),
          },
        },
        'Set next attempt',
      ),
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'btn btn-danger-ghost',
        'data-action': 'delete',
        on: {
          click: act(async () => {
            const ids = needSelection();
            if (!ids) return;
            if (
              !(await confirmAction({
                title: `Delete ${ids.length} message${ids.length === 1 ? '' : 's'}?`,
                message: `They will never be delivered to publisher #${id}; other publishers keep them.`,
                count: ids.length,
                action: 'Delete',
              }))
            )
              return;
            await post('Deleted', 'delete', { ids });
          }),
        },
      },
      'Delete',
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'btn',
        'data-action': 'retry-all',
        on: {
          click: act(async () => {
            if (await retryAllOf(id)) reload();
          }),
        },
      },
      'Retry all',
    ),
  );

  const recover = h(
    'form',
    { class: 'form-row', 'aria-label': 'Recover dead letters' },
    field(
      'Dead since',
      'since',
      input({ type: 'datetime-local', value: localInput(new Date(Date.now() - 3600_000)) }),
      'Every dead letter that died at or after this time is sent again.',
    ),
    formError(),
    h('div', { class: 'form-submit' }, h('button', { type: 'submit', class: 'btn' }, 'Recover')),
  );
  onSubmit(recover, async (data) => {
    if (await recoverSince(id, textOf(data, 'since'))) reload();
  });

  const tabs = h(
    'nav',
    { class: 'tabs', 'aria-label': 'Filter by state' },
    [
      ['', 'All'],
      ['retrying', 'Retrying'],
      ['dead', 'Dead'],
    ].map(([value, label]) =>
      h('a', { href: here({ state: value ?? '', cursor: '' }), class: state === value ? 'tab active' : 'tab' }, label),
    ),
  );
  const pager = h(
    'div',
    { class: 'pager' },
    cursor ? h('a', { class: 'btn', href: here({ cursor: '' }) }, 'First page') : null,
    page.cursor ? h('a', { class: 'btn', href: here({ cursor: page.cursor }) }, 'Next page') : null,
  );
  const table_ = table(
    ['', 'Message', 'State', 'Attempts', 'Last attempt', 'Next attempt / died', 'Payload'],
    rows,
    'Nothing failing here.',
  );
  table_.querySelector('th')?.append(all);
  replace(
    view.main,
    pageHeader(
      h('span', null, 'Failing for ', link(`#/publishers/${id}`, `publisher #${id}`)),
      h('span', null, `${publisher.topic} → `, targetText(publisher.target)),
      h('button', { type: 'button', class: 'btn', on: { click: reload } }, 'Refresh'),
    ),
    card(null, tabs, toolbar, table_, pager),
    card('Recover dead letters', recover),
  );
  // Live: looked at again every 3 s; redrawn when the list changed, unless the user is selecting or confirming.
  const shown = JSON.stringify(page.data.map((m) => [m.id, m.state, m.attempt_count]));
  view.every(3000, async () => {
    const again = await api<{ data: FailingItem[] }>('GET', `${base}/failing?${q.toString()}`);
    if (
      view.gone ||
      selected().length > 0 ||
      document.querySelector('dialog[open]') ||
      document.activeElement instanceof HTMLInputElement
    )
      return;
    if (JSON.stringify(again.data.map((m) => [m.id, m.state, m.attempt_count])) !== shown) reload();
  });
};
