/**
 * Delivery baseline (b): what a team would write without Postoffice, a
 * BullMQ Queue filled with the same bodies and a Worker at the same
 * concurrency posting each job to the receiver with undici (same agent
 * settings as Postoffice's http target). Job completion is BullMQ's own
 * (one Redis round trip a job, as BullMQ does it).
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Agent, request } from 'undici';
import { serve } from '../lib/child.js';
import { DELIVERY_HEADERS, deliveredBody } from '../lib/payload.js';

const url = new URL(process.env.BENCH_REDIS_URL!);
const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
const queue = new Queue('bench', { connection });
const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
let worker: Worker | undefined;

serve(
  {},
  {
    fill: async (args) => {
      const count = args.count as number;
      for (let start = 0; start < count; start += 1000) {
        const n = Math.min(1000, count - start);
        await queue.addBulk(
          Array.from({ length: n }, (_, k) => ({
            name: 'deliver',
            data: { body: deliveredBody(start + k), id: randomUUID() },
            opts: { removeOnComplete: true, removeOnFail: 1000, attempts: 10 },
          })),
        );
      }
      return { queued: count };
    },
    work: (args) => {
      const target = args.target as string;
      worker = new Worker<{ body: string; id: string }>(
        'bench',
        async (job) => {
          const res = await request(target, {
            method: 'POST',
            dispatcher: agent,
            headers: { ...DELIVERY_HEADERS, 'message-id': job.data.id },
            body: job.data.body,
          });
          await res.body.dump();
          if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
        },
        { connection, concurrency: args.concurrency as number },
      );
      return { started: true };
    },
    close: async () => {
      await worker?.close();
      await queue.close();
      await agent.close();
    },
  },
);
