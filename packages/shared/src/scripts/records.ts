/**
 * The scripts that write topic, publisher and source records (the API's
 * writes; see each `lua/<file>.lua` for what it does).
 */
import { defineScript, done, type ScriptKeys } from './script.js';
import { checkScriptResult, PUBLISHER_BUSY, SOURCE_BUSY } from '../errors.js';

/** An optimistic update's answer: written, or the record changed since it was read (read it again). */
export type UpdateReply = 'updated' | 'changed';

const CREATE_TOPIC_KEYS = ['topic'] as const;
export const createTopic = defineScript<ScriptKeys<typeof CREATE_TOPIC_KEYS>, { readonly topicJson: string }, void>({
  file: 'create-topic',
  keys: CREATE_TOPIC_KEYS,
  args: (a) => [a.topicJson],
  reply: done,
});

const UPDATE_TOPIC_KEYS = ['topic'] as const;
/** Replies with the new topic JSON. */
export const updateTopic = defineScript<ScriptKeys<typeof UPDATE_TOPIC_KEYS>, { readonly changesJson: string }, string>(
  {
    file: 'update-topic',
    keys: UPDATE_TOPIC_KEYS,
    args: (a) => [a.changesJson],
    reply: (raw) => checkScriptResult(raw) as string,
  },
);

const DELETE_TOPIC_KEYS = [
  'topic',
  'publishers',
  'stream',
  'ids',
  'targets',
  'scheduled',
  'scheduledData',
  'outbox',
  'sources',
] as const;
export const deleteTopic = defineScript<ScriptKeys<typeof DELETE_TOPIC_KEYS, 'sources'>, void, void>({
  file: 'delete-topic',
  keys: DELETE_TOPIC_KEYS,
  args: () => [],
  reply: done,
});

const RECORD_RECOVERY_KEYS = ['topic'] as const;
/** Replies whether the topic exists (and the round was recorded). */
export const recordRecovery = defineScript<
  ScriptKeys<typeof RECORD_RECOVERY_KEYS>,
  { readonly roundJson: string; readonly recovered: number },
  boolean
>({
  file: 'record-recovery',
  keys: RECORD_RECOVERY_KEYS,
  args: (a) => [a.roundJson, a.recovered],
  reply: (raw) => raw === 1,
});

const CREATE_PUBLISHER_KEYS = ['topic', 'publishers', 'targets', 'stream'] as const;
export const createPublisher = defineScript<
  ScriptKeys<typeof CREATE_PUBLISHER_KEYS>,
  {
    readonly id: string;
    readonly publisherJson: string;
    /** "type target" */
    readonly uniqueness: string;
    /** Where the group starts: '$' (from now) or '0' (every retained message). */
    readonly start: '$' | '0';
  },
  void
>({
  file: 'create-publisher',
  keys: CREATE_PUBLISHER_KEYS,
  args: (a) => [a.id, a.publisherJson, a.uniqueness, a.start],
  reply: done,
});

const UPDATE_PUBLISHER_KEYS = ['publishers', 'targets'] as const;
/** `changed` (-5): the JSON changed since it was read. */
export const updatePublisher = defineScript<
  ScriptKeys<typeof UPDATE_PUBLISHER_KEYS>,
  {
    readonly id: string;
    readonly readJson: string;
    readonly newJson: string;
    readonly oldUniqueness: string;
    readonly newUniqueness: string;
  },
  UpdateReply
>({
  file: 'update-publisher',
  keys: UPDATE_PUBLISHER_KEYS,
  args: (a) => [a.id, a.readJson, a.newJson, a.oldUniqueness, a.newUniqueness],
  reply: (raw) => (raw === PUBLISHER_BUSY ? 'changed' : (checkScriptResult(raw), 'updated')),
});

const DELETE_PUBLISHER_KEYS = [
  'publishers',
  'targets',
  'stream',
  'retries',
  'attempts',
  'dead',
  'leases',
  'log',
  'notes',
  'ranges',
  'counts',
  'circuit',
] as const;
export const deletePublisher = defineScript<
  ScriptKeys<typeof DELETE_PUBLISHER_KEYS, 'circuit'>,
  { readonly id: string },
  void
>({
  file: 'delete-publisher',
  keys: DELETE_PUBLISHER_KEYS,
  args: (a) => [a.id],
  reply: done,
});

const CREATE_SOURCE_KEYS = ['topic', 'sources'] as const;
export const createSource = defineScript<
  ScriptKeys<typeof CREATE_SOURCE_KEYS>,
  { readonly id: string; readonly sourceJson: string },
  void
>({
  file: 'create-source',
  keys: CREATE_SOURCE_KEYS,
  args: (a) => [a.id, a.sourceJson],
  reply: done,
});

const UPDATE_SOURCE_KEYS = ['sources'] as const;
/** `changed` (-22): the JSON changed since it was read. */
export const updateSource = defineScript<
  ScriptKeys<typeof UPDATE_SOURCE_KEYS>,
  { readonly id: string; readonly readJson: string; readonly newJson: string },
  UpdateReply
>({
  file: 'update-source',
  keys: UPDATE_SOURCE_KEYS,
  args: (a) => [a.id, a.readJson, a.newJson],
  reply: (raw) => (raw === SOURCE_BUSY ? 'changed' : (checkScriptResult(raw), 'updated')),
});
