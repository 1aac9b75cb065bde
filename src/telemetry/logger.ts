import pino from 'pino';

/** The process logger: JSON lines on stdout (or `dest`), key/value fields, errors under `error`. */
export function createLogger(level: string, dest?: pino.DestinationStream): pino.Logger {
  return pino({ level, base: undefined, errorKey: 'error' }, dest);
}
