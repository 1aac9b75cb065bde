/**
 * The repo log: an append-only sequence of points per repo, addressed by
 * per-point offsets (0, 1, 2, ...). Points are stored as their validated wire
 * lines (the TAB-separated `key=value` text format, escapes kept), so the log
 * never needs the schema and old data stays readable when a schema grows.
 *
 * Implementations: the embedded segmented log (`segmented.ts`); a NATS
 * JetStream backend can implement the same interface later.
 */

/** When an append is acknowledged relative to fsync. */
export type FsyncPolicy =
  | { mode: 'always' } // fdatasync (group commit) before append() resolves
  | { mode: 'interval'; intervalMs: number } // resolve after write; fsync every intervalMs
  | { mode: 'never' }; // leave flushing to the OS

export interface LogOptions {
  /** Root directory; each repo log lives in its own sub directory. */
  dir: string;
  fsync: FsyncPolicy;
  /** Roll to a new segment file once the active one reaches this size. */
  segmentBytes: number;
  /** Retention: drop whole closed segments whose newest point is older than this (0 = keep). */
  retentionMs: number;
  /** Retention: drop oldest closed segments while the log is bigger than this (0 = keep). */
  retentionBytes: number;
}

export interface AppendResult {
  /** Offset of the first appended point. */
  baseOffset: number;
  /** Offset after the last appended point (= new end of the log). */
  endOffset: number;
}

export interface ReadResult {
  /** Offset of lines[0]; greater than the requested offset when retention dropped older points. */
  from: number;
  /** The stored wire lines, one per point, in offset order. */
  lines: string[];
  /** Append time (ms since epoch) of each line's batch, parallel to `lines`. */
  times: number[];
  /** Offset to ask for next (= from + lines.length). */
  next: number;
}

export interface RepoLog {
  /**
   * Appends the points of one request atomically: after a crash either all of
   * them are readable or none. `lines` must not contain '\n'. Resolves when the
   * points are durable according to the fsync policy; only then are they
   * visible to readers.
   */
  append(lines: readonly string[]): Promise<AppendResult>;
  /**
   * Same as append() for points already encoded: `payload` must be exactly the
   * UTF-8 of `count` lines joined by '\n' (no trailing newline). Lets data push
   * store a validated request body without copying it line by line.
   */
  appendPayload(payload: Buffer, count: number): Promise<AppendResult>;
  /** Reads up to maxPoints points starting at `from` (clamped to the retained range). */
  read(from: number, maxPoints: number): Promise<ReadResult>;
  /** Offset one past the newest durable point. */
  endOffset(): number;
  /** Oldest retained offset. */
  startOffset(): number;
  /** Total bytes on disk. */
  sizeBytes(): number;
  /**
   * Append times (ms since epoch) of the oldest retained and the newest
   * written point; undefined while the log holds none.
   */
  timeRange(): { oldest: number; newest: number } | undefined;
}

export interface LogStore {
  /** Opens (creating when missing) the log of one repo. Cached: same key, same instance. */
  open(key: string): Promise<RepoLog>;
  /** Closes and deletes the log's files. */
  remove(key: string): Promise<void>;
  /** Applies retention to every open log; returns the number of segments dropped. */
  enforceRetention(now?: number): Promise<number>;
  /** Flushes and closes every log. Idempotent. */
  close(): Promise<void>;
}
