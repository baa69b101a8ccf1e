/**
 * The JSON API, as the browser calls it: same origin, the session cookie
 * sent along. An error answer becomes an `ApiError` carrying the fields the
 * API named (`{"data":{"errors":{"<field>":["<why>"]}}}`); a 401 also tells
 * the app to show the login page.
 */
export type FieldErrors = Record<string, string[]>;

/** What a field of the API's error answers is, in words (the rest: its name, spaced). */
const FIELD_NAMES: Record<string, string> = {
  name: 'This topic',
  topic: 'The topic',
  id: 'This message',
  ids: 'These messages',
  target: 'The target',
  token: 'The token',
  since: 'The time',
  before: 'The time',
  to: 'The time',
  next_attempt_at: 'The next attempt',
  publisher: 'The publisher',
  request: 'The request',
  network: 'The server',
};

/** A reason that reads after its subject: "is …", "has …", "must …", "can't …". */
const PREDICATE =
  /^(is|are|was|were|has|have|had|must|may|can|cannot|can't|does|do|did|should|needs|names|only|takes|refuses|failed)\b/i;

/** Sentences an operator reads for an error answer's fields: no field names, no JSON. */
export function plainMessage(status: number, fields: FieldErrors): string {
  const sentences = Object.entries(fields).map(([field, why]) => {
    const subject =
      FIELD_NAMES[field] ?? field.charAt(0).toUpperCase() + field.slice(1).replace(/[_.]/g, ' ').toLowerCase();
    const text = why.join(', ').replace(/[`"]/g, '');
    // "has publishers: delete them first" -> "This topic has publishers: delete them first.";
    // a reason that names its own subject ("message not found") is said on its own.
    const sentence = PREDICATE.test(text) ? `${subject} ${text}` : text.charAt(0).toUpperCase() + text.slice(1);
    return sentence.replace(/[.\s]*$/, '.');
  });
  if (sentences.length > 0) return sentences.join(' ');
  if (status === 404) return 'It no longer exists.';
  if (status >= 500) return `The server could not do it (error ${status}); try again.`;
  return `The request was refused (error ${status}).`;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly fields: FieldErrors,
  ) {
    super(plainMessage(status, fields));
    this.name = 'ApiError';
  }
}

/** An error as a toast says it. */
export function plainError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

let onUnauthorized: () => void = () => undefined;

export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      // X-Requested-With: the API refuses a change made with the session cookie that has neither it nor a JSON body.
      headers:
        body === undefined
          ? { accept: 'application/json', 'x-requested-with': 'postoffice' }
          : { 'content-type': 'application/json', accept: 'application/json', 'x-requested-with': 'postoffice' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { network: ['the server does not answer'] });
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const errors = (json as { data?: { errors?: FieldErrors } } | undefined)?.data?.errors;
    const err = new ApiError(res.status, errors && typeof errors === 'object' ? errors : {});
    if (res.status === 401 && !path.startsWith('/api/session')) onUnauthorized();
    throw err;
  }
  return json as T;
}

import type { DeliveryView } from '@postoffice/producer';

/*
 * The API's answers, as the API itself names them (packages/producer/src/types.ts):
 * type-only imports, checked by `tsc -p ui` and erased from the compiled scripts.
 */
export type {
  TopicWithCounts as Topic,
  SourceView as Source,
  RateLimit,
  PublisherView as Publisher,
  PublisherStats,
  CircuitView as Circuit,
  Stats,
  SeriesPoint,
  Series,
  LeaseView,
  DeliveryView as Delivery,
  MessageView as Message,
  SearchItem,
  SearchAnswer as SearchPage,
  FailingItem,
  ClusterView,
  SessionView as Session,
} from '@postoffice/producer';

/**
 * An attempt as the pages read it: a delivery attempt or a pull publisher's
 * lease (`DeliveryView['attempts']`), every field of either optional but `at`.
 */
export type Attempt = Merged<DeliveryView['attempts'][number]> & { readonly at: string };

/** One object type with every field of each member of the union `U`, optional, of the union of their types. */
type Merged<U> = {
  readonly [K in U extends unknown ? keyof U : never]?: U extends { readonly [P in K]?: infer V } ? V : never;
};
