/**
 * Publishers: the list (inactive ones too) with activate/deactivate and
 * delete, and one form to create or edit a publisher. Fields fixed at
 * creation (topic, type, from now, ordered) are shown but locked on edit.
 */
import { api, type Publisher, type PublisherStats, type Stats, type Topic } from '../api.js';
import { act, badge, card, confirmAction, h, replace, table, targetText, toast } from '../dom.js';
import type { FieldErrors } from '../api.js';
import { Invalid, checkbox, field, formError, input, numberOf, onSubmit, select, textOf } from '../forms.js';
import { go, link, pageHeader, type Page, type View } from '../view.js';

/** A publisher's figures from `GET /api/stats`; undefined when it has none (just created, or deleted). */
export async function statsOf(id: string): Promise<PublisherStats | undefined> {
  const { data } = await api<{ data: Stats }>('GET', '/api/stats');
  return data.per_publisher.find((p) => p.id === id);
}

/** Switches a publisher off or on, after a confirmation that says how many messages wait for it. */
export async function toggleActive(p: Publisher): Promise<boolean> {
  if (p.active) {
    const stats = await statsOf(p.id);
    const waiting = stats ? stats.backlog : null;
    const ok = await confirmAction({
      title: `Deactivate publisher #${p.id}?`,
      message: `It stops delivering to ${p.target}; its messages wait until it is activated again.`,
      count: waiting,
      what: 'waiting message',
      action: 'Deactivate',
    });
    if (!ok) return false;
  }
  await api('PATCH', `/api/publishers/${encodeURIComponent(p.id)}`, { active: !p.active });
  toast(`Publisher #${p.id} ${p.active ? 'deactivated: it keeps its messages until activated' : 'activated'}.`);
  return true;
}

