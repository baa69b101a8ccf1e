import { pino, type DestinationStream, type LogFn, type Logger } from 'pino';

export type { Logger };

/**
 * Paths that never reach a log line, at any level: the Redis URL (it may hold
 * a password), API tokens, credentials in request and response headers
 * (Authorization, Cookie, Set-Cookie), and secrets wherever an object
 * carrying them is logged (a publisher's webhook signing `secrets`, a login
 * body's `token`), at the top level or one or two levels down.
 */
export const REDACT = [
  'redisUrl',
  'config.redisUrl',
  'apiTokens',
  'config.apiTokens',
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  'password',
  'secret',
  'secrets',
  'token',
  'tokens',
  '*.password',
  '*.secret',
  '*.secrets',
  '*.token',
  '*.tokens',
  '*.*.secret',
  '*.*.secrets',
  '*.*.token',
  // A publisher's target headers (credentials), should a publisher ever be logged whole.
  'publisher.headers',
  '*.publisher.headers',
];

/** Keys each logger binds (its own and its parents'), read once per logger. */
const boundKeys = new WeakMap<object, ReadonlySet<string>>();

function keysBoundTo(logger: Logger): ReadonlySet<string> {
  let keys = boundKeys.get(logger);
  if (!keys) {
    keys = new Set(Object.keys(logger.bindings()));
    boundKeys.set(logger, keys);
  }
  return keys;
}

/**
 * pino writes a child's bindings and the call's object side by side, so a
 * call that repeats a bound field (`{ publisherId }` on a logger bound to
 * it) would write the key twice, which log pipelines that index raw JSON
 * refuse. This `logMethod` hook drops such fields from the call's object:
 * the binding is the one written. Only plain objects are looked at; it runs
 * only for enabled levels.
 */
function dropBoundKeys(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  const first: unknown = args[0];
  if (typeof first === 'object' && first !== null && Object.getPrototypeOf(first) === Object.prototype) {
    const bound = keysBoundTo(this);
    if (bound.size > 0) {
      let copy: Record<string, unknown> | undefined;
      for (const key of Object.keys(first)) {
        if (!bound.has(key)) continue;
        copy ??= { ...(first as Record<string, unknown>) };
        delete copy[key];
      }
      if (copy) args[0] = copy;
    }
  }
  method.apply(this, args);
}

/**
 * pino JSON to stdout (or the given stream), `level` as its label
 * (`"info"`, not 30). Callers make child loggers with their component; a
 * key is never written twice on one line (see `dropBoundKeys`), as long as
 * a child does not bind a key its parent already binds: make siblings from
 * the same parent instead.
 */
export function createLogger(config: { logLevel: string; role?: string }, stream?: DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: config.role ? `postoffice-${config.role}` : 'postoffice' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: { logMethod: dropBoundKeys },
    },
    stream,
  );
}
