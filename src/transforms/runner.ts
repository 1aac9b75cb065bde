import type { FastifyBaseLogger } from 'fastify';
import type { GroupCapacity } from '../services/capacity.ts';
import type { RepoLog } from '../storage/log/types.ts';
import type { TransformRow } from '../storage/meta.ts';
import { consumerId, runTransform, type RunDeps, type RunSteps, type TransformProgress } from './execute.ts';
import { INTERVALS, type TransformSpec } from './spec.ts';

export type TransformState = 'running' | 'paused' | 'error' | 'stopped';

export interface TransformStatus {
  state: TransformState;
  lastRunTime: string | null;
  lastError: string | null;
  /** The last run that read points: counts, wall time, and where it went (RunResult.steps). */
  lastRun: { in: number; out: number; ms: number; steps: RunSteps } | null;
  total: { in: number; out: number };
  lag: { points: number; seconds: number };
  /** Points dropped by source retention before this transform read them. */
  skipped: number;
  /** Runs that failed in a row; each doubles the wait before the next (up to an hour). */
  failures: number;
  /** When the next scheduled run starts (null when none is scheduled). */
  nextRunTime: string | null;
}

interface Entry {
  account: string;
  row: TransformRow;
  group: string | null;
  timer?: NodeJS.Timeout;
  inFlight?: Promise<void>;
  lastRunTime: string | null;
  lastError: string | null;
  lastRun: TransformStatus['lastRun'];
  stopped: boolean;
  failures: number;
  nextRunAt?: number;
  /** Runs and failed runs since the process started (for metrics). */
  runs: number;
  failedRuns: number;
}

/** One transform as /metrics shows it (collected at scrape time). */
export interface TransformMetrics {
  account: string;
  repo: string;
  name: string;
  state: TransformState;
  runs: number;
  failedRuns: number;
  /** Epoch ms of the last run that read points or failed; null before one. */
  lastRunTime: number | null;
  lagPoints: number;
}

/** Longest wait between retries of a failing transform (unless its interval is longer). */
const MAX_BACKOFF_MS = 3_600_000;

/**
 * Wait before the next run after `failures` failed runs in a row: the
 * interval, doubled per failure after the first, at most an hour (or the
 * interval, when longer).
 */
export function retryDelay(intervalMs: number, failures: number): number {
  if (failures <= 1) return intervalMs;
  return Math.min(intervalMs * 2 ** Math.min(failures - 1, 20), Math.max(intervalMs, MAX_BACKOFF_MS));
}

const key = (account: string, repo: string, name: string): string => `${account}\u0000${repo}\u0000${name}`;

/**
 * Schedules every transform on its interval, limits concurrency by resource
 * group (its slots; transforms of repos without a group share the default
 * pool), pauses transforms whose group is stopped and keeps their status.
 */
export class TransformRunner {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(
    private readonly deps: RunDeps,
    private readonly opts: { capacity: GroupCapacity; firstRunDelayMs: number; log: FastifyBaseLogger },
  ) {}

  /** Schedules every stored transform (after a restart they resume from their committed offsets). */
  start(): void {
    for (const t of this.deps.meta.allTransforms()) this.add(t.account, t);
  }

  add(account: string, row: TransformRow): void {
    const group = this.deps.meta.getRepo(account, row.repo)?.group ?? null;
    const e: Entry = { account, row, group, lastRunTime: null, lastError: null, lastRun: null, stopped: false, failures: 0, runs: 0, failedRuns: 0 };
    this.entries.set(key(account, row.repo, row.name), e);
    this.schedule(e, this.opts.firstRunDelayMs);
  }

  /** Applies a new spec (interval, code, plugin) from the next run on. */
  update(account: string, row: TransformRow): void {
    const e = this.entries.get(key(account, row.repo, row.name));
    if (!e) return this.add(account, row);
    e.row = row;
    e.lastError = null;
    e.failures = 0;
    this.schedule(e, 0);
    this.sourceChanged(account, row.repo); // drops the stage if the SQL became a plugin
  }

  /** Stops a transform and waits for a run in flight, so its repos can be deleted safely. */
  async remove(account: string, repo: string, name: string): Promise<void> {
    const k = key(account, repo, name);
    const e = this.entries.get(k);
    if (!e) return;
    e.stopped = true;
    clearTimeout(e.timer);
    this.entries.delete(k);
    await e.inFlight;
  }

  /** A transform of `repo` went or changed: frees staged data nobody reads any more. */
  sourceChanged(account: string, repo: string): void {
    this.deps.stages.committed(account, repo).catch((err: unknown) => {
      this.opts.log.warn({ repo, error: err instanceof Error ? err.message : String(err) }, 'freeing staged data failed');
    });
  }

  /** Re-reads a group's state and size; paused transforms resume on their next tick. */
  groupChanged(account: string, group: string): void {
    this.opts.capacity.groupChanged(account, group);
    const g = this.deps.meta.getGroup(account, group);
    for (const e of this.entries.values()) {
      if (e.account === account && e.group === group && g?.state === 'running') this.schedule(e, 0);
    }
  }

  /** Runs a transform now (and waits), outside its schedule. Used by tests and benchmarks. */
  async runNow(account: string, repo: string, name: string): Promise<void> {
    const e = this.entries.get(key(account, repo, name));
    if (!e) throw new Error(`no transform ${repo}/${name}`);
    while (e.inFlight) await e.inFlight;
    await this.tick(e, false);
  }

