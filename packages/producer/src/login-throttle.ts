/**
 * Login throttling: failed `POST /api/session` attempts per client address,
 * counted in Redis so that every producer replica sees the same count.
 * After LOGIN_MAX_FAILURES failures within LOGIN_WINDOW_SECONDS (counted
 * from the first one), every login from that address is refused with 429
 * and `Retry-After` until the window ends, a right token included: guessing
 * goes no faster than LOGIN_MAX_FAILURES per window. A success does not
 * reset the count. IPv6 clients count per /64, the block one host usually
 * holds; IPv4-mapped addresses count as their IPv4 address.
 */
import { isIP } from 'node:net';
import type { Config, Keys, ScriptClient } from '@postoffice/shared';

export class LoginThrottle {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly config: Pick<Config, 'loginMaxFailures' | 'loginWindowSeconds'>,
  ) {}

  /** Seconds `address` must wait before it may try again; 0 when it may now. */
  async retryAfter(address: string): Promise<number> {
    const key = this.keys.loginFailures(clientOf(address));
    const [[, count], [, ttl]] = ((await this.redis.pipeline().get(key).pttl(key).exec()) ?? []) as [
      [Error | null, string | null],
      [Error | null, number],
    ];
    if (Number(count ?? 0) < this.config.loginMaxFailures) return 0;
    // A key without an expiry cannot be ours; count a full window rather than lock the address for good.
    return ttl > 0 ? Math.ceil(ttl / 1000) : this.config.loginWindowSeconds;
  }

  /** Counts a failed attempt from `address`; the first of a window starts it. */
  async failed(address: string): Promise<void> {
    const key = this.keys.loginFailures(clientOf(address));
    await this.redis.multi().set(key, '0', 'EX', this.config.loginWindowSeconds, 'NX').incr(key).exec();
  }
}

/** What failures are counted under: the IPv4 address, or the first 64 bits of an IPv6 one. */
export function clientOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const words =
    tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${words
    .slice(0, 4)
    .map((w) => parseInt(w, 16).toString(16))
    .join(':')}::/64`;
}
