/**
 * Delivery baseline (a), the limit: no queue at all, an undici Pool posting
 * the same bodies with the same headers at the same concurrency as the
 * publisher, straight to the receiver.
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { serve } from '../lib/child.js';
import { DELIVERY_HEADERS, deliveredBody } from '../lib/payload.js';

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
  },
);
