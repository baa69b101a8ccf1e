/**
 * The publisher slots this node holds, and the serial task queue that every
 * change of them goes through.
 *
 * Each active publisher has `slotCount(p)` slots; `assignSlots` (rendezvous
 * hashing with bounded loads over the live nodes) says which node should
 * hold each. States of a slot on this node:
 *   free       - not held here. A rebalance that finds it should be ours
 *                takes its lease (when free, or left by a dead node) ->
 *                held, and tells the node (`onGained`: run or resize the
 *                publisher's pipeline).
 *   held       - ours. A rebalance that finds it should no longer be ours
 *                hands it back -> releasing; `dropAll` forgets it at once
 *                -> free (leases untouched: they may be someone else's now).
 *   releasing  - handed back: the node shrinks or stops the pipeline
 *                (`onLost`, which resolves once a stopped pipeline has
 *                finished its deliveries), then the lease is released and
 *                the others are told -> free. Not taken again meanwhile.
 *
 * A rebalance runs when publishers change, when the live set changes, when
 * a node announces it joined, left or handed slots back, and at each
 * heartbeat while some wanted slot is still held elsewhere (`unsettled`).
 * Rebalances, publisher loads and the node's own recoveries run one at a
 * time, in order, through `serialize`, and only while the node is started.
 */
import { slotCount, type Logger, type Publisher, type Store } from '@postoffice/shared';
import { assignSlots, slotName } from './assignment.js';
import type { Membership } from './membership.js';
import type { SlotLeases, SlotRef } from './slot-leases.js';

export interface SlotOwnerDeps {
  readonly leases: SlotLeases;
  readonly membership: Pick<Membership, 'live'>;
  readonly store: Pick<Store, 'emit'>;
  readonly nodeId: string;
  readonly logger: Logger;
  /** Whether the node is started: tasks and rebalances run only then. */
  readonly started: () => boolean;
  /** The publishers known (their active ones have slots). */
  readonly publishers: () => Iterable<Publisher>;
  /** Slots of the publisher were taken: run its pipeline, or resize and wake it. */
  readonly onGained: (publisherId: string) => void;
  /**
   * Slots of the publisher are being handed back or dropped, `left` of its slots still held: with none
   * left the pipeline stops (resolving once its deliveries finished), else it is resized.
   */
  readonly onLost: (publisherId: string, left: number) => Promise<void>;
}

export class SlotOwner {
  /** Slots this node holds and runs, by publisher id. */
  private readonly held = new Map<string, { topic: string; slots: Set<number> }>();
  /** Slots being handed back (pipeline draining, lease not yet released). */
  private readonly releasing = new Set<string>();
  private readonly handbacks = new Set<Promise<void>>();
  private liveNodes: ReadonlySet<string> = new Set();
  /** A wanted slot was still held by another node at the last rebalance. */
  private unsettled = false;
  private rebalanceQueued = false;
  private syncing: Promise<void> = Promise.resolve();

  constructor(private readonly deps: SlotOwnerDeps) {}

  /** The live nodes as last read (this node among them while started). */
  get live(): ReadonlySet<string> {
    return this.liveNodes;
  }

  /** Slots held, in all. */
  get count(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.slots.size;
    return n;
  }

  /** Whether this node holds at least one of the publisher's slots. */
  holds(publisherId: string): boolean {
    return this.held.has(publisherId);
  }

  /** Slots held, as `<publisher id>/<slot>`. */
  heldSlots(): string[] {
    const out: string[] = [];
    for (const [id, h] of this.held) for (const slot of h.slots) out.push(slotName(id, slot));
    return out.sort();
  }

  /** Asks Redis whether this node still holds the publisher's slot lease (an ordered pipeline, before reading). */
  leaseCheck(topic: string, publisherId: string): () => Promise<boolean> {
    return () => this.deps.leases.holds({ topic, publisherId, slot: 0 });
  }

  /** Resolves once every task queued so far has run. */
  get idle(): Promise<void> {
    return this.syncing;
  }

  /** Resolves once the slots being handed back now are released. */
  handedBack(): Promise<unknown> {
    return Promise.all(this.handbacks);
  }

  /** Runs `task` after every task queued before it, if the node is still started then. */
  serialize(task: () => Promise<void>): void {
    this.syncing = this.syncing
      .then(() => (this.deps.started() ? task() : undefined))
      .catch((err: unknown) => this.deps.logger.error({ err }, 'could not load publishers'));
  }

