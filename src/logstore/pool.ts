import type { Worker } from 'node:worker_threads';
import { ApiError, type ErrorCode } from '../errors.ts';
import { timeLimitError } from './search.ts';
import type { QueryReply, QueryRequest } from './query-worker.ts';
import { startWorker } from '../services/worker-entry.ts';
import { FairQueue } from './fair-queue.ts';

/** Time a worker gets past the query's own limit before it is terminated (the in-SQL check failed to stop it). */
const KILL_GRACE_MS = 1_000;

export interface PoolOptions {
  /** Worker threads (default 2). */
  size?: number;
  /** Queries one account may run at once (default size - 1, at least 1). */
  perAccount?: number;
  /** Queries one account may have waiting beyond those running (default 8). */
  queuePerAccount?: number;
}

/** A query without its id (the pool numbers them). */
export type PoolJob = QueryRequest extends infer R ? R extends { id: number } ? Omit<R, 'id'> : never : never;

interface Pending {
  account: string;
  msg: QueryRequest;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Pending | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Runs log queries in a few worker threads so that a slow query never
 * blocks the event loop (pushes, /health, other accounts). Fairness: an
 * account runs at most `perAccount` queries at once (fewer than the pool, so
 * one account cannot occupy every worker) and queues at most
 * `queuePerAccount` more (E8113 beyond); free workers take the next query
 * round-robin over the accounts waiting. The time limit is enforced inside
 * the worker (E8210); a worker still busy `KILL_GRACE_MS` later is
 * terminated and replaced.
 */
export class QueryPool {
  readonly size: number;
  readonly perAccount: number;
  /** Time a worker gets past the query's limit before it is terminated (tests set it below 0 to stand for a stuck step). */
  killGraceMs = KILL_GRACE_MS;
  /** Workers terminated by the backstop since start. */
  kills = 0;
  private readonly slots: Slot[] = [];
  private readonly queue: FairQueue<Pending>;
  private nextId = 1;
  private closed = false;

  constructor(opts: PoolOptions = {}) {
    this.size = Math.max(1, opts.size ?? 2);
    this.perAccount = Math.max(1, opts.perAccount ?? this.size - 1);
    this.queue = new FairQueue(this.perAccount, Math.max(0, opts.queuePerAccount ?? 8));
  }

  /** Queries one account may have waiting; mutable so tests (and operators through the REPL) can tighten it. */
  get queuePerAccount(): number {
    return this.queue.queuePerAccount;
  }

  set queuePerAccount(n: number) {
    this.queue.queuePerAccount = n;
  }

  /** Runs a query for an account; rejects with E8113 when the account's queue is full. */
  run<T>(account: string, job: PoolJob): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the log store is closed'));
    if (this.queue.full(account)) {
      return Promise.reject(new ApiError('E8113', `too many concurrent queries: this account already runs ${this.perAccount} and has ${this.queue.queued(account).length} waiting; retry when one finishes`));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push(account, { account, msg: { ...job, id: this.nextId++ } as QueryRequest, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** Tells every worker to close its connection to a file (the repo is being deleted). */
  forget(file: string): void {
    for (const s of this.slots) s.worker.postMessage({ id: 0, kind: 'close', file } satisfies QueryRequest);
  }

  /** Terminates the workers; queued and running queries fail. */
  close(): void {
    this.closed = true;
    const gone = new Error('the log store is closed');
    for (const p of this.queue.clear()) p.reject(gone);
    for (const s of this.slots) {
      if (s.timer) clearTimeout(s.timer);
      s.job?.reject(gone);
      s.job = undefined;
      void s.worker.terminate();
    }
    this.slots.length = 0;
  }

  private spawn(): Slot {
    const slot: Slot = { worker: startWorker(import.meta.url, 'query-worker'), job: undefined, timer: undefined };
    slot.worker.unref();
    slot.worker.on('message', (r: QueryReply) => {
      if (r.id === 0 || !slot.job || slot.job.msg.id !== r.id) return;
      const job = this.finish(slot);
      if (r.ok) job.resolve(r.value);
      else if (r.code) {
        const e = new ApiError(r.code as ErrorCode);
        e.message = r.message;
        job.reject(e);
      } else job.reject(new Error(r.message));
      this.pump();
    });
    const lost = (err: Error): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      if (slot.job) this.finish(slot).reject(err);
      this.pump();
    };
    slot.worker.on('error', lost);
    slot.worker.on('exit', (code) => lost(new Error(`query worker exited (${code})`)));
    this.slots.push(slot);
    return slot;
  }

  private finish(slot: Slot): Pending {
    const job = slot.job!;
    if (slot.timer) clearTimeout(slot.timer);
    slot.job = undefined;
    slot.timer = undefined;
    this.queue.done(job.account);
    return job;
  }

  private pump(): void {
    if (this.closed) return;
    // All threads start with the first query (lazily: most servers never search), so
    // a second account never waits for a thread to start (~1 s under tsx).
    while (this.queue.size > 0 && this.slots.length < this.size) this.spawn();
    for (;;) {
      let slot = this.slots.find((s) => !s.job);
      if (!slot && this.slots.length >= this.size) return;
      const p = this.queue.take()?.job;
      if (!p) return;
      slot ??= this.spawn();
      this.dispatch(slot, p);
    }
  }

  private dispatch(slot: Slot, p: Pending): void {
    slot.job = p;
    const limitMs = 'limitMs' in p.msg ? p.msg.limitMs : 0;
    slot.timer = setTimeout(() => {
      // The in-SQL deadline did not stop it (a long single step): kill the thread, answer E8210.
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const job = this.finish(slot);
      this.kills++;
      void slot.worker.terminate();
      job.reject(timeLimitError(limitMs));
      this.pump();
    }, Math.max(0, limitMs + this.killGraceMs));
    slot.timer.unref();
    slot.worker.postMessage(p.msg);
  }
}
