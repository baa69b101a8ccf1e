/**
 * Delivers over HTTP with undici: one keep-alive pool per origin (the
 * Agent keeps them), a POST of the payload as JSON with the attributes under
 * an `attributes` key when the payload is an object, as Postoffice sends it.
 * Success is a 2xx status within the publisher's `seconds_timeout` of
 * sending the request (undici's headers timeout; connecting has
 * `CONNECT_TIMEOUT_MS` of its own). A 2xx answer's body is read and dropped;
 * a failed answer's first `MAX_RESPONSE_BYTES` are kept for the message's
 * history, and a 429 or 503 answer's `Retry-After` is passed on to the settle decision.
 * A publisher's `headers` go with every request; a publisher with
 * `batch_size` sends several messages as one JSON array (`sendBatch`).
 *
 * Each attempt is one `dispatch` with a small handler object and no promise,
 * AbortController or timer of its own: at tens of thousands of deliveries a
 * second, those were most of what an attempt cost outside undici (see
 * docs/performance.md).
 *
 * A publisher with secrets gets Standard Webhooks signatures
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature`) over the exact
 * body sent. With `refusePrivateTargets`, every new connection checks the
 * address it goes to (DNS may have changed since the publisher was made).
 */
import { createHash, createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import {
  MAX_RESPONSE_BYTES,
  PrivateTargetError,
  isPrivateAddress,
  publicOnlyLookup,
  secretKey,
  type Lookup,
  type Publisher,
  type StoredMessage,
} from '@postoffice/shared';
import type { AttemptResult, Clock, Target } from '../types.js';

/** Most time to open a connection to a target. */
export const CONNECT_TIMEOUT_MS = 5000;
/** Answer bytes read before the connection is given up (the status is all that counts). */
const MAX_ANSWER_BYTES = 64 * 1024;
/** Longest `message-ids` header of a batch: a batch ends before its ids pass it (receivers' header limits). */
export const MAX_BATCH_IDS_BYTES = 8 * 1024;

interface Route {
  readonly origin: string;
  readonly path: string;
}

export class HttpTarget implements Target {
  private readonly agent: Agent;
  private closed = false;
  /** Attempts in flight, to end them all at the shutdown deadline. */
  private readonly inFlight = new Set<Attempt>();
  /** Origin and path of each target URL (publishers are few, targets fewer). */
  private readonly routes = new Map<string, Route>();

  constructor(
    private readonly now: Clock = Date.now,
    options: {
      connections?: number;
      refusePrivateTargets?: boolean;
      /** Resolves names for the private-address check (and the connection); tests pass one that needs no DNS. */
      lookup?: Lookup;
    } = {},
  ) {
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      connections: options.connections ?? null,
      connect: options.refusePrivateTargets ? publicOnlyConnector(options.lookup) : { timeout: CONNECT_TIMEOUT_MS },
    });
  }

  send(publisher: Publisher, message: StoredMessage, done: (result: AttemptResult) => void): void {
    const startedAt = this.now();
    const route = this.route(publisher, startedAt, done);
    if (route === undefined) return;
    const body = httpBody(message);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'message-id': message.id,
      topic: publisher.topic,
      'user-agent': 'postoffice',
    };
    if (publisher.headers !== undefined) Object.assign(headers, publisher.headers);
    if (publisher.secrets && publisher.secrets.length > 0)
      sign(headers, publisher.secrets, message.id, body, startedAt);
    this.dispatch(publisher, route, headers, body, startedAt, done);
  }

  /**
   * One POST for several messages: a JSON array of `{"id", "payload",
   * "attributes"}`, with their ids in the `message-ids` header (comma-separated)
   * and, when signed, a `webhook-id` made from them (the same batch signs the
   * same id). The caller keeps the ids within `MAX_BATCH_IDS_BYTES` (`batchEnd`).
   */
  sendBatch(publisher: Publisher, messages: readonly StoredMessage[], done: (result: AttemptResult) => void): void {
    const startedAt = this.now();
    const route = this.route(publisher, startedAt, done);
    if (route === undefined) return;
    const body = batchBody(messages);
    const ids = messages.map((m) => m.id).join(',');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'message-ids': ids,
      topic: publisher.topic,
      'user-agent': 'postoffice',
    };
    if (publisher.headers !== undefined) Object.assign(headers, publisher.headers);
    if (publisher.secrets && publisher.secrets.length > 0) {
      const id = `batch_${createHash('sha256').update(ids).digest('base64url').slice(0, 32)}`;
      sign(headers, publisher.secrets, id, body, startedAt);
    }
    this.dispatch(publisher, route, headers, body, startedAt, done);
  }

  /** The target's origin and path (cached); undefined, with `done` called, when it is not a URL. */
  private route(publisher: Publisher, startedAt: number, done: (result: AttemptResult) => void): Route | undefined {
    let route = this.routes.get(publisher.target);
    if (route === undefined) {
      try {
        const url = new URL(publisher.target);
        route = { origin: url.origin, path: `${url.pathname}${url.search}` };
      } catch {
        done({ ok: false, error: 'target is not a URL', permanent: true, startedAt, durationMs: 0 });
        return undefined;
      }
      if (this.routes.size > 10_000) this.routes.clear();
      this.routes.set(publisher.target, route);
    }
    return route;
  }

  private dispatch(
    publisher: Publisher,
    route: Route,
    headers: Record<string, string>,
    body: string,
    startedAt: number,
    done: (result: AttemptResult) => void,
  ): void {
    const timeoutMs = Math.round(publisher.seconds_timeout * 1000);
    const attempt = new Attempt(this, done, startedAt, publisher.seconds_timeout);
    this.inFlight.add(attempt);
    if (this.closed) {
      attempt.fail(new Error('aborted (node stopping)'));
      return;
    }
    this.agent.dispatch(
      {
        origin: route.origin,
        path: route.path,
        method: 'POST',
        headers,
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      },
      attempt,
    );
  }

  /** As `send`, as a promise (tests, and callers that are not on the hot path). */
  deliver(publisher: Publisher, message: StoredMessage): Promise<AttemptResult> {
    return new Promise((resolve) => this.send(publisher, message, resolve));
  }

  /** @internal An attempt ended: its result goes to the pipeline. */
  settled(attempt: Attempt, result: AttemptResult): void {
    this.inFlight.delete(attempt);
    attempt.done(result);
  }

  /** @internal */
  elapsed(startedAt: number): number {
    return this.now() - startedAt;
  }

  abortAll(): void {
    for (const attempt of [...this.inFlight]) attempt.abort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.agent.close();
  }
}

