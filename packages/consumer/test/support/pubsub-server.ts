/**
 * Test support: a gRPC server on a free port implementing
 * `google.pubsub.v1.Publisher` (Publish and GetTopic) from the proto files
 * shipped inside `@google-cloud/pubsub`, so that the real client can be
 * pointed at it through PUBSUB_EMULATOR_HOST. It records every Publish
 * call and can be told to fail the next calls with a gRPC status.
 */
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface PublishedMessage {
  readonly data: string;
  readonly attributes: Record<string, string>;
}

export interface PublishCall {
  readonly topic: string;
  readonly messages: PublishedMessage[];
}

export interface FakePubsub {
  /** `127.0.0.1:<port>`, for PUBSUB_EMULATOR_HOST. */
  readonly host: string;
  /** Topics that exist (full names); Publish to any other is NOT_FOUND. */
  readonly topics: Set<string>;
  /** Every Publish call that succeeded, in order. */
  readonly calls: PublishCall[];
  /** Every Publish call, failed ones included, with the status answered. */
  readonly attempts: (PublishCall & { code: number })[];
  /** Fails the next `times` Publish calls with `code`. */
  failNext(code: grpc.status, times: number, details?: string): void;
  /** Every message published so far, in order. */
  messages(): PublishedMessage[];
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);
const PUBSUB_DIR = dirname(require.resolve('@google-cloud/pubsub/package.json'));
/** The Pub/Sub protos, and the common Google ones they import (shipped by google-gax, the client's own dependency). */
const PROTO_DIRS = [join(PUBSUB_DIR, 'build', 'protos'), join(gaxDir(), 'build', 'protos')];

function gaxDir(): string {
  const main = createRequire(join(PUBSUB_DIR, 'package.json')).resolve('google-gax');
  return main.slice(0, main.lastIndexOf(`${sep}build${sep}`));
}

interface PublishRequest {
  topic: string;
  messages: { data?: Buffer; attributes?: Record<string, string> }[];
}

export async function startPubsubServer(topics: string[] = []): Promise<FakePubsub> {
  const definition = protoLoader.loadSync('google/pubsub/v1/pubsub.proto', {
    includeDirs: PROTO_DIRS,
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    google: { pubsub: { v1: { Publisher: { service: grpc.ServiceDefinition } } } };
  };
  const known = new Set(topics);
  const calls: PublishCall[] = [];
  const attempts: (PublishCall & { code: number })[] = [];
  let failures: { code: grpc.status; times: number; details: string } | undefined;
  let ids = 0;

  const server = new grpc.Server();
  server.addService(loaded.google.pubsub.v1.Publisher.service, {
    Publish(
      call: grpc.ServerUnaryCall<PublishRequest, unknown>,
      callback: grpc.sendUnaryData<{ message_ids: string[] }>,
    ) {
      const { topic, messages } = call.request;
      const record: PublishCall = {
        topic,
        messages: messages.map((m) => ({
          data: Buffer.from(m.data ?? Buffer.alloc(0)).toString('utf8'),
          attributes: { ...(m.attributes ?? {}) },
        })),
      };
      if (failures && failures.times > 0) {
        failures.times--;
        attempts.push({ ...record, code: failures.code });
        callback({ code: failures.code, details: failures.details });
        return;
      }
      if (!known.has(topic)) {
        attempts.push({ ...record, code: grpc.status.NOT_FOUND });
        callback({ code: grpc.status.NOT_FOUND, details: 'Resource not found (resource=' + topic + ').' });
        return;
      }
      attempts.push({ ...record, code: grpc.status.OK });
      calls.push(record);
      callback(null, { message_ids: record.messages.map(() => String(++ids)) });
    },
    GetTopic(call: grpc.ServerUnaryCall<{ topic: string }, unknown>, callback: grpc.sendUnaryData<{ name: string }>) {
      if (!known.has(call.request.topic)) {
        callback({ code: grpc.status.NOT_FOUND, details: 'Resource not found' });
        return;
      }
      callback(null, { name: call.request.topic });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    host: `127.0.0.1:${port}`,
    topics: known,
    calls,
    attempts,
    failNext(code, times, details = 'failing as the test asked') {
      failures = { code, times, details };
    },
    messages: () => calls.flatMap((c) => c.messages),
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
}
