import { pino, type Logger, type DestinationStream } from 'pino';

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
];

/** pino JSON to stdout (or the given stream). Callers make child loggers with their component. */
export function createLogger(config: { logLevel: string; role?: string }, stream?: DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: config.role ? `postoffice-${config.role}` : 'postoffice' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}
