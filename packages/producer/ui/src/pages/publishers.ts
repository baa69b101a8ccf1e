/**
 * Publishers: the list (inactive ones too) with activate/deactivate and
 * delete, and one form to create or edit a publisher. Fields fixed at
 * creation (topic, type, from now, ordered) are shown but locked on edit.
 */
import { api, type Publisher, type Topic } from '../api.js';
import { act, badge, card, confirmDialog, h, replace, table, toast } from '../dom.js';
import type { FieldErrors } from '../api.js';
import { Invalid, checkbox, field, formError, input, numberOf, onSubmit, select, textOf } from '../forms.js';
import { go, link, pageHeader, type Page, type View } from '../view.js';
import { flowCard } from './flow.js';

function rate(p: Publisher): string {
  return p.rate_limit ? `${p.rate_limit.per_second}/s, burst ${p.rate_limit.burst}` : 'none';
}

async function drawList(view: View, holder: HTMLElement): Promise<void> {
  const { data } = await api<{ data: Publisher[] }>('GET', '/api/publishers');
  if (view.gone) return;
  const again = (): void => void drawList(view, holder).catch(() => undefined);
  replace(
    holder,
    table(
      ['Publisher', 'Topic', 'Target', ['Delivery', 'hide-narrow'], ''],
      data.map((p) =>
        h(
          'tr',
          { 'data-publisher': p.id, class: p.active ? '' : 'muted-row' },
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
          h(
            'td',
            { class: 'target-cell', title: p.target },
            h('span', { class: 'tag tag-first' }, p.type),
            p.ordered ? h('span', { class: 'tag' }, 'ordered') : null,
            h('span', { class: 'mono' }, p.target),
          ),
          h(
            'td',
            { class: 'settings hide-narrow' },
            `timeout ${p.seconds_timeout} s · retry ${p.seconds_retry} s · ${p.concurrency} in flight`,
            p.rate_limit ? h('div', null, `rate ${rate(p)}`) : null,
          ),
          h(
            'td',
            { class: 'row-actions' },
            h(
              'button',
              {
                type: 'button',
                class: 'btn btn-small',
                'data-action': p.active ? 'deactivate' : 'activate',
                on: {
                  click: act(async () => {
                    await api('PATCH', `/api/publishers/${p.id}`, { active: !p.active });
                    toast(`Publisher #${p.id} ${p.active ? 'deactivated' : 'activated'}.`);
                    again();
                  }),
                },
              },
              p.active ? 'Deactivate' : 'Activate',
            ),
            h('a', { class: 'btn btn-small', href: `#/publishers/${p.id}` }, 'Edit'),
            h(
              'button',
              {
                type: 'button',
                class: 'btn btn-small btn-danger-ghost',
                'data-action': 'delete',
                on: {
                  click: act(async () => {
                    const ok = await confirmDialog(
                      `Delete publisher #${p.id}?`,
                      `Messages of ${p.topic} will no longer go to ${p.target}. Its retries and dead letters are dropped.`,
                    );
                    if (!ok) return;
                    await api('DELETE', `/api/publishers/${p.id}`);
                    toast(`Publisher #${p.id} deleted.`);
                    again();
                  }),
                },
              },
              'Delete',
            ),
          ),
        ),
      ),
      'No publishers yet.',
    ),
  );
}

export const publishersPage: Page = async (view) => {
  const holder = h('div');
  await drawList(view, holder);
  if (view.gone) return;
  replace(
    view.main,
    pageHeader(
      'Publishers',
      'Where each topic’s messages go. Inactive publishers keep their backlog until activated.',
      h('a', { class: 'btn btn-primary', href: '#/publishers/new' }, 'New publisher'),
    ),
    card(null, holder),
  );
};

const TARGET_HINTS: Record<string, string> = {
  http: 'An http or https URL that receives a POST per message.',
  pubsub: 'A Pub/Sub topic id, or projects/<project>/topics/<topic id>.',
  pull: 'A subscription name that workers lease messages from.',
};

