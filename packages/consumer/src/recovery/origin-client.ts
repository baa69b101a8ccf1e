/**
 * The HTTP side of message recovery, as Postoffice's rescuer speaks it:
 * `GET <origin_host>` lists the messages a sender failed to publish (a JSON
 * list), `DELETE <origin_host><id>/` removes one. Each request is bounded by
 * `RECOVERY_TIMEOUT_SECONDS` (connection, answer and body), and an answer
 * larger than `MAX_ANSWER_BYTES` is refused. With `REFUSE_PRIVATE_TARGETS`
 * every connection checks the address it is about to dial (an IP literal
 * before dialling, a name through the lookup), as deliveries do: a refused
 * origin is never dialled.
 */
import { isIP } from 'node:net';
import { PrivateTargetError, isPrivateAddress, publicOnlyLookup, type Lookup } from '@postoffice/shared';
import { Agent, buildConnector, request } from 'undici';

/** The largest list answer read (a bigger one is an error: the origin should page it). */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** Why a request to an origin failed, as the `reason` label of the recovery failures has it. */
export type OriginFailure = 'timeout' | 'connect' | 'private_address' | 'http_status' | 'bad_json' | 'too_large';

export type OriginResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: OriginFailure; readonly error: string };

export interface OriginClientOptions {
  readonly timeoutMs: number;
  readonly refusePrivateTargets: boolean;
  /** Resolves names for the private-address check (and the connection); tests pass one that needs no DNS. */
  readonly lookup?: Lookup;
}

export class OriginClient {
  private readonly agent: Agent;

  constructor(private readonly options: OriginClientOptions) {
    const connect = buildConnector({
      timeout: options.timeoutMs,
      ...(options.refusePrivateTargets ? { lookup: publicOnlyLookup(options.lookup) } : {}),
    });
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      connect: options.refusePrivateTargets
        ? (opts, callback) => {
            const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
            if (isIP(host) !== 0 && isPrivateAddress(host)) {
              callback(new PrivateTargetError(host, host), null);
              return;
            }
            connect(opts, callback);
          }
        : connect,
    });
  }

  /** `GET <host>`: the parsed JSON answer. */
  async list(host: string): Promise<OriginResult<unknown>> {
    const got = await this.call('GET', host, MAX_ANSWER_BYTES);
    if (!got.ok) return got;
    try {
      return { ok: true, value: JSON.parse(got.value) as unknown };
    } catch {
      return { ok: false, reason: 'bad_json', error: 'the list is not JSON' };
    }
  }

  /** `DELETE <host><id>/`, as the original appends the id to `origin_host`. */
  async delete(host: string, id: string): Promise<OriginResult<void>> {
    const got = await this.call('DELETE', `${host}${encodeURIComponent(id)}/`, 64 * 1024);
    return got.ok ? { ok: true, value: undefined } : got;
  }

  private async call(method: 'GET' | 'DELETE', url: string, maxBytes: number): Promise<OriginResult<string>> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    const what = method === 'GET' ? 'the list' : 'the deletion';
    try {
      const res = await request(url, {
        method,
        dispatcher: this.agent,
        signal,
        headers: { accept: 'application/json', 'user-agent': 'postoffice' },
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) {
          res.body.destroy();
          return { ok: false, reason: 'too_large', error: `${what}: answer larger than ${maxBytes} bytes` };
        }
        chunks.push(chunk);
      }
      if (res.statusCode < 200 || res.statusCode > 299)
        return { ok: false, reason: 'http_status', error: `${what}: the origin answered ${res.statusCode}` };
      return { ok: true, value: Buffer.concat(chunks).toString('utf8') };
    } catch (err) {
      return failure(err, what, signal.aborted, this.options.timeoutMs);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function failure(err: unknown, what: string, timedOut: boolean, timeoutMs: number): OriginResult<never> {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  if (code === 'PO_PRIVATE_TARGET')
    return { ok: false, reason: 'private_address', error: `${what}: ${e.message ?? e.cause?.message ?? ''}` };
  if (
    timedOut ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  )
    return { ok: false, reason: 'timeout', error: `${what}: no answer within ${timeoutMs / 1000} s` };
  const detail =
    code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' ? 'unknown host' : (e.message ?? String(err));
  return { ok: false, reason: 'connect', error: `${what}: ${detail}` };
}
