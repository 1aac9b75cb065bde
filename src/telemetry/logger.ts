import pino from 'pino';

/** The process logger: JSON lines on stdout, key/value fields, errors under `error`. */
export function createLogger(level: string): pino.Logger {
  return pino({ level, base: undefined, errorKey: 'error' });
}
