import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Paths that never reach a log line. */
export const REDACT = [
  'redisUrl',
  'config.redisUrl',
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'password',
  'secret',
  'token',
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
