/**
 * Group commit for SQLite in WAL mode. A commit made with
 * synchronous=NORMAL is in the WAL file but not yet on disk; fdatasync of
 * the WAL makes it (and every commit before it) durable, exactly what
 * synchronous=FULL would have done at that commit. Here that fdatasync runs
 * on a sync thread instead of blocking the event loop, and commits that
 * ask while one is in flight share the next one: N commits, at most two
 * fsyncs in a row (decision 020).
 *
 * A checkpoint never loses such a commit: with synchronous=NORMAL SQLite
 * syncs the WAL before copying it into the database and the database
 * before reusing the WAL. When the WAL file is gone (the last connection
 * closed and checkpointed), the database file is synced instead.
 */
import { closeSync, openSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { fdatasyncOnThread } from './log/sync-thread.ts';

export class WalSync {
  private inflight?: Promise<void>;
  private queued?: Promise<void>;
  private readonly file: string;
  /** fdatasyncs done so far (for stats and tests). */
  syncs = 0;
  /** False for an in-memory or non-WAL database: commits there use synchronous=FULL. */
  readonly grouped: boolean;

  /** Prepared once: db.pragma() prepares its statement at every call. */
  private readonly readSync: Database.Statement;
  private readonly setters = new Map<number, Database.Statement>();

  constructor(private readonly db: Database.Database) {
    this.readSync = db.prepare('PRAGMA synchronous').pluck();
    const mode = String(db.pragma('journal_mode', { simple: true })).toLowerCase();
    this.grouped = mode === 'wal' && !db.memory;
    this.file = db.name;
  }

  /**
   * Runs `write` (a statement, or a transaction of its own) with
   * synchronous=NORMAL: committed, not yet durable. Without WAL it is a
   * plain synchronous commit.
   */
  write<T>(write: () => T): T {
    if (!this.grouped) return write();
    const prev = this.readSync.get() as number;
    if (prev <= 1) return write(); // already OFF or NORMAL
    this.setSync(1);
    try {
      return write();
    } finally {
      this.setSync(prev);
    }
  }

  /** {@link write}, resolving once the commit is durable. */
  commit(write: () => void): Promise<void> {
    this.write(write);
    return this.grouped ? this.sync() : Promise.resolve();
  }

  private setSync(level: number): void {
    let st = this.setters.get(level);
    if (!st) {
      st = this.db.prepare(`PRAGMA synchronous = ${Math.trunc(level)}`);
      this.setters.set(level, st);
    }
    st.run();
  }

  /** Resolves once everything committed before the call is durable. */
  sync(): Promise<void> {
    // A sync in flight may have started before the caller's commit: wait for the next one.
    if (!this.inflight) return this.start();
    this.queued ??= this.inflight.then(
      () => this.startQueued(),
      () => this.startQueued(),
    );
    return this.queued;
  }

  private startQueued(): Promise<void> {
    this.queued = undefined;
    return this.start();
  }

  private start(): Promise<void> {
    const p = this.fsync();
    const tracked = p.finally(() => {
      if (this.inflight === tracked) this.inflight = undefined;
    });
    this.inflight = tracked;
    // The caller sees the error; the tracking promise must not be an unhandled rejection.
    tracked.catch(() => undefined);
    return p;
  }

  private async fsync(): Promise<void> {
    let fd: number;
    try {
      fd = openSync(`${this.file}-wal`, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fd = openSync(this.file, 'r');
    }
    try {
      this.syncs++;
      await fdatasyncOnThread(fd);
    } finally {
      closeSync(fd);
    }
  }
}
