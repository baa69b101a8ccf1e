/**
 * Test support: a gRPC server on 127.0.0.1 implementing the
 * `google.pubsub.v1.Subscriber` calls a Pub/Sub source makes (Pull,
 * Acknowledge, ModifyAckDeadline) from the protos shipped inside
 * `@google-cloud/pubsub`, so that the real client can be pointed at it
 * through PUBSUB_EMULATOR_HOST. Subscriptions hold messages with an ack
 * deadline: a message pulled and not acknowledged in time is given again.
 * It can fail the next calls, and hold acknowledgements unanswered (to kill
 * a node between its write and its acknowledgement).
 */
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface FakeSubscriber {
  /** `127.0.0.1:<port>`, for PUBSUB_EMULATOR_HOST. */
  readonly host: string;
  /** Makes a subscription (full name); messages pulled and not acknowledged come back after `ackDeadlineSeconds`. */
  createSubscription(name: string, ackDeadlineSeconds?: number): void;
  /** Adds a message; returns its message id. */
  publish(subscription: string, data: string, attributes?: Record<string, string>): string;
  /** Ids of the messages not acknowledged yet. */
  remaining(subscription: string): string[];
  /** Calls by method name, in order. */
  readonly calls: string[];
  /** Fails the next `times` calls of `method` with `code`. */
  failNext(method: 'Pull' | 'Acknowledge', code: grpc.status, times: number): void;
  /** Acknowledgements from now on are never answered (until `close`). */
  holdAcks(): void;
  /** Answers the held acknowledgements with an error (they did nothing) and stops holding. */
  releaseAcks(): void;
  heldAcks(): number;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);
const PUBSUB_DIR = dirname(require.resolve('@google-cloud/pubsub/package.json'));

function gaxDir(): string {
  const main = createRequire(join(PUBSUB_DIR, 'package.json')).resolve('google-gax');
  return main.slice(0, main.lastIndexOf(`${sep}build${sep}`));
}

interface Held {
  readonly id: string;
  readonly data: Buffer;
  readonly attributes: Record<string, string>;
  ackId: string;
  deadline: number;
  attempts: number;
}

export async function startPubsubSubscriber(): Promise<FakeSubscriber> {
  const definition = protoLoader.loadSync('google/pubsub/v1/pubsub.proto', {
    includeDirs: [join(PUBSUB_DIR, 'build', 'protos'), join(gaxDir(), 'build', 'protos')],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    google: { pubsub: { v1: { Subscriber: { service: grpc.ServiceDefinition } } } };
  };
  const subs = new Map<string, { ackDeadline: number; messages: Held[] }>();
  const calls: string[] = [];
  const failures = new Map<string, { code: grpc.status; times: number }>();
  const heldAcks: (() => void)[] = [];
  let holding = false;
  let ids = 0;
  let acks = 0;

  function failing(method: string): grpc.ServiceError | undefined {
    const f = failures.get(method);
    if (!f || f.times <= 0) return undefined;
    f.times--;
    return Object.assign(new Error('failing as the test asked'), {
      code: f.code,
      details: 'failing as the test asked',
      metadata: new grpc.Metadata(),
    });
  }

  const notFound = (name: string): grpc.ServiceError =>
    Object.assign(new Error('not found'), {
      code: grpc.status.NOT_FOUND,
      details: `Resource not found (resource=${name}).`,
      metadata: new grpc.Metadata(),
    });

  const server = new grpc.Server();
  server.addService(loaded.google.pubsub.v1.Subscriber.service, {
    Pull(
      call: grpc.ServerUnaryCall<{ subscription: string; max_messages: number }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      calls.push('Pull');
      const err = failing('Pull');
      if (err) return callback(err);
      const sub = subs.get(call.request.subscription);
      if (!sub) return callback(notFound(call.request.subscription));
      const started = Date.now();
      const attempt = (): void => {
        if (call.cancelled) return;
        const now = Date.now();
        const ready = sub.messages.filter((m) => m.deadline <= now).slice(0, call.request.max_messages || 1);
        // As the service does without return_immediately: wait a little for messages.
        if (ready.length === 0 && now - started < 500) {
          setTimeout(attempt, 25);
          return;
        }
        callback(null, {
          received_messages: ready.map((m) => {
            m.deadline = now + sub.ackDeadline * 1000;
            m.ackId = `ack-${++acks}`;
            m.attempts++;
            return {
              ack_id: m.ackId,
              message: { data: m.data, attributes: m.attributes, message_id: m.id },
              delivery_attempt: m.attempts,
            };
          }),
        });
      };
      attempt();
    },
    Acknowledge(
      call: grpc.ServerUnaryCall<{ subscription: string; ack_ids: string[] }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      calls.push('Acknowledge');
      const err = failing('Acknowledge');
      if (err) return callback(err);
      if (holding) {
        heldAcks.push(() => callback(notFound('held')));
        return;
      }
      const sub = subs.get(call.request.subscription);
      if (!sub) return callback(notFound(call.request.subscription));
      const gone = new Set(call.request.ack_ids);
      sub.messages = sub.messages.filter((m) => !gone.has(m.ackId));
      callback(null, {});
    },
    ModifyAckDeadline(
      call: grpc.ServerUnaryCall<{ subscription: string; ack_ids: string[]; ack_deadline_seconds: number }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      calls.push('ModifyAckDeadline');
      const sub = subs.get(call.request.subscription);
      if (!sub) return callback(notFound(call.request.subscription));
      const now = Date.now();
      for (const m of sub.messages)
        if (call.request.ack_ids.includes(m.ackId)) m.deadline = now + call.request.ack_deadline_seconds * 1000;
      callback(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    host: `127.0.0.1:${port}`,
    createSubscription(name, ackDeadlineSeconds = 10) {
      subs.set(name, { ackDeadline: ackDeadlineSeconds, messages: [] });
    },
    publish(subscription, data, attributes = {}) {
      const sub = subs.get(subscription);
      if (!sub) throw new Error(`no subscription ${subscription}`);
      const id = String(++ids);
      sub.messages.push({ id, data: Buffer.from(data, 'utf8'), attributes, ackId: '', deadline: 0, attempts: 0 });
      return id;
    },
    remaining: (subscription) => (subs.get(subscription)?.messages ?? []).map((m) => m.id),
    calls,
    failNext(method, code, times) {
      failures.set(method, { code, times });
    },
    holdAcks() {
      holding = true;
    },
    releaseAcks() {
      holding = false;
      for (const fail of heldAcks.splice(0)) fail();
    },
    heldAcks: () => heldAcks.length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const fail of heldAcks.splice(0)) fail();
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
}
