/**
 * The offline scheduler: one timer for all jobs (armed for the earliest next
 * batch), a serial queue per job (batches of a job run oldest first, one at
 * a time), a server-wide pool bounding concurrent runs (a freed slot goes to
 * the account served longest ago), and the run
 * lifecycle in the runs table (Ready -> Running -> Successful | Failed |
 * Canceled). The clock is injectable so tests drive schedules without sleeps.
 */
import type { FastifyBaseLogger } from 'fastify';
import { ApiError } from '../errors.ts';
import { FairSlots } from '../services/fair-slots.ts';
import { parseCrontab, parseLoop } from './cron.ts';
import type { JobService } from './jobs.ts';
import { RunCancelled, RunControl, RunFailure, type JobRunner } from './runner.ts';
import type { JobRow, OfflineStore, RunRow } from './store.ts';

/** Time source and timers; the system clock in production, a manual one in tests. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): { cancel(): void };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** setTimeout cannot wait longer than ~24.8 days; the timer re-arms itself after a day. */
const MAX_WAIT = 86_400_000;
/** A back-to-back loop job waits this long after a failed run, so a job with no files does not spin. */
const LOOP_RETRY_MS = 1000;
/** Most batches one backfill may add. */
const MAX_BACKFILL = 10_000;

const key = (account: string, job: string): string => `${account}\u0000${job}`;

interface Running {
  runId: number;
  control: RunControl;
  done: Promise<void>;
}

export interface SchedulerOptions {
  store: OfflineStore;
  jobs: JobService;
  runner: JobRunner;
  timezone: string;
  slots: number;
  clock?: Clock;
  log?: FastifyBaseLogger;
}

/** Offline counters and queue as /metrics shows them (read at scrape time). */
export interface SchedulerMetrics {
  /** Runs that reached a final status since the process started, per job and status. */
  finished: Array<{ account: string; job: string; status: string; runs: number }>;
  /** Batches waiting for a pool slot or behind their job's previous batch. */
  queued: number;
  /** Runs executing now. */
  running: number;
}

