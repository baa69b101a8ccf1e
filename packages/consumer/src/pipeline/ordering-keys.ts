/**
 * Ordering keys: the per-key order of an ordered publisher with an
 * `ordering_attribute`. Messages with the same key (the attribute's value;
 * '' without it) are sent in stream order, one at a time; different keys
 * go in parallel, up to the pipeline's `concurrency`. The pipeline owns
 * the I/O; this class only says which message may go next.
 *
 * States of a key on the node:
 *   free     - nothing of it is in flight, waiting or held: a message read
 *              for it is sent at once (-> sending).
 *   sending  - one message of it is in flight, until its outcome is written
 *              (-> free, or -> waiting when the outcome is a retry, or when
 *              it came from the retry set, until the retry set is asked again).
 *   waiting  - it has an entry in the retry set (as the last take saw it):
 *              only its earliest entry may go, once due (take-ordered.lua).
 * Messages read for a key that is not free are held in memory, in stream
 * order, and go when the key is free again. They stay pending in the
 * group, so a node that dies leaves them to the next owner, who schedules
 * them with the rest and sends each key's earliest first. At most `cap`
 * messages are held: beyond half of it no more is read.
 */
import type { OrderedTake } from './source.js';
import type { Settlement, Job } from '../types.js';

export class OrderingKeys {
  /** key -> stream id of its message in flight. */
  private readonly sending = new Map<string, string>();
  /** stream id in flight -> its key. */
  private readonly keyOfSid = new Map<string, string>();
  /** Messages read and held behind their key, in stream order. */
  private readonly held = new Map<string, Job[]>();
  private heldCount = 0;
  /** Keys with an entry in the retry set, as the last take saw them (and retries since). */
  private waiting = new Set<string>();
  /** The last take did not see the whole retry set: no key counts as free. */
  private truncated = false;
  /** The retry set must be asked before a waiting key moves (a message taken from it ended). */
  refreshNeeded = true;

  constructor(
    private attribute: string | null,
    /** Most messages held in memory. */
    readonly cap: number,
  ) {}

  /** A changed `ordering_attribute` applies to messages read from now on. */
  setAttribute(attribute: string | null): void {
    this.attribute = attribute;
  }

  keyOf(job: Job): string {
    return this.attribute === null ? '' : (job.message.attributes[this.attribute] ?? '');
  }

  /** Keys with a message in flight (their heads in the retry set must wait). */
  busyKeys(): string[] {
    return [...this.sending.keys()];
  }

  /** Messages held in memory. */
  get heldMessages(): number {
    return this.heldCount;
  }

  /** Whether reading more is worth it: the held messages are at most half of `cap`. */
  get canRead(): boolean {
    return this.heldCount * 2 <= this.cap;
  }

  /** Room left for held messages. */
  get room(): number {
    return Math.max(0, this.cap - this.heldCount);
  }

  /** Whether held messages wait for a key that is free now (sendable without asking Redis). */
  get sendable(): boolean {
    if (this.truncated) return false;
    for (const key of this.held.keys()) if (!this.sending.has(key) && !this.waiting.has(key)) return true;
    return false;
  }

  /** What the retry set said: its heads that go now, and the keys that wait in it. */
  taken(take: OrderedTake): Job[] {
    this.waiting = new Set(take.waiting);
    this.truncated = take.truncated;
    const out: Job[] = [];
    for (const job of take.jobs) {
      this.send(this.keyOf(job), job);
      out.push(job);
    }
    return out;
  }

  /** Messages just read: those whose key is free go now (returned); the others are held. */
  admit(jobs: readonly Job[]): Job[] {
    const out: Job[] = [];
    for (const job of jobs) {
      const key = this.keyOf(job);
      const queue = this.held.get(key);
      if (queue !== undefined) {
        queue.push(job);
        this.heldCount++;
      } else if (this.truncated || this.sending.has(key) || this.waiting.has(key)) {
        this.held.set(key, [job]);
        this.heldCount++;
      } else {
        this.send(key, job);
        out.push(job);
      }
    }
    return out;
  }

  /** Up to `limit` held messages whose key is free: they go now. */
  release(limit: number): Job[] {
    const out: Job[] = [];
    if (this.truncated) return out;
    for (const [key, queue] of this.held) {
      if (out.length >= limit) break;
      if (this.sending.has(key) || this.waiting.has(key)) continue;
      const job = queue.shift() as Job;
      this.heldCount--;
      if (queue.length === 0) this.held.delete(key);
      this.send(key, job);
      out.push(job);
    }
    return out;
  }

  /**
   * Outcomes written: their keys are no longer in flight. A retry leaves its
   * key waiting; a message that came from the retry set leaves its key
   * waiting until the retry set is asked again (it may hold more of it).
   */
  settled(outcomes: readonly { readonly job: Job; readonly settlement: Settlement }[]): void {
    for (const { job, settlement } of outcomes) {
      const sid = job.message.streamId;
      const key = this.keyOfSid.get(sid);
      if (key === undefined) continue;
      this.keyOfSid.delete(sid);
      this.sending.delete(key);
      if (settlement.kind === 'retry') this.waiting.add(key);
      else if (job.retry || this.waiting.has(key)) this.refreshNeeded = true;
    }
  }

  private send(key: string, job: Job): void {
    this.sending.set(key, job.message.streamId);
    this.keyOfSid.set(job.message.streamId, key);
  }
}
