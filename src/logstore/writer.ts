import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { ApiError, type ErrorCode } from '../errors.ts';
import { startWorker } from '../services/worker-entry.ts';
import { FairQueue } from './fair-queue.ts';
import type { WriteReply, WriteRequest, WriteValue } from './write-worker.ts';

/** A request without its id (the writer numbers them). */
export type WriteJob = WriteRequest extends infer R ? R extends { id: number } ? Omit<R, 'id'> : never : never;

export interface WriterOptions {
  /** Writer threads (default 2). */
  size?: number;
  /** Data writes (insert, ingest) one account may have waiting beyond those running (default 16). */
  queuePerAccount?: number;
}

interface Pending {
  account: string;
  msg: WriteRequest;
  resolve: (v: WriteValue) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Pending | undefined;
  /** Files this thread may hold open (a superset: its own LRU closes some). */
  files: Set<string>;
}

/** How long close() lets queued writes finish before failing the rest (default 30 s). */
const CLOSE_WAIT_MS = 30_000;

/**
 * Runs every change to the log repo files on a few writer threads
 * (write-worker.ts), so that indexing a batch (0.3-1 s for 20,000 documents)
 * never holds the event loop, and one account's batches never hold another's.
 *
 * Order: the jobs of one file run one at a time in the order they were
 * posted (a write queued before a delete runs before it, a schema update
 * before the writes converted against it). A file stays open on the thread
 * that wrote it last and goes there again when that thread is free; when
 * another thread takes it, the old one is told to close it (messages to a
 * thread keep their order, so it closes it before any later job and never
 * writes with a stale layout). A connection left on a file that another
 * thread deleted meanwhile is harmless: SQLite neither checkpoints nor
 * removes the WAL when it closes a file that was unlinked (decision 015,
 * amendment 3).
 *
 * Fairness: jobs of different accounts are taken round-robin (fair-queue.ts,
 * as for queries), an account runs at most `size - 1` jobs at once (so with
 * two threads or more one is always left to the others), and keeps at most
 * `queuePerAccount` data writes waiting (E8113 beyond).
 *
 * A thread starts with the first job; when one dies (crash, `kill()`), the
 * job it was running fails with E8004 (its transaction never committed) and
 * the next job starts a new one.
 */
export class LogWriter {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: FairQueue<Pending>;
  /** Files with a job running: their next job waits for it. */
  private readonly busy = new Set<string>();
  /** The thread that wrote each file last (it holds the file open). */
  private readonly home = new Map<string, Slot>();
  private nextId = 1;
  private closed = false;
  private drained: (() => void) | undefined;
  /** Writer threads lost while running a job since start. */
  crashes = 0;

  constructor(opts: WriterOptions = {}) {
    this.size = Math.max(1, opts.size ?? 2);
    this.queue = new FairQueue(Math.max(1, this.size - 1), Math.max(0, opts.queuePerAccount ?? 16));
  }

  /** Data writes one account may have waiting; mutable so tests (and operators through the REPL) can tighten it. */
  get queuePerAccount(): number {
    return this.queue.queuePerAccount;
  }

  set queuePerAccount(n: number) {
    this.queue.queuePerAccount = n;
  }

