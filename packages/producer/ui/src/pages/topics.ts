/**
 * Topics: list, create, edit the origin host, pause and resume all of a
 * topic's publishers, delete (the API refuses while the topic has publishers).
 */
import { api, ApiError, type Publisher, type Source, type Topic } from '../api.js';
import { act, ago, badge, card, confirmAction, h, num, replace, table, time, toast, type Child } from '../dom.js';
import { Invalid, field, formError, input, onSubmit, showErrors, textOf } from '../forms.js';
import { link, pageHeader, type Page, type View } from '../view.js';

function editDialog(topic: Topic, done: () => void): void {
  const form = h(
    'form',
    { method: 'dialog', 'aria-label': `Edit ${topic.name}` },
    field('Origin host', 'origin_host', input({ value: topic.origin_host, required: true }), undefined, 'edit-'),
    h(
      'div',
      { class: 'field field-check', 'data-field': 'recovery_enabled' },
      h(
        'label',
        { for: 'edit-recovery_enabled' },
        h('input', {
          type: 'checkbox',
          id: 'edit-recovery_enabled',
          name: 'recovery_enabled',
          checked: topic.recovery_enabled,
        }),
        h('span', null, 'Recover messages from the origin host'),
      ),
      h(
        'p',
        { class: 'hint' },
        'Every 30 s by default, one consumer asks GET <origin host> for messages the sender failed to publish.',
      ),
    ),
    formError(),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'btn', on: { click: () => dialog.close() } }, 'Cancel'),
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save'),
    ),
  );
  const dialog = h('dialog', { class: 'dialog' }, h('h2', null, `Edit topic ${topic.name}`), form);
  onSubmit(form, async (data) => {
    const origin_host = textOf(data, 'origin_host');
    if (origin_host === '') throw new Invalid({ origin_host: ["can't be blank"] });
    const recovery_enabled = data.get('recovery_enabled') === 'on';
    await api('PATCH', `/api/topics/${encodeURIComponent(topic.name)}`, { origin_host, recovery_enabled });
    dialog.close();
    toast(`Topic ${topic.name} saved.`);
    done();
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

/** A topic's message recovery: off, or on with what it recovered and its last round. */
function recovery(t: Topic): Child {
  if (!t.recovery_enabled) return h('span', { class: 'muted' }, 'off');
  return h(
    'div',
    null,
    t.last_recovery_error ? badge('failing') : badge(t.last_recovery_at ? 'ok' : 'waiting'),
    ' ',
    h('span', { 'data-recovered': String(t.recovered ?? 0) }, `${num(t.recovered ?? 0)} recovered`),
    t.last_recovery_at ? h('div', { class: 'muted' }, 'asked ', ago(t.last_recovery_at)) : null,
    t.last_recovery_error
      ? h('p', { class: 'field-error', 'data-recovery-error': t.name }, t.last_recovery_error)
      : null,
  );
}

/** Delete, after a confirmation; disabled, with the reason beside it, while the API would refuse. */
function deleteButton(t: Topic, refused: string | undefined, done: () => void): HTMLElement {
  const button = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-small btn-danger-ghost',
      'data-action': 'delete',
      disabled: refused !== undefined,
      title: refused ?? `Delete topic ${t.name} and its ${t.received.toLocaleString()} received messages`,
      on: {
        click: act(async () => {
          const ok = await confirmAction({
            title: `Delete topic ${t.name}?`,
            message: 'Its retained messages are deleted with it.',
            count: t.received,
            what: 'message',
            action: 'Delete',
          });
          if (!ok) return;
          try {
            await api('DELETE', `/api/topics/${encodeURIComponent(t.name)}`);
            toast(`Topic ${t.name} deleted.`);
            done();
          } catch (err) {
            if (err instanceof ApiError) toast(`Topic ${t.name} was not deleted. ${err.message}`, 'error');
            else throw err;
          }
        }),
      },
    },
    'Delete',
  );
  return refused
    ? h(
        'span',
        { class: 'delete-guard' },
        button,
        h('span', { class: 'disabled-reason', 'data-reason': t.name }, refused),
      )
    : button;
}

