/**
 * Scheduled messages: kept in the topic's scheduled set until their time,
 * then moved into the stream by a consumer node (release-scheduled.lua),
 * so they are delivered no earlier than `schedule_at`. A message gets its
 * id when it is scheduled and can be read by it at once.
 *
 * Two steps, each on one hash slot: the topic's script first, then the
 * global due index (`ZADD LT`, early is harmless). A producer that dies
 * between the two leaves the message unindexed; the janitor re-indexes
 * every topic's earliest scheduled message as it visits the topic.
 *
 * Cancelling is one script on the topic's slot: the message leaves the
 * scheduled set unless a release moved it into the stream first. Its entry
 * in the due index is left: early is harmless (a release finds nothing).
 */
import { randomBytes } from 'node:crypto';
import { NotFoundError, parseMessageId, scripts, type Keys, type ScriptClient } from '@postoffice/shared';

/** How far in the past `schedule_at` may be (client clocks differ): such a message is due at once. */
export const SCHEDULE_PAST_TOLERANCE_MS = 30_000;

/** ISO-8601 date and time with an explicit offset (`Z` or `±hh:mm`); a space may stand for the `T`, as Postoffice took it. */
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** The time in ms of an ISO-8601 date-time with offset, or undefined when malformed. */
export function parseIsoWithOffset(text: string): number | undefined {
  if (!ISO_WITH_OFFSET.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** A scheduled message as kept in the topic's scheduled data hash. */
export interface ScheduledData {
  /** Payload JSON. */
  readonly p: string;
  /** Attributes JSON, '' when none. */
  readonly a: string;
  /** The requested time, as sent. */
  readonly at: string;
  readonly created_at: string;
}

export async function scheduleMessage(
  redis: ScriptClient,
  keys: Keys,
  input: {
    topic: string;
    payload: unknown;
    attributes: Readonly<Record<string, string>> | undefined;
    scheduleAt: string;
    dueAt: number;
  },
  now = Date.now(),
): Promise<string> {
  // Given before the message enters its stream: `<topic>.<random>`, found through the topic's id index.
  const id = `${input.topic}.s${randomBytes(12).toString('base64url')}`;
  const tk = keys.topic(input.topic);
  const data: ScheduledData = {
    p: JSON.stringify(input.payload),
    a: input.attributes && Object.keys(input.attributes).length > 0 ? JSON.stringify(input.attributes) : '',
    at: input.scheduleAt,
    created_at: new Date(now).toISOString(),
  };
  await scripts.schedule(
    redis,
    { topic: tk.meta, scheduled: tk.scheduled, scheduledData: tk.scheduledData },
    { id, dueAt: input.dueAt, messageJson: JSON.stringify(data) },
  );
  await redis.zadd(keys.scheduleDue, 'LT', input.dueAt, input.topic);
  return id;
}

/** Most seconds `delay_seconds` may ask for: a year. */
export const MAX_DELAY_SECONDS = 365 * 86_400;

/**
 * Cancels a scheduled message that has not entered its topic yet. Throws
 * `scheduled_message_released` (404) once it has, and
 * `scheduled_message_not_found` (404) for an id that is no scheduled message.
 */
export async function cancelScheduled(redis: ScriptClient, keys: Keys, id: string): Promise<void> {
  const ref = parseMessageId(id);
  if (ref?.topic === undefined || ref.streamId !== undefined)
    throw new NotFoundError('scheduled_message_not_found', 'id', 'scheduled message not found');
  const tk = keys.topic(ref.topic);
  await scripts.cancelScheduled(
    redis,
    { scheduled: tk.scheduled, scheduledData: tk.scheduledData, ids: tk.ids },
    { id },
  );
}
