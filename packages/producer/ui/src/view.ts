/** What a page gets to draw itself: its place, its route, and timers that stop when the user leaves. */
import { h, type Child } from './dom.js';

export interface View {
  readonly main: HTMLElement;
  /** Parts of the route after the page name (`#/messages/<id>` → [id]). */
  readonly params: string[];
  readonly query: URLSearchParams;
  /** Runs `fn` every `ms` while this page is shown (and not when the tab is hidden). */
  every(ms: number, fn: () => Promise<void>): void;
  /** Whether the user left this page (a late answer must not draw over the next one). */
  readonly gone: boolean;
}

export type Page = (view: View) => Promise<void>;

export function pageHeader(title: Child, subtitle?: Child, ...actions: Child[]): HTMLElement {
  return h(
    'header',
    { class: 'page-header' },
    h('div', null, h('h1', null, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
    actions.length > 0 ? h('div', { class: 'page-actions' }, actions) : null,
  );
}

export function go(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

export function link(hash: string, ...children: Child[]): HTMLAnchorElement {
  return h('a', { href: hash }, children);
}
