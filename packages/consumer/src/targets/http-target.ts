/**
 * Delivers over HTTP with undici: one keep-alive pool per origin (the
 * Agent keeps them), a POST of the payload as JSON with the attributes under
 * an `attributes` key when the payload is an object, as Postoffice sends it.
 * Success is any 2xx within the publisher's `seconds_timeout`.
 *
 * A publisher with secrets gets Standard Webhooks signatures
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature`) over the exact
 * body sent. With `refusePrivateTargets`, every new connection checks the
 * address it goes to (DNS may have changed since the publisher was made).
 */
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { Agent, buildConnector, request } from 'undici';
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

/** Idle controllers kept for reuse, at most. */
const SPARE_CONTROLLERS = 1024;

export class HttpTarget implements Target {
  private readonly agent: Agent;
  private closed = false;
  private readonly inFlight = new Set<AbortController>();
  /**
   * Controllers whose attempt ended without aborting them: undici removed
   * its listener, so they are as good as new. Creating an AbortController
   * and its signal was the largest cost of an attempt outside undici itself
   * (see docs/performance.md).
   */
  private readonly spare: AbortController[] = [];

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
      ...(options.refusePrivateTargets ? { connect: publicOnlyConnector(options.lookup) } : {}),
    });
  }

  async deliver(publisher: Publisher, message: StoredMessage): Promise<AttemptResult> {
    const startedAt = this.now();
    const timeoutMs = Math.round(publisher.seconds_timeout * 1000);
    // One controller and one timer per attempt (AbortSignal.timeout + AbortSignal.any cost twice as much).
    const controller = this.spare.pop() ?? new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    this.inFlight.add(controller);
    try {
      const body = httpBody(message);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'message-id': message.id,
        topic: publisher.topic,
        'user-agent': 'postoffice',
      };
      if (publisher.secrets && publisher.secrets.length > 0)
        sign(headers, publisher.secrets, message.id, body, startedAt);
      const res = await request(publisher.target, {
        method: 'POST',
        dispatcher: this.agent,
        headers,
        body,
        signal: controller.signal,
      });
      await res.body.dump({ limit: 64 * 1024 });
      const durationMs = this.now() - startedAt;
      if (res.statusCode >= 200 && res.statusCode < 300)
        return { ok: true, status: res.statusCode, startedAt, durationMs };
      return { ok: false, status: res.statusCode, error: `HTTP ${res.statusCode}`, startedAt, durationMs };
    } catch (err) {
      const durationMs = this.now() - startedAt;
      const error = describeError(err, timedOut, publisher.seconds_timeout);
      return { ok: false, error, reason: errorReason(err, timedOut), startedAt, durationMs };
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
      if (!controller.signal.aborted && this.spare.length < SPARE_CONTROLLERS) this.spare.push(controller);
    }
  }

  abortAll(): void {
    for (const controller of this.inFlight) controller.abort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.agent.close();
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
  const connect = buildConnector({ lookup: publicOnlyLookup(resolve) });
  return (options, callback) => {
    const host = options.hostname.startsWith('[') ? options.hostname.slice(1, -1) : options.hostname;
    if (isIP(host) !== 0 && isPrivateAddress(host)) {
      callback(new PrivateTargetError(host, host), null);
      return;
    }
    connect(options, callback);
  };
}

function describeError(err: unknown, timedOut: boolean, seconds: number): string {
  if (timedOut) return `timeout after ${seconds} s`;
  const e = err as { code?: string; message?: string; name?: string; cause?: { code?: string; message?: string } };
  if (e.code === 'PO_PRIVATE_TARGET') return e.message ?? 'target is a private address';
  if (e.cause?.code === 'PO_PRIVATE_TARGET') return e.cause.message ?? 'target is a private address';
  if (e.name === 'AbortError') return 'aborted (node stopping)';
  const code = e.code ?? e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `timeout after ${seconds} s`;
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
