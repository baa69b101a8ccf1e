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
            p.ordered
              ? h('span', { class: 'tag' }, p.ordering_attribute ? `ordered by ${p.ordering_attribute}` : 'ordered')
              : null,
            p.filter ? h('span', { class: 'tag' }, 'filtered') : null,
            (p.batch_size ?? 1) > 1 ? h('span', { class: 'tag' }, `batches of ${p.batch_size}`) : null,
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

/** A publisher's filter as the form shows it: one `name = value, value` a line. */
function filterText(p: Publisher | undefined): string {
  const attributes = p?.filter?.attributes ?? {};
  return Object.entries(attributes)
    .map(([name, v]) => `${name} = ${typeof v === 'string' ? v : v.join(', ')}`)
    .join('\n');
}

/** The filter typed in the form; undefined when empty. A value with commas is a list (any of them matches). */
function parseFilter(text: string, errors: FieldErrors): { attributes: Record<string, string | string[]> } | undefined {
  const attributes: Record<string, string | string[]> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const at = line.indexOf('=');
    const name = at === -1 ? '' : line.slice(0, at).trim();
    if (name === '') {
      errors.filter = ['must be one `name = value` a line'];
      continue;
    }
    const values = line
      .slice(at + 1)
      .split(',')
      .map((v) => v.trim());
    attributes[name] = values.length === 1 ? (values[0] ?? '') : values;
  }
  return Object.keys(attributes).length > 0 ? { attributes } : undefined;
}

/** The headers typed in the form (`Name: value` a line); undefined when empty. */
function parseHeaders(text: string, errors: FieldErrors): Record<string, string> | undefined {
  const headers: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const at = line.indexOf(':');
    if (at <= 0) {
      errors.headers = ['must be one `Name: value` a line'];
      continue;
    }
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return Object.keys(headers).length > 0 ? headers : undefined;
}

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
    field(
      'Batch size',
      'batch_size',
      input({ type: 'number', min: 1, max: 500, value: p?.batch_size ?? '', placeholder: '1', inputmode: 'numeric' }),
      'http: messages per POST (a JSON array); 1 sends one a request.',
    ),
    field(
      'Final statuses',
      'dead_on_status',
      input({ value: (p?.dead_on_status ?? []).join(', '), placeholder: 'e.g. 400, 404' }),
      'http: answers that make a message a dead letter at once (410 always does).',
    ),
    field(
      'Max attempts',
      'retry_max_attempts',
      input({
        type: 'number',
        min: 1,
        value: p?.retry_max_attempts ?? '',
        placeholder: 'no limit',
        inputmode: 'numeric',
      }),
      'A dead letter after this many attempts.',
    ),
    field(
      'Max age (seconds)',
      'retry_max_age_seconds',
      input({
        type: 'number',
        step: 'any',
        min: 1,
        value: p?.retry_max_age_seconds ?? '',
        placeholder: 'server default',
        inputmode: 'decimal',
      }),
      'A dead letter once this old (after one last attempt).',
    ),
    h(
      'div',
      { class: 'span-2' },
      field(
        'Filter',
        'filter',
        h('textarea', { rows: 2, placeholder: 'kind = order\nregion = eu, us' }, filterText(p)),
        'http and Pub/Sub: one attribute a line, `name = value` or `name = value, value` (any of them). Other messages are skipped.',
      ),
    ),
    h(
      'div',
      { class: 'span-2' },
      field(
        'Headers',
        'headers',
        h('textarea', { rows: 2, placeholder: 'Authorization: Bearer …' }),
        p?.header_names && p.header_names.length > 0
          ? `http: sent with every delivery. Set now: ${p.header_names.join(', ')} (write-only: leave empty to keep them).`
          : 'http: sent with every delivery, one `Name: value` a line. Write-only.',
      ),
    ),
    p?.header_names && p.header_names.length > 0
      ? h('div', { class: 'span-2 checks' }, checkbox('Remove its headers', 'clear_headers', false))
      : null,
    field(
      'Ordering attribute',
      'ordering_attribute',
      input({ value: p?.ordering_attribute ?? '', placeholder: 'e.g. customer_id', disabled: !creating }),
      'With Ordered: in order per value of this attribute, keys in parallel. Fixed at creation.',
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
    const batch = numberOf(data, 'batch_size', errors);
    if (batch !== undefined) body.batch_size = batch;
    // Fields that null clears: sent when given, or cleared when they were set.
    const clearable = (name: string, value: unknown, was: unknown): void => {
      if (value !== undefined) body[name] = value;
      else if (!creating && was != null) body[name] = null;
    };
    const statuses = textOf(data, 'dead_on_status');
    const codes =
      statuses === ''
        ? []
        : statuses
            .split(/[\s,]+/)
            .filter(Boolean)
            .map(Number);
    if (codes.some((c) => !Number.isInteger(c))) errors.dead_on_status = ['must be statuses separated by commas'];
    if (codes.length > 0) body.dead_on_status = codes;
    else if (!creating && (p?.dead_on_status ?? []).length > 0) body.dead_on_status = [];
    clearable('retry_max_attempts', numberOf(data, 'retry_max_attempts', errors), p?.retry_max_attempts);
    clearable('retry_max_age_seconds', numberOf(data, 'retry_max_age_seconds', errors), p?.retry_max_age_seconds);
    clearable('filter', parseFilter(textOf(data, 'filter'), errors), p?.filter);
    const headers = parseHeaders(textOf(data, 'headers'), errors);
    if (headers !== undefined) body.headers = headers;
    else if (data.get('clear_headers') !== null) body.headers = null;
    if (creating) {
      body.topic = textOf(data, 'topic');
      body.type = textOf(data, 'type');
      body.ordered = data.get('ordered') !== null;
      body.from_now = data.get('from_now') !== null;
      const attribute = textOf(data, 'ordering_attribute');
      if (attribute !== '') body.ordering_attribute = attribute;
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
