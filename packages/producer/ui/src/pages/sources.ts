/**
 * Sources: the SQS queues and Pub/Sub subscriptions that feed topics, with
 * the state and counters of each (refreshed every few seconds); create one,
 * switch it off or on, delete it.
 */
import { api, ApiError, type Source, type Topic } from '../api.js';
import { act, ago, badge, card, confirmDialog, h, num, replace, table, toast } from '../dom.js';
import { Invalid, field, formError, input, onSubmit, select, textOf } from '../forms.js';
import { pageHeader, type Page, type View } from '../view.js';

function where(s: Source): string {
  return s.type === 'sqs' ? (s.queue_url ?? '') : (s.subscription ?? '');
}

function row(s: Source, again: () => void): HTMLElement {
  const toggle = act(async () => {
    await api('PATCH', `/api/sources/${s.id}`, { active: !s.active });
    toast(`Source #${s.id} ${s.active ? 'switched off' : 'switched on'}.`);
    again();
  });
  const remove = act(async () => {
    if (!(await confirmDialog(`Delete source #${s.id}?`, 'Its reading stops; messages still in the queue stay there.')))
      return;
    try {
      await api('DELETE', `/api/sources/${s.id}`);
      toast(`Source #${s.id} deleted.`);
      again();
    } catch (err) {
      if (err instanceof ApiError) toast(`Cannot delete #${s.id}: ${err.message}`, 'error');
      else throw err;
    }
  });
  return h(
    'tr',
    { 'data-source': s.id },
    h('td', null, `#${s.id}`),
    h('td', null, s.topic),
    h('td', null, s.type === 'sqs' ? 'SQS' : 'Pub/Sub'),
    h('td', { class: 'mono' }, where(s)),
    h(
      'td',
      null,
      badge(s.state),
      s.last_error && s.state === 'failing'
        ? h('p', { class: 'field-error', 'data-source-error': s.id }, s.last_error)
        : null,
    ),
    h('td', { class: 'num', 'data-count': 'read' }, num(s.read)),
    h('td', { class: 'num', 'data-count': 'ingested' }, num(s.ingested)),
    h('td', { class: 'num', 'data-count': 'failed' }, num(s.failed)),
    h('td', { class: 'num' }, s.lag === null ? '—' : num(s.lag)),
    h(
      'td',
      { class: 'mono' },
      s.node ?? '—',
      s.last_read_at ? h('div', { class: 'muted' }, ago(s.last_read_at)) : null,
    ),
    h(
      'td',
      { class: 'row-actions' },
      h(
        'button',
        { type: 'button', class: 'btn btn-small', on: { click: toggle } },
        s.active ? 'Switch off' : 'Switch on',
      ),
      h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', on: { click: remove } }, 'Delete'),
    ),
  );
}

async function draw(view: View, list: HTMLElement): Promise<void> {
  const { data: sources } = await api<{ data: Source[] }>('GET', '/api/sources');
  if (view.gone) return;
  const again = (): void => void draw(view, list).catch(() => undefined);
  replace(
    list,
    table(
      [
        'Source',
        'Topic',
        'Type',
        'Queue or subscription',
        'State',
        ['Read', 'num'],
        ['Written', 'num'],
        ['Failed', 'num'],
        ['Lag', 'num'],
        'Node',
        '',
      ],
      sources.map((s) => row(s, again)),
      'No sources yet: messages reach topics through the API only.',
    ),
  );
}

export const sourcesPage: Page = async (view) => {
  const { data: topics } = await api<{ data: Topic[] }>('GET', '/api/topics');
  const list = h('div');
  const type = select(
    [
      ['sqs', 'Amazon SQS queue'],
      ['pubsub', 'Google Cloud Pub/Sub subscription'],
    ],
    'sqs',
  );
  const where = input({ placeholder: 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders', required: true });
  const form = h(
    'form',
    { class: 'form-row', 'aria-label': 'New source' },
    field('Topic', 'topic', select(topics.map((t) => [t.name, t.name]))),
    field('Type', 'type', type),
    field(
      'Queue URL or subscription',
      'where',
      where,
      'An SQS queue URL, or projects/<p>/subscriptions/<s> (or an id).',
    ),
    formError(),
    h('div', { class: 'form-submit' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create source')),
  );
  type.addEventListener('change', () => {
    where.placeholder =
      type.value === 'sqs'
        ? 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders'
        : 'projects/my-project/subscriptions/orders';
  });
  onSubmit(form, async (data) => {
    const topic = textOf(data, 'topic');
    const kind = textOf(data, 'type');
    const value = textOf(data, 'where');
    if (value === '') throw new Invalid({ where: ["can't be blank"] });
    try {
      await api('POST', '/api/sources', {
        topic,
        type: kind,
        ...(kind === 'sqs' ? { queue_url: value } : { subscription: value }),
      });
    } catch (err) {
      // The API names queue_url or subscription: both are this form's one field.
      if (err instanceof ApiError && (err.fields.queue_url || err.fields.subscription))
        throw new Invalid({ where: err.fields.queue_url ?? err.fields.subscription ?? [] });
      throw err;
    }
    form.reset();
    toast(`Source for ${topic} created.`);
    await draw(view, list);
  });
  await draw(view, list);
  if (view.gone) return;
  replace(
    view.main,
    pageHeader(
      'Sources',
      'External queues that feed topics: each message is written to its topic, then deleted at the source.',
    ),
    card('New source', form),
    card('All sources', list),
  );
  view.every(3000, () => draw(view, list));
};
