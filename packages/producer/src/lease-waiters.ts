/**
 * Long polls of pull leases (`wait_seconds`): a lease request that found
 * nothing waits here until its topic receives messages, a given time comes
 * (the earliest retry or lease end of its publisher), or its wait is over,
 * and then looks again. Nothing polls Redis meanwhile: a topic is woken by
 * this producer's own ingest at once, and by every other writer (other
 * producers, scheduled messages, replacements) through the `po:wake`
 * channel, which this producer subscribes to on its own connection from the
 * first long poll on.
 *
 * At most `max` requests wait at once per producer; one more is refused
 * (`TooManyWaitingError`, a 429 with `Retry-After`). `close()` answers
 * every waiting request at once (with nothing) and closes the subscription.
 */
import { AppError, closeRedis, createRedis, type Keys, type Logger, type ScriptClient } from '@postoffice/shared';

/** Most lease requests waiting at once on one producer. */
export const MAX_WAITING_LEASES = 1000;

interface Waiter {
  readonly topic: string;
  readonly resolve: () => void;
  timer: NodeJS.Timeout | undefined;
}

export class TooManyWaitingError extends AppError {
  /** Seconds before trying again (the `Retry-After` header). */
  readonly retryAfter = 1;

  constructor(max: number) {
    super('too_many_waiting', 429, `more than ${max} lease requests are waiting`, {
      wait_seconds: [
        `too many lease requests are waiting on this producer (${max}); try again, or lease without waiting`,
      ],
    });
  }
}

export class LeaseWaiters {
  private readonly byTopic = new Map<string, Set<Waiter>>();
  private count = 0;
  private subscriber: ScriptClient | undefined;
  private closed = false;

  constructor(
    private readonly redisUrl: string,
    private readonly keys: Keys,
    private readonly logger: Logger,
    private readonly max = MAX_WAITING_LEASES,
  ) {}

  /** Requests waiting now. */
  get waiting(): number {
    return this.count;
  }

  /**
   * Waits until the topic is woken or `ms` have passed (resolves either
   * way, at once when closed). Throws `TooManyWaitingError` when `max`
   * requests wait already.
   */
  wait(topic: string, ms: number): Promise<void> {
    if (this.closed || ms <= 0) return Promise.resolve();
    if (this.count >= this.max) return Promise.reject(new TooManyWaitingError(this.max));
    this.subscribe();
    return new Promise<void>((resolve) => {
      const waiter: Waiter = {
        topic,
        timer: undefined,
        resolve: () => {
          if (waiter.timer) clearTimeout(waiter.timer);
          waiter.timer = undefined;
          const set = this.byTopic.get(topic);
          if (set?.delete(waiter)) {
            this.count--;
            if (set.size === 0) this.byTopic.delete(topic);
          }
          resolve();
        },
      };
      waiter.timer = setTimeout(waiter.resolve, ms);
      let set = this.byTopic.get(topic);
      if (!set) this.byTopic.set(topic, (set = new Set()));
      set.add(waiter);
      this.count++;
    });
  }

  /** Messages arrived in the topic: every request waiting for it looks again. */
  wake(topic: string): void {
    const set = this.byTopic.get(topic);
    if (!set) return;
    for (const waiter of [...set]) waiter.resolve();
  }

  /** Answers every waiting request and closes the subscription. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    for (const set of [...this.byTopic.values()]) for (const waiter of [...set]) waiter.resolve();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) await closeRedis(subscriber);
  }

  /** Subscribes to `po:wake` once, on a connection of its own (a subscribed connection runs nothing else). */
  private subscribe(): void {
    if (this.subscriber) return;
    const subscriber = createRedis(this.redisUrl, 'subscriber');
    this.subscriber = subscriber;
    subscriber.on('message', (channel: string, topic: string) => {
      if (channel === this.keys.wakeChannel) this.wake(topic);
    });
    subscriber.subscribe(this.keys.wakeChannel).catch((err: unknown) => {
      // Lease requests still end at their wait's end; this producer's own ingest still wakes them.
      if (!this.closed) this.logger.warn({ err }, 'could not subscribe to wake-ups for long polls');
    });
  }
}
