/**
 * Delivery baseline (a), the limit: no queue at all, an undici Pool posting
 * the same bodies with the same headers at the same concurrency as the
 * publisher, straight to the receiver.
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { serve } from '../lib/child.js';
import { ATTRIBUTES, DELIVERY_HEADERS, deliveredBody, payload } from '../lib/payload.js';

serve(
  {},
  {
    run: async (args) => {
      const target = new URL(args.target as string);
      const count = args.count as number;
      const concurrency = args.concurrency as number;
      const pool = new Pool(target.origin, { keepAliveTimeout: 30_000 });
      let next = 0;
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const res = await pool.request({
            method: 'POST',
            path: target.pathname,
            headers: { ...DELIVERY_HEADERS, 'message-id': randomUUID() },
            body: deliveredBody(i),
          });
          await res.body.dump();
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      await pool.close();
      return { posted: count };
    },
    /** `count` messages in POSTs of `batch` (the body and headers of an http publisher with batch_size). */
    batches: async (args) => {
      const target = new URL(args.target as string);
      const count = args.count as number;
      const batch = args.batch as number;
      const concurrency = args.concurrency as number;
      const pool = new Pool(target.origin, { keepAliveTimeout: 30_000 });
      const attributes = JSON.stringify(ATTRIBUTES);
      let next = 0;
      const worker = async () => {
        while (next < count) {
          const start = next;
          const n = Math.min(batch, count - start);
          next += n;
          const ids: string[] = [];
          let body = '[';
          for (let i = start; i < start + n; i++) {
            const id = `bench.${randomUUID()}`;
            ids.push(id);
            body += `${i > start ? ',' : ''}{"id":"${id}","payload":${JSON.stringify(payload(i))},"attributes":${attributes}}`;
          }
          const res = await pool.request({
            method: 'POST',
            path: target.pathname,
            headers: { ...DELIVERY_HEADERS, 'message-ids': ids.join(',') },
            body: `${body}]`,
          });
          await res.body.dump();
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      await pool.close();
      return { posted: count };
    },
  },
);
