/**
 * Publisher slot leases. A slot's lease is a key (in the publisher's topic
 * hash slot) holding its owner's `<node id> <token>`; the token is new at
 * each start of a node, and again after the node finds it was silent long
 * enough to be counted dead.
 *
 * A lease lives as long as its holder's heartbeat: it is valid while the
 * holder is in the live set (a heartbeat within the last three), and is
 * free to take once the holder is not. Renewing the heartbeat renews every
 * lease the node holds at once, so idle Redis traffic does not grow with the
 * number of slots (one TTL per key would cost a command per slot and tick).
 * Taking a lease is a compare-and-set on the value read (take-lease.lua),
 * so of two nodes that both saw a dead holder, one wins.
 */
import { randomUUID } from 'node:crypto';
import { scripts, type Keys, type ScriptClient } from '@postoffice/shared';

export interface SlotRef {
  readonly topic: string;
  readonly publisherId: string;
  readonly slot: number;
}

export class SlotLeases {
  private token = randomUUID();

  constructor(
    private readonly redis: ScriptClient,
    private readonly keys: Keys,
    private readonly nodeId: string,
  ) {}

  /** What this node writes into the leases it holds. */
  get value(): string {
    return `${this.nodeId} ${this.token}`;
  }

  /** A new token: leases held under the old one are no longer ours (we were counted dead). */
  renewIdentity(): void {
    this.token = randomUUID();
  }

  /**
   * Takes every slot of `wanted` that is free, already ours, or held by a
   * node outside `live` (or by an earlier run of this node); returns those
   * now held. Two round trips: read every lease, then compare-and-set, each
   * a command of its own (one hash slot each).
   */
  async acquire(wanted: readonly SlotRef[], live: ReadonlySet<string>): Promise<SlotRef[]> {
    if (wanted.length === 0) return [];
    // One command per lease, all sent at once: the leases of different
    // topics live in different hash slots, so no pipeline may span them.
    const values = await Promise.all(
      wanted.map((s) =>
        this.redis.get(this.keys.slotLease(s.topic, s.publisherId, s.slot)).then(
          (v) => v ?? '',
          () => undefined,
        ),
      ),
    );
    const mine = this.value;
    const held: SlotRef[] = [];
    const attempts: [SlotRef, string][] = [];
    wanted.forEach((s, i) => {
      const current = values[i];
      if (current === undefined) return;
      if (current === mine) held.push(s);
      else if (current === '' || this.holderGone(current, live)) attempts.push([s, current]);
    });
    if (attempts.length > 0) {
      const results = await Promise.all(
        attempts.map(([s, expected]) =>
          scripts
            .takeLease(
              this.redis,
              { lease: this.keys.slotLease(s.topic, s.publisherId, s.slot) },
              { expected, value: mine },
            )
            .then(
              (v) => v,
              () => false,
            ),
        ),
      );
      attempts.forEach(([s], i) => {
        if (results[i]) held.push(s);
      });
    }
    return held;
  }

  /** Whether the lease is still ours (an ordered pipeline asks before each read). */
  async holds(slot: SlotRef): Promise<boolean> {
    return (await this.redis.get(this.keys.slotLease(slot.topic, slot.publisherId, slot.slot))) === this.value;
  }

  /** Gives leases back (only those still ours). */
  async release(slots: readonly SlotRef[]): Promise<void> {
    if (slots.length === 0) return;
    await Promise.allSettled(
      slots.map((s) =>
        scripts.releaseLock(
          this.redis,
          { lease: this.keys.slotLease(s.topic, s.publisherId, s.slot) },
          { token: this.value },
        ),
      ),
    );
  }

  private holderGone(value: string, live: ReadonlySet<string>): boolean {
    const node = value.slice(0, value.lastIndexOf(' '));
    // An earlier run of this node (same NODE_ID, other token) is gone too.
    return node === this.nodeId || !live.has(node);
  }
}

/** The node id in a lease's value. */
export function leaseHolder(value: string): string {
  const i = value.lastIndexOf(' ');
  return i < 0 ? value : value.slice(0, i);
}
