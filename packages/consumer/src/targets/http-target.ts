/**
 * Delivers over HTTP with undici: one keep-alive pool per origin (the
 * Agent keeps them), a POST of the payload as JSON with the attributes under
 * an `attributes` key when the payload is an object, as Postoffice sends it.
 * Success is any 2xx within the publisher's `seconds_timeout`.
 */
import { Agent, request } from 'undici';
import type { Publisher, StoredMessage } from '@postoffice/shared';
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
    options: { connections?: number } = {},
  ) {
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      connections: options.connections ?? null,
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
      const res = await request(publisher.target, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          'message-id': message.id,
          topic: publisher.topic,
          'user-agent': 'postoffice',
        },
        body: httpBody(message),
        signal: controller.signal,
      });
      await res.body.dump({ limit: 64 * 1024 });
      const durationMs = this.now() - startedAt;
      if (res.statusCode >= 200 && res.statusCode < 300)
        return { ok: true, status: res.statusCode, startedAt, durationMs };
      return { ok: false, status: res.statusCode, error: `HTTP ${res.statusCode}`, startedAt, durationMs };
    } catch (err) {
      const durationMs = this.now() - startedAt;
      return { ok: false, error: describeError(err, timedOut, publisher.seconds_timeout), startedAt, durationMs };
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

function describeError(err: unknown, timedOut: boolean, seconds: number): string {
  if (timedOut) return `timeout after ${seconds} s`;
  const e = err as { code?: string; message?: string; name?: string; cause?: { code?: string } };
  if (e.name === 'AbortError') return 'aborted (node stopping)';
  const code = e.code ?? e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `timeout after ${seconds} s`;
  return code ? `${code}: ${e.message ?? ''}`.trim() : (e.message ?? String(err));
}
