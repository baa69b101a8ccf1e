/**
 * Typed errors. Each has a stable string `code` (tests assert it, never the
 * text) and the HTTP status the API answers with. `fields` carries the
 * Postoffice error body: field name -> reasons.
 */
export type FieldErrors = Record<string, string[]>;

export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    readonly fields: FieldErrors = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

/** 400 (or the given status) with one or more fields explained. */
export class ValidationError extends AppError {
  constructor(fields: FieldErrors, statusCode = 400, code = 'validation_failed') {
    super(
      code,
      statusCode,
      Object.entries(fields)
        .map(([f, r]) => `${f} ${r.join(', ')}`)
        .join('; '),
      fields,
    );
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends AppError {
  constructor(code: string, field: string, message = 'not found') {
    super(code, 404, `${field} ${message}`, { [field]: [message] });
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends AppError {
  constructor(code: string, field: string, message = 'has already been taken') {
    super(code, 409, `${field} ${message}`, { [field]: [message] });
    this.name = 'ConflictError';
  }
}

/** Redis is unreachable or too slow: the client may try again (503 with Retry-After). */
export class UnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', 503, message, { redis: [message] }, options);
    this.name = 'UnavailableError';
  }
}

/** A bad environment: every problem, one per line, each naming the variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Business failures returned by Lua scripts as small negative numbers: the
 * one table of them. Each code has one meaning, one `code` and one HTTP
 * status; a script's header (`lua/*.lua`) says which codes it returns.
 */
export const SCRIPT_CODES = {
  /** A message, publisher or source names a topic that does not exist (400 on `topic`). */
  '-1': () => new ValidationError({ topic: ['is invalid'] }, 400, 'topic_not_found'),
  '-2': () => new ConflictError('publisher_exists', 'target'),
  '-3': () => new NotFoundError('publisher_not_found', 'id', 'publisher not found'),
  '-4': () => new ConflictError('topic_exists', 'name'),
  '-5': () => new ConflictError('publisher_busy', 'id', 'was changed concurrently, try again'),
  '-6': () =>
    new ConflictError('lease_stale', 'token', 'is not a current lease (expired, settled, or given to another worker)'),
  '-7': () =>
    new ConflictError(
      'topic_has_publishers',
      'name',
      'has publishers: delete them first (deleting a topic deletes its messages)',
    ),
  /** The topic a request acts on (its name in the path: update, delete) does not exist (404 on `name`). */
  '-8': () => new NotFoundError('no_such_topic', 'name', 'topic not found'),
  '-9': () =>
    new ValidationError(
      { 'idempotency-key': ['was used by a different request (another route, topic or body) in the last 24 hours'] },
      422,
      'idempotency_key_reused',
    ),
  '-10': () =>
    new NotFoundError(
      'scheduled_message_released',
      'id',
      'was released into its topic already (it was due): it is an ordinary message now, see GET /api/messages/:id, and can no longer be cancelled',
    ),
  '-11': () => new NotFoundError('scheduled_message_not_found', 'id', 'scheduled message not found'),
  '-20': () =>
    new ConflictError(
      'topic_has_sources',
      'name',
      'has sources: delete them first (deleting a topic deletes its messages)',
    ),
  '-21': () => new NotFoundError('source_not_found', 'id', 'source not found'),
  '-22': () => new ConflictError('source_busy', 'id', 'was changed concurrently, try again'),
} as const satisfies Record<string, () => AppError>;

export type ScriptCode = keyof typeof SCRIPT_CODES;

/** An optimistic update that lost a race: the caller reads again, and throws `scriptError` of it when it gives up. */
export const PUBLISHER_BUSY = -5;
export const SOURCE_BUSY = -22;

/** The typed error of a script's negative code (`script_failed`, a 500, for a code the table does not have). */
export function scriptError(code: number): AppError {
  const make = SCRIPT_CODES[String(code) as ScriptCode] as (() => AppError) | undefined;
  return make ? make() : new AppError('script_failed', 500, `script returned unknown code ${code}`);
}

/** Throws the typed error when a script answered with a negative code; returns the result otherwise. */
export function checkScriptResult<T>(result: T): T {
  if (typeof result === 'number' && result < 0) throw scriptError(result);
  return result;
}