  /**
   * Runs a job on a writer thread; resolves with its answer once committed.
   * A data write (insert, ingest) of an account whose queue is full rejects
   * with E8113; creates, schema updates, deletes and retention are never refused.
   */
  run<T extends WriteValue>(job: WriteJob): Promise<T> {
    if (this.closed) return Promise.reject(new ApiError('E8004', 'the log store is shutting down; the write was not made'));
    // Files live under <dir>/<account>/: the account is the file's folder.
    const account = path.basename(path.dirname(job.file));
    if ((job.kind === 'insert' || job.kind === 'ingest') && this.queue.full(account)) {
      return Promise.reject(new ApiError('E8113', `too many log writes queued: this account already has ${this.queue.queued(account).length} waiting; retry when one finishes`));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push(account, { account, msg: { ...job, id: this.nextId++ } as WriteRequest, resolve: resolve as (v: WriteValue) => void, reject });
      this.pump();
    });
  }

  /** True while a job of this kind (insert, expire, ...) runs on one of the threads. */
  runs(kind: WriteRequest['kind']): boolean {
    return this.slots.some((s) => s.job?.msg.kind === kind);
  }

  /** Jobs queued or running. */
  get depth(): number {
    return this.queue.size + this.slots.filter((s) => s.job).length;
  }

  /** Terminates the threads as a crash would (tests); their running jobs fail with E8004, the next ones start new threads. */
  async kill(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  /**
   * Stops taking jobs, lets the queued and running ones finish (at most
   * `waitMs`), then fails what is left and ends the threads.
   */
  async close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    this.closed = true;
    if (this.depth > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => { this.drained = r; }),
        new Promise<void>((r) => { timer = setTimeout(r, waitMs); }),
      ]);
      clearTimeout(timer);
    }
    const gone = new ApiError('E8004', 'the log store shut down before the write was made');
    for (const p of this.queue.clear()) p.reject(gone);
    const slots = this.slots.splice(0);
    for (const s of slots) s.job?.reject(gone);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const slot: Slot = { worker: startWorker(import.meta.url, 'write-worker'), job: undefined, files: new Set() };
    slot.worker.unref();
    slot.worker.on('message', (r: WriteReply) => {
      if (r.id < 0) return; // a close
      const job = slot.job;
      if (!this.slots.includes(slot) || !job || job.msg.id !== r.id) return;
      this.finish(slot);
      if (r.ok) job.resolve(r.value);
      else if (r.code) {
        const e = new ApiError(r.code as ErrorCode);
        e.message = r.message;
        job.reject(e);
      } else job.reject(new ApiError('E8004', `log store write failed: ${r.message}`));
      this.pump();
    });
    const lost = (err: Error): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      // Its connections died with it: the files it held open may go to any thread.
      for (const [file, s] of this.home) if (s === slot) this.home.delete(file);
      const job = slot.job;
      if (job) {
        this.finish(slot);
        this.crashes++;
        job.reject(new ApiError('E8004', `the log store's writer thread stopped during this write (${err.message}); nothing of it was stored, retry`));
      }
      this.pump();
    };
    slot.worker.on('error', lost);
    slot.worker.on('exit', (code) => lost(new Error(`exit code ${code}`)));
    this.slots.push(slot);
    return slot;
  }

  private finish(slot: Slot): void {
    const job = slot.job!;
    slot.job = undefined;
    this.busy.delete(job.msg.file);
    this.queue.done(job.account);
  }

  /** A job may start on `slot` when no job of its file runs and its file's home thread is not free to take it instead. */
  private fits(p: Pending, slot: Slot): boolean {
    const file = p.msg.file;
    if (this.busy.has(file)) return false;
    const home = this.home.get(file);
    return !home || home === slot || home.job !== undefined || !this.slots.includes(home);
  }

  /** The oldest waiting job that fits `slot` among the first job of each file (only those may start). */
  private firstFit(queue: readonly Pending[], slot: Slot): number {
    const seen = new Set<string>();
    return queue.findIndex((p) => {
      const first = !seen.has(p.msg.file);
      seen.add(p.msg.file);
      return first && this.fits(p, slot);
    });
  }

  private pump(): void {
    // Every thread starts with the first job, so a second account never waits for one to start (~1 s under tsx).
    while (this.queue.size > 0 && this.slots.length < this.size) this.spawn();
    for (let moved = true; moved;) {
      moved = false;
      for (const slot of this.slots) {
        if (slot.job) continue;
        const next = this.queue.take((q) => this.firstFit(q, slot));
        if (!next) continue;
        this.dispatch(slot, next.job);
        moved = true;
      }
    }
    if (this.depth === 0) this.drained?.();
  }

  private dispatch(slot: Slot, p: Pending): void {
    const file = p.msg.file;
    slot.job = p;
    this.busy.add(file);
    // Other threads that may hold the file drop it before any later job of theirs.
    for (const s of this.slots) {
      if (s === slot || !s.files.delete(file)) continue;
      s.worker.postMessage({ id: -1, kind: 'close', file } satisfies WriteRequest);
    }
    if (p.msg.kind === 'delete') {
      slot.files.delete(file);
      this.home.delete(file);
    } else {
      slot.files.add(file);
      this.home.set(file, slot);
    }
    try {
      slot.worker.postMessage(p.msg);
    } catch (err) {
      // A value structured clone cannot copy: this job fails, the thread goes on.
      this.finish(slot);
      p.reject(new ApiError('E8004', `log store write failed: ${(err as Error).message}`));
      queueMicrotask(() => this.pump());
    }
  }
}
