/**
 * Typed errors of the repo log, so callers branch on `instanceof` instead of
 * matching messages.
 */

/** A log file holds bytes that are not a valid frame where one must be. */
export class LogCorruptError extends Error {
  override name = 'LogCorruptError';
  constructor(
    message: string,
    /** The segment file concerned. */
    readonly file: string,
    /** Byte position of the bad frame inside the file. */
    readonly position: number,
  ) {
    super(`${message} (${file} @ ${position})`);
  }
}

/** The log (or the whole store) was closed; no further appends or reads. */
export class LogClosedError extends Error {
  override name = 'LogClosedError';
}

/**
 * A write or fsync failed. After a failed fsync the kernel may have dropped
 * the dirty pages, so the log refuses further appends instead of guessing
 * what reached the disk; reopening recovers from what is on disk.
 */
export class LogFailedError extends Error {
  override name = 'LogFailedError';
}

/** The caller passed a log key that is not a safe relative path. */
export class InvalidLogKeyError extends Error {
  override name = 'InvalidLogKeyError';
}

/** An appended line contains '\n', which would break the one-point-per-line framing. */
export class InvalidLineError extends Error {
  override name = 'InvalidLineError';
}
