import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.ts';
import type { GroupCapacity } from '../services/capacity.ts';
import type { RepoService } from '../services/repos.ts';
import type { ExportRow, MetaStore } from '../storage/meta.ts';
import { sinkKind } from './registry.ts';
import { ExportRunner, exportConsumer, type ExportProgress, type ExportState, type RunnerDeps } from './runner.ts';
import { realClock, type Clock } from './shared/retry.ts';

/** What GET of one export reports. */
export interface ExportStatus {
  state: ExportState;
  delivered: { lastBatch: number; total: number };
  lag: { points: number; seconds: number };
  lastSuccessTime: string | null;
  lastError: string | null;
  lastErrorTime: string | null;
  consecutiveFailures: number;
  nextRetryTime: string | null;
  deadLettered: number;
  omitted: number;
  /** Points dropped by source retention before the export read them. */
  skipped: number;
  deadLetterRepo: string;
}

/** One export as /metrics shows it (read from its runner at scrape time). */
export interface ExportMetrics {
  account: string;
  repo: string;
  name: string;
  type: string;
  state: ExportState;
  delivered: number;
  deadLettered: number;
  omitted: number;
  failures: number;
  retries: number;
  consecutiveFailures: number;
  lagPoints: number;
}

export interface EngineOptions {
  meta: MetaStore;
  repos: RepoService;
  config: Config;
  capacity: GroupCapacity;
  log: FastifyBaseLogger;
  /** Injected in tests (backoff sleeps and timestamps). */
  clock?: Clock;
}

const key = (account: string, repo: string, name: string): string => `${account}\u0000${repo}\u0000${name}`;
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * Runs every export: one runner per export, started at boot from the stored
 * exports (they resume from their committed offsets), woken when their repo
 * receives points, paused with their group.
 */
export class ExportEngine {
  private readonly runners = new Map<string, ExportRunner>();
  private readonly byRepo = new Map<string, Set<ExportRunner>>();
  private readonly deps: RunnerDeps;
  private closed = false;

  constructor(opts: EngineOptions) {
    const c = opts.config;
    this.deps = {
      meta: opts.meta, repos: opts.repos, config: c, capacity: opts.capacity, log: opts.log,
      clock: opts.clock ?? realClock,
      backoff: { minMs: c.exportRetryMinMs, maxMs: c.exportRetryMaxMs },
      limits: { points: c.exportBatch, bytes: c.exportBatchBytes },
      idlePollMs: 200,
    };
  }

  /** Replaces the clock and the jitter's random source (tests); affects every runner. */
  setClock(clock: Clock, random?: () => number): void {
    this.deps.clock = clock;
    this.deps.backoff.random = random;
  }

  /** Starts every stored export. */
  start(): void {
    for (const e of this.deps.meta.allExports()) this.add(e.account, e);
  }

  add(account: string, row: ExportRow): void {
    if (this.closed) return;
    const kind = sinkKind(row.type);
    if (!kind) {
      this.deps.log.error({ export: `${row.repo}/${row.name}`, type: row.type }, 'export of an unknown type not started');
      return;
    }
    const r = new ExportRunner(this.deps, account, row, kind);
    this.runners.set(key(account, row.repo, row.name), r);
    const rk = `${account}\u0000${row.repo}`;
    let set = this.byRepo.get(rk);
    if (!set) this.byRepo.set(rk, (set = new Set()));
    set.add(r);
    r.start();
  }

  /** Applies a new spec (the sink is rebuilt, reading resumes from the committed offset). */
  async update(account: string, row: ExportRow): Promise<void> {
    const r = this.runners.get(key(account, row.repo, row.name));
    if (!r) return this.add(account, row);
    await r.reconfigure(row);
  }

  /** Stops an export and waits for its batch in flight. */
  async remove(account: string, repo: string, name: string): Promise<void> {
    const k = key(account, repo, name);
    const r = this.runners.get(k);
    if (!r) return;
    this.runners.delete(k);
    this.byRepo.get(`${account}\u0000${repo}`)?.delete(r);
    await r.close();
  }

  /** Points were appended to a repo: its caught-up exports deliver them now. Cheap: called on every push. */
  notify(account: string, repo: string): void {
    const set = this.byRepo.get(`${account}\u0000${repo}`);
    if (set) for (const r of set) r.wake();
  }

  /** A group started or stopped: paused exports look again at once. */
  groupChanged(account: string): void {
    for (const r of this.runners.values()) if (r.account === account) r.wake();
  }

  /** Status for GET of one export. */
  async status(account: string, row: ExportRow): Promise<ExportStatus> {
    const r = this.runners.get(key(account, row.repo, row.name));
    const off = this.deps.meta.getOffset(account, exportConsumer(row));
    // The runner's counters once it loaded them; the stored ones before (each only grows).
    const stored = (off?.state ?? {}) as Partial<ExportProgress>;
    const mem: Partial<ExportProgress> = r?.progress ?? {};
    const pick = (k: keyof ExportProgress): number => Math.max(stored[k] ?? 0, mem[k] ?? 0);
    const progress: ExportProgress = { delivered: pick('delivered'), deadLettered: pick('deadLettered'), omitted: pick('omitted'), skipped: pick('skipped') };
    const committed = Math.max(r?.committed ?? 0, off?.nextOffset ?? 0);
    const lag = { points: 0, seconds: 0 };
    const repo = this.deps.meta.getRepo(account, row.repo);
    if (repo) {
      const log = await this.deps.repos.log(account, repo);
      const next = Math.max(committed, log.startOffset());
      lag.points = Math.max(0, log.endOffset() - next);
      if (lag.points > 0) {
        const first = await log.read(next, 1);
        if (first.times[0] !== undefined) lag.seconds = Math.max(0, (this.deps.clock.now() - first.times[0]) / 1000);
      }
    }
    return {
      state: r?.state ?? 'stopped',
      delivered: { lastBatch: r?.lastBatch ?? 0, total: progress.delivered },
      lag,
      lastSuccessTime: iso(r?.lastSuccess ?? null),
      lastError: r?.lastError?.message ?? null,
      lastErrorTime: iso(r?.lastError?.time ?? null),
      consecutiveFailures: r?.failures ?? 0,
      nextRetryTime: iso(r?.nextRetry ?? null),
      deadLettered: progress.deadLettered,
      omitted: progress.omitted,
      skipped: progress.skipped,
      deadLetterRepo: r?.deadLetterRepo ?? `${row.name}_deadletter`,
    };
  }

  /**
   * Every running export's counters (the totals GET reports, and failed and
   * retried deliveries since the process started), state and lag in points,
   * from memory: no metadata or log reads, so a scrape stays cheap.
   */
  metrics(): ExportMetrics[] {
    const out: ExportMetrics[] = [];
    for (const r of this.runners.values()) {
      const log = r.source;
      const lagPoints = log ? Math.max(0, log.endOffset() - Math.max(r.committed, log.startOffset())) : 0;
      out.push({
        account: r.account, repo: r.row.repo, name: r.row.name, type: r.row.type, state: r.state,
        delivered: r.progress.delivered, deadLettered: r.progress.deadLettered, omitted: r.progress.omitted,
        failures: r.counts.failures, retries: r.counts.retries, consecutiveFailures: r.failures, lagPoints,
      });
    }
    return out;
  }

  /** Stops every export, waiting for batches in flight. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.runners.values()];
    this.runners.clear();
    this.byRepo.clear();
    await Promise.all(all.map((r) => r.close()));
  }
}
