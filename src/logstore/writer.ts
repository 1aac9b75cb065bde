import type { Worker } from 'node:worker_threads';
import { ApiError, type ErrorCode } from '../errors.ts';
import { startWorker } from '../services/worker-entry.ts';
import type { WriteReply, WriteRequest, WriteValue } from './write-worker.ts';

/** A request without its id (the writer numbers them). */
export type WriteJob = WriteRequest extends infer R ? R extends { id: number } ? Omit<R, 'id'> : never : never;

interface Pending {
  msg: WriteRequest;
  resolve: (v: WriteValue) => void;
  reject: (e: Error) => void;
}

/** How long close() lets queued writes finish before failing the rest (default 30 s). */
const CLOSE_WAIT_MS = 30_000;

/**
 * Runs every change to the log repo files on one writer thread
 * (write-worker.ts), so that indexing a batch (1-2 s for 20,000 documents)
 * never holds the event loop. Jobs run one at a time in the order they were
 * posted: a write queued before a delete runs before it, a schema update
 * before the writes converted against it. The thread starts with the first
 * job; when it dies (crash, `kill()`), the job it was running fails with
 * E8004 (its transaction never committed) and the next job starts a new one.
 */
export class LogWriter {
  private worker: Worker | undefined;
  private readonly queue: Pending[] = [];
  private running: Pending | undefined;
  private nextId = 1;
  private closed = false;
  private drained: (() => void) | undefined;
  /** Writer threads lost while running a job since start. */
  crashes = 0;

  /** Runs a job on the writer thread; resolves with its answer once committed. */
  run<T extends WriteValue>(job: WriteJob): Promise<T> {
    if (this.closed) return Promise.reject(new ApiError('E8004', 'the log store is shutting down; the write was not made'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ msg: { ...job, id: this.nextId++ } as WriteRequest, resolve: resolve as (v: WriteValue) => void, reject });
      this.pump();
    });
  }

  /** The kind of job running now (insert, expire, ...), if any. */
  get busyWith(): WriteRequest['kind'] | undefined {
    return this.running?.msg.kind;
  }

  /** Jobs queued or running. */
  get depth(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  /** Terminates the thread as a crash would (tests); the running job fails with E8004, the next one starts a new thread. */
  kill(): Promise<number> {
    return this.worker?.terminate() ?? Promise.resolve(0);
  }

  /**
   * Stops taking jobs, lets the queued and running ones finish (at most
   * `waitMs`), then fails what is left and ends the thread.
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
    for (const p of this.queue.splice(0)) p.reject(gone);
    const w = this.worker;
    this.worker = undefined;
    if (this.running) {
      this.running.reject(gone);
      this.running = undefined;
    }
    await w?.terminate();
  }

  private spawn(): Worker {
    const w = startWorker(import.meta.url, 'write-worker');
    w.unref();
    w.on('message', (r: WriteReply) => {
      const job = this.running;
      if (w !== this.worker || !job || job.msg.id !== r.id) return;
      this.running = undefined;
      if (r.ok) job.resolve(r.value);
      else if (r.code) {
        const e = new ApiError(r.code as ErrorCode);
        e.message = r.message;
        job.reject(e);
      } else job.reject(new ApiError('E8004', `log store write failed: ${r.message}`));
      this.pump();
    });
    const lost = (err: Error): void => {
      if (w !== this.worker) return;
      this.worker = undefined;
      const job = this.running;
      this.running = undefined;
      if (job) {
        this.crashes++;
        job.reject(new ApiError('E8004', `the log store's writer thread stopped during this write (${err.message}); nothing of it was stored, retry`));
      }
      this.pump();
    };
    w.on('error', lost);
    w.on('exit', (code) => lost(new Error(`exit code ${code}`)));
    return w;
  }

  private pump(): void {
    if (this.running) return;
    const next = this.queue.shift();
    if (!next) {
      this.drained?.();
      return;
    }
    this.running = next;
    this.worker ??= this.spawn();
    try {
      this.worker.postMessage(next.msg);
    } catch (err) {
      // A value structured clone cannot copy: this job fails, the thread goes on.
      this.running = undefined;
      next.reject(new ApiError('E8004', `log store write failed: ${(err as Error).message}`));
      queueMicrotask(() => this.pump());
    }
  }
}