/** Deletes a publisher after a confirmation that says how many undelivered messages it drops. */
export async function deletePublisher(p: Publisher): Promise<boolean> {
  const stats = await statsOf(p.id);
  const ok = await confirmAction({
    title: `Delete publisher #${p.id}?`,
    message: `Messages of ${p.topic} will no longer go to ${p.target}. What it has not delivered is dropped, dead letters too.`,
    count: stats ? stats.backlog + stats.dead : null,
    what: 'undelivered message',
    action: 'Delete',
  });
  if (!ok) return false;
  await api('DELETE', `/api/publishers/${encodeURIComponent(p.id)}`);
  toast(`Publisher #${p.id} deleted.`);
  return true;
}

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
            { class: 'target-cell wrap' },
            h('span', { class: 'tag tag-first' }, p.type),
            p.ordered
              ? h('span', { class: 'tag' }, p.ordering_attribute ? `ordered by ${p.ordering_attribute}` : 'ordered')
              : null,
            p.filter ? h('span', { class: 'tag' }, 'filtered') : null,
            p.batch_size > 1 ? h('span', { class: 'tag' }, `batches of ${p.batch_size}`) : null,
            h('div', null, targetText(p.target)),
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
                    if (await toggleActive(p)) again();
                  }),
                },
              },
              p.active ? 'Deactivate' : 'Activate',
            ),
            h('a', { class: 'btn btn-small', href: `#/publishers/${p.id}` }, 'Open'),
            h(
              'button',
              {
                type: 'button',
                class: 'btn btn-small btn-danger-ghost',
                'data-action': 'delete',
                on: {
                  click: act(async () => {
                    if (await deletePublisher(p)) again();
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
  // Live: redrawn every 3 s unless a dialog is open (its buttons belong to the rows drawn now).
  view.every(3000, async () => {
    if (!document.querySelector('dialog[open]')) await drawList(view, holder);
  });
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

/** Which publisher types each optional field applies to (the API refuses the others). */
const FIELD_FOR: Record<string, readonly Publisher['type'][]> = {
  seconds_timeout: ['http', 'pubsub'],
  concurrency: ['http', 'pubsub'],
  parallelism: ['http', 'pubsub'],
  rate_limit: ['http', 'pubsub'],
  burst: ['http', 'pubsub'],
  batch_size: ['http'],
  dead_on_status: ['http'],
  filter: ['http', 'pubsub'],
  headers: ['http'],
  clear_headers: ['http'],
  secrets: ['http'],
  clear_secrets: ['http'],
  ordering_attribute: ['http', 'pubsub'],
  ordered: ['http', 'pubsub'],
};

/** Shows the fields of `type` only; the others are hidden and disabled, so the form never sends them. */
function showFieldsOf(form: HTMLFormElement, type: string): void {
  for (const el of form.querySelectorAll<HTMLElement>('[data-types]')) {
    const on = (el.dataset.types ?? '').split(' ').includes(type);
    el.hidden = !on;
    for (const c of el.querySelectorAll<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(
      'input, textarea, select',
    ))
      if (c.dataset.locked === undefined) c.disabled = !on;
  }
}

/** Marks a field's box with the types it applies to (`FIELD_FOR`). */
function forTypes(name: string, el: HTMLElement): HTMLElement {
  const types = FIELD_FOR[name];
  if (types) el.setAttribute('data-types', types.join(' '));
  return el;
}

/** The secrets typed in the form, one a line; undefined when empty. */
function parseSecrets(text: string): string[] | undefined {
  const list = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return list.length > 0 ? list : undefined;
}

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
  const form = publisherForm(topics, p, view.query.get('topic') ?? undefined, () => go('#/publishers'));
  replace(
    view.main,
    pageHeader(
      creating ? 'New publisher' : `Edit publisher #${id}`,
      creating ? 'Deliver a topic’s messages to an endpoint.' : `${p?.topic ?? ''} → ${p?.target ?? ''}`,
      creating ? null : h('a', { class: 'btn', href: `#/publishers/${id}` }, 'Back to the publisher'),
    ),
    card(null, form),
  );
};

/** The form that creates a publisher, or edits `p`: only the fields of its type; secrets and headers write-only. */
export function publisherForm(
  topics: Topic[],
  p: Publisher | undefined,
  preset: string | undefined,
  saved: (p: Publisher) => void,
): HTMLFormElement {
  const creating = p === undefined;
  const id = p?.id ?? 'new';
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
    forTypes(
      'seconds_timeout',
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
    forTypes(
      'concurrency',
      field(
        'Concurrency',
        'concurrency',
        input({ type: 'number', min: 1, value: p?.concurrency ?? '', placeholder: '25', inputmode: 'numeric' }),
        'Deliveries in flight per node.',
      ),
    ),
    forTypes(
      'parallelism',
      field(
        'Parallelism',
        'parallelism',
        input({ type: 'number', min: 1, value: p?.parallelism ?? '', placeholder: '1', inputmode: 'numeric' }),
        'How many nodes may deliver at once.',
      ),
    ),
    forTypes(
      'rate_limit',
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
    ),
    forTypes(
      'burst',
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
    ),
    forTypes(
      'batch_size',
      field(
        'Batch size',
        'batch_size',
        input({ type: 'number', min: 1, max: 500, value: p?.batch_size ?? '', placeholder: '1', inputmode: 'numeric' }),
        'http: messages per POST (a JSON array); 1 sends one a request.',
      ),
    ),
    forTypes(
      'dead_on_status',
      field(
        'Final statuses',
        'dead_on_status',
        input({ value: (p?.dead_on_status ?? []).join(', '), placeholder: 'e.g. 400, 404' }),
        'http: answers that make a message a dead letter at once (410 always does).',
      ),
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
      { class: 'span-2', 'data-types': 'http pubsub' },
      field(
        'Filter',
        'filter',
        h('textarea', { rows: 2, placeholder: 'kind = order\nregion = eu, us' }, filterText(p)),
        'http and Pub/Sub: one attribute a line, `name = value` or `name = value, value` (any of them). Other messages are skipped.',
      ),
    ),
    h(
      'div',
      { class: 'span-2', 'data-types': 'http' },
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
      ? h(
          'div',
          { class: 'span-2 checks', 'data-types': 'http' },
          checkbox('Remove its headers', 'clear_headers', false),
        )
      : null,
    h(
      'div',
      { class: 'span-2', 'data-types': 'http' },
      field(
        'Signing secrets',
        'secrets',
        h('textarea', { rows: 2, placeholder: 'whsec_…', autocomplete: 'off', spellcheck: 'false' }),
        p?.secrets_count
          ? `http: signs every delivery (Standard Webhooks). ${p.secrets_count} set now (write-only: leave empty to keep them; one a line replaces them all).`
          : 'http: signs every delivery (Standard Webhooks), one whsec_… secret a line. Write-only.',
      ),
    ),
    p?.secrets_count
      ? h(
          'div',
          { class: 'span-2 checks', 'data-types': 'http' },
          checkbox('Remove its secrets (stop signing)', 'clear_secrets', false),
        )
      : null,
    forTypes(
      'ordering_attribute',
      field(
        'Ordering attribute',
        'ordering_attribute',
        input({ value: p?.ordering_attribute ?? '', placeholder: 'e.g. customer_id', disabled: !creating }),
        'With Ordered: in order per value of this attribute, keys in parallel. Fixed at creation.',
      ),
    ),
    h(
      'div',
      { class: 'span-2 checks' },
      checkbox('Active', 'active', p?.active ?? true, 'An inactive publisher keeps its messages until activated.'),
      forTypes(
        'ordered',
        checkbox(
          'Ordered',
          'ordered',
          p?.ordered ?? false,
          'One delivery at a time, in order. Fixed at creation.',
          !creating,
        ),
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
      h('a', { class: 'btn', href: creating ? '#/publishers' : `#/publishers/${id}` }, 'Cancel'),
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
    const secrets = parseSecrets(textOf(data, 'secrets'));
    if (secrets !== undefined) body.secrets = secrets;
    else if (data.get('clear_secrets') !== null) body.secrets = null;
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
    const result = creating
      ? await api<{ data: Publisher }>('POST', '/api/publishers', body)
      : await api<{ data: Publisher }>('PATCH', `/api/publishers/${encodeURIComponent(id)}`, body);
    toast(creating ? `Publisher #${result.data.id} created.` : `Publisher #${result.data.id} saved.`);
    saved(result.data);
  });
  // Fields fixed at creation stay locked whatever the type shows.
  for (const c of form.querySelectorAll<HTMLElement>('input:disabled, select:disabled, textarea:disabled'))
    c.setAttribute('data-locked', '');
  showFieldsOf(form, typeSelect.value);
  typeSelect.addEventListener('change', () => showFieldsOf(form, typeSelect.value));
  return form;
}
