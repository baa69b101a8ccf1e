/**
 * Publisher filters: which messages a publisher sends. A filter lists
 * attributes; a message matches when each of them is present with the
 * given value (or, for a list, one of its values). The pull lease filter
 * takes the same shape (pull-lease.lua matches it in Redis).
 */
import type { MessageFilter } from './types.js';

/** Most attributes a filter names, and most values one list holds. */
export const MAX_FILTER_KEYS = 20;
export const MAX_FILTER_VALUES = 100;

/** Whether the message's attributes match every attribute of the filter. */
export function matchesFilter(filter: MessageFilter, attributes: Readonly<Record<string, string>>): boolean {
  const wanted = filter.attributes;
  for (const key in wanted) {
    const value = attributes[key];
    if (value === undefined) return false;
    const expected = wanted[key];
    if (typeof expected === 'string') {
      if (value !== expected) return false;
    } else if (!(expected as readonly string[]).includes(value)) return false;
  }
  return true;
}

/** A filter that keeps every message (no attribute named) is no filter. */
export function isEmptyFilter(filter: MessageFilter | null | undefined): boolean {
  if (!filter) return true;
  for (const _ in filter.attributes) return false;
  return true;
}