  /** Reads the live nodes; true when the set changed. */
  async refreshLive(): Promise<boolean> {
    const ids = new Set(await this.deps.membership.live());
    if (this.deps.started()) ids.add(this.deps.nodeId);
    const changed = ids.size !== this.liveNodes.size || [...ids].some((id) => !this.liveNodes.has(id));
    this.liveNodes = ids;
    return changed;
  }

  /** At each heartbeat: a rebalance when the live set changed or a wanted slot was still held elsewhere. */
  async checkLive(): Promise<void> {
    if ((await this.refreshLive()) || this.unsettled) this.requestRebalance();
  }

  requestRebalance(): void {
    if (this.rebalanceQueued) return;
    this.rebalanceQueued = true;
    this.serialize(async () => {
      this.rebalanceQueued = false;
      await this.rebalance();
    });
  }

  /** Hands back the slots this node should not hold and takes those it should (see the header). */
  async rebalance(): Promise<void> {
    if (!this.deps.started()) return;
    const { nodeId } = this.deps;
    const slots = new Map<string, SlotRef>();
    for (const p of this.deps.publishers()) {
      if (!p.active) continue;
      for (let slot = 0; slot < slotCount(p); slot++)
        slots.set(slotName(p.id, slot), { topic: p.topic, publisherId: p.id, slot });
    }
    const owners = assignSlots([...slots.keys()], [...this.liveNodes]);
    for (const [id, h] of [...this.held]) {
      const back = [...h.slots].filter((slot) => owners.get(slotName(id, slot)) !== nodeId);
      if (back.length > 0) this.handBack(id, h.topic, back);
    }
    const wanted: SlotRef[] = [];
    for (const [name, ref] of slots) {
      if (owners.get(name) !== nodeId || this.releasing.has(name)) continue;
      if (this.held.get(ref.publisherId)?.slots.has(ref.slot)) continue;
      wanted.push(ref);
    }
    const got = await this.deps.leases.acquire(wanted, this.liveNodes);
    this.unsettled = got.length < wanted.length;
    if (!this.deps.started()) {
      await this.deps.leases.release(got);
      return;
    }
    const touched = new Set<string>();
    for (const ref of got) {
      const h = this.held.get(ref.publisherId) ?? { topic: ref.topic, slots: new Set<number>() };
      h.slots.add(ref.slot);
      this.held.set(ref.publisherId, h);
      touched.add(ref.publisherId);
    }
    for (const id of touched) this.deps.onGained(id);
    if (got.length > 0) this.deps.logger.debug({ slots: got.length }, 'took slots');
  }

  /**
   * Gives slots back: the pipeline shrinks (or, with no slot left, stops and
   * finishes its deliveries) before the leases are released, so that the
   * next owner never overlaps with this one; then tells the others.
   */
  private handBack(id: string, topic: string, slots: number[]): void {
    const h = this.held.get(id);
    if (!h) return;
    for (const slot of slots) {
      h.slots.delete(slot);
      this.releasing.add(slotName(id, slot));
    }
    if (h.slots.size === 0) this.held.delete(id);
    const stopped = this.deps.onLost(id, h.slots.size);
    const refs = slots.map((slot) => ({ topic, publisherId: id, slot }));
    const done = stopped
      .then(() => this.deps.leases.release(refs))
      .then(() => (this.deps.started() ? this.deps.store.emit({ type: 'cluster', node: this.deps.nodeId }) : undefined))
      .catch((err: unknown) => this.deps.logger.error({ err, publisherId: id }, 'could not hand slots back'))
      .finally(() => {
        for (const slot of slots) this.releasing.delete(slotName(id, slot));
        this.handbacks.delete(done);
      });
    this.handbacks.add(done);
  }

  /** Waits for the hand-backs under way, then releases every slot still held (on close). */
  async releaseAll(): Promise<void> {
    await Promise.all(this.handbacks);
    const refs: SlotRef[] = [];
    for (const [id, h] of this.held) for (const slot of h.slots) refs.push({ topic: h.topic, publisherId: id, slot });
    this.held.clear();
    await this.deps.leases.release(refs);
  }

  /**
   * Forgets every slot without touching Redis (they may be someone else's now), stops their pipelines and
   * takes a new lease token; the next rebalance takes the slots again. Resolves once the pipelines stopped.
   */
  dropAll(): Promise<void> {
    const stopped: Promise<void>[] = [];
    for (const id of this.held.keys()) stopped.push(this.deps.onLost(id, 0));
    this.held.clear();
    this.deps.leases.renewIdentity();
    this.unsettled = true;
    return Promise.all(stopped).then(() => undefined);
  }
}
