/** Test support: counting the Redis commands a step runs. */
import { masterNodes, type ScriptClient } from '@postoffice/shared';

/**
 * Commands run on `redis` since the last call (or the server's start), by
 * name, scripts' inner commands included, summed over every master (on a
 * cluster the commands spread over them). Resets the counts.
 */
export async function commandsSince(redis: ScriptClient): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const node of masterNodes(redis)) {
    const info = await node.info('commandstats');
    await node.config('RESETSTAT');
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
    }
  }
  return out;
}

/**
 * Connections subscribed to `channel`, summed over every master (a
 * subscription lives on the node its connection reached). A process that
 * subscribes when it starts waiting for something (a long-polling lease
 * request) shows here once it waits.
 */
export async function subscribers(redis: ScriptClient, channel: string): Promise<number> {
  let count = 0;
  for (const node of masterNodes(redis)) {
    const [, n] = (await node.pubsub('NUMSUB', channel)) as [string, number | string];
    count += Number(n);
  }
  return count;
}
