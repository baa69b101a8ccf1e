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

export interface Topic {
  id: number;
  name: string;
  origin_host: string;
  recovery_enabled: boolean;
  paused?: boolean;
  created_at: string;
  received: number;
  /** Message recovery from origin_host (absent from servers before it). */
  recovered?: number;
  last_recovery_at?: string | null;
  last_recovery_error?: string | null;
}

export interface Source {
  id: string;
  topic: string;
  type: 'sqs' | 'pubsub';
  active: boolean;
  queue_url?: string;
  subscription?: string;
  batch_size: number;
  wait_seconds?: number;
  state: 'inactive' | 'waiting' | 'reading' | 'failing';
  read: number;
  ingested: number;
  failed: number;
  lag: number | null;
  node: string | null;
  last_read_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface RateLimit {
  per_second: number;
  burst: number;
}

export interface Publisher {
  id: string;
  topic: string;
  type: 'http' | 'pubsub' | 'pull';
  target: string;
  active: boolean;
  from_now: boolean;
  seconds_timeout: number;
  seconds_retry: number;
  chunk_size: number;
  concurrency: number;
  parallelism?: number;
  ordered?: boolean;
  rate_limit?: RateLimit | null;
  secrets_count?: number;
  header_names?: string[];
  dead_on_status?: number[];
  retry_max_attempts?: number | null;
  retry_max_age_seconds?: number | null;
  filter?: { attributes: Record<string, string | string[]> } | null;
  batch_size?: number;
  ordering_attribute?: string | null;
  created_at: string;
  updated_at: string;
}

export interface PublisherStats {
  id: string;
  topic: string;
  type: string;
  target: string;
  active: boolean;
  unread: number;
  pending: number;
  retrying: number;
  leased?: number;
  dead: number;
  skipped?: number;
  deleted?: number;
  backlog: number;
  delivered: number;
  in_flight?: number;
  circuit?: Circuit | null;
  oldest_undelivered_at: string | null;
  oldest_undelivered_age_seconds: number | null;
}

/** A publisher's circuit breaker while it is not closed. */
export interface Circuit {
  state: 'open' | 'probing';
  since: string;
  next_probe_at: string | null;
  failures?: number;
  node?: string;
}

export interface Stats {
  topics: number;
  publishers: number;
  active_publishers: number;
  received: number;
  delivered: number;
  pending: number;
  retrying: number;
  leased?: number;
  dead: number;
  skipped?: number;
  deleted?: number;
  backlog: number;
  in_flight?: number;
  unread?: number;
  circuits_open?: number;
  per_publisher: PublisherStats[];
}

/** `GET /api/stats/series`. */
export interface SeriesPoint {
  at: string;
  received: number;
  delivered: number;
  failed: number;
  backlog: number | null;
  oldest_age_seconds: number | null;
}

export interface Series {
  window: 'hour' | 'day';
  bucket_seconds: number;
  from: string;
  to: string;
  topic: string | null;
  publisher: string | null;
  points: SeriesPoint[];
  publishers: {
    id: string;
    topic: string;
    backlog: number;
    oldest_undelivered_age_seconds: number | null;
    points: { at: string; backlog: number | null; oldest_age_seconds: number | null }[];
  }[];
}

export interface Attempt {
  at: string;
  status?: number;
  error?: string;
  /** A failed attempt: the start of the answer's body. */
  response?: string;
  duration_ms?: number;
  /** A pull lease's worker (`host`, `pid`, `name`). */
  worker?: Record<string, unknown>;
  outcome?: string;
  lease_expires_at?: string;
}

export interface Delivery {
  publisher_id: string;
  target: string;
  type: string;
  state: string;
  attempt_count: number;
  attempts: Attempt[];
  next_attempt_at?: string;
  dead_reason?: string;
  last_action?: unknown;
  replaced_by?: string[];
}

export interface Message {
  id: string;
  topic: string;
  payload: unknown;
  attributes: Record<string, string>;
  state?: string;
  schedule_at?: string;
  received_at?: string;
  deliveries: Delivery[];
}

export interface SearchItem {
  id: string;
  topic: string;
  received_at: string;
  payload: unknown;
  attributes: Record<string, string>;
  deliveries?: { publisher_id: string; state: string }[];
}

export interface SearchPage {
  data: SearchItem[];
  cursor: string | null;
  truncated?: boolean;
  scanned?: number;
}

export interface FailingItem {
  id: string;
  topic: string;
  state: 'retrying' | 'dead' | 'leased';
  received_at: string;
  next_attempt_at?: string;
  lease_expires_at?: string;
  dead_at?: string;
  dead_reason?: string;
  attempt_count: number;
  last_attempt?: Attempt;
  payload: unknown;
  attributes: Record<string, string>;
}

export interface ClusterView {
  nodes: {
    id: string;
    host?: string;
    pid?: number;
    started_at?: string;
    last_heartbeat: string;
    slots: string[];
  }[];
  publishers: {
    id: string;
    topic: string;
    active: boolean;
    parallelism: number;
    ordered: boolean;
    rate_limit: RateLimit | null;
    slots: { slot: number; node: string | null }[];
    lag: number | null;
    pending: number;
    retrying: number;
  }[];
  singletons: Record<string, string | null>;
}

export interface Session {
  auth_required: boolean;
  authenticated: boolean;
}
