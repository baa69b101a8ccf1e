/**
 * Delivers over HTTP with undici: one keep-alive pool per origin (the
 * Agent keeps them), a POST of the payload as JSON with the attributes under
 * an `attributes` key when the payload is an object, as Postoffice sends it.
 * Success is a 2xx status within the publisher's `seconds_timeout` of
 * sending the request (undici's headers timeout; connecting has
 * `CONNECT_TIMEOUT_MS` of its own). The answer's body is read and dropped.
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
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import {
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
    let route = this.routes.get(publisher.target);
    if (route === undefined) {
      try {
        const url = new URL(publisher.target);
        route = { origin: url.origin, path: `${url.pathname}${url.search}` };
      } catch {
        done({ ok: false, error: 'target is not a URL', permanent: true, startedAt, durationMs: 0 });
        return;
      }
      if (this.routes.size > 10_000) this.routes.clear();
      this.routes.set(publisher.target, route);
    }
    const body = httpBody(message);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'message-id': message.id,
      topic: publisher.topic,
      'user-agent': 'postoffice',
    };
    if (publisher.secrets && publisher.secrets.length > 0)
      sign(headers, publisher.secrets, message.id, body, startedAt);
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
 * One attempt's undici handler. The status decides the result as soon as
 * the answer's head arrives; the body is read and dropped (the connection
 * goes back to its pool once it has been read).
 */
class Attempt implements Dispatcher.DispatchHandler {
  private finished = false;
  private controller: Dispatcher.DispatchController | undefined;
  private received = 0;
  private aborted = false;

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

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    if (this.finished) return;
    this.finished = true;
    const durationMs = this.target.elapsed(this.startedAt);
    this.target.settled(
      this,
      statusCode >= 200 && statusCode < 300
        ? { ok: true, status: statusCode, startedAt: this.startedAt, durationMs }
        : { ok: false, status: statusCode, error: `HTTP ${statusCode}`, startedAt: this.startedAt, durationMs },
    );
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.received += chunk.length;
    if (this.received > MAX_ANSWER_BYTES) controller.abort(new Error('answer too large'));
  }

  onResponseEnd(): void {}

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  /** Ends the attempt as failed, unless its status already decided it. */
  fail(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.target.settled(this, {
      ok: false,
      error: this.aborted ? 'aborted (node stopping)' : describeError(err, this.seconds),
      reason: this.aborted ? 'aborted' : errorReason(err, false),
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
