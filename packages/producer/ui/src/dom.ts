/**
 * A tiny element helper. Every string becomes a text node, so values from
 * messages (payloads, attributes, targets, error texts) are shown as text
 * and never parsed as HTML: nothing here builds markup from strings.
 */
import { plainError } from './api.js';
import { relativeTime, shortTarget } from './text.js';

export { relativeTime, shortTarget };
export type Child = Node | string | number | null | undefined | false | Child[];

export interface Props {
  class?: string;
  /** Event listeners: `on: { click: () => … }`. */
  on?: Partial<Record<keyof HTMLElementEventMap, (event: Event) => void>>;
  [attribute: string]: unknown;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    for (const [name, value] of Object.entries(props)) {
      if (name === 'on') {
        for (const [event, listener] of Object.entries(value as Record<string, (e: Event) => void>)) {
          el.addEventListener(event, listener);
        }
      } else if (value === true) el.setAttribute(name, '');
      else if (value !== false && value !== null && value !== undefined) {
        const text = typeof value === 'string' ? value : JSON.stringify(value);
        if (name === 'value' && 'value' in el) (el as HTMLInputElement).value = text;
        else el.setAttribute(name, text);
      }
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces the element's children. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** An event listener that runs an async action and never leaves its promise floating. */
export function act(fn: (event: Event) => Promise<void>): (event: Event) => void {
  return (event) => {
    fn(event).catch((err: unknown) => toast(plainError(err), 'error'));
  };
}

const BADGE_TONES: Record<string, string> = {
  delivered: 'green',
  active: 'green',
  ok: 'green',
  pending: 'blue',
  leased: 'teal',
  scheduled: 'purple',
  retrying: 'amber',
  dead: 'red',
  failed: 'red',
  inactive: 'grey',
  deleted: 'grey',
  purged: 'grey',
  paused: 'amber',
  reading: 'green',
  waiting: 'blue',
  failing: 'red',
};

export function badge(text: string, tone = BADGE_TONES[text] ?? 'grey'): HTMLSpanElement {
  return h('span', { class: `badge badge-${tone}`, 'data-badge': text }, text);
}

/** The browser's time zone, named (`Europe/Paris`), for titles of times. */
function zone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    return '';
  }
}

/** A time in full, with its offset and zone: what a relative time says on hover. */
export function absoluteTime(d: Date): string {
  const text = d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    timeZoneName: 'short',
  });
  const name = zone();
  return name ? `${text} (${name})` : text;
}

/** A time as a `<time>`: relative, with the absolute time and time zone as its title. */
export function time(iso: string | null | undefined): HTMLElement | string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return h('time', { datetime: iso, title: absoluteTime(d) }, relativeTime(iso));
}

export function ago(iso: string | null | undefined): HTMLElement | string {
  return time(iso);
}

export function duration(seconds: number): string {
  if (seconds < 1) return 'now';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

export function num(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : n.toLocaleString();
}

/** Pretty JSON for display (as text). */
export function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? String(value);
}

/** A one-line preview of a value, cut at `max` characters. */
export function preview(value: unknown, max = 80): string {
  const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/** A table that fits its card: long cells wrap or end in "…"; on a phone each row stacks as `label: value` lines. */
export function table(
  head: (string | [label: string, cls: string])[],
  rows: Child[],
  empty = 'Nothing here yet.',
): HTMLElement {
  const body = h('tbody', null, rows);
  if (rows.length === 0) body.append(h('tr', null, h('td', { colspan: head.length, class: 'empty' }, empty)));
  const labels = head.map((c) => (typeof c === 'string' ? c : c[0]));
  labelCells(body, labels);
  return h(
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
          head.map((c) => (typeof c === 'string' ? h('th', null, c) : h('th', { class: c[1] }, c[0]))),
        ),
      ),
      body,
    ),
  );
}

/** Gives each cell of the rows its column's label (`data-label`), which a phone shows before the value. */
export function labelCells(body: HTMLElement, labels: string[]): void {
  for (const row of Array.from(body.children)) {
    Array.from(row.children).forEach((cell, i) => {
      const label = labels[i];
      if (label && !cell.classList.contains('empty')) cell.setAttribute('data-label', label);
    });
  }
}

/** A target as shown in lists: shortened in the middle, the whole of it as the title. */
export function targetText(target: string, max?: number): HTMLElement {
  return h('span', { class: 'mono target', title: target, 'data-target': target }, shortTarget(target, max));
}

export function card(title: Child, ...children: Child[]): HTMLElement {
  return h('section', { class: 'card' }, title ? h('h2', null, title) : null, children);
}

export function toast(message: string, tone: 'ok' | 'error' = 'ok'): void {
  const host = document.getElementById('toasts');
  if (!host) return;
  const el = h('div', { class: `toast toast-${tone}`, role: tone === 'error' ? 'alert' : 'status' }, message);
  host.append(el);
  setTimeout(() => el.remove(), tone === 'error' ? 8000 : 5000);
}

/**
 * Asks before a bulk or lasting action, saying how many messages it touches;
 * resolves with the answer. `count` null: the count is unknown (said so).
 */
export function confirmAction(opts: {
  title: string;
  count?: number | null;
  what?: string;
  message: Child;
  action: string;
}): Promise<boolean> {
  const counted =
    opts.count === undefined
      ? null
      : h(
          'p',
          { class: 'confirm-count', 'data-count': opts.count === null ? '' : String(opts.count) },
          opts.count === null
            ? `It touches every ${opts.what ?? 'message'} it finds.`
            : `It touches ${opts.count.toLocaleString()} ${opts.what ?? 'message'}${opts.count === 1 ? '' : 's'}.`,
        );
  return confirmDialog(opts.title, [opts.message, counted], opts.action);
}

/** Asks before doing something that cannot be undone; resolves with the answer. */
export function confirmDialog(title: string, message: Child, action = 'Delete'): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h(
      'dialog',
      { class: 'dialog' },
      h('h2', null, title),
      h('div', { class: 'dialog-body' }, message),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'btn', on: { click: () => dialog.close('cancel') } }, 'Cancel'),
        h('button', { type: 'button', class: 'btn btn-danger', on: { click: () => dialog.close('ok') } }, action),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'ok');
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** An ISO-8601 time with the browser's offset, from a `datetime-local` input's value. */
export function isoWithOffset(local: string): string {
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) return local;
  const off = -d.getTimezoneOffset();
  const pad = (n: number): string => String(Math.floor(Math.abs(n))).padStart(2, '0');
  const sign = off >= 0 ? '+' : '-';
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:` +
    `${pad(d.getSeconds())}${sign}${pad(off / 60)}:${pad(off % 60)}`
  );
}

/** A `datetime-local` value for a time (now by default). */
export function localInput(date = new Date()): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
