/**
 * A lease on a named singleton: a key holding the owner's random token,
 * with a time to live, renewed well before it runs out. Whoever holds the
 * key runs the singleton; a holder that dies loses it at expiry.
 */
import { randomUUID } from 'node:crypto';
import { scripts, type ScriptClient } from '@postoffice/shared';

export class Lease {
  /** `<node id> <random>`: the holder can be read from the key (GET /api/cluster shows it). */
  private readonly token: string;
  held = false;

  constructor(
    private readonly redis: ScriptClient,
    private readonly key: string,
    private readonly ttlMs: number,
    holder = 'node',
  ) {
    this.token = `${holder} ${randomUUID()}`;
  }

  /** Takes the lease if free, or renews it if ours; returns whether we hold it. */
  async acquireOrRenew(): Promise<boolean> {
    if (this.held) {
      this.held = await scripts.renewLock(this.redis, { lease: this.key }, { token: this.token, ttlMs: this.ttlMs });
      if (this.held) return true;
    }
    this.held = (await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK';
    return this.held;
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await scripts.releaseLock(this.redis, { lease: this.key }, { token: this.token });
  }
}
