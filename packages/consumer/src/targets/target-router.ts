/**
 * The node's one `Target`: hands each delivery to the target of its
 * publisher's type (http or pubsub), and closes them all.
 */
import type { Publisher, PublisherType, StoredMessage } from '@postoffice/shared';
import type { AttemptResult, Target } from '../types.js';

export class TargetRouter implements Target {
  constructor(private readonly targets: Partial<Record<PublisherType, Target>>) {}

  send(publisher: Publisher, message: StoredMessage, done: (result: AttemptResult) => void): void {
    const target = this.targets[publisher.type];
    if (!target) {
      done({
        ok: false,
        error: `no delivery for publishers of type ${publisher.type}`,
        startedAt: Date.now(),
        durationMs: 0,
      });
      return;
    }
    target.send(publisher, message, done);
  }

  sendBatch(publisher: Publisher, messages: readonly StoredMessage[], done: (result: AttemptResult) => void): void {
    const target = this.targets[publisher.type];
    if (!target?.sendBatch) {
      done({
        ok: false,
        error: `publishers of type ${publisher.type} do not send batches`,
        permanent: true,
        startedAt: Date.now(),
        durationMs: 0,
      });
      return;
    }
    target.sendBatch(publisher, messages, done);
  }

  abortAll(): void {
    for (const target of Object.values(this.targets)) target.abortAll();
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(Object.values(this.targets).map((t) => t.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
