/**
 * A publisher's backlog, on its page: purge what it has not delivered
 * before a time, or seek it back to a time. Each asks the API for the count
 * first (`"dry_run": true`), shows it in a confirmation, and only then acts.
 */
import { api, type Publisher } from '../api.js';
import { card, confirmDialog, h, isoWithOffset, localInput, toast } from '../dom.js';
import { Invalid, field, formError, input, onSubmit, textOf } from '../forms.js';

interface PurgeAnswer {
  data: { count: number; unread: number; pending: number; dead: number; before: string };
}
interface SeekAnswer {
  data: { count: number; retrying: number; dead: number; to: string };
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** The time a `datetime-local` field holds, with the browser's offset; a 400-like error when blank. */
function timeField(data: FormData, name: string): string {
  const local = textOf(data, name);
  if (local === '') throw new Invalid({ [name]: ["can't be blank"] });
  return isoWithOffset(local);
}

export function flowCard(p: Publisher): HTMLElement {
  const base = `/api/publishers/${encodeURIComponent(p.id)}`;

  const purge = h(
    'form',
    { class: 'form-row', 'aria-label': 'Purge backlog' },
    field(
      'Purge messages received before',
      'before',
      input({ type: 'datetime-local', value: localInput(new Date(Date.now() + 60_000)) }),
      'Every message received before this time (one still to come counts as now) that this publisher has not delivered is skipped, never sent.',
      'purge-',
    ),
    formError(),
    h('div', { class: 'form-submit' }, h('button', { type: 'submit', class: 'btn btn-danger-ghost' }, 'Purge…')),
  );
  onSubmit(purge, async (data) => {
    const before = timeField(data, 'before');
    const counted = await api<PurgeAnswer>('POST', `${base}/purge`, { before, dry_run: true });
    const { count, unread, pending, dead } = counted.data;
    if (count === 0) {
      toast(`Nothing to purge: publisher #${p.id} has delivered everything received before that time.`);
      return;
    }
    const ok = await confirmDialog(
      `Purge ${plural(count, 'message')}?`,
      `Publisher #${p.id} will never send ${plural(count, 'message')} of ${p.topic} received before ${new Date(
        counted.data.before,
      ).toLocaleString()}: ${unread.toLocaleString()} not read yet, ${pending.toLocaleString()} in flight or retrying, ${dead.toLocaleString()} dead. Other publishers keep theirs.`,
      'Purge',
    );
    if (!ok) return;
    const done = await api<PurgeAnswer>('POST', `${base}/purge`, { before: counted.data.before });
    toast(`Purged ${plural(done.data.count, 'message')} for publisher #${p.id}.`);
  });

  const seek = h(
    'form',
    { class: 'form-row', 'aria-label': 'Seek back' },
    field(
      'Send again messages received since',
      'to',
      input({ type: 'datetime-local', value: localInput(new Date(Date.now() - 3600_000)) }),
      'Every retained message received at or after this time is sent again, delivered or not.',
      'seek-',
    ),
    formError(),
    h('div', { class: 'form-submit' }, h('button', { type: 'submit', class: 'btn' }, 'Seek…')),
  );
  onSubmit(seek, async (data) => {
    const to = timeField(data, 'to');
    const counted = await api<SeekAnswer>('POST', `${base}/seek`, { to, dry_run: true });
    const { count } = counted.data;
    if (count === 0) {
      toast(`Nothing to send again: publisher #${p.id} has read nothing received since that time.`);
      return;
    }
    const ok = await confirmDialog(
      `Send ${plural(count, 'message')} again?`,
      `Publisher #${p.id} will receive again ${plural(count, 'message')} of ${p.topic} received since ${new Date(
        counted.data.to,
      ).toLocaleString()}, delivered or not.`,
      'Seek',
    );
    if (!ok) return;
    const done = await api<SeekAnswer>('POST', `${base}/seek`, { to: counted.data.to });
    toast(`Publisher #${p.id} receives ${plural(done.data.count, 'message')} again.`);
  });

  return card('Backlog', purge, seek);
}