  private paused(e: Entry): boolean {
    return this.opts.capacity.paused(e.account, e.group);
  }

  private schedule(e: Entry, delayMs: number): void {
    if (this.closed || e.stopped) return;
    clearTimeout(e.timer);
    e.nextRunAt = Date.now() + delayMs;
    e.timer = setTimeout(() => {
      e.nextRunAt = undefined;
      if (e.inFlight) return this.schedule(e, this.intervalMs(e));
      void this.tick(e, true);
    }, delayMs);
    e.timer.unref();
  }

  private intervalMs(e: Entry): number {
    return INTERVALS[(e.row.spec as unknown as TransformSpec).interval] ?? 60_000;
  }

  private async tick(e: Entry, reschedule: boolean): Promise<void> {
    const started = Date.now();
    let more = false;
    const run = (async () => {
      if (this.paused(e)) return;
      const release = await this.opts.capacity.slots(e.account, e.group).acquire();
      try {
        if (e.stopped || this.closed) return;
        e.runs++;
        const r = await runTransform(this.deps, e.account, e.row);
        more = r.more;
        if (r.in > 0) {
          e.lastRunTime = new Date(started).toISOString();
          e.lastRun = { in: r.in, out: r.out, ms: Date.now() - started, steps: r.steps };
        }
        e.lastError = null;
        e.failures = 0;
      } catch (err) {
        e.lastError = err instanceof Error ? err.message : String(err);
        e.failures++;
        e.failedRuns++;
        e.lastRunTime = new Date(started).toISOString();
        this.opts.log.warn({ transform: `${e.row.repo}/${e.row.name}`, error: e.lastError }, 'transform run failed');
      } finally {
        release();
      }
    })();
    e.inFlight = run;
    await run;
    e.inFlight = undefined;
    if (!reschedule) return;
    // Catch up at once when a capped run left points behind; else wait for the next interval.
    // A failing run waits twice as long each time, so a run that fails the
    // same way (an output limit, a timeout) does not redo its work every interval.
    const backoff = retryDelay(this.intervalMs(e), e.failures);
    const wait = more && e.failures === 0 ? 0 : Math.max(0, backoff - (Date.now() - started));
    this.schedule(e, wait);
  }

  /** Status for GET: state, last run, totals and lag. */
  async status(account: string, row: TransformRow): Promise<TransformStatus> {
    const e = this.entries.get(key(account, row.repo, row.name));
    const off = this.deps.meta.getOffset(account, consumerId(row));
    const progress = (off?.state ?? {}) as Partial<TransformProgress>;
    const lag = { points: 0, seconds: 0 };
    const behind = await this.behind(account, row, off?.nextOffset);
    if (behind) {
      lag.points = behind.points;
      if (lag.points > 0) {
        const r = await behind.log.read(behind.next, 1);
        if (r.times[0] !== undefined) lag.seconds = Math.max(0, (Date.now() - r.times[0]) / 1000);
      }
    }
    return {
      state: this.stateOf(e),
      lastRunTime: e?.lastRunTime ?? null,
      lastError: e?.lastError ?? null,
      lastRun: e?.lastRun ?? null,
      total: { in: progress.totalIn ?? 0, out: progress.totalOut ?? 0 },
      lag,
      skipped: progress.skipped ?? 0,
      failures: e?.failures ?? 0,
      nextRunTime: e?.nextRunAt !== undefined ? new Date(e.nextRunAt).toISOString() : null,
    };
  }

  private stateOf(e: Entry | undefined): TransformState {
    if (!e) return 'stopped';
    return e.lastError ? 'error' : this.paused(e) ? 'paused' : 'running';
  }

  /** Points of the source not read yet: from the committed offset (or the oldest retained point) to the end. */
  private async behind(account: string, row: TransformRow, nextOffset: number | undefined): Promise<{ points: number; next: number; log: RepoLog } | undefined> {
    const src = this.deps.meta.getRepo(account, row.repo);
    if (!src) return undefined;
    const log = await this.deps.repos.log(account, src);
    const next = Math.max(nextOffset ?? log.startOffset(), log.startOffset());
    return { points: Math.max(0, log.endOffset() - next), next, log };
  }

  /** Every scheduled transform's counters, state and lag in points (no log reads: offsets and log ends only). */
  async metrics(): Promise<TransformMetrics[]> {
    const out: TransformMetrics[] = [];
    for (const e of this.entries.values()) {
      const off = this.deps.meta.getOffset(e.account, consumerId(e.row));
      const behind = await this.behind(e.account, e.row, off?.nextOffset);
      out.push({
        account: e.account, repo: e.row.repo, name: e.row.name, state: this.stateOf(e), runs: e.runs, failedRuns: e.failedRuns,
        lastRunTime: e.lastRunTime === null ? null : Date.parse(e.lastRunTime), lagPoints: behind?.points ?? 0,
      });
    }
    return out;
  }

  /** Stops scheduling and waits for runs in flight. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const inflight: Array<Promise<void> | undefined> = [];
    for (const e of this.entries.values()) {
      clearTimeout(e.timer);
      inflight.push(e.inFlight);
    }
    await Promise.all(inflight);
  }
}
