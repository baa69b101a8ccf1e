/**
 * Pages of the topic and publisher lists. Without `limit` or `cursor` a
 * list route answers the whole list, as Postoffice clients expect; with
 * either it answers one page and the cursor of the next. A cursor is the
 * opaque form of the last item's key (a topic name, a publisher id).
 */
import { TOPIC_NAME, ValidationError } from '@postoffice/shared';
import { MAX_CURSOR, type Schema } from '../schemas.js';
import { INVALID } from '../schema-compilers.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export interface ListQuery {
  readonly limit?: number;
  readonly cursor?: string;
}

type Kind = 'topic' | 'publisher';

const KEY: Record<Kind, RegExp> = { topic: TOPIC_NAME, publisher: /^[1-9]\d{0,17}$/ };

/** The query of a list route. */
export function listQuery(what: string): Schema {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      limit: {
        type: 'integer',
        minimum: 1,
        maximum: MAX_PAGE,
        description: `Answer one page of at most this many ${what} (default ${DEFAULT_PAGE} when only \`cursor\` is given).`,
        'x-error': `must be a whole number from 1 to ${MAX_PAGE}`,
      },
      cursor: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_CURSOR,
        description: 'The `cursor` of the previous page.',
        'x-error': INVALID,
      },
    },
  };
}

export function encodeListCursor(kind: Kind, key: string): string {
  return Buffer.from(`${kind}:${key}`, 'utf8').toString('base64url');
}

/** The key a cursor of `kind` continues after; a 400 naming `cursor` when it is not one. */
export function decodeListCursor(cursor: string, kind: Kind): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const key = text.startsWith(`${kind}:`) ? text.slice(kind.length + 1) : '';
  if (!KEY[kind].test(key)) throw new ValidationError({ cursor: [INVALID] });
  return key;
}
