/**
 * The cluster-wide rate limit of a publisher: a token bucket in Redis
 * (rate-limit.lua, on Redis' clock), shared by every node that holds one of
 * the publisher's slots. A pipeline takes as many tokens as it wants to
 * start deliveries (one round trip per read, not per message) and gives
 * back those it could not use.
 */
import { scripts, type Keys, type Publisher, type RateLimit, type ScriptClient } from '@postoffice/shared';

export class RateLimiter {
  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
  ) {}

  /** Up to `n` tokens now, and the wait (ms) before the next one when fewer were granted. */
  async take(publisher: Publisher, limit: RateLimit, n: number): Promise<{ granted: number; waitMs: number }> {
    return scripts.rateLimit(
      this.redis,
      { bucket: this.keys.publisher(publisher.topic, publisher.id).bucket },
      { perSecond: limit.per_second, burst: limit.burst, tokens: n },
    );
  }

  async giveBack(publisher: Publisher, limit: RateLimit, n: number): Promise<void> {
    if (n <= 0) return;
    await scripts.rateLimit(
      this.redis,
      { bucket: this.keys.publisher(publisher.topic, publisher.id).bucket },
      { perSecond: limit.per_second, burst: limit.burst, tokens: -n },
    );
  }
}