export const publisherFormPage: Page = async (view) => {
  const id = view.params[0] ?? 'new';
  const creating = id === 'new';
  const [{ data: topics }, existing] = await Promise.all([
    api<{ data: Topic[] }>('GET', '/api/topics'),
    creating
      ? Promise.resolve(undefined)
      : api<{ data: Publisher }>('GET', `/api/publishers/${encodeURIComponent(id)}`),
  ]);
  if (view.gone) return;
  const p = existing?.data;
  const preset = view.query.get('topic') ?? undefined;
  const topicSelect = select(
    [
      ['', topics.length === 0 ? 'Create a topic first' : 'Choose a topic'],
      ...topics.map((t): [string, string] => [t.name, t.name]),
    ],
    p?.topic ?? preset ?? (topics.length === 1 ? topics[0]?.name : ''),
    { disabled: !creating },
  );
  const typeSelect = select(
    [
      ['http', 'HTTP endpoint'],
      ['pubsub', 'Google Cloud Pub/Sub'],
      ['pull', 'Pull subscription'],
    ],
    p?.type ?? 'http',
    { disabled: !creating },
  );
  const hint = h('span', null, TARGET_HINTS[typeSelect.value] ?? '');
  typeSelect.addEventListener('change', () => replace(hint, TARGET_HINTS[typeSelect.value] ?? ''));
  const form = h(
    'form',
    { class: 'form-grid', 'aria-label': creating ? 'New publisher' : `Edit publisher ${id}` },
    field('Topic', 'topic', topicSelect),
    field('Type', 'type', typeSelect),
    h(
      'div',
      { class: 'span-2' },
      field('Target', 'target', input({ value: p?.target ?? '', placeholder: 'https://example.com/hook' }), hint),
    ),
    field(
      'Timeout (seconds)',
      'seconds_timeout',
      input({
        type: 'number',
        step: 'any',
        min: 0,
        value: p?.seconds_timeout ?? '',
        placeholder: '5',
        inputmode: 'decimal',
      }),
    ),
    field(
      'First retry after (seconds)',
      'seconds_retry',
      input({
        type: 'number',
        step: 'any',
        min: 0,
        value: p?.seconds_retry ?? '',
        placeholder: '30',
        inputmode: 'decimal',
      }),
      'Doubles at each failure, up to the server’s cap.',
    ),
    field(
      'Concurrency',
      'concurrency',
      input({ type: 'number', min: 1, value: p?.concurrency ?? '', placeholder: '25', inputmode: 'numeric' }),
      'Deliveries in flight per node.',
    ),
    field(
      'Parallelism',
      'parallelism',
      input({ type: 'number', min: 1, value: p?.parallelism ?? '', placeholder: '1', inputmode: 'numeric' }),
      'How many nodes may deliver at once.',
    ),
    field(
      'Rate limit (per second)',
      'rate_limit',
      input({
        type: 'number',
        step: 'any',
        min: 0,
        value: p?.rate_limit?.per_second ?? '',
        placeholder: 'no limit',
        inputmode: 'decimal',
      }),
      'Across the whole cluster; leave empty for none.',
    ),
    field(
      'Burst',
      'burst',
      input({
        type: 'number',
        min: 1,
        value: p?.rate_limit?.burst ?? '',
        placeholder: 'same as the rate',
        inputmode: 'numeric',
      }),
    ),
    h(
      'div',
      { class: 'span-2 checks' },
      checkbox('Active', 'active', p?.active ?? true, 'An inactive publisher keeps its messages until activated.'),
      checkbox(
        'Ordered',
        'ordered',
        p?.ordered ?? false,
        'One delivery at a time, in order. Fixed at creation.',
        !creating,
      ),
      checkbox(
        'Only new messages',
        'from_now',
        p?.from_now ?? false,
        'Skip the topic’s retained messages. Fixed at creation.',
        !creating,
      ),
    ),
    h('div', { class: 'span-2' }, formError()),
    h(
      'div',
      { class: 'span-2 form-submit' },
      h('a', { class: 'btn', href: '#/publishers' }, 'Cancel'),
      h('button', { type: 'submit', class: 'btn btn-primary' }, creating ? 'Create publisher' : 'Save changes'),
    ),
  );
  onSubmit(form, async (data) => {
    const errors: FieldErrors = {};
    const body: Record<string, unknown> = { target: textOf(data, 'target'), active: data.get('active') !== null };
    for (const name of ['seconds_timeout', 'seconds_retry', 'concurrency', 'parallelism'] as const) {
      const n = numberOf(data, name, errors);
      if (n !== undefined) body[name] = n;
    }
    const perSecond = numberOf(data, 'rate_limit', errors);
    const burst = numberOf(data, 'burst', errors);
    if (perSecond !== undefined)
      body.rate_limit = { per_second: perSecond, burst: burst ?? Math.max(1, Math.ceil(perSecond)) };
    else if (burst !== undefined) errors.burst = ['needs a rate per second'];
    else if (!creating && p?.rate_limit) body.rate_limit = null;
    if (body.target === '') errors.target = ["can't be blank"];
    if (creating) {
      body.topic = textOf(data, 'topic');
      body.type = textOf(data, 'type');
      body.ordered = data.get('ordered') !== null;
      body.from_now = data.get('from_now') !== null;
      if (body.topic === '') errors.topic = ["can't be blank"];
    }
    if (Object.keys(errors).length > 0) throw new Invalid(errors);
    const saved = creating
      ? await api<{ data: Publisher }>('POST', '/api/publishers', body)
      : await api<{ data: Publisher }>('PATCH', `/api/publishers/${encodeURIComponent(id)}`, body);
    toast(creating ? `Publisher #${saved.data.id} created.` : `Publisher #${saved.data.id} saved.`);
    go('#/publishers');
  });
  replace(
    view.main,
    pageHeader(
      creating ? 'New publisher' : `Publisher #${id}`,
      creating ? 'Deliver a topic’s messages to an endpoint.' : `${p?.topic ?? ''} → ${p?.target ?? ''}`,
      creating ? null : h('a', { class: 'btn', href: `#/failing/${id}` }, 'Failing messages'),
      creating ? null : h('a', { class: 'btn', href: `#/messages?publisher=${encodeURIComponent(id)}` }, 'Messages'),
    ),
    card(null, form),
    p ? flowCard(p) : null,
  );
};