export class Scheduler {
  private readonly store: OfflineStore;
  private readonly clock: Clock;
  /** Server-wide run slots, handed out fairly across accounts. */
  private readonly pool: FairSlots;
  /** Next batch time of each scheduled (crontab / loop) job. */
  private readonly next = new Map<string, { account: string; job: string; at: number }>();
  private readonly queues = new Map<string, Promise<void>>();
  private readonly running = new Map<string, Running>();
  private timer?: { cancel(): void };
  private armedFor = Infinity;
  private pending = 0;
  /** Runs ended since start, by account/job/status (metrics). */
  private readonly finished = new Map<string, { account: string; job: string; status: string; runs: number }>();
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly opts: SchedulerOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.pool = new FairSlots(opts.slots);
  }

  /** Marks runs cut off by a crash as Failed and schedules every job. */
  start(): void {
    const n = this.store.failInterrupted(this.clock.now());
    if (n) this.opts.log?.warn({ runs: n }, 'offline runs interrupted by a restart marked Failed');
    for (const j of this.store.allJobs()) this.reschedule(j.account, j);
  }

  /** (Re)computes the next batch of a job after create, replace, start, stop or restart. */
  reschedule(account: string, job: JobRow | undefined): void {
    if (!job) return;
    const k = key(account, job.name);
    this.next.delete(k);
    if (job.paused || this.closed) return this.arm();
    const s = job.spec.scheduler;
    const now = this.clock.now();
    let at: number | undefined;
    if (s.type === 'crontab') at = parseCrontab(s.spec?.crontab ?? '', this.opts.timezone).next(now);
    else if (s.type === 'loop') {
      const interval = parseLoop(s.spec?.loop);
      const last = this.store.lastBatchTime(account, job.name);
      if (interval === 0) at = this.running.has(k) || this.queues.has(k) ? undefined : now;
      else at = last === undefined ? now : Math.max(now, last + interval);
    }
    if (at !== undefined) this.next.set(k, { account, job: job.name, at });
    this.arm();
  }

  /** Removes a job (deleted): no more batches; its running run is cancelled. */
  async forget(account: string, job: string): Promise<void> {
    this.next.delete(key(account, job));
    for (const [k, f] of this.finished) if (f.account === account && f.job === job) this.finished.delete(k);
    this.arm();
    const r = this.running.get(key(account, job));
    if (r) {
      r.control.cancel();
      await r.done;
    }
  }

  private arm(): void {
    let min = Infinity;
    for (const e of this.next.values()) if (e.at < min) min = e.at;
    if (min === this.armedFor && this.timer) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.armedFor = min;
    if (min === Infinity || this.closed) return;
    this.timer = this.clock.setTimer(() => this.tick(), Math.min(MAX_WAIT, Math.max(0, min - this.clock.now())));
  }

  private tick(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.clock.now();
    // All batches due now are added in one transaction (one fsync), then dispatched.
    const due: Array<{ account: string; job: string; at: number }> = [];
    for (const [k, e] of [...this.next]) {
      if (e.at > now) continue;
      const job = this.store.getJob(e.account, e.job);
      if (!job || job.paused) {
        this.next.delete(k);
        continue;
      }
      due.push({ account: e.account, job: job.name, at: e.at });
      const s = job.spec.scheduler;
      let at: number | undefined;
      if (s.type === 'crontab') at = parseCrontab(s.spec?.crontab ?? '', this.opts.timezone).next(Math.max(e.at, now));
      else {
        const interval = parseLoop(s.spec?.loop);
        // A batch far behind does not cause a burst of catch-up runs: the next one is due now.
        at = interval === 0 ? undefined : e.at + interval <= now ? now + interval : e.at + interval;
      }
      if (at === undefined) this.next.delete(k);
      else this.next.set(k, { ...e, at });
    }
    const runs = this.store.tx(() => due.map((d) => this.store.addRun(d.account, d.job, d.at, {}, now)));
    runs.forEach((r, i) => this.dispatch(due[i]!.account, due[i]!.job, r.runId));
    this.arm();
  }

  /** Adds a batch (state Ready) and queues it behind the job's other batches. */
  enqueue(account: string, job: string, batchTime: number, params: Record<string, string>): RunRow {
    const run = this.store.addRun(account, job, batchTime, params, this.clock.now());
    this.dispatch(account, job, run.runId);
    return run;
  }

  private dispatch(account: string, job: string, runId: number): void {
    const k = key(account, job);
    this.pending++;
    const prev = this.queues.get(k) ?? Promise.resolve();
    const p = prev.then(() => this.execute(account, job, runId)).catch((err: unknown) => {
      this.opts.log?.error({ error: err, job, runId }, 'offline run bookkeeping failed');
    }).finally(() => {
      if (this.queues.get(k) === p) this.queues.delete(k);
      if (--this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
    this.queues.set(k, p);
  }

  private async execute(account: string, jobName: string, runId: number): Promise<void> {
    const k = key(account, jobName);
    let run = this.store.getRun(account, jobName, runId);
    if (!run || run.status !== 'Ready' || this.closed) return;
    const release = await this.pool.acquire(account);
    const control = new RunControl();
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    this.running.set(k, { runId, control, done });
    let status: RunRow['status'] = 'Failed';
    try {
      // A batch that waited for its slot through a shutdown stays Ready (failed as such at the next start).
      if (this.closed) return;
      const job = this.store.getJob(account, jobName);
      run = this.store.getRun(account, jobName, runId);
      if (!job || !run || run.status !== 'Ready') return;
      this.store.markRunning(account, jobName, runId, this.clock.now());
      let message: string;
      try {
        message = await this.opts.runner.execute(account, job, run, control);
        status = 'Successful';
      } catch (err) {
        if (err instanceof RunCancelled) status = 'Canceled';
        else if (!(err instanceof RunFailure)) this.opts.log?.error({ error: err, job: jobName, runId }, 'offline run failed unexpectedly');
        message = err instanceof RunCancelled || err instanceof RunFailure ? err.message : `internal error: ${(err as Error).message}`;
        if (status === 'Canceled' && this.closed) {
          status = 'Failed';
          message = 'the server shut down during this run; rerun it to try again';
        }
      }
      const durable = this.store.finishRun(account, jobName, runId, { status, endTime: this.clock.now(), message });
      this.countFinished(account, jobName, status);
      // The slot goes to the next run while this status is synced along with those of the runs ending with it.
      this.running.delete(k);
      release();
      await durable;
      // Dependents start only from a success that survives a crash.
      if (status === 'Successful' && !this.closed) this.triggerDependents(account, jobName, run);
      if (job.spec.scheduler.type === 'loop' && parseLoop(job.spec.scheduler.spec?.loop) === 0 && !this.closed) {
        const cur = this.store.getJob(account, jobName);
        if (cur && !cur.paused) {
          this.next.set(k, { account, job: jobName, at: this.clock.now() + (status === 'Successful' ? 0 : LOOP_RETRY_MS) });
          this.arm();
        }
      }
    } finally {
      if (this.running.get(k)?.control === control) this.running.delete(k);
      release();
      finish();
    }
  }

  /** Depend jobs run after each successful run of their upstream, with its batch time and params. */
  private triggerDependents(account: string, job: string, run: RunRow): void {
    for (const name of this.store.jobsUsing(account, 'job', job)) {
      const d = this.store.getJob(account, name);
      if (d && !d.paused && d.spec.scheduler.type === 'depend') this.enqueue(account, name, run.batchTime, run.params);
    }
  }

  /** actions/start: resumes the schedule and runs a batch now with `params` over the defaults. */
  startJob(account: string, job: JobRow, params: Record<string, string>): RunRow {
    const eff = this.opts.jobs.effective(account, job);
    for (const name of Object.keys(params)) {
      if (!eff.params.some((p) => p.name === name)) throw new ApiError('E18621', `the job has no param "${name}" (params: ${eff.params.map((p) => p.name).join(', ') || 'none'})`);
    }
    this.store.setPaused(account, job.name, false);
    const run = this.enqueue(account, job.name, this.clock.now(), params);
    if (job.spec.scheduler.type !== 'loop' || parseLoop(job.spec.scheduler.spec?.loop) !== 0) this.reschedule(account, this.store.getJob(account, job.name));
    return run;
  }

  /** actions/stop: pauses the schedule, drops queued batches and cancels the running one. */
  async stopJob(account: string, job: string): Promise<void> {
    this.store.setPaused(account, job, true);
    this.next.delete(key(account, job));
    this.arm();
    const hist = this.store.history(account, job, { status: 'Ready', sortBy: 'runId', desc: false, page: 1, size: 100_000 });
    for (const r of hist.runs) {
      this.store.updateRun(account, job, r.runId, { status: 'Canceled', endTime: this.clock.now(), message: 'cancelled before it started (job stopped)' });
      this.countFinished(account, job, 'Canceled');
    }
    const r = this.running.get(key(account, job));
    if (r) {
      r.control.cancel();
      await r.done;
    }
  }

  /** Stops one running batch. */
  async stopRun(account: string, job: string, runId: number): Promise<{ preStatus: string; postStatus: string }> {
    const run = this.store.getRun(account, job, runId);
    if (!run) throw new ApiError('E18624', `job ${job} has no run ${runId}`);
    if (run.status === 'Cancelling' || run.status === 'Restarting') throw new ApiError('E18662', `run ${runId} is ${run.status}`);
    const r = this.running.get(key(account, job));
    if (run.status !== 'Running' || !r || r.runId !== runId) throw new ApiError('E18626', `run ${runId} is ${run.status}; only a Running batch can be stopped`);
    this.store.updateRun(account, job, runId, { status: 'Cancelling' });
    r.control.cancel();
    await r.done;
    return { preStatus: 'Running', postStatus: this.store.getRun(account, job, runId)?.status ?? 'Canceled' };
  }

  /** Re-executes a finished batch with its own batch time and params. */
  rerun(account: string, job: string, runId: number): { preStatus: string; postStatus: string; rerunCount: number } {
    const run = this.store.getRun(account, job, runId);
    if (!run) throw new ApiError('E18624', `job ${job} has no run ${runId}`);
    if (run.status === 'Cancelling' || run.status === 'Restarting') throw new ApiError('E18662', `run ${runId} is ${run.status}`);
    if (run.status !== 'Successful' && run.status !== 'Failed' && run.status !== 'Canceled') {
      throw new ApiError('E18649', `run ${runId} is ${run.status}; only Successful, Failed or Canceled batches can be rerun (stop a Running one first)`);
    }
    const rerunCount = run.rerunCount + 1;
    this.store.updateRun(account, job, runId, { status: 'Ready', startTime: null, endTime: null, message: '', rerunCount });
    this.dispatch(account, job, runId);
    return { preStatus: run.status, postStatus: 'Ready', rerunCount };
  }

  /** Every batch time the schedule would have had in [from, to], queued oldest first. */
  backfill(account: string, job: JobRow, from: number, to: number): RunRow[] {
    const s = this.opts.jobs.effective(account, job).scheduler;
    if (job.spec.scheduler.type === 'depend') throw new ApiError('E18614', 'a depend job follows its upstream: backfill the upstream job instead');
    const times: number[] = [];
    if (s.type === 'crontab') {
      const cron = parseCrontab(s.spec?.crontab ?? '', this.opts.timezone);
      for (let t = cron.next(from - 1); t !== undefined && t <= to; t = cron.next(t)) {
        if (times.length >= MAX_BACKFILL) throw new ApiError('E18614', `the range holds more than ${MAX_BACKFILL} batches`);
        times.push(t);
      }
    } else if (s.type === 'loop' && parseLoop(s.spec?.loop) > 0) {
      const interval = parseLoop(s.spec?.loop);
      if ((to - from) / interval >= MAX_BACKFILL) throw new ApiError('E18614', `the range holds more than ${MAX_BACKFILL} batches`);
      for (let t = from; t <= to; t += interval) times.push(t);
    } else {
      throw new ApiError('E18614', 'backfill needs a crontab or loop (with an interval) schedule');
    }
    return times.map((t) => this.enqueue(account, job.name, t, {}));
  }

  /** The scheduler's clock (history shows a running batch's endTime as now). */
  now(): number {
    return this.clock.now();
  }

  /** Next scheduled batch time of a job (for status views and tests). */
  nextBatch(account: string, job: string): number | undefined {
    return this.next.get(key(account, job))?.at;
  }

  isRunning(account: string, job: string): boolean {
    return this.running.has(key(account, job));
  }

  private countFinished(account: string, job: string, status: string): void {
    const k = `${key(account, job)}\u0000${status}`;
    const f = this.finished.get(k);
    if (f) f.runs++;
    else this.finished.set(k, { account, job, status, runs: 1 });
  }

  /** Finished-run counters and the queue, from memory. */
  metrics(): SchedulerMetrics {
    return { finished: [...this.finished.values()].map((f) => ({ ...f })), queued: Math.max(0, this.pending - this.running.size), running: this.running.size };
  }

  /** Resolves when no batch is queued or running. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops timers and cancels running batches; those runs are marked Failed at the next start only if the process dies first. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.next.clear();
    const running = [...this.running.values()];
    for (const r of running) r.control.cancel();
    await Promise.all(running.map((r) => r.done));
    // Runs that ended just before still wait for their status's fsync, and queued batches for a
    // slot (they return at once now): the store must outlive them all.
    await this.idle();
  }
}
