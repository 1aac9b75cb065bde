/** The LogStore of embedded segmented logs: one directory per repo under LogOptions.dir. */
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InvalidLogKeyError, LogClosedError } from './errors.ts';
import { fsyncDir } from './fsutil.ts';
import { SegmentedLog } from './segmented.ts';
import type { LogOptions, LogStore, RepoLog } from './types.ts';

const MAX_KEY_PARTS = 2;
const MAX_PART_LENGTH = 200;

/**
 * Splits a log key into path segments, refusing anything that could leave
 * the store directory: absolute paths, '.', '..', empty parts, backslashes,
 * NUL and more than one '/'.
 */
export function keyParts(key: string): string[] {
  const parts = key.split('/');
  const bad =
    parts.length > MAX_KEY_PARTS ||
    parts.some(
      (p) => p === '' || p === '.' || p === '..' || p.length > MAX_PART_LENGTH || /[\\\0]/.test(p),
    );
  if (bad) throw new InvalidLogKeyError(`invalid log key ${JSON.stringify(key)}`);
  return parts;
}

function validateOptions(opts: LogOptions): void {
  const positive = (name: string, v: number): void => {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${name} must be > 0, got ${v}`);
  };
  const nonNegative = (name: string, v: number): void => {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${name} must be >= 0, got ${v}`);
  };
  positive('segmentBytes', opts.segmentBytes);
  nonNegative('retentionMs', opts.retentionMs);
  nonNegative('retentionBytes', opts.retentionBytes);
  if (opts.fsync.mode === 'interval') positive('fsync.intervalMs', opts.fsync.intervalMs);
}

export class SegmentedLogStore implements LogStore {
  private readonly logs = new Map<string, Promise<SegmentedLog>>();
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: LogOptions) {
    validateOptions(opts);
  }

  open(key: string): Promise<RepoLog> {
    if (this.closing) return Promise.reject(new LogClosedError('log store is closed'));
    let pending = this.logs.get(key);
    if (!pending) {
      let dir: string;
      try {
        dir = join(this.opts.dir, ...keyParts(key));
      } catch (err) {
        return Promise.reject(err);
      }
      pending = SegmentedLog.open(dir, this.opts.fsync, this.opts.segmentBytes);
      this.logs.set(key, pending);
      // A failed open is not cached, so the next call retries.
      pending.catch(() => {
        if (this.logs.get(key) === pending) this.logs.delete(key);
      });
    }
    return pending;
  }

  async remove(key: string): Promise<void> {
    const dir = join(this.opts.dir, ...keyParts(key));
    const pending = this.logs.get(key);
    this.logs.delete(key);
    if (pending) {
      try {
        await (await pending).close();
      } catch {
        // the files are deleted next; a failed open or final fsync does not matter
      }
    }
    await rm(dir, { recursive: true, force: true });
    try {
      await fsyncDir(dirname(dir));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async enforceRetention(now: number = Date.now()): Promise<number> {
    const { retentionMs, retentionBytes } = this.opts;
    if (retentionMs === 0 && retentionBytes === 0) return 0;
    let dropped = 0;
    for (const pending of [...this.logs.values()]) {
      const log = await pending.catch(() => undefined);
      if (log) dropped += await log.enforceRetention(now, retentionMs, retentionBytes);
    }
    return dropped;
  }

  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    const results = await Promise.allSettled(
      [...this.logs.values()].map(async (pending) => {
        const log = await pending.catch(() => undefined);
        await log?.close();
      }),
    );
    this.logs.clear();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