/**
 * One attempt's undici handler. A 2xx status decides the result as soon as
 * the answer's head arrives, and its body is read and dropped (the
 * connection goes back to its pool once it has been read). Any other status
 * waits for the body's end (or its first `MAX_RESPONSE_BYTES`, or an error)
 * to keep its start as the attempt's `response`.
 */
class Attempt implements Dispatcher.DispatchHandler {
  private finished = false;
  private controller: Dispatcher.DispatchController | undefined;
  private received = 0;
  private aborted = false;
  /** A failed answer's status, while its body is read. */
  private status: number | undefined;
  private retryAfterMs: number | undefined;
  private kept: Buffer[] | undefined;
  private keptBytes = 0;

  constructor(
    private readonly target: HttpTarget,
    readonly done: (result: AttemptResult) => void,
    private readonly startedAt: number,
    private readonly seconds: number,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted) controller.abort(new Error('aborted (node stopping)'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (this.finished || this.status !== undefined) return;
    if (statusCode >= 200 && statusCode < 300) {
      this.finished = true;
      const durationMs = this.target.elapsed(this.startedAt);
      this.target.settled(this, { ok: true, status: statusCode, startedAt: this.startedAt, durationMs });
      return;
    }
    this.status = statusCode;
    if (statusCode === 429 || statusCode === 503) {
      const header = headers['retry-after'];
      this.retryAfterMs = parseRetryAfter(Array.isArray(header) ? header[0] : header, Date.now());
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.received += chunk.length;
    if (this.status !== undefined && this.keptBytes < MAX_RESPONSE_BYTES) {
      const part =
        chunk.length + this.keptBytes > MAX_RESPONSE_BYTES
          ? chunk.subarray(0, MAX_RESPONSE_BYTES - this.keptBytes)
          : chunk;
      (this.kept ??= []).push(Buffer.from(part));
      this.keptBytes += part.length;
    }
    if (this.received > MAX_ANSWER_BYTES) controller.abort(new Error('answer too large'));
  }

  onResponseEnd(): void {
    if (this.status !== undefined) this.answered();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  /** Ends the attempt as failed, unless its status already decided it. */
  fail(err: unknown): void {
    if (this.finished) return;
    // The status is known: the answer was cut short (too large, a timeout, a stop), not missing.
    if (this.status !== undefined) {
      this.answered();
      return;
    }
    this.finished = true;
    this.target.settled(this, {
      ok: false,
      error: this.aborted ? 'aborted (node stopping)' : describeError(err, this.seconds),
      reason: this.aborted ? 'aborted' : errorReason(err, false),
      startedAt: this.startedAt,
      durationMs: this.target.elapsed(this.startedAt),
    });
  }

  /** A failed answer: its status, the start of its body, and its Retry-After. */
  private answered(): void {
    if (this.finished) return;
    this.finished = true;
    const status = this.status as number;
    const response = this.kept === undefined ? '' : Buffer.concat(this.kept).toString('utf8');
    this.target.settled(this, {
      ok: false,
      status,
      error: `HTTP ${status}`,
      ...(response === '' ? {} : { response }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      startedAt: this.startedAt,
      durationMs: this.target.elapsed(this.startedAt),
    });
  }

  abort(): void {
    if (this.finished) return;
    this.aborted = true;
    const err = new Error('aborted (node stopping)');
    if (this.controller) this.controller.abort(err);
    this.fail(err);
  }
}

/**
 * A `Retry-After` value in ms from `now`: delay-seconds (`120`) or an HTTP
 * date; undefined when absent or not one of those. A date in the past is 0.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (!Number.isFinite(at) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, at - now);
}

/** A batch's body: a JSON array of `{"id", "payload", "attributes"}`, the payloads exactly as received. */
export function batchBody(messages: readonly StoredMessage[]): string {
  let body = '[';
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as StoredMessage;
    if (i > 0) body += ',';
    body += `{"id":${JSON.stringify(m.id)},"payload":${m.payload},"attributes":${JSON.stringify(m.attributes)}}`;
  }
  return `${body}]`;
}

/**
 * Where a batch starting at `start` ends (exclusive): at most `size`
 * messages, and fewer when their ids would make the `message-ids` header
 * longer than `MAX_BATCH_IDS_BYTES` (always at least one message).
 */
export function batchEnd(messages: readonly { readonly id: string }[], start: number, size: number): number {
  let bytes = 0;
  let end = start;
  const last = Math.min(messages.length, start + size);
  while (end < last) {
    bytes += (messages[end] as { id: string }).id.length + 1;
    if (bytes > MAX_BATCH_IDS_BYTES && end > start) break;
    end++;
  }
  return end;
}

/** The request body: the payload, with `attributes` merged in when it is an object. */
export function httpBody(message: StoredMessage): string {
  const p = message.payload;
  if (p.charCodeAt(0) !== 123 /* { */) return p;
  const attributes = JSON.stringify(message.attributes);
  if (p.includes('"attributes"')) {
    const parsed = JSON.parse(p) as Record<string, unknown>;
    return JSON.stringify({ ...parsed, attributes: message.attributes });
  }
  return p === '{}' ? `{"attributes":${attributes}}` : `${p.slice(0, -1)},"attributes":${attributes}}`;
}

/**
 * Decoded keys by secrets list. A publisher's list is a new array at each
 * revision (parsed from its JSON), so a changed secret is decoded afresh
 * and an old one is dropped with its revision.
 */
const decodedKeys = new WeakMap<readonly string[], Buffer[]>();

function keysOf(secrets: readonly string[]): Buffer[] {
  let keys = decodedKeys.get(secrets);
  if (!keys) {
    // Secrets are checked when written; one that is not valid signs nothing rather than stop deliveries.
    keys = secrets.map(secretKey).filter((k): k is Buffer => k !== undefined);
    decodedKeys.set(secrets, keys);
  }
  return keys;
}

/**
 * Adds the Standard Webhooks headers: the message id (the same on every
 * attempt), the attempt's time in seconds, and one `v1,<base64 HMAC-SHA256>`
 * of `<id>.<timestamp>.<body>` per secret, space-separated.
 */
export function sign(
  headers: Record<string, string>,
  secrets: readonly string[],
  id: string,
  body: string,
  nowMs: number,
): void {
  const timestamp = String(Math.floor(nowMs / 1000));
  const signed = `${id}.${timestamp}.${body}`;
  headers['webhook-id'] = id;
  headers['webhook-timestamp'] = timestamp;
  headers['webhook-signature'] = keysOf(secrets)
    .map((key) => `v1,${createHmac('sha256', key).update(signed).digest('base64')}`)
    .join(' ');
}

/**
 * undici's connector with `publicOnlyLookup`; an IP literal (which node
 * connects to without a lookup) is checked before connecting.
 */
function publicOnlyConnector(resolve?: Lookup): buildConnector.connector {
  const connect = buildConnector({ lookup: publicOnlyLookup(resolve), timeout: CONNECT_TIMEOUT_MS });
  return (options, callback) => {
    const host = options.hostname.startsWith('[') ? options.hostname.slice(1, -1) : options.hostname;
    if (isIP(host) !== 0 && isPrivateAddress(host)) {
      callback(new PrivateTargetError(host, host), null);
      return;
    }
    connect(options, callback);
  };
}

function describeError(err: unknown, seconds: number): string {
  const e = err as { code?: string; message?: string; name?: string; cause?: { code?: string; message?: string } };
  if (e.code === 'PO_PRIVATE_TARGET') return e.message ?? 'target is a private address';
  if (e.cause?.code === 'PO_PRIVATE_TARGET') return e.cause.message ?? 'target is a private address';
  if (e.name === 'AbortError') return 'aborted (node stopping)';
  const code = e.code ?? e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `timeout after ${seconds} s`;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return `connect timeout after ${CONNECT_TIMEOUT_MS / 1000} s`;
  return code ? `${code}: ${e.message ?? ''}`.trim() : (e.message ?? String(err));
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The `reason` label of a failed request (see `failureReason` in metrics.ts). */
function errorReason(err: unknown, timedOut: boolean): string {
  if (timedOut) return 'timeout';
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (code === 'PO_PRIVATE_TARGET' || e.cause?.code === 'PO_PRIVATE_TARGET') return 'private_address';
  if (e.name === 'AbortError') return 'aborted';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code !== undefined && (CONNECT_CODES.has(code) || code.startsWith('ERR_TLS') || code.includes('CERT'))) {
    return 'connect';
  }
  return 'error';
}