async function draw(view: View, list: HTMLElement): Promise<void> {
  const [{ data: topics }, { data: publishers }, sources] = await Promise.all([
    api<{ data: Topic[] }>('GET', '/api/topics'),
    api<{ data: Publisher[] }>('GET', '/api/publishers'),
    api<{ data: Source[] }>('GET', '/api/sources').then(
      (r) => r.data,
      () => [] as Source[],
    ),
  ]);
  if (view.gone) return;
  const count = (list: { topic: string }[], name: string): number => list.filter((x) => x.topic === name).length;
  /** Why the API would refuse to delete the topic; undefined when it would not. */
  const refusal = (name: string): string | undefined => {
    const p = count(publishers, name);
    const s = count(sources, name);
    const parts = [
      p > 0 ? `${p} publisher${p === 1 ? '' : 's'}` : '',
      s > 0 ? `${s} source${s === 1 ? '' : 's'}` : '',
    ].filter(Boolean);
    return parts.length > 0 ? `It has ${parts.join(' and ')}: delete them first.` : undefined;
  };
  const again = (): void => void draw(view, list).catch(() => undefined);
  replace(
    list,
    table(
      ['Name', 'Origin host', 'Received', 'Recovery', 'Created', ''],
      topics.map((t) =>
        h(
          'tr',
          { 'data-topic': t.name, class: t.paused ? 'muted-row' : '' },
          h('td', null, h('span', { class: 'id-state' }, h('strong', null, t.name), t.paused ? badge('paused') : null)),
          h('td', { class: 'mono wrap' }, t.origin_host),
          h('td', { class: 'num' }, link(`#/messages?topic=${encodeURIComponent(t.name)}`, num(t.received))),
          h('td', { 'data-recovery': t.name }, recovery(t)),
          h('td', null, time(t.created_at)),
          h(
            'td',
            { class: 'row-actions' },
            h(
              'button',
              {
                type: 'button',
                class: 'btn btn-small',
                'data-action': t.paused ? 'resume' : 'pause',
                title: t.paused
                  ? 'Its publishers deliver again, starting with what arrived meanwhile.'
                  : 'No publisher of the topic delivers until resumed; messages are still received.',
                on: {
                  click: act(async () => {
                    await api('PATCH', `/api/topics/${encodeURIComponent(t.name)}`, { paused: !t.paused });
                    toast(
                      t.paused ? `Topic ${t.name} resumed.` : `Topic ${t.name} paused: its publishers stop delivering.`,
                    );
                    again();
                  }),
                },
              },
              t.paused ? 'Resume' : 'Pause',
            ),
            h('button', { type: 'button', class: 'btn btn-small', on: { click: () => editDialog(t, again) } }, 'Edit'),
            deleteButton(t, refusal(t.name), again),
          ),
        ),
      ),
      'No topics yet: create the first one above.',
    ),
  );
}

export const topicsPage: Page = async (view) => {
  const list = h('div');
  const form = h(
    'form',
    { class: 'form-row', 'aria-label': 'New topic' },
    field('Name', 'name', input({ placeholder: 'orders', required: true }), 'Letters, digits, ".", "_" and "-".'),
    field('Origin host', 'origin_host', input({ placeholder: 'shop.example', required: true })),
    formError(),
    h('div', { class: 'form-submit' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create topic')),
  );
  onSubmit(form, async (data) => {
    const name = textOf(data, 'name');
    const origin_host = textOf(data, 'origin_host');
    const missing: Record<string, string[]> = {};
    if (name === '') missing.name = ["can't be blank"];
    if (origin_host === '') missing.origin_host = ["can't be blank"];
    if (Object.keys(missing).length > 0) return showErrors(form, missing);
    await api('POST', '/api/topics', { name, origin_host });
    form.reset();
    toast(`Topic ${name} created.`);
    await draw(view, list);
  });
  await draw(view, list);
  if (view.gone) return;
  // Live: redrawn every 3 s, unless a dialog is open or the user is typing.
  view.every(3000, async () => {
    if (!document.querySelector('dialog[open]') && !(document.activeElement instanceof HTMLInputElement))
      await draw(view, list);
  });
  replace(
    view.main,
    pageHeader('Topics', 'Where services send messages. Each topic keeps its messages for every publisher.'),
    card('New topic', form),
    card('All topics', list),
  );
};
